/*
 * posix_driver: the "posix" storage driver. A repository is an existing local
 * directory; an object key is a path relative to it.
 *
 * A write goes to a temporary file ".<name>.tmp.<pid>.<random>" beside the
 * final name, is fsynced, and is published with renameat2(RENAME_NOREPLACE)
 * (or link() + unlink() where the file system lacks it), so an existing
 * object is never replaced and a crash leaves at worst a temporary file,
 * which listings skip and storage_cleanup() removes. Every path is resolved
 * relative to a descriptor of the repository directory, so a change of the
 * working directory cannot redirect it.
 *
 * It does not lock: two writers of one key are settled by the no-replace
 * publish, and the loser gets CF_ERR_EXISTS.
 */
#include "storage/storage_intern.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define POSIX_DIR_MODE 0750
#define POSIX_FILE_MODE 0640
#define POSIX_CHUNK (1024 * 1024)
/* The key's last part is cut to this length in the temporary file name, so
 * the name stays under NAME_MAX whatever the key. */
#define POSIX_TMP_BASE_MAX 128
/* Attempts at creating the parent directories and the temporary file: a
 * concurrent delete may remove a directory that was just found empty. */
#define POSIX_CREATE_ATTEMPTS 5

struct posix_repo {
	int dirfd;
	char *root;     /* absolute path, for messages */
	char *describe; /* "posix:<root>" */
};

struct posix_write {
	struct posix_repo *repo;
	int fd;         /* -1 once closed */
	int failed;     /* a write failed; the temporary file is already gone */
	int fsync_dirs; /* how many directories up from the file need an fsync */
	char key[STORAGE_KEY_MAX + 1];
	char tmp[STORAGE_KEY_MAX + POSIX_TMP_BASE_MAX + 64]; /* relative to the root */
};

static int posix_errno_code(int err)
{
	return err == ENOSPC || err == EDQUOT ? CF_ERR_NOSPACE : CF_ERR_IO;
}

/* Names the temporary files of interrupted writes, so list skips them and
 * cleanup removes them. */
static int posix_is_tmp_name(const char *name)
{
	return name[0] == '.' && strstr(name, ".tmp.") != NULL;
}

/* Length of the directory part of key ("a/b" for "a/b/c"), 0 for none. */
static size_t posix_dir_len(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash ? (size_t)(slash - key) : 0;
}

static int posix_open(const struct storage_options *opts, void **drv)
{
	struct posix_repo *r = NULL;
	char *root = NULL;
	int rc = 0;
	size_t n;

	*drv = NULL;
	if (!opts->posix.path || !opts->posix.path[0])
		return error_set(CF_ERR_CONFIG, "posix storage needs a repository path");
	root = realpath(opts->posix.path, NULL);
	if (!root) {
		if (errno == ENOENT || errno == ENOTDIR)
			return error_set(CF_ERR_NOTFOUND, "repository directory %s does not exist",
			                 opts->posix.path);
		return error_set_errno(errno == ENOMEM ? CF_ERR_NOMEM : CF_ERR_IO, errno,
		                       "cannot resolve repository directory %s", opts->posix.path);
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = error_set(CF_ERR_NOMEM, "out of memory opening %s", root);
		goto out;
	}
	r->dirfd = -1;
	r->root = root;
	root = NULL;
	n = strlen(r->root) + sizeof("posix:");
	r->describe = malloc(n);
	if (!r->describe) {
		rc = error_set(CF_ERR_NOMEM, "out of memory opening %s", r->root);
		goto out;
	}
	snprintf(r->describe, n, "posix:%s", r->root);
	r->dirfd = open(r->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0) {
		if (errno == ENOTDIR)
			rc = error_set(CF_ERR_CONFIG, "repository %s is not a directory", r->root);
		else
			rc = error_set_errno(CF_ERR_IO, errno,
			                     "cannot open repository directory %s", r->root);
		goto out;
	}
out:
	if (rc && r) {
		if (r->dirfd >= 0)
			close(r->dirfd);
		free(r->describe);
		free(r->root);
		free(r);
		r = NULL;
	}
	free(root);
	*drv = r;
	return rc;
}

static void posix_free(void *drv)
{
	struct posix_repo *r = drv;

	if (!r)
		return;
	close(r->dirfd);
	free(r->describe);
	free(r->root);
	free(r);
}

static const char *posix_describe(void *drv)
{
	return ((struct posix_repo *)drv)->describe;
}

