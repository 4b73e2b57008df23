/*
 * source_command: backs up the standard output of a command as one raw stream
 * ("stdout"). Also the stdin source, which is the same loop over fd 0.
 *
 * The command runs without a shell (its line is split into words with
 * shell-like quoting) unless the config says shell = true. Its stderr is passed
 * to the log line by line and its tail kept for the error message. The stream
 * is committed only after the command has exited with status 0: a dump that
 * fails half-way never becomes a stored object.
 */
#include "agent/agent.h"
#include "agent/pipeline.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct source_command {
	char *name;
	char *command;
	int shell;
	struct strv pass_env; /* further variables the command sees (pass_env = A, B) */
};

static int source_command_create(const char *name, void **state)
{
	struct source_command *s = calloc(1, sizeof(*s));

	if (!s || !(s->name = strdup(name))) {
		free(s);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	*state = s;
	return 0;
}

static void source_command_free(void *state)
{
	struct source_command *s = state;

	if (!s)
		return;
	free(s->name);
	free(s->command);
	strv_free(&s->pass_env);
	free(s);
}

static int source_command_set(void *state, const char *key, const char *value)
{
	struct source_command *s = state;

	if (!strcmp(key, "command")) {
		if (!*value)
			return error_set(CF_ERR_CONFIG, "command is empty");
		free(s->command);
		s->command = strdup(value);
		return s->command ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!strcmp(key, "shell"))
		return source_parse_bool(key, value, &s->shell);
	if (!strcmp(key, "pass_env")) {
		strv_free(&s->pass_env);
		return strv_split(value, &s->pass_env);
	}
	return error_set(CF_ERR_CONFIG, "unknown key '%s' (expected command, shell, pass_env)",
	                 key);
}

static int source_command_check(void *state)
{
	struct source_command *s = state;

	if (!s->command)
		return error_set(CF_ERR_CONFIG, "missing key 'command'");
	return 0;
}

/*
 * Splits a command line into words: blanks separate words, '...' keeps text
 * as is, "..." keeps text but for \" and \\, a backslash outside quotes
 * escapes the next character. No expansion of any kind happens.
 */
static int source_command_split(const char *line, char ***argv_out)
{
	size_t cap = 8, n = 0;
	char **argv = calloc(cap, sizeof(*argv));
	char *word = malloc(strlen(line) + 1);
	const char *p = line;
	int rc = 0;

	if (!argv || !word) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		size_t wl = 0;
		int have = 0;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
			have = 1;
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');

				if (!e) {
					rc = error_set(CF_ERR_CONFIG, "unterminated ' in command");
					goto out;
				}
				memcpy(word + wl, p + 1, (size_t)(e - p - 1));
				wl += (size_t)(e - p - 1);
				p = e + 1;
			} else if (*p == '"') {
				p++;
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					word[wl++] = *p++;
				}
				if (*p != '"') {
					rc = error_set(CF_ERR_CONFIG, "unterminated \" in command");
					goto out;
				}
				p++;
			} else if (*p == '\\' && p[1]) {
				word[wl++] = p[1];
				p += 2;
			} else {
				word[wl++] = *p++;
			}
		}
		if (!have)
			continue;
		if (n + 2 > cap) {
			char **v = realloc(argv, cap * 2 * sizeof(*argv));

			if (!v) {
				rc = error_set(CF_ERR_NOMEM, "out of memory");
				goto out;
			}
			argv = v;
			cap *= 2;
		}
		argv[n] = strndup(word, wl);
		if (!argv[n]) {
			rc = error_set(CF_ERR_NOMEM, "out of memory");
			goto out;
		}
		argv[++n] = NULL;
	}
	if (n == 0)
		rc = error_set(CF_ERR_CONFIG, "command is empty");
out:
	free(word);
	if (rc) {
		for (size_t i = 0; argv && i < n; i++)
			free(argv[i]);
		free(argv);
		return rc;
	}
	*argv_out = argv;
	return 0;
}

static int source_command_run(void *state, struct backup_run *run)
{
	struct source_command *s = state;
	struct proc_spec spec;
	char **argv = NULL;
	char label[256];
	int rc = 0;

	if (!s->shell)
		rc = source_command_split(s->command, &argv);
	if (rc) {
		return error_set(CF_ERR_SOURCE, "source %s: %s", s->name, error_message());
	}
	snprintf(label, sizeof(label), "source %s: command", s->name);
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = argv;
	spec.shell = s->shell ? s->command : NULL;
	spec.pass_env = s->pass_env.v; /* NULL-terminated, or NULL when empty */
	spec.errcode = CF_ERR_SOURCE;
	rc = source_dump_child(run, &spec, "stdout", "raw", NULL);
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

/* coffer check: the program exists and may be run (it is not run: a
 * command's output is the backup). */
static int source_command_probe(void *state, struct buf *detail)
{
	struct source_command *s = state;
	const char *names[2] = {NULL, NULL}, *prog;
	char **argv = NULL, *path;
	int rc;

	if (!s->shell && source_command_split(s->command, &argv))
		return error_set(CF_ERR_SOURCE, "source %s: %s", s->name, error_message());
	prog = s->shell ? "/bin/sh" : argv[0];
	if (strchr(prog, '/')) {
		path = access(prog, X_OK) == 0 ? strdup(prog) : NULL;
	} else {
		names[0] = prog;
		path = source_db_find_tool(NULL, names);
	}
	if (!path)
		rc = error_set(CF_ERR_SOURCE, "source %s: %s is not an executable program%s",
		               s->name, prog, strchr(prog, '/') ? "" : " on PATH");
	else
		rc = buf_printf(detail, "%s found (not run)", path);
	free(path);
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

const struct source_ops source_command_ops = {
    .type = "command",
    .create = source_command_create,
    .set = source_command_set,
    .check = source_command_check,
    .run = source_command_run,
    .probe = source_command_probe,
    .free = source_command_free,
};
