/*
 * source_sqlite: backs up a live SQLite database as one transaction-consistent
 * snapshot (one stream named after the file, format "sqlite").
 *
 * The snapshot is made with SQLite's online backup API into a temporary file
 * in spool_dir (the one place where a coffer source spools: the API writes a
 * database, not a stream), checked with PRAGMA quick_check, streamed through
 * the pipeline and removed, also when anything fails or a signal stops the
 * run. The live database is opened read-only: coffer never writes it.
 *
 * Consistency: in WAL mode the source connection holds one read transaction
 * for the whole copy, so the copy is that transaction's snapshot and writers
 * go on meanwhile. In rollback-journal mode a read transaction would block
 * writers for the whole copy, so the copy goes in chunks and writers commit
 * between them; a commit makes the API start the copy again, and after a few
 * restarts the rest is copied under one read lock (writers then wait, as
 * their busy timeout allows). Either way the result is one committed state.
 */
#include "agent/drill.h"
#include "agent/pipeline.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pages per backup step: 1 MiB at 4 KiB pages, a short lock each time. */
#define SQLITE_STEP_PAGES 256
/* Sleeps between tries while the database is locked: short at first, as
 * SQLite's own busy handler does, so that a busy writer's short gaps between
 * transactions are found (in rollback mode a commit refuses new readers). */
static const int sqlite_busy_sleep_ms[] = {1, 1, 2, 2, 5, 5, 10, 10, 20};
/* Restarts (in rollback mode) before the rest is copied under one lock. */
#define SQLITE_MAX_RESTARTS 3

struct source_sqlite {
	char *name;
	char *path;
	char *spool_dir;
	int busy_timeout; /* ms */
};

