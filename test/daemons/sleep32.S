/* sleep32: i386, static, no libc: nanosleep(1 s) forever (int $0x80, __NR_nanosleep 162).
 * For "not x86-64" tests. With any argument it exits 0 at once: the tests run
 * `sleep32 --exit` to learn whether this kernel runs 32-bit programs at all. */
	.text
	.globl	_start
	.type	_start, @function
_start:
	cmpl	$1, (%esp)		/* argc */
	jbe	1f
	movl	$1, %eax		/* __NR_exit (i386) */
	xorl	%ebx, %ebx
	int	$0x80
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
