/*
 * catalog: the LMDB store of backup records (layout in catalog.h and
 * docs/catalog.md). Records are kept as their JSON form (catalog_record.c),
 * so the catalog and the manifests share one encoder and one strict decoder.
 *
 * Every change is one write transaction, so the "backups" records and the
 * "by_source" index never disagree on disk. LMDB is multi-process: another
 * coffer may hold the same catalog open; writers are serialised by LMDB's
 * own lock.
 *
 * It does not know about storage or the agent's retention rules.
 */
#include "catalog/catalog.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Reserved address space, not disk: the data file grows as records are
 * written (sparse), and a catalog of a million records fits. */
#define CATALOG_MAP_SIZE ((size_t)1 << 30)
#define CATALOG_MAX_DBS 8
/* The longest decimal schema version read back from "meta". */
#define CATALOG_VERSION_TEXT_MAX 16
/* LMDB's default (and compiled-in) key size limit bounds the index keys. */
#define CATALOG_INDEX_KEY_MAX 511
/* The start time in a by_started key: 16 hex digits. */
#define CATALOG_STARTED_LEN 16

struct catalog {
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi backups;
	MDB_dbi by_source;
	MDB_dbi running;     /* id -> "": records whose status is running */
	MDB_dbi by_location; /* location "\0" id -> "" ("" for a record without one) */
	MDB_dbi by_started;  /* source "\0" start time (16 hex digits) id -> summary */
	char *path;
};

static int catalog_index_add(struct catalog *c, MDB_txn *txn, const struct catalog_backup *b);

#define CATALOG_DAMAGED_FIX "; move the folder aside and run 'coffer catalog rebuild'"

static int catalog_mdb_error(const struct catalog *c, const char *what, int mrc)
{
	/* LMDB's own verdicts on a file that is not what it wrote. */
	if (mrc == MDB_INVALID || mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND ||
	    mrc == MDB_VERSION_MISMATCH)
		return error_set(CF_ERR_CATALOG_DAMAGED, "catalog at %s is damaged (%s: %s)%s",
		                 c->path, what, mdb_strerror(mrc), CATALOG_DAMAGED_FIX);
	return error_set(mrc == ENOMEM ? CF_ERR_NOMEM : CF_ERR_CATALOG, "catalog at %s: %s: %s",
	                 c->path, what, mdb_strerror(mrc));
}

/*
 * LMDB maps the file and trusts it: a data.mdb shorter than the pages its
 * meta page says are in use (a truncated copy, a full disk during a
 * restore of /var/lib) makes the first read past its end a SIGBUS. The meta
 * pages are read with pread() by mdb_env_open(), so the size is checked
 * here, before any page of the map is touched.
 */
static int catalog_check_size(const struct catalog *c)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat sb;
	mdb_filehandle_t fd;
	int mrc;

	mrc = mdb_env_info(c->env, &info);
	if (!mrc)
		mrc = mdb_env_stat(c->env, &st);
	if (!mrc)
		mrc = mdb_env_get_fd(c->env, &fd);
	if (mrc)
		return catalog_mdb_error(c, "cannot read the environment", mrc);
	if (fstat(fd, &sb) != 0)
		return error_set_errno(CF_ERR_CATALOG, errno, "catalog at %s: cannot stat data.mdb",
		                       c->path);
	if ((uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
		return error_set(
		    CF_ERR_CATALOG_DAMAGED,
		    "catalog at %s is damaged: data.mdb has %lld bytes, its pages need "
		    "%llu (the file was cut short)" CATALOG_DAMAGED_FIX,
		    c->path, (long long)sb.st_size,
		    ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize);
	return 0;
}

/*
 * Version 1 had no running and by_location indexes, version 2 no
 * by_started, version 3 no summaries in it: build the indexes from the records (putting an entry
 * that exists changes nothing), once, inside the open's write transaction (so a crash leaves the
 * old version and the next open builds them again). A record that cannot be decoded is left out of
 * them, as listings skip it.
 */
static int catalog_migrate(struct catalog *c, MDB_txn *txn, long from)
{
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	int rc = 0, mrc;

	(void)from;
	mrc = mdb_cursor_open(txn, c->backups, &cur);
	if (mrc)
		return catalog_mdb_error(c, "cannot open a cursor", mrc);
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); !mrc && !rc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		struct catalog_backup *b = NULL;

		if (catalog_backup_from_json(val.mv_data, val.mv_size, &b)) {
			log_warn("catalog at %s: record %.*s cannot be read (%s); left out of the "
			         "indexes",
			         c->path, (int)key.mv_size, (const char *)key.mv_data,
			         error_message());
			error_clear();
			continue;
		}
		rc = catalog_index_add(c, txn, b);
		catalog_backup_free(b);
	}
	mdb_cursor_close(cur);
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot walk the records", mrc);
	return rc;
}

