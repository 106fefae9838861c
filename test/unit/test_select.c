/*
 * select and shared symbol tables (docs/design.md §12): two copies of fixture_prog run
 * as children, found by --exe, --all and --all-build-id, left out by --exclude; and one
 * symbol table serving both processes, each symbol at its own process's address (ASLR
 * gives them different load bases), checked against the ELF file read with libelf.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "audit.h"
#include "elfsym.h"
#include "resolve.h"
#include "select.h"

static pid_t A, B;
static const char *PROG, *LIB;

static int start_two(void **state)
{
	(void)state;
	PROG = u_fixture("fixture_prog", 0);
	LIB = u_fixture("libfixture.so", 1);
	A = u_start(PROG, LIB);
	B = u_start(PROG, LIB);
	if (A < 0 || B < 0) {
		fprintf(stderr, "# cannot start %s (make unit-build)\n", PROG);
		return -1;
	}
	return 0;
}

static int stop_two(void **state)
{
	(void)state;
	u_stop(A);
	u_stop(B);
	return 0;
}

static bool has(const struct lp_selection *s, pid_t pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].pid == pid && !s->v[i].not_selected)
			return true;
	return false;
}

static void test_build_id_syntax(void **state)
{
	char out[132];

	(void)state;
	assert_int_equal(select_parse_build_id("ABCDEF0123", out, sizeof(out)), 0);
	assert_string_equal(out, "abcdef0123");
	assert_int_equal(select_parse_build_id("abc", out, sizeof(out)), -EINVAL);	/* odd */
	assert_int_equal(select_parse_build_id("", out, sizeof(out)), -EINVAL);
	assert_int_equal(select_parse_build_id("zz", out, sizeof(out)), -EINVAL);
	assert_int_equal(select_parse_build_id("0x12", out, sizeof(out)), -EINVAL);
	assert_int_equal(select_parse_build_id("1234", out, 4), -EINVAL);	/* no room */
}

static void test_by_exe_and_exclude(void **state)
{
	struct lp_selector s = { .exe = PROG };
	struct lp_selection sel;
	struct lp_diag d = { 0 };

	(void)state;
	assert_int_equal(select_processes(&s, &sel, &d), 0);
	assert_true(has(&sel, A));
	assert_true(has(&sel, B));
	assert_false(has(&sel, getpid()));	/* never livepatch itself */
	assert_true(sel.scanned >= sel.n);
	for (size_t i = 0; i < sel.n; i++)
		if (sel.v[i].pid == A)
			assert_int_equal(sel.v[i].start, select_start_time(A));
	select_free(&sel);

	pid_t ex[] = { A };
	s.excludes = ex;
	s.nexcludes = 1;
	assert_int_equal(select_processes(&s, &sel, &d), 0);
	assert_false(has(&sel, A));
	assert_true(has(&sel, B));
	select_free(&sel);
}

