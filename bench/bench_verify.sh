#!/bin/bash
# bench_verify.sh: `coffer verify` throughput, stored (no identity) and
# content (with the identity), next to `coffer restore --stdout` of the same
# backup of the libs input, in a posix repository and (with --s3) in a bucket
# of the test harness's RGW. Prints the median wall time, throughput (input
# bytes per second) and peak RSS of RUNS runs of each. Figures, not a test.
#
#   bench/bench_verify.sh [--quick] [--runs N] [--s3]
#
# --quick: 256 MiB of libs (default: the whole tar, about 1 GB). --s3 uses
# s3-env.sh (COFFER_RGW_DIR, RGW_PORT, MON_PORT; the gateway is left running).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
OUT=${BENCH_OUT:-$ROOT/bench/out}
QUICK=0
RUNS=3
S3=0
MIB=$((1024 * 1024))
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--runs)
		RUNS=${2:?--runs needs a number}
		shift
		;;
	--s3) S3=1 ;;
	*)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
	shift
done
die() {
	echo "bench_verify: $*" >&2
	exit 1
}
[ -x "$COFFER_BIN" ] || die "$COFFER_BIN is not built (./packaging/build.sh)"
. "$ROOT/bench/inputs.sh"
mkdir -p "$OUT/inputs"
bench_inputs bench_verify
W=$OUT/verify
rm -rf "$W"
mkdir -p "$W/repo"
age-keygen -o "$W/key.txt" 2>/dev/null
BYTES=$(stat -c %s "$LIBS")

# conf FILE REPOSITORY-LINES: a configuration backing up libs.
conf() {
	cat >"$1" <<EOF2
[repository]
$2

[catalog]
path = $W/catalog-$(basename "$1" .conf)

[encryption]
recipients = $(age-keygen -y "$W/key.txt")
identity = $W/key.txt

[source libs]
type = command
command = cat $LIBS
EOF2
	chmod 600 "$1"
	grep -v '^identity = ' "$1" >"${1%.conf}-noid.conf"
}

# measure NAME CONF ARGS...: median wall, throughput and peak RSS.
measure() {
	local name=$1 conf=$2
	shift 2
	for _ in $(seq 1 "$RUNS"); do
		/usr/bin/time -f '%e %M' -o "$W/t" "$COFFER_BIN" --config "$conf" --quiet "$@" >/dev/null 2>"$W/err" ||
			die "$name failed: $(cat "$W/err")"
		cat "$W/t"
	done | sort -n | awk -v name="$name" -v runs="$RUNS" -v bytes="$BYTES" '
		{ w[NR] = $1; r[NR] = $2 }
		END { m = int((runs + 1) / 2); asort(r);
		      printf "%-34s %6.2f s  %7.1f MiB/s  %6.1f MiB\n", name, w[m], bytes / 1048576 / w[m], r[m] / 1024 }'
}

# run WHERE CONF: backs up once, then measures restore and both verifies.
run() {
	local where=$1 c=$2 id
	"$COFFER_BIN" --config "$c" --quiet backup libs --json >"$W/b.json" 2>"$W/err" ||
		die "backup ($where) failed: $(cat "$W/err")"
	id=$(jq -r '.backups[0].id' "$W/b.json")
	echo "$where, libs ($((BYTES / MIB)) MiB, stored $(($(jq '[.backups[0].objects[].stored_bytes] | add' "$W/b.json") / MIB)) MiB), $RUNS run(s):"
	measure "restore --stdout" "$c" restore "$id" --stdout
	measure "verify (stored, no identity)" "${c%.conf}-noid.conf" verify "$id"
	measure "verify (content, identity)" "$c" verify "$id"
}

conf "$W/posix.conf" "path = $W/repo"
run posix "$W/posix.conf"
if [ $S3 = 1 ]; then
	t_skip() { die "the S3 harness is not available: $*"; }
	t_at_exit() { :; }
	export S3_KEEP_RGW=1
	set +eu
	. "$ROOT/tests/harness/s3-env.sh"
	set -eu
	BUCKET=coffer-bench-verify-$$
	s3_mkbucket "$BUCKET" || die "cannot create bucket $BUCKET"
	conf "$W/s3.conf" "type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $BUCKET
part_size = 16MiB"
	run "RGW ($S3_ENDPOINT)" "$W/s3.conf"
	s3_rmbucket "$BUCKET" >/dev/null 2>&1 || true
fi
