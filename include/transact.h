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
};



/*
 * Seize every thread of @pid and move @plan's sites to their new bytes; on a
 * failure, roll back to the old bytes with the same protocol. Must run in a
 * thread that exits afterwards: its exit releases every thread it traced
 * (docs/design.md §4). The signals of transact_signals() must be blocked in every other
 * thread: they cancel the transaction (SIGINT, SIGTERM, SIGHUP, SIGPIPE) or tick
 * its waits (SIGALRM), and the tracer unblocks them for itself.
 */
int transact_run(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		 struct lp_tx_stats *st, struct lp_diag *d) LP_MUST_CHECK;
void transact_signals(sigset_t *set);
#endif
