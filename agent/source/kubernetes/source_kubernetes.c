/*
 * source_kubernetes: every object of a cluster, read from the API server
 * (k8s.h), cleaned of what the server assigns (k8s_clean.c), one YAML file
 * per object in a tar stream "manifests":
 *   namespaces/<ns>/<group>/<Kind>/<name>.yaml, cluster/<group>/<Kind>/<name>.yaml
 * plus cluster-info.json (server version, the resources found with their
 * counts, what was skipped or forbidden and why). Nothing is spooled: each
 * object goes into the archive as its list page arrives.
 */
#include "agent/agent.h"
#include "agent/pipeline.h"
#include "agent/source/kubernetes/k8s.h"
#include "agent/source/kubernetes/k8s_object.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K8S_YAML_MAX (64 * 1024 * 1024)

struct source_kubernetes {
	char *name;
	char *kubeconfig, *context, *label_selector, *page_size_text, *timeout_text;
	struct strv namespaces, exclude_namespaces, kinds, exclude_kinds;
	int in_cluster, secrets, keep_last_applied, owned;
};
_Static_assert(offsetof(struct source_kubernetes, name) == 0,
               "source_state_new() needs the name first");

#define K8K(n, t, f)                                                                               \
	{                                                                                          \
		n, t, offsetof(struct source_kubernetes, f)                                        \
	}
#define K8L(n, f)                                                                                  \
	{                                                                                          \
		n, SOURCE_KEY_LIST, offsetof(struct source_kubernetes, f)                          \
	}
static const struct source_key source_kubernetes_keys[] = {
    K8K("kubeconfig", SOURCE_KEY_PATH, kubeconfig),
    K8K("context", SOURCE_KEY_STR, context),
    K8K("in_cluster", SOURCE_KEY_BOOL, in_cluster),
    K8L("namespaces", namespaces),
    K8L("exclude_namespaces", exclude_namespaces),
    K8L("kinds", kinds),
    K8L("exclude_kinds", exclude_kinds),
    K8K("label_selector", SOURCE_KEY_STR, label_selector),
    K8K("secrets", SOURCE_KEY_BOOL, secrets),
    K8K("keep_last_applied", SOURCE_KEY_BOOL, keep_last_applied),
    K8K("owned", SOURCE_KEY_BOOL, owned),
    K8K("page_size", SOURCE_KEY_STR, page_size_text),
    K8K("timeout", SOURCE_KEY_STR, timeout_text),
    {NULL, SOURCE_KEY_STR, 0},
};
#undef K8K
#undef K8L

/* One run. */
struct k8s_run {
	struct source_kubernetes *s;
	struct backup_run *run;
	struct source_tar_out out;
	struct archive *tar;
	struct buf yaml;
	time_t mtime;
	json_t *resources; /* cluster-info: found resources with counts */
	json_t *skipped;   /* cluster-info: what was left out and why */
	size_t objects, owned_skipped;
	size_t count; /* of the resource being listed */
};

static int source_kubernetes_create(const char *name, void **state)
{
	return source_state_new(sizeof(struct source_kubernetes), name, state);
}

static void source_kubernetes_free(void *state)
{
	source_state_free(source_kubernetes_keys, state);
}

static int source_kubernetes_set(void *state, const char *key, const char *value)
{
	return source_keys_set(source_kubernetes_keys, state, key, value);
}

static long source_kubernetes_number(const char *text, long dflt)
{
	return text ? strtol(text, NULL, 10) : dflt;
}

static int source_kubernetes_check(void *state)
{
	struct source_kubernetes *s = state;
	long v;

	if (s->page_size_text && ((v = strtol(s->page_size_text, NULL, 10)) < 1 || v > 10000))
		return error_set(CF_ERR_CONFIG, "page_size = '%s': expected 1 to 10000",
		                 s->page_size_text);
	if (s->timeout_text && ((v = strtol(s->timeout_text, NULL, 10)) < 1 || v > 3600))
		return error_set(CF_ERR_CONFIG, "timeout = '%s': expected 1 to 3600 seconds",
		                 s->timeout_text);
	if (s->in_cluster && (s->kubeconfig || s->context))
		return error_set(CF_ERR_CONFIG,
		                 "in_cluster = true excludes kubeconfig and context");
	return 0;
}

/* Adds one file to the archive. */
static int k8s_tar_add(struct k8s_run *r, const char *path, const void *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	if (!e)
		return error_set(CF_ERR_NOMEM, "out of memory");
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, r->mtime, 0);
	if (archive_write_header(r->tar, e) != ARCHIVE_OK ||
	    (len && archive_write_data(r->tar, data, len) != (la_ssize_t)len))
		rc = source_tar_error(&r->out, r->tar, r->s->name, path);
	archive_entry_free(e);
	return rc;
}

/* "deployments.apps", "configmaps": how cluster-info.json and the log name a
 * resource. */
