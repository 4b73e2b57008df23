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

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_STATUS_USAGE "usage: coffer status [SOURCE...] [--json]"

/* What the summaries of one source say. */
struct status_scan {
	char complete[BACKUP_ID_LEN + 1]; /* the newest complete backup */
	int64_t complete_ms;
	size_t copies, pending;
	char last[BACKUP_ID_LEN + 1]; /* the newest run that ended */
	int last_failed;
	size_t running;
};

static int status_scan_cb(void *ctx, const struct catalog_summary *s)
{
	struct status_scan *sc = ctx;

	/* Oldest start first: the last one seen of each kind is the newest. */
	if (s->status == CATALOG_RUNNING) {
		sc->running++;
		return 0;
	}
	snprintf(sc->last, sizeof(sc->last), "%s", s->id);
	sc->last_failed = s->status == CATALOG_FAILED;
	if (s->status == CATALOG_COMPLETE && s->locations.n) {
		snprintf(sc->complete, sizeof(sc->complete), "%s", s->id);
		sc->complete_ms = s->started_ms;
		sc->copies = s->locations.n;
		sc->pending = s->pending.n;
	}
	return 0;
}

/* "3d4h", "5h12m", "40m", "12s": a coarse age. */
static void status_age(int64_t ms, char *out, size_t size)
{
	int64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(out, size, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, size, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(out, size, "%lldm", (long long)(s / 60));
	else
		snprintf(out, size, "%llds", (long long)(s < 0 ? 0 : s));
}

/* The catalog value name:source as JSON, or NULL. */
static json_t *status_meta(struct catalog *cat, const char *name, const char *source)
{
	char key[300], *text = NULL;
	json_t *j = NULL;

	snprintf(key, sizeof(key), "%s:%s", name, source);
	if (catalog_meta_get_str(cat, key, &text) == 0)
		j = json_loads(text, 0, NULL);
	error_clear();
	free(text);
	return j;
}

/* Appends a problem to the source's list. */
static int status_problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int status_problem(json_t *problems, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return json_array_append_new(problems, json_string(line)) ? error_set(CF_ERR_NOMEM, "out of memory")
	                                                          : 0;
}

/* The status of one source as JSON (*out). */
static int status_source(struct catalog *cat, const struct source *src, int64_t now, json_t **out)
{
	struct status_scan sc;
	json_t *o = json_object(), *problems = json_array(), *ver, *drill;
	char age[32], every[32];
	int rc = o && problems ? 0 : error_set(CF_ERR_NOMEM, "out of memory");

	memset(&sc, 0, sizeof(sc));
	if (!rc)
		rc = catalog_summary_list(cat, src->name, status_scan_cb, &sc);
	ver = status_meta(cat, "verify", src->name);
	drill = status_meta(cat, "drill", src->name);
	status_age(src->expect_every_ms, every, sizeof(every));
	if (!rc && !sc.complete[0])
		rc = status_problem(problems, "never backed up");
	if (!rc && sc.complete[0]) {
		char at[TIME_ISO_LEN + 1];

		time_format_iso(sc.complete_ms, at, sizeof(at));
		status_age(now - sc.complete_ms, age, sizeof(age));
		rc = json_object_set_new(o, "last_backup",
		                         json_pack("{s:s, s:s, s:I, s:I, s:I}", "id", sc.complete,
		                                   "started", at, "age_seconds",
		                                   (json_int_t)((now - sc.complete_ms) / 1000), "copies",
		                                   (json_int_t)sc.copies, "pending_copies",
		                                   (json_int_t)sc.pending))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
		if (!rc && src->expect_every_ms && now - sc.complete_ms > src->expect_every_ms)
			rc = status_problem(problems,
			                    "the last complete backup is %s old (expect_every %s)", age,
			                    every);
		if (!rc && sc.pending)
			rc = status_problem(problems,
			                    "%zu cop%s of %s pending (coffer replicate makes them)",
			                    sc.pending, sc.pending == 1 ? "y" : "ies", sc.complete);
	}
	if (!rc && sc.last_failed) {
		struct catalog_backup *b = NULL;

		if (catalog_backup_get(cat, sc.last, &b) == 0)
			rc = status_problem(problems, "the last run (%s) failed: %s", sc.last,
			                    b->error ? b->error : "no error recorded");
		error_clear();
		catalog_backup_free(b);
		if (!rc)
			rc = json_object_set_new(o, "last_failed", json_string(sc.last));
	}
	if (!rc && ver && !json_is_true(json_object_get(ver, "ok")))
		rc = status_problem(problems, "the last verify (%s, %s) failed: %s",
		                    json_string_value(json_object_get(ver, "id")),
		                    json_string_value(json_object_get(ver, "at")),
		                    json_string_value(json_object_get(ver, "error")) ?: "?");
	if (!rc && drill && !json_is_true(json_object_get(drill, "ok")))
		rc = status_problem(
		    problems, "the last drill (%s, %s) failed: %s",
		    json_string_value(json_object_get(drill, "id")),
		    json_string_value(json_object_get(drill, "at")),
		    json_string_value(json_array_get(json_object_get(drill, "failures"), 0)) ?: "?");
	if (!rc && drill) {
		/* The report's summary, not its tables. */
		json_t *d = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "id",
		                      json_object_get(drill, "id"), "at", json_object_get(drill, "at"),
		                      "ok", json_object_get(drill, "ok"), "recovery_seconds",
		                      json_object_get(drill, "recovery_seconds"), "rows",
		                      json_object_get(drill, "rows"));

		rc = !d || json_object_set_new(o, "drill", d) ? error_set(CF_ERR_NOMEM, "out of memory")
		                                              : 0;
	}
	if (!rc && ver && json_object_set(o, "verified", ver))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && (json_object_set_new(o, "source", json_string(src->name)) ||
	            json_object_set_new(o, "healthy", json_boolean(!json_array_size(problems))) ||
	            json_object_set_new(o, "running", json_integer((json_int_t)sc.running)) ||
	            (src->expect_every_ms &&
	             json_object_set_new(o, "expect_every_seconds",
	                                 json_integer(src->expect_every_ms / 1000))) ||
	            json_object_set(o, "problems", problems)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	json_decref(problems);
	json_decref(ver);
	json_decref(drill);
	if (rc) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

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
		status_age(json_integer_value(json_object_get(last, "age_seconds")) * 1000, age,
		           sizeof(age));
		printf("  last %s (%s ago), %lld cop%s", json_string_value(json_object_get(last, "id")),
		       age, json_integer_value(json_object_get(last, "copies")),
		       json_integer_value(json_object_get(last, "copies")) == 1 ? "y" : "ies");
	}
	if (v)
		printf(", verify %s %.10s", json_is_true(json_object_get(v, "ok")) ? "ok" : "FAILED",
		       json_string_value(json_object_get(v, "at")));
	if (d)
		printf(", drill %s %.10s (%.0f s)", json_is_true(json_object_get(d, "ok")) ? "ok" : "FAILED",
		       json_string_value(json_object_get(d, "at")),
		       json_real_value(json_object_get(d, "recovery_seconds")));
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
			rc = error_set(CF_ERR_USAGE, "no source named '%s' in %s", argv[i], cfg->file);
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
		rc = status_source(cat, src, now, &o);
		if (!rc && !json_is_true(json_object_get(o, "healthy")))
			rc = buf_printf(&bad, "%s%s (%s)", nbad++ ? "; " : "", src->name,
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
