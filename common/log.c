/*
 * log: leveled messages on stderr. One line a message, written with a single
 * write so lines from threads and child processes do not interleave.
 *
 * Two formats: text, "coffer: LEVEL: [SOURCE ID] message" (the bracket only
 * during a backup run, see log_context_set()), and json, one object a line
 * for log collectors: {"time", "level", "source", "backup", "message"}.
 *
 * The run's context is published without a lock, so that threads and a
 * forked child can log at any moment: log_context_set() writes the next of
 * a ring of static slots, then makes it current with an atomic store; a
 * reader loads the index once and copies that slot. A slot is written again
 * only LOG_CTX_SLOTS runs later.
 */
#include "common/common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_CTX_SLOTS 16

struct log_ctx {
	char source[128];
	char backup[64];
};

static enum log_level log_level_current = LOG_LEVEL_WARN;
static enum log_format log_format_current = LOG_FORMAT_TEXT;
static struct log_ctx log_ctx_slots[LOG_CTX_SLOTS];
static atomic_int log_ctx_current = -1; /* -1: no run */
static int log_ctx_next;                /* written by log_context_set() only */

void log_set_level(enum log_level level)
{
	log_level_current = level;
}

enum log_level log_get_level(void)
{
	return log_level_current;
}

void log_set_format(enum log_format format)
{
	log_format_current = format;
}

int log_parse_format(const char *name, enum log_format *out)
{
	if (!strcmp(name, "text"))
		*out = LOG_FORMAT_TEXT;
	else if (!strcmp(name, "json"))
		*out = LOG_FORMAT_JSON;
	else
		return error_set(CF_ERR_USAGE, "--log-format '%.40s': expected text or json", name);
	return 0;
}

void log_context_set(const char *source, const char *backup_id)
{
	struct log_ctx *c;

	if (!source && !backup_id) {
		atomic_store(&log_ctx_current, -1);
		return;
	}
	log_ctx_next = (log_ctx_next + 1) % LOG_CTX_SLOTS;
	c = &log_ctx_slots[log_ctx_next];
	snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
	snprintf(c->backup, sizeof(c->backup), "%s", backup_id ? backup_id : "");
	atomic_store(&log_ctx_current, log_ctx_next);
}

/* Appends s to out as the body of a JSON string (s is valid UTF-8 without
 * control characters: fmt_text_escape() made it so). */
static size_t log_json_str(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s && n + 2 < size; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char msg[8192], esc[8192], line[16384];
	struct log_ctx ctx = {"", ""};
	int slot = atomic_load(&log_ctx_current);
	va_list ap;
	size_t n;

	if (level > log_level_current)
		return;
	if (slot >= 0)
		ctx = log_ctx_slots[slot];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line of valid UTF-8 whatever the message holds (file names, a
	 * tool's output): the journal and terminals get text. */
	fmt_text_escape(msg, esc, sizeof(esc), 1);
	if (log_format_current == LOG_FORMAT_JSON) {
		char when[40];

		time_format_iso(time_real_ms(), when, sizeof(when));
		n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\"", when,
		                     names[level]);
		if (slot >= 0) {
			n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"source\":\"");
			n += log_json_str(ctx.source, line + n, sizeof(line) - n);
			n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"backup\":\"");
			n += log_json_str(ctx.backup, line + n, sizeof(line) - n);
			n += (size_t)snprintf(line + n, sizeof(line) - n, "\"");
		}
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"message\":\"");
		n += log_json_str(esc, line + n, sizeof(line) - 4 - n);
		memcpy(line + n, "\"}", 2);
		n += 2;
	} else if (slot >= 0) {
		n = (size_t)snprintf(line, sizeof(line) - 1, "coffer: %s: [%s %s] %s", names[level],
		                     ctx.source, ctx.backup, esc);
	} else {
		n = (size_t)snprintf(line, sizeof(line) - 1, "coffer: %s: %s", names[level], esc);
	}
	if (n > sizeof(line) - 1)
		n = sizeof(line) - 1;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
