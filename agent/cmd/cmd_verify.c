/*
 * cmd_verify: `coffer verify [ID... | --latest | --all] [--source S]
 * [--target REPOSITORY] [--identity FILE] [--json]`: every object of each
 * chosen backup checked in every configured repository that holds it
 * (verify.c): stored (size, SHA-256, age header) always, content (decrypted,
 * decompressed, its format) when an identity is given or configured. Prints
 * ok or the first problem per backup and repository, with bytes read and
 * throughput, records the result in the catalog, and exits 4 when any copy
 * failed.
 */
#include "agent/agent.h"
#include "agent/drill.h"
#include "agent/source/source.h"
#include "agent/verify.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_VERIFY_USAGE                                                                           \
	"usage: coffer verify (ID... | --latest | --all) [--source S] [--target REPOSITORY] "      \
	"[--identity FILE]\n"                                                                      \
	"       coffer verify --drill (ID | --latest) [--source S] [--target REPOSITORY] "         \
	"[--identity FILE]"

struct verify_run {
	const struct config *cfg;
	struct catalog *cat;
	const char *source; /* --source, or NULL */
	const char *target; /* --target, or NULL */
	struct age_identities *ids;
	struct agent_targets tg;
	struct strv ids_todo; /* backup ids to verify */
	int json;
	int drill; /* --drill: --latest takes database backups only */
	int nprinted;
	unsigned copies, failed;
	int first_rc;
	char first_err[600];
};

/* Whether backups of kind can be drilled (database engines). */
static int verify_drills(const char *kind)
{
	const struct source_ops *ops = source_registry_find(kind);

	return ops && ops->drill;
}

static int verify_collect(void *ctx, const struct catalog_summary *s)
{
	struct verify_run *v = ctx;

	return s->status == CATALOG_COMPLETE && s->locations.n ? strv_add(&v->ids_todo, s->id) : 0;
}

/* The backups to verify: the ids given, the newest complete one of each
 * source (--latest), or every complete one (--all). */
static int verify_select(struct verify_run *v, char **argv, int argc, int latest, int all)
{
	struct strv sources = {NULL, 0, 0};
	char id[BACKUP_ID_LEN + 1];
	int rc = 0;

	for (int i = 0; !rc && i < argc; i++) {
		rc = agent_resolve_id(v->cfg, v->cat, NULL, argv[i], v->source, id);
		if (!rc)
			rc = strv_add(&v->ids_todo, id);
	}
	if (rc || (!latest && !all))
		return rc;
	if (v->source)
		rc = strv_add(&sources, v->source);
	else
		rc = catalog_source_names(v->cat, &sources);
	for (size_t i = 0; !rc && i < sources.n; i++) {
		struct catalog_backup *b = NULL;

		if (all) {
			rc = catalog_summary_list(v->cat, sources.v[i], verify_collect, v);
			continue;
		}
		rc = catalog_backup_latest(v->cat, sources.v[i], NULL, &b);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = 0;
		} else if (!rc && (!v->drill || verify_drills(b->kind))) {
			rc = strv_add(&v->ids_todo, b->id);
		}
		catalog_backup_free(b);
	}
	strv_free(&sources);
	if (!rc && v->ids_todo.n == 0)
		rc = error_set(CF_ERR_NOTFOUND, "no complete %sbackup%s%s to %s",
		               v->drill ? "database " : "", v->source ? " of source " : "",
		               v->source ? v->source : "", v->drill ? "drill" : "verify");
	return rc;
}

/* Records the outcome in b's record (read again: the verification took a
 * while). */
