/*
 * cmd_replicate: `coffer replicate [ID... | --all] [--to REPOSITORY]`: makes
 * the copies a backup lacks (pending after a target failed during the
 * backup, or missing because the target was added later) from a target that
 * holds it.
 *
 * Each object is streamed from the first repository (config order) holding
 * the backup into the one lacking it, its SHA-256 checked against the record
 * before the write is committed (a copy that does not match is aborted and
 * nothing is left); the manifest goes last, then the record gains the
 * location and loses the pending entry. Objects are written with
 * STORAGE_WRITE_SAME_OK, so a rerun after an interruption finds the ones
 * already copied identical and goes on. Memory is bounded as for a backup:
 * reads come in chunks of at most 1 MiB, the writer keeps its part buffers.
 *
 * --all also copies the WAL archive of each postgres-physical source into
 * each repository it uses that lacks files of it: those from the start of
 * the oldest base backup that repository holds onward, and every history
 * file (older WAL is what that repository's prune removes; with no base
 * backup there, none is copied). wal_copy_missing() copies the stored
 * object whole under its key, which holds the plaintext's SHA-256 that
 * wal-fetch checks.
 */
#include "agent/agent.h"
#include "agent/source/source_pgphys.h"
#include "agent/wal.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD_REPLICATE_USAGE "usage: coffer replicate (ID... | --all) [--to REPOSITORY]"

struct replicate {
	const struct config *cfg;
	struct catalog *cat;
	struct repo **repos; /* every target, config order */
	char **locs;         /* their locations */
	const struct sign_key *sign;
	const char *to;  /* --to, or NULL: every target */
	struct strv ids; /* --all: the backups lacking a copy */
	int all;         /* --all: copies prune removed are not made again */
	unsigned copies; /* copies made */
	uint64_t bytes;  /* bytes copied */
	unsigned wal;    /* WAL files copied */
};

/* One object on its way: hashed as it is written. */
struct replicate_obj {
	struct storage_write *w;
	struct filter *hash;
};

static int replicate_chunk(void *ctx, const uint8_t *data, size_t len)
{
	struct replicate_obj *o = ctx;
	int rc = filter_write(o->hash, data, len);

	return rc ? rc : storage_write_data(o->w, data, len);
}

/* Whether the finished hash filter saw the recorded bytes of obj (read
 * from where). Errors: CF_ERR_INTEGRITY saying what was found, then what. */
static int replicate_check(struct filter *hash, const struct catalog_object *obj, const char *where,
                           const char *what)
{
	char hex[HASH_SHA256_HEX_LEN + 1];
	uint64_t bytes = 0;

	hash_filter_result(hash, hex, &bytes);
	if (bytes == obj->stored_bytes && obj->sha256 && !strcmp(hex, obj->sha256))
		return 0;
	return error_set(CF_ERR_INTEGRITY,
	                 "%s in %s: %llu bytes with SHA-256 %s, not the recorded %llu bytes "
	                 "with %s%s",
	                 obj->key, where, (unsigned long long)bytes, hex,
	                 (unsigned long long)obj->stored_bytes, obj->sha256 ? obj->sha256 : "?",
	                 what);
}

/* Copies one object from src to dst, committed only if its SHA-256 and
 * size are the record's. */
static int replicate_object(struct repo *src, struct repo *dst, const struct catalog_object *obj)
{
	struct replicate_obj o = {NULL, NULL};
	struct filter *null = NULL;
	int rc;

	rc = storage_write_new_ex(repo_storage(dst), obj->key, STORAGE_WRITE_SAME_OK, &o.w);
	if (!rc)
		rc = hash_filter_new(&o.hash);
	if (!rc)
		rc = filter_null_new(&null);
	if (!rc) {
		o.hash->next = null;
		null = NULL;
		rc = storage_read(repo_storage(src), obj->key, 0, UINT64_MAX, replicate_chunk, &o);
	}
	if (!rc)
		rc = filter_finish(o.hash);
	if (!rc)
		rc = replicate_check(o.hash, obj, repo_location(src), "; not copied");
	if (!rc) {
		rc = storage_write_commit(o.w);
		o.w = NULL;
		if (rc == STORAGE_WRITE_SAME)
			rc = 0;
	}
	if (o.w)
		storage_write_abort(o.w);
	filter_chain_free(o.hash);
	filter_chain_free(null);
	return rc;
}

