/*
 * pgphys_restore: laying a postgres-physical base backup down
 * (pgphys_restore.h).
 */
#include "agent/source/pgphys_restore.h"
#include "agent/pipeline/restore_stream.h"
#include "agent/pipeline/restore_tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pgphys_dir_empty(const char *dir, int *exists)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	int empty = 1;

	*exists = 0;
	if (stat(dir, &sb) != 0)
		return errno == ENOENT ? 0
		                       : error_set_errno(CF_ERR_IO, errno, "cannot check %s", dir);
	*exists = 1;
	if (!S_ISDIR(sb.st_mode))
		return error_set(CF_ERR_EXISTS, "%s exists and is not a directory", dir);
	if (!(d = opendir(dir)))
		return error_set_errno(CF_ERR_IO, errno, "cannot read %s", dir);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty ? 0
	             : error_set(CF_ERR_EXISTS,
	                         "%s is not empty; restore a data directory into a new or empty "
	                         "directory (never over a cluster)",
	                         dir);
}

/* The location a tablespace goes to: ts_root/OID, else its tsmap NEW,
 * else its own. */
static const char *pgphys_ts_dest(const struct strv *tsmap, const char *ts_root, long long oid,
                                  const char *old, char *buf, size_t size)
{
	size_t n = strlen(old);

	if (ts_root) {
		snprintf(buf, size, "%s/%lld", ts_root, oid);
		return buf;
	}
	for (size_t i = 0; tsmap && i < tsmap->n; i++)
		if (!strncmp(tsmap->v[i], old, n) && tsmap->v[i][n] == '=')
			return tsmap->v[i] + n + 1;
	return old;
}

int pgphys_lay_down(struct storage *st, const struct catalog_backup *b,
                    const struct age_identities *ids, const char *tmp, const struct strv *tsmap,
                    const char *ts_root, int progress, struct pgphys_outside *out)
{
	int rc = 0;

	/* The server sends the tablespaces first; their links live in base. */
	for (size_t k = 0; !rc && k < 2 * b->nobjects; k++) {
		const struct catalog_object *o = &b->objects[k % b->nobjects];
		json_t *m = o->meta_json ? json_loads(o->meta_json, 0, NULL) : NULL;
		const char *role = json_string_value(json_object_get(m, "role"));

		if (role && (k < b->nobjects) != !strcmp(role, "base"))
			role = NULL; /* base in the first pass, the others in the second */
		if (role && !strcmp(role, "base")) {
			rc = restore_tar_extract(st, o, ids, tmp, progress, NULL);
		} else if (role && !strcmp(role, "backup_manifest")) {
			char path[PATH_MAX + 32];
			int fd;

			snprintf(path, sizeof(path), "%s/backup_manifest", tmp);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (fd < 0)
				rc = error_set_errno(CF_ERR_IO, errno, "cannot create %s", path);
			else {
				rc = restore_stream_to_fd(st, o, ids, fd, progress);
				close(fd);
			}
		} else if (role && !strcmp(role, "tablespace")) {
			json_t *t = json_object_get(m, "tablespace");
			const char *old = json_string_value(json_object_get(t, "location"));
			json_int_t oid = json_integer_value(json_object_get(t, "oid"));
			char link[PATH_MAX + 64], buf[PATH_MAX];
			const char *dest = old ? pgphys_ts_dest(tsmap, ts_root, (long long)oid, old,
			                                        buf, sizeof(buf))
			                       : NULL;
			int exists = 0;

			if (!dest || !oid)
				rc = error_set(CF_ERR_FORMAT,
				               "object %s has no tablespace location", o->name);
			if (!rc)
				rc = pgphys_dir_empty(dest, &exists);
			if (!rc && !exists)
				rc = fs_mkdir_p(dest, 0700);
			if (!rc)
				rc = strv_add(exists ? &out->filled : &out->made, dest);
			if (!rc)
				rc = restore_tar_extract(st, o, ids, dest, progress, NULL);
			snprintf(link, sizeof(link), "%s/pg_tblspc/%lld", tmp, (long long)oid);
			if (!rc && (unlink(link) != 0 && errno != ENOENT))
				rc = error_set_errno(CF_ERR_IO, errno, "cannot replace %s", link);
			if (!rc && symlink(dest, link) != 0)
				rc = error_set_errno(CF_ERR_IO, errno, "cannot link %s", link);
			if (!rc && strcmp(dest, old))
				log_info("tablespace %lld: %s restored into %s", (long long)oid,
				         old, dest);
		}
		json_decref(m);
	}
	return rc;
}

void pgphys_undo(struct pgphys_outside *o)
{
	for (size_t i = 0; i < o->made.n; i++)
		fs_remove_tree(o->made.v[i]);
	for (size_t i = 0; i < o->filled.n; i++) {
		DIR *d = opendir(o->filled.v[i]);
		struct dirent *e;
		char path[PATH_MAX];

		while (d && (e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", o->filled.v[i], e->d_name);
			fs_remove_tree(path);
		}
		if (d)
			closedir(d);
	}
	strv_free(&o->made);
	strv_free(&o->filled);
}
