/*
 * notify: telling someone how a backup run ended. After each source's run,
 * `coffer backup` calls notify_run() once: it runs the on_success or
 * on_failure command (the source's, else [notify]'s) with the result as
 * JSON on its stdin, and POSTs the same JSON to [notify] webhook_url (with
 * retries and a timeout). The JSON is the backup's record (no secret is in
 * one) with the outcome; a notification that fails is a warning, never the
 * run's failure.
 */
#ifndef COFFER_NOTIFY_H
#define COFFER_NOTIFY_H

#include "agent/agent.h"

/* Notifies the end of source's run: res its record (NULL when the run failed
 * before it had one), rc its outcome (0, or the failure with error its
 * message). Never fails. */
void notify_run(const struct config *cfg, const struct source *src,
                const struct catalog_backup *res, int rc, const char *error);

#endif
