/*
 * hkdf: HKDF-SHA-256 (RFC 5869) on libsodium's HMAC-SHA-256.
 *
 * libsodium 1.0.18 has no HKDF of its own (crypto_kdf_hkdf_* arrived in
 * 1.0.19), so this is the two-step extract-and-expand written out over
 * crypto_auth_hmacsha256_*. Every intermediate value is wiped before return.
 */
#include "crypto/crypto.h"

#include <sodium.h>
#include <string.h>

int hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len, uint8_t *okm, size_t okm_len)
{
	static const uint8_t zero_salt[crypto_auth_hmacsha256_BYTES];
	uint8_t prk[crypto_auth_hmacsha256_BYTES];
	uint8_t t[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	size_t done = 0, n;
	uint8_t counter = 0;

	if (okm_len > 255 * crypto_auth_hmacsha256_BYTES)
		return error_set(CF_ERR_INTERNAL, "HKDF-SHA-256 output of %zu bytes is too long",
		                 okm_len);
	/* Extract. RFC 5869 2.2: an absent salt is HashLen zero bytes, which as
	 * an HMAC key is the same as an empty one; be explicit anyway. */
	if (salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	crypto_auth_hmacsha256_init(&st, salt, salt_len);
	crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
	crypto_auth_hmacsha256_final(&st, prk);

	/* Expand: T(i) = HMAC(PRK, T(i-1) || info || i). */
	while (done < okm_len) {
		counter++;
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		if (counter > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &counter, 1);
		crypto_auth_hmacsha256_final(&st, t);
		n = okm_len - done < sizeof(t) ? okm_len - done : sizeof(t);
		memcpy(okm + done, t, n);
		done += n;
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	sodium_memzero(&st, sizeof(st));
	return 0;
}
