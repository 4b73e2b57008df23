#!/bin/bash
# db-start.sh: throwaway PostgreSQL 15, MariaDB 10.11 and Redis 7 servers on
# 127.0.0.1, for coffer's database-source tests. Debian 12 packages:
# postgresql-15 postgresql-contrib mariadb-server mariadb-client redis-server
# redis-tools. Runs without systemd and never touches the distribution's own
# clusters or services: private config files, data folders, sockets and pid
# files, all in DIR. See tests/harness/README.md.
#
# Usage:  db-start.sh [--fixture] [--reuse] [--only pg|my|redis] [DIR]
#   DIR: the harness folder (default $COFFER_DB_DIR, else $COFFER_DB_DEFAULT_DIR,
#   else /tmp/coffer-db); wiped when the harness is made (only if it holds
#   nothing but a harness).
# Idempotent: when the servers of DIR are up with the same ports it prints
# "already running" and exits 0. When DIR holds a complete harness with the
# same ports but some servers are down, those are started again on their data
# ("restarted"). A harness with other ports is stopped and made anew.
# Concurrent starts of one DIR wait on DIR.lock.
#   --fixture  (CTest's harness/db_start) a harness in DIR is used whatever its
#              ports, and only one made here is marked DIR/fixture-owned, for
#              db-stop.sh --fixture
#   --reuse    a harness in DIR is used whatever its ports (db-env.sh)
#   --only X   start only server X (pg, my or redis) of the harness of DIR, if
#              it is down (db_pg_start, db_my_start); never makes a harness
#
# Environment:
#   PG_PORT=15432 MY_PORT=13306 REDIS_PORT=16379   TCP ports (127.0.0.1 only)
#   INSTALL=1      apt-get install the missing packages first
#   DB_PG_OSUSER   the OS user PostgreSQL runs as when started by root
#                  (default postgres, made by the postgresql-common package)
# Exit status: 0 running; 77 when the packages are missing and INSTALL is not 1;
# 1 on failure (the servers it started are stopped again; logs stay in DIR/log).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURE=0
REUSE=0
ONLY=
D=
while [ $# -gt 0 ]; do
	case $1 in
	--fixture) FIXTURE=1 REUSE=1 ;;
	--reuse) REUSE=1 ;;
	--only) ONLY=${2:-}; shift ;;
	--only=*) ONLY=${1#--only=} ;;
	-*) echo "usage: db-start.sh [--fixture] [--reuse] [--only pg|my|redis] [DIR]" >&2; exit 2 ;;
	*) D=$1 ;;
	esac
	shift
