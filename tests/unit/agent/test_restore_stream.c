/* Tests agent/pipeline/restore_stream.c over a posix storage in a temporary
 * folder: a good object round-trips (into a filter, an fd and a child's
 * stdin), and a missing, truncated, resized, altered or foreign object each
 * fails with its own error before or instead of a false success. */
#include "agent/pipeline.h"
#include "agent/pipeline/restore_stream.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define KEY "src/20260101T000000.000Z-0a0b0c0d/dump.zst.age"
#define PLAIN_LEN (700 * 1024)

static struct {
	char dir[512];
	struct storage *st;
	struct age_identities *ids, *other;
	uint8_t *plain;
	/* The object as the manifest describes it. */
	char sha[HASH_SHA256_HEX_LEN + 1];
	uint64_t stored;
} t;

/* A sink that keeps what it gets. */
static int keep_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops keep_ops = {"keep", keep_write, NULL, NULL};

/* Stores plain as KEY the way a backup does: zstd, age, sha256/size. */
static void store(const struct age_recipients *r, const uint8_t *plain, size_t len)
{
	struct storage_write *w = NULL;
	struct filter *zstd = NULL, *age = NULL, *hash = NULL, *sink = NULL;

	assert_int_equal(storage_write_new(t.st, KEY, &w), 0);
	assert_int_equal(storage_filter_new(w, &sink), 0);
	assert_int_equal(hash_filter_new(&hash), 0);
	assert_int_equal(age_encrypt_filter_new(r, NULL, NULL, &age), 0);
	assert_int_equal(zstd_filter_compress_new(3, 0, &zstd), 0);
	filter_chain(zstd, age, hash, sink, NULL);
	assert_int_equal(filter_write(zstd, plain, len), 0);
	assert_int_equal(filter_finish(zstd), 0);
	hash_filter_result(hash, t.sha, &t.stored);
	filter_chain_free(zstd);
}

