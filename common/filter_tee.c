/*
 * filter_tee: one input stream copied to several branches (one chain per
 * storage target, say), each behind its own filter_thread so a slow branch
 * costs its own core and a bounded number of buffers, not the others' time
 * until its buffers are full (or, asked for no threads, written in turn).
 *
 * A branch that fails is detached: its chain is freed without a finish (so
 * its sink aborts what it was writing), its error code and message are kept
 * for filter_tee_branch_error(), and the other branches go on. The tee
 * itself fails only when fewer than min_ok branches are left. It does not
 * retry a branch, and it does not decide which branches matter: the caller's
 * min_ok does.
 *
 * Threads: the tee's own state is touched only by the producer's thread;
 * each branch's chain runs in its filter_thread's worker, and a branch's
 * error reaches the producer through that filter_thread (at its next write,
 * or at finish), with its message re-recorded in the producer's thread.
 */
#include "common/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct filter_tee_branch {
	struct filter *head; /* the branch's filter_thread, then its chain; NULL once detached */
	int err;
	char msg[512];
};

struct filter_tee {
	struct filter_tee_branch *b;
	size_t n, alive, min_ok;
	int err; /* set once fewer than min_ok branches are left: every later call fails */
	char msg[1024];
};

/* Records a branch's failure (rc, with the message error_set() recorded in this
 * thread) and frees its chain, so its sink aborts. */
static void filter_tee_detach(struct filter_tee *t, size_t i, int rc)
{
	struct filter_tee_branch *b = &t->b[i];

	b->err = rc;
	snprintf(b->msg, sizeof(b->msg), "%s", error_message());
	filter_chain_free(b->head);
	b->head = NULL;
	t->alive--;
}

/* 0 while at least min_ok branches are left; else the tee's error, sticky,
 * naming the branch whose failure was the one too many. */
static int filter_tee_check(struct filter_tee *t, size_t last)
{
	if (t->err)
		return error_set(t->err, "%s", t->msg);
	if (t->alive >= t->min_ok)
		return 0;
	t->err = t->b[last].err;
	snprintf(t->msg, sizeof(t->msg),
	         "%zu of %zu branches failed (at least %zu must succeed): %s", t->n - t->alive,
	         t->n, t->min_ok, t->b[last].msg);
	return error_set(t->err, "%s", t->msg);
}

static int filter_tee_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct filter_tee *t = f->ctx;
	size_t last = 0;
	int rc;

	if (t->err)
		return filter_tee_check(t, 0);
	rc = cancel_check();
	if (rc)
		return rc;
	for (size_t i = 0; i < t->n; i++) {
		if (!t->b[i].head)
			continue;
		rc = filter_write(t->b[i].head, data, len);
		if (rc) {
			filter_tee_detach(t, i, rc);
			last = i;
		}
	}
	f->bytes_out += len;
	return filter_tee_check(t, last);
}

static int filter_tee_finish(struct filter *f)
{
	struct filter_tee *t = f->ctx;
	size_t last = 0;

	if (t->err)
		return filter_tee_check(t, 0);
	for (size_t i = 0; i < t->n; i++) {
		int rc;

		if (!t->b[i].head)
			continue;
		rc = filter_finish(t->b[i].head);
		if (rc) {
			filter_tee_detach(t, i, rc);
			last = i;
		}
	}
	return filter_tee_check(t, last);
}

static void filter_tee_free(struct filter *f)
{
	struct filter_tee *t = f->ctx;

	if (!t)
		return;
	for (size_t i = 0; t->b && i < t->n; i++)
		filter_chain_free(t->b[i].head);
	free(t->b);
	free(t);
}

static const struct filter_ops filter_tee_ops = {"tee", filter_tee_write, filter_tee_finish,
                                                 filter_tee_free};

int filter_tee_new(size_t nbranches, struct filter **branches, size_t min_ok, size_t bufsize,
                   size_t nbufs, struct filter **out)
{
	struct filter_tee *t = NULL;
	struct filter *f = NULL;
	int rc = 0;

	*out = NULL;
	if (!nbranches || min_ok > nbranches) {
		rc = error_set(CF_ERR_INTERNAL, "tee: %zu branches, of which %zu must succeed",
		               nbranches, min_ok);
		goto fail;
	}
	t = calloc(1, sizeof(*t));
	if (t)
		t->b = calloc(nbranches, sizeof(*t->b));
	if (!t || !t->b) {
		if (t)
			free(t);
		t = NULL;
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto fail;
	}
	t->n = nbranches;
	t->min_ok = min_ok;
	f = filter_new(&filter_tee_ops, t);
	if (!f) {
		t = NULL; /* freed through ops->free */
		rc = CF_ERR_NOMEM;
		goto fail;
	}
	/* From here the tee owns each branch once its thread is made, and the
	 * branches not yet given to it are freed on failure. */
	for (size_t i = 0; i < nbranches; i++) {
		struct filter *thr = NULL;

		if (!rc && nbufs)
			rc = filter_thread_new(bufsize, nbufs, &thr);
		if (!rc) {
			if (thr)
				thr->next = branches[i];
			t->b[i].head = thr ? thr : branches[i];
			t->alive++;
		} else {
			filter_chain_free(branches[i]);
		}
		branches[i] = NULL;
	}
	if (rc) {
		filter_chain_free(f);
		return rc;
	}
	*out = f;
	return 0;
fail:
	for (size_t i = 0; i < nbranches; i++) {
		filter_chain_free(branches[i]);
		branches[i] = NULL;
	}
	return rc;
}

int filter_tee_branch_error(const struct filter *tee, size_t i)
{
	const struct filter_tee *t = tee->ctx;

	return i < t->n ? t->b[i].err : CF_ERR_INTERNAL;
}

const char *filter_tee_branch_message(const struct filter *tee, size_t i)
{
	const struct filter_tee *t = tee->ctx;

	return i < t->n ? t->b[i].msg : "";
}

size_t filter_tee_branches_left(const struct filter *tee)
{
	const struct filter_tee *t = tee->ctx;

	return t->alive;
}