done
case $ONLY in "" | pg | my | redis) ;; *) echo "db-start.sh: --only pg|my|redis" >&2; exit 2 ;; esac
D=$(realpath -m -- "${D:-${COFFER_DB_DIR:-${COFFER_DB_DEFAULT_DIR:-/tmp/coffer-db}}}")
[ "$D" != / ] || { echo "db-start.sh: refusing DIR=/" >&2; exit 2; }
PG_PORT=${PG_PORT:-15432}
MY_PORT=${MY_PORT:-13306}
REDIS_PORT=${REDIS_PORT:-16379}
for p in "$PG_PORT" "$MY_PORT" "$REDIS_PORT"; do
	[[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] ||
		{ echo "db-start.sh: bad port $p" >&2; exit 2; }
done
PG_BIN=/usr/lib/postgresql/15/bin
PG_OSUSER=${DB_PG_OSUSER:-postgres}

t0=$(date +%s%N)
log() {
	local ms=$((($(date +%s%N) - t0) / 1000000))
	printf '[db-start %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}
die() { echo "db-start: $*" >&2; exit 1; }

# --- packages ---------------------------------------------------------------
PKGS="postgresql-15 postgresql-contrib mariadb-server mariadb-client redis-server redis-tools"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "${INSTALL:-0}" = 1 ]; then
		log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >/dev/null
		log "installed"
		t0=$(date +%s%N)
	else
		echo "db-start: missing packages:$missing (run with INSTALL=1)" >&2
		exit 77
	fi
fi
for c in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/pg_isready" "$PG_BIN/psql" mariadbd \
	mariadb-install-db mariadb mariadb-admin redis-server redis-cli flock; do
	command -v "$c" >/dev/null || die "$c not found"
done

# PostgreSQL refuses to run as root: as root, it runs as PG_OSUSER.
if [ "$(id -u)" = 0 ]; then
	id -u "$PG_OSUSER" >/dev/null 2>&1 || die "no OS user $PG_OSUSER for PostgreSQL (set DB_PG_OSUSER)"
	as_pg() { setpriv --reuid="$PG_OSUSER" --regid="$PG_OSUSER" --init-groups -- "$@"; }
	pg_owner() { chown "$PG_OSUSER:" "$@"; }
else
	as_pg() { "$@"; }
	pg_owner() { :; }
fi

# --- one start at a time for DIR --------------------------------------------
mkdir -p "$(dirname "$D")"
exec 9>"$D.lock"
flock -w 600 9 || die "timed out waiting for $D.lock"

PG_RUN=$D/pg/run
PG_DATA=$D/pg/data
MY_CNF=$D/my/my.cnf
MY_SOCK=$D/my/mariadb.sock
REDIS_CONF=$D/redis/redis.conf
REDIS_SOCK=$D/redis/redis.sock

pg_up() {
	[ -S "$PG_RUN/.s.PGSQL.$PG_PORT" ] && "$PG_BIN/pg_isready" -q -h "$PG_RUN" -p "$PG_PORT" -t 3
}
my_up() {
	[ -S "$MY_SOCK" ] && mariadb-admin --no-defaults -S "$MY_SOCK" -u root --connect-timeout=3 ping >/dev/null 2>&1
}
redis_up() {
	[ -S "$REDIS_SOCK" ] && [ "$(REDISCLI_AUTH=$(cat "$D/redis.pass" 2>/dev/null) redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ]
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for WHAT SECONDS PID CMD...: polls CMD every 0.1 s until it succeeds;
# fails at once when PID (if not empty) is gone.
wait_for() {
	local what=$1 secs=$2 pid=$3 i
	shift 3
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			die "$what exited during its start; see $D/log"
		fi
		sleep 0.1
	done
	die "$what did not answer within $secs s; see $D/log"
}

# --- starting the servers of a made DIR -------------------------------------
start_pg() {
	# pg_ctl -w waits until the server accepts connections; postgres runs as
	# PG_OSUSER with "-D DIR/pg/data" on its command line (db-stop.sh finds it so)
	(cd "$D/pg" && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$D/log/pg.log" -w -t 60 -s start 9>&-) ||
		die "PostgreSQL did not start; see $D/log/pg.log"
}
start_my() {
	local pid
	# --defaults-file first: only DIR/my/my.cnf is read, never /etc/mysql
	(cd "$D/my" && exec setsid mariadbd --defaults-file="$MY_CNF" </dev/null >>"$D/log/my.log" 2>&1 9>&-) &
	pid=$!
	wait_for "mariadbd" 60 "$pid" my_up
}
start_redis() {
	# daemonizes; its process title holds the config file's path (proc-title-template)
	(cd "$D/redis" && redis-server "$REDIS_CONF" </dev/null >>"$D/log/redis.log" 2>&1 9>&-) ||
		die "redis-server did not start; see $D/log/redis.log"
	wait_for "redis-server" 30 "" redis_up
}

# --- an existing harness ----------------------------------------------------
WANT="pg_port=$PG_PORT my_port=$MY_PORT redis_port=$REDIS_PORT"
complete() { [ -f "$D/state" ] && [ -f "$D/env.sh" ]; }

if [ -n "$ONLY" ]; then
	complete || die "no harness in $D (start it with db-start.sh $D)"
	# shellcheck disable=SC1091
	. "$D/env.sh"
	if ${ONLY}_up; then
		log "$ONLY already running in $D"
	else
		start_$ONLY
		log "$ONLY started in $D"
	fi
	exit 0
fi

if complete; then
	HAVE=$(cat "$D/state")
	if [ "$HAVE" = "$WANT" ] || [ "$REUSE" = 1 ]; then
		# shellcheck disable=SC1091
		. "$D/env.sh"
		down=""
		pg_up || down="$down pg"
		my_up || down="$down my"
		redis_up || down="$down redis"
		if [ -z "$down" ]; then
			log "already running in $D ($HAVE)"
			exit 0
		fi
		for s in $down; do
			start_$s
		done
		log "restarted$down in $D ($HAVE)"
		exit 0
	fi
	log "stopping the harness of $D ($HAVE): $WANT wanted"
fi

# --- making a new harness ---------------------------------------------------
if [ -e "$D" ]; then
	# Only ever wipe a folder that holds nothing but a harness.
	for f in "$D"/* "$D"/.[!.]*; do
		[ -e "$f" ] || continue
		case ${f##*/} in
		pg | my | redis | log | state | env.sh | fixture-owned | *.pass | pgpass | my-client.cnf) ;;
		*) die "$D holds $f: not a harness folder, not wiped" ;;
		esac
	done
	"$HERE/db-stop.sh" "$D" >/dev/null
fi
for p in "$PG_PORT" "$MY_PORT" "$REDIS_PORT"; do
	if port_busy "$p"; then
		die "port $p on 127.0.0.1 is in use (another harness? stop it with db-stop.sh DIR, or set PG_PORT/MY_PORT/REDIS_PORT)"
	fi
done

# Unix socket paths are limited to 107 bytes.
[ ${#D} -le 80 ] || die "$D is too long for the servers' unix sockets (80 bytes at most)"
rm -rf "$D"
mkdir -p "$D"/{pg/run,pg/data,my/data,redis,log}
chmod 755 "$D" "$D/log"
chmod 700 "$D/my" "$D/redis"
# From here on, a failure stops what was started.
started=0
on_exit() {
	local rc=$?
	if [ "$rc" != 0 ] && [ "$started" = 1 ]; then
		echo "db-start: failed (exit $rc); logs in $D/log; stopping the servers" >&2
		"$HERE/db-stop.sh" "$D" >/dev/null 2>&1 || true
	fi
}
trap on_exit EXIT

# PG_OSUSER must reach DIR/pg: give o+x (traverse, not list) to the folders
# above it that lack it (mktemp -d folders, /root).
if [ "$(id -u)" = 0 ] && ! as_pg test -x "$D/pg"; then
	p=$D
	while [ "$p" != / ]; do
		if [ "$(stat -c %A "$p" | cut -c10)" = - ]; then
			chmod o+x "$p"
			log "made $p traversable (o+x) for $PG_OSUSER"
		fi
		p=$(dirname "$p")
	done
	as_pg test -x "$D/pg" || die "$PG_OSUSER cannot reach $D/pg"
fi

# Passwords: random, in 0600 files of DIR; never on a command line.
newpass() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
(
	umask 077
	newpass >"$D/pg.pass"
	newpass >"$D/my.pass"
	newpass >"$D/redis.pass"
	newpass >"$D/redis-backup.pass"
	{
		printf '127.0.0.1:%s:*:coffer:%s\n' "$PG_PORT" "$(cat "$D/pg.pass")"
		printf 'localhost:%s:*:coffer:%s\n' "$PG_PORT" "$(cat "$D/pg.pass")"
	} >"$D/pgpass"
	printf '[client]\nuser=coffer\npassword=%s\nhost=127.0.0.1\nport=%s\nprotocol=tcp\ndefault-character-set=utf8mb4\n' \
		"$(cat "$D/my.pass")" "$MY_PORT" >"$D/my-client.cnf"
)

# --- PostgreSQL 15 ----------------------------------------------------------
make_pg() {
	local t
	t=$(date +%s%N)
	pg_owner -R "$D/pg"
	chmod 700 "$D/pg/data" "$D/pg/run"
	: >"$D/log/pg.log"
	pg_owner "$D/log/pg.log"
	(umask 077 && cp "$D/pg.pass" "$D/pg/pwfile")
	pg_owner "$D/pg/pwfile"
	# superuser "coffer" (its password from pwfile), UTF8, C collation
	# (byte order: dumps sort the same everywhere), data checksums
	(cd "$D/pg" && as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U coffer --pwfile="$D/pg/pwfile" \
		-E UTF8 --locale=C -k -N >"$D/log/pg-initdb.log" 2>&1) ||
		die "initdb failed; see $D/log/pg-initdb.log"
	rm -f "$D/pg/pwfile"
	cat >>"$PG_DATA/postgresql.conf" <<EOF

# coffer test harness (tests/harness/db-start.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
max_connections = 40
shared_buffers = 32MB
# a throwaway server: no fsync (a killed server still loses nothing committed)
fsync = off
wal_level = replica
max_wal_senders = 4
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
	# the socket (mode 0700, in DIR/pg/run) trusts its users: the harness's own
	# use; TCP wants the password (SCRAM), replication connections too.
	cat >"$PG_DATA/pg_hba.conf" <<EOF
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
EOF
	start_pg
	# a database named after the user, so that psql without -d works
	"$PG_BIN/psql" -X -q -h "$PG_RUN" -p "$PG_PORT" -U coffer -d postgres \
		-v ON_ERROR_STOP=1 -c 'CREATE DATABASE coffer' >/dev/null
	log "PostgreSQL up on 127.0.0.1:$PG_PORT ($((($(date +%s%N) - t) / 1000000)) ms)"
}

# --- MariaDB 10.11 ----------------------------------------------------------
make_my() {
	local t root_user=root
	t=$(date +%s%N)
	[ "$(id -u)" = 0 ] || root_user=$(id -un)
	cat >"$MY_CNF" <<EOF
# coffer test harness (tests/harness/db-start.sh); read with --defaults-file only
[mysqld]
user = $root_user
datadir = $D/my/data
socket = $MY_SOCK
pid-file = $D/my/mariadbd.pid
port = $MY_PORT
bind-address = 127.0.0.1
skip-name-resolve
log-error = $D/log/my.log
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = 2
performance_schema = OFF
max_allowed_packet = 256M
event_scheduler = OFF
# a binary log, as on real servers (mariadb-dump --master-data needs it)
log-bin = $D/my/data/binlog
server-id = 1
binlog_format = ROW
log_bin_trust_function_creators = 1
expire_logs_days = 1
EOF
	chmod 600 "$MY_CNF"
	(cd "$D/my" && mariadb-install-db --defaults-file="$MY_CNF" --skip-test-db \
		--auth-root-authentication-method=socket --auth-root-socket-user="$root_user" \
		>"$D/log/my-install.log" 2>&1 9>&-) ||
		die "mariadb-install-db failed; see $D/log/my-install.log"
	start_my
	# root@localhost: unix_socket (the harness's own use); coffer: password, TCP
	mariadb --no-defaults -S "$MY_SOCK" -u root <<EOF || die "could not create the MariaDB user coffer"
CREATE USER 'coffer'@'127.0.0.1' IDENTIFIED BY '$(cat "$D/my.pass")';
CREATE USER 'coffer'@'localhost' IDENTIFIED BY '$(cat "$D/my.pass")';
GRANT ALL PRIVILEGES ON *.* TO 'coffer'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'coffer'@'localhost' WITH GRANT OPTION;
EOF
	log "MariaDB up on 127.0.0.1:$MY_PORT ($((($(date +%s%N) - t) / 1000000)) ms)"
}

# --- Redis 7 ----------------------------------------------------------------
make_redis() {
	local t
	t=$(date +%s%N)
	(
		umask 077
		cat >"$REDIS_CONF" <<EOF
# coffer test harness (tests/harness/db-start.sh)
bind 127.0.0.1
port $REDIS_PORT
unixsocket $REDIS_SOCK
unixsocketperm 700
daemonize yes
pidfile $D/redis/redis.pid
logfile $D/log/redis.log
dir $D/redis
dbfilename dump.rdb
# nothing saved: the data lives as long as the server
save ""
appendonly no
databases 16
enable-debug-command local
# db-stop.sh finds the server by the config file in its process title
proc-title-template "{title} {listen-addr} {config-file}"
requirepass $(cat "$D/redis.pass")
# "backup": what redis-cli --rdb needs (AUTH, REPLCONF rdb-only, SYNC), and INFO
user backup on >$(cat "$D/redis-backup.pass") resetkeys resetchannels -@all +auth +hello +ping +info +replconf +sync +psync
EOF
	)
	start_redis
	log "Redis up on 127.0.0.1:$REDIS_PORT ($((($(date +%s%N) - t) / 1000000)) ms)"
}

# The three are made side by side (PostgreSQL's initdb and MariaDB's
# install-db take the time).
started=1
make_pg >"$D/log/make-pg.out" 2>&1 &
p_pg=$!
make_my >"$D/log/make-my.out" 2>&1 &
p_my=$!
make_redis >"$D/log/make-redis.out" 2>&1 &
p_redis=$!
failed=""
wait "$p_pg" || failed="$failed pg"
wait "$p_my" || failed="$failed my"
wait "$p_redis" || failed="$failed redis"
cat "$D/log/make-pg.out" "$D/log/make-my.out" "$D/log/make-redis.out"
[ -z "$failed" ] || die "could not make:$failed"

cat >"$D/env.sh" <<EOF
# written by db-start.sh: the harness of $D (passwords are in the *.pass files)
DB_DIR='$D'
PG_PORT=$PG_PORT
MY_PORT=$MY_PORT
REDIS_PORT=$REDIS_PORT
PG_SOCKET_DIR='$PG_RUN'
MY_SOCKET='$MY_SOCK'
REDIS_SOCKET='$REDIS_SOCK'
EOF
echo "$WANT" >"$D/state"
if [ "$FIXTURE" = 1 ]; then touch "$D/fixture-owned"; fi
log "ready in $D (created): PostgreSQL 127.0.0.1:$PG_PORT, MariaDB 127.0.0.1:$MY_PORT, Redis 127.0.0.1:$REDIS_PORT"
