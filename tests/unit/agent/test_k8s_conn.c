/* Tests agent/source/kubernetes/k8s_conn.c without a server: kubeconfig variants
 * (token, token file, client certificate files and data, exec plugins,
 * several contexts, relative paths, tls-server-name), the mistakes it must
 * name, the search for the kubeconfig, in-cluster credentials, and the
 * YAML-to-JSON converter. */
#include "agent/source/kubernetes/k8s_intern.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
#define CA_B64                                                                                     \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmYWtlQ0EKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBfakeClient\n-----END CERTIFICATE-----\n"
#define CERT_B64                                                                                   \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmYWtlQ2xpZW50Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0t" \
	"LS0K"
#define KEY_PEM "-----BEGIN EC PRIVATE KEY-----\nMHcfakeKey\n-----END EC PRIVATE KEY-----\n"
#define KEY_B64                                                                                    \
	"LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY2Zha2VLZXkKLS0tLS1FTkQgRUMgUFJJVkFURSBLRVkt" \
	"LS0tLQo="

/* A kubeconfig with one cluster c1 and context dev (user u1, namespace
 * team-a); USERS is the users: list. */
#define KC(CLUSTER_EXTRA, USERS)                                                                   \
	"apiVersion: v1\nkind: Config\ncurrent-context: dev\n"                                     \
	"clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n" CLUSTER_EXTRA    \
	"contexts:\n- name: dev\n  context: {cluster: c1, user: u1, namespace: team-a}\n"          \
	"users:\n" USERS

static char dir[512], path[600];

