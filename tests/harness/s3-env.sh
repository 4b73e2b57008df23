# s3-env.sh: the S3 test environment (sourced by bash test scripts, not run).
#
# Sourcing it makes sure the RADOS Gateway of $COFFER_RGW_DIR is up (under
# CTest the harness/rgw_start fixture started it; run by hand, it is started
# here and stopped again when the script exits, unless S3_KEEP_RGW=1), then
# exports:
#   S3_ENDPOINT            http://127.0.0.1:7480 (the first region's gateway)
#   S3_REGION              us-east-1 (the first of $REGIONS)
#   S3_REGIONS             all regions; S3_ENDPOINT_<REGION> for each
#                          (S3_ENDPOINT_EU_WEST_1=http://127.0.0.1:7481)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (also as S3_ACCESS_KEY, S3_SECRET_KEY)
#   AWS_DEFAULT_REGION     = S3_REGION
#   AWS_EC2_METADATA_DISABLED=true
#   AWS_CONFIG_FILE        a private config: path-style addressing, checksums
#                          only when required (RGW 16 predates the CRC trailers)
#   AWS_SHARED_CREDENTIALS_FILE  empty, so ~/.aws is never read
#   CEPH_CONF              the cluster's ceph.conf (for s3_rgw_admin)
# and defines:
#   S3_AWS                 the aws CLI to run (set it to choose one; a pyenv
#                          shim is resolved to the real script: 0.4 s less a call)
#   s3_aws ARGS...              $S3_AWS --endpoint-url $S3_ENDPOINT ARGS...
#   s3_aws_in REGION ARGS...    the same against REGION's gateway and region
#   s3_aws_config KEY VALUE     aws configure set KEY VALUE in AWS_CONFIG_FILE
#                               (s3_aws_config s3.multipart_chunksize 5MB)
#   s3_mkbucket NAME [REGION]   creates the bucket (in REGION's gateway, with
#                               its LocationConstraint); an existing one is kept
#   s3_rmbucket NAME [REGION]   deletes the bucket, its objects and its
#                               unfinished multipart uploads
#   s3_list_uploads BUCKET [REGION]  prints the number of multipart uploads in
#                               progress
#   s3_bucket_name PREFIX       prints a fresh bucket name (PREFIX-<pid>-<n>)
#   s3_rgw_admin ARGS...        radosgw-admin on the test cluster
#   s3_faultproxy ARGS...       starts faultproxy.py on a free port in front of
#                               S3_ENDPOINT (ARGS: its fault options); sets
#                               FP_ENDPOINT, FP_PID, FP_LOG; stopped at exit
#   s3_faultproxy_stop          stops it now (SIGTERM; waits)
#   s3_gateway_stop REGION [SIGNAL]  stops REGION's radosgw (SIGTERM, or e.g.
#                               KILL) and waits until it is gone; the test's
#                               exit starts it again if the test did not
#   s3_gateway_start REGION     starts it again; returns once it answers
#
# Inputs: COFFER_RGW_DIR (else COFFER_RGW_DEFAULT_DIR, which CTest sets to
# <build>/tests/rgw, else /tmp/coffer-rgw), REGIONS (when it starts
# the cluster itself), INSTALL=1 (install missing packages), S3_KEEP_RGW=1.
# When the packages are missing it skips the test (exit 77; t_skip if lib.sh
# is sourced). Cleanup goes through lib.sh's t_at_exit when defined, else an
# EXIT trap.

S3_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COFFER_RGW_DIR=${COFFER_RGW_DIR:-${COFFER_RGW_DEFAULT_DIR:-/tmp/coffer-rgw}}
export COFFER_RGW_DIR
S3_STARTED_RGW=0
S3_TMP=$(mktemp -d "${TMPDIR:-/tmp}/coffer-s3env.XXXXXX") || exit 1
S3_BUCKET_SEQ=0
FP_PID=
FP_ENDPOINT=
FP_LOG=