/* Reads the schema version, writing it into a new catalog. */
static int catalog_check_schema(struct catalog *c, MDB_txn *txn)
{
	static const char key_text[] = "schema_version";
	MDB_val key = {sizeof(key_text) - 1, (void *)(uintptr_t)key_text}, val;
	char text[CATALOG_VERSION_TEXT_MAX + 1];
	char *end;
	long version;
	int mrc;

	mrc = mdb_get(txn, c->meta, &key, &val);
	if (mrc == MDB_NOTFOUND) {
		int n = snprintf(text, sizeof(text), "%d", CATALOG_SCHEMA_VERSION);

		val.mv_size = (size_t)n;
		val.mv_data = text;
		mrc = mdb_put(txn, c->meta, &key, &val, 0);
		return mrc ? catalog_mdb_error(c, "cannot write the schema version", mrc) : 0;
	}
	if (mrc)
		return catalog_mdb_error(c, "cannot read the schema version", mrc);
	if (val.mv_size == 0 || val.mv_size > CATALOG_VERSION_TEXT_MAX)
		return error_set(CF_ERR_CATALOG, "catalog at %s has a malformed schema version",
		                 c->path);
	memcpy(text, val.mv_data, val.mv_size);
	text[val.mv_size] = '\0';
	errno = 0;
	version = strtol(text, &end, 10);
	if (errno || *end || text[0] < '0' || text[0] > '9' || version < 1)
		return error_set(CF_ERR_CATALOG,
		                 "catalog at %s has a malformed schema version '%s'", c->path,
		                 text);
	if (version > CATALOG_SCHEMA_VERSION)
		return error_set(
		    CF_ERR_CATALOG,
		    "catalog at %s has schema version %ld, this coffer understands up to %d",
		    c->path, version, CATALOG_SCHEMA_VERSION);
	if (version < CATALOG_SCHEMA_VERSION) {
		int rc = catalog_migrate(c, txn, version);
		int n = snprintf(text, sizeof(text), "%d", CATALOG_SCHEMA_VERSION);

		if (rc)
			return rc;
		val.mv_size = (size_t)n;
		val.mv_data = text;
		mrc = mdb_put(txn, c->meta, &key, &val, 0);
		if (mrc)
			return catalog_mdb_error(c, "cannot write the schema version", mrc);
		log_info("catalog at %s: upgraded from schema version %ld to %d", c->path, version,
		         CATALOG_SCHEMA_VERSION);
	}
	return 0;
}

int catalog_open(const char *path, struct catalog **out)
{
	struct catalog *c;
	MDB_txn *txn = NULL;
	int rc = 0, mrc, dead = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory opening the catalog at %s", path);
	c->path = strdup(path);
	if (!c->path) {
		rc = error_set(CF_ERR_NOMEM, "out of memory opening the catalog at %s", path);
		goto out;
	}
	rc = fs_mkdir_p(path, 0700);
	if (rc)
		goto out;

	mrc = mdb_env_create(&c->env);
	if (!mrc)
		mrc = mdb_env_set_maxdbs(c->env, CATALOG_MAX_DBS);
	if (!mrc)
		mrc = mdb_env_set_mapsize(c->env, CATALOG_MAP_SIZE);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot create the LMDB environment", mrc);
		goto out;
	}
	mrc = mdb_env_open(c->env, path, 0, 0600);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot open", mrc);
		goto out;
	}
	rc = catalog_check_size(c);
	if (rc)
		goto out;
	/* A coffer killed with -9 leaves its reader slot taken; free the slots
	 * of dead processes so they cannot pin old pages forever. */
	mrc = mdb_reader_check(c->env, &dead);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot check the reader table", mrc);
		goto out;
	}
	if (dead > 0)
		log_debug("catalog at %s: cleared %d stale reader slot(s)", path, dead);

	/* The named databases must be opened in a transaction that commits
	 * before any other uses them. */
	mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot begin a transaction", mrc);
		goto out;
	}
	mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "backups", MDB_CREATE, &c->backups);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "by_source", MDB_CREATE, &c->by_source);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "running", MDB_CREATE, &c->running);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "by_location", MDB_CREATE, &c->by_location);
	if (!mrc)
		mrc = mdb_dbi_open(txn, "by_started", MDB_CREATE, &c->by_started);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot open the databases", mrc);
		goto out;
	}
	rc = catalog_check_schema(c, txn);
	if (rc)
		goto out;
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc)
		rc = catalog_mdb_error(c, "cannot commit", mrc);
out:
	if (txn)
		mdb_txn_abort(txn);
	if (rc) {
		catalog_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void catalog_close(struct catalog *c)
{
	if (!c)
		return;
	if (c->env)
		mdb_env_close(c->env);
	free(c->path);
	free(c);
}

/* ------------------------------------------------------------------------ */
/* The by_source index                                                        */
/* ------------------------------------------------------------------------ */

/* Builds the index key name "\0" id into key (owned by the caller); name is
 * a source or a location. */
static int catalog_index_key(const struct catalog *c, const char *source, const char *id, char *buf,
                             size_t size, MDB_val *key)
{
	size_t slen = strlen(source), ilen = strlen(id);

	if (slen + 1 + ilen > size)
		return error_set(CF_ERR_CATALOG, "catalog at %s: name '%.64s...' is too long",
		                 c->path, source);
	memcpy(buf, source, slen);
	buf[slen] = '\0';
	memcpy(buf + slen + 1, id, ilen);
	key->mv_size = slen + 1 + ilen;
	key->mv_data = buf;
	return 0;
}

/* Deletes every entry of dbi whose key ends with "\0", gap more bytes and
 * id (a damaged record's entries, whose names are unknown). */
static int catalog_index_scan_remove(struct catalog *c, MDB_txn *txn, MDB_dbi dbi, size_t gap,
                                     const char *id)
{
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	size_t ilen = strlen(id);
	int mrc;

	mrc = mdb_cursor_open(txn, dbi, &cur);
	if (mrc)
		return catalog_mdb_error(c, "cannot scan an index", mrc);
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); !mrc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const char *k = key.mv_data;

		if (key.mv_size > ilen + gap && k[key.mv_size - ilen - gap - 1] == '\0' &&
		    memcmp(k + key.mv_size - ilen, id, ilen) == 0) {
			mrc = mdb_cursor_del(cur, 0);
			if (mrc)
				break;
		}
	}
	mdb_cursor_close(cur);
	if (mrc != MDB_NOTFOUND)
		return catalog_mdb_error(c, "cannot update an index", mrc);
	return 0;
}

