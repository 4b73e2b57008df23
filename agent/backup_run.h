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
	struct storage *storage;
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

/*
 * Throws away what run record rec stored, unless it is a backup: when its
 * folder holds a manifest (the commit point), nothing is deleted and
 * *complete is set. Otherwise deletes the objects rec lists (the run records
 * each one in the catalog before writing it) and the unfinished writes in
 * its folder, and nothing else; a prefix that is not "<source>/<id>/" is
 * refused. Only for a run that is over or known dead. Errors: CF_ERR_IO,
 * CF_ERR_STORAGE, CF_ERR_INTERNAL (a bad prefix).
 */
int backup_run_discard(struct storage *st, const struct catalog_backup *rec, int *complete);
/* Deletes the objects listed under a backup folder without a manifest
 * (cleanup of runs this host has no record of), checking before each
 * deletion that the folder still has no manifest; stops with CF_ERR_EXISTS
 * when one appears. Errors: CF_ERR_EXISTS, CF_ERR_IO, CF_ERR_STORAGE,
 * CF_ERR_INTERNAL (a bad prefix). */
int backup_run_remove_folder(struct storage *st, const char *prefix, unsigned *removed);

#endif
