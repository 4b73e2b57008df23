/*
 * s3_http: one S3 request over libcurl, signed with SigV4, with retries.
 *
 * Each thread takes a curl easy handle from a small pool and gives it back,
 * so connections are kept alive and reused across requests. Every attempt is
 * signed afresh (the date is part of the signature). Transient failures
 * (connection refused or reset, timeouts, 5xx, SlowDown, RequestTimeout) are
 * retried with exponential backoff and full jitter; permanent ones fail at
 * once with one message naming the request, the HTTP status and S3's code.
 * It knows nothing of multipart uploads or listings: s3_driver.c does.
 *
 * Cancellation (cancel_requested()) stops a transfer within 100 ms: curl runs
 * under a multi handle polled in 100 ms slices (curl_easy_perform() sleeps up
 * to a second between its progress calls), the transfer callback returns
 * non-zero, backoff sleeps in cancel_sleep_ms(), and nothing is retried once
 * cancelled. A request marked after_cancel (aborting a multipart upload)
 * still runs once, with a short total timeout.
 */
#include "storage/s3/s3.h"
#include "storage/storage.h"
#include "crypto/crypto.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S3_POOL_MAX 32
#define S3_DEFAULT_MAX_BODY (1024 * 1024)
#define S3_BACKOFF_BASE_MS 200
#define S3_BACKOFF_CAP_MS 10000
/* Total time allowed to a request that runs after a cancellation. */
#define S3_AFTER_CANCEL_MS 500
/* The longest a transfer waits before it looks at the cancellation. */
#define S3_POLL_MS 100

struct s3_client {
	char *scheme;   /* "http" or "https" */
	char *hostport; /* endpoint host[:port] */
	char *bucket;
	char *prefix; /* "" or ending in '/' */
	char *region;
	char *describe;
	char *storage_class;
	char *ca_file;
	int virtual_style;
	int insecure_tls;
	int max_attempts;
	int timeout_s;
	struct s3_cred *cred;
	pthread_mutex_t mu;
	struct s3_conn *pool[S3_POOL_MAX];
	size_t npool;
};

/* A pooled connection: the easy handle and the multi handle that runs it
 * (and keeps its connections alive between requests). */
struct s3_conn {
	CURL *easy;
	CURLM *multi;
};

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;

static void s3_curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *s3_strdup_or(const char *s, const char *dflt)
{
	return strdup(s && *s ? s : dflt);
}

static void s3_conn_free(struct s3_conn *k)
{
	if (k) {
		if (k->multi)
			curl_multi_cleanup(k->multi);
		if (k->easy)
			curl_easy_cleanup(k->easy);
		free(k);
	}
}

