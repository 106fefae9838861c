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
	uint8_t *buf;		/* LP_FRAME_SCAN_MAX */
};

/*
 * Up to @max frames of the stack at @sp whose saved PC @inside() accepts, in @out;
 * their number, or -errno. Reads through @st->mem_fd only: the thread may run.
 */
int frames_find(struct lp_stacks *st, uint64_t sp, bool (*inside)(void *arg, uint64_t pc),
		void *arg, struct lp_frame *out, size_t max);
/* Read the process's mappings now, outside any thread's pause. */
int frames_prepare(struct lp_stacks *st);
void frames_free(struct lp_stacks *st);

#endif
