/*
 * cmd_check: `coffer check [SOURCE...] [--json]`, run before trusting a new
 * configuration (as pgbackrest check): the configuration loads, the catalog
 * opens, the recipients are valid, the identity is where identity_on_host
 * says, every repository takes a probe object (repo_probe()), and every
 * source (or those named) is reached without storing anything (the source
 * type's probe operation). One line per check; every check runs even after
 * one failed. Exit 0 when all passed, else the first failure's status, with
 * one error line counting the failures.
 */
#include "agent/agent.h"
#include "agent/source/source.h"
#include "catalog/catalog.h"
#include "crypto/crypto.h"
#include "repo/repo.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_CHECK_USAGE "usage: coffer check [SOURCE...] [--json]"

struct check_run {
	const struct cli *cli;
	json_t *checks;
	size_t failed, total;
	int first_rc;
	char first[1024];
};

/* Reports one check: rc 0 passed (detail says what was found), rc > 0
 * skipped (detail says why), else failed (error_message() says why). */
static void check_report(struct check_run *c, const char *what, const char *name, int rc,
                         const struct buf *detail)
{
	const char *text = rc < 0 ? error_message() : detail->len ? (char *)detail->data : "";
	const char *word = rc < 0 ? "FAIL" : rc > 0 ? "skip" : "ok";
	size_t plen = strlen(what) + 1 + strlen(name);
	json_t *o;

	/* A source's errors start "source NAME: ", as the line does already. */
	if (!strncmp(text, what, strlen(what)) && text[strlen(what)] == ' ' &&
	    !strncmp(text + strlen(what) + 1, name, strlen(name)) && !strncmp(text + plen, ": ", 2))
		text += plen + 2;

	c->total++;
	if (rc < 0 && c->failed++ == 0) {
		c->first_rc = rc;
		snprintf(c->first, sizeof(c->first), "%s %s: %s", what, name, text);
	}
	if (!c->cli->json) {
		printf("%-4s  %s %s: %s\n", word, what, name, text);
		fflush(stdout);
		return;
	}
	o = json_pack("{s:s, s:s, s:s, s:s}", "check", what, "name", name, "result",
	              rc < 0   ? "failed"
	              : rc > 0 ? "skipped"
	                       : "ok",
	              "detail", text);
	if (o)
		json_array_append_new(c->checks, o);
}

/* recipients: at least one (config_load() has checked each one's form). */
static int check_recipients(const struct config *cfg, struct buf *d)
{
	if (cfg->recipients.n == 0)
		return error_set(CF_ERR_CONFIG,
		                 "%s: no [encryption] recipients; backups cannot be encrypted "
		                 "(coffer keygen prints one)",
		                 cfg->file);
	return buf_printf(d, "%zu recipient(s)", cfg->recipients.n);
}

/* identity: with identity_on_host = false, this user must not be able to
 * read it; otherwise, when one is configured, it must load. */
static int check_identity(const struct config *cfg, struct buf *d)
{
	struct age_identities *ids = NULL;
	int rc;

	if (cfg->identity_off_host) {
		if (!cfg->identity)
			return buf_printf(d, "none configured, as identity_on_host = false asks");
		if (access(cfg->identity, R_OK) == 0)
			return error_set(
			    CF_ERR_KEY,
			    "%s can be read by this user (uid %u), but identity_on_host "
			    "= false: keep the identity off the backup host, or make "
			    "it unreadable to this user",
			    cfg->identity, (unsigned)geteuid());
		return buf_printf(d, "%s is not readable by this user (uid %u)", cfg->identity,
		                  (unsigned)geteuid());
	}
	if (!cfg->identity)
		return buf_printf(d, "none configured (restores take --identity)");
	rc = agent_load_identities(cfg, NULL, &ids);
	if (!rc)
		rc = buf_printf(d, "%s: %zu identit%s", cfg->identity, age_identities_count(ids),
		                age_identities_count(ids) == 1 ? "y" : "ies");
	age_identities_free(ids);
	return rc;
}

static int check_named(int argc, char **argv, const char *name)
{
	int named = optind >= argc;

	for (int k = optind; k < argc && !named; k++)
		named = !strcmp(argv[k], name);
	return named;
}

int cmd_check(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	struct check_run c = {.cli = cli};
	struct agent_targets targets = {0};
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	struct buf d;
	int opt, rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1)
		return agent_option_error(opt, argv, CMD_CHECK_USAGE);
	c.checks = json_array();
	if (!c.checks)
		return error_set(CF_ERR_NOMEM, "out of memory");
	buf_init(&d, 4096);
	rc = config_load(cli->config_path, &cfg);
	for (int i = optind; !rc && i < argc; i++)
		if (!config_source_find(cfg, argv[i]))
			rc = error_set(CF_ERR_USAGE, "no source named '%s' in %s", argv[i],
			               cfg->file);
	if (rc)
		goto out;
	buf_printf(&d, "%s: %zu repositor%s, %zu source(s)", cfg->file, cfg->ntargets,
	           cfg->ntargets == 1 ? "y" : "ies", cfg->nsources);
	check_report(&c, "config", "file", 0, &d);

	d.len = 0;
	rc = agent_open_catalog(cfg, &cat);
	if (!rc)
		rc = buf_printf(&d, "%s", cfg->catalog_path);
	check_report(&c, "catalog", "path", rc, &d);

	d.len = 0;
	check_report(&c, "encryption", "recipients", check_recipients(cfg, &d), &d);
	d.len = 0;
	check_report(&c, "encryption", "identity", check_identity(cfg, &d), &d);

	/* Repositories need the catalog (repo_open()); without it each fails. */
	rc = agent_targets_init(&targets, cfg);
	targets.cat = cat;
	for (size_t i = 0; i < cfg->ntargets; i++) {
		struct repo *r = NULL;

		d.len = 0;
		if (!rc && !cat)
			rc = error_set(CF_ERR_CATALOG, "not tried: the catalog did not open");
		if (!rc)
			rc = agent_targets_repo(&targets, i, &r, NULL);
		if (!rc)
			rc = repo_probe(r, &d);
		check_report(&c, "repository", cfg->targets[i].name, rc, &d);
		rc = 0;
	}

	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct source *src = &cfg->sources[i];

		if (!check_named(argc, argv, src->name))
			continue;
		d.len = 0;
		if (src->ops->probe) {
			rc = src->ops->probe(src->state, &d);
		} else {
			buf_printf(&d, "type %s has no connection check yet", src->ops->type);
			rc = 1;
		}
		check_report(&c, "source", src->name, rc, &d);
	}
	rc = 0;
	if (cli->json) {
		json_t *doc = json_pack("{s:O, s:b}", "checks", c.checks, "ok", c.failed == 0);
		char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		if (!text)
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		else
			printf("%s\n", text);
		free(text);
		json_decref(doc);
		fflush(stdout);
	}
	if (!rc && c.failed)
		rc = error_set(c.first_rc, "%zu of %zu check(s) failed; the first: %s", c.failed,
		               c.total, c.first);
out:
	buf_free(&d);
	agent_targets_free(&targets);
	json_decref(c.checks);
	catalog_close(cat);
	config_free(cfg);
	return rc;
}
