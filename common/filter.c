/*
 * filter: the push-model chain that every stream flows through
 * (source -> tar -> zstd -> age -> hash -> storage, and back for restore).
 * This file only links and drives filters; each filter lives with its module.
 */
#include "common/common.h"

#include <errno.h>
#include <stdlib.h>

struct filter *filter_new(const struct filter_ops *ops, void *ctx)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (!f) {
		if (ops->free) {
			struct filter tmp = {.ops = ops, .ctx = ctx};
			ops->free(&tmp);
		}
		error_set(CF_ERR_NOMEM, "out of memory creating the %s filter", ops->name);
		return NULL;
	}
	f->ops = ops;
	f->ctx = ctx;
	return f;
}

struct filter *filter_chain(struct filter *head, ...)
{
	struct filter *prev = head, *f;
	va_list ap;

	va_start(ap, head);
	while ((f = va_arg(ap, struct filter *)) != NULL) {
		prev->next = f;
		prev = f;
	}
	va_end(ap);
	return head;
}

int filter_write(struct filter *f, const void *data, size_t len)
{
	if (f->finished)
		return error_set(CF_ERR_INTERNAL, "write after finish in the %s filter",
		                 f->ops->name);
	f->bytes_in += len;
	return f->ops->write(f, data, len);
}

int filter_emit(struct filter *f, const void *data, size_t len)
{
	f->bytes_out += len;
	if (!f->next || len == 0)
		return 0;
	return filter_write(f->next, data, len);
}

int filter_finish(struct filter *f)
{
	int rc = 0;

	for (; f && !rc; f = f->next) {
		if (f->finished)
			continue;
		if (f->ops->finish)
			rc = f->ops->finish(f);
		if (!rc)
			f->finished = 1;
	}
	return rc;
}

void filter_chain_free(struct filter *f)
{
	while (f) {
		struct filter *next = f->next;

		if (f->ops->free)
			f->ops->free(f);
		free(f);
		f = next;
	}
}

static int filter_null_write(struct filter *f, const uint8_t *data, size_t len)
{
	(void)data;
	f->bytes_out += len;
	return 0;
}

static const struct filter_ops filter_null_ops = {"null", filter_null_write, NULL, NULL};

int filter_null_new(struct filter **out)
{
	*out = filter_new(&filter_null_ops, NULL);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}

struct filter_fd {
	int fd;
	const char *what;
};

static int filter_fd_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct filter_fd *c = f->ctx;

	f->bytes_out += len;
	return fs_write_all(c->fd, data, len, c->what);
}

static void filter_fd_free(struct filter *f)
{
	free(f->ctx);
}

static const struct filter_ops filter_fd_ops = {"fd", filter_fd_write, NULL, filter_fd_free};

int filter_fd_new(int fd, const char *what, struct filter **out)
{
	struct filter_fd *c = malloc(sizeof(*c));

	*out = NULL;
	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	c->fd = fd;
	c->what = what;
	/* filter_new() frees c through ops->free if it fails. */
	*out = filter_new(&filter_fd_ops, c);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}
