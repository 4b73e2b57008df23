/*
 * cmd_list: `coffer list [--source S] [--status STATUS] [--since WHEN]
 * [--host H] [--json]`, read from the local catalog (run `coffer catalog
 * rebuild` on a new host). The filters combine (all must match); --source
 * walks the source's index, the others are checked per record. The table
 * of one source reads the records' summaries only (catalog_summary_list():
 * a long history costs little); --json and all sources read the records.
 */
#include "agent/agent.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMD_LIST_USAGE                                                                             \
	"usage: coffer list [--source S] [--status STATUS] [--since WHEN] [--host H] [--json]"
/* The location column's width: longer locations keep their scheme and end. */
#define CMD_LIST_WHERE_MAX 28

struct cmd_list_state {
	int json;
	size_t count;
	const char *location; /* this configuration's repository (the primary) */
	struct strv targets;  /* the locations of all its targets */
	size_t elsewhere;     /* records of other repositories, not listed */
	const char *status;   /* --status, as agent_status_label() names it, or NULL */
	const char *host;     /* --host, or NULL */
	int64_t since_ms;     /* --since, or INT64_MIN */
};

/* 1 if record b is of this configuration: held by one of its targets, or
 * with a copy pending in one (a backup the primary failed to take is
 * listed, not hidden). */
static int cmd_list_ours(const struct cmd_list_state *s, const struct catalog_summary *b)
{
	if (!b->locations.n && !b->deleting.n && !b->pending.n)
		return 1; /* a record from before locations */
	for (size_t i = 0; i < s->targets.n; i++)
		if (strv_has(&b->locations, s->targets.v[i]) ||
		    strv_has(&b->pending, s->targets.v[i]))
			return 1;
	return 0;
}

/* The location column: the record's first location, shortened to its
 * scheme and end ("posix:.../backups/repo"), "+N" for more, "-" for none. */
static void cmd_list_where(const struct catalog_summary *b, char *out, size_t size)
{
	const char *loc, *colon;
	size_t len, head;
	char more[24] = "";

	if (b->locations.n == 0) {
		snprintf(out, size, "-");
		return;
	}
	if (b->locations.n > 1)
		snprintf(more, sizeof(more), " +%zu", b->locations.n - 1);
	loc = b->locations.v[0];
	len = strlen(loc);
	if (len <= CMD_LIST_WHERE_MAX) {
		snprintf(out, size, "%s%s", loc, more);
		return;
	}
	colon = strchr(loc, ':');
	head = colon && (size_t)(colon - loc) < 8 ? (size_t)(colon - loc) + 1 : 0;
	if (head && !strncmp(loc + head, "//", 2))
		head += 2;
	snprintf(out, size, "%.*s...%s%s", (int)head, loc,
	         loc + len - (CMD_LIST_WHERE_MAX - head - 3), more);
}

/* "partial" for a complete backup that missed something, else the status. */
static const char *cmd_list_status(const struct catalog_summary *b)
{
	if (b->status == CATALOG_COMPLETE && b->missing_count)
		return "partial";
	return catalog_status_name(b->status);
}

/* 1 if b passes the filters (and is of this configuration). */
static int cmd_list_wanted(struct cmd_list_state *s, const struct catalog_summary *b)
{
	if (!cmd_list_ours(s, b)) {
		s->elsewhere++;
		return 0;
	}
	return !((s->status && strcmp(cmd_list_status(b), s->status) != 0) ||
	         (s->host && strcmp(b->host, s->host) != 0) || b->started_ms < s->since_ms);
}

/* One row of the table. */
static int cmd_list_row(void *ctx, const struct catalog_summary *b)
{
	struct cmd_list_state *s = ctx;
	char started[TIME_ISO_LEN + 1], raw_s[32], stored_s[32], where[CMD_LIST_WHERE_MAX + 32],
	    copies[48];
	/* The strongest check it had: a drill, else a verify. */
	const char *checked = b->drilled    ? (b->drilled == 'o' ? "drill ok" : "drill FAILED")
	                      : b->verified ? (b->verified == 'o' ? "verified" : "FAILED")
	                                    : "-";

	if (!cmd_list_wanted(s, b))
		return 0;
	if (s->count == 0)
		printf("%-29s  %-16s  %-8s  %-24s  %10s  %10s  %-12s  %-12s  %s\n", "ID", "SOURCE",
		       "STATUS", "STARTED", "RAW", "STORED", "COPIES", "CHECKED", "LOCATION");
	time_format_iso(b->started_ms, started, sizeof(started));
	fmt_bytes(b->raw_bytes, raw_s, sizeof(raw_s));
	fmt_bytes(b->stored_bytes, stored_s, sizeof(stored_s));
	cmd_list_where(b, where, sizeof(where));
	/* Copies held of those made or pending: "2/2", "1/2 pending". */
	if (b->status != CATALOG_COMPLETE)
		snprintf(copies, sizeof(copies), "-");
	else
		snprintf(copies, sizeof(copies), "%zu/%zu%s", b->locations.n,
		         b->locations.n + b->pending.n, b->pending.n ? " pending" : "");
	printf("%-29s  %-16s  %-8s  %-24s  %10s  %10s  %-12s  %-12s  %s\n", b->id, b->source,
	       cmd_list_status(b), started, raw_s, stored_s, copies, checked, where);
	s->count++;
	return 0;
}

