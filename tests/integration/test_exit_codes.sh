# test_exit_codes: one check (or a few) per row of README "Exit codes",
# each provoking the condition for real (posix repositories only), and the
# table itself checked: every code agent_exit_code() returns is a row, and
# every row is tested here (or named as not provokable with a reason).
. "$(dirname "$0")/lib.sh"
t_setup exit_codes

TESTED=" "
SKIPPED=" "
# rc_is DESC CODE: check_rc, and the code counts as tested when it passed.
rc_is() {
	local before=$T_FAIL
	check_rc "$1" "$2"
	[ "$T_FAIL" = "$before" ] && TESTED="$TESTED$2 "
}
# Without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH root meets file permissions
# as a backup user does (test_true_success does the same).
NOCAP="setpriv --bounding-set -dac_override,-dac_read_search"
nocap_ok() { $NOCAP true 2>/dev/null; }

python3 - "$T/app.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE t (x)")
c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
c.commit()
PY
mkdir -p "$T/perm" "$T/perm/secret"
echo ok >"$T/perm/ok"
echo no >"$T/perm/secret/f"
chmod 000 "$T/perm/secret"
t_at_exit "chmod 755 '$T/perm/secret'"
t_config <<EOF
[source one]
type = command
command = seq 1 1000

[source fails]
type = command
command = sh -c 'echo some; exit 3'

[source slow]
type = command
command = sh -c 'while :; do head -c 100000 /dev/zero; sleep 0.1; done'

[source db]
type = sqlite
path = $T/app.db

[source perm]
type = files
paths = $T/perm
EOF

# --- 0 ---------------------------------------------------------------------------------
cf backup one
rc_is "0: a backup that works" 0
ONE=$(last_id one)
cf backup db
check_rc "backup of the sqlite source" 0
DB=$(last_id db)

# --- 2 ---------------------------------------------------------------------------------
cf list --bogus
rc_is "2: an unknown option" 2
cf restore "$ONE"
rc_is "2: restore without --to or --stdout" 2
printf '[repository]\npath = %s\nnosuchkey = 1\n' "$REPO" >"$T/bad.conf"
cf_conf "$T/bad.conf" list
rc_is "2: a configuration with an unknown key" 2

# --- 3 ---------------------------------------------------------------------------------
cf show 20200101T000000.000Z-00000000
rc_is "3: show of an id that does not exist" 3
cf restore "$ONE" --stdout --identity "$T/no-such-key.txt"
rc_is "3: an identity file that does not exist" 3
cf_conf "$T/no-such.conf" list
rc_is "3: a configuration file that does not exist" 3

# --- 4 ---------------------------------------------------------------------------------
cf restore "$ONE" --stdout --identity "$T"
rc_is "4: --identity DIR" 4
check_grep "4: --identity DIR: the error says it is a directory" "$ERR" \
	"^coffer: error: --identity $T is a directory"
check_one_error_line "4: --identity DIR: one error line"
"$COFFER_BIN" keygen -o "$T/other.key" >/dev/null 2>&1
cf restore "$ONE" --stdout --identity "$T/other.key"
rc_is "4: the wrong identity" 4
printf '# nothing\n' >"$T/empty.key"
chmod 600 "$T/empty.key"
cf restore "$ONE" --stdout --identity "$T/empty.key"
rc_is "4: an identity file without an identity" 4
if nocap_ok; then
	cp "$KEY" "$T/locked.key"
	chmod 000 "$T/locked.key"
	$NOCAP "$COFFER_BIN" --config "$CONF" restore "$ONE" --stdout --identity "$T/locked.key" \
		>"$OUT" 2>"$ERR"
	RC=$?
	rc_is "4: an identity file that cannot be read (permissions), not 6" 4
	check_grep "4: unreadable identity: the error says it cannot be read and why" "$ERR" \
		"^coffer: error: cannot read the identity file $T/locked.key .*Permission denied"
	check_one_error_line "4: unreadable identity: one error line"
else
	t_log "note: the unreadable identity case is skipped: setpriv cannot drop capabilities here"
fi

# --- 5 ---------------------------------------------------------------------------------
cf backup fails
rc_is "5: a command source that exits 3" 5

# --- 6 ---------------------------------------------------------------------------------
"$COFFER_BIN" --config "$CONF" restore "$ONE" --stdout >/dev/full 2>"$ERR"
RC=$?
rc_is "6: restore --stdout to a full device" 6
check_one_error_line "6: full device: one error line"

