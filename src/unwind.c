/* Unwind: a thread's frames from its registers, with libdwfl (unwind.h). */
#include <elfutils/libdwfl.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "unwind.h"

#define WIN 4096	/* the stack is read a page at a time, once per unwind */
#define NWIN 4

struct window {
	uint64_t at;	/* page address */
	size_t len;	/* bytes read there; 0: empty */
	uint8_t b[WIN];
};

struct image {		/* a module read from memory (the vDSO) */
	uint64_t lo, hi;
	void *buf;
};

struct lp_unwinder {
	Dwfl *dwfl;
	Elf *arch;	/* an x86-64 ELF header: libdwfl's choice of backend */
	Elf64_Ehdr arch_ehdr;
	int mem_fd;
	struct image *img;
	size_t nimg;
	/* The thread being unwound: next_thread and set_initial_registers read it here. */
	pid_t tid;
	const struct user_regs_struct *regs;
	uint64_t pc, sp;
	struct window win[NWIN];
	unsigned next_win;
	uint64_t tramp[4], not_tramp[16];	/* PCs known to be at sigreturn or not */
	unsigned ntramp, nnot;
	bool unread;		/* a read failed during this unwind, at @unread_at */
	uint64_t unread_at;
	char why[128];
};

/*
 * libdw takes a return address it cannot read for the end of the stack: remember the
 * first such read, so that the caller hears of it instead of "outermost frame".
 */
static bool unreadable(struct lp_unwinder *u, uint64_t addr)
{
	if (!u->unread) {
		u->unread = true;
		u->unread_at = addr;
	}
	return false;
}

/* 8 bytes at @addr, through a page window (a stack is read in a few preads, not dozens). */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct lp_unwinder *u = arg;
	uint64_t page = addr & ~(uint64_t)(WIN - 1);

	(void)dwfl;
	if (addr - page > WIN - 8) {	/* straddles two pages */
		if (pread(u->mem_fd, result, 8, (off_t)addr) == 8)
			return true;
		return unreadable(u, addr);
	}
	for (int i = 0; i < NWIN; i++) {
		struct window *w = &u->win[i];
		if (w->at == page && addr - page + 8 <= w->len) {
			memcpy(result, w->b + (addr - page), 8);
			return true;
		}
	}
	struct window *w = &u->win[u->next_win++ % NWIN];
	ssize_t n = pread(u->mem_fd, w->b, WIN, (off_t)page);
	w->at = page;
	w->len = n > 0 ? (size_t)n : 0;
	if (addr - page + 8 > w->len)
		return unreadable(u, addr);
	memcpy(result, w->b + (addr - page), 8);
	return true;
}

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	(void)dwfl;
	if (*thread_argp)
		return 0;
	*thread_argp = arg;
	return ((struct lp_unwinder *)arg)->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	(void)dwfl;
	*thread_argp = arg;
	return tid == ((struct lp_unwinder *)arg)->tid;
}

/* DWARF's x86-64 numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then the PC. */
static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	const struct lp_unwinder *u = arg;
	const struct user_regs_struct *r = u->regs;

	if (!r) {
		Dwarf_Word sp = u->sp;
		if (!dwfl_thread_state_registers(thread, 7, 1, &sp))
			return false;
		dwfl_thread_state_register_pc(thread, u->pc);
		return true;
	}
	Dwarf_Word v[16] = { r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp,
			     r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	if (!dwfl_thread_state_registers(thread, 0, 16, v))
		return false;
	dwfl_thread_state_register_pc(thread, r->rip);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
};

/* Only modules reported from memory get here: the others are opened when reported. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	struct image *im = *userdata;

	(void)mod, (void)modname, (void)base;
	*file_name = NULL;
	*elfp = im ? elf_memory(im->buf, im->hi - im->lo) : NULL;
	return -1;
}

/* No separate debug files: CFI comes from the mapped file itself (.eh_frame, .debug_frame). */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	(void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
	(void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
	return -1;
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
};

/* The image at [m->lo, m->hi) read from memory, reported as a module (the vDSO). */
static int report_image(struct lp_unwinder *u, const struct lp_unwind_module *m)
{
	struct image *im = &u->img[u->nimg];
	size_t len = m->hi - m->lo;

	if (m->hi <= m->lo || len > (64u << 20))
		return 0;
	if (!(im->buf = malloc(len)))
		return -ENOMEM;
	if (pread(u->mem_fd, im->buf, len, (off_t)m->lo) != (ssize_t)len) {
		free(im->buf);
		return 0;
	}
	im->lo = m->lo;
	im->hi = m->hi;
	u->nimg++;
	Dwfl_Module *mod = dwfl_report_module(u->dwfl, m->name, m->lo, m->hi);
	void **ud;
	if (!mod || !dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL))
		return -ENOMEM;
	*ud = im;
	return 0;
}

