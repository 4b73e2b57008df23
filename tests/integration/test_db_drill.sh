#!/bin/bash
# coffer verify --drill against real PostgreSQL 15 and MariaDB (the harness
# in tests/harness/db-*.sh), Redis and SQLite: each backup is restored into a
# throwaway server coffer starts itself, and the report's counts are checked
# against counts taken from the production servers independently (psql,
# mariadb, redis-cli, sqlite3). Then: a table dropped or emptied between two
# backups is flagged; an rto_target of 1 s fails the drill (exit 4); SIGTERM
# and kill -9 in the middle of a drill leave no server process and no
# folder (the next drill reaps what kill -9 left).
. "$(dirname "$0")/lib.sh"
t_setup db_drill
. "$COFFER_SRC/tests/harness/db-env.sh"

export PGPASSFILE=$PG_PASSFILE
# The drill's private folders go here, so the test can see them go.
# The server runs as user postgres (coffer is root here), who must reach it.
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
chmod 711 "$T"

# servers_left: drill servers still running (their folder is under $T/tmp).
servers_left() {
	pgrep -af "$T/tmp/coffer-drill" || true
}

# --- PostgreSQL: the fixture plus pgbench -s 10 ----------------------------
db_pg_fixture cfdr_app || {
	fail "the fixture loads"
	t_finish
}
db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS cfdr_bench WITH (FORCE)' -c 'CREATE DATABASE cfdr_bench' >/dev/null
"$PG_BIN/pgbench" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -i -s 10 -q cfdr_bench 2>/dev/null

t_config <<EOF
[source pg]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfdr_app, cfdr_bench

[source pgslow]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfdr_bench
globals = false
rto_target = 1s
EOF

# pg_counts DB: "schema.table rows" of every table, counted on production.
pg_counts() {
	local t
	for t in $(db_psql -At -d "$1" -c "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('information_schema') AND n.nspname !~ '^pg_' ORDER BY 1"); do
		printf '%s %s\n' "$t" "$(db_psql -At -d "$1" -c "SELECT count(*) FROM ONLY $t")"
	done
}
# report_counts FILE DB: the same from a drill report.
report_counts() {
	jq -r --arg db "$2" '.drills[0].databases[$db].tables | to_entries[] | "\(.key) \(.value)"' "$1" | sort
}

cf backup pg
check_rc "backup of the fixture and pgbench -s 10" 0
PG1=$(last_id pg)
cf verify --drill "$PG1" --json
check_rc "drill of the PostgreSQL backup" 0
cp "$OUT" "$T/pg1.json"
check_eq "the report says ok" true "$(jq '.drills[0].ok' "$T/pg1.json")"
check_eq "in a server of its own" own "$(jq -r '.drills[0].server' "$T/pg1.json")"
check_eq "the fixture's tables with the row counts production has" "$(pg_counts cfdr_app | sort)" \
	"$(report_counts "$T/pg1.json" cfdr_app)"
check_eq "pgbench's, 1,000,000 accounts among them" "$(pg_counts cfdr_bench | sort)" \
	"$(report_counts "$T/pg1.json" cfdr_bench)"
check_eq "pgbench_accounts has 1000000 rows" 1000000 \
	"$(jq '.drills[0].databases.cfdr_bench.tables["public.pgbench_accounts"]' "$T/pg1.json")"
check_eq "views, functions and sequences counted as production has them" \
	"$(db_psql -At -d cfdr_app -c "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v','m') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_') || ' ' || (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_') || ' ' || (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_')")" \
	"$(jq -r '.drills[0].databases.cfdr_app.objects | "\(.views) \(.functions) \(.sequences)"' "$T/pg1.json")"
check_eq "the recovery time is measured" true "$(jq '.drills[0].recovery_seconds > 0 and .drills[0].bytes_per_second > 0' "$T/pg1.json")"
check_empty_output "no server process is left" servers_left
check_eq "no drill folder is left" "" "$(ls "$TMPDIR")"
cf show "$PG1" --json
check_eq "the report is kept in the catalog" "$(jq -c '.drills[0]' "$T/pg1.json")" "$(jq -c '.drill' "$OUT")"
cf verify --drill --latest --source pg
check_rc "the text report" 0
check_grep "it names backup, source and repository" "$OUT" "^drill of $PG1 \(pg\) from primary: ok"
check_grep "it gives the recovery time" "$OUT" "recovery: [0-9.]+ s"
check_grep "and per database what it holds" "$OUT" "cfdr_bench: .*4 tables.*; 1000[0-9]* rows in 4 tables"

