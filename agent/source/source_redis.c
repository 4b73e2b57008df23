/*
 * source_redis: backs up a Redis server as one RDB snapshot ("dump.rdb",
 * format "rdb"), streamed from `redis-cli --rdb -` through the pipeline with
 * nothing written to disk.
 *
 * redis-cli asks the server for a replica's full sync (REPLCONF rdb-only,
 * SYNC): the server forks and its child writes the snapshot of the moment of
 * the fork, as for BGSAVE. Before that, `INFO server keyspace` checks that
 * the server answers and the credentials work (redis-cli exits 0 on an AUTH
 * failure, so the reply text is what tells), and gives the version and the
 * databases for the record's metadata.
 *
 * The password reaches redis-cli through REDISCLI_AUTH, never its argv. The
 * object is committed only once redis-cli has exited with status 0 and the
 * stream has passed redis_rdb's check (magic, EOF opcode, CRC-64): a
 * truncated snapshot never becomes a stored object.
 */
#include "agent/drill.h"
#include "agent/pipeline.h"
#include "agent/source/redis_rdb.h"
#include "agent/source/source.h"
#include "agent/source/source_db.h"

#include <jansson.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* INFO server + keyspace is a few KiB; a server with many databases more. */
#define REDIS_INFO_MAX (1024 * 1024)

struct source_redis {
	char *name;
	char *host, *port, *socket;
	char *user;
	char *password_file;
	int tls;
	char *ca_file;
	char *redis_cli;
};
_Static_assert(offsetof(struct source_redis, name) == 0, "source_state_new() needs the name first");

#define RDK(n, t, f)                                                                               \
	{                                                                                          \
		n, t, offsetof(struct source_redis, f)                                             \
	}
static const struct source_key source_redis_keys[] = {
    RDK("host", SOURCE_KEY_STR, host),
    RDK("port", SOURCE_KEY_PORT, port),
    RDK("socket", SOURCE_KEY_STR, socket),
    RDK("user", SOURCE_KEY_STR, user),
    RDK("password_file", SOURCE_KEY_STR, password_file),
    RDK("tls", SOURCE_KEY_BOOL, tls),
    RDK("ca_file", SOURCE_KEY_STR, ca_file),
    RDK("redis_cli", SOURCE_KEY_STR, redis_cli),
    {NULL, SOURCE_KEY_STR, 0},
};
#undef RDK

static int source_redis_create(const char *name, void **state)
{
	return source_state_new(sizeof(struct source_redis), name, state);
}

static void source_redis_free(void *state)
{
	source_state_free(source_redis_keys, state);
}

static int source_redis_set(void *state, const char *key, const char *value)
{
	return source_keys_set(source_redis_keys, state, key, value);
}

static int source_redis_check(void *state)
{
	struct source_redis *s = state;

	if (s->socket && (s->host || s->port))
		return error_set(CF_ERR_CONFIG, "socket cannot be combined with host or port");
	if (s->ca_file && !s->tls)
		return error_set(CF_ERR_CONFIG, "ca_file needs tls = true");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Running                                                                    */
/* ------------------------------------------------------------------------ */

struct redis_ctx {
	struct source_redis *s;
	char where[512];   /* "127.0.0.1:6379" or the socket path, for errors */
	char *cli;         /* the redis-cli binary */
	char *env[2];      /* REDISCLI_AUTH=... (sodium memory) */
	char version[64];  /* redis_version */
	json_t *databases; /* indices of the databases with keys */
};

/* The connection options every redis-cli call shares. */
static int redis_base_argv(struct redis_ctx *c, struct strv *av)
{
	struct source_redis *s = c->s;
	int rc = strv_add(av, c->cli);

	if (!rc && s->socket) {
		rc = strv_add(av, "-s");
		if (!rc)
			rc = strv_add(av, s->socket);
	} else if (!rc) {
		rc = strv_add(av, "-h");
		if (!rc)
			rc = strv_add(av, s->host ? s->host : "127.0.0.1");
		if (!rc)
			rc = strv_add(av, "-p");
		if (!rc)
			rc = strv_add(av, s->port ? s->port : "6379");
	}
	if (!rc && s->user) {
		rc = strv_add(av, "--user");
		if (!rc)
			rc = strv_add(av, s->user);
	}
	if (!rc && s->tls)
		rc = strv_add(av, "--tls");
	if (!rc && s->ca_file) {
		rc = strv_add(av, "--cacert");
		if (!rc)
			rc = strv_add(av, s->ca_file);
	}
	/* The warning is about -a on the command line, which coffer never uses. */
	if (!rc)
		rc = strv_add(av, "--no-auth-warning");
	return rc;
}

/* The text of the first line of s (without \r\n), at most n-1 bytes. */
static void redis_first_line(const char *s, char *out, size_t n)
{
	size_t len = strcspn(s, "\r\n");

	if (len >= n)
		len = n - 1;
	memcpy(out, s, len);
	out[len] = '\0';
}

/* The value of "key:" in an INFO reply, at most n-1 bytes; 0 if absent. */
static int redis_info_field(const char *info, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);

	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, kl) && p[kl] == ':') {
			redis_first_line(p + kl + 1, out, n);
			return 1;
		}
	}
	return 0;
}

