/*
 * cmd_wal: `coffer wal-push`, PostgreSQL's archive_command for a
 * postgres-physical source, and what wal-fetch shares with it.
 *
 * wal-push stores one WAL file in every repository of the source and exits
 * 0 only once at least copies_required hold it. With wal_async = true it
 * queues the file in the source's spool (copied, fsynced, renamed) and
 * returns; a background pusher (this program again, `wal-push --background`,
 * one per spool under a flock) uploads the queue wal_push_jobs at a time.
 * A failure of the pusher is written to the spool and reported by the next
 * wal-push, which fails so that PostgreSQL keeps the segment and retries.
 * When the queue holds wal_spool_max bytes, wal-push warns and pushes
 * synchronously.
 *
 * Look-ahead (as pgBackRest's async archive-push): the pusher also pushes
 * the files PostgreSQL has marked ready (pg_wal/archive_status/NAME.ready,
 * the folder named by the spool's pg_wal file, which wal-push writes from
 * %p) before their archive_command runs, straight from pg_wal: a ready file
 * is complete and PostgreSQL changes it only once it is archived. A failure
 * is written to the spool's error file, as one of the queue's. Once
 * copies_required hold one, the pusher leaves done/NAME holding its
 * SHA-256; wal-push NAME (which, for a file ready in pg_wal, waits for that
 * marker up to CMD_WAL_AHEAD_WAIT_MS instead of copying the file into the
 * queue) finds it, checks the file's digest against it,
 * moves it to used/NAME (so the pusher does not push the file again in the
 * moment before PostgreSQL marks it done) and returns 0 without copying or
 * uploading anything. Markers whose file is no longer ready (archived) are
 * removed; a kill leaves at worst a file pushed twice (the second push
 * finds it identical).
 *
 * cmd_wal_fetch.c is wal-fetch; what both need is cmd_wal.h.
 */
#include "agent/cmd/cmd_wal.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMD_WAL_PUSH_USAGE "usage: coffer wal-push [--source S] PATH"
/* How long an idle background pusher waits for more before it exits. */
#define CMD_WAL_IDLE_MS 2000
/* How many pushed-ahead files may wait for their wal-push at most. */
#define CMD_WAL_AHEAD_MAX 64
/* How long a wal-push of a ready file waits for the pusher to push it
 * before it queues the file itself. */
#define CMD_WAL_AHEAD_WAIT_MS 30000

void cmd_wal_free(struct cmd_wal *w)
{
	free(w->repos);
	free(w->errs);
	free(w->names);
	agent_targets_free(&w->tg);
	age_recipients_free(w->rcpt);
	age_identities_free(w->ids);
	config_free(w->cfg);
}

/* The source named, or the config's only postgres-physical one. */
static int cmd_wal_source(struct cmd_wal *w, const char *name)
{
	const struct source *found = NULL;
	size_t n = 0;

	if (name) {
		found = config_source_find(w->cfg, name);
		if (!found)
			return error_set(CF_ERR_USAGE, "no source named '%s' in %s", name,
			                 w->cfg->file);
		if (!source_pgphys_wal(found))
			return error_set(CF_ERR_USAGE,
			                 "source %s is of type %s; WAL archiving is for "
			                 "postgres-physical sources",
			                 name, found->ops->type);
	} else {
		for (size_t i = 0; i < w->cfg->nsources; i++)
			if (source_pgphys_wal(&w->cfg->sources[i])) {
				found = &w->cfg->sources[i];
				n++;
			}
		if (n != 1)
			return error_set(
			    CF_ERR_USAGE,
			    "%s has %zu postgres-physical sources: name one with --source "
			    "S",
			    w->cfg->file, n);
	}
	w->src = found;
	w->opts = source_pgphys_wal(found);
	return 0;
}

/* The spool of the source: wal_spool, or wal-spool/ beside the catalog. */
static int cmd_wal_spool(struct cmd_wal *w)
{
	return source_pgphys_spool(w->cfg, w->src, w->spool, sizeof(w->spool));
}

