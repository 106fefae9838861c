/* Tracee stops during a transaction, and what each one means (events.c). */
#ifndef LP_EVENTS_H
#define LP_EVENTS_H

#include <signal.h>
#include "tx.h"

/*
 * Handle wait status @status of tracee @tid (a stop, an exit, an event; a tid we did
 * not know is adopted). With @hold_last, the last thread the sync waits for stays
 * stopped (tx->held) for the next write.
 */
int events_on_status(struct tx *tx, pid_t tid, int status, bool hold_last) LP_MUST_CHECK;
/*
 * waitpid(@pid, @status, __WALL | @flags) for a tracee. A stop on one of our int3s has
 * its PC put back on the site before the stop is reaped: were livepatch killed after the
 * reap, the kernel would discard the trap and the thread run on from site+1 (design §11).
 * Before the reap it delivers the trap to the shield instead.
 */
pid_t events_reap(struct tx *tx, pid_t pid, int *status, int flags);
/* Wait for one event of any tracee and handle it. -EINTR on a tick, -ECHILD with none. */
int events_wait_one(struct tx *tx, bool hold_last) LP_MUST_CHECK;
/*
 * Our interrupt made @t's blocking call return EINTR: when nothing was transferred,
 * the call is restarted instead, as the program would have had it.
 */
void events_keep_blocking_call(struct tx *tx, const struct lp_thread *t);

static inline bool events_is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}
#endif
