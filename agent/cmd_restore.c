/*
 * cmd_restore: `coffer restore ID [--to DIR | --stdout] [--identity FILE]`.
 *
 * Parses the command line, finds the backup, checks the target and
 * dispatches on what the backup's source type restores as (source.h
 * traits): a folder, one file, or a database (restore_db.c). Each object
 * goes through the restore stream (agent/pipeline/restore_stream.h) into a
 * sink that writes a raw stream to a file or extracts a tar stream with
 * libarchive in a child process (so it can chdir into the target safely).
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
#include "agent/restore.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The entries of tar objects to restore: those the source type's selection
 * passes (kubernetes: --namespace, --kind), or all when it has none. */
struct restore_entries {
	int (*pass)(const struct source_restore_select *sel, const char *path);
	struct source_restore_select sel;
};

static int restore_entry_pass(const struct restore_entries *f, const char *path)
{
	return !f->pass || f->pass(&f->sel, path);
}

/* The reader's half of source_files_fix_times(): libarchive reads a pax
 * time "-S.F" as sec -S and a positive fraction F, where it means -(S.F). */
static void restore_fix_times(struct archive_entry *e)
{
	if (archive_entry_mtime_is_set(e) && archive_entry_mtime(e) < 0 &&
	    archive_entry_mtime_nsec(e) > 0)
		archive_entry_set_mtime(e, archive_entry_mtime(e) - 1,
		                        1000000000L - archive_entry_mtime_nsec(e));
	if (archive_entry_atime_is_set(e) && archive_entry_atime(e) < 0 &&
	    archive_entry_atime_nsec(e) > 0)
		archive_entry_set_atime(e, archive_entry_atime(e) - 1,
		                        1000000000L - archive_entry_atime_nsec(e));
}

/* 1 if encoded is name with some bytes written as %XX (as libarchive writes
 * xattr names in its pax headers). */
static int restore_xattr_encodes(const char *encoded, const char *name)
{
	while (*encoded && *name) {
		unsigned v;

		if (encoded[0] == '%' && sscanf(encoded + 1, "%2x", &v) == 1 &&
		    (unsigned char)*name == v) {
			encoded += 3;
			name++;
		} else if (*encoded++ != *name++) {
			return 0;
		}
	}
	return !*encoded && !*name;
}

/*
 * libarchive's pax writer stores an xattr whose name needs escaping twice,
 * as LIBARCHIVE.xattr.<escaped> (which its reader decodes) and as
 * SCHILY.xattr.<escaped> (which it does not): the entry then carries the
 * real name and the escaped one. The escaped twin is dropped, so the file
 * gets its xattrs and no others.
 */
static int restore_xattr_dedupe(struct archive_entry *e)
{
	const char *name;
	const void *value;
	size_t size, n = 0;
	int rc = 0;
	struct {
		char *name;
		void *value;
		size_t size;
	} * x;

	if (archive_entry_xattr_reset(e) < 2)
		return 0;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK &&
	       !strchr(name, '%'))
		n++;
	if (n == (size_t)archive_entry_xattr_count(e))
		return 0; /* no escaped name: nothing can be a twin (the usual case) */
	n = 0;
	archive_entry_xattr_reset(e);
	x = calloc((size_t)archive_entry_xattr_count(e), sizeof(*x));
	if (!x)
		return error_set(CF_ERR_NOMEM, "out of memory");
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		x[n].name = strdup(name);
		x[n].value = malloc(size ? size : 1);
		if (!x[n].name || !x[n].value) {
			free(x[n].name);
			free(x[n].value);
			rc = error_set(CF_ERR_NOMEM, "out of memory");
			break;
		}
		memcpy(x[n].value, value, size);
		x[n++].size = size;
	}
	if (!rc)
		archive_entry_xattr_clear(e);
	for (size_t i = 0; i < n; i++) {
		int twin = 0;

		for (size_t k = 0; !twin && strchr(x[i].name, '%') && k < n; k++)
			twin = k != i && strcmp(x[i].name, x[k].name) &&
			       restore_xattr_encodes(x[i].name, x[k].name);
		if (!rc && !twin)
			archive_entry_xattr_add_entry(e, x[i].name, x[i].value, x[i].size);
		free(x[i].name);
		free(x[i].value);
	}
	free(x);
	return rc;
}

/* Records a failed write of the extraction ("cannot write NAME: Write
 * failed: No space left on device"); a full disk has its own code. */
