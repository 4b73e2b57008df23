/*
 * cmd_status: `coffer status [SOURCE...] [--json]`, for a monitoring check:
 * per configured source, its newest complete backup and that backup's age
 * against the source's expect_every, copies pending, the last run's failure,
 * the last verification and drill, and running backups. Exits 0 only when
 * every source is fresh and healthy, else 11 (CF_ERR_UNHEALTHY) with one
 * error line naming each source and its first problem.
 *
 * It reads only the catalog (the summaries of a source's records, one record
 * when the last run failed, and the last verify and drill kept as catalog
 * values by cmd_verify and drill.c): no repository is opened.
 */
#include "agent/agent.h"
#include "agent/source/source.h"
#include "agent/status.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_STATUS_USAGE "usage: coffer status [SOURCE...] [--json]"

/* One line: NAME  ok|PROBLEM  last backup, copies, verify, drill. */
static void status_print(const json_t *o, int64_t now)
{
	const json_t *last = json_object_get(o, "last_backup"), *v = json_object_get(o, "verified");
	const json_t *d = json_object_get(o, "drill"), *problems = json_object_get(o, "problems");
	char age[32];

	(void)now;
	printf("%-16s  %-7s", json_string_value(json_object_get(o, "source")),
	       json_array_size(problems) ? "PROBLEM" : "ok");
	if (last) {
		status_age_text(json_integer_value(json_object_get(last, "age_seconds")) * 1000,
		                age, sizeof(age));
		printf("  last %s (%s ago), %lld cop%s",
		       json_string_value(json_object_get(last, "id")), age,
		       json_integer_value(json_object_get(last, "copies")),
		       json_integer_value(json_object_get(last, "copies")) == 1 ? "y" : "ies");
	}
	if (v)
		printf(", verify %s %.10s",
		       json_is_true(json_object_get(v, "ok")) ? "ok" : "FAILED",
		       json_string_value(json_object_get(v, "at")));
	if (d)
		printf(", drill %s %.10s (%.0f s)",
		       json_is_true(json_object_get(d, "ok")) ? "ok" : "FAILED",
		       json_string_value(json_object_get(d, "at")),
		       json_real_value(json_object_get(d, "recovery_seconds")));
	if (json_object_get(o, "wal")) {
		const json_t *w = json_object_get(o, "wal");

		status_age_text(json_integer_value(json_object_get(w, "age_seconds")) * 1000, age,
		                sizeof(age));
		printf(", wal %s (%s ago)", json_string_value(json_object_get(w, "newest")) ?: "-",
		       age);
	}
	if (json_integer_value(json_object_get(o, "running")))
		printf(", %lld running", json_integer_value(json_object_get(o, "running")));
	printf("\n");
	for (size_t i = 0; i < json_array_size(problems); i++)
		printf("%-16s  - %s\n", "", json_string_value(json_array_get(problems, i)));
}

int cmd_status(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	json_t *all = json_array();
	struct buf bad;
	int64_t now = time_now_ms();
	int opt, rc;
	size_t nbad = 0;

	buf_init(&bad, 64 * 1024);
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1)
		return agent_option_error(opt, argv, CMD_STATUS_USAGE);
	rc = all ? config_load(cli->config_path, &cfg) : error_set(CF_ERR_NOMEM, "out of memory");
	for (int i = optind; !rc && i < argc; i++)
		if (!config_source_find(cfg, argv[i]))
			rc = error_set(CF_ERR_USAGE, "no source named '%s' in %s", argv[i],
			               cfg->file);
	if (!rc && cfg->nsources == 0)
		rc = error_set(CF_ERR_CONFIG, "%s: no [source NAME] sections", cfg->file);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	for (size_t i = 0; !rc && i < cfg->nsources; i++) {
		const struct source *src = &cfg->sources[i];
		json_t *o = NULL;
		int named = optind >= argc;

		for (int k = optind; k < argc && !named; k++)
			named = !strcmp(argv[k], src->name);
		if (!named)
			continue;
		rc = status_source(cfg, cat, src, now, NULL, &o);
		if (!rc && !json_is_true(json_object_get(o, "healthy")))
			rc = buf_printf(
			    &bad, "%s%s (%s)", nbad++ ? "; " : "", src->name,
			    json_string_value(json_array_get(json_object_get(o, "problems"), 0)));
		if (!rc && !cli->json)
			status_print(o, now);
		if (!rc && json_array_append_new(all, o))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!rc && cli->json) {
		json_t *doc = json_pack("{s:O, s:b}", "sources", all, "healthy", nbad == 0);
		char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		if (!text)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		else
			printf("%s\n", text);
		free(text);
		json_decref(doc);
	}
	fflush(stdout);
	if (!rc && nbad)
		rc = error_set(CF_ERR_UNHEALTHY, "%zu of %zu source(s) not healthy: %.*s", nbad,
		               json_array_size(all), (int)bad.len, (char *)bad.data);
	buf_free(&bad);
	json_decref(all);
	catalog_close(cat);
	config_free(cfg);
	return rc;
}
