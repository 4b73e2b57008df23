/* Tests agent/config.c: a full configuration loads; every kind of mistake is
 * refused with FILE:LINE and what was expected. */
#include "agent/agent.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define RCPT "age1arlh8v763xu4s3xl2g6f5u3sls3qma0vpx2532lmjay9tmpcua8qxmaaul"

static char path[256];

static void write_conf(const char *text)
{
	FILE *f;

	mkdir(COFFER_TEST_TMP, 0755);
	snprintf(path, sizeof(path), "%s/test_config.%d.conf", COFFER_TEST_TMP, (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loads text and expects failure with code, message containing ":line:" and want. */
static void expect_error(const char *text, int code, int line, const char *want)
{
	struct config *c = NULL;
	char where[300];
	int rc;

	write_conf(text);
	error_clear();
	rc = config_load(path, &c);
	if (rc != code || !strstr(error_message(), want))
		fail_msg("got %d '%s', wanted %d with '%s'", rc, error_message(), code, want);
	snprintf(where, sizeof(where), "%s:%d: ", path, line);
	if (line && !strstr(error_message(), where))
		fail_msg("'%s' does not name %s", error_message(), where);
	assert_null(c);
	unlink(path);
}

static void test_full_config(void **state)
{
	struct config *c = NULL;
	struct source *s;

	(void)state;
	write_conf(
	    "; a comment\n[repository]\ntype = posix\npath = /srv/repo\n"
	    "[catalog]\npath = relative/cat\n"
	    "[encryption]\nrecipients = " RCPT " , " RCPT "\nidentity = /root/id.txt\n"
	    "[compression]\nlevel = 7\nworkers = 0\n"
	    "[source etc]\ntype = files\npaths = /etc, /var/lib/app\nexclude = *.tmp\n"
	    "[source dump]\ncommand = pg_dumpall --clean ; inline comment\ntype = command\n");
	assert_int_equal(config_load(path, &c), 0);
	assert_string_equal(c->repo_type, "posix");
	assert_string_equal(c->repo_path, "/srv/repo");
	assert_true(c->catalog_path[0] == '/'); /* made absolute */
	assert_non_null(strstr(c->catalog_path, "/relative/cat"));
	assert_int_equal(c->recipients.n, 2);
	assert_string_equal(c->recipients.v[1], RCPT);
	assert_string_equal(c->identity, "/root/id.txt");
	assert_int_equal(c->zstd_level, 7);
	assert_int_equal(c->zstd_workers, 0);
	assert_int_equal(c->nsources, 2);
	s = config_source_find(c, "dump");
	assert_non_null(s);
	assert_string_equal(s->ops->type, "command");
	assert_null(config_source_find(c, "nope"));
	config_free(c);
	unlink(path);
}

static void test_defaults(void **state)
{
	struct config *c = NULL;

	(void)state;
	write_conf("[repository]\npath = /srv/repo\n");
	assert_int_equal(config_load(path, &c), 0);
	assert_string_equal(c->repo_type, "posix");
	assert_string_equal(c->catalog_path, CATALOG_DEFAULT_PATH);
	assert_int_equal(c->zstd_level, 3);
	assert_int_equal(c->nsources, 0);
	config_free(c);
	unlink(path);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[repository]\npath = /x\nbuckets = b\n", CF_ERR_CONFIG, 3,
	             "unknown key 'buckets'");
	expect_error("[repository]\ntype = s3\nbucket = b\n", CF_ERR_CONFIG, 0, "needs endpoint");
	expect_error("[repository]\nendpoint = ftp://x\n", CF_ERR_CONFIG, 2, "expected https://");
	expect_error("[repository]\npart_size = 1K\n", CF_ERR_CONFIG, 2, "expected a size");
	expect_error("[repository]\npart_size = 16Q\n", CF_ERR_CONFIG, 2, "expected a size");
	expect_error("[repository]\nuri_style = dns\n", CF_ERR_CONFIG, 2, "path or virtual");
	expect_error("[repository]\norphan_age = soon\n", CF_ERR_CONFIG, 2, "duration");
	expect_error("[repository]\nobject_lock_mode = LEGAL\n", CF_ERR_CONFIG, 2, "GOVERNANCE");
	expect_error("[repository]\nendpoint = http://h\nbucket = b\naccess_key = A\n",
	             CF_ERR_CONFIG, 0, "go together");
	expect_error("\n[repo]\npath = /x\n", CF_ERR_CONFIG, 2, "unknown section [repo]");
	expect_error("[repository]\npath = /x\n[sauce]\n", CF_ERR_CONFIG, 3,
	             "unknown section [sauce]");
	expect_error("[source empty]\n; nothing\n", CF_ERR_CONFIG, 1, "has no type");
	expect_error("[repository]\ntype = ftp\n", CF_ERR_CONFIG, 2, "expected posix");
	expect_error("[compression]\nlevel = 99\n", CF_ERR_CONFIG, 2, "from 1 to 19");
	expect_error("[compression]\nlevel = 3x\n", CF_ERR_CONFIG, 2, "whole number");
	expect_error("[compression]\nworkers = many\n", CF_ERR_CONFIG, 2, "whole number");
	expect_error("[encryption]\nrecipients = age1nope\n", CF_ERR_CONFIG, 2,
	             "not an age X25519 recipient");
	expect_error("[encryption]\nrecipients = " RCPT ",,\n", CF_ERR_CONFIG, 2, "empty item");
	expect_error("path = /x\n", CF_ERR_CONFIG, 1, "outside any section");
	expect_error("[source a]\npaths = /etc\n", CF_ERR_CONFIG, 1, "has no type");
	expect_error("[source a]\n\ntype = tape\n", CF_ERR_CONFIG, 3, "unknown source type 'tape'");
	expect_error("[source a]\ntype = files\npaths = /etc\ncolour = red\n", CF_ERR_CONFIG, 4,
	             "unknown key 'colour'");
	expect_error("[source a]\ntype = files\n", CF_ERR_CONFIG, 1, "missing key 'paths'");
	expect_error("[source a]\ntype = command\nshell = maybe\ncommand = x\n", CF_ERR_CONFIG, 3,
	             "expected true or false");
	expect_error("[source a]\ntype = command\n", CF_ERR_CONFIG, 1, "missing key 'command'");
	expect_error("[source a/b]\ntype = command\ncommand = x\n", CF_ERR_CONFIG, 1,
	             "letters, digits");
	expect_error("[source]\ntype = command\n", CF_ERR_CONFIG, 1, "needs a name");
	expect_error("[repository]\nthis line has no equals sign\n", CF_ERR_CONFIG, 2,
	             "cannot parse");
}

static void test_s3(void **state)
{
	struct config *c = NULL;

	(void)state;
	write_conf(
	    "[repository]\ntype = s3\nendpoint = https://s3.example\nregion = eu-west-1\n"
	    "bucket = b\nprefix = host1/\npart_size = 8MiB\nupload_concurrency = 2\n"
	    "uri_style = virtual\naccess_key = AKID\nsecret_key = s3cr3t\norphan_age = 2h\n");
	/* A file holding secret_key must be 0600. */
	chmod(path, 0644);
	assert_int_equal(config_load(path, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "chmod 600"));
	assert_null(strstr(error_message(), "s3cr3t")); /* never the secret itself */
	chmod(path, 0600);
	assert_int_equal(config_load(path, &c), 0);
	assert_string_equal(c->repo_type, "s3");
	assert_string_equal(c->s3.bucket, "b");
	assert_string_equal(c->s3.region, "eu-west-1");
	assert_int_equal(c->s3.part_size, 8 * 1024 * 1024);
	assert_int_equal(c->s3.upload_concurrency, 2);
	assert_int_equal(c->s3.virtual_style, 1);
	assert_string_equal(c->s3.secret_key, "s3cr3t");
	assert_int_equal(c->orphan_age_ms, 2 * 3600 * 1000);
	config_free(c);
	unlink(path);
}

static void test_missing_file(void **state)
{
	struct config *c = NULL;

	(void)state;
	assert_int_equal(config_load("/nonexistent/coffer.conf", &c), CF_ERR_NOTFOUND);
	assert_non_null(strstr(error_message(), "/nonexistent/coffer.conf"));
}

static void test_split_list(void **state)
{
	struct strv v;

	(void)state;
	assert_int_equal(strv_split(" a ,b,\tc d ", &v), 0);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0], "a");
	assert_string_equal(v.v[2], "c d");
	assert_null(v.v[3]);
	strv_free(&v);
	assert_int_equal(strv_split("a,", &v), CF_ERR_CONFIG);
	assert_int_equal(v.n, 0);
	assert_int_equal(strv_split("", &v), CF_ERR_CONFIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_config), cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_errors),      cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_s3),          cmocka_unit_test(test_split_list),
	};

	age_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
