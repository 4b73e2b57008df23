/*
 * source_stdin: `coffer backup --stdin NAME` stores coffer's own standard
 * input as one raw stream ("stdin"). It has no config keys; it is created by
 * the backup command, not from a [source] section.
 */
#include "agent/pipeline.h"
#include "agent/source/source.h"

#include <stdlib.h>
#include <unistd.h>

static int source_stdin_create(const char *name, void **state)
{
	(void)name;
	*state = NULL;
	return 0;
}

static int source_stdin_set(void *state, const char *key, const char *value)
{
	(void)state;
	(void)value;
	return error_set(CF_ERR_CONFIG, "unknown key '%s' (the stdin source has none)", key);
}

static int source_stdin_check(void *state)
{
	(void)state;
	return 0;
}

static int source_stdin_run(void *state, struct backup_run *run)
{
	struct filter *head;
	int rc;

	(void)state;
	rc = backup_stream_open(run, "stdin", "raw", &head);
	if (!rc)
		rc = source_copy_fd(run, STDIN_FILENO, head, "standard input");
	if (!rc)
		rc = backup_stream_close(run);
	return rc;
}

static void source_stdin_free(void *state)
{
	(void)state;
}

const struct source_ops source_stdin_ops = {
    .type = "stdin",
    .create = source_stdin_create,
    .set = source_stdin_set,
    .check = source_stdin_check,
    .run = source_stdin_run,
    .free = source_stdin_free,
};
