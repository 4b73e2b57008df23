/*
 * agent: what the commands share: opening the repository, the catalog, the
 * trust and the identities from the configuration, signal handling and the
 * mapping of errors to exit codes. Finding, settling and deleting backups is
 * the repository layer's (repo/repo.h).
 */
#include "agent/agent.h"
#include "agent/proc.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int agent_backup_json(const struct catalog_backup *b, int flags, char **out)
{
	json_t *obj;
	char *text = NULL;
	uint64_t raw, stored;
	int rc = catalog_backup_to_json(b, 0, &text);

	*out = NULL;
	if (rc)
		return rc;
	obj = json_loads(text, 0, NULL);
	free(text);
	if (!obj)
		return error_set(CF_ERR_INTERNAL, "cannot re-read the record of %s", b->id);
	/* Flat size totals and the partial flag make the document easy to use
	 * from jq and scripts. */
	agent_backup_sizes(b, &raw, &stored);
	if (json_object_set_new(obj, "raw_bytes", json_integer((json_int_t)raw)) ||
	    json_object_set_new(obj, "stored_bytes", json_integer((json_int_t)stored)) ||
	    json_object_set_new(obj, "partial", json_boolean(b->missing_count > 0)))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	if (!rc)
		text = json_dumps(
		    obj, JSON_SORT_KEYS | JSON_REAL_PRECISION(17) |
		             (flags & CATALOG_JSON_PRETTY ? JSON_INDENT(2) : JSON_COMPACT));
	json_decref(obj);
	if (!rc && !text)
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	*out = text;
	return rc;
}

int agent_print_json(json_t *doc)
{
	char *text =
	    doc ? json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;

	json_decref(doc);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	printf("%s\n", text);
	free(text);
	return 0;
}

int agent_option_error(int opt, char *const *argv, const char *usage)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (opt == ':')
		return error_set(CF_ERR_USAGE, "option %s needs a value (%s)", arg, usage);
	if (optopt && arg[0] == '-' && arg[1] != '-')
		return error_set(CF_ERR_USAGE, "unknown option -%c (%s)", optopt, usage);
	return error_set(CF_ERR_USAGE, "unknown option %s (%s)", arg, usage);
}

int agent_exit_code(int rc)
{
	if (rc > 0)
		return rc; /* a command's own exit status (wal-fetch) */
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
	case CF_ERR_BUSY:
		return 10;
	case CF_ERR_UNHEALTHY:
		return 11;
	case CF_ERR_INTERRUPTED:
		return 130;
	default:
		return 1;
	}
}

/* The storage options of target i of cfg. */
static int agent_storage_options(const struct config *cfg, size_t i, struct storage_options *opts)
{
	const struct config_target *t = &cfg->targets[i];

	memset(opts, 0, sizeof(*opts));
	opts->type = t->type ? t->type : "posix";
	opts->posix.path = t->path;
	opts->s3 = t->s3;
	if (!strcmp(opts->type, "posix") && !t->path)
		return error_set(CF_ERR_CONFIG,
		                 "%s: no repository configured (expected [repository] path)",
		                 cfg->file);
	return 0;
}

int agent_repo_location(const struct config *cfg, char **out)
{
	return agent_target_location(cfg, 0, out);
}

int agent_target_location(const struct config *cfg, size_t i, char **out)
{
	struct storage_options opts;
	int rc = agent_storage_options(cfg, i, &opts);

	return rc ? rc : storage_location(&opts, out);
}

int agent_target_check(const struct config *cfg, const char *name)
{
	for (size_t t = 0; t < cfg->ntargets; t++)
		if (!strcmp(cfg->targets[t].name, name))
			return 0;
	return error_set(CF_ERR_USAGE,
	                 "--target %s: no repository of that name in %s (primary, or the NAME of "
	                 "a [repository NAME])",
	                 name, cfg->file);
}

