/*
 * k8s_object: what the kubernetes source does to one object between the API
 * and the archive: which resources it keeps (filters and the default list of
 * runtime-only kinds), the server-managed fields it removes so the object can
 * be re-applied on another cluster (one table, k8s_clean.c), the archive path,
 * and the YAML text (libyaml's emitter, k8s_yaml.c); and on the way back,
 * which archive entries a restore selects and the order to apply them in
 * (k8s_restore.c).
 */
#ifndef COFFER_K8S_OBJECT_H
#define COFFER_K8S_OBJECT_H

#include "agent/source/kubernetes/k8s.h"
#include "agent/source/source.h"
#include "common/common.h"

#include <jansson.h>

/* Resources left out unless named in include_kinds: they are runtime state
 * that the cluster recreates (documented in docs/kubernetes.md). NULL-ended. */
extern const char *const k8s_default_excluded[];

/*
 * 1 if filter names r: "name[.group]" where name is the plural resource name
 * or the kind (case-insensitive) and group the API group ("" or nothing for
 * the core group): "deployments.apps", "Deployment.apps", "configmaps",
 * "widgets.example.com".
 */
int k8s_kind_matches(const char *filter, const struct k8s_resource *r);

/* Options of the cleaning. */
struct k8s_clean_options {
	int keep_last_applied; /* keep kubectl.kubernetes.io/last-applied-configuration */
};

/*
 * Removes in place what the server assigns and another cluster would refuse
 * or reassign: metadata uid, resourceVersion, generation, creationTimestamp,
 * managedFields, selfLink, deletion*, ownerReferences' uids, status, and the
 * per-kind fields of k8s_clean.c's table (a Service's clusterIP(s), a bound
 * PVC's volumeName and binding annotations...). Returns how many fields were
 * removed.
 */
size_t k8s_clean(json_t *obj, const struct k8s_clean_options *o);

/* 1 if the object has an ownerReference with controller: true (it is made
 * again by its owner: a ReplicaSet's Pods, a Deployment's ReplicaSets). */
int k8s_is_controlled(json_t *obj);

/*
 * The archive path of an object:
 * "namespaces/<ns>/<group>/<Kind>/<name>.yaml" or "cluster/<group>/<Kind>/<name>.yaml",
 * group "core" for the core group. Errors: CF_ERR_FORMAT (no name, or a name
 * or namespace with '/' or that is "." or ".."), CF_ERR_LIMIT.
 */
int k8s_object_path(const struct k8s_resource *r, json_t *obj, char *out, size_t outlen);

/*
 * Appends obj as one YAML document to out (block style, keys in the JSON
 * object's order, strings quoted whenever a plain scalar would read back as
 * something else: "true", "1.0", "null", "", "0x1f", "2024-01-01"...;
 * multi-line strings as literal blocks). Errors: CF_ERR_FORMAT, CF_ERR_NOMEM,
 * CF_ERR_LIMIT (out->max).
 */
int k8s_yaml_emit(json_t *obj, struct buf *out);

/*
 * 1 if the archive path passes sel: cluster-info.json always;
 * "namespaces/<ns>/<group>/<Kind>/<name>.yaml" and
 * "cluster/<group>/<Kind>/<name>.yaml" by namespace (of the cluster's
 * objects only that Namespace) and by Kind or Kind.group (case-insensitive;
 * the core group is "core" or nothing). Other paths pass only when sel
 * selects everything. (source_ops.restore_entry_pass)
 */
int k8s_restore_entry_pass(const struct source_restore_select *sel, const char *path);

/*
 * Prints dir's YAML files, one path (relative to dir) a line, in apply order:
 * CRDs, Namespaces, other cluster-scoped objects, then per namespace
 * ServiceAccounts, Secrets, ConfigMaps, PVCs, Roles, RoleBindings, Services,
 * the other built-in kinds, and custom resources last. Not reentrant.
 * Errors: CF_ERR_IO. (source_ops.restore_print_order)
 */
int k8s_restore_print_order(const char *dir);

#endif
