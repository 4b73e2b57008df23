/*
 * cancel: the one cancellation value of a process. A signal handler (or a
 * test) sets it; every layer that waits polls it: the S3 driver's transfer
 * callback and its backoff, the Kubernetes client, the child-process loops,
 * the filter threads. It carries no context of its own: a process runs one
 * command, and a signal cancels all of it.
 */
#include "common/common.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

static volatile sig_atomic_t cancel_signal;

void cancel_set(int sig)
{
	cancel_signal = sig ? sig : -1;
}

int cancel_requested(void)
{
	return cancel_signal != 0;
}

int cancel_check(void)
{
	if (!cancel_signal)
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

		if (cancel_signal)
			break;
		while (nanosleep(&ts, &ts) && errno == EINTR && !cancel_signal)
			;
		ms -= slice;
	}
	return cancel_check();
}
