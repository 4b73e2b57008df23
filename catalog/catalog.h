/*
 * catalog: the local record of every backup run, kept in LMDB, and the JSON
 * form of a backup record that is also the repository's manifest.
 *
 * The repository is the source of truth: every complete backup has a manifest
 * next to its data, and catalog_backup_from_json() reads it back, so the
 * catalog can be rebuilt from a repository listing. The catalog adds what only
 * this host knows: runs that are still going or that failed.
 *
 * LMDB layout (schema version CATALOG_SCHEMA_VERSION, see docs/catalog.md):
 *   "meta"        "schema_version" -> decimal text; other small values
 *   "backups"     id -> record JSON (ids sort in time order)
 *   "by_source"   source "\0" id -> "" (for per-source listing and retention)
 *   "running"     id -> "" (records whose status is running: reaping dead
 *                 runs costs the same whatever the history)
 *   "by_location" location "\0" id -> "" (a repository's backups; "" for
 *                 records from before locations)
 *   "by_started"  source "\0" start time id -> the record's summary (a
 *                 source's runs in start order: the newest is the last of its
 *                 range; listings and retention read the summaries only)
 *
 * It does not talk to storage; the agent does.
 */
#ifndef COFFER_CATALOG_H
#define COFFER_CATALOG_H

#include "common/common.h"

#include <stddef.h>
#include <stdint.h>

#define CATALOG_SCHEMA_VERSION 4
/* Version of the manifest / record JSON layout (the "format" field). */
#define CATALOG_FORMAT_VERSION 1

enum catalog_status { CATALOG_RUNNING = 0, CATALOG_COMPLETE, CATALOG_FAILED };

/* One stored object of a backup (one stream: a dump, a tar of files). */
struct catalog_object {
	char *name;            /* stream name within the backup, e.g. "stdout", "files" */
	char *key;             /* storage key of the object */
	char *format;          /* what the plaintext is: "raw", "tar", "pg_dump", "sql", "rdb",
	                        * "mongodump-archive" */
	char *compression;     /* "zstd" */
	char *encryption;      /* "age" */
	uint64_t raw_bytes;    /* plaintext bytes before compression */
	uint64_t stored_bytes; /* bytes of the stored object */
	char *sha256;          /* hex SHA-256 of the stored object */
	char *meta_json; /* source-specific JSON object (e.g. the database it holds), or NULL */
};

/* A copy a complete backup should have and lacks: its target failed during
 * the backup (the backup met copies_required on the others), so `coffer
 * replicate` is to make it. */
struct catalog_pending {
	char *location; /* the target, storage_location() form */
	char *error;    /* why the copy failed */
	int64_t since_ms;
};

struct catalog_backup {
	char *id;     /* backup_id_format() */
	char *source; /* the [source NAME] */
	char *kind;   /* the source type: "files", "command", "stdin", ... */
	char *host;
	int64_t started_ms;
	int64_t finished_ms; /* 0 while running */
	enum catalog_status status;
	char *error; /* NULL unless failed */
	int pid;     /* the coffer process of a running backup */
	char *coffer_version;
	char *prefix; /* storage key prefix holding this backup: "<source>/<id>/" */
	struct catalog_object *objects;
	size_t nobjects;
	struct strv recipients; /* recipient fingerprints (age_recipient_fingerprint) */
	struct strv locations;  /* repositories holding it, storage_describe() strings */
	/* Never in a manifest: repositories whose copy prune has begun to
	 * delete (moved here from locations as it begins: not a backup there
	 * any more, whatever is left of it; the next prune or `repo cleanup`
	 * finishes the deletion), and those it was deleted from (`replicate
	 * --all` does not make it again). */
	struct strv deleting;
	struct strv pruned;
	char *meta_json; /* source-specific JSON object (engine, versions...), or NULL */
	/* What the source was asked to back up and could not (an unreadable or
	 * vanished path, a forbidden resource): a complete backup with
	 * missing_count > 0 is "partial". missing holds the first
	 * CATALOG_MISSING_MAX of them, "WHAT: WHY" each. */
	struct strv missing;
	uint64_t missing_count;
	/* Copies still to be made (complete backups only; never in a
	 * manifest, which is one target's). */
	struct catalog_pending *pending;
	size_t npending;
	/* The last `coffer verify` of it (never in a manifest): when (0:
	 * never), whether every copy checked was good, how deep ("stored", or
	 * "content" with an identity), and the first problem. */
	int64_t verified_ms;
	int verified_ok;
	char *verified_level;
	char *verified_error;
	/* The report of its last restore drill (`coffer verify --drill`), a
	 * JSON object (docs/schema/drill.json), or NULL; never in a manifest. */
	char *drill_json;
};

