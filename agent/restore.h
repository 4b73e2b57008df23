/*
 * restore: restoring a backup into the database servers it came from
 * (restore_db.c); the stream of one object is agent/pipeline/restore_stream.h.
 */
#ifndef COFFER_RESTORE_H
#define COFFER_RESTORE_H

#include "agent/agent.h"

struct restore_db_options {
	const char *database; /* --database NAME, or NULL */
	int globals;          /* --globals: roles (postgres), users and grants (mysql) */
	const char *target;   /* --to-database TARGET */
	int clean;            /* --clean: replace what the target database holds */
	int progress;
	/* Set to the object restored, when not NULL (restore --json says which). */
	const struct catalog_object **restored;
};

/*
 * Restores one database object of a postgres, mysql or mongodb backup into a
 * running server through its own client (pg_restore or psql, mariadb or
 * mysql, mongorestore). A target that already holds data is refused unless
 * clean is set. Errors: CF_ERR_USAGE (no such database in the backup, a
 * password in TARGET, a kind without database restore), CF_ERR_EXISTS
 * (target not empty), CF_ERR_TARGET (the client failed, with its stderr),
 * and the restore_stream_run() errors.
 */
int restore_database(struct storage *st, const struct catalog_backup *b,
                     const struct age_identities *ids, const struct restore_db_options *o);

/* restore --to-datadir (restore_pitr.c): a postgres-physical source's base
 * backup laid down as a data directory set to recover to a target.
 * argc/argv are restore's. Errors: CF_ERR_USAGE, CF_ERR_NOTFOUND (no backup
 * or WAL for the target), CF_ERR_INTEGRITY (a hole in the archive),
 * CF_ERR_EXISTS (DIR not empty), and the restore stream's. */
int restore_pitr_run(const struct cli *cli, int argc, char **argv);

#endif
