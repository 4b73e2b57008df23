/*
 * cmd_prune: `coffer prune [--dry-run] [--source S] [--target R] [--json]`.
 * For each source (configured, or only in the catalog) and each repository
 * it uses, applies its retention policy (retention.c) to the catalog's
 * records of that copy, prints every backup with keep or remove and the
 * rules that kept it, and (without --dry-run) deletes what it removes:
 * complete backups through repo_prune_backup() (crash-safe, object lock
 * respected), records of failed runs from the catalog. Deletions an
 * interrupted prune began are finished first. A deletion that fails is
 * reported and the others go on; the exit status then says so.
 */
#include "agent/agent.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_PRUNE_USAGE "usage: coffer prune [--dry-run] [--source S] [--target REPOSITORY]"

/* One record of the source being planned. */
struct prune_rec {
	char id[BACKUP_ID_LEN + 1];
	int64_t started_ms;
	enum catalog_status status;
	uint64_t stored;
	uint64_t at;       /* bit t: the record holds a copy in target t */
	uint64_t deleting; /* bit t: a prune has begun deleting that copy */
	int failed_at;     /* failed/running: listed under this target only */
};

/* What one plan (a source in a target) did. */
struct prune_count {
	unsigned remove, deleted, records, locked, failed;
	uint64_t remove_bytes, deleted_bytes;
};

struct prune {
	const struct config *cfg;
	struct catalog *cat;
	int dry_run;
	int json;                /* --json: printed as it goes (a long history is not held) */
	int nplans;              /* plans printed so far (--json) */
	struct agent_targets tg; /* repositories opened at their first deletion */
	struct prune_rec *recs;
	size_t n, cap;
	struct prune_count total;
	int first_rc;        /* the first failed deletion */
	char first_err[512]; /* and its message */
};

static int prune_collect(void *ctx, const struct catalog_summary *b)
{
	struct prune *p = ctx;
	struct prune_rec *r;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		struct prune_rec *v = realloc(p->recs, cap * sizeof(*v));

		if (!v)
			return error_set(CF_ERR_NOMEM, "out of memory");
		p->recs = v;
		p->cap = cap;
	}
	r = &p->recs[p->n];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", b->id);
	r->started_ms = b->started_ms;
	r->status = b->status;
	r->stored = b->stored_bytes;
	for (size_t t = 0; t < p->cfg->ntargets; t++) {
		if (strv_has(&b->locations, p->tg.locs[t]))
			r->at |= 1ULL << t;
		if (strv_has(&b->deleting, p->tg.locs[t]))
			r->deleting |= 1ULL << t;
	}
	p->n++;
	return 0;
}

/* The policy's keys as text: "keep_daily 7, keep_monthly 12, min_keep 1". */
static void prune_policy_text(const struct retention_policy *pol, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (int r = 0; r < RETENTION_NRULES; r++)
		if (pol->keep[r] && len < size)
			len += (size_t)snprintf(out + len, size - len, "%s %u, ",
			                        retention_rule_keys[r], pol->keep[r]);
	if (pol->keep_within_ms && len < size)
		len += (size_t)snprintf(out + len, size - len, "keep_within %llds, ",
		                        (long long)(pol->keep_within_ms / 1000));
	if (len < size)
		snprintf(out + len, size - len, "min_keep %u, timezone %s", pol->min_keep,
		         pol->timezone ? pol->timezone : "of the host");
}

/* Records a failed deletion: the message goes to stderr now, the first one
 * is the command's error at the end. Cancellation stops the prune. */
static int prune_failed(struct prune *p, struct prune_count *c, int rc, char *detail, size_t size)
{
	snprintf(detail, size, "failed: %s", error_message());
	if (rc == CF_ERR_INTERRUPTED || rc == CF_ERR_NOMEM || rc == CF_ERR_CATALOG)
		return rc;
	log_error("%s", error_message());
	if (!p->first_rc) {
		p->first_rc = rc;
		snprintf(p->first_err, sizeof(p->first_err), "%s", error_message());
	}
	error_clear();
	c->failed++;
	return 0;
}

/* Deletes record r's copy in target t (a complete backup) or its record (a
 * failed run), filling detail. A failure is counted, not returned. */
