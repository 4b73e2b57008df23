/*
 * cmd_restore: `coffer restore ID [--to DIR | --stdout] [--identity FILE]`.
 *
 * Parses the command line, finds the backup, checks the target and
 * dispatches on what the backup's source type restores as (source.h
 * traits): a folder, one file, or a database (restore_db.c). Each object
 * goes through the restore stream (agent/pipeline/restore_stream.h) into a
 * sink that writes a raw stream to a file or extracts a tar stream in a
 * child process (agent/pipeline/restore_tar.h).
 * --to DIR restores into a temporary folder beside DIR and renames it into
 * place only after every object has been authenticated, decompressed and
 * matched against the manifest's size and SHA-256: a failed restore leaves
 * nothing that looks complete. --stdout streams one object's plaintext; a
 * failure then shows as the non-zero exit status. What only a source type
 * knows (a kubernetes archive's --namespace/--kind selection and apply
 * order, a database client) is in its own files.
 */
#include "agent/agent.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/pipeline/restore_tar.h"
#include "agent/restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Which entries of tar objects to restore: a source type's selection
 * (kubernetes: --namespace, --kind) and the --include patterns, for
 * restore_tar_select. */
struct restore_entries {
	int (*pass)(const struct source_restore_select *sel, const char *path);
	struct source_restore_select sel;
	struct restore_tar_patterns include; /* n == 0: every entry */
};

static int restore_entry_pass(const void *ctx, const char *path)
{
	const struct restore_entries *e = ctx;

	if (e->pass && !e->pass(&e->sel, path))
		return 0;
	return e->include.n == 0 || restore_tar_patterns_pass(&e->include, path);
}

/* The selection of e for restore_tar_extract: the matched flags of the
 * --include patterns come back from the extraction child. */
static struct restore_tar_select restore_entries_select(const struct restore_entries *e)
{
	struct restore_tar_select t = {NULL, NULL, NULL, 0, NULL};

	if (e->pass || e->include.n) {
		t.pass = restore_entry_pass;
		t.ctx = e;
		t.result = e->include.matched;
		t.result_size = e->include.n;
	}
	return t;
}

/* Every --include pattern must have chosen something, or the restore would
 * look complete while it holds nothing of what was asked. Errors:
 * CF_ERR_NOTFOUND naming the patterns. */
static int restore_entries_check(const struct restore_entries *e, const char *id)
{
	char names[2048];
	size_t len = 0, missed = 0;

	names[0] = '\0';
	for (size_t i = 0; i < e->include.n; i++) {
		if (e->include.matched[i])
			continue;
		if (len < sizeof(names)) {
			int n = snprintf(names + len, sizeof(names) - len, "%s'%s'",
			                 missed ? ", " : "", e->include.v[i]);

			len += n > 0 ? (size_t)n : 0;
		}
		missed++;
	}
	if (!missed)
		return 0;
	return error_set(CF_ERR_NOTFOUND,
	                 "--include %s matched nothing in backup %s; nothing was restored (see "
	                 "'coffer ls %s')",
	                 names, id, id);
}

