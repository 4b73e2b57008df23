#!/bin/bash
# rgw-start.sh: a throwaway single-node Ceph cluster (1 mon, 1 OSD, no mgr) with
# the RADOS Gateway (a real S3 server) on loopback, for coffer's S3 tests.
# Adapted from shared/s3/start-rgw.sh. Debian 12 packages: radosgw ceph-mon
# ceph-osd (Ceph 16.2 "pacific"). Runs as root without systemd; uses no network
# but 127.0.0.1. See tests/harness/README.md.
#
# Usage:  rgw-start.sh [--fixture] [DIR]
#   DIR: the cluster's folder (default $COFFER_RGW_DIR, else
#   $COFFER_RGW_DEFAULT_DIR, else /tmp/coffer-rgw); wiped when a cluster is made.
# Idempotent: when the cluster of DIR is up with the same REGIONS and ports it
# prints "already running" and exits 0; a dead or different one is stopped
# (rgw-stop.sh) and made anew. Concurrent starts of one DIR wait on DIR.lock.
# --fixture (CTest's harness/rgw_start): a cluster that is up in DIR is used
# whatever its settings, and only one made here is marked DIR/fixture-owned,
# for rgw-stop.sh --fixture: so `COFFER_RGW_DIR=/tmp/coffer-rgw ctest` runs
# the S3 tests against a cluster started by hand and leaves it running.
#
# Environment:
#   REGIONS=""            "us-east-1 eu-west-1": one realm, one zonegroup+zone per
#                         region (api_name = region), one radosgw per region on
#                         RGW_PORT, RGW_PORT+1, ... Empty: the plain "default"
#                         zonegroup and one radosgw (region us-east-1).
#   RGW_PORT=7480         first gateway port
#   MON_PORT=13300        mon msgr2 port (msgr1 is MON_PORT+1)
#   S3_ACCESS_KEY, S3_SECRET_KEY   the test user's keys (defaults below)
#   OSD_BACKEND=memstore  memstore (objects live in the OSD's RAM; the default: it
#                         starts faster) or bluestore (a sparse 20 GiB file in DIR,
#                         needs O_DIRECT, so not on tmpfs)
#   MEMSTORE_BYTES        capacity memstore reports (default 4 GiB)
#   RGW_MIN_PART=65536    rgw multipart min part size (real S3: 5 MiB)
#   INSTALL=1             apt-get install the missing packages first
# Exit status: 0 running; 77 when the packages are missing and INSTALL is not 1;
# 1 on failure (the daemons it started are stopped again; logs stay in DIR/log).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURE=0
D=
for a in "$@"; do
	case $a in
	--fixture) FIXTURE=1 ;;
	-*) echo "usage: rgw-start.sh [--fixture] [DIR]" >&2; exit 2 ;;
	*) D=$a ;;
	esac
done
D=$(realpath -m -- "${D:-${COFFER_RGW_DIR:-${COFFER_RGW_DEFAULT_DIR:-/tmp/coffer-rgw}}}")
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-13300}
AK=${S3_ACCESS_KEY:-TESTACCESSKEY0000001}
SK=${S3_SECRET_KEY:-testsecretkey000000000000000000000000001}
OSD_BACKEND=${OSD_BACKEND:-memstore}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-4294967296}
RGW_MIN_PART=${RGW_MIN_PART:-65536}
REGIONS=$(echo ${REGIONS:-})    # normalise the spaces

