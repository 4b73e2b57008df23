/*
 * restore_tar: the sink of a tar object in a restore --to DIR. A child
 * process chdirs into the target folder and extracts with libarchive's disk
 * writer what the parent decrypts and decompresses (restore_stream.h) into a
 * pipe; the child reports its error (code and message), or on success the
 * selection's result, back over a second pipe. `coffer ls` reads the same
 * way, with a child that reads only the headers. It does not choose the
 * folder, make it or move it into place.
 */
#include "agent/pipeline/restore_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The reader's half of source_files_fix_times(): libarchive reads a pax
 * time "-S.F" as sec -S and a positive fraction F, where it means -(S.F). */
static void restore_tar_fix_times(struct archive_entry *e)
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

/* s without a leading '/' or "./"; *len leaves out trailing '/'. */
static const char *restore_tar_trim(const char *s, size_t *len)
{
	while (*s == '/' || (s[0] == '.' && s[1] == '/'))
		s += *s == '/' ? 1 : 2;
	*len = strlen(s);
	while (*len > 0 && s[*len - 1] == '/')
		(*len)--;
	return s;
}

int restore_tar_patterns_pass(const struct restore_tar_patterns *p, const char *path)
{
	size_t len;
	const char *trimmed = restore_tar_trim(path, &len);
	char *name = strndup(trimmed, len);
	int chosen = 0;

	if (!name)
		return 0;
	for (size_t i = 0; i < p->n; i++) {
		char pattern[4096];
		size_t plen;
		const char *pt = restore_tar_trim(p->v[i], &plen);
		int hit = 0;

		if (plen >= sizeof(pattern))
			plen = sizeof(pattern) - 1;
		memcpy(pattern, pt, plen);
		pattern[plen] = '\0';
		/* The path itself, then each parent folder. */
		for (size_t end = len; !hit && end > 0;) {
			char c = name[end];

			name[end] = '\0';
			hit = fnmatch(pattern, name, 0) == 0;
			name[end] = c;
			while (end > 0 && name[--end] != '/')
				;
		}
		if (hit) {
			chosen = 1;
			if (p->matched)
				p->matched[i] = 1;
		}
	}
	free(name);
	return chosen;
}

/* 1 if encoded is name with some bytes written as %XX (as libarchive writes
 * xattr names in its pax headers). */
static int restore_tar_xattr_encodes(const char *encoded, const char *name)
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
static int restore_tar_xattr_dedupe(struct archive_entry *e)
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
			       restore_tar_xattr_encodes(x[i].name, x[k].name);
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
static int restore_tar_write_error(struct archive *out, const char *what, const char *name)
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

/* libarchive stops at the end-of-archive blocks; the stream goes on with the
 * padding to the last record. Reads it all, so the parent can finish writing
 * (and check the whole object's size and digest) instead of meeting a closed
 * pipe. */
static int restore_tar_drain(int fd)
{
	static char rest[65536];

	for (;;) {
		ssize_t n = read(fd, rest, sizeof(rest));

		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return error_set_errno(CF_ERR_IO, errno,
			                       "cannot read the end of the tar stream");
	}
}

/* A tar reader of fd. Errors: CF_ERR_NOMEM, CF_ERR_FORMAT. */
static int restore_tar_open(int fd, struct archive **out)
{
	struct archive *in = archive_read_new();

	*out = NULL;
	if (!in)
		return error_set(CF_ERR_NOMEM, "out of memory");
	archive_read_support_format_tar(in);
	if (archive_read_open_fd(in, fd, 256 * 1024) != ARCHIVE_OK) {
		int rc = error_set(CF_ERR_FORMAT, "cannot read the tar stream: %s",
		                   archive_error_string(in));

		archive_read_free(in);
		return rc;
	}
	*out = in;
	return 0;
}

/* Reads the data of entry e: a regular file must give the size its header
 * says; f->content (if any) gets it whole, when not too big. */
