/*
 * pipeline: one backup run of one source, as the sources see it, and the
 * filters the agent adds to the chain (zstd, progress).
 *
 * A run holds the record being written to the catalog. A source opens a
 * stream (one stored object), pushes plaintext into the returned filter, and
 * closes it; the run builds the chain
 *     plaintext -> progress -> zstd -> age -> sha256/size -> storage object
 * and records each object's sizes and digest when it closes. The run itself
 * (start, manifest, completion, cleanup on failure) is driven by
 * backup_run.c; the streams are built in agent/pipeline/backup_stream.c,
 * the restore direction in agent/pipeline/restore_stream.c.
 */
#ifndef COFFER_PIPELINE_H
#define COFFER_PIPELINE_H

#include "common/common.h"

struct backup_run;

/*
 * Opens a new stream named name (unique within the run; [A-Za-z0-9._-]) whose
 * plaintext is in format ("raw", "tar", ...). Only one stream is open at a
 * time. *head receives the filter to push plaintext into; it stays owned by
 * the run. Errors: CF_ERR_INTERNAL (a stream is already open, bad name),
 * CF_ERR_EXISTS, CF_ERR_STORAGE, CF_ERR_IO, CF_ERR_NOMEM.
 */
int backup_stream_open(struct backup_run *run, const char *name, const char *format,
                       struct filter **head);
/*
 * Ends the open stream: flushes every filter, commits the object durably and
 * records its sizes and digest in the run. Errors: whatever a filter or the
 * storage commit returns; the object is then discarded.
 */
int backup_stream_close(struct backup_run *run);
/* Attaches metadata (a JSON object text, e.g. {"database":"app"}) to the
 * open stream's object in the manifest. Errors: CF_ERR_INTERNAL (no stream
 * is open), CF_ERR_NOMEM. */
int backup_stream_set_meta(struct backup_run *run, const char *json_object);
/* 1 once SIGINT or SIGTERM has been received; sources check it between reads. */
int backup_run_interrupted(const struct backup_run *run);
/* Attaches source-specific metadata (a JSON object text) to the record.
 * Errors: CF_ERR_NOMEM. */
int backup_run_set_meta(struct backup_run *run, const char *json_object);
/*
 * Records that something the source was asked to back up is not in the
 * backup (what: a path or a resource; why: the reason), with a warning. The
 * backup then completes as "partial" (listed, and a distinct exit status),
 * or fails at the end when the source says strict = true. Sources go on
 * after it. Errors: CF_ERR_NOMEM.
 */
int backup_run_add_missing(struct backup_run *run, const char *what, const char *why);
/* 1 if the source has strict = true: anything missing fails the backup (a
 * source may then fail at once instead of calling backup_run_add_missing). */
int backup_run_strict(const struct backup_run *run);

/* Compressing filter: zstd at level, with workers threads (0: single-threaded).
 * Errors: CF_ERR_COMPRESS, CF_ERR_NOMEM. */
int zstd_filter_compress_new(int level, int workers, struct filter **out);
/* Decompressing filter. Errors: CF_ERR_COMPRESS (corrupt or truncated frame,
 * reported at write or at finish), CF_ERR_NOMEM. */
int zstd_filter_decompress_new(struct filter **out);

/* A pass-through filter that redraws a one-line progress display on stderr
 * at most twice a second: what is read, the rate, the elapsed time. label is
 * copied. Errors: CF_ERR_NOMEM. */
int progress_filter_new(const char *label, struct filter **out);
/* Clears the progress line (call when the stream ends or fails). */
void progress_filter_done(struct filter *f);

#endif
