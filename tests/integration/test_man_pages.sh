#!/bin/bash
# test_man_pages: the man pages and the bash completion of the Debian package
# (packaging/man/*.scd, packaging/completion/coffer.bash) cover what coffer
# accepts, so a new command, option, section or key without documentation
# fails here.
#  - Both pages build with scdoc and render with man -l, width 80, without a
#    single groff warning (lintian's check, and man --warnings=w) and without
#    a line wider than 80 columns.
#  - coffer(1): every command word of 'coffer help' has a "## COMMAND"
#    subsection, every option of the usage lines and option lists of 'coffer
#    help COMMAND' has an entry there (a line starting "*--option*"), every
#    bold option there is one the command takes, and every global option has
#    an entry in GLOBAL OPTIONS.
#  - coffer.conf(5): every section and key the parser accepts has an entry
#    "*key* = ..." in its section. The lists come from coffer itself (the
#    "expected ..." of its error for an unknown section, key or source type)
#    and from the source (the strcmp() of agent/config.c, the key tables and
#    set() of agent/source/, retention_rule_keys), so a key missing from one
#    of the two is still caught; every documented key is one the parser
#    accepts there, and the configurations under EXAMPLES load.
#  - The completion passes bash -n, completes "coffer ver" to verify, offers
#    every command and every option of 'coffer help', and the source and
#    repository names of the configuration file.
# Each checker is also run on a page or script with something removed, to
# show that it fails.
. "$(dirname "$0")/lib.sh"
t_setup man_pages

SRC=$COFFER_SRC
MAN=$SRC/packaging/man
COMPLETION=$SRC/packaging/completion/coffer.bash

# check_fails_with DESC REGEX CMD...: CMD fails, and what it prints has a
# line matching the extended REGEX (so it failed for that reason).
check_fails_with() {
	local desc=$1 re=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		fail "$desc" "command unexpectedly succeeded: $*"
	elif grep -Eq -- "$re" <<<"$out"; then
		pass "$desc"
	else
		fail "$desc" "it failed, but printed no line matching /$re/:"
		printf '%s\n' "$out" | head -n 10 | sed 's/^/      | /'
	fi
}

# fail_with DESC FILE: a failure, with the first 30 lines of FILE.
fail_with() {
	local lines
	mapfile -t lines < <(head -n 30 "$2")
	fail "$1" "${lines[@]}"
}

for tool in scdoc man groff; do
	command -v "$tool" >/dev/null ||
		t_skip "$tool is not installed (Debian packages scdoc, man-db, groff-base)"
done

# --- Build and render ------------------------------------------------------

# render_ok ROFF: man -l prints no warning (lintian's command line, then all
# groff warnings) and no rendered line is wider than 80 columns; the text
# goes to ROFF.txt. Prints what is wrong.
render_ok() {
	local roff=$1 ok=0
	LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
		man --warnings -E UTF-8 -l -Tutf8 -Z "$roff" >/dev/null 2>"$roff.err1"
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l "$roff" >"$roff.txt" 2>"$roff.err2"
	if [ -s "$roff.err1" ] || [ -s "$roff.err2" ]; then
		sort -u "$roff.err1" "$roff.err2"
		ok=1
	fi
	if [ ! -s "$roff.txt" ]; then
		echo "man -l rendered nothing"
		ok=1
	fi
	python3 - "$roff.txt" <<'PY' || ok=1
import sys
bad = [(n, l) for n, l in enumerate(open(sys.argv[1], encoding="utf-8"), 1)
       if len(l.rstrip("\n")) > 80]
for n, l in bad[:10]:
    print("line %d is %d columns wide: %s" % (n, len(l.rstrip("\n")), l.strip()))
sys.exit(1 if bad else 0)
PY
	return $ok
}

for page in coffer.1 coffer.conf.5; do
	if scdoc <"$MAN/$page.scd" >"$T/$page" 2>"$T/$page.scdoc"; then
		pass "$page: scdoc builds it"
	else
		fail_with "$page: scdoc builds it" "$T/$page.scdoc"
		continue
	fi
	check "$page: scdoc printed nothing on stderr" test ! -s "$T/$page.scdoc"
	if render_ok "$T/$page" >"$T/$page.render" 2>&1; then
		pass "$page: man -l renders it at width 80 without a warning"
	else
		fail_with "$page: man -l renders it at width 80 without a warning" "$T/$page.render"
	fi
	check_grep "$page: the rendered page has its NAME" "$T/$page.txt" '^NAME$'
