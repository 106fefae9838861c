/*
 * What a stop of a tracee means (docs/design.md §4, §5): an interrupt, a group stop,
 * a fork, clone or exec event, one of our traps, or a signal of the program's, which
 * is passed on exactly once. Every stop reaped during a transaction comes here.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>	/* event numbers only: the calls live in ptrace.c */
#include <sys/syscall.h>
#include <sys/wait.h>
#include "events.h"
#include "inside.h"
#include "moveout.h"
#include "ptrace_ops.h"
#include "proc.h"
#include "trap.h"

#define ERESTARTNOHAND 514	/* the kernel's: restart the call unless a handler runs */

enum kin { KIN_THREAD, KIN_SHARER, KIN_CHILD };

/*
 * What a new tracee is to the transaction: a thread of the process; a vfork
 * child, which runs in our memory and is synced like a thread (held stopped, it
 * would hold its parent in vfork() where no interrupt can reach it); or a fork
 * child with its own copy of the text, held stopped until it gets the final bytes.
 */
static enum kin kin_of(const struct tx *tx, pid_t tid)
{
	if ((pid_t)proc_status_field(tid, "Tgid") == tx->pid)
		return KIN_THREAD;
	return shares_memory(tx->pid, tid) ? KIN_SHARER : KIN_CHILD;
}

/* A tid we did not know: a new thread whose first stop beat its clone event, or a child. */
static struct lp_thread *adopt(struct tx *tx, pid_t tid, enum kin kin)
{
	struct lp_thread *t = threads_add(&tx->ts, tid);

	if (!t)
		return NULL;
	t->child = kin == KIN_CHILD;
	t->sharer = kin == KIN_SHARER;
	t->state = TH_NEW;
	t->synced = true;	/* it has not run user code yet and will stop first */
	t->forkless = true;	/* traced from its start: every child it makes is reported */
	if (kin == KIN_THREAD) {
		tx->st->clones++;
		tx->st->threads++;
	} else {
		tx->st->forks++;
	}
	return t;
}

/*
 * Any ptrace stop of a thread after the last write: it was off the CPU, so it is
 * synced, unless a trap of ours is still queued. Any stop also consumes a pending
 * PTRACE_INTERRUPT (the kernel clears the STOP trap on every trap), so no other
 * stop will follow for it. @sig is the signal this stop delivers, if any.
 */
static int after_stop(struct tx *tx, struct lp_thread *t, int sig, bool hold, bool in_event)
{
	int ret;

	t->interrupted = false;
	trap_note_mask(tx, t);
	ret = moveout_examine(tx, t, &sig, in_event);
	if (ret < 0) {
		t->sig = sig;	/* delivered when it is resumed, whatever happens now */
		return ret;
	}
	if (ret == 1)
		return tx_resume(tx, t, sig);	/* collect the queued trap; synced when handled */
	if (t->state == TH_GONE)
		return 0;
	t->synced = true;
	if (hold && !sig && !t->step_armed) {
		tx->held = t->tid;
		return 0;
	}
	return tx_resume(tx, t, sig);
}

/*
 * Our interrupt reached a thread just inside a blocking call that the kernel does
 * not restart after a stop (epoll_wait, sigtimedwait, semop, a socket call with a
 * timeout): the call would return EINTR to the program, because of us. Nothing was
 * transferred (else it would return a count), so restarting the call is what the
 * program would have had: the EINTR becomes the kernel's ERESTARTNOHAND, which it
 * restarts on resume unless a signal handler runs first (then the program gets
 * EINTR, as it would have anyway). A timed call waits its whole timeout again, but
 * it had only begun: the thread was seen running microseconds before the interrupt.
 * Only calls for which a restart is the same call are listed (not close, connect).
 */
void events_keep_blocking_call(struct tx *tx, const struct lp_thread *t)
{
	struct user_regs_struct r;

	if (pt_getregs(t->tid, &r) || (long long)r.orig_rax < 0 || (long long)r.rax != -EINTR)
		return;
	switch (r.orig_rax) {
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
	case SYS_rt_sigtimedwait: case SYS_semop: case SYS_semtimedop:
	case SYS_read: case SYS_readv: case SYS_write: case SYS_writev:
	case SYS_recvfrom: case SYS_recvmsg: case SYS_sendto: case SYS_sendmsg:
	case SYS_accept: case SYS_accept4:
		break;
	default:
		return;
	}
	r.rax = (unsigned long long)-ERESTARTNOHAND;
	if (!pt_setregs(t->tid, &r)) {
		tx->st->calls_restarted++;
		LOG(tx, "thread %d: system call %lld restarted (our interrupt made it return EINTR)",
		    t->tid, (long long)r.orig_rax);
	}
}

