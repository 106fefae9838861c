/* Inspect: what a process's code looks like now, compared with its files. Read-only. */
#ifndef LP_INSPECT_H
#define LP_INSPECT_H

#include <stdbool.h>
#include "lp.h"
#include "elfsym.h"

/* One function whose bytes in memory differ from its mapped file. */
struct lp_change {
	struct lp_symbol func;		/* obj, name, addr, size */
	uint64_t at;			/* first differing byte */
	uint8_t bytes[16];		/* memory from @at */
	uint8_t file[16];		/* the file from @at */
	unsigned int nbytes;		/* differing span, at most 16 shown */
	bool ours;			/* a jump livepatch writes, at the entry (after endbr64) */
	bool call;			/* a call site redirected (call-site mode): at = the call */
	char was_name[300];		/* for a call site: the callee the file has */
	uint64_t target;		/* where it jumps, when ours */
	char target_name[300];		/* OBJECT:SYMBOL+0xOFF of the target, or "" */
	bool in_patch;			/* the target is in a patch livepatch loaded (§8): */
	char patch_name[256];		/* its name, sha256 and where it is mapped */
	uint8_t patch_sha256[32];
	uint64_t patch_base, patch_size;
};

/* A patch livepatch loaded (docs/design.md §8), as the process's maps and memory show it. */
struct lp_patch_info {
	struct lp_object *obj;
	char name[256];
	uint8_t sha256[32];
	uint64_t base, size;
	unsigned int users;		/* functions of the list that jump into it */
};

struct lp_changes {
	struct lp_change *v;
	size_t n;
	struct lp_patch_info *patches;	/* every loaded patch, used or not */
	size_t npatches;
	double ms;			/* how long the comparison took */
	size_t bytes_compared;
};

/* Compare every executable mapping of every object with its file; list the loaded patches. */
int inspect_changes(struct lp_proc *p, struct lp_changes *out, struct lp_diag *d) LP_MUST_CHECK;
void inspect_free(struct lp_changes *c);

/* Call @fn for every function symbol "OBJECT:SYMBOL" starting with @prefix (NULL: all). */
int inspect_symbols(struct lp_proc *p, const char *prefix,
		    void (*fn)(const char *obj, const char *sym, void *arg), void *arg) LP_MUST_CHECK;

#endif
