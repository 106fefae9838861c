/* Callers of compute that a call-site patch must tell apart (callersd.c counts them):
 * caller_tail:  a tail call, `jmp compute`: not a call site, left alone;
 * caller_mem:   `call *compute_slot(%rip)`: through a pointer in memory, left alone. */
#include <cet.h>

	.text
	.globl	caller_tail
	.type	caller_tail, @function
	.p2align 4
caller_tail:
	_CET_ENDBR
	jmp	compute
	.size	caller_tail, .-caller_tail

	.globl	caller_mem
	.type	caller_mem, @function
	.p2align 4
caller_mem:
	_CET_ENDBR
	subq	$8, %rsp
	call	*compute_slot(%rip)
	addq	$8, %rsp
	ret
	.size	caller_mem, .-caller_mem

	.data
	.globl	compute_slot
	.type	compute_slot, @object
	.p2align 3
compute_slot:
	.quad	compute
	.size	compute_slot, 8

	.section .note.GNU-stack, "", @progbits
