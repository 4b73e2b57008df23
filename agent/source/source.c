/*
 * source: helpers every source type shares (booleans, copying a file
 * descriptor into a stream, libarchive output into a stream). The registry
 * of types is source_registry.c, so this file calls no engine.
 */
#include "agent/source/source.h"
#include "agent/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SOURCE_COPY_CHUNK (256 * 1024)

int source_parse_bool(const char *key, const char *value, int *out)
{
	if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
		*out = 1;
	else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
		*out = 0;
	else
		return error_set(CF_ERR_CONFIG, "%s = '%s': expected true or false", key, value);
	return 0;
}

la_ssize_t source_tar_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct source_tar_out *o = ctx;
	int rc;

	/* After a failure the stream is being abandoned: accept nothing more. */
	if (!o->head) {
		archive_set_error(a, EIO, "stream closed");
		return -1;
	}
	rc = filter_write(o->head, buf, len);
	if (rc) {
		o->write_rc = rc;
		archive_set_error(a, EIO, "%s", error_message());
		return -1;
	}
	return (la_ssize_t)len;
}

int source_tar_error(const struct source_tar_out *o, struct archive *a, const char *source,
                     const char *what)
{
	if (o->write_rc)
		return o->write_rc;
	return error_set(CF_ERR_SOURCE, "source %s: cannot write the tar stream (%s): %s", source,
	                 what, archive_error_string(a));
}

int source_copy_fd(struct backup_run *run, int fd, struct filter *head, const char *what)
{
	uint8_t *chunk = malloc(SOURCE_COPY_CHUNK);
	int rc = 0;

	if (!chunk)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (;;) {
		ssize_t n = read(fd, chunk, SOURCE_COPY_CHUNK);

		if (backup_run_interrupted(run)) {
			rc = error_set(CF_ERR_INTERRUPTED,
			               "interrupted by a signal while reading %s", what);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = error_set_errno(CF_ERR_SOURCE, errno, "cannot read %s", what);
			break;
		}
		if (n == 0)
			break;
		rc = filter_write(head, chunk, (size_t)n);
		if (rc)
			break;
	}
	free(chunk);
	return rc;
}
