/*
 * s3_sigv4: AWS Signature Version 4 for the Authorization header, as a pure
 * function of the request, the credentials and the signing time.
 *
 * It builds the canonical request, the string to sign, the signing key (the
 * HMAC-SHA-256 chain over date, region, service and "aws4_request") and the
 * Authorization header value, on crypto/'s SHA-256 (libcrypto) and
 * libsodium's HMAC-SHA-256. It does not send anything, add headers to the request, sign chunked
 * payloads or build presigned URLs.
 *
 * The path is signed as given (already URI-encoded as sent): S3 does not
 * encode it a second time, and the only other service coffer signs (STS)
 * uses "/". The signing key and everything derived from the secret live in
 * sodium_malloc memory and are wiped before return.
 */
#include "storage/s3/s3.h"
#include "crypto/crypto.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound of the canonical request and the Authorization header; real
 * S3 requests stay far below (a session token is about 1 KiB). */
#define SIGV4_MAX (1024 * 1024)

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int uri_encode_n(const char *in, size_t len, int keep_slash, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (size_t i = 0; i < len && !rc; i++) {
		unsigned char c = (unsigned char)in[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			rc = buf_append(out, &in[i], 1);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

			rc = buf_append(out, esc, sizeof(esc));
		}
	}
	return rc;
}

int s3_uri_encode(const char *in, int keep_slash, struct buf *out)
{
	return uri_encode_n(in, strlen(in), keep_slash, out);
}

