/*
 * Tests of the backup record's JSON form: the round trip of a full record,
 * the manifest mode, and the strict decoder's refusals.
 */
#include "catalog/catalog.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID "20261122T091046.123Z-1a2b3c4d"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

static struct catalog_backup *full_record(void)
{
	struct catalog_backup *b = catalog_backup_new();
	struct catalog_object *o;

	assert_non_null(b);
	b->id = xstrdup(ID);
	b->source = xstrdup("pg-main");
	b->kind = xstrdup("command");
	b->host = xstrdup("db1.example");
	b->started_ms = 1795338646123;
	b->finished_ms = 1795338700456;
	b->status = CATALOG_FAILED;
	b->error = xstrdup("dump command exited with status 1");
	b->pid = 4242;
	b->coffer_version = xstrdup("0.1.0");
	b->prefix = xstrdup("pg-main/" ID "/");
	o = catalog_backup_add_object(b);
	assert_non_null(o);
	o->name = xstrdup("stdout");
	o->key = xstrdup("pg-main/" ID "/stdout.zst.age");
	o->format = xstrdup("raw");
	o->compression = xstrdup("zstd");
	o->encryption = xstrdup("age");
	o->raw_bytes = 123456789012ULL;
	o->stored_bytes = 4567;
	o->sha256 = xstrdup(SHA);
	o->meta_json = xstrdup("{\"database\":\"app\",\"role\":\"database\"}");
	o = catalog_backup_add_object(b);
	assert_non_null(o);
	o->name = xstrdup("files");
	o->key = xstrdup("pg-main/" ID "/files.tar.zst.age");
	o->sha256 = xstrdup(SHA);
	assert_int_equal(strv_add(&b->recipients, "age1abc"), 0);
	assert_int_equal(strv_add(&b->recipients, "age1def"), 0);
	assert_int_equal(strv_add(&b->locations, "posix:/srv/repo"), 0);
	b->meta_json = xstrdup("{\"engine\":\"postgres\",\"version\":\"16.4\"}");
	return b;
}

static void assert_str_eq_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_records_equal(const struct catalog_backup *a, const struct catalog_backup *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->source, b->source);
	assert_string_equal(a->kind, b->kind);
	assert_str_eq_null(a->host, b->host);
	assert_int_equal(a->started_ms, b->started_ms);
	assert_int_equal(a->finished_ms, b->finished_ms);
	assert_int_equal(a->status, b->status);
	assert_str_eq_null(a->error, b->error);
	assert_int_equal(a->pid, b->pid);
	assert_str_eq_null(a->coffer_version, b->coffer_version);
	assert_str_eq_null(a->prefix, b->prefix);
	assert_int_equal(a->nobjects, b->nobjects);
	for (size_t i = 0; i < a->nobjects; i++) {
		assert_str_eq_null(a->objects[i].name, b->objects[i].name);
		assert_str_eq_null(a->objects[i].key, b->objects[i].key);
		assert_str_eq_null(a->objects[i].format, b->objects[i].format);
		assert_str_eq_null(a->objects[i].compression, b->objects[i].compression);
		assert_str_eq_null(a->objects[i].encryption, b->objects[i].encryption);
		assert_int_equal(a->objects[i].raw_bytes, b->objects[i].raw_bytes);
		assert_int_equal(a->objects[i].stored_bytes, b->objects[i].stored_bytes);
		assert_str_eq_null(a->objects[i].sha256, b->objects[i].sha256);
		assert_str_eq_null(a->objects[i].meta_json, b->objects[i].meta_json);
	}
	assert_int_equal(a->recipients.n, b->recipients.n);
	for (size_t i = 0; i < a->recipients.n; i++)
		assert_string_equal(a->recipients.v[i], b->recipients.v[i]);
	assert_int_equal(a->locations.n, b->locations.n);
	for (size_t i = 0; i < a->locations.n; i++)
		assert_string_equal(a->locations.v[i], b->locations.v[i]);
	assert_str_eq_null(a->meta_json, b->meta_json);
}

