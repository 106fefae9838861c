/* The sync: every thread past one safe moment after a write (sync.c). */
#ifndef LP_SYNC_H
#define LP_SYNC_H

#include "tx.h"

/*
 * Establish, for every thread, one moment after the last write at which it ran no
 * user code and had no trap of ours pending, within tx->timeout_ms. With
 * @hold_last, the last thread to stop stays stopped (tx->held) for the next write.
 */
int sync_threads(struct tx *tx, bool hold_last) LP_MUST_CHECK;
/*
 * Interrupt one running thread and hold it stopped (tx->held), to carry an injection
 * or a write when none is held. NULL when none could be stopped that way.
 */
struct lp_thread *sync_stop_one(struct tx *tx);
/* Whether the process is going away under us (exit or exec), looked at for a moment. */
bool sync_process_ending(struct tx *tx);
/*
 * A thread of a stopped process (TH_LISTENING, in a group stop) interrupted into a
 * ptrace stop that is still its group stop, to carry an injection (load.c); NULL if
 * none. sync_listen_again() puts it back to listening: the process stays stopped.
 */
struct lp_thread *sync_stop_listening(struct tx *tx);
void sync_listen_again(struct tx *tx, struct lp_thread *t);

#endif
