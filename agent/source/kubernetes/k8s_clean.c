/*
 * k8s_clean: which resources the kubernetes source keeps, and what it removes
 * from each object so that `kubectl apply -f` can create it again on another
 * cluster. See k8s_object.h. The table below is the documented list
 * (docs/kubernetes.md copies it).
 */
#include "agent/source/kubernetes/k8s_object.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *const k8s_default_excluded[] = {
    "events",                              /* runtime: what happened */
    "events.events.k8s.io",                /* the same, newer API */
    "endpoints",                           /* made from Services by the control plane */
    "endpointslices.discovery.k8s.io",     /* likewise */
    "leases.coordination.k8s.io",          /* leader election, node heartbeats */
    "nodes",                               /* the machines of this cluster */
    "componentstatuses",                   /* a live probe, not an object */
    "controllerrevisions.apps",            /* history kept by StatefulSets/DaemonSets */
    "volumeattachments.storage.k8s.io",    /* runtime attach state */
    "csinodes.storage.k8s.io",             /* per-node driver state */
    "csistoragecapacities.storage.k8s.io", /* reported capacity */
    "pods.metrics.k8s.io",                 /* metrics */
    "nodes.metrics.k8s.io",                /* metrics */
    NULL,
};

int k8s_kind_matches(const char *filter, const struct k8s_resource *r)
{
	const char *dot = strchr(filter, '.');
	size_t n = dot ? (size_t)(dot - filter) : strlen(filter);
	const char *group = dot ? dot + 1 : "";

	if (strcmp(group, r->group ? r->group : ""))
		return 0;
	return (strlen(r->name) == n && !strncasecmp(filter, r->name, n)) ||
	       (strlen(r->kind) == n && !strncasecmp(filter, r->kind, n));
}

/* A field to remove: a path of object keys ("spec.clusterIP"); kind and
 * group limit it to one resource kind (NULL: every object). */
struct k8s_clean_field {
	const char *group; /* "" core, NULL any */
	const char *kind;  /* NULL any */
	const char *path;
	const char *why;
};

/* What the server assigns. Annotations and labels are named with a '|'
 * before the key, since their keys hold dots: "metadata.annotations|KEY". */
static const struct k8s_clean_field k8s_clean_table[] = {
    {NULL, NULL, "metadata.uid", "assigned by the server"},
    {NULL, NULL, "metadata.resourceVersion", "the server's version counter"},
    {NULL, NULL, "metadata.generation", "the server's spec counter"},
    {NULL, NULL, "metadata.creationTimestamp", "set at creation"},
    {NULL, NULL, "metadata.managedFields", "server-side apply bookkeeping"},
    {NULL, NULL, "metadata.selfLink", "derived from the path"},
    {NULL, NULL, "metadata.deletionTimestamp", "an object being deleted"},
    {NULL, NULL, "metadata.deletionGracePeriodSeconds", "an object being deleted"},
    {NULL, NULL, "status", "observed state, written by controllers"},
    {NULL, NULL, "metadata.annotations|deployment.kubernetes.io/revision", "rollout counter"},
    {"", "Service", "spec.clusterIP", "allocated from this cluster's service range"},
    {"", "Service", "spec.clusterIPs", "allocated from this cluster's service range"},
    {"", "Service", "spec.healthCheckNodePort", "allocated node port"},
    {"", "PersistentVolumeClaim", "spec.volumeName", "binding to this cluster's volume"},
    {"", "PersistentVolumeClaim", "metadata.annotations|pv.kubernetes.io/bind-completed",
     "binding state"},
    {"", "PersistentVolumeClaim", "metadata.annotations|pv.kubernetes.io/bound-by-controller",
     "binding state"},
    {"", "PersistentVolumeClaim",
     "metadata.annotations|volume.beta.kubernetes.io/storage-provisioner",
     "set by the provisioner"},
    {"", "PersistentVolumeClaim", "metadata.annotations|volume.kubernetes.io/storage-provisioner",
     "set by the provisioner"},
    {"", "PersistentVolumeClaim", "metadata.annotations|volume.kubernetes.io/selected-node",
     "a node of this cluster"},
    {"", "PersistentVolume", "spec.claimRef.uid", "the claim's uid on this cluster"},
    {"", "PersistentVolume", "spec.claimRef.resourceVersion",
     "the claim's version on this cluster"},
    {"", "PersistentVolume", "metadata.annotations|pv.kubernetes.io/bound-by-controller",
     "binding state"},
    {"", "Pod", "spec.nodeName", "a node of this cluster"},
    {"batch", "Job", "spec.selector", "generated from the Job's uid"},
    {"batch", "Job", "spec.template.metadata.labels|controller-uid", "the Job's uid"},
    {"batch", "Job", "spec.template.metadata.labels|batch.kubernetes.io/controller-uid",
     "the Job's uid"},
    {"batch", "Job", "metadata.labels|controller-uid", "the Job's uid"},
    {"batch", "Job", "metadata.labels|batch.kubernetes.io/controller-uid", "the Job's uid"},
};

