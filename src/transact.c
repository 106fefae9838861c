/*
 * Transact: move every site from its current bytes to the wanted bytes with the
 * kernel's text_poke_bp protocol (docs/design.md §4: sync 0, then int3, sync, tail,
 * sync, head, sync), over threads that keep running. Roll-back is the same walk
 * towards the old bytes. This file holds the phases and the roll-back; the sync,
 * the tracee stops, the traps and the moves out of displaced bytes have their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "events.h"
#include "inside.h"
#include "proc.h"
#include "ptrace_ops.h"
#include "sync.h"
#include "transact.h"
#include "trap.h"
#include "x86.h"

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
		return tx_mem_rw(tx, r->lo + off, buf, len, write);
	ssize_t n = write ? pwrite(tx->mem_fd, buf, len, (off_t)(r->lo + off))
			  : pread(tx->mem_fd, buf, len, (off_t)(r->lo + off));
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int rw_failed(struct tx *tx, int ret, uint64_t addr, bool write)
{
	if (sync_process_ending(tx))
		return tx_died(tx);
	return lp_fail(tx->d, LP_EXIT_ABORTED, "%s 0x%lx failed: %s (was the library unmapped?)",
		       write ? "writing" : "reading", (unsigned long)addr, strerror(-ret));
}

/*
 * Before a write: run @r's bytes must still be what the walk last read or wrote there
 * (tx->img). Anything else was written by someone else (the program, a debugger): a
 * forward walk fails, to roll back; a roll-back takes the bytes as they are and
 * writes over them. A write that lands between this read and ours stays unseen.
 */
static int recheck_run(struct tx *tx, const struct lp_run *r)
{
	uint8_t now[4096], *img = tx->img + r->off;
	size_t len = r->hi - r->lo;

	if (pread(tx->mem_fd, now, len, (off_t)r->lo) != (ssize_t)len || !memcmp(now, img, len))
		return 0;	/* unreadable: the write fails and says why */
	for (size_t i = r->first; i < r->first + r->nsites; i++) {
		const struct lp_site *s = &tx->plan->sites[i];
		size_t at = s->addr - r->lo;
		if (memcmp(now + at, img + at, s->len) && tx->forward)
			return tx_foreign_write(tx, s);
	}
	memcpy(img, now, len);	/* between the sites: bytes we do not change */
	return 0;
}

/*
 * Bytes [from, to_excl) of every site to tx->to (the head as int3 with @head_int3), run by
 * run; with @recheck, each run is read again first (recheck_run).
 */
static int write_sites(struct tx *tx, size_t from, size_t to_excl, bool head_int3, bool recheck)
{
	uint8_t old[4096];
	int ret;

	for (size_t k = 0; k < tx->nruns; k++) {
		const struct lp_run *r = &tx->runs[k];
		uint8_t *img = tx->img + r->off;
		size_t len = r->hi - r->lo, a = len, b = 0;
		if (recheck && (ret = recheck_run(tx, r)))
			return ret;
		memcpy(old, img, len);
		for (size_t i = r->first; i < r->first + r->nsites; i++) {
			const struct lp_site *s = &tx->plan->sites[i];
			size_t lo = from, hi = to_excl < s->len ? to_excl : s->len, at = s->addr - r->lo;
			for (size_t j = lo; j < hi; j++) {
				uint8_t v = j == 0 && head_int3 ? X86_INT3 : tx->to[i][j];
				if (img[at + j] == v)
					continue;
				img[at + j] = v;	/* the changed range, from the sites' bytes only */
				a = a < at + j ? a : at + j;
				b = b > at + j + 1 ? b : at + j + 1;
			}
		}
		if (a >= b)
			continue;	/* nothing changes in this run */
		ret = run_rw(tx, r, a, b - a, true);
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
			x86_emulate_jmp(&r, t->park_site);
			ret = pt_setregs(t->tid, &r);
		}
		if (!ret)
			ret = tx_resume(tx, t, 0);
		if (ret && ret != -ESRCH)
			return ret;
	}
	return 0;
}

/* One of the three phases: which bytes of every site it writes, and its sync. */
struct phase {
	const char *write_step, *sync_step;	/* fault points (lp_tx_fault) and log names */
	const char *what;			/* what it writes, for the log */
	size_t from, to_excl;			/* the bytes of each site written */
	bool head_int3;				/* byte 0 becomes an int3, not the new byte */
	bool moves_threads;			/* its sync moves threads out of displaced bytes */
	bool holds_after;			/* its sync holds a thread for the next write */
	int idx;				/* in lp_tx_stats.phase_ms */
};

