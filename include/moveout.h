/* Threads out of displaced bytes: stepped, or moved to an out-of-line copy (moveout.c). */
#ifndef LP_MOVEOUT_H
#define LP_MOVEOUT_H

#include "tx.h"

/*
 * Look at stopped thread @t after a write: move it out of a displaced range if this
 * sync asks for it (tx->stepout), and find an int3 trap of ours still queued (the
 * kernel reports job-control traps before dequeuing signals: PC == site+1 alone is
 * ambiguous). @sig is the signal its stop delivers (a step may change it); @in_event:
 * the stop is a fork, clone or exec event, which cannot carry an injection.
 * Returns 1 when the thread must run to collect that trap, 0, or a failure.
 */
int moveout_examine(struct tx *tx, struct lp_thread *t, int *sig, bool in_event);
/* In sync 1, a stopped thread's signal frames are looked at once, whatever its first stop. */
int moveout_frames_once(struct tx *tx, struct lp_thread *t, uint64_t sp, int sig, bool in_event);
/*
 * Blocked thread @t at user PC @pc and SP @sp (its syscall file, proc.h) must stop to
 * be moved. Its stack is scanned for signal frames only where the program has handlers
 * of its own, once per sleep.
 */
bool moveout_needed(struct tx *tx, struct lp_thread *t, uint64_t sp, uint64_t pc);
#endif
