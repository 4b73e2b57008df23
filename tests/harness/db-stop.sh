#!/bin/bash
# db-stop.sh: stops the servers db-start.sh started in DIR and leaves no
# daemon behind.
#
# Usage:  db-stop.sh [--fixture] [--only pg|my|redis] [DIR] [--purge]
#   DIR default $COFFER_DB_DIR, else $COFFER_DB_DEFAULT_DIR, else /tmp/coffer-db.
#   --fixture (CTest's harness/db_stop): only a harness that db-start.sh
#   --fixture made (DIR/fixture-owned) is stopped. --only X stops only server X
#   (db_pg_stop, db_my_stop): the harness stays, db-start.sh --only X starts it
#   again on its data. --purge deletes DIR.
# The servers of DIR are those named by their pid files and, whatever the pid
# files say (stale, missing), every process whose command line holds DIR's
# marker: "-D DIR/pg/data" (postgres), "--defaults-file=DIR/my/my.cnf"
# (mariadbd), "DIR/redis/redis.conf" (redis-server's process title). Each gets
# its clean shutdown signal (postgres SIGINT, i.e. pg_ctl stop -m fast;
# mariadbd SIGTERM; redis-server SIGTERM, which saves nothing: no save points),
# all at once; one still alive 15 s later gets SIGKILL. A full stop removes
# DIR/state, so that the next db-start.sh makes the harness anew.
# Exit status 0, unless a server survived SIGKILL.
set -u
FIXTURE=0
PURGE=0
ONLY=
D=
while [ $# -gt 0 ]; do
	case $1 in
	--fixture) FIXTURE=1 ;;
	--purge) PURGE=1 ;;
	--only) ONLY=${2:-}; shift ;;
	--only=*) ONLY=${1#--only=} ;;
	-*) echo "usage: db-stop.sh [--fixture] [--only pg|my|redis] [DIR] [--purge]" >&2; exit 2 ;;
	*) D=$1 ;;
	esac
	shift
done
case $ONLY in "" | pg | my | redis) ;; *) echo "db-stop.sh: --only pg|my|redis" >&2; exit 2 ;; esac
D=$(realpath -m -- "${D:-${COFFER_DB_DIR:-${COFFER_DB_DEFAULT_DIR:-/tmp/coffer-db}}}") || exit 2
if [ "$FIXTURE" = 1 ] && [ -z "$ONLY" ] && [ ! -f "$D/fixture-owned" ]; then
	echo "[db-stop] $D was not started by the fixture: left running"
	exit 0
fi
t0=$(date +%s%N)

# has_marker PID MARKER: one of PID's arguments is MARKER, or (for a process
# title rewritten into one string) the command line has " MARKER" at its end
# or followed by a space.
has_marker() {
	local cl
	[ -r "/proc/$1/cmdline" ] || return 1
	tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2" && return 0
	cl=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	cl=" ${cl% } "
	[[ "$cl" == *" $2 "* ]]
}

# pids KIND: the running servers of DIR of KIND (pg, my, redis).
pids() {
	local kind=$1 comm marker pidfile pid p
	case $kind in
	pg) comm=postgres marker=$D/pg/data pidfile=$D/pg/data/postmaster.pid ;;
	my) comm=mariadbd marker=--defaults-file=$D/my/my.cnf pidfile=$D/my/mariadbd.pid ;;
	redis) comm=redis-server marker=$D/redis/redis.conf pidfile=$D/redis/redis.pid ;;
	esac
	{
		if [ -f "$pidfile" ]; then
			pid=$(head -n 1 "$pidfile" 2>/dev/null)
			# a stale pid file may name an unrelated process: check it is ours
			[[ "$pid" =~ ^[0-9]+$ ]] && has_marker "$pid" "$marker" && echo "$pid"
		fi
		for p in /proc/[0-9]*; do
			read -r c 2>/dev/null <"$p/comm" || continue
			[ "$c" = "$comm" ] || continue
			has_marker "${p#/proc/}" "$marker" && echo "${p#/proc/}"
		done
	} | sort -u
}

# alive PID: PID runs (a zombie waiting for its reaper does not count).
alive() {
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

KINDS="pg my redis"
[ -n "$ONLY" ] && KINDS=$ONLY
all=""
for k in $KINDS; do
	ps=$(pids "$k")
	[ -n "$ps" ] || continue
	case $k in
	pg) sig=INT ;;   # fast shutdown, as pg_ctl stop -m fast
	*) sig=TERM ;;
	esac
	# shellcheck disable=SC2086
	kill -s "$sig" $ps 2>/dev/null
	all="$all $ps"
done
alive=""
if [ -n "$all" ]; then
	for _ in $(seq 1 300); do
		alive=""
		for pid in $all; do alive "$pid" && alive="$alive $pid"; done
		[ -z "$alive" ] && break
		sleep 0.05
	done
fi
if [ -n "$alive" ]; then
	echo "db-stop: SIGKILL to$alive" >&2
	# shellcheck disable=SC2086
	kill -KILL $alive 2>/dev/null
	sleep 0.3
fi
left=""
for k in $KINDS; do left="$left$(pids "$k" | tr '\n' ' ')"; done
# the postmaster's children (no marker) end when it ends; a SIGKILLed one's
# pid file stays and PostgreSQL copes with it at the next start.
if [ -z "$ONLY" ]; then
	rm -f "$D/state" "$D/fixture-owned"
fi
ms=$((($(date +%s%N) - t0) / 1000000))
if [ -n "${left// /}" ]; then
	echo "db-stop: servers of $D still alive: $left" >&2
	exit 1
fi
[ "$PURGE" = 1 ] && [ -z "$ONLY" ] && rm -rf "$D" "$D.lock"
printf '[db-stop %d.%03ds] stopped %s%s\n' $((ms / 1000)) $((ms % 1000)) "${ONLY:+$ONLY of }" "$D"
exit 0
