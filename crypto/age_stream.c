/*
 * age_stream: the age encrypt and decrypt filters.
 *
 * The payload is age's STREAM construction: a 16-byte random nonce after the
 * header, a payload key HKDF-SHA-256(file key, salt = nonce, info = "payload"),
 * then 64 KiB plaintext chunks each sealed with ChaCha20-Poly1305 (IETF) under
 * a 12-byte nonce of an 11-byte big-endian chunk counter and a last-chunk flag
 * byte. Both filters hold at most one chunk (plus, when decrypting, a header
 * of at most 1 MiB), whatever the payload size.
 *
 * Header syntax, stanzas and the header MAC are age_header.c's business; this
 * file only drives it and owns the chunk framing. No plaintext of a chunk is
 * emitted before its tag verifies.
 */
#include "crypto/age_intern.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define AGE_CHUNK_LEN 65536
#define AGE_TAG_LEN crypto_aead_chacha20poly1305_ietf_ABYTES
#define AGE_SEALED_CHUNK_LEN (AGE_CHUNK_LEN + AGE_TAG_LEN)
#define AGE_PAYLOAD_NONCE_LEN 16
#define AGE_KEY_LEN crypto_aead_chacha20poly1305_ietf_KEYBYTES

/* The secrets of one stream, together in one sodium_malloc block. */
struct age_stream_secrets {
	uint8_t file_key[AGE_FILE_KEY_LEN];
	uint8_t payload_key[AGE_KEY_LEN];
};

static void age_stream_default_random(void *ctx, uint8_t *buf, size_t n)
{
	(void)ctx;
	randombytes_buf(buf, n);
}

static void age_stream_chunk_nonce(uint64_t counter, int last,
                                   uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
	int i;

	/* An 11-byte big-endian counter; a uint64_t fills its low 8 bytes and
	 * 2^64 chunks of 64 KiB is out of reach. */
	memset(nonce, 0, 3);
	for (i = 0; i < 8; i++)
		nonce[3 + i] = (uint8_t)(counter >> (8 * (7 - i)));
	nonce[11] = last ? 1 : 0;
}

static int age_stream_payload_key(struct age_stream_secrets *s,
                                  const uint8_t nonce[AGE_PAYLOAD_NONCE_LEN])
{
	return hkdf_sha256(nonce, AGE_PAYLOAD_NONCE_LEN, s->file_key, AGE_FILE_KEY_LEN,
	                   (const uint8_t *)"payload", 7, s->payload_key, AGE_KEY_LEN);
}

/* ------------------------------------------------------------------------ */
/* Encryption                                                                 */
/* ------------------------------------------------------------------------ */

struct age_encrypt_ctx {
	struct age_stream_secrets *secrets;
	struct buf header; /* header and payload nonce, emitted before the first chunk */
	int header_sent;
	uint8_t *plain;
	size_t plain_len;
	uint8_t *sealed;
	uint64_t counter;
};

static int age_encrypt_send_header(struct filter *f, struct age_encrypt_ctx *c)
{
	int rc;

	if (c->header_sent)
		return 0;
	rc = filter_emit(f, c->header.data, c->header.len);
	if (!rc)
		c->header_sent = 1;
	return rc;
}

static int age_encrypt_seal(struct filter *f, struct age_encrypt_ctx *c, int last)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	unsigned long long n = 0;

	if (c->counter == UINT64_MAX)
		return error_set(CF_ERR_LIMIT, "age payload too long for the chunk counter");
	age_stream_chunk_nonce(c->counter, last, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(c->sealed, &n, c->plain, c->plain_len, NULL, 0,
	                                          NULL, nonce, c->secrets->payload_key);
	c->counter++;
	c->plain_len = 0;
	return filter_emit(f, c->sealed, (size_t)n);
}

static int age_encrypt_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct age_encrypt_ctx *c = f->ctx;
	int rc = age_encrypt_send_header(f, c);

	while (!rc && len > 0) {
		size_t n;

		/* A full chunk is sealed only once more data shows it is not the
		 * last: the final chunk must carry the last-chunk flag. */
		if (c->plain_len == AGE_CHUNK_LEN) {
			rc = age_encrypt_seal(f, c, 0);
			if (rc)
				break;
		}
		n = AGE_CHUNK_LEN - c->plain_len;
		if (n > len)
			n = len;
		memcpy(c->plain + c->plain_len, data, n);
		c->plain_len += n;
		data += n;
		len -= n;
	}
	return rc;
}

