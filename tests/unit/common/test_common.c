/* Tests common/: the bounded buffer, the filter chain's contract, backup ids,
 * timestamps and the error table. */
#include "common/common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_buf_bounds(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "12345", 5), 0);
	assert_int_equal(buf_printf(&b, "%d", 6789), 0);
	assert_string_equal((char *)b.data, "123456789");
	assert_int_equal(buf_append(&b, "ab", 2), CF_ERR_LIMIT);
	assert_int_equal(b.len, 9); /* a refused append changes nothing */
	assert_int_equal(buf_append(&b, "a", 1), 0);
	buf_consume(&b, 4);
	assert_string_equal((char *)b.data, "56789a");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	assert_null(b.data);
}

/* A filter that doubles each byte and records finish order. */
static int order[8], norder;

static int dbl_write(struct filter *f, const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t two[2] = {d[i], d[i]};
		int rc = filter_emit(f, two, 2);

		if (rc)
			return rc;
	}
	return 0;
}

static int dbl_finish(struct filter *f)
{
	order[norder++] = *(int *)f->ctx;
	return 0;
}

static int fail_write(struct filter *f, const uint8_t *d, size_t n)
{
	(void)f;
	(void)d;
	(void)n;
	return error_set(CF_ERR_STORAGE, "sink refused");
}

static const struct filter_ops dbl_ops = {"dbl", dbl_write, dbl_finish, NULL};
static const struct filter_ops fail_ops = {"fail", fail_write, NULL, NULL};

static void test_filter_chain(void **state)
{
	int one = 1, two = 2;
	struct filter *a = filter_new(&dbl_ops, &one), *b = filter_new(&dbl_ops, &two);
	struct filter *sink = NULL, *head;

	(void)state;
	assert_int_equal(filter_null_new(&sink), 0);
	head = filter_chain(a, b, sink, NULL);
	assert_ptr_equal(head, a);
	assert_int_equal(filter_write(head, "abc", 3), 0);
	assert_int_equal(filter_finish(head), 0);
	assert_int_equal(a->bytes_in, 3);
	assert_int_equal(a->bytes_out, 6);
	assert_int_equal(b->bytes_out, 12);
	assert_int_equal(sink->bytes_in, 12);
	assert_int_equal(norder, 2);
	assert_int_equal(order[0], 1); /* upstream finishes first */
	assert_int_equal(order[1], 2);
	assert_int_equal(filter_write(head, "x", 1), CF_ERR_INTERNAL); /* after finish */
	filter_chain_free(head);

	/* An error downstream travels back to the producer with its message. */
	head = filter_chain(filter_new(&dbl_ops, &one), filter_new(&fail_ops, NULL), NULL);
	assert_int_equal(filter_write(head, "a", 1), CF_ERR_STORAGE);
	assert_string_equal(error_message(), "sink refused");
	filter_chain_free(head);
}

/* A sink that checks it sees 0, 1, 2, ... (mod 251) in order. */
struct seq_sink {
	uint64_t seen;
	uint64_t fail_at; /* refuse once this many bytes arrived; 0 = never */
};

static int seq_write(struct filter *f, const uint8_t *d, size_t n)
{
	struct seq_sink *s = f->ctx;

	for (size_t i = 0; i < n; i++, s->seen++)
		if (d[i] != (uint8_t)(s->seen % 251))
			return error_set(CF_ERR_INTERNAL, "out of order at %llu",
			                 (unsigned long long)s->seen);
	if (s->fail_at && s->seen >= s->fail_at)
		return error_set(CF_ERR_NOSPACE, "sink full at %llu", (unsigned long long)s->seen);
	return 0;
}

static const struct filter_ops seq_ops = {"seq", seq_write, NULL, NULL};

static int push_seq(struct filter *head, uint64_t total)
{
	uint8_t chunk[7777];
	uint64_t pos = 0;
	int rc = 0;

	while (!rc && pos < total) {
		size_t n = (size_t)(total - pos < sizeof(chunk) ? total - pos : sizeof(chunk));

		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)((pos + i) % 251);
		rc = filter_write(head, chunk, n);
		pos += n;
	}
	return rc ? rc : filter_finish(head);
}

static void test_filter_thread(void **state)
{
	struct seq_sink sink = {0, 0};
	struct filter *t = NULL;

	(void)state;
	/* In order, across many buffer wraps, with a finish that drains. */
	assert_int_equal(filter_thread_new(4096, 3, &t), 0);
	t->next = filter_new(&seq_ops, &sink);
	assert_int_equal(push_seq(t, 10000000), 0);
	assert_int_equal(sink.seen, 10000000);
	assert_int_equal(t->bytes_out, 10000000);
	filter_chain_free(t);

	/* An error in the worker comes back to the producer with its message. */
	sink.seen = 0;
	sink.fail_at = 100000;
	assert_int_equal(filter_thread_new(4096, 3, &t), 0);
	t->next = filter_new(&seq_ops, &sink);
	assert_int_equal(push_seq(t, 10000000), CF_ERR_NOSPACE);
	assert_non_null(strstr(error_message(), "sink full"));
	filter_chain_free(t);

	/* Abandoned without finish: free stops and joins the worker. */
	sink.seen = 0;
	sink.fail_at = 0;
	assert_int_equal(filter_thread_new(4096, 2, &t), 0);
	t->next = filter_new(&seq_ops, &sink);
	assert_int_equal(filter_write(t, "\0\1\2", 3), 0);
	filter_chain_free(t);
}

