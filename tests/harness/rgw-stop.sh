#!/bin/bash
# rgw-stop.sh: stops the cluster rgw-start.sh made in DIR and leaves no daemon
# behind. Adapted from shared/s3/stop-rgw.sh.
#
# Usage:  rgw-stop.sh [--fixture] [DIR] [--purge]
#   DIR default $COFFER_RGW_DIR, else $COFFER_RGW_DEFAULT_DIR, else
#   /tmp/coffer-rgw; --purge deletes DIR. --fixture (CTest's harness/rgw_stop):
#   only a cluster that rgw-start.sh --fixture made (DIR/fixture-owned) is stopped.
# The daemons of DIR are those named by its pid files and, whatever the pid
# files say (stale, missing), every ceph-mon, ceph-osd or radosgw process whose
# command line holds "-c DIR/ceph.conf" (rgw-start.sh starts them so). The
# gateways get SIGTERM first, then the OSD, then the mon; a daemon still alive
# 5 s after its SIGTERM gets SIGKILL. Exit status 0, unless a daemon survived SIGKILL.
set -u
FIXTURE=0
PURGE=0
D=
for a in "$@"; do
	case $a in
	--fixture) FIXTURE=1 ;;
	--purge) PURGE=1 ;;
	-*) echo "usage: rgw-stop.sh [--fixture] [DIR] [--purge]" >&2; exit 2 ;;
	*) D=$a ;;
	esac
done
D=$(realpath -m -- "${D:-${COFFER_RGW_DIR:-${COFFER_RGW_DEFAULT_DIR:-/tmp/coffer-rgw}}}") || exit 2
if [ "$FIXTURE" = 1 ] && [ ! -f "$D/fixture-owned" ]; then
	echo "[rgw-stop] $D was not started by the fixture: left running"
	exit 0
fi
C="$D/ceph.conf"
t0=$(date +%s%N)

# pids of DIR's daemons whose name matches $1 (a regex on the process name).
daemons_of() {
	local re=$1 p comm f pid
	{
		for f in "$D"/run/*.pid; do
			[ -f "$f" ] || continue
			pid=$(cat "$f" 2>/dev/null) || continue
			[[ "$pid" =~ ^[0-9]+$ ]] || continue
			# a stale pid file may name an unrelated process: check it is ours
			[ -r "/proc/$pid/cmdline" ] || continue
			tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$C" || continue
			echo "$pid"
		done
		for p in /proc/[0-9]*; do
			read -r comm <"$p/comm" 2>/dev/null || continue
			case $comm in ceph-mon | ceph-osd | radosgw) ;; *) continue ;; esac
			tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$C" || continue
			echo "${p#/proc/}"
		done
	} | while read -r pid; do
		read -r comm <"/proc/$pid/comm" 2>/dev/null || continue
		[[ "$comm" =~ $re ]] && echo "$pid"
	done | sort -u
}

# stop_all REGEX: SIGTERM to all, wait up to 5 s, SIGKILL the rest.
stop_all() {
	local pids pid i alive
	pids=$(daemons_of "$1")
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for i in $(seq 1 50); do
		alive=""
		for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
		[ -z "$alive" ] && return 0
		sleep 0.1
	done
	echo "rgw-stop: SIGKILL to$alive" >&2
	# shellcheck disable=SC2086
	kill -KILL $alive 2>/dev/null
	sleep 0.2
}

# One kind at a time (about 2 s each): an OSD whose mon is gone, or a gateway
# whose OSD is gone, takes longer to shut down.
stop_all '^radosgw$'
stop_all '^ceph-osd$'
stop_all '^ceph-mon$'
left=$(daemons_of '.')
rm -f "$D"/run/*.pid "$D/state" "$D/fixture-owned"
ms=$((($(date +%s%N) - t0) / 1000000))
if [ -n "$left" ]; then
	echo "rgw-stop: daemons of $D still alive: $left" >&2
	exit 1
fi
[ "$PURGE" = 1 ] && rm -rf "$D" "$D.lock"
printf '[rgw-stop %d.%03ds] stopped %s\n' $((ms / 1000)) $((ms % 1000)) "$D"
exit 0
