# test_cli_verbosity: --quiet prints errors only (no warnings, no summary
# lines) but still the data a command exists to print; --verbose adds an info
# line per object stored or restored, -vv a debug line per file (README,
# "Global options").
. "$(dirname "$0")/lib.sh"
t_setup cli_verbosity

mkdir -p "$T/files/sub"
printf 'alpha\n' >"$T/files/a.txt"
printf 'beta\n' >"$T/files/sub/b.txt"
t_config <<EOF
[source tree]
type = files
paths = $T/files

[source one]
type = command
command = seq 1 1000

[source fails]
type = command
command = sh -c 'echo half; exit 3'
EOF

# --- --quiet ---------------------------------------------------------------------------
cf -q backup one
check_rc "-q backup one" 0
check_eq "-q backup: no summary line on stdout" "" "$(cat "$OUT")"
check_eq "-q backup: nothing on stderr" "" "$(cat "$ERR")"
cf backup tree --quiet
check_rc "backup tree --quiet" 0
check_eq "backup --quiet: no summary line" "" "$(cat "$OUT")"
ONE=$(last_id one)
TREE=$(last_id tree)

cf --quiet backup fails
check_rc "--quiet: a failing backup still fails" 5
check_one_error_line "--quiet: the error line still shows"

# A warning (an identity file others may read) shows without --quiet only.
cp "$KEY" "$T/open.key"
chmod 644 "$T/open.key"
cf restore "$ONE" --stdout --identity "$T/open.key"
check_rc "restore with an identity readable by others" 0
check_grep "without --quiet: the warning" "$ERR" '^coffer: warning: .*accessible to other users'
cf restore "$ONE" --stdout --identity "$T/open.key" -q
check_rc "restore -q with an identity readable by others" 0
check_eq "-q: no warning" "" "$(cat "$ERR")"
check_eq "-q: restore --stdout still writes the data" "$(seq 1 1000 | sha256sum)" "$(sha256sum <"$OUT")"

cf -q restore "$TREE" --to "$T/r1"
check_rc "-q restore --to DIR" 0
check_eq "-q restore: no 'restored ... into' line" "" "$(cat "$OUT")"
check_same_file "-q restore: the file is there" "$T/files/a.txt" "$T/r1/$T/files/a.txt"

cf -q catalog rebuild
check_rc "-q catalog rebuild" 0
check_eq "-q catalog rebuild: no summary" "" "$(cat "$OUT")"
cf catalog rebuild
check_grep "catalog rebuild without -q: the summary" "$OUT" '^recorded [0-9]+ backup'
cf repo cleanup -q
check_rc "repo cleanup -q" 0
check_eq "repo cleanup -q: no summary" "" "$(cat "$OUT")"
cf repo cleanup
check_grep "repo cleanup without -q: the summary" "$OUT" '^marked [0-9]+ interrupted'

# The data a command exists to print is printed under --quiet.
cf -q list
check_grep "-q list: the table" "$OUT" "^$ONE +one +complete"
cf show "$ONE" --quiet
check_grep "show --quiet: the record" "$OUT" "^id: +$ONE"
cf -q keygen -o "$T/q.key"
check_grep "-q keygen -o: the recipient" "$OUT" '^age1'
cf -q --json repo cleanup
check "-q --json: the document is printed" jq -e '.repository' "$OUT" >/dev/null
cf --quiet --json list
check_eq "--quiet --json list: the document (3 backups)" 3 "$(jq length "$OUT")"
check_eq "--quiet --json: nothing on stderr" "" "$(cat "$ERR")"

# --- --verbose -------------------------------------------------------------------------
cf backup one
check_no_grep "without -v: no per-object line" "$ERR" 'stored object'
cf backup one --verbose
check_rc "backup one --verbose" 0
check_grep "--verbose backup: an info line for the object, with its sizes, naming the run" "$ERR" \
	'^coffer: info: \[one [0-9TZ.]+-[0-9a-f]{8}\] stored object stdout \(one/[^ ]+/stdout.zst.age\): 3893 bytes, [0-9]+ stored$'
cf -v backup tree
check_grep "-v backup tree: an info line for the object" "$ERR" \
	'^coffer: info: \[tree [^]]+\] stored object files \(tree/[^)]+\): [0-9]+ bytes, [0-9]+ stored$'
TREE2=$(grep -o 'tree/[^/]*' "$ERR" | head -1 | cut -d/ -f2)
check_eq "every line of the run carries its backup id" "$(grep -c '^coffer: ' "$ERR")" "$(grep -c "^coffer: [a-z]*: \[tree $TREE2\] " "$ERR")"

# --- --log-format json -------------------------------------------------------------------
cf --log-format json -v backup tree one
check_rc "--log-format json backup" 0
check_eq "every stderr line is a JSON object" "$(wc -l <"$ERR")" "$(jq -c . "$ERR" | wc -l)"
check_eq "each with time, level and message" "" "$(jq -r 'select((.time | test("^20[0-9-]+T[0-9:.]+Z$") | not) or .level == null or .message == null) | .message' "$ERR")"
check_eq "the lines of a run carry its source and backup id" "tree one" "$(jq -r 'select(.message | startswith("stored object")) | .source' "$ERR" | tr '\n' ' ' | sed 's/ $//')"
check_eq "the backup id is the one stored" "" "$(jq -r 'select(.message | startswith("stored object")) | select((.message | contains(.source + "/" + .backup + "/")) | not) | .message' "$ERR")"
COFFER_LOG_FORMAT=json cf restore no-such-id --to "$T/nowhere"
check_not "a failed command" test "$RC" = 0
check_eq "COFFER_LOG_FORMAT=json: its error line is JSON too" "error" "$(jq -r .level "$ERR")"
cf --log-format xml list
check_rc "--log-format xml is refused" 2
check_grep "naming the value and the choices" "$ERR" "^coffer: error: --log-format 'xml': expected text or json$"
check_no_grep "-v: no per-file debug lines" "$ERR" '^coffer: debug: '
cf -v restore "$TREE" --to "$T/r2"
check_rc "-v restore" 0
check_grep "-v restore: an info line for the object, verified" "$ERR" \
	'^coffer: info: \[tree [^]]+\] restored object files \(tree/[^)]+\): [0-9]+ bytes, [0-9]+ stored, size and SHA-256 verified$'
check_no_grep "-v restore: no per-file lines" "$ERR" 'b\.txt'
cf -vv restore "$TREE" --to "$T/r3"
check_rc "-vv restore" 0
check_grep "-vv restore: a debug line per file" "$ERR" "^coffer: debug: \[tree [^]]+\] restoring .*files/sub/b\.txt$"
cf -vv backup tree
check_rc "-vv backup tree" 0
check_grep "-vv backup: a debug line per file" "$ERR" "^coffer: debug: .*files/sub/b\.txt"
cf --verbose --verbose list
check_rc "--verbose twice" 0
cf -q -v list
check_rc "-q and -v together" 0

t_finish
