/*
 * backup_run: running one source into the repository (what cmd_backup uses;
 * sources see only pipeline.h).
 */
#ifndef COFFER_BACKUP_RUN_H
#define COFFER_BACKUP_RUN_H

#include "agent/agent.h"
#include "agent/pipeline.h"

struct backup_run_params {
	const struct config *cfg;
	/* The targets to write to, in config order (repos[0] the primary): each
	 * object is written to all in one pass, each manifest after that
	 * target's objects; the backup is complete when copies_required of them hold it. */
	struct repo *const *repos;
	/* Each target's location, and why it could not be opened (repos[i] is
	 * then NULL) or NULL: such a target is a lost copy from the start. */
	const char *const *locations;
	const char *const *unavailable;
	size_t nrepos;
	size_t copies_required; /* how many of them must hold it (1..nrepos) */
	struct catalog *catalog;
	const struct age_recipients *recipients;
	const struct sign_key *sign; /* signs each manifest */
	int progress;                /* show progress on stderr */
};

/*
 * Backs up one source: records a running backup, runs the source through the
 * pipeline, writes the manifest and marks the record complete; on any failure
 * removes the run's objects and records it as failed with the error. kind is
 * the source type recorded ("files", "command", "stdin"). *result receives the
 * final record (also on failure, unless the run could not even start), to be
 * freed by the caller. Errors: whatever failed, with its message recorded.
 */
int backup_run_source(const struct backup_run_params *params, const struct source *src,
                      const char *kind, struct catalog_backup **result);

#endif
