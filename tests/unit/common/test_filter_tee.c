/* Tests common/filter_tee.c: every branch gets the same bytes, a failing
 * branch is detached while the others finish, the tee fails below min_ok, a
 * slow branch holds the writer back (memory stays bounded), an abandoned tee
 * aborts every branch, and a cancellation stops the writer. */
#include "common/common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* What a test sink saw; owned by the test, so it outlives the sink. */
struct sink_state {
	struct buf data;
	size_t fail_after; /* 0: never fails; else fails once it holds this many bytes */
	int slow_us;       /* sleep per write */
	int finished;      /* finish was called and succeeded */
	int freed;         /* free was called */
	size_t received;   /* bytes taken, read by the writer's thread (atomics) */
};

static int sink_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct sink_state *s = f->ctx;
	int rc;

	if (s->slow_us)
		usleep((useconds_t)s->slow_us);
	if (s->fail_after && s->data.len + len >= s->fail_after)
		return error_set(CF_ERR_STORAGE, "test sink: the upload failed");
	rc = buf_append(&s->data, data, len);
	__atomic_add_fetch(&s->received, len, __ATOMIC_SEQ_CST);
	return rc;
}

static int sink_finish(struct filter *f)
{
	struct sink_state *s = f->ctx;

	s->finished = 1;
	return 0;
}

static void sink_free(struct filter *f)
{
	struct sink_state *s = f->ctx;

	s->freed = 1;
}

static const struct filter_ops sink_ops = {"test-sink", sink_write, sink_finish, sink_free};

