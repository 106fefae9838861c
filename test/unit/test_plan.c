/*
 * plan: site analysis and encoding (docs/design.md §3), on byte buffers. The bytes of
 * each shape come from the fixture program (fixtures/shapes.S) read with libelf;
 * every function is placed at BASE so that no site crosses a page by accident.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "plan.h"

#define BASE 0x7f1234560100ULL

struct fn {
	const char *name;
	uint8_t *bytes;
	uint64_t size;
};

static struct fn fns[] = {
	{ "f_endbr", NULL, 0 }, { "f_noendbr", NULL, 0 }, { "f_small", NULL, 0 },
	{ "f_branch_in", NULL, 0 }, { "f_loop_site", NULL, 0 }, { "f_call_in", NULL, 0 }, { "f_call_short", NULL, 0 },
	{ "f_long", NULL, 0 }, { "f_boundary", NULL, 0 }, { "f_rip_in", NULL, 0 },
};

/* One plan_site() call: its inputs (live and file owned here) and outputs. */
struct ctx {
	struct lp_request rq;
	uint8_t *live, *file;
	struct lp_site site;
	struct lp_plan plan;
	struct lp_diag d;
	int ret;
};

static struct ctx C;

static int load_fixtures(void **state)
{
	const char *prog = u_fixture("fixture_prog", 0);

	(void)state;
	for (size_t i = 0; i < LP_ARRAY_SIZE(fns); i++) {
		struct u_sym s;
		fns[i].bytes = u_elf_func_bytes(prog, fns[i].name, &s);
		if (!fns[i].bytes) {
			fprintf(stderr, "# cannot read %s from %s (make unit-build)\n", fns[i].name, prog);
			return -1;
		}
		fns[i].size = s.size;
	}
	return 0;
}

static int free_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < LP_ARRAY_SIZE(fns); i++) {
		free(fns[i].bytes);
		fns[i].bytes = NULL;
	}
	return 0;
}

static int reset_ctx(void **state)
{
	(void)state;
	free(C.live);
	free(C.file);
	memset(&C, 0, sizeof(C));
	return 0;
}

/* Set up C for NAME at @start, unmodified (live == file), patched towards @target. */
static void mk_at(const char *name, uint64_t start, uint64_t target)
{
	const struct fn *f = NULL;

	for (size_t i = 0; i < LP_ARRAY_SIZE(fns); i++)
		if (!strcmp(fns[i].name, name))
			f = &fns[i];
	assert_non_null(f);
	reset_ctx(NULL);
	/* Exactly the function's size: ASan sees any read past the end. */
	C.live = malloc(f->size);
	C.file = malloc(f->size);
	assert_non_null(C.live);
	assert_non_null(C.file);
	memcpy(C.live, f->bytes, f->size);
	memcpy(C.file, f->bytes, f->size);
	C.rq = (struct lp_request){
		.start = start, .end = start + f->size, .entry = start, .target = target,
		.live = C.live, .file = C.file, .name = name,
	};
}

static void mk(const char *name, uint64_t target)
{
	mk_at(name, BASE, target);
}

static int run(void)
{
	C.ret = plan_site(&C.rq, &C.site, &C.plan, &C.d);
	return C.ret;
}

/* Expect a refusal with LP_EXIT_SITE whose message contains @why. */
static void expect_refused(const char *why)
{
	assert_int_equal(run(), LP_ERR(LP_EXIT_SITE));
	assert_int_equal(C.d.code, LP_EXIT_SITE);
	assert_contains(C.d.msg, why);
}

/* The test's own encoders, independent of src/x86.c. */
static void enc_rel32(uint8_t *p, uint64_t site, uint64_t target)
{
	int64_t rel = (int64_t)(target - (site + 5));

	p[0] = 0xe9;
	for (int i = 0; i < 4; i++)
		p[1 + i] = (uint8_t)((uint64_t)rel >> (8 * i));
}

static void enc_abs64(uint8_t *p, uint64_t target)
{
	static const uint8_t head[6] = { 0xff, 0x25, 0, 0, 0, 0 };

	memcpy(p, head, 6);
	for (int i = 0; i < 8; i++)
		p[6 + i] = (uint8_t)(target >> (8 * i));
}

/* ---- site and endbr64 ---- */

/* A leading endbr64 stays: the site is start + 4 and `endbr` is set. */
static void test_endbr64_kept_site_after_it(void **state)
{
	(void)state;
	mk("f_endbr", BASE + 0x10000);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
	assert_true(C.site.endbr);
	assert_int_equal(C.site.addr, BASE + 4);
	assert_memory_equal(C.site.old_bytes, C.file + 4, C.site.len);
}

