/*
 * verify: an object of a backup checked against its manifest (verify.h).
 */
#include "agent/verify.h"

#include "agent/pipeline/restore_stream.h"
#include "agent/proc.h"
#include "agent/pipeline/restore_tar.h"
#include "agent/source/redis_rdb.h"
#include "agent/source/source_db.h"

#include <errno.h>
#include <fcntl.h>
#include <yaml.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The most of an object's start kept for its age header: 300 recipients
 * take about 30 KiB. */
#define VERIFY_HEADER_MAX (256 * 1024)
/* How much of the plaintext's start and end the format checks look at. */
#define VERIFY_HEAD 16
#define VERIFY_TAIL 256
#define AGE_MAGIC "age-encryption.org/v1\n"

/* ------------------------------------------------------------------------ */
/* Stored: size, SHA-256, age header                                          */
/* ------------------------------------------------------------------------ */

/* A sink keeping the first VERIFY_HEADER_MAX bytes. */
static int verify_keep_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct buf *b = f->ctx;
	size_t room = VERIFY_HEADER_MAX - b->len;

	return buf_append(b, data, len < room ? len : room);
}

static void verify_keep_free(struct filter *f)
{
	buf_free(f->ctx);
	free(f->ctx);
}

static const struct filter_ops verify_keep_ops = {"verify-header", verify_keep_write, NULL,
                                                  verify_keep_free};

static int verify_read_cb(void *ctx, const uint8_t *data, size_t len)
{
	return filter_write(ctx, data, len);
}

/* The age header at the start of h: one "-> X25519" stanza per recipient,
 * ended by the "---" line. */
static int verify_age_header(const struct catalog_backup *b, const struct catalog_object *obj,
                             const struct buf *h)
{
	const char *p = (const char *)h->data, *end = p + h->len;
	size_t x25519 = 0, magic = strlen(AGE_MAGIC);

	if (h->len < magic || memcmp(p, AGE_MAGIC, magic) != 0)
		return error_set(CF_ERR_INTEGRITY, "%s does not start with an age header",
		                 obj->key);
	for (p += magic; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			break;
		if ((size_t)(nl - p) >= 4 && !memcmp(p, "--- ", 4)) {
			if (b->recipients.n && x25519 != b->recipients.n)
				return error_set(CF_ERR_INTEGRITY,
				                 "the age header of %s has %zu X25519 "
				                 "recipient(s), the manifest "
				                 "records %zu",
				                 obj->key, x25519, b->recipients.n);
			return 0;
		}
		if ((size_t)(nl - p) >= 10 && !memcmp(p, "-> X25519 ", 10))
			x25519++;
		p = nl + 1;
	}
	return error_set(CF_ERR_INTEGRITY, "the age header of %s has no end line", obj->key);
}

/* The stored checks: the object's size, its age header and (full) its
 * SHA-256, reading it all; without full only the header's bytes are read
 * (the content check that follows hashes the whole object). */
