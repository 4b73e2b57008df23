# test_db_redis: the redis source against the harness's Redis 7: a backup
# (with the default user's password, with an ACL user, over the unix socket)
# restored with `coffer restore --to FILE` and with age | zstd, checked by
# redis-check-rdb and loaded into a second server whose DEBUG DIGEST, key
# counts and TTLs equal the original's; the password never in argv or a log;
# and the failures: wrong or missing password, unreachable server, missing
# redis-cli, a server killed in the middle of the transfer, and an RDB cut
# short by a redis-cli that still exits 0. A failed backup leaves no complete
# record and no object.
. "$(dirname "$0")/lib.sh"
t_setup db_redis
for tool in redis-server redis-cli redis-check-rdb; do
	command -v "$tool" >/dev/null || t_skip "$tool is not installed (redis-server, redis-tools)"
done
# shellcheck source=../harness/db-env.sh
. "$COFFER_SRC/tests/harness/db-env.sh"

# A TCP port nobody listens on (for a second server, or for "unreachable").
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SERVER_VERSION=$(redis-server --version | sed -nE 's/.* v=([0-9.]+).*/\1/p')
DOWN_PORT=$(free_port)
printf 'not-the-password\n' >"$T/wrong.pass"

# A redis-cli that logs its argv and whether REDISCLI_AUTH is the password,
# then runs the real one: the password must reach it only by the variable.
REAL_CLI=$(command -v redis-cli)
cat >"$T/logging-cli" <<EOF
#!/bin/bash
printf 'argv:' >>"$T/cli.log"
printf ' %q' "\$@" >>"$T/cli.log"
printf '\n' >>"$T/cli.log"
if [ "\${REDISCLI_AUTH-}" = "\$(cat '$REDIS_PASSWORD_FILE')" ]; then echo "env: REDISCLI_AUTH ok" >>"$T/cli.log"; fi
exec "$REAL_CLI" "\$@"
EOF
# A redis-cli whose --rdb output is cut short while it still exits 0 (as a
# tool that does not notice a truncation would): the RDB check must refuse it.
cat >"$T/cutting-cli" <<EOF
#!/bin/bash
for a in "\$@"; do
	if [ "\$a" = --rdb ]; then
		"$REAL_CLI" "\$@" 2>/dev/null | head -c 100000
		exit 0
	fi
done
exec "$REAL_CLI" "\$@"
EOF
chmod +x "$T/logging-cli" "$T/cutting-cli"

t_config <<EOF
[source redis]
type = redis
host = $REDIS_HOST
port = $REDIS_PORT
password_file = $REDIS_PASSWORD_FILE

[source redis-acl]
type = redis
host = $REDIS_HOST
port = $REDIS_PORT
user = $REDIS_BACKUP_USER
password_file = $REDIS_BACKUP_PASSWORD_FILE

[source redis-sock]
type = redis
socket = $REDIS_SOCKET
password_file = $REDIS_PASSWORD_FILE

[source logged]
type = redis
port = $REDIS_PORT
password_file = $REDIS_PASSWORD_FILE
redis_cli = $T/logging-cli

[source wrongpw]
type = redis
port = $REDIS_PORT
password_file = $T/wrong.pass

[source nopw]
type = redis
port = $REDIS_PORT

[source down]
type = redis
port = $DOWN_PORT
password_file = $REDIS_PASSWORD_FILE

[source nocli]
type = redis
port = $REDIS_PORT
password_file = $REDIS_PASSWORD_FILE
redis_cli = /nonexistent

[source cut]
type = redis
port = $REDIS_PORT
password_file = $REDIS_PASSWORD_FILE
redis_cli = $T/cutting-cli
EOF

db_redis_fixture || { fail "db_redis_fixture fills the harness's Redis"; t_finish; }
db_redis_digest >"$T/digest.orig"
check_grep "the fixture's digest is taken" "$T/digest.orig" '^digest [0-9a-f]{40}$'
check_grep "the fixture has keys with a TTL" "$T/digest.orig" '^ttl keys=[1-9][0-9]* without-ttl=0$'