static const struct phase INT3_PHASE = {
	"int3", "sync1", "int3", 0, 1, .head_int3 = true, .moves_threads = true,
	.holds_after = true, .idx = 0,
};
static const struct phase TAIL_PHASE = {
	"tail", "sync2", "tails", 1, LP_SITE_MAX, .holds_after = true, .idx = 1,
};
static const struct phase HEAD_PHASE = { "head", "sync3", "heads", 0, 1, .idx = 2 };

/* @first: the walk's first write, over the bytes transition() has just read. */
static int run_phase(struct tx *tx, const struct phase *ph, bool first)
{
	struct timespec t0;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((ret = write_sites(tx, ph->from, ph->to_excl, ph->head_int3, !first)))
		return ret;
	if (ph == &HEAD_PHASE && (ret = unpark(tx)))
		return ret;
	if ((ret = tx_fault_point(tx, ph->write_step)))
		return ret;
	tx->stepout = ph->moves_threads;
	tx->syncing = ph->sync_step;
	bool check = ph == &INT3_PHASE && tx->forward && tx->opts->nranges;
	if (check)
		inside_begin(tx);
	ret = sync_threads(tx, ph->holds_after);
	tx->stepout = false;
	tx->syncing = NULL;
	if (check && inside_finish(tx) && !ret) {
		tx->inside_failed = true;
		ret = LP_ERR(LP_EXIT_ABORTED);
	}
	if (!tx_process_alive(tx))
		ret = tx_died(tx);
	if (!ret)
		ret = tx_fault_point(tx, ph->sync_step);
	if (tx->forward)
		tx->st->phase_ms[ph->idx] += lp_ms_since(&t0);
	LOG(tx, "%s%s: wrote %s, synced %zu threads in %.3f ms (%u stops so far, %u left "
	    "blocked)%s%s", tx->forward ? "" : "roll-back ", ph->sync_step, ph->what, tx->ts.n,
	    lp_ms_since(&t0), tx->st->thread_stops, tx->st->blocked_left_alone, ret ? ": " : "",
	    ret ? tx->d->msg : "");
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
		ret = run_phase(tx, &INT3_PHASE, true);
		if (ret && (tx->forward || !tx_process_alive(tx)))
			return ret;
		first = first ? first : ret;
		ret = run_phase(tx, &TAIL_PHASE, false);
		if (ret && (tx->forward || !tx_process_alive(tx)))
			return ret;
		first = first ? first : ret;
	}
	tx->entered |= tx->forward;
	if (tail_differs || head_differs)
		ret = run_phase(tx, &HEAD_PHASE, !tail_differs);
	return first ? first : ret;
}

/* proc_maps_walk() callback: the mapping of one loaded patch's memfd at its base (1). */
static int has_image(const struct lp_maps_line *m, void *arg)
{
	const struct lp_load_image *im = arg;

	return m->start == im->base && m->dev == im->dev && m->inode == im->inode;
}

/*
 * Whether fork child @t has every patch this transaction mapped: it does when it was
 * forked after the mapping, which its fork event, reaped later, does not tell.
 */
static bool child_has_loads(struct tx *tx, const struct lp_thread *t)
{
	for (unsigned int i = 0; i < tx->st->loaded; i++)
		if (proc_maps_walk(t->tid, has_image, &tx->opts->loads[i]) != 1)
			return false;
	return true;
}

/*
 * A fork child copied SIGTRAP's disposition while the shield's handler was it: the
 * program's is put back in the child, through its own memory.
 */
