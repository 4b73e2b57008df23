/*
 * backup_run: one backup of one source, from the catalog's "running" record
 * to a manifest in the repository and a "complete" record, or to a "failed"
 * record with every object of the run removed.
 *
 * The order is what makes a backup trustworthy: data objects are committed
 * durably first, the manifest last, the catalog record is marked complete only
 * after the manifest is stored. A run that dies anywhere before that leaves
 * no manifest, and a backup without a manifest is incomplete by definition.
 */
#include "agent/backup_run.h"
#include "agent/proc.h"
#include "agent/pipeline/backup_stream.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int backup_run_interrupted(const struct backup_run *run)
{
	(void)run;
	return cancel_requested();
}

int backup_run_set_meta(struct backup_run *run, const char *json_object)
{
	char *m = strdup(json_object);

	if (!m)
		return error_set(CF_ERR_NOMEM, "out of memory");
	free(run->rec->meta_json);
	run->rec->meta_json = m;
	return 0;
}

int backup_run_add_missing(struct backup_run *run, const char *what, const char *why)
{
	struct catalog_backup *rec = run->rec;
	struct buf item;
	int rc = 0;

	log_warn("source %s: %s: %s; it is not in the backup", rec->source, what, why);
	rec->missing_count++;
	if (rec->missing.n >= CATALOG_MISSING_MAX)
		return 0;
	buf_init(&item, 8192);
	if (buf_printf(&item, "%s: %s", what, why) == CF_ERR_NOMEM)
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	else if (item.data)
		rc = strv_add(&rec->missing, (char *)item.data);
	buf_free(&item);
	return rc;
}

int backup_run_strict(const struct backup_run *run)
{
	return run->src->strict;
}

/* Checks what the source produced before the manifest makes it a backup: no
 * object without data (a dump that printed nothing is a misconfigured dump,
 * unless allow_empty), nothing missing under strict. */
static int backup_run_check_result(const struct backup_run *run)
{
	const struct catalog_backup *rec = run->rec;

	if (rec->nobjects == 0)
		return error_set(CF_ERR_SOURCE, "source %s produced no data", rec->source);
	for (size_t i = 0; !run->src->allow_empty && i < rec->nobjects; i++)
		if (rec->objects[i].raw_bytes == 0)
			return error_set(
			    CF_ERR_SOURCE,
			    "source %s produced no output for %s (0 bytes); if that is "
			    "expected, %s%s%s",
			    rec->source, rec->objects[i].name,
			    strcmp(rec->kind, "stdin") ? "set allow_empty = true in [source "
			                               : "add --allow-empty",
			    strcmp(rec->kind, "stdin") ? rec->source : "",
			    strcmp(rec->kind, "stdin") ? "]" : "");
	if (run->src->strict && rec->missing_count)
		return error_set(
		    CF_ERR_SOURCE,
		    "source %s: %llu item(s) could not be backed up and strict = true; "
		    "the first: %s",
		    rec->source, (unsigned long long)rec->missing_count,
		    rec->missing.n ? rec->missing.v[0] : "?");
	return 0;
}

static int backup_run_start(struct backup_run *run, const struct source *src, const char *kind)
{
	const struct backup_run_params *p = run->params;
	struct catalog_backup *rec;
	char id[BACKUP_ID_LEN + 1], host[256];
	int rc = 0;

	rec = catalog_backup_new();
	if (!rec)
		return error_set(CF_ERR_NOMEM, "out of memory");
	run->rec = rec;
	rec->started_ms = time_now_ms();
	backup_id_format(rec->started_ms, randombytes_random(), id);
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	rc = repo_backup_prefix(src->name, id, &rec->prefix);
	rec->id = strdup(id);
	rec->source = strdup(src->name);
	rec->kind = strdup(kind);
	rec->host = strdup(host);
	rec->coffer_version = strdup(COFFER_VERSION);
	rec->status = CATALOG_RUNNING;
	rec->pid = (int)getpid();
	if (!rc && (!rec->id || !rec->source || !rec->kind || !rec->host || !rec->coffer_version))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < p->cfg->recipients.n; i++) {
		char fp[AGE_FINGERPRINT_LEN + 1];

		rc = age_recipient_fingerprint(p->cfg->recipients.v[i], fp);
		if (!rc)
			rc = strv_add(&rec->recipients, fp);
	}
	for (size_t i = 0; !rc && i < p->nrepos; i++)
		rc = strv_add(&rec->locations, p->locations[i]);
	if (!rc)
		rc = catalog_backup_put(p->catalog, rec);
	return rc;
}

