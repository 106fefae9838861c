/*
 * resolve: names and addresses of a live process turned into functions. The
 * group starts fixture_prog (fixtures/) as a child and kills it at the end;
 * expected addresses come from the fixture ELF files (libelf, util.c) plus the
 * load base that /proc/PID/maps shows, independently of src/elfsym.c.
 * The "stripped" group runs a copy whose libfixture.so has no .symtab, so names
 * and versions come from .dynsym + .gnu.version / .gnu.version_d; the "deleted"
 * group runs copies that are unlinked once started.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "elfsym.h"
#include "plan.h"
#include "resolve.h"

/* The running fixture of the current group. */
static struct {
	pid_t pid;
	const char *prog;	/* the program's path, as lp_object.path has it */
	const char *lib;	/* the mapped libfixture.so, likewise */
	const char *prog_syms;	/* the files the expected addresses and bytes come from */
	const char *lib_syms;	/* (the unstripped, undeleted fixtures) */
	bool deleted;		/* the maps show both paths with " (deleted)" */
	char tmpdir[64];
} G;

static struct lp_proc P;
static struct lp_diag D;
static struct lp_symbol S;

static int start_group(const char *prog, const char *lib)
{
	memset(&G, 0, sizeof(G));
	G.prog = u_fixture(prog, 0);
	G.lib = u_fixture(lib, 1);
	G.lib_syms = u_fixture("libfixture.so", 2);
	G.prog_syms = u_fixture("fixture_prog", 3);
	G.pid = u_start(G.prog, G.lib);
	if (G.pid < 0) {
		fprintf(stderr, "# cannot start %s (make unit-build)\n", G.prog);
		return -1;
	}
	return 0;
}

static int start_fixture(void **state)
{
	(void)state;
	return start_group("fixture_prog", "libfixture.so");
}

static int start_stripped(void **state)
{
	(void)state;
	return start_group("stripped/fixture_prog", "stripped/libfixture.so");
}

/*
 * Copies of the program and library in a directory whose name has a space, run,
 * then unlinked: the maps say " (deleted)", symbols and bytes come through
 * /proc/PID/map_files (or the process's root).
 */
static int start_deleted(void **state)
{
	static char prog[128], lib[128];

	(void)state;
	memset(&G, 0, sizeof(G));
	snprintf(G.tmpdir, sizeof(G.tmpdir), "/tmp/lp unit.XXXXXX");
	if (!mkdtemp(G.tmpdir))
		return -1;
	G.prog_syms = u_fixture("fixture_prog", 3);
	G.lib_syms = u_fixture("libfixture.so", 2);
	snprintf(prog, sizeof(prog), "%s/fixture_prog", G.tmpdir);
	snprintf(lib, sizeof(lib), "%s/libfixture.so", G.tmpdir);
	G.prog = prog;
	G.lib = lib;
	if (u_copy(G.prog_syms, prog) || u_copy(G.lib_syms, lib) || (G.pid = u_start(prog, lib)) < 0) {
		fprintf(stderr, "# cannot copy and start %s (make unit-build)\n", G.prog_syms);
		G.pid = 0;
	}
	unlink(prog);
	unlink(lib);
	rmdir(G.tmpdir);
	G.deleted = true;
	return G.pid > 0 ? 0 : -1;
}

static int stop_fixture(void **state)
{
	(void)state;
	u_stop(G.pid);
	G.pid = 0;
	return 0;
}

/* Load base of PATH (one of G's) in the fixture. */
static uint64_t map_base(const char *path)
{
	char shown[300];

	snprintf(shown, sizeof(shown), "%s%s", path, G.deleted ? " (deleted)" : "");
	return u_map_base(G.pid, shown);
}

static int open_proc(void **state)
{
	(void)state;
	memset(&D, 0, sizeof(D));
	memset(&S, 0, sizeof(S));
	if (proc_open(&P, G.pid, &D)) {
		fprintf(stderr, "# proc_open(%d): %s\n", G.pid, D.msg);
		return -1;
	}
	return 0;
}

