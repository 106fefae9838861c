/* The library's entry point: what cmd/livepatch.c calls after cmd/args.c parsed the options. */
#ifndef LIVEPATCH_H
#define LIVEPATCH_H

#include <stdbool.h>
#include <sys/types.h>

#define LP_MAX_LOADS 16	/* --load given at most this many times */

#define LP_WAIT_DEFAULT_MS 5000

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
	const char **wheres;	/* --where F (repeatable): who is inside F (docs/design.md §9) */
	size_t nwheres;
	bool safe;		/* --safe: the last write only when nobody is inside */
	const char **unloads;	/* --unload PATCH (repeatable): a loaded patch out */
	size_t nunloads;
	bool unload_all;	/* --revert-all --unload: every loaded patch out too */
	bool callsites;		/* --callsites: rewrite direct calls of F, not F's entry */
	const char *in;		/* --in OBJECT: only the calls in that object */
	bool list;		/* --list: functions that differ from their files */
	bool symbols;		/* --symbols [PREFIX] */
	const char *prefix;
	bool dry_run, json, quiet, verbose;
	unsigned int timeout_ms;
	bool timeout_given;	/* else --safe and --unload wait LP_WAIT_DEFAULT_MS for threads */
	double verify_s;		/* --verify window; 0: no verification */
	unsigned int verify_min_calls;
};

/* Run the whole pipeline; prints through the report stage; returns the exit code. */
int livepatch_run(const struct lp_options *o);

#endif
