/*
 * restore_tar: extracting a tar object of a backup into a folder (restore
 * --to DIR), in a child process that has chdir'ed there, fed through the
 * restore stream (restore_stream.h).
 *
 * libarchive's disk writer is used with the secure flags (no "..", no
 * absolute paths, no writing through symlinks), times, permissions, ACLs,
 * file flags and xattrs, and owners when run as root. Every data write must
 * succeed (libarchive reports a failed write of file data as a mere
 * warning); metadata that cannot be set (an owner without root, an xattr the
 * filesystem refuses) is a warning, counted, and the restore goes on. The
 * stream is read to its end, so the parent checks the whole object.
 */
#ifndef COFFER_RESTORE_TAR_H
#define COFFER_RESTORE_TAR_H

#include "agent/pipeline/restore_stream.h"

/* Which entries to extract: those for which pass(ctx, path) is 1; all when
 * pass is NULL. pass runs in the child process: no state it changes is seen
 * by the parent. */
struct restore_tar_select {
	int (*pass)(const void *ctx, const char *path);
	const void *ctx;
};

/*
 * Restores obj, a tar stream, into the existing folder dir. Whose error wins
 * when both sides fail: a signal first (CF_ERR_INTERRUPTED), then a failure
 * of the stream itself (authentication, integrity, storage), then the
 * child's (a full disk, a damaged archive, an entry libarchive refuses); a
 * broken pipe is only the symptom of the child's. Errors: the
 * restore_stream_run() errors, CF_ERR_FORMAT (a damaged archive),
 * CF_ERR_INTEGRITY (an entry the secure flags refuse), CF_ERR_IO,
 * CF_ERR_NOSPACE, CF_ERR_NOMEM, CF_ERR_INTERNAL (the child died).
 */
int restore_tar_extract(struct storage *st, const struct catalog_object *obj,
                        const struct age_identities *ids, const char *dir, int progress,
                        const struct restore_tar_select *sel);

#endif
