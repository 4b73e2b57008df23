/*
 * source_postgres: PostgreSQL, one object per database with pg_dump's custom
 * format (so pg_restore can restore one table, or restore in parallel from a
 * file), plus pg_dumpall --globals-only (roles, tablespaces) as its own
 * object.
 *
 * The connection follows libpq's conventions and is passed to the tools only
 * through the environment (PGHOST, PGPORT, PGUSER, PGSERVICE, PGPASSFILE,
 * PGSSLMODE, PGDATABASE): a password lives in a .pgpass file or a service
 * file, never in an argv or a log line. Each database is dumped by its own
 * pg_dump, so each object is a snapshot of one database as of the moment its
 * dump started; two databases are not dumped at one instant.
 */
#include "agent/agent.h"
#include "agent/drill.h"
#include "agent/pipeline.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/proc.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"

#include <dirent.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct source_postgres {
	char *name;
	char *host, *port, *user, *dbname, *service, *passfile, *sslmode, *bin_dir;
	struct strv databases, exclude;
	int globals;        /* dump roles and tablespaces */
	int role_passwords; /* 0: pg_dumpall --no-role-passwords (managed services) */
	int row_counts;     /* count every table's rows in the dump's own snapshot */
};
_Static_assert(offsetof(struct source_postgres, name) == 0,
               "source_state_new() needs the name first");

#define PGK(n, t, f)                                                                               \
	{                                                                                          \
		n, t, offsetof(struct source_postgres, f)                                          \
	}
static const struct source_key source_postgres_keys[] = {
    PGK("host", SOURCE_KEY_STR, host),
    PGK("port", SOURCE_KEY_PORT, port),
    PGK("user", SOURCE_KEY_STR, user),
    PGK("dbname", SOURCE_KEY_STR, dbname),
    PGK("service", SOURCE_KEY_STR, service),
    PGK("passfile", SOURCE_KEY_PATH, passfile),
    PGK("sslmode", SOURCE_KEY_STR, sslmode),
    {"databases", SOURCE_KEY_LIST, offsetof(struct source_postgres, databases)},
    {"exclude_databases", SOURCE_KEY_LIST, offsetof(struct source_postgres, exclude)},
    PGK("globals", SOURCE_KEY_BOOL, globals),
    PGK("role_passwords", SOURCE_KEY_BOOL, role_passwords),
    PGK("row_counts", SOURCE_KEY_BOOL, row_counts),
    PGK("bin_dir", SOURCE_KEY_PATH, bin_dir),
    {NULL, SOURCE_KEY_STR, 0},
};
#undef PGK

static int source_postgres_create(const char *name, void **state)
{
	int rc = source_state_new(sizeof(struct source_postgres), name, state);

	if (!rc) {
		struct source_postgres *s = *state;

		s->globals = 1;
		s->role_passwords = 1;
	}
	return rc;
}

static void source_postgres_free(void *state)
{
	source_state_free(source_postgres_keys, state);
}

static int source_postgres_set(void *state, const char *key, const char *value)
{
	return source_keys_set(source_postgres_keys, state, key, value);
}

static int source_postgres_check(void *state)
{
	(void)state;
	return 0;
}

/* The environment every tool gets: the connection, and nothing that could
 * make a tool prompt. db is the database to connect to (NULL: the
 * maintenance database). */
static int source_postgres_env(const struct source_postgres *s, const char *db, struct strv *env)
{
	int rc = strv_add_env(env, "PGHOST", s->host);

	if (!rc)
		rc = strv_add_env(env, "PGPORT", s->port);
	if (!rc)
		rc = strv_add_env(env, "PGUSER", s->user);
	if (!rc)
		rc = strv_add_env(env, "PGSERVICE", s->service);
	if (!rc)
		rc = strv_add_env(env, "PGPASSFILE", s->passfile);
	if (!rc)
		rc = strv_add_env(env, "PGSSLMODE", s->sslmode);
	/* PGDATABASE is taken as a name, never parsed as a connection string. */
	if (!rc)
		rc = strv_add_env(env, "PGDATABASE", db ? db : s->dbname ? s->dbname : "postgres");
	if (!rc)
		rc = strv_add_env(env, "PGAPPNAME", "coffer");
	if (!rc)
		rc = strv_add_env(env, "PGCONNECT_TIMEOUT", "30");
	return rc;
}

static int source_postgres_tool(const struct source_postgres *s, const char *tool,
                                struct strv *argv)
{
	const char *names[] = {tool, NULL};
	char *path = source_db_find_tool(s->bin_dir, names);
	int rc;

	if (!path)
		return error_set(CF_ERR_SOURCE, "source %s: %s not found in %s", s->name, tool,
		                 s->bin_dir ? s->bin_dir : "PATH (install postgresql-client)");
	rc = strv_add(argv, path);
	free(path);
	return rc;
}

