/*
 * retention: the policy as a pure function (see retention.h). Calendar
 * periods are taken with localtime_r() in the policy's timezone, set through
 * TZ for the call and restored after (prune is single-threaded there).
 */
#include "agent/retention.h"
#include "common/common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const retention_rule_keys[RETENTION_NRULES] = {
    "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"};

/* The period of t for a counted rule, as shown to the user. */
static void retention_period(enum retention_rule r, int64_t ms, char out[RETENTION_LABEL_LEN])
{
	time_t t = (time_t)(ms / 1000 - (ms < 0 && ms % 1000 ? 1 : 0));
	struct tm tm;

	out[0] = '\0';
	if (!localtime_r(&t, &tm))
		return;
	switch (r) {
	case RETENTION_HOURLY:
		strftime(out, RETENTION_LABEL_LEN, "%Y-%m-%d %Hh", &tm);
		break;
	case RETENTION_DAILY:
		strftime(out, RETENTION_LABEL_LEN, "%Y-%m-%d", &tm);
		break;
	case RETENTION_WEEKLY: /* ISO 8601 weeks: 2027-01-01 is in 2026-W53 */
		strftime(out, RETENTION_LABEL_LEN, "%G-W%V", &tm);
		break;
	case RETENTION_MONTHLY:
		strftime(out, RETENTION_LABEL_LEN, "%Y-%m", &tm);
		break;
	case RETENTION_YEARLY:
		strftime(out, RETENTION_LABEL_LEN, "%Y", &tm);
		break;
	default:
		break;
	}
}

/* An IANA name must exist; a POSIX TZ string (it has a digit) is taken as it is. */
int retention_timezone_check(const char *tz)
{
	char path[512];

	if (!tz[0] || strstr(tz, ".."))
		return error_set(CF_ERR_CONFIG, "timezone '%.64s' is not a timezone", tz);
	for (const char *c = tz; *c; c++)
		if (isdigit((unsigned char)*c) && !strchr(tz, '/'))
			return 0;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz[0] == ':' ? tz + 1 : tz);
	if (access(path, R_OK) != 0)
		return error_set(CF_ERR_CONFIG,
		                 "timezone '%.64s' is unknown (expected a name from "
		                 "/usr/share/zoneinfo such as Europe/Berlin or UTC, or a POSIX TZ "
		                 "string)",
		                 tz);
	return 0;
}

/* Newest first; equal start times by their place in the input, for a
 * stable answer. */
static int retention_cmp(const void *a, const void *b)
{
	const struct retention_item *x = *(const struct retention_item *const *)a;
	const struct retention_item *y = *(const struct retention_item *const *)b;

	if (x->started_ms != y->started_ms)
		return x->started_ms > y->started_ms ? -1 : 1;
	return x < y ? -1 : x > y;
}

static void retention_keep(struct retention_item *it, unsigned why)
{
	it->keep = 1;
	it->why |= why;
}

/* The counted and duration rules over the complete backups c[0..n), newest first. */
static void retention_rules(const struct retention_policy *p, struct retention_item **c, size_t n)
{
	size_t kept = 0;

	if (n == 0)
		return;
	retention_keep(c[0], RETENTION_WHY_NEWEST);
	for (size_t i = 0; i < n && i < p->keep[RETENTION_LAST]; i++) {
		retention_keep(c[i], RETENTION_WHY_RULE(RETENTION_LAST));
		snprintf(c[i]->period[RETENTION_LAST], RETENTION_LABEL_LEN, "%zu", i + 1);
	}
	for (int r = RETENTION_HOURLY; r < RETENTION_NRULES; r++) {
		char last[RETENTION_LABEL_LEN] = "";
		unsigned left = p->keep[r];

		for (size_t i = 0; i < n && left > 0; i++) {
			char label[RETENTION_LABEL_LEN];

			retention_period((enum retention_rule)r, c[i]->started_ms, label);
			if (!strcmp(label, last))
				continue;
			/* The newest backup of a period not seen yet. */
			snprintf(last, sizeof(last), "%s", label);
			snprintf(c[i]->period[r], RETENTION_LABEL_LEN, "%s", label);
			retention_keep(c[i], RETENTION_WHY_RULE(r));
			left--;
		}
	}
	if (p->keep_within_ms > 0)
		for (size_t i = 0; i < n; i++)
			if (c[i]->started_ms > c[0]->started_ms - p->keep_within_ms)
				retention_keep(c[i], RETENTION_WHY_WITHIN);
	for (size_t i = 0; i < n; i++)
		kept += (size_t)c[i]->keep;
	for (size_t i = 0; i < n && kept < p->min_keep; i++)
		if (!c[i]->keep) {
			retention_keep(c[i], RETENTION_WHY_MIN_KEEP);
			kept++;
		}
}

