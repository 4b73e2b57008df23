/*
 * k8s_conn: where the Kubernetes client's connection comes from. It finds
 * the kubeconfig (the option, else the first existing file of $KUBECONFIG,
 * else ~/.kube/config, else the pod's service account), reads it with libyaml
 * into a jansson tree, picks the context, its cluster and its user, and turns
 * them into settings k8s_http.c hands to curl: the server URL, the CA (file or
 * inline PEM), client certificate and key (files or inline), a bearer token
 * (inline, from a file, or from an exec credential plugin) or basic auth.
 *
 * It makes no request. Several kubeconfig files are not merged (kubectl
 * merges every file of $KUBECONFIG; coffer uses the first that exists), and
 * the legacy auth-provider plugins are refused.
 *
 * Secrets: tokens, passwords and private keys are copied into sodium_malloc
 * memory; the file text, the parsed tree, libyaml's buffers and the exec
 * plugin's output are wiped before they are freed.
 */
#include "agent/source/kubernetes/k8s_intern.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define K8S_YAML_DEPTH 256
#define K8S_KUBECONFIG_MAX (16 * 1024 * 1024)
#define K8S_TOKEN_MAX (64 * 1024)
#define K8S_EXEC_OUT_MAX (1024 * 1024)
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_EXEC_V1 "client.authentication.k8s.io/v1"
#define K8S_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

/* ------------------------------------------------------------------------ */
/* Wiping                                                                     */
/* ------------------------------------------------------------------------ */

/* Zeroes every string value of a jansson tree (a kubeconfig, an exec
 * plugin's reply) before it is freed: jansson's memory is plain malloc. The
 * strings are about to be released, so writing through the const pointer
 * jansson gives is safe. */
static void k8s_json_wipe(json_t *j)
{
	const char *key, *s;
	json_t *v;
	size_t i;
	char *w;

	if (json_is_string(j)) {
		s = json_string_value(j);
		memcpy(&w, &s, sizeof(w));
		sodium_memzero(w, json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, key, v) k8s_json_wipe(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) k8s_json_wipe(v);
	}
}

static void k8s_buf_wipe(struct buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	buf_free(b);
}

/* asprintf() that leaves NULL on failure. */
static char *k8s_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *k8s_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static void k8s_blob_free(struct k8s_blob *b)
{
	if (b->data && b->secret)
		sodium_free(b->data);
	else
		free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------------ */
/* YAML to JSON                                                               */
/* ------------------------------------------------------------------------ */

struct k8s_yaml_anchor {
	char *name;
	json_t *value;
};

struct k8s_yaml_frame {
	json_t *node; /* the open array or object */
	char *key;    /* an object's key waiting for its value */
	char *anchor; /* the container's anchor, registered when it closes */
};

struct k8s_yaml_state {
	struct k8s_yaml_frame stack[K8S_YAML_DEPTH];
	size_t depth;
	json_t *root;
	struct k8s_yaml_anchor *anchors;
	size_t nanchors;
};

static int k8s_yaml_anchor_add(struct k8s_yaml_state *st, const yaml_char_t *name, json_t *v)
{
	struct k8s_yaml_anchor *grown;
	char *copy;

	if (!name)
		return 0;
	copy = strdup((const char *)name);
	grown = copy ? realloc(st->anchors, (st->nanchors + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(copy);
		return error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	}
	st->anchors = grown;
	grown[st->nanchors].name = copy;
	grown[st->nanchors++].value = json_incref(v);
	return 0;
}

/* The latest value anchored as name (YAML lets an anchor be redefined). */
static json_t *k8s_yaml_anchor_find(struct k8s_yaml_state *st, const char *name)
{
	for (size_t i = st->nanchors; i > 0; i--)
		if (!strcmp(st->anchors[i - 1].name, name))
			return st->anchors[i - 1].value;
	return NULL;
}

/* Puts a finished value (consumed) where it belongs: the root, the next item
 * of the open sequence, or the key or value of the open mapping. */
static int k8s_yaml_add(struct k8s_yaml_state *st, json_t *v, const yaml_mark_t *m)
{
	struct k8s_yaml_frame *f;
	int rc;

	if (!st->depth) {
		if (st->root)
			json_decref(st->root);
		st->root = v;
		return 0;
	}
	f = &st->stack[st->depth - 1];
	if (json_is_array(f->node))
		return json_array_append_new(f->node, v)
		           ? error_set(CF_ERR_NOMEM, "out of memory reading YAML")
		           : 0;
	if (!f->key) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			json_decref(v);
			return error_set(CF_ERR_FORMAT,
			                 "line %zu, column %zu: a mapping key must be a scalar",
			                 m->line + 1, m->column + 1);
		}
		f->key = strdup(json_string_value(v));
		json_decref(v);
		return f->key ? 0 : error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	}
	rc = json_object_set_new(f->node, f->key, v);
	free(f->key);
	f->key = NULL;
	return rc ? error_set(CF_ERR_NOMEM, "out of memory reading YAML") : 0;
}

