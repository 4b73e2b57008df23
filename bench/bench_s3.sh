#!/bin/bash
# bench_s3.sh: coffer's backup and restore into S3 (a real Ceph RADOS Gateway
# on loopback, from tests/harness/s3-env.sh) against what a user would write
# instead: cat | zstd -3 -T0 | age -r | aws s3 cp -, and restic --stdin.
# Same inputs as bench.sh (a tar of /usr/lib/x86_64-linux-gnu and a 2 GiB SQL
# dump). It prints figures; it is not a test and never fails on a slow result.
#
#   bench/bench_s3.sh                 full inputs, 3 runs each (median reported)
#   bench/bench_s3.sh --quick         256 MiB of each input, 1 run
#   bench/bench_s3.sh --runs N        N runs of each measurement
#   bench/bench_s3.sh --only coffer   one tool (coffer, aws or restic; repeatable)
#   bench/bench_s3.sh --input sql     one input (libs or sql)
#
# Environment: COFFER_BIN (default build/agent/coffer), BENCH_OUT (default
# bench/out), PART_SIZE_MIB (16), UPLOAD_CONCURRENCY (4), DOWNLOAD_CONCURRENCY
# (4), INSTALL=1 (apt-get install restic when missing), and s3-env.sh's:
# COFFER_RGW_DIR, RGW_PORT, MON_PORT, S3_KEEP_RGW (default 1 here).
# See bench/README.md ("S3") for what is measured and the targets.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
OUT=${BENCH_OUT:-$ROOT/bench/out}
PART_SIZE_MIB=${PART_SIZE_MIB:-16}
UPLOAD_CONCURRENCY=${UPLOAD_CONCURRENCY:-4}
DOWNLOAD_CONCURRENCY=${DOWNLOAD_CONCURRENCY:-4}
export S3_KEEP_RGW=${S3_KEEP_RGW:-1}
QUICK=0
RUNS=
TOOLS=
INPUTS=
MIB=$((1024 * 1024))

usage() {
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--runs)
		RUNS=${2:?--runs needs a number}
		shift
		;;
	--only)
		case ${2:-} in coffer | aws | restic) TOOLS="$TOOLS $2" ;; *) usage 2 >&2 ;; esac
		shift
		;;
	--input)
		case ${2:-} in libs | sql) INPUTS="$INPUTS $2" ;; *) usage 2 >&2 ;; esac
		shift
		;;
	-h | --help) usage 0 ;;
	*) usage 2 >&2 ;;
	esac
	shift
