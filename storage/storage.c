/*
 * storage: the caller-facing side of the storage interface. It picks a driver
 * by name, checks keys before any driver sees them, and forwards each call
 * through the driver vtable (storage_intern.h). It also provides the helpers
 * every driver gets for free: reading a small object whole and the sink
 * filter that ends a backup pipeline.
 *
 * It does no I/O of its own; the drivers do.
 */
#include "storage/storage_intern.h"
#include "crypto/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct storage {
	const struct storage_driver *drv;
	void *ctx;
};

struct storage_write {
	const struct storage_driver *drv;
	void *ctx;
	struct storage *s;
	struct filter *hash; /* STORAGE_WRITE_SAME_OK: SHA-256 of what was written */
	char *key;
};

/* Every driver this build knows, for lookup and for the error message. */
static const struct storage_driver *const storage_drivers[] = {
    &storage_posix_driver,
    &storage_s3_driver,
};

#define STORAGE_NDRIVERS (sizeof(storage_drivers) / sizeof(storage_drivers[0]))

/* Writes "posix, s3" into out, for messages naming the known types. */
static void storage_type_names(char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < STORAGE_NDRIVERS && used < size; i++) {
		int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "",
		                 storage_drivers[i]->name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int storage_open(const struct storage_options *opts, struct storage **out)
{
	const struct storage_driver *drv = NULL;
	struct storage *s;
	char names[128];
	int rc;

	*out = NULL;
	for (size_t i = 0; opts->type && i < STORAGE_NDRIVERS; i++) {
		if (strcmp(storage_drivers[i]->name, opts->type) == 0)
			drv = storage_drivers[i];
	}
	if (!drv) {
		storage_type_names(names, sizeof(names));
		if (!opts->type || !opts->type[0])
			return error_set(CF_ERR_CONFIG, "no storage type given (known types: %s)",
			                 names);
		return error_set(CF_ERR_CONFIG, "unknown storage type '%s' (known types: %s)",
		                 opts->type, names);
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return error_set(CF_ERR_NOMEM, "out of memory opening %s storage", drv->name);
	s->drv = drv;
	rc = drv->open(opts, &s->ctx);
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void storage_free(struct storage *s)
{
	if (!s)
		return;
	s->drv->free(s->ctx);
	free(s);
}

uint32_t storage_features(const struct storage *s)
{
	return s->drv->features;
}

const char *storage_describe(const struct storage *s)
{
	return s->drv->describe(s->ctx);
}

int storage_location(const struct storage_options *opts, char **out)
{
	const char *type = opts->type ? opts->type : "posix";
	struct buf b;
	int rc;

	*out = NULL;
	buf_init(&b, 8192);
	if (!strcmp(type, "posix")) {
		char *root;

		const char *path = opts->posix.path;

		if (!path || !*path)
			return error_set(CF_ERR_CONFIG, "posix storage needs a repository path");
		/* As the driver: the resolved path, or the path as given if it
		 * cannot be resolved (then no record can match it). */
		root = realpath(path, NULL);
		rc = buf_printf(&b, "posix:%s", root ? root : path);
		free(root);
	} else if (!strcmp(type, "s3")) {
		const struct storage_s3_options *o = &opts->s3;
		const char *p = o->prefix ? o->prefix : "";

		/* As s3_client_new(): no leading '/', one trailing '/'. */
		while (*p == '/')
			p++;
		rc = buf_printf(&b, "s3://%s/%s%s", o->bucket ? o->bucket : "", p,
		                *p && p[strlen(p) - 1] != '/' ? "/" : "");
	} else {
		return error_set(CF_ERR_CONFIG, "unknown repository type '%s'", type);
	}
	if (rc) {
		buf_free(&b);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	*out = (char *)b.data;
	return 0;
}

int storage_key_valid(const char *key)
{
	size_t len = strlen(key), part = 0;

	if (len == 0 || len > STORAGE_KEY_MAX || key[0] == '/')
		return 0;
	/* Walk the parts; part is the start of the current one. Checking at
	 * each '/' and at the terminating NUL covers the last part too. */
	for (size_t i = 0; i <= len; i++) {
		char c = key[i];

		if (c == '\\')
			return 0;
		if (c != '/' && c != '\0')
			continue;
		if (i == part)
			return 0; /* empty part: "a//b" or a trailing '/' */
		if (i - part == 1 && key[part] == '.')
			return 0;
		if (i - part == 2 && key[part] == '.' && key[part + 1] == '.')
			return 0;
		part = i + 1;
	}
	return 1;
}

/*
 * A listing prefix is a key prefix, so its last part may be incomplete
 * ("src/2026") or empty ("src/"), and "" lists everything. Every complete
 * part must still be a valid key part, so a prefix can never name a
 * directory outside the repository.
 */
static int storage_prefix_valid(const char *prefix)
{
	size_t len = strlen(prefix), part = 0;

	if (len == 0)
		return 1;
	if (len > STORAGE_KEY_MAX || prefix[0] == '/')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = prefix[i];

		if (c == '\\')
			return 0;
		if (c != '/')
			continue;
		if (i == part)
			return 0;
		if (i - part == 1 && prefix[part] == '.')
			return 0;
		if (i - part == 2 && prefix[part] == '.' && prefix[part + 1] == '.')
			return 0;
		part = i + 1;
	}
	return 1;
}

static int storage_check_key(const struct storage *s, const char *key)
{
	if (storage_key_valid(key))
		return 0;
	return error_set(CF_ERR_STORAGE, "invalid object key '%.*s' for %s", STORAGE_KEY_MAX, key,
	                 storage_describe(s));
}

static void storage_write_free(struct storage_write *w)
{
	filter_chain_free(w->hash);
	free(w->key);
	free(w);
}

int storage_write_new_ex(struct storage *s, const char *key, unsigned flags,
                         struct storage_write **out)
{
	struct storage_write *w;
	int rc;

	*out = NULL;
	rc = storage_check_key(s, key);
	if (rc)
		return rc;
	w = calloc(1, sizeof(*w));
	if (!w)
		return error_set(CF_ERR_NOMEM, "out of memory writing %s", key);
	w->drv = s->drv;
	w->s = s;
	if (flags & STORAGE_WRITE_SAME_OK) {
		struct filter *sink = NULL;

		w->key = strdup(key);
		rc = w->key ? filter_null_new(&sink) : CF_ERR_NOMEM;
		if (!rc)
			rc = hash_filter_new(&w->hash);
		if (rc) {
			filter_chain_free(sink);
			storage_write_free(w);
			return error_set(CF_ERR_NOMEM, "out of memory writing %s", key);
		}
		w->hash->next = sink;
	}
	rc = s->drv->write_new(s->ctx, key, &w->ctx);
	if (rc) {
		storage_write_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int storage_copy(struct storage *dst, struct storage *src, const char *key, uint64_t size)
{
	int rc = storage_check_key(dst, key);

	if (rc)
		return rc;
	if (dst->drv != src->drv || !dst->drv->copy)
		return error_set(
		    CF_ERR_UNSUPPORTED,
		    "a server-side copy from %s into %s is not possible (S3 buckets on "
		    "one endpoint only)",
		    storage_describe(src), storage_describe(dst));
	return dst->drv->copy(dst->ctx, src->ctx, key, size);
}

int storage_write_new(struct storage *s, const char *key, struct storage_write **out)
{
	return storage_write_new_ex(s, key, 0, out);
}

int storage_write_data(struct storage_write *w, const void *data, size_t len)
{
	int rc;

	if (len == 0)
		return 0;
	if (w->hash) {
		rc = filter_write(w->hash, data, len);
		if (rc)
			return rc;
	}
	return w->drv->write_data(w->ctx, data, len);
}

static int storage_hash_cb(void *ctx, const uint8_t *data, size_t len)
{
	return filter_write(ctx, data, len);
}

/* The key of w was taken: is the object there the very bytes w wrote? */
static int storage_write_same(struct storage_write *w)
{
	char want[HASH_SHA256_HEX_LEN + 1], have[HASH_SHA256_HEX_LEN + 1];
	uint64_t want_len, have_len;
	struct filter *hash = NULL, *sink = NULL;
	int rc;

	rc = filter_finish(w->hash);
	if (rc)
		goto out;
	hash_filter_result(w->hash, want, &want_len);
	rc = filter_null_new(&sink);
	if (!rc)
		rc = hash_filter_new(&hash);
	if (rc) {
		rc = error_set(CF_ERR_NOMEM, "out of memory comparing %s", w->key);
		goto out;
	}
	hash->next = sink;
	sink = NULL;
	rc = storage_read(w->s, w->key, 0, UINT64_MAX, storage_hash_cb, hash);
	if (!rc)
		rc = filter_finish(hash);
	if (rc)
		goto out;
	hash_filter_result(hash, have, &have_len);
	if (have_len == want_len && !strcmp(have, want))
		rc = STORAGE_WRITE_SAME;
	else
		rc = error_set(CF_ERR_EXISTS,
		               "%s already holds a different object (%llu bytes, sha256 %.12s..., "
		               "not %llu bytes, %.12s...) in %s",
		               w->key, (unsigned long long)have_len, have,
		               (unsigned long long)want_len, want, storage_describe(w->s));
out:
	filter_chain_free(hash);
	filter_chain_free(sink);
	return rc;
}

int storage_write_commit(struct storage_write *w)
{
	int rc = w->drv->write_commit(w->ctx);

	if (rc == CF_ERR_EXISTS && w->hash)
		rc = storage_write_same(w);
	storage_write_free(w);
	return rc;
}

void storage_write_abort(struct storage_write *w)
{
	if (!w)
		return;
	w->drv->write_abort(w->ctx);
	storage_write_free(w);
}

int storage_read(struct storage *s, const char *key, uint64_t offset, uint64_t length,
                 storage_read_cb cb, void *ctx)
{
	int rc = storage_check_key(s, key);

	if (rc)
		return rc;
	return s->drv->read(s->ctx, key, offset, length, cb, ctx);
}

struct storage_read_all_ctx {
	struct buf *out;
	const char *key;
};

static int storage_read_all_cb(void *ctx, const uint8_t *data, size_t len)
{
	struct storage_read_all_ctx *c = ctx;
	struct buf *b = c->out;

	/* Checked here rather than left to buf_append() so the message names
	 * the object instead of an anonymous buffer. */
	if (len > b->max || b->len > b->max - len)
		return error_set(CF_ERR_LIMIT, "object %s is larger than the %zu bytes allowed",
		                 c->key, b->max);
	return buf_append(b, data, len);
}

int storage_read_all(struct storage *s, const char *key, size_t max, struct buf *out)
{
	struct storage_read_all_ctx c = {out, key};
	int rc;

	buf_init(out, max);
	rc = storage_read(s, key, 0, UINT64_MAX, storage_read_all_cb, &c);
	if (!rc && !out->data)
		rc = buf_append(out, "", 0); /* an empty object still gives a C string */
	if (rc)
		buf_free(out);
	return rc;
}

int storage_list(struct storage *s, const char *prefix, storage_list_cb cb, void *ctx)
{
	if (!storage_prefix_valid(prefix))
		return error_set(CF_ERR_STORAGE, "invalid key prefix '%.*s' for %s",
		                 STORAGE_KEY_MAX, prefix, storage_describe(s));
	return s->drv->list(s->ctx, prefix, cb, ctx);
}

int storage_head(struct storage *s, const char *key, struct storage_info *info)
{
	int rc = storage_check_key(s, key);

	memset(info, 0, sizeof(*info));
	if (rc)
		return rc;
	return s->drv->head(s->ctx, key, info);
}

int storage_delete(struct storage *s, const char *key)
{
	int rc = storage_check_key(s, key);

	if (rc)
		return rc;
	return s->drv->remove(s->ctx, key);
}

int storage_delete_many(struct storage *s, const char *const *keys, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = storage_check_key(s, keys[i]);
		if (rc)
			return rc;
	}
	if (s->drv->remove_many)
		return n ? s->drv->remove_many(s->ctx, keys, n) : 0;
	for (size_t i = 0; i < n; i++) {
		rc = cancel_check();
		if (!rc)
			rc = s->drv->remove(s->ctx, keys[i]);
		if (rc)
			return rc;
	}
	return 0;
}

int storage_cleanup(struct storage *s, int64_t older_than_ms, int64_t now_ms, unsigned *removed)
{
	return storage_cleanup_prefix(s, "", older_than_ms, now_ms, removed);
}

int storage_cleanup_prefix(struct storage *s, const char *prefix, int64_t older_than_ms,
                           int64_t now_ms, unsigned *removed)
{
	*removed = 0;
	if (!storage_prefix_valid(prefix))
		return error_set(CF_ERR_STORAGE, "invalid key prefix '%.*s' for %s",
		                 STORAGE_KEY_MAX, prefix, storage_describe(s));
	return s->drv->cleanup(s->ctx, prefix, older_than_ms, now_ms, removed);
}

/* ------------------------------------------------------------------------ */
/* The sink filter                                                            */
/* ------------------------------------------------------------------------ */

/*
 * The filter's ctx is the storage_write itself. Commit and abort both free
 * it, so the ctx is cleared as soon as either has run: whatever happens
 * afterwards, ops->free must not touch it again.
 */

static int storage_filter_write(struct filter *f, const uint8_t *data, size_t len)
{
	if (!f->ctx)
		return error_set(CF_ERR_INTERNAL, "write to a storage sink that already ended");
	f->bytes_out += len;
	return storage_write_data(f->ctx, data, len);
}

static int storage_filter_finish(struct filter *f)
{
	struct storage_write *w = f->ctx;

	if (!w)
		return error_set(CF_ERR_INTERNAL, "finish of a storage sink that already ended");
	f->ctx = NULL;
	return storage_write_commit(w);
}

static void storage_filter_free(struct filter *f)
{
	storage_write_abort(f->ctx);
	f->ctx = NULL;
}

static const struct filter_ops storage_filter_ops = {
    "storage",
    storage_filter_write,
    storage_filter_finish,
    storage_filter_free,
};

int storage_filter_new(struct storage_write *w, struct filter **out)
{
	/* filter_new() releases w through ops->free (an abort) if it fails. */
	*out = filter_new(&storage_filter_ops, w);
	return *out ? 0 : CF_ERR_NOMEM;
}
