/*
 * fuzz_main: a stand-in for libFuzzer's driver, so that every build (gcc,
 * ASan, valgrind) can replay a fuzz target over its seed corpus as a unit
 * test. It runs LLVMFuzzerTestOneInput() once on every file named on the
 * command line and on every file of every directory named there (sorted,
 * dot-files skipped, not recursive). It does not generate inputs.
 *
 * Each input goes into a heap buffer of exactly its size, so a read past the
 * end is caught by ASan and valgrind as it would be under libFuzzer. A crash
 * or abort() in the target fails the test; so does finding no input at all,
 * which would mean a wrong corpus path.
 */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Seed inputs are small; anything larger is not one of ours. */
#define FUZZ_MAIN_MAX_INPUT (16 * 1024 * 1024)

/* Reads path and runs the target on it. Returns 0, or 1 after a message. */
static int fuzz_main_run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data = NULL;
	long size;
	int rc = 1;

	if (!fp) {
		fprintf(stderr, "fuzz_main: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
		fprintf(stderr, "fuzz_main: cannot size %s: %s\n", path, strerror(errno));
	else if (size > FUZZ_MAIN_MAX_INPUT)
		fprintf(stderr, "fuzz_main: %s is larger than %d bytes\n", path,
		        FUZZ_MAIN_MAX_INPUT);
	else if (!(data = malloc(size ? (size_t)size : 1)))
		fprintf(stderr, "fuzz_main: out of memory reading %s\n", path);
	else if (size > 0 && fread(data, 1, (size_t)size, fp) != (size_t)size)
		fprintf(stderr, "fuzz_main: cannot read %s\n", path);
	else
		rc = 0;
	fclose(fp);
	if (!rc)
		LLVMFuzzerTestOneInput(data, (size_t)size);
	free(data);
	return rc;
}

static int fuzz_main_visible(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Runs every regular file of dir; adds to *count. Returns 0 or 1. */
static int fuzz_main_run_dir(const char *dir, unsigned *count)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, fuzz_main_visible, alphasort);
	int rc = 0;

	if (n < 0) {
		fprintf(stderr, "fuzz_main: cannot list %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (!rc && (size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >=
		               sizeof(path)) {
			fprintf(stderr, "fuzz_main: path too long in %s\n", dir);
			rc = 1;
		}
		if (!rc && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = fuzz_main_run_file(path);
			(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;

	for (int i = 1; i < argc && !rc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "fuzz_main: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			rc = fuzz_main_run_dir(argv[i], &count);
		} else {
			rc = fuzz_main_run_file(argv[i]);
			count++;
		}
	}
	if (!rc && count == 0) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE... (no input found)\n", argv[0]);
		rc = 1;
	}
	if (!rc)
		printf("fuzz_main: %u inputs ran\n", count);
	return rc;
}
