# db-env.sh: the database test environment (sourced by bash test scripts after
# lib.sh's t_setup, not run).
#
# Sourcing it makes sure the database servers of $COFFER_DB_DIR are up (under
# CTest the harness/db_start fixture started them; run by hand, they are
# started here in /tmp/coffer-db and stopped again when the script exits,
# unless DB_KEEP=1), then exports:
#   DB_DIR                  the harness folder
#   PG_HOST=127.0.0.1 PG_PORT PG_USER=coffer (superuser)
#   PG_PASSFILE             a libpq password file for it (give as PGPASSFILE)
#   PG_PASSWORD_FILE        the password alone
#   PG_BIN                  /usr/lib/postgresql/15/bin (psql, pg_dump, pgbench...)
#   PG_SOCKET_DIR           the unix socket folder (trust auth, any user)
#   MY_HOST=127.0.0.1 MY_PORT MY_USER=coffer (ALL PRIVILEGES WITH GRANT OPTION)
#   MY_PASSWORD_FILE        the password alone
#   MY_DEFAULTS_FILE        a 0600 option file ([client] user, password, host,
#                           port): mariadb --defaults-file=... or --defaults-extra-file=...
#   MY_SOCKET               the server's unix socket (root via unix_socket auth)
#   REDIS_HOST=127.0.0.1 REDIS_PORT REDIS_PASSWORD_FILE (the default user's)
#   REDIS_BACKUP_USER=backup REDIS_BACKUP_PASSWORD_FILE  (AUTH, PING, INFO,
#                           REPLCONF, SYNC, PSYNC: redis-cli --rdb, nothing else)
#   REDIS_SOCKET            the server's unix socket
# and defines (no password ever goes on a command line):
#   db_psql ARGS...              psql -X -v ON_ERROR_STOP=1 as coffer over TCP
#                                (default database: coffer)
#   db_pg_dump ARGS...           pg_dump as coffer over TCP
#   db_mariadb ARGS...           mariadb as coffer over TCP
#   db_redis ARGS...             redis-cli as the default user (REDISCLI_AUTH)
#   db_pg_fixture DB             (re)makes database DB full of awkward content
#   db_pg_compare DB1 DB2        silent and 0 when pg_dump of both is the same
#   db_my_fixture DB             (re)makes MariaDB database DB full of awkward content
#   db_my_checksum DB            per-object digest lines of DB (name-independent)
#   db_redis_fixture             FLUSHALL, then every type of value in db 0 and 3
#   db_redis_digest [PORT]       DEBUG DIGEST, key counts, TTL check
#   db_redis_start_from_rdb FILE PORT DIR  a second redis-server on a copy of FILE
#   db_redis_stop_dir DIR        stops that server now
#   db_pg_stop, db_pg_start, db_my_stop, db_my_start, db_redis_stop,
#   db_redis_start               one server of the harness (its data is kept)
#
# Inputs: COFFER_DB_DIR (else COFFER_DB_DEFAULT_DIR, which CTest sets to
# <build>/tests/db, else /tmp/coffer-db), PG_PORT/MY_PORT/REDIS_PORT (only
# when it starts the servers itself), INSTALL=1, DB_KEEP=1. When the packages
# are missing it skips the test (exit 77; t_skip if lib.sh is sourced).
# Cleanup goes through lib.sh's t_at_exit when defined, else an EXIT trap.

DB_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DB_DIR=${COFFER_DB_DIR:-${COFFER_DB_DEFAULT_DIR:-/tmp/coffer-db}}
DB_DIR=$(realpath -m -- "$DB_DIR")
export COFFER_DB_DIR=$DB_DIR
DB_STARTED=0
DB_CLEANUP=()

