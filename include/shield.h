/*
 * The shield (docs/design.md §11): what keeps the process alive when livepatch dies
 * in the middle of a transaction (SIGKILL, the OOM killer), when no tracer is left
 * to take our traps.
 *
 * A region livepatch maps in the process holds a tiny SIGTRAP handler and a table of
 * the sites being written. For the length of a transaction the handler is SIGTRAP's
 * disposition. While livepatch lives, ptrace sees every trap first and the handler
 * never runs for ours. Once livepatch is gone, a thread that reaches one of our int3s
 * runs the handler, which does what the tracer would: the jump or call the walk
 * writes, or, for a walk back to a function's own prologue, a wait until the int3 is
 * gone (the guard process, guard.h, writes it). Any other SIGTRAP goes to the
 * program's own disposition, saved in the table.
 *
 * The region also holds the trampoline that injected system calls run through
 * (inject.h): a thread whose tracer dies in the middle of one puts its own registers
 * and signal mask back and goes on where it was.
 */
#ifndef LP_SHIELD_H
#define LP_SHIELD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "inject.h"
#include "lp.h"
#include "plan.h"

#define LP_SHIELD_NAME "livepatch-shield"	/* the region's first bytes, its name in maps */
#define LP_SHIELD_CODE 4096			/* the code page, read and execute */
#define LP_SHIELD_DATA 65536			/* the table, read only (livepatch writes it) */
#define LP_SHIELD_SIZE (LP_SHIELD_CODE + LP_SHIELD_DATA)
/* Where a first region is placed; elsewhere when that is taken (docs/design.md §11). */
#define LP_SHIELD_HINT 0x3ffe00000000ULL

/* Offsets in the data page, shared with the handler's code (shield.c). */
#define LP_SHD_NSITES	0x000	/* entries of the last transaction, kept after it */
#define LP_SHD_PROG	0x008	/* the program's disposition: handler, flags, restorer, mask */
#define LP_SHD_DFL	0x028	/* a kernel sigaction for SIG_DFL (zeros) */
#define LP_SHD_NAP	0x048	/* a timespec of 1 ms: the wait of a parked trap */
#define LP_SHD_LIVE	0x058	/* 1 from the handler's install until its removal */
#define LP_SHD_RESUME	0x800	/* LP_SHD_NRESUME resume blocks of 0x100 bytes (inject.c) */
#define LP_SHD_NRESUME	8
#define LP_SHD_ENTRIES	0x1000	/* struct lp_shield_entry[] */
#define LP_SHIELD_MAX ((LP_SHIELD_DATA - LP_SHD_ENTRIES) / 24)

/* One site in the table: what a trap on its int3 does when no tracer takes it. */
enum lp_shield_kind { LP_SHK_NONE, LP_SHK_JMP, LP_SHK_CALL, LP_SHK_PARK };

struct lp_shield_entry {
	uint64_t addr;		/* the int3's address */
	uint64_t target;	/* JMP, CALL: the new PC */
	uint32_t kind;		/* enum lp_shield_kind */
	uint32_t len;		/* CALL: returns to addr + len */
};

struct lp_shield {
	pid_t via;		/* whose /proc shows the memory */
	int mem_fd;		/* /proc/VIA/mem */
	uint64_t base;		/* the region, 0: none yet */
	bool installed;		/* the handler is SIGTRAP's disposition (we put it there) */
	uint64_t prog[4];	/* the program's disposition: handler, flags, restorer, mask */
	uint64_t ours[4];	/* the handler's, as installed */
	unsigned int next_resume;	/* the resume block the next injection uses */
	bool made;		/* this run mapped the region */
	/*
	 * The process runs with a user shadow stack: the trampoline's and the bootstrap's
	 * `ret` would fault there, so injected calls are made as before (shield.c).
	 */
	bool no_ret;
};

/* The handler's code, as it is copied into the process (for the unit tests). */
extern const uint8_t lp_shield_code[], lp_shield_code_end[];
extern const uint8_t lp_shield_handler[], lp_shield_restorer[], lp_shield_tramp[];

/* Where the handler, its restorer and the trampoline are in the region at @base. */
static inline uint64_t shield_addr(uint64_t base, const uint8_t *sym)
{
	return base + (uint64_t)(sym - lp_shield_code);
}

/*
 * The region an earlier run left, in @sh->base (also returned; 0: none): at the hint
 * (one read), and with @everywhere anywhere in the maps.
 */
uint64_t shield_find(struct lp_shield *sh, bool everywhere);

/*
 * The region an earlier run left (no system call), else a new one through @inj: an
 * mmap, its code and table written; shield_finish() does the rest.
 */
int shield_prepare(struct lp_shield *sh, const struct lp_injector *inj, struct lp_diag *d)
	LP_MUST_CHECK;

/* Then, through the trampoline: the table read only, the region named, found by later runs. */
void shield_finish(struct lp_shield *sh, const struct lp_injector *inj);

/*
 * The table for a walk: what a trap at each site of @plan does without a tracer.
 * @forward: towards the new bytes, else back to the old ones; @park: every trap
 * waits (a checked walk, docs/design.md §9, runs nothing new before its check).
 * Entries are filled in @tab (LP_SHIELD_MAX at most); returns how many, or -E2BIG.
 */
int shield_table(const struct lp_plan *plan, bool forward, bool park,
		 struct lp_shield_entry *tab) LP_MUST_CHECK;
/* Write the table for a walk into the region (the count last). */
int shield_arm(struct lp_shield *sh, const struct lp_plan *plan, bool forward, bool park)
	LP_MUST_CHECK;
/*
 * The handler is no longer SIGTRAP's disposition. The table stays as it is: a thread
 * the kernel had sent into the handler for one of our traps, and that has not run
 * yet, still finds its site there (no int3 is left: it runs the site again).
 */
int shield_retire(struct lp_shield *sh) LP_MUST_CHECK;

/*
 * Make the handler SIGTRAP's disposition, through @inj (a thread whose stack pointer
 * is @sp: the sigactions go below it). @caught_or_ignored: the
 * process has a disposition other than the default (SigCgt, SigIgn), which is read
 * first so that the handler keeps its flags and mask; a handler of ours left by a
 * run that died is recognised, and the disposition saved in its table is kept.
 */
int shield_install(struct lp_shield *sh, const struct lp_injector *inj, uint64_t sp,
		   bool caught_or_ignored) LP_MUST_CHECK;
/*
 * Put the program's disposition back. A disposition the program set meanwhile
 * stays. Returns 0, or -errno with the handler still installed.
 */
int shield_remove(struct lp_shield *sh, const struct lp_injector *inj, uint64_t sp) LP_MUST_CHECK;

/*
 * After livepatch died: whether a site of @plan holds neither its old nor its new
 * bytes in process @via, or a shield's handler there may still be installed (a
 * transaction's business is left). Read through /proc, nothing attached.
 */
bool shield_needed(pid_t via, const struct lp_plan *plan);

/* The resume block for the next injection (inject.h, lp_inject.resume_at). */
uint64_t shield_resume_block(struct lp_shield *sh);

#endif
