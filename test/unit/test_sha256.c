/*
 * sha256: the FIPS 180-4 example vectors, and lengths around the padding's block
 * boundary (55, 56, 63, 64 bytes), where a one- or two-block tail is chosen.
 */
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "sha256.h"

/* Both implementations give @want (the accelerated one where this CPU has it). */
static void check(const void *data, size_t len, const char *want)
{
	uint8_t d[32];
	char hex[65];

	lp_sha256(data, len, d);
	lp_sha256_hex(d, hex);
	assert_string_equal(hex, want);
	lp_sha256_portable(data, len, d);
	lp_sha256_hex(d, hex);
	assert_string_equal(hex, want);
}

/* The CPU's SHA extensions and portable C agree on every length up to 1100 bytes. */
static void test_accelerated_matches_portable(void **state)
{
	uint8_t buf[1100], a[32], b[32];

	(void)state;
	print_message("SHA extensions %s on this CPU\n", lp_sha256_accelerated() ? "used" : "absent: portable only");
	srand(42);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (size_t len = 0; len <= sizeof(buf); len++) {
		lp_sha256(buf, len, a);
		lp_sha256_portable(buf, len, b);
		assert_memory_equal(a, b, 32);
	}
}

/* The empty message: one block of padding only. */
static void test_empty_message(void **state)
{
	(void)state;
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* "abc": FIPS 180-4's one-block example. */
static void test_abc(void **state)
{
	(void)state;
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* The 448-bit message: 56 bytes, so its length needs a second block. */
static void test_448_bit_message_takes_two_blocks(void **state)
{
	static const char m[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	(void)state;
	assert_int_equal(strlen(m), 56);
	check(m, 56, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a': many full blocks and a length above 2^16 bits. */
static void test_one_million_a(void **state)
{
	char *m = malloc(1000000);

	(void)state;
	assert_non_null(m);
	memset(m, 'a', 1000000);
	check(m, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(m);
}

/* The 896-bit example: two full blocks of message, then a padding block. */
static void test_896_bit_message(void **state)
{
	static const char m[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
				"hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

	(void)state;
	check(m, 112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* 55, 63 and 64 bytes: the last length with a one-block tail, and the two after. */
static void test_lengths_at_the_padding_boundary(void **state)
{
	char m[64];

	(void)state;
	memset(m, 'x', sizeof(m));
	check(m, 55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
	check(m, 63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2");
	check(m, 64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accelerated_matches_portable),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_abc),
		cmocka_unit_test(test_448_bit_message_takes_two_blocks),
		cmocka_unit_test(test_one_million_a),
		cmocka_unit_test(test_896_bit_message),
		cmocka_unit_test(test_lengths_at_the_padding_boundary),
	};

	u_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
