#!/bin/bash
# bench_drill.sh: `coffer verify --drill` of a `pgbench -i -s 100` backup
# (about 1.5 GB of tables) next to a bare pg_restore of the same database
# (pg_dump -Fc file on local disk) into a fresh server with the same
# settings; and what row_counts = true adds to a backup. Prints medians of
# RUNS runs; figures, not a test.
#
#   bench/bench_drill.sh [--quick] [--scale N] [--runs N]
#
# --quick: scale 10 (about 160 MB), 3 runs. The database servers are the test
# harness's (tests/harness/db-start.sh), started in BENCH_OUT/drill/db on
# ports 25460, 23360, 26400 (away from the tests') unless COFFER_DB_DIR names running
# ones; servers it started are stopped at exit (the data stays for the next run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
OUT=${BENCH_OUT:-$ROOT/bench/out}/drill
SCALE=100
RUNS=3
while [ $# -gt 0 ]; do
	case $1 in
	--quick) SCALE=10 ;;
	--scale)
		SCALE=${2:?--scale needs a number}
		shift
		;;
	--runs)
		RUNS=${2:?--runs needs a number}
		shift
		;;
	*)
		sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
	shift
done
die() {
	echo "bench_drill: $*" >&2
	exit 1
}
say() { echo "bench_drill: $*" >&2; }
[ -x "$COFFER_BIN" ] || die "$COFFER_BIN is not built (./packaging/build.sh)"
mkdir -p "$OUT"
export COFFER_DB_DIR=${COFFER_DB_DIR:-$OUT/db} PG_PORT=${PG_PORT:-25460} MY_PORT=${MY_PORT:-23360}
export REDIS_PORT=${REDIS_PORT:-26400}
. "$ROOT/tests/harness/db-env.sh"
export PGPASSFILE=$PG_PASSFILE
W=$(mktemp -d /tmp/coffer-bench-drill.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/repo"
trap 'rm -rf "$W"' EXIT

# minus A B, over A B: arithmetic on decimals.
minus() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", a - b}'; }
over() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", a / b}'; }
# median: the middle of the numbers on stdin.
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

if [ "$(db_psql -At -d cfbench -c 'SELECT count(*) FROM pgbench_branches' 2>/dev/null || true)" != "$SCALE" ]; then
	say "pgbench -i -s $SCALE (once)..."
	db_psql -q -d postgres -c 'DROP DATABASE IF EXISTS cfbench WITH (FORCE)' -c 'CREATE DATABASE cfbench' >/dev/null
	"$PG_BIN/pgbench" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -i -s "$SCALE" -q cfbench >/dev/null 2>&1
fi
SIZE=$(db_psql -At -d cfbench -c "SELECT pg_database_size('cfbench')")

age-keygen -o "$W/key.txt" 2>/dev/null
cat >"$W/coffer.conf" <<EOF
[repository]
type = posix
path = $W/repo

[catalog]
path = $W/catalog

[encryption]
recipients = $(age-keygen -y "$W/key.txt")
identity = $W/key.txt

[compression]
workers = auto

[source pg]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfbench
globals = false

[source pgrc]
type = postgres
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
passfile = $PG_PASSFILE
databases = cfbench
globals = false
row_counts = true
EOF
cf() { "$COFFER_BIN" --config "$W/coffer.conf" "$@"; }

# Backups: plain, and with row_counts (the counts read every table once more).
for s in pg pgrc; do
	for _ in $(seq 1 "$RUNS"); do
		t0=$(date +%s.%N)
		cf backup "$s" >/dev/null
		minus "$(date +%s.%N)" "$t0"
	done | median >"$W/backup-$s"
done

# Drills of the plain backup.
for _ in $(seq 1 "$RUNS"); do
	/usr/bin/time -f %M -o "$W/rss" "$COFFER_BIN" --config "$W/coffer.conf" verify --drill --latest --source pg --json >"$W/drill.json"
	jq -r --arg rss "$(cat "$W/rss")" '.drills[0] | "\(.recovery_seconds) \(.server_start_seconds) \(.check_seconds) \(.stored_bytes) \($rss)"' "$W/drill.json"
done >"$W/drills"

# Bare: pg_dump -Fc to a local file once, then pg_restore of it into a fresh
# server started with the drill's settings.
"$PG_BIN/pg_dump" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" --format=custom --compress=0 -f "$W/cfbench.dump" cfbench
chmod 644 "$W/cfbench.dump"
RUN_AS=()
[ "$(id -u)" != 0 ] || RUN_AS=(runuser -u postgres --)
for _ in $(seq 1 "$RUNS"); do
	rm -rf "$W/bare"
	mkdir -p "$W/bare"
	[ "$(id -u)" != 0 ] || chown postgres "$W/bare"
	t0=$(date +%s.%N)
	"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$W/bare/data" -U bench --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
	"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$W/bare/data" -l "$W/bare/log" -w -o "-k $W/bare -p 5432 -c listen_addresses= -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=8GB -c maintenance_work_mem=256MB -c autovacuum=off" start >/dev/null
	t1=$(date +%s.%N)
	"$PG_BIN/psql" -X -q -h "$W/bare" -p 5432 -U bench -d postgres -c 'CREATE DATABASE cfbench'
	"$PG_BIN/pg_restore" --single-transaction --no-owner --no-privileges -h "$W/bare" -p 5432 -U bench -d cfbench "$W/cfbench.dump"
	t2=$(date +%s.%N)
	"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$W/bare/data" -m immediate stop >/dev/null
	echo "$(minus "$t2" "$t1") $(minus "$t1" "$t0")"
done >"$W/bare-times"

drill=$(awk '{print $1}' "$W/drills" | median)
drill_start=$(awk '{print $2}' "$W/drills" | median)
drill_check=$(awk '{print $3}' "$W/drills" | median)
stored=$(awk 'NR == 1 {print $4}' "$W/drills")
rss=$(awk '{print $5}' "$W/drills" | median)
bare=$(awk '{print $1}' "$W/bare-times" | median)
bare_start=$(awk '{print $2}' "$W/bare-times" | median)
b_pg=$(cat "$W/backup-pg")
b_rc=$(cat "$W/backup-pgrc")
printf 'pgbench -s %s: database %d MiB, backup object %s MiB; %s run(s), medians\n' "$SCALE" \
	$((SIZE / 1048576)) "$(over "$stored" 1048576)" "$RUNS"
printf '%-46s %8.2f s\n' "bare pg_restore (local file, fresh server)" "$bare"
printf '%-46s %8.2f s   (ratio %.2f)\n' "drill recovery (read+decrypt+zstd+pg_restore)" "$drill" "$(over "$drill" "$bare")"
printf '%-46s %8.2f s   (bare: initdb + start %.2f s)\n' "drill server start (initdb + postgres)" "$drill_start" "$bare_start"
printf '%-46s %8.2f s\n' "drill counts (count(*) of every table)" "$drill_check"
printf '%-46s %8d KiB\n' "drill peak RSS (coffer, or a server it reaped)" "$rss"
printf '%-46s %8.2f s\n' "backup" "$b_pg"
printf '%-46s %8.2f s   (+%.2f s, %+.0f%%)\n' "backup with row_counts = true" "$b_rc" \
	"$(minus "$b_rc" "$b_pg")" "$(over "$(minus "$b_rc" "$b_pg")" "$(over "$b_pg" 100)")"
