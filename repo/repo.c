/*
 * repo: finding, settling and deleting backups in one repository (the
 * layout and the deletion rules are stated in repo.h). Every storage
 * delete of coffer is in this file.
 */
#include "repo/repo.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A manifest larger than this is not one coffer wrote. */
#define REPO_MANIFEST_MAX (16u << 20)
/* Keys deleted per storage_delete_many() call while removing a folder
 * (S3 DeleteObjects takes up to 1000); the manifest check runs per batch. */
#define REPO_DELETE_BATCH 1000

struct repo {
	char *name;
	struct storage *st;
	struct catalog *cat;
	const struct repo_trust *trust;
};

void repo_trust_free(struct repo_trust *t)
{
	strv_free(&t->keys);
}

int repo_open(const char *name, const struct storage_options *opts, struct catalog *cat,
              const struct repo_trust *trust, struct repo **out)
{
	struct repo *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r || !(r->name = strdup(name))) {
		free(r);
		return error_set(CF_ERR_NOMEM, "out of memory opening repository %s", name);
	}
	r->cat = cat;
	r->trust = trust;
	rc = storage_open(opts, &r->st);
	if (rc) {
		repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	storage_free(r->st);
	free(r->name);
	free(r);
}

const char *repo_name(const struct repo *r)
{
	return r->name;
}

const char *repo_location(const struct repo *r)
{
	return storage_describe(r->st);
}

struct catalog *repo_catalog(const struct repo *r)
{
	return r->cat;
}

struct storage *repo_storage(const struct repo *r)
{
	return r->st;
}

int repo_record_at(const struct catalog_backup *b, const char *location)
{
	return catalog_backup_unplaced(b) || strv_has(&b->locations, location);
}

/* ------------------------------------------------------------------------ */
/* Layout                                                                     */
/* ------------------------------------------------------------------------ */

int repo_backup_prefix(const char *source, const char *id, char **out)
{
	size_t n;

	*out = NULL;
	if (!name_valid(source) || !backup_id_valid(id))
		return error_set(CF_ERR_INTERNAL, "no backup folder for source '%.64s', id '%.64s'",
		                 source, id);
	n = strlen(source) + 1 + BACKUP_ID_LEN + 2;
	*out = malloc(n);
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory");
	snprintf(*out, n, "%s/%s/", source, id);
	return 0;
}

int repo_wal_dir(const char *source, const char *name, char **out)
{
	size_t n;

	*out = NULL;
	if (!name_valid(source) || (name && (strlen(name) < 16 || strchr(name, '/'))))
		return error_set(CF_ERR_INTERNAL, "no WAL folder for source '%.64s', file '%.64s'",
		                 source, name ? name : "");
	n = strlen(source) + sizeof("/" REPO_WAL_DIR "/0123456789ABCDEF/");
	*out = malloc(n);
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (name)
		snprintf(*out, n, "%s/%s/%.16s/", source, REPO_WAL_DIR, name);
	else
		snprintf(*out, n, "%s/%s/history/", source, REPO_WAL_DIR);
	return 0;
}

int repo_wal_delete(struct repo *r, const char *source, const char *const *keys, size_t n)
{
	size_t sl = strlen(source);

	if (!name_valid(source))
		return error_set(CF_ERR_INTERNAL, "no WAL of source '%.64s'", source);
	for (size_t i = 0; i < n; i++)
		if (strncmp(keys[i], source, sl) ||
		    strncmp(keys[i] + sl, "/" REPO_WAL_DIR "/", 5) || strstr(keys[i], "/../") ||
		    strchr(keys[i] + sl + 5, '/') == NULL)
			return error_set(CF_ERR_INTERNAL,
			                 "refusing to delete %.200s: not a WAL object of "
			                 "source %s",
			                 keys[i], source);
	return n ? storage_delete_many(r->st, keys, n) : 0;
}

/* The id of a key "<source>/<id>/<name>" into id, or 0 if it has not that
 * shape; *plen receives the length of "<source>/<id>/". */
static int repo_key_id(const char *key, char id[BACKUP_ID_LEN + 1], size_t *plen)
{
	const char *slash1 = strchr(key, '/'), *slash2;

	if (!slash1)
		return 0;
	slash2 = strchr(slash1 + 1, '/');
	if (!slash2 || (size_t)(slash2 - slash1 - 1) != BACKUP_ID_LEN)
		return 0;
	memcpy(id, slash1 + 1, BACKUP_ID_LEN);
	id[BACKUP_ID_LEN] = '\0';
	*plen = (size_t)(slash2 - key) + 1;
	return backup_id_valid(id);
}

