/*
 * Transact: move every site from its current bytes to the wanted bytes with the
 * kernel's text_poke_bp protocol (docs/design.md §4: int3, sync, tail, sync, head, sync),
 * over threads that keep running. Roll-back is the same walk towards the old bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>	/* event numbers only: the calls live in ptrace.c */
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "frames.h"
#include "inject.h"
#include "ptrace_ops.h"
#include "proc.h"
#include "seize.h"
#include "sigstate.h"
#include "transact.h"
#include "xol.h"

#define INT3 0xcc
#define ERESTARTSYS 512		/* the kernel's restart codes, seen in rax at a stop */
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514	/* restart the call unless a handler runs */
#define ERESTART_RESTARTBLOCK 516
#define FRAMES_MAX 16		/* signal frames moved per thread and sync */
#define STEP_LIMIT 64		/* single steps to leave a displaced range */
#define TICK_US 5000		/* waitpid wakes this often to check deadline and signals */
#define DEFER_US 50		/* hold of a thread that traps again in its sync, if alone */
#define DEFER_EACH_US 30	/* and this much longer for every other thread held */

/* The one global the SIGINT/SIGTERM/SIGHUP/SIGPIPE handler must reach. */
static volatile sig_atomic_t stop_requested;

struct tx {
	pid_t pid;
	pid_t via;				/* lp_tx_opts.via, never 0 */
	struct lp_threads ts;
	const struct lp_plan *plan;
	const uint8_t (*to)[LP_SITE_MAX];	/* the bytes this walk moves each site to */
	struct lp_run *runs;			/* the sites grouped for writing (plan_runs) */
	size_t nruns;
	uint8_t *img;				/* what memory holds over every run, in order */
	pid_t held;	/* a stopped thread to write through, by tid: the array moves on realloc */
	int mem_fd;
	bool stepout;				/* this sync steps threads out of displaced ranges */
	bool forward;				/* not a roll-back: fault injection applies */
	bool exec_seen, all_exited;
	bool in_sync;
	size_t ndeferred;			/* threads with ->deferred set */
	bool sync0;				/* only threads that may be in a fork need it */
	bool written;				/* a site's bytes were changed: roll-back has work */
	const char *fault;
	bool stop_blocked;			/* LP_FAULT=stop-blocked: interrupt sleepers too */
	long fault_sleep_ms;
	void (*log)(const char *fmt, ...) LP_PRINTF(1, 2);
	unsigned int timeout_ms;
	uint64_t mid_lo, mid_hi;		/* see lp_tx_opts */
	struct timespec deadline;
	double *pauses;
	size_t npauses, cap_pauses;
	struct lp_tx_stats *st;
	struct lp_diag *d;
	struct lp_xol xol;			/* regions for out-of-line copies (xol.h) */
	uint64_t *xol_to;			/* per site: where its copy runs; 0: not placed */
	struct lp_xol_copy *xol_copy;
	char xol_why[256];			/* why no copy could be placed */
	uint64_t syscall_insn;			/* for injections, found by the first */
	bool in_event;				/* the stop looked at is a fork/clone/exec event */
	bool handlers;				/* the process catches a signal: frames may exist */
	bool own_handlers;			/* besides glibc's own two (read_signal_state) */
	struct lp_stacks stacks;
	struct lp_sigstate sigs;		/* SIGTRAP's disposition, kept (sigstate.h) */
	bool trap_sensitive;			/* SIGTRAP ignored or caught: a trap can change it */
	unsigned int awaiting;			/* threads holding a SIGTRAP until it is repaired */
};

#define LOG(tx, ...) do { if ((tx)->log) (tx)->log(__VA_ARGS__); } while (0)

static double ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1e3 + (now.tv_nsec - t0->tv_nsec) / 1e6;
}

static void on_stop_signal(int sig)
{
	stop_requested = sig;
}

static void on_tick(int sig)
{
	(void)sig;	/* only there to make waitpid return EINTR */
}

static const struct lp_site *site_at(const struct tx *tx, uint64_t addr, size_t *idx)
{
	const struct lp_site *s = plan_find_site(tx->plan, addr);

	if (s && idx)
		*idx = (size_t)(s - tx->plan->sites);
	return s;
}

/*
 * A fault injection point, as CRIU does: LP_FAULT=NAME fails the walk at step
 * NAME (sync0, int3, sync1, tail, sync2, head, sync3); LP_FAULT_SLEEP_MS=N pauses N ms
 * at every step so a test can signal livepatch mid-transaction. Read only here.
 */
