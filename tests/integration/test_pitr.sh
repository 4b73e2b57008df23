#!/bin/bash
# Point-in-time recovery of PostgreSQL 15 (issue 17), all real: a cluster of
# its own with archive_mode = on and archive_command = coffer wal-push, a
# base backup over the replication protocol (type = postgres-physical), and
# restores with restore --to-datadir started by pg_ctl, whose recovery
# fetches WAL through coffer wal-fetch.
#   - the base backup is a standard tar (age | zstd -d | tar -t), and
#     pg_verifybackup accepts the restored data directory
#   - restore --at a time between two commits: exactly the rows committed
#     before it; --latest: all rows; --immediate: the backup's own state;
#     --lsn
#   - a restored cluster promoted (timeline 2) archives into the same
#     source; a restore --at a point on timeline 2 gets its rows
#   - a segment missing in the middle: restore fails naming it, writes
#     nothing; wal-fetch exits 126 on a hole (PostgreSQL stops) and 1 at
#     the end of the archive
#   - re-pushing a segment with the same content succeeds, other content
#     fails (exit 9)
#   - wal_async = true: every segment arrives, also when the background
#     pusher is killed with -9 over and over; the pusher pushes ready files
#     ahead, and their wal-push only checks the digest (a changed file is
#     not taken as pushed)
#   - prune with two base backups and keep_last = 1 removes exactly the WAL
#     older than the kept one's start
#   - status reports the archive
#   - verify --drill of a base backup: restored into a throwaway server,
#     the rows counted as of the backup
#   - every backup and WAL file also goes to a second repository (dr); with
#     the primary one gone, restore --latest falls over to dr and recovery
#     fetches from it; restore --from dr reads dr only
#   - replicate --all gives a repository added later the base backup and
#     the WAL from its start, and dr the WAL files it lost; a restore from
#     that repository alone recovers every row
# Runs as root; PostgreSQL and every coffer command it starts run as the
# OS user postgres (PITR_PG_PORT, default 15470; +1, +2 for the restores).
. "$(dirname "$0")/lib.sh"
t_setup pitr

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$PG_BIN/initdb" ] || t_skip "PostgreSQL 15 is not installed (packaging/install-deps.sh --test)"
[ "$(id -u)" = 0 ] || t_skip "needs root (PostgreSQL runs as user postgres)"
id -u postgres >/dev/null 2>&1 || t_skip "no OS user postgres"
PORT=${PITR_PG_PORT:-15470}
jqe() { jq -e "$@" >/dev/null; }
# valid NAME FILE: FILE is valid under docs/schema/NAME.json.
valid() {
	python3 -c 'import json, sys, jsonschema
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))' \
		"$COFFER_SRC/docs/schema/$1.json" "$2"
}
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
# pcf ARGS: coffer as postgres (the catalog and spool are postgres's, as
# for archive_command).
pcf() {
	as_pg "$COFFER_BIN" --config "$CONF" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}
q() {
	local port=$1
	shift
	as_pg "$PG_BIN/psql" -h "$T" -p "$port" -U postgres -d postgres -qAtX "$@"
}
servers=()
pg_start() { # DIR PORT
	as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$1.log" -o "-p $2 -k $T -c listen_addresses=''" -w -t 120 start >/dev/null
}
pg_stop() {
	as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1
}
cleanup_servers() {
	for d in "$T/data" "$T"/r*; do
		[ -f "$d/postmaster.pid" ] && pg_stop "$d"
	done
	pkill -f "$COFFER_BIN --config $CONF wal-" 2>/dev/null
	true
}
t_at_exit cleanup_servers

