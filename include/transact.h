/* Transact: the three synchronized phases over every thread (docs/design.md §4). */
#ifndef LP_TRANSACT_H
#define LP_TRANSACT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "tx.h"

/*
 * Seize every thread of @pid and move @plan's sites to their new bytes; on a
 * failure, roll back to the old bytes with the same protocol. Must run in a
 * thread that exits afterwards: its exit releases every thread it traced
 * (docs/design.md §4). That thread alone must take the signals that cancel the
 * transaction or tick its waits (lp_tx_env): every other thread blocks them.
 */
int transact_run(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		 struct lp_tx_stats *st, struct lp_diag *d) LP_MUST_CHECK;
#endif
