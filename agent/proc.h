/*
 * proc: running the tools coffer drives (dump commands, database clients).
 *
 * A child runs without a shell (unless asked), with an environment built in
 * the parent (so secrets go through files and variables, never argv), its
 * stdin and stdout as pipes or /dev/null, and its stderr read line by line.
 * Each stderr line is said once: in the error message when the child fails
 * (the last 2 KiB of lines), else in the log (as a warning, or at debug
 * level with stderr_debug) when it drops out of that tail, when the child
 * succeeds, or when another error ends the run. Its stdout can be
 * pumped into a filter chain (a dump) or captured into a bounded buffer (a
 * query); its stdin can be fed from a filter chain (a restore).
 *
 * Every wait polls the cancellation value (cancel_requested()) at least
 * every 200 ms, so SIGINT/SIGTERM stop coffer within a second; a child still
 * running when its proc is released gets SIGTERM, then SIGKILL after 5 s
 * (0.5 s once cancelled).
 */
#ifndef COFFER_PROC_H
#define COFFER_PROC_H

#include "common/common.h"

#include <sys/types.h>

#define PROC_TAIL 2048
#define PROC_TAIL_LINES 32

struct proc_spec {
	const char *label;     /* names the child in logs and errors: "source pg: pg_dump" */
	char *const *argv;     /* argv[0] is looked up in PATH */
	const char *shell;     /* if set, run /bin/sh -c shell instead of argv */
	char *const *env;      /* changes to the child's environment: "NAME=value" sets,
	                        * "NAME" unsets; NULL-terminated, or NULL. The child
	                        * sees only PATH, HOME, locale, TZ, TMPDIR... and the
	                        * database clients' variables of coffer's own. */
	char *const *pass_env; /* names of further variables of coffer's to pass */
	int in;                /* 1: stdin is a pipe fed with proc_feed() */
	int out;               /* 1: stdout is a pipe read by proc_pump()/proc_capture() */
	int errcode;           /* the error a failure reports: CF_ERR_SOURCE or CF_ERR_TARGET */
	int stderr_debug;      /* 1: stderr lines are logged at debug level, not as warnings */
	/* A server the drills start (drill.c): its stdout and stderr appended
	 * to this file (created 0600) instead of read by coffer, and with
	 * uid != 0 the child runs as uid:gid (coffer runs as root, and the
	 * server refuses to). It is killed with SIGKILL if coffer dies. */
	const char *log_path;
	uid_t uid;
	gid_t gid;
	int die_with_parent; /* 1: SIGKILL when coffer dies (implied by log_path) */
};

struct proc {
	pid_t pid;
	int in, out, err; /* the parent's ends, -1 when closed */
	char label[256];
	int errcode;
	int stderr_debug;
	char line[1024];
	size_t line_len;
	/* The last lines of stderr, joined by " | ": line lengths in
	 * tail_lens, the first tail_said of them already logged or reported.
	 * Each line is said once: logged when it leaves the tail or when the
	 * child succeeds, or in the error when it fails. */
	char tail[PROC_TAIL];
	size_t tail_len;
	size_t tail_lens[PROC_TAIL_LINES];
	size_t tail_n, tail_said;
};

/*
 * The priority of the children started from now on (a backup run sets its
 * source's nice and ionice around the run, so the dump tools do not starve
 * production): nice 1..19 (0: unchanged), ioprio as ioprio_set(2) encodes
 * it (class << 13 | level; 0: unchanged). Set from the main thread only.
 */
void proc_child_priority(int nice, int ioprio);

/* Starts the child. A program that cannot be executed fails here, naming it
 * ("cannot run 'pg_dump': No such file or directory"). Errors: spec->errcode,
 * CF_ERR_NOMEM. */
int proc_start(const struct proc_spec *spec, struct proc *p);
/* Reads the child's stdout into head until it closes, keeping its stderr
 * (see struct proc: each line is said once). Errors: spec->errcode (read failed),
 * CF_ERR_INTERRUPTED, and whatever the filters return. */
int proc_pump(struct proc *p, struct filter *head);
/* Writes len bytes to the child's stdin, reading its stderr meanwhile.
 * Errors: spec->errcode (the child closed its stdin: it failed or stopped
 * reading), CF_ERR_INTERRUPTED. */
int proc_feed(struct proc *p, const uint8_t *data, size_t len);
/* A sink filter that feeds the child's stdin; finish closes it. Not owned. */
int proc_filter_new(struct proc *p, struct filter **out);
/* Closes stdin, drains stdout (discarded) and stderr, waits for the child.
 * Errors: spec->errcode "LABEL exited with status N; stderr: ..." (or killed
 * by a signal), CF_ERR_INTERRUPTED. */
int proc_finish(struct proc *p);
/* Stops a child that is still running and closes everything (error paths;
 * safe after proc_finish and on a proc that never started). */
void proc_release(struct proc *p);
/* The kept tail of the child's stderr ("" if none). */
const char *proc_stderr_tail(struct proc *p);

/* Runs a child to completion and returns its stdout in out (bounded by
 * out->max). Errors: as proc_start, proc_finish; spec->errcode "LABEL: its
 * output is larger than N bytes". */
int proc_capture(const struct proc_spec *spec, struct buf *out);

/* Writes text to a new file with mode 0600 in this process's private
 * folder ($TMPDIR/coffer-secrets.PID.*, mode 0700, removed at exit), for a
 * secret a child reads (an option file, a password file). *path is
 * malloc'ed; remove it with proc_temp_remove(). Errors: CF_ERR_IO. */
int proc_temp_file(const char *prefix, const char *text, char **path);
/* Removes (wiping the files) the private folders of coffer processes that
 * were killed before they could (kill -9, power loss). Never fails. */
void proc_temp_reap(void);
/* Overwrites the file with zeros, unlinks it and frees path. NULL is a no-op. */
void proc_temp_remove(char *path);
/* Reads a password file: the first line, without its newline; empty or
 * unreadable fails naming the file. *out lives in sodium_malloc memory;
 * free it with proc_secret_free(). Errors: CF_ERR_CONFIG, CF_ERR_NOMEM. */
int proc_read_secret(const char *path, char **out);
void proc_secret_free(char *s);

#endif
