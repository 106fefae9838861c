/*
 * What every step of the transaction uses: the site lookup, fault points, memory
 * access, resuming a thread (and timing its pause), injections, the process's end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ptrace_ops.h"
#include "tx.h"

const struct lp_site *tx_site_at(const struct tx *tx, uint64_t addr, size_t *idx)
{
	const struct lp_site *s = plan_find_site(tx->plan, addr);

	if (s && idx)
		*idx = (size_t)(s - tx->plan->sites);
	return s;
}

/*
 * A fault injection point, as CRIU does: lp_tx_fault.at fails the walk at that step
 * (sync0, int3, sync1, tail, sync2, head, sync3); lp_tx_fault.sleep_ms pauses at
 * every step so a test can signal livepatch mid-transaction.
 */
int tx_fault_point(struct tx *tx, const char *name)
{
	if (tx->fault.kill_at && !strcmp(tx->fault.kill_at, name))
		kill(getpid(), SIGKILL);
	if (tx->forward && tx->fault.sleep_ms && !*tx->env.cancel) {
		struct timespec ts = { tx->fault.sleep_ms / 1000, (tx->fault.sleep_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR && !*tx->env.cancel)
			;	/* the tick goes on; a stop signal cuts the pause short */
	}
	if (tx->forward && tx->fault.at && !strcmp(tx->fault.at, name))
		return lp_fail(tx->d, LP_EXIT_ABORTED, "fault injected at %s (LP_FAULT is set; unset it)",
			       name);
	/* A roll-back is never cut short: its last sync is what drains queued traps. */
	if (tx->forward && *tx->env.cancel)
		return lp_fail(tx->d, LP_EXIT_ABORTED, "interrupted by signal %d; the patch was rolled "
			       "back (run it again when ready)", (int)*tx->env.cancel);
	return 0;
}

int tx_mem_rw(struct tx *tx, uint64_t addr, void *buf, size_t len, bool write)
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
	tx->pauses[tx->npauses++] = lp_ms_since(&t->paused_at) * 1e3;
	t->paused_at.tv_sec = 0;
}

int tx_resume(struct tx *tx, struct lp_thread *t, int sig)
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

	/*
	 * A queued trap of ours was raised before this resume, and the kernel reset the
	 * handler then, not when the trap is reported: the count from before it stays.
	 */
	if (!t->want_trap)
		t->restored_seen = tx->sigs.restored;
	if (!ret)
		t->step_armed = false;	/* PTRACE_CONT ends the kernel's single-step */
	record_pause(tx, t);
	if (ret == -ESRCH) {
		t->state = TH_GONE;
		return 0;
	}
	if (!ret)
		t->state = TH_RUNNING;
	return ret;
}

/* An injector through stopped thread @t (inject.h); tx_injected() takes back what it learnt. */
struct lp_injector tx_injector(struct tx *tx, struct lp_thread *t, struct lp_inject *in)
{
	*in = (struct lp_inject){ .tid = t->tid, .via = tx->via, .mem_fd = tx->mem_fd,
				  .insn = tx->syscall_insn, .deadline = &tx->deadline };
	in->die_at = tx->fault.kill_at;
	/* Through the shield's trampoline once it is there: our death mid-call is survived. */
	if (tx->shield.base && !tx->shield.no_ret) {
		in->insn = shield_addr(tx->shield.base, lp_shield_tramp);
		in->resume_at = shield_resume_block(&tx->shield);
	}
	return (struct lp_injector){ inject_syscall, in, in->why };
}

void tx_injected(struct tx *tx, struct lp_thread *t, const struct lp_inject *in)
{
	if (!in->resume_at)
		tx->syscall_insn = in->insn;
	if (in->gone)
		t->state = TH_GONE;
}

size_t tx_unsynced(const struct tx *tx)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->ts.n; i++) {
		const struct lp_thread *t = &tx->ts.v[i];
		n += t->state != TH_GONE && !t->child && !t->synced;
	}
	return n;
}

bool tx_process_alive(const struct tx *tx)
{
	for (size_t i = 0; i < tx->ts.n; i++)
		if (tx->ts.v[i].state != TH_GONE && !tx->ts.v[i].child)
			return true;
	return false;
}

/*
 * The process died or called exec: that, not the step that noticed it first, is
 * the outcome (exit 3), whatever failure was recorded before.
 */
int tx_died(struct tx *tx)
{
	tx->d->code = 0;
	if (tx->exec_seen)
		return lp_fail(tx->d, LP_EXIT_PROCESS, "process %d called exec during the "
			       "transaction; the new program was left alone (patch it again if "
			       "needed)", tx->pid);
	return lp_fail(tx->d, LP_EXIT_PROCESS, "process %d exited during the transaction "
		       "(nothing left to patch)", tx->pid);
}

int tx_foreign_write(struct tx *tx, const struct lp_site *s)
{
	if (!tx->forward)
		return 0;	/* a roll-back goes on: a half-written site would be worse */
	return lp_fail(tx->d, LP_EXIT_ABORTED, "the bytes of %s at 0x%lx changed during the "
		       "transaction, not by livepatch (a debugger or another patcher?); the patch "
		       "was rolled back (find who writes there, then retry)", s->func,
		       (unsigned long)s->addr);
}
