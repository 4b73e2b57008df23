/*
 * cmd_prune: `coffer prune --dry-run [--source S] [--target R] [--json]`.
 * For each source (configured, or only in the catalog) and each repository
 * it uses, applies its retention policy (retention.c) to the catalog's
 * records of that copy and prints every backup with keep or remove and the
 * rules that kept it. Reads the catalog only. Deleting is not built yet:
 * without --dry-run it refuses (exit 2) and changes nothing.
 */
#include "agent/agent.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_PRUNE_USAGE "usage: coffer prune --dry-run [--source S] [--target REPOSITORY]"

/* One record of the source being planned. */
struct prune_rec {
	char *id;
	int64_t started_ms;
	enum catalog_status status;
	uint64_t stored;
	uint64_t at;   /* bit t: the record holds a copy in target t */
	int failed_at; /* failed/running: listed under this target only */
};

struct prune {
	const struct config *cfg;
	struct catalog *cat;
	char **locs; /* each target's location */
	struct prune_rec *recs;
	size_t n, cap;
	int rc;
};

static int prune_collect(void *ctx, const struct catalog_backup *b)
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
	r->id = strdup(b->id);
	if (!r->id)
		return error_set(CF_ERR_NOMEM, "out of memory");
	r->started_ms = b->started_ms;
	r->status = b->status;
	for (size_t i = 0; i < b->nobjects; i++)
		r->stored += b->objects[i].stored_bytes;
	for (size_t t = 0; t < p->cfg->ntargets; t++)
		if (strv_has(&b->locations, p->locs[t]))
			r->at |= 1ULL << t;
	p->n++;
	return 0;
}

static void prune_recs_free(struct prune *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->recs[i].id);
	p->n = 0;
}

/* The policy's keys as text: "keep_daily 7, keep_monthly 12, min_keep 1". */
static void prune_policy_text(const struct retention_policy *pol, char *out, size_t size)
{
	static const char *const names[RETENTION_NRULES] = {
	    "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"};
	size_t len = 0;

	out[0] = '\0';
	for (int r = 0; r < RETENTION_NRULES; r++)
		if (pol->keep[r] && len < size)
			len += (size_t)snprintf(out + len, size - len, "%s %u, ", names[r],
			                        pol->keep[r]);
	if (pol->keep_within_ms && len < size)
		len += (size_t)snprintf(out + len, size - len, "keep_within %llds, ",
		                        (long long)(pol->keep_within_ms / 1000));
	if (len < size)
		snprintf(out + len, size - len, "min_keep %u, timezone %s", pol->min_keep,
		         pol->timezone ? pol->timezone : "of the host");
}

/* Plans source src in target t: prints it (text) or adds it to doc. */
static int prune_plan(struct prune *p, const char *src, size_t t, int64_t now, json_t *doc)
{
	const struct config *cfg = p->cfg;
	struct retention_policy pol;
	struct retention_item *items = NULL;
	size_t *which = NULL, n = 0, nremove = 0;
	uint64_t bytes = 0;
	char text[512], why[512];
	json_t *list = NULL, *entry = NULL;
	int rc = 0;

	config_retention_policy(cfg, src, t, &pol);
	if (p->n &&
	    (!(items = calloc(p->n, sizeof(*items))) || !(which = calloc(p->n, sizeof(*which))))) {
		free(items);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct prune_rec *r = &p->recs[i];

		if (r->status == CATALOG_COMPLETE ? !(r->at & (1ULL << t)) : r->failed_at != (int)t)
			continue;
		items[n].started_ms = r->started_ms;
		items[n].state = r->status == CATALOG_COMPLETE  ? RETENTION_COMPLETE
		                 : r->status == CATALOG_RUNNING ? RETENTION_RUNNING
		                                                : RETENTION_FAILED;
		which[n++] = i;
	}
	if (n == 0)
		goto out;
	rc = retention_apply(&pol, now, items, n);
	if (rc)
		goto out;
	prune_policy_text(&pol, text, sizeof(text));
	if (doc) {
		entry = json_pack("{s:s, s:s, s:s, s:o, s:b}", "source", src, "repository",
		                  cfg->targets[t].name, "location", p->locs[t], "backups",
		                  list = json_array(), "policy_set", pol.set);
		if (!entry || !list || json_array_append_new(json_object_get(doc, "plans"), entry))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	} else {
		printf("%s in %s (%s): %s\n", src, cfg->targets[t].name, p->locs[t],
		       pol.set ? text : "no policy: nothing is pruned");
	}
	for (size_t k = 0; !rc && k < n; k++) {
		const struct prune_rec *r = &p->recs[which[k]];
		char started[TIME_ISO_LEN + 1];

		time_format_iso(r->started_ms, started, sizeof(started));
		retention_explain(&pol, &items[k], why, sizeof(why));
		if (!items[k].keep) {
			nremove++;
			bytes += r->stored;
		}
		if (doc) {
			if (json_array_append_new(
			        list,
			        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", r->id, "started",
			                  started, "status", catalog_status_name(r->status),
			                  "action", items[k].keep ? "keep" : "remove", "reasons",
			                  items[k].keep ? why : "", "stored_bytes",
			                  (json_int_t)r->stored)))
				rc = error_set(CF_ERR_NOMEM, "out of memory");
		} else {
			printf("  %-6s  %s  %-8s  %s\n", items[k].keep ? "keep" : "remove", r->id,
			       catalog_status_name(r->status), items[k].keep ? why : "");
		}
	}
	if (!rc && doc) {
		if (json_object_set_new(entry, "remove", json_integer((json_int_t)nremove)) ||
		    json_object_set_new(entry, "remove_bytes", json_integer((json_int_t)bytes)))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	} else if (!rc) {
		fmt_bytes(bytes, text, sizeof(text));
		printf("  would remove %zu backup(s), %s (dry run: nothing was deleted)\n", nremove,
		       text);
	}
