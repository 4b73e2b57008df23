/*
 * fault: named fault-injection points for the tests ($COFFER_FAULT). Unset,
 * a point costs one getenv.
 */
#include "common/common.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fault_point(const char *point)
{
	const char *spec = getenv("COFFER_FAULT");
	size_t n = strlen(point);

	if (!spec)
		return 0;
	for (const char *p = strstr(spec, point); p; p = strstr(p + 1, point)) {
		if ((p != spec && p[-1] != ',') || p[n] != ':')
			continue;
		if (!strncmp(p + n + 1, "kill", 4))
			kill(getpid(), SIGKILL);
		if (!strncmp(p + n + 1, "pause", 5))
			sleep(3);
		if (!strncmp(p + n + 1, "fail", 4))
			return error_set(CF_ERR_IO, "injected fault at %s (COFFER_FAULT)", point);
	}
	return 0;
}
