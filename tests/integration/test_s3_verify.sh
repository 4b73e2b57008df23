#!/bin/bash
# coffer verify against RGW: a multipart backup verifies stored (no identity)
# and content (with one); a flipped byte, a truncated object, a deleted
# object and another backup's object in its place are each caught with exit
# 4 and a message naming backup, repository and object.
. "$(dirname "$0")/lib.sh"
t_setup s3_verify
. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"
BUCKET=$(s3_bucket_name verify)
s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"

mkdir -p "$T/data"
seq 1 200000 >"$T/data/seq.txt"
head -c 3000000 /dev/urandom >"$T/data/random.bin"
cat >"$CONF" <<EOF2
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $BUCKET
part_size = 1MiB

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source files]
type = files
paths = $T/data
EOF2
chmod 600 "$CONF"
grep -v '^identity = ' "$CONF" >"$T/noid.conf"

cf backup files --json
F1=$(jq -r '.backups[0].id' "$OUT")
cf backup files --json
F2=$(jq -r '.backups[0].id' "$OUT")
cf_conf "$T/noid.conf" verify --all --json
check_rc "verify --all, stored" 0
check_eq "two copies ok" 2 "$(jq '[.copies[] | select(.ok and .level == "stored")] | length' "$OUT")"
check "every byte was read" test "$(jq '.copies[0].bytes_read' "$OUT")" -gt 3000000
cf verify --all --json
check_rc "verify --all, content" 0
check_eq "two copies ok, content" 2 "$(jq '[.copies[] | select(.ok and .level == "content")] | length' "$OUT")"

KEY1=files/$F1/files.tar.zst.age
s3_aws s3 cp "s3://$BUCKET/$KEY1" "$T/good" >/dev/null
# put FILE: replaces F1's object in the bucket by FILE.
put() { s3_aws s3 cp "$1" "s3://$BUCKET/$KEY1" >/dev/null; }
damaged() {
	cf_conf "$T/noid.conf" verify "$F1"
	check_rc "$1: exit 4" 4
	check_grep "$1: names backup, repository and object" "$ERR" "backup $F1 in primary: $KEY1"
	check_grep "$1: says what" "$ERR" "$2"
}
cp "$T/good" "$T/flipped"
flip_byte "$T/flipped"
put "$T/flipped"
damaged "a flipped byte" "SHA-256"
head -c 1000 "$T/good" >"$T/short"
put "$T/short"
damaged "a truncated object" "is 1000 bytes, the manifest says"
s3_aws s3 rm "s3://$BUCKET/$KEY1" >/dev/null
damaged "a deleted object" "is missing"
s3_aws s3 cp "s3://$BUCKET/files/$F2/files.tar.zst.age" "s3://$BUCKET/$KEY1" >/dev/null
damaged "another backup's object in its place" "bytes, the manifest says|SHA-256"
put "$T/good"
cf verify "$F1"
check_rc "put back, it verifies (content)" 0
t_finish
