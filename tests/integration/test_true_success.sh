# test_true_success: coffer never reports a success that is not true (issue
# 9). Each case is one way a backup or a restore used to look complete when it
# was not: a restore onto a filesystem that fills up (every restore form), a
# restore interrupted by Ctrl-C or killed with SIGKILL, unreadable paths, a
# command with no output, an error text that is not UTF-8, a catalog rebuilt
# after manifests went away, two repositories sharing one catalog, a killed
# backup's leftovers, and a secret key pasted where a recipient belongs.
. "$(dirname "$0")/lib.sh"
t_setup true_success

[ "$(id -u)" = 0 ] || t_skip "needs root (mounts a small tmpfs)"

ID_RE='[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8}'
SRC=$T/src
mkdir -p "$SRC/dir"
head -c 3000000 /dev/urandom >"$SRC/random1"
head -c 3000000 /dev/urandom >"$SRC/random2"
for i in $(seq 1 200); do echo "file $i" >"$SRC/dir/f$i"; done
sqlite3 "$T/app.db" "CREATE TABLE t(x); INSERT INTO t SELECT randomblob(1000) FROM generate_series(1, 5000);" 2>/dev/null ||
	python3 -c "
import sqlite3, os
c = sqlite3.connect('$T/app.db')
c.execute('CREATE TABLE t(x)')
c.executemany('INSERT INTO t VALUES (?)', [(os.urandom(1000),) for _ in range(5000)])
c.commit()"

t_config <<EOF
[source tree]
type = files
paths = $SRC

[source app]
type = sqlite
path = $T/app.db
EOF

cf backup tree
check_rc "backup of the tree" 0
TREE_ID=$(last_id tree complete)
cf backup app
check_rc "backup of the sqlite database" 0
APP_ID=$(last_id app complete)
head -c 6000000 /dev/urandom >"$T/stdin.bin"
cf backup --stdin raw <"$T/stdin.bin"
check_rc "backup of standard input" 0
RAW_ID=$(last_id raw complete)

# leftovers DIR: hidden restore folders and temporary files in DIR.
leftovers() { find "$1" -maxdepth 1 -name '*coffer-restore*'; }

# ===== restore onto a filesystem that fills up ===================================
SMALL=$T/small
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=4m tmpfs "$SMALL" 2>"$T/mount.err"; then
	t_log "note: the full-disk cases are skipped: cannot mount a tmpfs ($(cat "$T/mount.err"))"
else
	t_at_exit "umount '$SMALL'"
	cf restore "$TREE_ID" --to "$SMALL/tree"
	check_rc "files restore --to DIR onto a full disk exits 6" 6
	check_one_error_line "files restore onto a full disk: one error line"
	check_grep "the error names the file and the full disk" "$ERR" \
		'^coffer: error: .*cannot write .*random[12].*No space left on device'
	check_absent "no DIR after the failed files restore" "$SMALL/tree"
	check_empty_output "no hidden restore folder is left" leftovers "$SMALL"

	cf restore "$RAW_ID" --to "$SMALL/raw"
	check_rc "stdin restore --to DIR onto a full disk exits 6" 6
	check_one_error_line "stdin restore onto a full disk: one error line"
	check_absent "no DIR after the failed stdin restore" "$SMALL/raw"
	check_empty_output "no hidden restore folder is left (stdin)" leftovers "$SMALL"

	cf restore "$APP_ID" --to "$SMALL/app.db"
	check_rc "sqlite restore --to FILE onto a full disk exits 6" 6
	check_one_error_line "sqlite restore onto a full disk: one error line"
	check_absent "no FILE after the failed sqlite restore" "$SMALL/app.db"
	check_empty_output "no temporary file is left (sqlite)" leftovers "$SMALL"

	"$COFFER_BIN" --config "$CONF" restore "$RAW_ID" --stdout >"$SMALL/out.bin" 2>"$ERR"
	RC=$?
	check_rc "restore --stdout into a full disk exits 6" 6
	check_one_error_line "restore --stdout onto a full disk: one error line"
	rm -f "$SMALL/out.bin"

	# A good restore fits once there is room (nothing was left behind).
	cf restore "$RAW_ID" --to "$SMALL/raw-small" --object stdin
	check_rc "the 6 MB restore still fails, and cleanly, a second time" 6
	check_eq "the small filesystem is empty again" "" "$(ls -A "$SMALL")"
