/*
 * crypto: the age v1 file format (age-encryption.org/v1) on libsodium, age
 * keys in Bech32, HKDF-SHA-256, and the SHA-256 + size filter.
 *
 * Supported: X25519 recipients (any number per file) and scrypt passphrase
 * recipients, the header MAC, the STREAM payload in 64 KiB chunks, both
 * directions as streaming filters whose memory does not depend on the payload
 * size. Not supported: ASCII armor, plugin and ML-KEM hybrid recipients (files
 * using them are refused with CF_ERR_UNSUPPORTED or CF_ERR_AGE_NOMATCH).
 *
 * Secret material (file keys, identities, passphrases) is kept in
 * sodium_malloc() memory and wiped with sodium_memzero() when released.
 * Call age_init() once before anything else here.
 */
#ifndef COFFER_CRYPTO_H
#define COFFER_CRYPTO_H

#include "common/common.h"

#include <stddef.h>
#include <stdint.h>

/* Initialises libsodium. Errors: CF_ERR_INTERNAL. Safe to call more than once. */
int age_init(void);

/* ------------------------------------------------------------------------ */
/* Keys                                                                       */
/* ------------------------------------------------------------------------ */

/* "age1" + 58 Bech32 characters. */
#define AGE_RECIPIENT_LEN 62
/* "AGE-SECRET-KEY-1" + 58 Bech32 characters. */
#define AGE_IDENTITY_LEN 74
/* Hex characters of a recipient fingerprint (see age_recipient_fingerprint). */
#define AGE_FINGERPRINT_LEN 16

/*
 * Generates a new X25519 identity. identity receives the secret key string
 * (AGE_IDENTITY_LEN + 1 bytes, NUL-terminated; the caller passes sodium_malloc
 * memory and wipes it), recipient the matching public "age1..." string.
 * Errors: CF_ERR_INTERNAL.
 */
int age_keygen(char *identity, char recipient[AGE_RECIPIENT_LEN + 1]);

/* Writes the recipient string of an "AGE-SECRET-KEY-1..." identity string.
 * Errors: CF_ERR_KEY. */
int age_identity_to_recipient(const char *identity, char recipient[AGE_RECIPIENT_LEN + 1]);

/*
 * A short stable fingerprint of a recipient for the catalog: the first 16 hex
 * characters of SHA-256 of its canonical lower-case "age1..." string.
 * Errors: CF_ERR_KEY if recipient is not a valid X25519 recipient.
 */
int age_recipient_fingerprint(const char *recipient, char out[AGE_FINGERPRINT_LEN + 1]);
/* 1 if text looks like an age identity (a secret key: "AGE-SECRET-KEY-1...",
 * any case, or a plugin identity), which must never be echoed in an error,
 * a log line or an argv. */
int age_text_is_secret(const char *text);

/* A set of recipients to encrypt to. */
struct age_recipients;

/* Errors: CF_ERR_NOMEM. */
int age_recipients_new(struct age_recipients **out);
/* Adds one "age1..." X25519 recipient (surrounding white space ignored; all
 * upper case is accepted as age does, mixed case is not).
 * Errors: CF_ERR_KEY (the message names the bad string), CF_ERR_NOMEM. */
int age_recipients_add(struct age_recipients *r, const char *recipient);
/* Adds a scrypt passphrase recipient with work factor 2^log2n (age uses 18;
 * 1..22 is accepted, since decrypting refuses more than 22).
 * age allows a scrypt stanza only as the sole recipient of a file, so this
 * fails with CF_ERR_KEY if the set already has another recipient, and adding
 * anything after a passphrase fails likewise. Errors: CF_ERR_KEY, CF_ERR_NOMEM. */
int age_recipients_add_passphrase(struct age_recipients *r, const char *passphrase, int log2n);
/* Number of recipients in the set. */
size_t age_recipients_count(const struct age_recipients *r);
void age_recipients_free(struct age_recipients *r);

/* A set of identities to decrypt with. */
struct age_identities;

