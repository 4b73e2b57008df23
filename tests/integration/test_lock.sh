#!/bin/bash
# One run of a source at a time: a second backup of a source that another
# coffer is backing up stops at once (exit 10, naming the holder) before
# storing anything, or waits with --wait; another source runs meanwhile; a
# lock whose holder was killed (kill -9) is taken over with a warning. And
# a source's nice / ionice apply to its dump processes.
. "$(dirname "$0")/lib.sh"
t_setup lock

t_config <<EOF
[source slow]
type = command
command = sh -c "if [ -f $T/hang ]; then sleep 30; fi; sleep 2; echo slow"

[source other]
type = command
command = echo other
EOF

# wait_locked: until the lock of source slow names a holder.
wait_locked() {
	for _ in $(seq 1 100); do
		[ -s "$CATALOG/locks/slow.lock" ] && return 0
		sleep 0.05
	done
	return 1
}

"$COFFER_BIN" --config "$CONF" backup slow >"$T/first.out" 2>"$T/first.err" &
first=$!
check "the first run takes the lock" wait_locked
cf backup slow
check_rc "a second run of the same source stops at once" 10
check_one_error_line "with one error line"
check_grep "it names the holder and --wait" "$ERR" "coffer: error: source slow is being backed up by another coffer \(pid $first host .* started .*\): this run stops \(give --wait to wait for it\)"
cf backup other
check_rc "another source runs meanwhile" 0
cf backup slow --wait
check_rc "--wait waits for the first run, then backs up" 0
wait $first
RC=$?
check_rc "the first run completes" 0
check_eq "two backups of slow, both complete" 2 "$(count_status slow complete)"
check_eq "the lock is free and empty" 0 "$(stat -c %s "$CATALOG/locks/slow.lock")"

# kill -9: the kernel frees the lock, the next run takes it over.
touch "$T/hang"
"$COFFER_BIN" --config "$CONF" backup slow >/dev/null 2>&1 &
pid=$!
check "the run to be killed takes the lock" wait_locked
kill -9 $pid
wait $pid 2>/dev/null
pkill -f "sleep 30" || true
rm -f "$T/hang"
cf backup slow
check_rc "the next run takes over the lock of the killed one" 0
check_grep "with a warning naming it" "$ERR" "warning: source slow: taking over the lock that a coffer which died left \(pid $pid "
# nice / ionice: a source's dump processes run at lower CPU and I/O
# priority; another source's at coffer's own.
cat >>"$CONF" <<EOF

[source low]
type = command
command = sh -c 'ps -o ni= -p \$\$; ionice -p \$\$'
nice = 10
ionice = idle

[source normal]
type = command
command = sh -c 'ps -o ni= -p \$\$; ionice -p \$\$'
EOF
cf backup low normal
check_rc "backups with and without nice/ionice" 0
cf restore latest --source low --stdout
check_eq "the dump ran at nice 10, ionice idle" "10 idle" "$(tr -s ' \n' ' ' <"$OUT" | sed 's/^ //; s/ $//')"
cf restore latest --source normal --stdout
check_eq "the other at coffer's own priority" "0 none: prio 0" "$(tr -s ' \n' ' ' <"$OUT" | sed 's/^ //; s/ $//')"
t_finish