/* Takes loc out of the record's locations (if there). */
static void backup_run_drop_location(struct catalog_backup *rec, const char *loc)
{
	for (size_t k = 0; k < rec->locations.n; k++)
		if (!strcmp(rec->locations.v[k], loc)) {
			free(rec->locations.v[k]);
			memmove(&rec->locations.v[k], &rec->locations.v[k + 1],
			        (rec->locations.n - k) * sizeof(char *));
			rec->locations.n--;
			return;
		}
}

static void backup_run_free_targets(struct backup_run *run)
{
	for (size_t i = 0; run->lost && i < run->params->nrepos; i++)
		free(run->lost[i]);
	free(run->lost);
	free(run->branch_target);
	run->lost = NULL;
	run->branch_target = NULL;
}

/*
 * Once every target that is still fine holds the manifest: the backup is
 * complete if they are at least copies_required. Each lost target's
 * objects are removed there and it becomes a pending copy of the record
 * (for `coffer replicate`); its location leaves the record. Fewer than
 * copies_required fails the backup, naming why each target was lost.
 */
static int backup_run_settle_copies(struct backup_run *run)
{
	const struct backup_run_params *p = run->params;
	size_t left = backup_stream_targets_left(run);
	int rc = 0;

	if (left == p->nrepos)
		return 0;
	if (left < p->copies_required) {
		for (size_t i = 0; i < p->nrepos; i++)
			if (run->lost[i])
				return error_set(
				    CF_ERR_STORAGE,
				    "only %zu of the %zu copies copies_required asks for "
				    "were written; %s: %s",
				    left, p->copies_required, p->locations[i], run->lost[i]);
	}
	for (size_t i = 0; !rc && i < p->nrepos; i++) {
		const char *loc = p->locations[i];
		int c = 0;

		if (!run->lost[i])
			continue;
		cancel_cleanup_begin();
		if (p->repos[i] && repo_discard_run(p->repos[i], run->rec, &c))
			log_warn("could not remove the objects of %s in %s: %s (run 'coffer repo "
			         "cleanup' there later)",
			         run->rec->id, loc, error_message());
		cancel_cleanup_end();
		error_clear();
		rc = catalog_backup_add_pending(run->rec, loc, run->lost[i], time_now_ms());
		if (!rc)
			backup_run_drop_location(run->rec, loc);
		if (!rc)
			log_warn("backup %s is complete in %zu of %zu repositories; its copy in %s "
			         "is pending (%s): 'coffer replicate %s' makes it",
			         run->rec->id, left, p->nrepos, loc, run->lost[i], run->rec->id);
	}
	return rc;
}

/*
 * Throws away what a failed run stored in every target. Returns 1 when every
 * target holds the manifest after all (its write reported a failure, but a
 * reply was lost on the way back), or at least copies_required of them do,
 * so the backup is complete; otherwise a target that holds one is not left
 * looking complete alone: its backup is deleted, manifest first.
 */
static int backup_run_discard(const struct backup_run_params *p, struct catalog_backup *rec)
{
	size_t ncomplete = 0;
	int *complete = calloc(p->nrepos, sizeof(*complete)), enough;

	for (size_t i = 0; i < p->nrepos; i++) {
		int c = 0;

		if (!p->repos[i])
			continue;
		if (repo_discard_run(p->repos[i], rec, &c))
			log_warn("could not remove the objects of failed backup %s in %s: %s (run "
			         "'coffer repo cleanup' later)",
			         rec->id, p->locations[i], error_message());
		if (complete)
			complete[i] = c;
		ncomplete += c != 0;
	}
	/* A failure after enough manifests were stored (copies_required met)
	 * leaves a complete backup: a good copy is never deleted. */
	enough = ncomplete == p->nrepos || (ncomplete > 0 && ncomplete >= p->copies_required);
	if (enough || !complete) {
		free(complete);
		return enough;
	}
	for (size_t i = 0; i < p->nrepos; i++)
		if (complete[i] && repo_delete_backup(p->repos[i], rec))
			log_warn("backup %s failed, but its copy in %s could not be deleted: %s",
			         rec->id, p->locations[i], error_message());
	free(complete);
	return 0;
}

