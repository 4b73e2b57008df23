/*
 * test_bech32: the Bech32 codec against BIP-173 examples and age keys:
 * round trips, case rules, checksum and human-readable-part errors, padding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "crypto/age_intern.h"

static const char bip_all_values[] = "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw";
static const uint8_t bip_all_bytes[20] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54,
                                          0xb6, 0x35, 0xcf, 0x84, 0x65, 0x3a, 0x56,
                                          0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf};
/* Written by the real age-keygen (age 1.1.1). */
static const char keygen_recipient[] =
    "age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrd";

static int dec(const char *hrp, const char *s, uint8_t *out, size_t len)
{
	return bech32_decode(hrp, s, strlen(s), out, len);
}

static void test_bip173_valid(void **state)
{
	uint8_t data[32];
	char out[128];

	(void)state;
	assert_int_equal(dec("a", "A12UEL5L", data, 0), 0);
	assert_int_equal(dec("a", "a12uel5l", data, 0), 0);
	assert_int_equal(dec("abcdef", bip_all_values, data, 20), 0);
	assert_memory_equal(data, bip_all_bytes, 20);
	assert_int_equal(bech32_encode("abcdef", bip_all_bytes, 20, 0, out, sizeof(out)), 0);
	assert_string_equal(out, bip_all_values);
	/* A human-readable part may itself contain '1'. */
	assert_int_equal(
	    dec("split", "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", data, 30),
	    0);
}

static void test_case_rules(void **state)
{
	uint8_t data[32];
	char upper[128];
	size_t i;

	(void)state;
	assert_int_equal(dec("a", "A12uEL5L", data, 0), -1);
	assert_int_equal(
	    dec("age", "Age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrd", data, 32),
	    -1);
	/* All upper case is the same string. */
	for (i = 0; keygen_recipient[i]; i++)
		upper[i] = (char)(keygen_recipient[i] >= 'a' && keygen_recipient[i] <= 'z'
		                      ? keygen_recipient[i] - 'a' + 'A'
		                      : keygen_recipient[i]);
	upper[i] = '\0';
	assert_int_equal(dec("age", upper, data, 32), 0);
}

static void test_bad_checksum_and_hrp(void **state)
{
	char s[sizeof(keygen_recipient)];
	uint8_t data[32];
	size_t i;

	(void)state;
	assert_int_equal(dec("age", keygen_recipient, data, 32), 0);
	/* Every single-character substitution is caught by the checksum. */
	for (i = 4; i < sizeof(keygen_recipient) - 1; i++) {
		memcpy(s, keygen_recipient, sizeof(s));
		s[i] = s[i] == 'q' ? 'p' : 'q';
		assert_int_equal(dec("age", s, data, 32), -1);
	}
	assert_int_equal(dec("agf", keygen_recipient, data, 32), -1);
	assert_int_equal(dec("age", "age1", data, 0), -1);
	assert_int_equal(dec("age", "a12uel5l", data, 0), -1);
	/* Wrong payload length, characters outside the alphabet, separator missing. */
	assert_int_equal(dec("age", keygen_recipient, data, 31), -1);
	assert_int_equal(dec("a", "a1b2uel5l", data, 0), -1);
	assert_int_equal(dec("a", "a2uel5l", data, 0), -1);
	assert_int_equal(dec("a", "a12uel5l ", data, 0), -1);
}

static void test_round_trip(void **state)
{
	uint8_t data[32], back[32];
	char out[128];
	int i;

	(void)state;
	for (i = 0; i < 200; i++) {
		randombytes_buf(data, sizeof(data));
		assert_int_equal(bech32_encode("age", data, 32, 0, out, sizeof(out)), 0);
		assert_int_equal(strlen(out), AGE_RECIPIENT_LEN);
		assert_int_equal(dec("age", out, back, 32), 0);
		assert_memory_equal(data, back, 32);
		assert_int_equal(bech32_encode("age-secret-key-", data, 32, 1, out, sizeof(out)),
		                 0);
		assert_int_equal(strlen(out), AGE_IDENTITY_LEN);
		assert_memory_equal(out, "AGE-SECRET-KEY-1", 16);
		assert_int_equal(dec("age-secret-key-", out, back, 32), 0);
		assert_memory_equal(data, back, 32);
	}
	assert_int_equal(bech32_encode("age", data, 32, 0, out, AGE_RECIPIENT_LEN), CF_ERR_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bip173_valid),
	    cmocka_unit_test(test_case_rules),
	    cmocka_unit_test(test_bad_checksum_and_hrp),
	    cmocka_unit_test(test_round_trip),
	};

	if (age_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
