/*
 * wal: the WAL archive of a postgres-physical source in the repositories
 * (wal.h): names, keys, one file in (push) and out (fetch), listings and the
 * catalog's ranges.
 */
#include "agent/wal.h"
#include "agent/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_READ_CHUNK (256 * 1024)
#define WAL_OBJECT_SUFFIX ".zst.age"

/* ------------------------------------------------------------------------ */
/* Names and LSNs                                                           */
/* ------------------------------------------------------------------------ */

static int wal_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

static uint32_t wal_hex32(const char *s)
{
	char b[9];

	memcpy(b, s, 8);
	b[8] = '\0';
	return (uint32_t)strtoul(b, NULL, 16);
}

int wal_name_parse(const char *name, struct wal_name *out)
{
	size_t n = strlen(name);

	memset(out, 0, sizeof(*out));
	if (n < sizeof(out->name)) {
		if (n == 16 && wal_hex(name, 8) && !strcmp(name + 8, ".history")) {
			out->kind = WAL_HISTORY;
		} else if (n >= 24 && wal_hex(name, 24)) {
			if (n == 24)
				out->kind = WAL_SEGMENT;
			else if (!strcmp(name + 24, ".partial"))
				out->kind = WAL_PARTIAL;
			else if (n == 40 && name[24] == '.' && wal_hex(name + 25, 8) &&
			         !strcmp(name + 33, ".backup"))
				out->kind = WAL_BACKUP;
			else
				n = 0;
		} else {
			n = 0;
		}
	} else {
		n = 0;
	}
	if (!n)
		return error_set(CF_ERR_USAGE,
		                 "'%.64s' is not a WAL file name (expected a segment like "
		                 "000000010000000000000003, a .partial, .backup or .history file)",
		                 name);
	memcpy(out->name, name, n + 1);
	out->tli = wal_hex32(name);
	if (out->kind != WAL_HISTORY) {
		out->log = wal_hex32(name + 8);
		out->seg = wal_hex32(name + 16);
	}
	return 0;
}

uint64_t wal_segno(const struct wal_name *w, uint64_t seg_size)
{
	return (uint64_t)w->log * (0x100000000ULL / seg_size) + w->seg;
}

void wal_segname(uint32_t tli, uint64_t segno, uint64_t seg_size, char out[25])
{
	uint64_t per = 0x100000000ULL / seg_size;

	snprintf(out, 25, "%08X%08X%08X", tli, (uint32_t)(segno / per), (uint32_t)(segno % per));
}

int wal_lsn_parse(const char *text, uint64_t *lsn)
{
	unsigned long hi, lo;
	char *end;

	errno = 0;
	hi = strtoul(text, &end, 16);
	if (end == text || *end != '/' || errno || hi > 0xFFFFFFFFUL)
		goto bad;
	text = end + 1;
	lo = strtoul(text, &end, 16);
	if (end == text || *end || errno || lo > 0xFFFFFFFFUL)
		goto bad;
	*lsn = ((uint64_t)hi << 32) | lo;
	return 0;
bad:
	return error_set(CF_ERR_USAGE, "'%.64s' is not an LSN (expected e.g. 0/3000060)", text);
}

void wal_lsn_format(uint64_t lsn, char out[24])
{
	snprintf(out, 24, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFU));
}

/* The key of name with digest sha (NULL: the prefix every copy shares,
 * "<source>/wal/<dir>/<name>-"). */