/*
 * Removes the directories above key that are now empty, deepest first,
 * stopping at the first that is not (or at the repository root). Failures
 * are expected (ENOTEMPTY, a concurrent writer) and ignored: an empty
 * directory is untidy, not wrong.
 */
static void posix_prune_dirs(struct posix_repo *r, const char *key)
{
	char dir[STORAGE_KEY_MAX + 1];
	size_t len = posix_dir_len(key);

	if (len == 0 || len >= sizeof(dir))
		return;
	memcpy(dir, key, len);
	dir[len] = '\0';
	for (;;) {
		if (unlinkat(r->dirfd, dir, AT_REMOVEDIR) != 0)
			return;
		len = posix_dir_len(dir);
		if (len == 0)
			return;
		dir[len] = '\0';
	}
}

/*
 * Creates the directories above key. Returns in *created how many levels
 * were made here (counted from the deepest), so commit knows which parent
 * directories need an fsync for the new entries to be durable.
 */
static int posix_make_dirs(struct posix_repo *r, const char *key, int *created)
{
	char dir[STORAGE_KEY_MAX + 1];
	size_t len = posix_dir_len(key);
	int levels = 0, made = 0;

	*created = 0;
	if (len == 0)
		return 0;
	memcpy(dir, key, len);
	dir[len] = '\0';
	for (size_t i = 0; i <= len; i++) {
		if (dir[i] != '/' && dir[i] != '\0')
			continue;
		dir[i] = '\0';
		levels++;
		if (mkdirat(r->dirfd, dir, POSIX_DIR_MODE) == 0) {
			/* Every level below a created one is created too. */
			if (!made)
				made = levels;
		} else if (errno != EEXIST) {
			return error_set_errno(posix_errno_code(errno), errno,
			                       "cannot create directory %s/%s", r->root, dir);
		}
		if (i < len)
			dir[i] = '/';
	}
	if (made)
		*created = levels - made + 1;
	return 0;
}

static void posix_tmp_name(struct posix_write *w)
{
	const char *base = w->key + posix_dir_len(w->key);
	size_t dlen = posix_dir_len(w->key);
	uint8_t rnd[8];
	char hex[2 * sizeof(rnd) + 1];

	if (*base == '/')
		base++;
	/* getrandom() for this never blocks after boot; if it fails anyway,
	 * the time and address still differ between attempts, and O_EXCL
	 * catches a collision. */
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t v = (uint64_t)time_real_ms() ^ ((uint64_t)(uintptr_t)w << 16) ^
		             (uint64_t)(time_mono() * 1e9);
		memcpy(rnd, &v, sizeof(rnd));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(w->tmp, sizeof(w->tmp), "%.*s%s.%.*s.tmp.%ld.%s", (int)dlen, w->key,
	         dlen ? "/" : "", POSIX_TMP_BASE_MAX, base, (long)getpid(), hex);
}

