#!/bin/bash
# WAL archiving (wal-push, wal-fetch) into two S3 regions of the harness's
# RADOS Gateway, with files shaped like WAL segments (no PostgreSQL: that is
# test_pitr.sh): each file lands in both buckets and decodes with aws, age
# and zstd alone; a re-push of the same content writes nothing, other
# content fails; wal-fetch falls over to eu when us lacks a file, exits 1 at
# the archive's end and 126 on a hole; an unreachable eu fails the push when
# copies_required asks for both, not when it asks for one; async pushes
# reach both regions, also with the pusher killed -9 while uploading; a
# rebuilt catalog knows the archive.
. "$(dirname "$0")/lib.sh"
t_setup s3_wal
. "$COFFER_SRC/tests/harness/s3-env.sh"
s3_two_regions
EU_ENDPOINT=$(s3_endpoint "$EU")
BUS=$(s3_bucket_name wal-us)
BEU=$(s3_bucket_name wal-eu)
s3_mkbucket "$BUS" "$US"
s3_mkbucket "$BEU" "$EU"

# write_conf COPIES [EU-ENDPOINT] [EXTRA-SOURCE-LINES]
write_conf() {
	cat >"$CONF" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $US
bucket = $BUS
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
copies_required = $1

[repository eu]
type = s3
endpoint = ${2:-$EU_ENDPOINT}
region = $EU
bucket = $BEU
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
max_attempts = 2
timeout = 5

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source pg]
type = postgres-physical
host = /nonexistent
${3:-}
EOF
	chmod 600 "$CONF"
}
write_conf 2

mkdir -p "$T/wal" "$T/out"
seg() { printf '00000001000000000000%04X' "$1"; }
for i in $(seq 1 8); do
	head -c 300000 /dev/urandom >"$T/wal/$(seg "$i")"
done
# in_bucket BUCKET REGION NAME: how many objects of WAL file NAME it holds.
in_bucket() {
	s3_aws_in "$2" s3api list-objects-v2 --bucket "$1" --prefix "pg/wal/${3:0:16}/$3-" \
		--query 'length(Contents || `[]`)' --output text
}

for i in 1 2 3 4 5; do
	cf wal-push --source pg "$T/wal/$(seg "$i")"
	[ "$RC" = 0 ] || break
done
check_rc "wal-push of five segments into two regions" 0
check_eq "each is in us" 5 "$(s3_aws_in "$US" s3api list-objects-v2 --bucket "$BUS" --prefix pg/wal/ --query 'length(Contents)' --output text)"
check_eq "and in eu" 5 "$(s3_aws_in "$EU" s3api list-objects-v2 --bucket "$BEU" --prefix pg/wal/ --query 'length(Contents)' --output text)"
key=$(s3_aws_in "$EU" s3api list-objects-v2 --bucket "$BEU" --prefix "pg/wal/" --query 'Contents[0].Key' --output text)
s3_aws_in "$EU" s3 cp "s3://$BEU/$key" - | age -d -i "$KEY" | zstd -dq >"$T/out/std"
check_same_file "aws s3 cp | age -d | zstd -d gives the segment back" "$T/wal/$(seg 1)" "$T/out/std"
check "the key carries the plaintext's SHA-256" test "${key#*-}" = "$(sha256sum <"$T/wal/$(seg 1)" | cut -d' ' -f1).zst.age"

cf wal-push --source pg "$T/wal/$(seg 2)"
check_rc "re-pushing the same content succeeds" 0
check_eq "writing nothing" 1 "$(in_bucket "$BUS" "$US" "$(seg 2)")"
cp "$T/wal/$(seg 2)" "$T/seg2.orig"
printf 'X' | dd of="$T/wal/$(seg 2)" bs=1 seek=10 conv=notrunc status=none
cf wal-push --source pg "$T/wal/$(seg 2)"
check_rc "other content under an archived name fails" 9
check_one_error_line "with one error line"
cp "$T/seg2.orig" "$T/wal/$(seg 2)"

cf wal-fetch --source pg "$(seg 3)" "$T/out/3"
check_rc "wal-fetch" 0
check_same_file "gives the segment" "$T/wal/$(seg 3)" "$T/out/3"
s3_aws_in "$US" s3 rm --quiet "s3://$BUS/$(s3_aws_in "$US" s3api list-objects-v2 --bucket "$BUS" --prefix "pg/wal/0000000100000000/$(seg 4)-" --query 'Contents[0].Key' --output text)"
cf wal-fetch --source pg "$(seg 4)" "$T/out/4"
check_rc "a file us lacks is fetched from eu" 0
check_same_file "the same bytes" "$T/wal/$(seg 4)" "$T/out/4"
cf wal-push --source pg "$T/wal/$(seg 4)"
check_rc "a re-push puts it back where it is missing" 0
check_eq "in us" 1 "$(in_bucket "$BUS" "$US" "$(seg 4)")"
cf wal-fetch --source pg "$(seg 6)" "$T/out/6"
check_rc "wal-fetch past the archive's end" 1
check_absent "writes nothing" "$T/out/6"
for b in "$BUS:$US" "$BEU:$EU"; do
	k=$(s3_aws_in "${b#*:}" s3api list-objects-v2 --bucket "${b%%:*}" --prefix "pg/wal/0000000100000000/$(seg 3)-" --query 'Contents[0].Key' --output text)
	s3_aws_in "${b#*:}" s3 rm --quiet "s3://${b%%:*}/$k"
