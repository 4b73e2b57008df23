/*
 * time: wall-clock and monotonic time, and the RFC 3339 form used in records.
 */
#include "common/common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t time_offset_ms;
static pthread_once_t time_offset_once = PTHREAD_ONCE_INIT;

/* COFFER_TEST_CLOCK (tests only, see docs/testing.md): the process's clock
 * starts at that time and runs on from there. A value that does not parse
 * is ignored with a message, so a typo cannot pass for the real clock
 * silently. */
static void time_offset_init(void)
{
	const char *v = getenv("COFFER_TEST_CLOCK");
	int64_t at;

	if (!v || !*v)
		return;
	if (time_parse_iso(v, &at)) {
		fprintf(stderr,
		        "coffer: ignoring COFFER_TEST_CLOCK=%s (want 2026-01-31T12:00:00Z)\n", v);
		error_clear();
		return;
	}
	time_offset_ms = at - time_real_ms();
}

int64_t time_now_ms(void)
{
	pthread_once(&time_offset_once, time_offset_init);
	return time_real_ms() + time_offset_ms;
}

double time_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void time_format_iso(int64_t ms, char *out, size_t size)
{
	/* Floor division, so a time before 1970 keeps a millisecond field 0..999. */
	int64_t secs = ms / 1000 - (ms % 1000 < 0);
	int millis = (int)(ms - secs * 1000);
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

int time_parse_iso(const char *text, int64_t *ms)
{
	struct tm tm;
	int millis = 0, consumed = 0;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return error_set(CF_ERR_FORMAT, "bad timestamp '%s'", text);
	if (*rest == '.') {
		/* Exactly three digits: no sign, no blanks (sscanf would take both). */
		for (consumed = 1; consumed <= 3; consumed++) {
			if (rest[consumed] < '0' || rest[consumed] > '9')
				return error_set(CF_ERR_FORMAT, "bad timestamp '%s'", text);
			millis = millis * 10 + (rest[consumed] - '0');
		}
		rest += 4;
	}
	if (strcmp(rest, "Z") != 0)
		return error_set(CF_ERR_FORMAT, "bad timestamp '%s' (want UTC, ending in Z)", text);
	*ms = (int64_t)timegm(&tm) * 1000 + millis;
	return 0;
}

int time_parse_duration(const char *text, int64_t *ms)
{
	char *end;
	long long v = strtoll(text, &end, 10);
	int64_t unit = 1000;

	if (end == text || v < 0)
		return error_set(CF_ERR_CONFIG,
		                 "'%s': expected a duration like 0, 90s, 30m, 24h, 7d", text);
	if (!strcmp(end, "d"))
		unit = 86400000;
	else if (!strcmp(end, "h"))
		unit = 3600000;
	else if (!strcmp(end, "m"))
		unit = 60000;
	else if (strcmp(end, "s") != 0 && *end)
		return error_set(CF_ERR_CONFIG,
		                 "'%s': expected a duration like 0, 90s, 30m, 24h, 7d", text);
	if (v > INT64_MAX / unit)
		return error_set(CF_ERR_CONFIG, "'%s': too long", text);
	*ms = (int64_t)v * unit;
	return 0;
}
