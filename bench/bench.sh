#!/bin/bash
# bench.sh: coffer's backup and restore throughput, peak memory and CPU
# against the shell pipeline it replaces (zstd -3 -T0 | age -r), on two
# inputs: a tar of /usr/lib/x86_64-linux-gnu and a generated 2 GiB SQL dump.
# It prints figures; it is not a test and never fails on a slow result.
#
#   bench/bench.sh            full inputs, 3 runs each (median reported)
#   bench/bench.sh --quick    256 MiB of each input, 1 run (about a minute)
#   bench/bench.sh --runs N   N runs of each measurement (median reported)
#
# Environment: COFFER_BIN (default build/agent/coffer), BENCH_OUT (default
# bench/out, gitignored: inputs, keys, repository and results live there).
# See bench/README.md for what is measured and the targets.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
OUT=${BENCH_OUT:-$ROOT/bench/out}
QUICK=0
RUNS=
MIB=$((1024 * 1024))
# shellcheck source=bench/inputs.sh
. "$(dirname "$0")/inputs.sh"

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--runs)
		RUNS=${2:?--runs needs a number}
		shift
		;;
	-h | --help) usage 0 ;;
	*) usage 2 >&2 ;;
	esac
	shift
done
[ -n "$RUNS" ] || RUNS=$([ $QUICK = 1 ] && echo 1 || echo 3)

die() {
	echo "bench: $*" >&2
	exit 1
}

[ -x "$COFFER_BIN" ] || die "$COFFER_BIN is not built (run ./packaging/build.sh or set COFFER_BIN)"
for tool in age age-keygen zstd python3 jq tar; do
	command -v "$tool" >/dev/null || die "$tool is missing (./packaging/install-deps.sh --test)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (package time)"

