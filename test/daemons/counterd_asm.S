/* Hand-written functions of counterd, for site analysis and for threads that stop inside
 * the first bytes of a function. _CET_ENDBR is endbr64 when built with -fcf-protection
 * (counterd, counterd-lib), nothing in counterd-nopie. Offsets below are after it. */
#include <cet.h>

	.text

/* int compute_slow(int x): x*2+1. Six pauses (12 bytes) right at the patch site, so
 * interrupted threads are often found inside the displaced range. */
	.globl	compute_slow
	.type	compute_slow, @function
	.p2align 4
compute_slow:
	_CET_ENDBR
	pause
	pause
	pause
	pause
	pause
	pause
	lock incq calls_compute_slow(%rip)
	leal	1(%rdi,%rdi), %eax
	ret
	.size	compute_slow, .-compute_slow

/* int compute_slow_v2(int x): x*3+7. */
	.globl	compute_slow_v2
	.type	compute_slow_v2, @function
	.p2align 4
compute_slow_v2:
	_CET_ENDBR
	pause
	pause
	pause
	pause
	pause
	pause
	lock incq calls_compute_slow_v2(%rip)
	leal	7(%rdi,%rdi,2), %eax
	ret
	.size	compute_slow_v2, .-compute_slow_v2

/* int compute_alt(int x): x*2+1, with a second entry compute_alt_body 8 bytes after the
 * patch site (12 bytes in with endbr64). Entering at compute_alt counts both counters;
 * calling compute_alt_body counts only calls_compute_alt_body. compute_alt_body is a plain
 * global label (STT_NOTYPE), not a function of its own. */
	.globl	compute_alt
	.type	compute_alt, @function
	.globl	compute_alt_body
	.p2align 4
compute_alt:
	_CET_ENDBR
	lock incq calls_compute_alt(%rip)		/* 8 bytes: f0 48 ff 05 rel32 */
compute_alt_body:
	lock incq calls_compute_alt_body(%rip)
	leal	1(%rdi,%rdi), %eax
	ret
	.size	compute_alt, .-compute_alt

/* int tiny(void): 3 bytes after the endbr64, smaller than a jmp rel32. Never called. */
	.globl	tiny
	.type	tiny, @function
	.p2align 4
tiny:
	_CET_ENDBR
	xorl	%eax, %eax
	ret
	.size	tiny, .-tiny

/* int branchy(int n): counts up to n; the loop jumps back to 2 bytes after the endbr64,
 * i.e. into the interior of the bytes a jmp rel32 would replace. Never called. */
	.globl	branchy
	.type	branchy, @function
	.p2align 4
branchy:
	_CET_ENDBR
	xorl	%eax, %eax		/* +0, 2 bytes */
.Lbranchy_loop:				/* +2 */
	incl	%eax
	cmpl	%edi, %eax
	jl	.Lbranchy_loop
	ret
	.size	branchy, .-branchy

/* int early_call(void): a 5-byte call right at the patch site. Never called. */
	.globl	early_call
	.type	early_call, @function
	.p2align 4
early_call:
	_CET_ENDBR
	call	early_call_helper	/* +0, 5 bytes: returns to +5 */
	ret
	.size	early_call, .-early_call

/* int early_call_short(int (*fn)(void)): a 2-byte indirect call at the patch site whose
 * return address (+2) is strictly inside the first 5 bytes. Never called. */
	.globl	early_call_short
	.type	early_call_short, @function
	.p2align 4
early_call_short:
	_CET_ENDBR
	call	*%rdi			/* +0, 2 bytes: returns to +2 */
	nop
	nop
	nop
	ret
	.size	early_call_short, .-early_call_short

	.globl	early_call_helper
	.type	early_call_helper, @function
	.p2align 4
early_call_helper:
	_CET_ENDBR
	xorl	%eax, %eax
	ret
	.size	early_call_helper, .-early_call_helper

/* long sleeper(const struct timespec *ts): nanosleep with its syscall instruction inside
 * the first 5 bytes (the caller loads %eax = 35). A thread blocked here has its user PC
 * inside the patch site, so a patch must wait for it (or time out and roll back).
 * sleeper_v2 is the same, for a target. */
	.globl	sleeper
	.type	sleeper, @function
	.p2align 4
sleeper:
	_CET_ENDBR
	syscall
	nop
	nop
	nop
	ret
	.size	sleeper, .-sleeper

	.globl	sleeper_v2
	.type	sleeper_v2, @function
	.p2align 4
sleeper_v2:
	_CET_ENDBR
	syscall
	nop
	nop
	nop
	ret
	.size	sleeper_v2, .-sleeper_v2

	.section .note.GNU-stack, "", @progbits
