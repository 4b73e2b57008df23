/*
 * Tests of crypto/hash.c: the SHA-256 filter and one-shot against FIPS 180-4's
 * examples (also fed in odd-sized pieces, so block boundaries fall everywhere),
 * and hash_md5() against RFC 1321's test suite.
 */
#include "crypto/crypto.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char abc_sha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void hex_of(const uint8_t *d, size_t n, char *hex)
{
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void test_sha256_one_shot(void **state)
{
	char hex[HASH_SHA256_HEX_LEN + 1];
	static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	(void)state;
	assert_int_equal(hash_sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex, abc_sha);
	assert_int_equal(hash_sha256_hex(NULL, 0, hex), 0);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(hash_sha256_hex(two_blocks, strlen(two_blocks), hex), 0);
	assert_string_equal(hex,
	                    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a' (FIPS 180-4's third example) through the filter in pieces
 * of 1, 63, 64, 65 and 4096+7 bytes. */
static void test_sha256_filter_pieces(void **state)
{
	static const size_t pieces[] = {1, 63, 64, 65, 4103};
	char hex[HASH_SHA256_HEX_LEN + 1];
	uint8_t *a = malloc(1000000);

	(void)state;
	assert_non_null(a);
	memset(a, 'a', 1000000);
	for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
		struct filter *h = NULL;
		uint64_t bytes = 0;
		size_t off = 0;

		assert_int_equal(hash_filter_new(&h), 0);
		hash_filter_result(h, hex, &bytes);
		assert_string_equal(hex, ""); /* not finished yet */
		while (off < 1000000) {
			size_t n = 1000000 - off < pieces[p] ? 1000000 - off : pieces[p];

			assert_int_equal(filter_write(h, a + off, n), 0);
			off += n;
		}
		assert_int_equal(filter_finish(h), 0);
		assert_int_equal(filter_finish(h), 0); /* a second finish changes nothing */
		hash_filter_result(h, hex, &bytes);
		assert_string_equal(
		    hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
		assert_int_equal(bytes, 1000000);
		filter_chain_free(h);
	}
	free(a);
}

static void test_sha256_filter_empty(void **state)
{
	char hex[HASH_SHA256_HEX_LEN + 1];
	struct filter *h = NULL;
	uint64_t bytes = 1;

	(void)state;
	assert_int_equal(hash_filter_new(&h), 0);
	assert_int_equal(filter_finish(h), 0);
	hash_filter_result(h, hex, &bytes);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(bytes, 0);
	filter_chain_free(h);
	/* Freed without a finish (an abandoned stream): nothing leaks. */
	assert_int_equal(hash_filter_new(&h), 0);
	assert_int_equal(filter_write(h, "abc", 3), 0);
	filter_chain_free(h);
}

static void test_md5_rfc1321(void **state)
{
	static const struct {
		const char *in, *md5;
	} v[] = {
	    {"", "d41d8cd98f00b204e9800998ecf8427e"},
	    {"a", "0cc175b9c0f1b6a831c399e269772661"},
	    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
	    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
	    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	     "d174ab98d277d9f5a5611c2c9f419d9f"},
	    {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
	     "0",
	     "57edf4a22be3c955ac49da2e2107b67a"},
	};
	uint8_t d[HASH_MD5_LEN];
	char hex[2 * HASH_MD5_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(hash_md5(v[i].in, strlen(v[i].in), d), 0);
		hex_of(d, sizeof(d), hex);
		assert_string_equal(hex, v[i].md5);
	}
	assert_int_equal(hash_md5(NULL, 0, d), 0);
	hex_of(d, sizeof(d), hex);
	assert_string_equal(hex, v[0].md5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_one_shot),
	    cmocka_unit_test(test_sha256_filter_pieces),
	    cmocka_unit_test(test_sha256_filter_empty),
	    cmocka_unit_test(test_md5_rfc1321),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