/* 1 if record b predates locations (none, and none being or already
 * deleted): it cannot be told which repository holds it. */
int catalog_backup_unplaced(const struct catalog_backup *b);

/* Adds a pending copy to b (copies location, error). Errors: CF_ERR_NOMEM. */
int catalog_backup_add_pending(struct catalog_backup *b, const char *location, const char *error,
                               int64_t since_ms);
/* Drops the pending copy of location from b, if there is one. */
void catalog_backup_drop_pending(struct catalog_backup *b, const char *location);

#define CATALOG_MISSING_MAX 100

struct catalog;

/*
 * Opens (creating if needed) the catalog in directory path, creating the
 * directory too. Refuses a catalog with a newer schema version.
 * Errors: CF_ERR_CATALOG_DAMAGED (the file is cut short or not LMDB's: the
 * message says to move it aside and rebuild), CF_ERR_CATALOG (LMDB error,
 * named), CF_ERR_IO, CF_ERR_NOMEM.
 */
int catalog_open(const char *path, struct catalog **out);
void catalog_close(struct catalog *c);

/* Inserts or replaces the record with b->id, durably (one LMDB transaction),
 * moving its by_source entry if the source changed. b->id must pass
 * backup_id_valid() and b->source be set (else CF_ERR_CATALOG).
 * Errors: CF_ERR_CATALOG, CF_ERR_FORMAT (see catalog_backup_to_json()),
 * CF_ERR_NOMEM. */
int catalog_backup_put(struct catalog *c, const struct catalog_backup *b);
/* Reads one record; the caller frees it with catalog_backup_free().
 * Errors: CF_ERR_NOTFOUND, CF_ERR_CATALOG, CF_ERR_FORMAT, CF_ERR_NOMEM. */
int catalog_backup_get(struct catalog *c, const char *id, struct catalog_backup **out);
/* Deletes a record; a missing id succeeds. Errors: CF_ERR_CATALOG. */
int catalog_backup_delete(struct catalog *c, const char *id);

/* Called for each record, oldest first; b is freed after the call returns.
 * A non-zero return stops the walk and is returned by catalog_backup_list().
 * The walk runs on a snapshot taken before the first call, so the callback
 * may put and delete records (retention deletes as it goes). */
typedef int (*catalog_list_cb)(void *ctx, const struct catalog_backup *b);
/* Walks all records, or those of one source if source is not NULL. A
 * record that cannot be decoded is reported (log_warn) and skipped.
 * Errors: CF_ERR_CATALOG, CF_ERR_NOMEM, and whatever cb returns. */
int catalog_backup_list(struct catalog *c, const char *source, catalog_list_cb cb, void *ctx);
/* The same over the records whose status is running (an index: the cost
 * does not grow with the history). */
int catalog_backup_list_running(struct catalog *c, catalog_list_cb cb, void *ctx);
/* The same over the records of one repository (location as in the
 * records' locations), with the records that have no location. */
int catalog_backup_list_at(struct catalog *c, const char *location, catalog_list_cb cb, void *ctx);

/* What listings and retention need of a record, kept beside it in the
 * by_started index, so that walking a source reads a few dozen bytes a
 * record instead of the record. */
