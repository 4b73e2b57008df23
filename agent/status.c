/*
 * status: how each source stands, from the catalog alone: its newest
 * complete backup and that backup's age against expect_every, copies
 * pending, the last run's failure, the last verify and drill. `coffer
 * status` prints it; the metrics file (metrics_file in [catalog]) is
 * written from it after every command that changes the catalog.
 */
#include "agent/status.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"
#include "agent/source/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the summaries of one source say. */
struct status_scan {
	char complete[BACKUP_ID_LEN + 1]; /* the newest complete backup */
	int64_t complete_ms;
	size_t copies, pending;
	uint64_t raw, stored;
	char last[BACKUP_ID_LEN + 1]; /* the newest run that ended */
	int64_t last_ms;
	int last_failed;
	size_t running;
	json_t *loc_ms; /* location -> start ms of its newest complete backup */
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
	sc->last_ms = s->started_ms;
	sc->last_failed = s->status == CATALOG_FAILED;
	if (s->status == CATALOG_COMPLETE && s->locations.n) {
		snprintf(sc->complete, sizeof(sc->complete), "%s", s->id);
		sc->complete_ms = s->started_ms;
		sc->copies = s->locations.n;
		sc->pending = s->pending.n;
		sc->raw = s->raw_bytes;
		sc->stored = s->stored_bytes;
		for (size_t i = 0; sc->loc_ms && i < s->locations.n; i++)
			if (json_object_set_new(sc->loc_ms, s->locations.v[i],
			                        json_integer(s->started_ms)))
				return error_set(CF_ERR_NOMEM, "out of memory");
	}
	return 0;
}

/* "3d4h", "5h12m", "40m", "12s": a coarse age. */
void status_age_text(int64_t ms, char *out, size_t size)
{
	int64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(out, size, "%lldd%lldh", (long long)(s / 86400),
		         (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, size, "%lldh%lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
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
	return json_array_append_new(problems, json_string(line))
	           ? error_set(CF_ERR_NOMEM, "out of memory")
	           : 0;
}

/* Queued async pushes older than a minute: the pusher is not running (the
 * next wal-push starts one), and the archive is behind what PostgreSQL
 * thinks it is. */
static int status_wal_spool(const struct config *cfg, const struct source *src, int64_t now,
                            json_t *problems)
{
	char dir[4200], path[4500];
	size_t old = 0;
	struct dirent *e;
	DIR *d;

	if (!cfg || source_pgphys_spool(cfg, src, dir, sizeof(dir) - 8)) {
		error_clear();
		return 0;
	}
	strcat(dir, "/out");
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && !strstr(e->d_name, ".tmp") && stat(path, &sb) == 0 &&
		    now - (int64_t)sb.st_mtime * 1000 > 60000)
			old++;
	}
	closedir(d);
	return old ? status_problem(problems,
	                            "%zu WAL file(s) queued in %s for more than a minute: no "
	                            "pusher is running (coffer wal-push --background --source %s "
	                            "starts one)",
	                            old, dir, src->name)
	           : 0;
}

/* A postgres-physical source's WAL archive: the newest file and the
 * archive's age (since the last push) against expect_wal_every. */