/* Loads the config, the source, its repositories and keys. */
int cmd_wal_open(struct cmd_wal *w, const struct cli *cli, const char *source, int push,
                 const char *identity)
{
	size_t n = 0;
	int rc;

	memset(w, 0, sizeof(*w));
	w->cli = cli;
	rc = config_load(cli->config_path, &w->cfg);
	if (!rc)
		rc = cmd_wal_source(w, source);
	if (!rc)
		rc = cmd_wal_spool(w);
	if (!rc)
		rc = agent_targets_init(&w->tg, w->cfg);
	if (!rc && (!(w->repos = calloc(w->cfg->ntargets, sizeof(*w->repos))) ||
	            !(w->errs = calloc(w->cfg->ntargets, sizeof(*w->errs))) ||
	            !(w->names = calloc(w->cfg->ntargets, sizeof(*w->names)))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < w->cfg->ntargets; i++) {
		if (!config_source_uses(w->cfg, w->src->name, i))
			continue;
		w->names[n] = w->cfg->targets[i].name;
		if (agent_targets_repo(&w->tg, i, &w->repos[n], NULL)) {
			log_warn("%s", error_message());
			error_clear();
			w->errs[n] = w->cfg->targets[i].name;
		}
		n++;
	}
	if (!rc && push) {
		if (w->cfg->recipients.n == 0)
			rc = error_set(CF_ERR_CONFIG,
			               "%s: no recipients to encrypt to (expected [encryption] "
			               "recipients = age1...)",
			               w->cfg->file);
		if (!rc)
			rc = age_recipients_new(&w->rcpt);
		for (size_t i = 0; !rc && i < w->cfg->recipients.n; i++)
			rc = age_recipients_add(w->rcpt, w->cfg->recipients.v[i]);
	} else if (!rc) {
		rc = agent_load_identities(w->cfg, identity, &w->ids);
	}
	w->a.source = w->src ? w->src->name : NULL;
	w->a.repos = w->repos;
	w->a.repo_errors = w->errs;
	w->a.nrepos = n;
	w->a.copies_required = w->src ? config_copies_required(w->cfg, w->src->name) : 0;
	if (w->a.copies_required > n)
		w->a.copies_required = n;
	w->a.rcpt = w->rcpt;
	w->a.zstd_level = w->cfg ? w->cfg->zstd_level : 3;
	w->a.ids = w->ids;
	return rc;
}

/* The names of the repositories of bits. */
static size_t cmd_wal_bits(const struct cmd_wal *w, unsigned long long bits, const char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < w->a.nrepos; i++)
		if (bits & (1ULL << i))
			out[n++] = w->names[i];
	return n;
}

/* Records a pushed file in the catalog (its state is a convenience: the
 * bucket is the truth, and `catalog rebuild` remakes it), and the copies
 * it still lacks. */
static void cmd_wal_note(struct cmd_wal *w, struct catalog *cat, const char *name, uint64_t size,
                         unsigned long long missed)
{
	const char *names[CONFIG_MAX_TARGETS];
	struct wal_name wn;
	size_t n = cmd_wal_bits(w, missed, names);

	if (!cat || wal_name_parse(name, &wn) ||
	    wal_note(cat, w->src->name, &wn, wn.kind == WAL_SEGMENT ? size : 0, time_real_ms()) ||
	    (n && wal_pending_change(cat, w->src->name, name, names, n, 1))) {
		log_warn("wal-push %s: stored, but not recorded in the catalog: %s", name,
		         error_message());
		error_clear();
	}
}

/* Makes up to max of the copies earlier pushes could not make (a
 * repository was down), now that the push works again. */
