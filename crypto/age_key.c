/*
 * age_key: age X25519 keys and the recipient and identity sets the filters
 * encrypt to and decrypt with.
 *
 * It generates keys, converts between the Bech32 strings age-keygen writes and
 * raw X25519 keys, and reads age-keygen identity files. Every secret (X25519
 * private keys, passphrases, the text of identity files) is held in
 * sodium_malloc() memory and wiped when released. It does not know the file
 * format: wrapping file keys is age_header.c's job. Plugin and ML-KEM hybrid
 * identities ("AGE-PLUGIN-", "AGE-SECRET-KEY-PQ-") are refused.
 */
#include "crypto/age_intern.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define AGE_RECIPIENT_HRP "age"
#define AGE_IDENTITY_HRP "age-secret-key-"
/* An identity file larger than this is certainly not one. */
#define AGE_IDENTITY_FILE_MAX (1024 * 1024)

int age_init(void)
{
	if (sodium_init() < 0)
		return error_set(CF_ERR_INTERNAL, "libsodium failed to initialise");
	return 0;
}

static void age_key_trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' ||
	                    (*s)[*len - 1] == '\r' || (*s)[*len - 1] == '\n'))
		(*len)--;
}

static int age_key_encode_recipient(const uint8_t pk[AGE_X25519_LEN],
                                    char out[AGE_RECIPIENT_LEN + 1])
{
	return bech32_encode(AGE_RECIPIENT_HRP, pk, AGE_X25519_LEN, 0, out, AGE_RECIPIENT_LEN + 1);
}

/* Decodes an identity string into sk. Returns 0 or -1 (no error_set). */
static int age_key_decode_identity(const char *text, size_t len, uint8_t sk[AGE_X25519_LEN])
{
	return bech32_decode(AGE_IDENTITY_HRP, text, len, sk, AGE_X25519_LEN);
}

int age_keygen(char *identity, char recipient[AGE_RECIPIENT_LEN + 1])
{
	struct age_x25519_identity *k = sodium_malloc(sizeof(*k));
	int rc = 0;

	if (!k)
		return error_set(CF_ERR_NOMEM, "out of secure memory generating a key");
	randombytes_buf(k->secret_key, sizeof(k->secret_key));
	if (crypto_scalarmult_base(k->public_key, k->secret_key) != 0)
		rc = error_set(CF_ERR_INTERNAL, "X25519 public key derivation failed");
	if (!rc)
		rc = bech32_encode(AGE_IDENTITY_HRP, k->secret_key, AGE_X25519_LEN, 1, identity,
		                   AGE_IDENTITY_LEN + 1);
	if (!rc)
		rc = age_key_encode_recipient(k->public_key, recipient);
	sodium_free(k);
	return rc;
}

int age_identity_to_recipient(const char *identity, char recipient[AGE_RECIPIENT_LEN + 1])
{
	struct age_x25519_identity *k = sodium_malloc(sizeof(*k));
	size_t len = strlen(identity);
	int rc = 0;

	if (!k)
		return error_set(CF_ERR_NOMEM, "out of secure memory reading an identity");
	age_key_trim(&identity, &len);
	/* The message never quotes the identity: it is a secret. */
	if (age_key_decode_identity(identity, len, k->secret_key) != 0)
		rc = error_set(CF_ERR_KEY, "not a valid AGE-SECRET-KEY-1 identity");
	if (!rc && crypto_scalarmult_base(k->public_key, k->secret_key) != 0)
		rc = error_set(CF_ERR_KEY, "identity has no valid X25519 public key");
	if (!rc)
		rc = age_key_encode_recipient(k->public_key, recipient);
	sodium_free(k);
	return rc;
}

int age_text_is_secret(const char *text)
{
	while (*text == ' ' || *text == '\t' || *text == '\'' || *text == '"')
		text++;
	return !strncasecmp(text, "AGE-SECRET-KEY-", 15) || !strncasecmp(text, "AGE-PLUGIN-", 11);
}

/* Parses an "age1..." string; the error message names the string, unless it
 * is a secret key pasted in the wrong place. */
static int age_key_parse_recipient(const char *recipient, uint8_t pk[AGE_X25519_LEN])
{
	const char *s = recipient;
	size_t len = strlen(s);

	age_key_trim(&s, &len);
	if (bech32_decode(AGE_RECIPIENT_HRP, s, len, pk, AGE_X25519_LEN) == 0)
		return 0;
	if (age_text_is_secret(recipient))
		return error_set(CF_ERR_KEY, "an age identity (a secret key) was given where a "
		                             "recipient (age1...) belongs");
	return error_set(CF_ERR_KEY, "not a valid age X25519 recipient: \"%.*s\"",
	                 len > 100 ? 100 : (int)len, s);
}

