/*
 * Tests of the storage interface over the posix driver: the write-once
 * contract, reads, listings, cleanup and the sink filter. Each test works in
 * its own fresh repository directory under COFFER_TEST_TMP.
 */
#include "storage/storage.h"
#include "storage/s3/s3.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct fixture {
	char dir[512];
	struct storage *s;
};

static void path_join(char *out, size_t size, const char *dir, const char *rel)
{
	int n = snprintf(out, size, "%s/%s", dir, rel);

	assert_true(n > 0 && (size_t)n < size);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct storage_options opts = {.type = "posix"};

	assert_non_null(f);
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	path_join(f->dir, sizeof(f->dir), COFFER_TEST_TMP, "storage-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	opts.posix.path = f->dir;
	assert_int_equal(storage_open(&opts, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char mnt[1024];

	storage_free(f->s);
	/* In case test_no_space failed with its tmpfs still mounted. */
	path_join(mnt, sizeof(mnt), f->dir, "tiny");
	umount2(mnt, MNT_DETACH);
	fs_remove_tree(f->dir);
	free(f);
	return 0;
}

static void put(struct storage *s, const char *key, const char *text)
{
	struct storage_write *w;

	assert_int_equal(storage_write_new(s, key, &w), 0);
	assert_int_equal(storage_write_data(w, text, strlen(text)), 0);
	assert_int_equal(storage_write_commit(w), 0);
}

static void expect_content(struct storage *s, const char *key, const char *text)
{
	struct buf b;

	assert_int_equal(storage_read_all(s, key, 1 << 20, &b), 0);
	assert_int_equal(b.len, strlen(text));
	assert_string_equal((const char *)b.data, text);
	buf_free(&b);
}

/* Collects a listing as "key:size\n" lines. */
static int list_collect(void *ctx, const char *key, const struct storage_info *info)
{
	return buf_printf(ctx, "%s:%llu\n", key, (unsigned long long)info->size);
}

static char *list_text(struct storage *s, const char *prefix)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(storage_list(s, prefix, list_collect, &b), 0);
	return (char *)b.data;
}

/* Counts every directory entry under dir, recursively (not . and ..). */
static int count_entries(const char *dir, int *tmp_files)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char sub[1024];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (strstr(e->d_name, ".tmp.") && tmp_files)
			(*tmp_files)++;
		path_join(sub, sizeof(sub), dir, e->d_name);
		assert_int_equal(lstat(sub, &st), 0);
		if (S_ISDIR(st.st_mode))
			n += count_entries(sub, tmp_files);
	}
	closedir(d);
	return n;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct storage_info info;
	char *text;

	assert_int_equal(storage_features(f->s), STORAGE_FEATURE_RANGE | STORAGE_FEATURE_PATHS);
	assert_int_equal(strncmp(storage_describe(f->s), "posix:/", 7), 0);

	put(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age", "hello world");
	put(f->s, "top", "");
	expect_content(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age", "hello world");
	expect_content(f->s, "top", "");

	assert_int_equal(
	    storage_head(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age", &info), 0);
	assert_int_equal(info.size, 11);
	assert_true(info.mtime_ms > time_now_ms() - 60000);

	text = list_text(f->s, "");
	assert_string_equal(text, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age:11\ntop:0\n");
	free(text);

	assert_int_equal(storage_delete(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age"),
	                 0);
	assert_int_equal(
	    storage_head(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age", &info),
	    CF_ERR_NOTFOUND);
	assert_int_equal(storage_read_all(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age",
	                                  10, &(struct buf){0}),
	                 CF_ERR_NOTFOUND);
	assert_non_null(strstr(error_message(), "does not exist"));
	/* Deleting a missing key succeeds; the emptied directories are gone. */
	assert_int_equal(storage_delete(f->s, "src/20261122T091046.123Z-1a2b3c4d/stdout.zst.age"),
	                 0);
	assert_int_equal(storage_delete(f->s, "top"), 0);
	assert_int_equal(count_entries(f->dir, NULL), 0);
}

struct collect {
	struct buf b;
	int calls;
	size_t max_chunk;
};

static int read_collect(void *ctx, const uint8_t *data, size_t len)
{
	struct collect *c = ctx;

	c->calls++;
	if (len > c->max_chunk)
		c->max_chunk = len;
	return buf_append(&c->b, data, len);
}

static int read_stop(void *ctx, const uint8_t *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 42;
}

static void test_range_reads(void **state)
{
	struct fixture *f = *state;
	size_t big = 3 * 1024 * 1024 + 17;
	uint8_t *data = malloc(big);
	struct storage_write *w;
	struct collect c;

	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	assert_int_equal(storage_write_new(f->s, "big", &w), 0);
	/* Several writes of odd sizes. */
	assert_int_equal(storage_write_data(w, data, 1000), 0);
	assert_int_equal(storage_write_data(w, data + 1000, 0), 0);
	assert_int_equal(storage_write_data(w, data + 1000, big - 1000), 0);
	assert_int_equal(storage_write_commit(w), 0);

	/* Whole object: chunks of at most 1 MiB. */
	memset(&c, 0, sizeof(c));
	buf_init(&c.b, big);
	assert_int_equal(storage_read(f->s, "big", 0, UINT64_MAX, read_collect, &c), 0);
	assert_int_equal(c.b.len, big);
	assert_memory_equal(c.b.data, data, big);
	assert_true(c.max_chunk <= 1024 * 1024);
	assert_int_equal(c.calls, 4);
	buf_free(&c.b);

	/* A range in the middle, crossing a chunk boundary. */
	memset(&c, 0, sizeof(c));
	buf_init(&c.b, big);
	assert_int_equal(
	    storage_read(f->s, "big", 1024 * 1024 - 5, 2 * 1024 * 1024, read_collect, &c), 0);
	assert_int_equal(c.b.len, 2 * 1024 * 1024);
	assert_memory_equal(c.b.data, data + 1024 * 1024 - 5, 2 * 1024 * 1024);
	buf_free(&c.b);

	/* A range past the end gives what exists; past the end, nothing. */
	memset(&c, 0, sizeof(c));
	buf_init(&c.b, big);
	assert_int_equal(storage_read(f->s, "big", big - 10, 100, read_collect, &c), 0);
	assert_int_equal(c.b.len, 10);
	assert_memory_equal(c.b.data, data + big - 10, 10);
	buf_reset(&c.b);
	assert_int_equal(storage_read(f->s, "big", big + 10, 100, read_collect, &c), 0);
	assert_int_equal(c.b.len, 0);
	buf_reset(&c.b);
	assert_int_equal(storage_read(f->s, "big", 5, 0, read_collect, &c), 0);
	assert_int_equal(c.b.len, 0);
	buf_free(&c.b);

	/* A callback's error stops the read and comes back. */
	assert_int_equal(storage_read(f->s, "big", 0, UINT64_MAX, read_stop, NULL), 42);

	/* read_all is bounded. */
	assert_int_equal(storage_read_all(f->s, "big", 1000, &c.b), CF_ERR_LIMIT);
	assert_non_null(strstr(error_message(), "big"));
	free(data);
}

static void test_list_order_and_prefix(void **state)
{
	struct fixture *f = *state;
	char *text;

	/* '.' (0x2e) sorts before '/' (0x2f), and '-' before both: the listing
	 * must follow whole-key order, not a per-directory name order. */
	put(f->s, "a/b", "1");
	put(f->s, "a.x", "22");
	put(f->s, "a-y", "333");
	put(f->s, "a/a/z", "4");
	put(f->s, "b", "5");
	put(f->s, "src/20261122T091046.123Z-1a2b3c4d/manifest.json", "m1");
	put(f->s, "src/20261123T091046.123Z-1a2b3c4d/manifest.json", "m2");
	put(f->s, "src/20271123T091046.123Z-1a2b3c4d/manifest.json", "m3");
	put(f->s, "src2/x", "6");

	text = list_text(f->s, "");
	assert_string_equal(text, "a-y:3\na.x:2\na/a/z:1\na/b:1\nb:1\n"
	                          "src/20261122T091046.123Z-1a2b3c4d/manifest.json:2\n"
	                          "src/20261123T091046.123Z-1a2b3c4d/manifest.json:2\n"
	                          "src/20271123T091046.123Z-1a2b3c4d/manifest.json:2\n"
	                          "src2/x:1\n");
	free(text);

	/* A prefix is a string prefix, not a directory. */
	text = list_text(f->s, "src/2026");
	assert_string_equal(text, "src/20261122T091046.123Z-1a2b3c4d/manifest.json:2\n"
	                          "src/20261123T091046.123Z-1a2b3c4d/manifest.json:2\n");
	free(text);
	text = list_text(f->s, "src");
	assert_non_null(strstr(text, "src2/x"));
	assert_non_null(strstr(text, "src/2027"));
	free(text);
	text = list_text(f->s, "src/");
	assert_null(strstr(text, "src2/x"));
	free(text);
	text = list_text(f->s, "a");
	assert_string_equal(text, "a-y:3\na.x:2\na/a/z:1\na/b:1\n");
	free(text);
	text = list_text(f->s, "a/b");
	assert_string_equal(text, "a/b:1\n");
	free(text);
	text = list_text(f->s, "nothing/here");
	assert_string_equal(text, "");
	free(text);
	text = list_text(f->s, "b/");
	assert_string_equal(text, "");
	free(text);

	/* Bad prefixes. */
	assert_int_equal(storage_list(f->s, "/etc", list_collect, NULL), CF_ERR_STORAGE);
	assert_int_equal(storage_list(f->s, "../x", list_collect, NULL), CF_ERR_STORAGE);
	assert_int_equal(storage_list(f->s, "a//", list_collect, NULL), CF_ERR_STORAGE);
}

static int delete_listed(void *ctx, const char *key, const struct storage_info *info)
{
	(void)info;
	return storage_delete(ctx, key);
}

/* The agent removes a failed backup by deleting each key as it is listed;
 * pruning the emptied directories must not disturb the walk. */
static void test_delete_while_listing(void **state)
{
	struct fixture *f = *state;
	char *text;

	put(f->s, "src/id1/a", "1");
	put(f->s, "src/id1/b/c", "2");
	put(f->s, "src/id1/b/d", "3");
	put(f->s, "src/id1/e", "4");
	put(f->s, "src/id2/a", "5");
	assert_int_equal(storage_list(f->s, "src/id1/", delete_listed, f->s), 0);
	text = list_text(f->s, "");
	assert_string_equal(text, "src/id2/a:1\n");
	free(text);
	assert_int_equal(storage_list(f->s, "", delete_listed, f->s), 0);
	assert_int_equal(count_entries(f->dir, NULL), 0);
}

static void test_list_skips_symlinks(void **state)
{
	struct fixture *f = *state;
	char path[1024];
	char *text;

	put(f->s, "real/x", "1");
	path_join(path, sizeof(path), f->dir, "link");
	assert_int_equal(symlink("real", path), 0);
	path_join(path, sizeof(path), f->dir, "filelink");
	assert_int_equal(symlink("real/x", path), 0);
	text = list_text(f->s, "");
	assert_string_equal(text, "real/x:1\n");
	free(text);
	text = list_text(f->s, "link/");
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(storage_read_all(f->s, "filelink", 10, &(struct buf){0}), CF_ERR_NOTFOUND);
}

static void test_never_overwrites(void **state)
{
	struct fixture *f = *state;
	struct storage_write *w1, *w2;

	put(f->s, "k/obj", "original");
	/* A second write to an existing key fails at once. */
	assert_int_equal(storage_write_new(f->s, "k/obj", &w1), CF_ERR_EXISTS);
	assert_null(w1);
	assert_non_null(strstr(error_message(), "k/obj"));

	/* Two writers race: the second to commit loses, the first's content
	 * stays. */
	assert_int_equal(storage_write_new(f->s, "k/race", &w1), 0);
	assert_int_equal(storage_write_new(f->s, "k/race", &w2), 0);
	assert_int_equal(storage_write_data(w1, "first", 5), 0);
	assert_int_equal(storage_write_data(w2, "second", 6), 0);
	assert_int_equal(storage_write_commit(w1), 0);
	assert_int_equal(storage_write_commit(w2), CF_ERR_EXISTS);
	assert_non_null(strstr(error_message(), "k/race"));
	expect_content(f->s, "k/race", "first");
	expect_content(f->s, "k/obj", "original");

	/* No temporary file is left behind by the loser. */
	int tmp = 0;
	count_entries(f->dir, &tmp);
	assert_int_equal(tmp, 0);
}

static void test_abort_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct storage_write *w;
	int tmp = 0;
	char *text;

	assert_int_equal(storage_write_new(f->s, "deep/er/obj", &w), 0);
	assert_int_equal(storage_write_data(w, "partial", 7), 0);
	/* While it is being written, nothing is visible under the key. */
	text = list_text(f->s, "");
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(storage_read_all(f->s, "deep/er/obj", 10, &(struct buf){0}),
	                 CF_ERR_NOTFOUND);
	count_entries(f->dir, &tmp);
	assert_int_equal(tmp, 1);

	storage_write_abort(w);
	storage_write_abort(NULL);
	assert_int_equal(count_entries(f->dir, NULL), 0);
	assert_int_equal(storage_head(f->s, "deep/er/obj", &(struct storage_info){0}),
	                 CF_ERR_NOTFOUND);
	/* The key is free again. */
	put(f->s, "deep/er/obj", "done");
	expect_content(f->s, "deep/er/obj", "done");
}

static void make_file(const char *dir, const char *rel, int64_t mtime_ms)
{
	char path[1024];
	struct timeval tv[2];
	int fd;

	path_join(path, sizeof(path), dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	tv[0].tv_sec = tv[1].tv_sec = (time_t)(mtime_ms / 1000);
	tv[0].tv_usec = tv[1].tv_usec = 0;
	assert_int_equal(utimes(path, tv), 0);
}

static void test_cleanup(void **state)
{
	struct fixture *f = *state;
	int64_t now = time_now_ms();
	unsigned removed = 99;
	char path[1024];
	char *text;
	int tmp = 0;

	put(f->s, "s/id/obj", "kept");
	put(f->s, "old", "kept too");
	path_join(path, sizeof(path), f->dir, "t");
	assert_int_equal(mkdir(path, 0750), 0);
	/* Two stale temporary files (one alone in its directory), one fresh. */
	make_file(f->dir, "s/id/.obj2.tmp.123.00ff", now - 3600 * 1000);
	make_file(f->dir, "t/.x.tmp.1.ab", now - 7200 * 1000);
	make_file(f->dir, "s/.fresh.tmp.9.cd", now);

	/* Temporary files are never listed. */
	text = list_text(f->s, "");
	assert_string_equal(text, "old:8\ns/id/obj:4\n");
	free(text);

	assert_int_equal(storage_cleanup(f->s, 600 * 1000, now, &removed), 0);
	assert_int_equal(removed, 2);
	count_entries(f->dir, &tmp);
	assert_int_equal(tmp, 1);
	/* The directory the stale file was alone in went with it. */
	assert_int_equal(access(path, F_OK), -1);
	expect_content(f->s, "s/id/obj", "kept");
	expect_content(f->s, "old", "kept too");

	assert_int_equal(storage_cleanup(f->s, 600 * 1000, now, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(storage_cleanup(f->s, 0, now + 1000, &removed), 0);
	assert_int_equal(removed, 1);
}

/* A write in progress is never removed by cleanup, whatever its age: its
 * writer holds a lock on the temporary file. */
static void test_cleanup_spares_open_writes(void **state)
{
	struct fixture *f = *state;
	struct storage_write *w = NULL;
	unsigned removed = 99;
	int tmp = 0;

	assert_int_equal(storage_write_new(f->s, "s/id/live", &w), 0);
	assert_int_equal(storage_write_data(w, "part", 4), 0);
	assert_int_equal(storage_cleanup(f->s, 0, time_now_ms() + 3600 * 1000, &removed), 0);
	assert_int_equal(removed, 0);
	count_entries(f->dir, &tmp);
	assert_int_equal(tmp, 1);
	assert_int_equal(storage_write_data(w, "ial", 3), 0);
	assert_int_equal(storage_write_commit(w), 0);
	expect_content(f->s, "s/id/live", "partial");
}

static void test_bad_keys(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "", "/abs", "a//b", "a/", "./a", "a/./b", "..", "a/../b", "a/..", "a\\b", ".",
	};
	static const char *const good[] = {
	    "a", "a/b/c", "..a", "a..", ".hidden", "a/.b", "x-y_z.1",
	};
	char longkey[STORAGE_KEY_MAX + 2];
	struct storage_write *w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(storage_key_valid(bad[i]));
		assert_int_equal(storage_write_new(f->s, bad[i], &w), CF_ERR_STORAGE);
		assert_int_equal(storage_head(f->s, bad[i], &(struct storage_info){0}),
		                 CF_ERR_STORAGE);
		assert_int_equal(storage_delete(f->s, bad[i]), CF_ERR_STORAGE);
		assert_int_equal(storage_read(f->s, bad[i], 0, 1, read_stop, NULL), CF_ERR_STORAGE);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(storage_key_valid(good[i]));
	memset(longkey, 'a', sizeof(longkey));
	longkey[STORAGE_KEY_MAX] = '\0';
	assert_true(storage_key_valid(longkey));
	longkey[STORAGE_KEY_MAX] = 'a';
	longkey[STORAGE_KEY_MAX + 1] = '\0';
	assert_false(storage_key_valid(longkey));

	/* A key that would pass for a temporary file is refused by posix. */
	assert_int_equal(storage_write_new(f->s, "a/.x.tmp.1", &w), CF_ERR_STORAGE);
	assert_int_equal(storage_write_new(f->s, ".x.tmp.1/b", &w), CF_ERR_STORAGE);
	/* Writing under a key that is an object fails cleanly. */
	put(f->s, "file", "x");
	assert_int_not_equal(storage_write_new(f->s, "file/sub", &w), 0);
}

static void test_open_errors(void **state)
{
	struct storage_options opts = {.type = "posix", .posix.path = "/nonexistent/coffer-repo"};
	struct storage *s = (struct storage *)1;

	(void)state;
	assert_int_equal(storage_open(&opts, &s), CF_ERR_NOTFOUND);
	assert_null(s);
	assert_string_equal(error_message(),
	                    "repository directory /nonexistent/coffer-repo does not exist");

	opts.type = "ftp";
	assert_int_equal(storage_open(&opts, &s), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "'ftp'"));
	assert_non_null(strstr(error_message(), "posix"));

	opts.type = "posix";
	opts.posix.path = NULL;
	assert_int_equal(storage_open(&opts, &s), CF_ERR_CONFIG);

	opts.posix.path = "/etc/hostname";
	assert_int_equal(storage_open(&opts, &s), CF_ERR_CONFIG);
	storage_free(NULL);
}

static void test_filter_sink(void **state)
{
	struct fixture *f = *state;
	struct storage_write *w;
	struct filter *sink;

	/* finish commits. */
	assert_int_equal(storage_write_new(f->s, "f/done", &w), 0);
	assert_int_equal(storage_filter_new(w, &sink), 0);
	assert_int_equal(filter_write(sink, "abc", 3), 0);
	assert_int_equal(filter_write(sink, "def", 3), 0);
	assert_int_equal(filter_finish(sink), 0);
	assert_int_equal(sink->bytes_in, 6);
	filter_chain_free(sink);
	expect_content(f->s, "f/done", "abcdef");

	/* Freeing without a finish aborts. */
	assert_int_equal(storage_write_new(f->s, "f/abandoned", &w), 0);
	assert_int_equal(storage_filter_new(w, &sink), 0);
	assert_int_equal(filter_write(sink, "abc", 3), 0);
	filter_chain_free(sink);
	assert_int_equal(storage_head(f->s, "f/abandoned", &(struct storage_info){0}),
	                 CF_ERR_NOTFOUND);

	/* A failed commit (the key was taken meanwhile) is not aborted twice. */
	assert_int_equal(storage_write_new(f->s, "f/taken", &w), 0);
	assert_int_equal(storage_filter_new(w, &sink), 0);
	assert_int_equal(filter_write(sink, "mine", 4), 0);
	put(f->s, "f/taken", "theirs");
	assert_int_equal(filter_finish(sink), CF_ERR_EXISTS);
	filter_chain_free(sink);
	expect_content(f->s, "f/taken", "theirs");

	int tmp = 0;
	count_entries(f->dir, &tmp);
	assert_int_equal(tmp, 0);
}

/*
 * A full disk: a 1 MiB tmpfs. Needs root (or CAP_SYS_ADMIN); skipped
 * otherwise.
 */
static void test_no_space(void **state)
{
	struct fixture *f = *state;
	struct storage_options opts = {.type = "posix"};
	struct storage *s = NULL;
	struct storage_write *w;
	char mnt[1024];
	uint8_t chunk[65536];
	int rc = 0, tmp = 0;

	path_join(mnt, sizeof(mnt), f->dir, "tiny");
	assert_int_equal(mkdir(mnt, 0750), 0);
	if (mount("coffer-test", mnt, "tmpfs", 0, "size=1m") != 0) {
		fprintf(stderr, "cannot mount a tmpfs on %s (%s): skipping the full-disk test\n",
		        mnt, strerror(errno));
		skip();
	}
	opts.posix.path = mnt;
	assert_int_equal(storage_open(&opts, &s), 0);
	memset(chunk, 0x5a, sizeof(chunk));
	assert_int_equal(storage_write_new(s, "src/id/huge", &w), 0);
	for (int i = 0; i < 64 && !rc; i++)
		rc = storage_write_data(w, chunk, sizeof(chunk));
	if (!rc)
		rc = storage_write_commit(w);
	else
		storage_write_abort(w);
	assert_int_equal(rc, CF_ERR_NOSPACE);
	assert_non_null(strstr(error_message(), "src/id/huge"));
	assert_non_null(strstr(error_message(), "No space left"));
	assert_int_equal(storage_head(s, "src/id/huge", &(struct storage_info){0}),
	                 CF_ERR_NOTFOUND);
	assert_int_equal(count_entries(mnt, &tmp), 0);

	/* The space is back: a small object fits. */
	put(s, "small", "ok");
	expect_content(s, "small", "ok");
	storage_free(s);
	assert_int_equal(umount(mnt), 0);
}

/* storage_location() names the repository as storage_describe() does,
 * without opening it, for a path given through a symlink and with "..". */
static void test_location(void **state)
{
	struct fixture *f = *state;
	struct storage_options opts = {.type = "posix"};
	char link[600], odd[700], *loc = NULL;

	path_join(link, sizeof(link), f->dir, "link");
	assert_int_equal(symlink(f->dir, link), 0);
	snprintf(odd, sizeof(odd), "%s/../%s/", link, strrchr(f->dir, '/') + 1);
	opts.posix.path = odd;
	assert_int_equal(storage_location(&opts, &loc), 0);
	assert_string_equal(loc, storage_describe(f->s));
	free(loc);
	unlink(link);

	/* S3: the same string as the client's description, for every form of
	 * prefix (making a client sends nothing). */
	opts.type = "s3";
	opts.s3.bucket = "b";
	opts.s3.endpoint = "http://127.0.0.1:9";
	opts.s3.access_key = "AKIDEXAMPLE";
	opts.s3.secret_key = "secret";
	{
		static const char *const prefixes[] = {NULL,    "",     "/",   "///",  "db1",
		                                       "//db1", "db1/", "a/b", "a/b//"};

		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			struct s3_client *c = NULL;

			opts.s3.prefix = prefixes[i];
			assert_int_equal(storage_location(&opts, &loc), 0);
			assert_int_equal(s3_client_new(&opts.s3, &c), 0);
			assert_string_equal(loc, s3_client_describe(c));
			s3_client_free(c);
			free(loc);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_range_reads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_order_and_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_skips_symlinks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_while_listing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cleanup_spares_open_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test_setup_teardown(test_filter_sink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_location, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
