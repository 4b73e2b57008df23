/*
 * cmd_wal: what wal-push (cmd_wal.c) and wal-fetch (cmd_wal_fetch.c) share:
 * the configuration, source, repositories and keys of a WAL command, and
 * starting this program again, detached, for the background pusher and
 * prefetcher.
 */
#ifndef COFFER_CMD_WAL_H
#define COFFER_CMD_WAL_H

#include "agent/agent.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

/* Everything a WAL command works with. */
struct cmd_wal {
	const struct cli *cli;
	struct config *cfg;
	const struct source *src;
	const struct source_pgphys_wal *opts;
	struct agent_targets tg;
	struct repo **repos;
	const char **errs;
	const char **names; /* the repositories' names, as a->repos */
	struct wal_archive a;
	struct age_recipients *rcpt;
	struct age_identities *ids;
	char spool[4096]; /* <spool>/<source> */
};

/* Loads the config, the source (or the only postgres-physical one), its
 * repositories (one that cannot be opened is a warning and a NULL entry)
 * and the recipients (push) or identities (fetch; identity overrides the
 * config's). Errors: those of config_load(), CF_ERR_USAGE, CF_ERR_CONFIG,
 * CF_ERR_KEY, CF_ERR_NOMEM. */
int cmd_wal_open(struct cmd_wal *w, const struct cli *cli, const char *source, int push,
                 const char *identity);
void cmd_wal_free(struct cmd_wal *w);
/* Runs `coffer --config C COMMAND --background --source S [ARG]` detached
 * (double fork, setsid, stderr to the spool's COMMAND.log); failures are
 * warnings. */
void cmd_wal_spawn(struct cmd_wal *w, const char *command, const char *arg);

/* Runs fn(ctx) in n threads (at most CMD_WAL_THREADS_MAX) and waits for
 * them; fn takes its work from ctx until none is left. */
#define CMD_WAL_THREADS_MAX 32
void cmd_wal_threads(void *(*fn)(void *), void *ctx, size_t n);

#endif
