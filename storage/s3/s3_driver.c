/*
 * s3_driver: the storage vtable over S3 (any S3-compatible service).
 *
 * Writes stream into a multipart upload: parts of part_size bytes (growing on
 * the schedule below) go up from upload_concurrency worker threads while the
 * next part fills, each with its SHA-256 as the signed payload hash that the
 * server checks (Content-MD5 and the ETag checked against it under Object
 * Lock, which requires it: s3_body_check()), hashed once per part in the
 * worker that sends it. An object smaller
 * than one part is a single PUT. Commit completes the upload; abort (or any
 * failure) aborts it. Reads fetch ranges from download_concurrency threads and
 * hand them to the caller in order.
 *
 * Part size schedule: parts 1-1000 have part_size bytes, and the size doubles
 * every 1000 parts after that, up to S3's 5 GiB limit. 10,000 parts then hold
 * 1023 x 1000 x part_size bytes: 16 TiB for the default 16 MiB, and S3's
 * 5 TiB object limit from a part_size of 5.2 MiB. Memory is (in-flight parts
 * + the part being filled) x the current part size: part_size x
 * (upload_concurrency + 1) for the first 1000 parts.
 */
#include "storage/s3/s3.h"
#include "crypto/crypto.h"
#include "storage/storage_intern.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_DEFAULT_PART_SIZE (16ULL * 1024 * 1024)
#define S3_MAX_PART_SIZE (5ULL * 1024 * 1024 * 1024)
#define S3_MAX_PARTS 10000
#define S3_PARTS_PER_TIER 1000
#define S3_MAX_CONCURRENCY 64
#define S3_READ_CHUNK ((size_t)1024 * 1024) /* storage.h: cb gets at most 1 MiB */
#define S3_DELETE_BATCH 1000                /* DeleteObjects' limit */

struct s3_repo {
	struct s3_client *c;
	uint64_t part_size;
	int upload_conc;
	int download_conc;
	char *storage_class;
	char *lock_mode;
	int lock_days;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */
/* ------------------------------------------------------------------------ */

/* MD5 of data as base64 (Content-MD5) and as hex (what an ETag holds).
 * Errors: those of hash_md5(). */
static int s3_md5(const uint8_t *data, size_t len, char b64[32], char hex[33])
{
	uint8_t d[HASH_MD5_LEN];
	int rc = hash_md5(data, len, d);

	if (rc) {
		b64[0] = hex[0] = '\0';
		return rc;
	}
	sodium_bin2base64(b64, 32, d, sizeof(d), sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2hex(hex, 33, d, sizeof(d));
	return 0;
}

/*
 * How a part or object body is protected on its way up. Its SHA-256 goes as
 * the signed payload hash (x-amz-content-sha256), which the server checks
 * against the body it received (XAmzContentSHA256Mismatch): libcrypto's
 * SHA-256 uses the CPU's SHA instructions and costs a third of an MD5 here,
 * and each target of a backup pays it again. Under Object Lock, S3 requires
 * a Content-MD5 instead: then the body goes as UNSIGNED-PAYLOAD with its MD5,
 * and the returned ETag is checked against it.
 */
struct s3_body_check {
	char b64[32];                      /* Content-MD5, when md5 */
	char hex[HASH_SHA256_HEX_LEN + 1]; /* the SHA-256, or the MD5 when md5 */
	int md5;
};

static int s3_body_check(const struct s3_repo *r, const uint8_t *data, size_t len,
                         struct s3_body_check *c, struct s3_request *req)
{
	int rc;

	c->md5 = r->lock_mode != NULL;
	if (c->md5) {
		rc = s3_md5(data, len, c->b64, c->hex);
		req->body_md5 = c->b64;
	} else {
		rc = hash_sha256_hex(data, len, c->hex);
		req->body_sha256 = c->hex;
	}
	return rc;
}

/* 1 if an ETag ("\"hex\"", any case) holds the given hex MD5. */
static int s3_etag_matches(const char *etag, const char *hex)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
		etag++;
		n -= 2;
	}
	return n == 32 && strncasecmp(etag, hex, 32) == 0;
}

