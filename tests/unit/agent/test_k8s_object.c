/*
 * test_k8s_object: the kubernetes source's per-object work: kind filters,
 * the cleaning table, archive paths, and YAML that reads back as the same
 * JSON (checked by parsing it again with libyaml).
 */
#include "agent/source/kubernetes/k8s_object.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yaml.h>

/* -Wwrite-strings makes literals const; k8s_resource holds char *. */
static char g_apps[] = "apps", g_core[] = "", g_ex[] = "example.com", v1[] = "v1";
static char k_dep[] = "Deployment", n_dep[] = "deployments", k_cm[] = "ConfigMap",
            n_cm[] = "configmaps";
static char k_w[] = "Widget", n_w[] = "widgets", k_ns[] = "Namespace", n_ns[] = "namespaces";

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (!j)
		fail_msg("bad JSON in test: %s", e.text);
	return j;
}

static void test_kind_matches(void **state)
{
	struct k8s_resource dep = {g_apps, v1, k_dep, n_dep, 1};
	struct k8s_resource cm = {g_core, v1, k_cm, n_cm, 1};
	struct k8s_resource w = {g_ex, v1, k_w, n_w, 1};

	(void)state;
	assert_true(k8s_kind_matches("deployments.apps", &dep));
	assert_true(k8s_kind_matches("Deployment.apps", &dep));
	assert_true(k8s_kind_matches("DEPLOYMENTS.apps", &dep));
	assert_false(k8s_kind_matches("deployments", &dep));
	assert_false(k8s_kind_matches("deployments.extensions", &dep));
	assert_true(k8s_kind_matches("configmaps", &cm));
	assert_true(k8s_kind_matches("ConfigMap", &cm));
	assert_false(k8s_kind_matches("configmaps.apps", &cm));
	assert_false(k8s_kind_matches("config", &cm));
	assert_true(k8s_kind_matches("widgets.example.com", &w));
	assert_false(k8s_kind_matches("widgets.example", &w));
}

static void test_clean(void **state)
{
	struct k8s_clean_options o = {0};
	json_t *svc =
	    load("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
	         "\"namespace\":\"a\",\"uid\":\"u1\",\"resourceVersion\":\"9\",\"generation\":2,"
	         "\"creationTimestamp\":\"2024-01-01T00:00:00Z\",\"managedFields\":[{}],"
	         "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"},"
	         "\"labels\":{\"app\":\"web\"},\"ownerReferences\":[{\"uid\":\"o\",\"name\":\"x\","
	         "\"kind\":\"Foo\",\"apiVersion\":\"v1\",\"controller\":true}]},"
	         "\"spec\":{\"clusterIP\":\"10.0.0.1\",\"clusterIPs\":[\"10.0.0.1\"],\"ports\":[{"
	         "\"port\":80}]},"
	         "\"status\":{\"loadBalancer\":{}}}");
	json_t *pvc =
	    load("{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":"
	         "\"d\","
	         "\"annotations\":{\"pv.kubernetes.io/bind-completed\":\"yes\",\"keep\":\"me\"}},"
	         "\"spec\":{\"volumeName\":\"pv-1\",\"resources\":{}}}");
	json_t *dep = load(
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},"
	    "\"spec\":{\"clusterIP\":\"not a service\"}}");
	json_t *meta;

	(void)state;
	assert_int_equal(k8s_clean(svc, &o), 10);
	meta = json_object_get(svc, "metadata");
	assert_null(json_object_get(meta, "uid"));
	assert_null(json_object_get(meta, "resourceVersion"));
	assert_null(json_object_get(meta, "managedFields"));
	assert_null(json_object_get(meta, "annotations")); /* emptied, then dropped */
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(meta, "labels"), "app")), "web");
	assert_null(
	    json_object_get(json_array_get(json_object_get(meta, "ownerReferences"), 0), "uid"));
	assert_non_null(
	    json_object_get(json_array_get(json_object_get(meta, "ownerReferences"), 0), "name"));
	assert_null(json_object_get(svc, "status"));
	assert_null(json_object_get(json_object_get(svc, "spec"), "clusterIP"));
	assert_null(json_object_get(json_object_get(svc, "spec"), "clusterIPs"));
	assert_non_null(json_object_get(json_object_get(svc, "spec"), "ports"));
	assert_true(k8s_is_controlled(svc));

	assert_int_equal(k8s_clean(pvc, &o), 2);
	assert_null(json_object_get(json_object_get(pvc, "spec"), "volumeName"));
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(pvc, "metadata"), "annotations"), "keep")),
	    "me");
	assert_false(k8s_is_controlled(pvc));
	/* Per-kind fields stay on other kinds. */
	assert_int_equal(k8s_clean(dep, &o), 0);
	assert_non_null(json_object_get(json_object_get(dep, "spec"), "clusterIP"));

	o.keep_last_applied = 1;
	json_decref(svc);
	svc = load("{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"annotations\":"
	           "{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}}}");
	assert_int_equal(k8s_clean(svc, &o), 0);
	json_decref(svc);
	json_decref(pvc);
	json_decref(dep);
}

static void test_path(void **state)
{
	struct k8s_resource dep = {g_apps, v1, k_dep, n_dep, 1};
	struct k8s_resource ns = {g_core, v1, k_ns, n_ns, 0};
	json_t *o = load("{\"metadata\":{\"name\":\"web\",\"namespace\":\"app-a\"}}");
	json_t *bad = load("{\"metadata\":{\"name\":\"..\",\"namespace\":\"app-a\"}}");
	char p[256];

	(void)state;
	assert_int_equal(k8s_object_path(&dep, o, p, sizeof(p)), 0);
	assert_string_equal(p, "namespaces/app-a/apps/Deployment/web.yaml");
	assert_int_equal(k8s_object_path(&ns, o, p, sizeof(p)), 0);
	assert_string_equal(p, "cluster/core/Namespace/web.yaml");
	assert_int_equal(k8s_object_path(&dep, bad, p, sizeof(p)), CF_ERR_FORMAT);
	assert_int_equal(k8s_object_path(&dep, o, p, 10), CF_ERR_LIMIT);
	json_decref(o);
	json_decref(bad);
}

