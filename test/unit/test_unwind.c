/*
 * unwind: libdwfl unwinds this test process's own stack, read through /proc/self/mem:
 * from a full register set (CFI), from a PC and SP alone, and across a function with a
 * frame pointer and no CFI (libdw's frame-pointer fallback, as for a loaded patch).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <gelf.h>
#include <sys/auxv.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "proc.h"
#include "unwind.h"
#include "util.h"

#define MODS_MAX 64

/* The modules of /proc/self/maps: one per file (its first mapping sets the bias), the vDSO. */
struct mods {
	struct lp_unwind_module m[MODS_MAX];
	char name[MODS_MAX][PATH_MAX], path[MODS_MAX][96];
	size_t n;
};

static int add_mapping(const struct lp_maps_line *l, void *arg)
{
	struct mods *ms = arg;
	struct lp_unwind_module *last = ms->n ? &ms->m[ms->n - 1] : NULL;

	if (!strcmp(l->path, "[vdso]")) {
		snprintf(ms->name[ms->n], PATH_MAX, "[vdso]");
		ms->m[ms->n] = (struct lp_unwind_module){ ms->name[ms->n], NULL, l->start,
							  l->start, l->end };
		ms->n++;
		return 0;
	}
	if (l->path[0] != '/')
		return 0;
	if (last && last->path && !strcmp(last->name, l->path)) {
		last->hi = l->end;
		return 0;
	}
	if (ms->n == MODS_MAX || l->offset != 0)
		return 0;
	snprintf(ms->name[ms->n], PATH_MAX, "%s", l->path);
	snprintf(ms->path[ms->n], sizeof(ms->path[0]), "/proc/self/map_files/%" PRIx64 "-%" PRIx64,
		 l->start, l->end);
	uint64_t bias = l->start - u_elf_first_vaddr(l->path);
	ms->m[ms->n] = (struct lp_unwind_module){ ms->name[ms->n], ms->path[ms->n], bias,
						  l->start, l->end };
	ms->n++;
	return 0;
}

static struct lp_unwinder *open_self(struct mods *ms, int *mem_fd)
{
	struct lp_unwinder *u;

	ms->n = 0;
	assert_int_equal(proc_maps_walk(getpid(), add_mapping, ms), 0);
	assert_true(ms->n >= 2);
	*mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	assert_true(*mem_fd >= 0);
	assert_int_equal(unwind_open(&u, getpid(), *mem_fd, ms->m, ms->n), 0);
	return u;
}

/* Every function of the chain is global (no clone renames it) and keeps its calls as calls. */
#define KEEP(x) __asm__ volatile("" : "+r"(x))
#define CHAIN __attribute__((noinline, noclone, used))

struct shot {
	struct user_regs_struct regs;
	struct lp_uframe f[32];
	int n;
	const char *why;
	uint64_t lo_b, hi_b;	/* b's code, where the unwind must return */
};

/* The registers of this very point in the caller: rip is the label, the rest as they are. */
#define CAPTURE(r)                                                                           \
	__asm__ volatile("lea 1f(%%rip), %%rax\n\t"                                          \
			 "mov %%rax, %c[rip](%0)\n\t"                                        \
			 "mov %%rsp, %c[rsp](%0)\n\t"                                        \
			 "mov %%rbp, %c[rbp](%0)\n\t"                                        \
			 "mov %%rbx, %c[rbx](%0)\n\t"                                        \
			 "mov %%r12, %c[r12](%0)\n\t"                                        \
			 "mov %%r13, %c[r13](%0)\n\t"                                        \
			 "mov %%r14, %c[r14](%0)\n\t"                                        \
			 "mov %%r15, %c[r15](%0)\n"                                          \
			 "1:"                                                                \
			 :                                                                   \
			 : "r"(r), [rip] "i"(offsetof(struct user_regs_struct, rip)),       \
			   [rsp] "i"(offsetof(struct user_regs_struct, rsp)),               \
			   [rbp] "i"(offsetof(struct user_regs_struct, rbp)),               \
			   [rbx] "i"(offsetof(struct user_regs_struct, rbx)),               \
			   [r12] "i"(offsetof(struct user_regs_struct, r12)),               \
			   [r13] "i"(offsetof(struct user_regs_struct, r13)),               \
			   [r14] "i"(offsetof(struct user_regs_struct, r14)),               \
			   [r15] "i"(offsetof(struct user_regs_struct, r15))                \
			 : "rax", "memory")

static struct lp_unwinder *the_u;

int u_c(struct shot *s);
int u_b(struct shot *s);
int u_a(struct shot *s);
int u_fp_call(struct shot *s, int (*fn)(struct shot *));
int u_sig_c(struct shot *s);
int u_sig_b(struct shot *s);

/* Unwinds its own stack from the registers it captured: a, b and c are all still there. */
CHAIN int u_c(struct shot *s)
{
	memset(&s->regs, 0, sizeof(s->regs));
	CAPTURE(&s->regs);
	s->n = unwind_thread(the_u, getpid(), &s->regs, 0, 0, s->f, 32, &s->why);
	int r = s->n;
	KEEP(r);
	return r;
}

