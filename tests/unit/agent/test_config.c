/* Tests agent/config.c: a full configuration loads; every kind of mistake is
 * refused with FILE:LINE and what was expected. */
#include "agent/agent.h"
#include "agent/config_ini.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
	assert_string_equal(c->targets[0].type, "posix");
	assert_string_equal(c->targets[0].path, "/srv/repo");
	/* made absolute against the configuration file's folder */
	assert_string_equal(c->catalog_path, COFFER_TEST_TMP "/relative/cat");
	assert_int_equal(c->recipients.n, 1); /* a recipient given twice is kept once */
	assert_string_equal(c->recipients.v[0], RCPT);
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
	assert_string_equal(c->targets[0].type, "posix");
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
	expect_error("path = /x\n", CF_ERR_CONFIG, 1, "before any [section]");
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
	             "is not a [section], a 'key = value' or a comment");
}

#define REPO "[repository]\npath = /srv/repo\n"

/* The INI rules (README, Configuration): each mistake that used to change
 * what is backed up without a word is an error naming FILE:LINE. */
static void test_syntax(void **state)
{
	(void)state;
	/* Duplicates name both lines. */
	expect_error(REPO "[source a]\ntype = files\npaths = /a\n[source a]\ntype = files\n"
	                  "paths = /tmp\n",
	             CF_ERR_CONFIG, 6, "[source a] again (first at line 3)");
	expect_error(REPO "[compression]\nlevel = 3\nlevel = 5\n", CF_ERR_CONFIG, 5,
	             "level is set again in [compression] (first at line 4)");
	expect_error("[repository]\npath = /a\n[catalog]\npath = /c\n[repository]\n", CF_ERR_CONFIG,
	             5, "[repository] again (first at line 1)");
	expect_error(REPO "[source a]\ntype = files\npaths = /a\n  paths = /b\n", CF_ERR_CONFIG, 6,
	             "paths is set again in [source a] (first at line 5)");
	/* A header without its ']' is reported as such, on its own line. */
	expect_error("[repository\ntype = posix\n", CF_ERR_CONFIG, 1, "has no closing ']'");
	expect_error("[repository] x\n", CF_ERR_CONFIG, 1, "text after the section header");
	expect_error("[]\n", CF_ERR_CONFIG, 1, "empty section header");
	/* A quote left open before a comment-like ';' is ambiguous. */
	expect_error(REPO "[source a]\ntype = command\ncommand = echo \"a ; b\n", CF_ERR_CONFIG, 5,
	             "quote is never closed");
	expect_error(REPO "[source a b]\ntype = command\ncommand = x\n", CF_ERR_CONFIG, 3,
	             "source name 'a b'");
	expect_error(REPO "[source a]\ntype = command\ncommand x = y\n", CF_ERR_CONFIG, 5,
	             "'command x' is not a key name");
	expect_error(REPO "[source a]\n= x\n", CF_ERR_CONFIG, 4, "a value without a key");
	/* Values the storage would refuse at the first upload. */
	expect_error("[repository]\ntype = s3\nendpoint = https://h\nbucket = b\n"
	             "storage_class = standard ia\n",
	             CF_ERR_CONFIG, 5, "storage_class = 'standard ia'");
	expect_error("[repository]\ntype = s3\nendpoint = https://h\nbucket = b\n"
	             "prefix = a/../b\n",
	             CF_ERR_CONFIG, 5, "prefix = 'a/../b'");
	expect_error(REPO "[source a]\ntype = files\npaths = /etc, etc\n", CF_ERR_CONFIG, 5,
	             "paths: 'etc' is not an absolute path");
	/* A configuration must name its repository; posix needs a path. */
	expect_error("", CF_ERR_CONFIG, 0, "no [repository] section");
	expect_error("; only comments\n[compression]\nlevel = 3\n", CF_ERR_CONFIG, 0,
	             "no [repository] section");
	expect_error("\n[repository]\ntype = posix\n", CF_ERR_CONFIG, 2, "needs path");
}

