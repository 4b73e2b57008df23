/*
 * Tests of the S3 driver's error paths against a scripted S3 server: a
 * thread on 127.0.0.1 that answers each request from a table of knobs (a part
 * that fails once or forever, a slow part, 503 SlowDown, a 200 carrying an
 * <Error>, DeleteObjects with per-key errors, a missing bucket) and logs
 * every request it saw, so the tests can check what was sent (an abort, no
 * complete, the number of DeleteObjects requests).
 *
 * A cancellation cannot be undone within a process, so the cancellation
 * tests run in their own invocations: `test_s3_driver cancel-transfer` and
 * `test_s3_driver cancel-backoff` (tests/CMakeLists.txt registers both).
 * `test_s3_driver race` runs the failing-part stress alone (for TSan).
 */
#include "crypto/crypto.h"
#include "storage/storage.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PART (64 * 1024)
#define MAX_CONNS 256

/* ------------------------------------------------------------------------ */
/* The scripted server                                                        */
/* ------------------------------------------------------------------------ */

struct fake_cfg {
	unsigned fail_part;       /* part number that fails (0: none) */
	int fail_times;           /* how often it fails (-1: always) */
	int fail_status;          /* 500 (InternalError) or 503 (SlowDown) */
	int part_delay_ms;        /* every part answers this late */
	int complete_error;       /* CompleteMultipartUpload: 200 with an <Error> */
	int initiate_403;         /* CreateMultipartUpload: 403 AccessDenied */
	int no_bucket;            /* every request: 404 NoSuchBucket */
	int other_region;         /* every request: 301, the bucket is in eu-west-3 */
	const char *delete_reply; /* DeleteObjects reply body (NULL: empty result) */
	uint64_t object_size;     /* HEAD/GET of any key: an object of this size */
};

struct fake_srv {
	int lfd, port;
	pthread_t accept_th;
	pthread_mutex_t mu; /* everything below */
	int stopping;
	struct fake_cfg cfg;
	int part_failures;
	char log[1 << 20];
	size_t loglen;
	int nrequests;
	int missing_md5; /* a DeleteObjects without Content-MD5 */
	int not_quiet;   /* a DeleteObjects without <Quiet>true</Quiet> */
	pthread_t conn_th[MAX_CONNS];
	int conn_fd[MAX_CONNS];
	int nconns;
};

struct fake_req {
	char method[16];
	char path[8192];
	char md5[64];
	char range[128];
	uint8_t *body;
	size_t body_len;
};