static void cmd_wal_catch_up(struct cmd_wal *w, struct catalog *cat, size_t max)
{
	char *text = NULL;
	json_t *doc;
	const char *name;
	json_t *repos;
	size_t done = 0;

	if (!cat || wal_pending(cat, w->src->name, &text) || !text) {
		error_clear();
		return;
	}
	doc = json_loads(text, 0, NULL);
	free(text);
	json_object_foreach(doc, name, repos)
	{
		const char *names[CONFIG_MAX_TARGETS];
		unsigned long long want = 0, still = 0;
		size_t n, k = 0;

		if (done++ >= max || cancel_requested())
			break;
		for (size_t i = 0; i < w->a.nrepos; i++)
			for (size_t j = 0; j < json_array_size(repos); j++)
				if (!strcmp(json_string_value(json_array_get(repos, j)) ?: "",
				            w->names[i]))
					want |= 1ULL << i;
		/* A repository no longer configured: nothing to make there. */
		for (size_t j = 0; j < json_array_size(repos); j++) {
			int known = 0;

			for (size_t i = 0; i < w->a.nrepos; i++)
				known |= !strcmp(json_string_value(json_array_get(repos, j)) ?: "",
				                 w->names[i]);
			if (!known && k < CONFIG_MAX_TARGETS)
				names[k++] = json_string_value(json_array_get(repos, j));
		}
		if (want && wal_copy_missing(&w->a, name, want, &still))
			break;
		n = k + cmd_wal_bits(w, want & ~still, names + k);
		if (n && wal_pending_change(cat, w->src->name, name, names, n, 0))
			break;
	}
	json_decref(doc);
	error_clear();
}

/* Runs this program again, detached, as `COMMAND --background ...`. */
void cmd_wal_threads(void *(*fn)(void *), void *ctx, size_t n)
{
	pthread_t th[CMD_WAL_THREADS_MAX];
	size_t nth = n < CMD_WAL_THREADS_MAX ? n : CMD_WAL_THREADS_MAX;

	for (size_t t = 0; t < nth; t++)
		if (pthread_create(&th[t], NULL, fn, ctx)) {
			nth = t;
			break;
		}
	if (nth == 0)
		fn(ctx); /* no thread could be made: the work is done all the same */
	for (size_t t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
}

void cmd_wal_spawn(struct cmd_wal *w, const char *command, const char *arg)
{
	char log[4200];
	pid_t pid;

	if (fs_mkdir_p(w->spool, 0700)) {
		log_warn("cannot start the background %s: %s", command, error_message());
		error_clear();
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("cannot start the background %s: %s", command, strerror(errno));
		return;
	}
	if (pid > 0) {
		waitpid(pid, NULL, 0);
		return;
	}
	/* The child forks once more so the grandchild belongs to no one who
	 * waits for it (PostgreSQL waits for its archive_command). */
	if (setsid() < 0 || fork() != 0)
		_exit(0);
	snprintf(log, sizeof(log), "%s/%s.log", w->spool, command);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int nul = open("/dev/null", O_RDWR);

	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
	}
	if (fd >= 0)
		dup2(fd, 2);
	struct strv args = {0};

	if (!strv_addl(&args, "coffer", "--config", w->cfg->file, command, "--background",
	               "--source", w->src->name, arg, NULL))
		execv("/proc/self/exe", args.v);
	_exit(127);
}

/* ------------------------------------------------------------------------ */
/* wal-push --background: the pusher                                        */
/* ------------------------------------------------------------------------ */

/* A small file's text (trailing newline dropped), or "" when it cannot be
 * read. */
static void cmd_wal_read_small(const char *path, char *out, size_t size)
{
	struct buf b;

	out[0] = '\0';
	buf_init(&b, size - 1);
	if (!fs_read_file(path, size - 1, &b)) {
		while (b.len && (b.data[b.len - 1] == '\n'))
			b.len--;
		snprintf(out, size, "%.*s", (int)b.len, (const char *)b.data);
	}
	error_clear();
	buf_free(&b);
}

/* Writes text into path through a temporary file and a rename. */
static int cmd_wal_write_small(const char *path, const char *text)
{
	char tmp[4400];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
	rc = fs_write_all(fd, text, strlen(text), tmp);
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot rename %s", tmp);
	if (rc)
		unlink(tmp);
	return rc;
}

