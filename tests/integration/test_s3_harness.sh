# test_s3_harness: the S3 test harness itself (tests/harness), checked with
# the aws CLI, not with coffer: the RADOS Gateway answers, objects go up, come
# back and go away, a multipart upload with the aws CLI's smallest part size
# completes and leaves no upload behind, RGW takes parts down to its configured
# 64 KiB minimum, a second region works when REGIONS names two, and the same
# aws operations succeed through faultproxy.py injecting faults into 30% of
# the requests (the aws CLI retries), whose log shows the faults. Each fault
# kind of the proxy is also checked alone with curl.
. "$(dirname "$0")/lib.sh"

# Not t_setup: this test needs neither coffer nor an identity.
T_NAME=s3_harness
mkdir -p "$COFFER_TEST_TMP"
T=$(mktemp -d "$COFFER_TEST_TMP/$T_NAME.XXXXXX") || exit 1
trap t_atexit EXIT
trap 'exit 130' INT TERM
for tool in aws curl python3 cmp; do
	command -v "$tool" >/dev/null || t_skip "$tool is not installed"
done

. "$COFFER_SRC/tests/harness/s3-env.sh"
t_log "# $T_NAME: $("$S3_AWS" --version 2>&1), endpoint $S3_ENDPOINT, regions $S3_REGIONS, scratch $T"

# The aws CLI's smallest part size (5 MB), and patient retries for the fault
# proxy. (s3_aws_config KEY VALUE does the same one key at a time, at 0.7 s a call.)
cat >>"$AWS_CONFIG_FILE" <<'EOF'
    multipart_threshold = 5MB
    multipart_chunksize = 5MB
    max_concurrent_requests = 4
retry_mode = standard
max_attempts = 10
EOF

head -c 1000 /dev/urandom >"$T/small"
head -c $((20 * 1024 * 1024 + 12345)) /dev/urandom >"$T/big"

# ops NAME CLIENT...: the aws operations of this test through CLIENT (s3_aws,
# or another function taking aws arguments); bucket NAME.
ops() {
	local b=$1 what=$2
	shift 2
	check "$what: make bucket" "$@" s3api create-bucket --bucket "$b" --output text
	check "$what: put small object" "$@" s3 cp --only-show-errors "$T/small" "s3://$b/dir/small"
	check "$what: put 20 MiB multipart" "$@" s3 cp --only-show-errors "$T/big" "s3://$b/big"
	rm -f "$T/small.back" "$T/big.back"
	check "$what: get small object" "$@" s3 cp --only-show-errors "s3://$b/dir/small" "$T/small.back"
	check_same_file "$what: small object comes back" "$T/small" "$T/small.back"
	check "$what: get 20 MiB object" "$@" s3 cp --only-show-errors "s3://$b/big" "$T/big.back"
	check_same_file "$what: 20 MiB object comes back" "$T/big" "$T/big.back"
	"$@" s3api list-objects-v2 --bucket "$b" --query 'Contents[].Key' --output text >"$T/list" 2>"$T/list.err"
	check_eq "$what: list" "big	dir/small" "$(cat "$T/list")"
	"$@" s3api head-object --bucket "$b" --key big --query ETag --output text >"$T/etag" 2>&1
	check_grep "$what: the big object is multipart (ETag -5)" "$T/etag" '-5"?$'
	check "$what: delete objects" "$@" s3 rm --only-show-errors --recursive "s3://$b/"
	"$@" s3api list-objects-v2 --bucket "$b" --query 'length(Contents || `[]`)' --output text >"$T/n" 2>&1
	check_eq "$what: bucket empty after delete" 0 "$(cat "$T/n")"
}

# --- straight to RGW -------------------------------------------------------
B=$(s3_bucket_name harness)
ops "$B" direct s3_aws
check_eq "direct: no multipart upload left" 0 "$(s3_list_uploads "$B")"

