# test_s3_cancel: SIGINT and SIGTERM reach the S3 driver in every phase.
# Through the fault proxy in front of RGW, `coffer backup` is signalled
# while a part upload is held by a slow server (--delay-s) and while a part
# is being retried after 500s (backoff); each time it must exit 130 in under
# a second (the latency is printed) and leave no multipart upload behind.
. "$(dirname "$0")/lib.sh"
t_setup s3_cancel
. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"

BUCKET=$(s3_bucket_name coffer-cancel)
s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"
head -c 30000000 /dev/urandom >"$T/random.bin"

# cancel_config FILE ENDPOINT
cancel_config() {
	{
		printf '[repository]\ntype = s3\nendpoint = %s\nregion = %s\nbucket = %s\n' \
			"$2" "$S3_REGION" "$BUCKET"
		printf 'prefix = cancel/\npart_size = 5MiB\nupload_concurrency = 2\n'
		printf 'max_attempts = 10\ntimeout = 30\n\n'
		printf '[catalog]\npath = %s\n\n' "$CATALOG"
		printf '[encryption]\nrecipients = %s\nidentity = %s\n\n' "$RECIPIENT" "$KEY"
		printf '[source data]\ntype = command\ncommand = cat %s\n' "$T/random.bin"
	} >"$1"
	chmod 600 "$1"
}

# signal_during SIG WHAT PATTERN COUNT: starts a backup, waits until the
# proxy log holds COUNT more lines matching PATTERN, sends SIG, and checks
# the exit status, the latency and the uploads left.
signal_during() {
	local sig=$1 what=$2 pattern=$3 count=$4 pid i t0 t1 ms rc
	count=$(($(grep -cE "$pattern" "$FP_LOG" 2>/dev/null) + count))
	"$COFFER_BIN" --config "$T/cancel.conf" backup data >"$OUT" 2>"$ERR" &
	pid=$!
	for i in $(seq 1 600); do
		[ "$(grep -cE "$pattern" "$FP_LOG" 2>/dev/null)" -ge "$count" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	sleep 0.3
	limit=1000
	[ -n "${TSAN_OPTIONS:-}" ] && limit=3000
	t0=$(date +%s%N)
	kill -"$sig" "$pid"
	wait "$pid"
	rc=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	t_log "# SIG$sig during $what: exit $rc after $ms ms"
	check_eq "SIG$sig during $what exits 130" 130 "$rc"
	# Under ThreadSanitizer (CI sets TSAN_OPTIONS) every step is several
	# times slower: the bound there is 3 s; the other builds check 1 s.
	check "SIG$sig during $what: exit within $((limit / 1000)) s (took $ms ms)" test "$ms" -lt "$limit"
	check_grep "SIG$sig during $what: the error says interrupted" "$ERR" "interrupted"
	check_eq "SIG$sig during $what: no multipart upload is left" 0 "$(s3_list_uploads "$BUCKET")"
	check_no_grep "SIG$sig during $what: the failed run's objects were discarded" "$ERR" "could not remove"
	check_eq "SIG$sig during $what: no object is left" 0 \
		"$(s3_aws s3api list-objects-v2 --bucket "$BUCKET" --query 'length(Contents || `[]`)' --output text)"
	if [ "$(s3_list_uploads "$BUCKET")" != 0 ]; then
		s3_aws s3api list-multipart-uploads --bucket "$BUCKET" >&2
		cp "$FP_LOG" "$T/faultproxy.log"
		cp "$ERR" "$T/$sig.err"
		s3_rmbucket "$BUCKET" && s3_mkbucket "$BUCKET" # the next case starts clean
	fi
}

# ===== a slow server: every part upload is held 6 s =========================
s3_faultproxy --delay-s 6 --only-methods PUT --only-paths partNumber=
cancel_config "$T/cancel.conf" "$FP_ENDPOINT"
signal_during INT "a slow part upload" 'PUT [^ ]*partNumber=[^ ]* delay=' 1
signal_during TERM "a slow part upload" 'PUT [^ ]*partNumber=[^ ]* delay=' 1
s3_faultproxy_stop

# ===== backoff: every part upload is answered 500 ==========================
s3_faultproxy --fault-rate 1.0 --faults 500 --only-methods PUT --only-paths partNumber=
cancel_config "$T/cancel.conf" "$FP_ENDPOINT"
signal_during INT "backoff after 500s" 'partNumber=[^ ]* fault=500' 4
signal_during TERM "backoff after 500s" 'partNumber=[^ ]* fault=500' 4
check_grep "the proxy answered the parts 500" "$FP_LOG" "fault=500"
s3_faultproxy_stop

check_eq "no backup was recorded complete" 0 "$(count_status data complete "$T/cancel.conf")"

t_finish
