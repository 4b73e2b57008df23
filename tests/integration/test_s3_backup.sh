# test_s3_backup: the s3 driver against a real Ceph RADOS Gateway, checked with
# the real aws CLI, age and zstd. A 1 GiB stream (256 MiB under
# ThreadSanitizer, which looks for races that 50 parts show as well as 205); a stream whose tiny parts
# cross the part-size growth point; single-PUT objects; restores (coffer and
# aws | age | zstd); and the failures: wrong secret, unknown bucket,
# unreachable endpoint, a bad session token, a dump that fails half-way and a
# kill -9 (no upload left behind after cleanup).
. "$(dirname "$0")/lib.sh"
t_setup s3_backup
. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"

BUCKET=coffer-it-$$
BIG=1073741824
[ -n "${TSAN_OPTIONS:-}" ] && BIG=268435456
s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"

# s3_config FILE [EXTRA]: a config for the test bucket (keys from the
# environment, as an operator's timer would have them), then stdin.
s3_config() {
	local file=$1 extra=${2:-}
	{
		printf '[repository]\ntype = s3\nendpoint = %s\nregion = %s\nbucket = %s\n' \
			"$S3_ENDPOINT" "$S3_REGION" "$BUCKET"
		printf 'prefix = it/\npart_size = 5MiB\nupload_concurrency = 4\n%s\n\n' "$extra"
		printf '[catalog]\npath = %s\n\n' "$CATALOG"
		printf '[encryption]\nrecipients = %s\nidentity = %s\n\n' "$RECIPIENT" "$KEY"
		cat
	} >"$file"
	chmod 600 "$file"
}

s3_config "$CONF" <<EOF
[source big]
type = command
command = head -c $BIG $T/random.bin

[source tiny-parts]
type = command
command = head -c 104857600 $T/random.bin

[source small]
type = command
command = echo small object

[source fails]
type = command
command = sh -c 'head -c 20000000 $T/random.bin; echo dump broke >&2; exit 1'

[source slow]
type = command
command = sh -c 'for i in \$(seq 300); do head -c 1000000 /dev/urandom; sleep 0.1; done'
EOF

# 1 GiB of incompressible data, so the stored object really is 1 GiB.
head -c "$BIG" /dev/urandom >"$T/random.bin"

# ===== a 1 GiB stream ========================================================
t_log "# $BIG-byte stream"
cf backup big
check_rc "$BIG-byte backup into RGW exits 0" 0
ID=$(last_id big)
check "the big backup is listed complete" test -n "$ID"
KEYPATH=it/big/$ID/stdout.zst.age
s3_aws s3 ls "s3://$BUCKET/it/big/$ID/" >"$T/ls.txt" 2>&1
check_grep "aws s3 ls lists the object" "$T/ls.txt" "stdout.zst.age"
check_grep "aws s3 ls lists the manifest" "$T/ls.txt" "manifest.json"
SIZE=$(s3_aws s3api head-object --bucket "$BUCKET" --key "$KEYPATH" --query ContentLength --output text)
check "the stored object is over $BIG bytes" test "${SIZE:-0}" -gt "$BIG"
ETAG=$(s3_aws s3api head-object --bucket "$BUCKET" --key "$KEYPATH" --query ETag --output text)
check_eq "it went up as a multipart upload of 5 MiB parts" "$(( (SIZE + 5242879) / 5242880 ))" \
	"$(printf '%s' "$ETAG" | tr -d '"' | sed 's/.*-//')"
SUM=$(head -c "$BIG" "$T/random.bin" | sha256sum | cut -d' ' -f1)
check_eq "aws s3 cp | age -d | zstd -d gives the input back" "$SUM" \
	"$(s3_aws s3 cp "s3://$BUCKET/$KEYPATH" - | age -d -i "$KEY" | zstd -d | sha256sum | cut -d' ' -f1)"
"$COFFER_BIN" --config "$CONF" restore "$ID" --stdout 2>"$ERR" | sha256sum | cut -d' ' -f1 >"$T/sum"
check_eq "coffer restore --stdout gives the input back" "$SUM" "$(cat "$T/sum")"
check_eq "no multipart upload is left" 0 "$(s3_list_uploads "$BUCKET")"

# ===== tiny parts across the growth point =====================================
t_log "# 100 MiB with 64 KiB parts: 1000 parts of 64 KiB, then 128 KiB parts"
sed -e 's/^part_size = 5MiB$/part_size = 64K/' "$CONF" >"$T/tiny.conf"
chmod 600 "$T/tiny.conf"
cf_conf "$T/tiny.conf" backup tiny-parts
check_rc "backup with 64 KiB parts exits 0" 0
ID=$(last_id tiny-parts complete "$T/tiny.conf")
KEYPATH=it/tiny-parts/$ID/stdout.zst.age
SIZE=$(s3_aws s3api head-object --bucket "$BUCKET" --key "$KEYPATH" --query ContentLength --output text)
# Parts 1-1000 hold 64 KiB each, the rest 128 KiB (the schedule doubles every 1000 parts).
WANT=$(( 1000 + (SIZE - 1000 * 65536 + 131071) / 131072 ))
ETAG=$(s3_aws s3api head-object --bucket "$BUCKET" --key "$KEYPATH" --query ETag --output text)
check_eq "the part size grew after 1000 parts ($SIZE bytes in $WANT parts)" "$WANT" \
	"$(printf '%s' "$ETAG" | tr -d '"' | sed 's/.*-//')"
