# test_db_postgres: the postgres source against a real PostgreSQL 15 (the
# harness in tests/harness/db-*.sh): pg_dump -Fc objects per database plus
# the globals, restored by `coffer restore --to-database` and by age | zstd |
# pg_restore, compared with an independent pg_dump of the original; and the
# failures: wrong password, missing database, missing pg_dump, the server
# stopped in the middle of a dump.
. "$(dirname "$0")/lib.sh"
t_setup db_postgres
. "$COFFER_SRC/tests/harness/db-env.sh"

export PGPASSFILE=$PG_PASSFILE
CONN="host=$PG_HOST port=$PG_PORT user=$PG_USER"
ODD='odd name-ü'

# The data: the fixture database, a copy of it as the reference, a second
# database with an awkward name, and a role that only the globals know.
db_pg_fixture cfpg_app || { fail "the fixture loads"; t_finish; }
db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS cfpg_ref WITH (FORCE)' \
	-c 'CREATE DATABASE cfpg_ref TEMPLATE cfpg_app' \
	-c "DROP DATABASE IF EXISTS \"$ODD\" WITH (FORCE)" -c "CREATE DATABASE \"$ODD\"" \
	-c 'DROP ROLE IF EXISTS cfpg_extra' -c "CREATE ROLE cfpg_extra NOLOGIN CONNECTION LIMIT 7" >/dev/null
db_psql -q -d "$ODD" -c "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t VALUES (1, 'ü'), (2, NULL)"
for db in cfpg_r1 cfpg_r2 cfpg_std; do
	db_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done

t_config <<EOF
[source pg]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfpg_app, $ODD

[source pgall]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
globals = false
exclude_databases = cfpg_ref, cfpg_r1, cfpg_r2, cfpg_std, $ODD
EOF

