/* The shield: a SIGTRAP handler that outlives livepatch (shield.h, docs/design.md §11). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "proc.h"
#include "shield.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

/* The kernel's sigaction flags (x86-64). */
#define K_SA_SIGINFO	0x00000004ULL
#define K_SA_RESTORER	0x04000000ULL
#define K_SA_ONSTACK	0x08000000ULL
#define K_SA_RESTART	0x10000000ULL
#define K_SA_NODEFER	0x40000000ULL

/*
 * The code page, copied as it is into the process: position-independent, no data of
 * its own (one constant, SIGTRAP's bit) but the table one page after its start. Registers as the kernel calls a
 * handler: %rdi the signal, %rsi its siginfo, %rdx the ucontext (uc_mcontext at 40;
 * its saved RSP at 160, RIP at 168). si_code 0x80 (SI_KERNEL) is an int3.
 *
 * handler: a trap at an entry's address with the int3 still there does the entry's
 * jump or call in the saved registers; for PARK it sleeps 1 ms at a time until the
 * int3 is gone. With the int3 gone, the thread runs the site again, whatever is
 * complete there now. A trap of ours the tracer had already handled in the
 * registers (the PC at the site, or at the entry's target) when it died, before it
 * could discard the signal, needs nothing more: the thread goes on where it is. So
 * does a thread the tracer was single-stepping when it died (TRAP_TRACE, TF set in
 * the saved flags, while the shield is live): TF is cleared, unless the program has a
 * handler of its own, which may be stepping itself. Anything else goes to the program's disposition: ignored;
 * its handler, jumped to with the same registers and stack, so that it returns
 * through the same restorer; or the default, which is put back and raised again
 * (the signal is delivered, as the default action, at once).
 *
 * It runs with SIGTRAP unblocked (SA_NODEFER): a signal handler of the program's that
 * interrupts it (a thread parked here for milliseconds) and reaches an int3 of ours
 * takes it here again, where a blocked one would be a forced SIGTRAP, reset to the
 * default by the kernel, and the program's death. A program handler without
 * SA_NODEFER gets SIGTRAP blocked first, as the kernel would have done for it.
 *
 * tramp: an injected system call's instruction. The tracer takes the thread back at
 * the call's exit stop; if the tracer is gone, the thread goes on here, puts back its
 * signal mask and every register from the resume block %rbx points at (written
 * before the call: the registers as the kernel would restart an interrupted call),
 * and returns to where it was. Its only writes are 16 bytes on the thread's stack
 * below the red zone, where a signal frame could go as well: the region itself is
 * never written by the process.
 */
