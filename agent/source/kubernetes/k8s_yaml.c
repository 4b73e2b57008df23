/*
 * k8s_yaml: JSON objects written as YAML with libyaml's emitter. See
 * k8s_object.h.
 *
 * The one subtle part is strings: YAML 1.1 readers (kubectl's, PyYAML) read a
 * plain "true", "on", "1e3", "0o17", "~" or "2024-01-01" as a boolean, a
 * number, null or a time. Such strings are marked not plain-implicit, so the
 * emitter quotes them; every other string stays plain.
 */
#include "agent/source/kubernetes/k8s_object.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

/* YAML 1.1 and 1.2 implicit types (PyYAML's resolver, plus 1.2's octal). */
static const char *const k8s_yaml_implicit[] = {
    "^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
    "^(~|null|Null|NULL)$",
    "^[-+]?(0b[0-1_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|(0|[1-9][0-9_]*)|[1-9][0-9_]*(:[0-5]?[0-9])+)$",
    "^[-+]?(([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?|[0-9][0-9_]*([eE][-+]?[0-9]+)|"
    "[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
    "^[-+]?[0-9][0-9_]*\\.?[0-9_]*[eE][-+]?[0-9]+$",
    "^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ]|$)",
    "^(=|<<)$",
    NULL,
};

/* 1 if a plain scalar s would not read back as the string s. */
static int k8s_yaml_ambiguous(const char *s)
{
	static regex_t re[sizeof(k8s_yaml_implicit) / sizeof(k8s_yaml_implicit[0])];
	static int compiled;

	if (!*s)
		return 1;
	if (!compiled) {
		for (size_t i = 0; k8s_yaml_implicit[i]; i++)
			if (regcomp(&re[i], k8s_yaml_implicit[i], REG_EXTENDED | REG_NOSUB) != 0)
				return 1; /* quoting everything is always correct */
		compiled = 1;
	}
	for (size_t i = 0; k8s_yaml_implicit[i]; i++)
		if (regexec(&re[i], s, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

static int k8s_yaml_out(void *ctx, unsigned char *data, size_t len)
{
	return buf_append(ctx, data, len) == 0;
}

static int k8s_yaml_scalar(yaml_emitter_t *e, const char *text, int plain_ok,
                           yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, (const yaml_char_t *)YAML_STR_TAG,
	                                  (const yaml_char_t *)text, (int)strlen(text), plain_ok, 1,
	                                  style))
		return 0;
	return yaml_emitter_emit(e, &ev);
}

static int k8s_yaml_node(yaml_emitter_t *e, json_t *j)
{
	yaml_event_t ev;
	char num[64];

	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *v;

		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                         YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(e, &ev))
			return 0;
		json_object_foreach(j, key, v)
		{
			if (!k8s_yaml_scalar(e, key, !k8s_yaml_ambiguous(key),
			                     YAML_ANY_SCALAR_STYLE) ||
			    !k8s_yaml_node(e, v))
				return 0;
		}
		return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(e, &ev))
			return 0;
		json_array_foreach(j, i, v)
		{
			if (!k8s_yaml_node(e, v))
				return 0;
		}
		return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
	}
	case JSON_STRING: {
		const char *s = json_string_value(j);
		/* Text of several lines reads best as a literal block; the emitter
		 * falls back to a quoted style where a block cannot hold it. */
		yaml_scalar_style_t style =
		    strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;

		return k8s_yaml_scalar(e, s, !k8s_yaml_ambiguous(s), style);
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(j));
		break;
	case JSON_TRUE:
		snprintf(num, sizeof(num), "true");
		break;
	case JSON_FALSE:
		snprintf(num, sizeof(num), "false");
		break;
	case JSON_NULL:
		snprintf(num, sizeof(num), "null");
		break;
	}
	/* Numbers, booleans and null: plain, untagged, so they read back as such. */
	return yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)num,
	                                    (int)strlen(num), 1, 0, YAML_PLAIN_SCALAR_STYLE) &&
	       yaml_emitter_emit(e, &ev);
}

int k8s_yaml_emit(json_t *obj, struct buf *out)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	size_t before = out->len;
	int ok;

	if (!yaml_emitter_initialize(&e))
		return error_set(CF_ERR_NOMEM, "out of memory");
	yaml_emitter_set_output(&e, k8s_yaml_out, out);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_emitter_set_indent(&e, 2);
	ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	     yaml_emitter_emit(&e, &ev) &&
	     yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
	     yaml_emitter_emit(&e, &ev) && k8s_yaml_node(&e, obj) &&
	     yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
	     yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
	     yaml_emitter_flush(&e);
	if (!ok) {
		int rc = out->max && out->len >= out->max
		             ? error_set(CF_ERR_LIMIT, "an object's YAML is larger than %zu bytes",
		                         out->max)
		             : error_set(CF_ERR_FORMAT, "YAML emitter: %s",
		                         e.problem ? e.problem : "out of memory");

		yaml_emitter_delete(&e);
		out->len = before;
		return rc;
	}
	yaml_emitter_delete(&e);
	return 0;
}