int repo_prefix_valid(const char *prefix)
{
	char source[NAME_MAX_LEN + 1], id[BACKUP_ID_LEN + 1];
	size_t plen, slen;

	if (!prefix || !repo_key_id(prefix, id, &plen) || prefix[plen] != '\0')
		return 0;
	slen = (size_t)(strchr(prefix, '/') - prefix);
	if (slen > NAME_MAX_LEN)
		return 0;
	memcpy(source, prefix, slen);
	source[slen] = '\0';
	return name_valid(source);
}

/* The manifest key of a backup folder into out. */
static int repo_manifest_key(const char *prefix, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "%s%s", prefix, REPO_MANIFEST_NAME) >= size)
		return error_set(CF_ERR_INTERNAL, "key too long under %.128s", prefix);
	return 0;
}

/* 1 if prefix holds a manifest, 0 if not, or an error: asked right before
 * each deletion, never taken from an earlier listing (rule 1). */
static int repo_has_manifest(struct repo *r, const char *prefix)
{
	struct storage_info info;
	char key[STORAGE_KEY_MAX + 1];
	int rc = repo_manifest_key(prefix, key, sizeof(key));

	if (!rc)
		rc = storage_head(r->st, key, &info);
	if (rc == CF_ERR_NOTFOUND) {
		error_clear();
		return 0;
	}
	return rc ? rc : 1;
}

/* ------------------------------------------------------------------------ */
/* Manifests                                                                  */
/* ------------------------------------------------------------------------ */

/* Whether a manifest's signature (signer NULL: none) is one this host
 * believes. */
static int repo_trust_check(const struct repo_trust *t, const char *key, const char *signer)
{
	if (signer && strv_has(&t->keys, signer))
		return 0;
	if (t->allow_unsigned) {
		log_warn("manifest %s is %s%s; trusted because of --trust-unsigned", key,
		         signer ? "signed by a key not in trusted_signers: " : "not signed",
		         signer ? signer : "");
		return 0;
	}
	if (!signer)
		return error_set(
		    CF_ERR_INTEGRITY,
		    "manifest %s is not signed, so anyone who can write to the repository "
		    "could have made it; pass --trust-unsigned to believe it anyway",
		    key);
	return error_set(
	    CF_ERR_INTEGRITY,
	    "manifest %s is signed by %s, which is not in [encryption] trusted_signers; "
	    "add it there if it is a backup host's key ('coffer keygen --signing' on that "
	    "host prints it), or pass --trust-unsigned",
	    key, signer);
}