static int restore_write_error(struct archive *out, const char *what, const char *name)
{
	int e = archive_errno(out);
	const char *msg = archive_error_string(out);
	/* No system error: libarchive refused the entry itself (a path with
	 * "..", through a symlink, absolute): the archive is not what coffer
	 * writes, an integrity failure. */
	int code = e == ENOSPC || e == EDQUOT ? CF_ERR_NOSPACE
	           : e > 0                    ? CF_ERR_IO
	                                      : CF_ERR_INTEGRITY;

	return error_set(code, "cannot %s %s: %s%s%s", what, name, msg ? msg : "failed",
	                 e > 0 && (!msg || !strstr(msg, strerror(e))) ? ": " : "",
	                 e > 0 && (!msg || !strstr(msg, strerror(e))) ? strerror(e) : "");
}

/*
 * Extracts a tar stream from fd into the current directory (child process),
 * the entries that pass f. Returns 0 or an error code with error_set().
 *
 * libarchive's disk writer returns ARCHIVE_WARN, not an error, when a write
 * of file data fails (a full disk): every data write must be ARCHIVE_OK, or
 * the file would be left with a hole where its data should be. A warning on
 * a header or at the end of an entry is metadata it could not set (an owner
 * without root, an xattr the filesystem refuses): printed, counted, and the
 * restore goes on.
 */
static int restore_extract_tar(int fd, const struct restore_entries *f)
{
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	struct archive_entry *e;
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_ACL |
	            ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_XATTR |
	            ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	unsigned long long warnings = 0;
	int ar, rc = 0;

	if (!in || !out) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, flags);
	archive_write_disk_set_standard_lookup(out);
	if (archive_read_open_fd(in, fd, 256 * 1024) != ARCHIVE_OK) {
		rc = error_set(CF_ERR_FORMAT, "cannot read the tar stream: %s",
		               archive_error_string(in));
		goto out;
	}
	while ((ar = archive_read_next_header(in, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		const void *data;
		size_t len;
		la_int64_t off;

		if (!restore_entry_pass(f, name)) {
			if (archive_read_data_skip(in) != ARCHIVE_OK) {
				rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged at %s: %s",
				               name, archive_error_string(in));
				goto out;
			}
			continue;
		}
		restore_fix_times(e);
		rc = restore_xattr_dedupe(e);
		if (rc)
			goto out;
		ar = archive_write_header(out, e);
		if (ar < ARCHIVE_WARN) {
			rc = restore_write_error(out, "restore", name);
			goto out;
		}
		if (ar == ARCHIVE_WARN) {
			log_warn("%s: %s", name, archive_error_string(out));
			warnings++;
		}
		while ((ar = archive_read_data_block(in, &data, &len, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(out, data, len, off) != ARCHIVE_OK) {
				rc = restore_write_error(out, "write", name);
				goto out;
			}
		if (ar != ARCHIVE_EOF) {
			rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged at %s: %s", name,
			               archive_error_string(in));
			goto out;
		}
		ar = archive_write_finish_entry(out);
		if (ar < ARCHIVE_WARN) {
			rc = restore_write_error(out, "finish", name);
			goto out;
		}
		if (ar == ARCHIVE_WARN) {
			log_warn("%s: %s", name, archive_error_string(out));
			warnings++;
		}
	}
	if (ar != ARCHIVE_EOF) {
		rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged: %s",
		               archive_error_string(in));
		goto out;
	}
	/* Directory times and permissions are set at close. */
	if (archive_write_close(out) != ARCHIVE_OK)
		rc = restore_write_error(out, "finish", "the restore");
	if (!rc && warnings)
		log_warn("%llu entr%s restored without some of their metadata (see above)",
		         warnings, warnings == 1 ? "y" : "ies");
	/* libarchive stops at the end-of-archive blocks; the stream goes on with
	 * the padding to the last record. Read it all, so the parent can finish
	 * writing (and check the whole object's size and digest) instead of
	 * meeting a closed pipe. */
	while (!rc) {
		static char rest[65536];
		ssize_t n = read(fd, rest, sizeof(rest));

		if (n == 0)
			break;
		if (n < 0 && errno != EINTR)
			rc = error_set_errno(CF_ERR_IO, errno,
			                     "cannot read the end of the tar stream");
	}
out:
	archive_read_free(in);
	archive_write_free(out);
	return rc;
}

/*
 * The extraction child reports its result to the parent over a pipe: the
 * error code, then the message, so the parent prints the one error line (and
 * a child killed by a signal, which wrote nothing, is told apart).
 */
static void restore_child_report(int fd, int rc)
{
	const char *msg = error_message();

	if (!rc)
		return;
	if (write(fd, &rc, sizeof(rc)) == (ssize_t)sizeof(rc))
		(void)!write(fd, msg, strlen(msg));
}

/* Reads the child's report: 0 if it wrote none, else its code, with its
 * message recorded by error_set(). */
