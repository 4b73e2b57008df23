/*
 * http: requests over libcurl with a connection pool, retries and
 * cancellation (the contract is in http.h).
 *
 * Each request takes a connection from the client's pool and gives it back:
 * an easy handle and the multi handle that runs it, which keeps the
 * connections alive between requests. A transfer runs under that multi
 * handle polled in 100 ms slices, because curl_easy_perform() may sleep up to
 * a second between its progress calls; the transfer callback and the loop
 * both look at cancel_requested(). Backoff waits are cancel_sleep_ms().
 *
 * It does not sign, authenticate or interpret a status: the callers'
 * prepare() and classify() do.
 */
#include "http/http.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

#define HTTP_POOL_MAX 32
#define HTTP_HEADER_MAX (64 * 1024)
/* The longest a transfer waits before it looks at the cancellation. */
#define HTTP_POLL_MS 100
/* Total time allowed to a request that runs after a cancellation. */
#define HTTP_AFTER_CANCEL_MS 500

/* A pooled connection. */
struct http_conn {
	CURL *easy;
	CURLM *multi;
};

/* A token bucket shared by the client's transfers (max_send_rate...). */
struct http_rate {
	pthread_mutex_t mu;
	double rate;   /* bytes per second; 0: no limit */
	double tokens; /* may go below 0: the debt the taker sleeps off */
	double last;   /* time_mono() of the last refill */
};

struct http_client {
	struct http_client_options o; /* strings below, not the caller's */
	struct http_rate send, recv;
	struct http_tls tls;
	char *name, *proxy, *protocols;
	char *ca_file, *cert_file, *key_file;
	struct curl_slist *connect_to;
	pthread_mutex_t mu; /* the pool */
	struct http_conn *pool[HTTP_POOL_MAX];
	size_t npool;
};

struct http_attempt {
	struct http_client *c;
	const struct http_request *req;
	struct http_response *resp;
	int number;
	struct curl_slist *headers;
	int header_rc;   /* the first failure of http_attempt_header() */
	size_t body_off; /* upload position */
	int sink_rc;     /* the sink's error, which stopped the transfer */
};

static pthread_once_t http_curl_once = PTHREAD_ONCE_INIT;

static void http_curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int http_dup(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}

int http_client_new(const struct http_client_options *o, struct http_client **out)
{
	struct http_client *c;
	int rc;

	*out = NULL;
	pthread_once(&http_curl_once, http_curl_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->send.mu, NULL);
	pthread_mutex_init(&c->recv.mu, NULL);
	c->send.rate = (double)o->max_send_rate;
	c->recv.rate = (double)o->max_recv_rate;
	c->send.last = c->recv.last = time_mono();
	c->o = *o;
	c->tls = o->tls;
	rc = http_dup(o->name ? o->name : "http", &c->name);
	if (!rc)
		rc = http_dup(o->proxy, &c->proxy);
	if (!rc)
		rc = http_dup(o->protocols ? o->protocols : "http,https", &c->protocols);
	if (!rc)
		rc = http_dup(o->tls.ca_file, &c->ca_file);
	if (!rc)
		rc = http_dup(o->tls.cert_file, &c->cert_file);
	if (!rc)
		rc = http_dup(o->tls.key_file, &c->key_file);
	if (!rc && o->connect_to && !(c->connect_to = curl_slist_append(NULL, o->connect_to)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (rc) {
		http_client_free(c);
		return rc;
	}
	c->o.name = c->name;
	c->o.proxy = c->proxy;
	c->o.protocols = c->protocols;
	c->o.connect_to = NULL;
	c->tls.ca_file = c->ca_file;
	c->tls.cert_file = c->cert_file;
	c->tls.key_file = c->key_file;
	if (c->o.connect_timeout_ms <= 0)
		c->o.connect_timeout_ms = 30000;
	if (c->o.max_attempts <= 0)
		c->o.max_attempts = 1;
	if (c->o.backoff_base_ms <= 0)
		c->o.backoff_base_ms = 200;
	if (c->o.backoff_cap_ms <= 0)
		c->o.backoff_cap_ms = 10000;
	if (c->o.retry_after_max_ms <= 0)
		c->o.retry_after_max_ms = c->o.backoff_cap_ms;
	*out = c;
	return 0;
}

static void http_conn_free(struct http_conn *k)
{
	if (k) {
		if (k->multi)
			curl_multi_cleanup(k->multi);
		if (k->easy)
			curl_easy_cleanup(k->easy);
		free(k);
	}
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npool; i++)
		http_conn_free(c->pool[i]);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->send.mu);
	pthread_mutex_destroy(&c->recv.mu);
	curl_slist_free_all(c->connect_to);
	free(c->name);
	free(c->proxy);
	free(c->protocols);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c);
}