/* The names of b's objects, "a, b and c", into out. */
static void restore_object_names(const struct catalog_backup *b, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < b->nobjects && len < size; i++) {
		int n = snprintf(out + len, size - len, "%s%s",
		                 i == 0                 ? ""
		                 : i + 1 == b->nobjects ? " and "
		                                        : ", ",
		                 b->objects[i].name);

		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* The object --object names, or the only one. Errors: CF_ERR_NOTFOUND (no
 * such name), CF_ERR_USAGE (several objects and no --object); both list the
 * backup's objects. */
static int restore_pick_object(const struct catalog_backup *b, const char *object,
                               const struct catalog_object **out)
{
	char names[2048];

	*out = NULL;
	for (size_t i = 0; i < b->nobjects; i++)
		if (object ? !strcmp(b->objects[i].name, object) : b->nobjects == 1)
			*out = &b->objects[i];
	if (*out)
		return 0;
	restore_object_names(b, names, sizeof(names));
	if (object)
		return error_set(CF_ERR_NOTFOUND, "backup %s has no object named %s (it has %s)",
		                 b->id, object, names);
	return error_set(CF_ERR_USAGE,
	                 "backup %s has %zu objects (%s); choose one with --object NAME", b->id,
	                 b->nobjects, names);
}

static int restore_to_stdout(struct storage *st, const struct catalog_backup *b,
                             const struct age_identities *ids, const char *object, int progress)
{
	const struct catalog_object *obj = NULL;

	int rc = restore_pick_object(b, object, &obj);

	if (rc)
		return rc;
	return restore_stream_to_fd(st, obj, ids, STDOUT_FILENO, progress);
}

/* Restores every object (or only the one named object) into tmpdir: raw
 * streams as files named after the object, tar streams extracted. */
static int restore_into(struct storage *st, const struct catalog_backup *b,
                        const struct age_identities *ids, const char *object, const char *tmpdir,
                        int progress, const struct restore_entries *sel)
{
	const struct catalog_object *only = NULL;
	struct restore_tar_select f = restore_entries_select(sel);
	int rc = object ? restore_pick_object(b, object, &only) : 0;

	for (size_t i = 0; !rc && i < b->nobjects; i++) {
		const struct catalog_object *obj = &b->objects[i];
		char path[4096];
		int fd;

		if (only && obj != only)
			continue;
		if (!strcmp(obj->format, "tar")) {
			rc = restore_tar_extract(st, obj, ids, tmpdir, progress, &f);
			continue;
		}
		/* --include chooses entries of tar objects: the others are left out. */
		if (sel->include.n)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmpdir, obj->name) >=
		    sizeof(path))
			return error_set(CF_ERR_IO, "path too long under %s", tmpdir);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return error_set_errno(CF_ERR_IO, errno, "cannot create %s", path);
		rc = restore_stream_to_fd(st, obj, ids, fd, progress);
		if (!rc && fsync(fd) != 0)
			rc = error_set_errno(errno == ENOSPC ? CF_ERR_NOSPACE : CF_ERR_IO, errno,
			                     "cannot write %s", path);
		if (close(fd) != 0 && !rc)
			rc = error_set_errno(errno == ENOSPC ? CF_ERR_NOSPACE : CF_ERR_IO, errno,
			                     "cannot write %s", path);
	}
	if (!rc)
		rc = restore_entries_check(sel, b->id);
	return rc;
}

/* DIR may not exist yet, or be an empty directory. */
static int restore_check_target(const char *dir)
{
	struct stat sb;
	int empty = 1;

	if (stat(dir, &sb) != 0) {
		if (errno == ENOENT)
			return 0;
		return error_set_errno(CF_ERR_IO, errno, "cannot check %s", dir);
	}
	if (!S_ISDIR(sb.st_mode))
		return error_set(CF_ERR_EXISTS, "%s exists and is not a directory", dir);
	{
		DIR *d = opendir(dir);
		struct dirent *e;

		if (!d)
			return error_set_errno(CF_ERR_IO, errno, "cannot read %s", dir);
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				empty = 0;
		closedir(d);
	}
	if (!empty)
		return error_set(CF_ERR_EXISTS,
		                 "%s is not empty; restore into a new or empty directory", dir);
	return 0;
}

/*
 * Removes what restores killed before they ended (kill -9, power loss) left
 * in parent: names starting with prefix ("<parent>/.<DIR>.coffer-restore.PID"
 * folders, "<FILE>.coffer-restore.PID" files). A running restore holds an
 * exclusive flock on its temporary folder or file, so one that can be locked
 * and whose pid is gone belongs to a dead restore.
 */
static void restore_reap_one(const char *path, void *ctx)
{
	(void)ctx;
	if (fs_remove_tree(path) == 0)
		log_warn("removed %s, left by a restore that was interrupted", path);
	else
		log_warn("cannot remove %s, left by an interrupted restore: %s", path,
		         error_message());
}

static void restore_reap_leftovers(const char *parent, const char *prefix)
{
	fs_reap_dead(parent, prefix, restore_reap_one, NULL);
}

/* Flushes everything written on the filesystem of fd to disk; any error of a
 * write since fd was opened (a full disk at writeback) is reported here. */
