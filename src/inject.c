/*
 * Inject one system call into a stopped thread (docs/design.md §5).
 *
 * Why PTRACE_SYSCALL and not a single step: a step ends in a forced SIGTRAP, which
 * resets a blocked or ignored SIGTRAP to its default action for the whole process.
 * The system-call stops send no signal. Every signal is blocked in the thread
 * meanwhile (PTRACE_SETSIGMASK), so none is dequeued before the call.
 *
 * Why the interrupt at the end: a thread stopped inside an interrupted system call
 * gets that call restarted by the kernel (PC moved back 2 bytes) only on its way out
 * of a signal stop. After the injected call the thread would leave through the
 * system-call exit instead, with -ERESTARTSYS in its rax. PTRACE_INTERRUPT before
 * resuming makes it stop once more in the signal path, in a PTRACE_EVENT_STOP like
 * the one it was in (a group stop if its process is stopped), without running user
 * code: from there the restart happens as it would have.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>	/* event numbers only: the calls live in ptrace.c */
#include <sys/wait.h>
#include <unistd.h>
#include "inject.h"
#include "proc.h"
#include "ptrace_ops.h"
#include "seccomp.h"

#define SCAN_MAX 65536	/* bytes of one executable mapping searched for a syscall */
#define BOOT_SCAN_MAX (8u << 20)	/* bytes of one searched for the bootstrap's gadgets */

struct scan {
	struct lp_inject *in;
	bool vdso;		/* this pass looks at the vDSO only, else at all but it */
	uint8_t *buf;		/* SCAN_MAX */
};

/* proc_maps_walk() callback: 1 once a `syscall` is found in an executable mapping. */
static int scan_mapping(const struct lp_maps_line *m, void *arg)
{
	struct scan *s = arg;

	if (m->perms[2] != 'x' || s->vdso != !strcmp(m->path, "[vdso]"))
		return 0;
	size_t len = m->end - m->start < SCAN_MAX ? m->end - m->start : SCAN_MAX;
	ssize_t n = pread(s->in->mem_fd, s->buf, len, (off_t)m->start);
	for (ssize_t i = 0; i + 1 < n; i++)
		if (s->buf[i] == 0x0f && s->buf[i + 1] == 0x05) {
			s->in->insn = m->start + (uint64_t)i;
			return 1;
		}
	return 0;
}

/* A `syscall` instruction (0f 05) in the vDSO, else in the first executable mappings. */
static int find_syscall_insn(struct lp_inject *in)
{
	static uint8_t buf[SCAN_MAX];

	for (int pass = 0; pass < 2; pass++) {
		struct scan s = { in, pass == 0, buf };
		int ret = proc_maps_walk(in->via, scan_mapping, &s);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	return -ENOENT;
}

/*
 * The next stop of the thread. Not bounded by the deadline, nor cut short by SIGINT:
 * once its registers are changed, a thread left behind would run the injected
 * instruction's neighbours with them. The calls injected (mmap, prctl) return at once.
 * A thread that is dying (its process killed meanwhile) is gone: a zombie leader is
 * reported only once every other thread is reaped, which this wait would never do.
 */
static int wait_stop(struct lp_inject *in, int *status)
{
	for (;;) {
		pid_t w = waitpid(in->tid, status, __WALL);
		if (w == in->tid) {
			if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
				in->gone = true;
				return -ESRCH;
			}
			return 0;
		}
		if (errno != EINTR)
			return -errno;
		if (proc_task_exiting(in->via, in->tid)) {	/* woken by the tracer's tick */
			in->gone = true;
			return -ESRCH;
		}
	}
}

/*
 * The stop at the injected call's entry. Past the deadline (a thread frozen by the
 * cgroup v2 freezer never gets there) the thread is interrupted: a PTRACE_EVENT_STOP
 * instead of the entry means the call did not run, and the thread can be put back.
 */
static int entry_stop(struct lp_inject *in, int *status)
{
	for (bool late = false;;) {
		pid_t w = waitpid(in->tid, status, __WALL);
		if (w == in->tid) {
			if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
				in->gone = true;
				return -ESRCH;
			}
			return late && *status >> 16 == PTRACE_EVENT_STOP ? -ETIMEDOUT : 0;
		}
		if (errno != EINTR)
			return -errno;
		if (proc_task_exiting(in->via, in->tid)) {
			in->gone = true;
			return -ESRCH;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!late && in->deadline && (now.tv_sec > in->deadline->tv_sec ||
		    (now.tv_sec == in->deadline->tv_sec && now.tv_nsec > in->deadline->tv_nsec))) {
			late = true;
			(void)!pt_interrupt(in->tid);
		}
	}
}

/*
 * Run to the call's entry or exit stop. A PTRACE_EVENT_STOP may come first, before
 * the call: an interrupt sent while the thread was already in a stop is still pending
 * and traps once more. It is consumed, and the thread resumed again, a few times.
 */
