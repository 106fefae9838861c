/*
 * Report: the only stage that prints. The pipeline fills one struct lp_report with
 * whatever the run has to show; report_print() hands it to the plain printer or the
 * JSON printer (docs/design.md §1: with --json, exactly one object on stdout); and
 * the audit record of a transaction, to syslog (report_audit).
 */
#ifndef LP_REPORT_H
#define LP_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include "plan.h"
#include "elfsym.h"

struct lp_tx_stats;
struct lp_verify;
struct lp_changes;
struct lp_loads;
struct lp_where;

enum lp_report_kind {
	LP_REPORT_ERROR,	/* a failure before there is anything else to show */
	LP_REPORT_PATCH,	/* a patch or a revert: planned, done, nothing to do, rolled back */
	LP_REPORT_CHANGES,	/* --list */
	LP_REPORT_SYMBOLS,	/* --symbols */
	LP_REPORT_WHERE,	/* --where */
};

enum lp_report_format {
	LP_REPORT_PLAIN,	/* text on stdout, the error line on stderr */
	LP_REPORT_QUIET,	/* -q: the error line only */
	LP_REPORT_JSON,		/* one object on stdout, errors included */
};

/* --symbols: "OBJECT:SYMBOL" names, each ending in '\0', one after the other in @buf. */
struct lp_report_names {
	char *buf;
	size_t len, cap;
	size_t n;
	bool nomem;		/* a name could not be added: the list is short */
};

struct lp_report {
	enum lp_report_kind kind;
	const struct lp_proc *proc;	/* every kind but LP_REPORT_ERROR */

	/* LP_REPORT_PATCH */
	const struct lp_plan *plan;	/* NULL: --revert-all found nothing livepatch wrote */
	const struct lp_symbol *func;	/* the first pair's F (NULL without a plan) */
	const struct lp_symbol *target;	/* its G; NULL for a revert */
	bool dry_run;
	const struct lp_tx_stats *tx;	/* NULL unless a transaction ran */
	const struct lp_verify *verify;	/* NULL unless --verify ran */
	const struct lp_loads *loads;	/* --load's patches, or NULL */

	/* LP_REPORT_WHERE; for LP_REPORT_PATCH, --safe's or --unload's check (NULL: none) */
	const struct lp_where *where;

	/* LP_REPORT_CHANGES */
	const struct lp_changes *changes;

	/* LP_REPORT_SYMBOLS: filled by report_add_symbol(), freed by report_free() */
	struct lp_report_names symbols;

	/*
	 * The failure shown: always for LP_REPORT_ERROR; for LP_REPORT_PATCH, that of a
	 * transaction or a verification that ran (0: none).
	 */
	int exit_code;
	const struct lp_diag *diag;
	bool recovered;		/* the guard's transaction after livepatch died (guard.h) */
};

/* Print @r in @fmt: a report on @f (stdout), an error line on stderr. */
void report_print(FILE *f, const struct lp_report *r, enum lp_report_format fmt);

/* Release what @r holds itself (the --symbols names). */
void report_free(struct lp_report *r);

/* inspect_symbols()'s callback: add "OBJECT:SYMBOL" to the report @r points to. */
void report_add_symbol(const char *obj, const char *sym, void *r);

/* Print an error-only report: "livepatch: error: ..." on stderr, or {"error":{...}} on stdout. */
/* The error alone, on @f (JSON) or stderr (plain). */
void report_error(FILE *f, const struct lp_diag *d, int exit_code, bool json);

/* The status a report shows (applied, planned, already_applied, ...; listed); "" for others. */
const char *report_status(const struct lp_report *r);

/*
 * A one-line progress indicator on stderr (callers show it only on a terminal)
 * once @what has run for a second: overwritten in place, cleared by _done().
 * Returns true when it printed.
 */
bool report_progress(const char *what, const struct timespec *since, unsigned int timeout_ms);
void report_progress_done(void);

/*
 * A transaction ran for the patch report @r (exit code set): its audit record to
 * syslog (audit.h). With @verbose, one line on stderr says whether it was delivered.
 */
void report_audit(const struct lp_report *r, bool verbose);

/* -v: one line per protocol step, with a timestamp, on stderr. */
void report_verbose(const char *fmt, ...) LP_PRINTF(1, 2);

#endif
