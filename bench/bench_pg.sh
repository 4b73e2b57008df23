#!/bin/bash
# bench_pg.sh: coffer's backup and restore of a PostgreSQL 15 database (a
# `pgbench -i -s 100` one, about 1.5 GB) against pg_dump / pg_restore alone
# (the floor: the source's own speed) and against pgBackRest (a physical
# backup, zstd + aes-256-cbc, into the same S3 server, a Ceph RADOS Gateway
# on loopback). It prints figures; it is not a test and never fails on a slow
# result.
#
#   bench/bench_pg.sh             scale 100 (about 1.5 GB), 5 runs, median (about 8 minutes)
#   bench/bench_pg.sh --quick     scale 10 (about 160 MB), 3 runs (about 2 minutes)
#   bench/bench_pg.sh --scale N   pgbench scale N (made once, then reused)
#   bench/bench_pg.sh --runs N    N runs of each measurement
#   bench/bench_pg.sh --no-s3     coffer into posix only (no coffer S3 rows)
#
# Environment: COFFER_BIN (default build/agent/coffer), BENCH_OUT (default
# bench/out; everything goes to BENCH_OUT/pg), INSTALL=1 (apt-get install
# pgbackrest when missing), PG_PORT (15440; +1 and +2 are used too),
# RGW_PORT (7620; TLS on RGW_PORT+10), MON_PORT (13420), PGBR_PROCESS_MAX
# (default: the number of cores), QUIET_WAIT (15).
# See bench/README.md ("PostgreSQL") for what is measured.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
BOUT=${BENCH_OUT:-$ROOT/bench/out}
OUT=$BOUT/pg
QUICK=0
RUNS=
SCALE=
S3=1
PG_PORT=${PG_PORT:-15440}
export RGW_PORT=${RGW_PORT:-7620}
export MON_PORT=${MON_PORT:-13420}
TLS_PORT=$((RGW_PORT + 10))
PGBR_PROCESS_MAX=${PGBR_PROCESS_MAX:-$(nproc)}
# memstore keeps the objects in the OSD's RAM; a run stores well under 1 GB.
export MEMSTORE_BYTES=${MEMSTORE_BYTES:-8589934592}
PG_BIN=/usr/lib/postgresql/15/bin
PG_OSUSER=${DB_PG_OSUSER:-postgres}
MIB=$((1024 * 1024))

usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--runs)
		RUNS=${2:?--runs needs a number}
		shift
		;;
	--scale)
		SCALE=${2:?--scale needs a number}
		shift
		;;
	--no-s3) S3=0 ;;
	-h | --help) usage 0 ;;
	*) usage 2 >&2 ;;
	esac
	shift