static void shield_off_child(struct tx *tx, struct lp_thread *t)
{
	char path[64];

	if (!tx->st->shielded)
		return;
	snprintf(path, sizeof(path), "/proc/%d/mem", t->tid);
	struct lp_shield c = tx->shield;
	c.via = t->tid;
	c.installed = true;
	if ((c.mem_fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return;
	struct lp_inject in = { .tid = t->tid, .via = t->tid, .mem_fd = c.mem_fd,
				.insn = c.no_ret ? tx->syscall_insn : shield_addr(c.base, lp_shield_tramp),
				.resume_at = c.no_ret ? 0 : shield_resume_block(&c),
				.deadline = &tx->deadline };
	struct lp_injector inj = { inject_syscall, &in, in.why };
	struct user_regs_struct r;
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	if (pt_getregs(t->tid, &r) || shield_remove(&c, &inj, r.rsp) || shield_retire(&c))
		LOG(tx, "fork child %d: SIGTRAP's disposition could not be put back", t->tid);
	close(c.mem_fd);
	if (in.gone)
		t->state = TH_GONE;
}

/*
 * A fork child copied the text at some moment: give it the final bytes, then let it
 * go. A child without --load's patches keeps the code it forked with: a jump there
 * would crash it.
 */
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
			if (w < 0 && errno == EINTR && lp_ms_since(&t0) < tx->timeout_ms)
				continue;	/* never hang: past the timeout it is let go as it is */
			if (w < 0 || !WIFSTOPPED(status))
				t->state = TH_GONE;
			else
				t->state = TH_STOPPED;
		}
		if (t->state != TH_STOPPED)
			continue;
		bool old = tx->st->loaded && !child_has_loads(tx, t);
		for (size_t k = 0; k < tx->plan->nsites; k++) {
			const struct lp_site *s = &tx->plan->sites[k];
			const uint8_t *want = old ? tx->bytes[tx->plan->nsites + k] : tx->to[k];
			uint8_t cur[LP_SITE_MAX];
			if (!pt_read(t->tid, s->addr, cur, s->len) && memcmp(cur, want, s->len))
				(void)!pt_write(t->tid, s->addr, want, s->len);
		}
		shield_off_child(tx, t);
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

/* A thread stopped for an injection: the one held for the next write, else one stopped now. */
static struct lp_thread *held_or_stop_one(struct tx *tx)
{
	struct lp_thread *h = tx->held ? threads_find(&tx->ts, tx->held) : NULL;

	return h && h->state == TH_STOPPED ? h : sync_stop_one(tx);
}

/* After the walks: any thread still stopped with no signal to deliver, else one stopped now. */
static struct lp_thread *stopped_or_stop_one(struct tx *tx)
{
	for (size_t i = 0; i < tx->ts.n; i++)
		if (tx->ts.v[i].state == TH_STOPPED && !tx->ts.v[i].sig && !tx->ts.v[i].child &&
		    !tx->ts.v[i].sharer)	/* a vfork child has its own descriptors */
			return &tx->ts.v[i];
	return sync_stop_one(tx);
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
 * The shield (docs/design.md §11) before the first write: its region, the table for
 * the forward walk, and the handler as SIGTRAP's disposition, through the thread held
 * for the write. Without it the transaction runs as before, our death mid-way fatal
 * to the process: that is said with -v and in the report, never a failure.
 */
static void shield_up(struct tx *tx)
{
	struct lp_diag d = { 0 };
	struct lp_inject in;
	bool listening = false;
	pid_t tid = 0;
	int ret = 0;

	char frz[160];
	if (tx->opts->unshielded)
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "LP_NO_SHIELD is set");
	if (tx->opts->where_only || !tx->plan->nsites || tx->opts->unshielded)
		goto without;
	/* No call runs in a frozen process: its threads only run again once thawed. */
	if (proc_frozen(tx->pid, tx->pid, frz, sizeof(frz))) {
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "the cgroup freezer holds the "
			 "process (%s), so no call can run in it", frz);
		goto without;
	}
	tx->shield.no_ret = proc_shadow_stack(tx->via);
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	/*
	 * Not a vfork child (it shares the memory, not the stack it returns to) nor a fork
	 * child; in a stopped process, one of its group-stopped threads, put back afterwards.
	 */
	struct lp_thread *h = held_or_stop_one(tx);
	if (h && (h->child || h->sharer || h->sig))
		h = stopped_or_stop_one(tx);
	listening = !h && (h = sync_stop_listening(tx));
	if (!h) {
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "no thread could be stopped");
		goto without;
	}
	tid = h->tid;
	struct lp_injector inj = tx_injector(tx, h, &in);
	ret = shield_prepare(&tx->shield, &inj, &d);
	tx_injected(tx, h, &in);
	tx->st->shield_made = tx->shield.made;
	if (ret || h->state == TH_GONE) {
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "%s",
			 ret ? d.msg : "its thread exited");
		goto without;
	}
	inj = tx_injector(tx, h, &in);
	shield_finish(&tx->shield, &inj);
	tx_injected(tx, h, &in);
	if ((ret = shield_arm(&tx->shield, tx->plan, tx->forward,
			      tx->forward && tx->opts->nranges != 0))) {
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "%s", ret == -E2BIG ?
			 "more sites than its table holds" : strerror(-ret));
		goto without;
	}
	struct user_regs_struct r;
	if ((ret = pt_getregs(h->tid, &r))) {
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "its thread went away");
		goto without;
	}
	inj = tx_injector(tx, h, &in);
	ret = shield_install(&tx->shield, &inj, r.rsp, tx->trap_sensitive);
	tx_injected(tx, h, &in);
	if (ret || !tx->shield.installed) {
		snprintf(tx->st->shield_why, sizeof(tx->st->shield_why), "rt_sigaction in the process "
			 "failed: %s", strerror(ret < 0 && ret > -LP_ERR_BASE ? -ret : EIO));
		goto without;
	}
	/* From now on the disposition to keep is the handler's (trap.c repairs a reset). */
	tx->sigs.ignored = false;
	tx->sigs.caught = tx->sigs.saved = true;
	memcpy(tx->sigs.act, tx->shield.ours, sizeof(tx->sigs.act));
	tx->st->shielded = true;
	LOG(tx, "shield up: handler at 0x%" PRIx64 "%s", tx->shield.base,
	    tx->shield.made ? " (region made)" : "");
	if (listening)
		sync_listen_again(tx, threads_find(&tx->ts, tid));
	return;