static void write_file(const char *name, const char *text)
{
	char p[1024];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	mkdir(COFFER_TEST_TMP, 0755);
	snprintf(dir, sizeof(dir), "%s/k8s-conn.%d", COFFER_TEST_TMP, (int)getpid());
	fs_remove_tree(dir);
	if (mkdir(dir, 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/config", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fs_remove_tree(dir);
	return 0;
}

/* Each test starts from an environment with no kubeconfig to find. */
static int env_clean(void **state)
{
	(void)state;
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("COFFER_K8S_SA_DIR");
	setenv("HOME", dir, 1);
	return 0;
}

/* Opens the kubeconfig text (written to dir/config) with context ctx. */
static int open_kc(const char *text, const char *ctx, struct k8s_client **c)
{
	struct k8s_conn_options o = {path, ctx, 0, 0};

	write_file("config", text);
	error_clear();
	return k8s_client_open(&o, c);
}

/* Opens it and expects success, else fails with the error. */
static void open_ok(const char *text, const char *ctx, struct k8s_client **c)
{
	if (open_kc(text, ctx, c) != 0)
		fail_msg("open failed: %s", error_message());
}

static void expect_fail(const char *text, const char *ctx, int code, const char *want)
{
	struct k8s_client *c = NULL;
	int rc = open_kc(text, ctx, &c);

	if (rc != code || !strstr(error_message(), want))
		fail_msg("got %d '%s', wanted %d with '%s'", rc, error_message(), code, want);
	assert_null(c);
}

static void test_token_and_ca_data(void **state)
{
	struct k8s_client *c = NULL;

	(void)state;
	open_ok(KC("    certificate-authority-data: " CA_B64 "\n",
	           "- name: u1\n  user:\n    token: \"s3cret-token\"\n"),
	        NULL, &c);
	assert_string_equal(k8s_client_server(c), "https://10.0.0.1:6443");
	assert_string_equal(c->url_base, "https://10.0.0.1:6443");
	assert_null(c->connect_to);
	assert_string_equal(k8s_client_namespace(c), "team-a");
	assert_int_equal(c->ca_data.len, strlen(CA_PEM));
	assert_memory_equal(c->ca_data.data, CA_PEM, c->ca_data.len);
	assert_null(c->ca_file);
	assert_int_equal(c->auth, K8S_AUTH_TOKEN);
	assert_string_equal(c->token, "s3cret-token");
	assert_string_equal(c->kubeconfig, path);
	assert_string_equal(c->context, "dev");
	assert_false(c->insecure);
	assert_non_null(strstr(k8s_client_describe(c), "context 'dev' of "));
	assert_non_null(strstr(k8s_client_describe(c), path));
	assert_null(strstr(k8s_client_describe(c), "s3cret"));
	k8s_client_free(c);
	k8s_client_free(NULL);
}

static void test_contexts(void **state)
{
	static const char text[] =
	    "current-context: prod\n"
	    "clusters:\n"
	    "- name: c-prod\n  cluster: {server: 'https://prod.example:443'}\n"
	    "- name: c-dev\n  cluster:\n    server: \"http://127.0.0.1:8001\"\n"
	    "contexts:\n"
	    "- name: prod\n  context:\n    cluster: c-prod\n    user: admin\n"
	    "- name: dev\n  context:\n    cluster: c-dev\n"
	    "- name: broken\n  context: {cluster: c-none, user: admin}\n"
	    "- name: nouser\n  context: {cluster: c-dev, user: ghost}\n"
	    "users:\n- name: admin\n  user: {token: abc}\n";
	struct k8s_client *c = NULL;

	(void)state;
	open_ok(text, NULL, &c);
	assert_string_equal(k8s_client_server(c), "https://prod.example:443");
	assert_string_equal(c->context, "prod");
	assert_null(k8s_client_namespace(c));
	assert_string_equal(c->token, "abc");
	k8s_client_free(c);

	/* Another context, with no user: no credentials. */
	open_ok(text, "dev", &c);
	assert_string_equal(k8s_client_server(c), "http://127.0.0.1:8001");
	assert_int_equal(c->auth, K8S_AUTH_NONE);
	assert_null(c->token);
	k8s_client_free(c);

	expect_fail(text, "nope", CF_ERR_CONFIG, "context 'nope' is not in kubeconfig");
	expect_fail(text, "nope", CF_ERR_CONFIG, path);
	expect_fail(text, "nope", CF_ERR_CONFIG, "(contexts: prod, dev, broken, nouser)");
	expect_fail(text, "broken", CF_ERR_CONFIG, "names cluster 'c-none'");
	expect_fail(text, "nouser", CF_ERR_CONFIG, "names user 'ghost'");
	/* No current-context and none asked for. */
	expect_fail(text + strlen("current-context: prod\n"), NULL, CF_ERR_CONFIG,
	            "has no current-context");
	expect_fail("current-context: \"\"\nclusters: []\n", NULL, CF_ERR_CONFIG,
	            "has no current-context");
	expect_fail("", NULL, CF_ERR_CONFIG, "is empty or not a YAML mapping");
	expect_fail("a: [1, 2\n", NULL, CF_ERR_CONFIG, "line ");
}

static void test_server_mistakes(void **state)
{
	(void)state;
	expect_fail("current-context: a\nclusters:\n- name: c\n  cluster: {}\n"
	            "contexts:\n- name: a\n  context: {cluster: c}\n",
	            NULL, CF_ERR_CONFIG, "cluster 'c' in");
	expect_fail("current-context: a\nclusters:\n- name: c\n  cluster: {server: 10.0.0.1:6443}\n"
	            "contexts:\n- name: a\n  context: {cluster: c}\n",
	            NULL, CF_ERR_CONFIG, "must start with https://");
	expect_fail(
	    KC("    certificate-authority-data: '%%%notbase64'\n", "- name: u1\n  user: {}\n"),
	    NULL, CF_ERR_CONFIG, "certificate-authority-data of cluster 'c1'");
}

static void test_token_file_and_relative_ca(void **state)
{
	struct k8s_client *c = NULL;
	char want[1024];

	(void)state;
	snprintf(want, sizeof(want), "%s/ca", dir);
	mkdir(want, 0755);
	write_file("ca/ca.pem", CA_PEM);
	write_file("tok", "  tok-from-file\n\n");
	open_ok(KC("    certificate-authority: ca/ca.pem\n",
	           "- name: u1\n  user:\n    tokenFile: tok\n    token: ignored\n"),
	        NULL, &c);
	snprintf(want, sizeof(want), "%s/ca/ca.pem", dir);
	assert_string_equal(c->ca_file, want);
	assert_int_equal(c->ca_data.len, 0);
	snprintf(want, sizeof(want), "%s/tok", dir);
	assert_string_equal(c->token_file, want);
	assert_int_equal(c->auth, K8S_AUTH_TOKEN_FILE);
	assert_string_equal(c->token, "tok-from-file");
	assert_true(k8s_client_renewable(c));
	/* A rotated token is read again. */
	write_file("tok", "rotated\n");
	assert_int_equal(k8s_client_renew(c), 0);
	assert_string_equal(c->token, "rotated");
	assert_non_null(strstr(k8s_client_describe(c), "token file "));
	assert_null(strstr(k8s_client_describe(c), "rotated"));
	k8s_client_free(c);

	expect_fail(KC("    certificate-authority: ca/missing.pem\n", "- name: u1\n  user: {}\n"),
	            NULL, CF_ERR_CONFIG, "ca/missing.pem of cluster 'c1'");
	expect_fail(KC("", "- name: u1\n  user: {tokenFile: nofile}\n"), NULL, CF_ERR_CONFIG,
	            "/nofile");
	write_file("empty", "\n");
	expect_fail(KC("", "- name: u1\n  user: {tokenFile: empty}\n"), NULL, CF_ERR_CONFIG,
	            "is empty");
}

static void test_client_cert_files(void **state)
{
	struct k8s_client *c = NULL;
	char text[2048], want[1024];

	(void)state;
	write_file("c.pem", CERT_PEM);
	write_file("k.pem", KEY_PEM);
	snprintf(
	    text, sizeof(text),
	    KC("    insecure-skip-tls-verify: true\n",
	       "- name: u1\n  user:\n    client-certificate: c.pem\n    client-key: %s/k.pem\n"),
	    dir);
	open_ok(text, NULL, &c);
	snprintf(want, sizeof(want), "%s/c.pem", dir);
	assert_string_equal(c->cert_file, want);
	snprintf(want, sizeof(want), "%s/k.pem", dir);
	assert_string_equal(c->key_file, want);
	assert_int_equal(c->auth, K8S_AUTH_CERT);
	assert_null(c->token);
	assert_true(c->insecure);
	assert_false(k8s_client_renewable(c));
	assert_non_null(strstr(k8s_client_describe(c), "client certificate"));
	assert_non_null(strstr(k8s_client_describe(c), "insecure-skip-tls-verify"));
	k8s_client_free(c);

	expect_fail(KC("", "- name: u1\n  user: {client-key: k.pem}\n"), NULL, CF_ERR_CONFIG,
	            "has a client key but no client certificate");
	expect_fail(
	    KC("", "- name: u1\n  user: {client-certificate: nope.pem, client-key: k.pem}\n"), NULL,
	    CF_ERR_CONFIG, "client-certificate");
}

static void test_client_cert_data(void **state)
{
	struct k8s_client *c = NULL;

	(void)state;
	open_ok(KC("", "- name: u1\n  user:\n"
	               "    client-certificate-data: " CERT_B64 "\n"
	               "    client-key-data: >-\n      " KEY_B64 "\n"
	               "    client-certificate: /ignored/for/data.pem\n"),
	        NULL, &c);
	assert_int_equal(c->cert_data.len, strlen(CERT_PEM));
	assert_memory_equal(c->cert_data.data, CERT_PEM, c->cert_data.len);
	assert_int_equal(c->key_data.len, strlen(KEY_PEM));
	assert_memory_equal(c->key_data.data, KEY_PEM, c->key_data.len);
	assert_true(c->key_data.secret);
	assert_null(c->cert_file);
	assert_int_equal(c->auth, K8S_AUTH_CERT);
	k8s_client_free(c);

	expect_fail(KC("", "- name: u1\n  user:\n    client-certificate-data: " CERT_B64 "\n"
	                   "    client-key-data: '!!!'\n"),
	            NULL, CF_ERR_CONFIG, "client-key-data of user 'u1'");
}

static void test_basic_tls_server_name(void **state)
{
	struct k8s_client *c = NULL;

	(void)state;
	open_ok(KC("    tls-server-name: api.internal\n"
	           "    proxy-url: http://proxy:3128\n",
	           "- name: u1\n  user:\n    username: alice\n    password: 'p@ss: word'\n"
	           "    as: bob\n    as-groups: [ops, dev]\n"),
	        NULL, &c);
	assert_string_equal(k8s_client_server(c), "https://10.0.0.1:6443");
	assert_string_equal(c->url_base, "https://api.internal:6443");
	assert_string_equal(c->connect_to, "api.internal:6443:10.0.0.1:6443");
	assert_string_equal(c->proxy_url, "http://proxy:3128");
	assert_int_equal(c->auth, K8S_AUTH_BASIC);
	assert_string_equal(c->username, "alice");
	assert_string_equal(c->password, "p@ss: word");
	assert_string_equal(c->impersonate, "bob");
	assert_int_equal(c->impersonate_groups.n, 2);
	assert_string_equal(c->impersonate_groups.v[1], "dev");
	assert_non_null(strstr(k8s_client_describe(c), "basic auth as 'alice'"));
	assert_null(strstr(k8s_client_describe(c), "p@ss"));
	k8s_client_free(c);

	expect_fail(KC("", "- name: u1\n  user: {username: a, password: b, token: c}\n"), NULL,
	            CF_ERR_CONFIG, "both a token and a username");
	expect_fail(KC("", "- name: u1\n  user:\n    auth-provider:\n      name: gcp\n"), NULL,
	            CF_ERR_UNSUPPORTED, "auth-provider 'gcp'");
}

/* An exec plugin: a shell script that records KUBERNETES_EXEC_INFO and
 * prints an ExecCredential whose token comes from an env entry. */
static void test_exec_token(void **state)
{
	struct k8s_client *c = NULL;
	char text[4096], info_path[1024];
	json_t *info;
	json_error_t err;

	(void)state;
	snprintf(info_path, sizeof(info_path), "%s/info.json", dir);
	snprintf(text, sizeof(text),
	         KC("    certificate-authority-data: " CA_B64 "\n",
	            "- name: u1\n  user:\n    exec:\n"
	            "      apiVersion: client.authentication.k8s.io/v1\n"
	            "      command: sh\n"
	            "      args:\n"
	            "      - -c\n"
	            "      - |\n"
	            "        printf '%%s' \"$KUBERNETES_EXEC_INFO\" > \"$INFO_OUT\"\n"
	            "        printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",'\n"
	            "        printf '\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%%s\",' "
	            "\"$TOK\"\n"
	            "        printf '\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}'\n"
	            "      env:\n"
	            "      - name: TOK\n"
	            "        value: exec-token\n"
	            "      - {name: INFO_OUT, value: '%s'}\n"
	            "      interactiveMode: IfAvailable\n"
	            "      provideClusterInfo: true\n"),
	         info_path);
	open_ok(text, NULL, &c);
	assert_int_equal(c->auth, K8S_AUTH_EXEC);
	assert_string_equal(c->token, "exec-token");
	assert_int_equal(c->expiry_ms, 1893456000000LL);
	assert_true(k8s_client_renewable(c));
	assert_non_null(strstr(k8s_client_describe(c), "exec plugin 'sh'"));
	assert_null(strstr(k8s_client_describe(c), "exec-token"));
	k8s_client_free(c);

	info = json_load_file(info_path, 0, &err);
	if (!info)
		fail_msg("KUBERNETES_EXEC_INFO: %s", err.text);
	assert_string_equal(json_string_value(json_object_get(info, "apiVersion")),
	                    "client.authentication.k8s.io/v1");
	assert_string_equal(json_string_value(json_object_get(info, "kind")), "ExecCredential");
	assert_true(json_is_false(json_object_get(json_object_get(info, "spec"), "interactive")));
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(info, "spec"), "cluster"), "server")),
	    "https://10.0.0.1:6443");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(info, "spec"), "cluster"),
	                        "certificate-authority-data")),
	                    CA_B64);
	json_decref(info);
}