s3_env_cleanup() {
	s3_faultproxy_stop
	if [ "$S3_STARTED_RGW" = 1 ] && [ "${S3_KEEP_RGW:-0}" != 1 ]; then
		"$S3_HARNESS_DIR/rgw-stop.sh" "$COFFER_RGW_DIR" >/dev/null 2>&1
		S3_STARTED_RGW=0
	fi
	rm -rf "$S3_TMP"
}
if declare -F t_at_exit >/dev/null; then
	t_at_exit s3_env_cleanup
else
	trap s3_env_cleanup EXIT
fi

s3__skip() {
	if declare -F t_skip >/dev/null; then
		t_skip "$@"
	fi
	echo "SKIP: $*"
	exit 77
}

# Find the cluster (any REGIONS: the fixture's is the one) or start it.
s3__up() {
	[ -f "$COFFER_RGW_DIR/state" ] && [ -f "$COFFER_RGW_DIR/env.sh" ] &&
		(. "$COFFER_RGW_DIR/env.sh" && curl -s -m 5 -o /dev/null "$S3_ENDPOINT/")
}
if s3__up; then
	s3__out="already running" s3__rc=0
else
	s3__out=$("$S3_HARNESS_DIR/rgw-start.sh" "$COFFER_RGW_DIR" 2>&1)
	s3__rc=$?
fi
case $s3__rc in
0)
	case $s3__out in
	*"already running"*) ;;
	*) S3_STARTED_RGW=1 ;;
	esac
	;;
77) s3__skip "S3 harness: ${s3__out##*rgw-start: }" ;;
*)
	printf '%s\n' "$s3__out" >&2
	echo "s3-env.sh: rgw-start.sh failed (exit $s3__rc)" >&2
	exit 1
	;;
esac
unset s3__out s3__rc

# shellcheck disable=SC1091
. "$COFFER_RGW_DIR/env.sh"
export AWS_DEFAULT_REGION=$S3_REGION
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$S3_TMP/aws-config
export AWS_SHARED_CREDENTIALS_FILE=$S3_TMP/aws-credentials
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_CA_BUNDLE
export AWS_PAGER=""
: >"$AWS_SHARED_CREDENTIALS_FILE"
cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = $S3_REGION
request_checksum_calculation = when_required
response_checksum_validation = when_required
s3 =
    addressing_style = path
EOF

S3_AWS=${S3_AWS:-$(command -v aws)}
case $S3_AWS in
*/shims/aws) S3_AWS=$(pyenv which aws 2>/dev/null) || S3_AWS=aws ;;
esac
export S3_AWS
# The proxy's pid must be python's own, not a shim's.
S3_PYTHON=$(command -v python3)
case $S3_PYTHON in
*/shims/python3) S3_PYTHON=$(pyenv which python3 2>/dev/null) || S3_PYTHON=python3 ;;
esac

s3_aws_config() {
	"$S3_AWS" configure set "$1" "$2"
}

s3_aws() {
	"$S3_AWS" --endpoint-url "$S3_ENDPOINT" "$@"
}

# s3_endpoint REGION: the gateway of REGION.
s3_endpoint() {
	local var
	var=S3_ENDPOINT_$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')
	if [ -z "${!var:-}" ]; then
		echo "s3_endpoint: no gateway for region $1 (regions: $S3_REGIONS)" >&2
		return 1
	fi
	printf '%s\n' "${!var}"
}

s3_aws_in() {
	local region=$1 ep
	shift
	ep=$(s3_endpoint "$region") || return 1
	"$S3_AWS" --endpoint-url "$ep" --region "$region" "$@"
}

s3_mkbucket() {
	local name=$1 region=${2:-$S3_REGION}
	if s3_aws_in "$region" s3api head-bucket --bucket "$name" >/dev/null 2>&1; then
		return 0
	fi
	if [ "$region" = us-east-1 ]; then
		s3_aws_in "$region" s3api create-bucket --bucket "$name" >/dev/null
	else
		s3_aws_in "$region" s3api create-bucket --bucket "$name" \
			--create-bucket-configuration "LocationConstraint=$region" >/dev/null
	fi
}

s3_list_uploads() {
	local bucket=$1 region=${2:-$S3_REGION}
	s3_aws_in "$region" s3api list-multipart-uploads --bucket "$bucket" \
		--query 'length(Uploads || `[]`)' --output text
}

