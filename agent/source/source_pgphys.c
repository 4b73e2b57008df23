/*
 * source_pgphys: type = postgres-physical, a base backup of a whole
 * PostgreSQL cluster (15 or newer) taken with BASE_BACKUP over the streaming
 * replication protocol (libpq, a role with REPLICATION), for point-in-time
 * recovery with the WAL that `coffer wal-push` archives (wal.h).
 *
 * One BASE_BACKUP command sends one COPY stream that holds each tablespace
 * as a tar archive ('n' starts one, 'd' carries its bytes) and then the
 * server's backup manifest ('m'). Each archive becomes one object, streamed
 * through the pipeline as it arrives (no local copy):
 *     base           the data directory, with backup_label and the WAL from
 *                    the backup's start to its end in pg_wal/ (WAL true), so
 *                    the backup is consistent whether or not archiving is
 *                    healthy
 *     tblspc-<oid>   each tablespace
 *     backup_manifest   the server's manifest (pg_verifybackup reads it)
 * The record's meta holds the start and stop LSN, the timeline, the system
 * identifier, the server version, the WAL segment size and the
 * tablespaces: what restore --to-datadir and prune need.
 */
#include "agent/agent.h"
#include "agent/drill.h"
#include "agent/pipeline.h"
#include "agent/source/pgphys_restore.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct source_pgphys {
	char *name;
	char *host, *port, *user, *service, *passfile, *sslmode, *checkpoint, *spool;
	int async;
	char *spool_max, *prefetch, *push_jobs, *expect_wal_every;
	struct source_pgphys_wal wal; /* parsed by check() */
};
_Static_assert(offsetof(struct source_pgphys, name) == 0,
               "source_state_new() needs the name first");

#define PPK(n, t, f)                                                                               \
	{                                                                                          \
		n, t, offsetof(struct source_pgphys, f)                                            \
	}
static const struct source_key source_pgphys_keys[] = {
    PPK("host", SOURCE_KEY_STR, host),
    PPK("port", SOURCE_KEY_PORT, port),
    PPK("user", SOURCE_KEY_STR, user),
    PPK("service", SOURCE_KEY_STR, service),
    PPK("passfile", SOURCE_KEY_PATH, passfile),
    PPK("sslmode", SOURCE_KEY_STR, sslmode),
    PPK("checkpoint", SOURCE_KEY_STR, checkpoint),
    PPK("wal_async", SOURCE_KEY_BOOL, async),
    PPK("wal_spool", SOURCE_KEY_PATH, spool),
    PPK("wal_spool_max", SOURCE_KEY_STR, spool_max),
    PPK("wal_prefetch", SOURCE_KEY_STR, prefetch),
    PPK("wal_push_jobs", SOURCE_KEY_STR, push_jobs),
    PPK("expect_wal_every", SOURCE_KEY_STR, expect_wal_every),
    {NULL, SOURCE_KEY_STR, 0},
};
#undef PPK

/* The drill server's port, on a private socket folder (no TCP). */
#define SOURCE_PGPHYS_DRILL_PORT "5432"

/* A tar archive ends with two zero blocks; the server leaves them out. */
static const unsigned char source_pgphys_tar_end[1024];

static int source_pgphys_create(const char *name, void **state)
{
	int rc = source_state_new(sizeof(struct source_pgphys), name, state);

	if (!rc) {
		struct source_pgphys *s = *state;

		s->wal.spool_max = 1024ULL * 1024 * 1024;
		s->wal.prefetch = 8;
		s->wal.push_jobs = 4;
	}
	return rc;
}

static void source_pgphys_free(void *state)
{
	source_state_free(source_pgphys_keys, state);
}

static int source_pgphys_set(void *state, const char *key, const char *value)
{
	return source_keys_set(source_pgphys_keys, state, key, value);
}

static int source_pgphys_count(const char *key, const char *text, unsigned lo, unsigned hi,
                               unsigned *out)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);

	if (end == text || *end || text[0] == '-' || v < lo || v > hi)
		return error_set(CF_ERR_CONFIG, "%s = %s: expected a number from %u to %u", key,
		                 text, lo, hi);
	*out = (unsigned)v;
	return 0;
}

