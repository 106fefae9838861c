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
#include "guard.h"
#include "proc.h"
#include "shield.h"
#include "report.h"
#include "transact.h"
#include "verify.h"
#include "inspect.h"
#include "resolve.h"
#include "where.h"
#include "x86.h"

/* -q keeps errors only; the list --symbols was asked for is printed all the same. */
static enum lp_report_format format_of(const struct lp_options *o)
{
	if (o->json)
		return LP_REPORT_JSON;
	return o->quiet && !o->symbols ? LP_REPORT_QUIET : LP_REPORT_PLAIN;
}

static FILE *out_of(const struct lp_options *o)
{
	return o->out ? o->out : stdout;
}

/* A failure before there is a report: the error alone. */
static int fail(const struct lp_options *o, struct lp_diag *d, int ret)
{
	int code = lp_exit_code(ret);

	if (!d->code)
		snprintf(d->msg, sizeof(d->msg), "internal error: %s (please report it)",
			 strerror(ret < 0 && ret > -LP_ERR_BASE ? -ret : EINVAL));
	report_error(out_of(o), d, code, o->json);
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

/*
 * LP_FAULT=STEP and LP_FAULT_SLEEP_MS=N: the tests' fault injection (docs/design.md §7);
 * with LP_FAULT_PID=PID, LP_FAULT fails the transaction of process PID only (§12).
 */
static struct lp_tx_fault fault_from_env(pid_t pid)
{
	const char *at = getenv("LP_FAULT"), *ms = getenv("LP_FAULT_SLEEP_MS"),
		   *only = getenv("LP_FAULT_PID");

	if (only && atol(only) != pid)
		at = NULL;

	return (struct lp_tx_fault){ .at = at, .sleep_ms = ms ? atol(ms) : 0,
				     .kill_at = getenv("LP_KILL_AT"),
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
	/* Taken already (a caller's descriptor, a worker's pipe, §12): then it is there. */
	if (fcntl((int)want, F_GETFD) >= 0)
		return 0;
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
		report_print(out_of(o), &r, format_of(o));
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

/*
 * --verify's refusal of a process with an `int $3` (docs/design.md §6), timed for -v. The
 * line must not start with "verify": test/daemons/killer.c names the verify window so.
 */
static int scan_int3(struct lp_proc *proc, bool verbose, struct lp_diag *d)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = verify_scan_int3(proc, d);
	if (!ret && verbose)
		report_verbose("scanned the code of %zu object(s) for `int $3` before --verify: "
			       "none (%.2f ms)", proc->nobjs, lp_ms_since(&t0));
	return ret;
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

/*
 * Who is inside (docs/design.md §9): the ranges a check looks at, with their names, the
 * objects an unwind reads, what the check found, and the patches --unload takes out.
 */
struct inside_ctx {
	struct lp_code_range *ranges;
	uint64_t *entries;
	char **names;
	size_t n, cap;
	struct lp_unwind_module *mods;
	size_t nmods;
	struct lp_inside found;
	struct lp_unloaded *unloaded;
	size_t nunloaded;
	struct lp_code_range *unmaps;
	struct lp_where w;
};

static int ictx_add(struct inside_ctx *c, uint64_t lo, uint64_t hi, uint64_t entry, const char *name)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct lp_code_range *r = realloc(c->ranges, cap * sizeof(*r));
		if (r)
			c->ranges = r;
		uint64_t *e = r ? realloc(c->entries, cap * sizeof(*e)) : NULL;
		if (e)
			c->entries = e;
		char **nm = e ? realloc(c->names, cap * sizeof(*nm)) : NULL;
		if (!nm)
			return -ENOMEM;
		c->names = nm;
		c->cap = cap;
	}
	if (!(c->names[c->n] = strdup(name)))
		return -ENOMEM;
	c->ranges[c->n] = (struct lp_code_range){ lo, hi };
	c->entries[c->n++] = entry;
	return 0;
}

/* proc_maps_walk() callback: the vDSO, which the unwinder reads from memory (path NULL). */
static int add_vdso(const struct lp_maps_line *m, void *arg)
{
	struct inside_ctx *c = arg;

	if (strcmp(m->path, "[vdso]"))
		return 0;
	c->mods[c->nmods++] = (struct lp_unwind_module){ .name = "[vdso]", .lo = m->start,
							 .hi = m->end };
	return 1;
}

/*
 * Every mapped object, for the unwinder: its file through map_files, its bias, its
 * extent; and the vDSO, where a thread calling time() or clock_gettime() is often
 * stopped: without its CFI the unwind would go on by frame pointers.
 */
static int ictx_modules(struct inside_ctx *c, const struct lp_proc *proc)
{
	c->mods = calloc(proc->nobjs + 2, sizeof(*c->mods));
	if (!c->mods)
		return -ENOMEM;
	for (size_t i = 0; i < proc->nobjs; i++) {
		const struct lp_object *o = &proc->objs[i];
		uint64_t lo, hi;
		proc_object_extent(o, &lo, &hi);
		if (hi <= lo || !o->open_path[0])
			continue;
		c->mods[c->nmods++] = (struct lp_unwind_module){ .name = o->name, .path = o->open_path,
								 .bias = o->bias, .lo = lo, .hi = hi };
	}
	(void)proc_maps_walk(proc->via, add_vdso, c);
	return 0;
}

static void ictx_free(struct inside_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c->ranges);
	free(c->entries);
	free(c->mods);
	free(c->unloaded);
	free(c->unmaps);
	inside_free(&c->found);
}

