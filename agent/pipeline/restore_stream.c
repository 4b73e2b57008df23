/*
 * restore_stream: builds and drives the restore chain of one object
 * (restore_stream.h). It does not choose objects, open targets or judge
 * what a sink's failure means for the command.
 */
#include "agent/pipeline/restore_stream.h"
#include "agent/pipeline.h"

#include <stdio.h>
#include <string.h>

/* Buffers between the decrypting and the decompressing thread: 1 MiB. */
#define RESTORE_STREAM_THREAD_BUF (256 * 1024)
#define RESTORE_STREAM_THREAD_BUFS 4

static int restore_stream_push_cb(void *ctx, const uint8_t *data, size_t len)
{
	int rc = cancel_check();

	return rc ? rc : filter_write(ctx, data, len);
}

/* A missing, truncated or swapped object is refused before the first byte of
 * plaintext goes out. */
static int restore_stream_head(struct storage *st, const struct catalog_object *obj)
{
	struct storage_info info;
	int rc = storage_head(st, obj->key, &info);

	if (rc == CF_ERR_NOTFOUND)
		rc = error_set(CF_ERR_INTEGRITY, "%s is missing from %s", obj->key,
		               storage_describe(st));
	else if (!rc && info.size != obj->stored_bytes)
		rc = error_set(CF_ERR_INTEGRITY,
		               "%s has %llu bytes in %s, the manifest says %llu: it was truncated, "
		               "extended or replaced",
		               obj->key, (unsigned long long)info.size, storage_describe(st),
		               (unsigned long long)obj->stored_bytes);
	return rc;
}

/* The stored size and digest, then the plaintext size, against the manifest. */
static int restore_stream_verify(const struct catalog_object *obj, const struct filter *hash,
                                 const struct filter *zstd)
{
	char hex[HASH_SHA256_HEX_LEN + 1];
	uint64_t bytes = 0;

	hash_filter_result(hash, hex, &bytes);
	if (bytes != obj->stored_bytes || strcmp(hex, obj->sha256) != 0)
		return error_set(
		    CF_ERR_INTEGRITY,
		    "%s: stored object does not match its manifest (size %llu, expected "
		    "%llu; SHA-256 %.16s..., expected %.16s...)",
		    obj->key, (unsigned long long)bytes, (unsigned long long)obj->stored_bytes, hex,
		    obj->sha256);
	if (zstd->bytes_out != obj->raw_bytes)
		return error_set(
		    CF_ERR_INTEGRITY, "%s: restored %llu bytes, the manifest says %llu", obj->key,
		    (unsigned long long)zstd->bytes_out, (unsigned long long)obj->raw_bytes);
	return 0;
}

int restore_stream_run(struct storage *st, const struct catalog_object *obj,
                       const struct age_identities *ids, struct filter *sink, int progress)
{
	struct filter *hash = NULL, *age = NULL, *zstd = NULL, *prog = NULL, *thr = NULL;
	int rc;

	rc = restore_stream_head(st, obj);
	if (!rc)
		rc = hash_filter_new(&hash);
	if (!rc)
		rc = age_decrypt_filter_new(ids, &age);
	if (!rc)
		rc = zstd_filter_decompress_new(&zstd);
	if (!rc && progress)
		rc = progress_filter_new(obj->name, &prog);
	/* Decryption (with the hash) in this thread, decompression and writing in
	 * another: the two halves cost about the same, so restore uses two cores. */
	if (!rc) {
		zstd->next = sink;
		sink = NULL;
		rc = filter_thread_new(RESTORE_STREAM_THREAD_BUF, RESTORE_STREAM_THREAD_BUFS, &thr);
	}
	if (rc) {
		filter_chain_free(hash);
		filter_chain_free(age);
		filter_chain_free(zstd);
		filter_chain_free(prog);
		filter_chain_free(sink);
		return rc;
	}
	if (prog)
		filter_chain(hash, age, prog, thr, zstd, NULL);
	else
		filter_chain(hash, age, thr, zstd, NULL);
	rc = storage_read(st, obj->key, 0, UINT64_MAX, restore_stream_push_cb, hash);
	if (!rc)
		rc = filter_finish(hash);
	if (prog)
		progress_filter_done(prog);
	if (rc == CF_ERR_NOTFOUND)
		rc = error_set(CF_ERR_INTEGRITY, "%s: %s", obj->key, error_message());
	else if (rc && rc != CF_ERR_INTERRUPTED && rc != CF_ERR_IO && rc != CF_ERR_NOSPACE)
		error_set(rc, "%s: %s", obj->key, error_message());
	if (!rc)
		rc = restore_stream_verify(obj, hash, zstd);
	if (!rc)
		log_info(
		    "restored object %s (%s): %llu bytes, %llu stored, size and SHA-256 verified",
		    obj->name, obj->key, (unsigned long long)obj->raw_bytes,
		    (unsigned long long)obj->stored_bytes);
	filter_chain_free(hash);
	return rc;
}

int restore_stream_to_fd(struct storage *st, const struct catalog_object *obj,
                         const struct age_identities *ids, int fd, int progress)
{
	struct filter *sink;
	int rc = filter_fd_new(fd, "the restore target", &sink);

	return rc ? rc : restore_stream_run(st, obj, ids, sink, progress);
}

int restore_stream_to_child(struct storage *st, const struct catalog_object *obj,
                            const struct age_identities *ids, const struct proc_spec *spec,
                            int progress)
{
	struct proc_spec s = *spec;
	struct filter *sink;
	struct proc p;
	int rc, rc2;

	s.in = 1;
	s.errcode = CF_ERR_TARGET;
	rc = proc_start(&s, &p);
	if (rc)
		return rc;
	rc = proc_filter_new(&p, &sink);
	if (rc) {
		proc_release(&p);
		return rc;
	}
	rc = restore_stream_run(st, obj, ids, sink, progress);
	if (rc && rc != CF_ERR_TARGET) {
		/* Stop the client before it sees the end of its input as the end
		 * of a complete dump. */
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", error_message());
		proc_release(&p);
		return error_set(rc, "%s", msg);
	}
	rc2 = proc_finish(&p);
	proc_release(&p);
	return rc2 ? rc2 : rc;
}
