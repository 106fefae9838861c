/*
 * x86: the encoders, decoders and emulators livepatch relies on, byte by byte
 * (docs/design.md §3, §4). The sites sit high in the address space, so a sign or
 * width error in a rel32 changes the expected bytes.
 */
#include <string.h>
#include "util.h"
#include "x86.h"

#define SITE 0x7f0012345670ULL

/* endbr64 at the start only, and only with its four bytes available. */
static void test_endbr64_is_recognised_whole_and_only_whole(void **state)
{
	static const uint8_t endbr[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 };
	static const uint8_t endbr32[] = { 0xf3, 0x0f, 0x1e, 0xfb };

	(void)state;
	assert_true(x86_is_endbr64(endbr, sizeof(endbr)));
	assert_true(x86_is_endbr64(endbr, 4));
	assert_false(x86_is_endbr64(endbr, 3));
	assert_false(x86_is_endbr64(endbr32, sizeof(endbr32)));
	assert_false(x86_is_endbr64(endbr + 1, 4));
}

/* The reach of a rel32: exactly INT32_MAX and INT32_MIN reach, one beyond does not. */
static void test_rel32_reach_ends_at_int32_bounds(void **state)
{
	uint64_t next = SITE + 5;
	int32_t rel = 7;

	(void)state;
	assert_true(x86_rel32(next, next + INT32_MAX, &rel));
	assert_int_equal(rel, INT32_MAX);
	assert_true(x86_rel32(next, next - 0x80000000ULL, &rel));
	assert_int_equal(rel, INT32_MIN);
	rel = 7;
	assert_false(x86_rel32(next, next + INT32_MAX + 1ULL, &rel));
	assert_false(x86_rel32(next, next - 0x80000001ULL, &rel));
	assert_int_equal(rel, 7);	/* untouched when out of reach */
	assert_true(x86_rel32(next, next, &rel));
	assert_int_equal(rel, 0);
}

/* jmp rel32: e9, then the target minus the end of the jump, little-endian. */
static void test_jmp_rel32_bytes(void **state)
{
	uint8_t out[16] = { 0 };
	static const uint8_t fwd[] = { 0xe9, 0xfb, 0x0f, 0x00, 0x00 };	/* +0x1000 - 5 */
	static const uint8_t back[] = { 0xe9, 0xfb, 0xef, 0xff, 0xff };	/* -0x1000 - 5 */
	static const uint8_t self[] = { 0xe9, 0xfb, 0xff, 0xff, 0xff };	/* to itself: -5 */

	(void)state;
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE + 0x1000, out), 5);
	assert_memory_equal(out, fwd, 5);
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE - 0x1000, out), 5);
	assert_memory_equal(out, back, 5);
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE, out), 5);
	assert_memory_equal(out, self, 5);
}

/* The last displacements a rel32 encodes, and a refusal one byte further. */
static void test_jmp_and_call_rel32_at_the_edges_of_reach(void **state)
{
	static const uint8_t max[] = { 0xe9, 0xff, 0xff, 0xff, 0x7f };
	static const uint8_t min[] = { 0xe8, 0x00, 0x00, 0x00, 0x80 };
	uint8_t out[16];

	(void)state;
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE + 5 + INT32_MAX, out), 5);
	assert_memory_equal(out, max, 5);
	assert_int_equal(x86_encode_call_rel32(SITE, SITE + 5 - 0x80000000ULL, out), 5);
	assert_memory_equal(out, min, 5);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE + 5 + INT32_MAX + 1ULL, out), 0);
	assert_int_equal(x86_encode_call_rel32(SITE, SITE + 5 - 0x80000001ULL, out), 0);
	assert_int_equal(out[0], 0xaa);	/* nothing written when out of reach */
}