static int replicate_hash_cb(void *ctx, const uint8_t *data, size_t len)
{
	return filter_write(ctx, data, len);
}

/*
 * copy = server: the service copies the object (storage_copy()), then it is
 * read back and must be the recorded bytes, as a streamed copy must. One
 * already there (an interrupted run) is checked the same way. Errors:
 * CF_ERR_UNSUPPORTED when src and dst cannot copy between them.
 */
static int replicate_object_server(struct repo *src, struct repo *dst,
                                   const struct catalog_object *obj)
{
	struct filter *hash = NULL, *null = NULL;
	int rc = storage_copy(repo_storage(dst), repo_storage(src), obj->key, obj->stored_bytes);

	if (rc == CF_ERR_EXISTS) {
		error_clear();
		rc = 0;
	}
	if (!rc && !(rc = hash_filter_new(&hash)) && !(rc = filter_null_new(&null))) {
		hash->next = null;
		null = NULL;
		rc = storage_read(repo_storage(dst), obj->key, 0, UINT64_MAX, replicate_hash_cb,
		                  hash);
	}
	if (!rc)
		rc = filter_finish(hash);
	if (!rc)
		rc = replicate_check(hash, obj, repo_location(dst), " after a server-side copy");
	filter_chain_free(hash);
	filter_chain_free(null);
	return rc;
}

/* One object of a copy: inside the service when target t asks for it and
 * can, else streamed through this host. */
static int replicate_one(struct replicate *r, size_t from, size_t t,
                         const struct catalog_object *obj)
{
	if (r->cfg->targets[t].copy_server) {
		int rc = replicate_object_server(r->repos[from], r->repos[t], obj);

		if (!rc)
			log_info("copied %s inside the service (copy = server) and read it back",
			         obj->key);
		if (rc != CF_ERR_UNSUPPORTED)
			return rc;
		log_info("%s: %s; streaming it instead", r->cfg->targets[t].name, error_message());
		error_clear();
	}
	return replicate_object(r->repos[from], r->repos[t], obj);
}

/* Makes backup b's copy in target t from the first target holding it. */
static int replicate_copy(struct replicate *r, struct catalog_backup *b, size_t t)
{
	size_t from = r->cfg->ntargets;
	unsigned aborted = 0;
	int rc = 0;

	for (size_t i = 0; i < r->cfg->ntargets && from == r->cfg->ntargets; i++)
		if (i != t && strv_has(&b->locations, r->locs[i]))
			from = i;
	if (from == r->cfg->ntargets)
		return error_set(
		    CF_ERR_NOTFOUND,
		    "backup %s: no configured repository holds a copy to make one from", b->id);
	/* What the backup's own write there left when it failed (an upload
	 * its gateway died in the middle of) goes first. */
	rc = repo_abort_unfinished(r->repos[t], b->prefix, &aborted);
	if (!rc && aborted)
		log_info("%s: removed %u unfinished write(s) of an earlier attempt in %s", b->id,
		         aborted, r->cfg->targets[t].name);
	for (size_t k = 0; !rc && k < b->nobjects; k++) {
		rc = replicate_one(r, from, t, &b->objects[k]);
		if (!rc)
			r->bytes += b->objects[k].stored_bytes;
	}
	if (!rc)
		rc = cancel_check();
	if (!rc) {
		rc = repo_write_manifest(r->repos[t], b, r->sign);
		/* A manifest already there from an earlier, interrupted run. */
		if (rc == CF_ERR_EXISTS) {
			error_clear();
			rc = 0;
		}
	}
	if (!rc)
		rc = strv_add_new(&b->locations, r->locs[t]);
	if (!rc) {
		strv_remove(&b->pruned, r->locs[t]);
		catalog_backup_drop_pending(b, r->locs[t]);
		rc = catalog_backup_put(r->cat, b);
	}
	if (!rc) {
		r->copies++;
		log_info("copied %s from %s to %s", b->id, r->cfg->targets[from].name,
		         r->cfg->targets[t].name);
	}
	return rc;
}

