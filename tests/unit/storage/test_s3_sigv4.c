/*
 * Tests of s3_sigv4: every case of the AWS SigV4 test suite (aws-c-auth's
 * v4 folder under COFFER_TESTDATA/sigv4), in both its Authorization-header
 * form and its presigned-query form, plus the S3 examples of the AWS S3 API
 * reference ("Signature Calculations for the Authorization Header"), URI
 * encoding and the canonicalization rules one by one.
 *
 * The suite's request.txt holds the path as raw text; a client sends it
 * URI-encoded, so the test encodes it with s3_uri_encode() and the signer
 * signs it as given. The signer adds no headers itself, so the test adds
 * X-Amz-Date, X-Amz-Security-Token (unless the case omits it) and, for
 * sign_body cases, X-Amz-Content-Sha256, as aws-c-auth does.
 */
#include "crypto/crypto.h"
#include "storage/s3/s3.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_DIR COFFER_TESTDATA "/sigv4"
#define MAX_HEADERS 32

/* ------------------------------------------------------------------------ */
/* Suite helpers                                                              */
/* ------------------------------------------------------------------------ */

struct parsed_request {
	struct buf text; /* request.txt, modified in place */
	char *method;
	char *raw_path;
	char *query; /* NULL if none */
	struct s3_header headers[MAX_HEADERS];
	size_t nheaders;
	const char *body;
	size_t body_len;
	struct buf path; /* raw_path URI-encoded as a client sends it */
};

struct context {
	char access_key[128];
	char secret[128];
	char token[2048];
	char region[64];
	char service[64];
	time_t now;
	int normalize, sign_body, omit_token;
	long expires;
};

static void path_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static int read_text(const char *dir, const char *name, struct buf *out)
{
	char path[1024];

	path_join(path, sizeof(path), dir, name);
	return fs_read_file(path, 1024 * 1024, out);
}

/* Drops trailing line breaks (the expected files may or may not end with one). */
static void chomp(struct buf *b)
{
	while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
		b->data[--b->len] = '\0';
}

/* Splits request.txt: request line, headers (a line starting with a blank
 * continues the value before it, kept with its line break), blank line,
 * body. */
static int parse_request(const char *dir, struct parsed_request *r)
{
	char *p, *line_end, *sp;

	memset(r, 0, sizeof(*r));
	buf_init(&r->path, 4096);
	if (read_text(dir, "request.txt", &r->text))
		return -1;
	p = (char *)r->text.data;
	line_end = strchr(p, '\n');
	if (!line_end)
		return -1;
	*line_end = '\0';
	r->method = p;
	sp = strchr(p, ' ');
	if (!sp)
		return -1;
	*sp = '\0';
	r->raw_path = sp + 1;
	sp = strrchr(r->raw_path, ' '); /* " HTTP/1.1"; the path may hold spaces */
	if (!sp)
		return -1;
	*sp = '\0';
	r->query = strchr(r->raw_path, '?');
	if (r->query)
		*r->query++ = '\0';
	p = line_end + 1;
	for (;;) {
		char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p), *colon;

		if (end > p && end[-1] == '\r')
			end--;
		if (end == p) {
			/* The blank line: the body follows. */
			r->body = nl ? nl + 1 : end;
			break;
		}
		*end = '\0';
		if ((*p == ' ' || *p == '\t') && r->nheaders > 0) {
			/* Continuation: restore the line break so the value spans lines. */
			p[-1] = '\n';
		} else {
			colon = strchr(p, ':');
			if (!colon || r->nheaders == MAX_HEADERS)
				return -1;
			*colon = '\0';
			r->headers[r->nheaders].name = p;
			r->headers[r->nheaders].value = colon + 1;
			r->nheaders++;
		}
		if (!nl) {
			r->body = "";
			break;
		}
		p = nl + 1;
	}
	r->body_len = strlen(r->body);
	return s3_uri_encode(r->raw_path, 1, &r->path) ? -1 : 0;
}

static void free_request(struct parsed_request *r)
{
	buf_free(&r->text);
	buf_free(&r->path);
}

