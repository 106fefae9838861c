/*
 * patchobj: what a patch object is taken for, and every refusal with the fix it names
 * (docs/design.md §8). The objects are fixtures built by make (fixtures/patches/),
 * some mutated here byte by byte; the expected values come from the ELF as libelf or
 * sha256sum read it, not from patchobj.c.
 */
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util.h"
#include "link.h"
#include "patchobj.h"

#define REFUSED LP_ERR(LP_EXIT_SITE)

static uint8_t *read_fixture(const char *name, size_t *len)
{
	char rel[128];
	FILE *f;
	uint8_t *buf;
	long n;

	snprintf(rel, sizeof(rel), "patches/%s", name);
	f = fopen(u_fixture(rel, 0), "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int parse_fixture(const char *name, struct lp_patchobj *po, struct lp_diag *d)
{
	size_t len;
	uint8_t *b = read_fixture(name, &len);

	memset(d, 0, sizeof(*d));
	return patchobj_parse(po, b, len, name, d);
}

/* The file offset of section NAME's header in the ELF bytes B, as libelf finds it. */
static size_t shdr_offset(uint8_t *b, size_t len, const char *name)
{
	Elf *e = elf_memory((char *)b, len);
	GElf_Ehdr eh;
	size_t strndx, off = 0;
	Elf_Scn *scn = NULL;

	assert_non_null(e);
	assert_non_null(gelf_getehdr(e, &eh));
	assert_int_equal(elf_getshdrstrndx(e, &strndx), 0);
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		gelf_getshdr(scn, &sh);
		if (!strcmp(elf_strptr(e, strndx, sh.sh_name), name))
			off = eh.e_shoff + elf_ndxscn(scn) * sizeof(Elf64_Shdr);
	}
	elf_end(e);
	assert_true(off);
	return off;
}

static int find_sym(const struct lp_patchobj *po, const char *name)
{
	for (size_t i = 0; i < po->nsyms; i++)
		if (!strcmp(po->syms[i].name, name))
			return (int)i;
	return -1;
}

/* tiny.o: its sections, symbols and one call, as readelf shows them; sha256 as sha256sum. */
static void test_tiny_object_is_described_as_readelf_shows_it(void **state)
{
	struct lp_patchobj po;
	struct lp_diag d;
	char cmd[PATH_MAX + 32], want[80] = "", got[65];
	FILE *p;

	(void)state;
	assert_int_equal(parse_fixture("tiny.o", &po, &d), 0);
	assert_string_equal(po.name, "tiny.o");
	assert_int_equal(po.nsecs, 3);
	assert_string_equal(po.secs[0].name, ".text");
	assert_int_equal(po.secs[0].kind, LP_PSEC_TEXT);
	assert_int_equal(po.secs[0].size, 6);
	assert_int_equal(po.secs[0].bytes[0], 0xe8);
	assert_string_equal(po.secs[1].name, ".data");
	assert_int_equal(po.secs[1].kind, LP_PSEC_DATA);
	assert_int_equal(po.secs[2].kind, LP_PSEC_BSS);
	assert_null(po.secs[2].bytes);
	int f = find_sym(&po, "tiny"), x = find_sym(&po, "ext_func");
	assert_true(f > 0 && x > 0);
	assert_int_equal(po.syms[f].type, STT_FUNC);
	assert_int_equal(po.syms[f].psec, 0);
	assert_int_equal(po.syms[x].shndx, SHN_UNDEF);
	assert_int_equal(po.syms[x].psec, -1);
	assert_int_equal(po.nrels, 1);
	assert_int_equal(po.rels[0].type, R_X86_64_PLT32);
	assert_int_equal(po.rels[0].offset, 1);
	assert_int_equal(po.rels[0].addend, -4);
	assert_int_equal(po.rels[0].sym, x);
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", u_fixture("patches/tiny.o", 0));
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(want, sizeof(want), p));
	pclose(p);
	for (int i = 0; i < 32; i++)
		sprintf(got + 2 * i, "%02x", po.sha256[i]);
	assert_memory_equal(got, want, 64);
	patchobj_free(&po);
}