out:
	free(items);
	free(which);
	return rc;
}

/* Plans one source in each target it uses (or has records in); failed and
 * running records are listed under the first of those. */
static int prune_source(struct prune *p, const char *src, const char *target, int64_t now,
                        json_t *doc)
{
	const struct config *cfg = p->cfg;
	uint64_t used = 0;
	int first = -1, rc;

	rc = catalog_backup_list(p->cat, src, prune_collect, p);
	for (size_t t = 0; t < cfg->ntargets; t++) {
		if (config_source_uses(cfg, src, t))
			used |= 1ULL << t;
		for (size_t i = 0; i < p->n; i++)
			if (p->recs[i].status == CATALOG_COMPLETE)
				used |= p->recs[i].at;
	}
	for (size_t t = 0; t < cfg->ntargets && first < 0; t++)
		if (used & (1ULL << t))
			first = (int)t;
	for (size_t i = 0; i < p->n; i++)
		p->recs[i].failed_at = p->recs[i].status == CATALOG_COMPLETE ? -1 : first;
	for (size_t t = 0; !rc && t < cfg->ntargets; t++)
		if ((used & (1ULL << t)) && (!target || !strcmp(cfg->targets[t].name, target)))
			rc = prune_plan(p, src, t, now, doc);
	prune_recs_free(p);
	return rc;
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
	json_t *doc = NULL;
	int opt, rc, dry_run = 0;

	memset(&p, 0, sizeof(p));
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 's')
			source = optarg;
		else if (opt == 't')
			target = optarg;
		else if (opt == 'n')
			dry_run = 1;
		else
			return agent_option_error(opt, argv, CMD_PRUNE_USAGE);
	}
	if (optind != argc)
		return error_set(CF_ERR_USAGE, CMD_PRUNE_USAGE);
	if (!dry_run)
		return error_set(CF_ERR_USAGE,
		                 "coffer prune deletes nothing yet; 'coffer prune --dry-run' shows "
		                 "what the retention policy would remove (%s)",
		                 CMD_PRUNE_USAGE);
	rc = config_load(cli->config_path, &cfg);
	p.cfg = cfg;
	for (size_t t = 0; !rc && target && t <= cfg->ntargets; t++)
		if (t == cfg->ntargets)
			rc =
			    error_set(CF_ERR_USAGE, "--target %s: no repository of that name in %s",
			              target, cfg->file);
		else if (!strcmp(cfg->targets[t].name, target))
			break;
	if (!rc && !(p.locs = calloc(cfg->ntargets, sizeof(*p.locs))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t t = 0; !rc && t < cfg->ntargets; t++)
		rc = agent_target_location(cfg, t, &p.locs[t]);
	if (!rc)
		rc = agent_open_catalog(cfg, &p.cat);
	/* The configured sources in file order, then those only the catalog knows. */
	for (size_t i = 0; !rc && i < cfg->nsources; i++)
		rc = strv_add(&names, cfg->sources[i].name);
	if (!rc) {
		struct strv known = {NULL, 0, 0};

		rc = catalog_source_names(p.cat, &known);
		for (size_t i = 0; !rc && i < known.n; i++)
			if (!strv_has(&names, known.v[i]))
				rc = strv_add(&names, known.v[i]);
		strv_free(&known);
	}
	if (!rc && source && !strv_has(&names, source))
		rc = error_set(CF_ERR_USAGE, "--source %s: no such source in %s or the catalog",
		               source, cfg->file);
	if (!rc && cli->json && !(doc = json_pack("{s:b, s:[]}", "dry_run", 1, "plans")))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < names.n; i++)
		if (!source || !strcmp(names.v[i], source))
			rc = prune_source(&p, names.v[i], target, time_now_ms(), doc);
	if (!rc && doc) {
		rc = agent_print_json(doc);
		doc = NULL;
	}
	json_decref(doc);
	prune_recs_free(&p);
	free(p.recs);
	for (size_t t = 0; p.locs && t < cfg->ntargets; t++)
		free(p.locs[t]);
	free(p.locs);
	strv_free(&names);
	catalog_close(p.cat);
	config_free(cfg);
	return rc;
}