/* Leaves the look-ahead marker of name (pushed from path): done_dir/NAME
 * holding the SHA-256 of what is in path now (if PostgreSQL archived and
 * recycled the file meanwhile, the marker does not match and is not used).
 * Failures only cost the file's wal-push the work. */
static void cmd_wal_mark(const char *done_dir, const char *path, const char *name)
{
	char hex[HASH_SHA256_HEX_LEN + 1], marker[4400];

	snprintf(marker, sizeof(marker), "%s/%s", done_dir, name);
	if (wal_file_digest(path, hex) == 0)
		(void)cmd_wal_write_small(marker, hex);
	error_clear();
}

struct cmd_wal_job {
	struct cmd_wal *w;
	char dir[4200];
	const char *done_dir; /* look-ahead: each file's marker goes here once pushed */
	struct strv names;
	int *rcs;
	char **msgs;
	uint64_t *sizes;
	unsigned long long *missed;
	atomic_size_t next;
};

static void *cmd_wal_job_thread(void *arg)
{
	struct cmd_wal_job *j = arg;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->names.n) {
		char path[4300];
		size_t stored = 0;
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", j->dir, j->names.v[i]);
		j->sizes[i] = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
		j->rcs[i] = wal_push_file(&j->w->a, path, j->names.v[i], &stored, &j->missed[i]);
		if (!j->rcs[i] && j->done_dir)
			cmd_wal_mark(j->done_dir, path, j->names.v[i]);
		if (j->rcs[i])
			j->msgs[i] = strdup(error_message());
		error_clear();
		if (cancel_requested())
			break;
	}
	return NULL;
}

/* Pushes j's files, wal_push_jobs at a time. Errors: CF_ERR_NOMEM. */
static int cmd_wal_job_run(struct cmd_wal_job *j)
{
	size_t n = j->names.n, jobs = j->w->opts->push_jobs;

	j->rcs = calloc(n, sizeof(*j->rcs));
	j->msgs = calloc(n, sizeof(*j->msgs));
	j->sizes = calloc(n, sizeof(*j->sizes));
	j->missed = calloc(n, sizeof(*j->missed));
	if (!j->rcs || !j->msgs || !j->sizes || !j->missed)
		return error_set(CF_ERR_NOMEM, "out of memory");
	cmd_wal_threads(cmd_wal_job_thread, j, jobs < n ? jobs : n);
	return 0;
}

static void cmd_wal_job_free(struct cmd_wal_job *j)
{
	for (size_t i = 0; j->msgs && i < j->names.n; i++)
		free(j->msgs[i]);
	free(j->msgs);
	free(j->rcs);
	free(j->sizes);
	free(j->missed);
	strv_free(&j->names);
}

/* A failed push: written to the spool's error file, which the next
 * wal-push reports (so PostgreSQL retries), and logged. */
static void cmd_wal_failed(const struct cmd_wal *w, const char *msg)
{
	char errp[4300];
	FILE *f;

	snprintf(errp, sizeof(errp), "%s/error", w->spool);
	if ((f = fopen(errp, "w")) != NULL) {
		fprintf(f, "%s", msg ? msg : "failed");
		fclose(f);
	}
	log_error("%s", msg ? msg : "failed");
}

static int cmd_wal_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queued files (not the .tmp ones being written), sorted. */
static int cmd_wal_queue(const char *dir, struct strv *names, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	*bytes = 0;
	if (!d)
		return errno == ENOENT ? 0
		                       : error_set_errno(CF_ERR_IO, errno, "cannot read %s", dir);
	while (!rc && (e = readdir(d)) != NULL) {
		struct wal_name wn;
		char path[4300];
		struct stat st;

		if (wal_name_parse(e->d_name, &wn)) {
			error_clear();
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0)
			*bytes += (uint64_t)st.st_size;
		rc = strv_add(names, e->d_name);
	}
	closedir(d);
	if (!rc && names->n)
		qsort(names->v, names->n, sizeof(*names->v), cmd_wal_strcmp);
	return rc;
}

