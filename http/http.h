/*
 * http: the one HTTP client of coffer, over libcurl. The S3 driver, the S3
 * credential chain (STS, instance metadata) and the Kubernetes client all
 * send their requests through it.
 *
 * It gives a pool of connections (one curl easy handle per concurrent
 * request, kept alive between requests), one http_perform() that runs a
 * request to its end with retries (exponential backoff with full jitter, or
 * the server's Retry-After, bounded), TLS settings (CA file or PEM blob,
 * client certificate and key as files or blobs, no verification), timeouts
 * (connect, stall, total), cancellation within 100 ms of cancel_set(), and
 * debug logging of the headers with the secrets redacted.
 *
 * It knows nothing of what it carries: signing (S3's SigV4), credentials
 * and the meaning of a status are the caller's, through two callbacks per
 * request. prepare() runs before every attempt (to sign it afresh or to add
 * a renewed token) and classify() after every reply or transport failure,
 * saying whether it is a success, a permanent failure (with its one message)
 * or worth another try.
 *
 * Every function that can fail returns 0 or a negative CF_ERR_* code with
 * error_set() detail (common/common.h).
 */
#ifndef COFFER_HTTP_H
#define COFFER_HTTP_H

#include "common/common.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* TLS settings. Strings are copied by http_client_new(); blobs (PEM bytes)
 * are not: they must stay unchanged while a request that uses them runs.
 * A blob wins over the file of the same role. */
struct http_tls {
	const char *ca_file; /* CA bundle, or NULL: the system's */
	const uint8_t *ca_data;
	size_t ca_len;
	const char *cert_file; /* client certificate (PEM), or NULL */
	const uint8_t *cert_data;
	size_t cert_len;
	const char *key_file; /* its private key (PEM), or NULL */
	const uint8_t *key_data;
	size_t key_len;
	int insecure; /* 1: do not verify the server's certificate or name */
};

struct http_client_options {
	const char *name;        /* "s3", "k8s": starts log lines and messages */
	long connect_timeout_ms; /* 0: 30 s */
	long stall_timeout_s;    /* a transfer moving nothing this long fails; 0: never */
	long total_timeout_ms;   /* a whole attempt; 0: no limit */
	int max_attempts;        /* 0: 1 (no retry) */
	long backoff_base_ms;    /* the first backoff's ceiling; 0: 200 ms */
	long backoff_cap_ms;     /* no backoff is longer; 0: 10 s */
	long retry_after_max_ms; /* a Retry-After is obeyed up to this; 0: backoff_cap_ms */
	struct http_tls tls;     /* the default of every request (see http_request.tls) */
	const char *proxy;       /* NULL: curl's default (the *_proxy environment) */
	int no_proxy;            /* 1: never through a proxy (instance metadata) */
	const char *connect_to;  /* a CURLOPT_CONNECT_TO entry "HOST:PORT:HOST2:PORT2", or NULL */
	int accept_encoding;     /* 1: accept gzip/deflate replies (decoded) */
	/* Bytes per second all the client's transfers together may send /
	 * receive (request and reply bodies); 0: no limit. One token bucket
	 * each, shared by the threads, with a quarter second of burst. */
	uint64_t max_send_rate, max_recv_rate;
	const char *protocols; /* NULL: "http,https" */
	/* A uniform random number in [0, upper], for the jitter; NULL:
	 * arc4random. Tests pin it. */
	uint32_t (*random)(uint32_t upper);
};

/* The pool and the settings; thread-safe (any number of threads may run
 * http_perform() on one client at once, each on its own connection). */
struct http_client;

/* Copies the options (not the TLS blobs). Initialises libcurl once per
 * process. Errors: CF_ERR_NOMEM. */
int http_client_new(const struct http_client_options *o, struct http_client **out);
/* Closes the pooled connections. No request may be running. NULL: nothing. */
void http_client_free(struct http_client *c);

/* One attempt being prepared (see http_request.prepare). */
struct http_attempt;

/*
 * Adds the header "name: value" to this attempt only (an empty value with
 * no blank, "name:", removes a header curl would send by itself). The line
 * is wiped when the attempt ends, so it may carry a secret. Debug logs
 * redact it when name is one of http_header_secret()'s.
 * Errors: CF_ERR_NOMEM, CF_ERR_LIMIT (over 64 KiB).
 */
int http_attempt_header(struct http_attempt *a, const char *name, const char *value);
/* 1, 2, ... */
int http_attempt_number(const struct http_attempt *a);

/* What the last attempt got. */
struct http_response {
	long status;                      /* 0 when no reply came */
	CURLcode curl_code;               /* CURLE_OK when a reply came */
	char curl_error[CURL_ERROR_SIZE]; /* curl's detail of curl_code, or "" */
	int body_rc;                      /* 0, or why the body did not fit in http_request.reply
	                                   * (CF_ERR_LIMIT, CF_ERR_NOMEM): the transfer then fails
	                                   * with CURLE_WRITE_ERROR */
	int64_t retry_after_ms;           /* Retry-After (seconds or an HTTP date), -1 if none */
	int attempts;                     /* attempts made */
	int last;                         /* 1 if no other attempt may follow this one */
};