int s3_client_new(const struct storage_s3_options *opts, struct s3_client **out)
{
	struct s3_client *c;
	struct s3_cred_options co;
	const char *ep = opts->endpoint, *host;
	struct buf b;
	int rc = 0;

	if (!ep || !*ep)
		return error_set(CF_ERR_CONFIG,
		                 "s3: no endpoint (expected [repository] endpoint = https://...)");
	if (!opts->bucket || !*opts->bucket)
		return error_set(CF_ERR_CONFIG,
		                 "s3: no bucket (expected [repository] bucket = NAME)");
	if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
		return error_set(CF_ERR_CONFIG,
		                 "s3: endpoint '%s' must start with https:// or http://", ep);
	pthread_once(&s3_curl_once, s3_curl_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	host = strstr(ep, "://") + 3;
	c->scheme = strndup(ep, (size_t)(host - 3 - ep));
	c->hostport = strndup(host, strcspn(host, "/"));
	c->bucket = strdup(opts->bucket);
	c->region = s3_strdup_or(opts->region, "us-east-1");
	c->storage_class = opts->storage_class ? strdup(opts->storage_class) : NULL;
	c->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
	c->virtual_style = opts->virtual_style;
	c->insecure_tls = opts->insecure_tls;
	c->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 8;
	c->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 30;
	buf_init(&b, 4096);
	if (opts->prefix && *opts->prefix) {
		const char *p = opts->prefix;

		while (*p == '/')
			p++;
		rc = buf_printf(&b, "%s%s", p, p[strlen(p) - 1] == '/' ? "" : "/");
		if (!rc && b.len == 1) /* a prefix of only slashes */
			buf_reset(&b);
	} else {
		rc = buf_append(&b, "", 0);
	}
	c->prefix = rc ? NULL : (char *)b.data;
	buf_init(&b, 4096);
	if (!rc)
		rc = buf_printf(&b, "s3://%s/%s", c->bucket, c->prefix);
	c->describe = rc ? NULL : (char *)b.data;
	if (!rc && (!c->scheme || !c->hostport || !c->bucket || !c->region || !c->prefix ||
	            !c->describe || !*c->hostport))
		rc = error_set(CF_ERR_CONFIG, "s3: cannot use endpoint '%s'", ep);
	if (!rc) {
		memset(&co, 0, sizeof(co));
		co.access_key = opts->access_key;
		co.secret_key = opts->secret_key;
		co.region = c->region;
		co.sts_endpoint = opts->sts_endpoint;
		co.imds_endpoint = opts->imds_endpoint;
		co.ca_file = opts->ca_file;
		co.verify_tls = !opts->insecure_tls;
		rc = s3_cred_open(&co, &c->cred);
	}
	if (rc) {
		s3_client_free(c);
		return rc;
	}
	log_debug("s3: %s at %s://%s, credentials from %s", c->describe, c->scheme, c->hostport,
	          s3_cred_source_name(c->cred));
	*out = c;
	return 0;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npool; i++)
		s3_conn_free(c->pool[i]);
	s3_cred_free(c->cred);
	pthread_mutex_destroy(&c->mu);
	free(c->scheme);
	free(c->hostport);
	free(c->bucket);
	free(c->prefix);
	free(c->region);
	free(c->describe);
	free(c->storage_class);
	free(c->ca_file);
	free(c);
}

const char *s3_client_describe(const struct s3_client *c)
{
	return c->describe;
}

size_t s3_client_prefix_len(const struct s3_client *c)
{
	return strlen(c->prefix);
}

int s3_client_key(const struct s3_client *c, const char *key, struct buf *out)
{
	buf_init(out, 4096);
	return buf_printf(out, "%s%s", c->prefix, key);
}

static struct s3_conn *s3_handle_get(struct s3_client *c)
{
	struct s3_conn *k = NULL;

	pthread_mutex_lock(&c->mu);
	if (c->npool)
		k = c->pool[--c->npool];
	pthread_mutex_unlock(&c->mu);
	if (k)
		return k;
	k = calloc(1, sizeof(*k));
	if (k) {
		k->easy = curl_easy_init();
		k->multi = curl_multi_init();
	}
	if (!k || !k->easy || !k->multi) {
		s3_conn_free(k);
		return NULL;
	}
	return k;
}

static void s3_handle_put(struct s3_client *c, struct s3_conn *k)
{
	pthread_mutex_lock(&c->mu);
	if (c->npool < S3_POOL_MAX) {
		c->pool[c->npool++] = k;
		k = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	s3_conn_free(k);
}

static int s3_xferinfo_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow)
{
	(void)ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancel_requested();
}

CURLcode s3_curl_perform(CURL *h, CURLM *m, int cancellable)
{
	CURLM *own = NULL;
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	if (cancellable) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, s3_xferinfo_cb);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (!m) {
		own = m = curl_multi_init();
		if (!m)
			return CURLE_OUT_OF_MEMORY;
	}
	if (curl_multi_add_handle(m, h) != CURLM_OK) {
		curl_multi_cleanup(own);
		return CURLE_FAILED_INIT;
	}
	while (running) {
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
		if (!running)
			break;
		if (cancellable && cancel_requested()) {
			cc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_poll(m, NULL, 0, S3_POLL_MS, NULL) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
	}
	if (!running) {
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
				cc = msg->data.result;
	}
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(own);
	return cc;
}