static int close_proc(void **state)
{
	(void)state;
	elfsym_release(&P);
	proc_close(&P);
	return 0;
}

/* Runtime address of NAME (as .symtab spells it) in the program or the library. */
static uint64_t prog_addr(const char *name, struct u_sym *s)
{
	uint64_t base = map_base(G.prog);

	assert_true(base != 0);
	assert_int_equal(u_elf_sym(G.prog_syms, name, s), 0);
	return base - u_elf_first_vaddr(G.prog_syms) + s->value;
}

static uint64_t lib_addr(const char *name, struct u_sym *s)
{
	uint64_t base = map_base(G.lib);

	assert_true(base != 0);
	assert_int_equal(u_elf_sym(G.lib_syms, name, s), 0);
	return base - u_elf_first_vaddr(G.lib_syms) + s->value;
}

static int resolve(const char *spec)
{
	return resolve_function(&P, spec, "function", &S, &D);
}

/* Expect a refusal with LP_EXIT_SYMBOL whose message contains @why. */
static void expect_symbol_error(const char *spec, const char *why)
{
	int ret = resolve(spec);

	if (ret != LP_ERR(LP_EXIT_SYMBOL))
		print_error("resolve(%s) = %d, addr 0x%" PRIx64 ", msg: %s\n", spec, ret, S.addr, D.msg);
	assert_int_equal(ret, LP_ERR(LP_EXIT_SYMBOL));
	assert_int_equal(D.code, LP_EXIT_SYMBOL);
	assert_int_equal(lp_exit_code(ret), LP_EXIT_SYMBOL);
	assert_contains(D.msg, why);
}

static void expect_prog_func(const char *spec, const char *name)
{
	struct u_sym s;
	uint64_t want = prog_addr(name, &s);

	assert_int_equal(resolve(spec), 0);
	assert_int_equal(S.addr, want);
	assert_int_equal(S.size, s.size);
	assert_int_equal(S.offset, 0);
	assert_int_equal(S.kind, LP_SYM_FUNC);
	assert_string_equal(S.name, name);
	assert_non_null(S.obj);
	assert_string_equal(S.obj->path, G.prog);
}

static void expect_lib_func(const char *spec, const char *elf_name, const char *version, bool dflt)
{
	struct u_sym s;
	uint64_t want = lib_addr(elf_name, &s);
	int ret = resolve(spec);

	if (ret)
		print_error("resolve(%s): %s\n", spec, D.msg);
	assert_int_equal(ret, 0);
	assert_int_equal(S.addr, want);
	assert_int_equal(S.size, s.size);
	assert_int_equal(S.kind, LP_SYM_FUNC);
	assert_string_equal(S.obj->path, G.lib);
	if (version) {
		assert_non_null(S.version);
		assert_string_equal(S.version, version);
		assert_int_equal(S.default_version, dflt);
	}
}

/* ---- names ---- */

/* A plain name resolves to base + st_value with the symbol's size. */
static void test_plain_name_found(void **state)
{
	(void)state;
	expect_prog_func("f_endbr", "f_endbr");
}

/* A function of the shared library resolves with the library's own load bias. */
static void test_library_function_found(void **state)
{
	(void)state;
	expect_lib_func("f_lib", "f_lib", NULL, true);
}

/* OBJECT:SYMBOL with the object's base name. */
static void test_qualified_by_base_name(void **state)
{
	(void)state;
	expect_prog_func("fixture_prog:f_endbr", "f_endbr");
}

/* OBJECT:SYMBOL with the object's full path. */
static void test_qualified_by_full_path(void **state)
{
	char spec[4200];

	(void)state;
	snprintf(spec, sizeof(spec), "%s:f_endbr", G.prog);
	expect_prog_func(spec, "f_endbr");
}

/* A name that is not defined: LP_EXIT_SYMBOL, and the close name is suggested. */
static void test_not_found_suggests_close_name(void **state)
{
	(void)state;
	expect_symbol_error("f_endbx", "did you mean");
	assert_contains(D.msg, "f_endbr");
}

