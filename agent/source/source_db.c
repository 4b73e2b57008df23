/*
 * source_db: helpers shared by the database sources. See source_db.h.
 */
#include "agent/source/source_db.h"
#include "agent/agent.h"
#include "agent/pipeline.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int source_db_set(char **field, const char *value)
{
	char *c = strdup(value);

	if (!c)
		return error_set(CF_ERR_NOMEM, "out of memory");
	free(*field);
	*field = c;
	return 0;
}

int source_db_set_list(struct strv *v, const char *value)
{
	strv_free(v);
	return strv_split(value, v);
}

int source_db_set_port(char **field, const char *key, const char *value)
{
	char *end;
	long v = strtol(value, &end, 10);

	if (!*value || *end || v < 1 || v > 65535)
		return error_set(CF_ERR_CONFIG, "%s = '%s': expected a TCP port (1-65535)", key,
		                 value);
	return source_db_set(field, value);
}

int source_keys_set(const struct source_key *keys, void *state, const char *key, const char *value)
{
	char *base = state;
	struct buf names;
	int rc;

	for (const struct source_key *k = keys; k->name; k++) {
		char **str = (char **)(void *)(base + k->offset);

		if (strcmp(k->name, key))
			continue;
		switch (k->type) {
		case SOURCE_KEY_BOOL:
			return source_parse_bool(key, value, (int *)(void *)(base + k->offset));
		case SOURCE_KEY_LIST:
			return source_db_set_list((struct strv *)(void *)(base + k->offset), value);
		case SOURCE_KEY_PORT:
			return source_db_set_port(str, key, value);
		case SOURCE_KEY_PATH:
			if (value[0] != '/')
				return error_set(CF_ERR_CONFIG,
				                 "%s = '%s': expected an absolute path", key,
				                 value);
			return source_db_set(str, value);
		case SOURCE_KEY_STR:
			if (!*value)
				return error_set(CF_ERR_CONFIG, "%s is empty", key);
			return source_db_set(str, value);
		}
	}
	buf_init(&names, 4096);
	for (const struct source_key *k = keys; k->name; k++)
		(void)buf_printf(&names, "%s%s", k == keys ? "" : ", ", k->name);
	rc = error_set(CF_ERR_CONFIG, "unknown key '%s' (expected %s)", key,
	               names.len ? (char *)names.data : "none");
	buf_free(&names);
	return rc;
}

void source_keys_free(const struct source_key *keys, void *state)
{
	char *base = state;

	for (const struct source_key *k = keys; k->name; k++) {
		if (k->type == SOURCE_KEY_LIST) {
			strv_free((struct strv *)(void *)(base + k->offset));
		} else if (k->type != SOURCE_KEY_BOOL) {
			char **str = (char **)(void *)(base + k->offset);

			free(*str);
			*str = NULL;
		}
	}
}

int source_state_new(size_t size, const char *name, void **state)
{
	char **s = calloc(1, size);

	if (!s || !(*s = strdup(name))) {
		free(s);
		return error_set(CF_ERR_NOMEM, "out of memory");
	}
	*state = s;
	return 0;
}

void source_state_free(const struct source_key *keys, void *state)
{
	if (!state)
		return;
	source_keys_free(keys, state);
	free(*(char **)state);
	free(state);
}

int source_db_select(const char *source, const struct strv *all, const struct strv *include,
                     const struct strv *exclude, struct strv *out)
{
	int rc = 0;

	for (size_t i = 0; i < include->n; i++)
		if (!strv_has(all, include->v[i]))
			return error_set(CF_ERR_SOURCE,
			                 "source %s: database '%s' does not exist on the server",
			                 source, include->v[i]);
	for (size_t i = 0; i < exclude->n; i++)
		if (!strv_has(all, exclude->v[i]))
			log_warn("source %s: excluded database '%s' does not exist on the server",
			         source, exclude->v[i]);
	for (size_t i = 0; !rc && i < all->n; i++) {
		const char *db = all->v[i];
		int keep = include->n == 0 || strv_has(include, db);

		if (keep && strv_has(exclude, db))
			keep = 0;
		if (keep)
			rc = strv_add(out, db);
	}
	return rc;
}