struct fake_reply {
	int status;
	char headers[512];
	char *body;
	size_t body_len;
	uint64_t head_size; /* HEAD of an object: its size */
	int delay_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reply_set(struct fake_reply *r, int status, const char *body)
{
	r->status = status;
	r->body = strdup(body ? body : "");
	r->body_len = strlen(r->body);
}

static void reply_error(struct fake_reply *r, int status, const char *code)
{
	char b[512];

	snprintf(b, sizeof(b),
	         "<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>scripted"
	         "</Message></Error>",
	         code);
	reply_set(r, status, b);
}

/* The canned S3: decides the reply of one request; s->mu held. */
static void fake_handle(struct fake_srv *s, const struct fake_req *q, struct fake_reply *r)
{
	const char *qs = strchr(q->path, '?');
	const char *part = strstr(q->path, "partNumber=");

	s->nrequests++;
	if (s->loglen + strlen(q->path) + 32 < sizeof(s->log))
		s->loglen += (size_t)snprintf(s->log + s->loglen, sizeof(s->log) - s->loglen,
		                              "%s %s\n", q->method, q->path);
	if (s->cfg.no_bucket) {
		reply_error(r, 404, "NoSuchBucket");
		return;
	}
	if (s->cfg.other_region) {
		reply_error(r, 301, "PermanentRedirect");
		snprintf(r->headers, sizeof(r->headers), "x-amz-bucket-region: eu-west-3\r\n");
		return;
	}
	if (!strcmp(q->method, "POST") && qs && !strcmp(qs, "?uploads")) {
		if (s->cfg.initiate_403)
			reply_error(r, 403, "AccessDenied");
		else
			reply_set(r, 200,
			          "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k"
			          "</Key><UploadId>up1</UploadId></InitiateMultipartUploadResult>");
	} else if (!strcmp(q->method, "PUT") && (part || !qs)) {
		unsigned n = part ? (unsigned)strtoul(part + 11, NULL, 10) : 0;
		uint8_t d[HASH_MD5_LEN];

		if (n && n == s->cfg.fail_part &&
		    (s->cfg.fail_times < 0 || s->part_failures < s->cfg.fail_times)) {
			s->part_failures++;
			reply_error(r, s->cfg.fail_status ? s->cfg.fail_status : 500,
			            s->cfg.fail_status == 503 ? "SlowDown" : "InternalError");
			return;
		}
		/* hash_md5() itself is checked against RFC 1321's vectors in
		 * test_hash.c. */
		assert_int_equal(hash_md5(q->body, q->body_len, d), 0);
		reply_set(r, 200, "");
		strcpy(r->headers, "ETag: \"");
		for (int i = 0; i < HASH_MD5_LEN; i++)
			sprintf(r->headers + strlen(r->headers), "%02x", d[i]);
		strcat(r->headers, "\"\r\n");
		if (n)
			r->delay_ms = s->cfg.part_delay_ms;
	} else if (!strcmp(q->method, "POST") && qs && !strncmp(qs, "?uploadId=", 10)) {
		if (s->cfg.complete_error)
			reply_error(r, 200, "InternalError");
		else
			reply_set(r, 200,
			          "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag>"
			          "</CompleteMultipartUploadResult>");
	} else if (!strcmp(q->method, "DELETE")) {
		reply_set(r, 204, "");
	} else if (!strcmp(q->method, "GET") && qs && !strncmp(qs, "?prefix=", 8)) {
		/* ListMultipartUploads ("uploads&prefix=..." sorted by the signer) */
		reply_set(r, 200,
		          "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
		          "</ListMultipartUploadsResult>");
	} else if (!strcmp(q->method, "GET") && qs && strstr(qs, "uploads")) {
		reply_set(r, 200,
		          "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
		          "</ListMultipartUploadsResult>");
	} else if (!strcmp(q->method, "POST") && qs && !strcmp(qs, "?delete")) {
		if (!q->md5[0])
			s->missing_md5++;
		if (!q->body || !memmem(q->body, q->body_len, "<Quiet>true</Quiet>", 19))
			s->not_quiet++;
		reply_set(r, 200,
		          s->cfg.delete_reply ? s->cfg.delete_reply
		                              : "<DeleteResult></DeleteResult>");
	} else if (!strcmp(q->method, "HEAD")) {
		if (!strcmp(q->path, "/b")) {
			reply_set(r, 200, ""); /* the bucket (older drivers checked it) */
		} else if (!s->cfg.object_size) {
			reply_set(r, 404, "");
		} else {
			reply_set(r, 200, "");
			strcpy(r->headers, "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n");
			r->head_size = s->cfg.object_size;
		}
	} else if (!strcmp(q->method, "GET") && q->range[0]) {
		unsigned long long from = 0, to = 0;

		sscanf(q->range, "bytes=%llu-%llu", &from, &to);
		r->status = 206;
		r->body_len = (size_t)(to - from + 1);
		r->body = malloc(r->body_len);
		for (size_t i = 0; i < r->body_len; i++)
			r->body[i] = (char)((from + i) % 251);
	} else {
		reply_error(r, 400, "Unscripted");
	}
}

static int recv_head(int fd, char *buf, size_t cap, size_t *have, size_t *head_len)
{
	for (;;) {
		char *e = *have ? memmem(buf, *have, "\r\n\r\n", 4) : NULL;
		ssize_t n;

		if (e) {
			*head_len = (size_t)(e - buf) + 4;
			return 0;
		}
		if (*have == cap)
			return -1;
		n = recv(fd, buf + *have, cap - *have, 0);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

static void header_value(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		if (!strncasecmp(p + 2, name, nl) && p[2 + nl] == ':') {
			const char *v = p + 3 + nl;
			size_t n = strcspn(v, "\r");

			while (*v == ' ' && n) {
				v++;
				n--;
			}
			if (n >= cap)
				n = cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return;
		}
	}
}

static int stopping(struct fake_srv *s)
{
	int stop;

	pthread_mutex_lock(&s->mu);
	stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

struct conn_arg {
	struct fake_srv *s;
	int fd;
};

static void *fake_conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct fake_srv *s = ca->s;
	int fd = ca->fd;
	static const size_t cap = 1 << 16;
	char *buf = malloc(cap);
	size_t have = 0;

	free(ca);
	for (;;) {
		struct fake_req q;
		struct fake_reply r;
		char head[8192], cl[32], out[1024];
		size_t head_len, len;

		if (recv_head(fd, buf, cap - 1, &have, &head_len))
			break;
		memset(&q, 0, sizeof(q));
		memset(&r, 0, sizeof(r));
		len = head_len < sizeof(head) - 1 ? head_len : sizeof(head) - 1;
		memcpy(head, buf, len);
		head[len] = '\0';
		sscanf(head, "%15s %8191s", q.method, q.path);
		header_value(head, "content-length", cl, sizeof(cl));
		header_value(head, "content-md5", q.md5, sizeof(q.md5));
		header_value(head, "range", q.range, sizeof(q.range));
		q.body_len = cl[0] ? strtoul(cl, NULL, 10) : 0;
		q.body = malloc(q.body_len + 1);
		memmove(buf, buf + head_len, have - head_len);
		have -= head_len;
		for (size_t got = 0; got < q.body_len;) {
			ssize_t n;

			if (have) {
				size_t take = have < q.body_len - got ? have : q.body_len - got;

				memcpy(q.body + got, buf, take);
				memmove(buf, buf + take, have - take);
				have -= take;
				got += take;
				continue;
			}
			n = recv(fd, q.body + got, q.body_len - got, 0);
			if (n <= 0) {
				free(q.body);
				goto out;
			}
			got += (size_t)n;
		}
		pthread_mutex_lock(&s->mu);
		fake_handle(s, &q, &r);
		pthread_mutex_unlock(&s->mu);
		free(q.body);
		/* A slow server: answers late (the client may give up meanwhile). */
		for (int64_t t0 = now_ms(); now_ms() - t0 < r.delay_ms && !stopping(s);)
			usleep(10000);
		/* A HEAD's Content-Length is the object's size; it has no body. */
		snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n%sContent-Length: %llu\r\n\r\n",
		         r.status, r.headers,
		         r.head_size
		             ? (unsigned long long)r.head_size
		             : (unsigned long long)(strcmp(q.method, "HEAD") ? r.body_len : 0));
		if (send(fd, out, strlen(out), MSG_NOSIGNAL) < 0 ||
		    (strcmp(q.method, "HEAD") && r.body_len &&
		     send(fd, r.body, r.body_len, MSG_NOSIGNAL) < 0)) {
			free(r.body);
			break;
		}
		free(r.body);
	}
out:
	free(buf);
	return NULL;
}

static void *fake_accept(void *arg)
{
	struct fake_srv *s = arg;

	while (!stopping(s)) {
		struct pollfd p = {s->lfd, POLLIN, 0};
		struct conn_arg *ca;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		ca = malloc(sizeof(*ca));
		ca->s = s;
		ca->fd = fd;
		pthread_mutex_lock(&s->mu);
		if (s->nconns < MAX_CONNS &&
		    pthread_create(&s->conn_th[s->nconns], NULL, fake_conn, ca) == 0) {
			s->conn_fd[s->nconns++] = fd;
		} else {
			close(fd);
			free(ca);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static struct fake_srv *fake_start(const struct fake_cfg *cfg)
{
	struct fake_srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	assert_non_null(s);
	s->cfg = *cfg;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 64), 0);
	getsockname(s->lfd, (struct sockaddr *)&a, &alen);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->accept_th, NULL, fake_accept, s), 0);
	return s;
}

