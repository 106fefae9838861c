/*
 * The pipeline, in order: resolve -> plan -> (dry run: report) -> transact ->
 * report. Each stage gets what the previous one produced and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include "livepatch.h"
#include "plan.h"
#include "report.h"
#include "resolve.h"
#include "transact.h"
#include "verify.h"
#include "inspect.h"

static int fail(const struct lp_options *o, struct lp_diag *d, int ret)
{
	int code = lp_exit_code(ret);

	if (!d->code)
		snprintf(d->msg, sizeof(d->msg), "internal error: %s (please report it)",
			 strerror(ret < 0 && ret > -LP_ERR_BASE ? -ret : EINVAL));
	report_error(d, code, o->json);
	return code;
}

/* What the tracer process sends back before it exits. */
struct tracer_result {
	int ret;
	struct lp_tx_stats st;
	struct lp_diag d;
};

static volatile sig_atomic_t tracer_pid;

static void forward_signal(int sig)
{
	if (tracer_pid > 0)
		kill(tracer_pid, sig);	/* the tracer finishes or rolls back, then exits */
}

/*
 * The transaction runs in a child that exits when it is done: the kernel then
 * releases every traced thread without waking a sleeping one, where
 * PTRACE_DETACH would need each thread stopped (and stopping some system calls
 * makes them return EINTR). The parent reports.
 */
static int run_tracer(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		      bool progress, struct lp_tx_stats *st, struct lp_diag *d)
{
	struct tracer_result res = { 0 };
	struct sigaction sa = { .sa_handler = forward_signal }, old[4];
	static const int sigs[4] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	int fds[2], status;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid_t child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		close(fds[0]);
		res.ret = transact_run(pid, plan, o, &res.st, &res.d);
		_exit(write(fds[1], &res, sizeof(res)) == sizeof(res) ? 0 : 1);
	}
	close(fds[1]);
	tracer_pid = child;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	size_t got = 0;
	struct timespec t0;
	bool shown = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sizeof(res)) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		if (progress && poll(&pfd, 1, 250) == 0) {
			shown |= report_progress("transaction in progress", &t0, o->timeout_ms);
			continue;
		}
		ssize_t n = read(fds[0], (char *)&res + got, sizeof(res) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (shown)
		report_progress_done();
	close(fds[0]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	tracer_pid = 0;
	if (got != sizeof(res))
		return lp_fail(d, LP_EXIT_INTERNAL, "the tracer process died (status 0x%x) before "
			       "reporting; check the process with livepatch --dry-run", status);
	*st = res.st;
	*d = res.d;
	return res.ret;
}

/* --list and --symbols: read-only views; nothing is attached. */
static int run_inspect(const struct lp_options *o, struct lp_proc *proc, struct lp_diag *d)
{
	if (o->symbols) {
		struct report_symbols rs = { .f = stdout, .json = o->json };
		report_symbols_begin(&rs, proc);
		int ret = inspect_symbols(proc, o->prefix, report_symbol, &rs);
		report_symbols_end(&rs);
		return ret;
	}
	struct lp_changes c;
	int ret = inspect_changes(proc, &c, d);
	if (!ret && (!o->quiet || o->json))
		report_changes(stdout, proc, &c, o->json);
	inspect_free(&c);
	return ret;
}

static int build_plan(const struct lp_options *o, struct lp_proc *proc, const struct lp_pairs *ps,
		      struct lp_plan *plan, struct lp_diag *d)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < ps->n; i++)
		ret = o->callsites ?
		      plan_add_callsites(proc, &ps->f[i], ps->revert ? NULL : &ps->g[i], o->in, plan, d) :
		      plan_add(proc, &ps->f[i], ps->revert ? NULL : &ps->g[i], plan, d);
	return ret ? ret : plan_finish(plan, d);
}

/* The site of the first pair: --verify probes it (the traps are counted at every site). */
static const struct lp_site *first_site(const struct lp_plan *plan, const struct lp_pairs *ps)
{
	for (size_t i = 0; i < plan->nsites; i++)
		if (plan->sites[i].func_addr == ps->f[0].addr)
			return &plan->sites[i];
	return plan->nsites ? &plan->sites[0] : NULL;
}

int livepatch_run(const struct lp_options *o)
{
	struct lp_diag d = { 0 };
	struct lp_proc proc;
	struct lp_pairs ps = { 0 };
	struct lp_plan plan = { 0 };
	struct lp_verifier *verifier = NULL;
	int ret;

	ret = proc_open(&proc, o->pid, &d);
	if (!ret && (o->list || o->symbols)) {
		ret = run_inspect(o, &proc, &d);
		if (ret)
			ret = fail(o, &d, ret);
		goto out;
	}
	if (!ret)
		ret = pairs_collect(&proc, o, &ps, &d);
	if (!ret && !ps.n) {	/* --revert-all found nothing livepatch wrote */
		if (!o->quiet || o->json)
			report_nothing_patched(stdout, &proc, o->dry_run, o->json);
		goto out;
	}
	if (!ret)
		ret = build_plan(o, &proc, &ps, &plan, &d);
	if (ret) {
		ret = fail(o, &d, ret);
		goto out;
	}
	struct lp_report r = {
		.proc = &proc, .func = &ps.f[0], .target = ps.revert ? NULL : &ps.g[0], .plan = &plan,
		.dry_run = o->dry_run,
	};
	struct lp_tx_stats st = { 0 };
	struct lp_verify vr = { .window_s = o->verify_s, .min_calls = o->verify_min_calls };
	if (!o->dry_run && plan.state == LP_PLAN_WRITE) {
		struct lp_tx_opts txo = {
			.timeout_ms = o->timeout_ms, .log = o->verbose ? report_verbose : NULL,
		};
		const struct lp_site *vs = first_site(&plan, &ps);
		/* Probes first: a missing privilege fails before anything is written. */
		if (o->verify_s > 0) {
			ret = verify_prepare(&verifier, &proc, &plan, vs,
					     ps.revert ? NULL : &ps.g[0], &d);
			if (ret) {
				ret = fail(o, &d, ret);
				goto out;
			}
			txo.mid_lo = vs->addr;
			txo.mid_hi = verify_old_probe(verifier);
		}
		/* A progress line only for a person watching: a terminal, not --json, not -q. */
		bool progress = !o->json && !o->quiet && isatty(STDERR_FILENO);
		ret = run_tracer(proc.pid, &plan, &txo, progress, &st, &d);
		r.tx = &st;
		r.exit_code = lp_exit_code(ret);
		r.diag = &d;
		if (!ret && verifier) {
			vr.traps_handled = st.traps_emulated + st.traps_parked + st.traps_late;
			ret = verify_window(verifier, &vr, st.mid, st.nmid);
			r.verify = &vr;
			if (!ret && vr.verdict != LP_VERIFY_PASS)
				ret = lp_fail(&d, LP_EXIT_VERIFY, "verification %s: %s",
					      vr.verdict == LP_VERIFY_FAIL ? "failed" : "inconclusive",
					      vr.reason);
			r.exit_code = lp_exit_code(ret);
		}
		if (ret && !o->json)
			report_error(&d, r.exit_code, false);
	}
	if (!o->quiet || o->json)
		report_print(stdout, &r, o->json);
	ret = r.exit_code;
out:
	verify_close(verifier);
	pairs_free(&ps);
	plan_free(&plan);
	proc_close(&proc);
	return ret;
}
