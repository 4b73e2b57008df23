/*
 * Tests of s3_cred: each link of the credential chain (config keys, the
 * environment, the shared files with AWS_PROFILE, web identity through STS,
 * IMDSv2), the failure when nothing is found, refreshing before expiry, and
 * that no secret reaches an error message.
 *
 * STS and the instance metadata service are played by a small HTTP server
 * on a loopback port, in a thread of this test.
 */
#include "storage/s3/s3.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TEMP_SECRET "tempSECRETwJalrXUtnFEMI/K7MDENG"
#define TEMP_TOKEN "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
#define WEB_TOKEN "eyJhbGciOiJSUzI1NiJ9.WEBIDENTITYTOKEN"

/* ------------------------------------------------------------------------ */
/* A scripted HTTP server                                                     */
/* ------------------------------------------------------------------------ */

struct server {
	int fd;
	int port;
	pthread_t thread;
	atomic_int stop; /* read by the server thread */
	pthread_mutex_t lock;
	/* What the next replies say. */
	int sts_status;
	char expiration[32];
	int key_serial; /* bumped on every credentials reply */
	/* What was asked. */
	int requests, token_requests, credential_requests;
	char last_body[4096];
	int saw_ttl_header, saw_token_header;
};

static void format_iso(time_t t, char *out, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void reply(int fd, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	                 status, strlen(body));

	if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
		return;
}

static void handle(struct server *s, int fd)
{
	char req[8192], body[4096];
	size_t len = 0;
	char *end, *cl;
	size_t want = 0;

	/* Read the head, then Content-Length bytes of body. */
	for (;;) {
		ssize_t n = read(fd, req + len, sizeof(req) - 1 - len);

		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		end = strstr(req, "\r\n\r\n");
		if (end) {
			cl = strcasestr(req, "Content-Length:");
			want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
			if (len >= (size_t)(end + 4 - req) + want)
				break;
		}
		if (len == sizeof(req) - 1)
			return;
	}
	pthread_mutex_lock(&s->lock);
	s->requests++;
	snprintf(s->last_body, sizeof(s->last_body), "%s", end + 4);
	if (!strncmp(req, "PUT /latest/api/token ", 22)) {
		s->token_requests++;
		s->saw_ttl_header =
		    strcasestr(req, "X-aws-ec2-metadata-token-ttl-seconds: 21600") != NULL;
		reply(fd, 200, "IMDSTOKEN123");
	} else if (!strncmp(req, "GET /latest/meta-data/iam/security-credentials/ ", 48)) {
		s->saw_token_header =
		    strcasestr(req, "X-aws-ec2-metadata-token: IMDSTOKEN123") != NULL;
		reply(fd, s->saw_token_header ? 200 : 401, "test-role\n");
	} else if (!strncmp(req, "GET /latest/meta-data/iam/security-credentials/test-role ", 57)) {
		s->credential_requests++;
		s->key_serial++;
		snprintf(body, sizeof(body),
		         "{\"Code\":\"Success\",\"LastUpdated\":\"2026-01-01T00:00:00Z\","
		         "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAIMDS%d\","
		         "\"SecretAccessKey\":\"" TEMP_SECRET "\",\"Token\":\"" TEMP_TOKEN "\","
		         "\"Expiration\":\"%s\"}",
		         s->key_serial, s->expiration);
		reply(fd, 200, body);
	} else if (!strncmp(req, "POST /sts/ ", 11)) {
		s->credential_requests++;
		s->key_serial++;
		if (s->sts_status != 200) {
			reply(fd, s->sts_status,
			      "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
			      "<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
			      "<Message>Token is expired</Message></Error></ErrorResponse>");
		} else {
			snprintf(body, sizeof(body),
			         "<AssumeRoleWithWebIdentityResponse "
			         "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
			         "<AssumeRoleWithWebIdentityResult><Credentials>"
			         "<AccessKeyId>ASIASTS%d</AccessKeyId>"
			         "<SecretAccessKey>" TEMP_SECRET "</SecretAccessKey>"
			         "<SessionToken>" TEMP_TOKEN "</SessionToken>"
			         "<Expiration>%s</Expiration></Credentials>"
			         "</AssumeRoleWithWebIdentityResult></"
			         "AssumeRoleWithWebIdentityResponse>",
			         s->key_serial, s->expiration);
			reply(fd, 200, body);
		}
	} else {
		reply(fd, 404, "");
	}
	pthread_mutex_unlock(&s->lock);
}