static int prune_delete(struct prune *p, const struct prune_rec *r, size_t t, struct prune_count *c,
                        char *detail, size_t size)
{
	struct repo_prune_result res;
	struct catalog_backup *b = NULL;
	struct repo *repo = NULL;
	char until[TIME_ISO_LEN + 1];
	int rc, again = 0;

	if (r->status != CATALOG_COMPLETE) {
		/* A failed run's record; what it wrote went when it failed, and
		 * a leftover is `repo cleanup`'s. Checked again: never a run. */
		rc = catalog_backup_get(p->cat, r->id, &b);
		if (!rc && b->status == CATALOG_FAILED)
			rc = catalog_backup_delete(p->cat, r->id);
		else if (!rc)
			rc = error_set(CF_ERR_INTERNAL, "backup %s is %s now; left alone", r->id,
			               catalog_status_name(b->status));
		catalog_backup_free(b);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = 0;
		}
		if (rc)
			return prune_failed(p, c, rc, detail, size);
		c->records++;
		snprintf(detail, size, "record deleted");
		return 0;
	}
	rc = agent_targets_repo(&p->tg, t, &repo, &again);
	if (rc && again) { /* reported at the first deletion there */
		snprintf(detail, size, "failed: %s", error_message());
		error_clear();
		c->failed++;
		return 0;
	}
	if (!rc)
		rc = repo_prune_backup(repo, r->id, &res);
	if (rc)
		return prune_failed(p, c, rc, detail, size);
	if (res.locked_until_ms) {
		time_format_iso(res.locked_until_ms, until, sizeof(until));
		snprintf(detail, size, "locked until %s (object lock): kept", until);
		c->locked++;
		return 0;
	}
	c->deleted++;
	c->deleted_bytes += res.stored_bytes;
	snprintf(detail, size,
	         res.finished ? "deleted (an interrupted prune had begun it)" : "deleted");
	return 0;
}

/* Prints JSON value v (taking it) compact, with prefix before it. */
static int prune_json_print(const char *prefix, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(v);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	printf("%s%s", prefix, text);
	free(text);
	return 0;
}

/* The counts of a plan, or of the whole prune, ending its JSON object. */
/* Ends a plan's (plan) or the whole document's JSON object with the
 * counts of c; wal (taken; NULL: none) is the plan's WAL report. */
static int prune_json_counts(const struct prune_count *c, int plan, json_t *wal)
{
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I}", "deleted", (json_int_t)c->deleted,
	                      "deleted_bytes", (json_int_t)c->deleted_bytes, "deleted_records",
	                      (json_int_t)c->records, "locked", (json_int_t)c->locked, "failed",
	                      (json_int_t)c->failed);
	char *text;

	if (o && plan &&
	    (json_object_set_new(o, "remove", json_integer((json_int_t)c->remove)) ||
	     json_object_set_new(o, "remove_bytes", json_integer((json_int_t)c->remove_bytes)))) {
		json_decref(o);
		o = NULL;
	}
	if (o && wal && json_object_set(o, "wal", wal)) {
		json_decref(o);
		o = NULL;
	}
	json_decref(wal);
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	printf("],%s", text + 1); /* the object's members, and its end */
	free(text);
	return 0;
}

static int prune_json_entry(int first, const struct prune_rec *r, const char *action,
                            const char *reasons, const char *result, const char *detail)
{
	char started[TIME_ISO_LEN + 1];
	json_t *e;

	time_format_iso(r->started_ms, started, sizeof(started));
	e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", r->id, "started", started, "status",
	              catalog_status_name(r->status), "action", action, "reasons", reasons,
	              "stored_bytes", (json_int_t)r->stored);
	if (e && result && json_object_set_new(e, "result", json_string(result)))
		e = NULL;
	if (e && result && strcmp(result, "deleted") &&
	    json_object_set_new(e, "detail", json_string(detail)))
		e = NULL;
	return prune_json_print(first ? "" : ",", e);
}

/* "deleted", "locked" or "failed", from the counts before and after. */
static const char *prune_result(const struct prune_count *before, const struct prune_count *c)
{
	if (c->failed != before->failed)
		return "failed";
	return c->locked != before->locked ? "locked" : "deleted";
}

/* Plans source src in target t, and deletes what it removes unless this is
 * a dry run, printing it as text or JSON. */
struct prune_wal {
	uint64_t seg_size, oldest; /* the first segment number a kept backup needs */
	uint32_t oldest_tli;
	struct strv keys;
	uint64_t bytes;
};

static int prune_wal_cb(void *ctx, const struct wal_entry *e)
{
	struct prune_wal *w = ctx;

	/* History files are tiny and every timeline's recovery reads them. */
	if (e->w.kind == WAL_HISTORY || wal_segno(&e->w, w->seg_size) >= w->oldest)
		return 0;
	w->bytes += e->stored_bytes;
	return strv_add(&w->keys, e->key);
}

