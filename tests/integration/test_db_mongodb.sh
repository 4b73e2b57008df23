# test_db_mongodb: the mongodb source WITHOUT a MongoDB server. mongodump
# (MongoDB Database Tools) is not packaged for Debian 12, so this is not a
# happy-path test of a real dump: it checks the one clear error when
# mongodump is missing, and, with a stand-in `mongodump` script, the contract
# coffer keeps with the real tool: argv (--archive to stdout, --uri,
# --username, --authenticationDatabase, --db, --oplog, --config=FILE and never
# a password), the 0600 YAML config file holding `password: '...'` (quoted so
# that any password reads back exactly) and removed after the run, the
# stdout stored byte for byte as dump.archive or db-NAME.archive, and a
# failing mongodump leaving no object.
. "$(dirname "$0")/lib.sh"
t_setup db_mongodb

mkdir -p "$T/bin" "$T/payload"
LOG=$T/fake.log
# A password with YAML-significant characters: quotes, colon, hash, blanks.
printf "%s\n" "pa'ss \"wo:rd #1 \\x" >"$T/mongo.pass"
PW=$(head -n 1 "$T/mongo.pass")
head -c 3000000 /dev/urandom >"$T/payload/all.bin"
head -c 1000000 /dev/urandom >"$T/payload/app.bin"
head -c 10 /dev/urandom >"$T/payload/we ird.bin"

# The stand-in: answers --version, checks every argument against what
# mongodump 100.x accepts, checks the config file, logs all of it and writes
# the payload of the database (or "all") to stdout.
cat >"$T/bin/mongodump" <<EOF
#!/bin/bash
if [ "\$*" = --version ]; then
	printf 'mongodump version: 100.9.4\ngit version: stand-in\n'
	exit 0
fi
log=$LOG
printf 'argv:' >>"\$log"; printf ' %q' "\$@" >>"\$log"; printf '\n' >>"\$log"
archive=0 cfg= db=all
for a in "\$@"; do
	case \$a in
	--archive) archive=1 ;;
	--uri=mongodb://*) ;;
	--username=* | --authenticationDatabase=* | --oplog) ;;
	--config=*) cfg=\${a#--config=} ;;
	--db=*) db=\${a#--db=} ;;
	*) echo "stand-in mongodump: unexpected argument \$a" >&2; exit 2 ;;
	esac
done
[ "\$archive" = 1 ] || { echo "stand-in mongodump: no --archive" >&2; exit 2; }
if [ -n "\$cfg" ]; then
	echo "config: \$cfg mode \$(stat -c %a "\$cfg") lines \$(wc -l <"\$cfg")" >>"\$log"
	# YAML single-quoted scalar: '' is one quote.
	pw=\$(sed -n "s/^password: '\\(.*\\)'\$/\\1/p" "\$cfg" | sed "s/''/'/g")
	if [ "\$pw" = "\$(cat "$T/mongo.pass")" ]; then echo "config: password ok" >>"\$log"; fi
fi
echo "stand-in mongodump: writing \$db to archive on stdout" >&2
cat "$T/payload/\$db.bin"
if [ -e "$T/fake-fail" ]; then
	echo "stand-in mongodump: Failed: connection(127.0.0.1:27017) socket was unexpectedly closed: EOF" >&2
	exit 1
fi
EOF
chmod +x "$T/bin/mongodump"

t_config <<EOF
[source mongo]
type = mongodb
uri = mongodb://127.0.0.1:27017/?replicaSet=rs0
user = backup
password_file = $T/mongo.pass
authentication_database = admin
mongodump = $T/bin/mongodump

[source mongo-dbs]
type = mongodb
databases = app, we ird
mongodump = $T/bin/mongodump

[source mongo-oplog]
type = mongodb
oplog = true
mongodump = $T/bin/mongodump

[source mongo-path]
type = mongodb

[source mongo-missing]
type = mongodb
mongodump = $T/no/mongodump
EOF

# --- the missing tool ------------------------------------------------------------
if PATH=/usr/local/bin:/usr/bin:/bin command -v mongodump >/dev/null; then
	t_log "# mongodump is installed: the not-installed check on PATH is left out"
else
	PATH=/usr/local/bin:/usr/bin:/bin cf backup mongo-path
	check_rc "mongodump not on PATH: the backup fails" 5
	check_one_error_line "mongodump not on PATH: one error line"
	check_grep "mongodump not on PATH: the error says so" "$ERR" \
		'^coffer: error: source mongo-path: mongodump is not installed \(install MongoDB Database Tools\)$'
	check_eq "mongodump not on PATH: the backup is recorded failed" 1 "$(count_status mongo-path failed)"
fi
cf backup mongo-missing
check_rc "mongodump = a path that does not exist: the backup fails" 5
check_grep "mongodump = a missing path: the error names it" "$ERR" \
	"^coffer: error: source mongo-missing: mongodump is not installed at $T/no/mongodump \\(install MongoDB Database Tools\\)$"

# --- the argv and config contract (stand-in mongodump) -------------------------------
: >"$LOG"
cf --verbose --verbose backup mongo
check_rc "backup through the stand-in mongodump" 0
check_grep "argv: --archive (stdout), --uri, --username, --authenticationDatabase, --config" "$LOG" \
	"^argv: --archive --uri=mongodb://127\\.0\\.0\\.1:27017/\\\\\\?replicaSet=rs0 --username=backup --authenticationDatabase=admin --config=/.*coffer-mongodump\\.[A-Za-z0-9]+$"
