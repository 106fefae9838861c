/*
 * x86: the facts of the instruction set livepatch relies on, in one place. What it
 * writes at a site (jmp rel32, jmp [rip] + address, call rel32), how those decode,
 * the reach of a rel32, endbr64, and the emulation of a jump or call for a thread
 * that traps on the int3 over one (docs/design.md §4). Pure: no process, no state;
 * the lowest layer, which includes nothing of the project but lp.h.
 */
#ifndef LP_X86_H
#define LP_X86_H

#include <stdbool.h>
#include <sys/user.h>
#include "lp.h"

#define X86_INT3 0xcc
#define X86_ENDBR64_LEN 4
#define X86_JMP_REL32_LEN 5	/* e9 rel32 */
#define X86_JMP_ABS64_LEN 14	/* ff 25 00000000 (jmp [rip + 0]), then the 8-byte address */
#define X86_CALL_REL32_LEN 5	/* e8 rel32 */

/* How a thread that traps on a site's int3 is handled (docs/design.md §4). */
enum lp_emul {
	LP_EMUL_JMP,		/* PC = target */
	LP_EMUL_CALL,		/* push site + len, PC = target */
	LP_EMUL_PARK,		/* wait until the head is written, then PC = site */
};

/* The emulation of the bytes one walk writes at a site. */
struct lp_emulation {
	enum lp_emul kind;
	uint64_t target;	/* JMP/CALL: the new PC; PARK: the site, where it resumes */
	unsigned int len;	/* JMP/CALL: its length (a CALL returns to site + len); PARK: 0 */
};

/* A jump or call livepatch writes, as x86_decode() found it. */
enum x86_kind {
	X86_OTHER,		/* none of those below */
	X86_JMP_REL32,
	X86_JMP_ABS64,
	X86_CALL_REL32,
};

struct x86_branch {
	enum x86_kind kind;
	unsigned int len;
	uint64_t target;	/* where it jumps or calls */
};

/* What an emulated call pushes: the caller writes @value at @addr in the thread's stack. */
struct x86_push {
	uint64_t addr;
	uint64_t value;
};

/* Whether the @avail bytes at @p start with endbr64 (the landing pad of an indirect branch). */
bool x86_is_endbr64(const uint8_t *p, size_t avail);

/*
 * The rel32 that an instruction ending at @next needs to reach @target, in *@rel.
 * False when @target is out of reach (more than +-2 GiB away): *@rel is then unset.
 */
bool x86_rel32(uint64_t next, uint64_t target, int32_t *rel) LP_MUST_CHECK;

/* jmp rel32 at @site to @target in @out; its length, or 0 when @target is out of reach. */
unsigned int x86_encode_jmp_rel32(uint64_t site, uint64_t target, uint8_t *out) LP_MUST_CHECK;

/* jmp [rip + 0] followed by @target, in @out (reaches anywhere); its length. */
unsigned int x86_encode_jmp_abs64(uint64_t target, uint8_t *out);

/* The jump livepatch writes at @site to @target: rel32 when in reach, else abs64; its length. */
unsigned int x86_encode_jmp(uint64_t site, uint64_t target, uint8_t *out);

/* call rel32 at @site to @target in @out; its length, or 0 when @target is out of reach. */
unsigned int x86_encode_call_rel32(uint64_t site, uint64_t target, uint8_t *out) LP_MUST_CHECK;

/*
 * jcc rel32 (0f 80+@cc) at @at to @target in @out, for the condition code @cc (0..15,
 * as in jcc rel8's 70+cc); its length, or 0 when @target is out of reach or @cc invalid.
 */
unsigned int x86_encode_jcc_rel32(uint8_t cc, uint64_t at, uint64_t target,
				  uint8_t *out) LP_MUST_CHECK;

/*
 * Decode the @avail bytes at @p, found at address @at, as one of the instructions
 * livepatch writes. False (kind X86_OTHER) when they are not one, or are too few.
 */
bool x86_decode(const uint8_t *p, size_t avail, uint64_t at, struct x86_branch *out);

/* A jump livepatch writes (rel32 or abs64) at @p: its length, its target in *@target; else 0. */
unsigned int x86_decode_jmp(const uint8_t *p, size_t avail, uint64_t at, uint64_t *target);

/* A call rel32 at @p: its length, and its target in *@target; else 0. */
unsigned int x86_decode_call(const uint8_t *p, size_t avail, uint64_t at, uint64_t *target);

/*
 * The emulation of the @len bytes a walk writes at @site: the jump or call they begin
 * with, else PARK (an original prologue, which cannot be emulated). A call that would
 * return inside those bytes parks too: the walk may not have written them yet.
 */
struct lp_emulation x86_decode_emulation(const uint8_t *bytes, size_t len, uint64_t site);

/*
 * The emulators, pure functions of the registers in the manner of the kernel's
 * int3_emulate_*(): they change @r and leave the stack to the caller, who writes
 * what they return. A PC set from outside sets orig_rax to -1, so that the kernel's
 * system call restart never moves it back.
 */
void x86_emulate_jmp(struct user_regs_struct *r, uint64_t target);
struct x86_push x86_emulate_push(struct user_regs_struct *r, uint64_t value);
struct x86_push x86_emulate_call(struct user_regs_struct *r, uint64_t ret, uint64_t target);

#endif