without:
	if (listening)
		sync_listen_again(tx, threads_find(&tx->ts, tid));
	if (tx->st->shield_why[0])
		LOG(tx, "no shield: %s; livepatch's death mid-way would be fatal to process %d",
		    tx->st->shield_why, tx->pid);
	if (tx->trap_sensitive && !tx->shield.installed)
		trap_save_disposition(tx, held_or_stop_one(tx));
}

/* The walk's direction, and the shield's table with it (before the walk's first write). */
static void walk_towards(struct tx *tx, const uint8_t (*to)[LP_SITE_MAX], bool forward)
{
	tx->to = to;
	tx->forward = forward;
	if (tx->shield.installed && shield_arm(&tx->shield, tx->plan, forward,
					       forward && tx->opts->nranges))
		LOG(tx, "the shield's table could not be written for the %s walk",
		    forward ? "forward" : "backward");
}

static int settle(struct tx *tx)
{
	struct timespec t0;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (tx->handlers || tx->opts->nranges)	/* the maps, read while no thread is held for it */
		(void)frames_prepare(&tx->stacks);
	for (int round = 1; !ret; round++) {
		tx->sync0 = true;
		ret = sync_threads(tx, true);
		tx->sync0 = false;
		if (!tx_process_alive(tx))
			ret = tx_died(tx);
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
	if (!ret)
		shield_up(tx);
	if (!ret)
		ret = tx_fault_point(tx, "sync0");
	tx->st->sync0_ms = lp_ms_since(&t0);
	LOG(tx, "sync0: nothing written, synced %zu threads in %.3f ms%s%s", tx->ts.n,
	    tx->st->sync0_ms, ret ? ": " : "", ret ? tx->d->msg : "");
	return ret;
}

#define INJECT_TRIES 64

/*
 * A thread of the process's own to run --load's system calls: one stopped or stopped
 * now; in a stopped process, one of its group-stopped threads (@listening: to be put
 * back into its group stop afterwards, sync_listen_again()).
 */
static struct lp_thread *injection_thread(struct tx *tx, bool *listening)
{
	struct lp_thread *t = NULL;

	/* A signal may stop the thread before the interrupt does: it is passed on, try again. */
	for (int i = 0; i < INJECT_TRIES && !t && tx_process_alive(tx); i++)
		t = stopped_or_stop_one(tx);
	*listening = false;
	if (!t && (t = sync_stop_listening(tx)))
		*listening = true;
	return t;
}

/*
 * --load's patches out again after a failure. Not when a thread may have run one: a
 * trap sent it there, or a jump into it was complete for a moment. It may still be
 * there, or return there: the patch stays, unused (lp_tx_stats.load_kept).
 */
static void unmap_loads(struct tx *tx)
{
	const struct lp_tx_opts *o = tx->opts;

	if (!tx->st->loaded)
		return;
	if (tx->entered || tx->st->traps_emulated) {
		tx->st->load_kept = true;
		return;
	}
	bool listening = false;
	struct lp_thread *t = injection_thread(tx, &listening);
	if (!t) {
		tx->st->load_kept = true;
		return;
	}
	struct lp_inject in;
	struct lp_injector inj = tx_injector(tx, t, &in);
	for (size_t i = 0; i < tx->st->loaded; i++)
		if (load_unmap(&inj, o->loads[i].base, o->loads[i].size))
			tx->st->load_kept = true;
	tx_injected(tx, t, &in);
	if (listening)
		sync_listen_again(tx, threads_find(&tx->ts, in.tid));
}

/* --load: every patch mapped through one stopped thread, then the caller's probes. */
static int map_loads(struct tx *tx)
{
	const struct lp_tx_opts *o = tx->opts;
	int ret = 0;

	if (!o->nloads)
		return 0;
	bool listening;
	struct lp_thread *t = injection_thread(tx, &listening);
	if (!t)
		return lp_fail(tx->d, LP_EXIT_ABORTED, "no thread of process %d could be stopped to "
			       "load the patch; nothing was written (retry)", tx->pid);
	struct lp_inject in;
	struct lp_injector inj = tx_injector(tx, t, &in);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; !ret && i < o->nloads; i++) {
		ret = load_map(&inj, tx->pid, tx->via, tx->mem_fd, &o->loads[i], tx->d);
		if (!ret)
			tx->st->loaded++;
	}
	tx_injected(tx, t, &in);
	if (listening)
		sync_listen_again(tx, threads_find(&tx->ts, in.tid));
	tx->st->load_ms = lp_ms_since(&t0);
	LOG(tx, "loaded %u patches in %.3f ms", tx->st->loaded, tx->st->load_ms);
	if (!ret && o->loaded)
		ret = o->loaded(o->loaded_arg, &tx->mid_lo, &tx->mid_hi, tx->d);
	if (!ret)
		ret = tx_fault_point(tx, "load");
	if (ret)
		unmap_loads(tx);
	return ret;
}

