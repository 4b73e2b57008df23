/*
 * source_mysql: MySQL and MariaDB, one object per database with mariadb-dump
 * or mysqldump (whichever is installed) in one transaction per database
 * (--single-transaction: a consistent snapshot of the InnoDB tables of that
 * database), with routines, triggers, events and binary columns as hex; plus
 * the users and their grants as their own object (mariadb-dump --system=users).
 *
 * Credentials reach the tools through a temporary 0600 option file given as
 * --defaults-extra-file, never through argv or the environment. Each database
 * is dumped without CREATE DATABASE / USE statements, so its object restores
 * into a database of any name.
 */
#include "agent/agent.h"
#include "agent/drill.h"
#include "agent/pipeline.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/proc.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"

#include <jansson.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Schemas the server makes for itself: never dumped unless listed by name in
 * databases (the users and grants of "mysql" are in the grants object). */
static const char *const source_mysql_system[] = {"information_schema", "performance_schema", "sys",
                                                  "mysql", NULL};

struct source_mysql {
	char *name;
	char *host, *port, *socket, *user, *password_file, *defaults_file, *bin_dir;
	struct strv databases, exclude;
	int grants;
};
_Static_assert(offsetof(struct source_mysql, name) == 0, "source_state_new() needs the name first");

/* A run's tools and credentials. */
struct source_mysql_ctx {
	char *client;  /* mariadb or mysql */
	char *dump;    /* mariadb-dump or mysqldump */
	char *optfile; /* the temporary option file */
	int mariadb;   /* the dump tool is mariadb-dump */
};

#define MYK(n, t, f)                                                                               \
	{                                                                                          \
		n, t, offsetof(struct source_mysql, f)                                             \
	}
static const struct source_key source_mysql_keys[] = {
    MYK("host", SOURCE_KEY_STR, host),
    MYK("port", SOURCE_KEY_PORT, port),
    MYK("socket", SOURCE_KEY_PATH, socket),
    MYK("user", SOURCE_KEY_STR, user),
    MYK("password_file", SOURCE_KEY_PATH, password_file),
    MYK("defaults_file", SOURCE_KEY_PATH, defaults_file),
    {"databases", SOURCE_KEY_LIST, offsetof(struct source_mysql, databases)},
    {"exclude_databases", SOURCE_KEY_LIST, offsetof(struct source_mysql, exclude)},
    MYK("grants", SOURCE_KEY_BOOL, grants),
    MYK("bin_dir", SOURCE_KEY_PATH, bin_dir),
    {NULL, SOURCE_KEY_STR, 0},
};
#undef MYK

static int source_mysql_create(const char *name, void **state)
{
	int rc = source_state_new(sizeof(struct source_mysql), name, state);

	if (!rc) {
		struct source_mysql *s = *state;

		s->grants = 1;
	}
	return rc;
}

static void source_mysql_free(void *state)
{
	source_state_free(source_mysql_keys, state);
}

static int source_mysql_set(void *state, const char *key, const char *value)
{
	return source_keys_set(source_mysql_keys, state, key, value);
}

static int source_mysql_check(void *state)
{
	struct source_mysql *s = state;

	if (s->socket && (s->host || s->port))
		return error_set(CF_ERR_CONFIG, "socket excludes host and port");
	return 0;
}

/* Appends an option file line key="value", escaping as the client's option
 * file parser expects. */
static int source_mysql_opt(struct buf *b, const char *key, const char *value)
{
	int rc;

	if (!value)
		return 0;
	rc = buf_printf(b, "%s=\"", key);
	for (const char *p = value; !rc && *p; p++)
		rc = (*p == '"' || *p == '\\') ? buf_printf(b, "\\%c", *p) : buf_append(b, p, 1);
	if (!rc)
		rc = buf_printf(b, "\"\n");
	return rc;
}

/*
 * Writes the client option file of a connection: an !include of the user's
 * defaults_file, then the keys of the config. Used by the source and by
 * restore (which passes its own values).
 */
