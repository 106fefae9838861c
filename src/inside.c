/*
 * Who is inside (docs/design.md §9). A stopped thread is scanned (frames_scan: its
 * PC, the words after a call instruction that point into a range, the saved PCs of
 * its signal frames) and, only when the scan finds something, unwound precisely
 * (unwind.h): a hit the unwind does not have is a stale word, reported, not counted.
 * A thread asleep in the kernel is never woken for this: its PC and SP come from
 * /proc/PID/task/TID/syscall and the scan's answer stands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "inside.h"
#include "proc.h"
#include "ptrace_ops.h"

#define HITS_MAX 64

void inside_free(struct lp_inside *in)
{
	if (!in)
		return;
	free(in->v);
	free(in->stale);
	in->v = NULL;
	in->stale = NULL;
	in->n = in->cap = in->nstale = in->cap_stale = 0;
}

static void read_comm(pid_t pid, pid_t tid, char *buf, size_t cap)
{
	char path[64];

	(void)pid;	/* /proc/TID names a thread or a vfork child alike */
	snprintf(path, sizeof(path), "/proc/%d/comm", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, cap - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		n = 0;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

/* The range holding @pc, or -1. */
static int range_of(const struct tx *tx, uint64_t pc)
{
	const struct lp_tx_opts *o = tx->opts;

	for (size_t i = 0; i < o->nranges; i++)
		if (pc >= o->ranges[i].lo && pc < o->ranges[i].hi)
			return (int)i;
	return -1;
}

/* A PC at or before the site has not begun the function: it takes the new entry. */
static bool begun(const struct tx *tx, uint64_t pc, int range)
{
	const uint64_t *e = tx->opts->entries;

	return range >= 0 && !(e && e[range] && pc <= e[range]);
}

void inside_begin(struct tx *tx)
{
	struct lp_inside *in = tx->opts->inside;

	for (size_t i = 0; i < tx->ts.n; i++) {
		tx->ts.v[i].checked = false;
		tx->ts.v[i].inside = false;
	}
	if (in) {
		in->n = 0;
		in->nstale = 0;
		in->threads = 0;
	}
	tx->checking = true;
}

static struct lp_inside_thread *add_inside(struct tx *tx, const struct lp_thread *t,
					   enum lp_inside_state state)
{
	struct lp_inside *in = tx->opts->inside;

	if (!in)
		return NULL;
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 8;
		struct lp_inside_thread *v = realloc(in->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		in->v = v;
		in->cap = cap;
	}
	struct lp_inside_thread *it = &in->v[in->n++];
	memset(it, 0, sizeof(*it));
	it->tid = t->tid;
	it->state = state;
	it->syscall = -1;
	read_comm(tx->pid, t->tid, it->comm, sizeof(it->comm));
	return it;
}

static void add_stale(struct tx *tx, const struct lp_thread *t, const struct lp_hit *h)
{
	struct lp_inside *in = tx->opts->inside;

	if (!in)
		return;
	if (in->nstale == in->cap_stale) {
		size_t cap = in->cap_stale ? in->cap_stale * 2 : 8;
		struct lp_inside_stale *v = realloc(in->stale, cap * sizeof(*v));
		if (!v)
			return;
		in->stale = v;
		in->cap_stale = cap;
	}
	struct lp_inside_stale *s = &in->stale[in->nstale++];
	*s = (struct lp_inside_stale){ .tid = t->tid, .at = h->at, .value = h->value,
				       .range = h->range };
	read_comm(tx->pid, t->tid, s->comm, sizeof(s->comm));
}

/* The scan's hits that count: a PC that has not begun its function does not. */
static int scan(struct tx *tx, uint64_t pc, uint64_t sp, struct lp_hit *hits)
{
	const struct lp_tx_opts *o = tx->opts;
	int n = frames_scan(&tx->stacks, pc, sp, o->ranges, o->nranges, hits, HITS_MAX);

	if (n < 0)
		return n;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (hits[i].kind != LP_HIT_PC || begun(tx, hits[i].value, hits[i].range))
			hits[k++] = hits[i];
	return k;
}

/* The scan's hits as a thread's frames: its PC first, then the stack from its pointer up. */
static void hits_as_frames(struct lp_inside_thread *it, uint64_t pc, const struct lp_hit *h,
			   int n, int pc_range)
{
	it->unwound = false;
	it->nframes = 0;
	it->frames[it->nframes++] = (struct lp_inside_frame){ pc, 0, LP_HIT_PC, pc_range };
	for (int i = 0; i < n && it->nframes < LP_INSIDE_FRAMES; i++)
		if (h[i].kind != LP_HIT_PC)
			it->frames[it->nframes++] = (struct lp_inside_frame){
				h[i].value, h[i].at, h[i].kind, h[i].range };
}

static struct lp_unwinder *unwinder(struct tx *tx)
{
	const struct lp_tx_opts *o = tx->opts;

	if (!tx->unwinder && !tx->unwinder_failed && o->nmodules) {
		int ret = unwind_open(&tx->unwinder, tx->via, tx->mem_fd, o->modules, o->nmodules);
		if (ret) {
			tx->unwinder = NULL;
			tx->unwinder_failed = true;
			LOG(tx, "no precise unwind: %s", strerror(-ret));
		}
	}
	return tx->unwinder;
}

int inside_check_stopped(struct tx *tx, struct lp_thread *t, const struct user_regs_struct *r)
{
	struct lp_hit hits[HITS_MAX];

	if (t->checked)
		return t->inside;
	t->checked = true;
	if (tx->opts->inside)
		tx->opts->inside->threads++;
	int n = scan(tx, r->rip, r->rsp, hits);
	if (n <= 0)
		return n < 0 && n != -ESRCH ? 0 : 0;	/* unreadable stack: nothing seen */
	enum lp_inside_state state = t->group_stop ? LP_INSIDE_GROUP_STOPPED : LP_INSIDE_STOPPED;
	int pc_range = range_of(tx, r->rip);
	bool pc_inside = pc_range >= 0 && begun(tx, r->rip, pc_range);
	struct lp_uframe uf[LP_INSIDE_FRAMES];
	const char *why = "no precise unwind";
	struct lp_unwinder *u = unwinder(tx);
	int nu = u ? unwind_thread(u, t->tid, r, 0, 0, uf, LP_INSIDE_FRAMES, &why) : -ENOSYS;
	bool complete = nu > 0 && why && !*why && nu < LP_INSIDE_FRAMES;
	bool inside = pc_inside;

	if (nu > 0) {
		for (int k = 1; k < nu; k++) {
			int rg = range_of(tx, uf[k].signal ? uf[k].pc : uf[k].pc - 1);
			inside |= rg >= 0;
		}
		for (int i = 0; i < n; i++) {
			bool found = hits[i].kind == LP_HIT_PC;
			for (int k = 1; k < nu && !found; k++)
				found = uf[k].pc == hits[i].value;
			if (found)
				continue;
			if (complete)
				add_stale(tx, t, &hits[i]);
			else
				inside = true;	/* not proved stale: counts */
		}
	} else {
		inside = true;	/* the scan's answer stands */
	}
	if (!inside)
		return 0;
	t->inside = true;
	struct lp_inside_thread *it = add_inside(tx, t, state);
	if (!it)
		return 1;
	if (nu > 0) {
		it->unwound = true;
		for (int k = 0; k < nu && k < LP_INSIDE_FRAMES; k++) {
			uint64_t at = uf[k].signal || !k ? uf[k].pc : uf[k].pc - 1;
			it->frames[k] = (struct lp_inside_frame){
				uf[k].pc, 0, !k ? LP_HIT_PC : uf[k].signal ? LP_HIT_SIGNAL : LP_HIT_RETURN,
				range_of(tx, at) };
		}
		it->nframes = (size_t)nu;
		snprintf(it->why, sizeof(it->why), "%s", why ? why : "");
	} else {
		hits_as_frames(it, r->rip, hits, n, pc_range);
		snprintf(it->why, sizeof(it->why), "%s", why ? why : "");
	}
	return 1;
}

/*
 * In a group stop we have not reaped (a process stopped before the seize): stat says T, or
 * t once the seize made it a ptrace stop. Only the report's label depends on it.
 */
static bool stopped_by_signal(struct tx *tx, struct lp_thread *t)
{
	char st[512];
	const char *p;
	int fd = -1;
	bool stopped = thread_file(&tx->ts, t, &fd, "stat", st, sizeof(st)) > 0 &&
		       (p = proc_stat_field(st, 3)) && (*p == 'T' || *p == 't');

	if (fd >= 0)
		close(fd);
	return stopped;
}

/* The thread still sleeps where it was seen: its stack did not change under the unwind. */
static bool still_asleep(struct tx *tx, struct lp_thread *t)
{
	struct lp_syscall sc;
	char buf[512];

	if (thread_file(&tx->ts, t, &t->syscall_fd, "syscall", buf, sizeof(buf)) < 0 ||
	    proc_syscall_parse(buf, &sc) || sc.running)
		return false;
	return sc.nr == t->sys_nr && sc.pc == t->sys_pc && sc.sp == t->sys_sp;
}

/*
 * A sleeping thread is not stopped for this, so its registers are unknown: the scan
 * decides. But when the unwind from its PC and SP alone reaches the outermost frame
 * (CFI that needs no other register, as in most optimized code) and the thread still
 * sleeps there afterwards, it is as precise as for a stopped thread, and a hit it does
 * not have is a stale word.
 */
int inside_check_blocked(struct tx *tx, struct lp_thread *t)
{
	struct lp_hit hits[HITS_MAX];

	if (t->checked)
		return t->inside;
	t->checked = true;
	if (tx->opts->inside)
		tx->opts->inside->threads++;
	int n = scan(tx, t->sys_pc, t->sys_sp, hits);
	if (n <= 0)
		return 0;
	int pc_range = range_of(tx, t->sys_pc);
	bool pc_inside = pc_range >= 0 && begun(tx, t->sys_pc, pc_range);
	struct lp_uframe uf[LP_INSIDE_FRAMES];
	const char *why = "no precise unwind";
	struct lp_unwinder *u = unwinder(tx);
	int nu = u ? unwind_thread(u, t->tid, NULL, t->sys_pc, t->sys_sp, uf, LP_INSIDE_FRAMES,
				   &why) : -ENOSYS;
	bool precise = nu > 0 && why && !*why && nu < LP_INSIDE_FRAMES && still_asleep(tx, t);
	bool inside = pc_inside || !precise;

	for (int k = 1; precise && k < nu; k++)
		inside |= range_of(tx, uf[k].signal ? uf[k].pc : uf[k].pc - 1) >= 0;
	for (int i = 0; precise && i < n; i++) {
		bool found = hits[i].kind == LP_HIT_PC;
		for (int k = 1; k < nu && !found; k++)
			found = uf[k].pc == hits[i].value;
		if (!found)
			add_stale(tx, t, &hits[i]);
	}
	if (!inside)
		return 0;
	t->inside = true;
	struct lp_inside_thread *it = add_inside(tx, t, stopped_by_signal(tx, t) ?
						LP_INSIDE_GROUP_STOPPED : LP_INSIDE_BLOCKED);
	if (!it)
		return 1;
	it->syscall = t->sys_nr;
	if (precise) {
		it->unwound = true;
		for (int k = 0; k < nu; k++) {
			uint64_t at = uf[k].signal || !k ? uf[k].pc : uf[k].pc - 1;
			it->frames[k] = (struct lp_inside_frame){
				uf[k].pc, 0, !k ? LP_HIT_PC : uf[k].signal ? LP_HIT_SIGNAL : LP_HIT_RETURN,
				range_of(tx, at) };
		}
		it->nframes = (size_t)nu;
	} else {
		hits_as_frames(it, t->sys_pc, hits, n, pc_range);
	}
	return 1;
}

size_t inside_finish(struct tx *tx)
{
	size_t inside = 0;

	for (size_t i = 0; i < tx->ts.n; i++) {
		struct lp_thread *t = &tx->ts.v[i];
		struct user_regs_struct r;
		if (!t->checked && !t->child && (t->state == TH_STOPPED || t->state == TH_PARKED) &&
		    !pt_getregs(t->tid, &r))
			(void)inside_check_stopped(tx, t, &r);
		inside += t->inside && t->state != TH_GONE;
	}
	tx->checking = false;
	return inside;
}

void inside_names(const struct tx *tx, char *buf, size_t cap)
{
	const struct lp_inside *in = tx->opts->inside;
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; in && i < in->n && len < cap; i++) {
		const struct lp_inside_thread *it = &in->v[i];
		int rg = -1;
		for (size_t k = 0; k < it->nframes && rg < 0; k++)
			rg = it->frames[k].range;
		const char *name = rg >= 0 && tx->opts->names ? tx->opts->names[rg] : "the code replaced";
		int w = snprintf(buf + len, cap - len, "%sthread %d (%s) in %s", i ? ", " : "",
				 it->tid, it->comm, name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}
