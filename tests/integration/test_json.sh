# test_json: with --json every command that has output prints exactly one
# JSON document on stdout (docs/json.md), valid under its JSON Schema in
# docs/schema/COMMAND.json (checked with python3-jsonschema). Each schema
# there must be one this test knows how to produce output for, and each
# command here is checked for "one document" even before its schema exists.
# Errors under --json leave stdout empty and print one line on stderr.
. "$(dirname "$0")/lib.sh"
t_setup json
python3 -c 'import jsonschema' 2>/dev/null ||
	t_skip "python3-jsonschema is not installed (packaging/install-deps.sh --test)"

SCHEMAS=$COFFER_SRC/docs/schema

# validate.py SCHEMA-DIR NAME FILE: FILE holds exactly one JSON document (and
# a newline), valid under SCHEMA-DIR/NAME.json when that exists; "-" as NAME
# checks only that it is one document. Schemas refer to each other by file
# name ("$ref": "record.json"), resolved among the files of SCHEMA-DIR.
cat >"$T/validate.py" <<'PY'
import glob, json, os, sys
import jsonschema
schema_dir, name, path = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
try:
    doc, end = json.JSONDecoder().raw_decode(text)
except ValueError as e:
    sys.exit("not JSON: %s; output starts %r" % (e, text[:200]))
if text[end:] != "\n":
    sys.exit("not exactly one document and a newline: after it comes %r" % text[end:end + 200])
if not isinstance(doc, (dict, list)):
    sys.exit("the document is a %s, not an object or array" % type(doc).__name__)
if name == "-":
    sys.exit(0)