static void test_round_trip(void **state)
{
	struct catalog_backup *b = full_record(), *back;
	char *json, *again;

	(void)state;
	assert_int_equal(catalog_backup_to_json(b, 0, &json), 0);
	/* Compact, sorted keys, times in RFC 3339. */
	assert_null(strchr(json, '\n'));
	assert_int_equal(strncmp(json, "{\"coffer_version\":\"0.1.0\",\"error\":", 34), 0);
	assert_non_null(strstr(json, "\"started\":\"2026-11-22T09:10:46.123Z\""));
	assert_non_null(strstr(json, "\"format\":1"));
	assert_non_null(strstr(json, "\"status\":\"failed\""));
	assert_non_null(strstr(json, "\"pid\":4242"));

	assert_int_equal(catalog_backup_from_json(json, strlen(json), &back), 0);
	assert_records_equal(b, back);
	/* Encoding is deterministic. */
	assert_int_equal(catalog_backup_to_json(back, 0, &again), 0);
	assert_string_equal(json, again);
	free(again);
	catalog_backup_free(back);

	/* Pretty output decodes to the same record. */
	assert_int_equal(catalog_backup_to_json(b, CATALOG_JSON_PRETTY, &again), 0);
	assert_non_null(strstr(again, "\n  \"format\": 1"));
	assert_int_equal(catalog_backup_from_json(again, strlen(again), &back), 0);
	assert_records_equal(b, back);
	catalog_backup_free(back);
	free(again);
	free(json);

	/* A minimal running record: optional fields absent. */
	struct catalog_backup *m = catalog_backup_new();
	m->id = xstrdup(ID);
	m->source = xstrdup("s");
	m->kind = xstrdup("files");
	m->started_ms = 1000;
	assert_int_equal(catalog_backup_to_json(m, 0, &json), 0);
	assert_string_equal(json,
	                    "{\"format\":1,\"id\":\"" ID "\",\"kind\":\"files\",\"locations\":[],"
	                    "\"objects\":[],\"recipients\":[],\"source\":\"s\","
	                    "\"started\":\"1970-01-01T00:00:01.000Z\",\"status\":\"running\"}");
	assert_int_equal(catalog_backup_from_json(json, strlen(json), &back), 0);
	assert_records_equal(m, back);
	catalog_backup_free(back);
	free(json);
	catalog_backup_free(m);
	catalog_backup_free(b);
	catalog_backup_free(NULL);
}

static void test_manifest_mode(void **state)
{
	struct catalog_backup *b = full_record(), *back;
	char *json;

	(void)state;
	assert_int_equal(catalog_backup_to_json(b, CATALOG_JSON_MANIFEST, &json), 0);
	assert_null(strstr(json, "\"status\""));
	assert_null(strstr(json, "\"error\""));
	assert_null(strstr(json, "\"pid\""));
	assert_non_null(strstr(json, "\"finished\":\"2026-11-22T09:11:40.456Z\""));
	/* A manifest decodes as a complete backup. */
	assert_int_equal(catalog_backup_from_json(json, strlen(json), &back), 0);
	assert_int_equal(back->status, CATALOG_COMPLETE);
	assert_null(back->error);
	assert_int_equal(back->pid, 0);
	assert_int_equal(back->nobjects, 2);
	catalog_backup_free(back);
	free(json);

	/* A manifest needs a finish time. */
	b->finished_ms = 0;
	assert_int_equal(catalog_backup_to_json(b, CATALOG_JSON_MANIFEST, &json), CF_ERR_FORMAT);
	assert_null(json);
	catalog_backup_free(b);
}

static void test_encode_errors(void **state)
{
	struct catalog_backup *b = full_record();
	char *json;

	(void)state;
	free(b->meta_json);
	b->meta_json = xstrdup("[1,2]");
	assert_int_equal(catalog_backup_to_json(b, 0, &json), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "meta"));
	free(b->meta_json);
	b->meta_json = NULL;
	free(b->objects[0].meta_json);
	b->objects[0].meta_json = xstrdup("\"app\"");
	assert_int_equal(catalog_backup_to_json(b, 0, &json), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "stdout.zst.age"));
	free(b->objects[0].meta_json);
	b->objects[0].meta_json = NULL;
	free(b->host);
	b->host = xstrdup("bad\xff utf8");
	assert_int_equal(catalog_backup_to_json(b, 0, &json), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "host"));
	free(b->objects[1].sha256);
	b->objects[1].sha256 = NULL;
	free(b->host);
	b->host = NULL;
	/* A failed run may hold an unfinished stream without a digest; a
	 * complete one or a manifest may not. */
	assert_int_equal(catalog_backup_to_json(b, 0, &json), 0);
	assert_non_null(strstr(json, "\"status\":\"failed\""));
	struct catalog_backup *back;
	assert_int_equal(catalog_backup_from_json(json, strlen(json), &back), 0);
	assert_null(back->objects[1].sha256);
	assert_string_equal(back->objects[0].sha256, SHA);
	catalog_backup_free(back);
	free(json);
	assert_int_equal(catalog_backup_to_json(b, CATALOG_JSON_MANIFEST, &json), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "sha256"));
	b->status = CATALOG_COMPLETE;
	assert_int_equal(catalog_backup_to_json(b, 0, &json), CF_ERR_FORMAT);
	b->status = CATALOG_FAILED;
	b->objects[1].sha256 = xstrdup(SHA);
	b->objects[0].raw_bytes = UINT64_MAX;
	assert_int_equal(catalog_backup_to_json(b, 0, &json), CF_ERR_FORMAT);
	assert_non_null(strstr(error_message(), "raw_bytes"));
	catalog_backup_free(b);
}

