/*
 * s3: internal declarations of the S3 driver, shared by its files only
 * (the .c files in storage/s3/). Callers use storage.h.
 *
 *   s3_sigv4.c   AWS Signature Version 4, a pure function (time, credentials in)
 *   s3_xml.c     the S3 XML replies, parsed with libexpat
 *   s3_cred.c    the credential chain (config, env, shared files, web identity, IMDSv2)
 *   s3_http.c    one signed request through the HTTP client (http/http.h)
 *   s3_driver.c  the storage vtable: objects, listing, multipart uploads, ranged reads
 */
#ifndef COFFER_S3_H
#define COFFER_S3_H

#include "common/common.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Credentials                                                                */
/* ------------------------------------------------------------------------ */

/* Strings are NUL-terminated; secret_key and token live in sodium_malloc
 * memory (s3_cred.c allocates and wipes them). expires is 0 for long-term
 * keys, else the Unix time the temporary credentials stop working. */
struct s3_credentials {
	char access_key[128];
	char *secret_key;
	char *token; /* session token, or NULL */
	time_t expires;
};

/* Where credentials may come from, in the order tried (s3_cred.c). */
struct s3_cred_options {
	const char *access_key;    /* [repository] access_key, or NULL */
	const char *secret_key;    /* [repository] secret_key, or NULL */
	const char *region;        /* for STS */
	const char *sts_endpoint;  /* NULL: https://sts.<region>.amazonaws.com */
	const char *imds_endpoint; /* NULL: http://169.254.169.254 */
	const char *ca_file;       /* for STS over TLS, or NULL */
	int verify_tls;
};

/* The credential chain; thread-safe. */
struct s3_cred;

/*
 * Finds the first source that has credentials, in this order: the config
 * keys; AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; the
 * shared files (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, and
 * AWS_CONFIG_FILE or ~/.aws/config) for AWS_PROFILE or "default"; web
 * identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, optional
 * AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity; EC2 instance
 * metadata with an IMDSv2 token. Errors: CF_ERR_AUTH ("no credentials found:
 * tried ...", or STS / IMDS refused), CF_ERR_CONFIG (half a key pair in the
 * config or the environment, an unreadable or malformed shared file, an
 * AWS_PROFILE no file has), CF_ERR_NETWORK, CF_ERR_FORMAT, CF_ERR_LIMIT,
 * CF_ERR_NOMEM. No error message ever contains a secret.
 */
int s3_cred_open(const struct s3_cred_options *opts, struct s3_cred **out);
/* Copies the current credentials into out (caller releases them with
 * s3_credentials_clear), first refreshing temporary ones that expire within
 * 5 minutes of now. If that refresh fails while the current ones have not
 * expired yet, they are returned with a log_warn(). Errors: as s3_cred_open
 * for the refresh. */
int s3_cred_get(struct s3_cred *c, time_t now, struct s3_credentials *out);
/* Names the source in use ("config", "environment", "profile NAME",
 * "web identity", "instance metadata") for logs. */
const char *s3_cred_source_name(const struct s3_cred *c);
/* Wipes and frees the secrets of out (not out itself). */
void s3_credentials_clear(struct s3_credentials *out);
void s3_cred_free(struct s3_cred *c);

/* ------------------------------------------------------------------------ */
/* Signature Version 4                                                        */
/* ------------------------------------------------------------------------ */

struct s3_header {
	const char *name;  /* any case; signed in lower case */
	const char *value; /* signed with leading/trailing blanks trimmed and
	                    * inner runs of blanks folded to one */
};

struct s3_sigv4_request {
	const char *method;              /* "GET", "PUT", ... */
	const char *path;                /* URI path, already URI-encoded as sent ("/bucket/key%20x"
	                                  * from s3_uri_encode(key, 1)); signed as given, never
	                                  * encoded a second time */
	const char *query;               /* raw query string as sent, without '?', or NULL/"" */
	const struct s3_header *headers; /* headers to sign; must include host */
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *region;       /* "us-east-1" */
	const char *service;      /* "s3" (or "sts") */
	time_t now;               /* signing time */
	int normalize_path;       /* 1: remove "." and ".." segments and duplicate
	                           * slashes (non-S3 services); S3 uses 0 */
};

#define S3_AMZ_DATE_LEN 16 /* "20150830T123600Z" */

struct s3_sigv4_result {
	char amz_date[S3_AMZ_DATE_LEN + 1];
	struct buf canonical_request; /* for tests and debug logs */
	struct buf string_to_sign;
	char signature[65];
	struct buf authorization; /* the Authorization header value */
};