/* gcc's C patch: .eh_frame and its relocations are left out; .data.rel.ro is data. */
static void test_eh_frame_is_not_loaded_and_rel_ro_is_data(void **state)
{
	struct lp_patchobj po;
	struct lp_diag d;
	bool relro = false;

	(void)state;
	assert_int_equal(parse_fixture("patch.o", &po, &d), 0);
	for (size_t i = 0; i < po.nsecs; i++) {
		assert_string_not_equal(po.secs[i].name, ".eh_frame");
		assert_true(strncmp(po.secs[i].name, ".note", 5));
		if (!strncmp(po.secs[i].name, ".data.rel.ro", 12)) {
			assert_int_equal(po.secs[i].kind, LP_PSEC_DATA);
			relro = true;
		}
		if (!strncmp(po.secs[i].name, ".rodata", 7))
			assert_int_equal(po.secs[i].kind, LP_PSEC_RODATA);
	}
	assert_true(relro);
	for (size_t i = 0; i < po.nrels; i++)
		assert_true(po.rels[i].psec < po.nsecs);
	patchobj_free(&po);
}

/* .livepatch.bind: "symbol\0object\0" pairs become pins, in order. */
static void test_pins_come_from_livepatch_bind(void **state)
{
	struct lp_patchobj po;
	struct lp_diag d;

	(void)state;
	assert_int_equal(parse_fixture("bind.o", &po, &d), 0);
	assert_int_equal(po.npins, 2);
	assert_string_equal(po.pins[0].symbol, "getpid");
	assert_string_equal(po.pins[0].object, "libc.so.6");
	assert_string_equal(po.pins[1].symbol, "config_value");
	assert_string_equal(po.pins[1].object, "nginx");
	for (size_t i = 0; i < po.nsecs; i++)
		assert_string_not_equal(po.secs[i].name, ".livepatch.bind");
	patchobj_free(&po);
}

static void expect_refusal(const char *fixture, const char *n1, const char *n2)
{
	struct lp_patchobj po;
	struct lp_diag d;

	assert_int_equal(parse_fixture(fixture, &po, &d), REFUSED);
	assert_int_equal(d.code, LP_EXIT_SITE);
	assert_contains(d.msg, n1);
	if (n2)
		assert_contains(d.msg, n2);
	assert_null(po.bytes);	/* freed on refusal */
}

/* A linked library is refused (ET_DYN), naming the .o as what to give instead. */
static void test_shared_library_is_refused(void **state)
{
	size_t len;
	uint8_t *b;
	struct lp_patchobj po;
	struct lp_diag d = { 0 };
	FILE *f = fopen(u_fixture("libfixture.so", 0), "rb");

	(void)state;
	assert_non_null(f);
	b = malloc(1 << 20);
	len = fread(b, 1, 1 << 20, f);
	fclose(f);
	assert_int_equal(patchobj_parse(&po, b, len, "libfixture.so", &d), REFUSED);
	assert_contains(d.msg, "not a linked program or library");
}

/* Mutate tiny.o at OFF with N bytes of V, then parse it: the refusal names N1. */
static void expect_mutation_refused(size_t off, const void *v, size_t n, const char *n1)
{
	size_t len;
	uint8_t *b = read_fixture("tiny.o", &len);
	struct lp_patchobj po;
	struct lp_diag d = { 0 };

	memcpy(b + off, v, n);
	assert_int_equal(patchobj_parse(&po, b, len, "tiny.o", &d), REFUSED);
	assert_contains(d.msg, n1);
}

static void test_executable_is_refused(void **state)
{
	uint16_t t = ET_EXEC;

	(void)state;
	expect_mutation_refused(offsetof(Elf64_Ehdr, e_type), &t, 2, "the .o that cc -c makes");
}

static void test_other_machine_is_refused(void **state)
{
	uint16_t m = EM_AARCH64;

	(void)state;
	expect_mutation_refused(offsetof(Elf64_Ehdr, e_machine), &m, 2, "x86-64");
}

static void test_elf32_object_is_refused(void **state)
{
	(void)state;
	expect_refusal("tiny32.o", "ELF64 x86-64", "-m32");
}

static void test_sht_rel_is_refused(void **state)
{
	size_t len;
	uint8_t *b = read_fixture("tiny.o", &len);
	uint32_t rel = SHT_REL;
	size_t off = shdr_offset(b, len, ".rela.text") + offsetof(Elf64_Shdr, sh_type);

	(void)state;
	free(b);
	expect_mutation_refused(off, &rel, 4, "SHT_REL");
}

/* A section whose bytes would lie past the end of the file is never read. */
static void test_section_past_the_end_is_refused(void **state)
{
	size_t len;
	uint8_t *b = read_fixture("tiny.o", &len);
	uint64_t past = len + 16;
	size_t off = shdr_offset(b, len, ".text") + offsetof(Elf64_Shdr, sh_offset);

	(void)state;
	free(b);
	expect_mutation_refused(off, &past, 8, "outside the file");
}

