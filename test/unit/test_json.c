/*
 * json: the streaming writer behind --json. Every output is compared as an exact
 * string and, wherever the writer promises valid JSON, also checked by a small
 * strict JSON parser (RFC 8259 grammar).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "json.h"

static struct json J;
static char *buf;
static size_t len;
static FILE *out;

static int open_buf(void **state)
{
	(void)state;
	buf = NULL;
	len = 0;
	out = open_memstream(&buf, &len);
	if (!out)
		return -1;
	json_init(&J, out);
	return 0;
}

static int close_buf(void **state)
{
	(void)state;
	if (out)
		fclose(out);
	out = NULL;
	free(buf);
	buf = NULL;
	return 0;
}

static const char *text(void)
{
	fflush(out);
	return buf;
}

/* ---- a strict validator: value, then only whitespace ---- */

static void ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static bool value(const char **p, int depth);

static bool string(const char **p)
{
	if (*(*p)++ != '"')
		return false;
	for (;;) {
		unsigned char c = (unsigned char)*(*p)++;
		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c == '\\') {
			c = (unsigned char)*(*p)++;
			if (c == 'u') {
				for (int i = 0; i < 4; i++)
					if (!strchr("0123456789abcdefABCDEF", **p) || !*(*p)++)
						return false;
			} else if (!c || !strchr("\"\\/bfnrt", c)) {
				return false;
			}
		}
	}
}

static bool number(const char **p)
{
	const char *s = *p;

	if (**p == '-')
		(*p)++;
	if (**p == '0')
		(*p)++;
	else if (**p >= '1' && **p <= '9')
		while (**p >= '0' && **p <= '9')
			(*p)++;
	else
		return false;
	if (**p == '.') {
		(*p)++;
		if (!(**p >= '0' && **p <= '9'))
			return false;
		while (**p >= '0' && **p <= '9')
			(*p)++;
	}
	if (**p == 'e' || **p == 'E') {
		(*p)++;
		if (**p == '+' || **p == '-')
			(*p)++;
		if (!(**p >= '0' && **p <= '9'))
			return false;
		while (**p >= '0' && **p <= '9')
			(*p)++;
	}
	return *p > s;
}

static bool members(const char **p, char close, int depth)
{
	(*p)++;
	ws(p);
	if (**p == close) {
		(*p)++;
		return true;
	}
	for (;;) {
		if (close == '}') {
			if (!string(p))
				return false;
			ws(p);
			if (*(*p)++ != ':')
				return false;
		}
		if (!value(p, depth + 1))
			return false;
		ws(p);
		char c = *(*p)++;
		if (c == close)
			return true;
		if (c != ',')
			return false;
	}
}

static bool value(const char **p, int depth)
{
	if (depth > 200)
		return false;
	ws(p);
	switch (**p) {
	case '{': return members(p, '}', depth);
	case '[': return members(p, ']', depth);
	case '"': return string(p);
	case 't': return !strncmp(*p, "true", 4) && (*p += 4);
	case 'f': return !strncmp(*p, "false", 5) && (*p += 5);
	case 'n': return !strncmp(*p, "null", 4) && (*p += 4);
	default: return number(p);
	}
}

static bool valid_json(const char *s)
{
	const char *p = s;

	if (!value(&p, 0))
		return false;
	ws(&p);
	return !*p;
}

#define assert_json(want)                                \
	do {                                             \
		const char *got_ = text();               \
		assert_string_equal(got_, (want));       \
		assert_true(valid_json(got_));           \
	} while (0)

/* ---- tests ---- */

/* The validator itself rejects what it must (so a pass below means something). */
static void test_validator_rejects_invalid(void **state)
{
	(void)state;
	assert_true(valid_json("{\"a\":[1,-2.5e3,true,null,\"\\u00e9\"]}\n"));
	assert_false(valid_json("{\"a\":1,}"));
	assert_false(valid_json("[1 2]"));
	assert_false(valid_json("{\"a\":nan}"));
	assert_false(valid_json("\"a\nb\""));
	assert_false(valid_json("[1][2]"));
}