/* Puts (del 0) or deletes (del 1) the entry name "\0" id of dbi. */
static int catalog_index_entry(struct catalog *c, MDB_txn *txn, MDB_dbi dbi, const char *name,
                               const char *id, int del)
{
	char buf[CATALOG_INDEX_KEY_MAX];
	MDB_val key, empty = {0, NULL};
	int rc = catalog_index_key(c, name, id, buf, sizeof(buf), &key), mrc;

	if (rc)
		return rc;
	mrc = del ? mdb_del(txn, dbi, &key, NULL) : mdb_put(txn, dbi, &key, &empty, 0);
	if (mrc && !(del && mrc == MDB_NOTFOUND))
		return catalog_mdb_error(c, "cannot update an index", mrc);
	return 0;
}

/* Puts or deletes the running-index entry of id. */
static int catalog_running_entry(struct catalog *c, MDB_txn *txn, const char *id, int del)
{
	MDB_val key = {strlen(id), (void *)(uintptr_t)id}, empty = {0, NULL};
	int mrc =
	    del ? mdb_del(txn, c->running, &key, NULL) : mdb_put(txn, c->running, &key, &empty, 0);

	if (mrc && !(del && mrc == MDB_NOTFOUND))
		return catalog_mdb_error(c, "cannot update the running index", mrc);
	return 0;
}

/* The by_started key's time: 16 hex digits of the start time with the
 * sign bit flipped, so the keys sort as the times do, then the id. */
static void catalog_started_text(int64_t started_ms, const char *id, char *out, size_t size)
{
	snprintf(out, size, "%016llx%s",
	         (unsigned long long)((uint64_t)started_ms ^ ((uint64_t)1 << 63)), id);
}

/* Begins a read transaction with a cursor on dbi; catalog_read_end() ends
 * both (and takes what a failed begin left: NULLs). */
static int catalog_read_cursor(struct catalog *c, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur)
{
	int mrc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, txn);

	*cur = NULL;
	if (mrc)
		*txn = NULL;
	else
		mrc = mdb_cursor_open(*txn, dbi, cur);
	if (mrc)
		return catalog_mdb_error(c, "cannot open a cursor", mrc);
	return 0;
}

static void catalog_read_end(MDB_txn *txn, MDB_cursor *cur)
{
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
}

/*
 * A record's summary, the by_started value: NUL-terminated fields, "1"
 * (the layout's version), the status number, raw, stored and missing
 * counts in decimal, the host, then one field per location ("L..."), copy
 * being deleted ("D...") and pending copy ("P..."), and the last verify
 * ("Vo" ok, "VF" failed) and drill ("Ro", "RF") when there was one.
 */
/* Whether the last drill of b passed ("ok": true in its report). */
static int catalog_drill_ok(const struct catalog_backup *b)
{
	json_t *r = b->drill_json ? json_loads(b->drill_json, 0, NULL) : NULL;
	int ok = json_is_true(json_object_get(r, "ok"));

	json_decref(r);
	return ok;
}

static int catalog_summary_encode(const struct catalog_backup *b, struct buf *out)
{
	uint64_t raw = 0, stored = 0;
	int rc;

	for (size_t i = 0; i < b->nobjects; i++) {
		raw += b->objects[i].raw_bytes;
		stored += b->objects[i].stored_bytes;
	}
	rc = buf_printf(out, "1%c%d%c%llu%c%llu%c%llu%c%s%c", 0, (int)b->status, 0,
	                (unsigned long long)raw, 0, (unsigned long long)stored, 0,
	                (unsigned long long)b->missing_count, 0, b->host ? b->host : "", 0);
	for (size_t i = 0; !rc && i < b->locations.n; i++)
		rc = buf_printf(out, "L%s%c", b->locations.v[i], 0);
	for (size_t i = 0; !rc && i < b->deleting.n; i++)
		rc = buf_printf(out, "D%s%c", b->deleting.v[i], 0);
	for (size_t i = 0; !rc && i < b->npending; i++)
		rc = buf_printf(out, "P%s%c", b->pending[i].location, 0);
	if (!rc && b->verified_ms)
		rc = buf_printf(out, "V%c%c", b->verified_ok ? 'o' : 'F', 0);
	if (!rc && b->drill_json)
		rc = buf_printf(out, "R%c%c", catalog_drill_ok(b) ? 'o' : 'F', 0);
	return rc;
}

/* Reads a summary value into s (id, source and started are the caller's).
 * 0, or CF_ERR_FORMAT without a message for anything it does not expect. */
static int catalog_summary_decode(const char *v, size_t len, struct catalog_summary *s)
{
	const char *end = v + len, *f[6];
	unsigned long long n[4];
	char *e;
	int rc = 0;

	if (len == 0 || v[len - 1] != '\0')
		return CF_ERR_FORMAT;
	for (int i = 0; i < 6; i++) {
		if (v >= end)
			return CF_ERR_FORMAT;
		f[i] = v;
		v += strlen(v) + 1;
	}
	if (strcmp(f[0], "1") != 0)
		return CF_ERR_FORMAT;
	for (int i = 0; i < 4; i++) {
		n[i] = strtoull(f[i + 1], &e, 10);
		if (!*f[i + 1] || *e)
			return CF_ERR_FORMAT;
	}
	if (n[0] > CATALOG_FAILED)
		return CF_ERR_FORMAT;
	s->status = (enum catalog_status)n[0];
	s->raw_bytes = n[1];
	s->stored_bytes = n[2];
	s->missing_count = n[3];
	s->host = f[5];
	for (; !rc && v < end; v += strlen(v) + 1) {
		if ((v[0] == 'V' || v[0] == 'R') && (v[1] == 'o' || v[1] == 'F') && !v[2]) {
			*(v[0] == 'V' ? &s->verified : &s->drilled) = v[1];
			continue;
		}
		struct strv *to = v[0] == 'L'   ? &s->locations
		                  : v[0] == 'D' ? &s->deleting
		                  : v[0] == 'P' ? &s->pending
		                                : NULL;

		rc = to ? strv_add(to, v + 1) : CF_ERR_FORMAT;
	}
	return rc;
}

