/*
 * agent: the coffer executable's shared declarations: the configuration, the
 * commands, and how commands open the repository and the catalog.
 * Sources are in source/source.h, the stream pipeline in pipeline.h.
 */
#ifndef COFFER_AGENT_H
#define COFFER_AGENT_H

#include "agent/retention.h"
#include "agent/source/source.h"
#include "catalog/catalog.h"
#include "common/common.h"
#include "crypto/crypto.h"
#include "repo/repo.h"
#include "storage/storage.h"

#define CONFIG_DEFAULT_PATH "/etc/coffer/coffer.conf"
#define CATALOG_DEFAULT_PATH "/var/lib/coffer/catalog"

/* A repository a backup is written to: [repository] (named "primary") or a
 * [repository NAME] section. */
struct config_target {
	char *name; /* "primary", or NAME */
	int line;   /* its section header, 0 for a primary never configured */
	char *type; /* posix or s3 */
	char *path; /* posix: the folder, absolute */
	/* The keys of the s3 driver, passed on as storage_options; strings are
	 * owned, secret_key lives in sodium_malloc memory. */
	struct storage_s3_options s3;
	int s3_secret_line; /* where secret_key was set, for the 0600 check */
	int copy_server;    /* copy = server: replicate into it with server-side copies */
	struct retention_keys retention; /* its retention keys (over a source's) */
};

#define CONFIG_PRIMARY "primary"
#define CONFIG_MAX_TARGETS 64 /* a source's repositories are a 64-bit mask */

struct config {
	char *file; /* the file it was read from */
	/* Where backups go: targets[0] is [repository], the rest the
	 * [repository NAME] sections in file order. Every backup is written to
	 * all of them in one pass; list, restore and cleanup use the primary. */
	struct config_target *targets;
	size_t ntargets;
	size_t copies_required;          /* [repository] copies_required: how many targets must
	                                  * hold a backup for it to be complete (ntargets) */
	int64_t orphan_age_ms;           /* [repository] orphan_age: leftovers older than this
	                                  * are cleaned at the start of each backup (24h) */
	char *catalog_path;              /* [catalog] path, absolute */
	char *metrics_file;              /* [catalog] metrics_file (Prometheus textfile), or NULL */
	struct strv recipients;          /* [encryption] recipients */
	char *identity;                  /* [encryption] identity file, or NULL */
	char *signing_key;               /* [encryption] signing_key, or NULL: beside the catalog */
	struct strv trusted_signers;     /* [encryption] trusted_signers: "ed25519:..." keys */
	int identity_off_host;           /* [encryption] identity_on_host = false: `coffer
	                                  * check` fails if this user can read identity */
	int zstd_level;                  /* [compression] level, 1..19 (default 3) */
	int zstd_workers;                /* [compression] workers, 0 = single-threaded */
	struct retention_keys retention; /* [retention]: every source's defaults */
	struct {                         /* [notify]: after each source's run (notify.c) */
		char *on_success, *on_failure; /* shell commands, the result as JSON on stdin */
		char *webhook_url;             /* a JSON POST of the same */
	} notify;
	struct source *sources; /* [source NAME] sections, in file order */
	size_t nsources;
};

/*
 * Reads and checks a configuration file. Unknown sections and keys, bad values
 * and missing required keys fail with CF_ERR_CONFIG and a message
 * "FILE:LINE: what is wrong (expected ...)". A missing file is CF_ERR_NOTFOUND.
 * Relative paths in it are made absolute against the current directory.
 */
int config_load(const char *path, struct config **out);
/* A configuration with no file, for commands that need none (keygen, help). */
int config_empty(struct config **out);
void config_free(struct config *c);
/* The configured source named name, or NULL. */
struct source *config_source_find(const struct config *c, const char *name);
/* Whether backups of the source named source go to target (its
 * "repositories" lists it, or it has no such key, or it is no configured
 * source, as --stdin NAME). */
int config_source_uses(const struct config *c, const char *source, size_t target);
/* The retention policy of source in target i (retention_merge() of
 * [retention], the source's keys and the target's). */
void config_retention_policy(const struct config *c, const char *source, size_t target,
                             struct retention_policy *out);