int agent_targets_init(struct agent_targets *t, const struct config *cfg)
{
	size_t n = cfg->ntargets;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->cfg = cfg;
	if (!(t->locs = calloc(n, sizeof(*t->locs))) ||
	    !(t->repos = calloc(n, sizeof(*t->repos))) ||
	    !(t->open_rc = calloc(n, sizeof(*t->open_rc))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++)
		rc = agent_target_location(cfg, i, &t->locs[i]);
	return rc;
}

int agent_targets_repo(struct agent_targets *t, size_t i, struct repo **out, int *again)
{
	static const struct repo_trust no_trust = {{NULL, 0, 0}, 0};
	const char *name = t->cfg->targets[i].name;
	char why[512];

	if (again)
		*again = t->open_rc[i] != 0;
	if (t->open_rc[i])
		return error_set(t->open_rc[i], "cannot open repository %s (see above)", name);
	if (!t->repos[i] && agent_open_target(t->cfg, i, t->cat, &no_trust, &t->repos[i])) {
		snprintf(why, sizeof(why), "%s", error_message());
		t->open_rc[i] =
		    error_set(CF_ERR_TARGET, "cannot open repository %s: %s", name, why);
	}
	*out = t->repos[i];
	return t->open_rc[i];
}

void agent_targets_free(struct agent_targets *t)
{
	for (size_t i = 0; t->cfg && i < t->cfg->ntargets; i++) {
		if (t->locs)
			free(t->locs[i]);
		if (t->repos)
			repo_close(t->repos[i]);
	}
	free(t->locs);
	free(t->repos);
	free(t->open_rc);
	memset(t, 0, sizeof(*t));
}

int agent_fallover_ok(int rc)
{
	switch (rc) {
	case CF_ERR_STORAGE:
	case CF_ERR_NETWORK:
	case CF_ERR_AUTH:
	case CF_ERR_NOTFOUND:
	case CF_ERR_INTEGRITY:
	case CF_ERR_AGE_HEADER:
	case CF_ERR_AGE_HMAC:
	case CF_ERR_AGE_PAYLOAD:
	case CF_ERR_COMPRESS:
	case CF_ERR_FORMAT:
		return 1;
	default:
		return 0;
	}
}

int agent_open_catalog(const struct config *cfg, struct catalog **out)
{
	return catalog_open(cfg->catalog_path, out);
}

int agent_load_identities(const struct config *cfg, const char *override,
                          struct age_identities **out)
{
	const char *path = override ? override : cfg->identity;
	const char *from = override ? "--identity" : "[encryption] identity";
	struct age_identities *ids = NULL;
	struct stat st;
	int rc;

	if (!path)
		return error_set(
		    CF_ERR_CONFIG,
		    "no identity to decrypt with (give --identity FILE or set [encryption] "
		    "identity in %s)",
		    cfg->file);
	/* A folder or a file this user may not read is a key problem (exit 4)
	 * that the message names, not a storage error or a bare "bad key". */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return error_set(CF_ERR_KEY,
		                 "%s %s is a directory, not an identity file (give the file "
		                 "'coffer keygen -o FILE' wrote)",
		                 from, path);
	if (access(path, R_OK) != 0 && (errno == EACCES || errno == EPERM))
		return error_set_errno(CF_ERR_KEY, errno,
		                       "cannot read the identity file %s (%s; run coffer as a "
		                       "user who may read it)",
		                       path, from);
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
	return agent_open_target(cfg, 0, cat, trust, out);
}

int agent_open_target(const struct config *cfg, size_t i, struct catalog *cat,
                      const struct repo_trust *trust, struct repo **out)
{
	struct storage_options opts;
	int rc = agent_storage_options(cfg, i, &opts);

	return rc ? rc : repo_open(cfg->targets[i].name, &opts, cat, trust, out);
}

/* The shortest id prefix taken for an id (README "Backup IDs"). */
#define AGENT_ID_PREFIX_MIN 4
/* How many backups the error for an ambiguous prefix names. */
#define AGENT_ID_CANDIDATES 5
/* How many sources the error for an ambiguous 'latest' names. */
#define AGENT_SOURCES_NAMED 10

/* 1 if text could begin a backup id (the shape of backup_id_valid()). */
static int agent_id_prefix_valid(const char *text)
{
	static const char shape[] = "dddddddd"
	                            "Tdddddd.dddZ-xxxxxxxx";
	size_t n = strlen(text);

	if (n < AGENT_ID_PREFIX_MIN || n > BACKUP_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];

		if (shape[i] == 'd'   ? !(c >= '0' && c <= '9')
		    : shape[i] == 'x' ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
		                      : c != (unsigned char)shape[i])
			return 0;
	}
	return 1;
}

/* " of source S" or "", for messages. */
static void agent_of_source(const char *source, char *out, size_t size)
{
	snprintf(out, size, "%s%s", source ? " of source " : "", source ? source : "");
}

/* "latest": the newest complete backup of source (or of the only source
 * with one) at location. */
static int agent_resolve_latest(const struct config *cfg, struct catalog *cat, const char *location,
                                const char *source, char out[BACKUP_ID_LEN + 1])
{
	struct catalog_backup *b = NULL, *found = NULL;
	struct strv names = {0}, with = {0};
	struct buf joined;
	int rc = 0;

	buf_init(&joined, 1 << 16);

	if (source) {
		rc = catalog_backup_latest(cat, source, location, &found);
	} else {
		/* One index seek per source, then the newest of each. */
		rc = catalog_source_names(cat, &names);
		for (size_t i = 0; !rc && i < names.n; i++) {
			rc = catalog_backup_latest(cat, names.v[i], location, &b);
			if (rc == CF_ERR_NOTFOUND) {
				rc = 0;
				continue;
			}
			if (!rc)
				rc = strv_add(&with, names.v[i]);
			if (!found) {
				found = b;
				b = NULL;
			}
			catalog_backup_free(b);
			b = NULL;
		}
		for (size_t i = 0; !rc && with.n > 1 && i < with.n; i++)
			rc = i < AGENT_SOURCES_NAMED
			         ? buf_printf(&joined, "%s%s", i ? ", " : "", with.v[i])
			     : i == AGENT_SOURCES_NAMED ? buf_printf(&joined, ", ...")
			                                : 0;
		if (!rc && with.n > 1)
			rc = error_set(
			    CF_ERR_USAGE,
			    "'latest' is ambiguous: %s has backups of %zu sources (%s); add "
			    "--source S",
			    location ? location : cfg->catalog_path, with.n,
			    (const char *)joined.data);
	}
	if (rc == CF_ERR_NOTFOUND || (!rc && !found)) {
		char of[NAME_MAX_LEN + 16];

		agent_of_source(source, of, sizeof(of));
		rc = error_set(CF_ERR_NOTFOUND,
		               "no complete backup%s of %s in this host's catalog %s (on a new "
		               "host run 'coffer catalog rebuild', or give a backup id)",
		               of, location ? location : "any repository", cfg->catalog_path);
	}
	if (!rc)
		snprintf(out, BACKUP_ID_LEN + 1, "%s", found->id);
	buf_free(&joined);
	strv_free(&names);
	strv_free(&with);
	catalog_backup_free(found);
	return rc;
}

