/*
 * k8s_restore: the restore side of the kubernetes source. Which entries of a
 * backup's archive `restore --namespace NS --kind KIND` keeps, and the order
 * to `kubectl apply -f` the restored files in (--print-apply-order). It reads
 * archive paths as k8s_object_path() writes them; it never talks to a
 * cluster (coffer does not apply what it restores).
 */
#include "agent/source/kubernetes/k8s_object.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int k8s_restore_entry_pass(const struct source_restore_select *f, const char *path)
{
	char copy[4096], *part[6] = {0}, *save = NULL;
	const char *group, *kind;
	size_t n = 0;

	if (!f || (!f->ns && !f->kind) || !strcmp(path, "cluster-info.json"))
		return 1;
	snprintf(copy, sizeof(copy), "%s", path);
	for (char *p = strtok_r(copy, "/", &save); p && n < 6; p = strtok_r(NULL, "/", &save))
		part[n++] = p;
	if (n == 5 && !strcmp(part[0], "namespaces")) {
		if (f->ns && strcmp(part[1], f->ns))
			return 0;
		group = part[2];
		kind = part[3];
	} else if (n == 4 && !strcmp(part[0], "cluster")) {
		/* With --namespace, of the cluster's objects only that Namespace. */
		if (f->ns) {
			char want[512];

			snprintf(want, sizeof(want), "%s.yaml", f->ns);
			if (strcmp(part[1], "core") || strcmp(part[2], "Namespace") ||
			    strcmp(part[3], want))
				return 0;
		}
		group = part[1];
		kind = part[2];
	} else {
		return !f->kind && !f->ns;
	}
	if (f->kind) {
		const char *dot = strchr(f->kind, '.');
		size_t kl = dot ? (size_t)(dot - f->kind) : strlen(f->kind);

		if (strlen(kind) != kl || strncasecmp(kind, f->kind, kl))
			return 0;
		if (dot && strcmp(dot + 1, group) && !(!dot[1] && !strcmp(group, "core")))
			return 0;
	}
	return 1;
}

/* The order to `kubectl apply -f` a restored kubernetes archive in. */
static int k8s_restore_apply_rank(const char *path)
{
	static const char *const early[] = {
	    "ServiceAccount", "Secret",      "ConfigMap", "PersistentVolumeClaim",
	    "Role",           "RoleBinding", "Service",   NULL};
	char copy[4096], *part[6] = {0}, *save = NULL;
	size_t n = 0;
	int builtin;

	snprintf(copy, sizeof(copy), "%s", path);
	for (char *p = strtok_r(copy, "/", &save); p && n < 6; p = strtok_r(NULL, "/", &save))
		part[n++] = p;
	if (n == 4 && !strcmp(part[0], "cluster")) {
		if (!strcmp(part[2], "CustomResourceDefinition"))
			return 0;
		if (!strcmp(part[1], "core") && !strcmp(part[2], "Namespace"))
			return 1;
		return 2;
	}
	if (n != 5)
		return 20;
	for (int i = 0; early[i]; i++)
		if (!strcmp(part[3], early[i]) &&
		    (!strcmp(part[2], "core") || strstr(part[2], "k8s.io")))
			return 3 + i;
	/* Built-in groups have no dot or end in k8s.io; the rest are custom
	 * resources, whose CRDs and controllers come first. */
	builtin = !strchr(part[2], '.') || strstr(part[2], "k8s.io") != NULL;
	return builtin ? 10 : 11;
}

struct k8s_restore_apply_item {
	int rank;
	char *path;
};

static int k8s_restore_apply_cmp(const void *a, const void *b)
{
	const struct k8s_restore_apply_item *x = a, *y = b;

	return x->rank != y->rank ? x->rank - y->rank : strcmp(x->path, y->path);
}

static struct k8s_restore_apply_item *k8s_restore_apply_items;
static size_t k8s_restore_apply_n, k8s_restore_apply_cap;
static size_t k8s_restore_apply_skip;

static int k8s_restore_apply_visit(const char *path, const struct stat *sb, int type,
                                   struct FTW *ftw)
{
	const char *rel = path + k8s_restore_apply_skip;
	size_t len = strlen(rel);

	(void)sb;
	(void)ftw;
	if (type != FTW_F || len < 5 || strcmp(rel + len - 5, ".yaml"))
		return 0;
	if (k8s_restore_apply_n == k8s_restore_apply_cap) {
		size_t cap = k8s_restore_apply_cap ? k8s_restore_apply_cap * 2 : 256;
		struct k8s_restore_apply_item *v =
		    realloc(k8s_restore_apply_items, cap * sizeof(*v));

		if (!v)
			return -1;
		k8s_restore_apply_items = v;
		k8s_restore_apply_cap = cap;
	}
	k8s_restore_apply_items[k8s_restore_apply_n].rank = k8s_restore_apply_rank(rel);
	k8s_restore_apply_items[k8s_restore_apply_n].path = strdup(rel);
	if (!k8s_restore_apply_items[k8s_restore_apply_n].path)
		return -1;
	k8s_restore_apply_n++;
	return 0;
}

int k8s_restore_print_order(const char *dir)
{
	int rc = 0;

	k8s_restore_apply_skip = strlen(dir) + 1;
	if (nftw(dir, k8s_restore_apply_visit, 32, FTW_PHYS) != 0)
		rc = error_set(CF_ERR_IO, "cannot list %s", dir);
	if (!rc) {
		qsort(k8s_restore_apply_items, k8s_restore_apply_n,
		      sizeof(*k8s_restore_apply_items), k8s_restore_apply_cmp);
		for (size_t i = 0; i < k8s_restore_apply_n; i++)
			printf("%s\n", k8s_restore_apply_items[i].path);
	}
	for (size_t i = 0; i < k8s_restore_apply_n; i++)
		free(k8s_restore_apply_items[i].path);
	free(k8s_restore_apply_items);
	k8s_restore_apply_items = NULL;
	k8s_restore_apply_n = k8s_restore_apply_cap = 0;
	return rc;
}
