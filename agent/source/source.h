/*
 * source: the interface every source type implements (files, command, stdin,
 * postgres, mysql, redis, sqlite, mongodb, kubernetes), in both directions,
 * and the registry that maps a config "type = ..." (and a backup's kind) to
 * its implementation.
 *
 * Backup: a source is configured key by key from its [source NAME] section,
 * checked once all keys are in, and then run: it opens one or more streams
 * on the backup run (pipeline.h), pushes bytes into each and closes it. It
 * never sees compression, encryption or storage.
 *
 * Restore: the type's traits say what its backups restore as, and its
 * restore operations do what only it knows: feed a database object to the
 * engine's client, select entries of its archive, print the order to apply
 * them in. The stream of an object (storage, age, zstd, checks) is
 * agent/pipeline/restore_stream.h; the command (cmd_restore.c) chooses the
 * target and dispatches. Adding a source type touches its own files and the
 * registry (source.c) only.
 */
#ifndef COFFER_SOURCE_H
#define COFFER_SOURCE_H

#include "agent/retention.h"
#include "common/common.h"

#include <archive.h>

struct backup_run;
struct storage;
struct catalog_object;
struct age_identities;
struct drill;

/* What a type's backups restore as (source_ops.traits); none: a folder
 * (restore --to DIR: raw objects as files, tar objects extracted). */
enum source_trait {
	SOURCE_TRAIT_SINGLE_FILE = 1 << 0, /* one file (redis, sqlite): restore --to FILE */
	SOURCE_TRAIT_DATABASE = 1 << 1,    /* restore --to-database, through restore_db */
	/* A backup of one object without a role holds every database (a
	 * mongodb deployment archive): restored whole, --database is the
	 * engine's to apply. */
	SOURCE_TRAIT_DB_WHOLE_ARCHIVE = 1 << 2,
};

/* restore --to-database: one object of a backup into a running server. */
struct source_restore_db {
	struct storage *st;
	const struct catalog_object *obj; /* the object chosen (restore_db.c) */
	const struct age_identities *ids;
	const char *target;   /* --to-database TARGET, the engine's own syntax */
	const char *database; /* --database NAME, or NULL */
	int globals;          /* --globals: the roles/users object */
	int clean;            /* --clean: replace what the target holds */
	int no_owner;         /* the roles are not there (a drill of a backup without
	                       * its globals): objects belong to the restoring user */
	int progress;
};

/* restore --to DIR: which entries of an archive to restore (kubernetes:
 * --namespace, --kind); NULL members select everything. */
struct source_restore_select {
	const char *ns;
	const char *kind;
};

struct source_ops {
	const char *type;
	/* Allocates the source's state. Errors: CF_ERR_NOMEM. */
	int (*create)(const char *name, void **state);
	/* Applies one config key. Errors: CF_ERR_CONFIG with a message saying what
	 * is wrong and what was expected; the caller prefixes file:line. */
	int (*set)(void *state, const char *key, const char *value);
	/* Checks the configuration is complete. Errors: CF_ERR_CONFIG. */
	int (*check)(void *state);
	/* Produces the backup's streams on run. Errors: CF_ERR_SOURCE (what failed,
	 * named), CF_ERR_INTERRUPTED, and whatever the streams' filters return. */
	int (*run)(void *state, struct backup_run *run);
	/* `coffer check`: reaches what run() would read (connects, finds the
	 * dump tool and its version) without storing anything, and appends one
	 * line saying what it found to detail. NULL: the type has no check.
	 * Errors: CF_ERR_SOURCE (what is wrong and what would fix it). */
	int (*probe)(void *state, struct buf *detail);
	void (*free)(void *state);

