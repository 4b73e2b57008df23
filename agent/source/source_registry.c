/*
 * source_registry: every source type coffer knows, by its "type" name.
 * Adding an engine is its own file(s) plus one line here.
 */
#include "agent/source/source.h"

#include <stdio.h>
#include <string.h>

static const struct source_ops *const source_registry_all[] = {
    &source_files_ops,  &source_command_ops, &source_postgres_ops,
    &source_pgphys_ops, &source_mysql_ops,   &source_redis_ops,
    &source_sqlite_ops, &source_mongodb_ops, &source_kubernetes_ops,
};

const struct source_ops *source_registry_find(const char *type)
{
	for (size_t i = 0; i < sizeof(source_registry_all) / sizeof(source_registry_all[0]); i++)
		if (!strcmp(source_registry_all[i]->type, type))
			return source_registry_all[i];
	return NULL;
}

const char *source_registry_types(void)
{
	return "files, command, postgres, postgres-physical, mysql, redis, sqlite, mongodb, "
	       "kubernetes";
}

const char *source_registry_db_types(void)
{
	static char list[256];
	const size_t n = sizeof(source_registry_all) / sizeof(source_registry_all[0]);
	size_t len = 0, found = 0, total = 0;

	for (size_t i = 0; i < n; i++)
		total += (source_registry_all[i]->traits & SOURCE_TRAIT_DATABASE) != 0;
	for (size_t i = 0; i < n && len < sizeof(list); i++) {
		if (!(source_registry_all[i]->traits & SOURCE_TRAIT_DATABASE))
			continue;
		found++;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
		                        found == 1       ? ""
		                        : found == total ? " and "
		                                         : ", ",
		                        source_registry_all[i]->type);
	}
	return list;
}