static int k8s_yaml_open(struct k8s_yaml_state *st, json_t *node, const yaml_char_t *anchor,
                         const yaml_mark_t *m)
{
	struct k8s_yaml_frame *f;

	if (!node)
		return error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	if (st->depth == K8S_YAML_DEPTH) {
		json_decref(node);
		return error_set(CF_ERR_FORMAT,
		                 "line %zu, column %zu: nested deeper than %d levels", m->line + 1,
		                 m->column + 1, K8S_YAML_DEPTH);
	}
	f = &st->stack[st->depth];
	memset(f, 0, sizeof(*f));
	f->node = node;
	if (anchor && !(f->anchor = strdup((const char *)anchor))) {
		json_decref(node);
		return error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	}
	st->depth++;
	return 0;
}

static int k8s_yaml_close(struct k8s_yaml_state *st, const yaml_mark_t *m)
{
	struct k8s_yaml_frame f = st->stack[--st->depth];
	int rc;

	free(f.key); /* libyaml gives a missing value as an empty scalar: never set here */
	rc = k8s_yaml_anchor_add(st, (const yaml_char_t *)f.anchor, f.node);
	free(f.anchor);
	if (rc) {
		json_decref(f.node);
		return rc;
	}
	return k8s_yaml_add(st, f.node, m);
}

static int k8s_yaml_error(const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	if (p->context)
		return error_set(CF_ERR_FORMAT, "line %zu, column %zu: %s (%s at line %zu)",
		                 p->problem_mark.line + 1, p->problem_mark.column + 1,
		                 p->problem ? p->problem : "malformed YAML", p->context,
		                 p->context_mark.line + 1);
	return error_set(CF_ERR_FORMAT, "line %zu, column %zu: %s", p->problem_mark.line + 1,
	                 p->problem_mark.column + 1, p->problem ? p->problem : "malformed YAML");
}

/* One event of the first document into st. *done is set at its end. */
static int k8s_yaml_event(struct k8s_yaml_state *st, yaml_event_t *ev, int *done)
{
	const yaml_mark_t *m = &ev->start_mark;
	json_t *v;
	int rc = 0;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		v = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
		/* libyaml's copy may be a token or a key: wipe it once it is in v. */
		sodium_memzero(ev->data.scalar.value, ev->data.scalar.length);
		if (!v)
			return error_set(CF_ERR_FORMAT,
			                 "line %zu, column %zu: a scalar jansson cannot hold",
			                 m->line + 1, m->column + 1);
		rc = k8s_yaml_anchor_add(st, ev->data.scalar.anchor, v);
		if (rc) {
			json_decref(v);
			return rc;
		}
		return k8s_yaml_add(st, v, m);
	case YAML_SEQUENCE_START_EVENT:
		return k8s_yaml_open(st, json_array(), ev->data.sequence_start.anchor, m);
	case YAML_MAPPING_START_EVENT:
		return k8s_yaml_open(st, json_object(), ev->data.mapping_start.anchor, m);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return k8s_yaml_close(st, m);
	case YAML_ALIAS_EVENT:
		v = k8s_yaml_anchor_find(st, (const char *)ev->data.alias.anchor);
		if (!v)
			return error_set(CF_ERR_FORMAT, "line %zu, column %zu: unknown anchor '%s'",
			                 m->line + 1, m->column + 1,
			                 (const char *)ev->data.alias.anchor);
		return k8s_yaml_add(st, json_incref(v), m);
	case YAML_DOCUMENT_END_EVENT:
	case YAML_STREAM_END_EVENT:
		*done = 1;
		return 0;
	default:
		return 0;
	}
}

int k8s_yaml_to_json(const char *text, size_t len, json_t **out)
{
	struct k8s_yaml_state *st;
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0, done = 0;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	if (!yaml_parser_initialize(&p)) {
		free(st);
		return error_set(CF_ERR_NOMEM, "out of memory reading YAML");
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!rc && !done) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = k8s_yaml_error(&p);
			break;
		}
		rc = k8s_yaml_event(st, &ev, &done);
		yaml_event_delete(&ev);
	}
	/* libyaml's working copies of the text may hold credentials. */
	if (p.buffer.start)
		sodium_memzero(p.buffer.start, (size_t)(p.buffer.end - p.buffer.start));
	if (p.raw_buffer.start)
		sodium_memzero(p.raw_buffer.start, (size_t)(p.raw_buffer.end - p.raw_buffer.start));
	yaml_parser_delete(&p);
	while (st->depth) {
		struct k8s_yaml_frame *f = &st->stack[--st->depth];

		json_decref(f->node);
		free(f->key);
		free(f->anchor);
	}
	for (size_t i = 0; i < st->nanchors; i++) {
		free(st->anchors[i].name);
		json_decref(st->anchors[i].value);
	}
	free(st->anchors);
	if (!rc) {
		*out = st->root ? st->root : json_null();
		st->root = NULL;
	}
	json_decref(st->root);
	free(st);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading the kubeconfig                                                     */
/* ------------------------------------------------------------------------ */

/* Where the entries being read come from, for messages. */
struct k8s_load {
	const char *path; /* the kubeconfig */
	char *dir;        /* its folder, for relative paths */
	const char *cluster, *user;
};

