#!/bin/bash
# coffer prune against real RGW in two regions (us-east-1, eu-west-1), each
# repository with its own policy:
# - 40 "days" of daily backups (COFFER_TEST_CLOCK moves the clock a day per
#   backup), pruned every 5 days: prune deletes exactly what --dry-run said,
#   in each region; `aws s3 ls` shows the buckets hold exactly the backups
#   the catalog lists there and nothing else went; the final state is the one
#   worked out by hand below.
# - kill -9 at a random moment of a prune, 20 times: afterwards every listed
#   copy has its manifest and every listed backup restores; the next prune
#   finishes the job.
# - an object-locked backup (GOVERNANCE, 1 day) survives prune and is
#   reported as locked, exit 0.
. "$(dirname "$0")/lib.sh"
t_setup s3_prune
. "$COFFER_SRC/tests/harness/s3-env.sh"
s3_two_regions
BUS=$(s3_bucket_name prune-us)
BEU=$(s3_bucket_name prune-eu)
s3_mkbucket "$BUS" "$US"
s3_mkbucket "$BEU" "$EU"

# write_conf US-BUCKET EU-BUCKET: primary keeps 7 daily backups, eu 14 daily
# and 4 weekly; calendar periods in UTC.
write_conf() {
	cat >"$CONF" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $US
bucket = $1
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
keep_daily = 7

[repository eu]
type = s3
endpoint = $(s3_endpoint "$EU")
region = $EU
bucket = $2
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
keep_daily = 14
keep_weekly = 4

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[retention]
timezone = UTC

[source daily]
type = command
command = echo day
EOF
	chmod 600 "$CONF"
}

# manifests BUCKET REGION: the backup ids with a manifest in the bucket, sorted.
manifests() {
	s3_aws_in "$2" s3 ls --recursive "s3://$1/" | awk '{print $4}' |
		sed -n 's|^[^/]*/\([^/]*\)/manifest.json$|\1|p' | sort
}
# listed LOCATION-PREFIX: the ids the catalog lists in that repository, sorted.
listed() {
	cf list --json
	jq -r --arg loc "$1" '.[] | select(.status == "complete") | select(.locations | map(startswith($loc)) | any) | .id' "$OUT" | sort
}
# removed REPOSITORY FILE: the ids a prune --json FILE removed (or would) there.
removed() {
	jq -r --arg r "$1" '.plans[] | select(.repository == $r) | .backups[] | select(.action == "remove") | .id' "$2" | sort
}

# Under a sanitizer (tests/run.sh tests the ASan+UBSan build) the scenarios
# are shorter; COFFER_TEST_PLAIN=1 tests/run.sh runs the full ones: the sanitizers look for memory and thread
# errors, which a few rounds show as well as many.
DAYS=40
ROUNDS=20
if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; then
	DAYS=20
	ROUNDS=4
fi

# ===== 40 days, pruned every 5 ==============================================
write_conf "$BUS" "$BEU"
LUS="s3://$BUS/"
declare -A DAY
for d in $(seq 1 $DAYS); do
	# Day 1 is Monday 2027-01-04; each backup at 03:00 UTC.
	now=$(date -u -d "2027-01-03 03:00 UTC + $d days" +%Y-%m-%dT%H:%M:%SZ)
	COFFER_TEST_CLOCK=$now cf backup daily --json
	[ "$RC" = 0 ] || check_rc "backup of day $d" 0
	DAY[$d]=$(jq -r '.backups[0].id' "$OUT")
	[ $((d % 5)) = 0 ] || continue
	before_us=$(manifests "$BUS" "$US")
	before_eu=$(manifests "$BEU" "$EU")
	# Prune an hour after the backup: the test clock runs on from $now,
	# so a prune started at $now itself could find the day's backup
	# (recorded a millisecond or more after $now, under a sanitizer) in
	# its future, and keep it as skewed in one run but not the other.
	later=$(date -u -d "2027-01-03 04:00 UTC + $d days" +%Y-%m-%dT%H:%M:%SZ)
	COFFER_TEST_CLOCK=$later cf prune --dry-run --json
	cp "$OUT" "$T/dry.json"
	COFFER_TEST_CLOCK=$later cf prune --json
	check_rc "day $d: prune" 0
	cp "$OUT" "$T/prune.json"
	check_eq "day $d: primary deleted what the dry run said" "$(removed primary "$T/dry.json")" \
		"$(jq -r '.plans[] | select(.repository == "primary") | .backups[] | select(.result == "deleted") | .id' "$T/prune.json" | sort)"
	check_eq "day $d: eu deleted what the dry run said" "$(removed eu "$T/dry.json")" \
		"$(jq -r '.plans[] | select(.repository == "eu") | .backups[] | select(.result == "deleted") | .id' "$T/prune.json" | sort)"
	check_eq "day $d: us bucket = before minus removed (aws s3 ls)" \
		"$(comm -23 <(echo "$before_us") <(removed primary "$T/dry.json"))" "$(manifests "$BUS" "$US")"
	check_eq "day $d: eu bucket = before minus removed (aws s3 ls)" \
		"$(comm -23 <(echo "$before_eu") <(removed eu "$T/dry.json"))" "$(manifests "$BEU" "$EU")"
	check_eq "day $d: the catalog lists what the us bucket holds" "$(manifests "$BUS" "$US")" "$(listed "$LUS")"
