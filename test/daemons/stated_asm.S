/* Hand-written functions of stated (test/daemons/stated.c): each puts a thread in a state
 * whose saved PC lies inside, or just past, the bytes a 5-byte jmp displaces. Every F has a
 * twin F_v2 counting calls_F_v2 instead of calls_F. _CET_ENDBR is endbr64 (stated is built
 * with -fcf-protection); offsets below are from the patch site, after it. */
#include <cet.h>

	.text

/* int park(int x): x*2+1. Six pauses (12 bytes) right at the patch site: hot threads are
 * found inside the displaced range most of the time. park_v2: x*3+7. */
	.globl	park
	.type	park, @function
	.p2align 4
park:
	_CET_ENDBR
	pause
	pause
	pause
	pause
	pause
	pause
	lock incq calls_park(%rip)
	leal	1(%rdi,%rdi), %eax
	ret
	.size	park, .-park

	.globl	park_v2
	.type	park_v2, @function
	.p2align 4
park_v2:
	_CET_ENDBR
	pause
	pause
	pause
	pause
	pause
	pause
	lock incq calls_park_v2(%rip)
	leal	7(%rdi,%rdi,2), %eax
	ret
	.size	park_v2, .-park_v2

/* long edge_X(args...): the system call X, with the C calling convention (the result is
 * the raw return, -errno on failure). The first 5 bytes are exactly
 *     6a NR   push $NR
 *     58      pop %rax
 *     0f 05   syscall
 * so a thread blocked in it has its PC at site+5, just past the displaced range; when the
 * call is restarted (SIGSTOP/SIGCONT, a SA_RESTART handler for read) the kernel moves the
 * PC back 2 bytes, to site+3: into the jump a patch wrote. Then calls_X (8 bytes). */
.macro EDGE name, nr, counter
	.globl	\name
	.type	\name, @function
	.p2align 4
\name:
	_CET_ENDBR
	.byte	0x6a, \nr		/* push $nr (imm8) */
	popq	%rax
	syscall				/* site+3; returns to site+5 */
	lock incq \counter(%rip)
	ret
	.size	\name, .-\name
.endm

	EDGE	edge_nanosleep, 35, calls_edge_nanosleep	/* restart_block restart */
	EDGE	edge_nanosleep_v2, 35, calls_edge_nanosleep_v2
	EDGE	edge_read, 0, calls_edge_read			/* -ERESTARTSYS */
	EDGE	edge_read_v2, 0, calls_edge_read_v2
	EDGE	edge_pause, 34, calls_edge_pause		/* -ERESTARTNOHAND */
	EDGE	edge_pause_v2, 34, calls_edge_pause_v2

/* F: the syscall instruction right at the patch site (the caller loads %rax and the
 * arguments), then calls_F (8 bytes): the displaced range is both (10 bytes), and a thread
 * blocked in the call has its PC at site+2, in the middle of it. A signal raised by that
 * system call (tgkill of the thread itself, sig_park) starts its handler with the saved
 * context's rip at site+2 too. */
.macro INSIDE name, counter
	.globl	\name
	.type	\name, @function
	.p2align 4
\name:
	_CET_ENDBR
	syscall				/* site+0; returns to site+2 */
	lock incq \counter(%rip)	/* site+2 .. site+10 */
	ret
	.size	\name, .-\name
.endm

	INSIDE	inside_nanosleep, calls_inside_nanosleep
	INSIDE	inside_nanosleep_v2, calls_inside_nanosleep_v2
	INSIDE	inside_read, calls_inside_read
	INSIDE	inside_read_v2, calls_inside_read_v2
	INSIDE	sig_park, calls_sig_park
	INSIDE	sig_park_v2, calls_sig_park_v2

/* The callers (never patched): load the system call number, tail-call F.
 *   long call_inside_nanosleep(const struct timespec *ts)     nanosleep(ts, NULL)
 *   long call_inside_read(int fd, void *buf, size_t n)        read(fd, buf, n)
 *   long call_sig_park(int tgid, int tid, int sig)            tgkill(tgid, tid, sig) */
	.globl	call_inside_nanosleep
	.type	call_inside_nanosleep, @function
	.p2align 4
call_inside_nanosleep:
	_CET_ENDBR
	xorl	%esi, %esi
	movl	$35, %eax
	jmp	inside_nanosleep
	.size	call_inside_nanosleep, .-call_inside_nanosleep

	.globl	call_inside_read
	.type	call_inside_read, @function
	.p2align 4
call_inside_read:
	_CET_ENDBR
	xorl	%eax, %eax
	jmp	inside_read
	.size	call_inside_read, .-call_inside_read

	.globl	call_sig_park
	.type	call_sig_park, @function
	.p2align 4
call_sig_park:
	_CET_ENDBR
	movl	$234, %eax
	jmp	sig_park
	.size	call_sig_park, .-call_sig_park

	.section .note.GNU-stack, "", @progbits