/* call rel32: e8, the same displacement as a jmp. */
static void test_call_rel32_bytes(void **state)
{
	static const uint8_t want[] = { 0xe8, 0x2b, 0xff, 0xff, 0xff };	/* -0xd0 - 5 */
	uint8_t out[16];

	(void)state;
	assert_int_equal(x86_encode_call_rel32(SITE, SITE - 0xd0, out), 5);
	assert_memory_equal(out, want, 5);
}

/* jcc rel32: 0f 80+cc, and a rel32 counted from the end of its 6 bytes. */
static void test_jcc_rel32_bytes_and_reach(void **state)
{
	static const uint8_t jne[] = { 0x0f, 0x85, 0xfa, 0x00, 0x00, 0x00 };	/* +0x100 - 6 */
	static const uint8_t jg_max[] = { 0x0f, 0x8f, 0xff, 0xff, 0xff, 0x7f };
	uint8_t out[16];

	(void)state;
	assert_int_equal(x86_encode_jcc_rel32(0x5, SITE, SITE + 0x100, out), 6);
	assert_memory_equal(out, jne, 6);
	assert_int_equal(x86_encode_jcc_rel32(0xf, SITE, SITE + 6 + INT32_MAX, out), 6);
	assert_memory_equal(out, jg_max, 6);
	assert_int_equal(x86_encode_jcc_rel32(0xf, SITE, SITE + 6 + INT32_MAX + 1ULL, out), 0);
	assert_int_equal(x86_encode_jcc_rel32(0x10, SITE, SITE + 0x100, out), 0);
}

/* jmp [rip + 0] and the 8-byte address right after it. */
static void test_jmp_abs64_bytes(void **state)
{
	static const uint8_t want[] = { 0xff, 0x25, 0, 0, 0, 0,
					0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 };
	uint8_t out[16];

	(void)state;
	assert_int_equal(x86_encode_jmp_abs64(0x1122334455667788ULL, out), 14);
	assert_memory_equal(out, want, 14);
}

/* The jump livepatch writes: rel32 up to the edge of reach, abs64 one byte past it. */
static void test_encode_jmp_chooses_the_shortest_form(void **state)
{
	uint8_t out[16];
	uint64_t far = SITE + 5 + INT32_MAX + 1ULL;

	(void)state;
	assert_int_equal(x86_encode_jmp(SITE, SITE + 5 + INT32_MAX, out), 5);
	assert_int_equal(out[0], 0xe9);
	assert_int_equal(x86_encode_jmp(SITE, far, out), 14);
	assert_int_equal(out[0], 0xff);
	assert_memory_equal(out + 6, &far, 8);
	assert_int_equal(x86_encode_jmp(SITE, SITE - 5 - 0x80000000ULL, out), 14);
}

/* Each encoded form decodes to its kind, length and target. */
static void test_decode_reads_back_what_is_encoded(void **state)
{
	uint8_t b[16];
	struct x86_branch br;

	(void)state;
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE - 0x12345, b), 5);
	assert_true(x86_decode(b, 5, SITE, &br));
	assert_int_equal(br.kind, X86_JMP_REL32);
	assert_int_equal(br.len, 5);
	assert_int_equal(br.target, SITE - 0x12345);

	assert_int_equal(x86_encode_call_rel32(SITE, SITE + 5 + INT32_MAX, b), 5);
	assert_true(x86_decode(b, 5, SITE, &br));
	assert_int_equal(br.kind, X86_CALL_REL32);
	assert_int_equal(br.target, SITE + 5 + INT32_MAX);

	assert_int_equal(x86_encode_jmp_abs64(0xffffffffff600000ULL, b), 14);
	assert_true(x86_decode(b, 14, SITE, &br));
	assert_int_equal(br.kind, X86_JMP_ABS64);
	assert_int_equal(br.len, 14);
	assert_int_equal(br.target, 0xffffffffff600000ULL);
}

