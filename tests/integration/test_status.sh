#!/bin/bash
# coffer status for a monitoring check: exit 0 only when every source is
# fresh and healthy; 11 for a source never backed up, one whose newest
# complete backup is older than its expect_every (COFFER_TEST_CLOCK), one
# whose last run failed, and one whose last verify failed; the JSON and
# text say which and why.
. "$(dirname "$0")/lib.sh"
t_setup status

sqlite3 "$T/app.db" 'CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);'
t_config <<EOF
[source daily]
type = command
command = seq 1 1000
expect_every = 24h

[source broken]
type = command
command = sh -c 'if [ -f $T/break ]; then exit 3; fi; echo fine'

[source lite]
type = sqlite
path = $T/app.db
EOF
day() { date -u -d "2027-03-01 03:00 UTC + $1" +%Y-%m-%dT%H:%M:%SZ; }

COFFER_TEST_CLOCK=$(day "0 hours") cf status
check_rc "nothing backed up yet: not healthy" 11
check_grep "each source says it was never backed up" "$OUT" "^daily +PROBLEM"
check_grep "with its problem" "$OUT" "^ +- never backed up"
check_grep "one error line names them" "$ERR" "coffer: error: 3 of 3 source\(s\) not healthy: daily \(never backed up\); broken \(never backed up\); lite"

for s in daily broken lite; do COFFER_TEST_CLOCK=$(day "0 hours") cf backup $s; done
COFFER_TEST_CLOCK=$(day "1 hour") cf status
check_rc "an hour later every source is healthy" 0
check_grep "daily: its last backup, an hour ago" "$OUT" "^daily +ok +last .* \(1h0m ago\), 1 copy"
COFFER_TEST_CLOCK=$(day "1 hour") cf status --json
check_eq "--json: healthy" true "$(jq .healthy "$OUT")"
check_eq "--json: the age in seconds" 3600 "$(jq '.sources[] | select(.source == "daily") | .last_backup.age_seconds' "$OUT")"

# A day and an hour later the daily source is stale; the others have no
# expect_every and stay healthy.
COFFER_TEST_CLOCK=$(day "25 hours") cf status
check_rc "a backup older than expect_every: not healthy" 11
check_grep "the stale source says why" "$OUT" "^ +- the last complete backup is 1d1h old \(expect_every 1d0h\)"
check_one_error_line "one error line"
check_grep "it names only that source" "$ERR" "1 of 3 source\(s\) not healthy: daily \(the last complete backup is 1d1h old"
COFFER_TEST_CLOCK=$(day "25 hours") cf status broken lite
check_rc "the others, named, are healthy" 0

# The last run failed: not healthy until a run succeeds.
touch "$T/break"
COFFER_TEST_CLOCK=$(day "26 hours") cf backup broken
COFFER_TEST_CLOCK=$(day "26 hours") cf status broken
check_rc "the last run failed: not healthy" 11
check_grep "it gives the run's error" "$OUT" "the last run \(.*\) failed: source broken: .*status 3"
rm "$T/break"
COFFER_TEST_CLOCK=$(day "27 hours") cf backup broken
COFFER_TEST_CLOCK=$(day "27 hours") cf status broken
check_rc "after a good run it is healthy again" 0

# The last verify of a source failed; a drill shows.
cf verify --drill --latest --source lite
cf status lite
check_grep "a drill shows" "$OUT" "^lite +ok .* drill ok "
obj=$(object_path "$(last_id lite)")
cp "$obj" "$T/good"
flip_byte "$obj"
cf verify --latest --source lite
check_rc "verify finds the damage" 4
cf status lite
check_rc "a failed verify: not healthy" 11
check_grep "status says so" "$OUT" "the last verify \(.*\) failed: backup .* in primary: "
cp "$T/good" "$obj"
cf verify --latest --source lite
cf status lite
check_rc "verified again: healthy" 0
t_finish