static void k8s_resource_label(const struct k8s_resource *res, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s", res->name, res->group && *res->group ? "." : "",
	         res->group ? res->group : "");
}

/* Records in cluster-info.json what was left out and why. */
static void k8s_record_skip(struct k8s_run *r, const char *what, const char *reason)
{
	json_t *o = json_pack("{s:s, s:s}", "resource", what, "reason", reason);

	if (o)
		json_array_append_new(r->skipped, o);
}

/* The same for what was meant to be backed up: the backup is then partial
 * (backup_run_add_missing() says so in the log). Out of memory here only
 * loses the entry in the list; the count and the warning stay. */
static void k8s_skip(struct k8s_run *r, const char *what, const char *reason)
{
	k8s_record_skip(r, what, reason);
	if (backup_run_add_missing(r->run, what, reason))
		error_clear();
}

static void k8s_skip_gv(void *ctx, const char *gv, const char *reason)
{
	k8s_skip(ctx, gv, reason);
}

static int k8s_item(void *ctx, const struct k8s_resource *res, json_t *item)
{
	struct k8s_run *r = ctx;
	const char *ns =
	    json_string_value(json_object_get(json_object_get(item, "metadata"), "namespace"));
	const char *name =
	    json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
	struct k8s_clean_options co = {r->s->keep_last_applied};
	char path[1024];
	int rc;

	if (backup_run_interrupted(r->run))
		return error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal",
		                 r->s->name);
	/* Objects a controller makes again (a Deployment's ReplicaSets, their Pods). */
	if (!r->s->owned && k8s_is_controlled(item)) {
		r->owned_skipped++;
		return 0;
	}
	if (ns && r->s->exclude_namespaces.n && strv_has(&r->s->exclude_namespaces, ns))
		return 0;
	/* With a namespace filter, Namespace objects follow it too. */
	if (!res->namespaced && !strcmp(res->name, "namespaces") && (!res->group || !*res->group) &&
	    name &&
	    ((r->s->namespaces.n && !strv_has(&r->s->namespaces, name)) ||
	     strv_has(&r->s->exclude_namespaces, name)))
		return 0;
	k8s_clean(item, &co);
	rc = k8s_object_path(res, item, path, sizeof(path));
	if (rc) {
		k8s_skip(r, res->kind, error_message());
		return 0;
	}
	r->yaml.len = 0;
	rc = k8s_yaml_emit(item, &r->yaml);
	if (!rc)
		rc = k8s_tar_add(r, path, r->yaml.data, r->yaml.len);
	if (!rc) {
		r->objects++;
		r->count++;
	}
	return rc;
}

/* Whether the resource is backed up, and why not. */
static const char *k8s_excluded(const struct source_kubernetes *s, const struct k8s_resource *res)
{
	for (size_t i = 0; i < s->exclude_kinds.n; i++)
		if (k8s_kind_matches(s->exclude_kinds.v[i], res))
			return "exclude_kinds";
	if (s->kinds.n) {
		for (size_t i = 0; i < s->kinds.n; i++)
			if (k8s_kind_matches(s->kinds.v[i], res))
				goto included;
		return "not in kinds";
	}
	for (size_t i = 0; k8s_default_excluded[i]; i++)
		if (k8s_kind_matches(k8s_default_excluded[i], res))
			return "runtime state, excluded by default";
included:
	if (!s->secrets && !strcmp(res->name, "secrets") && (!res->group || !*res->group))
		return "secrets = false";
	return NULL;
}

static int k8s_list_resource(struct k8s_run *r, struct k8s_client *c,
                             const struct k8s_resource *res)
{
	struct source_kubernetes *s = r->s;
	long page = source_kubernetes_number(s->page_size_text, 500);
	char what[512];
	json_t *o;
	int rc = 0;

	k8s_resource_label(res, what, sizeof(what));
	r->count = 0;
	if (res->namespaced && s->namespaces.n) {
		for (size_t i = 0; !rc && i < s->namespaces.n; i++)
			rc = k8s_list(c, res, s->namespaces.v[i], s->label_selector, page, k8s_item,
			              r);
	} else {
		rc = k8s_list(c, res, NULL, s->label_selector, page, k8s_item, r);
	}
	if (rc == CF_ERR_AUTH && !backup_run_strict(r->run)) {
		/* RBAC forbids this one: recorded, not fatal. A bad credential
		 * already failed at discovery. */
		k8s_skip(r, what, error_message());
		return 0;
	}
	if (rc && rc != CF_ERR_INTERRUPTED) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", error_message());
		return error_set(rc, "source %s: listing %s: %s", s->name, what, msg);
	}
	if (rc)
		return rc;
	o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "group", res->group ? res->group : "",
	              "version", res->version, "kind", res->kind, "resource", res->name,
	              "namespaced", res->namespaced, "count", (json_int_t)r->count);
	if (!o || json_array_append_new(r->resources, o))
		return error_set(CF_ERR_NOMEM, "out of memory");
	return 0;
}

