/*
 * source_files: backs up files and directories as one pax tar stream
 * ("files"): our own depth-first walk, with libarchive reading each entry's
 * metadata and writing the tar: regular files, directories,
 * symlinks, hard links, devices and fifos, permissions, owners, times, xattrs
 * and ACLs where the filesystem has them, sparse files as sparse entries.
 *
 * Member names are stored without a leading '/', as tar does, so the archive
 * extracts under any folder. A path that cannot be read, vanishes or shrinks
 * while it is read is recorded with backup_run_add_missing() and the walk goes
 * on: the backup is then partial (or fails, with strict = true). A file that
 * changes while it is read gives a warning and is stored as read (the count of
 * such warnings is in the record). source_files_dry_run() walks the same
 * way and writes nothing (backup --dry-run).
 */
#include "agent/source/source_files.h"
#include "agent/agent.h"
#include "agent/pipeline.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_FILES_ZERO_BLOCK (64 * 1024)
#define SOURCE_FILES_READ_BLOCK (256 * 1024)

struct source_files {
	char *name;
	struct strv paths;
	struct strv excludes;
	int one_file_system;
	int xattrs;
};

/* State of one run. */
struct source_files_run {
	struct source_files *cfg;
	struct backup_run *run;
	struct source_tar_out out;
	struct archive *disk;
	struct archive *tar;
	struct archive_entry_linkresolver *links;
	struct archive *match;
	uint8_t *zeros;
	uint8_t *readbuf;
	uint64_t entries;
	uint64_t warnings;
	/* A dry run (run is NULL): each entry goes to dry, no data is read. */
	int (*dry)(void *ctx, struct archive_entry *e);
	void *dry_ctx;
	uint64_t dry_missing;
};

