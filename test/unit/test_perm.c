/*
 * perm: why the kernel refuses to let livepatch trace a process. proc_perm_diagnose()
 * judged on facts no test machine can have (Yama at 3 is irreversible until a reboot;
 * AppArmor, SELinux), and proc_perm_facts() on real processes.
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "util.h"
#include "proc.h"

/* Root with CAP_SYS_PTRACE, in the initial user namespace, target in the same, no LSM. */
static struct lp_perm_facts root_with_cap(void)
{
	return (struct lp_perm_facts){
		.pid = 4242, .euid = 0, .target_euid = 0, .cap_eff = true, .cap_bnd = true,
		.dumpable = true, .yama = -1, .init_userns = true, .userns = LP_USERNS_SAME,
		.lsm = "capability", .lsm_listed = true, .selinux_enforcing = -1,
	};
}

/* The one line for @f: exit 3, "what (fix)", never advice to get what it has. */
static const char *diagnose(const struct lp_perm_facts *f)
{
	static struct lp_diag d;

	memset(&d, 0, sizeof(d));
	assert_int_equal(proc_perm_diagnose(f, &d), LP_ERR(LP_EXIT_PROCESS));
	assert_int_equal(d.code, LP_EXIT_PROCESS);
	assert_null(strchr(d.msg, '\n'));
	assert_int_equal(d.msg[strlen(d.msg) - 1], ')');
	assert_non_null(strstr(d.msg, " ("));
	if (f->cap_eff)
		assert_null(strstr(d.msg, "run livepatch as root with CAP_SYS_PTRACE"));
	return d.msg;
}

/* Yama 3 refuses everyone, root with the capability too: named, with the only fix. */
static void test_yama_3(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	f.yama = 3;
	const char *m = diagnose(&f);
	assert_contains(m, "process 4242");
	assert_contains(m, "Yama ptrace_scope is 3");
	assert_contains(m, "reboot");
	f.cap_eff = false;	/* without it: the same, not "run as root" */
	f.euid = 1000;
	f.target_euid = 1000;
	m = diagnose(&f);
	assert_contains(m, "Yama ptrace_scope is 3");
	assert_null(strstr(m, "run as root"));
	f.yama = 1;		/* 1 and 2: the capability helps */
	assert_contains(diagnose(&f), "Yama ptrace_scope is 1 (run as root");
	f = root_with_cap();
	f.yama = 2;
	assert_contains(diagnose(&f), "could not be determined");
}

/* A target outside livepatch's user namespace: found by the walk, or by its uid_map. */
static void test_user_namespace(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	f.init_userns = false;
	f.userns = LP_USERNS_OUTSIDE;
	assert_contains(diagnose(&f), "user namespace");
	f.userns = LP_USERNS_UNKNOWN;	/* its ns unreadable, its uid_map unlike ours */
	f.uid_map_differs = true;
	assert_contains(diagnose(&f), "user namespace");
	f.init_userns = true;		/* from the initial one, every namespace is below */
	assert_null(strstr(diagnose(&f), "user namespace"));
	f.init_userns = false;
	f.uid_map_differs = false;
	assert_null(strstr(diagnose(&f), "user namespace"));
	f.userns = LP_USERNS_BELOW;
	f.uid_map_differs = true;
	assert_null(strstr(diagnose(&f), "user namespace"));
}

/* AppArmor refuses only a confined, enforcing tracer; its profile and the target's named. */
static void test_apparmor(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	strcpy(f.lsm, "lockdown,capability,landlock,yama,apparmor");
	strcpy(f.self_label, "livepatch (enforce)");
	strcpy(f.label, "nginx (enforce)");
	const char *m = diagnose(&f);
	assert_contains(m, "AppArmor");
	assert_contains(m, "livepatch (enforce)");
	assert_contains(m, "nginx (enforce)");
	strcpy(f.self_label, "unconfined");
	m = diagnose(&f);
	assert_null(strstr(m, "AppArmor refused"));
	assert_contains(m, "could not be determined");
	assert_contains(m, "apparmor");	/* in the list of modules */
	strcpy(f.self_label, "livepatch (complain)");
	assert_null(strstr(diagnose(&f), "AppArmor refused"));
	strcpy(f.lsm, "capability,apparmorx");	/* a whole name only */
	strcpy(f.self_label, "livepatch (enforce)");
	assert_null(strstr(diagnose(&f), "AppArmor refused"));
}

