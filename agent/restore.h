/*
 * restore: streaming stored objects back out (cmd_restore.c) and into the
 * database servers they came from (restore_db.c).
 */
#ifndef COFFER_RESTORE_H
#define COFFER_RESTORE_H

#include "agent/agent.h"

/*
 * Streams one object through sha256/size check -> age decrypt -> zstd
 * decompress -> sink (a filter the chain then owns and frees), and checks
 * the stored size, SHA-256 and plaintext size against the manifest.
 * Errors: CF_ERR_INTEGRITY, the age and zstd errors, CF_ERR_STORAGE,
 * CF_ERR_INTERRUPTED, and whatever the sink returns.
 */
int restore_object(struct storage *st, const struct catalog_object *obj,
                   const struct age_identities *ids, struct filter *sink, int progress);
/* The same into a file descriptor (not closed). */
int restore_object_fd(struct storage *st, const struct catalog_object *obj,
                      const struct age_identities *ids, int sink_fd, int progress);

struct restore_db_options {
	const char *database; /* --database NAME, or NULL */
	int globals;          /* --globals: roles (postgres), users and grants (mysql) */
	const char *target;   /* --to-database TARGET */
	int clean;            /* --clean: replace what the target database holds */
	int progress;
};

/*
 * Restores one database object of a postgres, mysql or mongodb backup into a
 * running server through its own client (pg_restore or psql, mariadb or
 * mysql, mongorestore). A target that already holds data is refused unless
 * clean is set. Errors: CF_ERR_USAGE (no such database in the backup, a
 * password in TARGET, a kind without database restore), CF_ERR_EXISTS
 * (target not empty), CF_ERR_TARGET (the client failed, with its stderr),
 * and the restore_object() errors.
 */
int restore_database(struct storage *st, const struct catalog_backup *b,
                     const struct age_identities *ids, const struct restore_db_options *o);

#endif
