#!/bin/bash
# Copies in two regions: two RADOS Gateway zonegroups of the harness
# (us-east-1, eu-west-1) plus a posix folder. A backup lands byte-identical in
# all three; the eu gateway stopped before a backup or killed in the middle of
# one leaves a complete backup with eu pending (copies_required met) or fails
# it leaving nothing anywhere (not met); replicate catches eu up once it is
# back; a flaky eu (fault proxy) costs retries only; restore falls over to eu
# when the primary's copy is deleted, corrupted or unreachable; and a catalog
# rebuilt from the buckets equals the original.
. "$(dirname "$0")/lib.sh"
t_setup s3_regions
. "$COFFER_SRC/tests/harness/s3-env.sh"
s3_two_regions
EU_ENDPOINT=$(s3_endpoint "$EU")
BUS=$(s3_bucket_name regions-us)
BEU=$(s3_bucket_name regions-eu)
s3_mkbucket "$BUS" "$US"
s3_mkbucket "$BEU" "$EU"

mkdir -p "$T/src" "$T/local"
head -c 3000000 /dev/urandom >"$T/src/random.bin"
seq 1 200000 >"$T/src/seq.txt"

# write_conf COPIES [EU-ENDPOINT] [EU-ATTEMPTS]
write_conf() {
	cat >"$CONF" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $US
bucket = $BUS
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
part_size = 1MiB
copies_required = $1

[repository eu]
type = s3
endpoint = ${2:-$EU_ENDPOINT}
region = $EU
bucket = $BEU
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
part_size = 1MiB
max_attempts = ${3:-2}
timeout = 5

[repository local]
path = $T/local

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source tree]
type = files
paths = $T/src
EOF
	chmod 600 "$CONF"
}

# s3_sha256 REGION BUCKET KEY: the SHA-256 of the object as downloaded.
s3_sha256() {
	s3_aws_in "$1" s3 cp "s3://$2/$3" - | sha256sum | cut -d' ' -f1
}

# no_uploads DESC: neither region keeps a multipart upload.
no_uploads() {
	check_eq "$1: no multipart upload left in $US" 0 "$(s3_list_uploads "$BUS" "$US")"
	check_eq "$1: no multipart upload left in $EU" 0 "$(s3_list_uploads "$BEU" "$EU")"
}

# --- a backup lands in all three, the same bytes in each -------------------
write_conf 3
cf backup tree --json
check_rc "backup into us, eu and a posix folder" 0
ID=$(jq -r '.backups[0].id' "$OUT")
KEYO=$(jq -r '.backups[0].objects[0].key' "$OUT")
SUM=$(jq -r '.backups[0].objects[0].sha256' "$OUT")
check_eq "the record has three locations" 3 "$(jq '.backups[0].locations | length' "$OUT")"
check_eq "us holds the recorded bytes" "$SUM" "$(s3_sha256 "$US" "$BUS" "$KEYO")"
check_eq "eu holds the recorded bytes" "$SUM" "$(s3_sha256 "$EU" "$BEU" "$KEYO")"
check_eq "the posix folder holds them" "$SUM" "$(sha256sum <"$T/local/$KEYO" | cut -d' ' -f1)"
for r in "$US:$BUS" "$EU:$BEU"; do
	check_eq "${r%%:*} has the manifest" 1 \
		"$(s3_aws_in "${r%%:*}" s3 ls "s3://${r#*:}/tree/$ID/" | grep -c manifest.json)"
done
mkdir -p "$T/by-hand"
s3_aws_in "$EU" s3 cp "s3://$BEU/$KEYO" - | age -d -i "$KEY" | zstd -dq |
	tar -x -C "$T/by-hand" --warning=no-unknown-keyword
check "aws s3 cp | age | zstd | tar restores eu's copy" diff -r "$T/src" "$T/by-hand/${T#/}/src"
no_uploads "after a backup"