db_env_cleanup() {
	local i
	for ((i = ${#DB_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${DB_CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	DB_CLEANUP=()
	if [ "$DB_STARTED" = 1 ] && [ "${DB_KEEP:-0}" != 1 ]; then
		"$DB_HARNESS_DIR/db-stop.sh" "$DB_DIR" >/dev/null 2>&1
		DB_STARTED=0
	fi
}
# db__at_exit CMD: runs CMD at exit (lib.sh's t_at_exit when there is one).
if declare -F t_at_exit >/dev/null; then
	t_at_exit db_env_cleanup
	db__at_exit() { t_at_exit "$1"; }
else
	trap db_env_cleanup EXIT
	db__at_exit() { DB_CLEANUP+=("$1"); }
fi

db__skip() {
	if declare -F t_skip >/dev/null; then
		t_skip "$@"
	fi
	echo "SKIP: $*"
	exit 77
}

# Use the harness of DB_DIR whatever its ports (the fixture's is the one), start
# the servers of it that are down, or make it.
db__out=$("$DB_HARNESS_DIR/db-start.sh" --reuse "$DB_DIR" 2>&1)
db__rc=$?
case $db__rc in
0)
	case $db__out in
	*"(created)"*) DB_STARTED=1 ;;
	esac
	;;
77) db__skip "database harness: ${db__out##*db-start: }" ;;
*)
	printf '%s\n' "$db__out" >&2
	echo "db-env.sh: db-start.sh failed (exit $db__rc)" >&2
	exit 1
	;;
esac
unset db__out db__rc

# shellcheck disable=SC1091
. "$DB_DIR/env.sh"
export DB_DIR PG_PORT MY_PORT REDIS_PORT PG_SOCKET_DIR MY_SOCKET REDIS_SOCKET
export PG_HOST=127.0.0.1 PG_USER=coffer
export PG_PASSFILE=$DB_DIR/pgpass PG_PASSWORD_FILE=$DB_DIR/pg.pass
export PG_BIN=/usr/lib/postgresql/15/bin
export MY_HOST=127.0.0.1 MY_USER=coffer
export MY_PASSWORD_FILE=$DB_DIR/my.pass MY_DEFAULTS_FILE=$DB_DIR/my-client.cnf
export REDIS_HOST=127.0.0.1
export REDIS_PASSWORD_FILE=$DB_DIR/redis.pass
export REDIS_BACKUP_USER=backup REDIS_BACKUP_PASSWORD_FILE=$DB_DIR/redis-backup.pass