static void *serve(void *arg)
{
	struct server *s = arg;

	while (!s->stop) {
		struct pollfd p = {s->fd, POLLIN, 0};
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			continue;
		handle(s, fd);
		close(fd);
	}
	return NULL;
}

static void server_start(struct server *s)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->sts_status = 200;
	format_iso(time(NULL) + 3600, s->expiration, sizeof(s->expiration));
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	s->stop = 1;
	pthread_join(s->thread, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
}

/* ------------------------------------------------------------------------ */
/* Environment                                                                */
/* ------------------------------------------------------------------------ */

struct fixture {
	char dir[512];
	char closed_port_url[64];
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

/* A clean slate: no AWS variables, HOME an empty directory, no proxy. */
static int setup(void **state)
{
	static const char *vars[] = {
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_SESSION_TOKEN",
	    "AWS_PROFILE",
	    "AWS_SHARED_CREDENTIALS_FILE",
	    "AWS_CONFIG_FILE",
	    "AWS_WEB_IDENTITY_TOKEN_FILE",
	    "AWS_ROLE_ARN",
	    "AWS_ROLE_SESSION_NAME",
	    "AWS_EC2_METADATA_DISABLED",
	    "http_proxy",
	    "HTTP_PROXY",
	    "https_proxy",
	    "HTTPS_PROXY",
	    "all_proxy",
	    "ALL_PROXY",
	};
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd;

	assert_non_null(f);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	join(f->dir, sizeof(f->dir), COFFER_TEST_TMP, "s3cred-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	setenv("HOME", f->dir, 1);
	/* A loopback port nobody listens on: bind one, note it, close it. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(f->closed_port_url, sizeof(f->closed_port_url), "http://127.0.0.1:%d",
	         ntohs(a.sin_port));
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_remove_tree(f->dir);
	free(f);
	return 0;
}

static void options(const struct fixture *f, struct s3_cred_options *o)
{
	memset(o, 0, sizeof(*o));
	o->region = "us-east-1";
	o->imds_endpoint = f->closed_port_url;
	o->verify_tls = 1;
}

static void assert_no_secret(const char *msg)
{
	const char *secrets[] = {SECRET,         TEMP_SECRET, TEMP_TOKEN,   WEB_TOKEN,
	                         "IMDSTOKEN123", "envSECRET", "profSECRET", "cfgSECRET"};

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(msg, secrets[i]))
			fail_msg("error message '%s' holds a secret", msg);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                      */
/* ------------------------------------------------------------------------ */

static void test_config_keys(void **state)
{
	struct fixture *f = *state;
	struct s3_cred_options o;
	struct s3_credentials c;
	struct s3_cred *cred;

	options(f, &o);
	o.access_key = "AKIACONFIG";
	o.secret_key = SECRET;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1); /* config wins */
	setenv("AWS_SECRET_ACCESS_KEY", "envSECRET", 1);
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "config");
	assert_int_equal(s3_cred_get(cred, time(NULL), &c), 0);
	assert_string_equal(c.access_key, "AKIACONFIG");
	assert_string_equal(c.secret_key, SECRET);
	assert_null(c.token);
	assert_int_equal(c.expires, 0);
	s3_credentials_clear(&c);
	s3_cred_free(cred);

	/* Half a key pair is a configuration error that names no secret. */
	o.access_key = NULL;
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_CONFIG);
	assert_null(cred);
	assert_non_null(strstr(error_message(), "secret_key"));
	assert_no_secret(error_message());
}

static void test_environment(void **state)
{
	struct fixture *f = *state;
	struct s3_cred_options o;
	struct s3_credentials c;
	struct s3_cred *cred;

	options(f, &o);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSECRET", 1);
	setenv("AWS_SESSION_TOKEN", "envTOKEN", 1);
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "environment");
	assert_int_equal(s3_cred_get(cred, time(NULL), &c), 0);
	assert_string_equal(c.access_key, "AKIAENV");
	assert_string_equal(c.secret_key, "envSECRET");
	assert_string_equal(c.token, "envTOKEN");
	s3_credentials_clear(&c);
	s3_cred_free(cred);

	unsetenv("AWS_ACCESS_KEY_ID");
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "AWS_ACCESS_KEY_ID"));
	assert_no_secret(error_message());
}