int age_recipient_fingerprint(const char *recipient, char out[AGE_FINGERPRINT_LEN + 1])
{
	uint8_t pk[AGE_X25519_LEN];
	char canonical[AGE_RECIPIENT_LEN + 1];
	char hex[HASH_SHA256_HEX_LEN + 1];
	int rc = age_key_parse_recipient(recipient, pk);

	/* Re-encode so an upper-case spelling has the same fingerprint. */
	if (!rc)
		rc = age_key_encode_recipient(pk, canonical);
	if (rc)
		return rc;
	rc = hash_sha256_hex(canonical, strlen(canonical), hex);
	if (rc)
		return rc;
	memcpy(out, hex, AGE_FINGERPRINT_LEN);
	out[AGE_FINGERPRINT_LEN] = '\0';
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Recipients                                                                 */
/* ------------------------------------------------------------------------ */

int age_recipients_new(struct age_recipients **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory creating a recipient set");
	return 0;
}

static int age_recipients_grow(struct age_recipients *r)
{
	struct age_recipient *items;
	size_t cap;

	if (r->count < r->cap)
		return 0;
	cap = r->cap ? r->cap * 2 : 4;
	items = realloc(r->items, cap * sizeof(*items));
	if (!items)
		return error_set(CF_ERR_NOMEM, "out of memory growing a recipient set");
	r->items = items;
	r->cap = cap;
	return 0;
}

static int age_recipients_has_scrypt(const struct age_recipients *r)
{
	size_t i;

	for (i = 0; i < r->count; i++)
		if (r->items[i].type == AGE_RECIPIENT_SCRYPT)
			return 1;
	return 0;
}

int age_recipients_add(struct age_recipients *r, const char *recipient)
{
	struct age_recipient item = {.type = AGE_RECIPIENT_X25519};
	int rc;

	if (age_recipients_has_scrypt(r))
		return error_set(CF_ERR_KEY, "a passphrase must be the only recipient of a file");
	rc = age_key_parse_recipient(recipient, item.public_key);
	if (!rc)
		rc = age_recipients_grow(r);
	if (rc)
		return rc;
	r->items[r->count++] = item;
	return 0;
}

static char *age_key_secret_strdup(const char *s)
{
	size_t len = strlen(s);
	char *copy = sodium_malloc(len + 1);

	if (copy)
		memcpy(copy, s, len + 1);
	return copy;
}

int age_recipients_add_passphrase(struct age_recipients *r, const char *passphrase, int log2n)
{
	struct age_recipient item = {.type = AGE_RECIPIENT_SCRYPT, .log2n = log2n};
	int rc;

	if (r->count > 0)
		return error_set(CF_ERR_KEY, "a passphrase must be the only recipient of a file");
	if (log2n < 1 || log2n > AGE_SCRYPT_MAX_LOG2N)
		return error_set(CF_ERR_KEY, "scrypt work factor %d is outside 1..%d", log2n,
		                 AGE_SCRYPT_MAX_LOG2N);
	rc = age_recipients_grow(r);
	if (rc)
		return rc;
	item.passphrase = age_key_secret_strdup(passphrase);
	if (!item.passphrase)
		return error_set(CF_ERR_NOMEM, "out of secure memory storing a passphrase");
	r->items[r->count++] = item;
	return 0;
}

size_t age_recipients_count(const struct age_recipients *r)
{
	return r ? r->count : 0;
}

void age_recipients_free(struct age_recipients *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->count; i++)
		sodium_free(r->items[i].passphrase); /* wipes; NULL is fine */
	free(r->items);
	free(r);
}

/* ------------------------------------------------------------------------ */
/* Identities                                                                 */
/* ------------------------------------------------------------------------ */

int age_identities_new(struct age_identities **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return error_set(CF_ERR_NOMEM, "out of memory creating an identity set");
	return 0;
}

/* Makes room for one more identity pointer (the pointers are not secret). */
static int age_identities_grow_x25519(struct age_identities *ids)
{
	struct age_x25519_identity **p;
	size_t cap;

	if (ids->x25519_count < ids->x25519_cap)
		return 0;
	cap = ids->x25519_cap ? ids->x25519_cap * 2 : 4;
	p = realloc(ids->x25519, cap * sizeof(*p));
	if (!p)
		return error_set(CF_ERR_NOMEM, "out of memory growing an identity set");
	ids->x25519 = p;
	ids->x25519_cap = cap;
	return 0;
}

static int age_identities_grow_passphrases(struct age_identities *ids)
{
	char **p;
	size_t cap;

	if (ids->passphrase_count < ids->passphrase_cap)
		return 0;
	cap = ids->passphrase_cap ? ids->passphrase_cap * 2 : 2;
	p = realloc(ids->passphrases, cap * sizeof(*p));
	if (!p)
		return error_set(CF_ERR_NOMEM, "out of memory growing an identity set");
	ids->passphrases = p;
	ids->passphrase_cap = cap;
	return 0;
}

/* Adds an identity given as len bytes of text. Errors: -1 for a bad string
 * (the caller reports it, with or without a file and line), CF_ERR_*. */