static int verify_record(struct verify_run *v, const char *id, int ok, const char *error)
{
	struct catalog_backup *b = NULL;
	int rc = catalog_backup_get(v->cat, id, &b);

	if (rc == CF_ERR_NOTFOUND) { /* pruned meanwhile */
		error_clear();
		return 0;
	}
	if (!rc) {
		free(b->verified_level);
		free(b->verified_error);
		b->verified_ms = time_now_ms();
		b->verified_ok = ok;
		b->verified_level = strdup(v->ids ? "content" : "stored");
		b->verified_error = error ? strdup(error) : NULL;
		if (!b->verified_level || (error && !b->verified_error))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = catalog_backup_put(v->cat, b);
	/* The source's last verification, for `coffer status`. */
	if (!rc) {
		char key[300], at[TIME_ISO_LEN + 1], *text;
		json_t *o;

		time_format_iso(b->verified_ms, at, sizeof(at));
		o = json_pack("{s:s, s:s, s:b, s:s}", "id", id, "at", at, "ok", ok, "level",
		              b->verified_level);
		if (o && error && json_object_set_new(o, "error", json_string(error)))
			o = NULL;
		text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(o);
		snprintf(key, sizeof(key), "verify:%s", b->source);
		rc = text ? catalog_meta_set_str(v->cat, key, text)
		          : error_set(CF_ERR_NOMEM, "out of memory");
		free(text);
	}
	catalog_backup_free(b);
	return rc;
}

/* Verifies backup id's copy in target t: prints and counts it; a failed
 * copy is not an error of the run (cancellation and catalog errors are). */
static int verify_copy(struct verify_run *v, const struct catalog_backup *b, size_t t,
                       char *problem, size_t size)
{
	struct repo *repo = NULL;
	uint64_t bytes = 0;
	double t0 = time_mono(), secs;
	char rate[32], amount[32];
	int rc = agent_targets_repo(&v->tg, t, &repo, NULL);

	for (size_t k = 0; !rc && k < b->nobjects; k++)
		rc = verify_object(repo_storage(repo), b, &b->objects[k], v->ids, &bytes);
	secs = time_mono() - t0;
	if (rc == CF_ERR_INTERRUPTED || rc == CF_ERR_NOMEM)
		return rc;
	v->copies++;
	problem[0] = '\0';
	if (rc) {
		snprintf(problem, size, "backup %s in %s: %s", b->id, v->cfg->targets[t].name,
		         error_message());
		if (!v->first_rc) {
			/* A missing object or a bad digest is an integrity failure
			 * (exit 4), as is a copy that does not decrypt. */
			v->first_rc = rc == CF_ERR_TARGET || rc == CF_ERR_STORAGE ||
			                      rc == CF_ERR_NETWORK || rc == CF_ERR_AUTH
			                  ? rc
			                  : CF_ERR_INTEGRITY;
			snprintf(v->first_err, sizeof(v->first_err), "%s", problem);
		}
		v->failed++;
		error_clear();
	}
	fmt_bytes(bytes, amount, sizeof(amount));
	fmt_bytes(secs > 0 ? (uint64_t)((double)bytes / secs) : 0, rate, sizeof(rate));
	if (v->json) {
		json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:f}", "id", b->id,
		                      "source", b->source, "repository", v->cfg->targets[t].name,
		                      "location", v->tg.locs[t], "ok", !problem[0], "level",
		                      v->ids ? "content" : "stored", "bytes_read",
		                      (json_int_t)bytes, "seconds", secs);
		char *text = NULL;

		if (e && problem[0] && json_object_set_new(e, "error", json_string(problem)))
			e = NULL;
		text = e ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(e);
		if (!text)
			return error_set(CF_ERR_NOMEM, "out of memory");
		printf("%s%s", v->nprinted++ ? "," : "", text);
		free(text);
	} else if (problem[0]) {
		printf("%s  %-10s  FAILED  %s\n", b->id, v->cfg->targets[t].name, problem);
	} else {
		printf("%s  %-10s  ok      %zu object(s), %s read in %.1f s (%s/s), %s\n", b->id,
		       v->cfg->targets[t].name, b->nobjects, amount, secs, rate,
		       v->ids ? "content checked" : "stored bytes checked");
	}
	return 0;
}

static int verify_backup(struct verify_run *v, const char *id)
{
	struct catalog_backup *b = NULL;
	char problem[700], first[700] = "";
	int rc = catalog_backup_get(v->cat, id, &b), copies = 0;

	if (!rc && b->status != CATALOG_COMPLETE)
		rc = error_set(CF_ERR_USAGE, "backup %s is %s: only complete backups are verified",
		               id, catalog_status_name(b->status));
	if (!rc)
		log_context_set(b->source, b->id);
	for (size_t t = 0; !rc && t < v->cfg->ntargets; t++) {
		if ((v->target && strcmp(v->cfg->targets[t].name, v->target) != 0) ||
		    !repo_record_at(b, v->tg.locs[t]))
			continue;
		copies++;
		rc = verify_copy(v, b, t, problem, sizeof(problem));
		if (!rc && problem[0] && !first[0])
			snprintf(first, sizeof(first), "%s", problem);
	}
	if (!rc && copies == 0)
		rc = error_set(CF_ERR_NOTFOUND, "backup %s has no copy in %s", id,
		               v->target ? v->target : "the configured repositories");
	if (!rc)
		rc = verify_record(v, id, !first[0], first[0] ? first : NULL);
	log_context_set(NULL, NULL);
	catalog_backup_free(b);
	return rc;
}

/* One drill: the record, its kind's operations and its configured source
 * looked up here (drill.c calls neither the registry nor the config). */
