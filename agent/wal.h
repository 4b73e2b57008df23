/*
 * wal: PostgreSQL's WAL archive in coffer's repositories (coffer wal-push,
 * wal-fetch, the archive's ranges for status, restore and prune).
 *
 * Each WAL file (segment, .partial, .backup or .history) is one object:
 *     <source>/wal/<dir>/<name>-<sha256>.zst.age
 * an age file of a zstd stream, where dir is the segment name's first 16
 * characters (timeline + log: at most 256 segments of 16 MiB a folder) or
 * "history", and sha256 is the plaintext's. The digest in the key makes a
 * re-push of the same file find itself (success) and a different file of
 * the same name visible before anything is written (failure: two clusters
 * archiving into one source). repo/repo.h owns the layout
 * (repo_wal_dir()); this module is the only one that reads and writes it.
 *
 * Threads: wal_push_file() and wal_fetch_file() touch no catalog and may run
 * in several threads at once (the async pusher, the prefetcher); recording
 * in the catalog (wal_note()) is the main thread's.
 */
#ifndef COFFER_WAL_H
#define COFFER_WAL_H

#include "catalog/catalog.h"
#include "common/common.h"
#include "crypto/crypto.h"
#include "repo/repo.h"

enum wal_kind {
	WAL_SEGMENT, /* 000000010000000000000003 */
	WAL_PARTIAL, /* 000000010000000000000003.partial (the old timeline's last, at promotion) */
	WAL_BACKUP,  /* 000000010000000000000003.00000028.backup */
	WAL_HISTORY, /* 00000002.history */
};

struct wal_name {
	char name[48];
	enum wal_kind kind;
	uint32_t tli;
	uint32_t log, seg; /* the name's 2nd and 3rd groups (not for history) */
};

/* Parses a WAL file name (no folder). Errors: CF_ERR_USAGE naming it. */
int wal_name_parse(const char *name, struct wal_name *out);
/* The segment number of a segment name for segment size seg_size. */
uint64_t wal_segno(const struct wal_name *w, uint64_t seg_size);
/* The segment name of (tli, segno) for seg_size into out (25 bytes). */
void wal_segname(uint32_t tli, uint64_t segno, uint64_t seg_size, char out[25]);
/* An LSN "16/B374D848" into *lsn. Errors: CF_ERR_USAGE. */
int wal_lsn_parse(const char *text, uint64_t *lsn);
void wal_lsn_format(uint64_t lsn, char out[24]);

/* Where a source's WAL goes: the repositories (in the order they are tried
 * for a fetch), how many must take each file, the keys. */
struct wal_archive {
	const char *source;
	struct repo **repos; /* NULL entries: could not be opened */
	const char **repo_errors;
	size_t nrepos;
	size_t copies_required;
	const struct age_recipients *rcpt; /* push */
	int zstd_level;
	const struct age_identities *ids; /* fetch */
};

/*
 * Stores the file at path as WAL file name in every repository: *stored
 * receives how many now hold it (already there with the same content
 * counts). Fails unless at least copies_required do.
 * Errors: CF_ERR_EXISTS (a file of that name with other content is
 * archived: named, with both digests), CF_ERR_IO (path unreadable),
 * CF_ERR_STORAGE and the storage's, CF_ERR_INTERRUPTED.
 */
int wal_push_file(const struct wal_archive *a, const char *path, const char *name, size_t *stored,
                  unsigned long long *missed);
/* missed (by wal_push_file): bit i set for each a->repos[i] that does not
 * hold the file (unreachable, failed). */

/*
 * Copies WAL file name into each repository of missed that lacks it, from
 * one that holds it (the stored bytes, read and written whole); *still
 * receives those that could not be made. Errors: only CF_ERR_INTERRUPTED
 * and CF_ERR_NOMEM (a copy that fails stays in *still, with a warning).
 */
int wal_copy_missing(const struct wal_archive *a, const char *name, unsigned long long missed,
                     unsigned long long *still);

/* The SHA-256 of the file at path (the digest its key holds). Errors:
 * CF_ERR_IO. */
int wal_file_digest(const char *path, char hex[HASH_SHA256_HEX_LEN + 1]);

/*
 * Fetches WAL file name into dest (atomically: a temporary file beside it,
 * fsync, rename), trying the repositories in order. Errors: CF_ERR_NOTFOUND
 * (no repository holds it: the end of the archive), CF_ERR_INTEGRITY (it is
 * missing but later segments of its timeline are archived: a hole; or the
 * content does not match its digest), the storage's and age's.
 */
int wal_fetch_file(const struct wal_archive *a, const char *name, const char *dest);

/* One archived WAL file, as wal_list() reports it. */
struct wal_entry {
	struct wal_name w;
	const char *key;
	char sha256[HASH_SHA256_HEX_LEN + 1];
	uint64_t stored_bytes;
	int64_t mtime_ms;
};
typedef int (*wal_list_cb)(void *ctx, const struct wal_entry *e);
/* Every WAL file of source in r, in name order within each folder (the
 * history folder last). Keys that are not WAL objects are skipped. */
int wal_list(struct repo *r, const char *source, wal_list_cb cb, void *ctx);
/* The same for one folder (repo_wal_dir()). */
int wal_list_dir(struct repo *r, const char *prefix, wal_list_cb cb, void *ctx);

/*
 * The catalog's view of a source's archive (a meta value "wal/<source>", a
 * JSON object): per timeline, the ranges of segments held, and the newest
 * file with the time it was stored. wal_note() adds one file (in one
 * catalog transaction, so concurrent pushes do not lose each other's);
 * prune calls wal_rebuild() after deleting old WAL.
 * Errors: CF_ERR_CATALOG, CF_ERR_NOMEM.
 */
int wal_note(struct catalog *c, const char *source, const struct wal_name *w, uint64_t seg_size,
             int64_t when_ms);
/*
 * WAL copies still to be made (a repository was unreachable when the file
 * was pushed and copies_required was met without it): a meta value
 * "wal-pending/<source>", {"NAME": ["repository", ...], ...}. add puts
 * (name, repos), remove takes them out; wal_pending() gives the JSON text
 * (NULL: none). Errors: CF_ERR_CATALOG, CF_ERR_NOMEM.
 */
int wal_pending_change(struct catalog *c, const char *source, const char *name,
                       const char *const *repos, size_t n, int add);
int wal_pending(struct catalog *c, const char *source, char **json);

/*
 * Where base backup b (a postgres-physical record) starts in the archive:
 * the segment number of its start LSN, its timeline and the segment size,
 * from its record's meta. Errors: CF_ERR_FORMAT (no start LSN or segment
 * size: named).
 */
int wal_base_start(const struct catalog_backup *b, uint64_t *segno, uint32_t *tli,
                   uint64_t *seg_size);

/* The state as JSON text (NULL: nothing archived). */
int wal_state(struct catalog *c, const char *source, char **json);
/* Rebuilds the state of source from what r holds. */
int wal_rebuild(struct catalog *c, struct repo *r, const char *source, size_t *files);

#endif