/* Too few bytes, another instruction, or jmp [rip + 4]: not ours. */
static void test_decode_refuses_what_livepatch_does_not_write(void **state)
{
	static const uint8_t rel[] = { 0xe9, 0, 0, 0, 0 };
	static const uint8_t abs_disp[] = { 0xff, 0x25, 4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t abs[] = { 0xff, 0x25, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t push[] = { 0x55, 0x48, 0x89, 0xe5, 0x90 };
	struct x86_branch br = { .kind = X86_JMP_REL32 };
	uint64_t t = 0;

	(void)state;
	assert_false(x86_decode(rel, 4, SITE, &br));
	assert_int_equal(br.kind, X86_OTHER);
	assert_false(x86_decode(abs, 13, SITE, &br));
	assert_false(x86_decode(abs_disp, sizeof(abs_disp), SITE, &br));
	assert_false(x86_decode(push, sizeof(push), SITE, &br));
	assert_int_equal(x86_decode_jmp(abs, sizeof(abs), SITE, &t), 14);
	assert_int_equal(t, 0x0807060504030201ULL);
	assert_int_equal(x86_decode_jmp(rel, sizeof(rel), SITE, &t), 5);
	assert_int_equal(t, SITE + 5);
}

/* x86_decode_jmp takes jumps only (a call at an entry is not a jump we wrote); _call, calls. */
static void test_decode_jmp_and_decode_call_keep_apart(void **state)
{
	static const uint8_t call[] = { 0xe8, 0x10, 0, 0, 0 };
	static const uint8_t jmp[] = { 0xe9, 0x10, 0, 0, 0 };
	uint64_t t = 42;

	(void)state;
	assert_int_equal(x86_decode_jmp(call, sizeof(call), SITE, &t), 0);
	assert_int_equal(x86_decode_call(jmp, sizeof(jmp), SITE, &t), 0);
	assert_int_equal(t, 42);
	assert_int_equal(x86_decode_call(call, 4, SITE, &t), 0);
	assert_int_equal(x86_decode_call(call, sizeof(call), SITE, &t), 5);
	assert_int_equal(t, SITE + 5 + 0x10);
}

/* The emulation of what a walk writes: a jump, a call, or a prologue to park on. */
static void test_decode_emulation_of_each_form(void **state)
{
	static const uint8_t prologue[] = { 0x55, 0x48, 0x89, 0xe5, 0x41, 0x57 };
	uint8_t b[16];
	struct lp_emulation e;

	(void)state;
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE + 0x400, b), 5);
	e = x86_decode_emulation(b, 5, SITE);
	assert_int_equal(e.kind, LP_EMUL_JMP);
	assert_int_equal(e.target, SITE + 0x400);
	assert_int_equal(e.len, 5);

	assert_int_equal(x86_encode_jmp_abs64(0x400000, b), 14);
	e = x86_decode_emulation(b, 14, SITE);
	assert_int_equal(e.kind, LP_EMUL_JMP);
	assert_int_equal(e.target, 0x400000);
	assert_int_equal(e.len, 14);

	assert_int_equal(x86_encode_call_rel32(SITE, SITE - 0x800, b), 5);
	e = x86_decode_emulation(b, 5, SITE);
	assert_int_equal(e.kind, LP_EMUL_CALL);
	assert_int_equal(e.target, SITE - 0x800);
	assert_int_equal(e.len, 5);

	e = x86_decode_emulation(prologue, sizeof(prologue), SITE);
	assert_int_equal(e.kind, LP_EMUL_PARK);
	assert_int_equal(e.target, SITE);
	assert_int_equal(e.len, 0);
}

