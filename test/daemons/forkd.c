/* forkd: one thread fork()s (or vfork()s) continuously, at most --rate per second (default
 * 500); the child calls compute(7) and exits with (result & 0x7f); the parent waits.
 * Counts forks, children_ok (exit code 15 or 28: compute or compute_v2 of 7),
 * children_bad (killed by a signal or another code), last_bad_signal, last_bad_code,
 * fork_errors. Plus --threads N compute workers (default 4).
 *   --vfork     vfork()+_exit instead of fork() (the child calls only compute and _exit)
 *   --rate N    forks per second (0: unbounded) */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static counter_t forks, children_ok, children_bad, last_bad_signal, last_bad_code, fork_errors;
static bool use_vfork;
static long rate = 500;
static _Atomic pid_t current_child;

static pid_t spawn_fork(void)
{
	pid_t p = fork();

	if (p == 0)
		_exit(compute(7) & 0x7f);
	return p;
}

/* Separate and not inlined: nothing of the caller's frame is live across vfork. */
__attribute__((noinline)) static pid_t spawn_vfork(void)
{
	pid_t p = vfork();

	if (p == 0)
		_exit(compute(7) & 0x7f);
	return p;
}

static void *forker(void *arg)
{
	struct timespec next;
	long period = rate > 0 ? 1000000000L / rate : 0;

	(void)arg;
	common_thread_started();
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!common_stopping()) {
		pid_t p = use_vfork ? spawn_vfork() : spawn_fork();
		int st;

		if (p < 0) {
			count(&fork_errors);
			sleep_ms(10);
			continue;
		}
		atomic_store(&current_child, p);
		count(&forks);
		while (waitpid(p, &st, 0) < 0) {
			if (errno != EINTR) {
				st = -1;
				break;
			}
		}
		atomic_store(&current_child, 0);
		if (st != -1 && WIFEXITED(st) &&
		    (WEXITSTATUS(st) == 15 || WEXITSTATUS(st) == 28)) {
			count(&children_ok);
		} else {
			count(&children_bad);
			if (st != -1 && WIFSIGNALED(st))
				atomic_store(&last_bad_signal, (unsigned long)WTERMSIG(st));
			else if (st != -1 && WIFEXITED(st))
				atomic_store(&last_bad_code, (unsigned long)WEXITSTATUS(st));
		}
		if (period) {
			struct timespec now;

			ts_add_ns(&next, period);
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > next.tv_sec + 1)	/* far behind: do not burst */
				next = now;
			while (!common_stopping() &&
			       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
				;
		}
	}
	return NULL;
}

enum { OPT_VFORK = 256, OPT_RATE };

static int handle(int val, const char *arg)
{
	char *end;

	switch (val) {
	case OPT_VFORK:
		use_vfork = true;
		return 0;
	case OPT_RATE:
		rate = strtol(arg, &end, 10);
		return *end || rate < 0 ? -1 : 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "vfork", no_argument, NULL, OPT_VFORK },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ 0 },
	};
	pthread_t *t, ft;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --vfork           vfork() instead of fork()\n"
		    "  --rate N          forks per second (default 500, 0: unbounded)\n",
		    4);
	status_add("forks", &forks);
	status_add("children_ok", &children_ok);
	status_add("children_bad", &children_bad);
	status_add("last_bad_signal", &last_bad_signal);
	status_add("last_bad_code", &last_bad_code);
	status_add("fork_errors", &fork_errors);

	n = start_compute_workers(&t);
	common_thread_create(&ft, forker, NULL);
	common_wait_started(n + 1);

	common_run();
	if (!common_join(ft, 2000)) {
		pid_t p = atomic_load(&current_child);

		if (p > 0)
			kill(p, SIGKILL);
		common_join(ft, 1000);
	}
	join_workers(t, n);
	common_exit();
}