/*
 * Between two checks of who is inside (docs/design.md §9), nothing of ours is in the
 * text: the threads run for @ms while their stops are handled as they come (signals
 * passed on, group stops kept), and fork children, which hold the old bytes, go.
 */
static int idle(struct tx *tx, long ms)
{
	struct timespec until = lp_time_after(CLOCK_MONOTONIC, (unsigned int)ms);

	release_children(tx);
	while (lp_ms_since(&until) < 0) {
		int status;
		long left_us = (long)(-lp_ms_since(&until) * 1000) + 1;
		tx->env.tick_in(left_us < LP_TICK_US ? left_us : LP_TICK_US);
		pid_t w = events_reap(tx, -1, &status, 0);
		if (w < 0 && errno == ECHILD)
			return tx_died(tx);
		if (w < 0 && *tx->env.cancel)
			return tx_fault_point(tx, "signal");
		if (w < 0)
			continue;
		int ret = events_on_status(tx, w, status, false);
		if (ret)
			return ret;
		if (tx->exec_seen || !tx_process_alive(tx))
			return tx_died(tx);
		release_children(tx);
	}
	return 0;
}

/* The check of who is inside without a walk: --where, or an --unload of an unused patch. */
static int check_only(struct tx *tx)
{
	tx->stepout = true;	/* group-stopped threads are looked at too */
	inside_begin(tx);
	int ret = sync_threads(tx, false);
	tx->stepout = false;
	if (inside_finish(tx) && !ret) {
		tx->inside_failed = true;
		ret = LP_ERR(LP_EXIT_ABORTED);
	}
	return ret;
}

/*
 * Someone stayed inside until the deadline: the failure names them, with what the
 * last check saw (lp_tx_opts.inside holds their backtraces).
 */
static int inside_failure(struct tx *tx, unsigned int checks, double waited_ms)
{
	const struct lp_inside *in = tx->opts->inside;
	char who[1024];
	size_t n = in ? in->n : 0;

	inside_names(tx, who, sizeof(who));
	return lp_fail(tx->d, LP_EXIT_ABORTED, "%zu thread%s stayed inside %s for %.0f ms (%u "
		       "check%s): %s; %s (retry when %s left, raise --timeout%s)", n,
		       n == 1 ? "" : "s", tx->opts->nunmaps ? "the code to unload" :
		       "a function being replaced", waited_ms, checks, checks == 1 ? "" : "s", who,
		       tx->written ? "the patch was rolled back" : "nothing was changed",
		       n == 1 ? "it has" : "they have", tx->opts->nunmaps ? "" : ", or drop --safe");
}

