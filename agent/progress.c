/*
 * progress: a pass-through filter that shows, on a terminal, how much of a
 * stream has been read, the rate and the elapsed time. It is only put in the
 * chain when stderr is a terminal, so scripts and timers see no noise.
 */
#include "agent/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct progress {
	char label[128];
	double start;
	double last;
	int drawn;
};

static void progress_draw(struct filter *f, double now)
{
	struct progress *p = f->ctx;
	char bytes[32], rate[32], line[256];
	double el = now - p->start;
	int n;

	fmt_bytes(f->bytes_in, bytes, sizeof(bytes));
	fmt_bytes(el > 0 ? (uint64_t)((double)f->bytes_in / el) : 0, rate, sizeof(rate));
	n = snprintf(line, sizeof(line), "\r\033[K%s: %s read, %s/s, %02d:%02d", p->label, bytes,
	             rate, (int)el / 60, (int)el % 60);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, strnlen(line, sizeof(line)));
	p->drawn = 1;
	p->last = now;
}

static int progress_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct progress *p = f->ctx;
	double now = time_mono();

	if (now - p->last >= 0.5)
		progress_draw(f, now);
	return filter_emit(f, data, len);
}

static void progress_free(struct filter *f)
{
	progress_filter_done(f);
	free(f->ctx);
}

static const struct filter_ops progress_ops = {"progress", progress_write, NULL, progress_free};

int progress_filter_new(const char *label, struct filter **out)
{
	struct progress *p = calloc(1, sizeof(*p));

	if (!p)
		return error_set(CF_ERR_NOMEM, "out of memory");
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->start = time_mono();
	p->last = p->start;
	*out = filter_new(&progress_ops, p);
	return *out ? 0 : CF_ERR_NOMEM;
}

void progress_filter_done(struct filter *f)
{
	struct progress *p = f ? f->ctx : NULL;

	if (p && p->drawn) {
		(void)!write(STDERR_FILENO, "\r\033[K", 4);
		p->drawn = 0;
	}
}