/* Fills c->databases from the "dbN:keys=..." lines of INFO keyspace. */
static int redis_keyspace(struct redis_ctx *c, const char *info)
{
	c->databases = json_array();
	if (!c->databases)
		return error_set(CF_ERR_NOMEM, "out of memory");
	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char *end;
		long db;

		if (strncmp(p, "db", 2) != 0 || p[2] < '0' || p[2] > '9')
			continue;
		db = strtol(p + 2, &end, 10);
		if (*end != ':' || strncmp(end + 1, "keys=", 5) != 0)
			continue;
		if (json_array_append_new(c->databases, json_integer(db)))
			return error_set(CF_ERR_NOMEM, "out of memory");
	}
	return 0;
}

static int redis_buf_write(struct filter *f, const uint8_t *data, size_t len)
{
	return buf_append(f->ctx, data, len);
}

static const struct filter_ops redis_buf_ops = {"capture", redis_buf_write, NULL, NULL};

/*
 * Runs `redis-cli ... INFO server keyspace`. redis-cli prints "AUTH failed:
 * ..." on stderr and goes on when the password is refused, and prints a
 * server error reply (NOAUTH, NOPERM) as the command's output, both with exit
 * status 0: the reply has to be an INFO text to count as success.
 */
static int redis_info(struct redis_ctx *c)
{
	struct source_redis *s = c->s;
	struct strv av = {0};
	struct proc_spec spec;
	struct filter *sink = NULL;
	struct proc p;
	struct buf out;
	char label[300], why[512];
	const char *tail, *auth;
	int rc;

	buf_init(&out, REDIS_INFO_MAX);
	memset(&p, 0, sizeof(p));
	p.pid = p.in = p.out = p.err = -1;
	rc = redis_base_argv(c, &av);
	if (!rc)
		rc = strv_add(&av, "INFO");
	if (!rc)
		rc = strv_add(&av, "server");
	if (!rc)
		rc = strv_add(&av, "keyspace");
	if (!rc && !(sink = filter_new(&redis_buf_ops, &out)))
		rc = CF_ERR_NOMEM;
	if (rc)
		goto out;
	snprintf(label, sizeof(label), "source %s: redis-cli", s->name);
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = av.v;
	spec.env = c->env[0] ? c->env : NULL;
	spec.out = 1;
	spec.errcode = CF_ERR_SOURCE;
	spec.stderr_debug = 1;
	rc = proc_start(&spec, &p);
	if (rc)
		goto out;
	rc = proc_pump(&p, sink);
	if (rc == CF_ERR_LIMIT)
		rc = error_set(CF_ERR_SOURCE,
		               "source %s: redis at %s: INFO is larger than %zu bytes", s->name,
		               c->where, out.max);
	if (rc)
		goto out;
	/* The exit status and the stderr tail say why when there is no reply. */
	rc = proc_finish(&p);
	tail = proc_stderr_tail(&p);
	if (rc == CF_ERR_SOURCE && *tail)
		rc =
		    error_set(CF_ERR_SOURCE, "source %s: redis at %s: %s", s->name, c->where, tail);
	if (rc)
		goto out;
	if (!(rc = buf_reserve(&out, 1)))
		out.data[out.len] = '\0';
	if (rc)
		goto out;
	if (!redis_info_field((const char *)out.data, "redis_version", c->version,
	                      sizeof(c->version))) {
		/* The password refused (stderr) says more than the NOAUTH after it. */
		auth = strstr(tail, "AUTH failed: ");
		if (auth)
			redis_first_line(auth + 13, why, sizeof(why));
		else if (out.len)
			redis_first_line((const char *)out.data, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "no reply to INFO%s%s", *tail ? ": " : "", tail);
		/* " | " joins stderr lines in the tail: keep only the first. */
		why[strcspn(why, "|")] = '\0';
		for (size_t n = strlen(why); n && why[n - 1] == ' '; n--)
			why[n - 1] = '\0';
		rc = error_set(CF_ERR_SOURCE, "source %s: redis at %s: %s", s->name, c->where, why);
		goto out;
	}
	rc = redis_keyspace(c, (const char *)out.data);
out:
	filter_chain_free(sink);
	proc_release(&p);
	buf_free(&out);
	strv_free(&av);
	return rc;
}