static int restore_sync(int fd, const char *what)
{
	if (syncfs(fd) != 0)
		return error_set_errno(
		    errno == ENOSPC || errno == EDQUOT ? CF_ERR_NOSPACE : CF_ERR_IO, errno,
		    "cannot write the restored files to disk under %s", what);
	return 0;
}

static int restore_to_dir(struct storage *st, const struct catalog_backup *b,
                          const struct age_identities *ids, const char *object, const char *dir,
                          int progress, const struct restore_entries *sel)
{
	char tmp[4096], parent[4096], base[1024], prefix[1100];
	int rc, lock = -1;

	rc = restore_check_target(dir);
	if (rc)
		return rc;
	snprintf(parent, sizeof(parent), "%s", dir);
	snprintf(base, sizeof(base), "%s", dir);
	snprintf(prefix, sizeof(prefix), ".%s.coffer-restore.", basename(base));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s%d", dirname(parent), prefix, (int)getpid()) >=
	    sizeof(tmp))
		return error_set(CF_ERR_IO, "path too long: %s", dir);
	snprintf(parent, sizeof(parent), "%s", dir);
	rc = fs_mkdir_p(dirname(parent), 0755);
	if (rc)
		return rc;
	restore_reap_leftovers(parent, prefix);
	if (mkdir(tmp, 0700) != 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
	/* Held until the end: tells a later restore that this folder is in use. */
	lock = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX) != 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot lock %s", tmp);
	if (!rc)
		rc = restore_into(st, b, ids, object, tmp, progress, sel);
	if (!rc)
		rc = restore_sync(lock, tmp);
	if (!rc) {
		/* The folder was private while it filled; it ends as mkdir would
		 * have made it, under the user's umask. */
		mode_t mask = umask(0);

		umask(mask);
		if (chmod(tmp, 0777 & ~mask) != 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot set the mode of %s", tmp);
	}
	if (!rc)
		rc = cancel_check();
	if (!rc && rename(tmp, dir) != 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot move the restored files into %s",
		                     dir);
	if (!rc)
		rc = fs_fsync_dir(parent);
	if (rc) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", error_message());
		fs_remove_tree(tmp);
		error_set(rc, "%s", msg);
	}
	if (lock >= 0)
		close(lock);
	return rc;
}

/* Backups of one-file engines (SOURCE_TRAIT_SINGLE_FILE) restore --to FILE:
 * the object is written to a temporary name beside FILE and renamed to it
 * once verified. */
static int restore_to_file(struct storage *st, const struct catalog_backup *b,
                           const struct age_identities *ids, const char *object, const char *file,
                           int progress)
{
	const struct catalog_object *obj = NULL;
	char tmp[4096], dir[4096], prefix[1100];
	struct stat sb;
	int fd, rc;

	rc = restore_pick_object(b, object, &obj);
	if (rc)
		return rc;
	if (lstat(file, &sb) == 0)
		return error_set(CF_ERR_EXISTS, "%s exists; restore to a new file name", file);
	snprintf(dir, sizeof(dir), "%s", file);
	snprintf(prefix, sizeof(prefix), "%s.coffer-restore.", basename(dir));
	snprintf(dir, sizeof(dir), "%s", file);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.coffer-restore.%d", file, (int)getpid()) >=
	    sizeof(tmp))
		return error_set(CF_ERR_IO, "path too long: %s", file);
	rc = fs_mkdir_p(dirname(dir), 0755);
	if (rc)
		return rc;
	restore_reap_leftovers(dir, prefix);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
	if (flock(fd, LOCK_EX) != 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot lock %s", tmp);
	if (!rc)
		rc = restore_stream_to_fd(st, obj, ids, fd, progress);
	if (!rc && fsync(fd) != 0)
		rc =
		    error_set_errno(errno == ENOSPC || errno == EDQUOT ? CF_ERR_NOSPACE : CF_ERR_IO,
		                    errno, "cannot write %s", tmp);
	if (close(fd) != 0 && !rc)
		rc =
		    error_set_errno(errno == ENOSPC || errno == EDQUOT ? CF_ERR_NOSPACE : CF_ERR_IO,
		                    errno, "cannot write %s", tmp);
	if (!rc)
		rc = cancel_check();
	/* link() never replaces: a FILE made meanwhile is not overwritten. */
	if (!rc && link(tmp, file) != 0)
		rc = error_set_errno(errno == EEXIST ? CF_ERR_EXISTS : CF_ERR_IO, errno,
		                     "cannot create %s", file);
	unlink(tmp);
	if (!rc) {
		snprintf(dir, sizeof(dir), "%s", file);
		rc = fs_fsync_dir(dirname(dir));
	}
	return rc;
}