#define BACKOFF_FIRST_MS 1
#define BACKOFF_MAX_MS 100

/*
 * The walk, again and again while a check finds a thread inside (docs/design.md §9):
 * each failed check rolls back, lets the threads run a while (1, 2, 4 .. 100 ms), and
 * starts over, until timeout_ms from the first check.
 */
static int walk_checked(struct tx *tx, const uint8_t (*to_new)[LP_SITE_MAX],
			const uint8_t (*to_old)[LP_SITE_MAX], int *back)
{
	struct lp_inside *in = tx->opts->inside;
	struct timespec t0;
	long backoff = BACKOFF_FIRST_MS;
	unsigned int checks = 0;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		tx->inside_failed = false;
		if (in)	/* from the first attempt to the start of the last */
			in->waited_ms = checks ? lp_ms_since(&t0) : 0;
		ret = tx->plan->nsites ? transition(tx) : check_only(tx);
		checks += tx->opts->nranges != 0;
		if (in) {
			in->checks = checks;
			in->ok = !tx->inside_failed && !ret;
		}
		if (!tx->inside_failed || tx->exec_seen || !tx_process_alive(tx))
			return ret;
		unsigned int wait = tx->opts->wait_ms ? tx->opts->wait_ms : tx->timeout_ms;
		if (lp_ms_since(&t0) + (double)backoff >= wait)
			return inside_failure(tx, checks, lp_ms_since(&t0));
		LOG(tx, "check %u: %zu thread%s inside; %s, again in %ld ms", checks,
		    in ? in->n : 0, in && in->n == 1 ? "" : "s",
		    tx->written ? "rolling back" : "nothing written", backoff);
		if (tx->written) {
			walk_towards(tx, to_old, false);
			*back = transition(tx);
			if (*back)
				return inside_failure(tx, checks, lp_ms_since(&t0));
			walk_towards(tx, to_new, true);
		}
		if ((ret = idle(tx, backoff)))
			return ret;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
}

/* --unload: the regions out, through one stopped thread, once nobody is inside them. */
static int unmap_regions(struct tx *tx)
{
	const struct lp_tx_opts *o = tx->opts;

	if (!o->nunmaps)
		return 0;
	bool listening = false;
	struct lp_thread *t = injection_thread(tx, &listening);
	if (!t)
		return lp_fail(tx->d, LP_EXIT_ABORTED, "no thread of process %d could be stopped to "
			       "unmap the patch; %s (retry)", tx->pid,
			       tx->written ? "its functions were reverted, the patch stays mapped" :
			       "nothing was changed");
	struct lp_inject in;
	struct lp_injector inj = tx_injector(tx, t, &in);
	int ret = 0;
	for (size_t i = 0; !ret && i < o->nunmaps; i++) {
		ret = load_unmap(&inj, o->unmaps[i].lo, o->unmaps[i].hi - o->unmaps[i].lo);
		if (!ret)
			tx->st->unmapped++;
	}
	char why[sizeof(in.why)];
	snprintf(why, sizeof(why), "%s", inj.why ? inj.why : "");
	tx_injected(tx, t, &in);
	if (listening)
		sync_listen_again(tx, threads_find(&tx->ts, in.tid));
	if (!ret)
		return 0;
	/* The caller rolls the reverts back: the patch stays mapped and in use, as before. */
	uint64_t at = o->unmaps[tx->st->unmapped].lo;
	if (why[0])
		return lp_fail(tx->d, LP_EXIT_PROCESS, "process %d may not munmap the patch at 0x%"
			       PRIx64 ": %s; %s (allow munmap in the filter, or keep the patch)",
			       tx->pid, at, why, tx->written ? "the patch was rolled back" :
			       "nothing was changed");
	return lp_fail(tx->d, LP_EXIT_ABORTED, "munmap of the patch at 0x%" PRIx64 " failed in "
		       "process %d: %s; %s (retry)", at, tx->pid,
		       strerror(ret < 0 && ret > -LP_ERR_BASE ? -ret : EIO),
		       tx->written ? "the patch was rolled back" : "nothing was changed");
}

/*
 * The guard's walk (lp_tx_opts.recover): when every site holds its new bytes, the
 * transaction that died had written them all, and they stay; else every site goes
 * back to its old bytes, from whatever it holds.
 */