/* Errors: CF_ERR_NOMEM. */
int age_identities_new(struct age_identities **out);
/* Adds one "AGE-SECRET-KEY-1..." identity (upper or lower case, as age).
 * The error message never quotes the identity.
 * Errors: CF_ERR_KEY (also for ML-KEM hybrid and plugin identities),
 * CF_ERR_NOMEM. */
int age_identities_add(struct age_identities *ids, const char *identity);
/* Adds a passphrase for scrypt stanzas. As in age, a stanza with a work
 * factor above 2^22 makes decryption fail with CF_ERR_AGE_HEADER rather than
 * spend minutes and gigabytes. Errors: CF_ERR_NOMEM. */
int age_identities_add_passphrase(struct age_identities *ids, const char *passphrase);
/*
 * Loads an identity file as age-keygen writes it: "#" comment lines, blank
 * lines and one AGE-SECRET-KEY-1 per line (LF or CRLF). A file that group or
 * others can access is still loaded, with a log_warn(). The file is read into
 * sodium_malloc memory and wiped. Errors: CF_ERR_NOTFOUND, CF_ERR_IO,
 * CF_ERR_KEY (names the file and line; also for a file with no identity, or
 * one larger than 1 MiB), CF_ERR_NOMEM.
 */
int age_identities_load_file(struct age_identities *ids, const char *path);
size_t age_identities_count(const struct age_identities *ids);
void age_identities_free(struct age_identities *ids);

/* ------------------------------------------------------------------------ */
/* Streaming encryption and decryption                                        */
/* ------------------------------------------------------------------------ */

/*
 * A source of randomness: fills buf with n random bytes. NULL everywhere means
 * libsodium's randombytes_buf(); tests pass their own to pin the output.
 */
typedef void (*age_random_fn)(void *ctx, uint8_t *buf, size_t n);

/*
 * Creates a filter that encrypts everything written to it to the recipients in
 * r and emits a complete age file (header, nonce, STREAM chunks) downstream.
 * r must stay alive until the filter is freed. It buffers at most one 64 KiB
 * chunk. Errors (from new/write/finish): CF_ERR_NOMEM, CF_ERR_KEY (empty set),
 * and whatever the downstream filters return.
 */
int age_encrypt_filter_new(const struct age_recipients *r, age_random_fn rnd, void *rnd_ctx,
                           struct filter **out);

/*
 * Creates a filter that reads an age file and emits the plaintext downstream,
 * one authenticated 64 KiB chunk at a time. No byte of a chunk is emitted
 * before its tag verifies; a truncated or extended file fails at finish, so a
 * consumer must treat its output as valid only once filter_finish() succeeds.
 * ids must stay alive until the filter is freed (NULL: nothing matches).
 * Bounded memory: the header (refused past 1 MiB) plus one chunk.
 * Like age, an authenticated chunk is still passed on when the stream turns
 * out bad after it (a final chunk followed by trailing data, a middle chunk
 * at which the file ends); the error follows at once.
 * Errors: CF_ERR_AGE_HEADER (malformed header, unknown version, scrypt work
 * factor above 2^22, file ending before the 16-byte payload nonce),
 * CF_ERR_AGE_NOMATCH (no identity opens any stanza), CF_ERR_AGE_HMAC,
 * CF_ERR_AGE_PAYLOAD (bad tag, truncation, trailing data, empty last chunk),
 * CF_ERR_UNSUPPORTED (armored input), CF_ERR_NOMEM, and downstream errors.
 * Each error message says which step failed.
 */
int age_decrypt_filter_new(const struct age_identities *ids, struct filter **out);

/* ------------------------------------------------------------------------ */
/* Secret strings (secret.c)                                                  */
/* ------------------------------------------------------------------------ */

/* Copies of secrets (passwords, tokens, secret keys) in sodium_malloc memory:
 * locked, guarded, wiped by secret_free(). NULL on out of memory. */