# --- clients ------------------------------------------------------------------
db_psql() {
	PGPASSFILE=$PG_PASSFILE "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -w \
		-h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

db_pg_dump() {
	PGPASSFILE=$PG_PASSFILE "$PG_BIN/pg_dump" -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

db_mariadb() {
	mariadb --defaults-file="$MY_DEFAULTS_FILE" "$@"
}

db_redis() {
	REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"
}

# db__name NAME: NAME is a plain identifier (the helpers splice it into SQL).
db__name() {
	if [[ ! "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
		echo "db-env.sh: database name '$1' is not [A-Za-z_][A-Za-z0-9_]*" >&2
		return 1
	fi
}

# --- one server at a time -------------------------------------------------------
db_pg_stop() { "$DB_HARNESS_DIR/db-stop.sh" --only pg "$DB_DIR" >/dev/null; }
db_pg_start() { "$DB_HARNESS_DIR/db-start.sh" --only pg "$DB_DIR" >/dev/null; }
db_my_stop() { "$DB_HARNESS_DIR/db-stop.sh" --only my "$DB_DIR" >/dev/null; }
db_my_start() { "$DB_HARNESS_DIR/db-start.sh" --only my "$DB_DIR" >/dev/null; }
db_redis_stop() { "$DB_HARNESS_DIR/db-stop.sh" --only redis "$DB_DIR" >/dev/null; }
db_redis_start() { "$DB_HARNESS_DIR/db-start.sh" --only redis "$DB_DIR" >/dev/null; }

# --- PostgreSQL -------------------------------------------------------------------
# db_pg_fixture DB: drops and makes database DB: pgbench -i -s 1 (100000
# accounts), then in schema "app" (owned by role coffer_app, NOLOGIN): a table
# with bytea (one row with all 256 byte values), multi-byte/emoji/RTL text,
# NULLs in every nullable column, numeric, timestamptz, arrays, jsonb, an
# hstore column (GIN index) and a pg_trgm GIN index; a sequence; a 384 KiB
# large object (owned by coffer_app) referenced from app.blobs; a view; two
# plpgsql functions (one a trigger's); grants to coffer_app; comments.
db_pg_fixture() {
	local db=$1
	db__name "$db" || return 1
	PGOPTIONS="-c client_min_messages=warning" db_psql -q -d postgres \
		-c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
		-c "CREATE DATABASE \"$db\"" >/dev/null || return 1
	PGPASSFILE=$PG_PASSFILE "$PG_BIN/pgbench" -i -s 1 -q -h "$PG_HOST" -p "$PG_PORT" \
		-U "$PG_USER" "$db" >/dev/null 2>&1 || {
		echo "db_pg_fixture: pgbench -i failed" >&2
		return 1
	}
	db_psql -q -d "$db" >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coffer_app') THEN
    CREATE ROLE coffer_app NOLOGIN;
  END IF;
END $$;
CREATE EXTENSION pg_trgm;
CREATE EXTENSION hstore;
CREATE SCHEMA app AUTHORIZATION coffer_app;
COMMENT ON SCHEMA app IS 'coffer test fixture';
CREATE SEQUENCE app.ticket_seq START 1000 INCREMENT 7;
CREATE TABLE app.kinds (
  id      integer PRIMARY KEY,
  raw     bytea,
  txt     text,
  label   varchar(64),
  amount  numeric(14,4),
  at      timestamptz,
  day     date,
  flags   boolean[],
  attrs   hstore,
  doc     jsonb,
  ticket  bigint NOT NULL DEFAULT nextval('app.ticket_seq')
);
COMMENT ON TABLE app.kinds IS 'every kind of value: bytes, unicode, NULLs';
INSERT INTO app.kinds (id, raw, txt, label, amount, at, day, flags, attrs, doc) VALUES
  (0, (SELECT string_agg(set_byte('\x00'::bytea, 0, b), ''::bytea ORDER BY b) FROM generate_series(0, 255) b),
      'all 256 byte values', 'bytes', 0, '2024-02-29 23:59:59.999999+00', '2024-02-29',
      '{t,f,NULL}', 'a=>1, b=>NULL', '{"k": [1, 2.5, null, "x"]}'),
  (1, '\x00ff00ff'::bytea, 'Grüße aus Köln — naïve café, ½ ≠ ∞', 'latin', 12.5, '1999-12-31 23:59:59+00', '1999-12-31',
      '{}', 'ä=>ö', '{"ü": "ß"}'),
  (2, '\x'::bytea, '日本語のテキスト、中文字符，한국어 텍스트', 'cjk', -0.0001, '2038-01-19 03:14:08+00', '2038-01-19',
      '{f}', '"key with space"=>"value, with => arrow"', '[]'),
  (3, '\x5c30'::bytea, 'emoji 😀🎉👩‍👩‍👧‍👦 🏳️‍🌈 and a supplementary 𝄞', 'emoji', 99999999.9999, '1970-01-01 00:00:00+00', '1970-01-01',
      '{t}', '', '{"😀": "🎉"}'),
  (4, '\x0d0a09'::bytea, E'עברית: שלום עולם / العربية: مرحبا بالعالم\nline two\ttab ''quote'' "dq" \\ backslash', 'rtl', 1, 'infinity', 'infinity',
      NULL, NULL, '"just a string"'),
  (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (6, NULL, '', '', NULL, '-infinity', NULL, '{NULL}', NULL, 'null');
INSERT INTO app.kinds (id, raw, txt, label, amount, at, day, attrs, doc)
SELECT i,
       CASE WHEN i % 11 = 0 THEN NULL ELSE sha256(int4send(i)) END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE 'row ' || i || ' ' || repeat(chr(945 + i % 24), i % 40) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'label' || (i % 50) END,
       CASE WHEN i % 17 = 0 THEN NULL ELSE i * 1.2345 END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute 1.5 second',
       date '2000-01-01' + i,
       CASE WHEN i % 5 = 0 THEN NULL ELSE hstore('n', i::text) END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE jsonb_build_object('i', i, 'sq', i * i) END
FROM generate_series(10, 2009) i;
CREATE INDEX kinds_txt_trgm ON app.kinds USING gin (txt gin_trgm_ops);
CREATE INDEX kinds_attrs ON app.kinds USING gin (attrs);
CREATE INDEX kinds_at ON app.kinds (at DESC NULLS LAST);
ALTER TABLE app.kinds OWNER TO coffer_app;
ALTER SEQUENCE app.ticket_seq OWNER TO coffer_app;

CREATE TABLE app.blobs (name text PRIMARY KEY, obj oid NOT NULL);
ALTER TABLE app.blobs OWNER TO coffer_app;
DO $$
DECLARE o oid;
BEGIN
  -- 12288 SHA-256 values: 384 KiB that do not compress
  o := lo_from_bytea(0, (SELECT string_agg(sha256(int4send(i)), ''::bytea ORDER BY i)
                         FROM generate_series(1, 12288) i));
  EXECUTE format('ALTER LARGE OBJECT %s OWNER TO coffer_app', o);
  EXECUTE format('COMMENT ON LARGE OBJECT %s IS %L', o, 'random-384k');
  INSERT INTO app.blobs VALUES ('random-384k', o);
  o := lo_from_bytea(0, convert_to('a small large object: ½ 😀', 'UTF8'));
  INSERT INTO app.blobs VALUES ('small', o);
END $$;

CREATE VIEW app.branch_balance AS
  SELECT b.bid, b.bbalance, count(a.aid) AS accounts, sum(a.abalance) AS total
  FROM public.pgbench_branches b JOIN public.pgbench_accounts a USING (bid)
  GROUP BY b.bid, b.bbalance;
GRANT SELECT ON public.pgbench_accounts, public.pgbench_branches TO coffer_app;
GRANT SELECT, UPDATE ON public.pgbench_tellers TO coffer_app;
ALTER VIEW app.branch_balance OWNER TO coffer_app;

CREATE FUNCTION app.account_total(p_bid integer) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE total bigint;
BEGIN
  SELECT sum(abalance) INTO total FROM public.pgbench_accounts WHERE bid = p_bid;
  RETURN coalesce(total, 0);
END $$;
CREATE FUNCTION app.kinds_label() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.label := coalesce(NEW.label, 'unlabelled');
  RETURN NEW;
END $$;
ALTER FUNCTION app.kinds_label() OWNER TO coffer_app;
CREATE TRIGGER kinds_label BEFORE INSERT ON app.kinds
  FOR EACH ROW EXECUTE FUNCTION app.kinds_label();
REVOKE ALL ON FUNCTION app.account_total(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.account_total(integer) TO coffer_app;
SELECT setval('app.ticket_seq', (SELECT max(ticket) FROM app.kinds) + 70);
SQL
}

# db__pg_dump_norm DB: the plain pg_dump of DB (schema, data, large objects,
# owners, grants) without the lines that name the server or the database, and
# with the rows of each COPY block sorted: the physical order of rows (which
# an UPDATE changes) does not count, their content does.
db__pg_dump_norm() {
	# (pg_dump 15.14+ also brackets its output in \restrict KEY ... \unrestrict
	# KEY, a random key per dump)
	db_pg_dump -b -d "$1" | sed -E -e '/^-- Dumped (from|by) /d' -e '/^\\(un)?restrict /d' \
		-e "/^--/s/\\b$1\\b/@DB@/g" |
		LC_ALL=C awk '
			incopy && $0 == "\\." { fflush(); close("sort"); incopy = 0 }
			incopy { print | "sort"; next }
			{ print }
			/^COPY .* FROM stdin;$/ { fflush(); incopy = 1 }'
}

db_pg_compare() {
	local a=$1 b=$2 tmp rc
	db__name "$a" && db__name "$b" || return 2
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/coffer-pgcmp.XXXXXX") || return 2
	if ! db__pg_dump_norm "$a" >"$tmp/a.sql"; then
		echo "db_pg_compare: pg_dump of $a failed" >&2
		rm -rf "$tmp"
		return 2
	fi
	if ! db__pg_dump_norm "$b" >"$tmp/b.sql"; then
		echo "db_pg_compare: pg_dump of $b failed" >&2
		rm -rf "$tmp"
		return 2
	fi
	if cmp -s "$tmp/a.sql" "$tmp/b.sql"; then
		rc=0
	else
		echo "pg_dump of $a and $b differ ($(wc -c <"$tmp/a.sql") vs $(wc -c <"$tmp/b.sql") bytes; first lines of the diff):"
		diff -u --label "$a" --label "$b" "$tmp/a.sql" "$tmp/b.sql" | head -n 40 | cut -c1-200
		rc=1
	fi
	rm -rf "$tmp"
	return $rc
}

# --- MariaDB ----------------------------------------------------------------------
# db_my_fixture DB: drops and makes database DB (utf8mb4): InnoDB tables
# customers (3000 rows: DECIMAL, DATETIME(6), DATE, TEXT, NULLs, a unique
# key), payloads (3000 rows: BLOBs incl. one with all 256 byte values,
# BINARY(32), BIT, DOUBLE, TIMESTAMP(3), a foreign key), texts (utf8mb4_bin:
# emoji, CJK, RTL, quotes, NULL), audit; a procedure, a function, a trigger,
# an event (enabled, first run in 2030; the event scheduler is off), a view,
# and the account 'coffer_app'@'%' (locked) with grants on DB.
db_my_fixture() {
	local db=$1
	db__name "$db" || return 1
	db_mariadb <<SQL
DROP DATABASE IF EXISTS \`$db\`;
CREATE DATABASE \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE \`$db\`;
CREATE TABLE customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(190) NULL,
  balance DECIMAL(15,4) NOT NULL DEFAULT 0,
  created DATETIME(6) NOT NULL,
  birthday DATE NULL,
  note TEXT NULL,
  UNIQUE KEY email (email)
) ENGINE=InnoDB COMMENT='coffer test fixture';
CREATE TABLE payloads (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NULL,
  data MEDIUMBLOB NULL,
  digest BINARY(32) NULL,
  bits BIT(12) NULL,
  ratio DOUBLE NULL,
  ts TIMESTAMP(3) NULL DEFAULT NULL,
  KEY customer (customer_id),
  CONSTRAINT payloads_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE SET NULL
) ENGINE=InnoDB;
CREATE TABLE texts (
  id INT NOT NULL PRIMARY KEY,
  body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
) ENGINE=InnoDB;
CREATE TABLE audit (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT UNSIGNED NULL,
  action VARCHAR(20) NOT NULL,
  at DATETIME NOT NULL
) ENGINE=InnoDB;

INSERT INTO customers (id, name, email, balance, created, birthday, note)
SELECT seq, CONCAT('customer ', seq),
       IF(seq % 5 = 0, NULL, CONCAT('c', seq, '@example.org')),
       seq * 12.3456 - 5000,
       TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq MINUTE + INTERVAL (seq * 7919) % 1000000 MICROSECOND,
       IF(seq % 3 = 0, NULL, DATE'1950-01-01' + INTERVAL seq * 7 DAY),
       IF(seq % 2 = 0, NULL, REPEAT(CONCAT('note ', seq, ' '), seq % 20))
FROM seq_1_to_3000;
INSERT INTO payloads (id, customer_id, data, digest, bits, ratio, ts)
SELECT seq, IF(seq % 10 = 0, NULL, seq),
       IF(seq % 9 = 0, NULL, REPEAT(UNHEX(SHA2(seq, 256)), 1 + seq % 64)),
       IF(seq % 4 = 0, NULL, UNHEX(SHA2(CONCAT('d', seq), 256))),
       IF(seq % 6 = 0, NULL, seq % 4096),
       IF(seq % 8 = 0, NULL, seq / 7),
       IF(seq % 12 = 0, NULL, TIMESTAMP'2023-06-01 12:00:00' + INTERVAL seq SECOND)
FROM seq_1_to_3000;
INSERT INTO payloads (id, data, digest)
SELECT 0, UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR '')),
       UNHEX(REPEAT('00', 32))
FROM seq_0_to_255;
INSERT INTO texts VALUES
  (1, 'Grüße aus Köln — naïve café, ½ ≠ ∞'),
  (2, '日本語のテキスト、中文字符，한국어 텍스트'),
  (3, 'emoji 😀🎉👩‍👩‍👧‍👦 🏳️‍🌈 and 𝄞'),
  (4, 'עברית: שלום עולם / العربية: مرحبا بالعالم'),
  (5, 'quotes \' " \\\\ backslash, a tab\there, a newline\nthere'),
  (6, NULL),
  (7, '');
INSERT INTO texts SELECT 100 + seq, CONCAT('text ', seq, ' ', REPEAT('ü😀', seq % 30)) FROM seq_1_to_500;

DELIMITER ;;
CREATE PROCEDURE add_balance(IN p_id INT UNSIGNED, IN p_amount DECIMAL(15,4))
  COMMENT 'adds to a balance'
BEGIN
  UPDATE customers SET balance = balance + p_amount WHERE id = p_id;
END;;
CREATE FUNCTION customer_label(p_id INT UNSIGNED) RETURNS VARCHAR(200)
  DETERMINISTIC READS SQL DATA
BEGIN
  DECLARE n VARCHAR(100);
  SELECT name INTO n FROM customers WHERE id = p_id;
  RETURN CONCAT('#', p_id, ' ', COALESCE(n, '?'));
END;;
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW
BEGIN
  IF NEW.balance <> OLD.balance THEN
    INSERT INTO audit (customer_id, action, at) VALUES (NEW.id, 'balance', NOW());
  END IF;
END;;
CREATE EVENT audit_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00'
  ON COMPLETION PRESERVE ENABLE COMMENT 'never runs in the tests'
  DO DELETE FROM audit WHERE at < NOW() - INTERVAL 90 DAY;;
DELIMITER ;
CREATE VIEW rich_customers AS
  SELECT id, name, balance, customer_label(id) AS label FROM customers WHERE balance > 30000;
CREATE USER IF NOT EXISTS 'coffer_app'@'%' ACCOUNT LOCK;
GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON \`$db\`.* TO 'coffer_app'@'%';
SQL
}

# db_my_checksum DB: one line per object of DB, sorted by kind and name:
# "table NAME CHECKSUM create:SHA" (CHECKSUM TABLE ... EXTENDED; the SHA of
# SHOW CREATE TABLE without AUTO_INCREMENT=), then "procedure|function|trigger|
# event|view NAME SHA" (SHA of the SHOW CREATE statement and its sql_mode, with
# DEFINER=... and the database's name taken out). Equal content under another
# database name gives the same lines.
db_my_checksum() {
	local db=$1 tables t kind name
	db__name "$db" || return 1
	db_mariadb -N -B -e "SELECT 1 FROM information_schema.schemata WHERE schema_name = '$db'" |
		grep -q 1 || { echo "db_my_checksum: no database $db" >&2; return 1; }
	# normalisation of a SHOW CREATE text (one line: -B escapes newlines)
	db__my_norm() {
		sed -E -e 's/DEFINER=`[^`]*`@`[^`]*`/DEFINER=?/g' -e 's/ AUTO_INCREMENT=[0-9]+//' \
			-e "s/\`$db\`\\.//g" | sha256sum | cut -c1-16
	}
	tables=$(db_mariadb -N -B -e "SELECT table_name FROM information_schema.tables
		WHERE table_schema = '$db' AND table_type = 'BASE TABLE' ORDER BY table_name") || return 1
	for t in $tables; do
		printf 'table %s %s create:%s\n' "$t" \
			"$(db_mariadb -N -B -D "$db" -e "CHECKSUM TABLE \`$t\` EXTENDED" | cut -f2)" \
			"$(db_mariadb -N -B -D "$db" -e "SHOW CREATE TABLE \`$t\`" | cut -f2- | db__my_norm)"
	done
	db_mariadb -N -B -e "
		SELECT LOWER(routine_type), routine_name FROM information_schema.routines WHERE routine_schema = '$db'
		UNION ALL SELECT 'trigger', trigger_name FROM information_schema.triggers WHERE trigger_schema = '$db'
		UNION ALL SELECT 'event', event_name FROM information_schema.events WHERE event_schema = '$db'
		UNION ALL SELECT 'view', table_name FROM information_schema.views WHERE table_schema = '$db'
		ORDER BY 1, 2" | while read -r kind name; do
		case $kind in
		# columns: name, sql_mode, statement, ... (triggers: + Created, left out)
		procedure | function | trigger)
			printf '%s %s %s\n' "$kind" "$name" "$(db_mariadb -N -B -D "$db" \
				-e "SHOW CREATE ${kind^^} \`$name\`" | cut -f2,3 | db__my_norm)" ;;
		# name, sql_mode, time_zone, statement, ...
		event)
			printf '%s %s %s\n' "$kind" "$name" "$(db_mariadb -N -B -D "$db" \
				-e "SHOW CREATE EVENT \`$name\`" | cut -f2-4 | db__my_norm)" ;;
		# name, statement, ...
		view)
			printf '%s %s %s\n' "$kind" "$name" "$(db_mariadb -N -B -D "$db" \
				-e "SHOW CREATE VIEW \`$name\`" | cut -f2 | db__my_norm)" ;;
		esac
	done
}

# --- Redis ------------------------------------------------------------------------
# db_redis_fixture: FLUSHALL, then in db 0: 1000 strings, 301 binary strings
# (one with all 256 byte values, one of 256 KiB), 400 small hashes + one of
# 2000 fields, 300 lists + one of 10000 elements, 300 integer sets, 300 string
# sets + one of 3000 members, 300 sorted sets + one of 3000, 20 streams (50
# entries each, explicit ids) with a consumer group and pending entries,
# 201 keys with a PEXPIREAT in 2100 (ttl:*); in db 3: 31 keys of all types.
db_redis_fixture() {
	db_redis FLUSHALL >/dev/null || return 1
	python3 - <<'PY' >"${TMPDIR:-/tmp}/coffer-redis-fixture.$$" || return 1
import random, sys
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
r = random.Random(20240229)
cmd("SELECT", 0)
for i in range(1000):
    cmd("SET", f"str:{i}", f"value {i} " + "é😀"[i % 2] * (i % 50))
for i in range(299):
    cmd("SET", f"bin:{i}", r.randbytes(r.randint(0, 300)))
cmd("SET", "bin:all-bytes", bytes(range(256)))
cmd("SET", "bin:big", r.randbytes(256 * 1024))
cmd("SET", "str:empty", "")
cmd("SET", b"key:\x00\xff\r\n binary name", "binary key name")
cmd("SET", "counter", 12345)
for i in range(400):
    f = []
    for j in range(10):
        f += [f"f{j}", f"v{i}.{j}"]
    cmd("HSET", f"hash:{i}", *f)
f = []
for j in range(2000):
    f += [f"field:{j}", r.randbytes(20)]
cmd("HSET", "hash:big", *f)
for i in range(300):
    cmd("RPUSH", f"list:{i}", *[f"item {i}.{j}" for j in range(1 + i % 20)])
for k in range(0, 10000, 1000):
    cmd("RPUSH", "list:big", *[f"element {j} " + "x" * (j % 100) for j in range(k, k + 1000)])
for i in range(300):
    cmd("SADD", f"intset:{i}", *[str(i * 100 + j) for j in range(1 + i % 30)])
    cmd("SADD", f"set:{i}", *[f"member {j}" for j in range(1 + i % 30)])
cmd("SADD", "set:big", *[f"m{j}" for j in range(3000)])
for i in range(300):
    z = []
    for j in range(1 + i % 25):
        z += [str(j * 1.5 - 10), f"z{j}"]
    cmd("ZADD", f"zset:{i}", *z)
z = []
for j in range(3000):
    z += [repr(r.uniform(-1e6, 1e6)), f"member:{j}"]
cmd("ZADD", "zset:big", *z)
for i in range(20):
    for j in range(50):
        cmd("XADD", f"stream:{i}", f"{1700000000000 + j}-{i}", "n", str(j), "text", f"entry {j} 😀")
    cmd("XGROUP", "CREATE", f"stream:{i}", "grp", "0")
    cmd("XREADGROUP", "GROUP", "grp", "consumer-1", "COUNT", str(5 + i), "STREAMS", f"stream:{i}", ">")
    if i % 2 == 0:
        cmd("XGROUP", "CREATE", f"stream:{i}", "other", "$")
for i in range(200):
    cmd("SET", f"ttl:{i}", f"expires in 2100 ({i})")
    cmd("PEXPIREAT", f"ttl:{i}", 4102444800000 + i)
cmd("HSET", "ttl:hash", "a", "1")
cmd("PEXPIREAT", "ttl:hash", 4102444800000)
cmd("SELECT", 3)
for i in range(10):
    cmd("SET", f"db3:str:{i}", f"db three {i}")
    cmd("HSET", f"db3:hash:{i}", "a", str(i), "b", "x")
    cmd("RPUSH", f"db3:list:{i}", "a", "b", str(i))
cmd("SET", "ttl:db3", "x")
cmd("PEXPIREAT", "ttl:db3", 4102444800000)
PY
	local f="${TMPDIR:-/tmp}/coffer-redis-fixture.$$" out
	out=$(REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --pipe <"$f" 2>&1)
	rm -f "$f"
	case $out in
	*"errors: 0,"*) return 0 ;;
	*) echo "db_redis_fixture: $out" >&2; return 1 ;;
	esac
}

# db_redis_digest [PORT]: prints "digest <DEBUG DIGEST>", one "dbN keys=K
# expires=E" line per non-empty database, and "ttl keys=N without-ttl=M" for
# the keys named ttl:* of every database (the fixture gives them a TTL).
# PORT (default REDIS_PORT) is a server with the harness's password, such as
# one of db_redis_start_from_rdb.
db_redis_digest() {
	local port=${1:-$REDIS_PORT} n
	db__redis_at() {
		REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") redis-cli -h "$REDIS_HOST" -p "$port" "$@"
	}
	printf 'digest %s\n' "$(db__redis_at DEBUG DIGEST)" || return 1
	db__redis_at INFO keyspace | tr -d '\r' | sed -nE 's/^(db[0-9]+):keys=([0-9]+),expires=([0-9]+).*/\1 keys=\2 expires=\3/p'
	db__redis_at INFO keyspace | tr -d '\r' | sed -nE 's/^db([0-9]+):.*/\1/p' | while read -r n; do
		db__redis_at -n "$n" EVAL "local n, m = 0, 0
			for _, k in ipairs(redis.call('KEYS', 'ttl:*')) do
				n = n + 1
				if redis.call('PTTL', k) < 0 then m = m + 1 end
			end
			return {n, m}" 0 | tr '\n' ' '
		echo
	done | awk '{ n += $1; m += $2 } END { printf "ttl keys=%d without-ttl=%d\n", n, m }'
}

# db_redis_start_from_rdb FILE PORT DIR: starts a redis-server on
# 127.0.0.1:PORT that loads a copy of FILE (DIR/dump.rdb), with the harness's
# password for the default user and DEBUG allowed; waits until it has loaded
# the data; stops it at exit (db_redis_stop_dir DIR stops it before).
db_redis_start_from_rdb() {
	local file=$1 port=$2 dir i
	dir=$(realpath -m -- "$3")
	[ -f "$file" ] || { echo "db_redis_start_from_rdb: no file $file" >&2; return 1; }
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "db_redis_start_from_rdb: port $port is in use" >&2
		return 1
	fi
	mkdir -p "$dir" || return 1
	cp -- "$file" "$dir/dump.rdb" || return 1
	(
		umask 077
		cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $port
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
dbfilename dump.rdb
save ""
appendonly no
enable-debug-command local
proc-title-template "{title} {listen-addr} {config-file}"
requirepass $(cat "$REDIS_PASSWORD_FILE")
EOF
	)
	db__at_exit "db_redis_stop_dir '$dir'"
	redis-server "$dir/redis.conf" </dev/null >/dev/null 2>&1 9>&- || {
		echo "db_redis_start_from_rdb: redis-server failed; see $dir/redis.log" >&2
		return 1
	}
	for i in $(seq 1 300); do
		if [ "$(REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") redis-cli -h 127.0.0.1 -p "$port" \
			INFO persistence 2>/dev/null | tr -d '\r' | grep -c '^loading:0$')" = 1 ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "db_redis_start_from_rdb: the server did not load $file; see $dir/redis.log" >&2
	tail -n 5 "$dir/redis.log" >&2
	return 1
}

# db_redis_stop_dir DIR: stops the redis-server of DIR/redis.conf (SIGTERM,
# SIGKILL after 10 s).
db_redis_stop_dir() {
	local dir pid p c i pids=""
	dir=$(realpath -m -- "$1")
	for p in /proc/[0-9]*; do
		read -r c 2>/dev/null <"$p/comm" || continue
		[ "$c" = redis-server ] || continue
		c=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")
		case " $c " in *" $dir/redis.conf "*) pids="$pids ${p#/proc/}" ;; esac
	done
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for i in $(seq 1 100); do
		c=""
		for pid in $pids; do
			[ -r "/proc/$pid/stat" ] && [ "$(sed -E 's/.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null)" != Z ] && c=1
		done
		[ -z "$c" ] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
}
