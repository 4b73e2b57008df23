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
#include "agent/pipeline.h"
#include "agent/source/source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOURCE_COMMAND_CHUNK (256 * 1024)
#define SOURCE_COMMAND_TAIL 2048

struct source_command {
	char *name;
	char *command;
	int shell;
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
	return error_set(CF_ERR_CONFIG, "unknown key '%s' (expected command, shell)", key);
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

/* Keeps the last bytes of the command's stderr and logs complete lines. */
struct source_command_stderr {
	const char *source;
	char line[1024];
	size_t line_len;
	char tail[SOURCE_COMMAND_TAIL];
	size_t tail_len;
};

static void source_command_stderr_line(struct source_command_stderr *e)
{
	size_t n = e->line_len;

	if (n == 0)
		return;
	/* A dump tool's stderr is its diagnostics: keep it in the journal of a
	 * scheduled run without needing --verbose. */
	log_warn("source %s: stderr: %.*s", e->source, (int)n, e->line);
	/* The tail keeps the last lines, separated by " | ", for the error. */
	if (n + 3 > sizeof(e->tail))
		n = sizeof(e->tail) - 3;
	if (e->tail_len + n + 3 > sizeof(e->tail)) {
		size_t drop = e->tail_len + n + 3 - sizeof(e->tail);

		memmove(e->tail, e->tail + drop, e->tail_len - drop);
		e->tail_len -= drop;
	}
	if (e->tail_len) {
		memcpy(e->tail + e->tail_len, " | ", 3);
		e->tail_len += 3;
	}
	memcpy(e->tail + e->tail_len, e->line + e->line_len - n, n);
	e->tail_len += n;
	e->line_len = 0;
}

static void source_command_stderr_feed(struct source_command_stderr *e, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			source_command_stderr_line(e);
		} else if (e->line_len < sizeof(e->line)) {
			e->line[e->line_len++] = data[i];
		}
	}
}

static void source_command_child(int out_fd, int err_fd, int status_fd, char **argv, const char *line,
				 int shell)
{
	int e;

	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (shell)
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
	else
		execvp(argv[0], argv);
	/* Tell the parent why exec failed, through the close-on-exec pipe. */
	e = errno;
	(void)!write(status_fd, &e, sizeof(e));
	_exit(127);
}

/* Stops a command that is still running: SIGTERM, then SIGKILL after 5 s. */
static void source_command_kill(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int source_command_run(void *state, struct backup_run *run)
{
	struct source_command *s = state;
	struct source_command_stderr err;
	char **argv = NULL;
	int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, st_pipe[2] = {-1, -1};
	struct filter *head = NULL;
	uint8_t *chunk = NULL;
	pid_t pid = -1;
	int rc = 0, status = 0, exec_errno = 0, open_fds = 2;

	memset(&err, 0, sizeof(err));
	err.source = s->name;
	if (!s->shell)
		rc = source_command_split(s->command, &argv);
	if (rc)
		return error_set(CF_ERR_SOURCE, "source %s: %s", s->name, error_message());
	chunk = malloc(SOURCE_COMMAND_CHUNK);
	if (!chunk) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(st_pipe, O_CLOEXEC)) {
		rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot create a pipe", s->name);
		goto out;
	}
	/* A bigger pipe means fewer wake-ups on a fast dump; failure is harmless. */
	(void)fcntl(out_pipe[0], F_SETPIPE_SZ, 1024 * 1024);
	rc = backup_stream_open(run, "stdout", "raw", &head);
	if (rc)
		goto out;
	pid = fork();
	if (pid < 0) {
		rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot fork", s->name);
		goto out;
	}
	if (pid == 0)
		source_command_child(out_pipe[1], err_pipe[1], st_pipe[1], argv, s->command, s->shell);
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(st_pipe[1]);
	out_pipe[1] = err_pipe[1] = st_pipe[1] = -1;
	if (read(st_pipe[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno)) {
		waitpid(pid, NULL, 0);
		pid = -1;
		rc = error_set(CF_ERR_SOURCE, "source %s: cannot run '%s': %s", s->name,
			       argv ? argv[0] : "/bin/sh", strerror(exec_errno));
		goto out;
	}

	while (open_fds > 0) {
		struct pollfd pfd[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
		int pr = poll(pfd, 2, 1000);

		if (backup_run_interrupted(run)) {
			rc = error_set(CF_ERR_INTERRUPTED, "source %s: interrupted by a signal", s->name);
			goto out;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: poll failed", s->name);
			goto out;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, chunk, i == 0 ? SOURCE_COMMAND_CHUNK : 4096);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = error_set_errno(CF_ERR_SOURCE, errno, "source %s: cannot read the command's output",
						     s->name);
				goto out;
			}
			if (n == 0) {
				close(pfd[i].fd);
				if (i == 0)
					out_pipe[0] = -1;
				else
					err_pipe[0] = -1;
				open_fds--;
				continue;
			}
			if (i == 1) {
				source_command_stderr_feed(&err, (char *)chunk, (size_t)n);
				continue;
			}
			rc = filter_write(head, chunk, (size_t)n);
			if (rc)
				goto out;
		}
	}
	source_command_stderr_line(&err);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (WIFSIGNALED(status))
		rc = error_set(CF_ERR_SOURCE, "source %s: command was killed by signal %d%s%.*s", s->name,
			       WTERMSIG(status), err.tail_len ? "; stderr: " : "", (int)err.tail_len, err.tail);
	else if (WEXITSTATUS(status) != 0)
		rc = error_set(CF_ERR_SOURCE, "source %s: command exited with status %d%s%.*s", s->name,
			       WEXITSTATUS(status), err.tail_len ? "; stderr: " : "", (int)err.tail_len,
			       err.tail);
	if (!rc)
		rc = backup_stream_close(run);
out:
	if (pid > 0)
		source_command_kill(pid);
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (st_pipe[i] >= 0)
			close(st_pipe[i]);
	}
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
	free(chunk);
	return rc;
}

const struct source_ops source_command_ops = {
	"command",           source_command_create, source_command_set, source_command_check,
	source_command_run, source_command_free,
};