static int source_pgphys_check(void *state)
{
	struct source_pgphys *s = state;
	int rc = 0;

	if (s->checkpoint && strcmp(s->checkpoint, "fast") && strcmp(s->checkpoint, "spread"))
		return error_set(CF_ERR_CONFIG, "checkpoint = %s: expected fast or spread",
		                 s->checkpoint);
	if (s->spool_max) {
		char *end;
		unsigned long long v = strtoull(s->spool_max, &end, 10);
		uint64_t unit = *end == 'G' ? 1ULL << 30 : *end == 'M' ? 1ULL << 20 : 1;

		if (unit > 1)
			end++;
		if (end == s->spool_max || *end || s->spool_max[0] == '-' ||
		    v * unit < (16ULL << 20))
			return error_set(
			    CF_ERR_CONFIG,
			    "wal_spool_max = %s: expected a size of at least 16M (like "
			    "512M, 4G)",
			    s->spool_max);
		s->wal.spool_max = v * unit;
	}
	if (s->prefetch)
		rc = source_pgphys_count("wal_prefetch", s->prefetch, 0, 64, &s->wal.prefetch);
	if (!rc && s->push_jobs)
		rc = source_pgphys_count("wal_push_jobs", s->push_jobs, 1, 32, &s->wal.push_jobs);
	if (!rc && s->expect_wal_every) {
		rc = time_parse_duration(s->expect_wal_every, &s->wal.expect_every_ms);
		if (rc)
			rc = error_set(rc, "expect_wal_every = %s", error_message());
	}
	s->wal.async = s->async;
	s->wal.spool = s->spool;
	return rc;
}

int source_pgphys_spool(const struct config *cfg, const struct source *src, char *out, size_t size)
{
	const struct source_pgphys_wal *w = source_pgphys_wal(src);
	char cat[4096];
	int n;

	if (w && w->spool) {
		n = snprintf(out, size, "%s/%s", w->spool, src->name);
	} else {
		snprintf(cat, sizeof(cat), "%s", cfg->catalog_path);
		n = snprintf(out, size, "%s/wal-spool/%s", dirname(cat), src->name);
	}
	if (n < 0 || (size_t)n >= size - 64)
		return error_set(CF_ERR_CONFIG, "the WAL spool path of source %s is too long",
		                 src->name);
	return 0;
}

const struct source_pgphys_wal *source_pgphys_wal(const struct source *src)
{
	if (!src || src->ops != &source_pgphys_ops)
		return NULL;
	return &((const struct source_pgphys *)src->state)->wal;
}

/* ------------------------------------------------------------------------ */
/* The replication connection                                               */
/* ------------------------------------------------------------------------ */

static const char *source_pgphys_message(PGconn *conn)
{
	static __thread char msg[512];

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? ' ' : '\0';
	return msg;
}

static int source_pgphys_connect(const struct source_pgphys *s, PGconn **out)
{
	const char *k[12], *v[12];
	size_t n = 0;
	PGconn *conn;

#define KV(key, val)                                                                               \
	do {                                                                                       \
		if (val) {                                                                         \
			k[n] = key;                                                                \
			v[n++] = val;                                                              \
		}                                                                                  \
	} while (0)
	KV("host", s->host);
	KV("port", s->port);
	KV("user", s->user);
	KV("service", s->service);
	KV("passfile", s->passfile);
	KV("sslmode", s->sslmode);
#undef KV
	k[n] = "replication";
	v[n++] = "true";
	k[n] = "dbname";
	v[n++] = "replication"; /* what a .pgpass line of a replication connection names */
	k[n] = "application_name";
	v[n++] = "coffer";
	k[n] = "connect_timeout";
	v[n++] = "30";
	k[n] = NULL;
	v[n] = NULL;
	*out = NULL;
	conn = PQconnectdbParams(k, v, 0);
	if (!conn)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		int rc = error_set(CF_ERR_SOURCE,
		                   "source %s: cannot open a replication connection: %s (the role "
		                   "needs REPLICATION and a pg_hba.conf line for 'replication')",
		                   s->name, source_pgphys_message(conn));

		PQfinish(conn);
		return rc;
	}
	*out = conn;
	return 0;
}

/* Waits until conn has a whole result or a COPY message, polling for
 * signals (a spread checkpoint may take minutes; a drill's count of a big
 * table too); what names the connection in errors. */
static int source_pgphys_wait_for(const char *name, PGconn *conn)
{
	while (PQisBusy(conn)) {
		struct pollfd pfd = {PQsocket(conn), POLLIN, 0};

		if (cancel_requested()) {
			PGcancel *c = PQgetCancel(conn);
			char ebuf[256];

			if (c) {
				PQcancel(c, ebuf, sizeof(ebuf));
				PQfreeCancel(c);
			}
			return error_set(CF_ERR_INTERRUPTED, "%s: interrupted by a signal", name);
		}
		(void)poll(&pfd, 1, 200);
		if (!PQconsumeInput(conn))
			return error_set(CF_ERR_SOURCE, "%s: %s", name,
			                 source_pgphys_message(conn));
	}
	return 0;
}

