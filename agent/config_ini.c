/*
 * config_ini: the strict INI reader behind config.c (see config_ini.h).
 *
 * Why not libinih: Debian's build fixes its choices at compile time (lines
 * of 200 bytes split in two, indented lines continuing the previous value,
 * " ;" starting a comment inside quotes, no way to see a duplicate), and each
 * of them silently changed what a configuration backs up. The format needs
 * few rules, so they are spelled out here, one line at a time.
 */
#include "agent/config_ini.h"
#include "common/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct config_ini {
	FILE *fp;
	const char *file;
	int line;
	char *buf; /* CONFIG_INI_LINE_MAX + 1 bytes */
	size_t len;
	char section[CONFIG_INI_LINE_MAX + 1];
};

static int ini_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Reads the next line into in->buf without its newline (and a CR before it).
 * Returns 1 for a line, 0 at the end, or a CF_ERR_ code. */
static int ini_read_line(struct config_ini *in)
{
	size_t n = 0;
	int c, any = 0;

	while ((c = getc_unlocked(in->fp)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (c == '\0')
			return error_set(CF_ERR_CONFIG,
			                 "%s:%d: a NUL byte: the configuration must be text",
			                 in->file, in->line + 1);
		if (n == CONFIG_INI_LINE_MAX)
			return error_set(
			    CF_ERR_CONFIG,
			    "%s:%d: line longer than %d bytes; shorten it (a list can "
			    "also be split over several '%s' lines where the key allows)",
			    in->file, in->line + 1, CONFIG_INI_LINE_MAX, "key =");
		in->buf[n++] = (char)c;
	}
	if (ferror(in->fp))
		return error_set_errno(errno == EISDIR ? CF_ERR_CONFIG : CF_ERR_IO, errno,
		                       "cannot read %s", in->file);
	if (!any)
		return 0;
	in->line++;
	if (n > 0 && in->buf[n - 1] == '\r')
		n--;
	in->buf[n] = '\0';
	in->len = n;
	return 1;
}

/* Shows at most 60 bytes of text in an error. */
static const char *ini_excerpt(const char *text, char *out, size_t size)
{
	size_t n = strlen(text);

	if (n < 61 || size < 65)
		return text;
	memcpy(out, text, 60);
	memcpy(out + 60, "...", 4);
	return out;
}

static int ini_header(struct config_ini *in, char *p, config_ini_fn fn, void *ctx)
{
	struct config_ini_item it;
	char *end = strchr(p, ']'), *rest, *o = in->section;
	char ex[80];

	if (!end)
		return error_set(CF_ERR_CONFIG, "%s:%d: section header '%s' has no closing ']'",
		                 in->file, in->line, ini_excerpt(p, ex, sizeof(ex)));
	for (rest = end + 1; ini_blank(*rest); rest++)
		;
	if (*rest && *rest != ';' && *rest != '#')
		return error_set(CF_ERR_CONFIG,
		                 "%s:%d: text after the section header's ']': '%s' (a comment "
		                 "starts with ; or #)",
		                 in->file, in->line, ini_excerpt(rest, ex, sizeof(ex)));
	/* The name, blanks trimmed and runs of blanks made one space. */
	for (p++; p < end; p++) {
		if (ini_blank(*p)) {
			if (o > in->section && o[-1] != ' ')
				*o++ = ' ';
			continue;
		}
		if (*p == '[')
			return error_set(CF_ERR_CONFIG, "%s:%d: '[' inside a section header",
			                 in->file, in->line);
		*o++ = *p;
	}
	if (o > in->section && o[-1] == ' ')
		o--;
	*o = '\0';
	if (!in->section[0])
		return error_set(CF_ERR_CONFIG, "%s:%d: empty section header '[]'", in->file,
		                 in->line);
	memset(&it, 0, sizeof(it));
	it.line = in->line;
	it.section = in->section;
	return fn(ctx, &it);
}

/* Ends the value at its comment: a ';' or '#' after a blank, outside quotes.
 * Returns 0, or CF_ERR_CONFIG for a comment-like text behind an open quote. */
static int ini_value_end(struct config_ini *in, const char *key, char *v)
{
	char quote = 0, *open = NULL, *p;

	for (p = v; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
			else if (quote == '"' && *p == '\\' && p[1])
				p++;
			continue;
		}
		if (*p == '"' || *p == '\'') {
			quote = *p;
			open = p;
			continue;
		}
		if ((*p == ';' || *p == '#') && (p == v || ini_blank(p[-1]))) {
			*p = '\0';
			return 0;
		}
	}
	if (!quote)
		return 0;
	for (p = open + 1; *p; p++)
		if ((*p == ';' || *p == '#') && ini_blank(p[-1]))
			return error_set(
			    CF_ERR_CONFIG,
			    "%s:%d: %s: the %c quote is never closed, so it is unclear "
			    "whether '%c' starts a comment; close the quote, or put "
			    "the comment on a line of its own",
			    in->file, in->line, key, *open, *p);
	return 0;
}

static int ini_key(struct config_ini *in, char *p, config_ini_fn fn, void *ctx)
{
	struct config_ini_item it;
	char *eq = strchr(p, '='), *k, *v, *e;
	char ex[80];
	int rc;

	if (!eq)
		return error_set(CF_ERR_CONFIG,
		                 "%s:%d: '%s' is not a [section], a 'key = value' or a comment "
		                 "(; or #)",
		                 in->file, in->line, ini_excerpt(p, ex, sizeof(ex)));
	for (e = eq; e > p && ini_blank(e[-1]); e--)
		;
	*e = '\0';
	for (k = p; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return error_set(CF_ERR_CONFIG,
			                 "%s:%d: '%s' is not a key name (letters, digits and '_'); "
			                 "expected 'key = value'",
			                 in->file, in->line, ini_excerpt(p, ex, sizeof(ex)));
	if (!*p)
		return error_set(CF_ERR_CONFIG, "%s:%d: a value without a key: '= %s'", in->file,
		                 in->line, ini_excerpt(eq + 1, ex, sizeof(ex)));
	for (v = eq + 1; ini_blank(*v); v++)
		;
	rc = ini_value_end(in, p, v);
	if (rc)
		return rc;
	for (e = v + strlen(v); e > v && ini_blank(e[-1]); e--)
		;
	*e = '\0';
	memset(&it, 0, sizeof(it));
	it.line = in->line;
	it.section = in->section;
	it.key = p;
	it.value = v;
	return fn(ctx, &it);
}

int config_ini_parse(FILE *fp, const char *file, config_ini_fn fn, void *ctx)
{
	struct config_ini *in;
	struct stat st;
	int rc;

	if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode))
		return error_set(CF_ERR_CONFIG,
		                 "%s is a folder, not a configuration file; name the file "
		                 "(e.g. %s/coffer.conf)",
		                 file, file);
	in = calloc(1, sizeof(*in));
	if (!in || !(in->buf = malloc(CONFIG_INI_LINE_MAX + 1))) {
		free(in);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	in->fp = fp;
	in->file = file;
	while ((rc = ini_read_line(in)) == 1) {
		char *p = in->buf;

		if (in->line == 1 && !strncmp(p, "\xEF\xBB\xBF", 3))
			p += 3; /* a UTF-8 byte order mark */
		while (ini_blank(*p))
			p++;
		if (!*p || *p == ';' || *p == '#')
			continue;
		rc = *p == '[' ? ini_header(in, p, fn, ctx) : ini_key(in, p, fn, ctx);
		if (rc)
			break;
	}
	free(in->buf);
	free(in);
	return rc;
}
