/*
 * The sync (docs/design.md §4): after a write, one moment for every thread at which it
 * ran no user code and held no trap of ours. Observe each thread in /proc, leave the
 * blocked ones alone, interrupt the rest, reap their stops, defer the threads that
 * trap again, release them on time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>	/* event numbers only: the calls live in ptrace.c */
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "events.h"
#include "inside.h"
#include "moveout.h"
#include "ptrace_ops.h"
#include "proc.h"
#include "sync.h"

#define DEFER_US 50		/* hold of a thread that traps again in its sync, if alone */
#define DEFER_EACH_US 30	/* and this much longer for every other thread held */

enum seen { SEEN_RUNNING, SEEN_BLOCKED, SEEN_BLOCKED_IN_SITE, SEEN_TRACED, SEEN_GONE };

/*
 * A thread asleep in vfork() is blocked for good once its child exists (that child
 * is then ours, synced like a thread); before that it is in the middle of the call,
 * and its child, untraced, would copy nothing but run in our memory: never blocked.
 */
static enum seen vfork_parent(struct tx *tx, pid_t tid)
{
	int n = seize_sharers_of(&tx->ts, tid, tx->d);

	return n > 0 ? SEEN_BLOCKED : SEEN_RUNNING;
}

/*
 * Where a thread we did not stop is now, from /proc (no signal, no stop):
 * blocked in the kernel (with its user PC), running, or in a ptrace stop that
 * has not been reported to us yet. May add a vfork child to tx->ts (@t moves).
 */
static enum seen observe(struct tx *tx, struct lp_thread *t)
{
	struct lp_syscall sc;
	char buf[512];

	/*
	 * The syscall file alone: "running", or the call it sleeps in (-1 for none) and
	 * its user PC (0 once it has exited). A thread in a ptrace stop we have not reaped
	 * shows as asleep, and is: it runs no user code until we resume it (a trap of ours
	 * it may hold is looked for below). Reading stat as well doubled a sync's cost.
	 */
	if (thread_file(&tx->ts, t, &t->syscall_fd, "syscall", buf, sizeof(buf)) < 0)
		return SEEN_GONE;
	/* A line we cannot read proves nothing: the thread is stopped to be sure. */
	if (proc_syscall_parse(buf, &sc) || sc.running)
		return SEEN_RUNNING;
	long nr = sc.nr;
	/*
	 * A fork or clone in flight has a child to report, an execve is about to
	 * replace the image: never synced as blocked, their stop is waited for
	 * (for an exec, its exec event, once the threads it kills are reaped).
	 */
	if (spawning_call(nr))
		return SEEN_RUNNING;
	uint64_t pc = sc.pc;
	if (tx->checking) {	/* the SP for the check of who is inside */
		t->sys_nr = nr;
		t->sys_sp = sc.sp;
		t->sys_pc = pc;
	}
	/* No user PC and no call: past do_exit, its stack released. Its exit report is awaited. */
	if (nr == -1 && !pc)
		return SEEN_GONE;
	/*
	 * Asleep outside any system call (nr -1: in a fault, or on the way to a signal)
	 * just past a site's first byte: it may have run our int3 and hold its SIGTRAP,
	 * which only its stop lets us collect. Never synced as blocked: released with
	 * that trap queued, the program would get it.
	 */
	const struct lp_site *t3 = nr == -1 ? tx_site_at(tx, pc - 1, NULL) : NULL;
	if (t3 && t3->addr == pc - 1)
		return SEEN_RUNNING;
	/*
	 * Inside displaced instructions, just past a final `syscall` that a restart would
	 * re-enter, or with a signal frame that returns inside them: it must be moved to
	 * the out-of-line copy before the tail changes, which takes a stop.
	 */
	if (tx->stepout && moveout_needed(tx, t, sc.sp, pc))
		return SEEN_BLOCKED_IN_SITE;
	return nr == SYS_vfork && !t->sharer ? vfork_parent(tx, t->tid) : SEEN_BLOCKED;
}

/*
 * Whether the process is going away under us: every thread reaped, an exec
 * reported, or /proc shows it dead or without memory (the memory goes first,
 * at the start of an exit). Looked for only after something failed, a little
 * while, since an exit reaches /proc in steps. Meanwhile the stops and exits
 * waiting for us are handled: an exec completes, and reports itself, only once
 * the threads it killed have been reaped.
 */
