/*
 * cmd_wal_fetch: `coffer wal-fetch`, PostgreSQL's restore_command for a
 * postgres-physical source (see cmd_wal.c for wal-push).
 *
 * It fetches one file into place atomically. Exit statuses are
 * PostgreSQL's: 0 fetched, 1 not in the archive (the end of recovery), and
 * 126 for anything else (a repository unreachable, a damaged object, a hole
 * in the archive, a config or identity that cannot be read): PostgreSQL
 * then stops the recovery instead of taking the error for the archive's
 * end. Once a segment is fetched, a background prefetcher (`wal-fetch
 * --background`) fetches the next wal_prefetch segments of its timeline
 * into the spool, which the next wal-fetch takes from.
 */
#include "agent/cmd/cmd_wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define CMD_WAL_FETCH_USAGE "usage: coffer wal-fetch [--source S] [--identity FILE] NAME DEST"
/* What wal-fetch exits with when the archive could not be read: above 125,
 * so PostgreSQL stops the recovery (xlogarchive.c) instead of ending it. */
#define CMD_WAL_FETCH_ABORT 126

struct cmd_wal_fetch_next {
	const struct wal_name *from;
	struct strv names;
	size_t max;
};

static int cmd_wal_fetch_next_cb(void *ctx, const struct wal_entry *e)
{
	struct cmd_wal_fetch_next *n = ctx;

	if (n->names.n >= n->max || e->w.kind != WAL_SEGMENT || e->w.tli != n->from->tli ||
	    strcmp(e->w.name, n->from->name) <= 0)
		return 0;
	if (n->names.n && !strcmp(n->names.v[n->names.n - 1], e->w.name))
		return 0;
	return strv_add(&n->names, e->w.name);
}

struct cmd_wal_fetch_job {
	struct cmd_wal *w;
	const char *dir;
	struct strv *names;
	atomic_size_t next;
};

static void *cmd_wal_fetch_thread(void *arg)
{
	struct cmd_wal_fetch_job *j = arg;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->names->n && !cancel_requested()) {
		char dst[4300];

		snprintf(dst, sizeof(dst), "%s/%s", j->dir, j->names->v[i]);
		if (access(dst, F_OK) == 0)
			continue;
		if (wal_fetch_file(&j->w->a, j->names->v[i], dst))
			log_warn("prefetch %s: %s", j->names->v[i], error_message());
		error_clear();
	}
	return NULL;
}

/* wal-fetch --background NAME: the segments after NAME into the spool. */
static int cmd_wal_fetch_prefetcher(struct cmd_wal *w, const char *after)
{
	struct cmd_wal_fetch_next n = {NULL, {0}, w->opts->prefetch};
	struct cmd_wal_fetch_job j;
	char dir[4200], lockp[4300];
	struct wal_name from;
	struct repo *r = NULL;
	int lock, rc;
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/in", w->spool);
	snprintf(lockp, sizeof(lockp), "%s/prefetch.lock", w->spool);
	rc = wal_name_parse(after, &from);
	if (rc)
		return rc;
	lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
		if (lock >= 0)
			close(lock);
		return 0;
	}
	/* What PostgreSQL has gone past is dropped: the queue stays bounded. */
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			char p[4500];

			if (e->d_name[0] == '.' || strcmp(e->d_name, after) > 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	for (size_t i = 0; i < w->a.nrepos && !r; i++)
		r = w->repos[i];
	n.from = &from;
	if (r) {
		char *wdir = NULL;

		/* The next segments: in this folder, else the next one. */
		for (int pass = 0; pass < 2 && !rc && n.names.n < n.max; pass++) {
			char first[25];
			struct wal_name fw;

			snprintf(first, sizeof(first), "%08X%08X%08X", from.tli,
			         from.log + (unsigned)pass, 0U);
			rc = wal_name_parse(first, &fw);
			if (!rc)
				rc = repo_wal_dir(w->src->name, first, &wdir);
			if (!rc)
				rc = wal_list_dir(r, wdir, cmd_wal_fetch_next_cb, &n);
			free(wdir);
			wdir = NULL;
		}
	}
	memset(&j, 0, sizeof(j));
	j.w = w;
	j.dir = dir;
	j.names = &n.names;
	if (!rc && n.names.n && !(rc = fs_mkdir_p(dir, 0700))) {
		cmd_wal_threads(cmd_wal_fetch_thread, &j, n.names.n < 4 ? n.names.n : 4);
	}
	strv_free(&n.names);
	close(lock);
	return rc;
}