chmod 711 "$T"
p=$T
while p=$(dirname "$p") && [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null; done

t_config <<EOF
[source pg]
type = postgres-physical
host = $T
port = $PORT
user = postgres
expect_wal_every = 1h

[repository dr]
type = posix
path = $T/dr
EOF
mkdir "$T/dr"
chown -R postgres: "$T"

# --- The cluster -------------------------------------------------------
as_pg "$PG_BIN/initdb" -D "$T/data" -U postgres -A trust -E UTF8 --locale=C >"$T/initdb.log" 2>&1 ||
	{ fail "initdb"; t_finish; }
cat >>"$T/data/postgresql.conf" <<EOF
wal_level = replica
archive_mode = on
archive_command = '$COFFER_BIN --config $CONF wal-push --source pg %p'
max_wal_senders = 4
EOF
pg_start "$T/data" "$PORT" || { fail "the cluster starts"; cat "$T/data.log"; t_finish; }

# archived SEGMENT: waits until PostgreSQL says SEGMENT (or later) is archived.
wait_archived() {
	local seg=$1 i
	for i in $(seq 1 300); do
		last=$(q "$PORT" -c "select coalesce(last_archived_wal,'') from pg_stat_archiver")
		[[ "$last" > "$seg" || "$last" == "$seg" ]] && return 0
		sleep 0.1
	done
	return 1
}
switch_wal() { # PORT: closes the current segment; prints its name
	local port=${1:-$PORT}
	q "$port" -c "select pg_walfile_name(pg_switch_wal())"
}
now_utc() { q "$PORT" -c "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"; }

# A tablespace, restored elsewhere by every restore below (--tablespace-map).
mkdir "$T/ts" && chown postgres: "$T/ts"
q "$PORT" -c "create tablespace ts location '$T/ts'" -c "create table tt (i int) tablespace ts" \
	-c "insert into tt values (7)"

# --- A base backup -----------------------------------------------------
pcf backup pg
check_rc "base backup of the cluster" 0
ID1=$(awk '{print $1; exit}' "$OUT")
pcf show "$ID1" --json
check "the record holds start and stop LSN, timeline, system id" \
	jqe '.meta.start_lsn and .meta.stop_lsn and .meta.timeline == 1 and (.meta.system_identifier|length) > 5 and .meta.wal_segment_size == 16777216' "$OUT"
base_key=$(jq -r '.objects[] | select(.name == "base") | .key' "$OUT")
age -d -i "$KEY" "$REPO/$base_key" | zstd -dq | tar -t >"$T/base.list" 2>"$T/tar.err"
check_eq "age | zstd -d | tar -t reads the base backup" "0 0 0" "${PIPESTATUS[*]}"
check_grep "it holds backup_label" "$T/base.list" '^backup_label$'
check_grep "it holds the backup's WAL" "$T/base.list" '^pg_wal/0000000100000000000000'
check "the backup manifest is stored" jqe '.objects[] | select(.name == "backup_manifest")' "$OUT"

# --- Commits with known times -------------------------------------------
q "$PORT" -c "create table t (i int primary key)" -c "insert into t values (1)"
sleep 0.3
AT1=$(now_utc)
sleep 0.3
q "$PORT" -c "insert into t values (2)"
LSN2=$(q "$PORT" -c "select pg_current_wal_insert_lsn()")
q "$PORT" -c "insert into t values (3)"
seg=$(switch_wal)
check "the segments are archived (sync wal-push)" wait_archived "$seg"

# prestore DIR ARGS...: restore --to-datadir DIR, the tablespace ts into
# $T/ts-<DIR's name> (made afresh).
prestore() {
	local dir=$1
	shift
	rm -rf "$T/ts-$(basename "$dir")"
	pcf restore --source pg --to-datadir "$dir" --tablespace-map "$T/ts=$T/ts-$(basename "$dir")" "$@"
}

# restore_and_rows DIR PORT ARGS...: restores with ARGS, starts the
# cluster, waits for the end of recovery, prints the rows of t.
restore_and_rows() {
	local dir=$1 port=$2
	shift 2
	prestore "$dir" "$@"
	[ "$RC" = 0 ] || { echo "restore failed: $(cat "$ERR")"; return 1; }
	pg_start "$dir" "$port" || { echo "start failed: $(tail -3 "$dir.log")"; return 1; }
	for _ in $(seq 1 300); do
		[ "$(q "$port" -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && break
		sleep 0.1
	done
	q "$port" -c "select coalesce(string_agg(i::text, ',' order by i), '') from t" 2>/dev/null ||
		echo "no table"
}
drop() { pg_stop "$1"; rm -rf "$1" "$1.log"; }

rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --at "$AT1")
check_eq "restore --at a time between commit 1 and 2 holds exactly the rows before it" "1" "$rows"
check_grep "recovery fetched WAL through coffer wal-fetch" "$T/r1.log" 'restored log file "0000000100000000000000'
check_grep "recovery stopped at the target" "$T/r1.log" 'recovery stopping before commit'
check_eq "the tablespace was restored where --tablespace-map says" "$T/ts-r1|1" \
	"$(q $((PORT + 1)) -c "select pg_tablespace_location(oid) || '|' || (select count(*) from tt) from pg_tablespace where spcname = 'ts'")"
drop "$T/r1"

rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --latest)
check_eq "restore --latest holds every row" "1,2,3" "$rows"
drop "$T/r1"

rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --lsn "$LSN2")
check_eq "restore --lsn (after commit 2, before 3) holds rows 1,2" "1,2" "$rows"
drop "$T/r1"

rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --immediate)
check_eq "restore --immediate is the backup's own state (no table t yet)" "no table" "$rows"
drop "$T/r1"

# pg_verifybackup on a restore not yet started: every file as the server's
# manifest says (it skips postgresql.auto.conf and recovery.signal).
prestore "$T/r1" --immediate --json
check "restore --to-datadir --json prints one document" jqe '.id and .datadir and .timeline == 1 and .target == "immediate"' "$OUT"
as_pg "$PG_BIN/pg_verifybackup" -n "$T/r1" >"$T/verify.out" 2>&1
check "pg_verifybackup accepts the restored data directory" test $? = 0
check "restore wrote recovery.signal" test -f "$T/r1/recovery.signal"
check_grep "and restore_command calling coffer wal-fetch" "$T/r1/postgresql.auto.conf" "restore_command = '.*wal-fetch --source pg %f %p'"
check "the data directory is private (0700)" test "$(stat -c %a "$T/r1")" = 700
rm -rf "$T/r1"
prestore "$T/r1" --latest
mkdir -p "$T/r9" && touch "$T/r9/PG_VERSION" && chown -R postgres: "$T/r9"
prestore "$T/r9" --latest
check_rc "a non-empty data directory is refused" 9
check_grep "naming it" "$ERR" "r9 is not empty"
rm -rf "$T/r1" "$T/r9"
prestore "$T/r1" --at 2020-01-01T00:00:00Z
check_rc "a time before the first base backup is refused" 3
check_grep "saying why" "$ERR" "before the end of the first base backup"
prestore "$T/r1" --at 2099-01-01T00:00:00Z
check_rc "a time beyond the archived WAL is refused" 3
check_grep "saying why" "$ERR" "after the newest archived WAL"
check_absent "neither wrote anything" "$T/r1"
check_absent "nor a tablespace" "$T/ts-r1"

