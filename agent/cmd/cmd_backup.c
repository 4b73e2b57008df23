/*
 * cmd_backup: `coffer backup [SOURCE...] [--stdin NAME]`. Runs each source in
 * turn through backup_run; one source failing does not stop the others, and
 * the exit status is that of the first failure.
 */
#include "agent/agent.h"
#include "agent/lock.h"
#include "agent/notify.h"
#include "agent/backup_run.h"
#include "agent/source/source_files.h"

#include <archive_entry.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_BACKUP_USAGE                                                                           \
	"usage: coffer backup [SOURCE...] [--stdin NAME [--allow-empty]] [--wait] | --dry-run "    \
	"SOURCE..."

/* What a dry run would store for one source. */
struct cmd_backup_dry {
	int verbose; /* a line per entry */
	uint64_t entries, files, dirs, symlinks, hardlinks, other, bytes;
};

static int cmd_backup_dry_visit(void *ctx, struct archive_entry *e)
{
	struct cmd_backup_dry *d = ctx;
	const char *type = "other";

	d->entries++;
	if (archive_entry_hardlink(e)) {
		d->hardlinks++;
		type = "hardlink";
	} else if (archive_entry_filetype(e) == AE_IFREG) {
		d->files++;
		d->bytes += (uint64_t)archive_entry_size(e);
		type = "file";
	} else if (archive_entry_filetype(e) == AE_IFDIR) {
		d->dirs++;
		type = "directory";
	} else if (archive_entry_filetype(e) == AE_IFLNK) {
		d->symlinks++;
		type = "symlink";
	} else {
		d->other++;
	}
	if (d->verbose)
		printf("%-9s %12lld %s\n", type,
		       !strcmp(type, "file") ? (long long)archive_entry_size(e) : 0LL,
		       archive_entry_pathname(e));
	return 0;
}

/*
 * backup --dry-run SOURCE...: walks each files source as a backup would and
 * prints what it would store (a summary per source; with --verbose a line
 * per entry; with --json one document). Opens neither the repository nor
 * the catalog. Errors: CF_ERR_USAGE (a source that is not a files source,
 * checked before any walk), those of source_files_dry_run().
 */
static int cmd_backup_dry_run(const struct cli *cli, const struct config *cfg, int n, char **names)
{
	json_t *doc = NULL, *list = NULL;
	int rc = 0;

	if (n == 0)
		return error_set(CF_ERR_USAGE, "--dry-run needs the files sources to walk: "
		                               "coffer backup --dry-run SOURCE...");
	for (int i = 0; !rc && i < n; i++) {
		const struct source *src = config_source_find(cfg, names[i]);

		if (!src)
			rc = error_set(CF_ERR_USAGE, "no source named '%s' in %s", names[i],
			               cfg->file);
		else if (strcmp(src->ops->type, "files"))
			rc = error_set(CF_ERR_USAGE,
			               "--dry-run is for files sources; source %s is of type %s",
			               src->name, src->ops->type);
	}
	if (!rc && cli->json && (!(doc = json_object()) || !(list = json_array())))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (int i = 0; !rc && i < n; i++) {
		struct cmd_backup_dry d;
		uint64_t missing = 0;
		char bytes[32];

		memset(&d, 0, sizeof(d));
		d.verbose = cli->verbose && !cli->json;
		rc = source_files_dry_run(config_source_find(cfg, names[i]), cmd_backup_dry_visit,
		                          &d, &missing);
		if (rc)
			break;
		if (cli->json) {
			json_t *o = json_pack(
			    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "source", names[i],
			    "entries", (json_int_t)d.entries, "files", (json_int_t)d.files,
			    "directories", (json_int_t)d.dirs, "symlinks", (json_int_t)d.symlinks,
			    "hardlinks", (json_int_t)d.hardlinks, "other", (json_int_t)d.other,
			    "bytes", (json_int_t)d.bytes, "unreadable", (json_int_t)missing);

			if (!o || json_array_append_new(list, o))
				rc = error_set(CF_ERR_NOMEM, "out of memory");
			continue;
		}
		fmt_bytes(d.bytes, bytes, sizeof(bytes));
		printf("%s: would store %llu entries (%llu files, %llu directories, %llu symlinks, "
		       "%llu hard links, %llu other), %s of file data",
		       names[i], (unsigned long long)d.entries, (unsigned long long)d.files,
		       (unsigned long long)d.dirs, (unsigned long long)d.symlinks,
		       (unsigned long long)d.hardlinks, (unsigned long long)d.other, bytes);
		if (missing)
			printf("; %llu path(s) could not be read (see above)",
			       (unsigned long long)missing);
		printf("\n");
	}
	if (!rc && cli->json) {
		json_object_set_new(doc, "dry_run", json_true());
		json_object_set(doc, "sources", list);
		rc = agent_print_json(doc);
		doc = NULL;
	}
	json_decref(doc);
	json_decref(list);
	return rc;
}

