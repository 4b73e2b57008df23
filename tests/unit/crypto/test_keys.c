/*
 * test_keys: age keys and key sets: a fixed pair written by the real
 * age-keygen, generated pairs, fingerprints, recipient set rules and
 * identity files in the age-keygen format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/crypto.h"

/* Written by age-keygen 1.1.1. */
static const char keygen_identity[] =
    "AGE-SECRET-KEY-1XXYZCHKP8M75RXK57C9M59CSTKPC4TKYXRARH3JNT586U9CWA5PQTY53CS";
static const char keygen_recipient[] =
    "age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrd";

static void test_known_pair(void **state)
{
	char r[AGE_RECIPIENT_LEN + 1];
	char lower[AGE_IDENTITY_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(age_identity_to_recipient(keygen_identity, r), 0);
	assert_string_equal(r, keygen_recipient);
	/* age accepts a lower-case identity too; mixed case is refused. */
	for (i = 0; i <= AGE_IDENTITY_LEN; i++)
		lower[i] = (char)(keygen_identity[i] >= 'A' && keygen_identity[i] <= 'Z'
		                      ? keygen_identity[i] - 'A' + 'a'
		                      : keygen_identity[i]);
	assert_int_equal(age_identity_to_recipient(lower, r), 0);
	assert_string_equal(r, keygen_recipient);
	lower[0] = 'A';
	assert_int_equal(age_identity_to_recipient(lower, r), CF_ERR_KEY);
	assert_int_equal(age_identity_to_recipient(keygen_recipient, r), CF_ERR_KEY);
	assert_int_equal(
	    age_identity_to_recipient(
	        "AGE-SECRET-KEY-1XXYZCHKP8M75RXK57C9M59CSTKPC4TKYXRARH3JNT586U9CWA5PQTY53CT", r),
	    CF_ERR_KEY);
}

static void test_keygen(void **state)
{
	char *id = sodium_malloc(AGE_IDENTITY_LEN + 1);
	char r[AGE_RECIPIENT_LEN + 1], r2[AGE_RECIPIENT_LEN + 1];

	(void)state;
	assert_non_null(id);
	assert_int_equal(age_keygen(id, r), 0);
	assert_int_equal(strlen(id), AGE_IDENTITY_LEN);
	assert_int_equal(strlen(r), AGE_RECIPIENT_LEN);
	assert_memory_equal(id, "AGE-SECRET-KEY-1", 16);
	assert_memory_equal(r, "age1", 4);
	assert_int_equal(age_identity_to_recipient(id, r2), 0);
	assert_string_equal(r, r2);
	sodium_free(id);
}

static void test_fingerprint(void **state)
{
	char fp[AGE_FINGERPRINT_LEN + 1], fp2[AGE_FINGERPRINT_LEN + 1];
	char hex[HASH_SHA256_HEX_LEN + 1];
	char upper[AGE_RECIPIENT_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(age_recipient_fingerprint(keygen_recipient, fp), 0);
	hash_sha256_hex(keygen_recipient, strlen(keygen_recipient), hex);
	assert_int_equal(strlen(fp), AGE_FINGERPRINT_LEN);
	assert_memory_equal(fp, hex, AGE_FINGERPRINT_LEN);
	for (i = 0; i <= AGE_RECIPIENT_LEN; i++)
		upper[i] = (char)(keygen_recipient[i] >= 'a' && keygen_recipient[i] <= 'z'
		                      ? keygen_recipient[i] - 'a' + 'A'
		                      : keygen_recipient[i]);
	assert_int_equal(age_recipient_fingerprint(upper, fp2), 0);
	assert_string_equal(fp, fp2);
	assert_int_equal(age_recipient_fingerprint("age1nope", fp), CF_ERR_KEY);
}

static void test_recipient_sets(void **state)
{
	struct age_recipients *r = NULL;

	(void)state;
	assert_int_equal(age_recipients_new(&r), 0);
	assert_int_equal(
	    age_recipients_add(
	        r, "  age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrd\n"),
	    0);
	assert_int_equal(
	    age_recipients_add(r, "age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrD"),
	    CF_ERR_KEY);
	assert_non_null(strstr(error_message(), "age16gqy"));
	assert_int_equal(
	    age_recipients_add(r, "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
	    CF_ERR_KEY);
	assert_int_equal(age_recipients_count(r), 1);
	/* A passphrase must be alone, in either order. */
	assert_int_equal(age_recipients_add_passphrase(r, "secret", 10), CF_ERR_KEY);
	age_recipients_free(r);
	assert_int_equal(age_recipients_new(&r), 0);
	assert_int_equal(age_recipients_add_passphrase(r, "secret", 23), CF_ERR_KEY);
	assert_int_equal(age_recipients_add_passphrase(r, "secret", 10), 0);
	assert_int_equal(age_recipients_add(r, keygen_recipient), CF_ERR_KEY);
	assert_int_equal(age_recipients_count(r), 1);
	age_recipients_free(r);
	age_recipients_free(NULL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_identity_file(void **state)
{
	struct age_identities *ids = NULL;
	char path[512];

	(void)state;
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0700), 0);
	snprintf(path, sizeof(path), "%s/test_keys_identity.txt", COFFER_TEST_TMP);
	write_file(path,
	           "# created: 2026-11-22T09:15:32Z\n"
	           "# public key: age16gqy4sdf4p6jxsw7xd8hfc3ppzsht43fd5tls0jx4x5vdl0qpddswqgrrd\n"
	           "AGE-SECRET-KEY-1XXYZCHKP8M75RXK57C9M59CSTKPC4TKYXRARH3JNT586U9CWA5PQTY53CS\n"
	           "\n"
	           "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0\r\n",
	           0600);
	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_load_file(ids, path), 0);
	assert_int_equal(age_identities_count(ids), 2);
	age_identities_free(ids);

	/* A readable-by-others file loads, with a warning. */
	chmod(path, 0644);
	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_load_file(ids, path), 0);
	age_identities_free(ids);

	write_file(path, "# nothing here\n", 0600);
	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_load_file(ids, path), CF_ERR_KEY);
	age_identities_free(ids);

	write_file(
	    path,
	    "# comment\n"
	    "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG\n",
	    0600);
	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_load_file(ids, path), CF_ERR_KEY);
	assert_non_null(strstr(error_message(), "line 2"));
	assert_null(strstr(error_message(), "HZLGZ")); /* never quote a secret */
	age_identities_free(ids);

	assert_int_equal(age_identities_new(&ids), 0);
	assert_int_equal(age_identities_load_file(ids, COFFER_TEST_TMP "/does-not-exist"),
	                 CF_ERR_NOTFOUND);
	assert_int_equal(age_identities_add(ids, "AGE-SECRET-KEY-1nope"), CF_ERR_KEY);
	assert_int_equal(age_identities_add_passphrase(ids, "pw"), 0);
	assert_int_equal(age_identities_count(ids), 1);
	age_identities_free(ids);
	age_identities_free(NULL);
	remove(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_pair),    cmocka_unit_test(test_keygen),
	    cmocka_unit_test(test_fingerprint),   cmocka_unit_test(test_recipient_sets),
	    cmocka_unit_test(test_identity_file),
	};

	if (age_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
