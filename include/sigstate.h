/*
 * Sigstate: the program's SIGTRAP disposition and masks stay its own (docs/design.md §4).
 *
 * The kernel delivers an int3 trap as a forced SIGTRAP: when the thread blocks
 * SIGTRAP or the process ignores it, the disposition is reset to the default for the
 * whole process, and the thread's mask loses SIGTRAP. livepatch suppresses its trap
 * but must also undo that: the disposition is saved before the first int3 (through a
 * system call injected in a stopped thread) and put back after any trap that changed
 * it, with the trapping thread's mask.
 */
#ifndef LP_SIGSTATE_H
#define LP_SIGSTATE_H

#include <signal.h>
#include <stdbool.h>
#include "inject.h"
#include "lp.h"

struct lp_sigstate {
	pid_t via;
	int mem_fd;
	bool ignored, caught;	/* SIGTRAP at the start (SigIgn, SigCgt) */
	bool saved;		/* act holds the disposition */
	uint64_t act[4];	/* the kernel's sigaction: handler, flags, restorer, mask */
	unsigned int restored;	/* times the disposition was put back */
	unsigned int requeued;	/* program SIGTRAPs queued again once it was back */
};

/* SigIgn and SigCgt of /proc/@via/status: 0 or -errno. */
int sigstate_read(pid_t via, uint64_t *ign, uint64_t *cgt);

/* The starting disposition, from SigIgn and SigCgt; true when a trap can change it. */
bool sigstate_init(struct lp_sigstate *ss, pid_t via, int mem_fd, uint64_t ign, uint64_t cgt);

/* The disposition is no longer what it was at the start. */
bool sigstate_changed(const struct lp_sigstate *ss);

/* Save the disposition through @inj (a stopped thread whose stack pointer is @sp). */
int sigstate_save(struct lp_sigstate *ss, const struct lp_injector *inj, uint64_t sp) LP_MUST_CHECK;

/*
 * After one of our traps, or before a SIGTRAP of the program's own is passed on: when
 * the disposition is no longer the saved one, put it back through @inj (the stopped
 * thread @tid, stack pointer @sp) and set *@reblock when that thread's mask must get
 * SIGTRAP back (it was caught: only a blocked SIGTRAP resets a handler). Returns 1
 * when it put the disposition back, 0 when nothing had changed.
 */
int sigstate_repair(struct lp_sigstate *ss, const struct lp_injector *inj, uint64_t sp,
		    bool *reblock) LP_MUST_CHECK;

#endif