static int age_encrypt_finish(struct filter *f)
{
	struct age_encrypt_ctx *c = f->ctx;
	int rc = age_encrypt_send_header(f, c);

	/* The buffer is empty here only if the whole payload is empty, the one
	 * case where age allows an empty final chunk. */
	if (!rc)
		rc = age_encrypt_seal(f, c, 1);
	return rc;
}

/* What both directions hold: the keys, the plaintext chunk (wiped), the
 * sealed chunk and the header buffer. */
static void age_stream_buffers_free(struct age_stream_secrets *secrets, uint8_t *plain,
                                    uint8_t *sealed, struct buf *header)
{
	sodium_free(secrets);
	if (plain)
		sodium_memzero(plain, AGE_CHUNK_LEN);
	free(plain);
	free(sealed);
	buf_free(header);
}

static void age_encrypt_free(struct filter *f)
{
	struct age_encrypt_ctx *c = f->ctx;

	if (!c)
		return;
	age_stream_buffers_free(c->secrets, c->plain, c->sealed, &c->header);
	free(c);
}

static const struct filter_ops age_encrypt_ops = {"age-encrypt", age_encrypt_write,
                                                  age_encrypt_finish, age_encrypt_free};

int age_encrypt_filter_new(const struct age_recipients *r, age_random_fn rnd, void *rnd_ctx,
                           struct filter **out)
{
	struct age_encrypt_ctx *c = calloc(1, sizeof(*c));
	uint8_t nonce[AGE_PAYLOAD_NONCE_LEN];
	struct filter tmp = {.ops = &age_encrypt_ops};
	int rc = 0;

	*out = NULL;
	if (!rnd)
		rnd = age_stream_default_random;
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory creating the age-encrypt filter");
	tmp.ctx = c;
	buf_init(&c->header, AGE_HEADER_MAX);
	c->secrets = sodium_malloc(sizeof(*c->secrets));
	c->plain = malloc(AGE_CHUNK_LEN);
	c->sealed = malloc(AGE_SEALED_CHUNK_LEN);
	if (!c->secrets || !c->plain || !c->sealed)
		rc = error_set(CF_ERR_NOMEM, "out of memory creating the age-encrypt filter");
	if (!rc) {
		rnd(rnd_ctx, c->secrets->file_key, AGE_FILE_KEY_LEN);
		rc = age_header_write(r, c->secrets->file_key, rnd, rnd_ctx, &c->header);
	}
	if (!rc) {
		rnd(rnd_ctx, nonce, sizeof(nonce));
		rc = buf_append(&c->header, nonce, sizeof(nonce));
	}
	if (!rc)
		rc = age_stream_payload_key(c->secrets, nonce);
	if (rc) {
		age_encrypt_free(&tmp);
		return rc;
	}
	/* Only the payload key is needed from here on. */
	sodium_memzero(c->secrets->file_key, AGE_FILE_KEY_LEN);
	*out = filter_new(&age_encrypt_ops, c);
	return *out ? 0 : CF_ERR_NOMEM;
}

/* ------------------------------------------------------------------------ */
/* Decryption                                                                 */
/* ------------------------------------------------------------------------ */

enum age_decrypt_state {
	AGE_DECRYPT_HEADER,
	AGE_DECRYPT_NONCE,
	AGE_DECRYPT_CHUNKS,
	AGE_DECRYPT_DONE
};

struct age_decrypt_ctx {
	const struct age_identities *ids;
	enum age_decrypt_state state;
	int failed; /* the first error, returned again by later calls */
	struct buf header;
	size_t header_scan;
	struct age_stream_secrets *secrets;
	uint8_t nonce[AGE_PAYLOAD_NONCE_LEN];
	size_t nonce_len;
	uint8_t *sealed;
	size_t sealed_len;
	uint8_t *plain;
	uint64_t counter;
};

/* Opens the buffered chunk with the given last-chunk flag. Returns the
 * plaintext length, or -1 if the tag does not verify. */
static long age_decrypt_open(struct age_decrypt_ctx *c, int last)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	unsigned long long n = 0;

	age_stream_chunk_nonce(c->counter, last, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(c->plain, &n, NULL, c->sealed, c->sealed_len,
	                                              NULL, 0, nonce, c->secrets->payload_key) != 0)
		return -1;
	return (long)n;
}

