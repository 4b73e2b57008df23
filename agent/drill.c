/*
 * drill: `coffer verify --drill`. See drill.h.
 */
#include "agent/drill.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/source/source.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRILL_PREFIX "coffer-drill."
#define DRILL_READY_SECS 120

static const char *drill_tmp_base(void)
{
	const char *dir = getenv("TMPDIR");

	return dir && *dir ? dir : "/tmp";
}

/* ------------------------------------------------------------------------ */
/* The private folder and the server                                        */
/* ------------------------------------------------------------------------ */

/* DIR = $TMPDIR/coffer-drill.PID.XXXXXX, 0700, flocked for the process's
 * life (fs_reap_dead() tells a dead drill's folder by it). */
static int drill_dir_create(struct drill *d, int *lock_fd)
{
	snprintf(d->dir, sizeof(d->dir), "%s/" DRILL_PREFIX "%d.XXXXXX", drill_tmp_base(),
	         (int)getpid());
	if (!mkdtemp(d->dir)) {
		int e = errno;

		d->dir[0] = '\0';
		return error_set_errno(CF_ERR_IO, e, "cannot create a drill folder in %s",
		                       drill_tmp_base());
	}
	*lock_fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX) != 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot lock %s", d->dir);
	return 0;
}

int drill_path(const struct drill *d, const char *name, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "%s/%s", d->dir, name) >= size)
		return error_set(CF_ERR_LIMIT, "drill folder path too long: %s/%s", d->dir, name);
	return 0;
}

int drill_run_as(struct drill *d, const char *user)
{
	struct passwd *pw;
	struct stat st;
	char up[4096], *slash;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (!pw || pw->pw_uid == 0)
		return error_set(CF_ERR_TARGET,
		                 "coffer runs as root and the drill's server cannot: create the "
		                 "system user '%s' (the server package does) or run the drill as "
		                 "another user",
		                 user);
	d->uid = pw->pw_uid;
	d->gid = pw->pw_gid;
	if (chown(d->dir, d->uid, d->gid) != 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot hand %s to user %s", d->dir, user);
	/* Every folder above it must let that user through. */
	snprintf(up, sizeof(up), "%s", d->dir);
	while ((slash = strrchr(up, '/')) != NULL && slash != up) {
		*slash = '\0';
		if (stat(up, &st) != 0)
			break;
		if (!(st.st_mode & S_IXOTH) && !(st.st_uid == d->uid && (st.st_mode & S_IXUSR)) &&
		    !(st.st_gid == d->gid && (st.st_mode & S_IXGRP)))
			return error_set(
			    CF_ERR_TARGET,
			    "the drill's server runs as user %s, who cannot enter %s: "
			    "set TMPDIR to a folder it can reach (the drill's files go "
			    "there)",
			    user, up);
	}
	return 0;
}

/* The end of the server's log, for an error message. */
static void drill_log_tail(const struct drill *d, char *out, size_t size)
{
	char path[4200];
	int fd;
	ssize_t n = 0;

	out[0] = '\0';
	if (drill_path(d, "server.log", path, sizeof(path)))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)size - 1)
		lseek(fd, end - (off_t)size + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, out, size - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

int drill_server_start(struct drill *d, const char *label, char *const *argv, char *const *env,
                       int (*ready)(struct drill *d, void *ctx), void *ctx)
{
	struct proc_spec spec;
	char log[4200], tail[600];
	double t0 = time_mono();
	int rc, status;

	rc = drill_path(d, "server.log", log, sizeof(log));
	if (rc)
		return rc;
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = argv;
	spec.env = env;
	spec.errcode = CF_ERR_TARGET;
	spec.log_path = log;
	spec.uid = d->uid;
	spec.gid = d->gid;
	rc = proc_start(&spec, &d->server);
	if (rc)
		return rc;
	d->server_started = 1;
	log_info("drill: started %s (pid %d) in %s", label, (int)d->server.pid, d->dir);
	for (;;) {
		if (cancel_requested())
			return error_set(CF_ERR_INTERRUPTED, "drill: interrupted by a signal");
		if (waitpid(d->server.pid, &status, WNOHANG) == d->server.pid) {
			d->server.pid = -1;
			drill_log_tail(d, tail, sizeof(tail));
			return error_set(CF_ERR_TARGET, "drill: %s exited at start: %s", label,
			                 tail);
		}
		rc = ready(d, ctx);
		if (rc < 0)
			return rc;
		if (rc > 0)
			break;
		if (time_mono() - t0 > DRILL_READY_SECS) {
			drill_log_tail(d, tail, sizeof(tail));
			return error_set(CF_ERR_TARGET, "drill: %s was not ready after %d s: %s",
			                 label, DRILL_READY_SECS, tail);
		}
		usleep(50000);
	}
	return 0;
}

/* Stops the server (SIGTERM, then SIGKILL after 5 s) and removes the
 * folder with everything in it. */
static void drill_cleanup(struct drill *d, int lock_fd)
{
	if (d->server_started)
		proc_release(&d->server);
	d->server_started = 0;
	if (d->dir[0] && fs_remove_tree(d->dir) != 0) {
		log_warn("drill: cannot remove %s: %s", d->dir, error_message());
		error_clear();
	}
	if (lock_fd >= 0)
		close(lock_fd);
}

static void drill_reap_one(const char *path, void *ctx)
{
	(void)ctx;
	if (fs_remove_tree(path) == 0)
		log_warn("removed %s, the drill folder of a coffer that was killed", path);
	error_clear();
}

void drill_reap(void)
{
	fs_reap_dead(drill_tmp_base(), DRILL_PREFIX, drill_reap_one, NULL);
}

/* ------------------------------------------------------------------------ */
/* Restoring and counting                                                   */
/* ------------------------------------------------------------------------ */

int drill_restore_file(struct drill *d, const struct catalog_object *obj, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), rc;

	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create %s", path);
	drill_restore_begin(d);
	if (d->uid && fchown(fd, d->uid, d->gid) != 0) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot hand %s to the server's user", path);
		close(fd);
		return rc;
	}
	rc = restore_stream_to_fd(d->st, obj, d->ids, fd, d->progress);
	if (close(fd) != 0 && !rc)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", path);
	return rc;
}

