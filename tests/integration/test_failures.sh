# test_failures: what coffer does when things go wrong. A failing dump
# command, a backup killed with SIGKILL or stopped with SIGTERM, repository
# cleanup, a wrong identity, unknown ids, damaged objects, bad configuration,
# keygen's refusal to overwrite, and a full repository filesystem. Each case
# checks the exit status, the single error line, and that nothing that looks
# like a complete backup (or a restored folder) is left behind.
. "$(dirname "$0")/lib.sh"
t_setup failures

ID_RE='[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8}'

t_config <<'EOF'
[source bad]
type = command
command = sh -c 'head -c 5000000 /dev/urandom; echo boom >&2; exit 3'

[source slow]
type = command
command = sh -c 'for i in $(seq 100); do head -c 100000 /dev/urandom; sleep 0.1; done'

[source slow2]
type = command
command = sh -c 'for i in $(seq 25); do head -c 100000 /dev/urandom; sleep 0.1; done'

[source quick]
type = command
command = echo quick
EOF

# background_backup SOURCE: starts `coffer backup SOURCE` in the background;
# sets BG_PID, and BG_CHILD to the pid of its command once it runs.
background_backup() {
	"$COFFER_BIN" --config "$CONF" backup "$1" >"$T/bg.out" 2>"$T/bg.err" &
	BG_PID=$!
	BG_CHILD=
	for _ in $(seq 50); do
		BG_CHILD=$(pgrep -P "$BG_PID" | head -n 1)
		[ -n "$BG_CHILD" ] && break
		sleep 0.1
	done
}

# ===== (a) a command that fails half-way =======================================
t_log "# (a) command exits 3 after 5 MB"
cf backup bad
check_rc "(a) backup of a failing command exits 5" 5
check_one_error_line "(a) one error line"
check_grep "(a) the error line gives the exit status 3 and the command's stderr" "$ERR" \
	'^coffer: error: .*status 3.*boom'
check_eq "(a) list shows the run as failed" 1 "$(count_status bad failed)"
check_eq "(a) list shows no complete backup of the source" 0 "$(count_status bad complete)"
check_eq "(a) list shows no running backup of the source" 0 "$(count_status bad running)"
FAILED_ID=$(last_id bad failed)
check_grep "(a) backup printed the failed record" "$OUT" "^$FAILED_ID +bad +failed"
check_empty_output "(a) no object of the failed run is left in the repository" \
	find "$REPO" -path "$REPO/bad/*" -type f
cf show "$FAILED_ID"
check_grep "(a) show gives the failure's reason" "$OUT" '^error: .*status 3.*boom'
cf restore "$FAILED_ID" --stdout
check_rc "(a) restore of the failed backup is 'not found'" 3

# ===== (b) SIGTERM, then SIGKILL during a backup, then cleanup ===================
t_log "# (b) interrupted backups"
background_backup slow2
sleep 1
kill -TERM "$BG_PID"
wait "$BG_PID"
RC=$?
cp "$T/bg.err" "$ERR"
check_rc "(b) SIGTERM during a backup exits 130" 130
check_grep "(b) the error line says it was interrupted" "$ERR" '^coffer: error: .*interrupt'
check_eq "(b) the interrupted run is listed as failed" 1 "$(count_status slow2 failed)"
check_eq "(b) the interrupted run is not left running" 0 "$(count_status slow2 running)"
check_empty_output "(b) the interrupted run left no file in the repository" \
	find "$REPO" -path "$REPO/slow2/*"
if [ -z "$BG_CHILD" ]; then
	fail "(b) coffer stops its command when interrupted" "could not find the command's pid"
elif kill -0 "$BG_CHILD" 2>/dev/null && sleep 1 && kill -0 "$BG_CHILD" 2>/dev/null; then
	fail "(b) coffer stops its command when interrupted" "pid $BG_CHILD still runs"
	kill -9 "$BG_CHILD"
else
	pass "(b) coffer stops its command when interrupted"