static struct http_conn *http_conn_get(struct http_client *c)
{
	struct http_conn *k = NULL;

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
		http_conn_free(k);
		return NULL;
	}
	return k;
}

static void http_conn_put(struct http_client *c, struct http_conn *k)
{
	pthread_mutex_lock(&c->mu);
	if (c->npool < HTTP_POOL_MAX) {
		c->pool[c->npool++] = k;
		k = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	http_conn_free(k);
}

/* ------------------------------------------------------------------------ */
/* Headers                                                                    */
/* ------------------------------------------------------------------------ */

int http_header_take(const char *line, size_t len, const char *name, char *dst, size_t dsz)
{
	size_t nl = strlen(name), vl;
	const char *v;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return 0;
	v = line + nl + 1;
	vl = len - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl &&
	       (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (vl >= dsz)
		vl = dsz - 1;
	memcpy(dst, v, vl);
	dst[vl] = '\0';
	return 1;
}

int http_header_secret(const char *name, size_t len)
{
	static const char *const secret[] = {
	    "authorization", "proxy-authorization",  "cookie",
	    "set-cookie",    "x-amz-security-token", "x-aws-ec2-metadata-token",
	};

	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		if (strlen(secret[i]) == len && !strncasecmp(name, secret[i], len))
			return 1;
	return 0;
}

char *http_header_redact(const char *line, size_t len, char *out, size_t cap)
{
	const char *colon = memchr(line, ':', len);

	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if (colon && http_header_secret(line, (size_t)(colon - line)))
		snprintf(out, cap, "%.*s: [redacted]", (int)(colon - line), line);
	else
		snprintf(out, cap, "%.*s", (int)len, line);
	return out;
}

int http_attempt_header(struct http_attempt *a, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), cap = nl + vl + 3;
	struct curl_slist *l;
	char *line;

	if (a->header_rc)
		return a->header_rc;
	if (cap > HTTP_HEADER_MAX)
		return a->header_rc = error_set(CF_ERR_LIMIT, "%s: the header %s is too long",
		                                a->c->name, name);
	line = malloc(cap);
	if (!line)
		return a->header_rc = error_set(CF_ERR_NOMEM, "out of memory");
	memcpy(line, name, nl);
	line[nl] = ':';
	if (vl) {
		line[nl + 1] = ' ';
		memcpy(line + nl + 2, value, vl + 1);
	} else {
		line[nl + 1] = '\0';
	}
	l = curl_slist_append(a->headers, line);
	explicit_bzero(line, cap);
	free(line);
	if (!l)
		return a->header_rc = error_set(CF_ERR_NOMEM, "out of memory");
	a->headers = l;
	return 0;
}

int http_attempt_number(const struct http_attempt *a)
{
	return a->number;
}

/* Wipes the header lines (they may hold a token) and frees them. */
static void http_headers_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

/* ------------------------------------------------------------------------ */
/* Transfer callbacks                                                         */
/* ------------------------------------------------------------------------ */

static int http_hurry(const struct http_request *req);

/* Lets n bytes pass at r's rate: takes them (into debt) and sleeps the debt
 * off, in slices that look at the cancellation. Not when hurrying after a
 * cancellation. */
static void http_rate_take(struct http_rate *r, size_t n, const struct http_request *req)
{
	double now, wait;

	if (r->rate <= 0 || http_hurry(req))
		return;
	pthread_mutex_lock(&r->mu);
	now = time_mono();
	r->tokens += (now - r->last) * r->rate;
	if (r->tokens > r->rate / 4)
		r->tokens = r->rate / 4;
	r->last = now;
	r->tokens -= (double)n;
	wait = r->tokens < 0 ? -r->tokens / r->rate : 0;
	pthread_mutex_unlock(&r->mu);
	while (wait > 0 && !cancel_requested()) {
		double slice = wait < 0.1 ? wait : 0.1;

		usleep((useconds_t)(slice * 1e6));
		wait -= slice;
	}
}

static size_t http_read_cb(char *dst, size_t size, size_t n, void *ctx)
{
	struct http_attempt *a = ctx;
	size_t want = size * n, left = a->req->body_len - a->body_off;

	if (want > left)
		want = left;
	if (want)
		memcpy(dst, a->req->body + a->body_off, want);
	a->body_off += want;
	http_rate_take(&a->c->send, want, a->req);
	return want;
}

/* Lets curl rewind the body, which it does to resend a request on a reused
 * connection that turned out to be dead. */
static int http_seek_cb(void *ctx, curl_off_t offset, int origin)
{
	struct http_attempt *a = ctx;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > a->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	a->body_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t http_write_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct http_attempt *a = ctx;
	size_t len = size * n;
	int rc;

	http_rate_take(&a->c->recv, len, a->req);
	if (a->req->sink && a->resp->status >= 200 && a->resp->status < 300) {
		a->sink_rc = a->req->sink(a->req->ctx, (const uint8_t *)data, len);
		return a->sink_rc ? 0 : len;
	}
	if (!a->req->reply)
		return len;
	rc = buf_append(a->req->reply, data, len);
	if (rc) {
		a->resp->body_rc = rc;
		return 0; /* curl fails with a write error */
	}
	return len;
}

/* Retry-After: delta-seconds or an HTTP date. */
static int64_t http_retry_after(const char *v)
{
	char *end;
	long long s = strtoll(v, &end, 10);
	time_t t;

	if (end != v && *end == '\0')
		return s < 0 ? 0 : (s > 86400 ? 86400000 : s * 1000);
	t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	t -= time(NULL);
	return t < 0 ? 0 : (int64_t)(t > 86400 ? 86400 : t) * 1000;
}

static size_t http_header_cb(char *line, size_t size, size_t n, void *ctx)
{
	struct http_attempt *a = ctx;
	struct http_response *r = a->resp;
	size_t len = size * n;
	char v[64];

	/* A new status line (after 100 Continue, or a redirect) starts over. */
	if (len > 5 && !strncmp(line, "HTTP/", 5)) {
		const char *sp = memchr(line, ' ', len);

		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->retry_after_ms = -1;
		if (a->req->header)
			a->req->header(a->req->ctx, NULL, 0);
		return len;
	}
	if (http_header_take(line, len, "retry-after", v, sizeof(v)))
		r->retry_after_ms = http_retry_after(v);
	if (a->req->header)
		a->req->header(a->req->ctx, line, len);
	return len;
}

static int http_xferinfo_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow)
{
	(void)ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancel_requested();
}