static int restore_child_result(int fd)
{
	char msg[8192];
	ssize_t n;
	size_t len = 0;
	int code = 0;

	if (read(fd, &code, sizeof(code)) != (ssize_t)sizeof(code) || code >= 0 ||
	    code <= CF_ERR_LAST)
		return 0;
	while (len < sizeof(msg) - 1 && (n = read(fd, msg + len, sizeof(msg) - 1 - len)) > 0)
		len += (size_t)n;
	msg[len] = '\0';
	return error_set(code, "%s", msg);
}

static int restore_to_stdout(struct storage *st, const struct catalog_backup *b,
                             const struct age_identities *ids, const char *object, int progress)
{
	const struct catalog_object *obj = NULL;

	for (size_t i = 0; i < b->nobjects; i++)
		if (object ? !strcmp(b->objects[i].name, object) : b->nobjects == 1)
			obj = &b->objects[i];
	if (!obj && object)
		return error_set(CF_ERR_NOTFOUND, "backup %s has no object named %s", b->id,
		                 object);
	if (!obj)
		return error_set(CF_ERR_USAGE,
		                 "backup %s has %zu objects; choose one with --object NAME", b->id,
		                 b->nobjects);
	return restore_stream_to_fd(st, obj, ids, STDOUT_FILENO, progress);
}

/*
 * Restores one tar object into tmpdir: a child process chdirs there and
 * extracts what this process decrypts and decompresses into a pipe. Whose
 * error wins: a signal first (exit 130), then a failure of the stream itself
 * (authentication, integrity, storage), then the child's (a full disk, a
 * damaged archive); a broken pipe is only the symptom of the child's.
 */
static int restore_tar_object(struct storage *st, const struct catalog_object *obj,
                              const struct age_identities *ids, const char *tmpdir, int progress,
                              const struct restore_entries *f)
{
	int data[2], report[2], status = 0, rc, child_rc;
	char parent_msg[1024];
	pid_t pid;

	if (pipe2(data, O_CLOEXEC) != 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create a pipe");
	if (pipe2(report, O_CLOEXEC) != 0) {
		close(data[0]);
		close(data[1]);
		return error_set_errno(CF_ERR_IO, errno, "cannot create a pipe");
	}
	pid = fork();
	if (pid < 0) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot fork");
		close(data[0]);
		close(data[1]);
		close(report[0]);
		close(report[1]);
		return rc;
	}
	if (pid == 0) {
		close(data[1]);
		close(report[0]);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (chdir(tmpdir) != 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot enter %s", tmpdir);
		else
			rc = restore_extract_tar(data[0], f);
		restore_child_report(report[1], rc);
		_exit(rc ? 1 : 0);
	}
	close(data[0]);
	close(report[1]);
	rc = restore_stream_to_fd(st, obj, ids, data[1], progress);
	close(data[1]);
	if (rc)
		kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc && rc != CF_ERR_IO) {
		close(report[0]);
		return rc;
	}
	snprintf(parent_msg, sizeof(parent_msg), "%s", error_message());
	child_rc = restore_child_result(report[0]);
	close(report[0]);
	if (agent_signals_caught())
		return error_set(CF_ERR_INTERRUPTED, "interrupted by a signal while restoring %s",
		                 obj->key);
	if (child_rc)
		return error_set(child_rc, "restoring %s: %s", obj->key, error_message());
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return error_set(CF_ERR_INTERNAL, "restoring %s: the extraction process %s %d",
		                 obj->key,
		                 WIFSIGNALED(status) ? "was killed by signal" : "exited with",
		                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	if (rc)
		return error_set(rc, "%s", parent_msg);
	return 0;
}

/* Restores every object into tmpdir: raw streams as files named after the
 * object, tar streams extracted. */
static int restore_into(struct storage *st, const struct catalog_backup *b,
                        const struct age_identities *ids, const char *tmpdir, int progress,
                        const struct restore_entries *f)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < b->nobjects; i++) {
		const struct catalog_object *obj = &b->objects[i];
		char path[4096];
		int fd;

		if (!strcmp(obj->format, "tar")) {
			rc = restore_tar_object(st, obj, ids, tmpdir, progress, f);
			continue;
		}
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
                          const struct age_identities *ids, const char *dir, int progress,
                          const struct restore_entries *f)
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
		rc = restore_into(st, b, ids, tmp, progress, f);
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
	if (!rc && agent_signals_caught())
		rc = error_set(CF_ERR_INTERRUPTED, "interrupted by a signal");
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

	for (size_t i = 0; i < b->nobjects; i++)
		if (object ? !strcmp(b->objects[i].name, object) : b->nobjects == 1)
			obj = &b->objects[i];
	if (!obj && object)
		return error_set(CF_ERR_NOTFOUND, "backup %s has no object named %s", b->id,
		                 object);
	if (!obj)
		return error_set(CF_ERR_USAGE,
		                 "backup %s has %zu objects; choose one with --object NAME", b->id,
		                 b->nobjects);
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
	if (!rc && agent_signals_caught())
		rc = error_set(CF_ERR_INTERRUPTED, "interrupted by a signal");
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