static int setup(void **state)
{
	char identity[AGE_IDENTITY_LEN + 1], recipient[AGE_RECIPIENT_LEN + 1];
	char other[AGE_IDENTITY_LEN + 1], other_rcpt[AGE_RECIPIENT_LEN + 1];
	struct storage_options opts = {.type = "posix"};
	struct age_recipients *r = NULL;
	uint32_t x = 1;

	(void)state;
	/* As coffer does: a client that exits is an error return, not a kill. */
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(age_init(), 0);
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	snprintf(t.dir, sizeof(t.dir), "%s/restore-stream.%d", COFFER_TEST_TMP, (int)getpid());
	fs_remove_tree(t.dir);
	assert_int_equal(fs_mkdir_p(t.dir, 0700), 0);
	opts.posix.path = t.dir;
	assert_int_equal(storage_open(&opts, &t.st), 0);
	assert_int_equal(age_keygen(identity, recipient), 0);
	assert_int_equal(age_keygen(other, other_rcpt), 0);
	assert_int_equal(age_recipients_new(&r), 0);
	assert_int_equal(age_recipients_add(r, recipient), 0);
	assert_int_equal(age_identities_new(&t.ids), 0);
	assert_int_equal(age_identities_add(t.ids, identity), 0);
	assert_int_equal(age_identities_new(&t.other), 0);
	assert_int_equal(age_identities_add(t.other, other), 0);
	/* Half compressible text, half noise: several age chunks and zstd blocks. */
	t.plain = malloc(PLAIN_LEN);
	for (size_t i = 0; i < PLAIN_LEN; i++) {
		x = x * 1664525u + 1013904223u;
		t.plain[i] = i < PLAIN_LEN / 2 ? (uint8_t)('a' + i % 23) : (uint8_t)(x >> 24);
	}
	store(r, t.plain, PLAIN_LEN);
	age_recipients_free(r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	storage_free(t.st);
	age_identities_free(t.ids);
	age_identities_free(t.other);
	free(t.plain);
	fs_remove_tree(t.dir);
	return 0;
}

/* The manifest's view of the object; tests change a field to lie. */
static struct catalog_object object(char *sha, char *key)
{
	static char name[] = "dump", format[] = "raw", zstd[] = "zstd", age[] = "age";
	struct catalog_object o;

	memset(&o, 0, sizeof(o));
	o.name = name;
	o.key = key;
	o.format = format;
	o.compression = zstd;
	o.encryption = age;
	o.raw_bytes = PLAIN_LEN;
	o.stored_bytes = t.stored;
	snprintf(sha, HASH_SHA256_HEX_LEN + 1, "%s", t.sha);
	o.sha256 = sha;
	return o;
}

/* Restores o into a keeping sink; returns the code, out holds what came. */
static int restore(const struct catalog_object *o, const struct age_identities *ids,
                   struct buf *out)
{
	struct filter *sink;

	buf_init(out, 4 * PLAIN_LEN);
	sink = filter_new(&keep_ops, out);
	assert_non_null(sink);
	return restore_stream_run(t.st, o, ids, sink, 0);
}

static void test_roundtrip(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY;
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	assert_int_equal(restore(&o, t.ids, &out), 0);
	assert_int_equal(out.len, PLAIN_LEN);
	assert_memory_equal(out.data, t.plain, PLAIN_LEN);
	buf_free(&out);
}

static void test_roundtrip_fd(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY, path[600];
	struct catalog_object o = object(sha, key);
	struct buf out;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/restored", t.dir);
	f = fopen(path, "w+");
	assert_non_null(f);
	assert_int_equal(restore_stream_to_fd(t.st, &o, t.ids, fileno(f), 0), 0);
	fclose(f);
	buf_init(&out, 4 * PLAIN_LEN);
	assert_int_equal(fs_read_file(path, 4 * PLAIN_LEN, &out), 0);
	assert_int_equal(out.len, PLAIN_LEN);
	assert_memory_equal(out.data, t.plain, PLAIN_LEN);
	buf_free(&out);
	unlink(path);
}

static void test_to_child(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY, path[600], cmd[700];
	struct catalog_object o = object(sha, key);
	struct proc_spec spec;
	struct buf out;

	(void)state;
	snprintf(path, sizeof(path), "%s/from-child", t.dir);
	snprintf(cmd, sizeof(cmd), "cat > '%s'", path);
	memset(&spec, 0, sizeof(spec));
	spec.label = "cat";
	spec.shell = cmd;
	assert_int_equal(restore_stream_to_child(t.st, &o, t.ids, &spec, 0), 0);
	buf_init(&out, 4 * PLAIN_LEN);
	assert_int_equal(fs_read_file(path, 4 * PLAIN_LEN, &out), 0);
	assert_int_equal(out.len, PLAIN_LEN);
	assert_memory_equal(out.data, t.plain, PLAIN_LEN);
	buf_free(&out);
	unlink(path);

	/* A client that fails: its error, not the broken pipe it causes. */
	spec.shell = "echo 'no such role' >&2; exit 3";
	assert_int_equal(restore_stream_to_child(t.st, &o, t.ids, &spec, 0), CF_ERR_TARGET);
	assert_non_null(strstr(error_message(), "no such role"));
}

static void test_missing(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = "src/20260101T000000.000Z-0a0b0c0d/gone.zst.age";
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_INTEGRITY);
	assert_non_null(strstr(error_message(), "is missing"));
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* The manifest says one size, the object has another: refused before a byte. */
static void test_size_mismatch(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY;
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	o.stored_bytes++;
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_INTEGRITY);
	assert_non_null(strstr(error_message(), "truncated, extended or replaced"));
	assert_int_equal(out.len, 0);
	buf_free(&out);

	/* The plaintext size is checked too. */
	o = object(sha, key);
	o.raw_bytes--;
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_INTEGRITY);
	assert_non_null(strstr(error_message(), "the manifest says"));
	buf_free(&out);
}

static void test_hash_mismatch(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY;
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	sha[0] = sha[0] == '0' ? '1' : '0';
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_INTEGRITY);
	assert_non_null(strstr(error_message(), "does not match its manifest"));
	assert_non_null(strstr(error_message(), KEY));
	buf_free(&out);
}

static void test_wrong_identity(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY;
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	assert_int_equal(restore(&o, t.other, &out), CF_ERR_AGE_NOMATCH);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* Runs after the others: it cuts the stored object short. */
static void test_truncated(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY, path[600];
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", t.dir, KEY);
	assert_int_equal(truncate(path, (off_t)(t.stored - 1000)), 0);
	/* The manifest's size: refused before a byte is written. */
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_INTEGRITY);
	assert_non_null(strstr(error_message(), "truncated"));
	assert_int_equal(out.len, 0);
	buf_free(&out);
	/* A manifest made to agree on the size: the age stream is cut short. */
	o.stored_bytes = t.stored - 1000;
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_AGE_PAYLOAD);
	assert_true(out.len < PLAIN_LEN);
	buf_free(&out);
}

/* Last: a cancellation cannot be undone in this process. */
static void test_cancelled(void **state)
{
	char sha[HASH_SHA256_HEX_LEN + 1], key[] = KEY;
	struct catalog_object o = object(sha, key);
	struct buf out;

	(void)state;
	o.stored_bytes = t.stored - 1000;
	cancel_set(0);
	assert_int_equal(restore(&o, t.ids, &out), CF_ERR_INTERRUPTED);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_roundtrip_fd),
	    cmocka_unit_test(test_to_child),       cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_size_mismatch),  cmocka_unit_test(test_hash_mismatch),
	    cmocka_unit_test(test_wrong_identity), cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_cancelled),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
