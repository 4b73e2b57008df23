/*
 * fuzz_config: config_load() (agent/config.c over config_ini.c, and the sources'
 * set/check functions) on an arbitrary coffer.conf.
 *
 * config_load() reads a path, so each input is written to
 * /tmp/coffer-fuzz-config.<pid>.conf and removed afterwards. Any return code
 * is fine; a crash, leak or undefined behaviour is not. A configuration that
 * loads must also have what config_load() promises: absolute paths, a
 * repository type when a path is given, a level in range, and sources with
 * unique names (a repeated section is an error), a repository (posix with a
 * path); otherwise abort().
 */
#include "agent/agent.h"
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_config_path[64];

static void fuzz_config_check(const struct config *c)
{
	if (!c->targets[0].type || (!strcmp(c->targets[0].type, "posix") && !c->targets[0].path))
		abort();
	if ((c->targets[0].path && (c->targets[0].path[0] != '/' || !c->targets[0].type)) ||
	    (c->catalog_path && c->catalog_path[0] != '/') ||
	    (c->identity && c->identity[0] != '/'))
		abort();
	if (c->zstd_level < 1 || c->zstd_level > 19 || c->zstd_workers < 0)
		abort();
	for (size_t i = 0; i < c->nsources; i++)
		if (!c->sources[i].name || !c->sources[i].ops ||
		    config_source_find(c, c->sources[i].name) != &c->sources[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	FILE *fp;

	if (!fuzz_config_path[0]) {
		log_set_level(LOG_LEVEL_ERROR);
		snprintf(fuzz_config_path, sizeof(fuzz_config_path),
		         "/tmp/coffer-fuzz-config.%ld.conf", (long)getpid());
	}
	fp = fopen(fuzz_config_path, "wb");
	if (!fp)
		abort(); /* the harness cannot run; not a finding */
	if ((size > 0 && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
		abort();
	if (config_load(fuzz_config_path, &c) == 0) {
		fuzz_config_check(c);
		config_free(c);
	}
	unlink(fuzz_config_path);
	error_clear();
	return 0;
}
