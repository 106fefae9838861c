/* Report: the only stage that prints. One report, a plain printer and a JSON printer. */
#ifndef LP_REPORT_H
#define LP_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include "plan.h"
#include "resolve.h"

struct lp_tx_stats;
struct lp_verify;
struct lp_changes;
struct json;

struct lp_report {
	const struct lp_proc *proc;
	const struct lp_symbol *func;
	const struct lp_symbol *target;	/* NULL for a revert */
	const struct lp_plan *plan;
	bool dry_run;
	const struct lp_tx_stats *tx;	/* NULL unless a transaction ran */
	const struct lp_verify *verify;	/* NULL unless --verify ran */
	int exit_code;			/* of a transaction that failed after writing, else 0 */
	const struct lp_diag *diag;	/* its failure, or NULL */
};

void report_print(FILE *f, const struct lp_report *r, bool json);

/* --revert-all when no function differs from its file. */
void report_nothing_patched(FILE *f, const struct lp_proc *p, bool dry_run, bool json);

/* --list: every function whose bytes differ from its file. */
void report_changes(FILE *f, const struct lp_proc *p, const struct lp_changes *c, bool json);

/* --symbols: one "OBJECT:SYMBOL" a line, or a JSON object with them. */
struct report_symbols {
	FILE *f;
	bool json;
	size_t n;
};
void report_symbols_begin(struct report_symbols *r, const struct lp_proc *p);
void report_symbol(const char *obj, const char *sym, void *r);
void report_symbols_end(struct report_symbols *r);

/* "livepatch: error: ..." on stderr, or {"error":{...}} on stdout in JSON mode. */
void report_error(const struct lp_diag *d, int exit_code, bool json);

/*
 * A one-line progress indicator on stderr (callers show it only on a terminal)
 * once @what has run for a second: overwritten in place, cleared by _done().
 * Returns true when it printed.
 */
bool report_progress(const char *what, const struct timespec *since, unsigned int timeout_ms);
void report_progress_done(void);

/* -v: one line per protocol step, with a timestamp, on stderr. */
void report_verbose(const char *fmt, ...) LP_PRINTF(1, 2);

#endif