/* The segment from the prefetch queue, if it is there (moved, or copied
 * when the spool is on another file system). */
static int cmd_wal_fetch_from_spool(const struct cmd_wal *w, const char *name, const char *dest)
{
	char src[4300], tmp[4300];
	struct buf b;
	int fd, rc;

	snprintf(src, sizeof(src), "%s/in/%s", w->spool, name);
	if (access(src, F_OK) != 0)
		return CF_ERR_NOTFOUND;
	if (rename(src, dest) == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.coffer-tmp", dest);
	buf_init(&b, 1ULL << 30);
	rc = fs_read_file(src, 1ULL << 30, &b);
	fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!rc && fd < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
	if (!rc)
		rc = fs_write_all(fd, b.data, b.len, tmp);
	if (!rc && fsync(fd) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", tmp);
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, dest) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot rename %s", tmp);
	if (rc)
		unlink(tmp);
	else
		unlink(src);
	buf_free(&b);
	return rc;
}

int cmd_wal_fetch(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"source", required_argument, NULL, 's'},
	                                     {"background", no_argument, NULL, 'b'},
	                                     {"identity", required_argument, NULL, 'i'},
	                                     {NULL, 0, NULL, 0}};
	const char *source = NULL, *identity = NULL;
	struct cmd_wal w;
	int opt, rc, background = 0, fetch_rc = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":i:", opts, NULL)) != -1) {
		if (opt == 's')
			source = optarg;
		else if (opt == 'b')
			background = 1;
		else if (opt == 'i')
			identity = optarg;
		else
			return agent_option_error(opt, argv, CMD_WAL_FETCH_USAGE);
	}
	if (optind + (background ? 1 : 2) != argc)
		return error_set(CF_ERR_USAGE, "%s (restore_command = 'coffer wal-fetch %%f %%p')",
		                 CMD_WAL_FETCH_USAGE);
	rc = cmd_wal_open(&w, cli, source, 0, identity);
	if (!rc && background) {
		rc = cmd_wal_fetch_prefetcher(&w, argv[optind]);
		cmd_wal_free(&w);
		return rc;
	}
	if (!rc) {
		struct wal_name wn;

		rc = wal_name_parse(argv[optind], &wn);
		if (!rc) {
			rc = cmd_wal_fetch_from_spool(&w, argv[optind], argv[optind + 1]);
			if (rc == CF_ERR_NOTFOUND)
				rc = fetch_rc =
				    wal_fetch_file(&w.a, argv[optind], argv[optind + 1]);
			else if (!rc)
				log_info("wal-fetch %s: taken from the prefetch queue",
				         argv[optind]);
		}
		if (!rc && wn.kind == WAL_SEGMENT && w.opts->prefetch)
			cmd_wal_spawn(&w, "wal-fetch", argv[optind]);
	}
	cmd_wal_free(&w);
	/* Only the archive's own answer means its end: a config or identity
	 * that cannot be found is a failure like any other. */
	if (rc == CF_ERR_NOTFOUND && fetch_rc == CF_ERR_NOTFOUND) {
		/* PostgreSQL asks past the archive's end: not an error. */
		log_info("%s", error_message());
		error_clear();
		return 1;
	}
	if (rc)
		return CMD_WAL_FETCH_ABORT;
	return 0;
}
