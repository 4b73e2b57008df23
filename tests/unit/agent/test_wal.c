/* Tests agent/wal.c's pure parts: WAL file names, segment numbers, LSNs,
 * and the catalog's ranges of archived segments. Expected names and numbers
 * are PostgreSQL's (XLogFileName: timeline, segno / segments-per-id,
 * segno % segments-per-id, 8 upper-case hex digits each), worked out by hand. */
#include "agent/wal.h"
#include "catalog/catalog.h"
#include "common/common.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MIB (1024ULL * 1024)

static void test_names(void **state)
{
	struct wal_name w;

	(void)state;
	assert_int_equal(wal_name_parse("000000010000000A000000FF", &w), 0);
	assert_int_equal(w.kind, WAL_SEGMENT);
	assert_int_equal(w.tli, 1);
	assert_int_equal(w.log, 10);
	assert_int_equal(w.seg, 255);
	assert_int_equal(wal_name_parse("00000002.history", &w), 0);
	assert_int_equal(w.kind, WAL_HISTORY);
	assert_int_equal(w.tli, 2);
	assert_int_equal(wal_name_parse("000000010000000000000003.partial", &w), 0);
	assert_int_equal(w.kind, WAL_PARTIAL);
	assert_int_equal(wal_name_parse("000000010000000000000002.00000028.backup", &w), 0);
	assert_int_equal(w.kind, WAL_BACKUP);
	/* Lower case, short, long, paths, other suffixes: not WAL names. */
	const char *bad[] = {"000000010000000a000000ff",
	                     "00000001000000000000000",
	                     "0000000100000000000000030",
	                     "../000000010000000000000003",
	                     "000000010000000000000003.tmp",
	                     "00000002.History",
	                     "",
	                     "000000010000000000000002.0000002.backup"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(wal_name_parse(bad[i], &w), 0);
		error_clear();
	}
}

static void test_segno(void **state)
{
	struct wal_name w;
	char name[25];

	(void)state;
	/* 16 MiB: 256 segments per "log" id. */
	assert_int_equal(wal_name_parse("000000010000000A000000FF", &w), 0);
	assert_int_equal(wal_segno(&w, 16 * MIB), 10 * 256 + 255);
	wal_segname(1, 10 * 256 + 256, 16 * MIB, name);
	assert_string_equal(name, "000000010000000B00000000");
	/* 1 GiB segments: 4 per id. */
	wal_segname(3, 9, 1024 * MIB, name);
	assert_string_equal(name, "000000030000000200000001");
	assert_int_equal(wal_name_parse(name, &w), 0);
	assert_int_equal(wal_segno(&w, 1024 * MIB), 9);
}

static void test_lsn(void **state)
{
	uint64_t lsn = 0;
	char out[24];

	(void)state;
	assert_int_equal(wal_lsn_parse("16/B374D848", &lsn), 0);
	assert_int_equal(lsn, 0x16B374D848ULL);
	wal_lsn_format(lsn, out);
	assert_string_equal(out, "16/B374D848");
	wal_lsn_format(0x3000060, out);
	assert_string_equal(out, "0/3000060");
	assert_int_not_equal(wal_lsn_parse("16B374D848", &lsn), 0);
	assert_int_not_equal(wal_lsn_parse("1/", &lsn), 0);
	assert_int_not_equal(wal_lsn_parse("1/2x", &lsn), 0);
	assert_int_not_equal(wal_lsn_parse("100000000/0", &lsn), 0);
	error_clear();
}

/* The ranges of timeline tli in the catalog's state, as "[[a,b],...]". */
static char *ranges(struct catalog *c, const char *tli, char **newest)
{
	char *text = NULL, *out;
	json_t *doc;

	assert_int_equal(wal_state(c, "pg", &text), 0);
	assert_non_null(text);
	doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	out = json_dumps(json_object_get(json_object_get(doc, "timelines"), tli), JSON_COMPACT);
	if (newest)
		*newest = strdup(json_string_value(json_object_get(doc, "newest")));
	json_decref(doc);
	free(text);
	return out;
}

static void note(struct catalog *c, const char *name, int64_t ms)
{
	struct wal_name w;

	assert_int_equal(wal_name_parse(name, &w), 0);
	assert_int_equal(wal_note(c, "pg", &w, 16 * MIB, ms), 0);
}

static void test_ranges(void **state)
{
	char dir[] = COFFER_TEST_TMP "/test_wal.XXXXXX", *r, *newest = NULL, *none = NULL;
	struct catalog *c = NULL;

	(void)state;
	assert_int_equal(fs_mkdir_p(COFFER_TEST_TMP, 0755), 0);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(catalog_open(dir, &c), 0);
	assert_int_equal(wal_state(c, "pg", &none), 0);
	assert_null(none);

	note(c, "000000010000000000000001", 1000);
	note(c, "000000010000000000000002", 2000);
	note(c, "000000010000000000000003", 3000);
	note(c, "000000010000000000000005", 5000);
	r = ranges(c, "00000001", &newest);
	assert_string_equal(r, "[[1,3],[5,5]]");
	assert_string_equal(newest, "000000010000000000000005");
	free(r);
	free(newest);
	/* The hole filled: one range. A repeated push changes nothing. */
	note(c, "000000010000000000000004", 6000);
	note(c, "000000010000000000000004", 7000);
	r = ranges(c, "00000001", NULL);
	assert_string_equal(r, "[[1,5]]");
	free(r);
	/* Before the first. */
	note(c, "000000010000000000000000", 8000);
	r = ranges(c, "00000001", NULL);
	assert_string_equal(r, "[[0,5]]");
	free(r);
	/* Another timeline, a history and a .partial: their own range, none. */
	note(c, "00000002.history", 9000);
	note(c, "000000010000000000000006.partial", 9000);
	note(c, "000000020000000000000006", 9500);
	r = ranges(c, "00000002", &newest);
	assert_string_equal(r, "[[6,6]]");
	assert_string_equal(newest, "000000020000000000000006");
	free(r);
	free(newest);
	r = ranges(c, "00000001", NULL);
	assert_string_equal(r, "[[0,5]]");
	free(r);
	catalog_close(c);
	fs_remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_segno),
	    cmocka_unit_test(test_lsn),
	    cmocka_unit_test(test_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