static int status_wal(const struct config *cfg, struct catalog *cat, const struct source *src,
                      int64_t now, json_t *o, json_t *problems)
{
	const struct source_pgphys_wal *w = source_pgphys_wal(src);
	char *text = NULL, age[32], every[32], at[TIME_ISO_LEN + 1];
	json_t *st, *out;
	int64_t last;
	int rc = wal_state(cat, src->name, &text);

	if (rc)
		return rc;
	if (!text)
		return status_problem(problems,
		                      "no WAL archived yet (archive_command = 'coffer "
		                      "wal-push --source %s %%p')",
		                      src->name);
	st = json_loads(text, 0, NULL);
	free(text);
	last = json_integer_value(json_object_get(st, "last_push_ms"));
	time_format_iso(last, at, sizeof(at));
	status_age_text(now - last, age, sizeof(age));
	status_age_text(w->expect_every_ms, every, sizeof(every));
	out = json_pack("{s:O?, s:s, s:I, s:O?}", "newest", json_object_get(st, "newest"),
	                "last_push", at, "age_seconds", (json_int_t)((now - last) / 1000),
	                "timelines", json_object_get(st, "timelines"));
	rc = !out || json_object_set_new(o, "wal", out) ? error_set(CF_ERR_NOMEM, "out of memory")
	                                                : 0;
	if (!rc && w->expect_every_ms && now - last > w->expect_every_ms)
		rc = status_problem(
		    problems,
		    "the WAL archive is %s old: the newest file (%s) was stored at %s "
		    "(expect_wal_every %s; is archive_command failing?)",
		    age, json_string_value(json_object_get(st, "newest")) ?: "?", at, every);
	json_decref(st);
	if (!rc)
		rc = status_wal_spool(cfg, src, now, problems);
	if (!rc && !(rc = wal_pending(cat, src->name, &text)) && text) {
		json_t *pend = json_loads(text, 0, NULL);

		free(text);
		rc = status_problem(problems,
		                    "%zu WAL file(s) still lack a copy in a repository that was "
		                    "unreachable (the next wal-push makes them)",
		                    json_object_size(pend));
		json_decref(pend);
	}
	return rc;
}

/* The status of one source as JSON (*out). */
int status_source(const struct config *cfg, struct catalog *cat, const struct source *src,
                  int64_t now, json_t *loc_ms, json_t **out)
{
	struct status_scan sc;
	json_t *o = json_object(), *problems = json_array(), *ver, *drill;
	char age[32], every[32];
	int rc = o && problems ? 0 : error_set(CF_ERR_NOMEM, "out of memory");

	memset(&sc, 0, sizeof(sc));
	sc.loc_ms = loc_ms;
	if (!rc)
		rc = catalog_summary_list(cat, src->name, status_scan_cb, &sc);
	ver = status_meta(cat, "verify", src->name);
	drill = status_meta(cat, "drill", src->name);
	status_age_text(src->expect_every_ms, every, sizeof(every));
	if (!rc && !sc.complete[0])
		rc = status_problem(problems, "never backed up");
	if (!rc && sc.complete[0]) {
		char at[TIME_ISO_LEN + 1];

		time_format_iso(sc.complete_ms, at, sizeof(at));
		status_age_text(now - sc.complete_ms, age, sizeof(age));
		rc = json_object_set_new(o, "last_backup",
		                         json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id",
		                                   sc.complete, "started", at, "age_seconds",
		                                   (json_int_t)((now - sc.complete_ms) / 1000),
		                                   "copies", (json_int_t)sc.copies,
		                                   "pending_copies", (json_int_t)sc.pending,
		                                   "raw_bytes", (json_int_t)sc.raw, "stored_bytes",
		                                   (json_int_t)sc.stored))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
		if (!rc && src->expect_every_ms && now - sc.complete_ms > src->expect_every_ms)
			rc = status_problem(problems,
			                    "the last complete backup is %s old (expect_every %s)",
			                    age, every);
		if (!rc && sc.pending)
			rc = status_problem(problems,
			                    "%zu cop%s of %s pending (coffer replicate makes them)",
			                    sc.pending, sc.pending == 1 ? "y" : "ies", sc.complete);
	}
	if (!rc && source_pgphys_wal(src))
		rc = status_wal(cfg, cat, src, now, o, problems);
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
		    json_string_value(json_array_get(json_object_get(drill, "failures"), 0))
		        ?: "?");
	if (!rc && drill) {
		/* The report's summary, not its tables. */
		json_t *d = json_pack(
		    "{s:O?, s:O?, s:O?, s:O?, s:O?}", "id", json_object_get(drill, "id"), "at",
		    json_object_get(drill, "at"), "ok", json_object_get(drill, "ok"),
		    "recovery_seconds", json_object_get(drill, "recovery_seconds"), "rows",
		    json_object_get(drill, "rows"));

		rc = !d || json_object_set_new(o, "drill", d)
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
	}
	if (!rc && ver && json_object_set(o, "verified", ver))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && sc.last[0]) {
		char at[TIME_ISO_LEN + 1];

		time_format_iso(sc.last_ms, at, sizeof(at));
		rc = json_object_set_new(o, "last_run",
		                         json_pack("{s:s, s:s, s:b}", "id", sc.last, "started", at,
		                                   "ok", !sc.last_failed))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
	}
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

