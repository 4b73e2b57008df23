/*
 * log: leveled messages on stderr. One line a message, written with a single
 * write so lines from threads and child processes do not interleave.
 */
#include "common/common.h"

#include <stdio.h>
#include <unistd.h>

static enum log_level log_level_current = LOG_LEVEL_WARN;

void log_set_level(enum log_level level)
{
	log_level_current = level;
}

enum log_level log_get_level(void)
{
	return log_level_current;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char msg[8192], line[8192];
	va_list ap;
	int n;

	if (level > log_level_current)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line of valid UTF-8 whatever the message holds (file names, a
	 * tool's output): the journal and terminals get text. */
	n = snprintf(line, sizeof(line), "coffer: %s: ", names[level]);
	n += (int)fmt_text_escape(msg, line + n, sizeof(line) - 1 - (size_t)n, 1);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