# --- 7 ---------------------------------------------------------------------------------
cp -r "$CATALOG" "$T/dcat"
truncate -s 8192 "$T/dcat/data.mdb"
sed -e "s|^path = $CATALOG\$|path = $T/dcat|" "$CONF" >"$T/dcat.conf"
cf_conf "$T/dcat.conf" list
rc_is "7: a damaged catalog" 7

# --- 8 ---------------------------------------------------------------------------------
if nocap_ok; then
	$NOCAP "$COFFER_BIN" --config "$CONF" backup perm >"$OUT" 2>"$ERR"
	RC=$?
	rc_is "8: a files backup with an unreadable folder (partial)" 8
else
	SKIPPED="${SKIPPED}8 "
	t_log "note: code 8 is not checked: setpriv cannot drop capabilities here"
fi

# --- 9 ---------------------------------------------------------------------------------
cf keygen -o "$T/other.key"
rc_is "9: keygen -o an existing file" 9
check_one_error_line "9: keygen refusal: one error line"
mkdir -p "$T/full"
echo mine >"$T/full/mine"
cf restore "$ONE" --to "$T/full"
rc_is "9: restore --to a non-empty directory" 9
check_eq "9: the non-empty directory is untouched" mine "$(ls -A "$T/full")"
echo mine >"$T/existing.db"
cf restore "$DB" --to "$T/existing.db"
rc_is "9: restore --to an existing file (sqlite)" 9
check_eq "9: the existing file is untouched" mine "$(cat "$T/existing.db")"
cf restore "$ONE" --to "$T/existing.db"
rc_is "9: restore --to DIR where DIR is a file" 9
t_log "note: 9 for --to-database into a database holding data is checked by test_db_postgres/mysql"

# --- 10 --------------------------------------------------------------------------------
# The source's lock held (here by flock(1), as another coffer would hold it).
mkdir -p "$CATALOG/locks"
flock "$CATALOG/locks/one.lock" sleep 10 &
holder=$!
sleep 0.3
cf backup one
rc_is "10: a backup of a source another run is backing up" 10
kill $holder 2>/dev/null
wait $holder 2>/dev/null

# --- 11 --------------------------------------------------------------------------------
cf status fails
rc_is "11: status of a source whose last run failed" 11

# --- 1 ---------------------------------------------------------------------------------
# A manifest larger than the 16 MiB coffer reads: a format limit, not an
# integrity failure (row 1).
cp -r "$REPO" "$T/bigrepo"
truncate -s 17M "$T/bigrepo/one/$ONE/manifest.json"
sed -e "s|^path = $REPO\$|path = $T/bigrepo|" -e "s|^path = $CATALOG\$|path = $T/bigcat|" \
	"$CONF" >"$T/big.conf"
cf_conf "$T/big.conf" restore "$ONE" --stdout
rc_is "1: a manifest over the size limit" 1
check_grep "1: the error names the limit" "$ERR" "larger than the [0-9]+ bytes allowed"
cf_conf "$T/big.conf" catalog rebuild
check_rc "catalog rebuild skips the oversized manifest, not stopped by it" 0
check_grep "catalog rebuild: a warning names it" "$ERR" "^coffer: warning: skipping .*larger than"

# --- 130 -------------------------------------------------------------------------------
"$COFFER_BIN" --config "$CONF" backup slow >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
for _ in $(seq 50); do
	[ -n "$(pgrep -P "$BG" | head -n 1)" ] && break
	sleep 0.1
done
sleep 0.5
kill -INT "$BG"
wait "$BG"
RC=$?
cp "$T/bg.err" "$ERR"
rc_is "130: SIGINT during a backup of a slow command source" 130
check_one_error_line "130: one error line"

# --- the table --------------------------------------------------------------------------
README=$COFFER_SRC/README.md
ROWS=$(sed -n '/^## Exit codes/,/^#/p' "$README" | sed -n 's/^| \([0-9][0-9]*\) |.*/\1/p' | xargs)
check "README has an exit code table" test -n "$ROWS"
CODES=$(sed -n '/^int agent_exit_code/,/^}/p' "$COFFER_SRC/agent/agent.c" |
	sed -n 's/.*return \([0-9][0-9]*\);.*/\1/p' | sort -nu | xargs)
for c in $CODES; do
	check "agent_exit_code() returns $c: a row of the README table" grep -qw "$c" <<<"$ROWS"
done
for r in $ROWS; do
	case "$TESTED$SKIPPED" in
	*" $r "*) pass "README row $r is checked here" ;;
	*) fail "README row $r is checked here" "add a check that provokes exit $r" ;;
	esac
done

t_finish
