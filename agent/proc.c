/*
 * proc: running the tools coffer drives. See proc.h.
 */
#include "agent/proc.h"
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_CHUNK (256 * 1024)

extern char **environ;

/* ------------------------------------------------------------------------ */
/* Starting                                                                   */
/* ------------------------------------------------------------------------ */

static int proc_env_match(const char *entry, const char *change)
{
	size_t n = strcspn(change, "=");

	return !strncmp(entry, change, n) && entry[n] == '=';
}

/*
 * What a child may see of coffer's environment: what any tool needs to run
 * (PATH, locale, HOME, TMPDIR, TZ...) and the documented variables of the
 * database clients (PG*, MYSQL*, MARIADB*, REDISCLI_*), and nothing else:
 * never coffer's own credentials (AWS_*, the kubeconfig's), which a `command`
 * running `env` would otherwise store in the backup. A command source passes
 * more with pass_env (spec->pass).
 */
static int proc_env_allowed(const char *entry, char *const *pass)
{
	static const char *const names[] = {"PATH", "HOME",   "USER", "LOGNAME", "LANG", "LANGUAGE",
	                                    "TZ",   "TMPDIR", "TERM", "SHELL",   NULL};
	static const char *const prefixes[] = {"LC_", "PG", "MYSQL", "MARIADB", "REDISCLI_", NULL};

	for (int i = 0; names[i]; i++)
		if (proc_env_match(entry, names[i]))
			return 1;
	for (int i = 0; prefixes[i]; i++)
		if (!strncmp(entry, prefixes[i], strlen(prefixes[i])))
			return 1;
	for (size_t i = 0; pass && pass[i]; i++)
		if (proc_env_match(entry, pass[i]))
			return 1;
	return 0;
}

/* The child's environment: the allowed part of coffer's, with spec->env
 * applied; the strings are borrowed. */