done

# The render check fails on a groff warning and on an overlong line.
cp "$T/coffer.1" "$T/bad-macro.1"
printf '.BADMACRO x\n' >>"$T/bad-macro.1"
check_fails_with "the render check fails on an undefined macro" "macro .BADMACRO. not defined" \
	render_ok "$T/bad-macro.1"
printf 'x(1)\n\n# NAME\n\nx - y\n\n# DESCRIPTION\n\n```\n%090d\n```\n' 0 | scdoc >"$T/wide.1"
check_fails_with "the render check fails on a line wider than 80 columns" "is [0-9]+ columns wide" \
	render_ok "$T/wide.1"

# --- coffer(1): commands and options ---------------------------------------

# The help texts the checks read: help.main, help.COMMAND.
"$COFFER_BIN" help >"$T/help.main" 2>"$ERR"
check_eq "coffer help exits 0" 0 $?
COMMANDS=$(sed -n 's/^  coffer \([a-z][a-z-]*\).*/\1/p' "$T/help.main" | sort -u)
check "coffer help lists commands" test -n "$COMMANDS"
for c in $COMMANDS; do
	"$COFFER_BIN" help "$c" >"$T/help.$c" 2>"$ERR" ||
		fail "coffer help $c exits 0" "$(cat "$ERR")"
done

# man_commands.py SCD HELPDIR OUTDIR: checks coffer(1) against the help
# texts; writes OUTDIR/opts.COMMAND (the options of each command, one a
# line), OUTDIR/sub.COMMAND (its subcommand word, if any) and
# OUTDIR/opts.global. Prints each problem; exits 1 if there is one.
cat >"$T/man_commands.py" <<'PY'
import os, re, sys
scd, helpdir, outdir = sys.argv[1:4]
OPT = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*|-[a-zA-Z])(?![\w-])")

def sections(path):
    """{heading: body text} of an scd file, '# X' and '## X' alike."""
    out, cur, literal = {}, None, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            literal = not literal
        m = None if literal else re.match(r"(#{1,2}) (.*)", line)
        if m:
            cur = m.group(2).strip()
            out[cur] = ""
        elif cur is not None:
            out[cur] += line
    return out

def level2_under(path, top):
    """The '## X' headings between '# top' and the next '# ...'."""
    heads, inside, literal = [], False, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            literal = not literal
        if literal:
            continue
        if line.startswith("# "):
            inside = line[2:].strip() == top
        elif inside and line.startswith("## "):
            heads.append(line[3:].strip())
    return heads

def items(body):
    """The options a section defines: those of its entries, a line that
    starts with a bold option ("*-i*, *--identity* _FILE_") followed by an
    indented description."""
    lines = body.split("\n")
    return set(o for line, after in zip(lines, lines[1:] + [""])
               if line.startswith("*-") and after.startswith("\t")
               for o in re.findall(r"\*(--?[a-zA-Z][a-z0-9-]*)\*", line))

def help_options(text):
    """The options of a command's help: those of its usage lines and of the
    first column of its option list, before the global options."""
    opts, sub = [], None
    for line in text.split("\n"):
        if line.startswith("global options"):
            break
        if line.startswith("usage: coffer ") or line.startswith("coffer "):
            words = line.split()
            rest = words[2:] if words[0] == "coffer" else words[3:]
            if line.startswith("usage:") and rest and re.fullmatch(r"[a-z]+", rest[0]):
                sub = rest[0]
            opts += OPT.findall(line)
        elif line.startswith("  -"):
            opts += OPT.findall(re.split(r"\s{2,}", line.strip())[0])
    return list(dict.fromkeys(opts)), sub

page = sections(scd)
problems = []
main = open(os.path.join(helpdir, "help.main"), encoding="utf-8").read()
commands = sorted(set(re.findall(r"^  coffer ([a-z][a-z-]*)", main, re.M)))
glob_text = main.split("global options", 1)[1] if "global options" in main else ""
globals_ = []
for line in glob_text.split("\n"):
    if line.startswith("  -"):
        globals_ += OPT.findall(re.split(r"\s{2,}", line.strip())[0])
if not globals_:
    problems.append("no global options found in 'coffer help'")
open(os.path.join(outdir, "opts.global"), "w").write("".join(o + "\n" for o in globals_))
gsec = page.get("GLOBAL OPTIONS")
if gsec is None:
    problems.append("no GLOBAL OPTIONS section")