static int source_pgphys_wait(const struct source_pgphys *s, PGconn *conn)
{
	char what[300];

	snprintf(what, sizeof(what), "source %s", s->name);
	return source_pgphys_wait_for(what, conn);
}

/* The next result of the command in progress (NULL at its end). */
static int source_pgphys_result(const struct source_pgphys *s, PGconn *conn, PGresult **out)
{
	int rc = source_pgphys_wait(s, conn);

	*out = rc ? NULL : PQgetResult(conn);
	return rc;
}

/* Runs a replication command that returns one row; row receives its
 * columns (at most ncols). */
static int source_pgphys_row(const struct source_pgphys *s, PGconn *conn, const char *cmd,
                             char **cols, int ncols)
{
	PGresult *res = NULL, *r;
	int rc = PQsendQuery(conn, cmd) ? 0
	                                : error_set(CF_ERR_SOURCE, "source %s: %s: %s", s->name,
	                                            cmd, source_pgphys_message(conn));

	while (!rc && !(rc = source_pgphys_result(s, conn, &r)) && r) {
		PQclear(res);
		res = r;
	}
	if (!rc && (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	            PQnfields(res) < ncols))
		rc = error_set(CF_ERR_SOURCE, "source %s: %s: %s", s->name, cmd,
		               res ? PQresultErrorMessage(res) : source_pgphys_message(conn));
	for (int i = 0; !rc && i < ncols; i++)
		if (!(cols[i] = strdup(PQgetvalue(res, 0, i))))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	PQclear(res);
	return rc;
}

/* "16MB" -> bytes. */
static uint64_t source_pgphys_bytes(const char *text)
{
	char *end;
	uint64_t v = strtoull(text, &end, 10);

	if (!strcmp(end, "kB"))
		v <<= 10;
	else if (!strcmp(end, "MB"))
		v <<= 20;
	else if (!strcmp(end, "GB"))
		v <<= 30;
	return v;
}

struct source_pgphys_server {
	char *sysid, *tli, *xlogpos, *dbname; /* IDENTIFY_SYSTEM */
	char *version_num, *version, *segsize, *wal_level, *archive_mode;
};

static void source_pgphys_server_free(struct source_pgphys_server *v)
{
	char **f[] = {&v->sysid,   &v->tli,     &v->xlogpos,   &v->dbname,      &v->version_num,
	              &v->version, &v->segsize, &v->wal_level, &v->archive_mode};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		free(*f[i]);
		*f[i] = NULL;
	}
}

/* The system, its version and the WAL settings a physical backup needs. */
static int source_pgphys_server(const struct source_pgphys *s, PGconn *conn,
                                struct source_pgphys_server *v)
{
	char *id[4] = {NULL};
	int rc = source_pgphys_row(s, conn, "IDENTIFY_SYSTEM", id, 4);