/* Without endbr64 the site is the function's first byte. */
static void test_no_endbr64_site_at_start(void **state)
{
	(void)state;
	mk("f_noendbr", BASE + 0x10000);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
	assert_false(C.site.endbr);
	assert_int_equal(C.site.addr, BASE);
	assert_memory_equal(C.site.old_bytes, C.file, 5);
}

/* An entry given by address (not the start) is the site itself, even after an endbr64. */
static void test_entry_by_address_is_the_site(void **state)
{
	(void)state;
	mk("f_long", BASE + 0x10000);
	C.rq.entry = BASE + 7;		/* after endbr64 (4) and mov (3) */
	assert_int_equal(run(), 0);
	assert_int_equal(C.site.addr, BASE + 7);
	assert_false(C.site.endbr);
}

/* An entry that is not an instruction boundary is refused. */
static void test_entry_not_on_boundary_refused(void **state)
{
	(void)state;
	mk("f_long", BASE + 0x10000);
	C.rq.entry = BASE + 5;		/* inside the 3-byte mov at +4 */
	expect_refused("not an instruction boundary");
}

/* ---- forms ---- */

/*
 * A near forward target gets jmp rel32: e9 + (target - (site + 5)), 5 bytes, emulated as
 * jmp; rolled back, a trap parks until the original first byte is back.
 */
static void test_near_target_jmp_rel32(void **state)
{
	uint8_t want[5];

	(void)state;
	mk("f_endbr", BASE + 0x12345);
	assert_int_equal(run(), 0);
	enc_rel32(want, BASE + 4, BASE + 0x12345);
	assert_int_equal(C.site.form, LP_FORM_JMP_REL32);
	assert_int_equal(C.site.len, 5);
	assert_memory_equal(C.site.new_bytes, want, 5);
	assert_int_equal(C.site.emul_new.kind, LP_EMUL_JMP);
	assert_int_equal(C.site.emul_new.target, BASE + 0x12345);
	assert_int_equal(C.site.emul_old.kind, LP_EMUL_PARK);	/* roll-back: the prologue */
	assert_int_equal(C.site.emul_old.target, BASE + 4);
	assert_false(C.plan.repoint);
}

/* A near backward target gets a negative rel32. */
static void test_near_backward_target_jmp_rel32(void **state)
{
	const uint8_t want[5] = { 0xe9, 0xfb, 0xff, 0xfe, 0xff };	/* -0x10005 */

	(void)state;
	mk("f_endbr", BASE + 4 - 0x10000);
	assert_int_equal(run(), 0);
	assert_int_equal(C.site.form, LP_FORM_JMP_REL32);
	assert_memory_equal(C.site.new_bytes, want, 5);
}

/* A target more than 2 GiB away gets ff 25 00000000 + the 8-byte address (14 bytes). */
static void test_far_target_jmp_abs64(void **state)
{
	const uint64_t target = BASE + 0x100000000ULL;
	uint8_t want[14];

	(void)state;
	mk("f_long", target);
	assert_int_equal(run(), 0);
	enc_abs64(want, target);
	assert_int_equal(C.site.form, LP_FORM_JMP_ABS64);
	assert_int_equal(C.site.len, 14);
	assert_memory_equal(C.site.new_bytes, want, 14);
	assert_memory_equal(C.site.old_bytes, C.file + 4, 14);
	assert_int_equal(C.site.emul_new.target, target);
	assert_int_equal(C.site.emul_new.kind, LP_EMUL_JMP);
	assert_int_equal(C.site.emul_new.len, 14);
}

/* rel32 is used up to exactly INT32_MAX / INT32_MIN displacement, abs64 one byte beyond. */
static void test_rel32_limits_exact(void **state)
{
	const uint64_t site = BASE + 4;

	(void)state;
	mk("f_long", site + 5 + 0x7fffffffULL);
	assert_int_equal(run(), 0);
	assert_int_equal(C.site.form, LP_FORM_JMP_REL32);
	mk("f_long", site + 5 + 0x80000000ULL);
	assert_int_equal(run(), 0);
	assert_int_equal(C.site.form, LP_FORM_JMP_ABS64);
	mk("f_long", site + 5 - 0x80000000ULL);
	assert_int_equal(run(), 0);
	assert_int_equal(C.site.form, LP_FORM_JMP_REL32);
	mk("f_long", site + 5 - 0x80000001ULL);
	assert_int_equal(run(), 0);
	assert_int_equal(C.site.form, LP_FORM_JMP_ABS64);
}