/* Nested objects and arrays get commas exactly between siblings and one final newline. */
static void test_nested_objects_and_arrays(void **state)
{
	(void)state;
	json_open(&J, NULL, '{');
	json_str(&J, "status", "planned");
	json_open(&J, "sites", '[');
	json_open(&J, NULL, '{');
	json_hex(&J, "addr", 0x401004);
	json_uint(&J, "len", 5);
	json_close(&J, '}');
	json_open(&J, NULL, '{');
	json_open(&J, "bytes", '[');
	json_close(&J, ']');
	json_open(&J, "empty", '{');
	json_close(&J, '}');
	json_close(&J, '}');
	json_close(&J, ']');
	json_open(&J, "process", '{');
	json_int(&J, "pid", 42);
	json_bool(&J, "zombie", false);
	json_close(&J, '}');
	json_close(&J, '}');
	assert_json("{\"status\":\"planned\",\"sites\":[{\"addr\":\"0x401004\",\"len\":5},"
		    "{\"bytes\":[],\"empty\":{}}],\"process\":{\"pid\":42,\"zombie\":false}}\n");
}

/* Arrays of scalars inside arrays. */
static void test_arrays_of_arrays(void **state)
{
	(void)state;
	json_open(&J, NULL, '[');
	json_open(&J, NULL, '[');
	json_int(&J, NULL, 1);
	json_int(&J, NULL, 2);
	json_close(&J, ']');
	json_open(&J, NULL, '[');
	json_close(&J, ']');
	json_str(&J, NULL, "x");
	json_close(&J, ']');
	assert_json("[[1,2],[],\"x\"]\n");
}

/* Quotes and backslashes in values are escaped. */
static void test_escapes_quote_and_backslash(void **state)
{
	(void)state;
	json_open(&J, NULL, '{');
	json_str(&J, "path", "C:\\dir \"quoted\" \\\"");
	json_close(&J, '}');
	assert_json("{\"path\":\"C:\\\\dir \\\"quoted\\\" \\\\\\\"\"}\n");
}

/* Newline, tab and other control characters (1..0x1f) are escaped. */
static void test_escapes_control_characters(void **state)
{
	(void)state;
	json_open(&J, NULL, '{');
	json_str(&J, "msg", "a\nb\tc\rd\x01\x1f\b\f");
	json_close(&J, '}');
	assert_json("{\"msg\":\"a\\nb\\tc\\u000dd\\u0001\\u001f\\u0008\\u000c\"}\n");
}

/* Keys are escaped the same way as values. */
static void test_escapes_keys(void **state)
{
	(void)state;
	json_open(&J, NULL, '{');
	json_int(&J, "we\"ird\\\nkey", 1);
	json_close(&J, '}');
	assert_json("{\"we\\\"ird\\\\\\nkey\":1}\n");
}

/* Bytes above 0x7f (UTF-8) and DEL pass through unchanged. */
static void test_utf8_passes_through(void **state)
{
	(void)state;
	json_open(&J, NULL, '[');
	json_str(&J, NULL, "caf\xc3\xa9 \x7f");
	json_close(&J, ']');
	assert_json("[\"caf\xc3\xa9 \x7f\"]\n");
}

/* A NULL string is null. */
static void test_null_string(void **state)
{
	(void)state;
	json_open(&J, NULL, '{');
	json_str(&J, "tracer", NULL);
	json_close(&J, '}');
	assert_json("{\"tracer\":null}\n");
}

/* Integer extremes, hex strings, byte strings, booleans and doubles. */
static void test_scalars(void **state)
{
	const uint8_t b[3] = { 0xe9, 0x00, 0xff };

	(void)state;
	json_open(&J, NULL, '{');
	json_int(&J, "min", INT64_MIN);
	json_uint(&J, "max", UINT64_MAX);
	json_hex(&J, "hex", 0xdeadbeefcafeULL);
	json_bytes(&J, "bytes", b, 3);
	json_bytes(&J, "none", b, 0);
	json_bool(&J, "yes", true);
	json_double(&J, "ms", 1.5);
	json_double(&J, "neg", -0.25);
	json_close(&J, '}');
	assert_json("{\"min\":-9223372036854775808,\"max\":18446744073709551615,"
		    "\"hex\":\"0xdeadbeefcafe\",\"bytes\":\"e9 00 ff\",\"none\":\"\",\"yes\":true,"
		    "\"ms\":1.500,\"neg\":-0.250}\n");
}