# --- backup -------------------------------------------------------------------
cf backup pg
check_rc "backup of two databases and the globals" 0
ID=$(last_id pg)
check "the backup is listed complete" test -n "$ID"
"$COFFER_BIN" --config "$CONF" show "$ID" --json >"$T/show.json"
check_eq "objects: globals, then one pg_dump per database" \
	"globals.sql sql globals|db-cfpg_app.pgdump pg_dump cfpg_app|db-odd_20name-_c3_bc.pgdump pg_dump $ODD" \
	"$(jq -r '[.objects[] | "\(.name) \(.format) \(.meta.database // .meta.role)"] | join("|")' "$T/show.json")"
check_eq "the manifest records the engine and the server's major version" "postgres 15" \
	"$(jq -r '"\(.meta.engine) \(.meta.server_version_num / 10000 | floor)"' "$T/show.json")"
check_eq "the manifest records the databases" "cfpg_app|$ODD" "$(jq -r '.meta.databases | join("|")' "$T/show.json")"

# Every database, none of the templates, the excludes left out.
cf backup pgall
check_rc "backup of every database but the excluded" 0
jq -r '.meta.databases[]' <("$COFFER_BIN" --config "$CONF" show "$(last_id pgall)" --json) >"$T/all.txt"
check_grep "all databases: postgres is dumped" "$T/all.txt" '^postgres$'
check_grep "all databases: cfpg_app is dumped" "$T/all.txt" '^cfpg_app$'
check_no_grep "all databases: no template" "$T/all.txt" '^template'
check_no_grep "all databases: the excluded are not" "$T/all.txt" '^cfpg_ref$'

# --- destroy, then restore with coffer ------------------------------------------
db_psql -q -d postgres -c 'DROP DATABASE cfpg_app WITH (FORCE)' -c 'CREATE DATABASE cfpg_app' \
	-c 'DROP ROLE cfpg_extra'
cf restore "$ID" --database cfpg_app --to-database "$CONN dbname=cfpg_app"
check_rc "restore --database cfpg_app --to-database (dropped and recreated)" 0
check "restored database equals the original (pg_dump of both)" db_pg_compare cfpg_ref cfpg_app
cf restore "$ID" --database "$ODD" --to-database "$CONN dbname=cfpg_r2"
check_rc "restore of the database with an awkward name" 0
check_eq "its rows are back" "1|ü,2|" "$(db_psql -At -d cfpg_r2 -c "SELECT string_agg(id || '|' || coalesce(s, ''), ',' ORDER BY id) FROM t")"
cf restore "$ID" --globals --to-database "$CONN dbname=postgres"
check_rc "restore --globals (existing roles are reported, not fatal)" 0
check_grep "an existing role is reported as a warning" "$ERR" 'warning: .*psql: .*already exists'
check_eq "the dropped role is back with its settings" "7" \
	"$(db_psql -At -d postgres -c "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'cfpg_extra'")"

# A target with data is refused, and replaced with --clean.
db_psql -q -d cfpg_r1 -c 'CREATE TABLE junk (x int); INSERT INTO junk VALUES (1)'
cf restore "$ID" --database cfpg_app --to-database "$CONN dbname=cfpg_r1"
check_rc "restore into a database holding data is refused" 9
check_grep "the refusal says why" "$ERR" 'already holds .* --clean'
check_one_error_line "the refusal is one error line"
check_eq "the refused target is untouched" "1" "$(db_psql -At -d cfpg_r1 -c 'SELECT count(*) FROM junk')"
db_psql -q -d cfpg_r1 -c 'DROP TABLE junk'
cf restore "$ID" --database cfpg_app --to-database "$CONN dbname=cfpg_r1"
check_rc "restore into an empty database" 0
db_psql -q -d cfpg_r1 -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid < 100; CREATE TABLE junk (x int)"
cf restore "$ID" --database cfpg_app --clean --to-database "$CONN dbname=cfpg_r1"
check_rc "restore --clean over a changed database" 0
# pg_restore --clean drops and remakes what the backup holds; other objects stay.
check_eq "--clean keeps an object the backup does not have" 1 \
	"$(db_psql -At -d cfpg_r1 -c "SELECT count(*) FROM pg_tables WHERE tablename = 'junk'")"
db_psql -q -d cfpg_r1 -c 'DROP TABLE junk'
check "after --clean the changed rows are as in the original" db_pg_compare cfpg_ref cfpg_r1
cf restore "$ID" --database cfpg_app --to-database "$CONN password=x dbname=cfpg_r1"
check_rc "a password in --to-database is refused" 2
cf restore "$ID" --to-database "$CONN dbname=cfpg_r1"
check_rc "two databases in the backup and no --database: usage error" 2
check_grep "the error lists the databases" "$ERR" 'cfpg_app, odd name'

# --- restore with the standard tools alone --------------------------------------
OBJ=$(object_path "$ID" db-cfpg_app.pgdump)
age -d -i "$KEY" "$OBJ" | zstd -d -q | "$PG_BIN/pg_restore" -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" \
	-d cfpg_std --exit-on-error 2>"$T/pg_restore.err"
check_eq "age -d | zstd -d | pg_restore succeeds" "0 0 0" "${PIPESTATUS[*]}"
check "that restore equals the original too" db_pg_compare cfpg_ref cfpg_std
age -d -i "$KEY" "$(object_path "$ID" globals.sql)" | zstd -d -q >"$T/globals.sql"
check_grep "the globals are a psql script with the roles" "$T/globals.sql" 'CREATE ROLE "cfpg_extra"'

# --- failures ---------------------------------------------------------------------
complete_before=$(count_status pg complete)
objects_before=$(find "$REPO" -type f | wc -l)
# check_failed DESC PATTERN: the last cf failed with exit 5 and one error line
# matching PATTERN, recorded failed, nothing new complete, no object left.
check_failed() {
	check_rc "$1: exit 5" 5
	check_grep "$1: the error says what" "$ERR" "$2"
	check_one_error_line "$1: one error line"
	check_eq "$1: no new complete backup" "$complete_before" "$(count_status pg complete)"
	check_eq "$1: no object left in the repository" "$objects_before" "$(find "$REPO" -type f | wc -l)"
}
printf '%s:%s:*:%s:wrong-password\n' "$PG_HOST" "$PG_PORT" "$PG_USER" >"$T/bad.pgpass"
chmod 600 "$T/bad.pgpass"
sed -i "0,/passfile = .*/s##passfile = $T/bad.pgpass#" "$CONF"
cf backup pg
check_failed "wrong password" 'password authentication failed'
check_eq "wrong password: the run is recorded failed" 1 "$(count_status pg failed)"
sed -i "0,/passfile = .*/s##passfile = $PG_PASSFILE#" "$CONF"

sed -i "0,/databases = .*/s##databases = cfpg_app, cfpg_nope#" "$CONF"
cf backup pg
check_failed "missing database" "database 'cfpg_nope' does not exist"
sed -i "0,/databases = .*/s##databases = cfpg_app#" "$CONF"

# pg_dump missing: a bin_dir with psql alone.
mkdir -p "$T/bin-nodump"
ln -s "$PG_BIN/psql" "$T/bin-nodump/psql"
ln -s "$PG_BIN/pg_dumpall" "$T/bin-nodump/pg_dumpall"
sed -i "/^\[source pg\]/a bin_dir = $T/bin-nodump" "$CONF"
cf backup pg
check_failed "pg_dump missing" 'pg_dump not found'
sed -i "/^bin_dir = /d" "$CONF"

# The server stopped in the middle of a dump: a pg_dump that reads slowly
# (so the dump is surely under way), and a fast shutdown meanwhile.
mkdir -p "$T/bin-slow"
ln -s "$PG_BIN/psql" "$PG_BIN/pg_dumpall" "$T/bin-slow/"
cat >"$T/bin-slow/pg_dump" <<EOF
#!/bin/bash
set -o pipefail
case "\$1" in --version) exec "$PG_BIN/pg_dump" "\$@" ;; esac
touch "$T/dump-started"
"$PG_BIN/pg_dump" "\$@" | python3 -c '
import sys, time
while True:
    b = sys.stdin.buffer.read(65536)
    if not b: break
    sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(0.05)'