# --- Timeline 2 ------------------------------------------------------------
rows=$(restore_and_rows "$T/r2" $((PORT + 2)) --latest --archive-mode preserve)
check_eq "a cluster restored --latest" "1,2,3" "$rows"
check_eq "is promoted to timeline 2" 2 "$(q $((PORT + 2)) -c 'select timeline_id from pg_control_checkpoint()')"
q $((PORT + 2)) -c "insert into t values (4)"
sleep 0.3
AT2=$(q $((PORT + 2)) -c "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
sleep 0.3
q $((PORT + 2)) -c "insert into t values (5)"
seg2=$(switch_wal $((PORT + 2)))
for _ in $(seq 1 300); do
	last=$(q $((PORT + 2)) -c "select coalesce(last_archived_wal,'') from pg_stat_archiver")
	[ "$last" = "$seg2" ] && break
	sleep 0.1
done
check_eq "timeline 2 archives into the same source" "$seg2" "$last"
check "its history file is archived" test -n "$(find "$REPO/pg/wal/history" -name '00000002.history-*')"
pg_stop "$T/r2"
rows=$(restore_and_rows "$T/r3" $((PORT + 1)) --at "$AT2")
check_eq "restore --at a point on timeline 2 follows the history" "1,2,3,4" "$rows"
drop "$T/r3"
rm -rf "$T/r2" "$T/r2.log"

# --- Re-push, other content -------------------------------------------------
mkdir -p "$T/x" && chown postgres: "$T/x"
pcf wal-fetch --source pg "$seg" "$T/x/$seg"
check_rc "wal-fetch of an archived segment" 0
pcf wal-push --source pg "$T/x/$seg"
check_rc "re-pushing it with the same content succeeds" 0
printf 'X' | dd of="$T/x/$seg" bs=1 seek=100 conv=notrunc status=none
pcf wal-push --source pg "$T/x/$seg"
check_rc "pushing other content under an archived name fails" 9
check_grep "saying so" "$ERR" "already archived .* with other content"
check_eq "and stores nothing more" 1 "$(find "$REPO/pg/wal" -name "$seg-*" | wc -l)"
as_pg "$COFFER_BIN" --config "$T/nonexistent.conf" wal-fetch --source pg "$seg" "$T/x/nc" 2>"$ERR"
check_eq "wal-fetch without its config exits 126, not 1 (which would end recovery)" 126 "$?"
pcf wal-fetch --source pg 0000000100000000000000FE "$T/x/fe"
check_rc "wal-fetch of a segment past the archive's end exits 1" 1
check_absent "and writes no file" "$T/x/fe"

# --- A hole ------------------------------------------------------------------
q "$PORT" -c "insert into t values (50)" >/dev/null
holeseg=$(switch_wal)
q "$PORT" -c "insert into t values (51)" >/dev/null
seg=$(switch_wal)
wait_archived "$seg"
mid=$(find "$REPO/pg/wal/0000000100000000" -name "$holeseg-*")
mid_dr=$(find "$T/dr/pg/wal/0000000100000000" -name "$holeseg-*")
mv "$mid" "$T/held"
mv "$mid_dr" "$T/held-dr"
prestore "$T/r1" --latest
check_rc "a restore through a missing segment fails" 4
check_grep "naming the segment" "$ERR" "WAL segment $holeseg of source pg is missing"
check_absent "before writing anything" "$T/r1"
check_absent "(nor a tablespace)" "$T/ts-r1"
pcf wal-fetch --source pg "$holeseg" "$T/x/hole"
check_rc "wal-fetch of a segment in a hole exits 126 (PostgreSQL stops recovering)" 126
check_grep "naming the hole" "$ERR" "missing from the archive, but a later one"
mv "$T/held" "$mid"
mv "$T/held-dr" "$mid_dr"

# --- Async -------------------------------------------------------------------
sed -i 's/^expect_wal_every = 1h$/expect_wal_every = 1h\nwal_async = true/' "$CONF"
for i in 1 2 3; do
	q "$PORT" -c "insert into t values (10$i)" >/dev/null
	seg=$(switch_wal)
done
check "async: the segments are archived" wait_archived "$seg"
for _ in $(seq 1 100); do
	find "$REPO/pg/wal" -name "$seg-*" | grep -q . && break
	sleep 0.1
done
check "and the background pusher stores them" test -n "$(find "$REPO/pg/wal" -name "$seg-*")"
# kill -9 the pusher again and again while segments come.
( for _ in $(seq 1 60); do pkill -9 -f "wal-push --background" 2>/dev/null; sleep 0.05; done ) &
killer=$!
for i in $(seq 1 8); do
	q "$PORT" -c "insert into t values (20$i)" >/dev/null
	seg=$(switch_wal)
done
wait "$killer"
# The next segment's wal-push starts a pusher again (a switch with nothing
# written makes no segment).
q "$PORT" -c "insert into t values (299)" >/dev/null
seg=$(switch_wal)
check "async with the pusher killed -9: PostgreSQL's archive goes on" wait_archived "$seg"
for _ in $(seq 1 100); do
	[ -z "$(ls "$T/wal-spool/pg/out" 2>/dev/null | grep -v '\.tmp$')" ] && break
	sleep 0.1
done
check_empty_output "the spool drains" sh -c "ls '$T/wal-spool/pg/out' | grep -v '\\.tmp\$'"
want=$(q "$PORT" -c "select string_agg(i::text, ',' order by i) from t")
rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --latest --timeline 1)
check_eq "no segment was lost: restore --latest --timeline 1 has every row" "$want" "$rows"
drop "$T/r1"

# --- Look-ahead --------------------------------------------------------------
# The pusher pushes the files PostgreSQL marked ready (archive_status/
# NAME.ready) before their wal-push runs, which then only checks the file's
# digest. A source of its own, over a pg_wal made by hand.
cp "$CONF" "$T/conf.bak"
printf '\n[source ahead]\ntype = postgres-physical\nhost = %s\nwal_async = true\n' "$T" >>"$CONF"
mkdir -p "$T/fakewal/archive_status"
for i in 1 2 3 4 5; do
	head -c 16777216 /dev/urandom >"$T/fakewal/00000001000000000000000$i"
	touch "$T/fakewal/archive_status/00000001000000000000000$i.ready"
done
chown -R postgres: "$T/fakewal"
pcf wal-push --source ahead "$T/fakewal/000000010000000000000001"
check_rc "look-ahead: the first wal-push (its file pushed by the pusher it started)" 0
for _ in $(seq 1 150); do
	[ "$(ls "$T/wal-spool/ahead/done" 2>/dev/null | wc -l)" -ge 4 ] && break
	sleep 0.1
done
check_eq "the pusher pushed the four other ready files ahead" 5 \
	"$(find "$REPO/ahead/wal" -type f ! -name '.*' | wc -l)"