t0=$(date +%s%N)
log() {
	local ms=$((($(date +%s%N) - t0) / 1000000))
	printf '[rgw-start %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}
die() { echo "rgw-start: $*" >&2; exit 1; }

# --- packages ---------------------------------------------------------------
PKGS="radosgw ceph-mon ceph-osd ceph-common"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v curl >/dev/null || missing="$missing curl"
command -v aws >/dev/null || missing="$missing awscli"
command -v python3 >/dev/null || missing="$missing python3"
if [ -n "$missing" ]; then
	if [ "${INSTALL:-0}" = 1 ]; then
		log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >/dev/null
		log "installed"
		t0=$(date +%s%N)
	else
		echo "rgw-start: missing packages:$missing (run with INSTALL=1)" >&2
		exit 77
	fi
fi

# --- one start at a time for DIR; nothing to do when it is up ---------------
mkdir -p "$(dirname "$D")"
exec 9>"$D.lock"
flock 9

WANT="regions=$REGIONS rgw_port=$RGW_PORT mon_port=$MON_PORT backend=$OSD_BACKEND min_part=$RGW_MIN_PART ak=$AK"
NGW=1
[ -n "$REGIONS" ] && NGW=$(echo $REGIONS | wc -w)

# up: DIR was made complete, its daemons are alive and its gateways (the
# ports in DIR/gateways) answer.
cluster_up() {
	local f pid p
	[ -f "$D/state" ] && [ -f "$D/env.sh" ] && [ -f "$D/gateways" ] || return 1
	for f in "$D/run/mon.a.pid" "$D/run/osd.0.pid" "$D"/run/client.rgw.*.pid; do
		[ -f "$f" ] && pid=$(cat "$f") && kill -0 "$pid" 2>/dev/null || return 1
	done
	for p in $(cat "$D/gateways"); do
		curl -s -m 5 -o /dev/null "http://127.0.0.1:$p/" || return 1
	done
}
if cluster_up; then
	if [ "$(cat "$D/state")" = "$WANT" ]; then
		log "already running in $D ($(cat "$D/state"))"
		exit 0
	fi
	if [ "$FIXTURE" = 1 ]; then
		log "already running in $D, kept with its own settings ($(cat "$D/state"))"
		exit 0
	fi
fi
if [ -e "$D" ]; then
	log "stopping the stale cluster of $D"
	"$HERE/rgw-stop.sh" "$D" >/dev/null
fi

# Ports must be free: another cluster (another DIR) may hold them.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$MON_PORT" $((MON_PORT + 1)) $(seq "$RGW_PORT" $((RGW_PORT + NGW - 1))); do
	if port_busy "$p"; then
		die "port $p on 127.0.0.1 is in use (another cluster? stop it with rgw-stop.sh DIR, or set RGW_PORT/MON_PORT)"
	fi
done

rm -rf "$D"
mkdir -p "$D"/{run,log,crash,mon.a,osd.0}
C="$D/ceph.conf"
# From here on, a failure stops what was started.
started=0
on_exit() {
	local rc=$?
	if [ "$rc" != 0 ] && [ "$started" = 1 ]; then
		echo "rgw-start: failed (exit $rc); logs in $D/log; stopping the daemons" >&2
		"$HERE/rgw-stop.sh" "$D" >/dev/null 2>&1 || true
	fi
}
trap on_exit EXIT

FSID=$(cat /proc/sys/kernel/random/uuid)
cat >"$C" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.log
crash dir = $D/crash
mon data = $D/mon.\$id
osd data = $D/osd.\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
# a one-mon test cluster: commit map changes without waiting (each rgw pool is one)
paxos propose interval = 0.05
paxos min wait = 0.01
mon osd auto mark new in = true
[osd]
osd objectstore = $OSD_BACKEND
memstore device bytes = $MEMSTORE_BYTES
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
osd memory target = 1073741824
[client]
rgw multipart min part size = $RGW_MIN_PART
# free deleted objects' data within seconds, not hours (memstore keeps it in RAM)
rgw gc obj min wait = 10
rgw gc processor period = 10
rgw gc processor max time = 10
EOF
export CEPH_CONF="$C"

# One keyring for every entity; ceph-mon --mkfs imports all of it into the auth db.
K="$D/keyring"
ceph-authtool "$K" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
for i in $(seq 0 $((NGW - 1))); do
	ceph-authtool "$K" --gen-key -n client.rgw.$i --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
done

monmaptool --create --clobber --fsid "$FSID" \
	--addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]" "$D/monmap" >/dev/null
ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" --keyring "$K"
started=1
# Every daemon gets "-c DIR/ceph.conf" on its command line: rgw-stop.sh finds
# the daemons of DIR by it even when their pid files are gone or stale.
ceph-mon -c "$C" -i a 9>&- # daemonizes (9>&-: the daemons must not hold DIR.lock)
log "mon started"

OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ceph -c "$C" osd new "$OSD_UUID" 0 >/dev/null # registers osd.0 (its key is already in the auth db)
ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.log" 2>&1
ceph-osd -c "$C" -i 0 2>>"$D/log/osd-start.log" 9>&- # daemonizes; enters the crush map on boot
for i in $(seq 1 240); do ceph -c "$C" osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.25; done
ceph -c "$C" osd stat | grep -q '1 up' || die "osd did not come up; see $D/log"
log "osd up ($OSD_BACKEND)"