EOF
chmod +x "$T/bin-slow/pg_dump"
sed -i "/^\[source pg\]/a bin_dir = $T/bin-slow" "$CONF"
rm -f "$T/dump-started"
"$COFFER_BIN" --config "$CONF" backup pg >"$OUT" 2>"$ERR" &
pid=$!
for _ in $(seq 1200); do [ -e "$T/dump-started" ] && break; sleep 0.1; done
check "the dump was under way before the server stopped" test -e "$T/dump-started"
sleep 1
db_pg_stop
wait $pid
RC=$?
db_pg_start
check_failed "server stopped during the dump" 'pg_dump cfpg_app (exited|was killed)'
sed -i "/^bin_dir = /d" "$CONF"
check_empty_output "no folder without a manifest is left" dirs_without_manifest "$REPO"

db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS cfpg_r1 WITH (FORCE)' -c 'DROP DATABASE IF EXISTS cfpg_r2 WITH (FORCE)' \
	-c 'DROP DATABASE IF EXISTS cfpg_std WITH (FORCE)' -c 'DROP DATABASE IF EXISTS cfpg_ref WITH (FORCE)' \
	-c "DROP DATABASE IF EXISTS \"$ODD\" WITH (FORCE)" >/dev/null 2>&1
# Every complete backup of this test verifies, its content checked for its
# format (coffer verify with the identity).
cf verify --all --json
check_rc "verify --all: every complete backup verifies" 0
check "verify --all checked the content of some" test "$(jq '[.copies[] | select(.ok and .level == "content")] | length' "$OUT")" -gt 0

t_finish