/*
 * Signs a request. result's bufs are initialised by the call and released by
 * s3_sigv4_result_free(). The x-amz-date header must be among req->headers
 * with the value s3_sigv4_format_date(now) (the AWS suite signs "X-Amz-Date"),
 * and x-amz-security-token too when the credentials carry a token.
 * Errors: CF_ERR_NOMEM, CF_ERR_LIMIT (over 1 MiB), CF_ERR_INTERNAL (no
 * method, region, service, payload hash or secret key).
 */
int s3_sigv4_sign(const struct s3_sigv4_request *req, const struct s3_credentials *cred,
                  struct s3_sigv4_result *result);
void s3_sigv4_result_free(struct s3_sigv4_result *result);
/* "20150830T123600Z" */
void s3_sigv4_format_date(time_t now, char out[S3_AMZ_DATE_LEN + 1]);
/* URI-encodes per SigV4 (unreserved A-Z a-z 0-9 - . _ ~ kept; '/' kept when
 * keep_slash). Errors: CF_ERR_NOMEM, CF_ERR_LIMIT. */
int s3_uri_encode(const char *in, int keep_slash, struct buf *out);

/* ------------------------------------------------------------------------ */
/* XML replies                                                                */
/* ------------------------------------------------------------------------ */

/* <Error><Code>..</Code><Message>..</Message></Error>; empty strings when absent. */
struct s3_error_reply {
	char code[128];
	char message[512];
	char region[64]; /* <Region> of a reply about the wrong region, or "" */
};

/* Each parser returns CF_ERR_FORMAT (with a message naming the reply) when the
 * XML is malformed, has another root element (an <Error> root is reported
 * with its code and message) or lacks a required element; CF_ERR_LIMIT for a
 * body over 16 MiB or a list over 100,000 entries; CF_ERR_NOMEM. */

/* Parses an <Error> document (also one inside a 200 reply to
 * CompleteMultipartUpload, and STS's <ErrorResponse><Error>). Returns 1 if
 * body is one (fields cut to fit), 0 if not (also for an empty or non-XML
 * body); never fails and leaves the recorded error of the thread alone. */
int s3_xml_error(const char *body, size_t len, struct s3_error_reply *out);
/* InitiateMultipartUploadResult -> UploadId (malloc'ed). */
int s3_xml_upload_id(const char *body, size_t len, char **upload_id);

/* One entry of ListObjectsV2 or ListMultipartUploads. */
struct s3_list_item {
	char *key;
	char *upload_id; /* ListMultipartUploads only */
	uint64_t size;
	int64_t time_ms; /* LastModified or Initiated */
};

struct s3_list_reply {
	struct s3_list_item *items;
	size_t nitems;
	int truncated;
	char *next_token;      /* ListObjectsV2 NextContinuationToken */
	char *next_key_marker; /* ListMultipartUploads NextKeyMarker */
	char *next_upload_id_marker;
};

int s3_xml_list_objects(const char *body, size_t len, struct s3_list_reply *out);
int s3_xml_list_uploads(const char *body, size_t len, struct s3_list_reply *out);
void s3_list_reply_free(struct s3_list_reply *r);

/* DeleteObjects reply: the keys that failed, each with its code. */
struct s3_delete_error {
	char *key;
	char code[128];
	char message[256];
};

int s3_xml_delete_result(const char *body, size_t len, struct s3_delete_error **errors,
                         size_t *nerrors);
void s3_delete_errors_free(struct s3_delete_error *e, size_t n);

/* CompleteMultipartUploadResult -> ETag (malloc'ed, quotes kept as sent). */
int s3_xml_complete_etag(const char *body, size_t len, char **etag);
/* CopyPartResult (UploadPartCopy) or CopyObjectResult -> ETag, likewise. */
int s3_xml_copy_etag(const char *body, size_t len, int part, char **etag);

/* AssumeRoleWithWebIdentityResponse -> credentials (secret and token in
 * sodium_malloc memory) and expiry. */
int s3_xml_sts_credentials(const char *body, size_t len, struct s3_credentials *out);

/* The builders append to out, which the caller initialises (its max bounds
 * the body). Errors: CF_ERR_LIMIT, CF_ERR_NOMEM, CF_ERR_FORMAT (a control
 * character XML 1.0 cannot carry), CF_ERR_INTERNAL (n is 0 or above the S3
 * limit: 10,000 parts, 1,000 keys). */

/* Builds <CompleteMultipartUpload> for parts 1..n with the given ETags. */
int s3_xml_complete_body(char *const *etags, size_t n, struct buf *out);
/* Builds <Delete><Quiet>true</Quiet> with the keys (XML-escaped). */
int s3_xml_delete_body(char *const *keys, size_t n, struct buf *out);

