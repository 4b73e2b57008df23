/*
 * k8s: a small Kubernetes API client for the kubernetes source: connection
 * from a kubeconfig or in-cluster service-account credentials, JSON GETs
 * through the HTTP client (http/http.h), discovery of every listable
 * resource, and paginated lists.
 *
 *   k8s_conn.c       kubeconfig (YAML read with libyaml into jansson), contexts,
 *                    token / token file / client cert+key (file or data) / CA
 *                    (file or data) / basic auth / exec credential plugins;
 *                    in-cluster
 *   k8s_http.c       GET with TLS settings, credentials, timeouts; errors
 *   k8s_discovery.c  /version, /api/v1, /apis, /apis/G/V: preferred versions,
 *                    resources with the list verb, no subresources
 *   k8s_list.c       ?limit=&continue= pages; 410 Gone restarts the list
 *
 * It only reads (GET); it does not watch, write, or speak protobuf, and it
 * does not support the legacy auth-provider plugins (gcp, azure, oidc): those
 * clusters are reached through an exec plugin. A client is used by one
 * thread at a time.
 *
 * Credentials (tokens, private keys, passwords) live in sodium_malloc memory
 * and go to the HTTP client only as an Authorization header or a key blob (it
 * wipes its copies and redacts them in debug logs): never in a
 * log line, an argv or an error message.
 *
 * Everything returns 0 or a CF_ERR_* code with error_set() detail.
 */
#ifndef COFFER_K8S_H
#define COFFER_K8S_H

#include "common/common.h"

#include <jansson.h>

struct k8s_client;

struct k8s_conn_options {
	const char *kubeconfig; /* path; NULL: $KUBECONFIG, else ~/.kube/config, else in-cluster
	                         * credentials when running in a pod (KUBERNETES_SERVICE_HOST
	                         * set). $KUBECONFIG may be a ':' list: the first file that
	                         * exists is used; several files are NOT merged the way
	                         * kubectl merges them. */
	const char *context;    /* NULL: the kubeconfig's current-context */
	int in_cluster;         /* 1: use the pod's service account, ignore kubeconfigs */
	long timeout_s;         /* per request (connect, and no progress for that long); 0: 30 */
};

/*
 * Reads the credentials and prepares the client; no request is made yet, but
 * an exec credential plugin is run. Relative file paths in a kubeconfig are
 * taken relative to the kubeconfig's folder. In-cluster credentials are read
 * from /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt,
 * namespace), or from the folder $COFFER_K8S_SA_DIR names (tests).
 * Errors: CF_ERR_CONFIG (no kubeconfig, unknown context, cluster or user, a
 * malformed file, an unreadable certificate or token file: naming the file
 * and the entry), CF_ERR_UNSUPPORTED (auth-provider, an exec apiVersion other
 * than client.authentication.k8s.io/v1 or v1beta1), CF_ERR_AUTH (an exec
 * plugin failed, with its stderr, or returned no credential), CF_ERR_NOMEM.
 */
int k8s_client_open(const struct k8s_conn_options *o, struct k8s_client **out);
/* Wipes the credentials and frees everything. NULL does nothing. */
void k8s_client_free(struct k8s_client *c);
/* The API server URL, e.g. "https://10.0.0.1:6443" (no trailing '/'). */
const char *k8s_client_server(const struct k8s_client *c);
/* The namespace of the context (or of the pod's service account in-cluster),
 * or NULL when it names none. */
const char *k8s_client_namespace(const struct k8s_client *c);
/* One line for logs, with no secret in it: "context 'kind' of
 * /root/.kube/config: https://127.0.0.1:6443, client certificate". */
const char *k8s_client_describe(const struct k8s_client *c);

/*
 * GETs path ("/apis/apps/v1/deployments?limit=500", already URL-encoded),
 * appended to the server URL, and parses the JSON body into *out (the
 * caller's reference). *status (may be NULL) receives the HTTP status (0 when
 * no reply came). A 401 with credentials that can be renewed (exec plugin,
 * token file) renews them and tries once more; an expired exec credential is
 * renewed before the request. 429, 502, 503, 504 and a dropped keep-alive
 * connection are tried up to three times. A non-2xx reply is an error whose
 * message carries the Status object's message.
 * Errors: CF_ERR_NETWORK (unreachable, timeout, TLS verification failed:
 * said so, naming the CA used), CF_ERR_AUTH (401, 403, a client certificate
 * or key curl cannot use), CF_ERR_NOTFOUND (404), CF_ERR_SOURCE (410 and
 * other statuses), CF_ERR_FORMAT (not JSON), CF_ERR_LIMIT (a body over
 * 256 MiB), CF_ERR_INTERRUPTED, CF_ERR_NOMEM.
 */
