/* Tests agent/retention.c: the policy as a pure function with a fixed clock.
 * The expectations were worked out by hand from the rules (README,
 * Retention), not from this code. */
#include "agent/retention.h"
#include "common/common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#define DAY_MS (86400 * 1000LL)

/* Milliseconds of a UTC time written "2026-12-05 10:00". */
static int64_t at(const char *text)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(text, "%Y-%m-%d %H:%M", &tm));
	return (int64_t)timegm(&tm) * 1000;
}

static struct retention_policy policy(void)
{
	struct retention_policy p;

	memset(&p, 0, sizeof(p));
	p.set = 1;
	p.keep_failed_ms = 7 * DAY_MS;
	p.min_keep = 1;
	p.timezone = "UTC";
	return p;
}

/* Applies p to the complete backups started at times[] (UTC), and checks the
 * kept ones are exactly want ("1" per kept backup, in the order given). */
static void expect(const struct retention_policy *p, const char *const *times, size_t n,
                   const char *want)
{
	struct retention_item it[64];
	char got[65];

	assert_true(n <= 64 && strlen(want) == n);
	memset(it, 0, sizeof(it));
	for (size_t i = 0; i < n; i++) {
		it[i].started_ms = at(times[i]);
		it[i].state = RETENTION_COMPLETE;
	}
	assert_int_equal(retention_apply(p, at("2030-01-01 00:00"), it, n), 0);
	for (size_t i = 0; i < n; i++)
		got[i] = it[i].keep ? '1' : '0';
	got[n] = '\0';
	if (strcmp(got, want) != 0)
		fail_msg("kept %s, wanted %s", got, want);
}

/* keep_daily counts days that have backups, in the policy's timezone. */
static void test_daily_and_timezone(void **state)
{
	static const char *const t[] = {"2026-12-05 10:00", "2026-12-05 08:00", "2026-12-04 23:00",
	                                "2026-12-04 01:00", "2026-12-02 12:00", "2026-12-01 12:00"};
	struct retention_policy p = policy();
	struct retention_item it[1];
	char why[200];

	(void)state;
	p.keep[RETENTION_DAILY] = 3;
	expect(&p, t, 6, "101010");
	/* In Tokyo (UTC+9) 2026-12-04 23:00 UTC is already the 5th. */
	p.timezone = "Asia/Tokyo";
	expect(&p, t, 6, "100110");
	p.timezone = "XXX-9"; /* the same as a POSIX TZ string */
	expect(&p, t, 6, "100110");
	p.timezone = "Mars/Olympus_Mons";
	memset(it, 0, sizeof(it));
	assert_int_equal(retention_apply(&p, 0, it, 1), CF_ERR_CONFIG);
	assert_non_null(strstr(error_message(), "timezone 'Mars/Olympus_Mons' is unknown"));
	/* The reasons name the period. */
	p.timezone = "UTC";
	memset(it, 0, sizeof(it));
	it[0].started_ms = at("2026-12-05 10:00");
	assert_int_equal(retention_apply(&p, at("2026-12-06 00:00"), it, 1), 0);
	retention_explain(&p, &it[0], why, sizeof(why));
	assert_string_equal(why, "daily 2026-12-05, newest");
}

/* keep_last, keep_within (relative to the newest, strictly newer), and the
 * labels of each calendar rule, ISO weeks across a year end. */
