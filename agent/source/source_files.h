/*
 * source_files: what the files source offers besides its source_ops
 * (source.h): a dry run of its walk, for `coffer backup --dry-run`.
 */
#ifndef COFFER_SOURCE_FILES_H
#define COFFER_SOURCE_FILES_H

#include "agent/source/source.h"

#include <archive_entry.h>

/*
 * Walks the paths of src, a files source, exactly as a backup does (the same
 * order, excludes, one_file_system, hard-link handling) and calls visit(ctx,
 * e) for each entry a backup would store, e's path as it would be stored;
 * no file data is read and nothing is written. A path that cannot be read
 * is a warning, counted in *missing. visit returns 0 or an error code,
 * which stops the walk. Errors: CF_ERR_USAGE (src is not a files source),
 * CF_ERR_SOURCE (a configured path cannot be read), CF_ERR_INTERRUPTED,
 * CF_ERR_NOMEM, and visit's.
 */
int source_files_dry_run(const struct source *src, int (*visit)(void *ctx, struct archive_entry *e),
                         void *ctx, uint64_t *missing);

#endif
