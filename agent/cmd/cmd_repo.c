/*
 * cmd_repo: `coffer repo cleanup [--older-than AGE]`: leftovers of
 * interrupted backups (repo_cleanup(); what may be deleted is repo.h's
 * deletion rules): dead runs of this host settled, unfinished writes and
 * backup folders without a manifest whose run is known dead or older than
 * AGE removed. A folder with a manifest is never touched.
 */
#include "agent/agent.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_repo_cleanup(const struct cli *cli, const struct config *cfg, int64_t older_ms)
{
	struct catalog *cat = NULL;
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	unsigned reaped = 0, temporary = 0, folders = 0, deleted = 0;
	char *primary = NULL;
	json_t *per = json_array();
	int rc = per ? 0 : error_set(CF_ERR_NOMEM, "out of memory");

	if (!rc)
		rc = agent_trust_load(cfg, 0, &trust);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	/* Every target: a backup writes to all, so leftovers can be in any. */
	for (size_t i = 0; !rc && i < cfg->ntargets; i++) {
		struct repo *repo = NULL;
		struct repo_cleanup_result res = {0, 0, 0};
		unsigned n = 0;

		rc = agent_open_target(cfg, i, cat, &trust, &repo);
		if (!rc)
			rc = agent_reap_stale_runs(repo, &n);
		if (!rc)
			rc = repo_cleanup(repo, older_ms, &res);
		if (!rc && !i && !(primary = strdup(repo_location(repo))))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		if (!rc &&
		    json_array_append_new(
		        per,
		        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", cfg->targets[i].name,
		                  "repository", repo_location(repo), "interrupted_runs",
		                  (json_int_t)n, "temporary_files", (json_int_t)res.temporary,
		                  "incomplete_backups", (json_int_t)res.folders, "deleted_backups",
		                  (json_int_t)res.deleted)))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		if (!rc && !cli->json && !cli->quiet) {
			printf("%s%smarked %u interrupted run(s) failed, removed %u temporary "
			       "file(s) and %u incomplete backup(s)",
			       cfg->ntargets > 1 ? repo_location(repo) : "",
			       cfg->ntargets > 1 ? ": " : "", n, res.temporary, res.folders);
			if (res.deleted)
				printf("; finished deleting %u backup(s) an interrupted prune left",
				       res.deleted);
			printf("\n");
		}
		reaped += n;
		temporary += res.temporary;
		folders += res.folders;
		deleted += res.deleted;
		repo_close(repo);
	}
	if (!rc && cli->json)
		rc = agent_print_json(
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:O}", "repository", primary,
		              "interrupted_runs", (json_int_t)reaped, "temporary_files",
		              (json_int_t)temporary, "incomplete_backups", (json_int_t)folders,
		              "deleted_backups", (json_int_t)deleted, "repositories", per));
	json_decref(per);
	free(primary);
	catalog_close(cat);
	repo_trust_free(&trust);
	return rc;
}

int cmd_repo(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"older-than", required_argument, NULL, 'o'},
	                                     {NULL, 0, NULL, 0}};
	static const char usage[] = "usage: coffer repo cleanup [--older-than AGE]";
	struct config *cfg = NULL;
	int64_t older_ms = 24 * 3600 * 1000LL;
	int opt, rc;

	if (argc < 2 || strcmp(argv[1], "cleanup") != 0)
		return error_set(CF_ERR_USAGE, "%s", usage);
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
		if (opt != 'o')
			return agent_option_error(opt, argv + 1, usage);
		if (time_parse_duration(optarg, &older_ms))
			return error_set(CF_ERR_USAGE, "--older-than %s", error_message());
	}
	if (optind != argc - 1)
		return error_set(CF_ERR_USAGE, "%s", usage);
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = cmd_repo_cleanup(cli, cfg, older_ms);
	config_free(cfg);
	return rc;
}
