/*
 * sign: Ed25519 signing keys for manifests (libsodium's crypto_sign).
 *
 * A backup host signs every manifest it writes with its own key, kept in a
 * 0600 file that never leaves the host; a restore host trusts a manifest only
 * if its signature verifies under a public key it lists. So someone who can
 * write to the bucket, but does not hold a backup host's key, cannot plant
 * or alter a backup a restore will believe.
 *
 * Key file: one line "COFFER-SIGNING-KEY-1 <base64 of the 32-byte seed>",
 * then a comment with the public key. Public keys and signatures are text:
 * "ed25519:<base64>" (standard alphabet with padding). This module knows
 * nothing about manifests; the catalog decides what bytes are signed.
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIGN_FILE_TAG "COFFER-SIGNING-KEY-1 "
#define SIGN_PUBLIC_TAG "ed25519:"
#define SIGN_B64 sodium_base64_VARIANT_ORIGINAL

struct sign_key {
	unsigned char *sk; /* crypto_sign_SECRETKEYBYTES, sodium_malloc */
	char pub[SIGN_PUBLIC_TEXT_LEN + 1];
};

void sign_key_free(struct sign_key *k)
{
	if (!k)
		return;
	sodium_free(k->sk);
	free(k);
}

/* Makes the key from its seed (crypto_sign_SEEDBYTES). */
static int sign_key_from_seed(const unsigned char *seed, struct sign_key **out)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	struct sign_key *k = calloc(1, sizeof(*k));

	if (!k || !(k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES))) {
		free(k);
		return error_set(CF_ERR_NOMEM, "out of secure memory for a signing key");
	}
	if (crypto_sign_seed_keypair(pk, k->sk, seed) != 0) {
		sign_key_free(k);
		return error_set(CF_ERR_INTERNAL, "Ed25519 key derivation failed");
	}
	memcpy(k->pub, SIGN_PUBLIC_TAG, strlen(SIGN_PUBLIC_TAG));
	sodium_bin2base64(k->pub + strlen(SIGN_PUBLIC_TAG),
	                  sizeof(k->pub) - strlen(SIGN_PUBLIC_TAG), pk, sizeof(pk), SIGN_B64);
	*out = k;
	return 0;
}

/* Writes a new key file (never replacing one) and returns the key. */
static int sign_key_create(const char *path, struct sign_key **out)
{
	unsigned char *seed = sodium_malloc(crypto_sign_SEEDBYTES);
	char *line = sodium_malloc(512);
	char tmp[4200];
	int fd = -1, rc;
	size_t n;

	if (!seed || !line) {
		rc = error_set(CF_ERR_NOMEM, "out of secure memory for a signing key");
		goto out;
	}
	randombytes_buf(seed, crypto_sign_SEEDBYTES);
	rc = sign_key_from_seed(seed, out);
	if (rc)
		goto out;
	memcpy(line, SIGN_FILE_TAG, strlen(SIGN_FILE_TAG));
	sodium_bin2base64(line + strlen(SIGN_FILE_TAG), 512 - strlen(SIGN_FILE_TAG), seed,
	                  crypto_sign_SEEDBYTES, SIGN_B64);
	n = strlen(line);
	snprintf(line + n, 512 - n,
	         "\n# coffer manifest signing key: keep it on this host only (mode 0600).\n"
	         "# public key, for trusted_signers on restore hosts: %s\n",
	         (*out)->pub);
	/* Written whole under a private name, then linked into place: a
	 * process killed while writing leaves no half key behind that would
	 * refuse every later backup (link() fails if another coffer made the
	 * key meanwhile: that one is used). */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		rc = error_set(CF_ERR_IO, "signing key path too long: %s", path);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot create signing key %s", tmp);
		goto out;
	}
	rc = fs_write_all(fd, line, strlen(line), tmp);
	if (!rc && fsync(fd) != 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write signing key %s", tmp);
	if (close(fd) != 0 && !rc)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write signing key %s", tmp);
	if (!rc && link(tmp, path) != 0)
		rc = error_set_errno(errno == EEXIST ? CF_ERR_EXISTS : CF_ERR_IO, errno,
		                     "cannot create signing key %s", path);
	unlink(tmp);
	if (!rc) {
		char dir[4096];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			rc = fs_fsync_dir(dir);
		}
	}