/* The WAL names of a folder's entries ending in suffix ("": every WAL
 * file), suffix removed, sorted. */
static int cmd_wal_names(const char *dir, const char *suffix, struct strv *names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t sl = strlen(suffix);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0
		                       : error_set_errno(CF_ERR_IO, errno, "cannot read %s", dir);
	while (!rc && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char name[256];
		struct wal_name wn;

		if (n <= sl || n - sl >= sizeof(name) || strcmp(e->d_name + n - sl, suffix))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - sl), e->d_name);
		if (wal_name_parse(name, &wn)) {
			error_clear();
			continue;
		}
		rc = strv_add(names, name);
	}
	closedir(d);
	if (!rc && names->n)
		qsort(names->v, names->n, sizeof(*names->v), cmd_wal_strcmp);
	return rc;
}

static int cmd_wal_sorted_has(const struct strv *v, const char *name)
{
	return v->n && bsearch(&name, v->v, v->n, sizeof(*v->v), cmd_wal_strcmp) != NULL;
}

/*
 * One look-ahead round: pushes the ready files of pg_wal that have no
 * marker yet (at most CMD_WAL_AHEAD_MAX waiting), wal_push_jobs at a time,
 * and leaves a marker for each that copies_required hold; *pushed receives
 * how many. A failure is only logged: the file's own wal-push pushes it.
 */