# RGW takes parts down to "rgw multipart min part size" (64 KiB here; 5 MiB on
# AWS): three parts of 64 KiB complete, a 1000-byte first part does not.
mpu_small_parts() {
	local key=$1 size=$2 id i parts=""
	id=$(s3_aws s3api create-multipart-upload --bucket "$B" --key "$key" --query UploadId --output text) || return 1
	head -c "$size" /dev/urandom >"$T/part"
	for i in 1 2 3; do
		etag=$(s3_aws s3api upload-part --bucket "$B" --key "$key" --upload-id "$id" \
			--part-number $i --body "$T/part" --query ETag --output text) || return 1
		parts="$parts{\"PartNumber\":$i,\"ETag\":$etag},"
	done
	echo "{\"Parts\":[${parts%,}]}" >"$T/parts.json"
	# --debug: aws CLI 1.x fails to print RGW's errors (their <Message/> is
	# empty), but its debug log holds the response body.
	if s3_aws s3api complete-multipart-upload --bucket "$B" --key "$key" --upload-id "$id" \
		--multipart-upload "file://$T/parts.json" --debug >"$T/complete.out" 2>&1; then
		return 0
	fi
	s3_aws s3api abort-multipart-upload --bucket "$B" --key "$key" --upload-id "$id" >/dev/null 2>&1
	return 1
}
check "three 64 KiB parts complete" mpu_small_parts tiny 65536
check_not "a 1000-byte first part is refused (EntityTooSmall)" mpu_small_parts tinier 1000
check_grep "the refusal is EntityTooSmall" "$T/complete.out" '<Code>EntityTooSmall</Code>'
check_eq "no multipart upload left after abort" 0 "$(s3_list_uploads "$B")"

# --- the server checks the signed payload hash --------------------------------
# coffer's uploads carry each body's SHA-256 as x-amz-content-sha256 and rely
# on the server refusing a body that does not match it.
printf 'the body' >"$T/body"
put_hash() {
	curl -s -o "$T/put.out" -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: $1" \
		-T "$T/body" "$S3_ENDPOINT/$B/signed-body"
}
check_eq "a body whose SHA-256 is not the signed one is refused" 400 \
	"$(put_hash "$(printf 'another body' | sha256sum | cut -d' ' -f1)")"
check_grep "with XAmzContentSHA256Mismatch" "$T/put.out" XAmzContentSHA256Mismatch
check_eq "the matching one is stored" 200 "$(put_hash "$(sha256sum <"$T/body" | cut -d' ' -f1)")"

