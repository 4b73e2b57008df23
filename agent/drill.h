/*
 * drill: `coffer verify --drill`, a restore test of a database backup into a
 * throwaway server that coffer starts itself from the host's binaries (so
 * production is never touched), with the restored data counted, compared
 * with the previous drill of the source, and the recovery time measured
 * against the source's rto_target.
 *
 * drill.c owns what every engine shares: the private folder
 * ($TMPDIR/coffer-drill.PID.XXXXXX, flocked, removed with the server on
 * every path; one a kill -9 left is reaped, server and all, by the next
 * drill), starting and stopping the server, the counts, the report and its
 * record in the catalog. Each engine's drill operation (source_ops.drill,
 * in its source file) starts its server with drill_server_start(), loads
 * the backup's objects with its own restore_db code (after
 * drill_restore_begin()) or drill_restore_file(), calls drill_restored(),
 * and reports what it finds with drill_table() and drill_kind().
 */
#ifndef COFFER_DRILL_H
#define COFFER_DRILL_H

#include "agent/agent.h"
#include "agent/proc.h"

#include <jansson.h>

struct drill {
	const struct source_ops *ops;   /* the backup's type */
	const struct source *src;       /* its configured source, or NULL */
	const struct catalog_backup *b; /* the backup */
	struct storage *st;             /* the repository read */
	const struct age_identities *ids;
	const char *target; /* the source's drill_target, or NULL: a server of its own */
	int progress;
	char dir[4096]; /* the private folder; the engine's files go in it */
	uid_t uid;      /* the server's user when coffer runs as root (else 0) */
	gid_t gid;
	struct proc server;
	int server_started;
	/* time_mono() when the engine began to read the backup
	 * (drill_restore_begin()) and when the data was in (drill_restored()):
	 * the recovery time between them; the set-up (initdb, the server's
	 * start) before. A failure after the beginning is the backup's (exit
	 * 4), one before it the drill's set-up (no server binaries...). */
	double restore_start;
	double restored_at;
	json_t *dbs; /* {"DB": {"tables": {"T": rows}, "objects": {"KIND": n}}} */
};

/* The user a server runs as when coffer is root: that name's uid and gid in
 * d->uid/gid, and the folder handed to it. Errors: CF_ERR_TARGET (no such
 * user), CF_ERR_IO. */
int drill_run_as(struct drill *d, const char *user);

/*
 * Starts the server argv (found in PATH unless absolute), its output in
 * DIR/server.log, and waits (up to 120 s, checking for signals) until
 * ready(d, ctx) returns 1; 0 means not yet, < 0 an error. A server that
 * exits or does not get ready fails with the end of its log.
 * Errors: CF_ERR_TARGET, CF_ERR_INTERRUPTED, CF_ERR_NOMEM.
 */
int drill_server_start(struct drill *d, const char *label, char *const *argv, char *const *env,
                       int (*ready)(struct drill *d, void *ctx), void *ctx);

/* Restores obj into the new file path (mode 0600, owned by the server's
 * user). Errors: restore_stream_run()'s, CF_ERR_IO. */
int drill_restore_file(struct drill *d, const struct catalog_object *obj, const char *path);

/* The database a backup object holds ("database" in its metadata), or NULL;
 * 1 when it is the globals (roles, grants) object. */
const char *drill_object_database(const struct catalog_object *obj, int *globals);

/* Marks the beginning of the restore (once; drill_restore_file() does it)
 * and its end: what follows is counting, not recovery time. */
void drill_restore_begin(struct drill *d);
void drill_restored(struct drill *d);

/* The names of the databases a drill makes in a drill_target (which may hold
 * others): this prefix + the backed-up database's name. */
#define DRILL_DB_PREFIX "coffer_drill_"

/* The globals object (roles, grants) of b, or NULL. */
const struct catalog_object *drill_globals(const struct catalog_backup *b);

/* Drops each database of names that a drill made in a drill_target with
 * drop(ctx, name), inside a cleanup section (also after a signal), warning
 * about one that cannot be dropped; returns rc with its error message kept. */
int drill_drop_made(int rc, const struct strv *names, int (*drop)(void *ctx, const char *db),
                    void *ctx);

/* Records what the restored server holds: a table's rows, and the count of
 * objects of a kind ("tables", "views", "functions", "sequences", "keys").
 * Errors: CF_ERR_NOMEM. */
int drill_table(struct drill *d, const char *db, const char *table, long long rows);
int drill_kind(struct drill *d, const char *db, const char *kind, long long n);

/* A %d-style path in the drill folder: DIR/name. */
int drill_path(const struct drill *d, const char *name, char *out, size_t size);

/* What drill_backup() needs of the command. */
struct drill_options {
	const struct config *cfg;
	struct catalog *cat;
	struct agent_targets *tg;
	const struct age_identities *ids;
	const char *target; /* --target, or NULL */
	int json;
	int progress;
};
/*
 * `coffer verify --drill`: drills backup b (complete, of a kind whose ops
 * have a drill; src its configured source or NULL: the caller looks both
 * up, so this file calls neither the registry nor the config) from the
 * first repository that holds it (or o->target), records the report in the
 * backup's record and as the source's last drill, and prints it (text), or
 * with json gives it in *json_out (malloc'ed; also when the drill failed).
 * Errors: CF_ERR_INTEGRITY (the drill failed: the restore, a row count that
 * differs from the one recorded at backup, the rto_target), the engine's
 * error when it failed before reading the backup (CF_ERR_TARGET: no server
 * binaries, a server that did not start), and the errors of opening things.
 */
int drill_backup(const struct drill_options *o, const struct catalog_backup *b,
                 const struct source_ops *ops, const struct source *src, char **json_out);

/* Removes the drill folders (and stops the servers) that coffer processes
 * killed during a drill left. Never fails. */
void drill_reap(void);

#endif