int source_mysql_optfile(const char *defaults_file, const char *host, const char *port,
                         const char *socket, const char *user, const char *password_file,
                         char **path)
{
	char *password = NULL;
	struct buf b;
	int rc = 0;

	buf_init(&b, 64 * 1024);
	if (password_file)
		rc = proc_read_secret(password_file, &password);
	if (!rc && defaults_file)
		rc = buf_printf(&b, "!include %s\n", defaults_file);
	if (!rc)
		rc = buf_printf(&b, "[client]\n");
	if (!rc)
		rc = source_mysql_opt(&b, "user", user);
	if (!rc)
		rc = source_mysql_opt(&b, "password", password);
	if (!rc)
		rc = source_mysql_opt(&b, "host", host);
	if (!rc)
		rc = source_mysql_opt(&b, "port", port);
	if (!rc)
		rc = source_mysql_opt(&b, "socket", socket);
	/* "localhost" would otherwise mean the default socket, not TCP. */
	if (!rc && (host || port))
		rc = buf_printf(&b, "protocol=tcp\n");
	if (!rc)
		rc = buf_append(&b, "", 1);
	if (!rc)
		rc = proc_temp_file("coffer-my", (char *)b.data, path);
	if (b.data)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	proc_secret_free(password);
	return rc;
}

static void source_mysql_ctx_free(struct source_mysql_ctx *c)
{
	free(c->client);
	free(c->dump);
	proc_temp_remove(c->optfile);
	memset(c, 0, sizeof(*c));
}

static int source_mysql_ctx_init(struct source_mysql *s, struct source_mysql_ctx *c)
{
	static const char *const clients[] = {"mariadb", "mysql", NULL};
	static const char *const dumps[] = {"mariadb-dump", "mysqldump", NULL};
	const char *base;

	memset(c, 0, sizeof(*c));
	c->client = source_db_find_tool(s->bin_dir, clients);
	c->dump = source_db_find_tool(s->bin_dir, dumps);
	if (!c->client || !c->dump)
		return error_set(CF_ERR_SOURCE,
		                 "source %s: %s not found in %s (install mariadb-client)", s->name,
		                 c->client ? "mariadb-dump or mysqldump"
		                           : "the mariadb or mysql client",
		                 s->bin_dir ? s->bin_dir : "PATH");
	base = strrchr(c->dump, '/');
	c->mariadb = !strcmp(base ? base + 1 : c->dump, "mariadb-dump");
	return source_mysql_optfile(s->defaults_file, s->host, s->port, s->socket, s->user,
	                            s->password_file, &c->optfile);
}

/* Runs SQL through the client, batch mode without column names. */
static int source_mysql_query(struct source_mysql *s, struct source_mysql_ctx *c, const char *sql,
                              struct buf *out)
{
	struct strv argv = {0};
	struct proc_spec spec;
	char label[256];
	int rc;

	snprintf(label, sizeof(label), "source %s: mariadb client", s->name);
	rc = strv_add(&argv, c->client);
	if (!rc)
		rc = strv_addf(&argv, "--defaults-extra-file=%s", c->optfile);
	if (!rc)
		rc = strv_addl(&argv, "--batch", "--skip-column-names", "--connect-timeout=30",
		               NULL);
	if (!rc)
		rc = strv_addf(&argv, "--execute=%s", sql);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.errcode = CF_ERR_SOURCE;
		rc = proc_capture(&spec, out);
	}
	strv_free(&argv);
	return rc;
}

static int source_mysql_unhex(const char *hex, char **out)
{
	size_t n = strlen(hex);
	char *s = malloc(n / 2 + 1);

	if (!s)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (n % 2 || sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(s);
			return error_set(CF_ERR_SOURCE,
			                 "unexpected schema name '%s' from the server", hex);
		}
		s[i] = (char)v;
	}
	s[n / 2] = '\0';
	*out = s;
	return 0;
}

static int source_mysql_is_system(const char *db)
{
	for (size_t i = 0; source_mysql_system[i]; i++)
		if (!strcmp(db, source_mysql_system[i]))
			return 1;
	return 0;
}

/* Common dump options; the option file must come first. */
static int source_mysql_dump_argv(struct source_mysql_ctx *c, struct strv *argv)
{
	int rc = strv_add(argv, c->dump);

	if (!rc)
		rc = strv_addf(argv, "--defaults-extra-file=%s", c->optfile);
	if (!rc)
		rc = strv_add(argv, "--max-allowed-packet=1G");
	if (!rc)
		rc = strv_add(argv, "--default-character-set=utf8mb4");
	return rc;
}

