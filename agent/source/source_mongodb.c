/*
 * source_mongodb: backs up a MongoDB deployment with `mongodump --archive`,
 * whose archive (stdout) is streamed through the pipeline: one stream
 * "dump.archive" for the whole deployment, or one "db-NAME.archive" per
 * database when databases is set. Format "mongodump-archive", restored with
 * `mongorestore --archive`.
 *
 * The password goes into a temporary 0600 YAML file given with --config
 * (MongoDB Database Tools 100.x), never into argv; the URI must not hold
 * one. Without --oplog (oplog = true, replica sets only) a dump is not a
 * point-in-time snapshot across collections.
 *
 * It does not install or look for anything but the mongodump binary.
 */
#include "agent/agent.h"
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
#include <unistd.h>

#define MONGO_DEFAULT_URI "mongodb://127.0.0.1:27017"

struct source_mongodb {
	char *name;
	char *uri;
	char *user;
	char *password_file;
	char *auth_db;
	struct strv databases;
	int oplog;
	char *mongodump;
};
_Static_assert(offsetof(struct source_mongodb, name) == 0,
               "source_state_new() needs the name first");

#define MGK(n, t, f)                                                                               \
	{                                                                                          \
		n, t, offsetof(struct source_mongodb, f)                                           \
	}
static const struct source_key source_mongodb_keys[] = {
    MGK("uri", SOURCE_KEY_STR, uri),
    MGK("user", SOURCE_KEY_STR, user),
    MGK("password_file", SOURCE_KEY_STR, password_file),
    MGK("authentication_database", SOURCE_KEY_STR, auth_db),
    {"databases", SOURCE_KEY_LIST, offsetof(struct source_mongodb, databases)},
    MGK("oplog", SOURCE_KEY_BOOL, oplog),
    MGK("mongodump", SOURCE_KEY_STR, mongodump),
    {NULL, SOURCE_KEY_STR, 0},
};
#undef MGK

static int source_mongodb_create(const char *name, void **state)
{
	return source_state_new(sizeof(struct source_mongodb), name, state);
}

static void source_mongodb_free(void *state)
{
	source_state_free(source_mongodb_keys, state);
}

/* Whether the URI's user info holds a password: scheme://user:pass@hosts/... */
static int mongodb_uri_has_password(const char *uri)
{
	const char *p = strstr(uri, "://");
	size_t hosts;
	const char *at;

	if (!p)
		return 0;
	p += 3;
	hosts = strcspn(p, "/?");
	at = memrchr(p, '@', hosts);
	return at && memchr(p, ':', (size_t)(at - p)) != NULL;
}

static int source_mongodb_set(void *state, const char *key, const char *value)
{
	if (!strcmp(key, "uri") && *value) {
		if (strncmp(value, "mongodb://", 10) != 0 &&
		    strncmp(value, "mongodb+srv://", 14) != 0)
			return error_set(CF_ERR_CONFIG,
			                 "uri = '%s': expected mongodb://... or mongodb+srv://...",
			                 value);
		/* Not echoed: the value may be a secret. */
		if (mongodb_uri_has_password(value))
			return error_set(
			    CF_ERR_CONFIG,
			    "uri holds a password: put the user in 'user' and the password in "
			    "a file named by 'password_file'");
	}
	return source_keys_set(source_mongodb_keys, state, key, value);
}

