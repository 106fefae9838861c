/*
 * Execute out of line: a copy of a site's displaced instructions, relocated into a
 * small executable region livepatch creates in the process, followed by a jump back
 * past the site. A thread whose saved PC lies inside the displaced bytes (stopped,
 * group-stopped, interrupted by a signal, blocked in a call the kernel may restart)
 * is moved to the same instruction in the copy and finishes the old instructions
 * there (docs/design.md §5, the thread states).
 */
#ifndef LP_XOL_H
#define LP_XOL_H

#include <stdbool.h>
#include "inject.h"
#include "lp.h"
#include "plan.h"

#define LP_XOL_PAGE 4096
#define LP_XOL_SLOT 64			/* one site's copy: 16 bytes of header, then code */
#define LP_XOL_CODE (LP_XOL_SLOT - 16)
#define LP_XOL_NAME "livepatch-xol"	/* the region's first bytes, and its name in maps */

/* A relocated copy of the instructions [from, from + len). */
struct lp_xol_copy {
	uint8_t code[LP_XOL_CODE];
	unsigned int len;
	/* Offset in the original -> offset in the copy, for every instruction start and
	 * for len itself (the end: the jump back); 0xff elsewhere. */
	uint8_t map[LP_DISPLACED_MAX + 1];
};

/*
 * Relocate @len bytes of whole instructions found at @from so that they run at @to:
 * RIP-relative operands and relative jumps, calls and conditional jumps keep their
 * targets; a jmp rel32 back to @from + @len ends the copy. Pure. -ERANGE with @why
 * set when an instruction cannot run elsewhere (loop, jrcxz, a target out of reach).
 */
int xol_relocate(const uint8_t *orig, unsigned int len, uint64_t from, uint64_t to,
		 struct lp_xol_copy *out, char *why, size_t why_cap) LP_MUST_CHECK;

/* Where a thread at @pc inside a site (from < pc <= from + len) continues in the copy. */
static inline bool xol_map(const struct lp_xol_copy *c, uint64_t from, uint64_t to, uint64_t pc,
			   uint64_t *out)
{
	uint64_t off = pc - from;

	if (pc < from || off > LP_DISPLACED_MAX || c->map[off] == 0xff)
		return false;
	*out = to + c->map[off];
	return true;
}


/* The regions of one process, found or created on first need. */
struct lp_xol {
	pid_t via;		/* whose /proc shows the memory */
	int mem_fd;		/* /proc/VIA/mem, read-write */
	uint64_t region[8];
	uint8_t used[8];	/* slots taken in each region, header included */
	size_t nregions;
	bool scanned;		/* existing regions looked for in maps */
	unsigned int created;	/* regions this transaction created */
};

/*
 * The copy of site @s placed in a region within reach of it: one already there (a
 * region left by an earlier livepatch keeps its slots), or a new slot, in a new
 * region if needed (created through @inj: mmap, then named when the kernel can).
 * Slots are never rewritten: a thread may run in one long after its transaction.
 */
int xol_place(struct lp_xol *x, const struct lp_site *s, const struct lp_injector *inj,
	      uint64_t *to, struct lp_xol_copy *copy, struct lp_diag *d) LP_MUST_CHECK;

#endif
