/*
 * k8s_http: one GET to the API server over the client's curl handle (kept
 * alive between requests), with the TLS settings and credentials k8s_conn.c
 * read, and the reply as JSON.
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
#include <strings.h>
#include <unistd.h>

#define K8S_MAX_BODY ((size_t)256 * 1024 * 1024)
#define K8S_MAX_URL (64 * 1024)
#define K8S_ATTEMPTS 3
#define K8S_RETRY_MAX_S 10
/* An exec credential is renewed this long before it expires. */
#define K8S_EXPIRY_MARGIN_MS (60 * 1000)

struct k8s_reply {
	struct buf body;
	int body_rc;      /* why the body could not be kept (CF_ERR_LIMIT, CF_ERR_NOMEM) */
	long retry_after; /* seconds, from Retry-After; 0 if none */
};

static size_t k8s_write_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct k8s_reply *r = ctx;
	size_t len = size * n;

	r->body_rc = buf_append(&r->body, data, len);
	return r->body_rc ? 0 : len;
}

static size_t k8s_header_cb(char *line, size_t size, size_t n, void *ctx)
{
	struct k8s_reply *r = ctx;
	size_t len = size * n;

	if (len > 12 && !strncasecmp(line, "retry-after:", 12))
		r->retry_after = strtol(line + 12, NULL, 10);
	return len;
}

/* Stops a transfer once the run is cancelled (libcurl calls this at least
 * once a second, also while it connects or waits for a reply). */
static int k8s_progress_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
	(void)ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancel_requested() ? 1 : 0;
}

/* Wipes the header strings (one holds the token) and frees the list. */
static void k8s_headers_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		sodium_memzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static int k8s_header_add(struct curl_slist **l, const char *h)
{
	struct curl_slist *n = curl_slist_append(*l, h);

	if (!n)
		return error_set(CF_ERR_NOMEM, "out of memory");
	*l = n;
	return 0;
}

/* Builds "Authorization: ..." in sodium memory and appends it. */
static int k8s_header_auth(struct k8s_client *c, struct curl_slist **l)
{
	size_t ulen, plen, raw_len, b64_len, cap;
	char *raw = NULL, *line;
	int rc;

	if (c->token) {
		cap = strlen(c->token) + 32;
		line = sodium_malloc(cap);
		if (!line)
			return error_set(CF_ERR_NOMEM, "out of memory");
		snprintf(line, cap, "Authorization: Bearer %s", c->token);
	} else {
		ulen = strlen(c->username);
		plen = strlen(c->password);
		raw_len = ulen + 1 + plen;
		b64_len = sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_ORIGINAL);
		cap = b64_len + 32;
		raw = sodium_malloc(raw_len + 1);
		line = sodium_malloc(cap);
		if (!raw || !line) {
			if (raw)
				sodium_free(raw);
			if (line)
				sodium_free(line);
			return error_set(CF_ERR_NOMEM, "out of memory");
		}
		memcpy(raw, c->username, ulen);
		raw[ulen] = ':';
		memcpy(raw + ulen + 1, c->password, plen);
		memcpy(line, "Authorization: Basic ", 21);
		sodium_bin2base64(line + 21, cap - 21, (const unsigned char *)raw, raw_len,
		                  sodium_base64_VARIANT_ORIGINAL);
		sodium_free(raw);
	}
	rc = k8s_header_add(l, line);
	sodium_free(line);
	return rc;
}