static int restore_tar_list_data(struct archive *in, struct archive_entry *e,
                                 const struct restore_tar_select *f)
{
	int regular = archive_entry_filetype(e) == AE_IFREG;
	int64_t want = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1, got = 0;
	int keep = regular && f && f->content && want >= 0 && want <= RESTORE_TAR_CONTENT_MAX;
	struct buf b;
	char chunk[64 * 1024];
	la_ssize_t n;
	int rc = 0;

	buf_init(&b, RESTORE_TAR_CONTENT_MAX);
	while (!rc && (n = archive_read_data(in, chunk, sizeof(chunk))) > 0) {
		got += n;
		if (keep)
			rc = buf_append(&b, chunk, (size_t)n);
	}
	if (!rc && n < 0)
		rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged at %s: %s",
		               archive_entry_pathname(e), archive_error_string(in));
	if (!rc && regular && want >= 0 && got != want)
		rc = error_set(CF_ERR_FORMAT, "tar entry %s holds %lld bytes, its header says %lld",
		               archive_entry_pathname(e), (long long)got, (long long)want);
	if (!rc && keep)
		rc = f->content(f->ctx, archive_entry_pathname(e), b.data, b.len);
	buf_free(&b);
	return rc;
}

/* Lists the tar stream on fd (child process): visit for each entry that
 * passes f, its data read (and checked) too. */