static int source_files_create(const char *name, void **state)
{
	struct source_files *s = calloc(1, sizeof(*s));

	if (!s || !(s->name = strdup(name))) {
		free(s);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	s->xattrs = 1;
	*state = s;
	return 0;
}

static void source_files_free(void *state)
{
	struct source_files *s = state;

	if (!s)
		return;
	strv_free(&s->paths);
	strv_free(&s->excludes);
	free(s->name);
	free(s);
}

static int source_files_set(void *state, const char *key, const char *value)
{
	struct source_files *s = state;

	if (!strcmp(key, "paths")) {
		int rc;

		strv_free(&s->paths);
		rc = strv_split(value, &s->paths);
		if (rc)
			return rc;
		/* Names are stored as given (less the leading '/'), so a
		 * relative one would depend on where coffer happens to run. */
		for (size_t i = 0; i < s->paths.n; i++)
			if (s->paths.v[i][0] != '/')
				return error_set(CF_ERR_CONFIG,
				                 "paths: '%s' is not an absolute path",
				                 s->paths.v[i]);
		return 0;
	}
	if (!strcmp(key, "exclude")) {
		strv_free(&s->excludes);
		return strv_split(value, &s->excludes);
	}
	if (!strcmp(key, "one_file_system"))
		return source_parse_bool(key, value, &s->one_file_system);
	if (!strcmp(key, "xattrs"))
		return source_parse_bool(key, value, &s->xattrs);
	return error_set(CF_ERR_CONFIG,
	                 "unknown key '%s' (expected paths, exclude, one_file_system, xattrs)",
	                 key);
}

static int source_files_check(void *state)
{
	struct source_files *s = state;

	if (!s->paths.n)
		return error_set(CF_ERR_CONFIG, "missing key 'paths'");
	return 0;
}

static void source_files_warn(struct source_files_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void source_files_warn(struct source_files_run *r, const char *fmt, ...)
{
	char msg[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("source %s: %s", r->cfg->name, msg);
	r->warnings++;
}

static int source_files_missing(struct source_files_run *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records path as not (or not wholly) in the backup: the backup will be
 * partial. */
static int source_files_missing(struct source_files_run *r, const char *path, const char *fmt, ...)
{
	char why[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!r->run) {
		log_warn("source %s: %s: %s; it would not be in the backup", r->cfg->name, path,
		         why);
		r->dry_missing++;
		return 0;
	}
	return backup_run_add_missing(r->run, path, why);
}

/* Error for a libarchive failure on the tar side: the pipeline's own error if
 * it caused it, else libarchive's message. */
static int source_files_tar_error(struct source_files_run *r, const char *what)
{
	return source_tar_error(&r->out, r->tar, r->cfg->name, what);
}

/*
 * Copies a regular file's data from fd. The data regions come from the sparse
 * map libarchive recorded (one region for a dense file); holes are written as
 * zeros, which the pax writer turns back into holes without storing them.
 */
static int source_files_copy_data(struct source_files_run *r, struct archive_entry *e, int fd)
{
	const char *path = archive_entry_sourcepath(e);
	int64_t size = archive_entry_size(e), done = 0, off, len;
	int regions = archive_entry_sparse_reset(e);

	for (;;) {
		if (regions > 0) {
			la_int64_t o, l;

			if (archive_entry_sparse_next(e, &o, &l) != ARCHIVE_OK)
				break;
			off = o;
			len = l;
		} else {
			if (done > 0 || size == 0)
				break;
			off = 0;
			len = size;
		}
		if (off > size)
			off = size;
		if (len > size - off)
			len = size - off;
		while (done < off) {
			size_t n = off - done > SOURCE_FILES_ZERO_BLOCK ? SOURCE_FILES_ZERO_BLOCK
			                                                : (size_t)(off - done);
			la_ssize_t w = archive_write_data(r->tar, r->zeros, n);

			if (w < 0)
				return source_files_tar_error(r, path);
			done += w;
		}
		while (len > 0) {
			size_t want =
			    len > SOURCE_FILES_READ_BLOCK ? SOURCE_FILES_READ_BLOCK : (size_t)len;
			ssize_t n = pread(fd, r->readbuf, want, (off_t)done);
			la_ssize_t w;

			if (backup_run_interrupted(r->run))
				return error_set(CF_ERR_INTERRUPTED,
				                 "interrupted by a signal while reading %s", path);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* The file shrank (n == 0) or cannot be read: the pax writer pads
				 * the entry to its recorded size; say so. */
				return source_files_missing(
				    r, path, "%s; stored %lld of %lld bytes, the rest as zeros",
				    n < 0 ? strerror(errno) : "shrank while it was read",
				    (long long)done, (long long)size);
			}
			w = archive_write_data(r->tar, r->readbuf, (size_t)n);
			if (w < 0)
				return source_files_tar_error(r, path);
			done += n;
			len -= n;
		}
		if (regions <= 0)
			break;
	}
	return 0;
}

/*
 * Rewrites the sparse map libarchive read from the file into one that every
 * tar reader restores: regions of data only (no zero-length entries), and the
 * last region ending at the end of the file. libarchive's reader gives a file
 * with no data at all (truncate -s, fallocate) a map of one empty region, and
 * its pax writer then declares a sparse entry with no map, which neither GNU
 * tar nor libarchive can read back; a map whose last region ends before the
 * end of the file relies on every reader extending the file. So a file that
 * ends in a hole (or is all hole) gets its last byte stored as data: one zero
 * byte, read from the file like the rest.
 */
static int source_files_fix_sparse(struct archive_entry *e)
{
	int64_t size = archive_entry_size(e), end = 0;
	int n = archive_entry_sparse_reset(e);
	la_int64_t *map;
	int kept = 0;

	if (n <= 0 || size <= 0)
		return 0;
	map = calloc((size_t)n, 2 * sizeof(*map));
	if (!map)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		la_int64_t off, len;

		if (archive_entry_sparse_next(e, &off, &len) != ARCHIVE_OK)
			break;
		if (off < end || off >= size || len <= 0)
			continue; /* empty, overlapping or past the end */
		if (len > size - off)
			len = size - off;
		map[2 * kept] = off;
		map[2 * kept + 1] = len;
		end = off + len;
		kept++;
	}
	archive_entry_sparse_clear(e);
	for (int i = 0; i < kept; i++)
		archive_entry_sparse_add_entry(e, map[2 * i], map[2 * i + 1]);
	if (end < size)
		archive_entry_sparse_add_entry(e, size - 1, 1);
	free(map);
	return 0;
}

/* Warns when a file changed between its stat (whose mtime was) and the end
 * of its read. */
static void source_files_check_changed(struct source_files_run *r, struct archive_entry *e, int fd,
                                       const struct timespec *was)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return;
	if (st.st_size != archive_entry_size(e) || st.st_mtim.tv_sec != was->tv_sec ||
	    st.st_mtim.tv_nsec != was->tv_nsec)
		source_files_warn(
		    r, "%s: changed while it was read; the stored copy may be inconsistent",
		    archive_entry_sourcepath(e));
}

/* Stores name without leading '/' (and "./"), as tar does. */
static const char *source_files_strip(const char *name)
{
	while (name && (*name == '/' || (name[0] == '.' && name[1] == '/')))
		name += *name == '/' ? 1 : 2;
	return name;
}

/*
 * libarchive 3.6's pax writer prints a time before 1970 with a fraction as
 * "-<|sec|>.<nsec>", as if the fraction had the sign of the seconds: -1.25 s
 * (sec -2, nsec 750000000) comes out as "-2.75". Given sec + 1 and
 * 1e9 - nsec it prints the true value; its reader has the mirrored habit,
 * which restore undoes (restore_fix_times). A time between -1 and 0 s
 * cannot be printed right at all: it is stored as -1 s.
 */
static void source_files_fix_times(struct archive_entry *e)
{
	static const struct {
		int (*is_set)(struct archive_entry *);
		time_t (*sec)(struct archive_entry *);
		long (*nsec)(struct archive_entry *);
		void (*set)(struct archive_entry *, time_t, long);
	} t[] = {
	    {archive_entry_mtime_is_set, archive_entry_mtime, archive_entry_mtime_nsec,
	     archive_entry_set_mtime},
	    {archive_entry_atime_is_set, archive_entry_atime, archive_entry_atime_nsec,
	     archive_entry_set_atime},
	    {archive_entry_ctime_is_set, archive_entry_ctime, archive_entry_ctime_nsec,
	     archive_entry_set_ctime},
	    {archive_entry_birthtime_is_set, archive_entry_birthtime, archive_entry_birthtime_nsec,
	     archive_entry_set_birthtime},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		time_t sec;
		long nsec;

		if (!t[i].is_set(e))
			continue;
		sec = t[i].sec(e);
		nsec = t[i].nsec(e);
		if (sec >= 0 || nsec <= 0)
			continue;
		if (sec == -1)
			t[i].set(e, -1, 0);
		else
			t[i].set(e, sec + 1, 1000000000L - nsec);
	}
}

/* Writes one entry (header, and data from fd for a regular file). */
static int source_files_write_entry(struct source_files_run *r, struct archive_entry *e, int fd)
{
	const char *name = source_files_strip(archive_entry_pathname(e));
	const char *link = source_files_strip(archive_entry_hardlink(e));
	struct timespec mtime = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
	int ar, rc;

	if (!name || !*name)
		return 0; /* the root "/" itself */
	archive_entry_copy_pathname(e, name);
	if (link)
		archive_entry_copy_hardlink(e, link);
	if (r->dry) {
		r->entries++;
		return r->dry(r->dry_ctx, e);
	}
	source_files_fix_times(e);
	ar = archive_write_header(r->tar, e);
	if (ar == ARCHIVE_WARN) {
		source_files_warn(r, "%s: %s", archive_entry_sourcepath(e),
		                  archive_error_string(r->tar));
	} else if (ar != ARCHIVE_OK) {
		if (ar == ARCHIVE_FATAL)
			return source_files_tar_error(r, archive_entry_sourcepath(e));
		return source_files_missing(r, archive_entry_sourcepath(e), "%s",
		                            archive_error_string(r->tar));
	}
	r->entries++;
	log_debug("source %s: %s", r->cfg->name, archive_entry_sourcepath(e));
	if (archive_entry_size(e) > 0 && !link && fd >= 0) {
		rc = source_files_copy_data(r, e, fd);
		if (rc)
			return rc;
		source_files_check_changed(r, e, fd, &mtime);
	}
	if (archive_write_finish_entry(r->tar) < ARCHIVE_WARN)
		return source_files_tar_error(r, archive_entry_sourcepath(e));
	return 0;
}

/* Opens what the walk needs to read: regular files for data, directories for
 * listing (both also let libarchive read xattrs, ACLs and the sparse map
 * through the descriptor). Never follows a symlink, never opens a fifo. */
static int source_files_open(const char *path, const struct stat *st)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	int fd;

	if (S_ISDIR(st->st_mode))
		flags |= O_DIRECTORY;
	else if (!S_ISREG(st->st_mode))
		return -1;
	/* O_NOATIME keeps a backup from touching access times; only the owner or
	 * root may use it. */
	fd = open(path, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, flags);
	return fd;
}