static int source_mysql_database(struct source_mysql *s, struct source_mysql_ctx *c,
                                 struct backup_run *run, const char *db)
{
	static const char *const opts[] = {
	    "--single-transaction", "--routines", "--triggers", "--events",
	    "--hex-blob",           "--quick",    NULL};
	struct strv argv = {0};
	struct proc_spec spec;
	char label[512], stream[256];
	char *dbjson = NULL, *meta = NULL;
	int rc;

	snprintf(label, sizeof(label), "source %s: %s %s", s->name,
	         c->mariadb ? "mariadb-dump" : "mysqldump", db);
	rc = source_db_stream_name("db-", db, ".sql", stream, sizeof(stream));
	if (!rc)
		rc = source_mysql_dump_argv(c, &argv);
	for (size_t i = 0; !rc && opts[i]; i++)
		rc = strv_add(&argv, opts[i]);
	/* The name after "--" is never taken as an option. */
	if (!rc)
		rc = strv_add(&argv, "--");
	if (!rc)
		rc = strv_add(&argv, db);
	if (!rc && (!(dbjson = source_db_json_str(db)) ||
	            asprintf(&meta, "{\"role\":\"database\",\"database\":%s}", dbjson) < 0)) {
		meta = NULL;
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.errcode = CF_ERR_SOURCE;
		log_info("source %s: dumping database %s", s->name, db);
		rc = source_dump_child(run, &spec, stream, "sql", meta);
	}
	free(dbjson);
	free(meta);
	strv_free(&argv);
	return rc;
}

static int source_mysql_grants(struct source_mysql *s, struct source_mysql_ctx *c,
                               struct backup_run *run)
{
	struct strv argv = {0};
	struct proc_spec spec;
	char label[256];
	int rc;

	if (!c->mariadb)
		return error_set(
		    CF_ERR_SOURCE,
		    "source %s: users and grants are dumped with mariadb-dump --system=users, "
		    "and %s has no such option; install mariadb-client or set grants = false",
		    s->name, c->dump);
	snprintf(label, sizeof(label), "source %s: mariadb-dump --system=users", s->name);
	rc = source_mysql_dump_argv(c, &argv);
	if (!rc)
		rc = strv_add(&argv, "--system=users");
	/* CREATE USER IF NOT EXISTS: loading into a server that has some of the
	 * users does not stop half-way. */
	if (!rc)
		rc = strv_add(&argv, "--insert-ignore");
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = label;
		spec.argv = argv.v;
		spec.errcode = CF_ERR_SOURCE;
		rc = source_dump_child(run, &spec, "grants.sql", "sql", "{\"role\":\"globals\"}");
	}
	strv_free(&argv);
	return rc;
}

static int source_mysql_meta(struct source_mysql *s, struct source_mysql_ctx *c,
                             struct backup_run *run, const char *version, const struct strv *dbs)
{
	const char *tool = strrchr(c->dump, '/');
	json_t *m = source_db_meta_new("mysql", dbs);
	int bad = !m;

	bad = bad ||
	      json_object_set_new(m, "flavor",
	                          json_string(strstr(version, "MariaDB") ? "mariadb" : "mysql"));
	bad = bad || json_object_set_new(m, "server_version", json_string(version));
	bad = bad || json_object_set_new(m, "dump_tool", json_string(tool ? tool + 1 : c->dump));
	bad = bad || json_object_set_new(m, "grants", json_boolean(s->grants));
	bad = bad ||
	      json_object_set_new(
	          m, "dump_options",
	          json_string("--single-transaction --routines --triggers --events --hex-blob"));
	return source_db_meta_commit(run, m, bad);
}

/* The server's version and the databases to dump. One query checks the
 * connection and the password before anything is stored; names travel as
 * hex, so any byte is safe. */
static int source_mysql_server(struct source_mysql *s, struct source_mysql_ctx *c, char *version,
                               size_t vlen, struct strv *dbs)
{
	struct strv all = {0};
	struct buf out;
	int rc;

	buf_init(&out, 16 * 1024 * 1024);
	rc = source_mysql_query(s, c,
	                        "SELECT VERSION(); SELECT HEX(schema_name) FROM "
	                        "information_schema.schemata ORDER BY schema_name",
	                        &out);
	if (!rc) {
		char *save = NULL, *line = strtok_r((char *)out.data, "\n", &save);

		if (!line)
			rc = error_set(CF_ERR_SOURCE, "source %s: the server returned no version",
			               s->name);
		else
			snprintf(version, vlen, "%s", line);
		while (!rc && (line = strtok_r(NULL, "\n", &save)) != NULL) {
			char *db = NULL;
			int listed = 0;

			rc = source_mysql_unhex(line, &db);
			for (size_t i = 0; !rc && i < s->databases.n && !listed; i++)
				listed = !strcmp(s->databases.v[i], db);
			if (!rc && (listed || !source_mysql_is_system(db)))
				rc = strv_add(&all, db);
			free(db);
		}
	}
	if (!rc)
		rc = source_db_select(s->name, &all, &s->databases, &s->exclude, dbs);
	if (!rc && dbs->n == 0 && !s->grants)
		rc = error_set(CF_ERR_SOURCE, "source %s: no database to dump", s->name);
	buf_free(&out);
	strv_free(&all);
	return rc;
}