char *secret_strdup(const char *s);
char *secret_strndup(const char *s, size_t n);
/* Wipes and frees a secret string; NULL does nothing. */
void secret_free(char *s);
/* Reads the first line of a secret file (a password file), without its
 * newline, at most 4095 bytes, into *out (free with secret_free()). what
 * names the file in errors ("password file"). Errors: CF_ERR_CONFIG (cannot
 * read it, or it is empty), CF_ERR_NOMEM. */
int secret_read_line(const char *path, const char *what, char **out);

/* ------------------------------------------------------------------------ */
/* Hashing                                                                    */
/* ------------------------------------------------------------------------ */

#define HASH_SHA256_LEN 32
#define HASH_SHA256_HEX_LEN 64
#define HASH_MD5_LEN 16

/* The digests of data (SHA-256, MD5) come from OpenSSL's libcrypto, which uses
 * the CPU's SHA instructions; the keyed primitives stay on libsodium. */

/*
 * A pass-through filter that counts the bytes flowing through it and computes
 * their SHA-256. Errors: CF_ERR_NOMEM, CF_ERR_INTERNAL (libcrypto failed, with
 * its reason), and downstream errors.
 */
int hash_filter_new(struct filter **out);
/* After filter_finish(): the digest as lower-case hex and the byte count.
 * Before it, hex is "" (the count is the bytes seen so far). bytes may be NULL. */
void hash_filter_result(const struct filter *f, char hex[HASH_SHA256_HEX_LEN + 1], uint64_t *bytes);

/* SHA-256 of a buffer as lower-case hex. On failure hex is "". Errors:
 * CF_ERR_INTERNAL (libcrypto failed, with its reason; in practice only out of
 * memory for its context). */
int hash_sha256_hex(const void *data, size_t len, char hex[HASH_SHA256_HEX_LEN + 1]);
/* MD5 of a buffer (S3's Content-MD5 and ETags; not for anything that needs a
 * secure hash). Errors: as hash_sha256_hex(). */
int hash_md5(const void *data, size_t len, uint8_t out[HASH_MD5_LEN]);

/* HKDF-SHA-256 (RFC 5869) built on libsodium's HMAC-SHA-256. okm_len <= 255*32.
 * Errors: CF_ERR_INTERNAL for a bad length. */
int hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len, uint8_t *okm, size_t okm_len);

/* ------------------------------------------------------------------------ */
/* Manifest signing keys (sign.c)                                             */
/* ------------------------------------------------------------------------ */

/* "ed25519:" + base64 of the 32-byte public key. */
#define SIGN_PUBLIC_TEXT_LEN 52
/* base64 of a 64-byte Ed25519 signature. */
#define SIGN_SIGNATURE_TEXT_LEN 88

struct sign_key;

/*
 * Loads the Ed25519 signing key in path; with create, makes one (mode 0600,
 * never replacing a file) when there is none. A file others can read is
 * refused. Errors: CF_ERR_NOTFOUND, CF_ERR_KEY (malformed, or readable by
 * others), CF_ERR_IO, CF_ERR_NOMEM.
 */
int sign_key_load(const char *path, int create, struct sign_key **out);
void sign_key_free(struct sign_key *k);
/* The key's public half as text, "ed25519:..." (owned by k). */
const char *sign_key_public(const struct sign_key *k);
/* Signs len bytes; out receives the signature as base64 text.
 * Errors: CF_ERR_INTERNAL. */
int sign_message(const struct sign_key *k, const void *msg, size_t len,
                 char out[SIGN_SIGNATURE_TEXT_LEN + 1]);
/* 1 if text is a well-formed public key "ed25519:...". */
int sign_public_valid(const char *text);
/* Verifies a signature (base64 text) of len bytes under a public key text.
 * Errors: CF_ERR_KEY (malformed public key), CF_ERR_INTEGRITY (malformed or
 * wrong signature). */
int sign_verify(const char *public_text, const void *msg, size_t len, const char *sig_text);

#endif