/*
 * The WAL of a postgres-physical source in target t that no kept base
 * backup needs: segments (and .partial, .backup files) numbered below the
 * start of the oldest base backup kept there (or whose deletion did not
 * happen), on any timeline (a later timeline branched off before that
 * start cannot be reached from it). Without a kept base backup, nothing
 * goes. Decided by LSN only, never by a clock. With --json, *jw is the
 * plan's "wal" report (docs/json.md), also when it failed.
 */
static int prune_wal(struct prune *p, const char *src, size_t t, const struct retention_item *items,
                     const size_t *which, size_t n, json_t **jw)
{
	struct prune_wal w;
	struct repo *repo = NULL;
	char name[25], size[32];
	int rc = 0, have = 0;

	if (!source_pgphys_wal(config_source_find(p->cfg, src)))
		return 0;
	memset(&w, 0, sizeof(w));
	for (size_t k = 0; !rc && k < n; k++) {
		const struct prune_rec *r = &p->recs[which[k]];
		struct catalog_backup *b = NULL;
		uint64_t segno, seg_size;
		uint32_t tli;

		if (r->status != CATALOG_COMPLETE)
			continue;
		rc = catalog_backup_get(p->cat, r->id, &b);
		if (rc == CF_ERR_NOTFOUND) { /* deleted whole */
			error_clear();
			rc = 0;
			continue;
		}
		/* Kept by the plan, or still there after it (locked, failed). */
		if (!rc && (p->dry_run ? items[k].keep : repo_record_at(b, p->tg.locs[t]))) {
			rc = wal_base_start(b, &segno, &tli, &seg_size);
			if (rc) {
				char msg[512];

				snprintf(msg, sizeof(msg), "%s", error_message());
				rc = error_set(rc, "%s: its source's WAL is left alone", msg);
			} else if (!have || segno < w.oldest) {
				w.oldest = segno;
				w.oldest_tli = tli;
				w.seg_size = seg_size;
				have = 1;
			}
		}
		catalog_backup_free(b);
	}
	if (rc || !have)
		return rc;
	rc = agent_targets_repo(&p->tg, t, &repo, NULL);
	if (!rc)
		rc = wal_list(repo, src, prune_wal_cb, &w);
	wal_segname(w.oldest_tli, w.oldest, w.seg_size, name);
	if (!rc && !p->dry_run && w.keys.n)
		rc = repo_wal_delete(repo, src, (const char *const *)w.keys.v, w.keys.n);
	/* The catalog's ranges follow the primary's archive. */
	if (!rc && !p->dry_run && w.keys.n && t == 0) {
		size_t files = 0;

		rc = wal_rebuild(p->cat, repo, src, &files);
	}
	fmt_bytes(w.bytes, size, sizeof(size));
	if (!rc && !p->json)
		printf("  wal     %s %zu WAL file(s), %s, older than %s (the start of the oldest "
		       "base backup kept)%s\n",
		       p->dry_run ? "would remove" : "removed", w.keys.n, size, name,
		       p->dry_run ? " (dry run)" : "");
	else if (rc && !p->json)
		printf("  wal     failed: %s\n", error_message());
	if (p->json &&
	    !(*jw = json_pack("{s:I, s:I, s:s}", "remove", (json_int_t)w.keys.n, "remove_bytes",
	                      (json_int_t)w.bytes, "older_than", name))) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	} else if (p->json && (rc || !p->dry_run)) {
		json_object_set_new(*jw, "result", json_string(rc ? "failed" : "deleted"));
		if (rc)
			json_object_set_new(*jw, "detail", json_string(error_message()));
	}
	strv_free(&w.keys);
	return rc;
}

