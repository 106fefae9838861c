/*
 * shield: the SIGTRAP handler livepatch puts in a process (src/shield.c), run here in
 * this process as it runs there: its code copied into a region of the same layout,
 * the table filled, the handler installed with rt_sigaction. Each test executes an
 * int3 and checks what the handler did: a jump or call emulated, a wait until the
 * int3 is gone, a trap the tracer had already handled, and every other SIGTRAP passed
 * to the program's disposition (its handler, ignored, or the default: the process
 * dies of SIGTRAP, seen in a child). Also the table shield_table() writes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "util.h"
#include "shield.h"

static uint8_t *region;		/* code page, then the table (LP_SHIELD_DATA) */
static uint8_t *text;		/* a page of test code: the "sites" */

#define K_SA_SIGINFO 0x4ULL
#define K_SA_RESTORER 0x04000000ULL
#define K_SA_NODEFER 0x40000000ULL

/* The kernel's sigaction for SIGTRAP as livepatch makes it: the handler, its restorer. */
static void install(void)
{
	uint64_t act[4] = { shield_addr((uint64_t)region, lp_shield_handler),
			    K_SA_SIGINFO | K_SA_RESTORER | K_SA_NODEFER,
			    shield_addr((uint64_t)region, lp_shield_restorer), 0 };
	assert_int_equal(syscall(SYS_rt_sigaction, SIGTRAP, act, NULL, 8), 0);
}

static uint64_t *head(void)
{
	return (uint64_t *)(region + LP_SHIELD_CODE);
}

static void set_entries(const struct lp_shield_entry *e, size_t n)
{
	memcpy(region + LP_SHIELD_CODE + LP_SHD_ENTRIES, e, n * sizeof(*e));
	head()[0] = n;
}

/* The program's disposition, as the table holds it. */
static void set_prog(uint64_t handler, uint64_t flags, uint64_t restorer)
{
	uint64_t *h = head();
	h[1] = handler;
	h[2] = flags;
	h[3] = restorer;
	h[4] = 0;
}