int catalog_summary_of(const struct catalog_backup *b, struct catalog_summary *s)
{
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->id = b->id;
	s->source = b->source;
	s->host = b->host ? b->host : "";
	s->started_ms = b->started_ms;
	s->status = b->status;
	s->missing_count = b->missing_count;
	for (size_t i = 0; i < b->nobjects; i++) {
		s->raw_bytes += b->objects[i].raw_bytes;
		s->stored_bytes += b->objects[i].stored_bytes;
	}
	for (size_t i = 0; !rc && i < b->locations.n; i++)
		rc = strv_add(&s->locations, b->locations.v[i]);
	for (size_t i = 0; !rc && i < b->deleting.n; i++)
		rc = strv_add(&s->deleting, b->deleting.v[i]);
	for (size_t i = 0; !rc && i < b->npending; i++)
		rc = strv_add(&s->pending, b->pending[i].location);
	if (b->verified_ms)
		s->verified = b->verified_ok ? 'o' : 'F';
	if (b->drill_json)
		s->drilled = catalog_drill_ok(b) ? 'o' : 'F';
	return rc;
}

void catalog_summary_clear(struct catalog_summary *s)
{
	strv_free(&s->locations);
	strv_free(&s->deleting);
	strv_free(&s->pending);
}

/* Puts record b's by_started entry with its summary, or deletes it. */
static int catalog_started_entry(struct catalog *c, MDB_txn *txn, const struct catalog_backup *b,
                                 int del)
{
	char started[CATALOG_STARTED_LEN + BACKUP_ID_LEN + 1], buf[CATALOG_INDEX_KEY_MAX];
	struct buf sum;
	MDB_val key, val;
	int rc, mrc;

	catalog_started_text(b->started_ms, b->id, started, sizeof(started));
	if (del)
		return catalog_index_entry(c, txn, c->by_started, b->source, started, 1);
	rc = catalog_index_key(c, b->source, started, buf, sizeof(buf), &key);
	buf_init(&sum, 1 << 20);
	if (!rc)
		rc = catalog_summary_encode(b, &sum);
	if (!rc) {
		val.mv_size = sum.len;
		val.mv_data = sum.data;
		mrc = mdb_put(txn, c->by_started, &key, &val, 0);
		if (mrc)
			rc = catalog_mdb_error(c, "cannot update an index", mrc);
	}
	buf_free(&sum);
	return rc;
}

/* Adds (del 0) or removes (del 1) every index entry of record b. */
static int catalog_index_update(struct catalog *c, MDB_txn *txn, const struct catalog_backup *b,
                                int del)
{
	int rc = catalog_index_entry(c, txn, c->by_source, b->source, b->id, del);

	if (!rc)
		rc = catalog_started_entry(c, txn, b, del);

	if (!rc && (del || b->status == CATALOG_RUNNING))
		rc = catalog_running_entry(c, txn, b->id, del);
	if (!rc && catalog_backup_unplaced(b))
		rc = catalog_index_entry(c, txn, c->by_location, "", b->id, del);
	for (size_t i = 0; !rc && i < b->locations.n; i++)
		rc = catalog_index_entry(c, txn, c->by_location, b->locations.v[i], b->id, del);
	/* A copy being deleted stays in its repository's range, for the prune
	 * or cleanup that finishes it. */
	for (size_t i = 0; !rc && i < b->deleting.n; i++)
		if (!strv_has(&b->locations, b->deleting.v[i]))
			rc = catalog_index_entry(c, txn, c->by_location, b->deleting.v[i], b->id,
			                         del);
	return rc;
}

static int catalog_index_add(struct catalog *c, MDB_txn *txn, const struct catalog_backup *b)
{
	return catalog_index_update(c, txn, b, 0);
}

/*
 * Removes the index entries of id. When the stored record can be decoded it
 * names them; otherwise (a damaged record) the indexes are scanned, so a bad
 * record can still be replaced or deleted cleanly.
 */
static int catalog_index_remove(struct catalog *c, MDB_txn *txn, const char *id,
                                const MDB_val *record)
{
	struct catalog_backup *old = NULL;
	int rc;

	if (catalog_backup_from_json(record->mv_data, record->mv_size, &old) == 0) {
		rc = catalog_index_update(c, txn, old, 1);
		catalog_backup_free(old);
		return rc;
	}
	error_clear();
	rc = catalog_index_scan_remove(c, txn, c->by_source, 0, id);
	if (!rc)
		rc = catalog_index_scan_remove(c, txn, c->by_location, 0, id);
	if (!rc)
		rc = catalog_index_scan_remove(c, txn, c->by_started, CATALOG_STARTED_LEN, id);
	if (!rc)
		rc = catalog_running_entry(c, txn, id, 1);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Records                                                                    */
/* ------------------------------------------------------------------------ */

int catalog_backup_put(struct catalog *c, const struct catalog_backup *b)
{
	MDB_txn *txn = NULL;
	MDB_val key, val, old, ikey;
	char ibuf[CATALOG_INDEX_KEY_MAX];
	char *json = NULL;
	int rc, mrc;

	if (!b->id || !backup_id_valid(b->id))
		return error_set(CF_ERR_CATALOG,
		                 "catalog at %s: cannot store a record with a bad id '%.64s'",
		                 c->path, b->id ? b->id : "");
	if (!b->source || !b->source[0])
		return error_set(CF_ERR_CATALOG, "catalog at %s: backup %s has no source", c->path,
		                 b->id);
	rc = catalog_index_key(c, b->source, b->id, ibuf, sizeof(ibuf), &ikey);
	if (!rc)
		rc = catalog_backup_to_json(b, 0, &json);
	if (rc)
		return rc;

	key.mv_size = strlen(b->id);
	key.mv_data = b->id;
	mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot begin a transaction", mrc);
		goto out;
	}
	/* A replaced record may have named another source. */
	mrc = mdb_get(txn, c->backups, &key, &old);
	if (!mrc)
		rc = catalog_index_remove(c, txn, b->id, &old);
	else if (mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot read a record", mrc);
	if (rc)
		goto out;
	val.mv_size = strlen(json);
	val.mv_data = json;
	mrc = mdb_put(txn, c->backups, &key, &val, 0);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot store backup record", mrc);
		goto out;
	}
	rc = catalog_index_add(c, txn, b);
	if (rc)
		goto out;
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc)
		rc = catalog_mdb_error(c, "cannot commit backup record", mrc);
