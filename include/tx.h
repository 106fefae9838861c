/*
 * The transaction's state, shared by the files that carry it out (docs/design.md §4):
 * tx.c (what every step uses), trap.c (our int3 traps and SIGTRAP's disposition),
 * moveout.c (threads out of displaced bytes), events.c (tracee stops), sync.c (the
 * sync) and transact.c (the phases and the roll-back). Each includes only the
 * headers of the files below it in that list.
 */
#ifndef LP_TX_H
#define LP_TX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>
#include "inject.h"
#include "frames.h"
#include "plan.h"
#include "seize.h"
#include "sigstate.h"
#include "transact.h"
#include "x86.h"
#include "xol.h"

struct tx {
	pid_t pid;
	pid_t via;				/* lp_tx_opts.via, never 0 */
	struct lp_threads ts;
	const struct lp_plan *plan;
	uint8_t (*bytes)[LP_SITE_MAX];		/* every site's new bytes, then its old ones */
	const uint8_t (*to)[LP_SITE_MAX];	/* the bytes this walk moves each site to */
	struct lp_run *runs;			/* the sites grouped for writing (plan_runs) */
	size_t nruns;
	uint8_t *img;				/* what memory holds over every run, in order */
	pid_t held;	/* a stopped thread to write through, by tid: the array moves on realloc */
	int mem_fd;
	bool stepout;				/* this sync moves threads out of displaced ranges */
	bool forward;				/* not a roll-back: fault injection applies */
	bool exec_seen;
	bool in_sync;
	size_t ndeferred;			/* threads with ->deferred set */
	bool sync0;				/* only threads that may be in a fork need it */
	bool written;				/* a site's bytes were changed: roll-back has work */
	struct lp_tx_env env;
	struct lp_tx_fault fault;
	void (*log)(const char *fmt, ...) LP_PRINTF(1, 2);
	unsigned int timeout_ms;
	uint64_t mid_lo, mid_hi;		/* see lp_tx_opts */
	struct timespec deadline;
	double *pauses;
	size_t npauses, cap_pauses;
	struct lp_tx_stats *st;
	struct lp_diag *d;
	struct lp_xol xol;			/* regions for out-of-line copies (xol.h) */
	uint64_t *xol_to;			/* per site: where its copy runs; 0: not placed */
	struct lp_xol_copy *xol_copy;
	char xol_why[256];			/* why no copy could be placed */
	uint64_t syscall_insn;			/* for injections, found by the first */
	bool handlers;				/* the process catches a signal: frames may exist */
	bool own_handlers;			/* besides glibc's own two (read_signal_state) */
	struct lp_stacks stacks;
	struct lp_sigstate sigs;		/* SIGTRAP's disposition, kept (sigstate.h) */
	bool trap_sensitive;			/* SIGTRAP ignored or caught: a trap can change it */
	unsigned int awaiting;			/* threads holding a SIGTRAP until it is repaired */
};

#define LOG(tx, ...) do { if ((tx)->log) (tx)->log(__VA_ARGS__); } while (0)
/* The tail of a failure message: what the process holds now. */
#define TX_STATE(tx) ((tx)->written ? "the patch was rolled back" : "nothing was written")

/* The site whose bytes hold @addr, and its index in the plan. */
const struct lp_site *tx_site_at(const struct tx *tx, uint64_t addr, size_t *idx);
/*
 * A fault injection point (lp_tx_fault), and where a cancel signal is noticed:
 * fails a forward walk at step @name. A roll-back is never cut short.
 */
int tx_fault_point(struct tx *tx, const char *name) LP_MUST_CHECK;
/* Read or write the process's memory through the held thread, else /proc/PID/mem. */
int tx_mem_rw(struct tx *tx, uint64_t addr, void *buf, size_t len, bool write);
/* Let stopped thread @t run again, delivering @sig (or the one it holds). */
int tx_resume(struct tx *tx, struct lp_thread *t, int sig) LP_MUST_CHECK;
/* An injector through stopped thread @t (inject.h); tx_injected() takes back what it learnt. */
struct lp_injector tx_injector(struct tx *tx, struct lp_thread *t, struct lp_inject *in);
void tx_injected(struct tx *tx, struct lp_thread *t, const struct lp_inject *in);
/* Threads of the process (not fork children) the current sync still waits for. */
size_t tx_unsynced(const struct tx *tx);
/* Some thread of the process (not a fork child) is still there. */
bool tx_process_alive(const struct tx *tx);
/* The process exited or called exec: that is the outcome (exit 3). */
int tx_died(struct tx *tx) LP_MUST_CHECK;
#endif
