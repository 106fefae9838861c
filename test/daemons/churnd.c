/* churnd: keeps --threads N (default 8) short-lived threads alive: each calls compute()
 * --calls times (default 1000), checking every result, then exits; a creator thread
 * replaces them at once. Counts threads_created, threads_exited, create_errors. On stop
 * the creator stops and the daemon waits (<= 2 s) for the last ones, so the final status
 * has threads_created == threads_exited. */
#include "common.h"

#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static counter_t threads_created, threads_exited, create_errors;
static long calls = 1000;
static sem_t slots;
static _Atomic int seed;

static void *short_thread(void *arg)
{
	int x = (atomic_fetch_add_explicit(&seed, 1, memory_order_relaxed) & 0xff) * 4096;

	(void)arg;
	for (long i = 0; i < calls; i++) {
		int r = compute(x);
		check_result(x, r);
		x = (x + 1) & 0xfffff;
	}
	count(&threads_exited);
	sem_post(&slots);
	return NULL;
}

static void *creator(void *arg)
{
	pthread_attr_t attr;

	(void)arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	common_thread_started();
	while (!common_stopping()) {
		struct timespec until;
		pthread_t t;
		int e;

		clock_gettime(CLOCK_REALTIME, &until);
		ts_add_ns(&until, 100 * 1000000L);
		if (sem_timedwait(&slots, &until) < 0)
			continue;	/* EINTR, ETIMEDOUT: look at the stop flag again */
		e = pthread_create(&t, &attr, short_thread, NULL);
		if (e) {
			count(&create_errors);
			sem_post(&slots);
			sleep_ms(1);
			continue;
		}
		count(&threads_created);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

enum { OPT_CALLS = 256 };

static int handle(int val, const char *arg)
{
	char *end;

	if (val != OPT_CALLS)
		return -1;
	calls = strtol(arg, &end, 10);
	return *end || calls < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "calls", required_argument, NULL, OPT_CALLS },
		{ 0 },
	};
	pthread_t ct;

	common_init(argc, argv, extra, handle,
		    "  --calls N         compute calls per short-lived thread (default 1000)\n"
		    "  (--threads N: short-lived threads kept alive, default 8)\n",
		    8);
	status_add("threads_created", &threads_created);
	status_add("threads_exited", &threads_exited);
	status_add("create_errors", &create_errors);
	if (sem_init(&slots, 0, (unsigned)opt.threads) < 0)
		die("sem_init: %s", strerror(errno));

	common_thread_create(&ct, creator, NULL);
	common_wait_started(1);

	common_run();
	common_join(ct, 2000);
	for (int i = 0; i < 200; i++) {
		if (atomic_load(&threads_exited) == atomic_load(&threads_created))
			break;
		nap_ms(10);
	}
	common_exit();
}