static int age_decrypt_emit(struct filter *f, struct age_decrypt_ctx *c, long n)
{
	int rc = filter_emit(f, c->plain, (size_t)n);

	sodium_memzero(c->plain, (size_t)n);
	c->counter++;
	c->sealed_len = 0;
	return rc;
}

static int age_decrypt_bad_chunk(const struct age_decrypt_ctx *c)
{
	return error_set(CF_ERR_AGE_PAYLOAD,
	                 "age payload chunk %llu (at plaintext offset %llu) fails authentication: "
	                 "the file is corrupted or truncated",
	                 (unsigned long long)c->counter + 1,
	                 (unsigned long long)c->counter * AGE_CHUNK_LEN);
}

/*
 * A full chunk followed by more data. It should be a non-final chunk; if it
 * opens only as the final one, the data after it is trailing garbage. Like
 * age, the authenticated final chunk is still passed on before failing (the
 * stream as a whole fails either way).
 */
static int age_decrypt_full_chunk(struct filter *f, struct age_decrypt_ctx *c)
{
	long n = age_decrypt_open(c, 0);
	int rc;

	if (n >= 0)
		return age_decrypt_emit(f, c, n);
	n = age_decrypt_open(c, 1);
	if (n < 0)
		return age_decrypt_bad_chunk(c);
	rc = age_decrypt_emit(f, c, n);
	c->state = AGE_DECRYPT_DONE;
	if (!rc)
		rc = error_set(CF_ERR_AGE_PAYLOAD,
		               "age payload has data after its final chunk (chunk %llu)",
		               (unsigned long long)c->counter);
	return rc;
}

static int age_decrypt_payload(struct filter *f, struct age_decrypt_ctx *c, const uint8_t *data,
                               size_t len)
{
	int rc = 0;

	while (!rc && len > 0) {
		size_t n;

		if (c->state == AGE_DECRYPT_DONE)
			return error_set(CF_ERR_AGE_PAYLOAD, "age payload has data after its end");
		if (c->state == AGE_DECRYPT_NONCE) {
			n = AGE_PAYLOAD_NONCE_LEN - c->nonce_len;
			if (n > len)
				n = len;
			memcpy(c->nonce + c->nonce_len, data, n);
			c->nonce_len += n;
			data += n;
			len -= n;
			if (c->nonce_len == AGE_PAYLOAD_NONCE_LEN) {
				rc = age_stream_payload_key(c->secrets, c->nonce);
				c->state = AGE_DECRYPT_CHUNKS;
			}
			continue;
		}
		if (c->sealed_len == AGE_SEALED_CHUNK_LEN) {
			rc = age_decrypt_full_chunk(f, c);
			if (rc)
				break;
		}
		n = AGE_SEALED_CHUNK_LEN - c->sealed_len;
		if (n > len)
			n = len;
		memcpy(c->sealed + c->sealed_len, data, n);
		c->sealed_len += n;
		data += n;
		len -= n;
	}
	return rc;
}

/* Collects header bytes; once the header is complete opens it and passes the
 * bytes after it on as payload. */
static int age_decrypt_header(struct filter *f, struct age_decrypt_ctx *c, const uint8_t *data,
                              size_t len)
{
	size_t room = AGE_HEADER_MAX - c->header.len, take = len < room ? len : room;
	size_t header_len = 0;
	int rc = buf_append(&c->header, data, take);

	if (!rc)
		rc = age_header_find_end(c->header.data, c->header.len, &c->header_scan,
		                         &header_len);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (c->header.len == AGE_HEADER_MAX)
			return error_set(CF_ERR_AGE_HEADER,
			                 "age header is longer than the %d byte limit",
			                 AGE_HEADER_MAX);
		return 0;
	}
	rc = age_header_open(c->header.data, header_len, c->ids, c->secrets->file_key);
	if (rc)
		return rc;
	c->state = AGE_DECRYPT_NONCE;
	/* Part of what was buffered, and all that was not taken, is payload. */
	rc = age_decrypt_payload(f, c, c->header.data + header_len, c->header.len - header_len);
	if (!rc)
		rc = age_decrypt_payload(f, c, data + take, len - take);
	buf_free(&c->header);
	return rc;
}

