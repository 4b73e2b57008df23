#!/bin/bash
# coffer prune --dry-run: the retention policy applied to the catalog's
# records, per source and repository, each backup with keep or remove and the
# rules that keep it; nothing is deleted (prune does not delete yet, and says
# so without --dry-run).
. "$(dirname "$0")/lib.sh"
t_setup prune

mkdir -p "$REPO" "$T/second"
t_config <<EOF2
[repository second]
path = $T/second

[source a]
type = command
command = echo a

[source bad]
type = command
command = false
EOF2

IDS=()
for i in 1 2 3 4; do
	cf backup a --json
	check_rc "backup $i" 0
	IDS+=("$(jq -r '.backups[0].id' "$OUT")")
done
cf backup bad
check_rc "a failing backup (exit 5: the source failed)" 5
files=$(find "$REPO" "$T/second" -type f | wc -l)

cf prune --dry-run
check_rc "prune --dry-run without a policy" 0
check_grep "no policy: nothing is pruned" "$OUT" "^a in primary .*: no policy: nothing is pruned"
check_no_grep "no policy: nothing would be removed" "$OUT" "^  remove "

cat >>"$CONF" <<EOF2

[retention]
keep_last = 2
EOF2
sed -i "s|^path = $T/second\$|path = $T/second\nkeep_last = 3|" "$CONF"
cf prune --dry-run
check_rc "prune --dry-run with keep_last 2 (3 in second)" 0
check_grep "primary: the oldest goes" "$OUT" "^  remove  ${IDS[0]} "
check_grep "primary: the newest is kept as last 1 and newest" "$OUT" "^  keep    ${IDS[3]} +complete +last 1, newest$"
check_grep "primary: two would go" "$OUT" "would remove 2 backup"
check_grep "second: its own policy" "$OUT" "^a in second .*keep_last 3"
check_grep "second: one would go" "$OUT" "would remove 1 backup"
check_grep "a failed run's record is kept a while" "$OUT" " failed +failed, kept 7d$"
check_eq "nothing was deleted" "$files" "$(find "$REPO" "$T/second" -type f | wc -l)"
cf prune --dry-run --source a --target second
check_rc "--source and --target" 0
check_eq "one plan" 1 "$(grep -c '^a in ' "$OUT")"
check_grep "of that repository" "$OUT" "^a in second "
cf prune
check_rc "prune without --dry-run refuses (it does not delete yet)" 2
check_grep "and says so" "$ERR" "deletes nothing yet"
check_eq "nothing was deleted" "$files" "$(find "$REPO" "$T/second" -type f | wc -l)"
cf prune --dry-run --target nosuch
check_rc "--target an unknown repository" 2
cf prune --dry-run --source nosuch
check_rc "--source an unknown source" 2
sed -i 's/^keep_last = 2$/keep_last = 2\ntimezone = Mars\/Olympus/' "$CONF"
cf prune --dry-run
check_rc "an unknown timezone is a configuration error (exit 2)" 2
check_one_error_line "unknown timezone: one error line"

t_finish