/* A name defined in the program and the library: LP_EXIT_SYMBOL listing both objects. */
static void test_ambiguous_lists_both_objects(void **state)
{
	(void)state;
	expect_symbol_error("f_dup", "ambiguous");
	assert_contains(D.msg, "fixture_prog:f_dup");
	assert_contains(D.msg, "libfixture.so:f_dup");
	assert_contains(D.msg, "2 definitions");
	assert_contains(D.msg, "qualify it as OBJECT:SYMBOL");
}

/* Qualifying an ambiguous name picks that object's definition. */
static void test_qualified_dup_resolves(void **state)
{
	(void)state;
	expect_prog_func("fixture_prog:f_dup", "f_dup");
	memset(&S, 0, sizeof(S));
	expect_lib_func("libfixture.so:f_dup", "f_dup", NULL, true);
}

/* A data object is refused as "not a function". */
static void test_data_object_refused(void **state)
{
	(void)state;
	expect_symbol_error("d_object", "data object");
}

/* A GNU IFUNC symbol is refused and the message says IFUNC. */
static void test_ifunc_refused(void **state)
{
	(void)state;
	expect_symbol_error("f_ifunc", "IFUNC");
}

/* f_ver resolves to the default version f_ver@@VER_2. */
static void test_version_plain_is_default(void **state)
{
	(void)state;
	expect_lib_func("f_ver", "f_ver@@VER_2", "VER_2", true);
}

/* f_ver@VER_1 resolves to the older, non-default definition. */
static void test_version_explicit_old(void **state)
{
	(void)state;
	expect_lib_func("f_ver@VER_1", "f_ver@VER_1", "VER_1", false);
}

/* f_ver@@VER_2 resolves to the default definition. */
static void test_version_explicit_default(void **state)
{
	(void)state;
	expect_lib_func("f_ver@@VER_2", "f_ver@@VER_2", "VER_2", true);
}

/*
 * f_multi@VER_1 and f_multi@@VER_2 name one function: the default version is the one
 * reported, whichever the table lists first. The first 8 lookups scan the table in
 * order and later ones go through the hash in the other order, so both orders are
 * met (before, one of them lost the default and reported f_multi@VER_1).
 */
static void test_version_alias_keeps_default(void **state)
{
	(void)state;
	for (int i = 0; i < 10; i++)
		expect_lib_func("f_multi", "f_multi@@VER_2", "VER_2", true);
}

/* A version that does not exist: not found. */
static void test_version_unknown_not_found(void **state)
{
	(void)state;
	expect_symbol_error("f_ver@VER_9", "not found");
}

/* An OBJECT qualifier that names no mapped object: LP_EXIT_SYMBOL. */
static void test_unknown_object_refused(void **state)
{
	(void)state;
	expect_symbol_error("libnosuch.so:f_endbr", "no object named 'libnosuch.so'");
}

/* A name looked up only in the object given: f_endbr is not in libfixture.so. */
static void test_qualified_lookup_stays_in_object(void **state)
{
	(void)state;
	expect_symbol_error("libfixture.so:f_endbr", "not found in libfixture.so");
}

/* ---- addresses ---- */

/* 0xADDRESS of a function's start: that function, offset 0, full size. */
static void test_address_of_function_start(void **state)
{
	struct u_sym s;
	uint64_t a = prog_addr("f_long", &s);
	char spec[32];

	(void)state;
	snprintf(spec, sizeof(spec), "0x%" PRIx64, a);
	assert_int_equal(resolve(spec), 0);
	assert_string_equal(S.name, "f_long");
	assert_int_equal(S.addr, a);
	assert_int_equal(S.offset, 0);
	assert_int_equal(S.size, s.size);
}

/* 0xADDRESS inside a function: addr is that address, offset set, size reduced by it. */
static void test_address_inside_function(void **state)
{
	struct u_sym s;
	uint64_t a = prog_addr("f_long", &s);
	char spec[32];

	(void)state;
	snprintf(spec, sizeof(spec), "0x%" PRIx64, a + 7);
	assert_int_equal(resolve(spec), 0);
	assert_string_equal(S.name, "f_long");
	assert_int_equal(S.addr, a + 7);
	assert_int_equal(S.offset, 7);
	assert_int_equal(S.size, s.size - 7);
}