static int ctx_string(json_t *obj, const char *key, char *out, size_t size)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (!s || strlen(s) >= size)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int parse_context(const char *dir, struct context *c)
{
	char path[1024], ts[64];
	json_t *root, *creds;
	json_error_t err;
	int64_t ms;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	path_join(path, sizeof(path), dir, "context.json");
	root = json_load_file(path, 0, &err);
	if (!root)
		return -1;
	creds = json_object_get(root, "credentials");
	rc |= ctx_string(creds, "access_key_id", c->access_key, sizeof(c->access_key));
	rc |= ctx_string(creds, "secret_access_key", c->secret, sizeof(c->secret));
	if (json_object_get(creds, "token"))
		rc |= ctx_string(creds, "token", c->token, sizeof(c->token));
	rc |= ctx_string(root, "region", c->region, sizeof(c->region));
	rc |= ctx_string(root, "service", c->service, sizeof(c->service));
	rc |= ctx_string(root, "timestamp", ts, sizeof(ts));
	if (!rc)
		rc = time_parse_iso(ts, &ms);
	c->now = (time_t)(ms / 1000);
	c->normalize = json_is_true(json_object_get(root, "normalize"));
	c->sign_body = json_is_true(json_object_get(root, "sign_body"));
	c->omit_token = json_is_true(json_object_get(root, "omit_session_token"));
	c->expires = (long)json_integer_value(json_object_get(root, "expiration_in_seconds"));
	json_decref(root);
	return rc ? -1 : 0;
}

/* Compares got with the expected file; prints both when they differ. */
static int same_as_file(const char *dir, const char *file, const char *got)
{
	struct buf want;
	int ok;

	if (read_text(dir, file, &want))
		return 0;
	chomp(&want);
	ok = strcmp((const char *)want.data, got) == 0;
	if (!ok)
		fprintf(stderr, "%s/%s differs:\n--- want\n%s\n--- got\n%s\n", dir, file,
		        (const char *)want.data, got);
	buf_free(&want);
	return ok;
}

/* The Authorization value of header-signed-request.txt. */
static int expected_authorization(const char *dir, char *out, size_t size)
{
	struct buf signed_req;
	const char *line, *end;
	int rc = -1;

	if (read_text(dir, "header-signed-request.txt", &signed_req))
		return -1;
	line = strstr((const char *)signed_req.data, "\nAuthorization:");
	if (line) {
		line += strlen("\nAuthorization:");
		end = strchr(line, '\n');
		if (end && (size_t)(end - line) < size) {
			memcpy(out, line, (size_t)(end - line));
			out[end - line] = '\0';
			rc = 0;
		}
	}
	buf_free(&signed_req);
	return rc;
}

static void set_credentials(const struct context *c, struct s3_credentials *cred)
{
	memset(cred, 0, sizeof(*cred));
	snprintf(cred->access_key, sizeof(cred->access_key), "%s", c->access_key);
	cred->secret_key = (char *)(uintptr_t)c->secret;
	cred->token = c->token[0] ? (char *)(uintptr_t)c->token : NULL;
}

/* The header form: Authorization, canonical request and string to sign. */
static int run_header_case(const char *dir, const struct parsed_request *r, const struct context *c,
                           const char *payload_hash)
{
	struct s3_header headers[MAX_HEADERS + 3];
	struct s3_sigv4_request req;
	struct s3_sigv4_result res;
	struct s3_credentials cred;
	char amz_date[S3_AMZ_DATE_LEN + 1], authz[4096];
	size_t n = r->nheaders;
	int ok;

	memcpy(headers, r->headers, n * sizeof(headers[0]));
	s3_sigv4_format_date(c->now, amz_date);
	headers[n++] = (struct s3_header){"X-Amz-Date", amz_date};
	if (c->token[0] && !c->omit_token)
		headers[n++] = (struct s3_header){"X-Amz-Security-Token", c->token};
	if (c->sign_body)
		headers[n++] = (struct s3_header){"X-Amz-Content-Sha256", payload_hash};
	req = (struct s3_sigv4_request){
	    .method = r->method,
	    .path = (const char *)r->path.data,
	    .query = r->query,
	    .headers = headers,
	    .nheaders = n,
	    .payload_hash = payload_hash,
	    .region = c->region,
	    .service = c->service,
	    .now = c->now,
	    .normalize_path = c->normalize,
	};
	set_credentials(c, &cred);
	if (s3_sigv4_sign(&req, &cred, &res) != 0)
		return 0;
	ok = same_as_file(dir, "header-canonical-request.txt",
	                  (const char *)res.canonical_request.data);
	ok =
	    same_as_file(dir, "header-string-to-sign.txt", (const char *)res.string_to_sign.data) &&
	    ok;
	ok = same_as_file(dir, "header-signature.txt", res.signature) && ok;
	if (expected_authorization(dir, authz, sizeof(authz)) != 0 ||
	    strcmp(authz, (const char *)res.authorization.data) != 0) {
		fprintf(stderr, "%s: Authorization differs: %s\n", dir,
		        (const char *)res.authorization.data);
		ok = 0;
	}
	s3_sigv4_result_free(&res);
	return ok;
}

