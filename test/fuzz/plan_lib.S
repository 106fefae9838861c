/*
 * The library whose functions the plan harness's seeds name (fuzz_plan.c): a few
 * functions, one data object, an IFUNC and two versions of one name, so that every
 * kind of answer resolve.c gives a plan line is one mutation away.
 */
	.text
	.globl	plan_f1, plan_f2, plan_g1, plan_g2, plan_pick, plan_data, plan_v1, plan_v2
	.type	plan_f1, @function
plan_f1:
.Lf1:	xorl	%eax, %eax
	ret
	.size	plan_f1, .-plan_f1
	.type	plan_f2, @function
plan_f2: movl	$2, %eax
	ret
	.size	plan_f2, .-plan_f2
	.type	plan_g1, @function
plan_g1: movl	$3, %eax
	ret
	.size	plan_g1, .-plan_g1
	.type	plan_g2, @function
plan_g2: movl	$4, %eax
	ret
	.size	plan_g2, .-plan_g2
	.type	plan_v1, @function
plan_v1: movl	$5, %eax
	ret
	.size	plan_v1, .-plan_v1
	.type	plan_v2, @function
plan_v2: movl	$6, %eax
	ret
	.size	plan_v2, .-plan_v2
	.symver	plan_v1, plan_v@V1
	.symver	plan_v2, plan_v@@V2
	.type	plan_pick, @gnu_indirect_function
plan_pick: leaq	.Lf1(%rip), %rax
	ret
	.size	plan_pick, .-plan_pick
	.data
	.type	plan_data, @object
plan_data: .quad 1
	.size	plan_data, 8
	.section .note.GNU-stack,"",@progbits