static int fault_point(struct tx *tx, const char *name)
{
	if (tx->forward && tx->fault_sleep_ms && !stop_requested) {
		struct timespec ts = { tx->fault_sleep_ms / 1000, (tx->fault_sleep_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR && !stop_requested)
			;	/* the tick goes on; a stop signal cuts the pause short */
	}
	if (tx->forward && tx->fault && !strcmp(tx->fault, name))
		return lp_fail(tx->d, LP_EXIT_ABORTED, "fault injected at %s (LP_FAULT is set; unset it)",
			       name);
	/* A roll-back is never cut short: its last sync is what drains queued traps. */
	if (tx->forward && stop_requested)
		return lp_fail(tx->d, LP_EXIT_ABORTED, "interrupted by signal %d; the patch was rolled "
			       "back (run it again when ready)", (int)stop_requested);
	return 0;
}

static int mem_rw(struct tx *tx, uint64_t addr, void *buf, size_t len, bool write)
{
	struct lp_thread *h = tx->held ? threads_find(&tx->ts, tx->held) : NULL;
	if (h && h->state == TH_STOPPED) {
		int ret = write ? pt_write(h->tid, addr, buf, len) : pt_read(h->tid, addr, buf, len);
		if (ret != -ESRCH)
			return ret;
	}
	/* No stopped thread: /proc/PID/mem, the last resort (docs/design.md §4). */
	ssize_t n = write ? pwrite(tx->mem_fd, buf, len, (off_t)addr)
			  : pread(tx->mem_fd, buf, len, (off_t)addr);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static void record_pause(struct tx *tx, struct lp_thread *t)
{
	if (!t->paused_at.tv_sec)
		return;
	if (tx->npauses == tx->cap_pauses) {
		size_t cap = tx->cap_pauses ? tx->cap_pauses * 2 : 256;
		double *p = realloc(tx->pauses, cap * sizeof(*p));
		if (!p)
			return;
		tx->pauses = p;
		tx->cap_pauses = cap;
	}
	tx->pauses[tx->npauses++] = ms_since(&t->paused_at) * 1e3;
	t->paused_at.tv_sec = 0;
}

static int resume(struct tx *tx, struct lp_thread *t, int sig)
{
	if (!sig && t->sig) {
		sig = t->sig;
		t->sig = 0;
	}
	/*
	 * A thread of a stopped process runs only in the kernel (to take a trap of ours
	 * that was queued): the interrupt brings it back to its group stop before it
	 * returns to user code, with no notification to its parent (docs/design.md §5).
	 */
	if (t->group_stop && !t->want_trap && !sig) {
		int r = pt_interrupt(t->tid);
		if (r)
			return r == -ESRCH ? (t->state = TH_GONE, 0) : r;
	}
	int ret = pt_cont(t->tid, sig);

	record_pause(tx, t);
	if (ret == -ESRCH) {
		t->state = TH_GONE;
		return 0;
	}
	if (!ret)
		t->state = TH_RUNNING;
	return ret;
}

/*
 * What a thread that traps on a site's int3 executes instead: the instruction
 * the walk is writing, emulated in its registers (the seed's int3_emulate_*).
 * An ordinary prologue (a revert) cannot be emulated: the thread is parked.
 */
static enum lp_emul emulation_of(const uint8_t *to, uint64_t site, uint64_t *target)
{
	int32_t rel;

	if (to[0] == 0xe9 || to[0] == 0xe8) {
		memcpy(&rel, to + 1, 4);
		*target = site + 5 + (int64_t)rel;
		return to[0] == 0xe9 ? LP_EMUL_JMP : LP_EMUL_CALL;
	}
	if (to[0] == 0xff && to[1] == 0x25 && !to[2] && !to[3] && !to[4] && !to[5]) {
		memcpy(target, to + 6, 8);
		return LP_EMUL_JMP;
	}
	return LP_EMUL_PARK;
}

/* Whether the thread blocks SIGTRAP, seen at a stop that is not one of our traps. */
static void note_mask(struct tx *tx, struct lp_thread *t)
{
	uint64_t mask;

	if (tx->trap_sensitive && !t->mask_known && !pt_getsigmask(t->tid, &mask)) {
		t->mask_known = true;
		t->trap_blocked = mask & 1ULL << (SIGTRAP - 1);
	}
}

/* An injector through stopped thread @t (inject.h); in_done() takes back what it learnt. */
static struct lp_injector injector(struct tx *tx, struct lp_thread *t, struct lp_inject *in)
{
	*in = (struct lp_inject){ .tid = t->tid, .via = tx->via, .mem_fd = tx->mem_fd,
				  .insn = tx->syscall_insn, .deadline = &tx->deadline };
	return (struct lp_injector){ inject_syscall, in };
}

static void in_done(struct tx *tx, struct lp_thread *t, const struct lp_inject *in)
{
	tx->syscall_insn = in->insn;
	if (in->gone)
		t->state = TH_GONE;
}

/*
 * Our trap was a forced SIGTRAP: if the thread blocked it or the process ignores it,
 * the kernel reset the disposition to the default (and unblocked it in the thread).
 * Put both back, through this thread.
 */
static int repair_disposition(struct tx *tx, struct lp_thread *t, uint64_t sp)
{
	struct lp_inject in;
	struct lp_injector inj = injector(tx, t, &in);
	bool reblock = false;
	uint64_t mask;
	/*
	 * Setting SIG_IGN discards the SIGTRAPs pending in every thread, a trap of ours
	 * not yet reported among them (that thread would run on from inside the int3's
	 * instruction): an ignored SIGTRAP is put back only once the walk is over.
	 */
	int ret = tx->sigs.ignored ? 0 : sigstate_repair(&tx->sigs, &inj, sp, &reblock);

	in_done(tx, t, &in);
	if (t->state == TH_GONE)
		return 0;
	if (ret < 0) {
		LOG(tx, "thread %d: SIGTRAP's disposition could not be put back: %s", t->tid,
		    strerror(-ret));
		return 0;
	}
	/* Its mask as seen at an earlier stop; else what the reset of a handler tells. */
	if ((t->mask_known ? t->trap_blocked : ret && reblock) && !pt_getsigmask(t->tid, &mask) &&
	    !(mask & 1ULL << (SIGTRAP - 1)))
		(void)!pt_setsigmask(t->tid, mask | 1ULL << (SIGTRAP - 1));
	tx->st->dispositions_restored = tx->sigs.restored;
	return 0;
}

static struct lp_thread *interrupt_one(struct tx *tx);

/* After the last sync (no int3 left, every trap handled): an ignored SIGTRAP again. */
static void final_repair(struct tx *tx)
{
	struct lp_thread *h = NULL;
	struct user_regs_struct r;

	if (!tx->trap_sensitive || !tx->sigs.ignored || !sigstate_changed(&tx->sigs))
		return;
	for (size_t i = 0; i < tx->ts.n && !h; i++)
		if (tx->ts.v[i].state == TH_STOPPED && !tx->ts.v[i].sig && !tx->ts.v[i].child)
			h = &tx->ts.v[i];
	if (!h)
		h = interrupt_one(tx);
	if (!h || pt_getregs(h->tid, &r)) {
		LOG(tx, "SIGTRAP could not be set back to ignored: no stopped thread");
		return;
	}
	struct lp_inject in;
	struct lp_injector inj = injector(tx, h, &in);
	bool reblock;
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	if (sigstate_repair(&tx->sigs, &inj, r.rsp, &reblock) < 0)
		LOG(tx, "SIGTRAP could not be set back to ignored");
	in_done(tx, h, &in);
	tx->st->dispositions_restored = tx->sigs.restored;
}

/*
 * A SIGTRAP of the program's own, in a process where our traps reset the
 * disposition: delivered while one is reset and not yet put back (another thread's
 * trap, a moment ago or a moment later), it would kill the program. The thread
 * keeps it, stopped, until the transaction ends: no int3 of ours is left then, and
 * every trap has been handled and its reset repaired.
 */
static bool await_repair(struct tx *tx, struct lp_thread *t, int sig)
{
	if (!tx->trap_sensitive || sig != SIGTRAP)
		return false;
	t->sig = sig;
	t->await_repair = true;
	t->synced = true;
	tx->awaiting++;
	return true;
}

/*
 * A SIGTRAP from one of our int3s. Decided from the bytes at the site now, not
 * from a remembered phase: that closes both races of the seed thread (a trap
 * reported after the int3 was removed; a trap handled with stale data).
 */
static int handle_trap(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r,
		       const struct lp_site *s, size_t idx)
{
	uint8_t head;
	uint64_t target;
	int ret = pt_read(t->tid, s->addr, &head, 1);

	if (ret)
		return ret == -ESRCH ? 0 : ret;
	if (tx->trap_sensitive && ((ret = repair_disposition(tx, t, r->rsp)) || t->state == TH_GONE))
		return ret;
	r->orig_rax = (unsigned long long)-1;	/* never let syscall restart logic move the PC */
	if (head != INT3) {
		r->rip = s->addr;		/* reported late: run the completed instruction */
		tx->st->traps_late++;
	} else {
		switch (emulation_of(tx->to[idx], s->addr, &target)) {
		case LP_EMUL_CALL:
			r->rsp -= 8;
			uint64_t ret_addr = s->addr + 5;
			ret = pt_write(t->tid, r->rsp, &ret_addr, 8);
			if (ret)
				return ret;
			/* fall through */
		case LP_EMUL_JMP:
			r->rip = target;
			tx->st->traps_emulated++;
			break;
		case LP_EMUL_PARK:
			t->state = TH_PARKED;
			t->park_site = s->addr;
			tx->st->traps_parked++;
			t->want_trap = false;
			return 0;
		}
	}
	ret = pt_setregs(t->tid, r);
	if (ret)
		return ret == -ESRCH ? 0 : ret;
	t->want_trap = false;
	if (tx->in_sync && t->synced && !t->sharer) {
		/*
		 * Already synced and back on the int3: running it again at once only
		 * feeds a trap storm that starves the stops this sync still waits for,
		 * so it waits (release_deferred). Not a vfork child: its parent, which
		 * the sync may wait for, waits for it.
		 */
		t->deferred = true;
		tx->ndeferred++;
		return 0;
	}
	return resume(tx, t, 0);
}

/*
 * The stop of a thread being single-stepped. Our own tick interrupts waitpid: giving
 * up there would leave the step's SIGTRAP to be reaped elsewhere and passed to the
 * program (it killed it). Past the deadline the thread is interrupted, which stops
 * it wherever it is, and the walk fails once that stop is reaped.
 */
static int wait_step(struct tx *tx, struct lp_thread *t, int *status)
{
	bool late = false;

	while (waitpid(t->tid, status, __WALL) < 0) {
		if (errno != EINTR)
			return -errno;
		if (!late && ms_since(&tx->deadline) > 0) {
			late = true;
			(void)!pt_interrupt(t->tid);
		}
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status))
		t->state = TH_GONE;
	char frz[PATH_MAX];
	int v = late && t->state != TH_GONE ? proc_frozen(tx->pid, t->tid, frz, sizeof(frz)) : 0;
	if (v)	/* the cgroup v2 freezer lets a stop through, not a step */
		return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d is inside the bytes to replace and "
			       "frozen by the cgroup freezer (v%d, %s); %s (thaw it, or retry once it is "
			       "thawed)", t->tid, v, frz,
			       tx->written ? "the patch was rolled back" : "nothing was written");
	if (late && t->state != TH_GONE)
		return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not finish an instruction inside "
			       "the bytes to replace within %u ms; %s (retry, or raise --timeout)",
			       t->tid, tx->timeout_ms,
			       tx->written ? "the patch was rolled back" : "nothing was written");
	return 0;
}

/*
 * Single-step a thread out of a displaced range when no out-of-line copy can be had
 * (move_out); it cannot come back in (docs/design.md §4). Never over a `syscall`,
 * which may block for as long as it likes. A signal that arrives meanwhile (or that
 * this stop was delivering, *@sig) is held and delivered once the thread is out,
 * so its handler's saved context is outside too.
 */
static int step_out(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r, int *sig,
		    bool quiet_syscall)
{
	int status;

	for (int i = 0; i < STEP_LIMIT; i++) {
		const struct lp_site *s = site_at(tx, r->rip, NULL);
		uint8_t insn[2];
		if (!s || r->rip == s->addr)
			return 0;
		int ret = pt_read(t->tid, r->rip, insn, 2);
		if (ret)
			return ret == -ESRCH ? 0 : ret;
		if (insn[0] == 0x0f && insn[1] == 0x05 && !quiet_syscall)
			return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d is about to make a system call "
				       "inside the bytes to replace of %s, and no out-of-line copy could be "
				       "made for it: %s; %s (retry)", t->tid, s->func, tx->xol_why,
				       tx->written ? "the patch was rolled back" : "nothing was written");
		if (insn[0] == 0x0f && insn[1] == 0x05)
			return -EAGAIN;	/* the caller moves it to the out-of-line copy instead */
		if ((ret = pt_step(t->tid, 0)))
			return ret == -ESRCH ? 0 : ret;
		t->stepped = true;
		if ((ret = wait_step(tx, t, &status)) || t->state == TH_GONE)
			return ret;
		if (status >> 16 == 0 && WSTOPSIG(status) != SIGTRAP) {
			int got = WSTOPSIG(status);
			if (*sig)	/* a second one: let the first go now rather than lose one */
				if (!pt_step(t->tid, *sig) && (ret = wait_step(tx, t, &status)))
					return ret;
			if (t->state == TH_GONE)
				return 0;
			*sig = got;
		}
		ret = pt_getregs(t->tid, r);
		if (ret)
			return ret == -ESRCH ? 0 : ret;
		if (i == 0)
			tx->st->stepouts++;
	}
	return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not leave the bytes being replaced "
		       "within %d instructions (a loop inside the site?)", t->tid, STEP_LIMIT);
}