/* A whole record: a row, or its JSON. */
static int cmd_list_cb(void *ctx, const struct catalog_backup *b)
{
	struct cmd_list_state *s = ctx;
	struct catalog_summary sum;
	char *text = NULL;
	int rc = catalog_summary_of(b, &sum);

	if (!rc && !s->json)
		rc = cmd_list_row(s, &sum);
	else if (!rc && cmd_list_wanted(s, &sum)) {
		rc = agent_backup_json(b, 0, &text);
		if (!rc)
			printf("%s\n  %s", s->count ? "," : "[", text);
		free(text);
		s->count++;
	}
	catalog_summary_clear(&sum);
	return rc;
}

/* The end of an RFC 3339 time after the seconds: ".fraction" (ms kept) and
 * "Z" or "+HH:MM" / "-HH:MM". Sets *frac_ms and *offset_s; 0 if malformed. */
static int cmd_list_time_tail(const char *p, int *frac_ms, int *offset_s)
{
	*frac_ms = 0;
	*offset_s = 0;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				*frac_ms = *frac_ms * 10 + (*p - '0');
		if (digits == 0)
			return 0;
		for (; digits < 3; digits++)
			*frac_ms *= 10;
	}
	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')
		return 1;
	if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':' && p[1] >= '0' &&
	    p[1] <= '2' && p[2] >= '0' && p[2] <= '9' && p[4] >= '0' && p[4] <= '5' &&
	    p[5] >= '0' && p[5] <= '9') {
		*offset_s = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		            ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (p[0] == '-')
			*offset_s = -*offset_s;
		return 1;
	}
	return 0;
}

/* --since WHEN: a duration back from now (7d, 24h, 30m, 90s), a date
 * (2026-12-01, midnight UTC) or an RFC 3339 time (2026-12-01T08:00:00Z,
 * 2026-12-01T09:00:00.5+01:00). */
static int cmd_list_since(const char *text, int64_t now_ms, int64_t *out)
{
	struct tm tm;
	const char *rest;
	int64_t ms = 0;
	int frac_ms = 0, offset_s = 0, ok = 0;

	memset(&tm, 0, sizeof(tm));
	rest = text[0] >= '0' && text[0] <= '9' ? strptime(text, "%Y-%m-%d", &tm) : NULL;
	if (rest && rest - text == 10) {
		if (*rest == '\0') {
			ok = 1;
		} else if (*rest == 'T' || *rest == 't' || *rest == ' ') {
			rest = strptime(rest + 1, "%H:%M:%S", &tm);
			ok = rest && cmd_list_time_tail(rest, &frac_ms, &offset_s);
		}
		if (ok) {
			*out = ((int64_t)timegm(&tm) - offset_s) * 1000 + frac_ms;
			return 0;
		}
	} else if (time_parse_duration(text, &ms) == 0) {
		*out = now_ms - ms;
		return 0;
	}
	error_clear();
	return error_set(
	    CF_ERR_USAGE,
	    "--since '%.64s' is not a time (expected a duration back from now such as "
	    "7d, 24h, 30m or 90s, a date such as 2026-12-01 (UTC), or an RFC 3339 time "
	    "such as 2026-12-01T08:00:00Z)",
	    text);
}

int cmd_list(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"source", required_argument, NULL, 's'}, {"status", required_argument, NULL, 'S'},
	    {"since", required_argument, NULL, 't'},  {"host", required_argument, NULL, 'H'},
	    {"json", no_argument, NULL, 'j'},         {NULL, 0, NULL, 0}};
	static const char *const statuses[] = {"running", "complete", "failed", "partial"};
	struct cmd_list_state s = {.json = cli->json, .since_ms = INT64_MIN};
	const char *source = NULL;
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	char *location = NULL;
	int opt, rc = 0;

	optind = 0;
	while (!rc && (opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 's') {
			source = optarg;
		} else if (opt == 'S') {
			s.status = NULL;
			for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
				if (!strcmp(optarg, statuses[i]))
					s.status = statuses[i];
			if (!s.status)
				rc =
				    error_set(CF_ERR_USAGE,
				              "--status '%.64s' is not a status (expected running, "
				              "complete, failed or partial)",
				              optarg);
		} else if (opt == 't') {
			rc = cmd_list_since(optarg, time_now_ms(), &s.since_ms);
		} else if (opt == 'H') {
			s.host = optarg;
		} else if (opt == 'j') {
			s.json = 1;
		} else {
			rc = agent_option_error(opt, argv, CMD_LIST_USAGE);
		}
	}
	if (!rc && optind != argc)
		rc = error_set(CF_ERR_USAGE, CMD_LIST_USAGE);
	if (!rc)
		rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_repo_location(cfg, &location);
	s.location = location;
	for (size_t i = 0; !rc && i < cfg->ntargets; i++) {
		char *loc = NULL;

		rc = agent_target_location(cfg, i, &loc);
		if (!rc && strv_add(&s.targets, loc))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		free(loc);
	}
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc && source && !s.json)
		rc = catalog_summary_list(cat, source, cmd_list_row, &s);
	else if (!rc)
		rc = catalog_backup_list(cat, source, cmd_list_cb, &s);
	if (!rc && s.json)
		printf("%s]\n", s.count ? "\n" : "[");
	else if (!rc && s.count == 0)
		printf("no backups%s%s%s in %s\n", source ? " of source " : "",
		       source ? source : "",
		       s.status || s.host || s.since_ms != INT64_MIN ? " matching the filters" : "",
		       location);
	if (!rc && s.elsewhere)
		log_info("%zu backup(s) of other repositories in the catalog %s not listed",
		         s.elsewhere, cfg->catalog_path);
	free(location);
	strv_free(&s.targets);
	catalog_close(cat);
	config_free(cfg);
	return rc;
}