done
# Worked out by hand: primary keep_daily 7 keeps days 34..40. eu keep_daily
# 14 keeps days 27..40, keep_weekly 4 the newest of the ISO weeks of days
# 36-40, 29-35, 22-28 and 15-21: days 40, 35, 28 (kept already) and 21.
# After 20 days: primary 14..20; eu 7..20, and days 7 (week 1-7, kept).
if [ $DAYS = 40 ]; then
	want_us=$(for d in $(seq 34 40); do echo "${DAY[$d]}"; done | sort)
	want_eu=$(for d in 21 $(seq 27 40); do echo "${DAY[$d]}"; done | sort)
	weekly=21
else
	want_us=$(for d in $(seq 14 20); do echo "${DAY[$d]}"; done | sort)
	want_eu=$(for d in $(seq 7 20); do echo "${DAY[$d]}"; done | sort)
	weekly=7
fi
check_eq "after $DAYS days the us bucket holds the last 7 days" "$want_us" "$(manifests "$BUS" "$US")"
check_eq "the eu bucket holds the last 14 days and one weekly" "$want_eu" "$(manifests "$BEU" "$EU")"
check_eq "no object outside those backups is left in us" "" \
	"$(s3_aws_in "$US" s3 ls --recursive "s3://$BUS/" | awk '{print $4}' | cut -d/ -f2 | sort -u | comm -23 - <(echo "$want_us"))"
check_eq "none in eu" "" \
	"$(s3_aws_in "$EU" s3 ls --recursive "s3://$BEU/" | awk '{print $4}' | cut -d/ -f2 | sort -u | comm -23 - <(echo "$want_eu"))"
cf restore "${DAY[$weekly]}" --stdout
check_rc "day $weekly restores (from eu, its weekly copy)" 0
check_eq "with its data" day "$(cat "$OUT")"
cf replicate --all
check_rc "replicate --all" 0
check_eq "replicate --all does not copy back what primary's policy removed" "$want_us" "$(manifests "$BUS" "$US")"