/*
 * The targets to read backup b from, as indexes into cfg->targets: first
 * the one it was found in (found), then, unless --from chose that one, the
 * others its record says hold it, in config order.
 */
static int restore_sources(const struct config *cfg, const struct catalog_backup *b, size_t found,
                           const char *from, size_t *idx, size_t *n)
{
	idx[0] = found;
	*n = 1;
	for (size_t i = 0; !from && i < cfg->ntargets; i++) {
		char *loc = NULL;
		int rc, held;

		if (i == found)
			continue;
		rc = agent_target_location(cfg, i, &loc);
		if (rc)
			return rc;
		held = strv_has(&b->locations, loc);
		free(loc);
		if (held)
			idx[(*n)++] = i;
	}
	return 0;
}

/* Before a restore that cannot take back what it wrote (--stdout, a
 * database) starts: are the objects it reads in this target? */
static int restore_objects_there(struct storage *st, const struct catalog_backup *b,
                                 const char *object)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < b->nobjects; i++) {
		struct storage_info info;

		if (object && strcmp(b->objects[i].name, object))
			continue;
		rc = storage_head(st, b->objects[i].key, &info);
		if (rc == CF_ERR_NOTFOUND)
			rc = error_set(CF_ERR_INTEGRITY, "%s is missing from this repository",
			               b->objects[i].key);
		else if (!rc && info.size != b->objects[i].stored_bytes)
			rc = error_set(
			    CF_ERR_INTEGRITY,
			    "%s has %llu bytes, not %llu (truncated, extended or replaced)",
			    b->objects[i].key, (unsigned long long)info.size,
			    (unsigned long long)b->objects[i].stored_bytes);
	}
	return rc;
}

/*
 * Finds backup id as agent_find_backup() does: in the repository --from
 * names, else in the primary, and when the primary cannot be reached or
 * does not have it, in the other targets in config order (with a warning).
 */
static int restore_find(const struct config *cfg, struct catalog *cat,
                        const struct repo_trust *trust, struct repo *primary, const char *id,
                        const char *source, const char *from, struct catalog_backup **out,
                        size_t *found)
{
	char msg[1024];
	int rc = 0;

	for (size_t i = 0; i < cfg->ntargets; i++) {
		struct repo *r = primary;
		int rc2 = 0;

		if (from && strcmp(cfg->targets[i].name, from) != 0)
			continue;
		if (i > 0)
			rc2 = agent_open_target(cfg, i, cat, trust, &r);
		if (!rc2)
			rc2 = agent_find_backup(cfg, r, id, source, out);
		if (r != primary)
			repo_close(r);
		if (!rc2) {
			if (rc)
				log_warn("%s; found %s in repository %s", msg, id,
				         cfg->targets[i].name);
			*found = i;
			return 0;
		}
		if (!rc) {
			rc = rc2;
			snprintf(msg, sizeof(msg), "%s", error_message());
		}
		if (from || !agent_fallover_ok(rc2))
			break;
	}
	if (!rc && from)
		return error_set(CF_ERR_USAGE, "--from %s: no [repository %s] in %s", from, from,
		                 cfg->file);
	return error_set(rc, "%s", msg);
}

/* 1 if b has a tar object (the one named object, when given). */
static int restore_has_tar(const struct catalog_backup *b, const char *object)
{
	for (size_t i = 0; i < b->nobjects; i++)
		if ((!object || !strcmp(b->objects[i].name, object)) &&
		    !strcmp(b->objects[i].format, "tar"))
			return 1;
	return 0;
}

/* restore --json: one document saying what was restored (docs/json.md).
 * db_obj: the object a database restore chose, else NULL. */