static void test_exec_cert_and_failures(void **state)
{
	struct k8s_client *c = NULL;

	(void)state;
	write_file(
	    "plugin.sh",
	    "#!/bin/sh\n"
	    "printf '%s' '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
	    "\"ExecCredential\",\"status\":{\"clientCertificateData\":\"-----BEGIN "
	    "CERTIFICATE-----\\nX\\n"
	    "-----END CERTIFICATE-----\\n\",\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nY\\n"
	    "-----END PRIVATE KEY-----\\n\"}}'\n");
	{
		char p[1024];

		snprintf(p, sizeof(p), "%s/plugin.sh", dir);
		chmod(p, 0755);
	}
	/* A command with a '/' is relative to the kubeconfig's folder. */
	open_ok(KC("", "- name: u1\n  user:\n    exec:\n"
	               "      apiVersion: client.authentication.k8s.io/v1beta1\n"
	               "      command: ./plugin.sh\n"),
	        NULL, &c);

	assert_null(c->token);
	assert_non_null(strstr((const char *)c->cert_data.data, "BEGIN CERTIFICATE-----\nX\n"));
	assert_non_null(strstr((const char *)c->key_data.data, "BEGIN PRIVATE KEY-----\nY\n"));
	assert_true(c->key_data.secret);
	assert_int_equal(c->expiry_ms, 0);
	k8s_client_free(c);

#define EXEC(CMD_AND_ARGS)                                                                         \
	KC("", "- name: u1\n  user:\n    exec:\n      apiVersion: "                                \
	       "client.authentication.k8s.io/v1\n" CMD_AND_ARGS)
	expect_fail(
	    EXEC("      command: sh\n      args: [-c, 'echo plugin exploded >&2; exit 3']\n"), NULL,
	    CF_ERR_AUTH, "exited with status 3; stderr: plugin exploded");
	expect_fail(EXEC("      command: sh\n      args: [-c, 'echo \"{\\\"status\\\":{}}\"']\n"),
	            NULL, CF_ERR_AUTH, "returned no credential");
	expect_fail(EXEC("      command: sh\n      args: [-c, 'echo hello']\n"), NULL, CF_ERR_AUTH,
	            "is not an ExecCredential");
	expect_fail(EXEC("      command: /nonexistent/kube-plugin\n"
	                 "      installHint: install kube-plugin from example.com\n"),
	            NULL, CF_ERR_AUTH, "(install kube-plugin from example.com)");
	expect_fail(EXEC("      command: sh\n      interactiveMode: Always\n"), NULL, CF_ERR_CONFIG,
	            "needs a terminal");
	expect_fail(EXEC("      args: [x]\n"), NULL, CF_ERR_CONFIG, "exec has no command");
	expect_fail(KC("", "- name: u1\n  user:\n    exec:\n"
	                   "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
	                   "      command: sh\n"),
	            NULL, CF_ERR_UNSUPPORTED, "v1alpha1' is not supported");
#undef EXEC
}