/* Runs a query through psql; out receives one column's rows separated by NUL
 * bytes (psql -A -t -0), so any database name is safe. */
static int source_postgres_query(const struct source_postgres *s, const char *sql, struct buf *out)
{
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	char label[256];
	int rc;

	snprintf(label, sizeof(label), "source %s: psql", s->name);
	rc = source_postgres_tool(s, "psql", &argv);
	if (!rc)
		rc = strv_addl(&argv, "-X", "-w", "-q", "-A", "-t", "-0", "-v", "ON_ERROR_STOP=1",
		               "-c", sql, NULL);
	if (!rc)
		rc = source_postgres_env(s, NULL, &env);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.env = env.v;
		spec.errcode = CF_ERR_SOURCE;
		rc = proc_capture(&spec, out);
	}
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

/* Splits psql -0 output into rows. */
static int source_postgres_rows(const struct buf *out, struct strv *rows)
{
	const char *p = (const char *)out->data, *end = p + out->len;
	int rc = 0;

	while (!rc && p < end) {
		size_t n = strnlen(p, (size_t)(end - p));
		char *row = strndup(p, n);

		/* psql ends the last row with a newline, not a NUL. */
		if (!row)
			return error_set(CF_ERR_NOMEM, "out of memory");
		if (n && row[n - 1] == '\n' && p + n == end)
			row[n - 1] = '\0';
		rc = strv_add(rows, row);
		free(row);
		p += n + 1;
	}
	return rc;
}

/* "pg_dump (PostgreSQL) 15.18 (Debian ...)" -> 15; 0 if unknown. */
static int source_postgres_tool_major(const struct source_postgres *s, const char *tool,
                                      char *version, size_t vlen)
{
	struct strv argv = {0};
	struct proc_spec spec;
	struct buf out;
	char label[256];
	const char *v;
	int major = 0;

	snprintf(label, sizeof(label), "source %s: %s", s->name, tool);
	buf_init(&out, 4096);
	if (!source_postgres_tool(s, tool, &argv) && !strv_add(&argv, "--version")) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.errcode = CF_ERR_SOURCE;
		if (!proc_capture(&spec, &out) && (v = strstr((char *)out.data, ") ")) != NULL) {
			major = atoi(v + 2);
			snprintf(version, vlen, "%.*s", (int)strcspn(v + 2, " \n"), v + 2);
		}
	}
	strv_free(&argv);
	buf_free(&out);
	return major;
}

/* Every table's exact row count, "schema.table<TAB>rows" a row: what
 * row_counts records at backup and the drill counts after the restore (one
 * query, so the names agree). */
const char source_postgres_rows_sql[] =
    "SELECT n.nspname || '.' || c.relname || chr(9) || (xpath('/row/c/text()', "
    "query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = "
    "c.relnamespace WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND "
    "n.nspname !~ '^pg_' ORDER BY 1";

/* ------------------------------------------------------------------------ */
/* row_counts: the counts of the dump's own snapshot                        */
/* ------------------------------------------------------------------------ */

/* A libpq error's message on one line. */
static const char *source_postgres_pq_message(PGconn *conn)
{
	static __thread char msg[512];

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? ' ' : '\0';
	return msg;
}

/* Runs sql and waits for its result, polling for signals (a count of a
 * big database takes a while; SIGTERM cancels the query). */
static int source_postgres_pq_exec(const struct source_postgres *s, PGconn *conn, const char *sql,
                                   ExecStatusType want, PGresult **out)
{
	PGresult *res = NULL, *r;
	int rc = 0;

	*out = NULL;
	if (!PQsendQuery(conn, sql))
		return error_set(CF_ERR_SOURCE, "source %s: row counts: %s", s->name,
		                 source_postgres_pq_message(conn));
	while (!rc) {
		struct pollfd pfd = {PQsocket(conn), POLLIN, 0};

		if (!PQconsumeInput(conn))
			rc = error_set(CF_ERR_SOURCE, "source %s: row counts: %s", s->name,
			               source_postgres_pq_message(conn));
		else if (!PQisBusy(conn))
			break;
		else if (cancel_requested()) {
			PGcancel *c = PQgetCancel(conn);
			char ebuf[256];

			if (c) {
				PQcancel(c, ebuf, sizeof(ebuf));
				PQfreeCancel(c);
			}
			rc = error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal",
			               s->name);
		} else {
			(void)poll(&pfd, 1, 200);
		}
	}
	while ((r = PQgetResult(conn)) != NULL) {
		if (res)
			PQclear(res);
		res = r;
	}
	if (!rc && (!res || PQresultStatus(res) != want))
		rc = error_set(CF_ERR_SOURCE, "source %s: row counts: %s", s->name,
		               res ? PQresultErrorMessage(res) : source_postgres_pq_message(conn));
	if (rc) {
		PQclear(res);
		return rc;
	}
	*out = res;
	return 0;
}

