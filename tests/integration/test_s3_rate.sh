#!/bin/bash
# max_upload_rate / max_download_rate against RGW: a 200 MB backup with
# max_upload_rate = 20MB (20 MiB/s) takes the time that rate gives, within
# 10%; its restore with max_download_rate = 40MB likewise. Wall times, so
# under a sanitizer (slower than the rate) only the lower bound is checked.
. "$(dirname "$0")/lib.sh"
t_setup s3_rate
. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"
BUCKET=$(s3_bucket_name rate)
s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"

BYTES=200000000
head -c $BYTES /dev/urandom >"$T/big.bin"
cat >"$CONF" <<EOF2
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $BUCKET
max_upload_rate = 20MB
max_download_rate = 40MB

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[compression]
level = 1

[source big]
type = command
command = cat $T/big.bin
EOF2
chmod 600 "$CONF"

# within WHAT SECONDS EXPECTED: SECONDS is EXPECTED within 10% (over it
# only, under a sanitizer).
within() {
	local lo hi
	lo=$(awk -v e="$3" 'BEGIN {print e * 0.9}')
	hi=$(awk -v e="$3" 'BEGIN {print e * 1.1}')
	t_log "# $1: $2 s, the rate gives $3 s"
	if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; then
		check "$1 is not faster than the rate" awk -v s="$2" -v lo="$lo" 'BEGIN {exit !(s >= lo)}'
	else
		check "$1 is within 10% of the rate" awk -v s="$2" -v lo="$lo" -v hi="$hi" 'BEGIN {exit !(s >= lo && s <= hi)}'
	fi
}
t0=$(date +%s.%N)
cf backup big --json
t1=$(date +%s.%N)
check_rc "backup at max_upload_rate = 20MB" 0
stored=$(jq '.backups[0].objects[0].stored_bytes' "$OUT")
within "the upload" "$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.2f", a - b}')" \
	"$(awk -v n="$stored" 'BEGIN {printf "%.2f", n / (20 * 1048576)}')"
t0=$(date +%s.%N)
cf restore latest --source big --stdout
t1=$(date +%s.%N)
check_rc "restore at max_download_rate = 40MB" 0
check_same_file "the restore is whole" "$T/big.bin" "$OUT"
within "the download" "$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.2f", a - b}')" \
	"$(awk -v n="$stored" 'BEGIN {printf "%.2f", n / (40 * 1048576)}')"
t_finish
