/*
 * hash: a pass-through filter that counts bytes and computes their SHA-256
 * (libsodium's crypto_hash_sha256), so the catalog can record the size and
 * digest of every stored object; plus a one-shot hex digest helper.
 *
 * It does not verify anything itself: comparing against an expected digest is
 * the caller's job.
 */
#include "crypto/crypto.h"

#include <sodium.h>
#include <stdlib.h>

struct hash_ctx {
	crypto_hash_sha256_state st;
	uint8_t digest[HASH_SHA256_LEN];
	uint64_t bytes;
	int done;
};

static int hash_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct hash_ctx *c = f->ctx;

	crypto_hash_sha256_update(&c->st, data, len);
	c->bytes += len;
	return filter_emit(f, data, len);
}

static int hash_finish(struct filter *f)
{
	struct hash_ctx *c = f->ctx;

	if (!c->done) {
		crypto_hash_sha256_final(&c->st, c->digest);
		c->done = 1;
	}
	return 0;
}

static void hash_free(struct filter *f)
{
	free(f->ctx);
}

static const struct filter_ops hash_ops = {"sha256", hash_write, hash_finish, hash_free};

int hash_filter_new(struct filter **out)
{
	struct hash_ctx *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory creating the sha256 filter");
	crypto_hash_sha256_init(&c->st);
	*out = filter_new(&hash_ops, c);
	return *out ? 0 : CF_ERR_NOMEM;
}

void hash_filter_result(const struct filter *f, char hex[HASH_SHA256_HEX_LEN + 1], uint64_t *bytes)
{
	const struct hash_ctx *c = f->ctx;

	if (c->done)
		sodium_bin2hex(hex, HASH_SHA256_HEX_LEN + 1, c->digest, sizeof(c->digest));
	else
		hex[0] = '\0';
	if (bytes)
		*bytes = c->bytes;
}

void hash_sha256_hex(const void *data, size_t len, char hex[HASH_SHA256_HEX_LEN + 1])
{
	uint8_t digest[HASH_SHA256_LEN];

	crypto_hash_sha256(digest, data, len);
	sodium_bin2hex(hex, HASH_SHA256_HEX_LEN + 1, digest, sizeof(digest));
}