/*
 * Opens a REPEATABLE READ transaction on db, exports its snapshot into
 * snap (for pg_dump --snapshot) and counts every table's rows in it into
 * counts ({"schema.table": rows}). *conn stays open, the transaction with
 * it, until the dump is done. Errors: CF_ERR_SOURCE, CF_ERR_INTERRUPTED,
 * CF_ERR_NOMEM.
 */
static int source_postgres_snapshot(const struct source_postgres *s, const char *db, PGconn **conn,
                                    char *snap, size_t size, json_t *counts)
{
	const char *k[12], *v[12];
	PGresult *res = NULL;
	int n = 0, rc;

#define PGKV(key, val)                                                                             \
	do {                                                                                       \
		if (val) {                                                                         \
			k[n] = key;                                                                \
			v[n++] = val;                                                              \
		}                                                                                  \
	} while (0)
	PGKV("host", s->host);
	PGKV("port", s->port);
	PGKV("user", s->user);
	PGKV("service", s->service);
	PGKV("passfile", s->passfile);
	PGKV("sslmode", s->sslmode);
	PGKV("dbname", db);
	PGKV("application_name", "coffer");
	PGKV("connect_timeout", "30");
#undef PGKV
	k[n] = v[n] = NULL;
	/* expand_dbname 0: db is a name, never parsed as a connection string. */
	*conn = PQconnectdbParams(k, v, 0);
	if (!*conn)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (PQstatus(*conn) != CONNECTION_OK)
		return error_set(CF_ERR_SOURCE, "source %s: cannot connect to database %s: %s",
		                 s->name, db, source_postgres_pq_message(*conn));
	rc = source_postgres_pq_exec(s, *conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
	                             PGRES_COMMAND_OK, &res);
	PQclear(res);
	if (!rc)
		rc = source_postgres_pq_exec(s, *conn, "SELECT pg_export_snapshot()",
		                             PGRES_TUPLES_OK, &res);
	if (!rc) {
		snprintf(snap, size, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		rc = source_postgres_pq_exec(s, *conn, source_postgres_rows_sql, PGRES_TUPLES_OK,
		                             &res);
	}
	for (int i = 0; !rc && i < PQntuples(res); i++) {
		char *row = PQgetvalue(res, i, 0), *tab = strrchr(row, '\t');

		if (tab) {
			*tab = '\0';
			if (json_object_set_new(counts, row, json_integer(atoll(tab + 1))))
				rc = error_set(CF_ERR_NOMEM, "out of memory");
		}
	}
	PQclear(res);
	return rc;
}

/* pg_dumpall --globals-only into the stream "globals.sql". */
static int source_postgres_globals(struct source_postgres *s, struct backup_run *run)
{
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	char label[256];
	int rc;

	snprintf(label, sizeof(label), "source %s: pg_dumpall", s->name);
	rc = source_postgres_tool(s, "pg_dumpall", &argv);
	if (!rc)
		rc = strv_addl(&argv, "--globals-only", "--no-password", NULL);
	if (!rc && !s->role_passwords)
		rc = strv_add(&argv, "--no-role-passwords");
	if (!rc)
		rc = strv_add(&argv, "--quote-all-identifiers");
	if (!rc)
		rc = source_postgres_env(s, NULL, &env);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.env = env.v;
		spec.errcode = CF_ERR_SOURCE;
		rc = source_dump_child(run, &spec, "globals.sql", "sql", "{\"role\":\"globals\"}");
	}
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

static int source_postgres_database(struct source_postgres *s, struct backup_run *run,
                                    const char *db)
{
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	char label[512], stream[256], snap[64];
	json_t *meta = json_pack("{s:s, s:s}", "role", "database", "database", db);
	json_t *counts = json_object();
	PGconn *conn = NULL;
	char *metatext = NULL;
	double t0 = time_mono();
	int rc = meta && counts ? 0 : error_set(CF_ERR_NOMEM, "out of memory");

	snprintf(label, sizeof(label), "source %s: pg_dump %s", s->name, db);
	if (!rc)
		rc = source_db_stream_name("db-", db, ".pgdump", stream, sizeof(stream));
	if (!rc)
		rc = source_postgres_tool(s, "pg_dump", &argv);
	/* Custom format, uncompressed: coffer compresses. */
	if (!rc)
		rc = strv_addl(&argv, "--format=custom", "--compress=0", "--no-password", NULL);
	if (!rc)
		rc = source_postgres_env(s, db, &env);
	/* row_counts: the counts of the very snapshot pg_dump reads. */
	if (!rc && s->row_counts) {
		rc = source_postgres_snapshot(s, db, &conn, snap, sizeof(snap), counts);
		if (!rc)
			rc = strv_addf(&argv, "--snapshot=%s", snap);
		if (!rc && json_object_set(meta, "row_counts", counts))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		if (!rc)
			log_info("source %s: counted the rows of %zu tables of %s in %.1f s",
			         s->name, json_object_size(counts), db, time_mono() - t0);
	}
	if (!rc && !(metatext = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.env = env.v;
		spec.errcode = CF_ERR_SOURCE;
		log_info("source %s: dumping database %s", s->name, db);
		rc = source_dump_child(run, &spec, stream, "pg_dump", metatext);
	}
	if (conn)
		PQfinish(conn); /* ends the read-only transaction */
	free(metatext);
	json_decref(meta);
	json_decref(counts);
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

static int source_postgres_meta(struct source_postgres *s, struct backup_run *run,
                                const char *server_version, long server_num,
                                const char *dump_version, const struct strv *dbs)
{
	json_t *m = source_db_meta_new("postgres", dbs);
	int bad = !m;

	bad = bad || json_object_set_new(m, "server_version", json_string(server_version));
	bad = bad || json_object_set_new(m, "server_version_num", json_integer(server_num));
	bad = bad || json_object_set_new(m, "pg_dump_version", json_string(dump_version));
	bad = bad || json_object_set_new(m, "globals", json_boolean(s->globals));
	bad = bad || json_object_set_new(m, "dump_options",
	                                 json_string("pg_dump --format=custom --compress=0"));
	return source_db_meta_commit(run, m, bad);
}

/* The server's version and the databases to dump (after the include and
 * exclude lists). One query checks the connection and the password before
 * anything is stored. */
static int source_postgres_server(const struct source_postgres *s, long *server_num,
                                  char *server_version, size_t vlen, struct strv *dbs)
{
	struct strv rows = {0}, all = {0};
	struct buf out;
	int rc;

	buf_init(&out, 16 * 1024 * 1024);
	rc = source_postgres_query(
	    s,
	    "SELECT x FROM (SELECT 0 AS k, current_setting('server_version_num') AS x "
	    "UNION ALL SELECT 1, current_setting('server_version') "
	    "UNION ALL SELECT 2, datname::text FROM pg_database "
	    "WHERE datallowconn AND NOT datistemplate) t ORDER BY k, x COLLATE \"C\"",
	    &out);
	if (!rc)
		rc = source_postgres_rows(&out, &rows);
	if (!rc && rows.n < 2)
		rc =
		    error_set(CF_ERR_SOURCE, "source %s: psql returned no server version", s->name);
	if (!rc) {
		*server_num = atol(rows.v[0]);
		snprintf(server_version, vlen, "%s", rows.v[1]);
	}
	for (size_t i = 2; !rc && i < rows.n; i++)
		rc = strv_add(&all, rows.v[i]);
	if (!rc)
		rc = source_db_select(s->name, &all, &s->databases, &s->exclude, dbs);
	if (!rc && dbs->n == 0)
		rc = error_set(CF_ERR_SOURCE,
		               "source %s: no database left to dump after the excludes", s->name);
	buf_free(&out);
	strv_free(&rows);
	strv_free(&all);
	return rc;
}

static int source_postgres_run(void *state, struct backup_run *run)
{
	struct source_postgres *s = state;
	struct strv dbs = {0};
	char dump_version[64] = "", server_version[128] = "";
	long server_num = 0;
	int rc, dump_major;

	rc = source_postgres_server(s, &server_num, server_version, sizeof(server_version), &dbs);
	if (rc)
		goto out;
	dump_major = source_postgres_tool_major(s, "pg_dump", dump_version, sizeof(dump_version));
	if (dump_major && dump_major < server_num / 10000)
		log_warn(
		    "source %s: pg_dump %s is older than the server (%s); install the client of "
		    "the server's major version or set bin_dir",
		    s->name, dump_version, server_version);
	rc = source_postgres_meta(s, run, server_version, server_num, dump_version, &dbs);
	if (!rc && s->globals)
		rc = source_postgres_globals(s, run);
	for (size_t i = 0; !rc && i < dbs.n; i++) {
		if (backup_run_interrupted(run))
			rc = error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal",
			               s->name);
		else
			rc = source_postgres_database(s, run, dbs.v[i]);
	}
out:
	strv_free(&dbs);
	return rc;
}

/* coffer check: the server answers, the databases to dump exist, and a
 * pg_dump no older than the server is installed. */
static int source_postgres_probe(void *state, struct buf *detail)
{
	struct source_postgres *s = state;
	struct strv dbs = {0};
	char dump_version[64] = "", server_version[128] = "";
	long server_num = 0;
	int rc, dump_major;

	rc = source_postgres_server(s, &server_num, server_version, sizeof(server_version), &dbs);
	if (!rc) {
		dump_major =
		    source_postgres_tool_major(s, "pg_dump", dump_version, sizeof(dump_version));
		if (!dump_major)
			rc = error_set(CF_ERR_SOURCE,
			               "source %s: pg_dump not found or unusable in %s (install "
			               "postgresql-client-%ld or set bin_dir)",
			               s->name, s->bin_dir ? s->bin_dir : "PATH",
			               server_num / 10000);
		else if (dump_major < server_num / 10000)
			rc = error_set(CF_ERR_SOURCE,
			               "source %s: pg_dump %s is older than the server (%s) and "
			               "refuses to dump it; install postgresql-client-%ld or set "
			               "bin_dir",
			               s->name, dump_version, server_version, server_num / 10000);
	}
	if (!rc)
		rc = buf_printf(detail, "PostgreSQL %s, pg_dump %s, %zu database(s) to dump",
		                server_version, dump_version, dbs.n);
	strv_free(&dbs);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Restore: restore --to-database                                           */
/* ------------------------------------------------------------------------ */

static int source_postgres_restore_env(struct strv *env)
{
	int rc = strv_add_env(env, "PGAPPNAME", "coffer restore");

	if (!rc)
		rc = strv_add_env(env, "PGCONNECT_TIMEOUT", "30");
	return rc;
}

/* Number of user objects (relations, functions, types, large objects) in
 * the target database. */
static int source_postgres_restore_count(const char *target, long *count)
{
	static const char sql[] =
	    "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ "
	    "'^pg_toast') + "
	    "(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
	    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')) + "
	    "(SELECT count(*) FROM pg_largeobject_metadata) + "
	    "(SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
	    "'information_schema', 'public') AND nspname !~ '^pg_')";
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	struct buf out;
	int rc;

	buf_init(&out, 4096);
	rc = strv_add(&argv, "psql");
	if (!rc)
		rc = strv_addl(&argv, "-X", "-w", "-A", "-t", NULL);
	if (!rc)
		rc = strv_addf(&argv, "--dbname=%s", target);
	if (!rc)
		rc = strv_addf(&argv, "--command=%s", sql);
	if (!rc)
		rc = source_postgres_restore_env(&env);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "psql";
		spec.argv = argv.v;
		spec.env = env.v;
		spec.errcode = CF_ERR_TARGET;
		rc = proc_capture(&spec, &out);
	}
	if (!rc)
		*count = atol((char *)out.data);
	buf_free(&out);
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

/* A password in a key=value string, in a URI's query or in its user:pass@. */
static int source_postgres_restore_has_password(const char *target)
{
	const char *p = strstr(target, "://"), *at;

	if (strstr(target, "password"))
		return 1;
	if (!p)
		return 0;
	p += 3;
	at = strchr(p, '@');
	return at && memchr(p, ':', (size_t)(at - p)) != NULL;
}

static int source_postgres_restore_db(const struct source_restore_db *o)
{
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	long count = 0;
	int rc = 0;

	log_info("restoring %s into pg_restore", o->obj->name);
	if (source_postgres_restore_has_password(o->target))
		return error_set(CF_ERR_USAGE,
		                 "--to-database must not hold a password (it would be on a "
		                 "command line): put it in a .pgpass file or PGPASSFILE");
	if (!o->globals) {
		rc = source_postgres_restore_count(o->target, &count);
		if (!rc && count > 0 && !o->clean)
			rc = error_set(
			    CF_ERR_EXISTS,
			    "the target database already holds %ld objects; restore into an empty "
			    "database or add --clean to replace them",
			    count);
	}
	if (!rc && o->globals) {
		/* Roles that exist already fail one by one and are reported; the
		 * others are made. */
		rc = strv_add(&argv, "psql");
		if (!rc)
			rc = strv_add(&argv, "-X");
		if (!rc)
			rc = strv_add(&argv, "-w");
		if (!rc)
			rc = strv_add(&argv, "-q");
		if (!rc)
			rc = strv_add(&argv, "--set=ON_ERROR_STOP=0");
		if (!rc)
			rc = strv_addf(&argv, "--dbname=%s", o->target);
		if (!rc)
			rc = strv_add(&argv, "--file=-");
	} else if (!rc) {
		rc = strv_add(&argv, "pg_restore");
		if (!rc)
			rc = strv_addf(&argv, "--dbname=%s", o->target);
		if (!rc)
			rc = strv_add(&argv, "--no-password");
		/* One transaction: a failure leaves the target as it was. */
		if (!rc)
			rc = strv_add(&argv, "--single-transaction");
		if (!rc && o->clean)
			rc = strv_add(&argv, "--clean");
		if (!rc && o->clean)
			rc = strv_add(&argv, "--if-exists");
		if (!rc && o->no_owner)
			rc = strv_addl(&argv, "--no-owner", "--no-privileges", NULL);
	}
	if (!rc)
		rc = source_postgres_restore_env(&env);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = o->globals ? "psql" : "pg_restore";
		spec.argv = argv.v;
		spec.env = env.v;
		rc = restore_stream_to_child(o->st, o->obj, o->ids, &spec, o->progress);
	}
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Drill: verify --drill                                                    */
/* ------------------------------------------------------------------------ */

#define PG_DRILL_USER "coffer_drill"
#define PG_DRILL_PORT "5432"

/* The folder of initdb and postgres for a dump of server major version
 * major: the source's bin_dir if it has them, else Debian's
 * /usr/lib/postgresql/MAJOR/bin, else the newest later version installed
 * (a dump restores into a newer server, not an older one). */
static int source_postgres_drill_bin(const struct drill *d, int major, char *bin, size_t size)
{
	const struct source_postgres *s =
	    d->src && d->src->ops == &source_postgres_ops ? d->src->state : NULL;
	char path[4200];
	int best = 0;
	DIR *dir;
	struct dirent *e;

	if (s && s->bin_dir) {
		snprintf(path, sizeof(path), "%s/initdb", s->bin_dir);
		if (access(path, X_OK) == 0) {
			snprintf(bin, size, "%s", s->bin_dir);
			return 0;
		}
	}
	dir = opendir("/usr/lib/postgresql");
	while (dir && (e = readdir(dir)) != NULL) {
		int v = atoi(e->d_name);

		snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
		if (v >= major && access(path, X_OK) == 0 && (best == 0 || v < best))
			best = v;
	}
	if (dir)
		closedir(dir);
	if (!best)
		return error_set(CF_ERR_TARGET,
		                 "a drill of a PostgreSQL %d backup needs the server binaries of "
		                 "version %d or later: install postgresql-%d (initdb and postgres "
		                 "in /usr/lib/postgresql/%d/bin)",
		                 major, major, major, major);
	snprintf(bin, size, "/usr/lib/postgresql/%d/bin", best);
	return 0;
}

/* Every kind of object's count, "kind<TAB>n" a row (the drill's report). */
const char source_postgres_kinds_sql[] =
    "WITH r AS (SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = "
    "c.relnamespace WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_') "
    "SELECT 'tables' || chr(9) || count(*) FILTER (WHERE relkind IN ('r', 'p')) FROM r "
    "UNION ALL SELECT 'views' || chr(9) || count(*) FILTER (WHERE relkind IN ('v', 'm')) "
    "FROM r UNION ALL SELECT 'sequences' || chr(9) || count(*) FILTER (WHERE relkind = "
    "'S') FROM r UNION ALL SELECT 'indexes' || chr(9) || count(*) FILTER (WHERE relkind "
    "IN ('i', 'I')) FROM r UNION ALL SELECT 'functions' || chr(9) || count(*) FROM "
    "pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname <> "
    "'information_schema' AND n.nspname !~ '^pg_'";

int source_postgres_drill_ready(struct drill *d, void *ctx)
{
	char path[4200];
	struct buf b;
	int ready = 0;

	(void)ctx;
	if (drill_path(d, "data/postmaster.pid", path, sizeof(path)))
		return -1;
	buf_init(&b, 64 * 1024);
	if (fs_read_file(path, 64 * 1024, &b) == 0 && !buf_reserve(&b, 1)) {
		b.data[b.len] = '\0';
		ready = strstr((char *)b.data, "\nready") != NULL;
	}
	error_clear();
	buf_free(&b);
	return ready;
}

/* Where a drill restores: the server's conninfo without dbname, and the
 * prefix of the databases it makes there (DRILL_DB_PREFIX in a
 * drill_target, which may hold other databases; none in its own). */
struct pg_drill {
	struct drill *d;
	char psql[4200];
	char base[4400];
	const char *prefix;
	struct strv created; /* databases made in a drill_target: dropped at the end */
};

/* A conninfo value in single quotes. */
static int source_postgres_conninfo_quote(struct buf *b, const char *v)
{
	int rc = buf_append(b, "'", 1);

	for (; !rc && *v; v++)
		rc = (*v == '\'' || *v == '\\') ? buf_printf(b, "\\%c", *v) : buf_append(b, v, 1);
	if (!rc)
		rc = buf_append(b, "'", 2); /* with the NUL */
	return rc;
}

/* p's conninfo for the drill's database db (prefixed), NUL-terminated. */
static int pg_drill_conninfo(const struct pg_drill *p, const char *db, struct buf *out)
{
	int rc;

	buf_reset(out);
	rc = buf_printf(out, "%s dbname=", p->base);
	if (!rc && db) {
		char *name = NULL;

		rc = asprintf(&name, "%s%s", p->prefix, db) < 0
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : source_postgres_conninfo_quote(out, name);
		free(name);
	} else if (!rc) {
		rc = buf_append(out, "postgres", sizeof("postgres"));
	}
	return rc;
}

/* psql on the drill's database db (NULL: the maintenance database): rows of
 * one column. */
static int pg_drill_query(struct pg_drill *p, const char *db, const char *sql, struct strv *rows)
{
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	struct buf conn, out;
	int rc;

	buf_init(&conn, 64 * 1024);
	buf_init(&out, 256 * 1024 * 1024);
	rc = pg_drill_conninfo(p, db, &conn);
	if (!rc)
		rc = strv_addl(&argv, p->psql, "-X", "-w", "-q", "-A", "-t", "-0", "-v",
		               "ON_ERROR_STOP=1", "-c", sql, NULL);
	if (!rc)
		rc = strv_addf(&argv, "--dbname=%s", (char *)conn.data);
	if (!rc)
		rc = source_postgres_restore_env(&env);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "drill: psql";
		spec.argv = argv.v;
		spec.env = env.v;
		spec.errcode = CF_ERR_TARGET;
		rc = proc_capture(&spec, &out);
	}
	if (!rc)
		rc = source_postgres_rows(&out, rows);
	strv_free(&argv);
	strv_free(&env);
	buf_free(&conn);
	buf_free(&out);
	return rc;
}

/* "NAME\tN" rows into the report: kinds or tables of db. */
static int pg_drill_count(struct pg_drill *p, const char *db, const char *sql, int tables)
{
	struct strv rows = {0};
	int rc = pg_drill_query(p, db, sql, &rows);

	for (size_t i = 0; !rc && i < rows.n; i++) {
		char *tab = strrchr(rows.v[i], '\t');

		if (!tab)
			continue;
		*tab = '\0';
		rc = tables ? drill_table(p->d, db, rows.v[i], atoll(tab + 1))
		            : drill_kind(p->d, db, rows.v[i], atoll(tab + 1));
	}
	strv_free(&rows);
	return rc;
}

/* CREATE or DROP DATABASE "prefix+db" (identifier quoted). */
static int pg_drill_database(struct pg_drill *p, const char *verb, const char *db)
{
	struct strv rows = {0};
	struct buf q;
	int rc;

	buf_init(&q, 64 * 1024);
	rc = buf_printf(&q, "%s DATABASE %s\"", verb, !strcmp(verb, "DROP") ? "IF EXISTS " : "");
	for (const char *s = p->prefix; !rc && *s; s++)
		rc = buf_append(&q, s, 1);
	for (const char *s = db; !rc && *s; s++)
		rc = *s == '"' ? buf_append(&q, "\"\"", 2) : buf_append(&q, s, 1);
	if (!rc)
		rc = buf_printf(&q, "\"%s", !strcmp(verb, "DROP") ? " WITH (FORCE)" : "");
	if (!rc)
		rc = buf_append(&q, "", 1);
	if (!rc)
		rc = pg_drill_query(p, NULL, (char *)q.data, &rows);
	strv_free(&rows);
	buf_free(&q);
	return rc;
}

/* DROP DATABASE of the drill's db in drill_target ctx. */
static int pg_drill_drop(void *ctx, const char *db)
{
	return pg_drill_database(ctx, "DROP", db);
}

/* initdb and postgres of the dump's major version in the drill folder. */
static int pg_drill_server(struct pg_drill *p, const char *bin)
{
	struct drill *d = p->d;
	char data[4200], tool[4200];
	struct strv argv = {0};
	struct proc_spec spec;
	struct buf out;
	int rc = drill_run_as(d, "postgres");

	buf_init(&out, 1024 * 1024);
	if (!rc)
		rc = drill_path(d, "data", data, sizeof(data));
	/* A cluster of its own: trust on the private socket only, no TCP. */
	snprintf(tool, sizeof(tool), "%s/initdb", bin);
	if (!rc)
		rc = strv_addl(&argv, tool, "-D", data, "-U", PG_DRILL_USER, "--auth=trust", "-E",
		               "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions", NULL);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "drill: initdb";
		spec.argv = argv.v;
		spec.errcode = CF_ERR_TARGET;
		spec.uid = d->uid;
		spec.gid = d->gid;
		spec.stderr_debug = 1;
		spec.die_with_parent = 1;
		rc = proc_capture(&spec, &out);
	}
	strv_free(&argv);
	snprintf(tool, sizeof(tool), "%s/postgres", bin);
	/* Durability is of no use to a server thrown away after the check. */
	if (!rc)
		rc = strv_addl(&argv, tool, "-D", data, "-k", d->dir, "-p", PG_DRILL_PORT, "-c",
		               "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off",
		               "-c", "synchronous_commit=off", "-c", "wal_level=minimal", "-c",
		               "max_wal_senders=0", "-c", "max_wal_size=8GB", "-c",
		               "maintenance_work_mem=256MB", "-c", "autovacuum=off", NULL);
	if (!rc)
		rc = drill_server_start(d, "postgres", argv.v, NULL, source_postgres_drill_ready,
		                        NULL);
	snprintf(p->base, sizeof(p->base), "host=%s port=%s user=%s", d->dir, PG_DRILL_PORT,
	         PG_DRILL_USER);
	snprintf(p->psql, sizeof(p->psql), "%s/psql", bin);
	strv_free(&argv);
	buf_free(&out);
	return rc;
}

/* Restores obj into the drill's server at conninfo target: the globals
 * object with psql, a database with pg_restore (without owners when the
 * backup has no globals to make the roles). */
static int source_postgres_drill_restore(struct drill *d, const struct catalog_object *obj,
                                         const char *target)
{
	struct source_restore_db r;
	int globals = 0;

	drill_object_database(obj, &globals);
	memset(&r, 0, sizeof(r));
	r.st = d->st;
	r.obj = obj;
	r.ids = d->ids;
	r.target = target;
	r.globals = globals;
	r.progress = d->progress;
	/* No roles made (none in the backup, or a drill_target's own). */
	r.no_owner = !drill_globals(d->b) || d->target;
	return source_postgres_restore_db(&r);
}

static int source_postgres_drill(struct drill *d)
{
	json_t *meta = d->b->meta_json ? json_loads(d->b->meta_json, 0, NULL) : NULL;
	long num = (long)json_integer_value(json_object_get(meta, "server_version_num"));
	int major = num >= 100000 ? (int)(num / 10000) : num ? (int)(num / 100) : 0;
	const struct catalog_object *globals = NULL;
	struct pg_drill p;
	struct strv dbs = {0};
	struct buf target;
	char bin[4096];
	int rc;

	json_decref(meta);
	memset(&p, 0, sizeof(p));
	p.d = d;
	p.prefix = "";
	buf_init(&target, 64 * 1024);
	if (d->target) {
		/* An existing server: databases of our own there, no roles. */
		p.prefix = DRILL_DB_PREFIX;
		snprintf(p.base, sizeof(p.base), "%s", d->target);
		snprintf(p.psql, sizeof(p.psql), "psql");
		rc = source_postgres_restore_has_password(d->target)
		         ? error_set(CF_ERR_CONFIG,
		                     "drill_target must not hold a password (it would be on a "
		                     "command line): put it in a .pgpass file or PGPASSFILE")
		         : 0;
	} else {
		rc = source_postgres_drill_bin(d, major ? major : 10, bin, sizeof(bin));
		if (!rc)
			rc = pg_drill_server(&p, bin);
		globals = drill_globals(d->b);
	}
	/* The roles first, so the objects get their owners. */
	if (!rc)
		drill_restore_begin(d);
	if (!rc && globals) {
		rc = pg_drill_conninfo(&p, NULL, &target);
		if (!rc)
			rc = source_postgres_drill_restore(d, globals, (char *)target.data);
	}
	for (size_t i = 0; !rc && i < d->b->nobjects; i++) {
		const struct catalog_object *o = &d->b->objects[i];
		const char *db = NULL;
		int g;

		if (strcmp(o->format, "pg_dump") != 0 || !(db = drill_object_database(o, &g)))
			continue;
		rc = strv_add(&dbs, db);
		/* A server of its own has a postgres database already. */
		if (!rc && (d->target || strcmp(db, "postgres") != 0)) {
			rc = pg_drill_database(&p, "CREATE", db);
			if (!rc && d->target)
				rc = strv_add(&p.created, db);
		}
		if (!rc)
			rc = pg_drill_conninfo(&p, db, &target);
		if (!rc)
			rc = source_postgres_drill_restore(d, o, (char *)target.data);
	}
	if (!rc && dbs.n == 0)
		rc = error_set(CF_ERR_TARGET, "backup %s holds no pg_dump object", d->b->id);
	if (!rc)
		drill_restored(d);
	for (size_t i = 0; !rc && i < dbs.n; i++) {
		rc = pg_drill_count(&p, dbs.v[i], source_postgres_kinds_sql, 0);
		if (!rc)
			rc = pg_drill_count(&p, dbs.v[i], source_postgres_rows_sql, 1);
	}
	/* What it made in a drill_target goes, whatever happened. */
	rc = drill_drop_made(rc, &p.created, pg_drill_drop, &p);
	strv_free(&p.created);
	strv_free(&dbs);
	buf_free(&target);
	return rc;
}

const struct source_ops source_postgres_ops = {
    .type = "postgres",
    .create = source_postgres_create,
    .set = source_postgres_set,
    .check = source_postgres_check,
    .run = source_postgres_run,
    .probe = source_postgres_probe,
    .free = source_postgres_free,
    .traits = SOURCE_TRAIT_DATABASE,
    .restore_db = source_postgres_restore_db,
    .drill = source_postgres_drill,
};