/* One backup's line, or with --json its record as an element of the
 * {"backups": [...]} document (*printed: records printed so far). */
static void cmd_backup_print(const struct cli *cli, const struct catalog_backup *b, size_t *printed)
{
	char raw[32], stored[32];
	uint64_t r = 0, s = 0;

	if (cli->json) {
		char *json = NULL;

		if (!catalog_backup_to_json(b, 0, &json))
			printf("%s\n    %s", (*printed)++ ? "," : "", json);
		free(json);
		return;
	}
	if (cli->quiet)
		return; /* a summary, not data: README "Global options" */
	for (size_t i = 0; i < b->nobjects; i++) {
		r += b->objects[i].raw_bytes;
		s += b->objects[i].stored_bytes;
	}
	fmt_bytes(r, raw, sizeof(raw));
	fmt_bytes(s, stored, sizeof(stored));
	printf("%s  %s  %s  raw %s  stored %s  %.1fs\n", b->id, b->source, agent_status_label(b),
	       raw, stored, (double)(b->finished_ms - b->started_ms) / 1000.0);
}

static int cmd_backup_recipients(const struct config *cfg, struct age_recipients **out)
{
	struct age_recipients *r = NULL;
	int rc;

	if (cfg->recipients.n == 0)
		return error_set(
		    CF_ERR_CONFIG,
		    "%s: no recipients to encrypt to (expected [encryption] recipients = age1...)",
		    cfg->file);
	rc = age_recipients_new(&r);
	for (size_t i = 0; !rc && i < cfg->recipients.n; i++)
		rc = age_recipients_add(r, cfg->recipients.v[i]);
	if (rc) {
		age_recipients_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/*
 * The targets of one `coffer backup`: those the sources to back up use,
 * opened once. A target that cannot be opened (a posix folder that is gone)
 * is not fatal when there are others: each backup counts it as a lost copy,
 * pending if copies_required is still met.
 */
struct cmd_backup_targets {
	struct repo *repo[CONFIG_MAX_TARGETS]; /* NULL when unused or not opened */
	char *location[CONFIG_MAX_TARGETS];
	char *error[CONFIG_MAX_TARGETS]; /* why it could not be opened */
	/* one source's share, handed to backup_run */
	struct repo *run_repo[CONFIG_MAX_TARGETS];
	const char *run_location[CONFIG_MAX_TARGETS];
	const char *run_error[CONFIG_MAX_TARGETS];
};

static int cmd_backup_open_targets(const struct config *cfg, const char *stdin_name, int n,
                                   char **names, struct catalog *cat,
                                   const struct repo_trust *trust, struct cmd_backup_targets *tg)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < cfg->ntargets; i++) {
		unsigned reaped = 0, cleaned = 0;
		int used = stdin_name || n == 0;

		for (int k = 0; !used && k < n; k++)
			used = config_source_uses(cfg, names[k], i);
		for (size_t k = 0; !used && k < cfg->nsources; k++)
			used = n == 0 && config_source_uses(cfg, cfg->sources[k].name, i);
		if (!used)
			continue;
		rc = agent_target_location(cfg, i, &tg->location[i]);
		if (!rc)
			rc = agent_open_target(cfg, i, cat, trust, &tg->repo[i]);
		if (rc && cfg->ntargets > 1 && rc != CF_ERR_NOMEM) {
			log_warn("repository %s (%s) cannot be opened: %s", cfg->targets[i].name,
			         tg->location[i], error_message());
			tg->error[i] = strdup(error_message());
			rc = tg->error[i] ? 0 : error_set(CF_ERR_NOMEM, "out of memory");
			error_clear();
			continue;
		}
		if (!rc)
			rc = agent_reap_stale_runs(tg->repo[i], &reaped);
		/* An unreachable target among several: its runs are settled by
		 * a later backup, and this one's write there decides its copy. */
		if (rc && cfg->ntargets > 1 && rc != CF_ERR_NOMEM && rc != CF_ERR_CATALOG) {
			log_warn("could not settle the dead runs in %s: %s (a later backup will)",
			         tg->location[i], error_message());
			error_clear();
			rc = 0;
		}
		if (rc)
			break;
		/* Leftovers of writes killed long ago (temporary files, multipart
		 * uploads) cost space; a failure here must not stop the backup. At
		 * most once per orphan_age, so a run does not pay for a listing
		 * of the whole repository. */
		if (repo_housekeep(tg->repo[i], cfg->orphan_age_ms, &cleaned))
			log_warn("could not clean up leftovers in %s: %s", tg->location[i],
			         error_message());
		else if (cleaned)
			log_info("removed %u leftover(s) of interrupted writes older than the "
			         "orphan age in %s",
			         cleaned, tg->location[i]);
		error_clear();
	}
	return rc;
}

