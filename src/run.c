/*
 * The pipeline, in order: resolve -> plan -> (dry run: report) -> transact ->
 * report. Each stage gets what the previous one produced and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdbool.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include "livepatch.h"
#include "pairs.h"
#include "plan.h"
#include "proc.h"
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

/* The tracer thread's work and what it hands back before it exits. */
struct tracer {
	pid_t pid;
	const struct lp_plan *plan;
	const struct lp_tx_opts *o;
	int ret;
	struct lp_tx_stats st;
	struct lp_diag d;
};

/*
 * Ask for short scheduler slices (EEVDF's sched_runtime, Linux 6.12 and later; an
 * older kernel ignores it or refuses, and nothing else changes). The tracer sleeps
 * in waitpid() between stops while a stopped thread waits for it: with the default
 * slice, a CPU busy with the program's other threads kept it from running for up to
 * a slice after the stop woke it. A short slice lets it run soon after waking; it
 * gets no larger share of the CPU, the priority and nice value are unchanged.
 */
static void short_slices(void)
{
	struct {	/* struct sched_attr, version 0 (linux/sched/types.h clashes with sched.h) */
		uint32_t size, sched_policy;
		uint64_t sched_flags;
		int32_t sched_nice;
		uint32_t sched_priority;
		uint64_t sched_runtime, sched_deadline, sched_period;
	} a = { .size = sizeof(a), .sched_policy = SCHED_OTHER, .sched_runtime = 100 * 1000 };

	a.sched_nice = getpriority(PRIO_PROCESS, 0);
	(void)syscall(SYS_sched_setattr, 0, &a, 0);
}

static void *tracer_main(void *arg)
{
	struct tracer *t = arg;

	short_slices();
	t->ret = transact_run(t->pid, t->plan, t->o, &t->st, &t->d);
	return NULL;
}

/*
 * The transaction runs in a thread of its own, which exits when it is done: the
 * kernel then releases every thread it traced (ptrace attaches to a thread, not a
 * process) without waking a sleeping one, where PTRACE_DETACH would need each
 * thread stopped (and stopping some system calls makes them return EINTR). A
 * thread, not a child process: no address space to copy and tear down, which
 * cost 0.5 ms of every patch and kept stopped threads waiting for the release.
 * The signals that cancel a transaction (and the tracer's tick) are blocked here,
 * so they reach the tracer, which unblocks them once its handlers are in place.
 */
static int run_tracer(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		      bool progress, struct lp_tx_stats *st, struct lp_diag *d)
{
	struct tracer t = { .pid = pid, .plan = plan, .o = o };
	sigset_t set, old;
	pthread_t th;
	int ret;

	transact_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if ((ret = pthread_create(&th, NULL, tracer_main, &t))) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return lp_fail(d, LP_EXIT_INTERNAL, "cannot start the tracer thread: %s (out of "
			       "memory or threads?)", strerror(ret));
	}
	struct timespec t0, until;
	bool shown = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!progress)
		pthread_join(th, NULL);
	for (bool done = !progress; !done;) {
		until = lp_time_after(CLOCK_REALTIME, 250);	/* pthread_timedjoin_np's clock */
		done = !pthread_timedjoin_np(th, NULL, &until);
		if (!done)
			shown |= report_progress("transaction in progress", &t0, o->timeout_ms);
	}
	if (shown)
		report_progress_done();
	/* A cancel signal that came after the tracer stopped looking at them has done its part. */
	struct timespec none = { 0, 0 };
	while (sigtimedwait(&set, NULL, &none) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	*st = t.st;
	*d = t.d;
	return t.ret;
}

/*
 * Room in the descriptor table, before the tracer and its helper exist, for the
 * /proc file the seize keeps open per thread (seize.c: the syncs read it again).
 * The kernel grows a table that several threads share only after an RCU grace
 * period (expand_fdtable), a stall of 1-8 ms per doubling measured in the middle
 * of the seize: at 256 threads, 3 doublings made it 22 ms instead of 6. One
 * dup2() while this process has one thread grows it at no such cost. The soft
 * RLIMIT_NOFILE is raised towards the hard one when it would not hold them all;
 * below that, the seize would fail half way (it used to say the process exited).
 */
static int reserve_fds(const struct lp_proc *proc, struct lp_diag *d)
{
	rlim_t want = (rlim_t)proc->threads + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want + 1 : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= want)
		return lp_fail(d, LP_EXIT_PROCESS, "process %d has %d threads, and livepatch keeps a file "
			       "open for each: over the open-file limit %llu (raise it: ulimit -n %llu)",
			       proc->pid, proc->threads, (unsigned long long)rl.rlim_cur,
			       (unsigned long long)want + 1);
	int fd = dup2(proc->mem_fd, (int)want);
	if (fd >= 0)
		close(fd);
	return 0;
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
	if (!ret)
		ret = plan_finish(plan, d);
	return ret ? ret : plan_check_cycles(proc, plan, d);	/* before anything is written */
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
	if (!ret) {
		struct lp_pairs_want w = {
			.funcs = o->funcs, .targets = o->targets, .nfuncs = o->nfuncs,
			.reverts = o->reverts, .nreverts = o->nreverts,
			.plan_file = o->plan_file, .revert_all = o->revert_all,
		};
		ret = pairs_collect(&proc, &w, &ps, &d);
	}
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
			.timeout_ms = o->timeout_ms, .via = proc.via,
			.log = o->verbose ? report_verbose : NULL,
		};
		const struct lp_site *vs = first_site(&plan, &ps);
		if ((ret = reserve_fds(&proc, &d))) {
			ret = fail(o, &d, ret);
			goto out;
		}
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
	resolve_release(&proc);
	proc_close(&proc);
	return ret;
}
