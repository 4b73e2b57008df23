/* Tests agent/source/kubernetes/k8s_discovery.c's parsers on every real discovery
 * document of tests/data/k8s-discovery (see its SOURCE.md): preferred
 * group versions, subresources and verbs, namespaced flags, and counts
 * checked against a count made here independently. */
#include "agent/source/kubernetes/k8s.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define DIR_DISCOVERY COFFER_TESTDATA "/k8s-discovery"

static json_t *load(const char *name)
{
	char path[512];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", DIR_DISCOVERY, name);
	j = json_load_file(path, 0, &err);
	if (!j)
		fail_msg("cannot load %s: %s", path, err.text);
	return j;
}

static const struct k8s_resource *find(const struct k8s_discovery *d, const char *group,
                                       const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->res[i].group, group) && !strcmp(d->res[i].name, name))
			return &d->res[i];
	return NULL;
}

/* Counted without the code under test: items whose name has no '/' and
 * whose verbs include "list". */
static size_t count_listable(json_t *doc)
{
	json_t *r, *v;
	size_t i, k, n = 0;

	json_array_foreach(json_object_get(doc, "resources"), i, r)
	{
		int list = 0;

		if (strchr(json_string_value(json_object_get(r, "name")), '/'))
			continue;
		json_array_foreach(json_object_get(r, "verbs"), k, v) list |=
		    !strcmp(json_string_value(v), "list");
		n += (size_t)list;
	}
	return n;
}

static void test_groups_preferred(void **state)
{
	json_t *apis = load("apis.json"), *g;
	char **gv = NULL;
	size_t ngv = 0, i;

	(void)state;
	assert_int_equal(k8s_discovery_parse_groups(apis, &gv, &ngv), 0);
	assert_int_equal(ngv, json_array_size(json_object_get(apis, "groups")));
	json_array_foreach(json_object_get(apis, "groups"), i, g)
	{
		const char *want = json_string_value(
		    json_object_get(json_object_get(g, "preferredVersion"), "groupVersion"));

		assert_non_null(want);
		assert_string_equal(gv[i], want);
	}
	/* Groups serving several versions: only the preferred one. */
	for (i = 0; i < ngv; i++) {
		assert_string_not_equal(gv[i], "autoscaling/v1");
		assert_string_not_equal(gv[i], "flowcontrol.apiserver.k8s.io/v1beta3");
		assert_string_not_equal(gv[i], "authentication.k8s.io/v1beta1");
	}
	k8s_discovery_groups_free(gv, ngv);
	json_decref(apis);
}

static void test_groups_fallback_first_version(void **state)
{
	json_t *j =
	    json_loads("{\"kind\":\"APIGroupList\",\"groups\":[{\"name\":\"x.io\",\"versions\":"
	               "[{\"groupVersion\":\"x.io/v2\",\"version\":\"v2\"},"
	               "{\"groupVersion\":\"x.io/v1\",\"version\":\"v1\"}]}]}",
	               0, NULL);
	char **gv = NULL;
	size_t ngv = 0;

	(void)state;
	assert_int_equal(k8s_discovery_parse_groups(j, &gv, &ngv), 0);
	assert_int_equal(ngv, 1);
	assert_string_equal(gv[0], "x.io/v2");
	k8s_discovery_groups_free(gv, ngv);
	json_decref(j);
}

static void test_wrong_documents(void **state)
{
	struct k8s_discovery d = {0};
	json_t *j;
	char **gv = NULL;
	size_t ngv = 0;

	(void)state;
	/* APIVersions (/api) and aggregated discovery are not APIGroupLists. */
	j = load("api.json");
	assert_int_equal(k8s_discovery_parse_groups(j, &gv, &ngv), CF_ERR_FORMAT);
	json_decref(j);
	j = load("aggregated_v2.json");
	assert_int_equal(k8s_discovery_parse_groups(j, &gv, &ngv), CF_ERR_FORMAT);
	json_decref(j);
	j = load("apis.json");
	assert_int_equal(k8s_discovery_parse_resources(j, "", "v1", &d), CF_ERR_FORMAT);
	json_decref(j);
	assert_int_equal(ngv, 0);
	assert_int_equal(d.n, 0);
}

/* Every APIResourceList of the folder: what is kept matches the count made
 * here, has a kind, no subresource, and the document's group and version. */