	v->sysid = id[0];
	v->tli = id[1];
	v->xlogpos = id[2];
	v->dbname = id[3];
	if (!rc)
		rc = source_pgphys_row(s, conn, "SHOW server_version_num", &v->version_num, 1);
	if (!rc)
		rc = source_pgphys_row(s, conn, "SHOW server_version", &v->version, 1);
	if (!rc)
		rc = source_pgphys_row(s, conn, "SHOW wal_segment_size", &v->segsize, 1);
	if (!rc)
		rc = source_pgphys_row(s, conn, "SHOW wal_level", &v->wal_level, 1);
	if (!rc)
		rc = source_pgphys_row(s, conn, "SHOW archive_mode", &v->archive_mode, 1);
	if (!rc && atol(v->version_num) < 150000)
		rc = error_set(CF_ERR_SOURCE,
		               "source %s: the server is PostgreSQL %s; postgres-physical needs "
		               "15 or newer (use a postgres source, pg_dump, for older servers)",
		               s->name, v->version);
	if (!rc && !strcmp(v->wal_level, "minimal"))
		rc = error_set(CF_ERR_SOURCE,
		               "source %s: wal_level is minimal; a base backup needs replica "
		               "(set wal_level = replica and restart the server)",
		               s->name);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The base backup                                                          */
/* ------------------------------------------------------------------------ */

struct source_pgphys_copy {
	struct backup_run *run;
	struct filter *head; /* the open stream, or NULL */
	int tar;             /* the open stream is a tar archive */
	json_t *tablespaces;
	size_t archives;
};

static int source_pgphys_close(struct source_pgphys_copy *c)
{
	int rc = 0;

	if (!c->head)
		return 0;
	if (c->tar)
		rc = filter_write(c->head, source_pgphys_tar_end, sizeof(source_pgphys_tar_end));
	c->head = NULL;
	return rc ? rc : backup_stream_close(c->run);
}

/* 'n': a new archive, "base.tar" or "<oid>.tar", and its tablespace's path. */
static int source_pgphys_archive(const struct source_pgphys *s, struct source_pgphys_copy *c,
                                 const char *msg, size_t len)
{
	const char *name = msg, *path;
	char stream[64], meta[4200];
	size_t nlen = strnlen(msg, len);
	int rc;

	if (nlen >= len)
		return error_set(CF_ERR_SOURCE, "source %s: a malformed archive header", s->name);
	path = msg + nlen + 1;
	if (strnlen(path, len - nlen - 1) >= len - nlen - 1)
		return error_set(CF_ERR_SOURCE, "source %s: a malformed archive header", s->name);
	rc = source_pgphys_close(c);
	if (rc)
		return rc;
	if (!strcmp(name, "base.tar")) {
		snprintf(stream, sizeof(stream), "base");
		snprintf(meta, sizeof(meta), "{\"role\":\"base\"}");
	} else {
		unsigned long oid = strtoul(name, NULL, 10);
		json_t *t = json_pack("{s:I, s:s}", "oid", (json_int_t)oid, "location", path);
		char *mt = t ? json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		if (!mt || json_array_append(c->tablespaces, t)) {
			json_decref(t);
			free(mt);
			return error_set(CF_ERR_NOMEM, "out of memory");
		}
		snprintf(stream, sizeof(stream), "tblspc-%lu", oid);
		snprintf(meta, sizeof(meta), "{\"role\":\"tablespace\",\"tablespace\":%s}", mt);
		json_decref(t);
		free(mt);
	}
	log_info("source %s: receiving %s%s%s", s->name, name, path[0] ? " of " : "", path);
	rc = backup_stream_open(c->run, stream, "tar", &c->head);
	if (!rc)
		rc = backup_stream_set_meta(c->run, meta);
	c->tar = 1;
	c->archives++;
	return rc;
}

/* One CopyData message of the BASE_BACKUP stream. */
static int source_pgphys_message_in(const struct source_pgphys *s, struct source_pgphys_copy *c,
                                    const char *msg, size_t len)
{
	int rc;

	if (len < 1)
		return error_set(CF_ERR_SOURCE, "source %s: an empty message from the server",
		                 s->name);
	switch (msg[0]) {
	case 'n':
		return source_pgphys_archive(s, c, msg + 1, len - 1);
	case 'm':
		rc = source_pgphys_close(c);
		if (!rc)
			rc = backup_stream_open(c->run, "backup_manifest", "raw", &c->head);
		if (!rc)
			rc = backup_stream_set_meta(c->run, "{\"role\":\"backup_manifest\"}");
		c->tar = 0;
		return rc;
	case 'd':
		if (!c->head)
			return error_set(CF_ERR_SOURCE, "source %s: data before any archive",
			                 s->name);
		return filter_write(c->head, msg + 1, len - 1);
	case 'p':
		return 0; /* progress */
	default:
		return error_set(CF_ERR_SOURCE,
		                 "source %s: an unknown message type '%c' in the "
		                 "base backup stream",
		                 s->name, msg[0]);
	}
}

static int source_pgphys_copy(const struct source_pgphys *s, PGconn *conn,
                              struct source_pgphys_copy *c)
{
	int rc = 0;