/* A jmp rel32 re-pointed over a longer site is still a jump; a call there would return inside. */
static void test_decode_emulation_parks_a_call_returning_inside_the_site(void **state)
{
	uint8_t b[16] = { 0 };
	struct lp_emulation e;

	(void)state;
	assert_int_equal(x86_encode_jmp_rel32(SITE, SITE + 0x400, b), 5);
	e = x86_decode_emulation(b, 14, SITE);
	assert_int_equal(e.kind, LP_EMUL_JMP);
	assert_int_equal(e.len, 5);
	assert_int_equal(x86_encode_call_rel32(SITE, SITE + 0x400, b), 5);
	e = x86_decode_emulation(b, 14, SITE);
	assert_int_equal(e.kind, LP_EMUL_PARK);
	assert_int_equal(e.target, SITE);
	/* An abs64 cut short by the site's length is not a jump. */
	assert_int_equal(x86_encode_jmp_abs64(0x400000, b), 14);
	assert_int_equal(x86_decode_emulation(b, 5, SITE).kind, LP_EMUL_PARK);
}

static struct user_regs_struct trapped_regs(void)
{
	struct user_regs_struct r;

	memset(&r, 0, sizeof(r));
	r.rip = SITE + 1;		/* just past the int3 */
	r.rsp = 0x7ffc00001000ULL;
	r.orig_rax = 0;			/* as if in a system call: must not restart */
	r.rax = 0x1234;
	return r;
}

/* jmp: only the PC moves, and the kernel may not restart a call over it. */
static void test_emulate_jmp_sets_the_pc(void **state)
{
	struct user_regs_struct r = trapped_regs();

	(void)state;
	x86_emulate_jmp(&r, 0x401000);
	assert_int_equal(r.rip, 0x401000);
	assert_int_equal(r.rsp, 0x7ffc00001000ULL);
	assert_int_equal(r.orig_rax, (unsigned long long)-1);
	assert_int_equal(r.rax, 0x1234);
}

/* push: the stack grows down by 8, and the caller is told where to write what. */
static void test_emulate_push_lowers_the_stack(void **state)
{
	struct user_regs_struct r = trapped_regs();
	struct x86_push p = x86_emulate_push(&r, 0xdeadbeef);

	(void)state;
	assert_int_equal(r.rsp, 0x7ffc00000ff8ULL);
	assert_int_equal(p.addr, 0x7ffc00000ff8ULL);
	assert_int_equal(p.value, 0xdeadbeef);
	assert_int_equal(r.rip, SITE + 1);
}

/* call: push the return address (site + 5), then jump; memory is the caller's to write. */
static void test_emulate_call_pushes_the_return_address_and_jumps(void **state)
{
	struct user_regs_struct r = trapped_regs();
	uint8_t b[16];
	struct lp_emulation e;
	struct x86_push p;

	(void)state;
	assert_int_equal(x86_encode_call_rel32(SITE, SITE - 0x800, b), 5);
	e = x86_decode_emulation(b, 5, SITE);
	p = x86_emulate_call(&r, SITE + e.len, e.target);
	assert_int_equal(r.rsp, 0x7ffc00000ff8ULL);
	assert_int_equal(p.addr, r.rsp);
	assert_int_equal(p.value, SITE + 5);
	assert_int_equal(r.rip, SITE - 0x800);
	assert_int_equal(r.orig_rax, (unsigned long long)-1);
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_endbr64_is_recognised_whole_and_only_whole),
		T(test_rel32_reach_ends_at_int32_bounds),
		T(test_jmp_rel32_bytes),
		T(test_jmp_and_call_rel32_at_the_edges_of_reach),
		T(test_call_rel32_bytes),
		T(test_jcc_rel32_bytes_and_reach),
		T(test_jmp_abs64_bytes),
		T(test_encode_jmp_chooses_the_shortest_form),
		T(test_decode_reads_back_what_is_encoded),
		T(test_decode_refuses_what_livepatch_does_not_write),
		T(test_decode_jmp_and_decode_call_keep_apart),
		T(test_decode_emulation_of_each_form),
		T(test_decode_emulation_parks_a_call_returning_inside_the_site),
		T(test_emulate_jmp_sets_the_pc),
		T(test_emulate_push_lowers_the_stack),
		T(test_emulate_call_pushes_the_return_address_and_jumps),
	};

	u_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