/* A NaN or infinite double still gives valid JSON (null): JSON has neither. */
static void test_double_not_finite_is_null(void **state)
{
	(void)state;
	json_open(&J, NULL, '{');
	json_double(&J, "nan", NAN);
	json_double(&J, "inf", INFINITY);
	json_close(&J, '}');
	assert_json("{\"nan\":null,\"inf\":null}\n");
}

/*
 * The writer keeps one comma flag per nesting level in a fixed table; slot 0 is
 * outside any container, so this many nested containers have a slot of their own.
 * Deeper ones share the last slot. livepatch's own objects nest 3 deep.
 */
#define OWN_LEVELS ((int)(sizeof(J.need_comma) / sizeof(J.need_comma[0])) - 1)

/* @levels arrays, each after a number in the one around it: [0,[1,[],1],0] for 3. */
static void nest(int levels, bool number_innermost)
{
	json_open(&J, NULL, '[');
	for (int i = 0; i < levels - 1; i++) {
		json_int(&J, NULL, i);
		json_open(&J, NULL, '[');
	}
	if (number_innermost)
		json_int(&J, NULL, levels - 1);
	for (int i = levels - 2; i >= 0; i--) {
		json_close(&J, ']');
		json_int(&J, NULL, i);
	}
	json_close(&J, ']');
}

/* What nest() writes when every level has its own comma flag. */
static const char *nested_text(char *want, int levels, bool number_innermost)
{
	char *p = want + sprintf(want, "[");

	for (int i = 0; i < levels - 1; i++)
		p += sprintf(p, "%d,[", i);
	if (number_innermost)
		p += sprintf(p, "%d", levels - 1);
	for (int i = levels - 2; i >= 0; i--)
		p += sprintf(p, "],%d", i);
	sprintf(p, "]\n");
	return want;
}

/* Up to the last level with a slot of its own, the text is exact, empty arrays included. */
static void test_nesting_to_the_table_limit_is_exact(void **state)
{
	char want[1024];

	(void)state;
	nest(OWN_LEVELS, false);
	assert_json(nested_text(want, OWN_LEVELS, false));
}

/*
 * One level past the table, an empty array leaves the shared slot saying "no
 * element yet" to the level around it: the comma after it is lost. The depth is
 * still counted exactly: the brackets balance and the newline comes once, at the end.
 */
static void test_nesting_past_the_table_loses_the_comma_after_an_empty_array(void **state)
{
	char want[1024];

	(void)state;
	nest(OWN_LEVELS + 1, false);
	nested_text(want, OWN_LEVELS + 1, false);
	char *comma = strstr(want, "[]") + 2;
	memmove(comma, comma + 1, strlen(comma));
	assert_string_equal(text(), want);
	assert_ptr_equal(strchr(text(), '\n'), text() + strlen(text()) - 1);
}

/* Past the table, levels that are never empty share the last slot without a mistake. */
static void test_nesting_past_the_table_is_exact_without_empty_arrays(void **state)
{
	char want[1024];

	(void)state;
	nest(OWN_LEVELS + 8, true);
	assert_json(nested_text(want, OWN_LEVELS + 8, true));
}

#define T(f) cmocka_unit_test_setup_teardown(f, open_buf, close_buf)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_validator_rejects_invalid),
		T(test_nested_objects_and_arrays),
		T(test_arrays_of_arrays),
		T(test_escapes_quote_and_backslash),
		T(test_escapes_control_characters),
		T(test_escapes_keys),
		T(test_utf8_passes_through),
		T(test_null_string),
		T(test_scalars),
		T(test_double_not_finite_is_null),
		T(test_nesting_to_the_table_limit_is_exact),
		T(test_nesting_past_the_table_loses_the_comma_after_an_empty_array),
		T(test_nesting_past_the_table_is_exact_without_empty_arrays),
	};

	u_init();
	return cmocka_run_group_tests_name("json", tests, NULL, NULL) ? 1 : 0;
}
