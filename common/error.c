/*
 * error: the project-wide error table and the per-thread error detail.
 * Codes are in common.h; this file maps them to text and keeps the message
 * recorded where a failure was detected, for the command line to print once.
 */
#include "common/common.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char error_text[1024];
static _Thread_local int error_last;

static const char *const error_table[] = {
    [0] = "success",
    [1] = "out of memory",
    [2] = "I/O error",
    [3] = "configuration error",
    [4] = "usage error",
    [5] = "not found",
    [6] = "already exists",
    [7] = "malformed data",
    [8] = "bad key",
    [9] = "no identity matches",
    [10] = "age header malformed",
    [11] = "age header MAC mismatch",
    [12] = "age payload corrupted",
    [13] = "integrity check failed",
    [14] = "source failed",
    [15] = "storage error",
    [16] = "catalog error",
    [17] = "compression error",
    [18] = "limit exceeded",
    [19] = "no space left on device",
    [20] = "interrupted",
    [21] = "not supported",
    [22] = "network error",
    [23] = "access denied",
    [24] = "internal error",
    [25] = "restore target failed",
    [26] = "backup is partial",
    [27] = "damaged catalog",
    [28] = "busy",
    [29] = "not healthy",
};

const char *cf_strerror(int code)
{
	int i = -code;

	if (i < 0 || i >= (int)(sizeof(error_table) / sizeof(error_table[0])))
		return "unknown error";
	return error_table[i];
}

/* Formats into a local buffer first: callers may pass error_message() itself
 * as an argument to add context to the message already recorded. */
static void error_vset(int code, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void error_vset(int code, int errnum, const char *fmt, va_list ap)
{
	char text[sizeof(error_text)];
	int n = vsnprintf(text, sizeof(text), fmt, ap);

	if (n < 0)
		n = 0;
	if (errnum && (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n, ": %s", strerror(errnum));
	memcpy(error_text, text, sizeof(error_text));
	error_last = code;
}

int error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(code, 0, fmt, ap);
	va_end(ap);
	return code;
}

int error_set_errno(int code, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(code, errnum, fmt, ap);
	va_end(ap);
	return code;
}

const char *error_message(void)
{
	return error_text;
}

int error_code(void)
{
	return error_last;
}

void error_clear(void)
{
	error_text[0] = '\0';
	error_last = 0;
}
