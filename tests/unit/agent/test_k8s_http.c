/* Tests agent/source/kubernetes/k8s_http.c, k8s_list.c and k8s_discover() against a
 * small plain-HTTP server forked by the test (loopback only): the bearer
 * and basic Authorization headers, renewal of a token file on a 401, the
 * error for each kind of reply, pagination with URL-encoded continue tokens
 * and label selectors, the restart of an expired list without giving an
 * object twice, discovery with a group version that fails, and a
 * cancellation stopping a wait before another try and a transfer. */
#include "agent/source/kubernetes/k8s_intern.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define DISCOVERY COFFER_TESTDATA "/k8s-discovery"
#define SELECTOR_Q "labelSelector=app%20in%20%28a%2Cb%29"
#define DEPLOY "/apis/apps/v1/namespaces/default/deployments?limit=2&" SELECTOR_Q

static char dir[512], kubeconfig[600], token_path[600], log_path[600];
static int port;
static pid_t server;

/* ------------------------------------------------------------------------ */
/* The server (a child process)                                               */
/* ------------------------------------------------------------------------ */

struct srv_state {
	int restarted;   /* the deployments list expired once */
	int unavailable; /* /flaky answered 503 once */
};

static void srv_reply(int fd, int code, const char *extra, const char *body, size_t len)
{
	char head[512];
	int n = snprintf(
	    head, sizeof(head),
	    "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
	    code, len, extra ? extra : "");

	struct iovec v[2] = {{head, (size_t)n}, {(void *)(uintptr_t)body, len}};

	/* One write: two would wait for a delayed ACK (Nagle) each time. */
	(void)!writev(fd, v, 2);
}

static void srv_text(int fd, int code, const char *body)
{
	srv_reply(fd, code, NULL, body, strlen(body));
}

static void srv_status(int fd, int code, const char *reason, const char *msg)
{
	char body[1024];

	snprintf(
	    body, sizeof(body),
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}",
	    msg, reason, code);
	srv_text(fd, code, body);
}

static void srv_file(int fd, const char *name)
{
	char p[1024];
	struct buf b;

	snprintf(p, sizeof(p), "%s/%s", DISCOVERY, name);
	buf_init(&b, 16 * 1024 * 1024);
	if (fs_read_file(p, b.max, &b) == 0)
		srv_reply(fd, 200, NULL, (const char *)b.data, b.len);
	else
		srv_status(fd, 404, "NotFound", "the server could not find the requested resource");
	buf_free(&b);
}

/* A list page of items named by uid ("-" for an item without one). */
static void srv_page(int fd, const char *cont, const char *const *uids)
{
	char body[4096];
	size_t n = 0;

	n += (size_t)snprintf(
	    body + n, sizeof(body) - n,
	    "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\","
	    "\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"%s\"},\"items\":[",
	    cont);
	for (size_t i = 0; uids[i]; i++) {
		if (strcmp(uids[i], "-") != 0)
			n += (size_t)snprintf(body + n, sizeof(body) - n,
			                      "%s{\"metadata\":{\"name\":\"n-%s\",\"uid\":\"%s\"},"
			                      "\"spec\":{}}",
			                      i ? "," : "", uids[i], uids[i]);
		else
			n += (size_t)snprintf(body + n, sizeof(body) - n,
			                      "%s{\"metadata\":{\"name\":\"no-uid\"}}",
			                      i ? "," : "");
	}
	n += (size_t)snprintf(body + n, sizeof(body) - n, "]}");
	srv_reply(fd, 200, NULL, body, n);
}

