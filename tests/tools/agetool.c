/*
 * agetool: a minimal age command line over coffer's crypto filters, so the
 * integration tests can check interoperability with the real age binaries.
 *
 *   agetool keygen                          identity file to stdout
 *   agetool encrypt -r age1... [-r ...]     stdin -> stdout
 *   agetool encrypt -p                      passphrase from $AGETOOL_PASSPHRASE
 *   agetool decrypt -i FILE [-i FILE] [-p]  stdin -> stdout
 *
 * It is a test helper, not a user tool: no armor, no output files, and a
 * passphrase is read from the environment (never argv, which ps shows).
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGETOOL_READ_SIZE 65536
#define AGETOOL_SCRYPT_LOG2N 18

static int agetool_fail(int rc)
{
	const char *msg = error_message();

	fprintf(stderr, "agetool: %s\n", msg[0] ? msg : cf_strerror(rc));
	return 1;
}

static int agetool_usage(void)
{
	fprintf(stderr, "usage: agetool keygen\n"
	                "       agetool encrypt (-r RECIPIENT ... | -p) < in > out\n"
	                "       agetool decrypt (-i IDENTITY_FILE ... | -p) < in > out\n"
	                "       -p reads the passphrase from $AGETOOL_PASSPHRASE\n");
	return 2;
}

/* Copies stdin through the chain to its end. */
static int agetool_pump(struct filter *head)
{
	uint8_t *data = malloc(AGETOOL_READ_SIZE);
	int rc = 0;

	if (!data)
		return error_set(CF_ERR_NOMEM, "out of memory");
	while (!rc) {
		ssize_t n = read(STDIN_FILENO, data, AGETOOL_READ_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot read standard input");
		else if (n == 0)
			break;
		else
			rc = filter_write(head, data, (size_t)n);
	}
	if (!rc)
		rc = filter_finish(head);
	free(data);
	return rc;
}

static int agetool_keygen(void)
{
	char *identity = sodium_malloc(AGE_IDENTITY_LEN + 1);
	char recipient[AGE_RECIPIENT_LEN + 1];
	char created[TIME_ISO_LEN + 1];
	int rc;

	if (!identity)
		return agetool_fail(error_set(CF_ERR_NOMEM, "out of secure memory"));
	rc = age_keygen(identity, recipient);
	if (!rc) {
		time_format_iso(time_now_ms(), created, sizeof(created));
		printf("# created: %s\n# public key: %s\n%s\n", created, recipient, identity);
		fprintf(stderr, "Public key: %s\n", recipient);
		if (fflush(stdout) != 0)
			rc = error_set_errno(CF_ERR_IO, errno, "cannot write standard output");
	}
	sodium_free(identity);
	return rc ? agetool_fail(rc) : 0;
}

static const char *agetool_passphrase(void)
{
	const char *p = getenv("AGETOOL_PASSPHRASE");

	if (!p || !p[0]) {
		error_set(CF_ERR_USAGE, "-p needs the passphrase in $AGETOOL_PASSPHRASE");
		return NULL;
	}
	return p;
}

static int agetool_encrypt(int argc, char **argv)
{
	struct age_recipients *r = NULL;
	struct filter *chain = NULL, *sink = NULL;
	const char *pass;
	int rc = age_recipients_new(&r), i;

	for (i = 0; !rc && i < argc; i++) {
		if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
			rc = age_recipients_add(r, argv[++i]);
		} else if (strcmp(argv[i], "-p") == 0) {
			pass = agetool_passphrase();
			rc = pass ? age_recipients_add_passphrase(r, pass, AGETOOL_SCRYPT_LOG2N)
			          : CF_ERR_USAGE;
		} else {
			age_recipients_free(r);
			return agetool_usage();
		}
	}
	if (!rc)
		rc = age_encrypt_filter_new(r, NULL, NULL, &chain);
	if (!rc) {
		rc = filter_fd_new(STDOUT_FILENO, "standard output", &sink);
	}
	if (!rc) {
		filter_chain(chain, sink, NULL);
		sink = NULL;
		rc = agetool_pump(chain);
	}
	filter_chain_free(sink);
	filter_chain_free(chain);
	age_recipients_free(r);
	return rc ? agetool_fail(rc) : 0;
}

static int agetool_decrypt(int argc, char **argv)
{
	struct age_identities *ids = NULL;
	struct filter *chain = NULL, *sink = NULL;
	const char *pass;
	int rc = age_identities_new(&ids), i;

	for (i = 0; !rc && i < argc; i++) {
		if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
			rc = age_identities_load_file(ids, argv[++i]);
		} else if (strcmp(argv[i], "-p") == 0) {
			pass = agetool_passphrase();
			rc = pass ? age_identities_add_passphrase(ids, pass) : CF_ERR_USAGE;
		} else {
			age_identities_free(ids);
			return agetool_usage();
		}
	}
	if (!rc && age_identities_count(ids) == 0) {
		age_identities_free(ids);
		return agetool_usage();
	}
	if (!rc)
		rc = age_decrypt_filter_new(ids, &chain);
	if (!rc) {
		rc = filter_fd_new(STDOUT_FILENO, "standard output", &sink);
	}
	if (!rc) {
		filter_chain(chain, sink, NULL);
		sink = NULL;
		rc = agetool_pump(chain);
	}
	filter_chain_free(sink);
	filter_chain_free(chain);
	age_identities_free(ids);
	return rc ? agetool_fail(rc) : 0;
}

int main(int argc, char **argv)
{
	if (age_init() != 0)
		return agetool_fail(CF_ERR_INTERNAL);
	if (argc < 2)
		return agetool_usage();
	if (strcmp(argv[1], "keygen") == 0 && argc == 2)
		return agetool_keygen();
	if (strcmp(argv[1], "encrypt") == 0)
		return agetool_encrypt(argc - 2, argv + 2);
	if (strcmp(argv[1], "decrypt") == 0)
		return agetool_decrypt(argc - 2, argv + 2);
	return agetool_usage();
}
