/*
 * common: the base layer every other module builds on. libc only.
 *
 * It holds the project-wide error table and the per-thread error message, the
 * logger, a bounded growable buffer, the push-model filter chain that every
 * backup and restore stream runs through, and small file-system helpers.
 * It knows nothing about encryption, storage or databases.
 */
#ifndef COFFER_COMMON_H
#define COFFER_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Every function that can fail returns int: 0 on success, one of these negative
 * codes on failure. The code says what kind of failure it is (and so the exit
 * status); the detail (errno text, the object concerned) is recorded once, where
 * the failure is detected, with error_set(), and read back with error_message().
 */
enum cf_error {
	CF_OK = 0,
	CF_ERR_NOMEM = -1,            /* out of memory */
	CF_ERR_IO = -2,               /* local file or pipe I/O failed */
	CF_ERR_CONFIG = -3,           /* bad configuration file or value */
	CF_ERR_USAGE = -4,            /* bad command line */
	CF_ERR_NOTFOUND = -5,         /* backup, object, file or key does not exist */
	CF_ERR_EXISTS = -6,           /* refusing to overwrite something that exists */
	CF_ERR_FORMAT = -7,           /* malformed data (manifest, record, archive) */
	CF_ERR_KEY = -8,              /* bad or unreadable key / identity / recipient */
	CF_ERR_AGE_NOMATCH = -9,      /* no identity matches any recipient stanza */
	CF_ERR_AGE_HEADER = -10,      /* age header malformed */
	CF_ERR_AGE_HMAC = -11,        /* age header MAC does not verify */
	CF_ERR_AGE_PAYLOAD = -12,     /* age payload corrupted or truncated */
	CF_ERR_INTEGRITY = -13,       /* stored object size or SHA-256 mismatch */
	CF_ERR_SOURCE = -14,          /* the source (dump command, files) failed */
	CF_ERR_STORAGE = -15,         /* the storage driver failed */
	CF_ERR_CATALOG = -16,         /* the local catalog failed */
	CF_ERR_COMPRESS = -17,        /* zstd failed or the compressed data is bad */
	CF_ERR_LIMIT = -18,           /* a bounded buffer or a format limit was exceeded */
	CF_ERR_NOSPACE = -19,         /* no space left on a device */
	CF_ERR_INTERRUPTED = -20,     /* stopped by a signal */
	CF_ERR_UNSUPPORTED = -21,     /* a feature this build or driver lacks */
	CF_ERR_NETWORK = -22,         /* a network peer could not be reached */
	CF_ERR_AUTH = -23,            /* credentials were refused */
	CF_ERR_INTERNAL = -24,        /* a bug: an invariant did not hold */
	CF_ERR_TARGET = -25,          /* a restore target (database client) failed */
	CF_ERR_PARTIAL = -26,         /* a backup completed without something it was asked for */
	CF_ERR_CATALOG_DAMAGED = -27, /* the catalog's file is damaged (rebuild it) */
	CF_ERR_BUSY = -28,            /* another run holds what this one needs (a source's lock) */
	CF_ERR_UNHEALTHY = -29, /* status: a source is stale or its last run or check failed */
	CF_ERR_LAST = -30
};

/* A short, constant description of an error code ("age header MAC mismatch"). */
const char *cf_strerror(int code);

/*
 * Records the detail of an error for this thread (printf-style), replacing any
 * earlier one, and returns code so it can be used as `return error_set(...)`.
 * Call it once, where the failure is detected; callers further up pass the code
 * through without calling it again.
 */
int error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like error_set() but appends ": strerror(errnum)". */
int error_set_errno(int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The detail recorded by the last error_set() on this thread, or "" if none. */
const char *error_message(void);

/* The code passed to the last error_set() on this thread, or 0. */
int error_code(void);

/* Forgets the recorded error of this thread. */
void error_clear(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                    */
/* ------------------------------------------------------------------------ */

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the most verbose level printed (default LOG_LEVEL_WARN). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Prints "coffer: <level>: message" to stderr if level is enabled (with
 * "[SOURCE ID] " before the message during a run), or in the json format
 * one object a line. Thread-safe, and safe in a forked child. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };
void log_set_format(enum log_format format);
/* "text" or "json". Errors: CF_ERR_USAGE naming the value. */
int log_parse_format(const char *name, enum log_format *out);
/* The run every following line belongs to (a source and a backup id), so
 * that each line of a backup carries them; (NULL, NULL) ends it. Called by
 * the thread that runs the backups, between runs. */
void log_context_set(const char *source, const char *backup_id);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Bounded buffer                                                             */
/* ------------------------------------------------------------------------ */

/*
 * A growable byte buffer with a hard size limit (curl's dynbuf). data is always
 * NUL-terminated after len bytes so it can be used as a C string.
 */
struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max; /* appends that would grow len past max fail with CF_ERR_LIMIT */
};