# A table dropped and one mostly emptied between two backups are flagged
# (exit 0: a flag is for a human to look at, not a failed restore).
db_psql -q -d cfdr_bench -c 'DROP TABLE pgbench_history' -c 'DELETE FROM pgbench_tellers WHERE tid > 10'
cf backup pg
PG2=$(last_id pg)
cf verify --drill "$PG2" --json
check_rc "drill after a table was dropped" 0
check_grep "the dropped table is flagged" "$OUT" "table cfdr_bench.public.pgbench_history vanished"
check_grep "the emptied one too" "$OUT" "table cfdr_bench.public.pgbench_tellers shrank from 100 to 10 rows"
check_eq "compared with the previous drill" "$PG1" "$(jq -r '.drills[0].compared_with' "$OUT")"
cf list --source pg
check_grep "list shows the drill" "$OUT" "^$PG2 .* drill ok "

# rto_target = 1s: a million rows do not restore in a second.
cf backup pgslow
cf verify --drill --latest --source pgslow
check_rc "a drill slower than rto_target fails" 4
check_grep "the report says so" "$OUT" "rto_target 1 s: MISSED"
check_one_error_line "one error line"
check_grep "it names the backup and the rto_target" "$ERR" "coffer: error: drill of backup .* failed: the recovery took .* more than rto_target \(1 s\)"
check_empty_output "no server process is left" servers_left
check_eq "no drill folder is left" "" "$(ls "$TMPDIR")"

# SIGTERM in the middle: the server is stopped and the folder removed.
"$COFFER_BIN" --config "$CONF" verify --drill "$PG1" >"$T/term.out" 2>"$T/term.err" &
pid=$!
for _ in $(seq 1 200); do
	ls "$TMPDIR"/coffer-drill.*/.s.PGSQL.5432 >/dev/null 2>&1 && break
	sleep 0.1
done
sleep 1
kill -TERM $pid
wait $pid
RC=$?
check_rc "SIGTERM stops the drill (exit 130)" 130
check_empty_output "no server process is left after SIGTERM" servers_left
check_eq "no drill folder is left after SIGTERM" "" "$(ls "$TMPDIR")"

# kill -9: the server dies with coffer (PR_SET_PDEATHSIG), the next drill
# removes the folder.
"$COFFER_BIN" --config "$CONF" verify --drill "$PG1" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	ls "$TMPDIR"/coffer-drill.*/.s.PGSQL.5432 >/dev/null 2>&1 && break
	sleep 0.1
done
sleep 1
kill -9 $pid
wait $pid 2>/dev/null
sleep 1
check_empty_output "no server process is left after kill -9" servers_left
cf verify --drill "$PG2"
check_rc "the next drill" 0
check_grep "it removed what the killed one left" "$ERR" "removed .*coffer-drill.* the drill folder of a coffer that was killed"
check_eq "no drill folder is left" "" "$(ls "$TMPDIR")"

# drill_target: into an existing server (here the production one: the
# drill's databases are coffer_drill_*, no roles applied, dropped after).
cat >>"$CONF" <<EOF
[source pgt]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfdr_app
drill_target = host=$PG_HOST port=$PG_PORT user=$PG_USER
EOF
cf backup pgt
cf verify --drill --latest --source pgt --json
check_rc "a drill into drill_target" 0
check_eq "the report says where" drill_target "$(jq -r '.drills[0].server' "$OUT")"
check_eq "the fixture's tables with the row counts production has" "$(pg_counts cfdr_app | sort)" \
	"$(report_counts "$OUT" cfdr_app)"
check_eq "its databases are gone from drill_target" 0 \
	"$(db_psql -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'coffer_drill_%'")"

# --- row_counts = true: the counts of the dump's own snapshot ------------------
# pgbench writes (every transaction adds a pgbench_history row) all through
# the backup: only counts taken in the very snapshot pg_dump reads equal
# what the drill restores.
db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS cfdr_rc WITH (FORCE)' -c 'CREATE DATABASE cfdr_rc' >/dev/null
"$PG_BIN/pgbench" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -i -s 2 -q cfdr_rc 2>/dev/null
cat >>"$CONF" <<EOF
[source pgrc]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfdr_rc
globals = false
row_counts = true
EOF
"$PG_BIN/pgbench" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -c 2 -T 60 cfdr_rc >/dev/null 2>&1 &
bench=$!
sleep 2
cf backup pgrc --json
check_rc "backup with row_counts = true while pgbench writes" 0
sleep 1
cf backup pgrc --json
kill $bench 2>/dev/null
wait $bench 2>/dev/null
RCID=$(jq -r '.backups[0].id' "$OUT")
cf show "$RCID" --json
check_eq "the manifest records the row count of every table" 4 \
	"$(jq '[.objects[] | select(.meta.row_counts) | .meta.row_counts | length] | add' "$OUT")"
check "pgbench wrote during the backup (history rows)" \
	test "$(jq '.objects[] | select(.meta.row_counts) | .meta.row_counts["public.pgbench_history"]' "$OUT")" -gt 0
cf verify --drill "$RCID" --json
check_rc "the drill restores exactly the recorded counts" 0
check_eq "4 tables checked" 4 "$(jq '.drills[0].row_counts_checked' "$OUT")"

