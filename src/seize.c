/* Seize: PTRACE_SEIZE every thread; nothing stops (compel's approach, without the stop). */
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fanout.h"
#include "ptrace_ops.h"
#include "proc.h"
#include "seize.h"

#define SEIZE_PASSES 64	/* a thread-spawning storm must not keep us here forever */

struct lp_thread *threads_find(struct lp_threads *ts, pid_t tid)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->v[i].tid == tid)
			return &ts->v[i];
	return NULL;
}

struct lp_thread *threads_add(struct lp_threads *ts, pid_t tid)
{
	if (ts->n == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 64;
		struct lp_thread *v = realloc(ts->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		ts->v = v;
		ts->cap = cap;
	}
	struct lp_thread *t = &ts->v[ts->n++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->syscall_fd = -1;
	return t;
}

void threads_free(struct lp_threads *ts)
{
	lp_fanout_stop(ts->fan);
	for (size_t i = 0; i < ts->n; i++)
		if (ts->v[i].syscall_fd >= 0)
			close(ts->v[i].syscall_fd);
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
}

bool spawning_call(long nr)
{
	return nr == SYS_clone || nr == SYS_clone3 || nr == SYS_fork || nr == SYS_execve ||
	       nr == SYS_execveat;
}

int thread_file(const struct lp_threads *ts, struct lp_thread *t, int *fd, const char *which,
		char *buf, size_t cap)
{
	/*
	 * /proc/PID/task/TID, not /proc/TID: the latter is the whole-process view,
	 * which sums every thread's times on each read (O(threads), so O(threads^2)
	 * per sync). A vfork sharer is its own process: its pid is its tid.
	 */
	pid_t tgid = t->sharer ? t->tid : ts->pid;
	char path[96];

	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = *fd < 0;
		if (fresh) {
			snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", tgid, t->tid, which);
			if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				return -1;
		}
		ssize_t n = pread(*fd, buf, cap - 1, 0);
		if (n > 0) {
			buf[n] = 0;
			return (int)n;
		}
		close(*fd);	/* the task it named is gone (its tid may have been reused) */
		*fd = -1;
		if (fresh)
			return -1;
	}
	return -1;
}

/*
 * Just seized: asleep in a call other than fork, vfork, clone or exec, it has no such
 * call under way, and every child it makes from now on is reported to us. Only the
 * others can have made a child we do not trace (their call began before the seize),
 * and only they take part in sync 0 (transact.c's settle), which also sees an exec
 * through before anything is written.
 */
static bool forkless_now(const struct lp_threads *ts, struct lp_thread *t)
{
	char buf[256];

	if (thread_file(ts, t, &t->syscall_fd, "syscall", buf, sizeof(buf)) < 0 ||
	    !strncmp(buf, "running", 7))
		return false;
	long nr = strtol(buf, NULL, 10);
	return !spawning_call(nr) && nr != SYS_vfork;
}

/* lp_fanout_run() over ts->v[from...]: note_forkless() each thread just seized. */
struct from {
	struct lp_threads *ts;
	size_t from;
};

/* Whether thread @i just seized is forkless (forkless_now), unless known already. */
static void note_forkless(void *ctx, size_t i)
{
	struct from *c = ctx;
	struct lp_thread *t = &c->ts->v[c->from + i];

	if (!t->forkless)
		t->forkless = forkless_now(c->ts, t);
}

/* One pass over /proc/PID/task: seize what is new. Returns how many were new, or -errno. */
static int seize_pass(struct lp_threads *ts, struct lp_diag *d)
{
	char path[64];
	struct dirent *e;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", ts->pid);
	DIR *dir = opendir(path);
	if (!dir)
		return lp_fail(d, LP_EXIT_PROCESS, "process %d exited before it could be seized "
			       "(nothing was changed)", ts->pid);
	while ((e = readdir(dir))) {
		pid_t tid = atoi(e->d_name);
		if (tid <= 0 || threads_find(ts, tid))
			continue;
		int ret = pt_seize(tid);
		if (ret == -ESRCH)
			continue;	/* exited between readdir and seize: normal */
		/* Created by a thread we seized already: auto-attached (TRACECLONE), first stop pending. */
		bool ours = ret == -EPERM && proc_status_field(tid, "TracerPid") == gettid();
		if (ret == -EPERM && !ours && proc_task_exiting(ts->pid, tid))
			continue;	/* the kernel refuses to seize an exiting thread: it is gone */
		if (ret && !ours) {
			closedir(dir);
			/* Another tracer on this thread alone, or a rule proc_open could not see. */
			if (ret == -EPERM)
				return proc_explain_eperm(ts->pid, tid, d);
			return lp_fail(d, LP_EXIT_PROCESS, "cannot seize thread %d of process %d: %s "
				       "(retry; if it persists, please report it)", tid, ts->pid,
				       strerror(-ret));
		}
		struct lp_thread *t = threads_add(ts, tid);
		if (!t) {
			closedir(dir);
			return -ENOMEM;
		}
		t->state = ours ? TH_NEW : TH_RUNNING;
		t->synced = ours;
		t->forkless = ours;	/* the others: note_forkless(), once all are seized */
		found++;
	}
	closedir(dir);
	if ((size_t)found >= LP_FANOUT_MIN && !ts->fan)
		ts->fan = lp_fanout_start();
	struct from c = { ts, ts->n - (size_t)found };
	lp_fanout_run(ts->fan, (size_t)found, note_forkless, &c);
	return found;
}

bool shares_memory(pid_t pid, pid_t other)
{
	return syscall(SYS_kcmp, pid, other, KCMP_VM, 0, 0) == 0;
}

/* The pids in /proc/PID/task/TID/children, at most @cap; -1 if it cannot be read. */
static int children_of(pid_t pid, pid_t tid, pid_t *out, int cap)
{
	char path[96], buf[4096];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len < 0)
		return -1;
	buf[len] = 0;
	for (char *p = buf, *end; n < cap; p = end) {
		long c = strtol(p, &end, 10);
		if (end == p)
			break;
		out[n++] = (pid_t)c;
	}
	return n;
}

