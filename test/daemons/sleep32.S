/* sleep32: i386, static, no libc: nanosleep(1 s) forever (int $0x80, __NR_nanosleep 162).
 * For "not x86-64" tests. */
	.text
	.globl	_start
	.type	_start, @function
_start:
1:	movl	$162, %eax		/* __NR_nanosleep (i386) */
	movl	$ts, %ebx
	xorl	%ecx, %ecx
	int	$0x80
	jmp	1b
	.size	_start, .-_start

	.section .rodata
	.p2align 2
ts:	.long	1, 0			/* 1 s */

	.section .note.GNU-stack, "", @progbits