static struct filter *sink_new(struct sink_state *s)
{
	buf_init(&s->data, 64 * 1024 * 1024);
	return filter_new(&sink_ops, s);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Writes n bytes of src in chunks of varying size. */
static int write_chunks(struct filter *f, const uint8_t *src, size_t n)
{
	size_t off = 0, step = 1;
	int rc = 0;

	while (!rc && off < n) {
		size_t len = step < n - off ? step : n - off;

		rc = filter_write(f, src + off, len);
		off += len;
		step = step * 3 % 70001 + 1;
	}
	return rc;
}

static void tee_identical(size_t nbufs)
{
	enum { N = 3, LEN = 1 << 20 };
	struct sink_state s[N];
	struct filter *br[N], *tee = NULL;
	uint8_t *src = malloc(LEN);

	memset(s, 0, sizeof(s));
	fill(src, LEN, 7);
	for (int i = 0; i < N; i++)
		br[i] = sink_new(&s[i]);
	assert_int_equal(filter_tee_new(N, br, N, 4096, nbufs, &tee), 0);
	for (int i = 0; i < N; i++)
		assert_null(br[i]);
	assert_int_equal(write_chunks(tee, src, LEN), 0);
	assert_int_equal(filter_finish(tee), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(filter_tee_branch_error(tee, i), 0);
		assert_int_equal(s[i].data.len, LEN);
		assert_memory_equal(s[i].data.data, src, LEN);
		assert_true(s[i].finished);
	}
	assert_int_equal(filter_tee_branches_left(tee), N);
	assert_int_equal(tee->bytes_in, LEN);
	filter_chain_free(tee);
	for (int i = 0; i < N; i++) {
		assert_true(s[i].freed);
		buf_free(&s[i].data);
	}
	free(src);
}

/* Each branch behind a thread of 4 buffers; or, with nbufs 0, none. */
static void test_tee_identical(void **state)
{
	(void)state;
	tee_identical(4);
	tee_identical(0);
}

static void tee_branch_detached(size_t nbufs)
{
	enum { N = 3, LEN = 512 * 1024 };
	struct sink_state s[N];
	struct filter *br[N], *tee = NULL;
	uint8_t *src = malloc(LEN);

	memset(s, 0, sizeof(s));
	fill(src, LEN, 11);
	s[1].fail_after = 100 * 1024;
	for (int i = 0; i < N; i++)
		br[i] = sink_new(&s[i]);
	assert_int_equal(filter_tee_new(N, br, 2, 8192, nbufs, &tee), 0);
	assert_int_equal(write_chunks(tee, src, LEN), 0);
	assert_int_equal(filter_finish(tee), 0);
	assert_int_equal(filter_tee_branches_left(tee), 2);
	assert_int_equal(filter_tee_branch_error(tee, 1), CF_ERR_STORAGE);
	assert_non_null(strstr(filter_tee_branch_message(tee, 1), "the upload failed"));
	/* The failed branch was abandoned at once: freed, never finished. */
	assert_true(s[1].freed);
	assert_false(s[1].finished);
	for (int i = 0; i < N; i += 2) {
		assert_int_equal(filter_tee_branch_error(tee, i), 0);
		assert_string_equal(filter_tee_branch_message(tee, i), "");
		assert_int_equal(s[i].data.len, LEN);
		assert_memory_equal(s[i].data.data, src, LEN);
		assert_true(s[i].finished);
	}
	filter_chain_free(tee);
	for (int i = 0; i < N; i++)
		buf_free(&s[i].data);
	free(src);
}

static void test_tee_branch_detached(void **state)
{
	(void)state;
	tee_branch_detached(3);
	tee_branch_detached(0);
}

static void test_tee_below_min_ok(void **state)
{
	enum { N = 2, LEN = 256 * 1024 };
	struct sink_state s[N];
	struct filter *br[N], *tee = NULL;
	uint8_t *src = malloc(LEN);
	int rc;

	(void)state;
	memset(s, 0, sizeof(s));
	fill(src, LEN, 13);
	s[0].fail_after = 10 * 1024;
	for (int i = 0; i < N; i++)
		br[i] = sink_new(&s[i]);
	assert_int_equal(filter_tee_new(N, br, 2, 4096, 2, &tee), 0);
	rc = write_chunks(tee, src, LEN);
	if (!rc)
		rc = filter_finish(tee);
	assert_int_equal(rc, CF_ERR_STORAGE);
	assert_non_null(strstr(error_message(), "1 of 2 branches failed"));
	assert_non_null(strstr(error_message(), "the upload failed"));
	/* Sticky: the tee stays failed. */
	assert_int_equal(filter_write(tee, "x", 1), CF_ERR_STORAGE);
	assert_int_equal(filter_tee_branch_error(tee, 0), CF_ERR_STORAGE);
	assert_int_equal(filter_tee_branch_error(tee, 1), 0);
	filter_chain_free(tee);
	assert_true(s[1].freed);
	assert_false(s[1].finished);
	for (int i = 0; i < N; i++)
		buf_free(&s[i].data);
	free(src);
}

/* A slow branch holds the writer back: what was written and not yet taken by
 * the slow sink never exceeds its thread's buffers. */
static void test_tee_backpressure(void **state)
{
	enum { N = 2, BUFSIZE = 4096, NBUFS = 2, WRITES = 64 };
	struct sink_state s[N];
	struct filter *br[N], *tee = NULL;
	uint8_t chunk[BUFSIZE];
	size_t written = 0, max_pending = 0;

	(void)state;
	memset(s, 0, sizeof(s));
	fill(chunk, sizeof(chunk), 17);
	s[1].slow_us = 2000;
	for (int i = 0; i < N; i++)
		br[i] = sink_new(&s[i]);
	assert_int_equal(filter_tee_new(N, br, N, BUFSIZE, NBUFS, &tee), 0);
	for (int i = 0; i < WRITES; i++) {
		size_t got, pending;

		assert_int_equal(filter_write(tee, chunk, sizeof(chunk)), 0);
		written += sizeof(chunk);
		got = __atomic_load_n(&s[1].received, __ATOMIC_SEQ_CST);
		pending = written - got;
		if (pending > max_pending)
			max_pending = pending;
		assert_true(pending <= (size_t)NBUFS * BUFSIZE);
	}
	/* It was slow enough to fill its buffers at least once. */
	assert_true(max_pending >= BUFSIZE);
	assert_int_equal(filter_finish(tee), 0);
	assert_int_equal(s[1].data.len, written);
	filter_chain_free(tee);
	for (int i = 0; i < N; i++)
		buf_free(&s[i].data);
}

/* Freeing a tee that was not finished abandons every branch. */
static void test_tee_abandon(void **state)
{
	enum { N = 3 };
	struct sink_state s[N];
	struct filter *br[N], *tee = NULL;
	uint8_t chunk[10000];

	(void)state;
	memset(s, 0, sizeof(s));
	fill(chunk, sizeof(chunk), 19);
	for (int i = 0; i < N; i++)
		br[i] = sink_new(&s[i]);
	assert_int_equal(filter_tee_new(N, br, 1, 1024, 2, &tee), 0);
	assert_int_equal(filter_write(tee, chunk, sizeof(chunk)), 0);
	filter_chain_free(tee);
	for (int i = 0; i < N; i++) {
		assert_true(s[i].freed);
		assert_false(s[i].finished);
		buf_free(&s[i].data);
	}
}

static void test_tee_bad_arguments(void **state)
{
	struct sink_state s[2];
	struct filter *br[2], *tee = NULL;

	(void)state;
	memset(s, 0, sizeof(s));
	br[0] = sink_new(&s[0]);
	br[1] = sink_new(&s[1]);
	assert_int_equal(filter_tee_new(2, br, 3, 1024, 2, &tee), CF_ERR_INTERNAL);
	assert_null(tee);
	/* The branches were taken over and freed. */
	assert_null(br[0]);
	assert_true(s[0].freed && s[1].freed);
	buf_free(&s[0].data);
	buf_free(&s[1].data);
}

/* Last: a cancellation cannot be undone in this process. */
static void test_tee_cancel(void **state)
{
	struct sink_state s[2];
	struct filter *br[2], *tee = NULL;

	(void)state;
	memset(s, 0, sizeof(s));
	br[0] = sink_new(&s[0]);
	br[1] = sink_new(&s[1]);
	assert_int_equal(filter_tee_new(2, br, 2, 1024, 2, &tee), 0);
	assert_int_equal(filter_write(tee, "abc", 3), 0);
	cancel_set(0);
	assert_int_equal(filter_write(tee, "def", 3), CF_ERR_INTERRUPTED);
	filter_chain_free(tee);
	assert_false(s[0].finished);
	assert_true(s[0].freed && s[1].freed);
	buf_free(&s[0].data);
	buf_free(&s[1].data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tee_identical),    cmocka_unit_test(test_tee_branch_detached),
	    cmocka_unit_test(test_tee_below_min_ok), cmocka_unit_test(test_tee_backpressure),
	    cmocka_unit_test(test_tee_abandon),      cmocka_unit_test(test_tee_bad_arguments),
	    cmocka_unit_test(test_tee_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