const char *drill_object_database(const struct catalog_object *obj, int *globals)
{
	static __thread char name[1024];
	json_t *m = obj->meta_json ? json_loads(obj->meta_json, 0, NULL) : NULL;
	const char *role = json_string_value(json_object_get(m, "role"));
	const char *db = json_string_value(json_object_get(m, "database"));
	const char *out = NULL;

	*globals = role && !strcmp(role, "globals");
	if (db && strlen(db) < sizeof(name)) {
		memcpy(name, db, strlen(db) + 1);
		out = name;
	}
	json_decref(m);
	return out;
}

const struct catalog_object *drill_globals(const struct catalog_backup *b)
{
	for (size_t i = 0; i < b->nobjects; i++) {
		int g;

		drill_object_database(&b->objects[i], &g);
		if (g)
			return &b->objects[i];
	}
	return NULL;
}

int drill_drop_made(int rc, const struct strv *names, int (*drop)(void *ctx, const char *db),
                    void *ctx)
{
	char msg[1024];

	if (!names->n)
		return rc;
	snprintf(msg, sizeof(msg), "%s", rc ? error_message() : "");
	cancel_cleanup_begin();
	for (size_t i = 0; i < names->n; i++)
		if (drop(ctx, names->v[i]) != 0)
			log_warn("drill: cannot drop the drill's database %s in drill_target: %s",
			         names->v[i], error_message());
	cancel_cleanup_end();
	error_clear();
	return rc ? error_set(rc, "%s", msg) : 0;
}

