/*
 * repo: a repository as backups see it: one storage target, the layout of
 * keys in it, and the rules for finding, settling and deleting backups.
 * It sits between storage + catalog and the agent, and is the only module
 * that knows where a backup's objects and manifest live.
 *
 * Key layout (relative to the storage's root or prefix):
 *   <source>/<id>/<object>[.tar].zst.age   a backup's objects
 *   <source>/<id>/manifest.json            its manifest, written last
 *   <source>/wal/<dir>/<walname>-<sha256>.zst.age
 *                                          WAL archiving (agent/wal.h; no
 *                                          backup id is "wal": ids start
 *                                          with a digit)
 * where <source> passes name_valid() and <id> backup_id_valid().
 * The object names come from catalog_object_key().
 *
 * Deletion rules (every delete in coffer goes through this module):
 * 1. The manifest is the commit point. A backup folder that holds one is a
 *    backup: nothing under it is deleted, whatever a record or a listing
 *    says, and the question is asked of the storage right before each
 *    delete, never answered from an earlier listing. Only
 *    repo_delete_backup() (retention, told by its caller what may go)
 *    deletes a backup, and it deletes the manifest first.
 * 2. Only a prefix of the exact shape "<source>/<id>/" is ever deleted
 *    under (never "", never a parent, never another backup's folder).
 * 3. A run this host recorded is discarded only when it is over (this
 *    process) or known dead (its pid gone, same host), and then only the
 *    objects it recorded writing (each is recorded before it is written)
 *    and the unfinished writes in its folder.
 * 4. A folder this host has no record of is removed only without a
 *    manifest and when older than the orphan age (it could be another
 *    host's run still going).
 * 5. A record or manifest read from the repository is untrusted input:
 *    manifests are believed only when signed by a trusted key (or with
 *    --trust-unsigned) and pass catalog_manifest_from_json().
 *
 * It does not read the configuration (the agent builds the options and the
 * trust) and does not print.
 */
#ifndef COFFER_REPO_H
#define COFFER_REPO_H

#include "catalog/catalog.h"
#include "common/common.h"
#include "storage/storage.h"

/* The name of every backup's manifest, in its folder. */
#define REPO_MANIFEST_NAME "manifest.json"
/* The folder name reserved under a source for WAL archiving. */
#define REPO_WAL_DIR "wal"

/* Who may sign the manifests this host believes. */
struct repo_trust {
	struct strv keys;   /* "ed25519:..." public keys */
	int allow_unsigned; /* --trust-unsigned: also unsigned or foreign-signed */
};

void repo_trust_free(struct repo_trust *t);

struct repo;

/*
 * Opens the repository name ("primary" for [repository]) with the storage
 * options opts. cat (the catalog) and trust stay owned by the caller and
 * must outlive the repository. Errors: those of storage_open().
 */
int repo_open(const char *name, const struct storage_options *opts, struct catalog *cat,
              const struct repo_trust *trust, struct repo **out);
void repo_close(struct repo *r);
const char *repo_name(const struct repo *r);
/* The repository's identity as records hold it (storage_describe()). */
const char *repo_location(const struct repo *r);
struct storage *repo_storage(const struct repo *r);
/* The catalog the repository was opened with. */
struct catalog *repo_catalog(const struct repo *r);

/* 1 if record b is of the repository at location (a record without
 * locations predates them and cannot be told apart: 1). */
int repo_record_at(const struct catalog_backup *b, const char *location);

/* The folder of a backup, "<source>/<id>/". *out is malloc'ed.
 * Errors: CF_ERR_INTERNAL (a bad source name or id), CF_ERR_NOMEM. */
int repo_backup_prefix(const char *source, const char *id, char **out);
/* 1 if prefix is exactly "<source>/<id>/" (deletion rule 2). */
int repo_prefix_valid(const char *prefix);
/* The folder of WAL file name of source (agent/wal.h):
 * "<source>/wal/<first 16 characters of name>/", or with name NULL (a
 * .history file) "<source>/wal/history/". *out is malloc'ed.
 * Errors: CF_ERR_INTERNAL (a bad source or name), CF_ERR_NOMEM. */
