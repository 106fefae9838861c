/*
 * Inject: run one system call in a thread of the process that is in a ptrace stop
 * we reaped (compel's way, without a parasite): the thread's registers and signal
 * mask are saved, it runs a `syscall` instruction of the process between two
 * PTRACE_SYSCALL stops with every signal blocked, and it is put back.
 */
#ifndef LP_INJECT_H
#define LP_INJECT_H

#include <signal.h>
#include <stdbool.h>
#include "lp.h"

struct lp_inject {
	pid_t tid;		/* the stopped thread that runs the call */
	pid_t via;		/* whose /proc shows the memory */
	int mem_fd;		/* /proc/VIA/mem */
	uint64_t insn;		/* a `syscall` instruction in the process; 0: find one */
	const struct timespec *deadline;	/* CLOCK_MONOTONIC: the call must have begun */
	/*
	 * Nonzero: @insn is the shield's trampoline (shield.h) and this is a free resume
	 * block in the process. The thread's registers, as the kernel would restart an
	 * interrupted call, and its mask are written there first: if livepatch dies
	 * during the call, the thread puts them back itself.
	 */
	uint64_t resume_at;
	/*
	 * Without a trampoline (the shield's own mmap): run the call at a `syscall; ret`
	 * of the process, whose `ret` goes to a sigreturn of the process (`mov $15, %eax;
	 * syscall`) with a signal frame written below the thread's red zone. If
	 * livepatch dies during the call, rt_sigreturn puts the thread back: registers,
	 * mask and FPU state. Found on first use (0: none; then the call is made as usual).
	 */
	bool bootstrap;
	const char *die_at;	/* lp_tx_fault.kill_at */
	uint64_t gadget, restorer;
	bool gone;		/* the thread exited meanwhile */
	char why[200];		/* why a call was not even tried (its seccomp filter), or "" */
};

/*
 * Runs one system call in a stopped thread of the process; returns the call's
 * result, or -errno of the injection itself with *@failed set.
 */
struct lp_injector {
	long (*syscall)(void *arg, long nr, const long args[6], bool *failed);
	void *arg;
	const char *why;	/* after a failed injection: why, when it was refused, else "" */
};

/*
 * Run system call @nr(@args) in @in->tid. Returns what the call returned (a
 * negative errno for a failed call) with *@failed false; or -errno of the
 * injection with *@failed true. Either way the thread is back in a ptrace stop
 * (PTRACE_EVENT_STOP, a group stop if its process is stopped) with the
 * registers and signal mask it had, its interrupted system call, if any, still to
 * be restarted by the kernel as before. The stop it was in must not have had a
 * signal to deliver. A call the thread's seccomp filters would not let run (a kill,
 * SIGSYS, a supervisor's answer, an error) is not made: -EPERM with @in->why set.
 * Suits lp_injector.syscall (xol.h).
 */
long inject_syscall(void *in, long nr, const long args[6], bool *failed);

#endif