/* classify()'s verdicts other than 0 (success) and a CF_ERR_* code. */
enum {
	HTTP_RETRY = 1,     /* transient: try again after a backoff */
	HTTP_RETRY_NOW = 2, /* try again at once, even past max_attempts (renewed
	                     * credentials: the callback bounds how often) */
};

struct http_request {
	const char *method; /* GET HEAD PUT POST DELETE ... */
	const char *url;    /* complete and encoded */
	const char *what;   /* "PUT s3://b/k", for log lines and messages */
	/* The request body (PUT, POST), not copied, may be a secret (it is
	 * never logged); NULL with a PUT or POST sends an empty one. */
	const uint8_t *body;
	size_t body_len;
	/* TLS settings of this request instead of the client's, or NULL. Read
	 * after prepare(), which may change them (a renewed certificate). */
	const struct http_tls *tls;
	/*
	 * Called before each attempt; adds its headers with
	 * http_attempt_header(). Returns 0, or an error that ends the request
	 * (its message set). May be NULL.
	 */
	int (*prepare)(void *ctx, struct http_attempt *a);
	/*
	 * Called after each attempt that was not cancelled and whose sink did
	 * not fail: with resp->curl_code != CURLE_OK for a transport failure,
	 * else with the reply (status, body). Returns 0 (done: http_perform
	 * returns 0), a CF_ERR_* code (done: returned as is, with the message
	 * classify set, or none, as the caller wants), HTTP_RETRY or
	 * HTTP_RETRY_NOW. HTTP_RETRY when resp->last is 1 fails with
	 * CF_ERR_NETWORK "retries exhausted". NULL: any 2xx is 0, transient
	 * failures (http_transient_curl(), 429, 5xx) are retried, the rest fail
	 * with a message naming what and the status.
	 */
	int (*classify)(void *ctx, const struct http_response *resp);
	/* Each response header line (without the status line; CRLF kept);
	 * called with line NULL at each new status line (after a 100 Continue
	 * or between attempts): forget what was kept. May be NULL. */
	void (*header)(void *ctx, const char *line, size_t len);
	/* The body of a 2xx reply, as it arrives, when set; a non-zero return
	 * (a CF_ERR_* code with its message set) stops the transfer and
	 * http_perform() returns it without another attempt. Other replies'
	 * bodies go to reply. */
	int (*sink)(void *ctx, const uint8_t *data, size_t len);
	void *ctx;
	/* Where reply bodies go (when not to sink), appended up to reply->max,
	 * reset before each attempt; the caller initialises and frees it.
	 * NULL: bodies are dropped. */
	struct buf *reply;
	/* 1: cleanup that must run even after a cancellation (aborting a
	 * multipart upload): not stopped by the cancellation, and once
	 * cancelled (or inside a cleanup section after one, cancel_hurry()),
	 * one attempt with a 500 ms total timeout. */
	int after_cancel;
};

/*
 * Runs the request on a pooled connection: prepare, transfer, classify,
 * and again after a backoff while classify says HTTP_RETRY and attempts
 * remain. resp (the caller's) describes the last attempt.
 *
 * Cancellation: the transfer is polled every 100 ms and stops within that
 * time once cancel_requested(); a backoff wait ends at once; nothing is
 * retried once cancelled. Inside a cleanup section after a cancellation
 * (cancel_hurry()) every request makes one attempt.
 *
 * Errors: CF_ERR_INTERRUPTED ("NAME: WHAT: interrupted by a signal"), the
 * sink's, prepare's or classify's errors, CF_ERR_NETWORK (retries
 * exhausted, or a transport failure without classify), CF_ERR_NOMEM.
 */
int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp);

/* 1 for the transport failures worth another try: could not connect or
 * resolve, timeouts, a connection reset or closed early, a TLS handshake
 * that failed midway, HTTP/2 stream errors. */
int http_transient_curl(CURLcode cc);

/*
 * If the header line ("Name: value\r\n", len bytes) is name (any case),
 * copies its value, blanks trimmed, into dst (cut to dsz - 1 bytes) and
 * returns 1; else returns 0 and leaves dst alone.
 */
int http_header_take(const char *line, size_t len, const char *name, char *dst, size_t dsz);

/* 1 if a header of this name carries a secret (Authorization,
 * Proxy-Authorization, Cookie, Set-Cookie, X-Amz-Security-Token,
 * X-aws-ec2-metadata-token), which debug logs replace with "[redacted]". */
int http_header_secret(const char *name, size_t len);
/*
 * Copies one header line (len bytes, CR/LF dropped) into out for a log,
 * its value replaced with "[redacted]" when http_header_secret(). Always
 * NUL-terminates (out is cut to cap - 1). Returns out.
 */
char *http_header_redact(const char *line, size_t len, char *out, size_t cap);

#endif
