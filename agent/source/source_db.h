/*
 * source_db: what the database sources (postgres, mysql, redis, sqlite,
 * mongodb) share: string vectors for argv and environments, choosing the
 * databases to dump, object names for database names, finding a tool, and
 * dumping one child's stdout as one stream.
 */
#ifndef COFFER_SOURCE_DB_H
#define COFFER_SOURCE_DB_H

#include "agent/proc.h"
#include "common/common.h"

#include <jansson.h>

struct backup_run;

/*
 * A source's config keys as a table, so set() and free() are one call each:
 * { "host", SOURCE_KEY_STR, offsetof(struct s, host) }, ..., { NULL }.
 */
enum source_key_type {
	SOURCE_KEY_STR,  /* char *, not empty */
	SOURCE_KEY_PATH, /* char *, an absolute path */
	SOURCE_KEY_PORT, /* char *, a TCP port */
	SOURCE_KEY_BOOL, /* int, true/false */
	SOURCE_KEY_LIST, /* struct strv, a comma-separated list */
};

struct source_key {
	const char *name;
	enum source_key_type type;
	size_t offset;
};

/* Applies key to the field of state the table names. Errors: CF_ERR_CONFIG
 * (unknown key, listing the known ones; a bad value), CF_ERR_NOMEM. */
int source_keys_set(const struct source_key *keys, void *state, const char *key, const char *value);
/* Frees every string and list field the table names. */
void source_keys_free(const struct source_key *keys, void *state);

/* Allocates a zeroed source state of size bytes whose first member is
 * `char *name` (each source checks that with a static assertion), holding a
 * copy of name. Errors: CF_ERR_NOMEM. */
int source_state_new(size_t size, const char *name, void **state);
/* Frees the fields the key table names, the name and the state; NULL does
 * nothing. */
void source_state_free(const struct source_key *keys, void *state);

/* Replaces *field with a copy of value (config keys). Errors: CF_ERR_NOMEM. */
int source_db_set(char **field, const char *value);
/* Replaces the list *v (n items) with the comma-separated value.
 * Errors: CF_ERR_CONFIG (an empty item), CF_ERR_NOMEM. */
int source_db_set_list(struct strv *v, const char *value);
/* Parses a TCP port 1..65535. Errors: CF_ERR_CONFIG naming key. */
int source_db_set_port(char **field, const char *key, const char *value);

/*
 * Chooses the databases to dump from those the server has (all, in order):
 * include (if any) then minus exclude. A name in include that the server does
 * not have fails, naming it; a name in exclude it does not have is a warning.
 * Errors: CF_ERR_SOURCE (message starts "source NAME: "), CF_ERR_NOMEM.
 */
int source_db_select(const char *source, const struct strv *all, const struct strv *include,
                     const struct strv *exclude, struct strv *out);

/* The stream name for a database: prefix + the name with every byte outside
 * [A-Za-z0-9._-] written as _XX (hex; '_' too when two hex digits follow it,
 * so the mapping is one to one) + suffix, e.g. "db-my_app.pgdump",
 * "db-odd_20name.pgdump".
 * Errors: CF_ERR_LIMIT (too long). */
int source_db_stream_name(const char *prefix, const char *db, const char *suffix, char *out,
                          size_t outlen);

/* The path of the first of names found in bin_dir (if set) or else on PATH,
 * malloc'ed; NULL if none is found (or out of memory). */
char *source_db_find_tool(const char *bin_dir, const char *const *names);

/*
 * Runs spec (its stdout a pipe) into a new stream of run: opens the stream,
 * pumps the child's output through it, and commits the object only once the
 * child has exited with status 0, with meta_json (may be NULL) as the object's
 * metadata. Errors: whatever failed; the stream is then abandoned.
 */
int source_dump_child(struct backup_run *run, const struct proc_spec *spec, const char *stream,
                      const char *format, const char *meta_json);

/* The backup's metadata object: {"engine": engine, "databases": [dbs...]}
 * (no databases key when dbs is NULL). NULL on out of memory. */
json_t *source_db_meta_new(const char *engine, const struct strv *dbs);
/* Stores m (consumed) as the run's metadata; bad != 0 means building it ran
 * out of memory. Errors: CF_ERR_NOMEM. */
int source_db_meta_commit(struct backup_run *run, json_t *m, int bad);

/*
 * Writes a MySQL/MariaDB client option file (0600, in $TMPDIR) for
 * --defaults-extra-file: "!include defaults_file" if set, then [client] with
 * the given values (NULL ones left out) and the password read from
 * password_file. Remove it with proc_temp_remove().
 * Errors: CF_ERR_CONFIG (password file), CF_ERR_IO, CF_ERR_NOMEM.
 */
int source_mysql_optfile(const char *defaults_file, const char *host, const char *port,
                         const char *socket, const char *user, const char *password_file,
                         char **path);

/* A JSON string literal of s (with quotes), malloc'ed; NULL on out of memory. */
char *source_db_json_str(const char *s);

/* PostgreSQL's (source_postgres.c), which the drill of a postgres-physical
 * backup (source_pgphys.c) shares: the query of every table's exact rows
 * ("schema.table<TAB>rows"; what row_counts records), that of the objects
 * per kind ("kind<TAB>n"), and the drill server's readiness (its
 * postmaster.pid in DIR/data says ready; drill_server_start()'s ready). */
extern const char source_postgres_rows_sql[];
extern const char source_postgres_kinds_sql[];
struct drill;
int source_postgres_drill_ready(struct drill *d, void *ctx);

#endif
