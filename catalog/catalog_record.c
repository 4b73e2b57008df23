/*
 * catalog_record: the backup record in memory and as JSON. The same JSON is
 * the catalog's stored value and, without the host-local fields, the
 * manifest written next to a backup's objects (docs/catalog.md).
 *
 * Decoding is strict about what it understands and lenient about what it
 * does not: every known field must have its documented type and range,
 * required fields must be present, a "format" newer than this code is
 * refused, but unknown keys are ignored, so a later coffer can add fields
 * to format 1 without breaking this one. Adding a field that older readers
 * must not ignore needs a new format number.
 *
 * It does not touch LMDB or storage.
 */
#include "catalog/catalog.h"
#include "crypto/crypto.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* json_int_t is long long when the platform has it (JSON_INTEGER_IS_LONG_LONG),
 * which Debian's build does; counts above it cannot be encoded. */
#define CATALOG_JSON_INT_MAX ((json_int_t)LLONG_MAX)

/* ------------------------------------------------------------------------ */
/* Records in memory                                                          */
/* ------------------------------------------------------------------------ */

struct catalog_backup *catalog_backup_new(void)
{
	struct catalog_backup *b = calloc(1, sizeof(*b));

	if (!b)
		error_set(CF_ERR_NOMEM, "out of memory allocating a backup record");
	return b;
}

struct catalog_object *catalog_backup_add_object(struct catalog_backup *b)
{
	struct catalog_object *grown;

	grown = realloc(b->objects, (b->nobjects + 1) * sizeof(*grown));
	if (!grown) {
		error_set(CF_ERR_NOMEM, "out of memory adding an object to backup record");
		return NULL;
	}
	b->objects = grown;
	memset(&grown[b->nobjects], 0, sizeof(*grown));
	return &grown[b->nobjects++];
}

static void catalog_object_clear(struct catalog_object *o)
{
	free(o->name);
	free(o->key);
	free(o->format);
	free(o->compression);
	free(o->encryption);
	free(o->sha256);
	free(o->meta_json);
}

void catalog_backup_free(struct catalog_backup *b)
{
	if (!b)
		return;
	free(b->id);
	free(b->source);
	free(b->kind);
	free(b->host);
	free(b->error);
	free(b->coffer_version);
	free(b->prefix);
	for (size_t i = 0; i < b->nobjects; i++)
		catalog_object_clear(&b->objects[i]);
	free(b->objects);
	strv_free(&b->recipients);
	strv_free(&b->locations);
	strv_free(&b->deleting);
	strv_free(&b->pruned);
	free(b->verified_level);
	free(b->verified_error);
	free(b->drill_json);
	free(b->meta_json);
	strv_free(&b->missing);
	for (size_t i = 0; i < b->npending; i++) {
		free(b->pending[i].location);
		free(b->pending[i].error);
	}
	free(b->pending);
	free(b);
}

