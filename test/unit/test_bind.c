/*
 * bind: where a loaded patch goes (bind_find_gap, docs/design.md §8), from maps text:
 * nearest the object served, a page off its neighbours, within rel32 reach of all of
 * it, never where the heap or the stack grows, never over another patch's range.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "util.h"
#include "bind.h"

#define PAGE 0x1000ull
#define EXE_LO 0x555555554000ull
#define EXE_HI 0x555555560000ull
#define SIZE 0x4000ull

static const char exe_lines[] =
	"555555554000-555555556000 r--p 00000000 fe:00 42 /usr/bin/server\n"
	"555555556000-55555555e000 r-xp 00002000 fe:00 42 /usr/bin/server\n"
	"55555555e000-555555560000 rw-p 0000a000 fe:00 42 /usr/bin/server\n";
static const char libs_stack[] =
	"7ffff7d00000-7ffff7f00000 r-xp 00000000 fe:00 7 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n";

/* bind_find_gap() over @text. */
static uint64_t find(const char *text, uint64_t lo, uint64_t hi, uint64_t brk,
		     const uint64_t (*taken)[2], size_t ntaken)
{
	int fd = memfd_create("maps", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	uint64_t at = bind_find_gap(fd, lo, hi, SIZE, brk, taken, ntaken);
	close(fd);
	return at;
}

static void test_nearest_gap_below_the_program(void **state)
{
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%s%s", exe_lines, libs_stack);
	/* The heap starts right above the program: only below is free of it. */
	uint64_t at = find(text, EXE_LO, EXE_HI, EXE_HI + 0x10000, NULL, 0);
	assert_int_equal(at, EXE_LO - PAGE - SIZE);
}

static void test_never_where_the_heap_grows(void **state)
{
	char text[1024];

	(void)state;
	/*
	 * Everything below the program is taken, the heap follows it at once: the only
	 * gap within reach starts where the heap ends, and the heap grows there.
	 */
	snprintf(text, sizeof(text), "100000000-555555550000 r--p 00000000 00:00 0 \n%s"
		 "555555561000-555555700000 rw-p 00000000 00:00 0 [heap]\n%s", exe_lines, libs_stack);
	assert_int_equal(find(text, EXE_LO, EXE_HI, 0x555555561000ull, NULL, 0), 0);
	assert_int_equal(find(text, EXE_LO, EXE_HI, 0, NULL, 0), 0);	/* brk unknown */
	/* A heap that starts further up leaves the room below its start usable. */
	snprintf(text, sizeof(text), "100000000-555555550000 r--p 00000000 00:00 0 \n%s"
		 "555555600000-555555700000 rw-p 00000000 00:00 0 [heap]\n%s", exe_lines, libs_stack);
	assert_int_equal(find(text, EXE_LO, EXE_HI, 0x555555600000ull, NULL, 0), EXE_HI + PAGE);
}

static void test_never_just_below_the_stack(void **state)
{
	(void)state;
	/* libc right below the stack: the gap between them is used from its bottom only. */
	static const char text[] =
		"7ffff7d00000-7ffff7f00000 r-xp 00000000 fe:00 7 /usr/lib/libc.so.6\n"
		"7ffff8000000-7ffff8021000 rw-p 00000000 00:00 0 [stack]\n";
	uint64_t at = find(text, 0x7ffff7d00000ull, 0x7ffff7f00000ull, 0, NULL, 0);
	assert_true(at != 0);
	assert_true(at + SIZE + PAGE <= 0x7ffff7d00000ull || at == 0x7ffff7f00000ull + PAGE);
}

static void test_taken_ranges_are_not_free(void **state)
{
	char text[1024];
	uint64_t taken[1][2];

	(void)state;
	snprintf(text, sizeof(text), "%s%s", exe_lines, libs_stack);
	uint64_t first = find(text, EXE_LO, EXE_HI, EXE_HI + 0x10000, NULL, 0);
	taken[0][0] = first - PAGE;
	taken[0][1] = first + SIZE + PAGE;
	uint64_t second = find(text, EXE_LO, EXE_HI, EXE_HI + 0x10000,
			       (const uint64_t (*)[2])taken, 1);
	assert_true(second != 0);
	assert_true(second + SIZE <= taken[0][0] || second >= taken[0][1]);
	assert_int_equal(second, EXE_HI + PAGE);	/* the next nearest: above the program */
}

static void test_no_room_within_reach(void **state)
{
	(void)state;
	/* 4 GiB on each side of the object are mapped: nothing within 2 GiB is free. */
	static const char text[] =
		"100000000-200000000 r--p 00000000 00:00 0 \n"
		"200000000-200010000 r-xp 00000000 fe:00 9 /opt/app\n"
		"200010000-300000000 r--p 00000000 00:00 0 \n";
	assert_int_equal(find(text, 0x200000000ull, 0x200010000ull, 0, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nearest_gap_below_the_program),
		cmocka_unit_test(test_never_where_the_heap_grows),
		cmocka_unit_test(test_never_just_below_the_stack),
		cmocka_unit_test(test_taken_ranges_are_not_free),
		cmocka_unit_test(test_no_room_within_reach),
	};

	u_init();
	return cmocka_run_group_tests_name("bind", tests, NULL, NULL);
}
