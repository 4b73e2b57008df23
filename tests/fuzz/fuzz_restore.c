/*
 * fuzz_restore: a restore driven by an untrusted manifest. The input is a
 * manifest.json; the repository (a posix folder made once per process) holds
 * two real objects of one backup, encrypted to an identity the target holds:
 * a raw stream and a tar. Before decoding, "@SHA_RAW@", "@SIZE_RAW@",
 * "@RAW_RAW@" (and _TAR) in the input are replaced with the real digests
 * and sizes, so seeds can describe a good manifest and mutations start from
 * it.
 *
 * The manifest goes through catalog_manifest_from_json() as restore takes
 * it; each object it lists is restored with restore_stream_run() into a sink that
 * counts. Any input may be refused. These must hold, else abort():
 *   - an object that restores is one of the two real objects (its key), with
 *     the real size and SHA-256, and gave exactly its real plaintext size;
 *   - nothing else is read: a restore of any other object fails.
 */
#include "agent/pipeline.h"
#include "agent/pipeline/restore_stream.h"
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_RESTORE_ID "20260101T000000.000Z-0a0b0c0d"
#define FUZZ_RESTORE_PREFIX "src/" FUZZ_RESTORE_ID "/"

struct fuzz_restore_object {
	const char *name, *format, *placeholder;
	char key[256];
	char sha[HASH_SHA256_HEX_LEN + 1];
	uint64_t stored, raw;
};

static struct {
	int ready;
	unsigned restored; /* objects restored, for COFFER_FUZZ_VERBOSE */
	char dir[256];
	struct storage *st;
	struct age_identities *ids;
	struct fuzz_restore_object obj[2];
} fr;

/* Stores plaintext as an object: zstd, age to the recipient, hash. */
static void fuzz_restore_store(struct fuzz_restore_object *o, const struct age_recipients *rcpt,
                               const void *plain, size_t len)
{
	struct storage_write *w = NULL;
	struct filter *zstd = NULL, *age = NULL, *hash = NULL, *sink = NULL;

	snprintf(o->key, sizeof(o->key), FUZZ_RESTORE_PREFIX "%s%s.zst.age", o->name,
	         strcmp(o->format, "tar") ? "" : ".tar");
	if (storage_write_new(fr.st, o->key, &w) || storage_filter_new(w, &sink) ||
	    hash_filter_new(&hash) || age_encrypt_filter_new(rcpt, NULL, NULL, &age) ||
	    zstd_filter_compress_new(3, 0, &zstd))
		abort();
	filter_chain(zstd, age, hash, sink, NULL);
	if (filter_write(zstd, plain, len) || filter_finish(zstd))
		abort();
	hash_filter_result(hash, o->sha, &o->stored);
	o->raw = len;
	filter_chain_free(zstd);
}

static void fuzz_restore_cleanup(void)
{
	if (getenv("COFFER_FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_restore: %u object(s) restored\n", fr.restored);
	storage_free(fr.st);
	age_identities_free(fr.ids);
	fs_remove_tree(fr.dir);
}

static void fuzz_restore_init(void)
{
	static const char raw[] = "a dump, byte for byte\n";
	char identity[AGE_IDENTITY_LEN + 1], recipient[AGE_RECIPIENT_LEN + 1];
	struct storage_options opts = {.type = "posix"};
	struct age_recipients *rcpt = NULL;
	uint8_t tar[10240];

	snprintf(fr.dir, sizeof(fr.dir), "/tmp/coffer-fuzz-restore.XXXXXX");
	if (age_init() || !mkdtemp(fr.dir))
		abort();
	opts.posix.path = fr.dir;
	if (storage_open(&opts, &fr.st) || age_keygen(identity, recipient) ||
	    age_recipients_new(&rcpt) || age_recipients_add(rcpt, recipient) ||
	    age_identities_new(&fr.ids) || age_identities_add(fr.ids, identity))
		abort();
	fr.obj[0] = (struct fuzz_restore_object){"stdout", "raw", "RAW", "", "", 0, 0};
	fr.obj[1] = (struct fuzz_restore_object){"files", "tar", "TAR", "", "", 0, 0};
	fuzz_restore_store(&fr.obj[0], rcpt, raw, sizeof(raw) - 1);
	memset(tar, 0, sizeof(tar)); /* an empty tar: two zero blocks and padding */
	fuzz_restore_store(&fr.obj[1], rcpt, tar, sizeof(tar));
	age_recipients_free(rcpt);
	atexit(fuzz_restore_cleanup);
	fr.ready = 1;
}

/* The input with the placeholders filled in (malloc'ed, NUL-terminated). */
static char *fuzz_restore_fill(const uint8_t *data, size_t size)
{
	struct buf out;

	buf_init(&out, 4 * size + 4096);
	for (size_t i = 0; i < size;) {
		int done = 0;

		for (int k = 0; k < 2 && !done; k++) {
			const struct fuzz_restore_object *o = &fr.obj[k];
			char ph[32], val[80];
			const char *kinds[] = {"SHA", "SIZE", "RAW"};

			for (int j = 0; j < 3 && !done; j++) {
				size_t n = (size_t)snprintf(ph, sizeof(ph), "@%s_%s@", kinds[j],
				                            o->placeholder);

				if (size - i < n || memcmp(data + i, ph, n))
					continue;
				if (j == 0)
					snprintf(val, sizeof(val), "%s", o->sha);
				else
					snprintf(val, sizeof(val), "%llu",
					         (unsigned long long)(j == 1 ? o->stored : o->raw));
				if (buf_append(&out, val, strlen(val)))
					abort();
				i += n;
				done = 1;
			}
		}
		if (!done && buf_append(&out, data + i++, 1))
			abort();
	}
	if (buf_append(&out, "", 1))
		abort();
	return (char *)out.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog_backup *m = NULL;
	char *text;

	if (!fr.ready)
		fuzz_restore_init();
	if (size > 65536)
		return 0;
	text = fuzz_restore_fill(data, size);
	if (catalog_manifest_from_json(text, strlen(text), FUZZ_RESTORE_PREFIX, &m) == 0) {
		for (size_t i = 0; i < m->nobjects; i++) {
			const struct catalog_object *o = &m->objects[i];
			struct filter *sink = NULL;
			const struct fuzz_restore_object *real = NULL;
			int rc;

			if (filter_null_new(&sink))
				abort();
			rc = restore_stream_run(fr.st, o, fr.ids, sink, 0);
			if (rc)
				continue;
			for (int k = 0; k < 2; k++)
				if (!strcmp(o->key, fr.obj[k].key))
					real = &fr.obj[k];
			if (!real || o->stored_bytes != real->stored || o->raw_bytes != real->raw ||
			    strcmp(o->sha256, real->sha))
				abort();
			fr.restored++;
		}
	}
	catalog_backup_free(m);
	free(text);
	error_clear();
	return 0;
}