static int age_decrypt_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct age_decrypt_ctx *c = f->ctx;
	int rc;

	if (c->failed)
		return c->failed;
	if (c->state == AGE_DECRYPT_HEADER)
		rc = age_decrypt_header(f, c, data, len);
	else
		rc = age_decrypt_payload(f, c, data, len);
	if (rc)
		c->failed = rc;
	return rc;
}

static int age_decrypt_last_chunk(struct filter *f, struct age_decrypt_ctx *c)
{
	long n;
	int rc;

	if (c->sealed_len == 0)
		return error_set(CF_ERR_AGE_PAYLOAD, "age payload has no chunks");
	if (c->sealed_len < AGE_TAG_LEN)
		return error_set(
		    CF_ERR_AGE_PAYLOAD,
		    "age payload chunk %llu is truncated (%zu bytes, shorter than a tag)",
		    (unsigned long long)c->counter + 1, c->sealed_len);
	/* Only an entirely empty payload may end with an empty chunk. */
	if (c->sealed_len == AGE_TAG_LEN && c->counter > 0)
		return error_set(CF_ERR_AGE_PAYLOAD,
		                 "age payload ends with an empty chunk %llu after a non-empty one",
		                 (unsigned long long)c->counter + 1);
	n = age_decrypt_open(c, 1);
	if (n >= 0) {
		c->state = AGE_DECRYPT_DONE;
		return age_decrypt_emit(f, c, n);
	}
	/* A full chunk that opens as a middle chunk: the file was cut at a chunk
	 * boundary. Pass it on as age does; the stream fails anyway. */
	if (c->sealed_len == AGE_SEALED_CHUNK_LEN && (n = age_decrypt_open(c, 0)) >= 0) {
		rc = age_decrypt_emit(f, c, n);
		if (!rc)
			rc = error_set(CF_ERR_AGE_PAYLOAD,
			               "age payload is truncated: it ends after chunk %llu, which "
			               "is not marked as the last",
			               (unsigned long long)c->counter);
		return rc;
	}
	return age_decrypt_bad_chunk(c);
}

static int age_decrypt_finish(struct filter *f)
{
	struct age_decrypt_ctx *c = f->ctx;
	int rc = 0;

	if (c->failed)
		return c->failed;
	switch (c->state) {
	case AGE_DECRYPT_HEADER:
		rc = c->header.len == 0
		         ? error_set(CF_ERR_AGE_HEADER, "empty input: not an age file")
		         : error_set(CF_ERR_AGE_HEADER, "age header is truncated (no MAC line)");
		break;
	case AGE_DECRYPT_NONCE:
		/* age reads the nonce together with the header, so this is a header
		 * failure in the C2SP vectors too. */
		rc = error_set(CF_ERR_AGE_HEADER, "age file ends inside the payload nonce");
		break;
	case AGE_DECRYPT_CHUNKS:
		rc = age_decrypt_last_chunk(f, c);
		break;
	case AGE_DECRYPT_DONE:
		break;
	}
	if (rc)
		c->failed = rc;
	return rc;
}

static void age_decrypt_free(struct filter *f)
{
	struct age_decrypt_ctx *c = f->ctx;

	if (!c)
		return;
	age_stream_buffers_free(c->secrets, c->plain, c->sealed, &c->header);
	free(c);
}

static const struct filter_ops age_decrypt_ops = {"age-decrypt", age_decrypt_write,
                                                  age_decrypt_finish, age_decrypt_free};

int age_decrypt_filter_new(const struct age_identities *ids, struct filter **out)
{
	struct age_decrypt_ctx *c = calloc(1, sizeof(*c));
	struct filter tmp = {.ops = &age_decrypt_ops};

	*out = NULL;
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory creating the age-decrypt filter");
	tmp.ctx = c;
	c->ids = ids;
	buf_init(&c->header, AGE_HEADER_MAX);
	c->secrets = sodium_malloc(sizeof(*c->secrets));
	c->plain = malloc(AGE_CHUNK_LEN);
	c->sealed = malloc(AGE_SEALED_CHUNK_LEN);
	if (!c->secrets || !c->plain || !c->sealed) {
		age_decrypt_free(&tmp);
		return error_set(CF_ERR_NOMEM, "out of memory creating the age-decrypt filter");
	}
	*out = filter_new(&age_decrypt_ops, c);
	return *out ? 0 : CF_ERR_NOMEM;
}
