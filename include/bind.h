/*
 * Bind: each --load patch object read (patchobj.h), its undefined symbols bound to
 * the process's, a place found for it within reach of the code it serves, and its
 * image linked there (link.h), before anything is attached (docs/design.md §8). A
 * patch already loaded (same sha256) is reused instead. Each patch then appears in
 * the process's objects (proc.h), so its functions resolve like any other.
 */
#ifndef LP_BIND_H
#define LP_BIND_H

#include <stdbool.h>
#include <sys/types.h>
#include "lp.h"
#include "link.h"
#include "pairs.h"
#include "patchobj.h"
#include "proc.h"

struct lp_load {
	struct lp_patchobj po;
	struct lp_link lk;
	struct lp_binding *binds;	/* per po.syms */
	size_t obj;			/* its object: proc->objs[obj] (the array moves) */
	bool reused;			/* already in the process: nothing to map */
	uint64_t base, size;		/* where it is, or goes: [base, base + size) */
	int image_fd;			/* livepatch's own memfd holding the image, or -1 */
	char memfd_name[280];		/* "livepatch:NAME", as memfd_create() gets it */
	unsigned int nbound[LP_BIND_WEAK_ZERO + 1];	/* undefined symbols bound, by how */
	double link_ms;			/* reading, binding, placing and linking it */
};

struct lp_loads {
	struct lp_load *v;
	size_t n;
};

/*
 * Read, bind, place and link each of the @n patch objects @paths for process @p,
 * whose pairs @ps (functions resolved, targets not yet: targets_later) say which
 * objects hold the functions replaced: their symbols, local ones included, bind
 * first. @caller: who may own a patch file besides root. Adds one object per patch
 * to @p. Fails before anything is attached: LP_EXIT_USAGE (the file), LP_EXIT_SITE
 * (its contents, no room within reach), LP_EXIT_SYMBOL (unresolved or ambiguous
 * names, all listed at once).
 */
int loads_prepare(struct lp_proc *p, const char *const *paths, size_t n, const struct lp_pairs *ps,
		  uid_t caller, struct lp_loads *out, struct lp_diag *d) LP_MUST_CHECK;

/* A plain target NAME that a loaded patch defines becomes PATCH:NAME (patches win). */
int loads_qualify(struct lp_proc *p, const struct lp_loads *l, struct lp_pairs *ps) LP_MUST_CHECK;

/*
 * Where a region of @size bytes goes (docs/design.md §8), from the maps text read from
 * @maps_fd: in a gap, a page off its neighbours, the whole of it and of the object
 * [@lo, @hi) within rel32 reach of each other, nearest the object; never where the
 * heap (from @brk, 0: unknown) or the stack grows, nor in the @ntaken ranges @taken
 * (planned for other patches). 0 when there is no such place.
 */
uint64_t bind_find_gap(int maps_fd, uint64_t lo, uint64_t hi, uint64_t size, uint64_t brk,
		       const uint64_t (*taken)[2], size_t ntaken);

void loads_free(struct lp_loads *l);

#endif