int repo_read_manifest(struct repo *r, const char *key, struct catalog_backup **out)
{
	size_t kl = strlen(key), ml = strlen(REPO_MANIFEST_NAME);
	char *where = NULL, *signer = NULL;
	struct buf b;
	int rc;

	if (kl < ml || strcmp(key + kl - ml, REPO_MANIFEST_NAME))
		return error_set(CF_ERR_INTERNAL, "%s is not a manifest key", key);
	rc = storage_read_all(r->st, key, REPO_MANIFEST_MAX, &b);
	if (rc)
		return rc;
	rc = catalog_manifest_verify((char *)b.data, b.len, &signer);
	if (rc == CF_ERR_INTEGRITY && r->trust->allow_unsigned) {
		/* Removing a signature is as easy as breaking one: --trust-unsigned
		 * believes both, and says so. */
		log_warn("manifest %s: %s; trusted because of --trust-unsigned", key,
		         error_message());
		error_clear();
		rc = 0;
	} else if (rc == CF_ERR_FORMAT || rc == CF_ERR_INTEGRITY) {
		rc = error_set(CF_ERR_INTEGRITY, "manifest %s: %s", key, error_message());
	} else if (!rc) {
		rc = repo_trust_check(r->trust, key, signer);
	}
	if (!rc && !(where = strndup(key, kl - ml)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc) {
		rc = catalog_manifest_from_json((char *)b.data, b.len, where, out);
		if (rc && rc != CF_ERR_NOMEM)
			rc = error_set(CF_ERR_INTEGRITY, "manifest %s: %s", key, error_message());
	}
	free(signer);
	free(where);
	buf_free(&b);
	return rc;
}

int repo_write_manifest(struct repo *r, const struct catalog_backup *b, const struct sign_key *k)
{
	struct storage_write *w = NULL;
	char key[STORAGE_KEY_MAX + 1];
	char *json = NULL, *plain = NULL;
	int rc;

	if (!repo_prefix_valid(b->prefix))
		return error_set(CF_ERR_INTERNAL, "backup %s has a bad folder '%.128s'", b->id,
		                 b->prefix ? b->prefix : "");
	rc = repo_manifest_key(b->prefix, key, sizeof(key));
	if (!rc)
		rc = catalog_backup_to_json(b, CATALOG_JSON_MANIFEST, &plain);
	if (!rc)
		rc = catalog_manifest_sign(plain, k, &json);
	if (!rc)
		rc = storage_write_new(r->st, key, &w);
	if (!rc) {
		rc = storage_write_data(w, json, strlen(json));
		if (rc)
			storage_write_abort(w);
		else
			rc = storage_write_commit(w);
	}
	free(plain);
	free(json);
	return rc;
}

/* The catalog's record holds the digests the backup run computed itself: a
 * manifest that says otherwise (another object, size or digest, an object
 * more or less) was changed in the repository. */
static int repo_manifest_matches(const struct catalog_backup *rec, const struct catalog_backup *man)
{
	if (rec->nobjects != man->nobjects)
		return error_set(
		    CF_ERR_INTEGRITY,
		    "the manifest of %s lists %zu object(s), the catalog's record %zu: the "
		    "repository's copy was changed",
		    rec->id, man->nobjects, rec->nobjects);
	for (size_t i = 0; i < rec->nobjects; i++) {
		const struct catalog_object *a = &rec->objects[i], *b = &man->objects[i];

		if (strcmp(a->name, b->name) || strcmp(a->key, b->key) ||
		    strcmp(a->format ? a->format : "", b->format) || a->raw_bytes != b->raw_bytes ||
		    a->stored_bytes != b->stored_bytes || !a->sha256 ||
		    strcmp(a->sha256, b->sha256))
			return error_set(
			    CF_ERR_INTEGRITY,
			    "the manifest of %s does not match the catalog's record for "
			    "object %s (key, format, sizes or SHA-256): the repository's copy "
			    "was changed",
			    rec->id, a->name);
	}
	return 0;
}

/* The manifest of a backup this host has a complete record of. */
static int repo_find_recorded(struct repo *r, struct catalog_backup *rec,
                              struct catalog_backup **man)
{
	char key[STORAGE_KEY_MAX + 1];
	int rc;

	if (!repo_record_at(rec, repo_location(r)))
		return error_set(
		    CF_ERR_NOTFOUND,
		    "backup %s is in %s, not in this configuration's repository %s (the "
		    "catalog is shared); use the configuration of that repository",
		    rec->id, rec->locations.v[0], repo_location(r));
	if (rec->status != CATALOG_COMPLETE)
		return error_set(CF_ERR_NOTFOUND, "backup %s is not complete (%s%s%s)", rec->id,
		                 catalog_status_name(rec->status), rec->error ? ": " : "",
		                 rec->error ? rec->error : "");
	rc = repo_manifest_key(rec->prefix, key, sizeof(key));
	if (!rc)
		rc = repo_read_manifest(r, key, man);
	if (rc == CF_ERR_NOTFOUND)
		rc = error_set(CF_ERR_INTEGRITY,
		               "backup %s has no manifest in %s any more, so it is not a complete "
		               "backup there (run 'coffer catalog rebuild' to forget it)",
		               rec->id, repo_location(r));
	if (!rc)
		rc = repo_manifest_matches(rec, *man);
	return rc;
}

struct repo_find {
	const char *id;
	char *key;
};

static int repo_find_cb(void *ctx, const char *key, const char *id)
{
	struct repo_find *f = ctx;

	if (strcmp(id, f->id))
		return 0;
	f->key = strdup(key);
	return f->key ? 1 : error_set(CF_ERR_NOMEM, "out of memory");
}

/* The manifest key of backup id in the repository, found without the
 * catalog: a HEAD under each configured source first, then a listing. */
static int repo_find_unrecorded(struct repo *r, const char *id, char *const *sources,
                                size_t nsources, char **key)
{
	struct repo_find f = {id, NULL};
	struct storage_info info;
	char buf[STORAGE_KEY_MAX + 1];
	int rc;

	for (size_t i = 0; i < nsources; i++) {
		if (!name_valid(sources[i]) ||
		    (size_t)snprintf(buf, sizeof(buf), "%s/%s/%s", sources[i], id,
		                     REPO_MANIFEST_NAME) >= sizeof(buf))
			continue;
		rc = storage_head(r->st, buf, &info);
		if (!rc) {
			*key = strdup(buf);
			return *key ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
		}
		if (rc != CF_ERR_NOTFOUND)
			return rc;
		error_clear();
	}
	/* A source no longer configured: only a listing can find it. */
	log_info("backup %s is under none of the configured sources; listing %s to find it", id,
	         repo_location(r));
	rc = repo_list_manifests(r, repo_find_cb, &f);
	if (rc == 1) {
		*key = f.key;
		return 0;
	}
	free(f.key);
	if (!rc)
		rc = error_set(CF_ERR_NOTFOUND, "no backup %s in the catalog or in %s", id,
		               repo_location(r));
	return rc;
}

int repo_find_backup(struct repo *r, const char *id, char *const *sources, size_t nsources,
                     struct catalog_backup **out)
{
	struct catalog_backup *rec = NULL, *man = NULL;
	char *key = NULL;
	int rc;

	*out = NULL;
	if (!backup_id_valid(id))
		return error_set(CF_ERR_NOTFOUND, "'%s' is not a backup id (see 'coffer list')",
		                 id);
	rc = catalog_backup_get(r->cat, id, &rec);
	if (rc && rc != CF_ERR_NOTFOUND)
		return rc;
	if (rec) {
		rc = repo_find_recorded(r, rec, &man);
		catalog_backup_free(rec);
	} else {
		error_clear();
		rc = repo_find_unrecorded(r, id, sources, nsources, &key);
		if (!rc)
			rc = repo_read_manifest(r, key, &man);
		if (!rc)
			log_warn(
			    "backup %s is not in this host's catalog: trusting the manifest in "
			    "%s as it is",
			    id, repo_location(r));
		free(key);
	}
	if (!rc && strcmp(man->id, id) != 0)
		rc = error_set(CF_ERR_FORMAT, "the manifest of %s names another backup (%s)", id,
		               man->id);
	if (rc) {
		catalog_backup_free(man);
		return rc;
	}
	*out = man;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Settling and deleting runs                                                 */
/* ------------------------------------------------------------------------ */

int repo_abort_unfinished(struct repo *r, const char *prefix, unsigned *removed)
{
	*removed = 0;
	if (!repo_prefix_valid(prefix))
		return error_set(CF_ERR_INTERNAL,
		                 "refusing to clean up under '%.128s': not a "
		                 "backup's folder",
		                 prefix ? prefix : "");
	return storage_cleanup_prefix(r->st, prefix, 0, time_real_ms(), removed);
}

int repo_discard_run(struct repo *r, const struct catalog_backup *rec, int *complete)
{
	const char **keys = NULL;
	size_t nkeys = 0, plen;
	unsigned pending = 0;
	int rc;

	*complete = 0;
	if (!repo_prefix_valid(rec->prefix))
		return error_set(
		    CF_ERR_INTERNAL,
		    "refusing to delete under '%.128s' (backup %s): not a backup's folder",
		    rec->prefix ? rec->prefix : "", rec->id);
	rc = repo_has_manifest(r, rec->prefix);
	if (rc == 1) {
		*complete = 1;
		return 0;
	}
	if (rc)
		return rc;
	/* Unfinished writes under the run's own folder (a temporary file no
	 * live writer locks, an S3 multipart upload), then the objects the run
	 * recorded writing, and nothing else. */
	rc = storage_cleanup_prefix(r->st, rec->prefix, 0, time_real_ms(), &pending);
	plen = strlen(rec->prefix);
	if (!rc && rec->nobjects && !(keys = calloc(rec->nobjects, sizeof(*keys))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < rec->nobjects; i++) {
		const char *key = rec->objects[i].key;

		if (key && !strncmp(key, rec->prefix, plen))
			keys[nkeys++] = key;
	}
	if (!rc)
		rc = storage_delete_many(r->st, keys, nkeys);
	free(keys);
	return rc;
}

struct repo_folder {
	struct repo *r;
	const char *prefix;
	char **keys;
	size_t n;
	unsigned removed;
};

/* Deletes the keys gathered so far, if the folder still has no manifest. */
static int repo_folder_flush(struct repo_folder *f)
{
	int rc = f->n ? repo_has_manifest(f->r, f->prefix) : 0;

	if (rc == 1)
		rc = error_set(CF_ERR_EXISTS, "%s now holds a manifest", f->prefix);
	if (!rc)
		rc = storage_delete_many(f->r->st, (const char *const *)f->keys, f->n);
	if (!rc)
		f->removed += (unsigned)f->n;
	for (size_t i = 0; i < f->n; i++)
		free(f->keys[i]);
	f->n = 0;
	return rc;
}

static int repo_folder_cb(void *ctx, const char *key, const struct storage_info *info)
{
	struct repo_folder *f = ctx;

	(void)info;
	if (!(f->keys[f->n] = strdup(key)))
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (++f->n == REPO_DELETE_BATCH)
		return repo_folder_flush(f);
	return 0;
}

int repo_remove_folder(struct repo *r, const char *prefix, unsigned *removed)
{
	struct repo_folder f = {r, prefix, NULL, 0, 0};
	int rc;

	*removed = 0;
	if (!repo_prefix_valid(prefix))
		return error_set(CF_ERR_INTERNAL,
		                 "refusing to delete under '%.128s': not a backup's folder",
		                 prefix);
	f.keys = calloc(REPO_DELETE_BATCH, sizeof(*f.keys));
	if (!f.keys)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = storage_list(r->st, prefix, repo_folder_cb, &f);
	if (!rc)
		rc = repo_folder_flush(&f);
	for (size_t i = 0; i < f.n; i++)
		free(f.keys[i]);
	free(f.keys);
	*removed = f.removed;
	return rc;
}

int repo_forget(struct repo *r, const char *id)
{
	struct catalog_backup *rec = NULL;
	const char *here = repo_location(r);
	size_t n;
	int rc = catalog_backup_get(r->cat, id, &rec);

	if (rc == CF_ERR_NOTFOUND) {
		error_clear();
		return 0;
	}
	if (rc)
		return rc;
	/* A copy prune deleted is remembered as pruned, so that `replicate
	 * --all` does not make it again while another repository keeps it. */
	if (strv_has(&rec->deleting, here) && !strv_has(&rec->pruned, here))
		rc = strv_add(&rec->pruned, here);
	strv_remove(&rec->locations, here);
	strv_remove(&rec->deleting, here);
	catalog_backup_drop_pending(rec, here);
	n = rec->locations.n + rec->deleting.n;
	if (!rc)
		rc = n ? catalog_backup_put(r->cat, rec) : catalog_backup_delete(r->cat, id);
	catalog_backup_free(rec);
	return rc;
}

struct repo_probe_list {
	const char *key;
	int seen;
};

static int repo_probe_seen(void *ctx, const char *key, const struct storage_info *info)
{
	struct repo_probe_list *l = ctx;

	(void)info;
	if (!strcmp(key, l->key))
		l->seen = 1;
	return 0;
}

/* The step's error, prefixed with what was being done. */
static int repo_probe_fail(int rc, const char *step, const char *key)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", error_message());
	return error_set(rc, "%s probe object %s: %s", step, key, msg);
}

int repo_probe(struct repo *r, struct buf *detail)
{
	struct storage *s = r->st;
	struct repo_probe_list l = {0};
	struct storage_write *w = NULL;
	struct storage_info info;
	struct buf back;
	char key[300], host[128] = "host", body[512];
	size_t len;
	int rc;

	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, "/")] = '\0';
	snprintf(key, sizeof(key), ".coffer-check/%s-%ld-%lld", host, (long)getpid(),
	         (long long)time_real_ms());
	len = (size_t)snprintf(body, sizeof(body), "coffer check probe from %s, pid %ld\n", host,
	                       (long)getpid());
	rc = storage_write_new(s, key, &w);
	if (!rc)
		rc = storage_write_data(w, body, len);
	if (!rc) {
		rc = storage_write_commit(w);
		w = NULL;
	}
	if (rc) {
		if (w)
			storage_write_abort(w);
		return repo_probe_fail(rc, "write", key);
	}
	l.key = key;
	rc = storage_list(s, ".coffer-check/", repo_probe_seen, &l);
	if (!rc && !l.seen)
		rc = error_set(CF_ERR_TARGET, "the listing does not show it");
	if (rc) {
		rc = repo_probe_fail(rc, "list", key);
		storage_delete(s, key);
		return rc;
	}
	buf_init(&back, 1024);
	rc = storage_read_all(s, key, sizeof(body), &back);
	if (!rc && (back.len != len || memcmp(back.data, body, len)))
		rc = error_set(CF_ERR_TARGET, "it reads back different (%zu bytes, not %zu)",
		               back.len, len);
	buf_free(&back);
	if (rc) {
		rc = repo_probe_fail(rc, "read", key);
		storage_delete(s, key);
		return rc;
	}
	rc = storage_delete(s, key);
	if (rc)
		return repo_probe_fail(rc, "delete", key);
	rc = storage_head(s, key, &info);
	if (rc == CF_ERR_NOTFOUND)
		rc = 0;
	else if (!rc)
		rc = error_set(CF_ERR_TARGET, "it is still there after its deletion");
	if (rc)
		return repo_probe_fail(rc, "delete", key);
	return buf_printf(detail, "%s: wrote, listed, read back and deleted a probe object",
	                  storage_describe(s));
}