ENV="export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK S3_ACCESS_KEY=$AK S3_SECRET_KEY=$SK CEPH_CONF=$C"
if [ -z "$REGIONS" ]; then
	cat >>"$C" <<EOF
[client.rgw.0]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $D/rgw.0
EOF
	ENV="$ENV S3_REGIONS=us-east-1 S3_REGION=us-east-1 S3_ENDPOINT=http://127.0.0.1:$RGW_PORT S3_ENDPOINT_US_EAST_1=http://127.0.0.1:$RGW_PORT"
else
	# multisite: realm "test", zonegroup == zone == region name, the first region
	# is the metadata master.
	SYS_AK=SYSTEMACCESSKEY00001
	SYS_SK=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
	RA="radosgw-admin -c $C"
	$RA realm create --rgw-realm=test --default >/dev/null
	i=0
	for R in $REGIONS; do
		P=$((RGW_PORT + i))
		if [ $i = 0 ]; then
			$RA zonegroup create --rgw-zonegroup="$R" --endpoints="http://127.0.0.1:$P" --master --default >/dev/null
			$RA zone create --rgw-zonegroup="$R" --rgw-zone="$R" --endpoints="http://127.0.0.1:$P" \
				--master --default --access-key=$SYS_AK --secret="$SYS_SK" >/dev/null
			$RA user create --uid=sync-user --display-name=sync --system \
				--access-key=$SYS_AK --secret="$SYS_SK" >/dev/null
		else
			$RA zonegroup create --rgw-zonegroup="$R" --endpoints="http://127.0.0.1:$P" --rgw-realm=test >/dev/null
			$RA zone create --rgw-zonegroup="$R" --rgw-zone="$R" --endpoints="http://127.0.0.1:$P" \
				--master --access-key=$SYS_AK --secret="$SYS_SK" >/dev/null
		fi
		cat >>"$C" <<EOF
[client.rgw.$i]
rgw frontends = beast endpoint=127.0.0.1:$P
rgw data = $D/rgw.$i
rgw zonegroup = $R
rgw zone = $R
EOF
		ENV="$ENV S3_ENDPOINT_$(echo "$R" | tr 'a-z-' 'A-Z_')=http://127.0.0.1:$P"
		i=$((i + 1))
	done
	$RA period update --commit >/dev/null
	ENV="$ENV S3_REGIONS='$REGIONS' S3_REGION=${REGIONS%% *} S3_ENDPOINT=http://127.0.0.1:$RGW_PORT"
	log "realm/zonegroups configured: $REGIONS"
fi

for i in $(seq 0 $((NGW - 1))); do
	mkdir -p "$D/rgw.$i"
	radosgw -c "$C" -n client.rgw.$i 9>&- # daemonizes; the first one creates the rgw pools
done
for i in $(seq 0 $((NGW - 1))); do
	P=$((RGW_PORT + i))
	for n in $(seq 1 480); do curl -s -m 5 -o /dev/null "http://127.0.0.1:$P/" && break; sleep 0.25; done
	curl -s -m 5 -o /dev/null "http://127.0.0.1:$P/" || die "radosgw on $P did not answer; see $D/log"
	log "radosgw answering on http://127.0.0.1:$P"
done

# The user is made in the metadata-master zone; other regions get it by sync.
radosgw-admin -c "$C" user create --uid=tester --display-name=tester \
	--access-key="$AK" --secret-key="$SK" >"$D/user.json"
if [ "$NGW" -gt 1 ]; then
	for R in ${REGIONS#* }; do
		for n in $(seq 1 240); do
			radosgw-admin -c "$C" user info --uid=tester --rgw-zonegroup="$R" --rgw-zone="$R" >/dev/null 2>&1 && break
			sleep 0.25
		done
	done
fi
echo "$ENV" >"$D/env.sh"
seq "$RGW_PORT" $((RGW_PORT + NGW - 1)) | tr '\n' ' ' >"$D/gateways"
echo "$WANT" >"$D/state"
[ "$FIXTURE" = 1 ] && touch "$D/fixture-owned"
log "ready in $D: access=$AK secret=$SK (source $D/env.sh)"