/* The headers every new object carries: storage class and object lock. */
static size_t s3_object_headers(const struct s3_repo *r, struct s3_header *h, char *until,
                                size_t until_size)
{
	size_t n = 0;

	if (r->storage_class)
		h[n++] = (struct s3_header){"x-amz-storage-class", r->storage_class};
	if (r->lock_mode) {
		time_t t = time(NULL) + (time_t)r->lock_days * 86400;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(until, until_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
		h[n++] = (struct s3_header){"x-amz-object-lock-mode", r->lock_mode};
		h[n++] = (struct s3_header){"x-amz-object-lock-retain-until-date", until};
	}
	return n;
}

/* The size of part number n (1-based) on the growth schedule. */
static uint64_t s3_part_size_for(const struct s3_repo *r, unsigned n)
{
	unsigned tier = (n - 1) / S3_PARTS_PER_TIER;
	uint64_t size = r->part_size;

	while (tier-- > 0 && size < S3_MAX_PART_SIZE)
		size *= 2;
	return size > S3_MAX_PART_SIZE ? S3_MAX_PART_SIZE : size;
}

/* ------------------------------------------------------------------------ */
/* Open                                                                       */
/* ------------------------------------------------------------------------ */

static void s3_free(void *drv)
{
	struct s3_repo *r = drv;

	if (!r)
		return;
	s3_client_free(r->c);
	free(r->storage_class);
	free(r->lock_mode);
	free(r);
}

static int s3_open(const struct storage_options *opts, void **drv)
{
	struct s3_repo *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return error_set(CF_ERR_NOMEM, "out of memory");
	r->part_size = opts->s3.part_size ? opts->s3.part_size : S3_DEFAULT_PART_SIZE;
	r->upload_conc = opts->s3.upload_concurrency > 0 ? opts->s3.upload_concurrency : 4;
	r->download_conc = opts->s3.download_concurrency > 0 ? opts->s3.download_concurrency : 4;
	if (r->upload_conc > S3_MAX_CONCURRENCY)
		r->upload_conc = S3_MAX_CONCURRENCY;
	if (r->download_conc > S3_MAX_CONCURRENCY)
		r->download_conc = S3_MAX_CONCURRENCY;
	r->lock_days = opts->s3.object_lock_days;
	r->storage_class = opts->s3.storage_class ? strdup(opts->s3.storage_class) : NULL;
	r->lock_mode = opts->s3.object_lock_mode ? strdup(opts->s3.object_lock_mode) : NULL;
	if (r->part_size > S3_MAX_PART_SIZE) {
		s3_free(r);
		return error_set(CF_ERR_CONFIG, "s3: part_size is larger than S3's 5 GiB limit");
	}
	if (r->lock_mode && r->lock_days <= 0) {
		s3_free(r);
		return error_set(CF_ERR_CONFIG, "s3: object_lock_mode needs object_lock_days > 0");
	}
	/* No request here: the first real one reports a missing bucket or
	 * refused keys in the same words (s3_http.c), and a run pays no extra
	 * round trip for a check. */
	rc = s3_client_new(&opts->s3, &r->c);
	if (rc) {
		s3_free(r);
		return rc;
	}
	*drv = r;
	return 0;
}

static const char *s3_describe(void *drv)
{
	return s3_client_describe(((struct s3_repo *)drv)->c);
}

/* Appends name=value (value URI-encoded; NULL: the bare name) to a query. The
 * signer sorts the parameters, so their order here does not matter. */
static int s3_query_add(struct buf *q, const char *name, const char *value)
{
	struct buf e;
	int rc;

	if (!value)
		return buf_printf(q, "%s%s", q->len ? "&" : "", name);
	buf_init(&e, 65536);
	rc = s3_uri_encode(value, 0, &e);
	if (!rc)
		rc =
		    buf_printf(q, "%s%s=%s", q->len ? "&" : "", name, e.data ? (char *)e.data : "");
	buf_free(&e);
	return rc;
}

/* GETs and parses one page of a listing: ListObjectsV2, or ListMultipartUploads
 * when uploads is set. list is initialised by the call. */
static int s3_list_page(struct s3_repo *r, const struct buf *query, int uploads,
                        struct s3_list_reply *list)
{
	struct s3_response resp;
	struct s3_request req;
	int rc;

	memset(list, 0, sizeof(*list));
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.query = (char *)query->data;
	req.max_body = 16 * 1024 * 1024;
	req.what = uploads ? "list multipart uploads" : "list";
	rc = s3_http_request(r->c, &req, &resp);
	if (!rc && uploads)
		rc = s3_xml_list_uploads((const char *)resp.body.data, resp.body.len, list);
	else if (!rc)
		rc = s3_xml_list_objects((const char *)resp.body.data, resp.body.len, list);
	s3_response_free(&resp);
	return rc;
}

/* Aborts a multipart upload of bucket_key. CF_ERR_NOTFOUND (no message) when
 * it is already gone: completed or aborted meanwhile. */
static int s3_abort_upload(struct s3_repo *r, const char *bucket_key, const char *upload_id,
                           const char *what, int after_cancel)
{
	struct s3_response resp;
	struct s3_request req;
	struct buf q;
	int rc;

	buf_init(&q, 4096);
	rc = s3_query_add(&q, "uploadId", upload_id);
	memset(&req, 0, sizeof(req));
	req.method = "DELETE";
	req.key = bucket_key;
	req.query = (char *)q.data;
	req.what = what;
	req.after_cancel = after_cancel;
	if (!rc) {
		rc = s3_http_request(r->c, &req, &resp);
		s3_response_free(&resp);
	}
	buf_free(&q);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Head, delete                                                               */
/* ------------------------------------------------------------------------ */

/* A request without a body on one object: HEAD or DELETE. */
static int s3_key_request(struct s3_repo *r, const char *method, const char *key,
                          struct s3_response *resp)
{
	struct s3_request req;
	struct buf bk;
	int rc;

	memset(resp, 0, sizeof(*resp));
	rc = s3_client_key(r->c, key, &bk);
	if (rc)
		return rc;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.key = (char *)bk.data;
	rc = s3_http_request(r->c, &req, resp);
	buf_free(&bk);
	return rc;
}

/* The time in an x-amz-object-lock-retain-until-date header
 * ("2026-12-06T04:00:00.000Z", with any number of fraction digits), or 0.
 * An unreadable date is taken as a lock for a day from now: deleting an
 * object whose lock cannot be read is not tried. */
static int64_t s3_retain_until(const char *v)
{
	char whole[32];
	int64_t ms;

	if (!v[0])
		return 0;
	if (strlen(v) >= 20 && v[19] != 'Z') {
		snprintf(whole, sizeof(whole), "%.19sZ", v);
		v = whole;
	}
	if (time_parse_iso(v, &ms)) {
		error_clear();
		return time_real_ms() + 86400 * 1000LL;
	}
	return ms;
}

static int s3_head(void *drv, const char *key, struct storage_info *info)
{
	struct s3_repo *r = drv;
	struct s3_response resp;
	int rc = s3_key_request(r, "HEAD", key, &resp);

	if (rc == CF_ERR_NOTFOUND)
		error_set(rc, "s3: no object s3://%s%s", s3_client_describe(r->c) + 5, key);
	if (!rc) {
		time_t t = resp.last_modified[0] ? curl_getdate(resp.last_modified, NULL) : 0;

		info->size = resp.content_length > 0 ? (uint64_t)resp.content_length : 0;
		info->mtime_ms = t > 0 ? (int64_t)t * 1000 : 0;
		info->retain_until_ms = s3_retain_until(resp.retain_until);
	}
	s3_response_free(&resp);
	return rc;
}

static int s3_remove(void *drv, const char *key)
{
	struct s3_response resp;
	int rc = s3_key_request(drv, "DELETE", key, &resp);

	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = 0;
	s3_response_free(&resp);
	return rc;
}

/* Deletes one batch of at most S3_DELETE_BATCH keys with DeleteObjects.
 * A missing key is success; otherwise the error names the first key of the
 * batch (in the caller's order) that was not deleted. */
static int s3_remove_batch(struct s3_repo *r, const char *const *keys, size_t n)
{
	struct s3_delete_error *errs = NULL;
	const struct s3_delete_error *fe = NULL;
	size_t nerrs = 0, first = n;
	char **bkeys = calloc(n, sizeof(*bkeys));
	char b64[32], hex[33];
	struct s3_response resp;
	struct s3_request req;
	struct buf body;
	int rc = 0;

	memset(&resp, 0, sizeof(resp));
	buf_init(&body, 16 * 1024 * 1024);
	if (!bkeys)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		struct buf bk;

		rc = s3_client_key(r->c, keys[i], &bk);
		bkeys[i] = (char *)bk.data;
		if (!rc && !bkeys[i])
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = s3_xml_delete_body(bkeys, n, &body);
	if (!rc) {
		/* RGW and S3 refuse a DeleteObjects without Content-MD5 (or an
		 * x-amz-checksum-* header). */
		rc = s3_md5(body.data, body.len, b64, hex);
	}
	if (!rc) {
		memset(&req, 0, sizeof(req));
		req.method = "POST";
		req.query = "delete";
		req.body = body.data;
		req.body_len = body.len;
		req.body_md5 = b64;
		req.max_body = 16 * 1024 * 1024;
		req.what = "delete objects";
		rc = s3_http_request(r->c, &req, &resp);
		if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
			rc = error_set(CF_ERR_STORAGE, "s3: DeleteObjects in %s: HTTP 404",
			               s3_client_describe(r->c));
	}
	if (!rc)
		rc = s3_xml_delete_result((const char *)resp.body.data, resp.body.len, &errs,
		                          &nerrs);
	for (size_t e = 0; !rc && e < nerrs; e++) {
		size_t i = 0;

		if (!strcmp(errs[e].code, "NoSuchKey"))
			continue; /* already gone: what deleting wanted */
		while (i < n && strcmp(bkeys[i], errs[e].key) != 0)
			i++;
		if (!fe || i < first) {
			fe = &errs[e];
			first = i;
		}
	}
	if (!rc && fe) {
		size_t plen = s3_client_prefix_len(r->c);

		rc = error_set(CF_ERR_STORAGE, "s3: cannot delete %s%s: %s%s%s (DeleteObjects)",
		               s3_client_describe(r->c),
		               first < n ? keys[first]
		                         : (strlen(fe->key) > plen ? fe->key + plen : fe->key),
		               fe->code[0] ? fe->code : "(no error code)",
		               fe->message[0] ? ": " : "", fe->message);
	}
	s3_delete_errors_free(errs, nerrs);
	s3_response_free(&resp);
	buf_free(&body);
	for (size_t i = 0; i < n; i++)
		free(bkeys[i]);
	free(bkeys);
	return rc;
}

static int s3_remove_many(void *drv, const char *const *keys, size_t n)
{
	int rc = 0;

	/* Batch after batch, in order: a batch ends before the next starts. */
	for (size_t i = 0; !rc && i < n; i += S3_DELETE_BATCH) {
		rc = cancel_check();
		if (!rc)
			rc = s3_remove_batch(drv, keys + i,
			                     n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH);
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* List                                                                       */
/* ------------------------------------------------------------------------ */

static int s3_list(void *drv, const char *prefix, storage_list_cb cb, void *ctx)
{
	struct s3_repo *r = drv;
	size_t plen = s3_client_prefix_len(r->c);
	char *token = NULL;
	struct buf bp;
	int rc;

	rc = s3_client_key(r->c, prefix, &bp);
	while (!rc) {
		struct s3_list_reply list;
		struct buf q;

		buf_init(&q, 65536);
		rc = s3_query_add(&q, "list-type", "2");
		if (!rc)
			rc = s3_query_add(&q, "prefix", (char *)bp.data);
		if (!rc && token)
			rc = s3_query_add(&q, "continuation-token", token);
		if (!rc)
			rc = s3_list_page(r, &q, 0, &list);
		else
			memset(&list, 0, sizeof(list));
		buf_free(&q);
		for (size_t i = 0; !rc && i < list.nitems; i++) {
			struct storage_info info = {list.items[i].size, list.items[i].time_ms, 0};

			if (strlen(list.items[i].key) <= plen)
				continue;
			rc = cb(ctx, list.items[i].key + plen, &info);
		}
		free(token);
		token = NULL;
		if (!rc && list.truncated && list.next_token)
			token = strdup(list.next_token);
		s3_list_reply_free(&list);
		if (rc || !token)
			break;
	}
	free(token);
	buf_free(&bp);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Multipart upload                                                           */
/* ------------------------------------------------------------------------ */

#define S3_HUGE_PAGE (2u << 20)

struct s3_part {
	uint8_t *data;
	size_t len;
	size_t cap;
	unsigned number;
	struct s3_part *next;
};

/*
 * A write. The caller's thread alone uses r, key, upload_id (set before the
 * workers start, read-only after), fill, next_number, workers and nworkers;
 * everything from mu down is shared with the workers and read and written
 * only under mu (etags too). err is the write's first failure, a part's or
 * the caller's own (a failed write_data): once set, no part is sent, commit
 * fails with it and the upload is aborted.
 */
struct s3_write {
	struct s3_repo *r;
	struct buf key; /* bucket key */
	char *upload_id;
	struct s3_part *fill; /* the part being filled */
	unsigned next_number; /* number of the next part to fill */
	pthread_t workers[S3_MAX_CONCURRENCY];
	int nworkers;
	pthread_mutex_t mu;
	char **etags; /* by part number - 1 */
	pthread_cond_t cv;
	struct s3_part *queue_head, *queue_tail; /* parts waiting for a worker */
	struct s3_part *free_parts;              /* buffers to reuse */
	int buffers;                             /* part buffers in existence */
	int busy;                                /* parts queued or uploading */
	int stop;
	int err;
	char errmsg[1024];
};

/*
 * A part buffer of size bytes. Filling a fresh buffer faults in every page of
 * it, and with several targets each has its own buffers: on 2 MiB aligned
 * memory advised for transparent huge pages (THP "madvise", Debian's
 * default) that is one fault per 2 MiB instead of per 4 KiB: 0.3 s less CPU
 * for a 512 MiB backup into two regions (bench/bench_targets.sh).
 */
static uint8_t *s3_part_buffer(size_t size)
{
	void *data = NULL;

	/* Only whole huge pages: a 5 MiB part must not cost 6 MiB of RAM. */
	if (size < S3_HUGE_PAGE || size % S3_HUGE_PAGE)
		return malloc(size);
	if (posix_memalign(&data, S3_HUGE_PAGE, size) != 0)
		return NULL;
	(void)madvise(data, size, MADV_HUGEPAGE); /* a hint: ignored without THP */
	return data;
}

static void s3_part_free(struct s3_part *p)
{
	if (p) {
		free(p->data);
		free(p);
	}
}

/* Uploads one part; records its ETag. Runs in a worker thread. */
static int s3_upload_part(struct s3_write *w, struct s3_part *p)
{
	struct s3_body_check check;
	struct s3_response resp;
	struct s3_request req;
	char what[64], query[600];
	int rc;

	memset(&req, 0, sizeof(req));
	rc = s3_body_check(w->r, p->data, p->len, &check, &req);
	if (rc)
		return rc;
	snprintf(query, sizeof(query), "partNumber=%u&uploadId=%s", p->number, w->upload_id);
	snprintf(what, sizeof(what), "upload part %u", p->number);
	req.method = "PUT";
	req.key = (char *)w->key.data;
	req.query = query;
	req.body = p->data;
	req.body_len = p->len;
	req.what = what;
	rc = s3_http_request(w->r->c, &req, &resp);
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = error_set(CF_ERR_STORAGE, "s3: upload part %u of s3://%s: the upload is gone",
		               p->number, (char *)w->key.data);
	if (!rc && check.md5 && !s3_etag_matches(resp.etag, check.hex))
		rc = error_set(
		    CF_ERR_STORAGE, "s3: part %u of %s came back with ETag %s, expected the MD5 %s",
		    p->number, (char *)w->key.data, resp.etag[0] ? resp.etag : "(none)", check.hex);
	if (!rc && !resp.etag[0])
		rc = error_set(CF_ERR_STORAGE, "s3: part %u of %s came back without an ETag",
		               p->number, (char *)w->key.data);
	if (!rc) {
		pthread_mutex_lock(&w->mu);
		w->etags[p->number - 1] = strdup(resp.etag);
		if (!w->etags[p->number - 1])
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		pthread_mutex_unlock(&w->mu);
	}
	s3_response_free(&resp);
	return rc;
}

/* Records the write's first failure (rc with the thread's message); w->mu held. */
static void s3_write_fail_locked(struct s3_write *w, int rc)
{
	if (rc && !w->err) {
		w->err = rc;
		snprintf(w->errmsg, sizeof(w->errmsg), "%s", error_message());
	}
}

/* The failure recorded, again as this thread's error, or 0; w->mu held. */
static int s3_write_error_locked(const struct s3_write *w)
{
	return w->err ? error_set(w->err, "%s", w->errmsg) : 0;
}

/* Waits on w->cv (w->mu held) for at most 100 ms, so that a cancellation is
 * seen even when no worker has anything to say. Returns CF_ERR_INTERRUPTED
 * once cancelled, else 0. */
static int s3_write_wait_locked(struct s3_write *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	return cancel_check();
}

static void *s3_upload_worker(void *arg)
{
	struct s3_write *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct s3_part *p;
		int rc = 0, failed;

		while (!w->queue_head && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->queue_head)
			break;
		p = w->queue_head;
		w->queue_head = p->next;
		if (!w->queue_head)
			w->queue_tail = NULL;
		failed = w->err;
		pthread_mutex_unlock(&w->mu);
		/* Once a part failed the upload is lost: the rest are not sent. */
		if (!failed)
			rc = s3_upload_part(w, p);
		pthread_mutex_lock(&w->mu);
		s3_write_fail_locked(w, rc);
		p->len = 0;
		p->next = w->free_parts;
		w->free_parts = p;
		w->busy--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int s3_write_initiate(struct s3_write *w)
{
	struct s3_header h[4];
	char until[32];
	struct s3_response resp;
	struct s3_request req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.key = (char *)w->key.data;
	req.query = "uploads";
	req.headers = h;
	req.nheaders = s3_object_headers(w->r, h, until, sizeof(until));
	req.what = "create multipart upload";
	rc = s3_http_request(w->r->c, &req, &resp);
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = error_set(CF_ERR_STORAGE, "s3: cannot start an upload of s3://%s",
		               (char *)w->key.data);
	if (!rc)
		rc = s3_xml_upload_id((const char *)resp.body.data, resp.body.len, &w->upload_id);
	s3_response_free(&resp);
	if (rc)
		return rc;
	w->etags = calloc(S3_MAX_PARTS, sizeof(*w->etags));
	if (!w->etags)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (int i = 0; i < w->r->upload_conc; i++) {
		if (pthread_create(&w->workers[i], NULL, s3_upload_worker, w) != 0)
			return error_set(CF_ERR_INTERNAL, "cannot start an upload thread");
		w->nworkers++;
	}
	log_debug("s3: upload %s of %s started", w->upload_id, (char *)w->key.data);
	return 0;
}

/* Takes a buffer for part number n: a reused one if big enough, else a new
 * one while fewer than upload_concurrency + 1 exist, else waits for one. */
static int s3_write_take_buffer(struct s3_write *w, unsigned n)
{
	uint64_t size = s3_part_size_for(w->r, n);
	struct s3_part *p = NULL;
	int rc = 0;

	/* Whether the write failed is decided under the lock, together with
	 * taking a buffer: a buffer taken is never dropped on an error. */
	pthread_mutex_lock(&w->mu);
	for (;;) {
		rc = s3_write_error_locked(w);
		if (rc)
			break;
		if (w->free_parts) {
			p = w->free_parts;
			w->free_parts = p->next;
			break;
		}
		if (w->buffers < w->r->upload_conc + 1) {
			w->buffers++;
			break;
		}
		rc = s3_write_wait_locked(w);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&w->mu);
	if (rc)
		return rc;
	if (p && p->cap < size) {
		/* The schedule grew the part size: this buffer is too small. */
		s3_part_free(p);
		p = NULL;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (p)
			p->data = s3_part_buffer(size);
		if (!p || !p->data) {
			s3_part_free(p);
			return error_set(CF_ERR_NOMEM, "out of memory for a %llu-byte part",
			                 (unsigned long long)size);
		}
		p->cap = size;
	}
	p->len = 0;
	p->number = n;
	p->next = NULL;
	w->fill = p;
	return 0;
}

/* Queues the filled part for upload. */
static int s3_write_queue(struct s3_write *w)
{
	struct s3_part *p = w->fill;

	if (p->number > S3_MAX_PARTS)
		return error_set(CF_ERR_LIMIT, "s3: %s would need more than %d parts",
		                 (char *)w->key.data, S3_MAX_PARTS);
	w->fill = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->queue_tail)
		w->queue_tail->next = p;
	else
		w->queue_head = p;
	w->queue_tail = p;
	w->busy++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void s3_write_release(struct s3_write *w);

/* A new write of key into r (no buffer yet), refused when the key exists. */
static int s3_write_start(struct s3_repo *r, const char *key, struct s3_write **out)
{
	struct storage_info info;
	struct s3_write *w;
	int rc;

	/* Objects are never rewritten: refuse a key that exists. (S3 has no
	 * atomic create-if-absent for multipart uploads, so two writers racing
	 * for one key are not caught here; coffer's keys are unique per run.) */
	*out = NULL;
	rc = s3_head(r, key, &info);
	if (!rc)
		return error_set(CF_ERR_EXISTS,
		                 "s3: %s%s already exists; objects are never rewritten",
		                 s3_client_describe(r->c), key);
	if (rc != CF_ERR_NOTFOUND)
		return rc;
	error_clear();
	w = calloc(1, sizeof(*w));
	if (!w)
		return error_set(CF_ERR_NOMEM, "out of memory");
	w->r = r;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->next_number = 1;
	rc = s3_client_key(r->c, key, &w->key);
	if (rc) {
		s3_write_release(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int s3_write_new(void *drv, const char *key, void **wctx)
{
	struct s3_write *w = NULL;
	int rc = s3_write_start(drv, key, &w);

	if (!rc)
		rc = s3_write_take_buffer(w, w->next_number++);
	if (rc) {
		if (w)
			s3_write_release(w);
		return rc;
	}
	*wctx = w;
	return 0;
}

static int s3_write_data(void *wctx, const void *data, size_t len)
{
	struct s3_write *w = wctx;
	const uint8_t *p = data;
	int rc;

	pthread_mutex_lock(&w->mu);
	rc = s3_write_error_locked(w); /* the contract forbids it; stay safe */
	pthread_mutex_unlock(&w->mu);
	while (!rc && len > 0) {
		size_t n = w->fill->cap - w->fill->len;

		if (n > len)
			n = len;
		memcpy(w->fill->data + w->fill->len, p, n);
		w->fill->len += n;
		p += n;
		len -= n;
		if (w->fill->len < w->fill->cap)
			break;
		/* A full part: start the upload if this is the first, queue it,
		 * and take the next buffer (waiting while all are in flight). */
		if (!w->upload_id)
			rc = s3_write_initiate(w);
		if (!rc)
			rc = s3_write_queue(w);
		if (!rc)
			rc = s3_write_take_buffer(w, w->next_number++);
	}
	if (rc) {
		/* Commit must fail with this error and store nothing. */
		pthread_mutex_lock(&w->mu);
		s3_write_fail_locked(w, rc);
		pthread_mutex_unlock(&w->mu);
	}
	return rc;
}

/* Stops and joins the workers, discarding queued parts. */
static void s3_write_stop(struct s3_write *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	while (w->queue_head) {
		struct s3_part *p = w->queue_head;

		w->queue_head = p->next;
		s3_part_free(p);
		w->busy--;
	}
	w->queue_tail = NULL;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nworkers; i++)
		pthread_join(w->workers[i], NULL);
	w->nworkers = 0;
}

static void s3_write_release(struct s3_write *w)
{
	s3_write_stop(w);
	s3_part_free(w->fill);
	while (w->free_parts) {
		struct s3_part *p = w->free_parts;

		w->free_parts = p->next;
		s3_part_free(p);
	}
	for (size_t i = 0; w->etags && i < S3_MAX_PARTS; i++)
		free(w->etags[i]);
	free(w->etags);
	free(w->upload_id);
	buf_free(&w->key);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

/* Aborts the multipart upload (its parts stop costing storage). */
static void s3_write_abort_upload(struct s3_write *w)
{
	char msg[1024];
	int code = error_code(), rc;

	if (!w->upload_id)
		return;
	/* Keep the error that made us abort: the abort's own must not replace it. */
	snprintf(msg, sizeof(msg), "%s", error_message());
	rc = s3_abort_upload(w->r, (char *)w->key.data, w->upload_id, "abort multipart upload", 1);
	if (rc && rc != CF_ERR_NOTFOUND)
		log_warn("could not abort upload %s of %s: %s (coffer repo cleanup will)",
		         w->upload_id, (char *)w->key.data, error_message());
	error_set(code, "%s", msg);
}

static void s3_write_abort(void *wctx)
{
	struct s3_write *w = wctx;

	if (!w)
		return;
	s3_write_stop(w);
	s3_write_abort_upload(w);
	s3_write_release(w);
}

/* A single PUT for an object smaller than one part. */
static int s3_write_single(struct s3_write *w)
{
	struct s3_header h[4];
	struct s3_body_check check;
	char until[32];
	struct s3_response resp;
	struct s3_request req;
	int rc;

	memset(&req, 0, sizeof(req));
	rc = s3_body_check(w->r, w->fill->data, w->fill->len, &check, &req);
	if (rc)
		return rc;
	req.method = "PUT";
	req.key = (char *)w->key.data;
	req.body = w->fill->data;
	req.body_len = w->fill->len;
	req.headers = h;
	req.nheaders = s3_object_headers(w->r, h, until, sizeof(until));
	rc = s3_http_request(w->r->c, &req, &resp);
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = error_set(CF_ERR_STORAGE, "s3: cannot write s3://%s", (char *)w->key.data);
	if (!rc && check.md5 && !s3_etag_matches(resp.etag, check.hex))
		rc = error_set(CF_ERR_STORAGE, "s3: %s came back with ETag %s, expected the MD5 %s",
		               (char *)w->key.data, resp.etag[0] ? resp.etag : "(none)", check.hex);
	s3_response_free(&resp);
	return rc;
}

static int s3_write_complete(struct s3_write *w, unsigned nparts)
{
	struct s3_error_reply err;
	struct s3_response resp;
	struct s3_request req;
	char query[600];
	struct buf body;
	int rc;

	buf_init(&body, 2 * 1024 * 1024);
	rc = s3_xml_complete_body(w->etags, nparts, &body);
	snprintf(query, sizeof(query), "uploadId=%s", w->upload_id);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.key = (char *)w->key.data;
	req.query = query;
	req.body = body.data;
	req.body_len = body.len;
	req.what = "complete multipart upload";
	if (!rc)
		rc = s3_http_request(w->r->c, &req, &resp);
	else
		memset(&resp, 0, sizeof(resp));
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = error_set(CF_ERR_STORAGE, "s3: upload %s of s3://%s is gone", w->upload_id,
		               (char *)w->key.data);
	/* S3 can answer 200 and still fail: the error is then in the body. */
	if (!rc && s3_xml_error((const char *)resp.body.data, resp.body.len, &err) == 1)
		rc = error_set(CF_ERR_STORAGE, "s3: completing s3://%s failed: %s %s",
		               (char *)w->key.data, err.code, err.message);
	s3_response_free(&resp);
	buf_free(&body);
	return rc;
}

/*
 * Sets the object-lock retention of a completed multipart object. S3 takes it
 * from CreateMultipartUpload already, but some S3-compatible servers (Ceph
 * RGW 16) drop it there; setting it again to the same date is harmless.
 */
static int s3_write_retention(struct s3_write *w)
{
	char until[32], b64[32], hex[33];
	struct s3_response resp;
	struct s3_request req;
	struct s3_header h[4];
	struct buf body;
	int rc;

	if (!w->r->lock_mode)
		return 0;
	s3_object_headers(w->r, h, until, sizeof(until));
	buf_init(&body, 4096);
	rc = buf_printf(
	    &body,
	    "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>%s</Mode>"
	    "<RetainUntilDate>%s</RetainUntilDate></Retention>",
	    w->r->lock_mode, until);
	if (rc)
		return rc;
	rc = s3_md5(body.data, body.len, b64, hex);
	if (rc) {
		buf_free(&body);
		return rc;
	}
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.key = (char *)w->key.data;
	req.query = "retention";
	req.body = body.data;
	req.body_len = body.len;
	req.body_md5 = b64;
	req.what = "set object retention";
	rc = s3_http_request(w->r->c, &req, &resp);
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = error_set(CF_ERR_STORAGE, "s3: cannot set the retention of s3://%s",
		               (char *)w->key.data);
	s3_response_free(&resp);
	buf_free(&body);
	return rc;
}

static int s3_abort_uploads(struct s3_repo *r, const char *bucket_prefix, int64_t older_than_ms,
                            int64_t now_ms, const char *keep_id, unsigned *removed);

static int s3_write_commit(void *wctx)
{
	struct s3_write *w = wctx;
	unsigned nparts = 0;
	int rc;

	/* After a failed write_data (or a part that failed) nothing is stored:
	 * w->fill may be gone then, and a single PUT would store a fragment. */
	pthread_mutex_lock(&w->mu);
	rc = s3_write_error_locked(w);
	pthread_mutex_unlock(&w->mu);
	if (!rc && !w->upload_id) {
		rc = s3_write_single(w);
		s3_write_release(w);
		return rc;
	}
	/* The last part may be short; an empty one is not sent. */
	if (!rc && w->fill->len > 0)
		rc = s3_write_queue(w);
	if (!rc)
		nparts = w->fill ? w->fill->number - 1 : w->next_number - 1;
	pthread_mutex_lock(&w->mu);
	while (!rc && w->busy > 0 && !w->err)
		rc = s3_write_wait_locked(w);
	if (!rc)
		rc = s3_write_error_locked(w);
	pthread_mutex_unlock(&w->mu);
	if (!rc) {
		s3_write_stop(w);
		rc = s3_write_complete(w, nparts);
		if (!rc)
			rc = s3_write_retention(w);
		/* A CreateMultipartUpload whose reply was lost and retried left
		 * another, empty upload of this key: abort it now, not at the
		 * next cleanup. The object is stored whatever this gives. */
		if (!rc) {
			unsigned extra = 0;

			if (s3_abort_uploads(w->r, (char *)w->key.data, 0,
			                     time_real_ms() + 3600 * 1000, w->upload_id, &extra))
				log_warn("could not look for stray uploads of %s: %s",
				         (char *)w->key.data, error_message());
			else if (extra)
				log_info("aborted %u stray upload(s) of %s", extra,
				         (char *)w->key.data);
			error_clear();
		}
	}
	if (rc) {
		s3_write_stop(w);
		s3_write_abort_upload(w);
	}
	s3_write_release(w);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Ranged, parallel reads                                                     */
/* ------------------------------------------------------------------------ */

struct s3_slot {
	struct buf data;
	uint64_t range; /* index of the range it holds or fetches */
	int state;      /* 0 free, 1 fetching, 2 ready */
};

struct s3_read {
	struct s3_repo *r;
	const char *key;
	uint64_t offset, end, chunk, nranges;
	uint64_t next_range; /* next range to hand to a worker */
	struct s3_slot *slots;
	int nslots;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int err;
	char errmsg[1024];
};

static int s3_slot_sink(void *ctx, const uint8_t *data, size_t len)
{
	return buf_append(&((struct s3_slot *)ctx)->data, data, len);
}

static void s3_slot_reset(void *ctx)
{
	buf_reset(&((struct s3_slot *)ctx)->data);
}

/* Fetches range k into slot s (no lock held). */
static int s3_read_range(struct s3_read *rd, struct s3_slot *s, uint64_t k)
{
	uint64_t from = rd->offset + k * rd->chunk;
	uint64_t to = from + rd->chunk > rd->end ? rd->end : from + rd->chunk;
	char range[64];
	struct s3_header h = {"range", range};
	struct s3_response resp;
	struct s3_request req;
	int rc;

	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)from,
	         (unsigned long long)to - 1);
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.key = rd->key;
	req.headers = &h;
	req.nheaders = 1;
	req.sink = s3_slot_sink;
	req.reset = s3_slot_reset;
	req.sink_ctx = s;
	req.what = "read";
	rc = s3_http_request(rd->r->c, &req, &resp);
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc = error_set(rc, "s3: object %s vanished while it was read", rd->key);
	if (!rc && s->data.len != to - from)
		rc = error_set(CF_ERR_STORAGE, "s3: %s: range %s gave %zu bytes", rd->key, range,
		               s->data.len);
	s3_response_free(&resp);
	return rc;
}

static void *s3_read_worker(void *arg)
{
	struct s3_read *rd = arg;

	pthread_mutex_lock(&rd->mu);
	for (;;) {
		struct s3_slot *s;
		uint64_t k;
		int rc;

		/* The next range goes into slot k % nslots once the reader has
		 * consumed what that slot held. */
		while (!rd->stop && !rd->err && rd->next_range < rd->nranges &&
		       rd->slots[rd->next_range % (uint64_t)rd->nslots].state != 0)
			pthread_cond_wait(&rd->cv, &rd->mu);
		if (rd->stop || rd->err || rd->next_range >= rd->nranges)
			break;
		k = rd->next_range++;
		s = &rd->slots[k % (uint64_t)rd->nslots];
		s->state = 1;
		s->range = k;
		pthread_mutex_unlock(&rd->mu);
		buf_reset(&s->data);
		rc = s3_read_range(rd, s, k);
		pthread_mutex_lock(&rd->mu);
		if (rc && !rd->err) {
			rd->err = rc;
			snprintf(rd->errmsg, sizeof(rd->errmsg), "%s", error_message());
		}
		s->state = 2;
		pthread_cond_broadcast(&rd->cv);
	}
	pthread_mutex_unlock(&rd->mu);
	return NULL;
}

static int s3_read(void *drv, const char *key, uint64_t offset, uint64_t length, storage_read_cb cb,
                   void *ctx)
{
	struct s3_repo *r = drv;
	struct storage_info info;
	struct s3_read rd;
	pthread_t th[S3_MAX_CONCURRENCY];
	int nth = 0, rc;
	struct buf bk;

	rc = s3_head(drv, key, &info);
	if (rc)
		return rc;
	if (offset >= info.size)
		return 0;
	memset(&rd, 0, sizeof(rd));
	rc = s3_client_key(r->c, key, &bk);
	if (rc)
		return rc;
	rd.r = r;
	rd.key = (char *)bk.data;
	rd.offset = offset;
	rd.end = length == UINT64_MAX || length > info.size - offset ? info.size : offset + length;
	rd.chunk = r->part_size;
	rd.nranges = (rd.end - rd.offset + rd.chunk - 1) / rd.chunk;
	rd.nslots = rd.nranges < (uint64_t)r->download_conc ? (int)rd.nranges : r->download_conc;
	rd.slots = calloc((size_t)rd.nslots, sizeof(*rd.slots));
	if (!rd.slots) {
		buf_free(&bk);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	/* Each slot gets its full size once: growing it by doubling would hold
	 * the old and the new block at once and inflate peak memory. */
	for (int i = 0; i < rd.nslots; i++) {
		buf_init(&rd.slots[i].data, rd.chunk);
		if (!rc)
			rc = buf_reserve(&rd.slots[i].data, rd.chunk);
	}
	pthread_mutex_init(&rd.mu, NULL);
	pthread_cond_init(&rd.cv, NULL);
	for (int i = 0; i < rd.nslots; i++) {
		if (pthread_create(&th[i], NULL, s3_read_worker, &rd) != 0) {
			rc = error_set(CF_ERR_INTERNAL, "cannot start a download thread");
			break;
		}
		nth++;
	}
	/* Hand the ranges to cb in order as they arrive. */
	for (uint64_t k = 0; !rc && k < rd.nranges; k++) {
		struct s3_slot *s = &rd.slots[k % (uint64_t)rd.nslots];

		pthread_mutex_lock(&rd.mu);
		while (!rd.err && !(s->state == 2 && s->range == k)) {
			/* Workers see a cancellation in their transfer; a timed wait
			 * sees it too while they have none running. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&rd.cv, &rd.mu, &ts);
			rc = cancel_check();
			if (rc)
				break;
		}
		if (!rc && rd.err)
			rc = error_set(rd.err, "%s", rd.errmsg);
		pthread_mutex_unlock(&rd.mu);
		/* A range is part_size bytes (16 MiB by default); storage.h
		 * promises cb at most S3_READ_CHUNK at a time. */
		for (size_t off = 0; !rc && off < s->data.len; off += S3_READ_CHUNK) {
			size_t n = s->data.len - off;

			rc = cb(ctx, s->data.data + off, n < S3_READ_CHUNK ? n : S3_READ_CHUNK);
		}
		pthread_mutex_lock(&rd.mu);
		s->state = 0;
		buf_reset(&s->data);
		pthread_cond_broadcast(&rd.cv);
		pthread_mutex_unlock(&rd.mu);
	}
	pthread_mutex_lock(&rd.mu);
	rd.stop = 1;
	pthread_cond_broadcast(&rd.cv);
	pthread_mutex_unlock(&rd.mu);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < rd.nslots; i++)
		buf_free(&rd.slots[i].data);
	free(rd.slots);
	pthread_mutex_destroy(&rd.mu);
	pthread_cond_destroy(&rd.cv);
	buf_free(&bk);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Cleanup of abandoned multipart uploads                                     */
/* ------------------------------------------------------------------------ */

/*
 * Aborts the multipart uploads whose key starts with bucket_prefix (the
 * bucket's key, with the repository's prefix) and that began before
 * now_ms - older_than_ms; with keep_id, only those of exactly that key but
 * the upload keep_id (the one that just completed).
 */
static int s3_abort_uploads(struct s3_repo *r, const char *bucket_prefix, int64_t older_than_ms,
                            int64_t now_ms, const char *keep_id, unsigned *removed)
{
	char *key_marker = NULL, *id_marker = NULL;
	int rc = 0;

	*removed = 0;
	while (!rc) {
		struct s3_list_reply list;
		struct buf q;

		buf_init(&q, 65536);
		rc = s3_query_add(&q, "uploads", NULL);
		if (!rc)
			rc = s3_query_add(&q, "prefix", bucket_prefix);
		if (!rc && key_marker)
			rc = s3_query_add(&q, "key-marker", key_marker);
		if (!rc && id_marker)
			rc = s3_query_add(&q, "upload-id-marker", id_marker);
		if (!rc)
			rc = s3_list_page(r, &q, 1, &list);
		else
			memset(&list, 0, sizeof(list));
		buf_free(&q);
		for (size_t i = 0; !rc && i < list.nitems; i++) {
			struct s3_list_item *it = &list.items[i];

			if (it->time_ms > now_ms - older_than_ms)
				continue;
			if (keep_id &&
			    (strcmp(it->key, bucket_prefix) || !strcmp(it->upload_id, keep_id)))
				continue;
			rc =
			    s3_abort_upload(r, it->key, it->upload_id, "abort abandoned upload", 0);
			if (rc == CF_ERR_NOTFOUND) {
				rc = 0; /* finished or aborted meanwhile */
			} else if (!rc) {
				(*removed)++;
				log_info("aborted abandoned upload of s3://%s", it->key);
			}
		}
		free(key_marker);
		free(id_marker);
		key_marker = id_marker = NULL;
		if (!rc && list.truncated && list.next_key_marker) {
			key_marker = strdup(list.next_key_marker);
			id_marker =
			    list.next_upload_id_marker ? strdup(list.next_upload_id_marker) : NULL;
		}
		s3_list_reply_free(&list);
		if (rc || !key_marker)
			break;
	}
	free(key_marker);
	free(id_marker);
	return rc;
}

static int s3_cleanup(void *drv, const char *prefix, int64_t older_than_ms, int64_t now_ms,
                      unsigned *removed)
{
	struct s3_repo *r = drv;
	struct buf bp;
	int rc;

	*removed = 0;
	rc = s3_client_key(r->c, prefix, &bp);
	if (!rc)
		rc = s3_abort_uploads(r, (char *)bp.data, older_than_ms, now_ms, NULL, removed);
	buf_free(&bp);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Server-side copy                                                           */
/* ------------------------------------------------------------------------ */

/* One CopyObject (no range) or UploadPartCopy (range, query naming the part)
 * into bucket key dkey; *etag gets the ETag the reply holds. */
static int s3_copy_request(struct s3_repo *d, const char *dkey, const char *source,
                           const char *query, const char *range, const char *what, char **etag)
{
	struct s3_header h[6];
	struct s3_error_reply err;
	struct s3_response resp;
	struct s3_request req;
	char until[32];
	size_t n = 0;
	int rc;

	*etag = NULL;
	h[n++] = (struct s3_header){"x-amz-copy-source", source};
	if (range)
		h[n++] = (struct s3_header){"x-amz-copy-source-range", range};
	else
		n += s3_object_headers(d, h + n, until, sizeof(until));
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.key = dkey;
	req.query = query;
	req.headers = h;
	req.nheaders = n;
	req.what = what;
	rc = s3_http_request(d->c, &req, &resp);
	if (rc == CF_ERR_NOTFOUND && !s3_bucket_missing(&resp))
		rc =
		    error_set(CF_ERR_NOTFOUND, "s3: %s into s3://%s: the source %s is missing (%s)",
		              what, dkey, source, resp.error.code);
	/* A copy can answer 200 and fail: the error is then in the body. */
	if (!rc && s3_xml_error((const char *)resp.body.data, resp.body.len, &err) == 1)
		rc = error_set(CF_ERR_STORAGE, "s3: %s into s3://%s failed: %s %s", what, dkey,
		               err.code, err.message);
	if (!rc)
		rc = s3_xml_copy_etag((const char *)resp.body.data, resp.body.len, range != NULL,
		                      etag);
	s3_response_free(&resp);
	return rc;
}

/*
 * storage_copy(): the bytes stay in the service. An object up to one part is
 * one CopyObject; a bigger one a multipart upload of UploadPartCopy ranges on
 * the part-size schedule (one at a time: the service does the work), which
 * is aborted on any failure. Write-once like a write.
 */
static int s3_copy(void *dst_drv, void *src_drv, const char *key, uint64_t size)
{
	struct s3_repo *d = dst_drv, *s = src_drv;
	struct buf source;
	struct s3_write *w = NULL;
	char *etag = NULL;
	int rc;

	if (!s3_client_same_endpoint(d->c, s->c))
		return error_set(
		    CF_ERR_UNSUPPORTED,
		    "s3: a server-side copy from %s into %s needs both on one endpoint",
		    s3_client_describe(s->c), s3_client_describe(d->c));
	rc = s3_write_start(d, key, &w);
	if (rc)
		return rc;
	rc = s3_client_copy_source(s->c, key, &source);
	if (!rc && size <= s3_part_size_for(d, 1)) {
		rc = s3_copy_request(d, (char *)w->key.data, (char *)source.data, NULL, NULL,
		                     "copy object", &etag);
		free(etag);
	} else if (!rc) {
		uint64_t off = 0;
		unsigned n = 0;

		rc = s3_write_initiate(w);
		while (!rc && off < size) {
			uint64_t len = s3_part_size_for(d, ++n);
			char range[64], query[600], what[64];

			if (n > S3_MAX_PARTS) {
				rc = error_set(CF_ERR_LIMIT, "s3: %s needs more than %d parts", key,
				               S3_MAX_PARTS);
				break;
			}
			len = len < size - off ? len : size - off;
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
			         (unsigned long long)(off + len - 1));
			snprintf(query, sizeof(query), "partNumber=%u&uploadId=%s", n,
			         w->upload_id);
			snprintf(what, sizeof(what), "copy part %u", n);
			rc = s3_copy_request(d, (char *)w->key.data, (char *)source.data, query,
			                     range, what, &w->etags[n - 1]);
			off += len;
			if (!rc)
				rc = cancel_check();
		}
		s3_write_stop(w);
		if (!rc)
			rc = s3_write_complete(w, n);
		if (!rc)
			rc = s3_write_retention(w);
		if (rc)
			s3_write_abort_upload(w);
	}
	buf_free(&source);
	s3_write_release(w);
	return rc;
}

const struct storage_driver storage_s3_driver = {
    .name = "s3",
    .features = STORAGE_FEATURE_RANGE | STORAGE_FEATURE_ASYNC_WRITE,
    .open = s3_open,
    .free = s3_free,
    .describe = s3_describe,
    .write_new = s3_write_new,
    .write_data = s3_write_data,
    .write_commit = s3_write_commit,
    .write_abort = s3_write_abort,
    .read = s3_read,
    .list = s3_list,
    .head = s3_head,
    .remove = s3_remove,
    .remove_many = s3_remove_many,
    .cleanup = s3_cleanup,
    .copy = s3_copy,
};
