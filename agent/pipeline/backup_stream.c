/*
 * backup_stream: opening, writing and closing one stored object of a backup
 * run (see backup_stream.h for the chain). The object is recorded in the
 * catalog before its first byte is written, so a run killed while writing
 * it leaves a record saying exactly what to remove.
 */
#include "agent/pipeline/backup_stream.h"
#include "agent/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers between compression and encryption: 1 MiB. */
#define BACKUP_THREAD_BUF (256 * 1024)
#define BACKUP_THREAD_BUFS 4

int backup_stream_set_meta(struct backup_run *run, const char *json_object)
{
	struct catalog_object *obj;
	char *m;

	if (!run->stream_open)
		return error_set(CF_ERR_INTERNAL, "stream metadata set while no stream is open");
	obj = &run->rec->objects[run->obj_index];
	m = strdup(json_object);
	if (!m)
		return error_set(CF_ERR_NOMEM, "out of memory");
	free(obj->meta_json);
	obj->meta_json = m;
	return 0;
}

/*
 * The end of an object's chain: its storage write in each target. With
 * several, a tee copies the age file to each (same bytes, so one SHA-256
 * covers every copy), each behind its own buffers so that a slow target
 * holds back the writer only once they are full; every target must take
 * the whole object.
 */
size_t backup_stream_targets_left(const struct backup_run *run)
{
	size_t n = 0;

	for (size_t i = 0; i < run->params->nrepos; i++)
		n += !run->lost || !run->lost[i];
	return n;
}

static int backup_stream_sinks(struct backup_run *run, const char *key, struct filter **out)
{
	const struct backup_run_params *p = run->params;
	struct filter **branch;
	size_t n = 0, nbufs = 0;
	int rc = 0;

	*out = NULL;
	run->tee = NULL;
	run->nbranches = 0;
	if (p->nrepos == 1) {
		struct storage_write *w = NULL;

		rc = storage_write_new(repo_storage(p->repos[0]), key, &w);
		return rc ? rc : storage_filter_new(w, out);
	}
	branch = calloc(p->nrepos, sizeof(*branch));
	if (!branch)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < p->nrepos; i++) {
		struct storage_write *w = NULL;

		if (run->lost[i])
			continue;
		rc = storage_write_new(repo_storage(p->repos[i]), key, &w);
		if (!rc)
			rc = storage_filter_new(w, &branch[n]);
		if (!rc) {
			run->branch_target[n++] = i;
		} else if (rc != CF_ERR_NOMEM && rc != CF_ERR_INTERNAL &&
		           rc != CF_ERR_INTERRUPTED) {
			/* A target that fails at the start of an object (an S3
			 * gateway that is down fails its first request here) is
			 * lost like one failing part-way. */
			log_warn("%s: writing %s to %s failed: %s", run->rec->id, key,
			         p->locations[i], error_message());
			run->lost[i] = strdup(error_message());
			rc = run->lost[i] ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
			error_clear();
		}
	}
	if (!rc && n < p->copies_required)
		for (size_t i = 0; !rc && i < p->nrepos; i++)
			if (run->lost[i])
				rc =
				    error_set(CF_ERR_STORAGE,
				              "only %zu of the %zu copies copies_required asks for "
				              "can be written; %s: %s",
				              n, p->copies_required, p->locations[i], run->lost[i]);
	/* Targets that upload from threads of their own (S3) need no thread
	 * in front: it would only copy every byte once more. */
	for (size_t i = 0; !rc && i < p->nrepos; i++)
		if (!run->lost[i] &&
		    !(storage_features(repo_storage(p->repos[i])) & STORAGE_FEATURE_ASYNC_WRITE))
			nbufs = BACKUP_THREAD_BUFS;
	if (!rc)
		rc = filter_tee_new(n, branch, p->copies_required, BACKUP_THREAD_BUF, nbufs, out);
	for (size_t i = 0; rc && i < n; i++)
		filter_chain_free(branch[i]);
	free(branch);
	if (!rc) {
		run->tee = *out;
		run->nbranches = n;
	}
	return rc;
}

/* After the tee finished: the targets whose branch failed are lost. */
static int backup_stream_note_lost(struct backup_run *run)
{
	for (size_t b = 0; run->tee && b < run->nbranches; b++) {
		size_t i = run->branch_target[b];

		if (!filter_tee_branch_error(run->tee, b) || run->lost[i])
			continue;
		run->lost[i] = strdup(filter_tee_branch_message(run->tee, b));
		if (!run->lost[i])
			return error_set(CF_ERR_NOMEM, "out of memory");
		log_warn("%s: writing %s to %s failed: %s", run->rec->id,
		         run->rec->objects[run->obj_index].name, run->params->locations[i],
		         run->lost[i]);
	}
	return 0;
}