# --- MariaDB -----------------------------------------------------------------
db_my_fixture cfdr_my || fail "the MariaDB fixture loads"
cat >>"$CONF" <<EOF
[source my]
type = mysql
host = $MY_HOST
port = $MY_PORT
user = $MY_USER
password_file = $MY_PASSWORD_FILE
databases = cfdr_my
EOF
cf backup my
check_rc "backup of the MariaDB fixture" 0
cf verify --drill --latest --source my --json
check_rc "drill of the MariaDB backup" 0
cp "$OUT" "$T/my.json"
my_counts() {
	local t
	for t in $(db_mariadb -N -B -e "SELECT table_name FROM information_schema.tables WHERE table_schema = '$1' AND table_type = 'BASE TABLE'"); do
		printf '%s %s\n' "$t" "$(db_mariadb -N -B -e "SELECT COUNT(*) FROM \`$1\`.\`$t\`")"
	done
}
check_eq "every table with the row count production has" "$(my_counts cfdr_my | sort)" \
	"$(report_counts "$T/my.json" cfdr_my)"
check_eq "views, routines and triggers as production has them" \
	"$(db_mariadb -N -B -e "SELECT CONCAT((SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'cfdr_my' AND table_type = 'VIEW'), ' ', (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'cfdr_my'), ' ', (SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = 'cfdr_my'))")" \
	"$(jq -r '.drills[0].databases.cfdr_my.objects | "\(.views) \(.routines) \(.triggers)"' "$T/my.json")"
check_empty_output "no server process is left" servers_left
check_eq "no drill folder is left" "" "$(ls "$TMPDIR")"

cat >>"$CONF" <<EOF
[source myt]
type = mysql
host = $MY_HOST
port = $MY_PORT
user = $MY_USER
password_file = $MY_PASSWORD_FILE
databases = cfdr_my
drill_target = host=$MY_HOST port=$MY_PORT user=$MY_USER password_file=$MY_PASSWORD_FILE
EOF
cf backup myt
cf verify --drill --latest --source myt --json
check_rc "a MariaDB drill into drill_target" 0
check_eq "the report says where" drill_target "$(jq -r '.drills[0].server' "$OUT")"
check_eq "every table with the row count production has" "$(my_counts cfdr_my | sort)" \
	"$(report_counts "$OUT" cfdr_my)"
check_eq "its database is gone from drill_target" "" \
	"$(db_mariadb -N -B -e "SHOW DATABASES LIKE 'coffer\_drill\_%'")"

# --- Redis and SQLite ----------------------------------------------------------
db_redis_fixture
sqlite3 "$T/app.db" "CREATE TABLE a (x); CREATE TABLE b (y); CREATE VIEW v AS SELECT * FROM a; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000) INSERT INTO a SELECT i FROM c; INSERT INTO b VALUES (1), (2);"
cat >>"$CONF" <<EOF
[source redis]
type = redis
host = $REDIS_HOST
port = $REDIS_PORT
password_file = $REDIS_PASSWORD_FILE

[source lite]
type = sqlite
path = $T/app.db
EOF
cf backup redis
check_rc "backup of Redis" 0
cf verify --drill --latest --source redis --json
check_rc "drill of the Redis backup" 0
cp "$OUT" "$T/redis.json"
keys() { db_redis -n "$1" DBSIZE; }
check_eq "the key count of db 0 and db 3 as production has them" "$(keys 0) $(keys 3)" \
	"$(jq -r '.drills[0].databases | "\(.db0.objects.keys) \(.db3.objects.keys)"' "$T/redis.json")"
check_empty_output "no server process is left" servers_left
mkdir -p "$T/empty"
PATH=$T/empty cf verify --drill --latest --source redis
check_rc "without redis-server the drill cannot start (exit 5, not an integrity failure)" 5
check_grep "the error says what to install" "$ERR" "coffer: error: drill of backup .* failed: a drill of a Redis backup needs the server: install redis-server"
check_eq "no drill folder is left" "" "$(ls "$TMPDIR")"
cf backup lite
check_rc "backup of SQLite" 0
cf verify --drill --latest --source lite --json
check_rc "drill of the SQLite backup" 0
check_eq "its tables with their rows" "a 5000|b 2" \
	"$(jq -r '[.drills[0].databases[].tables | to_entries[] | "\(.key) \(.value)"] | join("|")' "$OUT")"
check_eq "and its views" 1 "$(jq '[.drills[0].databases[].objects.views] | add' "$OUT")"
check_eq "no drill folder is left" "" "$(ls "$TMPDIR")"

# Backups of other kinds are verified, not drilled.
cat >>"$CONF" <<EOF
[source files]
type = files
paths = $T/app.db
EOF
cf backup files
cf verify --drill --latest --source files
check_rc "a files backup is not drilled" 3
check_grep "the error says which kinds are" "$ERR" "no complete database backup of source files to drill"

t_finish