/* How many copies a backup of source needs to be complete: copies_required,
 * or every repository the source uses when it uses fewer. */
size_t config_copies_required(const struct config *c, const char *source);
/* Global options of one invocation. */
struct cli {
	const char *config_path; /* --config or COFFER_CONFIG or the default */
	int json;                /* --json */
	int progress;            /* stderr is a terminal and --quiet not given */
	int verbose;             /* --verbose: 1 per-object info lines, 2 per-file and debug */
	int quiet;               /* --quiet: errors and the command's data only */
	const char *log_format;  /* --log-format or COFFER_LOG_FORMAT, or NULL (text) */
};

/* Opens the configured repository / catalog, with a clear error when the
 * configuration lacks them. The repository layer (repo/repo.h) does the
 * rest: finding, settling and deleting backups. */
/* Opens cfg's [repository] as the repository "primary"; cat and trust must
 * outlive it. Errors: CF_ERR_CONFIG, those of storage_open(). */
int agent_open_repo(const struct config *cfg, struct catalog *cat, const struct repo_trust *trust,
                    struct repo **out);
/* Opens target i of cfg (cfg->targets[i]) as agent_open_repo() does. */
int agent_open_target(const struct config *cfg, size_t i, struct catalog *cat,
                      const struct repo_trust *trust, struct repo **out);
/* The identity of cfg's repository as records hold it (storage_location()),
 * without opening it. *out is malloc'ed. Errors: CF_ERR_CONFIG, CF_ERR_NOMEM. */
int agent_repo_location(const struct config *cfg, char **out);
/* The same for target i of cfg. */
int agent_target_location(const struct config *cfg, size_t i, char **out);
/* --target NAME: 0 if cfg has a repository of that name, else CF_ERR_USAGE
 * naming it and the file. */
int agent_target_check(const struct config *cfg, const char *name);

/* Every configured target's location, and each repository opened at its
 * first use (for commands that visit many backups: prune, verify). */
struct agent_targets {
	const struct config *cfg;
	struct catalog *cat; /* set by the caller before the first open */
	char **locs;         /* each target's location (storage_location()) */
	struct repo **repos; /* opened, or NULL */
	int *open_rc;        /* why a target could not be opened */
};
/* Fills t->locs. Errors: CF_ERR_CONFIG, CF_ERR_NOMEM. */
int agent_targets_init(struct agent_targets *t, const struct config *cfg);
/*
 * Target i's repository, opened (without trust: no manifest is read) at the
 * first call. One that cannot be opened fails every call with CF_ERR_TARGET
 * "cannot open repository NAME: why"; *again (may be NULL) is set when an
 * earlier call already failed so (and reported it).
 */
int agent_targets_repo(struct agent_targets *t, size_t i, struct repo **out, int *again);
void agent_targets_free(struct agent_targets *t);
int agent_open_catalog(const struct config *cfg, struct catalog **out);
/* Loads the identities for restore: --identity FILE overrides [encryption]
 * identity. Errors: CF_ERR_KEY, CF_ERR_CONFIG (none given), CF_ERR_NOTFOUND. */
int agent_load_identities(const struct config *cfg, const char *override,
                          struct age_identities **out);
/*
 * What a user may type for a backup (README "Backup IDs"), resolved in the
 * catalog cat to a whole id in out: "latest" is the newest complete backup
 * of source at location (by start time; with source NULL, of the only
 * source that has one), an id prefix of 4 or more characters must match
 * exactly one record (of source, if given), a whole id is taken as it is.
 * Errors: CF_ERR_USAGE (an ambiguous prefix or 'latest': the message
 * names the candidates), CF_ERR_NOTFOUND (also text that is no id nor
 * prefix), CF_ERR_CATALOG.
 */
int agent_resolve_id(const struct config *cfg, struct catalog *cat, const char *location,
                     const char *id, const char *source, char out[BACKUP_ID_LEN + 1]);
/* agent_resolve_id(), then repo_find_backup() with the source (or cfg's
 * source names) to look under when the catalog lacks the backup. source
 * (may be NULL) restricts the search to one source: a backup of another is
 * CF_ERR_NOTFOUND. */
