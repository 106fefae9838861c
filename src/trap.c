/*
 * SIGTRAP during a transaction (docs/design.md §4, "Signal state"): a trap on one of
 * our int3s is emulated in the thread's registers, never delivered; the kernel's
 * reset of a blocked or ignored SIGTRAP is put back; the program's own SIGTRAPs wait.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "ptrace_ops.h"
#include "trap.h"

/*
 * What a thread that traps on a site's int3 executes instead: the instruction
 * the walk is writing, emulated in its registers (docs/design.md §4, "Traps").
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
void trap_note_mask(struct tx *tx, struct lp_thread *t)
{
	uint64_t mask;

	if (tx->trap_sensitive && !t->mask_known && !pt_getsigmask(t->tid, &mask)) {
		t->mask_known = true;
		t->trap_blocked = mask & 1ULL << (SIGTRAP - 1);
	}
}

/*
 * Our trap was a forced SIGTRAP: if the thread blocked it or the process ignores it,
 * the kernel reset the disposition to the default (and unblocked it in the thread).
 * Put both back, through this thread.
 */
static int repair_disposition(struct tx *tx, struct lp_thread *t, uint64_t sp)
{
	struct lp_inject in;
	struct lp_injector inj = tx_injector(tx, t, &in);
	bool reblock = false;
	uint64_t mask;
	/*
	 * Setting SIG_IGN discards the SIGTRAPs pending in every thread, a trap of ours
	 * not yet reported among them (that thread would run on from inside the int3's
	 * instruction): an ignored SIGTRAP is put back only once the walk is over.
	 */
	int ret = tx->sigs.ignored ? 0 : sigstate_repair(&tx->sigs, &inj, sp, &reblock);

	tx_injected(tx, t, &in);
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

bool trap_ignored_reset(const struct tx *tx)
{
	return tx->trap_sensitive && tx->sigs.ignored && sigstate_changed(&tx->sigs);
}

void trap_ignore_again(struct tx *tx, struct lp_thread *h)
{
	struct user_regs_struct r;

	if (!h || pt_getregs(h->tid, &r)) {
		LOG(tx, "SIGTRAP could not be set back to ignored: no stopped thread");
		return;
	}
	struct lp_inject in;
	struct lp_injector inj = tx_injector(tx, h, &in);
	bool reblock;
	tx->deadline = lp_time_after(CLOCK_MONOTONIC, tx->timeout_ms);
	if (sigstate_repair(&tx->sigs, &inj, r.rsp, &reblock) < 0)
		LOG(tx, "SIGTRAP could not be set back to ignored");
	tx_injected(tx, h, &in);
	tx->st->dispositions_restored = tx->sigs.restored;
}

/*
 * A SIGTRAP of the program's own, in a process where our traps reset the
 * disposition: delivered while one is reset and not yet put back (another thread's
 * trap, a moment ago or a moment later), it would kill the program. The thread
 * keeps it, stopped, until the transaction ends: no int3 of ours is left then, and
 * every trap has been handled and its reset repaired.
 */
bool trap_hold_own(struct tx *tx, struct lp_thread *t, int sig)
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
 * from a remembered phase: that closes both races of docs/design.md §4 (a trap
 * reported after the int3 was removed; a trap handled with stale data).
 */
int trap_handle(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r,
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
	return tx_resume(tx, t, 0);
}

void trap_save_disposition(struct tx *tx, struct lp_thread *h)
{
	struct user_regs_struct r;

	if (!h || h->state != TH_STOPPED || pt_getregs(h->tid, &r)) {
		LOG(tx, "SIGTRAP's handler not saved: no stopped thread before the first write");
		return;
	}
	struct lp_inject in;
	struct lp_injector inj = tx_injector(tx, h, &in);
	int ret = sigstate_save(&tx->sigs, &inj, r.rsp);
	tx_injected(tx, h, &in);
	LOG(tx, "SIGTRAP's disposition %s", ret ? "could not be saved" : "saved");
}