static int restore_print_json(const struct catalog_backup *b, const char *target,
                              const char *target_type, const char *object,
                              const struct strv *include, const struct catalog_object *db_obj,
                              double seconds)
{
	json_t *doc = json_object(), *objs = json_array();

	if (!doc || !objs) {
		json_decref(doc);
		json_decref(objs);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < b->nobjects; i++) {
		const struct catalog_object *o = &b->objects[i];
		json_t *j;

		if (db_obj ? o != db_obj
		           : (object && strcmp(o->name, object)) ||
		                 (include->n && strcmp(o->format, "tar")))
			continue;
		j = json_object();
		json_object_set_new(j, "name", json_string(o->name));
		json_object_set_new(j, "format", json_string(o->format));
		json_object_set_new(j, "bytes", json_integer((json_int_t)o->raw_bytes));
		json_object_set_new(j, "stored_bytes", json_integer((json_int_t)o->stored_bytes));
		json_object_set_new(j, "sha256", json_string(o->sha256));
		json_object_set_new(j, "verified", json_true());
		json_array_append_new(objs, j);
	}
	json_object_set_new(doc, "id", json_string(b->id));
	json_object_set_new(doc, "source", json_string(b->source));
	json_object_set_new(doc, "kind", json_string(b->kind));
	json_object_set_new(doc, "target", json_string(target));
	json_object_set_new(doc, "target_type", json_string(target_type));
	json_object_set_new(doc, "objects", objs);
	if (include->n) {
		json_t *inc = json_array();

		for (size_t i = 0; i < include->n; i++)
			json_array_append_new(inc, json_string(include->v[i]));
		json_object_set_new(doc, "include", inc);
	}
	json_object_set_new(doc, "partial", json_boolean(b->missing_count > 0));
	json_object_set_new(doc, "seconds", json_real(seconds));
	return agent_print_json(doc);
}

#define RESTORE_USAGE                                                                              \
	"usage: coffer restore ID (--to DIR|FILE | --stdout | --to-database TARGET [--database "   \
	"NAME | "                                                                                  \
	"--globals] [--clean]) [--source S] [--from REPOSITORY] [--identity FILE] [--object "      \
	"NAME] [--include "                                                                        \
	"PATTERN]... "                                                                             \
	"[--namespace NS] [--kind KIND] [--print-apply-order] [--trust-unsigned]"

/* The options that go together. nargs: the words left after the options
 * (the ID). Errors: CF_ERR_USAGE saying which. */
static int restore_check_args(int nargs, const char *to, int to_stdout,
                              const struct restore_db_options *dbo,
                              const struct source_restore_select *sel, int apply_order,
                              size_t ninclude, int json)
{
	int modes = !!to + to_stdout + !!dbo->target;

	if (nargs != 1)
		return error_set(CF_ERR_USAGE, RESTORE_USAGE);
	if (modes == 0)
		return error_set(CF_ERR_USAGE,
		                 "restore needs a target: --to DIR (or FILE), --stdout or "
		                 "--to-database TARGET");
	if (modes > 1)
		return error_set(CF_ERR_USAGE, "%s%s%s%s%s exclude each other: give one target",
		                 to ? "--to" : "", to && (to_stdout || dbo->target) ? " and " : "",
		                 to_stdout ? "--stdout" : "",
		                 to_stdout && dbo->target ? " and " : "",
		                 dbo->target ? "--to-database" : "");
	if ((dbo->database || dbo->globals || dbo->clean) && !dbo->target)
		return error_set(CF_ERR_USAGE,
		                 "--database, --globals and --clean go with --to-database TARGET");
	if (dbo->database && dbo->globals)
		return error_set(CF_ERR_USAGE, "--database and --globals exclude each other");
	if ((sel->ns || sel->kind || apply_order) && !to)
		return error_set(CF_ERR_USAGE,
		                 "--namespace, --kind and --print-apply-order go with --to DIR");
	if (ninclude && !to)
		return error_set(CF_ERR_USAGE, "--include goes with --to DIR");
	if (json && to_stdout)
		return error_set(CF_ERR_USAGE, "--json and --stdout exclude each other: standard "
		                               "output holds the restored data");
	if (json && apply_order)
		return error_set(CF_ERR_USAGE, "--json and --print-apply-order exclude each other: "
		                               "the order is printed as plain lines");
	return 0;
}

