/*
 * source_pgphys: the postgres-physical source's settings that its WAL
 * commands (cmd_wal.c) and restore (restore_pitr.c) need.
 */
#ifndef COFFER_SOURCE_PGPHYS_H
#define COFFER_SOURCE_PGPHYS_H

#include "agent/source/source.h"

#include <stdint.h>

struct source_pgphys_wal {
	int async;               /* wal_async: wal-push queues into the spool */
	const char *spool;       /* wal_spool: the folder, or NULL (beside the catalog) */
	uint64_t spool_max;      /* wal_spool_max: bytes queued at most (1 GiB) */
	unsigned prefetch;       /* wal_prefetch: segments wal-fetch fetches ahead (8) */
	unsigned push_jobs;      /* wal_push_jobs: parallel uploads of the async pusher (4) */
	int64_t expect_every_ms; /* expect_wal_every: status fails past it (0: not checked) */
};

struct config;
/* The spool folder of src (wal_spool/<source>, or wal-spool/<source> beside
 * the catalog) into out. Errors: CF_ERR_CONFIG (too long). */
int source_pgphys_spool(const struct config *cfg, const struct source *src, char *out, size_t size);

/* src's WAL settings, or NULL if src is not a postgres-physical source. */
const struct source_pgphys_wal *source_pgphys_wal(const struct source *src);

#endif
