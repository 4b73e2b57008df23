# test_db_sqlite: the sqlite source on databases that a background writer
# keeps changing (in WAL mode and in rollback-journal mode): each backup,
# restored with `coffer restore --to FILE`, passes PRAGMA integrity_check and
# holds exactly the rows of a committed state (the writer inserts sequential
# ids in transactions of 10, so the ids must be 1..N with N a multiple of 10,
# and N beyond the rows present before the writer started). The live database
# is never written, the spool folder is empty after every run (also after a
# failure and after SIGTERM), and the failures give one clear line: not a
# database, no such file, a spool folder that does not exist, a database
# locked longer than busy_timeout, a corrupt database (quick_check).
. "$(dirname "$0")/lib.sh"
t_setup db_sqlite
python3 -c 'import sqlite3' 2>/dev/null || t_skip "python3 has no sqlite3 module"

SPOOL=$T/spool
mkdir -p "$SPOOL"
PREFILL=20000

# writer.py DB MODE STOPFILE: fills DB (PREFILL rows) if empty, then inserts
# ids n+1..n+10 per transaction until STOPFILE exists; prints the last id.
cat >"$T/writer.py" <<'PY'
import os, sqlite3, sys
db, mode, stop, prefill = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute("PRAGMA journal_mode=%s" % mode)
c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, pad BLOB NOT NULL)")
c.execute("CREATE INDEX IF NOT EXISTS t_pad ON t(substr(pad, 1, 8))")
n = c.execute("SELECT count(*) FROM t").fetchone()[0]
if n == 0:
    c.execute("BEGIN")
    c.executemany("INSERT INTO t VALUES(?, randomblob(1000))", ((i,) for i in range(1, prefill + 1)))
    c.execute("COMMIT")
    n = prefill
    if stop == "-":
        sys.exit(0)
while not os.path.exists(stop):
    c.execute("BEGIN IMMEDIATE")
    for _ in range(10):
        n += 1
        c.execute("INSERT INTO t VALUES(?, randomblob(1000))", (n,))
    c.execute("COMMIT")
print(n)
PY

# verify.py DB: one line "integrity=... rows=N min=A max=B badpad=K mode=M".
cat >"$T/verify.py" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
ic = ",".join(r[0] for r in c.execute("PRAGMA integrity_check"))
n, lo, hi = c.execute("SELECT count(*), min(id), max(id) FROM t").fetchone()
bad = c.execute("SELECT count(*) FROM t WHERE length(pad) != 1000").fetchone()[0]
mode = c.execute("PRAGMA journal_mode").fetchone()[0]
print("integrity=%s rows=%d min=%s max=%s badpad=%d mode=%s" % (ic, n, lo, hi, bad, mode))
PY

rows() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1], timeout=60).execute("SELECT count(*) FROM t").fetchone()[0])' "$1"; }

mkdir -p "$T/live-wal" "$T/live-delete" "$T/quiet"
cp /etc/os-release "$T/notdb.db"
t_config <<EOF
[source live-wal]
type = sqlite
path = $T/live-wal/app.db
spool_dir = $SPOOL

[source live-delete]
type = sqlite
path = $T/live-delete/app.db
spool_dir = $SPOOL
busy_timeout = 30000

[source quiet]
type = sqlite
path = $T/quiet/my data.db
spool_dir = $SPOOL

[source notdb]
type = sqlite
path = $T/notdb.db
spool_dir = $SPOOL

[source missing]
type = sqlite
path = $T/none.db
spool_dir = $SPOOL

[source nospool]
type = sqlite
path = $T/quiet/my data.db
spool_dir = $T/no-such-folder

[source locked]
type = sqlite
path = $T/quiet/my data.db
spool_dir = $SPOOL
busy_timeout = 300

[source locked-long]
type = sqlite
path = $T/quiet/my data.db
spool_dir = $SPOOL
busy_timeout = 60000

[source corrupt]
type = sqlite
path = $T/corrupt.db
spool_dir = $SPOOL
EOF

check_spool_empty() {
	check_empty_output "$1: the spool folder is empty" find "$SPOOL" -mindepth 1
}

