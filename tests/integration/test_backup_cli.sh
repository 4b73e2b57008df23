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

t_finish
