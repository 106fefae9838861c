/*
 * Threads out of the bytes a walk replaces (docs/design.md §5): a stopped thread, a
 * signal frame or a restartable call inside displaced instructions continues at the
 * same instruction of an out-of-line copy (xol.h), or is single-stepped out.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "inside.h"
#include "moveout.h"
#include "proc.h"
#include "trap.h"
#include "ptrace_ops.h"

#define ERESTARTSYS 512		/* the kernel's restart codes, seen in rax at a stop */
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514	/* restart the call unless a handler runs */
#define ERESTART_RESTARTBLOCK 516
#define FRAMES_MAX 16		/* signal frames moved per thread and sync */
#define STEP_LIMIT 64		/* single steps to leave a displaced range */

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
		if (proc_task_exiting(tx->pid, t->tid)) {	/* a dying leader is never reported */
			t->state = TH_GONE;
			return 0;
		}
		if (!late && lp_ms_since(&tx->deadline) > 0) {
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
			       TX_STATE(tx));
	if (late && t->state != TH_GONE)
		return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d did not finish an instruction inside "
			       "the bytes to replace within %u ms; %s (retry, or raise --timeout)",
			       t->tid, tx->timeout_ms,
			       TX_STATE(tx));
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
		const struct lp_site *s = tx_site_at(tx, r->rip, NULL);
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
				       TX_STATE(tx));
		if (insn[0] == 0x0f && insn[1] == 0x05)
			return -EAGAIN;	/* the caller moves it to the out-of-line copy instead */
		if ((ret = pt_step(t->tid, 0)))
			return ret == -ESRCH ? 0 : ret;
		t->stepped = t->step_armed = true;
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
	const struct lp_site *s = tx_site_at(tx, pc, idx);

	if (s && pc != s->addr)
		return s;
	if (!restart || !(s = tx_site_at(tx, pc - 2, idx)))
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
/* A stop with no signal to deliver and no fork or clone event under way: an injection resumes it. */
static bool can_carry(const struct lp_thread *t, int sig, bool in_event)
{
	return !sig && !t->child && !in_event;
}

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
		struct lp_injector inj = tx_injector(tx, t, &in);
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
		tx_injected(tx, t, &in);
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
static int move_out(struct tx *tx, struct lp_thread *t, struct user_regs_struct *r, int *sig,
		    bool in_event)
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
	if (inside && !t->group_stop && !trap_step_resets(tx, t) && !restart_pending(r)) {
		int st = step_out(tx, t, r, sig, true);
		if (st != -EAGAIN || t->state == TH_GONE)
			return st;
	}
	int ret = xol_for(tx, t, idx, can_carry(t, *sig, in_event), &to, &c);
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
		       TX_STATE(tx));
}

/* Signal frames of a stopped thread whose saved PC is inside displaced instructions. */
static int move_frames(struct tx *tx, struct lp_thread *t, uint64_t sp, int sig, bool in_event)
{
	struct lp_frame f[FRAMES_MAX];
	int n = frames_find(&tx->stacks, sp, inside_any, tx, f, FRAMES_MAX);

	for (int i = 0; i < n; i++) {
		const struct lp_xol_copy *c;
		uint64_t to, pc;
		size_t idx;
		const struct lp_site *s = displaced_at(tx, f[i].pc, false, &idx);
		int ret = xol_for(tx, t, idx, can_carry(t, sig, in_event), &to, &c);
		if (t->state == TH_GONE)
			return 0;
		if (ret || !xol_map(c, s->addr, to, f[i].pc, &pc))
			return lp_fail(tx->d, LP_EXIT_ABORTED, "thread %d runs a signal handler that "
				       "returns inside the bytes to replace of %s, and it cannot be "
				       "moved: %s; %s (retry)", t->tid, s->func,
				       tx->xol_why[0] ? tx->xol_why : "no out-of-line copy",
				       TX_STATE(tx));
		if (pwrite(tx->mem_fd, &pc, 8, (off_t)f[i].at) != 8)
			return lp_fail(tx->d, LP_EXIT_ABORTED, "cannot write the signal frame of thread "
				       "%d at 0x%lx: %s", t->tid, (unsigned long)f[i].at, strerror(errno));
		tx->st->frames_moved++;
	}
	return n < 0 && n != -ESRCH ? n : 0;
}

int moveout_frames_once(struct tx *tx, struct lp_thread *t, uint64_t sp, int sig, bool in_event)
{
	if (!tx->stepout || !tx->handlers || t->moved_frames)
		return 0;
	t->moved_frames = true;
	return move_frames(tx, t, sp, sig, in_event);
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

int moveout_examine(struct tx *tx, struct lp_thread *t, int *sig, bool in_event)
{
	struct user_regs_struct r;
	int ret = pt_getregs(t->tid, &r);

	if (ret)
		return ret == -ESRCH ? 0 : ret;
	const struct lp_site *s = tx_site_at(tx, r.rip - 1, NULL);
	if (s && r.rip - 1 == s->addr) {
		ret = pt_trap_queued(t->tid);
		if (ret == 1) {
			t->want_trap = true;
			return 1;
		}
	}
	/* Before any move: a thread in displaced bytes is inside, wherever it continues. */
	if (tx->checking && !t->checked && (ret = inside_check_stopped(tx, t, &r)) < 0)
		return ret;
	if (tx->stepout && (ret = move_out(tx, t, &r, sig, in_event)))
		return ret;
	if (t->state != TH_GONE && (ret = moveout_frames_once(tx, t, r.rsp, *sig, in_event)))
		return ret;
	note_mid(tx, t->tid, r.rip);
	return 0;
}

bool moveout_needed(struct tx *tx, struct lp_thread *t, uint64_t sp, uint64_t pc)
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
	/* Asleep at the same place since its last scan in this sync: its stack has not changed. */
	if (t->framed && t->scanned_sp == sp && t->scanned_pc == pc)
		return t->frames_inside;
	t->framed = true;
	t->scanned_sp = sp;
	t->scanned_pc = pc;
	t->frames_inside = sp && frames_find(&tx->stacks, sp, inside_any, tx, &f, 1) > 0;
	return t->frames_inside;
}
