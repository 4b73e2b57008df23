/*
 * catfill: fills a catalog and a posix repository with a long history, for
 * bench/bench_history.sh (what a run costs after years of backups).
 *
 *   catfill CATALOG REPO_DIR LOCATION N
 *
 * Writes N complete backup records of source "hist" (one object each, the
 * repository location LOCATION; one synchronous commit each, about 2 ms),
 * and for each an empty object and a manifest file under REPO_DIR. The
 * manifests are placeholders: no run reads them, a restore of these ids
 * would fail. A bench helper, not a user tool.
 */
#include "catalog/catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct catalog *cat;
	long n;

	if (argc != 5 || (n = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: catfill CATALOG REPO_DIR LOCATION N\n");
		return 2;
	}
	if (catalog_open(argv[1], &cat)) {
		fprintf(stderr, "catfill: %s\n", error_message());
		return 1;
	}
	for (long i = 0; i < n; i++) {
		struct catalog_backup *b = catalog_backup_new();
		struct catalog_object *o;
		char id[BACKUP_ID_LEN + 1], path[8192];
		int64_t ms = 1700000000000LL + i * 60000LL;

		backup_id_format(ms, (uint32_t)i, id);
		o = b ? catalog_backup_add_object(b) : NULL;
		if (!o)
			return 1;
		b->id = strdup(id);
		b->source = strdup("hist");
		b->kind = strdup("stdin");
		b->host = strdup("bench");
		b->started_ms = ms;
		b->finished_ms = ms + 1000;
		b->status = CATALOG_COMPLETE;
		b->prefix = malloc(64);
		snprintf(b->prefix, 64, "hist/%s/", id);
		o->name = strdup("stdin");
		o->format = strdup("raw");
		o->compression = strdup("zstd");
		o->encryption = strdup("age");
		o->sha256 = strdup(SHA);
		o->raw_bytes = 100;
		o->stored_bytes = 300;
		catalog_object_key(b->prefix, "stdin", "raw", &o->key);
		strv_add(&b->locations, argv[3]);
		if (catalog_backup_put(cat, b)) {
			fprintf(stderr, "catfill: %s\n", error_message());
			return 1;
		}
		snprintf(path, sizeof(path), "%s/hist/%s", argv[2], id);
		if (fs_mkdir_p(path, 0700))
			return 1;
		snprintf(path, sizeof(path), "%s/%s", argv[2], o->key);
		touch(path);
		snprintf(path, sizeof(path), "%s/hist/%s/manifest.json", argv[2], id);
		touch(path);
		catalog_backup_free(b);
	}
	catalog_close(cat);
	return 0;
}