/* The transaction's side of @c, and the report's. */
static void ictx_apply(struct inside_ctx *c, struct lp_proc *proc, struct lp_tx_opts *txo)
{
	txo->ranges = c->ranges;
	txo->entries = c->entries;
	txo->names = (const char *const *)c->names;
	txo->nranges = c->n;
	txo->modules = c->mods;
	txo->nmodules = c->nmods;
	txo->inside = &c->found;
	txo->unmaps = c->unmaps;
	txo->nunmaps = c->nunloaded;
	c->w = (struct lp_where){ .proc = proc, .in = &c->found, .ranges = c->ranges,
				  .names = (const char *const *)c->names, .nranges = c->n,
				  .unloaded = c->unloaded, .nunloaded = c->nunloaded };
}

/*
 * "OBJECT:SYMBOL" of a function, and its whole body. A symbol without a size (hand-written
 * assembly without .size) has no known end: refused, as --func refuses it (exit 5).
 */
static int ictx_add_function(struct inside_ctx *c, const struct lp_symbol *s, uint64_t entry,
			     struct lp_diag *d)
{
	char name[300];

	snprintf(name, sizeof(name), "%s:%s", s->obj ? s->obj->name : "?", s->name);
	if (!s->size)
		return lp_fail(d, LP_EXIT_SITE, "%s has no size in the symbol table: where it ends, "
			       "and so who is inside it, cannot be told (give it a .size, or name the "
			       "function it calls)", name);
	uint64_t lo = s->addr - s->offset;
	return ictx_add(c, lo, lo + s->size, entry, name);
}

/*
 * --safe: the old bodies a walk replaces. A patch replaces F (a PC up to its site has
 * not begun it); a revert, the code F jumps to now.
 */
static int ictx_for_plan(struct inside_ctx *c, struct lp_proc *proc, const struct lp_pairs *ps,
			 const struct lp_plan *plan, struct lp_diag *d)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < plan->nsites; i++) {
		const struct lp_site *s = &plan->sites[i];
		struct lp_symbol sym;
		uint64_t target;
		if (!plan->revert) {
			for (size_t k = 0; k < ps->n; k++)
				if (ps->f[k].addr == s->func_addr) {
					ret = ictx_add_function(c, &ps->f[k], s->addr, d);
					break;
				}
		} else if (x86_decode_jmp(s->old_bytes, s->len, s->addr, &target) &&
			   !resolve_symbolize(proc, target, &sym)) {
			ret = ictx_add_function(c, &sym, 0, d);
		}
	}
	return ret;
}

/* A patch or a revert's report, and the transaction's and verification's counts it shows. */
struct patch_report {
	struct lp_report r;
	struct lp_tx_stats st;
	struct lp_verify vr;
	struct inside_ctx ic;
};

