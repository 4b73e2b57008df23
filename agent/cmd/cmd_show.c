/*
 * cmd_show: `coffer show ID [--json]`, one backup's record from the local
 * catalog: objects, sizes, digests, what is missing.
 */
#include "agent/agent.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_show(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	struct catalog_backup *b = NULL;
	char *json = NULL;
	int opt, rc, as_json = cli->json;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'j')
			as_json = 1;
		else
			return error_set(CF_ERR_USAGE, "usage: coffer show ID [--json]");
	}
	if (optind != argc - 1)
		return error_set(CF_ERR_USAGE, "usage: coffer show ID [--json]");
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc) {
		rc = catalog_backup_get(cat, argv[optind], &b);
		if (rc == CF_ERR_NOTFOUND)
			rc = error_set(rc, "no backup %s in the catalog %s", argv[optind],
			               cfg->catalog_path);
	}
	if (!rc && as_json) {
		rc = catalog_backup_to_json(b, CATALOG_JSON_PRETTY, &json);
		if (!rc)
			printf("%s\n", json);
	} else if (!rc) {
		char t[TIME_ISO_LEN + 1], raw[32], stored[32];

		printf("id:        %s\nsource:    %s (%s)\nhost:      %s\nstatus:    %s\n", b->id,
		       b->source, b->kind, b->host ? b->host : "", agent_status_label(b));
		time_format_iso(b->started_ms, t, sizeof(t));
		printf("started:   %s\n", t);
		if (b->finished_ms) {
			time_format_iso(b->finished_ms, t, sizeof(t));
			printf("finished:  %s\n", t);
		}
		if (b->error)
			printf("error:     %s\n", b->error);
		if (b->missing_count)
			printf("partial:   %llu item(s) could not be backed up%s\n",
			       (unsigned long long)b->missing_count,
			       b->missing_count > b->missing.n ? "; the first ones:" : ":");
		for (size_t i = 0; i < b->missing.n; i++)
			printf("missing:   %s\n", b->missing.v[i]);
		printf("coffer:    %s\n", b->coffer_version ? b->coffer_version : "");
		for (size_t i = 0; i < b->locations.n; i++)
			printf("location:  %s\n", b->locations.v[i]);
		for (size_t i = 0; i < b->recipients.n; i++)
			printf("recipient: %s\n", b->recipients.v[i]);
		for (size_t i = 0; i < b->nobjects; i++) {
			const struct catalog_object *o = &b->objects[i];

			fmt_bytes(o->raw_bytes, raw, sizeof(raw));
			fmt_bytes(o->stored_bytes, stored, sizeof(stored));
			printf("object:    %s (%s, %s+%s) raw %s stored %s sha256 %s\n", o->key,
			       o->format, o->compression, o->encryption, raw, stored,
			       o->sha256 ? o->sha256 : "-");
		}
	}
	free(json);
	catalog_backup_free(b);
	catalog_close(cat);
	config_free(cfg);
	return rc;
}
