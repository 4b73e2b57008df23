#!/bin/bash
# bench_prune.sh: `coffer list --source S` and `coffer prune --dry-run` on a
# catalog of N backup records of one source (default 100,000, made by
# build/tests/catfill, about 2 ms a record; kept in BENCH_OUT for the next
# run). Prints the median wall time and peak RSS of RUNS runs of each (goal:
# under 1 s and 64 MiB each). Figures, not a test.
#
#   bench/bench_prune.sh [N] [RUNS]      (defaults 100000 and 5)
#
# Environment: COFFER_BIN (default build/agent/coffer), CATFILL (default
# build/tests/catfill), BENCH_OUT (default bench/out).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-100000}
RUNS=${2:-5}
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
CATFILL=${CATFILL:-$ROOT/build/tests/catfill}
OUT=${BENCH_OUT:-$ROOT/bench/out}/prune
for t in "$COFFER_BIN" "$CATFILL" /usr/bin/time; do
	[ -x "$t" ] || {
		echo "bench_prune: $t is missing (build with tests: COFFER_TEST_PLAIN=1 tests/run.sh -L unit)" >&2
		exit 2
	}
done
mkdir -p "$OUT"
if [ "$(cat "$OUT/n" 2>/dev/null)" != "$N" ]; then
	rm -rf "$OUT/catalog" "$OUT/repo"
	mkdir -p "$OUT/repo"
	echo "bench_prune: making $N records (about $((N / 500)) s)" >&2
	"$CATFILL" "$OUT/catalog" "$OUT/repo" "posix:$OUT/repo" "$N"
	echo "$N" >"$OUT/n"
fi
age-keygen -o "$OUT/key.txt" 2>/dev/null || true
cat >"$OUT/coffer.conf" <<EOF2
[repository]
path = $OUT/repo
[catalog]
path = $OUT/catalog
[encryption]
recipients = $(age-keygen -y "$OUT/key.txt")
[retention]
keep_daily = 35
keep_monthly = 12
EOF2

# measure NAME ARGS...: wall s and peak RSS MiB of RUNS runs, medians.
measure() {
	local name=$1
	shift
	for _ in $(seq 1 "$RUNS"); do
		/usr/bin/time -f '%e %M' -o "$OUT/t" "$COFFER_BIN" --config "$OUT/coffer.conf" "$@" >"$OUT/out" 2>"$OUT/err" || {
			echo "bench_prune: $name failed:" >&2
			cat "$OUT/err" >&2
			exit 1
		}
		cat "$OUT/t"
	done | sort -n | awk -v name="$name" -v runs="$RUNS" '
		{ w[NR] = $1; r[NR] = $2 }
		END { m = int((runs + 1) / 2); asort(r); printf "%-32s %6.2f s  %6.1f MiB\n", name, w[m], r[m] / 1024 }'
}
# Untimed: an older catalog is migrated by its first open, and the file is
# read into the page cache.
"$COFFER_BIN" --config "$OUT/coffer.conf" list --source hist >/dev/null
echo "$N records of one source:"
measure "list --source hist" list --source hist
measure "list --source hist --json" list --source hist --json
measure "prune --dry-run --source hist" prune --dry-run --source hist
measure "prune --dry-run --json" prune --dry-run --json
