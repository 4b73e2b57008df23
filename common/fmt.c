/*
 * fmt: human-readable figures for progress lines and listings.
 */
#include "common/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fmt_bytes(uint64_t n, char *out, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%llu B", (unsigned long long)n);
	else
		snprintf(out, size, "%.1f %s", v, units[u]);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t fmt_utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t fmt_text_escape(const char *text, char *out, size_t size, int controls)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = 0;

	if (!size)
		return 0;
	while (*s) {
		size_t n = fmt_utf8_len(s);

		if (n == 1 && controls && (*s < 0x20 || *s == 0x7f) && *s != '\t')
			n = 0;
		if (n) {
			if (o + n >= size)
				break;
			memcpy(out + o, s, n);
			o += n;
			s += n;
		} else {
			if (o + 4 >= size)
				break;
			snprintf(out + o, 5, "\\x%02x", *s);
			o += 4;
			s++;
		}
	}
	out[o] = '\0';
	return o;
}

char *fmt_text_utf8(const char *text)
{
	size_t size = 4 * strlen(text) + 1;
	char *out = malloc(size);

	if (out)
		fmt_text_escape(text, out, size, 0);
	return out;
}

int name_valid(const char *name)
{
	size_t n = 0;

	if (!name || !*name || name[0] == '.')
		return 0;
	for (const char *p = name; *p; p++, n++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return n <= NAME_MAX_LEN;
}