static int wal_key(const char *source, const struct wal_name *w, const char *sha, char **out)
{
	char *dir = NULL;
	size_t n;
	int rc = repo_wal_dir(source, w->kind == WAL_HISTORY ? NULL : w->name, &dir);

	*out = NULL;
	if (rc)
		return rc;
	n = strlen(dir) + strlen(w->name) + 2 + (sha ? strlen(sha) : 0) + sizeof(WAL_OBJECT_SUFFIX);
	*out = malloc(n);
	if (!*out) {
		free(dir);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	snprintf(*out, n, "%s%s-%s%s", dir, w->name, sha ? sha : "", sha ? WAL_OBJECT_SUFFIX : "");
	free(dir);
	return 0;
}

/* A key of the WAL layout into e (its name and digest); 0 if it has not
 * that shape. */
static int wal_key_parse(const char *key, struct wal_entry *e)
{
	const char *base = strrchr(key, '/'), *dash;
	size_t klen;
	char name[64];

	base = base ? base + 1 : key;
	klen = strlen(base);
	if (klen < HASH_SHA256_HEX_LEN + sizeof(WAL_OBJECT_SUFFIX) + 1 ||
	    strcmp(base + klen - (sizeof(WAL_OBJECT_SUFFIX) - 1), WAL_OBJECT_SUFFIX))
		return 0;
	dash = base + klen - (sizeof(WAL_OBJECT_SUFFIX) - 1) - HASH_SHA256_HEX_LEN - 1;
	if (*dash != '-' || (size_t)(dash - base) >= sizeof(name))
		return 0;
	memcpy(name, base, (size_t)(dash - base));
	name[dash - base] = '\0';
	if (wal_name_parse(name, &e->w)) {
		error_clear();
		return 0;
	}
	memcpy(e->sha256, dash + 1, HASH_SHA256_HEX_LEN);
	e->sha256[HASH_SHA256_HEX_LEN] = '\0';
	for (size_t i = 0; i < HASH_SHA256_HEX_LEN; i++)
		if (!((e->sha256[i] >= '0' && e->sha256[i] <= '9') ||
		      (e->sha256[i] >= 'a' && e->sha256[i] <= 'f')))
			return 0;
	e->key = key;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Finding one file                                                         */
/* ------------------------------------------------------------------------ */

struct wal_find {
	const char *name;
	char *key;
	char sha256[HASH_SHA256_HEX_LEN + 1];
	uint64_t stored_bytes;
	int others; /* copies of the same name with another digest */
	char other_sha[HASH_SHA256_HEX_LEN + 1];
};

static int wal_find_cb(void *ctx, const char *key, const struct storage_info *info)
{
	struct wal_find *f = ctx;
	struct wal_entry e;

	if (!wal_key_parse(key, &e) || strcmp(e.w.name, f->name))
		return 0;
	if (f->key) {
		f->others++;
		snprintf(f->other_sha, sizeof(f->other_sha), "%s", e.sha256);
		return 0;
	}
	f->key = strdup(key);
	if (!f->key)
		return error_set(CF_ERR_NOMEM, "out of memory");
	memcpy(f->sha256, e.sha256, sizeof(f->sha256));
	f->stored_bytes = info->size;
	return 0;
}

/* The copies of w in r (f->key: the first, NULL if none). */
static int wal_find(struct repo *r, const char *source, const struct wal_name *w,
                    struct wal_find *f)
{
	char *prefix = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	f->name = w->name;
	rc = wal_key(source, w, NULL, &prefix);
	if (!rc)
		rc = storage_list(repo_storage(r), prefix, wal_find_cb, f);
	free(prefix);
	if (rc) {
		free(f->key);
		f->key = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Push                                                                     */
/* ------------------------------------------------------------------------ */

/* Pushes everything in fd (from its start) into head, then finishes it. */
static int wal_feed(int fd, const char *path, struct filter *head)
{
	uint8_t *buf = malloc(WAL_READ_CHUNK);
	int rc = buf ? 0 : error_set(CF_ERR_NOMEM, "out of memory");

	if (!rc && lseek(fd, 0, SEEK_SET) < 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot read %s", path);
	while (!rc) {
		ssize_t n = read(fd, buf, WAL_READ_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = error_set_errno(CF_ERR_IO, errno, "cannot read %s", path);
			break;
		}
		if (n == 0)
			break;
		rc = cancel_check();
		if (!rc)
			rc = filter_write(head, buf, (size_t)n);
	}
	if (!rc)
		rc = filter_finish(head);
	free(buf);
	return rc;
}

/* The plaintext's SHA-256 and size. */
static int wal_digest(int fd, const char *path, char hex[HASH_SHA256_HEX_LEN + 1], uint64_t *size)
{
	struct filter *h = NULL;
	int rc = hash_filter_new(&h);

	if (!rc)
		rc = wal_feed(fd, path, h);
	if (!rc)
		hash_filter_result(h, hex, size);
	filter_chain_free(h);
	return rc;
}

int wal_file_digest(const char *path, char hex[HASH_SHA256_HEX_LEN + 1])
{
	uint64_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot open WAL file %s", path);
	rc = wal_digest(fd, path, hex, &size);
	close(fd);
	return rc;
}

/* Writes the file as key into r: zstd, age, the storage write. */
static int wal_store(const struct wal_archive *a, struct repo *r, int fd, const char *path,
                     const char *key)
{
	struct filter *zstd = NULL, *age = NULL, *sink = NULL;
	struct storage_write *w = NULL;
	int rc = storage_write_new(repo_storage(r), key, &w);

	if (!rc)
		rc = storage_filter_new(w, &sink);
	if (!rc)
		rc = age_encrypt_filter_new(a->rcpt, NULL, NULL, &age);
	if (!rc)
		rc = zstd_filter_compress_new(a->zstd_level, 0, &zstd);
	if (rc) {
		filter_chain_free(zstd);
		filter_chain_free(age);
		filter_chain_free(sink);
		return rc;
	}
	filter_chain(zstd, age, sink, NULL);
	rc = wal_feed(fd, path, zstd);
	filter_chain_free(zstd); /* without a finish, the storage write is aborted */
	return rc;
}

int wal_push_file(const struct wal_archive *a, const char *path, const char *name, size_t *stored,
                  unsigned long long *missed)
{
	char sha[HASH_SHA256_HEX_LEN + 1];
	struct wal_name w;
	uint64_t size = 0;
	char *key = NULL;
	int fd, rc, first_rc = 0;

	*stored = 0;
	*missed = 0;
	rc = wal_name_parse(name, &w);
	if (rc)
		return rc;
	/* Stored nowhere is never "stored": PostgreSQL would recycle it. */
	if (a->nrepos == 0 || a->copies_required == 0)
		return error_set(
		    CF_ERR_CONFIG,
		    "source %s has no repository to archive WAL file %s into (expected "
		    "a [repository] section)",
		    a->source, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot open WAL file %s", path);
	rc = wal_digest(fd, path, sha, &size);
	if (!rc)
		rc = wal_key(a->source, &w, sha, &key);
	for (size_t i = 0; !rc && i < a->nrepos; i++) {
		struct repo *r = a->repos[i];
		struct wal_find f;
		int rrc;

		if (!r) {
			log_warn("wal-push %s: repository %s could not be opened (see above)", name,
			         a->repo_errors && a->repo_errors[i] ? a->repo_errors[i] : "?");
			if (!first_rc)
				first_rc = CF_ERR_STORAGE;
			*missed |= 1ULL << i;
			continue;
		}
		rrc = wal_find(r, a->source, &w, &f);
		if (!rrc && f.key && (strcmp(f.sha256, sha) || f.others)) {
			/* Never overwritten, never a second version beside it. */
			rc = error_set(CF_ERR_EXISTS,
			               "WAL file %s is already archived in %s with other content "
			               "(SHA-256 %.16s..., this one %.16s...): is another cluster "
			               "archiving into source %s? Give each cluster its own source",
			               name, repo_location(r),
			               strcmp(f.sha256, sha) ? f.sha256 : f.other_sha, sha,
			               a->source);
			free(f.key);
			break;
		}
		if (!rrc && f.key) {
			log_info("wal-push %s: already archived in %s with the same content", name,
			         repo_location(r));
			free(f.key);
			(*stored)++;
			continue;
		}
		if (!rrc)
			rrc = wal_store(a, r, fd, path, key);
		if (!rrc) {
			(*stored)++;
			log_info("wal-push %s: %llu bytes stored in %s", name,
			         (unsigned long long)size, repo_location(r));
		} else if (rrc == CF_ERR_INTERRUPTED || rrc == CF_ERR_NOMEM) {
			rc = rrc;
		} else {
			log_warn("wal-push %s: %s: %s", name, repo_location(r), error_message());
			if (!first_rc)
				first_rc = rrc;
			*missed |= 1ULL << i;
		}
	}
	close(fd);
	free(key);
	if (!rc && *stored < a->copies_required)
		rc = error_set(first_rc ? first_rc : CF_ERR_STORAGE,
		               "WAL file %s is stored in %zu of the %zu repositories "
		               "copies_required asks for; PostgreSQL will retry it",
		               name, *stored, a->copies_required);
	return rc;
}

static int wal_copy_cb(void *ctx, const uint8_t *data, size_t len)
{
	int rc = cancel_check();

	return rc ? rc : filter_write(ctx, data, len);
}

int wal_copy_missing(const struct wal_archive *a, const char *name, unsigned long long missed,
                     unsigned long long *still)
{
	struct wal_find from = {0}, there;
	struct wal_name w;
	struct repo *src = NULL;
	int rc = wal_name_parse(name, &w);

	*still = missed;
	if (rc)
		return rc;
	for (size_t i = 0; i < a->nrepos && !src; i++) {
		if ((missed & (1ULL << i)) || !a->repos[i])
			continue;
		if (wal_find(a->repos[i], a->source, &w, &from) == 0 && from.key)
			src = a->repos[i];
		else
			error_clear();
	}
	if (!src) {
		log_warn("WAL file %s is in no repository to copy it from", name);
		return 0;
	}
	for (size_t i = 0; i < a->nrepos; i++) {
		struct storage_write *sw = NULL;
		struct filter *sink = NULL;
		int crc;

		if (!(missed & (1ULL << i)) || !a->repos[i])
			continue;
		crc = wal_find(a->repos[i], a->source, &w, &there);
		if (!crc && there.key) { /* made meanwhile */
			free(there.key);
			*still &= ~(1ULL << i);
			continue;
		}
		if (!crc)
			crc = storage_write_new(repo_storage(a->repos[i]), from.key, &sw);
		if (!crc)
			crc = storage_filter_new(sw, &sink);
		if (!crc)
			crc = storage_read(repo_storage(src), from.key, 0, UINT64_MAX, wal_copy_cb,
			                   sink);
		if (!crc)
			crc = filter_finish(sink);
		filter_chain_free(sink);
		if (crc == CF_ERR_INTERRUPTED || crc == CF_ERR_NOMEM) {
			free(from.key);
			return crc;
		}
		if (crc) {
			log_warn("WAL file %s: no copy in %s yet: %s", name,
			         repo_location(a->repos[i]), error_message());
			error_clear();
			continue;
		}
		*still &= ~(1ULL << i);
		log_info("WAL file %s copied from %s to %s", name, repo_location(src),
		         repo_location(a->repos[i]));
	}
	free(from.key);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Fetch                                                                    */
/* ------------------------------------------------------------------------ */

static int wal_read_cb(void *ctx, const uint8_t *data, size_t len)
{
	int rc = cancel_check();

	return rc ? rc : filter_write(ctx, data, len);
}

/* Reads key into fd through age and zstd, checking the plaintext's digest. */
static int wal_read(const struct wal_archive *a, struct repo *r, const struct wal_find *f, int fd,
                    const char *dest)
{
	struct filter *age = NULL, *zstd = NULL, *hash = NULL, *sink = NULL;
	char hex[HASH_SHA256_HEX_LEN + 1];
	int rc = age_decrypt_filter_new(a->ids, &age);

	if (!rc)
		rc = zstd_filter_decompress_new(&zstd);
	if (!rc)
		rc = hash_filter_new(&hash);
	if (!rc)
		rc = filter_fd_new(fd, dest, &sink);
	if (rc) {
		filter_chain_free(age);
		filter_chain_free(zstd);
		filter_chain_free(hash);
		filter_chain_free(sink);
		return rc;
	}
	filter_chain(age, zstd, hash, sink, NULL);
	rc = storage_read(repo_storage(r), f->key, 0, UINT64_MAX, wal_read_cb, age);
	if (!rc)
		rc = filter_finish(age);
	if (!rc) {
		hash_filter_result(hash, hex, NULL);
		if (strcmp(hex, f->sha256))
			rc = error_set(CF_ERR_INTEGRITY,
			               "%s in %s: its content's SHA-256 is %.16s..., its name says "
			               "%.16s...: the object is damaged or was replaced",
			               f->key, repo_location(r), hex, f->sha256);
	}
	if (rc && rc != CF_ERR_INTEGRITY && rc != CF_ERR_INTERRUPTED)
		error_set(rc, "%s in %s: %s", f->key, repo_location(r), error_message());
	filter_chain_free(age);
	return rc;
}

struct wal_later {
	const struct wal_name *w;
	char found[48];
};

static int wal_later_cb(void *ctx, const struct wal_entry *e)
{
	struct wal_later *l = ctx;

	if (e->w.kind == WAL_SEGMENT && e->w.tli == l->w->tli &&
	    strcmp(e->w.name, l->w->name) > 0 && !l->found[0])
		snprintf(l->found, sizeof(l->found), "%s", e->w.name);
	return 0;
}

/* A later segment of w's timeline in w's folder or the next one (a hole
 * when w is missing), into later ("" if none). */
static int wal_later(struct repo *r, const char *source, const struct wal_name *w, char later[48])
{
	struct wal_later l = {w, ""};
	char next[25];
	struct wal_name nw;
	char *dir = NULL;
	int rc;

	later[0] = '\0';
	for (int pass = 0; pass < 2 && !l.found[0]; pass++) {
		snprintf(next, sizeof(next), "%08X%08X%08X", w->tli, w->log + (unsigned)pass, 0U);
		if (wal_name_parse(next, &nw))
			return CF_ERR_INTERNAL;
		rc = repo_wal_dir(source, nw.name, &dir);
		if (!rc)
			rc = wal_list_dir(r, dir, wal_later_cb, &l);
		free(dir);
		dir = NULL;
		if (rc)
			return rc;
	}
	snprintf(later, 48, "%s", l.found);
	return 0;
}

int wal_fetch_file(const struct wal_archive *a, const char *name, const char *dest)
{
	struct wal_name w;
	char tmp[4096], later[48] = "";
	int rc, first_rc = 0, answered = 0;

	rc = wal_name_parse(name, &w);
	if (rc)
		return rc;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.coffer-tmp", dest) >= sizeof(tmp))
		return error_set(CF_ERR_USAGE, "path too long: %.64s...", dest);
	for (size_t i = 0; i < a->nrepos; i++) {
		struct repo *r = a->repos[i];
		struct wal_find f;
		int fd;

		if (!r) { /* it may hold the file: not an answer */
			if (!first_rc)
				first_rc = error_set(
				    CF_ERR_STORAGE, "repository %s could not be opened",
				    a->repo_errors && a->repo_errors[i] ? a->repo_errors[i] : "?");
			continue;
		}
		rc = wal_find(r, a->source, &w, &f);
		if (!rc && !f.key) {
			answered++;
			if (w.kind == WAL_SEGMENT && !later[0])
				rc = wal_later(r, a->source, &w, later);
			if (!rc)
				continue;
		}
		if (!rc) {
			fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (fd < 0)
				rc = error_set_errno(CF_ERR_IO, errno, "cannot create %s", tmp);
			else {
				rc = wal_read(a, r, &f, fd, dest);
				if (!rc && fsync(fd) < 0)
					rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s",
					                     tmp);
				if (close(fd) < 0 && !rc)
					rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s",
					                     tmp);
				if (!rc && rename(tmp, dest) < 0)
					rc = error_set_errno(CF_ERR_IO, errno, "cannot rename %s",
					                     tmp);
				if (rc)
					unlink(tmp);
			}
			free(f.key);
			if (!rc) {
				log_info("wal-fetch %s: restored from %s", name, repo_location(r));
				return 0;
			}
		}
		if (rc == CF_ERR_INTERRUPTED || rc == CF_ERR_NOMEM || rc == CF_ERR_IO ||
		    rc == CF_ERR_NOSPACE)
			return rc;
		log_warn("wal-fetch %s: %s: %s", name, repo_location(r), error_message());
		if (!first_rc)
			first_rc = rc;
	}
	if (later[0])
		return error_set(CF_ERR_INTEGRITY,
		                 "WAL segment %s of source %s is missing from the archive, but a "
		                 "later one (%s) is there: the archive has a hole, and a recovery "
		                 "through it would stop early. Find the segment (the server's "
		                 "pg_wal, another repository) or restore to a point before it",
		                 name, a->source, later);
	if (first_rc && !answered)
		return error_set(first_rc,
		                 "WAL file %s of source %s: no repository could be read "
		                 "(see the warnings above)",
		                 name, a->source);
	return error_set(CF_ERR_NOTFOUND, "WAL file %s of source %s is not in the archive", name,
	                 a->source);
}

/* ------------------------------------------------------------------------ */
/* Listing                                                                  */
/* ------------------------------------------------------------------------ */

struct wal_list_ctx {
	wal_list_cb cb;
	void *ctx;
};

static int wal_list_one(void *ctx, const char *key, const struct storage_info *info)
{
	struct wal_list_ctx *l = ctx;
	struct wal_entry e;

	if (!wal_key_parse(key, &e))
		return 0;
	e.stored_bytes = info->size;
	e.mtime_ms = info->mtime_ms;
	return l->cb(l->ctx, &e);
}

int wal_list_dir(struct repo *r, const char *prefix, wal_list_cb cb, void *ctx)
{
	struct wal_list_ctx l = {cb, ctx};

	return storage_list(repo_storage(r), prefix, wal_list_one, &l);
}

int wal_list(struct repo *r, const char *source, wal_list_cb cb, void *ctx)
{
	char *dir = NULL;
	int rc = repo_wal_dir(source, NULL, &dir);

	/* "<source>/wal/history/": the prefix of the whole archive is its parent. */
	if (!rc) {
		char *slash = dir + strlen(dir) - 1;

		*slash = '\0';
		slash = strrchr(dir, '/');
		slash[1] = '\0';
		rc = wal_list_dir(r, dir, cb, ctx);
	}
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The catalog's ranges                                                     */
/* ------------------------------------------------------------------------ */

static void wal_meta_name(const char *source, char *out, size_t size)
{
	snprintf(out, size, "wal/%s", source);
}

struct wal_note_ctx {
	const struct wal_name *w;
	uint64_t seg_size;
	int64_t when_ms;
};

/* Adds segno to the sorted, disjoint ranges [[first, last], ...] of arr. */
static int wal_ranges_add(json_t *arr, uint64_t segno)
{
	size_t i, n = json_array_size(arr);

	for (i = 0; i < n; i++) {
		json_t *r = json_array_get(arr, i);
		uint64_t first = (uint64_t)json_integer_value(json_array_get(r, 0));
		uint64_t last = (uint64_t)json_integer_value(json_array_get(r, 1));

		if (segno >= first && segno <= last)
			return 0;
		if (segno == last + 1) {
			json_array_set_new(r, 1, json_integer((json_int_t)segno));
			/* Joins the next range when it now touches it. */
			if (i + 1 < n) {
				json_t *nx = json_array_get(arr, i + 1);

				if ((uint64_t)json_integer_value(json_array_get(nx, 0)) ==
				    segno + 1) {
					json_array_set(r, 1, json_array_get(nx, 1));
					json_array_remove(arr, i + 1);
				}
			}
			return 0;
		}
		if (segno + 1 == first) {
			json_array_set_new(r, 0, json_integer((json_int_t)segno));
			return 0;
		}
		if (segno < first)
			break;
	}
	return json_array_insert_new(arr, i,
	                             json_pack("[I,I]", (json_int_t)segno, (json_int_t)segno))
	           ? -1
	           : 0;
}

/* Adds file w (stored at when_ms) to the state doc. */
static int wal_doc_add(json_t *doc, const struct wal_name *w, uint64_t seg_size, int64_t when_ms)
{
	json_t *tls = json_object_get(doc, "timelines"), *arr;
	char tli[9];
	int bad = 0;

	if (!json_is_object(tls)) {
		tls = json_object();
		bad = json_object_set_new(doc, "timelines", tls);
	}
	if (!seg_size)
		seg_size = (uint64_t)json_integer_value(json_object_get(doc, "segment_size"));
	if (!seg_size)
		seg_size = 16 * 1024 * 1024;
	snprintf(tli, sizeof(tli), "%08X", w->tli);
	if (!bad && w->kind == WAL_SEGMENT) {
		const char *cur = json_string_value(json_object_get(doc, "newest"));

		arr = json_object_get(tls, tli);
		if (!json_is_array(arr)) {
			arr = json_array();
			bad = json_object_set_new(tls, tli, arr);
		}
		bad = bad || wal_ranges_add(arr, wal_segno(w, seg_size));
		bad = bad ||
		      json_object_set_new(doc, "segment_size", json_integer((json_int_t)seg_size));
		/* The newest: by name (a later timeline sorts after). */
		if (!bad && (!cur || strcmp(w->name, cur) >= 0))
			bad = json_object_set_new(doc, "newest", json_string(w->name)) ||
			      json_object_set_new(doc, "newest_ms", json_integer(when_ms));
	}
	if (!bad && when_ms > json_integer_value(json_object_get(doc, "last_push_ms")))
		bad = json_object_set_new(doc, "last_push_ms", json_integer(when_ms));
	return bad ? error_set(CF_ERR_NOMEM, "out of memory") : 0;
}

static int wal_note_update(void *ctx, const char *old, char **out)
{
	struct wal_note_ctx *n = ctx;
	json_t *doc = old ? json_loads(old, 0, NULL) : NULL;
	int rc;

	*out = NULL;
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	if (!doc)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = wal_doc_add(doc, n->w, n->seg_size, n->when_ms);
	if (!rc && !(*out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	json_decref(doc);
	return rc;
}

int wal_note(struct catalog *c, const char *source, const struct wal_name *w, uint64_t seg_size,
             int64_t when_ms)
{
	struct wal_note_ctx n = {w, seg_size, when_ms};
	char name[300];

	wal_meta_name(source, name, sizeof(name));
	return catalog_meta_update_str(c, name, wal_note_update, &n);
}

int wal_state(struct catalog *c, const char *source, char **json)
{
	char name[300];
	int rc;

	wal_meta_name(source, name, sizeof(name));
	rc = catalog_meta_get_str(c, name, json);
	if (rc == CF_ERR_NOTFOUND) {
		*json = NULL;
		rc = 0;
	}
	return rc;
}

struct wal_rebuild_ctx {
	json_t *doc;
	size_t files;
};

static int wal_rebuild_cb(void *ctx, const struct wal_entry *e)
{
	struct wal_rebuild_ctx *r = ctx;

	r->files++;
	return wal_doc_add(r->doc, &e->w, 0, e->mtime_ms);
}

int wal_rebuild(struct catalog *c, struct repo *r, const char *source, size_t *files)
{
	struct wal_rebuild_ctx x = {json_object(), 0};
	char name[300], *old = NULL, *text = NULL;
	int rc;

	*files = 0;
	if (!x.doc)
		return error_set(CF_ERR_NOMEM, "out of memory");
	/* The segment size is in no key: the one a push recorded, else 16 MiB. */
	rc = wal_state(c, source, &old);
	if (!rc && old) {
		json_t *o = json_loads(old, 0, NULL);

		if (json_object_get(o, "segment_size"))
			json_object_set(x.doc, "segment_size", json_object_get(o, "segment_size"));
		json_decref(o);
	}
	if (!rc)
		rc = wal_list(r, source, wal_rebuild_cb, &x);
	wal_meta_name(source, name, sizeof(name));
	if (!rc && x.files && !(text = json_dumps(x.doc, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && text)
		rc = catalog_meta_set_str(c, name, text);
	else if (!rc)
		rc = catalog_meta_delete(c, name);
	*files = x.files;
	free(old);
	free(text);
	json_decref(x.doc);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Copies still to be made                                                  */
/* ------------------------------------------------------------------------ */

struct wal_pending_ctx {
	const char *name;
	const char *const *repos;
	size_t n;
	int add;
};

static int wal_pending_update(void *ctx, const char *old, char **out)
{
	struct wal_pending_ctx *x = ctx;
	json_t *doc = old ? json_loads(old, 0, NULL) : NULL, *arr;
	int bad = 0;

	*out = NULL;
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	if (!doc)
		return error_set(CF_ERR_NOMEM, "out of memory");
	arr = json_object_get(doc, x->name);
	if (!json_is_array(arr)) {
		arr = json_array();
		bad = json_object_set_new(doc, x->name, arr);
	}
	for (size_t i = 0; !bad && i < x->n; i++) {
		size_t j, len = json_array_size(arr);

		for (j = 0; j < len; j++)
			if (!strcmp(json_string_value(json_array_get(arr, j)) ?: "", x->repos[i]))
				break;
		if (x->add && j == len)
			bad = json_array_append_new(arr, json_string(x->repos[i]));
		else if (!x->add && j < len)
			bad = json_array_remove(arr, j);
	}
	if (!bad && json_array_size(arr) == 0)
		bad = json_object_del(doc, x->name);
	if (!bad)
		*out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}

int wal_pending_change(struct catalog *c, const char *source, const char *name,
                       const char *const *repos, size_t n, int add)
{
	struct wal_pending_ctx x = {name, repos, n, add};
	char meta[300];

	snprintf(meta, sizeof(meta), "wal-pending/%s", source);
	return catalog_meta_update_str(c, meta, wal_pending_update, &x);
}

int wal_pending(struct catalog *c, const char *source, char **json)
{
	char meta[300];
	int rc;

	snprintf(meta, sizeof(meta), "wal-pending/%s", source);
	rc = catalog_meta_get_str(c, meta, json);
	if (rc == CF_ERR_NOTFOUND || (!rc && !strcmp(*json, "{}"))) {
		if (!rc)
			free(*json);
		*json = NULL;
		error_clear();
		rc = 0;
	}
	return rc;
}

int wal_base_start(const struct catalog_backup *b, uint64_t *segno, uint32_t *tli,
                   uint64_t *seg_size)
{
	json_t *m = b->meta_json ? json_loads(b->meta_json, 0, NULL) : NULL;
	const char *start = json_string_value(json_object_get(m, "start_lsn"));
	uint64_t lsn = 0;
	int rc = 0;

	*seg_size = (uint64_t)json_integer_value(json_object_get(m, "wal_segment_size"));
	*tli = (uint32_t)json_integer_value(json_object_get(m, "timeline"));
	if (!*seg_size || !start || wal_lsn_parse(start, &lsn)) {
		error_clear();
		rc = error_set(CF_ERR_FORMAT,
		               "base backup %s has no start LSN or segment size in its record",
		               b->id);
	}
	*segno = *seg_size ? lsn / *seg_size : 0;
	json_decref(m);
	return rc;
}