static int prune_plan(struct prune *p, const char *src, size_t t, int64_t now)
{
	const struct config *cfg = p->cfg;
	struct retention_policy pol;
	struct retention_item *items = NULL;
	struct prune_count c;
	size_t *which = NULL, n = 0, nbegun = 0;
	char text[512], why[512], detail[640];
	json_t *wal = NULL; /* the plan's WAL report (--json) */
	int rc = 0, doc = p->json, first = 1;

	memset(&c, 0, sizeof(c));
	config_retention_policy(cfg, src, t, &pol);
	if (p->n &&
	    (!(items = calloc(p->n, sizeof(*items))) || !(which = calloc(p->n, sizeof(*which))))) {
		free(items);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct prune_rec *r = &p->recs[i];

		if (r->deleting & (1ULL << t)) {
			nbegun++;
			continue;
		}
		if (r->status == CATALOG_COMPLETE ? !(r->at & (1ULL << t)) : r->failed_at != (int)t)
			continue;
		items[n].started_ms = r->started_ms;
		items[n].state = r->status == CATALOG_COMPLETE  ? RETENTION_COMPLETE
		                 : r->status == CATALOG_RUNNING ? RETENTION_RUNNING
		                                                : RETENTION_FAILED;
		which[n++] = i;
	}
	if (n + nbegun == 0)
		goto out;
	rc = retention_apply(&pol, now, items, n);
	if (rc)
		goto out;
	prune_policy_text(&pol, text, sizeof(text));
	if (doc) {
		/* {"source": ..., "policy_set": ..., "backups": [ */
		json_t *head = json_pack("{s:s, s:s, s:s, s:b}", "source", src, "repository",
		                         cfg->targets[t].name, "location", p->tg.locs[t],
		                         "policy_set", pol.set);
		char *h = head ? json_dumps(head, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		json_decref(head);
		if (!h)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		else
			printf("%s%.*s,\"backups\":[", p->nplans++ ? "," : "", (int)strlen(h) - 1,
			       h);
		free(h);
	} else {
		printf("%s in %s (%s): %s\n", src, cfg->targets[t].name, p->tg.locs[t],
		       pol.set ? text : "no policy: nothing is pruned");
	}
	/* Deletions an interrupted prune began: not backups any more, and
	 * finished whatever the policy says now. */
	for (size_t i = 0; !rc && nbegun && i < p->n; i++) {
		const struct prune_rec *r = &p->recs[i];
		struct prune_count before = c;

		if (!(r->deleting & (1ULL << t)))
			continue;
		c.remove++;
		c.remove_bytes += r->stored;
		snprintf(detail, sizeof(detail), "an interrupted prune began deleting it");
		if (!p->dry_run)
			rc = prune_delete(p, r, t, &c, detail, sizeof(detail));
		if (!rc && doc)
			rc =
			    prune_json_entry(first, r, "remove", "",
			                     p->dry_run ? NULL : prune_result(&before, &c), detail);
		else if (!rc)
			printf("  %-6s  %s  %-8s  %s\n", "remove", r->id, "deleting", detail);
		first = 0;
	}
	for (size_t k = 0; !rc && k < n; k++) {
		const struct prune_rec *r = &p->recs[which[k]];
		struct prune_count before = c;

		retention_explain(&pol, &items[k], why, sizeof(why));
		detail[0] = '\0';
		if (!items[k].keep) {
			c.remove++;
			c.remove_bytes += r->stored;
			if (!p->dry_run)
				rc = prune_delete(p, r, t, &c, detail, sizeof(detail));
		}
		if (rc)
			break;
		if (doc)
			rc = prune_json_entry(
			    first, r, items[k].keep ? "keep" : "remove", items[k].keep ? why : "",
			    items[k].keep || p->dry_run ? NULL : prune_result(&before, &c), detail);
		else
			printf("  %-6s  %s  %-8s  %s\n", items[k].keep ? "keep" : "remove", r->id,
			       catalog_status_name(r->status), items[k].keep ? why : detail);
		first = 0;
	}
	/* No policy, nothing pruned: the WAL neither. */
	if (!rc && pol.set) {
		rc = prune_wal(p, src, t, items, which, n, &wal);
		if (rc)
			rc = prune_failed(p, &c, rc, detail, sizeof(detail));
	}
	if (!rc && doc) {
		rc = prune_json_counts(&c, 1, wal);
		wal = NULL;
	} else if (!rc && p->dry_run) {
		fmt_bytes(c.remove_bytes, text, sizeof(text));
		printf("  would remove %u backup(s), %s (dry run: nothing was deleted)\n", c.remove,
		       text);
	} else if (!rc) {
		fmt_bytes(c.deleted_bytes, text, sizeof(text));
		printf("  removed %u backup(s), %s", c.deleted, text);
		if (c.records)
			printf("; %u failed run record(s)", c.records);
		if (c.locked)
			printf("; %u kept under object lock", c.locked);
		if (c.failed)
			printf("; %u could not be deleted", c.failed);
		printf("\n");
	}
	p->total.remove += c.remove;
	p->total.remove_bytes += c.remove_bytes;
	p->total.deleted += c.deleted;
	p->total.deleted_bytes += c.deleted_bytes;
	p->total.records += c.records;
	p->total.locked += c.locked;
	p->total.failed += c.failed;
out:
	json_decref(wal);
	free(items);
	free(which);
	return rc;
}

/* Plans one source in each target it uses (or has records in); failed and
 * running records are listed under the first of those. */
static int prune_source(struct prune *p, const char *src, const char *target, int64_t now)
{
	const struct config *cfg = p->cfg;
	uint64_t used = 0;
	int first = -1, rc;

	rc = catalog_summary_list(p->cat, src, prune_collect, p);
	for (size_t i = 0; i < p->n; i++)
		if (p->recs[i].status == CATALOG_COMPLETE)
			used |= p->recs[i].at;
	for (size_t t = 0; t < cfg->ntargets; t++)
		if (config_source_uses(cfg, src, t))
			used |= 1ULL << t;
	for (size_t t = 0; t < cfg->ntargets && first < 0; t++)
		if (used & (1ULL << t))
			first = (int)t;
	for (size_t i = 0; i < p->n; i++)
		p->recs[i].failed_at = p->recs[i].status == CATALOG_COMPLETE ? -1 : first;
	for (size_t t = 0; !rc && t < cfg->ntargets; t++)
		if ((used & (1ULL << t)) && (!target || !strcmp(cfg->targets[t].name, target)))
			rc = prune_plan(p, src, t, now);
	p->n = 0; /* the records are the next source's */
	return rc;
}

/* The sources to prune: configured ones in file order, then those only the
 * catalog knows. */
static int prune_sources(struct prune *p, const char *source, struct strv *names)
{
	struct strv known = {NULL, 0, 0};
	int rc = 0;

	for (size_t i = 0; !rc && i < p->cfg->nsources; i++)
		rc = strv_add(names, p->cfg->sources[i].name);
	if (!rc)
		rc = catalog_source_names(p->cat, &known);
	for (size_t i = 0; !rc && i < known.n; i++)
		if (!strv_has(names, known.v[i]))
			rc = strv_add(names, known.v[i]);
	strv_free(&known);
	if (!rc && source && !strv_has(names, source))
		rc = error_set(CF_ERR_USAGE, "--source %s: no such source in %s or the catalog",
		               source, p->cfg->file);
	return rc;
}

static void prune_free(struct prune *p)
{
	free(p->recs);
	agent_targets_free(&p->tg);
	catalog_close(p->cat);
}

int cmd_prune(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"source", required_argument, NULL, 's'},
	                                     {"target", required_argument, NULL, 't'},
	                                     {"dry-run", no_argument, NULL, 'n'},
	                                     {NULL, 0, NULL, 0}};
	struct config *cfg = NULL;
	struct prune p;
	struct strv names = {NULL, 0, 0};
	const char *source = NULL, *target = NULL;
	int opt, rc;

	memset(&p, 0, sizeof(p));
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 's')
			source = optarg;
		else if (opt == 't')
			target = optarg;
		else if (opt == 'n')
			p.dry_run = 1;
		else
			return agent_option_error(opt, argv, CMD_PRUNE_USAGE);
	}
	if (optind != argc)
		return error_set(CF_ERR_USAGE, CMD_PRUNE_USAGE);
	rc = config_load(cli->config_path, &cfg);
	p.cfg = cfg;
	if (!rc && target)
		rc = agent_target_check(cfg, target);
	if (!rc)
		rc = agent_targets_init(&p.tg, cfg);
	if (!rc)
		rc = agent_open_catalog(cfg, &p.cat);
	p.tg.cat = p.cat;
	if (!rc)
		rc = prune_sources(&p, source, &names);
	p.json = cli->json;
	if (!rc && p.json)
		printf("{\"dry_run\":%s,\"plans\":[", p.dry_run ? "true" : "false");
	for (size_t i = 0; !rc && i < names.n; i++)
		if (!source || !strcmp(names.v[i], source))
			rc = prune_source(&p, names.v[i], target, time_now_ms());
	if (!rc && p.json) {
		rc = prune_json_counts(&p.total, 0, NULL);
		printf("\n");
	}
	fflush(stdout);
	/* What was deleted stays deleted and recorded; a deletion that failed
	 * makes the exit status say so. */
	if (!rc && p.total.failed)
		rc = error_set(p.first_rc, "prune: %u deletion(s) failed; the first: %s",
		               p.total.failed, p.first_err);
	strv_free(&names);
	prune_free(&p);
	config_free(cfg);
	return rc;
}