check_grep "the config file is mode 0600 and holds one line" "$LOG" '^config: .* mode 600 lines 1$'
check_grep "the config file's password: reads back as the password file's" "$LOG" '^config: password ok$'
CFG=$(sed -n 's/^config: \(.*\) mode .*/\1/p' "$LOG")
check_absent "the config file is removed after the run" "$CFG"
check_no_grep "the password is in no argv" "$LOG" "wo:rd"
check_no_grep "the password is not in coffer's log" "$ERR" "wo:rd"
check_grep "mongodump's stderr reaches the debug log (-v -v)" "$ERR" 'writing all to archive on stdout'
ID=$(last_id mongo)
cf show "$ID" --json
check_eq "one object dump.archive of format mongodump-archive" "dump.archive mongodump-archive" \
	"$(jq -r '.objects[] | "\(.name) \(.format)"' "$OUT")"
check_eq "meta: engine, tool version, databases, oplog, how" \
	'{"databases":"all","dump":"mongodump --archive","engine":"mongodb","oplog":false,"tool_version":"100.9.4"}' \
	"$(jq -cS '.meta' "$OUT")"
cf restore "$ID" --stdout
check_same_file "restore --stdout gives mongodump's output byte for byte" "$T/payload/all.bin" "$OUT"
obj=$(object_path "$ID")
age -d -i "$KEY" "$obj" 2>"$T/age.err" | zstd -d -q >"$T/plain.archive" 2>>"$T/age.err"
check_same_file "age -d | zstd -d gives it too" "$T/payload/all.bin" "$T/plain.archive"

# One archive per database: --db each, no config file without a password.
: >"$LOG"
cf backup mongo-dbs
check_rc "backup of two databases" 0
check_grep "argv of the first: --db=app, no credentials" "$LOG" \
	'^argv: --archive --uri=mongodb://127\.0\.0\.1:27017 --db=app$'
check_grep "argv of the second: --db with a blank" "$LOG" \
	'^argv: --archive --uri=mongodb://127\.0\.0\.1:27017 --db=we\\ ird$'
check_no_grep "no --config without a password" "$LOG" 'config'
ID=$(last_id mongo-dbs)
cf show "$ID" --json
check_eq "objects db-app.archive and db-we_20ird.archive" "db-app.archive db-we_20ird.archive" \
	"$(jq -r '[.objects[].name] | join(" ")' "$OUT")"
check_eq "each object's metadata names its database" '{"database":"we ird","role":"database"}' \
	"$(jq -cS '.objects[1].meta' "$OUT")"
cf restore "$ID" --stdout --object db-app.archive
check_same_file "db-app.archive is the app dump" "$T/payload/app.bin" "$OUT"
cf restore "$ID" --stdout --object db-we_20ird.archive
check_same_file "db-we_20ird.archive is the 'we ird' dump" "$T/payload/we ird.bin" "$OUT"

: >"$LOG"
cf backup mongo-oplog
check_rc "backup with oplog = true" 0
check_grep "oplog = true passes --oplog" "$LOG" '^argv: --archive --uri=mongodb://127\.0\.0\.1:27017 --oplog$'

# --- failures ------------------------------------------------------------------------
: >"$LOG"
# (a file, not a variable: coffer passes dump tools no variables of its own)
touch "$T/fake-fail"
cf backup mongo
rm -f "$T/fake-fail"
check_rc "a mongodump that fails after writing its output fails the backup" 5
check_one_error_line "a failing mongodump: one error line"
check_grep "a failing mongodump: the error has its exit status and stderr" "$ERR" \
	'^coffer: error: source mongo: mongodump exited with status 1; stderr: .*socket was unexpectedly closed'
check_eq "a failing mongodump: no complete backup is added" 1 "$(count_status mongo complete)"
check_eq "a failing mongodump: the backup is recorded failed" 1 "$(count_status mongo failed)"
FAILED=$(last_id mongo failed)
check_empty_output "a failing mongodump: no object is left" find "$REPO" -path "$REPO/mongo/$FAILED/*"
CFG=$(sed -n 's/^config: \(.*\) mode .*/\1/p' "$LOG")
check_absent "a failing mongodump: the config file is removed" "$CFG"

# Configuration mistakes: exit 2, the password never echoed.
CONF2=$T/bad.conf
t_config "$CONF2" <<EOF
[source m]
type = mongodb
uri = mongodb://backup:s3cret-in-uri@127.0.0.1:27017/
EOF
cf_conf "$CONF2" backup m
check_rc "a password in the uri is refused" 2
check_grep "the error says where the password goes" "$ERR" "uri holds a password: put the user in 'user' and the password in a file named by 'password_file'"
check_no_grep "the password in the uri is not echoed" "$ERR" 's3cret-in-uri'
t_config "$CONF2" <<EOF
[source m]
type = mongodb
databases = app
oplog = true
EOF
cf_conf "$CONF2" backup m
check_rc "oplog with databases is refused" 2
check_grep "the error says why" "$ERR" 'oplog = true dumps the whole deployment'

t_finish
