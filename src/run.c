/*
 * The pipeline, in order: resolve -> plan -> (dry run: report) -> transact ->
 * report. Each stage gets what the previous one produced and nothing else.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include <stdlib.h>
#include <sys/time.h>
#include <string.h>
#include "bind.h"
#include "elfsym.h"
#include "livepatch.h"
#include "pairs.h"
#include "plan.h"
#include "proc.h"
#include "report.h"
#include "transact.h"
#include "verify.h"
#include "inspect.h"

/* -q keeps errors only; the list --symbols was asked for is printed all the same. */
static enum lp_report_format format_of(const struct lp_options *o)
{
	if (o->json)
		return LP_REPORT_JSON;
	return o->quiet && !o->symbols ? LP_REPORT_QUIET : LP_REPORT_PLAIN;
}

/* A failure before there is a report: the error alone. */
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

/*
 * The process's signals and timer are the command's (lp_tx_env): SIGINT, SIGTERM,
 * SIGHUP and SIGPIPE cancel a transaction, which rolls back; SIGALRM only makes the
 * tracer's waitpid return, every LP_TICK_US. All five go to the tracer thread alone.
 */
static volatile sig_atomic_t cancel_signal;
static const int tracer_signals[5] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGALRM };

struct saved_signals {
	struct sigaction act[5];
	struct itimerval timer;
};

static void on_cancel(int sig)
{
	cancel_signal = sig;
}

static void on_tick(int sig)
{
	(void)sig;	/* only there to make waitpid return EINTR */
}

