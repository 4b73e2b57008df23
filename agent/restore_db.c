/*
 * restore_db: `coffer restore ID [--database NAME | --globals]
 * --to-database TARGET [--clean]`: one database object streamed straight
 * into the server through the engine's own client, nothing written to disk.
 *
 *   postgres  pg_restore --single-transaction (a failure leaves the target as
 *             it was); globals through psql, where "role already exists"
 *             is reported and skipped
 *   mysql     the mariadb/mysql client into the named database, created if
 *             missing; a failure leaves it partly restored (said so)
 *   mongodb   mongorestore --archive
 *
 * TARGET is a libpq connection string for postgres ("host=... port=...
 * dbname=..."; passwords belong in a .pgpass file), "key=value" words for
 * mysql (host, port, socket, user, password_file, defaults_file, database),
 * and a mongodb:// URI for mongodb (given to mongorestore in a 0600 config
 * file, never argv).
 */
#include "agent/restore.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/proc.h"
#include "agent/source/source_db.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string field of an object's metadata, or NULL. */
static const char *restore_db_meta(json_t *meta, const char *key)
{
	return json_string_value(json_object_get(meta, key));
}

/* Finds the object to restore: the globals, the database named, or the only
 * database of the backup. */
static int restore_db_pick(const struct catalog_backup *b, const struct restore_db_options *o,
                           const struct catalog_object **out)
{
	const struct catalog_object *found = NULL;
	struct buf names;
	size_t ndb = 0;
	int rc = 0;

	buf_init(&names, 64 * 1024);
	for (size_t i = 0; i < b->nobjects; i++) {
		json_t *meta =
		    b->objects[i].meta_json ? json_loads(b->objects[i].meta_json, 0, NULL) : NULL;
		const char *role = restore_db_meta(meta, "role"),
		           *db = restore_db_meta(meta, "database");

		int is_db = role && db && !strcmp(role, "database");

		if (o->globals ? role && !strcmp(role, "globals")
		               : is_db && (!o->database || !strcmp(o->database, db)))
			found = &b->objects[i];
		if (is_db) {
			ndb++;
			(void)buf_printf(&names, "%s%s", names.len ? ", " : "", db);
		}
		json_decref(meta);
	}
	/* Without --database the backup must hold exactly one. */
	if (!o->globals && !o->database && ndb > 1)
		found = NULL;
	if (!found) {
		if (o->globals)
			rc = error_set(CF_ERR_NOTFOUND, "backup %s has no globals object", b->id);
		else if (o->database)
			rc = error_set(CF_ERR_NOTFOUND,
			               "backup %s has no database '%s' (it has: %s)", b->id,
			               o->database, names.len ? (char *)names.data : "none");
		else if (ndb > 1)
			rc = error_set(
			    CF_ERR_USAGE,
			    "backup %s holds %zu databases (%s); choose one with --database NAME",
			    b->id, ndb, (char *)names.data);
		else
			rc = error_set(CF_ERR_NOTFOUND, "backup %s holds no database", b->id);
	}
	buf_free(&names);
	*out = found;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* PostgreSQL                                                                 */
/* ------------------------------------------------------------------------ */

static int restore_db_pg_env(struct strv *env)
{
	int rc = strv_add_env(env, "PGAPPNAME", "coffer restore");

	if (!rc)
		rc = strv_add_env(env, "PGCONNECT_TIMEOUT", "30");
	return rc;
}

/* Number of user objects (relations, functions, types, large objects) in
 * the target database. */
static int restore_db_pg_count(const char *target, long *count)
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
		rc = restore_db_pg_env(&env);
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
static int restore_db_pg_has_password(const char *target)
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

static int restore_db_postgres(struct storage *st, const struct catalog_object *obj,
                               const struct age_identities *ids, const struct restore_db_options *o)
{
	struct strv argv = {0}, env = {0};
	struct proc_spec spec;
	long count = 0;
	int rc = 0;

	if (restore_db_pg_has_password(o->target))
		return error_set(CF_ERR_USAGE,
		                 "--to-database must not hold a password (it would be on a "
		                 "command line): put it in a .pgpass file or PGPASSFILE");
	if (!o->globals) {
		rc = restore_db_pg_count(o->target, &count);
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
	}
	if (!rc)
		rc = restore_db_pg_env(&env);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = o->globals ? "psql" : "pg_restore";
		spec.argv = argv.v;
		spec.env = env.v;
		rc = restore_stream_to_child(st, obj, ids, &spec, o->progress);
	}
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* MySQL / MariaDB                                                            */
/* ------------------------------------------------------------------------ */

struct restore_db_my {
	char *host, *port, *socket, *user, *password_file, *defaults_file, *database;
	char *client;
	char *optfile;
};

static void restore_db_my_free(struct restore_db_my *t)
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

static int restore_db_my_parse(const char *target, struct restore_db_my *t)
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

static int restore_db_my_client(struct restore_db_my *t, const char *database, const char *sql,
                                struct buf *out)
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
static int restore_db_my_ident(const char *name, struct buf *b)
{
	int rc = buf_append(b, "`", 1);

	for (const char *p = name; !rc && *p; p++)
		rc = *p == '`' ? buf_append(b, "``", 2) : buf_append(b, p, 1);
	if (!rc)
		rc = buf_append(b, "`", 1);
	return rc;
}

static int restore_db_mysql(struct storage *st, const struct catalog_object *obj,
                            const struct age_identities *ids, const struct restore_db_options *o)
{
	static const char *const clients[] = {"mariadb", "mysql", NULL};
	struct restore_db_my t;
	struct strv argv = {0};
	struct proc_spec spec;
	struct buf sql, out;
	int rc;

	memset(&t, 0, sizeof(t));
	buf_init(&sql, 64 * 1024);
	buf_init(&out, 64 * 1024);
	rc = restore_db_my_parse(o->target, &t);
	if (!rc && !t.database && !o->globals)
		rc = error_set(CF_ERR_USAGE, "--to-database needs database=NAME");
	if (!rc && !(t.client = source_db_find_tool(NULL, clients)))
		rc = error_set(CF_ERR_TARGET, "the mariadb or mysql client is not installed");
	if (!rc)
		rc = source_mysql_optfile(t.defaults_file, t.host, t.port, t.socket, t.user,
		                          t.password_file, &t.optfile);
	if (!rc && !o->globals) {
		/* Hex literals: the name needs no quoting in the query. */
		struct buf hex;

		buf_init(&hex, 1024);
		for (const unsigned char *p = (const unsigned char *)t.database; !rc && *p; p++)
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
			rc = restore_db_my_client(&t, NULL, (char *)sql.data, &out);
		if (!rc && atol((char *)out.data) > 0 && !o->clean)
			rc = error_set(CF_ERR_EXISTS,
			               "the target database %s already holds %ld objects; restore "
			               "into an empty "
			               "database or add --clean to replace them",
			               t.database, atol((char *)out.data));
		buf_reset(&sql);
		out.len = 0;
		if (!rc && o->clean)
			rc = buf_printf(&sql, "DROP DATABASE IF EXISTS ");
		if (!rc && o->clean)
			rc = restore_db_my_ident(t.database, &sql);
		if (!rc && o->clean)
			rc = buf_printf(&sql, "; ");
		if (!rc)
			rc = buf_printf(&sql, "CREATE DATABASE IF NOT EXISTS ");
		if (!rc)
			rc = restore_db_my_ident(t.database, &sql);
		if (!rc)
			rc = buf_append(&sql, "", 1);
		if (!rc)
			rc = restore_db_my_client(&t, NULL, (char *)sql.data, &out);
	}
	/* The users and grants: one that cannot be applied (root's PROXY grant
	 * for a user that is not root, a user that exists) is reported and
	 * skipped, as psql does for roles; so the connection is checked first. */
	if (!rc && o->globals)
		rc = restore_db_my_client(&t, NULL, "SELECT 1", &out);
	if (!rc)
		rc = strv_add(&argv, t.client);
	if (!rc)
		rc = strv_addf(&argv, "--defaults-extra-file=%s", t.optfile);
	if (!rc)
		rc = strv_add(&argv, "--binary-mode");
	if (!rc && o->globals)
		rc = strv_add(&argv, "--force");
	if (!rc && !o->globals)
		rc = strv_addf(&argv, "--database=%s", t.database);
	if (!rc) {
		memset(&spec, 0, sizeof(spec));
		spec.label = "mariadb client";
		spec.argv = argv.v;
		rc = restore_stream_to_child(st, obj, ids, &spec, o->progress);
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
			    msg, t.database);
		}
	}
	strv_free(&argv);
	buf_free(&sql);
	buf_free(&out);
	restore_db_my_free(&t);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* MongoDB                                                                    */