/* What the rules accept, and how values come out. */
static void test_syntax_values(void **state)
{
	struct config *c = NULL;
	struct source *s;
	char *text, *big;
	size_t n = 0;

	(void)state;
	/* A line of any length up to 64 KiB: 300 recipients on one line
	 * (about 19 KiB), then 100 more on a repeated key that adds to them. */
	text = malloc(64 * 1024);
	big = malloc(CONFIG_INI_LINE_MAX + 64);
	assert_non_null(text);
	assert_non_null(big);
	n = (size_t)sprintf(big, "\xEF\xBB\xBF" REPO "[encryption]\r\nrecipients = ");
	for (int i = 0; i < 300; i++)
		n += (size_t)sprintf(big + n, "%s" RCPT, i ? ", " : "");
	n += (size_t)sprintf(big + n,
	                     " ; all the same key\r\n"
	                     "recipients = " RCPT "\n"
	                     "[source q]\n"
	                     "  type = command   # indented lines are lines like others\n"
	                     "  command = echo \"a ; b\" 'c # d' e;f \"g\\\" ; h\" ; a comment\n"
	                     "[source  spaced\t]\ntype = files\npaths = /etc ; x\n");
	write_conf(big);
	assert_int_equal(config_load(path, &c), 0);
	assert_int_equal(c->recipients.n, 1); /* the same recipient, kept once */
	s = config_source_find(c, "q");
	assert_non_null(s);
	assert_non_null(config_source_find(c, "spaced"));
	config_free(c);
	c = NULL;
	/* A line of exactly 64 KiB is read whole; one byte more is an error. */
	memset(big, 0, CONFIG_INI_LINE_MAX + 64);
	n = (size_t)sprintf(big, REPO "[source q]\ntype = command\ncommand = echo ");
	{
		size_t start = n - strlen("command = echo ");

		while (n - start < CONFIG_INI_LINE_MAX)
			big[n++] = 'x';
		big[n++] = '\n';
	}
	write_conf(big);
	assert_int_equal(config_load(path, &c), 0);
	config_free(c);
	c = NULL;
	n--;
	big[n++] = 'x';
	big[n++] = '\n';
	big[n] = '\0';
	expect_error(big, CF_ERR_CONFIG, 5, "line longer than 65536 bytes");
	free(big);
	free(text);
}

/* Collects "line|section|key|value" of each item. */
static int ini_collect(void *ctx, const struct config_ini_item *it)
{
	struct buf *b = ctx;

	return buf_printf(b, "%d|%s|%s|%s\n", it->line, it->section, it->key ? it->key : "-",
	                  it->value ? it->value : "-");
}

static int ini_run(const char *text, size_t len, struct buf *out)
{
	FILE *f = fmemopen((void *)(uintptr_t)text, len, "r");
	int rc;

	assert_non_null(f);
	buf_reset(out);
	error_clear();
	rc = config_ini_parse(f, "t.conf", ini_collect, out);
	fclose(f);
	(void)buf_printf(out, "%s", "");
	return rc;
}

/* The reader's rules for comments, quotes, blanks and line ends. */
static void test_ini_values(void **state)
{
	static const char text[] = "# c\r\n ; c\n[ source\t  x ]  ; c\n"
	                           "a = echo \"a ; b\" 'c # d' e;f \"g\\\" ; h\" ; comment\n"
	                           "\tb=  v  \r\n"
	                           "c = ; only a comment\n"
	                           "d = it's fine\n"
	                           "e = x=y # z\n"
	                           "f = a#b ;c\n";
	static const char nul[] = "[s]\na = x\0y\n";
	struct buf out;

	(void)state;
	buf_init(&out, 1 << 20);
	assert_int_equal(ini_run(text, sizeof(text) - 1, &out), 0);
	assert_string_equal((char *)out.data,
	                    "3|source x|-|-\n"
	                    "4|source x|a|echo \"a ; b\" 'c # d' e;f \"g\\\" ; h\"\n"
	                    "5|source x|b|v\n"
	                    "6|source x|c|\n"
	                    "7|source x|d|it's fine\n"
	                    "8|source x|e|x=y\n"
	                    "9|source x|f|a#b\n");
	assert_int_equal(ini_run(nul, sizeof(nul) - 1, &out), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "t.conf:2: a NUL byte"));
	assert_int_equal(ini_run("[s]\nd = it's ; not sure\n", 25, &out), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "t.conf:2: d: the ' quote is never closed"));
	buf_free(&out);
}