static char **proc_env_build(char *const *changes, char *const *pass)
{
	size_t n = 0, m = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	while (changes && changes[m])
		m++;
	env = calloc(n + m + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int changed = 0;

		for (size_t j = 0; j < m && !changed; j++)
			changed = proc_env_match(environ[i], changes[j]);
		if (!changed && proc_env_allowed(environ[i], pass))
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		if (strchr(changes[j], '='))
			env[k++] = changes[j];
	env[k] = NULL;
	return env;
}

static int proc_nice, proc_ioprio;

void proc_child_priority(int nice, int ioprio)
{
	proc_nice = nice;
	proc_ioprio = ioprio;
}

static void proc_child(const struct proc_spec *s, int in_fd, int out_fd, int err_fd, int status_fd,
                       char **env, pid_t parent)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int e;

	if (in_fd < 0)
		in_fd = devnull;
	if (s->log_path) {
		out_fd = err_fd =
		    open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (out_fd < 0 || (s->uid && fchown(out_fd, s->uid, s->gid) != 0))
			goto fail;
	}
	if (out_fd < 0)
		out_fd = devnull;
	if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0) {
		e = errno;
		(void)!write(status_fd, &e, sizeof(e));
		_exit(127);
	}
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* IOPRIO_WHO_PROCESS (1), this process. */
	if ((proc_nice > 0 && setpriority(PRIO_PROCESS, 0, proc_nice) != 0) ||
	    (proc_ioprio && syscall(SYS_ioprio_set, 1, 0, proc_ioprio) != 0))
		goto fail;
	if (s->uid && (setgroups(0, NULL) != 0 || setgid(s->gid) != 0 || setuid(s->uid) != 0))
		goto fail;
	/* After setuid, which clears it; a parent already gone is seen too. */
	if ((s->log_path || s->die_with_parent) &&
	    (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
		goto fail;
	if (s->shell)
		execle("/bin/sh", "sh", "-c", s->shell, (char *)NULL, env);
	else
		execvpe(s->argv[0], s->argv, env);
fail:
	/* Tell the parent why, through the close-on-exec pipe. */
	e = errno;
	(void)!write(status_fd, &e, sizeof(e));
	_exit(127);
}

int proc_start(const struct proc_spec *s, struct proc *p)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, st[2] = {-1, -1};
	const char *prog = s->shell ? "/bin/sh" : s->argv[0];
	int code = s->errcode ? s->errcode : CF_ERR_SOURCE;
	char **env = NULL;
	int exec_errno = 0, rc = 0;
	pid_t parent;

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->in = p->out = p->err = -1;
	p->errcode = code;
	p->stderr_debug = s->stderr_debug;
	snprintf(p->label, sizeof(p->label), "%s", s->label);
	env = proc_env_build(s->env, s->pass_env);
	if (!env)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if ((s->in && pipe2(in, O_CLOEXEC)) || (s->out && pipe2(out, O_CLOEXEC)) ||
	    pipe2(err, O_CLOEXEC) || pipe2(st, O_CLOEXEC)) {
		rc = error_set_errno(code, errno, "%s: cannot create a pipe", p->label);
		goto out;
	}
	/* A bigger pipe means fewer wake-ups on a fast dump; failure is harmless. */
	if (s->out)
		(void)fcntl(out[0], F_SETPIPE_SZ, 1024 * 1024);
	if (s->in)
		(void)fcntl(in[1], F_SETPIPE_SZ, 1024 * 1024);
	parent = getpid();
	p->pid = fork();
	if (p->pid < 0) {
		rc = error_set_errno(code, errno, "%s: cannot fork", p->label);
		goto out;
	}
	if (p->pid == 0)
		proc_child(s, in[0], out[1], err[1], st[1], env, parent);
	close(st[1]);
	st[1] = -1;
	if (read(st[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno)) {
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
		p->pid = -1;
		rc = error_set(code, "%s: cannot run '%s': %s", p->label, prog,
		               strerror(exec_errno));
		goto out;
	}
	p->in = in[1];
	p->out = out[0];
	p->err = err[0];
	in[1] = out[0] = err[0] = -1;
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (st[i] >= 0)
			close(st[i]);
	}
	free(env);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* stderr                                                                     */
/* ------------------------------------------------------------------------ */

/* Logs a line of the child's stderr: its diagnostics, kept in the journal of
 * a scheduled run without needing --verbose. */
static void proc_stderr_log(const struct proc *p, const char *line, size_t n)
{
	if (p->stderr_debug)
		log_debug("%s: %.*s", p->label, (int)n, line);
	else
		log_warn("%s: %.*s", p->label, (int)n, line);
}

/* Drops the oldest line of the tail, logging it unless it was said. */
static void proc_tail_drop(struct proc *p)
{
	size_t n = p->tail_lens[0], drop = n + (p->tail_n > 1 ? 3 : 0);

	if (p->tail_said)
		p->tail_said--;
	else
		proc_stderr_log(p, p->tail, n);
	memmove(p->tail, p->tail + drop, p->tail_len - drop);
	p->tail_len -= drop;
	memmove(p->tail_lens, p->tail_lens + 1, (p->tail_n - 1) * sizeof(p->tail_lens[0]));
	p->tail_n--;
}

/* Logs the lines of the tail not said yet (the child ended well, or its
 * error was another). The tail itself stays (proc_stderr_tail()). */
static void proc_tail_say(struct proc *p)
{
	size_t off = 0;

	for (size_t i = 0; i < p->tail_n; i++) {
		if (i >= p->tail_said)
			proc_stderr_log(p, p->tail + off, p->tail_lens[i]);
		off += p->tail_lens[i] + 3;
	}
	p->tail_said = p->tail_n;
}

static void proc_stderr_line(struct proc *p)
{
	size_t n = p->line_len;

	if (n == 0)
		return;
	/* The tail keeps the last lines, separated by " | ", for the error. */
	if (n + 3 > sizeof(p->tail))
		n = sizeof(p->tail) - 3;
	while (p->tail_n > 0 &&
	       (p->tail_n == PROC_TAIL_LINES || p->tail_len + n + 3 > sizeof(p->tail) - 1))
		proc_tail_drop(p);
	p->tail_lens[p->tail_n++] = n;
	if (p->tail_len) {
		memcpy(p->tail + p->tail_len, " | ", 3);
		p->tail_len += 3;
	}
	memcpy(p->tail + p->tail_len, p->line + p->line_len - n, n);
	p->tail_len += n;
	p->line_len = 0;
}

static void proc_stderr_feed(struct proc *p, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n')
			proc_stderr_line(p);
		else if (p->line_len < sizeof(p->line))
			p->line[p->line_len++] = data[i];
	}
}