/* Reads YAML back into JSON the way a YAML 1.1 reader would: plain scalars
 * resolve to bool/int/float/null when they look like one, quoted ones are
 * strings. Enough to check the emitter's quoting. */
static json_t *yaml_scalar(yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	char *end;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_string(v);
	if (!strcmp(v, "true"))
		return json_true();
	if (!strcmp(v, "false"))
		return json_false();
	if (!strcmp(v, "null"))
		return json_null();
	if (*v) {
		long long n = strtoll(v, &end, 10);
		double d;

		if (!*end)
			return json_integer(n);
		d = strtod(v, &end);
		if (!*end)
			return json_real(d);
	}
	return json_string(v);
}

/* The node that starts with ev (consumed). */
static json_t *yaml_node(yaml_parser_t *p, yaml_event_t *ev)
{
	json_t *out;
	yaml_event_t next;

	if (ev->type == YAML_SCALAR_EVENT) {
		out = yaml_scalar(ev);
		yaml_event_delete(ev);
		return out;
	}
	assert_true(ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT);
	out = ev->type == YAML_MAPPING_START_EVENT ? json_object() : json_array();
	yaml_event_delete(ev);
	for (;;) {
		assert_true(yaml_parser_parse(p, &next));
		if (next.type == YAML_MAPPING_END_EVENT || next.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&next);
			return out;
		}
		if (json_is_array(out)) {
			json_array_append_new(out, yaml_node(p, &next));
		} else {
			char *key;

			assert_int_equal(next.type, YAML_SCALAR_EVENT);
			key = strdup((const char *)next.data.scalar.value);
			yaml_event_delete(&next);
			assert_true(yaml_parser_parse(p, &next));
			json_object_set_new(out, key, yaml_node(p, &next));
			free(key);
		}
	}
}

static void test_yaml(void **state)
{
	static const char *const tricky[] = {"true",
	                                     "False",
	                                     "yes",
	                                     "on",
	                                     "OFF",
	                                     "y",
	                                     "n",
	                                     "null",
	                                     "~",
	                                     "",
	                                     "123",
	                                     "-1",
	                                     "0x1f",
	                                     "0o17",
	                                     "017",
	                                     "1e3",
	                                     "1.5",
	                                     ".inf",
	                                     ".NaN",
	                                     "1:30",
	                                     "2024-01-01",
	                                     "2024-01-01T10:00:00Z",
	                                     "<<",
	                                     "=",
	                                     " lead",
	                                     "trail ",
	                                     "a: b",
	                                     "- x",
	                                     "#c",
	                                     "@at",
	                                     "%p",
	                                     "`bt",
	                                     "'q'",
	                                     "\"dq\"",
	                                     "multi\nline\n",
	                                     "tab\there",
	                                     "ünïcödé ✓",
	                                     "{x}",
	                                     "[y]",
	                                     "*ref",
	                                     "&anchor",
	                                     "!tag",
	                                     "|",
	                                     ">",
	                                     "?",
	                                     "- ",
	                                     "plain text",
	                                     NULL};
	json_t *obj = json_object(), *arr = json_array(), *back;
	yaml_parser_t p;
	yaml_event_t ev;
	struct buf out;

	(void)state;
	for (size_t i = 0; tricky[i]; i++) {
		json_array_append_new(arr, json_string(tricky[i]));
		json_object_set_new(obj, tricky[i][0] ? tricky[i] : "empty-key-is-fine-too",
		                    json_string(tricky[i]));
	}
	json_object_set_new(obj, "list", arr);
	json_object_set_new(obj, "int", json_integer(42));
	json_object_set_new(obj, "neg", json_integer(-7));
	json_object_set_new(obj, "real", json_real(2.5));
	json_object_set_new(obj, "yes", json_true());
	json_object_set_new(obj, "no", json_false());
	json_object_set_new(obj, "nothing", json_null());
	json_object_set_new(obj, "nested",
	                    json_pack("{s:{s:[{s:s},{s:i}]}}", "a", "b", "c", "d", "e", 1));
	buf_init(&out, 1 << 20);
	assert_int_equal(k8s_yaml_emit(obj, &out), 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	assert_non_null(strstr((char *)out.data, "plain text: plain text\n"));
	assert_non_null(strstr((char *)out.data, "int: 42\n"));
	assert_non_null(strstr((char *)out.data, "'true': 'true'\n"));

	assert_true(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, out.data, out.len - 1);
	assert_true(yaml_parser_parse(&p, &ev)); /* stream start */
	yaml_event_delete(&ev);
	assert_true(yaml_parser_parse(&p, &ev)); /* document start */
	yaml_event_delete(&ev);
	assert_true(yaml_parser_parse(&p, &ev));
	back = yaml_node(&p, &ev);
	yaml_parser_delete(&p);
	if (!json_equal(obj, back)) {
		char *a = json_dumps(obj, JSON_SORT_KEYS), *b = json_dumps(back, JSON_SORT_KEYS);

		fail_msg("YAML does not read back:\n%s\n%s\n%s", (char *)out.data, a, b);
	}
	json_decref(back);
	json_decref(obj);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_matches),
	    cmocka_unit_test(test_clean),
	    cmocka_unit_test(test_path),
	    cmocka_unit_test(test_yaml),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