static int source_mysql_run(void *state, struct backup_run *run)
{
	struct source_mysql *s = state;
	struct source_mysql_ctx c;
	struct strv dbs = {0};
	char version[256] = "";
	int rc;

	rc = source_mysql_ctx_init(s, &c);
	if (!rc)
		rc = source_mysql_server(s, &c, version, sizeof(version), &dbs);
	if (!rc)
		rc = source_mysql_meta(s, &c, run, version, &dbs);
	if (!rc && s->grants)
		rc = source_mysql_grants(s, &c, run);
	for (size_t i = 0; !rc && i < dbs.n; i++) {
		if (backup_run_interrupted(run))
			rc = error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal",
			               s->name);
		else
			rc = source_mysql_database(s, &c, run, dbs.v[i]);
	}
	source_mysql_ctx_free(&c);
	strv_free(&dbs);
	return rc;
}

/* coffer check: the client and dump tool are installed, the server answers
 * with this source's credentials, and the databases to dump exist. */
static int source_mysql_probe(void *state, struct buf *detail)
{
	struct source_mysql *s = state;
	struct source_mysql_ctx c;
	struct strv dbs = {0};
	char version[256] = "";
	int rc = source_mysql_ctx_init(s, &c);

	if (!rc)
		rc = source_mysql_server(s, &c, version, sizeof(version), &dbs);
	if (!rc)
		rc = buf_printf(detail, "server %s, %s, %zu database(s) to dump", version, c.dump,
		                dbs.n);
	source_mysql_ctx_free(&c);
	strv_free(&dbs);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Restore: restore --to-database                                           */
/* ------------------------------------------------------------------------ */

struct source_mysql_target {
	char *host, *port, *socket, *user, *password_file, *defaults_file, *database;
	char *client;
	char *optfile;
};

static void source_mysql_restore_free(struct source_mysql_target *t)
{
	free(t->host);
	free(t->port);
	free(t->socket);
	free(t->user);
	free(t->password_file);
	free(t->defaults_file);
	free(t->database);
	free(t->client);
	proc_temp_remove(t->optfile);
}

static int source_mysql_restore_parse(const char *target, struct source_mysql_target *t)
{
	char *copy = strdup(target), *save = NULL;
	int rc = 0;

	if (!copy)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (char *w = strtok_r(copy, " \t", &save); !rc && w; w = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(w, '='), **field = NULL;

		if (eq) {
			*eq = '\0';
			field = !strcmp(w, "host")            ? &t->host
			        : !strcmp(w, "port")          ? &t->port
			        : !strcmp(w, "socket")        ? &t->socket
			        : !strcmp(w, "user")          ? &t->user
			        : !strcmp(w, "password_file") ? &t->password_file
			        : !strcmp(w, "defaults_file") ? &t->defaults_file
			        : !strcmp(w, "database")      ? &t->database
			                                      : NULL;
		}
		if (!field)
			rc = error_set(CF_ERR_USAGE,
			               "--to-database: '%s' is not a key=value word (keys: host, "
			               "port, socket, "
			               "user, password_file, defaults_file, database)",
			               w);
		else
			rc = source_db_set(field, eq + 1);
	}
	free(copy);
	return rc;
}

static int source_mysql_restore_client(struct source_mysql_target *t, const char *database,
                                       const char *sql, struct buf *out)
{
	struct strv argv = {0};
	struct proc_spec spec;
	int rc = strv_add(&argv, t->client);

	if (!rc)
		rc = strv_addf(&argv, "--defaults-extra-file=%s", t->optfile);
	if (!rc)
		rc = strv_addl(&argv, "--batch", "--skip-column-names", "--binary-mode", NULL);
	if (!rc && database)
		rc = strv_addf(&argv, "--database=%s", database);
	if (!rc && sql)
		rc = strv_addf(&argv, "--execute=%s", sql);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "mariadb client";
		spec.argv = argv.v;
		spec.errcode = CF_ERR_TARGET;
		rc = proc_capture(&spec, out);
	}
	strv_free(&argv);
	return rc;
}