const char *proc_stderr_tail(struct proc *p)
{
	if (p->tail_len >= sizeof(p->tail))
		p->tail_len = sizeof(p->tail) - 1;
	p->tail[p->tail_len] = '\0';
	return p->tail;
}

/* Reads what stderr has; closes it at EOF. */
static int proc_stderr_read(struct proc *p)
{
	char chunk[4096];
	ssize_t n = read(p->err, chunk, sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		proc_stderr_line(p);
		close(p->err);
		p->err = -1;
		return 0;
	}
	proc_stderr_feed(p, chunk, (size_t)n);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Pumping                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Waits for the child's stdout (when want_out) or stdin (when want_in) to be
 * ready, serving stderr meanwhile. *ready is set when the wanted fd is.
 */
static int proc_wait_ready(struct proc *p, int want_out, int want_in, int *ready)
{
	struct pollfd pfd[2];
	int fd = want_out ? p->out : want_in ? p->in : -1;
	int pr;

	*ready = 0;
	pfd[0].fd = fd;
	pfd[0].events = want_out ? POLLIN : POLLOUT;
	pfd[0].revents = 0;
	pfd[1].fd = p->err;
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	/* A signal handled on another thread does not interrupt this poll:
	 * the timeout bounds how late a cancellation is seen. */
	pr = poll(pfd, 2, 200);
	if (cancel_requested())
		return error_set(CF_ERR_INTERRUPTED, "%s: interrupted by a signal", p->label);
	if (pr < 0 && errno == EINTR)
		return 0;
	if (pr < 0)
		return error_set_errno(p->errcode, errno, "%s: poll failed", p->label);
	if (pfd[1].fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
		proc_stderr_read(p);
	if (fd >= 0 && pfd[0].revents)
		*ready = 1;
	return 0;
}

int proc_pump(struct proc *p, struct filter *head)
{
	uint8_t *chunk = malloc(PROC_CHUNK);
	int rc = 0, ready;

	if (!chunk)
		return error_set(CF_ERR_NOMEM, "out of memory");
	while (p->out >= 0) {
		ssize_t n;

		rc = proc_wait_ready(p, 1, 0, &ready);
		if (rc)
			break;
		if (!ready)
			continue;
		n = read(p->out, chunk, PROC_CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			rc = error_set_errno(p->errcode, errno, "%s: cannot read its output",
			                     p->label);
			break;
		}
		if (n == 0) {
			close(p->out);
			p->out = -1;
			break;
		}
		if (head) {
			rc = filter_write(head, chunk, (size_t)n);
			if (rc)
				break;
		}
	}
	free(chunk);
	return rc;
}

int proc_feed(struct proc *p, const uint8_t *data, size_t len)
{
	int rc, ready;

	while (len > 0) {
		ssize_t n;

		if (p->in < 0)
			return error_set(p->errcode, "%s: its input is closed", p->label);
		rc = proc_wait_ready(p, 0, 1, &ready);
		if (rc)
			return rc;
		if (!ready)
			continue;
		n = write(p->in, data, len > PROC_CHUNK ? PROC_CHUNK : len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && errno == EPIPE) {
			/* The child exited or closed its input: proc_finish() says why. */
			close(p->in);
			p->in = -1;
			return error_set(p->errcode, "%s stopped reading its input", p->label);
		}
		if (n < 0)
			return error_set_errno(p->errcode, errno, "%s: cannot write its input",
			                       p->label);
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int proc_filter_write(struct filter *f, const uint8_t *data, size_t len)
{
	return proc_feed(f->ctx, data, len);
}

static int proc_filter_finish(struct filter *f)
{
	struct proc *p = f->ctx;

	if (p->in >= 0) {
		close(p->in);
		p->in = -1;
	}
	return 0;
}

static const struct filter_ops proc_filter_ops = {"proc", proc_filter_write, proc_filter_finish,
                                                  NULL};

int proc_filter_new(struct proc *p, struct filter **out)
{
	*out = filter_new(&proc_filter_ops, p);
	return *out ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
}

int proc_finish(struct proc *p)
{
	int status = 0, rc;

	if (p->in >= 0) {
		close(p->in);
		p->in = -1;
	}
	/* Output nobody asked for is drained, so the child cannot block on it. */
	rc = proc_pump(p, NULL);
	while (!rc && p->err >= 0) {
		int ready;

		rc = proc_wait_ready(p, 0, 0, &ready);
	}
	if (rc)
		return rc;
	/* Polled rather than blocking: a child that closed its output but goes
	 * on running must not hold a cancelled run (the signal may be handled
	 * on another thread, which would not interrupt a blocking wait). */
	for (int waited_ms = 0;;) {
		pid_t w = waitpid(p->pid, &status, WNOHANG);

		if (w == p->pid)
			break;
		if (w < 0 && errno != EINTR)
			return error_set_errno(p->errcode, errno, "%s: cannot wait for it",
			                       p->label);
		if (cancel_requested())
			return error_set(CF_ERR_INTERRUPTED, "%s: interrupted by a signal",
			                 p->label);
		/* 1 ms at first (most children are already exiting), up to 50. */
		usleep((useconds_t)(waited_ms < 50 ? 1000 : 50000));
		waited_ms += waited_ms < 50 ? 1 : 50;
	}
	p->pid = -1;
	proc_stderr_tail(p);
	if (!WIFSIGNALED(status) && WEXITSTATUS(status) == 0) {
		proc_tail_say(p);
		return 0;
	}
	p->tail_said = p->tail_n; /* in the error */
	if (WIFSIGNALED(status))
		return error_set(p->errcode, "%s was killed by signal %d%s%s", p->label,
		                 WTERMSIG(status), p->tail_len ? "; stderr: " : "", p->tail);
	if (WEXITSTATUS(status) != 0)
		return error_set(p->errcode, "%s exited with status %d%s%s", p->label,
		                 WEXITSTATUS(status), p->tail_len ? "; stderr: " : "", p->tail);
	return 0;
}

void proc_release(struct proc *p)
{
	if (p->line_len)
		proc_stderr_line(p);
	proc_tail_say(p);
	if (p->in >= 0)
		close(p->in);
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	p->in = p->out = p->err = -1;
	if (p->pid > 0) {
		/* 5 s to stop cleanly, 0.5 s once the run is cancelled (coffer
		 * stops within a second of SIGINT/SIGTERM). */
		int tries = cancel_requested() ? 10 : 100;

		kill(p->pid, SIGTERM);
		for (int i = 0; i < tries; i++) {
			if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
				p->pid = -1;
				return;
			}
			usleep(50000);
		}
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = -1;
	}
}

/* ------------------------------------------------------------------------ */
/* Capture                                                                    */
/* ------------------------------------------------------------------------ */

static int proc_buf_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops proc_buf_ops = {"capture", proc_buf_write, NULL, NULL};

int proc_capture(const struct proc_spec *spec, struct buf *out)
{
	struct proc_spec s = *spec;
	struct filter *sink;
	struct proc p;
	int rc;

	s.out = 1;
	sink = filter_new(&proc_buf_ops, out);
	if (!sink)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = proc_start(&s, &p);
	if (!rc) {
		rc = proc_pump(&p, sink);
		if (rc == CF_ERR_LIMIT)
			rc = error_set(p.errcode, "%s: its output is larger than %zu bytes",
			               p.label, out->max);
	}
	if (!rc)
		rc = proc_finish(&p);
	proc_release(&p);
	filter_chain_free(sink);
	/* NUL-terminated for the callers that parse text. */
	if (!rc && (rc = buf_reserve(out, 1)) == 0)
		out->data[out->len] = '\0';
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Secrets                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Secret files live in one private folder per process,
 * $TMPDIR/coffer-secrets.PID.XXXXXX (mode 0700), on which the process holds
 * an exclusive flock: removed at exit, and, after a kill -9, by the next
 * coffer that finds it unlocked with its pid gone (proc_temp_reap()).
 */
#define PROC_SECRETS_PREFIX "coffer-secrets."

static char proc_secrets_path[4096];
static pid_t proc_secrets_owner;

static const char *proc_tmp_base(void)
{
	const char *dir = getenv("TMPDIR");

	return dir && *dir ? dir : "/tmp";
}

/* Wipes and removes the files of a secrets folder, then the folder. */
static void proc_secrets_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL) {
			char *p;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (asprintf(&p, "%s/%s", dir, e->d_name) >= 0)
				proc_temp_remove(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void proc_secrets_atexit(void)
{
	if (proc_secrets_path[0] && getpid() == proc_secrets_owner)
		proc_secrets_remove(proc_secrets_path);
}

static int proc_secrets_dir(const char **dir)
{
	int fd;

	if (proc_secrets_path[0] && proc_secrets_owner == getpid()) {
		*dir = proc_secrets_path;
		return 0;
	}
	snprintf(proc_secrets_path, sizeof(proc_secrets_path),
	         "%s/" PROC_SECRETS_PREFIX "%d.XXXXXX", proc_tmp_base(), (int)getpid());
	if (!mkdtemp(proc_secrets_path)) {
		int e = errno;

		proc_secrets_path[0] = '\0';
		return error_set_errno(CF_ERR_IO, e, "cannot create a private folder in %s",
		                       proc_tmp_base());
	}
	/* Held (never closed) for the life of the process: tells others it is in use. */
	fd = open(proc_secrets_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		int e = errno;

		rmdir(proc_secrets_path);
		proc_secrets_path[0] = '\0';
		return error_set_errno(CF_ERR_IO, e, "cannot lock a private folder in %s",
		                       proc_tmp_base());
	}
	if (!proc_secrets_owner)
		atexit(proc_secrets_atexit);
	proc_secrets_owner = getpid();
	*dir = proc_secrets_path;
	return 0;
}

static void proc_temp_reap_one(const char *path, void *ctx)
{
	(void)ctx;
	proc_secrets_remove(path);
	log_info("removed %s, the secrets of a coffer that was killed", path);
}

void proc_temp_reap(void)
{
	fs_reap_dead(proc_tmp_base(), PROC_SECRETS_PREFIX, proc_temp_reap_one, NULL);
}

int proc_temp_file(const char *prefix, const char *text, char **path)
{
	const char *dir;
	char *p;
	int fd, rc;

	rc = proc_secrets_dir(&dir);
	if (rc)
		return rc;
	if (asprintf(&p, "%s/%s.XXXXXX", dir, prefix) < 0)
		return error_set(CF_ERR_NOMEM, "out of memory");
	/* mkstemp creates the file with mode 0600. */
	fd = mkostemp(p, O_CLOEXEC);
	if (fd < 0) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot create a temporary file in %s", dir);
		free(p);
		return rc;
	}
	rc = fs_write_all(fd, text, strlen(text), p);
	if (close(fd) != 0 && !rc)
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", p);
	if (rc) {
		proc_temp_remove(p);
		return rc;
	}
	*path = p;
	return 0;
}

void proc_temp_remove(char *path)
{
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		char zero[512] = {0};

		if (size > 0 && lseek(fd, 0, SEEK_SET) == 0)
			for (off_t done = 0; done < size; done += (off_t)sizeof(zero))
				if (write(fd, zero, sizeof(zero)) < 0)
					break;
		close(fd);
	}
	unlink(path);
	free(path);
}

int proc_read_secret(const char *path, char **out)
{
	return secret_read_line(path, "password file", out);
}

void proc_secret_free(char *s)
{
	secret_free(s);
}
