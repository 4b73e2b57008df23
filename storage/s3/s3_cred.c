/*
 * s3_cred: the S3 credential chain, in the order the AWS CLI uses: the
 * repository's config keys, the environment, the shared credentials and
 * config files, web identity through STS AssumeRoleWithWebIdentity, and
 * EC2 instance metadata (IMDSv2). Temporary credentials are fetched again
 * when they come within 5 minutes of their expiry.
 *
 * It does not sign anything (s3_sigv4.c does), support SSO, credential
 * processes, assume-role chains with source profiles or IMDSv1.
 *
 * Secret keys, session tokens, web identity tokens and the HTTP replies
 * that carry them are held in sodium_malloc memory and wiped; error
 * messages name the source, the file or the endpoint, never a secret.
 * Two copies are outside our control: inih's line buffer while a shared
 * file is parsed and jansson's strings while an IMDS reply is decoded.
 */
#include "storage/s3/s3.h"
#include "http/http.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRED_REFRESH_MARGIN 300 /* seconds before expiry */
#define CRED_MAX_REPLY (256 * 1024)
#define CRED_MAX_TOKEN_FILE (64 * 1024)
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"

enum cred_source { SRC_NONE, SRC_CONFIG, SRC_ENV, SRC_PROFILE, SRC_WEB_IDENTITY, SRC_IMDS };

struct s3_cred {
	pthread_mutex_t lock;
	struct s3_credentials cur;
	enum cred_source source;
	char source_name[192];
	/* For refreshing web identity and IMDS credentials. */
	char *region, *sts_endpoint, *imds_endpoint, *ca_file;
	int verify_tls;
	char *role_arn, *token_file, *session_name;
	struct http_client *sts_http, *imds_http; /* made at first use */
};

/* ------------------------------------------------------------------------ */
/* Secrets (strings are crypto/secret.c's; bodies are secret_buf)           */
/* ------------------------------------------------------------------------ */

void s3_credentials_clear(struct s3_credentials *out)
{
	if (!out)
		return;
	secret_free(out->secret_key);
	secret_free(out->token);
	sodium_memzero(out->access_key, sizeof(out->access_key));
	out->secret_key = NULL;
	out->token = NULL;
	out->expires = 0;
}

/* Fills out from plain strings (token may be NULL or ""). what names the
 * source for messages. Errors: CF_ERR_AUTH (access key too long), CF_ERR_NOMEM. */
static int credentials_set(struct s3_credentials *out, const char *access_key,
                           const char *secret_key, const char *token, time_t expires,
                           const char *what)
{
	memset(out, 0, sizeof(*out));
	if (strlen(access_key) >= sizeof(out->access_key))
		return error_set(CF_ERR_AUTH, "%s: the access key id is longer than %zu characters",
		                 what, sizeof(out->access_key) - 1);
	memcpy(out->access_key, access_key, strlen(access_key) + 1);
	out->secret_key = secret_strdup(secret_key);
	if (token && token[0])
		out->token = secret_strdup(token);
	out->expires = expires;
	if (!out->secret_key || (token && token[0] && !out->token)) {
		s3_credentials_clear(out);
		return error_set(CF_ERR_NOMEM, "out of memory copying credentials");
	}
	return 0;
}

/* A reply body in guarded memory with a fixed capacity. */
struct secret_buf {
	char *data;
	size_t len, cap;
	int overflow;
};

static int secret_buf_init(struct secret_buf *b, size_t cap)
{
	b->data = sodium_malloc(cap + 1);
	b->len = 0;
	b->cap = cap;
	b->overflow = 0;
	if (!b->data)
		return error_set(CF_ERR_NOMEM, "out of memory for a credential reply");
	b->data[0] = '\0';
	return 0;
}

static void secret_buf_free(struct secret_buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, b->cap + 1);
		sodium_free(b->data);
	}
	b->data = NULL;
}