else:
    for o in globals_:
        if o not in items(gsec):
            problems.append("global option %s has no entry (a line '*%s*...') in GLOBAL "
                            "OPTIONS" % (o, o))

subsections = level2_under(scd, "COMMANDS")
for h in subsections:
    if h.split()[0] not in commands:
        problems.append("'## %s' under COMMANDS is not a command of 'coffer help'" % h)
for c in commands:
    opts, sub = help_options(open(os.path.join(helpdir, "help." + c), encoding="utf-8").read())
    open(os.path.join(outdir, "opts." + c), "w").write("".join(o + "\n" for o in opts))
    open(os.path.join(outdir, "sub." + c), "w").write(sub + "\n" if sub else "")
    heads = [h for h in subsections if h == c or h.startswith(c + " ")]
    if not heads:
        problems.append("command %s has no '## %s' subsection under COMMANDS" % (c, c))
        continue
    body = "".join(page[h] for h in heads)
    for o in opts:
        if o not in items(body):
            problems.append("%s: option %s of 'coffer help %s' has no entry (a line "
                            "'*%s*...') in its subsection" % (c, o, c, o))
    for o in sorted(set(re.findall(r"\*(--?[a-zA-Z][a-z0-9-]*)\*", body))):
        if o not in opts and o not in globals_:
            problems.append("%s: the page documents %s, which 'coffer help %s' does not "
                            "list" % (c, o, c))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY

mkdir -p "$T/opts"
if python3 "$T/man_commands.py" "$MAN/coffer.1.scd" "$T" "$T/opts" >"$T/missing" 2>&1; then
	pass "coffer.1: every command ($(wc -w <<<"$COMMANDS")) and option of 'coffer help' is documented"
else
	fail_with "coffer.1: every command and option of 'coffer help' is documented" "$T/missing"
fi
check "the options of restore were read from its help" grep -qx -- '--print-apply-order' "$T/opts/opts.restore"
check "the short options too" grep -qx -- '-i' "$T/opts/opts.restore"
check "the subcommand of catalog was read from its help" grep -qx rebuild "$T/opts/sub.catalog"

# The checker fails on a page without an option, with an option the command
# does not take, and without a command.
mkdir -p "$T/neg"
grep -v -- '^\*--print-apply-order\*' "$MAN/coffer.1.scd" >"$T/neg/no-option.scd"
check_fails_with "the check fails on a page without restore --print-apply-order" \
	"^restore: option --print-apply-order .* has no entry" python3 "$T/man_commands.py" "$T/neg/no-option.scd" "$T" "$T/neg"
sed 's/^\*--stdout\*$/*--stdout*, *--nosuch-option*/' "$MAN/coffer.1.scd" >"$T/neg/extra-option.scd"
check_not "the page with an extra option differs" cmp -s "$MAN/coffer.1.scd" "$T/neg/extra-option.scd"
check_fails_with "the check fails on a page with an option restore does not take" \
	"^restore: the page documents --nosuch-option" python3 "$T/man_commands.py" "$T/neg/extra-option.scd" "$T" "$T/neg"
sed 's/^## check$/## checks-renamed/' "$MAN/coffer.1.scd" >"$T/neg/no-command.scd"
check_fails_with "the check fails on a page without '## check'" \
	"^command check has no '## check' subsection" python3 "$T/man_commands.py" "$T/neg/no-command.scd" "$T" "$T/neg"
grep -v -- '^\*--version\*' "$MAN/coffer.1.scd" >"$T/neg/no-global.scd"
check_fails_with "the check fails on a page without the global --version" \
	"^global option --version has no entry" python3 "$T/man_commands.py" "$T/neg/no-global.scd" "$T" "$T/neg"

# --- coffer.conf(5): sections and keys ---------------------------------------

# man_keys.py COFFER SRC SCD SCRATCH: checks coffer.conf(5) against the
# sections and keys coffer accepts (see the top of this file). Prints each
# problem; exits 1 if there is one.
cat >"$T/man_keys.py" <<'PY'
import glob, os, re, subprocess, sys
coffer, src, scd, scratch = sys.argv[1:5]
problems = []

def sections(path):
    out, cur, literal = {}, None, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            literal = not literal
        m = None if literal else re.match(r"(#{1,2}) (.*)", line)
        if m:
            cur = m.group(2).strip()
            out[cur] = ""
        elif cur is not None:
            out[cur] += line
    return out