done
cf wal-fetch --source pg "$(seg 3)" "$T/out/3b"
check_rc "wal-fetch of a segment in a hole" 126
check_grep "names the hole" "$ERR" "$(seg 3) of source pg is missing from the archive, but a later one \($(seg 4)\)"
cf wal-push --source pg "$T/wal/$(seg 3)"
check_rc "pushing it again fills the hole" 0

# eu unreachable (a closed port).
write_conf 2 "http://127.0.0.1:9"
cf wal-push --source pg "$T/wal/$(seg 6)"
check_rc "with eu unreachable and copies_required = 2, wal-push fails" 6
check_grep "saying how many copies were made" "$ERR" "stored in 1 of the 2 repositories copies_required asks for"
write_conf 1 "http://127.0.0.1:9"
cf wal-push --source pg "$T/wal/$(seg 6)"
check_rc "with copies_required = 1 it succeeds" 0
check_grep "warning about eu" "$ERR" "warning: .*$(seg 6)"
cf status pg
check_rc "status then fails" 11
check_grep "naming the copies still to make" "$OUT" "1 WAL file\(s\) still lack a copy"

# Async.
write_conf 2 "" "wal_async = true
wal_push_jobs = 3"
for i in $(seq 7 8); do
	cf wal-push --source pg "$T/wal/$(seg "$i")"
done
check_rc "async wal-push returns" 0
for i in $(seq 9 40); do head -c 300000 /dev/urandom >"$T/wal/$(seg "$i")"; done
( for _ in $(seq 1 40); do pkill -9 -f "$CONF wal-push --background" 2>/dev/null; sleep 0.05; done ) &
killer=$!
for i in $(seq 9 40); do
	cf wal-push --source pg "$T/wal/$(seg "$i")"
	[ "$RC" = 0 ] || break
done
check_rc "32 async pushes while the pusher is killed -9 again and again" 0
wait "$killer"
head -c 300000 /dev/urandom >"$T/wal/$(seg 41)"
cf wal-push --source pg "$T/wal/$(seg 41)"
for _ in $(seq 1 300); do
	[ -z "$(ls "$T/wal-spool/pg/out" 2>/dev/null)" ] && break
	sleep 0.1
done
check_empty_output "the spool drains" ls "$T/wal-spool/pg/out"
missing=
s3_aws_in "$US" s3api list-objects-v2 --bucket "$BUS" --prefix pg/wal/ --query 'Contents[].Key' --output text | tr '\t' '\n' >"$T/us.keys"
s3_aws_in "$EU" s3api list-objects-v2 --bucket "$BEU" --prefix pg/wal/ --query 'Contents[].Key' --output text | tr '\t' '\n' >"$T/eu.keys"
for i in $(seq 1 41); do
	[ "$(grep -c "/$(seg "$i")-" "$T/us.keys")" = 1 ] || missing+=" us:$i"
	[ "$(grep -c "/$(seg "$i")-" "$T/eu.keys")" = 1 ] || missing+=" eu:$i"
done
check_eq "every segment is in both regions (the one eu missed was copied by a later push)" "" "$missing"

# A queue left behind (a pusher killed, PostgreSQL idle since): status says so,
# and wal-push --background drains it.
cp "$T/wal/$(seg 41)" "$T/wal-spool/pg/out/$(seg 41)"
touch -d '-2 minutes' "$T/wal-spool/pg/out/$(seg 41)"
cf status pg
check_grep "status reports a queue no pusher drains" "$OUT" "1 WAL file\(s\) queued in .* for more than a minute"
cf wal-push --background --source pg
check_rc "wal-push --background drains it" 0
check_empty_output "the spool is empty" ls "$T/wal-spool/pg/out"
cf status pg
check_no_grep "and status is content" "$OUT" "queued in"

rm -rf "$CATALOG"
cf catalog rebuild
check_rc "catalog rebuild" 0
check_grep "records the WAL" "$OUT" "recorded 41 WAL file\(s\) of source pg"
cf status pg --json
check_eq "status knows the newest segment" "$(seg 41)" "$(jq -r '.sources[0].wal.newest' "$OUT")"

t_finish
