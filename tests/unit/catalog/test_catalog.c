/*
 * Tests of the LMDB catalog: put/get/delete, listing order, the by_source
 * index, persistence across reopen and the schema version check. Each test
 * works in its own fresh directory under COFFER_TEST_TMP.
 */
#include "catalog/catalog.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fixture {
	char dir[512];
	char path[600]; /* the catalog directory, created by catalog_open */
	struct catalog *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	snprintf(f->dir, sizeof(f->dir), "%s/catalog-XXXXXX", COFFER_TEST_TMP);
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sub/catalog", f->dir);
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	catalog_close(f->c);
	fs_remove_tree(f->dir);
	free(f);
	return 0;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* A record for source with an id made from a time in seconds. */
static struct catalog_backup *record(const char *source, int64_t secs, uint32_t rnd)
{
	struct catalog_backup *b = catalog_backup_new();
	struct catalog_object *o;
	char id[BACKUP_ID_LEN + 1];
	char key[256];

	assert_non_null(b);
	backup_id_format(secs * 1000, rnd, id);
	b->id = xstrdup(id);
	b->source = xstrdup(source);
	b->kind = xstrdup("files");
	b->started_ms = secs * 1000;
	b->status = CATALOG_RUNNING;
	b->pid = 77;
	o = catalog_backup_add_object(b);
	assert_non_null(o);
	snprintf(key, sizeof(key), "%s/%s/files.tar.zst.age", source, id);
	o->key = xstrdup(key);
	o->sha256 = xstrdup(SHA);
	return b;
}

static int collect_ids(void *ctx, const struct catalog_backup *b)
{
	return buf_printf(ctx, "%s:%s ", b->source, b->id + 9); /* skip the date */
}

static char *list_text(struct catalog *c, const char *source)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(catalog_backup_list(c, source, collect_ids, &b), 0);
	return (char *)b.data;
}

static void assert_list(struct catalog *c, const char *source, const char *want)
{
	char *text = list_text(c, source);

	assert_string_equal(text, want);
	free(text);
}

static void test_put_get_delete(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *b = record("web", 1795338646, 0xabc), *got;
	struct stat st;
	char id[BACKUP_ID_LEN + 1];

	/* The directory was created private. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_int_equal(catalog_backup_get(f->c, b->id, &got), 0);
	assert_string_equal(got->id, b->id);
	assert_string_equal(got->source, "web");
	assert_int_equal(got->status, CATALOG_RUNNING);
	assert_int_equal(got->pid, 77);
	assert_int_equal(got->nobjects, 1);
	catalog_backup_free(got);

	/* Replace: the run completes. */
	b->status = CATALOG_COMPLETE;
	b->finished_ms = b->started_ms + 5000;
	b->pid = 0;
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_int_equal(catalog_backup_get(f->c, b->id, &got), 0);
	assert_int_equal(got->status, CATALOG_COMPLETE);
	assert_int_equal(got->finished_ms, b->finished_ms);
	catalog_backup_free(got);
	assert_list(f->c, NULL, "web:091046.000Z-00000abc ");

	assert_int_equal(catalog_backup_delete(f->c, b->id), 0);
	assert_int_equal(catalog_backup_get(f->c, b->id, &got), CF_ERR_NOTFOUND);
	assert_null(got);
	assert_non_null(strstr(error_message(), b->id));
	assert_non_null(strstr(error_message(), f->path));
	/* Deleting a missing record succeeds. */
	assert_int_equal(catalog_backup_delete(f->c, b->id), 0);
	assert_int_equal(catalog_backup_delete(f->c, "nonsense"), 0);
	assert_list(f->c, NULL, "");
	assert_list(f->c, "web", "");

	backup_id_format(0, 1, id);
	assert_int_equal(catalog_backup_get(f->c, id, &got), CF_ERR_NOTFOUND);
	assert_int_equal(catalog_backup_get(f->c, "", &got), CF_ERR_NOTFOUND);

	/* Bad records are refused. */
	free(b->id);
	b->id = xstrdup("not-an-id");
	assert_int_equal(catalog_backup_put(f->c, b), CF_ERR_CATALOG);
	catalog_backup_free(b);
}