/* 1 if prune is deleting b's copy in target t (then no copy is made there
 * until it is finished), or (with --all) has deleted it: the target's
 * retention removed it, and --all does not undo that. */
static int replicate_pruned(const struct replicate *r, const struct catalog_backup *b, size_t t)
{
	if (strv_has(&b->deleting, r->locs[t])) {
		log_warn("backup %s: prune is deleting its copy in %s; not copied there", b->id,
		         r->cfg->targets[t].name);
		return 1;
	}
	return r->all && strv_has(&b->pruned, r->locs[t]);
}

/* The targets backup id lacks (only --to's, if given), copied one by one. */
static int replicate_backup(struct replicate *r, const char *id)
{
	char full[BACKUP_ID_LEN + 1];
	struct catalog_backup *b = NULL;
	/* The catalog says which copies exist (a manifest is one target's). */
	int rc = agent_resolve_id(r->cfg, r->cat, NULL, id, NULL, full);

	if (!rc)
		rc = catalog_backup_get(r->cat, full, &b);
	if (rc == CF_ERR_NOTFOUND)
		rc = error_set(rc,
		               "backup %s is not in the catalog ('coffer catalog rebuild' records "
		               "the backups of every repository)",
		               id);

	if (!rc && b->status != CATALOG_COMPLETE)
		rc = error_set(CF_ERR_USAGE, "backup %s is %s, not complete: nothing to replicate",
		               b->id, catalog_status_name(b->status));
	for (size_t t = 0; !rc && t < r->cfg->ntargets; t++) {
		if (r->to ? strcmp(r->cfg->targets[t].name, r->to) != 0
		          : !config_source_uses(r->cfg, b->source, t))
			continue;
		if (strv_has(&b->locations, r->locs[t]) || replicate_pruned(r, b, t))
			continue;
		rc = replicate_copy(r, b, t);
	}
	catalog_backup_free(b);
	return rc;
}

/* --all: complete records lacking a target (pending, or made before it
 * was configured). */
static int replicate_collect(void *ctx, const struct catalog_backup *b)
{
	struct replicate *r = ctx;
	int at_one = 0, lacks = 0;

	if (b->status != CATALOG_COMPLETE)
		return 0;
	for (size_t t = 0; t < r->cfg->ntargets; t++) {
		int has = strv_has(&b->locations, r->locs[t]);

		at_one |= has;
		/* --all keeps to the repositories the source uses, and does not
		 * make again what prune removed */
		if (!has && config_source_uses(r->cfg, b->source, t) &&
		    !strv_has(&b->pruned, r->locs[t]) && !strv_has(&b->deleting, r->locs[t]) &&
		    (!r->to || !strcmp(r->cfg->targets[t].name, r->to)))
			lacks = 1;
	}
	return at_one && lacks ? strv_add(&r->ids, b->id) : 0;
}

/* The oldest start segment of a base backup of a source held in one
 * repository (catalog_backup_list() callback). */
struct replicate_base {
	const char *loc;
	uint64_t segno, seg_size;
	int have;
};

static int replicate_base_cb(void *ctx, const struct catalog_backup *b)
{
	struct replicate_base *x = ctx;
	uint64_t segno, seg_size;
	uint32_t tli;

	if (b->status != CATALOG_COMPLETE || strcmp(b->kind, "postgres-physical") ||
	    !repo_record_at(b, x->loc))
		return 0;
	if (wal_base_start(b, &segno, &tli, &seg_size)) {
		log_warn("%s", error_message());
		error_clear();
		return 0;
	}
	if (!x->have || segno < x->segno) {
		x->segno = segno;
		x->seg_size = seg_size;
		x->have = 1;
	}
	return 0;
}

static int replicate_wal_name_cb(void *ctx, const struct wal_entry *e)
{
	return strv_add(ctx, e->w.name);
}

