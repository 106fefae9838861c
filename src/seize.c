/* Seize: PTRACE_SEIZE every thread; nothing stops (compel's approach, without the stop). */
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ptrace_ops.h"
#include "resolve.h"
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
	return t;
}

void threads_free(struct lp_threads *ts)
{
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
}

bool task_exiting(pid_t pid, pid_t tid)
{
	char path[96], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	if (!(f = fopen(path, "re")))
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
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
		bool ours = ret == -EPERM && proc_status_field(tid, "TracerPid") == getpid();
		if (ret == -EPERM && !ours && task_exiting(ts->pid, tid))
			continue;	/* the kernel refuses to seize an exiting thread: it is gone */
		if (ret && !ours) {
			closedir(dir);
			return lp_fail(d, LP_EXIT_PROCESS, "cannot seize thread %d of process %d: %s "
				       "(another tracer? run as root with CAP_SYS_PTRACE)", tid, ts->pid,
				       strerror(-ret));
		}
		struct lp_thread *t = threads_add(ts, tid);
		if (!t) {
			closedir(dir);
			return -ENOMEM;
		}
		t->state = ours ? TH_NEW : TH_RUNNING;
		t->synced = ours;
		found++;
	}
	closedir(dir);
	return found;
}

bool shares_memory(pid_t pid, pid_t other)
{
	return syscall(SYS_kcmp, pid, other, KCMP_VM, 0, 0) == 0;
}

/*
 * A vfork child (or posix_spawn's) runs in the parent's memory but is not one of
 * its threads: left untraced it would die on our int3. Find every child of every
 * thread that shares the memory (kcmp KCMP_VM) and seize it too.
 */
static int seize_sharers(struct lp_threads *ts, struct lp_diag *d)
{
	int found = 0;

	for (size_t i = 0; i < ts->n; i++) {
		char path[96];
		if (ts->v[i].sharer)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", ts->pid, ts->v[i].tid);
		FILE *f = fopen(path, "re");
		int c;
		while (f && fscanf(f, "%d", &c) == 1) {
			if (threads_find(ts, c) || !shares_memory(ts->pid, c))
				continue;
			int ret = pt_seize(c);
			if (ret == -ESRCH)
				continue;
			bool ours = ret == -EPERM && proc_status_field(c, "TracerPid") == getpid();
			if (ret && !ours) {
				fclose(f);
				return lp_fail(d, LP_EXIT_PROCESS, "cannot seize %d, a vfork child of process "
					       "%d: %s (retry when it has exited or exec'd)", c, ts->pid,
					       strerror(-ret));
			}
			struct lp_thread *t = threads_add(ts, c);
			if (!t) {
				fclose(f);
				return -ENOMEM;
			}
			t->sharer = true;
			/* Auto-attached when its parent vforked after we seized it: first stop pending. */
			t->state = ours ? TH_NEW : TH_RUNNING;
			t->synced = ours;
			found++;
		}
		if (f)
			fclose(f);
	}
	return found;
}

int seize_rescan(struct lp_threads *ts, struct lp_diag *d)
{
	int ret = seize_pass(ts, d);

	return ret < 0 ? ret : seize_sharers(ts, d);
}

int seize_all(struct lp_threads *ts, pid_t pid, struct lp_diag *d)
{
	ts->pid = pid;
	for (int pass = 0; pass < SEIZE_PASSES; pass++) {
		int ret = seize_pass(ts, d), more;
		if (ret < 0)
			return ret;
		more = seize_sharers(ts, d);
		if (more < 0)
			return more;
		if (!ret && !more)
			return 0;	/* a pass found nothing new: every task in the memory is ours */
	}
	return lp_fail(d, LP_EXIT_ABORTED, "process %d kept creating threads through %d scans of "
		       "/proc/%d/task (retry when it is calmer)", pid, SEIZE_PASSES, pid);
}