/* `name` with backticks doubled, in backticks. */
static int source_mysql_restore_ident(const char *name, struct buf *b)
{
	int rc = buf_append(b, "`", 1);

	for (const char *p = name; !rc && *p; p++)
		rc = *p == '`' ? buf_append(b, "``", 2) : buf_append(b, p, 1);
	if (!rc)
		rc = buf_append(b, "`", 1);
	return rc;
}

/* The client and its option file for target t. */
static int source_mysql_target_open(struct source_mysql_target *t)
{
	static const char *const clients[] = {"mariadb", "mysql", NULL};

	if (!(t->client = source_db_find_tool(NULL, clients)))
		return error_set(CF_ERR_TARGET, "the mariadb or mysql client is not installed");
	return source_mysql_optfile(t->defaults_file, t->host, t->port, t->socket, t->user,
	                            t->password_file, &t->optfile);
}

/* Restores o->obj into the opened target t (t.database: the database). */
static int source_mysql_restore_into(const struct source_restore_db *o,
                                     struct source_mysql_target *t)
{
	struct strv argv = {0};
	struct proc_spec spec;
	struct buf sql, out;
	int rc = 0;

	buf_init(&sql, 64 * 1024);
	buf_init(&out, 64 * 1024);
	if (!rc && !o->globals) {
		/* Hex literals: the name needs no quoting in the query. */
		struct buf hex;

		buf_init(&hex, 1024);
		for (const unsigned char *p = (const unsigned char *)t->database; !rc && *p; p++)
			rc = buf_printf(&hex, "%02x", *p);
		if (!rc)
			rc = buf_append(&hex, "", 1);
		if (!rc)
			rc = buf_printf(
			    &sql,
			    "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE "
			    "table_schema = X'%s') + (SELECT COUNT(*) FROM "
			    "information_schema.routines "
			    "WHERE routine_schema = X'%s') + (SELECT COUNT(*) FROM "
			    "information_schema.events WHERE event_schema = X'%s')",
			    (char *)hex.data, (char *)hex.data, (char *)hex.data);
		buf_free(&hex);
		if (!rc)
			rc = source_mysql_restore_client(t, NULL, (char *)sql.data, &out);
		if (!rc && atol((char *)out.data) > 0 && !o->clean)
			rc = error_set(CF_ERR_EXISTS,
			               "the target database %s already holds %ld objects; restore "
			               "into an empty "
			               "database or add --clean to replace them",
			               t->database, atol((char *)out.data));
		buf_reset(&sql);
		out.len = 0;
		if (!rc && o->clean)
			rc = buf_printf(&sql, "DROP DATABASE IF EXISTS ");
		if (!rc && o->clean)
			rc = source_mysql_restore_ident(t->database, &sql);
		if (!rc && o->clean)
			rc = buf_printf(&sql, "; ");
		if (!rc)
			rc = buf_printf(&sql, "CREATE DATABASE IF NOT EXISTS ");
		if (!rc)
			rc = source_mysql_restore_ident(t->database, &sql);
		if (!rc)
			rc = buf_append(&sql, "", 1);
		if (!rc)
			rc = source_mysql_restore_client(t, NULL, (char *)sql.data, &out);
	}
	/* The users and grants: one that cannot be applied (root's PROXY grant
	 * for a user that is not root, a user that exists) is reported and
	 * skipped, as psql does for roles; so the connection is checked first. */
	if (!rc && o->globals)
		rc = source_mysql_restore_client(t, NULL, "SELECT 1", &out);
	if (!rc)
		rc = strv_add(&argv, t->client);
	if (!rc)
		rc = strv_addf(&argv, "--defaults-extra-file=%s", t->optfile);
	if (!rc)
		rc = strv_add(&argv, "--binary-mode");
	if (!rc && o->globals)
		rc = strv_add(&argv, "--force");
	if (!rc && !o->globals)
		rc = strv_addf(&argv, "--database=%s", t->database);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "mariadb client";
		spec.argv = argv.v;
		rc = restore_stream_to_child(o->st, o->obj, o->ids, &spec, o->progress);
		if (rc == CF_ERR_TARGET && o->globals) {
			log_warn("some users or grants could not be applied (see the warnings "
			         "above); the "
			         "others were");
			rc = 0;
		} else if (rc && !o->globals) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", error_message());
			error_set(
			    rc,
			    "%s (database %s is left partly restored; restore again with --clean)",
			    msg, t->database);
		}
	}
	strv_free(&argv);
	buf_free(&sql);
	buf_free(&out);
	return rc;
}