/* d->dbs[db][section], made if missing. */
static json_t *drill_section(struct drill *d, const char *db, const char *section)
{
	json_t *o = json_object_get(d->dbs, db), *s;

	if (!o && (!(o = json_object()) || json_object_set_new(d->dbs, db, o)))
		return NULL;
	s = json_object_get(o, section);
	if (!s && (!(s = json_object()) || json_object_set_new(o, section, s)))
		return NULL;
	return s;
}

void drill_restore_begin(struct drill *d)
{
	if (!d->restore_start)
		d->restore_start = time_mono();
}

void drill_restored(struct drill *d)
{
	d->restored_at = time_mono();
}

int drill_table(struct drill *d, const char *db, const char *table, long long rows)
{
	json_t *s = drill_section(d, db, "tables");

	if (!s || json_object_set_new(s, table, json_integer(rows)))
		return error_set(CF_ERR_NOMEM, "out of memory");
	return 0;
}

int drill_kind(struct drill *d, const char *db, const char *kind, long long n)
{
	json_t *s = drill_section(d, db, "objects");

	if (!s || json_object_set_new(s, kind, json_integer(n)))
		return error_set(CF_ERR_NOMEM, "out of memory");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The report                                                               */
/* ------------------------------------------------------------------------ */

/* Appends a line to the report's array key. */
static int drill_note(json_t *report, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int drill_note(json_t *report, const char *key, const char *fmt, ...)
{
	json_t *a = json_object_get(report, key);
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!a && (!(a = json_array()) || json_object_set_new(report, key, a)))
		return error_set(CF_ERR_NOMEM, "out of memory");
	return json_array_append_new(a, json_string(line))
	           ? error_set(CF_ERR_NOMEM, "out of memory")
	           : 0;
}

/* Flags tables of the previous drill prev that vanished or shrank by more
 * than shrink percent. */
static int drill_compare(const struct drill *d, json_t *report, json_t *prev, int shrink)
{
	json_t *pdbs = json_object_get(prev, "databases"), *pdb;
	const char *prev_id = json_string_value(json_object_get(prev, "id"));
	const char *db;
	int rc = 0;

	json_object_foreach(pdbs, db, pdb)
	{
		json_t *ptables = json_object_get(pdb, "tables"), *pn;
		json_t *now_db = json_object_get(d->dbs, db);
		json_t *tables = json_object_get(now_db, "tables");
		const char *t;

		if (!now_db) {
			rc = drill_note(report, "flags",
			                "database %s vanished (drill of %s had it)", db, prev_id);
			continue;
		}
		json_object_foreach(ptables, t, pn)
		{
			json_t *n = json_object_get(tables, t);
			long long before = json_integer_value(pn), after = json_integer_value(n);

			if (rc)
				break;
			if (!n)
				rc = drill_note(
				    report, "flags",
				    "table %s.%s vanished (%lld rows at the drill of %s)", db, t,
				    before, prev_id);
			else if (before > 0 && (before - after) * 100 > before * shrink)
				rc = drill_note(
				    report, "flags",
				    "table %s.%s shrank from %lld to %lld rows (-%lld%%; "
				    "drill_shrink_warn = %d%%)",
				    db, t, before, after, (before - after) * 100 / before, shrink);
		}
	}
	return rc;
}

/* The exact row counts recorded at backup ("row_counts" in an object's
 * metadata: {"TABLE": rows}) must be those restored. */
static int drill_expected_counts(const struct drill *d, json_t *report, int *checked)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < d->b->nobjects; i++) {
		const struct catalog_object *o = &d->b->objects[i];
		json_t *m = o->meta_json ? json_loads(o->meta_json, 0, NULL) : NULL;
		json_t *want = json_object_get(m, "row_counts"), *n;
		const char *db = json_string_value(json_object_get(m, "database")), *t;
		json_t *tables = json_object_get(json_object_get(d->dbs, db ? db : ""), "tables");

		json_object_foreach(want, t, n)
		{
			json_t *got = json_object_get(tables, t);

			if (rc)
				break;
			(*checked)++;
			if (!got)
				rc = drill_note(
				    report, "failures",
				    "table %s.%s (%lld rows at backup) is not in the restore", db,
				    t, json_integer_value(n));
			else if (json_integer_value(got) != json_integer_value(n))
				rc = drill_note(
				    report, "failures",
				    "table %s.%s has %lld rows restored, %lld at backup", db, t,
				    json_integer_value(got), json_integer_value(n));
		}
		json_decref(m);
	}
	return rc;
}