static void test_shared_files(void **state)
{
	struct fixture *f = *state;
	char creds[1024], config[1024];
	struct s3_cred_options o;
	struct s3_credentials c;
	struct s3_cred *cred;

	options(f, &o);
	join(creds, sizeof(creds), f->dir, "credentials");
	join(config, sizeof(config), f->dir, "config");
	write_file(creds, "# comment\n[default]\naws_access_key_id = AKIADEFAULT\n"
	                  "aws_secret_access_key = profSECRET\n\n"
	                  "[work]\naws_access_key_id=AKIAWORK\naws_secret_access_key=profSECRET\n"
	                  "aws_session_token = profTOKEN\n");
	write_file(config, "[default]\nregion = eu-west-1\n"
	                   "[profile cfgonly]\naws_access_key_id = AKIACFG\n"
	                   "aws_secret_access_key = cfgSECRET\n"
	                   "[profile half]\naws_access_key_id = AKIAHALF\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	setenv("AWS_CONFIG_FILE", config, 1);

	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "profile default");
	assert_int_equal(s3_cred_get(cred, time(NULL), &c), 0);
	assert_string_equal(c.access_key, "AKIADEFAULT");
	assert_null(c.token);
	s3_credentials_clear(&c);
	s3_cred_free(cred);

	setenv("AWS_PROFILE", "work", 1);
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "profile work");
	assert_int_equal(s3_cred_get(cred, time(NULL), &c), 0);
	assert_string_equal(c.access_key, "AKIAWORK");
	assert_string_equal(c.token, "profTOKEN");
	s3_credentials_clear(&c);
	s3_cred_free(cred);

	/* Keys in the config file, under [profile NAME]. */
	setenv("AWS_PROFILE", "cfgonly", 1);
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_int_equal(s3_cred_get(cred, time(NULL), &c), 0);
	assert_string_equal(c.access_key, "AKIACFG");
	assert_string_equal(c.secret_key, "cfgSECRET");
	s3_credentials_clear(&c);
	s3_cred_free(cred);

	setenv("AWS_PROFILE", "half", 1);
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), config));
	setenv("AWS_PROFILE", "nosuch", 1);
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "nosuch"));
	assert_no_secret(error_message());

	/* A syntax error names the file and line. */
	unsetenv("AWS_PROFILE");
	write_file(creds, "[default]\naws_access_key_id = AKIA\nthis line is broken\n");
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "line 3"));
}

static void test_nothing_found(void **state)
{
	struct fixture *f = *state;
	struct s3_cred_options o;
	struct s3_cred *cred = (struct s3_cred *)1;
	time_t t0 = time(NULL);

	options(f, &o);
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_AUTH);
	assert_null(cred);
	assert_true(time(NULL) - t0 <= 2);
	assert_non_null(strstr(error_message(), "no credentials found: tried config keys"));
	assert_non_null(strstr(error_message(), "environment"));
	assert_non_null(strstr(error_message(), "/.aws/credentials (absent)"));
	assert_non_null(strstr(error_message(), "web identity"));
	assert_non_null(strstr(error_message(), f->closed_port_url));

	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_AUTH);
	assert_non_null(strstr(error_message(), "instance metadata (disabled)"));
}

