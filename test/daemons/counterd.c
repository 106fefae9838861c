/* counterd: N workers call compute() in a tight loop, checking every result.
 * Built three ways: counterd (PIE, endbr64), counterd-nopie (no endbr64), counterd-lib
 * (-DUSE_LIBSAMPLE: compute/compute_v2 come from libsample.so).
 *
 *   --mode fast|slow   slow: workers call compute_slow (pauses at the patch site)
 *   --idle             workers only sleep (no calls at all)
 *   --second-entry     one extra worker alternately calls compute_alt and compute_alt_body
 *   --sleeper MS       one extra thread sleeps MS ms at a time inside sleeper()'s patch site
 *   --leader-exits     the main thread exits on SIGUSR1 (a zombie leader, docs/design.md §4); another
 *                      thread writes the status and takes SIGTERM
 *
 * Also holds symbols that exist only to be analysed: compute_data (object),
 * compute_ifunc (GNU IFUNC), and, in counterd_asm.S, tiny, branchy, early_call,
 * early_call_short. */
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

/* Written by the asm functions (lock incq name(%rip)). */
counter_t calls_compute_slow, calls_compute_slow_v2;
counter_t calls_compute_alt, calls_compute_alt_body;

int compute_slow(int x);
int compute_slow_v2(int x);
int compute_alt(int x);
int compute_alt_body(int x);

/* "not a function": an STT_OBJECT next to the functions. */
__attribute__((used)) int compute_data[64] = { 1, 2, 3, 4 };

/* "IFUNC": compute_ifunc is an STT_GNU_IFUNC symbol whose resolver picks this. */
__attribute__((noipa, used)) static int compute_ifunc_impl(int x)
{
	return x * 2 + 1;
}

typedef int compute_fn(int);
__attribute__((used)) static compute_fn *compute_ifunc_resolver(void)
{
	return compute_ifunc_impl;
}
int compute_ifunc(int x) __attribute__((ifunc("compute_ifunc_resolver")));

#ifdef USE_LIBSAMPLE
/* Defined here and in libsample.so: "ambiguous without OBJECT:" tests. */
__attribute__((noipa, used)) int sample_dup(int x)
{
	return x + 1;
}
#endif

enum { MODE_FAST, MODE_SLOW };
static int mode = MODE_FAST;
static bool idle, second_entry, leader_exits;
static long sleeper_ms;
static _Atomic unsigned long sleeper_calls;

static void *sleeper_worker(void *arg)
{
	struct timespec ts = { sleeper_ms / 1000, (sleeper_ms % 1000) * 1000000L };

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		long rax = 35;	/* __NR_nanosleep, issued from inside sleeper's first bytes */
		__asm__ volatile("call sleeper" : "+a"(rax) : "D"(&ts), "S"(0)
				 : "rcx", "r11", "rdx", "r8", "r9", "r10", "memory");
		sleeper_calls++;
	}
	return NULL;
}

static void *slow_worker(void *arg)
{
	int x = (int)(intptr_t)arg * 4096;

	common_thread_started();
	while (!common_stopping()) {
		for (int k = 0; k < 64; k++) {
			int r = compute_slow(x);
			check_result(x, r);
			x = (x + 1) & 0xfffff;
		}
	}
	return NULL;
}

static void *idle_worker(void *arg)
{
	(void)arg;
	common_thread_started();
	while (!common_stopping())
		sleep_ms(100);
	return NULL;
}

static void *alt_worker(void *arg)
{
	int x = 0;

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		for (int k = 0; k < 64; k++) {
			int r = compute_alt(x);
			check_result(x, r);
			r = compute_alt_body(x);
			check_result(x, r);
			x = (x + 1) & 0xfffff;
		}
	}
	return NULL;
}

static pthread_t *workers;
static int nworkers;

/* --leader-exits: the main thread's work, in another thread. */
static void *run_and_exit(void *arg)
{
	(void)arg;
	common_run();
	join_workers(workers, nworkers);
	common_exit();
	return NULL;
}

enum { OPT_MODE = 256, OPT_IDLE, OPT_SECOND_ENTRY, OPT_SLEEPER, OPT_LEADER_EXITS };

static int handle(int val, const char *arg)
{
	switch (val) {
	case OPT_MODE:
		if (!strcmp(arg, "fast"))
			mode = MODE_FAST;
		else if (!strcmp(arg, "slow"))
			mode = MODE_SLOW;
		else
			return -1;
		return 0;
	case OPT_IDLE:
		idle = true;
		return 0;
	case OPT_SECOND_ENTRY:
		second_entry = true;
		return 0;
	case OPT_SLEEPER:
		sleeper_ms = atol(arg);
		return sleeper_ms > 0 ? 0 : -1;
	case OPT_LEADER_EXITS:
		leader_exits = true;
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "idle", no_argument, NULL, OPT_IDLE },
		{ "second-entry", no_argument, NULL, OPT_SECOND_ENTRY },
		{ "sleeper", required_argument, NULL, OPT_SLEEPER },
		{ "leader-exits", no_argument, NULL, OPT_LEADER_EXITS },
		{ 0 },
	};
	void *(*fn)(void *);
	pthread_t *t;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --mode fast|slow  slow: workers call compute_slow instead of compute\n"
		    "  --idle            workers sleep, no calls\n"
		    "  --second-entry    extra worker calling compute_alt and compute_alt_body\n"
		    "  --sleeper MS      extra thread blocked MS ms at a time inside sleeper()\n"
		    "  --leader-exits    the main thread exits on SIGUSR1; another one carries on\n",
		    4);
	status_add("calls_compute_slow", &calls_compute_slow);
	status_add("calls_compute_slow_v2", &calls_compute_slow_v2);
	status_add("calls_compute_alt", &calls_compute_alt);
	status_add("calls_compute_alt_body", &calls_compute_alt_body);
	status_add("sleeper_calls", &sleeper_calls);

	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	if (leader_exits)	/* before any thread starts: all of them inherit the block */
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	fn = idle ? idle_worker : mode == MODE_SLOW ? slow_worker : compute_worker;
	n = opt.threads + (second_entry ? 1 : 0) + (sleeper_ms ? 1 : 0);
	t = calloc(n + 1, sizeof *t);
	if (!t)
		die("out of memory");
	for (int i = 0; i < opt.threads; i++)
		common_thread_create(&t[i], fn, (void *)(intptr_t)i);
	if (second_entry)
		common_thread_create(&t[opt.threads], alt_worker, NULL);
	if (sleeper_ms)
		common_thread_create(&t[n - 1], sleeper_worker, NULL);
	common_wait_started(n);
	if (leader_exits) {
		pthread_t runner;
		workers = t;
		nworkers = n;
		common_thread_create(&runner, run_and_exit, NULL);
		int sig;
		sigwait(&usr1, &sig);
		pthread_exit(NULL);
	}
	common_run();
	join_workers(t, n);
	common_exit();
}