bool sync_process_ending(struct tx *tx)
{
	char path[64], buf[1];

	for (int i = 0; i < 20; i++) {
		int status;
		pid_t w;
		while ((w = events_reap(tx, -1, &status, WNOHANG)) > 0)
			(void)!events_on_status(tx, w, status, false);
		if (!tx_process_alive(tx) || tx->exec_seen)
			return true;
		if (proc_task_exiting(tx->pid, tx->via))
			return true;
		snprintf(path, sizeof(path), "/proc/%d/maps", tx->via);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return true;
		usleep(5000);
	}
	return false;
}

static int timed_out(struct tx *tx)
{
	static const char *const why[] = {
		[SEEN_RUNNING] = "it was interrupted but did not stop",
		[SEEN_BLOCKED] = "it is blocked in the kernel",
		[SEEN_BLOCKED_IN_SITE] = ("it is blocked in the kernel with its PC or a signal "
					  "frame inside the bytes to replace, and did not stop to be moved"),
		[SEEN_TRACED] = "its ptrace stop was never reported",
		[SEEN_GONE] = "it is exiting",
	};

	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (t->synced || t->state == TH_GONE || t->child)
			continue;
		enum seen seen = observe(tx, t);
		char st[512];
		const char *p;
		int fd = -1;
		t = &tx->ts.v[i];
		if (seen == SEEN_BLOCKED && thread_file(&tx->ts, t, &fd, "stat", st, sizeof(st)) > 0 &&
		    (p = proc_stat_field(st, 3)) && (*p == 't' || *p == 'T'))
			seen = SEEN_TRACED;
		if (fd >= 0)
			close(fd);
		char frz[PATH_MAX];
		int v = proc_frozen(tx->pid, t->tid, frz, sizeof(frz));
		if (v)	/* frozen, not blocked: waited for a thaw until the timeout */
			return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not reach a safe point "
				       "within %u ms: it is frozen by the cgroup freezer (v%d, %s); %s "
				       "(thaw it, or retry once it is thawed)", t->tid, tx->timeout_ms, v,
				       frz, TX_STATE(tx));
		return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not reach a safe point "
			       "within %u ms: %s%s%s; %s (retry, or raise --timeout)", t->tid,
			       tx->timeout_ms, why[seen], t->interrupted ? ", interrupt pending" : "",
			       t->want_trap ? ", trap pending" : "",
			       TX_STATE(tx));
	}
	return 0;
}

/* Threads held back during the sync run again; one may stay stopped for the next write. */
static int resume_deferred(struct tx *tx, bool hold_last, int ret)
{
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (!t->deferred)
			continue;
		t->deferred = false;
		if (t->state != TH_STOPPED)
			continue;
		if (hold_last && !ret && !tx->held && !t->step_armed) {
			tx->held = t->tid;
			continue;
		}
		int r = tx_resume(tx, t, 0);
		if (r && !ret)
			ret = r;
	}
	tx->ndeferred = 0;
	return ret;
}

/*
 * A deferred thread waits DEFER_US, and DEFER_EACH_US more for every other thread
 * held, then runs again (and traps again, while the int3 is there). Holding it
 * until the sync ended made its pause as long as the whole sync, which is set by
 * the slowest thread to stop (one waiting for a CPU to take its interrupt: 0.5-8 ms
 * measured), while it could have run. Releasing every held thread after a fixed
 * time instead let 64 hot threads trap faster than the tracer could handle them
 * (a livelock): with the hold growing with the threads held, a release costs the
 * tracer about one trap (10-15 us) per DEFER_EACH_US of hold, so the traps take
 * at most about half of its time, however many threads trap. Sets *@due_us to the
 * wait until the next release.
 */