# --- a second region ---------------------------------------------------------
set -- $S3_REGIONS
if [ $# -ge 2 ]; then
	R2=$2
	B2=$(s3_bucket_name harness-r2)
	check "region $R2: make bucket" s3_mkbucket "$B2" "$R2"
	loc=$(s3_aws_in "$R2" s3api get-bucket-location --bucket "$B2" --query LocationConstraint --output text 2>&1)
	check_eq "region $R2: bucket location" "$R2" "$loc"
	check "region $R2: put" s3_aws_in "$R2" s3 cp --only-show-errors "$T/small" "s3://$B2/small"
	rm -f "$T/small.back"
	check "region $R2: get" s3_aws_in "$R2" s3 cp --only-show-errors "s3://$B2/small" "$T/small.back"
	check_same_file "region $R2: object comes back" "$T/small" "$T/small.back"
	check "region $R2: remove bucket" s3_rmbucket "$B2" "$R2"
else
	t_log "# one region (the ctest fixture starts two; by hand: REGIONS=\"us-east-1 eu-west-1\")"
fi

# --- each fault alone, with curl ---------------------------------------------
# curl_fp ARGS...: curl through the proxy, printing the HTTP status; curl's
# exit status goes to $T/curl.rc.
curl_fp() {
	curl -s -o "$T/curl.body" -w '%{http_code}' "$@"
	echo $? >"$T/curl.rc"
}
s3_faultproxy --fault-rate 1 --faults 500
check_eq "proxy 500: status" 500 "$(curl_fp "$FP_ENDPOINT/x")"
check_grep "proxy 500: S3 XML InternalError" "$T/curl.body" '<Error><Code>InternalError</Code>'
s3_faultproxy --fault-rate 1 --faults 503slowdown --fault-after 1
check_eq "proxy --fault-after 1: first request clean" 200 "$(curl_fp "$FP_ENDPOINT/")"
check_eq "proxy 503: status" 503 "$(curl_fp "$FP_ENDPOINT/")"
check_grep "proxy 503: S3 XML SlowDown" "$T/curl.body" '<Error><Code>SlowDown</Code>'
s3_faultproxy --fault-rate 1 --faults reset
curl_fp "$FP_ENDPOINT/" >/dev/null
check_eq "proxy reset: curl sees a reset (exit 56)" 56 "$(cat "$T/curl.rc")"
curl_fp -X PUT --data-binary "@$T/big" "$FP_ENDPOINT/$B/x" >/dev/null
check_eq "proxy reset: mid request body (exit 55 or 56)" ok \
	"$(case $(cat "$T/curl.rc") in 55 | 56) echo ok ;; *) cat "$T/curl.rc" ;; esac)"
s3_faultproxy --fault-rate 1 --faults reset-request
curl_fp "$FP_ENDPOINT/" >/dev/null
check_eq "proxy reset-request without a body: reset after the head (exit 56)" 56 "$(cat "$T/curl.rc")"
s3_faultproxy --fault-rate 1 --faults stall --stall-seconds 1
s=$(date +%s%N)
curl_fp -m 10 "$FP_ENDPOINT/" >/dev/null
ms=$((($(date +%s%N) - s) / 1000000))
check_eq "proxy stall: no answer, then closed (curl exit 52)" 52 "$(cat "$T/curl.rc")"
check "proxy stall: lasted the stall (${ms} ms)" test "$ms" -ge 900
s3_faultproxy --fault-rate 1 --faults 500 --only-methods PUT,POST
check_eq "proxy --only-methods PUT: GET clean" 200 "$(curl_fp "$FP_ENDPOINT/")"
check_eq "proxy --only-methods PUT: PUT faulted" 500 "$(curl_fp -X PUT "$FP_ENDPOINT/$B/x")"
# A chunked request body is forwarded whole (RGW 16 answers 411 to a chunked
# PutObject, straight or through the proxy).
s3_faultproxy --fault-rate 0
direct=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' -H 'Transfer-Encoding: chunked' -T "$T/small" "$S3_ENDPOINT/$B/chunked")
check_eq "proxy chunked request: same answer as straight" "$direct" \
	"$(curl_fp -H 'Expect:' -H 'Transfer-Encoding: chunked' -T "$T/small" "$FP_ENDPOINT/$B/chunked")"
s3_faultproxy_stop
check_grep "proxy chunked request: whole body forwarded" "$FP_LOG" "PUT /$B/chunked status=$direct in=1000 "
check_grep "proxy exits cleanly on SIGTERM (summary logged)" "$FP_LOG" '^# summary requests=1 '
s3_rmbucket "$B"

# --- the same operations through the fault proxy -----------------------------
# SigV4 signs the Host header: the aws CLI addresses the proxy, which forwards
# the Host header unchanged, and RGW checks the signature with it.
# A stalled request ends with the aws CLI's read timeout, and is retried.
# aws CLI 2.9 (Debian 12's) does not retry a download whose body was cut by a
# reset (1.x does): with it, resets only cut requests.
resets=reset
case $("$S3_AWS" --version 2>&1) in aws-cli/2.*) resets=reset-request ;; esac
s3_faultproxy --fault-rate 0.3 --faults 500,503slowdown,$resets,stall --stall-seconds 30 --seed 7
via_proxy() { "$S3_AWS" --endpoint-url "$FP_ENDPOINT" --cli-read-timeout 3 "$@"; }
B3=$(s3_bucket_name harness-fp)
ops "$B3" "fault proxy" via_proxy
check_eq "fault proxy: no multipart upload left" 0 "$(s3_list_uploads "$B3")"
s3_faultproxy_stop
cp "$FP_LOG" "$T/faultproxy.log"
nf=$(grep -c 'fault=' "$T/faultproxy.log")
nr=$(grep -c '^c=' "$T/faultproxy.log")
t_log "# fault proxy: $nf faults in $nr requests: $(grep -o 'fault=[a-z0-9-]*' "$T/faultproxy.log" | sort | uniq -c | tr -s ' \n' ' ')"
check "fault proxy: log shows injected faults ($nf of $nr)" test "$nf" -ge 3
check_grep "fault proxy: log shows a forwarded 200" "$T/faultproxy.log" ' status=200 '
s3_rmbucket "$B3"

t_finish