def defined(body):
    """The keys a section documents: its entries, a line "*key* = ..."
    followed by an indented description."""
    lines = body.split("\n")
    return set(m.group(1) for line, after in zip(lines, lines[1:] + [""])
               for m in [re.match(r"\*([a-z0-9_]+)\* = ", line)] if m and after.startswith("\t"))

# --- What coffer says it accepts: the "(expected ...)" of its errors.
def expected(text, what):
    path = os.path.join(scratch, "probe.conf")
    with open(path, "w") as f:
        f.write("[repository]\ntype = posix\npath = %s\n%s" % (scratch, text))
    r = subprocess.run([coffer, "--config", path, "list"], capture_output=True, text=True)
    m = re.findall(r"\(expected ([^)]*)\)", r.stderr)
    if r.returncode != 2 or not m:
        problems.append("cannot read the %s from coffer's error (exit %d): %s"
                        % (what, r.returncode, r.stderr.strip()))
        return []
    return [w.strip() for w in m[-1].split(",")]

run_sections = expected("[zz_unknown_section]\n", "list of sections")
run_keys = {}
for s in run_sections:
    if s.endswith(" NAME"):
        continue
    body = "" if s == "repository" else "[%s]\n" % s
    run_keys[s] = expected(body + "zz_unknown_key = 1\n", "keys of [%s]" % s)
run_types = expected("[source zz]\n", "source types")
run_type_keys = {t: expected("[source zz]\ntype = %s\nzz_unknown_key = 1\n" % t,
                             "keys of type = %s" % t) for t in run_types}

# --- What the source accepts.
def read(path):
    text = open(path, encoding="utf-8").read()
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)

KEY = r'strcmp\(\s*(?:name|key|s->kv\[k\]\.key)\s*,\s*"([a-z0-9_]+)"\s*\)'
FUNC_SECTION = {"config_repository": "[repository]", "config_repository_s3": "[repository]",
                "config_encryption": "[encryption]", "config_compression": "[compression]",
                "config_retention_key": "[retention]", "config_build_sources": "[source NAME]"}
static = []  # (section heading or None for anywhere, key, where)
config_c = read(os.path.join(src, "agent/config.c"))
for m in re.finditer(r"^(?:static\s+)?int\s+(\w+)\s*\([^)]*\)\s*\{(.*?)^\}", config_c, re.M | re.S):
    for k in re.findall(KEY, m.group(2)):
        static.append((FUNC_SECTION.get(m.group(1)), k, "agent/config.c " + m.group(1)))
if len(static) < 20:
    problems.append("found only %d keys in agent/config.c: has its form changed?" % len(static))
static_sections = set(re.findall(r'strn?cmp\(\s*section\s*,\s*"([a-z]+) ?"', config_c))
rules = re.search(r"retention_rule_keys\s*\[[^]]*\]\s*=\s*\{(.*?)\};",
                  read(os.path.join(src, "agent/retention.c")), re.S)
if not rules:
    problems.append("retention_rule_keys not found in agent/retention.c")
else:
    static += [("[retention]", k, "retention_rule_keys") for k in re.findall(r'"([a-z0-9_]+)"', rules.group(1))]
for path in sorted(glob.glob(os.path.join(src, "agent/source/**/*.c"), recursive=True)):
    text = read(path)
    keys = re.findall(r'strcmp\(\s*key\s*,\s*"([a-z0-9_]+)"\s*\)', text)
    for table in re.finditer(r"struct\s+source_key\s+\w+\s*\[\s*\]\s*=\s*\{(.*?)\n\};", text, re.S):
        keys += re.findall(r'[{(]\s*"([a-z0-9_]+)"\s*,', table.group(1))
    types = re.findall(r'\.type\s*=\s*"([a-z0-9_-]+)"', text)
    if keys and len(types) != 1:
        problems.append("%s has config keys but not one '.type = \"...\"'" % path)
        continue
    static += [("type = " + types[0], k, os.path.relpath(path, src)) for k in keys]

# --- The page.
page = sections(scd)
for s in run_sections:
    if "[%s]" % s not in page:
        problems.append("section [%s] has no '## [%s]' heading" % (s, s))
for s in static_sections:
    if not any(h.startswith("[" + s) for h in page):
        problems.append("section '%s' (agent/config.c) has no '## [%s...' heading" % (s, s))
for s, keys in run_keys.items():
    body = page.get("[%s]" % s, "")
    for k in keys:
        if k not in defined(body):
            problems.append("[%s] %s (coffer's error message) has no '*%s* = ' entry in "
                            "'## [%s]'" % (s, k, k, s))