# roundtrip SOURCE: restores the newest complete backup of SOURCE with
# --to FILE and with age | zstd, checks both with redis-check-rdb, loads the
# file into a second server and compares it with the original.
roundtrip() {
	local src=$1 id obj port
	id=$(last_id "$src")
	if [ -z "$id" ]; then
		fail "$src: a complete backup is listed"
		return
	fi
	cf restore "$id" --to "$T/$src/restored.rdb"
	check_rc "$src: restore --to FILE" 0
	check "$src: restore --to FILE writes the RDB as FILE" test -f "$T/$src/restored.rdb"
	check_grep "$src: restore --to FILE names no other file" <(ls -A "$T/$src") '^restored\.rdb$'
	redis-check-rdb "$T/$src/restored.rdb" >"$T/$src.check" 2>&1
	check_grep "$src: redis-check-rdb accepts the restored file" "$T/$src.check" 'RDB looks OK'
	obj=$(object_path "$id" dump.rdb)
	age -d -i "$KEY" "$obj" 2>"$T/age.err" | zstd -d -q >"$T/$src/plain.rdb" 2>>"$T/age.err"
	check_same_file "$src: age -d | zstd -d gives the same RDB" "$T/$src/restored.rdb" "$T/$src/plain.rdb"
	port=$(free_port)
	if db_redis_start_from_rdb "$T/$src/restored.rdb" "$port" "$T/$src/server"; then
		pass "$src: a second redis-server loads the RDB"
		db_redis_digest "$port" >"$T/$src.digest"
		check_same_file "$src: DEBUG DIGEST, key counts and TTLs equal the original's" \
			"$T/digest.orig" "$T/$src.digest"
		db_redis_stop_dir "$T/$src/server"
	else
		fail "$src: a second redis-server loads the RDB"
	fi
}

# --- backups -----------------------------------------------------------------
cf --verbose backup redis redis-acl redis-sock
check_rc "backup with the password, with the ACL user, over the socket" 0
check_eq "three backups complete" 3 "$(grep -c ' complete ' "$OUT")"
roundtrip redis
roundtrip redis-acl
roundtrip redis-sock

ID=$(last_id redis)
check "the object is <repo>/redis/<id>/dump.rdb.zst.age" test -f "$REPO/redis/$ID/dump.rdb.zst.age"
cf show "$ID" --json
check_eq "the object's format is rdb" rdb "$(jq -r '.objects[0].format' "$OUT")"
check_eq "meta: engine, server version, databases with keys, how" \
	"{\"databases\":[0,3],\"dump\":\"redis-cli --rdb\",\"engine\":\"redis\",\"server_version\":\"$SERVER_VERSION\"}" \
	"$(jq -cS '.meta' "$OUT")"
check_eq "raw_bytes is the RDB's size" "$(stat -c %s "$T/redis/restored.rdb")" "$(jq '.objects[0].raw_bytes' "$OUT")"

# The password: only in REDISCLI_AUTH, never in argv or the log.
: >"$T/cli.log"
cf --verbose backup logged
check_rc "backup through a redis-cli that logs its arguments" 0
check_grep "redis-cli gets the password in REDISCLI_AUTH" "$T/cli.log" '^env: REDISCLI_AUTH ok$'
check_grep "redis-cli runs INFO server keyspace" "$T/cli.log" "^argv: -h 127\.0\.0\.1 -p $REDIS_PORT --no-auth-warning INFO server keyspace$"
check_grep "redis-cli runs --rdb -" "$T/cli.log" "^argv: -h 127\.0\.0\.1 -p $REDIS_PORT --no-auth-warning --rdb -$"
PW=$(cat "$REDIS_PASSWORD_FILE")
check_no_grep "the password is in no argv" "$T/cli.log" "$PW"
check_no_grep "the password is not in coffer's log" "$ERR" "$PW"
check_no_grep "the password is not in the catalog's records" <(list_json) "$PW"

# --- failures ------------------------------------------------------------------
# expect_failure SOURCE REGEX DESC: the backup fails with exit 5 and one
# error line matching, is recorded failed, and leaves no object.
expect_failure() {
	local src=$1 re=$2 desc=$3
	cf backup "$src"
	check_rc "$desc: backup fails" 5
	check_one_error_line "$desc: one error line"
	check_grep "$desc: the error says what failed" "$ERR" "^coffer: error: $re"
	check_eq "$desc: the backup is recorded failed" 1 "$(count_status "$src" failed)"
	check_eq "$desc: no complete backup is listed" 0 "$(count_status "$src" complete)"
	check_empty_output "$desc: no object is left in the repository" find "$REPO" -path "$REPO/$src/*" -type f
}
expect_failure wrongpw "source wrongpw: redis at 127\.0\.0\.1:$REDIS_PORT: WRONGPASS invalid username-password pair" \
	"wrong password"
