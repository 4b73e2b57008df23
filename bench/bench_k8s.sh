#!/bin/bash
# bench_k8s.sh: a cluster of OBJECTS objects (default 20,000) from the test API
# server (tests/harness/k8s-api.py, loopback HTTPS) through `coffer backup` of a
# kubernetes source (secrets and owned objects included, so every object is
# fetched, cleaned, written as YAML and archived). Prints objects per second,
# wall and CPU seconds and peak RSS of each run and the median. Figures, not a
# test. Usage: bench/bench_k8s.sh [OBJECTS] [RUNS]
set -u
cd "$(dirname "$0")/.."
export COFFER_SRC=$PWD
export COFFER_BIN=${COFFER_BIN:-$PWD/build/agent/coffer}
export COFFER_TEST_TMP=${BENCH_OUT:-$PWD/bench/out}/k8s
N=${1:-20000}
RUNS=${2:-3}
. tests/integration/lib.sh
t_setup bench_k8s >/dev/null
. tests/harness/k8s-env.sh
k8s_start --objects "$N" --seed 1
k8s_kubeconfig token "$T/kc"
t_config <<CONF
[source all]
type = kubernetes
kubeconfig = $T/kc
secrets = true
owned = true
CONF
printf 'run\tobjects\twall_s\tobjects/s\tcpu_s\tpeak_rss_MiB\tstored_KiB\n'
for i in $(seq "$RUNS"); do
	/usr/bin/time -v "$COFFER_BIN" --config "$CONF" --quiet backup all >"$T/out" 2>"$T/time" || {
		cat "$T/time" >&2
		exit 1
	}
	id=$(last_id all)
	"$COFFER_BIN" --config "$CONF" show "$id" --json >"$T/show.json"
	objs=$(jq '.meta.objects' "$T/show.json")
	stored=$(jq '[.objects[].stored_bytes] | add / 1024 | floor' "$T/show.json")
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + t[j]; print s}' "$T/time")
	cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {print u + s}' "$T/time")
	rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2 / 1024}' "$T/time")
	printf '%d\t%d\t%.2f\t%.0f\t%.2f\t%s\t%s\n' "$i" "$objs" "$wall" "$(awk -v o="$objs" -v w="$wall" 'BEGIN {print o / w}')" "$cpu" "$rss" "$stored"
done | tee "$T/results.tsv"
sort -t$'\t' -k3,3n "$T/results.tsv" | awk -F'\t' -v n="$RUNS" 'NR == int((n + 1) / 2) {printf "median: %d objects in %.2f s = %.0f objects/s, peak RSS %s MiB\n", $2, $3, $4, $6}'
T_FAIL=0
exit 0