/* Appends URI-encoded text to a secret buffer. */
static int secret_buf_encode(struct secret_buf *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		           (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
		           *p == '~';

		if (b->len + 3 > b->cap)
			return error_set(CF_ERR_LIMIT, "a credential request is too long");
		if (keep) {
			b->data[b->len++] = (char)*p;
		} else {
			b->data[b->len++] = '%';
			b->data[b->len++] = hex[*p >> 4];
			b->data[b->len++] = hex[*p & 15];
		}
	}
	b->data[b->len] = '\0';
	return 0;
}

static int secret_buf_add(struct secret_buf *b, const char *text)
{
	size_t n = strlen(text);

	if (b->len + n > b->cap)
		return error_set(CF_ERR_LIMIT, "a credential request is too long");
	memcpy(b->data + b->len, text, n + 1);
	b->len += n;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                       */
/* ------------------------------------------------------------------------ */

struct cred_header {
	const char *name;
	const char *value; /* may be secret: the HTTP client wipes its copy */
};

struct cred_call {
	const char *what;   /* "STS AssumeRoleWithWebIdentity at URL", for messages */
	const char *method; /* GET PUT POST */
	const char *url;
	struct cred_header headers[2];
	size_t nheaders;
	const char *body; /* may be secret; never logged */
	size_t body_len;
	struct secret_buf *resp;
};

static int cred_prepare(void *ctx, struct http_attempt *a)
{
	const struct cred_call *call = ctx;
	int rc = 0;

	for (size_t i = 0; !rc && i < call->nheaders; i++)
		rc = http_attempt_header(a, call->headers[i].name, call->headers[i].value);
	return rc;
}

/* Every reply is the caller's to judge; a transport failure is not. */
static int cred_classify(void *ctx, const struct http_response *resp)
{
	const struct cred_call *call = ctx;

	if (resp->body_rc)
		return error_set(CF_ERR_LIMIT, "%s: the reply is larger than %zu bytes", call->what,
		                 call->resp->cap);
	if (resp->curl_code == CURLE_OK)
		return 0;
	return error_set(CF_ERR_NETWORK, "%s: %s", call->what,
	                 resp->curl_error[0] ? resp->curl_error
	                                     : curl_easy_strerror(resp->curl_code));
}

/* A 2xx reply's body (credentials, a token) goes to guarded memory. */
static int cred_sink(void *ctx, const uint8_t *data, size_t n)
{
	const struct cred_call *call = ctx;
	struct secret_buf *b = call->resp;

	if (n > b->cap - b->len) {
		b->overflow = 1;
		return error_set(CF_ERR_LIMIT, "%s: the reply is larger than %zu bytes", call->what,
		                 b->cap);
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* The HTTP client of STS (imds 0) or of the instance metadata (imds 1),
 * made at first use; under c->lock or while the chain is opened. */
static int cred_http(struct s3_cred *c, int imds, struct http_client **out)
{
	struct http_client_options o;
	struct http_client **h = imds ? &c->imds_http : &c->sts_http;
	int rc = 0;

	if (!*h) {
		memset(&o, 0, sizeof(o));
		o.name = "s3";
		o.max_attempts = 1;
		o.protocols = "http,https";
		if (imds) {
			/* A link-local address: never through a proxy, and quick to
			 * give up off EC2. */
			o.connect_timeout_ms = 1000;
			o.total_timeout_ms = 2000;
			o.no_proxy = 1;
		} else {
			o.connect_timeout_ms = 10000;
			o.total_timeout_ms = 30000;
			o.tls.ca_file = c->ca_file;
			o.tls.insecure = !c->verify_tls;
		}
		rc = http_client_new(&o, h);
	}
	*out = *h;
	return rc;
}

/* Performs one request. Returns 0 with status set and the body in resp, or
 * CF_ERR_NETWORK when the peer could not be reached, CF_ERR_LIMIT when the
 * reply is too large, CF_ERR_INTERRUPTED once cancelled, CF_ERR_NOMEM. */
static int cred_perform(struct s3_cred *c, int imds, struct cred_call *call, long *status)
{
	struct http_response resp;
	struct http_request req;
	struct http_client *h;
	struct buf reply;
	int rc;

	*status = 0;
	rc = cred_http(c, imds, &h);
	if (rc)
		return rc;
	/* An error reply names no secret: plain memory, copied below. */
	buf_init(&reply, call->resp->cap);
	memset(&req, 0, sizeof(req));
	req.method = call->method;
	req.url = call->url;
	req.what = call->what;
	req.body = (const uint8_t *)call->body;
	req.body_len = call->body_len;
	req.prepare = cred_prepare;
	req.classify = cred_classify;
	req.sink = cred_sink;
	req.ctx = call;
	req.reply = &reply;
	rc = http_perform(h, &req, &resp);
	if (!rc)
		*status = resp.status;
	if (!rc && (resp.status < 200 || resp.status >= 300)) {
		if (reply.len)
			memcpy(call->resp->data, reply.data, reply.len);
		call->resp->len = reply.len;
		call->resp->data[call->resp->len] = '\0';
	}
	buf_free(&reply);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Web identity                                                               */
/* ------------------------------------------------------------------------ */

static int read_secret_file(const char *path, const char *what, char **out)
{
	struct secret_buf b;
	FILE *f;
	size_t n;
	int rc;

	*out = NULL;
	f = fopen(path, "re");
	if (!f)
		return error_set_errno(CF_ERR_AUTH, errno, "%s: cannot open the token file %s",
		                       what, path);
	/* No stdio buffering, so no unwiped copy of the token. */
	setvbuf(f, NULL, _IONBF, 0);
	rc = secret_buf_init(&b, CRED_MAX_TOKEN_FILE);
	if (!rc) {
		n = fread(b.data, 1, b.cap, f);
		if (ferror(f))
			rc = error_set_errno(CF_ERR_AUTH, errno, "%s: cannot read %s", what, path);
		else if (n == b.cap)
			rc = error_set(CF_ERR_AUTH, "%s: %s is larger than %d bytes", what, path,
			               CRED_MAX_TOKEN_FILE);
		b.len = n;
	}
	fclose(f);
	while (!rc && b.len > 0 && strchr(" \t\r\n", b.data[b.len - 1]))
		b.len--;
	if (!rc && b.len == 0)
		rc = error_set(CF_ERR_AUTH, "%s: the token file %s is empty", what, path);
	if (!rc) {
		*out = secret_strndup(b.data, b.len);
		if (!*out)
			rc = error_set(CF_ERR_NOMEM, "out of memory reading %s", path);
	}
	if (b.data)
		secret_buf_free(&b);
	return rc;
}

static int web_identity_fetch(struct s3_cred *c, struct s3_credentials *out)
{
	char url[512], what[640], session[64];
	struct secret_buf body = {0}, resp = {0};
	struct s3_error_reply err;
	char *token = NULL;
	long status = 0;
	int rc, n;

	if (c->sts_endpoint)
		n = snprintf(url, sizeof(url), "%s", c->sts_endpoint);
	else if (c->region && c->region[0])
		n = snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com/", c->region);
	else
		n = snprintf(url, sizeof(url), "https://sts.amazonaws.com/");
	if (n < 0 || (size_t)n >= sizeof(url))
		return error_set(CF_ERR_CONFIG, "web identity: the STS endpoint is too long");
	snprintf(what, sizeof(what), "web identity: STS AssumeRoleWithWebIdentity at %s", url);
	if (c->session_name)
		snprintf(session, sizeof(session), "%s", c->session_name);
	else
		snprintf(session, sizeof(session), "coffer-%lld", (long long)time(NULL));

	rc = read_secret_file(c->token_file, "web identity", &token);
	if (!rc)
		rc = secret_buf_init(&body, CRED_MAX_TOKEN_FILE * 3 + 4096);
	if (!rc)
		rc = secret_buf_add(&body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
		                           "&RoleArn=");
	if (!rc)
		rc = secret_buf_encode(&body, c->role_arn);
	if (!rc)
		rc = secret_buf_add(&body, "&RoleSessionName=");
	if (!rc)
		rc = secret_buf_encode(&body, session);
	if (!rc)
		rc = secret_buf_add(&body, "&WebIdentityToken=");
	if (!rc)
		rc = secret_buf_encode(&body, token);
	if (!rc)
		rc = secret_buf_init(&resp, CRED_MAX_REPLY);
	if (!rc) {
		struct cred_call call = {
		    .what = what,
		    .method = "POST",
		    .url = url,
		    .headers = {{"Content-Type", "application/x-www-form-urlencoded"},
		                {"Accept", "application/xml"}},
		    .nheaders = 2,
		    .body = body.data,
		    .body_len = body.len,
		    .resp = &resp,
		};

		rc = cred_perform(c, 0, &call, &status);
	}
	if (!rc && status != 200) {
		if (s3_xml_error(resp.data, resp.len, &err))
			rc = error_set(status >= 500 ? CF_ERR_NETWORK : CF_ERR_AUTH,
			               "%s: HTTP %ld: %s%s%s", what, status, err.code,
			               err.message[0] ? ": " : "", err.message);
		else
			rc = error_set(status >= 500 ? CF_ERR_NETWORK : CF_ERR_AUTH, "%s: HTTP %ld",
			               what, status);
	}
	if (!rc)
		rc = s3_xml_sts_credentials(resp.data, resp.len, out);
	secret_free(token);
	secret_buf_free(&body);
	secret_buf_free(&resp);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Instance metadata (IMDSv2)                                                 */
/* ------------------------------------------------------------------------ */

/* One request to the instance metadata service, with the session token
 * header (token NULL: the request for the token, with its lifetime). */
static int imds_get(struct s3_cred *c, const char *method, const char *path, const char *token,
                    struct secret_buf *resp, long *status)
{
	char url[512], what[600];
	struct cred_call call = {
	    .what = what,
	    .method = method,
	    .url = url,
	    .nheaders = 1,
	    .resp = resp,
	};
	int n = snprintf(url, sizeof(url), "%s%s", c->imds_endpoint, path);

	if (n < 0 || (size_t)n >= sizeof(url))
		return error_set(CF_ERR_CONFIG, "instance metadata: the endpoint is too long");
	snprintf(what, sizeof(what), "instance metadata at %s", c->imds_endpoint);
	if (token)
		call.headers[0] = (struct cred_header){"X-aws-ec2-metadata-token", token};
	else
		call.headers[0] =
		    (struct cred_header){"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL};
	resp->len = 0;
	resp->data[0] = '\0';
	return cred_perform(c, 1, &call, status);
}

static int imds_parse(const char *what, const char *json, size_t len, struct s3_credentials *out)
{
	const char *ak, *sk, *tok, *exp, *code;
	json_error_t jerr;
	json_t *root;
	int64_t ms = 0;
	int rc = 0;

	root = json_loadb(json, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return error_set(CF_ERR_FORMAT, "%s: the credentials are not a JSON object", what);
	}
	code = json_string_value(json_object_get(root, "Code"));
	ak = json_string_value(json_object_get(root, "AccessKeyId"));
	sk = json_string_value(json_object_get(root, "SecretAccessKey"));
	tok = json_string_value(json_object_get(root, "Token"));
	exp = json_string_value(json_object_get(root, "Expiration"));
	if (code && strcmp(code, "Success") != 0)
		rc = error_set(CF_ERR_AUTH, "%s: credentials not available (Code %.64s)", what,
		               code);
	else if (!ak || !ak[0] || !sk || !sk[0] || !tok || !tok[0] || !exp)
		rc = error_set(
		    CF_ERR_FORMAT,
		    "%s: the reply lacks AccessKeyId, SecretAccessKey, Token or Expiration", what);
	else if (time_parse_iso(exp, &ms) != 0)
		rc = error_set(CF_ERR_FORMAT, "%s: bad Expiration '%.40s'", what, exp);
	if (!rc)
		rc = credentials_set(out, ak, sk, tok, (time_t)(ms / 1000), what);
	json_decref(root);
	return rc;
}

/* Fetches instance credentials. *reachable says whether the endpoint
 * answered at all, so a machine that is not on EC2 can fall through. */
static int imds_fetch(struct s3_cred *c, struct s3_credentials *out, int *reachable)
{
	struct secret_buf resp = {0};
	char *token = NULL, role[256], path[400], what[600];
	long status = 0;
	int rc;

	*reachable = 0;
	snprintf(what, sizeof(what), "instance metadata at %s", c->imds_endpoint);
	rc = secret_buf_init(&resp, CRED_MAX_REPLY);
	if (!rc)
		rc = imds_get(c, "PUT", "/latest/api/token", NULL, &resp, &status);
	if (!rc) {
		*reachable = 1;
		if (status != 200 || resp.len == 0)
			rc = error_set(CF_ERR_AUTH, "%s: the session token request got HTTP %ld",
			               what, status);
	}
	if (!rc) {
		token = secret_strndup(resp.data, resp.len);
		if (!token)
			rc = error_set(CF_ERR_NOMEM, "out of memory for the IMDS token");
	}
	if (!rc)
		rc = imds_get(c, "GET", "/latest/meta-data/iam/security-credentials/", token, &resp,
		              &status);
	if (!rc && status == 404)
		rc = error_set(CF_ERR_AUTH, "%s: no IAM role is attached to this instance", what);
	else if (!rc && status != 200)
		rc = error_set(CF_ERR_AUTH, "%s: listing the IAM role got HTTP %ld", what, status);
	if (!rc) {
		size_t n = strcspn(resp.data, "\r\n");

		if (n == 0 || n >= sizeof(role) || memchr(resp.data, '/', n)) {
			rc = error_set(CF_ERR_FORMAT, "%s: bad IAM role name", what);
		} else {
			memcpy(role, resp.data, n);
			role[n] = '\0';
		}
	}
	if (!rc) {
		snprintf(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%s", role);
		rc = imds_get(c, "GET", path, token, &resp, &status);
	}
	if (!rc && status != 200)
		rc = error_set(CF_ERR_AUTH, "%s: the credentials of role %s got HTTP %ld", what,
		               role, status);
	if (!rc)
		rc = imds_parse(what, resp.data, resp.len, out);
	secret_free(token);
	secret_buf_free(&resp);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Shared credentials and config files                                        */
/* ------------------------------------------------------------------------ */

struct profile {
	const char *name;
	int is_config; /* sections are "[profile NAME]" (and "[default]") */
	int found;     /* the profile's section is in the file */
	int failed;
	char *access_key, *secret_key, *token; /* secret_key and token: sodium memory */
	char *role_arn, *token_file, *session_name;
	struct http_client *sts_http, *imds_http; /* made at first use */
};

static int set_plain(char **dst, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return 0;
	free(*dst);
	*dst = s;
	return 1;
}

static int set_secret(char **dst, const char *value)
{
	char *s = secret_strdup(value);

	if (!s)
		return 0;
	secret_free(*dst);
	*dst = s;
	return 1;
}

static int section_matches(const struct profile *p, const char *section)
{
	if (!p->is_config)
		return !strcmp(section, p->name);
	if (!strcmp(p->name, "default") && !strcmp(section, "default"))
		return 1;
	return !strncmp(section, "profile ", 8) &&
	       !strcmp(section + 8 + strspn(section + 8, " "), p->name);
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct profile *p = user;
	int ok = 1;

	if (!section_matches(p, section))
		return 1;
	p->found = 1;
	if (!name)
		return 1; /* a section header of an empty section */
	if (!strcmp(name, "aws_access_key_id"))
		ok = set_plain(&p->access_key, value);
	else if (!strcmp(name, "aws_secret_access_key"))
		ok = set_secret(&p->secret_key, value);
	else if (!strcmp(name, "aws_session_token"))
		ok = set_secret(&p->token, value);
	else if (p->is_config && !strcmp(name, "role_arn"))
		ok = set_plain(&p->role_arn, value);
	else if (p->is_config && !strcmp(name, "web_identity_token_file"))
		ok = set_plain(&p->token_file, value);
	else if (p->is_config && !strcmp(name, "role_session_name"))
		ok = set_plain(&p->session_name, value);
	if (!ok)
		p->failed = 1;
	return ok;
}

static void profile_clear(struct profile *p)
{
	free(p->access_key);
	secret_free(p->secret_key);
	secret_free(p->token);
	free(p->role_arn);
	free(p->token_file);
	free(p->session_name);
	p->access_key = p->secret_key = p->token = NULL;
	p->role_arn = p->token_file = p->session_name = NULL;
}

/* Reads the profile's section of one file into p. *present says whether
 * the file exists. Errors: CF_ERR_CONFIG (unreadable, syntax), CF_ERR_NOMEM. */
static int profile_read(const char *path, struct profile *p, int *present)
{
	FILE *f;
	int line;

	*present = 0;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return error_set_errno(CF_ERR_CONFIG, errno, "shared credentials: cannot open %s",
		                       path);
	}
	*present = 1;
	setvbuf(f, NULL, _IONBF, 0);
	line = ini_parse_file(f, on_ini, p);
	fclose(f);
	if (p->failed)
		return error_set(CF_ERR_NOMEM, "out of memory reading %s", path);
	if (line != 0)
		return error_set(CF_ERR_CONFIG, "shared credentials: %s: syntax error on line %d",
		                 path, line);
	return 0;
}

static int env_set(const char *name)
{
	const char *v = getenv(name);

	return v && v[0];
}

/* ------------------------------------------------------------------------ */
/* The chain                                                                  */
/* ------------------------------------------------------------------------ */

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory copying credential options");
}

/* Looks for static keys or a web identity role in the shared files. */
static int try_profile(struct s3_cred *c, struct buf *tried, int *found)
{
	const char *home = getenv("HOME"), *name = getenv("AWS_PROFILE");
	char cred_path[1024], cfg_path[1024];
	struct profile creds = {0}, cfg = {0};
	int rc = 0, cred_present = 0, cfg_present = 0, explicit_profile = name && name[0];
	const char *ak, *sk, *tok, *src;

	*found = 0;
	if (!explicit_profile)
		name = "default";
	if (strlen(name) > 100)
		return error_set(CF_ERR_CONFIG, "AWS_PROFILE is longer than 100 characters");
	if (env_set("AWS_SHARED_CREDENTIALS_FILE"))
		snprintf(cred_path, sizeof(cred_path), "%s", getenv("AWS_SHARED_CREDENTIALS_FILE"));
	else
		snprintf(cred_path, sizeof(cred_path), "%s/.aws/credentials", home ? home : "");
	if (env_set("AWS_CONFIG_FILE"))
		snprintf(cfg_path, sizeof(cfg_path), "%s", getenv("AWS_CONFIG_FILE"));
	else
		snprintf(cfg_path, sizeof(cfg_path), "%s/.aws/config", home ? home : "");
	creds.name = cfg.name = name;
	cfg.is_config = 1;

	rc = profile_read(cred_path, &creds, &cred_present);
	if (!rc)
		rc = profile_read(cfg_path, &cfg, &cfg_present);
	if (!rc)
		rc = buf_printf(tried, ", profile %s in %s%s and %s%s", name, cred_path,
		                cred_present ? "" : " (absent)", cfg_path,
		                cfg_present ? "" : " (absent)");
	if (rc)
		goto out;
	/* Keys in the credentials file win over keys in the config file. */
	src = creds.access_key || creds.secret_key ? cred_path : cfg_path;
	ak = creds.access_key || creds.secret_key ? creds.access_key : cfg.access_key;
	sk = creds.access_key || creds.secret_key ? creds.secret_key : cfg.secret_key;
	tok = creds.access_key || creds.secret_key ? creds.token : cfg.token;
	if (ak || sk) {
		if (!ak || !ak[0] || !sk || !sk[0]) {
			rc = error_set(CF_ERR_CONFIG, "profile %s in %s has %s but not %s", name,
			               src, ak ? "aws_access_key_id" : "aws_secret_access_key",
			               ak ? "aws_secret_access_key" : "aws_access_key_id");
			goto out;
		}
		snprintf(c->source_name, sizeof(c->source_name), "profile %s", name);
		rc = credentials_set(&c->cur, ak, sk, tok, 0, c->source_name);
		if (!rc) {
			c->source = SRC_PROFILE;
			*found = 1;
		}
		goto out;
	}
	if (cfg.role_arn && cfg.token_file) {
		c->role_arn = cfg.role_arn;
		c->token_file = cfg.token_file;
		c->session_name = cfg.session_name;
		cfg.role_arn = cfg.token_file = cfg.session_name = NULL;
		snprintf(c->source_name, sizeof(c->source_name), "web identity (profile %s)", name);
		c->source = SRC_WEB_IDENTITY;
		*found = 1;
		goto out;
	}
	if (explicit_profile && !creds.found && !cfg.found)
		rc = error_set(CF_ERR_CONFIG, "AWS_PROFILE is %s, but neither %s nor %s has it",
		               name, cred_path, cfg_path);
out:
	profile_clear(&creds);
	profile_clear(&cfg);
	return rc;
}

/* Fetches temporary credentials from the source in use into c->cur. */
static int fetch_temporary(struct s3_cred *c)
{
	struct s3_credentials fresh;
	int reachable, rc;

	memset(&fresh, 0, sizeof(fresh));
	if (c->source == SRC_WEB_IDENTITY)
		rc = web_identity_fetch(c, &fresh);
	else if (c->source == SRC_IMDS)
		rc = imds_fetch(c, &fresh, &reachable);
	else
		return 0;
	if (rc)
		return rc;
	s3_credentials_clear(&c->cur);
	c->cur = fresh;
	return 0;
}

static int find_credentials(struct s3_cred *c, const struct s3_cred_options *opts)
{
	struct buf tried;
	int rc = 0, found = 0, reachable = 0;

	buf_init(&tried, 4096);
	/* 1. The repository's own keys. */
	if ((opts->access_key && opts->access_key[0]) ||
	    (opts->secret_key && opts->secret_key[0])) {
		if (!opts->access_key || !opts->access_key[0] || !opts->secret_key ||
		    !opts->secret_key[0]) {
			rc = error_set(
			    CF_ERR_CONFIG, "the configuration sets %s but not %s",
			    opts->access_key && opts->access_key[0] ? "access_key" : "secret_key",
			    opts->access_key && opts->access_key[0] ? "secret_key" : "access_key");
			goto out;
		}
		snprintf(c->source_name, sizeof(c->source_name), "config");
		c->source = SRC_CONFIG;
		rc =
		    credentials_set(&c->cur, opts->access_key, opts->secret_key, NULL, 0, "config");
		goto out;
	}
	rc = buf_printf(&tried, "config keys");

	/* 2. The environment. */
	if (!rc && (env_set("AWS_ACCESS_KEY_ID") || env_set("AWS_SECRET_ACCESS_KEY"))) {
		if (!env_set("AWS_ACCESS_KEY_ID") || !env_set("AWS_SECRET_ACCESS_KEY")) {
			rc = error_set(CF_ERR_CONFIG, "the environment sets %s but not %s",
			               env_set("AWS_ACCESS_KEY_ID") ? "AWS_ACCESS_KEY_ID"
			                                            : "AWS_SECRET_ACCESS_KEY",
			               env_set("AWS_ACCESS_KEY_ID") ? "AWS_SECRET_ACCESS_KEY"
			                                            : "AWS_ACCESS_KEY_ID");
			goto out;
		}
		snprintf(c->source_name, sizeof(c->source_name), "environment");
		c->source = SRC_ENV;
		rc = credentials_set(&c->cur, getenv("AWS_ACCESS_KEY_ID"),
		                     getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"),
		                     0, "environment");
		goto out;
	}
	if (!rc)
		rc = buf_printf(&tried, ", environment (AWS_ACCESS_KEY_ID)");

	/* 3. The shared files. */
	if (!rc)
		rc = try_profile(c, &tried, &found);
	if (!rc && found) {
		rc = fetch_temporary(c);
		goto out;
	}

	/* 4. Web identity from the environment. */
	if (!rc && env_set("AWS_WEB_IDENTITY_TOKEN_FILE") && env_set("AWS_ROLE_ARN")) {
		rc = dup_opt(getenv("AWS_ROLE_ARN"), &c->role_arn);
		if (!rc)
			rc = dup_opt(getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), &c->token_file);
		if (!rc && env_set("AWS_ROLE_SESSION_NAME"))
			rc = dup_opt(getenv("AWS_ROLE_SESSION_NAME"), &c->session_name);
		snprintf(c->source_name, sizeof(c->source_name), "web identity");
		c->source = SRC_WEB_IDENTITY;
		if (!rc)
			rc = fetch_temporary(c);
		goto out;
	}
	if (!rc)
		rc = buf_printf(&tried, ", web identity (AWS_WEB_IDENTITY_TOKEN_FILE and "
		                        "AWS_ROLE_ARN)");

	/* 5. Instance metadata, unless disabled. */
	if (!rc && getenv("AWS_EC2_METADATA_DISABLED") &&
	    !strcmp(getenv("AWS_EC2_METADATA_DISABLED"), "true")) {
		rc = buf_printf(&tried, ", instance metadata (disabled)");
	} else if (!rc) {
		snprintf(c->source_name, sizeof(c->source_name), "instance metadata");
		c->source = SRC_IMDS;
		rc = imds_fetch(c, &c->cur, &reachable);
		if (rc && !reachable) {
			/* Not on EC2 (or IMDS is off): the chain ends here. */
			rc = buf_printf(&tried, ", instance metadata at %s (%s)", c->imds_endpoint,
			                error_message());
			c->source = SRC_NONE;
		} else {
			goto out;
		}
	}
	if (!rc)
		rc = error_set(CF_ERR_AUTH, "no credentials found: tried %s",
		               (const char *)tried.data);
out:
	buf_free(&tried);
	return rc;
}

int s3_cred_open(const struct s3_cred_options *opts, struct s3_cred **out)
{
	struct s3_cred *c;
	int rc;

	*out = NULL;
	if (sodium_init() < 0)
		return error_set(CF_ERR_INTERNAL, "libsodium failed to initialise");
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory opening the credential chain");
	pthread_mutex_init(&c->lock, NULL);
	c->verify_tls = opts->verify_tls;
	rc = dup_opt(opts->region, &c->region);
	if (!rc)
		rc = dup_opt(opts->sts_endpoint, &c->sts_endpoint);
	if (!rc)
		rc = dup_opt(opts->imds_endpoint ? opts->imds_endpoint : IMDS_DEFAULT,
		             &c->imds_endpoint);
	if (!rc)
		rc = dup_opt(opts->ca_file, &c->ca_file);
	if (!rc)
		rc = find_credentials(c, opts);
	if (rc) {
		s3_cred_free(c);
		return rc;
	}
	log_debug("S3 credentials from %s", c->source_name);
	*out = c;
	return 0;
}

int s3_cred_get(struct s3_cred *c, time_t now, struct s3_credentials *out)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	if (c->cur.expires != 0 && now >= c->cur.expires - CRED_REFRESH_MARGIN) {
		rc = fetch_temporary(c);
		if (rc && now < c->cur.expires) {
			/* The old credentials still work for a while: use them and try
			 * again on the next call. */
			log_warn("cannot refresh the S3 credentials from %s: %s", c->source_name,
			         error_message());
			rc = 0;
		}
	}
	if (!rc)
		rc = credentials_set(out, c->cur.access_key, c->cur.secret_key, c->cur.token,
		                     c->cur.expires, c->source_name);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

const char *s3_cred_source_name(const struct s3_cred *c)
{
	return c ? c->source_name : "";
}

void s3_cred_free(struct s3_cred *c)
{
	if (!c)
		return;
	s3_credentials_clear(&c->cur);
	pthread_mutex_destroy(&c->lock);
	free(c->region);
	free(c->sts_endpoint);
	free(c->imds_endpoint);
	free(c->ca_file);
	free(c->role_arn);
	free(c->token_file);
	free(c->session_name);
	http_client_free(c->sts_http);
	http_client_free(c->imds_http);
	free(c);
}