/* A function smaller than the 5-byte jump (f_small: 3 bytes after endbr64) is refused. */
static void test_too_small_refused(void **state)
{
	(void)state;
	mk("f_small", BASE + 0x10000);
	expect_refused("too small");
	assert_contains(C.d.msg, "f_small");
}

/* A far target needs 14 bytes: f_endbr (11 bytes after endbr64) is refused. */
static void test_far_target_small_function_refused(void **state)
{
	(void)state;
	mk("f_endbr", BASE + 0x100000000ULL);
	expect_refused("too small");
	assert_contains(C.d.msg, "needs 14");
}

/* ---- displaced range ---- */

/* The displaced range ends on an instruction boundary: f_boundary displaces its 7-byte mov, writes 5. */
static void test_displaced_range_whole_instructions(void **state)
{
	(void)state;
	mk("f_boundary", BASE + 0x10000);
	assert_int_equal(run(), 0);
	assert_string_equal(C.site.displaced, "mov rax, 1");
	assert_int_equal(C.site.len, 5);
	assert_int_equal(C.site.new_bytes[0], 0xe9);
	assert_memory_equal(C.site.old_bytes, C.file + 4, 5);
}

/* Every instruction that overlaps the jump is listed (f_endbr: two 3-byte instructions). */
static void test_displaced_lists_every_instruction(void **state)
{
	(void)state;
	mk("f_endbr", BASE + 0x10000);
	assert_int_equal(run(), 0);
	assert_string_equal(C.site.displaced, "mov rax, rdi; add rax, rsi");
}

/* ---- refusals by analysis ---- */

/* A later jne into the interior of the displaced range (site + 2) is refused, naming it. */
static void test_branch_into_range_refused(void **state)
{
	(void)state;
	mk("f_branch_in", BASE + 0x10000);
	expect_refused("branches or points to f_branch_in+0x6");
	assert_contains(C.d.msg, "jne");
}

/* A branch to the site's first byte is fine: the new jump sits there. */
static void test_branch_to_site_start_allowed(void **state)
{
	(void)state;
	mk("f_loop_site", BASE + 0x10000);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
}

/* A call whose return address lands inside the displaced range is refused. */
static void test_call_in_range_refused(void **state)
{
	(void)state;
	mk("f_call_short", BASE + 0x10000);
	expect_refused("a call at f_call_short+0x4");
	assert_contains(C.d.msg, "return into them");
}

/* A call that is the last displaced instruction returns past the jump: accepted (docs/design.md §3). */
static void test_call_ending_range_allowed(void **state)
{
	(void)state;
	mk("f_call_in", BASE + 0x10000);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
	assert_contains(C.site.displaced, "call");
	assert_int_equal(C.site.displaced_len, 5);
}

/* A rip-relative lea pointing inside the displaced range (site + 3) is refused. */
static void test_rip_relative_into_range_refused(void **state)
{
	(void)state;
	mk("f_rip_in", BASE + 0x10000);
	expect_refused("points to f_rip_in+0x7");
	assert_contains(C.d.msg, "lea");
}

/* Bytes capstone cannot decode inside the function are refused (branches cannot be ruled out). */
static void test_undecodable_function_refused(void **state)
{
	(void)state;
	mk("f_long", BASE + 0x10000);
	C.file[C.rq.end - C.rq.start - 1] = 0x06;	/* invalid in 64-bit mode, instead of ret */
	C.live[C.rq.end - C.rq.start - 1] = 0x06;
	expect_refused("cannot decode f_long at +0x1c");
}

/* A site whose bytes would cross a page boundary is refused. */
static void test_site_crossing_page_refused(void **state)
{
	(void)state;
	mk_at("f_endbr", 0x7f1234560ffaULL, 0x7f1234580000ULL);	/* site at ...ffe */
	expect_refused("crosses a page boundary");
}

/* A target inside the bytes to be replaced (site + 2) is refused. */
static void test_target_inside_replaced_bytes_refused(void **state)
{
	(void)state;
	mk("f_endbr", BASE + 4 + 2);
	expect_refused("target lies inside");
}

/* A target equal to the site (first replaced byte) is refused: jmp rel32 -5 jumps to itself. */
static void test_target_at_site_refused(void **state)
{
	(void)state;
	mk("f_noendbr", BASE);
	expect_refused("target lies inside");
}

