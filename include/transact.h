/* Transact: the three synchronized phases over every thread (docs/design.md §4). */
#ifndef LP_TRANSACT_H
#define LP_TRANSACT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "lp.h"
#include "plan.h"

#define LP_MID_MAX 64

struct lp_tx_stats {
	unsigned int threads;		/* threads seized, including ones that joined */
	unsigned int syncs;
	unsigned int thread_stops;	/* interrupt stops taken over all syncs */
	unsigned int blocked_left_alone; /* thread-syncs satisfied without a stop */
	double seize_ms, sync0_ms, total_ms;	/* sync0: before the first write */
	double phase_ms[3];		/* breakpoint, tail, head (each with its sync) */
	double pause_max_us, pause_median_us;
	unsigned int traps_emulated, traps_parked, traps_late, stepouts;
	unsigned int signals_passed, clones, forks, exits;
	unsigned int calls_restarted;	/* blocking calls our interrupt cut: restarted */
	unsigned int out_of_line;	/* threads moved to an out-of-line copy (xol.h) */
	unsigned int frames_moved;	/* signal frames whose saved PC was moved there */
	unsigned int xol_regions;	/* regions made for the copies in this run */
	unsigned int dispositions_restored; /* SIGTRAP dispositions a trap had reset, put back */
	/* Threads seen stopped between [mid_lo, mid_hi] of lp_tx_opts: inside the old body. */
	pid_t mid[LP_MID_MAX];
	unsigned int nmid;
	bool rolled_back;
};

/* LP_TICK_US: the tracer's waitpid must be woken this often to check deadline and cancel. */
#define LP_TICK_US 5000

/*
 * What the caller owns and the transaction only uses: the process's signals and
 * timer stay the command's (run.c), as do the fault injection modes it reads.
 */
struct lp_tx_env {
	/* Nonzero (the signal's number) once the transaction is asked to stop. */
	const volatile sig_atomic_t *cancel;
	/*
	 * Make the tracer thread's waitpid return EINTR in @us microseconds, then
	 * every LP_TICK_US. Called from the tracer thread; must be set.
	 */
	void (*tick_in)(long us);
};

/* Fault injection for the tests (docs/design.md §7): none when @at is NULL. */
struct lp_tx_fault {
	const char *at;		/* fail the walk at this step: sync0, int3, sync1, tail, ... */
	long sleep_ms;		/* pause this long at every step */
	bool stop_blocked;	/* interrupt threads blocked in the kernel too */
};

struct lp_tx_opts {
	unsigned int timeout_ms;	/* for any one sync */
	pid_t via;			/* lp_proc.via: /proc/VIA/mem is the memory (0: the pid) */
	/* Log sink for -v (protocol steps); NULL: silent. The library never prints itself. */
	void (*log)(const char *fmt, ...) LP_PRINTF(1, 2);
	/*
	 * --verify: the bytes from the site to the old-body probe. A thread stopped
	 * there was inside the function when it was patched and runs past the probe
	 * once more, legitimately; its tid is noted in lp_tx_stats.mid.
	 */
	uint64_t mid_lo, mid_hi;
	struct lp_tx_env env;
	struct lp_tx_fault fault;
};

/*
 * Seize every thread of @pid and move @plan's sites to their new bytes; on a
 * failure, roll back to the old bytes with the same protocol. Must run in a
 * thread that exits afterwards: its exit releases every thread it traced
 * (docs/design.md §4). That thread alone must take the signals that cancel the
 * transaction or tick its waits (lp_tx_env): every other thread blocks them.
 */
int transact_run(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		 struct lp_tx_stats *st, struct lp_diag *d) LP_MUST_CHECK;
#endif