static long long drill_sum(json_t *dbs, const char *section)
{
	json_t *db, *v;
	const char *k, *k2;
	long long n = 0;

	json_object_foreach(dbs, k, db)
	{
		json_object_foreach(json_object_get(db, section), k2, v)
		{
			n += json_integer_value(v);
		}
	}
	return n;
}

static void drill_print(const json_t *r)
{
	json_t *a;
	size_t i;
	json_t *v;
	char rate[32], bytes[32];
	double secs = json_real_value(json_object_get(r, "recovery_seconds"));

	fmt_bytes((uint64_t)json_integer_value(json_object_get(r, "stored_bytes")), bytes,
	          sizeof(bytes));
	fmt_bytes((uint64_t)json_integer_value(json_object_get(r, "bytes_per_second")), rate,
	          sizeof(rate));
	printf("drill of %s (%s) from %s: %s\n", json_string_value(json_object_get(r, "id")),
	       json_string_value(json_object_get(r, "source")),
	       json_string_value(json_object_get(r, "repository")),
	       json_is_true(json_object_get(r, "ok")) ? "ok" : "FAILED");
	printf("  recovery: %.1f s (%s read, %s/s; server start %.1f s, checks %.1f s)", secs,
	       bytes, rate, json_real_value(json_object_get(r, "server_start_seconds")),
	       json_real_value(json_object_get(r, "check_seconds")));
	if (json_object_get(r, "rto_target_seconds"))
		printf(", rto_target %.0f s: %s",
		       json_real_value(json_object_get(r, "rto_target_seconds")),
		       json_is_true(json_object_get(r, "rto_ok")) ? "met" : "MISSED");
	printf("\n");
	{
		json_t *dbs = json_object_get(r, "databases"), *db;
		const char *name;

		json_object_foreach(dbs, name, db)
		{
			json_t *objs = json_object_get(db, "objects"), *tables, *n;
			const char *k;
			long long rows = 0;
			size_t ntables;

			tables = json_object_get(db, "tables");
			ntables = json_object_size(tables);
			json_object_foreach(tables, k, n)
			{
				rows += json_integer_value(n);
			}
			printf("  %s:", name);
			json_object_foreach(objs, k, n)
			{
				printf(" %lld %s", json_integer_value(n), k);
			}
			if (ntables)
				printf("; %lld rows in %zu tables", rows, ntables);
			printf("\n");
		}
	}
	if (json_object_get(r, "row_counts_checked"))
		printf("  row counts recorded at backup: %lld checked\n",
		       json_integer_value(json_object_get(r, "row_counts_checked")));
	if (json_object_get(r, "compared_with"))
		printf("  compared with the drill of %s\n",
		       json_string_value(json_object_get(r, "compared_with")));
	a = json_object_get(r, "flags");
	json_array_foreach(a, i, v)
	{
		printf("  FLAG %s\n", json_string_value(v));
	}
	a = json_object_get(r, "failures");
	json_array_foreach(a, i, v)
	{
		printf("  FAILED %s\n", json_string_value(v));
	}
}

