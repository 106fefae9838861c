/* sigtrapd: a program with its own SIGTRAPs and signal state that livepatch must leave
 * alone. A SIGTRAP handler (SA_SIGINFO) counts sigtrap_received (sigtrap_kernel: si_code
 * == SI_KERNEL, as int3 gives; sigtrap_other: anything else); a thread counts
 * int3_executed and then executes int3, every --interval-us (default 1000). After a
 * patch, int3_executed == sigtrap_received. Plus --threads N compute workers (default 4).
 *
 *   --int3-form cc|cd03   the trapper's instruction: int3 (cc) or int $3 (cd 03)
 *   --block-trap          the compute workers block SIGTRAP (they run into livepatch's
 *                         int3 with it blocked)
 *   --ignore-trap         SIGTRAP is ignored (SIG_IGN) and there is no trapper
 *   --default-trap        SIGTRAP keeps the default disposition and there is no trapper
 *   --trap-after-call     every compute worker also executes int3 right after each
 *                         compute() call (counted in int3_executed): it spends much of
 *                         its time in the handler, where SIGTRAP is blocked (no
 *                         SA_NODEFER), and meets livepatch's int3 just after leaving it
 *   --queued N            every compute worker keeps N real-time signals queued to
 *                         itself (blocked) while it calls compute(), drained every 2 ms
 *
 * Every worker checks, between bursts of calls, that its SIGTRAP mask and the process's
 * SIGTRAP disposition are what it set: mask_changed and disposition_changed count the
 * checks that found otherwise. rt_queued and rt_received count the queued signals. */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static counter_t int3_executed, sigtrap_received, sigtrap_kernel, sigtrap_other;
static counter_t mask_changed, disposition_changed, rt_queued, rt_received;
static long interval_us = 1000, queued;
static bool form_cd03, block_trap, ignore_trap, default_trap, trap_after_call;

/* The disposition this program set, as sigaction() reports it. */
static void (*trap_handler)(int);

static void check_state(bool blocked)
{
	sigset_t cur;
	struct sigaction sa;

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (sigismember(&cur, SIGTRAP) != blocked)
		count(&mask_changed);
	sigaction(SIGTRAP, NULL, &sa);
	if (sa.sa_handler != trap_handler)
		count(&disposition_changed);
}

static void on_rt(int sig)
{
	(void)sig;
	count(&rt_received);
}

static void burst(int *x)
{
	for (int k = 0; k < 256; k++) {
		int r = compute(*x);
		check_result(*x, r);
		if (trap_after_call) {
			count(&int3_executed);
			__asm__ volatile("int3" ::: "memory");
		}
		*x = (*x + 1) & 0xfffff;
	}
}

/*
 * Calls compute() in a loop. With --queued, it keeps that many real-time signals in its
 * own queue meanwhile (blocked; drained every 2 ms), so a trap of livepatch's queued
 * behind them is found only by reading the whole queue.
 */
static void *trap_worker(void *arg)
{
	int x = (int)(intptr_t)arg * 4096, rt = SIGRTMIN + 6;
	sigset_t set, rts;
	union sigval v = { 0 };

	sigemptyset(&set);
	if (block_trap)
		sigaddset(&set, SIGTRAP);
	sigemptyset(&rts);
	sigaddset(&rts, rt);
	if (queued)
		sigaddset(&set, rt);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	common_thread_started();
	while (!common_stopping()) {
		struct timespec t0, now;
		for (long i = 0; i < queued; i++)
			if (!pthread_sigqueue(pthread_self(), rt, v))
				count(&rt_queued);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			burst(&x);
			clock_gettime(CLOCK_MONOTONIC, &now);
		} while (queued && (now.tv_sec - t0.tv_sec) * 1000000000L + now.tv_nsec - t0.tv_nsec <
			 2000000L);
		if (queued) {	/* the handler runs once per queued signal here */
			pthread_sigmask(SIG_UNBLOCK, &rts, NULL);
			pthread_sigmask(SIG_BLOCK, &rts, NULL);
		}
		check_state(block_trap);
	}
	return NULL;
}

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
		if (form_cd03)
			__asm__ volatile(".byte 0xcd, 0x03" ::: "memory");
		else
			__asm__ volatile("int3" ::: "memory");
		nanosleep(&ts, NULL);
	}
	return NULL;
}

