/*
 * agent: what the commands share: opening the repository, the catalog and
 * the identities from the configuration, finding a backup, reaping runs that
 * died, signal handling and the mapping of errors to exit codes.
 */
#include "agent/agent.h"
#include "agent/proc.h"
#include "agent/backup_run.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void agent_signal_handler(int sig)
{
	cancel_set(sig);
}

void agent_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = agent_signal_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A closed pipe (restore --stdout | head) is an error return, not a kill. */
	signal(SIGPIPE, SIG_IGN);
}

int agent_signals_caught(void)
{
	return cancel_requested();
}

int agent_fault(const char *point)
{
	const char *spec = getenv("COFFER_FAULT");
	size_t n = strlen(point);

	if (!spec)
		return 0;
	for (const char *p = strstr(spec, point); p; p = strstr(p + 1, point)) {
		if ((p != spec && p[-1] != ',') || p[n] != ':')
			continue;
		if (!strncmp(p + n + 1, "kill", 4))
			kill(getpid(), SIGKILL);
		if (!strncmp(p + n + 1, "pause", 5))
			sleep(3);
		if (!strncmp(p + n + 1, "fail", 4))
			return error_set(CF_ERR_IO, "injected fault at %s (COFFER_FAULT)", point);
	}
	return 0;
}

const char *agent_status_label(const struct catalog_backup *b)
{
	if (b->status == CATALOG_COMPLETE && b->missing_count)
		return "partial";
	return catalog_status_name(b->status);
}

int agent_exit_code(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case CF_ERR_USAGE:
	case CF_ERR_CONFIG:
		return 2;
	case CF_ERR_NOTFOUND:
		return 3;
	case CF_ERR_KEY:
	case CF_ERR_AGE_NOMATCH:
	case CF_ERR_AGE_HEADER:
	case CF_ERR_AGE_HMAC:
	case CF_ERR_AGE_PAYLOAD:
	case CF_ERR_INTEGRITY:
	case CF_ERR_FORMAT:
	case CF_ERR_COMPRESS:
		return 4;
	case CF_ERR_SOURCE:
	case CF_ERR_TARGET:
		return 5;
	case CF_ERR_STORAGE:
	case CF_ERR_IO:
	case CF_ERR_NOSPACE:
	case CF_ERR_NETWORK:
	case CF_ERR_AUTH:
		return 6;
	case CF_ERR_CATALOG:
	case CF_ERR_CATALOG_DAMAGED:
		return 7;
	case CF_ERR_PARTIAL:
		return 8;
	case CF_ERR_INTERRUPTED:
		return 130;
	default:
		return 1;
	}
}

/* The storage options of cfg's [repository]. */
static int agent_storage_options(const struct config *cfg, struct storage_options *opts)
{
	*opts = cfg->s3;
	opts->type = cfg->repo_type ? cfg->repo_type : "posix";
	opts->path = cfg->repo_path;
	if (!strcmp(opts->type, "posix") && !cfg->repo_path)
		return error_set(CF_ERR_CONFIG,
		                 "%s: no repository configured (expected [repository] path)",
		                 cfg->file);
	return 0;
}

int agent_open_storage(const struct config *cfg, struct storage **out)
{
	struct storage_options opts;
	int rc = agent_storage_options(cfg, &opts);

	return rc ? rc : storage_open(&opts, out);
}

int agent_repo_location(const struct config *cfg, char **out)
{
	struct storage_options opts;
	int rc = agent_storage_options(cfg, &opts);

	return rc ? rc : storage_location(&opts, out);
}

int agent_record_here(const struct catalog_backup *b, const char *location)
{
	/* A record without locations predates them: it cannot be told apart. */
	if (!b->nlocations)
		return 1;
	for (size_t i = 0; i < b->nlocations; i++)
		if (!strcmp(b->locations[i], location))
			return 1;
	return 0;
}

int agent_open_catalog(const struct config *cfg, struct catalog **out)
{
	return catalog_open(cfg->catalog_path, out);
}

int agent_load_identities(const struct config *cfg, const char *override,
                          struct age_identities **out)
{
	const char *path = override ? override : cfg->identity;
	struct age_identities *ids = NULL;
	int rc;

	if (!path)
		return error_set(
		    CF_ERR_CONFIG,
		    "no identity to decrypt with (give --identity FILE or set [encryption] "
		    "identity in %s)",
		    cfg->file);
	rc = age_identities_new(&ids);
	if (!rc)
		rc = age_identities_load_file(ids, path);
	if (!rc && age_identities_count(ids) == 0)
		rc = error_set(CF_ERR_KEY, "identity file %s holds no AGE-SECRET-KEY-1 line", path);
	if (rc) {
		age_identities_free(ids);
		return rc;
	}
	*out = ids;
	return 0;
}

struct agent_reap {
	struct catalog *cat;
	struct storage *st;
	const char *location;
	char host[256];
	char **ids;
	size_t nids;
};