/* Keeps the report in the backup's record and as the source's last drill. */
static int drill_record(struct catalog *cat, const char *id, const char *source, const char *text)
{
	struct catalog_backup *b = NULL;
	char key[300];
	int rc = catalog_backup_get(cat, id, &b);

	if (rc == CF_ERR_NOTFOUND) { /* pruned meanwhile */
		error_clear();
		rc = 0;
	} else if (!rc) {
		free(b->drill_json);
		b->drill_json = strdup(text);
		rc = b->drill_json ? catalog_backup_put(cat, b)
		                   : error_set(CF_ERR_NOMEM, "out of memory");
	}
	catalog_backup_free(b);
	snprintf(key, sizeof(key), "drill:%s", source);
	if (!rc)
		rc = catalog_meta_set_str(cat, key, text);
	return rc;
}

/* The previous drill report of source, or NULL. */
static json_t *drill_previous(struct catalog *cat, const char *source)
{
	char key[300], *text = NULL;
	json_t *prev = NULL;

	snprintf(key, sizeof(key), "drill:%s", source);
	if (catalog_meta_get_str(cat, key, &text) == 0)
		prev = json_loads(text, 0, NULL);
	error_clear();
	free(text);
	return prev;
}

/* The repository to read: the first (or --target) that holds a copy. */
static int drill_pick(const struct drill_options *o, const struct catalog_backup *b, size_t *t)
{
	for (size_t i = 0; i < o->cfg->ntargets; i++) {
		if (o->target && strcmp(o->cfg->targets[i].name, o->target) != 0)
			continue;
		if (repo_record_at(b, o->tg->locs[i])) {
			*t = i;
			return 0;
		}
	}
	return error_set(CF_ERR_NOTFOUND, "backup %s has no copy in %s", b->id,
	                 o->target ? o->target : "the configured repositories");
}

