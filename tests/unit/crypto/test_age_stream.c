/*
 * test_age_stream: the age encrypt and decrypt filters end to end: round
 * trips at the chunk-size edges written in random-sized pieces, several
 * recipients, scrypt, wrong identities, tampering with header and payload,
 * truncation and trailing data, armor, and pinned randomness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define CHUNK 65536
#define SEALED (CHUNK + 16)
#define BIG (64u * 1024 * 1024)

static const char id_a[] =
    "AGE-SECRET-KEY-1XXYZCHKP8M75RXK57C9M59CSTKPC4TKYXRARH3JNT586U9CWA5PQTY53CS";
static const char rcpt_a[] = "age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrd";
static const char id_b[] =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

/* A sink that keeps everything it receives. */
static int collect_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops collect_ops = {"collect", collect_write, NULL, NULL};

static size_t random_piece(size_t max)
{
	return 1 + randombytes_uniform((uint32_t)max);
}

/* Writes data to head in random pieces of 1..max_piece bytes, then finishes.
 * *write_rc receives the first write error (0 if the writes succeeded). */
static int push(struct filter *head, const uint8_t *data, size_t len, size_t max_piece,
                int *write_rc)
{
	size_t pos = 0;
	int rc = 0;

	while (!rc && pos < len) {
		size_t n = random_piece(max_piece);

		if (n > len - pos)
			n = len - pos;
		rc = filter_write(head, data + pos, n);
		pos += n;
	}
	if (write_rc)
		*write_rc = rc;
	if (!rc)
		rc = filter_finish(head);
	return rc;
}

static void encrypt_buf(const struct age_recipients *r, const uint8_t *data, size_t len,
                        struct buf *out)
{
	struct filter *enc = NULL;

	buf_init(out, BIG);
	assert_int_equal(age_encrypt_filter_new(r, NULL, NULL, &enc), 0);
	filter_chain(enc, filter_new(&collect_ops, out), NULL);
	assert_non_null(enc->next);
	assert_int_equal(push(enc, data, len, 100000, NULL), 0);
	filter_chain_free(enc);
}

static int decrypt_buf(const struct age_identities *ids, const uint8_t *data, size_t len,
                       struct buf *out, int *write_rc)
{
	struct filter *dec = NULL;
	int rc;

	buf_init(out, BIG);
	assert_int_equal(age_decrypt_filter_new(ids, &dec), 0);
	filter_chain(dec, filter_new(&collect_ops, out), NULL);
	assert_non_null(dec->next);
	rc = push(dec, data, len, 100000, write_rc);
	filter_chain_free(dec);
	return rc;
}

static struct age_identities *identities(const char *id)
{
	struct age_identities *ids = NULL;

	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_add(ids, id), 0);
	return ids;
}

static struct age_recipients *recipients(const char *r1)
{
	struct age_recipients *r = NULL;

	assert_int_equal(age_recipients_new(&r), 0);
	assert_int_equal(age_recipients_add(r, r1), 0);
	return r;
}

/* Offset of the payload nonce: just past the "--- MAC\n" line. */
static size_t header_len(const struct buf *ct)
{
	const uint8_t *p = ct->data;
	size_t i;

	for (i = 0; i + 3 < ct->len; i++)
		if ((i == 0 || p[i - 1] == '\n') && memcmp(p + i, "---", 3) == 0)
			return (size_t)((uint8_t *)memchr(p + i, '\n', ct->len - i) - p) + 1;
	fail();
	return 0;
}

static void round_trip(size_t len)
{
	struct age_recipients *r = recipients(rcpt_a);
	struct age_identities *ids = identities(id_a);
	uint8_t *data = malloc(len ? len : 1);
	struct buf ct, pt;
	size_t chunks = len == 0 ? 1 : (len + CHUNK - 1) / CHUNK;

	assert_non_null(data);
	randombytes_buf(data, len);
	encrypt_buf(r, data, len, &ct);
	assert_int_equal(ct.len, header_len(&ct) + 16 + len + 16 * chunks);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), 0);
	assert_int_equal(pt.len, len);
	if (len)
		assert_memory_equal(pt.data, data, len);
	buf_free(&ct);
	buf_free(&pt);
	free(data);
	age_recipients_free(r);
	age_identities_free(ids);
}

