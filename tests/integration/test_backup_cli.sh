# test_backup_cli: the backup command line: `--stdin NAME` with SOURCE
# arguments or with the name of a configured source of another type is a
# usage error (nothing backed up); `backup --json` and `restore --json` print
# exactly one JSON document; `backup --dry-run` walks a files source as a
# backup would (same excludes) and writes nothing. Posix repositories only.
. "$(dirname "$0")/lib.sh"
t_setup backup_cli

DATA=$T/data
mkdir -p "$DATA/sub" "$DATA/skip"
printf 'hello\n' >"$DATA/a.txt"
head -c 5000 /dev/urandom >"$DATA/sub/b.bin"
printf 'excluded\n' >"$DATA/skip/c.txt"
printf 'excluded too\n' >"$DATA/sub/d.tmp"
ln -s a.txt "$DATA/link"

t_config <<EOF
[source f]
type = files
paths = $DATA
exclude = */skip, *.tmp

[source c]
type = command
command = echo hello

[source bad]
type = command
command = false
EOF

printf data >"$T/in.data"

# count_backups: how many backups the catalog lists.
count_backups() { list_json | jq length; }

# ===== --stdin and SOURCE ============================================================
cf backup f --stdin in <"$T/in.data"
check_rc "backup SRC --stdin NAME is a usage error" 2
check_grep "the error names the source and the stdin name" "$ERR" \
	"standard input as source in \(--stdin\) or backs up configured sources \(f\), not both"
check_one_error_line "one error line"
check_eq "nothing was backed up" 0 "$(count_backups)"

cf backup --stdin f <"$T/in.data"
check_rc "--stdin NAME of a configured files source is a usage error" 2
check_grep "the error says NAME is a source of another type" "$ERR" \
	"--stdin f: .* has a \[source f\] of type files"
check_eq "nothing was backed up" 0 "$(count_backups)"

cf backup --stdin in <"$T/in.data"
check_rc "--stdin NAME alone still works" 0

# ===== backup --json and restore --json ==============================================
jqe() { jq -e "$@" >/dev/null; }

cf backup --json f c
check_rc "backup --json of two sources" 0
check_eq "backup --json prints one JSON document" 1 "$(jq -s length "$OUT")"
check "it is an object with one record per backup" \
	jqe '(.backups | length) == 2 and ([.backups[].source] == ["f", "c"])' "$OUT"
FID=$(jq -r '.backups[0].id' "$OUT")
check "each record has the fields of the per-backup record" \
	jqe '.backups[0] | has("id") and has("source") and has("kind") and has("status") and
		has("objects") and has("started") and has("finished")' "$OUT"
"$COFFER_BIN" --config "$CONF" show "$FID" --json >"$T/show.json" 2>/dev/null
check_eq "a record's objects are those show lists" "$(jq -c '.objects' "$T/show.json")" \
	"$(jq -c '.backups[0].objects' "$OUT")"

"$COFFER_BIN" --config "$CONF" --json backup c bad >"$OUT" 2>"$ERR"
RC=$?
check_rc "backup --json with a failing source fails" 5
check_eq "and still prints one document" 1 "$(jq -s length "$OUT")"
check "holding the failed backup's record too" \
	jqe '[.backups[].status] == ["complete", "failed"]' "$OUT"

cf restore "$FID" --to "$T/r-json" --json
check_rc "restore --json --to DIR" 0
check_eq "restore --json prints one JSON document" 1 "$(jq -s length "$OUT")"
check "it names the backup, the target and its type" \
	jqe --arg id "$FID" --arg to "$T/r-json" \
	'.id == $id and .source == "f" and .target == $to and .target_type == "directory"' "$OUT"
check "it lists the object with its size and verified SHA-256" \
	jqe --slurpfile s "$T/show.json" '.objects | length == 1 and .[0].name == "files" and
		.[0].bytes == $s[0].objects[0].raw_bytes and .[0].sha256 == $s[0].objects[0].sha256 and
		.[0].verified == true' "$OUT"
check "and the seconds it took" jqe '(.seconds | type) == "number" and .seconds >= 0' "$OUT"
check "the files are restored" test -f "$T/r-json/${DATA#/}/a.txt"

cf restore "$FID" --to "$T/r-json-inc" --json --include "${DATA#/}/sub"
check_rc "restore --json --include" 0
check "the document lists the patterns" jqe --arg p "${DATA#/}/sub" '.include == [$p]' "$OUT"

cf restore "$FID" --stdout --json
check_rc "restore --json --stdout is a usage error" 2
check_grep "it says why" "$ERR" "--json and --stdout exclude each other"
check_eq "nothing is written to stdout" 0 "$(wc -c <"$OUT")"

# ===== backup --dry-run ==============================================================
find "$REPO" "$CATALOG" | sort >"$T/before"
P=${DATA#/}
cf backup --dry-run f
check_rc "backup --dry-run of a files source" 0
check_eq "it prints a summary: entries by type and bytes" \
	"f: would store 5 entries (2 files, 2 directories, 1 symlinks, 0 hard links, 0 other), 4.9 KiB of file data" \
	"$(cat "$OUT")"
cf --verbose backup --dry-run f
check_rc "backup --dry-run --verbose" 0
check_grep "a line per file with its size" "$OUT" "^file +5000 $P/sub/b.bin\$"
check_grep "a line per folder" "$OUT" "^directory +0 $P/sub\$"
check_grep "a line per symlink" "$OUT" "^symlink +0 $P/link\$"
check_no_grep "excluded folders are left out, as in a backup" "$OUT" "skip"
check_no_grep "excluded files are left out, as in a backup" "$OUT" "d\.tmp"
cf --json backup --dry-run f
check_rc "backup --dry-run --json" 0
check_eq "one JSON document" 1 "$(jq -s length "$OUT")"
check "with the counts and bytes of the source" jqe '.dry_run == true and
	.sources == [{"source": "f", "entries": 5, "files": 2, "directories": 2, "symlinks": 1,
	"hardlinks": 0, "other": 0, "bytes": 5006, "unreadable": 0}]' "$OUT"
find "$REPO" "$CATALOG" | sort >"$T/after"
check_same_file "a dry run writes nothing to the repository or the catalog" "$T/before" "$T/after"

# The entries a dry run names are those a backup stores.
"$COFFER_BIN" --config "$CONF" --verbose backup --dry-run f 2>/dev/null | grep -v ': would store' | awk '{print $3}' |
	sort >"$T/dry-paths"
cf backup f
check_rc "a backup of the same source" 0
"$COFFER_BIN" --config "$CONF" ls "$(last_id f)" --json 2>/dev/null |
	jq -r '.entries[].path | rtrimstr("/")' | sort >"$T/ls-paths"
check_same_file "the dry run lists what the backup stored" "$T/ls-paths" "$T/dry-paths"

cf backup --dry-run c
check_rc "backup --dry-run of a command source is a usage error" 2
check_grep "it says dry-run is for files sources" "$ERR" \
	"--dry-run is for files sources; source c is of type command"
cf backup --dry-run
check_rc "backup --dry-run without a source is a usage error" 2
cf backup --dry-run --stdin in <"$T/in.data"
check_rc "backup --dry-run --stdin is a usage error" 2

t_finish