/* Initialises an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Makes room for extra more bytes at once, so later appends do not realloc.
 * Errors: CF_ERR_NOMEM, CF_ERR_LIMIT. */
int buf_reserve(struct buf *b, size_t extra);
/* Appends len bytes. Errors: CF_ERR_NOMEM, CF_ERR_LIMIT. */
int buf_append(struct buf *b, const void *data, size_t len);
/* Appends formatted text. Errors: CF_ERR_NOMEM, CF_ERR_LIMIT. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Releases the memory; the buffer is then empty and can be reused. */
void buf_free(struct buf *b);

/* ------------------------------------------------------------------------ */
/* Filter chain                                                               */
/* ------------------------------------------------------------------------ */

/*
 * A stream is processed by a chain of filters in push model: the producer calls
 * filter_write() on the head; each filter transforms what it gets and passes its
 * output on with filter_emit(); the last filter (a sink) consumes it. At end of
 * stream the producer calls filter_finish() on the head; each filter flushes and
 * the finish travels down the chain. A filter that fails returns a negative code
 * (after error_set()), which travels back up to the producer.
 *
 * Ownership: a filter owns its ctx, released by ops->free. filter_chain_free()
 * releases a filter and every filter after it. Freeing a chain that was never
 * finished is how a failed stream is abandoned: sinks must then discard what
 * they were writing (a storage sink aborts its upload).
 */
struct filter;

struct filter_ops {
	const char *name;
	/* Consumes len bytes (len may be 0). Emits output with filter_emit(). */
	int (*write)(struct filter *f, const uint8_t *data, size_t len);
	/* End of input: emits whatever is still buffered. May be NULL. */
	int (*finish)(struct filter *f);
	/* Releases ctx. May be NULL. */
	void (*free)(struct filter *f);
};

struct filter {
	const struct filter_ops *ops;
	void *ctx;
	struct filter *next;
	uint64_t bytes_in;  /* bytes given to this filter */
	uint64_t bytes_out; /* bytes this filter emitted */
	int finished;
};

/* Allocates a filter with the given ops and ctx. Returns NULL on out of memory
 * (and then releases ctx through ops->free). */
struct filter *filter_new(const struct filter_ops *ops, void *ctx);
/* Links filters a -> b -> c ... (NULL-terminated) and returns the head. */
struct filter *filter_chain(struct filter *head, ...);
/* Gives data to f. Errors: whatever the filter or one after it returns. */
int filter_write(struct filter *f, const void *data, size_t len);
/* Passes data from f to the next filter (a sink with no next drops it). */
int filter_emit(struct filter *f, const void *data, size_t len);
/* Ends the stream at f and, if f succeeds, at every filter after it. */
int filter_finish(struct filter *f);
/* Releases f and every filter after it. NULL does nothing. */
void filter_chain_free(struct filter *f);

/*
 * A pass-through filter that runs the filters after it in a worker thread,
 * with nbufs buffers of bufsize bytes between the two (so the memory it adds
 * is bounded). Link the rest of the chain to it before the first write.
 * Errors (from write/finish): CF_ERR_NOMEM, CF_ERR_INTERNAL, and whatever the
 * filters after it return, with their message.
 */
int filter_thread_new(size_t bufsize, size_t nbufs, struct filter **out);

/* A sink that counts bytes and drops them (for tests and benchmarks). */
int filter_null_new(struct filter **out);
/* A sink that writes everything to a file descriptor (not closed on free). */
int filter_fd_new(int fd, const char *what, struct filter **out);