/* ------------------------------------------------------------------------ */
/* The metrics file                                                         */
/* ------------------------------------------------------------------------ */

/* One gauge's HELP and TYPE lines. */
static int metrics_head(struct buf *b, const char *name, const char *help)
{
	return buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* A label value with \, " and newline escaped (Prometheus text format). */
static int metrics_label(struct buf *b, const char *v)
{
	int rc = 0;

	for (; !rc && *v; v++)
		rc = *v == '\\' || *v == '"' ? buf_printf(b, "\\%c", *v)
		     : *v == '\n'            ? buf_printf(b, "\\n")
		                             : buf_append(b, v, 1);
	return rc;
}

/* name{source="S"[,repository="R"]} value */
static int metrics_line(struct buf *b, const char *name, const char *source, const char *repo,
                        double value)
{
	int rc = buf_printf(b, "%s{source=\"", name);

	if (!rc)
		rc = metrics_label(b, source);
	if (!rc && repo)
		rc = buf_printf(b, "\",repository=\"");
	if (!rc && repo)
		rc = metrics_label(b, repo);
	/* Whole numbers as such; times and durations to the millisecond. */
	if (!rc)
		rc = buf_printf(b, value == (double)(int64_t)value ? "\"} %.0f\n" : "\"} %.3f\n",
		                value);
	return rc;
}

/* The gauges, one family at a time (the format wants a family's lines
 * together): per source from its status object, and per repository. */
struct metric {
	const char *name, *help;
	const char *obj, *key; /* status[obj][key] (obj NULL: status[key]) */
	int kind;              /* 0 number, 1 boolean, 2 RFC 3339 time -> seconds */
};

static const struct metric metrics[] = {
    {"coffer_source_healthy", "1 when the source is fresh and healthy (coffer status)", NULL,
     "healthy", 1},
    {"coffer_backup_running", "backups of the source running", NULL, "running", 0},
    {"coffer_source_expect_every_seconds", "the source's expect_every", NULL,
     "expect_every_seconds", 0},
    {"coffer_backup_last_success_timestamp_seconds", "start of the newest complete backup",
     "last_backup", "started", 2},
    {"coffer_backup_last_age_seconds", "age of the newest complete backup", "last_backup",
     "age_seconds", 0},
    {"coffer_backup_last_raw_bytes", "bytes read from the source by the newest complete backup",
     "last_backup", "raw_bytes", 0},
    {"coffer_backup_last_stored_bytes", "bytes stored by the newest complete backup", "last_backup",
     "stored_bytes", 0},
    {"coffer_backup_copies_pending", "copies of the newest complete backup still to be made",
     "last_backup", "pending_copies", 0},
    {"coffer_backup_last_duration_seconds", "wall time of the newest complete backup",
     "last_backup", "duration_seconds", 0},
    {"coffer_backup_last_attempt_timestamp_seconds", "start of the newest run that ended",
     "last_run", "started", 2},
    {"coffer_backup_last_attempt_success", "1 when the newest run that ended completed", "last_run",
     "ok", 1},
    {"coffer_verify_last_timestamp_seconds", "end of the source's last coffer verify", "verified",
     "at", 2},
    {"coffer_verify_last_success", "1 when the source's last coffer verify found every copy good",
     "verified", "ok", 1},
    {"coffer_drill_last_timestamp_seconds", "end of the source's last restore drill", "drill", "at",
     2},
    {"coffer_drill_last_success", "1 when the source's last restore drill passed", "drill", "ok",
     1},
    {"coffer_drill_last_recovery_seconds", "recovery time of the source's last restore drill",
     "drill", "recovery_seconds", 0},
};

static int metrics_family(struct buf *b, const struct metric *m, json_t *sts)
{
	size_t i;
	json_t *st;
	int rc = 0, head = 0;

	json_array_foreach(sts, i, st)
	{
		json_t *v = m->obj ? json_object_get(json_object_get(st, m->obj), m->key)
		                   : json_object_get(st, m->key);
		double x;
		int64_t ms;

		if (!v || json_is_null(v))
			continue;
		if (m->kind == 1)
			x = json_is_true(v);
		else if (m->kind == 2 && json_is_string(v) &&
		         time_parse_iso(json_string_value(v), &ms) == 0)
			x = (double)ms / 1000;
		else if (m->kind == 0 && json_is_number(v))
			x = json_number_value(v);
		else
			continue;
		if (!head++)
			rc = metrics_head(b, m->name, m->help);
		if (!rc)
			rc = metrics_line(
			    b, m->name, json_string_value(json_object_get(st, "source")), NULL, x);
		if (rc)
			break;
	}
	error_clear();
	return rc;
}

int status_metrics_write(const struct config *cfg, struct catalog *cat)
{
	struct agent_targets tg;
	json_t *sts = json_array(), *locs = json_array();
	int64_t now = time_now_ms();
	struct buf b;
	char tmp[4200];
	int rc = sts && locs ? 0 : error_set(CF_ERR_NOMEM, "out of memory"), fd, head = 0;

	if (!cfg->metrics_file) {
		json_decref(sts);
		json_decref(locs);
		return 0;
	}
	buf_init(&b, 64 * 1024 * 1024);
	memset(&tg, 0, sizeof(tg));
	if (!rc)
		rc = agent_targets_init(&tg, cfg);
	for (size_t i = 0; !rc && i < cfg->nsources; i++) {
		json_t *st = NULL, *lm = json_object();
		struct catalog_backup *last = NULL;
		const char *id;

		rc = lm ? status_source(cfg, cat, &cfg->sources[i], now, lm, &st)
		        : error_set(CF_ERR_NOMEM, "out of memory");
		/* The duration needs the record of the newest complete backup. */
		id = json_string_value(json_object_get(json_object_get(st, "last_backup"), "id"));
		if (!rc && id && catalog_backup_get(cat, id, &last) == 0 && last->finished_ms)
			json_object_set_new(
			    json_object_get(st, "last_backup"), "duration_seconds",
			    json_real((double)(last->finished_ms - last->started_ms) / 1000));
		error_clear();
		catalog_backup_free(last);
		if (!rc && (json_array_append_new(sts, st) || json_array_append_new(locs, lm)))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		else if (rc) {
			json_decref(st);
			json_decref(lm);
		}
	}
	for (size_t m = 0; !rc && m < sizeof(metrics) / sizeof(metrics[0]); m++)
		rc = metrics_family(&b, &metrics[m], sts);
	/* Per repository: the newest complete backup of each source there. */
	for (size_t i = 0; !rc && i < cfg->nsources; i++) {
		json_t *lm = json_array_get(locs, i);

		for (size_t t = 0; !rc && t < cfg->ntargets; t++) {
			json_t *v = json_object_get(lm, tg.locs[t]);

			if (!v)
				continue;
			if (!head++)
				rc = metrics_head(
				    &b, "coffer_repository_last_success_timestamp_seconds",
				    "start of the source's newest complete backup held by "
				    "the repository");
			if (!rc)
				rc = metrics_line(
				    &b, "coffer_repository_last_success_timestamp_seconds",
				    cfg->sources[i].name, cfg->targets[t].name,
				    (double)json_integer_value(v) / 1000);
		}
	}
	if (!rc)
		rc = buf_printf(&b,
		                "# HELP coffer_metrics_timestamp_seconds when coffer wrote this "
		                "file\n# TYPE coffer_metrics_timestamp_seconds gauge\n"
		                "coffer_metrics_timestamp_seconds %.3f\n",
		                (double)time_real_ms() / 1000);
	/* Written beside it and renamed over it: a collector never reads half. */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", cfg->metrics_file, (int)getpid());
	if (!rc && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write the metrics file %s", tmp);
	else if (!rc) {
		rc = fs_write_all(fd, b.data, b.len, tmp);
		if (close(fd) != 0 && !rc)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", tmp);
		if (!rc && rename(tmp, cfg->metrics_file) != 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot rename %s to %s", tmp,
			                     cfg->metrics_file);
		if (rc)
			unlink(tmp);
	}
	agent_targets_free(&tg);
	json_decref(sts);
	json_decref(locs);
	buf_free(&b);
	return rc;
}