/* --config naming a folder says so (not "no recipients" later). */
static void test_config_folder(void **state)
{
	struct config *c = NULL;

	(void)state;
	mkdir(COFFER_TEST_TMP, 0755);
	assert_int_equal(config_load(COFFER_TEST_TMP, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "is a folder, not a configuration file"));
	assert_null(c);
}

/* [repository NAME] sections: more targets, each with the keys of
 * [repository], the primary first. */
static void test_targets(void **state)
{
	struct config *c = NULL;

	(void)state;
	write_conf("[repository eu]\ntype = s3\nendpoint = https://s3.eu\nbucket = b\n"
	           "region = eu-west-1\n[repository]\npath = /srv/repo\n"
	           "[repository local]\npath = rel\n");
	assert_int_equal(config_load(path, &c), 0);
	assert_int_equal(c->ntargets, 3);
	assert_string_equal(c->targets[0].name, "primary");
	assert_string_equal(c->targets[0].path, "/srv/repo");
	assert_string_equal(c->targets[1].name, "eu");
	assert_string_equal(c->targets[1].type, "s3");
	assert_string_equal(c->targets[1].s3.region, "eu-west-1");
	assert_string_equal(c->targets[2].type, "posix");
	assert_string_equal(c->targets[2].path, COFFER_TEST_TMP "/rel");
	config_free(c);
	unlink(path);
	expect_error(REPO "[repository eu]\npath = /a\n[repository eu]\npath = /b\n", CF_ERR_CONFIG,
	             5, "[repository eu] again (first at line 3)");
	expect_error(REPO "[repository primary]\npath = /a\n", CF_ERR_CONFIG, 3, "not 'primary'");
	expect_error(REPO "[repository a/b]\npath = /a\n", CF_ERR_CONFIG, 3,
	             "repository name 'a/b'");
	expect_error(REPO "[repository eu]\npath = /a\norphan_age = 1h\n", CF_ERR_CONFIG, 5,
	             "orphan_age is set in [repository] only");
	expect_error(REPO "\n[repository eu]\ntype = posix\n", CF_ERR_CONFIG, 4,
	             "[repository eu] type = posix needs path");
	expect_error("[repository eu]\npath = /a\n", CF_ERR_CONFIG, 0, "no [repository] section");
	/* A key that would do nothing is an error, not ignored. */
	expect_error(REPO "\n[repository nas]\ntype = posix\npath = /a\nmax_upload_rate = 10MB\n",
	             CF_ERR_CONFIG, 4,
	             "[repository nas] max_upload_rate is a key of type = s3; this repository is "
	             "a posix folder");
	expect_error(REPO "\n[repository nas]\npath = /a\npart_size = 8MiB\n", CF_ERR_CONFIG, 4,
	             "part_size is a key of type = s3");
	expect_error(REPO "\n[repository eu]\ntype = s3\nendpoint = http://h\nbucket = b\npath = "
	                  "/a\n",
	             CF_ERR_CONFIG, 4, "path is for type = posix");
}

/* repositories = ...: a source keeps to some targets and needs
 * copies_required of them, or all when it names fewer. */
