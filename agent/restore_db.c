/*
 * restore_db: `coffer restore ID [--database NAME | --globals]
 * --to-database TARGET [--clean]`: one database object streamed straight
 * into the server through the engine's own client, nothing written to disk.
 *
 * This file holds what every engine shares: choosing the object (the
 * globals, the database named, or the only one) from the objects' metadata,
 * and handing it to the engine's restore_db operation (source.h), which
 * knows its client and its TARGET syntax (source_postgres.c, source_mysql.c,
 * source_mongodb.c).
 */
#include "agent/restore.h"
#include "agent/proc.h"
#include "agent/source/source.h"

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

int restore_database(struct storage *st, const struct catalog_backup *b,
                     const struct age_identities *ids, const struct restore_db_options *o)
{
	const struct source_ops *ops = source_registry_find(b->kind);
	struct source_restore_db r;
	int rc = 0;

	proc_temp_reap();
	if (!ops || !(ops->traits & SOURCE_TRAIT_DATABASE) || !ops->restore_db)
		return error_set(CF_ERR_USAGE,
		                 "backup %s is of a %s source; --to-database restores %s backups "
		                 "(use --to or --stdout)",
		                 b->id, b->kind, source_registry_db_types());
	memset(&r, 0, sizeof(r));
	r.st = st;
	r.ids = ids;
	r.target = o->target;
	r.database = o->database;
	r.globals = o->globals;
	r.clean = o->clean;
	r.progress = o->progress;
	if ((ops->traits & SOURCE_TRAIT_DB_WHOLE_ARCHIVE) && b->nobjects == 1 && !o->globals)
		r.obj = &b->objects[0]; /* the whole deployment; --database filters it */
	else
		rc = restore_db_pick(b, o, &r.obj);
	if (!rc)
		rc = ops->restore_db(&r);
	if (!rc && o->restored)
		*o->restored = r.obj;
	return rc;
}
