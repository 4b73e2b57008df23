/*
 * secret: the one way coffer holds a secret string (a password, a token, a
 * secret key): in sodium_malloc memory (guard pages, locked so it is not
 * swapped out, wiped when freed), never in a plain heap buffer that a core
 * dump or a later allocation could show.
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

char *secret_strndup(const char *s, size_t n)
{
	char *p = sodium_malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *secret_strdup(const char *s)
{
	return secret_strndup(s, strlen(s));
}

void secret_free(char *s)
{
	if (s)
		sodium_free(s);
}

int secret_read_line(const char *path, const char *what, char **out)
{
	const size_t max = 4095;
	char *s = sodium_malloc(max + 1);
	size_t n = 0;
	int fd, rc = 0;

	*out = NULL;
	if (!s)
		return error_set(CF_ERR_NOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = error_set_errno(CF_ERR_CONFIG, errno, "cannot read the %s %s", what, path);
		goto out;
	}
	while (n < max) {
		ssize_t r = read(fd, s + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = error_set_errno(CF_ERR_CONFIG, errno, "cannot read the %s %s", what,
			                     path);
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	s[n] = '\0';
	s[strcspn(s, "\r\n")] = '\0';
	if (!rc && !*s)
		rc = error_set(CF_ERR_CONFIG, "the %s %s is empty", what, path);
out:
	if (rc) {
		sodium_free(s);
		return rc;
	}
	*out = s;
	return 0;
}