static int release_deferred(struct tx *tx, long *due_us)
{
	*due_us = 0;
	if (!tx->ndeferred)
		return 0;
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (!t->deferred)
			continue;
		long held = (long)(lp_ms_since(&t->paused_at) * 1000);
		long hold = DEFER_US + DEFER_EACH_US * (long)(tx->ndeferred - 1);
		if (t->state == TH_STOPPED && held < hold) {
			if (!*due_us || hold - held < *due_us)
				*due_us = hold - held;
			continue;
		}
		t->deferred = false;
		tx->ndeferred--;
		int ret = t->state == TH_STOPPED ? tx_resume(tx, t, 0) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Threads looked at between two checks for stops during a sweep: a thread that
 * traps meanwhile waits for PENDING_EVERY /proc reads (4-8 us each), not 16.
 */
#define PENDING_EVERY 4
/* Stops handled at most per check. */
#define SWEEP_BATCH 16

/*
 * Handle the stops already reported (a trap on our int3, an interrupt that landed)
 * without waiting: a sweep reads every thread's /proc file, and a thread stopped
 * early in it would otherwise wait for the whole sweep (0.4 ms at 64 threads).
 */
static int handle_pending_stops(struct tx *tx)
{
	int status;
	long due;
	pid_t w;
	int ret = release_deferred(tx, &due);

	if (ret)
		return ret;
	/* Bounded: a hot thread resumed here traps again at once, and the sweep must go on. */
	for (int k = 0; k < SWEEP_BATCH && (w = events_reap(tx, -1, &status, WNOHANG)) > 0; k++)
		if ((ret = events_on_status(tx, w, status, false)))
			return ret;
	return 0;
}

/* Look at every thread not yet synced; interrupt the ones running user code. */
static int sweep_threads(struct tx *tx, bool interrupt_running)
{
	for (size_t i = 0, looked = 0; i < tx->ts.n; i++) {
		if (looked == PENDING_EVERY) {
			int ret = handle_pending_stops(tx);
			if (ret)
				return ret;
			looked = 0;
		}
		struct lp_thread *t = &tx->ts.v[i];
		if (t->synced || t->want_trap || t->child || t->state != TH_RUNNING)
			continue;
		looked++;
		enum seen seen = observe(tx, t);
		t = &tx->ts.v[i];	/* observe() may have added a vfork child */
		if (t->interrupted) {
			/*
			 * Its stop is on its way, unless it sleeps where no interrupt reaches
			 * (a vfork parent waiting for its child, a D-state read): seen there,
			 * it runs no user code, as good a sync point as the stop. The stop
			 * still comes later and is handled then.
			 */
			if (seen == SEEN_BLOCKED) {
				t->synced = true;
				tx->st->blocked_left_alone++;
				if (tx->checking)
					(void)inside_check_blocked(tx, t);
			}
			continue;
		}
		if (seen == SEEN_BLOCKED && !tx->fault.stop_blocked) {
			t->synced = true;
			tx->st->blocked_left_alone++;
			if (tx->checking)
				(void)inside_check_blocked(tx, t);
			continue;
		}
		switch (seen) {
		case SEEN_BLOCKED:	/* only with LP_FAULT=stop-blocked, for the tests */
		case SEEN_BLOCKED_IN_SITE:	/* stopped, then moved out (move_out, move_frames) */
		case SEEN_RUNNING:
			if (!interrupt_running)
				break;
			int ret = pt_interrupt(t->tid);
			if (ret && ret != -ESRCH)
				return ret;
			t->interrupted = !ret;
			clock_gettime(CLOCK_MONOTONIC, &t->paused_at);
			tx->st->thread_stops += !ret;
			break;
		default:	/* traced: its stop is on its way */
			break;
		}
	}
	return 0;
}

/* Who the sync waits for: every thread running user code, and in sync 1 the group-stopped. */
static void begin_sync(struct tx *tx)
{
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		t->synced = t->state != TH_RUNNING || t->child || (tx->sync0 && t->forkless);
		t->framed = false;
		t->moved_frames = false;
		/* A group-stopped thread's PC and frames are looked at once the int3 is in. */
		if (tx->stepout && t->state == TH_LISTENING && !pt_interrupt(t->tid)) {
			t->synced = false;
			t->interrupted = true;
			clock_gettime(CLOCK_MONOTONIC, &t->paused_at);
		}
	}
}

/* The thread held across the write is synced, but it may sit where the write matters. */
static int recheck_held(struct tx *tx)
{
	struct lp_thread *h = tx->held ? threads_find(&tx->ts, tx->held) : NULL;
	int sig = 0, ret;

	if (!h || h->state != TH_STOPPED)
		return 0;
	tx->held = 0;
	ret = moveout_examine(tx, h, &sig, false);
	if (ret < 0)
		return ret;
	h->synced = ret == 0;
	return h->state == TH_STOPPED ? tx_resume(tx, h, sig) : 0;
}

/* Reap stops until every thread is synced; a tick re-sweeps, checks deadline and cancel. */
static int wait_for_stops(struct tx *tx, bool hold_last)
{
	struct timespec swept;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &swept);
	while (tx_unsynced(tx)) {
		long due_us;
		if ((ret = release_deferred(tx, &due_us)))
			return ret;
		if (due_us)
			tx->env.tick_in(due_us);
		ret = events_wait_one(tx, hold_last);
		bool none = ret == -ECHILD, woke = none || ret == -EINTR;	/* a tick, or no tracee */
		if (woke && *tx->env.cancel && tx->forward)
			return tx_fault_point(tx, "signal");
		if (woke)
			ret = 0;
		/* After a stop as after a tick: stops that keep coming let no tick through. */
		if (!ret && lp_ms_since(&tx->deadline) > 0)
			ret = sync_process_ending(tx) ? tx_died(tx) : timed_out(tx);
		if (ret)
			return ret;
		/* A look for threads gone to sleep since: once a tick, not at every release. */
		if (woke && (none || lp_ms_since(&swept) * 1000 >= LP_TICK_US)) {
			if ((ret = sweep_threads(tx, true)))
				return ret;
			clock_gettime(CLOCK_MONOTONIC, &swept);
		}
		if (!woke && tx->exec_seen)
			return LP_ERR(LP_EXIT_PROCESS);
	}
	return 0;
}