static int replicate_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of source's WAL files in repository r, sorted. */
static int replicate_wal_names(struct repo *r, const char *source, struct strv *out)
{
	int rc = wal_list(r, source, replicate_wal_name_cb, out);

	if (!rc && out->n)
		qsort(out->v, out->n, sizeof(*out->v), replicate_strcmp);
	return rc;
}

/*
 * --all: copies into target t the WAL files of source that another
 * repository holds and t lacks, from the start of the oldest base backup t
 * holds onward (history files always). A file that cannot be copied is
 * warned about and counted; the first such failure is returned after the
 * others were tried (CF_ERR_STORAGE).
 */
static int replicate_wal(struct replicate *r, const char *source, size_t t)
{
	struct replicate_base base = {r->locs[t], 0, 0, 0};
	struct wal_archive a;
	struct strv have = {0}, others = {0};
	const char *tname = r->cfg->targets[t].name;
	unsigned copied = 0, failed = 0;
	int rc = catalog_backup_list(r->cat, source, replicate_base_cb, &base);

	if (!rc && !base.have) {
		log_info("source %s has no base backup in %s: its WAL is not copied there", source,
		         tname);
		return 0;
	}
	if (!rc)
		rc = replicate_wal_names(r->repos[t], source, &have);
	for (size_t u = 0; !rc && u < r->cfg->ntargets; u++) {
		if (u == t || !config_source_uses(r->cfg, source, u))
			continue;
		if (wal_list(r->repos[u], source, replicate_wal_name_cb, &others)) {
			log_warn("the WAL of source %s in %s cannot be listed: %s", source,
			         r->cfg->targets[u].name, error_message());
			error_clear();
		}
	}
	if (!rc && others.n)
		qsort(others.v, others.n, sizeof(*others.v), replicate_strcmp);
	memset(&a, 0, sizeof(a));
	a.source = source;
	a.repos = r->repos;
	a.nrepos = r->cfg->ntargets;
	for (size_t i = 0, j = 0; !rc && i < others.n; i++) {
		struct wal_name w;
		unsigned long long still = 0;
		int c = 1;

		if (i > 0 && !strcmp(others.v[i], others.v[i - 1]))
			continue;
		while (j < have.n && (c = strcmp(have.v[j], others.v[i])) < 0)
			j++;
		if (!c || wal_name_parse(others.v[i], &w)) {
			error_clear();
			continue;
		}
		if (w.kind != WAL_HISTORY && wal_segno(&w, base.seg_size) < base.segno)
			continue;
		rc = wal_copy_missing(&a, others.v[i], 1ULL << t, &still);
		if (!rc && (still & (1ULL << t))) {
			failed++;
		} else if (!rc) {
			const char *names[1] = {tname};

			copied++;
			rc = wal_pending_change(r->cat, source, others.v[i], names, 1, 0);
		}
	}
	if (!rc && copied)
		log_info("copied %u WAL file(s) of source %s to %s", copied, source, tname);
	r->wal += copied;
	if (!rc && failed)
		rc = error_set(CF_ERR_STORAGE,
		               "%u WAL file(s) of source %s could not be copied to %s (see the "
		               "warnings above; run coffer replicate --all again)",
		               failed, source, tname);
	strv_free(&have);
	strv_free(&others);
	return rc;
}