static void test_list_order_and_source(void **state)
{
	struct fixture *f = *state;
	/* Inserted out of order; sources interleave; "web" is a prefix of
	 * "web2" and must not pick up its records. */
	static const struct {
		const char *source;
		int64_t secs;
	} runs[] = {
	    {"web", 1795338603}, {"db", 1795338601},  {"web2", 1795338602},
	    {"db", 1795338605},  {"web", 1795338600}, {"web", 1795338604},
	};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct catalog_backup *b = record(runs[i].source, runs[i].secs, 1);

		assert_int_equal(catalog_backup_put(f->c, b), 0);
		catalog_backup_free(b);
	}
	assert_list(f->c, NULL,
	            "web:091000.000Z-00000001 db:091001.000Z-00000001 web2:091002.000Z-00000001 "
	            "web:091003.000Z-00000001 web:091004.000Z-00000001 db:091005.000Z-00000001 ");
	assert_list(f->c, "web",
	            "web:091000.000Z-00000001 web:091003.000Z-00000001 web:091004.000Z-00000001 ");
	assert_list(f->c, "db", "db:091001.000Z-00000001 db:091005.000Z-00000001 ");
	assert_list(f->c, "web2", "web2:091002.000Z-00000001 ");
	assert_list(f->c, "we", "");
	assert_list(f->c, "zzz", "");
	assert_list(f->c, "", "");
}

/* Moves a record to another source on replace: the index follows. */
static void test_index_consistency(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *b = record("old", 1795338600, 2);

	assert_int_equal(catalog_backup_put(f->c, b), 0);
	free(b->source);
	b->source = xstrdup("new");
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_list(f->c, "old", "");
	assert_list(f->c, "new", "new:091000.000Z-00000002 ");
	assert_list(f->c, NULL, "new:091000.000Z-00000002 ");
	assert_int_equal(catalog_backup_delete(f->c, b->id), 0);
	assert_list(f->c, "new", "");
	catalog_backup_free(b);
}

struct stop_ctx {
	struct catalog *c;
	int seen;
};

/* Deletes each record as it is listed, and stops after two. */
static int delete_as_we_go(void *ctx, const struct catalog_backup *b)
{
	struct stop_ctx *s = ctx;

	if (++s->seen > 2)
		return 99;
	return catalog_backup_delete(s->c, b->id);
}

static void test_list_callback_changes(void **state)
{
	struct fixture *f = *state;
	struct stop_ctx s = {f->c, 0};

	for (int i = 0; i < 4; i++) {
		struct catalog_backup *b = record("src", 1795338600 + i, 3);

		assert_int_equal(catalog_backup_put(f->c, b), 0);
		catalog_backup_free(b);
	}
	assert_int_equal(catalog_backup_list(f->c, "src", delete_as_we_go, &s), 99);
	assert_int_equal(s.seen, 3);
	assert_list(f->c, "src", "src:091002.000Z-00000003 src:091003.000Z-00000003 ");
	assert_list(f->c, NULL, "src:091002.000Z-00000003 src:091003.000Z-00000003 ");
}

static void test_reopen_persists(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *b = record("keep", 1795338600, 4), *got;

	assert_int_equal(catalog_backup_put(f->c, b), 0);
	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_int_equal(catalog_backup_get(f->c, b->id, &got), 0);
	assert_string_equal(got->source, "keep");
	catalog_backup_free(got);
	assert_list(f->c, "keep", "keep:091000.000Z-00000004 ");
	catalog_backup_free(b);
}

