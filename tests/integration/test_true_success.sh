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
	cf restore "$RAW_ID" --to "$SMALL/raw-small" --object stdin.zst.age
	check_rc "the 6 MB restore still fails, and cleanly, a second time" 6
	check_eq "the small filesystem is empty again" "" "$(ls -A "$SMALL")"
fi

# ===== Ctrl-C and kill -9 during restore --to ===================================
# A big tree, so the restore is still running when the signal comes.
BIG=$T/big
mkdir -p "$BIG"
head -c 200000000 /dev/zero | tr '\0' 'x' >"$BIG/x"
t_config "$T/big.conf" <<EOF
[source big]
type = files
paths = $BIG
EOF
cf_conf "$T/big.conf" backup big
check_rc "backup of a 200 MB file" 0
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
	sleep 0.2
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
	'^coffer: warning: removed .*\.r\.coffer-restore\.[0-9]+, left by a restore that was interrupted'
check_empty_output "no hidden restore folder is left" leftovers "$T"
check_eq "the restored file is whole" "$(stat -c %s "$BIG/x")" "$(stat -c %s "$T/r$BIG/x" 2>/dev/null)"
rm -rf "$T/r" "$BIG"

t_finish