/* Logs the headers curl sends and receives, secrets redacted; never a body. */
static int http_debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ctx)
{
	struct http_attempt *a = ctx;
	const char *dir = type == CURLINFO_HEADER_OUT ? ">" : "<";
	char line[1024];

	(void)h;
	if (type == CURLINFO_TEXT) {
		while (size && (data[size - 1] == '\n' || data[size - 1] == '\r'))
			size--;
		log_debug("%s: * %.*s", a->c->name, (int)(size < 1000 ? size : 1000), data);
		return 0;
	}
	if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN)
		return 0;
	/* HEADER_OUT is the whole block of the request's headers. */
	while (size) {
		const char *eol = memchr(data, '\n', size);
		size_t len = eol ? (size_t)(eol - data) + 1 : size;

		http_header_redact(data, len, line, sizeof(line));
		if (line[0])
			log_debug("%s: %s %s", a->c->name, dir, line);
		data += len;
		size -= len;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* One attempt                                                                */
/* ------------------------------------------------------------------------ */

static int http_hurry(const struct http_request *req)
{
	return (req->after_cancel && cancel_requested()) || cancel_hurry();
}

/* Runs the transfer set up on the connection to its end, waking every
 * 100 ms; when cancellable, a cancellation stops it within that time with
 * CURLE_ABORTED_BY_CALLBACK. */
static CURLcode http_transfer(struct http_conn *k, int cancellable)
{
	CURL *h = k->easy;
	CURLM *m = k->multi;
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	if (cancellable) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_xferinfo_cb);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (curl_multi_add_handle(m, h) != CURLM_OK)
		return CURLE_FAILED_INIT;
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
		if (curl_multi_poll(m, NULL, 0, HTTP_POLL_MS, NULL) != CURLM_OK) {
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
	return cc;
}

static void http_setopt_tls(CURL *h, const struct http_tls *t)
{
	/* Blobs are not copied: the caller's memory outlives the transfer. */
	if (t->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (t->ca_len) {
		struct curl_blob b = {(void *)(uintptr_t)t->ca_data, t->ca_len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (t->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
	}
	if (t->cert_len) {
		struct curl_blob b = {(void *)(uintptr_t)t->cert_data, t->cert_len,
		                      CURL_BLOB_NOCOPY};

		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (t->cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert_file);
	}
	if (t->key_len) {
		struct curl_blob b = {(void *)(uintptr_t)t->key_data, t->key_len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (t->key_file) {
		curl_easy_setopt(h, CURLOPT_SSLKEY, t->key_file);
	}
}

static void http_setopts(struct http_attempt *a, CURL *h)
{
	const struct http_client *c = a->c;
	const struct http_request *req = a->req;
	const char *m = req->method;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->o.protocols);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
	if (c->o.stall_timeout_s > 0) {
		/* A transfer that moves nothing for that long is stalled. */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->o.stall_timeout_s);
	}
	if (c->o.total_timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->o.total_timeout_ms);
	if (http_hurry(req)) {
		/* Cleaning up after a cancellation: the process is about to exit. */
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTP_AFTER_CANCEL_MS);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)HTTP_AFTER_CANCEL_MS);
	}
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->resp->curl_error);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION);
	if (c->o.accept_encoding)
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (c->o.no_proxy)
		curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	else if (c->o.proxy)
		curl_easy_setopt(h, CURLOPT_PROXY, c->o.proxy);
	if (c->connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
	http_setopt_tls(h, req->tls ? req->tls : &c->tls);
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, http_debug_cb);
		curl_easy_setopt(h, CURLOPT_DEBUGDATA, a);
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	}
	if (!strcmp(m, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(m, "PUT") || !strcmp(m, "POST")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, http_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, a);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, http_seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, a);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		if (!strcmp(m, "POST"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
	} else if (!strcmp(m, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
}

/* Prepares and runs one attempt. Returns 0 when the transfer ran (whatever
 * came of it: resp says), or prepare's error. */
static int http_attempt_run(struct http_client *c, struct http_conn *k,
                            const struct http_request *req, struct http_response *resp, int number,
                            int *sink_rc)
{
	struct http_attempt a;
	int rc = 0;

	memset(&a, 0, sizeof(a));
	a.c = c;
	a.req = req;
	a.resp = resp;
	a.number = number;
	resp->status = 0;
	resp->curl_code = CURLE_OK;
	resp->curl_error[0] = '\0';
	resp->body_rc = 0;
	resp->retry_after_ms = -1;
	if (req->reply)
		buf_reset(req->reply);
	if (req->header)
		req->header(req->ctx, NULL, 0);
	if (req->prepare)
		rc = req->prepare(req->ctx, &a);
	if (!rc)
		rc = a.header_rc;
	if (!rc) {
		http_setopts(&a, k->easy);
		resp->curl_code = http_transfer(k, !req->after_cancel);
		if (resp->curl_code == CURLE_OK)
			curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &resp->status);
		*sink_rc = a.sink_rc;
	}
	http_headers_free(a.headers);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Retries                                                                    */
/* ------------------------------------------------------------------------ */

int http_transient_curl(CURLcode cc)
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

/* The classify() of a request that has none. */
static int http_classify_default(const struct http_client *c, const struct http_request *req,
                                 const struct http_response *resp)
{
	int transient;

	if (resp->curl_code != CURLE_OK) {
		transient = http_transient_curl(resp->curl_code);
		if (transient && !resp->last)
			return HTTP_RETRY;
		return error_set(
		    CF_ERR_NETWORK, "%s: %s: %s (curl %d, after %d attempt%s)", c->name,
		    req->what ? req->what : req->url,
		    resp->curl_error[0] ? resp->curl_error : curl_easy_strerror(resp->curl_code),
		    (int)resp->curl_code, resp->attempts, resp->attempts == 1 ? "" : "s");
	}
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	transient = resp->status == 429 || resp->status >= 500;
	if (transient && !resp->last)
		return HTTP_RETRY;
	return error_set(transient ? CF_ERR_NETWORK : CF_ERR_SOURCE, "%s: %s: HTTP %ld%s", c->name,
	                 req->what ? req->what : req->url, resp->status,
	                 transient ? " (retries exhausted)" : "");
}

static uint32_t http_random(uint32_t upper)
{
	return upper == UINT32_MAX ? arc4random() : arc4random_uniform(upper + 1);
}

/* How long to wait before attempt + 1: the server's Retry-After (bounded),
 * else a random time in [0, min(cap, base * 2^(attempt-1))] (full jitter). */
static int64_t http_backoff_ms(const struct http_client *c, const struct http_response *resp,
                               int attempt)
{
	int64_t ceiling = c->o.backoff_base_ms;

	if (resp->retry_after_ms >= 0)
		return resp->retry_after_ms < c->o.retry_after_max_ms ? resp->retry_after_ms
		                                                      : c->o.retry_after_max_ms;
	for (int i = 1; i < attempt && ceiling < c->o.backoff_cap_ms; i++)
		ceiling *= 2;
	if (ceiling > c->o.backoff_cap_ms)
		ceiling = c->o.backoff_cap_ms;
	return (int64_t)(c->o.random ? c->o.random : http_random)((uint32_t)ceiling);
}

static int http_interrupted(const struct http_client *c, const struct http_request *req)
{
	return error_set(CF_ERR_INTERRUPTED, "%s: %s: interrupted by a signal", c->name,
	                 req->what ? req->what : req->method);
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp)
{
	int rc = 0, max_attempts = c->o.max_attempts, cancellable = !req->after_cancel;
	struct http_conn *k;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_ms = -1;
	if (cancellable && cancel_requested())
		return http_interrupted(c, req);
	if (http_hurry(req))
		max_attempts = 1;
	k = http_conn_get(c);
	if (!k)
		return error_set(CF_ERR_NOMEM, "out of memory for a connection");
	for (int attempt = 1;; attempt++) {
		int sink_rc = 0;
		int64_t wait;

		if (attempt > 1 && cancellable && cancel_requested()) {
			rc = http_interrupted(c, req);
			break;
		}
		resp->attempts = attempt;
		resp->last = attempt >= max_attempts;
		rc = http_attempt_run(c, k, req, resp, attempt, &sink_rc);
		if (rc)
			break;
		if (sink_rc) {
			rc = sink_rc; /* the consumer failed: not the server's fault */
			break;
		}
		if (resp->curl_code != CURLE_OK && cancellable && cancel_requested()) {
			/* Stopped by the cancellation (or failed meanwhile): no retry. */
			rc = http_interrupted(c, req);
			break;
		}
		rc = req->classify ? req->classify(req->ctx, resp)
		                   : http_classify_default(c, req, resp);
		if (rc == HTTP_RETRY_NOW)
			continue;
		if (rc != HTTP_RETRY)
			break;
		if (resp->last) {
			rc = error_set(CF_ERR_NETWORK, "%s: %s: retries exhausted", c->name,
			               req->what ? req->what : req->url);
			break;
		}
		wait = http_backoff_ms(c, resp, attempt);
		if (resp->curl_code != CURLE_OK)
			log_info("%s: %s: %s; trying again in %lld ms", c->name,
			         req->what ? req->what : req->url,
			         curl_easy_strerror(resp->curl_code), (long long)wait);
		else
			log_info("%s: %s: HTTP %ld; trying again in %lld ms", c->name,
			         req->what ? req->what : req->url, resp->status, (long long)wait);
		if (cancel_sleep_ms(wait) != 0) {
			rc = http_interrupted(c, req);
			break;
		}
	}
	http_conn_put(c, k);
	return rc;
}
