#!/bin/bash
# The configuration file through the real coffer: each INI mistake that used
# to change what is backed up without a word (a duplicated section backing up
# /tmp, a long line split in two, an indented key taken as a continuation, a
# ';' inside quotes cutting a command) is now one error line naming FILE:LINE
# with exit 2, or does what the line says. Relative paths are taken from the
# configuration file's folder, whatever the working directory.
. "$(dirname "$0")/lib.sh"
t_setup config_file

mkdir -p "$REPO" "$T/a" "$T/b"
echo a >"$T/a/f"
echo b >"$T/b/f"

# (1) A duplicated section: before, the last won and coffer backed up the
# other folder with exit 0; now an error naming both lines.
t_config <<EOF
[source s]
type = files
paths = $T/a

[source s]
type = files
paths = $T/b
EOF
cf backup s
check_rc "a duplicated [source s] is refused" 2
check_one_error_line "duplicate section: one error line"
check_grep "the error names the second line and the first" "$ERR" "coffer.conf:20: \[source s\] again \(first at line 16\)"
check_eq "nothing was backed up" "" "$(ls "$REPO")"

# (2) A duplicated key.
t_config <<EOF
[source s]
type = files
paths = $T/a
paths = $T/b
EOF
cf backup s
check_rc "a key given twice is refused" 2
check_grep "the error names both lines" "$ERR" "coffer.conf:19: paths is set again in \[source s\] \(first at line 18\)"

# (3) An indented key is a key, not a continuation of the one before.
t_config <<EOF
[source s]
type = files
paths = $T/a, $T/b
    exclude = */f
EOF
cf backup s --json
check_rc "indented exclude: backup" 0
cf restore "$(jq -r '.backups[0].id' "$OUT")" --to "$T/r3"
check_rc "indented exclude: restore" 0
check_eq "the indented exclude applied (no file restored)" "" "$(find "$T/r3" -type f)"

# (4) A line far over 200 characters: three recipients and a comment.
R=$RECIPIENT
{
	printf '[repository]\ntype = posix\npath = %s\n[catalog]\npath = %s\n' "$REPO" "$CATALOG"
	printf '[encryption]\nidentity = %s\nrecipients = %s, %s, %s ; three times the same\n' "$KEY" "$R" "$R" "$R"
	printf '[source c]\ntype = command\ncommand = sh -c "printf %%s \\"a ; b\\"" ; a comment\n'
} >"$CONF"
check_eq "the recipients line is over 200 characters" 1 "$([ "$(sed -n 8p "$CONF" | wc -c)" -gt 200 ] && echo 1)"
cf backup c --json
check_rc "a long line and a quoted ';' load" 0
cf restore "$(jq -r '.backups[0].id' "$OUT")" --stdout
check_eq "the ';' inside quotes stayed in the command" "a ; b" "$(cat "$OUT")"

# (5) A header without its ']' is reported on its own line.
printf '[repository\ntype = posix\npath = %s\n' "$REPO" >"$T/nobracket.conf"
cf_conf "$T/nobracket.conf" list
check_rc "[repository without ] is refused" 2
check_grep "the error names line 1 and the missing ]" "$ERR" "nobracket.conf:1: section header '\[repository' has no closing '\]'"

# (6) --config naming a folder, and an empty configuration.
cf_conf "$T" list
check_rc "--config FOLDER is refused" 2
check_grep "the error says it is a folder" "$ERR" "is a folder, not a configuration file"
: >"$T/empty.conf"
cf_conf "$T/empty.conf" list
check_rc "an empty configuration is refused" 2
check_grep "the error says what is missing" "$ERR" "no \[repository\] section"
check_absent "no catalog was created for it" /var/lib/coffer/catalog.config-file-test

# (7) Relative paths are taken from the configuration file's folder.
mkdir -p "$T/conf.d/repo" "$T/elsewhere"
cp "$KEY" "$T/conf.d/key.txt"
printf '[repository]\npath = repo\n[catalog]\npath = cat\n[encryption]\nrecipients = %s\nidentity = key.txt\n' "$R" >"$T/conf.d/coffer.conf"
(cd "$T/elsewhere" && echo hello | "$COFFER_BIN" --config ../conf.d/coffer.conf backup --stdin in >"$OUT" 2>"$ERR")
check_eq "a backup with relative paths, run from another folder" 0 "$?"
check_eq "the repository is beside the configuration" 1 "$(find "$T/conf.d/repo" -name manifest.json | wc -l)"
check_absent "nothing in the working directory" "$T/elsewhere/repo"
(cd / && "$COFFER_BIN" --config "$T/conf.d/coffer.conf" restore latest --stdout >"$OUT" 2>"$ERR")
check_eq "restore from / finds the identity beside the configuration" hello "$(cat "$OUT")"

t_finish