static void test_last_within_periods(void **state)
{
	static const char *const t[] = {"2027-01-02 10:00", "2026-12-28 10:00", "2026-12-27 10:00",
	                                "2026-12-20 10:00", "2026-11-30 10:00", "2025-06-01 10:00"};
	struct retention_policy p = policy();
	struct retention_item it[6];
	char why[200];

	(void)state;
	p.keep[RETENTION_LAST] = 2;
	expect(&p, t, 6, "110000");
	p = policy();
	p.keep_within_ms = 6 * DAY_MS; /* 2026-12-27 10:00 is exactly 6 days older: not kept */
	expect(&p, t, 6, "110000");
	p.keep_within_ms = 6 * DAY_MS + 1;
	expect(&p, t, 6, "111000");
	p = policy();
	p.keep[RETENTION_WEEKLY] = 2; /* 2027-01-02 and 2026-12-28 are both in 2026-W53 */
	expect(&p, t, 6, "101000");
	p = policy();
	p.keep[RETENTION_MONTHLY] = 3;
	expect(&p, t, 6, "110010");
	p = policy();
	p.keep[RETENTION_YEARLY] = 5;
	expect(&p, t, 6, "110001");
	p.keep[RETENTION_LAST] = 1;
	p.keep[RETENTION_WEEKLY] = 1;
	p.keep[RETENTION_MONTHLY] = 2;
	p.keep_within_ms = DAY_MS;
	memset(it, 0, sizeof(it));
	for (int i = 0; i < 6; i++)
		it[i].started_ms = at(t[i]);
	assert_int_equal(retention_apply(&p, at("2027-01-03 00:00"), it, 6), 0);
	retention_explain(&p, &it[0], why, sizeof(why));
	assert_string_equal(why,
	                    "last 1, weekly 2026-W53, monthly 2027-01, yearly 2027, within 1d, "
	                    "newest");
	retention_explain(&p, &it[1], why, sizeof(why));
	assert_string_equal(why, "monthly 2026-12, yearly 2026");
	retention_explain(&p, &it[2], why, sizeof(why));
	assert_string_equal(why, "remove");
}

/* Failed, running and future records, min_keep, and no policy at all. */
static void test_states(void **state)
{
	struct retention_policy p = policy();
	struct retention_item it[7];
	int64_t now = at("2026-12-05 12:00");
	static const int want[7] = {1, 1, 1, 0, 1, 1, 0};
	char why[200];

	(void)state;
	memset(it, 0, sizeof(it));
	it[0].started_ms = at("2026-12-06 09:00"); /* a skewed clock: kept, not counted */
	it[1].started_ms = at("2026-12-05 11:00");
	it[1].state = RETENTION_RUNNING;
	it[2].started_ms = at("2026-12-05 09:00");
	it[2].state = RETENTION_FAILED; /* 3 hours old */
	it[3].started_ms = at("2026-11-20 09:00");
	it[3].state = RETENTION_FAILED; /* 15 days old */
	it[4].started_ms = at("2026-12-05 10:00");
	it[5].started_ms = at("2026-12-04 10:00");
	it[6].started_ms = at("2026-11-01 10:00");
	p.keep[RETENTION_LAST] = 1;
	p.min_keep = 2;
	assert_int_equal(retention_apply(&p, now, it, 7), 0);
	for (int i = 0; i < 7; i++)
		if (it[i].keep != want[i])
			fail_msg("item %d: keep %d, wanted %d", i, it[i].keep, want[i]);
	retention_explain(&p, &it[0], why, sizeof(why));
	assert_string_equal(why, "started in the future (clock skew?)");
	retention_explain(&p, &it[2], why, sizeof(why));
	assert_string_equal(why, "failed, kept 7d");
	retention_explain(&p, &it[4], why, sizeof(why));
	assert_string_equal(why, "last 1, newest");
	retention_explain(&p, &it[5], why, sizeof(why));
	assert_string_equal(why, "min_keep 2");
	/* The newest complete backup is kept whatever the policy says. */
	p = policy();
	p.min_keep = 0;
	p.keep_within_ms = 1;
	assert_int_equal(retention_apply(&p, now, it, 7), 0);
	assert_true(it[4].keep);
	assert_false(it[5].keep);
	p.set = 0;
	assert_int_equal(retention_apply(&p, now, it, 7), 0);
	for (int i = 0; i < 7; i++)
		assert_true(it[i].keep && it[i].why == RETENTION_WHY_NO_POLICY);
}

