/* Tests agent/zstd_filter.c: round trips single- and multi-threaded, output
 * that plain libzstd decodes, and corrupt or truncated input refused. */
#include "agent/pipeline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <cmocka.h>

/* A sink collecting everything into a buffer. */
static int collect_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops collect_ops = {"collect", collect_write, NULL, NULL};

static uint8_t *make_input(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t x = 12345;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		/* Text-like and compressible, with some noise. */
		p[i] = (i % 64) < 48 ? (uint8_t) "INSERT INTO t VALUES (1, 'abc');\n"[i % 33]
		                     : (uint8_t)(x >> 16);
	}
	return p;
}

/* Pushes in in uneven pieces through f and finishes. */
static int push(struct filter *f, const uint8_t *in, size_t n)
{
	size_t off = 0, piece = 1;
	int rc = 0;

	while (!rc && off < n) {
		size_t k = piece < n - off ? piece : n - off;

		rc = filter_write(f, in + off, k);
		off += k;
		piece = piece * 3 + 7;
		if (piece > 300000)
			piece = 1;
	}
	return rc ? rc : filter_finish(f);
}

static void roundtrip(size_t n, int workers)
{
	struct buf comp, plain;
	struct filter *c = NULL, *d = NULL, *cs, *ds;
	uint8_t *in = make_input(n);

	buf_init(&comp, 64u << 20);
	buf_init(&plain, 64u << 20);
	assert_int_equal(zstd_filter_compress_new(3, workers, &c), 0);
	cs = filter_new(&collect_ops, &comp);
	c->next = cs;
	assert_int_equal(push(c, in, n), 0);
	assert_int_equal(c->bytes_in, n);
	assert_int_equal(c->bytes_out, comp.len);
	/* Plain libzstd reads what the filter wrote (it is what `zstd -d` runs). */
	{
		unsigned long long sz = ZSTD_getFrameContentSize(comp.data, comp.len);
		uint8_t *out = malloc(n + 1);
		size_t r = ZSTD_decompress(out, n + 1, comp.data, comp.len);

		(void)sz;
		assert_false(ZSTD_isError(r));
		assert_int_equal(r, n);
		assert_memory_equal(out, in, n);
		free(out);
	}
	assert_int_equal(zstd_filter_decompress_new(&d), 0);
	ds = filter_new(&collect_ops, &plain);
	d->next = ds;
	assert_int_equal(push(d, comp.data, comp.len), 0);
	assert_int_equal(plain.len, n);
	if (n)
		assert_memory_equal(plain.data, in, n);
	filter_chain_free(c);
	filter_chain_free(d);
	buf_free(&comp);
	buf_free(&plain);
	free(in);
}

static void test_roundtrip(void **state)
{
	(void)state;
	roundtrip(0, 0);
	roundtrip(1, 0);
	roundtrip(131072, 0);
	roundtrip(5u << 20, 0);
	roundtrip(0, 2);
	roundtrip(9u << 20, 2);
}

static void test_bad_input(void **state)
{
	struct buf comp, plain;
	struct filter *c = NULL, *d = NULL;
	uint8_t *in = make_input(1u << 20);

	(void)state;
	buf_init(&comp, 16u << 20);
	buf_init(&plain, 16u << 20);
	assert_int_equal(zstd_filter_compress_new(3, 0, &c), 0);
	c->next = filter_new(&collect_ops, &comp);
	assert_int_equal(push(c, in, 1u << 20), 0);

	/* Truncated: refused at finish. */
	assert_int_equal(zstd_filter_decompress_new(&d), 0);
	d->next = filter_new(&collect_ops, &plain);
	assert_int_equal(push(d, comp.data, comp.len - 7), CF_ERR_COMPRESS);
	assert_non_null(strstr(error_message(), "truncated"));
	filter_chain_free(d);

	/* A flipped byte: the frame checksum or the decoder refuses it. */
	buf_reset(&plain);
	comp.data[comp.len / 2] ^= 0x40;
	assert_int_equal(zstd_filter_decompress_new(&d), 0);
	d->next = filter_new(&collect_ops, &plain);
	assert_int_equal(push(d, comp.data, comp.len), CF_ERR_COMPRESS);
	filter_chain_free(d);

	/* Not zstd at all; and nothing at all. */
	assert_int_equal(zstd_filter_decompress_new(&d), 0);
	assert_int_equal(filter_write(d, "hello world", 11), CF_ERR_COMPRESS);
	filter_chain_free(d);
	assert_int_equal(zstd_filter_decompress_new(&d), 0);
	assert_int_equal(filter_finish(d), CF_ERR_COMPRESS);
	filter_chain_free(d);

	filter_chain_free(c);
	buf_free(&comp);
	buf_free(&plain);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