enum { OPT_INTERVAL = 256, OPT_FORM, OPT_BLOCK, OPT_IGNORE, OPT_QUEUED, OPT_AFTER, OPT_DEFAULT };

static int handle(int val, const char *arg)
{
	char *end;

	switch (val) {
	case OPT_INTERVAL:
		interval_us = strtol(arg, &end, 10);
		return *end || interval_us < 0 ? -1 : 0;
	case OPT_FORM:
		form_cd03 = !strcmp(arg, "cd03");
		return form_cd03 || !strcmp(arg, "cc") ? 0 : -1;
	case OPT_BLOCK:
		block_trap = true;
		return trap_after_call ? -1 : 0;
	case OPT_IGNORE:
		ignore_trap = true;
		return trap_after_call || default_trap ? -1 : 0;
	case OPT_AFTER:	/* a trap in a thread that blocks SIGTRAP kills the program */
		trap_after_call = true;
		return block_trap || ignore_trap || default_trap ? -1 : 0;
	case OPT_DEFAULT:
		default_trap = true;
		return trap_after_call || ignore_trap ? -1 : 0;
	case OPT_QUEUED:
		queued = strtol(arg, &end, 10);
		return *end || queued < 0 || queued > 1000 ? -1 : 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "interval-us", required_argument, NULL, OPT_INTERVAL },
		{ "int3-form", required_argument, NULL, OPT_FORM },
		{ "block-trap", no_argument, NULL, OPT_BLOCK },
		{ "ignore-trap", no_argument, NULL, OPT_IGNORE },
		{ "queued", required_argument, NULL, OPT_QUEUED },
		{ "trap-after-call", no_argument, NULL, OPT_AFTER },
		{ "default-trap", no_argument, NULL, OPT_DEFAULT },
		{ 0 },
	};
	struct sigaction sa;
	pthread_t *t, tt;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --interval-us US  pause between two int3 (default 1000)\n"
		    "  --int3-form cc|cd03  int3 or int $3 (default cc)\n"
		    "  --block-trap      compute workers block SIGTRAP\n"
		    "  --ignore-trap     SIGTRAP ignored, no trapper\n"
		    "  --queued N        each worker keeps N RT signals queued\n"
		    "  --trap-after-call workers run int3 after each compute() call\n"
		    "  --default-trap    SIGTRAP left to the default, no trapper\n", 4);
	status_add("int3_executed", &int3_executed);
	status_add("sigtrap_received", &sigtrap_received);
	status_add("sigtrap_kernel", &sigtrap_kernel);
	status_add("sigtrap_other", &sigtrap_other);
	status_add("mask_changed", &mask_changed);
	status_add("disposition_changed", &disposition_changed);
	status_add("rt_queued", &rt_queued);
	status_add("rt_received", &rt_received);

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sa.sa_sigaction = on_trap;
	if (ignore_trap || default_trap) {
		sa.sa_flags = 0;
		sa.sa_handler = ignore_trap ? SIG_IGN : SIG_DFL;
	}
	bool trapper_runs = !ignore_trap && !default_trap;
	if (sigaction(SIGTRAP, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));
	struct sigaction now;
	sigaction(SIGTRAP, NULL, &now);
	trap_handler = now.sa_handler;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_rt;
	if (sigaction(SIGRTMIN + 6, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));

	t = calloc(opt.threads ? opt.threads : 1, sizeof(*t));
	if (!t)
		die("out of memory");
	n = opt.threads;
	for (int i = 0; i < n; i++)
		common_thread_create(&t[i], trap_worker, (void *)(intptr_t)i);
	if (trapper_runs)
		common_thread_create(&tt, trapper, NULL);
	common_wait_started(n + trapper_runs);

	common_run();
	if (trapper_runs)
		common_join(tt, 2000);
	join_workers(t, n);
	common_exit();
}
