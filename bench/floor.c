/* floor: the least a ptrace patcher must do, to compare livepatch with.
 *
 *   floor PID [--all]
 *
 * PTRACE_SEIZE every thread of PID (re-reading /proc/PID/task until a pass finds nothing new),
 * then one PTRACE_INTERRUPT / waitpid / PTRACE_CONT round per thread, and exit (the kernel
 * releases the tracees, as livepatch's tracer does). Default: one thread at a time, so a round
 * trip is that thread's alone. --all: interrupt every thread at once, then reap the stops in
 * arrival order and resume each at once (one livepatch sync, with nothing looked at).
 * A round trip is from the interrupt to the return of PTRACE_CONT, as livepatch times a pause.
 * Prints one line of JSON: threads, seize_ms, rounds_ms, total_ms, rtt_max_us, rtt_median_us.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 4096

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static pid_t tids[MAX_THREADS];
static double t_int[MAX_THREADS], rtt[MAX_THREADS];
static int ntids;

static bool known(pid_t tid)
{
	for (int i = 0; i < ntids; i++)
		if (tids[i] == tid)
			return true;
	return false;
}

/* Seize every thread; a pass that finds no new thread ends it (bounded). */
static int seize_all(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	for (int pass = 0; pass < 16; pass++) {
		DIR *d = opendir(path);
		struct dirent *e;
		int added = 0;
		if (!d)
			return -errno;
		while ((e = readdir(d))) {
			pid_t tid = atoi(e->d_name);
			if (tid <= 0 || known(tid) || ntids == MAX_THREADS)
				continue;
			if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
				if (errno == ESRCH)
					continue;
				closedir(d);
				return -errno;
			}
			tids[ntids++] = tid;
			added++;
		}
		closedir(d);
		if (!added)
			return 0;
	}
	return 0;
}

static int index_of(pid_t tid)
{
	for (int i = 0; i < ntids; i++)
		if (tids[i] == tid)
			return i;
	return -1;
}

/* Wait for @tid's (or any, -1) interrupt stop; a signal stop is passed on and waited past. */
static pid_t wait_stop(pid_t tid)
{
	int status;

	for (;;) {
		pid_t w = waitpid(tid, &status, __WALL);
		if (w < 0)
			return -1;
		if (!WIFSTOPPED(status))
			return w;	/* exited: nothing to resume */
		if (status >> 16 == PTRACE_EVENT_STOP)
			return w;
		ptrace(PTRACE_CONT, w, 0, (void *)(long)(status >> 16 ? 0 : WSTOPSIG(status)));
		if (tid > 0)
			continue;
		return -2;	/* -1 wait: the caller counts only interrupt stops */
	}
}

int main(int argc, char **argv)
{
	bool all = argc > 2 && !strcmp(argv[2], "--all");
	pid_t pid = argc > 1 ? atoi(argv[1]) : 0;
	double t0, t1, t2, t3;
	int n = 0, ret;

	if (pid <= 0) {
		fprintf(stderr, "usage: floor PID [--all]\n");
		return 2;
	}
	t0 = now_us();
	ret = seize_all(pid);
	t1 = now_us();
	if (ret) {
		fprintf(stderr, "floor: seize: %s\n", strerror(-ret));
		return 3;
	}
	if (!all) {
		for (int i = 0; i < ntids; i++) {
			double a = now_us();
			if (ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) < 0)
				continue;
			if (wait_stop(tids[i]) != tids[i])
				continue;
			ptrace(PTRACE_CONT, tids[i], 0, 0);
			rtt[n++] = now_us() - a;
		}
	} else {
		int pending = 0;
		for (int i = 0; i < ntids; i++) {
			t_int[i] = now_us();
			pending += ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) == 0;
		}
		while (pending > 0) {
			pid_t w = wait_stop(-1);
			if (w == -1)
				break;
			if (w == -2)
				continue;
			int i = index_of(w);
			pending--;
			ptrace(PTRACE_CONT, w, 0, 0);
			if (i >= 0)
				rtt[n++] = now_us() - t_int[i];
		}
	}
	t2 = now_us();
	qsort(rtt, n, sizeof(rtt[0]), cmp_double);
	t3 = now_us();
	printf("{\"threads\":%d,\"rounds\":%d,\"seize_ms\":%.3f,\"rounds_ms\":%.3f,\"total_ms\":%.3f,"
	       "\"rtt_max_us\":%.1f,\"rtt_median_us\":%.1f}\n", ntids, n, (t1 - t0) / 1e3,
	       (t2 - t1) / 1e3, (t3 - t0) / 1e3, n ? rtt[n - 1] : 0.0, n ? rtt[n / 2] : 0.0);
	return 0;
}