/* A string value, or NULL when absent, not a string or empty (Go's zero
 * value means "not set" in a kubeconfig). */
static const char *k8s_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : NULL;
}

/* YAML 1.1 booleans, as Go's YAML reader takes them. */
static int k8s_bool(json_t *obj, const char *key)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
	                                  "on",   "On",   "ON",   "y",   "Y"};
	json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);

	if (json_is_true(v))
		return 1;
	for (size_t i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcmp(s, yes[i]))
			return 1;
	return 0;
}

/* The entry of the list (clusters, contexts, users) with that name. */
static json_t *k8s_named(json_t *root, const char *list, const char *name)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(root, list), i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && !strcmp(n, name))
			return e;
	}
	return NULL;
}

/* "a, b, c": the names of a list, for an error message. */
static void k8s_names(json_t *root, const char *list, char *out, size_t outlen)
{
	size_t i, len = 0;
	json_t *e;

	out[0] = '\0';
	json_array_foreach(json_object_get(root, list), i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		int w;

		if (!n)
			continue;
		w = snprintf(out + len, outlen - len, "%s%s", len ? ", " : "", n);
		if (w < 0 || (size_t)w >= outlen - len)
			break;
		len += (size_t)w;
	}
	if (!len)
		snprintf(out, outlen, "none");
}

/* A path from the kubeconfig, absolute: relative ones are relative to the
 * kubeconfig's folder, as kubectl takes them. */
static int k8s_path(const struct k8s_load *l, const char *p, char **out)
{
	free(*out);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (p[0] == '/' || !l->dir)
		*out = strdup(p);
	else
		*out = k8s_printf("%s/%s", l->dir, p);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}

/* A file the client will read later must be readable now, so a typo is found
 * at open and named there. */
static int k8s_readable(const char *path, const char *key, const char *entry, const char *name,
                        const char *file)
{
	if (access(path, R_OK) == 0)
		return 0;
	if (file)
		return error_set_errno(CF_ERR_CONFIG, errno, "cannot read %s %s of %s '%s' in %s",
		                       key, path, entry, name, file);
	return error_set_errno(CF_ERR_CONFIG, errno, "cannot read %s %s", key, path);
}

/* Decodes base64 (kubeconfig *-data keys) into a blob. */
static int k8s_blob_b64(const char *b64, int secret, struct k8s_blob *out, const char *key,
                        const char *entry, const char *name, const char *file)
{
	size_t n = strlen(b64), max = n / 4 * 3 + 3, len = 0;
	uint8_t *d = secret ? sodium_malloc(max + 1) : malloc(max + 1);

	k8s_blob_free(out);
	if (!d)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (sodium_base642bin(d, max, b64, n, " \t\r\n", &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) &&
	    sodium_base642bin(d, max, b64, n, " \t\r\n", &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING)) {
		if (secret)
			sodium_free(d);
		else
			free(d);
		return error_set(CF_ERR_CONFIG, "%s of %s '%s' in %s is not valid base64", key,
		                 entry, name, file);
	}
	d[len] = '\0';
	out->data = d;
	out->len = len;
	out->secret = secret;
	return 0;
}

static int k8s_blob_text(const char *text, int secret, struct k8s_blob *out)
{
	size_t n = strlen(text);
	uint8_t *d = secret ? sodium_malloc(n + 1) : malloc(n + 1);

	k8s_blob_free(out);
	if (!d)
		return error_set(CF_ERR_NOMEM, "out of memory");
	memcpy(d, text, n + 1);
	out->data = d;
	out->len = n;
	out->secret = secret;
	return 0;
}