static void fake_stop(struct fake_srv *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	for (int i = 0; i < s->nconns; i++)
		shutdown(s->conn_fd[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->accept_th, NULL);
	for (int i = 0; i < s->nconns; i++) {
		pthread_join(s->conn_th[i], NULL);
		close(s->conn_fd[i]);
	}
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* How many logged requests contain text. */
static int fake_count(struct fake_srv *s, const char *text)
{
	int n = 0;

	pthread_mutex_lock(&s->mu);
	for (const char *p = s->log; (p = strstr(p, text)) != NULL; p += strlen(text))
		n++;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static int fake_requests(struct fake_srv *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->nrequests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */
/* ------------------------------------------------------------------------ */

static struct storage *open_s3(struct fake_srv *s, int concurrency, int max_attempts)
{
	struct storage_options o;
	struct storage *st = NULL;
	char ep[64];

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s->port);
	memset(&o, 0, sizeof(o));
	o.type = "s3";
	o.s3.endpoint = ep;
	o.s3.bucket = "b";
	o.s3.prefix = "p";
	o.s3.region = "us-east-1";
	o.s3.access_key = "AKIDEXAMPLE";
	o.s3.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	o.s3.part_size = PART;
	o.s3.upload_concurrency = concurrency;
	o.s3.download_concurrency = concurrency;
	o.s3.max_attempts = max_attempts;
	o.s3.timeout_s = 10;
	assert_int_equal(storage_open(&o, &st), 0);
	return st;
}

/* Writes nparts full parts (and a short tail) to key; returns write_data's
 * first error (the write is left open for the caller to commit or abort). */
static int write_parts(struct storage *st, const char *key, int nparts, struct storage_write **w)
{
	static uint8_t chunk[PART / 2];
	int rc = 0;

	memset(chunk, 'x', sizeof(chunk));
	assert_int_equal(storage_write_new(st, key, w), 0);
	for (int i = 0; !rc && i < nparts * 2; i++)
		rc = storage_write_data(*w, chunk, sizeof(chunk));
	if (!rc)
		rc = storage_write_data(*w, chunk, 100);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                      */
/* ------------------------------------------------------------------------ */

/* A part answered 500 once is sent again; the object completes. */
static void test_part_fails_once(void **state)
{
	struct fake_cfg cfg = {.fail_part = 2, .fail_times = 1};
	struct fake_srv *s = fake_start(&cfg);
	struct storage *st = open_s3(s, 4, 3);
	struct storage_write *w;

	(void)state;
	assert_int_equal(fake_requests(s), 0); /* opening sends nothing */
	assert_int_equal(write_parts(st, "k/once", 5, &w), 0);
	assert_int_equal(storage_write_commit(w), 0);
	assert_int_equal(fake_count(s, "partNumber=2&"), 2);
	assert_int_equal(fake_count(s, "POST /b/p/k/once?uploadId=up1"), 1);
	assert_int_equal(fake_count(s, "DELETE"), 0);
	storage_free(st);
	fake_stop(s);
}

/* A part that always fails, with 8 workers: commit fails, nothing completes,
 * the upload is aborted. Repeated: the race between the workers' error and
 * the caller (issue 11) showed under ThreadSanitizer in 4 runs of 8. */
static void test_part_fails_forever(void **state)
{
	(void)state;
	for (int round = 0; round < 8; round++) {
		struct fake_cfg cfg = {.fail_part = 3, .fail_times = -1};
		struct fake_srv *s = fake_start(&cfg);
		struct storage *st = open_s3(s, 8, 2);
		struct storage_write *w;
		int rc;

		rc = write_parts(st, "k/forever", 24, &w);
		/* write_data may see the failure already (a buffer it waited for);
		 * then commit must give the same error, and store nothing. */
		assert_true(rc == 0 || rc == CF_ERR_STORAGE);
		assert_int_equal(storage_write_commit(w), CF_ERR_STORAGE);
		assert_non_null(strstr(error_message(), "HTTP 500"));
		assert_int_equal(fake_count(s, "?uploadId=up1\n"), 1); /* the abort */
		assert_int_equal(fake_count(s, "DELETE /b/p/k/forever?uploadId=up1"), 1);
		assert_int_equal(fake_count(s, "POST /b/p/k/forever?uploadId"), 0);
		storage_free(st);
		fake_stop(s);
	}
}

/* CompleteMultipartUpload answering 200 with an <Error> body fails. */
static void test_complete_error_in_200(void **state)
{
	struct fake_cfg cfg = {.complete_error = 1};
	struct fake_srv *s = fake_start(&cfg);
	struct storage *st = open_s3(s, 2, 2);
	struct storage_write *w;

	(void)state;
	assert_int_equal(write_parts(st, "k/c200", 2, &w), 0);
	assert_int_equal(storage_write_commit(w), CF_ERR_STORAGE);
	assert_non_null(strstr(error_message(), "InternalError"));
	assert_int_equal(fake_count(s, "DELETE /b/p/k/c200?uploadId=up1"), 1);
	storage_free(st);
	fake_stop(s);
}

/* A failed write_data (CreateMultipartUpload refused): commit fails with that
 * error and stores nothing (no single PUT of what was buffered). */
static void test_commit_after_failed_write(void **state)
{
	struct fake_cfg cfg = {.initiate_403 = 1};
	struct fake_srv *s = fake_start(&cfg);
	struct storage *st = open_s3(s, 2, 2);
	struct storage_write *w;

	(void)state;
	assert_int_equal(write_parts(st, "k/failed", 3, &w), CF_ERR_AUTH);
	assert_int_equal(storage_write_commit(w), CF_ERR_AUTH);
	assert_non_null(strstr(error_message(), "denied"));
	assert_int_equal(fake_count(s, "PUT"), 0);
	/* The same after a part failed and write_data saw it. */
	storage_free(st);
	fake_stop(s);
	{
		struct fake_cfg c2 = {.fail_part = 1, .fail_times = -1};

		s = fake_start(&c2);
		st = open_s3(s, 1, 1);
		assert_int_equal(write_parts(st, "k/failed2", 40, &w), CF_ERR_STORAGE);
		assert_int_equal(storage_write_commit(w), CF_ERR_STORAGE);
		assert_int_equal(fake_count(s, "POST /b/p/k/failed2?uploadId"), 0);
		assert_int_equal(fake_count(s, "DELETE /b/p/k/failed2?uploadId=up1"), 1);
		storage_free(st);
		fake_stop(s);
	}
}

/* A missing bucket is found by the first request, in one clear line. */
static void test_missing_bucket(void **state)
{
	struct fake_cfg cfg = {.no_bucket = 1};
	struct fake_srv *s = fake_start(&cfg);
	struct storage *st = open_s3(s, 2, 2);
	const char *keys[] = {"a"};

	(void)state;
	assert_int_equal(fake_requests(s), 0);
	assert_int_equal(storage_delete(st, "a"), CF_ERR_NOTFOUND);
	assert_non_null(strstr(error_message(), "bucket s3://b/p/ does not exist"));
	assert_int_equal(storage_delete_many(st, keys, 1), CF_ERR_NOTFOUND);
	assert_non_null(strstr(error_message(), "does not exist"));
	storage_free(st);
	fake_stop(s);
}

/* A bucket in another region: the error says which, and what to set. */
static void test_other_region(void **state)
{
	struct fake_cfg cfg = {.other_region = 1};
	struct fake_srv *s = fake_start(&cfg);
	struct storage *st = open_s3(s, 2, 2);
	struct storage_info info;

	(void)state;
	assert_int_equal(storage_head(st, "a", &info), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "bucket b is in region eu-west-3, not"));
	assert_non_null(strstr(error_message(), "set region = eu-west-3"));
	assert_int_equal(fake_requests(s), 1); /* not retried */
	storage_free(st);
	fake_stop(s);
}

static int delete_batches;

/* DeleteObjects: 2,500 keys go in 3 requests, each with Content-MD5 and
 * Quiet; a missing key is success; a per-key error fails naming the first
 * key (in the caller's order) that was not deleted. */
static void test_delete_many(void **state)
{
	struct fake_cfg cfg = {0};
	struct fake_srv *s = fake_start(&cfg);
	struct storage *st = open_s3(s, 2, 2);
	static char names[2500][32];
	const char *keys[2500];

	(void)state;
	for (int i = 0; i < 2500; i++) {
		snprintf(names[i], sizeof(names[i]), "src/id/obj%04d", i);
		keys[i] = names[i];
	}
	assert_int_equal(storage_delete_many(st, keys, 2500), 0);
	delete_batches = fake_count(s, "POST /b?delete");
	assert_int_equal(delete_batches, 3);
	assert_int_equal(s->missing_md5 + s->not_quiet, 0);
	storage_free(st);
	fake_stop(s);

	cfg.delete_reply = "<DeleteResult><Error><Key>p/src/id/obj0001</Key><Code>NoSuchKey"
	                   "</Code></Error></DeleteResult>";
	s = fake_start(&cfg);
	st = open_s3(s, 2, 2);
	assert_int_equal(storage_delete_many(st, keys, 3), 0);
	storage_free(st);
	fake_stop(s);

	cfg.delete_reply = "<DeleteResult><Error><Key>p/src/id/obj0002</Key><Code>AccessDenied"
	                   "</Code><Message>no</Message></Error><Error><Key>p/src/id/obj0001</Key>"
	                   "<Code>InternalError</Code><Message>later</Message></Error>"
	                   "</DeleteResult>";
	s = fake_start(&cfg);
	st = open_s3(s, 2, 2);
	assert_int_equal(storage_delete_many(st, keys, 3), CF_ERR_STORAGE);
	assert_non_null(strstr(error_message(), "src/id/obj0001: InternalError"));
	storage_free(st);
	fake_stop(s);
}

static size_t read_max_chunk;
static uint64_t read_total;
static int read_bad;

static int read_cb(void *ctx, const uint8_t *data, size_t len)
{
	(void)ctx;
	if (len > read_max_chunk)
		read_max_chunk = len;
	for (size_t i = 0; i < len; i++)
		if (data[i] != (uint8_t)((read_total + i) % 251))
			read_bad = 1;
	read_total += len;
	return 0;
}

/* storage.h: cb gets at most 1 MiB at a time, whatever the range size. */
static void test_read_chunks(void **state)
{
	struct fake_cfg cfg = {.object_size = 7 * 1024 * 1024 + 5};
	struct fake_srv *s = fake_start(&cfg);
	struct storage_options o;
	struct storage *st = NULL;
	char ep[64];

	(void)state;
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s->port);
	memset(&o, 0, sizeof(o));
	o.type = "s3";
	o.s3.endpoint = ep;
	o.s3.bucket = "b";
	o.s3.access_key = "AKIDEXAMPLE";
	o.s3.secret_key = "secret";
	o.s3.part_size = 3 * 1024 * 1024; /* ranges of 3 MiB */
	o.s3.download_concurrency = 2;
	assert_int_equal(storage_open(&o, &st), 0);
	assert_int_equal(storage_read(st, "obj", 0, UINT64_MAX, read_cb, NULL), 0);
	assert_int_equal(read_total, cfg.object_size);
	assert_false(read_bad);
	assert_true(read_max_chunk <= 1024 * 1024);
	storage_free(st);
	fake_stop(s);
}

/* ------------------------------------------------------------------------ */
/* Cancellation (one per process)                                             */
/* ------------------------------------------------------------------------ */

static int64_t cancel_at_ms;

static void *cancel_after(void *arg)
{
	usleep((useconds_t)(intptr_t)arg * 1000);
	cancel_at_ms = now_ms();
	cancel_set(SIGINT);
	return NULL;
}

/* Cancels after delay_ms while a 12-part upload is in flight: commit must
 * return CF_ERR_INTERRUPTED within a second, and the upload be aborted. */
static void cancel_run(const struct fake_cfg *cfg, int delay_ms, const char *what)
{
	struct fake_srv *s = fake_start(cfg);
	struct storage *st = open_s3(s, 4, 10);
	struct storage_write *w;
	pthread_t th;
	int64_t done;
	int rc;

	assert_int_equal(pthread_create(&th, NULL, cancel_after, (void *)(intptr_t)delay_ms), 0);
	rc = write_parts(st, "k/cancel", 12, &w);
	assert_true(rc == 0 || rc == CF_ERR_INTERRUPTED);
	rc = storage_write_commit(w);
	done = now_ms();
	pthread_join(th, NULL);
	printf("# cancel during %s: commit returned %d after %lld ms\n", what, rc,
	       (long long)(done - cancel_at_ms));
	assert_int_equal(rc, CF_ERR_INTERRUPTED);
	assert_true(done - cancel_at_ms < 1000);
	assert_int_equal(fake_count(s, "DELETE /b/p/k/cancel?uploadId=up1"), 1);
	assert_int_equal(fake_count(s, "POST /b/p/k/cancel?uploadId"), 0);
	storage_free(st);
	fake_stop(s);
}

/* Every part takes 6 s to answer: the cancellation finds them in transfer. */
static void test_cancel_transfer(void **state)
{
	struct fake_cfg cfg = {.part_delay_ms = 6000};

	(void)state;
	cancel_run(&cfg, 1000, "transfer");
}

/* Part 1 is answered 503 SlowDown always: with up to 10 attempts, the
 * cancellation finds its worker sleeping in the backoff. */
static void test_cancel_backoff(void **state)
{
	struct fake_cfg cfg = {.fail_part = 1, .fail_times = -1, .fail_status = 503};

	(void)state;
	cancel_run(&cfg, 1500, "backoff");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_part_fails_once),
	    cmocka_unit_test(test_part_fails_forever),
	    cmocka_unit_test(test_complete_error_in_200),
	    cmocka_unit_test(test_commit_after_failed_write),
	    cmocka_unit_test(test_missing_bucket),
	    cmocka_unit_test(test_other_region),
	    cmocka_unit_test(test_delete_many),
	    cmocka_unit_test(test_read_chunks),
	};
	const struct CMUnitTest transfer[] = {cmocka_unit_test(test_cancel_transfer)};
	const struct CMUnitTest backoff[] = {cmocka_unit_test(test_cancel_backoff)};
	const struct CMUnitTest race[] = {cmocka_unit_test(test_part_fails_forever)};

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "cancel-transfer"))
		return cmocka_run_group_tests(transfer, NULL, NULL);
	if (argc > 1 && !strcmp(argv[1], "cancel-backoff"))
		return cmocka_run_group_tests(backoff, NULL, NULL);
	if (argc > 1 && !strcmp(argv[1], "race")) /* the stress alone, for TSan runs by hand */
		return cmocka_run_group_tests(race, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