int cmd_replicate(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
	                                     {"to", required_argument, NULL, 't'},
	                                     {NULL, 0, NULL, 0}};
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	struct sign_key *sign = NULL;
	struct config *cfg = NULL;
	struct replicate r;
	int opt, rc, all = 0, failed = 0;

	memset(&r, 0, sizeof(r));
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == 'a')
			all = r.all = 1;
		else if (opt == 't')
			r.to = optarg;
		else
			return agent_option_error(opt, argv, CMD_REPLICATE_USAGE);
	}
	if (all == (optind < argc))
		return error_set(CF_ERR_USAGE, "name the backups or give --all (%s)",
		                 CMD_REPLICATE_USAGE);
	rc = config_load(cli->config_path, &cfg);
	r.cfg = cfg;
	if (!rc && cfg->ntargets < 2)
		rc = error_set(CF_ERR_USAGE,
		               "%s has one repository; replicate copies backups between the "
		               "[repository] and [repository NAME] sections",
		               cfg->file);
	for (size_t t = 0; !rc && r.to && t <= cfg->ntargets; t++)
		if (t == cfg->ntargets)
			rc = error_set(CF_ERR_USAGE, "--to %s: no [repository %s] in %s", r.to,
			               r.to, cfg->file);
		else if (!strcmp(cfg->targets[t].name, r.to))
			break;
	if (!rc)
		rc = agent_open_catalog(cfg, &r.cat);
	if (!rc) {
		char path[4096];

		agent_signing_key_path(cfg, path, sizeof(path));
		rc = sign_key_load(path, 1, &sign);
		r.sign = sign;
	}
	if (!rc)
		rc = agent_trust_load(cfg, 0, &trust);
	if (!rc && (!(r.repos = calloc(cfg->ntargets, sizeof(*r.repos))) ||
	            !(r.locs = calloc(cfg->ntargets, sizeof(*r.locs)))))
		rc = error_set(CF_ERR_NOMEM, "out of memory");
	for (size_t t = 0; !rc && t < cfg->ntargets; t++) {
		rc = agent_open_target(cfg, t, r.cat, &trust, &r.repos[t]);
		if (!rc && !(r.locs[t] = strdup(repo_location(r.repos[t]))))
			rc = error_set(CF_ERR_NOMEM, "out of memory");
	}
	if (!rc && all)
		rc = catalog_backup_list(r.cat, NULL, replicate_collect, &r);
	/* One backup failing does not stop the others; the first failure is
	 * the command's. */
	for (size_t i = 0; !rc && i < (all ? r.ids.n : (size_t)(argc - optind)); i++) {
		int rc2 = replicate_backup(&r, all ? r.ids.v[i] : argv[optind + (int)i]);

		if (rc2 == CF_ERR_INTERRUPTED) {
			rc = rc2;
			break;
		}
		if (rc2) {
			log_error("%s", error_message());
			if (!failed)
				failed = rc2;
		}
	}
	/* Then, with --all, the WAL of each postgres-physical source (after the
	 * base backups, which decide where it starts). */
	for (size_t s = 0; !rc && all && s < cfg->nsources; s++) {
		const char *src = cfg->sources[s].name;

		if (!source_pgphys_wal(&cfg->sources[s]))
			continue;
		for (size_t t = 0; !rc && t < cfg->ntargets; t++) {
			int rc2;

			if (r.to ? strcmp(cfg->targets[t].name, r.to) != 0
			         : !config_source_uses(cfg, src, t))
				continue;
			rc2 = replicate_wal(&r, src, t);
			if (rc2 == CF_ERR_INTERRUPTED || rc2 == CF_ERR_NOMEM ||
			    rc2 == CF_ERR_CATALOG) {
				rc = rc2;
			} else if (rc2) {
				log_error("%s", error_message());
				if (!failed)
					failed = rc2;
			}
		}
	}
	if (!rc && cli->json)
		rc = agent_print_json(json_pack("{s:I, s:I, s:I, s:b}", "copied",
		                                (json_int_t)r.copies, "bytes", (json_int_t)r.bytes,
		                                "wal_copied", (json_int_t)r.wal, "ok", !failed));
	else if (!rc && !cli->quiet) {
		printf("made %u cop%s (%llu bytes)", r.copies, r.copies == 1 ? "y" : "ies",
		       (unsigned long long)r.bytes);
		if (r.wal)
			printf("; copied %u WAL file(s)", r.wal);
		printf("%s\n", failed ? "; some failed, see above" : "");
	}
	if (!rc && failed) {
		rc = failed;
		error_clear(); /* each failure was reported above */
	}
	for (size_t t = 0; r.repos && t < cfg->ntargets; t++) {
		repo_close(r.repos[t]);
		if (r.locs)
			free(r.locs[t]);
	}
	free(r.repos);
	free(r.locs);
	strv_free(&r.ids);
	catalog_close(r.cat);
	sign_key_free(sign);
	repo_trust_free(&trust);
	config_free(cfg);
	return rc;
}