expect_failure nopw "source nopw: redis at 127\.0\.0\.1:$REDIS_PORT: NOAUTH Authentication required" \
	"no password"
expect_failure down "source down: redis at 127\.0\.0\.1:$DOWN_PORT: Could not connect to Redis at 127\.0\.0\.1:$DOWN_PORT: Connection refused" \
	"unreachable server"
expect_failure nocli "source nocli: redis-cli: cannot run '/nonexistent': No such file or directory" \
	"redis-cli missing"
expect_failure cut "source cut: redis at 127\.0\.0\.1:$REDIS_PORT: the RDB stream is truncated or corrupt" \
	"an RDB cut short while redis-cli exits 0"
check_no_grep "the wrong password is not logged" "$ERR" "not-the-password"

# --- the server dies in the middle of the transfer ----------------------------------
# A private server (the harness's must stay up), with ~200 MB of values
# stored uncompressed and a per-key delay in the snapshot, so the transfer
# lasts a few seconds; it is killed (with its snapshot child) once coffer has
# stored part of the stream.
BIG_PORT=$(free_port)
mkdir -p "$T/big"
cat >"$T/big/redis.conf" <<EOF
bind 127.0.0.1
port $BIG_PORT
daemonize yes
pidfile $T/big/redis.pid
logfile $T/big/redis.log
dir $T/big
save ""
appendonly no
enable-debug-command local
rdbcompression no
repl-diskless-sync-delay 0
rdb-key-save-delay 20
EOF
redis-server "$T/big/redis.conf" </dev/null >/dev/null 2>&1
t_at_exit "kill -9 \$(cat '$T/big/redis.pid' 2>/dev/null) 2>/dev/null"
for _ in $(seq 1 50); do
	[ "$(redis-cli -p "$BIG_PORT" PING 2>/dev/null)" = PONG ] && break
	sleep 0.1
done
check_eq "a private redis-server holds 200000 values of 1000 bytes" OK \
	"$(redis-cli -p "$BIG_PORT" DEBUG POPULATE 200000 key 1000)"
cat >>"$CONF" <<EOF
[source big]
type = redis
port = $BIG_PORT
EOF
"$COFFER_BIN" --config "$CONF" backup big >"$OUT" 2>"$ERR" &
COFFER_PID=$!
# The stream's temporary object appears once data has gone through the pipeline.
seen=0
for _ in $(seq 1 300); do
	if [ -n "$(find "$REPO/big" -name '.*.tmp.*' -size +0 2>/dev/null)" ]; then
		seen=1
		break
	fi
	sleep 0.05
done
check_eq "part of the RDB is stored before the server is killed" 1 "$seen"
SERVER_PID=$(cat "$T/big/redis.pid")
# shellcheck disable=SC2046
kill -9 "$SERVER_PID" $(pgrep -P "$SERVER_PID") 2>/dev/null
wait "$COFFER_PID"
RC=$?
check_rc "a server killed mid-transfer fails the backup" 5
check_one_error_line "killed mid-transfer: one error line"
check_grep "killed mid-transfer: the error names redis-cli --rdb and its failure" "$ERR" \
	'^coffer: error: source big: redis-cli --rdb exited with status 1; stderr: .*(I/O Error|Error reading)'
check_eq "killed mid-transfer: the backup is recorded failed" 1 "$(count_status big failed)"
check_eq "killed mid-transfer: no complete backup is listed" 0 "$(count_status big complete)"
check_empty_output "killed mid-transfer: no object or temporary file is left" find "$REPO" -path "$REPO/big/*" -type f

# The harness's server is untouched: its data is what it was.
db_redis_digest >"$T/digest.after"
check_same_file "the harness's Redis still holds the fixture" "$T/digest.orig" "$T/digest.after"

# Every complete backup of this test verifies, its content checked for its
# format (coffer verify with the identity).
cf verify --all --json
check_rc "verify --all: every complete backup verifies" 0
check "verify --all checked the content of some" test "$(jq '[.copies[] | select(.ok and .level == "content")] | length' "$OUT")" -gt 0

t_finish
