# test_cli_help: every option the parsers accept is documented. The long
# options of each getopt `struct option` table (and the letters of each
# optstring) are read from the source: agent/main.c's are the global options,
# agent/cmd/cmd_X.c's those of command X. Each must appear in `coffer help X`
# (global ones in `coffer help`) and in README.md. `coffer help X`,
# `coffer X --help`, `coffer X -h` and `coffer help help` all print the help
# on stdout with exit 0, and the global flags work after the command word.
. "$(dirname "$0")/lib.sh"
t_setup cli_help

SRC=$COFFER_SRC
quietly() { "$@" >/dev/null 2>&1; }

# options.py FILE...: one line "FILE KIND NAME" per option of each getopt
# table (KIND long) and optstring (KIND short) in the files.
cat >"$T/options.py" <<'PY'
import re, sys
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments
    found = False
    for table in re.finditer(r"struct\s+option\s+\w+\s*\[\s*\]\s*=\s*\{(.*?)\};", text, re.S):
        found = True
        for name in re.findall(r'\{\s*"([^"]+)"\s*,', table.group(1)):
            print(path, "long", name)
    for call in re.finditer(r'getopt(?:_long)?\s*\([^;]*?,\s*"([^"]*)"', text):
        for letter in re.sub(r"[^A-Za-z0-9]", "", call.group(1)):
            print(path, "short", letter)
    if "getopt" in text and not found:
        print(path, "error", "getopt-without-a-table")
PY

# check_documented.py OPTIONS HELP README CMD: prints each option of
# OPTIONS (lines "FILE KIND NAME") missing from the text HELP or, for long
# options, from README; exits 1 if one is.
cat >"$T/check_documented.py" <<'PY'
import re, sys
opts, help_file, readme_file, cmd = sys.argv[1:5]
help_text = open(help_file, encoding="utf-8").read()
readme = open(readme_file, encoding="utf-8").read()
missing = []
for line in open(opts, encoding="utf-8"):
    _, kind, name = line.split()
    if kind == "long":
        word = re.compile(r"(?<![\w-])--" + re.escape(name) + r"(?![\w-])")
        if not word.search(help_text):
            missing.append("--%s is not in 'coffer help %s'" % (name, cmd))
        if not word.search(readme):
            missing.append("--%s (%s) is not in README.md" % (name, cmd))
    elif kind == "short":
        if not re.search(r"(?<![\w-])-" + re.escape(name) + r"(?![\w-])", help_text):
            missing.append("-%s is not in 'coffer help %s'" % (name, cmd))
    else:
        missing.append("%s: %s" % (line.split()[0], name))
for m in missing:
    print(m)
sys.exit(1 if missing else 0)
PY

# The commands `coffer help` lists.
cf help
check_rc "help" 0
COMMANDS=$(sed -n 's/^  coffer \([a-z][a-z-]*\).*/\1/p' "$OUT" | sort -u)
check "help lists commands" test -n "$COMMANDS"
cp "$OUT" "$T/help.main"