/* Reads a token file into sodium memory, without surrounding whitespace. */
static int k8s_token_read(const char *path, char **out)
{
	char *s = sodium_malloc(K8S_TOKEN_MAX + 1);
	size_t n = 0, start = 0;
	int fd, rc = 0;

	if (!s)
		return error_set(CF_ERR_NOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sodium_free(s);
		return error_set_errno(CF_ERR_CONFIG, errno, "cannot read the token file %s", path);
	}
	while (!rc && n < K8S_TOKEN_MAX) {
		ssize_t r = read(fd, s + n, K8S_TOKEN_MAX - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = error_set_errno(CF_ERR_CONFIG, errno, "cannot read the token file %s",
			                     path);
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	close(fd);
	while (n && strchr(" \t\r\n", s[n - 1]))
		n--;
	while (start < n && strchr(" \t\r\n", s[start]))
		start++;
	if (!rc && start == n)
		rc = error_set(CF_ERR_CONFIG, "the token file %s is empty", path);
	if (rc) {
		sodium_free(s);
		return rc;
	}
	memmove(s, s + start, n - start);
	s[n - start] = '\0';
	secret_free(*out);
	*out = s;
	return 0;
}

static int k8s_cluster_load(struct k8s_client *c, const struct k8s_load *l, json_t *cl)
{
	const char *server = k8s_str(cl, "server"), *s;
	size_t n;
	int rc = 0;

	if (!server)
		return error_set(CF_ERR_CONFIG, "cluster '%s' in %s has no server", l->cluster,
		                 l->path);
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return error_set(
		    CF_ERR_CONFIG,
		    "cluster '%s' in %s: server '%s' must start with https:// or http://",
		    l->cluster, l->path, server);
	n = strlen(server);
	while (n && server[n - 1] == '/')
		n--;
	c->server = strndup(server, n);
	if (!c->server)
		return error_set(CF_ERR_NOMEM, "out of memory");
	/* Inline data wins over a file, as in client-go. */
	if ((s = k8s_str(cl, "certificate-authority-data")))
		rc = k8s_blob_b64(s, 0, &c->ca_data, "certificate-authority-data", "cluster",
		                  l->cluster, l->path);
	else if ((s = k8s_str(cl, "certificate-authority"))) {
		rc = k8s_path(l, s, &c->ca_file);
		if (!rc)
			rc = k8s_readable(c->ca_file, "certificate-authority", "cluster",
			                  l->cluster, l->path);
	}
	c->insecure = k8s_bool(cl, "insecure-skip-tls-verify");
	if (!rc && (s = k8s_str(cl, "tls-server-name")) && !(c->tls_server_name = strdup(s)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc && (s = k8s_str(cl, "proxy-url")) && !(c->proxy_url = strdup(s)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	return rc;
}

/* KUBERNETES_EXEC_INFO: the ExecCredential the plugin is given, with the
 * cluster when the stanza asks for it (provideClusterInfo). */
static int k8s_exec_info(struct k8s_client *c, json_t *x, char **out)
{
	json_t *info, *spec, *cl = NULL;
	char *ca = NULL;
	int bad;

	info = json_object();
	spec = json_object();
	bad = !info || !spec;
	bad |= json_object_set_new(info, "apiVersion", json_string(c->exec->api_version));
	bad |= json_object_set_new(info, "kind", json_string("ExecCredential"));
	bad |= json_object_set_new(spec, "interactive", json_false());
	if (k8s_bool(x, "provideClusterInfo")) {
		struct buf pem;

		buf_init(&pem, 1024 * 1024);
		if (!c->ca_data.len && c->ca_file && fs_read_file(c->ca_file, pem.max, &pem) == 0)
			error_clear(); /* unreadable: it was checked, and curl will say */
		if (c->ca_data.len || pem.len) {
			const uint8_t *d = c->ca_data.len ? c->ca_data.data : pem.data;
			size_t n = c->ca_data.len ? c->ca_data.len : pem.len;
			size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);

			ca = malloc(cap);
			if (ca)
				sodium_bin2base64(ca, cap, d, n, sodium_base64_VARIANT_ORIGINAL);
			bad |= !ca;
		}
		buf_free(&pem);
		cl = json_object();
		bad |= !cl;
		bad |= json_object_set_new(cl, "server", json_string(c->server));
		if (c->tls_server_name)
			bad |= json_object_set_new(cl, "tls-server-name",
			                           json_string(c->tls_server_name));
		if (c->proxy_url)
			bad |= json_object_set_new(cl, "proxy-url", json_string(c->proxy_url));
		if (c->insecure)
			bad |= json_object_set_new(cl, "insecure-skip-tls-verify", json_true());
		if (ca)
			bad |=
			    json_object_set_new(cl, "certificate-authority-data", json_string(ca));
		bad |= json_object_set_new(spec, "cluster", cl);
	}
	bad |= json_object_set_new(info, "spec", spec);
	*out = bad ? NULL : json_dumps(info, JSON_COMPACT);
	free(ca);
	json_decref(info);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}

static int k8s_exec_load(struct k8s_client *c, const struct k8s_load *l, json_t *x)
{
	const char *api = k8s_str(x, "apiVersion"), *cmd = k8s_str(x, "command"), *s;
	struct k8s_exec *e;
	char *path = NULL, *info = NULL;
	json_t *v;
	size_t i;
	int rc = 0;

	if (!api || (strcmp(api, K8S_EXEC_V1) != 0 && strcmp(api, K8S_EXEC_V1BETA1) != 0))
		return error_set(
		    CF_ERR_UNSUPPORTED,
		    "user '%s' in %s: exec apiVersion '%s' is not supported (use %s or %s)",
		    l->user, l->path, api ? api : "", K8S_EXEC_V1, K8S_EXEC_V1BETA1);
	if (!cmd)
		return error_set(CF_ERR_CONFIG, "user '%s' in %s: exec has no command", l->user,
		                 l->path);
	if ((s = k8s_str(x, "interactiveMode")) && !strcmp(s, "Always"))
		return error_set(
		    CF_ERR_CONFIG,
		    "user '%s' in %s: the exec plugin '%s' needs a terminal (interactiveMode: "
		    "Always), which a backup does not have",
		    l->user, l->path, cmd);
	e = calloc(1, sizeof(*e));
	if (!e)
		return error_set(CF_ERR_NOMEM, "out of memory");
	c->exec = e;
	e->api_version = strdup(api);
	if ((s = k8s_str(x, "installHint")))
		e->install_hint = strdup(s);
	if (!e->api_version || (s && !e->install_hint))
		return error_set(CF_ERR_NOMEM, "out of memory");
	/* A command with a '/' is a path, relative to the kubeconfig's folder;
	 * a bare name is looked up in PATH. */
	if (strchr(cmd, '/'))
		rc = k8s_path(l, cmd, &path);
	if (!rc)
		rc = strv_add(&e->argv, path ? path : cmd);
	free(path);
	json_array_foreach(json_object_get(x, "args"), i, v)
	{
		if (rc)
			break;
		if (!json_is_string(v))
			rc = error_set(CF_ERR_CONFIG, "user '%s' in %s: exec args must be strings",
			               l->user, l->path);
		else
			rc = strv_add(&e->argv, json_string_value(v));
	}
	json_array_foreach(json_object_get(x, "env"), i, v)
	{
		const char *name = k8s_str(v, "name"),
		           *value = json_string_value(json_object_get(v, "value"));

		if (rc)
			break;
		if (!name || strchr(name, '='))
			rc = error_set(CF_ERR_CONFIG,
			               "user '%s' in %s: an exec env entry has no valid name",
			               l->user, l->path);
		else
			rc = strv_add_env(&e->env, name, value ? value : "");
	}
	if (!rc)
		rc = k8s_exec_info(c, x, &info);
	if (!rc)
		rc = strv_add_env(&e->env, "KUBERNETES_EXEC_INFO", info);
	free(info);
	return rc;
}

static int k8s_user_load(struct k8s_client *c, const struct k8s_load *l, json_t *u)
{
	const char *s, *cert, *key;
	json_t *v;
	size_t i;
	int rc = 0;

	if ((v = json_object_get(u, "auth-provider")))
		return error_set(
		    CF_ERR_UNSUPPORTED,
		    "user '%s' in %s uses auth-provider '%s', which coffer does not support; "
		    "use an exec credential plugin (kubelogin, gke-gcloud-auth-plugin...)",
		    l->user, l->path, k8s_str(v, "name") ? k8s_str(v, "name") : "?");
	/* Client certificate and key: inline data wins over files. */
	cert = k8s_str(u, "client-certificate-data");
	key = k8s_str(u, "client-key-data");
	if (cert)
		rc = k8s_blob_b64(cert, 0, &c->cert_data, "client-certificate-data", "user",
		                  l->user, l->path);
	else if ((cert = k8s_str(u, "client-certificate"))) {
		rc = k8s_path(l, cert, &c->cert_file);
		if (!rc)
			rc = k8s_readable(c->cert_file, "client-certificate", "user", l->user,
			                  l->path);
	}
	if (!rc && key)
		rc =
		    k8s_blob_b64(key, 1, &c->key_data, "client-key-data", "user", l->user, l->path);
	else if (!rc && (key = k8s_str(u, "client-key"))) {
		rc = k8s_path(l, key, &c->key_file);
		if (!rc)
			rc = k8s_readable(c->key_file, "client-key", "user", l->user, l->path);
	}
	if (!rc && !cert != !key)
		rc = error_set(CF_ERR_CONFIG, "user '%s' in %s has a client %s but no client %s",
		               l->user, l->path, cert ? "certificate" : "key",
		               cert ? "key" : "certificate");
	if (!rc && cert)
		c->auth = K8S_AUTH_CERT;
	if (!rc && (s = k8s_str(u, "username"))) {
		const char *pw = json_string_value(json_object_get(u, "password"));

		c->username = strdup(s);
		c->password = secret_strndup(pw ? pw : "", pw ? strlen(pw) : 0);
		if (!c->username || !c->password)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		c->auth = K8S_AUTH_BASIC;
	}
	/* A token file is read again when the server refuses the token, which
	 * is how a rotated token is picked up, so it wins over an inline token
	 * (client-go's rule). */
	if (!rc && (s = k8s_str(u, "tokenFile"))) {
		rc = k8s_path(l, s, &c->token_file);
		c->auth = K8S_AUTH_TOKEN_FILE;
	} else if (!rc && (s = k8s_str(u, "token"))) {
		c->token = secret_strndup(s, strlen(s));
		if (!c->token)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		c->auth = K8S_AUTH_TOKEN;
	}
	if (!rc && c->username && (c->token || c->token_file))
		rc = error_set(CF_ERR_CONFIG,
		               "user '%s' in %s has both a token and a username: use one", l->user,
		               l->path);
	if (!rc && (v = json_object_get(u, "exec")) && json_is_object(v)) {
		rc = k8s_exec_load(c, l, v);
		c->auth = K8S_AUTH_EXEC;
	}
	if (!rc && (s = k8s_str(u, "as")) && !(c->impersonate = strdup(s)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	json_array_foreach(json_object_get(u, "as-groups"), i, v)
	{
		if (!rc && json_is_string(v))
			rc = strv_add(&c->impersonate_groups, json_string_value(v));
	}
	return rc;
}

static int k8s_kubeconfig_load(struct k8s_client *c, const char *path, const char *want)
{
	struct k8s_load l = {path, NULL, NULL, NULL};
	json_t *root = NULL, *ctx, *cl, *u = NULL;
	char names[512], msg[1024];
	const char *name, *s;
	struct buf text;
	int rc;

	buf_init(&text, K8S_KUBECONFIG_MAX);
	rc = fs_read_file(path, text.max, &text);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", error_message());
		rc = error_set(CF_ERR_CONFIG, "cannot read the kubeconfig: %s", msg);
	}
	if (!rc) {
		rc = k8s_yaml_to_json((const char *)text.data, text.len, &root);
		if (rc == CF_ERR_FORMAT) {
			snprintf(msg, sizeof(msg), "%s", error_message());
			rc = error_set(CF_ERR_CONFIG, "kubeconfig %s: %s", path, msg);
		}
	}
	k8s_buf_wipe(&text);
	if (!rc && !json_is_object(root))
		rc = error_set(CF_ERR_CONFIG, "kubeconfig %s is empty or not a YAML mapping", path);
	if (rc)
		goto out;
	l.dir = strdup(path);
	if (!l.dir) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	*strrchr(l.dir, '/') = '\0'; /* path is absolute */
	k8s_names(root, "contexts", names, sizeof(names));
	name = want && *want ? want : k8s_str(root, "current-context");
	if (!name) {
		rc = error_set(CF_ERR_CONFIG,
		               "kubeconfig %s has no current-context: name one with context = NAME "
		               "(contexts: %s)",
		               path, names);
		goto out;
	}
	ctx = k8s_named(root, "contexts", name);
	if (!ctx) {
		rc = error_set(CF_ERR_CONFIG, "context '%s' is not in kubeconfig %s (contexts: %s)",
		               name, path, names);
		goto out;
	}
	ctx = json_object_get(ctx, "context");
	l.cluster = k8s_str(ctx, "cluster");
	l.user = k8s_str(ctx, "user");
	if (!l.cluster) {
		rc = error_set(CF_ERR_CONFIG, "context '%s' in %s names no cluster", name, path);
		goto out;
	}
	cl = k8s_named(root, "clusters", l.cluster);
	if (!cl) {
		rc = error_set(CF_ERR_CONFIG,
		               "context '%s' in %s names cluster '%s', which it does not define",
		               name, path, l.cluster);
		goto out;
	}
	if (l.user && !(u = k8s_named(root, "users", l.user))) {
		rc = error_set(CF_ERR_CONFIG,
		               "context '%s' in %s names user '%s', which it does not define", name,
		               path, l.user);
		goto out;
	}
	c->kubeconfig = strdup(path);
	c->context = strdup(name);
	c->cluster = strdup(l.cluster);
	c->user = strdup(l.user ? l.user : "");
	if ((s = k8s_str(ctx, "namespace")))
		c->ns = strdup(s);
	if (!c->kubeconfig || !c->context || !c->cluster || !c->user || (s && !c->ns)) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = k8s_cluster_load(c, &l, json_object_get(cl, "cluster"));
	if (!rc && u)
		rc = k8s_user_load(c, &l, json_object_get(u, "user"));
out:
	free(l.dir);
	k8s_json_wipe(root);
	json_decref(root);
	return rc;
}

/* The kubeconfig to read, absolute, or *path NULL for in-cluster credentials. */
static int k8s_kubeconfig_find(const struct k8s_conn_options *o, char **path)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME"), *found = NULL;
	char buf[PATH_MAX], *p = NULL;

	*path = NULL;
	if (o->kubeconfig && *o->kubeconfig) {
		found = o->kubeconfig;
	} else if (env && *env) {
		/* The first file of the list that exists; the others are not
		 * merged into it, unlike kubectl. */
		for (const char *s = env; *s && !found;) {
			size_t n = strcspn(s, ":");

			if (n && n < sizeof(buf)) {
				memcpy(buf, s, n);
				buf[n] = '\0';
				if (access(buf, F_OK) == 0)
					found = buf;
			}
			s += n;
			if (*s == ':')
				s++;
		}
		if (!found)
			return error_set(CF_ERR_CONFIG, "no file of $KUBECONFIG (%s) exists", env);
	} else if (home && *home) {
		if (snprintf(buf, sizeof(buf), "%s/.kube/config", home) < (int)sizeof(buf) &&
		    access(buf, F_OK) == 0)
			found = buf;
	}
	if (!found) {
		if (getenv("KUBERNETES_SERVICE_HOST"))
			return 0;
		return error_set(CF_ERR_CONFIG,
		                 "no kubeconfig: set kubeconfig = PATH or $KUBECONFIG, or create "
		                 "~/.kube/config (and not running in a pod)");
	}
	p = realpath(found, NULL);
	if (!p)
		return error_set_errno(CF_ERR_CONFIG, errno, "cannot read the kubeconfig %s",
		                       found);
	*path = p;
	return 0;
}

/* The pod's service account: token, CA and namespace files, and the API
 * server's address from the variables the kubelet sets. */
static int k8s_in_cluster(struct k8s_client *c)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
	           *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv("COFFER_K8S_SA_DIR");
	struct buf ns;
	int rc;

	if (!host || !*host)
		return error_set(CF_ERR_CONFIG,
		                 "in-cluster credentials need KUBERNETES_SERVICE_HOST "
		                 "(is coffer running in a pod?)");
	if (!dir || !*dir)
		dir = K8S_SA_DIR;
	if (!port || !*port)
		port = "443";
	/* An IPv6 address goes in brackets. */
	if (strchr(host, ':'))
		c->server = k8s_printf("https://[%s]:%s", host, port);
	else
		c->server = k8s_printf("https://%s:%s", host, port);
	c->token_file = k8s_printf("%s/token", dir);
	c->ca_file = k8s_printf("%s/ca.crt", dir);
	if (!c->server || !c->token_file || !c->ca_file)
		return error_set(CF_ERR_NOMEM, "out of memory");
	c->auth = K8S_AUTH_TOKEN_FILE;
	rc = k8s_readable(c->ca_file, "the service account CA", NULL, NULL, NULL);
	if (rc)
		return rc;
	buf_init(&ns, 4096);
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/namespace", dir);
		if (fs_read_file(p, ns.max, &ns) == 0 && ns.len) {
			size_t n = strcspn((const char *)ns.data, " \t\r\n");

			if (n && !(c->ns = strndup((const char *)ns.data, n)))
				rc = error_set(CF_ERR_NOMEM, "out of memory");
		}
		error_clear(); /* the namespace file is optional */
	}
	buf_free(&ns);
	return rc;
}

/* With tls-server-name, requests go to that name (so curl sends it for SNI
 * and checks the certificate against it) while CURLOPT_CONNECT_TO sends the
 * connection to the server's real host and port. */
static int k8s_server_prepare(struct k8s_client *c)
{
	char *host = NULL, *port = NULL, *url = NULL;
	CURLU *u;
	int rc = 0;

	if (!c->tls_server_name) {
		c->url_base = strdup(c->server);
		return c->url_base ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
	}
	u = curl_url();
	if (!u)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, c->server, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ||
	    curl_url_set(u, CURLUPART_HOST, c->tls_server_name, 0) ||
	    curl_url_get(u, CURLUPART_URL, &url, 0)) {
		rc = error_set(CF_ERR_CONFIG, "cannot use server '%s' with tls-server-name '%s'",
		               c->server, c->tls_server_name);
	} else {
		size_t n = strlen(url);

		while (n && url[n - 1] == '/')
			n--;
		c->url_base = strndup(url, n);
		c->connect_to = k8s_printf("%s:%s:%s:%s", c->tls_server_name, port, host, port);
		if (!c->url_base || !c->connect_to)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	curl_free(host);
	curl_free(port);
	curl_free(url);
	curl_url_cleanup(u);
	return rc;
}

/* RFC 3339 ("2024-05-01T10:00:00Z", fractions and offsets allowed) to ms
 * since the epoch; 0 when it cannot be read. */
static int64_t k8s_time_parse(const char *s)
{
	struct tm tm;
	const char *p;
	long off = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!p)
		return 0;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
		      ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		if (*p == '-')
			off = -off;
		p += 6;
	}
	if (*p)
		return 0;
	t = timegm(&tm);
	return t == (time_t)-1 ? 0 : ((int64_t)t - off) * 1000;
}

