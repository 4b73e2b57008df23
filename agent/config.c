/*
 * config: reads coffer.conf (INI, read by config_ini.c) into struct config.
 *
 * Every key is known here or by the source type that owns a [source NAME]
 * section; anything else is an error naming the file and line, so a typo never
 * silently falls back to a default. A section or key given twice is an error
 * naming both lines (only the list keys recipients and trusted_signers may be
 * repeated, each line adding to the list). Relative paths are taken from the
 * configuration file's folder. It does not open the repository or check that
 * paths exist: the commands do that when they need them.
 */
#include "agent/agent.h"
#include "agent/config_ini.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One "key = value" of a [source NAME] section, kept until the type is known. */
struct config_kv {
	char *key;
	char *value;
	int line;
};

struct config_section {
	char *name;
	int line;
	struct config_kv *kv;
	size_t nkv;
};

/* What was seen where: "\x01SECTION" for headers, "SECTION\x01KEY" for
 * keys, each with its first line (an open-addressing hash table, so parsing
 * stays linear in the number of sections). */
struct config_seen {
	char **key;
	int *line;
	size_t cap, n;
};

struct config_parse {
	struct config *cfg;
	char *dir;        /* the configuration file's folder, absolute */
	int line;         /* line number of the line being handled */
	int section_line; /* line number of the last [section] header */
	int repo_line;    /* line of [repository], 0 if none */
	size_t target;    /* the target of the [repository ...] being read */
	int copies_line;  /* where copies_required was set */
	int failed;       /* an error is recorded */
	struct config_section *secs;
	size_t nsecs, capsecs;
	struct config_section *cur; /* the [source NAME] being read, or NULL */
	struct config_seen seen;
};

static uint64_t config_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Records key at line; returns 0 when new, the first line when seen before,
 * -1 when out of memory. */
static int config_seen_put(struct config_seen *t, const char *key, int line)
{
	size_t i;

	if (t->n * 2 >= t->cap) {
		struct config_seen old = *t;
		size_t cap = old.cap ? old.cap * 2 : 64;

		t->key = calloc(cap, sizeof(*t->key));
		t->line = calloc(cap, sizeof(*t->line));
		if (!t->key || !t->line) {
			free(t->key);
			free(t->line);
			*t = old;
			return -1;
		}
		t->cap = cap;
		for (size_t k = 0; k < old.cap; k++) {
			if (!old.key[k])
				continue;
			for (i = config_hash(old.key[k]) & (cap - 1); t->key[i];
			     i = (i + 1) & (cap - 1))
				;
			t->key[i] = old.key[k];
			t->line[i] = old.line[k];
		}
		free(old.key);
		free(old.line);
	}
	for (i = config_hash(key) & (t->cap - 1); t->key[i]; i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->key[i], key))
			return t->line[i];
	t->key[i] = strdup(key);
	if (!t->key[i])
		return -1;
	t->line[i] = line;
	t->n++;
	return 0;
}

static void config_seen_free(struct config_seen *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->key[i]);
	free(t->key);
	free(t->line);
}

