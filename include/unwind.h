/*
 * Unwind: a thread's call stack from its registers, with elfutils' libdwfl (CFI from
 * .eh_frame and .debug_frame, frame pointers where a module has none, as in the patch
 * images livepatch loads). The precise half of `--where` and `--safe` (issue 17); the
 * conservative half is frames_scan() (frames.h), which needs no CFI.
 *
 * One session serves every thread of one process: modules are opened once and their CFI
 * read on first use. Memory is read through the caller's /proc/PID/mem descriptor only.
 */
#ifndef LP_UNWIND_H
#define LP_UNWIND_H

#include <stdbool.h>
#include <sys/user.h>
#include "lp.h"

/*
 * One mapped object. @path is what to open (/proc/PID/map_files/START-END reaches a
 * deleted file or another mount namespace); NULL or "" reads the image from memory at
 * [@lo, @hi) instead (the vDSO). @bias = runtime address - link-time address.
 */
struct lp_unwind_module {
	const char *name;
	const char *path;
	uint64_t bias;
	uint64_t lo, hi;
};

struct lp_unwinder;

/*
 * One libdwfl session for process @pid: the modules are reported from @mods, memory is
 * read with pread(@mem_fd) (which must stay open until unwind_close). A module that
 * cannot be opened is left out: its frames end an unwind with "no module for 0x...".
 * Cheap to create; CFI is read on first use. 0 or -errno.
 */
int unwind_open(struct lp_unwinder **u, pid_t pid, int mem_fd,
		const struct lp_unwind_module *mods, size_t n) LP_MUST_CHECK;
void unwind_close(struct lp_unwinder *u);

struct lp_uframe {
	uint64_t pc;
	bool signal;	/* resumed by sigreturn: the PC a signal interrupted (an activation) */
};

/*
 * Unwind thread @tid from @regs (a full user_regs_struct of a stopped thread), or, when
 * @regs is NULL, from only @pc and @sp (a blocked thread's /proc/TID/syscall values: the
 * other registers unknown; unwound as far as CFI allows). Up to @max frames into @out
 * (frame 0 is the PC). Returns the count (>= 1) or -errno; *@why (may be NULL) gets a
 * short reason the unwind stopped early ("no CFI for 0x...", libdwfl's message), or ""
 * at the outermost frame or when @out was full; it lives until the next call.
 */
int unwind_thread(struct lp_unwinder *u, pid_t tid, const struct user_regs_struct *regs,
		  uint64_t pc, uint64_t sp, struct lp_uframe *out, size_t max,
		  const char **why) LP_MUST_CHECK;

#endif