/* Points params at the targets of the source named name, in config order. */
static void cmd_backup_targets_for(struct cmd_backup_targets *tg, const struct config *cfg,
                                   const char *name, struct backup_run_params *params)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->ntargets; i++) {
		if (!config_source_uses(cfg, name, i))
			continue;
		tg->run_repo[n] = tg->repo[i];
		tg->run_location[n] = tg->location[i];
		tg->run_error[n] = tg->error[i];
		n++;
	}
	params->repos = tg->run_repo;
	params->locations = tg->run_location;
	params->unavailable = tg->run_error;
	params->nrepos = n;
	params->copies_required = config_copies_required(cfg, name);
}

static void cmd_backup_targets_free(struct cmd_backup_targets *tg, const struct config *cfg)
{
	for (size_t i = 0; cfg && i < cfg->ntargets; i++) {
		repo_close(tg->repo[i]);
		free(tg->location[i]);
		free(tg->error[i]);
	}
}

/* The i-th source to back up: the --stdin one, those named, or every
 * configured one; NULL after the last. */
static const struct source *cmd_backup_nth(const struct config *cfg, const struct source *stdin_src,
                                           int argc, char **argv, size_t i)
{
	if (stdin_src)
		return i == 0 ? stdin_src : NULL;
	if (argc > 0)
		return (int)i < argc ? config_source_find(cfg, argv[i]) : NULL;
	return i < cfg->nsources ? &cfg->sources[i] : NULL;
}

