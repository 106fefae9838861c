/* Seize: attach to every thread of the process without stopping any. */
#ifndef LP_SEIZE_H
#define LP_SEIZE_H

#include <stdbool.h>
#include <time.h>
#include "lp.h"

enum lp_thread_state {
	TH_RUNNING,	/* not in a stop we reaped */
	TH_STOPPED,	/* in a stop we reaped and have not resumed yet */
	TH_LISTENING,	/* group-stopped, restarted with PTRACE_LISTEN: stays stopped */
	TH_PARKED,	/* trapped during a revert: waits for the head write */
	TH_NEW,		/* announced by a clone event, first stop not seen yet */
	TH_GONE,
};

struct lp_thread {
	pid_t tid;
	enum lp_thread_state state;
	bool child;		/* a fork/vfork child: held stopped until the end */
	bool sharer;		/* a vfork child that shares the memory: synced like a thread */
	bool synced;		/* passed the current sync */
	bool interrupted;	/* PTRACE_INTERRUPT sent, its stop not seen yet */
	bool want_trap;		/* resumed to collect a queued SIGTRAP of ours */
	bool deferred;		/* synced, trapped again: held a while (transact.c) */
	bool group_stop;	/* its last stop was a group stop: it stays stopped */
	bool stepped;		/* single-stepped by us (a trap of ours may come late) */
	bool moved_frames;	/* stopped, its signal frames were looked at in this sync */
	bool framed;		/* blocked, its stack was scanned in this sync: */
	bool frames_inside;	/* with this result, */
	uint64_t scanned_sp, scanned_pc;	/* asleep here */
	int sig;		/* a signal its stop was delivering, to pass on at resume */
	bool await_repair;	/* holds a SIGTRAP until the disposition is put back */
	bool mask_known, trap_blocked;	/* it blocks SIGTRAP (seen at a stop of its own) */
	unsigned int restored_seen;	/* the disposition's repairs when it was last resumed */
	uint64_t park_site;	/* for TH_PARKED: the site to restart at */
	/*
	 * Single-stepped since it last ran: the kernel keeps TF set until the next
	 * PTRACE_CONT, and our death would leave it so. Such a thread is never the one
	 * held stopped for the next write.
	 */
	bool step_armed;
	struct timespec paused_at;
	bool forkless;		/* no fork, clone or exec of its own is under way untraced */
	int syscall_fd;		/* its /proc syscall file, kept open (thread_file); -1 if not */
	bool checked;		/* looked at by this sync's check of who is inside (§9) */
	bool inside;		/* and found inside: a trap of ours parks it */
	long sys_nr;		/* blocked: its call, user SP and PC, as observed */
	uint64_t sys_sp, sys_pc;
};

struct lp_threads {
	pid_t pid;
	struct lp_thread *v;
	size_t n, cap;
	struct lp_fanout *fan;	/* shares the /proc reads of a large seize (fanout.h) */
};

/*
 * PTRACE_SEIZE every thread of @pid, rescanning /proc/PID/task until a pass finds
 * none new, then every child that runs in its memory (vfork).
 */
int seize_all(struct lp_threads *ts, pid_t pid, struct lp_diag *d) LP_MUST_CHECK;
/*
 * One more pass, after the first sync: a thread whose clone() began before its
 * parent was seized is not auto-attached, and may show up in /proc after seize_all().
 */
int seize_rescan(struct lp_threads *ts, struct lp_diag *d) LP_MUST_CHECK;
/*
 * Read @t's /proc/PID/task/TID/@which ("syscall", "stat") into @buf, through the
 * descriptor kept in @fd (pread at 0: the kernel shows it afresh; a sync reads every
 * thread's, and opening them was most of a sync's cost). The length, or -1 once the
 * thread is gone. A stat line's fields: proc_stat_field() (proc.h).
 */
int thread_file(const struct lp_threads *ts, struct lp_thread *t, int *fd, const char *which,
		char *buf, size_t cap);
/*
 * System call @nr (as /proc/.../syscall shows it) is a fork, clone or exec: under way,
 * it has a child to report or an image to replace. vfork is not among them: its
 * caller sleeps until the child execs or exits (transact.c looks at it apart).
 */
bool spawning_call(long nr);
/*
 * The children of thread @tid that share the memory (vfork, posix_spawn), seized if
 * they were not yet. Returns how many it has, or -errno.
 */
int seize_sharers_of(struct lp_threads *ts, pid_t tid, struct lp_diag *d) LP_MUST_CHECK;
/* @other runs in @pid's memory (kcmp KCMP_VM): a thread, or a vfork child. */
bool shares_memory(pid_t pid, pid_t other);
struct lp_thread *threads_find(struct lp_threads *ts, pid_t tid);
struct lp_thread *threads_add(struct lp_threads *ts, pid_t tid);
void threads_free(struct lp_threads *ts);

#endif
