/*
 * storage: where backup objects live. One interface, several drivers behind a
 * vtable (storage_intern.h): "posix" (a local directory) and "s3" (any S3
 * API: AWS, Ceph RGW, MinIO).
 *
 * The contract every driver keeps:
 * - Objects are written once and never rewritten: a write creates a new object
 *   and fails with CF_ERR_EXISTS if the key is already there.
 * - A write is a stream: storage_write_new(), any number of storage_write_data(),
 *   then storage_write_commit(), which returns only once the object is durable
 *   and visible under its key. Until commit, nothing is visible under the key;
 *   storage_write_abort() (or a crash) leaves no object under the key.
 * - Keys are relative, '/'-separated, without "." or ".." parts or a leading '/'.
 *   Every function that takes a key fails with CF_ERR_STORAGE (naming the
 *   key) if storage_key_valid() rejects it; no driver ever sees such a key.
 *
 * It does not know about backups, manifests, encryption or compression.
 */
#ifndef COFFER_STORAGE_H
#define COFFER_STORAGE_H

#include "common/common.h"

#include <stdint.h>

/* Driver feature flags (storage_features()). */
#define STORAGE_FEATURE_RANGE 0x1 /* reads can start at an offset */
#define STORAGE_FEATURE_PATHS 0x2 /* keys map to local file paths */
/* writes queue the data for the driver's own threads: a write returns at
 * memory speed until the driver's bounded buffers are full */
#define STORAGE_FEATURE_ASYNC_WRITE 0x4

/* The longest key storage_key_valid() accepts, in bytes. */
#define STORAGE_KEY_MAX 1024

/* Options of the posix driver. */
struct storage_posix_options {
	const char *path; /* the repository directory (must exist) */
};

/* Options of the s3 driver. Zero means "the default" for the numbers. */
struct storage_s3_options {
	const char *endpoint; /* "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:7480" */
	const char *region;   /* "us-east-1" */
	const char *bucket;
	const char *prefix;     /* key prefix inside the bucket, "" for none */
	const char *access_key; /* NULL: the credential chain (environment, files, ...) */
	const char *secret_key;
	int virtual_style;         /* 1: bucket.host/key, 0: host/bucket/key (path style) */
	const char *storage_class; /* NULL: the bucket's default */
	const char *ca_file;
	int insecure_tls;             /* 1: do not verify the server's certificate */
	uint64_t part_size;           /* first multipart part size (default 16 MiB) */
	int upload_concurrency;       /* parts in flight (default 4) */
	int download_concurrency;     /* ranged GETs in flight (default 4) */
	int max_attempts;             /* tries per request (default 8) */
	int timeout_s;                /* connect timeout and stall limit (default 30 s) */
	uint64_t max_upload_rate;     /* bytes/s over the parts in flight; 0: no limit */
	uint64_t max_download_rate;   /* bytes/s over the ranged GETs in flight; 0: no limit */
	const char *object_lock_mode; /* "GOVERNANCE", "COMPLIANCE" or NULL */
	int object_lock_days;
	const char *sts_endpoint; /* credential chain overrides (tests) */
	const char *imds_endpoint;
};

/* Options for storage_open(): the driver's name and its own typed options
 * (the driver reads only its member). */
struct storage_options {
	const char *type; /* "posix" (the default) or "s3" */
	struct storage_posix_options posix;
	struct storage_s3_options s3;
};

struct storage;
struct storage_write;

struct storage_info {
	uint64_t size;
	int64_t mtime_ms;
	/* storage_head() only: the object may not be deleted before this time
	 * (S3 object lock, x-amz-object-lock-retain-until-date); 0 when it is
	 * not locked or the driver has no locks. */
	int64_t retain_until_ms;
};

/*
 * Opens a repository. posix: path must be an existing directory.
 * Errors: CF_ERR_CONFIG (unknown type, missing option), CF_ERR_NOTFOUND
 * (repository directory missing), CF_ERR_IO, CF_ERR_NOMEM.
 */
int storage_open(const struct storage_options *opts, struct storage **out);
void storage_free(struct storage *s);
uint32_t storage_features(const struct storage *s);
/* A printable description of the repository ("posix:/srv/coffer-repo"). It
 * is also the repository's identity in the catalog (a record's locations). */
const char *storage_describe(const struct storage *s);
/* What storage_describe() would give for opts, without opening anything (no
 * network, no credentials): for telling which catalog records belong to a
 * configuration. *out is malloc'ed. Errors: CF_ERR_CONFIG, CF_ERR_NOMEM. */
int storage_location(const struct storage_options *opts, char **out);

/* Starts writing a new object. Errors: CF_ERR_EXISTS, CF_ERR_IO, CF_ERR_NOSPACE,
 * CF_ERR_STORAGE, CF_ERR_NOMEM. */
int storage_write_new(struct storage *s, const char *key, struct storage_write **out);
/* Flags for storage_write_new_ex(). */
#define STORAGE_WRITE_SAME_OK 0x1 /* an existing object with the very same bytes is success */
/* What storage_write_commit() returns for a STORAGE_WRITE_SAME_OK write whose
 * key already held exactly these bytes (a re-pushed WAL segment). */
#define STORAGE_WRITE_SAME 1

