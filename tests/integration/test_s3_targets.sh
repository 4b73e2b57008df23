#!/bin/bash
# Several targets ([repository] plus [repository NAME] sections): a backup is
# written to all of them in one pass, byte-identical, each with its own
# manifest, and recorded with every location; a target that fails part-way
# fails the whole backup and leaves nothing that looks complete in any target.
# Two posix targets and, when the S3 harness is there, an S3 bucket as a third.
. "$(dirname "$0")/lib.sh"
t_setup s3_targets

mkdir -p "$REPO" "$T/second" "$T/src"
head -c 3000000 /dev/urandom >"$T/src/random.bin"
seq 1 200000 >"$T/src/seq.txt"

t_config <<EOF
[repository second]
type = posix
path = $T/second

[source tree]
type = files
paths = $T/src
EOF

cf backup tree --json
check_rc "backup into two targets" 0
ID=$(jq -r '.backups[0].id' "$OUT")
check_eq "the record lists both locations" 2 "$(jq '.backups[0].locations | length' "$OUT")"
m1=$(find "$REPO" -name manifest.json)
m2=$(find "$T/second" -name manifest.json)
check "the primary holds the manifest" test -n "$m1"
check "the second target holds the manifest" test -n "$m2"
o1=$(find "$REPO" -name 'files.tar.zst.age')
o2=$(find "$T/second" -name 'files.tar.zst.age')
check_same_file "the object is byte-identical in both targets" "$o1" "$o2"
check_eq "the object's SHA-256 is the recorded one" "$(jq -r '.backups[0].objects[0].sha256' "$OUT")" \
	"$(sha256sum "$o2" | cut -d' ' -f1)"
mkdir -p "$T/by-hand"
age -d -i "$KEY" "$o2" | zstd -dq | tar -x -C "$T/by-hand" --warning=no-unknown-keyword
check_same_file "age | zstd | tar restores the second target's copy" "$T/src/random.bin" "$T/by-hand/${T#/}/src/random.bin"
cf restore "$ID" --to "$T/restored"
check_rc "restore (from the primary)" 0
check_same_file "restored file" "$T/src/seq.txt" "$T/restored/${T#/}/src/seq.txt"

# The second target fills up part-way: the backup fails, and neither target
# keeps anything of it (the primary's copy is not left looking complete).
SMALL=$T/small
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=1m tmpfs "$SMALL" 2>"$T/mount.err"; then
	t_log "note: full-target case skipped: cannot mount a tmpfs ($(cat "$T/mount.err"))"
else
	t_at_exit "umount '$SMALL'"
	sed -i "s|^path = $T/second\$|path = $SMALL|" "$CONF"
	before=$(find "$REPO" -type f | wc -l)
	cf backup tree
	check_rc "a target running out of space fails the backup" 6
	check_one_error_line "full target: one error line"
	check_eq "the primary keeps nothing of the failed backup" "$before" "$(find "$REPO" -type f | wc -l)"
	check_eq "the full target keeps nothing" "" "$(find "$SMALL" -type f)"
	cf list --json --status failed
	check_eq "the run is recorded as failed" 1 "$(jq length "$OUT")"
fi

# A third target in S3, when the harness is there.
if [ -n "${COFFER_RGW_DEFAULT_DIR:-}${COFFER_RGW_DIR:-}" ] && . "$COFFER_SRC/tests/harness/s3-env.sh" 2>/dev/null; then
	BUCKET=$(s3_bucket_name targets)
	s3_mkbucket "$BUCKET"
	sed -i "s|^path = $SMALL\$|path = $T/second|" "$CONF"
	cat >>"$CONF" <<EOF

[repository s3]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $BUCKET
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
part_size = 1MiB
EOF
	chmod 600 "$CONF"
	cf backup tree --json
	check_rc "backup into two posix targets and S3" 0
	ID=$(jq -r '.backups[0].id' "$OUT")
	key=$(jq -r '.backups[0].objects[0].key' "$OUT")
	s3_aws s3 cp "s3://$BUCKET/$key" "$T/from-s3.age" >/dev/null
	check_same_file "the S3 copy is byte-identical to the primary's" "$REPO/$key" "$T/from-s3.age"
	check_same_file "and to the second target's" "$T/second/$key" "$T/from-s3.age"
	check_eq "the S3 copy has its manifest" 1 \
		"$(s3_aws s3 ls "s3://$BUCKET/tree/$ID/" | grep -c manifest.json)"
	check_eq "no multipart upload left" 0 "$(s3_list_uploads "$BUCKET")"
else
	t_log "note: the S3 target case needs the S3 harness (run under ctest)"
fi

t_finish
