# test_untrusted_repo: nothing good is ever deleted, and whatever is read from
# the repository is untrusted (issue 10). A backup killed or failing between
# its manifest and its catalog record, a cleanup racing a backup that
# completes, a crafted manifest imported by catalog rebuild; then manifests
# edited in the repository (a name with "..", another backup's object, an
# extra or no object, a tar marked raw, fields left out) and damaged objects
# (deleted, truncated): each is refused with exit 4 before anything is
# written where it does not belong.
. "$(dirname "$0")/lib.sh"
t_setup untrusted_repo

ID_RE='[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8}'
SRC=$T/src
mkdir -p "$SRC/sub"
seq 1 20000 >"$SRC/numbers"
echo hello >"$SRC/sub/hello"
head -c 300000 /dev/urandom >"$T/a.bin"
head -c 200000 /dev/urandom >"$T/b.bin"

t_config <<EOF
[source tree]
type = files
paths = $SRC

[source slow]
type = command
command = sh -c 'head -c 100000 /dev/urandom'
EOF

# fault POINT:ACTION CMD...: runs coffer with COFFER_FAULT set.
fault() {
	local spec=$1
	shift
	COFFER_FAULT=$spec "$COFFER_BIN" --config "$CONF" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}

# ===== the manifest is the commit point =============================================
fault after-manifest:kill backup --stdin killed <"$T/a.bin"
check_rc "kill -9 right after the manifest is stored" 137
KID=$(list_json | jq -r '.[] | select(.source == "killed") | .id')
check_eq "the record is still running" running "$(list_json | jq -r '.[] | select(.source == "killed") | .status')"
cf repo cleanup
check_rc "repo cleanup after the kill" 0
check_grep "cleanup says it recorded the backup complete" "$ERR" \
	"^coffer: warning: backup $KID had stored its manifest when process [0-9]+ ended; recorded it complete"
check_eq "the backup is listed complete" complete "$(list_json | jq -r --arg id "$KID" '.[] | select(.id == $id) | .status')"
check "its manifest is still there" test -f "$REPO/killed/$KID/manifest.json"
"$COFFER_BIN" --config "$CONF" restore "$KID" --stdout >"$T/killed.out" 2>"$ERR"
RC=$?
check_rc "it restores" 0
check_same_file "it restores its data" "$T/a.bin" "$T/killed.out"

fault complete-record:fail backup --stdin unrecorded <"$T/a.bin"
check_rc "a failure of the last catalog update exits 6" 6
check_grep "the error says the backup is complete in the repository" "$ERR" 'is complete in the repository'
UID_=$(list_json | jq -r '.[] | select(.source == "unrecorded") | .id')
cf repo cleanup
check_rc "repo cleanup (the systemd unit's next command)" 0
check_eq "the backup is complete, not deleted" complete \
	"$(list_json | jq -r --arg id "$UID_" '.[] | select(.id == $id) | .status')"
check "its objects are all there" test -f "$REPO/unrecorded/$UID_/stdin.zst.age"

# A dead run whose folder holds a manifest this host does not believe (here:
# its signature removed) is neither recorded complete nor deleted, and does
# not stop the next backups.
fault after-manifest:kill backup --stdin doubted <"$T/a.bin"
check_rc "kill -9 right after another manifest" 137
DID=$(list_json | jq -r '.[] | select(.source == "doubted") | .id')
jq 'del(.signature)' "$REPO/doubted/$DID/manifest.json" >"$T/doubted.json"
cp "$T/doubted.json" "$REPO/doubted/$DID/manifest.json"
cf backup --stdin after-doubt <"$T/b.bin"
check_rc "the next backup goes on" 0
check_grep "it says why it cannot record the dead run" "$ERR" "cannot record backup $DID as complete: .*not signed"
check "the doubted backup's objects are kept" test -f "$REPO/doubted/$DID/stdin.zst.age"
check "and its manifest" test -f "$REPO/doubted/$DID/manifest.json"
check_eq "its record stays running" running \
	"$(list_json | jq -r --arg id "$DID" '.[] | select(.id == $id) | .status')"
