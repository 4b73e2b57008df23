/*
 * cmd_show: `coffer show ID [--source S] [--json]`, one backup's record:
 * objects, sizes, digests, what is missing, the source's meta. ID is what
 * agent_resolve_id() takes (latest, a prefix, a whole id); the record comes
 * from the local catalog (any status), else, for a backup this host has no
 * record of, from its manifest in the repository (agent_find_backup()).
 */
#include "agent/agent.h"
#include "agent/status.h"
#include "agent/wal.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_SHOW_USAGE "usage: coffer show ID [--source S] [--json]"

/* The last restore drill's outcome on one line (the report: --json). */
static void cmd_show_drill(const struct catalog_backup *b)
{
	json_t *r = b->drill_json ? json_loads(b->drill_json, 0, NULL) : NULL;
	json_t *fails = json_object_get(r, "failures"), *flags = json_object_get(r, "flags");

	if (!r)
		return;
	printf("drill:     %s %s: recovery %.1f s, %lld rows in %lld tables%s%s",
	       json_string_value(json_object_get(r, "at")),
	       json_is_true(json_object_get(r, "ok")) ? "ok" : "FAILED",
	       json_real_value(json_object_get(r, "recovery_seconds")),
	       json_integer_value(json_object_get(r, "rows")),
	       json_integer_value(json_object_get(r, "tables")), json_array_size(fails) ? "; " : "",
	       json_array_size(fails) ? json_string_value(json_array_get(fails, 0)) : "");
	if (json_array_size(flags))
		printf("; %zu flag(s), the first: %s", json_array_size(flags),
		       json_string_value(json_array_get(flags, 0)));
	printf("\n");
	json_decref(r);
}

/* The manifest of a backup the catalog has no record of. */
static int cmd_show_from_repo(const struct config *cfg, struct catalog *cat, const char *id,
                              const char *source, struct catalog_backup **out)
{
	struct repo_trust trust;
	struct repo *r = NULL;
	int rc = agent_trust_load(cfg, 0, &trust);

	if (rc)
		return rc;
	rc = agent_open_repo(cfg, cat, &trust, &r);
	if (!rc)
		rc = agent_find_backup(cfg, r, id, source, out);
	repo_close(r);
	repo_trust_free(&trust);
	return rc;
}

/* One "meta:" line per field of a meta object: "key: value", strings bare,
 * anything else as compact JSON. */
static void cmd_show_meta(const char *label, const char *meta_json)
{
	json_t *m = meta_json ? json_loads(meta_json, 0, NULL) : NULL;
	const char *k;
	json_t *v;

	if (!json_is_object(m)) {
		json_decref(m);
		return;
	}
	json_object_foreach(m, k, v)
	{
		char *text =
		    json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("%-10s %s: %s\n", label, k, text ? text : json_string_value(v));
		free(text);
	}
	json_decref(m);
}

/* The pending entry of b at loc, or NULL. */
static const struct catalog_pending *cmd_show_pending(const struct catalog_backup *b,
                                                      const char *loc)
{
	for (size_t i = 0; i < b->npending; i++)
		if (!strcmp(b->pending[i].location, loc))
			return &b->pending[i];
	return NULL;
}

static void cmd_show_copy(const char *name, const struct catalog_backup *b, const char *loc)
{
	const struct catalog_pending *p = cmd_show_pending(b, loc);
	char t[TIME_ISO_LEN + 1];

	if (p) {
		time_format_iso(p->since_ms, t, sizeof(t));
		printf("copy:      %-10s pending   %s (since %s: %s)\n", name, loc, t, p->error);
	} else {
		printf("copy:      %-10s %-9s %s\n", name,
		       strv_has(&b->locations, loc)  ? "complete"
		       : strv_has(&b->deleting, loc) ? "deleting"
		       : strv_has(&b->pruned, loc)   ? "pruned"
		                                     : "missing",
		       loc);
	}
}

/* One line per copy: each configured target the backup's source uses
 * (complete, pending with its error, or missing), then any other location
 * the record names (a target no longer configured). */