# --- backups under a continuous writer ----------------------------------------
for mode in wal delete; do
	src=live-$mode
	db=$T/$src/app.db
	python3 "$T/writer.py" "$db" "$mode" - "$PREFILL"
	python3 "$T/writer.py" "$db" "$mode" "$T/$src.stop" "$PREFILL" >"$T/$src.last" 2>"$T/$src.err" &
	WRITER=$!
	t_at_exit "touch '$T/$src.stop'; kill $WRITER"
	for _ in $(seq 1 100); do
		[ "$(rows "$db")" -gt $((PREFILL + 200)) ] && break
		sleep 0.05
	done
	before=$(rows "$db")
	for i in 1 2 3; do
		cf backup "$src"
		check_rc "$mode: backup $i while the writer inserts" 0
		check_spool_empty "$mode: backup $i"
	done
	after=$(rows "$db")
	touch "$T/$src.stop"
	wait "$WRITER"
	check_eq "$mode: the writer ended cleanly" "" "$(cat "$T/$src.err")"
	last=$(cat "$T/$src.last")
	check "$mode: the writer kept committing during the backups ($before -> $after rows)" \
		test "$after" -gt "$before"
	i=0
	for id in $(list_json | jq -r --arg s "$src" '.[] | select(.source == $s and .status == "complete") | .id'); do
		i=$((i + 1))
		cf restore "$id" --to "$T/restored-$mode-$i.db"
		check_rc "$mode: restore $i --to FILE" 0
		line=$(python3 "$T/verify.py" "$T/restored-$mode-$i.db" 2>&1)
		n=$(printf '%s\n' "$line" | sed -nE 's/.* rows=([0-9]+) .*/\1/p')
		n=${n:-0}
		check_eq "$mode: restore $i passes integrity_check and holds ids 1..N, N a multiple of 10" \
			"integrity=ok rows=$n min=1 max=$n badpad=0 mode=$mode ten=0" "$line ten=$((n % 10))"
		check "$mode: restore $i holds rows the writer added after it started ($n > $PREFILL)" \
			test "$n" -gt "$PREFILL"
		check "$mode: restore $i holds no row the writer had not written ($n <= $last)" \
			test "$n" -le "$last"
	done
	check_eq "$mode: three backups are listed" 3 "$i"
done

# --- what is recorded; the live file is not written -------------------------------------
python3 "$T/writer.py" "$T/quiet/my data.db" delete - 1000
sha_before=$(sha256sum <"$T/quiet/my data.db")
mtime_before=$(stat -c %Y.%y "$T/quiet/my data.db")
cf backup quiet
check_rc "backup of a database whose name has a blank" 0
check_eq "the live database is byte for byte unchanged" "$sha_before" "$(sha256sum <"$T/quiet/my data.db")"
check_eq "the live database's mtime is unchanged" "$mtime_before" "$(stat -c %Y.%y "$T/quiet/my data.db")"
check_eq "nothing was created beside it" "my data.db" "$(ls -A "$T/quiet")"
ID=$(last_id quiet)
cf show "$ID" --json
check_eq "the object is named after the file, encoded" "my_20data.db" "$(jq -r '.objects[0].name' "$OUT")"
check_eq "the object's format is sqlite" sqlite "$(jq -r '.objects[0].format' "$OUT")"
LIBVER=$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')
PAGES=$(($(stat -c %s "$T/quiet/my data.db") / 4096))
check_eq "meta: engine, library version, path, page size and count" \
	"{\"engine\":\"sqlite\",\"page_size\":4096,\"pages\":$PAGES,\"path\":\"$T/quiet/my data.db\",\"sqlite_version\":\"$LIBVER\"}" \
	"$(jq -cS '.meta' "$OUT")"
cf restore "$ID" --to "$T/restored-quiet.db"
check_rc "restore --to FILE of the quiet database" 0
# The backup API bumps the copy's change counter and schema cookie (header
# bytes 24-27, 40-43 and 92-95): the rest of the file and the SQL content
# are the same.
dump() { python3 -c 'import sqlite3, sys; print("\n".join(sqlite3.connect(sys.argv[1]).iterdump()))' "$1"; }
dump "$T/quiet/my data.db" >"$T/quiet.sql"
dump "$T/restored-quiet.db" >"$T/restored-quiet.sql"
check_same_file "a quiet database comes back with the same SQL content" "$T/quiet.sql" "$T/restored-quiet.sql"
check_eq "and the same bytes but for the change counter and schema cookie" "" \
	"$(cmp -l "$T/quiet/my data.db" "$T/restored-quiet.db" |
		awk '$1 < 25 || ($1 > 28 && $1 < 41) || ($1 > 44 && $1 < 93) || $1 > 96')"