int repo_delete_backup(struct repo *r, const struct catalog_backup *b)
{
	char key[STORAGE_KEY_MAX + 1];
	unsigned removed = 0;
	int rc;

	if (!repo_prefix_valid(b->prefix))
		return error_set(
		    CF_ERR_INTERNAL,
		    "refusing to delete under '%.128s' (backup %s): not a backup's folder",
		    b->prefix ? b->prefix : "", b->id);
	rc = repo_manifest_key(b->prefix, key, sizeof(key));
	if (!rc)
		rc = storage_delete(r->st, key);
	if (!rc)
		rc = fault_point("delete-manifest");
	/* Now a folder without a manifest: everything under it goes, the
	 * objects the record lists and any it does not. */
	if (!rc)
		rc = repo_remove_folder(r, b->prefix, &removed);
	if (!rc)
		rc = fault_point("delete-objects");
	if (!rc)
		rc = repo_forget(r, b->id);
	return rc;
}

int repo_prune_backup(struct repo *r, const char *id, struct repo_prune_result *res)
{
	const char *here = repo_location(r);
	struct catalog_backup *b = NULL;
	struct storage_info info;
	char key[STORAGE_KEY_MAX + 1];
	int rc;

	memset(res, 0, sizeof(*res));
	rc = catalog_backup_get(r->cat, id, &b);
	if (rc)
		return rc;
	for (size_t i = 0; i < b->nobjects; i++)
		res->stored_bytes += b->objects[i].stored_bytes;
	res->finished = strv_has(&b->deleting, here);
	if (b->status != CATALOG_COMPLETE || (!res->finished && !strv_has(&b->locations, here))) {
		rc = error_set(CF_ERR_INTERNAL, "backup %s is not a complete backup in %s", id,
		               here);
		goto out;
	}
	if (!res->finished) {
		/* Object lock: a locked manifest is not deleted, nor anything else
		 * of the backup (its objects were written before it and are locked
		 * as long). Compared with the real clock, as the storage does. */
		rc = repo_manifest_key(b->prefix, key, sizeof(key));
		if (!rc)
			rc = storage_head(r->st, key, &info);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = 0;
		} else if (!rc && info.retain_until_ms > time_real_ms()) {
			res->locked_until_ms = info.retain_until_ms;
			goto out;
		}
		/* The mark first: the copy moves from locations to deleting, so
		 * from here on it is not a backup here for anyone (list, restore,
		 * replicate), and a prune killed at any later point is finished by
		 * the next one. */
		strv_remove(&b->locations, here);
		if (!rc)
			rc = strv_add(&b->deleting, here);
		if (!rc)
			rc = catalog_backup_put(r->cat, b);
		if (!rc)
			rc = fault_point("delete-marked");
	}
	if (!rc)
		rc = repo_delete_backup(r, b);
