/*
 * backup_id: identifiers of backup runs, sortable in time order as strings.
 */
#include "common/common.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void backup_id_format(int64_t ms, uint32_t random, char out[BACKUP_ID_LEN + 1])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	/* The fields are range-limited by gmtime_r; the buffer is sized for the
	 * id, so a year past 9999 would only be truncated, never overflow. */
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%04d%02d%02dT%02d%02d%02d.%03dZ-%08x", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000),
	         random);
	memcpy(out, tmp, BACKUP_ID_LEN);
	out[BACKUP_ID_LEN] = '\0';
}

int backup_id_valid(const char *text)
{
	static const char shape[] = "dddddddd"
	                            "Tdddddd.dddZ-xxxxxxxx";

	if (strlen(text) != BACKUP_ID_LEN)
		return 0;
	for (size_t i = 0; i < BACKUP_ID_LEN; i++) {
		unsigned char c = (unsigned char)text[i];

		if (shape[i] == 'd' && !isdigit(c))
			return 0;
		if (shape[i] == 'x' && !(isdigit(c) || (c >= 'a' && c <= 'f')))
			return 0;
		if (shape[i] != 'd' && shape[i] != 'x' && c != (unsigned char)shape[i])
			return 0;
	}
	return 1;
}