fi

# ===== Ctrl-C and kill -9 during restore --to ===================================
# A big tree, so the restore is still running when the signal comes.
BIG=$T/big
mkdir -p "$BIG"
head -c 300000000 /dev/urandom >"$BIG/x"
t_config "$T/big.conf" <<EOF
[source big]
type = files
paths = $BIG
EOF
cf_conf "$T/big.conf" backup big
check_rc "backup of a 300 MB file" 0
BIG_ID=$(last_id big complete "$T/big.conf")

# restore_signal SIGNAL: starts a restore in its own process group, sends
# SIGNAL to the whole group (as a terminal's Ctrl-C does) once the restore
# has written something, and sets RC.
restore_signal() {
	rm -rf "$T/r"
	setsid "$COFFER_BIN" --config "$T/big.conf" restore "$BIG_ID" --to "$T/r" \
		>"$OUT" 2>"$ERR" &
	local pid=$! i
	for i in $(seq 200); do
		[ -n "$(find "$T" -maxdepth 1 -name '.r.coffer-restore.*' 2>/dev/null)" ] && break
		sleep 0.02
	done
	sleep 0.05
	kill "-$1" "-$pid" 2>/dev/null
	wait "$pid"
	RC=$?
}
for i in 1 2 3; do
	restore_signal INT
	check_rc "Ctrl-C during restore --to exits 130 (try $i)" 130
	check_one_error_line "Ctrl-C: one error line (try $i)"
	check_grep "Ctrl-C: the error says interrupted (try $i)" "$ERR" '^coffer: error: .*interrupted'
	check_absent "Ctrl-C: no DIR (try $i)" "$T/r"
	check_empty_output "Ctrl-C: no hidden restore folder (try $i)" leftovers "$T"
done

restore_signal KILL
check_rc "kill -9 during restore --to" 137
sleep 0.5
check "kill -9 leaves the hidden restore folder (nobody is left to remove it)" \
	test -n "$(leftovers "$T")"
cf_conf "$T/big.conf" restore "$BIG_ID" --to "$T/r"
check_rc "the next restore to the same target succeeds" 0
check_grep "it says it removed the killed restore's folder" "$ERR" \
	'^coffer: warning: \[big [^]]+\] removed .*\.r\.coffer-restore\.[0-9]+, left by a restore that was interrupted'
check_empty_output "no hidden restore folder is left" leftovers "$T"
check_eq "the restored file is whole" "$(stat -c %s "$BIG/x")" "$(stat -c %s "$T/r$BIG/x" 2>/dev/null)"
rm -rf "$T/r" "$BIG"

# ===== unreadable paths: a partial backup, or a failure with strict ==============
# Root reads everything; without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH it
# meets the permissions a backup user meets.
NOCAP="setpriv --bounding-set -dac_override,-dac_read_search"
P=$T/perm
mkdir -p "$P/ok" "$P/secret"
echo ok >"$P/ok/a"
echo secret >"$P/secret/b"
echo unreadable >"$P/unreadable"
chmod 000 "$P/secret" "$P/unreadable"
t_config "$T/perm.conf" <<EOF
[source perm]
type = files
paths = $P

[source perm-strict]
type = files
paths = $P
strict = true

[source empty]
type = command
command = true

[source empty-ok]
type = command
command = true
allow_empty = true

[source latin1]
type = command
command = sh -c 'printf "caf\\351 \\377 broke\\n" >&2; exit 3'

[source slow]
type = command
command = sh -c 'for i in \$(seq 200); do head -c 1000000 /dev/urandom; sleep 0.05; done'
EOF
if ! $NOCAP true 2>/dev/null; then
	t_log "note: the unreadable-path cases are skipped: setpriv cannot drop capabilities here"
