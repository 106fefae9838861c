/*
 * Frames: signal frames with a saved PC inside a displaced range, and return addresses
 * into code (frames.h).
 */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "frames.h"
#include "proc.h"

#define SPANS_MAX 8	/* stacks followed per thread: its own, sigaltstack, nested */

struct collect {
	struct lp_stacks *st;
	size_t cap;
};

/* proc_maps_walk() callback: one more span, the array grown by doubling. */
static int add_span(const struct lp_maps_line *m, void *arg)
{
	struct collect *c = arg;
	struct lp_stacks *st = c->st;

	if (st->nmaps == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		struct lp_span *v = realloc(st->maps, c->cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		st->maps = v;
	}
	st->maps[st->nmaps++] = (struct lp_span){ m->start, m->end,
						  m->perms[0] == 'r' && m->perms[1] == 'w' };
	return 0;
}

static int read_maps(struct lp_stacks *st)
{
	struct collect c = { st, 0 };

	st->nmaps = 0;
	return proc_maps_walk(st->via, add_span, &c);
}

/* The end of the mapping that holds @addr (maps is sorted), or 0. */
static uint64_t mapping_end(const struct lp_stacks *st, uint64_t addr)
{
	size_t lo = 0, hi = st->nmaps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < st->maps[mid].lo)
			hi = mid;
		else if (addr >= st->maps[mid].hi)
			lo = mid + 1;
		else
			return st->maps[mid].hi;
	}
	return 0;
}