static int source_sqlite_create(const char *name, void **state)
{
	struct source_sqlite *s = calloc(1, sizeof(*s));

	if (!s || !(s->name = strdup(name))) {
		free(s);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	s->busy_timeout = 5000;
	*state = s;
	return 0;
}

static void source_sqlite_free(void *state)
{
	struct source_sqlite *s = state;

	if (!s)
		return;
	free(s->name);
	free(s->path);
	free(s->spool_dir);
	free(s);
}

static int source_sqlite_set(void *state, const char *key, const char *value)
{
	struct source_sqlite *s = state;

	if (!strcmp(key, "busy_timeout")) {
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (!*value || *end || errno || v < 0 || v > INT_MAX)
			return error_set(CF_ERR_CONFIG,
			                 "busy_timeout = '%s': expected milliseconds (0 or more)",
			                 value);
		s->busy_timeout = (int)v;
		return 0;
	}
	if (!*value)
		return error_set(CF_ERR_CONFIG, "%s is empty", key);
	if (!strcmp(key, "path"))
		return source_db_set(&s->path, value);
	if (!strcmp(key, "spool_dir"))
		return source_db_set(&s->spool_dir, value);
	return error_set(CF_ERR_CONFIG, "unknown key '%s' (expected path, spool_dir, busy_timeout)",
	                 key);
}

static int source_sqlite_check(void *state)
{
	struct source_sqlite *s = state;

	if (!s->path)
		return error_set(CF_ERR_CONFIG, "missing key 'path'");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Running                                                                    */
/* ------------------------------------------------------------------------ */

struct sqlite_ctx {
	struct source_sqlite *s;
	struct backup_run *run;
	sqlite3 *src, *dst;
	char *spool; /* the snapshot's path, while it exists */
	int page_size;
	long long pages;
	int64_t busy_since; /* ms (monotonic) when the source became busy, or 0 */
};

/* Whether the source has been busy for busy_timeout; starts the count. */
static int sqlite_busy_expired(struct sqlite_ctx *c)
{
	int64_t now = (int64_t)(time_mono() * 1000) + 1;

	if (!c->busy_since)
		c->busy_since = now;
	return now - c->busy_since >= c->s->busy_timeout;
}

/*
 * The source's busy handler: SQLite's own (sqlite3_busy_timeout) sleeps
 * without looking at the signal flag, so a locked database would hold off
 * SIGINT/SIGTERM for the whole timeout.
 */
static int sqlite_busy(void *arg, int count)
{
	struct sqlite_ctx *c = arg;

	if (backup_run_interrupted(c->run) || sqlite_busy_expired(c))
		return 0;
	sqlite3_sleep(sqlite_busy_sleep_ms[count < 8 ? count : 8]);
	return 1;
}

static int sqlite_fail(struct sqlite_ctx *c, const char *what, const char *detail)
{
	return error_set(CF_ERR_SOURCE, "source %s: sqlite %s: %s%s%s", c->s->name, c->s->path,
	                 what, detail ? ": " : "", detail ? detail : "");
}

/* Runs a one-value pragma on db; *out is a copy of its first column. */
static int sqlite_pragma(struct sqlite_ctx *c, sqlite3 *db, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = sqlite_fail(c, sql, sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return rc;
	}
	snprintf(out, n, "%s",
	         sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	c->busy_since = 0;
	return 0;
}

/* A new empty file in spool_dir (mode 0600), named so it is recognisable. */
static int sqlite_spool_new(struct sqlite_ctx *c)
{
	const char *dir = c->s->spool_dir;
	int fd, rc;

	if (!dir) {
		dir = getenv("TMPDIR");
		if (!dir || !*dir)
			dir = "/var/tmp";
	}
	if (asprintf(&c->spool, "%s/.coffer-sqlite-%s.XXXXXX", dir, c->s->name) < 0) {
		c->spool = NULL;
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	fd = mkostemp(c->spool, O_CLOEXEC);
	if (fd < 0) {
		rc =
		    error_set_errno(CF_ERR_SOURCE, errno,
		                    "source %s: cannot create a spool file in %s", c->s->name, dir);
		free(c->spool);
		c->spool = NULL;
		return rc;
	}
	close(fd);
	return 0;
}

/* Removes the snapshot and whatever SQLite may have made beside it. */
static void sqlite_spool_remove(struct sqlite_ctx *c)
{
	static const char *const sfx[] = {"-journal", "-wal", "-shm"};
	char side[PATH_MAX];

	if (!c->spool)
		return;
	if (unlink(c->spool) != 0 && errno != ENOENT)
		log_warn("source %s: cannot remove the spool file %s: %s", c->s->name, c->spool,
		         strerror(errno));
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
		if (snprintf(side, sizeof(side), "%s%s", c->spool, sfx[i]) < (int)sizeof(side))
			(void)unlink(side);
	free(c->spool);
	c->spool = NULL;
}

/* Starts a read transaction on the source: the snapshot the copy will be. */
static int sqlite_begin_read(struct sqlite_ctx *c)
{
	char *msg = NULL;
	int rc =
	    sqlite3_exec(c->src, "BEGIN; SELECT count(*) FROM sqlite_schema;", NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		rc = sqlite_fail(c, "cannot start a read transaction",
		                 msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return rc;
	}
	c->busy_since = 0;
	return 0;
}

/* Copies the source into the spool file with the online backup API. */
static int sqlite_copy(struct sqlite_ctx *c)
{
	sqlite3_backup *b;
	char mode[32];
	int rc = 0, done_before = 0, restarts = 0, step = SQLITE_STEP_PAGES, tries = 0;
	int in_txn = 0;

	/* The first read: a file that is not a database fails here. */
	if (sqlite_pragma(c, c->src, "PRAGMA journal_mode", mode, sizeof(mode)))
		return sqlite_fail(c, "cannot read it", sqlite3_errmsg(c->src));
	if (!strcmp(mode, "wal")) {
		rc = sqlite_begin_read(c);
		if (rc)
			return rc;
		in_txn = 1;
	}
	b = sqlite3_backup_init(c->dst, "main", c->src, "main");
	if (!b)
		return sqlite_fail(c, "cannot start the backup", sqlite3_errmsg(c->dst));
	for (;;) {
		int r = sqlite3_backup_step(b, step), done;

		if (backup_run_interrupted(c->run)) {
			rc = error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal",
			               c->s->name);
			break;
		}
		if (r == SQLITE_DONE)
			break;
		if (r == SQLITE_BUSY || r == SQLITE_LOCKED) {
			if (sqlite_busy_expired(c)) {
				rc = sqlite_fail(
				    c, "the database stayed locked longer than busy_timeout",
				    sqlite3_errstr(r));
				break;
			}
			sqlite3_sleep(sqlite_busy_sleep_ms[tries < 8 ? tries : 8]);
			tries++;
			continue;
		}
		if (r != SQLITE_OK) {
			rc = sqlite_fail(c, "backup failed", sqlite3_errstr(r));
			break;
		}
		c->busy_since = 0;
		tries = 0;
		/* A commit by another connection restarts the copy at page 1. */
		done = sqlite3_backup_pagecount(b) - sqlite3_backup_remaining(b);
		if (done <= done_before && ++restarts >= SQLITE_MAX_RESTARTS && !in_txn) {
			log_info(
			    "source %s: the database changed %d times during the copy; copying it "
			    "under one read lock",
			    c->s->name, restarts);
			rc = sqlite_begin_read(c);
			if (rc)
				break;
			in_txn = 1;
			step = -1;
		}
		done_before = done;
	}
	c->pages = sqlite3_backup_pagecount(b);
	if (sqlite3_backup_finish(b) != SQLITE_OK && !rc)
		rc = sqlite_fail(c, "backup failed", sqlite3_errmsg(c->dst));
	if (in_txn)
		sqlite3_exec(c->src, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* Checks the snapshot and reads its page size. */
static int sqlite_verify(struct sqlite_ctx *c)
{
	char v[256];
	int rc = sqlite_pragma(c, c->dst, "PRAGMA quick_check", v, sizeof(v));

	if (!rc && strcmp(v, "ok") != 0)
		rc = sqlite_fail(c, "the snapshot fails PRAGMA quick_check", v);
	if (!rc)
		rc = sqlite_pragma(c, c->dst, "PRAGMA page_size", v, sizeof(v));
	if (!rc)
		c->page_size = (int)strtol(v, NULL, 10);
	return rc;
}

static int sqlite_meta(struct sqlite_ctx *c)
{
	char *abs = realpath(c->s->path, NULL);
	json_t *m = json_pack("{s:s, s:s, s:s, s:i, s:I}", "engine", "sqlite", "sqlite_version",
	                      sqlite3_libversion(), "path", abs ? abs : c->s->path, "page_size",
	                      c->page_size, "pages", (json_int_t)c->pages);
	char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
	int rc;

	free(abs);
	json_decref(m);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = backup_run_set_meta(c->run, text);
	free(text);
	return rc;
}

/* Streams the snapshot as the object named after the database file. */
static int sqlite_stream(struct sqlite_ctx *c)
{
	const char *base = strrchr(c->s->path, '/');
	struct filter *head;
	char stream[256], what[PATH_MAX + 32];
	int fd, rc;

	base = base ? base + 1 : c->s->path;
	rc = source_db_stream_name("", *base ? base : "database", "", stream, sizeof(stream));
	if (rc)
		return sqlite_fail(c, "cannot name the stream", error_message());
	fd = open(c->spool, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(CF_ERR_SOURCE, errno,
		                       "source %s: cannot open the spool file %s", c->s->name,
		                       c->spool);
	snprintf(what, sizeof(what), "the spool file %s", c->spool);
	rc = backup_stream_open(c->run, stream, "sqlite", &head);
	if (!rc)
		rc = source_copy_fd(c->run, fd, head, what);
	if (!rc)
		rc = sqlite_meta(c);
	if (!rc)
		rc = backup_stream_close(c->run);
	close(fd);
	return rc;
}

static int source_sqlite_run(void *state, struct backup_run *run)
{
	struct source_sqlite *s = state;
	struct sqlite_ctx c;
	struct stat st;
	int rc;

	memset(&c, 0, sizeof(c));
	c.s = s;
	c.run = run;
	/* SQLite's "unable to open database file" does not say why. */
	if (stat(s->path, &st) != 0)
		return error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot open %s", s->name,
		                       s->path);
	if (!S_ISREG(st.st_mode))
		return error_set(CF_ERR_SOURCE, "source %s: %s is not a regular file", s->name,
		                 s->path);
	if (sqlite3_open_v2(s->path, &c.src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rc =
		    sqlite_fail(&c, "cannot open", c.src ? sqlite3_errmsg(c.src) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(c.src, 1);
	sqlite3_busy_handler(c.src, sqlite_busy, &c);
	rc = sqlite_spool_new(&c);
	if (rc)
		goto out;
	if (sqlite3_open_v2(c.spool, &c.dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		rc = error_set(CF_ERR_SOURCE, "source %s: cannot open the spool file %s: %s",
		               s->name, c.spool, c.dst ? sqlite3_errmsg(c.dst) : "out of memory");
		goto out;
	}
	rc = sqlite_copy(&c);
	/* A signal cut a wait short: say so, not "database is locked". */
	if (rc && rc != CF_ERR_INTERRUPTED && backup_run_interrupted(run))
		rc = error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal", s->name);
	if (!rc)
		rc = sqlite_verify(&c);
	/* Closed before it is read: everything is in the file, nothing in a journal. */
	sqlite3_close(c.dst);
	c.dst = NULL;
	if (!rc)
		log_info("source %s: snapshot of %s: %lld pages of %d bytes", s->name, s->path,
		         c.pages, c.page_size);
	if (!rc)
		rc = sqlite_stream(&c);
out:
	sqlite3_close(c.dst);
	sqlite3_close(c.src);
	sqlite_spool_remove(&c);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Drill: verify --drill                                                    */
/* ------------------------------------------------------------------------ */

/* The restored file must pass integrity_check; then its objects per kind
 * and every table's rows. */
static int sqlite_drill_count(struct drill *d, sqlite3 *db, const char *name)
{
	sqlite3_stmt *q = NULL, *c = NULL;
	char result[512] = "";
	int rc = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) != SQLITE_OK)
		return error_set(CF_ERR_TARGET,
		                 "drill: the restored %s is not a SQLite database: %s", name,
		                 sqlite3_errmsg(db));
	if (sqlite3_step(q) == SQLITE_ROW)
		snprintf(result, sizeof(result), "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	if (strcmp(result, "ok") != 0)
		return error_set(CF_ERR_TARGET,
		                 "drill: the restored %s fails PRAGMA integrity_check: %s", name,
		                 result[0] ? result : sqlite3_errmsg(db));
	if (sqlite3_prepare_v2(
	        db,
	        "SELECT type || 's', count(*) FROM sqlite_schema WHERE name NOT LIKE "
	        "'sqlite\\_%' ESCAPE '\\' GROUP BY type",
	        -1, &q, NULL) != SQLITE_OK)
		return error_set(CF_ERR_TARGET, "drill: %s: %s", name, sqlite3_errmsg(db));
	while (!rc && sqlite3_step(q) == SQLITE_ROW)
		rc = drill_kind(d, name, (const char *)sqlite3_column_text(q, 0),
		                sqlite3_column_int64(q, 1));
	sqlite3_finalize(q);
	if (!rc &&
	    sqlite3_prepare_v2(db,
	                       "SELECT name, 'SELECT count(*) FROM \"' || replace(name, '\"', "
	                       "'\"\"') || '\"' FROM sqlite_schema WHERE type = 'table' AND "
	                       "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
	                       -1, &q, NULL) != SQLITE_OK)
		rc = error_set(CF_ERR_TARGET, "drill: %s: %s", name, sqlite3_errmsg(db));
	while (!rc && q && sqlite3_step(q) == SQLITE_ROW) {
		if (sqlite3_prepare_v2(db, (const char *)sqlite3_column_text(q, 1), -1, &c, NULL) !=
		        SQLITE_OK ||
		    sqlite3_step(c) != SQLITE_ROW)
			rc = error_set(CF_ERR_TARGET, "drill: %s: cannot count table %s: %s", name,
			               (const char *)sqlite3_column_text(q, 0), sqlite3_errmsg(db));
		else
			rc = drill_table(d, name, (const char *)sqlite3_column_text(q, 0),
			                 sqlite3_column_int64(c, 0));
		sqlite3_finalize(c);
		c = NULL;
	}
	sqlite3_finalize(q);
	return rc;
}

static int source_sqlite_drill(struct drill *d)
{
	const struct catalog_object *obj = NULL;
	sqlite3 *db = NULL;
	char path[4200];
	int rc = 0;

	for (size_t i = 0; !obj && i < d->b->nobjects; i++)
		if (!strcmp(d->b->objects[i].format, "sqlite"))
			obj = &d->b->objects[i];
	if (!obj)
		return error_set(CF_ERR_TARGET, "backup %s holds no SQLite object", d->b->id);
	rc = drill_path(d, "restored.db", path, sizeof(path));
	if (!rc)
		rc = drill_restore_file(d, obj, path);
	if (!rc)
		drill_restored(d);
	if (!rc && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		rc = error_set(CF_ERR_TARGET, "drill: cannot open the restored %s: %s", obj->name,
		               db ? sqlite3_errmsg(db) : "out of memory");
	if (!rc)
		rc = sqlite_drill_count(d, db, obj->name);
	sqlite3_close(db);
	return rc;
}

/* coffer check: the file is a database this process can open and read. */
static int source_sqlite_probe(void *state, struct buf *detail)
{
	struct source_sqlite *s = state;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	int rc = 0;

	if (stat(s->path, &sb) != 0)
		return error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot open %s", s->name,
		                       s->path);
	if (!S_ISREG(sb.st_mode))
		return error_set(CF_ERR_SOURCE, "source %s: %s is not a regular file", s->name,
		                 s->path);
	if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		rc = error_set(CF_ERR_SOURCE, "source %s: cannot read %s: %s", s->name, s->path,
		               db ? sqlite3_errmsg(db) : "out of memory");
	if (!rc)
		rc = buf_printf(detail, "%s: %lld bytes, %d schema object(s)", s->path,
		                (long long)sb.st_size, sqlite3_column_int(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

const struct source_ops source_sqlite_ops = {
    .type = "sqlite",
    .create = source_sqlite_create,
    .set = source_sqlite_set,
    .check = source_sqlite_check,
    .run = source_sqlite_run,
    .probe = source_sqlite_probe,
    .free = source_sqlite_free,
    .traits = SOURCE_TRAIT_SINGLE_FILE,
    .drill = source_sqlite_drill,
};