/* 0xADDRESS of data (d_object) is not code: LP_EXIT_SYMBOL. */
static void test_address_of_data_refused(void **state)
{
	struct u_sym s;
	char spec[32];

	(void)state;
	snprintf(spec, sizeof(spec), "0x%" PRIx64, prog_addr("d_object", &s));
	expect_symbol_error(spec, "not in an executable mapping");
}

/* 0xADDRESS of a GNU IFUNC's resolver is refused like the name (docs/design.md §1, code 4). */
static void test_address_of_ifunc_refused(void **state)
{
	struct u_sym s;
	char spec[32];

	(void)state;
	snprintf(spec, sizeof(spec), "0x%" PRIx64, prog_addr("f_ifunc", &s));
	expect_symbol_error(spec, "IFUNC");
}

/* A malformed address is a usage error. */
static void test_address_malformed_usage_error(void **state)
{
	(void)state;
	assert_int_equal(resolve("0x12zz"), LP_ERR(LP_EXIT_USAGE));
	assert_int_equal(D.code, LP_EXIT_USAGE);
}

/* resolve_symbolize() names the function containing an address, with offset 0. */
static void test_symbolize_inside_function(void **state)
{
	struct u_sym s;
	uint64_t a = prog_addr("f_rip_in", &s);

	(void)state;
	assert_int_equal(resolve_symbolize(&P, a + s.size - 1, &S), 0);
	assert_string_equal(S.name, "f_rip_in");
	assert_int_equal(S.addr, a);
	assert_int_equal(S.offset, 0);
	assert_int_equal(resolve_symbolize(&P, 0x10, &S), -ENOENT);
}

/* ---- the process and its memory ---- */

/* proc_open lists the program and the library, with the comm and one thread. */
static void test_proc_open_reads_objects(void **state)
{
	bool prog = false, lib = false;

	(void)state;
	assert_int_equal(P.pid, G.pid);
	assert_string_equal(P.comm, "fixture_prog");
	assert_int_equal(P.threads, 1);
	assert_true(P.mem_fd >= 0);
	for (size_t i = 0; i < P.nobjs; i++) {
		prog |= !strcmp(P.objs[i].path, G.prog) && !strcmp(P.objs[i].name, "fixture_prog");
		lib |= !strcmp(P.objs[i].path, G.lib) && !strcmp(P.objs[i].name, "libfixture.so");
	}
	assert_true(prog);
	assert_true(lib);
}

/* Deleted objects are flagged, their paths shown without " (deleted)". */
static void test_deleted_objects_flagged(void **state)
{
	size_t found = 0;

	(void)state;
	for (size_t i = 0; i < P.nobjs; i++)
		if (!strcmp(P.objs[i].path, G.prog) || !strcmp(P.objs[i].path, G.lib)) {
			assert_true(P.objs[i].deleted);
			found++;
		}
	assert_int_equal(found, 2);
}

/* proc_read and object_read_at return the function's bytes as the ELF file has them. */
static void test_proc_read_matches_file(void **state)
{
	struct u_sym s;
	uint8_t *want = u_elf_func_bytes(G.prog_syms, "f_long", &s);
	uint8_t got[64];
	uint64_t a = prog_addr("f_long", &s);
	const struct lp_object *o;

	(void)state;
	assert_non_null(want);
	assert_true(s.size <= sizeof(got));
	assert_int_equal(proc_read(&P, a, got, s.size), 0);
	assert_memory_equal(got, want, s.size);
	memset(got, 0, sizeof(got));
	o = proc_object_at(&P, a, NULL);
	assert_non_null(o);
	assert_int_equal(object_read_at(o, a, got, s.size), 0);
	assert_memory_equal(got, want, s.size);
	free(want);
}