for t in run_types:
    if "type = " + t not in page:
        problems.append("source type %s has no '## type = %s' heading" % (t, t))
    for k in run_type_keys[t]:
        if k not in defined(page.get("type = " + t, "")):
            problems.append("type = %s: %s (coffer's error message) has no '*%s* = ' entry "
                            "in '## type = %s'" % (t, k, k, t))
everywhere = set().union(*(defined(b) for b in page.values()))
for where, k, origin in static:
    if where is None:
        if k not in everywhere:
            problems.append("%s (%s) has no '*%s* = ' entry anywhere" % (k, origin, k))
    elif k not in defined(page.get(where, "")):
        problems.append("%s (%s) has no '*%s* = ' entry in '## %s'" % (k, origin, k, where))

# Every entry is a key the parser takes in that section.
accepted = {}
for s, keys in run_keys.items():
    accepted.setdefault("[%s]" % s, set()).update(keys)
for t, keys in run_type_keys.items():
    accepted.setdefault("type = " + t, set()).update(keys)
for where, k, _ in static:
    if where:
        accepted.setdefault(where, set()).add(k)
for h, body in page.items():
    for k in sorted(defined(body)):
        if k not in accepted.get(h, set()):
            problems.append("'## %s' documents %s, which the parser does not take there" % (h, k))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY

if python3 "$T/man_keys.py" "$COFFER_BIN" "$SRC" "$MAN/coffer.conf.5.scd" "$T" >"$T/missing" 2>&1; then
	pass "coffer.conf.5: every section and key the parser accepts is documented"
else
	fail_with "coffer.conf.5: every section and key the parser accepts is documented" "$T/missing"
fi

# The checker fails on a page without a key that only the source shows (not
# coffer's error message), without a key of a source type, and with a key
# the parser does not take.
grep -v '^\*sts_endpoint\* = ' "$MAN/coffer.conf.5.scd" >"$T/neg/no-static-key.scd"
check_fails_with "the check fails on a page without sts_endpoint" \
	"^sts_endpoint \(agent/config.c config_repository_s3\) has no" python3 "$T/man_keys.py" "$COFFER_BIN" "$SRC" "$T/neg/no-static-key.scd" "$T/neg"
grep -v '^\*busy_timeout\* = ' "$MAN/coffer.conf.5.scd" >"$T/neg/no-type-key.scd"
check_fails_with "the check fails on a page without sqlite's busy_timeout" \
	"^type = sqlite: busy_timeout \(coffer's error message\) has no" python3 "$T/man_keys.py" "$COFFER_BIN" "$SRC" "$T/neg/no-type-key.scd" "$T/neg"
sed 's/^\*metrics_file\* = _PATH_$/*metrics_dir* = _PATH_/' "$MAN/coffer.conf.5.scd" >"$T/neg/extra-key.scd"
check_not "the page with a renamed key differs" cmp -s "$MAN/coffer.conf.5.scd" "$T/neg/extra-key.scd"
check_fails_with "the check fails on a page with a key [catalog] does not take" \
	"documents metrics_dir, which the parser does not take there" python3 "$T/man_keys.py" "$COFFER_BIN" "$SRC" "$T/neg/extra-key.scd" "$T/neg"
sed 's/^## type = mongodb$/## type = mongo/' "$MAN/coffer.conf.5.scd" >"$T/neg/no-type.scd"
check_fails_with "the check fails on a page without '## type = mongodb'" \
	"^source type mongodb has no '## type = mongodb' heading" python3 "$T/man_keys.py" "$COFFER_BIN" "$SRC" "$T/neg/no-type.scd" "$T/neg"

# The configurations under EXAMPLES load: coffer status reads them (exit 0
# or 11, never 2), with a real recipient and a catalog in the scratch folder.
python3 - "$MAN/coffer.conf.5.scd" "$T" <<'PY' >"$T/examples"
import re, sys
scd, out = sys.argv[1:3]
text = open(scd, encoding="utf-8").read()
examples = text.split("\n# EXAMPLES\n", 1)[1].split("\n# ", 1)[0]
for i, block in enumerate(re.findall(r"^```\n(.*?)^```", examples, re.M | re.S)):
    if "[repository]" in block:
        path = "%s/example%d.conf" % (out, i)
        open(path, "w").write(re.sub(r"\\(.)", r"\1", block))
        print(path)