static void srv_request(struct srv_state *st, int fd, const char *req)
{
	const char *auth = strcasestr(req, "\r\nAuthorization: ");
	char path[2048] = "", token[512] = "";
	FILE *f;

	if (sscanf(req, "GET %2047s HTTP/1.1", path) != 1) {
		srv_status(fd, 405, "MethodNotAllowed", "only GET");
		return;
	}
	if (auth)
		sscanf(auth + 17, "%511[^\r]", token);
	f = fopen(log_path, "a");
	if (f) {
		fprintf(f, "%s\n", path);
		fclose(f);
	}
	if (!strcasestr(req, "\r\nAccept: application/json\r\n")) {
		srv_status(fd, 406, "NotAcceptable", "no Accept: application/json");
		return;
	}
	if (!strcmp(path, "/whoami")) {
		if (strcmp(token, "Bearer new-token") != 0)
			srv_status(fd, 401, "Unauthorized", "Unauthorized");
		else
			srv_text(fd, 200, "{\"user\":\"new\"}");
	} else if (!strcmp(path, "/basic")) {
		/* alice:p@ss */
		srv_text(fd, strcmp(token, "Basic YWxpY2U6cEBzcw==") ? 401 : 200, "{}");
	} else if (!strcmp(path, "/e403")) {
		srv_status(fd, 403, "Forbidden",
		           "pods is forbidden: User \\\"system:anonymous\\\" cannot list resource "
		           "\\\"pods\\\"");
	} else if (!strcmp(path, "/e404")) {
		srv_status(fd, 404, "NotFound", "the server could not find the requested resource");
	} else if (!strcmp(path, "/e500")) {
		srv_text(fd, 500, "<html>\n<b>oops</b></html>");
	} else if (!strcmp(path, "/notjson")) {
		srv_text(fd, 200, "hello");
	} else if (!strcmp(path, "/flaky")) {
		if (st->unavailable++ == 0)
			srv_reply(fd, 503, "Retry-After: 1\r\n", "{}", 2);
		else
			srv_text(fd, 200, "{\"ok\":true}");
	} else if (!strcmp(path, "/busy")) {
		srv_reply(fd, 429, "Retry-After: 10\r\n", "{}", 2);
	} else if (!strcmp(path, "/slow")) {
		/* No reply: the client waits until it gives up. */
	} else if (!strcmp(path, "/version")) {
		srv_text(fd, 200, "{\"major\":\"1\",\"minor\":\"30\",\"gitVersion\":\"v1.30.2\"}");
	} else if (!strcmp(path, "/api/v1")) {
		srv_file(fd, "api__v1.json");
	} else if (!strcmp(path, "/apis")) {
		srv_file(fd, "apis.json");
	} else if (!strcmp(path, "/apis/flowcontrol.apiserver.k8s.io/v1")) {
		srv_status(fd, 403, "Forbidden", "no flow control for you");
	} else if (!strncmp(path, "/apis/", 6) && strchr(path + 6, '/') &&
	           !strchr(strchr(path + 6, '/') + 1, '/')) {
		char name[2100];

		snprintf(name, sizeof(name), "apis__%s.json", path + 6);
		*strchr(name + 6, '/') = '\0';
		strncat(name, "__", sizeof(name) - strlen(name) - 1);
		strncat(name, strchr(path + 6, '/') + 1, sizeof(name) - strlen(name) - 1);
		strncat(name, ".json", sizeof(name) - strlen(name) - 1);
		srv_file(fd, name);
	} else if (!strcmp(path, DEPLOY)) {
		static const char *const first[] = {"u1", "u2", NULL};

		srv_page(fd, st->restarted ? "tok2" : "tok/1=", first);
	} else if (!strcmp(path, DEPLOY "&continue=tok%2F1%3D")) {
		st->restarted = 1;
		srv_status(
		    fd, 410, "Expired",
		    "The provided continue parameter is too old to display a consistent list "
		    "result.");
	} else if (!strcmp(path, DEPLOY "&continue=tok2")) {
		static const char *const second[] = {"u3", "-", "u2", NULL};

		srv_page(fd, "", second);
	} else if (!strcmp(path, "/api/v1/pods?limit=500") ||
	           !strcmp(path, "/api/v1/nodes?limit=500")) {
		static const char *const one[] = {"p1", "p2", "p3", NULL};

		srv_page(fd, "", one);
	} else if (!strncmp(path, "/apis/x.io/v1/things?limit=500", 30)) {
		static const char *const one[] = {"t1", NULL};

		if (strstr(path, "&continue="))
			srv_status(fd, 410, "Expired", "too old");
		else
			srv_page(fd, "c", one);
	} else {
		char msg[2100];

		snprintf(msg, sizeof(msg), "unexpected path %s", path);
		srv_status(fd, 400, "BadRequest", msg);
	}
}