rm -rf "${REPO:?}/doubted"
cf repo cleanup
check_rc "once its folder is gone, cleanup marks it failed" 0

# ===== cleanup racing a backup that completes ======================================
# The backup stops before its manifest; cleanup lists the repository (a
# folder without a manifest), then pauses while the backup completes.
race() {
	local conf=$1 what=$2
	COFFER_FAULT=before-manifest:pause "$COFFER_BIN" --config "$CONF" backup --stdin "race$3" \
		<"$T/b.bin" >"$T/race.out" 2>&1 &
	local bpid=$!
	for _ in $(seq 200); do
		[ -n "$(find "$REPO/race$3" -name 'stdin.zst.age' 2>/dev/null)" ] && break
		sleep 0.05
	done
	COFFER_FAULT=cleanup-listed:pause "$COFFER_BIN" --config "$conf" repo cleanup --older-than 0 \
		>"$OUT" 2>"$ERR"
	RC=$?
	wait $bpid
	check_eq "race ($what): the backup exits 0" 0 $?
	check_rc "race ($what): cleanup --older-than 0 exits 0" 0
	local id
	id=$(list_json | jq -r --arg s "race$3" '.[] | select(.source == $s) | .id')
	check "race ($what): the completed backup keeps its object" test -f "$REPO/race$3/$id/stdin.zst.age"
	check "race ($what): and its manifest" test -f "$REPO/race$3/$id/manifest.json"
	"$COFFER_BIN" --config "$CONF" restore "$id" --stdout >"$T/race.bin" 2>"$ERR"
	check_same_file "race ($what): it restores" "$T/b.bin" "$T/race.bin"
}
race "$CONF" "same host" 1
# Another host sharing the repository has no record of the run: only the
# check for a manifest at the moment of deletion protects it.
sed -e "s|^path = $CATALOG\$|path = $T/other-catalog|" "$CONF" >"$T/other.conf"
race "$T/other.conf" "another host's cleanup" 2

# ===== catalog rebuild imports no host-local state ===============================
cf backup tree
check_rc "a backup of the tree" 0
TREE_ID=$(last_id tree)
cf backup --stdin evil <"$T/a.bin"
EVIL_ID=$(last_id evil)
M=$REPO/evil/$EVIL_ID/manifest.json
HOST=$(hostname)
jq --arg h "$HOST" '.status = "running" | .pid = 999999 | .host = $h | .prefix = ""' "$M" >"$T/m" && cp "$T/m" "$M"
rm -rf "$CATALOG"
cf catalog rebuild
check_rc "rebuild with a crafted manifest (running, prefix \"\")" 0
check_grep "rebuild skips the edited manifest: its signature fails" "$ERR" "skipping manifest .*evil/$EVIL_ID/manifest.json: .*signature does not verify"
cf catalog rebuild --trust-unsigned
check_rc "rebuild --trust-unsigned with the crafted manifest" 0
check_grep "even trusted, the crafted manifest is skipped for its prefix" "$ERR" "skipping manifest .*evil/$EVIL_ID/manifest.json: .*prefix"
check_eq "nothing is recorded running" 0 "$(list_json | jq '[.[] | select(.status == "running")] | length')"
cf backup --stdin after <"$T/b.bin"
check_rc "the next backup" 0
check "the other backups' objects are all still there" test -f "$REPO/tree/$TREE_ID/files.tar.zst.age"
check "the killed-then-repaired backup is still there" test -f "$REPO/killed/$KID/stdin.zst.age"

# ===== crafted manifests ==========================================================
cf backup --stdin a <"$T/a.bin"
A_ID=$(last_id a)
cf backup --stdin b <"$T/b.bin"
B_ID=$(last_id b)
MA=$REPO/a/$A_ID/manifest.json
cp "$MA" "$T/ma.orig"