/*
 * A vfork child (or posix_spawn's) runs in the parent's memory but is not one of
 * its threads: left untraced it would die on our int3. Seize every child of thread
 * @tid that shares the memory (kcmp KCMP_VM). Returns how many it has, or -errno.
 */
int seize_sharers_of(struct lp_threads *ts, pid_t tid, struct lp_diag *d)
{
	pid_t kids[512];
	int n = children_of(ts->pid, tid, kids, (int)LP_ARRAY_SIZE(kids)), found = 0;

	for (int k = 0; k < n; k++) {
		pid_t c = kids[k];
		struct lp_thread *known = threads_find(ts, c);
		if (known) {
			found += known->sharer;
			continue;
		}
		if (!shares_memory(ts->pid, c))
			continue;
		int ret = pt_seize(c);
		if (ret == -ESRCH)
			continue;
		bool ours = ret == -EPERM && proc_status_field(c, "TracerPid") == gettid();
		if (ret && !ours)
			return lp_fail(d, LP_EXIT_PROCESS, "cannot seize %d, a vfork child of process "
				       "%d: %s (retry when it has exited or exec'd)", c, ts->pid,
				       strerror(-ret));
		struct lp_thread *t = threads_add(ts, c);
		if (!t)
			return -ENOMEM;
		t->sharer = true;
		/* Auto-attached when its parent vforked after we seized it: first stop pending. */
		t->state = ours ? TH_NEW : TH_RUNNING;
		t->synced = ours;
		found++;
	}
	return found;
}

/* lp_fanout_run() over every thread: whether it has a child at all (most have none). */
struct parents {
	struct lp_threads *ts;
	bool all;
	bool *has;
};

static void find_parents(void *ctx, size_t i)
{
	struct parents *c = ctx;
	const struct lp_thread *t = &c->ts->v[i];
	pid_t kid;

	c->has[i] = !t->sharer && (c->all || !t->forkless) &&
		    children_of(c->ts->pid, t->tid, &kid, 1) != 0;
}

/*
 * seize_sharers_of() every thread (@all), or every thread that may have made a child
 * we do not trace. Returns how many sharers were new, or -errno.
 */
static int seize_sharers(struct lp_threads *ts, bool all, struct lp_diag *d)
{
	size_t known = ts->n;
	bool *has = calloc(known + 1, sizeof(*has));

	if (!has)
		return -ENOMEM;
	struct parents c = { ts, all, has };
	lp_fanout_run(ts->fan, known, find_parents, &c);
	for (size_t i = 0; i < known; i++) {
		if (!has[i])
			continue;
		int ret = seize_sharers_of(ts, ts->v[i].tid, d);
		if (ret < 0) {
			free(has);
			return ret;
		}
	}
	free(has);
	return (int)(ts->n - known);
}

/*
 * Every thread of the process is traced: the kernel counts a thread until it is
 * released (/proc/PID/status Threads), and a traced one is released only when we
 * reap it, so the count is ours unless a thread we do not trace exists (or one
 * we lost track of, or a zombie leader: the scan runs then, as it would anyway).
 * The scan reads one directory entry per thread, 0.4-1.4 us each (0.1-0.4 ms at
 * 256 threads): after sync 0 the thread held stopped for the first write waits for
 * it, and the seize would read the directory twice (the second time to see nothing).
 */
static bool all_seized(const struct lp_threads *ts)
{
	int n = proc_count_threads(ts->pid);
	size_t live = 0;

	for (size_t i = 0; i < ts->n; i++)
		live += !ts->v[i].child && !ts->v[i].sharer && ts->v[i].state != TH_GONE;
	return n > 0 && (size_t)n == live;
}

int seize_rescan(struct lp_threads *ts, struct lp_diag *d)
{
	int ret = all_seized(ts) ? 0 : seize_pass(ts, d);

	return ret < 0 ? ret : seize_sharers(ts, false, d);
}

/*
 * Every thread, then every child that shares the memory (a vfork child, or an older
 * clone(CLONE_VM) one). Children made by a fork or clone in flight now are looked
 * for after the first sync, once every such call has returned (transact.c's settle),
 * which is before anything is written.
 */
int seize_all(struct lp_threads *ts, pid_t pid, struct lp_diag *d)
{
	ts->pid = pid;
	for (int pass = 0; pass < SEIZE_PASSES; pass++) {
		int ret = seize_pass(ts, d);
		if (ret < 0)
			return ret;
		/* Nothing new, or the kernel counts no thread we lack: every thread is ours. */
		if (!ret || all_seized(ts)) {
			ret = seize_sharers(ts, true, d);
			return ret < 0 ? ret : 0;
		}
	}
	return lp_fail(d, LP_EXIT_ABORTED, "process %d kept creating threads through %d scans of "
		       "/proc/%d/task (retry when it is calmer)", pid, SEIZE_PASSES, pid);
}
