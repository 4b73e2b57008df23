/*
 * k8s_http: one GET to the API server through the client's HTTP client
 * (http/http.h: a kept-alive connection, retries, cancellation), with the
 * TLS settings and credentials k8s_conn.c read, and the reply as JSON.
 *
 * It turns each failure into one message: a server certificate that cannot
 * be verified (naming the CA used), a server that cannot be reached, an HTTP
 * error with the message of the Status object Kubernetes returns. It retries
 * only what is worth retrying for a read (429, 502-504, a dropped keep-alive
 * connection) and renews the credential once on a 401. It knows nothing of
 * discovery or pagination.
 */
#include "agent/source/kubernetes/k8s_intern.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K8S_MAX_BODY ((size_t)256 * 1024 * 1024)
#define K8S_MAX_URL (64 * 1024)
#define K8S_ATTEMPTS 3
#define K8S_RETRY_MAX_S 10
/* An exec credential is renewed this long before it expires. */
#define K8S_EXPIRY_MARGIN_MS (60 * 1000)

/* One GET on its way through http_perform(). */
struct k8s_call {
	struct k8s_client *c;
	const char *path;
	struct buf body;     /* the reply */
	struct http_tls tls; /* of the current attempt (a renewal may change it) */
	int renewed;         /* the credential was renewed after a 401 */
};

/* Adds "Authorization: Basic ..." built in sodium memory. */
static int k8s_header_basic(struct k8s_client *c, struct http_attempt *a)
{
	size_t ulen = strlen(c->username), plen = strlen(c->password);
	size_t raw_len = ulen + 1 + plen;
	size_t b64_len = sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_ORIGINAL);
	size_t cap = b64_len + 8;
	char *raw = sodium_malloc(raw_len + 1), *value = sodium_malloc(cap);
	int rc;

	if (!raw || !value) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	} else {
		memcpy(raw, c->username, ulen);
		raw[ulen] = ':';
		memcpy(raw + ulen + 1, c->password, plen);
		memcpy(value, "Basic ", 6);
		sodium_bin2base64(value + 6, cap - 6, (const unsigned char *)raw, raw_len,
		                  sodium_base64_VARIANT_ORIGINAL);
		rc = http_attempt_header(a, "Authorization", value);
	}
	if (raw)
		sodium_free(raw);
	if (value)
		sodium_free(value);
	return rc;
}

/* The headers and TLS settings of an attempt, from the credential in use
 * now (the HTTP client wipes its copies of the header lines). */
static int k8s_prepare(void *ctx, struct http_attempt *a)
{
	struct k8s_call *k = ctx;
	struct k8s_client *c = k->c;
	int rc;

	memset(&k->tls, 0, sizeof(k->tls));
	k->tls.insecure = c->insecure;
	k->tls.ca_data = c->ca_data.data;
	k->tls.ca_len = c->ca_data.len;
	k->tls.ca_file = c->ca_file;
	k->tls.cert_data = c->cert_data.data;
	k->tls.cert_len = c->cert_data.len;
	k->tls.cert_file = c->cert_file;
	k->tls.key_data = c->key_data.data;
	k->tls.key_len = c->key_data.len;
	k->tls.key_file = c->key_file;
	rc = http_attempt_header(a, "Accept", "application/json");
	if (!rc && c->token) {
		size_t cap = strlen(c->token) + 8;
		char *value = sodium_malloc(cap);

		if (!value)
			return error_set(CF_ERR_NOMEM, "out of memory");
		snprintf(value, cap, "Bearer %s", c->token);
		rc = http_attempt_header(a, "Authorization", value);
		sodium_free(value);
	} else if (!rc && c->username) {
		rc = k8s_header_basic(c, a);
	}
	if (!rc && c->impersonate)
		rc = http_attempt_header(a, "Impersonate-User", c->impersonate);
	for (size_t i = 0; !rc && i < c->impersonate_groups.n; i++)
		rc = http_attempt_header(a, "Impersonate-Group", c->impersonate_groups.v[i]);
	return rc;
}

static const char *k8s_ca_name(const struct k8s_client *c)
{
	if (c->ca_data.len)
		return "inline certificate-authority-data";
	if (c->ca_file)
		return c->ca_file;
	return "the system's CA certificates";
}

/* A transport failure as one message, or HTTP_RETRY if it is worth another
 * try (a keep-alive connection the server had closed). */
static int k8s_curl_error(struct k8s_call *k, const struct http_response *resp)
{
	struct k8s_client *c = k->c;
	const char *detail =
	    resp->curl_error[0] ? resp->curl_error : curl_easy_strerror(resp->curl_code);

	switch (resp->curl_code) {
	case CURLE_WRITE_ERROR:
		if (resp->body_rc == CF_ERR_LIMIT)
			return error_set(CF_ERR_LIMIT,
			                 "k8s: GET %s%s: the reply is larger than %zu MiB",
			                 c->server, k->path, K8S_MAX_BODY >> 20);
		if (resp->body_rc)
			return error_set(CF_ERR_NOMEM, "k8s: GET %s%s: out of memory for the reply",
			                 c->server, k->path);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return error_set(
		    CF_ERR_NETWORK,
		    "k8s: the server certificate of %s could not be verified (CA: %s): %s",
		    c->server, k8s_ca_name(c), detail);
	case CURLE_SSL_CERTPROBLEM:
		return error_set(CF_ERR_AUTH,
		                 "k8s: %s: the client certificate or key cannot be used: %s",
		                 c->server, detail);
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		if (!resp->last)
			return HTTP_RETRY;
		break;
	default:
		break;
	}
	return error_set(CF_ERR_NETWORK,
	                 "k8s: cannot reach the API server %s: %s (GET %s, curl %d)", c->server,
	                 detail, k->path, (int)resp->curl_code);
}