int catalog_backup_add_pending(struct catalog_backup *b, const char *location, const char *error,
                               int64_t since_ms)
{
	struct catalog_pending *p = realloc(b->pending, (b->npending + 1) * sizeof(*p));

	if (!p)
		return error_set(CF_ERR_NOMEM, "out of memory");
	b->pending = p;
	p = &b->pending[b->npending];
	p->location = strdup(location);
	p->error = strdup(error ? error : "");
	p->since_ms = since_ms;
	if (!p->location || !p->error) {
		free(p->location);
		free(p->error);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	b->npending++;
	return 0;
}

int catalog_backup_unplaced(const struct catalog_backup *b)
{
	return !b->locations.n && !b->deleting.n && !b->pruned.n;
}

void catalog_backup_drop_pending(struct catalog_backup *b, const char *location)
{
	for (size_t i = 0; i < b->npending; i++)
		if (!strcmp(b->pending[i].location, location)) {
			free(b->pending[i].location);
			free(b->pending[i].error);
			memmove(&b->pending[i], &b->pending[i + 1],
			        (b->npending - i - 1) * sizeof(*b->pending));
			b->npending--;
			return;
		}
}

static const char *const catalog_status_names[] = {"running", "complete", "failed"};

const char *catalog_status_name(enum catalog_status s)
{
	if ((unsigned)s >= sizeof(catalog_status_names) / sizeof(catalog_status_names[0]))
		return "unknown";
	return catalog_status_names[s];
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * json_object_set_new() takes the value's reference even when it fails, and
 * a NULL value makes it fail, so every setter below is one call that can be
 * chained with `if (!rc)`.
 */
static int catalog_json_set(json_t *obj, const char *key, json_t *value)
{
	if (!value || json_object_set_new(obj, key, value) != 0)
		return error_set(CF_ERR_NOMEM, "out of memory encoding field \"%s\"", key);
	return 0;
}

/* Sets a string field; a NULL string leaves the field out. */
static int catalog_json_set_str(json_t *obj, const char *key, const char *s)
{
	json_t *j;

	if (!s)
		return 0;
	j = json_string(s);
	if (!j) {
		/* json_string() fails on invalid UTF-8 and on out of memory; the
		 * unchecked variant fails only on the latter. */
		j = json_string_nocheck(s);
		if (!j)
			return error_set(CF_ERR_NOMEM, "out of memory encoding field \"%s\"", key);
		json_decref(j);
		return error_set(CF_ERR_FORMAT, "field \"%s\" is not valid UTF-8 text", key);
	}
	return catalog_json_set(obj, key, j);
}

/* Sets a free-text field (an error message, a path): bytes that are not
 * UTF-8 are escaped rather than refused, so the text is always recorded. */
static int catalog_json_set_text(json_t *obj, const char *key, const char *s)
{
	char *clean;
	int rc;

	if (!s)
		return 0;
	clean = fmt_text_utf8(s);
	if (!clean)
		return error_set(CF_ERR_NOMEM, "out of memory encoding field \"%s\"", key);
	rc = catalog_json_set_str(obj, key, clean);
	free(clean);
	return rc;
}

static int catalog_json_set_u64(json_t *obj, const char *key, uint64_t v)
{
	if (v > (uint64_t)CATALOG_JSON_INT_MAX)
		return error_set(CF_ERR_FORMAT, "field \"%s\" is too large to encode (%llu)", key,
		                 (unsigned long long)v);
	return catalog_json_set(obj, key, json_integer((json_int_t)v));
}

static int catalog_json_set_time(json_t *obj, const char *key, int64_t ms)
{
	char text[TIME_ISO_LEN + 8];

	time_format_iso(ms, text, sizeof(text));
	return catalog_json_set_str(obj, key, text);
}

/* Sets an array of strings; with text, items that are not UTF-8 are
 * escaped (as catalog_json_set_text()) instead of refused. */
static int catalog_json_set_strv(json_t *obj, const char *key, char *const *v, size_t n, int text)
{
	json_t *arr = json_array();
	int rc = 0;

	if (!arr)
		return error_set(CF_ERR_NOMEM, "out of memory encoding field \"%s\"", key);
	for (size_t i = 0; i < n && !rc; i++) {
		char *clean = text ? fmt_text_utf8(v[i]) : NULL;
		json_t *s = text && !clean ? NULL : json_string(text ? clean : v[i]);

		if (!s || json_array_append_new(arr, s) != 0)
			rc = error_set(CF_ERR_FORMAT, "field \"%s\" item %zu cannot be encoded",
			               key, i);
		free(clean);
	}
	if (rc) {
		json_decref(arr);
		return rc;
	}
	return catalog_json_set(obj, key, arr);
}

/* Sets key to the JSON object text meta (NULL: nothing); what names the
 * record or object for the error. */
static int catalog_json_set_meta(json_t *obj, const char *key, const char *meta, const char *what)
{
	json_error_t jerr;
	json_t *m;

	if (!meta)
		return 0;
	m = json_loads(meta, JSON_REJECT_DUPLICATES, &jerr);
	if (!m || !json_is_object(m)) {
		json_decref(m);
		return error_set(CF_ERR_FORMAT, "%s: field \"%s\" is not a JSON object%s%s", what,
		                 key, m ? "" : ": ", m ? "" : jerr.text);
	}
	return catalog_json_set(obj, key, m);
}

static int catalog_json_object(const struct catalog_object *o, int need_sha, json_t **out)
{
	json_t *obj = json_object();
	int rc = 0;

	*out = NULL;
	if (!obj)
		return error_set(CF_ERR_NOMEM, "out of memory encoding an object");
	if (!o->key)
		rc = error_set(CF_ERR_FORMAT, "object %s has no key",
		               o->name ? o->name : "(unnamed)");
	else if (!o->sha256 && need_sha)
		rc = error_set(CF_ERR_FORMAT, "object %s of a complete backup has no sha256",
		               o->key);
	if (!rc)
		rc = catalog_json_set_str(obj, "name", o->name);
	if (!rc)
		rc = catalog_json_set_str(obj, "key", o->key);
	if (!rc)
		rc = catalog_json_set_str(obj, "format", o->format);
	if (!rc)
		rc = catalog_json_set_str(obj, "compression", o->compression);
	if (!rc)
		rc = catalog_json_set_str(obj, "encryption", o->encryption);
	if (!rc)
		rc = catalog_json_set_u64(obj, "raw_bytes", o->raw_bytes);
	if (!rc)
		rc = catalog_json_set_u64(obj, "stored_bytes", o->stored_bytes);
	if (!rc)
		rc = catalog_json_set_str(obj, "sha256", o->sha256);
	if (!rc)
		rc = catalog_json_set_meta(obj, "meta", o->meta_json, o->key);
	if (rc) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

int catalog_backup_to_json(const struct catalog_backup *b, int flags, char **out)
{
	int manifest = flags & CATALOG_JSON_MANIFEST;
	json_t *root = NULL, *objects = NULL;
	int rc = 0;

	*out = NULL;
	if (!b->id || !b->source || !b->kind)
		return error_set(CF_ERR_FORMAT, "backup record %s has no %s",
		                 b->id ? b->id : "(no id)",
		                 !b->id       ? "id"
		                 : !b->source ? "source"
		                              : "kind");
	if (manifest && b->finished_ms == 0)
		return error_set(CF_ERR_FORMAT, "backup %s has no finish time for its manifest",
		                 b->id);

	root = json_object();
	objects = json_array();
	if (!root || !objects) {
		rc = error_set(CF_ERR_NOMEM, "out of memory encoding backup %s", b->id);
		goto out;
	}
	rc = catalog_json_set(root, "format", json_integer(CATALOG_FORMAT_VERSION));
	if (!rc)
		rc = catalog_json_set_str(root, "id", b->id);
	if (!rc)
		rc = catalog_json_set_str(root, "source", b->source);
	if (!rc)
		rc = catalog_json_set_str(root, "kind", b->kind);
	if (!rc)
		rc = catalog_json_set_str(root, "host", b->host);
	if (!rc)
		rc = catalog_json_set_time(root, "started", b->started_ms);
	if (!rc && b->finished_ms != 0)
		rc = catalog_json_set_time(root, "finished", b->finished_ms);
	if (!rc && !manifest)
		rc = catalog_json_set_str(root, "status", catalog_status_name(b->status));
	if (!rc && !manifest)
		rc = catalog_json_set_text(root, "error", b->error);
	if (!rc && !manifest && b->pid > 0)
		rc = catalog_json_set(root, "pid", json_integer(b->pid));
	if (!rc)
		rc = catalog_json_set_str(root, "coffer_version", b->coffer_version);
	if (!rc)
		rc = catalog_json_set_str(root, "prefix", b->prefix);
	for (size_t i = 0; i < b->nobjects && !rc; i++) {
		json_t *o;

		/* A run that failed or is still going may hold the object of an
		 * unfinished stream, whose digest does not exist. */
		rc = catalog_json_object(&b->objects[i], manifest || b->status == CATALOG_COMPLETE,
		                         &o);
		if (!rc && json_array_append_new(objects, o) != 0)
			rc = error_set(CF_ERR_NOMEM, "out of memory encoding backup %s", b->id);
	}
	if (!rc) {
		rc = catalog_json_set(root, "objects", objects);
		objects = NULL;
	}
	if (!rc)
		rc = catalog_json_set_strv(root, "recipients", b->recipients.v, b->recipients.n, 0);
	if (!rc)
		rc = catalog_json_set_strv(root, "locations", b->locations.v, b->locations.n, 0);
	if (!rc && !manifest && b->verified_ms) {
		json_t *o = json_pack("{s:b}", "ok", b->verified_ok);

		rc = o ? 0 : error_set(CF_ERR_NOMEM, "out of memory encoding backup %s", b->id);
		if (!rc)
			rc = catalog_json_set_time(o, "at", b->verified_ms);
		if (!rc)
			rc = catalog_json_set_str(o, "level", b->verified_level);
		if (!rc)
			rc = catalog_json_set_text(o, "error", b->verified_error);
		if (!rc)
			rc = catalog_json_set(root, "verified", o);
		else
			json_decref(o);
	}
	if (!rc && !manifest && b->deleting.n)
		rc = catalog_json_set_strv(root, "deleting", b->deleting.v, b->deleting.n, 0);
	if (!rc && !manifest && b->pruned.n)
		rc = catalog_json_set_strv(root, "pruned", b->pruned.v, b->pruned.n, 0);
	if (!rc && b->missing_count)
		rc = catalog_json_set_strv(root, "missing", b->missing.v, b->missing.n, 1);
	if (!rc && b->missing_count)
		rc = catalog_json_set_u64(root, "missing_count", b->missing_count);
	if (!rc && !manifest && b->npending) {
		json_t *arr = json_array();

		rc = arr ? 0 : error_set(CF_ERR_NOMEM, "out of memory encoding backup %s", b->id);
		for (size_t i = 0; !rc && i < b->npending; i++) {
			json_t *o = json_object();

			rc = o ? 0
			       : error_set(CF_ERR_NOMEM, "out of memory encoding backup %s", b->id);
			if (!rc)
				rc = catalog_json_set_str(o, "location", b->pending[i].location);
			if (!rc)
				rc = catalog_json_set_text(o, "error", b->pending[i].error);
			if (!rc)
				rc = catalog_json_set_time(o, "since", b->pending[i].since_ms);
			if (!rc && json_array_append_new(arr, o) != 0)
				rc = error_set(CF_ERR_NOMEM, "out of memory encoding backup %s",
				               b->id);
			else if (rc)
				json_decref(o);
		}
		if (!rc)
			rc = catalog_json_set(root, "pending", arr);
		else
			json_decref(arr);
	}
	if (!rc) {
		char what[128];

		snprintf(what, sizeof(what), "backup %s", b->id);
		rc = catalog_json_set_meta(root, "meta", b->meta_json, what);
		if (!rc && !manifest)
			rc = catalog_json_set_meta(root, "drill", b->drill_json, what);
	}
	if (!rc) {
		size_t jflags = JSON_SORT_KEYS | JSON_REAL_PRECISION(17) |
		                ((flags & CATALOG_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT);

		*out = json_dumps(root, jflags);
		if (!*out)
			rc = error_set(CF_ERR_NOMEM, "out of memory encoding backup %s", b->id);
	}
out:
	json_decref(objects);
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The getters name the field in their errors; an object's fields are named
 * with their path ("objects[2].sha256"), built in field[].
 */

/*
 * Looks up a field: *j is NULL when it is absent or null, which is an error
 * only when required.
 */
static int catalog_get_field(json_t *obj, const char *key, const char *field, int required,
                             json_t **j)
{
	*j = json_object_get(obj, key);
	if (*j && json_is_null(*j))
		*j = NULL;
	if (!*j && required)
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" is missing", field);
	return 0;
}

/* A string field: absent or null gives *out NULL unless required. */
static int catalog_get_str(json_t *obj, const char *key, const char *field, int required,
                           char **out)
{
	json_t *j;
	int rc;

	*out = NULL;
	rc = catalog_get_field(obj, key, field, required, &j);
	if (rc || !j)
		return rc;
	if (!json_is_string(j))
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" must be a string",
		                 field);
	if (required && json_string_length(j) == 0)
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" is empty", field);
	if (strlen(json_string_value(j)) != json_string_length(j))
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" contains a NUL byte",
		                 field);
	*out = strdup(json_string_value(j));
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory decoding field \"%s\"", field);
	return 0;
}