out:
	if (txn)
		mdb_txn_abort(txn);
	free(json);
	return rc;
}

int catalog_backup_get(struct catalog *c, const char *id, struct catalog_backup **out)
{
	MDB_txn *txn;
	MDB_val key = {strlen(id), (void *)(uintptr_t)id}, val;
	int rc = 0, mrc;

	*out = NULL;
	if (key.mv_size == 0 || key.mv_size > BACKUP_ID_LEN)
		return error_set(CF_ERR_NOTFOUND, "no backup '%.64s' in the catalog at %s", id,
		                 c->path);
	mrc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	mrc = mdb_get(txn, c->backups, &key, &val);
	if (mrc == MDB_NOTFOUND)
		rc = error_set(CF_ERR_NOTFOUND, "no backup %s in the catalog at %s", id, c->path);
	else if (mrc)
		rc = catalog_mdb_error(c, "cannot read a record", mrc);
	else
		rc = catalog_backup_from_json(val.mv_data, val.mv_size, out);
	mdb_txn_abort(txn);
	return rc;
}

int catalog_backup_delete(struct catalog *c, const char *id)
{
	MDB_txn *txn = NULL;
	MDB_val key = {strlen(id), (void *)(uintptr_t)id}, old;
	int rc = 0, mrc;

	if (key.mv_size == 0 || key.mv_size > BACKUP_ID_LEN)
		return 0; /* no such key can be stored */
	mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	mrc = mdb_get(txn, c->backups, &key, &old);
	if (mrc == MDB_NOTFOUND)
		goto out;
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot read a record", mrc);
		goto out;
	}
	rc = catalog_index_remove(c, txn, id, &old);
	if (rc)
		goto out;
	mrc = mdb_del(txn, c->backups, &key, NULL);
	if (mrc) {
		rc = catalog_mdb_error(c, "cannot delete backup record", mrc);
		goto out;
	}
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc)
		rc = catalog_mdb_error(c, "cannot commit the deletion", mrc);
out:
	if (txn)
		mdb_txn_abort(txn);
	return rc;
}

/* The records of one walk, copied out of LMDB: ids[i] and items[i]. */
struct catalog_snapshot {
	struct buf *items;
	char (*ids)[BACKUP_ID_LEN + 1];
	size_t n, cap;
};

static int catalog_snapshot_add(struct catalog *c, struct catalog_snapshot *s, const MDB_val *id,
                                const MDB_val *val)
{
	/* Records are small JSON documents; 16 MiB is far beyond any real one
	 * and still bounds what a damaged catalog can make us allocate. */
	const size_t record_max = 16u << 20;
	size_t ilen = id->mv_size > BACKUP_ID_LEN ? BACKUP_ID_LEN : id->mv_size;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct buf *grown = realloc(s->items, cap * sizeof(*grown));
		char(*ids)[BACKUP_ID_LEN + 1];

		if (!grown)
			return error_set(CF_ERR_NOMEM, "out of memory listing the catalog at %s",
			                 c->path);
		s->items = grown;
		ids = realloc(s->ids, cap * sizeof(*ids));
		if (!ids)
			return error_set(CF_ERR_NOMEM, "out of memory listing the catalog at %s",
			                 c->path);
		s->ids = ids;
		s->cap = cap;
	}
	memcpy(s->ids[s->n], id->mv_data, ilen);
	s->ids[s->n][ilen] = '\0';
	buf_init(&s->items[s->n], record_max);
	s->n++;
	return buf_append(&s->items[s->n - 1], val->mv_data, val->mv_size);
}

static void catalog_snapshot_free(struct catalog_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		buf_free(&s->items[i]);
	free(s->items);
	free(s->ids);
}

/* Adds the record of id to s; an index entry without a record is damage
 * (every change updates both in one transaction): reported and skipped. */
static int catalog_snapshot_get(struct catalog *c, MDB_txn *txn, const MDB_val *id,
                                struct catalog_snapshot *s)
{
	MDB_val rec;
	int mrc = mdb_get(txn, c->backups, (MDB_val *)(uintptr_t)id, &rec);

	if (mrc == MDB_NOTFOUND) {
		log_warn("catalog at %s: index entry for %.*s has no record", c->path,
		         (int)id->mv_size, (const char *)id->mv_data);
		return 0;
	}
	if (mrc)
		return catalog_mdb_error(c, "cannot read a record", mrc);
	return catalog_snapshot_add(c, s, id, &rec);
}

/* Copies the records of every entry of dbi whose key starts with name "\0"
 * (name NULL: every key of dbi is an id) into s, in key order. */
static int catalog_snapshot_index(struct catalog *c, MDB_txn *txn, MDB_dbi dbi, const char *name,
                                  struct catalog_snapshot *s)
{
	MDB_cursor *cur = NULL;
	MDB_val key = {0, NULL}, val;
	char ibuf[CATALOG_INDEX_KEY_MAX];
	size_t slen = 0;
	int rc = 0, mrc;