int k8s_get_json(struct k8s_client *c, const char *path, json_t **out, long *status);

/* One listable resource type. */
struct k8s_resource {
	char *group;   /* "" for the core group */
	char *version; /* "v1" */
	char *kind;    /* "Deployment" */
	char *name;    /* plural, "deployments" */
	int namespaced;
};

/* The result of discovery. Zero it before the first parse; free it with
 * k8s_discovery_free(). A resource served by two groups (events in the core
 * group and in events.k8s.io) appears once per group. */
struct k8s_discovery {
	struct k8s_resource *res;
	size_t n;
	json_t *version; /* /version (the caller's reference is d's), or NULL */
};

/*
 * Pure parsers of discovery documents (unit-tested with the real ones).
 * k8s_discovery_parse_groups: for each group of an APIGroupList (GET /apis),
 * its preferredVersion.groupVersion, or its first version when it names none,
 * appended to *gv (*ngv strings) as malloc'ed "group/version" strings; free
 * them with k8s_discovery_groups_free().
 * k8s_discovery_parse_resources: the listable resources of an
 * APIResourceList (no subresource, i.e. no '/' in the name, and "list" among
 * the verbs) appended to d with the given group ("" for the core group) and
 * version.
 * Errors: CF_ERR_FORMAT (not that kind of document), CF_ERR_NOMEM.
 */
int k8s_discovery_parse_groups(json_t *group_list, char ***gv, size_t *ngv);
void k8s_discovery_groups_free(char **gv, size_t ngv);
int k8s_discovery_parse_resources(json_t *resource_list, const char *group, const char *version,
                                  struct k8s_discovery *d);
/*
 * Runs discovery against the server into d (which it zeroes first): /version
 * (left NULL if that fails with an HTTP error), /api/v1, /apis and every
 * preferred /apis/G/V. A group version that fails (an aggregated API that is
 * down, 403, a malformed reply) is reported through skip(ctx, "group/version",
 * reason) (a warning in the log when skip is NULL) and left out.
 * Errors: whatever k8s_get_json() returns for /api/v1 or /apis, and
 * CF_ERR_NETWORK, CF_ERR_INTERRUPTED, CF_ERR_NOMEM from any request: the
 * server is gone, not one group. d is then to be freed all the same.
 */
int k8s_discover(struct k8s_client *c, struct k8s_discovery *d,
                 void (*skip)(void *ctx, const char *gv, const char *reason), void *ctx);
/* Frees what d holds and zeroes it. */
void k8s_discovery_free(struct k8s_discovery *d);

/*
 * Lists every object of r (in namespace ns, or all namespaces when NULL or
 * for a cluster-scoped r; selected by label_selector when not NULL) page by
 * page (page_size items, 0: 500), calling cb with each item, its apiVersion
 * ("v1", "apps/v1") and kind filled in (list items lack them). The item is
 * borrowed: it is freed with its page after cb returns (json_incref() it to
 * keep it). cb returns 0 to go on, a negative CF_ERR_* code to stop with that
 * error, or a positive value to stop early; k8s_list() then returns 0.
 * An expired continue token (410 Gone) restarts the list from the beginning,
 * once per expiry (at most 8 times); items whose metadata.uid was already
 * given are not given again (an item without a uid always is).
 * Errors: as k8s_get_json() (CF_ERR_SOURCE after too many restarts), cb's.
 */
typedef int (*k8s_item_cb)(void *ctx, const struct k8s_resource *r, json_t *item);
int k8s_list(struct k8s_client *c, const struct k8s_resource *r, const char *ns,
             const char *label_selector, long page_size, k8s_item_cb cb, void *ctx);

/*
 * Converts the first YAML document of text (len bytes, UTF-8) into a jansson
 * tree: mappings become objects (a later duplicate key replaces an earlier
 * one), sequences arrays, and every scalar a string, with no type
 * resolution: true, 42 and null are the strings "true", "42" and "null";
 * readers interpret them. Tags are ignored; an alias is the anchored value
 * itself (shared, not copied); "<<" merge keys are plain keys. An empty
 * document gives JSON null. Nesting is limited to 256 levels.
 * *out is the caller's reference.
 * Errors: CF_ERR_FORMAT ("line L, column C: what is wrong"), CF_ERR_NOMEM.
 */
int k8s_yaml_to_json(const char *text, size_t len, json_t **out);

#endif