/* One mapped file, opened now (its headers only), at its bias. A file gone is left out. */
static int report_file(struct lp_unwinder *u, const struct lp_unwind_module *m)
{
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOMEM ? -ENOMEM : 0;
	if (!dwfl_report_elf(u->dwfl, m->name ? m->name : m->path, m->path, fd, m->bias, true))
		close(fd);	/* not an ELF file, or overlapping another module: left out */
	return 0;
}

/* A bare x86-64 ELF header: enough for libdwfl to pick its backend before any module. */
static Elf *arch_elf(Elf64_Ehdr *eh)
{
	*eh = (Elf64_Ehdr){
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
			     EV_CURRENT, ELFOSABI_SYSV },
		.e_type = ET_CORE,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_ehsize = sizeof(Elf64_Ehdr),
	};
	return elf_memory((char *)eh, sizeof(*eh));
}

int unwind_open(struct lp_unwinder **out, pid_t pid, int mem_fd,
		const struct lp_unwind_module *mods, size_t n)
{
	struct lp_unwinder *u = calloc(1, sizeof(*u));
	int ret = -ENOMEM;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->mem_fd = mem_fd;
	elf_version(EV_CURRENT);
	if (!(u->img = calloc(n ? n : 1, sizeof(*u->img))) || !(u->dwfl = dwfl_begin(&callbacks)))
		goto fail;
	dwfl_report_begin(u->dwfl);
	for (size_t i = 0; i < n; i++) {
		const struct lp_unwind_module *m = &mods[i];
		ret = m->path && *m->path ? report_file(u, m) : report_image(u, m);
		if (ret)
			goto fail;
	}
	ret = -EINVAL;
	if (dwfl_report_end(u->dwfl, NULL, NULL) || !(u->arch = arch_elf(&u->arch_ehdr)) ||
	    !dwfl_attach_state(u->dwfl, u->arch, pid, &thread_callbacks, u))
		goto fail;
	*out = u;
	return 0;
fail:
	unwind_close(u);
	return ret;
}

void unwind_close(struct lp_unwinder *u)
{
	if (!u)
		return;
	if (u->dwfl)
		dwfl_end(u->dwfl);
	if (u->arch)
		elf_end(u->arch);
	for (size_t i = 0; i < u->nimg; i++)
		free(u->img[i].buf);
	free(u->img);
	free(u);
}

