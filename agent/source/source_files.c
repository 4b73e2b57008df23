/*
 * source_files: backs up files and directories as one pax tar stream
 * ("files"), read with libarchive's disk reader: regular files, directories,
 * symlinks, hard links, devices and fifos, permissions, owners, times, xattrs
 * and ACLs where the filesystem has them, sparse files as sparse entries.
 *
 * Member names are stored without a leading '/', as tar does, so the archive
 * extracts under any folder. A file that vanishes or changes while it is read
 * gives a warning naming it; the backup goes on (a changing file is recorded as
 * the bytes that were read, and the count of such warnings is in the record).
 */
#include "agent/agent.h"
#include "agent/pipeline.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SOURCE_FILES_ZERO_BLOCK (64 * 1024)

struct source_files {
	char *name;
	char **paths;
	size_t npaths;
	char **excludes;
	size_t nexcludes;
	int one_file_system;
	int xattrs;
};

/* State of one run. */
struct source_files_run {
	struct source_files *cfg;
	struct backup_run *run;
	struct filter *head;
	struct archive *disk;
	struct archive *tar;
	struct archive_entry_linkresolver *links;
	uint8_t *zeros;
	uint64_t entries;
	uint64_t warnings;
	int write_rc; /* the pipeline's error, kept across libarchive's return */
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
	config_free_list(s->paths, s->npaths);
	config_free_list(s->excludes, s->nexcludes);
	free(s->name);
	free(s);
}

static int source_files_set(void *state, const char *key, const char *value)
{
	struct source_files *s = state;

	if (!strcmp(key, "paths")) {
		config_free_list(s->paths, s->npaths);
		return config_split_list(value, &s->paths, &s->npaths);
	}
	if (!strcmp(key, "exclude")) {
		config_free_list(s->excludes, s->nexcludes);
		return config_split_list(value, &s->excludes, &s->nexcludes);
	}
	if (!strcmp(key, "one_file_system"))
		return source_parse_bool(key, value, &s->one_file_system);
	if (!strcmp(key, "xattrs"))
		return source_parse_bool(key, value, &s->xattrs);
	return error_set(CF_ERR_CONFIG,
			 "unknown key '%s' (expected paths, exclude, one_file_system, xattrs)", key);
}

static int source_files_check(void *state)
{
	struct source_files *s = state;

	if (!s->npaths)
		return error_set(CF_ERR_CONFIG, "missing key 'paths'");
	return 0;
}

static la_ssize_t source_files_tar_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct source_files_run *r = ctx;
	int rc;

	/* After a failure the stream is being abandoned: accept nothing more. */
	if (!r->head) {
		archive_set_error(a, EIO, "stream closed");
		return -1;
	}
	rc = filter_write(r->head, buf, len);
	if (rc) {
		r->write_rc = rc;
		archive_set_error(a, EIO, "%s", error_message());
		return -1;
	}
	return (la_ssize_t)len;
}

