/*
 * fuzz_manifest: catalog_backup_from_json() on arbitrary bytes, as coffer
 * reads a manifest.json from a repository (or a record from its catalog),
 * and the round trip through catalog_backup_to_json().
 *
 * Any input may be refused. Once one decodes, these must hold, else abort():
 *   - it encodes as a catalog record (flags 0): whatever was read can be
 *     stored again;
 *   - for flags 0 and CATALOG_JSON_MANIFEST, when the encoding succeeds,
 *     decoding it succeeds and encoding that gives the same text again, so a
 *     written manifest or record reads back as what was written;
 *   - the pretty (indented) encoding decodes to the same record.
 */
#include "catalog/catalog.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

/* Decodes text and encodes the result with flags; *out is NULL if either
 * step fails. */
static int fuzz_manifest_reencode(const char *text, int flags, char **out)
{
	struct catalog_backup *b = NULL;
	int rc = catalog_backup_from_json(text, strlen(text), &b);

	*out = NULL;
	if (!rc)
		rc = catalog_backup_to_json(b, flags, out);
	catalog_backup_free(b);
	return rc;
}

/* Checks the round trip of b with flags (see the banner). */
static void fuzz_manifest_round_trip(const struct catalog_backup *b, int flags)
{
	char *first = NULL, *pretty = NULL, *second = NULL, *again = NULL;
	int rc = catalog_backup_to_json(b, flags, &first);

	if (rc) {
		if (!(flags & CATALOG_JSON_MANIFEST) && rc != CF_ERR_NOMEM)
			abort(); /* a decoded record must encode */
		return;
	}
	if (fuzz_manifest_reencode(first, flags, &second) != 0 || strcmp(first, second) != 0)
		abort();
	if (catalog_backup_to_json(b, flags | CATALOG_JSON_PRETTY, &pretty) != 0 ||
	    fuzz_manifest_reencode(pretty, flags, &again) != 0 || strcmp(first, again) != 0)
		abort();
	free(first);
	free(second);
	free(pretty);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog_backup *b = NULL;

	if (catalog_backup_from_json((const char *)data, size, &b) == 0) {
		fuzz_manifest_round_trip(b, 0);
		fuzz_manifest_round_trip(b, CATALOG_JSON_MANIFEST);
	}
	catalog_backup_free(b);
	error_clear();
	return 0;
}