static int on_event(struct tx *tx, struct lp_thread *t, int event)
{
	unsigned long msg = 0;
	int ret;

	switch (event) {
	case PTRACE_EVENT_CLONE:
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		ret = pt_geteventmsg(t->tid, &msg);
		if (!ret && !threads_find(&tx->ts, (pid_t)msg)) {
			pid_t tid = t->tid;	/* adopt() may move the array t points into */
			if (!adopt(tx, (pid_t)msg, kin_of(tx, (pid_t)msg)))
				return -ENOMEM;
			t = threads_find(&tx->ts, tid);
		}
		break;
	case PTRACE_EVENT_EXEC:
		if (t->sharer || (pid_t)proc_status_field(t->tid, "Tgid") != tx->pid) {
			/* A vfork child left our memory for its own image: not ours any more. */
			t->state = TH_GONE;
			ret = pt_detach(t->tid, 0);
			return ret == -ESRCH ? 0 : ret;
		}
		/* The image we planned for is gone: leave the new one alone (docs/design.md §4). */
		tx->exec_seen = true;
		for (size_t i = 0; i < tx->ts.n; i++)
			if (!tx->ts.v[i].child)
				tx->ts.v[i].state = TH_GONE;
		t->state = TH_GONE;
		ret = pt_detach(t->tid, 0);
		(void)ret;
		return tx_died(tx);
	default:
		break;
	}
	return after_stop(tx, t, 0, false, true);	/* the call is under way */
}

/* @rewound: events_reap() already put its PC back on the site (seen here as past it). */
static int on_signal(struct tx *tx, struct lp_thread *t, int sig, bool rewound)
{
	struct user_regs_struct r;
	siginfo_t si;

	if (sig == SIGTRAP && !pt_getsiginfo(t->tid, &si) && si.si_code == SI_KERNEL &&
	    !pt_getregs(t->tid, &r)) {
		r.rip += rewound;
		const struct lp_site *s = tx_site_at(tx, r.rip - 1, NULL);
		if (s && s->addr == r.rip - 1) {
			t->interrupted = false;
			t->synced = true;
			/*
			 * Its first stop of sync 1 may be this trap: its frames are looked at
			 * too, and whether it is inside (then it is parked, not sent to the
			 * new code: docs/design.md §9).
			 */
			struct user_regs_struct at = r;
			at.rip = s->addr;	/* at the entry, not in the body: it has not begun F */
			int ret = tx->checking ? inside_check_stopped(tx, t, &at) : 0;
			if (ret >= 0)
				ret = moveout_frames_once(tx, t, r.rsp, 0, false);
			if (ret || t->state == TH_GONE)
				return ret;
			return trap_handle(tx, t, &r, s);	/* ours: never delivered */
		}
		/*
		 * An int3 trap (SI_KERNEL) of a thread we single-stepped, whose PC-1 holds
		 * no int3: one of ours, reported after the step moved its PC. Delivering
		 * it would kill the program: dropped as late. Any other SIGTRAP, the
		 * program's own `int $3` (cd 03) included, is the program's.
		 */
		uint8_t prev;
		if (t->stepped && !pt_read(t->tid, r.rip - 1, &prev, 1) && prev != X86_INT3) {
			tx->st->traps_late++;
			return after_stop(tx, t, 0, false, false);
		}
	}
	/* Not ours: re-injected exactly once, from its signal-delivery stop. */
	tx->st->signals_passed++;
	if (trap_hold_own(tx, t, sig))
		return 0;
	return after_stop(tx, t, sig, false, false);
}

/*
 * A thread in a group stop (SIGSTOP or another stop signal from someone else) stays
 * stopped after we leave: it is restarted with PTRACE_LISTEN, never PTRACE_CONT, and
 * its parent sees no extra stop or continue. It is looked at like any stopped thread
 * first: its PC and signal frames may be inside displaced instructions (moved to
 * their copy), and a trap of ours may be queued (taken in the kernel, tx_resume()).
 */