int repo_wal_dir(const char *source, const char *name, char **out);
/* Deletes n WAL objects of source (retention: the caller decided they are
 * older than every kept base backup needs); refuses any key outside
 * "<source>/wal/". Errors: CF_ERR_INTERNAL (a key outside it), those of
 * storage_delete_many(). */
int repo_wal_delete(struct repo *r, const char *source, const char *const *keys, size_t n);

/*
 * Reads and checks the manifest at key: its signature against the trust,
 * then its contents (an untrusted document). Errors: CF_ERR_NOTFOUND,
 * CF_ERR_INTEGRITY (unsigned or signed by a key not trusted, a bad
 * signature, malformed or inconsistent), CF_ERR_STORAGE, CF_ERR_IO,
 * CF_ERR_NOMEM.
 */
int repo_read_manifest(struct repo *r, const char *key, struct catalog_backup **out);
/* Writes the signed manifest of a finished backup to its folder. Errors:
 * CF_ERR_EXISTS, CF_ERR_FORMAT, and those of storage_write_*(). */
struct sign_key;
int repo_write_manifest(struct repo *r, const struct catalog_backup *b, const struct sign_key *k);

/*
 * Finds a complete backup by id: the catalog's record (which must be of this
 * repository, complete, with a manifest that matches it), else a manifest in
 * the repository, looked up directly under each of sources (the configured
 * source names: one HEAD each) and only then by listing the repository.
 * Errors: CF_ERR_NOTFOUND, CF_ERR_INTEGRITY, and storage errors.
 */
int repo_find_backup(struct repo *r, const char *id, char *const *sources, size_t nsources,
                     struct catalog_backup **out);

/*
 * Settles this host's running records of this repository whose process is
 * gone (through the catalog's running index: the cost does not grow with the
 * history): one whose manifest is stored is recorded complete from it (the
 * manifest is the commit point; one this host does not believe is left
 * running with a warning); the others are marked failed and what they
 * recorded writing is removed (repo_discard_run()). *reaped counts those
 * marked failed. Errors: CF_ERR_CATALOG, storage errors.
 */
int repo_reap_dead_runs(struct repo *r, unsigned *reaped);

/*
 * Removes the unfinished writes (S3 multipart uploads, posix temporary files
 * no live writer holds) in a backup's folder at once, leaving its objects:
 * what a write to this repository that failed part-way (a gateway killed
 * mid-backup) left behind, before `coffer replicate` makes that copy. Only
 * for a folder no run is writing to. *removed counts what went. Errors:
 * CF_ERR_INTERNAL (not a backup's folder), storage errors.
 */
int repo_abort_unfinished(struct repo *r, const char *prefix, unsigned *removed);
/*
 * Throws away what run record rec stored, unless it is a backup: when its
 * folder holds a manifest, nothing is deleted and *complete is set.
 * Otherwise deletes the objects rec lists and the unfinished writes in its
 * folder, and nothing else (deletion rules 1-3). Only for a run that is
 * over or known dead. Errors: CF_ERR_IO, CF_ERR_STORAGE, CF_ERR_INTERNAL (a
 * bad prefix).
 */
int repo_discard_run(struct repo *r, const struct catalog_backup *rec, int *complete);

/*
 * Deletes the objects under a backup folder without a manifest (a run this
 * host has no record of), in batches, checking before each batch that the
 * folder still has no manifest; stops with CF_ERR_EXISTS when one appears.
 * Errors: CF_ERR_EXISTS, CF_ERR_IO, CF_ERR_STORAGE, CF_ERR_INTERNAL.
 */
int repo_remove_folder(struct repo *r, const char *prefix, unsigned *removed);