# --- eu stopped before a backup ---------------------------------------------
write_conf 2
s3_gateway_stop "$EU"
cf backup tree --json
check_rc "eu down, copies_required = 2 of 3: the backup completes" 0
ID2=$(jq -r '.backups[0].id' "$OUT")
check_eq "eu is pending" "s3://$BEU/" "$(jq -r '.backups[0].pending[0].location' "$OUT")"
check_eq "the pending copy keeps the error" 1 \
	"$(jq '[.backups[0].pending[0].error | test("Couldn.t connect")] | map(select(.)) | length' "$OUT")"
check_grep "a warning names replicate" "$ERR" "is pending .*coffer replicate $ID2"
cf list
check_grep "list shows 2/3 pending" "$OUT" "$ID2 .* 2/3 pending "

# copies_required = 3 with eu down: the backup fails, nothing is left.
write_conf 3
before_us=$(s3_aws_in "$US" s3 ls "s3://$BUS/" --recursive | wc -l)
before_local=$(find "$T/local" -type f | wc -l)
cf backup tree
check_rc "eu down, copies_required = 3: the backup fails" 6
check_one_error_line "eu down: one error line"
check_grep "it names eu and why" "$ERR" "only 2 of the 3 copies .*$BEU"
check_eq "us keeps nothing of it" "$before_us" "$(s3_aws_in "$US" s3 ls "s3://$BUS/" --recursive | wc -l)"
check_eq "the posix folder keeps nothing of it" "$before_local" "$(find "$T/local" -type f | wc -l)"
check_eq "no multipart upload left in us" 0 "$(s3_list_uploads "$BUS" "$US")"

s3_gateway_start "$EU"
cf replicate "$ID2"
check_rc "replicate once eu is back" 0
K2=$(jq -r '.objects[0].key' <<<"$("$COFFER_BIN" --config "$CONF" show "$ID2" --json)")
check_eq "eu's copy has the recorded SHA-256 (as downloaded)" \
	"$(jq -r '.objects[0].sha256' <<<"$("$COFFER_BIN" --config "$CONF" show "$ID2" --json)")" \
	"$(s3_sha256 "$EU" "$BEU" "$K2")"
cf show "$ID2" --json
check_eq "the record holds three copies" 3 "$(jq '.locations | length' "$OUT")"
check_eq "none pending" 0 "$(jq '.pending // [] | length' "$OUT")"
no_uploads "after replicate"

# --- eu killed in the middle of a backup ------------------------------------
write_conf 2
(
	head -c 6000000 /dev/urandom
	touch "$T/half"
	# The second half waits until eu is killed (or 120 s), so the kill
	# lands mid-upload however slow the build is (ASan, a loaded machine).
	for i in $(seq 1 1200); do [ -e "$T/go" ] && break; sleep 0.1; done
	head -c 6000000 /dev/urandom
) | "$COFFER_BIN" --config "$CONF" backup --stdin big --json >"$OUT" 2>"$ERR" &
BPID=$!
for i in $(seq 1 300); do [ -e "$T/half" ] && break; sleep 0.1; done
eu_uploads=0
for i in $(seq 1 120); do # the first part reaches eu
	eu_uploads=$(s3_list_uploads "$BEU" "$EU")
	[ "$eu_uploads" -ge 1 ] && break
	sleep 0.5
done
check "eu got parts of the upload before it died" test "$eu_uploads" -ge 1
s3_gateway_stop "$EU" KILL
touch "$T/go"
wait "$BPID"
RC=$?
check_rc "eu killed mid-backup, copies_required = 2: the backup completes" 0
ID3=$(jq -r '.backups[0].id' "$OUT")
check_eq "eu is pending" "s3://$BEU/" "$(jq -r '.backups[0].pending[0].location' "$OUT")"
check_eq "us keeps no upload" 0 "$(s3_list_uploads "$BUS" "$US")"
s3_gateway_start "$EU"
check "the killed upload is still in eu" test "$(s3_list_uploads "$BEU" "$EU")" -ge 1
cf replicate --all -v
check_rc "replicate --all once eu is back" 0
check_grep "it removed the killed upload first" "$ERR" "removed 1 unfinished write"
cf show "$ID3" --json
K3=$(jq -r '.objects[0].key' "$OUT")
check_eq "eu's copy is identical (size and SHA-256 as downloaded)" \
	"$(jq -r '.objects[0].sha256' "$OUT") $(jq -r '.objects[0].stored_bytes' "$OUT")" \
	"$(s3_sha256 "$EU" "$BEU" "$K3") $(s3_aws_in "$EU" s3api head-object --bucket "$BEU" --key "$K3" --query ContentLength --output text)"