out:
	if (rc) {
		sign_key_free(*out);
		*out = NULL;
	}
	sodium_free(seed);
	sodium_free(line);
	return rc;
}

int sign_key_load(const char *path, int create, struct sign_key **out)
{
	unsigned char *seed = NULL;
	struct stat sb;
	struct buf b;
	size_t seed_len = 0;
	const char *end = NULL;
	int rc;

	*out = NULL;
	if (lstat(path, &sb) != 0) {
		if (errno == ENOENT && create) {
			rc = sign_key_create(path, out);
			if (rc != CF_ERR_EXISTS)
				return rc;
			/* Another coffer made it meanwhile: read that one. */
		} else {
			return error_set_errno(errno == ENOENT ? CF_ERR_NOTFOUND : CF_ERR_IO, errno,
			                       "cannot read signing key %s", path);
		}
	}
	if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
		return error_set(CF_ERR_KEY, "signing key %s is not a regular file", path);
	if (sb.st_mode & 077)
		return error_set(CF_ERR_KEY,
		                 "signing key %s can be read by others (mode %o); chmod 600 it",
		                 path, (unsigned)(sb.st_mode & 07777));
	rc = fs_read_file(path, 4096, &b);
	if (rc)
		return rc;
	seed = sodium_malloc(crypto_sign_SEEDBYTES);
	if (!seed)
		rc = error_set(CF_ERR_NOMEM, "out of secure memory for a signing key");
	else if (strncmp((char *)b.data, SIGN_FILE_TAG, strlen(SIGN_FILE_TAG)) ||
	         sodium_base642bin(
	             seed, crypto_sign_SEEDBYTES, (char *)b.data + strlen(SIGN_FILE_TAG),
	             b.len - strlen(SIGN_FILE_TAG), "\n", &seed_len, &end, SIGN_B64) != 0 ||
	         seed_len != crypto_sign_SEEDBYTES)
		rc = error_set(CF_ERR_KEY,
		               "%s is not a coffer signing key (expected a line "
		               "'" SIGN_FILE_TAG "...')",
		               path);
	else
		rc = sign_key_from_seed(seed, out);
	sodium_memzero(b.data, b.len);
	buf_free(&b);
	sodium_free(seed);
	return rc;
}

const char *sign_key_public(const struct sign_key *k)
{
	return k->pub;
}

int sign_message(const struct sign_key *k, const void *msg, size_t len,
                 char out[SIGN_SIGNATURE_TEXT_LEN + 1])
{
	unsigned char sig[crypto_sign_BYTES];

	if (crypto_sign_detached(sig, NULL, msg, len, k->sk) != 0)
		return error_set(CF_ERR_INTERNAL, "Ed25519 signing failed");
	sodium_bin2base64(out, SIGN_SIGNATURE_TEXT_LEN + 1, sig, sizeof(sig), SIGN_B64);
	return 0;
}

int sign_public_valid(const char *text)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	size_t n = 0;
	const char *end = NULL;
	size_t tl = strlen(SIGN_PUBLIC_TAG);

	return !strncmp(text, SIGN_PUBLIC_TAG, tl) &&
	       sodium_base642bin(pk, sizeof(pk), text + tl, strlen(text + tl), NULL, &n, &end,
	                         SIGN_B64) == 0 &&
	       n == sizeof(pk) && !*end;
}

int sign_verify(const char *public_text, const void *msg, size_t len, const char *sig_text)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
	size_t n = 0, tl = strlen(SIGN_PUBLIC_TAG);
	const char *end = NULL;

	if (!sign_public_valid(public_text))
		return error_set(CF_ERR_KEY,
		                 "'%.80s' is not a signing public key (expected " SIGN_PUBLIC_TAG
		                 "...)",
		                 public_text);
	sodium_base642bin(pk, sizeof(pk), public_text + tl, strlen(public_text + tl), NULL, &n,
	                  &end, SIGN_B64);
	if (sodium_base642bin(sig, sizeof(sig), sig_text, strlen(sig_text), NULL, &n, &end,
	                      SIGN_B64) != 0 ||
	    n != sizeof(sig) || *end)
		return error_set(CF_ERR_INTEGRITY, "the signature is malformed");
	if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
		return error_set(CF_ERR_INTEGRITY, "the signature does not verify under %s",
		                 public_text);
	return 0;
}
