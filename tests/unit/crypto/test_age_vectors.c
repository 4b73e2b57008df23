/*
 * test_age_vectors: runs every C2SP/CCTV age test vector in
 * COFFER_TESTDATA/age through the decrypt filter.
 *
 * Each vector is decrypted twice, once in a single write and once in small
 * pseudo-random pieces, and both runs must give the outcome the vector
 * expects: the error code for its failure kind, and the SHA-256 of the
 * plaintext emitted (for payload failures, of what was emitted before the
 * failure, which the vectors also record). ML-KEM hybrid and armored vectors
 * are outside what coffer implements; they are counted as skipped, never as
 * passed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "crypto/crypto.h"

#define MAX_VALUES 8
#define VECTOR_FILE_MAX (64u * 1024 * 1024)

struct vector {
	char name[256];
	char expect[64];
	char payload[HASH_SHA256_HEX_LEN + 1];
	char identities[MAX_VALUES][128];
	size_t identity_count;
	char passphrases[MAX_VALUES][64];
	size_t passphrase_count;
	int armored;
	int compressed;
	const uint8_t *body;
	size_t body_len;
	struct buf inflated;
};

struct tally {
	unsigned int passed, failed, skipped_hybrid, skipped_armor;
};

static void copy_value(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Parses the "key: value" lines; returns 0 or -1. */
static int vector_parse(struct vector *v, const struct buf *file)
{
	const char *p = (const char *)file->data, *end = p + file->len;

	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *colon;
		size_t klen, vlen;
		const char *val;

		if (!nl)
			return -1;
		if (nl == p) {
			p = nl + 1;
			break;
		}
		colon = memchr(p, ':', (size_t)(nl - p));
		if (!colon || colon[1] != ' ')
			return -1;
		klen = (size_t)(colon - p);
		val = colon + 2;
		vlen = (size_t)(nl - val);
		if (klen == 6 && memcmp(p, "expect", 6) == 0) {
			copy_value(v->expect, sizeof(v->expect), val, vlen);
		} else if (klen == 7 && memcmp(p, "payload", 7) == 0) {
			copy_value(v->payload, sizeof(v->payload), val, vlen);
		} else if (klen == 8 && memcmp(p, "identity", 8) == 0) {
			if (v->identity_count == MAX_VALUES)
				return -1;
			copy_value(v->identities[v->identity_count++], sizeof(v->identities[0]),
			           val, vlen);
		} else if (klen == 10 && memcmp(p, "passphrase", 10) == 0) {
			if (v->passphrase_count == MAX_VALUES)
				return -1;
			copy_value(v->passphrases[v->passphrase_count++], sizeof(v->passphrases[0]),
			           val, vlen);
		} else if (klen == 7 && memcmp(p, "armored", 7) == 0) {
			v->armored = vlen == 3 && memcmp(val, "yes", 3) == 0;
		} else if (klen == 10 && memcmp(p, "compressed", 10) == 0) {
			if (!(vlen == 4 && memcmp(val, "zlib", 4) == 0))
				return -1;
			v->compressed = 1;
		}
		p = nl + 1;
	}
	v->body = (const uint8_t *)p;
	v->body_len = (size_t)(end - p);
	return 0;
}

static int vector_inflate(struct vector *v)
{
	z_stream z;
	uint8_t out[65536];
	int zrc = Z_OK, rc = 0;

	memset(&z, 0, sizeof(z));
	buf_init(&v->inflated, VECTOR_FILE_MAX);
	if (inflateInit(&z) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)v->body;
	z.avail_in = (uInt)v->body_len;
	while (!rc && zrc != Z_STREAM_END) {
		z.next_out = out;
		z.avail_out = sizeof(out);
		zrc = inflate(&z, Z_NO_FLUSH);
		if (zrc != Z_OK && zrc != Z_STREAM_END)
			rc = -1;
		else
			rc = buf_append(&v->inflated, out, sizeof(out) - z.avail_out);
	}
	inflateEnd(&z);
	if (!rc) {
		v->body = v->inflated.data;
		v->body_len = v->inflated.len;
	}
	return rc;
}

static int expected_code(const char *expect)
{
	if (strcmp(expect, "success") == 0)
		return 0;
	if (strcmp(expect, "no match") == 0)
		return CF_ERR_AGE_NOMATCH;
	if (strcmp(expect, "HMAC failure") == 0)
		return CF_ERR_AGE_HMAC;
	if (strcmp(expect, "header failure") == 0)
		return CF_ERR_AGE_HEADER;
	if (strcmp(expect, "payload failure") == 0)
		return CF_ERR_AGE_PAYLOAD;
	return 1; /* "armor failure" or unknown: never expected of a supported vector */
}

