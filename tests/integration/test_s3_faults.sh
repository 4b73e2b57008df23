# test_s3_faults: the s3 driver through the project's fault-injecting proxy
# in front of a real RADOS Gateway. Backups and restores succeed through
# transient faults (500, 503 SlowDown, connection resets, stalls past the
# timeout); when retries run out the backup fails cleanly, records nothing
# complete and leaves no multipart upload behind.
. "$(dirname "$0")/lib.sh"
t_setup s3_faults
. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"

BUCKET=coffer-faults-$$
s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"
head -c 60000000 /dev/urandom >"$T/random.bin"
SUM=$(sha256sum <"$T/random.bin" | cut -d' ' -f1)

# fp_config FILE ENDPOINT [EXTRA]: a config pointing at ENDPOINT.
fp_config() {
	{
		printf '[repository]\ntype = s3\nendpoint = %s\nregion = %s\nbucket = %s\n' \
			"$2" "$S3_REGION" "$BUCKET"
		printf 'prefix = faults/\npart_size = 5MiB\nupload_concurrency = 4\n'
		printf 'download_concurrency = 4\ntimeout = 3\n%s\n\n' "${3:-}"
		printf '[catalog]\npath = %s\n\n' "$CATALOG"
		printf '[encryption]\nrecipients = %s\nidentity = %s\n\n' "$RECIPIENT" "$KEY"
		printf '[source data]\ntype = command\ncommand = cat %s\n' "$T/random.bin"
	} >"$1"
	chmod 600 "$1"
}

# ===== transient faults: everything still works ===============================
s3_faultproxy --fault-rate 0.25 --faults 500,503slowdown,reset,stall --stall-seconds 8 --seed 7
fp_config "$CONF" "$FP_ENDPOINT" "max_attempts = 10"
cf backup data
check_rc "backup through 25% faults exits 0" 0
ID=$(last_id data)
check "it is listed complete" test -n "$ID"
check_grep "the proxy injected 500s" "$FP_LOG" " 500"
check_grep "the proxy injected SlowDown" "$FP_LOG" "slowdown|SlowDown|503"
check_grep "the proxy reset connections" "$FP_LOG" "reset"
"$COFFER_BIN" --config "$CONF" restore "$ID" --stdout 2>"$ERR" | sha256sum | cut -d' ' -f1 >"$T/sum"
check_eq "restore through 25% faults gives the input back" "$SUM" "$(cat "$T/sum")"
check_eq "the object read straight from RGW decrypts to the input" "$SUM" \
	"$(s3_aws s3 cp "s3://$BUCKET/faults/data/$ID/stdout.zst.age" - | age -d -i "$KEY" | zstd -d |
		sha256sum | cut -d' ' -f1)"
check_eq "no multipart upload is left" 0 "$(s3_list_uploads "$BUCKET")"
s3_faultproxy_stop

# ===== retries run out: a clean failure =======================================
s3_faultproxy --fault-rate 1.0 --faults 500 --only-methods PUT --fault-after 3 --seed 1
fp_config "$T/doomed.conf" "$FP_ENDPOINT" "max_attempts = 3"
cf_conf "$T/doomed.conf" backup data
check_rc "backup whose part uploads always fail exits 6" 6
check_one_error_line "one error line"
check_grep "the error names the status and says retries ran out" "$ERR" "HTTP 500.*retries exhausted"
check_eq "nothing is recorded complete" 1 "$(count_status data complete "$T/doomed.conf")"
check_eq "the run is recorded failed" 1 "$(count_status data failed "$T/doomed.conf")"
check_eq "its multipart upload was aborted" 0 "$(s3_list_uploads "$BUCKET")"
s3_faultproxy_stop

# ===== an expired session token: one clear line, nothing complete ============
s3_faultproxy --fault-rate 1.0 --faults 400expiredtoken --fault-after 1 --seed 1
fp_config "$T/expired.conf" "$FP_ENDPOINT" "max_attempts = 3"
BEFORE=$(count_status data complete "$T/expired.conf")
AWS_SESSION_TOKEN=expired-session-token-xyz cf_conf "$T/expired.conf" backup data
check_rc "an expired session token exits 6" 6
check_one_error_line "one error line for the expired token"
check_grep "the error says ExpiredToken" "$ERR" "ExpiredToken"
check_no_grep "the token is never printed" "$ERR" "expired-session-token-xyz"
check_eq "nothing is recorded complete with it" "$BEFORE" "$(count_status data complete "$T/expired.conf")"
s3_faultproxy_stop

# ===== a lost reply to CreateMultipartUpload (issue 10) =========================
# RGW creates the upload, the reply is cut, coffer retries and gets a second
# one: the first, empty, must not stay behind a successful backup.
s3_faultproxy --fault-rate 1.0 --faults reset-response --only-methods POST --only-paths '?uploads' \
	--max-faults 1 --seed 1
fp_config "$T/lost.conf" "$FP_ENDPOINT"
cf_conf "$T/lost.conf" backup data
check_rc "a backup whose CreateMultipartUpload reply was lost" 0
check_grep "the proxy cut that reply" "$FP_LOG" 'POST [^ ]*[?]uploads fault=reset-response'
check_eq "no multipart upload is left behind it" 0 "$(s3_list_uploads "$BUCKET")"
s3_faultproxy_stop

t_finish