/* An integer field in [min, max]; absent or null gives 0 unless required. */
static int catalog_get_int(json_t *obj, const char *key, const char *field, int required,
                           json_int_t min, json_int_t max, json_int_t *out)
{
	json_t *j;
	int rc;

	*out = 0;
	rc = catalog_get_field(obj, key, field, required, &j);
	if (rc || !j)
		return rc;
	if (!json_is_integer(j))
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" must be an integer",
		                 field);
	*out = json_integer_value(j);
	if (*out < min || *out > max)
		return error_set(CF_ERR_FORMAT,
		                 "backup record: field \"%s\" is out of range (%lld)", field,
		                 (long long)*out);
	return 0;
}

/* An RFC 3339 time field; absent or null gives 0 unless required. */
static int catalog_get_time(json_t *obj, const char *key, int required, int64_t *out)
{
	char *text = NULL;
	int rc;

	*out = 0;
	rc = catalog_get_str(obj, key, key, required, &text);
	if (!rc && text && time_parse_iso(text, out) != 0)
		rc = error_set(CF_ERR_FORMAT,
		               "backup record: field \"%s\" is not an RFC 3339 UTC time ('%.64s')",
		               key, text);
	free(text);
	return rc;
}

static int catalog_get_time(json_t *obj, const char *key, int required, int64_t *out);