# crafted DESC JQ-FILTER: rewrites a's manifest, restores it with this
# host's catalog and from a fresh catalog (a new host), expecting exit 4
# and nothing written; then puts the manifest back.
crafted() {
	local desc=$1 filter=$2 stdout_rc=${3:-4} mode
	jq "$filter" "$T/ma.orig" >"$MA" || fail "$desc: jq"
	# Each edit breaks the manifest's signature; --trust-unsigned gets past
	# that to the checks of the contents themselves.
	for mode in catalog fresh catalog+trust-unsigned fresh+trust-unsigned; do
		local conf=$CONF trust=
		case $mode in *trust-unsigned) trust=--trust-unsigned ;; esac
		if [ "${mode%%+*}" = fresh ]; then
			rm -rf "$T/fresh-catalog"
			sed -e "s|^path = $CATALOG\$|path = $T/fresh-catalog|" "$CONF" >"$T/fresh.conf"
			conf=$T/fresh.conf
		fi
		rm -rf "$T/out" "$T/x" /tmp/coffer-untrusted-x
		mkdir -p "$T/out"
		cf_conf "$conf" restore "$A_ID" --to "$T/out/dir" $trust
		check_rc "$desc ($mode): restore --to exits 4" 4
		check_one_error_line "$desc ($mode): one error line"
		check_absent "$desc ($mode): no DIR" "$T/out/dir"
		check_empty_output "$desc ($mode): nothing beside DIR" find "$T/out" -mindepth 1
		check_absent "$desc ($mode): nothing outside DIR" "$T/x"
		check_absent "$desc ($mode): nothing in /tmp" /tmp/coffer-untrusted-x
		"$COFFER_BIN" --config "$conf" restore "$A_ID" --stdout $trust >"$T/stdout.bin" 2>"$ERR"
		RC=$?
		check_rc "$desc ($mode): restore --stdout fails" 4 $stdout_rc
		check_eq "$desc ($mode): restore --stdout wrote nothing" 0 "$(stat -c %s "$T/stdout.bin")"
	done
	cp "$T/ma.orig" "$MA"
}
crafted "a name with .." '.objects[0].name = "../../x"'
crafted "an absolute name" '.objects[0].name = "/tmp/coffer-untrusted-x"'
BOBJ=$("$COFFER_BIN" --config "$CONF" show "$B_ID" --json | jq -c '.objects[0]')
crafted "another backup's object, size and digest" ".objects[0] = $BOBJ"
crafted "another backup's key with this name" \
	".objects[0].key = \"b/$B_ID/stdin.zst.age\" | .objects[0].stored_bytes = $(echo "$BOBJ" | jq .stored_bytes) | .objects[0].sha256 = $(echo "$BOBJ" | jq .sha256)"
crafted "no objects" '.objects = []'
# (a new host cannot tell an extra entry from a real one until it finds no
# object behind it; with two objects, --stdout asks which: exit 2)
crafted "an extra object" '.objects += [.objects[0] | .name = "extra" | .key = (.key | sub("stdin"; "extra"))]' 2
crafted "an object without format" '.objects[0] |= del(.format)'
crafted "an object without name" '.objects[0] |= del(.name)'
crafted "an object without sha256" '.objects[0] |= del(.sha256)'
crafted "a raw object marked tar" '.objects[0].format = "tar"'
crafted "a key with .." '.objects[0].key = "a/../b/'"$B_ID"'/stdin.zst.age"'

cf restore "$A_ID" --to "$T/good"
check_rc "the untouched manifest restores again" 0
check_same_file "with the right data" "$T/a.bin" "$T/good/stdin"

