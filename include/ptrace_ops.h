/* Every ptrace(2) call of livepatch goes through here (one file owns them). */
#ifndef LP_PTRACE_OPS_H
#define LP_PTRACE_OPS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/user.h>
#include "lp.h"

int pt_seize(pid_t tid) LP_MUST_CHECK;
int pt_interrupt(pid_t tid) LP_MUST_CHECK;
int pt_cont(pid_t tid, int sig) LP_MUST_CHECK;
int pt_step(pid_t tid, int sig) LP_MUST_CHECK;
int pt_listen(pid_t tid) LP_MUST_CHECK;
int pt_detach(pid_t tid, int sig) LP_MUST_CHECK;
/* PTRACE_SYSCALL: run to the next system-call entry or exit (inject.c only). */
int pt_syscall(pid_t tid) LP_MUST_CHECK;
/*
 * Seccomp filter @index of stopped thread @tid (0: the last installed): its length in
 * instructions, copied into @buf (room for BPF_MAXINSNS) unless NULL; -ENOENT past
 * the last; -errno.
 */
long pt_seccomp_filter(pid_t tid, unsigned long index, void *buf);
/* The seize options, with PTRACE_O_TRACESYSGOOD or without. */
int pt_sysgood(pid_t tid, bool on) LP_MUST_CHECK;
int pt_getsigmask(pid_t tid, uint64_t *mask) LP_MUST_CHECK;
int pt_setsigmask(pid_t tid, uint64_t mask) LP_MUST_CHECK;
int pt_getregs(pid_t tid, struct user_regs_struct *r) LP_MUST_CHECK;
int pt_setregs(pid_t tid, const struct user_regs_struct *r) LP_MUST_CHECK;
/* The thread's XSAVE area (NT_X86_XSTATE) into @buf: its size, or -errno. */
long pt_getxstate(pid_t tid, void *buf, size_t cap) LP_MUST_CHECK;
int pt_getsiginfo(pid_t tid, siginfo_t *si) LP_MUST_CHECK;
int pt_geteventmsg(pid_t tid, unsigned long *msg) LP_MUST_CHECK;
/* Is a SIGTRAP with si_code SI_KERNEL queued on @tid's private queue? 1, 0 or -errno. */
int pt_trap_queued(pid_t tid);

/* Read/write @len bytes at @addr through stopped thread @tid, whole words, read-modify-write. */
int pt_read(pid_t tid, uint64_t addr, void *buf, size_t len) LP_MUST_CHECK;
int pt_write(pid_t tid, uint64_t addr, const void *buf, size_t len) LP_MUST_CHECK;

#endif
