/*
 * bech32: the Bech32 encoding of BIP-173 that age uses for its keys
 * ("age1..." recipients, "AGE-SECRET-KEY-1..." identities).
 *
 * It implements the original Bech32 checksum (constant 1), not Bech32m, and,
 * like age, does not enforce BIP-173's 90-character limit. Strings must be all
 * lower or all upper case. It knows nothing about what the payload means.
 */
#include "crypto/age_intern.h"

#include <string.h>

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod_step(uint32_t chk, uint8_t value)
{
	static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
	uint32_t top = chk >> 25;
	int i;

	chk = ((chk & 0x1ffffff) << 5) ^ value;
	for (i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

/* The checksum state after the expanded human-readable part (BIP-173). */
static uint32_t bech32_hrp_polymod(const char *hrp, size_t hrp_len)
{
	uint32_t chk = 1;
	size_t i;

	for (i = 0; i < hrp_len; i++)
		chk = bech32_polymod_step(chk, (uint8_t)((unsigned char)hrp[i] >> 5));
	chk = bech32_polymod_step(chk, 0);
	for (i = 0; i < hrp_len; i++)
		chk = bech32_polymod_step(chk, (uint8_t)((unsigned char)hrp[i] & 31));
	return chk;
}

static char bech32_case(char c, int upper)
{
	if (upper && c >= 'a' && c <= 'z')
		return (char)(c - 'a' + 'A');
	return c;
}

int bech32_encode(const char *hrp, const uint8_t *data, size_t len, int upper, char *out,
                  size_t out_size)
{
	size_t hrp_len = strlen(hrp);
	size_t groups = (len * 8 + 4) / 5;
	size_t pos = 0, i;
	uint32_t chk, acc = 0;
	unsigned int bits = 0;

	if (out_size < hrp_len + 1 + groups + 6 + 1)
		return error_set(CF_ERR_LIMIT, "Bech32 output buffer too small");
	chk = bech32_hrp_polymod(hrp, hrp_len);
	for (i = 0; i < hrp_len; i++)
		out[pos++] = bech32_case(hrp[i], upper);
	out[pos++] = '1';
	/* Regroup 8-bit bytes into 5-bit values, zero-padding the last one. */
	for (i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			uint8_t v = (uint8_t)((acc >> (bits - 5)) & 31);

			bits -= 5;
			chk = bech32_polymod_step(chk, v);
			out[pos++] = bech32_case(bech32_charset[v], upper);
		}
	}
	if (bits > 0) {
		uint8_t v = (uint8_t)((acc << (5 - bits)) & 31);

		chk = bech32_polymod_step(chk, v);
		out[pos++] = bech32_case(bech32_charset[v], upper);
	}
	for (i = 0; i < 6; i++)
		chk = bech32_polymod_step(chk, 0);
	chk ^= 1;
	for (i = 0; i < 6; i++)
		out[pos++] = bech32_case(bech32_charset[(chk >> (5 * (5 - i))) & 31], upper);
	out[pos] = '\0';
	return 0;
}

static int bech32_value(char c)
{
	const char *p;

	if (c >= 'A' && c <= 'Z')
		c = (char)(c - 'A' + 'a');
	if (c == '\0')
		return -1;
	p = strchr(bech32_charset, c);
	return p ? (int)(p - bech32_charset) : -1;
}

int bech32_decode(const char *hrp, const char *text, size_t text_len, uint8_t *data, size_t len)
{
	size_t hrp_len = strlen(hrp);
	size_t sep, i, out_pos = 0;
	int has_lower = 0, has_upper = 0;
	uint32_t chk, acc = 0;
	unsigned int bits = 0;

	for (i = 0; i < text_len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 33 || c > 126)
			return -1;
		if (c >= 'a' && c <= 'z')
			has_lower = 1;
		if (c >= 'A' && c <= 'Z')
			has_upper = 1;
	}
	if (has_lower && has_upper)
		return -1;
	/* The separator is the last '1'; the human-readable part may contain '1's. */
	for (sep = text_len; sep > 0 && text[sep - 1] != '1'; sep--)
		;
	if (sep == 0 || sep - 1 != hrp_len || text_len - sep < 6)
		return -1;
	for (i = 0; i < hrp_len; i++) {
		char c = text[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != hrp[i])
			return -1;
	}
	chk = bech32_hrp_polymod(hrp, hrp_len);
	for (i = sep; i < text_len; i++) {
		int v = bech32_value(text[i]);

		if (v < 0)
			return -1;
		chk = bech32_polymod_step(chk, (uint8_t)v);
		if (i >= text_len - 6)
			continue;
		acc = ((acc << 5) | (uint32_t)v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (out_pos >= len)
				return -1;
			data[out_pos++] = (uint8_t)(acc >> bits);
		}
	}
	if (chk != 1 || out_pos != len)
		return -1;
	/* At most 4 padding bits, all zero, or the encoding is not canonical. */
	if (bits > 4 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return 0;
}