static int agent_reap_cb(void *ctx, const struct catalog_backup *b)
{
	struct agent_reap *r = ctx;

	if (b->status != CATALOG_RUNNING || !b->host || strcmp(b->host, r->host) != 0 ||
	    !agent_record_here(b, r->location))
		return 0;
	/* kill(pid, 0) fails with ESRCH only when no such process exists. */
	if (b->pid > 0 && (kill(b->pid, 0) == 0 || errno != ESRCH))
		return 0;
	return catalog_strv_add(&r->ids, &r->nids, b->id);
}

/* Records as complete the backup of record b, whose manifest is stored:
 * the manifest's objects and digests, this host's own fields kept. */
static int agent_repair_record(struct catalog *cat, struct storage *st,
                               const struct agent_trust *trust, const struct catalog_backup *b)
{
	struct catalog_backup *man = NULL;
	char key[STORAGE_KEY_MAX + 1];
	int rc;

	snprintf(key, sizeof(key), "%s%s", b->prefix, MANIFEST_NAME);
	rc = agent_read_manifest(st, key, trust, &man);
	if (!rc && (strcmp(man->id, b->id) || strcmp(man->source, b->source)))
		rc = error_set(CF_ERR_INTEGRITY, "manifest %s names another backup (%s)", key,
		               man->id);
	for (size_t i = 0; !rc && i < b->nlocations; i++)
		rc = catalog_strv_add_new(&man->locations, &man->nlocations, b->locations[i]);
	if (!rc)
		rc = catalog_backup_put(cat, man);
	if (!rc)
		log_warn("backup %s had stored its manifest when process %d ended; recorded it "
		         "complete",
		         b->id, b->pid);
	catalog_backup_free(man);
	return rc;
}

int agent_reap_stale_runs(struct catalog *cat, struct storage *st, const struct agent_trust *trust,
                          unsigned *reaped)
{
	struct agent_reap r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.location = storage_describe(st);
	*reaped = 0;
	proc_temp_reap();
	if (gethostname(r.host, sizeof(r.host)) != 0)
		snprintf(r.host, sizeof(r.host), "unknown");
	r.host[sizeof(r.host) - 1] = '\0';
	rc = catalog_backup_list(cat, NULL, agent_reap_cb, &r);
	for (size_t i = 0; !rc && i < r.nids; i++) {
		struct catalog_backup *b = NULL;
		char msg[128];
		int complete = 0;

		rc = catalog_backup_get(cat, r.ids[i], &b);
		if (rc)
			break;
		/* The manifest is the commit point: a run that stored it is a
		 * complete backup whatever its record says (killed before the
		 * record was updated), and its record is repaired, not deleted. */
		rc = backup_run_discard(st, b, &complete);
		if (!rc && complete) {
			/* A manifest this host does not believe (damaged, signed by
			 * another key) is neither recorded nor deleted: the record
			 * stays running and backups go on. */
			if (agent_repair_record(cat, st, trust, b))
				log_warn("cannot record backup %s as complete: %s", b->id,
				         error_message());
			error_clear();
		} else if (!rc) {
			snprintf(msg, sizeof(msg),
			         "interrupted: process %d ended before the backup completed",
			         b->pid);
			free(b->error);
			b->error = strdup(msg);
			b->status = CATALOG_FAILED;
			if (!b->finished_ms)
				b->finished_ms = time_now_ms();
			rc = catalog_backup_put(cat, b);
			if (!rc) {
				log_info("marked interrupted backup %s as failed and removed its "
				         "objects",
				         b->id);
				(*reaped)++;
			}
		}
		catalog_backup_free(b);
	}
	for (size_t i = 0; i < r.nids; i++)
		free(r.ids[i]);
	free(r.ids);
	return rc;
}

struct agent_find {
	const char *suffix;
	char *key;
};

static int agent_find_cb(void *ctx, const char *key, const struct storage_info *info)
{
	struct agent_find *f = ctx;
	size_t kl = strlen(key), sl = strlen(f->suffix);

	(void)info;
	if (kl > sl && !strcmp(key + kl - sl, f->suffix) && key[kl - sl - 1] != '/') {
		f->key = strdup(key);
		return f->key ? 1 : error_set(CF_ERR_NOMEM, "out of memory");
	}
	return 0;
}

void agent_signing_key_path(const struct config *cfg, char *out, size_t size)
{
	char dir[4096];
	size_t n;

	if (cfg->signing_key) {
		snprintf(out, size, "%s", cfg->signing_key);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", cfg->catalog_path);
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	snprintf(out, size, "%s/signing.key", dirname(dir));
}

int agent_trust_load(const struct config *cfg, int allow_unsigned, struct agent_trust *t)
{
	struct sign_key *own = NULL;
	char path[4096];
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->allow_unsigned = allow_unsigned;
	for (size_t i = 0; !rc && i < cfg->ntrusted_signers; i++)
		rc = catalog_strv_add(&t->keys, &t->nkeys, cfg->trusted_signers[i]);
	agent_signing_key_path(cfg, path, sizeof(path));
	if (!rc) {
		rc = sign_key_load(path, 0, &own);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = 0;
		} else if (!rc) {
			rc = catalog_strv_add(&t->keys, &t->nkeys, sign_key_public(own));
		}
	}
	sign_key_free(own);
	if (rc)
		agent_trust_free(t);
	return rc;
}