static int restore_tar_list_fd(int fd, const struct restore_tar_select *f,
                               int (*visit)(const void *ctx, struct archive_entry *e))
{
	struct archive *in = NULL;
	struct archive_entry *e;
	int ar = ARCHIVE_OK, rc = restore_tar_open(fd, &in);

	while (!rc &&
	       ((ar = archive_read_next_header(in, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN)) {
		int pass = !f || !f->pass || f->pass(f->ctx, archive_entry_pathname(e));

		if (pass) {
			restore_tar_fix_times(e);
			rc = visit(f ? f->ctx : NULL, e);
		}
		if (!rc)
			rc = restore_tar_list_data(in, e, pass && f ? f : NULL);
	}
	if (!rc && ar != ARCHIVE_EOF)
		rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged: %s",
		               archive_error_string(in));
	if (!rc)
		rc = restore_tar_drain(fd);
	archive_read_free(in);
	return rc;
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
static int restore_tar_extract_fd(int fd, const struct restore_tar_select *f)
{
	struct archive *in = NULL;
	struct archive *out = archive_write_disk_new();
	struct archive_entry *e;
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_ACL |
	            ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_XATTR |
	            ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	unsigned long long warnings = 0;
	int ar, rc = 0;

	if (!out) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(out, flags);
	archive_write_disk_set_standard_lookup(out);
	rc = restore_tar_open(fd, &in);
	if (rc)
		goto out;
	while ((ar = archive_read_next_header(in, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		const void *data;
		size_t len;
		la_int64_t off;

		if (f && f->pass && !f->pass(f->ctx, name)) {
			if (archive_read_data_skip(in) != ARCHIVE_OK) {
				rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged at %s: %s",
				               name, archive_error_string(in));
				goto out;
			}
			continue;
		}
		restore_tar_fix_times(e);
		rc = restore_tar_xattr_dedupe(e);
		if (rc)
			goto out;
		ar = archive_write_header(out, e);
		if (ar < ARCHIVE_WARN) {
			rc = restore_tar_write_error(out, "restore", name);
			goto out;
		}
		log_debug("restoring %s", name);
		if (ar == ARCHIVE_WARN) {
			log_warn("%s: %s", name, archive_error_string(out));
			warnings++;
		}
		while ((ar = archive_read_data_block(in, &data, &len, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(out, data, len, off) != ARCHIVE_OK) {
				rc = restore_tar_write_error(out, "write", name);
				goto out;
			}
		if (ar != ARCHIVE_EOF) {
			rc = error_set(CF_ERR_FORMAT, "the tar stream is damaged at %s: %s", name,
			               archive_error_string(in));
			goto out;
		}
		ar = archive_write_finish_entry(out);
		if (ar < ARCHIVE_WARN) {
			rc = restore_tar_write_error(out, "finish", name);
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
		rc = restore_tar_write_error(out, "finish", "the restore");
	if (!rc && warnings)
		log_warn("%llu entr%s restored without some of their metadata (see above)",
		         warnings, warnings == 1 ? "y" : "ies");
	if (!rc)
		rc = restore_tar_drain(fd);
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
static void restore_tar_child_report(int fd, int rc, const struct restore_tar_select *sel)
{
	const char *msg = error_message();

	if (write(fd, &rc, sizeof(rc)) != (ssize_t)sizeof(rc))
		return;
	if (rc)
		(void)!write(fd, msg, strlen(msg));
	else if (sel && sel->result_size)
		(void)!write(fd, sel->result, sel->result_size);
}

/* Reads the child's report: 0 if it wrote none or a success (whose result
 * goes into sel->result), else its code, with its message recorded by
 * error_set(). */
static int restore_tar_child_result(int fd, const struct restore_tar_select *sel)
{
	char msg[8192];
	ssize_t n;
	size_t len = 0;
	int code = 0;

	if (read(fd, &code, sizeof(code)) != (ssize_t)sizeof(code))
		return 0;
	if (code == 0 && sel && sel->result_size) {
		while (len < sel->result_size &&
		       (n = read(fd, (char *)sel->result + len, sel->result_size - len)) > 0)
			len += (size_t)n;
		return 0;
	}
	if (code >= 0 || code <= CF_ERR_LAST)
		return 0;
	while (len < sizeof(msg) - 1 && (n = read(fd, msg + len, sizeof(msg) - 1 - len)) > 0)
		len += (size_t)n;
	msg[len] = '\0';
	return error_set(code, "%s", msg);
}

/* Streams obj into a child that reads it: extracts into dir, or lists
 * through visit when dir is NULL. */
static int restore_tar_run(struct storage *st, const struct catalog_object *obj,
                           const struct age_identities *ids, const char *dir, int progress,
                           const struct restore_tar_select *sel,
                           int (*visit)(const void *ctx, struct archive_entry *e))
{
	int data[2], report[2], status = 0, rc, child_rc;
	char parent_msg[1024];
	pid_t pid;

	/* The child writes its report before it exits and the parent reads it
	 * after: it must fit in the pipe. */
	if (sel && sel->result_size > RESTORE_TAR_RESULT_MAX)
		return error_set(CF_ERR_USAGE, "too many paths or patterns (at most %d)",
		                 RESTORE_TAR_RESULT_MAX - 64);

	if (pipe2(data, O_CLOEXEC) != 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot create a pipe");
	if (pipe2(report, O_CLOEXEC) != 0) {
		close(data[0]);
		close(data[1]);
		return error_set_errno(CF_ERR_IO, errno, "cannot create a pipe");
	}
	/* What the parent printed must not be printed again by the child. */
	fflush(NULL);
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
		if (!dir)
			rc = restore_tar_list_fd(data[0], sel, visit);
		else if (chdir(dir) != 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot enter %s", dir);
		else
			rc = restore_tar_extract_fd(data[0], sel);
		if (fflush(stdout) != 0 && !rc)
			rc = error_set_errno(errno == ENOSPC ? CF_ERR_NOSPACE : CF_ERR_IO, errno,
			                     "cannot write the output");
		restore_tar_child_report(report[1], rc, sel);
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
	child_rc = restore_tar_child_result(report[0], rc ? NULL : sel);
	close(report[0]);
	if (cancel_requested())
		return error_set(CF_ERR_INTERRUPTED, "interrupted by a signal while restoring %s",
		                 obj->key);
	if (child_rc)
		return error_set(child_rc, "%s %s: %s", dir ? "restoring" : "listing", obj->key,
		                 error_message());
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return error_set(CF_ERR_INTERNAL, "%s %s: the %s process %s %d",
		                 dir ? "restoring" : "listing", obj->key,
		                 dir ? "extraction" : "listing",
		                 WIFSIGNALED(status) ? "was killed by signal" : "exited with",
		                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	if (rc)
		return error_set(rc, "%s", parent_msg);
	return 0;
}

int restore_tar_extract(struct storage *st, const struct catalog_object *obj,
                        const struct age_identities *ids, const char *dir, int progress,
                        const struct restore_tar_select *sel)
{
	return restore_tar_run(st, obj, ids, dir, progress, sel, NULL);
}

int restore_tar_list(struct storage *st, const struct catalog_object *obj,
                     const struct age_identities *ids, int progress,
                     const struct restore_tar_select *sel,
                     int (*visit)(const void *ctx, struct archive_entry *e))
{
	return restore_tar_run(st, obj, ids, NULL, progress, sel, visit);
}