t_log "# $DAYS days: ${SECONDS}s"
# ===== kill -9 at random moments of a prune, 20 times ========================
BK1=$(s3_bucket_name prune-kill-us)
BK2=$(s3_bucket_name prune-kill-eu)
s3_mkbucket "$BK1" "$US"
s3_mkbucket "$BK2" "$EU"
rm -rf "$CATALOG"
write_conf "$BK1" "$BK2"
sed -i 's/^keep_daily = 7$/keep_last = 2/; s/^keep_daily = 14$/keep_last = 3/; /^keep_weekly = 4$/d' "$CONF"
LK1="s3://$BK1/"
LK2="s3://$BK2/"
bad=0
killed=0
for i in $(seq 1 $ROUNDS); do
	for _ in 1 2; do
		cf backup daily
		[ "$RC" = 0 ] || check_rc "kill round $i: backup" 0
	done
	"$COFFER_BIN" --config "$CONF" prune >"$T/kill.out" 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 600)))"
	kill -9 $pid 2>/dev/null && killed=$((killed + 1))
	wait $pid 2>/dev/null
	# Every copy the catalog lists has its manifest; every listed backup restores.
	for loc in "$LK1 $BK1 $US" "$LK2 $BK2 $EU"; do
		read -r l b r <<<"$loc"
		extra=$(comm -23 <(listed "$l") <(manifests "$b" "$r"))
		[ -z "$extra" ] || {
			bad=$((bad + 1))
			t_log "# round $i: listed in $b without a manifest: $extra"
		}
	done
	cf list --json
	for id in $(jq -r '.[] | select(.status == "complete") | .id' "$OUT"); do
		cf restore "$id" --stdout
		[ "$RC" = 0 ] || {
			bad=$((bad + 1))
			t_log "# round $i: listed backup $id does not restore: $(cat "$ERR")"
		}
	done
done
t_log "# the prune was killed while running in $killed of $ROUNDS rounds (${SECONDS}s)"
check_eq "after each kill, every listed copy has its manifest and restores" 0 "$bad"
cf prune --json
check_rc "the next prune" 0
cf list --json
check_eq "it finished every deletion begun" 0 "$(jq '[.[] | select(.deleting)] | length' "$OUT")"
check_eq "us holds the 2 newest" "$(listed "$LK1" | tail -n 2)" "$(manifests "$BK1" "$US")"
check_eq "eu holds the 3 newest" "$(listed "$LK2" | tail -n 3)" "$(manifests "$BK2" "$EU")"
check_eq "no objects of removed backups are left in us" 2 \
	"$(s3_aws_in "$US" s3 ls --recursive "s3://$BK1/" | awk '{print $4}' | cut -d/ -f2 | sort -u | wc -l)"
check_eq "nor in eu" 3 \
	"$(s3_aws_in "$EU" s3 ls --recursive "s3://$BK2/" | awk '{print $4}' | cut -d/ -f2 | sort -u | wc -l)"

# ===== object lock ============================================================
LOCKED=$(s3_bucket_name prune-lock)
if s3_aws s3api create-bucket --bucket "$LOCKED" --object-lock-enabled-for-bucket >/dev/null 2>&1; then
	rm -rf "$CATALOG"
	cat >"$CONF" <<EOF
[repository]
type = s3
endpoint = $S3_ENDPOINT
region = $US
bucket = $LOCKED
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
object_lock_mode = GOVERNANCE
object_lock_days = 1
keep_last = 1

[catalog]
path = $CATALOG

[encryption]
recipients = $RECIPIENT
identity = $KEY

[source daily]
type = command
command = echo locked
EOF
	for _ in 1 2 3; do
		cf backup daily
		check_rc "backup into the object-lock bucket" 0
	done
	cf list --json
	oldest=$(jq -r '.[0].id' "$OUT")
	COFFER_TEST_CLOCK=$(date -u -d '+3 days' +%Y-%m-%dT%H:%M:%SZ) cf prune --json
	check_rc "prune of locked backups exits 0 (whatever the test clock says: locks go by the real one)" 0
	check_eq "two reported locked" 2 "$(jq .locked "$OUT")"
	check_eq "none deleted" 0 "$(jq .deleted "$OUT")"
	check_grep "with their retain-until date" "$OUT" '"detail": ?"locked until 20[0-9-]+T[0-9:.]+Z \(object lock\): kept"'
	s3_aws s3api head-object --bucket "$LOCKED" --key "daily/$oldest/manifest.json" >"$T/head" 2>&1
	check_grep "the oldest's manifest is still there" "$T/head" '"ObjectLockMode": "GOVERNANCE"' 
	cf restore "$oldest" --stdout
	check_eq "and it restores" locked "$(cat "$OUT")"
	cf prune
	check_grep "text: locked until" "$OUT" "^  remove  $oldest +complete +locked until .* \(object lock\): kept$"
	check_grep "text: the summary" "$OUT" "2 kept under object lock"
else
	t_log "# object lock not supported by this RGW: skipped"
fi

t_finish