static void test_source_repositories(void **state)
{
	struct config *c = NULL;

	(void)state;
	write_conf("[repository]\npath = /srv/repo\ncopies_required = 2\n"
	           "[repository eu]\npath = /eu\n[repository us2]\npath = /us2\n"
	           "[source a]\ntype = command\ncommand = true\nrepositories = us2, primary\n"
	           "[source b]\ntype = command\ncommand = true\nrepositories = eu\n"
	           "[source c]\ntype = command\ncommand = true\n");
	assert_int_equal(config_load(path, &c), 0);
	assert_true(config_source_uses(c, "a", 0));
	assert_false(config_source_uses(c, "a", 1));
	assert_true(config_source_uses(c, "a", 2));
	assert_int_equal(config_copies_required(c, "a"), 2);
	assert_false(config_source_uses(c, "b", 0));
	assert_true(config_source_uses(c, "b", 1));
	assert_int_equal(config_copies_required(c, "b"), 1);
	assert_true(config_source_uses(c, "c", 1));
	assert_int_equal(config_copies_required(c, "c"), 2);
	/* a name that is no configured source (backup --stdin NAME): all */
	assert_true(config_source_uses(c, "other", 2));
	assert_int_equal(config_copies_required(c, "other"), 2);
	config_free(c);
	unlink(path);
	expect_error(REPO "[repository eu]\npath = /a\n[source s]\ntype = command\ncommand = true\n"
	                  "repositories = primary, us\n",
	             CF_ERR_CONFIG, 8, "no repository named 'us' (expected some of primary, eu)");
	expect_error(REPO
	             "[source s]\ntype = command\ncommand = true\nrepositories = primary,primary\n",
	             CF_ERR_CONFIG, 6, "'primary' is listed twice");
	expect_error(REPO "[repository eu]\npath = /a\ncopy = fast\n", CF_ERR_CONFIG, 5,
	             "copy = 'fast': expected stream or server");
	expect_error(REPO "[source s]\ntype = command\ncommand = true\nrepositories = primary,,x\n",
	             CF_ERR_CONFIG, 6, "repositories");
}

/* Retention keys in [retention], [source NAME] and [repository ...]: per key,
 * the target's value over the source's over [retention]'s. */
static void test_retention(void **state)
{
	struct retention_policy p;
	struct config *c = NULL;

	(void)state;
	write_conf("[repository]\npath = /srv/repo\n[repository eu]\npath = /eu\n"
	           "keep_daily = 90\nkeep_monthly = 12\n"
	           "[retention]\nkeep_daily = 7\nkeep_within = 2d\ntimezone = UTC\n"
	           "[source a]\ntype = command\ncommand = true\nkeep_daily = 30\nmin_keep = 3\n"
	           "[source b]\ntype = command\ncommand = true\n");
	assert_int_equal(config_load(path, &c), 0);
	config_retention_policy(c, "a", 0, &p);
	assert_true(p.set);
	assert_int_equal(p.keep[RETENTION_DAILY], 30);
	assert_int_equal(p.keep[RETENTION_MONTHLY], 0);
	assert_int_equal(p.keep_within_ms, 2 * 86400000LL);
	assert_int_equal(p.min_keep, 3);
	assert_int_equal(p.keep_failed_ms, 7 * 86400000LL);
	assert_string_equal(p.timezone, "UTC");
	config_retention_policy(c, "a", 1, &p);
	assert_int_equal(p.keep[RETENTION_DAILY], 90);
	assert_int_equal(p.keep[RETENTION_MONTHLY], 12);
	config_retention_policy(c, "b", 0, &p);
	assert_int_equal(p.keep[RETENTION_DAILY], 7);
	assert_int_equal(p.min_keep, 1);
	config_free(c);
	/* No keep_* key anywhere: no policy. */
	write_conf("[repository]\npath = /srv/repo\n[retention]\nmin_keep = 2\n"
	           "[source b]\ntype = command\ncommand = true\n");
	assert_int_equal(config_load(path, &c), 0);
	config_retention_policy(c, "b", 0, &p);
	assert_false(p.set);
	config_free(c);
	unlink(path);
	expect_error(REPO "[retention]\nkeep_daily = -1\n", CF_ERR_CONFIG, 4,
	             "keep_daily = '-1': expected a whole number");
	expect_error(REPO "[retention]\ntimezone = Mars/Olympus\n", CF_ERR_CONFIG, 4,
	             "timezone 'Mars/Olympus' is unknown");
	expect_error(REPO "[retention]\nkeep = 3\n", CF_ERR_CONFIG, 4,
	             "unknown key 'keep' in [retention]");
	expect_error(REPO "[source s]\ntype = command\ncommand = true\nkeep_within = 3x\n",
	             CF_ERR_CONFIG, 6, "keep_within = ");
	expect_error(REPO "[repository eu]\npath = /a\nkeep_weekly = many\n", CF_ERR_CONFIG, 5,
	             "keep_weekly = 'many'");
}