#define D(off) ".Lsh_base+4096+" #off "(%rip)"
__asm__(
	"	.pushsection .rodata.lp_shield, \"a\"\n"
	"	.balign 64\n"
	"	.globl lp_shield_code\n"
	"lp_shield_code:\n"
	".Lsh_base:\n"
	"	.ascii \"livepatch-shield\"\n"
	"	.quad 1\n"				/* version */
	"	.balign 64\n"
	"	.globl lp_shield_handler\n"
	"lp_shield_handler:\n"
	"	cmpl $0x80, 8(%rsi)\n"
	"	jne .Lsh_chain\n"
	"	mov 168(%rdx), %r9\n"
	"	dec %r9\n"				/* the int3's address */
	"	lea " D(0x1000) ", %rcx\n"
	"	mov " D(0x000) ", %r8\n"
	".Lsh_find:\n"
	"	test %r8, %r8\n"
	"	jz .Lsh_chain\n"
	"	cmp (%rcx), %r9\n"
	"	je .Lsh_found\n"
	"	lea 1(%r9), %r10\n"			/* the PC itself */
	"	cmp (%rcx), %r10\n"
	"	je .Lsh_ret\n"
	"	cmpl $2, 16(%rcx)\n"
	"	ja .Lsh_next\n"
	"	cmp 8(%rcx), %r10\n"
	"	je .Lsh_ret\n"
	".Lsh_next:\n"
	"	add $24, %rcx\n"
	"	dec %r8\n"
	"	jmp .Lsh_find\n"
	".Lsh_found:\n"
	"	cmpb $0xcc, (%r9)\n"
	"	jne .Lsh_rerun\n"
	"	mov 16(%rcx), %r8d\n"
	"	cmp $1, %r8d\n"
	"	je .Lsh_jmp\n"
	"	cmp $2, %r8d\n"
	"	je .Lsh_call\n"
	".Lsh_park:\n"
	"	mov $35, %eax\n"			/* nanosleep(1 ms) */
	"	lea " D(0x048) ", %rdi\n"
	"	xor %esi, %esi\n"
	"	syscall\n"
	"	cmpb $0xcc, (%r9)\n"
	"	je .Lsh_park\n"
	".Lsh_rerun:\n"
	"	mov %r9, 168(%rdx)\n"
	"	ret\n"
	".Lsh_jmp:\n"
	"	mov 8(%rcx), %r8\n"
	"	mov %r8, 168(%rdx)\n"
	"	ret\n"
	".Lsh_call:\n"
	"	mov 160(%rdx), %r8\n"
	"	sub $8, %r8\n"
	"	mov 20(%rcx), %r10d\n"
	"	add %r9, %r10\n"			/* returns past the call: site + len */
	"	mov %r10, (%r8)\n"
	"	mov %r8, 160(%rdx)\n"
	"	mov 8(%rcx), %r8\n"
	"	mov %r8, 168(%rdx)\n"
	"	ret\n"
	".Lsh_chain:\n"
	"	cmpl $2, 8(%rsi)\n"			/* TRAP_TRACE, TF set: a dead tracer's step */
	"	jne .Lsh_prog\n"
	"	testl $0x100, 176(%rdx)\n"
	"	jz .Lsh_prog\n"
	"	cmpq $0, " D(0x058) "\n"
	"	je .Lsh_prog\n"
	"	cmpq $1, " D(0x008) "\n"
	"	ja .Lsh_prog\n"
	"	andl $~0x100, 176(%rdx)\n"
	"	ret\n"
	".Lsh_prog:\n"
	"	mov " D(0x008) ", %rax\n"
	"	cmp $1, %rax\n"				/* SIG_IGN */
	"	je .Lsh_ret\n"
	"	test %rax, %rax\n"
	"	jz .Lsh_default\n"
	"	testl $0x40000000, " D(0x010) "\n"	/* its flags: SA_NODEFER */
	"	jnz .Lsh_handler\n"
	"	push %rdi\n"				/* rt_sigprocmask(SIG_BLOCK, SIGTRAP) */
	"	push %rsi\n"
	"	push %rdx\n"
	"	mov $14, %eax\n"
	"	xor %edi, %edi\n"
	"	lea .Lsh_trapbit(%rip), %rsi\n"
	"	xor %edx, %edx\n"
	"	mov $8, %r10d\n"
	"	syscall\n"
	"	pop %rdx\n"
	"	pop %rsi\n"
	"	pop %rdi\n"
	"	mov " D(0x008) ", %rax\n"
	".Lsh_handler:\n"
	"	jmp *%rax\n"
	".Lsh_default:\n"
	"	mov $13, %eax\n"			/* rt_sigaction(SIGTRAP, SIG_DFL) */
	"	mov $5, %edi\n"
	"	lea " D(0x028) ", %rsi\n"
	"	xor %edx, %edx\n"
	"	mov $8, %r10d\n"
	"	syscall\n"
	"	mov $39, %eax\n"			/* tgkill(getpid(), gettid(), SIGTRAP) */
	"	syscall\n"
	"	mov %rax, %r8\n"
	"	mov $186, %eax\n"
	"	syscall\n"
	"	mov %rax, %rsi\n"
	"	mov %r8, %rdi\n"
	"	mov $5, %edx\n"
	"	mov $234, %eax\n"
	"	syscall\n"
	".Lsh_ret:\n"
	"	ret\n"
	"	.balign 8\n"
	".Lsh_trapbit:\n"
	"	.quad 0x10\n"				/* 1 << (SIGTRAP - 1) */
	"	.balign 16\n"
	"	.globl lp_shield_restorer\n"
	"lp_shield_restorer:\n"
	"	mov $15, %eax\n"			/* rt_sigreturn */
	"	syscall\n"
	"	.balign 16\n"
	"	.globl lp_shield_tramp\n"
	"lp_shield_tramp:\n"
	"	syscall\n"
	"	mov $14, %eax\n"			/* rt_sigprocmask(SIG_SETMASK, saved) */
	"	mov $2, %edi\n"
	"	lea 0x90(%rbx), %rsi\n"
	"	xor %edx, %edx\n"
	"	mov $8, %r10d\n"
	"	syscall\n"
	"	mov 0x08(%rbx), %rsp\n"		/* below the thread's red zone: free */
	"	lea -136(%rsp), %rsp\n"
	"	pushq 0x10(%rbx)\n"
	"	popfq\n"
	"	mov 0x00(%rbx), %rax\n"
	"	mov %rax, (%rsp)\n"
	"	mov 0x28(%rbx), %rcx\n"
	"	mov 0x30(%rbx), %rdx\n"
	"	mov 0x38(%rbx), %rsi\n"
	"	mov 0x40(%rbx), %rdi\n"
	"	mov 0x48(%rbx), %rbp\n"
	"	mov 0x50(%rbx), %r8\n"
	"	mov 0x58(%rbx), %r9\n"
	"	mov 0x60(%rbx), %r10\n"
	"	mov 0x68(%rbx), %r11\n"
	"	mov 0x70(%rbx), %r12\n"
	"	mov 0x78(%rbx), %r13\n"
	"	mov 0x80(%rbx), %r14\n"
	"	mov 0x88(%rbx), %r15\n"
	"	mov 0x18(%rbx), %rax\n"
	"	mov 0x20(%rbx), %rbx\n"
	"	ret $128\n"				/* to rip, with rsp as it was */
	"	.globl lp_shield_code_end\n"
	"lp_shield_code_end:\n"
	"	.popsection\n");

