#!/bin/bash
# coffer prune: the retention policy applied to the catalog's records, per
# source and repository, each backup with keep or remove and the rules that
# keep it; --dry-run deletes nothing, prune deletes exactly that. A prune
# killed at each step (deleting mark, manifest gone, objects gone) leaves no
# backup that looks complete and is finished by the next prune, by repo
# cleanup, and survives catalog rebuild; a running backup is untouched; a
# repository that cannot be reached makes the exit status say so while the
# other deletions stand; failed runs' records go after keep_failed (test
# clock).
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
dry=$T/dry.out
cf prune --dry-run
cp "$OUT" "$dry"
cf prune
check_rc "prune" 0
check_eq "prune removes exactly what the dry run said" \
	"$(grep -E '^ +remove ' "$dry" | awk '{print $2}')" "$(grep -E '^ +remove ' "$OUT" | awk '{print $2}')"
check_grep "primary: the two oldest deleted" "$OUT" "^  remove  ${IDS[1]} +complete +deleted$"
check_grep "the counts and bytes" "$OUT" "^  removed 2 backup\(s\), 4[0-9][0-9] B$"
check_absent "primary: the oldest's folder is gone" "$REPO/a/${IDS[0]}"
check_absent "primary: the second's folder is gone" "$REPO/a/${IDS[1]}"
check "second keeps the second oldest (keep_last 3)" test -f "$T/second/a/${IDS[1]}/manifest.json"
check_absent "second: the oldest is gone" "$T/second/a/${IDS[0]}"
check "primary keeps the newest" test -f "$REPO/a/${IDS[3]}/manifest.json"
cf list --source a --json
check_eq "list: three backups left" 3 "$(jq length "$OUT")"
check_eq "list: the second oldest only in second" '["posix:'"$T"'/second"]' "$(jq -c --arg id "${IDS[1]}" '.[] | select(.id == $id) | .locations' "$OUT")"
cf show "${IDS[1]}"
check_grep "show: pruned from primary" "$OUT" "^copy: +primary +pruned "
cf replicate --all
check_rc "replicate --all" 0
check_absent "replicate --all does not copy back what prune removed" "$REPO/a/${IDS[1]}"
cf restore "${IDS[1]}" --stdout
check_rc "the copy kept in second restores" 0
check_eq "with its data" a "$(cat "$OUT")"
cf prune --json
check_rc "a second prune" 0
check_eq "deletes nothing more" 0 "$(jq .deleted "$OUT")"
check_eq "the failed run's record stays (keep_failed 7d)" 1 "$(jq '[.plans[].backups[] | select(.status == "failed")] | length' "$OUT")"

# The test clock: eight days on, the failed run's record goes.
COFFER_TEST_CLOCK=$(date -u -d '+8 days' +%Y-%m-%dT%H:%M:%SZ) cf prune --json
check_rc "prune eight days on (COFFER_TEST_CLOCK)" 0
check_eq "the failed run's record is deleted" 1 "$(jq .deleted_records "$OUT")"
check_eq "and nothing else" 0 "$(jq .deleted "$OUT")"

# Killed at each step: the copy is gone for every reader at once, and the
# next prune (or repo cleanup) finishes it.
for point in delete-marked delete-manifest delete-objects; do
	cf backup a --json
	cf backup a --json
	cf list --source a --json
	victim=$(jq -r '[.[] | select(.locations | index("posix:'"$REPO"'"))][0].id' "$OUT")
	COFFER_FAULT=$point:kill cf prune --target primary
	check_rc "prune killed at $point" 137
	cf list --source a --json
	check_eq "$point: list does not offer the copy being deleted" "[]" "$(jq -c --arg id "$victim" '[.[] | select(.id == $id) | .locations[] | select(startswith("posix:'"$REPO"'"))]' "$OUT")"
	cf restore "$victim" --stdout
	check_eq "$point: it restores (from second: the catalog says primary lost it)" a "$(cat "$OUT")"
	if [ $point = delete-manifest ]; then
		cf catalog rebuild
		check_rc "$point: catalog rebuild" 0
		cf list --source a --json
		check_eq "$point: rebuild does not bring it back in primary" "[]" "$(jq -c --arg id "$victim" '[.[] | select(.id == $id) | .locations[] | select(startswith("posix:'"$REPO"'"))]' "$OUT")"
		cf repo cleanup --json
		check_rc "$point: repo cleanup" 0
		check_eq "$point: repo cleanup finishes the deletion" 1 "$(jq '.repositories[0].deleted_backups' "$OUT")"
	else
		cf prune --target primary --json
		check_rc "$point: the next prune" 0
		check_eq "$point: the next prune finishes it" "deleted" "$(jq -r --arg id "$victim" '.plans[] | .backups[] | select(.id == $id) | .result' "$OUT")"
	fi
	check_absent "$point: its folder is gone" "$REPO/a/$victim"
	cf show "$victim"
	check_grep "$point: show says pruned" "$OUT" "^copy: +primary +pruned "
done

# A backup running while prune runs on the same source is untouched.
cat >>"$CONF" <<EOF2

[source slow]
type = command
command = sh -c 'sleep 3; echo slow'
keep_last = 1
EOF2
cf backup slow
cf backup slow
"$COFFER_BIN" --config "$CONF" backup slow --json >"$T/slow.out" 2>"$T/slow.err" &
slow=$!
for _ in $(seq 50); do
	[ -n "$(find "$REPO/slow" -name '*.age*' -newer "$T/slow.err" 2>/dev/null)" ] && break
	cf list --source slow --json
	[ "$(jq '[.[] | select(.status == "running")] | length' "$OUT")" = 1 ] && break
	sleep 0.1
done
cf prune --source slow
check_rc "prune while a backup of the source runs" 0
check_grep "the running backup is kept" "$OUT" "^  keep    [^ ]+ +running +running$"
check_grep "the older complete one is removed" "$OUT" "^  remove  [^ ]+ +complete +deleted$"
wait $slow
check_eq "the running backup completes" 0 $?
running_id=$(jq -r '.backups[0].id' "$T/slow.out")
cf restore "$running_id" --stdout
check_eq "and restores" slow "$(cat "$OUT")"

# A repository that cannot be reached: its deletions fail, the others stand.
cf backup a
cf backup a
mv "$T/second" "$T/second.away"
cf prune --json
check_rc "prune with second gone exits 5 (a repository failed)" 5
check_grep "the error names the repository" "$ERR" "cannot open repository second"
check_eq "one error line for it, and the summary" 2 "$(grep -c 'error:' "$ERR")"
check "deletions in primary went ahead" test "$(jq '[.plans[] | select(.repository == "primary") | .deleted] | add' "$OUT")" -ge 1
check "those in second failed" test "$(jq '[.plans[] | select(.repository == "second") | .failed] | add' "$OUT")" -ge 1
mv "$T/second.away" "$T/second"
cf prune
check_rc "with second back, prune succeeds" 0
cf prune --dry-run --target nosuch
check_rc "--target an unknown repository" 2
cf prune --dry-run --source nosuch
check_rc "--source an unknown source" 2
sed -i 's/^keep_last = 2$/keep_last = 2\ntimezone = Mars\/Olympus/' "$CONF"
cf prune --dry-run
check_rc "an unknown timezone is a configuration error (exit 2)" 2
check_one_error_line "unknown timezone: one error line"

t_finish
