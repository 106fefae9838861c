/*
 * proc: proc_open() refusing processes that cannot be patched (LP_EXIT_PROCESS
 * and why), the readers of /proc/PID/stat, status and maps, and the error-code
 * plumbing (lp_fail, lp_exit_code).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
#include "util.h"
#include "proc.h"

static struct lp_proc P;
static struct lp_diag D;

static int reset(void **state)
{
	(void)state;
	memset(&D, 0, sizeof(D));
	memset(&P, 0, sizeof(P));
	P.mem_fd = -1;
	return 0;
}

static int cleanup(void **state)
{
	(void)state;
	proc_close(&P);	/* proc_open leaves @p closable even when it fails */
	return 0;
}

/* Expect proc_open(pid) to fail with LP_EXIT_PROCESS and a message containing @why. */
static void expect_process_error(pid_t pid, const char *why)
{
	int ret = proc_open(&P, pid, &D);

	assert_int_equal(ret, LP_ERR(LP_EXIT_PROCESS));
	assert_int_equal(D.code, LP_EXIT_PROCESS);
	assert_int_equal(lp_exit_code(ret), LP_EXIT_PROCESS);
	assert_contains(D.msg, why);
}

/* A pid that does not exist (pid_max is never a valid pid): LP_EXIT_PROCESS, "no process". */
static void test_proc_open_missing_pid(void **state)
{
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
	int pid_max = 0;

	(void)state;
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &pid_max), 1);
	fclose(f);
	expect_process_error(pid_max, "no process with pid");
}

/* A child that has exited and is not reaped yet. */
static pid_t start_zombie(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid)
		_exit(0);
	assert_true(u_wait_state(pid, 'Z'));
	return pid;
}

/* An exited, unreaped child: LP_EXIT_PROCESS and the message says "zombie". */
static void test_proc_open_zombie(void **state)
{
	pid_t pid = start_zombie();

	(void)state;
	expect_process_error(pid, "zombie");
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* A pid <= 0 is a usage error, not a process problem. */
static void test_proc_open_invalid_pid_usage(void **state)
{
	(void)state;
	assert_int_equal(proc_open(&P, 0, &D), LP_ERR(LP_EXIT_USAGE));
	assert_int_equal(D.code, LP_EXIT_USAGE);
}

static int ready_pipe[2], quit_pipe[2];
static pid_t thread_tid;

static void *blocked_thread(void *arg)
{
	char c;

	(void)arg;
	thread_tid = gettid();
	if (write(ready_pipe[1], "r", 1) != 1 || read(quit_pipe[0], &c, 1) != 1)
		return NULL;
	return NULL;
}

/* A thread id that is not a process id: LP_EXIT_PROCESS, naming the process to use. */
static void test_proc_open_thread_id_refused(void **state)
{
	pthread_t t;
	char c, want[64];

	(void)state;
	assert_int_equal(pipe(ready_pipe), 0);
	assert_int_equal(pipe(quit_pipe), 0);
	assert_int_equal(pthread_create(&t, NULL, blocked_thread, NULL), 0);
	assert_int_equal(read(ready_pipe[0], &c, 1), 1);
	snprintf(want, sizeof(want), "is a thread of process %d", getpid());
	expect_process_error(thread_tid, want);
	assert_int_equal(write(quit_pipe[1], "q", 1), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(ready_pipe[0]);
	close(ready_pipe[1]);
	close(quit_pipe[0]);
	close(quit_pipe[1]);
}

/* A process traced by someone else: LP_EXIT_PROCESS naming the tracer's pid. */
static void test_proc_open_traced_names_tracer(void **state)
{
	pid_t pid = u_start(u_fixture("fixture_prog", 0), u_fixture("libfixture.so", 1));
	char want[64];

	(void)state;
	assert_true(pid > 0);
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL)) {
		u_stop(pid);
		fail_msg("PTRACE_SEIZE: %s", strerror(errno));
	}
	snprintf(want, sizeof(want), "already traced by pid %d", getpid());
	expect_process_error(pid, want);
	u_stop(pid);
}

/* A live process opens: pid, comm and a readable /proc/PID/mem. */
static void test_proc_open_live_process(void **state)
{
	pid_t pid = u_start(u_fixture("fixture_prog", 0), u_fixture("libfixture.so", 1));
	int ret;

	(void)state;
	assert_true(pid > 0);
	ret = proc_open(&P, pid, &D);
	u_stop(pid);
	assert_int_equal(ret, 0);
	assert_int_equal(D.code, 0);
	assert_int_equal(P.pid, pid);
	assert_string_equal(P.comm, "fixture_prog");
	assert_true(P.mem_fd >= 0);
	assert_true(P.nobjs >= 2);
}