static int verify_stored(struct storage *st, const struct catalog_backup *b,
                         const struct catalog_object *obj, int full, uint64_t *bytes)
{
	struct storage_info info;
	struct filter *hash = NULL, *keep = NULL, *head;
	struct buf *h = calloc(1, sizeof(*h));
	char hex[HASH_SHA256_HEX_LEN + 1];
	uint64_t n = 0;
	int rc;

	if (h)
		buf_init(h, VERIFY_HEADER_MAX);
	/* The filter owns h from here (and frees it when it cannot be made). */
	if (!h || !(keep = filter_new(&verify_keep_ops, h)))
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = storage_head(st, obj->key, &info);
	if (rc == CF_ERR_NOTFOUND) {
		error_clear();
		rc = error_set(CF_ERR_INTEGRITY, "%s is missing", obj->key);
	} else if (!rc && info.size != obj->stored_bytes) {
		rc = error_set(CF_ERR_INTEGRITY, "%s is %llu bytes, the manifest says %llu",
		               obj->key, (unsigned long long)info.size,
		               (unsigned long long)obj->stored_bytes);
	}
	if (!rc && full)
		rc = hash_filter_new(&hash);
	head = hash ? filter_chain(hash, keep, NULL) : keep;
	if (!rc)
		rc = storage_read(st, obj->key, 0, full ? UINT64_MAX : VERIFY_HEADER_MAX,
		                  verify_read_cb, head);
	if (!rc)
		rc = filter_finish(head);
	if (!rc && full) {
		hash_filter_result(hash, hex, &n);
		*bytes += n;
		if (n != obj->stored_bytes)
			rc = error_set(
			    CF_ERR_INTEGRITY, "%s gave %llu bytes, the manifest says %llu",
			    obj->key, (unsigned long long)n, (unsigned long long)obj->stored_bytes);
		else if (!obj->sha256 || strcmp(hex, obj->sha256) != 0)
			rc = error_set(CF_ERR_INTEGRITY,
			               "%s has SHA-256 %s, the manifest says %s: the object is "
			               "damaged or was replaced",
			               obj->key, hex, obj->sha256 ? obj->sha256 : "(none)");
	}
	if (!rc)
		rc = verify_age_header(b, obj, h);
	filter_chain_free(head);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Content: the plaintext's format                                            */
/* ------------------------------------------------------------------------ */

/* A sink keeping the plaintext's first and last bytes and, for an RDB, the
 * CRC-64 of all but its last 8 bytes (its checksum). */
struct verify_plain {
	int rdb;
	uint8_t head[VERIFY_HEAD];
	size_t nhead;
	uint8_t tail[VERIFY_TAIL];
	size_t ntail;
	uint8_t held[8]; /* the newest 8 bytes, not yet in the CRC */
	size_t nheld;
	uint64_t crc;
	/* A pg_dump archive is fed to `pg_restore --list` until it has read
	 * the table of contents (and closed its input). */
	struct proc pg;
	int pg_started, pg_done;
};

static int verify_plain_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct verify_plain *v = f->ctx;

	if (v->nhead < VERIFY_HEAD) {
		size_t k = len < VERIFY_HEAD - v->nhead ? len : VERIFY_HEAD - v->nhead;

		memcpy(v->head + v->nhead, data, k);
		v->nhead += k;
	}
	if (len >= VERIFY_TAIL) {
		memcpy(v->tail, data + len - VERIFY_TAIL, VERIFY_TAIL);
		v->ntail = VERIFY_TAIL;
	} else {
		size_t keep = v->ntail + len > VERIFY_TAIL ? VERIFY_TAIL - len : v->ntail;

		memmove(v->tail, v->tail + v->ntail - keep, keep);
		memcpy(v->tail + keep, data, len);
		v->ntail = keep + len;
	}
	if (v->pg_started && !v->pg_done && proc_feed(&v->pg, data, len) != 0) {
		/* It stopped reading: its exit status tells (verify_pg_finish()). */
		error_clear();
		v->pg_done = 1;
	}
	if (v->rdb) {
		/* Everything but the newest 8 bytes goes into the CRC. */
		size_t total = v->nheld + len, out = total > 8 ? total - 8 : 0;
		size_t from_held = out < v->nheld ? out : v->nheld;

		v->crc = redis_rdb_crc64(v->crc, v->held, from_held);
		if (out > from_held)
			v->crc = redis_rdb_crc64(v->crc, data, out - from_held);
		memmove(v->held, v->held + from_held, v->nheld - from_held);
		v->nheld -= from_held;
		memcpy(v->held + v->nheld, data + (out - from_held), len - (out - from_held));
		v->nheld += len - (out - from_held);
	}
	return 0;
}

/* ctx is the caller's: it reads the result after the stream freed the sink. */
static const struct filter_ops verify_plain_ops = {"verify-format", verify_plain_write, NULL, NULL};

static int verify_tar_visit(const void *ctx, struct archive_entry *e)
{
	(void)ctx;
	(void)e;
	return 0;
}