static void source_files_warn(struct source_files_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void source_files_warn(struct source_files_run *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("source %s: %s", r->cfg->name, msg);
	r->warnings++;
}

/* Error for a libarchive failure on the tar side: the pipeline's own error if
 * it caused it, else libarchive's message. */
static int source_files_tar_error(struct source_files_run *r, const char *what)
{
	if (r->write_rc)
		return r->write_rc;
	return error_set(CF_ERR_SOURCE, "source %s: cannot write the tar stream (%s): %s", r->cfg->name,
			 what, archive_error_string(r->tar));
}

/* Copies the data of the entry the disk reader is on. Holes in a sparse file
 * are written as zeros, which the pax writer turns back into holes. */
static int source_files_copy_data(struct source_files_run *r, struct archive_entry *e)
{
	const char *path = archive_entry_sourcepath(e);
	int64_t done = 0, size = archive_entry_size(e);
	const void *data;
	size_t len;
	la_int64_t offset;
	int ar;

	while ((ar = archive_read_data_block(r->disk, &data, &len, &offset)) == ARCHIVE_OK) {
		if (backup_run_interrupted(r->run))
			return error_set(CF_ERR_INTERRUPTED, "interrupted by a signal while reading %s",
					 path);
		if (offset > size || (int64_t)len > size - offset) {
			/* The file grew after its size was recorded: store what fits. */
			if (offset >= size)
				break;
			len = (size_t)(size - offset);
		}
		while (done < offset) {
			size_t n = offset - done > SOURCE_FILES_ZERO_BLOCK ? SOURCE_FILES_ZERO_BLOCK
									     : (size_t)(offset - done);
			la_ssize_t w = archive_write_data(r->tar, r->zeros, n);

			if (w < 0)
				return source_files_tar_error(r, path);
			done += w;
		}
		while (len > 0) {
			la_ssize_t w = archive_write_data(r->tar, data, len);

			if (w < 0)
				return source_files_tar_error(r, path);
			data = (const uint8_t *)data + w;
			len -= (size_t)w;
			done += w;
		}
	}
	if (ar != ARCHIVE_OK && ar != ARCHIVE_EOF) {
		source_files_warn(r, "%s: read failed (%s); stored %lld of %lld bytes", path,
				  archive_error_string(r->disk), (long long)done, (long long)size);
		return 0;
	}
	/* Trailing hole, or a file that shrank: the pax writer pads the entry to
	 * its recorded size with zeros. Only a shrink deserves a warning. */
	return 0;
}

/* Warns when a file changed between the header and the end of its read. */
static void source_files_check_changed(struct source_files_run *r, struct archive_entry *e)
{
	const char *path = archive_entry_sourcepath(e);
	struct stat st;

	if (!path || archive_entry_filetype(e) != AE_IFREG)
		return;
	if (lstat(path, &st) != 0) {
		source_files_warn(r, "%s: vanished while it was read", path);
		return;
	}
	if (st.st_size != archive_entry_size(e) || st.st_mtim.tv_sec != archive_entry_mtime(e) ||
	    st.st_mtim.tv_nsec != archive_entry_mtime_nsec(e))
		source_files_warn(r, "%s: changed while it was read; the stored copy may be inconsistent",
				  path);
}

/* Stores name without leading '/' (and "./"), as tar does. */
static const char *source_files_strip(const char *name)
{
	while (name && (*name == '/' || (name[0] == '.' && name[1] == '/')))
		name += *name == '/' ? 1 : 2;
	return name;
}

static int source_files_write_entry(struct source_files_run *r, struct archive_entry *e)
{
	const char *name = source_files_strip(archive_entry_pathname(e));
	const char *link = source_files_strip(archive_entry_hardlink(e));
	int ar, rc;

	if (!name || !*name)
		return 0; /* the root "/" itself */
	archive_entry_copy_pathname(e, name);
	if (link)
		archive_entry_copy_hardlink(e, link);
	ar = archive_write_header(r->tar, e);
	if (ar == ARCHIVE_WARN) {
		source_files_warn(r, "%s: %s", archive_entry_sourcepath(e), archive_error_string(r->tar));
	} else if (ar != ARCHIVE_OK) {
		if (ar == ARCHIVE_FATAL)
			return source_files_tar_error(r, archive_entry_sourcepath(e));
		source_files_warn(r, "%s: skipped: %s", archive_entry_sourcepath(e),
				  archive_error_string(r->tar));
		return 0;
	}
	r->entries++;
	if (archive_entry_size(e) > 0 && !link) {
		rc = source_files_copy_data(r, e);
		if (rc)
			return rc;
		source_files_check_changed(r, e);
	}
	if (archive_write_finish_entry(r->tar) < ARCHIVE_WARN)
		return source_files_tar_error(r, archive_entry_sourcepath(e));
	return 0;
}

static int source_files_walk(struct source_files_run *r, const char *path)
{
	struct archive_entry *entry = archive_entry_new();
	int rc = 0;

	if (!entry)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (archive_read_disk_open(r->disk, path) != ARCHIVE_OK) {
		rc = error_set(CF_ERR_SOURCE, "source %s: cannot read %s: %s", r->cfg->name, path,
			       archive_error_string(r->disk));
		goto out;
	}
	for (;;) {
		struct archive_entry *e, *spare = NULL;
		int ar;

		archive_entry_clear(entry);
		ar = archive_read_next_header2(r->disk, entry);
		if (ar == ARCHIVE_EOF)
			break;
		if (backup_run_interrupted(r->run)) {
			rc = error_set(CF_ERR_INTERRUPTED, "interrupted by a signal");
			break;
		}
		if (ar == ARCHIVE_FATAL) {
			rc = error_set(CF_ERR_SOURCE, "source %s: cannot read %s: %s", r->cfg->name, path,
				       archive_error_string(r->disk));
			break;
		}
		if (ar == ARCHIVE_RETRY || ar == ARCHIVE_FAILED) {
			/* Typically a file that vanished between the directory read and its open. */
			source_files_warn(r, "%s: skipped: %s",
					  archive_entry_sourcepath(entry) ? archive_entry_sourcepath(entry) : path,
					  archive_error_string(r->disk));
			continue;
		}
		if (ar == ARCHIVE_WARN)
			source_files_warn(r, "%s: %s", archive_entry_sourcepath(entry),
					  archive_error_string(r->disk));
		archive_read_disk_descend(r->disk);
		e = entry;
		archive_entry_linkify(r->links, &e, &spare);
		if (e)
			rc = source_files_write_entry(r, e);
		if (!rc && spare)
			rc = source_files_write_entry(r, spare);
		if (rc)
			break;
	}
	archive_read_close(r->disk);
out:
	archive_entry_free(entry);
	return rc;
}

static void source_files_excluded(struct archive *a, void *ctx, struct archive_entry *e)
{
	(void)a;
	(void)ctx;
	log_debug("excluded %s", archive_entry_sourcepath(e));
}

static int source_files_run(void *state, struct backup_run *run)
{
	struct source_files *s = state;
	struct source_files_run r;
	struct archive *match = NULL;
	char meta[256];
	int rc = 0, flags = 0;

	memset(&r, 0, sizeof(r));
	r.cfg = s;
	r.run = run;
	r.zeros = calloc(1, SOURCE_FILES_ZERO_BLOCK);
	r.disk = archive_read_disk_new();
	r.tar = archive_write_new();
	r.links = archive_entry_linkresolver_new();
	match = archive_match_new();
	if (!r.zeros || !r.disk || !r.tar || !r.links || !match) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	archive_read_disk_set_standard_lookup(r.disk);
	archive_read_disk_set_symlink_physical(r.disk);
	if (s->one_file_system)
		flags |= ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS;
	if (!s->xattrs)
		flags |= ARCHIVE_READDISK_NO_XATTR;
	archive_read_disk_set_behavior(r.disk, flags);
	for (size_t i = 0; i < s->nexcludes; i++)
		if (archive_match_exclude_pattern(match, s->excludes[i]) != ARCHIVE_OK) {
			rc = error_set(CF_ERR_SOURCE, "source %s: bad exclude pattern '%s': %s", s->name,
				       s->excludes[i], archive_error_string(match));
			goto out;
		}
	archive_read_disk_set_matching(r.disk, match, source_files_excluded, &r);
	archive_write_set_format_pax_restricted(r.tar);
	archive_entry_linkresolver_set_strategy(r.links, archive_format(r.tar));

	rc = backup_stream_open(run, "files", "tar", &r.head);
	if (rc)
		goto out;
	if (archive_write_open2(r.tar, &r, NULL, source_files_tar_write, NULL, NULL) != ARCHIVE_OK) {
		rc = source_files_tar_error(&r, "open");
		goto out;
	}
	for (size_t i = 0; !rc && i < s->npaths; i++)
		rc = source_files_walk(&r, s->paths[i]);
	if (!rc) {
		struct archive_entry *e = NULL, *spare = NULL;

		/* Hard links whose other names were never seen are still pending. */
		archive_entry_linkify(r.links, &e, &spare);
		while (!rc && e) {
			rc = source_files_write_entry(&r, e);
			e = NULL;
			archive_entry_linkify(r.links, &e, &spare);
		}
	}
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
		log_warn("source %s: %llu warning(s); see above", s->name, (unsigned long long)r.warnings);
out:
	r.head = NULL;
	if (r.tar)
		archive_write_free(r.tar);
	if (r.disk)
		archive_read_free(r.disk);
	if (match)
		archive_match_free(match);
	if (r.links)
		archive_entry_linkresolver_free(r.links);
	free(r.zeros);
	return rc;
}

const struct source_ops source_files_ops = {
	"files", source_files_create, source_files_set, source_files_check, source_files_run,
	source_files_free,
};