/*
 * A sink that copies its input to nbranches chains (filter_tee.c), each
 * behind its own filter_thread of nbufs buffers of bufsize bytes: the memory
 * is bounded, and a branch whose buffers are full holds back the writer (the
 * slowest branch sets the pace). nbufs 0: no threads, each branch is written
 * in the caller's thread in turn (for sinks that queue the data for threads
 * of their own anyway, where a thread more only copies it once more). The tee takes over every
 * branches[i] (set to NULL), on failure too. A branch that fails (at a write or at finish) is
 * detached: its chain is freed unfinished, so its sink aborts, and its
 * error is kept; the others go on. A write or finish of the tee fails only
 * once fewer than min_ok branches are left (then with the error of the
 * branch that was one too many, and every later call fails). A write also
 * fails with CF_ERR_INTERRUPTED once cancel_requested(). Branch filters the
 * caller kept pointers to stay valid until the tee is freed, unless their
 * branch was detached. Errors: CF_ERR_INTERNAL (no branch, min_ok >
 * nbranches), CF_ERR_NOMEM.
 */
int filter_tee_new(size_t nbranches, struct filter **branches, size_t min_ok, size_t bufsize,
                   size_t nbufs, struct filter **out);
/* 0 while branch i of tee is attached (or finished well), else the error
 * that detached it. */
int filter_tee_branch_error(const struct filter *tee, size_t i);
/* The message of that error ("" if none); valid until the tee is freed. */
const char *filter_tee_branch_message(const struct filter *tee, size_t i);
/* How many branches are still attached. */
size_t filter_tee_branches_left(const struct filter *tee);

/* ------------------------------------------------------------------------ */
/* Files, time and identifiers                                                */
/* ------------------------------------------------------------------------ */

/* Writes all len bytes to fd, retrying on EINTR and short writes.
 * Errors: CF_ERR_IO, CF_ERR_NOSPACE (errno left set). what names the file. */
int fs_write_all(int fd, const void *data, size_t len, const char *what);
/* Reads a whole small file (at most max bytes) into a NUL-terminated buffer.
 * Errors: CF_ERR_NOTFOUND, CF_ERR_IO, CF_ERR_LIMIT, CF_ERR_NOMEM. */
int fs_read_file(const char *path, size_t max, struct buf *out);
/* fsyncs the directory that holds path. Errors: CF_ERR_IO. */
int fs_fsync_dir(const char *dir);
/* Creates a directory and its parents with the given mode. Errors: CF_ERR_IO. */
int fs_mkdir_p(const char *path, mode_t mode);
/* Removes a directory tree (no symlinks are followed). Errors: CF_ERR_IO. */
int fs_remove_tree(const char *path);
/*
 * Finds in dir what processes that died left: entries named prefix + PID
 * (then the end of the name or '.'), whose PID no longer exists, and that
 * can be flocked (their owner held an exclusive flock on them while it
 * lived), and calls found(path, ctx) on each while holding that lock. For
 * private temporary folders and files that a kill -9 leaves behind.
 */
void fs_reap_dead(const char *dir, const char *prefix, void (*found)(const char *path, void *ctx),
                  void *ctx);

/*
 * Cancellation (cancel.c): one value per process that every layer can see. A
 * SIGINT/SIGTERM handler calls cancel_set(); transfer callbacks, backoff
 * waits, child-process loops and filter threads poll it, so a run stops
 * within a second of the signal.
 */
/* Records a cancellation (async-signal-safe); sig 0 cancels without one. */
void cancel_set(int sig);
/* 1 once cancel_set() was called (0 inside a cleanup section). */
int cancel_requested(void);
/* Cleanup after a cancellation (nestable, per thread): between begin and
 * end, cancel_requested() is 0 so the cleanup runs, and cancel_hurry() is 1
 * once cancelled, telling slow layers (S3) to make one short attempt. */
void cancel_cleanup_begin(void);
void cancel_cleanup_end(void);
int cancel_hurry(void);
/* 0, or CF_ERR_INTERRUPTED with a message once cancelled. */
int cancel_check(void);
/* Sleeps ms milliseconds, returning early once cancelled.
 * Errors: CF_ERR_INTERRUPTED. */
int cancel_sleep_ms(int64_t ms);

