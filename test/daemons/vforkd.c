/* vforkd: a thread vfork()s a child that sleeps --child-ms (default 3000) and exits, in a
 * loop, so that thread sits in the kernel (vfork wait) most of the time; counts vforks
 * (children reaped) and vfork_errors. Plus --threads N compute workers (default 4).
 * The child uses raw system calls only; it dies with the daemon (PR_SET_PDEATHSIG, and an
 * explicit SIGKILL at stop). */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static counter_t vforks, vfork_errors;
static long child_ms = 3000;
static volatile pid_t child_pid;	/* written by the vfork child (shared memory) */

/* Not inlined: nothing of the caller's frame is live across vfork. */
__attribute__((noinline)) static pid_t spawn(pid_t parent)
{
	pid_t p = vfork();

	if (p == 0) {
		struct timespec ts = { child_ms / 1000, (child_ms % 1000) * 1000000L };

		child_pid = (pid_t)syscall(SYS_getpid);
		syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (syscall(SYS_getppid) == parent)
			syscall(SYS_nanosleep, &ts, NULL);
		_exit(0);
	}
	return p;
}

static void *vforker(void *arg)
{
	pid_t self = getpid();

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		pid_t p = spawn(self);
		int st;

		if (p < 0) {
			count(&vfork_errors);
			sleep_ms(10);
			continue;
		}
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		child_pid = 0;
		count(&vforks);
	}
	return NULL;
}

enum { OPT_CHILD_MS = 256 };

static int handle(int val, const char *arg)
{
	char *end;

	if (val != OPT_CHILD_MS)
		return -1;
	child_ms = strtol(arg, &end, 10);
	return *end || child_ms < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "child-ms", required_argument, NULL, OPT_CHILD_MS },
		{ 0 },
	};
	pthread_t *t, vt;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --child-ms MS     how long each vfork child sleeps (default 3000)\n", 4);
	status_add("vforks", &vforks);
	status_add("vfork_errors", &vfork_errors);

	n = start_compute_workers(&t);
	common_thread_create(&vt, vforker, NULL);
	common_wait_started(n + 1);

	common_run();
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	if (!common_join(vt, 1000) && child_pid > 0) {
		kill(child_pid, SIGKILL);
		common_join(vt, 1000);
	}
	join_workers(t, n);
	common_exit();
}
