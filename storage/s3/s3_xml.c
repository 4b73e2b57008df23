/*
 * s3_xml: the XML documents of the S3 API (and of STS
 * AssumeRoleWithWebIdentity), parsed with libexpat and built with escaping.
 *
 * Each reply is parsed in one XML_Parse() call over the whole bounded body.
 * The parser tracks the path of local element names below the root (the
 * namespace S3 and STS declare is ignored, so replies with or without it,
 * and with prefixes, read the same) and hands each element's text to a
 * per-document handler that matches on that path. No XML is ever searched
 * as a string. Document type declarations are refused (S3 never sends
 * them, and refusing them rules out entity tricks).
 *
 * Limits: a body over 16 MiB, a list of over 100,000 entries or an element
 * text over 1 MiB fails with CF_ERR_LIMIT. Every byte expat allocates and
 * every element text is wiped when released, because an STS reply carries
 * a secret key and a session token.
 */
#include "storage/s3/s3.h"
#include "crypto/crypto.h"

#include <expat.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define XML_MAX_BODY (16u * 1024 * 1024)
#define XML_MAX_ITEMS 100000
#define XML_MAX_TEXT (1024 * 1024)
#define XML_MAX_DEPTH 32
#define XML_MAX_PATH 1024

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ------------------------------------------------------------------------ */
/* Memory that is wiped when released                                         */
/* ------------------------------------------------------------------------ */

union wiped_header {
	size_t size;
	max_align_t align;
};

static void *wiped_malloc(size_t n)
{
	union wiped_header *h;

	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->size = n;
	return h + 1;
}

static void wiped_free(void *p)
{
	union wiped_header *h;

	if (!p)
		return;
	h = (union wiped_header *)p - 1;
	sodium_memzero(h, sizeof(*h) + h->size);
	free(h);
}

/* Never realloc() in place: the old block is wiped before it is released. */
static void *wiped_realloc(void *p, size_t n)
{
	union wiped_header *h;
	void *q;

	if (!p)
		return wiped_malloc(n);
	h = (union wiped_header *)p - 1;
	q = wiped_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, h->size < n ? h->size : n);
	wiped_free(p);
	return q;
}

static const XML_Memory_Handling_Suite wiped_memory = {wiped_malloc, wiped_realloc, wiped_free};

/* ------------------------------------------------------------------------ */
/* The parser core                                                            */
/* ------------------------------------------------------------------------ */

struct xml_doc {
	const char *what; /* "ListObjectsV2 reply", for messages */
	const char *root; /* the expected root element */
	/* Called at the start and end of each element below the root, with
	 * its path ("Contents/Key"); end gets the element's own text. */
	int (*start)(struct xml_doc *d, const char *path);
	int (*end)(struct xml_doc *d, const char *path, const char *text, size_t len);
	void *ctx;

	XML_Parser parser;
	int rc;
	size_t depth;
	char path[XML_MAX_PATH + 1];
	size_t path_len[XML_MAX_DEPTH + 1]; /* path length at each depth */
	char *text;
	size_t text_len, text_cap;
	char root_seen[64];
	int wrong_root;
	struct s3_error_reply error; /* when the root is <Error> instead */
};

static void doc_fail(struct xml_doc *d, int rc)
{
	if (!d->rc)
		d->rc = rc;
	XML_StopParser(d->parser, XML_FALSE);
}

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, '\x01');

	return sep ? sep + 1 : name;
}

