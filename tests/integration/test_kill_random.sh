# test_kill_random: kill -9 coffer at random points (issue 10). Backups of
# standard input and of a small tree are started one after another and
# killed after a random delay, with repo cleanup --older-than 0 (also
# killed at random) between them. Whatever happens: every backup that
# exited 0 is listed complete and restores to its input, byte for byte, to
# the end; after a last cleanup no folder without a manifest, no temporary
# file and no running record is left.
#
#   COFFER_KILLS=100 bash tests/integration/test_kill_random.sh   (default 40)
#   COFFER_KILL_SEED=N ...                                       replay a run
. "$(dirname "$0")/lib.sh"
t_setup kill_random

KILLS=${COFFER_KILLS:-40}
SEED=${COFFER_KILL_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
RANDOM=$SEED
t_log "# $KILLS kills, seed $SEED (replay: COFFER_KILL_SEED=$SEED COFFER_KILLS=$KILLS)"

mkdir -p "$T/in" "$T/tree/sub"
for i in $(seq 1 30); do head -c $((RANDOM * 10)) /dev/urandom >"$T/tree/sub/f$i"; done
MAX_MS=150 # a backup here takes about 100 ms: kills land before, in and after
if [ "${KILL_REPO:-posix}" = s3 ]; then
	MAX_MS=1500
	# On S3 (test_s3_kill_random.sh): 64 KiB parts, so most streams are
	# multipart uploads that a kill leaves half-done.
	. "$COFFER_SRC/tests/harness/s3-env.sh" || t_skip "the S3 harness did not start"
	BUCKET=$(s3_bucket_name coffer-kill)
	s3_mkbucket "$BUCKET" || t_skip "cannot create bucket $BUCKET"
	{
		printf '[repository]\ntype = s3\nendpoint = %s\nregion = %s\nbucket = %s\n' \
			"$S3_ENDPOINT" "$S3_REGION" "$BUCKET"
		printf 'prefix = kill/\npart_size = 64KiB\n\n'
		printf '[catalog]\npath = %s\n\n' "$CATALOG"
		printf '[encryption]\nrecipients = %s\nidentity = %s\n\n' "$RECIPIENT" "$KEY"
		printf '[source tree]\ntype = files\npaths = %s\n' "$T/tree"
	} >"$CONF"
	chmod 600 "$CONF"
else
	t_config <<EOF
[source tree]
type = files
paths = $T/tree
EOF
fi

GOOD=$T/good # lines: id source input-file
: >"$GOOD"
for i in $(seq 1 "$KILLS"); do
	in=$T/in/$i
	head -c $((RANDOM * 100 + 1)) /dev/urandom >"$in"
	ms=$((RANDOM % MAX_MS))
	delay=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
	if [ $((i % 3)) = 0 ]; then
		"$COFFER_BIN" --config "$CONF" backup tree >"$T/bg.out" 2>"$T/bg.err" &
		src=tree
	else
		"$COFFER_BIN" --config "$CONF" backup --stdin "k$i" <"$in" >"$T/bg.out" 2>"$T/bg.err" &
		src=k$i
	fi
	pid=$!
	sleep "$delay"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	rc=$?
	if [ $rc = 0 ]; then
		id=$(awk '{print $1; exit}' "$T/bg.out")
		[ $src = tree ] && in=-
		echo "$id $src $in" >>"$GOOD"
	elif [ $rc != 137 ]; then
		fail "kill $i: backup exited $rc, neither 0 nor killed" "$(head -n 3 "$T/bg.err")"
	fi
	if [ $((RANDOM % 4)) = 0 ]; then
		"$COFFER_BIN" --config "$CONF" repo cleanup --older-than 0 >/dev/null 2>&1 &
		cpid=$!
		sleep "0.0$((RANDOM % 10))"
		kill -9 $cpid 2>/dev/null
		wait $cpid 2>/dev/null
	fi
done
t_log "# $(wc -l <"$GOOD") of $KILLS backups finished before their kill"

cf repo cleanup --older-than 0
check_rc "a last repo cleanup --older-than 0" 0
check_eq "no run is left running" 0 "$(list_json | jq '[.[] | select(.status == "running")] | length')"
# s3_folders_without_manifest: backup folders under kill/ with no manifest.json.
s3_folders_without_manifest() {
	s3_aws s3 ls --recursive "s3://$BUCKET/kill/" | awk '{print $4}' >"$T/keys"
	sed -n 's|^\(kill/[^/]*/[^/]*/\).*|\1|p' "$T/keys" | sort -u | while read -r d; do
		grep -qx "${d}manifest.json" "$T/keys" || echo "$d"
	done
}
if [ "${KILL_REPO:-posix}" = s3 ]; then
	check_eq "no multipart upload is left" 0 "$(s3_list_uploads "$BUCKET")"
	check_empty_output "no backup folder without a manifest" s3_folders_without_manifest
else
	check_empty_output "no backup folder without a manifest" dirs_without_manifest "$REPO"
	check_empty_output "no temporary file" find "$REPO" -name '.*.tmp.*'
fi

lost=0 bad=0
while read -r id src in; do
	st=$(list_json | jq -r --arg id "$id" '.[] | select(.id == $id) | .status')
	if [ "$st" != complete ]; then
		lost=$((lost + 1))
		t_log "      backup $id ($src) exited 0 but is listed '$st'"
		continue
	fi
	if [ "$in" = - ]; then
		rm -rf "$T/r"
		if ! "$COFFER_BIN" --config "$CONF" restore "$id" --to "$T/r" >/dev/null 2>"$ERR" ||
			! diff -r "$T/tree" "$T/r$T/tree" >/dev/null; then
			bad=$((bad + 1))
			t_log "      backup $id ($src) does not restore: $(head -n 1 "$ERR")"
		fi
	elif ! "$COFFER_BIN" --config "$CONF" restore "$id" --stdout 2>"$ERR" | cmp -s - "$in"; then
		bad=$((bad + 1))
		t_log "      backup $id ($src) does not restore: $(head -n 1 "$ERR")"
	fi
done <"$GOOD"
check_eq "every backup that exited 0 is still complete (seed $SEED)" 0 "$lost"
check_eq "every backup that exited 0 restores to its input (seed $SEED)" 0 "$bad"

t_finish
