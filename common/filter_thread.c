/*
 * filter_thread: a pass-through filter that hands the stream to a worker
 * thread, so the filters before it and the filters after it run on two cores
 * (restore decrypts in the calling thread and decompresses in the worker).
 *
 * Memory is bounded: nbufs buffers of bufsize bytes. The producer copies into
 * a free buffer and blocks when all are full; the worker pushes each full
 * buffer downstream in order. An error downstream is kept (with its message,
 * which is per thread) and returned to the producer by its next write or by
 * finish. finish drains the queue and joins the worker before the chain's
 * finish goes on downstream in the calling thread; the join orders every
 * access the worker made before it.
 */
#include "common/common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct filter_thread {
	struct filter *self;
	pthread_t worker;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* any change of count, eof, stop or err */
	uint8_t **bufs;
	size_t *lens;
	size_t nbufs, bufsize;
	size_t head;  /* next full buffer for the worker */
	size_t count; /* full buffers queued */
	size_t fill;  /* bytes in the buffer the producer is filling: bufs[(head+count)%n] */
	int eof, stop, err;
	char errmsg[1024];
};

static void *filter_thread_main(void *arg)
{
	struct filter_thread *t = arg;

	pthread_mutex_lock(&t->mu);
	for (;;) {
		size_t i;
		int rc;

		while (!t->count && !t->eof && !t->stop)
			pthread_cond_wait(&t->cv, &t->mu);
		if (t->stop || !t->count)
			break;
		i = t->head;
		pthread_mutex_unlock(&t->mu);
		rc = filter_emit(t->self, t->bufs[i], t->lens[i]);
		pthread_mutex_lock(&t->mu);
		if (rc) {
			t->err = rc;
			memcpy(t->errmsg, error_message(), sizeof(t->errmsg) - 1);
			t->errmsg[sizeof(t->errmsg) - 1] = '\0';
			pthread_cond_broadcast(&t->cv);
			break;
		}
		t->head = (t->head + 1) % t->nbufs;
		t->count--;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* Re-records the worker's error in the calling thread. Called with mu held. */
static int filter_thread_error(struct filter_thread *t)
{
	return error_set(t->err, "%s", t->errmsg);
}

/* Queues the buffer being filled. Called with mu held. */
static int filter_thread_queue(struct filter_thread *t)
{
	size_t i = (t->head + t->count) % t->nbufs;

	t->lens[i] = t->fill;
	t->count++;
	t->fill = 0;
	pthread_cond_broadcast(&t->cv);
	/* Wait until the next buffer to fill is free. */
	while (t->count == t->nbufs && !t->err)
		pthread_cond_wait(&t->cv, &t->mu);
	return t->err ? filter_thread_error(t) : 0;
}

static int filter_thread_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct filter_thread *t = f->ctx;
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	if (t->err)
		rc = filter_thread_error(t);
	while (!rc && len > 0) {
		/* The buffer being filled is not visible to the worker, so the copy
		 * needs no lock; it is held anyway, as contention is per buffer. */
		size_t i = (t->head + t->count) % t->nbufs;
		size_t n = t->bufsize - t->fill < len ? t->bufsize - t->fill : len;

		memcpy(t->bufs[i] + t->fill, data, n);
		t->fill += n;
		data += n;
		len -= n;
		if (t->fill == t->bufsize)
			rc = filter_thread_queue(t);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static int filter_thread_finish(struct filter *f)
{
	struct filter_thread *t = f->ctx;
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	if (t->fill && !t->err)
		rc = filter_thread_queue(t);
	t->eof = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->worker, NULL);
	t->started = 0;
	if (!rc && t->err)
		rc = filter_thread_error(t);
	return rc;
}

static void filter_thread_free(struct filter *f)
{
	struct filter_thread *t = f->ctx;

	if (!t)
		return;
	if (t->started) {
		pthread_mutex_lock(&t->mu);
		t->stop = 1;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->worker, NULL);
	}
	for (size_t i = 0; t->bufs && i < t->nbufs; i++)
		free(t->bufs[i]);
	free(t->bufs);
	free(t->lens);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}

static const struct filter_ops filter_thread_ops = {"thread", filter_thread_write,
                                                    filter_thread_finish, filter_thread_free};

int filter_thread_new(size_t bufsize, size_t nbufs, struct filter **out)
{
	struct filter_thread *t = calloc(1, sizeof(*t));
	struct filter *f;

	if (!t)
		return error_set(CF_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->nbufs = nbufs < 2 ? 2 : nbufs;
	t->bufsize = bufsize ? bufsize : 1;
	t->bufs = calloc(t->nbufs, sizeof(*t->bufs));
	t->lens = calloc(t->nbufs, sizeof(*t->lens));
	for (size_t i = 0; t->bufs && i < t->nbufs; i++)
		if (!(t->bufs[i] = malloc(t->bufsize)))
			break;
	f = filter_new(&filter_thread_ops, t);
	if (!f)
		return CF_ERR_NOMEM; /* t was freed through ops->free */
	if (!t->lens || !t->bufs || !t->bufs[t->nbufs - 1]) {
		filter_chain_free(f);
		return error_set(CF_ERR_NOMEM, "out of memory for %zu buffers of %zu bytes", nbufs,
		                 bufsize);
	}
	t->self = f;
	if (pthread_create(&t->worker, NULL, filter_thread_main, t) != 0) {
		filter_chain_free(f);
		return error_set(CF_ERR_INTERNAL, "cannot start a pipeline thread");
	}
	t->started = 1;
	*out = f;
	return 0;
}
