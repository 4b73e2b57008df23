/*
 * age_intern: declarations shared by the files of crypto/ and by nothing else.
 *
 * It holds the Bech32 codec, the layout of the recipient and identity sets
 * (so the header code can walk them), and the age header writer, parser and
 * stanza unwrapper that the streaming filters drive. Callers outside crypto/
 * use crypto.h only.
 */
#ifndef COFFER_CRYPTO_AGE_INTERN_H
#define COFFER_CRYPTO_AGE_INTERN_H

#include "crypto/crypto.h"

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Bech32 (bech32.c)                                                          */
/* ------------------------------------------------------------------------ */

/*
 * Encodes data under the human-readable part hrp (given in lower case) with the
 * BIP-173 checksum. upper selects an all upper-case result (age identities).
 * There is no 90-character limit, as in age. out must hold
 * strlen(hrp) + 1 + ceil(len * 8 / 5) + 6 + 1 bytes.
 * Errors: CF_ERR_LIMIT if out is too small.
 */
int bech32_encode(const char *hrp, const uint8_t *data, size_t len, int upper, char *out,
                  size_t out_size);

/*
 * Decodes a Bech32 string whose human-readable part must equal hrp (compared
 * case-insensitively; pass it in lower case). The string must be all lower or
 * all upper case. Writes exactly len bytes to data. Returns 0, or -1 for any
 * defect (no error_set(): the caller knows what the string was meant to be).
 */
int bech32_decode(const char *hrp, const char *text, size_t text_len, uint8_t *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Recipient and identity sets (age_key.c)                                    */
/* ------------------------------------------------------------------------ */

#define AGE_FILE_KEY_LEN 16
#define AGE_X25519_LEN 32
#define AGE_SCRYPT_SALT_LEN 16
#define AGE_SCRYPT_MAX_LOG2N 22

enum age_recipient_type { AGE_RECIPIENT_X25519, AGE_RECIPIENT_SCRYPT };

struct age_recipient {
	enum age_recipient_type type;
	uint8_t public_key[AGE_X25519_LEN]; /* X25519 */
	char *passphrase;                   /* scrypt: sodium_malloc'd, NUL-terminated */
	int log2n;                          /* scrypt */
};

struct age_recipients {
	struct age_recipient *items;
	size_t count;
	size_t cap;
};

/* One X25519 identity; the whole struct lives in sodium_malloc memory. */
struct age_x25519_identity {
	uint8_t secret_key[AGE_X25519_LEN];
	uint8_t public_key[AGE_X25519_LEN];
};

struct age_identities {
	struct age_x25519_identity **x25519; /* each sodium_malloc'd */
	size_t x25519_count;
	size_t x25519_cap;
	char **passphrases; /* each sodium_malloc'd, NUL-terminated */
	size_t passphrase_count;
	size_t passphrase_cap;
};

/* ------------------------------------------------------------------------ */
/* Header (age_header.c)                                                      */
/* ------------------------------------------------------------------------ */

/* The header of a file being read may not grow past this many bytes. */
#define AGE_HEADER_MAX (1024 * 1024)
#define AGE_VERSION_LINE "age-encryption.org/v1"
#define AGE_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"

/*
 * Appends a complete header (version line, one stanza a recipient, MAC line)
 * for file_key to out. rnd supplies ephemeral keys and scrypt salts.
 * Errors: CF_ERR_KEY (empty set, unusable recipient), CF_ERR_NOMEM,
 * CF_ERR_LIMIT, CF_ERR_INTERNAL.
 */
int age_header_write(const struct age_recipients *r, const uint8_t file_key[AGE_FILE_KEY_LEN],
                     age_random_fn rnd, void *rnd_ctx, struct buf *out);

/*
 * Given the start of a file, says where its header ends: returns 1 and sets
 * *header_len (bytes through the '\n' of the MAC line) once the MAC line is
 * complete, 0 if more input is needed. *scan is the caller's resume offset
 * (start it at 0) so repeated calls over a growing buffer stay linear.
 * Errors: CF_ERR_UNSUPPORTED (armored), CF_ERR_AGE_HEADER (not an age v1 file).
 */
int age_header_find_end(const uint8_t *data, size_t len, size_t *scan, size_t *header_len);

/*
 * Parses a complete header, opens the stanza addressed to one of ids and checks
 * the header MAC; on success writes the file key. Errors: CF_ERR_AGE_HEADER,
 * CF_ERR_AGE_NOMATCH, CF_ERR_AGE_HMAC, CF_ERR_NOMEM.
 */
int age_header_open(const uint8_t *header, size_t len, const struct age_identities *ids,
                    uint8_t file_key[AGE_FILE_KEY_LEN]);

#endif
