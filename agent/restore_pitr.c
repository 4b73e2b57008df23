/*
 * restore_pitr: `coffer restore --to-datadir DIR` of a postgres-physical
 * source, to a point in time (--at), an LSN (--lsn), the end of the
 * archive (--latest) or the base backup's own end (--immediate).
 *
 * Before anything is written it picks the newest complete base backup that
 * ends before the target and checks the WAL archive (listed from the
 * repository, the source of truth): the target must not lie before the
 * first backup or beyond the newest archived WAL, and the segments from the
 * backup's start onward must have no hole. It then lays the base backup
 * down in a private folder beside DIR, the tablespaces in their locations
 * (--tablespace-map OLD=NEW moves them, and their pg_tblspc links follow),
 * the server's backup_manifest, recovery.signal and the recovery settings
 * (restore_command calling `coffer wal-fetch`, the target) at the end of
 * postgresql.auto.conf, syncs, and renames the folder to DIR: a DIR that
 * exists is complete, and a failed restore leaves nothing that looks like a
 * data directory. The repositories are tried in config order (--from: one):
 * one that cannot be read, lacks the backup or the WAL, or holds a damaged
 * copy is passed over once what was written from it is removed.
 */
#include "agent/agent.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/pipeline/restore_tar.h"
#include "agent/restore.h"
#include "agent/source/pgphys_restore.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESTORE_PITR_USAGE                                                                         \
	"usage: coffer restore --source S --to-datadir DIR (--at TIME | --lsn LSN | --latest | "   \
	"--immediate) [--backup ID] [--timeline N] [--target-action promote|pause|shutdown] "      \
	"[--tablespace-map OLD=NEW]... [--archive-mode off|preserve] [--from REPOSITORY] "         \
	"[--identity FILE]"

enum restore_pitr_target { PITR_NONE, PITR_AT, PITR_LSN, PITR_LATEST, PITR_IMMEDIATE };

struct restore_pitr {
	const char *source, *dir, *backup, *identity, *action, *timeline_text;
	const char *from;     /* --from: only this repository */
	int archive_preserve; /* --archive-mode preserve: the restored cluster archives */
	enum restore_pitr_target target;
	const char *target_text;
	int64_t at_ms;
	uint64_t lsn;
	uint32_t timeline; /* 0: latest */
	struct strv tsmap; /* OLD=NEW */
};

/* One base backup as its record's meta describes it. */
struct restore_pitr_base {
	char id[BACKUP_ID_LEN + 1];
	uint64_t start_lsn, stop_lsn, seg_size;
	uint32_t tli;
	int64_t stop_ms;
};

static int restore_pitr_base_of(const struct catalog_backup *b, struct restore_pitr_base *out)
{
	json_t *m = b->meta_json ? json_loads(b->meta_json, 0, NULL) : NULL;
	const char *start = json_string_value(json_object_get(m, "start_lsn"));
	const char *stop = json_string_value(json_object_get(m, "stop_lsn"));
	int ok = start && stop && !wal_lsn_parse(start, &out->start_lsn) &&
	         !wal_lsn_parse(stop, &out->stop_lsn);

	error_clear();
	if (ok) {
		snprintf(out->id, sizeof(out->id), "%s", b->id);
		out->tli = (uint32_t)json_integer_value(json_object_get(m, "timeline"));
		out->seg_size =
		    (uint64_t)json_integer_value(json_object_get(m, "wal_segment_size"));
		out->stop_ms = json_integer_value(json_object_get(m, "stop_ms"));
		ok = out->tli && out->seg_size && out->stop_ms;
	}
	json_decref(m);
	return ok;
}

struct restore_pitr_pick {
	const struct restore_pitr *p;
	const char *location;
	struct restore_pitr_base best, first;
	int have, have_first;
	size_t complete;
};

