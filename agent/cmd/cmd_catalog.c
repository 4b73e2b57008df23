/*
 * cmd_catalog: `coffer catalog rebuild [--trust-unsigned]`: the catalog from
 * the repository's manifests (repo_list_manifests()), then, once the whole
 * listing succeeded, this repository dropped from complete records whose
 * manifest is gone. A damaged catalog is moved aside first.
 */
#include "agent/agent.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rebuild {
	struct catalog *cat;
	struct repo *repo;
	unsigned added;
	unsigned bad;
	unsigned forgotten;
	struct strv seen; /* ids of every manifest in the repository, readable or not */
};

static int rebuild_id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int rebuild_cb(void *ctx, const char *key, const char *id)
{
	struct rebuild *r = ctx;
	struct catalog_backup *b = NULL, *old = NULL;
	int rc;

	if (strv_add(&r->seen, id))
		return CF_ERR_NOMEM;
	rc = repo_read_manifest(r->repo, key, &b);
	if (rc == CF_ERR_INTEGRITY || rc == CF_ERR_LIMIT) {
		/* One bad (or oversized) manifest must not hide all the others. */
		log_warn("skipping %s", error_message());
		r->bad++;
		return 0;
	}
	if (rc)
		return rc;
	/* A backup in several targets is one record with several locations:
	 * this one, and those the catalog knew (not the manifest's list, which
	 * says where its copies were being written). */
	strv_free(&b->locations);
	rc = catalog_backup_get(r->cat, b->id, &old);
	if (rc == CF_ERR_NOTFOUND || rc == CF_ERR_FORMAT) {
		error_clear();
		rc = 0;
	}
	for (size_t i = 0; !rc && old && i < old->locations.n; i++)
		rc = strv_add_new(&b->locations, old->locations.v[i]);
	/* A deletion prune began stays begun, here too (the manifest is still
	 * there when prune was killed right after marking): the next prune
	 * finishes it. A copy pruned before stays so elsewhere. */
	for (size_t i = 0; !rc && old && i < old->deleting.n; i++)
		rc = strv_add_new(&b->deleting, old->deleting.v[i]);
	/* The last verification is this host's knowledge too. */
	if (old && old->verified_ms) {
		b->verified_ms = old->verified_ms;
		b->verified_ok = old->verified_ok;
		b->verified_level = old->verified_level;
		b->verified_error = old->verified_error;
		old->verified_level = old->verified_error = NULL;
	}
	for (size_t i = 0; !rc && old && i < old->pruned.n; i++)
		if (strcmp(old->pruned.v[i], repo_location(r->repo)) != 0)
			rc = strv_add_new(&b->pruned, old->pruned.v[i]);
	/* Copies still pending elsewhere stay so; this one is made. */
	for (size_t i = 0; !rc && old && i < old->npending; i++)
		if (strcmp(old->pending[i].location, repo_location(r->repo)) != 0 &&
		    !strv_has(&b->locations, old->pending[i].location))
			rc = catalog_backup_add_pending(b, old->pending[i].location,
			                                old->pending[i].error,
			                                old->pending[i].since_ms);
	catalog_backup_free(old);
	if (!rc && !strv_has(&b->deleting, repo_location(r->repo)))
		rc = strv_add_new(&b->locations, repo_location(r->repo));
	if (!rc)
		rc = catalog_backup_put(r->cat, b);
	if (!rc)
		r->added++;
	catalog_backup_free(b);
	return rc;
}

/*
 * A complete record of this repository whose manifest is no longer there
 * (deleted by hand, by a lifecycle rule, another host's prune) is not a
 * backup any more: this repository goes from its locations, and a record
 * left with none is deleted. Failed and running records are this host's
 * history and stay.
 */
static int rebuild_forget_cb(void *ctx, const struct catalog_backup *b)
{
	struct rebuild *r = ctx;
	const char *here = repo_location(r->repo), *id = b->id;

	if (b->status != CATALOG_COMPLETE || !repo_record_at(b, here) ||
	    bsearch(&id, r->seen.v, r->seen.n, sizeof(*r->seen.v), rebuild_id_cmp))
		return 0;
	log_warn("backup %s (%s) has no manifest in %s any more; removed from the catalog", b->id,
	         b->source, here);
	r->forgotten++;
	return repo_forget(r->repo, b->id);
}