schemas = {}
for f in glob.glob(os.path.join(schema_dir, "*.json")):
    s = json.load(open(f, encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(s)
    schemas[os.path.basename(f)] = s
schema = schemas[name + ".json"]
cls = jsonschema.Draft202012Validator
try:
    from referencing import Registry, Resource
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values())
    v = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
except ImportError:  # jsonschema < 4.18 (Debian 12)
    store = {s["$id"]: s for s in schemas.values()}
    v = cls(schema, resolver=jsonschema.RefResolver.from_schema(schema, store=store),
            format_checker=cls.FORMAT_CHECKER)
errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors[:10]:
    print("at /%s: %s" % ("/".join(map(str, e.absolute_path)), e.message))
sys.exit(1 if errors else 0)
PY

# Schemas that are parts of others, not a command's document.
PARTS=" record "
# The schemas this test produces output for (one or more runs each).
KNOWN=" keygen catalog-rebuild repo-cleanup list show backup restore ls replicate prune verify drill status check "
VALIDATED=" "

# check_doc NAME DESC: the last cf succeeded and its stdout is one document
# valid under NAME's schema (or just one document if there is none yet).
check_doc() {
	local name=$1 desc=$2 schema=$1
	if [ "$RC" != 0 ]; then
		fail "$desc" "exit status $RC"
		t_dump_last
		return
	fi
	[ -f "$SCHEMAS/$name.json" ] || schema=-
	if python3 "$T/validate.py" "$SCHEMAS" "$schema" "$OUT" >"$T/why" 2>&1; then
		if [ "$schema" = - ]; then
			pass "$desc: one JSON document (no docs/schema/$name.json yet)"
		else
			pass "$desc: one JSON document valid under docs/schema/$name.json"
			VALIDATED="$VALIDATED$name "
		fi
	else
		fail "$desc" "$(cat "$T/why")"
	fi
}

# Every schema is a command's document this test knows, or a part.
for f in "$SCHEMAS"/*.json; do
	n=$(basename "$f" .json)
	case "$PARTS$KNOWN" in
	*" $n "*) pass "docs/schema/$n.json is a schema this test checks" ;;
	*) fail "docs/schema/$n.json is a schema this test checks" "add a run of its command to test_json.sh" ;;
	esac
done

mkdir -p "$T/files/sub"
printf 'hello\n' >"$T/files/a.txt"
printf 'world\n' >"$T/files/sub/b.txt"
t_config <<EOF
[source one]
type = command
command = echo one

[source two]
type = command
command = seq 1 1000

[source tree]
type = files
paths = $T/files
EOF

# --- keygen -----------------------------------------------------------------------
cf keygen --json
check_doc keygen "keygen --json (identity on stdout)"
check "keygen --json: the identity decrypts what age encrypts to the recipient" \
	sh -c 'jq -r .identity "$1" >"$2/k.txt" && echo secret | age -r "$(jq -r .recipient "$1")" |
		age -d -i "$2/k.txt" | grep -qx secret' sh "$OUT" "$T"
cf --json keygen -o "$T/new.key"
check_doc keygen "--json keygen -o FILE"
check_eq "keygen -o FILE --json names the file" "$T/new.key" "$(jq -r .file "$OUT")"
check_eq "keygen -o FILE --json: no identity in the output" null "$(jq .identity "$OUT")"
check_eq "keygen -o FILE --json: the recipient is the file's" \
	"$(sed -n 's/^# public key: //p' "$T/new.key")" "$(jq -r .recipient "$OUT")"
cf keygen -o "$T/new.key" --json
check_rc "keygen -o an existing file --json fails" 9
check_eq "keygen refusing under --json: nothing on stdout" 0 "$(wc -c <"$OUT")"
check_one_error_line "keygen refusing under --json: one error line"
cf keygen --signing --json
check_doc keygen "keygen --signing --json"
check "keygen --signing --json: the public key only" jq -e '.signing_key | startswith("ed25519:")' "$OUT"
check_no_grep "keygen --signing --json: no secret" "$OUT" 'secret|private'

# --- backup ------------------------------------------------------------------------
cf backup one --json
check_doc backup "backup one --json"
cf backup one two --json
check_doc backup "backup one two --json (two sources, one document)"
cf --json backup tree
check_doc backup "--json backup tree"
cf list --json
check_doc list "list --json"
check_eq "list --json: four backups" 4 "$(jq length "$OUT")"
ID=$(last_id tree)
TWO=$(last_id two)

# --- list, show ---------------------------------------------------------------------
cf list --source nosuch --json
check_doc list "list --json with nothing to list"
cf --json list --source one
check_doc list "--json list --source one"
cf show "$ID" --json
check_doc show "show ID --json"
cf --json show "$TWO"
check_doc show "--json show ID"
cf show 20200101T000000.000Z-00000000 --json
check_rc "show of an unknown id under --json" 3
check_eq "show of an unknown id under --json: nothing on stdout" 0 "$(wc -c <"$OUT")"
check_one_error_line "show of an unknown id under --json: one error line"

# --- restore, ls (when they print JSON) ------------------------------------------------
cf restore "$ID" --to "$T/restored" --json
check_doc restore "restore ID --to DIR --json"
# Standard output holds the data there: no room for a document.
cf restore "$TWO" --stdout --json
check_rc "restore --stdout --json is a usage error" 2
check_eq "restore --stdout --json: nothing on stdout" 0 "$(wc -c <"$OUT")"
check_one_error_line "restore --stdout --json: one error line"
if grep -q '"ls"' "$COFFER_SRC/agent/main.c"; then
	cf ls "$ID" --json
	check_doc ls "ls ID --json"
fi

# --- catalog rebuild, repo cleanup --------------------------------------------------------
cf catalog rebuild --json
check_doc catalog-rebuild "catalog rebuild --json"
check_eq "catalog rebuild --json: recorded the four backups" 4 "$(jq .recorded "$OUT")"
check_eq "catalog rebuild --json: the repository" "$REPO" "$(jq -r .repository "$OUT" | sed 's,^posix:,,')"
mkdir -p "$REPO/one/20200101T000000.000Z-0badf00d"
echo leftover >"$REPO/one/20200101T000000.000Z-0badf00d/stream.zst.age"
cf --json repo cleanup --older-than 0
check_doc repo-cleanup "--json repo cleanup --older-than 0"
check_eq "repo cleanup --json: one incomplete backup removed" 1 "$(jq .incomplete_backups "$OUT")"

# replicate: a second repository added to the configuration; --all copies
# every backup into it.
mkdir -p "$T/second"
printf '\n[repository second]\npath = %s\n' "$T/second" >>"$CONF"
cf --json replicate --all
check_doc replicate "--json replicate --all"
check_eq "replicate --json: a copy per complete backup" "$(list_json | jq '[.[] | select(.status == "complete")] | length')" "$(jq .copied "$OUT")"

# prune --dry-run: a policy in [retention].
printf '\n[retention]\nkeep_last = 1\n' >>"$CONF"
cf --json prune --dry-run
check_doc prune "--json prune --dry-run"
check_eq "prune --json: it plans per repository" "primary second" \
	"$(jq -r '[.plans[].repository] | unique | join(" ")' "$OUT")"

cf --json verify --all
check_doc verify "--json verify --all"
check_eq "verify --json: every copy ok" 0 "$(jq .failed "$OUT")"

# A drill needs no server for SQLite: the report, and the record holding it.
sqlite3 "$T/lite.db" 'CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);'
printf '\n[source lite]\ntype = sqlite\npath = %s\nrto_target = 1h\n' "$T/lite.db" >>"$CONF"
cf backup lite
cf --json verify --drill --latest --source lite
check_doc drill "--json verify --drill --latest"
check_eq "verify --drill --json: 3 rows in table t" 3 "$(jq '.drills[0].databases[].tables.t' "$OUT")"
cf --json show "$(jq -r '.drills[0].id' "$OUT")"
check_doc show "--json show of a drilled backup"
check_eq "show --json: the drill report" true "$(jq '.drill.ok and .drill.rto_ok' "$OUT")"
cf --json verify --latest --source lite
cf --json check lite
check_doc check "--json check of a sqlite source"
check_eq "check --json: ok, the source reached" "true ok" "$(jq -r '[.ok, (.checks[] | select(.check == "source") | .result)] | join(" ")' "$OUT")"
cf --json status lite
check_doc status "--json status of a verified and drilled source"
check_eq "status --json: healthy, with its drill" true "$(jq '.healthy and .sources[0].drill.ok' "$OUT")"

# Every schema of a command was used on real output.
for f in "$SCHEMAS"/*.json; do
	n=$(basename "$f" .json)
	case "$PARTS" in *" $n "*) continue ;; esac
	case "$VALIDATED" in
	*" $n "*) pass "docs/schema/$n.json validated real output" ;;
	*) fail "docs/schema/$n.json validated real output" "no run of its command passed" ;;
	esac
done

t_finish