else
	$NOCAP "$COFFER_BIN" --config "$T/perm.conf" backup perm >"$OUT" 2>"$ERR"
	RC=$?
	check_rc "a backup with unreadable paths exits 8 (partial)" 8
	check_one_error_line "partial: one error line"
	check_grep "the error line says partial and names a path" "$ERR" \
		"^coffer: error: backup $ID_RE of source perm is partial: 2 item\(s\).*$P/(secret|unreadable): Permission denied"
	check_grep "each unreadable path has a warning" "$ERR" "^coffer: warning: \[perm [^]]+\] source perm: $P/secret: Permission denied"
	check_grep "the backup line says partial" "$OUT" "^$ID_RE +perm +partial"
	PID_=$(last_id perm complete "$T/perm.conf")
	check "the partial backup is recorded complete (it restores)" test -n "$PID_"
	check_eq "list --json: partial is true" true \
		"$(list_json "$T/perm.conf" | jq -r --arg id "$PID_" '.[] | select(.id == $id) | .partial')"
	check_eq "list --json: missing_count is 2" 2 \
		"$(list_json "$T/perm.conf" | jq -r --arg id "$PID_" '.[] | select(.id == $id) | .missing_count')"
	cf_conf "$T/perm.conf" list
	check_grep "list shows it as partial" "$OUT" "^$PID_ +perm +partial"
	cf_conf "$T/perm.conf" show "$PID_"
	check_grep "show lists what is missing" "$OUT" "^missing: +$P/unreadable: Permission denied"
	check_grep "the manifest records what is missing" "$REPO/perm/$PID_/manifest.json" '"missing_count": 2'
	$NOCAP "$COFFER_BIN" --config "$T/perm.conf" --quiet backup perm >"$OUT" 2>"$ERR"
	RC=$?
	check_rc "--quiet: still exit 8" 8
	check_one_error_line "--quiet: the partial error line still shows"
	$NOCAP "$COFFER_BIN" --config "$T/perm.conf" backup perm-strict >"$OUT" 2>"$ERR"
	RC=$?
	check_rc "strict = true: unreadable paths fail the backup (exit 5)" 5
	check_one_error_line "strict: one error line"
	check_grep "strict: the error names a path and strict" "$ERR" "^coffer: error: source perm-strict: 2 item.*strict = true.*Permission denied"
	check_eq "strict: no complete backup" 0 "$(count_status perm-strict complete "$T/perm.conf")"
	check_empty_output "strict: nothing stored" find "$REPO" -path "$REPO/perm-strict/*" -type f
fi
chmod 700 "$P/secret" "$P/unreadable"

# ===== a command or stdin with no output =========================================
cf_conf "$T/perm.conf" backup empty
check_rc "a command with no output fails (exit 5)" 5
check_one_error_line "empty: one error line"
check_grep "empty: the error says so and names allow_empty" "$ERR" \
	'^coffer: error: source empty produced no output .*allow_empty = true'
check_eq "empty: recorded failed, not complete" "0 1" \
	"$(count_status empty complete "$T/perm.conf") $(count_status empty failed "$T/perm.conf")"
cf_conf "$T/perm.conf" backup empty-ok
check_rc "allow_empty = true: an empty output is a good backup" 0
"$COFFER_BIN" --config "$T/perm.conf" backup --stdin nothing </dev/null >"$OUT" 2>"$ERR"
RC=$?
check_rc "empty standard input fails (exit 5)" 5
check_grep "empty stdin: the error names --allow-empty" "$ERR" '^coffer: error: .*--allow-empty'
"$COFFER_BIN" --config "$T/perm.conf" backup --stdin nothing --allow-empty </dev/null >"$OUT" 2>"$ERR"
RC=$?
check_rc "--stdin NAME --allow-empty takes an empty input" 0

# ===== an error text that is not UTF-8 is recorded ===============================
cf_conf "$T/perm.conf" backup latin1
check_rc "a failing command with Latin-1 stderr exits 5" 5
check_grep "the error line shows the bad bytes escaped" "$ERR" '^coffer: error: .*caf\\xe9 \\xff broke'
LID=$(last_id latin1 failed "$T/perm.conf")
check "the failure is recorded (not left running)" test -n "$LID"
cf_conf "$T/perm.conf" show "$LID"
check_grep "show gives the real cause" "$OUT" '^error: .*status 3.*caf\\xe9 \\xff broke'
check_no_grep "show does not say interrupted" "$OUT" 'interrupted'