as_pg "$COFFER_BIN" --config "$CONF" -v wal-push --source ahead "$T/fakewal/000000010000000000000002" \
	>"$OUT" 2>"$ERR"
check_eq "the next wal-push exits 0" 0 "$?"
check_grep "having found it pushed ahead" "$ERR" "000000010000000000000002: pushed by the background pusher"
head -c 16777216 /dev/urandom >"$T/fakewal/000000010000000000000003"
as_pg "$COFFER_BIN" --config "$CONF" -v wal-push --source ahead "$T/fakewal/000000010000000000000003" \
	>"$OUT" 2>"$ERR"
check_eq "a file changed since it was pushed ahead is not taken as pushed: its push fails" \
	6 "$?"
check_grep "naming the other content" "$ERR" "other content"
check_not "and not saying it was pushed" grep -q "pushed by the background" "$ERR"
cp "$T/conf.bak" "$CONF"

# --- Status ------------------------------------------------------------------
pcf status pg --json
check "status reports the archive's newest segment and age" \
	jqe '.sources[0].wal.newest and .sources[0].wal.age_seconds >= 0' "$OUT"

# --- Prune -------------------------------------------------------------------
q "$PORT" -c "insert into t values (300)" >/dev/null
rows2=$(q "$PORT" -c "select count(*) from t")
pcf backup pg
check_rc "a second base backup" 0
ID2=$(awk '{print $1; exit}' "$OUT")

# --- verify --drill of a base backup -----------------------------------------
pcf verify --drill "$ID2" --json
check_rc "verify --drill of a base backup" 0
check_eq "the drill's server counted t's rows as of the backup" "$rows2" \
	"$(jq '.drills[0].databases.postgres.tables["public.t"]' "$OUT")"
check_eq "and the rows of the table in the tablespace" 1 \
	"$(jq '.drills[0].databases.postgres.tables["public.tt"]' "$OUT")"
check "it measured the recovery time" jqe '.drills[0].ok and .drills[0].recovery_seconds > 0' "$OUT"
check "its document follows docs/schema/drill.json" valid drill "$OUT"
check_empty_output "and left no drill folder" sh -c "ls -d \${TMPDIR:-/tmp}/coffer-drill.* 2>/dev/null"
pcf show "$ID2" --json
start2=$(jq -r .meta.start_wal "$OUT")
q "$PORT" -c "insert into t values (301)" >/dev/null
seg=$(switch_wal)
wait_archived "$seg"
sleep 1
before=$(find "$REPO/pg/wal" -type f | wc -l)
pcf prune
check_eq "prune without a policy removes no WAL" "$before" "$(find "$REPO/pg/wal" -type f | wc -l)"
printf '[retention]\nkeep_last = 1\n' >>"$CONF"
pcf prune --dry-run
check_grep "prune --dry-run says which WAL would go" "$OUT" "would remove [1-9][0-9]* WAL file"
would=$(sed -n 's/.*would remove \([0-9]*\) WAL file.*/\1/p' "$OUT" | head -1)
pcf prune --dry-run --json
check "prune --dry-run --json reports the same WAL, older than the kept backup's start" \
	jqe --argjson n "$would" --arg s "$start2" \
	'.plans[0].wal.remove == $n and .plans[0].wal.older_than == $s and (.plans[0].wal | has("result") | not)' "$OUT"
check "its document follows docs/schema/prune.json" valid prune "$OUT"
before=$(find "$REPO/pg/wal" -type f | wc -l)
pcf prune --json
check_rc "prune with two base backups, keep_last = 1" 0
check "prune --json reports the WAL deleted in each repository" \
	jqe --argjson n "$would" '[.plans[] | select(.wal.result == "deleted" and .wal.remove == $n)] | length == 2' "$OUT"
check "its document follows docs/schema/prune.json" valid prune "$OUT"
oldest=$(find "$REPO/pg/wal/0000000100000000" -type f -name '000000010000000000000???-*' | sed 's|.*/||; s|-.*||' | sort | head -1)
check_eq "the oldest segment left is the kept backup's start" "$start2" "$oldest"
check "the history files are kept" test -n "$(find "$REPO/pg/wal/history" -name '00000002.history-*')"
after=$(find "$REPO/pg/wal" -type f | wc -l)
check "older WAL went" test "$after" -lt "$before"
rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --latest)
check_eq "the kept backup still restores to the latest" \
	"$(q "$PORT" -c "select string_agg(i::text, ',' order by i) from t")" "$rows"
drop "$T/r1"

