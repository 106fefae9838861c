/* Shared plumbing of the test daemons: options, status file, ready file, stop flag.
 *
 * Life of a daemon:
 *   common_init(argc, argv, extra_options, handler, usage)  parse, block SIGTERM/SIGINT
 *   status_add("key", &counter) ...                          register status keys
 *   common_thread_create(...) x N; common_wait_started(N)    start the threads
 *   common_run()            first status, ready file, status every 20 ms until SIGTERM/SIGINT
 *   join / clean up; common_exit()                           final status, exit 0
 *
 * Every thread created after common_init inherits a mask that blocks SIGTERM and SIGINT;
 * only the reporter (the main thread inside common_run) takes them, so a stop never makes
 * a blocked system call of a worker return EINTR (the daemons count those).
 */
#ifndef LP_DAEMON_COMMON_H
#define LP_DAEMON_COMMON_H

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

typedef _Atomic unsigned long counter_t;

/* Options shared by every daemon (after common_init). */
struct common_opts {
	const char *status;	/* --status FILE */
	const char *ready;	/* --ready FILE */
	int threads;		/* --threads N (default: the value passed to common_init) */
	bool nondumpable;	/* --nondumpable */
};
extern struct common_opts opt;

/* The functions that get patched (test/daemons/compute.c or libsample.so). */
int compute(int x);
int compute_v2(int x);
extern counter_t calls_compute, calls_compute_v2;
/* Results that match neither compute nor compute_v2 (defined in common.c). */
extern counter_t wrong;

/* Check one result of compute/compute_v2 (or of any function with their formulas). */
static inline void check_result(int x, int r)
{
	if (r != x * 2 + 1 && r != x * 3 + 7)
		atomic_fetch_add_explicit(&wrong, 1, memory_order_relaxed);
}

static inline void count(counter_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void count_n(counter_t *c, unsigned long n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/*
 * Parse argv with getopt_long. extra: the daemon's own options (val >= 256, ends with a zero
 * entry; may be NULL); handler(val, optarg) returns 0 or -1 for a bad value. usage: the
 * daemon's own option lines for --help. default_threads: value of opt.threads without --threads.
 */
void common_init(int argc, char **argv, const struct option *extra,
		 int (*handler)(int val, const char *arg), const char *usage, int default_threads);

/* Register a status key (shown in registration order, after pid, threads, uptime_ms). */
void status_add(const char *key, counter_t *value);
/* Register a status key whose value is computed by fn when the status is written. */
void status_add_fn(const char *key, unsigned long (*fn)(void));

/* True once SIGTERM/SIGINT arrived (cheap: a relaxed load). */
static inline bool common_stopping(void)
{
	extern _Atomic int common_stop_flag;
	return atomic_load_explicit(&common_stop_flag, memory_order_relaxed) != 0;
}
/* Ask the daemon to stop, as SIGTERM would. */
void common_request_stop(void);

/* pthread_create, aborting the daemon on failure. */
void common_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);
/* Called by a thread once it runs; common_wait_started(n) waits until n threads did. */
void common_thread_started(void);
void common_wait_started(int n);
/* Join with a deadline (ms); returns false when the thread did not end in time. */
bool common_join(pthread_t t, int ms);

/* Write the status file now (atomic: FILE.tmp.TID then rename). Safe from any thread. */
void status_write(void);
/* First status, ready file, then a status every 20 ms until a stop is requested. */
void common_run(void);
/* Final status, then _exit(0). */
_Noreturn void common_exit(void);

/* Milliseconds since common_init (CLOCK_MONOTONIC). */
unsigned long uptime_ms(void);
/* Sleep ms milliseconds (restarts after EINTR); returns early when stopping. */
void sleep_ms(long ms);
/* Sleep ms milliseconds (restarts after EINTR), stopping or not. */
void nap_ms(long ms);
/* timespec helpers */
void ts_add_ns(struct timespec *ts, long ns);

/* Standard compute worker: calls compute() in a tight loop until stop; arg unused. */
void *compute_worker(void *arg);
/* Start opt.threads compute workers (threads stored in *out, malloc'ed); returns the count. */
int start_compute_workers(pthread_t **out);
/* Join them (bounded). */
void join_workers(pthread_t *t, int n);

_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