/* The next tick in @us, then every LP_TICK_US again (lp_tx_env.tick_in). */
static void tick_in(long us)
{
	struct itimerval it = { { 0, LP_TICK_US }, { 0, us > 0 ? us : 1 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

static void tracer_sigset(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < LP_ARRAY_SIZE(tracer_signals); i++)
		sigaddset(set, tracer_signals[i]);
}

/* Handlers without SA_RESTART (waitpid must return), and the tick. */
static void install_signals(struct saved_signals *old)
{
	struct sigaction sa = { 0 };

	cancel_signal = 0;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < LP_ARRAY_SIZE(tracer_signals); i++) {
		sa.sa_handler = tracer_signals[i] == SIGALRM ? on_tick : on_cancel;
		sigaction(tracer_signals[i], &sa, &old->act[i]);
	}
	struct itimerval tick = { { 0, LP_TICK_US }, { 0, LP_TICK_US } };
	setitimer(ITIMER_REAL, &tick, &old->timer);
}

/* The tick stopped, the signals that came after the tracer stopped looking consumed. */
static void restore_signals(const struct saved_signals *old, const sigset_t *set)
{
	struct timespec none = { 0, 0 };

	setitimer(ITIMER_REAL, &old->timer, NULL);
	while (sigtimedwait(set, NULL, &none) > 0)
		;
	for (size_t i = 0; i < LP_ARRAY_SIZE(tracer_signals); i++)
		sigaction(tracer_signals[i], &old->act[i], NULL);
}

static void *tracer_main(void *arg)
{
	struct tracer *t = arg;
	sigset_t set;

	tracer_sigset(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);	/* blocked in every other thread */
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
 */
static int run_tracer(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		      bool progress, struct lp_tx_stats *st, struct lp_diag *d)
{
	struct lp_tx_opts to = *o;
	struct tracer t = { .pid = pid, .plan = plan, .o = &to };
	struct saved_signals saved;
	sigset_t set, old;
	pthread_t th;
	int ret;

	to.env = (struct lp_tx_env){ .cancel = &cancel_signal, .tick_in = tick_in };
	tracer_sigset(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	install_signals(&saved);
	if ((ret = pthread_create(&th, NULL, tracer_main, &t))) {
		restore_signals(&saved, &set);
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
	restore_signals(&saved, &set);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	*st = t.st;
	*d = t.d;
	return t.ret;
}

/* LP_FAULT=STEP and LP_FAULT_SLEEP_MS=N: the tests' fault injection (docs/design.md §7). */
static struct lp_tx_fault fault_from_env(void)
{
	const char *at = getenv("LP_FAULT"), *ms = getenv("LP_FAULT_SLEEP_MS");

	return (struct lp_tx_fault){ .at = at, .sleep_ms = ms ? atol(ms) : 0,
				     .stop_blocked = at && !strcmp(at, "stop-blocked") };
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
	struct lp_changes c = { 0 };
	struct lp_report r = { .kind = LP_REPORT_CHANGES, .proc = proc, .changes = &c };
	int ret;

	if (o->symbols) {
		r.kind = LP_REPORT_SYMBOLS;
		ret = inspect_symbols(proc, o->prefix, report_add_symbol, &r);
		if (!ret && r.symbols.nomem)
			ret = -ENOMEM;
	} else {
		ret = inspect_changes(proc, &c, d);
	}
	if (!ret)
		report_print(stdout, &r, format_of(o));
	report_free(&r);
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

/* Probes first (docs/design.md §6): a missing privilege fails before anything is written. */
static int prepare_verify(const struct lp_options *o, struct lp_proc *proc, const struct lp_pairs *ps,
			  const struct lp_plan *plan, struct lp_verifier **v, struct lp_tx_opts *txo,
			  struct lp_diag *d)
{
	const struct lp_site *vs = first_site(plan, ps);
	int ret;

	if (o->verify_s <= 0)
		return 0;
	libbpf_set_print(NULL);	/* its chatter would break the one-line error rule */
	if ((ret = verify_prepare(v, proc, plan, vs, ps->revert ? NULL : &ps->g[0], d)))
		return ret;
	txo->mid_lo = vs->addr;
	txo->mid_hi = verify_old_probe(*v);
	return 0;
}

/* After a transaction that wrote: the window of --verify; anything but a pass is a failure. */
static int check_verify(struct lp_verifier *v, const struct lp_tx_stats *st, struct lp_verify *vr,
			struct lp_diag *d)
{
	vr->traps_handled = st->traps_emulated + st->traps_parked + st->traps_late;
	int ret = verify_window(v, vr, st->mid, st->nmid);
	if (!ret && vr->verdict != LP_VERIFY_PASS)
		ret = lp_fail(d, LP_EXIT_VERIFY, "verification %s: %s",
			      vr->verdict == LP_VERIFY_FAIL ? "failed" : "inconclusive", vr->reason);
	return ret;
}

/* A patch or a revert's report, and the transaction's and verification's counts it shows. */
struct patch_report {
	struct lp_report r;
	struct lp_tx_stats st;
	struct lp_verify vr;
};

/* --load: the patches to map in the transaction, and what to do once they are. */
struct loading {
	const struct lp_options *o;
	struct lp_proc *proc;
	const struct lp_pairs *ps;
	const struct lp_plan *plan;
	struct lp_verifier **verifier;
	struct lp_loads *loads;
	struct lp_load_image im[LP_MAX_LOADS];
	size_t which[LP_MAX_LOADS];	/* im[k] is loads->v[which[k]] */
	size_t n;
};

static void loading_init(struct loading *g, struct lp_loads *l)
{
	for (size_t i = 0; l && i < l->n && g->n < LP_MAX_LOADS; i++) {
		const struct lp_load *x = &l->v[i];
		if (x->reused)
			continue;
		struct lp_load_image *im = &g->im[g->n];
		*im = (struct lp_load_image){ .memfd_name = x->memfd_name, .image = x->lk.image,
					      .image_len = x->lk.image_len, .base = x->base,
					      .size = x->size };
		memcpy(im->seg, x->lk.seg, sizeof(im->seg));
		g->which[g->n++] = i;
	}
}

/*
 * In the transaction, once the patches are mapped (lp_tx_opts.loaded): their objects
 * are the process's files from now on, and --verify probes them there.
 */
static int loaded(void *arg, uint64_t *mid_lo, uint64_t *mid_hi, struct lp_diag *d)
{
	struct loading *g = arg;
	struct lp_tx_opts t = { 0 };

	for (size_t k = 0; k < g->n; k++) {
		struct lp_object *obj = &g->proc->objs[g->loads->v[g->which[k]].obj];
		snprintf(obj->open_path, sizeof(obj->open_path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 g->proc->via, g->im[k].base, g->im[k].base + g->im[k].seg[0].size);
		obj->dev = g->im[k].dev;
		obj->inode = g->im[k].inode;
	}
	int ret = prepare_verify(g->o, g->proc, g->ps, g->plan, g->verifier, &t, d);
	if (!ret && g->o->verify_s > 0) {
		*mid_lo = t.mid_lo;
		*mid_hi = t.mid_hi;
	}
	return ret;
}

/*
 * Write the plan: the transaction, then --verify. A failure before the transaction
 * is returned (nothing was written: the error is shown alone); one of the
 * transaction or of the verification goes in the report, with its exit code.
 */
static int run_write(const struct lp_options *o, struct lp_proc *proc, const struct lp_pairs *ps,
		     struct lp_loads *loads, struct patch_report *pr, struct lp_diag *d)
{
	struct lp_tx_opts txo = {
		.timeout_ms = o->timeout_ms, .via = proc->via,
		.log = o->verbose ? report_verbose : NULL, .fault = fault_from_env(),
	};
	struct lp_verifier *verifier = NULL;
	struct loading g = { .o = o, .proc = proc, .ps = ps, .plan = pr->r.plan,
			     .verifier = &verifier, .loads = loads };
	/* A progress line only for a person watching: a terminal, not --json, not -q. */
	bool progress = !o->json && !o->quiet && isatty(STDERR_FILENO);
	int ret = reserve_fds(proc, d);

	loading_init(&g, loads);
	if (g.n) {	/* --verify's probes once the patches are there */
		txo.loads = g.im;
		txo.nloads = g.n;
		txo.loaded = loaded;
		txo.loaded_arg = &g;
	} else if (!ret) {
		ret = prepare_verify(o, proc, ps, pr->r.plan, &verifier, &txo, d);
	}
	if (ret) {
		verify_close(verifier);
		return ret;
	}
	ret = run_tracer(proc->pid, pr->r.plan, &txo, progress, &pr->st, d);
	pr->r.tx = &pr->st;
	if (!ret && verifier) {
		ret = check_verify(verifier, &pr->st, &pr->vr, d);
		pr->r.verify = &pr->vr;
	}
	pr->r.exit_code = lp_exit_code(ret);
	verify_close(verifier);
	return 0;
}

/*
 * The report of a patch or a revert: its plan (NULL when --revert-all found nothing
 * livepatch wrote), written unless a dry run or nothing to do.
 */
static int run_plan(const struct lp_options *o, struct lp_proc *proc, const struct lp_pairs *ps,
		    const struct lp_plan *plan, struct lp_loads *loads, struct patch_report *pr,
		    struct lp_diag *d)
{
	int ret = 0;

	pr->r = (struct lp_report){
		.kind = LP_REPORT_PATCH, .proc = proc, .plan = plan, .dry_run = o->dry_run, .diag = d,
		.loads = o->nloads ? loads : NULL,
	};
	if (plan) {
		pr->r.func = &ps->f[0];
		pr->r.target = ps->revert ? NULL : &ps->g[0];
		if (!o->dry_run && plan->state == LP_PLAN_WRITE)
			ret = run_write(o, proc, ps, loads, pr, d);
	}
	if (!ret)
		report_print(stdout, &pr->r, format_of(o));
	return ret;
}

/* Who may own a patch file besides root: the caller; under sudo, the user who ran sudo. */
static uid_t patch_owner(void)
{
	const char *sudo = getenv("SUDO_UID");

	if (!getuid() && sudo && *sudo)
		return (uid_t)strtoul(sudo, NULL, 10);
	return getuid();
}

/* --load: the patches read, bound, placed and linked; then the targets they define resolve. */
static int prepare_loads(const struct lp_options *o, struct lp_proc *proc, struct lp_pairs *ps,
			 struct lp_loads *loads, struct lp_diag *d)
{
	int ret = 0;

	if (o->nloads)
		ret = loads_prepare(proc, o->loads, o->nloads, ps, patch_owner(), loads, d);
	if (!ret && o->nloads)
		ret = loads_qualify(proc, loads, ps);
	return ret ? ret : pairs_resolve_targets(proc, ps, d);
}

int livepatch_run(const struct lp_options *o)
{
	struct lp_diag d = { 0 };
	struct lp_proc proc;
	struct lp_pairs ps = { 0 };
	struct lp_plan plan = { 0 };
	struct lp_loads loads = { 0 };
	struct patch_report pr = { .vr = { .window_s = o->verify_s, .min_calls = o->verify_min_calls } };
	int ret;

	ret = proc_open(&proc, o->pid, &d);
	if (!ret && (o->list || o->symbols)) {
		ret = run_inspect(o, &proc, &d);
		goto out;
	}
	if (!ret) {
		struct lp_pairs_want w = {
			.funcs = o->funcs, .targets = o->targets, .nfuncs = o->nfuncs,
			.reverts = o->reverts, .nreverts = o->nreverts,
			.plan_file = o->plan_file, .revert_all = o->revert_all,
			.targets_later = o->nloads > 0,
		};
		ret = pairs_collect(&proc, &w, &ps, &d);
	}
	if (!ret)
		ret = prepare_loads(o, &proc, &ps, &loads, &d);
	if (!ret && ps.n)	/* none: --revert-all found nothing livepatch wrote */
		ret = build_plan(o, &proc, &ps, &plan, &d);
	if (!ret)
		ret = run_plan(o, &proc, &ps, ps.n ? &plan : NULL, &loads, &pr, &d);
out:
	ret = ret ? fail(o, &d, ret) : pr.r.exit_code;
	pairs_free(&ps);
	loads_free(&loads);
	plan_free(&plan);
	elfsym_release(&proc);
	proc_close(&proc);
	return ret;
}