static int posix_write_new(void *drv, const char *key, void **wctx)
{
	struct posix_repo *r = drv;
	struct posix_write *w;
	struct stat st;
	int rc = 0;

	*wctx = NULL;
	/* Such a part would be taken for a temporary file: hidden from
	 * listings and removed by cleanup. */
	for (const char *p = key; *p;) {
		size_t plen = strcspn(p, "/");

		if (p[0] == '.' && memmem(p, plen, ".tmp.", 5))
			return error_set(
			    CF_ERR_STORAGE,
			    "object key %s has a part that looks like a temporary file", key);
		p += plen;
		if (*p == '/')
			p++;
	}
	if (fstatat(r->dirfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return error_set(CF_ERR_EXISTS, "object %s already exists in %s", key, r->root);
	if (errno != ENOENT && errno != ENOTDIR)
		return error_set_errno(CF_ERR_IO, errno, "cannot check for %s/%s", r->root, key);

	w = calloc(1, sizeof(*w));
	if (!w)
		return error_set(CF_ERR_NOMEM, "out of memory writing %s", key);
	w->repo = r;
	w->fd = -1;
	snprintf(w->key, sizeof(w->key), "%s", key);
	for (int attempt = 0; attempt < POSIX_CREATE_ATTEMPTS; attempt++) {
		rc = posix_make_dirs(r, key, &w->fsync_dirs);
		if (rc)
			break;
		posix_tmp_name(w);
		w->fd = openat(r->dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		               POSIX_FILE_MODE);
		if (w->fd >= 0) {
			struct stat st;

			/* The lock marks the temporary file as in use: cleanup skips
			 * locked files, and the kernel drops the lock when the writer
			 * dies, however it dies. A cleanup that slipped in between
			 * create and lock has unlinked the file: start again. */
			if (flock(w->fd, LOCK_EX | LOCK_NB) == 0 && fstat(w->fd, &st) == 0 &&
			    st.st_nlink > 0)
				break;
			close(w->fd);
			w->fd = -1;
			errno = EEXIST;
		}
		/* ENOENT: a concurrent delete pruned the directory just made;
		 * EEXIST: a random-name collision. Both deserve another try. */
		if (errno != ENOENT && errno != EEXIST) {
			rc = error_set_errno(posix_errno_code(errno), errno,
			                     "cannot create temporary file for %s in %s", key,
			                     r->root);
			break;
		}
	}
	if (!rc && w->fd < 0)
		rc = error_set(CF_ERR_STORAGE, "cannot create temporary file for %s in %s", key,
		               r->root);
	if (rc) {
		free(w);
		return rc;
	}
	*wctx = w;
	return 0;
}

/* Closes and removes the temporary file after a failure, keeping errno. */
static void posix_write_discard(struct posix_write *w)
{
	int saved = errno;

	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
		unlinkat(w->repo->dirfd, w->tmp, 0);
		posix_prune_dirs(w->repo, w->key);
	}
	w->failed = 1;
	errno = saved;
}

static int posix_write_data(void *wctx, const void *data, size_t len)
{
	struct posix_write *w = wctx;
	const uint8_t *p = data;

	if (w->failed)
		return error_set(CF_ERR_STORAGE, "write to %s/%s after an earlier failure",
		                 w->repo->root, w->key);
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			posix_write_discard(w);
			return error_set_errno(posix_errno_code(errno), errno,
			                       "cannot write object %s/%s", w->repo->root, w->key);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Publishes the temporary file under the key without replacing anything. */
static int posix_publish(struct posix_write *w)
{
	struct posix_repo *r = w->repo;

	if (renameat2(r->dirfd, w->tmp, r->dirfd, w->key, RENAME_NOREPLACE) == 0)
		return 0;
	/* EINVAL/ENOSYS: this file system (or kernel) has no RENAME_NOREPLACE.
	 * link() also refuses an existing target, and leaves the temporary
	 * name to be removed. */
	if (errno == EINVAL || errno == ENOSYS) {
		if (linkat(r->dirfd, w->tmp, r->dirfd, w->key, 0) == 0) {
			unlinkat(r->dirfd, w->tmp, 0);
			return 0;
		}
	}
	if (errno == EEXIST)
		return error_set(
		    CF_ERR_EXISTS,
		    "object %s already exists in %s (another writer committed it first)", w->key,
		    r->root);
	return error_set_errno(posix_errno_code(errno), errno, "cannot publish object %s/%s",
	                       r->root, w->key);
}

/* fsyncs the directory holding the object and those that commit created. */
static int posix_sync_dirs(struct posix_write *w)
{
	char dir[STORAGE_KEY_MAX + 1];
	size_t len = posix_dir_len(w->key);
	int rc = 0;

	memcpy(dir, w->key, len);
	dir[len] = '\0';
	for (int i = 0; i <= w->fsync_dirs && !rc; i++) {
		int fd =
		    openat(w->repo->dirfd, len ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return error_set_errno(CF_ERR_IO, errno, "cannot open directory %s/%s",
			                       w->repo->root, dir);
		/* EINVAL: the file system cannot sync directories at all. */
		if (fsync(fd) != 0 && errno != EINVAL)
			rc = error_set_errno(posix_errno_code(errno), errno,
			                     "cannot fsync directory %s/%s", w->repo->root, dir);
		close(fd);
		if (len == 0)
			break;
		len = posix_dir_len(dir);
		dir[len] = '\0';
	}
	return rc;
}

static int posix_write_commit(void *wctx)
{
	struct posix_write *w = wctx;
	struct posix_repo *r = w->repo;
	int rc = 0, fd = w->fd;

	if (w->failed) {
		rc = error_set(CF_ERR_STORAGE, "cannot commit %s/%s after a failed write", r->root,
		               w->key);
		goto out;
	}
	if (fsync(fd) != 0) {
		rc = error_set_errno(posix_errno_code(errno), errno, "cannot fsync object %s/%s",
		                     r->root, w->key);
		posix_write_discard(w);
		goto out;
	}
	/* close() can report a deferred write error on network file systems. */
	w->fd = -1;
	if (close(fd) != 0) {
		rc = error_set_errno(posix_errno_code(errno), errno, "cannot close object %s/%s",
		                     r->root, w->key);
		unlinkat(r->dirfd, w->tmp, 0);
		posix_prune_dirs(r, w->key);
		goto out;
	}
	rc = posix_publish(w);
	if (rc) {
		unlinkat(r->dirfd, w->tmp, 0);
		goto out;
	}
	rc = posix_sync_dirs(w);
	if (rc) {
		/* The caller is told the write failed, so it will not record the
		 * object; one we cannot vouch for would only be an orphan. Nobody
		 * else can own the name, since the publish refused to replace. */
		unlinkat(r->dirfd, w->key, 0);
		posix_prune_dirs(r, w->key);
	}
out:
	free(w);
	return rc;
}

static void posix_write_abort(void *wctx)
{
	struct posix_write *w = wctx;

	if (!w)
		return;
	posix_write_discard(w);
	free(w);
}

/*
 * 0 if no folder on the way to key (below the root) is a symbolic link, else
 * -1 with errno ELOOP (or the error of the check): the repository is
 * untrusted, and a link planted in it must not lead reads or deletions
 * outside it. posix_open_object() does it atomically with openat2().
 */
static int posix_dirs_plain(struct posix_repo *r, const char *key)
{
	char part[STORAGE_KEY_MAX + 1];
	struct stat st;

	for (const char *s = strchr(key, '/'); s; s = strchr(s + 1, '/')) {
		memcpy(part, key, (size_t)(s - key));
		part[s - key] = '\0';
		if (fstatat(r->dirfd, part, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
			return -1;
		}
	}
	return 0;
}

/* Opens an object for reading: never through a symbolic link, never
 * blocking on a FIFO planted where an object should be. */
static int posix_open_object(struct posix_repo *r, const char *key)
{
	struct open_how how;
	int fd;

	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, r->dirfd, key, &how, sizeof(how));
	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
		/* A kernel before 5.6, or a seccomp filter without openat2. */
		if (posix_dirs_plain(r, key) != 0)
			return -1;
		fd = openat(r->dirfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	}
	return fd;
}

static int posix_read(void *drv, const char *key, uint64_t offset, uint64_t length,
                      storage_read_cb cb, void *ctx)
{
	struct posix_repo *r = drv;
	uint8_t *chunk = NULL;
	struct stat st;
	int fd, rc = 0;

	fd = posix_open_object(r, key);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return error_set(CF_ERR_NOTFOUND, "object %s does not exist in %s", key,
			                 r->root);
		return error_set_errno(CF_ERR_IO, errno, "cannot open object %s/%s", r->root, key);
	}
	if (fstat(fd, &st) != 0) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot stat object %s/%s", r->root, key);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = error_set(CF_ERR_NOTFOUND, "object %s does not exist in %s (not a file)", key,
		               r->root);
		goto out;
	}
	chunk = malloc(POSIX_CHUNK);
	if (!chunk) {
		rc = error_set(CF_ERR_NOMEM, "out of memory reading %s", key);
		goto out;
	}
	while (length > 0 && !rc) {
		size_t want = length < POSIX_CHUNK ? (size_t)length : POSIX_CHUNK;
		ssize_t n;

		if (offset > (uint64_t)INT64_MAX)
			break;
		n = pread(fd, chunk, want, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = error_set_errno(CF_ERR_IO, errno, "cannot read object %s/%s", r->root,
			                     key);
			break;
		}
		if (n == 0)
			break; /* the end of the object */
		offset += (uint64_t)n;
		length -= (uint64_t)n;
		rc = cb(ctx, chunk, (size_t)n);
	}
out:
	free(chunk);
	close(fd);
	return rc;
}

