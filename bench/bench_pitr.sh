#!/bin/bash
# bench_pitr.sh: coffer's point-in-time recovery of PostgreSQL 15 (a
# postgres-physical source: base backups over the replication protocol, WAL
# archived by `coffer wal-push`, restores by `restore --to-datadir`) against
# pgBackRest (bundled, zstd, aes-256-cbc) and a pg_basebackup | zstd | age |
# aws s3 cp pipeline, all into the same S3 server (a Ceph RADOS Gateway on
# loopback) on the same machine in one run. It prints figures; it is not a
# test and never fails on a slow result.
#
#   bench/bench_pitr.sh               scale 100 (about 1.5 GB), 200 segments, 3 runs (about 30 minutes)
#   bench/bench_pitr.sh --quick       scale 5, 20 segments, 1 run (about 5 minutes)
#   bench/bench_pitr.sh --scale N     pgbench scale N (the cluster is made anew at each start)
#   bench/bench_pitr.sh --runs N      N runs of each base backup and restore (median)
#   bench/bench_pitr.sh --segments N  WAL segments archived by each archiving mode
#   bench/bench_pitr.sh --tx N        pgbench transactions between the last base backups
#                                     and the end of the archive (the WAL a restore replays)
#
# Environment: COFFER_BIN (default build/agent/coffer), BENCH_OUT (default
# bench/out; everything goes to BENCH_OUT/pitr), INSTALL=1 (apt-get install
# pgbackrest when missing), PG_PORT (15450; +1 and +2 are the restored
# clusters'), RGW_PORT (7640; TLS on RGW_PORT+10), MON_PORT (13440),
# PGBR_PROCESS_MAX (default: the number of cores), QUIET_WAIT (15; 5 with --quick).
# See bench/README.md ("PITR") for what is measured.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
BOUT=${BENCH_OUT:-$ROOT/bench/out}
OUT=$BOUT/pitr
QUICK=0
RUNS=
SCALE=
SEGS=
TX=
PG_PORT=${PG_PORT:-15450}
export RGW_PORT=${RGW_PORT:-7640}
export MON_PORT=${MON_PORT:-13440}
TLS_PORT=$((RGW_PORT + 10))
PGBR_PROCESS_MAX=${PGBR_PROCESS_MAX:-$(nproc)}
# memstore keeps the objects in the OSD's RAM: the WAL of the four archiving
# modes (a segment of the generated rows is about 6.6 MiB once compressed:
# 5.3 GB for 4 x 200) and the base backups; a full OSD hangs the gateway.
export MEMSTORE_BYTES=${MEMSTORE_BYTES:-12884901888}
PG_BIN=/usr/lib/postgresql/15/bin
PG_OSUSER=${DB_PG_OSUSER:-postgres}
MIB=$((1024 * 1024))

usage() {
	sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
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
	--segments)
		SEGS=${2:?--segments needs a number}
		shift
		;;
	--tx)
		TX=${2:?--tx needs a number}
		shift
		;;
	-h | --help) usage 0 ;;
	*) usage 2 >&2 ;;
	esac
	shift
done
[ -n "$RUNS" ] || RUNS=$([ $QUICK = 1 ] && echo 1 || echo 3)
[ -n "$SCALE" ] || SCALE=$([ $QUICK = 1 ] && echo 5 || echo 100)
[ -n "$SEGS" ] || SEGS=$([ $QUICK = 1 ] && echo 20 || echo 200)
[ -n "$TX" ] || TX=$([ $QUICK = 1 ] && echo 2000 || echo 20000)
QUIET_WAIT=${QUIET_WAIT:-$([ $QUICK = 1 ] && echo 5 || echo 15)}
for v in "$SCALE" "$RUNS" "$SEGS" "$TX"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || usage 2 >&2
done
[ "$SEGS" -ge 2 ] || usage 2 >&2

die() {
	echo "bench_pitr: $*" >&2
	exit 1
}
say() { echo "bench_pitr: $*" >&2; }

[ -x "$COFFER_BIN" ] || die "$COFFER_BIN is not built (run ./packaging/build.sh or set COFFER_BIN)"
COFFER_BIN=$(cd "$(dirname "$COFFER_BIN")" && pwd)/$(basename "$COFFER_BIN")
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
for tool in age zstd python3 jq bc openssl curl aws setpriv; do
	command -v "$tool" >/dev/null || die "$tool is missing (./packaging/install-deps.sh --test)"