/* --load: the patches to map in the transaction, and what to do once they are. */
struct loading {
	const struct lp_options *o;
	struct lp_proc *proc;
	const struct lp_pairs *ps;
	const struct lp_plan *plan;
	struct lp_verifier **verifier;
	struct lp_guard *guard;	/* holds the probes (keep_probes) */
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
/*
 * --verify's uprobes, held by the guard as well: if we are killed, the last reference
 * goes in a process with no SIGKILL pending, and the kernel takes the breakpoints out
 * of the target (docs/design.md §11).
 */
static void keep_probes(struct lp_guard *guard, const struct lp_verifier *v, bool verbose)
{
	int fds[2];
	int ret = guard_keep(guard, fds, verify_fds(v, fds));

	if (ret && verbose)
		report_verbose("the guard does not hold --verify's probes: %s", strerror(-ret));
}

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
	if (!ret)
		keep_probes(g->guard, *g->verifier, g->o->verbose);
	if (!ret && g->o->verify_s > 0) {
		*mid_lo = t.mid_lo;
		*mid_hi = t.mid_hi;
	}
	return ret;
}

/* What the guard (guard.h) needs to finish a transaction whose livepatch died. */
struct recovery {
	pid_t pid, via;
	const struct lp_plan *plan;
	unsigned int timeout_ms;
};

/*
 * In the guard, after livepatch died: once the kernel has released the process, a
 * transaction that rolls back what is half-written, keeps what is complete, and
 * takes the shield down (docs/design.md §11); logged like any other.
 */
static int recover(void *arg)
{
	const struct recovery *rc = arg;
	struct lp_tx_stats st = { 0 };
	struct lp_diag d = { 0 };
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long tracer = -1; tracer != 0 && lp_ms_since(&t0) < 10000;) {
		if ((tracer = proc_status_field(rc->via, "TracerPid")) < 0)
			return 0;	/* the process is gone too */
		if (tracer)
			usleep(1000);
	}
	if (!shield_needed(rc->via, rc->plan))
		return 0;
	struct lp_tx_opts txo = { .timeout_ms = rc->timeout_ms, .via = rc->via, .recover = true,
				  .fault = fault_from_env(rc->via) };
	/* LP_GUARD_LOG=FILE: the guard's protocol steps there, as -v prints them (the tests). */
	const char *log = getenv("LP_GUARD_LOG");
	int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	if (fd >= 0 && dup2(fd, STDERR_FILENO) == STDERR_FILENO)
		txo.log = report_verbose;
	txo.fault.kill_at = NULL;
	int ret = run_tracer(rc->pid, rc->plan, &txo, false, &st, &d);
	struct lp_proc proc = { .pid = rc->pid, .via = rc->via };
	struct lp_report r = { .kind = LP_REPORT_PATCH, .proc = &proc, .plan = rc->plan,
			       .tx = &st, .exit_code = lp_exit_code(ret), .diag = &d,
			       .recovered = true };
	report_audit(&r, txo.log != NULL);
	if (txo.log)
		report_verbose("guard: recovery of process %d ended: %s", rc->pid,
			       ret ? d.msg : st.rolled_back ? "rolled back" : "complete, kept");
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
		.log = o->verbose ? report_verbose : NULL, .fault = fault_from_env(proc->pid),
		.unshielded = getenv("LP_NO_SHIELD") != NULL,
	};
	struct lp_verifier *verifier = NULL;
	struct lp_guard guard = { 0, -1, 0 };
	struct loading g = { .o = o, .proc = proc, .ps = ps, .plan = pr->r.plan,
			     .verifier = &verifier, .guard = &guard, .loads = loads };
	/* A progress line only for a person watching: a terminal, not --json, not -q. */
	bool progress = !o->json && !o->quiet && isatty(STDERR_FILENO);
	int ret = reserve_fds(proc, d);

	if (!ret && o->verify_s > 0)	/* before a patch is mapped or a probe attached */
		ret = scan_int3(proc, o->verbose, d);
	if (!ret && (o->safe || pr->ic.nunloaded)) {
		if (!(ret = ictx_for_plan(&pr->ic, proc, ps, pr->r.plan, d)) &&
		    !(ret = ictx_modules(&pr->ic, proc)))
			ictx_apply(&pr->ic, proc, &txo);
		txo.safe = true;
		txo.wait_ms = o->timeout_given ? o->timeout_ms : LP_WAIT_DEFAULT_MS;
		pr->r.where = &pr->ic.w;
	}
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
	struct recovery rc = { .pid = proc->pid, .via = proc->via, .plan = pr->r.plan,
			       .timeout_ms = o->timeout_ms };
	if (!getenv("LP_NO_SHIELD") && (ret = guard_start(&guard, recover, &rc)) && o->verbose)
		report_verbose("no guard process: %s; livepatch's death mid-way would leave its "
			       "bytes to the next run", strerror(-ret));
	keep_probes(&guard, verifier, o->verbose);
	txo.guard_pid = guard.pid;
	ret = run_tracer(proc->pid, pr->r.plan, &txo, progress, &pr->st, d);
	pr->r.tx = &pr->st;
	if (!ret && verifier) {
		ret = check_verify(verifier, &pr->st, &pr->vr, d);
		pr->r.verify = &pr->vr;
	}
	verify_close(verifier);	/* the guard's references are the last: */
	guard_done(&guard);	/* the probes are out once it has gone */
	pr->r.exit_code = lp_exit_code(ret);
	report_audit(&pr->r, o->verbose);	/* bytes were written, or could have been */
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
	if (pr->ic.nunloaded) {	/* shown by a dry run too */
		pr->ic.w = (struct lp_where){ .proc = proc, .unloaded = pr->ic.unloaded,
					      .nunloaded = pr->ic.nunloaded };
		pr->r.where = &pr->ic.w;
	}
	if (plan) {
		pr->r.func = ps->n ? &ps->f[0] : NULL;
		pr->r.target = ps->revert || !ps->n ? NULL : &ps->g[0];
		if (!o->dry_run && (plan->state == LP_PLAN_WRITE || pr->ic.nunloaded))
			ret = run_write(o, proc, ps, loads, pr, d);
	}
	if (!ret)
		report_print(out_of(o), &pr->r, format_of(o));
	return ret;
}