/* The RDB length redis-cli reports on stderr, or -1: "... success after N
 * bytes" (EOF-marked transfer) or "writing N bytes to '-'" (sized one). */
static long long redis_reported_len(const char *tail)
{
	const char *p;
	unsigned long long n;

	p = strstr(tail, "success after ");
	if (p && sscanf(p, "success after %llu bytes", &n) == 1)
		return (long long)n;
	p = strstr(tail, "writing ");
	if (p && sscanf(p, "writing %llu bytes", &n) == 1)
		return (long long)n;
	return -1;
}

static int redis_meta(struct redis_ctx *c, struct backup_run *run)
{
	json_t *m = json_pack("{s:s, s:s, s:O, s:s}", "engine", "redis", "server_version",
	                      c->version, "databases", c->databases, "dump", "redis-cli --rdb");
	char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
	int rc;

	json_decref(m);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = backup_run_set_meta(run, text);
	free(text);
	return rc;
}

/* Streams `redis-cli ... --rdb -` into the object dump.rdb. */
static int redis_dump(struct redis_ctx *c, struct backup_run *run)
{
	struct source_redis *s = c->s;
	struct strv av = {0};
	struct proc_spec spec;
	struct filter *head = NULL, *check = NULL;
	struct proc p;
	char label[300], msg[1024];
	int rc, checksummed = 0;

	memset(&p, 0, sizeof(p));
	p.pid = p.in = p.out = p.err = -1;
	rc = redis_base_argv(c, &av);
	if (!rc)
		rc = strv_add(&av, "--rdb");
	if (!rc)
		rc = strv_add(&av, "-");
	if (rc)
		goto out;
	snprintf(label, sizeof(label), "source %s: redis-cli --rdb", s->name);
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.argv = av.v;
	spec.env = c->env[0] ? c->env : NULL;
	spec.out = 1;
	spec.errcode = CF_ERR_SOURCE;
	/* "SYNC sent to master ..." is progress, not a warning. */
	spec.stderr_debug = 1;
	rc = backup_stream_open(run, "dump.rdb", "rdb", &head);
	if (!rc)
		rc = redis_rdb_filter_new(head, &check);
	if (!rc)
		rc = proc_start(&spec, &p);
	if (!rc)
		rc = proc_pump(&p, check);
	if (!rc)
		rc = proc_finish(&p);
	if (!rc)
		rc = redis_rdb_filter_end(check, redis_reported_len(proc_stderr_tail(&p)),
		                          &checksummed);
	if (rc == CF_ERR_FORMAT) {
		snprintf(msg, sizeof(msg), "%s", error_message());
		rc = error_set(CF_ERR_SOURCE, "source %s: redis at %s: %s", s->name, c->where, msg);
	}
	if (!rc && !checksummed)
		log_warn(
		    "source %s: the RDB has no checksum (rdbchecksum no): only its end was checked",
		    s->name);
	if (!rc)
		rc = redis_meta(c, run);
	/* Committed only now: redis-cli succeeded and the RDB is whole. */
	if (!rc)
		rc = backup_stream_close(run);
out:
	proc_release(&p);
	filter_chain_free(check);
	strv_free(&av);
	return rc;
}