static int posix_head(void *drv, const char *key, struct storage_info *info)
{
	struct posix_repo *r = drv;
	struct stat st;

	if (posix_dirs_plain(r, key) != 0 ||
	    fstatat(r->dirfd, key, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return error_set(CF_ERR_NOTFOUND, "object %s does not exist in %s", key,
			                 r->root);
		return error_set_errno(CF_ERR_IO, errno, "cannot stat object %s/%s", r->root, key);
	}
	if (!S_ISREG(st.st_mode))
		return error_set(CF_ERR_NOTFOUND, "object %s does not exist in %s (not a file)",
		                 key, r->root);
	info->size = (uint64_t)st.st_size;
	info->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	return 0;
}

static int posix_remove(void *drv, const char *key)
{
	struct posix_repo *r = drv;

	if (posix_dirs_plain(r, key) != 0) {
		if (errno == ENOENT)
			return 0;
		return error_set_errno(
		    CF_ERR_STORAGE, errno,
		    "refusing to delete %s/%s: a folder on the way is not a folder", r->root, key);
	}
	if (unlinkat(r->dirfd, key, 0) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		if (errno == EISDIR)
			return error_set(CF_ERR_STORAGE, "cannot delete %s/%s: it is a directory",
			                 r->root, key);
		return error_set_errno(CF_ERR_IO, errno, "cannot delete object %s/%s", r->root,
		                       key);
	}
	posix_prune_dirs(r, key);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Walking the tree (list and cleanup)                                        */
/* ------------------------------------------------------------------------ */

struct posix_entry {
	char *name;
	int is_dir;
	struct storage_info info;
};

/* Called for each regular file found; key is relative to the root. */
typedef int (*posix_walk_cb)(struct posix_repo *r, void *ctx, const char *key, int is_tmp,
                             const struct storage_info *info);

/*
 * Orders entries as their keys sort: a directory "a" holds keys "a/...", so
 * it sorts as "a/" would. Otherwise "a.x" (0x2e) would come after "a/b"
 * (0x2f) in a plain name sort.
 */
static int posix_entry_cmp(const void *pa, const void *pb)
{
	const struct posix_entry *a = pa, *b = pb;

	for (size_t i = 0;; i++) {
		int x = (unsigned char)a->name[i], y = (unsigned char)b->name[i];

		/* Past its end, a directory name goes on with a '/'. */
		if (!x && a->is_dir)
			x = '/';
		if (!y && b->is_dir)
			y = '/';
		if (x != y || !a->name[i] || !b->name[i])
			return x - y;
	}
}

static void posix_entries_free(struct posix_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/*
 * Walks the directory open on dfd (taken over and closed here), whose key
 * path is key[0..klen) (empty or ending in '/'). Only names starting with
 * match are taken at this level; below it everything is. Symbolic links and
 * other non-regular files are skipped, never followed.
 */
static int posix_walk_dir(struct posix_repo *r, int dfd, char *key, size_t klen, const char *match,
                          posix_walk_cb cb, void *ctx)
{
	struct posix_entry *ents = NULL, *grown;
	size_t n = 0, cap = 0, mlen = strlen(match);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	d = fdopendir(dfd);
	if (!d) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot read directory %s/%.*s", r->root,
		                     (int)klen, key);
		close(dfd);
		return rc;
	}
	/* Read the whole directory first: it is sorted before any callback
	 * runs, and cleanup may change it while we go. */
	for (;;) {
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = error_set_errno(CF_ERR_IO, errno,
				                     "cannot read directory %s/%.*s", r->root,
				                     (int)klen, key);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, match, mlen) != 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile */
			rc = error_set_errno(CF_ERR_IO, errno, "cannot stat %s/%.*s%s", r->root,
			                     (int)klen, key, de->d_name);
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			grown = realloc(ents, cap * sizeof(*ents));
			if (!grown) {
				rc = error_set(CF_ERR_NOMEM, "out of memory listing %s", r->root);
				break;
			}
			ents = grown;
		}
		ents[n].name = strdup(de->d_name);
		if (!ents[n].name) {
			rc = error_set(CF_ERR_NOMEM, "out of memory listing %s", r->root);
			break;
		}
		ents[n].is_dir = S_ISDIR(st.st_mode);
		ents[n].info.size = (uint64_t)st.st_size;
		ents[n].info.mtime_ms =
		    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		n++;
	}
	if (!rc && n > 1)
		qsort(ents, n, sizeof(*ents), posix_entry_cmp);

	for (size_t i = 0; i < n && !rc; i++) {
		size_t nlen = strlen(ents[i].name);

		/* Deeper than any valid key: not something this driver wrote. */
		if (klen + nlen + 1 > STORAGE_KEY_MAX)
			continue;
		memcpy(key + klen, ents[i].name, nlen + 1);
		if (ents[i].is_dir) {
			int sub = openat(dirfd(d), ents[i].name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				if (errno == ENOENT)
					continue;
				rc = error_set_errno(CF_ERR_IO, errno,
				                     "cannot open directory %s/%s", r->root, key);
				break;
			}
			key[klen + nlen] = '/';
			key[klen + nlen + 1] = '\0';
			rc = posix_walk_dir(r, sub, key, klen + nlen + 1, "", cb, ctx);
		} else {
			rc = cb(r, ctx, key, posix_is_tmp_name(ents[i].name), &ents[i].info);
		}
	}
	key[klen] = '\0';
	posix_entries_free(ents, n);
	closedir(d);
	return rc;
}