/*
 * Walks path depth-first: a directory, then everything under it, before its
 * next sibling. GNU tar sets a directory's times when it leaves it, so this
 * order is what lets `tar -x` restore them. Memory is one open directory per
 * level, whatever the number of entries.
 */
static int source_files_walk(struct source_files_run *r, const char *path, dev_t root_dev,
                             int depth)
{
	struct archive_entry *e = NULL, *spare = NULL;
	struct stat st;
	DIR *dir = NULL;
	int fd = -1, rc = 0;

	if (backup_run_interrupted(r->run))
		return error_set(CF_ERR_INTERRUPTED, "interrupted by a signal");
	if (lstat(path, &st) != 0) {
		if (depth == 0)
			return error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot read %s",
			                       r->cfg->name, path);
		return source_files_missing(r, path, "%s",
		                            errno == ENOENT ? "vanished before it was read"
		                                            : strerror(errno));
	}
	/* A socket is made by the program that listens on it, never restored (as
	 * GNU tar, which ignores them): left out, not missing. */
	if (S_ISSOCK(st.st_mode)) {
		log_info("source %s: %s: a socket, left out", r->cfg->name, path);
		return 0;
	}
	e = archive_entry_new();
	if (!e)
		return error_set(CF_ERR_NOMEM, "out of memory");
	archive_entry_copy_pathname(e, path);
	archive_entry_copy_sourcepath(e, path);
	if (archive_match_path_excluded(r->match, e) > 0) {
		log_debug("excluded %s", path);
		goto out;
	}
	fd = source_files_open(path, &st);
	if (fd < 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		if (depth == 0) {
			rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot open %s",
			                     r->cfg->name, path);
			goto out;
		}
		rc = source_files_missing(r, path, "%s",
		                          errno == ENOENT ? "vanished before it was read"
		                                          : strerror(errno));
		goto out;
	}
	if (fd >= 0 && fstat(fd, &st) != 0) {
		rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot stat %s",
		                     r->cfg->name, path);
		goto out;
	}
	if (archive_read_disk_entry_from_file(r->disk, e, fd, &st) < ARCHIVE_WARN) {
		rc = source_files_missing(r, path, "%s", archive_error_string(r->disk));
		goto out;
	}
	rc = source_files_fix_sparse(e);
	if (rc)
		goto out;
	{
		struct archive_entry *w = e;

		archive_entry_linkify(r->links, &w, &spare);
		if (w)
			rc = source_files_write_entry(r, w, w == e ? fd : -1);
		/* With the tar strategy the resolver hands back e itself, never a
		 * deferred or spare entry; both stay owned by the resolver anyway. */
		if (!rc && spare)
			rc = source_files_write_entry(r, spare, -1);
	}
	if (rc || !S_ISDIR(st.st_mode))
		goto out;
	if (r->cfg->one_file_system && depth > 0 && st.st_dev != root_dev)
		goto out;
	dir = fdopendir(fd);
	if (!dir) {
		rc = source_files_missing(r, path, "cannot list: %s", strerror(errno));
		goto out;
	}
	fd = -1; /* owned by dir now */
	for (;;) {
		struct dirent *d;
		struct buf child;

		errno = 0;
		d = readdir(dir);
		if (!d) {
			if (errno)
				rc = source_files_missing(r, path, "listing stopped: %s",
				                          strerror(errno));
			break;
		}
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		buf_init(&child, 65536);
		rc = buf_printf(&child, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/",
		                d->d_name);
		if (!rc)
			rc = source_files_walk(r, (char *)child.data, root_dev, depth + 1);
		buf_free(&child);
		if (rc)
			break;
	}
