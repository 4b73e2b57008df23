/*
 * fmt: human-readable figures for progress lines and listings.
 */
#include "common/common.h"

#include <stdio.h>

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
