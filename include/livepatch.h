/* The library's entry point: what cmd/livepatch.c calls after parsing options. */
#ifndef LIVEPATCH_H
#define LIVEPATCH_H

#include <stdbool.h>
#include <sys/types.h>

#define LP_MAX_LOADS 16	/* --load given at most this many times */

struct lp_options {
	pid_t pid;
	const char **funcs;	/* --func, in order (repeatable) */
	size_t nfuncs;
	const char **targets;	/* --target, paired with funcs by position */
	size_t ntargets;
	const char **reverts;	/* --revert (repeatable) */
	size_t nreverts;
	const char *plan_file;	/* --plan FILE: "F G" a line; "-" is stdin */
	const char **loads;	/* --load PATCH.o (repeatable): linked into the process first */
	size_t nloads;
	bool revert_all;	/* --revert-all: every function livepatch changed */
	bool callsites;		/* --callsites: rewrite direct calls of F, not F's entry */
	const char *in;		/* --in OBJECT: only the calls in that object */
	bool list;		/* --list: functions that differ from their files */
	bool symbols;		/* --symbols [PREFIX] */
	const char *prefix;
	bool dry_run, json, quiet, verbose;
	unsigned int timeout_ms;
	double verify_s;		/* --verify window; 0: no verification */
	unsigned int verify_min_calls;
};

/* Run the whole pipeline; prints through the report stage; returns the exit code. */
int livepatch_run(const struct lp_options *o);

#endif
