/*
 * Seccomp: would the seccomp filters of a thread let a system call livepatch injects
 * (inject.h) run? A filter can kill the thread or the process for a call the program
 * never makes itself (mmap of a new region, memfd_create), trap it into SIGSYS, or
 * hand it to a supervisor that never answers. Each filter is read back from the
 * kernel (PTRACE_SECCOMP_GET_FILTER) and run here on the call's arguments.
 */
#ifndef LP_SECCOMP_H
#define LP_SECCOMP_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Run classic BPF program @prog (@n instructions) as seccomp does on a call @nr with
 * @args from @ip on x86-64: its return value (SECCOMP_RET_*); SECCOMP_RET_KILL_PROCESS
 * for a program that is not valid seccomp BPF. Pure.
 */
uint32_t seccomp_run(const struct sock_filter *prog, size_t n, long nr, const long args[6],
		     uint64_t ip);

/* The action a set of results comes to: the most restrictive one wins. Pure. */
uint32_t seccomp_combine(uint32_t a, uint32_t b);

/* SECCOMP_RET_ALLOW or SECCOMP_RET_LOG: the call runs. */
bool seccomp_runs(uint32_t action);

/* The action's name ("KILL_PROCESS", "ERRNO", ...). */
const char *seccomp_action_name(uint32_t action);

/*
 * What the filters of stopped thread @tid do with call @nr(@args) from @ip: its action
 * (SECCOMP_RET_ALLOW for a thread with none), or -errno when they cannot be read.
 */
int64_t seccomp_check(pid_t tid, long nr, const long args[6], uint64_t ip);

#endif
