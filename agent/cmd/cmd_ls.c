/*
 * cmd_ls: `coffer ls ID [PATH...] [--json] [--identity FILE] [--source S]`,
 * the entries of a files or kubernetes backup's tar object(s), one line per
 * entry like `tar -tv` (or one JSON document), read as a restore reads them
 * (agent/pipeline/restore_tar.h: storage, age, zstd, then only the tar
 * headers) without writing anything. PATH arguments keep the entries at or
 * below them (restore --include's patterns). It does not list backups (that
 * is `coffer list`) nor read raw objects.
 */
#include "agent/agent.h"
#include "agent/pipeline/restore_tar.h"

#include <archive_entry.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <wchar.h>

/* What the listing child hands back to the parent (restore_tar_select's
 * result): the entries printed so far, and which PATH arguments chose one. */
struct ls_result {
	uint64_t entries;
	unsigned char matched[];
};

struct ls_state {
	struct restore_tar_patterns paths; /* n == 0: every entry */
	struct ls_result *res;
	int json;
};

static int ls_pass(const void *ctx, const char *path)
{
	const struct ls_state *s = ctx;

	return s->paths.n == 0 || restore_tar_patterns_pass(&s->paths, path);
}

static const char *ls_type(struct archive_entry *e)
{
	if (archive_entry_hardlink(e))
		return "hardlink";
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		return "file";
	case AE_IFDIR:
		return "directory";
	case AE_IFLNK:
		return "symlink";
	case AE_IFCHR:
		return "character";
	case AE_IFBLK:
		return "block";
	case AE_IFIFO:
		return "fifo";
	default:
		return "other";
	}
}

/* A JSON string of a name, whose bytes need not be UTF-8: a byte that is not
 * part of valid UTF-8 becomes U+FFFD (JSON text cannot hold it). */
static json_t *ls_json_name(const char *name)
{
	json_t *j = json_string(name);
	mbstate_t mb;
	struct buf b;
	size_t len = strlen(name);

	if (j || !name)
		return j;
	memset(&mb, 0, sizeof(mb));
	buf_init(&b, 4 * len + 16);
	for (size_t i = 0; i < len;) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, name + i, len - i, &mb);

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&mb, 0, sizeof(mb));
			buf_append(&b, "\xEF\xBF\xBD", 3);
			i++;
		} else {
			buf_append(&b, name + i, n);
			i += n;
		}
	}
	j = b.data ? json_string((char *)b.data) : NULL;
	buf_free(&b);
	return j;
}

static int ls_print_json(const struct ls_state *s, struct archive_entry *e)
{
	json_t *o = json_object();
	const char *link = archive_entry_hardlink(e);
	char mode[8], mtime[TIME_ISO_LEN + 1];
	char *text;

	if (!link && archive_entry_filetype(e) == AE_IFLNK)
		link = archive_entry_symlink(e);
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(archive_entry_perm(e) & 07777));
	time_format_iso((int64_t)archive_entry_mtime(e) * 1000 +
	                    archive_entry_mtime_nsec(e) / 1000000,
	                mtime, sizeof(mtime));
	if (!o)
		return error_set(CF_ERR_NOMEM, "out of memory");
	json_object_set_new(o, "path", ls_json_name(archive_entry_pathname(e)));
	json_object_set_new(o, "type", json_string(ls_type(e)));
	json_object_set_new(o, "size", json_integer((json_int_t)archive_entry_size(e)));
	json_object_set_new(o, "mode", json_string(mode));
	json_object_set_new(o, "mtime", json_string(mtime));
	json_object_set_new(o, "uid", json_integer((json_int_t)archive_entry_uid(e)));
	json_object_set_new(o, "gid", json_integer((json_int_t)archive_entry_gid(e)));
	if (archive_entry_uname(e))
		json_object_set_new(o, "user", ls_json_name(archive_entry_uname(e)));
	if (archive_entry_gname(e))
		json_object_set_new(o, "group", ls_json_name(archive_entry_gname(e)));
	if (link)
		json_object_set_new(o, "link", ls_json_name(link));
	text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(o);
	if (!text)
		return error_set(CF_ERR_NOMEM, "out of memory");
	printf("%s\n    %s", s->res->entries ? "," : "", text);
	free(text);
	return 0;
}

/* One line as `tar -tv` prints it: mode, owner, size, mtime, name. */
static void ls_print_line(struct archive_entry *e)
{
	const char *user = archive_entry_uname(e), *group = archive_entry_gname(e);
	char owner[256], when[32];
	time_t t = archive_entry_mtime(e);
	struct tm tm;

	if (user && group)
		snprintf(owner, sizeof(owner), "%s/%s", user, group);
	else
		snprintf(owner, sizeof(owner), "%lld/%lld", (long long)archive_entry_uid(e),
		         (long long)archive_entry_gid(e));
	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	else
		snprintf(when, sizeof(when), "%lld", (long long)t);
	/* tar's columns: owner and size share 19 characters. */
	printf("%s%s %*lld %s %s", archive_entry_strmode(e), owner,
	       strlen(owner) < 18 ? (int)(18 - strlen(owner)) : 1, (long long)archive_entry_size(e),
	       when, archive_entry_pathname(e));
	if (archive_entry_hardlink(e))
		printf(" link to %s", archive_entry_hardlink(e));
	else if (archive_entry_filetype(e) == AE_IFLNK)
		printf(" -> %s", archive_entry_symlink(e));
	putchar('\n');
}