	while (!rc) {
		char *msg = NULL;
		int n = PQgetCopyData(conn, &msg, 1);

		if (n == 0) {
			struct pollfd pfd = {PQsocket(conn), POLLIN, 0};

			if (backup_run_interrupted(c->run))
				return error_set(CF_ERR_INTERRUPTED,
				                 "source %s: interrupted by a signal", s->name);
			(void)poll(&pfd, 1, 200);
			if (!PQconsumeInput(conn))
				rc = error_set(CF_ERR_SOURCE, "source %s: %s", s->name,
				               source_pgphys_message(conn));
			continue;
		}
		if (n == -1)
			break;
		if (n < 0)
			return error_set(CF_ERR_SOURCE,
			                 "source %s: the base backup stream broke: %s", s->name,
			                 source_pgphys_message(conn));
		rc = source_pgphys_message_in(s, c, msg, (size_t)n);
		PQfreemem(msg);
	}
	return rc ? rc : source_pgphys_close(c);
}

/* The record's meta: what restore and prune need to know of the backup. */
static int source_pgphys_meta(const struct source_pgphys *s, struct backup_run *run,
                              const struct source_pgphys_server *v, const char *start_lsn,
                              const char *start_tli, const char *stop_lsn, const char *stop_tli,
                              json_t *tablespaces)
{
	uint64_t seg = source_pgphys_bytes(v->segsize), start = 0, stop = 0;
	char start_wal[25] = "", stop_wal[25] = "";
	json_t *m;
	char *text;
	int rc;

	rc = wal_lsn_parse(start_lsn, &start);
	if (!rc)
		rc = wal_lsn_parse(stop_lsn, &stop);
	if (rc || !seg)
		return error_set(CF_ERR_SOURCE,
		                 "source %s: the server sent an LSN or segment size "
		                 "coffer cannot read (%s, %s, %s)",
		                 s->name, start_lsn, stop_lsn, v->segsize);
	wal_segname((uint32_t)atol(start_tli), start / seg, seg, start_wal);
	wal_segname((uint32_t)atol(stop_tli), stop / seg, seg, stop_wal);
	m = json_pack("{s:s, s:b, s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:O, "
	              "s:s, s:s}",
	              "engine", "postgres", "physical", 1, "system_identifier", v->sysid,
	              "timeline", (json_int_t)atol(start_tli), "start_lsn", start_lsn, "stop_lsn",
	              stop_lsn, "stop_timeline", (json_int_t)atol(stop_tli), "start_wal", start_wal,
	              "stop_wal", stop_wal, "stop_ms", (json_int_t)time_real_ms(), "server_version",
	              v->version, "wal_level", v->wal_level, "server_version_num",
	              (json_int_t)atol(v->version_num), "wal_segment_size", (json_int_t)seg,
	              "tablespaces", tablespaces, "checkpoint",
	              s->checkpoint ? s->checkpoint : "fast", "wal", "included");
	text = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(m);
	rc = text ? backup_run_set_meta(run, text) : error_set(CF_ERR_NOMEM, "out of memory");
	free(text);
	return rc;
}

static int source_pgphys_run(void *state, struct backup_run *run)
{
	struct source_pgphys *s = state;
	struct source_pgphys_server v = {NULL};
	struct source_pgphys_copy c = {run, NULL, 0, json_array(), 0};
	char cmd[512], *start_lsn = NULL, *start_tli = NULL, *stop_lsn = NULL, *stop_tli = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int rc, stage = 0;

	rc = c.tablespaces ? source_pgphys_connect(s, &conn)
	                   : error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc)
		rc = source_pgphys_server(s, conn, &v);
	if (rc)
		goto out;
	if (!strcmp(v.archive_mode, "off"))
		log_warn(
		    "source %s: archive_mode is off: this base backup restores only to its own "
		    "end (--immediate); set archive_mode = on and archive_command = 'coffer "
		    "wal-push --source %s %%p' for point-in-time recovery",
		    s->name, s->name);
	/* WAL true: the WAL from start to end goes into base (pg_wal/), so the
	 * backup is consistent without the archive; WAIT false: nor does it
	 * wait for the archive to take the last segment. */
	snprintf(cmd, sizeof(cmd),
	         "BASE_BACKUP (LABEL 'coffer %s', CHECKPOINT '%s', WAL true, WAIT false, "
	         "MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', TABLESPACE_MAP false, "
	         "PROGRESS false)",
	         s->name, s->checkpoint ? s->checkpoint : "fast");
	log_info("source %s: base backup of PostgreSQL %s, system %s, timeline %s (%s checkpoint)",
	         s->name, v.version, v.sysid, v.tli, s->checkpoint ? s->checkpoint : "fast");
	if (!PQsendQuery(conn, cmd)) {
		rc = error_set(CF_ERR_SOURCE, "source %s: BASE_BACKUP: %s", s->name,
		               source_pgphys_message(conn));
		goto out;
	}
	/* The start position, the tablespaces, the COPY stream, the end
	 * position, and the command's completion. */
	while (!rc && !(rc = source_pgphys_result(s, conn, &res)) && res) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_TUPLES_OK && stage == 0 && PQntuples(res) == 1) {
			start_lsn = strdup(PQgetvalue(res, 0, 0));
			start_tli = strdup(PQgetvalue(res, 0, 1));
			stage = 1;
			log_info("source %s: checkpoint done, the backup starts at %s", s->name,
			         start_lsn ? start_lsn : "?");
		} else if (st == PGRES_TUPLES_OK && stage == 1) {
			stage = 2; /* the tablespaces: their paths come with each archive */
		} else if (st == PGRES_COPY_OUT && stage == 2) {
			rc = source_pgphys_copy(s, conn, &c);
			stage = 3;
		} else if (st == PGRES_TUPLES_OK && stage == 3 && PQntuples(res) == 1) {
			stop_lsn = strdup(PQgetvalue(res, 0, 0));
			stop_tli = strdup(PQgetvalue(res, 0, 1));
			stage = 4;
		} else if (st == PGRES_COMMAND_OK && stage == 4) {
			stage = 5;
		} else {
			rc = error_set(CF_ERR_SOURCE, "source %s: BASE_BACKUP failed: %s", s->name,
			               st == PGRES_FATAL_ERROR ? PQresultErrorMessage(res)
			                                       : PQresStatus(st));
		}
		PQclear(res);
		res = NULL;
	}
	if (!rc && stage != 5)
		rc = error_set(CF_ERR_SOURCE,
		               "source %s: the base backup ended before the server confirmed it "
		               "(stage %d)",
		               s->name, stage);
	if (!rc && (!start_lsn || !start_tli || !stop_lsn || !stop_tli))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && c.archives == 0)
		rc = error_set(CF_ERR_SOURCE, "source %s: the server sent no archive", s->name);
	if (!rc)
		rc = source_pgphys_meta(s, run, &v, start_lsn, start_tli, stop_lsn, stop_tli,
		                        c.tablespaces);
	if (!rc)
		log_info("source %s: base backup from %s to %s on timeline %s", s->name, start_lsn,
		         stop_lsn, stop_tli);
