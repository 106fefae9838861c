/* The shared page between the bench harness (bench/run.c) and the gap daemon (bench/benchd.c).
 *
 * Every worker of benchd timestamps each loop iteration and keeps, in its slot, the largest
 * gap between two consecutive iterations of the current window. A window is opened by the
 * harness by bumping `gen` (each worker resets its slot and acknowledges with gen_seen) and
 * closed by setting `end_ns`: a gap counts when it *started* before end_ns, so a thread that
 * is still descheduled when the window closes reports that gap as soon as it runs again
 * (the harness waits until every slot's `last` is past end_ns before it reads). A worker
 * asleep between bursts (`asleep`) is not waited for: it resets its slot before it counts
 * anything, and a slot not reset for the window (gen_seen) holds nothing of it.
 *
 * A gap is either a wait for a CPU (preemption) or a stop: a gap longer than BENCH_PROBE_NS
 * makes the worker read its voluntary context switches (getrusage RUSAGE_THREAD) and its
 * run-queue delay (/proc/thread-self/schedstat) to tell them apart.
 */
#define BENCH_PROBE_NS 10000
#ifndef LP_BENCH_SHM_H
#define LP_BENCH_SHM_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define BENCH_MAX_THREADS 1024
#define BENCH_OPEN UINT64_MAX

struct bench_slot {
	_Atomic uint64_t gen_seen;	/* window this slot was reset for */
	_Atomic uint64_t max_gap_ns;	/* largest iteration gap in the window */
	_Atomic uint64_t iters;		/* iterations in the window */
	_Atomic uint64_t last_ns;	/* timestamp of the latest iteration */
	/* Gaps in which the thread was stopped (a voluntary context switch inside a burst,
	 * where the worker makes no system call: a ptrace stop), the largest one, and of it the
	 * time off the run queue (gap minus the run_delay of /proc/thread-self/schedstat). */
	_Atomic uint64_t stop_gaps;
	_Atomic uint64_t max_stop_gap_ns;
	_Atomic uint64_t max_off_ns;
	_Atomic uint64_t asleep;	/* 1 while the worker sleeps between bursts */
} __attribute__((aligned(64)));

struct bench_shm {
	_Atomic uint64_t gen;		/* bumped by the harness: a new window */
	_Atomic uint64_t end_ns;	/* window end; BENCH_OPEN while open */
	_Atomic uint64_t calls_f, calls_g, wrong;	/* copied by benchd's main thread */
	_Atomic uint32_t started;	/* workers running */
	uint32_t nthreads;
	char pad[16];
	struct bench_slot slot[];
} __attribute__((aligned(64)));

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline size_t bench_shm_size(unsigned int nthreads)
{
	return sizeof(struct bench_shm) + (size_t)nthreads * sizeof(struct bench_slot);
}

#endif
