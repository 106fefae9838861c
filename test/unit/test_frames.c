/*
 * frames: the conservative scan for signal frames (docs/design.md §5) takes a frame only
 * where the kernel puts one, read through this process's own /proc/self/mem; the
 * return-address scan (frames_scan) takes a word only when the bytes before it are a call.
 */
#include <fcntl.h>
#include <stdio.h>
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

static bool is_ret(void *arg, uint64_t pc)
{
	return pc == *(uint64_t *)arg;
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

/* A fake stack of REGION bytes, its top page PROT_NONE so no neighbour merges into it. */
static uint8_t *stack_new(void)
{
	uint8_t *r = mmap(NULL, REGION + 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(r != MAP_FAILED);
	assert_int_equal(mprotect(r + REGION, 4096, PROT_NONE), 0);
	return r;
}

static void stack_free(uint8_t *r)
{
	munmap(r, REGION + 4096);
}

/* Code bytes read, never run: nops, with @len bytes of @insn ending at CODE_END. */
#define CODE_LEN 64
#define CODE_END 32
static void code_with(uint8_t *code, const uint8_t *insn, size_t len)
{
	memset(code, 0x90, CODE_LEN);
	if (len)
		memcpy(code + CODE_END - len, insn, len);
}

static int do_scan(uint64_t pc, uint8_t *sp, const struct lp_code_range *r, size_t nr,
		   struct lp_hit *out, size_t max)
{
	struct lp_stacks st = { .via = getpid(), .mem_fd = open("/proc/self/mem", O_RDONLY) };

	assert_true(st.mem_fd >= 0);
	assert_int_equal(frames_prepare(&st), 0);
	int n = frames_scan(&st, pc, (uint64_t)(uintptr_t)sp, r, nr, out, max);
	frames_free(&st);
	close(st.mem_fd);
	return n;
}

static uint64_t addr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

__attribute__((noinline)) static uint64_t callee(void)
{
	return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

/* Returns the address right after its own call of callee(), a real `call`. */
__attribute__((noinline)) static uint64_t caller(void)
{
	uint64_t ra = callee();

	__asm__ volatile("" : "+r"(ra));	/* no tail call: the call stays a call */
	return ra;
}

/* A return address after a real call counts; a word into the range not after a call does not. */
static void test_scan_takes_return_addresses_after_a_call_only(void **state)
{
	uint8_t *s = stack_new(), code[CODE_LEN];
	uint64_t ra = caller();
	struct lp_code_range r[2] = {
		{ ra - 1, ra }, { addr(code), addr(code) + CODE_LEN }
	};
	struct lp_hit h[8];

	(void)state;
	code_with(code, NULL, 0);
	put(s, 0, 5);
	put(s, 8, ra);
	put(s, 16, addr(code) + CODE_END);	/* into the range, after nops */
	put(s, 24, ra + 1);			/* outside every range */
	put(s, 4096, ra);
	assert_int_equal(do_scan(addr(code) + 3, s, r, 2, h, 8), 3);
	assert_int_equal(h[0].kind, LP_HIT_PC);
	assert_int_equal(h[0].at, 0);
	assert_int_equal(h[0].value, addr(code) + 3);
	assert_int_equal(h[0].range, 1);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(h[i].kind, LP_HIT_RETURN);
		assert_int_equal(h[i].value, ra);
		assert_int_equal(h[i].range, 0);
	}
	assert_int_equal(h[1].at, addr(s) + 8);
	assert_int_equal(h[2].at, addr(s) + 4096);
	/* A PC outside every range is no hit; no range at all, nothing. */
	assert_int_equal(do_scan(ra + 1, s, r, 2, h, 8), 2);
	assert_int_equal(do_scan(ra - 1, s, r, 0, h, 8), 0);
	stack_free(s);
}

/* Each call form compilers emit, ending right before the return address; and near misses. */
static void test_scan_decodes_each_call_form(void **state)
{
	static const struct { uint8_t b[8]; size_t len; int hits; } forms[] = {
		{ { 0xe8, 1, 2, 3, 4 }, 5, 1 },			/* call rel32 */
		{ { 0xff, 0xd0 }, 2, 1 },			/* call *%rax */
		{ { 0x41, 0xff, 0xd3 }, 3, 1 },			/* call *%r11 */
		{ { 0xff, 0x17 }, 2, 1 },			/* call *(%rdi) */
		{ { 0xff, 0x50, 0x08 }, 3, 1 },			/* call *8(%rax) */
		{ { 0x41, 0xff, 0x57, 0x10 }, 4, 1 },		/* call *16(%r15) */
		{ { 0xff, 0x14, 0x24 }, 3, 1 },			/* call *(%rsp) */
		{ { 0xff, 0x14, 0xc3 }, 3, 1 },			/* call *(%rbx,%rax,8) */
		{ { 0xff, 0x54, 0x24, 0x08 }, 4, 1 },		/* call *8(%rsp) */
		{ { 0xff, 0x15, 1, 2, 3, 4 }, 6, 1 },		/* call *d32(%rip) */
		{ { 0xff, 0x90, 0, 1, 0, 0 }, 6, 1 },		/* call *0x100(%rax) */
		{ { 0xff, 0x94, 0x24, 0, 1, 0, 0 }, 7, 1 },	/* call *0x100(%rsp) */
		{ { 0xff, 0x14, 0x25, 0, 1, 0, 0 }, 7, 1 },	/* call *0x100 (absolute) */
		{ { 0xff, 0xe0 }, 2, 0 },			/* jmp *%rax */
		{ { 0xff, 0x14 }, 2, 0 },			/* a SIB byte would follow */
		{ { 0xff, 0x15 }, 2, 0 },			/* a disp32 would follow */
		{ { 0xff, 0x54, 0x08 }, 3, 0 },			/* a disp8 would follow */
		{ { 0xe9, 1, 2, 3, 4 }, 5, 0 },			/* jmp rel32 */
		{ { 0x48, 0x89, 0xe5 }, 3, 0 },			/* mov %rsp, %rbp */
	};
	uint8_t *s = stack_new(), code[CODE_LEN];
	struct lp_code_range r = { addr(code), addr(code) + CODE_LEN };
	struct lp_hit h[2];

	(void)state;
	for (size_t i = 0; i < LP_ARRAY_SIZE(forms); i++) {
		code_with(code, forms[i].b, forms[i].len);
		put(s, 64, addr(code) + CODE_END);
		int n = do_scan(0, s, &r, 1, h, 2);
		if (n != forms[i].hits)
			fail_msg("form %zu (%02x %02x): %d hits, expected %d", i, forms[i].b[0],
				 forms[i].b[1], n, forms[i].hits);
		if (n == 1)
			assert_int_equal(h[0].at, addr(s) + 64);
	}
	/* A return address at the start of a page whose previous page is not mapped. */
	uint8_t *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(two != MAP_FAILED);
	assert_int_equal(munmap(two, 4096), 0);
	memcpy(two + 4096, (const uint8_t[]){ 0xff, 0xd0 }, 2);
	r = (struct lp_code_range){ addr(two) + 4096, addr(two) + 8192 };
	put(s, 64, addr(two) + 4098);
	assert_int_equal(do_scan(0, s, &r, 1, h, 2), 1);
	munmap(two + 4096, 4096);
	stack_free(s);
}

/* A signal frame's saved PC counts whatever precedes it, once, in stack order with the rest. */
static void test_scan_takes_signal_frames_in_stack_order(void **state)
{
	uint8_t *s = stack_new(), code[CODE_LEN];
	struct lp_code_range r = { addr(code), addr(code) + CODE_LEN };
	uint64_t ret = addr(code) + CODE_END, saved = addr(code) + 5;
	struct lp_hit h[8];

	(void)state;
	code_with(code, (const uint8_t[]){ 0xe8, 0, 0, 0, 0 }, 5);
	uint8_t *f = s + AT;
	put(f, 0, addr(tramp));
	put(f, 8, 0);
	put(f, LP_FRAME_SS_SP, 0);
	int32_t dis = SS_DISABLE;
	memcpy(f + LP_FRAME_SS_FLAGS, &dis, sizeof(dis));
	put(f, LP_FRAME_RSP, addr(f) + 2048);
	put(f, LP_FRAME_RIP, saved);
	put(s, 16, ret);			/* below the frame */
	put(s, AT + 4096, ret);			/* above it */
	assert_int_equal(do_scan(0, s, &r, 1, h, 8), 3);
	assert_int_equal(h[0].kind, LP_HIT_RETURN);
	assert_int_equal(h[0].at, addr(s) + 16);
	assert_int_equal(h[1].kind, LP_HIT_SIGNAL);
	assert_int_equal(h[1].at, addr(f) + LP_FRAME_RIP);
	assert_int_equal(h[1].value, saved);
	assert_int_equal(h[2].kind, LP_HIT_RETURN);
	assert_int_equal(h[2].at, addr(f) + 4096);
	/* A saved PC that is also a return address: one hit, the signal frame's. */
	put(f, LP_FRAME_RIP, ret);
	assert_int_equal(do_scan(0, s, &r, 1, h, 8), 3);
	assert_int_equal(h[1].kind, LP_HIT_SIGNAL);
	assert_int_equal(h[1].value, ret);
	/* And frames_find() still sees the frame. */
	struct lp_stacks st = { .via = getpid(), .mem_fd = open("/proc/self/mem", O_RDONLY) };
	struct lp_frame fr[2];
	assert_int_equal(frames_find(&st, addr(s), is_ret, &ret, fr, 2), 1);
	assert_int_equal(fr[0].at, addr(f) + LP_FRAME_RIP);
	frames_free(&st);
	close(st.mem_fd);
	stack_free(s);
}

/* The scan stops when @out is full: the first hits in stack order, the PC first. */
static void test_scan_stops_when_full(void **state)
{
	uint8_t *s = stack_new(), code[CODE_LEN];
	struct lp_code_range r = { addr(code), addr(code) + CODE_LEN };
	struct lp_hit h[3];

	(void)state;
	code_with(code, (const uint8_t[]){ 0xe8, 0, 0, 0, 0 }, 5);
	for (int i = 0; i < 5; i++)
		put(s, 1024 * (size_t)(i + 1), addr(code) + CODE_END);
	assert_int_equal(do_scan(0, s, &r, 1, h, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(h[i].at, addr(s) + 1024 * (uint64_t)(i + 1));
	assert_int_equal(do_scan(addr(code), s, &r, 1, h, 1), 1);
	assert_int_equal(h[0].kind, LP_HIT_PC);
	assert_int_equal(do_scan(addr(code), s, &r, 1, h, 0), 0);
	stack_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_below_its_saved_sp_is_found),
		cmocka_unit_test(test_copy_of_a_frame_in_data_is_left_alone),
		cmocka_unit_test(test_frame_on_its_sigaltstack_is_found),
		cmocka_unit_test(test_frame_outside_its_sigaltstack_is_left_alone),
		cmocka_unit_test(test_scan_takes_return_addresses_after_a_call_only),
		cmocka_unit_test(test_scan_decodes_each_call_form),
		cmocka_unit_test(test_scan_takes_signal_frames_in_stack_order),
		cmocka_unit_test(test_scan_stops_when_full),
	};
	return cmocka_run_group_tests_name("frames", tests, NULL, NULL);
}