struct catalog_summary {
	const char *id;
	const char *source;
	const char *host; /* "" when unknown */
	int64_t started_ms;
	enum catalog_status status;
	uint64_t raw_bytes, stored_bytes; /* over the objects */
	uint64_t missing_count;
	struct strv locations, deleting;
	struct strv pending; /* the locations of the pending copies */
	char verified;       /* the last verify: 0 never, 'o' ok, 'F' failed */
	char drilled;        /* the last restore drill, likewise */
};
typedef int (*catalog_summary_cb)(void *ctx, const struct catalog_summary *s);
/*
 * Calls cb with the summary of each record of source, oldest start first,
 * inside one read transaction: cb must not use the catalog (collect, then
 * act). A missing or unreadable summary is made from the record. The cost
 * grows with the source's records, in bytes about 100 a record. Errors:
 * CF_ERR_CATALOG, CF_ERR_NOMEM, and whatever cb returns.
 */
int catalog_summary_list(struct catalog *c, const char *source, catalog_summary_cb cb, void *ctx);
/* Fills s from record b (s borrows b's strings; its lists are copies that
 * catalog_summary_clear() frees). Errors: CF_ERR_NOMEM. */
int catalog_summary_of(const struct catalog_backup *b, struct catalog_summary *s);
void catalog_summary_clear(struct catalog_summary *s);

/*
 * Finding backups by what a user types (see README "Backup IDs").
 *
 * catalog_backup_match: the ids of the records whose id starts with
 * prefix, of source (through its index range) or of all sources when
 * source is NULL, in id order; at most max are added to ids, and *total
 * counts them all up to max + 1 (so the caller can tell "more"). A range
 * scan: the cost grows with the matches, not the history.
 * Errors: CF_ERR_CATALOG, CF_ERR_NOMEM.
 */
int catalog_backup_match(struct catalog *c, const char *source, const char *prefix, size_t max,
                         struct strv *ids, size_t *total);
/*
 * The newest complete record of source by its recorded start time (the
 * by_started index, walked from the newest down), among those at location
 * (NULL: any; a record without locations counts as at every location, as
 * in catalog_backup_list_at()). The caller frees *out.
 * Errors: CF_ERR_NOTFOUND (no such record; no message is set),
 * CF_ERR_CATALOG, CF_ERR_NOMEM.
 */
int catalog_backup_latest(struct catalog *c, const char *source, const char *location,
                          struct catalog_backup **out);
/* The distinct source names of the records, in byte order, appended to
 * names (one index seek per source). Errors: CF_ERR_CATALOG, CF_ERR_NOMEM. */
int catalog_source_names(struct catalog *c, struct strv *names);

/* Small integer values kept in "meta" by name (not "schema_version"), for
 * housekeeping state such as when a repository was last cleaned.
 * get: CF_ERR_NOTFOUND (then *value is 0) without a message; both:
 * CF_ERR_CATALOG. */
int catalog_meta_get_i64(struct catalog *c, const char *name, int64_t *value);
int catalog_meta_set_i64(struct catalog *c, const char *name, int64_t value);
/* The same for text (the last drill report of a source, "drill:NAME"):
 * *value malloc'ed. Errors: CF_ERR_NOTFOUND, CF_ERR_CATALOG, CF_ERR_NOMEM. */
int catalog_meta_get_str(struct catalog *c, const char *name, char **value);
int catalog_meta_set_str(struct catalog *c, const char *name, const char *value);
/* Read, change and write one value in one transaction (concurrent
 * processes do not lose each other's changes): fn gets the old value (NULL
 * if none) and sets *out to the new one (malloc'ed). Errors: fn's,
 * CF_ERR_CATALOG, CF_ERR_NOMEM. */
typedef int (*catalog_meta_update_fn)(void *ctx, const char *old, char **out);
int catalog_meta_update_str(struct catalog *c, const char *name, catalog_meta_update_fn fn,
                            void *ctx);
/* Removes a value (missing: success). Errors: CF_ERR_CATALOG. */
int catalog_meta_delete(struct catalog *c, const char *name);

/* Allocates an empty record (all fields zero / NULL). NULL on out of memory. */
struct catalog_backup *catalog_backup_new(void);
/* Appends a zeroed object to b and returns it, or NULL on out of memory. The
 * pointer is valid until the next append (the array may move). */