#define RESTORE_USAGE                                                                              \
	"usage: coffer restore ID (--to DIR|FILE | --stdout | --to-database TARGET [--database "   \
	"NAME | "                                                                                  \
	"--globals] [--clean]) [--identity FILE] [--object NAME] [--namespace NS] [--kind KIND] "  \
	"[--print-apply-order] [--trust-unsigned]"

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
	                                     {NULL, 0, NULL, 0}};
	const char *to = NULL, *identity = NULL, *object = NULL, *id;
	struct restore_db_options dbo;
	struct restore_entries entries = {NULL, {NULL, NULL}};
	const struct source_restore_select *sel = &entries.sel;
	const struct source_ops *ops = NULL;
	int apply_order = 0, trust_unsigned = 0;
	struct repo_trust trust = {NULL, 0, 0};
	struct repo *repo = NULL;
	struct config *cfg = NULL;
	struct storage *st = NULL;
	struct catalog *cat = NULL;
	struct catalog_backup *b = NULL;
	struct age_identities *ids = NULL;
	int to_stdout = 0, opt, rc, modes;

	memset(&dbo, 0, sizeof(dbo));
	optind = 0;
	while ((opt = getopt_long(argc, argv, "i:", opts, NULL)) != -1) {
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
		default:
			return error_set(CF_ERR_USAGE, RESTORE_USAGE);
		}
	}
	modes = !!to + to_stdout + !!dbo.target;
	if (optind != argc - 1 || modes != 1)
		return error_set(CF_ERR_USAGE, RESTORE_USAGE);
	if ((dbo.database || dbo.globals || dbo.clean) && !dbo.target)
		return error_set(CF_ERR_USAGE,
		                 "--database, --globals and --clean go with --to-database TARGET");
	if (dbo.database && dbo.globals)
		return error_set(CF_ERR_USAGE, "--database and --globals exclude each other");
	if ((sel->ns || sel->kind || apply_order) && !to)
		return error_set(CF_ERR_USAGE,
		                 "--namespace, --kind and --print-apply-order go with --to DIR");
	dbo.progress = cli->progress;
	id = argv[optind];
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_trust_load(cfg, trust_unsigned, &trust);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc)
		rc = agent_open_repo(cfg, cat, &trust, &repo);
	if (!rc) {
		st = repo_storage(repo);
		rc = agent_find_backup(cfg, repo, id, &b);
	}
	/* NULL for a kind this build does not know (or stdin): a folder. */
	if (!rc)
		ops = source_find(b->kind);
	if (!rc)
		rc = agent_load_identities(cfg, identity, &ids);
	if (!rc && to_stdout)
		rc = restore_to_stdout(st, b, ids, object, cli->progress);
	else if (!rc && dbo.target)
		rc = restore_database(st, b, ids, &dbo);
	else if (!rc && ops && (ops->traits & SOURCE_TRAIT_SINGLE_FILE))
		rc = restore_to_file(st, b, ids, object, to, cli->progress);
	else if (!rc && (sel->ns || sel->kind || apply_order) &&
	         !(ops && ops->restore_entry_pass && ops->restore_print_order))
		rc = error_set(
		    CF_ERR_USAGE,
		    "--namespace, --kind and --print-apply-order are for kubernetes backups");
	else if (!rc) {
		entries.pass = ops ? ops->restore_entry_pass : NULL;
		rc = restore_to_dir(st, b, ids, to, cli->progress, &entries);
	}
	/* A one-file restore has no order to print. */
	if (!rc && apply_order && ops && ops->restore_print_order)
		rc = ops->restore_print_order(to);
	if (!rc && b->missing_count)
		log_warn(
		    "backup %s is partial: %llu item(s) could not be backed up when it was made "
		    "(see 'coffer show %s')",
		    b->id, (unsigned long long)b->missing_count, b->id);
	if (!rc && !to_stdout && !cli->json && !apply_order)
		printf("restored %s (%s) into %s\n", b->id, b->source, to ? to : "the database");
	age_identities_free(ids);
	catalog_backup_free(b);
	repo_close(repo);
	catalog_close(cat);
	repo_trust_free(&trust);
	config_free(cfg);
	return rc;
}