int backup_run_source(const struct backup_run_params *params, const struct source *src,
                      const char *kind, struct catalog_backup **result)
{
	struct backup_run run;
	char msg[1024];
	int rc, rc2, complete = 0;

	memset(&run, 0, sizeof(run));
	run.params = params;
	run.src = src;
	run.lost = calloc(params->nrepos, sizeof(*run.lost));
	run.branch_target = calloc(params->nrepos, sizeof(*run.branch_target));
	rc = run.lost && run.branch_target ? backup_run_start(&run, src, kind)
	                                   : error_set(CF_ERR_NOMEM, "out of memory");
	if (rc) {
		backup_run_free_targets(&run);
		catalog_backup_free(run.rec);
		return rc;
	}
	/* Every line logged from here to the end of the run names it. */
	log_context_set(src->name, run.rec->id);
	/* A target that could not be opened is a copy lost from the start;
	 * too few left fails the run before it reads anything. */
	for (size_t i = 0; !rc && params->unavailable && i < params->nrepos; i++)
		if (params->unavailable[i] && !(run.lost[i] = strdup(params->unavailable[i])))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && backup_stream_targets_left(&run) < params->copies_required)
		rc = backup_run_settle_copies(&run);
	if (!rc) {
		/* Its dump processes at the source's nice and ionice. */
		proc_child_priority(src->nice, src->ioprio);
		rc = src->ops->run(src->state, &run);
		proc_child_priority(0, 0);
	}
	if (!rc && run.stream_open)
		rc = error_set(CF_ERR_INTERNAL, "source %s left a stream open", src->name);
	if (!rc)
		rc = backup_run_check_result(&run);
	if (!rc)
		rc = cancel_check();
	if (!rc)
		rc = fault_point("before-manifest");
	if (!rc)
		run.rec->finished_ms = time_now_ms();
	/* Each target's manifest once all its objects are durable (the tee
	 * finished them all); a target that fails here is lost like one that
	 * failed an object. The manifests list the targets that hold every
	 * object, not those lost on the way. */
	for (size_t i = 0; !rc && i < params->nrepos; i++)
		if (run.lost[i])
			backup_run_drop_location(run.rec, params->locations[i]);
	for (size_t i = 0; !rc && i < params->nrepos; i++) {
		if (run.lost[i])
			continue;
		rc = repo_write_manifest(params->repos[i], run.rec, params->sign);
		if (rc && params->nrepos > 1) {
			log_warn("%s: writing its manifest to %s failed: %s", run.rec->id,
			         params->locations[i], error_message());
			run.lost[i] = strdup(error_message());
			rc = run.lost[i] ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
		}
	}
	if (!rc)
		rc = backup_run_settle_copies(&run);
	if (rc) {
		/* Keep the message of the failure: cleaning up may set others. */
		snprintf(msg, sizeof(msg), "%s",
		         error_message()[0] ? error_message() : cf_strerror(rc));
		backup_stream_abort(&run);
		/* Done even when cancelled (one short attempt per request then), so
		 * an interrupted run leaves nothing behind when it can. */
		cancel_cleanup_begin();
		complete = backup_run_discard(params, run.rec);
		cancel_cleanup_end();
		if (complete) {
			/* The manifest was stored although its write reported a
			 * failure (a reply lost on the way back): the manifest is the
			 * commit point, so the backup is complete. */
			log_warn(
			    "backup %s: %s; but its manifest is stored, so the backup is complete",
			    run.rec->id, msg);
			rc = 0;
		}
	}
	if (rc) {
		run.rec->status = CATALOG_FAILED;
		run.rec->finished_ms = time_now_ms();
		free(run.rec->error);
		run.rec->error = strdup(msg);
		if (catalog_backup_put(params->catalog, run.rec))
			log_warn("could not record the failure of %s in the catalog: %s",
			         run.rec->id, error_message());
		error_set(rc, "%s", msg);
	} else {
		run.rec->status = CATALOG_COMPLETE;
		rc2 = fault_point("after-manifest");
		if (!rc2)
			rc2 = fault_point("complete-record");
		if (!rc2)
			rc2 = catalog_backup_put(params->catalog, run.rec);
		if (rc2)
			rc = error_set(
			    rc2,
			    "backup %s is complete in the repository but the catalog could not "
			    "record it (%s); the next coffer command records it",
			    run.rec->id, error_message());
	}
	backup_run_free_targets(&run);
	log_context_set(NULL, NULL);
	*result = run.rec;
	return rc;
}