/*
 * Deletes complete backup b from this repository in the crash-safe order:
 * the manifest first (from then on it is not a backup anywhere: restore,
 * rebuild and cleanup all see a folder without a manifest), then its
 * objects in batches, then this repository is dropped from the record's
 * locations (the record is deleted when none is left). A crash between the
 * steps leaves a folder without a manifest, which the next call (or `repo
 * cleanup`) finishes. For retention; the caller decides what may go.
 * Errors: CF_ERR_INTERNAL (a bad folder), CF_ERR_CATALOG, storage errors.
 */
int repo_delete_backup(struct repo *r, const struct catalog_backup *b);

/*
 * `coffer check`: proves the repository takes what backups, restores and
 * prune do. A small probe object under ".coffer-check/" (no source name
 * starts with '.') is written (with the target's object lock, so a bucket
 * without object lock refuses it), listed, read back and compared, deleted,
 * and must then be gone. Appends what it did to detail. On an object-lock
 * bucket the delete leaves the probe's locked version until its retention
 * ends, as every deletion there does.
 * Errors: the failing step's storage error, its message naming the step.
 */
int repo_probe(struct repo *r, struct buf *detail);
/* What repo_prune_backup() did. */
struct repo_prune_result {
	int64_t locked_until_ms; /* not 0: nothing deleted, locked until then */
	int finished;            /* an earlier prune had begun it */
	uint64_t stored_bytes;   /* the backup's stored bytes, as recorded */
};
/*
 * Retention's delete of complete backup id from this repository, crash-safe:
 * when its manifest is under object lock (retain-until in the future)
 * nothing changes and res->locked_until_ms says until when; otherwise the
 * record is marked deleting here (b->deleting: from then on it is not a
 * backup here), then repo_delete_backup(). A record already marked is
 * finished the same way. Never for a running or failed record
 * (CF_ERR_INTERNAL). Errors: CF_ERR_NOTFOUND (no record), CF_ERR_CATALOG,
 * storage errors.
 */
int repo_prune_backup(struct repo *r, const char *id, struct repo_prune_result *res);
/* Finishes the deletions an interrupted prune began in this repository
 * (records marked deleting here); *finished counts them. A walk of the
 * repository's records: for prune and `repo cleanup`. */
int repo_finish_deleting(struct repo *r, unsigned *finished);
/* Drops this repository from the locations (and the deleting and pending
 * lists) of record id, deleting the record when no location is left (or it
 * had none: a record from before locations). A missing record succeeds.
 * Errors: CF_ERR_CATALOG, ... */
int repo_forget(struct repo *r, const char *id);

/* Called with the key of each manifest in the repository, in key order. */
typedef int (*repo_manifest_cb)(void *ctx, const char *key, const char *id);
/* Lists every backup folder's manifest (a whole listing: for rebuild). */
int repo_list_manifests(struct repo *r, repo_manifest_cb cb, void *ctx);

/* What repo_cleanup() removed. */
struct repo_cleanup_result {
	unsigned deleted;   /* deletions an interrupted prune began, finished */
	unsigned temporary; /* unfinished writes (temporary files, uploads) */
	unsigned folders;   /* backup folders without a manifest */
};
/*
 * Removes leftovers: deletions an interrupted prune began
 * (repo_finish_deleting()), unfinished writes older than older_ms, and backup
 * folders without a manifest whose run this host recorded as failed, or
 * that are older than older_ms and unknown here (deletion rule 4). A whole
 * listing of the repository: for `coffer repo cleanup`, not every run.
 */
int repo_cleanup(struct repo *r, int64_t older_ms, struct repo_cleanup_result *res);
/*
 * The housekeeping a backup does: removes unfinished writes older than
 * orphan_ms, at most once per orphan_ms per repository (the time of the
 * last pass is kept in the catalog), so a run does not pay for a listing
 * of the whole repository. *removed counts what went (0 when skipped).
 */
int repo_housekeep(struct repo *r, int64_t orphan_ms, unsigned *removed);

#endif