/* A Kubernetes archive's manifests must all parse as YAML (libyaml, every
 * document of the file). Runs in the listing child. */
static int verify_yaml(const void *ctx, const char *path, const void *data, size_t len)
{
	size_t n = strlen(path);
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0, done = 0;

	(void)ctx;
	if (!(n > 5 && !strcmp(path + n - 5, ".yaml")) && !(n > 4 && !strcmp(path + n - 4, ".yml")))
		return 0;
	if (!yaml_parser_initialize(&p))
		return error_set(CF_ERR_NOMEM, "out of memory");
	yaml_parser_set_input_string(&p, data, len);
	while (!rc && !done) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = error_set(CF_ERR_FORMAT, "%s is not valid YAML: %s at line %zu", path,
			               p.problem ? p.problem : "parse error",
			               p.problem_mark.line + 1);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

/* Starts `pg_restore --list` on the plaintext to come; without pg_restore
 * (no postgresql-client here) only the PGDMP header is checked. */
static int verify_pg_start(const struct catalog_object *obj, struct verify_plain *v)
{
	static const char *const names[] = {"pg_restore", NULL};
	char *tool = source_db_find_tool(NULL, names);
	char list[] = "--list", out[] = "--file=/dev/null";
	char *argv[] = {tool, list, out, NULL};
	struct proc_spec spec;
	int rc;

	if (!tool) {
		log_warn("pg_restore is not installed: %s is checked for its PGDMP header only "
		         "(install postgresql-client for pg_restore --list)",
		         obj->key);
		return 0;
	}
	memset(&spec, 0, sizeof(spec));
	spec.label = "pg_restore --list";
	spec.argv = argv;
	spec.in = 1;
	spec.errcode = CF_ERR_FORMAT;
	rc = proc_start(&spec, &v->pg);
	free(tool);
	if (!rc)
		v->pg_started = 1;
	return rc;
}

/* pg_restore --list must have read the archive's table of contents. */
static int verify_pg_finish(const struct catalog_object *obj, struct verify_plain *v)
{
	int rc = proc_finish(&v->pg);

	if (rc == CF_ERR_FORMAT) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", error_message());
		rc = error_set(CF_ERR_FORMAT, "%s: pg_restore cannot read it: %s", obj->key, msg);
	}
	return rc;
}

/* 1 if the tail holds text (any case) near its end. */
static int verify_tail_has(const struct verify_plain *v, const char *text)
{
	char t[VERIFY_TAIL + 1];

	memcpy(t, v->tail, v->ntail);
	t[v->ntail] = '\0';
	for (size_t i = 0; i < v->ntail; i++)
		if (!t[i])
			t[i] = ' ';
	return strcasestr(t, text) != NULL;
}

static int verify_format(const struct catalog_object *obj, const struct verify_plain *v)
{
	const char *fmt = obj->format ? obj->format : "raw";

	if (!strcmp(fmt, "pg_dump") && (v->nhead < 5 || memcmp(v->head, "PGDMP", 5) != 0))
		return error_set(CF_ERR_FORMAT, "%s is not a pg_dump archive (no PGDMP header)",
		                 obj->key);
	if (!strcmp(fmt, "sql") && !verify_tail_has(v, "dump complete"))
		return error_set(CF_ERR_FORMAT,
		                 "%s does not end with its dump tool's completion line: the dump "
		                 "was cut short",
		                 obj->key);
	if (!strcmp(fmt, "sqlite") &&
	    (v->nhead < 16 || memcmp(v->head, "SQLite format 3", 16) != 0))
		return error_set(CF_ERR_FORMAT, "%s is not a SQLite database (no header)",
		                 obj->key);
	if (!strcmp(fmt, "mongodump-archive") &&
	    (v->nhead < 4 || memcmp(v->head, "\x6d\xe2\x99\x81", 4) != 0))
		return error_set(CF_ERR_FORMAT, "%s is not a mongodump archive (no magic number)",
		                 obj->key);
	if (!strcmp(fmt, "rdb")) {
		uint64_t sum = 0;

		if (v->nhead < 9 || memcmp(v->head, "REDIS", 5) != 0 || v->nheld != 8 ||
		    v->ntail < 9 || v->tail[v->ntail - 9] != 0xff)
			return error_set(CF_ERR_FORMAT,
			                 "%s is not a whole RDB file (no REDIS header or no EOF "
			                 "opcode before its checksum)",
			                 obj->key);
		for (int i = 7; i >= 0; i--)
			sum = sum << 8 | v->held[i];
		if (sum != 0 && sum != v->crc) /* 0: written with rdbchecksum no */
			return error_set(
			    CF_ERR_FORMAT,
			    "%s: the RDB checksum is %016llx, its content gives %016llx", obj->key,
			    (unsigned long long)sum, (unsigned long long)v->crc);
	}
	return 0;
}

