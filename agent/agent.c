/*
 * agent: what the commands share: opening the repository, the catalog, the
 * trust and the identities from the configuration, signal handling and the
 * mapping of errors to exit codes. Finding, settling and deleting backups is
 * the repository layer's (repo/repo.h).
 */
#include "agent/agent.h"
#include "agent/proc.h"

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

void agent_backup_sizes(const struct catalog_backup *b, uint64_t *raw, uint64_t *stored)
{
	*raw = *stored = 0;
	for (size_t i = 0; i < b->nobjects; i++) {
		*raw += b->objects[i].raw_bytes;
		*stored += b->objects[i].stored_bytes;
	}
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
	case CF_ERR_EXISTS:
		return 9;
	case CF_ERR_INTERRUPTED:
		return 130;
	default:
		return 1;
	}
}

/* The storage options of cfg's [repository]. */
static int agent_storage_options(const struct config *cfg, struct storage_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->type = cfg->repo_type ? cfg->repo_type : "posix";
	opts->posix.path = cfg->repo_path;
	opts->s3 = cfg->s3;
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

int agent_open_repo(const struct config *cfg, struct catalog *cat, const struct repo_trust *trust,
                    struct repo **out)
{
	struct storage_options opts;
	int rc = agent_storage_options(cfg, &opts);

	return rc ? rc : repo_open("primary", &opts, cat, trust, out);
}

int agent_find_backup(const struct config *cfg, struct repo *r, const char *id,
                      const char *source, struct catalog_backup **out)
{
	(void)source;
	char **names = calloc(cfg->nsources + 1, sizeof(*names));
	int rc;

	if (!names)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < cfg->nsources; i++)
		names[i] = cfg->sources[i].name;
	rc = repo_find_backup(r, id, names, cfg->nsources, out);
	free(names);
	return rc;
}

int agent_reap_stale_runs(struct repo *r, unsigned *reaped)
{
	proc_temp_reap();
	return repo_reap_dead_runs(r, reaped);
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

int agent_trust_load(const struct config *cfg, int allow_unsigned, struct repo_trust *t)
{
	struct sign_key *own = NULL;
	char path[4096];
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->allow_unsigned = allow_unsigned;
	for (size_t i = 0; !rc && i < cfg->trusted_signers.n; i++)
		rc = strv_add(&t->keys, cfg->trusted_signers.v[i]);
	agent_signing_key_path(cfg, path, sizeof(path));
	if (!rc) {
		rc = sign_key_load(path, 0, &own);
		if (rc == CF_ERR_NOTFOUND) {
			error_clear();
			rc = 0;
		} else if (!rc) {
			rc = strv_add(&t->keys, sign_key_public(own));
		}
	}
	sign_key_free(own);
	if (rc)
		repo_trust_free(t);
	return rc;
}