/*
 * --where: the check of who is inside, alone (docs/design.md §9): attached for a
 * moment, every running thread stopped once, blocked ones read from /proc, nothing
 * written.
 */
static int run_where(const struct lp_options *o, struct lp_proc *proc, struct lp_diag *d)
{
	struct patch_report *pr = calloc(1, sizeof(*pr));
	struct lp_plan none = { 0 };
	int ret = pr ? 0 : -ENOMEM;

	for (size_t i = 0; !ret && i < o->nwheres; i++) {
		struct lp_symbol f;
		if (!(ret = resolve_function(proc, o->wheres[i], "function", &f, d)))
			ret = ictx_add_function(&pr->ic, &f, 0, d);
	}
	if (!ret)
		ret = ictx_modules(&pr->ic, proc);
	if (!ret)
		ret = reserve_fds(proc, d);
	if (!ret) {
		struct lp_tx_opts txo = {
			.timeout_ms = o->timeout_ms, .via = proc->via,
			.log = o->verbose ? report_verbose : NULL, .fault = fault_from_env(proc->pid),
			.where_only = true,
		};
		ictx_apply(&pr->ic, proc, &txo);
		bool progress = !o->json && !o->quiet && isatty(STDERR_FILENO);
		ret = run_tracer(proc->pid, &none, &txo, progress, &pr->st, d);
	}
	if (!ret) {
		pr->r = (struct lp_report){ .kind = LP_REPORT_WHERE, .proc = proc, .where = &pr->ic.w };
		report_print(out_of(o), &pr->r, format_of(o));
	}
	if (pr)
		ictx_free(&pr->ic);
	free(pr);
	return ret;
}

/* A loaded patch named as --list shows it, or by its base address; -1 when none is. */
static ssize_t find_patch(const struct lp_changes *c, const char *want)
{
	char *end;
	errno = 0;
	unsigned long long base = strtoull(want, &end, 0);
	bool by_base = !strncmp(want, "0x", 2) && !*end && !errno;
	const char *slash = strrchr(want, '/');

	for (size_t i = 0; i < c->npatches; i++)
		if (by_base ? c->patches[i].base == base :
		    !strcmp(c->patches[i].name, want) || (slash && !strcmp(c->patches[i].name, slash + 1)))
			return (ssize_t)i;
	return -1;
}