/* ---- live bytes: already, repoint, foreign, revert ---- */

/* Live bytes already jumping (rel32) to the same target: LP_PLAN_ALREADY, prev_target set. */
static void test_already_applied_same_target(void **state)
{
	(void)state;
	mk("f_endbr", BASE + 0x20000);
	enc_rel32(C.live + 4, BASE + 4, BASE + 0x20000);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_ALREADY);
	assert_int_equal(C.plan.prev_target, BASE + 0x20000);
}

/* Live bytes already holding the 14-byte jump to the same far target: LP_PLAN_ALREADY. */
static void test_already_applied_abs64(void **state)
{
	const uint64_t far = BASE + 0x300000000ULL;

	(void)state;
	mk("f_long", far);
	enc_abs64(C.live + 4, far);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_ALREADY);
	assert_int_equal(C.plan.prev_target, far);
}

/*
 * Live bytes jumping elsewhere: re-point (WRITE, repoint, prev_target = old target); a
 * roll-back emulates the old jump.
 */
static void test_repoint_other_target(void **state)
{
	uint8_t want[5], was[5];

	(void)state;
	mk("f_endbr", BASE + 0x30000);
	enc_rel32(was, BASE + 4, BASE + 0x20000);
	memcpy(C.live + 4, was, 5);
	assert_int_equal(run(), 0);
	enc_rel32(want, BASE + 4, BASE + 0x30000);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
	assert_true(C.plan.repoint);
	assert_int_equal(C.plan.prev_target, BASE + 0x20000);
	assert_int_equal(C.site.len, 5);
	assert_memory_equal(C.site.new_bytes, want, 5);
	assert_memory_equal(C.site.old_bytes, was, 5);
	assert_int_equal(C.site.emul_new.kind, LP_EMUL_JMP);
	assert_int_equal(C.site.emul_new.target, BASE + 0x30000);
	assert_int_equal(C.site.emul_old.kind, LP_EMUL_JMP);
	assert_int_equal(C.site.emul_old.target, BASE + 0x20000);
}

/* Re-pointing a 14-byte jump to a near target writes 14 bytes: rel32 + the file's bytes behind it. */
static void test_repoint_abs64_to_rel32_restores_tail(void **state)
{
	uint8_t was[14], want[14];

	(void)state;
	mk("f_long", BASE + 0x30000);
	enc_abs64(was, BASE + 0x500000000ULL);
	memcpy(C.live + 4, was, 14);
	assert_int_equal(run(), 0);
	memcpy(want, C.file + 4, 14);
	enc_rel32(want, BASE + 4, BASE + 0x30000);
	assert_true(C.plan.repoint);
	assert_int_equal(C.plan.prev_target, BASE + 0x500000000ULL);
	assert_int_equal(C.site.len, 14);
	assert_memory_equal(C.site.new_bytes, want, 14);
	assert_memory_equal(C.site.old_bytes, was, 14);
	assert_int_equal(C.site.emul_new.kind, LP_EMUL_JMP);
	assert_int_equal(C.site.emul_new.len, 5);
	assert_int_equal(C.site.emul_old.kind, LP_EMUL_JMP);
	assert_int_equal(C.site.emul_old.target, BASE + 0x500000000ULL);
	assert_int_equal(C.site.emul_old.len, 14);
}

/* An int3 (0xcc) at the site is a foreign modification: refused, naming the breakpoint. */
static void test_int3_at_site_refused(void **state)
{
	(void)state;
	mk("f_endbr", BASE + 0x10000);
	C.live[4] = 0xcc;
	expect_refused("int3");
	assert_contains(C.d.msg, "+0x4");
}

/* A changed byte outside the site (not a jump of ours) is refused as foreign too. */
static void test_foreign_change_outside_site_refused(void **state)
{
	(void)state;
	mk("f_long", BASE + 0x10000);
	enc_rel32(C.live + 4, BASE + 4, BASE + 0x20000);	/* ours ... */
	C.live[0x14] ^= 0xff;					/* ... and someone else's */
	expect_refused("differ from its file");
}