static void test_backup_id(void **state)
{
	char id[BACKUP_ID_LEN + 1], id2[BACKUP_ID_LEN + 1];

	(void)state;
	backup_id_format(1795338646123LL, 0x1a2b3c4d, id);
	assert_string_equal(id, "20261122T091046.123Z-1a2b3c4d");
	assert_true(backup_id_valid(id));
	backup_id_format(1795338646124LL, 0, id2);
	assert_true(strcmp(id, id2) < 0); /* later sorts later */
	assert_false(backup_id_valid("20261122T091046.123Z-1a2b3c4"));
	assert_false(backup_id_valid("20261122T091046.123Z-1A2B3C4D"));
	assert_false(backup_id_valid("20261122X091046.123Z-1a2b3c4d"));
	assert_false(backup_id_valid("../../etc/passwd"));
	assert_false(backup_id_valid(""));
}

static void test_time_iso(void **state)
{
	char t[TIME_ISO_LEN + 1];
	int64_t ms = 0;

	(void)state;
	time_format_iso(1795338646123LL, t, sizeof(t));
	assert_string_equal(t, "2026-11-22T09:10:46.123Z");
	assert_int_equal(time_parse_iso(t, &ms), 0);
	assert_int_equal(ms, 1795338646123LL);
	assert_int_equal(time_parse_iso("2026-11-22T09:10:46Z", &ms), 0);
	assert_int_equal(ms, 1795338646000LL);
	assert_int_equal(time_parse_iso("2026-11-22T09:10:46+01:00", &ms), CF_ERR_FORMAT);
	assert_int_equal(time_parse_iso("yesterday", &ms), CF_ERR_FORMAT);
	assert_int_equal(time_parse_iso("2026-11-22T09:10:46.12Z", &ms), CF_ERR_FORMAT);
	assert_int_equal(time_parse_iso("1970-01-01T00:00:00.-50Z", &ms), CF_ERR_FORMAT);
	/* Before 1970 the millisecond field stays 0..999 and round-trips. */
	time_format_iso(-500, t, sizeof(t));
	assert_string_equal(t, "1969-12-31T23:59:59.500Z");
	assert_int_equal(time_parse_iso(t, &ms), 0);
	assert_int_equal(ms, -500);
}

static void test_error_table(void **state)
{
	(void)state;
	for (int c = 0; c > CF_ERR_LAST; c--) {
		const char *s = cf_strerror(c);

		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
	}
	assert_string_equal(cf_strerror(CF_ERR_LAST), "unknown error");
	assert_string_equal(cf_strerror(5), "unknown error");
	error_set_errno(CF_ERR_IO, 2, "cannot open %s", "x");
	assert_string_equal(error_message(), "cannot open x: No such file or directory");
	assert_int_equal(error_code(), CF_ERR_IO);
	/* Adding context to the recorded message is safe. */
	error_set(CF_ERR_IO, "%s: %s", "obj", error_message());
	assert_string_equal(error_message(), "obj: cannot open x: No such file or directory");
	error_clear();
	assert_string_equal(error_message(), "");
}

static void test_fmt_bytes(void **state)
{
	char s[32];

	(void)state;
	fmt_bytes(512, s, sizeof(s));
	assert_string_equal(s, "512 B");
	fmt_bytes(1536, s, sizeof(s));
	assert_string_equal(s, "1.5 KiB");
	fmt_bytes(3ULL << 30, s, sizeof(s));
	assert_string_equal(s, "3.0 GiB");
}

/* Text that is not UTF-8 comes back as valid UTF-8 with each bad byte as
 * \xNN; valid text, multi-byte characters included, is unchanged. */
static void test_text_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80",
	     "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"},
	    {"caf\xe9", "caf\\xe9"},
	    {"\xff\xfe", "\\xff\\xfe"},
	    {"\xc0\xaf", "\\xc0\\xaf"},                   /* overlong '/' */
	    {"\xed\xa0\x80", "\\xed\\xa0\\x80"},          /* a surrogate */
	    {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, /* past U+10FFFF */
	    {"\xe6\x97", "\\xe6\\x97"},                   /* cut short */
	    {"a\nb", "a\nb"},
	};
	char buf[16];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = fmt_text_utf8(cases[i].in);

		assert_non_null(got);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
	/* With controls: a newline cannot split a log line. */
	assert_int_equal(fmt_text_escape("a\nb\tc", buf, sizeof(buf), 1), 8);
	assert_string_equal(buf, "a\\x0ab\tc");
	/* Truncated at a whole character or escape, always terminated. */
	assert_int_equal(fmt_text_escape("abcdefghijklm\xff", buf, sizeof(buf), 0), 13);
	assert_string_equal(buf, "abcdefghijklm");
	assert_int_equal(fmt_text_escape("abcdefghijklm\xc3\xa9", buf, 15, 0), 13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_bounds),    cmocka_unit_test(test_filter_chain),
	    cmocka_unit_test(test_filter_thread), cmocka_unit_test(test_backup_id),
	    cmocka_unit_test(test_time_iso),      cmocka_unit_test(test_error_table),
	    cmocka_unit_test(test_fmt_bytes),     cmocka_unit_test(test_text_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