out:
	catalog_backup_free(b);
	return rc;
}

struct repo_deleting {
	const char *here;
	struct strv ids;
};

static int repo_deleting_cb(void *ctx, const struct catalog_backup *b)
{
	struct repo_deleting *d = ctx;

	return strv_has(&b->deleting, d->here) ? strv_add(&d->ids, b->id) : 0;
}

int repo_finish_deleting(struct repo *r, unsigned *finished)
{
	struct repo_deleting d = {repo_location(r), {NULL, 0, 0}};
	int rc = catalog_backup_list_at(r->cat, d.here, repo_deleting_cb, &d);

	*finished = 0;
	for (size_t i = 0; !rc && i < d.ids.n; i++) {
		struct repo_prune_result res;

		rc = repo_prune_backup(r, d.ids.v[i], &res);
		if (!rc) {
			log_info("finished deleting backup %s from %s (an earlier prune was "
			         "interrupted)",
			         d.ids.v[i], d.here);
			(*finished)++;
		}
	}
	strv_free(&d.ids);
	return rc;
}

/* Records as complete the backup of record b, whose manifest is stored:
 * the manifest's objects and digests, this host's own fields kept. */
static int repo_repair_record(struct repo *r, const struct catalog_backup *b)
{
	struct catalog_backup *man = NULL;
	char key[STORAGE_KEY_MAX + 1];
	int rc = repo_manifest_key(b->prefix, key, sizeof(key));

	if (!rc)
		rc = repo_read_manifest(r, key, &man);
	if (!rc && (strcmp(man->id, b->id) || strcmp(man->source, b->source)))
		rc = error_set(CF_ERR_INTEGRITY, "manifest %s names another backup (%s)", key,
		               man->id);
	for (size_t i = 0; !rc && i < b->locations.n; i++)
		rc = strv_add_new(&man->locations, b->locations.v[i]);
	if (!rc)
		rc = catalog_backup_put(r->cat, man);
	if (!rc)
		log_warn("backup %s had stored its manifest when process %d ended; recorded it "
		         "complete",
		         b->id, b->pid);
	catalog_backup_free(man);
	return rc;
}

