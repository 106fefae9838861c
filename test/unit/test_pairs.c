/*
 * pairs: the plan-file reader (issue #14). Only what is decided before a name is resolved:
 * read errors, the size and line limits, NUL bytes and line numbers. The process is an
 * empty struct lp_proc, so a line that gets as far as resolving fails with a symbol error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "pairs.h"

static char dir[] = "/tmp/lp-test-pairs.XXXXXX";
static char path[sizeof(dir) + 16];

/* Write @len bytes of @text (then @fill bytes @c) to the plan file. */
static void plan_write(const char *text, size_t len, size_t fill, char c)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	for (size_t i = 0; i < fill; i++)
		assert_int_not_equal(fputc(c, f), EOF);
	assert_int_equal(fclose(f), 0);
}

/* pairs_collect() of --plan @file: the exit code and message in @d. */
static int collect(const char *file, struct lp_diag *d)
{
	struct lp_proc p = { .pid = 1, .mem_fd = -1 };
	struct lp_pairs_want w = { .plan_file = file };
	struct lp_pairs ps;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = pairs_collect(&p, &w, &ps, d);
	pairs_free(&ps);
	return ret ? lp_exit_code(ret) : 0;
}

static void expect(const char *file, int code, const char *msg)
{
	struct lp_diag d;

	assert_int_equal(collect(file, &d), code);
	if (!strstr(d.msg, msg))
		fail_msg("'%s' not in '%s'", msg, d.msg);
}

static void test_dev_zero_is_a_nul_on_line_1(void **state)
{
	(void)state;
	expect("/dev/zero", LP_EXIT_USAGE, "/dev/zero:1: a NUL byte at column 1 (");
}

static void test_directory_names_eisdir(void **state)
{
	char msg[128];

	(void)state;
	snprintf(msg, sizeof(msg), "cannot read plan file %s: Is a directory (", dir);
	expect(dir, LP_EXIT_USAGE, msg);
}

static void test_nul_names_its_line_and_column(void **state)
{
	static const char text[] = "# one\n\n  \r\nf0\0g0\n";
	char msg[128];

	(void)state;
	plan_write(text, sizeof(text) - 1, 0, 0);
	snprintf(msg, sizeof(msg), "%s:4: a NUL byte at column 3 (", path);
	expect(path, LP_EXIT_USAGE, msg);
}

static void test_line_of_4096_bytes_read_4097_refused(void **state)
{
	char msg[128];

	(void)state;
	plan_write("#", 1, LP_PLAN_MAX_LINE - 1, 'x');	/* 4096 bytes, no newline */
	snprintf(msg, sizeof(msg), "plan file %s has no 'F G' line", path);
	expect(path, LP_EXIT_USAGE, msg);
	plan_write("\n#", 2, LP_PLAN_MAX_LINE, 'x');	/* line 2: 4097 bytes */
	snprintf(msg, sizeof(msg), "%s:2: the line is longer than 4096 bytes", path);
	expect(path, LP_EXIT_USAGE, msg);
}

static void test_size_limit(void **state)
{
	char msg[128];

	(void)state;
	plan_write("", 0, LP_PLAN_MAX_BYTES, '\n');
	snprintf(msg, sizeof(msg), "plan file %s has no 'F G' line", path);
	expect(path, LP_EXIT_USAGE, msg);
	plan_write("", 0, LP_PLAN_MAX_BYTES + 1, '\n');
	snprintf(msg, sizeof(msg), "plan file %s is larger than 16 MiB", path);
	expect(path, LP_EXIT_USAGE, msg);
}

static void test_words_and_line_numbers(void **state)
{
	static const char three[] = "# c\n\tf0  g0 \t extra # comment\n";
	char msg[128];

	(void)state;
	plan_write(three, sizeof(three) - 1, 0, 0);
	snprintf(msg, sizeof(msg), "%s:2: expected 'F G' (a function and its target), got '\tf0  g0 \t extra '",
		 path);
	expect(path, LP_EXIT_USAGE, msg);
	plan_write("\n\nf0 g0", 6, 0, 0);	/* the last line has no newline: still read */
	snprintf(msg, sizeof(msg), "%s:3: ", path);
	expect(path, LP_EXIT_SYMBOL, msg);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/plan", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dev_zero_is_a_nul_on_line_1),
		cmocka_unit_test(test_directory_names_eisdir),
		cmocka_unit_test(test_nul_names_its_line_and_column),
		cmocka_unit_test(test_line_of_4096_bytes_read_4097_refused),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_words_and_line_numbers),
	};

	u_init();
	return cmocka_run_group_tests_name("pairs_read_plan_file", tests, setup, teardown) ? 1 : 0;
}