static int age_identities_add_text(struct age_identities *ids, const char *text, size_t len)
{
	struct age_x25519_identity *k;
	int rc = age_identities_grow_x25519(ids);

	if (rc)
		return rc;
	k = sodium_malloc(sizeof(*k));
	if (!k)
		return error_set(CF_ERR_NOMEM, "out of secure memory storing an identity");
	if (age_key_decode_identity(text, len, k->secret_key) != 0 ||
	    crypto_scalarmult_base(k->public_key, k->secret_key) != 0) {
		sodium_free(k);
		return -1;
	}
	ids->x25519[ids->x25519_count++] = k;
	return 0;
}

static const char *age_identity_kind(const char *text, size_t len)
{
	static const char pq[] = "AGE-SECRET-KEY-PQ-", plugin[] = "AGE-PLUGIN-";

	if (len >= sizeof(pq) - 1 && strncasecmp(text, pq, sizeof(pq) - 1) == 0)
		return "ML-KEM hybrid identities are not supported";
	if (len >= sizeof(plugin) - 1 && strncasecmp(text, plugin, sizeof(plugin) - 1) == 0)
		return "plugin identities are not supported";
	return "not a valid AGE-SECRET-KEY-1 identity";
}

int age_identities_add(struct age_identities *ids, const char *identity)
{
	size_t len = strlen(identity);
	int rc;

	age_key_trim(&identity, &len);
	rc = age_identities_add_text(ids, identity, len);
	if (rc == -1)
		rc = error_set(CF_ERR_KEY, "%s", age_identity_kind(identity, len));
	return rc;
}

int age_identities_add_passphrase(struct age_identities *ids, const char *passphrase)
{
	char *copy;
	int rc = age_identities_grow_passphrases(ids);

	if (rc)
		return rc;
	copy = age_key_secret_strdup(passphrase);
	if (!copy)
		return error_set(CF_ERR_NOMEM, "out of secure memory storing a passphrase");
	ids->passphrases[ids->passphrase_count++] = copy;
	return 0;
}

/* Reads a whole identity file into sodium_malloc memory (fs_read_file would
 * leave copies of the keys in ordinary heap memory). */
static int age_identities_read(const char *path, char **out, size_t *out_len)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc = 0, fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(errno == ENOENT ? CF_ERR_NOTFOUND : CF_ERR_IO, errno,
		                       "cannot open identity file %s", path);
	if (fstat(fd, &st) != 0)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot stat identity file %s", path);
	else if (!S_ISREG(st.st_mode))
		rc = error_set(CF_ERR_KEY, "identity file %s is not a regular file", path);
	else if (st.st_size > AGE_IDENTITY_FILE_MAX)
		rc = error_set(CF_ERR_KEY, "identity file %s is larger than %d bytes", path,
		               AGE_IDENTITY_FILE_MAX);
	if (!rc && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warn("identity file %s is accessible to other users (mode %03o); "
		         "consider chmod 600",
		         path, (unsigned int)(st.st_mode & 0777));
	if (!rc) {
		/* One spare byte lets a file that grew since fstat be detected. */
		text = sodium_malloc((size_t)st.st_size + 2);
		if (!text)
			rc = error_set(CF_ERR_NOMEM, "out of secure memory reading %s", path);
	}
	while (!rc) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc =
			    error_set_errno(CF_ERR_IO, errno, "cannot read identity file %s", path);
		else if (n == 0)
			break;
		else if ((len += (size_t)n) > (size_t)st.st_size)
			rc =
			    error_set(CF_ERR_IO, "identity file %s changed while being read", path);
	}
	close(fd);
	if (rc) {
		sodium_free(text);
		return rc;
	}
	text[len] = '\0';
	*out = text;
	*out_len = len;
	return 0;
}

int age_identities_load_file(struct age_identities *ids, const char *path)
{
	char *text = NULL;
	size_t len = 0, pos = 0, before = ids->x25519_count;
	unsigned int line_no = 0;
	int rc = age_identities_read(path, &text, &len);

	while (!rc && pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;

		pos += line_len + (nl ? 1 : 0);
		line_no++;
		/* Like age (bufio.ScanLines), accept CRLF line ends. */
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		if (line_len == 0 || line[0] == '#')
			continue;
		rc = age_identities_add_text(ids, line, line_len);
		if (rc == -1)
			rc = error_set(CF_ERR_KEY, "%s, line %u: %s", path, line_no,
			               age_identity_kind(line, line_len));
	}
	if (!rc && ids->x25519_count == before)
		rc = error_set(CF_ERR_KEY, "no identities found in %s", path);
	sodium_free(text);
	return rc;
}

size_t age_identities_count(const struct age_identities *ids)
{
	return ids ? ids->x25519_count + ids->passphrase_count : 0;
}

void age_identities_free(struct age_identities *ids)
{
	size_t i;

	if (!ids)
		return;
	for (i = 0; i < ids->x25519_count; i++)
		sodium_free(ids->x25519[i]);
	for (i = 0; i < ids->passphrase_count; i++)
		sodium_free(ids->passphrases[i]);
	free(ids->x25519);
	free(ids->passphrases);
	free(ids);
}
