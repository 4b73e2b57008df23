#!/bin/bash
# bench_targets.sh: a backup into one S3 region against the same backup into
# two regions in one pass ([repository] + [repository eu]), and against what a
# user would do instead for the second copy: download from the first region
# and upload into the second with the aws CLI, or run the backup twice. Also
# the peak RSS of a backup at two part sizes and of a restore, to check the
# memory bound README states. Two Ceph RADOS Gateway regions on loopback
# (tests/harness, REGIONS="us-east-1 eu-west-1"). Figures, not a test.
#
#   bench/bench_targets.sh [SIZE_MIB] [RUNS]     (defaults 1024 and 3)
#
# Input: SIZE_MIB of a tar of /usr/lib/x86_64-linux-gnu (repeated as needed),
# as a --stdin backup. Environment: COFFER_BIN (default build/agent/coffer),
# BENCH_OUT (default bench/out), COFFER_RGW_DIR (default /tmp/coffer-rgw2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZE_MIB=${1:-1024}
RUNS=${2:-3}
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
W=${BENCH_OUT:-$ROOT/bench/out}/targets
export COFFER_RGW_DIR=${COFFER_RGW_DIR:-/tmp/coffer-rgw2}
export REGIONS="us-east-1 eu-west-1"
export S3_KEEP_RGW=${S3_KEEP_RGW:-1}
# Every run's objects are deleted after it, but the memstore OSD frees them
# only once RGW's garbage collector ran: room for a few runs' worth.
export MEMSTORE_BYTES=${MEMSTORE_BYTES:-$((12 << 30))}
mkdir -p "$W"
# shellcheck source=../tests/harness/s3-env.sh
. "$ROOT/tests/harness/s3-env.sh"

input=$W/input.tar
if [ ! -s "$input" ] || [ "$(stat -c %s "$input")" -ne $((SIZE_MIB * 1048576)) ]; then
	tar -cf - -C /usr/lib x86_64-linux-gnu 2>/dev/null >"$W/libs.tar" || true
	while [ "$(stat -c %s "$W/libs.tar")" -lt $((SIZE_MIB * 1048576)) ]; do
		cat "$W/libs.tar" "$W/libs.tar" >"$W/libs2.tar" && mv "$W/libs2.tar" "$W/libs.tar"
	done
	head -c $((SIZE_MIB * 1048576)) "$W/libs.tar" >"$input"
	rm -f "$W/libs.tar"
fi
age-keygen -o "$W/key.txt" 2>/dev/null || true
RCPT=$(age-keygen -y "$W/key.txt")
US=$(s3_bucket_name bench-us)
EU=$(s3_bucket_name bench-eu)
s3_mkbucket "$US" us-east-1
s3_mkbucket "$EU" eu-west-1
EU_ENDPOINT=$S3_ENDPOINT_EU_WEST_1

# conf FILE PART_MIB TARGETS: a configuration writing to us (and eu).
conf() {
	{
		printf '[repository]\ntype = s3\nendpoint = %s\nregion = us-east-1\nbucket = %s\n' "$S3_ENDPOINT" "$US"
		printf 'access_key = %s\nsecret_key = %s\npart_size = %sMiB\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$2"
		if [ "$3" = 2 ]; then
			printf '[repository eu]\ntype = s3\nendpoint = %s\nregion = eu-west-1\nbucket = %s\n' "$EU_ENDPOINT" "$EU"
			printf 'access_key = %s\nsecret_key = %s\npart_size = %sMiB\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$2"
		fi
		printf '[catalog]\npath = %s/catalog\n[encryption]\nrecipients = %s\nidentity = %s/key.txt\n' "$W" "$RCPT" "$W"
	} >"$1"
	chmod 600 "$1"
}
conf "$W/one.conf" 16 1
conf "$W/two.conf" 16 2
conf "$W/one5.conf" 5 1
conf "$W/eu.conf" 16 1
sed -i "s|^endpoint = $S3_ENDPOINT\$|endpoint = $EU_ENDPOINT|; s|^region = us-east-1|region = eu-west-1|; s|^bucket = $US\$|bucket = $EU|" "$W/eu.conf"

