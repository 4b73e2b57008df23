/*
 * age_header: the textual header of an age v1 file.
 *
 * It writes headers (one X25519 or scrypt stanza a recipient, then the MAC),
 * finds where a header ends in a stream, and parses a header as strictly as
 * the C2SP test vectors require: exact version line, "-> " stanzas whose
 * arguments are non-empty runs of printable ASCII, bodies of canonical
 * unpadded base64 in 64-column lines closed by one shorter line, LF-only line
 * ends, and a "--- " MAC line. It opens X25519 and scrypt stanzas with the
 * caller's identities and checks the header MAC (HMAC-SHA-256 keyed with
 * HKDF(file key, "", "header")). Stanzas of other types (plugins, ML-KEM
 * hybrids, grease) are parsed and skipped. The payload is age_stream.c's job.
 */
#include "crypto/age_intern.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define AGE_BODY_COLUMNS 64
#define AGE_MAC_LEN crypto_auth_hmacsha256_BYTES
#define AGE_WRAP_BODY_LEN (AGE_FILE_KEY_LEN + crypto_aead_chacha20poly1305_ietf_ABYTES)
#define AGE_X25519_INFO "age-encryption.org/v1/X25519"
#define AGE_SCRYPT_LABEL "age-encryption.org/v1/scrypt"
/* Base64 of 43 characters encodes 32 bytes, of 22 characters 16 bytes. */
#define AGE_B64_LEN(n) (((n)*4 + 2) / 3)

/* Key material used while wrapping or unwrapping one stanza; sodium_malloc'd. */
struct age_wrap_secrets {
	uint8_t ephemeral[AGE_X25519_LEN];
	uint8_t shared[AGE_X25519_LEN];
	uint8_t wrap_key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint8_t hmac_key[AGE_MAC_LEN];
	uint8_t file_key[AGE_FILE_KEY_LEN];
};

/* One stanza of a parsed header. args points at nargs consecutive
 * NUL-terminated strings inside the parser's copy of the header; the first is
 * the stanza type. */
struct age_stanza {
	const char *args;
	size_t nargs;
	struct buf body;
};

struct age_header_parsed {
	char *text;
	struct age_stanza *stanzas;
	size_t count;
	size_t cap;
	size_t mac_covered; /* bytes the MAC covers: through the "---" */
	uint8_t mac[AGE_MAC_LEN];
};

static const uint8_t age_zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

/* ------------------------------------------------------------------------ */
/* Base64                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Strictly decodes len characters of unpadded standard base64 into exactly
 * want bytes. libsodium rejects padding, characters outside the alphabet,
 * impossible lengths and non-zero trailing bits when no end pointer is given,
 * which is exactly age's "canonical base64".
 */