/* Runs the exec plugin and takes its credential. */
static int k8s_exec_run(struct k8s_client *c)
{
	struct k8s_exec *e = c->exec;
	struct proc_spec spec;
	json_error_t jerr;
	json_t *j = NULL, *st;
	const char *token, *cert, *key;
	char label[512], msg[2048];
	struct buf out;
	int rc;

	snprintf(label, sizeof(label), "kubernetes exec plugin '%s' (user '%s' in %s)",
	         e->argv.v[0], c->user ? c->user : "", c->kubeconfig ? c->kubeconfig : "");
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = e->argv.v;
	spec.env = e->env.v;
	spec.errcode = CF_ERR_AUTH;
	spec.stderr_debug = 1;
	buf_init(&out, K8S_EXEC_OUT_MAX);
	/* Room for any usual reply at once, so no realloc leaves a copy behind. */
	rc = buf_reserve(&out, 64 * 1024);
	if (!rc)
		rc = proc_capture(&spec, &out);
	if (rc && e->install_hint) {
		snprintf(msg, sizeof(msg), "%s", error_message());
		rc = error_set(rc, "%s (%s)", msg, e->install_hint);
	}
	if (rc)
		goto out;
	j = json_loadb((const char *)out.data, out.len, 0, &jerr);
	if (!json_is_object(j)) {
		rc = error_set(CF_ERR_AUTH, "%s: its output is not an ExecCredential (%s)", label,
		               j ? "not an object" : jerr.text);
		goto out;
	}
	st = json_object_get(j, "status");
	token = k8s_str(st, "token");
	cert = k8s_str(st, "clientCertificateData");
	key = k8s_str(st, "clientKeyData");
	if (!token && !(cert && key)) {
		rc = error_set(CF_ERR_AUTH,
		               "%s returned no credential (neither status.token nor "
		               "status.clientCertificateData and clientKeyData)",
		               label);
		goto out;
	}
	if (token) {
		char *t = secret_strndup(token, strlen(token));

		if (!t) {
			rc = error_set(CF_ERR_NOMEM, "out of memory");
			goto out;
		}
		secret_free(c->token);
		c->token = t;
	}
	if (cert && key) {
		/* An ExecCredential carries PEM text, not base64. */
		rc = k8s_blob_text(cert, 0, &c->cert_data);
		if (!rc)
			rc = k8s_blob_text(key, 1, &c->key_data);
	}
	c->expiry_ms = k8s_time_parse(k8s_str(st, "expirationTimestamp"));
	log_debug("k8s: %s gave a %s%s", label, token ? "token" : "client certificate",
	          c->expiry_ms ? " that expires" : "");
out:
	k8s_json_wipe(j);
	json_decref(j);
	k8s_buf_wipe(&out);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The client                                                                 */
/* ------------------------------------------------------------------------ */

int k8s_client_renewable(const struct k8s_client *c)
{
	return c->exec || c->token_file;
}

int k8s_client_renew(struct k8s_client *c)
{
	if (c->exec)
		return k8s_exec_run(c);
	if (c->token_file)
		return k8s_token_read(c->token_file, &c->token);
	return 0;
}

static void k8s_describe(struct k8s_client *c)
{
	char auth[600];
	int n;

	switch (c->auth) {
	case K8S_AUTH_TOKEN:
		snprintf(auth, sizeof(auth), "token");
		break;
	case K8S_AUTH_TOKEN_FILE:
		snprintf(auth, sizeof(auth), "token file %s", c->token_file);
		break;
	case K8S_AUTH_CERT:
		snprintf(auth, sizeof(auth), "client certificate");
		break;
	case K8S_AUTH_BASIC:
		snprintf(auth, sizeof(auth), "basic auth as '%s'", c->username);
		break;
	case K8S_AUTH_EXEC:
		snprintf(auth, sizeof(auth), "exec plugin '%s'", c->exec->argv.v[0]);
		break;
	default:
		snprintf(auth, sizeof(auth), "no credentials");
		break;
	}
	if (c->kubeconfig)
		n = snprintf(c->describe, sizeof(c->describe), "context '%s' of %s: %s, %s",
		             c->context, c->kubeconfig, c->server, auth);
	else
		n = snprintf(c->describe, sizeof(c->describe), "in-cluster service account: %s, %s",
		             c->server, auth);
	if (c->insecure && n > 0 && (size_t)n < sizeof(c->describe))
		snprintf(c->describe + n, sizeof(c->describe) - (size_t)n,
		         ", insecure-skip-tls-verify");
}

int k8s_client_open(const struct k8s_conn_options *o, struct k8s_client **out)
{
	struct k8s_client *c;
	char *path = NULL;
	int rc = 0;

	*out = NULL;
	if (sodium_init() < 0)
		return error_set(CF_ERR_INTERNAL, "libsodium cannot be initialised");
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 30;
	if (!o->in_cluster)
		rc = k8s_kubeconfig_find(o, &path);
	if (!rc && path)
		rc = k8s_kubeconfig_load(c, path, o->context);
	else if (!rc)
		rc = k8s_in_cluster(c);
	free(path);
	if (!rc)
		rc = k8s_server_prepare(c);
	if (!rc && k8s_client_renewable(c))
		rc = k8s_client_renew(c);
	if (rc) {
		k8s_client_free(c);
		return rc;
	}
	k8s_describe(c);
	if (c->insecure)
		log_warn("k8s: cluster '%s': insecure-skip-tls-verify is set; the API server's "
		         "certificate is not checked",
		         c->cluster ? c->cluster : c->server);
	log_debug("k8s: %s", c->describe);
	*out = c;
	return 0;
}

void k8s_client_free(struct k8s_client *c)
{
	if (!c)
		return;
	http_client_free(c->http);
	if (c->exec) {
		free(c->exec->api_version);
		/* The plugin's env may hold secrets too (an API key). */
		for (size_t i = 0; i < c->exec->env.n; i++)
			sodium_memzero(c->exec->env.v[i], strlen(c->exec->env.v[i]));
		strv_free(&c->exec->argv);
		strv_free(&c->exec->env);
		free(c->exec->install_hint);
		free(c->exec);
	}
	free(c->kubeconfig);
	free(c->context);
	free(c->cluster);
	free(c->user);
	free(c->ns);
	free(c->server);
	free(c->url_base);
	free(c->connect_to);
	free(c->tls_server_name);
	free(c->proxy_url);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	k8s_blob_free(&c->ca_data);
	k8s_blob_free(&c->cert_data);
	k8s_blob_free(&c->key_data);
	secret_free(c->token);
	free(c->token_file);
	free(c->username);
	secret_free(c->password);
	free(c->impersonate);
	strv_free(&c->impersonate_groups);
	free(c);
}

const char *k8s_client_server(const struct k8s_client *c)
{
	return c->server;
}

const char *k8s_client_namespace(const struct k8s_client *c)
{
	return c->ns;
}

const char *k8s_client_describe(const struct k8s_client *c)
{
	return c->describe;
}