static int cmd_wal_ahead(struct cmd_wal *w, struct catalog *cat, size_t *pushed)
{
	char pgwal[4096], stat_dir[4200], done_dir[4200], used_dir[4200], path[4400];
	struct strv ready = {0}, done = {0}, used = {0};
	struct cmd_wal_job j;
	size_t waiting = 0;
	int rc;

	*pushed = 0;
	snprintf(path, sizeof(path), "%s/pg_wal", w->spool);
	cmd_wal_read_small(path, pgwal, sizeof(pgwal));
	if (!pgwal[0])
		return 0;
	snprintf(stat_dir, sizeof(stat_dir), "%s/archive_status", pgwal);
	snprintf(done_dir, sizeof(done_dir), "%s/done", w->spool);
	snprintf(used_dir, sizeof(used_dir), "%s/used", w->spool);
	rc = fs_mkdir_p(done_dir, 0700);
	if (!rc)
		rc = cmd_wal_names(stat_dir, ".ready", &ready);
	if (!rc)
		rc = cmd_wal_names(done_dir, "", &done);
	if (!rc)
		rc = cmd_wal_names(used_dir, "", &used);
	/* Markers whose file was archived meanwhile are of no use. */
	for (size_t i = 0; !rc && i < done.n; i++) {
		if (cmd_wal_sorted_has(&ready, done.v[i])) {
			waiting++;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", done_dir, done.v[i]);
		unlink(path);
	}
	for (size_t i = 0; !rc && i < used.n; i++) {
		snprintf(path, sizeof(path), "%s/%s", used_dir, used.v[i]);
		if (!cmd_wal_sorted_has(&ready, used.v[i]))
			unlink(path);
	}
	memset(&j, 0, sizeof(j));
	j.w = w;
	j.done_dir = done_dir;
	snprintf(j.dir, sizeof(j.dir), "%s", pgwal);
	for (size_t i = 0; !rc && i < ready.n && waiting + j.names.n < CMD_WAL_AHEAD_MAX; i++)
		if (!cmd_wal_sorted_has(&done, ready.v[i]) &&
		    !cmd_wal_sorted_has(&used, ready.v[i]))
			rc = strv_add(&j.names, ready.v[i]);
	if (!rc && j.names.n)
		rc = cmd_wal_job_run(&j);
	/* The threads left the markers; the catalog is this thread's. */
	for (size_t i = 0; !rc && i < j.names.n && i < atomic_load(&j.next); i++) {
		if (j.rcs[i]) {
			/* As a failure of the queue: the next wal-push (this file's,
			 * waiting for its marker, or another's) reports it. */
			cmd_wal_failed(w, j.msgs[i]);
			continue;
		}
		cmd_wal_note(w, cat, j.names.v[i], j.sizes[i], j.missed[i]);
		(*pushed)++;
	}
	cmd_wal_job_free(&j);
	strv_free(&ready);
	strv_free(&done);
	strv_free(&used);
	if (rc) {
		log_warn("the WAL pusher's look-ahead: %s", error_message());
		error_clear();
	}
	return 0;
}

static int cmd_wal_pusher(struct cmd_wal *w)
{
	struct catalog *cat = NULL;
	char dir[4200], lockp[4300];
	int64_t idle_since = (int64_t)(time_mono() * 1000);
	int lock, rc = 0;

	snprintf(dir, sizeof(dir), "%s/out", w->spool);
	snprintf(lockp, sizeof(lockp), "%s/pusher.lock", w->spool);
	lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
		if (lock >= 0)
			close(lock);
		return 0; /* another pusher has the queue */
	}
	if (agent_open_catalog(w->cfg, &cat)) {
		log_warn("the WAL pusher cannot open the catalog: %s", error_message());
		error_clear();
	}
	while (!rc && !cancel_requested()) {
		struct cmd_wal_job j;
		uint64_t bytes;

		memset(&j, 0, sizeof(j));
		j.w = w;
		snprintf(j.dir, sizeof(j.dir), "%s", dir);
		rc = cmd_wal_queue(dir, &j.names, &bytes);
		if (rc)
			break;
		if (j.names.n == 0) {
			size_t ahead = 0;

			strv_free(&j.names);
			cmd_wal_ahead(w, cat, &ahead);
			if (ahead) {
				idle_since = (int64_t)(time_mono() * 1000);
				continue;
			}
			if ((int64_t)(time_mono() * 1000) - idle_since <= CMD_WAL_IDLE_MS) {
				cancel_sleep_ms(100);
				continue;
			}
			/* Unlocked first, then looked at once more: a wal-push that
			 * queued a file and found the lock still held (this pusher
			 * about to leave) started no pusher; this one goes on. */
			flock(lock, LOCK_UN);
			rc = cmd_wal_queue(dir, &j.names, &bytes);
			if (rc || j.names.n == 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
				strv_free(&j.names);
				break;
			}
			strv_free(&j.names);
			idle_since = (int64_t)(time_mono() * 1000);
			continue;
		}
		rc = cmd_wal_job_run(&j);
		for (size_t i = 0; !rc && i < j.names.n; i++) {
			char path[4300];

			snprintf(path, sizeof(path), "%s/%s", dir, j.names.v[i]);
			if (j.rcs[i] == 0 && j.msgs[i] == NULL && i < atomic_load(&j.next)) {
				cmd_wal_note(w, cat, j.names.v[i], j.sizes[i], j.missed[i]);
				unlink(path);
			} else if (j.rcs[i]) {
				/* The next wal-push reports it, so PostgreSQL retries. */
				cmd_wal_failed(w, j.msgs[i]);
				rc = j.rcs[i];
			}
		}
		if (!rc)
			cmd_wal_catch_up(w, cat, 16);
		cmd_wal_job_free(&j);
		idle_since = (int64_t)(time_mono() * 1000);
	}
	catalog_close(cat);
	close(lock);
	error_clear();
	return rc;
}

/* ------------------------------------------------------------------------ */
/* wal-push                                                                 */
/* ------------------------------------------------------------------------ */