static void copy_bounded(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void XMLCALL on_start(void *user, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_doc *d = user;
	const char *local = local_name(name);
	size_t len = strlen(local), at;

	(void)attrs;
	if (d->rc)
		return;
	d->text_len = 0;
	if (d->depth == 0 && !d->root_seen[0]) {
		copy_bounded(d->root_seen, sizeof(d->root_seen), local, len);
		d->wrong_root = strcmp(local, d->root) != 0;
		d->path[0] = '\0';
		d->path_len[0] = 0;
		d->depth = 1;
		return;
	}
	if (d->depth >= XML_MAX_DEPTH) {
		doc_fail(d, error_set(CF_ERR_FORMAT, "%s: elements nested too deeply", d->what));
		return;
	}
	at = d->path_len[d->depth - 1];
	if (at + 1 + len > XML_MAX_PATH) {
		doc_fail(d, error_set(CF_ERR_FORMAT, "%s: element names too long", d->what));
		return;
	}
	if (at > 0)
		d->path[at++] = '/';
	memcpy(d->path + at, local, len + 1);
	d->path_len[d->depth] = at + len;
	d->depth++;
	if (!d->wrong_root && d->start) {
		int rc = d->start(d, d->path);

		if (rc)
			doc_fail(d, rc);
	}
}

static void XMLCALL on_end(void *user, const XML_Char *name)
{
	struct xml_doc *d = user;
	const char *text = d->text ? d->text : "";
	int rc = 0;

	(void)name;
	if (d->rc)
		return;
	if (d->depth > 1) {
		if (d->wrong_root) {
			/* Keep what an <Error> (or STS <ErrorResponse><Error>) says. */
			if (!strcmp(d->path, "Code") || !strcmp(d->path, "Error/Code"))
				copy_bounded(d->error.code, sizeof(d->error.code), text,
				             d->text_len);
			else if (!strcmp(d->path, "Message") || !strcmp(d->path, "Error/Message"))
				copy_bounded(d->error.message, sizeof(d->error.message), text,
				             d->text_len);
			else if (!strcmp(d->path, "Region") || !strcmp(d->path, "Error/Region"))
				copy_bounded(d->error.region, sizeof(d->error.region), text,
				             d->text_len);
		} else if (d->end) {
			rc = d->end(d, d->path, text, d->text_len);
		}
		d->path[d->path_len[d->depth - 2]] = '\0';
	}
	d->depth--;
	d->text_len = 0;
	if (d->text)
		d->text[0] = '\0';
	if (rc)
		doc_fail(d, rc);
}

static void XMLCALL on_text(void *user, const XML_Char *s, int len)
{
	struct xml_doc *d = user;
	size_t n = (size_t)len;

	if (d->rc || len <= 0)
		return;
	if (d->text_len + n > XML_MAX_TEXT) {
		doc_fail(d, error_set(CF_ERR_LIMIT, "%s: an element's text is longer than %d bytes",
		                      d->what, XML_MAX_TEXT));
		return;
	}
	if (d->text_len + n + 1 > d->text_cap) {
		size_t cap = d->text_cap ? d->text_cap : 256;
		char *t;

		while (cap < d->text_len + n + 1)
			cap *= 2;
		t = wiped_realloc(d->text, cap);
		if (!t) {
			doc_fail(d,
			         error_set(CF_ERR_NOMEM, "out of memory parsing the %s", d->what));
			return;
		}
		d->text = t;
		d->text_cap = cap;
	}
	memcpy(d->text + d->text_len, s, n);
	d->text_len += n;
	d->text[d->text_len] = '\0';
}

static void XMLCALL on_doctype(void *user, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
	struct xml_doc *d = user;

	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	doc_fail(d, error_set(CF_ERR_FORMAT, "%s: refusing a document type declaration", d->what));
}

/*
 * Parses body with the handlers of d. Errors: CF_ERR_LIMIT (body too
 * large), CF_ERR_FORMAT (malformed, empty, or another root element; an
 * <Error> root is reported with its code and message), CF_ERR_NOMEM, and
 * whatever the handlers return.
 */
static int doc_parse(struct xml_doc *d, const char *body, size_t len)
{
	enum XML_Status st;

	if (len > XML_MAX_BODY)
		return error_set(CF_ERR_LIMIT, "%s: %zu bytes is more than the %u allowed", d->what,
		                 len, XML_MAX_BODY);
	d->parser = XML_ParserCreate_MM(NULL, &wiped_memory, "\x01");
	if (!d->parser)
		return error_set(CF_ERR_NOMEM, "out of memory creating an XML parser");
	XML_SetUserData(d->parser, d);
	XML_SetElementHandler(d->parser, on_start, on_end);
	XML_SetCharacterDataHandler(d->parser, on_text);
	XML_SetStartDoctypeDeclHandler(d->parser, on_doctype);
	st = XML_Parse(d->parser, body ? body : "", (int)len, XML_TRUE);
	if (st != XML_STATUS_OK && !d->rc)
		d->rc = error_set(CF_ERR_FORMAT, "%s: malformed XML at line %lu: %s", d->what,
		                  (unsigned long)XML_GetCurrentLineNumber(d->parser),
		                  XML_ErrorString(XML_GetErrorCode(d->parser)));
	if (!d->rc && d->wrong_root) {
		if (!strcmp(d->root_seen, "Error") || !strcmp(d->root_seen, "ErrorResponse"))
			d->rc = error_set(CF_ERR_FORMAT, "%s: the reply is an error: %s%s%s",
			                  d->what, d->error.code[0] ? d->error.code : "(no code)",
			                  d->error.message[0] ? ": " : "", d->error.message);
		else
			d->rc = error_set(CF_ERR_FORMAT, "%s: expected <%s>, got <%s>", d->what,
			                  d->root, d->root_seen);
	}
	XML_ParserFree(d->parser);
	d->parser = NULL;
	wiped_free(d->text);
	d->text = NULL;
	return d->rc;
}

static int dup_text(struct xml_doc *d, const char *text, size_t len, char **out)
{
	char *s = malloc(len + 1);

	if (!s)
		return error_set(CF_ERR_NOMEM, "out of memory parsing the %s", d->what);
	memcpy(s, text, len);
	s[len] = '\0';
	free(*out);
	*out = s;
	return 0;
}

static int parse_bool(struct xml_doc *d, const char *name, const char *text, int *out)
{
	if (!strcmp(text, "true")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(text, "false")) {
		*out = 0;
		return 0;
	}
	return error_set(CF_ERR_FORMAT, "%s: <%s> is '%.32s', not true or false", d->what, name,
	                 text);
}

static int parse_u64(struct xml_doc *d, const char *name, const char *text, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = text;

	if (!*p)
		return error_set(CF_ERR_FORMAT, "%s: <%s> is empty", d->what, name);
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return error_set(CF_ERR_FORMAT, "%s: <%s> is '%.32s', not a size", d->what,
			                 name, text);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

static int parse_time(struct xml_doc *d, const char *name, const char *text, int64_t *out)
{
	if (time_parse_iso(text, out) != 0)
		return error_set(CF_ERR_FORMAT, "%s: <%s> is '%.40s', not an ISO 8601 UTC time",
		                 d->what, name, text);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* <Error>                                                                    */
/* ------------------------------------------------------------------------ */

int s3_xml_error(const char *body, size_t len, struct s3_error_reply *out)
{
	struct xml_doc d;
	int saved_code = error_code(), is_error;
	char saved[512];

	/* Not an error is a normal answer here, so a failed parse must not
	 * replace the error the caller may be about to report. */
	copy_bounded(saved, sizeof(saved), error_message(), strlen(error_message()));
	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	d.what = "error reply";
	d.root = "";
	if (len == 0 || !body)
		return 0;
	doc_parse(&d, body, len);
	is_error = !strcmp(d.root_seen, "Error") || !strcmp(d.root_seen, "ErrorResponse");
	if (is_error)
		*out = d.error;
	if (saved_code)
		error_set(saved_code, "%s", saved);
	else
		error_clear();
	return is_error;
}

/* ------------------------------------------------------------------------ */
/* InitiateMultipartUploadResult and CompleteMultipartUploadResult             */
/* ------------------------------------------------------------------------ */

struct single_ctx {
	const char *want;
	char *value;
};

static int single_end(struct xml_doc *d, const char *path, const char *text, size_t len)
{
	struct single_ctx *c = d->ctx;

	if (!strcmp(path, c->want))
		return dup_text(d, text, len, &c->value);
	return 0;
}

static int parse_single(const char *what, const char *root, const char *want, const char *body,
                        size_t len, char **out)
{
	struct single_ctx c = {want, NULL};
	struct xml_doc d;
	int rc;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	d.what = what;
	d.root = root;
	d.end = single_end;
	d.ctx = &c;
	rc = doc_parse(&d, body, len);
	if (!rc && (!c.value || !c.value[0]))
		rc = error_set(CF_ERR_FORMAT, "%s: no <%s>", what, want);
	if (rc) {
		free(c.value);
		return rc;
	}
	*out = c.value;
	return 0;
}

int s3_xml_upload_id(const char *body, size_t len, char **upload_id)
{
	return parse_single("InitiateMultipartUpload reply", "InitiateMultipartUploadResult",
	                    "UploadId", body, len, upload_id);
}

int s3_xml_complete_etag(const char *body, size_t len, char **etag)
{
	return parse_single("CompleteMultipartUpload reply", "CompleteMultipartUploadResult",
	                    "ETag", body, len, etag);
}

int s3_xml_copy_etag(const char *body, size_t len, int part, char **etag)
{
	return part
	           ? parse_single("UploadPartCopy reply", "CopyPartResult", "ETag", body, len, etag)
	           : parse_single("CopyObject reply", "CopyObjectResult", "ETag", body, len, etag);
}

/* ------------------------------------------------------------------------ */
/* ListObjectsV2 and ListMultipartUploads                                     */
/* ------------------------------------------------------------------------ */

struct list_ctx {
	struct s3_list_reply *out;
	const char *entry;     /* "Contents" or "Upload" */
	const char *time_name; /* "LastModified" or "Initiated" */
	size_t cap;
	int has_size, has_truncated;
};

static int list_start(struct xml_doc *d, const char *path)
{
	struct list_ctx *c = d->ctx;
	struct s3_list_reply *r = c->out;

	if (strcmp(path, c->entry) != 0)
		return 0;
	if (r->nitems == XML_MAX_ITEMS)
		return error_set(CF_ERR_LIMIT, "%s: more than %d entries", d->what, XML_MAX_ITEMS);
	if (r->nitems == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct s3_list_item *items = realloc(r->items, cap * sizeof(*items));

		if (!items)
			return error_set(CF_ERR_NOMEM, "out of memory parsing the %s", d->what);
		r->items = items;
		c->cap = cap;
	}
	memset(&r->items[r->nitems], 0, sizeof(r->items[0]));
	r->nitems++;
	c->has_size = 0;
	return 0;
}

static int list_end(struct xml_doc *d, const char *path, const char *text, size_t len)
{
	struct list_ctx *c = d->ctx;
	struct s3_list_reply *r = c->out;
	size_t elen = strlen(c->entry);

	if (!strncmp(path, c->entry, elen) && (path[elen] == '/' || path[elen] == '\0')) {
		struct s3_list_item *it = &r->items[r->nitems - 1];
		const char *field = path[elen] ? path + elen + 1 : "";

		if (!strcmp(field, "Key"))
			return dup_text(d, text, len, &it->key);
		if (!strcmp(field, "UploadId"))
			return dup_text(d, text, len, &it->upload_id);
		if (!strcmp(field, "Size")) {
			c->has_size = 1;
			return parse_u64(d, "Size", text, &it->size);
		}
		if (!strcmp(field, c->time_name))
			return parse_time(d, c->time_name, text, &it->time_ms);
		if (field[0] == '\0') {
			/* The entry is complete: check it has what callers rely on. */
			if (!it->key)
				return error_set(CF_ERR_FORMAT, "%s: a <%s> without <Key>", d->what,
				                 c->entry);
			if (!strcmp(c->entry, "Contents") && !c->has_size)
				return error_set(CF_ERR_FORMAT,
				                 "%s: <Contents> of '%s' without <Size>", d->what,
				                 it->key);
			if (!strcmp(c->entry, "Upload") && (!it->upload_id || !it->upload_id[0]))
				return error_set(CF_ERR_FORMAT,
				                 "%s: <Upload> of '%s' without <UploadId>", d->what,
				                 it->key);
		}
		return 0;
	}
	if (!strcmp(path, "IsTruncated")) {
		c->has_truncated = 1;
		return parse_bool(d, "IsTruncated", text, &r->truncated);
	}
	if (!strcmp(path, "NextContinuationToken"))
		return dup_text(d, text, len, &r->next_token);
	if (!strcmp(path, "NextKeyMarker"))
		return dup_text(d, text, len, &r->next_key_marker);
	if (!strcmp(path, "NextUploadIdMarker"))
		return dup_text(d, text, len, &r->next_upload_id_marker);
	return 0;
}

static int parse_list(const char *what, const char *root, const char *entry, const char *time_name,
                      const char *body, size_t len, struct s3_list_reply *out)
{
	struct list_ctx c = {out, entry, time_name, 0, 0, 0};
	struct xml_doc d;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	d.what = what;
	d.root = root;
	d.start = list_start;
	d.end = list_end;
	d.ctx = &c;
	rc = doc_parse(&d, body, len);
	/* A truncated list that does not say where to go on would be listed
	 * again from the start, forever. */
	if (!rc && out->truncated && !strcmp(entry, "Contents") &&
	    (!out->next_token || !out->next_token[0]))
		rc =
		    error_set(CF_ERR_FORMAT, "%s: truncated without <NextContinuationToken>", what);
	if (!rc && out->truncated && !strcmp(entry, "Upload") &&
	    (!out->next_key_marker || !out->next_key_marker[0]))
		rc = error_set(CF_ERR_FORMAT, "%s: truncated without <NextKeyMarker>", what);
	if (rc)
		s3_list_reply_free(out);
	return rc;
}

int s3_xml_list_objects(const char *body, size_t len, struct s3_list_reply *out)
{
	return parse_list("ListObjectsV2 reply", "ListBucketResult", "Contents", "LastModified",
	                  body, len, out);
}

int s3_xml_list_uploads(const char *body, size_t len, struct s3_list_reply *out)
{
	return parse_list("ListMultipartUploads reply", "ListMultipartUploadsResult", "Upload",
	                  "Initiated", body, len, out);
}

void s3_list_reply_free(struct s3_list_reply *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nitems; i++) {
		free(r->items[i].key);
		free(r->items[i].upload_id);
	}
	free(r->items);
	free(r->next_token);
	free(r->next_key_marker);
	free(r->next_upload_id_marker);
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------------ */
/* DeleteResult                                                               */
/* ------------------------------------------------------------------------ */

struct delete_ctx {
	struct s3_delete_error *errors;
	size_t n, cap;
};

static int delete_start(struct xml_doc *d, const char *path)
{
	struct delete_ctx *c = d->ctx;

	if (strcmp(path, "Error") != 0)
		return 0;
	if (c->n == XML_MAX_ITEMS)
		return error_set(CF_ERR_LIMIT, "%s: more than %d entries", d->what, XML_MAX_ITEMS);
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct s3_delete_error *e = realloc(c->errors, cap * sizeof(*e));

		if (!e)
			return error_set(CF_ERR_NOMEM, "out of memory parsing the %s", d->what);
		c->errors = e;
		c->cap = cap;
	}
	memset(&c->errors[c->n], 0, sizeof(c->errors[0]));
	c->n++;
	return 0;
}

static int delete_end(struct xml_doc *d, const char *path, const char *text, size_t len)
{
	struct delete_ctx *c = d->ctx;
	struct s3_delete_error *e = c->n ? &c->errors[c->n - 1] : NULL;

	if (!e || strncmp(path, "Error", 5) != 0)
		return 0;
	if (!strcmp(path, "Error/Key"))
		return dup_text(d, text, len, &e->key);
	if (!strcmp(path, "Error/Code"))
		copy_bounded(e->code, sizeof(e->code), text, len);
	else if (!strcmp(path, "Error/Message"))
		copy_bounded(e->message, sizeof(e->message), text, len);
	else if (!strcmp(path, "Error") && !e->key)
		return error_set(CF_ERR_FORMAT, "%s: an <Error> without <Key>", d->what);
	return 0;
}

int s3_xml_delete_result(const char *body, size_t len, struct s3_delete_error **errors,
                         size_t *nerrors)
{
	struct delete_ctx c = {NULL, 0, 0};
	struct xml_doc d;
	int rc;

	*errors = NULL;
	*nerrors = 0;
	memset(&d, 0, sizeof(d));
	d.what = "DeleteObjects reply";
	d.root = "DeleteResult";
	d.start = delete_start;
	d.end = delete_end;
	d.ctx = &c;
	rc = doc_parse(&d, body, len);
	if (rc) {
		s3_delete_errors_free(c.errors, c.n);
		return rc;
	}
	*errors = c.errors;
	*nerrors = c.n;
	return 0;
}

void s3_delete_errors_free(struct s3_delete_error *e, size_t n)
{
	if (!e)
		return;
	for (size_t i = 0; i < n; i++)
		free(e[i].key);
	free(e);
}

/* ------------------------------------------------------------------------ */
/* STS AssumeRoleWithWebIdentityResponse                                      */
/* ------------------------------------------------------------------------ */

#define STS_CREDS "AssumeRoleWithWebIdentityResult/Credentials/"

struct sts_ctx {
	struct s3_credentials *out;
	int have_expiration;
};

static int secret_copy(struct xml_doc *d, const char *text, size_t len, char **out)
{
	secret_free(*out);
	*out = secret_strndup(text, len);
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory parsing the %s", d->what);
	return 0;
}

static int sts_end(struct xml_doc *d, const char *path, const char *text, size_t len)
{
	struct sts_ctx *c = d->ctx;
	const char *field;
	int64_t ms;
	int rc;

	if (strncmp(path, STS_CREDS, strlen(STS_CREDS)) != 0)
		return 0;
	field = path + strlen(STS_CREDS);
	if (!strcmp(field, "AccessKeyId")) {
		if (len >= sizeof(c->out->access_key))
			return error_set(CF_ERR_FORMAT,
			                 "%s: <AccessKeyId> is longer than %zu bytes", d->what,
			                 sizeof(c->out->access_key) - 1);
		copy_bounded(c->out->access_key, sizeof(c->out->access_key), text, len);
		return 0;
	}
	if (!strcmp(field, "SecretAccessKey"))
		return secret_copy(d, text, len, &c->out->secret_key);
	if (!strcmp(field, "SessionToken"))
		return secret_copy(d, text, len, &c->out->token);
	if (!strcmp(field, "Expiration")) {
		rc = parse_time(d, "Expiration", text, &ms);
		if (!rc) {
			c->out->expires = (time_t)(ms / 1000);
			c->have_expiration = 1;
		}
		return rc;
	}
	return 0;
}

int s3_xml_sts_credentials(const char *body, size_t len, struct s3_credentials *out)
{
	struct sts_ctx c = {out, 0};
	struct xml_doc d;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sodium_init() < 0)
		return error_set(CF_ERR_INTERNAL, "libsodium failed to initialise");
	memset(&d, 0, sizeof(d));
	d.what = "STS AssumeRoleWithWebIdentity reply";
	d.root = "AssumeRoleWithWebIdentityResponse";
	d.end = sts_end;
	d.ctx = &c;
	rc = doc_parse(&d, body, len);
	if (!rc && (!out->access_key[0] || !out->secret_key || !out->secret_key[0] || !out->token ||
	            !out->token[0] || !c.have_expiration))
		rc = error_set(CF_ERR_FORMAT,
		               "%s: <Credentials> lacks AccessKeyId, SecretAccessKey, "
		               "SessionToken or Expiration",
		               d.what);
	if (rc) {
		/* Cleared here, not with s3_cred.c's helper: the parser does not
		 * call back into the credential chain that calls it. */
		secret_free(out->secret_key);
		secret_free(out->token);
		sodium_memzero(out, sizeof(*out));
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Request bodies                                                             */
/* ------------------------------------------------------------------------ */

/* Appends text with the five XML special characters escaped and line
 * breaks and tabs as character references (a literal CR would be read back
 * as LF). Other control characters cannot be written in XML 1.0. */
static int append_escaped(struct buf *out, const char *text, const char *what)
{
	int rc = 0;

	for (const char *p = text; *p && !rc; p++) {
		unsigned char c = (unsigned char)*p;

		switch (c) {
		case '&':
			rc = buf_append(out, "&amp;", 5);
			break;
		case '<':
			rc = buf_append(out, "&lt;", 4);
			break;
		case '>':
			rc = buf_append(out, "&gt;", 4);
			break;
		case '"':
			rc = buf_append(out, "&quot;", 6);
			break;
		case '\'':
			rc = buf_append(out, "&apos;", 6);
			break;
		case '\t':
			rc = buf_append(out, "&#9;", 4);
			break;
		case '\n':
			rc = buf_append(out, "&#10;", 5);
			break;
		case '\r':
			rc = buf_append(out, "&#13;", 5);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				return error_set(
				    CF_ERR_FORMAT,
				    "%s holds a control character that XML cannot carry", what);
			rc = buf_append(out, p, 1);
		}
	}
	return rc;
}

int s3_xml_complete_body(char *const *etags, size_t n, struct buf *out)
{
	int rc;

	if (n == 0 || n > 10000)
		return error_set(CF_ERR_INTERNAL, "CompleteMultipartUpload with %zu parts", n);
	rc = buf_printf(out, "<CompleteMultipartUpload xmlns=\"" S3_XMLNS "\">");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = buf_printf(out, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		if (!rc)
			rc = append_escaped(out, etags[i], "an ETag");
		if (!rc)
			rc = buf_printf(out, "</ETag></Part>");
	}
	if (!rc)
		rc = buf_printf(out, "</CompleteMultipartUpload>");
	return rc;
}

int s3_xml_delete_body(char *const *keys, size_t n, struct buf *out)
{
	int rc;

	if (n == 0 || n > 1000)
		return error_set(CF_ERR_INTERNAL, "DeleteObjects with %zu keys", n);
	rc = buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	                     "<Delete xmlns=\"" S3_XMLNS "\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = buf_printf(out, "<Object><Key>");
		if (!rc)
			rc = append_escaped(out, keys[i], "an object key");
		if (!rc)
			rc = buf_printf(out, "</Key></Object>");
	}
	if (!rc)
		rc = buf_printf(out, "</Delete>");
	return rc;
}