done
[ -n "$RUNS" ] || RUNS=$([ $QUICK = 1 ] && echo 1 || echo 3)
TOOLS=${TOOLS:-coffer aws restic}
INPUTS=${INPUTS:-libs sql}
has_tool() { case " $TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }

die() {
	echo "bench_s3: $*" >&2
	exit 1
}

[ -x "$COFFER_BIN" ] || die "$COFFER_BIN is not built (run ./packaging/build.sh or set COFFER_BIN)"
for tool in age age-keygen zstd python3 jq tar bc aws; do
	command -v "$tool" >/dev/null || die "$tool is missing (./packaging/install-deps.sh --test)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (package time)"
if has_tool restic && ! command -v restic >/dev/null; then
	if [ "${INSTALL:-0}" = 1 ]; then
		echo "bench_s3: installing restic..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null; } ||
			die "apt-get install restic failed"
	else
		die "restic is missing (apt-get install restic, or INSTALL=1)"
	fi
fi

W=$OUT/s3work
mkdir -p "$OUT/inputs" "$W"
rm -rf "${W:?}"/*

# ----- inputs: the same files as bench.sh (made once, then reused) ------------
. "$ROOT/bench/inputs.sh"
bench_inputs bench_s3

# sha256 of an input, cached beside it (recomputed when the input is newer).
input_sha() {
	local f=$1
	if [ ! -s "$f.sha256" ] || [ "$f" -nt "$f.sha256" ]; then
		sha256sum <"$f" | cut -d' ' -f1 >"$f.sha256"
	fi
	cat "$f.sha256"
}

# ----- the gateway -------------------------------------------------------------------
# s3-env.sh starts the RGW or reuses a running one; with S3_KEEP_RGW=1 (the
# default here) it leaves it running at exit, since others may use it.
AT_EXIT=()
t_at_exit() { AT_EXIT+=("$1"); }
t_skip() { die "the S3 harness is not available: $*"; }
BUCKET=
RBUCKET=
on_exit() {
	local f
	if [ -n "$BUCKET" ]; then
		s3_rmbucket "$BUCKET" >/dev/null 2>&1 || true
		s3_rmbucket "$RBUCKET" >/dev/null 2>&1 || true
		s3_rgw_admin gc process --include-all >/dev/null 2>&1 || true
	fi
	for f in "${AT_EXIT[@]}"; do "$f" || true; done
}
trap on_exit EXIT
set +eu
# shellcheck source=/dev/null
. "$ROOT/tests/harness/s3-env.sh"
set -eu

BUCKET=coffer-bench-$$
RBUCKET=$BUCKET-restic
s3_mkbucket "$BUCKET" || die "cannot create bucket $BUCKET at $S3_ENDPOINT"
# Untimed warm-up: on a fresh cluster the first writes create RGW's pools and
# its multipart metadata, which costs seconds that belong to no tool.
head -c $((40 * MIB)) /dev/zero | s3_aws s3 cp - "s3://$BUCKET/warmup" --only-show-errors ||
	die "cannot write to bucket $BUCKET at $S3_ENDPOINT"
s3_aws s3 rm "s3://$BUCKET/warmup" --only-show-errors >/dev/null

# CPU seconds (user + system) used so far by the cluster's daemons (radosgw,
# ceph-osd, ceph-mon): they share the machine's cores with the client.
CLK_TCK=$(getconf CLK_TCK)
server_cpu() {
	local f pid sum=0 t
	for f in "$COFFER_RGW_DIR"/run/*.pid; do
		pid=$(cat "$f" 2>/dev/null) || continue
		t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || continue
		sum=$((sum + t))
	done
	echo "scale=2; $sum / $CLK_TCK" | bc
}

# ----- keys and coffer's configuration -----------------------------------------
KEY=$OUT/key.txt
[ -s "$KEY" ] || age-keygen -o "$KEY" 2>/dev/null
RECIPIENT=$(age-keygen -y "$KEY")
CONF=$W/coffer.conf
PREFIX=coffer/
cat >"$CONF" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $BUCKET
prefix = $PREFIX
part_size = ${PART_SIZE_MIB}MiB
upload_concurrency = $UPLOAD_CONCURRENCY
download_concurrency = $DOWNLOAD_CONCURRENCY

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
chmod 600 "$CONF"

export RESTIC_PASSWORD=coffer-bench
export RESTIC_REPOSITORY=s3:$S3_ENDPOINT/$RBUCKET
export RESTIC_CACHE_DIR=$W/restic-cache

# restic_reset: an empty restic repository (outside the timings).
restic_reset() {
	s3_rmbucket "$RBUCKET" >/dev/null 2>&1 || true
	rm -rf "$RESTIC_CACHE_DIR"
	s3_mkbucket "$RBUCKET"
	restic init -q >"$W/restic-init.log" 2>&1 || die "restic init failed: $(cat "$W/restic-init.log")"
}

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

RESULTS=$W/results.tsv # input op tool run wall_s rss_kib cpu_s srv_cpu_s other_cpu_s out_bytes rss_detail
: >"$RESULTS"

# CPU seconds the whole machine has been busy (all processes, all cores).
machine_cpu() {
	awk -v hz="$CLK_TCK" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}

# quiet: waits (at most QUIET_WAIT s, default 60) until the machine is
# nearly idle, so that others' work (a test suite on the same machine) does
# not land in a measurement. What still does is reported as "other CPU".
quiet() {
	local i a b
	for i in $(seq 1 "${QUIET_WAIT:-60}"); do
		a=$(machine_cpu)
		sleep 1
		b=$(machine_cpu)
		[ "$(echo "$b - $a < 0.25" | bc)" = 1 ] && return 0
		[ "$i" = 1 ] && echo "bench_s3: waiting for the machine to be idle ($(echo "$b - $a" | bc) cores busy)..." >&2
	done
	echo "bench_s3: warning: the machine is still busy; measuring anyway" >&2
}

T0=''
S0=''
M0=''
start() {
	quiet
	S0=$(server_cpu)
	M0=$(machine_cpu)
	T0=$(now)
}
# stop_record INPUT OP TOOL RUN RSS_KIB CPU OUT_BYTES DETAIL
stop_record() {
	local t1 s1 m1
	t1=$(now)
	s1=$(server_cpu)
	m1=$(machine_cpu)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(echo "$t1 - $T0" | bc)" \
		"$5" "$6" "$(echo "$s1 - $S0" | bc)" "$(echo "$m1 - $M0 - ($s1 - $S0) - $6" | bc)" "$7" "$8" >>"$RESULTS"
}

# rss_sum FILE... : the sum of the peaks (KiB); cpu_sum FILE...: of the CPU s.
rss_sum() {
	local f s=0
	for f; do s=$((s + $(tv "$f" rss))); done
	echo $s
}
cpu_sum() {
	local f s=0
	for f; do s="$s + $(tv "$f" cpu)"; done
	echo "$s" | bc
}
mib() { echo $(($(tv "$1" rss) / 1024)); }

object_size() {
	s3_aws s3api head-object --bucket "$1" --key "$2" --query ContentLength --output text
}

# check NAME TOOL SUM_WANTED SUM_GOT
check_sum() {
	[ "$3" = "$4" ] || die "$2's restore of $1 does not give back the input (sha256 $4, want $3)"
	echo "bench_s3: $1: $2 restore matches the input (sha256 ${3:0:16}...)" >&2
}

# bench_input NAME FILE
bench_input() {
	local name=$1 in=$2 size sum run id
	local pkey=pipe/$name.zst.age
	size=$(stat -c %s "$in")
	sum=$(input_sha "$in")
	cat "$in" >/dev/null # into the page cache, for every tool alike
	for run in $(seq 1 "$RUNS"); do
		echo "bench_s3: $name run $run/$RUNS" >&2
		has_tool restic && restic_reset

		# ===== backups =====
		if has_tool coffer; then
			start
			/usr/bin/time -v -o "$W/c.time" "$COFFER_BIN" --config "$CONF" --quiet --json backup "$name" \
				>"$W/c.json" 2>"$W/c.err" || die "coffer backup $name failed: $(cat "$W/c.err")"
			id=$(jq -r '.backups[0].id' "$W/c.json")
			stop_record "$name" backup coffer "$run" "$(tv "$W/c.time" rss)" "$(tv "$W/c.time" cpu)" \
				"$(object_size "$BUCKET" "$PREFIX$name/$id/stdout.zst.age")" "coffer+cat"
		fi

		if has_tool aws; then
			start
			/usr/bin/time -v -o "$W/p1.time" cat "$in" |
				/usr/bin/time -v -o "$W/p2.time" zstd -3 -T0 -q |
				/usr/bin/time -v -o "$W/p3.time" age -r "$RECIPIENT" |
				/usr/bin/time -v -o "$W/p4.time" "$S3_AWS" --endpoint-url "$S3_ENDPOINT" \
					s3 cp - "s3://$BUCKET/$pkey" --expected-size "$size" --only-show-errors ||
				die "the aws pipeline backup of $name failed"
			stop_record "$name" backup aws "$run" "$(rss_sum "$W"/p[1-4].time)" "$(cpu_sum "$W"/p[1-4].time)" \
				"$(object_size "$BUCKET" "$pkey")" \
				"cat $(mib "$W/p1.time") + zstd $(mib "$W/p2.time") + age $(mib "$W/p3.time") + aws $(mib "$W/p4.time")"
		fi

		if has_tool restic; then
			start
			/usr/bin/time -v -o "$W/r1.time" cat "$in" |
				/usr/bin/time -v -o "$W/r2.time" restic backup -q --stdin --stdin-filename x \
					>"$W/r.log" 2>&1 || die "restic backup of $name failed: $(cat "$W/r.log")"
			stop_record "$name" backup restic "$run" "$(rss_sum "$W"/r[12].time)" "$(cpu_sum "$W"/r[12].time)" \
				"$(s3_aws s3 ls --recursive --summarize "s3://$RBUCKET/" | awk '/Total Size/ { print $3 }')" \
				"cat $(mib "$W/r1.time") + restic $(mib "$W/r2.time")"
		fi

		# ===== restores =====
		if has_tool coffer; then
			start
			/usr/bin/time -v -o "$W/c.time" "$COFFER_BIN" --config "$CONF" --quiet restore "$id" --stdout \
				>/dev/null 2>"$W/c.err" || die "coffer restore $id failed: $(cat "$W/c.err")"
			stop_record "$name" restore coffer "$run" "$(tv "$W/c.time" rss)" "$(tv "$W/c.time" cpu)" \
				"$size" "coffer"
		fi

		if has_tool aws; then
			start
			/usr/bin/time -v -o "$W/p1.time" "$S3_AWS" --endpoint-url "$S3_ENDPOINT" \
				s3 cp "s3://$BUCKET/$pkey" - --only-show-errors |
				/usr/bin/time -v -o "$W/p2.time" age -d -i "$KEY" |
				/usr/bin/time -v -o "$W/p3.time" zstd -d -q >/dev/null ||
				die "the aws pipeline restore of $name failed"
			stop_record "$name" restore aws "$run" "$(rss_sum "$W"/p[1-3].time)" "$(cpu_sum "$W"/p[1-3].time)" \
				"$size" "aws $(mib "$W/p1.time") + age $(mib "$W/p2.time") + zstd $(mib "$W/p3.time")"
		fi

		if has_tool restic; then
			start
			/usr/bin/time -v -o "$W/r1.time" restic dump -q latest x >/dev/null 2>"$W/r.log" ||
				die "restic dump of $name failed: $(cat "$W/r.log")"
			stop_record "$name" restore restic "$run" "$(tv "$W/r1.time" rss)" "$(tv "$W/r1.time" cpu)" \
				"$size" "restic"
		fi

		# Once per input: every tool's restore gives back the input, byte for byte.
		if [ "$run" = 1 ]; then
			if has_tool coffer; then
				check_sum "$name" coffer "$sum" \
					"$("$COFFER_BIN" --config "$CONF" --quiet restore "$id" --stdout | sha256sum | cut -d' ' -f1)"
			fi
			if has_tool aws; then
				check_sum "$name" aws "$sum" "$(s3_aws s3 cp "s3://$BUCKET/$pkey" - --only-show-errors |
					age -d -i "$KEY" | zstd -d -q | sha256sum | cut -d' ' -f1)"
			fi
			if has_tool restic; then
				check_sum "$name" restic "$sum" "$(restic dump -q latest x | sha256sum | cut -d' ' -f1)"
			fi
		fi

		# Empty the buckets and let RGW's garbage collector free the space now
		# (memstore holds everything in RAM, 4 GiB at most).
		s3_aws s3 rm --recursive --only-show-errors "s3://$BUCKET/" >/dev/null
		has_tool restic && s3_rmbucket "$RBUCKET" >/dev/null 2>&1
		s3_rgw_admin gc process --include-all >/dev/null 2>&1 ||
			echo "bench_s3: warning: radosgw-admin gc process failed; deleted objects may hold RAM" >&2
	done
}

echo "bench_s3: RGW at $S3_ENDPOINT, buckets $BUCKET and $RBUCKET; tools:$TOOLS; inputs:$INPUTS" >&2
for inp in $INPUTS; do
	case $inp in
	libs) bench_input libs "$LIBS" ;;
	sql) bench_input sql "$SQL" ;;
	esac
done

# ----- report -----------------------------------------------------------------------
python3 - "$RESULTS" "$LIBS" "$SQL" "$RUNS" "$PART_SIZE_MIB" "$UPLOAD_CONCURRENCY" \
	"$DOWNLOAD_CONCURRENCY" "$(nproc)" <<'PY'
import os, sys
path, libs, sql = sys.argv[1:4]
runs, part, upc, dlc, ncpu = (int(x) for x in sys.argv[4:9])
size = {"libs": os.path.getsize(libs), "sql": os.path.getsize(sql)}
rows = {}
for line in open(path):
    inp, op, tool, run, wall, rss, cpu, srv, oth, outb, detail = line.rstrip("\n").split("\t")
    rows.setdefault((inp, op, tool), []).append(
        (float(wall), int(rss), float(cpu), float(srv), int(outb), detail, float(oth)))
def median(key):
    r = sorted(rows[key], key=lambda x: x[0])
    return r[(len(r) - 1) // 2]
inputs = [i for i in ("libs", "sql") if any(k[0] == i for k in rows)]
tools = [t for t in ("coffer", "aws", "restic") if any(k[2] == t for k in rows)]
rss_target = part * (upc + 1) + 24
print()
print("input: libs = %s (%.0f MiB), sql = %s (%.0f MiB); MB = 10^6 bytes; median of %d run(s) "
      "by wall time" % (os.path.basename(libs), size["libs"] / 2**20, os.path.basename(sql),
                        size["sql"] / 2**20, runs))
print("coffer: s3, part_size %d MiB, upload_concurrency %d, download_concurrency %d; "
      "aws = cat | zstd -3 -T0 | age | aws s3 cp (and back); restic = restic --stdin / dump"
      % (part, upc, dlc))
print("peak RSS: coffer = its own (its `cat` included); pipelines = SUM of the processes' peaks. "
      "srv CPU = radosgw+osd+mon; busy = (CPU+srv CPU)/wall, of %d cores;" % ncpu)
print("other = CPU s used meanwhile by the rest of the machine (others' work: noise if large)")
hdr = "%-5s %-8s %-7s %8s %8s %9s %7s %8s %5s %6s %11s %6s" % (
    "input", "op", "tool", "MB/s", "wall s", "RSS MiB", "CPU s", "srv CPU", "busy", "other",
    "stored MiB", "ratio")
print(hdr)
print("-" * len(hdr))
for inp in inputs:
    for op in ("backup", "restore"):
        for tool in tools:
            if (inp, op, tool) not in rows:
                continue
            wall, rss, cpu, srv, outb, detail, oth = median((inp, op, tool))
            stored = "%.1f" % (outb / 2**20) if op == "backup" else ""
            ratio = "%.2f" % (size[inp] / outb) if op == "backup" else ""
            print("%-5s %-8s %-7s %8.1f %8.2f %9.1f %7.2f %8.2f %5.2f %6.2f %11s %6s   %s" % (
                inp, op, tool, size[inp] / 1e6 / wall, wall, rss / 1024, cpu, srv,
                (cpu + srv) / wall, max(oth, 0.0), stored, ratio, detail if tool != "coffer" else ""))
print()
print("throughput ratios (> 1 means coffer is faster)")
ok = True
targets = [("backup", "aws", 1.5), ("backup", "restic", 2.0), ("restore", "aws", 1.5),
           ("restore", "restic", None)]
for inp in inputs:
    for op, other, want in targets:
        if (inp, op, "coffer") not in rows or (inp, op, other) not in rows:
            continue
        c, o = median((inp, op, "coffer")), median((inp, op, other))
        t = o[0] / c[0]
        if want is None:
            verdict = "(reference)"
        else:
            verdict = "target >= %.1f: %s" % (want, "ok" if t >= want else "MISSED")
            ok = ok and t >= want
        print("  %-5s %-8s coffer/%-7s x%.2f   %s" % (inp, op, other, t, verdict))
if "coffer" in tools:
    print("coffer peak RSS (target <= part_size x (upload_concurrency+1) + 24 = %d MiB)" % rss_target)
    for inp in inputs:
        for op in ("backup", "restore"):
            if (inp, op, "coffer") in rows:
                rss = max(r[1] for r in rows[(inp, op, "coffer")]) / 1024
                ok = ok and rss <= rss_target
                print("  %-5s %-8s max over runs %.1f MiB: %s" % (
                    inp, op, rss, "ok" if rss <= rss_target else "OVER"))
print()
print("targets met" if ok else "targets NOT met (see above)")
PY
echo
echo "raw results: $RESULTS"
