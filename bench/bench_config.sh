#!/bin/bash
# bench_config.sh: how reading the configuration grows with its size. Writes
# configurations of N/8, N/4, N/2 and N `command` sources (default N =
# 100,000) and times `coffer list` on each (an empty catalog, so the time is
# the configuration's). Linear parsing shows as a time that doubles with N;
# quadratic as one that quadruples. Prints wall time and peak RSS. Figures,
# not a test.
#
#   bench/bench_config.sh [N]
#
# Environment: COFFER_BIN (default build/agent/coffer), BENCH_OUT (default
# bench/out). Give COFFER_BIN an older build to compare side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-100000}
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
OUT=${BENCH_OUT:-$ROOT/bench/out}/config
for t in "$COFFER_BIN" /usr/bin/time; do
	[ -x "$t" ] || { echo "bench_config: $t is missing (build first: packaging/build.sh)" >&2; exit 2; }
done
mkdir -p "$OUT/repo"
printf '%-10s %10s %10s\n' sources wall_s rss_MiB
for n in $((N / 8)) $((N / 4)) $((N / 2)) "$N"; do
	conf=$OUT/coffer.$n.conf
	{
		printf '[repository]\ntype = posix\npath = %s/repo\n[catalog]\npath = %s/catalog\n' "$OUT" "$OUT"
		awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "[source s%d]\ntype = command\ncommand = true\n", i }'
	} >"$conf"
	/usr/bin/time -f '%e %M' -o "$OUT/time" "$COFFER_BIN" --config "$conf" list >/dev/null
	read -r wall rss <"$OUT/time"
	printf '%-10s %10s %10.1f\n' "$n" "$wall" "$(echo "$rss / 1024" | bc -l)"
done
