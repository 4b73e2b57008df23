#!/bin/bash
# bench_history.sh: what one run costs after a long history. A backup of an
# empty stdin (`coffer backup --stdin x --allow-empty < /dev/null`) with an
# empty catalog and repository, against the same with N catalog records and
# N repository objects (default 100,000; made by build/tests/catfill, about
# 2 ms a record). Prints the median wall time, user+sys CPU and peak RSS of
# RUNS runs of each, measured alternately in one session, and the ratios
# (goal: within 1.2x). Also a restore of an id the catalog does not hold
# (found in the repository). Figures, not a test.
#
#   bench/bench_history.sh [N] [RUNS]      (defaults 100000 and 9)
#
# Environment: COFFER_BIN (default build/agent/coffer), CATFILL (default
# build/tests/catfill), BENCH_OUT (default bench/out).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-100000}
RUNS=${2:-9}
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
CATFILL=${CATFILL:-$ROOT/build/tests/catfill}
OUT=${BENCH_OUT:-$ROOT/bench/out}/history
for t in "$COFFER_BIN" "$CATFILL" /usr/bin/time; do
	[ -x "$t" ] || {
		echo "bench_history: $t is missing (build with tests: packaging/install-deps.sh --test; COFFER_TEST_PLAIN=1 tests/run.sh -L unit)" >&2
		exit 2
	}
done

mkdir -p "$OUT"
if [ ! -f "$OUT/key.txt" ]; then
	"$COFFER_BIN" keygen -o "$OUT/key.txt" >/dev/null
fi
RECIPIENT=$(grep -o 'age1[0-9a-z]*' "$OUT/key.txt" | head -1)

# setup NAME [RECORDS]: a folder with a config, a repository and a catalog.
setup() {
	local d=$OUT/$1 n=${2:-0}
	if [ -f "$d/.done-$n" ]; then
		return
	fi
	rm -rf "$d"
	mkdir -p "$d/repo" "$d/state"
	cat >"$d/coffer.conf" <<EOF
[repository]
type = posix
path = $d/repo

[catalog]
path = $d/state/catalog

[encryption]
recipients = $RECIPIENT
identity = $OUT/key.txt

; the backups are of --stdin x; a source of the same name lets restore find
; them in the repository without the catalog (one HEAD under x/)
[source x]
type = command
command = true
allow_empty = true
EOF
	if [ "$n" -gt 0 ]; then
		echo "filling $d with $n records and $((2 * n)) objects (about $((n / 500)) s)..." >&2
		"$CATFILL" "$d/state/catalog" "$d/repo" "posix:$d/repo" "$n"
	fi
	# One backup first: makes the signing key and the first housekeeping pass.
	"$COFFER_BIN" --config "$d/coffer.conf" --quiet backup --stdin warm --allow-empty </dev/null >/dev/null
	touch "$d/.done-$n"
}

# measure NAME: BATCH backups of an empty stdin back to back (a run takes a
# few ms, below /usr/bin/time's 10 ms resolution); appends "wall cpu rss_kib"
# per run: the batch's wall and CPU divided by BATCH, the largest peak RSS.
BATCH=${BATCH:-20}
measure() {
	local d=$OUT/$1
	/usr/bin/time -f '%e %U %S %M' -o "$d/time.txt" sh -c '
		for i in $(seq "$1"); do
			"$2" --config "$3" --quiet backup --stdin x --allow-empty </dev/null >/dev/null || exit 1
		done' sh "$BATCH" "$COFFER_BIN" "$d/coffer.conf"
	awk -v b="$BATCH" '{printf "%.4f %.4f %s\n", $1 / b, ($2 + $3) / b, $4}' "$d/time.txt" >>"$d/runs.txt"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

setup empty 0
setup full "$N"
rm -f "$OUT/empty/runs.txt" "$OUT/full/runs.txt"
for _ in $(seq "$RUNS"); do
	measure empty
	measure full
done

printf '%-28s %10s %10s %12s\n' "backup of an empty stdin" "wall s" "cpu s" "peak RSS MiB"
for c in empty full; do
	w=$(cut -d' ' -f1 "$OUT/$c/runs.txt" | median)
	u=$(cut -d' ' -f2 "$OUT/$c/runs.txt" | median)
	m=$(cut -d' ' -f3 "$OUT/$c/runs.txt" | median)
	printf '%-28s %10s %10s %12.1f\n' "$([ $c = empty ] && echo 'empty history' || echo "$N records + objects")" "$w" "$u" "$(echo "$m / 1024" | bc -l)"
	eval "${c}_w=$w ${c}_u=$u ${c}_m=$m"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.01; if (a <= 0) a = 0.01; printf "%.2f", a / b }'; }
rw=$(ratio "$full_w" "$empty_w")
ru=$(ratio "$full_u" "$empty_u")
rm_=$(ratio "$full_m" "$empty_m")
verdict() { awk -v r="$1" 'BEGIN { print (r <= 1.2 ? "within 1.2x" : "OVER 1.2x") }'; }
echo "ratio full/empty: wall $rw ($(verdict "$rw")), cpu $ru ($(verdict "$ru")), peak RSS $rm_ ($(verdict "$rm_"))"

# A restore of a backup the catalog does not hold: found under its source's
# folder with one HEAD, not by listing the whole repository.
d=$OUT/full
id=$("$COFFER_BIN" --config "$d/coffer.conf" --json list 2>/dev/null |
	python3 -c 'import json,sys; print([b["id"] for b in json.load(sys.stdin) if b["source"] == "x"][-1])')
mv "$d/state/catalog" "$d/state/catalog.keep"
mkdir -p "$d/state/catalog"
/usr/bin/time -f '%e %M' -o "$d/restore-time.txt" \
	"$COFFER_BIN" --config "$d/coffer.conf" --quiet restore "$id" --stdout >/dev/null 2>"$d/restore-err.txt" || {
	cat "$d/restore-err.txt" >&2
}
rm -rf "$d/state/catalog"
mv "$d/state/catalog.keep" "$d/state/catalog"
read -r rw rm2 <"$d/restore-time.txt"
echo "restore of an id not in the catalog, $((2 * N)) objects in the repository: wall ${rw} s, peak RSS $((rm2 / 1024)) MiB"
