/*
 * test_hkdf: HKDF-SHA-256 against RFC 5869 appendix A test cases 1-3, and the
 * output length limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "crypto/crypto.h"

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;

	assert_int_equal(sodium_hex2bin(out, max, hex, strlen(hex), NULL, &n, NULL), 0);
	return n;
}

static void check_case(const char *ikm_hex, const char *salt_hex, const char *info_hex,
                       size_t okm_len, const char *okm_hex)
{
	uint8_t ikm[128], salt[128], info[128], okm[128], want[128];
	size_t ikm_len = unhex(ikm_hex, ikm, sizeof(ikm));
	size_t salt_len = unhex(salt_hex, salt, sizeof(salt));
	size_t info_len = unhex(info_hex, info, sizeof(info));

	assert_int_equal(unhex(okm_hex, want, sizeof(want)), okm_len);
	assert_int_equal(hkdf_sha256(salt_len ? salt : NULL, salt_len, ikm, ikm_len, info, info_len,
	                             okm, okm_len),
	                 0);
	assert_memory_equal(okm, want, okm_len);
}

static void test_rfc5869_case1(void **state)
{
	(void)state;
	check_case("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
	           "f0f1f2f3f4f5f6f7f8f9", 42,
	           "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	           "34007208d5b887185865");
}

static void test_rfc5869_case2(void **state)
{
	(void)state;
	check_case("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	           "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	           "404142434445464748494a4b4c4d4e4f",
	           "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	           "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	           "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	           "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	           "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	           "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	           82,
	           "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	           "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	           "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

static void test_rfc5869_case3(void **state)
{
	(void)state;
	/* Empty salt and info. */
	check_case("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
	           "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	           "9d201395faa4b61a96c8");
}

static void test_length_limit(void **state)
{
	uint8_t ikm[16] = {0}, okm[1];

	(void)state;
	assert_int_equal(hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, 255 * 32 + 1),
	                 CF_ERR_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc5869_case1),
	    cmocka_unit_test(test_rfc5869_case2),
	    cmocka_unit_test(test_rfc5869_case3),
	    cmocka_unit_test(test_length_limit),
	};

	if (age_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