static int restore_pitr_pick_cb(void *ctx, const struct catalog_backup *b)
{
	struct restore_pitr_pick *k = ctx;
	struct restore_pitr_base x;

	if (b->status != CATALOG_COMPLETE || strcmp(b->kind, "postgres-physical") ||
	    !repo_record_at(b, k->location) || !restore_pitr_base_of(b, &x))
		return 0;
	if (k->p->backup && strncmp(b->id, k->p->backup, strlen(k->p->backup)))
		return 0;
	if (k->p->timeline && x.tli > k->p->timeline)
		return 0;
	k->complete++;
	if (!k->have_first || x.stop_ms < k->first.stop_ms) {
		k->first = x;
		k->have_first = 1;
	}
	if (k->p->target == PITR_AT && x.stop_ms > k->p->at_ms)
		return 0;
	if (k->p->target == PITR_LSN && x.stop_lsn > k->p->lsn)
		return 0;
	if (!k->have || x.stop_ms > k->best.stop_ms) {
		k->best = x;
		k->have = 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The archive                                                              */
/* ------------------------------------------------------------------------ */

struct restore_pitr_seg {
	uint32_t tli;
	uint64_t segno;
	int64_t mtime_ms;
};

struct restore_pitr_archive {
	uint64_t seg_size;
	struct restore_pitr_seg *v;
	size_t n, cap;
	uint32_t max_history; /* the newest timeline with a history file */
	/* The timelines recovery goes through, from the base backup's to the
	 * target's (restore_pitr_timeline()); 0 entries: every one. */
	uint32_t chain[64];
	size_t nchain;
};

static int restore_pitr_on_chain(const struct restore_pitr_archive *a, uint32_t tli)
{
	for (size_t i = 0; i < a->nchain; i++)
		if (a->chain[i] == tli)
			return 1;
	return a->nchain == 0;
}

/*
 * The newest timeline recovery from base can reach, read from the archived
 * history files ("parentTLI<TAB>switchpoint<TAB>reason" lines, oldest
 * first): one whose history leaves base's timeline at or after base's end.
 * PostgreSQL's own 'latest' would take the newest timeline whatever its
 * ancestry, and refuse to start when a restored copy promoted off an
 * earlier point. With --timeline N, N must be reachable. Sets a->chain.
 */
static int restore_pitr_timeline(struct restore_pitr *p, struct repo *r,
                                 const struct age_identities *ids,
                                 const struct restore_pitr_base *base,
                                 struct restore_pitr_archive *a)
{
	struct repo *repos[1] = {r};
	struct wal_archive wa;
	uint32_t best = base->tli;
	char tmp[PATH_MAX];
	const char *td = getenv("TMPDIR");
	int rc = 0;

	memset(&wa, 0, sizeof(wa));
	wa.source = p->source;
	wa.repos = repos;
	wa.nrepos = 1;
	wa.ids = ids;
	a->chain[0] = base->tli;
	a->nchain = 1;
	snprintf(tmp, sizeof(tmp), "%s/coffer-history.%d", td && *td ? td : "/tmp", (int)getpid());
	for (uint32_t t = a->max_history; !rc && t > base->tli; t--) {
		char name[24];
		struct buf b;
		uint32_t chain[64];
		size_t n = 0;
		int reach = 0;

		if (p->timeline && t != p->timeline)
			continue;
		snprintf(name, sizeof(name), "%08X.history", t);
		rc = wal_fetch_file(&wa, name, tmp);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = 0;
			continue;
		}
		buf_init(&b, 1 << 20);
		if (!rc)
			rc = fs_read_file(tmp, 1 << 20, &b);
		unlink(tmp);
		for (char *line = rc ? NULL : (char *)b.data, *next; line && *line; line = next) {
			unsigned long parent;
			char *end, lsn[32];
			uint64_t sw = 0;

			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			parent = strtoul(line, &end, 10);
			if (end == line || sscanf(end, "%31s", lsn) != 1 ||
			    wal_lsn_parse(lsn, &sw)) {
				error_clear();
				continue;
			}
			if (parent == base->tli && sw >= base->stop_lsn)
				reach = 1;
			if (reach && parent >= base->tli && n < 63)
				chain[n++] = (uint32_t)parent;
		}
		buf_free(&b);
		if (!rc && reach) {
			best = t;
			memcpy(a->chain, chain, n * sizeof(*chain));
			a->chain[n++] = t;
			a->nchain = n;
			break;
		}
	}
	if (!rc && p->timeline && best != p->timeline && p->timeline != base->tli)
		rc =
		    error_set(CF_ERR_NOTFOUND,
		              "timeline %u cannot be reached from base backup %s (timeline %u, "
		              "ended at its LSN %llX): its history leaves earlier, or it is not "
		              "archived",
		              p->timeline, base->id, base->tli, (unsigned long long)base->stop_lsn);
	if (!rc)
		p->timeline = best;
	return rc;
}

static int restore_pitr_archive_cb(void *ctx, const struct wal_entry *e)
{
	struct restore_pitr_archive *a = ctx;

	if (e->w.kind == WAL_HISTORY && e->w.tli > a->max_history)
		a->max_history = e->w.tli;
	if (e->w.kind != WAL_SEGMENT)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 1024;
		void *v = realloc(a->v, cap * sizeof(*a->v));

		if (!v)
			return error_set(CF_ERR_NOMEM, "out of memory");
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n].tli = e->w.tli;
	a->v[a->n].segno = wal_segno(&e->w, a->seg_size);
	a->v[a->n].mtime_ms = e->mtime_ms;
	a->n++;
	return 0;
}