done
for tool in initdb pg_ctl psql pgbench pg_basebackup; do
	[ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool is missing (postgresql-15)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (package time)"

# PostgreSQL refuses to run as root; its archive_command (coffer wal-push,
# pgbackrest archive-push) runs as the server's user, so every coffer and
# pgBackRest command runs as PG_OSUSER too, with its configuration and
# catalog that user's.
[ "$(id -u)" = 0 ] || die "run it as root (PostgreSQL, coffer and pgBackRest run as $PG_OSUSER)"
id -u "$PG_OSUSER" >/dev/null 2>&1 || die "no OS user $PG_OSUSER for PostgreSQL (set DB_PG_OSUSER)"
PG_HOME=$(getent passwd "$PG_OSUSER" | cut -d: -f6)
AS_PG=(setpriv --reuid="$PG_OSUSER" --regid="$PG_OSUSER" --init-groups -- env HOME="${PG_HOME:-/tmp}")
as_pg() { "${AS_PG[@]}" "$@"; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$OUT/work
SRC=$W/src          # the pgbench cluster: SRC/data, its socket in SRC/run
RRUN=$W/rrun        # the restored clusters' socket folder
R_COFFER=$W/r-coffer
R_PGBR=$W/r-pgbr
RGW_DIR=$OUT/rgw
[ ${#OUT} -le 70 ] || die "$OUT is too long for the servers' unix sockets (set BENCH_OUT)"
# PG_OSUSER must reach OUT: give o+x (traverse, not list) to the folders above it.
if ! as_pg test -x "$OUT"; then
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
# bg_pids: the background processes left by the archive and restore commands
# (coffer's WAL pusher and prefetcher, pgBackRest's async archive-push and
# -get): those whose command line names this run's configurations.
bg_pids() {
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$pid" != $$ ] || continue
		{ tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -e "$W/coffer" -e "$W/pgbr/pgbackrest" && echo "$pid"
	done
	return 0
}
on_exit() {
	local d pids i
	set +e
	for d in "${PG_DIRS[@]}"; do
		if [ -f "$d/postmaster.pid" ]; then
			as_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w -t 60 -s stop >/dev/null 2>&1 ||
				as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 30 -s stop >/dev/null 2>&1
		fi
	done
	# coffer's pusher and prefetcher end 2 s after their queue is empty,
	# pgBackRest's async processes likewise: wait, then end the rest by pid.
	for i in $(seq 1 100); do
		pids=$(bg_pids)
		[ -n "$pids" ] || break
		sleep 0.1
	done
	if [ -n "$pids" ]; then
		say "ending background archive processes still running: $(echo $pids)"
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null
	fi
	[ -z "${S3_CLEANUP:-}" ] || "$S3_CLEANUP" >/dev/null 2>&1
	if [ "$RGW_STARTED" = 1 ]; then
		"$ROOT/tests/harness/rgw-stop.sh" "$RGW_DIR" >/dev/null 2>&1
	fi
	return 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM

mkdir -p "$W"
# the previous run's clusters (stopped if it was killed)
for d in "$SRC/data" "$R_COFFER" "$R_PGBR"; do
	if [ -f "$d/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -s stop >/dev/null 2>&1 || true
	fi
done
rm -rf "${W:?}"/*
mkdir -p "$W/pgbr/log" "$W/pgbr/lock" "$W/pgbr/spool" "$W/tls" "$RRUN"
chown -R "$PG_OSUSER:" "$W"
chmod 700 "$RRUN"

# ----- tools -----------------------------------------------------------------
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
machine_cpu() {
	awk -v hz="$CLK_TCK" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
# quiet: dirty pages written out, then waits (at most QUIET_WAIT s) until the
# machine is nearly idle, so that others' work lands in no measurement.
quiet() {
	local i a b
	sync
	for i in $(seq 1 "$QUIET_WAIT"); do
		a=$(machine_cpu)
		sleep 1
		b=$(machine_cpu)
		[ "$(echo "$b - $a < 0.3" | bc)" = 1 ] && return 0
		[ "$i" = 1 ] && say "waiting for the machine to be idle ($(echo "$b - $a" | bc) cores busy)..."
	done
	say "warning: the machine is still busy; measuring anyway"
}

# ----- the pgbench cluster (made anew at each start) --------------------------------
SRC_PORT=$PG_PORT
COFFER_R_PORT=$((PG_PORT + 1))
PGBR_R_PORT=$((PG_PORT + 2))
DB=bench
# psql_at SOCKDIR PORT DB ARGS...: psql as postgres over the unix socket
psql_at() {
	local h=$1 port=$2 db=$3
	shift 3
	"$PG_BIN/psql" -X -q -w -v ON_ERROR_STOP=1 -h "$h" -p "$port" -U postgres -d "$db" "$@"
}
psql_src() { psql_at "$SRC/run" "$SRC_PORT" "$DB" "$@"; }
q_src() { psql_src -At -c "$1"; }

# set_archive CMD: archive_command = CMD (empty: archiving waits; the
# segments stay .ready), taken by the archiver at the reload.
set_archive() {
	printf "archive_mode = on\narchive_command = '%s'\n" "$1" >"$SRC/data/bench-run.conf"
	chown "$PG_OSUSER:" "$SRC/data/bench-run.conf"
	q_src "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}
# pending: WAL segments PostgreSQL has finished and not archived yet.
pending() { find "$SRC/data/pg_wal/archive_status" -name '*.ready' 2>/dev/null | wc -l; }
# spooled DIR: segments in a spool queue (coffer's wal-spool/pg/out).
spooled() { find "$1" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}(\.partial)?' 2>/dev/null | wc -l; }
# wait_drained TIMEOUT [SPOOL]: until no segment waits for the archiver (nor in SPOOL).
wait_drained() {
	local i
	for i in $(seq 1 $(($1 * 10))); do
		if [ "$(pending)" = 0 ] && { [ -z "${2:-}" ] || [ "$(spooled "$2")" = 0 ]; }; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

say "making the pgbench cluster, scale $SCALE (archive_mode off meanwhile)..."
mkdir -p "$SRC/data" "$SRC/run"
chown -R "$PG_OSUSER:" "$SRC"
chmod 700 "$SRC/data" "$SRC/run"
(cd "$SRC" && as_pg "$PG_BIN/initdb" -D "$SRC/data" -U postgres -A trust -E UTF8 --locale=C -N \
	>"$SRC/initdb.log" 2>&1) || die "initdb failed; see $SRC/initdb.log"
cat >>"$SRC/data/postgresql.conf" <<EOF

# coffer bench (bench/bench_pitr.sh)
listen_addresses = ''
port = $SRC_PORT
unix_socket_directories = '$SRC/run'
unix_socket_permissions = 0700
max_connections = 20
shared_buffers = 256MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
# a throwaway server: no fsync; no autovacuum (its work would land in a measurement)
fsync = off
autovacuum = off
wal_level = replica
max_wal_senders = 4
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
# the archive settings (set_archive)
include_if_exists = 'bench-run.conf'
EOF
printf "archive_mode = off\n" >"$SRC/data/bench-run.conf"
chown "$PG_OSUSER:" "$SRC/data/postgresql.conf" "$SRC/data/bench-run.conf"
PG_DIRS+=("$SRC/data")
start_src() {
	(cd "$SRC" && as_pg "$PG_BIN/pg_ctl" -D "$SRC/data" -l "$SRC/pg.log" -w -t 120 -s start) ||
		die "PostgreSQL did not start; see $SRC/pg.log"
}
start_src
psql_at "$SRC/run" "$SRC_PORT" postgres -c "CREATE DATABASE $DB"
t0=$(date +%s)
"$PG_BIN/pgbench" -i -q -s "$SCALE" -h "$SRC/run" -p "$SRC_PORT" -U postgres "$DB" >"$SRC/pgbench-init.log" 2>&1 ||
	die "pgbench -i failed; see $SRC/pgbench-init.log"
psql_src -c "CREATE TABLE walgen (id int, pad text)" -c CHECKPOINT
say "pgbench -i -s $SCALE took $(($(date +%s) - t0)) s"
# archive_mode needs a restart; the segments written until now are never archived.
as_pg "$PG_BIN/pg_ctl" -D "$SRC/data" -m fast -w -t 120 -s stop
printf "archive_mode = on\narchive_command = ''\n" >"$SRC/data/bench-run.conf"
start_src
DB_BYTES=$(q_src "SELECT pg_database_size('$DB')")

# ----- the S3 server: a gateway of this script's own, with a TLS port ---------------
# pgBackRest speaks only https to S3: beast gets an ssl_endpoint with a
# self-signed certificate, given to pgBackRest as its CA file. coffer and the
# aws CLI use the plain http port.
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
BUCKET=coffer-bench-pitr
s3_rmbucket "$BUCKET" >/dev/null 2>&1 || true
s3_mkbucket "$BUCKET" || die "cannot create bucket $BUCKET at $S3_ENDPOINT"
# Untimed warm-up: the first writes create RGW's pools and multipart metadata.
head -c $((40 * MIB)) /dev/zero | s3_aws s3 cp - "s3://$BUCKET/warmup" --only-show-errors ||
	die "cannot write to bucket $BUCKET"
s3_aws s3 rm "s3://$BUCKET/warmup" --only-show-errors >/dev/null
# s3_count PREFIX: objects under PREFIX; s3_bytes PREFIX: their bytes.
# (aws s3 ls fails when nothing matches)
s3_count() { { s3_aws s3 ls --recursive "s3://$BUCKET/$1" || true; } | wc -l; }
s3_bytes() { { s3_aws s3 ls --recursive "s3://$BUCKET/$1" || true; } | awk '{ s += $3 } END { print s + 0 }'; }

# ----- coffer: the postgres-physical source, sync and async ---------------------------
KEY=$W/key.txt
RECIPIENT=$(as_pg "$COFFER_BIN" keygen -o "$KEY") || die "coffer keygen failed"
[[ $RECIPIENT == age1* ]] || die "coffer keygen printed '$RECIPIENT', not a recipient"
CONF=$W/coffer.conf
CONF_ASYNC=$W/coffer-async.conf
coffer_conf() { # EXTRA_SOURCE_LINES
	cat <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
bucket = $BUCKET
region = $S3_REGION
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
prefix = coffer

[catalog]
path = $W/catalog

[encryption]
recipients = $RECIPIENT
identity = $KEY

[compression]
level = 3
workers = auto

[source pg]
type = postgres-physical
host = $SRC/run
port = $SRC_PORT
user = postgres
$1
EOF
}
(umask 077 && coffer_conf "" >"$CONF" && coffer_conf "wal_async = true" >"$CONF_ASYNC")
chown "$PG_OSUSER:" "$CONF" "$CONF_ASYNC"
# the async queue: wal-spool/ beside the catalog, one folder per source
SPOOL_OUT=$W/wal-spool/pg/out
cf() { as_pg "$COFFER_BIN" --config "$CONF" "$@"; }
coffer_id() { # FILE: the id in `coffer --json backup`'s output
	local id
	id=$(jq -r '.backups[0].id // empty' "$1" 2>/dev/null) || true
	[ -n "$id" ] || die "coffer backup printed no id: $(cat "$1")"
	echo "$id"
}

# ----- pgBackRest: the stanza of the source cluster ------------------------------------
# archive-async = y for archive-get (the restore's prefetch, as coffer's
# wal-fetch does); archive-push is told --archive-async or --no-archive-async.
PGBR_CONF=$W/pgbr/pgbackrest.conf
(
	umask 077
	cat >"$PGBR_CONF" <<EOF
[global]
repo1-type=s3
repo1-path=/pgbackrest
repo1-s3-bucket=$BUCKET
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
archive-async=y
log-path=$W/pgbr/log
lock-path=$W/pgbr/lock
spool-path=$W/pgbr/spool
log-level-console=warn
log-level-file=info

[bench]
pg1-path=$SRC/data
pg1-port=$SRC_PORT
pg1-socket-path=$SRC/run
pg1-user=postgres
EOF
)
chown "$PG_OSUSER:" "$PGBR_CONF"
pgbr() { as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench "$@"; }
pgbr stanza-create >"$W/pgbr-stanza.log" 2>&1 || die "pgbackrest stanza-create failed: $(cat "$W/pgbr-stanza.log")"

COFFER_SYNC="$COFFER_BIN --config $CONF wal-push --source pg %p"
COFFER_ASYNC="$COFFER_BIN --config $CONF_ASYNC wal-push --source pg %p"
PGBR_SYNC="pgbackrest --config=$PGBR_CONF --stanza=bench --no-archive-async archive-push %p"
PGBR_ASYNC="pgbackrest --config=$PGBR_CONF --stanza=bench --archive-async archive-push %p"

RESULTS=$W/results.tsv # op tool run wall cpu rss_kib extra detail
: >"$RESULTS"
record() { # OP TOOL RUN WALL CPU RSS EXTRA DETAIL
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}
say "database $DB: scale $SCALE, $((DB_BYTES / MIB)) MiB (pg_database_size); $RUNS run(s), $SEGS segments per archiving mode"

# ===== 1. WAL archiving ==================================================================
# Each mode: with archiving held (archive_command = ''), SEGS segments of
# inserted rows are written and switched; then the mode's archive_command is
# set, and the clock runs from the reload until every one is archived (and,
# for coffer async, its spool is empty: the segments are in the bucket;
# pgBackRest's async archive-push answers PostgreSQL only once the segment is
# in the repository).
ROWS_PER_SEG=130000 # about 16 MiB of WAL: a row of walgen is about 125 bytes of WAL
gen_segments() { # N: at least N segments ready for the archiver
	local want=$1 have rem k
	while :; do
		have=$(pending)
		rem=$((want - 1 - have))
		[ "$rem" -gt 0 ] || break
		k=$((rem > 4 ? 4 : rem))
		q_src "INSERT INTO walgen SELECT g, md5(g::text) || md5((g * 31)::text)
		       FROM generate_series(1, $((k * ROWS_PER_SEG))) g" >/dev/null
	done
	q_src "SELECT pg_switch_wal()" >/dev/null
}
wal_mode() { # NAME CMD PREFIX [SPOOL]
	local name=$1 cmd=$2 prefix=$3 spool=${4:-} n a0 f0 a1 f1 o0 o1 t0 t1 i p s ok=1 log0 limit
	set_archive ""
	wait_drained 60 || die "segments still wait for the archiver before $name"
	say "WAL: $name: writing $SEGS segments (archiving held)..."
	gen_segments "$SEGS"
	n=$(pending)
	IFS='|' read -r a0 f0 <<<"$(q_src "SELECT archived_count, failed_count FROM pg_stat_archiver")"
	o0=$(s3_count "$prefix")
	log0=$(wc -l <"$SRC/pg.log")
	quiet
	say "WAL: $name: archiving $n segments..."
	limit=$((600 + n * 30)) # tenths of a second: 60 s + 3 s a segment
	t0=$(now)
	set_archive "$cmd"
	for i in $(seq 1 "$limit"); do
		p=$(pending)
		s=0
		[ -z "$spool" ] || s=$(spooled "$spool")
		[ "$p" = 0 ] && [ "$s" = 0 ] && break
		sleep 0.1
	done
	t1=$(now)
	[ "$p" = 0 ] && [ "$s" = 0 ] || ok=0
	IFS='|' read -r a1 f1 <<<"$(q_src "SELECT archived_count, failed_count FROM pg_stat_archiver")"
	[ $((a1 - a0)) -ge "$n" ] || ok=0
	if [ $((f1 - f0)) -gt 0 ]; then
		say "WAL: $name: $((f1 - f0)) failed archive_command call(s); PostgreSQL's log says:"
		tail -n +"$((log0 + 1))" "$SRC/pg.log" | grep -E 'coffer|pgbackrest|ERROR|WARNING|FATAL|failed' |
			grep -v 'archiving is not configured' | head -12 >&2 || true
	fi
	[ -z "$spool" ] || [ ! -s "${spool%/out}/error" ] || say "WAL: $name: the spool holds an error: $(cat "${spool%/out}/error")"
	if [ "$ok" = 0 ]; then
		say "WAL: $name: NOT drained after $(echo "$t1 - $t0" | bc) s ($p waiting, $s in the spool, $((a1 - a0)) archived): recorded as failed"
		set_archive "/bin/true" # the rest goes, so the next mode starts clean
		wait_drained 120 || true
	fi
	o1=$(s3_count "$prefix")
	record wal "$name" 1 "$(echo "$t1 - $t0" | bc)" "" "" "$n" \
		"ok=$ok archived=$((a1 - a0)) failed_calls=$((f1 - f0)) objects=+$((o1 - o0))"
	[ "$ok" = 0 ] || [ $((o1 - o0)) -ge "$n" ] ||
		say "WAL: $name: warning: only $((o1 - o0)) new objects under $prefix for $n segments"
	set_archive ""
	q_src "TRUNCATE walgen" >/dev/null
}
wal_mode coffer-sync "$COFFER_SYNC" coffer/pg/wal/
wal_mode coffer-async "$COFFER_ASYNC" coffer/pg/wal/ "$SPOOL_OUT"
wal_mode pgbackrest-sync "$PGBR_SYNC" pgbackrest/archive/
wal_mode pgbackrest-async "$PGBR_ASYNC" pgbackrest/archive/
q_src CHECKPOINT >/dev/null

# ===== 2. base backups ===================================================================
# Each with its own tool's archive_command (synchronous): pgBackRest waits
# until the backup's last segment is in its archive; coffer and pg_basebackup
# take the backup's WAL in the stream (WAIT false) and wait for nothing.
backup_with() { # CMD: archive_command for the next measurement
	wait_drained 120 || die "the archiver is stuck (see $SRC/pg.log)"
	set_archive "$1"
}
PIPE_CMD='set -o pipefail
"$PG_BIN/pg_basebackup" -h "$SRC/run" -p "$SRC_PORT" -U postgres -Ft -D - -X fetch -c fast |
	zstd -q -3 -T0 | age -r "$RECIPIENT" |
	"$S3_AWS" --endpoint-url "$S3_ENDPOINT" s3 cp - "s3://$BUCKET/$PIPE_KEY" --only-show-errors'
export PG_BIN SRC SRC_PORT RECIPIENT S3_AWS S3_ENDPOINT BUCKET
for run in $(seq 1 "$RUNS"); do
	say "base backups, run $run/$RUNS"

	# (a) coffer backup pg
	backup_with "$COFFER_SYNC"
	quiet
	t0=$(now)
	/usr/bin/time -v -o "$W/t.time" "${AS_PG[@]}" "$COFFER_BIN" --config "$CONF" --quiet --json backup pg \
		>"$W/c.json" 2>"$W/t.err" || die "coffer backup failed: $(cat "$W/t.err")"
	t1=$(now)
	[ ! -s "$W/t.err" ] || say "coffer backup said: $(cat "$W/t.err")"
	ID=$(coffer_id "$W/c.json")
	record backup coffer "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/t.time" cpu)" "$(tv "$W/t.time" rss)" \
		"$(jq '[.backups[0].objects[].stored_bytes] | add' "$W/c.json")" "id $ID"

	# (b) pgbackrest backup --type=full
	backup_with "$PGBR_SYNC"
	quiet
	t0=$(now)
	/usr/bin/time -v -o "$W/t.time" "${AS_PG[@]}" pgbackrest --config="$PGBR_CONF" --stanza=bench --type=full backup \
		>"$W/t.out" 2>&1 || die "pgbackrest backup failed: $(cat "$W/t.out")"
	t1=$(now)
	record backup pgbackrest "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/t.time" cpu)" "$(tv "$W/t.time" rss)" \
		"$(pgbr info --output=json | jq '.[0].backup[-1].info.repository.delta')" \
		"full, bundle, process-max $PGBR_PROCESS_MAX"

	# (c) pg_basebackup -Ft -D - -X fetch | zstd | age | aws s3 cp (archive_command: coffer's)
	backup_with "$COFFER_SYNC"
	export PIPE_KEY=pipeline/base-$run.tar.zst.age
	quiet
	t0=$(now)
	/usr/bin/time -v -o "$W/t.time" bash -c "$PIPE_CMD" 2>"$W/t.err" || die "the pipeline failed: $(cat "$W/t.err")"
	t1=$(now)
	record backup pipeline "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/t.time" cpu)" "$(tv "$W/t.time" rss)" \
		"$(s3_bytes "$PIPE_KEY")" "pg_basebackup|zstd -3 -T0|age|aws s3 cp"
done

# ===== 3. PITR restores ==================================================================
# Untimed: archive_command pushes into both archives; one more base backup
# by each tool; pgbench transactions; a switch; all archived. Then each tool
# restores its last base backup and replays its archive to the end, and the
# clock runs until the restored server leaves recovery.
say "PITR: base backups of both tools with both archiving (untimed), then $TX pgbench transactions..."
backup_with "$PGBR_SYNC && $COFFER_SYNC"
cf --quiet --json backup pg >"$W/c.json" 2>"$W/t.err" || die "coffer backup failed: $(cat "$W/t.err")"
ID=$(coffer_id "$W/c.json")
LSN0=$(q_src "SELECT pg_current_wal_lsn()")
pgbr --type=full backup >"$W/t.out" 2>&1 || die "pgbackrest backup failed: $(cat "$W/t.out")"
"$PG_BIN/pgbench" -n -c 2 -j 2 -t $(((TX + 1) / 2)) -h "$SRC/run" -p "$SRC_PORT" -U postgres "$DB" \
	>"$W/pgbench-run.log" 2>&1 || die "pgbench failed; see $W/pgbench-run.log"
q_src "SELECT pg_switch_wal()" >/dev/null
LSN1=$(q_src "SELECT pg_current_wal_lsn()")
REPLAY_BYTES=$(q_src "SELECT pg_wal_lsn_diff('$LSN1', '$LSN0')::bigint")
wait_drained 600 || die "the archiver is stuck (see $SRC/pg.log)"
sig() { # SOCKDIR PORT: what a restore must give back
	psql_at "$1" "$2" "$DB" -At -c "
		SELECT (SELECT count(*) || '/' || sum(abalance) FROM pgbench_accounts),
		       (SELECT count(*) || '/' || sum(bbalance) FROM pgbench_branches),
		       (SELECT count(*) || '/' || sum(tbalance) FROM pgbench_tellers),
		       (SELECT count(*) || '/' || coalesce(sum(delta), 0) FROM pgbench_history)" | tr '|' ' '
}
SRC_SIG=$(sig "$SRC/run" "$SRC_PORT")
say "PITR: the archive ends $((REPLAY_BYTES / MIB)) MiB of WAL after coffer's base backup $ID"

# start_restored DIR PORT LOG: starts a restored cluster (no archiving) and
# waits until it has left recovery.
start_restored() {
	local dir=$1 port=$2 log=$3
	PG_DIRS+=("$dir")
	as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$log" -w -t 600 -s \
		-o "-c port=$port -c unix_socket_directories=$RRUN -c listen_addresses='' -c archive_mode=off" start ||
		die "the restored cluster $dir did not start; see $log: $(tail -5 "$log")"
	for _ in $(seq 1 6000); do
		[ "$(psql_at "$RRUN" "$port" postgres -At -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
		sleep 0.1
	done
	die "the restored cluster $dir is still in recovery after 600 s; see $log"
}
stop_restored() {
	as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 120 -s stop >/dev/null
	rm -rf "$1"
}
for run in $(seq 1 "$RUNS"); do
	say "PITR restores, run $run/$RUNS"

	# (a) coffer restore --source pg --to-datadir DIR --latest, then pg_ctl start
	rm -rf "$R_COFFER" "$W/wal-spool/pg/in"
	quiet
	t0=$(now)
	/usr/bin/time -v -o "$W/t.time" "${AS_PG[@]}" "$COFFER_BIN" --config "$CONF" --quiet \
		restore --source pg --to-datadir "$R_COFFER" --latest >"$W/t.out" 2>"$W/t.err" ||
		die "coffer restore failed: $(cat "$W/t.err")"
	tr=$(now)
	[ ! -s "$W/t.err" ] || say "coffer restore said: $(cat "$W/t.err")"
	start_restored "$R_COFFER" "$COFFER_R_PORT" "$W/r-coffer-$run.log"
	t1=$(now)
	record restore coffer "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/t.time" cpu)" "$(tv "$W/t.time" rss)" \
		"$(echo "$tr - $t0" | bc)" "--latest"
	if [ "$run" = 1 ]; then
		got=$(sig "$RRUN" "$COFFER_R_PORT")
		[ "$got" = "$SRC_SIG" ] || die "coffer's restore does not give back the database: '$got', want '$SRC_SIG'"
		say "coffer restore: the restored database matches the source ($SRC_SIG)"
	fi
	stop_restored "$R_COFFER"

	# (b) pgbackrest restore (to the end of the archive, then promoted), then pg_ctl start
	rm -rf "$R_PGBR" "$W/pgbr/spool/archive/bench/in"
	mkdir -p "$R_PGBR"
	chown "$PG_OSUSER:" "$R_PGBR"
	chmod 700 "$R_PGBR"
	quiet
	t0=$(now)
	/usr/bin/time -v -o "$W/t.time" "${AS_PG[@]}" pgbackrest --config="$PGBR_CONF" --stanza=bench \
		--pg1-path="$R_PGBR" --archive-mode=off restore >"$W/t.out" 2>&1 ||
		die "pgbackrest restore failed: $(cat "$W/t.out")"
	tr=$(now)
	start_restored "$R_PGBR" "$PGBR_R_PORT" "$W/r-pgbr-$run.log"
	t1=$(now)
	record restore pgbackrest "$run" "$(echo "$t1 - $t0" | bc)" "$(tv "$W/t.time" cpu)" "$(tv "$W/t.time" rss)" \
		"$(echo "$tr - $t0" | bc)" "type=default, archive-async"
	if [ "$run" = 1 ]; then
		got=$(sig "$RRUN" "$PGBR_R_PORT")
		[ "$got" = "$SRC_SIG" ] || die "pgBackRest's restore does not give back the database: '$got', want '$SRC_SIG'"
		say "pgbackrest restore: the restored database matches the source"
	fi
	stop_restored "$R_PGBR"
done

# ----- report -----------------------------------------------------------------------
python3 - "$RESULTS" "$DB_BYTES" "$SCALE" "$RUNS" "$REPLAY_BYTES" "$TX" "$PGBR_PROCESS_MAX" <<'PY'
import sys
path, dbb, scale, runs, replay, tx, pmax = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
rows = {}
for line in open(path):
    op, tool, run, wall, cpu, rss, extra, detail = line.rstrip("\n").split("\t")
    rows.setdefault((op, tool), []).append((float(wall), cpu, rss, extra, detail))
def median(key):
    r = sorted(rows[key], key=lambda x: x[0])
    return r[(len(r) - 1) // 2]
def f(x, fmt):
    return fmt % float(x) if x not in ("", None) else "-"
MiB = 2**20
print()
print("base backup: pgbench -i -s %s, %.0f MiB (pg_database_size); median of %d run(s) by wall "
      "time; MB/s = database bytes / wall, MB = 10^6 bytes" % (scale, dbb / MiB, runs))
hdr = "%-12s %8s %8s %7s %8s %11s  %s" % ("tool", "wall s", "MB/s", "CPU s", "RSS MiB", "stored MiB", "")
print(hdr)
print("-" * len(hdr))
for t in ("coffer", "pgbackrest", "pipeline"):
    if ("backup", t) in rows:
        w, cpu, rss, st, d = median(("backup", t))
        print("%-12s %8.2f %8.1f %7s %8s %11s  %s" % (t, w, dbb / 1e6 / w, f(cpu, "%.2f"),
              f(int(rss) / 1024 if rss else "", "%.1f"), f(int(st) / MiB if st else "", "%.1f"), d))
print()
print("WAL archiving: a backlog of 16 MiB segments released at once; from the reload of "
      "archive_command until all are archived (async: and the spool is empty)")
hdr = "%-17s %8s %8s %8s %8s  %s" % ("mode", "segments", "wall s", "seg/s", "MB/s", "")
print(hdr)
print("-" * len(hdr))
rate = {}
for t in ("coffer-sync", "coffer-async", "pgbackrest-sync", "pgbackrest-async"):
    if ("wal", t) in rows:
        w, _, _, n, d = median(("wal", t))
        ok = "ok=1" in d
        rate[t] = int(n) / w if ok else None
        print("%-17s %8s %8.2f %8s %8s  %s" % (t, n, w, "%.2f" % rate[t] if ok else "FAILED",
              "%.1f" % (int(n) * 16 * MiB / 1e6 / w) if ok else "-", d))
print()
print("PITR restore: the last base backup + %.0f MiB of WAL (%s pgbench transactions) replayed "
      "to the end of the archive, until pg_is_in_recovery() is false; median of %d run(s)"
      % (replay / MiB, tx, runs))
hdr = "%-12s %8s %10s %12s %7s %8s  %s" % ("tool", "wall s", "restore s", "start+rec s", "CPU s",
                                          "RSS MiB", "")
print(hdr)
print("-" * len(hdr))
for t in ("coffer", "pgbackrest"):
    if ("restore", t) in rows:
        w, cpu, rss, rs, d = median(("restore", t))
        print("%-12s %8.2f %10.2f %12.2f %7s %8s  %s" % (t, w, float(rs), w - float(rs),
              f(cpu, "%.2f"), f(int(rss) / 1024 if rss else "", "%.1f"), d))
print()
def verdict(ok):
    return "met" if ok else "MISSED"
if ("backup", "coffer") in rows and ("backup", "pgbackrest") in rows:
    r = median(("backup", "coffer"))[0] / median(("backup", "pgbackrest"))[0]
    print("coffer / pgBackRest base backup wall time:   x%.3f (target <= 0.80: %s)" % (r, verdict(r <= 0.80)))
if ("backup", "coffer") in rows and ("backup", "pipeline") in rows:
    r = median(("backup", "coffer"))[0] / median(("backup", "pipeline"))[0]
    print("coffer / pg_basebackup pipeline wall time:   x%.3f" % r)
if ("restore", "coffer") in rows and ("restore", "pgbackrest") in rows:
    r = median(("restore", "coffer"))[0] / median(("restore", "pgbackrest"))[0]
    print("coffer / pgBackRest PITR restore wall time:  x%.3f (target <= 0.80: %s)" % (r, verdict(r <= 0.80)))
if rate.get("coffer-async") and rate.get("pgbackrest-async"):
    r = rate["coffer-async"] / rate["pgbackrest-async"]
    print("coffer / pgBackRest async archiving rate:    x%.3f (target >= 1.00: %s)" % (r, verdict(r >= 1.0)))
elif ("wal", "coffer-async") in rows:
    print("coffer / pgBackRest async archiving rate:    - (a mode failed; target >= 1.00: MISSED)")
if rate.get("coffer-sync") and rate.get("pgbackrest-sync"):
    print("coffer / pgBackRest sync archiving rate:     x%.3f" % (rate["coffer-sync"] / rate["pgbackrest-sync"]))
PY
echo
echo "raw results: $RESULTS"