/*
 * sync: after the last write, establish for every thread one moment at which it
 * was not executing user code and had no trap of ours pending (docs/design.md §4).
 *
 * - A thread blocked in the kernel with its user PC outside every site is synced
 *   as it is: it runs no user code before it leaves the kernel and cannot hold a
 *   pending SIGTRAP. It is not interrupted: a ptrace stop makes epoll_wait,
 *   rt_sigtimedwait, semop, recv with a timeout return EINTR to the program.
 * - Every other thread gets PTRACE_INTERRUPT, all at once, and is looked at and
 *   resumed as soon as its stop arrives, so a thread's pause does not grow with
 *   the number of threads.
 * Limits: a ptrace stop is a kernel entry and exit, not a serializing instruction
 * on every return path; the int3-first order makes that harmless, as in the kernel.
 * A thread that becomes blocked between observe() and PTRACE_INTERRUPT is stopped
 * anyway (the window is a few microseconds; blockd counts the EINTRs it would cause).
 * With @hold_last, the last thread to stop stays stopped so the next write can go
 * through it (PTRACE_POKETEXT needs a stopped thread).
 */
int sync_threads(struct tx *tx, bool hold_last)
{
	int ret;

	tx->st->syncs++;
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	begin_sync(tx);
	tx->in_sync = true;	/* from the start: a trap during the sweeps is deferred too */
	ret = recheck_held(tx);
	/* Two looks before interrupting: a thread seen running a moment ago may be asleep now. */
	if (!ret && !(ret = sweep_threads(tx, false)) && !(ret = sweep_threads(tx, true)))
		ret = wait_for_stops(tx, hold_last);
	tx->in_sync = false;
	return resume_deferred(tx, hold_last, ret);	/* a failed sync holds none back */
}

/*
 * Without a thread held after sync 0 (every thread was asleep), one is interrupted
 * to carry the injection, and held for the first write. A stop other than the
 * interrupt's (a signal, a group stop) is handled as usual, and no thread is held.
 */
struct lp_thread *sync_stop_one(struct tx *tx)
{
	struct lp_thread *t = NULL;
	int status;

	for (size_t i = 0; i < tx->ts.n && !t; i++)
		if (tx->ts.v[i].state == TH_RUNNING && !tx->ts.v[i].child && !tx->ts.v[i].sharer)
			t = &tx->ts.v[i];
	if (!t || pt_interrupt(t->tid))
		return NULL;
	pid_t tid = t->tid;
	/* A dying thread (a zombie leader is never reported while others live) is gone. */
	while (events_reap(tx, tid, &status, 0) < 0)
		if (errno != EINTR || proc_task_exiting(tx->pid, tid)) {
			t->state = TH_GONE;
			return NULL;
		}
	if (!WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP ||
	    events_is_stop_signal(WSTOPSIG(status))) {
		(void)!events_on_status(tx, tid, status, false);
		return NULL;
	}
	t = threads_find(&tx->ts, tid);
	t->state = TH_STOPPED;
	tx->st->thread_stops++;
	events_keep_blocking_call(tx, t);
	tx->held = tid;
	return t;
}

struct lp_thread *sync_stop_listening(struct tx *tx)
{
	int status;

	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (t->state != TH_LISTENING || t->child || t->sharer || pt_interrupt(t->tid))
			continue;
		pid_t tid = t->tid;
		while (events_reap(tx, tid, &status, 0) < 0)
			if (errno != EINTR || proc_task_exiting(tx->pid, tid)) {
				t->state = TH_GONE;
				return NULL;
			}
		t = threads_find(&tx->ts, tid);
		if (!WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP ||
		    !events_is_stop_signal(WSTOPSIG(status))) {
			(void)!events_on_status(tx, tid, status, false);
			return NULL;
		}
		t->state = TH_STOPPED;
		return t;
	}
	return NULL;
}

void sync_listen_again(struct tx *tx, struct lp_thread *t)
{
	(void)tx;
	if (!t)
		return;
	int ret = pt_listen(t->tid);
	t->state = ret == -ESRCH ? TH_GONE : TH_LISTENING;
}