/* Where the kubeconfig is looked for when the option does not name one. */
static void test_kubeconfig_search(void **state)
{
	struct k8s_conn_options o = {NULL, NULL, 0, 0};
	struct k8s_client *c = NULL;
	char env[2048], kube[1024];

	(void)state;
	write_file("config", KC("", "- name: u1\n  user: {token: from-env}\n"));
	snprintf(env, sizeof(env), "%s/absent-1::%s:%s/absent-2", dir, path, dir);
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(k8s_client_open(&o, &c), 0);
	assert_string_equal(c->kubeconfig, path);
	k8s_client_free(c);

	setenv("KUBECONFIG", "/nonexistent/a:/nonexistent/b", 1);
	assert_int_equal(k8s_client_open(&o, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "/nonexistent/a:/nonexistent/b"));
	unsetenv("KUBECONFIG");

	/* $HOME/.kube/config */
	snprintf(kube, sizeof(kube), "%s/.kube", dir);
	mkdir(kube, 0700);
	write_file(".kube/config", KC("", "- name: u1\n  user: {token: from-home}\n"));
	assert_int_equal(k8s_client_open(&o, &c), 0);
	assert_string_equal(c->token, "from-home");
	k8s_client_free(c);
	snprintf(env, sizeof(env), "%s/config", kube);
	unlink(env);

	error_clear();
	assert_int_equal(k8s_client_open(&o, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "no kubeconfig"));
	o.kubeconfig = "/nonexistent/kubeconfig";
	assert_int_equal(k8s_client_open(&o, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "/nonexistent/kubeconfig"));
	assert_null(c);
}

