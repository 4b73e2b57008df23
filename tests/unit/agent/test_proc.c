/*
 * Tests of proc.c, the child-process runner: output captured and pumped,
 * stdin fed, exit statuses and exec failures as one message with the stderr
 * tail, the minimal environment, and cancellation: a child that runs on
 * after cancel_set() is stopped and the wait returns CF_ERR_INTERRUPTED
 * within a second.
 */
#include "agent/proc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

/* A literal where the API takes char *const * (execvp's argv). */
#define S(x) ((char *)(uintptr_t)(x))

static void test_capture(void **state)
{
	char *argv[] = {S("printf"), S("a\\nb"), NULL};
	struct proc_spec spec = {
	    .label = "printf", .argv = argv, .out = 1, .errcode = CF_ERR_SOURCE};
	struct buf out;

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(proc_capture(&spec, &out), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, "a\nb", 3);
	buf_free(&out);

	/* Bounded: more output than max fails, naming the child. */
	spec.argv = NULL;
	spec.shell = "head -c 5000 /dev/zero";
	buf_init(&out, 1000);
	assert_int_equal(proc_capture(&spec, &out), CF_ERR_SOURCE);
	assert_non_null(strstr(error_message(), "printf: its output is larger than 1000 bytes"));
	buf_free(&out);
}

static void test_exit_status_and_stderr(void **state)
{
	struct proc_spec spec = {.label = "tool",
	                         .shell = "echo first >&2; echo 'it broke' >&2; "
	                                  "exit 3",
	                         .out = 1,
	                         .errcode = CF_ERR_TARGET,
	                         .stderr_debug = 1};
	struct buf out;

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(proc_capture(&spec, &out), CF_ERR_TARGET);
	assert_non_null(strstr(error_message(), "tool exited with status 3"));
	assert_non_null(strstr(error_message(), "it broke"));
	buf_free(&out);
}

static void test_exec_failure(void **state)
{
	char *argv[] = {S("coffer-no-such-tool"), NULL};
	struct proc_spec spec = {.label = "x", .argv = argv, .out = 1, .errcode = CF_ERR_SOURCE};
	struct proc p;

	(void)state;
	assert_int_equal(proc_start(&spec, &p), CF_ERR_SOURCE);
	assert_non_null(strstr(error_message(), "coffer-no-such-tool"));
}

/* The child sees only the allowed variables, plus what spec sets. */
static void test_environment(void **state)
{
	char *env[] = {S("COFFER_TEST_SET=yes"), NULL};
	struct proc_spec spec = {.label = "env",
	                         .shell = "echo \"$AWS_SECRET_ACCESS_KEY|"
	                                  "$COFFER_TEST_SET|${PATH:+path}\"",
	                         .env = env,
	                         .out = 1,
	                         .errcode = CF_ERR_SOURCE};
	struct buf out;

	(void)state;
	setenv("AWS_SECRET_ACCESS_KEY", "leak", 1);
	buf_init(&out, 1024);
	assert_int_equal(proc_capture(&spec, &out), 0);
	assert_string_equal((char *)out.data, "|yes|path\n");
	buf_free(&out);
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* stdin fed through the filter sink comes back through stdout. */
static void test_feed_and_pump(void **state)
{
	char *argv[] = {S("wc"), S("-c"), NULL};
	struct proc_spec spec = {
	    .label = "wc", .argv = argv, .in = 1, .out = 1, .errcode = CF_ERR_TARGET};
	struct proc p;
	struct filter *sink;
	uint8_t block[65536];
	char text[64];
	ssize_t n;

	(void)state;
	memset(block, 'x', sizeof(block));
	assert_int_equal(proc_start(&spec, &p), 0);
	assert_int_equal(proc_filter_new(&p, &sink), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(filter_write(sink, block, sizeof(block)), 0);
	assert_int_equal(filter_finish(sink), 0);
	n = read(p.out, text, sizeof(text) - 1);
	assert_true(n > 0);
	text[n] = '\0';
	assert_int_equal(atol(text), 16 * 65536);
	assert_int_equal(proc_finish(&p), 0);
	proc_release(&p);
	filter_chain_free(sink);
}

static void *cancel_later(void *arg)
{
	(void)arg;
	usleep(300000);
	cancel_set(SIGTERM);
	return NULL;
}

/* Must run last: the cancellation value cannot be unset. A child that keeps
 * running (and ignores SIGTERM) after cancel_set() from another thread: the
 * pump returns CF_ERR_INTERRUPTED and release kills it, within a second. */
static void test_cancel(void **state)
{
	struct proc_spec spec = {.label = "stubborn",
	                         .shell = "trap '' TERM; while :; do sleep 0.05; done",
	                         .out = 1,
	                         .errcode = CF_ERR_SOURCE};
	struct proc p;
	struct filter *sink = NULL;
	pthread_t t;
	double t0, t1;
	pid_t pid;

	(void)state;
	assert_int_equal(filter_null_new(&sink), 0);
	assert_int_equal(proc_start(&spec, &p), 0);
	pid = p.pid;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, NULL), 0);
	t0 = time_mono();
	assert_int_equal(proc_pump(&p, sink), CF_ERR_INTERRUPTED);
	proc_release(&p);
	t1 = time_mono();
	pthread_join(t, NULL);
	print_message("cancelled after %.0f ms (300 ms before the signal)\n", (t1 - t0) * 1000);
	assert_true(t1 - t0 < 1.3);
	assert_int_equal(kill(pid, 0), -1);
	filter_chain_free(sink);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capture),       cmocka_unit_test(test_exit_status_and_stderr),
	    cmocka_unit_test(test_exec_failure),  cmocka_unit_test(test_environment),
	    cmocka_unit_test(test_feed_and_pump), cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