CHAIN int u_b(struct shot *s)
{
	int r = u_c(s);
	KEEP(r);
	return r + 1;
}

CHAIN int u_a(struct shot *s)
{
	int r = u_b(s);
	KEEP(r);
	return r + 1;
}

/*
 * u_fp_call(s, fn): fn(s) from a function with a frame pointer and no CFI at all (no
 * .cfi_startproc: no FDE in .eh_frame), as the patch images livepatch loads are built.
 */
__asm__(".text\n"
	".globl u_fp_call\n"
	".type u_fp_call, @function\n"
	"u_fp_call:\n\t"
	"push %rbp\n\t"
	"mov %rsp, %rbp\n\t"
	"call *%rsi\n\t"
	"nop\n\t"
	"pop %rbp\n\t"
	"ret\n"
	".globl u_fp_call_end\n"
	"u_fp_call_end:\n"
	".size u_fp_call, u_fp_call_end - u_fp_call\n");
extern const char u_fp_call_end[];

CHAIN int u_fp_a(struct shot *s)
{
	int r = u_fp_call(s, u_b);
	KEEP(r);
	return r + 1;
}

static struct shot *sig_shot;

/* In the handler: the unwind goes through __restore_rt into the code the signal hit. */
static void on_usr1(int sig)
{
	(void)sig;
	u_c(sig_shot);
}

CHAIN int u_sig_c(struct shot *s)
{
	sig_shot = s;
	int r = raise(SIGUSR1);
	KEEP(r);
	return r + 1;
}

CHAIN int u_sig_b(struct shot *s)
{
	int r = u_sig_c(s);
	KEEP(r);
	return r + 1;
}

static uint64_t fn_size(const char *name)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct u_sym sym;

	assert_true(n > 0);
	exe[n] = 0;
	assert_int_equal(u_elf_sym(exe, name, &sym), 0);
	assert_true(sym.size > 0);
	return sym.size;
}

/* The first frame after @from whose return address (pc - 1) is in [@lo, @lo + @size). */
static int frame_in(const struct shot *s, int from, const void *lo, uint64_t size)
{
	uint64_t a = (uint64_t)(uintptr_t)lo;

	for (int i = from; i < s->n; i++)
		if (s->f[i].pc - 1 >= a && s->f[i].pc - 1 < a + size)
			return i;
	return -1;
}

/* From a full register set: c's PC (the label), then returns into b and into a, in order. */
static void test_unwind_from_registers_returns_through_the_callers(void **state)
{
	struct mods *ms = calloc(1, sizeof(*ms));
	struct shot s;
	int fd;

	(void)state;
	the_u = open_self(ms, &fd);
	u_a(&s);
	if (s.n < 3)
		fail_msg("%d frames: %s", s.n, s.why);
	assert_int_equal(s.f[0].pc, s.regs.rip);
	assert_false(s.f[0].signal);
	int ib = frame_in(&s, 1, (const void *)u_b, fn_size("u_b"));
	int ia = frame_in(&s, 1, (const void *)u_a, fn_size("u_a"));
	assert_int_equal(ib, 1);
	assert_int_equal(ia, 2);
	/* And it reaches the outermost frame (main, libc's start), or says why not. */
	assert_true(s.n > 4);
	assert_non_null(s.why);
	/* A second thread of the same session: no new Dwfl, the same answer. */
	struct shot t;
	u_a(&t);
	assert_int_equal(t.n, s.n);
	/* At most @max frames. */
	struct lp_uframe two[2];
	assert_int_equal(unwind_thread(the_u, getpid(), &s.regs, 0, 0, two, 2, NULL), 2);
	unwind_close(the_u);
	close(fd);
	free(ms);
}

/*
 * From a PC and an SP alone (a blocked thread's /proc/TID/syscall): at a function's entry,
 * where CFI needs no other register, the return address on the stack is the next frame.
 */
static void test_unwind_from_pc_and_sp_alone(void **state)
{
	struct mods *ms = calloc(1, sizeof(*ms));
	struct lp_uframe f[8];
	struct shot s;
	const char *why;
	int fd;

	(void)state;
	the_u = open_self(ms, &fd);
	u_a(&s);
	assert_true(s.n >= 3);
	uint64_t slot = s.f[1].pc;	/* a return address into b, as `call u_c` pushed it */
	int n = unwind_thread(the_u, getpid(), NULL, (uint64_t)(uintptr_t)u_c,
			      (uint64_t)(uintptr_t)&slot, f, 8, &why);
	if (n < 2)
		fail_msg("%d frames: %s", n, why);
	assert_int_equal(f[0].pc, (uint64_t)(uintptr_t)u_c);
	assert_int_equal(f[1].pc, slot);
	/* An SP that cannot be read: the PC alone, and why. */
	n = unwind_thread(the_u, getpid(), NULL, (uint64_t)(uintptr_t)u_c, 8, f, 8, &why);
	assert_int_equal(n, 1);
	assert_true(why && *why);
	/* A PC in no module: the PC alone, and why. */
	n = unwind_thread(the_u, getpid(), NULL, 0x10000, (uint64_t)(uintptr_t)&slot, f, 8, &why);
	assert_int_equal(n, 1);
	assert_contains(why, "0x10000");
	unwind_close(the_u);
	close(fd);
	free(ms);
}

