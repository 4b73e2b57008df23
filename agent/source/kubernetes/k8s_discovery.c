/*
 * k8s_discovery: which resources the API server can list. It reads the
 * APIGroupList (/apis) for each group's preferred version and the
 * APIResourceList of the core group (/api/v1) and of each preferred group
 * version (/apis/G/V), keeping the resources that are not subresources
 * ("pods/log") and that have the list verb (not "tokenreviews", "bindings").
 *
 * It speaks plain JSON discovery, not the aggregated v2 form, and lists only
 * the preferred version of a group. The parsers are pure, so the unit tests
 * run them on real discovery documents.
 */
#include "agent/source/kubernetes/k8s_intern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int k8s_discovery_gv_add(char ***gv, size_t *ngv, const char *s)
{
	char **grown;
	char *copy = strdup(s);

	grown = copy ? realloc(*gv, (*ngv + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(copy);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	grown[(*ngv)++] = copy;
	*gv = grown;
	return 0;
}

int k8s_discovery_parse_groups(json_t *group_list, char ***gv, size_t *ngv)
{
	json_t *groups = json_object_get(group_list, "groups"), *g;
	size_t i;
	int rc = 0;

	if (!json_is_array(groups))
		return error_set(CF_ERR_FORMAT, "k8s: the API group list has no groups");
	json_array_foreach(groups, i, g)
	{
		const char *v = json_string_value(
		    json_object_get(json_object_get(g, "preferredVersion"), "groupVersion"));

		if (!v)
			v = json_string_value(json_object_get(
			    json_array_get(json_object_get(g, "versions"), 0), "groupVersion"));
		if (!v || !strchr(v, '/')) {
			const char *name = json_string_value(json_object_get(g, "name"));

			return error_set(CF_ERR_FORMAT, "k8s: API group '%s' has no usable version",
			                 name ? name : "?");
		}
		rc = k8s_discovery_gv_add(gv, ngv, v);
		if (rc)
			break;
	}
	return rc;
}

void k8s_discovery_groups_free(char **gv, size_t ngv)
{
	for (size_t i = 0; i < ngv; i++)
		free(gv[i]);
	free(gv);
}

static int k8s_discovery_has_verb(json_t *verbs, const char *verb)
{
	json_t *v;
	size_t i;

	json_array_foreach(verbs, i, v)
	{
		const char *s = json_string_value(v);

		if (s && !strcmp(s, verb))
			return 1;
	}
	return 0;
}

int k8s_discovery_parse_resources(json_t *resource_list, const char *group, const char *version,
                                  struct k8s_discovery *d)
{
	json_t *list = json_object_get(resource_list, "resources"), *r;
	size_t i;

	if (!json_is_array(list))
		return error_set(CF_ERR_FORMAT, "k8s: the resource list of %s%s%s has no resources",
		                 group, *group ? "/" : "", version);
	json_array_foreach(list, i, r)
	{
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *kind = json_string_value(json_object_get(r, "kind"));
		struct k8s_resource *grown, *x;

		if (!name || !*name || strchr(name, '/') || !kind || !*kind ||
		    !k8s_discovery_has_verb(json_object_get(r, "verbs"), "list"))
			continue;
		grown = realloc(d->res, (d->n + 1) * sizeof(*grown));
		if (!grown)
			return error_set(CF_ERR_NOMEM, "out of memory");
		d->res = grown;
		x = &grown[d->n];
		x->group = strdup(group);
		x->version = strdup(version);
		x->kind = strdup(kind);
		x->name = strdup(name);
		x->namespaced = json_is_true(json_object_get(r, "namespaced"));
		if (!x->group || !x->version || !x->kind || !x->name) {
			free(x->group);
			free(x->version);
			free(x->kind);
			free(x->name);
			return error_set(CF_ERR_NOMEM, "out of memory");
		}
		d->n++;
	}
	return 0;
}

void k8s_discovery_free(struct k8s_discovery *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->res[i].group);
		free(d->res[i].version);
		free(d->res[i].kind);
		free(d->res[i].name);
	}
	free(d->res);
	json_decref(d->version);
	memset(d, 0, sizeof(*d));
}

/* Failures that mean the server, not one group, is gone. */
static int k8s_discovery_fatal(int rc, long status)
{
	return rc == CF_ERR_NETWORK || rc == CF_ERR_INTERRUPTED || rc == CF_ERR_NOMEM ||
	       status == 401;
}

/* One preferred group version: GET, parse; a failure is skipped unless fatal. */
static int k8s_discovery_gv(struct k8s_client *c, struct k8s_discovery *d, const char *gv,
                            void (*skip)(void *ctx, const char *gv, const char *reason), void *ctx)
{
	const char *slash = strchr(gv, '/');
	char path[1024], group[512];
	json_t *j = NULL;
	long status = 0;
	int rc;

	if ((size_t)(slash - gv) >= sizeof(group) ||
	    snprintf(path, sizeof(path), "/apis/%s", gv) >= (int)sizeof(path)) {
		rc = error_set(CF_ERR_FORMAT, "k8s: group version name too long");
	} else {
		memcpy(group, gv, (size_t)(slash - gv));
		group[slash - gv] = '\0';
		rc = k8s_get_json(c, path, &j, &status);
		if (!rc)
			rc = k8s_discovery_parse_resources(j, group, slash + 1, d);
		json_decref(j);
	}
	if (!rc || k8s_discovery_fatal(rc, status))
		return rc;
	if (skip)
		skip(ctx, gv, error_message());
	else
		log_warn("k8s: %s is left out: %s", gv, error_message());
	error_clear();
	return 0;
}

int k8s_discover(struct k8s_client *c, struct k8s_discovery *d,
                 void (*skip)(void *ctx, const char *gv, const char *reason), void *ctx)
{
	char **gv = NULL;
	size_t ngv = 0;
	json_t *j = NULL;
	long status = 0;
	int rc;

	memset(d, 0, sizeof(*d));
	rc = k8s_get_json(c, "/version", &d->version, &status);
	if (rc && !k8s_discovery_fatal(rc, status)) {
		log_debug("k8s: no server version: %s", error_message());
		error_clear();
		rc = 0;
	}
	if (!rc)
		rc = k8s_get_json(c, "/api/v1", &j, NULL);
	if (!rc)
		rc = k8s_discovery_parse_resources(j, "", "v1", d);
	json_decref(j);
	j = NULL;
	if (!rc)
		rc = k8s_get_json(c, "/apis", &j, NULL);
	if (!rc)
		rc = k8s_discovery_parse_groups(j, &gv, &ngv);
	json_decref(j);
	for (size_t i = 0; !rc && i < ngv; i++)
		rc = k8s_discovery_gv(c, d, gv[i], skip, ctx);
	k8s_discovery_groups_free(gv, ngv);
	if (!rc)
		log_debug("k8s: %zu listable resources in %zu API groups", d->n, ngv + 1);
	return rc;
}
