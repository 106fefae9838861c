/*
 * verify: the scan for `int $3` (cd 03) that refuses --verify (docs/design.md §6).
 * Only an instruction of its own counts: the same two bytes inside another
 * instruction, or where no function says where to decode from, are not refused.
 */
#include "util.h"
#include "verify.h"

#define TEXT 0x7f0012340000ULL

/* A function that executes `int $3`: found at its own address. */
static void test_a_real_int_3_is_found(void **state)
{
	/* push %rbp; mov %rsp,%rbp; int $3; pop %rbp; ret */
	static const uint8_t code[] = { 0x55, 0x48, 0x89, 0xe5, 0xcd, 0x03, 0x5d, 0xc3 };
	const struct lp_fn_range fn = { TEXT, TEXT + sizeof(code) };
	uint64_t at = 1;

	(void)state;
	assert_int_equal(verify_find_int3(code, sizeof(code), TEXT, &fn, 1, &at), 0);
	assert_int_equal(at, TEXT + 4);
}

/* cd 03 as an immediate: `mov $0x03cd, %eax` and a movabs whose bytes go on past the pair. */
static void test_cd_03_inside_an_immediate_is_not_an_int_3(void **state)
{
	static const uint8_t mov[] = { 0xb8, 0xcd, 0x03, 0x00, 0x00, 0xc3 };
	/* movabs $0x1122334403cd0000, %rax; ret: the immediate goes on past the pair */
	static const uint8_t movabs[] = { 0x48, 0xb8, 0x00, 0x00, 0xcd, 0x03, 0x44, 0x33, 0x22,
					  0x11, 0xc3 };
	const struct lp_fn_range f1 = { TEXT, TEXT + sizeof(mov) };
	const struct lp_fn_range f2 = { TEXT, TEXT + sizeof(movabs) };
	uint64_t at = 1;

	(void)state;
	assert_int_equal(verify_find_int3(mov, sizeof(mov), TEXT, &f1, 1, &at), 0);
	assert_int_equal(at, 0);
	at = 1;
	assert_int_equal(verify_find_int3(movabs, sizeof(movabs), TEXT, &f2, 1, &at), 0);
	assert_int_equal(at, 0);
}

/* An immediate first, then a real one further on in the same function: the second. */
static void test_the_real_one_after_an_immediate_in_the_same_function(void **state)
{
	/* mov $0x03cd,%eax; nop; int $3; ret */
	static const uint8_t code[] = { 0xb8, 0xcd, 0x03, 0x00, 0x00, 0x90, 0xcd, 0x03, 0xc3 };
	const struct lp_fn_range fn = { TEXT, TEXT + sizeof(code) };
	uint64_t at = 0;

	(void)state;
	assert_int_equal(verify_find_int3(code, sizeof(code), TEXT, &fn, 1, &at), 0);
	assert_int_equal(at, TEXT + 6);
}

/*
 * No function holds the pair (a stripped object, padding between functions), or the
 * one that does starts before the bytes given: nothing to decode from, not refused.
 */
static void test_a_pair_in_no_function_is_not_refused(void **state)
{
	static const uint8_t code[] = { 0xc3, 0xcd, 0x03, 0xc3, 0x90, 0x90, 0x90, 0xc3 };
	const struct lp_fn_range other = { TEXT + 4, TEXT + 8 };
	const struct lp_fn_range before = { TEXT - 16, TEXT + 4 };
	uint64_t at = 1;

	(void)state;
	assert_int_equal(verify_find_int3(code, sizeof(code), TEXT, NULL, 0, &at), 0);
	assert_int_equal(at, 0);
	at = 1;
	assert_int_equal(verify_find_int3(code, sizeof(code), TEXT, &other, 1, &at), 0);
	assert_int_equal(at, 0);
	at = 1;
	assert_int_equal(verify_find_int3(code, sizeof(code), TEXT, &before, 1, &at), 0);
	assert_int_equal(at, 0);
}

/* A cd at the very end has no second byte: not a pair, read past nothing. */
static void test_a_lone_cd_at_the_end_is_nothing(void **state)
{
	static const uint8_t code[] = { 0x90, 0x90, 0xcd };
	const struct lp_fn_range fn = { TEXT, TEXT + sizeof(code) };
	uint64_t at = 1;

	(void)state;
	assert_int_equal(verify_find_int3(code, sizeof(code), TEXT, &fn, 1, &at), 0);
	assert_int_equal(at, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_real_int_3_is_found),
		cmocka_unit_test(test_cd_03_inside_an_immediate_is_not_an_int_3),
		cmocka_unit_test(test_the_real_one_after_an_immediate_in_the_same_function),
		cmocka_unit_test(test_a_pair_in_no_function_is_not_refused),
		cmocka_unit_test(test_a_lone_cd_at_the_end_is_nothing),
	};

	u_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
