/*
 * cancel: the one cancellation value of a process. A signal handler (or a
 * test) sets it; every layer that waits polls it: the S3 driver's transfer
 * callback and its backoff, the Kubernetes client, the child-process loops,
 * the filter threads. It carries no context of its own: a process runs one
 * command, and a signal cancels all of it.
 *
 * The value is a lock-free atomic, so it is both async-signal-safe and
 * free of data races between threads. A thread that cleans up after a
 * cancellation (discarding a failed run's objects) opens a cleanup section:
 * there cancel_requested() is 0, so the work is done, and cancel_hurry() is
 * 1, so it is done with one attempt and short timeouts.
 */
#include "common/common.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static atomic_int cancel_signal;
static _Thread_local int cancel_cleanup_depth;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a lock-free int is needed in a signal handler");

void cancel_set(int sig)
{
	atomic_store(&cancel_signal, sig ? sig : -1);
}

int cancel_requested(void)
{
	return cancel_cleanup_depth == 0 &&
	       atomic_load_explicit(&cancel_signal, memory_order_relaxed);
}

int cancel_hurry(void)
{
	return cancel_cleanup_depth > 0 &&
	       atomic_load_explicit(&cancel_signal, memory_order_relaxed);
}

void cancel_cleanup_begin(void)
{
	cancel_cleanup_depth++;
}

void cancel_cleanup_end(void)
{
	if (cancel_cleanup_depth > 0)
		cancel_cleanup_depth--;
}

int cancel_check(void)
{
	if (!cancel_requested())
		return 0;
	return error_set(CF_ERR_INTERRUPTED, "interrupted by a signal");
}

int cancel_sleep_ms(int64_t ms)
{
	/* Slices of 50 ms: a signal wakes nanosleep at once when it lands on
	 * this thread, and a slice bounds the delay when it lands elsewhere. */
	while (ms > 0) {
		int64_t slice = ms < 50 ? ms : 50;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};

		if (cancel_requested())
			break;
		while (nanosleep(&ts, &ts) && errno == EINTR && !cancel_requested())
			;
		ms -= slice;
	}
	return cancel_check();
}