# Every command file is a command help knows.
for f in "$SRC"/agent/cmd/cmd_*.c; do
	c=$(basename "$f" .c)
	c=${c#cmd_}
	# cmd_wal_fetch.c is wal-fetch; cmd_wal.c wal-push and what the
	# family shares.
	check "agent/cmd/cmd_$c.c is a command 'coffer help' lists" grep -qxE "${c//_/-}(-[a-z]+)?" <<<"$COMMANDS"
done

# The global options: in `coffer help` and the README.
python3 "$T/options.py" "$SRC/agent/main.c" >"$T/opts.global"
check "agent/main.c has global options" test -s "$T/opts.global"
if python3 "$T/check_documented.py" "$T/opts.global" "$T/help.main" "$SRC/README.md" "" \
	>"$T/missing" 2>&1; then
	pass "every global option is in 'coffer help' and README.md"
else
	fail "every global option is in 'coffer help' and README.md" "$(cat "$T/missing")"
fi

for c in $COMMANDS; do
	cf help "$c"
	check_rc "help $c" 0
	check "help $c: nothing on stderr" test ! -s "$ERR"
	check_grep "help $c prints its usage" "$OUT" "^usage: coffer $c( |\$)"
	check_grep "help $c has an options section or says it has none" "$OUT" '^(options:|global options)'
	cp "$OUT" "$T/help.$c"
	for h in --help -h; do
		cf "$c" "$h"
		check_rc "$c $h" 0
		check "$c $h prints what 'help $c' does" cmp -s "$T/help.$c" "$OUT"
	done
	f=$SRC/agent/cmd/cmd_${c//-/_}.c
	[ -f "$f" ] || f=$SRC/agent/cmd/cmd_${c%%-*}.c
	[ -f "$f" ] || continue
	python3 "$T/options.py" "$f" >"$T/opts.$c"
	if python3 "$T/check_documented.py" "$T/opts.$c" "$T/help.$c" "$SRC/README.md" "$c" \
		>"$T/missing" 2>&1; then
		pass "every option of $c ($(wc -l <"$T/opts.$c")) is in 'coffer help $c' and README.md"
	else
		fail "every option of $c is in 'coffer help $c' and README.md" "$(cat "$T/missing")"
	fi
done

# The checker fails when an option is missing: restore's help without its
# --print-apply-order line, and a README without --to-database.
grep -v -- '--print-apply-order' "$T/help.restore" >"$T/help.cut"
sed 's/--to-database/--to-somewhere/g' "$SRC/README.md" >"$T/README.cut"
check "restore's parser has --print-apply-order" grep -q ' long print-apply-order$' "$T/opts.restore"
check_not "the check fails on a help without --print-apply-order" \
	quietly python3 "$T/check_documented.py" "$T/opts.restore" "$T/help.cut" "$SRC/README.md" restore
check_not "the check fails on a README without --to-database" \
	quietly python3 "$T/check_documented.py" "$T/opts.restore" "$T/help.restore" "$T/README.cut" restore
printf '%s\n' 'x.c long nosuch-option' >"$T/opts.fake"
check_not "the check fails on an option documented nowhere" \
	quietly python3 "$T/check_documented.py" "$T/opts.fake" "$T/help.restore" "$SRC/README.md" restore

cf help help
check_rc "help help" 0
check_grep "help help prints the usage of help" "$OUT" '^usage: coffer help'
cf help backup restore
check_rc "help with two commands" 2
cf help nope
check_rc "help of an unknown command" 2
check_one_error_line "help of an unknown command: one error line"
cf nope --help
check_rc "--help of an unknown command" 2
"$COFFER_BIN" --help restore >"$OUT" 2>"$ERR"
RC=$?
check_rc "--help before the command" 0
check "--help restore prints the help of restore" cmp -s "$T/help.restore" "$OUT"

# The global flags after the command word, up to "--".
t_config <<EOF
[source one]
type = command
command = echo one
EOF
cf backup one
check_rc "backup one" 0
cf list --json
check_rc "list --json" 0
check "list --json is JSON" quietly jq -e 'type == "array" and length == 1' "$OUT"
cf --json list
check_rc "--json list" 0
check "--json list is JSON" quietly jq -e 'type == "array" and length == 1' "$OUT"
cf show "$(last_id one)" --json
check "show ID --json is JSON" quietly jq -e '.source == "one"' "$OUT"
cf --json show "$(last_id one)"
check "--json show ID is JSON" quietly jq -e '.source == "one"' "$OUT"
cf repo cleanup --json
check_rc "repo cleanup --json" 0
check "repo cleanup --json is JSON" quietly jq -e 'type == "object"' "$OUT"
cf list --verbose
check_rc "list --verbose" 0
check_grep "list --verbose: the table" "$OUT" '^ID '
cf list -v -q
check_rc "list -v -q" 0
cf backup -- --json
check_rc "after --, --json is an argument (no source named --json)" 2
check_grep "after --: the error names the source --json" "$ERR" "no source named '--json'"

t_finish