/* Finds redis-cli and puts the password (if any) into c's environment.
 * Release with redis_ctx_close() whatever it returns. */
static int redis_ctx_open(struct source_redis *s, struct redis_ctx *c)
{
	static const char *const names[] = {"redis-cli", NULL};
	char *password = NULL;
	size_t envlen;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->s = s;
	if (s->socket)
		snprintf(c->where, sizeof(c->where), "%s", s->socket);
	else
		snprintf(c->where, sizeof(c->where), "%s:%s", s->host ? s->host : "127.0.0.1",
		         s->port ? s->port : "6379");
	c->cli = s->redis_cli ? strdup(s->redis_cli) : source_db_find_tool(NULL, names);
	if (!c->cli) {
		if (s->redis_cli)
			return error_set(CF_ERR_NOMEM, "out of memory");
		return error_set(CF_ERR_SOURCE,
		                 "source %s: redis-cli is not installed (install redis-tools)",
		                 s->name);
	}
	if (s->password_file) {
		rc = proc_read_secret(s->password_file, &password);
		if (rc) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", error_message());
			return error_set(CF_ERR_SOURCE, "source %s: %s", s->name, msg);
		}
		/* The variable holds the secret too: sodium memory, wiped on free. */
		envlen = strlen("REDISCLI_AUTH=") + strlen(password) + 1;
		c->env[0] = sodium_malloc(envlen);
		if (c->env[0])
			snprintf(c->env[0], envlen, "REDISCLI_AUTH=%s", password);
		proc_secret_free(password);
	} else {
		/* A REDISCLI_AUTH in coffer's own environment is not this source's. */
		c->env[0] = sodium_malloc(sizeof("REDISCLI_AUTH"));
		if (c->env[0])
			memcpy(c->env[0], "REDISCLI_AUTH", sizeof("REDISCLI_AUTH"));
	}
	if (!c->env[0])
		return error_set(CF_ERR_NOMEM, "out of memory");
	return 0;
}

static void redis_ctx_close(struct redis_ctx *c)
{
	if (c->env[0])
		sodium_free(c->env[0]);
	json_decref(c->databases);
	free(c->cli);
	memset(c, 0, sizeof(*c));
}

static int source_redis_run(void *state, struct backup_run *run)
{
	struct source_redis *s = state;
	struct redis_ctx c;
	int rc = redis_ctx_open(s, &c);

	if (!rc)
		rc = redis_info(&c);
	if (!rc)
		log_info("source %s: Redis %s at %s", s->name, c.version, c.where);
	if (!rc)
		rc = redis_dump(&c, run);
	redis_ctx_close(&c);
	return rc;
}

/* coffer check: redis-cli is installed and the server answers INFO with this
 * source's password. */
