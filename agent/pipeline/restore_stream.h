/*
 * restore_stream: one stored object of a backup back to its plaintext.
 *
 * The chain, built per object:
 *     storage_read -> sha256/size -> age decrypt -> [progress] -||-
 *         -> zstd decompress -> sink
 * where -||- is a filter_thread (decryption and hashing in the calling
 * thread, decompression and the sink in a worker). Before the first byte
 * reaches the sink the object is HEADed and its size compared with the
 * manifest, so a missing, truncated or extended object is refused while
 * nothing has been written (restore --stdout cannot take bytes back). After
 * the last byte the stored size and SHA-256 and the plaintext size are
 * compared with the manifest. The age STREAM authenticates each chunk, but
 * a sink sees plaintext before the end is known to be the end: treat what
 * it received as valid only once the call returned 0.
 *
 * It knows nothing about where the plaintext goes (a file, a pipe to a tar
 * extraction, a database client): callers give a sink. Memory is bounded by
 * the filters' buffers (one age chunk, zstd's window, the thread's 4 x
 * 256 KiB), never by the object's size. A cancellation (cancel_requested())
 * is seen between two reads from storage.
 */
#ifndef COFFER_RESTORE_STREAM_H
#define COFFER_RESTORE_STREAM_H

#include "agent/proc.h"
#include "catalog/catalog.h"
#include "common/common.h"
#include "crypto/crypto.h"
#include "storage/storage.h"

/*
 * Streams obj from st through the restore chain into sink, decrypting with
 * ids; progress != 0 draws a progress line on stderr. sink is a filter
 * chain the call takes over (freed on every path, finished on success).
 * Errors: CF_ERR_INTEGRITY (the object is missing, or its size, SHA-256 or
 * plaintext size differs from the manifest), CF_ERR_AGE_NOMATCH,
 * CF_ERR_AGE_HEADER, CF_ERR_AGE_HMAC, CF_ERR_AGE_PAYLOAD, CF_ERR_COMPRESS,
 * CF_ERR_STORAGE, CF_ERR_NOMEM, CF_ERR_INTERRUPTED, and whatever the sink
 * returns (CF_ERR_IO, CF_ERR_NOSPACE, CF_ERR_TARGET...). Every error but
 * the sink's I/O errors and CF_ERR_INTERRUPTED names obj->key.
 */
int restore_stream_run(struct storage *st, const struct catalog_object *obj,
                       const struct age_identities *ids, struct filter *sink, int progress);

/* The same into the file descriptor fd (written, not closed). */
int restore_stream_to_fd(struct storage *st, const struct catalog_object *obj,
                         const struct age_identities *ids, int fd, int progress);

/*
 * Starts the child spec describes with its stdin a pipe (spec->in and
 * spec->errcode are set to 1 and CF_ERR_TARGET), streams obj into it and
 * waits for it. The child's own failure (exit status, stderr) wins over the
 * broken pipe it causes; when the stream fails first, the child is stopped
 * before it can see the end of its input as the end of a complete dump.
 * Each line of the child's stderr is said once (proc.h): in the error when
 * the child fails, else as a warning.
 * Errors: CF_ERR_TARGET (the child failed), and the restore_stream_run()
 * errors.
 */
int restore_stream_to_child(struct storage *st, const struct catalog_object *obj,
                            const struct age_identities *ids, const struct proc_spec *spec,
                            int progress);

#endif