/*
 * Copies object key (size bytes) of src into dst under the same key inside
 * the service, without its bytes passing through this host: S3 buckets on
 * one endpoint (CopyObject, or UploadPartCopy parts). Write-once like a
 * write: an existing key is CF_ERR_EXISTS; on failure nothing is left in dst.
 * The caller checks the copy (read it back) if it must. Errors:
 * CF_ERR_UNSUPPORTED (other drivers, or other endpoints), CF_ERR_EXISTS,
 * CF_ERR_NOTFOUND (no such object in src), storage errors.
 */
int storage_copy(struct storage *dst, struct storage *src, const char *key, uint64_t size);

/* storage_write_new() with flags. With STORAGE_WRITE_SAME_OK the written
 * bytes are hashed as they pass, and a commit that finds the key taken reads
 * the existing object back: the same size and SHA-256 gives
 * STORAGE_WRITE_SAME, different content CF_ERR_EXISTS. */
int storage_write_new_ex(struct storage *s, const char *key, unsigned flags,
                         struct storage_write **out);
/* Appends data. Errors: CF_ERR_IO, CF_ERR_NOSPACE, CF_ERR_STORAGE.
 * After a failed write_data, the only calls allowed are commit (which then
 * fails with that error, storing nothing) and abort. */
int storage_write_data(struct storage_write *w, const void *data, size_t len);
/* Makes the object durable and visible, then frees w (also on failure).
 * Errors: CF_ERR_EXISTS (someone else created the key), CF_ERR_IO,
 * CF_ERR_NOSPACE, CF_ERR_STORAGE. */
int storage_write_commit(struct storage_write *w);
/* Discards a write in progress and frees w. NULL does nothing. */
void storage_write_abort(struct storage_write *w);

/*
 * A sink filter that writes its input into w. The filter owns w: filter_finish()
 * commits it, freeing the filter without a successful finish aborts it.
 * Errors: CF_ERR_NOMEM (w is then aborted).
 */
int storage_filter_new(struct storage_write *w, struct filter **out);

/* Receives object data in order. A non-zero return stops the read and is
 * returned by storage_read(). */
typedef int (*storage_read_cb)(void *ctx, const uint8_t *data, size_t len);

/*
 * Reads an object from offset, length bytes (UINT64_MAX: to the end), passing
 * it to cb in chunks of at most 1 MiB. A range reaching past the end of the
 * object gives only the bytes that exist (none if offset is past the end);
 * the caller counts what it got. Errors: CF_ERR_NOTFOUND, CF_ERR_IO,
 * CF_ERR_STORAGE, and whatever cb returns.
 */
int storage_read(struct storage *s, const char *key, uint64_t offset, uint64_t length,
                 storage_read_cb cb, void *ctx);

/* Reads a whole small object into out (at most max bytes); out is initialised
 * here, NUL-terminated, and the caller buf_free()s it (it is already freed on
 * failure). Errors: as storage_read(), CF_ERR_LIMIT, CF_ERR_NOMEM. */
int storage_read_all(struct storage *s, const char *key, size_t max, struct buf *out);

/* Receives one key (relative to the repository) with its size and mtime.
 * A non-zero return stops the listing and is returned by storage_list(). */
typedef int (*storage_list_cb)(void *ctx, const char *key, const struct storage_info *info);

/*
 * Lists every object whose key starts with prefix ("" lists everything),
 * recursively, in lexical key order (byte-wise strcmp() order of whole keys).
 * prefix is a plain string prefix, not a directory: "src/2026" lists
 * "src/20261122T091046.123Z-1a2b3c4d/x". Writes in progress are not listed.
 * A malformed prefix (a leading '/', an empty, "." or ".." part before the
 * last '/') fails with CF_ERR_STORAGE.
 * Errors: CF_ERR_IO, CF_ERR_STORAGE, and whatever cb returns.
 */
int storage_list(struct storage *s, const char *prefix, storage_list_cb cb, void *ctx);

/* Size and mtime of an object. Errors: CF_ERR_NOTFOUND, CF_ERR_IO, CF_ERR_STORAGE. */
int storage_head(struct storage *s, const char *key, struct storage_info *info);

/* Deletes an object; deleting a missing key succeeds. posix also removes the
 * directories the deletion left empty. Errors: CF_ERR_IO, CF_ERR_STORAGE. */
int storage_delete(struct storage *s, const char *key);
/* Deletes n objects, in batches where the driver can (S3 DeleteObjects, up to
 * 1000 keys a request), in the order given as far as batches allow (a batch
 * ends before the next starts). Missing keys succeed. On failure, some of the
 * keys may be deleted; the error names the first key that was not.
 * Errors: CF_ERR_IO, CF_ERR_STORAGE, CF_ERR_INTERRUPTED. */
int storage_delete_many(struct storage *s, const char *const *keys, size_t n);

/*
 * Removes leftovers of interrupted writes (a posix temporary file, an S3
 * multipart upload) older than older_than_ms milliseconds, and reports how
 * many were removed. Errors: CF_ERR_IO, CF_ERR_STORAGE.
 */
int storage_cleanup(struct storage *s, int64_t older_than_ms, int64_t now_ms, unsigned *removed);
/* The same for the keys under prefix only: with older_than_ms 0, what a run
 * known to be dead left under its backup's prefix goes at once (a posix
 * temporary file still locked by a live writer is never removed; an S3
 * upload is, so call it only for a run that cannot be writing). */
int storage_cleanup_prefix(struct storage *s, const char *prefix, int64_t older_than_ms,
                           int64_t now_ms, unsigned *removed);

/* 1 if key is a well-formed object key (see the contract above), else 0. */
int storage_key_valid(const char *key);

#endif