static const char *k8s_reason(long status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 410:
		return "Gone";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "";
	}
}

/* An HTTP error as one message, with the Status object's message, or the
 * start of a body that is not one (a proxy's HTML page). */
static int k8s_status_error(struct k8s_client *c, const char *path, long status,
                            const struct buf *body)
{
	json_t *j = json_loadb((const char *)body->data, body->len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));
	char msg[512];
	size_t n = 0;
	int code;

	if (!m && !j && body->len) {
		for (size_t i = 0; i < body->len && n < 200; i++) {
			char ch = (char)body->data[i];

			msg[n++] = ch >= 0x20 && ch < 0x7f ? ch : ' ';
		}
		msg[n] = '\0';
		m = msg;
	}
	if (status == 401 || status == 403)
		code = CF_ERR_AUTH;
	else if (status == 404)
		code = CF_ERR_NOTFOUND;
	else
		code = CF_ERR_SOURCE;
	code = error_set(code, "k8s: GET %s%s: HTTP %ld%s%s%s%s%s", c->server, path, status,
	                 *k8s_reason(status) ? " " : "", k8s_reason(status), m && *m ? ": " : "",
	                 m ? m : "", status == 401 ? " (the credentials were refused)" : "");
	json_decref(j);
	return code;
}

/* Says what became of an attempt: done, worth another try (after renewing
 * the credential on a 401), or the one message of a failure. */
static int k8s_classify(void *ctx, const struct http_response *resp)
{
	struct k8s_call *k = ctx;
	struct k8s_client *c = k->c;
	long code = resp->status;
	int rc;

	if (resp->curl_code != CURLE_OK)
		return k8s_curl_error(k, resp);
	log_debug("k8s: GET %s: HTTP %ld, %zu bytes", k->path, code, k->body.len);
	if (code >= 200 && code < 300)
		return 0;
	if (code == 401 && !k->renewed && k8s_client_renewable(c)) {
		/* A rotated token file or an expired plugin credential. */
		log_info("k8s: GET %s: HTTP 401; renewing the credentials", k->path);
		k->renewed = 1;
		rc = k8s_client_renew(c);
		return rc ? rc : HTTP_RETRY_NOW;
	}
	if ((code == 429 || code == 502 || code == 503 || code == 504) && !resp->last)
		return HTTP_RETRY;
	return k8s_status_error(c, k->path, code, &k->body);
}

/* The client's HTTP client, made at the first request. */
static int k8s_http(struct k8s_client *c)
{
	struct http_client_options o;

	if (c->http)
		return 0;
	memset(&o, 0, sizeof(o));
	o.name = "k8s";
	o.connect_timeout_ms = c->timeout_s * 1000;
	/* No total timeout: a big list page may take long; a transfer that
	 * moves nothing for timeout_s seconds is stalled. */
	o.stall_timeout_s = c->timeout_s;
	o.max_attempts = K8S_ATTEMPTS;
	o.backoff_base_ms = 1000;
	o.backoff_cap_ms = K8S_RETRY_MAX_S * 1000;
	o.retry_after_max_ms = K8S_RETRY_MAX_S * 1000;
	o.proxy = c->proxy_url;
	o.connect_to = c->connect_to;
	o.accept_encoding = 1; /* gzip: lists compress well */
	o.protocols = "https,http";
	return http_client_new(&o, &c->http);
}

int k8s_get_json(struct k8s_client *c, const char *path, json_t **out, long *status)
{
	struct http_request req;
	struct http_response resp;
	struct k8s_call k;
	json_error_t jerr;
	struct buf url, what;
	int rc;

	*out = NULL;
	if (status)
		*status = 0;
	memset(&k, 0, sizeof(k));
	k.c = c;
	k.path = path;
	buf_init(&url, K8S_MAX_URL);
	buf_init(&what, K8S_MAX_URL);
	buf_init(&k.body, K8S_MAX_BODY);
	rc = buf_printf(&url, "%s%s", c->url_base, path);
	if (rc) {
		rc = error_set(rc, "k8s: the URL of GET %s is too long", path);
		goto out;
	}
	rc = buf_printf(&what, "GET %s", path);
	if (!rc)
		rc = k8s_http(c);
	if (!rc && c->exec && c->expiry_ms && time_now_ms() >= c->expiry_ms - K8S_EXPIRY_MARGIN_MS)
		rc = k8s_client_renew(c);
	if (rc)
		goto out;
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = (const char *)url.data;
	req.what = (const char *)what.data;
	req.tls = &k.tls;
	req.prepare = k8s_prepare;
	req.classify = k8s_classify;
	req.ctx = &k;
	req.reply = &k.body;
	rc = http_perform(c->http, &req, &resp);
	if (status)
		*status = resp.curl_code == CURLE_OK ? resp.status : 0;
	if (!rc) {
		*out = json_loadb((const char *)k.body.data, k.body.len, 0, &jerr);
		if (!*out)
			rc = error_set(CF_ERR_FORMAT,
			               "k8s: GET %s%s: the reply is not JSON: %s (line %d)",
			               c->server, path, jerr.text, jerr.line);
	}
out:
	buf_free(&k.body);
	buf_free(&what);
	buf_free(&url);
	return rc;
}
