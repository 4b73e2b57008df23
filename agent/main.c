/*
 * main: coffer's command line. Parses the global options, dispatches to a
 * command, and turns its result into one error line and an exit status.
 */
#include "agent/agent.h"

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

static const struct command commands[] = {
    {"backup", cmd_backup, "coffer backup [SOURCE...] [--stdin NAME]",
     "Backs up the named sources (all configured sources if none is named), or\n"
     "standard input as source NAME. Each source becomes one backup: its streams are\n"
     "compressed with zstd, encrypted to the configured age recipients and stored in\n"
     "the repository, with a manifest written last. Prints one line per backup\n"
     "(a JSON record per line with --json)."},
    {"list", cmd_list, "coffer list [--source S] [--json]",
     "Lists the backups in the local catalog, oldest first, with their status\n"
     "(running, complete, failed) and sizes. --json prints a JSON array."},
    {"show", cmd_show, "coffer show ID [--json]",
     "Shows one backup record: objects, sizes, SHA-256, recipients, error."},
    {"restore", cmd_restore,
     "coffer restore ID (--to DIR | --stdout) [--identity FILE] [--object NAME]",
     "Restores a backup. --to DIR restores every object into DIR (which must not\n"
     "exist or be empty): raw streams as files named after the object, tar streams\n"
     "extracted. DIR appears only once everything is verified. --stdout writes the\n"
     "plaintext of one object (choose with --object when there are several).\n"
     "The identity comes from --identity or [encryption] identity."},
    {"keygen", cmd_keygen, "coffer keygen [-o FILE]",
     "Generates an age X25519 identity. With -o, writes it to FILE (mode 0600,\n"
     "never overwriting) and prints the public recipient; otherwise prints the\n"
     "identity file to standard output."},
    {"catalog", cmd_catalog, "coffer catalog rebuild",
     "Records every backup whose manifest is in the repository in the local\n"
     "catalog (for a new host, or after losing /var/lib/coffer)."},
    {"repo", cmd_repo, "coffer repo cleanup [--older-than AGE]",
     "Removes leftovers of interrupted backups: marks this host's dead runs as\n"
     "failed, deletes temporary files and backup folders without a manifest that\n"
     "are older than AGE (default 24h; 0 removes all not in use). Never touches a\n"
     "backup that has a manifest."},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void main_usage(FILE *out)
{
	fprintf(out,
	        "usage: coffer [--config FILE] [--json] [--quiet] [--verbose] COMMAND [ARGS]\n\n"
	        "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out,
	        "  coffer help COMMAND\n  coffer --version\n\n"
	        "The configuration is read from --config, $COFFER_CONFIG or " CONFIG_DEFAULT_PATH
	        ".\n");
}

static const struct command *main_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int main_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		main_usage(stdout);
		return 0;
	}
	c = main_find(argv[1]);
	if (!c) {
		error_set(CF_ERR_USAGE, "no command '%s' (see 'coffer help')", argv[1]);
		return CF_ERR_USAGE;
	}
	printf("usage: %s\n\n%s\n", c->usage, c->help);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"quiet", no_argument, NULL, 'q'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct cli cli;
	const struct command *cmd;
	const char *env;
	int opt, rc, quiet = 0;

	memset(&cli, 0, sizeof(cli));
	/* File names go into tar headers as UTF-8 (pax), which libarchive converts
	 * from the locale's charset: use UTF-8 whatever locale a timer runs in.
	 * Names that are not valid UTF-8 are stored as raw bytes. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	env = getenv("COFFER_CONFIG");
	cli.config_path = env && *env ? env : CONFIG_DEFAULT_PATH;
	while ((opt = getopt_long(argc, argv, "+c:qvh", opts, NULL)) != -1) {
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
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return agent_exit_code(CF_ERR_USAGE);
		}
	}
	if (optind >= argc) {
		main_usage(stderr);
		return agent_exit_code(CF_ERR_USAGE);
	}
	log_set_level(cli.verbose >= 2 ? LOG_LEVEL_DEBUG
	              : cli.verbose    ? LOG_LEVEL_INFO
	                               : LOG_LEVEL_WARN);
	if (quiet)
		log_set_level(LOG_LEVEL_ERROR);
	cli.progress = !quiet && !cli.json && isatty(STDERR_FILENO);

	argc -= optind;
	argv += optind;
	error_clear();
	if (!strcmp(argv[0], "help")) {
		rc = main_help(argc, argv);
	} else if (!(cmd = main_find(argv[0]))) {
		rc = error_set(CF_ERR_USAGE, "no command '%s' (see 'coffer help')", argv[0]);
	} else {
		agent_signals_install();
		rc = age_init();
		if (!rc)
			rc = cmd->run(&cli, argc, argv);
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