int retention_apply(const struct retention_policy *p, int64_t now_ms, struct retention_item *items,
                    size_t n)
{
	struct retention_item **c = NULL;
	char *old_tz = NULL;
	size_t nc = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		items[i].keep = 0;
		items[i].why = 0;
		memset(items[i].period, 0, sizeof(items[i].period));
	}
	if (!p->set) {
		for (size_t i = 0; i < n; i++)
			retention_keep(&items[i], RETENTION_WHY_NO_POLICY);
		return 0;
	}
	if (p->timezone && (rc = retention_timezone_check(p->timezone)) != 0)
		return rc;
	if (n && !(c = calloc(n, sizeof(*c))))
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct retention_item *it = &items[i];

		if (it->state == RETENTION_RUNNING)
			retention_keep(it, RETENTION_WHY_RUNNING);
		else if (it->state == RETENTION_FAILED) {
			if (now_ms - it->started_ms < p->keep_failed_ms)
				retention_keep(it, RETENTION_WHY_FAILED);
		} else if (it->started_ms > now_ms)
			retention_keep(it, RETENTION_WHY_FUTURE);
		else
			c[nc++] = it;
	}
	qsort(c, nc, sizeof(*c), retention_cmp);
	if (p->timezone) {
		const char *cur = getenv("TZ");

		if (cur && !(old_tz = strdup(cur))) {
			free(c);
			return error_set(CF_ERR_NOMEM, "out of memory");
		}
		setenv("TZ", p->timezone, 1);
		tzset();
	}
	retention_rules(p, c, nc);
	if (p->timezone) {
		if (old_tz)
			setenv("TZ", old_tz, 1);
		else
			unsetenv("TZ");
		tzset();
	}
	free(old_tz);
	free(c);
	return 0;
}

void retention_merge(const struct retention_keys *defaults, const struct retention_keys *source,
                     const struct retention_keys *target, struct retention_policy *out)
{
	const struct retention_keys *lv[3] = {target, source, defaults};

	memset(out, 0, sizeof(*out));
	out->keep_failed_ms = 7 * 86400 * 1000LL;
	out->min_keep = 1;
	/* The lowest level first, each more specific one over it. */
	for (int i = 2; i >= 0; i--) {
		const struct retention_keys *k = lv[i];

		if (!k)
			continue;
		for (int r = 0; r < RETENTION_NRULES; r++)
			if (k->has & RETENTION_KEY_RULE(r))
				out->keep[r] = k->keep[r];
		if (k->has & RETENTION_KEY_WITHIN)
			out->keep_within_ms = k->keep_within_ms;
		if (k->has & RETENTION_KEY_FAILED)
			out->keep_failed_ms = k->keep_failed_ms;
		if (k->has & RETENTION_KEY_MIN_KEEP)
			out->min_keep = k->min_keep;
		if (k->has & RETENTION_KEY_TIMEZONE)
			out->timezone = k->timezone;
		if (k->has & RETENTION_KEY_ANY_KEEP)
			out->set = 1;
	}
}

/* "30d", "12h", "90m", "45s" or milliseconds: the largest whole unit. */
static void retention_duration(int64_t ms, char *out, size_t size)
{
	static const struct {
		int64_t ms;
		char unit;
	} units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms % units[i].ms == 0) {
			snprintf(out, size, "%lld%c", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	snprintf(out, size, "%lldms", (long long)ms);
}

void retention_explain(const struct retention_policy *p, const struct retention_item *it, char *out,
                       size_t size)
{
	struct buf b;
	char d[32];

	if (size == 0)
		return;
	out[0] = '\0';
	if (!it->keep) {
		snprintf(out, size, "remove");
		return;
	}
	buf_init(&b, size - 1);
#define WHY(text, ...)                                                                             \
	do {                                                                                       \
		if (buf_printf(&b, "%s" text, b.len ? ", " : "", __VA_ARGS__))                     \
			goto out;                                                                  \
	} while (0)
	for (int r = 0; r < RETENTION_NRULES; r++)
		if (it->why & RETENTION_WHY_RULE(r))
			WHY("%s %s", retention_rule_keys[r] + strlen("keep_"), it->period[r]);
	if (it->why & RETENTION_WHY_WITHIN) {
		retention_duration(p->keep_within_ms, d, sizeof(d));
		WHY("within %s", d);
	}
	if (it->why & RETENTION_WHY_MIN_KEEP)
		WHY("min_keep %u", p->min_keep);
	if (it->why & RETENTION_WHY_NEWEST)
		WHY("%s", "newest");
	if (it->why & RETENTION_WHY_RUNNING)
		WHY("%s", "running");
	if (it->why & RETENTION_WHY_FUTURE)
		WHY("%s", "started in the future (clock skew?)");
	if (it->why & RETENTION_WHY_FAILED) {
		retention_duration(p->keep_failed_ms, d, sizeof(d));
		WHY("failed, kept %s", d);
	}
	if (it->why & RETENTION_WHY_NO_POLICY)
		WHY("%s", "no policy");
#undef WHY
out:
	snprintf(out, size, "%s", b.data ? (const char *)b.data : "");
	buf_free(&b);
}