static void cmd_show_copies(const struct config *cfg, const struct catalog_backup *b)
{
	struct strv seen = {NULL, 0, 0};

	for (size_t i = 0; i < cfg->ntargets; i++) {
		char *loc = NULL;

		if (agent_target_location(cfg, i, &loc)) {
			error_clear();
			continue;
		}
		if (config_source_uses(cfg, b->source, i) || strv_has(&b->locations, loc) ||
		    strv_has(&b->deleting, loc) || cmd_show_pending(b, loc))
			cmd_show_copy(cfg->targets[i].name, b, loc);
		(void)strv_add(&seen, loc);
		free(loc);
	}
	for (size_t i = 0; i < b->locations.n; i++)
		if (!strv_has(&seen, b->locations.v[i]))
			cmd_show_copy("-", b, b->locations.v[i]);
	for (size_t i = 0; i < b->npending; i++)
		if (!strv_has(&seen, b->pending[i].location))
			cmd_show_copy("-", b, b->pending[i].location);
	strv_free(&seen);
}

/* A physical base backup: how far the source's WAL archive reaches now
 * (restore --to-datadir --at can go up to there). */
static void cmd_show_wal(struct catalog *cat, const struct catalog_backup *b)
{
	char *text = NULL, at[TIME_ISO_LEN + 1], age[32];
	json_t *st;
	int64_t last;

	if (!cat || strcmp(b->kind, "postgres-physical") || wal_state(cat, b->source, &text) ||
	    !text) {
		error_clear();
		if (!strcmp(b->kind, "postgres-physical"))
			printf("wal:       no WAL of %s recorded in this catalog\n", b->source);
		return;
	}
	st = json_loads(text, 0, NULL);
	free(text);
	last = json_integer_value(json_object_get(st, "last_push_ms"));
	time_format_iso(last, at, sizeof(at));
	status_age_text(time_real_ms() - last, age, sizeof(age));
	printf("wal:       newest archived %s, stored %s (%s ago)\n",
	       json_string_value(json_object_get(st, "newest")) ?: "-", at, age);
	json_decref(st);
}

static void cmd_show_text(const struct config *cfg, struct catalog *cat,
                          const struct catalog_backup *b)
{
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
	if (b->verified_ms) {
		time_format_iso(b->verified_ms, t, sizeof(t));
		printf("verified:  %s %s (%s)%s%s\n", t, b->verified_ok ? "ok" : "FAILED",
		       b->verified_level ? b->verified_level : "stored",
		       b->verified_error ? ": " : "", b->verified_error ? b->verified_error : "");
	} else {
		printf("verified:  never ('coffer verify %s')\n", b->id);
	}
	cmd_show_drill(b);
	cmd_show_meta("meta:", b->meta_json);
	cmd_show_wal(cat, b);
	cmd_show_copies(cfg, b);
	for (size_t i = 0; i < b->recipients.n; i++)
		printf("recipient: %s\n", b->recipients.v[i]);
	for (size_t i = 0; i < b->nobjects; i++) {
		const struct catalog_object *o = &b->objects[i];

		fmt_bytes(o->raw_bytes, raw, sizeof(raw));
		fmt_bytes(o->stored_bytes, stored, sizeof(stored));
		printf("object:    %s (%s, %s+%s) raw %s stored %s sha256 %s\n", o->key, o->format,
		       o->compression, o->encryption, raw, stored, o->sha256 ? o->sha256 : "-");
		cmd_show_meta("  meta:", o->meta_json);
	}
}

int cmd_show(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"source", required_argument, NULL, 's'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {NULL, 0, NULL, 0}};
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	struct catalog_backup *b = NULL;
	char full[BACKUP_ID_LEN + 1];
	const char *source = NULL;
	char *json = NULL, *location = NULL;
	int opt, rc, as_json = cli->json;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 's')
			source = optarg;
		else if (opt == 'j')
			as_json = 1;
		else
			return agent_option_error(opt, argv, CMD_SHOW_USAGE);
	}
	if (optind != argc - 1)
		return error_set(CF_ERR_USAGE, CMD_SHOW_USAGE);
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_repo_location(cfg, &location);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc)
		rc = agent_resolve_id(cfg, cat, location, argv[optind], source, full);
	if (!rc) {
		rc = catalog_backup_get(cat, full, &b);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = cmd_show_from_repo(cfg, cat, full, source, &b);
		} else if (!rc && source && strcmp(b->source, source) != 0) {
			rc = error_set(CF_ERR_NOTFOUND, "backup %s is of source %s, not %s", b->id,
			               b->source, source);
		}
	}
	if (!rc && as_json) {
		rc = agent_backup_json(b, CATALOG_JSON_PRETTY, &json);
		if (!rc)
			printf("%s\n", json);
	} else if (!rc) {
		cmd_show_text(cfg, cat, b);
	}
	free(json);
	free(location);
	catalog_backup_free(b);
	catalog_close(cat);
	config_free(cfg);
	return rc;
}