/* ------------------------------------------------------------------------ */

static int restore_db_mongodb(struct storage *st, const struct catalog_object *obj,
                              const struct age_identities *ids, const struct restore_db_options *o)
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
		rc = restore_stream_to_child(st, obj, ids, &spec, o->progress);
	}
	strv_free(&argv);
	proc_temp_remove(conf);
	free(text);
	free(uri);
	free(tool);
	return rc;
}

int restore_database(struct storage *st, const struct catalog_backup *b,
                     const struct age_identities *ids, const struct restore_db_options *o)
{
	const struct catalog_object *obj = NULL;
	struct restore_db_options opts = *o;
	int rc;

	proc_temp_reap();
	if (!strcmp(b->kind, "mongodb") && b->nobjects == 1 && !o->globals) {
		/* One archive of the whole deployment; --database filters it. */
		return restore_db_mongodb(st, &b->objects[0], ids, o);
	}
	if (!strcmp(b->kind, "mongodb")) {
		/* One archive per database: --database picks it. */
		rc = restore_db_pick(b, &opts, &obj);
		return rc ? rc : restore_db_mongodb(st, obj, ids, &opts);
	}
	if (strcmp(b->kind, "postgres") && strcmp(b->kind, "mysql"))
		return error_set(
		    CF_ERR_USAGE,
		    "backup %s is of a %s source; --to-database restores postgres, mysql and "
		    "mongodb backups (use --to or --stdout)",
		    b->id, b->kind);
	rc = restore_db_pick(b, &opts, &obj);
	if (rc)
		return rc;
	log_info("restoring %s into %s", obj->name,
	         !strcmp(b->kind, "postgres") ? "pg_restore" : "the mariadb client");
	if (!strcmp(b->kind, "postgres"))
		return restore_db_postgres(st, obj, ids, &opts);
	return restore_db_mysql(st, obj, ids, &opts);
}