# ===== damaged objects ============================================================
OBJ=$REPO/a/$A_ID/stdin.zst.age
cp "$OBJ" "$T/obj.orig"
head -c 1000 "$T/obj.orig" >"$OBJ"
"$COFFER_BIN" --config "$CONF" restore "$A_ID" --stdout >"$T/stdout.bin" 2>"$ERR"
RC=$?
check_rc "a truncated object: restore --stdout exits 4" 4
check_eq "a truncated object: nothing written to stdout" 0 "$(stat -c %s "$T/stdout.bin")"
check_grep "a truncated object: the error says so" "$ERR" 'truncated, extended or replaced'
rm -f "$OBJ"
"$COFFER_BIN" --config "$CONF" restore "$A_ID" --stdout >"$T/stdout.bin" 2>"$ERR"
RC=$?
check_rc "a deleted object: restore exits 4" 4
check_grep "a deleted object: the error says it is missing" "$ERR" 'is missing from'
cp "$T/obj.orig" "$OBJ"
rm -f "$MA"
cf restore "$A_ID" --stdout
check_rc "a deleted manifest of a cataloged backup: exit 4" 4
cp "$T/ma.orig" "$MA"

# A folder of the repository replaced by a symlink to a copy elsewhere, and
# a FIFO where an object should be: neither is followed nor waited on.
mv "$REPO/a" "$T/a-real"
ln -s "$T/a-real" "$REPO/a"
"$COFFER_BIN" --config "$CONF" restore "$A_ID" --stdout >"$T/stdout.bin" 2>"$ERR"
RC=$?
check_rc "a symlinked folder in the repository is not followed (exit 4)" 4
rm "$REPO/a"
mv "$T/a-real" "$REPO/a"
mv "$OBJ" "$T/obj.keep"
mkfifo "$OBJ"
timeout 20 "$COFFER_BIN" --config "$CONF" restore "$A_ID" --stdout >"$T/stdout.bin" 2>"$ERR"
RC=$?
check_rc "a FIFO in place of an object is refused at once (exit 4, no hang)" 4
rm -f "$OBJ"
mv "$T/obj.keep" "$OBJ"

# The restored folder's mode follows the umask.
for mask in 077 022; do
	rm -rf "$T/um"
	(umask $mask && "$COFFER_BIN" --config "$CONF" restore "$A_ID" --to "$T/um" >/dev/null 2>"$ERR")
	check_eq "restore --to under umask $mask makes the folder $(printf '%o' $((0777 & ~0$mask)))" \
		"$(printf '%o' $((0777 & ~0$mask)))" "$(stat -c %a "$T/um" 2>/dev/null)"
done

# A tar whose member climbs out with "..": the object is real age and zstd,
# so only the extraction can refuse it.
mkdir -p "$T/evil-tree"
echo evil >"$T/evil-tree/f"
tar -C "$T/evil-tree" --transform 's|^f$|../../evil-escape|' -cf "$T/evil.tar" f
zstd -q -c "$T/evil.tar" | age -r "$RECIPIENT" >"$T/evil.tar.zst.age"
TOBJ=$(jq -r '.objects[0].key' "$REPO/tree/$TREE_ID/manifest.json")
cp "$REPO/$TOBJ" "$T/tree.orig.keep"
rm -rf "$CATALOG.fresh"
sed -e "s|^path = $CATALOG\$|path = $CATALOG.fresh|" "$CONF" >"$T/fresh2.conf"
SIZE=$(stat -c %s "$T/evil.tar.zst.age")
SUM=$(sha256sum "$T/evil.tar.zst.age" | cut -d' ' -f1)
RAW=$(stat -c %s "$T/evil.tar")
MT=$REPO/tree/$TREE_ID/manifest.json
cp "$MT" "$T/mt.orig"
jq --argjson s "$SIZE" --arg h "$SUM" --argjson r "$RAW" \
	'.objects[0].stored_bytes = $s | .objects[0].sha256 = $h | .objects[0].raw_bytes = $r' "$T/mt.orig" >"$MT"