struct catalog_object *catalog_backup_add_object(struct catalog_backup *b);
/* Releases a record and everything it owns. NULL does nothing. */
void catalog_backup_free(struct catalog_backup *b);

/* "running", "complete", "failed". */
const char *catalog_status_name(enum catalog_status s);

/* Flags for catalog_backup_to_json(). */
#define CATALOG_JSON_MANIFEST 0x1 /* leave out host-local fields: status, pid, error */
#define CATALOG_JSON_PRETTY 0x2   /* indented output */

/*
 * Encodes a record as JSON (the manifest when CATALOG_JSON_MANIFEST is given).
 * Keys are sorted; NULL strings are left out. *out is malloc'ed and
 * NUL-terminated; the caller frees it.
 * Errors: CF_ERR_FORMAT (id, source or kind missing, an object without key,
 * an object without sha256 in a manifest or a complete record (a running or
 * failed run may hold an unfinished stream's object), a manifest without
 * finished_ms, meta_json not a JSON object,
 * a name or key that is not UTF-8, a count above INT64_MAX), CF_ERR_NOMEM.
 * Free text (error, missing) that is not UTF-8 is stored with its bad bytes
 * as "\xNN" (fmt_text_utf8()), so a failure is always recorded.
 */
int catalog_backup_to_json(const struct catalog_backup *b, int flags, char **out);
/*
 * Decodes a record or a manifest (a manifest gives status complete). Checks the
 * "format" version (a newer one is refused), every known field's type and
 * range, and the required fields (id, a valid backup id; source; kind;
 * started; objects, each with a key and, in a complete record or manifest, a
 * sha256 of 64 lowercase hex digits).
 * Unknown keys are ignored, so later versions can add optional fields
 * without a new format number. Errors: CF_ERR_FORMAT (names the field),
 * CF_ERR_NOMEM.
 */
int catalog_backup_from_json(const char *json, size_t len, struct catalog_backup **out);

/*
 * A manifest read from a repository is untrusted input. This decodes one and
 * checks what a restore, a rebuild and cleanup rely on: id and source are
 * names (name_valid()); prefix is exactly "<source>/<id>/" and, if
 * where (the key of the folder the manifest was read from) is not NULL,
 * where ends with it; every object has a valid name, a format, and the key
 * the backup run gives it (prefix + name + [".tar"] + ".zst.age"), no two
 * alike. Host-local state is never taken from it: status is complete, pid 0,
 * error none. Errors: CF_ERR_FORMAT (names what is wrong), CF_ERR_NOMEM.
 */
int catalog_manifest_from_json(const char *json, size_t len, const char *where,
                               struct catalog_backup **out);
struct sign_key;
/*
 * Signs a manifest (the JSON catalog_backup_to_json() gave with
 * CATALOG_JSON_MANIFEST): *out is the same document, indented, with a field
 * "signature": {"key": "ed25519:...", "ed25519": "<base64>"}. What is signed
 * is the compact encoding with sorted keys of the document without that
 * field, so any field, known or added later, is covered. *out is malloc'ed.
 * Errors: CF_ERR_FORMAT (not a JSON object), CF_ERR_INTERNAL, CF_ERR_NOMEM.
 */
int catalog_manifest_sign(const char *json, const struct sign_key *k, char **out);
/*
 * Checks a manifest's signature. *signer receives the signing public key
 * (malloc'ed) when the signature verifies, NULL when the manifest is not
 * signed. Errors: CF_ERR_INTEGRITY (a signature that does not verify, or a
 * malformed one), CF_ERR_FORMAT (not JSON), CF_ERR_NOMEM.
 */
int catalog_manifest_verify(const char *json, size_t len, char **signer);

/* The storage key of an object of backup prefix: prefix + name + ".tar"
 * for a tar + ".zst.age". *out is malloc'ed. Errors: CF_ERR_NOMEM. */
int catalog_object_key(const char *prefix, const char *name, const char *format, char **out);

#endif