/* Removes one field; 1 if it was there. */
static int k8s_clean_path(json_t *obj, const char *path)
{
	char part[256];
	const char *p = path;
	json_t *cur = obj;

	for (;;) {
		size_t n = strcspn(p, ".|");

		if (n >= sizeof(part))
			return 0;
		memcpy(part, p, n);
		part[n] = '\0';
		if (p[n] == '|') {
			/* The rest is one key, dots and all. */
			cur = json_object_get(cur, part);
			return json_is_object(cur) && json_object_del(cur, p + n + 1) == 0;
		}
		if (!p[n])
			return json_is_object(cur) && json_object_del(cur, part) == 0;
		cur = json_object_get(cur, part);
		if (!json_is_object(cur))
			return 0;
		p += n + 1;
	}
}

/* The group of an apiVersion: "apps/v1" -> "apps", "v1" -> "". */
static void k8s_clean_group(json_t *obj, char *out, size_t outlen)
{
	const char *av = json_string_value(json_object_get(obj, "apiVersion"));
	const char *slash = av ? strchr(av, '/') : NULL;

	snprintf(out, outlen, "%.*s", slash ? (int)(slash - av) : 0, slash ? av : "");
}

size_t k8s_clean(json_t *obj, const struct k8s_clean_options *o)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	json_t *meta = json_object_get(obj, "metadata"), *owners, *ref;
	char group[256];
	size_t removed = 0, i;

	k8s_clean_group(obj, group, sizeof(group));
	for (i = 0; i < sizeof(k8s_clean_table) / sizeof(k8s_clean_table[0]); i++) {
		const struct k8s_clean_field *f = &k8s_clean_table[i];

		if (f->kind && (!kind || strcmp(f->kind, kind) || strcmp(f->group, group)))
			continue;
		removed += (size_t)k8s_clean_path(obj, f->path);
	}
	if (!o->keep_last_applied)
		removed += (size_t)k8s_clean_path(obj, "metadata.annotations|kubectl.kubernetes.io/"
		                                       "last-applied-configuration");
	owners = json_object_get(meta, "ownerReferences");
	json_array_foreach(owners, i, ref)
	{
		removed += (size_t)(json_object_del(ref, "uid") == 0);
	}
	/* Maps left empty are noise in the YAML. */
	if (json_is_object(json_object_get(meta, "annotations")) &&
	    !json_object_size(json_object_get(meta, "annotations")))
		json_object_del(meta, "annotations");
	if (json_is_object(json_object_get(meta, "labels")) &&
	    !json_object_size(json_object_get(meta, "labels")))
		json_object_del(meta, "labels");
	return removed;
}

int k8s_is_controlled(json_t *obj)
{
	json_t *owners = json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), *ref;
	size_t i;

	json_array_foreach(owners, i, ref)
	{
		if (json_is_true(json_object_get(ref, "controller")))
			return 1;
	}
	return 0;
}

static int k8s_path_part_ok(const char *s)
{
	return s && *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

int k8s_object_path(const struct k8s_resource *r, json_t *obj, char *out, size_t outlen)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *group = r->group && *r->group ? r->group : "core";
	int n;

	if (!k8s_path_part_ok(name) || (r->namespaced && !k8s_path_part_ok(ns)))
		return error_set(CF_ERR_FORMAT, "a %s object without a usable name or namespace",
		                 r->kind);
	if (r->namespaced)
		n = snprintf(out, outlen, "namespaces/%s/%s/%s/%s.yaml", ns, group, r->kind, name);
	else
		n = snprintf(out, outlen, "cluster/%s/%s/%s.yaml", group, r->kind, name);
	if (n < 0 || (size_t)n >= outlen)
		return error_set(CF_ERR_LIMIT, "the path of %s %s is too long", r->kind, name);
	return 0;
}
