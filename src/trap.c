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
#include "x86.h"

/*
 * A trap can change SIGTRAP's disposition: the program's is not the default, or the
 * shield's handler is installed (a thread that blocks SIGTRAP resets it).
 */
static bool sensitive(const struct tx *tx)
{
	return tx->trap_sensitive || tx->shield.installed;
}

bool trap_step_resets(struct tx *tx, struct lp_thread *t)
{
	uint64_t mask;

	if (tx->trap_sensitive)
		return true;
	return tx->shield.installed && (pt_getsigmask(t->tid, &mask) || mask & 1ULL << (SIGTRAP - 1));
}

/*
 * Whether the thread blocks SIGTRAP, seen at a stop that is not one of our traps. Also
 * before the shield is up (sync 0), when the program's default disposition makes
 * nothing sensitive yet: once it is, a trap of the thread's resets it.
 */
void trap_note_mask(struct tx *tx, struct lp_thread *t)
{
	struct user_regs_struct r;
	uint64_t mask;

	if ((!sensitive(tx) && tx->opts->unshielded) || t->mask_known ||
	    pt_getsigmask(t->tid, &mask))
		return;
	bool blocked = mask & 1ULL << (SIGTRAP - 1);
	/*
	 * In the shield's handler SIGTRAP is blocked for the handler's length (a trap
	 * taken after our death, being finished): that mask is not the thread's own.
	 */
	if (blocked && tx->shield.base && !pt_getregs(t->tid, &r) &&
	    r.rip - tx->shield.base < LP_SHIELD_CODE)
		return;
	t->mask_known = true;
	t->trap_blocked = blocked;
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
	/*
	 * Blocked again only where this trap can have reset the handler: a reset was put
	 * back since the thread last ran before its trap was raised (at this stop, or at
	 * another thread's reaped first) and it was seen blocking SIGTRAP; unseen, a reset
	 * at this very stop. A mask seen earlier is not enough alone: in the program's
	 * handler without SA_NODEFER, SIGTRAP is blocked for the handler's length only,
	 * and a thread blocked for good dies of its own next int3 (the kernel resets a
	 * blocked forced SIGTRAP to the default). An ignored SIGTRAP is put back later:
	 * its mask as seen.
	 */
	bool since = tx->sigs.restored != t->restored_seen;
	bool blocked = !t->mask_known ? ret && reblock
		       : t->trap_blocked && (tx->sigs.ignored || since);
	if (blocked && !pt_getsigmask(t->tid, &mask) && !(mask & 1ULL << (SIGTRAP - 1)))
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
	if (!sensitive(tx) || sig != SIGTRAP)
		return false;
	t->sig = sig;
	t->await_repair = true;
	t->synced = true;
	tx->awaiting++;
	return true;
}

/*
 * The bytes at site @s hold our int3 and, after it, the tail of one of the two walks'
 * bytes (written or not yet): anything else was written by someone else meanwhile.
 */
static bool ours_at(const struct lp_site *s, const uint8_t *cur)
{
	return cur[0] == X86_INT3 && (!memcmp(cur + 1, s->new_bytes + 1, s->len - 1) ||
				      !memcmp(cur + 1, s->old_bytes + 1, s->len - 1));
}


/* Run the instruction the walk writes, as the plan recorded it, in @t's registers. */
static int emulate(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r,
		   const struct lp_site *s)
{
	const struct lp_emulation *e = tx->forward ? &s->emul_new : &s->emul_old;
	struct x86_push push;

	/*
	 * Checked walks (docs/design.md §9): no new code runs before the check has passed,
	 * so a trap waits for the head write (unpark), or for the roll-back's.
	 */
	switch (tx->forward && tx->opts->nranges ? LP_EMUL_PARK : e->kind) {
	case LP_EMUL_CALL:
		push = x86_emulate_call(r, s->addr + e->len, e->target);
		return pt_write(t->tid, push.addr, &push.value, sizeof(push.value));
	case LP_EMUL_JMP:
		x86_emulate_jmp(r, e->target);
		return 0;
	case LP_EMUL_PARK:
		break;
	}
	/*
	 * Parked at the int3 itself, not past it: if livepatch dies now, the kernel lets
	 * the thread go with its trap discarded, and it runs the int3 again, which the
	 * shield takes (docs/design.md §11), instead of the bytes after it.
	 */
	x86_emulate_jmp(r, s->addr);
	int ret = pt_setregs(t->tid, r);
	if (ret)
		return ret;
	t->state = TH_PARKED;
	t->park_site = s->addr;
	return 1;
}

/*
 * A SIGTRAP from one of our int3s. Decided from the bytes at the site now, not
 * from a remembered phase: that closes both races of docs/design.md §4 (a trap
 * reported after the int3 was removed; a trap handled with stale data). What the
 * int3 stands for is the plan's record for this walk, never decoded again here;
 * the bytes read are checked against the plan's two versions of the site.
 */
int trap_handle(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r,
		const struct lp_site *s)
{
	uint8_t cur[LP_SITE_MAX];
	int ret = tx_mem_rw(tx, s->addr, cur, s->len, false);

	if (ret)
		return ret == -ESRCH ? 0 : ret;
	if (sensitive(tx) && ((ret = repair_disposition(tx, t, r->rsp)) || t->state == TH_GONE))
		return ret;
	if (cur[0] != X86_INT3) {
		x86_emulate_jmp(r, s->addr);	/* reported late: run the completed instruction */
		tx->st->traps_late++;
	} else if ((ret = emulate(tx, t, r, s)) < 0) {
		return ret == -ESRCH ? 0 : ret;
	} else if (ret) {
		tx->st->traps_parked++;		/* runs the site once the head is written (unpark) */
		t->want_trap = false;
		return 0;
	} else {
		tx->st->traps_emulated++;
	}
	int alien = cur[0] == X86_INT3 && !ours_at(s, cur) ? tx_foreign_write(tx, s) : 0;
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
		return alien;
	}
	ret = tx_resume(tx, t, 0);
	return ret ? ret : alien;
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