cp "$T/evil.tar.zst.age" "$REPO/$TOBJ"
mkdir -p "$T/deep/a/b"
cf_conf "$T/fresh2.conf" restore "$TREE_ID" --to "$T/deep/a/b/out" --trust-unsigned
check_rc "a tar member with ..: exit 4 (an integrity failure, not I/O)" 4
check_absent "a tar member with ..: nothing escaped" "$T/deep/evil-escape"
check_absent "a tar member with ..: no DIR" "$T/deep/a/b/out"
cp "$T/tree.orig.keep" "$REPO/$TOBJ"
cp "$T/mt.orig" "$MT"

# ===== signed manifests ===========================================================
cf keygen --signing
check_rc "keygen --signing prints this host's public key" 0
OWN_KEY=$(cat "$OUT")
check_grep "it is an ed25519 key" "$OUT" '^ed25519:[A-Za-z0-9+/]{43}=$'
check_eq "the key file beside the catalog is 0600" 600 "$(stat -c %a "$T/signing.key")"
check "every manifest carries a signature by it" grep -qF "\"key\": \"$OWN_KEY\"" "$REPO/a/$A_ID/manifest.json"
# Another backup host (its own catalog folder, so its own key) writing to
# the same repository.
mkdir -p "$T/host2"
sed -e "s|^path = $CATALOG\$|path = $T/host2/catalog|" "$CONF" >"$T/host2.conf"
cf_conf "$T/host2.conf" backup --stdin host2 <"$T/b.bin"
check_rc "a backup made by a second host" 0
H2_ID=$(last_id host2 complete "$T/host2.conf")
H2_KEY=$("$COFFER_BIN" --config "$T/host2.conf" keygen --signing)
check "the second host has another key" test "$H2_KEY" != "$OWN_KEY"
cf restore "$H2_ID" --stdout
check_rc "this host refuses the other host's manifest (not in trusted_signers)" 4
check_grep "the error names the key and the fix" "$ERR" "is signed by $(printf '%s' "$H2_KEY" | sed 's/[+/]/./g'), which is not in \[encryption\] trusted_signers"
sed -e "s|^recipients = .*|&\ntrusted_signers = $H2_KEY|" "$CONF" >"$T/trusting.conf"
cf_conf "$T/trusting.conf" restore "$H2_ID" --to "$T/h2"
check_rc "with trusted_signers = its key, it restores" 0
check_same_file "with the right data" "$T/b.bin" "$T/h2/stdin"
# An unsigned manifest (as an older coffer, or someone with write access,
# would write) is refused unless --trust-unsigned.
MB=$REPO/b/$B_ID/manifest.json
cp "$MB" "$T/mb.orig"
jq 'del(.signature)' "$T/mb.orig" >"$MB"
cf restore "$B_ID" --stdout
check_rc "an unsigned manifest is refused" 4
check_grep "the error says it is not signed" "$ERR" 'is not signed.*--trust-unsigned'
"$COFFER_BIN" --config "$CONF" restore "$B_ID" --stdout --trust-unsigned >"$T/unsigned.bin" 2>"$ERR"
RC=$?
check_rc "--trust-unsigned restores it" 0
check_grep "with a warning" "$ERR" '^coffer: warning: manifest .* is not signed; trusted because of --trust-unsigned'
check_same_file "--trust-unsigned: the right data" "$T/b.bin" "$T/unsigned.bin"
cp "$T/mb.orig" "$MB"
chmod 644 "$T/signing.key"
cf backup --stdin exposed <"$T/b.bin"
check_rc "a backup with a signing key readable by others is refused" 4
check_grep "the error says chmod 600" "$ERR" 'chmod 600'
chmod 600 "$T/signing.key"