/* Writes meta/schema_version by hand with the LMDB API. */
static void write_schema_version(const char *path, const char *text)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = {14, (void *)(uintptr_t) "schema_version"};
	MDB_val val = {strlen(text), (void *)(uintptr_t)text};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_schema_version(void **state)
{
	struct fixture *f = *state;
	struct catalog *c = (struct catalog *)1;
	char want[1024];

	catalog_close(f->c);
	f->c = NULL;

	write_schema_version(f->path, "99");
	assert_int_equal(catalog_open(f->path, &c), CF_ERR_CATALOG);
	assert_null(c);
	snprintf(want, sizeof(want),
	         "catalog at %s has schema version 99, this coffer understands up to %d", f->path,
	         CATALOG_SCHEMA_VERSION);
	assert_string_equal(error_message(), want);

	write_schema_version(f->path, "1x");
	assert_int_equal(catalog_open(f->path, &c), CF_ERR_CATALOG);
	assert_non_null(strstr(error_message(), "malformed"));

	write_schema_version(f->path, "1");
	assert_int_equal(catalog_open(f->path, &f->c), 0);
}

static void test_open_errors(void **state)
{
	char dir[512], path[600];
	struct catalog *c;
	FILE *fp;

	(void)state;
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/catalog-file-XXXXXX", COFFER_TEST_TMP);
	assert_non_null(mkdtemp(dir));
	/* A plain file where the catalog directory should be. */
	snprintf(path, sizeof(path), "%s/f", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_not_equal(catalog_open(path, &c), 0);
	assert_null(c);
	assert_non_null(strstr(error_message(), path));
	fs_remove_tree(dir);
	catalog_close(NULL);
}

static int collect_running(void *ctx, const struct catalog_backup *b)
{
	return buf_printf(ctx, "%s:%s ", b->source, b->id + 9);
}

static char *walk_text(struct catalog *c, int which, const char *location)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	assert_int_equal(buf_append(&b, "", 0), 0);
	if (which == 0)
		assert_int_equal(catalog_backup_list_running(c, collect_running, &b), 0);
	else
		assert_int_equal(catalog_backup_list_at(c, location, collect_running, &b), 0);
	return (char *)b.data;
}

static void assert_walk(struct catalog *c, int which, const char *location, const char *want)
{
	char *text = walk_text(c, which, location);

	assert_string_equal(text, want);
	free(text);
}

/* The running index follows every put and delete; the location index holds
 * each record under each of its locations, and records without one are
 * listed with every location, in time order. */
static void test_running_and_location_index(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *a = record("web", 1795338646, 1), *b = record("db", 1795338650, 2),
	                      *c = record("web", 1795338660, 3);

	assert_int_equal(strv_add(&a->locations, "posix:/r1"), 0);
	assert_int_equal(strv_add(&b->locations, "posix:/r2"), 0);
	assert_int_equal(strv_add(&b->locations, "posix:/r1"), 0);
	/* c has no location: a record from before locations. */
	assert_int_equal(catalog_backup_put(f->c, a), 0);
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_int_equal(catalog_backup_put(f->c, c), 0);
	assert_walk(f->c, 0, NULL,
	            "web:091046.000Z-00000001 db:091050.000Z-00000002 "
	            "web:091100.000Z-00000003 ");
	b->status = CATALOG_COMPLETE;
	b->finished_ms = b->started_ms + 1;
	b->pid = 0;
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_int_equal(catalog_backup_delete(f->c, c->id), 0);
	assert_walk(f->c, 0, NULL, "web:091046.000Z-00000001 ");
	assert_walk(f->c, 1, "posix:/r1", "web:091046.000Z-00000001 db:091050.000Z-00000002 ");
	assert_walk(f->c, 1, "posix:/r2", "db:091050.000Z-00000002 ");
	assert_int_equal(catalog_backup_put(f->c, c), 0);
	assert_walk(f->c, 1, "posix:/r2", "db:091050.000Z-00000002 web:091100.000Z-00000003 ");
	/* A record that moves to another location leaves the old one. */
	assert_int_equal(strv_add(&a->locations, "posix:/r3"), 0);
	free(a->locations.v[0]);
	a->locations.v[0] = xstrdup("posix:/r2");
	assert_int_equal(catalog_backup_put(f->c, a), 0);
	assert_walk(f->c, 1, "posix:/r1", "db:091050.000Z-00000002 web:091100.000Z-00000003 ");
	assert_walk(f->c, 1, "posix:/r3", "web:091046.000Z-00000001 web:091100.000Z-00000003 ");
	catalog_backup_free(a);
	catalog_backup_free(b);
	catalog_backup_free(c);
}