static int restore_pitr_seg_cmp(const void *x, const void *y)
{
	const struct restore_pitr_seg *a = x, *b = y;

	if (a->tli != b->tli)
		return a->tli < b->tli ? -1 : 1;
	return a->segno < b->segno ? -1 : a->segno > b->segno;
}

/*
 * Checks that the archive can take recovery from base to the target:
 * every segment of the backup's timeline from its start, and of each later
 * timeline from its first, is there without a hole up to the target (or
 * the newest); a target past the newest archived WAL fails.
 */
static int restore_pitr_check_archive(const struct restore_pitr *p, const char *source,
                                      const struct restore_pitr_base *base,
                                      struct restore_pitr_archive *a)
{
	uint64_t start = base->start_lsn / a->seg_size, stop = base->stop_lsn / a->seg_size;
	uint64_t target_seg = p->target == PITR_LSN ? p->lsn / a->seg_size : UINT64_MAX;
	int64_t newest_ms = 0;
	char name[25], name2[25];
	size_t i = 0;

	if (a->n)
		qsort(a->v, a->n, sizeof(*a->v), restore_pitr_seg_cmp);
	while (i < a->n) {
		uint32_t tli = a->v[i].tli;
		uint64_t expect = tli == base->tli ? start : a->v[i].segno;
		int started = 0;

		if (tli < base->tli || !restore_pitr_on_chain(a, tli)) {
			while (i < a->n && a->v[i].tli == tli)
				i++;
			continue;
		}
		for (; i < a->n && a->v[i].tli == tli; i++) {
			const struct restore_pitr_seg *s = &a->v[i];

			if (s->segno < expect)
				continue;
			/* The backup's own WAL is inside it: the archive may start
			 * after it. */
			if (s->segno != expect && !(tli == base->tli && !started &&
			                            expect <= stop && s->segno <= stop + 1))
				goto hole;
			started = 1;
			expect = s->segno + 1;
			if (s->mtime_ms > newest_ms)
				newest_ms = s->mtime_ms;
			if (s->segno >= target_seg && tli == base->tli)
				break;
			if (p->target == PITR_AT && s->mtime_ms >= p->at_ms)
				break;
			continue;
		hole:
			wal_segname(tli, expect, a->seg_size, name);
			wal_segname(tli, s->segno, a->seg_size, name2);
			return error_set(CF_ERR_INTEGRITY,
			                 "WAL segment %s of source %s is missing from the archive "
			                 "(the next one archived is %s): a recovery from backup %s "
			                 "would stop there. Restore to a point before it, or find "
			                 "the segment (the server's pg_wal) and wal-push it",
			                 name, source, name2, base->id);
		}
		while (i < a->n && a->v[i].tli == tli)
			i++;
	}
	/* Nothing archived after the backup reaches no later than its end. */
	if (p->target == PITR_AT && !newest_ms && p->at_ms > base->stop_ms)
		return error_set(
		    CF_ERR_NOTFOUND,
		    "%s is after the end of base backup %s, and no WAL of source %s is "
		    "archived after it (is archive_command = 'coffer wal-push' set?); "
		    "choose --immediate or an earlier time",
		    p->target_text, base->id, source);
	if (p->target == PITR_AT && newest_ms && newest_ms < p->at_ms) {
		char t1[40];

		time_format_iso(newest_ms, t1, sizeof(t1));
		return error_set(
		    CF_ERR_NOTFOUND,
		    "%s is after the newest archived WAL of source %s (stored at %s): "
		    "the WAL up to it is not archived (yet); choose an earlier time or "
		    "--latest",
		    p->target_text, source, t1);
	}
	if (p->target == PITR_LSN) {
		uint64_t end = 0;

		for (size_t j = 0; j < a->n; j++)
			if ((a->v[j].segno + 1) * a->seg_size > end)
				end = (a->v[j].segno + 1) * a->seg_size;
		if (base->stop_lsn > end)
			end = base->stop_lsn;
		if (p->lsn > end) {
			char e[24];

			wal_lsn_format(end, e);
			return error_set(
			    CF_ERR_NOTFOUND,
			    "LSN %s is beyond the archived WAL of source %s (it ends at "
			    "%s)",
			    p->target_text, source, e);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Laying the data directory down                                           */
/* ------------------------------------------------------------------------ */

/* A value for postgresql.conf: '...' with ' doubled. */
static int restore_pitr_conf_quote(struct buf *b, const char *v)
{
	int rc = buf_append(b, "'", 1);

	for (; !rc && *v; v++)
		rc = *v == '\'' ? buf_append(b, "''", 2) : buf_append(b, v, 1);
	return rc ? rc : buf_append(b, "'", 1);
}

/* A word for the shell that runs restore_command. */
static int restore_pitr_shell_word(const char *v, char *out, size_t size)
{
	if (strpbrk(v, "'\n"))
		return error_set(CF_ERR_USAGE,
		                 "'%s' holds a quote or a newline: it cannot go into "
		                 "restore_command",
		                 v);
	if (v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-=+:,")])
		snprintf(out, size, "'%s'", v);
	else
		snprintf(out, size, "%s", v);
	return 0;
}

/* recovery.signal, and the recovery settings after what the backup's
 * postgresql.auto.conf holds. */
static int restore_pitr_settings(const struct restore_pitr *p, const struct config *cfg,
                                 const struct restore_pitr_base *base, const char *tmp)
{
	char exe[PATH_MAX], conf[PATH_MAX], qexe[PATH_MAX + 3], qconf[PATH_MAX + 3], qsrc[300];
	char path[PATH_MAX + 64], cmd[5 * PATH_MAX], when[40];
	struct buf b;
	ssize_t n;
	int fd, rc;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot find the coffer program");
	exe[n] = '\0';
	if (!realpath(cfg->file, conf))
		return error_set_errno(CF_ERR_IO, errno, "cannot resolve %s", cfg->file);
	rc = restore_pitr_shell_word(exe, qexe, sizeof(qexe));
	if (!rc)
		rc = restore_pitr_shell_word(conf, qconf, sizeof(qconf));
	if (!rc)
		rc = restore_pitr_shell_word(p->source, qsrc, sizeof(qsrc));
	if (rc)
		return rc;
	if (p->identity) {
		char id[PATH_MAX], qid[PATH_MAX + 3];

		if (!realpath(p->identity, id))
			return error_set_errno(CF_ERR_KEY, errno, "cannot resolve %s", p->identity);
		rc = restore_pitr_shell_word(id, qid, sizeof(qid));
		if (rc)
			return rc;
		snprintf(cmd, sizeof(cmd),
		         "%s --config %s wal-fetch --source %s --identity %s %%f %%p", qexe, qconf,
		         qsrc, qid);
	} else {
		snprintf(cmd, sizeof(cmd), "%s --config %s wal-fetch --source %s %%f %%p", qexe,
		         qconf, qsrc);
	}
	time_format_iso(time_real_ms(), when, sizeof(when));
	buf_init(&b, 1 << 20);
	rc = buf_printf(&b, "\n# Added by coffer restore of backup %s at %s\nrestore_command = ",
	                base->id, when);
	if (!rc)
		rc = restore_pitr_conf_quote(&b, cmd);
	if (!rc && p->target == PITR_AT) {
		time_t sec = (time_t)(p->at_ms / 1000);
		struct tm tm;
		char t[40];

		/* PostgreSQL's own form: it does not take the ISO "T...Z" one. */
		gmtime_r(&sec, &tm);
		strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm);
		rc = buf_printf(&b, "\nrecovery_target_time = '%s.%03d+00'", t,
		                (int)(p->at_ms % 1000));
	} else if (!rc && p->target == PITR_LSN) {
		char l[24];

		wal_lsn_format(p->lsn, l);
		rc = buf_printf(&b, "\nrecovery_target_lsn = '%s'", l);
	} else if (!rc && p->target == PITR_IMMEDIATE) {
		rc = buf_printf(&b, "\nrecovery_target = 'immediate'");
	}
	/* The timeline restore chose (or was given); --immediate stays on the
	 * backup's own. */
	if (!rc && p->timeline)
		rc = buf_printf(&b, "\nrecovery_target_timeline = '%u'", p->timeline);
	else if (!rc)
		rc = buf_printf(&b, "\nrecovery_target_timeline = 'current'");
	if (!rc && p->target != PITR_LATEST)
		rc = buf_printf(&b, "\nrecovery_target_action = '%s'",
		                p->action ? p->action : "promote");
	/* A restored copy that archived into the source's archive would add a
	 * timeline that a later restore --latest follows: off unless asked. */
	if (!rc && !p->archive_preserve)
		rc = buf_printf(&b, "\n# --archive-mode preserve keeps the cluster's own setting "
		                    "(for a new primary)\narchive_mode = 'off'");
	if (!rc)
		rc = buf_append(&b, "\n", 1);
	snprintf(path, sizeof(path), "%s/postgresql.auto.conf", tmp);
	fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (!rc && fd < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", path);
	if (!rc)
		rc = fs_write_all(fd, b.data, b.len, path);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/recovery.signal", tmp);
	fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!rc && fd < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", path);
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */
/* ------------------------------------------------------------------------ */

static int restore_pitr_args(int argc, char **argv, struct restore_pitr *p)
{
	static const struct option opts[] = {{"to-datadir", required_argument, NULL, 'd'},
	                                     {"source", required_argument, NULL, 'S'},
	                                     {"at", required_argument, NULL, 'a'},
	                                     {"lsn", required_argument, NULL, 'l'},
	                                     {"latest", no_argument, NULL, 'L'},
	                                     {"immediate", no_argument, NULL, 'I'},
	                                     {"backup", required_argument, NULL, 'b'},
	                                     {"timeline", required_argument, NULL, 'T'},
	                                     {"target-action", required_argument, NULL, 'A'},
	                                     {"tablespace-map", required_argument, NULL, 'm'},
	                                     {"identity", required_argument, NULL, 'i'},
	                                     {"archive-mode", required_argument, NULL, 'M'},
	                                     {"from", required_argument, NULL, 'F'},
	                                     {NULL, 0, NULL, 0}};
	int opt, ntargets = 0, rc = 0;

	optind = 0;
	while (!rc && (opt = getopt_long(argc, argv, ":i:", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			p->dir = optarg;
			break;
		case 'S':
			p->source = optarg;
			break;
		case 'a':
			p->target = PITR_AT;
			p->target_text = optarg;
			ntargets++;
			if (time_parse_iso(optarg, &p->at_ms))
				rc = error_set(
				    CF_ERR_USAGE,
				    "--at %s: expected a UTC time like 2026-12-05T17:41:09Z "
				    "or 2026-12-05T17:41:09.123Z",
				    optarg);
			break;
		case 'l':
			p->target = PITR_LSN;
			p->target_text = optarg;
			ntargets++;
			rc = wal_lsn_parse(optarg, &p->lsn);
			break;
		case 'L':
			p->target = PITR_LATEST;
			ntargets++;
			break;
		case 'I':
			p->target = PITR_IMMEDIATE;
			ntargets++;
			break;
		case 'b':
			p->backup = optarg;
			break;
		case 'T': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (strcmp(optarg, "latest") &&
			    (end == optarg || *end || v == 0 || v > 0xFFFFFFFFUL))
				rc =
				    error_set(CF_ERR_USAGE,
				              "--timeline %s: expected a number or latest", optarg);
			p->timeline = strcmp(optarg, "latest") ? (uint32_t)v : 0;
			break;
		}
		case 'A':
			if (strcmp(optarg, "promote") && strcmp(optarg, "pause") &&
			    strcmp(optarg, "shutdown"))
				rc = error_set(
				    CF_ERR_USAGE,
				    "--target-action %s: expected promote, pause or shutdown",
				    optarg);
			p->action = optarg;
			break;
		case 'm':
			if (!strchr(optarg, '=') || optarg[0] != '/' ||
			    strchr(optarg, '=')[1] != '/')
				rc = error_set(
				    CF_ERR_USAGE,
				    "--tablespace-map %s: expected OLD=NEW, two absolute paths",
				    optarg);
			else
				rc = strv_add(&p->tsmap, optarg);
			break;
		case 'i':
			p->identity = optarg;
			break;
		case 'F':
			p->from = optarg;
			break;
		case 'M':
			if (strcmp(optarg, "off") && strcmp(optarg, "preserve"))
				rc = error_set(CF_ERR_USAGE,
				               "--archive-mode %s: expected off or preserve",
				               optarg);
			p->archive_preserve = !strcmp(optarg, "preserve");
			break;
		default:
			return agent_option_error(opt, argv, RESTORE_PITR_USAGE);
		}
	}
	if (!rc && optind != argc)
		rc = error_set(CF_ERR_USAGE,
		               "restore --to-datadir takes no backup ID argument (use "
		               "--backup ID to choose one); %s",
		               RESTORE_PITR_USAGE);
	if (!rc && (!p->dir || !p->source))
		rc = error_set(CF_ERR_USAGE, "%s", RESTORE_PITR_USAGE);
	if (!rc && ntargets != 1)
		rc = error_set(CF_ERR_USAGE,
		               "give one recovery target: --at TIME, --lsn LSN, --latest or "
		               "--immediate");
	if (!rc && p->action && (p->target == PITR_LATEST))
		rc = error_set(CF_ERR_USAGE, "--target-action goes with --at, --lsn or --immediate "
		                             "(--latest promotes at the archive's end)");
	if (!rc && p->dir[0] != '/')
		rc = error_set(CF_ERR_USAGE, "--to-datadir %s: give an absolute path", p->dir);
	return rc;
}

/* What a restore needs from one repository before it writes anything. */
struct restore_pitr_plan {
	struct restore_pitr_pick k;
	struct restore_pitr_archive a;
	struct catalog_backup *b;
	uint32_t timeline; /* the timeline recovery follows */
};

static void restore_pitr_plan_free(struct restore_pitr_plan *pl)
{
	free(pl->a.v);
	catalog_backup_free(pl->b);
	memset(pl, 0, sizeof(*pl));
}

/*
 * Plans the restore from repository r: the newest complete base backup r
 * holds that ends before the target, its record, the archive's listing in
 * r, the timeline recovery follows and the archive's check (no hole, the
 * target within it). Writes nothing.
 */
static int restore_pitr_plan(const struct restore_pitr *p0, const struct config *cfg,
                             struct catalog *cat, struct repo *r, const struct age_identities *ids,
                             struct restore_pitr_plan *pl)
{
	struct restore_pitr p = *p0; /* restore_pitr_timeline() settles p.timeline */
	int rc;

	memset(pl, 0, sizeof(*pl));
	pl->k.p = &p;
	pl->k.location = repo_location(r);
	rc = catalog_backup_list(cat, p.source, restore_pitr_pick_cb, &pl->k);
	if (!rc && !pl->k.complete)
		rc = error_set(
		    CF_ERR_NOTFOUND,
		    "source %s has no complete base backup%s%s in %s (coffer list --source "
		    "%s; on a new host, coffer catalog rebuild)",
		    p.source, p.backup ? " matching " : "", p.backup ? p.backup : "",
		    repo_location(r), p.source);
	if (!rc && !pl->k.have) {
		char t[40];

		time_format_iso(pl->k.first.stop_ms, t, sizeof(t));
		rc = error_set(CF_ERR_NOTFOUND,
		               "%s is before the end of the first base backup of source %s (%s, "
		               "ended at %s): there is no backup to recover to it from",
		               p.target_text, p.source, pl->k.first.id, t);
	}
	if (!rc)
		rc = agent_find_backup(cfg, r, pl->k.best.id, p.source, &pl->b);
	/* The archive, when recovery goes past the backup's end. */
	pl->a.seg_size = pl->k.best.seg_size;
	if (!rc && p.target != PITR_IMMEDIATE)
		rc = wal_list(r, p.source, restore_pitr_archive_cb, &pl->a);
	if (!rc && p.target != PITR_IMMEDIATE)
		rc = restore_pitr_timeline(&p, r, ids, &pl->k.best, &pl->a);
	if (!rc && p.target != PITR_IMMEDIATE)
		rc = restore_pitr_check_archive(&p, p.source, &pl->k.best, &pl->a);
	pl->timeline = p.timeline; /* 0: the backup's own (--immediate) */
	pl->k.p = p0;
	return rc;
}

/* Lays the planned base backup down in tmp and writes the settings; out
 * collects the tablespace folders it creates outside tmp. */
static int restore_pitr_write(const struct restore_pitr *p, const struct config *cfg,
                              struct repo *r, const struct restore_pitr_plan *pl,
                              const struct age_identities *ids, const char *tmp, int progress,
                              struct pgphys_outside *out)
{
	struct restore_pitr q = *p;
	char l1[24], l2[24];
	int rc;

	if (mkdir(tmp, 0700) != 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
	wal_lsn_format(pl->k.best.start_lsn, l1);
	wal_lsn_format(pl->k.best.stop_lsn, l2);
	log_info("restoring base backup %s of source %s from repository %s (%s to %s, "
	         "timeline %u)",
	         pl->b->id, p->source, repo_name(r), l1, l2, pl->k.best.tli);
	rc = pgphys_lay_down(repo_storage(r), pl->b, ids, tmp, &p->tsmap, NULL, progress, out);
	q.timeline = pl->timeline;
	if (!rc)
		rc = restore_pitr_settings(&q, cfg, &pl->k.best, tmp);
	if (!rc) {
		int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || syncfs(fd) != 0)
			rc = error_set_errno(errno == ENOSPC ? CF_ERR_NOSPACE : CF_ERR_IO, errno,
			                     "cannot write the restored files to disk under %s",
			                     tmp);
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

int restore_pitr_run(const struct cli *cli, int argc, char **argv)
{
	struct restore_pitr p;
	struct restore_pitr_plan pl;
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	struct repo *repo = NULL;
	struct age_identities *ids = NULL;
	struct pgphys_outside made;
	char tmp[PATH_MAX], parent[PATH_MAX], base_name[PATH_MAX], first[1024] = "";
	double t0 = time_mono();
	const char *prev = NULL;       /* the repository tried last */
	const char *first_repo = NULL; /* and the one whose error is reported */
	int rc, exists = 0, first_rc = 0, tried = 0;

	memset(&p, 0, sizeof(p));
	memset(&pl, 0, sizeof(pl));
	memset(&made, 0, sizeof(made));
	rc = restore_pitr_args(argc, argv, &p);
	if (!rc)
		rc = config_load(cli->config_path, &cfg);
	if (!rc && !source_pgphys_wal(config_source_find(cfg, p.source)))
		rc = error_set(CF_ERR_USAGE,
		               "--to-datadir restores a postgres-physical source; %s has no such "
		               "source %s",
		               cfg->file, p.source);
	for (size_t i = 0; !rc && p.from && i < cfg->ntargets; i++)
		if (!strcmp(cfg->targets[i].name, p.from))
			break;
		else if (i + 1 == cfg->ntargets)
			rc = error_set(CF_ERR_USAGE, "--from %s: no [repository %s] in %s", p.from,
			               p.from, cfg->file);
	if (!rc)
		rc = agent_trust_load(cfg, 0, &trust);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc)
		rc = pgphys_dir_empty(p.dir, &exists);
	if (!rc)
		rc = agent_load_identities(cfg, p.identity, &ids);
	/* The private folder beside DIR, renamed to DIR at the end. */
	if (!rc) {
		snprintf(base_name, sizeof(base_name), "%s", p.dir);
		snprintf(parent, sizeof(parent), "%s", dirname(base_name)); /* DIR's folder */
		snprintf(base_name, sizeof(base_name), "%s", p.dir);
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.coffer-restore.%d", parent,
		                     basename(base_name), (int)getpid()) >= sizeof(tmp))
			rc = error_set(CF_ERR_USAGE, "path too long: %s", p.dir);
	}
	if (!rc)
		rc = fs_mkdir_p(parent, 0755);
	/* Each repository in config order (or the one --from names) until one
	 * delivers: one that cannot be read, lacks the backup or the WAL, or
	 * holds a damaged copy leaves nothing behind, and the next is tried. */
	for (size_t i = 0; !rc && cfg && i < cfg->ntargets; i++) {
		if (p.from && strcmp(cfg->targets[i].name, p.from))
			continue;
		if (prev)
			log_warn("repository %s: %s; trying repository %s", prev, error_message(),
			         cfg->targets[i].name);
		error_clear();
		prev = cfg->targets[i].name;
		tried++;
		rc = agent_open_target(cfg, i, cat, &trust, &repo);
		if (!rc)
			rc = restore_pitr_plan(&p, cfg, cat, repo, ids, &pl);
		if (!rc)
			log_context_set(p.source, pl.b->id);
		if (!rc)
			rc = restore_pitr_write(&p, cfg, repo, &pl, ids, tmp, cli->progress, &made);
		if (rc) {
			if (!access(tmp, F_OK))
				fs_remove_tree(tmp);
			pgphys_undo(&made);
			/* The error to report when none delivers: the first that is
			 * not a connection failure, else the last. */
			if (!first_rc || first_rc == CF_ERR_NETWORK || first_rc == CF_ERR_STORAGE) {
				first_rc = rc;
				first_repo = cfg->targets[i].name;
				snprintf(first, sizeof(first), "%s", error_message());
			}
			if (agent_fallover_ok(rc) && !p.from) {
				log_context_set(NULL, NULL);
				restore_pitr_plan_free(&pl);
				repo_close(repo);
				repo = NULL;
				rc = 0;
				continue;
			}
		}
		break;
	}
	/* (One repository tried: its error as it is.) */
	if (!rc && !pl.b)
		rc = first_rc ? error_set(first_rc, "%s%s%s%s", tried > 1 ? "repository " : "",
		                          tried > 1 ? first_repo : "", tried > 1 ? ": " : "", first)
		              : error_set(CF_ERR_NOTFOUND, "no repository to restore from");
	if (!rc && rename(tmp, p.dir) != 0) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot rename %s to %s", tmp, p.dir);
		fs_remove_tree(tmp);
		pgphys_undo(&made);
	}
	if (!rc)
		rc = fs_fsync_dir(parent);
	if (!rc && cli->json) {
		char stop[40];

		time_format_iso(pl.k.best.stop_ms, stop, sizeof(stop));
		rc = agent_print_json(json_pack(
		    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:s, s:b, s:f}", "id", pl.b->id,
		    "source", p.source, "repository", repo_name(repo), "datadir", p.dir,
		    "backup_end", stop, "target",
		    p.target == PITR_AT       ? "time"
		    : p.target == PITR_LSN    ? "lsn"
		    : p.target == PITR_LATEST ? "latest"
		                              : "immediate",
		    "target_value", p.target_text, "timeline",
		    (json_int_t)(pl.timeline ? pl.timeline : pl.k.best.tli), "target_action",
		    p.target == PITR_LATEST ? "promote"
		    : p.action              ? p.action
		                            : "promote",
		    "archive_mode_off", !p.archive_preserve, "seconds", time_mono() - t0));
	} else if (!rc && !cli->quiet) {
		char stop[40];

		time_format_iso(pl.k.best.stop_ms, stop, sizeof(stop));
		printf("restored base backup %s of source %s (ended %s) from repository %s into "
		       "%s in %.1f s\n",
		       pl.b->id, p.source, stop, repo_name(repo), p.dir, time_mono() - t0);
		printf("recovery: %s%s on timeline %u; WAL from the archive through coffer "
		       "wal-fetch\n",
		       p.target == PITR_AT       ? "to "
		       : p.target == PITR_LSN    ? "to LSN "
		       : p.target == PITR_LATEST ? "to the end of the archive"
		                                 : "to the end of the base backup",
		       p.target == PITR_AT || p.target == PITR_LSN ? p.target_text : "",
		       pl.timeline ? pl.timeline : pl.k.best.tli);
		if (!p.archive_preserve)
			printf(
			    "archive_mode is off in the restored cluster (--archive-mode preserve "
			    "keeps it, for a new primary)\n");
		printf("start it as the cluster's owner: %s%s%spg_ctl -D %s start (it then %s)\n",
		       geteuid() == 0 ? "chown -R postgres: " : "", geteuid() == 0 ? p.dir : "",
		       geteuid() == 0 ? " && " : "", p.dir,
		       p.target == PITR_LATEST ? "promotes at the archive's end"
		       : p.action              ? p.action
		                               : "promotes at the target");
	}
	log_context_set(NULL, NULL);
	restore_pitr_plan_free(&pl);
	strv_free(&made.made);
	strv_free(&made.filled);
	strv_free(&p.tsmap);
	age_identities_free(ids);
	repo_close(repo);
	catalog_close(cat);
	repo_trust_free(&trust);
	config_free(cfg);
	return rc;
}
