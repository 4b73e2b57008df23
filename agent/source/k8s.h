/*
 * k8s: a small Kubernetes API client for the kubernetes source: connection
 * from a kubeconfig or in-cluster service-account credentials, JSON GETs over
 * libcurl, discovery of every listable resource, and paginated lists.
 *
 *   k8s_conn.c       kubeconfig (YAML read with libyaml into jansson), contexts,
 *                    token / token file / client cert+key (file or data) / CA
 *                    (file or data) / exec credential plugins; in-cluster
 *   k8s_http.c       GET with TLS settings, bearer token, timeouts; errors
 *   k8s_discovery.c  /api, /api/v1, /apis, /apis/G/V: preferred versions,
 *                    resources with the list verb, no subresources
 *   k8s_list.c       ?limit=&continue= pages; 410 Gone restarts the list
 *
 * Everything returns 0 or a CF_ERR_* code with error_set() detail.
 */
#ifndef COFFER_K8S_H
#define COFFER_K8S_H

#include "common/common.h"

#include <jansson.h>

struct k8s_client;

struct k8s_conn_options {
	const char *kubeconfig; /* path; NULL: $KUBECONFIG (first of a ':' list), else ~/.kube/config,
				 * else in-cluster credentials when running in a pod */
	const char *context;    /* NULL: the kubeconfig's current-context */
	int in_cluster;         /* 1: use the pod's service account, ignore kubeconfigs */
	long timeout_s;         /* per request (connect + no progress); 0: 30 */
};

/*
 * Reads the credentials and prepares the client (no request is made yet).
 * Errors: CF_ERR_CONFIG (no kubeconfig, unknown context, malformed file,
 * naming it), CF_ERR_AUTH (an exec plugin failed or returned no
 * credential), CF_ERR_NOMEM.
 */
int k8s_client_open(const struct k8s_conn_options *o, struct k8s_client **out);
void k8s_client_free(struct k8s_client *c);
/* The API server URL, e.g. "https://10.0.0.1:6443". */
const char *k8s_client_server(const struct k8s_client *c);

/*
 * GETs path ("/apis/apps/v1/deployments?limit=500") and parses the JSON body.
 * *status receives the HTTP status (0 when no reply came). A non-2xx reply
 * is an error whose message carries the Status object's message.
 * Errors: CF_ERR_NETWORK (unreachable, timeout, TLS verification failed: said
 * so), CF_ERR_AUTH (401, 403), CF_ERR_NOTFOUND (404), CF_ERR_SOURCE (410 and
 * other statuses), CF_ERR_FORMAT (not JSON), CF_ERR_NOMEM.
 */
int k8s_get_json(struct k8s_client *c, const char *path, json_t **out, long *status);

/* One listable resource type. */
struct k8s_resource {
	char *group;    /* "" for the core group */
	char *version;  /* "v1" */
	char *kind;     /* "Deployment" */
	char *name;     /* plural, "deployments" */
	int namespaced;
};

struct k8s_discovery {
	struct k8s_resource *res;
	size_t n;
	json_t *version; /* /version, or NULL */
};

/*
 * Pure parsers of discovery documents (unit-tested with the real ones):
 * the preferred group versions of an APIGroupList, as "group/version" strings
 * appended to *gv; the listable resources of an APIResourceList (no
 * subresources, "list" among the verbs) appended to d.
 * Errors: CF_ERR_FORMAT, CF_ERR_NOMEM.
 */
int k8s_discovery_parse_groups(json_t *group_list, char ***gv, size_t *ngv);
int k8s_discovery_parse_resources(json_t *resource_list, const char *group, const char *version,
				  struct k8s_discovery *d);
/* Runs discovery against the server: /version, /api/v1, /apis and every
 * preferred /apis/G/V. A group version that fails (an aggregated API that is
 * down, 403) is reported through skip(ctx, "group/version", reason) and left
 * out. Errors: whatever k8s_get_json() returns for /api/v1 or /apis. */
int k8s_discover(struct k8s_client *c, struct k8s_discovery *d,
		 void (*skip)(void *ctx, const char *gv, const char *reason), void *ctx);
void k8s_discovery_free(struct k8s_discovery *d);

/*
 * Lists every object of r (in namespace ns, or all namespaces when NULL,
 * selected by label_selector when not NULL) page by page, calling cb with
 * each item, its apiVersion and kind filled in (list items lack them). An
 * expired continue token (410) restarts the list from the beginning; items
 * already given are given again only if the caller does not skip them by uid
 * (k8s_list() itself skips uids it has seen). cb returning non-zero stops.
 * Errors: as k8s_get_json(), and cb's.
 */
typedef int (*k8s_item_cb)(void *ctx, const struct k8s_resource *r, json_t *item);
int k8s_list(struct k8s_client *c, const struct k8s_resource *r, const char *ns,
	     const char *label_selector, long page_size, k8s_item_cb cb, void *ctx);

#endif