out:
	if (dir)
		closedir(dir);
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	return rc;
}

/* Frees what source_files_run_init made. */
static void source_files_run_free(struct source_files_run *r)
{
	r->out.head = NULL;
	if (r->tar)
		archive_write_free(r->tar);
	if (r->disk)
		archive_read_free(r->disk);
	if (r->match)
		archive_match_free(r->match);
	if (r->links)
		archive_entry_linkresolver_free(r->links);
	free(r->zeros);
	free(r->readbuf);
}

/* Prepares a walk of s (run may be NULL for a dry run): the disk reader,
 * the exclude patterns, the tar writer's format (the hard-link strategy
 * depends on it). */
static int source_files_run_init(struct source_files *s, struct backup_run *run,
                                 struct source_files_run *r)
{
	memset(r, 0, sizeof(*r));
	r->cfg = s;
	r->run = run;
	r->zeros = calloc(1, SOURCE_FILES_ZERO_BLOCK);
	r->readbuf = malloc(SOURCE_FILES_READ_BLOCK);
	r->disk = archive_read_disk_new();
	r->tar = archive_write_new();
	r->links = archive_entry_linkresolver_new();
	r->match = archive_match_new();
	if (!r->zeros || !r->readbuf || !r->disk || !r->tar || !r->links || !r->match)
		return error_set(CF_ERR_NOMEM, "out of memory");
	archive_read_disk_set_standard_lookup(r->disk);
	archive_read_disk_set_symlink_physical(r->disk);
	if (!s->xattrs)
		archive_read_disk_set_behavior(r->disk, ARCHIVE_READDISK_NO_XATTR);
	for (size_t i = 0; i < s->excludes.n; i++)
		if (archive_match_exclude_pattern(r->match, s->excludes.v[i]) != ARCHIVE_OK)
			return error_set(CF_ERR_SOURCE, "source %s: bad exclude pattern '%s': %s",
			                 s->name, s->excludes.v[i], archive_error_string(r->match));
	/* Full pax, not pax_restricted: every entry gets its times to the
	 * nanosecond, not only entries that need a pax header for another reason. */
	archive_write_set_format_pax(r->tar);
	/* Names as the bytes the filesystem has, not as UTF-8 text: readers
	 * convert UTF-8 names to the locale's normal form (libarchive turns
	 * NFD into NFC on Linux, merging two files whose names differ only
	 * so), while hdrcharset=BINARY names come back byte for byte from
	 * libarchive and GNU tar alike. */
	if (archive_write_set_format_option(r->tar, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK)
		return source_files_tar_error(r, "hdrcharset");
	archive_entry_linkresolver_set_strategy(r->links, archive_format(r->tar));
	return 0;
}

/* Walks every configured path, then writes the hard links still pending. */
static int source_files_run_walk(struct source_files_run *r)
{
	struct source_files *s = r->cfg;
	int rc = 0;

	for (size_t i = 0; !rc && i < s->paths.n; i++) {
		struct stat st;

		if (lstat(s->paths.v[i], &st) != 0)
			rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot read %s",
			                     s->name, s->paths.v[i]);
		else
			rc = source_files_walk(r, s->paths.v[i], st.st_dev, 0);
	}
	if (!rc) {
		struct archive_entry *e = NULL, *spare = NULL;

		/* Hard links whose other names were never seen are still pending. */
		archive_entry_linkify(r->links, &e, &spare);
		while (!rc && e) {
			rc = source_files_write_entry(r, e, -1);
			e = NULL;
			archive_entry_linkify(r->links, &e, &spare);
		}
	}
	return rc;
}