static int age_b64_decode(const char *s, size_t len, uint8_t *out, size_t want)
{
	size_t n = 0;

	if (len != AGE_B64_LEN(want))
		return -1;
	if (sodium_base642bin(out, want, s, len, NULL, &n, NULL,
	                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
		return -1;
	return n == want ? 0 : -1;
}

static int age_b64_append(struct buf *out, const uint8_t *data, size_t len)
{
	char text[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];

	if (len > 48)
		return error_set(CF_ERR_INTERNAL, "base64 helper called with %zu bytes", len);
	sodium_bin2base64(text, sizeof(text), data, len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	return buf_append(out, text, strlen(text));
}

/* Appends a stanza body: 64-column lines, always closed by a shorter line
 * (empty if the encoding fills its last line exactly). */
static int age_body_append(struct buf *out, const uint8_t *data, size_t len)
{
	int rc = 0;

	while (!rc && len >= 48) {
		rc = age_b64_append(out, data, 48);
		if (!rc)
			rc = buf_append(out, "\n", 1);
		data += 48;
		len -= 48;
	}
	if (!rc)
		rc = age_b64_append(out, data, len);
	if (!rc)
		rc = buf_append(out, "\n", 1);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                    */
/* ------------------------------------------------------------------------ */

/* Appends the body of a stanza: the file key sealed under s->wrap_key. The
 * nonce is zero because every wrap key is used exactly once. */
static int age_header_wrap_key(const struct age_wrap_secrets *s, struct buf *out)
{
	uint8_t body[AGE_WRAP_BODY_LEN];
	unsigned long long body_len = 0;

	crypto_aead_chacha20poly1305_ietf_encrypt(body, &body_len, s->file_key, AGE_FILE_KEY_LEN,
	                                          NULL, 0, NULL, age_zero_nonce, s->wrap_key);
	return age_body_append(out, body, (size_t)body_len);
}

static int age_header_write_x25519(const struct age_recipient *rc_item, struct age_wrap_secrets *s,
                                   age_random_fn rnd, void *rnd_ctx, struct buf *out)
{
	uint8_t share[AGE_X25519_LEN];
	uint8_t salt[2 * AGE_X25519_LEN];
	int rc = 0;

	rnd(rnd_ctx, s->ephemeral, sizeof(s->ephemeral));
	if (crypto_scalarmult_base(share, s->ephemeral) != 0)
		return error_set(CF_ERR_INTERNAL, "X25519 ephemeral key derivation failed");
	/* A low-order recipient key would give an all-zero secret anyone knows. */
	if (crypto_scalarmult(s->shared, s->ephemeral, rc_item->public_key) != 0)
		return error_set(CF_ERR_KEY, "recipient is not a usable X25519 public key");
	memcpy(salt, share, AGE_X25519_LEN);
	memcpy(salt + AGE_X25519_LEN, rc_item->public_key, AGE_X25519_LEN);
	rc = hkdf_sha256(salt, sizeof(salt), s->shared, sizeof(s->shared),
	                 (const uint8_t *)AGE_X25519_INFO, strlen(AGE_X25519_INFO), s->wrap_key,
	                 sizeof(s->wrap_key));
	if (!rc)
		rc = buf_append(out, "-> X25519 ", 10);
	if (!rc)
		rc = age_b64_append(out, share, sizeof(share));
	if (!rc)
		rc = buf_append(out, "\n", 1);
	if (!rc)
		rc = age_header_wrap_key(s, out);
	return rc;
}

static int age_scrypt_derive(const char *passphrase, const uint8_t salt[AGE_SCRYPT_SALT_LEN],
                             int log2n, uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES])
{
	uint8_t full_salt[sizeof(AGE_SCRYPT_LABEL) - 1 + AGE_SCRYPT_SALT_LEN];

	memcpy(full_salt, AGE_SCRYPT_LABEL, sizeof(AGE_SCRYPT_LABEL) - 1);
	memcpy(full_salt + sizeof(AGE_SCRYPT_LABEL) - 1, salt, AGE_SCRYPT_SALT_LEN);
	if (crypto_pwhash_scryptsalsa208sha256_ll(
	        (const uint8_t *)passphrase, strlen(passphrase), full_salt, sizeof(full_salt),
	        (uint64_t)1 << log2n, 8, 1, key, crypto_aead_chacha20poly1305_ietf_KEYBYTES) != 0)
		return error_set(CF_ERR_NOMEM,
		                 "scrypt with work factor 2^%d failed (out of memory?)", log2n);
	return 0;
}

static int age_header_write_scrypt(const struct age_recipient *item, struct age_wrap_secrets *s,
                                   age_random_fn rnd, void *rnd_ctx, struct buf *out)
{
	uint8_t salt[AGE_SCRYPT_SALT_LEN];
	int rc;

	rnd(rnd_ctx, salt, sizeof(salt));
	rc = age_scrypt_derive(item->passphrase, salt, item->log2n, s->wrap_key);
	if (!rc)
		rc = buf_append(out, "-> scrypt ", 10);
	if (!rc)
		rc = age_b64_append(out, salt, sizeof(salt));
	if (!rc)
		rc = buf_printf(out, " %d\n", item->log2n);
	if (!rc)
		rc = age_header_wrap_key(s, out);
	return rc;
}

int age_header_write(const struct age_recipients *r, const uint8_t file_key[AGE_FILE_KEY_LEN],
                     age_random_fn rnd, void *rnd_ctx, struct buf *out)
{
	struct age_wrap_secrets *s = NULL;
	uint8_t mac[AGE_MAC_LEN];
	size_t start = out->len, i;
	int rc = 0;

	if (!r || r->count == 0)
		return error_set(CF_ERR_KEY, "no recipients to encrypt to");
	s = sodium_malloc(sizeof(*s));
	if (!s)
		return error_set(CF_ERR_NOMEM, "out of secure memory writing an age header");
	memcpy(s->file_key, file_key, AGE_FILE_KEY_LEN);
	rc = buf_append(out, AGE_VERSION_LINE "\n", sizeof(AGE_VERSION_LINE));
	for (i = 0; !rc && i < r->count; i++) {
		if (r->items[i].type == AGE_RECIPIENT_X25519)
			rc = age_header_write_x25519(&r->items[i], s, rnd, rnd_ctx, out);
		else
			rc = age_header_write_scrypt(&r->items[i], s, rnd, rnd_ctx, out);
	}
	if (!rc)
		rc = buf_append(out, "---", 3);
	if (!rc)
		rc = hkdf_sha256(NULL, 0, s->file_key, AGE_FILE_KEY_LEN, (const uint8_t *)"header",
		                 6, s->hmac_key, sizeof(s->hmac_key));
	if (!rc) {
		crypto_auth_hmacsha256(mac, out->data + start, out->len - start, s->hmac_key);
		rc = buf_append(out, " ", 1);
	}
	if (!rc)
		rc = age_b64_append(out, mac, sizeof(mac));
	if (!rc)
		rc = buf_append(out, "\n", 1);
	sodium_free(s);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Finding the end of a header in a stream                                    */
/* ------------------------------------------------------------------------ */

static int age_is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int age_header_find_end(const uint8_t *data, size_t len, size_t *scan, size_t *header_len)
{
	static const char version[] = AGE_VERSION_LINE "\n";
	static const char armor[] = AGE_ARMOR_BEGIN;

	if (*scan == 0) {
		size_t i = 0, n;

		/* age accepts white space around an armored file. */
		while (i < len && age_is_space(data[i]))
			i++;
		n = len - i < sizeof(armor) - 1 ? len - i : sizeof(armor) - 1;
		if (n > 0 && memcmp(data + i, armor, n) == 0) {
			if (n == sizeof(armor) - 1)
				return error_set(CF_ERR_UNSUPPORTED,
				                 "ASCII-armored age files are not supported; "
				                 "decode the armor first (age -d can)");
			return 0;
		}
		if (i == len)
			return 0;
		n = len < sizeof(version) - 1 ? len : sizeof(version) - 1;
		if (memcmp(data, version, n) != 0)
			return error_set(CF_ERR_AGE_HEADER,
			                 "not an age file: the first line is not \"%s\" "
			                 "(unknown format or version)",
			                 AGE_VERSION_LINE);
		if (len < sizeof(version) - 1)
			return 0;
		*scan = sizeof(version) - 1;
	}
	/* The header ends with the first line that starts with "---"; stanza
	 * lines start with "-> " and body lines cannot contain '-'. */
	while (*scan < len) {
		const uint8_t *line = data + *scan;
		const uint8_t *nl = memchr(line, '\n', len - *scan);

		if (!nl)
			return 0;
		if (nl - line >= 3 && memcmp(line, "---", 3) == 0) {
			*header_len = (size_t)(nl - data) + 1;
			return 1;
		}
		*scan = (size_t)(nl - data) + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                    */
/* ------------------------------------------------------------------------ */

static void age_parsed_free(struct age_header_parsed *h)
{
	size_t i;

	for (i = 0; i < h->count; i++) {
		if (h->stanzas[i].body.data)
			sodium_memzero(h->stanzas[i].body.data, h->stanzas[i].body.len);
		buf_free(&h->stanzas[i].body);
	}
	free(h->stanzas);
	free(h->text);
}

/* The next line of h->text from *pos; NUL-terminates it in place. */
static char *age_next_line(struct age_header_parsed *h, size_t len, size_t *pos, size_t *line_len)
{
	char *line = h->text + *pos;
	char *nl = memchr(line, '\n', len - *pos);

	if (!nl)
		return NULL;
	*nl = '\0';
	*line_len = (size_t)(nl - line);
	*pos += *line_len + 1;
	return line;
}

static const char *age_stanza_arg(const struct age_stanza *s, size_t i)
{
	const char *p = s->args;

	while (i-- > 0)
		p += strlen(p) + 1;
	return p;
}

/* Splits "-> a b c" in place into NUL-separated arguments. */
static int age_parse_args(struct age_stanza *s, char *line, size_t line_len, size_t index)
{
	size_t i, arg_len = 0;

	s->args = line + 3;
	s->nargs = 0;
	for (i = 3; i <= line_len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ' ' || c == '\0') {
			if (arg_len == 0)
				return error_set(CF_ERR_AGE_HEADER,
				                 "stanza %zu has an empty argument (or none)",
				                 index);
			line[i] = '\0';
			s->nargs++;
			arg_len = 0;
		} else if (c < 0x21 || c > 0x7e) {
			return error_set(CF_ERR_AGE_HEADER,
			                 "stanza %zu has a byte 0x%02x outside printable ASCII",
			                 index, c);
		} else {
			arg_len++;
		}
	}
	return 0;
}

static int age_parse_body(struct age_header_parsed *h, struct age_stanza *s, size_t len,
                          size_t *pos, size_t index)
{
	for (;;) {
		uint8_t chunk[48];
		size_t line_len, n = 0;
		char *line = age_next_line(h, len, pos, &line_len);
		int rc;

		if (!line)
			return error_set(CF_ERR_AGE_HEADER,
			                 "stanza %zu is not closed by a short body line", index);
		/* A new stanza or the MAC line where a body line belongs: the body
		 * lacked its closing short line (an empty one if need be). */
		if (strncmp(line, "-> ", 3) == 0 || strncmp(line, "---", 3) == 0)
			return error_set(CF_ERR_AGE_HEADER,
			                 "stanza %zu is not closed by a short body line", index);
		if (line_len > AGE_BODY_COLUMNS)
			return error_set(CF_ERR_AGE_HEADER,
			                 "stanza %zu has a body line longer than 64 columns",
			                 index);
		if (line_len > 0 &&
		    sodium_base642bin(chunk, sizeof(chunk), line, line_len, NULL, &n, NULL,
		                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
			return error_set(
			    CF_ERR_AGE_HEADER,
			    "stanza %zu has a body line that is not canonical unpadded "
			    "base64",
			    index);
		rc = buf_append(&s->body, chunk, n);
		if (rc)
			return rc;
		if (line_len < AGE_BODY_COLUMNS)
			return 0;
	}
}

/* Checks the stanza types this implementation understands. */
static int age_check_stanza(const struct age_stanza *s, size_t index, size_t count)
{
	const char *type = s->args;
	uint8_t tmp[AGE_X25519_LEN];

	if (strcmp(type, "X25519") == 0) {
		const char *share = age_stanza_arg(s, 1);

		if (s->nargs != 2)
			return error_set(CF_ERR_AGE_HEADER,
			                 "X25519 stanza %zu must have exactly one argument", index);
		if (age_b64_decode(share, strlen(share), tmp, AGE_X25519_LEN) != 0)
			return error_set(
			    CF_ERR_AGE_HEADER,
			    "X25519 stanza %zu: the share is not 32 bytes of canonical "
			    "base64",
			    index);
	} else if (strcmp(type, "scrypt") == 0) {
		const char *salt, *wf;
		size_t wf_len;

		if (count != 1)
			return error_set(CF_ERR_AGE_HEADER,
			                 "an scrypt stanza must be the only stanza of a file");
		if (s->nargs != 3)
			return error_set(CF_ERR_AGE_HEADER,
			                 "scrypt stanza must have exactly two arguments");
		salt = age_stanza_arg(s, 1);
		wf = age_stanza_arg(s, 2);
		wf_len = strlen(wf);
		if (age_b64_decode(salt, strlen(salt), tmp, AGE_SCRYPT_SALT_LEN) != 0)
			return error_set(
			    CF_ERR_AGE_HEADER,
			    "scrypt stanza: the salt is not 16 bytes of canonical base64");
		/* Decimal without sign or leading zero; two digits are plenty. */
		if (wf_len == 0 || wf_len > 2 || wf[0] == '0' || strspn(wf, "0123456789") != wf_len)
			return error_set(CF_ERR_AGE_HEADER,
			                 "scrypt stanza: bad work factor \"%.8s\"", wf);
	} else {
		return 0;
	}
	if (s->body.len != AGE_WRAP_BODY_LEN)
		return error_set(CF_ERR_AGE_HEADER,
		                 "%s stanza %zu: the wrapped file key is %zu bytes, not %d", type,
		                 index, s->body.len, AGE_WRAP_BODY_LEN);
	return 0;
}

static int age_parse(const uint8_t *header, size_t len, struct age_header_parsed *h)
{
	size_t pos = 0, line_len, i;
	char *line;
	int rc = 0;

	h->text = malloc(len + 1);
	if (!h->text)
		return error_set(CF_ERR_NOMEM, "out of memory parsing an age header");
	memcpy(h->text, header, len);
	h->text[len] = '\0';

	line = age_next_line(h, len, &pos, &line_len);
	if (!line || strcmp(line, AGE_VERSION_LINE) != 0)
		return error_set(CF_ERR_AGE_HEADER, "not an age v1 file (bad version line)");
	for (;;) {
		struct age_stanza *s;

		line = age_next_line(h, len, &pos, &line_len);
		if (!line)
			return error_set(CF_ERR_AGE_HEADER, "age header ends without a MAC line");
		if (strncmp(line, "---", 3) == 0) {
			h->mac_covered = (size_t)(line - h->text) + 3;
			if (line_len != 4 + AGE_B64_LEN(AGE_MAC_LEN) || line[3] != ' ' ||
			    age_b64_decode(line + 4, line_len - 4, h->mac, AGE_MAC_LEN) != 0)
				return error_set(CF_ERR_AGE_HEADER,
				                 "malformed MAC line in the age header");
			break;
		}
		if (strncmp(line, "-> ", 3) != 0)
			return error_set(
			    CF_ERR_AGE_HEADER,
			    "age header: the line after stanza %zu is neither a stanza "
			    "nor the MAC line",
			    h->count);
		if (h->count == h->cap) {
			size_t cap = h->cap ? h->cap * 2 : 4;
			struct age_stanza *p = realloc(h->stanzas, cap * sizeof(*p));

			if (!p)
				return error_set(CF_ERR_NOMEM,
				                 "out of memory parsing an age header");
			h->stanzas = p;
			h->cap = cap;
		}
		s = &h->stanzas[h->count++];
		buf_init(&s->body, AGE_HEADER_MAX);
		rc = age_parse_args(s, line, line_len, h->count);
		if (!rc)
			rc = age_parse_body(h, s, len, &pos, h->count);
		if (rc)
			return rc;
	}
	if (pos != len)
		return error_set(CF_ERR_AGE_HEADER,
		                 "unexpected data after the age header MAC line");
	if (h->count == 0)
		return error_set(CF_ERR_AGE_HEADER, "age header has no recipient stanzas");
	for (i = 0; !rc && i < h->count; i++)
		rc = age_check_stanza(&h->stanzas[i], i + 1, h->count);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Unwrapping the file key                                                    */
/* ------------------------------------------------------------------------ */

/* Returns 1 if the body opened with s->wrap_key (file key in s->file_key),
 * 0 if it did not. */
static int age_unwrap_body(const struct age_stanza *st, struct age_wrap_secrets *s)
{
	unsigned long long n = 0;

	if (crypto_aead_chacha20poly1305_ietf_decrypt(s->file_key, &n, NULL, st->body.data,
	                                              st->body.len, NULL, 0, age_zero_nonce,
	                                              s->wrap_key) != 0)
		return 0;
	return n == AGE_FILE_KEY_LEN;
}

static int age_unwrap_x25519(const struct age_stanza *st, size_t index,
                             const struct age_identities *ids, struct age_wrap_secrets *s)
{
	const char *share_text = age_stanza_arg(st, 1);
	uint8_t salt[2 * AGE_X25519_LEN];
	size_t i;
	int rc;

	(void)age_b64_decode(share_text, strlen(share_text), salt, AGE_X25519_LEN); /* checked */
	for (i = 0; i < ids->x25519_count; i++) {
		const struct age_x25519_identity *id = ids->x25519[i];

		/* libsodium refuses an all-zero result: the share is a low-order
		 * point, which age treats as a malformed header, not a mismatch. */
		if (crypto_scalarmult(s->shared, id->secret_key, salt) != 0)
			return error_set(CF_ERR_AGE_HEADER,
			                 "X25519 stanza %zu: the share is a low-order point",
			                 index);
		memcpy(salt + AGE_X25519_LEN, id->public_key, AGE_X25519_LEN);
		rc = hkdf_sha256(salt, sizeof(salt), s->shared, sizeof(s->shared),
		                 (const uint8_t *)AGE_X25519_INFO, strlen(AGE_X25519_INFO),
		                 s->wrap_key, sizeof(s->wrap_key));
		if (rc)
			return rc;
		if (age_unwrap_body(st, s))
			return 1;
	}
	return 0;
}

static int age_unwrap_scrypt(const struct age_stanza *st, const struct age_identities *ids,
                             struct age_wrap_secrets *s)
{
	const char *salt_text = age_stanza_arg(st, 1);
	const char *wf = age_stanza_arg(st, 2);
	uint8_t salt[AGE_SCRYPT_SALT_LEN];
	int log2n = 0, rc;
	size_t i;

	if (ids->passphrase_count == 0)
		return 0;
	/* The syntax (one or two digits, no leading zero) was checked in parsing. */
	for (; *wf; wf++)
		log2n = log2n * 10 + (*wf - '0');
	/* A huge work factor is a denial of service, so like age refuse it
	 * rather than try: 2^22 already takes 4 GiB and seconds. */
	if (log2n > AGE_SCRYPT_MAX_LOG2N)
		return error_set(CF_ERR_AGE_HEADER,
		                 "scrypt work factor 2^%d is above the limit of 2^%d", log2n,
		                 AGE_SCRYPT_MAX_LOG2N);
	(void)age_b64_decode(salt_text, strlen(salt_text), salt, sizeof(salt)); /* checked */
	for (i = 0; i < ids->passphrase_count; i++) {
		rc = age_scrypt_derive(ids->passphrases[i], salt, log2n, s->wrap_key);
		if (rc)
			return rc;
		if (age_unwrap_body(st, s))
			return 1;
	}
	return 0;
}

int age_header_open(const uint8_t *header, size_t len, const struct age_identities *ids,
                    uint8_t file_key[AGE_FILE_KEY_LEN])
{
	static const struct age_identities no_identities;
	struct age_header_parsed h = {0};
	struct age_wrap_secrets *s = NULL;
	int rc = age_parse(header, len, &h), found = 0;
	size_t i;

	if (!ids)
		ids = &no_identities;
	if (!rc) {
		s = sodium_malloc(sizeof(*s));
		if (!s)
			rc = error_set(CF_ERR_NOMEM, "out of secure memory opening an age header");
	}
	for (i = 0; !rc && !found && i < h.count; i++) {
		const struct age_stanza *st = &h.stanzas[i];

		if (strcmp(st->args, "X25519") == 0)
			rc = age_unwrap_x25519(st, i + 1, ids, s);
		else if (strcmp(st->args, "scrypt") == 0)
			rc = age_unwrap_scrypt(st, ids, s);
		if (rc == 1) {
			found = 1;
			rc = 0;
		}
	}
	if (!rc && !found)
		rc =
		    error_set(CF_ERR_AGE_NOMATCH, "no identity matches any recipient of this file");
	if (!rc)
		rc = hkdf_sha256(NULL, 0, s->file_key, AGE_FILE_KEY_LEN, (const uint8_t *)"header",
		                 6, s->hmac_key, sizeof(s->hmac_key));
	if (!rc && crypto_auth_hmacsha256_verify(h.mac, header, h.mac_covered, s->hmac_key) != 0)
		rc = error_set(
		    CF_ERR_AGE_HMAC,
		    "age header MAC does not verify: the header was altered or corrupted");
	if (!rc)
		memcpy(file_key, s->file_key, AGE_FILE_KEY_LEN);
	sodium_free(s);
	age_parsed_free(&h);
	return rc;
}