/* ------------------------------------------------------------------------ */
/* Requests (s3_http.c)                                                       */
/* ------------------------------------------------------------------------ */

struct storage_s3_options;

/* The endpoint, bucket and connection settings, and an HTTP client (a pool
 * of connections, one per thread in use, kept alive). Thread-safe. */
struct s3_client;

/* Errors: CF_ERR_CONFIG (bad endpoint, missing bucket), CF_ERR_AUTH (no
 * credentials), CF_ERR_NOMEM. */
int s3_client_new(const struct storage_s3_options *opts, struct s3_client **out);
void s3_client_free(struct s3_client *c);
/* "s3://bucket/prefix" for messages. */
const char *s3_client_describe(const struct s3_client *c);
/* The bucket key of a repository key: prefix + key. Errors: CF_ERR_NOMEM. */
int s3_client_key(const struct s3_client *c, const char *key, struct buf *out);
size_t s3_client_prefix_len(const struct s3_client *c);
/* The x-amz-copy-source of repository key in c's bucket: "/bucket/prefix+key",
 * URI-encoded. Errors: CF_ERR_NOMEM. */
int s3_client_copy_source(const struct s3_client *c, const char *key, struct buf *out);
/* 1 if a and b talk to the same endpoint (scheme, host and port), where a
 * server-side copy from one bucket into the other can work. */
int s3_client_same_endpoint(const struct s3_client *a, const struct s3_client *b);

struct s3_request {
	const char *method;              /* GET PUT POST HEAD DELETE */
	const char *key;                 /* bucket key (already prefixed), or NULL for the bucket */
	const char *query;               /* "uploads", "partNumber=1&uploadId=...", or NULL */
	const struct s3_header *headers; /* extra headers to send and sign */
	size_t nheaders;
	const uint8_t *body; /* request body (PUT/POST), may be NULL */
	size_t body_len;
	const char *body_md5; /* base64 MD5 of body for Content-MD5, or NULL */
	/* hex SHA-256 of body, the signed payload hash, or NULL: with neither,
	 * the body is hashed for each attempt; with body_md5 only, it goes as
	 * UNSIGNED-PAYLOAD */
	const char *body_sha256;
	/* Response body: passed to sink as it arrives when set (a retry calls
	 * reset first), else kept in the response up to max_body bytes. */
	int (*sink)(void *ctx, const uint8_t *data, size_t len);
	void (*reset)(void *ctx);
	void *sink_ctx;
	size_t max_body;  /* 0: 1 MiB */
	const char *what; /* "upload part 3", for messages */
	/* 1: cleanup that must run even after a cancellation (aborting a
	 * multipart upload): then one attempt with a 500 ms total timeout.
	 * 0: a cancellation fails the request with CF_ERR_INTERRUPTED. */
	int after_cancel;
};

struct s3_response {
	long status;
	struct buf body;
	char etag[130];
	char request_id[128];
	char content_range[128];
	char last_modified[64];
	char bucket_region[64];      /* x-amz-bucket-region, or "" */
	char retain_until[64];       /* x-amz-object-lock-retain-until-date, or "" */
	int64_t content_length;      /* -1 if absent */
	struct s3_error_reply error; /* parsed from an error body */
};

/*
 * Performs one request with retries: connection failures, timeouts, resets,
 * 5xx, SlowDown and RequestTimeout are retried up to max_attempts with
 * exponential backoff and full jitter; an expired token refreshes the
 * credentials. Any 2xx and 304 return 0 with resp filled; a 404 returns
 * CF_ERR_NOTFOUND (resp filled, no message recorded: callers decide), except
 * NoSuchBucket: CF_ERR_NOTFOUND with the message "bucket ... does not exist"
 * and resp->error.code "NoSuchBucket" (s3_bucket_missing()). Other failures
 * return CF_ERR_AUTH (403, signature: "access to ... denied"), CF_ERR_NETWORK
 * (could not reach), CF_ERR_STORAGE, with one message naming the method,
 * s3://bucket/key, the HTTP status and the S3 error code; CF_ERR_INTERRUPTED
 * once cancelled (no retry after a cancellation, see after_cancel). resp is initialised by the call
 * and released with s3_response_free().
 */
int s3_http_request(struct s3_client *c, const struct s3_request *req, struct s3_response *resp);
void s3_response_free(struct s3_response *resp);
/* 1 if resp is the reply of a missing bucket (not of a missing key). */
int s3_bucket_missing(const struct s3_response *resp);

#endif
