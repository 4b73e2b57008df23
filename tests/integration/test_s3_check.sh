#!/bin/bash
# coffer check against real parts: RGW (two buckets, one with object lock),
# PostgreSQL, MariaDB, Redis, a SQLite file. A good configuration passes every
# check; each of these fails with the line naming it, the other checks still
# running: a wrong secret key, a missing bucket, object lock asked of a bucket
# without it, an unreachable source, a wrong database password, a pg_dump
# that is missing, a readable identity with identity_on_host = false; a bad
# recipient stops the configuration from loading (exit 2, file:line).
. "$(dirname "$0")/lib.sh"
t_setup s3_check
. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"
. "$COFFER_SRC/tests/harness/db-env.sh" || t_skip "the database harness did not start"
BUCKET=$(s3_bucket_name check)
s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"
LOCKED=$(s3_bucket_name checklock)
s3_aws s3api create-bucket --bucket "$LOCKED" --object-lock-enabled-for-bucket >/dev/null ||
	t_skip "cannot create an object-lock bucket"
sqlite3 "$T/app.db" 'CREATE TABLE t (x); INSERT INTO t VALUES (1);'
mkdir -p "$T/files"

# write_conf FILE [S3 secret key] [bucket] [pg port] [redis password file] [lock bucket]
write_conf() {
	cat >"$1" <<EOF2
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = ${3:-$BUCKET}
access_key = $S3_ACCESS_KEY
secret_key = ${2:-$S3_SECRET_KEY}
max_attempts = 2

[repository locked]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = ${6:-$LOCKED}
object_lock_mode = GOVERNANCE
object_lock_days = 1
max_attempts = 2

[repository local]
type = posix
path = $REPO

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source pg]
type = postgres
host = $PG_HOST
port = ${4:-$PG_PORT}
user = $PG_USER
passfile = $PG_PASSFILE

[source shop]
type = mysql
host = $MY_HOST
port = $MY_PORT
user = $MY_USER
password_file = $MY_PASSWORD_FILE

[source cache]
type = redis
host = $REDIS_HOST
port = $REDIS_PORT
password_file = ${5:-$REDIS_PASSWORD_FILE}

[source lite]
type = sqlite
path = $T/app.db

[source files]
type = files
paths = $T/files

[source dump]
type = command
command = seq 1 10
EOF2
	chmod 600 "$1"
}

write_conf "$CONF"
cf check
check_rc "a good configuration: every check passes" 0
check_eq "thirteen checks (config, catalog, recipients, identity, 3 repositories, 6 sources), all ok" 13 "$(grep -c '^ok ' "$OUT")"
check_grep "the S3 repository took the probe" "$OUT" "^ok +repository primary: s3://.*wrote, listed, read back and deleted a probe object"
check_grep "the object-lock bucket took it with a lock" "$OUT" "^ok +repository locked: "
check_grep "PostgreSQL: server and pg_dump versions" "$OUT" "^ok +source pg: PostgreSQL 15\.[0-9]+.*, pg_dump 15\.[0-9]+, [0-9]+ database\(s\) to dump"
check_grep "MariaDB: the server's version" "$OUT" "^ok +source shop: server 10\.11\..*MariaDB"
check_grep "Redis: its version" "$OUT" "^ok +source cache: Redis 7\."
check_grep "SQLite: the file reads" "$OUT" "^ok +source lite: .*app\.db: .* 1 schema object"
check_grep "the command is found, not run" "$OUT" "^ok +source dump: .*/seq found \(not run\)"
check_empty_output "nothing on stderr" cat "$ERR"
check_eq "no probe object is left in the bucket" "" "$(s3_aws s3 ls --recursive "s3://$BUCKET/")"
check_eq "nor in the folder" "" "$(find "$REPO" -mindepth 1)"
check_eq "nothing was recorded in the catalog" "[]" "$("$COFFER_BIN" --config "$CONF" list --json)"