mkdir -p "$OUT/inputs" "$OUT/work"
W=$OUT/work
rm -rf "${W:?}"/*

# ----- inputs (made once, then reused) ---------------------------------------


bench_inputs bench

# ----- keys and coffer's configuration -----------------------------------------
KEY=$OUT/key.txt
[ -s "$KEY" ] || age-keygen -o "$KEY" 2>/dev/null
RECIPIENT=$(age-keygen -y "$KEY")
CONF=$W/coffer.conf
REPO=$W/repo
mkdir -p "$REPO"
cat >"$CONF" <<EOF
[repository]
type = posix
path = $REPO

[catalog]
path = $W/catalog

[encryption]
recipients = $RECIPIENT
identity = $KEY

[compression]
level = 3
workers = auto

[source libs]
type = command
command = cat $LIBS

[source sql]
type = command
command = cat $SQL
EOF

# ----- measuring -------------------------------------------------------------------

# tv FILE FIELD: a figure from a /usr/bin/time -v report: rss (KiB), cpu (s).
tv() {
	awk -v f="$2" '
		/Maximum resident set size/ { rss = $NF }
		/User time \(seconds\)/ { u = $NF }
		/System time \(seconds\)/ { s = $NF }
		END { if (f == "rss") print rss; else printf "%.2f\n", u + s }' "$1"
}

now() { date +%s.%N; }

RESULTS=$W/results.tsv # input op tool run wall_s rss_kib cpu_s out_bytes rss_detail
: >"$RESULTS"

# record INPUT OP TOOL RUN WALL RSS_KIB CPU OUT_BYTES DETAIL
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

# bench_input NAME FILE
bench_input() {
	local name=$1 in=$2 run t0 t1 id stored rss cpu detail
	local pipe_out=$W/$name.zst.age

	cat "$in" >/dev/null # into the page cache, for both sides alike
	for run in $(seq 1 "$RUNS"); do
		echo "bench: $name run $run/$RUNS" >&2

		# --- backup: coffer (command source `cat FILE`) ---
		t0=$(now)
		/usr/bin/time -v -o "$W/c.time" "$COFFER_BIN" --config "$CONF" --quiet --json backup "$name" \
			>"$W/c.json" 2>"$W/c.err" || die "coffer backup $name failed: $(cat "$W/c.err")"
		t1=$(now)
		id=$(jq -r '.backups[0].id' "$W/c.json")
		stored=$(stat -c %s "$REPO/$name/$id/stdout.zst.age")
		record "$name" backup coffer "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/c.time" rss)" \
			"$(tv "$W/c.time" cpu)" "$stored" "coffer+cat"

		# --- backup: cat | zstd -3 -T0 | age -r, with an fsync as coffer does ---
		t0=$(now)
		/usr/bin/time -v -o "$W/p1.time" cat "$in" |
			/usr/bin/time -v -o "$W/p2.time" zstd -3 -T0 -q |
			/usr/bin/time -v -o "$W/p3.time" age -r "$RECIPIENT" >"$pipe_out"
		sync "$pipe_out"
		t1=$(now)
		rss=$(($(tv "$W/p1.time" rss) + $(tv "$W/p2.time" rss) + $(tv "$W/p3.time" rss)))
		cpu=$(echo "$(tv "$W/p1.time" cpu) + $(tv "$W/p2.time" cpu) + $(tv "$W/p3.time" cpu)" | bc)
		detail="cat $(($(tv "$W/p1.time" rss) / 1024)) + zstd $(($(tv "$W/p2.time" rss) / 1024)) + age $(($(tv "$W/p3.time" rss) / 1024)) MiB"
		record "$name" backup pipeline "$run" "$(echo "$t1 - $t0" | bc)" "$rss" "$cpu" \
			"$(stat -c %s "$pipe_out")" "$detail"

		# --- restore: coffer restore --stdout ---
		t0=$(now)
		/usr/bin/time -v -o "$W/c.time" "$COFFER_BIN" --config "$CONF" --quiet restore "$id" --stdout \
			>/dev/null 2>"$W/c.err" || die "coffer restore $id failed: $(cat "$W/c.err")"
		t1=$(now)
		record "$name" restore coffer "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/c.time" rss)" \
			"$(tv "$W/c.time" cpu)" "$(stat -c %s "$in")" "coffer"

		# --- restore: age -d | zstd -d ---
		t0=$(now)
		/usr/bin/time -v -o "$W/p1.time" age -d -i "$KEY" "$pipe_out" |
			/usr/bin/time -v -o "$W/p2.time" zstd -d -q >/dev/null
		t1=$(now)
		rss=$(($(tv "$W/p1.time" rss) + $(tv "$W/p2.time" rss)))
		cpu=$(echo "$(tv "$W/p1.time" cpu) + $(tv "$W/p2.time" cpu)" | bc)
		detail="age $(($(tv "$W/p1.time" rss) / 1024)) + zstd $(($(tv "$W/p2.time" rss) / 1024)) MiB"
		record "$name" restore pipeline "$run" "$(echo "$t1 - $t0" | bc)" "$rss" "$cpu" \
			"$(stat -c %s "$in")" "$detail"

		# Once: coffer's restore gives back the input, byte for byte.
		if [ "$run" = 1 ]; then
			"$COFFER_BIN" --config "$CONF" --quiet restore "$id" --stdout | cmp -s - "$in" ||
				die "coffer restore of $name does not give back the input"
		fi
		rm -rf "${REPO:?}/$name/$id" "$pipe_out"
	done
}

command -v bc >/dev/null || die "bc is missing"
bench_input libs "$LIBS"
bench_input sql "$SQL"

# ----- report -----------------------------------------------------------------------
python3 - "$RESULTS" "$LIBS" "$SQL" "$RUNS" <<'PY'
import os, statistics, sys
path, libs, sql, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size = {"libs": os.path.getsize(libs), "sql": os.path.getsize(sql)}
rows = {}
for line in open(path):
    inp, op, tool, run, wall, rss, cpu, outb, detail = line.rstrip("\n").split("\t")
    rows.setdefault((inp, op, tool), []).append(
        (float(wall), int(rss), float(cpu), int(outb), detail))
def median(key):
    r = sorted(rows[key], key=lambda x: x[0])
    return r[(len(r) - 1) // 2]
print()
print("input: libs = %s (%.0f MiB), sql = %s (%.0f MiB); MB = 10^6 bytes; "
      "median of %d run(s) by wall time" % (os.path.basename(libs), size["libs"] / 2**20,
                                            os.path.basename(sql), size["sql"] / 2**20, runs))
print("peak RSS: coffer = its own peak (its `cat` child included); pipeline = SUM of the "
      "processes' peaks (they run at once)")
hdr = "%-5s %-8s %-9s %9s %8s %10s %7s %11s %6s" % ("input", "op", "tool", "MB/s", "wall s",
                                                    "RSS MiB", "CPU s", "output MiB", "ratio")
print(hdr)
print("-" * len(hdr))
for inp in ("libs", "sql"):
    for op in ("backup", "restore"):
        for tool in ("coffer", "pipeline"):
            wall, rss, cpu, outb, detail = median((inp, op, tool))
            ratio = "%.2f" % (size[inp] / outb) if op == "backup" else ""
            print("%-5s %-8s %-9s %9.1f %8.2f %10.1f %7.2f %11.1f %6s   %s" % (
                inp, op, tool, size[inp] / 1e6 / wall, wall, rss / 1024, cpu, outb / 2**20,
                ratio, detail if tool == "pipeline" else ""))
print()
print("coffer / pipeline (throughput: > 1 means coffer is faster; target >= 1.00)")
ok = True
for inp in ("libs", "sql"):
    for op in ("backup", "restore"):
        c, p = median((inp, op, "coffer")), median((inp, op, "pipeline"))
        t = p[0] / c[0]
        rss = c[1] / 1024
        ok = ok and t >= 1.0 and rss < 64
        print("  %-5s %-8s throughput x%.2f   CPU x%.2f   coffer peak RSS %.1f MiB (%s)" % (
            inp, op, t, c[2] / p[2] if p[2] else float("nan"), rss,
            "< 64 MiB target: ok" if rss < 64 else "OVER the 64 MiB target"))
print()
print("targets met" if ok else "targets NOT met (see above)")
PY
echo
echo "raw results: $RESULTS"