/*
 * Fault injection for the tests, at named points of the code: when
 * $COFFER_FAULT holds "POINT:kill" (comma-separated), the process kills
 * itself with SIGKILL there; "POINT:fail" makes this return CF_ERR_IO;
 * "POINT:pause" sleeps 3 s (to open a race window). Unset, it costs a
 * getenv. Points: before-manifest (every object of a backup is stored),
 * after-manifest (backup stored its manifest, record not yet complete),
 * complete-record (the record's last update), cleanup-listed (repo cleanup
 * has listed the repository).
 */
int fault_point(const char *point);

/*
 * A NULL-terminated, growable vector of malloc'ed strings (strv.c): argv
 * and environments of children, a record's recipients and locations, lists
 * in the configuration. A zeroed struct is an empty vector; v is NULL until
 * the first add, then v[n] is NULL.
 */
struct strv {
	char **v;
	size_t n, cap;
};

/* Appends a copy of s / of every string up to a NULL / a formatted string.
 * Errors: CF_ERR_NOMEM. */
int strv_add(struct strv *sv, const char *s);
int strv_addl(struct strv *sv, ...) __attribute__((sentinel));
int strv_addf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a copy of s unless the vector holds it. Errors: CF_ERR_NOMEM. */
int strv_add_new(struct strv *sv, const char *s);
/* Appends "name=value" when value is not NULL. Errors: CF_ERR_NOMEM. */
int strv_add_env(struct strv *sv, const char *name, const char *value);
/* 1 if s is in the vector. */
int strv_has(const struct strv *sv, const char *s);
/* Removes every item equal to s, keeping the order of the others. */
void strv_remove(struct strv *sv, const char *s);
/* Frees the strings and the vector, leaving it empty. */
void strv_free(struct strv *sv);
/* Splits a comma-separated list into out (initialised here), trimming
 * blanks; empty items are refused. Errors: CF_ERR_CONFIG (naming the list),
 * CF_ERR_NOMEM; out is then empty. */
int strv_split(const char *value, struct strv *out);

/* Milliseconds since the Unix epoch: the time of records, backup ids and
 * retention. From CLOCK_REALTIME, shifted when the tests set
 * COFFER_TEST_CLOCK (an RFC 3339 UTC time the clock starts from). */
int64_t time_now_ms(void);
/* CLOCK_REALTIME unshifted: for comparing with times a server or the file
 * system gave (object and upload ages) and for signing requests. */
int64_t time_real_ms(void);
/* Monotonic seconds, for rates and timeouts. */
double time_mono(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-22T09:10:46.123Z") into out (at least TIME_ISO_LEN + 1 bytes). */
#define TIME_ISO_LEN 24
void time_format_iso(int64_t ms, char *out, size_t size);
/* Parses what time_format_iso() writes (the ".123" part is optional).
 * Errors: CF_ERR_FORMAT. */
int time_parse_iso(const char *text, int64_t *ms);
/* A duration "0", "90s", "30m", "24h", "7d" (a bare number is seconds) into
 * milliseconds. Errors: CF_ERR_CONFIG naming the text. */
int time_parse_duration(const char *text, int64_t *ms);

/*
 * Backup identifiers sort in time order as plain strings:
 * "20261122T091046.123Z-1a2b3c4d". The random part comes from the caller
 * (common has no random source), so tests can pin it.
 */
#define BACKUP_ID_LEN 29
void backup_id_format(int64_t ms, uint32_t random, char out[BACKUP_ID_LEN + 1]);
/* 1 if text has the shape of a backup id, else 0. */
int backup_id_valid(const char *text);

/* The one rule for names that become parts of keys and paths (sources,
 * objects, --stdin names): 1 if name is 1-200 of [A-Za-z0-9._-] and does
 * not start with '.', else 0. */
#define NAME_MAX_LEN 200
int name_valid(const char *name);
/* Formats a byte count as "1.5 GiB" into out. */
void fmt_bytes(uint64_t n, char *out, size_t size);
/* A malloc'ed copy of text that is valid UTF-8: each byte that does not
 * belong to a valid sequence (a file name in another encoding, a tool's
 * garbled output) is written as "\xNN". For messages and records, which
 * must hold any text; NULL on out of memory. */
char *fmt_text_utf8(const char *text);
/* The same into out (size bytes, truncated at a whole character), and with
 * controls also control characters (a newline in a file name) as "\xNN", so
 * a log line stays one line. Returns the length written. */
size_t fmt_text_escape(const char *text, char *out, size_t size, int controls);

#endif
