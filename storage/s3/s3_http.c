/*
 * s3_http: one S3 request, signed with SigV4, sent through the HTTP client
 * (http/http.h: pooled keep-alive connections, retries with backoff and
 * jitter, cancellation). This file says what S3 adds: the URL of a key,
 * the signature of every attempt (the date is part of it), which failures
 * are worth another try (connection refused or reset, timeouts, 5xx,
 * SlowDown, RequestTimeout; once an expired token, after the credential
 * chain was asked again) and the one message of a request that failed for
 * good, naming the request, the HTTP status and S3's code. It knows nothing
 * of multipart uploads or listings: s3_driver.c does.
 */
#include "storage/s3/s3.h"
#include "storage/storage.h"
#include "crypto/crypto.h"
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S3_DEFAULT_MAX_BODY (1024 * 1024)
#define S3_BACKOFF_BASE_MS 200
#define S3_BACKOFF_CAP_MS 10000

struct s3_client {
	char *scheme;   /* "http" or "https" */
	char *hostport; /* endpoint host[:port] */
	char *bucket;
	char *prefix; /* "" or ending in '/' */
	char *region;
	char *describe;
	char *storage_class;
	int virtual_style;
	int max_attempts;
	struct s3_cred *cred;
	struct http_client *http; /* the pool of connections, thread-safe */
};

static char *s3_strdup_or(const char *s, const char *dflt)
{
	return strdup(s && *s ? s : dflt);
}

