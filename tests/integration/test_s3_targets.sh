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

# Restore falls over to the next target that holds the backup, with a
# warning, when the primary's copy is missing or damaged.
key=$(find "$REPO" -name 'files.tar.zst.age' | head -n 1)
mv "$key" "$T/saved.age"
cf restore "$ID" --to "$T/r-missing"
check_rc "restore with the primary's object missing" 0
check_grep "a warning names the fall-over" "$ERR" "from repository primary failed: .*; trying repository second"
check "the restore is complete" diff -r "$T/src" "$T/r-missing/${T#/}/src"
cp "$T/saved.age" "$key"
flip_byte "$key" 100000
cf restore "$ID" --to "$T/r-corrupt"
check_rc "restore with the primary's object corrupted" 0
check_grep "the warning says why" "$ERR" "from repository primary failed"
check "the restore from the second target is complete" diff -r "$T/src" "$T/r-corrupt/${T#/}/src"
check_eq "nothing of the failed attempt is left beside it" "r-corrupt" "$(ls -A "$T" | grep '^\.\?r-corrupt')"
cf restore "$ID" --stdout --object files >"$T/stdout.tar"
check_rc "--stdout: a damaged copy found only while writing is not taken back" 4
check_grep "--stdout: the error says the output is incomplete and what to do" "$ERR" "incomplete .*--from second"
cf restore "$ID" --stdout --from second
check_rc "--stdout --from second" 0
check_eq "--stdout --from second is the whole tar" "$(age -d -i "$KEY" "$T/second/${key#"$REPO"/}" | zstd -dq | sha256sum)" "$(sha256sum <"$OUT")"
mv "$key" "$T/corrupt.age"
cf restore "$ID" --stdout
check_rc "--stdout with the primary's object missing falls over before writing" 0
check_grep "--stdout fall-over warns" "$ERR" "trying repository second"
cf restore "$ID" --to "$T/r-nosuch" --from nosuch
check_rc "--from an unknown repository" 2
cf restore "$ID" --to "$T/r-only" --from primary
check_rc "--from primary with its object missing fails (a missing object is exit 4)" 4
check_absent "and restores nothing" "$T/r-only"
cp "$T/saved.age" "$key"

# repo cleanup cleans every target: a folder without a manifest in the
# second one (left by a run killed long ago) goes.
mkdir -p "$T/second/tree/20200101T000000.000Z-0badf00d"
echo leftover >"$T/second/tree/20200101T000000.000Z-0badf00d/files.tar.zst.age"
cf repo cleanup --older-than 0 --json
check_rc "repo cleanup over two targets" 0
check_eq "it cleaned both" "primary second" "$(jq -r '[.repositories[].name] | join(" ")' "$OUT")"
check_eq "the second target's leftover went" 1 "$(jq '.repositories[1].incomplete_backups' "$OUT")"
check_absent "and its folder" "$T/second/tree/20200101T000000.000Z-0badf00d"

# catalog rebuild reads every target: on an empty catalog it gives back the
# same records with the same locations (one record per backup, two copies).
list_json >"$T/list-before.json"
mv "$CATALOG" "$T/catalog-before"
cf catalog rebuild --json
check_rc "catalog rebuild over two targets" 0
check_eq "it read both" "primary second" "$(jq -r '[.repositories[].name] | join(" ")' "$OUT")"
list_json >"$T/list-after.json"
check_eq "the same backups with the same locations" \
	"$(jq -c '[.[] | select(.status == "complete") | {id, locations: (.locations | sort)}]' "$T/list-before.json")" \
	"$(jq -c '[.[] | {id, locations: (.locations | sort)}]' "$T/list-after.json")"

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

	# copies_required = 1: the same failure leaves a complete backup in the
	# primary and a pending copy; replicate makes it once there is room.
	sed -i 's/^\[repository\]$/[repository]\ncopies_required = 1/' "$CONF"
	cf backup tree --json
	check_rc "copies_required = 1: a full second target does not fail the backup" 0
	PID_=$(jq -r '.backups[0].id' "$OUT")
	check_grep "a warning says the copy is pending and what makes it" "$ERR" "copy in posix:$SMALL is pending .*coffer replicate $PID_"
	check_eq "the record holds one location" 1 "$(jq '.backups[0].locations | length' "$OUT")"
	check_eq "and one pending copy, with its error" "posix:$SMALL" "$(jq -r '.backups[0].pending[0].location' "$OUT")"
	check_eq "the full target keeps nothing of it" "" "$(find "$SMALL" -type f)"
	check_eq "the primary's manifest lists only the targets holding every object" \
		"[\"posix:$REPO\"]" "$(jq -c .locations "$REPO/tree/$PID_/manifest.json")"
	cf list
	check_grep "list shows 1/2 pending" "$OUT" "$PID_ .* 1/2 pending "
	cf show "$PID_"
	check_grep "show names the pending copy and its target" "$OUT" "^copy: +second +pending +posix:$SMALL \(since "
	check_grep "and the complete one" "$OUT" "^copy: +primary +complete +posix:$REPO\$"
	mount -o remount,size=64m "$SMALL"
	cf replicate "$PID_"
	check_rc "replicate makes the pending copy" 0
	key=$(find "$REPO" -path "*$PID_*" -name 'files.tar.zst.age')
	check_same_file "the copy is byte-identical" "$key" "$SMALL/${key#"$REPO"/}"
	check "it has its manifest" test -f "$SMALL/tree/$PID_/manifest.json"
	cf show "$PID_" --json
	check_eq "the record holds both locations" 2 "$(jq '.locations | length' "$OUT")"
	check_eq "and nothing pending" 0 "$(jq '.pending // [] | length' "$OUT")"
	cf replicate --all
	check_rc "replicate --all copies what this target lacks (the backup made before it was configured)" 0
	check_grep "it made that copy" "$OUT" "^made 1 copy"
	cf replicate --all
	check_rc "replicate --all again" 0
	check_grep "nothing is left to copy" "$OUT" "^made 0 copies"
	cf restore "$PID_" --from second --to "$T/r-replicated"
	check_rc "restore from the replicated copy" 0
	check "it is complete" diff -r "$T/src" "$T/r-replicated/${T#/}/src"

	# The primary is the one that fails: the backup is still listed (with
	# its pending copy) and restored from the second target.
	SMALL2=$T/small2
	mkdir -p "$SMALL2"
	mount -t tmpfs -o size=1m tmpfs "$SMALL2" && t_at_exit "umount '$SMALL2'"
	sed -i "s|^path = $REPO\$|path = $SMALL2|" "$CONF"
	cf backup tree --json
	check_rc "copies_required = 1 with the primary full" 0
	PID2=$(jq -r '.backups[0].id' "$OUT")
	cf list
	check_grep "list shows a backup whose primary copy is pending" "$OUT" "$PID2 .* 1/2 pending "
	cf restore "$PID2" --to "$T/r-primary-pending"
	check_rc "restore of it reads the second target" 0
	check "it is complete" diff -r "$T/src" "$T/r-primary-pending/${T#/}/src"
	sed -i "s|^path = $SMALL2\$|path = $REPO|" "$CONF"
	sed -i '/^copies_required = 1$/d' "$CONF"
fi

# repositories = ...: a source keeps to some targets. A target that cannot
# even be opened (its folder is gone) is a lost copy like one that fails
# part-way: pending when copies_required is met, else the backup fails.
mkdir -p "$T/p3" "$T/dr3" "$T/eu3"
cat >"$T/c3.conf" <<EOF
[repository]
path = $T/p3
copies_required = 2

[repository dr]
path = $T/dr3

[repository eu]
path = $T/eu3

[catalog]
path = $T/cat3

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source tree]
type = files
paths = $T/src
repositories = eu, primary