obj=$(object_path "$ID")
age -d -i "$KEY" "$obj" 2>"$T/age.err" | zstd -d -q >"$T/plain-quiet.db" 2>>"$T/age.err"
check_same_file "age -d | zstd -d gives the restored file" "$T/restored-quiet.db" "$T/plain-quiet.db"

# --- failures ----------------------------------------------------------------
# expect_failure SOURCE EXPECTED-RC REGEX DESC
expect_failure() {
	local src=$1 code=$2 re=$3 desc=$4
	check_rc "$desc: backup fails" "$code"
	check_one_error_line "$desc: one error line"
	check_grep "$desc: the error says what failed" "$ERR" "^coffer: error: $re"
	check_eq "$desc: the backup is recorded failed" 1 "$(count_status "$src" failed)"
	check_eq "$desc: no complete backup is listed" 0 "$(count_status "$src" complete)"
	check_empty_output "$desc: no object is left in the repository" find "$REPO" -path "$REPO/$src/*" -type f
	check_spool_empty "$desc"
}
cf backup notdb
expect_failure notdb 5 "source notdb: sqlite $T/notdb\.db: cannot read it: file is not a database$" \
	"a file that is not a database"
cf backup missing
expect_failure missing 5 "source missing: cannot open $T/none\.db: No such file or directory$" \
	"a database that does not exist"
cf backup nospool
expect_failure nospool 5 "source nospool: cannot create a spool file in $T/no-such-folder: No such file or directory$" \
	"a spool folder that does not exist"

# A writer holding an exclusive lock (rollback mode) for 20 s.
python3 - "$T/quiet/my data.db" "$T/locked.ready" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(20)
PY
LOCKER=$!
t_at_exit "kill $LOCKER"
for _ in $(seq 1 100); do [ -e "$T/locked.ready" ] && break; sleep 0.05; done
cf backup locked
expect_failure locked 5 "source locked: sqlite $T/quiet/my data\.db: .*database is locked$" \
	"a database locked longer than busy_timeout"

# SIGTERM while coffer waits for the lock: it stops at once and the spool goes.
"$COFFER_BIN" --config "$CONF" backup locked-long >"$OUT" 2>"$ERR" &
COFFER_PID=$!
for _ in $(seq 1 100); do
	[ -n "$(find "$SPOOL" -mindepth 1)" ] && break
	sleep 0.05
done
check "SIGTERM: the spool file exists while coffer waits" test -n "$(find "$SPOOL" -mindepth 1)"
t0=$(date +%s%N)
kill -TERM "$COFFER_PID"
wait "$COFFER_PID"
RC=$?
check "SIGTERM: coffer stops within 3 s, not after busy_timeout" test $((($(date +%s%N) - t0) / 1000000)) -lt 3000
expect_failure locked-long 130 "source locked-long: interrupted by a signal" "SIGTERM while waiting for the lock"
kill "$LOCKER" 2>/dev/null
wait "$LOCKER" 2>/dev/null

# A database with a damaged b-tree page: copied page by page, it fails the
# quick_check of the snapshot.
python3 - "$T/corrupt.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
c.executemany("INSERT INTO t(v) VALUES(?)", (("value %d" % i * 20,) for i in range(5000)))
c.commit()
c.close()
with open(sys.argv[1], "r+b") as f:
    f.seek(4096 * 5 + 100)
    f.write(b"\x55" * 2000)
PY
cf backup corrupt
expect_failure corrupt 5 "source corrupt: sqlite $T/corrupt\.db: the snapshot fails PRAGMA quick_check: " \
	"a corrupt database"

# Every complete backup of this test verifies, its content checked for its
# format (coffer verify with the identity).
cf verify --all --json
check_rc "verify --all: every complete backup verifies" 0
check "verify --all checked the content of some" test "$(jq '[.copies[] | select(.ok and .level == "content")] | length' "$OUT")" -gt 0

t_finish
