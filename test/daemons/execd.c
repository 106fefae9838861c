/* execd: compute workers; on SIGUSR2 (or --exec-after-ms MS after start), worker 0 (never
 * the leader) execve()s /bin/sleep 1000 from inside its compute loop, with an empty signal
 * mask, so the process becomes `sleep` under the same pid. --exec-path/--exec-arg change
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
static _Atomic int exec_now;
static long exec_after_ms = -1;
static const char *exec_path = "/bin/sleep", *exec_arg = "1000";

static void on_usr2(int sig)
{
	(void)sig;
	atomic_store(&exec_now, 1);
}

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

/* Like compute_worker, and execs when asked. */
static void *exec_worker(void *arg)
{
	int x = 0;

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		for (int k = 0; k < 256; k++) {
			int r = compute(x);
			check_result(x, r);
			x = (x + 1) & 0xfffff;
		}
		if (atomic_load_explicit(&exec_now, memory_order_relaxed))
			do_exec();
		if (exec_after_ms >= 0 && uptime_ms() >= (unsigned long)exec_after_ms)
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
	struct sigaction sa;
	pthread_t et, *t;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --exec-after-ms MS  exec without waiting for SIGUSR2\n"
		    "  --exec-path PATH    program to exec (default /bin/sleep)\n"
		    "  --exec-arg ARG      its one argument (default 1000)\n",
		    4);
	status_add("exec_requested", &exec_requested);
	status_add("exec_errors", &exec_errors);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);

	if (opt.threads < 1)
		opt.threads = 1;
	opt.threads--;		/* worker 0 is the exec worker */
	common_thread_create(&et, exec_worker, NULL);
	n = start_compute_workers(&t);
	opt.threads++;
	common_wait_started(n + 1);

	common_run();
	common_join(et, 2000);
	join_workers(t, n);
	common_exit();
}