/* SELinux, when enforcing (or not known not to be): both contexts named. */
static void test_selinux(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	strcpy(f.lsm, "selinux");
	f.lsm_listed = false;	/* found without securityfs */
	strcpy(f.self_label, "sysadm_u:sysadm_r:sysadm_t:s0");
	strcpy(f.label, "system_u:system_r:httpd_t:s0");
	f.selinux_enforcing = 1;
	const char *m = diagnose(&f);
	assert_contains(m, "SELinux");
	assert_contains(m, "system_u:system_r:httpd_t:s0");
	f.selinux_enforcing = 0;	/* permissive: it logs, it does not refuse */
	m = diagnose(&f);
	assert_null(strstr(m, "SELinux refused"));
	assert_contains(m, "securityfs is not mounted");
}

/* Nothing to blame: said plainly, with the modules that are active. */
static void test_undetermined(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	strcpy(f.lsm, "capability,yama,bpf");
	const char *m = diagnose(&f);
	assert_contains(m, "the kernel refused");
	assert_contains(m, "could not be determined");
	assert_contains(m, "capability,yama,bpf");
}

/* Kernel-protected: a kernel thread, livepatch itself; a thread traced by someone else. */
static void test_protected_and_traced(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	f.kthread = true;
	assert_contains(diagnose(&f), "kernel thread");
	f.kthread = false;
	f.self = true;
	assert_contains(diagnose(&f), "livepatch itself");
	f.self = false;
	f.tid = 4250;
	f.tracer = 77;
	strcpy(f.tracer_comm, "gdb");
	assert_contains(diagnose(&f), "thread 4250 of process 4242 is already traced by pid 77 (gdb)");
}

/* Without CAP_SYS_PTRACE the rules of before: bounding set, effective set, uids, dumpable. */
static void test_without_cap(void **state)
{
	struct lp_perm_facts f = root_with_cap();

	(void)state;
	f.cap_eff = false;
	f.cap_bnd = false;
	assert_contains(diagnose(&f), "bounding set");
	f.cap_bnd = true;
	assert_contains(diagnose(&f), "effective set");
	f.euid = 1000;
	f.target_euid = 0;
	assert_contains(diagnose(&f), "uid 0 and livepatch as uid 1000");
	f.target_euid = 1000;
	f.dumpable = false;
	assert_contains(diagnose(&f), "not dumpable");
	f.dumpable = true;
	assert_contains(diagnose(&f), "run livepatch as root with CAP_SYS_PTRACE");
}

/* The facts of real processes: a child is in our user namespace, and livepatch is itself. */
static void test_facts_of_real_processes(void **state)
{
	struct lp_perm_facts f;

	(void)state;
	pid_t child = fork();
	assert_true(child >= 0);
	if (!child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	proc_perm_facts(child, 0, &f);
	assert_int_equal(f.pid, child);
	assert_int_equal(f.userns, LP_USERNS_SAME);
	assert_false(f.uid_map_differs);
	assert_false(f.self);
	assert_false(f.kthread);
	assert_int_equal(f.target_euid, geteuid());
	assert_true(f.dumpable);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	proc_perm_facts(getpid(), 0, &f);
	assert_true(f.self);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yama_3),
		cmocka_unit_test(test_user_namespace),
		cmocka_unit_test(test_apparmor),
		cmocka_unit_test(test_selinux),
		cmocka_unit_test(test_undetermined),
		cmocka_unit_test(test_protected_and_traced),
		cmocka_unit_test(test_without_cap),
		cmocka_unit_test(test_facts_of_real_processes),
	};

	u_init();
	return cmocka_run_group_tests_name("perm", tests, NULL, NULL) ? 1 : 0;
}