/* Revert of a patched function: new_bytes are the file's, emulation parks, prev_target known. */
static void test_revert_patched_restores_file_bytes(void **state)
{
	uint8_t jmp[5];

	(void)state;
	mk("f_endbr", 0);
	C.rq.revert = true;
	enc_rel32(jmp, BASE + 4, BASE + 0x20000);
	memcpy(C.live + 4, jmp, 5);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
	assert_true(C.plan.revert);
	assert_false(C.plan.repoint);
	assert_int_equal(C.plan.prev_target, BASE + 0x20000);
	assert_int_equal(C.site.addr, BASE + 4);
	assert_int_equal(C.site.len, 5);
	assert_int_equal(C.site.form, LP_FORM_ORIGINAL);
	assert_int_equal(C.site.emul_new.kind, LP_EMUL_PARK);
	assert_int_equal(C.site.emul_new.target, BASE + 4);
	assert_int_equal(C.site.emul_old.kind, LP_EMUL_JMP);	/* roll-back: the jump again */
	assert_int_equal(C.site.emul_old.target, BASE + 0x20000);
	assert_memory_equal(C.site.new_bytes, C.file + 4, 5);
	assert_memory_equal(C.site.old_bytes, jmp, 5);
}

/* Revert of a 14-byte jump restores all 14 file bytes. */
static void test_revert_abs64_restores_14_bytes(void **state)
{
	uint8_t jmp[14];

	(void)state;
	mk("f_long", 0);
	C.rq.revert = true;
	enc_abs64(jmp, BASE + 0x500000000ULL);
	memcpy(C.live + 4, jmp, 14);
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_WRITE);
	assert_int_equal(C.site.len, 14);
	assert_memory_equal(C.site.new_bytes, C.file + 4, 14);
	assert_memory_equal(C.site.old_bytes, jmp, 14);
	assert_int_equal(C.plan.prev_target, BASE + 0x500000000ULL);
}

/* Revert of an unpatched function: LP_PLAN_NOT_PATCHED, success. */
static void test_revert_unpatched_not_patched(void **state)
{
	(void)state;
	mk("f_endbr", 0);
	C.rq.revert = true;
	assert_int_equal(run(), 0);
	assert_int_equal(C.plan.state, LP_PLAN_NOT_PATCHED);
}

/* ---- plan_find_site ---- */

#define NSITES 1000
#define SITE_ADDR(i) (0x555555554000ULL + (uint64_t)(i) * 0x40)
#define SITE_LEN(i) ((i) % 2 ? 14u : 5u)

static struct lp_plan P;

static int make_sites(void **state)
{
	(void)state;
	memset(&P, 0, sizeof(P));
	P.sites = calloc(NSITES, sizeof(*P.sites));
	if (!P.sites)
		return -1;
	P.nsites = NSITES;
	for (size_t i = 0; i < NSITES; i++) {
		P.sites[i].addr = SITE_ADDR(i);
		P.sites[i].len = SITE_LEN(i);
	}
	return 0;
}

static int free_sites(void **state)
{
	(void)state;
	plan_free(&P);
	return 0;
}

/* The first byte of every one of 1000 sites finds that site. */
static void test_find_site_first_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSITES; i++)
		assert_ptr_equal(plan_find_site(&P, SITE_ADDR(i)), &P.sites[i]);
}

/* The last byte of every site finds that site. */
static void test_find_site_last_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSITES; i++)
		assert_ptr_equal(plan_find_site(&P, SITE_ADDR(i) + SITE_LEN(i) - 1), &P.sites[i]);
}

/* Addresses between sites (just past one, just before the next) find nothing. */
static void test_find_site_miss_between(void **state)
{
	(void)state;
	for (size_t i = 0; i + 1 < NSITES; i++) {
		assert_null(plan_find_site(&P, SITE_ADDR(i) + SITE_LEN(i)));
		assert_null(plan_find_site(&P, SITE_ADDR(i + 1) - 1));
	}
}

/* Addresses before the first and after the last site (and an empty plan) find nothing. */
static void test_find_site_miss_outside(void **state)
{
	struct lp_plan empty = { .nsites = 0 };

	(void)state;
	assert_null(plan_find_site(&P, 0));
	assert_null(plan_find_site(&P, SITE_ADDR(0) - 1));
	assert_null(plan_find_site(&P, SITE_ADDR(NSITES - 1) + SITE_LEN(NSITES - 1)));
	assert_null(plan_find_site(&P, UINT64_MAX));
	assert_null(plan_find_site(&empty, SITE_ADDR(0)));
}

