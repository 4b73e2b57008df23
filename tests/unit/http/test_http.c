/*
 * Tests of http/http.c against a scripted HTTP server: a thread on
 * 127.0.0.1 that answers each path from a script (503 twice then 200, a
 * Retry-After, a 403, a reply that never comes) and counts the requests, so
 * the tests check retries, the Retry-After bound, no retry of a permanent
 * failure, the cancellation of a slow transfer, and that the debug log
 * redacts the secrets the server did receive.
 *
 * The cancellation test runs last: a cancellation cannot be undone within a
 * process.
 */
#include "http/http.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64

/* ------------------------------------------------------------------------ */
/* The scripted server                                                        */
/* ------------------------------------------------------------------------ */

struct srv {
	int lfd, port;
	pthread_t accept_th;
	pthread_mutex_t mu; /* everything below */
	int stopping;
	int nrequests;
	int flaky_left;      /* /flaky answers 503 this many more times */
	int after_left;      /* /after answers 503 with Retry-After this many more times */
	char last_auth[256]; /* the Authorization header of the last request */
	pthread_t conn_th[MAX_CONNS];
	int conn_fd[MAX_CONNS];
	int nconns;
};

static struct srv *srv;

static int srv_stopping(struct srv *s)
{
	int stop;

	pthread_mutex_lock(&s->mu);
	stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static void srv_send(int fd, int status, const char *extra, const char *body)
{
	char out[1024];
	int n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n%s",
	                 status, extra, strlen(body), body);

	(void)!send(fd, out, (size_t)n, MSG_NOSIGNAL);
}