static int group_stopped(struct tx *tx, struct lp_thread *t)
{
	int sig = 0;
	int ret = moveout_examine(tx, t, &sig, false);

	t->synced = true;
	t->paused_at.tv_sec = 0;
	if (ret < 0 || t->state == TH_GONE)
		return ret < 0 ? ret : 0;
	if (ret == 1) {
		t->synced = false;	/* synced once the trap is handled */
		return tx_resume(tx, t, 0);
	}
	ret = pt_listen(t->tid);
	t->state = ret == -ESRCH ? TH_GONE : TH_LISTENING;
	return ret == -ESRCH ? 0 : ret;
}

/*
 * A thread stopped on a trap at a site: its PC is put back on the site while the stop is
 * still unreaped (WNOWAIT). Run again from there, it meets whatever the site holds now.
 */
static void rewind_site_trap(struct tx *tx, pid_t tid)
{
	struct user_regs_struct r;
	siginfo_t si;

	if (pt_getsiginfo(tid, &si) || si.si_code != SI_KERNEL || pt_getregs(tid, &r))
		return;
	const struct lp_site *s = tx_site_at(tx, r.rip - 1, NULL);
	if (!s || s->addr != r.rip - 1)
		return;
	r.rip = s->addr;
	if (!pt_setregs(tid, &r))
		tx->rewound = tid;
}

/* LP_KILL_AT=trap (any reaped trap at a site) or trap@STEP (one reaped during that sync). */
static bool kill_at_trap(const struct tx *tx)
{
	const char *k = tx->fault.kill_at;

	if (!k || strncmp(k, "trap", 4))
		return false;
	return !k[4] || (k[4] == '@' && tx->syncing && !strcmp(k + 5, tx->syncing));
}

pid_t events_reap(struct tx *tx, pid_t pid, int *status, int flags)
{
	siginfo_t wi = { 0 };

	tx->rewound = 0;
	if (waitid(pid < 0 ? P_ALL : P_PID, pid < 0 ? 0 : (id_t)pid, &wi,
		   WEXITED | WSTOPPED | WNOWAIT | __WALL | flags) < 0)
		return -1;
	if (!wi.si_pid)
		return 0;	/* WNOHANG: nothing yet */
	/* A signal-delivery stop for SIGTRAP (an event stop carries its event in si_status). */
	if (wi.si_code == CLD_TRAPPED && wi.si_status == SIGTRAP)
		rewind_site_trap(tx, wi.si_pid);
	pid_t w = waitpid(wi.si_pid, status, __WALL | WNOHANG);
	if (w > 0 && tx->rewound && kill_at_trap(tx))
		kill(getpid(), SIGKILL);	/* a test's kill at the worst point: a trap reaped */
	if (w == 0) {	/* cannot be: it was there and only we resume it */
		errno = EAGAIN;
		return -1;
	}
	return w;
}

int events_wait_one(struct tx *tx, bool hold_last)
{
	int status;
	pid_t tid = events_reap(tx, -1, &status, 0);

	if (tid < 0)
		return -errno;
	return events_on_status(tx, tid, status, hold_last);
}


int events_on_status(struct tx *tx, pid_t tid, int status, bool hold_last)
{
	struct lp_thread *t = threads_find(&tx->ts, tid);
	bool rewound = tx->rewound == tid;

	tx->rewound = 0;
	if (tid == tx->opts->guard_pid)	/* our guard (guard.h), which exits only after us */
		return 0;
	if (!t) {
		/*
		 * Its stop beat the event that announces it. A fork child resumed as a
		 * thread would run our int3 in its copy: only a kin we can tell is let run.
		 */
		t = adopt(tx, tid, kin_of(tx, tid));
		if (!t)
			return -ENOMEM;
	}
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->state = TH_GONE;
		if (!t->child)
			tx->st->exits++;
		return 0;
	}
	if (!WIFSTOPPED(status))
		return 0;
	if (!t->paused_at.tv_sec)	/* an interrupted thread's pause began at the interrupt */
		clock_gettime(CLOCK_MONOTONIC, &t->paused_at);
	t->state = TH_STOPPED;
	int sig = WSTOPSIG(status), event = status >> 16;
	if (t->child)
		return 0;	/* fork children stay stopped until they get the final bytes */
	if (event == PTRACE_EVENT_STOP) {
		t->interrupted = false;
		t->group_stop = events_is_stop_signal(sig);
		if (t->group_stop)
			return group_stopped(tx, t);
		events_keep_blocking_call(tx, t);
		bool hold = hold_last && tx_unsynced(tx) == (t->synced ? 0 : 1);
		return after_stop(tx, t, 0, hold, false);
	}
	if (event)
		return on_event(tx, t, event);
	return on_signal(tx, t, sig, rewound);
}