/* Walks the keys starting with prefix (already checked by storage.c). */
static int posix_walk(struct posix_repo *r, const char *prefix, posix_walk_cb cb, void *ctx)
{
	char key[STORAGE_KEY_MAX + 2];
	const char *slash = strrchr(prefix, '/');
	size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
	int dfd, sub, err;

	/* The prefix splits into the directory to open ("src/") and the start
	 * of the names to take in it ("2026"). The directory is opened one part
	 * at a time so that no symbolic link on the way is followed. A fresh
	 * descriptor (not a dup) keeps the root's read position out of it. */
	memcpy(key, prefix, dlen);
	key[dlen] = '\0';
	dfd = openat(r->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < dlen && dfd >= 0;) {
		size_t plen = strcspn(key + i, "/");

		key[i + plen] = '\0';
		sub = openat(dfd, key + i, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = errno;
		key[i + plen] = '/';
		close(dfd);
		dfd = sub;
		errno = err;
		i += plen + 1;
	}
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0; /* nothing has this prefix */
		return error_set_errno(CF_ERR_IO, errno, "cannot open directory %s/%s", r->root,
		                       key);
	}
	return posix_walk_dir(r, dfd, key, dlen, prefix + dlen, cb, ctx);
}

struct posix_list_ctx {
	storage_list_cb cb;
	void *ctx;
};

