/*
 * The only file that calls ptrace(2). Every wrapper returns 0 or -errno; ESRCH
 * means the thread is gone (or not stopped), which callers treat as an outcome.
 */
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include "ptrace_ops.h"

#define SEIZE_OPTIONS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | \
		       PTRACE_O_TRACEEXEC)	/* never PTRACE_O_EXITKILL: our death must not kill the service */

static int call(enum __ptrace_request req, pid_t tid, unsigned long addr, unsigned long data)
{
	return ptrace(req, tid, addr, data) < 0 ? -errno : 0;
}

int pt_seize(pid_t tid) { return call(PTRACE_SEIZE, tid, 0, SEIZE_OPTIONS); }
int pt_interrupt(pid_t tid) { return call(PTRACE_INTERRUPT, tid, 0, 0); }
int pt_cont(pid_t tid, int sig) { return call(PTRACE_CONT, tid, 0, (unsigned long)sig); }
int pt_step(pid_t tid, int sig) { return call(PTRACE_SINGLESTEP, tid, 0, (unsigned long)sig); }
int pt_listen(pid_t tid) { return call(PTRACE_LISTEN, tid, 0, 0); }
int pt_detach(pid_t tid, int sig) { return call(PTRACE_DETACH, tid, 0, (unsigned long)sig); }
int pt_syscall(pid_t tid) { return call(PTRACE_SYSCALL, tid, 0, 0); }

long pt_seccomp_filter(pid_t tid, unsigned long index, void *buf)
{
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)index, buf);

	return n < 0 ? -errno : n;
}

int pt_sysgood(pid_t tid, bool on)
{
	return call(PTRACE_SETOPTIONS, tid, 0, SEIZE_OPTIONS | (on ? PTRACE_O_TRACESYSGOOD : 0));
}

int pt_getsigmask(pid_t tid, uint64_t *mask)
{
	return call(PTRACE_GETSIGMASK, tid, sizeof(*mask), (unsigned long)mask);
}

int pt_setsigmask(pid_t tid, uint64_t mask)
{
	return call(PTRACE_SETSIGMASK, tid, sizeof(mask), (unsigned long)&mask);
}

int pt_getregs(pid_t tid, struct user_regs_struct *r)
{
	return call(PTRACE_GETREGS, tid, 0, (unsigned long)r);
}

long pt_getxstate(pid_t tid, void *buf, size_t cap)
{
	struct iovec iov = { buf, cap };
	int ret = call(PTRACE_GETREGSET, tid, 0x202 /* NT_X86_XSTATE */, (unsigned long)&iov);

	return ret ? ret : (long)iov.iov_len;
}

int pt_setregs(pid_t tid, const struct user_regs_struct *r)
{
	return call(PTRACE_SETREGS, tid, 0, (unsigned long)r);
}

int pt_getsiginfo(pid_t tid, siginfo_t *si)
{
	return call(PTRACE_GETSIGINFO, tid, 0, (unsigned long)si);
}

int pt_geteventmsg(pid_t tid, unsigned long *msg)
{
	return call(PTRACE_GETEVENTMSG, tid, 0, (unsigned long)msg);
}

/* The whole private queue, 16 entries at a time: a program may keep many signals queued. */
int pt_trap_queued(pid_t tid)
{
	siginfo_t si[16];

	for (struct __ptrace_peeksiginfo_args a = { .off = 0, .flags = 0, .nr = 16 };; a.off += 16) {
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &a, si);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++)
			if (si[i].si_signo == SIGTRAP && si[i].si_code == SI_KERNEL)
				return 1;
		if (n < 16)
			return 0;
	}
}

static int peek(pid_t tid, uint64_t addr, unsigned long *word)
{
	errno = 0;
	long v = ptrace(PTRACE_PEEKTEXT, tid, addr, 0);
	if (errno)
		return -errno;
	*word = (unsigned long)v;
	return 0;
}

/*
 * Word by word: aligned words never cross a page. A write puts back the bytes
 * outside [addr, addr+len) as they were read.
 */
static int peek_poke(pid_t tid, uint64_t addr, uint8_t *buf, size_t len, bool write)
{
	for (uint64_t w = addr & ~7ULL; w < addr + len; w += 8) {
		unsigned long word;
		int ret = peek(tid, w, &word);
		if (ret)
			return ret;
		for (int i = 0; i < 8; i++) {
			if (w + i < addr || w + i >= addr + len)
				continue;
			if (write)
				((uint8_t *)&word)[i] = buf[w + i - addr];
			else
				buf[w + i - addr] = ((uint8_t *)&word)[i];
		}
		if (write && (ret = call(PTRACE_POKETEXT, tid, w, word)))
			return ret;
	}
	return 0;
}

int pt_read(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	return peek_poke(tid, addr, buf, len, false);
}

int pt_write(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	return peek_poke(tid, addr, (uint8_t *)buf, len, true);
}