PY
check "coffer.conf.5 has example configurations" test -s "$T/examples"
while read -r ex; do
	sed -i "s|age1\.\.\.|$RECIPIENT|" "$ex"
	grep -q '^\[catalog\]' "$ex" || printf '\n[catalog]\npath = %s.catalog\n' "$ex" >>"$ex"
	cf_conf "$ex" status
	check_rc "the example $(basename "$ex") of coffer.conf.5 loads" 0 11
done <"$T/examples"

# --- Bash completion ---------------------------------------------------------

check "coffer.bash: bash -n" bash -n "$COMPLETION"

# complete.sh FILE WORDS...: sources FILE and prints, one a line, what _coffer
# offers for the command line WORDS (the last one is being completed).
cat >"$T/complete.sh" <<'SH'
. "$1" || exit 1
shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_coffer coffer "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
SH
complete_words() { bash "$T/complete.sh" "$@" 2>&1; }

check_eq "coffer ver<TAB> completes to verify" "verify" "$(complete_words "$COMPLETION" coffer ver)"

# completion_covers FILE: prints every command and option of 'coffer help'
# that FILE's completion does not offer; fails if there is one.
completion_covers() {
	local file=$1 c o sub missing=0 words
	words=$(complete_words "$file" coffer '')
	for c in $COMMANDS; do
		grep -qx -- "$c" <<<"$words" || { echo "coffer <TAB> does not offer $c"; missing=1; }
	done
	words=$(complete_words "$file" coffer -)
	while read -r o; do
		grep -qx -- "$o" <<<"$words" || { echo "coffer -<TAB> does not offer $o"; missing=1; }
	done <"$T/opts/opts.global"
	for c in $COMMANDS; do
		sub=$(cat "$T/opts/sub.$c")
		if [ -n "$sub" ]; then
			words=$(complete_words "$file" coffer "$c" '')
			grep -qx -- "$sub" <<<"$words" ||
				{ echo "coffer $c <TAB> does not offer $sub"; missing=1; }
		fi
		words=$(complete_words "$file" coffer "$c" ${sub:+"$sub"} -)
		while read -r o; do
			grep -qx -- "$o" <<<"$words" ||
				{ echo "coffer $c ${sub:+$sub }-<TAB> does not offer $o"; missing=1; }
		done <"$T/opts/opts.$c"
	done
	return $missing
}
if completion_covers "$COMPLETION" >"$T/missing"; then
	pass "the completion offers every command and option of 'coffer help'"
else
	fail_with "the completion offers every command and option of 'coffer help'" "$T/missing"
fi
sed 's/ --print-apply-order//' "$COMPLETION" >"$T/neg/coffer.bash"
check_not "the completion without --print-apply-order differs" cmp -s "$COMPLETION" "$T/neg/coffer.bash"
check_fails_with "the check fails on a completion without restore --print-apply-order" \
	"^coffer restore -<TAB> does not offer --print-apply-order" completion_covers "$T/neg/coffer.bash"

# Names from the configuration: --config, then $COFFER_CONFIG.
cat >"$T/names.conf" <<'EOF'
[repository]
path = /srv/repo
[source etc]
  [ source  pg-main ]   ; blanks and a comment
;[source commented-out]
[repository eu.dr]
EOF
check_eq "backup <TAB>: the sources of --config FILE" "etc pg-main" \
	"$(complete_words "$COMPLETION" coffer --config "$T/names.conf" backup '' | xargs)"
check_eq "--config=FILE works too" "pg-main" \
	"$(complete_words "$COMPLETION" coffer --config = "$T/names.conf" status p | xargs)"
check_eq "prune --target <TAB>: the repositories of \$COFFER_CONFIG" "primary eu.dr" \
	"$(COFFER_CONFIG=$T/names.conf complete_words "$COMPLETION" coffer prune --target '' | xargs)"
check_eq "restore --source <TAB>: the sources" "etc pg-main" \
	"$(COFFER_CONFIG=$T/names.conf complete_words "$COMPLETION" coffer restore latest --source '' | xargs)"
check_eq "an unreadable configuration: no names, no error" "" \
	"$(COFFER_CONFIG=$T/nonexistent.conf complete_words "$COMPLETION" coffer backup '')"
check_eq "list --status <TAB>" "running complete failed partial" \
	"$(complete_words "$COMPLETION" coffer list --status '' | xargs)"
touch "$T/identity-file.txt"
check_eq "restore -i <TAB>: files" "$T/identity-file.txt" \
	"$(complete_words "$COMPLETION" coffer restore latest -i "$T/identity-fi")"

t_finish
