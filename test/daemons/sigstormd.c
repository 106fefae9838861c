/* sigstormd: compute workers under a storm of signals.
 *   - a POSIX timer (CLOCK_MONOTONIC, SIGRTMIN, every --interval-us, default 100 us) whose
 *     handler calls compute() too: timer_signals, timer_overruns (sum of si_overrun);
 *   - SIGRTMIN+1 queued from outside (sigsend) with values 1..N: ext_received, ext_dups
 *     (a value seen twice), ext_max_seq, ext_out_of_range (value outside 1..2^20-1),
 *     ext_not_queued (si_code != SI_QUEUE).
 * Handlers use SA_RESTART|SA_SIGINFO and only lock-free atomics. */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_LIMIT (1UL << 20)
#define WORD_BITS (8 * sizeof(unsigned long))

static counter_t timer_signals, timer_overruns;
static counter_t ext_received, ext_dups, ext_max_seq, ext_out_of_range, ext_not_queued;
static _Atomic unsigned long seen[SEQ_LIMIT / WORD_BITS];
static _Atomic int timer_x;
static long interval_us = 100;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	int x = atomic_fetch_add_explicit(&timer_x, 1, memory_order_relaxed) & 0xfffff;
	int r;

	(void)sig;
	(void)uc;
	r = compute(x);
	check_result(x, r);
	count(&timer_signals);
	if (si->si_overrun > 0)
		count_n(&timer_overruns, (unsigned long)si->si_overrun);
}

static void on_ext(int sig, siginfo_t *si, void *uc)
{
	unsigned long v = (unsigned long)(unsigned int)si->si_value.sival_int;
	unsigned long bit, old, max;

	(void)sig;
	(void)uc;
	count(&ext_received);
	if (si->si_code != SI_QUEUE)
		count(&ext_not_queued);
	if (v == 0 || v >= SEQ_LIMIT) {
		count(&ext_out_of_range);
		return;
	}
	bit = 1UL << (v % WORD_BITS);
	old = atomic_fetch_or(&seen[v / WORD_BITS], bit);
	if (old & bit)
		count(&ext_dups);
	max = atomic_load(&ext_max_seq);
	while (v > max && !atomic_compare_exchange_weak(&ext_max_seq, &max, v))
		;
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
	struct sigevent sev;
	struct itimerspec its;
	timer_t timer;
	pthread_t *t;
	int n;

	common_init(argc, argv, extra, handle,
		    "  --interval-us US  timer period (default 100; 0: no timer)\n", 4);
	status_add("timer_signals", &timer_signals);
	status_add("timer_overruns", &timer_overruns);
	status_add("ext_received", &ext_received);
	status_add("ext_dups", &ext_dups);
	status_add("ext_max_seq", &ext_max_seq);
	status_add("ext_out_of_range", &ext_out_of_range);
	status_add("ext_not_queued", &ext_not_queued);

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sa.sa_sigaction = on_timer;
	if (sigaction(SIGRTMIN, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));
	sa.sa_sigaction = on_ext;
	if (sigaction(SIGRTMIN + 1, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));

	n = start_compute_workers(&t);
	common_wait_started(n);

	if (interval_us > 0) {
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_SIGNAL;
		sev.sigev_signo = SIGRTMIN;
		if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0)
			die("timer_create: %s", strerror(errno));
		its.it_interval.tv_sec = interval_us / 1000000;
		its.it_interval.tv_nsec = (interval_us % 1000000) * 1000;
		its.it_value = its.it_interval;
		if (timer_settime(timer, 0, &its, NULL) < 0)
			die("timer_settime: %s", strerror(errno));
	}

	common_run();
	if (interval_us > 0)
		timer_delete(timer);
	join_workers(t, n);
	common_exit();
}