int cmd_restore(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"to", required_argument, NULL, 't'},
	                                     {"stdout", no_argument, NULL, 's'},
	                                     {"identity", required_argument, NULL, 'i'},
	                                     {"object", required_argument, NULL, 'o'},
	                                     {"to-database", required_argument, NULL, 'D'},
	                                     {"database", required_argument, NULL, 'd'},
	                                     {"globals", no_argument, NULL, 'g'},
	                                     {"clean", no_argument, NULL, 'c'},
	                                     {"namespace", required_argument, NULL, 'n'},
	                                     {"kind", required_argument, NULL, 'k'},
	                                     {"print-apply-order", no_argument, NULL, 'p'},
	                                     {"trust-unsigned", no_argument, NULL, 'T'},
	                                     {"include", required_argument, NULL, 'I'},
	                                     {"source", required_argument, NULL, 'S'},
	                                     {"from", required_argument, NULL, 'F'},
	                                     {NULL, 0, NULL, 0}};
	const char *to = NULL, *identity = NULL, *object = NULL, *source = NULL, *from = NULL, *id;
	size_t *from_idx = NULL, nfrom = 0, found = 0;
	struct restore_db_options dbo;
	struct restore_entries entries = {NULL, {NULL, NULL}, {NULL, 0, NULL}};
	struct strv include = {NULL, 0, 0};
	const struct source_restore_select *sel = &entries.sel;
	const struct source_ops *ops = NULL;
	int apply_order = 0, trust_unsigned = 0;
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	struct repo *repo = NULL;
	struct config *cfg = NULL;
	struct storage *st = NULL;
	struct catalog *cat = NULL;
	struct catalog_backup *b = NULL;
	struct age_identities *ids = NULL;
	const struct catalog_object *db_obj = NULL;
	double started = time_mono();
	int to_stdout = 0, opt, rc;

	/* A data directory to recover (postgres-physical) has options of its own. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--to-datadir") || !strncmp(argv[i], "--to-datadir=", 13))
			return restore_pitr_run(cli, argc, argv);
	memset(&dbo, 0, sizeof(dbo));
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":i:", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			to = optarg;
			break;
		case 's':
			to_stdout = 1;
			break;
		case 'i':
			identity = optarg;
			break;
		case 'o':
			object = optarg;
			break;
		case 'S':
			source = optarg;
			break;
		case 'F':
			from = optarg;
			break;
		case 'D':
			dbo.target = optarg;
			break;
		case 'd':
			dbo.database = optarg;
			break;
		case 'g':
			dbo.globals = 1;
			break;
		case 'c':
			dbo.clean = 1;
			break;
		case 'n':
			entries.sel.ns = optarg;
			break;
		case 'k':
			entries.sel.kind = optarg;
			break;
		case 'p':
			apply_order = 1;
			break;
		case 'T':
			trust_unsigned = 1;
			break;
		case 'I':
			if (strv_add(&include, optarg)) {
				strv_free(&include);
				return CF_ERR_NOMEM;
			}
			break;
		default:
			strv_free(&include);
			return agent_option_error(opt, argv, RESTORE_USAGE);
		}
	}
	entries.include.v = include.v;
	entries.include.n = include.n;
	rc = restore_check_args(argc - optind, to, to_stdout, &dbo, sel, apply_order, include.n,
	                        cli->json);
	if (!rc && include.n && !(entries.include.matched = calloc(include.n, 1)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (rc) {
		strv_free(&include);
		return rc;
	}
	dbo.progress = cli->progress;
	dbo.restored = &db_obj;
	id = argv[optind];
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_trust_load(cfg, trust_unsigned, &trust);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc)
		rc = agent_open_repo(cfg, cat, &trust, &repo);
	if (!rc)
		rc = restore_find(cfg, cat, &trust, repo, id, source, from, &b, &found);
	if (!rc)
		log_context_set(b->source, b->id);
	/* NULL for a kind this build does not know (or stdin): a folder. */
	if (!rc)
		ops = source_registry_find(b->kind);
	if (!rc)
		rc = agent_load_identities(cfg, identity, &ids);
	if (!rc && include.n && !restore_has_tar(b, object))
		rc = error_set(CF_ERR_USAGE,
		               "--include chooses entries of tar objects (files and kubernetes "
		               "backups); backup %s (%s) has none",
		               b->id, b->kind);
	else if (!rc && !to_stdout && !dbo.target &&
	         !(ops && (ops->traits & SOURCE_TRAIT_SINGLE_FILE)) &&
	         (sel->ns || sel->kind || apply_order) &&
	         !(ops && ops->restore_entry_pass && ops->restore_print_order))
		rc = error_set(
		    CF_ERR_USAGE,
		    "--namespace, --kind and --print-apply-order are for kubernetes backups");
	if (!rc && !(from_idx = calloc(cfg->ntargets, sizeof(*from_idx))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc)
		rc = restore_sources(cfg, b, found, from, from_idx, &nfrom);
	/* Each target that holds the backup in turn, until one delivers it: a
	 * restore into a folder or file puts nothing in place before every
	 * object is verified, so it can start again; one into stdout or a
	 * database only before it has begun. */
	for (size_t k = 0; !rc && k < nfrom; k++) {
		struct repo *alt = NULL;
		int started = 0;

		if (from_idx[k] != 0) {
			rc = agent_open_target(cfg, from_idx[k], cat, &trust, &alt);
			st = alt ? repo_storage(alt) : NULL;
		} else {
			st = repo_storage(repo);
		}
		if (!rc && (to_stdout || dbo.target) && k + 1 < nfrom)
			rc = restore_objects_there(st, b, object);
		started = !rc;
		if (!rc && to_stdout)
			rc = restore_to_stdout(st, b, ids, object, cli->progress);
		else if (!rc && dbo.target)
			rc = restore_database(st, b, ids, &dbo);
		else if (!rc && ops && (ops->traits & SOURCE_TRAIT_SINGLE_FILE))
			rc = restore_to_file(st, b, ids, object, to, cli->progress);
		else if (!rc) {
			entries.pass = ops ? ops->restore_entry_pass : NULL;
			rc = restore_to_dir(st, b, ids, object, to, cli->progress, &entries);
		}
		repo_close(alt);
		if (!rc || !agent_fallover_ok(rc) || k + 1 == nfrom)
			break;
		if (started && (to_stdout || dbo.target)) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", error_message());
			rc = error_set(rc,
			               "%s; what was written so far is incomplete (restore again, "
			               "e.g. with --from %s)",
			               msg, cfg->targets[from_idx[k + 1]].name);
			break;
		}
		log_warn("restore of %s from repository %s failed: %s; trying repository %s", b->id,
		         cfg->targets[from_idx[k]].name, error_message(),
		         cfg->targets[from_idx[k + 1]].name);
		error_clear();
		rc = 0;
	}
	/* A one-file restore has no order to print. */
	if (!rc && apply_order && ops && ops->restore_print_order)
		rc = ops->restore_print_order(to);
	if (!rc && b->missing_count)
		log_warn(
		    "backup %s is partial: %llu item(s) could not be backed up when it was made "
		    "(see 'coffer show %s')",
		    b->id, (unsigned long long)b->missing_count, b->id);
	if (!rc && cli->json)
		rc = restore_print_json(
		    b, to ? to : dbo.target,
		    dbo.target                                        ? "database"
		    : ops && (ops->traits & SOURCE_TRAIT_SINGLE_FILE) ? "file"
		                                                      : "directory",
		    object, &include, dbo.target ? db_obj : NULL, time_mono() - started);
	if (!rc && !to_stdout && !cli->json && !cli->quiet && !apply_order)
		printf("restored %s (%s) into %s\n", b->id, b->source, to ? to : "the database");
	log_context_set(NULL, NULL);
	free(from_idx);
	age_identities_free(ids);
	catalog_backup_free(b);
	repo_close(repo);
	catalog_close(cat);
	repo_trust_free(&trust);
	config_free(cfg);
	free(entries.include.matched);
	strv_free(&include);
	return rc;
}