static int posix_list_one(struct posix_repo *r, void *ctx, const char *key, int is_tmp,
                          const struct storage_info *info)
{
	struct posix_list_ctx *c = ctx;

	(void)r;
	return is_tmp ? 0 : c->cb(c->ctx, key, info);
}

static int posix_list(void *drv, const char *prefix, storage_list_cb cb, void *ctx)
{
	struct posix_list_ctx c = {cb, ctx};

	return posix_walk(drv, prefix, posix_list_one, &c);
}

struct posix_cleanup_ctx {
	int64_t cutoff_ms;
	unsigned removed;
};

static int posix_cleanup_one(struct posix_repo *r, void *ctx, const char *key, int is_tmp,
                             const struct storage_info *info)
{
	struct posix_cleanup_ctx *c = ctx;
	int fd, rc = 0;

	if (!is_tmp || info->mtime_ms >= c->cutoff_ms)
		return 0;
	/* A writer holds an exclusive lock on its temporary file until it
	 * commits or aborts: a file we cannot lock is still being written. */
	fd = openat(r->dirfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT
		           ? 0
		           : error_set_errno(CF_ERR_IO, errno, "cannot open temporary file %s/%s",
		                             r->root, key);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return 0;
	}
	if (unlinkat(r->dirfd, key, 0) != 0) {
		if (errno != ENOENT) /* ENOENT: its writer finished or another cleanup won */
			rc = error_set_errno(CF_ERR_IO, errno, "cannot remove temporary file %s/%s",
			                     r->root, key);
		close(fd);
		return rc;
	}
	close(fd);
	c->removed++;
	posix_prune_dirs(r, key);
	return 0;
}

static int posix_cleanup(void *drv, const char *prefix, int64_t older_than_ms, int64_t now_ms,
                         unsigned *removed)
{
	struct posix_cleanup_ctx c = {now_ms - older_than_ms, 0};
	int rc = posix_walk(drv, prefix, posix_cleanup_one, &c);

	/* A writer killed between making its folders and its temporary file
	 * leaves them empty: a folder prefix goes too when nothing is in it. */
	if (!rc && *prefix && prefix[strlen(prefix) - 1] == '/')
		posix_prune_dirs(drv, prefix);

	*removed = c.removed;
	return rc;
}

const struct storage_driver storage_posix_driver = {
    .name = "posix",
    .features = STORAGE_FEATURE_RANGE | STORAGE_FEATURE_PATHS,
    .open = posix_open,
    .free = posix_free,
    .describe = posix_describe,
    .write_new = posix_write_new,
    .write_data = posix_write_data,
    .write_commit = posix_write_commit,
    .write_abort = posix_write_abort,
    .read = posix_read,
    .list = posix_list,
    .head = posix_head,
    .remove = posix_remove,
    .cleanup = posix_cleanup,
};
