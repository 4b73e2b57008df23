/*
 * main: coffer's command line. Parses the global options, dispatches to a
 * command, and turns its result into one error line and an exit status.
 */
#include "agent/agent.h"
#include "agent/status.h"

#include <getopt.h>
#include <locale.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *name;
	int (*run)(const struct cli *cli, int argc, char **argv);
	const char *usage;
	const char *help;
};

static int main_help(const struct cli *cli, int argc, char **argv);

/*
 * Each command's usage line and help: what it does, then "options:" with
 * one line per option its parser accepts (tests/integration/test_cli_help.sh
 * checks that every option of a getopt table is listed here and in the README).
 */
static const struct command commands[] = {
    {"backup", cmd_backup,
     "coffer backup [SOURCE... | --stdin NAME [--allow-empty] | --dry-run SOURCE...] [--wait]",
     "Backs up the named sources (all configured sources if none is named), or\n"
     "standard input as source NAME. Each source becomes one backup: its streams are\n"
     "compressed with zstd, encrypted to the configured age recipients and stored in\n"
     "the repository, with a manifest written last. Prints one line per backup\n"
     "(one JSON document {\"backups\": [...]} with --json). One run of a source at a\n"
     "time: when another coffer is backing up one of the sources, this run stops\n"
     "at once before backing up anything (exit 10), or waits with --wait.\n"
     "\n"
     "options:\n"
     "  SOURCE...             a configured [source NAME]; all sources when none is named\n"
     "  --stdin NAME          back up standard input as a backup of source NAME\n"
     "                        (instead of SOURCE...; NAME may not be a configured\n"
     "                        source of another type)\n"
     "  --allow-empty         with --stdin: an empty input is a backup, not an error\n"
     "  --dry-run             files sources: walk SOURCE... as a backup would (same\n"
     "                        excludes) and print what it would store: a summary,\n"
     "                        a line per entry with --verbose; writes nothing\n"
     "  --wait                wait for another run of the same source to end\n"},
    {"list", cmd_list,
     "coffer list [--source S] [--status STATUS] [--since WHEN] [--host H] [--json]",
     "Lists the backups of the configured repository in the local catalog, oldest\n"
     "first, with their status (running, complete, failed, partial), sizes and\n"
     "where each is stored. Filters combine: a backup is listed if it passes all.\n"
     "\n"
     "options:\n"
     "  --source S            only the backups of source S\n"
     "  --status STATUS       only those with STATUS: running, complete, failed or\n"
     "                        partial (complete means complete and not partial)\n"
     "  --since WHEN          only those started at or after WHEN: a duration back\n"
     "                        from now (7d, 24h, 30m, 90s), a date (2026-12-01, UTC)\n"
     "                        or an RFC 3339 time (2026-12-01T08:00:00Z, +01:00)\n"
     "  --host H              only those made on host H\n"
     "  --json                a JSON array of records (docs/json.md)\n"},
    {"show", cmd_show, "coffer show ID [--source S] [--json]",
     "Shows one backup record: objects, sizes, SHA-256, recipients, error, what a\n"
     "partial backup misses, and the source's meta (engine, versions, warnings).\n"
     "ID is a backup id, a unique prefix of one (4 or more characters) or latest\n"
     "(the newest complete backup by start time).\n"
     "\n"
     "options:\n"
     "  --source S            the source: needed for latest when several sources\n"
     "                        have backups; prefixes match only its backups\n"
     "  --json                the record as one JSON object (docs/json.md)\n"},
    {"restore", cmd_restore,
     "coffer restore ID (--to DIR|FILE | --stdout | --to-database TARGET) [OPTIONS]",
     "Restores a backup. --to DIR restores every object into DIR (which must not\n"
     "exist or be empty): raw streams as files named after the object, tar streams\n"
     "extracted. DIR appears only once everything is verified. --stdout writes the\n"
     "plaintext of one object (choose with --object when there are several).\n"
     "The identity comes from --identity or [encryption] identity.\n"
     "\n"
     "options:\n"
     "  --to DIR              restore into DIR (new or empty); redis and sqlite\n"
     "                        backups: --to FILE writes the RDB or database file\n"
     "  --stdout              write the plaintext of one object to standard output\n"
     "  --to-database TARGET  stream a database backup into a running server\n"
     "  --database NAME       with --to-database: only the database NAME\n"
     "  --globals             with --to-database: only the roles / users and grants\n"
     "  --clean               with --to-database: restore into a target holding data\n"
     "  --source S            with ID latest or a prefix: among the backups of S\n"
     "  --from REPOSITORY     read from that repository only (primary, or a\n"
     "                        [repository NAME]); by default each that holds the\n"
     "                        backup in turn, until one delivers it\n"
     "  -i, --identity FILE   the age identity file (default: [encryption] identity)\n"
     "  --object NAME         only the object NAME (needed with --stdout when the\n"
     "                        backup has several)\n"
     "  --include PATTERN     with --to DIR, tar objects: only the entries whose path\n"
     "                        (or a folder above it) matches PATTERN (repeatable;\n"
     "                        see 'coffer ls')\n"
     "  --namespace NS        kubernetes backups: only the namespace NS\n"
     "  --kind KIND           kubernetes backups: only resources of kind KIND\n"
     "  --print-apply-order   kubernetes backups: print the order to kubectl apply in\n"
     "  --trust-unsigned      accept a manifest that is unsigned or signed by an\n"
     "                        untrusted key\n"
     "\n"
     "coffer restore --source S --to-datadir DIR (--at TIME | --lsn LSN | --latest |\n"
     "               --immediate) [OPTIONS]\n"
     "A postgres-physical source to a point in time: the newest base backup that\n"
     "ends before the target laid down in DIR (new or empty, absolute), its\n"
     "tablespaces, recovery.signal and the recovery settings (restore_command =\n"
     "coffer wal-fetch, the target, the timeline). The archive is checked first:\n"
     "a target before the first backup or past the archived WAL, or a missing\n"
     "segment, fails before anything is written; a repository that cannot be\n"
     "read or lacks what is needed makes it try the next. Start it with pg_ctl.\n"
     "\n"
     "options:\n"
     "  --to-datadir DIR      the data directory to make\n"
     "  --at TIME             recover to TIME (UTC, 2026-12-05T17:41:09Z)\n"
     "  --lsn LSN             recover to LSN (0/3000060)\n"
     "  --latest              recover to the end of the archived WAL\n"
     "  --immediate           recover to the end of the base backup only\n"
     "  --backup ID           from this base backup (an id or prefix)\n"
     "  --timeline N          recover along timeline N (default: the newest the\n"
     "                        base backup reaches)\n"
     "  --target-action A     at the target: promote (default), pause or shutdown\n"
     "  --tablespace-map OLD=NEW  restore the tablespace at OLD into NEW\n"
     "  --archive-mode M      off (default: the copy does not archive) or preserve\n"
     "                        (the copy becomes the new primary)\n"
     "  --from REPOSITORY     read only this repository (default: each in config\n"
     "                        order until one holds the backup and the WAL)\n"
     "  --json                print the result as JSON\n"},
    {"ls", cmd_ls, "coffer ls ID [PATH...] [--json] [--identity FILE] [--source S]",
     "Lists the entries of a files or kubernetes backup (its tar objects), one\n"
     "line per entry as `tar -tv` does: mode, owner, size, time, path. The\n"
     "objects are read and checked as a restore reads them; nothing is written.\n"
     "With PATH arguments, only the entries at or below them (patterns as for\n"
     "restore --include); a PATH not in the backup is an error.\n"
     "\n"
     "options:\n"
     "  --json                one JSON document: {\"id\", \"source\", \"entries\": [...]}\n"
     "  -i, --identity FILE   the age identity file (default: [encryption] identity)\n"
     "  --source S            the source whose backup ID is (for 'latest')\n"
     "  --trust-unsigned      accept a manifest that is unsigned or signed by an\n"
     "                        untrusted key\n"},
    {"keygen", cmd_keygen, "coffer keygen [--signing] [-o FILE]",
     "Generates an age X25519 identity. With -o, writes it to FILE (mode 0600,\n"
     "never overwriting) and prints the public recipient; otherwise prints the\n"
     "identity file to standard output.\n"
     "\n"
     "options:\n"
     "  -o, --output FILE     write the identity (or signing key) to FILE\n"
     "  --signing             this host's manifest signing key instead (made if there\n"
     "                        is none): prints its public key, for trusted_signers\n"},
    {"replicate", cmd_replicate, "coffer replicate (ID... | --all) [--to REPOSITORY]",
     "Makes the copies backups lack in the configured repositories: pending ones\n"
     "(a repository failed during the backup while copies_required was met) and\n"
     "missing ones (a [repository NAME] added later). Each object is streamed\n"
     "from the first repository holding the backup, checked against its recorded\n"
     "SHA-256 before it is committed, and the manifest goes last. Safe to\n"
     "interrupt and run again.\n"
     "\n"
     "options:\n"
     "  --all                 every complete backup that lacks a copy; then the\n"
     "                        WAL of postgres-physical sources a repository\n"
     "                        lacks, from its oldest base backup's start on\n"
     "  --to REPOSITORY       only copies into that repository\n"},
    {"prune", cmd_prune, "coffer prune [--dry-run] [--source S] [--target REPOSITORY]",
     "Applies the retention policy ([retention], and the keep_* keys of each\n"
     "source and repository): per source and repository, every backup with keep\n"
     "or remove and the rules that keep it (daily 2026-12-03, monthly 2026-11,\n"
     "last 3, min_keep, within 30d, newest), then what was deleted, counts and\n"
     "bytes. Running backups and each source's newest complete backup are never\n"
     "removed. A deletion marks the copy deleting in the catalog, then deletes\n"
     "the manifest, then the objects; a prune killed anywhere is finished by the\n"
     "next prune or 'coffer repo cleanup'. Backups under S3 object lock are kept\n"
     "and reported as locked. Exit status: that of the first deletion that\n"
     "failed (the others go on, and what was deleted stays deleted).\n"
     "\n"
     "options:\n"
     "  --dry-run             show the plan, delete nothing\n"
     "  --source S            only source S\n"
     "  --target REPOSITORY   only that repository (primary, or a [repository NAME])\n"},
    {"verify", cmd_verify,
     "coffer verify (ID... | --latest | --all | --drill ID | --drill --latest) [--source S] "
     "[--target REPOSITORY] [--identity FILE]",
     "Checks every object of the backups named (or the newest of each source,\n"
     "or all) in every configured repository that holds them: each exists with\n"
     "the recorded size and SHA-256 (read in full) and its age header has one\n"
     "X25519 stanza per recorded recipient. With an identity (--identity, or\n"
     "[encryption] identity) each is also decrypted and decompressed to its end\n"
     "and its format checked: a tar read entry by entry, a pg_dump archive's\n"
     "header, a SQL dump's completion line, an RDB's EOF opcode and CRC-64.\n"
     "Prints ok or the first problem per backup and repository, with bytes read\n"
     "and throughput, and records the result in the catalog (coffer show).\n"
     "Exit 4 when a copy failed.\n"
     "\n"
     "options:\n"
     "  --latest              the newest complete backup of each source\n"
     "  --drill               a restore drill (below) instead of a read-back\n"
     "  --all                 every complete backup\n"
     "  --source S            only source S\n"
     "  --target REPOSITORY   only that repository (primary, or a [repository NAME])\n"
     "  --identity FILE       age identity file: also check the content\n"
     "\n"
     "coffer verify --drill (ID | --latest) [--source S] [--target REPOSITORY]\n"
     "              [--identity FILE]\n"
     "Restores a database backup (postgres, postgres-physical, mysql, redis,\n"
     "sqlite) into a throwaway server started from the host's binaries in\n"
     "$TMPDIR/coffer-drill.*, counts\n"
     "every table's rows and the objects per kind, compares them with the source's\n"
     "previous drill (flags: tables vanished or shrunk by more than\n"
     "drill_shrink_warn) and with the counts recorded at backup (row_counts =\n"
     "true), and measures the recovery time against the source's rto_target. The\n"
     "report is kept in the catalog (coffer show). Exit 4 when the drill failed.\n"},
    {"status", cmd_status, "coffer status [SOURCE...]",
     "For a monitoring check: per configured source (or those named), its newest\n"
     "complete backup and that backup's age against the source's expect_every,\n"
     "copies pending, the last run's failure, the last verify and drill, backups\n"
     "running. Reads only the catalog. Exit 0 when every source is fresh and\n"
     "healthy, else 11 with one error line naming each source and its first\n"
     "problem.\n"},
    {"check", cmd_check, "coffer check [SOURCE...]",
     "Checks a configuration before it is trusted, one line per check: it\n"
     "loads; the catalog opens; there are recipients; the identity loads, or\n"
     "with identity_on_host = false is NOT readable by this user; every\n"
     "repository takes a probe object under .coffer-check/ (written with the\n"
     "target's object lock, listed, read back, deleted); every source (or those\n"
     "named) is reached without storing anything: the server answers with the\n"
     "source's credentials and its dump tool is installed and new enough (types\n"
     "without such a check are skipped, saying so). Every check runs; exit 0 when\n"
     "all passed, else the status of the first failure, with one error line.\n"},
    {"wal-push", cmd_wal_push, "coffer wal-push [--source S] PATH",
     "PostgreSQL's archive_command for a postgres-physical source:\n"
     "archive_command = 'coffer wal-push --source S %p'. Stores the WAL file PATH\n"
     "(compressed, encrypted) in every repository of the source and exits 0 only\n"
     "when at least copies_required hold it. A file already archived with the\n"
     "same content succeeds; with other content it fails (two clusters archiving\n"
     "into one source). With wal_async = true the file is queued in the spool\n"
     "(fsynced) and a background pusher uploads the queue; its failure is\n"
     "reported by the next wal-push. --source may be left out when the\n"
     "configuration has one postgres-physical source.\n"
     "\n"
     "options:\n"
     "  --source S            the postgres-physical source\n"
     "  --background          (no PATH) upload the spool's queue, then exit: what\n"
     "                        wal-push starts itself; by hand after a pusher was\n"
     "                        killed\n"},
    {"wal-fetch", cmd_wal_fetch, "coffer wal-fetch [--source S] [--identity FILE] NAME DEST",
     "PostgreSQL's restore_command: restore_command = 'coffer wal-fetch --source S\n"
     "%f %p' (restore --to-datadir writes it). Fetches WAL file NAME into DEST\n"
     "atomically, from the first repository that holds it, and prefetches the\n"
     "next wal_prefetch segments in the background. Exit 0 when fetched, 1 when\n"
     "NAME is not in the archive (PostgreSQL's end of recovery), 126 for any other\n"
     "failure (an unreachable repository, a damaged object, a hole in the\n"
     "archive), which makes PostgreSQL stop the recovery instead of ending it.\n"
     "\n"
     "options:\n"
     "  --source S            the postgres-physical source\n"
     "  -i, --identity FILE   the age identity file (default: [encryption] identity)\n"
     "  --background NAME     prefetch the segments after NAME into the spool, then\n"
     "                        exit: what wal-fetch starts itself\n"},
    {"catalog", cmd_catalog, "coffer catalog rebuild [--trust-unsigned]",
     "Records every backup whose manifest is in the repository in the local\n"
     "catalog (for a new host, or after losing /var/lib/coffer), and forgets\n"
     "complete backups whose manifest is gone.\n"
     "\n"
     "options:\n"
     "  --trust-unsigned      also record backups whose manifest is unsigned or\n"
     "                        signed by an untrusted key\n"},
    {"repo", cmd_repo, "coffer repo cleanup [--older-than AGE]",
     "Removes leftovers of interrupted backups: marks this host's dead runs as\n"
     "failed, deletes temporary files and backup folders without a manifest that\n"
     "are older than AGE. Never touches a backup that has a manifest.\n"
     "\n"
     "options:\n"
     "  --older-than AGE      age of leftovers to remove: 90s, 30m, 24h (default), 7d;\n"
     "                        0 removes all not in use\n"},
    {"help", main_help, "coffer help [COMMAND]",
     "Prints the list of commands and the global options, or the help of COMMAND\n"
     "(as 'coffer COMMAND --help' does).\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_globals[] =
    "global options (before or after the command word; --config only before):\n"
    "  -c, --config FILE     the configuration file (default: $COFFER_CONFIG, else\n"
    "                        " CONFIG_DEFAULT_PATH ")\n"
    "  --json                print the output as one JSON document (docs/json.md)\n"
    "  -q, --quiet           print errors only, and the data the command prints\n"
    "  -v, --verbose         info lines: each object stored or restored; twice (-vv):\n"
    "                        each file and debug lines\n"
    "  --log-format FORMAT   text (default: coffer: LEVEL: [SOURCE ID] message)\n"
    "                        or json (one object a line: time, level, source,\n"
    "                        backup, message), for log collectors; default\n"
    "                        $COFFER_LOG_FORMAT\n"
    "  -h, --help            print help (after a command: that command's)\n"
    "  --version             print coffer's version\n";

static void main_usage(FILE *out)
{
	fprintf(out,
	        "usage: coffer [--config FILE] [--json] [--quiet] [--verbose] COMMAND [ARGS]\n\n"
	        "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out, "  coffer --version\n\n%s", main_globals);
}

static const struct command *main_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void main_command_help(const struct command *c)
{
	printf("usage: %s\n\n%s\n%s", c->usage, c->help, main_globals);
}

static int main_help(const struct cli *cli, int argc, char **argv)
{
	const struct command *c;

	(void)cli;
	if (argc < 2) {
		main_usage(stdout);
		return 0;
	}
	if (argc > 2)
		return error_set(CF_ERR_USAGE, "usage: coffer help [COMMAND]");
	c = main_find(argv[1]);
	if (!c)
		return error_set(CF_ERR_USAGE, "no command '%s' (see 'coffer help')", argv[1]);
	main_command_help(c);
	return 0;
}

/*
 * The global flags are accepted after the command word too (`coffer list
 * --json`), so they are taken out of the command's arguments here, once,
 * up to a "--"; the commands never see them. --help or -h there asks for
 * the command's help. An option value that is literally one of these words
 * is written --opt=VALUE. Returns 1 when help was asked for.
 */
static int main_take_globals(struct cli *cli, int *quiet, int *argc, char **argv)
{
	int n = 1, help = 0;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < *argc)
				argv[n++] = argv[i++];
			break;
		}
		if (!strcmp(a, "--json"))
			cli->json = 1;
		else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
			*quiet = 1;
		else if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
			cli->verbose++;
		else if (!strcmp(a, "-vv"))
			cli->verbose += 2;
		else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			help = 1;
		else if (!strcmp(a, "--log-format") && i + 1 < *argc)
			cli->log_format = argv[++i];
		else if (!strncmp(a, "--log-format=", 13))
			cli->log_format = a + 13;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	*argc = n;
	return help;
}

/* After a command that changes the catalog, the metrics file (if one is
 * configured) is written again; failing to is a warning, never the
 * command's failure. The command's error message is kept for main. */
static void main_metrics(const struct cli *cli, const char *name, int rc)
{
	static const char *const changing[] = {"backup", "prune",   "verify", "replicate",
	                                       "repo",   "catalog", NULL};
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	char msg[2048];
	int i = 0, mrc;

	while (changing[i] && strcmp(changing[i], name) != 0)
		i++;
	if (!changing[i])
		return;
	snprintf(msg, sizeof(msg), "%s", error_message());
	mrc = config_load(cli->config_path, &cfg);
	if (!mrc && cfg->metrics_file)
		mrc = agent_open_catalog(cfg, &cat);
	if (!mrc && cfg->metrics_file)
		mrc = status_metrics_write(cfg, cat);
	if (mrc && cfg && cfg->metrics_file)
		log_warn("cannot update the metrics file: %s", error_message());
	catalog_close(cat);
	config_free(cfg);
	error_clear();
	if (rc)
		error_set(rc, "%s", msg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"quiet", no_argument, NULL, 'q'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"log-format", required_argument, NULL, 'L'},
	                                     {NULL, 0, NULL, 0}};
	struct cli cli;
	const struct command *cmd = NULL;
	const char *env;
	int opt, rc, quiet = 0, help = 0;

	memset(&cli, 0, sizeof(cli));
	/* File names go into tar headers as UTF-8 (pax), which libarchive converts
	 * from the locale's charset: use UTF-8 whatever locale a timer runs in.
	 * Names that are not valid UTF-8 are stored as raw bytes. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	env = getenv("COFFER_CONFIG");
	cli.config_path = env && *env ? env : CONFIG_DEFAULT_PATH;
	env = getenv("COFFER_LOG_FORMAT");
	cli.log_format = env && *env ? env : NULL;
	/* Commands report a bad option in their one error line, not getopt. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:c:qvh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cli.config_path = optarg;
			break;
		case 'j':
			cli.json = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			cli.verbose++;
			break;
		case 'V':
			printf("coffer %s\n", COFFER_VERSION);
			return 0;
		case 'h':
			help = 1;
			break;
		case 'L':
			cli.log_format = optarg;
			break;
		default:
			agent_option_error(opt, argv, "see 'coffer help'");
			log_error("%s", error_message());
			return agent_exit_code(CF_ERR_USAGE);
		}
	}
	if (optind >= argc) {
		if (help) {
			main_usage(stdout);
			return 0;
		}
		main_usage(stderr);
		return agent_exit_code(CF_ERR_USAGE);
	}
	argc -= optind;
	argv += optind;
	if (main_take_globals(&cli, &quiet, &argc, argv))
		help = 1;
	log_set_level(cli.verbose >= 2 ? LOG_LEVEL_DEBUG
	              : cli.verbose    ? LOG_LEVEL_INFO
	                               : LOG_LEVEL_WARN);
	if (quiet)
		log_set_level(LOG_LEVEL_ERROR);
	if (cli.log_format) {
		enum log_format f;

		if (log_parse_format(cli.log_format, &f)) {
			log_error("%s", error_message());
			return agent_exit_code(CF_ERR_USAGE);
		}
		log_set_format(f);
	}
	cli.quiet = quiet;
	cli.progress = !quiet && !cli.json && isatty(STDERR_FILENO);

	error_clear();
	cmd = main_find(argv[0]);
	if (!cmd) {
		rc = error_set(CF_ERR_USAGE, "no command '%s' (see 'coffer help')", argv[0]);
	} else if (help) {
		main_command_help(cmd);
		rc = 0;
	} else if (cmd->run == main_help) {
		rc = main_help(&cli, argc, argv);
	} else {
		agent_signals_install();
		rc = age_init();
		if (!rc)
			rc = cmd->run(&cli, argc, argv);
		main_metrics(&cli, cmd->name, rc);
	}
	/* Output that did not reach its file (a full disk under `coffer list >
	 * FILE`) is a failure too, not a success with a truncated answer. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int e = errno;

		if (!rc)
			rc = error_set_errno(e == ENOSPC ? CF_ERR_NOSPACE : CF_ERR_IO, e,
			                     "cannot write the output");
	}
	if (rc && error_message()[0])
		log_error("%s", error_message());
	return agent_exit_code(rc);
}