out:
	PQclear(res);
	if (conn)
		PQfinish(conn);
	source_pgphys_server_free(&v);
	json_decref(c.tablespaces);
	free(start_lsn);
	free(start_tli);
	free(stop_lsn);
	free(stop_tli);
	return rc;
}

/* coffer check: a replication connection, the version, wal_level and the
 * archive settings. */
static int source_pgphys_probe(void *state, struct buf *detail)
{
	struct source_pgphys *s = state;
	struct source_pgphys_server v = {NULL};
	PGconn *conn = NULL;
	int rc = source_pgphys_connect(s, &conn);

	if (!rc)
		rc = source_pgphys_server(s, conn, &v);
	if (!rc)
		rc = buf_printf(detail,
		                "PostgreSQL %s, system %s, timeline %s, wal_level %s, archive_mode "
		                "%s, WAL segments of %s",
		                v.version, v.sysid, v.tli, v.wal_level, v.archive_mode, v.segsize);
	if (!rc && !strcmp(v.archive_mode, "off"))
		rc = error_set(CF_ERR_SOURCE,
		               "source %s: archive_mode is off: set archive_mode = on and "
		               "archive_command = 'coffer wal-push --source %s %%p', then restart",
		               s->name, s->name);
	if (conn)
		PQfinish(conn);
	source_pgphys_server_free(&v);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Drill: verify --drill                                                    */
/* ------------------------------------------------------------------------ */

/* The server's user and group, for the files the drill lays down as root
 * (nftw() takes no context; the drill runs in the main thread). */
static uid_t source_pgphys_drill_uid;
static gid_t source_pgphys_drill_gid;

static int source_pgphys_chown_one(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return lchown(path, source_pgphys_drill_uid, source_pgphys_drill_gid) != 0 ? -1 : 0;
}

/* A file of the drill folder holding text, owned by the server's user. */
static int source_pgphys_drill_file(const struct drill *d, const char *name, const char *text)
{
	char path[4200];
	int fd, rc = drill_path(d, name, path, sizeof(path));

	if (rc)
		return rc;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create %s", path);
	rc = fs_write_all(fd, text, strlen(text), path);
	if (!rc && d->uid && fchown(fd, d->uid, d->gid) != 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot hand %s to the server's user", path);
	close(fd);
	return rc;
}

/* The rows of query sql on conn, in *out (NULL on error); a signal
 * cancels it. Errors: CF_ERR_INTEGRITY (the query failed: the restored
 * cluster's message), CF_ERR_INTERRUPTED, CF_ERR_SOURCE. */
static int source_pgphys_drill_exec(PGconn *conn, const char *db, const char *sql, PGresult **out)
{
	PGresult *r;
	int rc = PQsendQuery(conn, sql) ? 0 : CF_ERR_INTEGRITY;

	*out = NULL;
	while (!rc && !(rc = source_pgphys_wait_for("drill", conn)) &&
	       (r = PQgetResult(conn)) != NULL) {
		if (*out)
			PQclear(r);
		else
			*out = r;
	}
	if (!rc && PQresultStatus(*out) != PGRES_TUPLES_OK)
		rc = CF_ERR_INTEGRITY;
	if (rc == CF_ERR_INTEGRITY)
		rc = error_set(rc, "drill: database %s of the restored cluster: %s", db,
		               *out ? PQresultErrorMessage(*out) : source_pgphys_message(conn));
	if (rc) {
		PQclear(*out);
		*out = NULL;
	}
	return rc;
}

/* One query's "NAME<TAB>N" rows into the report: kinds or tables of db. */
static int source_pgphys_drill_count(struct drill *d, PGconn *conn, const char *db, const char *sql,
                                     int tables)
{
	PGresult *res = NULL;
	int rc = source_pgphys_drill_exec(conn, db, sql, &res);

	for (int i = 0; !rc && i < PQntuples(res); i++) {
		char *row = PQgetvalue(res, i, 0), *tab = strrchr(row, '\t');

		if (!tab)
			continue;
		*tab = '\0';
		rc = tables ? drill_table(d, db, row, atoll(tab + 1))
		            : drill_kind(d, db, row, atoll(tab + 1));
	}
	PQclear(res);
	return rc;
}

/* A connection to database db of the drill's server as user. */
static int source_pgphys_drill_connect(const struct drill *d, const char *user, const char *db,
                                       PGconn **out)
{
	const char *k[] = {"host", "port", "user", "dbname", "connect_timeout", NULL};
	const char *v[] = {d->dir, SOURCE_PGPHYS_DRILL_PORT, user, db, "30", NULL};
	PGconn *conn = PQconnectdbParams(k, v, 0);

	*out = NULL;
	if (!conn)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		int rc = error_set(CF_ERR_INTEGRITY,
		                   "drill: cannot connect to database %s of the restored cluster "
		                   "as %s: %s",
		                   db, user, source_pgphys_message(conn));

		PQfinish(conn);
		return rc;
	}
	*out = conn;
	return 0;
}

/* Counts every database of the restored cluster: objects per kind, and
 * every table's rows. It connects as the source's user (the backup's
 * REPLICATION role, which the cluster holds), then as the bootstrap
 * superuser (oid 10), who can read every table. */
static int source_pgphys_drill_report(struct drill *d)
{
	const struct source_pgphys *s =
	    d->src && d->src->ops == &source_pgphys_ops ? d->src->state : NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	struct strv dbs = {0};
	char super[256] = "";
	/* template1: every cluster has it, open to connections. */
	int rc =
	    source_pgphys_drill_connect(d, s && s->user ? s->user : "postgres", "template1", &conn);

	if (!rc)
		rc = source_pgphys_drill_exec(conn, "template1",
		                              "SELECT rolname FROM pg_roles WHERE oid = 10", &res);
	if (!rc && PQntuples(res) == 1)
		snprintf(super, sizeof(super), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (!rc)
		rc = source_pgphys_drill_exec(conn, "template1",
		                              "SELECT datname FROM pg_database WHERE datallowconn "
		                              "AND NOT datistemplate ORDER BY 1",
		                              &res);
	for (int i = 0; !rc && i < PQntuples(res); i++)
		rc = strv_add(&dbs, PQgetvalue(res, i, 0));
	PQclear(res);
	if (conn)
		PQfinish(conn);
	for (size_t i = 0; !rc && i < dbs.n; i++) {
		rc = source_pgphys_drill_connect(d, super, dbs.v[i], &conn);
		if (!rc)
			rc = source_pgphys_drill_count(d, conn, dbs.v[i], source_postgres_kinds_sql,
			                               0);
		if (!rc)
			rc = source_pgphys_drill_count(d, conn, dbs.v[i], source_postgres_rows_sql,
			                               1);
		if (conn)
			PQfinish(conn);
		conn = NULL;
	}
	strv_free(&dbs);
	return rc;
}

/*
 * The drill of a base backup: laid down in DIR/data (tablespaces in
 * DIR/tblspc/OID) and started by the same major version's postgres, with
 * a configuration of the drill's own (a private socket, no TCP, trust for
 * local connections, no archiving). backup_label makes it recover to the
 * backup's end from the WAL in the base backup's pg_wal; the archive is not
 * read (restore --to-datadir tests that). Then every database is counted.
 */
static int source_pgphys_drill(struct drill *d)
{
	json_t *meta = d->b->meta_json ? json_loads(d->b->meta_json, 0, NULL) : NULL;
	long num = (long)json_integer_value(json_object_get(meta, "server_version_num"));
	int major = (int)(num / 10000);
	char bin[4096], data[4200], ts[4200], tool[4200];
	struct pgphys_outside made;
	struct strv argv = {0};
	int rc = 0;

	json_decref(meta);
	memset(&made, 0, sizeof(made));
	snprintf(bin, sizeof(bin), "/usr/lib/postgresql/%d/bin", major);
	snprintf(tool, sizeof(tool), "%s/postgres", bin);
	if (major < 15 || access(tool, X_OK) != 0)
		rc = error_set(CF_ERR_TARGET,
		               "a drill of a PostgreSQL %d base backup needs the server of that "
		               "version (a data directory opens in its own major version only): "
		               "install postgresql-%d (%s)",
		               major, major, tool);
	if (!rc)
		rc = drill_run_as(d, "postgres");
	if (!rc)
		rc = drill_path(d, "data", data, sizeof(data));
	if (!rc)
		rc = drill_path(d, "tblspc", ts, sizeof(ts));
	if (!rc && (mkdir(data, 0700) != 0 || mkdir(ts, 0700) != 0))
		rc = error_set_errno(CF_ERR_IO, errno, "cannot create %s", data);
	if (!rc) {
		drill_restore_begin(d);
		rc = pgphys_lay_down(d->st, d->b, d->ids, data, NULL, ts, d->progress, &made);
	}
	if (!rc)
		rc = source_pgphys_drill_file(d, "drill.conf", "# coffer verify --drill\n");
	if (!rc)
		rc = source_pgphys_drill_file(d, "drill_hba.conf", "local all all trust\n");
	if (!rc)
		rc = source_pgphys_drill_file(d, "drill_ident.conf", "");
	if (!rc && d->uid) {
		source_pgphys_drill_uid = d->uid;
		source_pgphys_drill_gid = d->gid;
		if (nftw(data, source_pgphys_chown_one, 32, FTW_PHYS) != 0 ||
		    nftw(ts, source_pgphys_chown_one, 32, FTW_PHYS) != 0)
			rc = error_set_errno(CF_ERR_IO, errno,
			                     "cannot hand the restored files to the server's user");
	}
	/* Durability is of no use to a server thrown away after the check. */
	if (!rc)
		rc =
		    strv_addl(&argv, tool, "-D", data, "-k", d->dir, "-p", SOURCE_PGPHYS_DRILL_PORT,
		              "-c", "listen_addresses=", "-c", "archive_mode=off", "-c",
		              "fsync=off", "-c", "max_wal_senders=0", "-c", "wal_level=minimal",
		              "-c", "hot_standby=off", "-c", "autovacuum=off", NULL);
	if (!rc)
		rc = strv_addf(&argv, "--config_file=%s/drill.conf", d->dir);
	if (!rc)
		rc = strv_addf(&argv, "--hba_file=%s/drill_hba.conf", d->dir);
	if (!rc)
		rc = strv_addf(&argv, "--ident_file=%s/drill_ident.conf", d->dir);
	if (!rc)
		rc = drill_server_start(d, "postgres", argv.v, NULL, source_postgres_drill_ready,
		                        NULL);
	if (!rc)
		drill_restored(d);
	if (!rc)
		rc = source_pgphys_drill_report(d);
	strv_free(&argv);
	/* In the drill folder, which goes with it. */
	strv_free(&made.made);
	strv_free(&made.filled);
	return rc;
}

const struct source_ops source_pgphys_ops = {
    .type = "postgres-physical",
    .create = source_pgphys_create,
    .set = source_pgphys_set,
    .check = source_pgphys_check,
    .run = source_pgphys_run,
    .probe = source_pgphys_probe,
    .free = source_pgphys_free,
    .drill = source_pgphys_drill,
};
