/* execd: compute workers, plus one thread (never the leader) that waits for SIGUSR2 in
 * sigwaitinfo() (or --exec-after-ms MS after start) and then execve()s /bin/sleep 1000 with an
 * empty signal mask, so the process becomes `sleep` under the same pid. The waiter sits in the
 * kernel, where livepatch leaves it alone, so the exec can start at any moment of a
 * transaction, even while livepatch holds other threads stopped. --exec-path/--exec-arg change
 * the program ("/bin/sleep", "1000"). Counts exec_requested (set just before execve).
 * --threads N: compute workers (default 4, at least 1). */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static counter_t exec_requested, exec_errors;
static long exec_after_ms = -1;
static const char *exec_path = "/bin/sleep", *exec_arg = "1000";

static void do_exec(void)
{
	char *args[] = { (char *)exec_path, (char *)exec_arg, NULL };
	extern char **environ;
	sigset_t none;

	count(&exec_requested);
	status_write();
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	execve(exec_path, args, environ);
	count(&exec_errors);
	die("execve %s: %s", exec_path, strerror(errno));
}

/* Blocked in the kernel until asked: SIGUSR2 is blocked in every thread and taken here. */
static void *exec_waiter(void *arg)
{
	sigset_t usr2;
	siginfo_t si;

	(void)arg;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	common_thread_started();
	while (!common_stopping()) {
		if (exec_after_ms >= 0 && uptime_ms() >= (unsigned long)exec_after_ms)
			do_exec();
		struct timespec tick = { 0, 50 * 1000000L };
		if (sigtimedwait(&usr2, &si, &tick) == SIGUSR2)
			do_exec();
	}
	return NULL;
}

enum { OPT_AFTER = 256, OPT_PATH, OPT_ARG };

static int handle(int val, const char *arg)
{
	char *end;

	switch (val) {
	case OPT_AFTER:
		exec_after_ms = strtol(arg, &end, 10);
		return *end || exec_after_ms < 0 ? -1 : 0;
	case OPT_PATH:
		exec_path = arg;
		return 0;
	case OPT_ARG:
		exec_arg = arg;
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "exec-after-ms", required_argument, NULL, OPT_AFTER },
		{ "exec-path", required_argument, NULL, OPT_PATH },
		{ "exec-arg", required_argument, NULL, OPT_ARG },
		{ 0 },
	};
	sigset_t usr2;
	pthread_t et, *t;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --exec-after-ms MS  exec without waiting for SIGUSR2\n"
		    "  --exec-path PATH    program to exec (default /bin/sleep)\n"
		    "  --exec-arg ARG      its one argument (default 1000)\n",
		    4);
	status_add("exec_requested", &exec_requested);
	status_add("exec_errors", &exec_errors);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);	/* inherited by every thread */

	if (opt.threads < 1)
		opt.threads = 1;
	common_thread_create(&et, exec_waiter, NULL);
	n = start_compute_workers(&t);
	common_wait_started(n + 1);

	common_run();
	common_join(et, 2000);
	join_workers(t, n);
	common_exit();
}