/*
 * Two years of hourly backups (2025-01-01 00:00 to 2026-12-31 23:00 UTC)
 * with a gap (no backups 2026-12-25 to 2026-12-27), a failed run every 100
 * hours, and three backups whose clocks ran ahead. Policy: 24 hourly, 7
 * daily, 4 weekly, 12 monthly, 3 yearly, min_keep 1, now 2027-01-01 00:00.
 * Counted by hand:
 * - hourly: the 24 newest, all of 2026-12-31;
 * - daily: 12-31 (already kept), then the 23:00 backups of 12-30, 29, 28,
 *   24, 23, 22 (12-25..27 have none): 6 more;
 * - weekly (ISO): 2026-W53 is 12-28..01-03: the newest is 12-31 23:00; W52
 *   (12-21..27) -> 12-24 23:00 (kept); W51 -> 12-20 23:00; W50 -> 12-13
 *   23:00: 2 more;
 * - monthly: 12 (kept), 11-30 23:00, 10-31, 09-30, 08-31, 07-31, 06-30,
 *   05-31, 04-30, 03-31, 02-28, 01-31 23:00: 11 more;
 * - yearly: 2026 (kept), 2025-12-31 23:00, then no more years: 1 more.
 * 24 + 6 + 2 + 11 + 1 = 44 complete backups kept, plus the 3 from the
 * future, plus the failed runs younger than 7 days.
 */
/* The worked example of restic's forget documentation (doc/060_forget.rst,
 * "Let's look at a simple example"): backups every weekday for two weeks,
 * a second one on Fridays, Wednesday 2025-04-30 missed. keep_daily 5 keeps
 * the newest of each of the last five days with backups, reaching back to
 * the first Friday's evening backup; six go. */
static void test_restic_doc_weekdays(void **state)
{
	static const char *const t[] = {"2025-04-21 11:00", "2025-04-22 11:00", "2025-04-23 11:00",
	                                "2025-04-24 11:00", "2025-04-25 11:00", "2025-04-25 23:00",
	                                "2025-04-28 11:00", "2025-04-29 11:00", "2025-05-01 11:00",
	                                "2025-05-02 11:00", "2025-05-02 23:00"};
	struct retention_policy p = policy();

	(void)state;
	p.keep[RETENTION_DAILY] = 5;
	expect(&p, t, 11, "00000111101");
}

/* 1 if the UTC day of secs is the last of its month. */
static int last_of_month(time_t secs)
{
	time_t next = secs + 86400;
	struct tm a, b;

	gmtime_r(&secs, &a);
	gmtime_r(&next, &b);
	return a.tm_mon != b.tm_mon;
}

/* The other worked example there: one backup a day for 100 years, and
 * keep_daily 7, keep_weekly 5, keep_monthly 12, keep_yearly 75. Here the
 * century ends on Wednesday 2025-12-31: the dailies are Dec 25-31 (7); the
 * weeklies the newest of ISO weeks 2026-W01 (Dec 31) and 2025-W52 (Dec 28),
 * both dailies already, then W51-W49: Dec 21, 14, 7 (3 more); the monthlies
 * Dec 31 (a daily) and the last days of Nov 2025 back to Jan 2025 (11 more);
 * the yearlies Dec 31 2025 (a daily) and Dec 31 of 2024 back to 1951 (74
 * more). 95 kept of 36,525. */
