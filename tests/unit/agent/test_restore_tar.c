/* Tests the path patterns of agent/pipeline/restore_tar.c (restore
 * --include, ls PATH): a pattern chooses an entry when it matches its path
 * or a folder above it, '*' crosses '/', a leading '/' or "./" and a
 * trailing '/' do not matter, a pattern never matches part of a name, and
 * the matched flags say which patterns chose something. */
#include "agent/pipeline/restore_tar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* restore_tar_patterns_pass() over copies of the n patterns in v. */
static int pass(const char *const *v, size_t n, unsigned char *matched, const char *path)
{
	char *copy[8];
	struct restore_tar_patterns p = {copy, n, matched};
	int rc;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		assert_non_null(copy[i] = strdup(v[i]));
	rc = restore_tar_patterns_pass(&p, path);
	for (size_t i = 0; i < n; i++)
		free(copy[i]);
	return rc;
}

static void test_folder_chooses_below(void **state)
{
	const char *v[] = {"etc/app"};

	(void)state;
	assert_int_equal(pass(v, 1, NULL, "etc/app/"), 1);
	assert_int_equal(pass(v, 1, NULL, "etc/app/a.conf"), 1);
	assert_int_equal(pass(v, 1, NULL, "etc/app/sub/deep/file"), 1);
	assert_int_equal(pass(v, 1, NULL, "etc/"), 0);
	assert_int_equal(pass(v, 1, NULL, "etc/hosts"), 0);
	/* Not a prefix of a name: etc/app does not choose etc/apple. */
	assert_int_equal(pass(v, 1, NULL, "etc/apple"), 0);
	assert_int_equal(pass(v, 1, NULL, "etc/apple/x"), 0);
}

static void test_wildcards(void **state)
{
	const char *star[] = {"*.conf"}, *q[] = {"etc/?osts"}, *set[] = {"var/log/[ab].log"};

	(void)state;
	/* '*' matches '/' as tar's default does. */
	assert_int_equal(pass(star, 1, NULL, "etc/app/a.conf"), 1);
	assert_int_equal(pass(star, 1, NULL, "a.conf"), 1);
	assert_int_equal(pass(star, 1, NULL, "etc/app/a.conf.bak"), 0);
	assert_int_equal(pass(q, 1, NULL, "etc/hosts"), 1);
	assert_int_equal(pass(q, 1, NULL, "etc/ghosts"), 0);
	assert_int_equal(pass(set, 1, NULL, "var/log/a.log"), 1);
	assert_int_equal(pass(set, 1, NULL, "var/log/c.log"), 0);
}

static void test_slashes(void **state)
{
	const char *lead[] = {"/etc/hosts"}, *dot[] = {"./etc"}, *trail[] = {"etc/app/"};

	(void)state;
	assert_int_equal(pass(lead, 1, NULL, "etc/hosts"), 1);
	assert_int_equal(pass(dot, 1, NULL, "etc/hosts"), 1);
	assert_int_equal(pass(trail, 1, NULL, "etc/app/a.conf"), 1);
	assert_int_equal(pass(trail, 1, NULL, "etc/app/"), 1);
	/* Stored paths with a leading "./" or '/' are compared without it. */
	assert_int_equal(pass(lead, 1, NULL, "./etc/hosts"), 1);
	assert_int_equal(pass(lead, 1, NULL, "/etc/hosts"), 1);
}

static void test_matched_flags(void **state)
{
	const char *v[] = {"etc/hosts", "home", "nothing/*"};
	unsigned char matched[3] = {0, 0, 0};

	(void)state;
	assert_int_equal(pass(v, 3, matched, "etc/"), 0);
	assert_int_equal(pass(v, 3, matched, "etc/hosts"), 1);
	assert_int_equal(pass(v, 3, matched, "home/u/notes"), 1);
	assert_int_equal(pass(v, 3, matched, "var/x"), 0);
	assert_int_equal(matched[0], 1);
	assert_int_equal(matched[1], 1);
	assert_int_equal(matched[2], 0);
}

static void test_several_choose_one_entry(void **state)
{
	const char *v[] = {"etc", "etc/hosts", "*hosts"};
	unsigned char matched[3] = {0, 0, 0};

	(void)state;
	/* Every pattern that chooses the entry is marked, not only the first. */
	assert_int_equal(pass(v, 3, matched, "etc/hosts"), 1);
	assert_int_equal(matched[0] + matched[1] + matched[2], 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_folder_chooses_below),
	    cmocka_unit_test(test_wildcards),
	    cmocka_unit_test(test_slashes),
	    cmocka_unit_test(test_matched_flags),
	    cmocka_unit_test(test_several_choose_one_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