static bool known(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* `mov $15, %rax; syscall` or `mov $15, %eax; syscall`: glibc's and musl's __restore_rt. */
static bool is_trampoline(struct lp_stacks *st, uint64_t addr)
{
	static const uint8_t rax[] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	static const uint8_t eax[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	uint8_t b[sizeof(rax)];

	if (known(st->tramp, st->ntramp, addr))
		return true;
	if (known(st->not_tramp, st->nnot < LP_ARRAY_SIZE(st->not_tramp) ? st->nnot :
		  LP_ARRAY_SIZE(st->not_tramp), addr))
		return false;
	bool yes = pread(st->mem_fd, b, sizeof(b), (off_t)addr) == (ssize_t)sizeof(b) &&
		   (!memcmp(b, rax, sizeof(rax)) || !memcmp(b, eax, sizeof(eax)));
	if (yes && st->ntramp < LP_ARRAY_SIZE(st->tramp))
		st->tramp[st->ntramp++] = addr;
	else if (!yes)
		st->not_tramp[st->nnot++ % LP_ARRAY_SIZE(st->not_tramp)] = addr;
	return yes;
}

static uint64_t word(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A user-space address at all: most words of a stack are small numbers, and this is cheap. */
static bool user_addr(uint64_t x)
{
	return x >= 0x10000 && x < (1ULL << 47);
}

/*
 * A frame found at @a is where the kernel would have put one: on the sigaltstack its
 * own uc_stack describes, or just below the stack pointer it saved (the red zone, the
 * FPU state and the frame itself lie between). A copy of a frame kept in other data
 * that shares the mapping (a sigaltstack inside a malloc block, a stack next to a
 * heap) is neither, and is never rewritten.
 */
static bool where_kernel_puts(const uint8_t *f, uint64_t a)
{
	uint64_t rsp = word(f + LP_FRAME_RSP), ss_sp = word(f + LP_FRAME_SS_SP);
	uint64_t ss_size = word(f + LP_FRAME_SS_SIZE);
	int32_t ss_flags;

	memcpy(&ss_flags, f + LP_FRAME_SS_FLAGS, sizeof(ss_flags));
	if (!(ss_flags & SS_DISABLE) && a >= ss_sp && a - ss_sp < ss_size)
		return true;
	return rsp > a && rsp - a <= LP_FRAME_SPAN;
}

/*
 * The end of the run of mappings from the one holding @addr, each starting where the one
 * before ends: a stack split in two by mlock(2) or madvise(2) on part of it (libsodium's
 * sodium_mlock does that on a buffer of the stack) is still one stack. A guard page above
 * (another thread's, ---p, though /proc/PID/mem reads it) ends the run: only rw-
 * mappings are joined. Joined up to
 * LP_FRAME_STACK_JOINED from @addr (a default stack's size), so that a stack next to a
 * large mapping does not make every scan read it. 0: @addr is not mapped.
 */
#define LP_FRAME_STACK_JOINED (8ULL << 20)
static uint64_t stack_end(const struct lp_stacks *st, uint64_t addr)
{
	size_t lo = 0, hi = st->nmaps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < st->maps[mid].lo)
			hi = mid;
		else if (addr >= st->maps[mid].hi)
			lo = mid + 1;
		else {
			while (mid + 1 < st->nmaps && st->maps[mid + 1].lo == st->maps[mid].hi &&
			       st->maps[mid].rw && st->maps[mid + 1].rw &&
			       st->maps[mid + 1].hi - addr <= LP_FRAME_STACK_JOINED)
				mid++;
			return st->maps[mid].hi;
		}
	}
	return 0;
}

/*
 * For frames_scan() only (a false frame there makes a thread look inside, no more): a
 * frame whose return address is not a trampoline livepatch knows (a restorer of the
 * program's own, SA_RESTORER) is still a frame when its saved segment registers are the
 * kernel's for a 64-bit program (cs 0x33, ss 0x2b, at their fixed offsets).
 */
#define LP_FRAME_CS 192
#define LP_FRAME_SS 198
static bool user_segments(const uint8_t *f)
{
	uint16_t cs, ss;

	memcpy(&cs, f + LP_FRAME_CS, 2);
	memcpy(&ss, f + LP_FRAME_SS, 2);
	return cs == 0x33 && ss == 0x2b;
}

/* One walk over a thread's stacks, for frames_find() (@inside) or frames_scan() (@r). */
struct walk {
	struct lp_stacks *st;
	bool (*inside)(void *arg, uint64_t pc);
	void *arg;
	struct lp_frame *frames;
	const struct lp_code_range *r;
	size_t nr;
	uint64_t rlo, rhi;	/* the ranges' hull: one compare rules most words out */
	struct lp_hit *hits;
	size_t max, found;
	struct lp_span todo[SPANS_MAX];
	size_t ntodo;
};

/* The range that holds @x, or -1. */
static int range_of(const struct walk *w, uint64_t x)
{
	if (x - w->rlo >= w->rhi - w->rlo)
		return -1;
	for (size_t i = 0; i < w->nr; i++)
		if (x >= w->r[i].lo && x < w->r[i].hi)
			return (int)i;
	return -1;
}

static bool full(const struct walk *w)
{
	return w->hits && w->found >= w->max;
}

static void hit(struct walk *w, enum lp_hit_kind kind, uint64_t at, uint64_t v, int range)
{
	if (w->found < w->max)
		w->hits[w->found] = (struct lp_hit){ kind, at, v, range };
	w->found++;
}

/*
 * A frame's interrupted stack is scanned too (sigaltstack, nesting). Once a trampoline
 * is known, a word is compared with it first: the mapping look-ups for every small word
 * on a stack cost more than the rest of the scan.
 */
static void follow(struct walk *w, const uint8_t *f, uint64_t lo, size_t n)
{
	struct lp_stacks *st = w->st;
	uint64_t tr = word(f), pc = word(f + LP_FRAME_RIP), rsp = word(f + LP_FRAME_RSP);

	if (w->ntodo == SPANS_MAX || !user_addr(rsp) || !user_addr(tr) || !user_addr(pc) ||
	    (rsp >= lo && rsp < lo + n) ||
	    (st->ntramp && !known(st->tramp, st->ntramp, tr)) || !mapping_end(st, rsp) ||
	    !mapping_end(st, pc) || !mapping_end(st, tr) || !is_trampoline(st, tr))
		return;
	for (size_t j = 0; j < w->ntodo; j++)
		if (rsp >= w->todo[j].lo && mapping_end(st, rsp) == mapping_end(st, w->todo[j].lo))
			return;
	w->todo[w->ntodo++] = (struct lp_span){ rsp, 0, false };
}

/*
 * The one test of an rt_sigframe starting at @f (stack address @a), for both scans:
 * small uc_flags, placed where the kernel puts one, a saved PC that is wanted, and a
 * sigreturn trampoline as its return address (read last: it may cost a pread). Every
 * frame of that shape, wanted or not, has its stack followed. Whether it was a hit.
 */
static bool sigframe(struct walk *w, const uint8_t *f, uint64_t a, uint64_t lo, size_t n)
{
	uint64_t pc = word(f + LP_FRAME_RIP);
	bool taken = false;
	int i = -1;

	if (word(f + 8) >= 16 || !where_kernel_puts(f, a))
		return false;
	bool room = a + LP_FRAME_SS + 2 <= lo + n;	/* the segments are in this chunk */
	if ((w->inside ? w->inside(w->arg, pc) : (i = range_of(w, pc)) >= 0) &&
	    (is_trampoline(w->st, word(f)) || (!w->inside && room && user_segments(f)))) {
		if (w->inside) {
			if (w->found < w->max)
				w->frames[w->found] = (struct lp_frame){ a + LP_FRAME_RIP, pc };
			w->found++;
		} else {
			hit(w, LP_HIT_SIGNAL, a + LP_FRAME_RIP, pc, i);
		}
		taken = true;
	}
	follow(w, f, lo, n);
	return taken;
}

/*
 * Whether @v follows a near call (ff /2 or e8): the bytes before it decode as one, in
 * one of the forms compilers emit. A REX prefix before ff (r8-r15) changes nothing
 * here. @v - 1 is in a range, so its page is mapped; the bytes before that page may not be.
 */
static bool after_call_bytes(int mem_fd, uint64_t v)
{
	uint8_t b[8] = { 0 };	/* b[8 - k] is the byte at v - k */
	uint64_t from = v - 7, page = (v - 1) & ~4095ULL;

	if (pread(mem_fd, b + 1, 7, (off_t)from) != 7) {
		if (from >= page || pread(mem_fd, b + 1 + (page - from), v - page,
					  (off_t)page) != (ssize_t)(v - page))
			return false;
	}
#define C(k) b[8 - (k)]
	if (C(5) == 0xe8)						/* call rel32 */
		return true;
	if (C(2) == 0xff && ((C(1) & 0xf8) == 0xd0 ||			/* call *%reg */
			     ((C(1) & 0xf8) == 0x10 && C(1) != 0x14 && C(1) != 0x15)))
		return true;						/* call *(%reg) */
	if (C(3) == 0xff && (C(2) & 0xf8) == 0x50 && C(2) != 0x54)	/* call *d8(%reg) */
		return true;
	if (C(3) == 0xff && C(2) == 0x14 && (C(1) & 7) != 5)		/* call *(sib) */
		return true;
	if (C(4) == 0xff && C(3) == 0x54)				/* call *d8(sib) */
		return true;
	if (C(6) == 0xff && (C(5) == 0x15 ||				/* call *d32(%rip) */
			     ((C(5) & 0xf8) == 0x90 && C(5) != 0x94)))	/* call *d32(%reg) */
		return true;
	if (C(7) == 0xff && (C(6) == 0x94 || (C(6) == 0x14 && (C(5) & 7) == 5)))
		return true;						/* call *d32(sib) */
#undef C
	return false;
}

/* @n entries written so far into a ring of @cap: how many hold one. */
static size_t held(size_t n, size_t cap)
{
	return n < cap ? n : cap;
}

/* after_call_bytes(), remembered per value: a stack repeats its return addresses. */
static bool after_call(struct lp_stacks *st, uint64_t v)
{
	if (known(st->call, held(st->ncall, LP_ARRAY_SIZE(st->call)), v))
		return true;
	if (known(st->not_call, held(st->nnot_call, LP_ARRAY_SIZE(st->not_call)), v))
		return false;
	bool yes = after_call_bytes(st->mem_fd, v);
	if (yes)
		st->call[st->ncall++ % LP_ARRAY_SIZE(st->call)] = v;
	else
		st->not_call[st->nnot_call++ % LP_ARRAY_SIZE(st->not_call)] = v;
	return yes;
}

/*
 * The words of one chunk read at @lo: @n bytes, of which the first @lim are this
 * chunk's (the rest overlap the next one by a frame's header). In address order, each
 * word is a frame's saved PC (the frame starting LP_FRAME_RIP below it, which must be
 * this chunk's), a return address, or nothing; so hits come out in stack order.
 */
static void scan_chunk(struct walk *w, uint64_t lo, size_t n, size_t lim)
{
	const uint8_t *buf = w->st->buf;
	size_t end = lim + LP_FRAME_RIP < n ? lim + LP_FRAME_RIP : n;

	for (size_t p = (size_t)(-lo & 7); p + 8 <= end && !full(w); p += 8) {
		/* A frame starts 8 bytes below a 16-byte boundary (the kernel's alignment). */
		if (((lo + p) & 15) == 8 && p >= LP_FRAME_RIP &&
		    sigframe(w, buf + p - LP_FRAME_RIP, lo + p - LP_FRAME_RIP, lo, n))
			continue;
		uint64_t v = word(buf + p);
		if (p < lim && v - 1 - w->rlo < w->rhi - w->rlo) {
			int i = range_of(w, v - 1);
			if (i >= 0 && after_call(w->st, v))
				hit(w, LP_HIT_RETURN, lo + p, v, i);
		}
	}
}

/* Every stack of the thread at @sp: its own, then those its frames' saved SPs are on. */
static int walk(struct walk *w, uint64_t sp)
{
	struct lp_stacks *st = w->st;
	int ret;

	if (!st->buf && !(st->buf = malloc(LP_FRAME_SCAN_MAX)))
		return -ENOMEM;
	if (!st->maps && (ret = read_maps(st)))
		return ret;
	w->todo[w->ntodo++] = (struct lp_span){ sp, 0, false };
	for (size_t k = 0; k < w->ntodo && !full(w); k++) {
		uint64_t lo = w->todo[k].lo, end = stack_end(st, lo);
		if (!end && (ret = read_maps(st)))	/* a stack mapped since: read maps again */
			return ret;
		if (!end && !(end = stack_end(st, lo)))
			continue;
		if (end - lo > LP_FRAME_STACK_MAX)
			end = lo + LP_FRAME_STACK_MAX;
		/* Chunks overlap by a frame's header: a frame is taken where it starts. */
		const size_t step = LP_FRAME_SCAN_MAX - 256;
		for (uint64_t at = lo; at < end && !full(w); at += step) {
			size_t len = end - at < LP_FRAME_SCAN_MAX ? end - at : LP_FRAME_SCAN_MAX;
			ssize_t n = pread(st->mem_fd, st->buf, len, (off_t)at);
			if (n <= 0)
				break;
			size_t lim = at + len >= end ? (size_t)n : step;
			scan_chunk(w, at, (size_t)n, lim);
			if ((size_t)n < len || at + len >= end)
				break;
		}
	}
	return 0;
}

int frames_find(struct lp_stacks *st, uint64_t sp, bool (*inside)(void *arg, uint64_t pc),
		void *arg, struct lp_frame *out, size_t max)
{
	struct walk w = { .st = st, .inside = inside, .arg = arg, .frames = out, .max = max };
	int ret = walk(&w, sp);

	if (ret)
		return ret;
	return (int)(w.found < max ? w.found : max);
}

int frames_scan(struct lp_stacks *st, uint64_t pc, uint64_t sp, const struct lp_code_range *r,
		size_t nr, struct lp_hit *out, size_t max)
{
	struct walk w = { .st = st, .r = r, .nr = nr, .hits = out, .max = max };

	if (!max)
		return 0;
	for (size_t i = 0; i < nr; i++) {
		if (r[i].lo >= r[i].hi)
			continue;
		if (w.rlo == w.rhi || r[i].lo < w.rlo)
			w.rlo = r[i].lo;
		if (r[i].hi > w.rhi)
			w.rhi = r[i].hi;
	}
	int i = range_of(&w, pc);
	if (i >= 0)
		hit(&w, LP_HIT_PC, 0, pc, i);
	int ret = full(&w) ? 0 : walk(&w, sp);
	if (ret)
		return ret;
	return (int)(w.found < max ? w.found : max);
}

int frames_prepare(struct lp_stacks *st)
{
	return st->maps ? 0 : read_maps(st);
}

void frames_free(struct lp_stacks *st)
{
	free(st->maps);
	free(st->buf);
	st->maps = NULL;
	st->buf = NULL;
}
