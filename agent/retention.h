/*
 * retention: which backups of one source in one repository a policy keeps,
 * as a pure function of their records and a clock (restic forget's rules).
 * `coffer prune` builds on it; nothing here reads the catalog or deletes.
 */
#ifndef COFFER_RETENTION_H
#define COFFER_RETENTION_H

#include <stddef.h>
#include <stdint.h>

/* The counted rules, in the order their reasons are printed. */
enum retention_rule {
	RETENTION_LAST,
	RETENTION_HOURLY,
	RETENTION_DAILY,
	RETENTION_WEEKLY,
	RETENTION_MONTHLY,
	RETENTION_YEARLY,
	RETENTION_NRULES
};

/* The configuration keys of the counted rules, in enum order: "keep_last",
 * "keep_hourly", ... "keep_yearly". */
extern const char *const retention_rule_keys[RETENTION_NRULES];

struct retention_policy {
	int set;                         /* any keep_* key given; else nothing is pruned */
	unsigned keep[RETENTION_NRULES]; /* keep_last, keep_hourly, ... keep_yearly (0: off) */
	int64_t keep_within_ms;          /* everything this much older than the newest (0: off) */
	int64_t keep_failed_ms;          /* records of failed runs this recent stay (7d) */
	unsigned min_keep;               /* never fewer complete backups than this (1) */
	const char *timezone;            /* for the calendar periods; NULL: the host's */
};

/* The retention keys one section sets ([retention], [source NAME] or a
 * [repository ...]); has says which (RETENTION_KEY_* bits). */
#define RETENTION_KEY_RULE(r) (1u << (r))
#define RETENTION_KEY_WITHIN 0x100u
#define RETENTION_KEY_FAILED 0x200u
#define RETENTION_KEY_MIN_KEEP 0x400u
#define RETENTION_KEY_TIMEZONE 0x800u
#define RETENTION_KEY_ANY_KEEP 0x13fu /* the keep_* keys: any makes a policy */

struct retention_keys {
	uint32_t has;
	unsigned keep[RETENTION_NRULES];
	int64_t keep_within_ms, keep_failed_ms;
	unsigned min_keep;
	char *timezone;
};

/* The policy for one source in one target: per key, the target's value wins
 * over the source's, which wins over [retention]'s; keep_failed 7d and
 * min_keep 1 when none sets them; set when any level has a keep_* key. */
void retention_merge(const struct retention_keys *defaults, const struct retention_keys *source,
                     const struct retention_keys *target, struct retention_policy *out);
/* Checks a timezone name (an existing /usr/share/zoneinfo name, or a POSIX
 * TZ string). Errors: CF_ERR_CONFIG naming it. */
int retention_timezone_check(const char *tz);

/* What a backup is, for retention. */
enum retention_state { RETENTION_COMPLETE, RETENTION_FAILED, RETENTION_RUNNING };

/* Why a backup is kept (bits of retention_item.why). */
#define RETENTION_WHY_RULE(r) (1u << (r)) /* a counted rule, period[r] says which */
#define RETENTION_WHY_WITHIN 0x100u       /* keep_within */
#define RETENTION_WHY_MIN_KEEP 0x200u     /* min_keep */
#define RETENTION_WHY_NEWEST 0x400u       /* the newest complete backup */
#define RETENTION_WHY_RUNNING 0x800u      /* still running */
#define RETENTION_WHY_FUTURE 0x1000u      /* started after now: a skewed clock */
#define RETENTION_WHY_FAILED 0x2000u      /* a failed run's record, younger than keep_failed */
#define RETENTION_WHY_NO_POLICY 0x4000u   /* the source has no policy */

#define RETENTION_LABEL_LEN 16

struct retention_item {
	/* in */
	int64_t started_ms;
	enum retention_state state;
	/* out */
	int keep;
	unsigned why;
	/* for each counted rule that kept it: the period ("2026-12-03 14h",
	 * "2026-12-03", "2026-W49", "2026-12", "2026"), or for keep_last its
	 * place ("3": the third newest) */
	char period[RETENTION_NRULES][RETENTION_LABEL_LEN];
};

/*
 * Decides keep or remove for each of n items (one source in one repository;
 * their order does not matter and is kept). Backups are ordered by their
 * recorded start time, newest first; only complete ones count for the rules:
 * - keep_last N keeps the N newest;
 * - keep_hourly/daily/weekly/monthly/yearly N keep the newest backup of each
 *   of the N newest calendar periods (in timezone) that have one, counted
 *   back from the newest backup (restic's forget; ISO weeks);
 * - keep_within D keeps those started less than D before the newest;
 * - then, if fewer than min_keep are kept, the newest others up to min_keep.
 * The newest complete backup, running ones, and those that started after
 * now_ms (kept and reported) are never removed; failed runs go once older
 * than keep_failed_ms. Without a policy (set 0) everything is kept.
 * Errors: CF_ERR_CONFIG (an unknown timezone).
 */
int retention_apply(const struct retention_policy *p, int64_t now_ms, struct retention_item *items,
                    size_t n);

/* The reasons it was kept, "daily 2026-12-03, monthly 2026-11, last 3", or
 * "remove". */
void retention_explain(const struct retention_policy *p, const struct retention_item *it, char *out,
                       size_t size);

#endif
