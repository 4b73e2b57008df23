/*
 * fuzz_age_header: the age decrypt filter (crypto/age_header.c and
 * crypto/age_stream.c) on arbitrary bytes, as a restore reads them from a
 * repository it does not trust.
 *
 * Input layout: two control bytes, then the age file. The control bytes seed
 * the choice of write sizes (all at once, byte by byte, small or large random
 * pieces, with empty writes mixed in), so the header scanner and the chunk
 * framing see every way a file can be split across filter_write() calls.
 * Then filter_finish(). Any return code is fine; a crash, leak or undefined
 * behaviour is not.
 *
 * The identities are one fixed X25519 key (the seeds are encrypted to it) and
 * one passphrase. A scrypt stanza is refused above 2^22 by the library, but
 * 2^22 itself costs 4 GiB and seconds, which would make the fuzzer report
 * out-of-memory and timeouts instead of bugs; so when the input holds a
 * scrypt stanza with a work factor between FUZZ_SCRYPT_MAX_LOG2N and 2^22 the
 * passphrase is left out (the stanza is then skipped, as without a
 * passphrase). Work factors above 2^22 still reach the refusal.
 */
#include "crypto/crypto.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

/* age1w4tn47hv33qn6m5dh7jltxj8yy9xrcq8j6x6x2xgmmr0flhxeausqntvst */
#define FUZZ_AGE_IDENTITY                                                                          \
	"AGE-SECRET-KEY-1EDGAE282P3RL4NLFF2C04WYT9A8V7CY375M2J29K99MYHANYAY7SJD5HXM"
#define FUZZ_AGE_PASSPHRASE "coffer-fuzz"
/* 2^12 is 4 MiB and a few milliseconds of scrypt. */
#define FUZZ_SCRYPT_MAX_LOG2N 12
#define FUZZ_SCRYPT_LIBRARY_MAX_LOG2N 22

static struct age_identities *fuzz_ids_all;    /* X25519 key and passphrase */
static struct age_identities *fuzz_ids_x25519; /* X25519 key only */

static void fuzz_age_setup(void)
{
	if (fuzz_ids_all)
		return;
	log_set_level(LOG_LEVEL_ERROR);
	if (age_init() || age_identities_new(&fuzz_ids_all) ||
	    age_identities_new(&fuzz_ids_x25519) ||
	    age_identities_add(fuzz_ids_all, FUZZ_AGE_IDENTITY) ||
	    age_identities_add(fuzz_ids_x25519, FUZZ_AGE_IDENTITY) ||
	    age_identities_add_passphrase(fuzz_ids_all, FUZZ_AGE_PASSPHRASE))
		abort();
}

/*
 * 1 if some line of data is "-> scrypt ..." ending in a work factor that is
 * too slow to fuzz but not refused by the library. It errs towards yes: it
 * looks at every line, not only those of the header.
 */
static int fuzz_age_slow_scrypt(const uint8_t *data, size_t size)
{
	static const char prefix[] = "-> scrypt ";
	size_t pos = 0;

	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;

		if (end - pos > sizeof(prefix) - 1 &&
		    memcmp(data + pos, prefix, sizeof(prefix) - 1) == 0) {
			size_t start = end, log2n = 0;

			while (start > pos && data[start - 1] >= '0' && data[start - 1] <= '9')
				start--;
			/* More than two digits is a syntax error, refused before scrypt. */
			for (size_t i = start; i < end && end - start <= 2; i++)
				log2n = log2n * 10 + (size_t)(data[i] - '0');
			if (log2n > FUZZ_SCRYPT_MAX_LOG2N && log2n <= FUZZ_SCRYPT_LIBRARY_MAX_LOG2N)
				return 1;
		}
		pos = end + 1;
	}
	return 0;
}

/* xorshift32: cheap and deterministic, seeded from the control bytes. */
static uint32_t fuzz_age_next(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* How many bytes the next write takes, in mode 0..3. */
static size_t fuzz_age_piece(unsigned mode, uint32_t *state, size_t left)
{
	size_t n;

	switch (mode) {
	case 0:
		n = left;
		break;
	case 1:
		n = 1;
		break;
	case 2:
		n = fuzz_age_next(state) % 65; /* 0..64: empty writes included */
		break;
	default:
		n = fuzz_age_next(state) % (2 * 65536 + 64);
		break;
	}
	return n < left ? n : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct age_identities *ids;
	struct filter *dec = NULL, *sink, *head;
	uint32_t state;
	unsigned mode;
	size_t pos = 0;
	int rc;

	fuzz_age_setup();
	if (size < 2)
		return 0;
	state = (uint32_t)data[0] | (uint32_t)data[1] << 8;
	mode = state & 3;
	state = state * 2654435761u | 1; /* xorshift must not start at 0 */
	data += 2;
	size -= 2;

	ids = fuzz_age_slow_scrypt(data, size) ? fuzz_ids_x25519 : fuzz_ids_all;
	rc = age_decrypt_filter_new(ids, &dec);
	if (rc)
		return 0;
	if (filter_null_new(&sink)) {
		filter_chain_free(dec);
		return 0;
	}
	head = filter_chain(dec, sink, NULL);
	while (!rc && pos < size) {
		size_t n = fuzz_age_piece(mode, &state, size - pos);

		rc = filter_write(head, data + pos, n);
		pos += n;
	}
	if (!rc)
		(void)filter_finish(head);
	filter_chain_free(head);
	error_clear();
	return 0;
}