/* 1000 sites 0x40 apart from a page boundary: 64 to a page, so 16 runs, in order. */
static void test_runs_one_per_page(void **state)
{
	struct lp_run *runs = calloc(NSITES, sizeof(*runs));
	size_t next = 0, off = 0;

	(void)state;
	assert_non_null(runs);
	size_t n = plan_runs(&P, runs);
	assert_int_equal(n, (NSITES + 63) / 64);
	for (size_t k = 0; k < n; k++) {
		const struct lp_run *r = &runs[k];
		assert_int_equal(r->first, next);
		assert_int_equal(r->lo, P.sites[r->first].addr);
		const struct lp_site *last = &P.sites[r->first + r->nsites - 1];
		assert_int_equal(r->hi, last->addr + last->len);
		assert_int_equal(r->lo >> 12, (r->hi - 1) >> 12);
		assert_int_equal(r->off, off);
		off += r->hi - r->lo;
		next += r->nsites;
	}
	assert_int_equal(next, NSITES);
	free(runs);
}

/* A gap of LP_RUN_GAP bytes joins two sites; one byte more splits them. */
static void test_runs_split_on_gap(void **state)
{
	struct lp_site s[3] = { { .addr = 0x10000, .len = 5 }, { .addr = 0x10005 + LP_RUN_GAP, .len = 5 },
				{ .addr = 0x1000a + 2 * LP_RUN_GAP + 1, .len = 5 } };
	struct lp_plan p = { .sites = s, .nsites = 3 };
	struct lp_run runs[3];

	(void)state;
	assert_int_equal(plan_runs(&p, runs), 2);
	assert_int_equal(runs[0].nsites, 2);
	assert_int_equal(runs[0].hi, s[1].addr + 5);
	assert_int_equal(runs[1].first, 2);
	assert_int_equal(runs[1].off, s[1].addr + 5 - s[0].addr);
	p.nsites = 0;
	assert_int_equal(plan_runs(&p, runs), 0);
}

/* Sites on two pages are never one run, however close. */
static void test_runs_split_on_page(void **state)
{
	struct lp_site s[2] = { { .addr = 0x10ff0, .len = 5 }, { .addr = 0x11000, .len = 5 } };
	struct lp_plan p = { .sites = s, .nsites = 2 };
	struct lp_run runs[2];

	(void)state;
	assert_int_equal(plan_runs(&p, runs), 2);
}

#define T(f) cmocka_unit_test_teardown(f, reset_ctx)

int main(void)
{
	const struct CMUnitTest site_tests[] = {
		T(test_endbr64_kept_site_after_it),
		T(test_no_endbr64_site_at_start),
		T(test_entry_by_address_is_the_site),
		T(test_entry_not_on_boundary_refused),
		T(test_near_target_jmp_rel32),
		T(test_near_backward_target_jmp_rel32),
		T(test_far_target_jmp_abs64),
		T(test_rel32_limits_exact),
		T(test_too_small_refused),
		T(test_far_target_small_function_refused),
		T(test_displaced_range_whole_instructions),
		T(test_displaced_lists_every_instruction),
		T(test_branch_into_range_refused),
		T(test_branch_to_site_start_allowed),
		T(test_call_in_range_refused),
		T(test_call_ending_range_allowed),
		T(test_rip_relative_into_range_refused),
		T(test_undecodable_function_refused),
		T(test_site_crossing_page_refused),
		T(test_target_inside_replaced_bytes_refused),
		T(test_target_at_site_refused),
		T(test_already_applied_same_target),
		T(test_already_applied_abs64),
		T(test_repoint_other_target),
		T(test_repoint_abs64_to_rel32_restores_tail),
		T(test_int3_at_site_refused),
		T(test_foreign_change_outside_site_refused),
		T(test_revert_patched_restores_file_bytes),
		T(test_revert_abs64_restores_14_bytes),
		T(test_revert_unpatched_not_patched),
	};
	const struct CMUnitTest site_table_tests[] = {
		cmocka_unit_test(test_find_site_first_byte),
		cmocka_unit_test(test_find_site_last_byte),
		cmocka_unit_test(test_find_site_miss_between),
		cmocka_unit_test(test_find_site_miss_outside),
		cmocka_unit_test(test_runs_one_per_page),
		cmocka_unit_test(test_runs_split_on_gap),
		cmocka_unit_test(test_runs_split_on_page),
	};
	int failed;

	u_init();
	failed = cmocka_run_group_tests_name("plan_site", site_tests, load_fixtures, free_fixtures);
	failed += cmocka_run_group_tests_name("plan_site_table", site_table_tests, make_sites, free_sites);
	return failed ? 1 : 0;
}