/* Decodes text and checks it fails with CF_ERR_FORMAT naming what. */
static void expect_bad(const char *text, const char *what)
{
	struct catalog_backup *b = (struct catalog_backup *)1;

	assert_int_equal(catalog_backup_from_json(text, strlen(text), &b), CF_ERR_FORMAT);
	assert_null(b);
	if (!strstr(error_message(), what))
		fail_msg("error '%s' does not mention '%s' (input %s)", error_message(), what,
		         text);
}

#define HEAD "{\"format\":1,\"id\":\"" ID "\",\"source\":\"s\",\"kind\":\"files\","
#define START "\"started\":\"2026-11-22T09:10:46.123Z\","
#define OBJ "{\"key\":\"s/" ID "/x\",\"sha256\":\"" SHA "\"}"

static void test_strict_decode(void **state)
{
	(void)state;
	expect_bad("", "not valid JSON");
	expect_bad("{\"format\":1,", "not valid JSON");
	expect_bad("[]", "not a JSON object");
	expect_bad("{\"id\":\"" ID "\"}", "\"format\" is missing");
	expect_bad("{\"format\":\"1\"}", "\"format\" must be an integer");
	expect_bad("{\"format\":2}", "manifest format 2 is newer than this coffer supports");
	expect_bad("{\"format\":0}", "format");
	/* Missing required fields. */
	expect_bad("{\"format\":1}", "\"id\" is missing");
	expect_bad("{\"format\":1,\"id\":\"" ID "\"," START "\"kind\":\"k\",\"objects\":[]}",
	           "\"source\" is missing");
	expect_bad(HEAD "\"objects\":[]}", "\"started\" is missing");
	expect_bad(HEAD START "\"x\":1}", "\"objects\" is missing");
	expect_bad(HEAD START "\"objects\":[{\"sha256\":\"" SHA "\"}]}", "objects[0].key");
	expect_bad(HEAD START "\"objects\":[" OBJ ",{\"key\":\"k\"}]}", "objects[1].sha256");
	expect_bad(HEAD START "\"status\":\"complete\",\"objects\":[{\"key\":\"k\"}]}",
	           "objects[0].sha256\" is missing");
	expect_bad(HEAD START
	           "\"status\":\"failed\",\"objects\":[{\"key\":\"k\",\"sha256\":\"x\"}]}",
	           "objects[0].sha256\" must be 64");
	/* Wrong types and values. */
	expect_bad("{\"format\":1,\"id\":\"not-an-id\"}", "\"id\" is not a backup id");
	expect_bad("{\"format\":1,\"id\":7}", "\"id\" must be a string");
	expect_bad(HEAD "\"started\":12345,\"objects\":[]}", "\"started\" must be a string");
	expect_bad(HEAD "\"started\":\"yesterday\",\"objects\":[]}",
	           "\"started\" is not an RFC 3339");
	expect_bad(HEAD START "\"objects\":{}}", "\"objects\" must be an array");
	expect_bad(HEAD START "\"objects\":[1]}", "objects[0]\" must be an object");
	expect_bad(HEAD START "\"objects\":[{\"key\":\"k\",\"sha256\":\"abc\"}]}",
	           "objects[0].sha256");
	expect_bad(HEAD START "\"objects\":[{\"key\":\"k\",\"sha256\":\"" SHA
	                      "\",\"raw_bytes\":-1}]}",
	           "objects[0].raw_bytes\" is out of range");
	expect_bad(HEAD START "\"objects\":[{\"key\":\"k\",\"sha256\":\"" SHA
	                      "\",\"stored_bytes\":1.5}]}",
	           "objects[0].stored_bytes\" must be an integer");
	expect_bad(HEAD START "\"objects\":[],\"pid\":-4}", "\"pid\" is out of range");
	expect_bad(HEAD START "\"objects\":[],\"pid\":4294967296}", "\"pid\" is out of range");
	expect_bad(HEAD START "\"objects\":[],\"status\":\"done\"}",
	           "\"status\" has an unknown value");
	expect_bad(HEAD START "\"objects\":[],\"status\":1}", "\"status\" must be a string");
	expect_bad(HEAD START "\"objects\":[],\"host\":[]}", "\"host\" must be a string");
	expect_bad(HEAD START "\"objects\":[],\"recipients\":\"age1\"}",
	           "\"recipients\" must be an array");
	expect_bad(HEAD START "\"objects\":[],\"locations\":[1]}",
	           "\"locations[0]\" must be a string");
	expect_bad(HEAD START "\"objects\":[],\"meta\":[]}", "\"meta\" must be an object");
	expect_bad(HEAD START "\"objects\":[],\"source\":\"t\"}", "not valid JSON"); /* duplicate */
	expect_bad(HEAD START "\"objects\":[],\"finished\":\"2026-11-22T09:10:46\"}",
	           "\"finished\" is not an RFC 3339");
}