static bool restart_pending(const struct user_regs_struct *r)
{
	long long ax = (long long)r->rax;

	return (long long)r->orig_rax >= 0 && (ax == -ERESTARTSYS || ax == -ERESTARTNOINTR ||
					       ax == -ERESTARTNOHAND || ax == -ERESTART_RESTARTBLOCK);
}

/*
 * The site whose displaced instructions a thread at @pc is in the middle of: strictly
 * inside them, or (@restart: the kernel may restart the call it is in) just past a
 * `syscall` that ends them, where a restart moves the PC back 2 bytes, inside.
 */
static const struct lp_site *displaced_at(const struct tx *tx, uint64_t pc, bool restart,
					  size_t *idx)
{
	const struct lp_site *s = site_at(tx, pc, idx);

	if (s && pc != s->addr)
		return s;
	if (!restart || !(s = site_at(tx, pc - 2, idx)))
		return NULL;
	unsigned int n = s->displaced_len;
	if (pc == s->addr + n && n >= 2 && s->orig[n - 2] == 0x0f && s->orig[n - 1] == 0x05)
		return s;
	return NULL;
}

static bool inside_any(void *arg, uint64_t pc)
{
	size_t idx;

	return displaced_at(arg, pc, false, &idx) != NULL;
}

static long no_injection(void *arg, long nr, const long args[6], bool *failed)
{
	(void)arg, (void)nr, (void)args;
	*failed = true;
	return -EAGAIN;
}

/*
 * Where the out-of-line copy of site @idx runs: placed on first need, in a region
 * made through @t when @vehicle (a stop with no signal to deliver and no fork or
 * clone event under way: the injection resumes the thread).
 */
static int xol_for(struct tx *tx, struct lp_thread *t, size_t idx, bool vehicle, uint64_t *to,
		   const struct lp_xol_copy **copy)
{
	size_t n = tx->plan->nsites;

	if (!tx->xol_to) {
		tx->xol_to = calloc(n, sizeof(*tx->xol_to));
		tx->xol_copy = calloc(n, sizeof(*tx->xol_copy));
		if (!tx->xol_to || !tx->xol_copy)
			return -ENOMEM;
	}
	if (!tx->xol_to[idx]) {
		struct lp_inject in;
		struct lp_injector inj = injector(tx, t, &in);
		char frz[PATH_MAX];
		int v = vehicle ? proc_frozen(tx->pid, t->tid, frz, sizeof(frz)) : 0;
		if (v) {	/* it would not run the call before it is thawed */
			snprintf(tx->xol_why, sizeof(tx->xol_why), "it is frozen by the cgroup freezer "
				 "(v%d, %s): thaw it, or retry once it is thawed", v, frz);
			return -EBUSY;
		}
		if (!vehicle)
			inj.syscall = no_injection;
		struct lp_diag d = { 0 };
		int ret = xol_place(&tx->xol, &tx->plan->sites[idx], &inj, &tx->xol_to[idx],
				    &tx->xol_copy[idx], &d);
		in_done(tx, t, &in);
		tx->st->xol_regions = tx->xol.created;
		if (ret) {
			tx->xol_to[idx] = 0;
			snprintf(tx->xol_why, sizeof(tx->xol_why), "%s", d.msg[0] ? d.msg :
				 vehicle ? strerror(-ret) : "no stopped thread could make the region");
			return ret;
		}
		LOG(tx, "out-of-line copy of %s at 0x%lx (%u bytes)", tx->plan->sites[idx].func,
		    (unsigned long)tx->xol_to[idx], tx->xol_copy[idx].len);
	}
	*to = tx->xol_to[idx];
	*copy = &tx->xol_copy[idx];
	return 0;
}

/*
 * A thread in a stop whose PC is inside displaced instructions (or just past a final
 * `syscall` the kernel is about to restart) continues at the same instruction of the
 * out-of-line copy. Without a copy, a running thread is stepped out instead; a
 * group-stopped one, or one in a call to restart, cannot be: the walk fails.
 */
static int step_out(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r, int *sig,
		    bool quiet_syscall);

static int move_out(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r, int *sig)
{
	const struct lp_xol_copy *c;
	uint64_t to, pc;
	size_t idx;
	const struct lp_site *s = displaced_at(tx, r->rip, restart_pending(r), &idx);

	if (!s)
		return 0;
	bool inside = r->rip < s->addr + s->len;
	/*
	 * A running thread inside the range is single-stepped out when it can be: a few
	 * steps cost less than placing the copy (a maps walk), on the pause of a thread
	 * that was running. Not when a step's forced SIGTRAP could reset the program's
	 * disposition, nor over a system call (it may block): the copy then.
	 */
	if (inside && !t->group_stop && !tx->trap_sensitive && !restart_pending(r)) {
		int st = step_out(tx, t, r, sig, true);
		if (st != -EAGAIN || t->state == TH_GONE)
			return st;
	}
	int ret = xol_for(tx, t, idx, !*sig && !t->child && !tx->in_event, &to, &c);
	if (t->state == TH_GONE)
		return 0;
	if (!ret && xol_map(c, s->addr, to, r->rip, &pc)) {
		r->rip = pc;
		ret = pt_setregs(t->tid, r);
		if (ret)
			return ret == -ESRCH ? 0 : ret;
		tx->st->out_of_line++;
		tx->st->stepouts += inside;
		return 0;
	}
	if (ret == -ENOMEM)
		return ret;
	if (inside && !t->group_stop && ret != -EBUSY)	/* a frozen thread would not step */
		return step_out(tx, t, r, sig, false);
	return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d is %s the bytes to replace of %s and cannot "
		       "be moved out: %s; %s (retry when it has moved on)", t->tid,
		       inside ? "stopped inside" : "in a system call at the end of", s->func,
		       tx->xol_why[0] ? tx->xol_why : "no out-of-line copy",
		       tx->written ? "the patch was rolled back" : "nothing was written");
}

/* Signal frames of a stopped thread whose saved PC is inside displaced instructions. */
static int move_frames(struct tx *tx, struct lp_thread *t, uint64_t sp, int sig)
{
	struct lp_frame f[FRAMES_MAX];
	int n = frames_find(&tx->stacks, sp, inside_any, tx, f, FRAMES_MAX);

	for (int i = 0; i < n; i++) {
		const struct lp_xol_copy *c;
		uint64_t to, pc;
		size_t idx;
		const struct lp_site *s = displaced_at(tx, f[i].pc, false, &idx);
		int ret = xol_for(tx, t, idx, !sig && !t->child && !tx->in_event, &to, &c);
		if (t->state == TH_GONE)
			return 0;
		if (ret || !xol_map(c, s->addr, to, f[i].pc, &pc))
			return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d runs a signal handler that "
				       "returns inside the bytes to replace of %s, and it cannot be "
				       "moved: %s; %s (retry)", t->tid, s->func,
				       tx->xol_why[0] ? tx->xol_why : "no out-of-line copy",
				       tx->written ? "the patch was rolled back" : "nothing was written");
		if (pwrite(tx->mem_fd, &pc, 8, (off_t)f[i].at) != 8)
			return lp_fail(tx->d, LP_EXIT_ABORTED, "cannot write the signal frame of thread "
				       "%d at 0x%lx: %s", t->tid, (unsigned long)f[i].at, strerror(errno));
		tx->st->frames_moved++;
	}
	return n < 0 && n != -ESRCH ? n : 0;
}

/* In sync 1, a stopped thread's frames are looked at once, whatever its first stop was. */
static int scan_once(struct tx *tx, struct lp_thread *t, uint64_t sp, int sig)
{
	if (!tx->stepout || !tx->handlers || t->moved_frames)
		return 0;
	t->moved_frames = true;
	return move_frames(tx, t, sp, sig);
}

/* A thread stopped between the site and --verify's old-body probe: noted once. */
static void note_mid(struct tx *tx, pid_t tid, uint64_t pc)
{
	struct lp_tx_stats *st = tx->st;

	if (!tx->mid_hi || pc < tx->mid_lo || pc > tx->mid_hi || st->nmid == LP_MID_MAX)
		return;
	for (unsigned int i = 0; i < st->nmid; i++)
		if (st->mid[i] == tid)
			return;
	st->mid[st->nmid++] = tid;
}

/*
 * Look at a thread in a stop after the last write: step it out of a displaced
 * range if this sync asks for it, and find an int3 trap of ours still queued
 * (the kernel reports job-control traps before dequeuing signals: PC == site+1
 * alone is ambiguous). Returns 1 when the thread must run to collect that trap.
 */
static int look(struct tx *tx, struct lp_thread *t, int *sig)
{
	struct user_regs_struct r;
	int ret = pt_getregs(t->tid, &r);

	if (ret)
		return ret == -ESRCH ? 0 : ret;
	const struct lp_site *s = site_at(tx, r.rip - 1, NULL);
	if (s && r.rip - 1 == s->addr) {
		ret = pt_trap_queued(t->tid);
		if (ret == 1) {
			t->want_trap = true;
			return 1;
		}
	}
	if (tx->stepout && (ret = move_out(tx, t, &r, sig)))
		return ret;
	if (t->state != TH_GONE && (ret = scan_once(tx, t, r.rsp, *sig)))
		return ret;
	note_mid(tx, t->tid, r.rip);
	return 0;
}

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