/* Writes a raw value under key into the named database. */
static void write_raw(const char *path, const char *db, const char *k, const char *v)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = {strlen(k), (void *)(uintptr_t)k}, val = {strlen(v), (void *)(uintptr_t)v};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* How many entries database db of the closed catalog at path holds. */
static size_t count_raw(const char *path, const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

/* One record that cannot be decoded is skipped by every listing, the others
 * are still listed, and it can be replaced and deleted. */
static void test_damaged_record_skipped(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *a = record("web", 1795338646, 1), *b = record("web", 1795338650, 2);

	assert_int_equal(catalog_backup_put(f->c, a), 0);
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	catalog_close(f->c);
	f->c = NULL;
	write_raw(f->path, "backups", a->id, "{\"format\": 1, \"id\": 7}");
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_list(f->c, NULL, "web:091050.000Z-00000002 ");
	assert_list(f->c, "web", "web:091050.000Z-00000002 ");
	assert_walk(f->c, 0, NULL, "web:091050.000Z-00000002 ");
	assert_int_equal(catalog_backup_put(f->c, a), 0);
	assert_list(f->c, "web", "web:091046.000Z-00000001 web:091050.000Z-00000002 ");
	assert_int_equal(catalog_backup_delete(f->c, a->id), 0);
	assert_list(f->c, NULL, "web:091050.000Z-00000002 ");
	assert_walk(f->c, 0, NULL, "web:091050.000Z-00000002 ");
	/* Deleting a damaged record leaves no index entry of it behind. */
	catalog_close(f->c);
	f->c = NULL;
	write_raw(f->path, "backups", b->id, "{\"format\": 1, \"id\": 7}");
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_int_equal(catalog_backup_delete(f->c, b->id), 0);
	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(count_raw(f->path, "backups"), 0);
	assert_int_equal(count_raw(f->path, "by_source"), 0);
	assert_int_equal(count_raw(f->path, "by_started"), 0);
	assert_int_equal(count_raw(f->path, "by_location"), 0);
	assert_int_equal(count_raw(f->path, "running"), 0);
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	catalog_backup_free(a);
	catalog_backup_free(b);
}

/* A version 1 catalog (no running or location index) gets them built by
 * the first open. */
static void test_migrate_from_1(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *a = record("web", 1795338646, 1), *b = record("db", 1795338650, 2);
	struct catalog_backup *got;
	char *json;

	assert_int_equal(strv_add(&a->locations, "posix:/r1"), 0);
	catalog_close(f->c);
	f->c = NULL;
	fs_remove_tree(f->path);
	assert_int_equal(fs_mkdir_p(f->path, 0700), 0);
	assert_int_equal(catalog_backup_to_json(a, 0, &json), 0);
	write_raw(f->path, "backups", a->id, json);
	free(json);
	b->status = CATALOG_COMPLETE;
	b->finished_ms = b->started_ms + 1;
	assert_int_equal(catalog_backup_to_json(b, 0, &json), 0);
	write_raw(f->path, "backups", b->id, json);
	free(json);
	write_raw(f->path, "meta", "schema_version", "1");
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_walk(f->c, 0, NULL, "web:091046.000Z-00000001 ");
	assert_walk(f->c, 1, "posix:/r1", "web:091046.000Z-00000001 db:091050.000Z-00000002 ");
	assert_walk(f->c, 1, "posix:/r9", "db:091050.000Z-00000002 ");
	/* The start-time index was built too. */
	got = NULL;
	assert_int_equal(catalog_backup_latest(f->c, "db", "posix:/r1", &got), 0);
	assert_string_equal(got->id, b->id);
	catalog_backup_free(got);
	catalog_close(f->c);
	/* Upgraded once: the version is now the current one. */
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_walk(f->c, 0, NULL, "web:091046.000Z-00000001 ");
	catalog_backup_free(a);
	catalog_backup_free(b);
}

/* A version 2 catalog (no start-time index) gets it built by the first open. */
static void test_migrate_from_2(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *a = record("web", 1795338646, 1), *got = NULL;

	a->status = CATALOG_COMPLETE;
	a->finished_ms = a->started_ms + 1;
	assert_int_equal(catalog_backup_put(f->c, a), 0);
	catalog_close(f->c);
	f->c = NULL;
	/* Drop the index, as a version 2 catalog never had it. */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;

		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
		assert_int_equal(mdb_env_open(env, f->path, 0, 0600), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, "by_started", 0, &dbi), 0);
		assert_int_equal(mdb_drop(txn, dbi, 1), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	write_raw(f->path, "meta", "schema_version", "2");
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_int_equal(catalog_backup_latest(f->c, "web", NULL, &got), 0);
	assert_string_equal(got->id, a->id);
	catalog_backup_free(got);
	assert_list(f->c, NULL, "web:091046.000Z-00000001 ");
	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(count_raw(f->path, "by_started"), 1);
	assert_int_equal(count_raw(f->path, "by_source"), 1);
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	catalog_backup_free(a);
}

static int collect_summary(void *ctx, const struct catalog_summary *s)
{
	int rc = buf_printf(ctx, "%s %s %lld %s %llu/%llu m%llu h=%s", s->id + 9, s->source,
	                    (long long)(s->started_ms / 1000), catalog_status_name(s->status),
	                    (unsigned long long)s->raw_bytes, (unsigned long long)s->stored_bytes,
	                    (unsigned long long)s->missing_count, s->host);

	for (size_t i = 0; !rc && i < s->locations.n; i++)
		rc = buf_printf(ctx, " L=%s", s->locations.v[i]);
	for (size_t i = 0; !rc && i < s->deleting.n; i++)
		rc = buf_printf(ctx, " D=%s", s->deleting.v[i]);
	for (size_t i = 0; !rc && i < s->pending.n; i++)
		rc = buf_printf(ctx, " P=%s", s->pending.v[i]);
	if (!rc && s->verified)
		rc = buf_printf(ctx, " V=%c", s->verified);
	if (!rc && s->drilled)
		rc = buf_printf(ctx, " R=%c", s->drilled);
	return rc ? rc : buf_printf(ctx, "; ");
}

#define assert_summaries(c, source, want) assert_summaries_at(c, source, want, __LINE__)
static void assert_summaries_at(struct catalog *c, const char *source, const char *want, int line)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(catalog_summary_list(c, source, collect_summary, &b), 0);
	if (strcmp((char *)b.data, want))
		print_error("summaries of %s, line %d\n", source, line);
	assert_string_equal((char *)b.data, want);
	buf_free(&b);
}