static int source_mysql_restore_db(const struct source_restore_db *o)
{
	struct source_mysql_target t;
	int rc;

	log_info("restoring %s into the mariadb client", o->obj->name);
	memset(&t, 0, sizeof(t));
	rc = source_mysql_restore_parse(o->target, &t);
	if (!rc && !t.database && !o->globals)
		rc = error_set(CF_ERR_USAGE, "--to-database needs database=NAME");
	if (!rc)
		rc = source_mysql_target_open(&t);
	if (!rc)
		rc = source_mysql_restore_into(o, &t);
	source_mysql_restore_free(&t);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Drill: verify --drill                                                    */
/* ------------------------------------------------------------------------ */

/* The hex of s (for X'...' literals), NUL-terminated, in b. */
static int source_mysql_hex(const char *s, struct buf *b)
{
	int rc = 0;

	buf_reset(b);
	for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++)
		rc = buf_printf(b, "%02x", *p);
	return rc ? rc : buf_append(b, "", 1);
}

static int source_mysql_drill_ready(struct drill *d, void *ctx)
{
	struct source_mysql_target *t = ctx;
	struct buf out;
	int rc;

	(void)d;
	buf_init(&out, 4096);
	rc = source_mysql_restore_client(t, NULL, "SELECT 1", &out);
	buf_free(&out);
	error_clear();
	return rc == 0;
}

/* "NAME\tN" rows of query sql into the report: kinds or tables of db. */
static int source_mysql_drill_count(struct drill *d, struct source_mysql_target *t, const char *db,
                                    const char *sql, int tables)
{
	struct buf out;
	int rc;

	buf_init(&out, 64 * 1024 * 1024);
	rc = source_mysql_restore_client(t, NULL, sql, &out);
	for (char *line = (char *)out.data, *nl; !rc && line && *line; line = nl) {
		char *tab;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		tab = strrchr(line, '\t');
		if (!tab)
			continue;
		*tab = '\0';
		rc = tables ? drill_table(d, db, line, atoll(tab + 1))
		            : drill_kind(d, db, line, atoll(tab + 1));
	}
	buf_free(&out);
	return rc;
}

/* What database db holds, reported as database as: its objects per kind,
 * and every table's rows (one query counting them all, built from the
 * table list). */
static int source_mysql_drill_counts(struct drill *d, struct source_mysql_target *t, const char *db,
                                     const char *as)
{
	struct buf hex, sql, names;
	int rc;

	buf_init(&hex, 64 * 1024);
	buf_init(&sql, 64 * 1024 * 1024);
	buf_init(&names, 64 * 1024 * 1024);
	rc = source_mysql_hex(db, &hex);
	if (!rc)
		rc = buf_printf(
		    &sql,
		    "SELECT 'tables', COUNT(*) FROM information_schema.tables WHERE table_schema = "
		    "X'%1$s' AND table_type = 'BASE TABLE' UNION ALL SELECT 'views', COUNT(*) FROM "
		    "information_schema.tables WHERE table_schema = X'%1$s' AND table_type = "
		    "'VIEW' "
		    "UNION ALL SELECT 'routines', COUNT(*) FROM information_schema.routines WHERE "
		    "routine_schema = X'%1$s' UNION ALL SELECT 'triggers', COUNT(*) FROM "
		    "information_schema.triggers WHERE trigger_schema = X'%1$s' UNION ALL SELECT "
		    "'events', COUNT(*) FROM information_schema.events WHERE event_schema = "
		    "X'%1$s'",
		    (char *)hex.data);
	if (!rc)
		rc = buf_append(&sql, "", 1);
	if (!rc)
		rc = source_mysql_drill_count(d, t, as, (char *)sql.data, 0);
	/* The tables, as hex so any name survives the batch output. */
	buf_reset(&sql);
	if (!rc)
		rc = buf_printf(&sql,
		                "SELECT HEX(table_name) FROM information_schema.tables WHERE "
		                "table_schema = X'%s' AND table_type = 'BASE TABLE' ORDER BY 1",
		                (char *)hex.data);
	if (!rc)
		rc = buf_append(&sql, "", 1);
	if (!rc)
		rc = source_mysql_restore_client(t, NULL, (char *)sql.data, &names);
	buf_reset(&sql);
	for (char *line = (char *)names.data, *nl; !rc && line && *line; line = nl) {
		char *name = NULL;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		rc = source_mysql_unhex(line, &name);
		if (!rc && sql.len)
			rc = buf_printf(&sql, " UNION ALL ");
		if (!rc)
			rc = buf_printf(&sql, "SELECT X'%s', COUNT(*) FROM ", line);
		if (!rc)
			rc = source_mysql_restore_ident(db, &sql);
		if (!rc)
			rc = buf_append(&sql, ".", 1);
		if (!rc)
			rc = source_mysql_restore_ident(name, &sql);
		free(name);
	}
	if (!rc && sql.len) {
		rc = buf_append(&sql, "", 1);
		if (!rc)
			rc = source_mysql_drill_count(d, t, as, (char *)sql.data, 1);
	}
	buf_free(&hex);
	buf_free(&sql);
	buf_free(&names);
	return rc;
}

