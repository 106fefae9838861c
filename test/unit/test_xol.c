/*
 * xol: the relocation of displaced instructions into an out-of-line copy, byte by
 * byte (docs/design.md §5). Each case places the copy far from the original, so
 * that a relative operand left unadjusted would point elsewhere.
 */
#include <errno.h>
#include <string.h>
#include "util.h"
#include "xol.h"

#define FROM 0x555555554100ULL
#define TO   0x555565554040ULL	/* 256 MiB above: in reach, far enough to tell */

static struct lp_xol_copy C;
static char why[160];

static int32_t rel32_at(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* The copy ends with jmp rel32 to FROM + len. */
static void assert_jumps_back(unsigned int len)
{
	unsigned int at = C.len - 5;

	assert_int_equal(C.code[at], 0xe9);
	assert_int_equal(TO + at + 5 + (int64_t)rel32_at(C.code + at + 1), FROM + len);
	assert_int_equal(C.map[len], at);
}

/* push $35; pop %rax; syscall: copied as is; every boundary maps to the same offset. */
static void test_plain_instructions_are_copied_with_their_boundaries(void **state)
{
	static const uint8_t in[] = { 0x6a, 0x23, 0x58, 0x0f, 0x05 };

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), 0);
	assert_memory_equal(C.code, in, sizeof(in));
	assert_int_equal(C.len, sizeof(in) + 5);
	assert_int_equal(C.map[0], 0);
	assert_int_equal(C.map[2], 2);
	assert_int_equal(C.map[3], 3);
	assert_int_equal(C.map[1], 0xff);	/* inside push: not an instruction start */
	assert_int_equal(C.map[4], 0xff);
	assert_jumps_back(sizeof(in));
}

/* A thread just past the final syscall maps to the copy's jump back, 2 bytes after it. */
static void test_xol_map_places_a_pc_at_the_same_instruction(void **state)
{
	static const uint8_t in[] = { 0x6a, 0x23, 0x58, 0x0f, 0x05 };
	uint64_t pc;

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), 0);
	assert_true(xol_map(&C, FROM, TO, FROM + 3, &pc));
	assert_int_equal(pc, TO + 3);
	assert_true(xol_map(&C, FROM, TO, FROM + 5, &pc));
	assert_int_equal(pc, TO + 5);
	assert_false(xol_map(&C, FROM, TO, FROM + 1, &pc));
	assert_false(xol_map(&C, FROM, TO, FROM - 1, &pc));
}

/* lock incq 0x100(%rip): the displacement moves by FROM - TO, the target stays. */
static void test_rip_relative_operand_keeps_its_target(void **state)
{
	static const uint8_t in[] = { 0xf0, 0x48, 0xff, 0x05, 0x00, 0x01, 0x00, 0x00 };
	uint64_t target = FROM + sizeof(in) + 0x100;

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), 0);
	assert_memory_equal(C.code, in, 4);
	assert_int_equal(TO + sizeof(in) + (int64_t)rel32_at(C.code + 4), target);
	assert_jumps_back(sizeof(in));
}

/* jmp rel8 becomes jmp rel32 to the same place; later offsets shift by 3. */
static void test_short_jump_becomes_rel32(void **state)
{
	static const uint8_t in[] = { 0xeb, 0x10, 0x90, 0x90, 0x90 };

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), 0);
	assert_int_equal(C.code[0], 0xe9);
	assert_int_equal(TO + 5 + (int64_t)rel32_at(C.code + 1), FROM + 2 + 0x10);
	assert_int_equal(C.map[2], 5);
	assert_int_equal(C.map[4], 7);
	assert_jumps_back(sizeof(in));
}

/* jne rel8 becomes 0f 85 rel32; call rel32 keeps its callee. */
static void test_conditional_jump_and_call_keep_their_targets(void **state)
{
	static const uint8_t in[] = { 0x75, 0x20, 0xe8, 0x00, 0x10, 0x00, 0x00 };

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), 0);
	assert_int_equal(C.code[0], 0x0f);
	assert_int_equal(C.code[1], 0x85);
	assert_int_equal(TO + 6 + (int64_t)rel32_at(C.code + 2), FROM + 2 + 0x20);
	assert_int_equal(C.code[6], 0xe8);
	assert_int_equal(TO + 11 + (int64_t)rel32_at(C.code + 7), FROM + 7 + 0x1000);
	assert_int_equal(C.map[2], 6);
	assert_jumps_back(sizeof(in));
}

/* loop has no rel32 form: refused, with the instruction named. */
static void test_loop_cannot_run_out_of_line(void **state)
{
	static const uint8_t in[] = { 0xe2, 0x10, 0x90, 0x90, 0x90 };

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "loop"));
}

/* A copy more than 2 GiB away cannot reach the data or jump back. */
static void test_copy_out_of_reach_is_refused(void **state)
{
	static const uint8_t rip[] = { 0xf0, 0x48, 0xff, 0x05, 0x00, 0x01, 0x00, 0x00 };
	static const uint8_t plain[] = { 0x6a, 0x23, 0x58, 0x0f, 0x05 };
	uint64_t far = FROM + (1ULL << 33);

	(void)state;
	assert_int_equal(xol_relocate(rip, sizeof(rip), FROM, far, &C, why, sizeof(why)), -ERANGE);
	assert_int_equal(xol_relocate(plain, sizeof(plain), FROM, far, &C, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "reach"));
}

/* A truncated instruction is not silently copied. */
static void test_truncated_instruction_is_refused(void **state)
{
	static const uint8_t in[] = { 0x6a, 0x23, 0x58, 0xe9, 0x00 };

	(void)state;
	assert_int_equal(xol_relocate(in, sizeof(in), FROM, TO, &C, why, sizeof(why)), -ERANGE);
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plain_instructions_are_copied_with_their_boundaries),
		T(test_xol_map_places_a_pc_at_the_same_instruction),
		T(test_rip_relative_operand_keeps_its_target),
		T(test_short_jump_becomes_rel32),
		T(test_conditional_jump_and_call_keep_their_targets),
		T(test_loop_cannot_run_out_of_line),
		T(test_copy_out_of_reach_is_refused),
		T(test_truncated_instruction_is_refused),
	};

	u_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