	/* Restore side: 0/NULL when the type has none. */
	unsigned traits; /* enum source_trait */
	/* Restores r->obj into r->target with the engine's client, refusing a
	 * target that holds data unless r->clean. Errors: CF_ERR_USAGE (a bad
	 * TARGET), CF_ERR_EXISTS (the target is not empty), CF_ERR_TARGET (the
	 * client failed, with its stderr), and the restore_stream_run() errors. */
	int (*restore_db)(const struct source_restore_db *r);
	/* 1 if the archive entry at path is selected by sel. Called in the
	 * extraction child process: no state, no I/O. */
	int (*restore_entry_pass)(const struct source_restore_select *sel, const char *path);
	/* Prints the restored files under dir on stdout, one path relative to
	 * dir a line, in the order to apply them. Errors: CF_ERR_IO. */
	int (*restore_print_order)(const char *dir);
	/* `verify --drill`: restores the backup d->b into a throwaway server
	 * it starts in d->dir and reports what it holds (drill.h). Errors:
	 * CF_ERR_TARGET (the server or the restore failed, with its output),
	 * the restore stream's, CF_ERR_INTERRUPTED. */
	int (*drill)(struct drill *d);
};

/* A configured source. strict and allow_empty are keys every source type
 * takes (config.c handles them, the type never sees them). */
struct source {
	char *name;
	const struct source_ops *ops;
	void *state;
	int strict;      /* anything that cannot be read fails the backup */
	int allow_empty; /* an object with no data at all is a good backup */
	/* "repositories = primary, eu": bit i for the config's targets[i];
	 * 0 (no key) for every repository. */
	unsigned long long target_mask;
	struct retention_keys retention; /* its retention keys (config.c) */
	/* Drills (drill.c): a restore slower than rto_target_ms fails (0: no
	 * target); a table that shrank by more than shrink_warn percent since
	 * the previous drill is flagged (default 50). */
	int64_t rto_target_ms;
	int shrink_warn;
	/* drill_target: an existing server the drill restores into (the
	 * engine's --to-database syntax) instead of one of its own. */
	char *drill_target;
	/* `coffer status`: a complete backup at least this often (0: not
	 * checked). */
	int64_t expect_every_ms;
	/* nice (1..19, 0: unchanged) and ionice (ioprio_set(2)'s encoding, 0:
	 * unchanged) of its dump processes (proc_child_priority()). */
	int nice, ioprio;
	/* Its own on_success / on_failure commands (notify.c), or NULL: [notify]'s. */
	char *on_success, *on_failure;
};

/* The implementation of a type, or NULL if there is none. */
const struct source_ops *source_registry_find(const char *type);
/* The known types, comma-separated, for error messages. */
const char *source_registry_types(void);
/* The types whose backups restore into a database, in registry order, as
 * "postgres, mysql and mongodb" (for error messages). */
const char *source_registry_db_types(void);

/* Parses true/false/yes/no/1/0. Errors: CF_ERR_CONFIG naming key. */
int source_parse_bool(const char *key, const char *value, int *out);
/* Pushes everything read from fd into head until EOF, checking for signals.
 * Errors: CF_ERR_SOURCE (read failed, names what), CF_ERR_INTERRUPTED, and
 * whatever the filters return. */
int source_copy_fd(struct backup_run *run, int fd, struct filter *head, const char *what);

/* Where a source's libarchive writer sends its tar stream: the open stream's
 * head (NULL once the stream is abandoned), and the pipeline's error, kept
 * across libarchive's return. */
struct source_tar_out {
	struct filter *head;
	int write_rc;
};
/* The write callback for archive_write_open2(); ctx is a struct source_tar_out. */
la_ssize_t source_tar_write(struct archive *a, void *ctx, const void *buf, size_t len);
/* The error of a failed libarchive call on the tar side: the pipeline's own
 * if it caused it, else CF_ERR_SOURCE "source NAME: cannot write the tar
 * stream (WHAT): libarchive's message". */
int source_tar_error(const struct source_tar_out *o, struct archive *a, const char *source,
                     const char *what);

extern const struct source_ops source_files_ops;
extern const struct source_ops source_command_ops;
extern const struct source_ops source_stdin_ops;
extern const struct source_ops source_postgres_ops;
extern const struct source_ops source_pgphys_ops;
extern const struct source_ops source_mysql_ops;
extern const struct source_ops source_redis_ops;
extern const struct source_ops source_sqlite_ops;
extern const struct source_ops source_mongodb_ops;
extern const struct source_ops source_kubernetes_ops;

#endif