[source only-dr]
type = files
paths = $T/src
repositories = dr
EOF
cf_conf "$T/c3.conf" backup --json
check_rc "backup of sources that keep to some targets" 0
check_eq "tree went to primary and eu, only-dr to dr (config order)" \
	"posix:$T/p3,posix:$T/eu3 posix:$T/dr3" \
	"$(jq -r '[.backups[] | .locations | join(",")] | join(" ")' "$OUT")"
check_eq "dr holds nothing of tree" "" "$(ls "$T/dr3" | grep -v only-dr)"
check_eq "eu and primary hold nothing of only-dr" "" "$(ls "$T/eu3" "$T/p3" | grep only-dr)"
cf_conf "$T/c3.conf" list
check_grep "list: tree is complete with 2/2" "$OUT" " tree .* 2/2 "
check_grep "list: only-dr with 1/1 (copies_required = 2, but it uses one target)" "$OUT" " only-dr .* 1/1 "
cf_conf "$T/c3.conf" replicate --all
check_rc "replicate --all" 0
check_grep "copies nothing to targets a source does not use" "$OUT" "^made 0 copies"
mv "$T/eu3" "$T/eu3.gone"
cf_conf "$T/c3.conf" backup tree
check_rc "copies_required = 2 with eu's folder gone: the backup fails" 6
check_grep "the error names the target and why" "$ERR" "only 1 of the 2 copies .*$T/eu3"
check_eq "the primary keeps nothing of it" 1 "$(ls "$T/p3/tree" | wc -l)"
sed -i 's/^copies_required = 2$/copies_required = 1/' "$T/c3.conf"
cf_conf "$T/c3.conf" backup tree --json
check_rc "copies_required = 1 with eu's folder gone: the backup completes" 0
PID3=$(jq -r '.backups[0].id' "$OUT")
check_eq "eu is a pending copy" "posix:$T/eu3" "$(jq -r '.backups[0].pending[0].location' "$OUT")"
check_grep "a warning said eu cannot be opened" "$ERR" "repository eu .posix:$T/eu3. cannot be opened: .*does not exist"
mv "$T/eu3.gone" "$T/eu3"
cf_conf "$T/c3.conf" replicate "$PID3"
check_rc "replicate once eu is back" 0
check "eu holds it with its manifest" test -f "$T/eu3/tree/$PID3/manifest.json"
cf_conf "$T/c3.conf" list --json --source only-dr
DRID=$(jq -r '.[0].id' "$OUT")
cf_conf "$T/c3.conf" replicate "$DRID" --to eu
check_rc "replicate ID --to a target the source does not use copies it when asked" 0
check "eu holds only-dr's backup then" test -f "$T/eu3/only-dr/$DRID/manifest.json"

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

	# An S3 primary that cannot be reached: restore reads the second target.
	BUCKET2=$(s3_bucket_name targets2)
	s3_mkbucket "$BUCKET2"
	mkdir -p "$T/second2"
	cat >"$T/c2.conf" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $BUCKET2
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
max_attempts = 1

[repository second]
path = $T/second2

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source tree]
type = files
paths = $T/src
EOF
	chmod 600 "$T/c2.conf"
	cf_conf "$T/c2.conf" backup tree --json
	check_rc "backup into an S3 primary and a posix second" 0
	ID2=$(jq -r '.backups[0].id' "$OUT")
	sed -i "s|^endpoint = .*|endpoint = http://127.0.0.1:9|" "$T/c2.conf"
	cf_conf "$T/c2.conf" restore "$ID2" --to "$T/r-unreachable"
	check_rc "restore with the S3 primary unreachable" 0
	check_grep "it fell over with a warning" "$ERR" "Couldn.t connect.*found .* in repository second"
	check "the restore is complete" diff -r "$T/src" "$T/r-unreachable/${T#/}/src"
else
	t_log "note: the S3 target case needs the S3 harness (run under ctest)"
fi

t_finish