/*
 * Another loaded patch that stays may call into one that goes (patches of one command bind
 * to the ones before them, docs/design.md §8): its text's direct calls and jumps, and any
 * aligned word of it (its GOT, a pointer in its data), are looked for in the regions going.
 * Conservative: a stray word counts too. 0, or the refusal (exit 5).
 */
static int unload_users(struct lp_proc *proc, const struct lp_changes *c, const struct inside_ctx *ic,
			struct lp_diag *d)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < c->npatches; i++) {
		const struct lp_patch_info *p = &c->patches[i];
		bool going = false;
		for (size_t k = 0; k < ic->nunloaded; k++)
			going |= ic->unloaded[k].base == p->base;
		if (going || !p->size || p->size > (256u << 20))
			continue;
		uint8_t *img = malloc(p->size);
		if (!img)
			return -ENOMEM;
		if (proc_read(proc, p->base, img, p->size)) {	/* a page not readable: each apart */
			free(img);
			continue;
		}
		for (size_t off = 0; !ret && off + 8 <= p->size; off++) {
			uint64_t word, to = 0;
			int32_t rel;
			memcpy(&word, img + off, 8);
			if (!(off & 7))
				to = word;
			for (size_t k = 0; !ret && k < ic->nunloaded; k++) {
				const struct lp_unloaded *u = &ic->unloaded[k];
				memcpy(&rel, img + off + 1, 4);
				uint64_t call = (img[off] == 0xe8 || img[off] == 0xe9) ?
						p->base + off + 5 + (uint64_t)(int64_t)rel : 0;
				if ((to >= u->base && to < u->base + u->size) ||
				    (call >= u->base && call < u->base + u->size))
					ret = lp_fail(d, LP_EXIT_SITE, "loaded patch %s refers to %s (%s at "
						      "0x%" PRIx64 "): it would call into unmapped memory (unload "
						      "both: --unload %s --unload %s)", p->name, u->name,
						      call ? "a call or jump" : "an address", p->base + off,
						      u->name, p->name);
			}
		}
		free(img);
	}
	return ret;
}

/*
 * --unload PATCH and --revert-all --unload: which patches go, and the functions whose
 * jumps into them are reverted first (as --revert names them).
 */