/* "verified": {"at", "ok", "level", "error"} */
static int catalog_get_verified(json_t *root, struct catalog_backup *b)
{
	json_t *o = json_object_get(root, "verified"), *ok;
	int rc;

	if (!o || json_is_null(o))
		return 0;
	ok = json_object_get(o, "ok");
	if (!json_is_object(o) || !json_is_boolean(ok))
		return error_set(CF_ERR_FORMAT,
		                 "backup record: field \"verified\" must be an object with a "
		                 "boolean \"ok\"");
	b->verified_ok = json_is_true(ok);
	rc = catalog_get_time(o, "at", 1, &b->verified_ms);
	if (!rc)
		rc = catalog_get_str(o, "level", "verified.level", 0, &b->verified_level);
	if (!rc)
		rc = catalog_get_str(o, "error", "verified.error", 0, &b->verified_error);
	return rc;
}

/* "pending": [{"location", "error", "since"}, ...] */
static int catalog_get_pending(json_t *root, struct catalog_backup *b)
{
	json_t *arr = json_object_get(root, "pending"), *item;
	size_t i;
	int rc = 0;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return error_set(CF_ERR_FORMAT,
		                 "backup record: field \"pending\" must be an array");
	json_array_foreach(arr, i, item)
	{
		char *loc = NULL, *err = NULL;
		int64_t since = 0;

		if (!json_is_object(item))
			return error_set(CF_ERR_FORMAT,
			                 "backup record: pending item %zu must be an object", i);
		rc = catalog_get_str(item, "location", "pending.location", 1, &loc);
		if (!rc)
			rc = catalog_get_str(item, "error", "pending.error", 0, &err);
		if (!rc)
			rc = catalog_get_time(item, "since", 0, &since);
		if (!rc)
			rc = catalog_backup_add_pending(b, loc, err, since);
		free(loc);
		free(err);
		if (rc)
			return rc;
	}
	return 0;
}