static int k8s_cluster_info(struct k8s_run *r, struct k8s_client *c, struct k8s_discovery *d)
{
	json_t *info = json_object();
	char *text;
	int rc;

	if (!info)
		return error_set(CF_ERR_NOMEM, "out of memory");
	json_object_set_new(info, "server", json_string(k8s_client_server(c)));
	if (d->version)
		json_object_set(info, "version", d->version);
	json_object_set(info, "resources", r->resources);
	json_object_set(info, "skipped", r->skipped);
	json_object_set_new(info, "objects", json_integer((json_int_t)r->objects));
	json_object_set_new(info, "owned_objects_left_out",
	                    json_integer((json_int_t)r->owned_skipped));
	text = json_dumps(info, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(info);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = k8s_tar_add(r, "cluster-info.json", text, strlen(text));
	free(text);
	return rc;
}

static int k8s_run_meta(struct k8s_run *r, struct k8s_client *c, struct k8s_discovery *d)
{
	json_t *m = source_db_meta_new("kubernetes", NULL);
	const char *gv = json_string_value(json_object_get(d->version, "gitVersion"));
	int bad = !m;

	bad = bad || json_object_set_new(m, "server", json_string(k8s_client_server(c)));
	bad = bad || (gv && json_object_set_new(m, "server_version", json_string(gv)));
	bad = bad || json_object_set_new(m, "objects", json_integer((json_int_t)r->objects));
	bad = bad || json_object_set_new(m, "skipped",
	                                 json_integer((json_int_t)json_array_size(r->skipped)));
	bad = bad || json_object_set_new(m, "secrets", json_boolean(r->s->secrets));
	return source_db_meta_commit(r->run, m, bad);
}

static int source_kubernetes_run(void *state, struct backup_run *run)
{
	struct source_kubernetes *s = state;
	struct k8s_conn_options co = {s->kubeconfig, s->context, s->in_cluster,
	                              source_kubernetes_number(s->timeout_text, 30)};
	struct k8s_discovery d;
	struct k8s_client *c = NULL;
	struct k8s_run r;
	int rc;

	memset(&d, 0, sizeof(d));
	memset(&r, 0, sizeof(r));
	r.s = s;
	r.run = run;
	r.mtime = time(NULL);
	buf_init(&r.yaml, K8S_YAML_MAX);
	r.resources = json_array();
	r.skipped = json_array();
	r.tar = archive_write_new();
	if (!r.resources || !r.skipped || !r.tar) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = k8s_client_open(&co, &c);
	/* Discovery first: a bad credential or an unreachable server fails
	 * here, before anything is stored. */
	if (!rc)
		rc = k8s_discover(c, &d, k8s_skip_gv, &r);
	if (rc) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", error_message());
		rc = error_set(rc, "source %s: %s", s->name, msg);
		goto out;
	}
	archive_write_set_format_pax_restricted(r.tar);
	rc = backup_stream_open(run, "manifests", "tar", &r.out.head);
	if (!rc &&
	    archive_write_open2(r.tar, &r.out, NULL, source_tar_write, NULL, NULL) != ARCHIVE_OK)
		rc = source_tar_error(&r.out, r.tar, s->name, "open");
	for (size_t i = 0; !rc && i < d.n; i++) {
		const char *why = k8s_excluded(s, &d.res[i]);
		char what[512];

		if (why) {
			k8s_resource_label(&d.res[i], what, sizeof(what));
			k8s_record_skip(&r, what, why);
			continue;
		}
		rc = k8s_list_resource(&r, c, &d.res[i]);
	}
	if (!rc)
		rc = k8s_cluster_info(&r, c, &d);
	if (!rc && archive_write_close(r.tar) != ARCHIVE_OK)
		rc = source_tar_error(&r.out, r.tar, s->name, "close");
	if (!rc)
		rc = k8s_run_meta(&r, c, &d);
	if (!rc)
		rc = backup_stream_close(run);
	if (!rc)
		log_info("source %s: %zu objects (%zu owned by controllers left out, %zu resources "
		         "skipped)",
		         s->name, r.objects, r.owned_skipped, json_array_size(r.skipped));
out:
	if (rc)
		r.out.head = NULL;
	if (r.tar)
		archive_write_free(r.tar);
	buf_free(&r.yaml);
	json_decref(r.resources);
	json_decref(r.skipped);
	k8s_discovery_free(&d);
	k8s_client_free(c);
	return rc;
}

const struct source_ops source_kubernetes_ops = {
    .type = "kubernetes",
    .create = source_kubernetes_create,
    .set = source_kubernetes_set,
    .check = source_kubernetes_check,
    .run = source_kubernetes_run,
    .free = source_kubernetes_free,
    .restore_entry_pass = k8s_restore_entry_pass,
    .restore_print_order = k8s_restore_print_order,
};