static void test_in_cluster(void **state)
{
	struct k8s_conn_options o = {NULL, NULL, 0, 0};
	struct k8s_client *c = NULL;
	char sa[1024], want[1100];

	(void)state;
	snprintf(sa, sizeof(sa), "%s/sa", dir);
	mkdir(sa, 0700);
	write_file("sa/token", "eyJhbGciOiJSUzI1NiJ9.sa-token\n");
	write_file("sa/ca.crt", CA_PEM);
	write_file("sa/namespace", "backup-ns");
	setenv("COFFER_K8S_SA_DIR", sa, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	/* No kubeconfig anywhere: in-cluster. */
	assert_int_equal(k8s_client_open(&o, &c), 0);
	assert_string_equal(k8s_client_server(c), "https://10.96.0.1:6443");
	assert_string_equal(c->token, "eyJhbGciOiJSUzI1NiJ9.sa-token");
	snprintf(want, sizeof(want), "%s/ca.crt", sa);
	assert_string_equal(c->ca_file, want);
	assert_string_equal(k8s_client_namespace(c), "backup-ns");
	assert_null(c->kubeconfig);
	assert_int_equal(c->auth, K8S_AUTH_TOKEN_FILE);
	assert_non_null(strstr(k8s_client_describe(c), "in-cluster service account"));
	k8s_client_free(c);

	/* in_cluster ignores a kubeconfig; an IPv6 service address. */
	write_file("config", KC("", "- name: u1\n  user: {token: x}\n"));
	o.kubeconfig = path;
	o.in_cluster = 1;
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	unsetenv("KUBERNETES_SERVICE_PORT");
	assert_int_equal(k8s_client_open(&o, &c), 0);
	assert_string_equal(k8s_client_server(c), "https://[fd00::1]:443");
	k8s_client_free(c);

	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(k8s_client_open(&o, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	unlink(want);
	assert_int_equal(k8s_client_open(&o, &c), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), want));
}

/* ------------------------------------------------------------------------ */
/* YAML to JSON                                                               */
/* ------------------------------------------------------------------------ */

static void expect_yaml(const char *yaml, const char *json)
{
	json_t *j = NULL;
	char *dump;
	int rc = k8s_yaml_to_json(yaml, strlen(yaml), &j);

	if (rc)
		fail_msg("'%s': %s", yaml, error_message());
	dump = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (strcmp(dump, json) != 0)
		fail_msg("'%s' gave %s, wanted %s", yaml, dump, json);
	free(dump);
	json_decref(j);
}

static void expect_yaml_error(const char *yaml, const char *want)
{
	json_t *j = NULL;
	int rc;

	error_clear();
	rc = k8s_yaml_to_json(yaml, strlen(yaml), &j);
	if (rc != CF_ERR_FORMAT || !strstr(error_message(), want))
		fail_msg("'%s': got %d '%s', wanted '%s'", yaml, rc, error_message(), want);
	assert_null(j);
}

static void test_yaml_scalars(void **state)
{
	(void)state;
	/* No type resolution: every scalar is a string. */
	expect_yaml(
	    "a: 42\nb: true\nc: null\nd: ~\ne:\nf: 1.5\n",
	    "{\"a\":\"42\",\"b\":\"true\",\"c\":\"null\",\"d\":\"~\",\"e\":\"\",\"f\":\"1.5\"}");
	expect_yaml(
	    "a: 'it''s: here'\nb: \"tab\\there\\nline \\u00e9 \\\"q\\\"\"\nc: plain text  \n",
	    "{\"a\":\"it's: here\",\"b\":\"tab\\there\\nline \xc3\xa9 \\\"q\\\"\","
	    "\"c\":\"plain text\"}");
	expect_yaml("key with spaces: v\n\"quoted key\": w\n'1': x\n",
	            "{\"key with spaces\":\"v\",\"quoted key\":\"w\",\"1\":\"x\"}");
	expect_yaml("a: !!str 12\nb: !custom {x: y}\n", "{\"a\":\"12\",\"b\":{\"x\":\"y\"}}");
	expect_yaml("just a scalar\n", "\"just a scalar\"");
	expect_yaml("", "null");
	expect_yaml("# only a comment\n", "null");
	expect_yaml("a: 1\na: 2\n", "{\"a\":\"2\"}");
	/* Only the first document. */
	expect_yaml("a: 1\n---\nb: 2\n", "{\"a\":\"1\"}");
	expect_yaml("---\n{a: 1}\n...\n", "{\"a\":\"1\"}");
}

static void test_yaml_block_scalars(void **state)
{
	(void)state;
	expect_yaml("lit: |\n  line1\n    indented\n  line3\nnext: x\n",
	            "{\"lit\":\"line1\\n  indented\\nline3\\n\",\"next\":\"x\"}");
	expect_yaml("fold: >\n  one\n  two\n\n  three\n", "{\"fold\":\"one two\\nthree\\n\"}");
	expect_yaml("keep: |+\n  x\n\nstrip: |-\n  y\n\n",
	            "{\"keep\":\"x\\n\\n\",\"strip\":\"y\"}");
	expect_yaml(
	    "pem: |\n  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\n",
	    "{\"pem\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}");
}

static void test_yaml_nesting(void **state)
{
	json_t *j = NULL;
	const char *y = "base: &b\n  x: 1\n  l: [a, b]\nuse: *b\nname: &n hello\nalso: *n\n";

	(void)state;
	expect_yaml("- [1, [2, 3]]\n- - a\n  - b\n- {k: [v, {w: z}]}\n- name: x\n  items:\n"
	            "  - p: 1\n    q: [ ]\n  - {}\n",
	            "[[\"1\",[\"2\",\"3\"]],[\"a\",\"b\"],{\"k\":[\"v\",{\"w\":\"z\"}]},"
	            "{\"name\":\"x\",\"items\":[{\"p\":\"1\",\"q\":[]},{}]}]");
	expect_yaml("users:\n- name: u\n  user:\n    exec:\n      args:\n      - a\n      - b\n",
	            "{\"users\":[{\"name\":\"u\",\"user\":{\"exec\":{\"args\":[\"a\",\"b\"]}}}]}");
	/* An alias is the anchored value itself. */
	assert_int_equal(k8s_yaml_to_json(y, strlen(y), &j), 0);
	assert_ptr_equal(json_object_get(j, "use"), json_object_get(j, "base"));
	assert_string_equal(json_string_value(json_object_get(j, "also")), "hello");
	json_decref(j);
	/* Merge keys are plain keys. */
	expect_yaml("a: &a {x: 1}\nb:\n  <<: *a\n",
	            "{\"a\":{\"x\":\"1\"},\"b\":{\"<<\":{\"x\":\"1\"}}}");
}

static void test_yaml_errors(void **state)
{
	char deep[1200];
	size_t n = 0;

	(void)state;
	expect_yaml_error("a: [1, 2\n", "line 2");
	expect_yaml_error("a: b\n c: d\n", "line 2, column 3");
	expect_yaml_error("a: 'unterminated\n", "line ");
	expect_yaml_error("? [a, b]\n: c\n", "a mapping key must be a scalar");
	expect_yaml_error("a: *nope\n", "unknown anchor 'nope'");
	expect_yaml_error("a: &x [*x]\n", "unknown anchor 'x'");
	expect_yaml_error("a: \"\\x\"\n", "line 1");
	for (int i = 0; i < 300; i++)
		deep[n++] = '[';
	for (int i = 0; i < 300; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	expect_yaml_error(deep, "nested deeper than 256 levels");
	/* Not UTF-8. */
	expect_yaml_error("a: \xff\xfe\n", "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_token_and_ca_data, env_clean),
	    cmocka_unit_test_setup(test_contexts, env_clean),
	    cmocka_unit_test_setup(test_server_mistakes, env_clean),
	    cmocka_unit_test_setup(test_token_file_and_relative_ca, env_clean),
	    cmocka_unit_test_setup(test_client_cert_files, env_clean),
	    cmocka_unit_test_setup(test_client_cert_data, env_clean),
	    cmocka_unit_test_setup(test_basic_tls_server_name, env_clean),
	    cmocka_unit_test_setup(test_exec_token, env_clean),
	    cmocka_unit_test_setup(test_exec_cert_and_failures, env_clean),
	    cmocka_unit_test_setup(test_kubeconfig_search, env_clean),
	    cmocka_unit_test_setup(test_in_cluster, env_clean),
	    cmocka_unit_test(test_yaml_scalars),
	    cmocka_unit_test(test_yaml_block_scalars),
	    cmocka_unit_test(test_yaml_nesting),
	    cmocka_unit_test(test_yaml_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
