#!/bin/bash
# The database harness itself (tests/harness/db-*.sh): PostgreSQL, MariaDB and
# Redis answer on 127.0.0.1 with their passwords and refuse wrong ones, the
# fixtures load, the comparison helpers see a copy as equal and a change as a
# difference, a Redis RDB taken by the backup user loads into a second server
# with the same digest, and single servers stop and start again.
. "$(dirname "$0")/lib.sh"
t_setup db_harness
. "$COFFER_SRC/tests/harness/db-env.sh"

t_log "# harness in $DB_DIR: pg $PG_PORT, mariadb $MY_PORT, redis $REDIS_PORT"
# The fixture databases are dropped at exit (the harness may be shared).
t_at_exit "db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS h_pg WITH (FORCE)' -c 'DROP DATABASE IF EXISTS h_pg_copy WITH (FORCE)'"
t_at_exit "db_mariadb -e 'DROP DATABASE IF EXISTS h_my; DROP DATABASE IF EXISTS h_my_copy'"

pg_alive() { db_psql -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }
my_alive() { db_mariadb -e 'SELECT 1' >/dev/null 2>&1; }
redis_alive() { [ "$(REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# --- the harness folder ------------------------------------------------------
for f in pg.pass pgpass my.pass redis.pass redis-backup.pass my-client.cnf; do
	check_eq "$f is mode 600" 600 "$(stat -c %a "$DB_DIR/$f")"
done
check_eq "pgpass line" "127.0.0.1:$PG_PORT:*:coffer:$(cat "$PG_PASSWORD_FILE")" "$(head -n 1 "$PG_PASSFILE")"
check "pg socket in DB_DIR" test -S "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
check "mariadb socket in DB_DIR" test -S "$MY_SOCKET"
check "redis socket in DB_DIR" test -S "$REDIS_SOCKET"
if command -v ss >/dev/null; then
	ss -Hltn >"$T/listen"
	for p in "$PG_PORT" "$MY_PORT" "$REDIS_PORT"; do
		check_grep "port $p listens on 127.0.0.1" "$T/listen" "127\.0\.0\.1:$p "
		check_no_grep "port $p listens on nothing else" "$T/listen" "(\*|0\.0\.0\.0|\[::\]):$p "
	done
fi
# no password on any command line of the machine
: >"$T/cmdlines"
for p in /proc/[0-9]*; do tr '\0' ' ' 2>/dev/null <"$p/cmdline" >>"$T/cmdlines"; echo >>"$T/cmdlines"; done
for f in pg.pass my.pass redis.pass redis-backup.pass; do
	check_no_grep "no $f password on a command line" "$T/cmdlines" "$(cat "$DB_DIR/$f")"
done

# --- PostgreSQL ---------------------------------------------------------------
check_eq "psql over TCP as coffer" "coffer|t" "$(db_psql -d postgres -Atc 'SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user')"
check_eq "server is PostgreSQL 15" 15 "$(db_psql -Atc 'SHOW server_version' | cut -d. -f1)"
check_eq "TCP auth is scram" "scram-sha-256" "$(db_psql -Atc "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND 'all' = ANY(database)")"
printf '127.0.0.1:%s:*:coffer:wrong-password\n' "$PG_PORT" >"$T/bad.pgpass"
chmod 600 "$T/bad.pgpass"
PGPASSFILE=$T/bad.pgpass "$PG_BIN/psql" -X -w -h 127.0.0.1 -p "$PG_PORT" -U coffer -d postgres -c 'SELECT 1' >"$T/pg.out" 2>&1
check_eq "psql with a wrong password fails" 2 "$?"
check_grep "... for its password" "$T/pg.out" 'password authentication failed for user "coffer"'
PGPASSFILE=/dev/null "$PG_BIN/psql" -X -w -h 127.0.0.1 -p "$PG_PORT" -U coffer -d postgres -c 'SELECT 1' >"$T/pg.out" 2>&1
check_grep "psql without a password fails" "$T/pg.out" 'no password supplied'

t0=$(date +%s%N)
check "db_pg_fixture h_pg" db_pg_fixture h_pg
t_log "     (db_pg_fixture: $(ms_since "$t0") ms)"
check_eq "pgbench accounts" 100000 "$(db_psql -d h_pg -Atc 'SELECT count(*) FROM pgbench_accounts')"
check_eq "bytea row has the 256 byte values" "256|256" "$(db_psql -d h_pg -Atc "SELECT length(raw), (SELECT count(DISTINCT get_byte(raw, i)) FROM generate_series(0, 255) i) FROM app.kinds WHERE id = 0")"
check_eq "emoji text" "emoji 😀🎉" "$(db_psql -d h_pg -Atc "SELECT left(txt, 8) FROM app.kinds WHERE id = 3")"
check_eq "a row of NULLs" "t" "$(db_psql -d h_pg -Atc "SELECT raw IS NULL AND txt IS NULL AND amount IS NULL AND attrs IS NULL AND doc IS NULL FROM app.kinds WHERE id = 5")"
check_eq "large object of 384 KiB" 393216 "$(db_psql -d h_pg -Atc "SELECT length(lo_get(obj)) FROM app.blobs WHERE name = 'random-384k'")"
check_eq "extensions" "hstore pg_trgm plpgsql" "$(db_psql -d h_pg -Atc "SELECT string_agg(extname, ' ' ORDER BY extname) FROM pg_extension")"
check_eq "coffer_app owns the schema app" coffer_app "$(db_psql -d h_pg -Atc "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'app'")"
check_eq "view and function work" t "$(db_psql -d h_pg -Atc "SELECT (SELECT total FROM app.branch_balance WHERE bid = 1) = app.account_total(1)")"
check "db_pg_fixture again (idempotent)" db_pg_fixture h_pg

PGOPTIONS='-c client_min_messages=warning' db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS h_pg_copy' -c 'CREATE DATABASE h_pg_copy TEMPLATE h_pg'
t0=$(date +%s%N)
db_pg_compare h_pg h_pg_copy >"$T/cmp.out"
check_eq "db_pg_compare: a copy is equal" "0" "$?"
t_log "     (db_pg_compare: $(ms_since "$t0") ms)"
check_empty_output "... and prints nothing" cat "$T/cmp.out"
db_psql -q -d h_pg_copy -c "UPDATE app.kinds SET txt = txt || '!' WHERE id = 3"
db_pg_compare h_pg h_pg_copy >"$T/cmp.out"
check_eq "db_pg_compare: a changed row differs" "1" "$?"
check_grep "... and shows it" "$T/cmp.out" '^\+3	.*!'
db_psql -q -d h_pg_copy -c "UPDATE app.kinds SET txt = left(txt, -1) WHERE id = 3"
check "db_pg_compare: equal again after undoing" db_pg_compare h_pg h_pg_copy
db_psql -q -d h_pg_copy -c "SELECT lo_put(obj, 1000, '\\x00') FROM app.blobs WHERE name = 'random-384k'" >/dev/null
db_pg_compare h_pg h_pg_copy >"$T/cmp.out"
check_eq "db_pg_compare: a changed large object differs" "1" "$?"
db_psql -q -d postgres -c 'DROP DATABASE h_pg_copy' -c 'CREATE DATABASE h_pg_copy TEMPLATE h_pg'
db_psql -q -d h_pg_copy -c "ALTER TABLE app.kinds ALTER COLUMN label SET DEFAULT 'x'"
db_pg_compare h_pg h_pg_copy >"$T/cmp.out"
check_eq "db_pg_compare: a schema change differs" "1" "$?"

# stop and start PostgreSQL alone
t0=$(date +%s%N)
check "db_pg_stop" db_pg_stop
t_log "     (db_pg_stop: $(ms_since "$t0") ms)"
check_not "PostgreSQL is down" pg_alive
check "MariaDB is still up" my_alive
t0=$(date +%s%N)
check "db_pg_start" db_pg_start
t_log "     (db_pg_start: $(ms_since "$t0") ms)"
check "db_pg_start again (no-op)" db_pg_start
check_eq "PostgreSQL is up, the data kept" 100000 "$(db_psql -d h_pg -Atc 'SELECT count(*) FROM pgbench_accounts')"

# --- MariaDB ------------------------------------------------------------------
check_eq "mariadb over TCP as coffer" "coffer@127.0.0.1" "$(db_mariadb -N -B -e 'SELECT current_user()')"
check_eq "server is MariaDB 10.11" 10.11 "$(db_mariadb -N -B -e 'SELECT @@version' | cut -d. -f1,2)"
check_grep "coffer has all privileges with grant option" <(db_mariadb -N -B -e 'SHOW GRANTS') \
	'GRANT ALL PRIVILEGES ON \*\.\* TO `coffer`@`127\.0\.0\.1` .*WITH GRANT OPTION'
sed 's/^password=.*/password=wrong-password/' "$MY_DEFAULTS_FILE" >"$T/bad-my.cnf"
mariadb --defaults-file="$T/bad-my.cnf" -e 'SELECT 1' >"$T/my.out" 2>&1
check_eq "mariadb with a wrong password fails" 1 "$?"
check_grep "... for its password" "$T/my.out" "ERROR 1045 .*Access denied for user 'coffer'"
check_eq "mariadb reads no /etc/mysql config" "$DB_DIR/my/data/" "$(db_mariadb -N -B -e 'SELECT @@datadir')"

t0=$(date +%s%N)
check "db_my_fixture h_my" db_my_fixture h_my
t_log "     (db_my_fixture: $(ms_since "$t0") ms)"
check_eq "customers rows" 3000 "$(db_mariadb -N -B -e 'SELECT count(*) FROM h_my.customers')"
check_eq "blob of the 256 byte values" "256 $(python3 -c 'import hashlib; print(hashlib.sha256(bytes(range(256))).hexdigest())')" \
	"$(db_mariadb -N -B -e 'SELECT length(data), sha2(data, 256) FROM h_my.payloads WHERE id = 0' | tr '\t' ' ')"
check_eq "emoji text" "emoji 😀🎉" "$(db_mariadb -N -B -e 'SELECT left(body, 8) FROM h_my.texts WHERE id = 3')"
check_eq "routines, trigger, event, view" "add_balance customer_label customers_audit audit_cleanup rich_customers" \
	"$(db_mariadb -N -B -e "SELECT (SELECT group_concat(routine_name ORDER BY routine_name SEPARATOR ' ') FROM information_schema.routines WHERE routine_schema = 'h_my'),
		(SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = 'h_my'),
		(SELECT event_name FROM information_schema.events WHERE event_schema = 'h_my'),
		(SELECT table_name FROM information_schema.views WHERE table_schema = 'h_my')" | tr '\t' ' ')"
check_grep "coffer_app has grants on h_my" <(db_mariadb -N -B -e "SHOW GRANTS FOR 'coffer_app'@'%'") 'ON `h_my`\.\*'
check "db_my_fixture again (idempotent)" db_my_fixture h_my

t0=$(date +%s%N)
db_my_checksum h_my >"$T/my1.sum"
check_eq "db_my_checksum h_my" 0 "$?"
t_log "     (db_my_checksum: $(ms_since "$t0") ms)"
check_eq "db_my_checksum: one line per object" 9 "$(wc -l <"$T/my1.sum")"
db_mariadb -e 'DROP DATABASE IF EXISTS h_my_copy; CREATE DATABASE h_my_copy'
mariadb-dump --defaults-file="$MY_DEFAULTS_FILE" --single-transaction --routines --triggers --events h_my |
	db_mariadb h_my_copy
check_eq "mariadb-dump | mariadb into a copy" "0 0" "${PIPESTATUS[*]}"
db_my_checksum h_my_copy >"$T/my2.sum"
check_same_file "db_my_checksum: the copy is equal" "$T/my1.sum" "$T/my2.sum"
db_my_checksum h_my >"$T/my1b.sum"
check_same_file "db_my_checksum is stable" "$T/my1.sum" "$T/my1b.sum"
db_mariadb -e 'CALL h_my_copy.add_balance(7, 1)'
db_my_checksum h_my_copy >"$T/my3.sum"
check_not "db_my_checksum: a changed row differs" cmp -s "$T/my1.sum" "$T/my3.sum"
check_eq "... in customers and audit (the trigger)" "table audit table customers" \
	"$(diff "$T/my1.sum" "$T/my3.sum" | sed -n 's/^> \(table [a-z]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//')"
mariadb-dump --defaults-file="$MY_DEFAULTS_FILE" --routines --triggers --events h_my | db_mariadb h_my_copy
db_mariadb -D h_my_copy <<'SQL'
DROP PROCEDURE add_balance;
DELIMITER ;;
CREATE PROCEDURE add_balance(IN p_id INT UNSIGNED, IN p_amount DECIMAL(15,4))
BEGIN
  UPDATE customers SET balance = balance - p_amount WHERE id = p_id;
END;;
SQL
db_my_checksum h_my_copy >"$T/my4.sum"
check_eq "db_my_checksum: a changed procedure differs" "procedure add_balance" \
	"$(diff "$T/my1.sum" "$T/my4.sum" | sed -n 's/^> \([a-z]* [a-z_]*\) .*/\1/p')"

t0=$(date +%s%N)
check "db_my_stop" db_my_stop
t_log "     (db_my_stop: $(ms_since "$t0") ms)"
check_not "MariaDB is down" my_alive
t0=$(date +%s%N)
check "db_my_start" db_my_start
t_log "     (db_my_start: $(ms_since "$t0") ms)"
db_my_checksum h_my >"$T/my5.sum"
check_same_file "MariaDB is up, the data kept" "$T/my1.sum" "$T/my5.sum"

# --- Redis --------------------------------------------------------------------
check_eq "redis-cli with the password" PONG "$(db_redis PING)"
check_grep "redis is 7.x" <(db_redis INFO server) '^redis_version:7\.'
check_grep "redis without a password: NOAUTH" <(REDISCLI_AUTH='' redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>&1) 'NOAUTH'
check_grep "redis with a wrong password: WRONGPASS" <(REDISCLI_AUTH=wrong-password redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>&1) 'WRONGPASS'
check_grep "backup user: no key access" \
	<(REDISCLI_AUTH=$(cat "$REDIS_BACKUP_PASSWORD_FILE") redis-cli --user "$REDIS_BACKUP_USER" -h 127.0.0.1 -p "$REDIS_PORT" GET str:1 2>&1) 'NOPERM'

t0=$(date +%s%N)
check "db_redis_fixture" db_redis_fixture
t_log "     (db_redis_fixture: $(ms_since "$t0") ms)"
db_redis_digest >"$T/r1.dig"
check_grep "digest line" "$T/r1.dig" '^digest [0-9a-f]{40}$'
check_grep "db0 has the keys" "$T/r1.dig" '^db0 keys=3[0-9]{3} expires=201$'
check_grep "db3 has keys" "$T/r1.dig" '^db3 keys=31 expires=1$'
check_grep "TTL keys keep their TTL" "$T/r1.dig" '^ttl keys=202 without-ttl=0$'
check_grep "the binary key name is there" <(db_redis --no-raw KEYS 'key:*') 'key:\\x00\\xff\\r\\n binary name'
db_redis_fixture >/dev/null && db_redis_digest >"$T/r1b.dig"
check_same_file "db_redis_fixture again gives the same digest" "$T/r1.dig" "$T/r1b.dig"
db_redis SET extra:key 1 >/dev/null
db_redis_digest >"$T/r2.dig"
check_not "a write changes the digest" cmp -s "$T/r1.dig" "$T/r2.dig"
db_redis DEL extra:key >/dev/null
db_redis -n 3 PERSIST ttl:db3 >/dev/null
db_redis_digest >"$T/r3.dig"
check_grep "a TTL removed is seen" "$T/r3.dig" '^ttl keys=202 without-ttl=1$'
db_redis -n 3 PEXPIREAT ttl:db3 4102444800000 >/dev/null

# the backup user takes an RDB; a second server loads it: same digest
REDISCLI_AUTH=$(cat "$REDIS_BACKUP_PASSWORD_FILE") redis-cli --user "$REDIS_BACKUP_USER" \
	-h 127.0.0.1 -p "$REDIS_PORT" --rdb "$T/snap.rdb" >"$T/rdb.out" 2>&1
check_eq "redis-cli --user backup --rdb" 0 "$?"
check_grep "... says success" "$T/rdb.out" 'Transfer finished with success'
check_eq "... the file is an RDB" REDIS "$(head -c 5 "$T/snap.rdb")"
P2=$((REDIS_PORT + 11))
t0=$(date +%s%N)
check "db_redis_start_from_rdb" db_redis_start_from_rdb "$T/snap.rdb" "$P2" "$T/redis2"
t_log "     (db_redis_start_from_rdb: $(ms_since "$t0") ms)"
db_redis_digest "$P2" >"$T/r4.dig"
check_same_file "the RDB loaded gives the same digest" "$T/r1.dig" "$T/r4.dig"
check_eq "the second server is not the first" "$P2" \
	"$(REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") redis-cli -p "$P2" INFO server | tr -d '\r' | sed -n 's/^tcp_port://p')"
db_redis_stop_dir "$T/redis2"
check_not "db_redis_stop_dir stopped it" redis_alive "$P2"

t_finish
