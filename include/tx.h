/*
 * The transaction's state, shared by the files that carry it out (docs/design.md §4):
 * tx.c (what every step uses), trap.c (our int3 traps and SIGTRAP's disposition),
 * moveout.c (threads out of displaced bytes), events.c (tracee stops), sync.c (the
 * sync) and transact.c (the phases and the roll-back). Each includes only the
 * headers of the files below it in that list; transact.h, the interface, includes
 * this one for the options and statistics it passes.
 */
#ifndef LP_TX_H
#define LP_TX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <signal.h>
#include <sys/user.h>
#include "inject.h"
#include "frames.h"
#include "load.h"
#include "plan.h"
#include "seize.h"
#include "shield.h"
#include "sigstate.h"
#include "unwind.h"
#include "x86.h"
#include "xol.h"

/* What the caller of transact_run (transact.h) gives and gets back. */

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
	bool shielded;			/* the shield (shield.h) was up for the writes */
	bool shield_made;		/* this run mapped the shield's region */
	char shield_why[160];		/* why not, when it could not be raised */
	/* Threads seen stopped between [mid_lo, mid_hi] of lp_tx_opts: inside the old body. */
	pid_t mid[LP_MID_MAX];
	unsigned int nmid;
	bool rolled_back;
	unsigned int loaded;		/* patches mapped (lp_tx_opts.loads) */
	double load_ms;			/* mapping and filling them, in the process */
	bool load_kept;			/* rolled back, but a thread may have run a patch: left mapped */
	unsigned int unmapped;		/* lp_tx_opts.unmaps unmapped */
};

/*
 * Who is inside (docs/design.md §9): threads with a frame in the code a transaction
 * replaces, found by --safe, --where and --unload. Filled by the transaction, owned
 * and freed by the caller (inside_free).
 */
#define LP_INSIDE_FRAMES 64	/* frames kept per thread */

enum lp_inside_state { LP_INSIDE_STOPPED, LP_INSIDE_BLOCKED, LP_INSIDE_GROUP_STOPPED };

struct lp_inside_frame {
	uint64_t pc;		/* a return address, the PC, or a signal frame's saved PC */
	uint64_t at;		/* where on the stack it was found (0: the registers) */
	enum lp_hit_kind kind;	/* frames.h */
	int range;		/* the range it is inside, or -1 */
};

struct lp_inside_thread {
	pid_t tid;
	char comm[16];
	enum lp_inside_state state;
	bool unwound;		/* frames from the precise unwind; else the scan's hits */
	long syscall;		/* the call it is blocked in, or -1 */
	struct lp_inside_frame frames[LP_INSIDE_FRAMES];
	size_t nframes;
	char why[96];		/* why an unwind stopped early ("" when it reached the end) */
};

/* A word the scan took for a return address that the precise unwind does not have. */
struct lp_inside_stale {
	pid_t tid;
	char comm[16];
	uint64_t at, value;
	int range;
};

struct lp_inside {
	struct lp_inside_thread *v;	/* inside at the last check */
	size_t n, cap;
	struct lp_inside_stale *stale;
	size_t nstale, cap_stale;
	unsigned int checks;		/* checks made (one per attempt) */
	unsigned int threads;		/* threads looked at in the last check */
	double waited_ms;		/* from the first check to the last */
	bool ok;			/* the last check found nobody inside */
};

void inside_free(struct lp_inside *in);

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
	/*
	 * SIGKILL ourselves at this step (either walk), or in the middle of an injected
	 * call ("inject": through the trampoline; "inject-boot": the bootstrap): our
	 * death, on purpose, where the shield must take over (docs/design.md §11).
	 */
	const char *kill_at;
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
	/*
	 * --load: images to map after sync 0, before the first write (docs/design.md §8);
	 * then @loaded (if set) runs, e.g. to put --verify's probes on them (and may set
	 * the mid range); a failure of either rolls back, unmapping them.
	 */
	struct lp_load_image *loads;
	size_t nloads;
	int (*loaded)(void *arg, uint64_t *mid_lo, uint64_t *mid_hi, struct lp_diag *d);
	void *loaded_arg;
	/*
	 * Who is inside (docs/design.md §9). With @ranges: --safe checks them in sync 1 and
	 * retries until timeout_ms; @where_only makes no walk, only the check. @names
	 * label the ranges in messages. @modules let the check unwind (unwind.h).
	 */
	const struct lp_code_range *ranges;
	const uint64_t *entries;	/* per range: PC up to here has not begun it (0: none) */
	const char *const *names;
	size_t nranges;
	bool safe, where_only;
	bool unshielded;		/* no shield (shield.h): the tests' and bench's baseline */
	/*
	 * The guard's transaction (guard.h): sites half-written by a livepatch that died
	 * are rolled back, complete ones left, and the shield taken down.
	 */
	bool recover;
	pid_t guard_pid;		/* our guard, a child whose exit is none of the walk's */
	unsigned int wait_ms;		/* how long threads may stay inside, from the first check */
	const struct lp_unwind_module *modules;
	size_t nmodules;
	struct lp_inside *inside;	/* filled: who was inside */
	/* --unload: regions unmapped once the walk is through and nobody is inside. */
	const struct lp_code_range *unmaps;
	size_t nunmaps;
};

/* The state of one transaction, private to its files. */
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
	pid_t rewound;	/* events_reap() put this thread's PC back on the site it trapped at */
	const char *syncing;	/* the sync under way (sync1, sync2, sync3), for LP_KILL_AT=trap@STEP */
	bool in_sync;
	size_t ndeferred;			/* threads with ->deferred set */
	bool sync0;				/* only threads that may be in a fork need it */
	bool written;				/* a site's bytes were changed: roll-back has work */
	bool entered;				/* the new first bytes were written (or begun to) */
	const struct lp_tx_opts *opts;
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
	struct lp_shield shield;		/* the handler that outlives us (shield.h) */
	bool trap_sensitive;			/* SIGTRAP ignored or caught: a trap can change it */
	unsigned int awaiting;			/* threads holding a SIGTRAP until it is repaired */
	bool checking;				/* this sync checks who is inside (§9) */
	bool inside_failed;			/* the check found someone: roll back, retry */
	struct lp_unwinder *unwinder;		/* opened on first need */
	bool unwinder_failed;
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
/*
 * Someone else wrote site @s during the transaction: a forward walk fails (exit 6),
 * to roll back; a roll-back goes on (0) and writes over it.
 */
int tx_foreign_write(struct tx *tx, const struct lp_site *s);
/* Threads of the process (not fork children) the current sync still waits for. */
size_t tx_unsynced(const struct tx *tx);
/* Some thread of the process (not a fork child) is still there. */
bool tx_process_alive(const struct tx *tx);
/* The process exited or called exec: that is the outcome (exit 3). */
int tx_died(struct tx *tx) LP_MUST_CHECK;
#endif