static int k8s_headers(struct k8s_client *c, struct curl_slist **out)
{
	struct curl_slist *l = NULL;
	struct buf h;
	int rc;

	*out = NULL;
	rc = k8s_header_add(&l, "Accept: application/json");
	if (!rc && (c->token || c->username))
		rc = k8s_header_auth(c, &l);
	buf_init(&h, 4096);
	if (!rc && c->impersonate) {
		rc = buf_printf(&h, "Impersonate-User: %s", c->impersonate);
		if (!rc)
			rc = k8s_header_add(&l, (const char *)h.data);
	}
	for (size_t i = 0; !rc && i < c->impersonate_groups.n; i++) {
		buf_reset(&h);
		rc = buf_printf(&h, "Impersonate-Group: %s", c->impersonate_groups.v[i]);
		if (!rc)
			rc = k8s_header_add(&l, (const char *)h.data);
	}
	buf_free(&h);
	if (rc) {
		k8s_headers_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

static void k8s_setopts(struct k8s_client *c, const char *url, struct curl_slist *headers,
                        struct curl_slist *connect_to, struct k8s_reply *r, char *cerr)
{
	CURL *h = c->h;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout_s);
	/* No total timeout: a big list page may take long; a transfer that
	 * moves nothing for timeout_s seconds is stalled. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip: lists compress well */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, k8s_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, k8s_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, k8s_progress_cb);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	/* Blobs are not copied: the client's memory (sodium's for the key)
	 * outlives the transfer. */
	if (c->ca_data.len) {
		struct curl_blob b = {c->ca_data.data, c->ca_data.len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (c->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	}
	if (c->cert_data.len) {
		struct curl_blob b = {c->cert_data.data, c->cert_data.len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (c->cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	}
	if (c->key_data.len) {
		struct curl_blob b = {c->key_data.data, c->key_data.len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (c->key_file) {
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
	}
	if (connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
	if (c->proxy_url)
		curl_easy_setopt(h, CURLOPT_PROXY, c->proxy_url);
}

static const char *k8s_ca_name(const struct k8s_client *c)
{
	if (c->ca_data.len)
		return "inline certificate-authority-data";
	if (c->ca_file)
		return c->ca_file;
	return "the system's CA certificates";
}

/* A transport failure as one message. Returns 0 if it is worth another
 * try (a keep-alive connection the server had closed). */
static int k8s_curl_error(struct k8s_client *c, const char *path, CURLcode cc, const char *cerr,
                          const struct k8s_reply *r, int last)
{
	const char *detail = cerr[0] ? cerr : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_ABORTED_BY_CALLBACK:
		return error_set(CF_ERR_INTERRUPTED, "k8s: GET %s: interrupted by a signal", path);
	case CURLE_WRITE_ERROR:
		if (r->body_rc == CF_ERR_LIMIT)
			return error_set(CF_ERR_LIMIT,
			                 "k8s: GET %s%s: the reply is larger than %zu MiB",
			                 c->server, path, K8S_MAX_BODY >> 20);
		if (r->body_rc)
			return error_set(CF_ERR_NOMEM, "k8s: GET %s%s: out of memory for the reply",
			                 c->server, path);
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
		if (!last)
			return 0;
		break;
	default:
		break;
	}
	return error_set(CF_ERR_NETWORK,
	                 "k8s: cannot reach the API server %s: %s (GET %s, curl %d)", c->server,
	                 detail, path, (int)cc);
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
                            const struct k8s_reply *r)
{
	json_t *j = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));
	char msg[512];
	size_t n = 0;
	int code;

	if (!m && !j && r->body.len) {
		for (size_t i = 0; i < r->body.len && n < 200; i++) {
			char ch = (char)r->body.data[i];

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

/* Sleeps before another try; a cancellation ends the wait at once. */
static int k8s_sleep(long seconds)
{
	if (cancel_sleep_ms((int64_t)seconds * 1000) != 0)
		return error_set(CF_ERR_INTERRUPTED, "k8s: interrupted by a signal");
	return 0;
}

int k8s_get_json(struct k8s_client *c, const char *path, json_t **out, long *status)
{
	struct curl_slist *headers = NULL, *connect_to = NULL;
	struct k8s_reply r;
	char cerr[CURL_ERROR_SIZE];
	json_error_t jerr;
	struct buf url;
	long code = 0;
	int rc, renewed = 0;

	*out = NULL;
	if (status)
		*status = 0;
	buf_init(&url, K8S_MAX_URL);
	buf_init(&r.body, K8S_MAX_BODY);
	rc = buf_printf(&url, "%s%s", c->url_base, path);
	if (rc)
		return error_set(rc, "k8s: the URL of GET %s is too long", path);
	if (c->connect_to && !(connect_to = curl_slist_append(NULL, c->connect_to)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && c->exec && c->expiry_ms && time_now_ms() >= c->expiry_ms - K8S_EXPIRY_MARGIN_MS)
		rc = k8s_client_renew(c);
	for (int attempt = 1; !rc; attempt++) {
		CURLcode cc;
		long wait;

		buf_reset(&r.body);
		r.body_rc = 0;
		r.retry_after = 0;
		code = 0;
		if (!headers)
			rc = k8s_headers(c, &headers);
		if (rc)
			break;
		k8s_setopts(c, (const char *)url.data, headers, connect_to, &r, cerr);
		cerr[0] = '\0';
		cc = curl_easy_perform(c->h);
		if (cc != CURLE_OK) {
			rc = k8s_curl_error(c, path, cc, cerr, &r, attempt >= K8S_ATTEMPTS);
			if (!rc)
				log_info("k8s: GET %s: %s; trying again", path,
				         curl_easy_strerror(cc));
			continue;
		}
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
		log_debug("k8s: GET %s: HTTP %ld, %zu bytes", path, code, r.body.len);
		if (code >= 200 && code < 300)
			break;
		if (code == 401 && !renewed && k8s_client_renewable(c)) {
			/* A rotated token file or an expired plugin credential. */
			log_info("k8s: GET %s: HTTP 401; renewing the credentials", path);
			renewed = 1;
			k8s_headers_free(headers);
			headers = NULL;
			rc = k8s_client_renew(c);
			continue;
		}
		if ((code == 429 || code == 502 || code == 503 || code == 504) &&
		    attempt < K8S_ATTEMPTS) {
			wait = r.retry_after > 0 ? r.retry_after : attempt;
			if (wait > K8S_RETRY_MAX_S)
				wait = K8S_RETRY_MAX_S;
			log_info("k8s: GET %s: HTTP %ld; trying again in %ld s", path, code, wait);
			rc = k8s_sleep(wait);
			continue;
		}
		rc = k8s_status_error(c, path, code, &r);
	}
	if (status)
		*status = code;
	if (!rc) {
		*out = json_loadb((const char *)r.body.data, r.body.len, 0, &jerr);
		if (!*out)
			rc = error_set(CF_ERR_FORMAT,
			               "k8s: GET %s%s: the reply is not JSON: %s (line %d)",
			               c->server, path, jerr.text, jerr.line);
	}
	k8s_headers_free(headers);
	curl_slist_free_all(connect_to);
	buf_free(&r.body);
	buf_free(&url);
	return rc;
}