struct repo_reap {
	const char *location;
	char host[256];
	struct strv ids;
};

static int repo_reap_cb(void *ctx, const struct catalog_backup *b)
{
	struct repo_reap *rr = ctx;

	if (b->status != CATALOG_RUNNING || !b->host || strcmp(b->host, rr->host) != 0 ||
	    !repo_record_at(b, rr->location))
		return 0;
	/* kill(pid, 0) fails with ESRCH only when no such process exists. */
	if (b->pid > 0 && (kill(b->pid, 0) == 0 || errno != ESRCH))
		return 0;
	return strv_add(&rr->ids, b->id);
}

/* Marks dead run b failed after discarding what it wrote, or records it
 * complete when its manifest is stored. */
static int repo_reap_one(struct repo *r, struct catalog_backup *b, unsigned *reaped)
{
	char msg[128];
	int complete = 0, rc;

	/* The manifest is the commit point: a run that stored it is a
	 * complete backup whatever its record says (killed before the record
	 * was updated), and its record is repaired, not deleted. */
	rc = repo_discard_run(r, b, &complete);
	if (!rc && complete) {
		/* A manifest this host does not believe (damaged, signed by
		 * another key) is neither recorded nor deleted: the record stays
		 * running and backups go on. */
		if (repo_repair_record(r, b))
			log_warn("cannot record backup %s as complete: %s", b->id, error_message());
		error_clear();
		return 0;
	}
	if (rc)
		return rc;
	snprintf(msg, sizeof(msg), "interrupted: process %d ended before the backup completed",
	         b->pid);
	free(b->error);
	b->error = strdup(msg);
	b->status = CATALOG_FAILED;
	if (!b->finished_ms)
		b->finished_ms = time_now_ms();
	rc = catalog_backup_put(r->cat, b);
	if (!rc) {
		log_info("marked interrupted backup %s as failed and removed its objects", b->id);
		(*reaped)++;
	}
	return rc;
}

