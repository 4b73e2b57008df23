/* Tests agent/backup_run.c, the backup stream, end to end over a posix
 * repository and a catalog in a temporary folder, with a scripted source:
 * a good run stores its objects and a signed manifest that the repository
 * layer finds and the restore stream reads back byte for byte; a source that
 * fails half-way, an empty object, and missing items each end as the record
 * says (failed with nothing left in the repository, or partial), and no run
 * stays in the catalog's running index. */
#include "agent/backup_run.h"
#include "agent/pipeline/restore_stream.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define DATA_LEN (600 * 1024)

enum mode { MODE_GOOD, MODE_FAIL_HALFWAY, MODE_EMPTY, MODE_MISSING };

static struct {
	char dir[512], repo_dir[600], cat_dir[600];
	struct config *cfg;
	struct catalog *cat;
	struct repo *repo;
	struct repo_trust trust;
	struct age_recipients *rcpt;
	struct age_identities *ids;
	struct sign_key *sign;
	uint8_t *data;
	enum mode mode;
} t;

/* The scripted source: two streams, "a" (DATA_LEN bytes) and "b" (the first
 * 1000 bytes), or what the mode asks for: a empty, a failure while b is
 * written, a missing item between the two. */
static int fake_run(void *state, struct backup_run *run)
{
	struct filter *head;
	int rc;

	(void)state;
	rc = backup_stream_open(run, "a", "raw", &head);
	if (!rc && t.mode != MODE_EMPTY)
		rc = filter_write(head, t.data, DATA_LEN);
	if (!rc)
		rc = backup_stream_close(run);
	if (!rc && t.mode == MODE_MISSING)
		rc = backup_run_add_missing(run, "/gone", "No such file or directory");
	if (!rc)
		rc = backup_stream_open(run, "b", "raw", &head);
	if (!rc)
		rc = filter_write(head, t.data, 1000);
	/* Object a is stored by now: a failure must remove it. */
	if (!rc && t.mode == MODE_FAIL_HALFWAY)
		return error_set(CF_ERR_SOURCE, "source fake: the dump broke off");
	if (!rc)
		rc = backup_stream_close(run);
	return rc;
}

static const struct source_ops fake_ops = {.type = "fake", .run = fake_run};

