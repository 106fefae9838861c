/* sigtrapd: a program with its own int3. A SIGTRAP handler (SA_SIGINFO) counts
 * sigtrap_received (sigtrap_kernel: si_code == SI_KERNEL, as int3 gives; sigtrap_other:
 * anything else); a thread counts int3_executed and then executes int3, every
 * --interval-us (default 1000). After a patch, int3_executed == sigtrap_received.
 * Plus --threads N compute workers (default 4). */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static counter_t int3_executed, sigtrap_received, sigtrap_kernel, sigtrap_other;
static long interval_us = 1000;

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	count(&sigtrap_received);
	count(si->si_code == SI_KERNEL ? &sigtrap_kernel : &sigtrap_other);
}

static void *trapper(void *arg)
{
	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		struct timespec ts = { interval_us / 1000000, (interval_us % 1000000) * 1000 };

		count(&int3_executed);
		__asm__ volatile("int3" ::: "memory");
		nanosleep(&ts, NULL);
	}
	return NULL;
}

enum { OPT_INTERVAL = 256 };

static int handle(int val, const char *arg)
{
	char *end;

	if (val != OPT_INTERVAL)
		return -1;
	interval_us = strtol(arg, &end, 10);
	return *end || interval_us < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "interval-us", required_argument, NULL, OPT_INTERVAL },
		{ 0 },
	};
	struct sigaction sa;
	pthread_t *t, tt;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --interval-us US  pause between two int3 (default 1000)\n", 4);
	status_add("int3_executed", &int3_executed);
	status_add("sigtrap_received", &sigtrap_received);
	status_add("sigtrap_kernel", &sigtrap_kernel);
	status_add("sigtrap_other", &sigtrap_other);

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sa.sa_sigaction = on_trap;
	if (sigaction(SIGTRAP, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));

	n = start_compute_workers(&t);
	common_thread_create(&tt, trapper, NULL);
	common_wait_started(n + 1);

	common_run();
	common_join(tt, 2000);
	join_workers(t, n);
	common_exit();
}
