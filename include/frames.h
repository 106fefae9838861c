/*
 * Frames: find the signal frames on a thread's stack whose saved PC lies inside the
 * bytes a patch displaces (docs/design.md §5). When a handler returns, sigreturn
 * puts that PC back in the thread's registers, so a saved PC counts as much as a
 * live one.
 *
 * The scan is conservative, as the kernel leaves no list of a thread's signal
 * frames: from the stack pointer to the end of its mapping, 64 MiB at most (and from each frame's
 * saved stack pointer, for a handler on sigaltstack or nested handlers), a word is
 * the start of an x86-64 rt_sigframe when it points to a sigreturn trampoline
 * (`mov $15, %eax|%rax; syscall`), the ucontext flags after it are small, the frame
 * sits where the kernel puts one (on the sigaltstack its uc_stack names, or at most
 * LP_FRAME_SPAN below the stack pointer it saved), and the saved PC at its fixed
 * offset is inside a displaced range.
 *
 * frames_scan() walks the same stacks for `--where` and `--safe` (issue 17): besides the
 * signal frames, every word that is a return address into the code asked about.
 */
#ifndef LP_FRAMES_H
#define LP_FRAMES_H

#include <stdbool.h>
#include "lp.h"

#define LP_FRAME_SCAN_MAX (256 * 1024)	/* bytes read at a time */
#define LP_FRAME_STACK_MAX (64ULL << 20) /* bytes of one stack scanned above its pointer */
#define LP_FRAME_RIP 176		/* offset of uc_mcontext.rip in an rt_sigframe */
#define LP_FRAME_RSP 168		/* and of the saved rsp */
#define LP_FRAME_SS_SP 24		/* uc_stack: the sigaltstack when the signal came */
#define LP_FRAME_SS_FLAGS 32
#define LP_FRAME_SS_SIZE 40
#define LP_FRAME_SPAN (64 * 1024)	/* at most from a frame up to the SP it saved */

struct lp_frame {
	uint64_t at;	/* where the frame's saved PC is stored */
	uint64_t pc;	/* the saved PC, inside a displaced range */
};

struct lp_span {
	uint64_t lo, hi;
	bool rw;	/* readable and writable, as a stack is (a guard page is not) */
};

/* The process's mappings, read once and again when a stack is not among them. */
struct lp_stacks {
	pid_t via;
	int mem_fd;
	struct lp_span *maps;
	size_t nmaps;
	uint64_t tramp[8];	/* sigreturn trampolines seen, and words known not to be */
	size_t ntramp;
	uint64_t not_tramp[64];
	size_t nnot;
	uint64_t call[16];	/* return addresses after a call, and values known not to be */
	size_t ncall;
	uint64_t not_call[64];
	size_t nnot_call;
	uint8_t *buf;		/* LP_FRAME_SCAN_MAX */
};

/*
 * Up to @max frames of the stack at @sp whose saved PC @inside() accepts, in @out;
 * their number, or -errno. Reads through @st->mem_fd only: the thread may run.
 */
int frames_find(struct lp_stacks *st, uint64_t sp, bool (*inside)(void *arg, uint64_t pc),
		void *arg, struct lp_frame *out, size_t max);
/* Code a conservative scan looks for: [lo, hi). */
struct lp_code_range {
	uint64_t lo, hi;
};

enum lp_hit_kind { LP_HIT_PC, LP_HIT_RETURN, LP_HIT_SIGNAL };

struct lp_hit {
	enum lp_hit_kind kind;
	uint64_t at;		/* stack address of the word (0 for LP_HIT_PC) */
	uint64_t value;		/* the PC, the return address, or the sigframe's saved PC */
	int range;		/* index into the ranges */
};

/*
 * The conservative return-address scan: from @sp to the end of its mapping
 * (LP_FRAME_STACK_MAX at most), following each rt_sigframe's saved SP onto another
 * stack as frames_find() does. Hits, in stack order: @pc itself when inside a range
 * (LP_HIT_PC); every word whose value - 1 is inside a range and whose value follows the
 * bytes of a call (e8 rel32, or ff /2 in its register, memory, SIB, disp8, disp32 and
 * RIP-relative forms) (LP_HIT_RETURN); each rt_sigframe whose saved PC is inside a
 * range, whatever precedes it (LP_HIT_SIGNAL, @at = where the saved PC is stored). A
 * word is decoded only when it points into a range, and the answer is cached per value.
 * Returns the number of hits (at most @max: the scan stops when @out is full), or
 * -errno. Reads through @st->mem_fd only: the thread may run.
 */
int frames_scan(struct lp_stacks *st, uint64_t pc, uint64_t sp, const struct lp_code_range *r,
		size_t nr, struct lp_hit *out, size_t max) LP_MUST_CHECK;
/* Read the process's mappings now, outside any thread's pause. */
int frames_prepare(struct lp_stacks *st);
void frames_free(struct lp_stacks *st);

#endif