static int catalog_get_strv(json_t *obj, const char *key, struct strv *v)
{
	json_t *arr = json_object_get(obj, key), *item;
	size_t i;
	int rc = 0;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" must be an array",
		                 key);
	json_array_foreach(arr, i, item)
	{
		if (!json_is_string(item) ||
		    strlen(json_string_value(item)) != json_string_length(item))
			return error_set(CF_ERR_FORMAT,
			                 "backup record: field \"%s[%zu]\" must be a string", key,
			                 i);
		rc = strv_add(v, json_string_value(item));
		if (rc)
			return rc;
	}
	return 0;
}

static int catalog_sha256_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return i == 64;
}

/* Reads an optional JSON object field as compact text with sorted keys. */
static int catalog_get_meta(json_t *obj, const char *key, const char *field, char **out)
{
	json_t *meta = json_object_get(obj, key);

	if (!meta || json_is_null(meta))
		return 0;
	if (!json_is_object(meta))
		return error_set(CF_ERR_FORMAT, "backup record: field \"%s\" must be an object",
		                 field);
	*out = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory decoding field \"%s\"", field);
	return 0;
}

static int catalog_get_object(json_t *j, size_t idx, int need_sha, struct catalog_object *o)
{
	char field[64];
	json_int_t v;
	int rc = 0;

#define CATALOG_FIELD(name) (snprintf(field, sizeof(field), "objects[%zu]." name, idx), field)
	if (!json_is_object(j))
		return error_set(CF_ERR_FORMAT,
		                 "backup record: field \"objects[%zu]\" must be an object", idx);
	rc = catalog_get_str(j, "name", CATALOG_FIELD("name"), 0, &o->name);
	if (!rc)
		rc = catalog_get_str(j, "key", CATALOG_FIELD("key"), 1, &o->key);
	if (!rc)
		rc = catalog_get_str(j, "format", CATALOG_FIELD("format"), 0, &o->format);
	if (!rc)
		rc = catalog_get_str(j, "compression", CATALOG_FIELD("compression"), 0,
		                     &o->compression);
	if (!rc)
		rc = catalog_get_str(j, "encryption", CATALOG_FIELD("encryption"), 0,
		                     &o->encryption);
	if (!rc)
		rc = catalog_get_int(j, "raw_bytes", CATALOG_FIELD("raw_bytes"), 0, 0,
		                     CATALOG_JSON_INT_MAX, &v);
	if (!rc)
		o->raw_bytes = (uint64_t)v;
	if (!rc)
		rc = catalog_get_int(j, "stored_bytes", CATALOG_FIELD("stored_bytes"), 0, 0,
		                     CATALOG_JSON_INT_MAX, &v);
	if (!rc)
		o->stored_bytes = (uint64_t)v;
	if (!rc)
		rc = catalog_get_str(j, "sha256", CATALOG_FIELD("sha256"), need_sha, &o->sha256);
	if (!rc && o->sha256 && !catalog_sha256_valid(o->sha256))
		rc = error_set(CF_ERR_FORMAT,
		               "backup record: field \"%s\" must be 64 lowercase hex characters",
		               CATALOG_FIELD("sha256"));
	if (!rc)
		rc = catalog_get_meta(j, "meta", CATALOG_FIELD("meta"), &o->meta_json);
#undef CATALOG_FIELD
	return rc;
}