enum kin { KIN_THREAD, KIN_SHARER, KIN_CHILD };

/*
 * What a new tracee is to the transaction: a thread of the process; a vfork
 * child, which runs in our memory and is synced like a thread (held stopped, it
 * would hold its parent in vfork() where no interrupt can reach it); or a fork
 * child with its own copy of the text, held stopped until it gets the final bytes.
 */
static enum kin kin_of(const struct tx *tx, pid_t tid)
{
	if ((pid_t)proc_status_field(tid, "Tgid") == tx->pid)
		return KIN_THREAD;
	return shares_memory(tx->pid, tid) ? KIN_SHARER : KIN_CHILD;
}

/* A tid we did not know: a new thread whose first stop beat its clone event, or a child. */
static struct lp_thread *adopt(struct tx *tx, pid_t tid, enum kin kin)
{
	struct lp_thread *t = threads_add(&tx->ts, tid);

	if (!t)
		return NULL;
	t->child = kin == KIN_CHILD;
	t->sharer = kin == KIN_SHARER;
	t->state = TH_NEW;
	t->synced = true;	/* it has not run user code yet and will stop first */
	t->forkless = true;	/* traced from its start: every child it makes is reported */
	if (kin == KIN_THREAD) {
		tx->st->clones++;
		tx->st->threads++;
	} else {
		tx->st->forks++;
	}
	return t;
}

/*
 * Any ptrace stop of a thread after the last write: it was off the CPU, so it is
 * synced, unless a trap of ours is still queued. Any stop also consumes a pending
 * PTRACE_INTERRUPT (the kernel clears the STOP trap on every trap), so no other
 * stop will follow for it. @sig is the signal this stop delivers, if any.
 */
static int after_stop(struct tx *tx, struct lp_thread *t, int sig, bool hold)
{
	int ret;

	t->interrupted = false;
	note_mask(tx, t);
	ret = look(tx, t, &sig);
	if (ret < 0) {
		t->sig = sig;	/* delivered when it is resumed, whatever happens now */
		return ret;
	}
	if (ret == 1)
		return resume(tx, t, sig);	/* collect the queued trap; synced when handled */
	if (t->state == TH_GONE)
		return 0;
	t->synced = true;
	if (hold && !sig) {
		tx->held = t->tid;
		return 0;
	}
	return resume(tx, t, sig);
}

/*
 * Our interrupt reached a thread just inside a blocking call that the kernel does
 * not restart after a stop (epoll_wait, sigtimedwait, semop, a socket call with a
 * timeout): the call would return EINTR to the program, because of us. Nothing was
 * transferred (else it would return a count), so restarting the call is what the
 * program would have had: the EINTR becomes the kernel's ERESTARTNOHAND, which it
 * restarts on resume unless a signal handler runs first (then the program gets
 * EINTR, as it would have anyway). A timed call waits its whole timeout again, but
 * it had only begun: the thread was seen running microseconds before the interrupt.
 * Only calls for which a restart is the same call are listed (not close, connect).
 */
static void keep_blocking_call(struct tx *tx, const struct lp_thread *t)
{
	struct user_regs_struct r;

	if (pt_getregs(t->tid, &r) || (long long)r.orig_rax < 0 || (long long)r.rax != -EINTR)
		return;
	switch (r.orig_rax) {
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
	case SYS_rt_sigtimedwait: case SYS_semop: case SYS_semtimedop:
	case SYS_read: case SYS_readv: case SYS_write: case SYS_writev:
	case SYS_recvfrom: case SYS_recvmsg: case SYS_sendto: case SYS_sendmsg:
	case SYS_accept: case SYS_accept4:
		break;
	default:
		return;
	}
	r.rax = (unsigned long long)-ERESTARTNOHAND;
	if (!pt_setregs(t->tid, &r)) {
		tx->st->calls_restarted++;
		LOG(tx, "thread %d: system call %lld restarted (our interrupt made it return EINTR)",
		    t->tid, (long long)r.orig_rax);
	}
}

static int died(struct tx *tx);

static int on_event(struct tx *tx, struct lp_thread *t, int event)
{
	unsigned long msg = 0;
	int ret;

	switch (event) {
	case PTRACE_EVENT_CLONE:
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		ret = pt_geteventmsg(t->tid, &msg);
		if (!ret && !threads_find(&tx->ts, (pid_t)msg)) {
			pid_t tid = t->tid;	/* adopt() may move the array t points into */
			if (!adopt(tx, (pid_t)msg, kin_of(tx, (pid_t)msg)))
				return -ENOMEM;
			t = threads_find(&tx->ts, tid);
		}
		break;
	case PTRACE_EVENT_EXEC:
		if (t->sharer || (pid_t)proc_status_field(t->tid, "Tgid") != tx->pid) {
			/* A vfork child left our memory for its own image: not ours any more. */
			t->state = TH_GONE;
			ret = pt_detach(t->tid, 0);
			return ret == -ESRCH ? 0 : ret;
		}
		/* The image we planned for is gone: leave the new one alone (docs/design.md §4). */
		tx->exec_seen = true;
		for (size_t i = 0; i < tx->ts.n; i++)
			if (!tx->ts.v[i].child)
				tx->ts.v[i].state = TH_GONE;
		t->state = TH_GONE;
		ret = pt_detach(t->tid, 0);
		(void)ret;
		return died(tx);
	default:
		break;
	}
	tx->in_event = true;	/* the call is under way: no injection through this stop */
	ret = after_stop(tx, t, 0, false);
	tx->in_event = false;
	return ret;
}

static int on_signal(struct tx *tx, struct lp_thread *t, int sig)
{
	struct user_regs_struct r;
	siginfo_t si;
	size_t idx;

	if (sig == SIGTRAP && !pt_getsiginfo(t->tid, &si) && si.si_code == SI_KERNEL &&
	    !pt_getregs(t->tid, &r)) {
		const struct lp_site *s = site_at(tx, r.rip - 1, &idx);
		if (s && s->addr == r.rip - 1) {
			t->interrupted = false;
			t->synced = true;
			/* Its first stop of sync 1 may be this trap: its frames are looked at too. */
			int ret = scan_once(tx, t, r.rsp, 0);
			if (ret || t->state == TH_GONE)
				return ret;
			return handle_trap(tx, t, &r, s, idx);	/* ours: never delivered */
		}
		/*
		 * An int3 trap (SI_KERNEL) of a thread we single-stepped, whose PC-1 holds
		 * no int3: one of ours, reported after the step moved its PC. Delivering
		 * it would kill the program: dropped as late. Any other SIGTRAP, the
		 * program's own `int $3` (cd 03) included, is the program's.
		 */
		uint8_t prev;
		if (t->stepped && !pt_read(t->tid, r.rip - 1, &prev, 1) && prev != INT3) {
			tx->st->traps_late++;
			return after_stop(tx, t, 0, false);
		}
	}
	/* Not ours: re-injected exactly once, from its signal-delivery stop. */
	tx->st->signals_passed++;
	if (await_repair(tx, t, sig))
		return 0;
	return after_stop(tx, t, sig, false);
}

static int on_wait_status(struct tx *tx, pid_t tid, int status, bool hold_last);

/*
 * A thread in a group stop (SIGSTOP or another stop signal from someone else) stays
 * stopped after we leave: it is restarted with PTRACE_LISTEN, never PTRACE_CONT, and
 * its parent sees no extra stop or continue. It is looked at like any stopped thread
 * first: its PC and signal frames may be inside displaced instructions (moved to
 * their copy), and a trap of ours may be queued (taken in the kernel, resume()).
 */
static int group_stopped(struct tx *tx, struct lp_thread *t)
{
	int sig = 0;
	int ret = look(tx, t, &sig);

	t->synced = true;
	t->paused_at.tv_sec = 0;
	if (ret < 0 || t->state == TH_GONE)
		return ret < 0 ? ret : 0;
	if (ret == 1) {
		t->synced = false;	/* synced once the trap is handled */
		return resume(tx, t, 0);
	}
	ret = pt_listen(t->tid);
	t->state = ret == -ESRCH ? TH_GONE : TH_LISTENING;
	return ret == -ESRCH ? 0 : ret;
}

/* Wait for one event of any tracee and handle it. -EINTR on a tick. */
static int wait_one(struct tx *tx, bool hold_last)
{
	int status;
	pid_t tid = waitpid(-1, &status, __WALL);

	if (tid < 0)
		return -errno;
	return on_wait_status(tx, tid, status, hold_last);
}

static size_t unsynced(const struct tx *tx)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->ts.n; i++) {
		const struct lp_thread *t = &tx->ts.v[i];
		n += t->state != TH_GONE && !t->child && !t->synced;
	}
	return n;
}