/* Every truncation of an object is refused, none crashes (ASan watches the reads). */
static void test_every_truncation_is_refused(void **state)
{
	size_t len;
	uint8_t *whole = read_fixture("relocs.o", &len);

	(void)state;
	for (size_t n = 0; n < len; n++) {
		uint8_t *b = malloc(n ? n : 1);
		struct lp_patchobj po;
		struct lp_diag d = { 0 };
		memcpy(b, whole, n);
		assert_int_equal(patchobj_parse(&po, b, n, "relocs.o", &d), REFUSED);
	}
	free(whole);
}

/*
 * Bind every undefined symbol of an accepted object below 2 GiB, where even absolute
 * 32-bit references reach, and link it: true when linked; any refusal is fine.
 */
static bool link_if_accepted(struct lp_patchobj *po)
{
	bool linked = false;
	struct lp_binding *b = calloc(po->nsyms + 1, sizeof(*b));
	struct lp_diag d = { 0 };
	struct lp_link lk;

	assert_non_null(b);
	for (size_t i = 0; i < po->nsyms; i++)
		b[i] = (struct lp_binding){ .bound = true, .addr = 0x30000000ULL + 16 * i, .func = i & 1 };
	if (!link_prepare(&lk, po, &d)) {
		linked = !link_apply(&lk, 0x20000000ULL, b, &d);
		if (linked)
			assert_true(lk.image_len >= lk.size);
		link_free(&lk);
	}
	free(b);
	return linked;
}

/* Random byte flips in an object: refused or accepted and linked, never a bad access. */
static int corrupt_and_link(const char *fixture, int rounds)
{
	int linked = 0;
	size_t len;
	uint8_t *whole = read_fixture(fixture, &len);
	unsigned int seed = 12345;

	for (int i = 0; i < rounds; i++) {
		uint8_t *b = malloc(len);
		struct lp_patchobj po;
		struct lp_diag d = { 0 };
		memcpy(b, whole, len);
		for (int k = 0; k < 1 + i % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			b[(seed >> 8) % len] ^= (uint8_t)(1u << (seed >> 28) % 8);
		}
		if (!patchobj_parse(&po, b, len, fixture, &d)) {
			linked += link_if_accepted(&po);
			patchobj_free(&po);
		}
	}
	free(whole);
	return linked;
}

static void test_random_corruption_never_crashes(void **state)
{
	(void)state;
	int a = corrupt_and_link("relocs.o", 3000), b = corrupt_and_link("patch.o", 2000);

	print_message("linked after corruption: %d of 3000, %d of 2000\n", a, b);
	assert_true(a > 100 && b > 100);	/* the link was exercised too */
}

static void test_tls_section_is_refused(void **state)
{
	(void)state;
	expect_refusal("tls_sec.o", ".tdata", "thread-local variables cannot be loaded");
}

static void test_tls_relocation_is_refused(void **state)
{
	(void)state;
	expect_refusal("tls_rel.o", "R_X86_64_TPOFF32 at .text+0x4", "thread-local variables cannot be loaded");
}

static void test_init_array_is_refused(void **state)
{
	(void)state;
	expect_refusal("init_array.o", ".init_array", "constructors");
}

static void test_ctors_with_priority_are_refused(void **state)
{
	(void)state;
	expect_refusal("ctors.o", ".ctors.65535", "constructors");
}

static void test_ifunc_defined_in_patch_is_refused(void **state)
{
	(void)state;
	expect_refusal("ifunc.o", "pick", "IFUNC");
}

/* A relocation type link.c does not handle: named with its section and offset. */
static void test_unknown_relocation_names_type_section_and_offset(void **state)
{
	(void)state;
	expect_refusal("unknown_rel.o", "R_X86_64_16 at .data+0x8", "not supported");
}

/* An LTO object holds the compiler's IR, not code: gcc's slim ELF, clang's bitcode. */
static void test_lto_objects_are_refused(void **state)
{
	(void)state;
	expect_refusal("lto_gcc.o", "GCC LTO bytecode", "without -flto");
	expect_refusal("lto_clang.o", "LLVM bitcode", "without -flto");
}

static void test_relocation_names(void **state)
{
	(void)state;
	assert_string_equal(patchobj_rel_name(R_X86_64_PC32), "R_X86_64_PC32");
	assert_string_equal(patchobj_rel_name(R_X86_64_REX_GOTPCRELX), "R_X86_64_REX_GOTPCRELX");
	assert_null(patchobj_rel_name(200));
	assert_int_equal(patchobj_rel_width(R_X86_64_GOTPCREL64), 8);
	assert_int_equal(patchobj_rel_width(R_X86_64_32S), 4);
	assert_int_equal(patchobj_rel_width(R_X86_64_16), UINT_MAX);
}

