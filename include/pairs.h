/*
 * Pairs: what the user asked to patch, as resolved functions (resolve.h). One pair,
 * repeated pairs, reverts, a plan file, or every jump livepatch wrote: one batch.
 */
#ifndef LP_PAIRS_H
#define LP_PAIRS_H

#include <stdbool.h>
#include "lp.h"
#include "elfsym.h"

/* A batch: functions and their targets (revert: no targets). */
struct lp_pairs {
	struct lp_symbol *f, *g;
	char **gspec;		/* each target as named (NULL for a revert) */
	size_t n;
	bool revert;
	bool targets_later;	/* gspec names targets not resolved yet */
};

/* What to pair, as the user named it ("[OBJECT:]SYMBOL" or "0xADDRESS" each). */
struct lp_pairs_want {
	const char *const *funcs;	/* paired with targets by position */
	const char *const *targets;
	size_t nfuncs;
	const char *const *reverts;
	size_t nreverts;
	const char *plan_file;		/* "F G" a line; "-" is stdin; NULL: none */
	bool revert_all;		/* every function livepatch changed */
	bool targets_later;		/* functions only: pairs_resolve_targets() follows */
};

/* What a plan file may hold: bytes in all, bytes in one line (its newline not counted). */
#define LP_PLAN_MAX_BYTES (16u << 20)
#define LP_PLAN_MAX_LINE 4096u

/*
 * Resolve every pair @w names: func/target pairs, reverts, a plan file, or
 * revert_all (every jump livepatch wrote, from memory vs files).
 * A bad plan-file line (not 'F G', a NUL byte, longer than LP_PLAN_MAX_LINE, a
 * function already in the batch) is a usage error naming FILE:LINE; so is a file
 * that cannot be read or holds more than LP_PLAN_MAX_BYTES.
 */
int pairs_collect(struct lp_proc *p, const struct lp_pairs_want *w, struct lp_pairs *out,
		  struct lp_diag *d) LP_MUST_CHECK;
/*
 * Resolve the targets of the pairs pairs_collect() left named only (targets_later:
 * when --load adds the objects they are in after the functions are known).
 */
int pairs_resolve_targets(struct lp_proc *p, struct lp_pairs *ps, struct lp_diag *d) LP_MUST_CHECK;
void pairs_free(struct lp_pairs *pairs);

#endif