static int source_files_run(void *state, struct backup_run *run)
{
	struct source_files *s = state;
	struct source_files_run r;
	char meta[256];
	int rc = source_files_run_init(s, run, &r);

	if (!rc)
		rc = backup_stream_open(run, "files", "tar", &r.out.head);
	if (!rc &&
	    archive_write_open2(r.tar, &r.out, NULL, source_tar_write, NULL, NULL) != ARCHIVE_OK)
		rc = source_files_tar_error(&r, "open");
	if (!rc)
		rc = source_files_run_walk(&r);
	if (!rc && archive_write_close(r.tar) != ARCHIVE_OK)
		rc = source_files_tar_error(&r, "close");
	if (!rc) {
		snprintf(meta, sizeof(meta), "{\"entries\": %llu, \"warnings\": %llu}",
		         (unsigned long long)r.entries, (unsigned long long)r.warnings);
		rc = backup_run_set_meta(run, meta);
	}
	if (!rc)
		rc = backup_stream_close(run);
	if (!rc && r.warnings)
		log_warn("source %s: %llu warning(s); see above", s->name,
		         (unsigned long long)r.warnings);
	source_files_run_free(&r);
	return rc;
}

/* coffer check: every path exists and can be read (a folder: listed). A
 * path that cannot would make every backup partial. */