void s3_response_free(struct s3_response *resp)
{
	buf_free(&resp->body);
}

int s3_bucket_missing(const struct s3_response *resp)
{
	return !strcmp(resp->error.code, "NoSuchBucket");
}

/* State of one attempt. */
struct s3_attempt {
	const struct s3_request *req;
	struct s3_response *resp;
	size_t body_off; /* upload position */
	int sink_rc;     /* the sink's error, which aborts the transfer */
	size_t max_body;
};

static size_t s3_read_cb(char *dst, size_t size, size_t n, void *ctx)
{
	struct s3_attempt *a = ctx;
	size_t want = size * n, left = a->req->body_len - a->body_off;

	if (want > left)
		want = left;
	if (want)
		memcpy(dst, a->req->body + a->body_off, want);
	a->body_off += want;
	return want;
}

/* Lets curl rewind the body, which it does to resend a request on a reused
 * connection that turned out to be dead. */
static int s3_seek_cb(void *ctx, curl_off_t offset, int origin)
{
	struct s3_attempt *a = ctx;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > a->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	a->body_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t s3_write_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct s3_attempt *a = ctx;
	size_t len = size * n;

	/* Only a successful reply goes to the sink; error bodies are kept. */
	if (a->req->sink && a->resp->status >= 200 && a->resp->status < 300) {
		a->sink_rc = a->req->sink(a->req->sink_ctx, (const uint8_t *)data, len);
		return a->sink_rc ? 0 : len;
	}
	if (a->resp->body.len + len > a->max_body)
		return 0; /* too big: curl fails with a write error */
	return buf_append(&a->resp->body, data, len) ? 0 : len;
}

/* Copies a header value (trimmed) if name matches. */
static void s3_header_take(const char *line, size_t len, const char *name, char *dst, size_t dsz)
{
	size_t nl = strlen(name), vl;
	const char *v;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	v = line + nl + 1;
	vl = len - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= dsz)
		vl = dsz - 1;
	memcpy(dst, v, vl);
	dst[vl] = '\0';
}

static size_t s3_header_cb(char *line, size_t size, size_t n, void *ctx)
{
	struct s3_attempt *a = ctx;
	struct s3_response *r = a->resp;
	size_t len = size * n;
	char cl[32] = "";

	/* A new status line (after 100 Continue, or a redirect) starts over. */
	if (len > 5 && !strncmp(line, "HTTP/", 5)) {
		const char *sp = memchr(line, ' ', len);

		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->etag[0] = r->content_range[0] = r->last_modified[0] = '\0';
		r->content_length = -1;
		return len;
	}
	s3_header_take(line, len, "etag", r->etag, sizeof(r->etag));
	s3_header_take(line, len, "x-amz-request-id", r->request_id, sizeof(r->request_id));
	s3_header_take(line, len, "content-range", r->content_range, sizeof(r->content_range));
	s3_header_take(line, len, "last-modified", r->last_modified, sizeof(r->last_modified));
	s3_header_take(line, len, "content-length", cl, sizeof(cl));
	if (cl[0])
		r->content_length = strtoll(cl, NULL, 10);
	return len;
}

/* Builds the URL and the canonical path of a request. */
static int s3_url(const struct s3_client *c, const struct s3_request *req, struct buf *url,
                  struct buf *path, struct buf *host)
{
	struct buf enc;
	int rc;