void agent_trust_free(struct agent_trust *t)
{
	for (size_t i = 0; i < t->nkeys; i++)
		free(t->keys[i]);
	free(t->keys);
	t->keys = NULL;
	t->nkeys = 0;
}

/* Whether a manifest's signature (signer NULL: none) is one this host
 * believes. */
static int agent_trust_check(const struct agent_trust *t, const char *key, const char *signer)
{
	for (size_t i = 0; signer && i < t->nkeys; i++)
		if (!strcmp(t->keys[i], signer))
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

int agent_read_manifest(struct storage *st, const char *key, const struct agent_trust *trust,
                        struct catalog_backup **out)
{
	size_t kl = strlen(key), ml = strlen(MANIFEST_NAME);
	char *where = NULL, *signer = NULL;
	struct buf b;
	int rc;

	if (kl < ml || strcmp(key + kl - ml, MANIFEST_NAME))
		return error_set(CF_ERR_INTERNAL, "%s is not a manifest key", key);
	rc = storage_read_all(st, key, 16 * 1024 * 1024, &b);
	if (rc)
		return rc;
	rc = catalog_manifest_verify((char *)b.data, b.len, &signer);
	if (rc == CF_ERR_INTEGRITY && trust->allow_unsigned) {
		/* Removing a signature is as easy as breaking one: --trust-unsigned
		 * believes both, and says so. */
		log_warn("manifest %s: %s; trusted because of --trust-unsigned", key,
		         error_message());
		error_clear();
		rc = 0;
	} else if (rc == CF_ERR_FORMAT || rc == CF_ERR_INTEGRITY) {
		rc = error_set(CF_ERR_INTEGRITY, "manifest %s: %s", key, error_message());
	} else if (!rc) {
		rc = agent_trust_check(trust, key, signer);
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

/* The catalog's record holds the digests the backup run computed itself: a
 * manifest that says otherwise (another object, size or digest, an object
 * more or less) was changed in the repository. */
static int agent_manifest_matches(const struct catalog_backup *rec,
                                  const struct catalog_backup *man)
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

int agent_find_backup(struct catalog *cat, struct storage *st, const struct agent_trust *trust,
                      const char *id, struct catalog_backup **out)
{
	struct catalog_backup *rec = NULL, *man = NULL;
	struct agent_find f = {0};
	char suffix[BACKUP_ID_LEN + 32];
	int rc;

	if (!backup_id_valid(id))
		return error_set(CF_ERR_NOTFOUND, "'%s' is not a backup id (see 'coffer list')",
		                 id);
	rc = catalog_backup_get(cat, id, &rec);
	if (rc && rc != CF_ERR_NOTFOUND)
		return rc;
	if (rec && !agent_record_here(rec, storage_describe(st))) {
		rc = error_set(CF_ERR_NOTFOUND,
		               "backup %s is in %s, not in this configuration's repository %s (the "
		               "catalog is shared); use the configuration of that repository",
		               id, rec->locations[0], storage_describe(st));
		catalog_backup_free(rec);
		return rc;
	}
	if (rec && rec->status != CATALOG_COMPLETE) {
		rc = error_set(CF_ERR_NOTFOUND, "backup %s is not complete (%s%s%s)", id,
		               catalog_status_name(rec->status), rec->error ? ": " : "",
		               rec->error ? rec->error : "");
		catalog_backup_free(rec);
		return rc;
	}
	if (rec) {
		struct buf key;

		buf_init(&key, 4096);
		rc = buf_printf(&key, "%s%s", rec->prefix, MANIFEST_NAME);
		if (!rc)
			rc = agent_read_manifest(st, (char *)key.data, trust, &man);
		if (rc == CF_ERR_NOTFOUND)
			rc = error_set(
			    CF_ERR_INTEGRITY,
			    "backup %s has no manifest in %s any more, so it is not a complete "
			    "backup there (run 'coffer catalog rebuild' to forget it)",
			    id, storage_describe(st));
		if (!rc)
			rc = agent_manifest_matches(rec, man);
		buf_free(&key);
		catalog_backup_free(rec);
	} else {
		/* Not in this host's catalog: look for its manifest in the repository. */
		snprintf(suffix, sizeof(suffix), "/%s/%s", id, MANIFEST_NAME);
		f.suffix = suffix;
		rc = storage_list(st, "", agent_find_cb, &f);
		if (rc == 1) {
			rc = agent_read_manifest(st, f.key, trust, &man);
			if (!rc)
				log_warn("backup %s is not in this host's catalog: trusting the "
				         "manifest "
				         "in %s as it is",
				         id, storage_describe(st));
		} else if (!rc)
			rc = error_set(CF_ERR_NOTFOUND, "no backup %s in the catalog or in %s", id,
			               storage_describe(st));
		free(f.key);
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
