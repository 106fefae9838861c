/*
 * frames: the conservative scan for signal frames (docs/design.md §5) takes a frame only
 * where the kernel puts one, read through this process's own /proc/self/mem.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "frames.h"
#include "util.h"

#define REGION (64 * 1024)
#define AT 0x1008		/* 8 bytes below a 16-byte boundary, as the kernel aligns */
#define PC 0x7f0000abc123ULL	/* the saved PC the scan looks for */

/* __restore_rt as glibc writes it: `mov $15, %eax; syscall` (read, never run). */
static const uint8_t tramp[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };

static bool is_pc(void *arg, uint64_t pc)
{
	(void)arg;
	return pc == PC;
}

static void put(uint8_t *f, size_t off, uint64_t v)
{
	memcpy(f + off, &v, sizeof(v));
}

/* A frame at region + AT saving @rsp, with uc_stack {@ss_sp, @ss_flags, @ss_size}; found? */
static int scan(uint64_t rsp, uint64_t ss_sp, int32_t ss_flags, uint64_t ss_size, int64_t rsp_off)
{
	uint8_t *r = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct lp_stacks st = { .via = getpid(), .mem_fd = open("/proc/self/mem", O_RDONLY) };
	struct lp_frame out[2];

	assert_true(r != MAP_FAILED);
	assert_true(st.mem_fd >= 0);
	uint8_t *f = r + AT;
	put(f, 0, (uint64_t)(uintptr_t)tramp);
	put(f, 8, 0);					/* uc_flags */
	put(f, LP_FRAME_SS_SP, ss_sp ? ss_sp : (uint64_t)(uintptr_t)r);
	memcpy(f + LP_FRAME_SS_FLAGS, &ss_flags, sizeof(ss_flags));
	put(f, LP_FRAME_SS_SIZE, ss_size);
	put(f, LP_FRAME_RSP, rsp ? rsp : (uint64_t)(uintptr_t)f + (uint64_t)rsp_off);
	put(f, LP_FRAME_RIP, PC);
	int n = frames_find(&st, (uint64_t)(uintptr_t)r, is_pc, NULL, out, 2);
	if (n == 1)
		assert_int_equal(out[0].at, (uint64_t)(uintptr_t)f + LP_FRAME_RIP);
	frames_free(&st);
	close(st.mem_fd);
	munmap(r, REGION);
	return n;
}

/* Below the SP it saved, on the same stack (red zone, FPU state, frame): taken. */
static void test_frame_below_its_saved_sp_is_found(void **state)
{
	(void)state;
	assert_int_equal(scan(0, 0, SS_DISABLE, 0, 2048), 1);
	assert_int_equal(scan(0, 0, SS_DISABLE, 0, LP_FRAME_SPAN), 1);
}

/* A copy whose saved SP is elsewhere (or below it, or too far above): data, left alone. */
static void test_copy_of_a_frame_in_data_is_left_alone(void **state)
{
	int local;

	(void)state;
	assert_int_equal(scan((uint64_t)(uintptr_t)&local, 0, SS_DISABLE, 0, 0), 0);
	assert_int_equal(scan(0, 0, SS_DISABLE, 0, -64), 0);
	assert_int_equal(scan(0, 0, SS_DISABLE, 0, LP_FRAME_SPAN + 16), 0);
}

/* On the sigaltstack its uc_stack names: taken wherever the interrupted SP was. */
static void test_frame_on_its_sigaltstack_is_found(void **state)
{
	int local;

	(void)state;
	assert_int_equal(scan((uint64_t)(uintptr_t)&local, 0, SS_ONSTACK, REGION, 0), 1);
	assert_int_equal(scan((uint64_t)(uintptr_t)&local, 0, 0, REGION, 0), 1);
}

/* A copy outside the sigaltstack it names, or naming a disabled one: left alone. */
static void test_frame_outside_its_sigaltstack_is_left_alone(void **state)
{
	int local;

	(void)state;
	assert_int_equal(scan((uint64_t)(uintptr_t)&local, 0, 0, AT, 0), 0);
	assert_int_equal(scan((uint64_t)(uintptr_t)&local, 0, SS_DISABLE, REGION, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_below_its_saved_sp_is_found),
		cmocka_unit_test(test_copy_of_a_frame_in_data_is_left_alone),
		cmocka_unit_test(test_frame_on_its_sigaltstack_is_found),
		cmocka_unit_test(test_frame_outside_its_sigaltstack_is_left_alone),
	};
	return cmocka_run_group_tests_name("frames", tests, NULL, NULL);
}