int source_db_stream_name(const char *prefix, const char *db, const char *suffix, char *out,
                          size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

#define PUT(c)                                                                                     \
	do {                                                                                       \
		if (n + 1 >= outlen)                                                               \
			return error_set(CF_ERR_LIMIT, "database name '%s' is too long", db);      \
		out[n++] = (c);                                                                    \
	} while (0)
	for (const char *p = prefix; *p; p++)
		PUT(*p);
	for (const unsigned char *p = (const unsigned char *)db; *p; p++) {
		/* '_' stays itself unless two hex digits follow (which would read
		 * as an escape), so names map one to one. */
		int hex2 = p[1] && p[2] && isxdigit(p[1]) && isxdigit(p[2]);

		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || (*p == '_' && !hex2)) {
			PUT((char)*p);
		} else {
			PUT('_');
			PUT(hex[*p >> 4]);
			PUT(hex[*p & 15]);
		}
	}
	for (const char *p = suffix; *p; p++)
		PUT(*p);
#undef PUT
	out[n] = '\0';
	return 0;
}

char *source_db_find_tool(const char *bin_dir, const char *const *names)
{
	for (size_t i = 0; names[i]; i++) {
		const char *path = bin_dir ? bin_dir : getenv("PATH");
		char *copy, *save = NULL;

		if (!path)
			path = "/usr/local/bin:/usr/bin:/bin";
		copy = strdup(path);
		if (!copy)
			return NULL;
		for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
			char *full;

			if (asprintf(&full, "%s/%s", d, names[i]) < 0) {
				free(copy);
				return NULL;
			}
			if (access(full, X_OK) == 0) {
				free(copy);
				return full;
			}
			free(full);
		}
		free(copy);
	}
	return NULL;
}

int source_dump_child(struct backup_run *run, const struct proc_spec *spec, const char *stream,
                      const char *format, const char *meta_json)
{
	struct proc_spec s = *spec;
	struct filter *head = NULL;
	struct proc p;
	int rc;

	s.out = 1;
	memset(&p, 0, sizeof(p));
	p.pid = p.in = p.out = p.err = -1;
	rc = backup_stream_open(run, stream, format, &head);
	if (!rc && meta_json)
		rc = backup_stream_set_meta(run, meta_json);
	if (!rc)
		rc = proc_start(&s, &p);
	if (!rc)
		rc = proc_pump(&p, head);
	/* The object is committed only once the tool has exited with status 0:
	 * a dump that fails half-way never becomes a stored object. */
	if (!rc)
		rc = proc_finish(&p);
	if (!rc)
		rc = backup_stream_close(run);
	proc_release(&p);
	return rc;
}

json_t *source_db_meta_new(const char *engine, const struct strv *dbs)
{
	json_t *m = json_object(), *arr = dbs ? json_array() : NULL;
	int bad = !m || (dbs && !arr);

	for (size_t i = 0; !bad && dbs && i < dbs->n; i++)
		bad = json_array_append_new(arr, json_string(dbs->v[i])) != 0;
	if (!bad && arr) {
		bad = json_object_set_new(m, "databases", arr) != 0;
		arr = NULL;
	}
	bad = bad || json_object_set_new(m, "engine", json_string(engine)) != 0;
	json_decref(arr);
	if (bad) {
		json_decref(m);
		return NULL;
	}
	return m;
}

int source_db_meta_commit(struct backup_run *run, json_t *m, int bad)
{
	char *text = bad || !m ? NULL : json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	json_decref(m);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	rc = backup_run_set_meta(run, text);
	free(text);
	return rc;
}

char *source_db_json_str(const char *s)
{
	json_t *j = json_string(s);
	char *out;

	if (!j)
		return NULL;
	out = json_dumps(j, JSON_ENCODE_ANY);
	json_decref(j);
	return out;
}
