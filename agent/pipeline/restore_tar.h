/*
 * restore_tar: extracting a tar object of a backup into a folder (restore
 * --to DIR), in a child process that has chdir'ed there, fed through the
 * restore stream (restore_stream.h), or listing its entries (coffer ls)
 * the same way without writing them.
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

#include <archive_entry.h>

/* Which entries to extract or list: those for which pass(ctx, path) is 1;
 * all when pass is NULL. pass runs in the child process: what it changes is
 * lost, except the result_size bytes at result (e.g. flags it sets through
 * ctx), which the child copies back to the parent after reading the whole
 * stream successfully (at most RESTORE_TAR_RESULT_MAX bytes: more is
 * CF_ERR_USAGE). */
#define RESTORE_TAR_RESULT_MAX 32768 /* the most result_size may be */
struct restore_tar_select {
	int (*pass)(const void *ctx, const char *path);
	const void *ctx;
	void *result;
	size_t result_size;
	/* Listing only (verify): called in the child with the whole data of
	 * each regular file entry up to RESTORE_TAR_CONTENT_MAX bytes (a
	 * bigger one is read through without it); returns 0 or an error set
	 * with error_set(), which stops the listing. */
	int (*content)(const void *ctx, const char *path, const void *data, size_t len);
};
#define RESTORE_TAR_CONTENT_MAX (64 * 1024 * 1024)

/*
 * Path patterns (restore --include, ls PATH...): an entry is chosen when a
 * pattern matches its stored path or one of its parent folders, so a
 * pattern naming a folder chooses everything below it, as tar does.
 * fnmatch() semantics with '*' matching '/' too (tar's default); a leading
 * '/' or "./" and a trailing '/' of a pattern or a path are ignored.
 * matched (n flags, may be NULL) gets a 1 for each pattern that chose an
 * entry.
 */
struct restore_tar_patterns {
	char *const *v;
	size_t n;
	unsigned char *matched;
};

/* 1 if p chooses path (and marks the patterns that did), 0 if not. */
int restore_tar_patterns_pass(const struct restore_tar_patterns *p, const char *path);

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

/*
 * Reads obj, a tar stream, without writing anything: calls visit(sel->ctx,
 * e) in a child process for each entry that passes sel, reads its data
 * (each regular file must give the size its header says, else
 * CF_ERR_FORMAT; sel->content sees it), and checks the whole object like
 * restore_tar_extract.
 * visit may print to stdout (the child flushes it); it returns 0 or an
 * error code set with error_set(), which stops the listing. Errors: those
 * of restore_tar_extract, and visit's.
 */
int restore_tar_list(struct storage *st, const struct catalog_object *obj,
                     const struct age_identities *ids, int progress,
                     const struct restore_tar_select *sel,
                     int (*visit)(const void *ctx, struct archive_entry *e));

#endif