static int header_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The presigned form: the X-Amz-* parameters go into the query string and
 * only the request's own headers are signed. s3_sigv4_sign() has no mode
 * for it, but signing that query with those headers yields the suite's
 * canonical request, string to sign and signature, which checks the query
 * canonicalization on many more inputs.
 */
static int run_query_case(const char *dir, const struct parsed_request *r, const struct context *c,
                          const char *payload_hash)
{
	struct s3_sigv4_request req;
	struct s3_sigv4_result res;
	struct s3_credentials cred;
	struct buf query, scope, signed_list;
	char amz_date[S3_AMZ_DATE_LEN + 1], *names[MAX_HEADERS];
	size_t nnames = 0;
	int ok = 0, rc = 0;

	buf_init(&query, 65536);
	buf_init(&scope, 4096);
	buf_init(&signed_list, 4096);
	s3_sigv4_format_date(c->now, amz_date);
	for (size_t i = 0; i < r->nheaders; i++) {
		names[nnames] = strdup(r->headers[i].name);
		for (char *p = names[nnames]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		nnames++;
	}
	qsort(names, nnames, sizeof(names[0]), header_name_cmp);
	for (size_t i = 0; i < nnames && !rc; i++)
		if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
			rc = buf_printf(&signed_list, "%s%s", signed_list.len ? ";" : "", names[i]);
	if (!rc)
		rc = buf_printf(&scope, "%s/%.8s/%s/%s/aws4_request", c->access_key, amz_date,
		                c->region, c->service);
	if (!rc && r->query && r->query[0])
		rc = buf_printf(&query, "%s&", r->query);
	if (!rc)
		rc = buf_printf(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
	if (!rc)
		rc = s3_uri_encode((const char *)scope.data, 0, &query);
	if (!rc)
		rc = buf_printf(&query, "&X-Amz-Date=%s&X-Amz-SignedHeaders=", amz_date);
	if (!rc)
		rc = s3_uri_encode((const char *)signed_list.data, 0, &query);
	if (!rc)
		rc = buf_printf(&query, "&X-Amz-Expires=%ld", c->expires);
	if (!rc && c->token[0] && !c->omit_token) {
		rc = buf_printf(&query, "&X-Amz-Security-Token=");
		if (!rc)
			rc = s3_uri_encode(c->token, 0, &query);
	}
	req = (struct s3_sigv4_request){
	    .method = r->method,
	    .path = (const char *)r->path.data,
	    .query = (const char *)query.data,
	    .headers = r->headers,
	    .nheaders = r->nheaders,
	    .payload_hash = payload_hash,
	    .region = c->region,
	    .service = c->service,
	    .now = c->now,
	    .normalize_path = c->normalize,
	};
	set_credentials(c, &cred);
	if (!rc && s3_sigv4_sign(&req, &cred, &res) == 0) {
		ok = same_as_file(dir, "query-canonical-request.txt",
		                  (const char *)res.canonical_request.data);
		ok = same_as_file(dir, "query-string-to-sign.txt",
		                  (const char *)res.string_to_sign.data) &&
		     ok;
		ok = same_as_file(dir, "query-signature.txt", res.signature) && ok;
		s3_sigv4_result_free(&res);
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	buf_free(&query);
	buf_free(&scope);
	buf_free(&signed_list);
	return ok;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_aws_suite(void **state)
{
	char *cases[256];
	size_t ncases = 0, passed = 0, failed = 0, skipped = 0;
	struct dirent *de;
	DIR *d;

	(void)state;
	d = opendir(SUITE_DIR);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && ncases < 256) {
		char path[1024];
		FILE *f;

		char sub[512];

		path_join(sub, sizeof(sub), SUITE_DIR, de->d_name);
		path_join(path, sizeof(path), sub, "request.txt");
		f = fopen(path, "r");
		if (!f)
			continue;
		fclose(f);
		cases[ncases++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(cases, ncases, sizeof(cases[0]), name_cmp);
	assert_true(ncases >= 30);

	for (size_t i = 0; i < ncases; i++) {
		char dir[1024], payload_hash[HASH_SHA256_HEX_LEN + 1];
		struct parsed_request r;
		struct context c;

		path_join(dir, sizeof(dir), SUITE_DIR, cases[i]);
		if (parse_request(dir, &r) != 0 || parse_context(dir, &c) != 0) {
			fprintf(stderr, "sigv4 suite: %s: cannot read the case\n", cases[i]);
			failed += 2;
			free_request(&r);
			continue;
		}
		hash_sha256_hex(r.body, r.body_len, payload_hash);
		if (run_header_case(dir, &r, &c, payload_hash))
			passed++;
		else
			failed++, fprintf(stderr, "sigv4 suite: %s (header) FAILED\n", cases[i]);
		if (run_query_case(dir, &r, &c, payload_hash))
			passed++;
		else
			failed++, fprintf(stderr, "sigv4 suite: %s (query) FAILED\n", cases[i]);
		free_request(&r);
	}
	for (size_t i = 0; i < ncases; i++)
		free(cases[i]);
	printf("sigv4 suite: %zu passed, %zu failed, %zu skipped (%zu cases, each in header "
	       "and presigned-query form)\n",
	       passed, failed, skipped, ncases);
	assert_int_equal(failed, 0);
	assert_int_equal(passed, 2 * ncases);
}

/* ------------------------------------------------------------------------ */
/* S3 examples                                                                */
/* ------------------------------------------------------------------------ */

/* The example credentials of the S3 API reference. */
static char example_secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
#define EXAMPLE_TIME ((time_t)1369353600) /* 2013-05-24T00:00:00Z */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void example_credentials(struct s3_credentials *cred)
{
	memset(cred, 0, sizeof(*cred));
	snprintf(cred->access_key, sizeof(cred->access_key), "AKIAIOSFODNN7EXAMPLE");
	cred->secret_key = example_secret;
}

/* "Example: GET Object": the first 10 bytes of test.txt in examplebucket. */
static void test_s3_example_get_object(void **state)
{
	const struct s3_header headers[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	    {"x-amz-content-sha256", EMPTY_SHA256},
	    {"x-amz-date", "20130524T000000Z"},
	};
	struct s3_sigv4_request req = {
	    .method = "GET",
	    .path = "/test.txt",
	    .headers = headers,
	    .nheaders = 4,
	    .payload_hash = EMPTY_SHA256,
	    .region = "us-east-1",
	    .service = "s3",
	    .now = EXAMPLE_TIME,
	    .normalize_path = 0,
	};
	struct s3_credentials cred;
	struct s3_sigv4_result res;

	(void)state;
	example_credentials(&cred);
	assert_int_equal(s3_sigv4_sign(&req, &cred, &res), 0);
	assert_string_equal(res.amz_date, "20130524T000000Z");
	assert_string_equal((const char *)res.canonical_request.data,
	                    "GET\n/test.txt\n\n"
	                    "host:examplebucket.s3.amazonaws.com\n"
	                    "range:bytes=0-9\n"
	                    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	                    "x-amz-date:20130524T000000Z\n\n"
	                    "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(
	    (const char *)res.string_to_sign.data,
	    "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
	    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	assert_string_equal(res.signature,
	                    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(
	    (const char *)res.authorization.data,
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
	    "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	s3_sigv4_result_free(&res);
}

/* The same request with an unsigned payload; the expected values were
 * computed independently with Python's hashlib and hmac. */
static void test_s3_unsigned_payload(void **state)
{
	const struct s3_header headers[] = {
	    {"x-amz-date", "20130524T000000Z"},
	    {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
	    {"Range", "bytes=0-9"},
	    {"Host", "examplebucket.s3.amazonaws.com"},
	};
	struct s3_sigv4_request req = {
	    .method = "GET",
	    .path = "/test.txt",
	    .headers = headers,
	    .nheaders = 4,
	    .payload_hash = "UNSIGNED-PAYLOAD",
	    .region = "us-east-1",
	    .service = "s3",
	    .now = EXAMPLE_TIME,
	};
	struct s3_credentials cred;
	struct s3_sigv4_result res;

	(void)state;
	example_credentials(&cred);
	assert_int_equal(s3_sigv4_sign(&req, &cred, &res), 0);
	assert_string_equal(
	    (const char *)res.string_to_sign.data,
	    "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
	    "7679ebbd704215b89a2a77e90992170ca23e91c596326ba10895511766994099");
	assert_string_equal(res.signature,
	                    "edacce68e5445863e1f916719fac26d3be9c1581fccd7878ade0879597fc0dc1");
	s3_sigv4_result_free(&res);
}

/* "Example: PUT Object": a signed payload and a key needing encoding. */
static void test_s3_example_put_object(void **state)
{
	const char body[] = "Welcome to Amazon S3.";
	char payload_hash[HASH_SHA256_HEX_LEN + 1];
	struct s3_header headers[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-date", "20130524T000000Z"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	    {"x-amz-content-sha256", NULL},
	};
	struct s3_sigv4_request req = {
	    .method = "PUT",
	    .headers = headers,
	    .nheaders = 5,
	    .region = "us-east-1",
	    .service = "s3",
	    .now = EXAMPLE_TIME,
	};
	struct s3_credentials cred;
	struct s3_sigv4_result res;
	struct buf path;

	(void)state;
	hash_sha256_hex(body, strlen(body), payload_hash);
	assert_string_equal(payload_hash,
	                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	headers[4].value = payload_hash;
	req.payload_hash = payload_hash;
	buf_init(&path, 1024);
	assert_int_equal(s3_uri_encode("/test$file.text", 1, &path), 0);
	assert_string_equal((const char *)path.data, "/test%24file.text");
	req.path = (const char *)path.data;
	example_credentials(&cred);
	assert_int_equal(s3_sigv4_sign(&req, &cred, &res), 0);
	assert_string_equal(
	    (const char *)res.string_to_sign.data,
	    "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
	    "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
	assert_string_equal(res.signature,
	                    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	assert_null(strstr((const char *)res.authorization.data, example_secret));
	assert_null(strstr((const char *)res.canonical_request.data, example_secret));
	s3_sigv4_result_free(&res);
	buf_free(&path);
}

/* ------------------------------------------------------------------------ */
/* Rules one by one                                                           */
/* ------------------------------------------------------------------------ */

static void check_encode(const char *in, int keep_slash, const char *want)
{
	struct buf out;

	buf_init(&out, 4096);
	assert_int_equal(s3_uri_encode(in, keep_slash, &out), 0);
	if (out.len == 0)
		assert_string_equal("", want);
	else
		assert_string_equal((const char *)out.data, want);
	buf_free(&out);
}

static void test_uri_encode(void **state)
{
	struct buf out;

	(void)state;
	check_encode("AZaz09-._~", 0, "AZaz09-._~");
	check_encode("a b+c=d&e", 0, "a%20b%2Bc%3Dd%26e");
	check_encode("dir/sub/key", 0, "dir%2Fsub%2Fkey");
	check_encode("dir/sub/key", 1, "dir/sub/key");
	check_encode("\xe1\x88\xb4*%", 1, "%E1%88%B4%2A%25");
	check_encode("", 1, "");
	buf_init(&out, 5);
	assert_int_equal(s3_uri_encode("a b c", 0, &out), CF_ERR_LIMIT);
	buf_free(&out);
}

/* Signs a minimal request and returns its canonical request (caller frees). */
static char *canonical(const char *path, const char *query, int normalize,
                       const struct s3_header *headers, size_t nheaders)
{
	struct s3_sigv4_request req = {
	    .method = "GET",
	    .path = path,
	    .query = query,
	    .headers = headers,
	    .nheaders = nheaders,
	    .payload_hash = "UNSIGNED-PAYLOAD",
	    .region = "us-east-1",
	    .service = "s3",
	    .now = EXAMPLE_TIME,
	    .normalize_path = normalize,
	};
	struct s3_credentials cred;
	struct s3_sigv4_result res;
	char *out;

	example_credentials(&cred);
	assert_int_equal(s3_sigv4_sign(&req, &cred, &res), 0);
	out = strdup((const char *)res.canonical_request.data);
	s3_sigv4_result_free(&res);
	return out;
}

static void test_canonical_query(void **state)
{
	const struct s3_header host[] = {{"host", "h"}};
	char *c;

	(void)state;
	c = canonical("/", "list-type=2&prefix=a%2fb c&continuation-token=x+y%3D&a=2&a=1&uploads",
	              0, host, 1);
	assert_string_equal(c, "GET\n/\na=1&a=2&continuation-token=x%2By%3D&list-type=2&"
	                       "prefix=a%2Fb%20c&uploads=\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
	/* Empty segments are dropped; a bad escape is encoded as text. */
	c = canonical("/", "&b=%zz&&a=", 0, host, 1);
	assert_string_equal(c, "GET\n/\na=&b=%25zz\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
	c = canonical("/", NULL, 0, host, 1);
	assert_string_equal(c, "GET\n/\n\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
}

static void test_canonical_path(void **state)
{
	const struct s3_header host[] = {{"host", "h"}};
	char *c;

	(void)state;
	/* S3 signs the path exactly as sent. */
	c = canonical("/bucket//a/./b/../key%20x", NULL, 0, host, 1);
	assert_string_equal(c,
	                    "GET\n/bucket//a/./b/../key%20x\n\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
	c = canonical("/a//b/./c/../d/", NULL, 1, host, 1);
	assert_string_equal(c, "GET\n/a/b/d/\n\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
	c = canonical("/../..", NULL, 1, host, 1);
	assert_string_equal(c, "GET\n/\n\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
	c = canonical("", NULL, 0, host, 1);
	assert_string_equal(c, "GET\n/\n\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
	free(c);
}

static void test_canonical_headers(void **state)
{
	const struct s3_header headers[] = {
	    {"X-Multi", "  one\n   two\t\tthree  "},
	    {"host", "h"},
	    {"X-Dup", "b"},
	    {"x-empty", "   "},
	    {"x-dup", " a  z "},
	};
	char *c;

	(void)state;
	c = canonical("/", NULL, 0, headers, 5);
	assert_string_equal(c, "GET\n/\n\nhost:h\nx-dup:b,a z\nx-empty:\nx-multi:one two three\n\n"
	                       "host;x-dup;x-empty;x-multi\nUNSIGNED-PAYLOAD");
	free(c);
}

static void test_incomplete_credentials(void **state)
{
	const struct s3_header host[] = {{"host", "h"}};
	struct s3_sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .headers = host,
	    .nheaders = 1,
	    .payload_hash = "UNSIGNED-PAYLOAD",
	    .region = "us-east-1",
	    .service = "s3",
	};
	struct s3_credentials cred;
	struct s3_sigv4_result res;

	(void)state;
	memset(&cred, 0, sizeof(cred));
	assert_int_equal(s3_sigv4_sign(&req, &cred, &res), CF_ERR_INTERNAL);
	s3_sigv4_result_free(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aws_suite),
	    cmocka_unit_test(test_s3_example_get_object),
	    cmocka_unit_test(test_s3_unsigned_payload),
	    cmocka_unit_test(test_s3_example_put_object),
	    cmocka_unit_test(test_uri_encode),
	    cmocka_unit_test(test_canonical_query),
	    cmocka_unit_test(test_canonical_path),
	    cmocka_unit_test(test_canonical_headers),
	    cmocka_unit_test(test_incomplete_credentials),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