static int on_wait_status(struct tx *tx, pid_t tid, int status, bool hold_last)
{
	struct lp_thread *t = threads_find(&tx->ts, tid);

	if (!t) {
		/*
		 * Its stop beat the event that announces it. A fork child resumed as a
		 * thread would run our int3 in its copy: only a kin we can tell is let run.
		 */
		t = adopt(tx, tid, kin_of(tx, tid));
		if (!t)
			return -ENOMEM;
	}
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->state = TH_GONE;
		if (!t->child)
			tx->st->exits++;
		return 0;
	}
	if (!WIFSTOPPED(status))
		return 0;
	if (!t->paused_at.tv_sec)	/* an interrupted thread's pause began at the interrupt */
		clock_gettime(CLOCK_MONOTONIC, &t->paused_at);
	t->state = TH_STOPPED;
	int sig = WSTOPSIG(status), event = status >> 16;
	if (t->child)
		return 0;	/* fork children stay stopped until they get the final bytes */
	if (event == PTRACE_EVENT_STOP) {
		t->interrupted = false;
		t->group_stop = is_stop_signal(sig);
		if (t->group_stop)
			return group_stopped(tx, t);
		keep_blocking_call(tx, t);
		bool hold = hold_last && unsynced(tx) == (t->synced ? 0 : 1);
		return after_stop(tx, t, 0, hold);
	}
	if (event)
		return on_event(tx, t, event);
	return on_signal(tx, t, sig);
}

enum seen { SEEN_RUNNING, SEEN_BLOCKED, SEEN_BLOCKED_IN_SITE, SEEN_TRACED, SEEN_GONE };

/*
 * A thread asleep in vfork() is blocked for good once its child exists (that child
 * is then ours, synced like a thread); before that it is in the middle of the call,
 * and its child, untraced, would copy nothing but run in our memory: never blocked.
 */
static enum seen vfork_parent(struct tx *tx, pid_t tid)
{
	int n = seize_sharers_of(&tx->ts, tid, tx->d);

	return n > 0 ? SEEN_BLOCKED : SEEN_RUNNING;
}

/* @line is a syscall file of a blocked thread: "NR ARG1 .. ARG6 SP PC", or "-1 SP PC". */
static bool must_move(struct tx *tx, struct lp_thread *t, const char *line, uint64_t pc)
{
	struct lp_frame f;
	size_t idx;

	if (displaced_at(tx, pc, true, &idx))
		return true;
	/*
	 * A blocked thread is scanned only where the program has handlers of its own: the
	 * scan costs 10-20 us a thread, and glibc's own two handlers never sleep, so a
	 * frame of theirs is only ever on the stack of a thread that runs (stopped, then
	 * scanned in scan_once).
	 */
	if (!tx->own_handlers)
		return false;
	uint64_t v[9], sp;
	const char *p = line;
	char *e;
	int n = 0;
	while (n < 9) {		/* decimal nr, then 0x-prefixed arguments, SP and PC */
		v[n] = strtoull(p, &e, 0);
		if (e == p)
			break;
		n++;
		p = e;
	}
	sp = n >= 2 ? v[n - 2] : 0;
	/* Asleep at the same place since its last scan in this sync: its stack has not changed. */
	if (t->framed && t->scanned_sp == sp && t->scanned_pc == pc)
		return t->frames_inside;
	t->framed = true;
	t->scanned_sp = sp;
	t->scanned_pc = pc;
	t->frames_inside = sp && frames_find(&tx->stacks, sp, inside_any, tx, &f, 1) > 0;
	return t->frames_inside;
}

/*
 * Where a thread we did not stop is now, from /proc (no signal, no stop):
 * blocked in the kernel (with its user PC), running, or in a ptrace stop that
 * has not been reported to us yet. May add a vfork child to tx->ts (@t moves).
 */
static enum seen observe(struct tx *tx, struct lp_thread *t)
{
	char buf[512];

	/*
	 * The syscall file alone: "running", or the call it sleeps in (-1 for none) and
	 * its user PC (0 once it has exited). A thread in a ptrace stop we have not reaped
	 * shows as asleep, and is: it runs no user code until we resume it (a trap of ours
	 * it may hold is looked for below). Reading stat as well doubled a sync's cost.
	 */
	if (thread_file(&tx->ts, t, &t->syscall_fd, "syscall", buf, sizeof(buf)) < 0)
		return SEEN_GONE;
	if (!strncmp(buf, "running", 7))
		return SEEN_RUNNING;
	long nr = strtol(buf, NULL, 10);
	/*
	 * A fork or clone in flight has a child to report, an execve is about to
	 * replace the image: never synced as blocked, their stop is waited for
	 * (for an exec, its exec event, once the threads it kills are reaped).
	 */
	if (spawning_call(nr))
		return SEEN_RUNNING;
	char *last = strrchr(buf, ' ');
	uint64_t pc = last ? strtoull(last + 1, NULL, 16) : 0;
	/* No user PC and no call: past do_exit, its stack released. Its exit report is awaited. */
	if (nr == -1 && !pc)
		return SEEN_GONE;
	/*
	 * Asleep outside any system call (nr -1: in a fault, or on the way to a signal)
	 * just past a site's first byte: it may have run our int3 and hold its SIGTRAP,
	 * which only its stop lets us collect. Never synced as blocked: released with
	 * that trap queued, the program would get it.
	 */
	const struct lp_site *t3 = nr == -1 ? site_at(tx, pc - 1, NULL) : NULL;
	if (t3 && t3->addr == pc - 1)
		return SEEN_RUNNING;
	/*
	 * Inside displaced instructions, just past a final `syscall` that a restart would
	 * re-enter, or with a signal frame that returns inside them: it must be moved to
	 * the out-of-line copy before the tail changes, which takes a stop.
	 */
	if (tx->stepout && must_move(tx, t, buf, pc))
		return SEEN_BLOCKED_IN_SITE;
	return nr == SYS_vfork && !t->sharer ? vfork_parent(tx, t->tid) : SEEN_BLOCKED;
}

static bool process_alive(const struct tx *tx)
{
	for (size_t i = 0; i < tx->ts.n; i++)
		if (tx->ts.v[i].state != TH_GONE && !tx->ts.v[i].child)
			return true;
	return false;
}

/*
 * Whether the process is going away under us: every thread reaped, an exec
 * reported, or /proc shows it dead or without memory (the memory goes first,
 * at the start of an exit). Looked for only after something failed, a little
 * while, since an exit reaches /proc in steps. Meanwhile the stops and exits
 * waiting for us are handled: an exec completes, and reports itself, only once
 * the threads it killed have been reaped.
 */
static bool process_ending(struct tx *tx)
{
	char path[64], buf[1];

	for (int i = 0; i < 20; i++) {
		int status;
		pid_t w;
		while ((w = waitpid(-1, &status, __WALL | WNOHANG)) > 0)
			(void)on_wait_status(tx, w, status, false);
		if (!process_alive(tx) || tx->exec_seen)
			return true;
		if (proc_task_exiting(tx->pid, tx->via))
			return true;
		snprintf(path, sizeof(path), "/proc/%d/maps", tx->via);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return true;
		usleep(5000);
	}
	return false;
}

/*
 * The process died or called exec: that, not the step that noticed it first, is
 * the outcome (exit 3), whatever failure was recorded before.
 */
static int died(struct tx *tx)
{
	tx->d->code = 0;
	if (tx->exec_seen)
		return lp_fail(tx->d, LP_EXIT_PROCESS, "process %d called exec during the "
			       "transaction; the new program was left alone (patch it again if "
			       "needed)", tx->pid);
	return lp_fail(tx->d, LP_EXIT_PROCESS, "process %d exited during the transaction "
		       "(nothing left to patch)", tx->pid);
}

static int timed_out(struct tx *tx)
{
	static const char *const why[] = {
		[SEEN_RUNNING] = "it was interrupted but did not stop",
		[SEEN_BLOCKED] = "it is blocked in the kernel",
		[SEEN_BLOCKED_IN_SITE] = "it is blocked in the kernel with its PC or a signal "
					 "frame inside the bytes to replace, and did not stop to be moved",
		[SEEN_TRACED] = "its ptrace stop was never reported",
		[SEEN_GONE] = "it is exiting",
	};

	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (t->synced || t->state == TH_GONE || t->child)
			continue;
		enum seen seen = observe(tx, t);
		char st[512], *p;
		int fd = -1;
		t = &tx->ts.v[i];
		if (seen == SEEN_BLOCKED && thread_file(&tx->ts, t, &fd, "stat", st, sizeof(st)) > 0 &&
		    (p = strrchr(st, ')')) && (p[2] == 't' || p[2] == 'T'))
			seen = SEEN_TRACED;
		if (fd >= 0)
			close(fd);
		char frz[PATH_MAX];
		int v = proc_frozen(tx->pid, t->tid, frz, sizeof(frz));
		if (v)	/* frozen, not blocked: waited for a thaw until the timeout */
			return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not reach a safe point "
				       "within %u ms: it is frozen by the cgroup freezer (v%d, %s); %s "
				       "(thaw it, or retry once it is thawed)", t->tid, tx->timeout_ms, v,
				       frz, tx->written ? "the patch was rolled back" : "nothing was written");
		return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not reach a safe point "
			       "within %u ms: %s%s%s; %s (retry, or raise --timeout)", t->tid,
			       tx->timeout_ms, why[seen], t->interrupted ? ", interrupt pending" : "",
			       t->want_trap ? ", trap pending" : "",
			       tx->written ? "the patch was rolled back" : "nothing was written");
	}
	return 0;
}

/* Threads held back during the sync run again; one may stay stopped for the next write. */
static int resume_deferred(struct tx *tx, bool hold_last, int ret)
{
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (!t->deferred)
			continue;
		t->deferred = false;
		if (t->state != TH_STOPPED)
			continue;
		if (hold_last && !ret && !tx->held) {
			tx->held = t->tid;
			continue;
		}
		int r = resume(tx, t, 0);
		if (r && !ret)
			ret = r;
	}
	tx->ndeferred = 0;
	return ret;
}