static int plan_unloads(const struct lp_options *o, struct lp_proc *proc, struct inside_ctx *ic,
			const char ***reverts, size_t *nreverts, struct lp_diag *d)
{
	struct lp_changes c = { 0 };
	int ret = inspect_changes(proc, &c, d);
	size_t want = o->unload_all ? c.npatches : o->nunloads;

	*reverts = NULL;
	*nreverts = 0;
	ic->unloaded = calloc(want + 1, sizeof(*ic->unloaded));
	ic->unmaps = calloc(want + 1, sizeof(*ic->unmaps));
	char **names = calloc(c.n + 1, sizeof(*names));
	if (!ret && (!ic->unloaded || !ic->unmaps || !names))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < want; i++) {
		ssize_t k = o->unload_all ? (ssize_t)i : find_patch(&c, o->unloads[i]);
		if (k < 0) {
			ret = lp_fail(d, LP_EXIT_SYMBOL, "process %d has no loaded patch named %s (see "
				      "--list)", proc->pid, o->unloads[i]);
			break;
		}
		const struct lp_patch_info *p = &c.patches[k];
		bool dup = false;
		for (size_t m = 0; m < ic->nunloaded; m++)
			dup |= ic->unloaded[m].base == p->base;
		if (dup)
			continue;
		struct lp_unloaded *u = &ic->unloaded[ic->nunloaded];
		snprintf(u->name, sizeof(u->name), "%s", p->name);
		memcpy(u->sha256, p->sha256, sizeof(u->sha256));
		u->base = p->base;
		u->size = p->size;
		ic->unmaps[ic->nunloaded++] = (struct lp_code_range){ p->base, p->base + p->size };
		char label[300];
		snprintf(label, sizeof(label), "patch %s", p->name);
		ret = ictx_add(ic, p->base, p->base + p->size, 0, label);
		for (size_t m = 0; !ret && m < c.n; m++) {
			const struct lp_change *x = &c.v[m];
			if (x->call && x->in_patch && x->patch_base == p->base) {
				ret = lp_fail(d, LP_EXIT_SITE, "a call in %s:%s goes into %s (--callsites): "
					      "it would call unmapped memory (revert the calls first: "
					      "--revert %s --callsites)", x->func.obj ? x->func.obj->name :
					      "?", x->func.name, p->name, x->was_name[0] ? x->was_name : "F");
				break;
			}
			if (!x->ours || !x->in_patch || x->patch_base != p->base || names[m])
				continue;
			if (asprintf(&names[m], "%s:%s", x->func.obj ? x->func.obj->name : "?",
				     x->func.name) < 0) {
				names[m] = NULL;
				ret = -ENOMEM;
				break;
			}
			if (u->nreverted < LP_ARRAY_SIZE(u->reverted))
				u->reverted[u->nreverted++] = names[m];
		}
	}
	if (!ret)
		ret = unload_users(proc, &c, ic, d);
	size_t n = 0;
	for (size_t m = 0; names && m < c.n; m++)	/* packed: the reverts of every patch */
		if (names[m])
			names[n++] = names[m];
	*reverts = (const char **)names;
	*nreverts = n;
	inspect_free(&c);
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

	const char **unload_reverts = NULL;
	size_t nunload_reverts = 0;
	bool unload = o->nunloads || o->unload_all;

	ret = proc_open(&proc, o->pid, &d);
	if (!ret && (o->list || o->symbols)) {
		ret = run_inspect(o, &proc, &d);
		goto out;
	}
	if (!ret && o->nwheres) {
		ret = run_where(o, &proc, &d);
		goto out;
	}
	if (!ret && unload)
		ret = plan_unloads(o, &proc, &pr.ic, &unload_reverts, &nunload_reverts, &d);
	if (!ret) {
		struct lp_pairs_want w = {
			.funcs = o->funcs, .targets = o->targets, .nfuncs = o->nfuncs,
			.reverts = unload && !o->revert_all ? unload_reverts : o->reverts,
			.nreverts = unload && !o->revert_all ? nunload_reverts : o->nreverts,
			.plan_file = o->plan_file, .revert_all = o->revert_all,
			.targets_later = o->nloads > 0,
		};
		ret = pairs_collect(&proc, &w, &ps, &d);
	}
	if (!ret)
		ret = prepare_loads(o, &proc, &ps, &loads, &d);
	if (!ret && ps.n)	/* none: --revert-all found nothing livepatch wrote */
		ret = build_plan(o, &proc, &ps, &plan, &d);
	if (!ret && !ps.n && pr.ic.nunloaded)
		plan.revert = true;	/* unused patches: nothing to revert, only to unmap */
	if (!ret)
		ret = run_plan(o, &proc, &ps, ps.n || pr.ic.nunloaded ? &plan : NULL, &loads, &pr, &d);
out:
	ictx_free(&pr.ic);
	if (unload_reverts)
		for (size_t i = 0; i < nunload_reverts; i++)
			free((char *)unload_reverts[i]);
	free(unload_reverts);
	int code = ret ? fail(o, &d, ret) : pr.r.exit_code;
	if (o->outcome) {
		struct lp_outcome *oc = o->outcome;
		*oc = (struct lp_outcome){ .exit_code = code };
		if (!ret)
			snprintf(oc->status, sizeof(oc->status), "%s",
				 o->list ? "listed" : report_status(&pr.r));
		oc->rolled_back = !ret && pr.r.tx && pr.r.tx->rolled_back;
		if (code)
			snprintf(oc->message, sizeof(oc->message), "%s", d.msg);
		size_t len = 0;
		for (size_t i = 0; i < ps.n && len < sizeof(oc->funcs); i++) {
			const struct lp_symbol *f = &ps.f[i];
			int n = f->offset || !f->obj ?
				snprintf(oc->funcs + len, sizeof(oc->funcs) - len, "0x%" PRIx64 "\n", f->addr) :
				snprintf(oc->funcs + len, sizeof(oc->funcs) - len, "%s:%s\n", f->obj->name,
					 f->name);
			len += n > 0 ? (size_t)n : 0;
		}
	}
	ret = code;
	pairs_free(&ps);
	loads_free(&loads);
	plan_free(&plan);
	elfsym_release(&proc);
	proc_close(&proc);
	return ret;
}
