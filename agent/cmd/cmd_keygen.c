/*
 * cmd_keygen: `coffer keygen [-o FILE]` writes a new X25519 identity in the
 * format of age-keygen (readable by `age -d -i FILE`) and prints its
 * recipient. The file is created with mode 0600 and never overwritten.
 * `coffer keygen --signing [-o FILE]` makes this host's manifest signing key
 * (by default beside the catalog, where backups use it) if there is none, and
 * prints its public key, for the trusted_signers of restore hosts.
 * With --json each prints one JSON object (docs/json.md, docs/schema/keygen.json).
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Prints {"KEY": value, "file": path} (no secret in it). */
static int cmd_keygen_print_json(const char *key, const char *value, const char *path)
{
	return agent_print_json(json_pack("{s:s, s:s}", key, value, "file", path));
}

static int cmd_keygen_signing(const struct cli *cli, const char *out)
{
	struct config *cfg = NULL;
	struct sign_key *k = NULL;
	char path[4096];
	int rc = 0;

	if (out) {
		snprintf(path, sizeof(path), "%s", out);
	} else {
		rc = config_load(cli->config_path, &cfg);
		if (!rc)
			agent_signing_key_path(cfg, path, sizeof(path));
	}
	if (!rc)
		rc = sign_key_load(path, 1, &k);
	if (!rc && cli->json)
		rc = cmd_keygen_print_json("signing_key", sign_key_public(k), path);
	else if (!rc)
		printf("%s\n", sign_key_public(k));
	sign_key_free(k);
	config_free(cfg);
	return rc;
}

int cmd_keygen(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"signing", no_argument, NULL, 's'},
	                                     {"output", required_argument, NULL, 'o'},
	                                     {NULL, 0, NULL, 0}};
	int signing = 0;
	const char *out = NULL;
	char recipient[AGE_RECIPIENT_LEN + 1], created[32];
	char *identity = NULL, *text = NULL;
	size_t text_size = 512;
	time_t now = time(NULL);
	struct tm tm;
	int opt, rc = 0, fd = -1, n;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
		if (opt == 'o')
			out = optarg;
		else if (opt == 's')
			signing = 1;
		else
			return agent_option_error(opt, argv,
			                          "usage: coffer keygen [--signing] [-o FILE]");
	}
	if (optind != argc)
		return error_set(CF_ERR_USAGE, "usage: coffer keygen [--signing] [-o FILE]");
	if (signing)
		return cmd_keygen_signing(cli, out);
	/* Secrets stay in guarded memory and are wiped when freed. */
	identity = sodium_malloc(AGE_IDENTITY_LEN + 1);
	text = sodium_malloc(text_size);
	if (!identity || !text) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = age_keygen(identity, recipient);
	if (rc)
		goto out;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(text, text_size, "# created: %s\n# public key: %s\n%s\n", created, recipient,
	             identity);
	if (n < 0 || (size_t)n >= text_size) {
		rc = error_set(CF_ERR_INTERNAL, "identity text too long");
		goto out;
	}
	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = error_set_errno(errno == EEXIST ? CF_ERR_EXISTS : CF_ERR_IO, errno,
			                     "cannot create identity file %s%s", out,
			                     errno == EEXIST ? " (refusing to overwrite it)" : "");
			goto out;
		}
		rc = fs_write_all(fd, text, (size_t)n, out);
		if (!rc && fsync(fd) != 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot fsync %s", out);
		close(fd);
		if (rc) {
			unlink(out);
			goto out;
		}
		if (cli->json)
			rc = cmd_keygen_print_json("recipient", recipient, out);
		else
			printf("%s\n", recipient);
	} else {
		/* The identity is the output, as without --json; it is built in
		 * guarded memory and written with one write, never through stdio's
		 * buffers. Recipient, identity and time are plain ASCII. */
		if (cli->json)
			n = snprintf(
			    text, text_size,
			    "{\"recipient\":\"%s\",\"identity\":\"%s\",\"created\":\"%s\"}\n",
			    recipient, identity, created);
		if (n < 0 || (size_t)n >= text_size)
			rc = error_set(CF_ERR_INTERNAL, "identity text too long");
		else
			rc = fs_write_all(STDOUT_FILENO, text, (size_t)n, "standard output");
	}
out:
	if (identity)
		sodium_free(identity);
	if (text)
		sodium_free(text);
	return rc;
}