/* mariadb-install-db and mariadbd in the drill folder; t gets the root
 * connection through its socket. */
static int mysql_drill_server(struct drill *d, struct source_mysql_target *t)
{
	static const char *const installers[] = {"mariadb-install-db", "mysql_install_db", NULL};
	static const char *const servers[] = {"mariadbd", "mysqld", NULL};
	char data[4200], sock[4200], pid[4200];
	char *installer = source_db_find_tool("/usr/sbin", installers), *server;
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	struct buf out;
	int rc;

	buf_init(&out, 1024 * 1024);
	if (!installer)
		installer = source_db_find_tool("/usr/bin", installers);
	server = source_db_find_tool("/usr/sbin", servers);
	rc =
	    installer && server
	        ? 0
	        : error_set(CF_ERR_TARGET, "a drill of a MySQL/MariaDB backup needs the server: "
	                                   "install mariadb-server (mariadb-install-db, mariadbd)");
	if (!rc)
		rc = drill_run_as(d, "mysql");
	/* Its temporary files go in the drill's folder too. */
	if (!rc)
		rc = strv_add_env(&env, "TMPDIR", d->dir);
	if (!rc)
		rc = drill_path(d, "data", data, sizeof(data));
	if (!rc)
		rc = drill_path(d, "mysql.sock", sock, sizeof(sock));
	if (!rc)
		rc = drill_path(d, "mariadbd.pid", pid, sizeof(pid));
	if (!rc)
		rc = strv_addl(&argv, installer, "--no-defaults", NULL);
	if (!rc)
		rc = strv_addf(&argv, "--datadir=%s", data);
	if (!rc)
		rc = strv_addl(&argv, "--auth-root-authentication-method=normal", "--skip-test-db",
		               "--skip-name-resolve", NULL);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "drill: mariadb-install-db";
		spec.argv = argv.v;
		spec.env = env.v;
		spec.errcode = CF_ERR_TARGET;
		spec.uid = d->uid;
		spec.gid = d->gid;
		spec.stderr_debug = 1;
		spec.die_with_parent = 1;
		rc = proc_capture(&spec, &out);
	}
	strv_free(&argv);
	/* No network, no binary log, no durability: a server thrown away
	 * after the check. */
	if (!rc)
		rc = strv_addl(&argv, server, "--no-defaults", NULL);
	if (!rc)
		rc = strv_addf(&argv, "--datadir=%s", data);
	if (!rc)
		rc = strv_addf(&argv, "--socket=%s", sock);
	if (!rc)
		rc = strv_addf(&argv, "--pid-file=%s", pid);
	if (!rc)
		rc = strv_addf(&argv, "--tmpdir=%s", d->dir);
	if (!rc)
		rc = strv_addl(&argv, "--skip-networking", "--skip-log-bin", "--skip-name-resolve",
		               "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
		               "--innodb-buffer-pool-size=256M", "--max-allowed-packet=1G",
		               "--character-set-server=utf8mb4", "--performance-schema=OFF",
		               "--event-scheduler=OFF", NULL);
	if (!rc && (!(t->socket = strdup(sock)) || !(t->user = strdup("root"))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc)
		rc = source_mysql_target_open(t);
	if (!rc)
		rc = drill_server_start(d, "mariadbd", argv.v, env.v, source_mysql_drill_ready, t);
	strv_free(&argv);
	strv_free(&env);
	buf_free(&out);
	free(installer);
	free(server);
	return rc;
}