int backup_stream_open(struct backup_run *run, const char *name, const char *format,
                       struct filter **head)
{
	const struct backup_run_params *p = run->params;
	struct catalog_object *obj;
	struct filter *age = NULL, *thr = NULL, *sink = NULL;
	char *key = NULL;
	int rc;

	if (run->stream_open)
		return error_set(CF_ERR_INTERNAL, "stream '%s' opened while another is open", name);
	if (!name_valid(name))
		return error_set(CF_ERR_INTERNAL, "bad stream name '%s'", name);
	for (size_t i = 0; i < run->rec->nobjects; i++)
		if (!strcmp(run->rec->objects[i].name, name))
			return error_set(CF_ERR_INTERNAL, "stream '%s' opened twice", name);

	rc = catalog_object_key(run->rec->prefix, name, format, &key);
	obj = rc ? NULL : catalog_backup_add_object(run->rec);
	if (!rc && !obj)
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc) {
		obj->name = strdup(name);
		obj->key = key;
		key = NULL;
		obj->format = strdup(format);
		obj->compression = strdup("zstd");
		obj->encryption = strdup("age");
		if (!obj->name || !obj->key || !obj->format || !obj->compression ||
		    !obj->encryption)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	free(key);
	/* The record lists the object before it is written, so a run killed
	 * while writing it leaves a record saying exactly what to remove. */
	if (!rc)
		rc = catalog_backup_put(p->catalog, run->rec);
	if (rc)
		return rc;
	run->obj_index = run->rec->nobjects - 1;

	/* Built from the storage end back to the head, so each new filter can be
	 * linked to the one after it and a failure frees exactly what exists. */
	rc = backup_stream_sinks(run, obj->key, &sink);
	if (!rc)
		rc = hash_filter_new(&run->hash);
	if (!rc) {
		run->hash->next = sink;
		sink = run->hash;
		rc = age_encrypt_filter_new(p->recipients, NULL, NULL, &age);
	}
	if (!rc) {
		age->next = sink;
		sink = age;
		/* Encryption, hashing and storage writes run in their own thread, so
		 * they overlap with reading the source and feeding zstd. */
		rc = filter_thread_new(BACKUP_THREAD_BUF, BACKUP_THREAD_BUFS, &thr);
	}
	if (!rc) {
		thr->next = sink;
		sink = thr;
		rc = zstd_filter_compress_new(p->cfg->zstd_level, p->cfg->zstd_workers, &run->zstd);
	}
	if (!rc) {
		run->zstd->next = sink;
		sink = run->zstd;
		if (p->progress) {
			char label[256];

			snprintf(label, sizeof(label), "%s/%s", run->rec->source, name);
			rc = progress_filter_new(label, &run->progress);
			if (!rc) {
				run->progress->next = sink;
				sink = run->progress;
			}
		}
	}
	if (rc) {
		filter_chain_free(sink);
		run->progress = run->zstd = run->hash = NULL;
		return rc;
	}
	run->head = sink;
	run->stream_open = 1;
	*head = run->head;
	log_debug("%s: writing %s", run->rec->id, obj->key);
	return 0;
}

void backup_stream_abort(struct backup_run *run)
{
	if (!run->stream_open)
		return;
	if (run->progress)
		progress_filter_done(run->progress);
	filter_chain_free(run->head);
	run->head = run->progress = run->zstd = run->hash = run->tee = NULL;
	run->stream_open = 0;
}

int backup_stream_close(struct backup_run *run)
{
	struct catalog_object *obj;
	char hex[HASH_SHA256_HEX_LEN + 1];
	int rc;

	if (!run->stream_open)
		return error_set(CF_ERR_INTERNAL, "no stream is open");
	obj = &run->rec->objects[run->obj_index];
	rc = filter_finish(run->head);
	if (!rc)
		rc = backup_stream_note_lost(run);
	if (rc) {
		backup_stream_abort(run);
		return rc;
	}
	obj->raw_bytes = run->zstd->bytes_in;
	hash_filter_result(run->hash, hex, &obj->stored_bytes);
	obj->sha256 = strdup(hex);
	if (run->progress)
		progress_filter_done(run->progress);
	filter_chain_free(run->head);
	run->head = run->progress = run->zstd = run->hash = run->tee = NULL;
	run->stream_open = 0;
	if (!obj->sha256)
		return error_set(CF_ERR_NOMEM, "out of memory");
	log_info("stored object %s (%s): %llu bytes, %llu stored", obj->name, obj->key,
	         (unsigned long long)obj->raw_bytes, (unsigned long long)obj->stored_bytes);
	return 0;
}