/* The data page's fixed part, as shield_prepare() writes it. */
struct shield_head {
	uint64_t nsites;
	uint64_t prog[4];
	uint64_t dfl[4];
	uint64_t nap[2];
	uint64_t live;
};

static int mem_rw(const struct lp_shield *sh, uint64_t addr, void *buf, size_t len, bool write)
{
	ssize_t n = write ? pwrite(sh->mem_fd, buf, len, (off_t)addr) :
		pread(sh->mem_fd, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/* A region of ours at @base: its header (a read of 16 bytes, nothing if unmapped). */
static bool is_shield(const struct lp_shield *sh, uint64_t base)
{
	char name[sizeof(LP_SHIELD_NAME) - 1];

	return !mem_rw(sh, base, name, sizeof(name), false) &&
	       !memcmp(name, LP_SHIELD_NAME, sizeof(name));
}

#define NAME_LEN (sizeof(LP_SHIELD_NAME) - 1)

struct find {
	const struct lp_shield *sh;
	uint64_t found;
};

/* proc_maps_walk() callback: a region of ours that is not at the hint (1). */
static int look(const struct lp_maps_line *m, void *arg)
{
	struct find *f = arg;

	if (m->end - m->start < LP_SHIELD_CODE || m->inode || strcmp(m->perms, "r-xp") ||
	    !is_shield(f->sh, m->start))
		return 0;
	f->found = m->start;
	return 1;
}

static int fill(struct lp_shield *sh, uint64_t base)
{
	size_t code = (size_t)(lp_shield_code_end - lp_shield_code);
	struct shield_head h = { .nap = { 0, 1000000 } };
	int ret;

	/* The name a later run looks for is written last, once the page is executable. */
	if ((ret = mem_rw(sh, base + LP_SHIELD_CODE, &h, sizeof(h), true)) ||
	    (ret = mem_rw(sh, base + NAME_LEN, (void *)(lp_shield_code + NAME_LEN), code - NAME_LEN,
			  true)))
		return ret;
	return 0;
}

uint64_t shield_find(struct lp_shield *sh, bool everywhere)
{
	struct find f = { sh, 0 };

	if (!sh->base && is_shield(sh, LP_SHIELD_HINT))
		sh->base = LP_SHIELD_HINT;
	if (!sh->base && everywhere && proc_maps_walk(sh->via, look, &f) == 1)
		sh->base = f.found;
	return sh->base;
}

int shield_prepare(struct lp_shield *sh, const struct lp_injector *inj, struct lp_diag *d)
{
	bool failed = false;
	int ret;

	if (shield_find(sh, true))
		return 0;
	/*
	 * A new one: at the hint if it is free, else where the kernel likes. This mmap is
	 * the one injection not made through the trampoline (there is none yet): our
	 * death during it is fatal to the thread (docs/design.md §11). The rest is made
	 * through the trampoline, by shield_finish().
	 */
	uint64_t at = 0;
	struct lp_inject *boot = inj->syscall == inject_syscall ? inj->arg : NULL;
	if (boot && !sh->no_ret)
		boot->bootstrap = true;
	for (int i = 0; i < 2 && !at; i++) {
		long args[6] = { i ? 0 : (long)LP_SHIELD_HINT, LP_SHIELD_SIZE, PROT_READ | PROT_EXEC,
				 MAP_PRIVATE | MAP_ANONYMOUS | (i ? 0 : MAP_FIXED_NOREPLACE), -1, 0 };
		long got = inj->syscall(inj->arg, 9 /* mmap */, args, &failed);
		if (failed)
			return lp_fail(d, LP_EXIT_ABORTED, "cannot map livepatch's trap handler in process "
				       "%d: %s; nothing was written (retry)", sh->via,
				       inj->why && inj->why[0] ? inj->why : strerror((int)-got));
		if (got > 0 && (uint64_t)got < (uint64_t)-4096)
			at = (uint64_t)got;
		else if (i)
			return lp_fail(d, LP_EXIT_ABORTED, "mmap of livepatch's trap handler failed in "
				       "process %d: %s; nothing was written", sh->via, strerror((int)-got));
	}
	if ((ret = fill(sh, at)))
		return lp_fail(d, LP_EXIT_ABORTED, "cannot write livepatch's trap handler at 0x%" PRIx64
			       ": %s", at, strerror(-ret));
	sh->made = true;
	sh->base = at;
	return 0;
}

void shield_finish(struct lp_shield *sh, const struct lp_injector *inj)
{
	bool failed;

	if (!sh->made || is_shield(sh, sh->base))
		return;
	/* The table is not code; the name (last) makes the region one a later run finds. */
	long mp[6] = { (long)(sh->base + LP_SHIELD_CODE), LP_SHIELD_DATA, PROT_READ };
	(void)inj->syscall(inj->arg, 10 /* mprotect */, mp, &failed);
	long nm[6] = { PR_SET_VMA, PR_SET_VMA_ANON_NAME, (long)sh->base, LP_SHIELD_SIZE,
		       (long)sh->base };
	(void)inj->syscall(inj->arg, 157 /* prctl */, nm, &failed);
	(void)mem_rw(sh, sh->base, (void *)lp_shield_code, NAME_LEN, true);
}

int shield_table(const struct lp_plan *plan, bool forward, bool park, struct lp_shield_entry *tab)
{
	if (plan->nsites > LP_SHIELD_MAX)
		return -E2BIG;
	for (size_t i = 0; i < plan->nsites; i++) {
		const struct lp_site *s = &plan->sites[i];
		const struct lp_emulation *e = forward ? &s->emul_new : &s->emul_old;
		struct lp_shield_entry *t = &tab[i];
		*t = (struct lp_shield_entry){ .addr = s->addr, .kind = LP_SHK_PARK };
		if (park)
			continue;
		if (e->kind == LP_EMUL_JMP || e->kind == LP_EMUL_CALL) {
			t->kind = e->kind == LP_EMUL_JMP ? LP_SHK_JMP : LP_SHK_CALL;
			t->target = e->target;
			t->len = e->len;
		}
	}
	return (int)plan->nsites;
}

int shield_arm(struct lp_shield *sh, const struct lp_plan *plan, bool forward, bool park)
{
	static struct lp_shield_entry tab[LP_SHIELD_MAX];
	uint64_t data = sh->base + LP_SHIELD_CODE, zero = 0;
	int n = shield_table(plan, forward, park, tab), ret;

	if (n < 0)
		return n;
	uint64_t count = (uint64_t)n;
	/*
	 * A trap meanwhile sees no entry: the tracer's to take (a thread the kernel sent
	 * into the handler before the last transaction ended has long run it).
	 */
	if ((ret = mem_rw(sh, data + LP_SHD_NSITES, &zero, sizeof(zero), true)) ||
	    (ret = mem_rw(sh, data + LP_SHD_ENTRIES, tab, (size_t)n * sizeof(*tab), true)) ||
	    (ret = mem_rw(sh, data + LP_SHD_NSITES, &count, sizeof(count), true)))
		return ret;
	return 0;
}

static int set_live(struct lp_shield *sh, uint64_t live)
{
	return mem_rw(sh, sh->base + LP_SHIELD_CODE + LP_SHD_LIVE, &live, sizeof(live), true);
}

int shield_retire(struct lp_shield *sh)
{
	return sh->base ? set_live(sh, 0) : 0;
}

bool shield_needed(pid_t via, const struct lp_plan *plan)
{
	char path[64];
	bool needed = false;

	snprintf(path, sizeof(path), "/proc/%d/mem", via);
	struct lp_shield sh = { .via = via, .mem_fd = open(path, O_RDONLY | O_CLOEXEC) };
	if (sh.mem_fd < 0)
		return false;
	for (size_t i = 0; i < plan->nsites && !needed; i++) {
		const struct lp_site *s = &plan->sites[i];
		uint8_t cur[LP_SITE_MAX];
		needed = mem_rw(&sh, s->addr, cur, s->len, false) ||
			 (memcmp(cur, s->old_bytes, s->len) && memcmp(cur, s->new_bytes, s->len));
	}
	uint64_t base = is_shield(&sh, LP_SHIELD_HINT) ? LP_SHIELD_HINT : 0, armed = 0;
	struct find f = { &sh, 0 };
	if (!base && proc_maps_walk(via, look, &f) == 1)
		base = f.found;
	if (base && !mem_rw(&sh, base + LP_SHIELD_CODE + LP_SHD_LIVE, &armed, sizeof(armed), false))
		needed |= armed != 0;
	close(sh.mem_fd);
	return needed;
}

uint64_t shield_resume_block(struct lp_shield *sh)
{
	if (!sh->base)
		return 0;
	unsigned int k = sh->next_resume++ % LP_SHD_NRESUME;
	return sh->base + LP_SHIELD_CODE + LP_SHD_RESUME + k * 0x100u;
}

/*
 * rt_sigaction(SIGTRAP, @act, @old) injected, with both on the stack of the thread
 * that runs it (its stack pointer @sp), well below its red zone: the kernel writes
 * @old there (the region is read only).
 */
static int sigaction_via(struct lp_shield *sh, const struct lp_injector *inj, uint64_t sp,
			 const uint64_t *act, uint64_t *old)
{
	uint64_t at = (sp - 1024) & ~15ULL;
	bool failed;
	int ret;

	if (act && (ret = mem_rw(sh, at, (void *)act, 32, true)))
		return ret;
	long args[6] = { SIGTRAP, act ? (long)at : 0, old ? (long)at + 32 : 0, 8 };
	long r = inj->syscall(inj->arg, 13 /* rt_sigaction */, args, &failed);
	if (failed || r)
		return r ? (int)r : -EIO;
	return old ? mem_rw(sh, at + 32, old, 32, false) : 0;
}

/* The handler's disposition for a program whose own is @prog. */
static void ours_for(const struct lp_shield *sh, const uint64_t prog[4], uint64_t ours[4])
{
	bool handler = prog[0] > 1;	/* not SIG_DFL (0) nor SIG_IGN (1) */

	ours[0] = shield_addr(sh->base, lp_shield_handler);
	ours[1] = K_SA_SIGINFO | K_SA_RESTORER | K_SA_NODEFER |
		  (handler ? prog[1] & (K_SA_ONSTACK | K_SA_RESTART) : K_SA_ONSTACK | K_SA_RESTART);
	/* A program handler returns through its own restorer, as it would have. */
	ours[2] = handler && prog[1] & K_SA_RESTORER ? prog[2] :
		  shield_addr(sh->base, lp_shield_restorer);
	ours[3] = handler ? prog[3] : 0;
}

int shield_install(struct lp_shield *sh, const struct lp_injector *inj, uint64_t sp,
		   bool caught_or_ignored)
{
	uint64_t data = sh->base + LP_SHIELD_CODE, prog[4] = { 0 }, old[4];
	int ret;

	if (caught_or_ignored && (ret = sigaction_via(sh, inj, sp, NULL, prog)))
		return ret;
	uint64_t handler = shield_addr(sh->base, lp_shield_handler);
	if (prog[0] == handler) {
		/* Left by a run that died: the program's own is in the table. */
		if ((ret = mem_rw(sh, data + LP_SHD_PROG, prog, sizeof(prog), false)))
			return ret;
	} else if ((ret = mem_rw(sh, data + LP_SHD_PROG, prog, sizeof(prog), true))) {
		return ret;
	}
	ours_for(sh, prog, sh->ours);
	memcpy(sh->prog, prog, sizeof(prog));
	/* Taken for installed even if the call seems to fail: taking it down is harmless. */
	sh->installed = true;
	if ((ret = set_live(sh, 1)))
		return ret;
	if ((ret = sigaction_via(sh, inj, sp, sh->ours, old)))
		return ret;
	/* Changed between the read and the write (a thread of the program): it wins. */
	if (old[0] != prog[0] && old[0] != handler) {
		memcpy(sh->prog, old, sizeof(old));
		if ((ret = mem_rw(sh, data + LP_SHD_PROG, old, sizeof(old), true)))
			return ret;
		ours_for(sh, old, sh->ours);
		return sigaction_via(sh, inj, sp, sh->ours, NULL);
	}
	return 0;
}

int shield_remove(struct lp_shield *sh, const struct lp_injector *inj, uint64_t sp)
{
	uint64_t cur[4];
	int ret;

	if (!sh->installed)
		return 0;
	if ((ret = sigaction_via(sh, inj, sp, sh->prog, cur)))
		return ret;
	sh->installed = false;
	/* The program set its own meanwhile: that one stays. */
	if (cur[0] != sh->ours[0])
		return sigaction_via(sh, inj, sp, cur, NULL);
	return 0;
}
