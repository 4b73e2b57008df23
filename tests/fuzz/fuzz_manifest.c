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
 * And as restore takes it, through catalog_manifest_from_json() and
 * catalog_manifest_verify(): an accepted manifest is complete, has no pid,
 * and every object key lies in its own folder (prefix + a valid name, no
 * '/' after the prefix), so no manifest can point a restore or a
 * deletion elsewhere.
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

static void fuzz_manifest_untrusted(const uint8_t *data, size_t size)
{
	struct catalog_backup *m = NULL;
	char *signer = NULL;

	if (catalog_manifest_verify((const char *)data, size, &signer) == 0 && signer &&
	    strncmp(signer, "ed25519:", 8) != 0)
		abort();
	free(signer);
	if (catalog_manifest_from_json((const char *)data, size, NULL, &m) != 0)
		return;
	if (m->status != CATALOG_COMPLETE || m->pid != 0 || m->error || !m->nobjects)
		abort();
	for (size_t i = 0; i < m->nobjects; i++) {
		const char *k = m->objects[i].key;
		size_t pl = strlen(m->prefix);

		if (strncmp(k, m->prefix, pl) || strchr(k + pl, '/') ||
		    !name_valid(m->objects[i].name))
			abort();
	}
	catalog_backup_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog_backup *b = NULL;

	fuzz_manifest_untrusted(data, size);

	if (catalog_backup_from_json((const char *)data, size, &b) == 0) {
		fuzz_manifest_round_trip(b, 0);
		fuzz_manifest_round_trip(b, CATALOG_JSON_MANIFEST);
	}
	catalog_backup_free(b);
	error_clear();
	return 0;
}
