/* SIGTRAP during a transaction: our int3 traps, and the program's disposition (trap.c). */
#ifndef LP_TRAP_H
#define LP_TRAP_H

#include "tx.h"

/*
 * A SIGTRAP from our int3 at site @s, stopped thread @t with registers @r: run what
 * the walk is writing there in its registers (the plan's lp_site.emul_new or
 * emul_old), or park it (a revert), or, reported late, run the completed
 * instruction. Resumes it (or defers it). Fails a forward walk when the site holds
 * bytes that are neither the plan's old nor its new ones.
 */
int trap_handle(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r,
		const struct lp_site *s) LP_MUST_CHECK;
/* Whether @t blocks SIGTRAP, noted at a stop that is not one of our traps. */
void trap_note_mask(struct tx *tx, struct lp_thread *t);
/* A single step's forced SIGTRAP in @t could reset SIGTRAP's disposition. */
bool trap_step_resets(struct tx *tx, struct lp_thread *t);
/*
 * A SIGTRAP of the program's own, in a process where our traps reset the
 * disposition: kept by @t, stopped, until the transaction ends. False: deliver it.
 */
bool trap_hold_own(struct tx *tx, struct lp_thread *t, int sig);
/* Save SIGTRAP's disposition through stopped thread @h (NULL: none; logged). */
void trap_save_disposition(struct tx *tx, struct lp_thread *h);
/* After the last sync: an ignored SIGTRAP a trap reset must be ignored again ... */
bool trap_ignored_reset(const struct tx *tx);
/* ... through stopped thread @h (NULL: none; logged). */
void trap_ignore_again(struct tx *tx, struct lp_thread *h);
#endif
