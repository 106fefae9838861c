/*
 * Where: who is inside (docs/design.md §9), symbolized for the report: --where's
 * answer, and the threads that held back a --safe patch or an --unload.
 */
#ifndef LP_WHERE_H
#define LP_WHERE_H

#include <stdio.h>
#include "json.h"
#include "proc.h"
#include "tx.h"

/* A patch --unload takes out, and the functions it reverts on the way. */
struct lp_unloaded {
	char name[256];
	uint8_t sha256[32];
	uint64_t base, size;
	const char *reverted[64];
	size_t nreverted;
};

struct lp_where {
	struct lp_proc *proc;			/* symbols are read on demand */
	const struct lp_inside *in;		/* what the last check found */
	const struct lp_code_range *ranges;	/* what it checked, labelled by @names */
	const char *const *names;
	size_t nranges;
	struct lp_unloaded *unloaded;		/* --unload */
	size_t nunloaded;
};

/* --where's report: a header line, then each thread inside with its backtrace. */
void where_plain(FILE *f, const struct lp_where *w);
/* The threads inside and the stale words, without the header (--safe, --unload). */
void where_plain_threads(FILE *f, const struct lp_where *w);
/* The "where" object of --where's JSON report. */
void where_json(struct json *j, const struct lp_where *w);
/* The "safe" object (--safe, --unload) and the "unloaded" array. */
void where_json_safe(struct json *j, const struct lp_where *w);
void where_json_unloaded(struct json *j, const struct lp_where *w);

#endif
