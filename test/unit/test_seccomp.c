/*
 * seccomp: the classic BPF interpreter run on the calls livepatch injects, on filters
 * written as libseccomp and systemd write them (arch check, then the call number, then
 * arguments), and the order in which several filters' answers combine.
 */
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include "util.h"
#include "seccomp.h"

#define NR_MMAP 9
#define NR_MEMFD_CREATE 319
#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))

static const long no_args[6];

/* x86-64 only; memfd_create killed; everything else allowed. */
static const struct sock_filter kill_memfd[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_MEMFD_CREATE, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

/* mmap with MAP_FIXED_NOREPLACE in its flags (args[3], low word) fails with EPERM. */
static const struct sock_filter errno_fixed_mmap[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_MMAP, 0, 4),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(3)),
	BPF_STMT(BPF_ST, 3),			/* through the scratch memory and X */
	BPF_STMT(BPF_LDX | BPF_MEM, 3),
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_FIXED_NOREPLACE, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
};

static void test_arch_and_number(void **state)
{
	(void)state;
	uint32_t a = seccomp_run(kill_memfd, 7, NR_MEMFD_CREATE, no_args, 0);
	assert_int_equal(a, SECCOMP_RET_KILL_PROCESS);
	assert_false(seccomp_runs(a));
	assert_string_equal(seccomp_action_name(a), "KILL_PROCESS");
	assert_int_equal(seccomp_run(kill_memfd, 7, NR_MMAP, no_args, 0), SECCOMP_RET_ALLOW);
}

static void test_arguments_scratch_and_jset(void **state)
{
	long args[6] = { 0x10000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0 };

	(void)state;
	uint32_t a = seccomp_run(errno_fixed_mmap, 8, NR_MMAP, args, 0);
	assert_int_equal(a, SECCOMP_RET_ERRNO | 1);
	assert_string_equal(seccomp_action_name(a), "ERRNO");
	args[3] = MAP_PRIVATE;
	assert_true(seccomp_runs(seccomp_run(errno_fixed_mmap, 8, NR_MMAP, args, 0)));
}

static void test_the_most_restrictive_answer_wins(void **state)
{
	(void)state;
	assert_int_equal(seccomp_combine(SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | 5), SECCOMP_RET_ERRNO | 5);
	assert_int_equal(seccomp_combine(SECCOMP_RET_KILL_THREAD, SECCOMP_RET_KILL_PROCESS),
			 SECCOMP_RET_KILL_PROCESS);
	assert_int_equal(seccomp_combine(SECCOMP_RET_TRACE, SECCOMP_RET_TRAP), SECCOMP_RET_TRAP);
	assert_true(seccomp_runs(0x7ffc0000U));	/* LOG */
	assert_false(seccomp_runs(0x7fc00000U));	/* USER_NOTIF: a supervisor decides */
}

static void test_invalid_programs_are_not_trusted(void **state)
{
	static const struct sock_filter off_end[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
	};
	static const struct sock_filter past_data[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	static const struct sock_filter wraps[] = {	/* k + 4 is 0: once read 4 GiB away */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0xfffffffc),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	static const struct sock_filter div_zero[] = {
		BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};

	(void)state;
	assert_false(seccomp_runs(seccomp_run(off_end, 1, NR_MMAP, no_args, 0)));
	assert_false(seccomp_runs(seccomp_run(past_data, 2, NR_MMAP, no_args, 0)));
	assert_false(seccomp_runs(seccomp_run(wraps, 2, NR_MMAP, no_args, 0)));
	assert_false(seccomp_runs(seccomp_run(div_zero, 2, NR_MMAP, no_args, 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arch_and_number),
		cmocka_unit_test(test_arguments_scratch_and_jset),
		cmocka_unit_test(test_the_most_restrictive_answer_wins),
		cmocka_unit_test(test_invalid_programs_are_not_trusted),
	};

	u_init();
	return cmocka_run_group_tests_name("seccomp", tests, NULL, NULL);
}