static int cmd_catalog_rebuild(const struct cli *cli, const struct config *cfg, int trust_unsigned)
{
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	struct rebuild r;
	json_t *per = NULL;
	char *primary = NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = agent_trust_load(cfg, trust_unsigned, &trust);
	if (!rc)
		rc = agent_open_catalog(cfg, &r.cat);
	if (rc == CF_ERR_CATALOG_DAMAGED) {
		/* Rebuilding is the fix: the damaged catalog is kept aside (it
		 * may hold failed runs' history), a new one is built. */
		char aside[4096], stamp[TIME_ISO_LEN + 1];

		log_warn("%s", error_message());
		time_format_iso(time_now_ms(), stamp, sizeof(stamp));
		snprintf(aside, sizeof(aside), "%s.damaged-%s", cfg->catalog_path, stamp);
		if (rename(cfg->catalog_path, aside) != 0)
			rc = error_set_errno(CF_ERR_CATALOG, errno,
			                     "cannot move the damaged catalog %s aside",
			                     cfg->catalog_path);
		else {
			log_warn("moved the damaged catalog to %s; building a new one", aside);
			rc = agent_open_catalog(cfg, &r.cat);
		}
	}
	if (!rc && !(per = json_array()))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	/* Every target in turn, each read whole before its records are
	 * checked: a record is forgotten only when its manifest is known to be
	 * gone from that target. */
	for (size_t i = 0; !rc && i < cfg->ntargets; i++) {
		unsigned added = r.added, bad = r.bad, forgotten = r.forgotten;

		strv_free(&r.seen);
		rc = agent_open_target(cfg, i, r.cat, &trust, &r.repo);
		if (!rc)
			rc = repo_list_manifests(r.repo, rebuild_cb, &r);
		if (!rc) {
			if (r.seen.n)
				qsort(r.seen.v, r.seen.n, sizeof(*r.seen.v), rebuild_id_cmp);
			rc = catalog_backup_list(r.cat, NULL, rebuild_forget_cb, &r);
		}
		if (!rc && !i && !(primary = strdup(repo_location(r.repo))))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		/* The WAL archive's ranges of each postgres-physical source, from
		 * the primary. */
		for (size_t s = 0; !rc && !i && s < cfg->nsources; s++) {
			size_t files = 0;

			if (!source_pgphys_wal(&cfg->sources[s]))
				continue;
			rc = wal_rebuild(r.cat, r.repo, cfg->sources[s].name, &files);
			if (!rc && !cli->json && !cli->quiet)
				printf("recorded %zu WAL file(s) of source %s from %s\n", files,
				       cfg->sources[s].name, repo_location(r.repo));
		}
		if (!rc &&
		    json_array_append_new(per, json_pack("{s:s, s:s, s:I, s:I, s:I}", "name",
		                                         cfg->targets[i].name, "repository",
		                                         repo_location(r.repo), "recorded",
		                                         (json_int_t)(r.added - added), "skipped",
		                                         (json_int_t)(r.bad - bad), "forgotten",
		                                         (json_int_t)(r.forgotten - forgotten))))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		if (!rc && !cli->json && !cli->quiet)
			printf(
			    "recorded %u backup(s) from %s%s; removed %u whose manifest is gone\n",
			    r.added - added, repo_location(r.repo),
			    r.bad > bad ? " (some manifests were skipped, see above)" : "",
			    r.forgotten - forgotten);
		repo_close(r.repo);
		r.repo = NULL;
	}
	if (!rc && cli->json) {
		rc = agent_print_json(json_pack("{s:s, s:I, s:I, s:I, s:O}", "repository", primary,
		                                "recorded", (json_int_t)r.added, "skipped",
		                                (json_int_t)r.bad, "forgotten",
		                                (json_int_t)r.forgotten, "repositories", per));
	}
	json_decref(per);
	free(primary);
	strv_free(&r.seen);
	catalog_close(r.cat);
	repo_trust_free(&trust);
	return rc;
}

int cmd_catalog(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"trust-unsigned", no_argument, NULL, 'T'},
	                                     {NULL, 0, NULL, 0}};
	static const char usage[] = "usage: coffer catalog rebuild [--trust-unsigned]";
	struct config *cfg = NULL;
	int opt, rc, trust_unsigned = 0;

	if (argc < 2 || strcmp(argv[1], "rebuild") != 0)
		return error_set(CF_ERR_USAGE, "%s", usage);
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
		if (opt != 'T')
			return agent_option_error(opt, argv + 1, usage);
		trust_unsigned = 1;
	}
	if (optind != argc - 1)
		return error_set(CF_ERR_USAGE, "%s", usage);
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = cmd_catalog_rebuild(cli, cfg, trust_unsigned);
	config_free(cfg);
	return rc;
}