	if (name) {
		slen = strlen(name);
		if (slen + 1 > sizeof(ibuf))
			return 0; /* too long to have been stored */
		memcpy(ibuf, name, slen);
		ibuf[slen] = '\0';
		key.mv_size = slen + 1;
		key.mv_data = ibuf;
	}
	mrc = mdb_cursor_open(txn, dbi, &cur);
	if (mrc)
		return catalog_mdb_error(c, "cannot open a cursor", mrc);
	mrc = mdb_cursor_get(cur, &key, &val, name ? MDB_SET_RANGE : MDB_FIRST);
	for (; !mrc && !rc; mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		MDB_val id = key;

		if (dbi == c->backups) {
			rc = catalog_snapshot_add(c, s, &key, &val);
			continue;
		}
		if (name) {
			/* The index sorts by name then id; stop past this name. */
			if (key.mv_size <= slen + 1 || memcmp(key.mv_data, ibuf, slen + 1) != 0)
				break;
			id.mv_size = key.mv_size - slen - 1;
			id.mv_data = (char *)key.mv_data + slen + 1;
		}
		rc = catalog_snapshot_get(c, txn, &id, s);
	}
	mdb_cursor_close(cur);
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot walk the records", mrc);
	return rc;
}

/* Orders a snapshot merged from two index ranges by id (time order). */
static void catalog_snapshot_sort(struct catalog_snapshot *s)
{
	/* Insertion sort of two sorted runs: the second run (records without
	 * a location, from before locations existed) is short or empty. */
	for (size_t i = 1; i < s->n; i++) {
		for (size_t j = i; j > 0 && strcmp(s->ids[j - 1], s->ids[j]) > 0; j--) {
			char tmp[BACKUP_ID_LEN + 1];
			struct buf tb = s->items[j];

			memcpy(tmp, s->ids[j], sizeof(tmp));
			memcpy(s->ids[j], s->ids[j - 1], sizeof(tmp));
			memcpy(s->ids[j - 1], tmp, sizeof(tmp));
			s->items[j] = s->items[j - 1];
			s->items[j - 1] = tb;
		}
	}
}

enum catalog_walk {
	CATALOG_WALK_ALL,
	CATALOG_WALK_SOURCE,
	CATALOG_WALK_RUNNING,
	CATALOG_WALK_LOCATION
};

/*
 * The walk of every listing: the matching records are copied in a short
 * read transaction, then decoded and passed to cb one by one, so the
 * callback is free to change the catalog (retention deletes as it goes)
 * without this thread holding a reader slot across a write. A record that
 * cannot be decoded is reported and skipped: one damaged record must not
 * hide every other backup.
 */
static int catalog_walk(struct catalog *c, enum catalog_walk how, const char *name,
                        catalog_list_cb cb, void *ctx)
{
	struct catalog_snapshot s = {NULL, NULL, 0, 0};
	MDB_txn *txn;
	int rc = 0, mrc;

	mrc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	switch (how) {
	case CATALOG_WALK_ALL:
		rc = catalog_snapshot_index(c, txn, c->backups, NULL, &s);
		break;
	case CATALOG_WALK_SOURCE:
		rc = catalog_snapshot_index(c, txn, c->by_source, name, &s);
		break;
	case CATALOG_WALK_RUNNING:
		rc = catalog_snapshot_index(c, txn, c->running, NULL, &s);
		break;
	case CATALOG_WALK_LOCATION:
		rc = catalog_snapshot_index(c, txn, c->by_location, name, &s);
		if (!rc && name[0]) {
			size_t n = s.n;

			rc = catalog_snapshot_index(c, txn, c->by_location, "", &s);
			if (!rc && s.n > n)
				catalog_snapshot_sort(&s);
		}
		break;
	}
	mdb_txn_abort(txn);

	for (size_t i = 0; i < s.n && !rc; i++) {
		struct catalog_backup *b;

		rc = catalog_backup_from_json((const char *)s.items[i].data, s.items[i].len, &b);
		if (rc == CF_ERR_FORMAT) {
			log_warn("catalog at %s: record %s cannot be read (%s); skipped (run "
			         "'coffer catalog rebuild' to replace it from the repository)",
			         c->path, s.ids[i], error_message());
			error_clear();
			rc = 0;
			continue;
		}
		if (rc)
			break;
		rc = cb(ctx, b);
		catalog_backup_free(b);
	}
	catalog_snapshot_free(&s);
	return rc;
}

int catalog_summary_list(struct catalog *c, const char *source, catalog_summary_cb cb, void *ctx)
{
	char ibuf[CATALOG_INDEX_KEY_MAX], id[BACKUP_ID_LEN + 1];
	size_t slen = strlen(source), skip = slen + 1 + CATALOG_STARTED_LEN;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	int rc = 0, mrc;

	if (slen + 1 >= sizeof(ibuf))
		return 0; /* too long to have been stored */
	memcpy(ibuf, source, slen + 1);
	key.mv_size = slen + 1;
	key.mv_data = ibuf;
	rc = catalog_read_cursor(c, c->by_started, &txn, &cur);
	if (rc)
		goto out;
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); !mrc && !rc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const char *k = key.mv_data;
		struct catalog_summary s;
		struct catalog_backup *b = NULL;
		unsigned long long t = 0;
		MDB_val idv, rec;

		if (key.mv_size <= skip || key.mv_size - skip > BACKUP_ID_LEN ||
		    memcmp(k, ibuf, slen + 1) != 0)
			break;
		memcpy(id, k + skip, key.mv_size - skip);
		id[key.mv_size - skip] = '\0';
		for (size_t i = 0; i < CATALOG_STARTED_LEN; i++)
			t = t * 16 + (unsigned)(isdigit((unsigned char)k[slen + 1 + i])
			                            ? k[slen + 1 + i] - '0'
			                            : (k[slen + 1 + i] | 0x20) - 'a' + 10);
		memset(&s, 0, sizeof(s));
		s.id = id;
		s.source = source;
		s.started_ms = (int64_t)(t ^ ((uint64_t)1 << 63));
		if (catalog_summary_decode(val.mv_data, val.mv_size, &s)) {
			/* An entry without a summary: the record says it all. */
			catalog_summary_clear(&s);
			idv.mv_size = strlen(id);
			idv.mv_data = id;
			if (mdb_get(txn, c->backups, &idv, &rec) ||
			    catalog_backup_from_json(rec.mv_data, rec.mv_size, &b)) {
				error_clear();
				continue; /* damage, reported by the other listings */
			}
			rc = catalog_summary_of(b, &s);
		}
		if (!rc)
			rc = cb(ctx, &s);
		catalog_summary_clear(&s);
		catalog_backup_free(b);
	}
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot walk the records", mrc);
out:
	catalog_read_end(txn, cur);
	return rc;
}

