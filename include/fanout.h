/* Fan-out: per-thread /proc reads shared with one helper thread. */
#ifndef LP_FANOUT_H
#define LP_FANOUT_H

#include <stddef.h>

/* Below this many items the caller works alone: waking the helper costs more. */
#define LP_FANOUT_MIN 16

struct lp_fanout;

/* A parked helper thread; NULL when it cannot be started (lp_fanout_run then works alone). */
struct lp_fanout *lp_fanout_start(void);

/*
 * Call @fn(@ctx, i) exactly once for every i in [0, @n), from the calling thread and
 * from the helper, each taking the next few indices in turn, and return once every
 * call has returned. The caller never waits for a helper that has not started: it
 * does the work alone, and a helper that wakes late finds nothing left. @fn runs
 * concurrently on different indices and must touch nothing another index touches.
 * @f may be NULL.
 */
void lp_fanout_run(struct lp_fanout *f, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

/* Stop and join the helper; NULL is ignored. */
void lp_fanout_stop(struct lp_fanout *f);

#endif