static int verify_drill_one(struct verify_run *v, const struct drill_options *o, const char *id,
                            char **report)
{
	struct catalog_backup *b = NULL;
	const struct source_ops *ops = NULL;
	int rc = catalog_backup_get(v->cat, id, &b);

	*report = NULL;
	if (!rc && b->status != CATALOG_COMPLETE)
		rc = error_set(CF_ERR_USAGE, "backup %s is %s: only complete backups are drilled",
		               id, catalog_status_name(b->status));
	if (!rc && (!(ops = source_registry_find(b->kind)) || !ops->drill))
		rc = error_set(CF_ERR_USAGE,
		               "backup %s is a %s backup: drills restore postgres, "
		               "postgres-physical, mysql, redis and sqlite backups (verify "
		               "checks the others)",
		               id, b->kind);
	if (!rc) {
		log_context_set(b->source, b->id);
		rc = drill_backup(o, b, ops, config_source_find(v->cfg, b->source), report);
		log_context_set(NULL, NULL);
	}
	catalog_backup_free(b);
	return rc;
}

/* --drill: each chosen backup restored into a throwaway server (drill.c);
 * the first failure is the run's. */
static int verify_drill(struct verify_run *v, const struct cli *cli)
{
	struct drill_options o = {v->cfg,    v->cat,    &v->tg,       v->ids,
	                          v->target, cli->json, cli->progress};
	int rc = 0, first = 0, n = 0;
	char msg[1024] = "";

	drill_reap();
	if (v->json)
		printf("{\"drills\":[");
	for (size_t i = 0; i < v->ids_todo.n && rc != CF_ERR_INTERRUPTED; i++) {
		char *report = NULL;

		rc = verify_drill_one(v, &o, v->ids_todo.v[i], &report);
		if (report && v->json)
			printf("%s%s", n++ ? "," : "", report);
		free(report);
		if (rc && !first) {
			first = rc;
			snprintf(msg, sizeof(msg), "%s", error_message());
		}
		if (rc && rc != CF_ERR_INTERRUPTED && v->ids_todo.n > 1) {
			log_error("%s", error_message());
			error_clear();
		}
	}
	if (v->json)
		printf("],\"failed\":%s}\n", first ? "true" : "false");
	fflush(stdout);
	return first ? error_set(first, "%s", msg) : 0;
}

int cmd_verify(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"latest", no_argument, NULL, 'l'},
	                                     {"all", no_argument, NULL, 'a'},
	                                     {"source", required_argument, NULL, 's'},
	                                     {"target", required_argument, NULL, 't'},
	                                     {"identity", required_argument, NULL, 'i'},
	                                     {"drill", no_argument, NULL, 'd'},
	                                     {NULL, 0, NULL, 0}};
	struct config *cfg = NULL;
	struct verify_run v;
	const char *identity = NULL;
	int opt, rc, latest = 0, all = 0, drill = 0;

	memset(&v, 0, sizeof(v));
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 'l')
			latest = 1;
		else if (opt == 'a')
			all = 1;
		else if (opt == 's')
			v.source = optarg;
		else if (opt == 't')
			v.target = optarg;
		else if (opt == 'i')
			identity = optarg;
		else if (opt == 'd')
			drill = 1;
		else
			return agent_option_error(opt, argv, CMD_VERIFY_USAGE);
	}
	if ((optind < argc) + latest + all != 1)
		return error_set(CF_ERR_USAGE, "name the backups, or give --latest or --all (%s)",
		                 CMD_VERIFY_USAGE);
	if (drill && all)
		return error_set(CF_ERR_USAGE,
		                 "--drill restores one backup per source: name it, or give "
		                 "--latest (%s)",
		                 CMD_VERIFY_USAGE);
	rc = config_load(cli->config_path, &cfg);
	v.cfg = cfg;
	v.json = cli->json;
	v.drill = drill;
	if (!rc && v.target)
		rc = agent_target_check(cfg, v.target);
	/* The content is checked when an identity is at hand; without one
	 * (a backup host holds only the recipients) the stored bytes are. A
	 * drill restores, so it needs one. */
	if (!rc && (identity || cfg->identity || drill))
		rc = agent_load_identities(cfg, identity, &v.ids);
	if (!rc)
		rc = agent_targets_init(&v.tg, cfg);
	if (!rc)
		rc = agent_open_catalog(cfg, &v.cat);
	v.tg.cat = v.cat;
	if (!rc)
		rc = verify_select(&v, argv + optind, argc - optind, latest, all);
	if (drill) {
		if (!rc)
			rc = verify_drill(&v, cli);
		goto out;
	}
	if (!rc && v.json)
		printf("{\"copies\":[");
	for (size_t i = 0; !rc && i < v.ids_todo.n; i++)
		rc = verify_backup(&v, v.ids_todo.v[i]);
	if (!rc && v.json)
		printf("],\"verified\":%u,\"failed\":%u,\"level\":\"%s\"}\n", v.copies, v.failed,
		       v.ids ? "content" : "stored");
	fflush(stdout);
	if (!rc && v.failed)
		rc = error_set(v.first_rc, "verify: %u of %u copies failed; the first: %s",
		               v.failed, v.copies, v.first_err);
out:
	agent_targets_free(&v.tg);
	strv_free(&v.ids_todo);
	age_identities_free(v.ids);
	catalog_close(v.cat);
	config_free(cfg);
	return rc;
}