# --- The DR repository -------------------------------------------------------
# Every base backup and WAL file went to [repository dr] too. With the
# primary repository gone, restore and recovery read dr.
mv "$REPO" "$REPO.away"
want=$(q "$PORT" -c "select string_agg(i::text, ',' order by i) from t")
rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --latest)
check_eq "the primary repository gone: restore --latest from dr has every row" "$want" "$rows"
check_grep "saying it fell over to dr" "$ERR" "repository primary: .*; trying repository dr"
check_grep "and naming where it restored from" "$OUT" "from repository dr into $T/r1"
check_grep "recovery fetched WAL from dr" "$T/r1.log" 'restored log file "0000000'
drop "$T/r1"
rm -rf "$REPO"
mv "$REPO.away" "$REPO"
# The primary's tablespace object damaged: the restore fails there after
# writing into the tablespace's folder, which existed empty (a mount point,
# say): it is emptied again, and the restore from dr goes on into it.
pcf show "$ID2" --json
tkey=$(jq -r '.objects[] | select(.meta.role == "tablespace") | .key' "$OUT")
cp -p "$REPO/$tkey" "$T/ts.good"
truncate -s $(($(stat -c %s "$REPO/$tkey") / 2)) "$REPO/$tkey"
mkdir "$T/tsmnt" && chown postgres: "$T/tsmnt"
pcf restore --source pg --to-datadir "$T/r1" --tablespace-map "$T/ts=$T/tsmnt" --latest
check_rc "a damaged tablespace object in the primary: restore falls over to dr" 0
check_grep "naming the damage" "$ERR" "repository primary: .*; trying repository dr"
check_eq "the tablespace folder, once emptied, holds dr's copy only" 1 "$(ls "$T/tsmnt" | wc -l)"
check_eq "the data directory links it" "$T/tsmnt" "$(readlink "$T/r1/pg_tblspc/"*)"
cp -p "$T/ts.good" "$REPO/$tkey"
rm -rf "$T/r1" "$T/tsmnt"
prestore "$T/r1" --latest --from dr --json
check_rc "restore --from dr" 0
check_eq "reads dr only" dr "$(jq -r .repository "$OUT")"
rm -rf "$T/r1"
prestore "$T/r1" --latest --from nosuch
check_rc "restore --from a repository the config lacks" 2
check_grep "naming it" "$ERR" "no \\[repository nosuch\\]"

# --- replicate --all copies WAL ----------------------------------------------
# dr loses two WAL files, and a repository is added to the configuration:
# replicate --all copies the base backup into it, then the WAL from that
# backup's start, and gives dr its files back. (Files named .* are the
# temporary files of pushers killed above; the housekeeping of a backup
# removes them after orphan_age.)
wal_names() { find "$1/pg/wal" -type f ! -name '.*' | sed 's|.*/||; s|-[0-9a-f]*\.zst\.age$||' | sort; }
lost=$(find "$T/dr/pg/wal/0000000100000000" -type f | sort | tail -n 2)
rm -f $lost
mkdir "$T/late" && chown postgres: "$T/late"
printf '\n[repository late]\ntype = posix\npath = %s\n' "$T/late" >>"$CONF"
pcf replicate --all --json
check_rc "replicate --all into a repository added later" 0
check "it reports the WAL files it copied" jqe '.wal_copied > 2 and .copied == 1' "$OUT"
check "its document follows docs/schema/replicate.json" valid replicate "$OUT"
check_eq "dr has the WAL files it lost again" "$(wal_names "$REPO")" "$(wal_names "$T/dr")"
check_eq "late holds the WAL from its base backup's start, as the primary does" \
	"$(wal_names "$REPO")" "$(wal_names "$T/late")"
pcf replicate --all --json
check "a second replicate --all copies nothing" jqe '.wal_copied == 0 and .copied == 0' "$OUT"
mv "$REPO" "$REPO.away"
mv "$T/dr" "$T/dr.away"
rows=$(restore_and_rows "$T/r1" $((PORT + 1)) --latest --from late)
check_eq "with only late left, restore --latest --from late has every row" "$want" "$rows"
drop "$T/r1"
mv "$REPO.away" "$REPO"
mv "$T/dr.away" "$T/dr"

# Last (root's files in the catalog would be in postgres's way): a drill run
# as root hands the restored files to postgres and runs the server as it.
cf verify --drill "$ID2" --json
check_rc "verify --drill as root" 0
check_eq "its server counted the same rows" "$rows2" \
	"$(jq '.drills[0].databases.postgres.tables["public.t"]' "$OUT")"

t_finish
