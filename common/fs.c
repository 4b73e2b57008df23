/*
 * fs: small file-system helpers with the project's error conventions.
 */
#include "common/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_all(int fd, const void *data, size_t len, const char *what)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set_errno(errno == ENOSPC || errno == EDQUOT ? CF_ERR_NOSPACE
			                                                          : CF_ERR_IO,
			                       errno, "cannot write %s", what);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_read_file(const char *path, size_t max, struct buf *out)
{
	uint8_t chunk[65536];
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(errno == ENOENT ? CF_ERR_NOTFOUND : CF_ERR_IO, errno,
		                       "cannot open %s", path);
	buf_init(out, max);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = error_set_errno(CF_ERR_IO, errno, "cannot read %s", path);
			break;
		}
		if (n == 0)
			break;
		rc = buf_append(out, chunk, (size_t)n);
		if (rc) {
			if (rc == CF_ERR_LIMIT)
				error_set(rc, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	if (!rc && !out->data)
		rc = buf_append(out, "", 0);
	close(fd);
	if (rc)
		buf_free(out);
	return rc;
}

int fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot open directory %s", dir);
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot fsync directory %s", dir);
	close(fd);
	return rc;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return error_set(CF_ERR_IO, "path too long: %s", path);
	memcpy(tmp, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return error_set_errno(CF_ERR_IO, errno, "cannot create directory %s", tmp);
		tmp[i] = path[i];
	}
	return 0;
}

/* Removes everything in the directory open as fd (closed here), one level
 * at a time through *at() calls, so no path length limits the depth. */
static int fs_remove_contents(int fd, const char *path)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	/* A restored tree may hold read-only directories; it is going anyway. */
	(void)fchmod(fd, S_IRWXU);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return error_set_errno(CF_ERR_IO, errno, "cannot open directory %s", path);
	}
	while (!rc && (errno = 0, e = readdir(d)) != NULL) {
		int child;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc =
			    error_set_errno(CF_ERR_IO, errno, "cannot remove an entry of %s", path);
			break;
		}
		child =
		    openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (child < 0) {
			rc = error_set_errno(CF_ERR_IO, errno, "cannot open a directory under %s",
			                     path);
			break;
		}
		rc = fs_remove_contents(child, path);
		if (!rc && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot remove a directory under %s",
			                     path);
	}
	if (!rc && errno)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot list %s", path);
	closedir(d);
	return rc;
}

int fs_remove_tree(const char *path)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0
		                       : error_set_errno(CF_ERR_IO, errno, "cannot stat %s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0 && errno != ENOENT)
			return error_set_errno(CF_ERR_IO, errno, "cannot remove %s", path);
		return 0;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot open directory %s", path);
	rc = fs_remove_contents(fd, path);
	if (!rc && rmdir(path) != 0 && errno != ENOENT)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot remove directory %s", path);
	return rc;
}

void fs_reap_dead(const char *dir, const char *prefix, void (*found)(const char *path, void *ctx),
                  void *ctx)
{
	size_t plen = strlen(prefix);
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[4096], *end;
		long pid;
		int fd;

		if (strncmp(e->d_name, prefix, plen))
			continue;
		errno = 0;
		pid = strtol(e->d_name + plen, &end, 10);
		/* kill(pid, 0) fails with ESRCH only when no such process exists. */
		if (errno || (*end && *end != '.') || end == e->d_name + plen || pid <= 0 ||
		    pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			found(path, ctx);
		close(fd);
	}
	closedir(d);
}
