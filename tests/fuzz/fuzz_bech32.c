/*
 * fuzz_bech32: the age key strings (crypto/bech32.c, crypto/age_key.c) as a
 * configuration or a command line gives them: age_recipients_add(),
 * age_recipient_fingerprint(), age_identities_add() and
 * age_identity_to_recipient() on the input as one NUL-terminated string (an
 * embedded NUL ends it early, as it would in C).
 *
 * Any string may be refused. These must agree, else abort():
 *   - a recipient the set accepts has a fingerprint, and the other way round;
 *   - an identity the set accepts has a recipient, that recipient is accepted,
 *     and the other way round.
 */
#include "crypto/crypto.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

static void fuzz_bech32_recipient(const char *text)
{
	struct age_recipients *r = NULL;
	char fp[AGE_FINGERPRINT_LEN + 1];
	int added, printed;

	if (age_recipients_new(&r))
		abort();
	added = age_recipients_add(r, text);
	printed = age_recipient_fingerprint(text, fp);
	if ((added == 0) != (printed == 0) || (added == 0 && strlen(fp) != AGE_FINGERPRINT_LEN))
		abort();
	age_recipients_free(r);
}

static void fuzz_bech32_identity(const char *text)
{
	struct age_identities *ids = NULL;
	struct age_recipients *r = NULL;
	char recipient[AGE_RECIPIENT_LEN + 1];
	int added, derived;

	if (age_identities_new(&ids) || age_recipients_new(&r))
		abort();
	added = age_identities_add(ids, text);
	derived = age_identity_to_recipient(text, recipient);
	if ((added == 0) != (derived == 0))
		abort();
	if (added == 0 && (age_identities_count(ids) != 1 || age_recipients_add(r, recipient) != 0))
		abort();
	age_identities_free(ids);
	age_recipients_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	if (age_init())
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_bech32_recipient(text);
	fuzz_bech32_identity(text);
	free(text);
	error_clear();
	return 0;
}