static void test_every_resource_list(void **state)
{
	DIR *dir = opendir(DIR_DISCOVERY);
	struct dirent *e;
	size_t files = 0;

	(void)state;
	assert_non_null(dir);
	while ((e = readdir(dir))) {
		struct k8s_discovery d = {0};
		char group[256] = "", version[64] = "", gv[512];
		const char *n = e->d_name, *sep;
		json_t *doc;

		if (!strcmp(n, "api__v1.json")) {
			snprintf(version, sizeof(version), "v1");
		} else if (!strncmp(n, "apis__", 6) && (sep = strstr(n + 6, "__"))) {
			snprintf(group, sizeof(group), "%.*s", (int)(sep - n - 6), n + 6);
			snprintf(version, sizeof(version), "%.*s", (int)(strlen(sep + 2) - 5),
			         sep + 2);
		} else {
			continue;
		}
		doc = load(n);
		snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
		assert_string_equal(json_string_value(json_object_get(doc, "groupVersion")), gv);
		assert_int_equal(k8s_discovery_parse_resources(doc, group, version, &d), 0);
		if (d.n != count_listable(doc))
			fail_msg("%s: %zu listable resources parsed, %zu counted", n, d.n,
			         count_listable(doc));
		for (size_t i = 0; i < d.n; i++) {
			assert_null(strchr(d.res[i].name, '/'));
			assert_true(d.res[i].kind[0] >= 'A' && d.res[i].kind[0] <= 'Z');
			assert_string_equal(d.res[i].group, group);
			assert_string_equal(d.res[i].version, version);
		}
		k8s_discovery_free(&d);
		assert_int_equal(d.n, 0);
		json_decref(doc);
		files++;
	}
	closedir(dir);
	assert_int_equal(files, 34); /* api__v1.json and the 33 apis__*.json */
}

/* The preferred group versions, as k8s_discover() would read them: every one
 * has its document here, and the facts a backup depends on hold. */
static void test_preferred_resources(void **state)
{
	struct k8s_discovery d = {0};
	const struct k8s_resource *r;
	json_t *apis = load("apis.json"), *doc;
	char **gv = NULL, file[512];
	size_t ngv = 0, expected;

	(void)state;
	doc = load("api__v1.json");
	assert_int_equal(k8s_discovery_parse_resources(doc, "", "v1", &d), 0);
	expected = count_listable(doc);
	assert_int_equal(expected, 16);
	json_decref(doc);
	assert_int_equal(k8s_discovery_parse_groups(apis, &gv, &ngv), 0);
	for (size_t i = 0; i < ngv; i++) {
		char *slash = strchr(gv[i], '/');

		*slash = '\0';
		snprintf(file, sizeof(file), "apis__%s__%s.json", gv[i], slash + 1);
		doc = load(file);
		assert_int_equal(k8s_discovery_parse_resources(doc, gv[i], slash + 1, &d), 0);
		expected += count_listable(doc);
		json_decref(doc);
	}
	assert_int_equal(d.n, expected);

	r = find(&d, "", "pods");
	assert_non_null(r);
	assert_string_equal(r->kind, "Pod");
	assert_string_equal(r->version, "v1");
	assert_true(r->namespaced);
	r = find(&d, "", "configmaps");
	assert_true(r && r->namespaced && !strcmp(r->kind, "ConfigMap"));
	r = find(&d, "", "secrets");
	assert_true(r && r->namespaced && !strcmp(r->kind, "Secret"));
	r = find(&d, "", "namespaces");
	assert_true(r && !r->namespaced);
	r = find(&d, "", "nodes");
	assert_true(r && !r->namespaced);
	r = find(&d, "", "persistentvolumes");
	assert_true(r && !r->namespaced);
	r = find(&d, "apps", "deployments");
	assert_true(r && r->namespaced && !strcmp(r->kind, "Deployment") &&
	            !strcmp(r->version, "v1"));
	r = find(&d, "rbac.authorization.k8s.io", "clusterroles");
	assert_true(r && !r->namespaced);
	r = find(&d, "autoscaling", "horizontalpodautoscalers");
	assert_true(r && !strcmp(r->version, "v2"));
	r = find(&d, "apiextensions.k8s.io", "customresourcedefinitions");
	assert_true(r && !r->namespaced);

	/* Subresources and resources without the list verb are left out. */
	assert_null(find(&d, "", "pods/log"));
	assert_null(find(&d, "", "pods/exec"));
	assert_null(find(&d, "", "bindings"));
	assert_null(find(&d, "apps", "deployments/scale"));
	assert_null(find(&d, "authentication.k8s.io", "tokenreviews"));
	assert_null(find(&d, "authorization.k8s.io", "subjectaccessreviews"));
	for (size_t i = 0; i < d.n; i++)
		assert_null(strchr(d.res[i].name, '/'));

	k8s_discovery_groups_free(gv, ngv);
	k8s_discovery_free(&d);
	json_decref(apis);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_groups_preferred),
	    cmocka_unit_test(test_groups_fallback_first_version),
	    cmocka_unit_test(test_wrong_documents),
	    cmocka_unit_test(test_every_resource_list),
	    cmocka_unit_test(test_preferred_resources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
