/*
 * The pipeline, in order: resolve -> plan -> (dry run: report) -> transact ->
 * report. Each stage gets what the previous one produced and nothing else.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "livepatch.h"
#include "plan.h"
#include "report.h"
#include "resolve.h"
#include "transact.h"

static int fail(const struct lp_options *o, struct lp_diag *d, int ret)
{
	int code = lp_exit_code(ret);

	if (!d->code)
		snprintf(d->msg, sizeof(d->msg), "internal error: %s (please report it)",
			 strerror(ret < 0 && ret > -LP_ERR_BASE ? -ret : EINVAL));
	report_error(d, code, o->json);
	return code;
}

int livepatch_run(const struct lp_options *o)
{
	struct lp_diag d = { 0 };
	struct lp_proc proc;
	struct lp_symbol f, g;
	struct lp_plan plan = { 0 };
	int ret;

	ret = proc_open(&proc, o->pid, &d);
	if (!ret)
		ret = resolve_function(&proc, o->revert ? o->revert : o->func, "function", &f, &d);
	if (!ret && !o->revert)
		ret = resolve_function(&proc, o->target, "target", &g, &d);
	if (!ret && !o->revert && f.addr == g.addr)
		ret = lp_fail(&d, LP_EXIT_USAGE, "the function and the target are the same (0x%lx) "
			      "(give --target the replacement function)", (unsigned long)f.addr);
	if (!ret)
		ret = plan_build(&proc, &f, o->revert ? NULL : &g, &plan, &d);
	if (ret) {
		ret = fail(o, &d, ret);
		goto out;
	}
	struct lp_report r = {
		.proc = &proc, .func = &f, .target = o->revert ? NULL : &g, .plan = &plan,
		.dry_run = o->dry_run,
	};
	if (!o->dry_run && plan.state == LP_PLAN_WRITE) {
		ret = fail(o, &d, lp_fail(&d, LP_EXIT_INTERNAL, "applying a plan is not built yet "
					  "(use --dry-run)"));
		goto out;
	}
	if (!o->quiet || o->json)
		report_print(stdout, &r, o->json);
	ret = 0;
out:
	plan_free(&plan);
	proc_close(&proc);
	return ret;
}