int s3_client_new(const struct storage_s3_options *opts, struct s3_client **out)
{
	struct s3_client *c;
	struct s3_cred_options co;
	struct http_client_options ho;
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
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	host = strstr(ep, "://") + 3;
	c->scheme = strndup(ep, (size_t)(host - 3 - ep));
	c->hostport = strndup(host, strcspn(host, "/"));
	c->bucket = strdup(opts->bucket);
	c->region = s3_strdup_or(opts->region, "us-east-1");
	c->storage_class = opts->storage_class ? strdup(opts->storage_class) : NULL;
	c->virtual_style = opts->virtual_style;
	c->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 8;
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
	if (!rc) {
		long timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 30;

		memset(&ho, 0, sizeof(ho));
		ho.name = "s3";
		ho.connect_timeout_ms = timeout_s * 1000;
		/* No total timeout: a transfer that moves nothing for timeout_s
		 * seconds is stalled. */
		ho.stall_timeout_s = timeout_s;
		ho.max_attempts = c->max_attempts;
		ho.backoff_base_ms = S3_BACKOFF_BASE_MS;
		ho.backoff_cap_ms = S3_BACKOFF_CAP_MS;
		/* A target's rate, shared by all its transfers. */
		ho.max_send_rate = opts->max_upload_rate;
		ho.max_recv_rate = opts->max_download_rate;
		ho.tls.ca_file = opts->ca_file;
		ho.tls.insecure = opts->insecure_tls;
		rc = http_client_new(&ho, &c->http);
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
	http_client_free(c->http);
	s3_cred_free(c->cred);
	free(c->scheme);
	free(c->hostport);
	free(c->bucket);
	free(c->prefix);
	free(c->region);
	free(c->describe);
	free(c->storage_class);
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

int s3_client_copy_source(const struct s3_client *c, const char *key, struct buf *out)
{
	struct buf path;
	int rc;

	buf_init(&path, 4096);
	buf_init(out, 4096 * 3);
	rc = buf_printf(&path, "/%s/%s%s", c->bucket, c->prefix, key);
	if (!rc)
		rc = s3_uri_encode((const char *)path.data, 1, out);
	buf_free(&path);
	return rc;
}

int s3_client_same_endpoint(const struct s3_client *a, const struct s3_client *b)
{
	return !strcmp(a->scheme, b->scheme) && !strcmp(a->hostport, b->hostport) &&
	       a->virtual_style == b->virtual_style;
}

void s3_response_free(struct s3_response *resp)
{
	buf_free(&resp->body);
}

int s3_bucket_missing(const struct s3_response *resp)
{
	return !strcmp(resp->error.code, "NoSuchBucket");
}

/* One request on its way through http_perform(). */
struct s3_call {
	struct s3_client *c;
	const struct s3_request *req;
	struct s3_response *resp;
	const char *path; /* canonical path, as signed */
	const char *host;
	struct s3_credentials cred; /* of the current attempt */
	int may_refresh;            /* more than one attempt is allowed */
	int refreshed;              /* the chain was asked again after ExpiredToken */
};

static void s3_header_cb(void *ctx, const char *line, size_t len)
{
	struct s3_call *k = ctx;
	struct s3_response *r = k->resp;
	char cl[32] = "";

	if (!line) { /* a new status line, or a new attempt: start over */
		r->etag[0] = r->content_range[0] = r->last_modified[0] = '\0';
		r->bucket_region[0] = r->retain_until[0] = '\0';
		r->content_length = -1;
		return;
	}
	http_header_take(line, len, "etag", r->etag, sizeof(r->etag));
	http_header_take(line, len, "x-amz-request-id", r->request_id, sizeof(r->request_id));
	http_header_take(line, len, "content-range", r->content_range, sizeof(r->content_range));
	http_header_take(line, len, "last-modified", r->last_modified, sizeof(r->last_modified));
	http_header_take(line, len, "x-amz-bucket-region", r->bucket_region,
	                 sizeof(r->bucket_region));
	http_header_take(line, len, "x-amz-object-lock-retain-until-date", r->retain_until,
	                 sizeof(r->retain_until));
	if (http_header_take(line, len, "content-length", cl, sizeof(cl)))
		r->content_length = strtoll(cl, NULL, 10);
}

/* Only a successful reply goes to the request's sink; error bodies are kept
 * in the response. */
static int s3_sink_cb(void *ctx, const uint8_t *data, size_t len)
{
	struct s3_call *k = ctx;

	return k->req->sink(k->req->sink_ctx, data, len);
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

/* Signs one attempt afresh (the date is part of the signature) with the
 * credentials the chain gives now, and adds its headers. */
static int s3_prepare(void *ctx, struct http_attempt *att)
{
	struct s3_call *k = ctx;
	const struct s3_request *req = k->req;
	struct s3_header hdrs[24];
	struct s3_sigv4_request sr;
	struct s3_sigv4_result sig;
	char date[S3_AMZ_DATE_LEN + 1], payload[HASH_SHA256_HEX_LEN + 1];
	/* One reading of the clock for both the x-amz-date header and the
	 * signature: two readings can straddle a second and not match. */
	time_t now = time(NULL);
	size_t nh = 0;
	int rc;

	k->resp->status = 0;
	k->resp->content_length = -1;
	memset(&k->resp->error, 0, sizeof(k->resp->error));
	if (req->reset)
		req->reset(req->sink_ctx);
	s3_credentials_clear(&k->cred);
	rc = s3_cred_get(k->c->cred, now, &k->cred);
	if (rc)
		return rc;
	s3_sigv4_format_date(now, date);
	/* A body with a Content-MD5 is bound to the signature through that
	 * (signed) header and checked by the server against it, so hashing it a
	 * second time with SHA-256 buys nothing: it goes as UNSIGNED-PAYLOAD, as
	 * the aws CLI sends uploads. Other bodies (XML, none) are hashed. */
	if (req->body_sha256)
		snprintf(payload, sizeof(payload), "%s", req->body_sha256);
	else if (req->body_md5)
		snprintf(payload, sizeof(payload), "UNSIGNED-PAYLOAD");
	else if ((rc = hash_sha256_hex(req->body ? (const void *)req->body : "", req->body_len,
	                               payload)) != 0)
		return rc;
	hdrs[nh++] = (struct s3_header){"host", k->host};
	hdrs[nh++] = (struct s3_header){"x-amz-date", date};
	hdrs[nh++] = (struct s3_header){"x-amz-content-sha256", payload};
	if (k->cred.token)
		hdrs[nh++] = (struct s3_header){"x-amz-security-token", k->cred.token};
	if (req->body_md5)
		hdrs[nh++] = (struct s3_header){"content-md5", req->body_md5};
	for (size_t i = 0; i < req->nheaders && nh < sizeof(hdrs) / sizeof(hdrs[0]); i++)
		hdrs[nh++] = req->headers[i];
	memset(&sr, 0, sizeof(sr));
	sr.method = req->method;
	sr.path = k->path;
	sr.query = req->query;
	sr.headers = hdrs;
	sr.nheaders = nh;
	sr.payload_hash = payload;
	sr.region = k->c->region;
	sr.service = "s3";
	sr.now = now;
	memset(&sig, 0, sizeof(sig));
	rc = s3_sigv4_sign(&sr, &k->cred, &sig);
	for (size_t i = 0; !rc && i < nh; i++)
		rc = http_attempt_header(att, hdrs[i].name, hdrs[i].value);
	if (!rc)
		rc = http_attempt_header(att, "Authorization", (char *)sig.authorization.data);
	/* curl's own defaults that S3 does not want. */
	if (!rc)
		rc = http_attempt_header(att, "Expect", "");
	if (!rc)
		rc = http_attempt_header(att, "Accept", "");
	if (!rc)
		rc = http_attempt_header(att, "Content-Type", "");
	s3_sigv4_result_free(&sig);
	return rc;
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
	const char *region = resp->bucket_region[0] ? resp->bucket_region : resp->error.region;

	/* A bucket in another region: AWS answers 301 PermanentRedirect (no
	 * body to a HEAD) or 400 AuthorizationHeaderMalformed, and names the
	 * region in a header or the body. The fix is in the configuration. */
	if (resp->status == 301 || !strcmp(code, "PermanentRedirect") ||
	    (!strcmp(code, "AuthorizationHeaderMalformed") && region[0])) {
		if (region[0] && strcmp(region, c->region) != 0)
			return error_set(CF_ERR_CONFIG,
			                 "s3: bucket %s is in region %s, not %s: set region = %s "
			                 "and an endpoint of that region in [repository]",
			                 c->bucket, region, c->region, region);
		return error_set(CF_ERR_CONFIG,
		                 "s3: bucket %s is not served by this endpoint (HTTP %ld%s%s): "
		                 "check [repository] endpoint, region and uri_style",
		                 c->bucket, resp->status, code[0] ? " " : "", code);
	}
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

/* Says what became of an attempt: done, worth another try, or the one
 * message of a failure. */
static int s3_classify(void *ctx, const struct http_response *hr)
{
	struct s3_call *k = ctx;
	struct s3_client *c = k->c;
	const struct s3_request *req = k->req;
	struct s3_response *resp = k->resp;
	int transient;

	resp->status = hr->status;
	if (hr->curl_code != CURLE_OK) {
		CURLcode cc = hr->curl_code;

		transient = http_transient_curl(cc);
		if (transient && !hr->last)
			return HTTP_RETRY;
		return error_set(transient ? CF_ERR_NETWORK : CF_ERR_STORAGE,
		                 "s3: %s%s%s s3://%s/%s: %s%s (curl %d, after %d attempt%s)",
		                 req->method, req->what ? " " : "", req->what ? req->what : "",
		                 c->bucket, req->key ? req->key : "",
		                 hr->curl_error[0] ? hr->curl_error : curl_easy_strerror(cc),
		                 cc == CURLE_PEER_FAILED_VERIFICATION ? " (check ca_file)" : "",
		                 (int)cc, hr->attempts, hr->attempts == 1 ? "" : "s");
	}
	if ((resp->status >= 200 && resp->status < 300) || resp->status == 304)
		return 0;
	if (resp->body.len)
		s3_xml_error((const char *)resp->body.data, resp->body.len, &resp->error);
	if (resp->status == 404 && strcmp(resp->error.code, "NoSuchBucket") != 0 &&
	    strcmp(resp->error.code, "NoSuchUpload") != 0)
		return CF_ERR_NOTFOUND;
	if (!k->refreshed && k->may_refresh &&
	    (!strcmp(resp->error.code, "ExpiredToken") ||
	     !strcmp(resp->error.code, "TokenRefreshRequired"))) {
		/* Ask the chain again; temporary credentials may have been renewed. */
		k->refreshed = 1;
		return HTTP_RETRY_NOW;
	}
	transient = s3_transient_status(resp->status, resp->error.code);
	if (transient && !hr->last)
		return HTTP_RETRY;
	return s3_status_error(c, req, resp, transient);
}

int s3_http_request(struct s3_client *c, const struct s3_request *req, struct s3_response *resp)
{
	struct http_request hr;
	struct http_response hres;
	struct s3_call k;
	struct buf url, path, host, what;
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->content_length = -1;
	buf_init(&resp->body, req->max_body ? req->max_body : S3_DEFAULT_MAX_BODY);
	memset(&k, 0, sizeof(k));
	k.c = c;
	k.req = req;
	k.resp = resp;
	/* After a cancellation a request makes one attempt (http.h). */
	k.may_refresh =
	    c->max_attempts > 1 && !((req->after_cancel && cancel_requested()) || cancel_hurry());
	buf_init(&what, 32768);
	rc = s3_url(c, req, &url, &path, &host);
	if (!rc)
		rc = buf_printf(&what, "%s s3://%s/%s", req->method, c->bucket,
		                req->key ? req->key : "");
	if (!rc) {
		k.path = (const char *)path.data;
		k.host = (const char *)host.data;
		memset(&hr, 0, sizeof(hr));
		hr.method = req->method;
		hr.url = (const char *)url.data;
		hr.what = (const char *)what.data;
		hr.body = req->body;
		hr.body_len = req->body_len;
		hr.prepare = s3_prepare;
		hr.classify = s3_classify;
		hr.header = s3_header_cb;
		hr.sink = req->sink ? s3_sink_cb : NULL;
		hr.ctx = &k;
		hr.reply = &resp->body;
		hr.after_cancel = req->after_cancel;
		rc = http_perform(c->http, &hr, &hres);
		resp->status = hres.status;
	}
	s3_credentials_clear(&k.cred);
	buf_free(&url);
	buf_free(&path);
	buf_free(&host);
	buf_free(&what);
	return rc;
}