static void test_unknown_keys_ignored(void **state)
{
	static const char text[] = HEAD START
	    "\"objects\":[{\"key\":\"k\",\"sha256\":\"" SHA "\",\"future\":{\"a\":[1,2]}}],"
	    "\"added_in_a_later_version\":true,\"another\":{\"nested\":null},"
	    "\"meta\":{\"z\":1,\"a\":{\"b\":\"c\"}}}";
	struct catalog_backup *b;

	(void)state;
	assert_int_equal(catalog_backup_from_json(text, strlen(text), &b), 0);
	assert_string_equal(b->id, ID);
	assert_int_equal(b->status, CATALOG_COMPLETE);
	assert_int_equal(b->nobjects, 1);
	assert_string_equal(b->objects[0].key, "k");
	assert_int_equal(b->started_ms, 1795338646123);
	assert_int_equal(b->finished_ms, 0);
	/* meta comes back compact with sorted keys. */
	assert_string_equal(b->meta_json, "{\"a\":{\"b\":\"c\"},\"z\":1}");
	catalog_backup_free(b);
}

static void test_helpers(void **state)
{
	(void)state;
	assert_string_equal(catalog_status_name(CATALOG_RUNNING), "running");
	assert_string_equal(catalog_status_name(CATALOG_COMPLETE), "complete");
	assert_string_equal(catalog_status_name(CATALOG_FAILED), "failed");
	assert_string_equal(catalog_status_name((enum catalog_status)7), "unknown");
}

/* A partial backup's missing list and count survive the round trip (also
 * in a manifest), and free text that is not UTF-8 (an error, a path) is
 * recorded escaped instead of making the record impossible to write. */
static void test_missing_and_text(void **state)
{
	struct catalog_backup *b = full_record(), *back;
	char *json;

	(void)state;
	free(b->error);
	b->error = xstrdup("command: caf\xe9 \xff broke");
	assert_int_equal(strv_add(&b->missing, "/srv/a: Permission denied"), 0);
	assert_int_equal(strv_add(&b->missing, "/srv/\xff: vanished"), 0);
	b->missing_count = 7;
	assert_int_equal(catalog_backup_to_json(b, 0, &json), 0);
	assert_non_null(strstr(json, "\"error\":\"command: caf\\\\xe9 \\\\xff broke\""));
	assert_non_null(strstr(json, "\"missing_count\":7"));
	assert_int_equal(catalog_backup_from_json(json, strlen(json), &back), 0);
	assert_int_equal(back->missing_count, 7);
	assert_int_equal(back->missing.n, 2);
	assert_string_equal(back->missing.v[0], "/srv/a: Permission denied");
	assert_string_equal(back->missing.v[1], "/srv/\\xff: vanished");
	catalog_backup_free(back);
	free(json);

	b->status = CATALOG_COMPLETE;
	assert_int_equal(catalog_backup_to_json(b, CATALOG_JSON_MANIFEST, &json), 0);
	assert_int_equal(catalog_backup_from_json(json, strlen(json), &back), 0);
	assert_int_equal(back->missing_count, 7);
	catalog_backup_free(back);
	free(json);

	/* A complete backup without missing items has neither field. */
	strv_free(&b->missing);
	b->missing_count = 0;
	assert_int_equal(catalog_backup_to_json(b, 0, &json), 0);
	assert_null(strstr(json, "missing"));
	free(json);
	catalog_backup_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),           cmocka_unit_test(test_manifest_mode),
	    cmocka_unit_test(test_encode_errors),        cmocka_unit_test(test_strict_decode),
	    cmocka_unit_test(test_unknown_keys_ignored), cmocka_unit_test(test_helpers),
	    cmocka_unit_test(test_missing_and_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