int drill_backup(const struct drill_options *o, const struct catalog_backup *b,
                 const struct source_ops *ops, const struct source *src, char **json_out)
{
	const char *id = b->id;
	struct repo *repo = NULL;
	struct drill d;
	json_t *report = NULL, *prev = NULL;
	char *text = NULL, err[1024] = "";
	double t0, setup, recovery, checks;
	uint64_t stored = 0;
	int64_t rto_ms = 0;
	int rc, lock_fd = -1, shrink = 50, checked = 0, failed, setup_rc = 0;
	size_t t = 0;

	*json_out = NULL;
	memset(&d, 0, sizeof(d));
	d.server.pid = -1;
	d.ops = ops;
	d.src = src;
	rc = drill_pick(o, b, &t);
	if (!rc)
		rc = agent_targets_repo(o->tg, t, &repo, NULL);
	if (rc)
		goto out;
	if (d.src) {
		rto_ms = d.src->rto_target_ms;
		shrink = d.src->shrink_warn;
		d.target = d.src->drill_target;
	}
	d.b = b;
	d.st = repo_storage(repo);
	d.ids = o->ids;
	d.progress = o->progress;
	d.dbs = json_object();
	if (!d.dbs) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->nobjects; i++)
		stored += b->objects[i].stored_bytes;
	log_info("drill: restoring backup %s (%s) from %s into a throwaway server", id, b->source,
	         o->cfg->targets[t].name);

	t0 = time_mono();
	rc = drill_dir_create(&d, &lock_fd);
	if (!rc)
		rc = d.ops->drill(&d);
	/* Failing before any of the backup was read (no server binaries, a
	 * server that would not start) says nothing of the backup. */
	if (rc && !d.restore_start)
		setup_rc = rc;
	if (!d.restore_start)
		d.restore_start = time_mono();
	if (!d.restored_at)
		d.restored_at = time_mono();
	setup = d.restore_start - t0;
	recovery = d.restored_at - d.restore_start;
	checks = time_mono() - d.restored_at;
	if (rc == CF_ERR_INTERRUPTED || rc == CF_ERR_NOMEM) {
		drill_cleanup(&d, lock_fd);
		goto out;
	}
	if (rc) {
		snprintf(err, sizeof(err), "%s", error_message());
		error_clear();
	}
	drill_cleanup(&d, lock_fd);

	report = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:O}", "id", id, "source",
	                   b->source, "kind", b->kind, "repository", o->cfg->targets[t].name,
	                   "location", o->tg->locs[t], "stored_bytes", (json_int_t)stored,
	                   "recovery_seconds", recovery, "server_start_seconds", setup,
	                   "check_seconds", checks, "databases", d.dbs);
	rc = report ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
	/* Where it restored: a server of its own, or the source's drill_target. */
	if (!rc &&
	    json_object_set_new(report, "server", json_string(d.target ? "drill_target" : "own")))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc) {
		char at[40];

		time_format_iso(time_now_ms(), at, sizeof(at));
		rc = json_object_set_new(report, "at", json_string(at)) ||
		             json_object_set_new(
		                 report, "bytes_per_second",
		                 json_integer(recovery > 0 ? (json_int_t)((double)stored / recovery)
		                                           : 0)) ||
		             json_object_set_new(report, "rows",
		                                 json_integer(drill_sum(d.dbs, "tables")))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
	}
	if (!rc) {
		long long ntables = 0;
		json_t *db;
		const char *k;

		json_object_foreach(d.dbs, k, db)
		{
			ntables += (long long)json_object_size(json_object_get(db, "tables"));
		}
		json_object_set_new(report, "tables", json_integer(ntables));
	}
	if (!rc && err[0])
		rc = drill_note(report, "failures", "%s", err);
	if (!rc && !err[0])
		rc = drill_expected_counts(&d, report, &checked);
	if (!rc && checked)
		rc = json_object_set_new(report, "row_counts_checked", json_integer(checked))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
	if (!rc && rto_ms && !err[0]) {
		int met = recovery * 1000 <= (double)rto_ms;

		rc = json_object_set_new(report, "rto_target_seconds",
		                         json_real((double)rto_ms / 1000)) ||
		             json_object_set_new(report, "rto_ok", json_boolean(met))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
		if (!rc && !met)
			rc = drill_note(report, "failures",
			                "the recovery took %.1f s, more than rto_target (%.0f s)",
			                recovery, (double)rto_ms / 1000);
	}
	prev = drill_previous(o->cat, b->source);
	if (!rc && !err[0] && prev &&
	    strcmp(json_string_value(json_object_get(prev, "id")) ?: "", id) != 0) {
		rc = json_object_set(report, "compared_with", json_object_get(prev, "id"))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
		if (!rc)
			rc = drill_compare(&d, report, prev, shrink);
	}
	failed = json_array_size(json_object_get(report, "failures")) > 0;
	if (!rc)
		rc = json_object_set_new(report, "ok", json_boolean(!failed))
		         ? error_set(CF_ERR_NOMEM, "out of memory")
		         : 0;
	if (!rc && !(text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	/* A drill that could not restore is kept as the record's result but
	 * not as the source's reference for the next comparison. */
	if (!rc) {
		if (err[0]) {
			struct catalog_backup *rb = NULL;

			rc = catalog_backup_get(o->cat, id, &rb);
			if (!rc) {
				free(rb->drill_json);
				rb->drill_json = strdup(text);
				rc = rb->drill_json ? catalog_backup_put(o->cat, rb)
				                    : error_set(CF_ERR_NOMEM, "out of memory");
			}
			catalog_backup_free(rb);
		} else {
			rc = drill_record(o->cat, id, b->source, text);
		}
	}
	if (!rc && o->json) {
		*json_out = text;
		text = NULL;
	} else if (!rc) {
		drill_print(report);
		fflush(stdout);
	}
	if (!rc && failed)
		rc = error_set(
		    setup_rc ? setup_rc : CF_ERR_INTEGRITY, "drill of backup %s failed: %s", id,
		    json_string_value(json_array_get(json_object_get(report, "failures"), 0)));
out:
	free(text);
	json_decref(prev);
	json_decref(report);
	json_decref(d.dbs);
	return rc;
}