/* A SQLite backup is written to a file in this process's private folder
 * ($TMPDIR, removed at exit and wiped) and must pass PRAGMA
 * integrity_check there. */
static int verify_sqlite(struct storage *st, const struct catalog_object *obj,
                         const struct age_identities *ids)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	char *path = NULL, result[512] = "";
	int rc = proc_temp_file("verify-sqlite", "", &path), fd = -1;

	if (!rc && (fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot open %s", path);
	if (!rc)
		rc = restore_stream_to_fd(st, obj, ids, fd, 0);
	if (fd >= 0 && close(fd) != 0 && !rc)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", path);
	if (!rc && (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	            sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) != SQLITE_OK))
		rc = error_set(CF_ERR_FORMAT, "%s is not a SQLite database: %s", obj->key,
		               db ? sqlite3_errmsg(db) : "out of memory");
	/* "ok", or one row per problem: the first is named. */
	if (!rc && sqlite3_step(q) == SQLITE_ROW)
		snprintf(result, sizeof(result), "%s", (const char *)sqlite3_column_text(q, 0));
	if (!rc && strcmp(result, "ok") != 0)
		rc = error_set(CF_ERR_FORMAT, "%s fails PRAGMA integrity_check: %s", obj->key,
		               result[0] ? result : sqlite3_errmsg(db));
	sqlite3_finalize(q);
	sqlite3_close(db);
	proc_temp_remove(path);
	return rc;
}

static int verify_content(struct storage *st, const struct catalog_backup *b,
                          const struct catalog_object *obj, const struct age_identities *ids)
{
	struct verify_plain *v;
	struct filter *sink;
	int rc;

	if (obj->format && !strcmp(obj->format, "tar")) {
		struct restore_tar_select yaml = {NULL, NULL, NULL, 0, verify_yaml};

		return restore_tar_list(st, obj, ids, 0,
		                        b->kind && !strcmp(b->kind, "kubernetes") ? &yaml : NULL,
		                        verify_tar_visit);
	}
	if (obj->format && !strcmp(obj->format, "sqlite"))
		return verify_sqlite(st, obj, ids);
	v = calloc(1, sizeof(*v));
	if (!v || !(sink = filter_new(&verify_plain_ops, v))) {
		free(v);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	v->rdb = obj->format && !strcmp(obj->format, "rdb");
	rc = obj->format && !strcmp(obj->format, "pg_dump") ? verify_pg_start(obj, v) : 0;
	if (!rc)
		rc = restore_stream_run(st, obj, ids, sink, 0);
	else
		filter_chain_free(sink);
	if (!rc)
		rc = verify_format(obj, v);
	if (!rc && v->pg_started)
		rc = verify_pg_finish(obj, v);
	if (v->pg_started)
		proc_release(&v->pg);
	free(v);
	return rc;
}

int verify_object(struct storage *st, const struct catalog_backup *b,
                  const struct catalog_object *obj, const struct age_identities *ids,
                  uint64_t *bytes)
{
	int rc = verify_stored(st, b, obj, !ids, bytes);

	if (!rc && ids) {
		rc = verify_content(st, b, obj, ids);
		if (!rc)
			*bytes += obj->stored_bytes;
	}
	return rc;
}
