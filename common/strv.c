/*
 * strv: the one growable vector of malloc'ed strings (argv and environment
 * of children, a record's recipients, locations and missing items, lists
 * in the configuration). See common.h.
 */
#include "common/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int strv_add(struct strv *sv, const char *s)
{
	char *c;

	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, cap * sizeof(*v));

		if (!v)
			return error_set(CF_ERR_NOMEM, "out of memory");
		sv->v = v;
		sv->cap = cap;
	}
	c = strdup(s);
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	sv->v[sv->n++] = c;
	sv->v[sv->n] = NULL;
	return 0;
}

int strv_addl(struct strv *sv, ...)
{
	va_list ap;
	const char *a;
	int rc = 0;

	va_start(ap, sv);
	while (!rc && (a = va_arg(ap, const char *)) != NULL)
		rc = strv_add(sv, a);
	va_end(ap);
	return rc;
}

int strv_addf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = strv_add(sv, s);
	free(s);
	return rc;
}

int strv_add_env(struct strv *sv, const char *name, const char *value)
{
	if (!value)
		return 0;
	return strv_addf(sv, "%s=%s", name, value);
}

int strv_add_new(struct strv *sv, const char *s)
{
	return strv_has(sv, s) ? 0 : strv_add(sv, s);
}

int strv_has(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

void strv_remove(struct strv *sv, const char *s)
{
	size_t n = 0;

	for (size_t i = 0; i < sv->n; i++) {
		if (strcmp(sv->v[i], s) != 0)
			sv->v[n++] = sv->v[i];
		else
			free(sv->v[i]);
	}
	sv->n = n;
	if (sv->v)
		sv->v[n] = NULL;
}

void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

int strv_split(const char *value, struct strv *out)
{
	const char *p = value;

	memset(out, 0, sizeof(*out));
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *s = p;
		char *item;
		int rc;

		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == s) {
			strv_free(out);
			return error_set(CF_ERR_CONFIG, "empty item in the list '%s'", value);
		}
		item = strndup(s, (size_t)(end - s));
		rc = item ? strv_add(out, item) : CF_ERR_NOMEM;
		free(item);
		if (rc) {
			strv_free(out);
			return error_set(CF_ERR_NOMEM, "out of memory");
		}
		if (!comma)
			return 0;
		p = comma + 1;
	}
}
