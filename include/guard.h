/*
 * The guard (docs/design.md §11): a process livepatch starts for each transaction,
 * in a session of its own, that does nothing while livepatch lives. If livepatch
 * dies before saying the transaction is over (SIGKILL, the OOM killer), the guard
 * attaches to the process once the kernel has released it and finishes the
 * transaction's business: a site left half-written (an int3, a tail without its
 * head) is rolled back, a complete one stays, and the shield (shield.h) is taken
 * down, the program's SIGTRAP disposition put back. It logs what it did (audit.h).
 * It also holds --verify's uprobes (guard_keep), so that they are released by a
 * process that is not being killed.
 */
#ifndef LP_GUARD_H
#define LP_GUARD_H

#include <stdbool.h>
#include <sys/types.h>
#include "lp.h"

#define LP_GUARD_COMM "livepatch-guard"	/* its name in ps and /proc/PID/comm */

struct lp_guard {
	pid_t pid;	/* the guard, 0: none */
	int fd;		/* our end of the socket it waits on */
	unsigned int kept;	/* descriptors it holds for us */
};

/*
 * Fork the guard. In the child, @recover(@arg) runs if livepatch dies before
 * guard_done(); the child then exits. Returns 0, or -errno (no guard: the caller
 * goes on without one and says so).
 */
int guard_start(struct lp_guard *g, int (*recover)(void *arg), void *arg) LP_MUST_CHECK;

/*
 * The guard holds a copy of @fds (at most 8 in all) until guard_done() or our death,
 * and closes them first either way. Returns 0 (also with no guard), or -errno.
 */
int guard_keep(struct lp_guard *g, const int *fds, unsigned int n) LP_MUST_CHECK;

/*
 * The transaction and its verification are over (whatever their outcome): the guard
 * exits without a look, closing what it held; then we have waited for it.
 */
void guard_done(struct lp_guard *g);

#endif