/* Serves keep-alive connections (a few at once) until killed. */
static void srv_loop(int lfd)
{
	struct srv_state st = {0, 0};
	static struct {
		int fd;
		size_t len;
		char buf[16384];
	} c[16];
	struct pollfd p[17];
	int n = 0;

	for (;;) {
		p[0].fd = lfd;
		p[0].events = POLLIN;
		for (int i = 0; i < n; i++) {
			p[i + 1].fd = c[i].fd;
			p[i + 1].events = POLLIN;
		}
		if (poll(p, (nfds_t)n + 1, -1) < 0)
			continue;
		for (int i = 0; i < n; i++) {
			ssize_t r;
			char *end;

			if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(c[i].fd, c[i].buf + c[i].len, sizeof(c[i].buf) - c[i].len - 1);
			if (r <= 0) {
				close(c[i].fd);
				c[i].fd = -1;
				continue;
			}
			c[i].len += (size_t)r;
			c[i].buf[c[i].len] = '\0';
			while ((end = strstr(c[i].buf, "\r\n\r\n"))) {
				size_t used = (size_t)(end + 4 - c[i].buf);

				end[2] = '\0';
				srv_request(&st, c[i].fd, c[i].buf);
				memmove(c[i].buf, c[i].buf + used, c[i].len - used + 1);
				c[i].len -= used;
			}
		}
		for (int i = 0; i < n;) {
			if (c[i].fd < 0)
				c[i] = c[--n];
			else
				i++;
		}
		if ((p[0].revents & POLLIN) && n < 16) {
			c[n].fd = accept(lfd, NULL, NULL);
			c[n].len = 0;
			if (c[n].fd >= 0)
				n++;
		}
	}
}

static int setup(void **state)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd;

	(void)state;
	mkdir(COFFER_TEST_TMP, 0755);
	snprintf(dir, sizeof(dir), "%s/k8s-http.%d", COFFER_TEST_TMP, (int)getpid());
	fs_remove_tree(dir);
	if (mkdir(dir, 0700) != 0)
		return -1;
	snprintf(log_path, sizeof(log_path), "%s/requests.log", dir);
	snprintf(token_path, sizeof(token_path), "%s/token", dir);
	snprintf(kubeconfig, sizeof(kubeconfig), "%s/config", dir);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 16) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		return -1;
	port = ntohs(a.sin_port);
	server = fork();
	if (server == 0) {
		signal(SIGPIPE, SIG_IGN);
		srv_loop(lfd);
		_exit(0);
	}
	close(lfd);
	return server > 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	fs_remove_tree(dir);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */
/* ------------------------------------------------------------------------ */

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A client of the test server with user: user_yaml. */
static struct k8s_client *client(const char *server_url, const char *user_yaml)
{
	struct k8s_conn_options o = {kubeconfig, NULL, 0, 5};
	struct k8s_client *c = NULL;
	char text[2048];

	snprintf(text, sizeof(text),
	         "current-context: t\nclusters:\n- name: s\n  cluster: {server: '%s'}\n"
	         "contexts:\n- name: t\n  context: {cluster: s, user: u}\n"
	         "users:\n- name: u\n  user: %s\n",
	         server_url, user_yaml);
	write_file(kubeconfig, text);
	if (k8s_client_open(&o, &c) != 0)
		fail_msg("open: %s", error_message());
	return c;
}

static struct k8s_client *local_client(const char *user_yaml)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	return client(url, user_yaml);
}

static void expect_get_error(struct k8s_client *c, const char *path, int code, long status,
                             const char *want)
{
	json_t *j = NULL;
	long got = -1;
	int rc;

	error_clear();
	rc = k8s_get_json(c, path, &j, &got);
	if (rc != code || got != status || !strstr(error_message(), want))
		fail_msg("GET %s: got %d (HTTP %ld) '%s', wanted %d (HTTP %ld) with '%s'", path, rc,
		         got, error_message(), code, status, want);
	assert_null(j);
}

/* The requests the server saw since the last call, one path a line. */
static char *requests(void)
{
	struct buf b;

	buf_init(&b, 1024 * 1024);
	if (fs_read_file(log_path, b.max, &b) == CF_ERR_NOTFOUND)
		return strdup("");
	unlink(log_path);
	return (char *)b.data;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                      */
/* ------------------------------------------------------------------------ */

static void test_token_renewed_on_401(void **state)
{
	struct k8s_client *c;
	json_t *j = NULL;
	long status = 0;

	(void)state;
	write_file(token_path, "old-token\n");
	c = local_client("{tokenFile: token}");
	assert_string_equal(c->token, "old-token");
	/* The file is rotated after open: the 401 makes the client read it again. */
	write_file(token_path, "new-token\n");
	assert_int_equal(k8s_get_json(c, "/whoami", &j, &status), 0);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "user")), "new");
	json_decref(j);
	k8s_client_free(c);

	/* An inline token cannot be renewed: the 401 is the answer. */
	c = local_client("{token: stale}");
	expect_get_error(c, "/whoami", CF_ERR_AUTH, 401, "HTTP 401 Unauthorized: Unauthorized");
	k8s_client_free(c);
	free(requests());
}

