/* Frames: signal frames with a saved PC inside a displaced range (frames.h). */
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
	st->maps[st->nmaps++] = (struct lp_span){ m->start, m->end };
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

/* Frames whose saved PC @inside() accepts, and the other stacks their saved SPs are on. */
static void scan_chunk(struct lp_stacks *st, uint64_t lo, size_t n, size_t lim,
		       bool (*inside)(void *, uint64_t), void *arg, struct lp_frame *out, size_t max,
		       size_t *found, struct lp_span *todo, size_t *ntodo)
{
	/* A frame starts 8 bytes below a 16-byte boundary (the kernel's alignment). */
	for (size_t off = (8 - (lo & 15) + 16) % 16; off < lim && off + LP_FRAME_RIP + 8 <= n;
	     off += 16) {
		const uint8_t *f = st->buf + off;
		uint64_t pc = word(f + LP_FRAME_RIP), rsp = word(f + LP_FRAME_RSP);
		if (word(f + 8) >= 16 || !where_kernel_puts(f, lo + off))
			continue;
		if (inside(arg, pc) && is_trampoline(st, word(f))) {
			if (*found < max)
				out[*found] = (struct lp_frame){ lo + off + LP_FRAME_RIP, pc };
			(*found)++;
		}
		/*
		 * Every frame's interrupted stack is scanned too (sigaltstack, nesting). Once a
		 * trampoline is known, a word is compared with it first: the mapping look-ups
		 * for every small word on a stack cost more than the rest of the scan.
		 */
		uint64_t tr = word(f);
		if (*ntodo == SPANS_MAX || !user_addr(rsp) || !user_addr(tr) || !user_addr(pc) ||
		    (rsp >= lo && rsp < lo + n) ||
		    (st->ntramp && !known(st->tramp, st->ntramp, tr)) || !mapping_end(st, rsp) ||
		    !mapping_end(st, pc) || !mapping_end(st, tr) || !is_trampoline(st, tr))
			continue;
		bool seen = false;
		for (size_t j = 0; j < *ntodo; j++)
			seen |= rsp >= todo[j].lo && mapping_end(st, rsp) == mapping_end(st, todo[j].lo);
		if (!seen)
			todo[(*ntodo)++] = (struct lp_span){ rsp, 0 };
	}
}

int frames_find(struct lp_stacks *st, uint64_t sp, bool (*inside)(void *arg, uint64_t pc),
		void *arg, struct lp_frame *out, size_t max)
{
	struct lp_span todo[SPANS_MAX];
	size_t ntodo = 0, found = 0;
	int ret;

	if (!st->buf && !(st->buf = malloc(LP_FRAME_SCAN_MAX)))
		return -ENOMEM;
	if (!st->maps && (ret = read_maps(st)))
		return ret;
	todo[ntodo++] = (struct lp_span){ sp, 0 };
	for (size_t k = 0; k < ntodo; k++) {
		uint64_t lo = todo[k].lo, end = mapping_end(st, lo);
		if (!end && (ret = read_maps(st)))	/* a stack mapped since: read maps again */
			return ret;
		if (!end && !(end = mapping_end(st, lo)))
			continue;
		if (end - lo > LP_FRAME_STACK_MAX)
			end = lo + LP_FRAME_STACK_MAX;
		/* Chunks overlap by a frame's header: a frame is taken where it starts. */
		const size_t step = LP_FRAME_SCAN_MAX - 256;
		for (uint64_t at = lo; at < end; at += step) {
			size_t len = end - at < LP_FRAME_SCAN_MAX ? end - at : LP_FRAME_SCAN_MAX;
			ssize_t n = pread(st->mem_fd, st->buf, len, (off_t)at);
			if (n <= 0)
				break;
			size_t lim = at + len >= end ? (size_t)n : step;
			scan_chunk(st, at, (size_t)n, lim, inside, arg, out, max, &found, todo, &ntodo);
			if ((size_t)n < len || at + len >= end)
				break;
		}
	}
	return (int)(found < max ? found : max);
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