static void *srv_conn(void *arg)
{
	struct srv *s = srv;
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	size_t have = 0;

	for (;;) {
		char method[16] = "", path[1024] = "", *e, *h;
		size_t head_len, body_len = 0;
		ssize_t n;

		while (!(e = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL)) {
			if (have == sizeof(buf) - 1)
				goto out;
			n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		head_len = (size_t)(e - buf) + 4;
		buf[have] = '\0';
		sscanf(buf, "%15s %1023s", method, path);
		h = strcasestr(buf, "\r\ncontent-length:");
		if (h && h < e)
			body_len = strtoul(h + 17, NULL, 10);
		pthread_mutex_lock(&s->mu);
		s->nrequests++;
		s->last_auth[0] = '\0';
		h = strcasestr(buf, "\r\nauthorization:");
		if (h && h < e)
			sscanf(h + 16, " %255[^\r]", s->last_auth);
		pthread_mutex_unlock(&s->mu);
		/* The body (short in these tests) is dropped. */
		while (have < head_len + body_len) {
			n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		memmove(buf, buf + head_len + body_len, have - head_len - body_len);
		have -= head_len + body_len;

		if (!strcmp(path, "/ok")) {
			srv_send(fd, 200, "", "fine");
		} else if (!strcmp(path, "/flaky")) {
			int fail;

			pthread_mutex_lock(&s->mu);
			fail = s->flaky_left > 0 ? s->flaky_left-- : 0;
			pthread_mutex_unlock(&s->mu);
			if (fail)
				srv_send(fd, 503, "", "busy");
			else
				srv_send(fd, 200, "", "fine");
		} else if (!strcmp(path, "/after") || !strcmp(path, "/after-long")) {
			int fail;

			pthread_mutex_lock(&s->mu);
			fail = s->after_left > 0 ? s->after_left-- : 0;
			pthread_mutex_unlock(&s->mu);
			if (fail && !strcmp(path, "/after"))
				srv_send(fd, 503, "Retry-After: 1\r\n", "later");
			else if (fail)
				srv_send(fd, 429, "Retry-After: 3600\r\n", "much later");
			else
				srv_send(fd, 200, "", "fine");
		} else if (!strcmp(path, "/forbidden")) {
			srv_send(fd, 403, "", "no");
		} else if (!strcmp(path, "/slow")) {
			/* Answers after 10 s, or when the server stops. */
			for (int i = 0; i < 1000 && !srv_stopping(s); i++)
				usleep(10000);
			srv_send(fd, 200, "", "late");
		} else {
			srv_send(fd, 404, "", "?");
		}
	}
out:
	return NULL;
}

static void *srv_accept(void *arg)
{
	struct srv *s = arg;

	while (!srv_stopping(s)) {
		struct pollfd p = {s->lfd, POLLIN, 0};
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->mu);
		if (s->nconns < MAX_CONNS && pthread_create(&s->conn_th[s->nconns], NULL, srv_conn,
		                                            (void *)(intptr_t)fd) == 0)
			s->conn_fd[s->nconns++] = fd;
		else
			close(fd);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int srv_start(void **state)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	(void)state;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -1;
	pthread_mutex_init(&srv->mu, NULL);
	srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(srv->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(srv->lfd, 16))
		return -1;
	getsockname(srv->lfd, (struct sockaddr *)&a, &alen);
	srv->port = ntohs(a.sin_port);
	return pthread_create(&srv->accept_th, NULL, srv_accept, srv) ? -1 : 0;
}

static int srv_stop(void **state)
{
	(void)state;
	pthread_mutex_lock(&srv->mu);
	srv->stopping = 1;
	for (int i = 0; i < srv->nconns; i++)
		shutdown(srv->conn_fd[i], SHUT_RDWR);
	pthread_mutex_unlock(&srv->mu);
	pthread_join(srv->accept_th, NULL);
	for (int i = 0; i < srv->nconns; i++) {
		pthread_join(srv->conn_th[i], NULL);
		close(srv->conn_fd[i]);
	}
	close(srv->lfd);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
	return 0;
}

static int srv_requests(void)
{
	int n;

	pthread_mutex_lock(&srv->mu);
	n = srv->nrequests;
	srv->nrequests = 0;
	pthread_mutex_unlock(&srv->mu);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */
/* ------------------------------------------------------------------------ */

/* The jitter pinned to its ceiling, so waits are known. */
static uint32_t random_max(uint32_t upper)
{
	return upper;
}

static struct http_client *client(int max_attempts)
{
	struct http_client_options o;
	struct http_client *c = NULL;

	memset(&o, 0, sizeof(o));
	o.name = "test";
	o.connect_timeout_ms = 2000;
	o.stall_timeout_s = 20;
	o.max_attempts = max_attempts;
	o.backoff_base_ms = 20;
	o.backoff_cap_ms = 100;
	o.retry_after_max_ms = 1500;
	o.random = random_max;
	assert_int_equal(http_client_new(&o, &c), 0);
	return c;
}

struct ctx {
	const char *auth; /* an Authorization value to send, or NULL */
	int prepared;     /* prepare() calls */
};

static int prepare(void *arg, struct http_attempt *a)
{
	struct ctx *x = arg;

	x->prepared++;
	assert_int_equal(http_attempt_number(a), x->prepared);
	if (x->auth) {
		assert_int_equal(http_attempt_header(a, "Authorization", x->auth), 0);
		assert_int_equal(http_attempt_header(a, "X-Amz-Security-Token", "tok3n"), 0);
		assert_int_equal(http_attempt_header(a, "Cookie", "session=c00kie"), 0);
		assert_int_equal(http_attempt_header(a, "X-Amz-Content-Sha256", "abc123"), 0);
	}
	return 0;
}

/* GETs path with the default classify(); returns http_perform()'s result. */
static int get(struct http_client *c, const char *path, struct ctx *x, struct buf *body,
               struct http_response *resp)
{
	struct http_request req;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv->port, path);
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.what = path;
	req.prepare = prepare;
	req.ctx = x;
	req.reply = body;
	return http_perform(c, &req, resp);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                      */
/* ------------------------------------------------------------------------ */

static void test_retry_then_success(void **state)
{
	struct http_client *c = client(4);
	struct http_response resp;
	struct ctx x = {0};
	struct buf body;

	(void)state;
	srv_requests();
	pthread_mutex_lock(&srv->mu);
	srv->flaky_left = 2;
	pthread_mutex_unlock(&srv->mu);
	buf_init(&body, 4096);
	assert_int_equal(get(c, "/flaky", &x, &body, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 3);
	assert_int_equal(x.prepared, 3); /* prepare() runs before every attempt */
	assert_int_equal(srv_requests(), 3);
	assert_int_equal(body.len, 4);
	assert_memory_equal(body.data, "fine", 4);

	/* Always 503 with two attempts: retries exhausted. */
	pthread_mutex_lock(&srv->mu);
	srv->flaky_left = 10;
	pthread_mutex_unlock(&srv->mu);
	http_client_free(c);
	c = client(2);
	x.prepared = 0;
	assert_int_equal(get(c, "/flaky", &x, &body, &resp), CF_ERR_NETWORK);
	assert_int_equal(resp.status, 503);
	assert_non_null(strstr(error_message(), "HTTP 503 (retries exhausted)"));
	assert_int_equal(srv_requests(), 2);
	buf_free(&body);
	http_client_free(c);
}

static void test_retry_after(void **state)
{
	struct http_client *c = client(3);
	struct http_response resp;
	struct ctx x = {0};
	int64_t t0, ms;

	(void)state;
	srv_requests();
	/* Retry-After: 1 is obeyed (the backoff alone would be 20 ms). */
	pthread_mutex_lock(&srv->mu);
	srv->after_left = 1;
	pthread_mutex_unlock(&srv->mu);
	t0 = time_now_ms();
	assert_int_equal(get(c, "/after", &x, NULL, &resp), 0);
	ms = time_now_ms() - t0;
	assert_int_equal(srv_requests(), 2);
	assert_true(ms >= 950);
	assert_true(ms < 5000);

	/* Retry-After: 3600 is cut to retry_after_max_ms (1.5 s). */
	pthread_mutex_lock(&srv->mu);
	srv->after_left = 1;
	pthread_mutex_unlock(&srv->mu);
	x.prepared = 0;
	t0 = time_now_ms();
	assert_int_equal(get(c, "/after-long", &x, NULL, &resp), 0);
	ms = time_now_ms() - t0;
	assert_int_equal(srv_requests(), 2);
	assert_true(ms >= 1450);
	assert_true(ms < 5000); /* not 3600 s */
	http_client_free(c);
}

static void test_permanent_not_retried(void **state)
{
	struct http_client *c = client(5);
	struct http_response resp;
	struct ctx x = {0};
	struct buf body;

	(void)state;
	srv_requests();
	buf_init(&body, 4096);
	assert_int_equal(get(c, "/forbidden", &x, &body, &resp), CF_ERR_SOURCE);
	assert_int_equal(resp.status, 403);
	assert_int_equal(resp.attempts, 1);
	assert_int_equal(srv_requests(), 1);
	assert_non_null(strstr(error_message(), "test: /forbidden: HTTP 403"));
	/* The error body is kept for the caller. */
	assert_int_equal(body.len, 2);
	buf_free(&body);

	/* A refused connection is transient: tried max_attempts times. */
	{
		struct http_request req;

		memset(&req, 0, sizeof(req));
		req.method = "GET";
		req.url = "http://127.0.0.1:1/";
		req.what = "GET port 1";
		assert_int_equal(http_perform(c, &req, &resp), CF_ERR_NETWORK);
		assert_int_equal(resp.attempts, 5);
		assert_int_equal(resp.curl_code, CURLE_COULDNT_CONNECT);
		assert_non_null(strstr(error_message(), "after 5 attempts"));
	}
	http_client_free(c);
}

static void test_header_helpers(void **state)
{
	char out[128], v[16] = "untouched";

	(void)state;
	assert_string_equal(http_header_redact("Authorization: AWS4 x\r\n", 23, out, sizeof(out)),
	                    "Authorization: [redacted]");
	assert_string_equal(http_header_redact("x-amz-security-token: t", 23, out, sizeof(out)),
	                    "x-amz-security-token: [redacted]");
	assert_string_equal(http_header_redact("X-Amz-Content-Sha256: ab", 24, out, sizeof(out)),
	                    "X-Amz-Content-Sha256: ab");
	assert_string_equal(http_header_redact("Authorizations: x", 17, out, sizeof(out)),
	                    "Authorizations: x");
	assert_true(http_header_secret("proxy-authorization", 19));
	assert_true(http_header_secret("Set-Cookie", 10));
	assert_false(http_header_secret("Content-Type", 12));
	assert_int_equal(http_header_take("ETag: \"abc\" \r\n", 14, "etag", v, sizeof(v)), 1);
	assert_string_equal(v, "\"abc\"");
	assert_int_equal(http_header_take("ETags: x\r\n", 10, "etag", v, sizeof(v)), 0);
	assert_string_equal(v, "\"abc\"");
}

/* Reads what the test wrote to stderr into a string. */
static char *read_all(int fd)
{
	struct buf b;
	char chunk[4096];
	ssize_t n;

	buf_init(&b, 4 << 20);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		assert_int_equal(buf_append(&b, chunk, (size_t)n), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	return (char *)b.data;
}

static void test_debug_log_redacts(void **state)
{
	struct http_client *c = client(1);
	struct http_response resp;
	struct ctx x = {.auth = "Bearer s3cr3t-t0ken"};
	char path[] = COFFER_TEST_TMP "/http-log-XXXXXX";
	int fd, saved;
	char *log;

	(void)state;
	fs_mkdir_p(COFFER_TEST_TMP, 0700);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_set_level(LOG_LEVEL_DEBUG);
	assert_int_equal(get(c, "/ok", &x, NULL, &resp), 0);
	log_set_level(LOG_LEVEL_WARN);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log = read_all(fd);
	close(fd);
	/* The server got the secret; the log shows the header without it. */
	pthread_mutex_lock(&srv->mu);
	assert_string_equal(srv->last_auth, "Bearer s3cr3t-t0ken");
	pthread_mutex_unlock(&srv->mu);
	assert_non_null(strstr(log, "test: > GET /ok HTTP/1.1"));
	assert_non_null(strstr(log, "test: > Authorization: [redacted]"));
	assert_non_null(strstr(log, "test: > X-Amz-Security-Token: [redacted]"));
	assert_non_null(strstr(log, "test: > Cookie: [redacted]"));
	assert_non_null(strstr(log, "test: > X-Amz-Content-Sha256: abc123"));
	assert_non_null(strstr(log, "test: < HTTP/1.1 200"));
	assert_null(strstr(log, "s3cr3t"));
	assert_null(strstr(log, "tok3n"));
	assert_null(strstr(log, "c00kie"));
	free(log);
	http_client_free(c);
}

static int64_t cancel_at;

static void *cancel_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	cancel_at = time_now_ms();
	cancel_set(0);
	return NULL;
}

/* Last: a cancellation cannot be undone in this process. */
static void test_cancel_slow(void **state)
{
	struct http_client *c = client(3);
	struct http_response resp;
	struct ctx x = {0};
	pthread_t th;
	int64_t ms;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, cancel_later, NULL), 0);
	assert_int_equal(get(c, "/slow", &x, NULL, &resp), CF_ERR_INTERRUPTED);
	ms = time_now_ms();
	pthread_join(th, NULL);
	ms -= cancel_at;
	printf("# cancel during a slow reply: returned after %lld ms\n", (long long)ms);
	assert_true(ms < 1000);
	assert_int_equal(resp.attempts, 1);
	assert_non_null(strstr(error_message(), "test: /slow: interrupted by a signal"));
	/* Once cancelled, nothing starts. */
	assert_int_equal(get(c, "/ok", &x, NULL, &resp), CF_ERR_INTERRUPTED);
	assert_int_equal(resp.attempts, 0);
	http_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_then_success),    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_permanent_not_retried), cmocka_unit_test(test_header_helpers),
	    cmocka_unit_test(test_debug_log_redacts),     cmocka_unit_test(test_cancel_slow),
	};

	return cmocka_run_group_tests(tests, srv_start, srv_stop);
}