# ===== a damaged catalog: one line, and rebuild starts over =========================
for size in 8192 12288; do
	rm -rf "$T/dcat" "$T"/dcat.damaged-*
	cp -r "$CATALOG" "$T/dcat"
	truncate -s "$size" "$T/dcat/data.mdb"
	sed -e "s|^path = $CATALOG\$|path = $T/dcat|" "$CONF" >"$T/dcat.conf"
	cf_conf "$T/dcat.conf" list
	check_rc "catalog cut to $size bytes: list exits 7 (no SIGBUS)" 7
	check_one_error_line "catalog cut to $size bytes: one error line"
	check_grep "catalog cut to $size bytes: the line names the fix" "$ERR" \
		"catalog at $T/dcat is damaged.*move the folder aside and run 'coffer catalog rebuild'"
	cf_conf "$T/dcat.conf" catalog rebuild
	check_rc "catalog cut to $size bytes: rebuild works" 0
	check "catalog cut to $size bytes: the damaged one is kept aside" test -d "$(echo "$T"/dcat.damaged-*)"
	check_eq "catalog cut to $size bytes: the rebuilt catalog lists the tree backup" "$TREE_ID" \
		"$(list_json "$T/dcat.conf" | jq -r --arg id "$TREE_ID" '.[] | select(.id == $id) | .id')"
done

# ===== secrets: never in a child's environment, never left on disk =================
mkdir -p "$T/bin" "$T/tmp"
printf 'pw-%s\n' "$RANDOM" >"$T/mongo.pass"
cat >"$T/bin/mongodump" <<'STUB'
#!/bin/sh
[ "$1" = --version ] && { echo 'mongodump version: 100.9.4'; exit 0; }
head -c 1000 /dev/urandom
sleep 30
STUB
chmod +x "$T/bin/mongodump"
t_config "$T/secrets.conf" <<CONF
[source mongo]
type = mongodb
user = backup
password_file = $T/mongo.pass
mongodump = $T/bin/mongodump

[source env]
type = command
command = env

[source env-pass]
type = command
command = env
pass_env = COFFER_TEST_PASSED
CONF
TMPDIR=$T/tmp "$COFFER_BIN" --config "$T/secrets.conf" backup mongo >/dev/null 2>&1 &
MPID=$!
for _ in $(seq 200); do
	[ -n "$(find "$T/tmp" -mindepth 2 -type f 2>/dev/null)" ] && break
	sleep 0.05
done
check "the password file is in a private folder while the dump runs" \
	test -n "$(find "$T/tmp" -mindepth 1 -maxdepth 1 -type d -name 'coffer-secrets.*' -perm 700)"
kill -9 $MPID
wait $MPID 2>/dev/null
pkill -f "$T/bin/mongodump" 2>/dev/null
check "kill -9 leaves it behind" test -n "$(find "$T/tmp" -mindepth 2 -type f)"
TMPDIR=$T/tmp "$COFFER_BIN" --config "$T/secrets.conf" repo cleanup >"$OUT" 2>"$ERR"
RC=$?
check_rc "repo cleanup" 0
check_empty_output "repo cleanup removed the dead run's secrets" find "$T/tmp" -mindepth 1

AWS_SECRET_ACCESS_KEY=leak-me-not AWS_ACCESS_KEY_ID=AKIDLEAK COFFER_TEST_PASSED=yes \
	"$COFFER_BIN" --config "$T/secrets.conf" backup env env-pass >"$OUT" 2>"$ERR"
RC=$?
check_rc "backups of 'env'" 0
for s in env env-pass; do
	id=$(last_id "$s" complete "$T/secrets.conf")
	"$COFFER_BIN" --config "$T/secrets.conf" restore "$id" --stdout >"$T/$s.env" 2>"$ERR"
	check_no_grep "$s: coffer's AWS credentials are not in a command's environment" "$T/$s.env" 'AWS_|leak-me-not|AKIDLEAK'
	check_grep "$s: PATH is" "$T/$s.env" '^PATH='
done
check_no_grep "env: other variables are not passed" "$T/env.env" '^COFFER_TEST_PASSED='
check_grep "env-pass: pass_env passes one" "$T/env-pass.env" '^COFFER_TEST_PASSED=yes$'

t_finish