/* Through a function without CFI: libdw follows its frame pointer, then CFI again. */
static void test_unwind_follows_frame_pointers_where_no_cfi(void **state)
{
	struct mods *ms = calloc(1, sizeof(*ms));
	struct shot s;
	int fd;

	(void)state;
	the_u = open_self(ms, &fd);
	u_fp_a(&s);
	if (s.n < 4)
		fail_msg("%d frames: %s", s.n, s.why);
	uint64_t fp_size = (uint64_t)(uintptr_t)u_fp_call_end - (uint64_t)(uintptr_t)u_fp_call;
	assert_int_equal(frame_in(&s, 1, (const void *)u_b, fn_size("u_b")), 1);
	assert_int_equal(frame_in(&s, 1, (const void *)u_fp_call, fp_size), 2);
	assert_int_equal(frame_in(&s, 1, (const void *)u_fp_a, fn_size("u_fp_a")), 3);
	unwind_close(the_u);
	close(fd);
	free(ms);
}

/* Through a signal handler: the frame sigreturn resumes is marked, and its callers follow. */
static void test_unwind_marks_the_frame_a_signal_interrupted(void **state)
{
	struct mods *ms = calloc(1, sizeof(*ms));
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	struct shot s;
	int fd;

	(void)state;
	the_u = open_self(ms, &fd);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	u_sig_b(&s);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	int nsig = 0, at = -1;
	for (int i = 0; i < s.n; i++)
		if (s.f[i].signal) {
			nsig++;
			at = i;
		}
	if (nsig != 1)
		fail_msg("%d signal frames in %d: %s", nsig, s.n, s.why);
	assert_true(at >= 2);	/* u_c, on_usr1 (or more), __restore_rt, then the frame */
	int ic = frame_in(&s, at + 1, (const void *)u_sig_c, fn_size("u_sig_c"));
	int ib = frame_in(&s, at + 1, (const void *)u_sig_b, fn_size("u_sig_b"));
	assert_true(ic > at);
	assert_int_equal(ib, ic + 1);
	unwind_close(the_u);
	close(fd);
	free(ms);
}

/* The entry of the vDSO's clock_gettime, found in its .dynsym; 0 if none. */
static uint64_t vdso_clock_gettime(uint64_t lo, uint64_t hi)
{
	Elf *e = elf_memory((char *)(uintptr_t)lo, hi - lo);
	Elf_Scn *scn = NULL;
	uint64_t fn = 0;

	while (e && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *name = gelf_getsym(d, (int)i, &sym) ?
					   elf_strptr(e, sh.sh_link, sym.st_name) : NULL;
			if (name && !strcmp(name, "__vdso_clock_gettime"))
				fn = lo + sym.st_value;
		}
	}
	if (e)
		elf_end(e);
	return fn;
}

/* The vDSO, reported from memory (no file to open): its CFI unwinds a PC inside it. */
static void test_unwind_reads_the_vdso_from_memory(void **state)
{
	struct mods *ms = calloc(1, sizeof(*ms));
	struct lp_unwind_module *v = NULL;
	struct lp_uframe f[4];
	const char *why;
	int fd;

	(void)state;
	the_u = open_self(ms, &fd);
	for (size_t i = 0; i < ms->n; i++)
		if (!ms->m[i].path)
			v = &ms->m[i];
	if (!v || !getauxval(AT_SYSINFO_EHDR)) {
		printf("# no vDSO in this process (booted with vdso=0?): not tested\n");
		goto out;
	}
	uint64_t fn = vdso_clock_gettime(v->lo, v->hi);
	assert_true(fn > v->lo && fn < v->hi);
	uint64_t slot = (uint64_t)(uintptr_t)u_b + 1;	/* the return address at its entry */
	int n = unwind_thread(the_u, getpid(), NULL, fn, (uint64_t)(uintptr_t)&slot, f, 4, &why);
	if (n < 2)
		fail_msg("%d frames: %s", n, why);
	assert_int_equal(f[1].pc, slot);
out:
	unwind_close(the_u);
	close(fd);
	free(ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unwind_from_registers_returns_through_the_callers),
		cmocka_unit_test(test_unwind_from_pc_and_sp_alone),
		cmocka_unit_test(test_unwind_follows_frame_pointers_where_no_cfi),
		cmocka_unit_test(test_unwind_marks_the_frame_a_signal_interrupted),
		cmocka_unit_test(test_unwind_reads_the_vdso_from_memory),
	};

	u_init();
	return cmocka_run_group_tests_name("unwind", tests, NULL, NULL);
}
