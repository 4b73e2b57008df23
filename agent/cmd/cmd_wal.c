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

struct cmd_wal_job {
	struct cmd_wal *w;
	char dir[4200];
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
		if (j->rcs[i])
			j->msgs[i] = strdup(error_message());
		error_clear();
		if (cancel_requested())
			break;
	}
	return NULL;
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

static int cmd_wal_pusher(struct cmd_wal *w)
{
	struct catalog *cat = NULL;
	char dir[4200], lockp[4300], errp[4300];
	int64_t idle_since = (int64_t)(time_mono() * 1000);
	int lock, rc = 0;

	snprintf(dir, sizeof(dir), "%s/out", w->spool);
	snprintf(lockp, sizeof(lockp), "%s/pusher.lock", w->spool);
	snprintf(errp, sizeof(errp), "%s/error", w->spool);
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
			strv_free(&j.names);
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
		j.rcs = calloc(j.names.n, sizeof(*j.rcs));
		j.msgs = calloc(j.names.n, sizeof(*j.msgs));
		j.sizes = calloc(j.names.n, sizeof(*j.sizes));
		j.missed = calloc(j.names.n, sizeof(*j.missed));
		if (!j.rcs || !j.msgs || !j.sizes || !j.missed) {
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		} else {
			cmd_wal_threads(cmd_wal_job_thread, &j,
			                w->opts->push_jobs < j.names.n ? w->opts->push_jobs
			                                               : j.names.n);
		}
		for (size_t i = 0; !rc && i < j.names.n; i++) {
			char path[4300];

			snprintf(path, sizeof(path), "%s/%s", dir, j.names.v[i]);
			if (j.rcs[i] == 0 && j.msgs[i] == NULL && i < atomic_load(&j.next)) {
				cmd_wal_note(w, cat, j.names.v[i], j.sizes[i], j.missed[i]);
				unlink(path);
			} else if (j.rcs[i]) {
				/* The next wal-push reports it, so PostgreSQL retries. */
				FILE *f = fopen(errp, "w");

				if (f) {
					fprintf(f, "%s", j.msgs[i] ? j.msgs[i] : "failed");
					fclose(f);
				}
				log_error("%s", j.msgs[i] ? j.msgs[i] : "failed");
				rc = j.rcs[i];
			}
		}
		for (size_t i = 0; j.msgs && i < j.names.n; i++)
			free(j.msgs[i]);
		free(j.msgs);
		free(j.rcs);
		free(j.sizes);
		free(j.missed);
		if (!rc)
			cmd_wal_catch_up(w, cat, 16);
		strv_free(&j.names);
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