/* `mov $15, %rax|%eax; syscall`, at @pc or with @pc on its syscall: __restore_rt. */
static bool sigreturn_bytes(int mem_fd, uint64_t pc)
{
	static const uint8_t rax[] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	static const uint8_t eax[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	uint8_t b[16];

	if (pc < 7 || pread(mem_fd, b, sizeof(b), (off_t)(pc - 7)) != (ssize_t)sizeof(b))
		return false;
	return !memcmp(b + 7, rax, sizeof(rax)) || !memcmp(b + 7, eax, sizeof(eax)) ||
	       !memcmp(b, rax, sizeof(rax)) || !memcmp(b + 2, eax, sizeof(eax));
}

static bool seen(const uint64_t *v, unsigned n, unsigned cap, uint64_t x)
{
	for (unsigned i = 0; i < n && i < cap; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* sigreturn_bytes(), remembered per PC: a thread stopped twice is mostly at the same place. */
static bool at_sigreturn(struct lp_unwinder *u, uint64_t pc)
{
	if (seen(u->tramp, u->ntramp, LP_ARRAY_SIZE(u->tramp), pc))
		return true;
	if (seen(u->not_tramp, u->nnot, LP_ARRAY_SIZE(u->not_tramp), pc))
		return false;
	bool yes = sigreturn_bytes(u->mem_fd, pc);
	if (yes)
		u->tramp[u->ntramp++ % LP_ARRAY_SIZE(u->tramp)] = pc;
	else
		u->not_tramp[u->nnot++ % LP_ARRAY_SIZE(u->not_tramp)] = pc;
	return yes;
}

struct collect {
	struct lp_unwinder *u;
	struct lp_uframe *out;
	size_t max, n;
	bool tramp;	/* the last frame's PC is in a sigreturn trampoline */
	int err;
	uint64_t guessed;	/* a frame left without CFI: by frame pointer (0: none) */
};

/*
 * Whether the frame at @pc (@adjust: a return address, looked up one byte back) has CFI.
 * Without it libdwfl goes on by the frame pointer, which skips the caller of a function
 * that keeps none (the vDSO's, a leaf's): such an unwind proves nothing.
 */
static bool has_cfi(struct lp_unwinder *u, uint64_t pc, bool adjust)
{
	uint64_t at = adjust ? pc - 1 : pc;
	Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, at);
	Dwarf_Addr bias;
	Dwarf_Frame *f = NULL;

	if (!mod)
		return false;
	Dwarf_CFI *cfi = dwfl_module_eh_cfi(mod, &bias);
	if (cfi && !dwarf_cfi_addrframe(cfi, at - bias, &f)) {
		free(f);
		return true;
	}
	cfi = dwfl_module_dwarf_cfi(mod, &bias);
	if (cfi && !dwarf_cfi_addrframe(cfi, at - bias, &f)) {
		free(f);
		return true;
	}
	return false;
}

/*
 * libdwfl says "activation" of a frame that is resumed by sigreturn and of the
 * trampoline frame below it alike: after a trampoline comes the signal frame.
 */
static int frame_cb(Dwfl_Frame *state, void *arg)
{
	struct collect *c = arg;
	Dwarf_Addr pc;
	bool act = false;

	if (!dwfl_frame_pc(state, &pc, c->n ? &act : NULL)) {
		c->err = -EIO;
		return DWARF_CB_ABORT;
	}
	bool signal = c->n && c->tramp;
	c->tramp = c->n ? act && !signal : at_sigreturn(c->u, pc);
	if (!c->guessed && !has_cfi(c->u, pc, c->n && !signal))
		c->guessed = pc;
	c->out[c->n++] = (struct lp_uframe){ pc, signal };
	return c->n < c->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

/* Why the unwind stopped after the frame at @pc. */
static void explain(struct lp_unwinder *u, uint64_t pc, bool adjust)
{
	uint64_t at = adjust ? pc - 1 : pc;
	Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, at);
	Dwarf_Addr bias;
	const char *msg = dwfl_errmsg(-1);

	if (!mod)
		snprintf(u->why, sizeof(u->why), "no module for 0x%" PRIx64, pc);
	else if (!dwfl_module_eh_cfi(mod, &bias) && !dwfl_module_dwarf_cfi(mod, &bias))
		snprintf(u->why, sizeof(u->why), "no CFI for 0x%" PRIx64 " (and no frame pointer)", pc);
	else
		snprintf(u->why, sizeof(u->why), "%s at 0x%" PRIx64, msg ? msg : "unwind failed", pc);
}

int unwind_thread(struct lp_unwinder *u, pid_t tid, const struct user_regs_struct *regs,
		  uint64_t pc, uint64_t sp, struct lp_uframe *out, size_t max, const char **why)
{
	struct collect c = { .u = u, .out = out, .max = max };

	u->why[0] = 0;
	if (why)
		*why = u->why;
	if (!max)
		return -EINVAL;
	u->tid = tid;
	u->regs = regs;
	u->pc = regs ? regs->rip : pc;
	u->sp = regs ? regs->rsp : sp;
	for (int i = 0; i < NWIN; i++)
		u->win[i].len = 0;	/* the thread may have run since the last unwind */
	u->unread = false;
	int ret = dwfl_getthread_frames(u->dwfl, tid, frame_cb, &c);
	if (c.err)
		return c.err;
	if (ret == -1 && !c.n) {
		snprintf(u->why, sizeof(u->why), "%s", dwfl_errmsg(-1));
		out[0] = (struct lp_uframe){ u->pc, false };	/* frame 0 is the PC, whatever */
		return 1;
	}
	if (ret == -1)
		explain(u, out[c.n - 1].pc, c.n > 1 && !out[c.n - 1].signal);
	else if (ret == 0 && u->unread)
		snprintf(u->why, sizeof(u->why), "cannot read memory at 0x%" PRIx64
			 " (unwinding from 0x%" PRIx64 ")", u->unread_at, out[c.n - 1].pc);
	else if (ret == 0 && c.n == 1)	/* a PLT stub's CFI expression (on rip) ends it so */
		snprintf(u->why, sizeof(u->why), "the unwind ended at its first frame, 0x%" PRIx64,
			 out[0].pc);
	else if (ret == 0 && c.guessed)	/* the last frame too: its being last was guessed */
		snprintf(u->why, sizeof(u->why), "no CFI for 0x%" PRIx64 ": frame pointers from "
			 "there, which may skip a caller", c.guessed);
	return (int)c.n;
}