static int catalog_get_status(json_t *root, enum catalog_status *out)
{
	char *text = NULL;
	int rc;

	/* A manifest has no status: it is only written for a complete backup. */
	*out = CATALOG_COMPLETE;
	rc = catalog_get_str(root, "status", "status", 0, &text);
	if (rc || !text)
		return rc;
	rc = CF_ERR_FORMAT;
	for (size_t i = 0; i < sizeof(catalog_status_names) / sizeof(catalog_status_names[0]);
	     i++) {
		if (strcmp(text, catalog_status_names[i]) == 0) {
			*out = (enum catalog_status)i;
			rc = 0;
		}
	}
	if (rc)
		error_set(rc, "backup record: field \"status\" has an unknown value '%.32s'", text);
	free(text);
	return rc;
}

int catalog_backup_from_json(const char *json, size_t len, struct catalog_backup **out)
{
	struct catalog_backup *b = NULL;
	json_t *root, *objects, *item;
	json_error_t jerr;
	json_int_t v;
	size_t i;
	int rc = 0;

	*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return error_set(CF_ERR_FORMAT,
		                 "backup record is not valid JSON: %s (line %d, column %d)",
		                 jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root)) {
		rc = error_set(CF_ERR_FORMAT, "backup record is not a JSON object");
		goto out;
	}
	rc = catalog_get_int(root, "format", "format", 1, 1, CATALOG_JSON_INT_MAX, &v);
	if (!rc && v > CATALOG_FORMAT_VERSION)
		rc = error_set(CF_ERR_FORMAT,
		               "manifest format %lld is newer than this coffer supports (up to %d)",
		               (long long)v, CATALOG_FORMAT_VERSION);
	if (rc)
		goto out;
	b = catalog_backup_new();
	if (!b) {
		rc = CF_ERR_NOMEM;
		goto out;
	}

	rc = catalog_get_str(root, "id", "id", 1, &b->id);
	if (!rc && !backup_id_valid(b->id))
		rc = error_set(CF_ERR_FORMAT,
		               "backup record: field \"id\" is not a backup id ('%.64s')", b->id);
	if (!rc)
		rc = catalog_get_str(root, "source", "source", 1, &b->source);
	if (!rc)
		rc = catalog_get_str(root, "kind", "kind", 1, &b->kind);
	if (!rc)
		rc = catalog_get_str(root, "host", "host", 0, &b->host);
	if (!rc)
		rc = catalog_get_time(root, "started", 1, &b->started_ms);
	if (!rc)
		rc = catalog_get_time(root, "finished", 0, &b->finished_ms);
	if (!rc)
		rc = catalog_get_status(root, &b->status);
	if (!rc)
		rc = catalog_get_str(root, "error", "error", 0, &b->error);
	if (!rc)
		rc = catalog_get_int(root, "pid", "pid", 0, 0, INT_MAX, &v);
	if (!rc)
		b->pid = (int)v;
	if (!rc)
		rc = catalog_get_str(root, "coffer_version", "coffer_version", 0,
		                     &b->coffer_version);
	if (!rc)
		rc = catalog_get_str(root, "prefix", "prefix", 0, &b->prefix);
	if (rc)
		goto out;

	objects = json_object_get(root, "objects");
	if (!objects) {
		rc = error_set(CF_ERR_FORMAT, "backup record: field \"objects\" is missing");
		goto out;
	}
	if (!json_is_array(objects)) {
		rc = error_set(CF_ERR_FORMAT, "backup record: field \"objects\" must be an array");
		goto out;
	}
	json_array_foreach(objects, i, item)
	{
		struct catalog_object *o = catalog_backup_add_object(b);

		rc = o ? catalog_get_object(item, i, b->status == CATALOG_COMPLETE, o)
		       : CF_ERR_NOMEM;
		if (rc)
			goto out;
	}
	rc = catalog_get_strv(root, "recipients", &b->recipients);
	if (!rc)
		rc = catalog_get_strv(root, "locations", &b->locations);
	if (!rc)
		rc = catalog_get_strv(root, "deleting", &b->deleting);
	if (!rc)
		rc = catalog_get_strv(root, "pruned", &b->pruned);
	if (!rc)
		rc = catalog_get_strv(root, "missing", &b->missing);
	if (!rc)
		rc = catalog_get_int(root, "missing_count", "missing_count", 0, 0, INT64_MAX, &v);
	if (!rc)
		b->missing_count = (uint64_t)v;
	if (!rc && b->missing_count < b->missing.n)
		b->missing_count = b->missing.n;
	if (!rc)
		rc = catalog_get_pending(root, b);
	if (!rc)
		rc = catalog_get_verified(root, b);
	if (rc)
		goto out;

	rc = catalog_get_meta(root, "meta", "meta", &b->meta_json);
	if (!rc)
		rc = catalog_get_meta(root, "drill", "drill", &b->drill_json);