# measure NAME COMMAND...: wall s, user+sys s, peak RSS MiB of one run.
measure() {
	local name=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$W/t" "$@" >"$W/out" 2>"$W/err" || {
		echo "bench_targets: $name failed:" >&2
		cat "$W/err" >&2
		exit 1
	}
	read -r wall u s rss <"$W/t"
	printf '%s\t%s\t%s\t%s\n' "$name" "$wall" "$(echo "$u + $s" | bc)" "$((rss / 1024))" >>"$W/results.tsv"
}
: >"$W/results.tsv"
for run in $(seq 1 "$RUNS"); do
	measure one-region "$COFFER_BIN" --config "$W/one.conf" --json backup --stdin in <"$input"
	id=$(jq -r '.backups[0].id' "$W/out")
	measure two-regions "$COFFER_BIN" --config "$W/two.conf" backup --stdin in <"$input"
	# What a user would do instead: back up into us, then copy the object
	# to eu through this host (aws s3 cp down and up), or run it twice.
	measure alt-backup "$COFFER_BIN" --config "$W/one.conf" --json backup --stdin in <"$input"
	key=$(jq -r '.backups[0].objects[0].key' "$W/out")
	measure alt-copy bash -c "$S3_AWS --endpoint-url $S3_ENDPOINT s3 cp 's3://$US/$key' - | $S3_AWS --endpoint-url $EU_ENDPOINT --region eu-west-1 s3 cp - 's3://$EU/$key'"
	measure twice-eu "$COFFER_BIN" --config "$W/eu.conf" backup --stdin in <"$input"
	measure one-region-5MiB "$COFFER_BIN" --config "$W/one5.conf" backup --stdin in <"$input"
	measure restore "$COFFER_BIN" --config "$W/one.conf" restore "$id" --to "$W/restored.$run"
	rm -rf "$W/restored.$run"
	# Free the OSD's memory for the next run (the catalog forgets nothing,
	# which only the restore's choice of id reads).
	s3_aws s3 rm --quiet --recursive "s3://$US/"
	s3_aws_in eu-west-1 s3 rm --quiet --recursive "s3://$EU/"
	s3_rgw_admin gc process --include-all >/dev/null 2>&1 || true
done

# Medians per measurement; the alternative is backup + copy, summed per run.
python3 - "$W/results.tsv" "$RUNS" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = int(sys.argv[2])
by = {}
for name, wall, cpu, rss in rows:
    by.setdefault(name, []).append((float(wall), float(cpu), int(rss)))
alt = [(a[0] + c[0], a[1] + c[1], max(a[2], c[2])) for a, c in zip(by["alt-backup"], by["alt-copy"])]
twice = [(a[0] + c[0], a[1] + c[1], max(a[2], c[2])) for a, c in zip(by["one-region"], by["twice-eu"])]
by["alt: backup + aws cp to eu"] = alt
by["alt: backup run twice"] = twice
med = lambda xs, i: statistics.median(x[i] for x in xs)
print("%-28s %8s %8s %8s" % ("", "wall_s", "cpu_s", "rss_MiB"))
for name in ["one-region", "two-regions", "alt: backup + aws cp to eu", "alt: backup run twice",
             "one-region-5MiB", "restore"]:
    xs = by[name]
    print("%-28s %8.2f %8.2f %8d" % (name, med(xs, 0), med(xs, 1), med(xs, 2)))
one, two = by["one-region"], by["two-regions"]
print("two regions / one region, coffer CPU: %.2fx" % (med(two, 1) / med(one, 1)))
print("backup + aws cp / two regions, wall: %.2fx" % (med(alt, 0) / med(two, 0)))
print("backup run twice / two regions, wall: %.2fx" % (med(twice, 0) / med(two, 0)))
PY