# ===== a killed backup's leftovers go at once ====================================
"$COFFER_BIN" --config "$T/perm.conf" backup slow >/dev/null 2>&1 &
KPID=$!
for i in $(seq 100); do
	[ -n "$(find "$REPO/slow" -name '*.tmp.*' -size +1k 2>/dev/null)" ] && break
	sleep 0.05
done
kill -9 $KPID
wait $KPID 2>/dev/null
check "kill -9 left a partial temporary object" test -n "$(find "$REPO/slow" -name '*.tmp.*' 2>/dev/null)"
cf_conf "$T/perm.conf" repo cleanup
check_rc "repo cleanup after kill -9" 0
check_grep "cleanup marked the run failed" "$OUT" '^marked 1 interrupted run'
check_empty_output "nothing of the dead run is left (not even its temporary file)" \
	find "$REPO" -path "$REPO/slow/*"
check_eq "the run is listed failed" 1 "$(count_status slow failed "$T/perm.conf")"

# ===== two repositories sharing one catalog =======================================
mkdir -p "$T/repo2"
sed -e "s|^path = $REPO\$|path = $T/repo2|" "$CONF" >"$T/repo2.conf"
cf_conf "$T/repo2.conf" backup --stdin other <"$T/stdin.bin"
check_rc "a backup into a second repository with the same catalog" 0
OTHER_ID=$(last_id other complete "$T/repo2.conf")
check_eq "the second configuration lists only its own backup" "$OTHER_ID" \
	"$(list_json "$T/repo2.conf" | jq -r '.[].id' | xargs)"
check_eq "the first configuration does not list it" "" \
	"$(list_json | jq -r --arg id "$OTHER_ID" '.[] | select(.id == $id) | .id')"
check_eq "the first configuration still lists its own" "$TREE_ID" \
	"$(list_json | jq -r --arg id "$TREE_ID" '.[] | select(.id == $id) | .id')"
cf restore "$OTHER_ID" --stdout
check_rc "restoring the other repository's backup is 'not found'" 3
check_grep "the error names the repository that holds it" "$ERR" "^coffer: error: backup $OTHER_ID is in posix:$T/repo2"

# ===== catalog rebuild forgets backups whose manifest is gone =====================
cf backup --stdin gone <"$T/stdin.bin"
GONE_ID=$(last_id gone complete)
check "a backup to lose" test -n "$GONE_ID"
rm -rf -- "$REPO/gone"
cf catalog rebuild
check_rc "catalog rebuild" 0
check_grep "rebuild says it removed one" "$OUT" 'removed 1 whose manifest is gone'
check_eq "the backup without a manifest is no longer listed" "" \
	"$(list_json | jq -r --arg id "$GONE_ID" '.[] | select(.id == $id) | .id')"
check_eq "the other repository's backup is untouched by this rebuild" "$OTHER_ID" \
	"$(list_json "$T/repo2.conf" | jq -r '.[].id' | xargs)"
check_eq "the good backups are still listed" "$TREE_ID" \
	"$(list_json | jq -r --arg id "$TREE_ID" '.[] | select(.id == $id) | .id')"

# ===== a secret key pasted into recipients is never printed =======================
SECRET=$(grep '^AGE-SECRET-KEY-1' "$KEY")
sed -e "s|^recipients = .*|recipients = $SECRET|" "$CONF" >"$T/secret.conf"
cf_conf "$T/secret.conf" backup --stdin x <"$T/stdin.bin"
check_rc "a secret key as recipient is a configuration error" 2
check_one_error_line "secret as recipient: one error line"
check_grep "the error says it is an identity, not a recipient" "$ERR" 'is an age identity \(a secret key\), not a recipient'
check_no_grep "the secret key is not in the output" "$ERR" "${SECRET#AGE-SECRET-KEY-1}"
check_no_grep "nor any part of it" "$ERR" 'AGE-SECRET-KEY-1[0-9A-Z]'

t_finish