/* Decrypts the vector; piece 0 means one write, else pieces of 1..piece bytes. */
static int vector_run(const struct vector *v, const struct age_identities *ids, size_t piece,
                      char hex[HASH_SHA256_HEX_LEN + 1], uint64_t *emitted)
{
	struct filter *dec = NULL, *hash = NULL;
	uint32_t seed = 2463534242u;
	size_t pos = 0;
	int rc;

	rc = age_decrypt_filter_new(ids, &dec);
	assert_int_equal(rc, 0);
	rc = hash_filter_new(&hash);
	assert_int_equal(rc, 0);
	filter_chain(dec, hash, NULL);
	error_clear();
	while (!rc && pos < v->body_len) {
		size_t n = v->body_len - pos;

		if (piece) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			if (n > 1 + seed % piece)
				n = 1 + seed % piece;
		}
		rc = filter_write(dec, v->body + pos, n);
		pos += n;
	}
	if (!rc)
		rc = filter_finish(dec);
	/* Close the hash even after a failure to see what was emitted. */
	filter_finish(hash);
	hash_filter_result(hash, hex, emitted);
	filter_chain_free(dec);
	return rc;
}

static int vector_check(const struct vector *v, struct age_identities *ids, size_t piece)
{
	char hex[HASH_SHA256_HEX_LEN + 1];
	uint64_t emitted = 0;
	int want = expected_code(v->expect);
	int rc = vector_run(v, ids, piece, hex, &emitted);
	int ok = rc == want;

	if (ok && (want == 0 || want == CF_ERR_AGE_PAYLOAD))
		ok = strcmp(hex, v->payload) == 0;
	else if (ok)
		ok = emitted == 0;
	if (ok && piece == 0 && getenv("AGE_VECTORS_VERBOSE"))
		printf("ok   %-40s %-16s %s\n", v->name, v->expect, rc ? error_message() : "");
	if (!ok)
		printf("FAIL %s (%s writes): expected \"%s\", got %d (%s) \"%s\", "
		       "%llu bytes emitted, sha256 %s\n",
		       v->name, piece ? "small" : "single", v->expect, rc, cf_strerror(rc),
		       error_message(), (unsigned long long)emitted, hex);
	return ok;
}

static void vector_file(const char *dir, const char *name, struct tally *t)
{
	struct vector *v = calloc(1, sizeof(*v));
	struct age_identities *ids = NULL;
	char path[1024];
	struct buf file;
	int ok = 1, hybrid = 0;
	size_t i;

	assert_non_null(v);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	copy_value(v->name, sizeof(v->name), name, strlen(name));
	assert_int_equal(fs_read_file(path, VECTOR_FILE_MAX, &file), 0);
	if (vector_parse(v, &file) != 0) {
		printf("FAIL %s: cannot parse the vector file\n", name);
		t->failed++;
		goto out;
	}
	for (i = 0; i < v->identity_count; i++)
		if (strncmp(v->identities[i], "AGE-SECRET-KEY-PQ-", 18) == 0)
			hybrid = 1;
	if (v->armored) {
		t->skipped_armor++;
		goto out;
	}
	if (hybrid || strncmp(name, "hybrid", 6) == 0) {
		t->skipped_hybrid++;
		goto out;
	}
	if (expected_code(v->expect) == 1) {
		printf("FAIL %s: unexpected outcome \"%s\"\n", name, v->expect);
		t->failed++;
		goto out;
	}
	if (v->compressed && vector_inflate(v) != 0) {
		printf("FAIL %s: cannot inflate\n", name);
		t->failed++;
		goto out;
	}
	assert_int_equal(age_identities_new(&ids), 0);
	for (i = 0; ok && i < v->identity_count; i++)
		ok = age_identities_add(ids, v->identities[i]) == 0;
	for (i = 0; ok && i < v->passphrase_count; i++)
		ok = age_identities_add_passphrase(ids, v->passphrases[i]) == 0;
	if (!ok)
		printf("FAIL %s: identity refused: %s\n", name, error_message());
	if (ok)
		ok = vector_check(v, ids, 0);
	if (ok)
		ok = vector_check(v, ids, 700);
	if (ok)
		t->passed++;
	else
		t->failed++;
out:
	age_identities_free(ids);
	buf_free(&v->inflated);
	buf_free(&file);
	free(v);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_age_vectors_all(void **state)
{
	const char *dir = COFFER_TESTDATA "/age";
	struct tally t = {0};
	char *names[1024];
	size_t count = 0, i;
	struct dirent *de;
	DIR *d;

	(void)state;
	assert_int_equal(age_init(), 0);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "SOURCE.md") == 0)
			continue;
		assert_true(count < sizeof(names) / sizeof(names[0]));
		names[count] = strdup(de->d_name);
		assert_non_null(names[count]);
		count++;
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), name_cmp);
	for (i = 0; i < count; i++) {
		vector_file(dir, names[i], &t);
		free(names[i]);
	}
	printf("age vectors: %u passed, %u failed, %u skipped (hybrid: %u, armor: %u)\n", t.passed,
	       t.failed, t.skipped_hybrid + t.skipped_armor, t.skipped_hybrid, t.skipped_armor);
	assert_int_equal(t.failed, 0);
	assert_int_equal(t.passed + t.failed + t.skipped_hybrid + t.skipped_armor, count);
	/* Guard against a vector folder that silently lost its files. */
	assert_true(t.passed >= 80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_age_vectors_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