/* The first bytes of fixture NAME's file, as check_arch reads them from /proc/PID/exe. */
static size_t read_ident(const char *name, unsigned char *buf, size_t cap)
{
	FILE *f = fopen(u_fixture(name, 0), "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* An i386 program (sleep32, read, not run: the kernel may lack 32-bit emulation) is
 * refused with LP_EXIT_PROCESS "not an x86-64 program (32-bit, machine 3)"; an x86-64
 * one passes; a short or non-ELF header is left to the later checks. */
static void test_proc_check_elf_arch(void **state)
{
	unsigned char id[64];
	size_t n;

	(void)state;
	n = read_ident("sleep32", id, sizeof(id));
	assert_int_equal(proc_check_elf_arch(1234, id, n, &D), LP_ERR(LP_EXIT_PROCESS));
	assert_int_equal(D.code, LP_EXIT_PROCESS);
	assert_contains(D.msg, "process 1234 is not an x86-64 program (32-bit, machine 3)");

	memset(&D, 0, sizeof(D));
	n = read_ident("fixture_prog", id, sizeof(id));
	assert_int_equal(proc_check_elf_arch(1234, id, n, &D), 0);
	assert_int_equal(proc_check_elf_arch(1234, id, 10, &D), 0);
	memcpy(id, "#!/bin/sh\n", 10);
	assert_int_equal(proc_check_elf_arch(1234, id, n, &D), 0);
	assert_int_equal(D.code, 0);
}

/* A stat line whose comm holds ") (" and spaces: the fields after it are still found. */
static void test_stat_field_comm_with_parens(void **state)
{
	const char *line = "42 (x) (y z ) R 7 42 42 0 -1 4194560 12 0\n";

	(void)state;
	assert_string_equal(proc_stat_field(line, 1), line);
	assert_int_equal(strncmp(proc_stat_field(line, 2), "x) (y z ) R", 11), 0);
	assert_int_equal(*proc_stat_field(line, 3), 'R');
	assert_int_equal(strtol(proc_stat_field(line, 4), NULL, 10), 7);
	assert_int_equal(strtol(proc_stat_field(line, 9), NULL, 10), 4194560);
	assert_int_equal(strtol(proc_stat_field(line, 11), NULL, 10), 0);
	assert_null(proc_stat_field(line, 12));		/* past the end */
	assert_null(proc_stat_field(line, 0));
	assert_null(proc_stat_field("42 (cut short", 3));	/* no ')' */
	assert_null(proc_stat_field("42 (x)", 3));
}

/* The three shapes of a syscall line, and lines that are none of them. */
static void test_syscall_parse_shapes(void **state)
{
	struct lp_syscall s;

	(void)state;
	assert_int_equal(proc_syscall_parse("running\n", &s), 0);
	assert_true(s.running);
	assert_int_equal(proc_syscall_parse("-1 0x7ffc1000 0x401a2b\n", &s), 0);
	assert_false(s.running);
	assert_int_equal(s.nr, -1);
	assert_int_equal(s.sp, 0x7ffc1000);
	assert_int_equal(s.pc, 0x401a2b);
	assert_int_equal(proc_syscall_parse("7 0x1 0x2 0x3 0x4 0x5 0x6 0x7ffd0 0x4010\n", &s), 0);
	assert_int_equal(s.nr, 7);
	assert_int_equal(s.sp, 0x7ffd0);
	assert_int_equal(s.pc, 0x4010);
	assert_int_equal(proc_syscall_parse("", &s), -EINVAL);
	assert_int_equal(proc_syscall_parse("runningx", &s), -EINVAL);
	assert_int_equal(proc_syscall_parse("-1 0x10", &s), -EINVAL);		/* no PC */
	assert_int_equal(proc_syscall_parse("7 0x1 0x2", &s), -EINVAL);		/* a call, no arguments */
	assert_int_equal(proc_syscall_parse("-1 0x1 -0x2", &s), -EINVAL);
	assert_int_equal(proc_syscall_parse("-1 0x1 0x2 junk", &s), -EINVAL);
}

/* Our own stat, read while this thread's comm holds ") (" and spaces. */
static void test_stat_read_own_thread(void **state)
{
	char old[16], buf[1024];
	const char *f;

	(void)state;
	assert_int_equal(prctl(PR_GET_NAME, old), 0);
	assert_int_equal(prctl(PR_SET_NAME, "a) (b c) d"), 0);
	int n = proc_stat_read(getpid(), gettid(), buf, sizeof(buf));
	assert_int_equal(prctl(PR_SET_NAME, old), 0);
	assert_true(n > 0);
	assert_int_equal(strncmp(proc_stat_field(buf, 2), "a) (b c) d)", 11), 0);
	assert_int_equal(*proc_stat_field(buf, 3), 'R');
	assert_non_null(f = proc_stat_field(buf, 4));
	assert_int_equal(strtol(f, NULL, 10), getppid());
	assert_false(proc_task_exiting(getpid(), gettid()));
	assert_int_equal(proc_stat_read(getpid(), 0, buf, sizeof(buf)) > 0, 1);
	assert_int_equal(strtol(proc_stat_field(buf, 1), NULL, 10), getpid());
}

/* An exited, unreaped child is exiting; so is one already reaped. */
static void test_task_exiting_zombie(void **state)
{
	pid_t pid = start_zombie();

	(void)state;
	assert_true(proc_task_exiting(pid, pid));
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_true(proc_task_exiting(pid, pid));
}

/* A status field is found by its whole key, at the start of a line; a missing one is NULL. */
static void test_status_value(void **state)
{
	const char *st = "Name:\tlp x\nState:\tS (sleeping)\nTgid:\t12\nTracerPid:\t0\n"
			 "SigIgn:\t0000000000001000\nx86_Thread_features:\tshstk wrss";

	(void)state;
	assert_int_equal(strtol(proc_status_value(st, "Tgid"), NULL, 10), 12);
	assert_int_equal(*proc_status_value(st, "State"), 'S');
	assert_int_equal(strncmp(proc_status_value(st, "Name"), "lp x\n", 5), 0);
	assert_int_equal(strtoull(proc_status_value(st, "SigIgn"), NULL, 16), 0x1000);
	assert_string_equal(proc_status_value(st, "x86_Thread_features"), "shstk wrss");
	assert_null(proc_status_value(st, "Tg"));	/* a prefix of a key */
	assert_null(proc_status_value(st, "Pid"));	/* the end of a key */
	assert_null(proc_status_value(st, "SigCgt"));
	assert_null(proc_status_value("", "Tgid"));
}

/* proc_status_field(): a number, or -1 for a missing field or process. */
static void test_status_field_missing(void **state)
{
	(void)state;
	assert_int_equal(proc_status_field(getpid(), "Tgid"), getpid());
	assert_int_equal(proc_status_field(gettid(), "TracerPid"), 0);
	assert_int_equal(proc_status_field(getpid(), "NoSuchField"), -1);
	assert_int_equal(proc_status_field(getpid(), "Tg"), -1);
	assert_int_equal(proc_status_field(0x7fffffff, "Tgid"), -1);
	assert_true(proc_count_threads(getpid()) >= 1);
}

/* Maps lines: every field, paths with spaces, " (deleted)", pseudo-paths, none. */
static void test_maps_parse_lines(void **state)
{
	char a[] = "7f0000000000-7f0000003000 r-xp 00001000 08:12 1234   /opt/my dir/lib x.so (deleted)\n";
	char b[] = "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]";
	char c[] = "7f0000004000-7f0000005000 rw-p 00000000 00:00 0 ";
	char e[] = "7f0000004000-7f0000005000 r--p 00000000 fd:01 77 /a b/c (deleted) d";
	char bad[] = "not a maps line";
	struct lp_maps_line m;

	(void)state;
	assert_int_equal(proc_maps_parse(a, &m), 0);
	assert_int_equal(m.start, 0x7f0000000000);
	assert_int_equal(m.end, 0x7f0000003000);
	assert_int_equal(m.offset, 0x1000);
	assert_int_equal(m.dev, (0x8ULL << 32) | 0x12);
	assert_int_equal(m.inode, 1234);
	assert_string_equal(m.perms, "r-xp");
	assert_string_equal(m.path, "/opt/my dir/lib x.so");
	assert_true(m.deleted);
	assert_int_equal(proc_maps_parse(b, &m), 0);
	assert_string_equal(m.path, "[stack]");
	assert_int_equal(m.inode, 0);
	assert_false(m.deleted);
	assert_int_equal(proc_maps_parse(c, &m), 0);
	assert_string_equal(m.path, "");
	assert_int_equal(proc_maps_parse(e, &m), 0);
	assert_string_equal(m.path, "/a b/c (deleted) d");
	assert_false(m.deleted);
	assert_int_equal(proc_maps_parse(bad, &m), -EINVAL);
}

struct seen_lines {
	size_t n, bad;
	bool deleted_seen;
	const char *want;	/* a path to look for */
};

static int check_line(const struct lp_maps_line *m, void *arg)
{
	struct seen_lines *s = arg;
	char want[64];

	snprintf(want, sizeof(want), "/lib dir/%05zu name%s.so", s->n, s->n % 7 ? "" : " x");
	s->bad += m->start != 0x1000 * s->n || strcmp(m->path, want) || m->deleted != (s->n % 3 == 0);
	s->n++;
	return 0;
}

/*
 * A maps text read in pieces: lines cut by the read buffer, a line longer than it
 * (passed over), and a last line without a newline.
 */
static void test_maps_walk_fd_pieces(void **state)
{
	char tmpl[] = "/tmp/lp-test-maps.XXXXXX";
	int fd = mkstemp(tmpl);
	struct seen_lines s = { 0 };
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_non_null(f = fdopen(dup(fd), "w"));
	for (size_t i = 0; i < 3000; i++) {
		if (i == 1500) {	/* too long to be read: passed over, its tail too */
			fprintf(f, "0-1 r--p 00000000 00:00 0 /");
			for (int k = 0; k < 5 * PATH_MAX; k++)
				fputc('0', f);
			fprintf(f, "-1 r--p 00000000 00:00 0 /its tail\n");
		}
		fprintf(f, "%zx-%zx r-xp 00000000 08:01 %zu       /lib dir/%05zu name%s.so%s%s",
			 0x1000 * i, 0x1000 * i + 0x1000, i + 1, i, i % 7 ? "" : " x",
			 i % 3 ? "" : " (deleted)", i == 2999 ? "" : "\n");
	}
	assert_int_equal(fclose(f), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(proc_maps_walk_fd(fd, check_line, &s), 0);
	close(fd);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.n, 3000);
}

static int find_path(const struct lp_maps_line *m, void *arg)
{
	struct seen_lines *s = arg;

	if (strcmp(m->path, s->want))
		return 0;
	s->deleted_seen = m->deleted;
	return 1;	/* stops the walk, and is returned */
}

/* Our own maps: a deleted file with spaces and parentheses in its path is found as such. */
static void test_maps_walk_deleted_with_spaces(void **state)
{
	char dir[] = "/tmp/lp-test-proc.XXXXXX", path[128];
	struct seen_lines s = { .want = path };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a b (c) d.bin", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	void *at = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	assert_true(at != MAP_FAILED);
	assert_int_equal(proc_maps_walk(getpid(), find_path, &s), 1);
	assert_false(s.deleted_seen);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	s.deleted_seen = false;
	assert_int_equal(proc_maps_walk(getpid(), find_path, &s), 1);
	assert_true(s.deleted_seen);
	munmap(at, 4096);
	assert_int_equal(proc_maps_walk(getpid(), find_path, &s), 0);
	assert_int_equal(proc_maps_walk(0x7fffffff, find_path, &s), -ENOENT);
}

/* lp_exit_code: success -> 0, LP_ERR(code) -> code, plain -errno -> 1 (internal). */
static void test_lp_exit_code_mapping(void **state)
{
	(void)state;
	assert_int_equal(lp_exit_code(0), LP_EXIT_OK);
	assert_int_equal(lp_exit_code(42), LP_EXIT_OK);
	for (int code = LP_EXIT_INTERNAL; code <= LP_EXIT_VERIFY; code++)
		assert_int_equal(lp_exit_code(LP_ERR(code)), code);
	assert_int_equal(lp_exit_code(-ENOENT), LP_EXIT_INTERNAL);
	assert_int_equal(lp_exit_code(-ENOMEM), LP_EXIT_INTERNAL);
	assert_int_equal(lp_exit_code(-(LP_ERR_BASE - 1)), LP_EXIT_INTERNAL);
	assert_int_equal(lp_exit_code(-1), LP_EXIT_INTERNAL);
}

/* lp_fail keeps the first failure and returns its code (exit code and message agree),
 * and accepts a NULL sink. */
static void test_lp_fail_first_wins(void **state)
{
	struct lp_diag d = { 0 };

	(void)state;
	assert_int_equal(lp_fail(&d, LP_EXIT_SITE, "first %d", 1), LP_ERR(LP_EXIT_SITE));
	assert_int_equal(lp_fail(&d, LP_EXIT_SYMBOL, "second"), LP_ERR(LP_EXIT_SITE));
	assert_int_equal(d.code, LP_EXIT_SITE);
	assert_string_equal(d.msg, "first 1");
	assert_int_equal(lp_fail(NULL, LP_EXIT_USAGE, "x"), LP_ERR(LP_EXIT_USAGE));
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset, cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_proc_open_missing_pid),
		T(test_proc_open_zombie),
		T(test_proc_open_invalid_pid_usage),
		T(test_proc_open_thread_id_refused),
		T(test_proc_open_traced_names_tracer),
		T(test_proc_open_live_process),
		T(test_proc_check_elf_arch),
		T(test_stat_field_comm_with_parens),
		T(test_stat_read_own_thread),
		T(test_syscall_parse_shapes),
		T(test_task_exiting_zombie),
		T(test_status_value),
		T(test_status_field_missing),
		T(test_maps_parse_lines),
		T(test_maps_walk_fd_pieces),
		T(test_maps_walk_deleted_with_spaces),
		T(test_lp_exit_code_mapping),
		T(test_lp_fail_first_wins),
	};

	u_init();
	return cmocka_run_group_tests_name("proc", tests, NULL, NULL) ? 1 : 0;
}
