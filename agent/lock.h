/*
 * lock: one run of a source at a time. A backup holds an exclusive flock on
 * <catalog>/locks/<source>.lock for the whole run, so a timer's run and a
 * manual one never overlap: the second stops at once (CF_ERR_BUSY, exit 10)
 * naming the holder, or with wait waits for it.
 *
 * The kernel releases a flock when its process dies, so a lock cannot be
 * left stale; the file's text (pid, host, start, written when taken and
 * emptied when released) tells a holder that died (kill -9, a crash) from
 * one that finished: its lock is taken over with a warning.
 */
#ifndef COFFER_LOCK_H
#define COFFER_LOCK_H

#include "agent/agent.h"

struct lock;

/*
 * Takes the lock of source. wait: wait (checking for signals) while another
 * process holds it. Errors: CF_ERR_BUSY (held, not waiting: the message
 * names pid, host and start of the holder and --wait), CF_ERR_IO,
 * CF_ERR_INTERRUPTED, CF_ERR_NOMEM.
 */
int lock_take(const struct config *cfg, const char *source, int wait, struct lock **out);
/* Releases it (NULL does nothing). */
void lock_release(struct lock *l);

#endif