static void test_round_trips(void **state)
{
	static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 2 * 65536, 10 * 1024 * 1024};
	size_t i, random_size = randombytes_uniform(5 * CHUNK);

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(sizes[i]);
	printf("random payload size: %zu\n", random_size);
	round_trip(random_size);
}

static void test_multiple_recipients(void **state)
{
	struct age_recipients *r = recipients(rcpt_a);
	char *ids_text[3], rc_text[AGE_RECIPIENT_LEN + 1];
	const uint8_t msg[] = "several recipients";
	struct buf ct, pt;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		ids_text[i] = sodium_malloc(AGE_IDENTITY_LEN + 1);
		assert_non_null(ids_text[i]);
		assert_int_equal(age_keygen(ids_text[i], rc_text), 0);
		assert_int_equal(age_recipients_add(r, rc_text), 0);
	}
	assert_int_equal(age_recipients_count(r), 4);
	encrypt_buf(r, msg, sizeof(msg), &ct);
	for (i = 0; i < 3; i++) {
		struct age_identities *ids = identities(ids_text[i]);

		assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), 0);
		assert_int_equal(pt.len, sizeof(msg));
		assert_memory_equal(pt.data, msg, sizeof(msg));
		buf_free(&pt);
		age_identities_free(ids);
		sodium_free(ids_text[i]);
	}
	/* A set holding a non-matching identity and a matching one. */
	{
		struct age_identities *ids = identities(id_b);

		assert_int_equal(age_identities_add(ids, id_a), 0);
		assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), 0);
		buf_free(&pt);
		age_identities_free(ids);
	}
	buf_free(&ct);
	age_recipients_free(r);
}

static void test_scrypt(void **state)
{
	struct age_recipients *r = NULL;
	struct age_identities *ids = NULL;
	const uint8_t msg[] = "passphrase protected";
	struct buf ct, pt;

	(void)state;
	assert_int_equal(age_recipients_new(&r), 0);
	assert_int_equal(age_recipients_add_passphrase(r, "correct horse", 10), 0);
	encrypt_buf(r, msg, sizeof(msg), &ct);
	assert_non_null(memmem(ct.data, ct.len, "\n-> scrypt ", 11));

	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_add_passphrase(ids, "wrong"), 0);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_NOMATCH);
	assert_int_equal(pt.len, 0);
	buf_free(&pt);
	assert_int_equal(age_identities_add_passphrase(ids, "correct horse"), 0);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), 0);
	assert_int_equal(pt.len, sizeof(msg));
	assert_memory_equal(pt.data, msg, sizeof(msg));
	buf_free(&pt);
	age_identities_free(ids);

	/* X25519 identities alone do not match a passphrase file. */
	ids = identities(id_a);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_NOMATCH);
	buf_free(&pt);
	age_identities_free(ids);
	buf_free(&ct);
	age_recipients_free(r);
}

static void test_wrong_identity(void **state)
{
	struct age_recipients *r = recipients(rcpt_a);
	struct age_identities *ids = identities(id_b);
	struct buf ct, pt;

	(void)state;
	encrypt_buf(r, (const uint8_t *)"x", 1, &ct);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_NOMATCH);
	assert_string_equal(error_message(), "no identity matches any recipient of this file");
	assert_int_equal(pt.len, 0);
	buf_free(&pt);
	assert_int_equal(decrypt_buf(NULL, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_NOMATCH);
	buf_free(&pt);
	buf_free(&ct);
	age_recipients_free(r);
	age_identities_free(ids);
}