static void test_basic_auth(void **state)
{
	struct k8s_client *c;
	json_t *j = NULL;

	(void)state;
	c = local_client("{username: alice, password: p@ss}");
	assert_int_equal(k8s_get_json(c, "/basic", &j, NULL), 0);
	json_decref(j);
	k8s_client_free(c);
	c = local_client("{username: alice, password: wrong}");
	expect_get_error(c, "/basic", CF_ERR_AUTH, 401, "HTTP 401");
	k8s_client_free(c);
	free(requests());
}

static void test_errors(void **state)
{
	struct k8s_client *c = local_client("{token: t}");
	json_t *j = NULL;
	char *log;

	(void)state;
	expect_get_error(
	    c, "/e403", CF_ERR_AUTH, 403,
	    "HTTP 403 Forbidden: pods is forbidden: User \"system:anonymous\" cannot list");
	expect_get_error(c, "/e404", CF_ERR_NOTFOUND, 404,
	                 "/e404: HTTP 404 Not Found: the server could not find");
	expect_get_error(c, "/e500", CF_ERR_SOURCE, 500,
	                 "HTTP 500 Internal Server Error: <html> <b>oops");
	expect_get_error(c, "/notjson", CF_ERR_FORMAT, 200, "the reply is not JSON");
	/* 503 with Retry-After is tried again. */
	assert_int_equal(k8s_get_json(c, "/flaky", &j, NULL), 0);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	log = requests();
	assert_string_equal(log, "/e403\n/e404\n/e500\n/notjson\n/flaky\n/flaky\n");
	free(log);
	k8s_client_free(c);

	/* Nothing listens on port 1 of the loopback. */
	c = client("https://127.0.0.1:1", "{token: t}");
	expect_get_error(c, "/version", CF_ERR_NETWORK, 0,
	                 "cannot reach the API server https://127.0.0.1:1");
	k8s_client_free(c);
}

static int collect(void *ctx, const struct k8s_resource *r, json_t *item)
{
	struct buf *b = ctx;

	(void)r;
	return buf_printf(
	    b, "%s %s %s\n", json_string_value(json_object_get(item, "apiVersion")),
	    json_string_value(json_object_get(item, "kind")),
	    json_string_value(json_object_get(json_object_get(item, "metadata"), "name")));
}

static int stop_after_one(void *ctx, const struct k8s_resource *r, json_t *item)
{
	(void)r;
	(void)item;
	(*(int *)ctx)++;
	return 1;
}

static int fail_cb(void *ctx, const struct k8s_resource *r, json_t *item)
{
	(void)ctx;
	(void)r;
	(void)item;
	return error_set(CF_ERR_IO, "the sink failed");
}

static void test_list_pages_and_restart(void **state)
{
	char g[] = "apps", v[] = "v1", k[] = "Deployment", n[] = "deployments";
	struct k8s_resource deploy = {g, v, k, n, 1};
	struct k8s_client *c = local_client("{token: t}");
	struct buf got;
	char *log;

	(void)state;
	free(requests());
	buf_init(&got, 65536);
	assert_int_equal(k8s_list(c, &deploy, "default", "app in (a,b)", 2, collect, &got), 0);
	/* u1 and u2 once although the list started again and u2 came back
	 * on the last page; the item without a uid is given. */
	assert_string_equal((char *)got.data, "apps/v1 Deployment n-u1\n"
	                                      "apps/v1 Deployment n-u2\n"
	                                      "apps/v1 Deployment n-u3\n"
	                                      "apps/v1 Deployment no-uid\n");
	log = requests();
	assert_string_equal(log, DEPLOY "\n" DEPLOY "&continue=tok%2F1%3D\n" DEPLOY "\n" DEPLOY
	                                "&continue=tok2\n");
	free(log);
	buf_free(&got);
	k8s_client_free(c);
}