int agent_find_backup(const struct config *cfg, struct repo *r, const char *id, const char *source,
                      struct catalog_backup **out);
/* What dead coffer processes of this host left: private temporary files
 * (proc_temp_reap()) and running records of r (repo_reap_dead_runs()). */
int agent_reap_stale_runs(struct repo *r, unsigned *reaped);
/* The path of this host's manifest signing key: [encryption] signing_key,
 * else "signing.key" in the folder that holds the catalog folder. */
void agent_signing_key_path(const struct config *cfg, char *out, size_t size);
/* Builds the trust of cfg: [encryption] trusted_signers and this host's own
 * signing key (if it exists); allow_unsigned (--trust-unsigned) also takes
 * unsigned or foreign-signed manifests. Errors: CF_ERR_KEY (a damaged or
 * exposed own key), CF_ERR_NOMEM. */
int agent_trust_load(const struct config *cfg, int allow_unsigned, struct repo_trust *t);

/* Installs SIGINT/SIGTERM/SIGHUP handlers that call cancel_set() (see
 * common.h: cancel_requested(), cancel_check()). */
void agent_signals_install(void);

/* The exit status for an error code (see README "Exit codes"). */
/* The status a listing shows: "partial" for a complete backup that misses
 * something it was asked for, else catalog_status_name(). */
const char *agent_status_label(const struct catalog_backup *b);
/* The sums of a backup's objects' plaintext and stored sizes. */
void agent_backup_sizes(const struct catalog_backup *b, uint64_t *raw, uint64_t *stored);
/* The JSON document of a backup that `list` and `show` print: the record
 * (catalog_backup_to_json(), CATALOG_JSON_PRETTY in flags indents it) with
 * raw_bytes, stored_bytes and partial added (docs/json.md). *out is
 * malloc'ed. Errors: those of catalog_backup_to_json(), CF_ERR_NOMEM. */
int agent_backup_json(const struct catalog_backup *b, int flags, char **out);
int agent_exit_code(int rc);
/* 1 if a read that failed with rc may be tried again from another
 * repository: the copy it read could not be had or was damaged (storage,
 * network, auth, not found, integrity, age, zstd, format). A wrong
 * identity, a local problem or a usage error would fail there too. */
int agent_fallover_ok(int rc);
/* Prints doc as the command's one JSON document (sorted keys, indented,
 * then a newline) and releases it; a NULL doc is out of memory. Errors:
 * CF_ERR_NOMEM. */
struct json_t;
int agent_print_json(struct json_t *doc);
/* The one usage error of a getopt_long() loop over argv whose optstring
 * starts with ':' (opterr is 0): opt ':' is an option missing its value,
 * anything else an unknown option; both name the argument and end with the
 * command's usage. Returns CF_ERR_USAGE. */
int agent_option_error(int opt, char *const *argv, const char *usage);

/* Commands (agent/cmd/, one file each): argc/argv start at the command
 * word. Return a CF_ code. */
int cmd_backup(const struct cli *cli, int argc, char **argv);
int cmd_restore(const struct cli *cli, int argc, char **argv);
int cmd_ls(const struct cli *cli, int argc, char **argv);
int cmd_list(const struct cli *cli, int argc, char **argv);
int cmd_show(const struct cli *cli, int argc, char **argv);
int cmd_keygen(const struct cli *cli, int argc, char **argv);
int cmd_catalog(const struct cli *cli, int argc, char **argv);
int cmd_repo(const struct cli *cli, int argc, char **argv);
int cmd_replicate(const struct cli *cli, int argc, char **argv);
int cmd_prune(const struct cli *cli, int argc, char **argv);
int cmd_verify(const struct cli *cli, int argc, char **argv);
int cmd_status(const struct cli *cli, int argc, char **argv);
int cmd_check(const struct cli *cli, int argc, char **argv);
/* wal-fetch returns PostgreSQL's exit statuses (1, 126) as positive values. */
int cmd_wal_push(const struct cli *cli, int argc, char **argv);
int cmd_wal_fetch(const struct cli *cli, int argc, char **argv);

#endif