fi

background_backup slow
sleep 1.5
check_grep "(b) while the backup runs, list shows it running" <(list_json | jq -r '.[] | "\(.source) \(.status)"') \
	'^slow running$'
TMPS=$(find "$REPO" -name '.*.tmp.*' | wc -l)
check "(b) while the backup runs, its temporary object exists" test "$TMPS" -ge 1
kill -9 "$BG_PID"
{ wait "$BG_PID"; } 2>/dev/null
[ -z "$BG_CHILD" ] || kill -9 "$BG_CHILD" 2>/dev/null
check_eq "(b) after kill -9 there is no complete backup of the run" 0 "$(count_status slow complete)"
DEAD_ID=$(last_id slow running)
check "(b) after kill -9 the run is still recorded as running" test -n "$DEAD_ID"

cf backup quick
check_rc "(b) the next backup works" 0
check_eq "(b) the next backup marks the dead run failed" 1 "$(count_status slow failed)"
check_eq "(b) ... and no run of the source is left running" 0 "$(count_status slow running)"
cf show "$DEAD_ID"
check_grep "(b) the dead run's error says it was interrupted" "$OUT" '^error: .*interrupted'

cf repo cleanup --older-than 0
check_rc "(b) repo cleanup --older-than 0" 0
check_empty_output "(b) after cleanup no temporary file is left" find "$REPO" -name '.*tmp*'
check_empty_output "(b) after cleanup every backup folder has a manifest.json" dirs_without_manifest "$REPO"
QUICK_ID=$(last_id quick)
cf restore "$QUICK_ID" --stdout
check_eq "(b) cleanup leaves the complete backup restorable" quick "$(cat "$OUT")"

# "0 removes all not in use": a backup running during cleanup must survive it.
background_backup slow2
sleep 1
cf repo cleanup --older-than 0
check_rc "(b) repo cleanup --older-than 0 while a backup runs" 0
wait "$BG_PID"
RC=$?
cp "$T/bg.err" "$ERR"
check_rc "(b) a backup running during cleanup --older-than 0 still succeeds" 0
RUNNING_ID=$(last_id slow2)
check "(b) ... and is complete" test -n "$RUNNING_ID"

# ===== (c) wrong identity ============================================================
t_log "# (c) restore with a wrong identity"
head -c 1000000 /dev/urandom >"$T/blob"
cf backup --stdin blob <"$T/blob"
check_rc "(c) backup --stdin blob" 0
BLOB_ID=$(last_id blob)
"$COFFER_BIN" keygen -o "$T/other-key.txt" >/dev/null
cf restore "$BLOB_ID" --to "$T/wrong" --identity "$T/other-key.txt"
check_rc "(c) restore with another identity exits 4" 4
check_one_error_line "(c) one error line"
check_grep "(c) the error says the identity does not match" "$ERR" '^coffer: error: .*(identit|recipient|key)'
check_absent "(c) the target folder does not exist afterwards" "$T/wrong"
check_empty_output "(c) no .coffer-restore folder is left" find "$T" -maxdepth 1 -name '.wrong.coffer-restore*'
cf restore "$BLOB_ID" --stdout --identity "$T/other-key.txt"
check_rc "(c) restore --stdout with another identity exits 4" 4
check_eq "(c) ... and writes nothing" 0 "$(stat -c %s "$OUT")"
cf restore "$BLOB_ID" --stdout
check_same_file "(c) the right identity restores the blob" "$T/blob" "$OUT"

# ===== (d) ids that do not exist ======================================================
t_log "# (d) unknown ids"
cf restore 20200101T000000.000Z-00000000 --to "$T/missing"
check_rc "(d) restore of a well-formed id that does not exist exits 3" 3
check_one_error_line "(d) one error line"
check_absent "(d) the target folder is not created" "$T/missing"
cf restore not-an-id --stdout
check_rc "(d) restore of a malformed id exits 3" 3
check_one_error_line "(d) one error line"
cf restore ../../etc --stdout
check_rc "(d) restore of a path-like id exits 3" 3
cf show 20200101T000000.000Z-00000000
check_rc "(d) show of an unknown id exits 3" 3