int catalog_backup_list(struct catalog *c, const char *source, catalog_list_cb cb, void *ctx)
{
	return catalog_walk(c, source ? CATALOG_WALK_SOURCE : CATALOG_WALK_ALL, source, cb, ctx);
}

int catalog_backup_list_running(struct catalog *c, catalog_list_cb cb, void *ctx)
{
	return catalog_walk(c, CATALOG_WALK_RUNNING, NULL, cb, ctx);
}

int catalog_backup_list_at(struct catalog *c, const char *location, catalog_list_cb cb, void *ctx)
{
	return catalog_walk(c, CATALOG_WALK_LOCATION, location, cb, ctx);
}

/* ------------------------------------------------------------------------ */
/* Small values in "meta"                                                     */
/* ------------------------------------------------------------------------ */

int catalog_meta_get_str(struct catalog *c, const char *name, char **value)
{
	MDB_txn *txn;
	MDB_val key = {strlen(name), (void *)(uintptr_t)name}, val;
	int rc = 0, mrc;

	*value = NULL;
	mrc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	mrc = mdb_get(txn, c->meta, &key, &val);
	if (mrc == MDB_NOTFOUND)
		rc = CF_ERR_NOTFOUND;
	else if (mrc)
		rc = catalog_mdb_error(c, "cannot read a value", mrc);
	else if (!(*value = strndup(val.mv_data, val.mv_size)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	mdb_txn_abort(txn);
	return rc;
}

int catalog_meta_set_str(struct catalog *c, const char *name, const char *value)
{
	MDB_txn *txn;
	MDB_val key = {strlen(name), (void *)(uintptr_t)name},
	        val = {strlen(value), (void *)(uintptr_t)value};
	int mrc;

	if (key.mv_size == 0 || key.mv_size > CATALOG_INDEX_KEY_MAX ||
	    !strcmp(name, "schema_version"))
		return error_set(CF_ERR_INTERNAL, "catalog: bad meta name '%.64s'", name);
	mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	mrc = mdb_put(txn, c->meta, &key, &val, 0);
	if (mrc) {
		mdb_txn_abort(txn);
		return catalog_mdb_error(c, "cannot store a value", mrc);
	}
	mrc = mdb_txn_commit(txn);
	return mrc ? catalog_mdb_error(c, "cannot commit a value", mrc) : 0;
}

int catalog_meta_update_str(struct catalog *c, const char *name, catalog_meta_update_fn fn,
                            void *ctx)
{
	MDB_txn *txn;
	MDB_val key = {strlen(name), (void *)(uintptr_t)name}, val;
	char *old = NULL, *nv = NULL;
	int rc = 0, mrc;

	if (key.mv_size == 0 || key.mv_size > CATALOG_INDEX_KEY_MAX ||
	    !strcmp(name, "schema_version"))
		return error_set(CF_ERR_INTERNAL, "catalog: bad meta name '%.64s'", name);
	mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	mrc = mdb_get(txn, c->meta, &key, &val);
	if (mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot read a value", mrc);
	else if (!mrc && !(old = strndup(val.mv_data, val.mv_size)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc)
		rc = fn(ctx, old, &nv);
	if (!rc) {
		val.mv_size = strlen(nv);
		val.mv_data = nv;
		mrc = mdb_put(txn, c->meta, &key, &val, 0);
		if (mrc)
			rc = catalog_mdb_error(c, "cannot store a value", mrc);
	}
	free(old);
	free(nv);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	mrc = mdb_txn_commit(txn);
	return mrc ? catalog_mdb_error(c, "cannot commit a value", mrc) : 0;
}

int catalog_meta_delete(struct catalog *c, const char *name)
{
	MDB_txn *txn;
	MDB_val key = {strlen(name), (void *)(uintptr_t)name};
	int mrc;

	if (key.mv_size == 0 || key.mv_size > CATALOG_INDEX_KEY_MAX ||
	    !strcmp(name, "schema_version"))
		return error_set(CF_ERR_INTERNAL, "catalog: bad meta name '%.64s'", name);
	mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc)
		return catalog_mdb_error(c, "cannot begin a transaction", mrc);
	mrc = mdb_del(txn, c->meta, &key, NULL);
	if (mrc && mrc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return catalog_mdb_error(c, "cannot remove a value", mrc);
	}
	mrc = mdb_txn_commit(txn);
	return mrc ? catalog_mdb_error(c, "cannot commit a value", mrc) : 0;
}

int catalog_meta_get_i64(struct catalog *c, const char *name, int64_t *value)
{
	char *text = NULL, *end;
	int rc = catalog_meta_get_str(c, name, &text);

	*value = 0;
	if (!rc) {
		errno = 0;
		*value = strtoll(text, &end, 10);
		if (!*text || errno || *end)
			rc = error_set(CF_ERR_CATALOG, "catalog at %s: value %s is malformed",
			               c->path, name);
	}
	free(text);
	return rc;
}

int catalog_meta_set_i64(struct catalog *c, const char *name, int64_t value)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", (long long)value);
	return catalog_meta_set_str(c, name, text);
}

/* ------------------------------------------------------------------------ */
/* Finding records by id prefix, the newest one, the sources                  */
/* ------------------------------------------------------------------------ */

int catalog_backup_match(struct catalog *c, const char *source, const char *prefix, size_t max,
                         struct strv *ids, size_t *total)
{
	char ibuf[CATALOG_INDEX_KEY_MAX], id[BACKUP_ID_LEN + 1];
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	size_t plen = strlen(prefix), skip = 0;
	int rc = 0, mrc;

	*total = 0;
	if (plen > BACKUP_ID_LEN)
		return 0; /* longer than any stored id */
	if (source) {
		rc = catalog_index_key(c, source, prefix, ibuf, sizeof(ibuf), &key);
		if (rc) {
			error_clear();
			return 0; /* too long to have been stored */
		}
		skip = strlen(source) + 1;
	} else {
		key.mv_size = plen;
		key.mv_data = (void *)(uintptr_t)prefix;
	}
	rc = catalog_read_cursor(c, source ? c->by_source : c->backups, &txn, &cur);
	if (rc)
		goto out;
	/* An empty key cannot be a cursor position; the first key is. */
	mrc = mdb_cursor_get(cur, &key, &val, key.mv_size ? MDB_SET_RANGE : MDB_FIRST);
	for (; !mrc && !rc && *total <= max; mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const char *k = key.mv_data;

		/* Keys sort by (source "\0") id: stop past the prefix's range. */
		if (key.mv_size < skip + plen || (skip && memcmp(k, ibuf, skip) != 0) ||
		    memcmp(k + skip, prefix, plen) != 0)
			break;
		if (key.mv_size - skip > BACKUP_ID_LEN)
			continue; /* not an id: damage, as listings see it */
		(*total)++;
		if (ids->n >= max || *total > max)
			continue;
		memcpy(id, k + skip, key.mv_size - skip);
		id[key.mv_size - skip] = '\0';
		rc = strv_add(ids, id);
	}
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot walk the records", mrc);
out:
	catalog_read_end(txn, cur);
	return rc;
}

/* 1 if record b is at location (NULL: anywhere; no locations: everywhere). */
static int catalog_record_at(const struct catalog_backup *b, const char *location)
{
	if (catalog_backup_unplaced(b))
		return 1;
	return location ? strv_has(&b->locations, location) : b->locations.n > 0;
}

int catalog_backup_latest(struct catalog *c, const char *source, const char *location,
                          struct catalog_backup **out)
{
	char ibuf[CATALOG_INDEX_KEY_MAX];
	struct catalog_backup *b = NULL;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	size_t slen = strlen(source), skip = slen + 1 + CATALOG_STARTED_LEN;
	int rc = 0, mrc;

	*out = NULL;
	if (slen + 1 >= sizeof(ibuf))
		return CF_ERR_NOTFOUND; /* too long to have been stored */
	/* Past the source's range: source "\1" sorts after every source "\0"... */
	memcpy(ibuf, source, slen);
	ibuf[slen] = '\1';
	key.mv_size = slen + 1;
	key.mv_data = ibuf;
	rc = catalog_read_cursor(c, c->by_started, &txn, &cur);
	if (rc)
		goto out;
	mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	mrc = mdb_cursor_get(cur, &key, &val, mrc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
	ibuf[slen] = '\0';
	/* Newest start first; normally the first entry is the answer, and only
	 * newer runs that are not complete or of another repository are read
	 * before it. */
	for (; !mrc && !rc && !*out; mrc = mdb_cursor_get(cur, &key, &val, MDB_PREV)) {
		const char *k = key.mv_data;
		MDB_val id, rec;

		if (key.mv_size <= skip || memcmp(k, ibuf, slen + 1) != 0)
			break;
		id.mv_size = key.mv_size - skip;
		id.mv_data = (char *)(uintptr_t)k + skip;
		mrc = mdb_get(txn, c->backups, &id, &rec);
		if (mrc == MDB_NOTFOUND) {
			mrc = 0;
			continue; /* damage, reported by the listings */
		}
		if (mrc)
			break;
		rc = catalog_backup_from_json(rec.mv_data, rec.mv_size, &b);
		if (rc == CF_ERR_FORMAT) {
			error_clear();
			rc = 0;
			continue; /* a damaged record, reported by the listings */
		}
		if (!rc && b->status == CATALOG_COMPLETE && catalog_record_at(b, location)) {
			*out = b;
			b = NULL;
		}
		catalog_backup_free(b);
		b = NULL;
	}
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot walk the records", mrc);
out:
	catalog_read_end(txn, cur);
	if (!rc && !*out)
		rc = CF_ERR_NOTFOUND;
	if (rc) {
		catalog_backup_free(*out);
		*out = NULL;
	}
	return rc;
}

int catalog_source_names(struct catalog *c, struct strv *names)
{
	char ibuf[CATALOG_INDEX_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	int rc = 0, mrc;

	rc = catalog_read_cursor(c, c->by_source, &txn, &cur);
	if (rc)
		goto out;
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); !mrc && !rc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)) {
		const char *nul = memchr(key.mv_data, '\0', key.mv_size);
		size_t slen = nul ? (size_t)(nul - (const char *)key.mv_data) : 0;

		if (!nul || slen + 1 >= sizeof(ibuf))
			break; /* not an index key: damage */
		memcpy(ibuf, key.mv_data, slen);
		ibuf[slen] = '\0';
		rc = strv_add(names, ibuf);
		/* Seek past this source: name "\1" sorts after every name "\0" id. */
		ibuf[slen] = '\1';
		key.mv_size = slen + 1;
		key.mv_data = ibuf;
	}
	if (!rc && mrc && mrc != MDB_NOTFOUND)
		rc = catalog_mdb_error(c, "cannot walk the source index", mrc);
out:
	catalog_read_end(txn, cur);
	return rc;
}