no_uploads "after the kill and replicate"

# --- a flaky eu: retries, and nothing pending --------------------------------
s3_faultproxy --upstream "${EU_ENDPOINT#http://}" --fault-rate 0.3 --faults 500,503slowdown,reset --seed 11
write_conf 3 "$FP_ENDPOINT" 8
sed -i "s|^\[repository eu\]$|[repository eu]\n; the fault proxy in front of eu|" "$CONF"
cf backup tree --json
check_rc "eu behind the fault proxy: the backup completes" 0
check "the proxy injected faults" grep -q "fault" "$FP_LOG"
check_eq "three copies, none pending" "3 0" \
	"$(jq -r '.backups[0] | "\(.locations | length) \(.pending // [] | length)"' "$OUT")"
K4=$(jq -r '.backups[0].objects[0].key' "$OUT")
check_eq "eu's copy is the recorded bytes" "$(jq -r '.backups[0].objects[0].sha256' "$OUT")" \
	"$(s3_sha256 "$EU" "$BEU" "$K4")"
s3_faultproxy_stop
write_conf 3
no_uploads "after the flaky backup"

# --- restore falls over to eu -----------------------------------------------
s3_aws_in "$US" s3 cp "s3://$BUS/$KEYO" "$T/saved.age" >/dev/null
s3_aws_in "$US" s3 rm "s3://$BUS/$KEYO" >/dev/null
cf restore "$ID" --to "$T/r-deleted"
check_rc "restore with the primary's object deleted" 0
check_grep "it warns and reads eu" "$ERR" "from repository primary failed: .*; trying repository eu"
check "the restore is identical" diff -r "$T/src" "$T/r-deleted/${T#/}/src"
cp "$T/saved.age" "$T/corrupt.age"
flip_byte "$T/corrupt.age" 200000
s3_aws_in "$US" s3 cp "$T/corrupt.age" "s3://$BUS/$KEYO" >/dev/null
cf restore "$ID" --to "$T/r-corrupt"
check_rc "restore with the primary's object corrupted" 0
check_grep "it warns and reads eu" "$ERR" "trying repository eu"
check "the restore is identical" diff -r "$T/src" "$T/r-corrupt/${T#/}/src"
s3_aws_in "$US" s3 cp "$T/saved.age" "s3://$BUS/$KEYO" >/dev/null
sed -i "0,/^endpoint = .*/s||endpoint = http://127.0.0.1:9|" "$CONF"
sed -i '0,/^copies_required = 3$/s||copies_required = 3\nmax_attempts = 1|' "$CONF"
cf restore "$ID" --to "$T/r-unreachable"
check_rc "restore with the primary unreachable" 0
check_grep "it warns and reads eu" "$ERR" "repository eu"
check "the restore is identical" diff -r "$T/src" "$T/r-unreachable/${T#/}/src"

# A run killed before its manifest, then a backup with the primary
# unreachable (copies_required = 2): the dead run is settled through the
# others, with a warning for the primary, and the backup completes in eu and
# the folder, its primary copy pending.
write_conf 3
cf list --json --status failed
nfailed=$(jq length "$OUT")
(COFFER_FAULT=before-manifest:kill "$COFFER_BIN" --config "$CONF" backup tree) >/dev/null 2>&1
write_conf 2
sed -i "0,/^endpoint = .*/s||endpoint = http://127.0.0.1:9|" "$CONF"
sed -i '0,/^copies_required = 2$/s||copies_required = 2\nmax_attempts = 1|' "$CONF"
cf backup tree --json
check_rc "primary unreachable after a killed run: the backup completes" 0
check_grep "the primary's dead run is left for later, with a warning" "$ERR" "could not settle the dead runs in s3://$BUS/"
check_eq "the primary's copy is pending" "s3://$BUS/" "$(jq -r '.backups[0].pending[0].location' "$OUT")"
cf list --json --status failed
check_eq "the killed run is recorded failed (settled through eu)" $((nfailed + 1)) "$(jq length "$OUT")"
write_conf 3

# --- catalog rebuild from the buckets ---------------------------------------
list_json >"$T/list-before.json"
mv "$CATALOG" "$T/catalog-before"
cf catalog rebuild --json
check_rc "catalog rebuild over us, eu and the folder" 0
list_json >"$T/list-after.json"
check_eq "the same backups, each with the same copies" \
	"$(jq -c '[.[] | select(.status == "complete") | {id, locations: (.locations | sort)}] | sort_by(.id)' "$T/list-before.json")" \
	"$(jq -c '[.[] | {id, locations: (.locations | sort)}] | sort_by(.id)' "$T/list-after.json")"

# --- copy = server: a bucket on the same endpoint ----------------------------
# RGW copies between two buckets of one gateway (not between its regions).
B2=$(s3_bucket_name regions-us2)
B3=$(s3_bucket_name regions-us3)
s3_mkbucket "$B2" "$US"
s3_mkbucket "$B3" "$US"
cat >>"$CONF" <<EOF

[repository us2]
type = s3
endpoint = $S3_ENDPOINT
region = $US
bucket = $B2
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
part_size = 1MiB
copy = server

[repository us3]
type = s3
endpoint = $S3_ENDPOINT
region = $US
bucket = $B3
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
copy = server
EOF
cf -v replicate --all --to us2
check_rc "replicate --all into a bucket on the same endpoint (1 MiB parts)" 0
check_grep "each object was copied inside the service (UploadPartCopy)" "$ERR" "copied tree/$ID/files.tar.zst.age inside the service"
check_eq "the copy of the 12 MB object is the recorded bytes" \
	"$(jq -r '.objects[0].sha256' <<<"$("$COFFER_BIN" --config "$CONF" show "$ID3" --json)")" \
	"$(s3_sha256 "$US" "$B2" "$(jq -r '.objects[0].key' <<<"$("$COFFER_BIN" --config "$CONF" show "$ID3" --json)")")"
check_eq "no multipart upload left" 0 "$(s3_list_uploads "$B2" "$US")"
cf -v replicate "$ID" --to us3
check_rc "replicate into a bucket on the same endpoint (one CopyObject)" 0
check_grep "copied inside the service" "$ERR" "copied tree/$ID/files.tar.zst.age inside the service"
check_eq "the copy is the recorded bytes" "$SUM" "$(s3_sha256 "$US" "$B3" "$KEYO")"
cf restore "$ID" --from us3 --to "$T/r-us3"
check_rc "restore --from the server-side copy" 0
check "it is identical" diff -r "$T/src" "$T/r-us3/${T#/}/src"
BEU2=$(s3_bucket_name regions-eu2)
s3_mkbucket "$BEU2" "$EU"
cat >>"$CONF" <<EOF

[repository eu2]
type = s3
endpoint = $EU_ENDPOINT
region = $EU
bucket = $BEU2
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
copy = server
EOF
cf -v replicate "$ID" --to eu2
check_rc "copy = server from another endpoint: the copy is streamed instead" 0
check_grep "it says so" "$ERR" "eu2: .*needs both on one endpoint; streaming it instead"
check_eq "that copy is the recorded bytes too" "$SUM" "$(s3_sha256 "$EU" "$BEU2" "$KEYO")"

t_finish
