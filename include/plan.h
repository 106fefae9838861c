/* Plan: decide, from the live bytes and the file's bytes, what to write where. */
#ifndef LP_PLAN_H
#define LP_PLAN_H

#include <stdbool.h>
#include "lp.h"
#include "elfsym.h"
#include "x86.h"

#define LP_SITE_MAX 16		/* longest site: the 14-byte absolute jump */
#define LP_DISPLACED_MAX 32	/* longest displaced range: 14 bytes + one instruction */
#define LP_FUNC_MAX (1u << 20)	/* longest function decoded */

enum lp_form {
	LP_FORM_JMP_REL32,	/* e9 rel32: 5 bytes, target within +-2 GiB */
	LP_FORM_JMP_ABS64,	/* ff 25 00000000 + 8-byte address: 14 bytes */
	LP_FORM_ORIGINAL,	/* the file's own instructions (revert) */
	LP_FORM_CALL_REL32,	/* call-site mode: e8 rel32 to the new callee */
};

/* One patch site: everything the transaction needs, nothing it must look up. */
struct lp_site {
	uint64_t addr;		/* first byte replaced (after a leading endbr64) */
	unsigned int len;
	unsigned int displaced_len;	/* whole instructions replaced: len rounded up */
	uint8_t orig[LP_DISPLACED_MAX];	/* the file's displaced instructions (out-of-line copy) */
	uint64_t after[8];	/* the old body's first instructions after them (for --verify) */
	unsigned int nafter;
	uint8_t old_bytes[LP_SITE_MAX];	/* what memory holds now */
	uint8_t new_bytes[LP_SITE_MAX];
	/*
	 * What a trap on the site's int3 does (docs/design.md §4) in the walk towards
	 * new_bytes, and in the roll-back towards old_bytes: plan_set_emulation().
	 */
	struct lp_emulation emul_new, emul_old;
	enum lp_form form;
	bool endbr;		/* an endbr64 precedes the site and stays */
	char func[200];		/* OBJECT:SYMBOL of the function patched */
	char target_name[200];	/* OBJECT:SYMBOL it will reach; "" for a revert */
	char was[200];		/* OBJECT:SYMBOL it jumped to before (revert, re-point); "" */
	uint64_t func_addr;
	char displaced[256];	/* the instructions replaced, as text */
	char written[160];	/* the instruction written, as text */
};

enum lp_plan_state {
	LP_PLAN_WRITE,		/* sites to write */
	LP_PLAN_ALREADY,	/* F already jumps to G: nothing to do */
	LP_PLAN_NOT_PATCHED,	/* revert of a function that matches its file */
};

/* A pair of a batch that needs no write (already applied, or a revert of an unpatched F). */
struct lp_skip {
	char func[200];
	enum lp_plan_state why;
};

/* A reference to F that call-site mode found and leaves alone (listed in the plan). */
struct lp_other {
	uint64_t addr;
	char where[200];	/* OBJECT:SYMBOL+0xOFF */
	const char *kind;	/* "tail_call", "pointer", "plt", "via_plt" */
};

/*
 * One transaction's worth of sites (one pair or a batch). state, repoint,
 * prev_target and why describe the first pair, which is all a single patch has.
 */
struct lp_plan {
	enum lp_plan_state state;
	bool revert;
	bool repoint;		/* F jumped elsewhere before */
	uint64_t prev_target;	/* where F jumped before (repoint, revert, already) */
	char why[256];		/* why this form was chosen */
	struct lp_site *sites;	/* sorted by address (plan_finish) */
	size_t nsites, cap;
	size_t npairs;		/* pairs added, written or skipped */
	struct lp_skip *skipped;
	size_t nskipped;
	struct lp_other *others;	/* call-site mode: references not rewritten */
	size_t nothers;
	bool callsites;
};

/* The bytes of one function, live and as the file has them; input of plan_site(). */
struct lp_request {
	uint64_t start, end;	/* the function containing the site */
	uint64_t entry;		/* where patching starts (== start unless given by address) */
	uint64_t target;	/* G; ignored for a revert */
	const uint8_t *live;	/* end - start bytes of memory */
	const uint8_t *file;	/* end - start bytes of the object file */
	bool revert;
	const char *name;	/* for messages */
};

/*
 * Analyse one function (docs/design.md §3) and fill @site and @plan's state. Pure: no
 * process access, so the unit tests feed it bytes. Refusals are LP_EXIT_SITE.
 */
int plan_site(const struct lp_request *rq, struct lp_site *site, struct lp_plan *plan,
	      struct lp_diag *d) LP_MUST_CHECK;

/*
 * Add one pair to @plan: read F's bytes from the process and its file, then
 * plan_site(). @g is NULL for a revert. A refusal refuses the whole batch.
 */
int plan_add(struct lp_proc *p, const struct lp_symbol *f, const struct lp_symbol *g,
	     struct lp_plan *plan, struct lp_diag *d) LP_MUST_CHECK;

/*
 * Call-site mode: add every direct `call F` (e8 rel32) in the executable sections
 * of @in (or of every object, NULL) as a site rewritten to `call G` (@g NULL: back
 * to `call F`). Tail calls, calls through memory and PLT stubs are listed in
 * plan->others and left alone. Refused under a user shadow stack.
 */
int plan_add_callsites(struct lp_proc *p, const struct lp_symbol *f, const struct lp_symbol *g,
		       const char *in, struct lp_plan *plan, struct lp_diag *d) LP_MUST_CHECK;

/* Fill @s's emulation records from its new and old bytes (x86_decode_emulation). */
void plan_set_emulation(struct lp_site *s);

/* Append a planned site (or a skip, when @one's state is not WRITE); for plan_add*. */
int plan_keep(struct lp_plan *plan, const struct lp_plan *one, const struct lp_site *s,
	      const struct lp_symbol *f) LP_MUST_CHECK;

/* Sort the sites by address and refuse overlaps; sets the batch's state. */
int plan_finish(struct lp_plan *plan, struct lp_diag *d) LP_MUST_CHECK;

/*
 * Refuse (LP_EXIT_SITE) a plan whose jumps make a cycle: a site jumps to a function whose
 * site jumps on (a pair of @plan, or a jump already in memory) and the chain comes back to
 * a site it passed, so every call would spin there. Reads memory; after plan_finish().
 */
int plan_check_cycles(struct lp_proc *p, const struct lp_plan *plan, struct lp_diag *d) LP_MUST_CHECK;

/* plan_add() + plan_finish() for a single pair, on a fresh @plan. */
int plan_build(struct lp_proc *p, const struct lp_symbol *f, const struct lp_symbol *g,
	       struct lp_plan *plan, struct lp_diag *d) LP_MUST_CHECK;

void plan_free(struct lp_plan *plan);

/*
 * Sites a single write can cover: consecutive sites (by address) on one page with
 * at most LP_RUN_GAP bytes between them. A batch is written run by run, so a
 * thousand sites cost a few writes per phase instead of a thousand.
 */
#define LP_RUN_GAP 256
struct lp_run {
	uint64_t lo, hi;	/* the bytes [lo, hi): first site's start to last site's end */
	size_t first, nsites;	/* plan->sites[first .. first + nsites) */
	size_t off;		/* where the run starts in a buffer holding every run in order */
};

/* Fill @runs (room for plan->nsites) from the sorted sites; returns how many. */
size_t plan_runs(const struct lp_plan *plan, struct lp_run *runs);

/* The site whose bytes contain @addr, by binary search, or NULL. */
const struct lp_site *plan_find_site(const struct lp_plan *plan, uint64_t addr);

#endif