static int ls_visit(const void *ctx, struct archive_entry *e)
{
	const struct ls_state *s = ctx;
	int rc = 0;

	if (s->json)
		rc = ls_print_json(s, e);
	else
		ls_print_line(e);
	if (!rc)
		s->res->entries++;
	return rc;
}

/* Every PATH must be in the backup, as `tar -t NAME` says. Errors:
 * CF_ERR_NOTFOUND naming the first that is not. */
static int ls_check_paths(const struct ls_state *s, const char *id)
{
	for (size_t i = 0; i < s->paths.n; i++)
		if (!s->paths.matched[i])
			return error_set(CF_ERR_NOTFOUND,
			                 "%s is not in backup %s (paths are stored without their "
			                 "leading '/'; 'coffer ls %s' lists them all)",
			                 s->paths.v[i], id, id);
	return 0;
}

/* Lists every tar object of b; with --json inside one document. */
static int ls_backup(struct storage *st, const struct catalog_backup *b,
                     const struct age_identities *ids, struct ls_state *s, int progress)
{
	struct restore_tar_select sel = {ls_pass, s, s->res, sizeof(*s->res) + s->paths.n, NULL};
	int rc = 0;

	if (s->json) {
		json_t *id = json_string(b->id), *source = json_string(b->source);
		char *a = json_dumps(id, JSON_ENCODE_ANY), *c = json_dumps(source, JSON_ENCODE_ANY);

		if (a && c)
			printf("{\"id\": %s, \"source\": %s, \"entries\": [", a, c);
		else
			rc = error_set(CF_ERR_NOMEM, "out of memory");
		free(a);
		free(c);
		json_decref(id);
		json_decref(source);
	}
	for (size_t i = 0; !rc && i < b->nobjects; i++)
		if (!strcmp(b->objects[i].format, "tar"))
			rc = restore_tar_list(st, &b->objects[i], ids, progress, &sel, ls_visit);
	if (!rc && s->json)
		printf("\n]}\n");
	if (!rc)
		rc = ls_check_paths(s, b->id);
	return rc;
}

#define LS_USAGE                                                                                   \
	"usage: coffer ls ID [PATH...] [--json] [--identity FILE] [--source S] [--trust-unsigned]"

int cmd_ls(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
	                                     {"identity", required_argument, NULL, 'i'},
	                                     {"source", required_argument, NULL, 'S'},
	                                     {"trust-unsigned", no_argument, NULL, 'T'},
	                                     {NULL, 0, NULL, 0}};
	const char *identity = NULL, *source = NULL;
	struct ls_state s;
	struct repo_trust trust = {{NULL, 0, 0}, 0};
	struct repo *repo = NULL;
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	struct catalog_backup *b = NULL;
	struct age_identities *ids = NULL;
	int opt, rc, trust_unsigned = 0, has_tar = 0;

	memset(&s, 0, sizeof(s));
	s.json = cli->json;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":i:", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			s.json = 1;
			break;
		case 'i':
			identity = optarg;
			break;
		case 'S':
			source = optarg;
			break;
		case 'T':
			trust_unsigned = 1;
			break;
		default:
			return agent_option_error(opt, argv, LS_USAGE);
		}
	}
	if (optind >= argc)
		return error_set(CF_ERR_USAGE, LS_USAGE);
	s.paths.v = argv + optind + 1;
	s.paths.n = (size_t)(argc - optind - 1);
	s.res = calloc(1, sizeof(*s.res) + s.paths.n);
	if (!s.res)
		return error_set(CF_ERR_NOMEM, "out of memory");
	s.paths.matched = s.res->matched;
	rc = config_load(cli->config_path, &cfg);
	if (!rc)
		rc = agent_trust_load(cfg, trust_unsigned, &trust);
	if (!rc)
		rc = agent_open_catalog(cfg, &cat);
	if (!rc)
		rc = agent_open_repo(cfg, cat, &trust, &repo);
	if (!rc)
		rc = agent_find_backup(cfg, repo, argv[optind], source, &b);
	for (size_t i = 0; !rc && i < b->nobjects; i++)
		has_tar |= !strcmp(b->objects[i].format, "tar");
	if (!rc && !has_tar)
		rc = error_set(CF_ERR_USAGE,
		               "coffer ls lists tar backups (files and kubernetes sources); backup "
		               "%s is a %s backup (see 'coffer show %s', or restore it)",
		               b->id, b->kind, b->id);
	if (!rc)
		rc = agent_load_identities(cfg, identity, &ids);
	if (!rc)
		rc = ls_backup(repo_storage(repo), b, ids, &s, cli->progress);
	age_identities_free(ids);
	catalog_backup_free(b);
	repo_close(repo);
	catalog_close(cat);
	repo_trust_free(&trust);
	config_free(cfg);
	free(s.res);
	return rc;
}
