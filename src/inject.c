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

long inject_syscall(void *arg, long nr, const long args[6], bool *failed)
{
	struct lp_inject *in = arg;
	struct user_regs_struct saved, r;
	uint64_t mask;
	long result = 0;
	int ret;

	*failed = true;
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
	if ((ret = pt_setsigmask(in->tid, ~0ULL)) || (ret = pt_sysgood(in->tid, true)) ||
	    (ret = pt_setregs(in->tid, &r)))
		goto restore;
	if ((ret = syscall_stop(in, true)) || (ret = syscall_stop(in, false)))
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