out:
	json_decref(root);
	if (rc) {
		catalog_backup_free(b);
		b = NULL;
	}
	*out = b;
	return rc;
}

int catalog_object_key(const char *prefix, const char *name, const char *format, char **out)
{
	struct buf key;

	buf_init(&key, 8192);
	if (buf_printf(&key, "%s%s%s.zst.age", prefix, name,
	               format && !strcmp(format, "tar") ? ".tar" : "")) {
		buf_free(&key);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	*out = (char *)key.data;
	return 0;
}

/* The checks of catalog_manifest_from_json() on a decoded record. */
static int catalog_manifest_check(const struct catalog_backup *b, const char *where)
{
	char *want = NULL;
	int rc = 0;

	if (!name_valid(b->source))
		return error_set(CF_ERR_FORMAT, "manifest: source '%.64s' is not a valid name",
		                 b->source);
	if (!b->finished_ms)
		return error_set(CF_ERR_FORMAT, "manifest: field \"finished\" is missing");
	if (!b->prefix || strncmp(b->prefix, b->source, strlen(b->source)) ||
	    b->prefix[strlen(b->source)] != '/' ||
	    strncmp(b->prefix + strlen(b->source) + 1, b->id, BACKUP_ID_LEN) ||
	    strcmp(b->prefix + strlen(b->source) + 1 + BACKUP_ID_LEN, "/"))
		return error_set(CF_ERR_FORMAT, "manifest: prefix '%.128s' is not '%s/%s/'",
		                 b->prefix ? b->prefix : "", b->source, b->id);
	if (where) {
		size_t wl = strlen(where), pl = strlen(b->prefix);

		if (wl < pl || strcmp(where + wl - pl, b->prefix) ||
		    (wl > pl && where[wl - pl - 1] != '/'))
			return error_set(
			    CF_ERR_FORMAT,
			    "manifest: it is stored under '%.128s', not under its prefix '%s'",
			    where, b->prefix);
	}
	if (!b->nobjects)
		return error_set(CF_ERR_FORMAT, "manifest: no objects");
	for (size_t i = 0; !rc && i < b->nobjects; i++) {
		const struct catalog_object *o = &b->objects[i];

		if (!name_valid(o->name))
			return error_set(CF_ERR_FORMAT,
			                 "manifest: object %zu has no valid name ('%.64s')", i,
			                 o->name ? o->name : "");
		if (!o->format || !*o->format)
			return error_set(CF_ERR_FORMAT, "manifest: object %s has no format",
			                 o->name);
		if (!o->sha256)
			return error_set(CF_ERR_FORMAT, "manifest: object %s has no sha256",
			                 o->name);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(b->objects[k].name, o->name))
				return error_set(CF_ERR_FORMAT,
				                 "manifest: object %s is listed twice", o->name);
		rc = catalog_object_key(b->prefix, o->name, o->format, &want);
		if (!rc && strcmp(o->key, want))
			rc = error_set(CF_ERR_FORMAT,
			               "manifest: object %s has key '%.128s', not '%s'", o->name,
			               o->key, want);
		free(want);
		want = NULL;
	}
	return rc;
}