int repo_reap_dead_runs(struct repo *r, unsigned *reaped)
{
	struct repo_reap rr;
	int rc;

	memset(&rr, 0, sizeof(rr));
	rr.location = repo_location(r);
	*reaped = 0;
	if (gethostname(rr.host, sizeof(rr.host)) != 0)
		snprintf(rr.host, sizeof(rr.host), "unknown");
	rr.host[sizeof(rr.host) - 1] = '\0';
	rc = catalog_backup_list_running(r->cat, repo_reap_cb, &rr);
	for (size_t i = 0; !rc && i < rr.ids.n; i++) {
		struct catalog_backup *b = NULL;

		rc = catalog_backup_get(r->cat, rr.ids.v[i], &b);
		if (!rc)
			rc = repo_reap_one(r, b, reaped);
		catalog_backup_free(b);
	}
	strv_free(&rr.ids);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Listings and housekeeping                                                  */
/* ------------------------------------------------------------------------ */

struct repo_manifests {
	repo_manifest_cb cb;
	void *ctx;
};

static int repo_manifests_cb(void *ctx, const char *key, const struct storage_info *info)
{
	struct repo_manifests *m = ctx;
	char id[BACKUP_ID_LEN + 1];
	size_t plen;

	(void)info;
	if (!repo_key_id(key, id, &plen) || strcmp(key + plen, REPO_MANIFEST_NAME))
		return 0;
	return m->cb(m->ctx, key, id);
}

int repo_list_manifests(struct repo *r, repo_manifest_cb cb, void *ctx)
{
	struct repo_manifests m = {cb, ctx};

	return storage_list(r->st, "", repo_manifests_cb, &m);
}

/* One backup folder seen while listing. */
struct cleanup_folder {
	char *prefix;
	int has_manifest;
	int64_t newest_ms;
};

struct cleanup_list {
	struct cleanup_folder *f;
	size_t n;
};

static int repo_cleanup_list_cb(void *ctx, const char *key, const struct storage_info *info)
{
	struct cleanup_list *c = ctx;
	char id[BACKUP_ID_LEN + 1];
	size_t plen;

	if (!repo_key_id(key, id, &plen))
		return 0;
	if (!c->n || strlen(c->f[c->n - 1].prefix) != plen ||
	    strncmp(c->f[c->n - 1].prefix, key, plen) != 0) {
		struct cleanup_folder *f = realloc(c->f, (c->n + 1) * sizeof(*f));

		if (!f)
			return error_set(CF_ERR_NOMEM, "out of memory");
		c->f = f;
		memset(&c->f[c->n], 0, sizeof(c->f[c->n]));
		c->f[c->n].prefix = strndup(key, plen);
		if (!c->f[c->n].prefix)
			return error_set(CF_ERR_NOMEM, "out of memory");
		c->n++;
	}
	if (!strcmp(key + plen, REPO_MANIFEST_NAME))
		c->f[c->n - 1].has_manifest = 1;
	if (info->mtime_ms > c->f[c->n - 1].newest_ms)
		c->f[c->n - 1].newest_ms = info->mtime_ms;
	return 0;
}

/* Removes folder f (no manifest when listed) if rule 4 allows. */
static int repo_cleanup_folder(struct repo *r, const struct cleanup_folder *f, int64_t older_ms,
                               int64_t now, unsigned *folders)
{
	struct catalog_backup *b = NULL;
	char id[BACKUP_ID_LEN + 1];
	unsigned removed = 0;
	int known_dead = 0, rc;

	memcpy(id, strchr(f->prefix, '/') + 1, BACKUP_ID_LEN);
	id[BACKUP_ID_LEN] = '\0';
	if (catalog_backup_get(r->cat, id, &b) == 0) {
		/* A run still going on this host keeps its objects whatever
		 * their age, and one that completed since the listing is a
		 * backup. */
		known_dead = b->status == CATALOG_FAILED;
		catalog_backup_free(b);
		if (!known_dead)
			return 0;
	}
	error_clear();
	if (!known_dead && now - f->newest_ms < older_ms)
		return 0;
	rc = repo_remove_folder(r, f->prefix, &removed);
	if (rc == CF_ERR_EXISTS) {
		log_info("kept %s: it completed while cleanup ran", f->prefix);
		error_clear();
		return 0;
	}
	if (!rc) {
		log_info("removed incomplete backup %s", f->prefix);
		(*folders)++;
	}
	return rc;
}

int repo_cleanup(struct repo *r, int64_t older_ms, struct repo_cleanup_result *res)
{
	struct cleanup_list c = {NULL, 0};
	int64_t now = time_real_ms();
	int rc;

	memset(res, 0, sizeof(*res));
	rc = repo_finish_deleting(r, &res->deleted);
	if (!rc)
		rc = storage_cleanup(r->st, older_ms, now, &res->temporary);
	if (!rc)
		rc = storage_list(r->st, "", repo_cleanup_list_cb, &c);
	if (!rc)
		rc = fault_point("cleanup-listed");
	for (size_t i = 0; !rc && i < c.n; i++)
		if (!c.f[i].has_manifest)
			rc = repo_cleanup_folder(r, &c.f[i], older_ms, now, &res->folders);
	for (size_t i = 0; i < c.n; i++)
		free(c.f[i].prefix);
	free(c.f);
	return rc;
}

int repo_housekeep(struct repo *r, int64_t orphan_ms, unsigned *removed)
{
	char name[HASH_SHA256_HEX_LEN + 16], hex[HASH_SHA256_HEX_LEN + 1];
	int64_t last = 0, now = time_real_ms();
	int rc;

	*removed = 0;
	/* Keyed by a digest: a posix path can be longer than a catalog key. */
	rc = hash_sha256_hex(repo_location(r), strlen(repo_location(r)), hex);
	if (rc)
		return rc;
	snprintf(name, sizeof(name), "cleaned:%s", hex);
	rc = catalog_meta_get_i64(r->cat, name, &last);
	if (rc && rc != CF_ERR_NOTFOUND)
		return rc;
	/* A clock set back makes last lie in the future: clean then too. */
	if (!rc && last <= now && now - last < orphan_ms)
		return 0;
	rc = storage_cleanup(r->st, orphan_ms, now, removed);
	if (!rc)
		rc = catalog_meta_set_i64(r->cat, name, now);
	return rc;
}