	buf_init(&enc, 16384);
	buf_init(url, 32768);
	buf_init(path, 16384);
	buf_init(host, 1024);
	rc = s3_uri_encode(req->key ? req->key : "", 1, &enc);
	if (!rc && !enc.data)
		rc = buf_append(&enc, "", 0);
	if (!rc && c->virtual_style) {
		rc = buf_printf(host, "%s.%s", c->bucket, c->hostport);
		if (!rc)
			rc = buf_printf(path, "/%s", (char *)enc.data);
	} else if (!rc) {
		rc = buf_printf(host, "%s", c->hostport);
		if (!rc)
			rc = buf_printf(path, "/%s%s%s", c->bucket, req->key ? "/" : "",
			                (char *)enc.data);
	}
	if (!rc)
		rc = buf_printf(url, "%s://%s%s%s%s", c->scheme, (char *)host->data,
		                (char *)path->data, req->query && *req->query ? "?" : "",
		                req->query ? req->query : "");
	buf_free(&enc);
	return rc;
}

/* Runs one signed attempt. Returns 0 when a reply arrived (any status), or
 * the curl error code (positive) for a transport failure. */
static int s3_attempt_run(struct s3_client *c, struct s3_conn *k, struct s3_attempt *a,
                          const struct s3_credentials *cred, CURLcode *cc, char *cerr)
{
	CURL *h = k->easy;
	const struct s3_request *req = a->req;
	struct s3_header hdrs[24];
	struct s3_sigv4_request sr;
	struct s3_sigv4_result sig;
	struct curl_slist *list = NULL;
	struct buf url, path, host, line;
	char date[S3_AMZ_DATE_LEN + 1], payload[HASH_SHA256_HEX_LEN + 1];
	/* One reading of the clock for both the x-amz-date header and the
	 * signature: two readings can straddle a second and not match. */
	time_t now = time(NULL);
	size_t nh = 0;
	int rc;

	memset(&sig, 0, sizeof(sig));
	rc = s3_url(c, req, &url, &path, &host);
	if (rc)
		goto out_bufs;
	s3_sigv4_format_date(now, date);
	/* A body with a Content-MD5 is bound to the signature through that
	 * (signed) header and checked by the server against it, so hashing it a
	 * second time with SHA-256 buys nothing: it goes as UNSIGNED-PAYLOAD, as
	 * the aws CLI sends uploads. Other bodies (XML, none) are hashed. */
	if (req->body_md5)
		snprintf(payload, sizeof(payload), "UNSIGNED-PAYLOAD");
	else
		hash_sha256_hex(req->body ? (const void *)req->body : "", req->body_len, payload);
	hdrs[nh++] = (struct s3_header){"host", (char *)host.data};
	hdrs[nh++] = (struct s3_header){"x-amz-date", date};
	hdrs[nh++] = (struct s3_header){"x-amz-content-sha256", payload};
	if (cred->token)
		hdrs[nh++] = (struct s3_header){"x-amz-security-token", cred->token};
	if (req->body_md5)
		hdrs[nh++] = (struct s3_header){"content-md5", req->body_md5};
	for (size_t i = 0; i < req->nheaders && nh < sizeof(hdrs) / sizeof(hdrs[0]); i++)
		hdrs[nh++] = req->headers[i];
	memset(&sr, 0, sizeof(sr));
	sr.method = req->method;
	sr.path = (char *)path.data;
	sr.query = req->query;
	sr.headers = hdrs;
	sr.nheaders = nh;
	sr.payload_hash = payload;
	sr.region = c->region;
	sr.service = "s3";
	sr.now = now;
	rc = s3_sigv4_sign(&sr, cred, &sig);
	if (rc)
		goto out_bufs;

	buf_init(&line, 65536);
	for (size_t i = 0; !rc && i < nh; i++) {
		buf_reset(&line);
		rc = buf_printf(&line, "%s: %s", hdrs[i].name, hdrs[i].value);
		if (!rc)
			list = curl_slist_append(list, (char *)line.data);
	}
	buf_reset(&line);
	if (!rc)
		rc = buf_printf(&line, "Authorization: %s", (char *)sig.authorization.data);
	if (!rc) {
		list = curl_slist_append(list, (char *)line.data);
		/* curl's own defaults that S3 does not want. */
		list = curl_slist_append(list, "Expect:");
		list = curl_slist_append(list, "Accept:");
		list = curl_slist_append(list, "Content-Type:");
	}
	sodium_memzero(line.data, line.len);
	buf_free(&line);
	if (rc || !list) {
		rc = rc ? rc : error_set(CF_ERR_NOMEM, "out of memory");
		goto out_list;
	}

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, (char *)url.data);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)c->timeout_s);
	/* A transfer that moves nothing for timeout_s seconds is stalled. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->timeout_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION);
	if (c->insecure_tls) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if ((req->after_cancel && cancel_requested()) || cancel_hurry()) {
		/* Cleaning up after a cancellation: the process is about to exit. */
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)S3_AFTER_CANCEL_MS);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)S3_AFTER_CANCEL_MS);
	}
	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(req->method, "PUT") || !strcmp(req->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, a);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, s3_seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, a);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		if (!strcmp(req->method, "POST"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
	cerr[0] = '\0';
	*cc = s3_curl_perform(h, k->multi, !req->after_cancel);
	rc = 0;
out_list:
	curl_slist_free_all(list);
	s3_sigv4_result_free(&sig);
out_bufs:
	buf_free(&url);
	buf_free(&path);
	buf_free(&host);
	return rc;
}

/* Sleeps a random time in [0, min(cap, base * 2^attempt)] (full jitter).
 * Returns CF_ERR_INTERRUPTED once cancelled. */
static int s3_backoff(int attempt)
{
	uint32_t ceiling = S3_BACKOFF_BASE_MS;

	for (int i = 1; i < attempt && ceiling < S3_BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > S3_BACKOFF_CAP_MS)
		ceiling = S3_BACKOFF_CAP_MS;
	return cancel_sleep_ms((int64_t)randombytes_uniform(ceiling + 1));
}

static int s3_transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* Worth another try: server trouble and throttling. A clock skew or a bad
 * signature will not get better by retrying. */
static int s3_transient_status(long status, const char *code)
{
	if (status >= 500 || status == 429)
		return 1;
	return !strcmp(code, "RequestTimeout") || !strcmp(code, "SlowDown");
}

/* The one-line error of a request that failed for good with an HTTP status.
 * A missing bucket and a refused access get the message opening the
 * repository used to give, since the first request now finds them out. */
static int s3_status_error(struct s3_client *c, const struct s3_request *req,
                           const struct s3_response *resp, int transient)
{
	const char *code = resp->error.code;

	if (!strcmp(code, "NoSuchBucket"))
		return error_set(CF_ERR_NOTFOUND, "s3: bucket %s does not exist (HTTP %ld)",
		                 c->describe, resp->status);
	if (resp->status == 403 || !strcmp(code, "InvalidAccessKeyId") ||
	    !strcmp(code, "SignatureDoesNotMatch"))
		return error_set(CF_ERR_AUTH,
		                 "s3: access to %s denied (HTTP %ld%s%s, %s %s): check the access "
		                 "key, the secret key, the session token and the bucket's "
		                 "permissions",
		                 c->describe, resp->status, code[0] ? " " : "", code, req->method,
		                 req->what ? req->what : (req->key ? req->key : "bucket"));
	return error_set(!strcmp(code, "ExpiredToken") ? CF_ERR_AUTH : CF_ERR_STORAGE,
	                 "s3: %s%s%s s3://%s/%s: HTTP %ld %s%s%s%s", req->method,
	                 req->what ? " " : "", req->what ? req->what : "", c->bucket,
	                 req->key ? req->key : "", resp->status, code[0] ? code : "(no error code)",
	                 resp->error.message[0] ? ": " : "", resp->error.message,
	                 transient ? " (retries exhausted)" : "");
}

int s3_http_request(struct s3_client *c, const struct s3_request *req, struct s3_response *resp)
{
	struct s3_credentials cred;
	struct s3_attempt a;
	char cerr[CURL_ERROR_SIZE];
	CURLcode cc = CURLE_OK;
	struct s3_conn *k;
	int rc = 0, attempt, refreshed = 0, max_attempts = c->max_attempts;

	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, req->max_body ? req->max_body : S3_DEFAULT_MAX_BODY);
	if (!req->after_cancel && (rc = cancel_check()) != 0)
		return rc;
	if ((req->after_cancel && cancel_requested()) || cancel_hurry())
		max_attempts = 1;
	k = s3_handle_get(c);
	if (!k)
		return error_set(CF_ERR_NOMEM, "out of memory for a connection");
	memset(&cred, 0, sizeof(cred));
	for (attempt = 1;; attempt++) {
		int transient = 0;

		if (attempt > 1 && !req->after_cancel && (rc = cancel_check()) != 0)
			break;
		buf_reset(&resp->body);
		resp->status = 0;
		resp->content_length = -1;
		memset(&resp->error, 0, sizeof(resp->error));
		memset(&a, 0, sizeof(a));
		a.req = req;
		a.resp = resp;
		a.max_body = resp->body.max;
		if (req->reset)
			req->reset(req->sink_ctx);
		s3_credentials_clear(&cred);
		rc = s3_cred_get(c->cred, time(NULL), &cred);
		if (!rc)
			rc = s3_attempt_run(c, k, &a, &cred, &cc, cerr);
		if (rc)
			break;
		if (a.sink_rc) {
			rc = a.sink_rc; /* the consumer failed: not S3's fault, no retry */
			break;
		}
		if (cc != CURLE_OK && !req->after_cancel && cancel_requested()) {
			/* Stopped by the cancellation (or failed meanwhile): no retry.
			 * A reply that did arrive is still used: it may carry what
			 * the caller needs to clean up (an UploadId to abort). */
			rc = cancel_check();
			break;
		}
		if (cc != CURLE_OK) {
			transient = s3_transient_curl(cc);
			if (!transient || attempt >= max_attempts) {
				rc = error_set(
				    transient ? CF_ERR_NETWORK : CF_ERR_STORAGE,
				    "s3: %s %s s3://%s/%s: %s%s (curl %d, after %d attempt%s)",
				    req->method, req->what ? req->what : "", c->bucket,
				    req->key ? req->key : "",
				    cerr[0] ? cerr : curl_easy_strerror(cc),
				    cc == CURLE_PEER_FAILED_VERIFICATION ? " (check ca_file)" : "",
				    (int)cc, attempt, attempt == 1 ? "" : "s");
				break;
			}
			log_info("s3: %s s3://%s/%s: %s; retrying", req->method, c->bucket,
			         req->key ? req->key : "", curl_easy_strerror(cc));
			rc = s3_backoff(attempt);
			if (rc)
				break;
			continue;
		}
		if ((resp->status >= 200 && resp->status < 300) || resp->status == 304)
			break;
		if (resp->body.len)
			s3_xml_error((const char *)resp->body.data, resp->body.len, &resp->error);
		if (resp->status == 404 && strcmp(resp->error.code, "NoSuchBucket") != 0 &&
		    strcmp(resp->error.code, "NoSuchUpload") != 0) {
			rc = CF_ERR_NOTFOUND;
			break;
		}
		if (!refreshed && max_attempts > 1 &&
		    (!strcmp(resp->error.code, "ExpiredToken") ||
		     !strcmp(resp->error.code, "TokenRefreshRequired"))) {
			/* Ask the chain again; temporary credentials may have been renewed. */
			refreshed = 1;
			continue;
		}
		transient = s3_transient_status(resp->status, resp->error.code);
		if (transient && attempt < max_attempts) {
			log_info("s3: %s s3://%s/%s: HTTP %ld %s; retrying", req->method, c->bucket,
			         req->key ? req->key : "", resp->status, resp->error.code);
			rc = s3_backoff(attempt);
			if (rc)
				break;
			continue;
		}
		rc = s3_status_error(c, req, resp, transient);
		break;
	}
	s3_credentials_clear(&cred);
	s3_handle_put(c, k);
	return rc;
}