# ===== (e) damaged objects ============================================================
t_log "# (e) damaged objects"
OBJ=$(object_path "$BLOB_ID")
cp "$OBJ" "$T/obj.orig"
SIZE=$(stat -c %s "$OBJ")

# flip OFFSET: xor one byte of the stored object.
flip() { flip_byte "$OBJ" "$1"; }

# damaged DESC: restore must fail with 4 and leave nothing; then the
# original object is put back.
damaged() {
	cf restore "$BLOB_ID" --to "$T/damaged"
	check_rc "(e) $1: restore --to exits 4" 4
	check_one_error_line "(e) $1: one error line"
	check_absent "(e) $1: the target folder does not exist" "$T/damaged"
	check_empty_output "(e) $1: no .coffer-restore folder is left" \
		find "$T" -maxdepth 1 -name '.damaged.coffer-restore*'
	cf restore "$BLOB_ID" --stdout
	check_rc "(e) $1: restore --stdout exits 4" 4
	cp "$T/obj.orig" "$OBJ"
}

flip $((SIZE / 2))
damaged "a flipped byte in the middle"
flip 30
damaged "a flipped byte in the header"
flip $((SIZE - 1))
damaged "a flipped last byte"
truncate -s $((SIZE - 1000)) "$OBJ"
damaged "an object cut short by 1000 bytes"
head -c 100 /dev/urandom >>"$OBJ"
damaged "100 bytes appended to the object"
cf restore "$BLOB_ID" --stdout
check_same_file "(e) the undamaged object restores again" "$T/blob" "$OUT"

# A manifest that lies about the object's SHA-256 (object intact).
MAN=$REPO/blob/$BLOB_ID/manifest.json
cp "$MAN" "$T/manifest.orig"
python3 - "$MAN" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
s = m["objects"][0]["sha256"]
m["objects"][0]["sha256"] = ("0" if s[0] != "0" else "1") + s[1:]
json.dump(m, open(sys.argv[1], "w"), indent=2)
PY
cf restore "$BLOB_ID" --to "$T/damaged"
check_rc "(e) an object whose SHA-256 does not match the manifest: exit 4" 4
check_absent "(e) ... and the target folder does not exist" "$T/damaged"
cp "$T/manifest.orig" "$MAN"

# ===== (f) bad configuration ===========================================================
t_log "# (f) bad configuration"
# badconf DESC SED-SCRIPT PATTERN: edits the default configuration, runs
# `coffer list` on it, expects exit 2 and "FILE:LINE" where LINE is the first
# line matching PATTERN.
badconf() {
	local desc=$1 file=$T/bad.conf line
	sed "$2" "$CONF" >"$file"
	line=$(grep -n -m1 -- "$3" "$file" | cut -d: -f1)
	cf_conf "$file" list
	check_rc "(f) $desc: exit 2" 2
	check_one_error_line "(f) $desc: one error line"
	check_grep "(f) $desc: the error names $(basename "$file"):$line" "$ERR" "^coffer: error: .*$file:$line\\b"
}
badconf "unknown key in [repository]" '/^\[repository\]/a colour = blue' '^colour'
badconf "unknown key in a source" '/^command = echo quick/a colour = blue' '^colour'
badconf "unknown section" '$a [sauce x]\ntype = files' '^\[sauce'
badconf "unknown section without keys" '$a [sauce y]' '^\[sauce'
badconf "a [source] section without keys" '$a [source empty]' '^\[source empty'
badconf "level = 99" 's/^level = 3/level = 99/' '^level'
badconf "workers = 65" 's/^workers = auto/workers = 65/' '^workers'
badconf "a recipient that is not age1..." 's/^recipients = .*/recipients = age1nope/' '^recipients'
badconf "repository type s4" 's/^type = posix/type = s4/' '^type = s4'

