/*
 * status: how each configured source stands (see status.c), for `coffer
 * status` and the Prometheus metrics file.
 */
#ifndef COFFER_STATUS_H
#define COFFER_STATUS_H

#include "agent/agent.h"

#include <jansson.h>

/*
 * The status of source src at time now as a JSON object (*out, the caller's):
 * an item of docs/schema/status.json's "sources". loc_ms (may be NULL), an
 * object, gets {location: start ms of the newest complete backup there}.
 * Errors: CF_ERR_CATALOG, CF_ERR_NOMEM.
 */
int status_source(const struct config *cfg, struct catalog *cat, const struct source *src,
                  int64_t now, json_t *loc_ms, json_t **out);

/* "3d4h", "5h12m", "40m", "12s": a coarse duration of ms. */
void status_age_text(int64_t ms, char *out, size_t size);

/*
 * Rewrites cfg->metrics_file (if set) from the catalog: a Prometheus
 * textfile (coffer_* gauges per source and repository), written to a
 * temporary file in its folder and renamed over it. Errors: CF_ERR_IO,
 * CF_ERR_CATALOG, CF_ERR_NOMEM.
 */
int status_metrics_write(const struct config *cfg, struct catalog *cat);

#endif