static int recover_walk(struct tx *tx, const uint8_t (*to_new)[LP_SITE_MAX])
{
	bool complete = true;

	for (size_t i = 0; i < tx->plan->nsites && complete; i++) {
		const struct lp_site *s = &tx->plan->sites[i];
		uint8_t cur[LP_SITE_MAX];
		int ret = tx_mem_rw(tx, s->addr, cur, s->len, false);
		if (ret)
			return lp_fail(tx->d, LP_EXIT_PROCESS, "cannot read process %d at 0x%" PRIx64
				       ": %s", tx->pid, s->addr, strerror(ret < 0 ? -ret : EIO));
		complete = !memcmp(cur, to_new[i], s->len);
	}
	LOG(tx, "recovery: %s", complete ? "every site complete, kept" : "rolling back");
	if (complete)
		return 0;
	int ret = transition(tx);
	tx->st->rolled_back = !ret;
	return ret;
}

static int run_walks(struct tx *tx, const uint8_t (*to_new)[LP_SITE_MAX],
		     const uint8_t (*to_old)[LP_SITE_MAX])
{
	/* A recovery walks back from the start: its traps wait for the old bytes. */
	tx->to = tx->opts->recover ? to_old : to_new;
	tx->forward = !tx->opts->recover;
	int ret = settle(tx);
	if (!ret && tx->opts->recover)
		return recover_walk(tx, to_new);
	if (!ret)
		ret = map_loads(tx);
	/* Aborted before the first write (a timeout, SIGINT): the process is as it was. */
	if (ret == LP_ERR(LP_EXIT_ABORTED) && !tx->written)
		tx->st->rolled_back = true;
	if (ret)
		return ret;
	if (tx->opts->where_only) {
		ret = check_only(tx);
		return ret == LP_ERR(LP_EXIT_ABORTED) && tx->inside_failed ? 0 : ret;
	}
	int back_failed = 0;
	ret = tx->opts->nranges ? walk_checked(tx, to_new, to_old, &back_failed) : transition(tx);
	if (!ret)
		ret = unmap_regions(tx);
	if (back_failed) {
		if (sync_process_ending(tx))
			return tx_died(tx);
		return lp_fail(tx->d, LP_EXIT_INTERNAL, "roll-back failed after: %s", tx->d->msg);
	}
	if (!ret || tx->exec_seen)
		return ret;
	if (!tx->written) {	/* a check failed with nothing of ours in the text */
		tx->st->rolled_back = true;
		unmap_loads(tx);
		return ret;
	}
	if (!tx_process_alive(tx))
		return tx_died(tx);
	/* Roll back with the same protocol; the first failure stays the reported one. */
	walk_towards(tx, to_old, false);
	LOG(tx, "rolling back: %s", tx->d->msg);
	int back = transition(tx);
	tx->st->rolled_back = !back;
	if (!back)
		unmap_loads(tx);
	if (back && sync_process_ending(tx))
		return tx_died(tx);
	if (back)
		return lp_fail(tx->d, LP_EXIT_INTERNAL, "roll-back failed after: %s", tx->d->msg);
	return ret;
}

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

/* Both walks' bytes, the runs and their image, /proc/PID/mem: the walk's working set. */
static int tx_open(struct tx *tx, const struct lp_tx_opts *o)
{
	const struct lp_plan *plan = tx->plan;
	char path[64];

	tx->bytes = calloc(plan->nsites * 2 + 1, LP_SITE_MAX);
	tx->runs = calloc(plan->nsites + 1, sizeof(*tx->runs));
	if (!tx->bytes || !tx->runs)
		return -ENOMEM;
	tx->nruns = plan_runs(plan, tx->runs);
	const struct lp_run *last = tx->nruns ? &tx->runs[tx->nruns - 1] : NULL;
	tx->img = malloc((last ? last->off + last->hi - last->lo : 0) + 1);
	if (!tx->img)
		return -ENOMEM;
	for (size_t i = 0; i < plan->nsites; i++) {
		memcpy(tx->bytes[i], plan->sites[i].new_bytes, LP_SITE_MAX);
		memcpy(tx->bytes[plan->nsites + i], plan->sites[i].old_bytes, LP_SITE_MAX);
	}
	tx->env = o->env;
	tx->fault = o->fault;
	tx->opts = o;
	snprintf(path, sizeof(path), "/proc/%d/mem", tx->via);
	tx->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	tx->xol = (struct lp_xol){ .via = tx->via, .mem_fd = tx->mem_fd };
	tx->shield = (struct lp_shield){ .via = tx->via, .mem_fd = tx->mem_fd };
	/* Known before the first stop: a thread may be in its handler (trap.c). */
	if (tx->mem_fd >= 0)
		(void)shield_find(&tx->shield, o->recover);
	tx->stacks = (struct lp_stacks){ .via = tx->via, .mem_fd = tx->mem_fd };
	return 0;
}