/* plan_build on the live process: one site after the endbr64, old bytes from memory. */
static void test_plan_build_live(void **state)
{
	struct lp_symbol f, g;
	struct lp_plan plan;
	struct u_sym s;
	uint8_t *bytes = u_elf_func_bytes(G.prog_syms, "f_endbr", &s);

	(void)state;
	assert_non_null(bytes);
	assert_int_equal(resolve_function(&P, "f_endbr", "function", &f, &D), 0);
	assert_int_equal(resolve_function(&P, "f_long", "target", &g, &D), 0);
	assert_int_equal(plan_build(&P, &f, &g, &plan, &D), 0);
	assert_int_equal(plan.state, LP_PLAN_WRITE);
	assert_int_equal(plan.nsites, 1);
	assert_int_equal(plan.sites[0].addr, f.addr + 4);
	assert_int_equal(plan.sites[0].emul_new.target, g.addr);
	assert_memory_equal(plan.sites[0].old_bytes, bytes + 4, plan.sites[0].len);
	plan_free(&plan);
	free(bytes);
}

/* plan_build of a revert of an unpatched live function: not patched, no site. */
static void test_plan_build_revert_unpatched(void **state)
{
	struct lp_symbol f;
	struct lp_plan plan;

	(void)state;
	assert_int_equal(resolve_function(&P, "f_long", "function", &f, &D), 0);
	assert_int_equal(plan_build(&P, &f, NULL, &plan, &D), 0);
	assert_int_equal(plan.state, LP_PLAN_NOT_PATCHED);
	assert_int_equal(plan.nsites, 0);
	plan_free(&plan);
}

#define T(f) cmocka_unit_test_setup_teardown(f, open_proc, close_proc)
/* The same test, against the stripped library, under its own name ("stripped_..."). */
#define TS(f) { "stripped_" #f, f, open_proc, close_proc, NULL }
#define TD(f) { "deleted_" #f, f, open_proc, close_proc, NULL }

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plain_name_found),
		T(test_library_function_found),
		T(test_qualified_by_base_name),
		T(test_qualified_by_full_path),
		T(test_not_found_suggests_close_name),
		T(test_ambiguous_lists_both_objects),
		T(test_qualified_dup_resolves),
		T(test_data_object_refused),
		T(test_ifunc_refused),
		T(test_version_plain_is_default),
		T(test_version_explicit_old),
		T(test_version_explicit_default),
		T(test_version_alias_keeps_default),
		T(test_version_unknown_not_found),
		T(test_unknown_object_refused),
		T(test_qualified_lookup_stays_in_object),
		T(test_address_of_function_start),
		T(test_address_inside_function),
		T(test_address_of_data_refused),
		T(test_address_of_ifunc_refused),
		T(test_address_malformed_usage_error),
		T(test_symbolize_inside_function),
		T(test_proc_open_reads_objects),
		T(test_proc_read_matches_file),
		T(test_plan_build_live),
		T(test_plan_build_revert_unpatched),
	};
	/* Same names and versions with libfixture.so stripped: .dynsym and its version tables. */
	const struct CMUnitTest stripped[] = {
		TS(test_library_function_found),
		TS(test_ambiguous_lists_both_objects),
		TS(test_version_plain_is_default),
		TS(test_version_explicit_old),
		TS(test_version_explicit_default),
		TS(test_version_alias_keeps_default),
		TS(test_version_unknown_not_found),
	};
	/* Program and library deleted after start, from a path with a space. */
	const struct CMUnitTest deleted[] = {
		T(test_deleted_objects_flagged),
		TD(test_plain_name_found),
		TD(test_qualified_by_full_path),
		TD(test_version_plain_is_default),
		TD(test_proc_read_matches_file),
		TD(test_plan_build_live),
	};
	int failed;

	u_init();
	failed = cmocka_run_group_tests_name("resolve", tests, start_fixture, stop_fixture);
	failed += cmocka_run_group_tests_name("resolve_stripped", stripped, start_stripped, stop_fixture);
	failed += cmocka_run_group_tests_name("resolve_deleted", deleted, start_deleted, stop_fixture);
	return failed ? 1 : 0;
}
