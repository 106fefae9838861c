/* Verify: the kernel's own count of what ran, from BPF, independent of our bookkeeping. */
#ifndef LP_VERIFY_H
#define LP_VERIFY_H

#include <stdbool.h>
#include "lp.h"
#include "plan.h"
#include "elfsym.h"

enum lp_verdict { LP_VERIFY_PASS, LP_VERIFY_FAIL, LP_VERIFY_INCONCLUSIVE };

struct lp_verify {
	double window_s;
	uint64_t target_probe;		/* where G's entry probe sits (0: none, a revert) */
	uint64_t old_probe;		/* F's first instruction after the displaced bytes */
	uint64_t traps_generated;	/* SIGTRAPs raised at our sites during the transaction */
	uint64_t traps_delivered;	/* of those, how many reached the program (must be 0) */
	uint64_t traps_handled;		/* what the transaction counted, for the cross-check */
	uint64_t target_hits, old_hits;	/* during the window */
	uint64_t old_hits_mid;		/* of the old body's, by threads already inside it */
	unsigned int min_calls;
	enum lp_verdict verdict;
	char reason[256];
};

struct lp_verifier;

/* A function's extent [start, end), for the `int $3` scan. */
struct lp_fn_range {
	uint64_t start, end;
};

/*
 * The first `int $3` (cd 03) in the @len bytes at @addr, into @at (0: none). A cd 03
 * counts only when a linear decode from the start of the function of @fns (sorted by
 * start) that holds it reaches it as an instruction of its own: one inside another
 * instruction's immediate or displacement does not, nor one in no function, or in one
 * that starts before @addr (nothing to decode from: not refused). Pure: 0, or -ENOMEM
 * or -EINVAL when capstone cannot be opened.
 */
int verify_find_int3(const uint8_t *bytes, size_t len, uint64_t addr,
		     const struct lp_fn_range *fns, size_t nfns, uint64_t *at) LP_MUST_CHECK;

/*
 * Refuse --verify (LP_EXIT_PROCESS) for a process whose code holds an `int $3` in the
 * executable mappings of its ELF objects: once its memory has uprobes the kernel takes
 * it for a one-byte breakpoint of theirs and restarts the thread on its second byte
 * (docs/design.md §6). Reads only; call it before any probe is attached.
 */
int verify_scan_int3(struct lp_proc *p, struct lp_diag *d) LP_MUST_CHECK;

/*
 * Load and attach the probes before anything is written, so a missing privilege
 * or kernel feature fails early (LP_EXIT_PROCESS) with the process untouched.
 * Traps are counted at every site; calls at @site (the first pair's) and @g,
 * which is NULL for a revert. Probes never sit on a byte livepatch changes.
 */
int verify_prepare(struct lp_verifier **v, struct lp_proc *p, const struct lp_plan *plan,
		   const struct lp_site *site, const struct lp_symbol *g,
		   struct lp_diag *d) LP_MUST_CHECK;

/*
 * After the transaction: read the trap counts, then count hits for @out->window_s
 * seconds. The @nmid threads of @mid were inside the old body when it was patched:
 * their runs past the old-body probe finish a call begun before and are counted
 * apart (old_hits_mid), not as old code entered.
 */
int verify_window(struct lp_verifier *v, struct lp_verify *out, const pid_t *mid,
		  unsigned int nmid) LP_MUST_CHECK;

/* The old-body probe's address (0 before verify_prepare). */
uint64_t verify_old_probe(const struct lp_verifier *v);

/* The uprobes' link descriptors into @fds (room for 2): how many (0 with no verifier). */
unsigned int verify_fds(const struct lp_verifier *v, int *fds);

void verify_close(struct lp_verifier *v);

#endif
