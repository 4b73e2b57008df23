# test_cli: the command line itself: --version, help for every command,
# usage errors (exit 2 with one error line), and the shape of `list --json`.
. "$(dirname "$0")/lib.sh"
t_setup cli

COMMANDS="backup list show restore keygen catalog repo"

"$COFFER_BIN" --version >"$OUT" 2>"$ERR"
RC=$?
check_rc "--version" 0
check_grep "--version prints 'coffer X.Y.Z'" "$OUT" '^coffer [0-9]+\.[0-9]+\.[0-9]+'
check_eq "--version prints one line" 1 "$(wc -l <"$OUT")"

cf help
check_rc "help" 0
for c in $COMMANDS; do
	check_grep "help lists $c" "$OUT" "^  coffer $c( |\$)"
done
for c in $COMMANDS; do
	cf help "$c"
	check_rc "help $c" 0
	check_grep "help $c prints its usage" "$OUT" "^usage: coffer $c( |\$)"
	check "help $c explains it (more than the usage line)" test "$(wc -l <"$OUT")" -ge 3
done
"$COFFER_BIN" --help >"$OUT" 2>"$ERR"
RC=$?
check_rc "--help" 0
check_grep "--help prints the usage" "$OUT" '^usage: coffer'

cf help nope
check_rc "help of an unknown command" 2
check_one_error_line "help of an unknown command: one error line"
cf nope
check_rc "an unknown command" 2
check_one_error_line "an unknown command: one error line"
check_grep "an unknown command: the error names it" "$ERR" "^coffer: error: .*'nope'"
"$COFFER_BIN" >"$OUT" 2>"$ERR"
RC=$?
check_rc "no command" 2
check_grep "no command prints the usage on stderr" "$ERR" '^usage: coffer'
"$COFFER_BIN" --bogus list >"$OUT" 2>"$ERR"
RC=$?
check_rc "an unknown global option" 2

t_config <<EOF
[source one]
type = command
command = echo one

[source two]
type = command
command = seq 1 1000
EOF

# Usage errors of each command.
cf backup nosuch
check_rc "backup of an unknown source" 2
check_grep "backup of an unknown source: the error names it" "$ERR" "^coffer: error: .*nosuch"
cf backup --bogus
check_rc "backup --bogus" 2
cf restore
check_rc "restore without an id" 2
cf restore 20200101T000000.000Z-00000000
check_rc "restore without --to or --stdout" 2
cf restore 20200101T000000.000Z-00000000 --to "$T/x" --stdout
check_rc "restore with both --to and --stdout" 2
check_absent "restore with both: nothing created" "$T/x"
cf show
check_rc "show without an id" 2
cf list extra
check_rc "list with an extra argument" 2
cf catalog
check_rc "catalog without a subcommand" 2
cf catalog frobnicate
check_rc "catalog frobnicate" 2
cf repo
check_rc "repo without a subcommand" 2
cf repo cleanup --older-than soon
check_rc "repo cleanup --older-than soon" 2
cf keygen extra
check_rc "keygen with an extra argument" 2

# --- list --json -------------------------------------------------------------------
cf list --json
check_rc "list --json with no backups" 0
check "list --json with no backups is valid JSON" python3 -m json.tool "$OUT" /dev/null
check_eq "list --json with no backups is an empty array" 0 "$(jq length "$OUT")"
cf list
check_rc "list with no backups" 0

for i in 1 2 3; do
	cf backup one two
	check_rc "backup round $i" 0
done
cf backup --stdin three --allow-empty </dev/null
check_rc "backup --stdin three" 0

cf list --json
check_rc "list --json" 0
cp "$OUT" "$T/list.json"
check "list --json is valid JSON (python3 -m json.tool)" python3 -m json.tool "$T/list.json" /dev/null
check_eq "list --json is an array" array "$(jq -r type "$T/list.json")"
check_eq "list --json has the 7 backups" 7 "$(jq length "$T/list.json")"
for f in id source status started finished raw_bytes stored_bytes; do
	check_eq "every entry has the field $f" 7 "$(jq --arg f "$f" '[.[] | select(has($f) and .[$f] != null)] | length' "$T/list.json")"
done
check_eq "raw_bytes and stored_bytes are numbers" 7 \
	"$(jq '[.[] | select((.raw_bytes | type) == "number" and (.stored_bytes | type) == "number")] | length' "$T/list.json")"
check_eq "status is complete for all" 7 "$(jq '[.[] | select(.status == "complete")] | length' "$T/list.json")"
check_eq "ids look like backup ids" 7 \
	"$(jq '[.[] | select(.id | test("^[0-9]{8}T[0-9]{6}\\.[0-9]{3}Z-[0-9a-f]{8}$"))] | length' "$T/list.json")"
check_eq "list --json is oldest first (started ascending)" \
	"$(jq -c '[.[].started] | sort' "$T/list.json")" "$(jq -c '[.[].started]' "$T/list.json")"
check_eq "list --json is in backup order (sources)" "one two one two one two three" \
	"$(jq -r '.[].source' "$T/list.json" | xargs)"
check_eq "finished is not before started" 7 "$(jq '[.[] | select(.finished >= .started)] | length' "$T/list.json")"
check_eq "raw_bytes of 'two' is the output of seq 1 1000" "$(seq 1 1000 | wc -c)" \
	"$(jq '[.[] | select(.source == "two")][0].raw_bytes' "$T/list.json")"
check_eq "raw_bytes of the empty stdin backup is 0" 0 \
	"$(jq '[.[] | select(.source == "three")][0].raw_bytes' "$T/list.json")"

cf --json list
check_rc "the global --json works for list" 0
check_same_file "--json list equals list --json" "$T/list.json" "$OUT"
cf list --source two --json
check_eq "list --source two shows only two" "two two two" "$(jq -r '.[].source' "$OUT" | xargs)"
cf list --source nosuch --json
check_eq "list --source with no backups is an empty array" 0 "$(jq length "$OUT")"

cf list
check_rc "list (text)" 0
check_eq "list (text): a header and one line per backup" 8 "$(wc -l <"$OUT")"
check_grep "list (text): the header" "$OUT" '^ID +SOURCE +STATUS'

cf --json backup one
check_rc "backup with --json" 0
check "backup --json prints one document holding the record" jq -e '.backups[0].id and .backups[0].status == "complete"' "$OUT"


# A bad option is one error line naming it (not getopt's line and a usage dump).
for args in "restore --foo" "restore x --to" "--bogus list" "keygen -x" "list --status"; do
	# shellcheck disable=SC2086
	cf $args
	check_rc "coffer $args: usage error" 2
	check_eq "coffer $args: one line on stderr" 1 "$(wc -l <"$ERR")"
	check_grep "coffer $args: names the option" "$ERR" "^coffer: error: (unknown option|option) (${args##* }|${args%% *})"
done

t_finish