/* Records the first error, prefixed with file:line, and stops handling. */
static int config_fail(struct config_parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int config_fail(struct config_parse *p, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (p->failed)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_set(CF_ERR_CONFIG, "%s:%d: %s", p->cfg->file, line, msg);
	p->failed = 1;
	return 0;
}

/* The absolute folder of the configuration file path (as named, symbolic
 * links not followed). NULL on out of memory. */
static char *config_dir_of(const char *path)
{
	char cwd[4096];
	const char *slash = strrchr(path, '/');
	struct buf b;
	int rc;

	buf_init(&b, 16384);
	if (path[0] == '/')
		rc = buf_printf(&b, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	else if (!getcwd(cwd, sizeof(cwd)))
		rc = buf_printf(&b, ".");
	else if (slash)
		rc = buf_printf(&b, "%s/%.*s", cwd, (int)(slash - path), path);
	else
		rc = buf_printf(&b, "%s", cwd);
	if (rc)
		buf_free(&b);
	return rc ? NULL : (char *)b.data;
}

/* Sets *dst to value, a path made absolute against the configuration file's
 * folder. */
static int config_set_path(struct config_parse *p, char **dst, const char *value)
{
	struct buf b;

	if (!*value)
		return config_fail(p, p->line, "empty path");
	buf_init(&b, 16384);
	if (value[0] == '/' ? buf_printf(&b, "%s", value)
	                    : buf_printf(&b, "%s%s%s", p->dir,
	                                 p->dir[strlen(p->dir) - 1] == '/' ? "" : "/", value)) {
		buf_free(&b);
		return config_fail(p, p->line, "path too long");
	}
	free(*dst);
	*dst = (char *)b.data;
	return 1;
}

static int config_parse_int(struct config_parse *p, const char *key, const char *value, long lo,
                            long hi, int *out)
{
	char *end;
	long v;

	v = strtol(value, &end, 10);
	if (!*value || *end || v < lo || v > hi)
		return config_fail(p, p->line, "%s = '%s': expected a whole number from %ld to %ld",
		                   key, value, lo, hi);
	*out = (int)v;
	return 1;
}

/* nice = 0..19 (only lowering the priority needs no privilege). */
static int config_parse_nice(const char *text, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 0 || v > 19)
		return error_set(CF_ERR_CONFIG, "nice = '%s': expected 0 to 19", text);
	*out = (int)v;
	return 0;
}

/* ionice = idle | best-effort[:0-7], into ioprio_set(2)'s encoding. */
static int config_parse_ionice(const char *text, int *out)
{
	if (!strcmp(text, "idle")) {
		*out = 3 << 13;
		return 0;
	}
	if (!strncmp(text, "best-effort", 11) &&
	    (!text[11] || (text[11] == ':' && text[12] >= '0' && text[12] <= '7' && !text[13]))) {
		*out = 2 << 13 | (text[11] ? text[12] - '0' : 4);
		return 0;
	}
	return error_set(CF_ERR_CONFIG, "ionice = '%s': expected idle, or best-effort[:0-7]", text);
}

/* "50%" or "50": a whole percentage 0..100. */
static int config_parse_percent(const char *key, const char *text, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (*end == '%')
		end++;
	if (errno || end == text || *end || v < 0 || v > 100)
		return error_set(CF_ERR_CONFIG,
		                 "%s = '%s': expected a percentage 0..100, like 50%%", key, text);
	*out = (int)v;
	return 0;
}

/* Parses a size "16MiB", "16M", "65536" (K, M, G are powers of 1024). */
static int config_parse_size(struct config_parse *p, const char *key, const char *value,
                             uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(value, &end, 10);
	uint64_t unit = 1;

	if (end != value && (*end == 'K' || *end == 'k'))
		unit = 1024;
	else if (end != value && *end == 'M')
		unit = 1024 * 1024;
	else if (end != value && *end == 'G')
		unit = 1024ULL * 1024 * 1024;
	if (unit > 1)
		end += (end[1] == 'i' && end[2] == 'B') ? 3 : (end[1] == 'B' ? 2 : 1);
	if (end == value || *end || value[0] == '-' || v > hi / unit || v * unit < lo)
		return config_fail(p, p->line,
		                   "%s = '%s': expected a size from %llu to %llu bytes "
		                   "(suffixes K, M, G)",
		                   key, value, (unsigned long long)lo, (unsigned long long)hi);
	*out = v * unit;
	return 1;
}

static int config_set_str(struct config_parse *p, const char **dst, const char *value)
{
	char *v = strdup(value);

	if (!v)
		return config_fail(p, p->line, "out of memory");
	free((void *)(uintptr_t)*dst);
	*dst = v;
	return 1;
}

/* A key prefix must make valid object keys (storage_key_valid()). */
static int config_check_prefix(struct config_parse *p, const char *value)
{
	struct buf b;
	int ok;

	while (*value == '/')
		value++;
	buf_init(&b, STORAGE_KEY_MAX + 8);
	ok =
	    !buf_printf(&b, "%s%sx", value, *value && value[strlen(value) - 1] != '/' ? "/" : "") &&
	    storage_key_valid((char *)b.data);
	buf_free(&b);
	if (!ok)
		return config_fail(p, p->line,
		                   "prefix = '%.80s': expected folder names separated by '/' "
		                   "(no '.' or '..' parts, no empty parts, no control characters)",
		                   value);
	return 1;
}

/* S3's storage classes are upper-case words (STANDARD_IA, GLACIER_IR, or a
 * Ceph placement's own); anything else fails every upload, so say so now. */
static int config_check_storage_class(struct config_parse *p, const char *value)
{
	size_t n = strlen(value);

	for (const char *c = value; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
			n = 0;
	if (n == 0 || n > 64)
		return config_fail(p, p->line,
		                   "storage_class = '%.80s': expected an S3 storage class in "
		                   "capitals, e.g. STANDARD, STANDARD_IA, ONEZONE_IA, "
		                   "INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE",
		                   value);
	return 1;
}

static int config_repository_s3(struct config_parse *p, const char *name, const char *value)
{
	struct config_target *t = &p->cfg->targets[p->target];
	struct storage_s3_options *o = &t->s3;

	if (!strcmp(name, "endpoint")) {
		if (strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0)
			return config_fail(p, p->line,
			                   "endpoint = '%s': expected https://HOST[:PORT]", value);
		return config_set_str(p, &o->endpoint, value);
	}
	if (!strcmp(name, "region"))
		return config_set_str(p, &o->region, value);
	if (!strcmp(name, "bucket"))
		return config_set_str(p, &o->bucket, value);
	if (!strcmp(name, "prefix"))
		return config_check_prefix(p, value) && config_set_str(p, &o->prefix, value);
	if (!strcmp(name, "access_key"))
		return config_set_str(p, &o->access_key, value);
	if (!strcmp(name, "secret_key")) {
		char *v = secret_strdup(value);

		if (!v)
			return config_fail(p, p->line, "out of memory");
		secret_free((char *)(uintptr_t)o->secret_key);
		o->secret_key = v;
		t->s3_secret_line = p->line;
		return 1;
	}
	if (!strcmp(name, "uri_style")) {
		if (strcmp(value, "path") != 0 && strcmp(value, "virtual") != 0)
			return config_fail(p, p->line, "uri_style = '%s': expected path or virtual",
			                   value);
		o->virtual_style = !strcmp(value, "virtual");
		return 1;
	}
	if (!strcmp(name, "storage_class"))
		return config_check_storage_class(p, value) &&
		       config_set_str(p, &o->storage_class, value);
	if (!strcmp(name, "ca_file"))
		return config_set_path(p, (char **)(uintptr_t)&o->ca_file, value);
	if (!strcmp(name, "verify_tls")) {
		int v;

		if (source_parse_bool(name, value, &v))
			return config_fail(p, p->line, "%s", error_message());
		o->insecure_tls = !v;
		return 1;
	}
	if (!strcmp(name, "part_size"))
		/* S3 wants 5 MiB parts at least; smaller sizes are for S3-compatible
		 * servers configured to allow them (tests). */
		return config_parse_size(p, name, value, 64 * 1024, 5ULL * 1024 * 1024 * 1024,
		                         &o->part_size);
	if (!strcmp(name, "max_upload_rate"))
		return config_parse_size(p, name, value, 64 * 1024, 1ULL << 40,
		                         &o->max_upload_rate);
	if (!strcmp(name, "max_download_rate"))
		return config_parse_size(p, name, value, 64 * 1024, 1ULL << 40,
		                         &o->max_download_rate);
	if (!strcmp(name, "upload_concurrency"))
		return config_parse_int(p, name, value, 1, 64, &o->upload_concurrency);
	if (!strcmp(name, "download_concurrency"))
		return config_parse_int(p, name, value, 1, 64, &o->download_concurrency);
	if (!strcmp(name, "max_attempts"))
		return config_parse_int(p, name, value, 1, 100, &o->max_attempts);
	if (!strcmp(name, "timeout"))
		return config_parse_int(p, name, value, 1, 3600, &o->timeout_s);
	if (!strcmp(name, "object_lock_mode")) {
		if (strcmp(value, "GOVERNANCE") != 0 && strcmp(value, "COMPLIANCE") != 0)
			return config_fail(
			    p, p->line,
			    "object_lock_mode = '%s': expected GOVERNANCE or COMPLIANCE", value);
		return config_set_str(p, &o->object_lock_mode, value);
	}
	if (!strcmp(name, "object_lock_days"))
		return config_parse_int(p, name, value, 1, 36500, &o->object_lock_days);
	if (!strcmp(name, "sts_endpoint"))
		return config_set_str(p, &o->sts_endpoint, value);
	if (!strcmp(name, "imds_endpoint"))
		return config_set_str(p, &o->imds_endpoint, value);
	return 0;
}

/*
 * A retention key of any section into k: 1 if key is one (set, or 0 after
 * an error naming the key and value, without FILE:LINE), 0 if it is not.
 */
static int config_retention_key(struct retention_keys *k, const char *key, const char *value,
                                int *rc)
{
	int rule = -1;
	char *end;
	long v;

	*rc = 0;
	for (int r = 0; r < RETENTION_NRULES; r++)
		if (!strcmp(key, retention_rule_keys[r]))
			rule = r;
	if (rule >= 0 || !strcmp(key, "min_keep")) {
		v = strtol(value, &end, 10);
		if (!*value || *end || v < 0 || v > 1000000) {
			*rc = error_set(CF_ERR_CONFIG,
			                "%s = '%s': expected a whole number from 0 to 1000000", key,
			                value);
			return 1;
		}
		if (rule >= 0)
			k->keep[rule] = (unsigned)v;
		else
			k->min_keep = (unsigned)v;
		k->has |= rule >= 0 ? RETENTION_KEY_RULE(rule) : RETENTION_KEY_MIN_KEEP;
		return 1;
	}
	if (!strcmp(key, "keep_within") || !strcmp(key, "keep_failed")) {
		int within = !strcmp(key, "keep_within");

		if (time_parse_duration(value, within ? &k->keep_within_ms : &k->keep_failed_ms))
			*rc = error_set(CF_ERR_CONFIG, "%s = %s", key, error_message());
		k->has |= within ? RETENTION_KEY_WITHIN : RETENTION_KEY_FAILED;
		return 1;
	}
	if (!strcmp(key, "timezone")) {
		*rc = retention_timezone_check(value);
		free(k->timezone);
		k->timezone = *rc ? NULL : strdup(value);
		if (!*rc && !k->timezone)
			*rc = error_set(CF_ERR_NOMEM, "out of memory");
		k->has |= RETENTION_KEY_TIMEZONE;
		return 1;
	}
	return 0;
}

/* The same for a section read line by line: 1 if it was a retention key
 * (0 after config_fail()), -1 if not. */
static int config_retention_line(struct config_parse *p, struct retention_keys *k, const char *key,
                                 const char *value)
{
	int rc;

	if (!config_retention_key(k, key, value, &rc))
		return -1;
	return rc ? config_fail(p, p->line, "%s", error_message()) : 1;
}

static int config_repository(struct config_parse *p, const char *name, const char *value)
{
	struct config *c = p->cfg;
	struct config_target *t = &c->targets[p->target];

	if (!strcmp(name, "type")) {
		if (strcmp(value, "posix") != 0 && strcmp(value, "s3") != 0)
			return config_fail(p, p->line, "type = '%s': expected posix or s3", value);
		free(t->type);
		t->type = strdup(value);
		return t->type ? 1 : config_fail(p, p->line, "out of memory");
	}
	if (!strcmp(name, "path"))
		return config_set_path(p, &t->path, value);
	if (p->target && (!strcmp(name, "orphan_age") || !strcmp(name, "copies_required")))
		return config_fail(p, p->line,
		                   "%s is set in [repository] only (it applies to every "
		                   "repository)",
		                   name);
	if (!strcmp(name, "copies_required")) {
		int v;

		if (!config_parse_int(p, name, value, 1, 1000, &v))
			return 0;
		c->copies_required = (size_t)v;
		p->copies_line = p->line;
		return 1;
	}
	{
		int r = config_retention_line(p, &t->retention, name, value);

		if (r >= 0)
			return r;
	}
	if (!strcmp(name, "copy")) {
		if (strcmp(value, "server") != 0 && strcmp(value, "stream") != 0)
			return config_fail(p, p->line, "copy = '%s': expected stream or server",
			                   value);
		t->copy_server = !strcmp(value, "server");
		return 1;
	}
	if (!strcmp(name, "orphan_age")) {
		if (time_parse_duration(value, &c->orphan_age_ms))
			return config_fail(p, p->line, "orphan_age = %s", error_message());
		return 1;
	}
	if (config_repository_s3(p, name, value) || p->failed)
		return p->failed ? 0 : 1;
	return config_fail(
	    p, p->line,
	    "unknown key '%s' in [repository] (expected type, path, orphan_age, copies_required, "
	    "copy, endpoint, "
	    "region, bucket, prefix, access_key, secret_key, uri_style, storage_class, "
	    "ca_file, verify_tls, part_size, upload_concurrency, download_concurrency, "
	    "max_upload_rate, max_download_rate, "
	    "max_attempts, timeout, object_lock_mode, object_lock_days)",
	    name);
}

/* Checks a [repository ...] section as a whole once the file is read. */
/* For a posix target: the first s3 key it was given, as the message saying
 * so, or NULL. A key that does nothing is an error, never a silent no-op
 * (max_upload_rate on a folder would limit nothing). */
static const char *config_s3_key_set(const struct config_target *t)
{
	const struct storage_s3_options *o = &t->s3;
	const char *key = o->endpoint               ? "endpoint"
	                  : o->region               ? "region"
	                  : o->bucket               ? "bucket"
	                  : o->prefix               ? "prefix"
	                  : o->access_key           ? "access_key"
	                  : o->secret_key           ? "secret_key"
	                  : o->virtual_style        ? "uri_style"
	                  : o->storage_class        ? "storage_class"
	                  : o->ca_file              ? "ca_file"
	                  : o->insecure_tls         ? "verify_tls"
	                  : o->part_size            ? "part_size"
	                  : o->upload_concurrency   ? "upload_concurrency"
	                  : o->download_concurrency ? "download_concurrency"
	                  : o->max_attempts         ? "max_attempts"
	                  : o->timeout_s            ? "timeout"
	                  : o->max_upload_rate      ? "max_upload_rate"
	                  : o->max_download_rate    ? "max_download_rate"
	                  : o->object_lock_mode     ? "object_lock_mode"
	                  : o->object_lock_days     ? "object_lock_days"
	                  : o->sts_endpoint         ? "sts_endpoint"
	                  : o->imds_endpoint        ? "imds_endpoint"
	                  : t->copy_server          ? "copy"
	                                            : NULL;
	static char msg[160];

	if (!key)
		return NULL;
	snprintf(msg, sizeof(msg), "%s is a key of type = s3; this repository is a posix folder",
	         key);
	return msg;
}

static int config_check_target(struct config *c, struct config_target *t, FILE *fp)
{
	const struct storage_s3_options *o = &t->s3;
	const char *need = NULL;
	struct stat st;

	if (!t->type)
		t->type = strdup(o->endpoint || o->bucket ? "s3" : "posix");
	if (!t->type)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (!strcmp(t->type, "s3")) {
		if (!o->endpoint)
			need = "type = s3 needs endpoint";
		else if (!o->bucket)
			need = "type = s3 needs bucket";
		else if (!o->access_key != !o->secret_key)
			need = "access_key and secret_key go together";
		else if (o->object_lock_mode && !o->object_lock_days)
			need = "object_lock_mode needs object_lock_days";
	} else if (!t->path) {
		need = "type = posix needs path (the repository folder)";
	} else {
		need = config_s3_key_set(t);
	}
	if (!need && !strcmp(t->type, "s3") && t->path)
		need = "path is for type = posix (an s3 repository takes bucket and prefix)";
	if (need)
		return error_set(CF_ERR_CONFIG, "%s:%d: [repository%s%s] %s", c->file, t->line,
		                 strcmp(t->name, CONFIG_PRIMARY) ? " " : "",
		                 strcmp(t->name, CONFIG_PRIMARY) ? t->name : "", need);
	/* A file holding a secret key must be readable by its owner only. */
	if (o->secret_key && fstat(fileno(fp), &st) == 0 && (st.st_mode & 077))
		return error_set(CF_ERR_CONFIG,
		                 "%s:%d: secret_key is in a file others can read (mode %04o); "
		                 "chmod 600 %s, or take the key from the environment",
		                 c->file, t->s3_secret_line, (unsigned)(st.st_mode & 07777),
		                 c->file);
	return 0;
}

/* Checks every target once the file is read. */
static int config_check_repository(struct config_parse *p, FILE *fp)
{
	struct config *c = p->cfg;
	int rc = 0;

	if (!p->repo_line)
		return error_set(CF_ERR_CONFIG,
		                 "%s: no [repository] section; every configuration names the "
		                 "repository it uses (see README, Configuration)",
		                 c->file);
	for (size_t i = 0; !rc && i < c->ntargets; i++)
		rc = config_check_target(c, &c->targets[i], fp);
	if (!rc && c->copies_required > c->ntargets)
		return error_set(CF_ERR_CONFIG,
		                 "%s:%d: copies_required = %zu, but there are %zu repositories "
		                 "([repository] and each [repository NAME])",
		                 c->file, p->copies_line, c->copies_required, c->ntargets);
	if (!c->copies_required)
		c->copies_required = c->ntargets;
	return rc;
}

/* Starts the target of a [repository NAME] header. Returns 1, or 0 after
 * config_fail(). */
static int config_target_section(struct config_parse *p, const char *name)
{
	struct config *c = p->cfg;
	struct config_target *t;

	if (!name_valid(name) || !strcmp(name, CONFIG_PRIMARY))
		return config_fail(
		    p, p->line,
		    "repository name '%.64s': use up to %d letters, digits, '-', '_' "
		    "and '.', not starting with '.', and not '" CONFIG_PRIMARY
		    "' (that is [repository])",
		    name, NAME_MAX_LEN);
	if (c->ntargets >= CONFIG_MAX_TARGETS)
		return config_fail(p, p->line, "more than %d repositories", CONFIG_MAX_TARGETS);
	t = realloc(c->targets, (c->ntargets + 1) * sizeof(*t));
	if (!t)
		return config_fail(p, p->line, "out of memory");
	c->targets = t;
	t = &c->targets[c->ntargets];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	t->line = p->line;
	if (!t->name)
		return config_fail(p, p->line, "out of memory");
	p->target = c->ntargets++;
	return 1;
}

/* Checks item i of a recipients list; reports a bad one (never echoing a
 * secret key pasted there) and returns 0. */
static int config_check_recipient(struct config_parse *p, size_t i, const char *item)
{
	char fp[AGE_FINGERPRINT_LEN + 1];

	if (!age_recipient_fingerprint(item, fp))
		return 1;
	if (age_text_is_secret(item))
		config_fail(
		    p, p->line,
		    "recipients: item %zu is an age identity (a secret key), not a recipient; "
		    "put its recipient here (age-keygen -y FILE prints it) and keep the "
		    "identity off the backup host",
		    i + 1);
	else
		config_fail(p, p->line,
		            "recipients: '%s' is not an age X25519 recipient (expected age1...)",
		            item);
	return 0;
}

/* Checks item i of a trusted_signers list, as config_check_recipient(). */
static int config_check_signer(struct config_parse *p, size_t i, const char *item)
{
	(void)i;
	if (sign_public_valid(item))
		return 1;
	config_fail(p, p->line,
	            "trusted_signers: '%.80s' is not a signing public key (expected ed25519:..., "
	            "as 'coffer keygen --signing' prints)",
	            item);
	return 0;
}

/* Adds the comma-separated value's items to *list when check accepts every
 * item (a repeated key adds to the list); a rejected line is wiped (it may
 * hold a secret pasted in the wrong place). Returns 1, or 0 after
 * config_fail(). */
static int config_set_list(struct config_parse *p, const char *key, const char *value,
                           int (*check)(struct config_parse *p, size_t i, const char *item),
                           struct strv *list)
{
	struct strv v;

	if (strv_split(value, &v))
		return config_fail(p, p->line, "%s: %s", key, error_message());
	for (size_t i = 0; i < v.n; i++)
		if (!check(p, i, v.v[i])) {
			for (size_t k = 0; k < v.n; k++)
				sodium_memzero(v.v[k], strlen(v.v[k]));
			strv_free(&v);
			return 0;
		}
	for (size_t i = 0; i < v.n; i++)
		if (!strv_has(list, v.v[i]) && strv_add(list, v.v[i])) {
			strv_free(&v);
			return config_fail(p, p->line, "out of memory");
		}
	strv_free(&v);
	return 1;
}

static int config_encryption(struct config_parse *p, const char *name, const char *value)
{
	struct config *c = p->cfg;

	if (!strcmp(name, "recipients"))
		return config_set_list(p, name, value, config_check_recipient, &c->recipients);
	if (!strcmp(name, "identity"))
		return config_set_path(p, &c->identity, value);
	if (!strcmp(name, "signing_key"))
		return config_set_path(p, &c->signing_key, value);
	if (!strcmp(name, "trusted_signers"))
		return config_set_list(p, name, value, config_check_signer, &c->trusted_signers);
	if (!strcmp(name, "identity_on_host")) {
		int v;

		if (source_parse_bool(name, value, &v))
			return config_fail(p, p->line, "%s", error_message());
		c->identity_off_host = !v;
		return 1;
	}
	return config_fail(
	    p, p->line,
	    "unknown key '%s' in [encryption] (expected recipients, identity, signing_key, "
	    "trusted_signers, identity_on_host)",
	    name);
}

static int config_compression(struct config_parse *p, const char *name, const char *value)
{
	struct config *c = p->cfg;

	if (!strcmp(name, "level"))
		return config_parse_int(p, name, value, 1, 19, &c->zstd_level);
	if (!strcmp(name, "workers")) {
		if (!strcmp(value, "auto")) {
			long n = sysconf(_SC_NPROCESSORS_ONLN);

			c->zstd_workers = n > 0 ? (int)n : 1;
			return 1;
		}
		return config_parse_int(p, name, value, 0, 64, &c->zstd_workers);
	}
	return config_fail(p, p->line,
	                   "unknown key '%s' in [compression] (expected level, workers)", name);
}

/* Starts the section of a [source NAME] header (section is "source NAME").
 * Returns 1, or 0 after config_fail(). */
static int config_source_section(struct config_parse *p, const char *section)
{
	const char *sname = section + 6;
	struct config_section *s;

	while (*sname == ' ')
		sname++;
	if (!*sname)
		return config_fail(p, p->line, "a [source] section needs a name: [source NAME]");
	if (!name_valid(sname))
		return config_fail(
		    p, p->line,
		    "source name '%.64s%s': use up to %d letters, digits, '-', '_' and '.', "
		    "not starting with '.'",
		    sname, strlen(sname) > 64 ? "..." : "", NAME_MAX_LEN);
	if (p->nsecs == p->capsecs) {
		size_t cap = p->capsecs ? p->capsecs * 2 : 16;

		s = realloc(p->secs, cap * sizeof(*s));
		if (!s)
			return config_fail(p, p->line, "out of memory");
		p->secs = s;
		p->capsecs = cap;
	}
	s = &p->secs[p->nsecs];
	memset(s, 0, sizeof(*s));
	s->name = strdup(sname);
	s->line = p->line;
	if (!s->name)
		return config_fail(p, p->line, "out of memory");
	p->nsecs++;
	p->cur = s;
	return 1;
}

static int config_source_kv(struct config_parse *p, const char *name, const char *value)
{
	struct config_section *s = p->cur;
	struct config_kv *kv;

	kv = realloc(s->kv, (s->nkv + 1) * sizeof(*kv));
	if (!kv)
		return config_fail(p, p->line, "out of memory");
	s->kv = kv;
	kv = &s->kv[s->nkv];
	kv->key = strdup(name);
	kv->value = strdup(value);
	kv->line = p->line;
	if (!kv->key || !kv->value) {
		free(kv->key);
		free(kv->value);
		return config_fail(p, p->line, "out of memory");
	}
	s->nkv++;
	return 1;
}

/* A [section] header: known, not seen before. Returns 1, or 0 after
 * config_fail(). */
static int config_header(struct config_parse *p, const char *section)
{
	struct buf k;
	int first;

	p->section_line = p->line;
	p->cur = NULL;
	buf_init(&k, CONFIG_INI_LINE_MAX + 8);
	first = buf_printf(&k, "\x01%s", section)
	            ? -1
	            : config_seen_put(&p->seen, (char *)k.data, p->line);
	buf_free(&k);
	if (first < 0)
		return config_fail(p, p->line, "out of memory");
	if (first)
		return config_fail(p, p->line,
		                   "[%.80s] again (first at line %d); a section may appear once: "
		                   "merge the two, or rename one",
		                   section, first);
	if (!strcmp(section, "repository")) {
		p->repo_line = p->line;
		p->cfg->targets[0].line = p->line;
		p->target = 0;
		return 1;
	}
	if (!strncmp(section, "repository ", 11))
		return config_target_section(p, section + 11);
	if (!strcmp(section, "catalog") || !strcmp(section, "encryption") ||
	    !strcmp(section, "compression") || !strcmp(section, "retention") ||
	    !strcmp(section, "notify"))
		return 1;
	if (!strncmp(section, "source", 6) && (section[6] == '\0' || section[6] == ' '))
		return config_source_section(p, section);
	return config_fail(
	    p, p->line,
	    "unknown section [%.80s] (expected repository, repository NAME, catalog, encryption, "
	    "compression, retention, notify, source NAME)",
	    section);
}

/* Keys whose lines add to a list, so they may be repeated. */
static int config_key_repeats(const char *section, const char *key)
{
	return !strcmp(section, "encryption") &&
	       (!strcmp(key, "recipients") || !strcmp(key, "trusted_signers"));
}

static int config_handler(struct config_parse *p, const char *section, const char *name,
                          const char *value)
{
	if (!strcmp(section, "repository") || !strncmp(section, "repository ", 11))
		return config_repository(p, name, value);
	if (!strcmp(section, "catalog")) {
		if (!strcmp(name, "path"))
			return config_set_path(p, &p->cfg->catalog_path, value);
		if (!strcmp(name, "metrics_file"))
			return config_set_path(p, &p->cfg->metrics_file, value);
		return config_fail(p, p->line,
		                   "unknown key '%s' in [catalog] (expected path, metrics_file)",
		                   name);
	}
	if (!strcmp(section, "notify")) {
		char **field = !strcmp(name, "on_success")    ? &p->cfg->notify.on_success
		               : !strcmp(name, "on_failure")  ? &p->cfg->notify.on_failure
		               : !strcmp(name, "webhook_url") ? &p->cfg->notify.webhook_url
		                                              : NULL;

		if (!field)
			return config_fail(p, p->line,
			                   "unknown key '%s' in [notify] (expected on_success, "
			                   "on_failure, webhook_url)",
			                   name);
		if (field == &p->cfg->notify.webhook_url && strncmp(value, "https://", 8) != 0 &&
		    strncmp(value, "http://", 7) != 0)
			return config_fail(p, p->line,
			                   "webhook_url must be an http:// or https:// URL");
		free(*field);
		*field = strdup(value);
		return *field ? 1 : config_fail(p, p->line, "out of memory");
	}
	if (!strcmp(section, "encryption"))
		return config_encryption(p, name, value);
	if (!strcmp(section, "compression"))
		return config_compression(p, name, value);
	if (!strcmp(section, "retention")) {
		int r = config_retention_line(p, &p->cfg->retention, name, value);

		return r >= 0 ? r
		              : config_fail(
		                    p, p->line,
		                    "unknown key '%s' in [retention] (expected keep_last, "
		                    "keep_hourly, keep_daily, keep_weekly, keep_monthly, "
		                    "keep_yearly, keep_within, keep_failed, min_keep, timezone)",
		                    name);
	}
	if (p->cur)
		return config_source_kv(p, name, value);
	return config_fail(p, p->line, "internal error: key '%s' in [%s]", name, section);
}

/* config_ini's callback: one header or key line. */
static int config_item(void *ctx, const struct config_ini_item *it)
{
	struct config_parse *p = ctx;
	struct buf k;
	int first;

	p->line = it->line;
	if (!it->key)
		return config_header(p, it->section) ? 0 : CF_ERR_CONFIG;
	if (!it->section[0])
		return error_set(CF_ERR_CONFIG,
		                 "%s:%d: key '%s' before any [section] (expected [repository], "
		                 "[source NAME], ... above it)",
		                 p->cfg->file, p->line, it->key);
	buf_init(&k, 2 * CONFIG_INI_LINE_MAX + 8);
	first = buf_printf(&k, "%s\x01%s", it->section, it->key)
	            ? -1
	            : config_seen_put(&p->seen, (char *)k.data, p->line);
	buf_free(&k);
	if (first < 0)
		return error_set(CF_ERR_NOMEM, "out of memory");
	if (first && !config_key_repeats(it->section, it->key))
		return error_set(CF_ERR_CONFIG,
		                 "%s:%d: %s is set again in [%.80s] (first at line %d); a key may "
		                 "be set once (only recipients and trusted_signers add to a list "
		                 "when repeated): remove one",
		                 p->cfg->file, p->line, it->key, it->section, first);
	return config_handler(p, it->section, it->key, it->value) ? 0 : CF_ERR_CONFIG;
}

/* A source's "repositories = primary, eu": the targets its backups go to,
 * as a mask of c->targets. */
static int config_source_repositories(const struct config *c, struct source *src, const char *value)
{
	struct strv names = {NULL, 0, 0};
	int rc = strv_split(value, &names);

	if (rc)
		rc = error_set(rc, "repositories: %s", error_message());

	for (size_t i = 0; !rc && i < names.n; i++) {
		size_t t = 0;

		while (t < c->ntargets && strcmp(c->targets[t].name, names.v[i]) != 0)
			t++;
		if (t == c->ntargets) {
			char known[1024] = "";

			for (size_t k = 0; k < c->ntargets; k++)
				snprintf(known + strlen(known), sizeof(known) - strlen(known),
				         "%s%s", k ? ", " : "", c->targets[k].name);
			rc = error_set(CF_ERR_CONFIG,
			               "repositories: no repository named '%.64s' (expected some "
			               "of %s)",
			               names.v[i], known);
		} else if (src->target_mask & (1ULL << t))
			rc = error_set(CF_ERR_CONFIG, "repositories: '%s' is listed twice",
			               names.v[i]);
		else
			src->target_mask |= 1ULL << t;
	}
	if (!rc && !names.n)
		rc = error_set(CF_ERR_CONFIG,
		               "repositories is empty (name one or more of the repositories, "
		               "or leave the key out for all)");
	strv_free(&names);
	return rc;
}

/* Builds the sources from the collected sections, now that types are known. */
static int config_build_sources(struct config_parse *p)
{
	struct config *c = p->cfg;

	c->sources = calloc(p->nsecs ? p->nsecs : 1, sizeof(*c->sources));
	if (!c->sources)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < p->nsecs; i++) {
		struct config_section *s = &p->secs[i];
		struct source *src = &c->sources[c->nsources];
		const char *type = NULL;
		int type_line = s->line;
		int rc;

		for (size_t k = 0; k < s->nkv; k++)
			if (!strcmp(s->kv[k].key, "type")) {
				type = s->kv[k].value;
				type_line = s->kv[k].line;
			}
		if (!type)
			return error_set(CF_ERR_CONFIG,
			                 "%s:%d: [source %s] has no type (expected %s)", c->file,
			                 s->line, s->name, source_registry_types());
		src->ops = source_registry_find(type);
		if (!src->ops)
			return error_set(CF_ERR_CONFIG,
			                 "%s:%d: unknown source type '%s' (expected %s)", c->file,
			                 type_line, type, source_registry_types());
		src->name = strdup(s->name);
		if (!src->name)
			return error_set(CF_ERR_NOMEM, "out of memory");
		rc = src->ops->create(s->name, &src->state);
		if (rc)
			return rc;
		src->shrink_warn = 50;
		c->nsources++;
		for (size_t k = 0; k < s->nkv; k++) {
			if (!strcmp(s->kv[k].key, "type"))
				continue;
			if (!strcmp(s->kv[k].key, "strict"))
				rc = source_parse_bool("strict", s->kv[k].value, &src->strict);
			else if (!strcmp(s->kv[k].key, "repositories"))
				rc = config_source_repositories(c, src, s->kv[k].value);
			else if (config_retention_key(&src->retention, s->kv[k].key, s->kv[k].value,
			                              &rc))
				;
			else if (!strcmp(s->kv[k].key, "allow_empty"))
				rc = source_parse_bool("allow_empty", s->kv[k].value,
				                       &src->allow_empty);
			else if (!strcmp(s->kv[k].key, "nice"))
				rc = config_parse_nice(s->kv[k].value, &src->nice);
			else if (!strcmp(s->kv[k].key, "ionice"))
				rc = config_parse_ionice(s->kv[k].value, &src->ioprio);
			else if (!strcmp(s->kv[k].key, "on_success") ||
			         !strcmp(s->kv[k].key, "on_failure")) {
				char **f =
				    s->kv[k].key[3] == 's' ? &src->on_success : &src->on_failure;

				free(*f);
				*f = strdup(s->kv[k].value);
				rc = *f ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
			} else if (!strcmp(s->kv[k].key, "expect_every")) {
				rc = time_parse_duration(s->kv[k].value, &src->expect_every_ms);
				if (rc)
					rc = error_set(rc, "expect_every = %s", error_message());
			} else if (!strcmp(s->kv[k].key, "rto_target")) {
				rc = time_parse_duration(s->kv[k].value, &src->rto_target_ms);
				if (rc)
					rc = error_set(rc, "rto_target = %s", error_message());
			} else if (!strcmp(s->kv[k].key, "drill_target") &&
			           strcmp(type, "postgres") != 0 && strcmp(type, "mysql") != 0)
				rc = error_set(
				    CF_ERR_CONFIG,
				    "drill_target is for postgres and mysql sources (a %s "
				    "drill needs no server)",
				    type);
			else if (!strcmp(s->kv[k].key, "drill_target")) {
				free(src->drill_target);
				src->drill_target = strdup(s->kv[k].value);
				rc = src->drill_target ? 0
				                       : error_set(CF_ERR_NOMEM, "out of memory");
			} else if (!strcmp(s->kv[k].key, "drill_shrink_warn"))
				rc = config_parse_percent("drill_shrink_warn", s->kv[k].value,
				                          &src->shrink_warn);
			else
				rc = src->ops->set(src->state, s->kv[k].key, s->kv[k].value);
			if (rc)
				return error_set(rc, "%s:%d: [source %s] %s", c->file,
				                 s->kv[k].line, s->name, error_message());
		}
		rc = src->ops->check(src->state);
		if (rc)
			return error_set(rc, "%s:%d: [source %s] %s", c->file, s->line, s->name,
			                 error_message());
	}
	return 0;
}

static void config_parse_free(struct config_parse *p)
{
	config_seen_free(&p->seen);
	free(p->dir);
	for (size_t i = 0; i < p->nsecs; i++) {
		for (size_t k = 0; k < p->secs[i].nkv; k++) {
			free(p->secs[i].kv[k].key);
			free(p->secs[i].kv[k].value);
		}
		free(p->secs[i].kv);
		free(p->secs[i].name);
	}
	free(p->secs);
}

int config_empty(struct config **out)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	c->zstd_level = 3;
	c->zstd_workers = 0;
	c->orphan_age_ms = 24 * 3600 * 1000LL;
	{
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->zstd_workers = n > 1 ? (int)n : 0;
	}
	c->catalog_path = strdup(CATALOG_DEFAULT_PATH);
	c->file = strdup("(none)");
	c->targets = calloc(1, sizeof(*c->targets));
	if (c->targets) {
		c->ntargets = 1;
		c->targets[0].name = strdup(CONFIG_PRIMARY);
	}
	if (!c->catalog_path || !c->file || !c->targets || !c->targets[0].name) {
		config_free(c);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

int config_load(const char *path, struct config **out)
{
	struct config_parse p;
	struct config *c = NULL;
	FILE *fp;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = config_empty(&c);
	if (rc)
		return rc;
	free(c->file);
	c->file = strdup(path);
	if (!c->file) {
		config_free(c);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	p.cfg = c;
	p.dir = config_dir_of(path);
	fp = p.dir ? fopen(path, "re") : NULL;
	if (!fp) {
		rc = p.dir ? error_set_errno(errno == ENOENT ? CF_ERR_NOTFOUND : CF_ERR_CONFIG,
		                             errno, "cannot read configuration file %s", path)
		           : error_set(CF_ERR_NOMEM, "out of memory");
		free(p.dir);
		config_free(c);
		return rc;
	}
	rc = config_ini_parse(fp, path, config_item, &p);
	if (!rc)
		rc = config_build_sources(&p);
	if (!rc)
		rc = config_check_repository(&p, fp);
	fclose(fp);
	config_parse_free(&p);
	if (rc) {
		config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsources; i++) {
		if (c->sources[i].ops && c->sources[i].state)
			c->sources[i].ops->free(c->sources[i].state);
		free(c->sources[i].retention.timezone);
		free(c->sources[i].drill_target);
		free(c->sources[i].on_success);
		free(c->sources[i].on_failure);
		free(c->sources[i].name);
	}
	free(c->sources);
	strv_free(&c->recipients);
	free(c->file);
	for (size_t i = 0; i < c->ntargets; i++) {
		struct config_target *t = &c->targets[i];

		free(t->name);
		free(t->type);
		free(t->path);
		free((void *)(uintptr_t)t->s3.endpoint);
		free((void *)(uintptr_t)t->s3.region);
		free((void *)(uintptr_t)t->s3.bucket);
		free((void *)(uintptr_t)t->s3.prefix);
		free((void *)(uintptr_t)t->s3.access_key);
		if (t->s3.secret_key)
			secret_free((char *)(uintptr_t)t->s3.secret_key);
		free((void *)(uintptr_t)t->s3.storage_class);
		free((void *)(uintptr_t)t->s3.ca_file);
		free((void *)(uintptr_t)t->s3.object_lock_mode);
		free((void *)(uintptr_t)t->s3.sts_endpoint);
		free((void *)(uintptr_t)t->s3.imds_endpoint);
	}
	for (size_t i = 0; c->targets && i < c->ntargets; i++)
		free(c->targets[i].retention.timezone);
	free(c->retention.timezone);
	free(c->targets);
	free(c->catalog_path);
	free(c->metrics_file);
	free(c->notify.on_success);
	free(c->notify.on_failure);
	free(c->notify.webhook_url);
	free(c->signing_key);
	strv_free(&c->trusted_signers);
	free(c->identity);
	free(c);
}

void config_retention_policy(const struct config *c, const char *source, size_t target,
                             struct retention_policy *out)
{
	const struct source *src = source ? config_source_find(c, source) : NULL;

	retention_merge(&c->retention, src ? &src->retention : NULL,
	                target < c->ntargets ? &c->targets[target].retention : NULL, out);
}

int config_source_uses(const struct config *c, const char *source, size_t target)
{
	const struct source *src = source ? config_source_find(c, source) : NULL;

	return !src || !src->target_mask || (src->target_mask & (1ULL << target));
}

size_t config_copies_required(const struct config *c, const char *source)
{
	size_t n = 0;

	for (size_t t = 0; t < c->ntargets; t++)
		n += (size_t)config_source_uses(c, source, t);
	return n < c->copies_required ? n : c->copies_required;
}

struct source *config_source_find(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nsources; i++)
		if (!strcmp(c->sources[i].name, name))
			return &c->sources[i];
	return NULL;
}