void s3_sigv4_format_date(time_t now, char out[S3_AMZ_DATE_LEN + 1])
{
	struct tm tm;

	if (!gmtime_r(&now, &tm) || strftime(out, S3_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == 0)
		memcpy(out, "19700101T000000Z", S3_AMZ_DATE_LEN + 1);
}

/* ------------------------------------------------------------------------ */
/* Canonical URI                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Removes "." segments and empty segments (duplicate slashes) and resolves
 * ".." against the segment before it, as the AWS suite expects of non-S3
 * services. A trailing slash is kept. The result always starts with '/'.
 */
static int normalize_path(const char *path, struct buf *out)
{
	size_t len = strlen(path), nseg = 0, *starts = NULL;
	int rc = 0, trailing = len > 0 && path[len - 1] == '/';
	const char *p = path;

	/* Each kept segment is recorded by its start offset in out, so ".."
	 * can truncate out back to the segment before. */
	starts = calloc(len / 2 + 2, sizeof(*starts));
	if (!starts)
		return error_set(CF_ERR_NOMEM, "out of memory normalizing a request path");
	while (*p && !rc) {
		const char *end;
		size_t slen;

		while (*p == '/')
			p++;
		end = strchr(p, '/');
		slen = end ? (size_t)(end - p) : strlen(p);
		if (slen == 0)
			break;
		if (slen == 1 && p[0] == '.') {
			/* nothing */
		} else if (slen == 2 && p[0] == '.' && p[1] == '.') {
			if (nseg > 0) {
				nseg--;
				out->len = starts[nseg];
				out->data[out->len] = '\0';
			}
		} else {
			starts[nseg++] = out->len;
			rc = buf_append(out, "/", 1);
			if (!rc)
				rc = buf_append(out, p, slen);
		}
		p += slen;
	}
	if (!rc && (nseg == 0 || trailing))
		rc = buf_append(out, "/", 1);
	free(starts);
	return rc;
}

static int append_canonical_uri(const struct s3_sigv4_request *req, struct buf *out)
{
	const char *path = req->path && req->path[0] ? req->path : "/";

	if (req->normalize_path)
		return normalize_path(path, out);
	return buf_append(out, path, strlen(path));
}

/* ------------------------------------------------------------------------ */
/* Canonical query string                                                     */
/* ------------------------------------------------------------------------ */

struct query_param {
	char *name; /* URI-encoded per SigV4 */
	char *value;
};

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX escapes of in[0..len) (a malformed escape is kept as it is)
 * and encodes the result per SigV4 into a new string. */
static int recode_component(const char *in, size_t len, char **out)
{
	struct buf raw, enc;
	int rc = 0;

	buf_init(&raw, SIGV4_MAX);
	buf_init(&enc, SIGV4_MAX);
	*out = NULL;
	for (size_t i = 0; i < len && !rc; i++) {
		int hi, lo;

		if (in[i] == '%' && i + 2 < len && (hi = hex_value(in[i + 1])) >= 0 &&
		    (lo = hex_value(in[i + 2])) >= 0) {
			char c = (char)(hi << 4 | lo);

			rc = buf_append(&raw, &c, 1);
			i += 2;
		} else {
			rc = buf_append(&raw, &in[i], 1);
		}
	}
	if (!rc)
		rc = uri_encode_n((const char *)raw.data, raw.len, 0, &enc);
	if (!rc)
		rc = buf_append(&enc, "", 0); /* data is never NULL after this */
	if (!rc) {
		*out = (char *)enc.data;
		enc.data = NULL;
	}
	buf_free(&raw);
	buf_free(&enc);
	return rc;
}

static int query_param_cmp(const void *a, const void *b)
{
	const struct query_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static int append_canonical_query(const char *query, struct buf *out)
{
	struct query_param *params = NULL;
	size_t n = 0, cap = 1;
	const char *p;
	int rc = 0;

	if (!query || !query[0])
		return 0;
	for (p = query; *p; p++)
		cap += *p == '&';
	params = calloc(cap, sizeof(*params));
	if (!params)
		return error_set(CF_ERR_NOMEM, "out of memory signing a query string");
	p = query;
	while (*p && !rc) {
		const char *end = strchr(p, '&'), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', len);
		if (len > 0) {
			size_t nlen = eq ? (size_t)(eq - p) : len;

			rc = recode_component(p, nlen, &params[n].name);
			if (!rc)
				rc = recode_component(eq ? eq + 1 : p + len,
				                      eq ? len - nlen - 1 : 0, &params[n].value);
			n++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (!rc)
		qsort(params, n, sizeof(*params), query_param_cmp);
	for (size_t i = 0; i < n && !rc; i++)
		rc = buf_printf(out, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Canonical headers                                                          */
/* ------------------------------------------------------------------------ */

struct canon_header {
	char *name; /* lower case */
	const char *value;
	size_t order; /* position in the request, to keep duplicates in order */
};

static int canon_header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends value with leading and trailing blanks trimmed and each inner run
 * of blanks (including the line breaks of a folded multi-line value) folded
 * to one space. */
static int append_header_value(const char *value, struct buf *out)
{
	const char *p = value, *end = value + strlen(value);
	int rc = 0;

	while (p < end && is_blank(*p))
		p++;
	while (end > p && is_blank(end[-1]))
		end--;
	while (p < end && !rc) {
		const char *run = p;

		while (p < end && !is_blank(*p))
			p++;
		rc = buf_append(out, run, (size_t)(p - run));
		if (p < end && !rc) {
			while (p < end && is_blank(*p))
				p++;
			rc = buf_append(out, " ", 1);
		}
	}
	return rc;
}

/* Appends the canonical headers block (each "name:value\n") to creq and the
 * signed header list ("a;b;c") to signed_list. */
static int append_canonical_headers(const struct s3_sigv4_request *req, struct buf *creq,
                                    struct buf *signed_list)
{
	struct canon_header *h = NULL;
	int rc = 0;

	if (req->nheaders == 0)
		return 0;
	h = calloc(req->nheaders, sizeof(*h));
	if (!h)
		return error_set(CF_ERR_NOMEM, "out of memory signing request headers");
	for (size_t i = 0; i < req->nheaders && !rc; i++) {
		const char *name = req->headers[i].name;
		size_t len = strlen(name);

		h[i].name = malloc(len + 1);
		if (!h[i].name) {
			rc = error_set(CF_ERR_NOMEM, "out of memory signing request headers");
			break;
		}
		for (size_t j = 0; j <= len; j++) {
			char c = name[j];

			h[i].name[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		h[i].value = req->headers[i].value ? req->headers[i].value : "";
		h[i].order = i;
	}
	if (!rc)
		qsort(h, req->nheaders, sizeof(*h), canon_header_cmp);
	for (size_t i = 0; i < req->nheaders && !rc; i++) {
		int same = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;

		/* A repeated name adds ",value" to the line of the first. */
		if (same) {
			rc = buf_append(creq, ",", 1);
		} else {
			if (i > 0)
				rc = buf_append(creq, "\n", 1);
			if (!rc)
				rc = buf_printf(creq, "%s:", h[i].name);
			if (!rc)
				rc = buf_printf(signed_list, "%s%s", i ? ";" : "", h[i].name);
		}
		if (!rc)
			rc = append_header_value(h[i].value, creq);
	}
	if (!rc)
		rc = buf_append(creq, "\n", 1);
	for (size_t i = 0; i < req->nheaders; i++)
		free(h[i].name);
	free(h);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Signing                                                                    */
/* ------------------------------------------------------------------------ */

static void hmac(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                 uint8_t out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, msg, msg_len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* signature = hex(HMAC(signing key, string to sign)), where the signing key
 * is HMAC("AWS4" + secret, date) chained through region, service and
 * "aws4_request". */
static int compute_signature(const char *secret, const char *date, const char *region,
                             const char *service, const struct buf *sts, char out[65])
{
	size_t slen = strlen(secret);
	uint8_t *mem = NULL, *k, *sig;
	char *seed;
	int rc = 0;

	if (sodium_init() < 0)
		return error_set(CF_ERR_INTERNAL, "SigV4: libsodium failed to initialise");
	/* One guarded block holds "AWS4"+secret, the key and the signature. */
	mem = sodium_malloc(4 + slen + 2 * crypto_auth_hmacsha256_BYTES);
	if (!mem)
		return error_set(CF_ERR_NOMEM, "out of memory deriving the SigV4 signing key");
	seed = (char *)mem;
	k = mem + 4 + slen;
	sig = k + crypto_auth_hmacsha256_BYTES;
	memcpy(seed, "AWS4", 4);
	memcpy(seed + 4, secret, slen);
	hmac((const uint8_t *)seed, 4 + slen, date, strlen(date), k);
	hmac(k, crypto_auth_hmacsha256_BYTES, region, strlen(region), k);
	hmac(k, crypto_auth_hmacsha256_BYTES, service, strlen(service), k);
	hmac(k, crypto_auth_hmacsha256_BYTES, "aws4_request", strlen("aws4_request"), k);
	hmac(k, crypto_auth_hmacsha256_BYTES, sts->data, sts->len, sig);
	sodium_bin2hex(out, 65, sig, crypto_auth_hmacsha256_BYTES);
	sodium_memzero(mem, 4 + slen + 2 * crypto_auth_hmacsha256_BYTES);
	sodium_free(mem);
	return rc;
}

void s3_sigv4_result_free(struct s3_sigv4_result *result)
{
	if (!result)
		return;
	buf_free(&result->canonical_request);
	buf_free(&result->string_to_sign);
	buf_free(&result->authorization);
}

int s3_sigv4_sign(const struct s3_sigv4_request *req, const struct s3_credentials *cred,
                  struct s3_sigv4_result *result)
{
	struct buf signed_list;
	char date[9], hash[HASH_SHA256_HEX_LEN + 1];
	int rc = 0;

	memset(result, 0, sizeof(*result));
	buf_init(&result->canonical_request, SIGV4_MAX);
	buf_init(&result->string_to_sign, SIGV4_MAX);
	buf_init(&result->authorization, SIGV4_MAX);
	buf_init(&signed_list, SIGV4_MAX);
	if (!req->method || !req->payload_hash || !req->region || !req->service || !cred ||
	    !cred->secret_key || !cred->access_key[0])
		return error_set(CF_ERR_INTERNAL, "SigV4: incomplete request or credentials");

	s3_sigv4_format_date(req->now, result->amz_date);
	memcpy(date, result->amz_date, 8);
	date[8] = '\0';

	rc = buf_printf(&result->canonical_request, "%s\n", req->method);
	if (!rc)
		rc = append_canonical_uri(req, &result->canonical_request);
	if (!rc)
		rc = buf_append(&result->canonical_request, "\n", 1);
	if (!rc)
		rc = append_canonical_query(req->query, &result->canonical_request);
	if (!rc)
		rc = buf_append(&result->canonical_request, "\n", 1);
	if (!rc)
		rc = append_canonical_headers(req, &result->canonical_request, &signed_list);
	if (!rc)
		rc = buf_printf(&result->canonical_request, "\n%s\n%s",
		                signed_list.len ? (const char *)signed_list.data : "",
		                req->payload_hash);

	if (!rc)
		rc = hash_sha256_hex(result->canonical_request.data, result->canonical_request.len,
		                     hash);
	if (!rc)
		rc = buf_printf(&result->string_to_sign,
		                SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", result->amz_date,
		                date, req->region, req->service, hash);
	if (!rc)
		rc = compute_signature(cred->secret_key, date, req->region, req->service,
		                       &result->string_to_sign, result->signature);
	if (!rc)
		rc = buf_printf(&result->authorization,
		                SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, "
		                                "SignedHeaders=%s, Signature=%s",
		                cred->access_key, date, req->region, req->service,
		                signed_list.len ? (const char *)signed_list.data : "",
		                result->signature);
	buf_free(&signed_list);
	if (rc) {
		s3_sigv4_result_free(result);
		memset(result->signature, 0, sizeof(result->signature));
	}
	return rc;
}
