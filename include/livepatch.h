/* The library's entry point: what cmd/livepatch.c calls after cmd/args.c parsed the options. */
#ifndef LIVEPATCH_H
#define LIVEPATCH_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define LP_MAX_LOADS 16	/* --load given at most this many times */

#define LP_WAIT_DEFAULT_MS 5000

/* How one process's run ended, for the multi-process mode (fleet.c). */
struct lp_outcome {
	int exit_code;
	char status[24];	/* the report's status (applied, planned, ...), "" for an error */
	bool rolled_back;
	char message[1024];	/* the error's message, "" without one */
	char funcs[2048];	/* the functions a patch changed, one per line, as --revert takes them */
};

struct lp_options {
	pid_t pid;
	pid_t *pids;		/* --pid, every one given (pid is the first) */
	size_t npids;
	const char *all;	/* --all OBJECT: every process that maps that file */
	const char *all_build_id; /* --all-build-id HEX */
	const char *exe;	/* --exe PATH: every process whose executable is that file */
	pid_t *excludes;	/* --exclude PID (repeatable) */
	size_t nexcludes;
	unsigned int jobs;	/* --jobs N; 0: the number of online CPUs */
	bool atomic;		/* --atomic: all processes or none */
	unsigned int canary;	/* --canary N: N processes first, with --verify */
	FILE *out;		/* where the report goes; NULL: stdout */
	struct lp_outcome *outcome;	/* filled at the end of livepatch_run() when not NULL */
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

/* Several processes (--all, --exe, --all-build-id, --pid repeated): each gets its own run. */
bool livepatch_many(const struct lp_options *o);
int livepatch_run_many(const struct lp_options *o);

#endif