static int source_redis_probe(void *state, struct buf *detail)
{
	struct source_redis *s = state;
	struct redis_ctx c;
	int rc = redis_ctx_open(s, &c);

	if (!rc)
		rc = redis_info(&c);
	if (!rc)
		rc = buf_printf(detail, "Redis %s at %s", c.version, c.where);
	redis_ctx_close(&c);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Drill: verify --drill                                                    */
/* ------------------------------------------------------------------------ */

struct redis_drill {
	char *cli;
	char sock[4200];
	struct buf out;
};

/* redis-cli -s SOCK ARGS on the drill's server into r->out. */
static int redis_drill_cli(struct redis_drill *r, const char *a1, const char *a2)
{
	/* No password: the server is private to the drill. */
	char unset[] = "REDISCLI_AUTH", *env[] = {unset, NULL};
	struct strv argv = {0};
	struct proc_spec spec;
	int rc = strv_addl(&argv, r->cli, "-s", r->sock, a1, NULL);

	if (!rc && a2)
		rc = strv_add(&argv, a2);
	memset(&spec, 0, sizeof(spec));
	spec.label = "drill: redis-cli";
	spec.argv = argv.v;
	spec.env = env;
	spec.errcode = CF_ERR_TARGET;
	r->out.len = 0;
	if (!rc)
		rc = proc_capture(&spec, &r->out);
	strv_free(&argv);
	return rc;
}

/* Ready once the RDB is loaded: PING answers PONG (LOADING before). */
static int redis_drill_ready(struct drill *d, void *ctx)
{
	struct redis_drill *r = ctx;
	int rc = redis_drill_cli(r, "PING", NULL);

	(void)d;
	error_clear();
	return !rc && !strncmp((char *)r->out.data, "PONG", 4);
}

static int source_redis_drill(struct drill *d)
{
	static const char *const servers[] = {"redis-server", NULL}, *const clis[] = {"redis-cli",
	                                                                              NULL};
	const struct catalog_object *obj = NULL;
	struct redis_drill r;
	struct strv argv = {0};
	char rdb[4200], *server = source_db_find_tool(NULL, servers);
	int rc;

	memset(&r, 0, sizeof(r));
	buf_init(&r.out, REDIS_INFO_MAX);
	r.cli = source_db_find_tool(NULL, clis);
	rc = server && r.cli
	         ? 0
	         : error_set(CF_ERR_TARGET, "a drill of a Redis backup needs the server: "
	                                    "install redis-server (and redis-tools)");
	for (size_t i = 0; !rc && !obj && i < d->b->nobjects; i++)
		if (!strcmp(d->b->objects[i].format, "rdb"))
			obj = &d->b->objects[i];
	if (!rc && !obj)
		rc = error_set(CF_ERR_TARGET, "backup %s holds no RDB object", d->b->id);
	if (!rc)
		rc = drill_path(d, "dump.rdb", rdb, sizeof(rdb));
	if (!rc)
		rc = drill_path(d, "redis.sock", r.sock, sizeof(r.sock));
	if (!rc)
		rc = drill_restore_file(d, obj, rdb);
	/* No TCP, no saving: the server only loads the snapshot. */
	if (!rc)
		rc = strv_addl(&argv, server, "--port", "0", "--unixsocket", r.sock,
		               "--unixsocketperm", "700", "--dir", d->dir, "--dbfilename",
		               "dump.rdb", "--save", "", "--appendonly", "no", "--databases",
		               "100000", NULL);
	if (!rc)
		rc = drill_server_start(d, "redis-server", argv.v, NULL, redis_drill_ready, &r);
	/* Loading the snapshot is the server's start: recovery time. */
	if (!rc)
		drill_restored(d);
	if (!rc)
		rc = redis_drill_cli(&r, "INFO", "keyspace");
	/* "db0:keys=1701,expires=12,avg_ttl=0" per database with keys. */
	for (char *line = (char *)r.out.data, *nl; !rc && line && *line; line = nl) {
		char *colon, *keys;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		colon = strchr(line, ':');
		keys = colon ? strstr(colon, "keys=") : NULL;
		if (strncmp(line, "db", 2) != 0 || !keys)
			continue;
		*colon = '\0';
		rc = drill_kind(d, line, "keys", atoll(keys + 5));
	}
	strv_free(&argv);
	buf_free(&r.out);
	free(r.cli);
	free(server);
	return rc;
}

const struct source_ops source_redis_ops = {
    .type = "redis",
    .create = source_redis_create,
    .set = source_redis_set,
    .check = source_redis_check,
    .run = source_redis_run,
    .probe = source_redis_probe,
    .free = source_redis_free,
    .traits = SOURCE_TRAIT_SINGLE_FILE,
    .drill = source_redis_drill,
};