static int setup(void **state)
{
	char identity[AGE_IDENTITY_LEN + 1], recipient[AGE_RECIPIENT_LEN + 1], key[700];
	struct storage_options opts;
	uint32_t x = 7;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(age_init(), 0);
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	snprintf(t.dir, sizeof(t.dir), "%s/backup-run.%d", COFFER_TEST_TMP, (int)getpid());
	fs_remove_tree(t.dir);
	snprintf(t.repo_dir, sizeof(t.repo_dir), "%s/repo", t.dir);
	snprintf(t.cat_dir, sizeof(t.cat_dir), "%s/catalog", t.dir);
	assert_int_equal(fs_mkdir_p(t.repo_dir, 0700), 0);

	assert_int_equal(age_keygen(identity, recipient), 0);
	assert_int_equal(age_recipients_new(&t.rcpt), 0);
	assert_int_equal(age_recipients_add(t.rcpt, recipient), 0);
	assert_int_equal(age_identities_new(&t.ids), 0);
	assert_int_equal(age_identities_add(t.ids, identity), 0);
	assert_int_equal(config_empty(&t.cfg), 0);
	t.cfg->zstd_workers = 0;
	assert_int_equal(strv_add(&t.cfg->recipients, recipient), 0);

	snprintf(key, sizeof(key), "%s/signing.key", t.dir);
	assert_int_equal(sign_key_load(key, 1, &t.sign), 0);
	assert_int_equal(strv_add(&t.trust.keys, sign_key_public(t.sign)), 0);
	assert_int_equal(catalog_open(t.cat_dir, &t.cat), 0);
	memset(&opts, 0, sizeof(opts));
	opts.type = "posix";
	opts.posix.path = t.repo_dir;
	assert_int_equal(repo_open("primary", &opts, t.cat, &t.trust, &t.repo), 0);

	t.data = malloc(DATA_LEN);
	assert_non_null(t.data);
	for (size_t i = 0; i < DATA_LEN; i++) {
		x = x * 1664525u + 1013904223u;
		t.data[i] = i % 3 ? (uint8_t)('a' + i % 19) : (uint8_t)(x >> 24);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	repo_close(t.repo);
	catalog_close(t.cat);
	repo_trust_free(&t.trust);
	sign_key_free(t.sign);
	age_recipients_free(t.rcpt);
	age_identities_free(t.ids);
	config_free(t.cfg);
	free(t.data);
	fs_remove_tree(t.dir);
	return 0;
}

/* Runs the fake source named name in mode; returns the run's result code
 * and the final record in *res. */
static int run_source(const char *name, enum mode mode, int allow_empty, int strict,
                      struct catalog_backup **res)
{
	struct backup_run_params p;
	const char *loc[1];
	struct source src;

	memset(&p, 0, sizeof(p));
	p.cfg = t.cfg;
	p.repos = &t.repo;
	p.nrepos = 1;
	p.copies_required = 1;
	loc[0] = repo_location(t.repo);
	p.locations = loc;
	p.catalog = t.cat;
	p.recipients = t.rcpt;
	p.sign = t.sign;
	memset(&src, 0, sizeof(src));
	src.name = (char *)(uintptr_t)name;
	src.ops = &fake_ops;
	src.allow_empty = allow_empty;
	src.strict = strict;
	t.mode = mode;
	*res = NULL;
	return backup_run_source(&p, &src, "fake", res);
}

static int count_running(void *ctx, const struct catalog_backup *b)
{
	(void)b;
	(*(int *)ctx)++;
	return 0;
}

static void assert_nothing_running(void)
{
	int n = 0;

	assert_int_equal(catalog_backup_list_running(t.cat, count_running, &n), 0);
	assert_int_equal(n, 0);
}

/* Counts the objects stored under prefix. */
static int count_cb(void *ctx, const char *key, const struct storage_info *info)
{
	(void)key;
	(void)info;
	(*(int *)ctx)++;
	return 0;
}

static int count_objects(const char *prefix)
{
	int n = 0;

	assert_int_equal(storage_list(repo_storage(t.repo), prefix, count_cb, &n), 0);
	return n;
}

static int keep_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops keep_ops = {"keep", keep_write, NULL, NULL};

static void test_good_run_restores(void **state)
{
	struct catalog_backup *res = NULL, *found = NULL;
	struct buf got;
	struct filter *sink;

	(void)state;
	assert_int_equal(run_source("good", MODE_GOOD, 0, 0, &res), 0);
	assert_int_equal(res->status, CATALOG_COMPLETE);
	assert_int_equal(res->nobjects, 2);
	assert_int_equal(res->objects[0].raw_bytes, DATA_LEN);
	assert_int_equal(count_objects(res->prefix), 3); /* a, b, manifest.json */
	assert_nothing_running();

	/* The repository layer finds it (record and signed manifest agree)... */
	assert_int_equal(repo_find_backup(t.repo, res->id, NULL, 0, &found), 0);
	assert_string_equal(found->objects[0].sha256, res->objects[0].sha256);
	/* ...and the restore stream gives back the very bytes. */
	buf_init(&got, 4 * DATA_LEN);
	sink = filter_new(&keep_ops, &got);
	assert_non_null(sink);
	assert_int_equal(
	    restore_stream_run(repo_storage(t.repo), &found->objects[0], t.ids, sink, 0), 0);
	assert_int_equal(got.len, DATA_LEN);
	assert_memory_equal(got.data, t.data, DATA_LEN);
	buf_free(&got);
	catalog_backup_free(found);
	catalog_backup_free(res);
}

static void test_failed_run_leaves_nothing(void **state)
{
	struct catalog_backup *res = NULL, *rec = NULL;

	(void)state;
	assert_int_equal(run_source("broken", MODE_FAIL_HALFWAY, 0, 0, &res), CF_ERR_SOURCE);
	assert_non_null(res);
	assert_int_equal(res->status, CATALOG_FAILED);
	assert_int_equal(catalog_backup_get(t.cat, res->id, &rec), 0);
	assert_int_equal(rec->status, CATALOG_FAILED);
	assert_non_null(strstr(rec->error, "the dump broke off"));
	assert_int_equal(res->nobjects, 2); /* both were recorded before written */
	assert_int_equal(count_objects("broken/"), 0);
	assert_nothing_running();
	catalog_backup_free(rec);
	rec = NULL;
	/* Not a backup: restore refuses it. */
	assert_int_equal(repo_find_backup(t.repo, res->id, NULL, 0, &rec), CF_ERR_NOTFOUND);
	assert_null(rec);
	catalog_backup_free(res);
}

static void test_empty_object(void **state)
{
	struct catalog_backup *res = NULL;

	(void)state;
	assert_int_equal(run_source("empty", MODE_EMPTY, 0, 0, &res), CF_ERR_SOURCE);
	assert_non_null(strstr(error_message(), "allow_empty = true"));
	assert_int_equal(res->status, CATALOG_FAILED);
	assert_int_equal(count_objects("empty/"), 0);
	catalog_backup_free(res);

	assert_int_equal(run_source("empty", MODE_EMPTY, 1, 0, &res), 0);
	assert_int_equal(res->status, CATALOG_COMPLETE);
	assert_int_equal(res->objects[0].raw_bytes, 0);
	catalog_backup_free(res);
	assert_nothing_running();
}

static void test_missing_is_partial_or_strict(void **state)
{
	struct catalog_backup *res = NULL;

	(void)state;
	assert_int_equal(run_source("part", MODE_MISSING, 0, 0, &res), 0);
	assert_int_equal(res->status, CATALOG_COMPLETE);
	assert_int_equal(res->missing_count, 1);
	assert_string_equal(res->missing.v[0], "/gone: No such file or directory");
	assert_string_equal(agent_status_label(res), "partial");
	catalog_backup_free(res);

	assert_int_equal(run_source("strict", MODE_MISSING, 0, 1, &res), CF_ERR_SOURCE);
	assert_non_null(strstr(error_message(), "strict = true"));
	assert_int_equal(count_objects("strict/"), 0);
	catalog_backup_free(res);
	assert_nothing_running();
}

/* Deleting a backup: manifest first, then objects, then the record. */
static void test_delete_backup(void **state)
{
	struct catalog_backup *res = NULL, *rec = NULL;

	(void)state;
	assert_int_equal(run_source("gone", MODE_GOOD, 0, 0, &res), 0);
	assert_int_equal(count_objects(res->prefix), 3);
	assert_int_equal(repo_delete_backup(t.repo, res), 0);
	assert_int_equal(count_objects(res->prefix), 0);
	assert_int_equal(catalog_backup_get(t.cat, res->id, &rec), CF_ERR_NOTFOUND);
	assert_int_equal(repo_find_backup(t.repo, res->id, NULL, 0, &rec), CF_ERR_NOTFOUND);
	/* Again (a prune interrupted after its last step): nothing to do. */
	assert_int_equal(repo_delete_backup(t.repo, res), 0);
	catalog_backup_free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_run_restores, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_run_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_object, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_is_partial_or_strict, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_backup, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
