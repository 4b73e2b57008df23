/* Tests agent/source/redis_rdb.c: the CRC-64 Redis uses, and the check that
 * passes a whole RDB on (without redis-cli's trailing EOF mark) and refuses a
 * truncated or corrupt one, whatever the chunking. */
#include "agent/source/redis_rdb.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const char mark[] = "0123456789abcdef0123456789abcdef01234567";

/* A fake RDB of n bytes of body: magic, body, 0xFF, CRC-64 (or zero). */
static size_t make_rdb(uint8_t *out, size_t body, int with_crc)
{
	size_t n = 0;
	uint64_t crc;

	memcpy(out, "REDIS0010", 9);
	n = 9;
	for (size_t i = 0; i < body; i++)
		out[n++] = (uint8_t)(i * 7 + 3); /* includes 0xFF bytes */
	out[n++] = 0xff;
	crc = with_crc ? redis_rdb_crc64(0, out, n) : 0;
	for (int i = 0; i < 8; i++)
		out[n++] = (uint8_t)(crc >> (8 * i));
	return n;
}

static int sink_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops sink_ops = {"sink", sink_write, NULL, NULL};

/* Feeds data in chunks of step bytes, then ends with rdb_len; returns rc,
 * the passed-on bytes in got. */
static int run_check(const uint8_t *data, size_t len, size_t step, long long rdb_len,
                     struct buf *got, int *checksummed)
{
	struct filter *sink, *check = NULL;
	int rc;

	buf_init(got, 1 << 20);
	sink = filter_new(&sink_ops, got);
	assert_non_null(sink);
	assert_int_equal(redis_rdb_filter_new(sink, &check), 0);
	rc = 0;
	for (size_t off = 0; !rc && off < len; off += step)
		rc = filter_write(check, data + off, len - off < step ? len - off : step);
	if (!rc)
		rc = redis_rdb_filter_end(check, rdb_len, checksummed);
	filter_chain_free(check);
	filter_chain_free(sink);
	return rc;
}

static void test_crc64_check_value(void **state)
{
	(void)state;
	assert_true(redis_rdb_crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9caULL);
	/* Incremental over odd splits equals one pass. */
	assert_true(redis_rdb_crc64(redis_rdb_crc64(0, "12345", 5), "6789", 4) ==
	            0xe9c6d914c4b8d9caULL);
	assert_true(redis_rdb_crc64(0, "", 0) == 0);
}

static void test_whole_rdb_passes(void **state)
{
	static const size_t steps[] = {1, 3, 8, 47, 48, 49, 100, 4096, 1 << 20};
	static const size_t bodies[] = {0, 1, 30, 39, 40, 41, 1000, 70000};
	static uint8_t rdb[80000];
	struct buf got;
	int sum;

	(void)state;
	for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
		size_t n = make_rdb(rdb, bodies[b], 1);

		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			/* Without and with the length redis-cli reports. */
			assert_int_equal(run_check(rdb, n, steps[i], -1, &got, &sum), 0);
			assert_int_equal(got.len, n);
			assert_memory_equal(got.data, rdb, n);
			assert_int_equal(sum, 1);
			buf_free(&got);
			assert_int_equal(run_check(rdb, n, steps[i], (long long)n, &got, &sum), 0);
			assert_int_equal(got.len, n);
			buf_free(&got);
		}
	}
}

static void test_eof_mark_is_removed(void **state)
{
	static const size_t steps[] = {1, 7, 40, 48, 4096};
	static uint8_t rdb[3000];
	struct buf got;
	size_t n;
	int sum;

	(void)state;
	n = make_rdb(rdb, 2000, 1);
	memcpy(rdb + n, mark, REDIS_RDB_MARK);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(run_check(rdb, n + REDIS_RDB_MARK, steps[i], -1, &got, &sum), 0);
		assert_int_equal(got.len, n);
		assert_memory_equal(got.data, rdb, n);
		buf_free(&got);
		assert_int_equal(
		    run_check(rdb, n + REDIS_RDB_MARK, steps[i], (long long)n, &got, &sum), 0);
		assert_int_equal(got.len, n);
		buf_free(&got);
	}
	/* A reported length that is neither the stream nor the stream minus a mark. */
	assert_int_equal(run_check(rdb, n + REDIS_RDB_MARK, 100, (long long)n - 1, &got, &sum),
	                 CF_ERR_FORMAT);
	buf_free(&got);
}

static void test_truncated_is_refused(void **state)
{
	static uint8_t rdb[5000];
	struct buf got;
	size_t n;
	int sum;

	(void)state;
	n = make_rdb(rdb, 4000, 1);
	/* Every cut near the end, and a few far from it. */
	for (size_t cut = 1; cut < 120; cut++) {
		assert_int_equal(run_check(rdb, n - cut, 512, -1, &got, &sum), CF_ERR_FORMAT);
		buf_free(&got);
	}
	for (size_t cut = 200; cut < n; cut += 613) {
		assert_int_equal(run_check(rdb, n - cut, 512, -1, &got, &sum), CF_ERR_FORMAT);
		buf_free(&got);
	}
	/* Cut, with the length redis-cli would report for the whole file. */
	assert_int_equal(run_check(rdb, n - 100, 512, (long long)n, &got, &sum), CF_ERR_FORMAT);
	buf_free(&got);
	assert_int_equal(run_check(rdb, 0, 512, -1, &got, &sum), CF_ERR_FORMAT);
	buf_free(&got);
}

static void test_corrupt_is_refused(void **state)
{
	static uint8_t rdb[5000];
	struct buf got;
	size_t n;
	int sum;

	(void)state;
	n = make_rdb(rdb, 4000, 1);
	rdb[2000] ^= 0x10;
	assert_int_equal(run_check(rdb, n, 333, -1, &got, &sum), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "checksum"));
	buf_free(&got);
	rdb[2000] ^= 0x10;
	/* Not an RDB at all: refused at the first write. */
	memcpy(rdb, "RUDIS0010", 9);
	assert_int_equal(run_check(rdb, n, 333, -1, &got, &sum), CF_ERR_FORMAT);
	assert_int_equal(got.len, 0);
	buf_free(&got);
}

static void test_no_checksum(void **state)
{
	static uint8_t rdb[500];
	struct buf got;
	size_t n;
	int sum = -1;

	(void)state;
	/* rdbchecksum no: a zero checksum; only the EOF opcode can be checked. */
	n = make_rdb(rdb, 300, 0);
	assert_int_equal(run_check(rdb, n, 64, -1, &got, &sum), 0);
	assert_int_equal(got.len, n);
	assert_int_equal(sum, 0);
	buf_free(&got);
	rdb[n - 9] = 0x00;
	assert_int_equal(run_check(rdb, n, 64, -1, &got, &sum), CF_ERR_FORMAT);
	buf_free(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc64_check_value),   cmocka_unit_test(test_whole_rdb_passes),
	    cmocka_unit_test(test_eof_mark_is_removed), cmocka_unit_test(test_truncated_is_refused),
	    cmocka_unit_test(test_corrupt_is_refused),  cmocka_unit_test(test_no_checksum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