/* Sets every by_started value of the closed catalog at path to "" (what a
 * schema 3 catalog holds). */
static void empty_summaries(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val key, val, empty = {0, NULL};
	char keys[8][128];
	size_t lens[8], n = 0;
	int mrc;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "by_started", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); !mrc && n < 8;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		assert_true(key.mv_size <= sizeof(keys[n]));
		memcpy(keys[n], key.mv_data, key.mv_size);
		lens[n++] = key.mv_size;
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; i < n; i++) {
		key.mv_size = lens[i];
		key.mv_data = keys[i];
		assert_int_equal(mdb_put(txn, dbi, &key, &empty, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* How many by_started values of the closed catalog at path are not empty. */
static size_t count_summaries(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val key, val;
	size_t n = 0;
	int mrc;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "by_started", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); !mrc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		n += val.mv_size > 0;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

/* The summaries in by_started: what the record says, kept up to date by
 * every put, in start order (not id order); one without a summary (a
 * schema 3 catalog) is made from the record, and the open that migrates
 * to schema 4 writes them. */
static void test_summaries(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *a = record("web", 1795338646, 1), *b = record("web", 1795338600, 2),
	                      *o = record("other", 1795338000, 3);
	static const char want2[] =
	    "091046.000Z-00000002 web 1795338600 failed 0/0 m0 h=; "
	    "091046.000Z-00000001 web 1795338646 complete 1000/300 m2 h=db1 L=posix:/a "
	    "D=posix:/b P=s3://eu/ V=F R=o; ";

	a->status = CATALOG_COMPLETE;
	a->finished_ms = a->started_ms + 1;
	a->host = xstrdup("db1");
	a->objects[0].raw_bytes = 1000;
	a->objects[0].stored_bytes = 300;
	a->missing_count = 2;
	assert_int_equal(strv_add(&a->missing, "x: gone"), 0);
	assert_int_equal(strv_add(&a->locations, "posix:/a"), 0);
	assert_int_equal(strv_add(&a->deleting, "posix:/b"), 0);
	assert_int_equal(catalog_backup_add_pending(a, "s3://eu/", "down", 5), 0);
	a->verified_ms = a->finished_ms;
	a->verified_ok = 0;
	a->drill_json = xstrdup("{\"ok\":true,\"rto_ok\":false}");
	/* b's id sorts after a's, its start before. */
	free(b->id);
	b->id = xstrdup("20261122T091046.000Z-00000002");
	assert_int_equal(catalog_backup_put(f->c, a), 0);
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_int_equal(catalog_backup_put(f->c, o), 0);
	/* Start order: b (1795338600) before a. */
	assert_summaries(f->c, "web",
	                 "091046.000Z-00000002 web 1795338600 running 0/0 m0 h=; "
	                 "091046.000Z-00000001 web 1795338646 complete 1000/300 m2 "
	                 "h=db1 L=posix:/a D=posix:/b P=s3://eu/ V=F R=o; ");
	b->status = CATALOG_FAILED;
	assert_int_equal(catalog_backup_put(f->c, b), 0);
	assert_summaries(f->c, "web", want2);
	assert_summaries(f->c, "we", "");
	assert_summaries(f->c, "nosuch", "");
	/* Without summaries (schema 3): the same, from the records. */
	catalog_close(f->c);
	f->c = NULL;
	empty_summaries(f->path);
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_summaries(f->c, "web", want2);
	/* And the open that migrates from 3 writes them. */
	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(count_summaries(f->path), 0);
	write_raw(f->path, "meta", "schema_version", "3");
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	catalog_close(f->c);
	f->c = NULL;
	assert_int_equal(count_summaries(f->path), 3);
	assert_int_equal(catalog_open(f->path, &f->c), 0);
	assert_summaries(f->c, "web", want2);
	catalog_backup_free(a);
	catalog_backup_free(b);
	catalog_backup_free(o);
}

static void test_meta_values(void **state)
{
	struct fixture *f = *state;
	int64_t v = 5;

	assert_int_equal(catalog_meta_get_i64(f->c, "cleaned:posix:/r", &v), CF_ERR_NOTFOUND);
	assert_int_equal(v, 0);
	assert_int_equal(catalog_meta_set_i64(f->c, "cleaned:posix:/r", -1795338646000LL), 0);
	assert_int_equal(catalog_meta_get_i64(f->c, "cleaned:posix:/r", &v), 0);
	assert_int_equal(v, -1795338646000LL);
	assert_int_equal(catalog_meta_set_i64(f->c, "schema_version", 3), CF_ERR_INTERNAL);
}

/* Puts record(source, secs, rnd) with status and started_ms. */
static void put_run(struct catalog *c, const char *source, int64_t secs, uint32_t rnd,
                    enum catalog_status status, int64_t started_ms, const char *location)
{
	struct catalog_backup *b = record(source, secs, rnd);

	b->status = status;
	b->started_ms = started_ms;
	if (status != CATALOG_RUNNING)
		b->finished_ms = started_ms + 1;
	if (location)
		assert_int_equal(strv_add(&b->locations, location), 0);
	assert_int_equal(catalog_backup_put(c, b), 0);
	catalog_backup_free(b);
}

/* The ids catalog_backup_match() gives, without their date, space-separated. */
static void assert_match(struct catalog *c, const char *source, const char *prefix, size_t max,
                         size_t want_total, const char *want)
{
	struct strv ids = {0};
	struct buf b;
	size_t total = 99;

	buf_init(&b, 1 << 12);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(catalog_backup_match(c, source, prefix, max, &ids, &total), 0);
	for (size_t i = 0; i < ids.n; i++)
		assert_int_equal(buf_printf(&b, "%s ", ids.v[i] + 9), 0);
	assert_string_equal((char *)b.data, want);
	assert_int_equal(total, want_total);
	buf_free(&b);
	strv_free(&ids);
}

static void test_match_prefix(void **state)
{
	struct fixture *f = *state;
	struct catalog_backup *b = record("web", 1795338646, 1);

	put_run(f->c, "web", 1795338646, 1, CATALOG_COMPLETE, 1795338646000, NULL);
	put_run(f->c, "web", 1795338647, 2, CATALOG_FAILED, 1795338647000, NULL);
	put_run(f->c, "web2", 1795338650, 3, CATALOG_COMPLETE, 1795338650000, NULL);
	assert_match(f->c, NULL, "20261122T0910", 5, 3,
	             "091046.000Z-00000001 091047.000Z-00000002 091050.000Z-00000003 ");
	/* At most max are returned; the total says there are more. */
	assert_match(f->c, NULL, "2026", 2, 3, "091046.000Z-00000001 091047.000Z-00000002 ");
	assert_match(f->c, NULL, "2026", 0, 1, "");
	/* Per source through the index: "web" does not take "web2"'s. */
	assert_match(f->c, "web", "2026", 5, 2, "091046.000Z-00000001 091047.000Z-00000002 ");
	assert_match(f->c, "web2", "20261122T09105", 5, 1, "091050.000Z-00000003 ");
	assert_match(f->c, "we", "2026", 5, 0, "");
	assert_match(f->c, NULL, "20261122T091046", 5, 1, "091046.000Z-00000001 ");
	assert_match(f->c, NULL, b->id, 5, 1, "091046.000Z-00000001 ");
	assert_match(f->c, NULL, "20261122T091048", 5, 0, "");
	assert_match(f->c, NULL, "3", 5, 0, "");
	assert_match(f->c, NULL, "", 5, 3,
	             "091046.000Z-00000001 091047.000Z-00000002 091050.000Z-00000003 ");
	catalog_backup_free(b);
}

static void assert_latest(struct catalog *c, const char *source, const char *location,
                          const char *want)
{
	struct catalog_backup *b = NULL;
	int rc = catalog_backup_latest(c, source, location, &b);

	if (!want) {
		assert_int_equal(rc, CF_ERR_NOTFOUND);
		assert_null(b);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(b->id + 9, want);
	catalog_backup_free(b);
}

static void test_latest(void **state)
{
	struct fixture *f = *state;

	assert_latest(f->c, "web", NULL, NULL);
	put_run(f->c, "web", 1795338600, 1, CATALOG_COMPLETE, 1795338600000, "posix:/r1");
	assert_latest(f->c, "web", NULL, "091000.000Z-00000001");
	assert_latest(f->c, "web", "posix:/r1", "091000.000Z-00000001");
	assert_latest(f->c, "web", "posix:/r2", NULL);
	assert_latest(f->c, "we", NULL, NULL);
	/* Newer runs that are not complete, or of another repository, do not count. */
	put_run(f->c, "web", 1795338610, 2, CATALOG_RUNNING, 1795338610000, "posix:/r1");
	put_run(f->c, "web", 1795338620, 3, CATALOG_FAILED, 1795338620000, "posix:/r1");
	put_run(f->c, "web", 1795338630, 4, CATALOG_COMPLETE, 1795338630000, "posix:/r2");
	put_run(f->c, "web2", 1795338640, 5, CATALOG_COMPLETE, 1795338640000, "posix:/r1");
	assert_latest(f->c, "web", "posix:/r1", "091000.000Z-00000001");
	assert_latest(f->c, "web", "posix:/r2", "091030.000Z-00000004");
	assert_latest(f->c, "web", NULL, "091030.000Z-00000004");
	assert_latest(f->c, "web2", "posix:/r1", "091040.000Z-00000005");
	/* A record without locations (from before them) is at every location. */
	put_run(f->c, "web", 1795338601, 6, CATALOG_COMPLETE, 1795338601000, NULL);
	assert_latest(f->c, "web", "posix:/r1", "091001.000Z-00000006");
	/* The start time decides, not the id: two ids of the same millisecond,
	 * the lower one started later. */
	put_run(f->c, "web", 1795338650, 0xffffffff, CATALOG_COMPLETE, 1795338650000, "posix:/r1");
	assert_latest(f->c, "web", "posix:/r1", "091050.000Z-ffffffff");
	put_run(f->c, "web", 1795338650, 0x7, CATALOG_COMPLETE, 1795338650009, "posix:/r1");
	assert_latest(f->c, "web", "posix:/r1", "091050.000Z-00000007");
	/* Even an old id whose record says it started last (an edited record, a
	 * manifest from a host whose clock was off). */
	put_run(f->c, "web", 1795338500, 0x8, CATALOG_COMPLETE, 1795338700000, "posix:/r1");
	assert_latest(f->c, "web", "posix:/r1", "090820.000Z-00000008");
	/* Replacing a record moves its entry: started back in the past. */
	put_run(f->c, "web", 1795338500, 0x8, CATALOG_COMPLETE, 1795338500000, "posix:/r1");
	assert_latest(f->c, "web", "posix:/r1", "091050.000Z-00000007");
	/* The last source of the index (no key after its range). */
	assert_latest(f->c, "web2", NULL, "091040.000Z-00000005");
}

static void test_source_names(void **state)
{
	struct fixture *f = *state;
	struct strv names = {0};

	assert_int_equal(catalog_source_names(f->c, &names), 0);
	assert_int_equal(names.n, 0);
	put_run(f->c, "web", 1795338600, 1, CATALOG_COMPLETE, 1795338600000, NULL);
	put_run(f->c, "web2", 1795338601, 1, CATALOG_FAILED, 1795338601000, NULL);
	put_run(f->c, "db", 1795338602, 1, CATALOG_RUNNING, 1795338602000, NULL);
	put_run(f->c, "web", 1795338603, 1, CATALOG_COMPLETE, 1795338603000, NULL);
	put_run(f->c, "db", 1795338604, 1, CATALOG_COMPLETE, 1795338604000, NULL);
	assert_int_equal(catalog_source_names(f->c, &names), 0);
	assert_int_equal(names.n, 3);
	assert_string_equal(names.v[0], "db");
	assert_string_equal(names.v[1], "web");
	assert_string_equal(names.v[2], "web2");
	strv_free(&names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_order_and_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_consistency, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_callback_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test_setup_teardown(test_running_and_location_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_record_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_from_1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meta_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_from_2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_summaries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_match_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_latest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_names, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