static void test_restic_doc_century(void **state)
{
	int64_t first = at("1926-01-01 12:00"), last = at("2025-12-31 12:00");
	size_t n = (size_t)((last - first) / DAY_MS) + 1, kept = 0;
	struct retention_item *it = calloc(n, sizeof(*it));
	struct retention_policy p = policy();
	char day[16];

	(void)state;
	assert_non_null(it);
	assert_int_equal(n, 36525);
	for (size_t i = 0; i < n; i++) {
		it[i].started_ms = first + (int64_t)i * DAY_MS;
		it[i].state = RETENTION_COMPLETE;
	}
	p.keep[RETENTION_DAILY] = 7;
	p.keep[RETENTION_WEEKLY] = 5;
	p.keep[RETENTION_MONTHLY] = 12;
	p.keep[RETENTION_YEARLY] = 75;
	assert_int_equal(retention_apply(&p, last + DAY_MS, it, n), 0);
	for (size_t i = 0; i < n; i++) {
		time_t secs = (time_t)(it[i].started_ms / 1000);
		struct tm tm;
		int want;

		gmtime_r(&secs, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		/* Kept: Dec 25-31 2025, Dec 7, 14, 21 2025, the last day of each
		 * month of 2025, and Dec 31 of 1951-2024. */
		want =
		    (tm.tm_year == 125 && tm.tm_mon == 11 &&
		     (tm.tm_mday >= 25 || tm.tm_mday == 7 || tm.tm_mday == 14 ||
		      tm.tm_mday == 21)) ||
		    (tm.tm_year == 125 && last_of_month(secs)) ||
		    (tm.tm_year >= 51 && tm.tm_year <= 124 && tm.tm_mon == 11 && tm.tm_mday == 31);
		if (it[i].keep != want)
			fail_msg("%s: kept %d, wanted %d", day, it[i].keep, want);
		kept += it[i].keep != 0;
	}
	assert_int_equal(kept, 95);
	free(it);
}

static void test_two_years(void **state)
{
	struct retention_policy p = policy();
	int64_t start = at("2025-01-01 00:00"), end = at("2027-01-01 00:00");
	int64_t gap0 = at("2026-12-25 00:00"), gap1 = at("2026-12-28 00:00");
	size_t n = 0, cap = 20000, kept = 0, failed_kept = 0, failed_recent = 0, future = 0;
	struct retention_item *it = calloc(cap, sizeof(*it));

	(void)state;
	assert_non_null(it);
	for (int64_t t = start; t < end; t += 3600 * 1000) {
		if (t >= gap0 && t < gap1)
			continue;
		it[n].started_ms = t;
		it[n].state = (n % 100 == 99) ? RETENTION_FAILED : RETENTION_COMPLETE;
		if (it[n].state == RETENTION_FAILED && end - t < 7 * DAY_MS)
			failed_recent++;
		n++;
	}
	for (int k = 1; k <= 3; k++) {
		it[n].started_ms = end + k * DAY_MS;
		it[n++].state = RETENTION_COMPLETE;
	}
	/* The 24 newest hours must all be complete for the count above. */
	for (size_t i = n - 3 - 24; i < n - 3; i++)
		it[i].state = RETENTION_COMPLETE;
	failed_recent = 0;
	for (size_t i = 0; i < n; i++)
		failed_recent +=
		    it[i].state == RETENTION_FAILED && end - it[i].started_ms < 7 * DAY_MS;
	p.keep[RETENTION_HOURLY] = 24;
	p.keep[RETENTION_DAILY] = 7;
	p.keep[RETENTION_WEEKLY] = 4;
	p.keep[RETENTION_MONTHLY] = 12;
	p.keep[RETENTION_YEARLY] = 3;
	/* Shuffle: the order of the input must not matter. */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (i * 7919) % (i + 1);
		struct retention_item tmp = it[i];

		it[i] = it[j];
		it[j] = tmp;
	}
	assert_int_equal(retention_apply(&p, end, it, n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!it[i].keep)
			continue;
		if (it[i].state == RETENTION_FAILED)
			failed_kept++;
		else if (it[i].why & RETENTION_WHY_FUTURE)
			future++;
		else
			kept++;
		/* the 2026-12-13 23:00 backup: weekly 2026-W50 */
		if (it[i].started_ms == at("2026-12-13 23:00"))
			assert_string_equal(it[i].period[RETENTION_WEEKLY], "2026-W50");
	}
	assert_int_equal(kept, 44);
	assert_int_equal(future, 3);
	assert_int_equal(failed_kept, failed_recent);
	free(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_daily_and_timezone),
	    cmocka_unit_test(test_last_within_periods),
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_two_years),
	    cmocka_unit_test(test_restic_doc_weekdays),
	    cmocka_unit_test(test_restic_doc_century),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