s3_rmbucket() {
	local bucket=$1 region=${2:-$S3_REGION}
	s3_aws_in "$region" s3api list-multipart-uploads --bucket "$bucket" \
		--query 'Uploads[].[Key,UploadId]' --output text 2>/dev/null |
		while read -r key id; do
			[ -n "$id" ] && [ "$key" != None ] || continue
			s3_aws_in "$region" s3api abort-multipart-upload --bucket "$bucket" \
				--key "$key" --upload-id "$id" >/dev/null 2>&1
		done
	s3_aws_in "$region" s3 rb "s3://$bucket" --force >/dev/null
}

# s3_two_regions: sets US and EU to the harness's first two regions, or
# skips the test (t_skip) when it runs one.
s3_two_regions() {
	set -- $S3_REGIONS
	[ $# -ge 2 ] || t_skip "needs two regions (the ctest fixture starts two; by hand: REGIONS=\"us-east-1 eu-west-1\")"
	US=$1
	EU=$2
}

s3_bucket_name() {
	S3_BUCKET_SEQ=$((S3_BUCKET_SEQ + 1))
	printf '%s-%d-%d\n' "$1" "$$" "$S3_BUCKET_SEQ"
}

s3_rgw_admin() {
	radosgw-admin -c "$CEPH_CONF" "$@"
}

# s3_faultproxy [--upstream HOST:PORT] FAULT-OPTIONS...: see faultproxy.py.
s3_faultproxy() {
	local portfile=$S3_TMP/fp.port i
	s3_faultproxy_stop
	rm -f "$portfile"
	FP_LOG=$S3_TMP/faultproxy.$$.$RANDOM.log
	"$S3_PYTHON" "$S3_HARNESS_DIR/faultproxy.py" --listen 127.0.0.1:0 \
		--upstream "${S3_ENDPOINT#http://}" --log "$FP_LOG" --port-file "$portfile" "$@" &
	FP_PID=$!
	for i in $(seq 1 100); do
		[ -s "$portfile" ] && break
		kill -0 "$FP_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$portfile" ]; then
		echo "s3_faultproxy: the proxy did not start" >&2
		FP_PID=
		return 1
	fi
	FP_ENDPOINT=http://127.0.0.1:$(cat "$portfile")
}

s3_faultproxy_stop() {
	local i
	[ -n "$FP_PID" ] || return 0
	kill -TERM "$FP_PID" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$FP_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$FP_PID" 2>/dev/null
	wait "$FP_PID" 2>/dev/null
	FP_PID=
}

# The radosgw of REGION is client.rgw.N, N its place in S3_REGIONS.
s3__gateway() {
	local i=0 r
	for r in $S3_REGIONS; do
		[ "$r" = "$1" ] && echo "client.rgw.$i" && return 0
		i=$((i + 1))
	done
	echo "s3_gateway: no region $1 (regions: $S3_REGIONS)" >&2
	return 1
}

S3_STOPPED_GATEWAYS=
s3_gateway_stop() {
	local gw pid i
	gw=$(s3__gateway "$1") || return 1
	pid=$(cat "$COFFER_RGW_DIR/run/$gw.pid" 2>/dev/null) || return 1
	S3_STOPPED_GATEWAYS="$S3_STOPPED_GATEWAYS $1"
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	sleep 0.2
}

s3_gateway_start() {
	local gw ep i
	gw=$(s3__gateway "$1") || return 1
	ep=$(s3_endpoint "$1") || return 1
	radosgw -c "$CEPH_CONF" -n "$gw" 9>&- || return 1
	for i in $(seq 1 240); do
		if curl -s -m 5 -o /dev/null "$ep/"; then
			S3_STOPPED_GATEWAYS=${S3_STOPPED_GATEWAYS// $1/}
			return 0
		fi
		sleep 0.25
	done
	echo "s3_gateway_start: radosgw of $1 did not answer on $ep" >&2
	return 1
}

# A gateway a test stopped is started again when it exits (others share it).
s3__gateways_restore() {
	local r
	for r in $S3_STOPPED_GATEWAYS; do
		s3_gateway_start "$r" >/dev/null 2>&1
	done
}
if declare -F t_at_exit >/dev/null; then
	t_at_exit s3__gateways_restore
fi