static int source_mongodb_check(void *state)
{
	struct source_mongodb *s = state;

	/* mongodump refuses --oplog with --db: the oplog is the deployment's. */
	if (s->oplog && s->databases.n)
		return error_set(CF_ERR_CONFIG,
		                 "oplog = true dumps the whole deployment: it cannot be "
		                 "combined with databases");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Running                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The --config file: "password: '...'" as a YAML single-quoted scalar, in
 * which only ' needs escaping (as ''). The text is in sodium memory.
 */
static int mongodb_config_file(const char *password, char **path)
{
	size_t n = strlen(password), cap = 2 * n + 16, k = 0;
	char *text = sodium_malloc(cap);
	int rc;

	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	memcpy(text, "password: '", 11);
	k = 11;
	for (size_t i = 0; i < n; i++) {
		if (password[i] == '\'')
			text[k++] = '\'';
		text[k++] = password[i];
	}
	memcpy(text + k, "'\n", 3);
	rc = proc_temp_file("coffer-mongodump", text, path);
	sodium_free(text);
	return rc;
}

/* The first line of `mongodump --version`, e.g. "mongodump version: 100.9.4". */
static int mongodb_version(const struct source_mongodb *s, const char *tool, char *out, size_t n)
{
	char *const argv[] = {(char *)(uintptr_t)tool, (char *)(uintptr_t) "--version", NULL};
	struct proc_spec spec;
	char label[300];
	struct buf b;
	const char *v;
	int rc;

	snprintf(label, sizeof(label), "source %s: mongodump --version", s->name);
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = argv;
	spec.errcode = CF_ERR_SOURCE;
	spec.stderr_debug = 1;
	buf_init(&b, 64 * 1024);
	rc = proc_capture(&spec, &b);
	if (!rc) {
		v = strstr((const char *)b.data, "version: ");
		v = v ? v + 9 : (const char *)b.data;
		snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
	}
	buf_free(&b);
	return rc;
}

/* Dumps one database (db) or everything (db NULL) into one stream. */
static int mongodb_dump(const struct source_mongodb *s, const char *tool, const char *config,
                        const char *db, struct backup_run *run)
{
	struct strv av = {0};
	struct proc_spec spec;
	char label[300], stream[256];
	char *meta = NULL, *dbjson = NULL;
	int rc = strv_add(&av, tool);

	if (!rc)
		rc = strv_add(&av, "--archive");
	if (!rc)
		rc = strv_addf(&av, "--uri=%s", s->uri ? s->uri : MONGO_DEFAULT_URI);
	if (!rc && s->user)
		rc = strv_addf(&av, "--username=%s", s->user);
	if (!rc && s->auth_db)
		rc = strv_addf(&av, "--authenticationDatabase=%s", s->auth_db);
	if (!rc && config)
		rc = strv_addf(&av, "--config=%s", config);
	if (!rc && db)
		rc = strv_addf(&av, "--db=%s", db);
	if (!rc && s->oplog)
		rc = strv_add(&av, "--oplog");
	if (rc)
		goto out;
	if (db) {
		rc = source_db_stream_name("db-", db, ".archive", stream, sizeof(stream));
		if (rc) {
			rc = error_set(CF_ERR_SOURCE, "source %s: database name '%s' is too long",
			               s->name, db);
			goto out;
		}
		dbjson = source_db_json_str(db);
		if (!dbjson ||
		    asprintf(&meta, "{\"role\":\"database\",\"database\":%s}", dbjson) < 0) {
			meta = NULL;
			rc = error_set(CF_ERR_NOMEM, "out of memory");
			goto out;
		}
		snprintf(label, sizeof(label), "source %s: mongodump --db %s", s->name, db);
	} else {
		snprintf(stream, sizeof(stream), "dump.archive");
		snprintf(label, sizeof(label), "source %s: mongodump", s->name);
	}
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = av.v;
	spec.errcode = CF_ERR_SOURCE;
	/* mongodump logs every collection it writes: progress, not warnings. */
	spec.stderr_debug = 1;
	rc = source_dump_child(run, &spec, stream, "mongodump-archive", meta);
out:
	free(meta);
	free(dbjson);
	strv_free(&av);
	return rc;
}

static int mongodb_meta(const struct source_mongodb *s, const char *version, struct backup_run *run)
{
	json_t *dbs = s->databases.n ? json_array() : json_string("all");
	json_t *m;
	char *text;
	int rc;

	for (size_t i = 0; dbs && i < s->databases.n; i++)
		json_array_append_new(dbs, json_string(s->databases.v[i]));
	m = json_pack("{s:s, s:s, s:o*, s:b, s:s}", "engine", "mongodb", "tool_version", version,
	              "databases", dbs, "oplog", s->oplog, "dump", "mongodump --archive");
	text = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = backup_run_set_meta(run, text);
	free(text);
	return rc;
}

static int source_mongodb_run(void *state, struct backup_run *run)
{
	static const char *const names[] = {"mongodump", NULL};
	struct source_mongodb *s = state;
	char *tool = NULL, *password = NULL, *config = NULL;
	char version[128] = "";
	int rc = 0;

	if (s->mongodump)
		tool = access(s->mongodump, X_OK) == 0 ? strdup(s->mongodump) : NULL;
	else
		tool = source_db_find_tool(NULL, names);
	if (!tool) {
		if (s->mongodump)
			return error_set(
			    CF_ERR_SOURCE,
			    "source %s: mongodump is not installed at %s (install MongoDB "
			    "Database Tools)",
			    s->name, s->mongodump);
		return error_set(
		    CF_ERR_SOURCE,
		    "source %s: mongodump is not installed (install MongoDB Database Tools)",
		    s->name);
	}
	rc = mongodb_version(s, tool, version, sizeof(version));
	if (!rc && s->password_file) {
		rc = proc_read_secret(s->password_file, &password);
		if (rc) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", error_message());
			rc = error_set(CF_ERR_SOURCE, "source %s: %s", s->name, msg);
		}
		if (!rc)
			rc = mongodb_config_file(password, &config);
		proc_secret_free(password);
	}
	if (!rc)
		log_info("source %s: mongodump %s, %s", s->name, version,
		         s->databases.n ? "one archive per database" : "one archive");
	if (!rc)
		rc = mongodb_meta(s, version, run);
	if (!rc && s->databases.n == 0)
		rc = mongodb_dump(s, tool, config, NULL, run);
	for (size_t i = 0; !rc && i < s->databases.n; i++)
		rc = mongodb_dump(s, tool, config, s->databases.v[i], run);
	proc_temp_remove(config);
	free(tool);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Restore: restore --to-database                                           */
/* ------------------------------------------------------------------------ */

static int source_mongodb_restore_db(const struct source_restore_db *o)
{
	static const char *const tools[] = {"mongorestore", NULL};
	char *tool = source_db_find_tool(NULL, tools), *conf = NULL, *text = NULL, *uri = NULL;
	struct strv argv = {0};
	struct proc_spec spec;
	int rc = 0;

	if (!tool)
		return error_set(CF_ERR_TARGET,
		                 "mongorestore is not installed (install MongoDB Database Tools)");
	if (!(uri = source_db_json_str(o->target)) || asprintf(&text, "uri: %s\n", uri) < 0) {
		text = NULL;
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = proc_temp_file("coffer-mongo", text, &conf);
	if (!rc)
		rc = strv_add(&argv, tool);
	if (!rc)
		rc = strv_addf(&argv, "--config=%s", conf);
	if (!rc)
		rc = strv_add(&argv, "--archive");
	if (!rc && o->clean)
		rc = strv_add(&argv, "--drop");
	if (!rc && o->database)
		rc = strv_addf(&argv, "--nsInclude=%s.*", o->database);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "mongorestore";
		spec.argv = argv.v;
		rc = restore_stream_to_child(o->st, o->obj, o->ids, &spec, o->progress);
	}
	strv_free(&argv);
	proc_temp_remove(conf);
	free(text);
	free(uri);
	free(tool);
	return rc;
}

const struct source_ops source_mongodb_ops = {
    .type = "mongodb",
    .create = source_mongodb_create,
    .set = source_mongodb_set,
    .check = source_mongodb_check,
    .run = source_mongodb_run,
    .free = source_mongodb_free,
    .traits = SOURCE_TRAIT_DATABASE | SOURCE_TRAIT_DB_WHOLE_ARCHIVE,
    .restore_db = source_mongodb_restore_db,
};