/* Copies path into the spool durably: a .tmp, fsync, rename, fsync. */
static int cmd_wal_enqueue(const char *dir, const char *path, const char *name)
{
	char tmp[4300], dst[4300];
	struct buf b;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	buf_init(&b, 1ULL << 30);
	rc = fs_read_file(path, 1ULL << 30, &b);
	if (rc)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
	if (!rc)
		rc = fs_write_all(fd, b.data, b.len, tmp);
	if (!rc && fsync(fd) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", tmp);
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", tmp);
	if (!rc && rename(tmp, dst) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot rename %s", tmp);
	if (!rc)
		rc = fs_fsync_dir(dir);
	if (rc)
		unlink(tmp);
	buf_free(&b);
	return rc;
}

/* The pusher's last failure, if any: reported once (then removed). */
static int cmd_wal_async_error(const struct cmd_wal *w)
{
	char errp[4300];
	struct buf b;
	int rc;

	snprintf(errp, sizeof(errp), "%s/error", w->spool);
	buf_init(&b, 8192);
	if (fs_read_file(errp, 8192, &b)) {
		error_clear();
		buf_free(&b);
		return 0;
	}
	unlink(errp);
	rc = error_set(CF_ERR_STORAGE,
	               "the background WAL push failed: %.*s (PostgreSQL retries; "
	               "see %s/wal-push.log)",
	               (int)b.len, (const char *)b.data, w->spool);
	buf_free(&b);
	return rc;
}

/* Names the folder of path (PostgreSQL's pg_wal) in the spool's pg_wal
 * file for the pusher's look-ahead, when it is not named there yet. */
static void cmd_wal_ahead_dir(const struct cmd_wal *w, const char *path)
{
	char dir[4096], real[PATH_MAX], file[4300], old[4096];

	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (!realpath(dir, real))
		return;
	snprintf(file, sizeof(file), "%s/pg_wal", w->spool);
	cmd_wal_read_small(file, old, sizeof(old));
	if (strcmp(old, real) && cmd_wal_write_small(file, real))
		error_clear();
}

/* 1 if the pusher pushed name ahead and path holds what it pushed (the
 * marker then moves to used/). */
static int cmd_wal_ahead_done(const struct cmd_wal *w, const char *path, const char *name)
{
	char marker[4300], used[4300], want[80], hex[HASH_SHA256_HEX_LEN + 1];
	int ok;

	snprintf(marker, sizeof(marker), "%s/done/%s", w->spool, name);
	cmd_wal_read_small(marker, want, sizeof(want));
	if (!want[0])
		return 0;
	ok = wal_file_digest(path, hex) == 0 && !strcmp(hex, want);
	error_clear();
	snprintf(used, sizeof(used), "%s/used", w->spool);
	if (!ok || fs_mkdir_p(used, 0700)) {
		error_clear();
		unlink(marker);
		return ok;
	}
	snprintf(used, sizeof(used), "%s/used/%s", w->spool, name);
	if (rename(marker, used) < 0)
		unlink(marker);
	return ok;
}

/* 1 if PostgreSQL marked name ready in the archive_status folder beside
 * path (so the pusher's look-ahead takes it). */
static int cmd_wal_ahead_ready(const char *path, const char *name)
{
	char p[4400];
	const char *slash = strrchr(path, '/');

	snprintf(p, sizeof(p), "%.*s%sarchive_status/%s.ready", slash ? (int)(slash - path) : 0,
	         path, slash ? "/" : "", name);
	return access(p, F_OK) == 0;
}

/* 1 if the pusher left a failure to report. */
static int cmd_wal_has_error(const struct cmd_wal *w)
{
	char errp[4300];

	snprintf(errp, sizeof(errp), "%s/error", w->spool);
	return access(errp, F_OK) == 0;
}

/* 1 if no pusher holds the spool's lock. */
static int cmd_wal_pusher_idle(const struct cmd_wal *w)
{
	char lockp[4300];
	int fd, idle;

	snprintf(lockp, sizeof(lockp), "%s/pusher.lock", w->spool);
	fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 1;
	idle = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd); /* and the lock with it */
	return idle;
}

static int cmd_wal_push_async(struct cmd_wal *w, const char *path, const char *name, int *queued)
{
	char dir[4200];
	struct strv names = {0};
	uint64_t bytes = 0;
	struct stat st;
	int rc;

	*queued = 0;
	snprintf(dir, sizeof(dir), "%s/out", w->spool);
	rc = fs_mkdir_p(dir, 0700);
	if (!rc)
		rc = cmd_wal_async_error(w);
	if (!rc && stat(path, &st) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot open WAL file %s", path);
	if (!rc)
		cmd_wal_ahead_dir(w, path);
	if (!rc && cmd_wal_ahead_ready(path, name)) {
		/* PostgreSQL marked it ready: the pusher pushes it from pg_wal,
		 * no copy needed; waited for (a pusher killed or slow: queued
		 * after CMD_WAL_AHEAD_WAIT_MS). */
		double until = time_mono() + CMD_WAL_AHEAD_WAIT_MS / 1000.0, spawned = 0;

		while (!cancel_requested()) {
			if (cmd_wal_ahead_done(w, path, name)) {
				*queued = 1;
				log_info("wal-push %s: pushed by the background pusher", name);
				return 0;
			}
			if (time_mono() > until || cmd_wal_has_error(w))
				break;
			if (time_mono() - spawned > 1.0 && cmd_wal_pusher_idle(w)) {
				cmd_wal_spawn(w, "wal-push", NULL);
				spawned = time_mono();
			}
			cancel_sleep_ms(20);
		}
		rc = cmd_wal_async_error(w);
	}
	if (!rc)
		rc = cmd_wal_queue(dir, &names, &bytes);
	strv_free(&names);
	if (rc)
		return rc;
	if (bytes + (uint64_t)st.st_size > w->opts->spool_max) {
		log_warn("wal-push %s: the spool %s holds %llu bytes (wal_spool_max %llu): pushing "
		         "this one synchronously",
		         name, dir, (unsigned long long)bytes,
		         (unsigned long long)w->opts->spool_max);
	} else {
		rc = cmd_wal_enqueue(dir, path, name);
		if (!rc) {
			*queued = 1;
			log_info("wal-push %s: queued in %s", name, dir);
		}
	}
	/* Whatever was queued gets a pusher (one runs at most: a flock). */
	cmd_wal_spawn(w, "wal-push", NULL);
	return rc;
}

int cmd_wal_push(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"source", required_argument, NULL, 's'},
	                                     {"background", no_argument, NULL, 'b'},
	                                     {NULL, 0, NULL, 0}};
	const char *source = NULL, *path, *name;
	struct cmd_wal w;
	int opt, rc, background = 0, queued = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 's')
			source = optarg;
		else if (opt == 'b')
			background = 1;
		else
			return agent_option_error(opt, argv, CMD_WAL_PUSH_USAGE);
	}
	if (!background && optind + 1 != argc)
		return error_set(CF_ERR_USAGE, "%s (archive_command = 'coffer wal-push %%p')",
		                 CMD_WAL_PUSH_USAGE);
	rc = cmd_wal_open(&w, cli, source, 1, NULL);
	if (!rc && background) {
		rc = cmd_wal_pusher(&w);
		cmd_wal_free(&w);
		return rc;
	}
	path = argv[optind];
	name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (!rc) {
		struct wal_name wn;

		rc = wal_name_parse(name, &wn);
	}
	if (!rc && w.opts->async)
		rc = cmd_wal_push_async(&w, path, name, &queued);
	if (!rc && !queued) {
		struct catalog *cat = NULL;
		struct stat st;
		unsigned long long missed = 0;
		size_t stored = 0;

		rc = wal_push_file(&w.a, path, name, &stored, &missed);
		if (!rc && agent_open_catalog(w.cfg, &cat)) {
			log_warn("wal-push %s: stored, but not recorded in the catalog: %s", name,
			         error_message());
			error_clear();
		}
		if (!rc && cat && stat(path, &st) == 0)
			cmd_wal_note(&w, cat, name, (uint64_t)st.st_size, missed);
		if (!rc)
			cmd_wal_catch_up(&w, cat, 16);
		if (!rc)
			error_clear();
		catalog_close(cat);
	}
	cmd_wal_free(&w);
	return rc;
}