static void test_header_tampering(void **state)
{
	struct age_recipients *r = recipients(rcpt_a);
	struct age_identities *ids = identities(id_a);
	char other_id[AGE_IDENTITY_LEN + 1], other_rc[AGE_RECIPIENT_LEN + 1];
	struct buf ct, pt;
	size_t i, hlen, second;
	uint8_t *first, *p, orig;
	int rc;

	(void)state;
	assert_int_equal(age_keygen(other_id, other_rc), 0);
	assert_int_equal(age_recipients_add(r, other_rc), 0);
	encrypt_buf(r, (const uint8_t *)"header", 6, &ct);
	hlen = header_len(&ct);
	/* Every single flipped bit in the header is caught before any output. */
	for (i = 0; i < hlen; i++) {
		ct.data[i] ^= 0x01;
		rc = decrypt_buf(ids, ct.data, ct.len, &pt, NULL);
		ct.data[i] ^= 0x01;
		if (rc != CF_ERR_AGE_HMAC && rc != CF_ERR_AGE_HEADER && rc != CF_ERR_AGE_NOMATCH)
			fail_msg("flipping header byte %zu gave %d (%s)", i, rc, error_message());
		assert_int_equal(pt.len, 0);
		buf_free(&pt);
	}
	/* A change in the stanza we do not open can only be caught by the MAC. */
	first = memmem(ct.data, hlen, "-> X25519 ", 10);
	assert_non_null(first);
	p = memmem(first + 1, hlen - (size_t)(first + 1 - ct.data), "-> X25519 ", 10);
	assert_non_null(p);
	second = (size_t)(p - ct.data);
	orig = ct.data[second + 10];
	ct.data[second + 10] = orig == 'A' ? 'B' : 'A'; /* still canonical base64 */
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_HMAC);
	buf_free(&pt);
	ct.data[second + 10] = orig;
	ct.data[3] = 'X';
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_HEADER);
	buf_free(&pt);
	buf_free(&ct);
	age_recipients_free(r);
	age_identities_free(ids);
}