/* The drill keys of a source: rto_target, drill_shrink_warn, drill_target
 * (postgres and mysql only). */
static void test_drill_keys(void **state)
{
	struct config *c = NULL;

	(void)state;
	write_conf("[repository]\npath = /srv/repo\n"
	           "[source a]\ntype = postgres\nrto_target = 15m\ndrill_shrink_warn = 20%\n"
	           "expect_every = 26h\n"
	           "drill_target = host=/run/pg port=5433\n"
	           "[source b]\ntype = sqlite\npath = /srv/app.db\n");
	assert_int_equal(config_load(path, &c), 0);
	assert_int_equal(c->sources[0].rto_target_ms, 15 * 60000LL);
	assert_int_equal(c->sources[0].shrink_warn, 20);
	assert_int_equal(c->sources[0].expect_every_ms, 26 * 3600000LL);
	assert_string_equal(c->sources[0].drill_target, "host=/run/pg port=5433");
	assert_int_equal(c->sources[1].rto_target_ms, 0);
	assert_int_equal(c->sources[1].shrink_warn, 50);
	assert_null(c->sources[1].drill_target);
	config_free(c);
	unlink(path);
	expect_error(REPO "[source s]\ntype = postgres\nrto_target = soon\n", CF_ERR_CONFIG, 5,
	             "rto_target = 'soon': expected a duration");
	expect_error(REPO "[source s]\ntype = postgres\ndrill_shrink_warn = 150%\n", CF_ERR_CONFIG,
	             5, "drill_shrink_warn = '150%': expected a percentage 0..100");
	expect_error(REPO "[source s]\ntype = redis\nnice = 20\n", CF_ERR_CONFIG, 5,
	             "nice = '20': expected 0 to 19");
	expect_error(REPO "[source s]\ntype = redis\nionice = realtime\n", CF_ERR_CONFIG, 5,
	             "ionice = 'realtime': expected idle, or best-effort[:0-7]");
	expect_error(REPO "[notify]\nwebhook_url = ftp://x\n", CF_ERR_CONFIG, 4,
	             "webhook_url must be an http:// or https:// URL");
	expect_error(REPO "[notify]\non_start = true\n", CF_ERR_CONFIG, 4,
	             "unknown key 'on_start' in [notify]");
	expect_error(REPO "[source s]\ntype = redis\nexpect_every = daily\n", CF_ERR_CONFIG, 5,
	             "expect_every = 'daily': expected a duration");
	expect_error(REPO "[source s]\ntype = redis\ndrill_target = x\n", CF_ERR_CONFIG, 5,
	             "drill_target is for postgres and mysql sources");
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
	assert_string_equal(c->targets[0].type, "s3");
	assert_string_equal(c->targets[0].s3.bucket, "b");
	assert_string_equal(c->targets[0].s3.region, "eu-west-1");
	assert_int_equal(c->targets[0].s3.part_size, 8 * 1024 * 1024);
	assert_int_equal(c->targets[0].s3.upload_concurrency, 2);
	assert_int_equal(c->targets[0].s3.virtual_style, 1);
	assert_string_equal(c->targets[0].s3.secret_key, "s3cr3t");
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
	    cmocka_unit_test(test_syntax),      cmocka_unit_test(test_syntax_values),
	    cmocka_unit_test(test_ini_values),  cmocka_unit_test(test_config_folder),
	    cmocka_unit_test(test_targets),     cmocka_unit_test(test_source_repositories),
	    cmocka_unit_test(test_retention),   cmocka_unit_test(test_drill_keys),
	};

	age_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