SUM=$(head -c 104857600 "$T/random.bin" | sha256sum | cut -d' ' -f1)
"$COFFER_BIN" --config "$T/tiny.conf" restore "$ID" --stdout 2>"$ERR" | sha256sum | cut -d' ' -f1 >"$T/sum"
check_eq "its restore gives the input back" "$SUM" "$(cat "$T/sum")"

# ===== a small object is one PUT ==============================================
cf backup small
check_rc "small backup exits 0" 0
ID=$(last_id small)
ETAG=$(s3_aws s3api head-object --bucket "$BUCKET" --key "it/small/$ID/stdout.zst.age" --query ETag --output text)
check_not "a small object is a single PUT (plain MD5 ETag)" grep -q -- - <<<"$ETAG"
cf restore "$ID" --stdout
check_eq "small restore" "small object" "$(cat "$OUT")"

# ===== a dump failing half-way: nothing complete, upload aborted ===============
cf backup fails
check_rc "a failing command exits 5" 5
check_one_error_line "one error line for the failing command"
check_eq "no complete backup of it" 0 "$(count_status fails complete)"
check_eq "its multipart upload was aborted" 0 "$(s3_list_uploads "$BUCKET")"
check_eq "no object of it is left" 0 "$(s3_aws s3 ls --recursive "s3://$BUCKET/it/fails/" | wc -l)"

# ===== kill -9 during an upload, then cleanup ==================================
"$COFFER_BIN" --config "$CONF" backup slow >/dev/null 2>&1 &
PID=$!
for _ in $(seq 100); do
	[ "$(s3_list_uploads "$BUCKET")" -ge 1 ] && break
	sleep 0.2
done
check "a multipart upload is in progress" test "$(s3_list_uploads "$BUCKET")" -ge 1
kill -9 "$PID"
wait "$PID" 2>/dev/null
pkill -f "seq 300" 2>/dev/null
check_eq "kill -9 leaves no complete backup" 0 "$(count_status slow complete)"
cf repo cleanup --older-than 0
check_rc "repo cleanup exits 0" 0
check_eq "cleanup aborted the orphaned upload" 0 "$(s3_list_uploads "$BUCKET")"
check_eq "the killed run is now failed" 1 "$(count_status slow failed)"

# ===== object lock: retention set on every object as it is written ============
LOCKED=coffer-lock-$$
if s3_aws s3api create-bucket --bucket "$LOCKED" --object-lock-enabled-for-bucket >/dev/null 2>&1; then
	sed -e "s/^bucket = .*/bucket = $LOCKED/" \
		-e 's/^part_size = 5MiB$/part_size = 5MiB\nobject_lock_mode = GOVERNANCE\nobject_lock_days = 2/' \
		"$CONF" >"$T/lock.conf"
	chmod 600 "$T/lock.conf"
	cf_conf "$T/lock.conf" backup small
	check_rc "backup into an object-lock bucket exits 0" 0
	ID=$(last_id small complete "$T/lock.conf")
	for obj in stdout.zst.age manifest.json; do
		s3_aws s3api get-object-retention --bucket "$LOCKED" --key "it/small/$ID/$obj" \
			--output text >"$T/retention" 2>&1
		check_grep "$obj carries GOVERNANCE retention" "$T/retention" "GOVERNANCE"
	done
	cf_conf "$T/lock.conf" backup tiny-parts
	check_rc "a multipart backup into the object-lock bucket exits 0" 0
	ID=$(last_id tiny-parts complete "$T/lock.conf")
	s3_aws s3api get-object-retention --bucket "$LOCKED" --key "it/tiny-parts/$ID/stdout.zst.age" \
		--output text >"$T/retention" 2>&1
	check_grep "a multipart object carries retention too" "$T/retention" "GOVERNANCE"
else
	t_log "# object lock not supported by this RGW: skipped"
fi

# ===== failures that must be one clear line ===================================
t_log "# bad credentials, bucket, endpoint"
SMALL_BEFORE=$(count_status small complete)
AWS_SECRET_ACCESS_KEY=wrong-secret cf backup small
check_rc "wrong secret key exits 6" 6
check_one_error_line "wrong secret key: one error line"
check_grep "wrong secret key: says access is denied" "$ERR" "denied|403"
check_no_grep "wrong secret key: never prints the secret" "$ERR" "wrong-secret"

sed -e "s/^bucket = .*/bucket = no-such-bucket-$$/" "$CONF" >"$T/nobucket.conf"
chmod 600 "$T/nobucket.conf"
cf_conf "$T/nobucket.conf" backup small
check_rc "unknown bucket exits 3" 3
check_grep "unknown bucket: names the bucket" "$ERR" "no-such-bucket-$$.*does not exist"

sed -e "s|^endpoint = .*|endpoint = http://127.0.0.1:9|" -e 's/^upload_concurrency = 4$/max_attempts = 2/' \
	"$CONF" >"$T/noend.conf"
chmod 600 "$T/noend.conf"
cf_conf "$T/noend.conf" backup small
check_rc "unreachable endpoint exits 6" 6
check_grep "unreachable endpoint: names the endpoint and the failure" "$ERR" "127.0.0.1.*(connect|Connection)"

check_eq "none of these made a complete backup" "$SMALL_BEFORE" "$(count_status small complete)"

t_finish