static int syscall_stop(struct lp_inject *in, bool entry)
{
	int status = 0, ret = 0;

	for (int i = 0; i < 4 && !ret; i++) {
		if ((ret = pt_syscall(in->tid)))
			break;
		ret = entry ? entry_stop(in, &status) : wait_stop(in, &status);
		if (!ret && WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		if (!ret && (!entry || status >> 16 != PTRACE_EVENT_STOP))
			break;
	}
	return ret ? ret : -EAGAIN;	/* another stop came first: the call did not run */
}

/* Back to an event stop like the one the thread was in (see the comment at the top). */
static int restop(struct lp_inject *in)
{
	int status, ret = pt_interrupt(in->tid);

	if (!ret)
		ret = pt_cont(in->tid, 0);
	if (!ret)
		ret = wait_stop(in, &status);
	if (!ret && status >> 16 != PTRACE_EVENT_STOP)
		ret = -EAGAIN;
	return ret;
}

/* The thread's seccomp filters let call @nr run: 0; else -EPERM (why in @in->why) or -errno. */
static int seccomp_allows(struct lp_inject *in, long nr, const long args[6])
{
	int64_t act = seccomp_check(in->tid, nr, args, in->insn);

	in->why[0] = 0;
	if (act >= 0 && seccomp_runs((uint32_t)act))
		return 0;
	if (act < 0)
		snprintf(in->why, sizeof(in->why), "thread %d has a seccomp filter that cannot be read "
			 "(%s), so system call %ld was not made", in->tid, strerror((int)-act), nr);
	else
		snprintf(in->why, sizeof(in->why), "thread %d's seccomp filter answers system call %ld "
			 "with %s, so it was not made", in->tid, nr, seccomp_action_name((uint32_t)act));
	return -EPERM;
}

/*
 * The resume block (lp_inject.resume_at): rip, rsp, rflags, rax, rbx, rcx, rdx, rsi,
 * rdi, rbp, r8-r15, the signal mask, as the trampoline reads them (shield.c). A thread
 * stopped in an interrupted call resumes as the kernel's restart would: 2 bytes back,
 * on the `syscall`, with the call's number (restart_syscall's for a restart block).
 */
static int write_resume(const struct lp_inject *in, const struct user_regs_struct *s,
			uint64_t mask)
{
	uint64_t rip = s->rip, rax = s->rax;
	long ax = (long)s->rax;

	if ((long)s->orig_rax >= 0 && (ax == -512 || ax == -513 || ax == -514 || ax == -516)) {
		rip -= 2;
		rax = ax == -516 ? 219 : s->orig_rax;
	}
	uint64_t b[19] = { rip, s->rsp, s->eflags, rax, s->rbx, s->rcx, s->rdx, s->rsi, s->rdi,
			   s->rbp, s->r8, s->r9, s->r10, s->r11, s->r12, s->r13, s->r14, s->r15,
			   mask };
	ssize_t n = pwrite(in->mem_fd, b, sizeof(b), (off_t)in->resume_at);
	return n == (ssize_t)sizeof(b) ? 0 : n < 0 ? -errno : -EIO;
}

/* proc_maps_walk() callback: 1 once both bootstrap gadgets are found (lp_inject.bootstrap). */
static int scan_gadgets(const struct lp_maps_line *m, void *arg)
{
	static const uint8_t ret_after[] = { 0x0f, 0x05, 0xc3 };		/* syscall; ret */
	static const uint8_t rt1[] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	static const uint8_t rt2[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };	/* mov $15, %eax */
	struct scan *s = arg;
	struct lp_inject *in = s->in;

	if (m->perms[2] != 'x' || m->path[0] != '/')
		return 0;
	for (uint64_t at = m->start; at < m->end && at - m->start < BOOT_SCAN_MAX; at += SCAN_MAX) {
		size_t len = m->end - at < SCAN_MAX ? m->end - at : SCAN_MAX;
		ssize_t n = pread(in->mem_fd, s->buf, len, (off_t)at);
		for (ssize_t i = 0; i + (ssize_t)sizeof(rt1) <= n; i++) {
			const uint8_t *p = s->buf + i;
			if (!in->gadget && !memcmp(p, ret_after, sizeof(ret_after)))
				in->gadget = at + (uint64_t)i;
			if (!in->restorer && (!memcmp(p, rt1, sizeof(rt1)) || !memcmp(p, rt2, sizeof(rt2))))
				in->restorer = at + (uint64_t)i;
		}
		if (in->gadget && in->restorer)
			return 1;
	}
	return 0;
}

/*
 * The signal frame of the bootstrap (lp_inject.bootstrap), below @s's red zone: the
 * return address of the gadget's `ret` (the restorer), then the ucontext rt_sigreturn
 * reads (uc_flags, uc_link, uc_stack, uc_mcontext, uc_sigmask) with the thread's
 * registers as the kernel would restart an interrupted call, and its XSAVE area.
 * Returns the stack pointer the call runs with, or 0 when the frame cannot be written.
 */
#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U

static uint64_t write_frame(const struct lp_inject *in, const struct user_regs_struct *s,
			    uint64_t mask)
{
	static uint8_t xs[16384];
	long xn = pt_getxstate(in->tid, xs, sizeof(xs) - 64);	/* a multiple of 8, room for MAGIC2 */
	uint64_t rip = s->rip, rax = s->rax;
	long ax = (long)s->rax;

	if (xn < 512)
		return 0;
	uint32_t magic1;
	memcpy(&magic1, xs + 464, sizeof(magic1));
	bool xsave = magic1 == FP_XSTATE_MAGIC1;
	if (xsave) {
		uint32_t m2 = FP_XSTATE_MAGIC2;
		memcpy(xs + xn, &m2, sizeof(m2));
	}
	size_t xlen = (size_t)xn + (xsave ? 4 : 0);
	if ((long)s->orig_rax >= 0 && (ax == -512 || ax == -513 || ax == -514 || ax == -516)) {
		rip -= 2;
		rax = ax == -516 ? 219 : s->orig_rax;
	}
	uint64_t fp = (s->rsp - 128 - 256 - xlen) & ~63ULL;
	uint64_t sp = (fp - 320) & ~15ULL;
	uint64_t f[40] = { 0 };
	f[0] = in->restorer;			/* pretcode: where `ret` goes */
	f[1] = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (xsave ? UC_FP_XSTATE : 0);
	/* f[2]: uc_link; f[3..5]: uc_stack, left invalid so that rt_sigreturn keeps the thread's */
	uint64_t *mc = f + 6;
	const uint64_t gp[] = { s->r8, s->r9, s->r10, s->r11, s->r12, s->r13, s->r14, s->r15,
				s->rdi, s->rsi, s->rbp, s->rbx, s->rdx, rax, s->rcx, s->rsp, rip,
				s->eflags };
	memcpy(mc, gp, sizeof(gp));
	mc[18] = (s->cs & 0xffff) | (s->ss & 0xffff) << 48;	/* cs, gs, fs, ss */
	mc[23] = fp;				/* fpstate */
	f[6 + 32] = mask;			/* uc_sigmask, after the 256 bytes of uc_mcontext */
	if (pwrite(in->mem_fd, xs, xlen, (off_t)fp) != (ssize_t)xlen ||
	    pwrite(in->mem_fd, f, 8 * 39, (off_t)sp) != 8 * 39)
		return 0;
	return sp;
}

long inject_syscall(void *arg, long nr, const long args[6], bool *failed)
{
	struct lp_inject *in = arg;
	struct user_regs_struct saved, r;
	uint64_t mask;
	long result = 0;
	int ret;

	*failed = true;
	if (in->bootstrap && !in->gadget) {
		static uint8_t buf[SCAN_MAX];
		struct scan s = { in, false, buf };
		if (proc_maps_walk(in->via, scan_gadgets, &s) != 1)
			in->gadget = in->restorer = 0;
	}
	if (in->bootstrap && in->gadget && in->restorer)
		in->insn = in->gadget;
	if (!in->insn && (ret = find_syscall_insn(in)))
		return ret;
	if ((ret = seccomp_allows(in, nr, args)))
		return ret;
	if ((ret = pt_getregs(in->tid, &saved)) || (ret = pt_getsigmask(in->tid, &mask)))
		return ret;
	r = saved;
	r.rip = in->insn;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1;	/* no restart of the call it was in */
	r.rdi = (unsigned long long)args[0];
	r.rsi = (unsigned long long)args[1];
	r.rdx = (unsigned long long)args[2];
	r.r10 = (unsigned long long)args[3];
	r.r8 = (unsigned long long)args[4];
	r.r9 = (unsigned long long)args[5];
	if (in->resume_at) {
		if ((ret = write_resume(in, &saved, mask)))
			return ret;
		r.rbx = in->resume_at;
	} else if (in->bootstrap && in->insn == in->gadget && in->gadget) {
		/* No room for the frame on its stack: the call is made as usual. */
		uint64_t sp = write_frame(in, &saved, mask);
		if (sp)
			r.rsp = sp;
	}
	if ((ret = pt_setsigmask(in->tid, ~0ULL)) || (ret = pt_sysgood(in->tid, true)) ||
	    (ret = pt_setregs(in->tid, &r)))
		goto restore;
	if ((ret = syscall_stop(in, true)))
		goto restore;
	if (in->die_at && !strcmp(in->die_at, in->resume_at ? "inject" : r.rip == in->gadget &&
				  r.rsp != saved.rsp ? "inject-boot" : "inject-plain"))
		kill(getpid(), SIGKILL);
	if ((ret = syscall_stop(in, false)))
		goto restore;
	if ((ret = pt_getregs(in->tid, &r)))
		goto restore;
	result = (long)r.rax;
restore:
	if (in->gone)
		return -ESRCH;
	/* Whatever stop it is in now, it gets its registers and mask back. */
	int back = pt_setregs(in->tid, &saved);
	if (!back)
		back = pt_setsigmask(in->tid, mask);
	if (!back)
		back = pt_sysgood(in->tid, false);
	if (!back)
		back = restop(in);
	if (ret || back)
		return ret ? ret : back;
	*failed = false;
	return result;
}