static int source_files_probe(void *state, struct buf *detail)
{
	struct source_files *s = state;
	struct stat st;

	for (size_t i = 0; i < s->paths.n; i++) {
		const char *p = s->paths.v[i];

		if (lstat(p, &st) != 0)
			return error_set_errno(CF_ERR_SOURCE, errno, "source %s: path %s", s->name,
			                       p);
		if (access(p, S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK) != 0)
			return error_set_errno(CF_ERR_SOURCE, errno,
			                       "source %s: path %s cannot be read by this user "
			                       "(uid %u)",
			                       s->name, p, (unsigned)geteuid());
	}
	return buf_printf(detail, "%zu path(s) readable", s->paths.n);
}

int source_files_dry_run(const struct source *src, int (*visit)(void *ctx, struct archive_entry *e),
                         void *ctx, uint64_t *missing)
{
	struct source_files_run r;
	int rc;

	*missing = 0;
	if (src->ops != &source_files_ops)
		return error_set(CF_ERR_USAGE,
		                 "--dry-run is for files sources; source %s is of type %s",
		                 src->name, src->ops->type);
	rc = source_files_run_init(src->state, NULL, &r);
	r.dry = visit;
	r.dry_ctx = ctx;
	if (!rc)
		rc = source_files_run_walk(&r);
	*missing = r.dry_missing;
	source_files_run_free(&r);
	return rc;
}

const struct source_ops source_files_ops = {
    .type = "files",
    .create = source_files_create,
    .set = source_files_set,
    .check = source_files_check,
    .run = source_files_run,
    .probe = source_files_probe,
    .free = source_files_free,
};