static int setup(void **state)
{
	(void)state;
	region = mmap(NULL, LP_SHIELD_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	text = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	assert_true(region != MAP_FAILED && text != MAP_FAILED);
	memcpy(region, lp_shield_code, (size_t)(lp_shield_code_end - lp_shield_code));
	uint64_t nap[2] = { 0, 1000000 };
	memcpy(region + LP_SHIELD_CODE + LP_SHD_NAP, nap, sizeof(nap));
	install();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	signal(SIGTRAP, SIG_DFL);
	munmap(region, LP_SHIELD_SIZE);
	munmap(text, 4096);
	return 0;
}

typedef int fn(void);

/* `mov $v, %eax; ret` at @at: a function returning @v. */
static void ret_value(uint8_t *at, int v)
{
	at[0] = 0xb8;
	memcpy(at + 1, &v, 4);
	at[5] = 0xc3;
}

/* A site whose int3 stands for a jump: the thread goes on at the target. */
static void test_jump_emulated(void **state)
{
	(void)state;
	uint8_t *site = text, *target = text + 64;
	ret_value(site, 1);
	site[0] = 0xcc;			/* int3 over `mov $1, %eax` */
	ret_value(target, 42);
	struct lp_shield_entry e = { (uint64_t)site, (uint64_t)target, LP_SHK_JMP, 5 };
	set_entries(&e, 1);
	set_prog(0, 0, 0);
	assert_int_equal(((fn *)site)(), 42);
}

/* A call: the return address pushed is the site's end, where `mov $5; ret` follows. */
static void test_call_emulated(void **state)
{
	(void)state;
	uint8_t *site = text + 128, *callee = text + 192;
	memset(site, 0x90, 5);
	site[0] = 0xcc;
	ret_value(site + 5, 5);		/* after the call: eax = 5, return */
	ret_value(callee, 9);
	struct lp_shield_entry e = { (uint64_t)site, (uint64_t)callee, LP_SHK_CALL, 5 };
	set_entries(&e, 1);
	set_prog(0, 0, 0);
	assert_int_equal(((fn *)site)(), 5);
}

static void *restore_later(void *arg)
{
	uint8_t *site = arg;
	usleep(20000);
	__atomic_store_n(site, (uint8_t)0xb8, __ATOMIC_SEQ_CST);	/* the old first byte back */
	return NULL;
}

/* PARK: the handler waits until someone (the guard) puts a first byte back, then runs it. */
static void test_park_waits_for_the_byte(void **state)
{
	(void)state;
	uint8_t *site = text + 256;
	pthread_t th;
	ret_value(site, 7);
	site[0] = 0xcc;
	struct lp_shield_entry e = { (uint64_t)site, 0, LP_SHK_PARK, 0 };
	set_entries(&e, 1);
	set_prog(0, 0, 0);
	assert_int_equal(pthread_create(&th, NULL, restore_later, site), 0);
	assert_int_equal(((fn *)site)(), 7);
	pthread_join(th, NULL);
}

static atomic_int prog_calls, prog_code, prog_blocked;

static void prog_handler(int sig, siginfo_t *si, void *uc)
{
	sigset_t now;

	(void)uc;
	if (sig == SIGTRAP) {
		prog_calls++;
		prog_code = si->si_code;
		pthread_sigmask(SIG_BLOCK, NULL, &now);
		prog_blocked = sigismember(&now, SIGTRAP);
	}
}

/* A SIGTRAP of the program's own (an int3 at no site) reaches its handler, with its siginfo. */
static void test_own_trap_reaches_the_program(void **state)
{
	(void)state;
	uint8_t *code = text + 320;
	code[0] = 0xcc;			/* int3, then `mov $3; ret` */
	ret_value(code + 1, 3);
	struct lp_shield_entry e = { (uint64_t)text + 1000, (uint64_t)text, LP_SHK_JMP, 5 };
	set_entries(&e, 1);
	set_prog((uint64_t)(uintptr_t)prog_handler, K_SA_SIGINFO | K_SA_RESTORER,
		 shield_addr((uint64_t)region, lp_shield_restorer));
	prog_calls = 0;
	assert_int_equal(((fn *)code)(), 3);
	assert_int_equal(prog_calls, 1);
	assert_int_equal(prog_code, 0x80);	/* SI_KERNEL: as the kernel sent it */
	assert_int_equal(prog_blocked, 1);	/* no SA_NODEFER: blocked in its handler */
	prog_calls = 0;
	raise(SIGTRAP);				/* not an int3: passed on as well */
	assert_int_equal(prog_calls, 1);
	assert_int_equal(prog_code, SI_TKILL);
	set_prog((uint64_t)(uintptr_t)prog_handler, K_SA_SIGINFO | K_SA_RESTORER | K_SA_NODEFER,
		 shield_addr((uint64_t)region, lp_shield_restorer));
	assert_int_equal(((fn *)code)(), 3);
	assert_int_equal(prog_calls, 2);
	assert_int_equal(prog_blocked, 0);	/* SA_NODEFER: as the program asked */
}

static uint8_t *nested_site;
static atomic_int nested_got;

static void on_usr1(int sig)
{
	(void)sig;
	nested_got = ((fn *)nested_site)();
}

static void *signal_then_restore(void *arg)
{
	pthread_t *main_thread = arg;
	usleep(5000);
	pthread_kill(*main_thread, SIGUSR1);
	usleep(20000);
	__atomic_store_n(text + 640, (uint8_t)0xb8, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * A thread parked in the handler takes a signal whose handler reaches another site of
 * ours: the handler runs again inside itself (SIGTRAP is not blocked in it; a blocked
 * one would be reset to the default and kill the process, seen in a child).
 */
static void test_nested_trap_in_a_parked_thread(void **state)
{
	(void)state;
	uint8_t *park = text + 640, *jump = text + 704, *target = text + 768;
	ret_value(park, 7);
	park[0] = 0xcc;
	ret_value(jump, 1);
	jump[0] = 0xcc;
	ret_value(target, 21);
	struct lp_shield_entry e[2] = { { (uint64_t)park, 0, LP_SHK_PARK, 0 },
					{ (uint64_t)jump, (uint64_t)target, LP_SHK_JMP, 5 } };
	set_entries(e, 2);
	set_prog(0, 0, 0);
	nested_site = jump;
	pid_t pid = fork();
	if (!pid) {
		pthread_t self = pthread_self(), th;
		signal(SIGUSR1, on_usr1);
		if (pthread_create(&th, NULL, signal_then_restore, &self))
			_exit(3);
		int r = ((fn *)park)();
		pthread_join(th, NULL);
		_exit(r == 7 && nested_got == 21 ? 0 : 2);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Ignored by the program: still ignored. */
static void test_ignored_stays_ignored(void **state)
{
	(void)state;
	uint8_t *code = text + 384;
	code[0] = 0xcc;
	ret_value(code + 1, 4);
	head()[0] = 0;
	set_prog(1 /* SIG_IGN */, 0, 0);
	assert_int_equal(((fn *)code)(), 4);
}

/*
 * Traps of ours the tracer had handled in the registers before it died: the PC at the
 * site (run it again) or at the entry's target. Nothing more is done.
 */
static void test_handled_trap_goes_on(void **state)
{
	(void)state;
	uint8_t *site = text + 448, *target = text + 512;
	ret_value(site, 11);
	ret_value(target, 12);
	struct lp_shield_entry e = { (uint64_t)site, (uint64_t)target, LP_SHK_JMP, 5 };
	set_entries(&e, 1);
	set_prog(0, 0, 0);
	/* A SIGTRAP with si_code SI_KERNEL while the PC is at the site or the target. */
	siginfo_t si = { .si_signo = SIGTRAP, .si_code = 0x80 };
	ucontext_t uc;
	memset(&uc, 0, sizeof(uc));
	uc.uc_mcontext.gregs[REG_RIP] = (greg_t)site;
	void (*h)(int, siginfo_t *, void *) =
		(void *)shield_addr((uint64_t)region, lp_shield_handler);
	h(SIGTRAP, &si, &uc);
	assert_int_equal(uc.uc_mcontext.gregs[REG_RIP], (greg_t)site);
	uc.uc_mcontext.gregs[REG_RIP] = (greg_t)target;
	h(SIGTRAP, &si, &uc);
	assert_int_equal(uc.uc_mcontext.gregs[REG_RIP], (greg_t)target);
	/* At the site + 1 with the int3 gone: back to the site, to run what is there. */
	uc.uc_mcontext.gregs[REG_RIP] = (greg_t)(site + 1);
	h(SIGTRAP, &si, &uc);
	assert_int_equal(uc.uc_mcontext.gregs[REG_RIP], (greg_t)site);
}

/* The default disposition: the process dies of SIGTRAP, as it would have. */
static void test_default_kills_with_sigtrap(void **state)
{
	(void)state;
	uint8_t *code = text + 576;
	code[0] = 0xcc;
	ret_value(code + 1, 0);
	head()[0] = 0;
	set_prog(0, 0, 0);
	pid_t pid = fork();
	if (!pid) {
		((fn *)code)();
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTRAP);
}

/* The table for a walk: each direction's emulation, PARK for a prologue or a checked walk. */
static void test_table_from_a_plan(void **state)
{
	(void)state;
	struct lp_site sites[2] = { 0 };
	sites[0].addr = 0x1000;
	sites[0].emul_new = (struct lp_emulation){ LP_EMUL_JMP, 0x2000, 5 };
	sites[0].emul_old = (struct lp_emulation){ LP_EMUL_PARK, 0x1000, 0 };
	sites[1].addr = 0x3000;
	sites[1].emul_new = (struct lp_emulation){ LP_EMUL_CALL, 0x4000, 5 };
	sites[1].emul_old = (struct lp_emulation){ LP_EMUL_JMP, 0x5000, 5 };
	struct lp_plan plan = { .sites = sites, .nsites = 2 };
	struct lp_shield_entry t[2];

	assert_int_equal(shield_table(&plan, true, false, t), 2);
	assert_int_equal(t[0].kind, LP_SHK_JMP);
	assert_int_equal(t[0].target, 0x2000);
	assert_int_equal(t[1].kind, LP_SHK_CALL);
	assert_int_equal(t[1].len, 5);
	assert_int_equal(shield_table(&plan, false, false, t), 2);
	assert_int_equal(t[0].kind, LP_SHK_PARK);
	assert_int_equal(t[1].kind, LP_SHK_JMP);
	assert_int_equal(t[1].target, 0x5000);
	assert_int_equal(shield_table(&plan, true, true, t), 2);
	assert_int_equal(t[0].kind, LP_SHK_PARK);
	assert_int_equal(t[1].kind, LP_SHK_PARK);
	plan.nsites = LP_SHIELD_MAX + 1;
	assert_int_equal(shield_table(&plan, true, false, t), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jump_emulated),
		cmocka_unit_test(test_call_emulated),
		cmocka_unit_test(test_park_waits_for_the_byte),
		cmocka_unit_test(test_own_trap_reaches_the_program),
		cmocka_unit_test(test_nested_trap_in_a_parked_thread),
		cmocka_unit_test(test_ignored_stays_ignored),
		cmocka_unit_test(test_handled_trap_goes_on),
		cmocka_unit_test(test_default_kills_with_sigtrap),
		cmocka_unit_test(test_table_from_a_plan),
	};

	u_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
