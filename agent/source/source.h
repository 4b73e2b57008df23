/*
 * source: the interface every backup source implements (files, command, stdin;
 * later postgres, mysql, redis, sqlite, mongodb, kubernetes), and the registry
 * that maps a config "type = ..." to its implementation.
 *
 * A source is configured key by key from its [source NAME] section, checked
 * once all keys are in, and then run: it opens one or more streams on the
 * backup run (pipeline.h), pushes bytes into each and closes it. It never sees
 * compression, encryption or storage.
 */
#ifndef COFFER_SOURCE_H
#define COFFER_SOURCE_H

#include "common/common.h"

#include <archive.h>

struct backup_run;

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
	void (*free)(void *state);
};

/* A configured source. strict and allow_empty are keys every source type
 * takes (config.c handles them, the type never sees them). */
struct source {
	char *name;
	const struct source_ops *ops;
	void *state;
	int strict;      /* anything that cannot be read fails the backup */
	int allow_empty; /* an object with no data at all is a good backup */
};

/* The implementation of a type, or NULL if there is none. */
const struct source_ops *source_find(const char *type);
/* The known types, comma-separated, for error messages. */
const char *source_types(void);

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
extern const struct source_ops source_mysql_ops;
extern const struct source_ops source_redis_ops;
extern const struct source_ops source_sqlite_ops;
extern const struct source_ops source_mongodb_ops;
extern const struct source_ops source_kubernetes_ops;

#endif
