/*
 * Who is inside (docs/design.md §9): whether a thread has a frame in the code the
 * transaction replaces, checked in the sync that follows the int3s (inside.c).
 */
#ifndef LP_INSIDE_H
#define LP_INSIDE_H

#include "tx.h"

/* Start a check: every thread unchecked, the last check's findings dropped. */
void inside_begin(struct tx *tx);
/*
 * Stopped thread @t, registers @r: the scan, then the precise unwind when the scan
 * finds something. 1 when it is inside (t->inside), 0 when not, or -errno.
 */
int inside_check_stopped(struct tx *tx, struct lp_thread *t, const struct user_regs_struct *r);
/* Thread @t asleep in the kernel at t->sys_pc, t->sys_sp: the scan alone (1, 0). */
int inside_check_blocked(struct tx *tx, struct lp_thread *t);
/* The check is over: stopped threads it did not meet are looked at now. How many are inside. */
size_t inside_finish(struct tx *tx);
/* "thread 4251 (reader) in a:compute, thread ...": the threads inside, for a message. */
void inside_names(const struct tx *tx, char *buf, size_t cap);

#endif
