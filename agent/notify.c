/*
 * notify: the end of a backup run, to a command and a webhook. See notify.h.
 */
#include "agent/notify.h"
#include "agent/proc.h"
#include "agent/source/source.h"
#include "http/http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The result: {"event": "backup", "ok", "source", "host", "id", "status",
 * "error", "exit_code", "record"}. NULL on out of memory. */
static char *notify_json(const struct source *src, const struct catalog_backup *res, int rc,
                         const char *error)
{
	json_t *o = json_pack("{s:s, s:b, s:s, s:i}", "event", "backup", "ok", rc == 0, "source",
	                      src->name, "exit_code", agent_exit_code(rc));
	char *record = NULL, *text = NULL, host[256] = "";

	gethostname(host, sizeof(host) - 1);
	if (o && json_object_set_new(o, "host", json_string(host)))
		o = NULL;
	if (o && rc && json_object_set_new(o, "error", json_string(error ? error : "")))
		o = NULL;
	if (o && res &&
	    (json_object_set_new(o, "id", json_string(res->id)) ||
	     json_object_set_new(o, "status", json_string(catalog_status_name(res->status)))))
		o = NULL;
	if (o && res && catalog_backup_to_json(res, 0, &record) == 0) {
		json_t *r = json_loads(record, 0, NULL);

		if (!r || json_object_set_new(o, "record", r))
			o = NULL;
	}
	error_clear();
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	free(record);
	return text;
}

/* sh -c command, the JSON on its stdin. */
static int notify_command(const char *command, const char *what, const char *json)
{
	struct proc_spec spec;
	struct proc p;
	char label[64];
	int rc;

	snprintf(label, sizeof(label), "notify: %s", what);
	memset(&spec, 0, sizeof(spec));
	spec.label = label;
	spec.shell = command;
	spec.in = 1;
	spec.errcode = CF_ERR_TARGET;
	rc = proc_start(&spec, &p);
	if (!rc)
		rc = proc_feed(&p, (const uint8_t *)json, strlen(json));
	if (!rc)
		rc = proc_finish(&p);
	proc_release(&p);
	return rc;
}

static int notify_webhook_prepare(void *ctx, struct http_attempt *a)
{
	(void)ctx;
	return http_attempt_header(a, "Content-Type", "application/json");
}

/* POST json to url: 3 attempts, 10 s each at most. */
static int notify_webhook(const char *url, const char *json)
{
	struct http_client_options o;
	struct http_client *c = NULL;
	struct http_request req;
	struct http_response resp;
	int rc;

	memset(&o, 0, sizeof(o));
	o.name = "webhook";
	o.connect_timeout_ms = 5000;
	o.total_timeout_ms = 10000;
	o.max_attempts = 3;
	o.backoff_base_ms = 500;
	o.backoff_cap_ms = 2000;
	rc = http_client_new(&o, &c);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.what = "POST webhook_url";
	req.body = (const uint8_t *)json;
	req.body_len = strlen(json);
	req.prepare = notify_webhook_prepare;
	if (!rc)
		rc = http_perform(c, &req, &resp);
	http_client_free(c);
	return rc;
}

void notify_run(const struct config *cfg, const struct source *src,
                const struct catalog_backup *res, int rc, const char *error)
{
	const char *cmd = rc ? (src->on_failure ? src->on_failure : cfg->notify.on_failure)
	                     : (src->on_success ? src->on_success : cfg->notify.on_success);
	char *json;

	if (!cmd && !cfg->notify.webhook_url)
		return;
	json = notify_json(src, res, rc, error);
	if (!json) {
		log_warn("notify: out of memory");
		return;
	}
	if (cmd && notify_command(cmd, rc ? "on_failure" : "on_success", json) != 0)
		log_warn("source %s: the %s command failed: %s", src->name,
		         rc ? "on_failure" : "on_success", error_message());
	error_clear();
	if (cfg->notify.webhook_url && notify_webhook(cfg->notify.webhook_url, json) != 0)
		log_warn("source %s: the webhook was not delivered: %s", src->name,
		         error_message());
	error_clear();
	free(json);
}