done
[ -n "$RUNS" ] || RUNS=$([ $QUICK = 1 ] && echo 3 || echo 5)
[ -n "$SCALE" ] || SCALE=$([ $QUICK = 1 ] && echo 10 || echo 100)
[[ $SCALE =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || usage 2 >&2

die() {
	echo "bench_pg: $*" >&2
	exit 1
}
say() { echo "bench_pg: $*" >&2; }

[ -x "$COFFER_BIN" ] || die "$COFFER_BIN is not built (run ./packaging/build.sh or set COFFER_BIN)"
if ! command -v pgbackrest >/dev/null; then
	if [ "${INSTALL:-0}" = 1 ]; then
		say "installing pgbackrest..."
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null; } ||
			die "apt-get install pgbackrest failed"
	else
		die "pgbackrest is missing (apt-get install pgbackrest, or INSTALL=1)"
	fi
fi
for tool in age-keygen python3 jq bc openssl curl aws pgbench pg_dump pg_restore psql; do
	command -v "$tool" >/dev/null || die "$tool is missing (./packaging/install-deps.sh --test)"
done
for tool in initdb pg_ctl pg_isready; do
	[ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool is missing (postgresql-15)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (package time)"

# PostgreSQL refuses to run as root: as root, it (and pgBackRest, which must
# own the files it restores) runs as PG_OSUSER, as in tests/harness/db-start.sh.
if [ "$(id -u)" = 0 ]; then
	id -u "$PG_OSUSER" >/dev/null 2>&1 || die "no OS user $PG_OSUSER for PostgreSQL (set DB_PG_OSUSER)"
	AS_PG=(setpriv --reuid="$PG_OSUSER" --regid="$PG_OSUSER" --init-groups --)
	pg_owner() { chown "$PG_OSUSER:" "$@"; }
else
	AS_PG=(env)
	pg_owner() { :; }
fi
as_pg() { "${AS_PG[@]}" "$@"; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$OUT/work
SRC=$OUT/src-s$SCALE # the pgbench cluster of this scale, kept between runs
TGT=$W/tgt           # the target of the logical restores, made each run
PITR=$W/pgbr-restore # pgBackRest's restores
RGW_DIR=$OUT/rgw
[ ${#OUT} -le 70 ] || die "$OUT is too long for the servers' unix sockets (set BENCH_OUT)"
# PG_OSUSER must reach OUT: give o+x (traverse, not list) to the folders above it.
if [ "$(id -u)" = 0 ] && ! as_pg test -x "$OUT"; then
	p=$OUT
	while [ "$p" != / ]; do
		if [ "$(stat -c %A "$p" | cut -c10)" = - ]; then
			chmod o+x "$p"
			say "made $p traversable (o+x) for $PG_OSUSER"
		fi
		p=$(dirname "$p")
	done
fi

# ----- cleanup at exit: everything this script started --------------------------
PG_DIRS=() # data folders of the clusters started here
RGW_STARTED=0
on_exit() {
	local d
	for d in "${PG_DIRS[@]}"; do
		if [ -f "$d/postmaster.pid" ]; then
			as_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w -t 60 -s stop >/dev/null 2>&1 || true
		fi
	done
	[ -z "${S3_CLEANUP:-}" ] || "$S3_CLEANUP" >/dev/null 2>&1 || true
	if [ "$RGW_STARTED" = 1 ]; then
		"$ROOT/tests/harness/rgw-stop.sh" "$RGW_DIR" >/dev/null 2>&1 || true
	fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

mkdir -p "$W"
# the previous run's work folder (a restored cluster may be in it: stop it first)
for d in "$W"/tgt/data "$PITR"; do
	if [ -f "$d/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -s stop >/dev/null 2>&1 || true
	fi
done
rm -rf "${W:?}"/*
mkdir -p "$W/pgbr/log" "$W/pgbr/lock" "$W/pgbr/spool" "$W/tls" "$W/repo"
pg_owner -R "$W/pgbr"

# ----- PostgreSQL clusters ------------------------------------------------------------
PASS_FILE=$OUT/pg.pass
PGPASS=$OUT/pgpass
if [ ! -s "$PASS_FILE" ]; then
	(umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$PASS_FILE")
fi
(
	umask 077
	for port in $PG_PORT $((PG_PORT + 1)) $((PG_PORT + 2)); do
		printf '127.0.0.1:%s:*:coffer:%s\n' "$port" "$(cat "$PASS_FILE")"
	done >"$PGPASS"
)
export PGPASSFILE=$PGPASS
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE

# make_cluster DIR PORT: initdb DIR/data (superuser coffer, password from
# PASS_FILE), with the bench's settings; DIR/run holds its socket.
make_cluster() {
	local dir=$1 port=$2
	rm -rf "$dir"
	mkdir -p "$dir/data" "$dir/run"
	(umask 077 && cp "$PASS_FILE" "$dir/pwfile")
	pg_owner -R "$dir"
	chmod 700 "$dir/data" "$dir/run"
	(cd "$dir" && as_pg "$PG_BIN/initdb" -D "$dir/data" -U coffer --pwfile="$dir/pwfile" \
		-E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1) || die "initdb failed; see $dir/initdb.log"
	rm -f "$dir/pwfile"
	cat >>"$dir/data/postgresql.conf" <<EOF

# coffer bench (bench/bench_pg.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/run'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
max_connections = 20
shared_buffers = 256MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
# a throwaway server: no fsync; no autovacuum (its work on a freshly restored
# table would land in the next measurement)
fsync = off
autovacuum = off
wal_level = replica
max_wal_senders = 4
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
# written at each start: the archive settings (bench-run.conf)
include_if_exists = 'bench-run.conf'
EOF
	cat >"$dir/data/pg_hba.conf" <<EOF
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
EOF
	pg_owner "$dir/data/postgresql.conf" "$dir/data/pg_hba.conf"
}

# start_cluster DIR [ARCHIVE_COMMAND]: starts it (archive_mode on when an
# archive command is given) and stops it again at exit.
start_cluster() {
	local dir=$1 cmd=${2:-}
	if [ -n "$cmd" ]; then
		printf "archive_mode = on\narchive_command = '%s'\n" "$cmd" >"$dir/data/bench-run.conf"
	else
		printf "archive_mode = off\n" >"$dir/data/bench-run.conf"
	fi
	pg_owner "$dir/data/bench-run.conf"
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 120 -s stop >/dev/null 2>&1 || true
	fi
	PG_DIRS+=("$dir/data")
	(cd "$dir" && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 120 -s start) ||
		die "PostgreSQL did not start; see $dir/pg.log"
}
stop_cluster() {
	as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 120 -s stop >/dev/null
}

# psql_at PORT DB ARGS...: psql as coffer over TCP (the password from PGPASSFILE)
psql_at() {
	local port=$1 db=$2
	shift 2
	psql -X -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U coffer -d "$db" "$@"
}
conn() { echo "host=127.0.0.1 port=$1 user=coffer dbname=$2"; }

SRC_PORT=$PG_PORT
TGT_PORT=$((PG_PORT + 1))
PITR_PORT=$((PG_PORT + 2))
DB=bench

# The pgbench database: made once per scale (archive_mode off meanwhile), then reused.
if [ "$(cat "$SRC/state" 2>/dev/null)" != "scale=$SCALE" ]; then
	say "making the pgbench database, scale $SCALE (once; reused by later runs)..."
	make_cluster "$SRC" "$SRC_PORT"
	start_cluster "$SRC"
	psql_at "$SRC_PORT" postgres -c "CREATE DATABASE $DB"
	t0=$(date +%s)
	pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$SRC_PORT" -U coffer "$DB" >"$SRC/pgbench-init.log" 2>&1 ||
		die "pgbench -i failed; see $SRC/pgbench-init.log"
	psql_at "$SRC_PORT" "$DB" -c CHECKPOINT
	say "pgbench -i -s $SCALE took $(($(date +%s) - t0)) s"
	stop_cluster "$SRC/data"
	echo "scale=$SCALE" >"$SRC/state"
fi

# ----- the S3 server: a gateway of this script's own, with a TLS port ---------------
# pgBackRest speaks only https to S3: beast gets an ssl_endpoint with a
# self-signed certificate, given to pgBackRest as its CA file. coffer uses the
# plain http port.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" -days 30 \
	-subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost" >/dev/null 2>&1 ||
	die "openssl could not make a certificate"
chmod 644 "$W/tls/cert.pem"
say "starting the RADOS Gateway in $RGW_DIR (http $RGW_PORT, https $TLS_PORT)..."
RGW_STARTED=1
"$ROOT/tests/harness/rgw-start.sh" "$RGW_DIR" >"$W/rgw-start.log" 2>&1 ||
	die "rgw-start.sh failed: $(tail -3 "$W/rgw-start.log")"
C=$RGW_DIR/ceph.conf
RGW_PID_FILE=$RGW_DIR/run/client.rgw.0.pid
kill "$(cat "$RGW_PID_FILE")"
for _ in $(seq 1 100); do kill -0 "$(cat "$RGW_PID_FILE" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
sed -i "s|^rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT.*|rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT ssl_endpoint=127.0.0.1:$TLS_PORT ssl_certificate=$W/tls/cert.pem ssl_private_key=$W/tls/key.pem|" "$C"
radosgw -c "$C" -n client.rgw.0
for _ in $(seq 1 200); do
	curl -s -m 2 --cacert "$W/tls/cert.pem" -o /dev/null "https://127.0.0.1:$TLS_PORT/" && break
	sleep 0.1
done
curl -s -m 2 --cacert "$W/tls/cert.pem" -o /dev/null "https://127.0.0.1:$TLS_PORT/" ||
	die "radosgw does not answer on https://127.0.0.1:$TLS_PORT; see $RGW_DIR/log"
export COFFER_RGW_DIR=$RGW_DIR S3_KEEP_RGW=1
S3_CLEANUP=
t_at_exit() { S3_CLEANUP=$1; } # s3-env.sh's cleanup (the gateway is stopped by on_exit)
t_skip() { die "the S3 harness is not available: $*"; }
set +eu
# shellcheck source=/dev/null
. "$ROOT/tests/harness/s3-env.sh"
set -eu
CBUCKET=coffer-bench-pg
PBUCKET=pgbackrest-bench-pg
for b in $CBUCKET $PBUCKET; do
	s3_rmbucket "$b" >/dev/null 2>&1 || true
	s3_mkbucket "$b" || die "cannot create bucket $b at $S3_ENDPOINT"
done
# Untimed warm-up: the first writes create RGW's pools and multipart metadata.
head -c $((40 * MIB)) /dev/zero | s3_aws s3 cp - "s3://$CBUCKET/warmup" --only-show-errors ||
	die "cannot write to bucket $CBUCKET"
s3_aws s3 rm "s3://$CBUCKET/warmup" --only-show-errors >/dev/null

# ----- pgBackRest: the stanza of the source cluster ------------------------------------
PGBR_CONF=$W/pgbr/pgbackrest.conf
(
	umask 077
	cat >"$PGBR_CONF" <<EOF
[global]
repo1-type=s3
repo1-path=/bench
repo1-s3-bucket=$PBUCKET
repo1-s3-endpoint=127.0.0.1
repo1-storage-port=$TLS_PORT
repo1-s3-region=$S3_REGION
repo1-s3-uri-style=path
repo1-s3-key=$S3_ACCESS_KEY
repo1-s3-key-secret=$S3_SECRET_KEY
repo1-storage-ca-file=$W/tls/cert.pem
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
repo1-retention-full=100
repo1-bundle=y
compress-type=zst
compress-level=3
process-max=$PGBR_PROCESS_MAX
start-fast=y
log-path=$W/pgbr/log
lock-path=$W/pgbr/lock
spool-path=$W/pgbr/spool
log-level-console=warn
log-level-file=info

[bench]
pg1-path=$SRC/data
pg1-port=$SRC_PORT
pg1-socket-path=$SRC/run
pg1-user=coffer
EOF
)
pg_owner "$PGBR_CONF"
pgbr() { as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench "$@"; }

say "starting the source cluster (archive_command = pgbackrest archive-push)..."
start_cluster "$SRC" "pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p"
pgbr stanza-create >"$W/pgbr-stanza.log" 2>&1 || die "pgbackrest stanza-create failed: $(cat "$W/pgbr-stanza.log")"
pgbr check >"$W/pgbr-check.log" 2>&1 || die "pgbackrest check failed: $(cat "$W/pgbr-check.log")"

say "making the target cluster of the logical restores..."
make_cluster "$TGT" "$TGT_PORT"
start_cluster "$TGT"

DB_BYTES=$(psql_at "$SRC_PORT" "$DB" -At -c "SELECT pg_database_size('$DB')")

# sig PORT DB [HOST]: what a restore must give back: row counts and sums of
# every pgbench table, and the indexes.
sig() {
	psql -X -q -w -v ON_ERROR_STOP=1 -h "${3:-127.0.0.1}" -p "$1" -U coffer -d "$2" -At -c "
		SELECT (SELECT count(*) || '/' || sum(aid::bigint) || '/' || sum(bid) || '/' || sum(abalance)
		        || '/' || sum(length(filler)) FROM pgbench_accounts),
		       (SELECT count(*) || '/' || sum(bid) || '/' || sum(bbalance) FROM pgbench_branches),
		       (SELECT count(*) || '/' || sum(tid) || '/' || sum(tbalance) FROM pgbench_tellers),
		       (SELECT count(*) FROM pgbench_history),
		       (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes
		         WHERE schemaname = 'public')" | tr '|' ' '
}
SRC_SIG=$(sig "$SRC_PORT" "$DB")
check_sig() { # WHAT SIG
	[ "$2" = "$SRC_SIG" ] || die "$1 does not give back the database: '$2', want '$SRC_SIG'"
	say "$1: the restored database matches the source ($SRC_SIG)"
}

# ----- coffer's configurations ---------------------------------------------------------
KEY=$BOUT/key.txt
[ -s "$KEY" ] || age-keygen -o "$KEY" 2>/dev/null
RECIPIENT=$(age-keygen -y "$KEY")
source_section() {
	cat <<EOF
[encryption]
recipients = $RECIPIENT
identity = $KEY

[compression]
level = 3
workers = auto

[source pg]
type = postgres
host = 127.0.0.1
port = $SRC_PORT
user = coffer
passfile = $PGPASS
databases = $DB
globals = false
EOF
}
CONF=$W/coffer-posix.conf
cat >"$CONF" <<EOF
[repository]
type = posix
path = $W/repo

[catalog]
path = $W/catalog-posix

$(source_section)
EOF
CONF_S3=$W/coffer-s3.conf
S3_PREFIX=coffer/
cat >"$CONF_S3" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $CBUCKET
prefix = $S3_PREFIX

[catalog]
path = $W/catalog-s3

$(source_section)
EOF
chmod 600 "$CONF" "$CONF_S3"

# ----- measuring -------------------------------------------------------------------

# tv FILE FIELD: a figure from a /usr/bin/time -v report: rss (KiB), cpu (s).
tv() {
	awk -v f="$2" '
		/Maximum resident set size/ { rss = $NF }
		/User time \(seconds\)/ { u = $NF }
		/System time \(seconds\)/ { s = $NF }
		END { if (f == "rss") print rss; else printf "%.2f\n", u + s }' "$1"
}
now() { date +%s.%N; }
CLK_TCK=$(getconf CLK_TCK)

# pg_cpu DATA: CPU seconds used so far by the cluster of DATA: the postmaster
# and its live children (user + system), and all they have reaped (exited
# backends, the archiver's archive-push commands).
pg_cpu() {
	local pm
	pm=$(head -1 "$1/postmaster.pid" 2>/dev/null) || {
		echo 0
		return
	}
	# (cat, not awk FILES: a process that exits meanwhile is no error)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" -v hz="$CLK_TCK" '
		{
			pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
			# f[2] = ppid, f[12..15] = utime stime cutime cstime
			if (pid == pm || f[2] == pm) t += f[12] + f[13] + f[14] + f[15]
		}
		END { printf "%.2f\n", t / hz }'
}
# rgw_cpu: CPU seconds used so far by the gateway's daemons (radosgw, osd, mon).
rgw_cpu() {
	local f pid sum=0 t
	for f in "$RGW_DIR"/run/*.pid; do
		pid=$(cat "$f" 2>/dev/null) || continue
		t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || continue
		sum=$((sum + t))
	done
	echo "scale=2; $sum / $CLK_TCK" | bc
}
machine_cpu() {
	awk -v hz="$CLK_TCK" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}

# quiet: dirty pages written out, then waits (at most QUIET_WAIT s) until the
# machine is nearly idle, so that others' work lands in no measurement.
quiet() {
	local i a b
	sync
	for i in $(seq 1 "${QUIET_WAIT:-15}"); do
		a=$(machine_cpu)
		sleep 1
		b=$(machine_cpu)
		[ "$(echo "$b - $a < 0.3" | bc)" = 1 ] && return 0
		[ "$i" = 1 ] && say "waiting for the machine to be idle ($(echo "$b - $a" | bc) cores busy)..."
	done
	say "warning: the machine is still busy; measuring anyway"
}

RESULTS=$W/results.tsv # op tool run wall rss_kib cpu srv_cpu other_cpu stored_bytes detail
: >"$RESULTS"
T0='' P0='' R0='' M0='' PGDATA_MEASURED=''
# start DATA: DATA is the cluster whose server CPU counts (the source for a
# backup, the target for a restore).
start() {
	PGDATA_MEASURED=$1
	quiet
	P0=$(pg_cpu "$PGDATA_MEASURED")
	R0=$(rgw_cpu)
	M0=$(machine_cpu)
	T0=$(now)
}
T1='' P1='' R1='' M1=''
# stop_clock: the end of a measurement (what runs after it, such as looking up
# the stored size, counts nowhere).
stop_clock() {
	T1=$(now)
	P1=$(pg_cpu "$PGDATA_MEASURED")
	R1=$(rgw_cpu)
	M1=$(machine_cpu)
}
# record OP TOOL RUN RSS_KIB CPU STORED_BYTES DETAIL [EXTRA_SRV_CPU]
record() {
	local srv
	[ -n "$T1" ] || stop_clock
	srv=$(echo "$P1 - $P0 + $R1 - $R0 + ${8:-0}" | bc)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(echo "$T1 - $T0" | bc)" "$4" "$5" \
		"$srv" "$(echo "$M1 - $M0 - $srv - $5" | bc)" "$6" "$7" >>"$RESULTS"
	T1=''
}

object_size_s3() {
	s3_aws s3api head-object --bucket "$CBUCKET" --key "$1" --query ContentLength --output text
}

# The floor's dump file for pg_restore (untimed, once): the same -Fc -Z0 stream
# coffer stores.
FLOOR=$W/$DB.pgdump
pg_dump -Fc -Z0 -w -h 127.0.0.1 -p "$SRC_PORT" -U coffer -f "$FLOOR" "$DB" || die "pg_dump of $DB failed"
FLOOR_BYTES=$(stat -c %s "$FLOOR")

# Untimed warm-up of the target: its first restore creates the WAL segments
# (16 MiB each, zero-filled) that the later ones recycle.
say "warm-up restore into the target (untimed)..."
psql_at "$TGT_PORT" postgres -c "CREATE DATABASE r_warmup"
pg_restore --single-transaction --no-password -d "$(conn "$TGT_PORT" r_warmup)" "$FLOOR" ||
	die "the warm-up pg_restore failed"
psql_at "$TGT_PORT" postgres -c "DROP DATABASE r_warmup" -c CHECKPOINT

say "database $DB: scale $SCALE, $((DB_BYTES / MIB)) MiB (pg_database_size), -Fc -Z0 dump $((FLOOR_BYTES / MIB)) MiB; $RUNS run(s)"

for run in $(seq 1 "$RUNS"); do
	say "run $run/$RUNS"

	# ===== backups =====
	# (a) the floor: pg_dump alone, into /dev/null
	start "$SRC/data"
	/usr/bin/time -v -o "$W/t.time" pg_dump -Fc -Z0 -w -h 127.0.0.1 -p "$SRC_PORT" -U coffer -d "$DB" \
		>/dev/null 2>"$W/t.err" || die "pg_dump failed: $(cat "$W/t.err")"
	record backup pg_dump "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "$FLOOR_BYTES" "-Fc -Z0 > /dev/null"

	# (b) coffer into the posix repository
	start "$SRC/data"
	/usr/bin/time -v -o "$W/t.time" "$COFFER_BIN" --config "$CONF" --quiet --json backup pg \
		>"$W/c.json" 2>"$W/t.err" || die "coffer backup failed: $(cat "$W/t.err")"
	stop_clock
	ID=$(jq -r '.backups[0].id' "$W/c.json")
	OBJ=$(find "$W/repo" -path "*/$ID/*" -name "db-*" -type f | head -1)
	[ -n "$OBJ" ] || die "coffer backup $ID: no database object in $W/repo"
	record backup coffer "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "$(stat -c %s "$OBJ")" "posix"

	# (b) coffer into S3 (the gateway's http port)
	if [ "$S3" = 1 ]; then
		start "$SRC/data"
		/usr/bin/time -v -o "$W/t.time" "$COFFER_BIN" --config "$CONF_S3" --quiet --json backup pg \
			>"$W/c3.json" 2>"$W/t.err" || die "coffer backup to S3 failed: $(cat "$W/t.err")"
		stop_clock
		ID3=$(jq -r '.backups[0].id' "$W/c3.json")
		KEY3=$(s3_aws s3api list-objects-v2 --bucket "$CBUCKET" --prefix "$S3_PREFIX" \
			--query "Contents[?contains(Key, '$ID3/db-')].Key" --output text | head -1)
		record backup coffer-s3 "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" \
			"$(object_size_s3 "$KEY3")" "s3 (http)"
	fi

	# (c) pgBackRest: a full physical backup into S3 (https), zstd, aes-256-cbc
	start "$SRC/data"
	/usr/bin/time -v -o "$W/t.time" "${AS_PG[@]}" pgbackrest --config="$PGBR_CONF" --stanza=bench --type=full backup \
		>"$W/t.out" 2>&1 || die "pgbackrest backup failed: $(cat "$W/t.out")"
	stop_clock
	PGBR_STORED=$(pgbr info --output=json | jq '.[0].backup[-1].info.repository.delta')
	record backup pgbackrest "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "$PGBR_STORED" \
		"full, s3 (https), process-max $PGBR_PROCESS_MAX"

	# ===== restores =====
	# (a') the floor: pg_restore from the local -Fc file, with coffer's options
	cat "$FLOOR" >/dev/null
	psql_at "$TGT_PORT" postgres -c "CREATE DATABASE r_floor"
	start "$TGT/data"
	/usr/bin/time -v -o "$W/t.time" pg_restore --single-transaction --no-password \
		-d "$(conn "$TGT_PORT" r_floor)" "$FLOOR" 2>"$W/t.err" || die "pg_restore failed: $(cat "$W/t.err")"
	record restore pg_restore "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "" "--single-transaction FILE"
	[ "$run" = 1 ] && check_sig "pg_restore" "$(sig "$TGT_PORT" r_floor)"
	psql_at "$TGT_PORT" postgres -c "DROP DATABASE r_floor" -c CHECKPOINT

	# (b') coffer restore --to-database (pg_restore --single-transaction fed by coffer)
	psql_at "$TGT_PORT" postgres -c "CREATE DATABASE r_coffer"
	start "$TGT/data"
	/usr/bin/time -v -o "$W/t.time" "$COFFER_BIN" --config "$CONF" --quiet restore "$ID" --database "$DB" \
		--to-database "$(conn "$TGT_PORT" r_coffer)" 2>"$W/t.err" || die "coffer restore failed: $(cat "$W/t.err")"
	record restore coffer "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "" "posix"
	[ "$run" = 1 ] && check_sig "coffer restore" "$(sig "$TGT_PORT" r_coffer)"
	psql_at "$TGT_PORT" postgres -c "DROP DATABASE r_coffer" -c CHECKPOINT

	if [ "$S3" = 1 ]; then
		psql_at "$TGT_PORT" postgres -c "CREATE DATABASE r_coffer_s3"
		start "$TGT/data"
		/usr/bin/time -v -o "$W/t.time" "$COFFER_BIN" --config "$CONF_S3" --quiet restore "$ID3" --database "$DB" \
			--to-database "$(conn "$TGT_PORT" r_coffer_s3)" 2>"$W/t.err" ||
			die "coffer restore from S3 failed: $(cat "$W/t.err")"
		record restore coffer-s3 "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "" "s3 (http)"
		[ "$run" = 1 ] && check_sig "coffer restore from S3" "$(sig "$TGT_PORT" r_coffer_s3)"
		psql_at "$TGT_PORT" postgres -c "DROP DATABASE r_coffer_s3" -c CHECKPOINT
	fi

	# (c') pgBackRest restore into a new data folder, then PostgreSQL started on
	# it until recovery is over and it accepts writes (--type=immediate: to the
	# end of the backup, then promoted). Timed: restore + start + recovery.
	rm -rf "$PITR"
	mkdir -p "$PITR"
	pg_owner "$PITR"
	chmod 700 "$PITR"
	PGDATA_MEASURED=/nonexistent
	start /nonexistent
	/usr/bin/time -v -o "$W/t.time" "${AS_PG[@]}" pgbackrest --config="$PGBR_CONF" --stanza=bench --pg1-path="$PITR" \
		--type=immediate --target-action=promote --archive-mode=off restore >"$W/t.out" 2>&1 ||
		die "pgbackrest restore failed: $(cat "$W/t.out")"
	t_restored=$(now)
	PG_DIRS+=("$PITR")
	as_pg "$PG_BIN/pg_ctl" -D "$PITR" -l "$W/pgbr/log/restored-pg.log" -w -t 600 -s \
		-o "-c port=$PITR_PORT -c archive_mode=off" start >/dev/null ||
		die "the restored cluster did not start; see $W/pgbr/log/restored-pg.log"
	for _ in $(seq 1 6000); do
		[ "$(psql -X -w -h 127.0.0.1 -p "$PITR_PORT" -U coffer -d postgres -At \
			-c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && break
		sleep 0.1
	done
	stop_clock
	recovery_s=$(echo "$T1 - $t_restored" | bc)
	pitr_cpu=$(pg_cpu "$PITR")
	record restore pgbackrest "$run" "$(tv "$W/t.time" rss)" "$(tv "$W/t.time" cpu)" "" \
		"physical; restore $(printf %.1f "$(echo "$t_restored - $T0" | bc)") s + start/recovery $(printf %.1f "$recovery_s") s" \
		"$pitr_cpu"
	[ "$run" = 1 ] && check_sig "pgbackrest restore" "$(sig "$PITR_PORT" "$DB")"
	stop_cluster "$PITR"
	rm -rf "$PITR"

	# the coffer backups of this run go
	rm -rf "${W:?}/repo/"*
	if [ "$S3" = 1 ]; then
		s3_aws s3 rm --recursive --only-show-errors "s3://$CBUCKET/" >/dev/null
		s3_rgw_admin gc process --include-all >/dev/null 2>&1 || true
	fi
done

# ----- report -----------------------------------------------------------------------
python3 - "$RESULTS" "$DB_BYTES" "$SCALE" "$RUNS" "$(nproc)" "$PGBR_PROCESS_MAX" <<'PY'
import sys
path, dbb, scale, runs, ncpu, pmax = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6]
rows = {}
for line in open(path):
    op, tool, run, wall, rss, cpu, srv, oth, stored, detail = line.rstrip("\n").split("\t")
    rows.setdefault((op, tool), []).append(
        (float(wall), int(rss), float(cpu), float(srv), float(oth), stored, detail))
def median(key):
    r = sorted(rows[key], key=lambda x: x[0])
    return r[(len(r) - 1) // 2]
print()
print("database: pgbench -i -s %s, %.0f MiB (pg_database_size); MB/s = database bytes / wall, "
      "MB = 10^6 bytes; median of %d run(s) by wall time" % (scale, dbb / 2**20, runs))
print("RSS: peak of the tool and its children (coffer: the larger of coffer and its pg_dump / "
      "pg_restore); CPU s = user + system of the tool and its children;")
print("srv CPU = the PostgreSQL server's (and the gateway's, for S3) meanwhile, of %d cores; other = "
      "the rest of the machine meanwhile (others' work: noise if large)" % ncpu)
hdr = "%-8s %-11s %8s %8s %8s %7s %8s %6s %11s  %s" % (
    "op", "tool", "wall s", "MB/s", "RSS MiB", "CPU s", "srv CPU", "other", "stored MiB", "")
print(hdr)
print("-" * len(hdr))
order = [("backup", t) for t in ("pg_dump", "coffer", "coffer-s3", "pgbackrest")] + \
        [("restore", t) for t in ("pg_restore", "coffer", "coffer-s3", "pgbackrest")]
for key in order:
    if key not in rows:
        continue
    wall, rss, cpu, srv, oth, stored, detail = median(key)
    st = "%.1f" % (int(stored) / 2**20) if stored else ""
    print("%-8s %-11s %8.2f %8.1f %8.1f %7.2f %8.2f %6.2f %11s  %s" % (
        key[0], key[1], wall, dbb / 1e6 / wall, rss / 1024, cpu, srv, oth, st, detail))
print()
def ratio(a, b):
    return median(a)[0] / median(b)[0]
r = ratio(("backup", "coffer"), ("backup", "pg_dump"))
print("coffer / pg_dump backup wall time:     x%.3f (target <= 1.10: %s)" % (r, "met" if r <= 1.10 else "MISSED"))
if ("backup", "coffer-s3") in rows:
    print("coffer-s3 / pg_dump backup wall time:  x%.3f" % ratio(("backup", "coffer-s3"), ("backup", "pg_dump")))
print("coffer / pg_restore restore wall time: x%.3f" % ratio(("restore", "coffer"), ("restore", "pg_restore")))
if ("restore", "coffer-s3") in rows:
    print("coffer-s3 / pg_restore restore wall:   x%.3f" % ratio(("restore", "coffer-s3"), ("restore", "pg_restore")))
print("pgbackrest (process-max %s) / coffer:   backup x%.2f, restore x%.2f (wall time; physical, "
      "so not the same work)" % (pmax, ratio(("backup", "pgbackrest"), ("backup", "coffer")),
                                  ratio(("restore", "pgbackrest"), ("restore", "coffer"))))
PY
echo
echo "raw results: $RESULTS"