int catalog_manifest_from_json(const char *json, size_t len, const char *where,
                               struct catalog_backup **out)
{
	struct catalog_backup *b = NULL;
	int rc = catalog_backup_from_json(json, len, &b);

	if (!rc)
		rc = catalog_manifest_check(b, where);
	if (rc) {
		catalog_backup_free(b);
		return rc;
	}
	/* What only the host that ran it knows is never taken from a manifest. */
	b->status = CATALOG_COMPLETE;
	b->pid = 0;
	free(b->error);
	b->error = NULL;
	strv_free(&b->deleting);
	strv_free(&b->pruned);
	free(b->verified_level);
	free(b->verified_error);
	b->verified_level = b->verified_error = NULL;
	b->verified_ms = 0;
	b->verified_ok = 0;
	free(b->drill_json);
	b->drill_json = NULL;
	*out = b;
	return 0;
}

/* The bytes a manifest's signature covers: root without "signature",
 * compact, keys sorted. */
static char *catalog_manifest_signed_text(json_t *root)
{
	json_t *copy = json_deep_copy(root);
	char *text;

	if (!copy)
		return NULL;
	json_object_del(copy, "signature");
	text = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(copy);
	return text;
}

int catalog_manifest_sign(const char *json, const struct sign_key *k, char **out)
{
	char sig[SIGN_SIGNATURE_TEXT_LEN + 1];
	json_t *root = json_loads(json, 0, NULL), *s;
	char *text = NULL;
	int rc = 0;

	if (!root || !json_is_object(root)) {
		json_decref(root);
		return error_set(CF_ERR_FORMAT, "manifest to sign is not a JSON object");
	}
	text = catalog_manifest_signed_text(root);
	if (!text)
		rc = error_set(CF_ERR_NOMEM, "out of memory signing a manifest");
	if (!rc)
		rc = sign_message(k, text, strlen(text), sig);
	if (!rc) {
		s = json_pack("{s:s, s:s}", "key", sign_key_public(k), "ed25519", sig);
		rc = catalog_json_set(root, "signature", s);
	}
	if (!rc) {
		*out = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_REAL_PRECISION(17));
		if (!*out)
			rc = error_set(CF_ERR_NOMEM, "out of memory signing a manifest");
	}
	free(text);
	json_decref(root);
	return rc;
}

int catalog_manifest_verify(const char *json, size_t len, char **signer)
{
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL), *s;
	const char *key, *sig;
	char *text = NULL;
	int rc = 0;

	*signer = NULL;
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return error_set(CF_ERR_FORMAT, "manifest is not a JSON object");
	}
	s = json_object_get(root, "signature");
	if (!s || json_is_null(s)) {
		json_decref(root);
		return 0;
	}
	key = json_string_value(json_object_get(s, "key"));
	sig = json_string_value(json_object_get(s, "ed25519"));
	if (!json_is_object(s) || !key || !sig)
		rc = error_set(CF_ERR_INTEGRITY, "manifest signature is malformed");
	if (!rc && !(text = catalog_manifest_signed_text(root)))
		rc = error_set(CF_ERR_NOMEM, "out of memory checking a manifest signature");
	if (!rc) {
		rc = sign_verify(key, text, strlen(text), sig);
		if (rc)
			rc = error_set(CF_ERR_INTEGRITY, "manifest signature: %s", error_message());
	}
	if (!rc && !(*signer = strdup(key)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	free(text);
	json_decref(root);
	return rc;
}
