# test_restore_select: choosing what a restore writes and listing a backup:
# `restore --object NAME` restores that object only (and the errors name the
# backup's objects), `restore` with no target or two targets says which,
# `--to FILE` makes its missing parent folders, `restore --include PATTERN`
# extracts only the matching entries of a tar object (and a pattern that
# matches nothing fails, leaving nothing), and `coffer ls` lists a tar
# backup's entries (plain and --json). Posix repositories only.
. "$(dirname "$0")/lib.sh"
t_setup restore_select

DATA=$T/data
mkdir -p "$DATA/etc/app" "$DATA/var/log" "$DATA/home/u"
printf 'one\n' >"$DATA/etc/hosts"
printf 'two\n' >"$DATA/etc/app/app.conf"
printf 'three\n' >"$DATA/etc/app/extra.conf"
head -c 70000 /dev/urandom >"$DATA/var/log/big.log"
printf 'four\n' >"$DATA/home/u/notes.txt"
ln -s ../hosts "$DATA/etc/app/hosts-link"

t_config <<EOF
[source f]
type = files
paths = $DATA

[source c]
type = command
command = echo hello from the command
EOF

cf backup f c
check_rc "backup of a files and a command source" 0
FID=$(last_id f)
CID=$(last_id c)
# Stored paths are the absolute paths without their leading '/'.
P=${DATA#/}

# ===== restore --object ==============================================================
# A backup with two objects: the files backup's manifest given the command
# backup's object as a second one, read through a fresh catalog (the edited
# manifest is unsigned, so --trust-unsigned).
cp "$REPO/c/$CID/stdout.zst.age" "$REPO/f/$FID/stdout.zst.age"
jq --argjson o "$(jq --arg k "f/$FID/stdout.zst.age" '.objects[0] | .key = $k' \
	"$REPO/c/$CID/manifest.json")" 'del(.signature) | .objects += [$o]' \
	"$REPO/f/$FID/manifest.json" >"$T/two.json"
mkdir -p "$T/two"
REPO2=$T/two/repo
cp -a "$REPO" "$REPO2"
cp "$T/two.json" "$REPO2/f/$FID/manifest.json"
sed -e "s#^path = $REPO\$#path = $REPO2#" -e "s#^path = $CATALOG\$#path = $T/two/catalog#" \
	"$CONF" >"$T/two.conf"
cf_conf "$T/two.conf" catalog rebuild --trust-unsigned
check_rc "a catalog of the two-object backup" 0

cf_conf "$T/two.conf" restore "$FID" --to "$T/obj-all" --trust-unsigned
check_rc "restore --to DIR of the two-object backup" 0
check "without --object both objects are restored (stdout)" test -f "$T/obj-all/stdout"
check "without --object both objects are restored (files)" test -f "$T/obj-all/$P/etc/hosts"

cf_conf "$T/two.conf" restore "$FID" --to "$T/obj-one" --object stdout --trust-unsigned
check_rc "restore --to DIR --object stdout" 0
check_eq "--object stdout restores only that object" "stdout" "$(ls -A "$T/obj-one")"
check_eq "and its content" "hello from the command" "$(cat "$T/obj-one/stdout")"

cf_conf "$T/two.conf" restore "$FID" --to "$T/obj-files" --object files --trust-unsigned
check_rc "restore --to DIR --object files" 0
check_absent "--object files leaves out the stdout object" "$T/obj-files/stdout"
check_same_file "--object files restores the tar" "$DATA/etc/hosts" "$T/obj-files/$P/etc/hosts"

cf_conf "$T/two.conf" restore "$FID" --to "$T/obj-bad" --object nope --trust-unsigned
check_rc "an unknown --object is not found" 3
check_grep "the error names the objects there are" "$ERR" \
	"no object named nope \(it has files and stdout\)"
check_absent "nothing is restored for an unknown --object" "$T/obj-bad"

cf_conf "$T/two.conf" restore "$FID" --stdout --trust-unsigned
check_rc "--stdout of a two-object backup needs --object" 2
check_grep "the error lists the object names" "$ERR" \
	"has 2 objects \(files and stdout\); choose one with --object NAME"

# ===== the target ====================================================================
cf restore "$CID"
check_rc "restore with no target is a usage error" 2
check_grep "it says which options give a target" "$ERR" \
	"restore needs a target: --to DIR \(or FILE\), --stdout or --to-database"
cf restore "$CID" --to "$T/x" --stdout
check_rc "restore with --to and --stdout is a usage error" 2
check_grep "it names both" "$ERR" "--to and --stdout exclude each other"
check_absent "and restores nothing" "$T/x"

# ===== restore --include =============================================================
cf restore "$FID" --to "$T/inc-dir" --include "$P/etc/app"
check_rc "restore --include FOLDER" 0
check_same_file "a folder pattern restores what is below it" "$DATA/etc/app/app.conf" \
	"$T/inc-dir/$P/etc/app/app.conf"
check "and its symlink" test -L "$T/inc-dir/$P/etc/app/hosts-link"
check_absent "--include leaves out a sibling file" "$T/inc-dir/$P/etc/hosts"
check_absent "--include leaves out other folders" "$T/inc-dir/$P/var"

cf restore "$FID" --to "$T/inc-glob" --include '*.conf'
check_rc "restore --include '*.conf'" 0
check_eq "'*' matches across folders, as in tar" "app.conf extra.conf" \
	"$(cd "$T/inc-glob" && find . -type f -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"

cf restore "$FID" --to "$T/inc-two" --include "/$P/etc/hosts" --include "$P/home/"
check_rc "two --include, one with a leading and one with a trailing '/'" 0
check_same_file "the first pattern's file" "$DATA/etc/hosts" "$T/inc-two/$P/etc/hosts"
check_same_file "the second pattern's folder" "$DATA/home/u/notes.txt" "$T/inc-two/$P/home/u/notes.txt"
check_eq "and nothing else" 2 "$(find "$T/inc-two" -type f | wc -l)"

cf restore "$FID" --to "$T/inc-none" --include "$P/etc/hosts" --include 'no/such/*'
check_rc "an --include that matches nothing fails as not found" 3
check_grep "the error names the pattern" "$ERR" "--include 'no/such/\*' matched nothing"
check_one_error_line "one error line"
check_absent "nothing looks restored" "$T/inc-none"
check_empty_output "no temporary folder is left" find "$T" -maxdepth 1 -name '.inc-none.coffer-restore.*'

cf restore "$FID" --stdout --include "$P/etc"
check_rc "--include with --stdout is a usage error" 2
cf restore "$CID" --to "$T/inc-cmd" --include stdout
check_rc "--include on a command backup is a usage error" 2
check_grep "it says --include is for tar objects" "$ERR" "--include chooses entries of tar objects"
check_absent "and restores nothing" "$T/inc-cmd"

# ===== coffer ls =====================================================================
jqe() { jq -e "$@" >/dev/null; }
age -d -i "$KEY" "$REPO/f/$FID/files.tar.zst.age" | zstd -d -q | tar -tf - 2>/dev/null >"$T/tar-t"
cf ls "$FID" --json
check_rc "ls --json of a files backup" 0
check "ls --json prints one JSON object with the id and the source" jqe \
	--arg id "$FID" '.id == $id and .source == "f" and (.entries | type) == "array"' "$OUT"
check_eq "ls --json prints one document" 1 "$(jq -s length "$OUT")"
jq -r '.entries[].path' "$OUT" >"$T/ls-paths"
check_same_file "ls lists the entries tar -t lists, in order" "$T/tar-t" "$T/ls-paths"
check_eq "an entry: path, type, size, mode" \
	"file 70000 $(printf '%04o' "0$(stat -c %a "$DATA/var/log/big.log")")" \
	"$(jq -r --arg p "$P/var/log/big.log" '.entries[] | select(.path == $p) |
		"\(.type) \(.size) \(.mode)"' "$OUT")"
check_eq "an entry's mtime (UTC, ISO 8601)" \
	"$(date -u -d "@$(stat -c %Y "$DATA/etc/hosts")" +%Y-%m-%dT%H:%M:%S)" \
	"$(jq -r --arg p "$P/etc/hosts" '.entries[] | select(.path == $p) | .mtime[0:19]' "$OUT")"
check_eq "a symlink's type and target" "symlink ../hosts" \
	"$(jq -r --arg p "$P/etc/app/hosts-link" '.entries[] | select(.path == $p) |
		"\(.type) \(.link)"' "$OUT")"
check_eq "a folder's type" "directory" \
	"$(jq -r --arg p "$P/etc/app/" '.entries[] | select(.path == $p) | .type' "$OUT")"

"$COFFER_BIN" --config "$CONF" --json ls "$FID" >"$T/ls-global.json" 2>"$ERR"
check_same_file "--json before the command is the same" "$OUT" "$T/ls-global.json"

cf ls "$FID"
check_rc "ls of a files backup" 0
check_eq "ls prints one line per entry" "$(wc -l <"$T/tar-t")" "$(wc -l <"$OUT")"
check_grep "a file's line: mode, owner, size, date, path" "$OUT" \
	"^-rw-r--r-- [^ ]+/[^ ]+ +4 [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} $P/etc/hosts\$"
check_grep "a symlink's line shows its target" "$OUT" "^l[rwx-]{9} .* $P/etc/app/hosts-link -> ../hosts\$"
check_grep "a folder's line" "$OUT" "^d[rwx-]{9} .* $P/etc/app/\$"

cf ls "$FID" "$P/etc/app" "/$P/home"
check_rc "ls with two PATHs" 0
check_eq "ls PATH lists the entries at and below those paths" \
	"$(grep -E "^$P/(etc/app|home)(/|\$)" "$T/tar-t")" "$(awk '{print $6}' "$OUT")"
cf ls "$FID" "$P/etc/hosts" "$P/nope"
check_rc "ls of a PATH that is not in the backup is not found" 3
check_grep "the error names the path" "$ERR" "$P/nope is not in backup $FID"

cf ls latest --source f --json
check_rc "ls latest --source f" 0
check "lists the newest backup of source f" jqe --arg id "$FID" '.id == $id' "$OUT"

# The child reports which PATHs matched through a pipe, which bounds them.
mapfile -t MANY < <(seq 1 40000)
cf ls "$FID" "${MANY[@]}"
check_rc "ls with 40000 PATHs is a usage error" 2
check_grep "saying there are too many" "$ERR" "too many paths or patterns"

cf ls "$CID"
check_rc "ls of a command backup is a usage error" 2
check_grep "the error says ls lists tar backups" "$ERR" "ls lists tar backups .* is a command backup"
check_one_error_line "one error line"

cf_conf "$T/two.conf" ls "$FID" --trust-unsigned --json
check_rc "ls of a backup with a tar and a raw object" 0
check_eq "lists the tar object's entries" "$(wc -l <"$T/tar-t")" "$(jq '.entries | length' "$OUT")"

mkdir -p "$T/otherkey"
"$COFFER_BIN" keygen -o "$T/otherkey/key.txt" >/dev/null 2>&1
cf ls "$FID" --identity "$T/otherkey/key.txt"
check_rc "ls with an identity that does not match is a key error" 4

# ===== a database client's error is printed once =====================================
# A postgres backup made from the command backup's object (kind and object
# metadata edited, so --trust-unsigned), restored through fake clients: psql
# says the target is empty, pg_restore fails with an error line on stderr.
mkdir -p "$T/pg/bin" "$T/pg/repo/c/$CID"
printf '#!/bin/sh\necho 0\n' >"$T/pg/bin/psql"
printf '#!/bin/sh\ncat >/dev/null\necho "pg_restore: error: database \\"nope\\" does not exist" >&2\nexit 1\n' \
	>"$T/pg/bin/pg_restore"
chmod +x "$T/pg/bin/psql" "$T/pg/bin/pg_restore"
cp "$REPO/c/$CID/stdout.zst.age" "$T/pg/repo/c/$CID/"
jq 'del(.signature) | .kind = "postgres" | .objects[0].meta = {"role": "database", "database": "app"}' \
	"$REPO/c/$CID/manifest.json" >"$T/pg/repo/c/$CID/manifest.json"
sed -e "s#^path = $REPO\$#path = $T/pg/repo#" -e "s#^path = $CATALOG\$#path = $T/pg/catalog#" \
	"$CONF" >"$T/pg.conf"
cf_conf "$T/pg.conf" catalog rebuild --trust-unsigned
PATH="$T/pg/bin:$PATH" cf_conf "$T/pg.conf" restore "$CID" --to-database dbname=nope --trust-unsigned
check_rc "a failing pg_restore is a target failure" 5
check_eq "its error line is printed once" 1 "$(grep -c 'database "nope" does not exist' "$ERR")"
check_grep "in the one error line" "$ERR" \
	'^coffer: error: pg_restore exited with status 1; stderr: pg_restore: error: database "nope" does not exist'
printf '#!/bin/sh\ncat >/dev/null\necho "pg_restore: warning: something to know" >&2\n' >"$T/pg/bin/pg_restore"
PATH="$T/pg/bin:$PATH" cf_conf "$T/pg.conf" restore "$CID" --to-database dbname=app --trust-unsigned
check_rc "a pg_restore that succeeds with a warning" 0
check_eq "its warning is printed once" 1 "$(grep -c 'something to know' "$ERR")"

# ===== names that are not UTF-8 ======================================================
# Stored and restored byte for byte, with no warning (in a UTF-8 and in the C
# locale): a folder, a file, a symlink and its target, a hard link.
U=$T/u8
mkdir -p "$U/$(printf 'dir\377')"
printf 'x\n' >"$U/$(printf 'dir\377')/f"
printf 'y\n' >"$U/$(printf 'caf\351.txt')"
ln -s "$(printf 'tar\376get')" "$U/$(printf 'ln\377')"
ln "$U/$(printf 'caf\351.txt')" "$U/$(printf 'hard\375')"
printf '[source u]\ntype = files\npaths = %s\n' "$U" | t_config "$T/u8.conf"
cf_conf "$T/u8.conf" backup u
check_rc "backup of names that are not UTF-8" 0
check_empty_output "the backup warns about nothing" cat "$ERR"
UID8=$(last_id u complete "$T/u8.conf")
for loc in C.UTF-8 C; do
	LC_ALL=$loc cf_conf "$T/u8.conf" restore "$UID8" --to "$T/u8-$loc"
	check_rc "restore of names that are not UTF-8 (LC_ALL=$loc)" 0
	check_empty_output "the restore warns about nothing (LC_ALL=$loc)" cat "$ERR"
	check_eq "the names come back byte for byte (LC_ALL=$loc)" \
		"$(cd "$U" && find . | sort | od -c)" "$(cd "$T/u8-$loc/${U#/}" && find . | sort | od -c)"
	check_eq "the symlink's target too (LC_ALL=$loc)" "$(printf 'tar\376get')" \
		"$(readlink "$T/u8-$loc/${U#/}/$(printf 'ln\377')")"
	check_eq "the hard link is one file with its other name (LC_ALL=$loc)" \
		"$(stat -c %i "$T/u8-$loc/${U#/}/$(printf 'caf\351.txt')")" \
		"$(stat -c %i "$T/u8-$loc/${U#/}/$(printf 'hard\375')")"
done
cf_conf "$T/u8.conf" ls "$UID8"
check_rc "ls of names that are not UTF-8" 0
check "ls prints a name's bytes as they are" env LC_ALL=C grep -aq "$(printf 'caf\351')\\.txt" "$OUT"
check_empty_output "ls warns about nothing" cat "$ERR"
cf_conf "$T/u8.conf" ls "$UID8" --json
check "ls --json is valid JSON with such names (U+FFFD for the bytes)" \
	jqe --arg p "${U#/}/caf"$'\xef\xbf\xbd'".txt" '[.entries[].path] | index($p) != null' "$OUT"

if python3 -c 'import sqlite3' 2>/dev/null; then
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("create table t(x)")
c.execute("insert into t values (42)"); c.commit()' "$T/db.sqlite"
	t_config <<EOF
[source f]
type = files
paths = $DATA

[source c]
type = command
command = echo hello from the command

[source s]
type = sqlite
path = $T/db.sqlite
EOF
	cf backup s
	check_rc "backup of a sqlite source" 0
	cf restore "$(last_id s)" --to "$T/new/parent/db.sqlite"
	check_rc "restore --to FILE under folders that do not exist" 0
	cf restore "$(last_id s)" --to "$T/new/parent/db2.sqlite" --json
	check_rc "restore --to FILE --json" 0
	check "the document says a file was restored, and which object" \
		jqe --arg to "$T/new/parent/db2.sqlite" '.target == $to and .target_type == "file" and
			(.objects | length) == 1 and .objects[0].name == "db.sqlite"' "$OUT"
	check_eq "--to FILE makes its parent folders" 42 "$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select x from t").fetchone()[0])' \
		"$T/new/parent/db.sqlite" 2>&1)"
fi

t_finish