/*
 * A deferred thread waits DEFER_US, and DEFER_EACH_US more for every other thread
 * held, then runs again (and traps again, while the int3 is there). Holding it
 * until the sync ended made its pause as long as the whole sync, which is set by
 * the slowest thread to stop (one waiting for a CPU to take its interrupt: 0.5-8 ms
 * measured), while it could have run. Releasing every held thread after a fixed
 * time instead let 64 hot threads trap faster than the tracer could handle them
 * (a livelock): with the hold growing with the threads held, a release costs the
 * tracer about one trap (10-15 us) per DEFER_EACH_US of hold, so the traps take
 * at most about half of its time, however many threads trap. Sets *@due_us to the
 * wait until the next release.
 */
static int release_deferred(struct tx *tx, long *due_us)
{
	*due_us = 0;
	if (!tx->ndeferred)
		return 0;
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		if (!t->deferred)
			continue;
		long held = (long)(ms_since(&t->paused_at) * 1000);
		long hold = DEFER_US + DEFER_EACH_US * (long)(tx->ndeferred - 1);
		if (t->state == TH_STOPPED && held < hold) {
			if (!*due_us || hold - held < *due_us)
				*due_us = hold - held;
			continue;
		}
		t->deferred = false;
		tx->ndeferred--;
		int ret = t->state == TH_STOPPED ? resume(tx, t, 0) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/* The next tick in @us (the sync's waitpid returns EINTR), then every TICK_US again. */
static void tick_in(long us)
{
	struct itimerval it = { { 0, TICK_US }, { 0, us > 0 ? us : 1 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/*
 * Threads looked at between two checks for stops during a sweep: a thread that
 * traps meanwhile waits for PENDING_EVERY /proc reads (4-8 us each), not 16.
 */
#define PENDING_EVERY 4
/* Stops handled at most per check. */
#define SWEEP_BATCH 16

/*
 * Handle the stops already reported (a trap on our int3, an interrupt that landed)
 * without waiting: a sweep reads every thread's /proc file, and a thread stopped
 * early in it would otherwise wait for the whole sweep (0.4 ms at 64 threads).
 */
static int handle_pending_stops(struct tx *tx)
{
	int status;
	long due;
	pid_t w;
	int ret = release_deferred(tx, &due);

	if (ret)
		return ret;
	/* Bounded: a hot thread resumed here traps again at once, and the sweep must go on. */
	for (int k = 0; k < SWEEP_BATCH && (w = waitpid(-1, &status, __WALL | WNOHANG)) > 0; k++)
		if ((ret = on_wait_status(tx, w, status, false)))
			return ret;
	return 0;
}

/* Classify every thread not yet synced; interrupt the ones running user code. */
static int sweep(struct tx *tx, bool interrupt_running)
{
	for (size_t i = 0, looked = 0; i < tx->ts.n; i++) {
		if (looked == PENDING_EVERY) {
			int ret = handle_pending_stops(tx);
			if (ret)
				return ret;
			looked = 0;
		}
		struct lp_thread *t = &tx->ts.v[i];
		if (t->synced || t->want_trap || t->child || t->state != TH_RUNNING)
			continue;
		looked++;
		enum seen seen = observe(tx, t);
		t = &tx->ts.v[i];	/* observe() may have added a vfork child */
		if (t->interrupted) {
			/*
			 * Its stop is on its way, unless it sleeps where no interrupt reaches
			 * (a vfork parent waiting for its child, a D-state read): seen there,
			 * it runs no user code, as good a sync point as the stop. The stop
			 * still comes later and is handled then.
			 */
			if (seen == SEEN_BLOCKED) {
				t->synced = true;
				tx->st->blocked_left_alone++;
			}
			continue;
		}
		if (seen == SEEN_BLOCKED && !tx->stop_blocked) {
			t->synced = true;
			tx->st->blocked_left_alone++;
			continue;
		}
		switch (seen) {
		case SEEN_BLOCKED:	/* only with LP_FAULT=stop-blocked, for the tests */
		case SEEN_BLOCKED_IN_SITE:	/* stopped, then moved out (move_out, move_frames) */
		case SEEN_RUNNING:
			if (!interrupt_running)
				break;
			int ret = pt_interrupt(t->tid);
			if (ret && ret != -ESRCH)
				return ret;
			t->interrupted = !ret;
			clock_gettime(CLOCK_MONOTONIC, &t->paused_at);
			tx->st->thread_stops += !ret;
			break;
		default:	/* traced: its stop is on its way */
			break;
		}
	}
	return 0;
}

/*
 * sync: after the last write, establish for every thread one moment at which it
 * was not executing user code and had no trap of ours pending (the user-space
 * run_sync() of the seed thread).
 *
 * - A thread blocked in the kernel with its user PC outside every site is synced
 *   as it is: it runs no user code before it leaves the kernel and cannot hold a
 *   pending SIGTRAP. It is not interrupted: a ptrace stop makes epoll_wait,
 *   rt_sigtimedwait, semop, recv with a timeout return EINTR to the program.
 * - Every other thread gets PTRACE_INTERRUPT, all at once, and is looked at and
 *   resumed as soon as its stop arrives, so a thread's pause does not grow with
 *   the number of threads.
 * Limits: a ptrace stop is a kernel entry and exit, not a serializing instruction
 * on every return path; the int3-first order makes that harmless, as in the kernel.
 * A thread that becomes blocked between observe() and PTRACE_INTERRUPT is stopped
 * anyway (the window is a few microseconds; blockd counts the EINTRs it would cause).
 * With @hold_last, the last thread to stop stays stopped so the next write can go
 * through it (PTRACE_POKETEXT needs a stopped thread).
 */
static int sync_threads(struct tx *tx, bool hold_last)
{
	struct timespec swept;
	int ret;

	tx->st->syncs++;
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		t->synced = t->state != TH_RUNNING || t->child || (tx->sync0 && t->forkless);
		t->framed = false;
		t->moved_frames = false;
		/* A group-stopped thread's PC and frames are looked at once the int3 is in. */
		if (tx->stepout && t->state == TH_LISTENING && !(ret = pt_interrupt(t->tid))) {
			t->synced = false;
			t->interrupted = true;
			clock_gettime(CLOCK_MONOTONIC, &t->paused_at);
		}
	}
	tx->in_sync = true;	/* from the start: a trap during the sweeps is deferred too */
	struct lp_thread *h0 = tx->held ? threads_find(&tx->ts, tx->held) : NULL;
	if (h0 && h0->state == TH_STOPPED) {
		/* Stopped across the write: synced, but it may sit where the write matters. */
		struct lp_thread *h = h0;
		int sig = 0;
		tx->held = 0;
		ret = look(tx, h, &sig);
		if (ret < 0)
			goto done;
		h->synced = ret == 0;
		if (h->state == TH_STOPPED && (ret = resume(tx, h, sig)))
			goto done;
	}
	/* Two looks before interrupting: a thread seen running a moment ago may be asleep now. */
	if ((ret = sweep(tx, false)) || (ret = sweep(tx, true)))
		goto done;
	clock_gettime(CLOCK_MONOTONIC, &swept);
	while (unsynced(tx)) {
		long due_us;
		if ((ret = release_deferred(tx, &due_us)))
			break;
		if (due_us)
			tick_in(due_us);
		ret = wait_one(tx, hold_last);
		bool none = ret == -ECHILD, woke = none || ret == -EINTR;	/* a tick, or no tracee */
		if (woke && stop_requested && tx->forward) {
			ret = fault_point(tx, "signal");
			break;
		}
		if (woke)
			ret = 0;
		/* After a stop as after a tick: stops that keep coming let no tick through. */
		if (!ret && ms_since(&tx->deadline) > 0)
			ret = process_ending(tx) ? died(tx) : timed_out(tx);
		if (ret)
			break;
		if (woke) {
			/* A look for threads gone to sleep since: once a tick, not at every release. */
			if (none || ms_since(&swept) * 1000 >= TICK_US) {
				if ((ret = sweep(tx, true)))
					break;
				clock_gettime(CLOCK_MONOTONIC, &swept);
			}
			continue;
		}
		if (tx->exec_seen) {
			ret = LP_ERR(LP_EXIT_PROCESS);
			break;
		}
	}
done:
	tx->in_sync = false;
	return resume_deferred(tx, hold_last, ret);	/* a failed sync holds none back */
}

/*
 * Read or write [off, off + len) of a run. One site goes through mem_rw (a stopped
 * thread's PTRACE_POKETEXT, word by word, when one is held); several go in one
 * write of /proc/PID/mem, which re-writes the unchanged bytes between them as
 * they are (read at the start of the walk: nobody else writes this text).
 */
static int run_rw(struct tx *tx, const struct lp_run *r, size_t off, size_t len, bool write)
{
	uint8_t *buf = tx->img + r->off + off;

	if (r->nsites == 1)
		return mem_rw(tx, r->lo + off, buf, len, write);
	ssize_t n = write ? pwrite(tx->mem_fd, buf, len, (off_t)(r->lo + off))
			  : pread(tx->mem_fd, buf, len, (off_t)(r->lo + off));
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int rw_failed(struct tx *tx, int ret, uint64_t addr, bool write)
{
	if (process_ending(tx))
		return died(tx);
	return lp_fail(tx->d, LP_EXIT_ABORTED, "%s 0x%lx failed: %s (was the library unmapped?)",
		       write ? "writing" : "reading", (unsigned long)addr, strerror(-ret));
}

/* Bytes [from, to_excl) of every site to tx->to (the head as int3 with @head_int3), run by run. */
static int write_sites(struct tx *tx, size_t from, size_t to_excl, bool head_int3)
{
	uint8_t old[4096];

	for (size_t k = 0; k < tx->nruns; k++) {
		const struct lp_run *r = &tx->runs[k];
		uint8_t *img = tx->img + r->off;
		size_t len = r->hi - r->lo, a = len, b = 0;
		memcpy(old, img, len);
		for (size_t i = r->first; i < r->first + r->nsites; i++) {
			const struct lp_site *s = &tx->plan->sites[i];
			size_t lo = from, hi = to_excl < s->len ? to_excl : s->len, at = s->addr - r->lo;
			for (size_t j = lo; j < hi; j++) {
				uint8_t v = j == 0 && head_int3 ? INT3 : tx->to[i][j];
				if (img[at + j] == v)
					continue;
				img[at + j] = v;	/* the changed range, from the sites' bytes only */
				a = a < at + j ? a : at + j;
				b = b > at + j + 1 ? b : at + j + 1;
			}
		}
		if (a >= b)
			continue;	/* nothing changes in this run */
		int ret = run_rw(tx, r, a, b - a, true);
		tx->written = true;
		if (ret) {
			memcpy(img, old, len);	/* what memory most likely still holds */
			return rw_failed(tx, ret, r->lo + a, true);
		}
	}
	return 0;
}

/* Parked threads trapped while the head was an int3; the head is written now: run it. */
static int unpark(struct tx *tx)
{
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		struct user_regs_struct r;
		if (t->state != TH_PARKED)
			continue;
		t->state = TH_STOPPED;
		int ret = pt_getregs(t->tid, &r);
		if (!ret) {
			r.rip = t->park_site;
			r.orig_rax = (unsigned long long)-1;
			ret = pt_setregs(t->tid, &r);
		}
		if (!ret)
			ret = resume(tx, t, 0);
		if (ret && ret != -ESRCH)
			return ret;
	}
	return 0;
}

struct phase_step {
	const char *fault_after_write, *fault_after_sync;
};

static int phase(struct tx *tx, int idx, size_t from, size_t to_excl, bool int3, bool stepout,
		 bool hold_after)
{
	struct timespec t0;
	static const char *const names[3][2] = {
		{ "int3", "sync1" }, { "tail", "sync2" }, { "head", "sync3" },
	};
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((ret = write_sites(tx, from, to_excl, int3)))
		return ret;
	if (idx == 2 && (ret = unpark(tx)))
		return ret;
	if ((ret = fault_point(tx, names[idx][0])))
		return ret;
	tx->stepout = stepout;
	ret = sync_threads(tx, hold_after);
	tx->stepout = false;
	if (!process_alive(tx))
		ret = died(tx);
	if (!ret)
		ret = fault_point(tx, names[idx][1]);
	if (tx->forward)
		tx->st->phase_ms[idx] += ms_since(&t0);
	LOG(tx, "%s%s: wrote %s, synced %zu threads in %.3f ms (%u stops so far, %u left "
	    "blocked)%s%s", tx->forward ? "" : "roll-back ", names[idx][1],
	    idx == 0 ? "int3" : idx == 1 ? "tails" : "heads", tx->ts.n, ms_since(&t0),
	    tx->st->thread_stops, tx->st->blocked_left_alone, ret ? ": " : "", ret ? tx->d->msg : "");
	return ret;
}

/*
 * Walk every site from what memory holds to tx->to, with the three phases.
 * When only the head differs (a roll-back that had only written the int3),
 * writing the head and one sync is the whole walk.
 */
static int transition(struct tx *tx)
{
	bool tail_differs = false, head_differs = false;
	int ret;

	for (size_t k = 0; k < tx->nruns; k++) {
		const struct lp_run *r = &tx->runs[k];
		if ((ret = run_rw(tx, r, 0, r->hi - r->lo, false)))
			return rw_failed(tx, ret, r->lo, false);
		for (size_t i = r->first; i < r->first + r->nsites; i++) {
			const struct lp_site *s = &tx->plan->sites[i];
			const uint8_t *cur = tx->img + r->off + (s->addr - r->lo);
			tail_differs |= memcmp(cur + 1, tx->to[i] + 1, s->len - 1) != 0;
			head_differs |= cur[0] != tx->to[i][0];
		}
	}
	/*
	 * The forward walk stops at the first failure and rolls back. The roll-back
	 * goes on through a failed sync (a thread stuck in the kernel runs no user
	 * code): a half-written site would be a certain crash.
	 */
	int first = 0;
	if (tail_differs) {
		ret = phase(tx, 0, 0, 1, true, true, true);
		if (ret && (tx->forward || !process_alive(tx)))
			return ret;
		first = first ? first : ret;
		ret = phase(tx, 1, 1, LP_SITE_MAX, false, false, true);
		if (ret && (tx->forward || !process_alive(tx)))
			return ret;
		first = first ? first : ret;
	}
	if (tail_differs || head_differs)
		ret = phase(tx, 2, 0, 1, false, false, false);
	return first ? first : ret;
}

/* A fork child copied the text at some moment: give it the final bytes, then let it go. */
static void release_children(struct tx *tx)
{
	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		int status;
		if (!t->child || t->state == TH_GONE)
			continue;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (t->state == TH_NEW) {	/* its first stop is still on its way */
			pid_t w = waitpid(t->tid, &status, __WALL);
			if (w < 0 && errno == EINTR && ms_since(&t0) < tx->timeout_ms)
				continue;	/* never hang: past the timeout it is let go as it is */
			if (w < 0 || !WIFSTOPPED(status))
				t->state = TH_GONE;
			else
				t->state = TH_STOPPED;
		}
		if (t->state != TH_STOPPED)
			continue;
		for (size_t k = 0; k < tx->plan->nsites; k++) {
			const struct lp_site *s = &tx->plan->sites[k];
			uint8_t cur[LP_SITE_MAX];
			if (!pt_read(t->tid, s->addr, cur, s->len) && memcmp(cur, tx->to[k], s->len))
				(void)!pt_write(t->tid, s->addr, tx->to[k], s->len);
		}
		(void)!pt_detach(t->tid, 0);
		t->state = TH_GONE;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void finish_stats(struct tx *tx)
{
	size_t n = tx->npauses;

	qsort(tx->pauses, n, sizeof(*tx->pauses), cmp_double);
	tx->st->pause_max_us = n ? tx->pauses[n - 1] : 0;
	tx->st->pause_median_us = n ? tx->pauses[n / 2] : 0;
}

struct saved_signals {
	sigset_t mask;
	struct sigaction act[5];
	struct itimerval timer;
};

static const int caught[5] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGALRM };

void transact_signals(sigset_t *set)
{
	sigemptyset(set);
	for (int i = 0; i < 5; i++)
		sigaddset(set, caught[i]);
}

/* Handlers first, then the signals unblocked in this thread (the caller blocks them in its own). */
static void install_signals(struct saved_signals *old)
{
	struct sigaction sa = { 0 };
	struct itimerval tick = { { 0, TICK_US }, { 0, TICK_US } };
	sigset_t set;

	stop_requested = 0;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 5; i++) {
		sa.sa_handler = caught[i] == SIGALRM ? on_tick : on_stop_signal;
		sigaction(caught[i], &sa, &old->act[i]);	/* no SA_RESTART: waitpid must return */
	}
	transact_signals(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, &old->mask);
	setitimer(ITIMER_REAL, &tick, &old->timer);
}

static void restore_signals(const struct saved_signals *old)
{
	setitimer(ITIMER_REAL, &old->timer, NULL);
	pthread_sigmask(SIG_SETMASK, &old->mask, NULL);
	for (int i = 0; i < 5; i++)
		sigaction(caught[i], &old->act[i], NULL);
}

/*
 * Syncs before the first write. Whether a fork's or clone's child is traced is
 * decided when the call enters the kernel, and the child exists (and copies the
 * text, for a fork) later: a call already under way when its thread was seized
 * gives an untraced child that would run into our int3 (a thread's SIGTRAP would
 * kill the whole process). A thread inside fork or clone is never counted as
 * blocked, so a sync waits until every such call has returned; a rescan then
 * seizes the children they made. A child seized that way may itself be in a
 * clone already: sync again, until a rescan finds no task we did not trace yet.
 * Only threads that may have such a call under way take part: one seen asleep in
 * another call right after its seize (forkless, seize.c) has none, and an exec
 * under way counts as one, so that sync 0 sees it through before anything is
 * written. The last thread to stop is held for the first write.
 */
#define SETTLE_ROUNDS 4

/*
 * Without a thread held after sync 0 (every thread was asleep), one is interrupted
 * to carry the injection, and held for the first write. A stop other than the
 * interrupt's (a signal, a group stop) is handled as usual, and no thread is held.
 */
static struct lp_thread *interrupt_one(struct tx *tx)
{
	struct lp_thread *t = NULL;
	int status;

	for (size_t i = 0; i < tx->ts.n && !t; i++)
		if (tx->ts.v[i].state == TH_RUNNING && !tx->ts.v[i].child && !tx->ts.v[i].sharer)
			t = &tx->ts.v[i];
	if (!t || pt_interrupt(t->tid))
		return NULL;
	pid_t tid = t->tid;
	while (waitpid(tid, &status, __WALL) < 0)
		if (errno != EINTR)
			return NULL;
	if (!WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP ||
	    is_stop_signal(WSTOPSIG(status))) {
		(void)on_wait_status(tx, tid, status, false);
		return NULL;
	}
	t = threads_find(&tx->ts, tid);
	t->state = TH_STOPPED;
	tx->st->thread_stops++;
	keep_blocking_call(tx, t);
	tx->held = tid;
	return t;
}

/*
 * SIGTRAP's disposition, saved before the first int3 through the thread held for the
 * first write (a busy process has one), else through one interrupted for it. Without
 * it, a handler reset by a trap cannot be put back (logged; an ignored SIGTRAP can).
 */
static void save_disposition(struct tx *tx)
{
	struct lp_thread *h = tx->held ? threads_find(&tx->ts, tx->held) : NULL;
	struct user_regs_struct r;

	if (!h || h->state != TH_STOPPED)
		h = interrupt_one(tx);
	if (!h || h->state != TH_STOPPED || pt_getregs(h->tid, &r)) {
		LOG(tx, "SIGTRAP's handler not saved: no stopped thread before the first write");
		return;
	}
	struct lp_inject in;
	struct lp_injector inj = injector(tx, h, &in);
	int ret = sigstate_save(&tx->sigs, &inj, r.rsp);
	in_done(tx, h, &in);
	LOG(tx, "SIGTRAP's disposition %s", ret ? "could not be saved" : "saved");
}

static int settle(struct tx *tx)
{
	struct timespec t0;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (tx->handlers)	/* the maps, read while no thread is held for it */
		(void)frames_prepare(&tx->stacks);
	for (int round = 1; !ret; round++) {
		tx->sync0 = true;
		ret = sync_threads(tx, true);
		tx->sync0 = false;
		if (!process_alive(tx))
			ret = died(tx);
		if (ret)
			break;
		size_t known = tx->ts.n, fresh = 0;
		if ((ret = seize_rescan(&tx->ts, tx->d)) < 0)
			break;
		ret = 0;
		for (size_t i = 0; i < known; i++)	/* their calls under way have returned */
			tx->ts.v[i].forkless = true;
		for (size_t i = known; i < tx->ts.n; i++)
			fresh += tx->ts.v[i].state == TH_RUNNING;	/* untraced until now */
		tx->st->threads += (unsigned int)(tx->ts.n - known);
		if (!fresh)
			break;
		if (round == SETTLE_ROUNDS)
			ret = lp_fail(tx->d, LP_EXIT_ABORTED, "process %d kept creating untraced threads "
				      "through %d syncs; nothing was written (retry when it is calmer)",
				      tx->pid, SETTLE_ROUNDS);
	}
	if (!ret && tx->trap_sensitive)
		save_disposition(tx);
	if (!ret)
		ret = fault_point(tx, "sync0");
	tx->st->sync0_ms = ms_since(&t0);
	LOG(tx, "sync0: nothing written, synced %zu threads in %.3f ms%s%s", tx->ts.n,
	    tx->st->sync0_ms, ret ? ": " : "", ret ? tx->d->msg : "");
	return ret;
}

static int run_walks(struct tx *tx, const uint8_t (*to_new)[LP_SITE_MAX],
		     const uint8_t (*to_old)[LP_SITE_MAX])
{
	tx->to = to_new;
	tx->forward = true;
	int ret = settle(tx);
	/* Aborted before the first write (a timeout, SIGINT): the process is as it was. */
	if (ret == LP_ERR(LP_EXIT_ABORTED) && !tx->written)
		tx->st->rolled_back = true;
	if (ret)
		return ret;
	ret = transition(tx);
	if (!ret || tx->exec_seen)
		return ret;
	if (!process_alive(tx))
		return died(tx);
	/* Roll back with the same protocol; the first failure stays the reported one. */
	tx->to = to_old;
	tx->forward = false;
	LOG(tx, "rolling back: %s", tx->d->msg);
	int back = transition(tx);
	tx->st->rolled_back = !back;
	if (back && process_ending(tx))
		return died(tx);
	if (back)
		return lp_fail(tx->d, LP_EXIT_INTERNAL, "roll-back failed after: %s", tx->d->msg);
	return ret;
}

/*
 * The process has a signal handler (SigCgt): only then can a thread's stack hold a
 * signal frame. When unsure, it may.
 */
/*
 * Which signals the process catches (SigCgt): any (@any), and any besides the two
 * glibc's threads library catches in every threaded program (@own: not 32, its
 * cancellation, nor 33, its setxid broadcast, whose handlers neither sleep nor return
 * late). When unsure, both. Then SIGTRAP's starting disposition, from the same read.
 */
static void read_signal_state(struct tx *tx)
{
	uint64_t ign = 0, cgt = 0;

	if (sigstate_read(tx->via, &ign, &cgt)) {
		tx->handlers = tx->own_handlers = true;
		tx->trap_sensitive = false;
		return;
	}
	tx->handlers = cgt != 0;
	tx->own_handlers = (cgt & ~(1ULL << 31 | 1ULL << 32)) != 0;
	tx->trap_sensitive = sigstate_init(&tx->sigs, tx->via, tx->mem_fd, ign, cgt);
}

int transact_run(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		 struct lp_tx_stats *st, struct lp_diag *d)
{
	struct tx tx = { .pid = pid, .via = o->via ? o->via : pid, .plan = plan,
			 .timeout_ms = o->timeout_ms, .st = st, .d = d,
			 .mid_lo = o->mid_lo, .mid_hi = o->mid_hi };
	uint8_t (*bytes)[LP_SITE_MAX] = calloc(plan->nsites * 2 + 1, LP_SITE_MAX);
	struct saved_signals saved;
	struct timespec t0;
	char path[64];
	int ret;

	tx.runs = calloc(plan->nsites + 1, sizeof(*tx.runs));
	if (!bytes || !tx.runs) {
		free(bytes);
		free(tx.runs);
		return -ENOMEM;
	}
	tx.nruns = plan_runs(plan, tx.runs);
	size_t img_len = tx.nruns ? tx.runs[tx.nruns - 1].off + tx.runs[tx.nruns - 1].hi -
				    tx.runs[tx.nruns - 1].lo : 0;
	tx.img = malloc(img_len + 1);
	if (!tx.img) {
		free(bytes);
		free(tx.runs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < plan->nsites; i++) {
		memcpy(bytes[i], plan->sites[i].new_bytes, LP_SITE_MAX);
		memcpy(bytes[plan->nsites + i], plan->sites[i].old_bytes, LP_SITE_MAX);
	}
	tx.fault = getenv("LP_FAULT");
	tx.stop_blocked = tx.fault && !strcmp(tx.fault, "stop-blocked");
	if (getenv("LP_FAULT_SLEEP_MS"))
		tx.fault_sleep_ms = atol(getenv("LP_FAULT_SLEEP_MS"));
	snprintf(path, sizeof(path), "/proc/%d/mem", tx.via);
	tx.mem_fd = open(path, O_RDWR | O_CLOEXEC);
	tx.xol = (struct lp_xol){ .via = tx.via, .mem_fd = tx.mem_fd };
	tx.stacks = (struct lp_stacks){ .via = tx.via, .mem_fd = tx.mem_fd };
	read_signal_state(&tx);
	install_signals(&saved);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = seize_all(&tx.ts, pid, d);
	st->threads = (unsigned int)tx.ts.n;
	st->seize_ms = ms_since(&t0);
	tx.log = o->log;
	LOG(&tx, "seized %u threads of process %d in %.3f ms", st->threads, pid, st->seize_ms);
	if (!ret && tx.mem_fd < 0)
		ret = lp_fail(d, LP_EXIT_PROCESS, "cannot open /proc/%d/mem for writing (run as root)",
			      tx.via);
	if (!ret)
		ret = run_walks(&tx, bytes, bytes + plan->nsites);
	if (!tx.exec_seen && process_alive(&tx))
		final_repair(&tx);
	release_children(&tx);
	for (size_t i = 0; i < tx.ts.n; i++)	/* hold no stop that was reaped but not resumed */
		if (tx.ts.v[i].state == TH_STOPPED || tx.ts.v[i].state == TH_PARKED)
			(void)!resume(&tx, &tx.ts.v[i], 0);
	st->total_ms = ms_since(&t0);
	finish_stats(&tx);
	restore_signals(&saved);
	if (tx.mem_fd >= 0)
		close(tx.mem_fd);
	threads_free(&tx.ts);
	frames_free(&tx.stacks);
	free(tx.xol_to);
	free(tx.xol_copy);
	free(tx.pauses);
	free(tx.img);
	free(tx.runs);
	free(bytes);
	return ret;
}
