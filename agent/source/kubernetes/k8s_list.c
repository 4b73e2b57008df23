/*
 * k8s_list: every object of one resource type, page by page
 * (?limit=N&continue=TOKEN), each item given to a callback with its
 * apiVersion and kind, which list replies leave out of their items.
 *
 * A continue token expires (410 Gone) when the list takes longer than the
 * server keeps its snapshot (etcd compaction, about five minutes). The list
 * then starts again from the first page, and the uids already given are
 * skipped, so the caller sees each object once; the objects may come from
 * two snapshots. It does not watch.
 */
#include "agent/source/kubernetes/k8s_intern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K8S_LIST_PAGE 500
#define K8S_LIST_RESTARTS 8

/* The uids already given: an open-addressing hash set of strings. */
struct k8s_uids {
	char **slot;
	size_t cap, n;
};

static size_t k8s_list_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static int k8s_list_uid_seen(const struct k8s_uids *u, const char *uid)
{
	if (!u->cap)
		return 0;
	for (size_t i = k8s_list_hash(uid) & (u->cap - 1);; i = (i + 1) & (u->cap - 1)) {
		if (!u->slot[i])
			return 0;
		if (!strcmp(u->slot[i], uid))
			return 1;
	}
}

static void k8s_list_uid_put(char **slot, size_t cap, char *uid)
{
	size_t i = k8s_list_hash(uid) & (cap - 1);

	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = uid;
}

static int k8s_list_uid_add(struct k8s_uids *u, const char *uid)
{
	char *copy;

	if (k8s_list_uid_seen(u, uid))
		return 0;
	if ((u->n + 1) * 2 > u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 1024;
		char **slot = calloc(cap, sizeof(*slot));

		if (!slot)
			return error_set(CF_ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < u->cap; i++)
			if (u->slot[i])
				k8s_list_uid_put(slot, cap, u->slot[i]);
		free(u->slot);
		u->slot = slot;
		u->cap = cap;
	}
	copy = strdup(uid);
	if (!copy)
		return error_set(CF_ERR_NOMEM, "out of memory");
	k8s_list_uid_put(u->slot, u->cap, copy);
	u->n++;
	return 0;
}

static void k8s_list_uids_free(struct k8s_uids *u)
{
	for (size_t i = 0; i < u->cap; i++)
		free(u->slot[i]);
	free(u->slot);
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static int k8s_list_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (; !rc && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			rc = buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

			rc = buf_append(b, e, 3);
		}
	}
	return rc;
}

static int k8s_list_path(const struct k8s_resource *r, const char *ns, const char *selector,
                         long limit, const char *cont, struct buf *b)
{
	int rc;

	buf_reset(b);
	if (*r->group)
		rc = buf_printf(b, "/apis/%s/%s", r->group, r->version);
	else
		rc = buf_printf(b, "/api/%s", r->version);
	if (!rc && ns && r->namespaced) {
		rc = buf_printf(b, "/namespaces/");
		if (!rc)
			rc = k8s_list_encode(b, ns);
	}
	if (!rc)
		rc = buf_printf(b, "/%s?limit=%ld", r->name, limit);
	if (!rc && selector) {
		rc = buf_printf(b, "&labelSelector=");
		if (!rc)
			rc = k8s_list_encode(b, selector);
	}
	if (!rc && cont) {
		rc = buf_printf(b, "&continue=");
		if (!rc)
			rc = k8s_list_encode(b, cont);
	}
	return rc;
}

/* Gives the page's items not given yet. *stop is set when cb asks to stop. */
static int k8s_list_page(const struct k8s_resource *r, json_t *page, const char *api_version,
                         struct k8s_uids *seen, k8s_item_cb cb, void *ctx, size_t *given, int *stop)
{
	json_t *items = json_object_get(page, "items"), *item;
	size_t i;
	int rc = 0;

	if (!json_is_array(items) && !json_is_null(items)) /* null: an empty list */
		return error_set(CF_ERR_FORMAT, "k8s: the list of %s has no items", r->name);
	json_array_foreach(items, i, item)
	{
		const char *uid =
		    json_string_value(json_object_get(json_object_get(item, "metadata"), "uid"));

		if (!json_is_object(item) || (uid && k8s_list_uid_seen(seen, uid)))
			continue;
		if (json_object_set_new(item, "apiVersion", json_string(api_version)) ||
		    json_object_set_new(item, "kind", json_string(r->kind)))
			return error_set(CF_ERR_NOMEM, "out of memory");
		/* Recorded before cb, which may change the item. */
		if (uid)
			rc = k8s_list_uid_add(seen, uid);
		if (!rc)
			rc = cb(ctx, r, item);
		if (rc > 0) {
			*stop = 1;
			return 0;
		}
		if (rc)
			return rc;
		(*given)++;
	}
	return 0;
}

int k8s_list(struct k8s_client *c, const struct k8s_resource *r, const char *ns,
             const char *label_selector, long page_size, k8s_item_cb cb, void *ctx)
{
	struct k8s_uids seen = {NULL, 0, 0};
	char api_version[512], *cont = NULL;
	size_t given = 0;
	int rc = 0, restarts = 0, stop = 0;
	struct buf path;

	if (page_size <= 0)
		page_size = K8S_LIST_PAGE;
	if (*r->group)
		snprintf(api_version, sizeof(api_version), "%s/%s", r->group, r->version);
	else
		snprintf(api_version, sizeof(api_version), "%s", r->version);
	buf_init(&path, 32 * 1024);
	while (!rc && !stop) {
		json_t *page = NULL;
		const char *next;
		long status = 0;

		rc = k8s_list_path(r, ns, label_selector, page_size, cont, &path);
		if (rc) {
			rc = error_set(rc, "k8s: the list URL of %s is too long", r->name);
			break;
		}
		rc = k8s_get_json(c, (const char *)path.data, &page, &status);
		if (rc && status == 410 && cont) {
			if (restarts == K8S_LIST_RESTARTS) {
				rc = error_set(
				    CF_ERR_SOURCE,
				    "k8s: the list of %s expired again after %d restarts before it "
				    "could be read to the end; try a larger page size",
				    r->name, restarts);
				break;
			}
			restarts++;
			log_info(
			    "k8s: the list of %s expired after %zu objects; listing again from the "
			    "start, skipping those",
			    r->name, given);
			error_clear();
			free(cont);
			cont = NULL;
			rc = 0;
			continue;
		}
		if (!rc)
			rc = k8s_list_page(r, page, api_version, &seen, cb, ctx, &given, &stop);
		next = json_string_value(
		    json_object_get(json_object_get(page, "metadata"), "continue"));
		free(cont);
		cont = NULL;
		if (!rc && !stop && next && *next && !(cont = strdup(next)))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		json_decref(page);
		if (!cont)
			break;
	}
	free(cont);
	buf_free(&path);
	k8s_list_uids_free(&seen);
	return rc;
}