/* A copy of tiny.o in a fresh directory, with MODE; its path in PATH. */
static void temp_copy(char *path, size_t size, mode_t mode)
{
	char dir[] = "/tmp/lp-patchobj-XXXXXX";

	assert_non_null(mkdtemp(dir));
	snprintf(path, size, "%s/tiny.o", dir);
	assert_int_equal(u_copy(u_fixture("patches/tiny.o", 0), path), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void remove_copy(const char *path)
{
	char dir[PATH_MAX];

	unlink(path);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	rmdir(dir);
}

static void expect_open_refused(const char *path, uid_t caller, const char *needle)
{
	struct lp_patchobj po;
	struct lp_diag d = { 0 };

	assert_int_equal(patchobj_open(&po, path, caller, &d), LP_ERR(LP_EXIT_USAGE));
	assert_contains(d.msg, needle);
}

/* A directory, a device, a FIFO (refused at once, not waited on), a missing file. */
static void test_open_refuses_what_is_not_a_regular_file(void **state)
{
	char dir[] = "/tmp/lp-patchobj-XXXXXX", fifo[64];

	(void)state;
	expect_open_refused("/tmp", 0, "not a regular file");
	expect_open_refused("/dev/null", 0, "not a regular file");
	expect_open_refused("/nonexistent/patch.o", 0, "cannot open");
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo.o", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_open_refused(fifo, 0, "not a regular file");
	unlink(fifo);
	rmdir(dir);
}

static void test_open_refuses_a_file_others_can_write(void **state)
{
	char path[PATH_MAX];

	(void)state;
	temp_copy(path, sizeof(path), 0666);
	expect_open_refused(path, 0, "chmod go-w");
	remove_copy(path);
}

/* A file over LP_PATCH_MAX_BYTES is refused before it is read (a sparse one here). */
static void test_open_refuses_a_file_over_the_limit(void **state)
{
	char path[PATH_MAX];

	(void)state;
	temp_copy(path, sizeof(path), 0644);
	assert_int_equal(truncate(path, (off_t)LP_PATCH_MAX_BYTES + 1), 0);
	expect_open_refused(path, 0, "larger than 64 MiB");
	remove_copy(path);
}

/* Owned by root or by the caller, as sudo wants its files: another owner is refused. */
static void test_open_checks_the_owner_against_the_caller(void **state)
{
	char path[PATH_MAX];
	struct lp_patchobj po;
	struct lp_diag d = { 0 };

	(void)state;
	temp_copy(path, sizeof(path), 0644);
	if (chown(path, 12345, 12345)) {
		remove_copy(path);
		skip();		/* not root: the owner cannot be changed */
	}
	expect_open_refused(path, 0, "owned by uid 12345");
	assert_int_equal(patchobj_open(&po, path, 12345, &d), 0);
	assert_string_equal(po.name, "tiny.o");
	assert_int_equal(po.nsecs, 3);
	patchobj_free(&po);
	remove_copy(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_object_is_described_as_readelf_shows_it),
		cmocka_unit_test(test_eh_frame_is_not_loaded_and_rel_ro_is_data),
		cmocka_unit_test(test_pins_come_from_livepatch_bind),
		cmocka_unit_test(test_shared_library_is_refused),
		cmocka_unit_test(test_executable_is_refused),
		cmocka_unit_test(test_other_machine_is_refused),
		cmocka_unit_test(test_elf32_object_is_refused),
		cmocka_unit_test(test_sht_rel_is_refused),
		cmocka_unit_test(test_section_past_the_end_is_refused),
		cmocka_unit_test(test_every_truncation_is_refused),
		cmocka_unit_test(test_random_corruption_never_crashes),
		cmocka_unit_test(test_tls_section_is_refused),
		cmocka_unit_test(test_tls_relocation_is_refused),
		cmocka_unit_test(test_init_array_is_refused),
		cmocka_unit_test(test_ctors_with_priority_are_refused),
		cmocka_unit_test(test_ifunc_defined_in_patch_is_refused),
		cmocka_unit_test(test_unknown_relocation_names_type_section_and_offset),
		cmocka_unit_test(test_lto_objects_are_refused),
		cmocka_unit_test(test_relocation_names),
		cmocka_unit_test(test_open_refuses_what_is_not_a_regular_file),
		cmocka_unit_test(test_open_refuses_a_file_others_can_write),
		cmocka_unit_test(test_open_refuses_a_file_over_the_limit),
		cmocka_unit_test(test_open_checks_the_owner_against_the_caller),
	};

	u_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
