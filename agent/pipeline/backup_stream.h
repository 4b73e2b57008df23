/*
 * backup_stream: the backup direction of the pipeline (the functions
 * sources call are declared in agent/pipeline.h); this header is shared by
 * backup_run.c and backup_stream.c only. A run holds the record being
 * written; each stream is one object built as
 *     plaintext -> [progress] -> zstd -||- age -> sha256/size -> storage
 * where -||- is a filter_thread (compression in the source's thread,
 * encryption, hashing and the storage write in a worker).
 */
#ifndef COFFER_BACKUP_STREAM_H
#define COFFER_BACKUP_STREAM_H

#include "agent/backup_run.h"

struct backup_run {
	const struct backup_run_params *params;
	const struct source *src;
	struct catalog_backup *rec;
	/* The open stream, if any. */
	struct filter *head;     /* where the source pushes plaintext */
	struct filter *progress; /* NULL off a terminal */
	struct filter *zstd;
	struct filter *hash;
	size_t obj_index;
	int stream_open;
	/* Targets (params->repos) that failed during this run: lost[i] is why,
	 * NULL while target i is fine. A lost target gets no more objects. */
	char **lost;
	struct filter *tee;    /* the open stream's tee (several targets), or NULL */
	size_t *branch_target; /* tee branch -> target index */
	size_t nbranches;
};

/* How many targets are still fine. */
size_t backup_stream_targets_left(const struct backup_run *run);

/* Abandons the open stream, if any: the storage sink at the end aborts its
 * write (nothing is left under the object's key). */
void backup_stream_abort(struct backup_run *run);

#endif