sed "s|^path = $REPO\$|path = $T/no-such-repo|" "$CONF" >"$T/norepo.conf"
cf_conf "$T/norepo.conf" backup quick
check_rc "(f) backup to a missing repository folder exits 3 or 6" 3 6
check_one_error_line "(f) missing repository: one error line"
check_grep "(f) missing repository: the error names the path" "$ERR" "^coffer: error: .*$T/no-such-repo"
check_absent "(f) missing repository: the folder is not created" "$T/no-such-repo"
cf_conf "$T/norepo.conf" restore "$BLOB_ID" --to "$T/norepo-restore"
check_rc "(f) restore from a missing repository folder exits 3 or 6" 3 6
check_grep "(f) missing repository (restore): the error names the path" "$ERR" "$T/no-such-repo"

cf_conf "$T/no-such.conf" list
check_rc "(f) a missing configuration file exits 3" 3
check_grep "(f) missing configuration: the error names the file" "$ERR" "^coffer: error: .*$T/no-such.conf"

# ===== (g) keygen ========================================================================
t_log "# (g) keygen"
NEWKEY=$T/new-key.txt
(umask 000 && "$COFFER_BIN" keygen -o "$NEWKEY" >"$T/new-key.recipient" 2>"$ERR")
RC=$?
check_rc "(g) keygen -o FILE" 0
check_eq "(g) the identity file has mode 0600 (even with umask 000)" 600 "$(stat -c %a "$NEWKEY")"
check_grep "(g) keygen -o prints the recipient" "$T/new-key.recipient" '^age1[02-9ac-hj-np-z]{58}$'
check_eq "(g) age-keygen -y derives the same recipient from the file" \
	"$(cat "$T/new-key.recipient")" "$(age-keygen -y "$NEWKEY" 2>&1)"
SUM=$(sha256sum "$NEWKEY")
cf keygen -o "$NEWKEY"
if [ "$RC" != 0 ]; then pass "(g) keygen -o refuses an existing file (exit $RC)"; else fail "(g) keygen -o refuses an existing file" "exit 0"; fi
check_one_error_line "(g) refusal: one error line"
check_eq "(g) the existing identity file is unchanged" "$SUM" "$(sha256sum "$NEWKEY")"
cf keygen
check_rc "(g) keygen without -o" 0
check_grep "(g) keygen without -o prints an identity" "$OUT" '^AGE-SECRET-KEY-1[0-9A-Z]{58}$'

# ===== (h) full repository filesystem =====================================================
t_log "# (h) full disk"
SMALL=$T/small
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=2m tmpfs "$SMALL" 2>"$T/mount.err"; then
	t_log "note: (h) skipped: cannot mount a tmpfs ($(cat "$T/mount.err"))"
else
	t_at_exit "umount '$SMALL'"
	sed -e "s|^path = $REPO\$|path = $SMALL|" -e "s|^path = $CATALOG\$|path = $T/catalog-small|" \
		"$CONF" >"$T/small.conf"
	cat >>"$T/small.conf" <<'EOF'

[source big]
type = command
command = head -c 10000000 /dev/urandom
EOF
	cf_conf "$T/small.conf" backup big
	check_rc "(h) backup of 10 MB into a 2 MB filesystem exits 6" 6
	check_one_error_line "(h) one error line"
	check_grep "(h) the error says there is no space" "$ERR" '^coffer: error: .*([Nn]o space|full)'
	check_eq "(h) no complete backup of the source is listed" 0 "$(count_status big complete "$T/small.conf")"
	check_eq "(h) the run is listed as failed" 1 "$(count_status big failed "$T/small.conf")"
	check_empty_output "(h) no file is left in the repository" find "$SMALL" -type f
	cf_conf "$T/small.conf" backup quick
	check_rc "(h) a small backup fits afterwards (the space was freed)" 0
	umount "$SMALL" && pass "(h) umount" || fail "(h) umount"
fi

t_finish