static void test_web_identity(void **state)
{
	struct fixture *f = *state;
	char token_file[1024], endpoint[64], expiring[32];
	struct s3_cred_options o;
	struct s3_credentials c;
	struct s3_cred *cred;
	struct server s;
	time_t now = time(NULL);

	server_start(&s);
	options(f, &o);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/sts/", s.port);
	o.sts_endpoint = endpoint;
	join(token_file, sizeof(token_file), f->dir, "token");
	write_file(token_file, WEB_TOKEN "\n");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token_file, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/backup", 1);
	setenv("AWS_ROLE_SESSION_NAME", "coffer-test", 1);

	/* The first credentials expire in a minute: the next get refreshes. */
	format_iso(now + 60, expiring, sizeof(expiring));
	snprintf(s.expiration, sizeof(s.expiration), "%s", expiring);
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "web identity");
	assert_int_equal(s.credential_requests, 1);
	assert_non_null(strstr(s.last_body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"));
	assert_non_null(
	    strstr(s.last_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbackup"));
	assert_non_null(strstr(s.last_body, "RoleSessionName=coffer-test"));
	assert_non_null(strstr(s.last_body, "WebIdentityToken=" WEB_TOKEN "\0"));

	format_iso(now + 3600, s.expiration, sizeof(s.expiration));
	assert_int_equal(s3_cred_get(cred, now, &c), 0);
	assert_int_equal(s.credential_requests, 2);
	assert_string_equal(c.access_key, "ASIASTS2");
	assert_string_equal(c.secret_key, TEMP_SECRET);
	assert_string_equal(c.token, TEMP_TOKEN);
	assert_true(c.expires >= now + 3599);
	s3_credentials_clear(&c);
	/* Now they are good for an hour: no new fetch. */
	assert_int_equal(s3_cred_get(cred, now, &c), 0);
	assert_int_equal(s.credential_requests, 2);
	s3_credentials_clear(&c);

	/* A refresh that fails while the old credentials still work keeps them;
	 * once they have expired the error comes through, without secrets. */
	s.sts_status = 400;
	assert_int_equal(s3_cred_get(cred, now + 3600 - 120, &c), 0);
	assert_string_equal(c.access_key, "ASIASTS2");
	s3_credentials_clear(&c);
	assert_int_equal(s3_cred_get(cred, now + 4000, &c), CF_ERR_AUTH);
	assert_non_null(strstr(error_message(), "InvalidIdentityToken"));
	assert_no_secret(error_message());
	assert_null(c.secret_key);
	s3_cred_free(cred);

	/* Refused at open. */
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_AUTH);
	assert_non_null(strstr(error_message(), "HTTP 400"));
	assert_no_secret(error_message());
	s.sts_status = 200;

	/* A missing token file is named. */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_AUTH);
	assert_non_null(strstr(error_message(), "/nonexistent/token"));
	server_stop(&s);
}

static void test_web_identity_profile(void **state)
{
	struct fixture *f = *state;
	char token_file[1024], config[1024], text[2048], endpoint[64];
	struct s3_cred_options o;
	struct s3_cred *cred;
	struct server s;

	server_start(&s);
	options(f, &o);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/sts/", s.port);
	o.sts_endpoint = endpoint;
	join(token_file, sizeof(token_file), f->dir, "token");
	join(config, sizeof(config), f->dir, "config");
	write_file(token_file, WEB_TOKEN);
	snprintf(text, sizeof(text),
	         "[profile k8s]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = %s\n",
	         token_file);
	write_file(config, text);
	setenv("AWS_CONFIG_FILE", config, 1);
	setenv("AWS_PROFILE", "k8s", 1);
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "web identity (profile k8s)");
	assert_non_null(strstr(s.last_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"));
	assert_non_null(strstr(s.last_body, "RoleSessionName=coffer-"));
	s3_cred_free(cred);
	server_stop(&s);
}

static void test_imds(void **state)
{
	struct fixture *f = *state;
	char endpoint[64];
	struct s3_cred_options o;
	struct s3_credentials c;
	struct s3_cred *cred;
	struct server s;
	time_t now = time(NULL);

	server_start(&s);
	options(f, &o);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", s.port);
	o.imds_endpoint = endpoint;
	format_iso(now + 60, s.expiration, sizeof(s.expiration));
	assert_int_equal(s3_cred_open(&o, &cred), 0);
	assert_string_equal(s3_cred_source_name(cred), "instance metadata");
	assert_true(s.saw_ttl_header);
	assert_true(s.saw_token_header);
	assert_int_equal(s.credential_requests, 1);

	format_iso(now + 7200, s.expiration, sizeof(s.expiration));
	assert_int_equal(s3_cred_get(cred, now, &c), 0);
	assert_int_equal(s.credential_requests, 2);
	assert_int_equal(s.token_requests, 2);
	assert_string_equal(c.access_key, "ASIAIMDS2");
	assert_string_equal(c.secret_key, TEMP_SECRET);
	assert_string_equal(c.token, TEMP_TOKEN);
	s3_credentials_clear(&c);
	assert_int_equal(s3_cred_get(cred, now + 60, &c), 0);
	assert_int_equal(s.credential_requests, 2);
	s3_credentials_clear(&c);
	/* 4 minutes before expiry is inside the 5-minute margin. */
	assert_int_equal(s3_cred_get(cred, now + 7200 - 240, &c), 0);
	assert_int_equal(s.credential_requests, 3);
	s3_credentials_clear(&c);
	s3_cred_free(cred);

	/* A bad Expiration is a format error without secrets. */
	snprintf(s.expiration, sizeof(s.expiration), "soon");
	assert_int_equal(s3_cred_open(&o, &cred), CF_ERR_FORMAT);
	assert_no_secret(error_message());
	server_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_config_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nothing_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_web_identity_profile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