static void test_list_core_and_stops(void **state)
{
	char core[] = "", xio[] = "x.io", v1[] = "v1", pod[] = "Pod", podn[] = "pods",
	     node[] = "Node", noden[] = "nodes", thing[] = "Thing", thingn[] = "things";
	struct k8s_resource pods = {core, v1, pod, podn, 1};
	struct k8s_resource nodes = {core, v1, node, noden, 0};
	struct k8s_resource things = {xio, v1, thing, thingn, 0};
	struct k8s_client *c = local_client("{token: t}");
	struct buf got;
	int n = 0;

	(void)state;
	buf_init(&got, 65536);
	/* All namespaces, the default page size. */
	assert_int_equal(k8s_list(c, &pods, NULL, NULL, 0, collect, &got), 0);
	assert_string_equal((char *)got.data, "v1 Pod n-p1\nv1 Pod n-p2\nv1 Pod n-p3\n");
	/* A namespace does not apply to a cluster-scoped resource. */
	buf_reset(&got);
	assert_int_equal(k8s_list(c, &nodes, "default", NULL, 0, collect, &got), 0);
	assert_string_equal((char *)got.data, "v1 Node n-p1\nv1 Node n-p2\nv1 Node n-p3\n");
	/* A positive return stops without an error; a negative one is the error. */
	assert_int_equal(k8s_list(c, &pods, NULL, NULL, 0, stop_after_one, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(k8s_list(c, &pods, NULL, NULL, 0, fail_cb, NULL), CF_ERR_IO);
	assert_string_equal(error_message(), "the sink failed");
	/* A list that expires every time gives up, having given t1 once. */
	buf_reset(&got);
	assert_int_equal(k8s_list(c, &things, NULL, NULL, 0, collect, &got), CF_ERR_SOURCE);
	assert_non_null(strstr(error_message(), "expired again after 8 restarts"));
	assert_string_equal((char *)got.data, "x.io/v1 Thing n-t1\n");
	buf_free(&got);
	free(requests());
	k8s_client_free(c);
}

struct skipped {
	int n;
	char gv[256];
	char reason[512];
};

static void on_skip(void *ctx, const char *gv, const char *reason)
{
	struct skipped *s = ctx;

	s->n++;
	snprintf(s->gv, sizeof(s->gv), "%s", gv);
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static void test_discover(void **state)
{
	struct k8s_client *c = local_client("{token: t}");
	struct k8s_discovery d;
	struct skipped s = {0, "", ""};
	size_t apps = 0, flow = 0;

	(void)state;
	assert_int_equal(k8s_discover(c, &d, on_skip, &s), 0);
	assert_string_equal(json_string_value(json_object_get(d.version, "gitVersion")), "v1.30.2");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.gv, "flowcontrol.apiserver.k8s.io/v1");
	assert_non_null(strstr(s.reason, "no flow control for you"));
	for (size_t i = 0; i < d.n; i++) {
		apps += !strcmp(d.res[i].group, "apps");
		flow += !strcmp(d.res[i].group, "flowcontrol.apiserver.k8s.io");
	}
	assert_int_equal(apps, 5);
	assert_int_equal(flow, 0);
	/* 16 core + the preferred versions' listable resources (counted in
	 * test_k8s_discovery) - flowcontrol's 2. */
	assert_int_equal(d.n, 16 + 45 - 2);
	k8s_discovery_free(&d);
	free(requests());
	k8s_client_free(c);
}

static void *cancel_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	cancel_set(0);
	return NULL;
}

/* Last: a cancellation cannot be undone in this process. */
static void test_cancel(void **state)
{
	struct k8s_client *c = local_client("{token: t}");
	json_t *j = NULL;
	pthread_t th;
	int64_t t0;

	(void)state;
	/* A 429 asking for 10 s: the wait ends with the cancellation. */
	t0 = time_now_ms();
	assert_int_equal(pthread_create(&th, NULL, cancel_later, NULL), 0);
	assert_int_equal(k8s_get_json(c, "/busy", &j, NULL), CF_ERR_INTERRUPTED);
	pthread_join(th, NULL);
	assert_true(time_now_ms() - t0 < 1000);
	/* A server that does not answer: the transfer is aborted. */
	t0 = time_now_ms();
	assert_int_equal(k8s_get_json(c, "/slow", &j, NULL), CF_ERR_INTERRUPTED);
	assert_true(time_now_ms() - t0 < 1000);
	assert_null(j);
	k8s_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_renewed_on_401),
	    cmocka_unit_test(test_basic_auth),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_list_pages_and_restart),
	    cmocka_unit_test(test_list_core_and_stops),
	    cmocka_unit_test(test_discover),
	    cmocka_unit_test(test_cancel),
	};

	unsetenv("KUBECONFIG");
	return cmocka_run_group_tests(tests, setup, teardown);
}