static void test_by_object_and_build_id(void **state)
{
	struct lp_selection sel;
	struct lp_diag d = { 0 };
	char id[132], upper[132];

	(void)state;
	struct lp_selector s = { .all = LIB };
	assert_int_equal(select_processes(&s, &sel, &d), 0);
	assert_true(has(&sel, A) && has(&sel, B));
	select_free(&sel);

	int fd = open(LIB, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(audit_build_id(fd, id, sizeof(id)), 0);
	close(fd);
	for (size_t i = 0; i <= strlen(id); i++)
		upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
	s = (struct lp_selector){ .build_id = upper, .exe = PROG };
	assert_int_equal(select_processes(&s, &sel, &d), 0);
	assert_true(has(&sel, A) && has(&sel, B));
	select_free(&sel);

	s = (struct lp_selector){ .build_id = "00112233445566778899aabbccddeeff00112233" };
	assert_int_equal(select_processes(&s, &sel, &d), 0);
	assert_false(has(&sel, A) || has(&sel, B));
	select_free(&sel);
}

static void test_bad_input(void **state)
{
	struct lp_selection sel;
	struct lp_diag d = { 0 };

	(void)state;
	struct lp_selector s = { .all = "/nonexistent/libnothing.so" };
	assert_int_equal(select_processes(&s, &sel, &d), LP_ERR(LP_EXIT_USAGE));
	assert_non_null(strstr(d.msg, "--all /nonexistent/libnothing.so"));
	s = (struct lp_selector){ .exe = "/proc" };
	d = (struct lp_diag){ 0 };
	assert_int_equal(select_processes(&s, &sel, &d), LP_ERR(LP_EXIT_USAGE));
	assert_non_null(strstr(d.msg, "not a regular file"));
	s = (struct lp_selector){ .build_id = "xyz" };
	d = (struct lp_diag){ 0 };
	assert_int_equal(select_processes(&s, &sel, &d), LP_ERR(LP_EXIT_USAGE));
}

static void test_given_pids(void **state)
{
	pid_t pids[] = { B, A, B };
	struct lp_selector s = { .pids = pids, .npids = 3 };
	struct lp_selection sel;
	struct lp_diag d = { 0 };

	(void)state;
	assert_int_equal(select_processes(&s, &sel, &d), 0);
	assert_int_equal(sel.n, 2);	/* in order, once each */
	assert_int_equal(sel.v[0].pid, B);
	assert_int_equal(sel.v[1].pid, A);
	assert_string_equal(sel.v[0].comm, "fixture_prog");
	assert_false(select_gone(A, sel.v[1].start));
	assert_true(select_gone(A, sel.v[1].start + 1));	/* another process with that pid */
	select_free(&sel);
}

/* Runtime address of @name (.symtab spelling) of the library in @pid. */
static uint64_t lib_addr(pid_t pid, const char *name)
{
	struct u_sym s;

	assert_int_equal(u_elf_sym(LIB, name, &s), 0);
	return u_map_base(pid, LIB) - u_elf_first_vaddr(LIB) + s.value;
}

static void test_shared_tables(void **state)
{
	struct lp_proc pa, pb;
	struct lp_diag d = { 0 };
	struct lp_symbol fa, fb, at;

	(void)state;
	assert_true(u_map_base(A, LIB) != u_map_base(B, LIB));	/* ASLR: two biases */
	elfsym_share(true);
	assert_int_equal(proc_open(&pa, A, &d), 0);
	assert_int_equal(proc_open(&pb, B, &d), 0);
	for (int round = 0; round < 2; round++) {	/* a scan, then the hash */
		for (int k = 0; k < 4; k++) {
			assert_int_equal(resolve_function(&pa, "libfixture.so:f_lib", "function", &fa, &d), 0);
			assert_int_equal(resolve_function(&pb, "libfixture.so:f_lib", "function", &fb, &d), 0);
		}
		assert_int_equal(fa.addr, lib_addr(A, "f_lib"));
		assert_int_equal(fb.addr, lib_addr(B, "f_lib"));
		assert_ptr_equal(fa.obj->symtab, fb.obj->symtab);	/* one table for both */
		assert_int_equal(resolve_symbolize(&pb, fb.addr + 1, &at), 0);
		assert_string_equal(at.name, "f_lib");
		assert_int_equal(at.addr, fb.addr);
		assert_ptr_equal(at.obj, fb.obj);
	}
	elfsym_release(&pa);	/* leaves the shared table to elfsym_share(false) */
	elfsym_release(&pb);
	proc_close(&pa);
	proc_close(&pb);
	elfsym_share(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_id_syntax),
		cmocka_unit_test(test_by_exe_and_exclude),
		cmocka_unit_test(test_by_object_and_build_id),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_given_pids),
		cmocka_unit_test(test_shared_tables),
	};

	u_init();
	return cmocka_run_group_tests_name("select", tests, start_two, stop_two) ? 1 : 0;
}
