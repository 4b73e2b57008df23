# test_db_mysql: the mysql source against a real MariaDB 10.11 (the harness
# in tests/harness/db-*.sh): one mariadb-dump object per database plus the
# users and grants, restored by `coffer restore --to-database` and by age |
# zstd | mariadb, compared with CHECKSUM TABLE and the SHOW CREATE texts of
# routines, triggers, events and views; and the failures: wrong password,
# missing database, missing mariadb-dump, the server stopped during a dump.
. "$(dirname "$0")/lib.sh"
t_setup db_mysql
. "$COFFER_SRC/tests/harness/db-env.sh"

TARGET="host=$MY_HOST port=$MY_PORT user=$MY_USER password_file=$MY_PASSWORD_FILE"
ODD='odd name-ü'

db_my_fixture cfmy_app || { fail "the fixture loads"; t_finish; }
db_my_checksum cfmy_app >"$T/ref.sum"
check "the reference checksum covers tables and routines" grep -q '^procedure ' "$T/ref.sum"
db_mariadb -e "DROP DATABASE IF EXISTS \`$ODD\`; CREATE DATABASE \`$ODD\`;
	CREATE TABLE \`$ODD\`.t (id INT PRIMARY KEY, s VARCHAR(10)) ENGINE=InnoDB;
	INSERT INTO \`$ODD\`.t VALUES (1, 'ü'), (2, NULL);
	DROP DATABASE IF EXISTS cfmy_r1; DROP DATABASE IF EXISTS cfmy_r2; DROP DATABASE IF EXISTS cfmy_std"
db_mariadb -N -B -e "SHOW GRANTS FOR 'coffer_app'@'%'" | sort >"$T/grants.ref"

t_config <<EOF
[source my]
type = mysql
host = $MY_HOST
port = $MY_PORT
user = $MY_USER
password_file = $MY_PASSWORD_FILE
databases = cfmy_app, $ODD
EOF

# --- backup -------------------------------------------------------------------
cf backup my
check_rc "backup of two databases and the grants" 0
ID=$(last_id my)
"$COFFER_BIN" --config "$CONF" show "$ID" --json >"$T/show.json"
check_eq "objects: grants, then one dump per database" \
	"grants.sql sql globals|db-cfmy_app.sql sql cfmy_app|db-odd_20name-_c3_bc.sql sql $ODD" \
	"$(jq -r '[.objects[] | "\(.name) \(.format) \(.meta.database // .meta.role)"] | join("|")' "$T/show.json")"
check_eq "the manifest records engine, flavor and dump tool" "mysql mariadb mariadb-dump" \
	"$(jq -r '"\(.meta.engine) \(.meta.flavor) \(.meta.dump_tool)"' "$T/show.json")"
check_grep "the manifest records the dump options" "$T/show.json" '"dump_options": "--single-transaction'

# --- destroy, then restore with coffer ------------------------------------------
db_mariadb -e "DROP DATABASE cfmy_app; DROP USER 'coffer_app'@'%'"
cf restore "$ID" --database cfmy_app --to-database "$TARGET database=cfmy_app"
check_rc "restore into the dropped database (created by restore)" 0
check_same_file "restored database has the same checksums and definitions" "$T/ref.sum" <(db_my_checksum cfmy_app)
cf restore "$ID" --globals --to-database "$TARGET"
check_rc "restore --globals (what cannot be applied is reported, not fatal)" 0
db_mariadb -N -B -e "SHOW GRANTS FOR 'coffer_app'@'%'" 2>&1 | sort >"$T/grants.now"
check_same_file "the dropped user is back with its grants" "$T/grants.ref" "$T/grants.now"
cf restore "$ID" --database cfmy_app --to-database "$TARGET database=cfmy_r1"
check_rc "restore under another database name" 0
check_same_file "that copy has the same checksums and definitions" "$T/ref.sum" <(db_my_checksum cfmy_r1)
cf restore "$ID" --database "$ODD" --to-database "$TARGET database=cfmy_r2"
check_rc "restore of the database with an awkward name" 0
check_eq "its rows are back" "1 ü,2 NULL" "$(db_mariadb -N -B -e "SELECT GROUP_CONCAT(id, ' ', IFNULL(s, 'NULL') ORDER BY id) FROM cfmy_r2.t")"

# A target with data is refused, and replaced with --clean.
cf restore "$ID" --database cfmy_app --to-database "$TARGET database=cfmy_r1"
check_rc "restore into a database holding data is refused" 9
check_grep "the refusal says why" "$ERR" 'already holds .* --clean'
check_one_error_line "the refusal is one error line"
db_mariadb -e "UPDATE cfmy_r1.customers SET balance = balance + 1 WHERE id < 50; CREATE TABLE cfmy_r1.junk (x INT)"
cf restore "$ID" --database cfmy_app --clean --to-database "$TARGET database=cfmy_r1"
check_rc "restore --clean over a changed database" 0
check_same_file "after --clean the database equals the original" "$T/ref.sum" <(db_my_checksum cfmy_r1)
cf restore "$ID" --database cfmy_app --to-database "$TARGET"
check_rc "a target without database= is a usage error" 2

# --- restore with the standard tools alone --------------------------------------
db_mariadb -e "CREATE DATABASE cfmy_std"
age -d -i "$KEY" "$(object_path "$ID" db-cfmy_app.sql)" | zstd -d -q | db_mariadb cfmy_std 2>"$T/std.err"
check_eq "age -d | zstd -d | mariadb succeeds" "0 0 0" "${PIPESTATUS[*]}"
check_same_file "that restore equals the original too" "$T/ref.sum" <(db_my_checksum cfmy_std)

# --- failures ---------------------------------------------------------------------
complete_before=$(count_status my complete)
objects_before=$(find "$REPO" -type f | wc -l)
check_failed() {
	check_rc "$1: exit 5" 5
	check_grep "$1: the error says what" "$ERR" "$2"
	check_one_error_line "$1: one error line"
	check_eq "$1: no new complete backup" "$complete_before" "$(count_status my complete)"
	check_eq "$1: no object left in the repository" "$objects_before" "$(find "$REPO" -type f | wc -l)"
}
echo wrong-password >"$T/bad.pass"
sed -i "s#^password_file = .*#password_file = $T/bad.pass#" "$CONF"
cf backup my
check_failed "wrong password" 'Access denied for user'
check_no_grep "wrong password: the password is not in the log" "$ERR" 'wrong-password'
sed -i "s#^password_file = .*#password_file = $MY_PASSWORD_FILE#" "$CONF"

sed -i "s#^databases = .*#databases = cfmy_app, cfmy_nope#" "$CONF"
cf backup my
check_failed "missing database" "database 'cfmy_nope' does not exist"
sed -i "s#^databases = .*#databases = cfmy_app#" "$CONF"

mkdir -p "$T/bin-nodump"
ln -s "$(command -v mariadb)" "$T/bin-nodump/mariadb"
sed -i "/^\[source my\]/a bin_dir = $T/bin-nodump" "$CONF"
cf backup my
check_failed "mariadb-dump missing" 'mariadb-dump or mysqldump not found'
sed -i "/^bin_dir = /d" "$CONF"

# The server stopped in the middle of a dump: a mariadb-dump that reads
# slowly, and a shutdown meanwhile.
mkdir -p "$T/bin-slow"
ln -s "$(command -v mariadb)" "$T/bin-slow/mariadb"
cat >"$T/bin-slow/mariadb-dump" <<EOF
#!/bin/bash
set -o pipefail
case "\$*" in *--system=users*) exec "$(command -v mariadb-dump)" "\$@" ;; esac
touch "$T/dump-started"
"$(command -v mariadb-dump)" "\$@" | python3 -c '
import sys, time
while True:
    b = sys.stdin.buffer.read(16384)
    if not b: break
    sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(0.05)'
EOF
chmod +x "$T/bin-slow/mariadb-dump"
sed -i "/^\[source my\]/a bin_dir = $T/bin-slow" "$CONF"
rm -f "$T/dump-started"
"$COFFER_BIN" --config "$CONF" backup my >"$OUT" 2>"$ERR" &
pid=$!
for _ in $(seq 1200); do [ -e "$T/dump-started" ] && break; sleep 0.1; done
check "the dump was under way before the server stopped" test -e "$T/dump-started"
sleep 1
db_my_stop
wait $pid
RC=$?
db_my_start
check_failed "server stopped during the dump" 'mariadb-dump cfmy_app (exited|was killed)'
sed -i "/^bin_dir = /d" "$CONF"
check_empty_output "no folder without a manifest is left" dirs_without_manifest "$REPO"

db_mariadb -e "DROP DATABASE IF EXISTS cfmy_r1; DROP DATABASE IF EXISTS cfmy_r2; DROP DATABASE IF EXISTS cfmy_std;
	DROP DATABASE IF EXISTS \`$ODD\`" >/dev/null 2>&1
# Every complete backup of this test verifies, its content checked for its
# format (coffer verify with the identity).
cf verify --all --json
check_rc "verify --all: every complete backup verifies" 0
check "verify --all checked the content of some" test "$(jq '[.copies[] | select(.ok and .level == "content")] | length' "$OUT")" -gt 0

t_finish