static void tx_close(struct tx *tx)
{
	unwind_close(tx->unwinder);
	if (tx->mem_fd >= 0)
		close(tx->mem_fd);
	threads_free(&tx->ts);
	frames_free(&tx->stacks);
	free(tx->xol_to);
	free(tx->xol_copy);
	free(tx->pauses);
	free(tx->img);
	free(tx->runs);
	free(tx->bytes);
}

/*
 * The program's disposition back once no int3 of ours is left in the text. After a
 * roll-back that failed, the handler stays: it keeps the process alive.
 */
static void shield_down(struct tx *tx)
{
	if (!tx->shield.installed || tx->exec_seen || !tx_process_alive(tx))
		return;
	for (size_t i = 0; i < tx->plan->nsites; i++) {
		uint8_t b;
		if (!tx_mem_rw(tx, tx->plan->sites[i].addr, &b, 1, false) && b == X86_INT3) {
			LOG(tx, "an int3 is left at 0x%" PRIx64 ": the shield stays up",
			    tx->plan->sites[i].addr);
			return;
		}
	}
	struct lp_thread *t = stopped_or_stop_one(tx);
	bool listening = !t && (t = sync_stop_listening(tx));
	if (!t) {
		LOG(tx, "no thread could be stopped to take the shield down: it stays up");
		return;
	}
	pid_t tid = t->tid;
	struct lp_inject in;
	struct user_regs_struct r;
	struct lp_injector inj = tx_injector(tx, t, &in);
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	int ret = pt_getregs(t->tid, &r);
	if (!ret)
		ret = shield_remove(&tx->shield, &inj, r.rsp);
	tx_injected(tx, t, &in);
	if (!ret)
		ret = shield_retire(&tx->shield);
	LOG(tx, "shield %s", ret ? "could not be taken down: it stays up" : "down");
	if (listening)
		sync_listen_again(tx, threads_find(&tx->ts, tid));
}

int transact_run(pid_t pid, const struct lp_plan *plan, const struct lp_tx_opts *o,
		 struct lp_tx_stats *st, struct lp_diag *d)
{
	struct tx tx = { .pid = pid, .via = o->via ? o->via : pid, .plan = plan,
			 .timeout_ms = o->timeout_ms, .st = st, .d = d, .mem_fd = -1,
			 .mid_lo = o->mid_lo, .mid_hi = o->mid_hi };
	struct timespec t0;
	int ret = tx_open(&tx, o);

	if (ret) {
		tx_close(&tx);
		return ret;
	}
	read_signal_state(&tx);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = seize_all(&tx.ts, pid, d);
	st->threads = (unsigned int)tx.ts.n;
	st->seize_ms = lp_ms_since(&t0);
	tx.log = o->log;
	LOG(&tx, "seized %u threads of process %d in %.3f ms", st->threads, pid, st->seize_ms);
	if (!ret && tx.mem_fd < 0)
		ret = lp_fail(d, LP_EXIT_PROCESS, "cannot open /proc/%d/mem for writing (run as root)",
			      tx.via);
	if (!ret)
		ret = run_walks(&tx, tx.bytes, tx.bytes + plan->nsites);
	shield_down(&tx);
	if (!tx.exec_seen && tx_process_alive(&tx) && trap_ignored_reset(&tx))
		trap_ignore_again(&tx, stopped_or_stop_one(&tx));
	release_children(&tx);
	for (size_t i = 0; i < tx.ts.n; i++)	/* hold no stop that was reaped but not resumed */
		if (tx.ts.v[i].state == TH_STOPPED || tx.ts.v[i].state == TH_PARKED)
			(void)!tx_resume(&tx, &tx.ts.v[i], 0);
	st->total_ms = lp_ms_since(&t0);
	finish_stats(&tx);
	tx_close(&tx);
	return ret;
}