cf check --json cache lite
check_rc "--json, two sources named" 0
check_eq "--json: ok" true "$(jq .ok "$OUT")"
check_eq "--json: only the named sources" "cache lite" "$(jq -r '[.checks[] | select(.check == "source") | .name] | join(" ")' "$OUT")"

write_conf "$T/secret.conf" "wrongsecret"
cf_conf "$T/secret.conf" check
check_rc "a wrong secret key fails" 6
check_grep "the line names the repository and S3's refusal" "$OUT" "^FAIL +repository primary: write probe object .*(SignatureDoesNotMatch|403)"
check_grep "the other repositories are still checked" "$OUT" "^ok +repository local: "
check_grep "and the sources" "$OUT" "^ok +source pg: "
check_one_error_line "one error line"
check_grep "it counts the failures and names the first" "$ERR" "coffer: error: 1 of 13 check\(s\) failed; the first: repository primary: "

write_conf "$T/bucket.conf" "" "no-such-bucket-$$"
cf_conf "$T/bucket.conf" check
check_rc "a missing bucket fails (not found)" 3
check_grep "the line says the bucket does not exist" "$OUT" "^FAIL +repository primary: .*(NoSuchBucket|does not exist)"

write_conf "$T/lock.conf" "" "" "" "" "$BUCKET"
cf_conf "$T/lock.conf" check
check_not "object lock asked of a bucket without it fails" test "$RC" = 0
check_grep "the line names the locked repository" "$OUT" "^FAIL +repository locked: write probe object"

closed=$( (python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') )
write_conf "$T/pg.conf" "" "" "$closed"
cf_conf "$T/pg.conf" check
check_rc "an unreachable source fails" 5
check_grep "the line names the source and the connection error" "$OUT" "^FAIL +source pg: .*(Connection refused|could not connect)"
check_grep "the other sources are still checked" "$OUT" "^ok +source shop: "

echo wrong-password >"$T/redis.pass"
chmod 600 "$T/redis.pass"
write_conf "$T/redis.conf" "" "" "" "$T/redis.pass"
cf_conf "$T/redis.conf" check cache
check_rc "a wrong Redis password fails" 5
check_grep "the line names the source and the refusal" "$OUT" "^FAIL +source cache: .*(WRONGPASS|invalid username-password|NOAUTH)"

# pg_dump missing: bin_dir pointing at a folder without it.
mkdir -p "$T/emptybin"
write_conf "$T/bin.conf"
sed -i "/^\[source pg\]/a bin_dir = $T/emptybin" "$T/bin.conf"
cf_conf "$T/bin.conf" check pg
check_rc "no psql or pg_dump in bin_dir fails" 5
check_grep "the line says what is missing and what to install" "$OUT" "^FAIL +source pg: .*not found in $T/emptybin"

write_conf "$T/offhost.conf"
sed -i "/^identity = /a identity_on_host = false" "$T/offhost.conf"
cf_conf "$T/offhost.conf" check lite
check_not "identity_on_host = false with a readable identity fails" test "$RC" = 0
check_grep "the line says the identity is readable here" "$OUT" "^FAIL +encryption identity: .*key.txt can be read by this user .*identity_on_host = false"
sed -i "/^identity = /d" "$T/offhost.conf"
cf_conf "$T/offhost.conf" check lite
check_rc "without an identity on the host it passes" 0
check_grep "and says so" "$OUT" "^ok +encryption identity: none configured, as identity_on_host = false asks"

write_conf "$T/rcpt.conf"
sed -i "s/^recipients = .*/recipients = age1notarecipient/" "$T/rcpt.conf"
cf_conf "$T/rcpt.conf" check
check_rc "a bad recipient: the configuration does not load" 2
check_grep "the line names the file, line and recipient" "$ERR" "rcpt.conf:[0-9]+: .*age1notarecipient"

s3_rmbucket "$BUCKET" >/dev/null 2>&1
t_finish