int cmd_backup(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"stdin", required_argument, NULL, 's'},
	                                     {"allow-empty", no_argument, NULL, 'e'},
	                                     {"dry-run", no_argument, NULL, 'n'},
	                                     {"wait", no_argument, NULL, 'w'},
	                                     {NULL, 0, NULL, 0}};
	struct backup_run_params params;
	struct config *cfg = NULL;
	struct cmd_backup_targets tg = {{NULL}, {NULL}, {NULL}, {NULL}, {NULL}, {NULL}};
	struct catalog *cat = NULL;
	struct age_recipients *rcpt = NULL;
	struct sign_key *sign = NULL;
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	struct source stdin_src = {0};
	const char *stdin_name = NULL;
	int rc, first_rc = 0, partial_rc = 0, opt, allow_empty = 0, dry_run = 0, wait = 0;
	size_t printed = 0, nlocks = 0;
	struct lock **locks = NULL;
	const struct source *src;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 's')
			stdin_name = optarg;
		else if (opt == 'e')
			allow_empty = 1;
		else if (opt == 'n')
			dry_run = 1;
		else if (opt == 'w')
			wait = 1;
		else
			return agent_option_error(opt, argv, CMD_BACKUP_USAGE);
	}
	if (allow_empty && !stdin_name)
		return error_set(CF_ERR_USAGE, "--allow-empty goes with --stdin NAME (a source "
		                               "takes allow_empty = true in its section)");
	/* One backup of standard input, or of configured sources: never SRC
	 * silently left out. */
	if (stdin_name && optind < argc)
		return error_set(CF_ERR_USAGE,
		                 "backup reads standard input as source %s (--stdin) or backs up "
		                 "configured sources (%s%s), not both: run them as two commands",
		                 stdin_name, argv[optind], optind + 1 < argc ? ", ..." : "");
	if (dry_run && stdin_name)
		return error_set(CF_ERR_USAGE, "--dry-run walks files sources; it does not go with "
		                               "--stdin");
	rc = config_load(cli->config_path, &cfg);
	if (!rc && dry_run) {
		rc = cmd_backup_dry_run(cli, cfg, argc - optind, argv + optind);
		goto out;
	}
	if (!rc)
		rc = cmd_backup_recipients(cfg, &rcpt);
	if (!rc && !stdin_name && optind >= argc && cfg->nsources == 0)
		rc =
		    error_set(CF_ERR_CONFIG, "%s: no [source NAME] sections to back up", cfg->file);
	for (int i = optind; !rc && i < argc; i++)
		if (!config_source_find(cfg, argv[i]))
			rc = error_set(CF_ERR_USAGE, "no source named '%s' in %s", argv[i],
			               cfg->file);
	if (!rc && stdin_name && config_source_find(cfg, stdin_name) &&
	    config_source_find(cfg, stdin_name)->ops != &source_stdin_ops)
		rc = error_set(CF_ERR_USAGE,
		               "--stdin %s: %s has a [source %s] of type %s; backups of standard "
		               "input need a name of their own",
		               stdin_name, cfg->file, stdin_name,
		               config_source_find(cfg, stdin_name)->ops->type);
	if (!rc && stdin_name && !name_valid(stdin_name))
		rc = error_set(CF_ERR_USAGE,
		               "--stdin %.64s: use up to %d letters, digits, '-', '_' and '.', not "
		               "starting with '.'",
		               stdin_name, NAME_MAX_LEN);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc) {
		char path[4096];

		/* This host's manifest signing key, made at first use. */
		agent_signing_key_path(cfg, path, sizeof(path));
		rc = sign_key_load(path, 1, &sign);
	}
	if (!rc)
		rc = agent_trust_load(cfg, 0, &trust);
	if (!rc)
		rc = cmd_backup_open_targets(cfg, stdin_name, argc - optind, argv + optind, cat,
		                             &trust, &tg);
	if (rc)
		goto out;

	memset(&params, 0, sizeof(params));
	params.cfg = cfg;
	params.catalog = cat;
	params.recipients = rcpt;
	params.sign = sign;
	params.progress = cli->progress;

	if (stdin_name) {
		stdin_src.name = (char *)(uintptr_t)stdin_name;
		stdin_src.ops = &source_stdin_ops;
		stdin_src.allow_empty = allow_empty;
	}
	/* Every source's lock first: a run that overlaps another stops
	 * before it backs up anything (or waits, with --wait). */
	locks = calloc(cfg->nsources + (size_t)(argc - optind) + 1, sizeof(*locks));
	if (!locks) {
		rc = error_set(CF_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (; (src = cmd_backup_nth(cfg, stdin_name ? &stdin_src : NULL, argc - optind,
	                             argv + optind, nlocks)) != NULL;
	     nlocks++) {
		int again = 0;

		/* A source named twice is one source (config_source_find()). */
		for (size_t j = 0; j < nlocks && !again; j++)
			again = cmd_backup_nth(cfg, stdin_name ? &stdin_src : NULL, argc - optind,
			                       argv + optind, j) == src;
		rc = again ? 0 : lock_take(cfg, src->name, wait, &locks[nlocks]);
		if (rc)
			goto out;
	}
	/* --json: one document, its records printed as each backup ends. */
	if (cli->json)
		printf("{\"backups\": [");
	for (size_t i = 0; (src = cmd_backup_nth(cfg, stdin_name ? &stdin_src : NULL, argc - optind,
	                                         argv + optind, i)) != NULL;
	     i++) {
		struct catalog_backup *res = NULL;

		cmd_backup_targets_for(&tg, cfg, src->name, &params);
		rc = backup_run_source(&params, src, src->ops->type, &res);
		if (res && (!rc || res->status == CATALOG_FAILED))
			cmd_backup_print(cli, res, &printed);
		if (rc) {
			log_error("%s", error_message()[0] ? error_message() : cf_strerror(rc));
			if (!first_rc)
				first_rc = rc;
		} else if (res && res->missing_count) {
			/* Complete, but not everything it was asked for: an error line
			 * (shown under --quiet too) and exit status 8. */
			log_error("backup %s of source %s is partial: %llu item(s) could not be "
			          "backed up, the first: %s (see 'coffer show %s'; strict = true "
			          "makes this a failure)",
			          res->id, res->source, (unsigned long long)res->missing_count,
			          res->missing.n ? res->missing.v[0] : "?", res->id);
			if (!partial_rc)
				partial_rc = CF_ERR_PARTIAL;
		}
		/* Once per run: a partial backup is a failure to be told of. */
		notify_run(cfg, src, res,
		           rc                          ? rc
		           : res && res->missing_count ? CF_ERR_PARTIAL
		                                       : 0,
		           rc                          ? error_message()
		           : res && res->missing_count ? "the backup is partial"
		                                       : NULL);
		catalog_backup_free(res);
		if (cancel_requested())
			break;
	}
	if (cli->json)
		printf("\n]}\n");
	rc = first_rc ? first_rc : partial_rc;
	error_clear(); /* each failure was reported above */
out:
	for (size_t i = 0; locks && i < nlocks; i++)
		lock_release(locks[i]);
	free(locks);
	cmd_backup_targets_free(&tg, cfg);
	catalog_close(cat);
	age_recipients_free(rcpt);
	sign_key_free(sign);
	repo_trust_free(&trust);
	config_free(cfg);
	return rc;
}
