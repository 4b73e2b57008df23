/*
 * lock: one run of a source at a time. See lock.h.
 */
#include "agent/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct lock {
	int fd;
};

/* The holder's text: "pid PID host HOST started TIME", or "" when free. */
static void lock_holder(int fd, char *out, size_t size, long *pid)
{
	ssize_t n = pread(fd, out, size - 1, 0);

	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	*pid = 0;
	if (sscanf(out, "pid %ld", pid) != 1)
		*pid = 0;
}

int lock_take(const struct config *cfg, const char *source, int wait, struct lock **out)
{
	char dir[4096], path[4400], holder[512], host[256] = "", now[TIME_ISO_LEN + 1], text[600];
	struct lock *l;
	long pid;
	int fd, rc, waited = 0;

	*out = NULL;
	snprintf(dir, sizeof(dir), "%s/locks", cfg->catalog_path);
	snprintf(path, sizeof(path), "%s/%s.lock", dir, source);
	rc = fs_mkdir_p(dir, 0700);
	if (rc)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return error_set_errno(CF_ERR_IO, errno, "cannot open the lock of source %s (%s)",
		                       source, path);
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = error_set_errno(CF_ERR_IO, errno, "cannot lock %s", path);
			break;
		}
		lock_holder(fd, holder, sizeof(holder), &pid);
		if (!wait) {
			rc = error_set(CF_ERR_BUSY,
			               "source %s is being backed up by another coffer (%s): this "
			               "run stops (give --wait to wait for it)",
			               source, holder[0] ? holder : "starting");
			break;
		}
		if (!waited++)
			log_info("source %s: waiting for the run of another coffer (%s)", source,
			         holder[0] ? holder : "starting");
		if (cancel_requested()) {
			rc = error_set(CF_ERR_INTERRUPTED, "interrupted by a signal");
			break;
		}
		usleep(200000);
	}
	if (rc) {
		close(fd);
		return rc;
	}
	/* Text left in a free lock: its holder died without releasing it. */
	lock_holder(fd, holder, sizeof(holder), &pid);
	if (holder[0] && pid != (long)getpid())
		log_warn("source %s: taking over the lock that a coffer which died left (%s)",
		         source, holder);
	gethostname(host, sizeof(host) - 1);
	time_format_iso(time_real_ms(), now, sizeof(now));
	snprintf(text, sizeof(text), "pid %ld host %s started %s\n", (long)getpid(), host, now);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, strlen(text), 0) != (ssize_t)strlen(text)) {
		rc = error_set_errno(CF_ERR_IO, errno, "cannot write %s", path);
		close(fd);
		return rc;
	}
	l = malloc(sizeof(*l));
	if (!l) {
		close(fd);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	l->fd = fd;
	*out = l;
	return 0;
}

void lock_release(struct lock *l)
{
	if (!l)
		return;
	/* Emptied first: a lock found free with text in it was never released. */
	(void)!ftruncate(l->fd, 0);
	close(l->fd);
	free(l);
}
