/*
 * cmd_list: `coffer list [--source S] [--json]`, read from the local catalog
 * (run `coffer catalog rebuild` on a new host).
 */
#include "agent/agent.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmd_list_state {
	int json;
	size_t count;
	const char *location; /* this configuration's repository */
	size_t elsewhere;     /* records of other repositories, not listed */
};

static int cmd_list_cb(void *ctx, const struct catalog_backup *b)
{
	struct cmd_list_state *s = ctx;
	char started[TIME_ISO_LEN + 1], raw_s[32], stored_s[32];
	uint64_t raw, stored;

	if (!repo_record_at(b, s->location)) {
		s->elsewhere++;
		return 0;
	}
	agent_backup_sizes(b, &raw, &stored);
	if (s->json) {
		char *text = NULL;
		json_t *obj;
		int rc = catalog_backup_to_json(b, 0, &text);

		if (rc)
			return rc;
		/* Flat size totals make the list easy to use from jq and scripts. */
		obj = json_loads(text, 0, NULL);
		free(text);
		if (!obj)
			return error_set(CF_ERR_INTERNAL, "cannot re-read the record of %s", b->id);
		json_object_set_new(obj, "raw_bytes", json_integer((json_int_t)raw));
		json_object_set_new(obj, "stored_bytes", json_integer((json_int_t)stored));
		json_object_set_new(obj, "partial", json_boolean(b->missing_count > 0));
		text = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
		json_decref(obj);
		if (!text)
			return error_set(CF_ERR_NOMEM, "out of memory");
		printf("%s\n  %s", s->count ? "," : "", text);
		free(text);
	} else {
		if (s->count == 0)
			printf("%-29s  %-16s  %-8s  %-24s  %10s  %10s\n", "ID", "SOURCE", "STATUS",
			       "STARTED", "RAW", "STORED");
		time_format_iso(b->started_ms, started, sizeof(started));
		fmt_bytes(raw, raw_s, sizeof(raw_s));
		fmt_bytes(stored, stored_s, sizeof(stored_s));
		printf("%-29s  %-16s  %-8s  %-24s  %10s  %10s\n", b->id, b->source,
		       agent_status_label(b), started, raw_s, stored_s);
	}
	s->count++;
	return 0;
}

int cmd_list(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"source", required_argument, NULL, 's'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {NULL, 0, NULL, 0}};
	struct cmd_list_state s = {cli->json, 0, NULL, 0};
	const char *source = NULL;
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	char *location = NULL;
	int opt, rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's')
			source = optarg;
		else if (opt == 'j')
			s.json = 1;
		else
			return error_set(CF_ERR_USAGE, "usage: coffer list [--source S] [--json]");
	}
	if (optind != argc)
		return error_set(CF_ERR_USAGE, "usage: coffer list [--source S] [--json]");
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_repo_location(cfg, &location);
	s.location = location;
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc && s.json)
		printf("[");
	if (!rc)
		rc = catalog_backup_list(cat, source, cmd_list_cb, &s);
	if (!rc && s.json)
		printf("%s]\n", s.count ? "\n" : "");
	else if (!rc && s.count == 0)
		printf("no backups%s%s in %s\n", source ? " of source " : "", source ? source : "",
		       location);
	if (!rc && s.elsewhere)
		log_info("%zu backup(s) of other repositories in the catalog %s not listed",
		         s.elsewhere, cfg->catalog_path);
	free(location);
	catalog_close(cat);
	config_free(cfg);
	return rc;
}