static void test_payload_tampering(void **state)
{
	struct age_recipients *r = recipients(rcpt_a);
	struct age_identities *ids = identities(id_a);
	size_t len = 3 * CHUNK - 100, hlen, start;
	uint8_t *data = malloc(len);
	struct buf ct, pt;
	int write_rc;

	(void)state;
	assert_non_null(data);
	randombytes_buf(data, len);
	encrypt_buf(r, data, len, &ct);
	hlen = header_len(&ct);
	start = hlen + 16;

	/* A flipped byte in chunk 2: chunk 1 is passed on, nothing of chunk 2. */
	ct.data[start + SEALED + 1000] ^= 0x80;
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	assert_non_null(strstr(error_message(), "chunk 2"));
	assert_int_equal(pt.len, CHUNK);
	assert_memory_equal(pt.data, data, CHUNK);
	buf_free(&pt);
	ct.data[start + SEALED + 1000] ^= 0x80;

	/* A flipped tag byte of the last chunk: two chunks out, then failure. */
	ct.data[ct.len - 1] ^= 0x01;
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(pt.len, 2 * CHUNK);
	buf_free(&pt);
	ct.data[ct.len - 1] ^= 0x01;

	/* A flipped nonce byte changes the payload key: chunk 1 fails. */
	ct.data[hlen] ^= 0x01;
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	assert_int_equal(pt.len, 0);
	buf_free(&pt);
	ct.data[hlen] ^= 0x01;

	/* Truncation at a chunk boundary is only detected at finish. */
	assert_int_equal(decrypt_buf(ids, ct.data, start + SEALED, &pt, &write_rc),
	                 CF_ERR_AGE_PAYLOAD);
	assert_int_equal(write_rc, 0);
	assert_non_null(strstr(error_message(), "truncated"));
	buf_free(&pt);
	assert_int_equal(decrypt_buf(ids, ct.data, start + 2 * SEALED, &pt, &write_rc),
	                 CF_ERR_AGE_PAYLOAD);
	assert_int_equal(write_rc, 0);
	buf_free(&pt);
	/* Truncation inside a chunk, and right after the nonce. */
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len - 5, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	buf_free(&pt);
	assert_int_equal(decrypt_buf(ids, ct.data, start, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	buf_free(&pt);
	assert_int_equal(decrypt_buf(ids, ct.data, start - 1, &pt, NULL), CF_ERR_AGE_HEADER);
	buf_free(&pt);
	assert_int_equal(decrypt_buf(ids, ct.data, 0, &pt, NULL), CF_ERR_AGE_HEADER);
	buf_free(&pt);

	/* Trailing data after the final chunk. */
	assert_int_equal(buf_append(&ct, "x", 1), 0);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	buf_free(&pt);

	buf_free(&ct);
	free(data);
	age_recipients_free(r);
	age_identities_free(ids);
}

static void test_full_last_chunk_trailing(void **state)
{
	struct age_recipients *r = recipients(rcpt_a);
	struct age_identities *ids = identities(id_a);
	uint8_t *data = calloc(1, CHUNK);
	struct buf ct, pt;

	(void)state;
	assert_non_null(data);
	encrypt_buf(r, data, CHUNK, &ct);
	assert_int_equal(buf_append(&ct, "trailing", 8), 0);
	assert_int_equal(decrypt_buf(ids, ct.data, ct.len, &pt, NULL), CF_ERR_AGE_PAYLOAD);
	assert_non_null(strstr(error_message(), "after its final chunk"));
	buf_free(&pt);
	buf_free(&ct);
	free(data);
	age_recipients_free(r);
	age_identities_free(ids);
}

static void test_armor_and_limits(void **state)
{
	static const char armored[] =
	    "\n  -----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24u\n";
	struct age_identities *ids = identities(id_a);
	struct age_recipients *r = NULL;
	struct filter *f = NULL;
	struct buf big, pt;
	size_t i;

	(void)state;
	assert_int_equal(decrypt_buf(ids, (const uint8_t *)armored, sizeof(armored) - 1, &pt, NULL),
	                 CF_ERR_UNSUPPORTED);
	buf_free(&pt);
	assert_int_equal(decrypt_buf(ids, (const uint8_t *)"hello world\n", 12, &pt, NULL),
	                 CF_ERR_AGE_HEADER);
	buf_free(&pt);

	/* An endless header is refused at 1 MiB, not buffered. */
	buf_init(&big, BIG);
	assert_int_equal(buf_append(&big, "age-encryption.org/v1\n", 22), 0);
	for (i = 0; i < 200000; i++)
		assert_int_equal(buf_append(&big, "-> a\n\n", 6), 0);
	assert_int_equal(decrypt_buf(ids, big.data, big.len, &pt, NULL), CF_ERR_AGE_HEADER);
	assert_non_null(strstr(error_message(), "limit"));
	buf_free(&pt);
	buf_free(&big);

	assert_int_equal(age_recipients_new(&r), 0);
	assert_int_equal(age_encrypt_filter_new(r, NULL, NULL, &f), CF_ERR_KEY);
	assert_null(f);
	age_recipients_free(r);
	age_identities_free(ids);
}

static void counter_random(void *ctx, uint8_t *buf, size_t n)
{
	uint8_t *counter = ctx;
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = (*counter)++;
}

static void test_pinned_randomness(void **state)
{
	struct age_recipients *r = recipients(rcpt_a);
	struct buf out[2];
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct filter *enc = NULL;
		uint8_t counter = 7;

		buf_init(&out[i], BIG);
		assert_int_equal(age_encrypt_filter_new(r, counter_random, &counter, &enc), 0);
		filter_chain(enc, filter_new(&collect_ops, &out[i]), NULL);
		assert_int_equal(filter_write(enc, "pinned", 6), 0);
		assert_int_equal(filter_finish(enc), 0);
		filter_chain_free(enc);
	}
	assert_int_equal(out[0].len, out[1].len);
	assert_memory_equal(out[0].data, out[1].data, out[0].len);
	buf_free(&out[0]);
	buf_free(&out[1]);
	age_recipients_free(r);
}

static void test_hash_filter(void **state)
{
	struct filter *h = NULL;
	char hex[HASH_SHA256_HEX_LEN + 1], want[HASH_SHA256_HEX_LEN + 1];
	uint64_t bytes = 0;

	(void)state;
	assert_int_equal(hash_filter_new(&h), 0);
	assert_int_equal(filter_write(h, "ab", 2), 0);
	assert_int_equal(filter_write(h, "c", 1), 0);
	assert_int_equal(filter_finish(h), 0);
	hash_filter_result(h, hex, &bytes);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(bytes, 3);
	hash_sha256_hex("abc", 3, want);
	assert_string_equal(hex, want);
	filter_chain_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_multiple_recipients),
	    cmocka_unit_test(test_scrypt),
	    cmocka_unit_test(test_wrong_identity),
	    cmocka_unit_test(test_header_tampering),
	    cmocka_unit_test(test_payload_tampering),
	    cmocka_unit_test(test_full_last_chunk_trailing),
	    cmocka_unit_test(test_armor_and_limits),
	    cmocka_unit_test(test_pinned_randomness),
	    cmocka_unit_test(test_hash_filter),
	};

	if (age_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