/* Restores obj into database prefix+db (made by the restore) of t. */
static int mysql_drill_restore(struct drill *d, struct source_mysql_target *t,
                               const struct catalog_object *obj, const char *prefix, const char *db)
{
	struct source_restore_db r;

	free(t->database);
	t->database = NULL;
	if (db && asprintf(&t->database, "%s%s", prefix, db) < 0) {
		t->database = NULL;
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	memset(&r, 0, sizeof(r));
	r.st = d->st;
	r.obj = obj;
	r.ids = d->ids;
	r.globals = db == NULL;
	r.progress = d->progress;
	return source_mysql_restore_into(&r, t);
}

/* DROP DATABASE IF EXISTS of the drill's db on the drill_target ctx. */
static int mysql_drill_drop(void *ctx, const char *db)
{
	struct source_mysql_target *t = ctx;
	struct buf sql, out;
	char *name = NULL;
	int rc = asprintf(&name, DRILL_DB_PREFIX "%s", db) < 0
	             ? error_set(CF_ERR_NOMEM, "out of memory")
	             : 0;

	buf_init(&sql, 64 * 1024);
	buf_init(&out, 64 * 1024);
	if (!rc)
		rc = buf_printf(&sql, "DROP DATABASE IF EXISTS ");
	if (!rc)
		rc = source_mysql_restore_ident(name, &sql);
	if (!rc)
		rc = buf_append(&sql, "", 1);
	if (!rc)
		rc = source_mysql_restore_client(t, NULL, (char *)sql.data, &out);
	free(name);
	buf_free(&sql);
	buf_free(&out);
	return rc;
}

static int source_mysql_drill(struct drill *d)
{
	/* In a drill_target (which may hold other databases) the drill's own
	 * are prefixed, no grants are applied, and they are dropped after. */
	const char *prefix = d->target ? DRILL_DB_PREFIX : "";
	const struct catalog_object *globals = NULL;
	struct source_mysql_target t;
	struct strv dbs = {0}, created = {0};
	int rc;

	memset(&t, 0, sizeof(t));
	if (d->target) {
		rc = source_mysql_restore_parse(d->target, &t);
		if (!rc)
			rc = source_mysql_target_open(&t);
	} else {
		rc = mysql_drill_server(d, &t);
		globals = drill_globals(d->b);
	}
	if (!rc)
		drill_restore_begin(d);
	if (!rc && globals)
		rc = mysql_drill_restore(d, &t, globals, prefix, NULL);
	for (size_t i = 0; !rc && i < d->b->nobjects; i++) {
		const struct catalog_object *o = &d->b->objects[i];
		const char *db;
		int g;

		if (strcmp(o->format, "sql") != 0 || !(db = drill_object_database(o, &g)) || g)
			continue;
		rc = strv_add(&dbs, db);
		if (!rc && d->target)
			rc = strv_add(&created, db);
		if (!rc)
			rc = mysql_drill_restore(d, &t, o, prefix, db);
	}
	if (!rc && dbs.n == 0)
		rc = error_set(CF_ERR_TARGET, "backup %s holds no database dump", d->b->id);
	if (!rc)
		drill_restored(d);
	for (size_t i = 0; !rc && i < dbs.n; i++) {
		char *name = NULL;

		if (asprintf(&name, "%s%s", prefix, dbs.v[i]) < 0)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		else
			rc = source_mysql_drill_counts(d, &t, name, dbs.v[i]);
		free(name);
	}
	rc = drill_drop_made(rc, &created, mysql_drill_drop, &t);
	strv_free(&dbs);
	strv_free(&created);
	source_mysql_restore_free(&t);
	return rc;
}

const struct source_ops source_mysql_ops = {
    .type = "mysql",
    .create = source_mysql_create,
    .set = source_mysql_set,
    .check = source_mysql_check,
    .run = source_mysql_run,
    .probe = source_mysql_probe,
    .free = source_mysql_free,
    .traits = SOURCE_TRAIT_DATABASE,
    .restore_db = source_mysql_restore_db,
    .drill = source_mysql_drill,
};