/* A unique id prefix among the catalog's records (of source). */
static int agent_resolve_prefix(const struct config *cfg, struct catalog *cat, const char *prefix,
                                const char *source, char out[BACKUP_ID_LEN + 1])
{
	struct strv ids = {0};
	struct buf list;
	char of[NAME_MAX_LEN + 16];
	size_t total = 0;
	int rc;

	agent_of_source(source, of, sizeof(of));
	rc = catalog_backup_match(cat, source, prefix, AGENT_ID_CANDIDATES, &ids, &total);
	if (!rc && total == 0)
		rc = error_set(CF_ERR_NOTFOUND,
		               "no backup%s has an id starting with %s in this host's catalog %s "
		               "(see 'coffer list'; on a new host run 'coffer catalog rebuild' or "
		               "give the whole id)",
		               of, prefix, cfg->catalog_path);
	if (!rc && total == 1)
		snprintf(out, BACKUP_ID_LEN + 1, "%s", ids.v[0]);
	if (rc || total == 1) {
		strv_free(&ids);
		return rc;
	}
	/* Name the candidates, with what tells them apart. */
	buf_init(&list, 4096);
	for (size_t i = 0; !rc && i < ids.n; i++) {
		struct catalog_backup *b = NULL;

		if (catalog_backup_get(cat, ids.v[i], &b) == 0)
			rc = buf_printf(&list, "%s%s (%s, %s)", i ? ", " : "", b->id, b->source,
			                agent_status_label(b));
		else
			rc = buf_printf(&list, "%s%s", i ? ", " : "", ids.v[i]);
		error_clear();
		catalog_backup_free(b);
	}
	if (!rc && total > ids.n)
		rc = buf_printf(&list, ", ...");
	if (!rc)
		rc = error_set(
		    CF_ERR_USAGE,
		    "backup id prefix %s is ambiguous: it matches %s%zu backups%s: %s; give "
		    "more of the id",
		    prefix, total > ids.n ? "more than " : "", ids.n, of, (const char *)list.data);
	buf_free(&list);
	strv_free(&ids);
	return rc;
}

int agent_resolve_id(const struct config *cfg, struct catalog *cat, const char *location,
                     const char *id, const char *source, char out[BACKUP_ID_LEN + 1])
{
	out[0] = '\0';
	if (source && !name_valid(source))
		return error_set(CF_ERR_USAGE, "--source %.64s is not a source name", source);
	if (!strcmp(id, "latest"))
		return agent_resolve_latest(cfg, cat, location, source, out);
	if (backup_id_valid(id)) {
		snprintf(out, BACKUP_ID_LEN + 1, "%s", id);
		return 0;
	}
	/* Not found, as any id that names no backup (README "Exit codes"). */
	if (!agent_id_prefix_valid(id))
		return error_set(CF_ERR_NOTFOUND,
		                 "'%.64s' is not a backup id (expected 'latest', an id such as "
		                 "20261122T091046.123Z-1a2b3c4d, or its first %d or more "
		                 "characters; see 'coffer list')",
		                 id, AGENT_ID_PREFIX_MIN);
	return agent_resolve_prefix(cfg, cat, id, source, out);
}

int agent_find_backup(const struct config *cfg, struct repo *r, const char *id, const char *source,
                      struct catalog_backup **out)
{
	char full[BACKUP_ID_LEN + 1];
	char **names = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	rc = agent_resolve_id(cfg, repo_catalog(r), repo_location(r), id, source, full);
	if (rc)
		return rc;
	/* A backup the catalog lacks is looked for under the source's folder
	 * (one HEAD per name) before a listing of the whole repository. */
	names = calloc(cfg->nsources + 1, sizeof(*names));
	if (!names)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (source)
		names[n++] = (char *)(uintptr_t)source;
	else
		for (; n < cfg->nsources; n++)
			names[n] = cfg->sources[n].name;
	rc = repo_find_backup(r, full, names, n, out);
	free(names);
	if (!rc && source && strcmp((*out)->source, source) != 0) {
		rc = error_set(CF_ERR_NOTFOUND, "backup %s is of source %s, not %s", full,
		               (*out)->source, source);
		catalog_backup_free(*out);
		*out = NULL;
	}
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
