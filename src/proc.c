/*
 * The live process as /proc shows it (proc.h): identity checks, permission diagnosis,
 * mappings, memory reads, and the readers of stat, status and maps. Nothing here
 * attaches or stops anything.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "proc.h"

/*
 * @path into @buf, NUL-terminated, in one read (a /proc file of one record shows
 * itself whole to one read): its length, or -errno.
 */
static int read_once(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = 0;
	return (int)n;
}

int proc_stat_read(pid_t pid, pid_t tid, char *buf, size_t cap)
{
	char path[96];

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	return read_once(path, buf, cap);
}

const char *proc_stat_field(const char *stat, int n)
{
	const char *open = strchr(stat, '('), *close = strrchr(stat, ')');

	if (n < 1 || !open || !close || close < open)
		return NULL;
	if (n <= 2)
		return n == 1 ? stat : open + 1;
	for (const char *q = close + 1; ; n--) {	/* after comm: " state ppid pgrp ..." */
		if (*q != ' ' || !q[1] || q[1] == ' ' || q[1] == '\n')
			return NULL;
		if (n == 3)
			return q + 1;
		q += 1 + strcspn(q + 1, " \n");
	}
}

int proc_syscall_parse(const char *line, struct lp_syscall *s)
{
	uint64_t v[8];
	const char *q;
	char *e;
	int n = 0;

	memset(s, 0, sizeof(*s));
	if (!strncmp(line, "running", 7) && (!line[7] || line[7] == '\n')) {
		s->running = true;
		return 0;
	}
	errno = 0;
	s->nr = strtol(line, &e, 10);
	if (e == line || errno || (*e != ' ' && *e != '\n' && *e))
		return -EINVAL;
	for (q = e; *q == ' ' && n < 8; n++, q = e) {	/* the arguments, SP and PC */
		if (!isxdigit((unsigned char)q[1]))	/* strtoull would take blanks and signs */
			return -EINVAL;
		errno = 0;
		v[n] = strtoull(q + 1, &e, 16);
		if (e == q + 1 || errno)
			return -EINVAL;
	}
	if ((*q && *q != '\n') || (n != 2 && n != 8) || (n == 2) != (s->nr < 0))
		return -EINVAL;
	s->sp = v[n - 2];
	s->pc = v[n - 1];
	return 0;
}

bool proc_task_exiting(pid_t pid, pid_t tid)
{
	char buf[256];
	const char *state = proc_stat_read(pid, tid, buf, sizeof(buf)) < 0 ? NULL :
			    proc_stat_field(buf, 3);

	return !state || *state == 'Z' || *state == 'X';
}

struct status {
	char name[64];
	char state;
	pid_t tgid, tracer;
	int threads;
	uid_t uid[4];
	uint64_t cap_eff, cap_bnd;
};

#define CAP_SYS_PTRACE_BIT 19

int proc_status_read(pid_t tid, char *buf, size_t cap)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	return read_once(path, buf, cap);
}

const char *proc_status_value(const char *status, const char *key)
{
	size_t klen = strlen(key);

	for (const char *l = status; *l; l++) {
		if (!strncmp(l, key, klen) && l[klen] == ':')
			return l + klen + 1 + strspn(l + klen + 1, " \t");
		if (!(l = strchr(l, '\n')))
			break;
	}
	return NULL;
}

long proc_status_field(pid_t tid, const char *key)
{
	char buf[LP_STATUS_MAX];
	const char *v = proc_status_read(tid, buf, sizeof(buf)) < 0 ? NULL :
			proc_status_value(buf, key);

	return v ? strtol(v, NULL, 10) : -1;
}

static uint64_t status_number(const char *status, const char *key, int base)
{
	const char *v = proc_status_value(status, key);

	return v ? strtoull(v, NULL, base) : 0;
}

static int read_status(pid_t pid, struct status *st)
{
	char buf[LP_STATUS_MAX];
	const char *v;
	int ret = proc_status_read(pid, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	memset(st, 0, sizeof(*st));
	if ((v = proc_status_value(buf, "Name")))
		snprintf(st->name, sizeof(st->name), "%.*s", (int)strcspn(v, "\n"), v);
	if ((v = proc_status_value(buf, "State")))
		st->state = *v;
	st->tgid = (pid_t)status_number(buf, "Tgid", 10);
	st->tracer = (pid_t)status_number(buf, "TracerPid", 10);
	st->threads = (int)status_number(buf, "Threads", 10);
	if ((v = proc_status_value(buf, "Uid"))) {
		for (int i = 0; i < 4; i++) {
			char *e;
			st->uid[i] = (unsigned int)strtoul(v, &e, 10);
			v = e;
		}
	}
	st->cap_eff = status_number(buf, "CapEff", 16);
	st->cap_bnd = status_number(buf, "CapBnd", 16);
	return 0;
}

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	buf[0] = 0;
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

int proc_count_threads(pid_t pid)
{
	long n = proc_status_field(pid, "Threads");

	return n > 0 ? (int)n : 0;
}

/* The first line of @path into @buf, without its newline; "" when it cannot be read. */
static void read_line(const char *path, char *buf, size_t cap)
{
	if (read_once(path, buf, cap) < 0)
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

static int yama_scope(void)
{
	char v[16];

	read_line("/proc/sys/kernel/yama/ptrace_scope", v, sizeof(v));
	return v[0] ? atoi(v) : -1;
}

/*
 * The initial user namespace maps every id to itself: "0 0 4294967295", one line. A
 * child given that whole identity map reads the same; only userns_of() tells it apart.
 */
static bool in_init_userns(void)
{
	char map[256];
	unsigned long first, lower, count;
	int used = 0;

	read_line("/proc/self/uid_map", map, sizeof(map));
	return sscanf(map, "%lu %lu %lu%n", &first, &lower, &count, &used) == 3 &&
	       !first && !lower && count == 4294967295UL && !map[used + strspn(map + used, " ")];
}

/*
 * Where process @pid's user namespace is, seen from livepatch's. NS_GET_PARENT fails
 * with EPERM once the parent would be above livepatch's own namespace, so a walk up
 * the target's chain either meets livepatch's (the target's is below it: livepatch's
 * capabilities reach it) or stops short (an ancestor's, or an unrelated one). Its
 * /proc/PID/ns/user cannot be opened when the kernel refuses even to read the process.
 */
static enum lp_userns userns_of(pid_t pid)
{
	char path[64];
	struct stat self, ns;
	enum lp_userns where = LP_USERNS_UNKNOWN;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || stat("/proc/self/ns/user", &self)) {
		if (fd >= 0)
			close(fd);
		return LP_USERNS_UNKNOWN;
	}
	for (int depth = 0; depth <= 33 && !fstat(fd, &ns); depth++) {	/* 32 levels at most */
		if (ns.st_dev == self.st_dev && ns.st_ino == self.st_ino) {
			where = depth ? LP_USERNS_BELOW : LP_USERNS_SAME;
			break;
		}
		int up = ioctl(fd, NS_GET_PARENT);
		if (up < 0) {
			where = errno == EPERM ? LP_USERNS_OUTSIDE : LP_USERNS_UNKNOWN;
			break;
		}
		close(fd);
		fd = up;
	}
	close(fd);
	return where;
}

/*
 * The security modules: securityfs's list when it is mounted; else only the two that
 * label processes, from their own files (@listed false: others may be active).
 */
static void active_lsms(struct lp_perm_facts *f)
{
	char aa[8];

	read_line("/sys/kernel/security/lsm", f->lsm, sizeof(f->lsm));
	f->lsm_listed = f->lsm[0] != 0;
	if (!f->lsm_listed) {
		read_line("/sys/module/apparmor/parameters/enabled", aa, sizeof(aa));
		bool se = !access("/sys/fs/selinux/enforce", F_OK);
		snprintf(f->lsm, sizeof(f->lsm), "%s%s%s", aa[0] == 'Y' ? "apparmor" : "",
			 aa[0] == 'Y' && se ? "," : "", se ? "selinux" : "");
	}
	read_line("/sys/fs/selinux/enforce", aa, sizeof(aa));
	f->selinux_enforcing = aa[0] ? aa[0] == '1' : -1;
}

static bool is_kernel_thread(pid_t pid);

void proc_perm_facts(pid_t pid, pid_t tid, struct lp_perm_facts *f)
{
	struct status self, st;
	struct stat sb;
	char path[96], a[4096], b[4096];

	memset(f, 0, sizeof(*f));
	f->pid = pid;
	f->tid = tid;
	f->euid = geteuid();
	f->self = pid == getpid();
	f->kthread = is_kernel_thread(pid);
	if (!read_status(getpid(), &self)) {
		f->cap_eff = self.cap_eff & (1ULL << CAP_SYS_PTRACE_BIT);
		f->cap_bnd = self.cap_bnd & (1ULL << CAP_SYS_PTRACE_BIT);
	}
	f->target_euid = read_status(pid, &st) ? (uid_t)-1 : st.uid[1];
	f->tracer = (pid_t)proc_status_field(tid ? tid : pid, "TracerPid");
	if (f->tracer > 0)
		read_comm(f->tracer, f->tracer_comm, sizeof(f->tracer_comm));
	/* A non-dumpable process's /proc files (not its directory) belong to root. */
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f->dumpable = stat(path, &sb) || sb.st_uid == f->target_euid;
	f->yama = yama_scope();
	f->init_userns = in_init_userns();
	f->userns = userns_of(pid);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
	read_line(path, a, sizeof(a));
	read_line("/proc/self/uid_map", b, sizeof(b));
	f->uid_map_differs = a[0] && b[0] && strcmp(a, b);
	active_lsms(f);
	snprintf(path, sizeof(path), "/proc/%d/attr/current", pid);
	read_line(path, f->label, sizeof(f->label));
	read_line("/proc/self/attr/current", f->self_label, sizeof(f->self_label));
}

static bool lsm_active(const struct lp_perm_facts *f, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = f->lsm; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	}
	return false;
}

/*
 * The ptrace access rules a process without CAP_SYS_PTRACE meets (strace's diagnosis):
 * its capability, the uids, dumpability, Yama's scope 1 and 2.
 */
static int diagnose_no_cap(const struct lp_perm_facts *f, struct lp_diag *d)
{
	pid_t pid = f->pid;

	if (f->euid == 0 && !f->cap_bnd)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: CAP_SYS_PTRACE is not in this "
			       "process's bounding set (in a container, add --cap-add=SYS_PTRACE "
			       "or run livepatch in the host's namespace)", pid);
	if (f->euid == 0)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: livepatch runs as root but without "
			       "CAP_SYS_PTRACE in its effective set (securebits or a capability-dropping "
			       "wrapper; run it with CAP_SYS_PTRACE, e.g. from a root shell)", pid);
	if (f->target_euid != f->euid)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: it runs as uid %u and livepatch as "
			       "uid %u (run livepatch as root or as uid %u)", pid, f->target_euid, f->euid,
			       f->target_euid);
	if (!f->dumpable)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: it is not dumpable (setuid, or "
			       "prctl(PR_SET_DUMPABLE, 0)) (run livepatch as root with CAP_SYS_PTRACE)", pid);
	if (f->yama >= 1)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: Yama ptrace_scope is %d (run as root, "
			       "or lower /proc/sys/kernel/yama/ptrace_scope to 0)", pid, f->yama);
	return lp_fail(d, LP_EXIT_PROCESS,
		       "not permitted to trace process %d (run livepatch as root with CAP_SYS_PTRACE)", pid);
}

/*
 * With CAP_SYS_PTRACE, in the order the kernel checks (__ptrace_may_access): the
 * capability counts only in the target's user namespace or an ancestor of it; then
 * the security modules: Yama, AppArmor (never for an unconfined tracer, nor one in
 * complain mode), SELinux (when enforcing).
 */
static int diagnose_cap(const struct lp_perm_facts *f, struct lp_diag *d)
{
	pid_t pid = f->pid;

	if (f->userns == LP_USERNS_OUTSIDE ||
	    (f->userns == LP_USERNS_UNKNOWN && !f->init_userns && f->uid_map_differs))
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: it is in a user namespace that is "
			       "neither livepatch's nor below it (an ancestor's, such as the host's, or an "
			       "unrelated one), where livepatch's CAP_SYS_PTRACE does not count (run "
			       "livepatch in the process's user namespace or an ancestor of it, e.g. on "
			       "the host instead of in a container)", pid);
	if (lsm_active(f, "apparmor") && strcmp(f->self_label, "unconfined") &&
	    !strstr(f->self_label, "(complain)"))
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: livepatch has CAP_SYS_PTRACE, so "
			       "AppArmor refused (livepatch's profile: %s; the process's: %s) (allow "
			       "ptrace (trace) between the two profiles, or run livepatch unconfined)", pid,
			       f->self_label[0] ? f->self_label : "unknown", f->label[0] ? f->label : "unknown");
	if (lsm_active(f, "selinux") && f->selinux_enforcing)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: livepatch has CAP_SYS_PTRACE, so "
			       "SELinux refused (livepatch's context: %s; the process's: %s) (allow the "
			       "ptrace permission between the two domains, see the AVC denial in the "
			       "audit log, or check the deny_ptrace boolean)", pid,
			       f->self_label[0] ? f->self_label : "unknown", f->label[0] ? f->label : "unknown");
	return lp_fail(d, LP_EXIT_PROCESS,
		       "not permitted to trace process %d: the kernel refused although livepatch has "
		       "CAP_SYS_PTRACE, and the cause could not be determined (%s%s; look for a "
		       "denial in the kernel log and the audit log)", pid,
		       f->lsm_listed ? "active security modules: " : "securityfs is not mounted, so "
		       "the active security modules are unknown", f->lsm_listed ? f->lsm : "");
}

int proc_perm_diagnose(const struct lp_perm_facts *f, struct lp_diag *d)
{
	pid_t pid = f->pid;

	if (f->self)
		return lp_fail(d, LP_EXIT_PROCESS, "process %d is livepatch itself: the kernel lets no "
			       "process trace its own threads (give the pid of another program)", pid);
	if (f->kthread)
		return lp_fail(d, LP_EXIT_PROCESS, "process %d is a kernel thread: the kernel lets "
			       "nobody trace it (give the pid of a user-space program)", pid);
	if (f->tracer > 0 && f->tid)
		return lp_fail(d, LP_EXIT_PROCESS, "thread %d of process %d is already traced by pid "
			       "%d (%s) (detach that debugger or tracer, then retry)", f->tid, pid,
			       f->tracer, f->tracer_comm[0] ? f->tracer_comm : "?");
	if (f->yama == 3)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "not permitted to trace process %d: Yama ptrace_scope is 3, which forbids "
			       "every attach, root's with CAP_SYS_PTRACE included, until the next boot "
			       "(set kernel.yama.ptrace_scope to 2 or less at boot, e.g. in "
			       "/etc/sysctl.d, and reboot)", pid);
	return f->cap_eff ? diagnose_cap(f, d) : diagnose_no_cap(f, d);
}

int proc_explain_eperm(pid_t pid, pid_t tid, struct lp_diag *d)
{
	struct lp_perm_facts f;

	proc_perm_facts(pid, tid, &f);
	return proc_perm_diagnose(&f, d);
}

int proc_check_elf_arch(pid_t pid, const unsigned char *id, size_t n, struct lp_diag *d)
{
	uint16_t machine;

	if (n < EI_NIDENT + 4 || memcmp(id, ELFMAG, SELFMAG))
		return 0;
	memcpy(&machine, id + 18, 2);
	if (id[EI_CLASS] != ELFCLASS64 || machine != EM_X86_64)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "process %d is not an x86-64 program (%s, machine %u) (livepatch patches "
			       "64-bit x86-64 processes only)", pid,
			       id[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit", machine);
	return 0;
}

static int check_arch(pid_t pid, pid_t via, struct lp_diag *d)
{
	char path[64];
	unsigned char id[EI_NIDENT + 4];
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/exe", via);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* kernel threads and exited leaders: judged elsewhere */
	n = (int)pread(fd, id, sizeof(id), 0);
	close(fd);
	return proc_check_elf_arch(pid, id, n < 0 ? 0 : (size_t)n, d);
}

#define PF_KTHREAD 0x00200000

static bool is_kernel_thread(pid_t pid)
{
	char buf[1024];
	const char *flags = proc_stat_read(pid, 0, buf, sizeof(buf)) < 0 ? NULL :
			    proc_stat_field(buf, 9);

	return flags && (strtoul(flags, NULL, 10) & PF_KTHREAD);
}

static int check_process(pid_t pid, struct status *st, struct lp_diag *d)
{
	char tracer[64];
	int ret = read_status(pid, st);

	if (ret == -ENOENT || ret == -ESRCH)
		return lp_fail(d, LP_EXIT_PROCESS, "no process with pid %d (check the pid, e.g. with pgrep)", pid);
	if (ret)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot read /proc/%d/status: %s (is /proc mounted?)",
			       pid, strerror(-ret));
	if (st->tgid != pid)
		return lp_fail(d, LP_EXIT_PROCESS, "%d is a thread of process %d (use --pid %d)",
			       pid, st->tgid, st->tgid);
	if (st->state == 'Z' && st->threads <= 1)
		return lp_fail(d, LP_EXIT_PROCESS,
			       "process %d is a zombie: it has exited and waits for its parent to reap it "
			       "(nothing to patch; restart the service)", pid);
	if (st->state == 'X')
		return lp_fail(d, LP_EXIT_PROCESS, "process %d is exiting (nothing to patch)", pid);
	if (is_kernel_thread(pid))
		return lp_fail(d, LP_EXIT_PROCESS, "process %d (%s) is a kernel thread: it has no user "
			       "code to patch (give the pid of a user-space program)", pid, st->name);
	if (st->tracer) {
		read_comm(st->tracer, tracer, sizeof(tracer));
		return lp_fail(d, LP_EXIT_PROCESS,
			       "process %d is already traced by pid %d (%s) (detach that debugger or "
			       "tracer, then retry)", pid, st->tracer, tracer[0] ? tracer : "?");
	}
	return 0;
}

int proc_maps_parse(char *line, struct lp_maps_line *m)
{
	/* "start-end perms offset major:minor inode   path", by hand: sscanf was the
	 * largest user-space cost of start-up on a process with many thread stacks. */
	char *q = line, *e;
	unsigned long maj, min;

	m->start = strtoull(q, &e, 16);
	if (e == q || *e != '-')
		return -EINVAL;
	m->end = strtoull(e + 1, &q, 16);
	q += strspn(q, " ");
	size_t pl = strcspn(q, " ");
	if (pl == 0 || pl >= sizeof(m->perms))
		return -EINVAL;
	memcpy(m->perms, q, pl);
	m->perms[pl] = 0;
	m->offset = strtoull(q + pl, &q, 16);
	maj = strtoul(q, &e, 16);
	if (*e != ':')
		return -EINVAL;
	min = strtoul(e + 1, &q, 16);
	m->dev = ((uint64_t)maj << 32) | min;
	m->inode = strtoull(q, &e, 10);
	if (e == q)
		return -EINVAL;
	e += strspn(e, " ");
	e[strcspn(e, "\n")] = 0;
	size_t nl = strlen(e);
	m->deleted = *e == '/' && nl > 10 && !strcmp(e + nl - 10, " (deleted)");
	if (m->deleted)
		e[nl - 10] = 0;
	m->path = e;
	return 0;
}

/* Longest maps line read: its fields (73 bytes), a path and " (deleted)". */
#define MAPS_BUF (4 * PATH_MAX)

int proc_maps_walk_fd(int fd, int (*fn)(const struct lp_maps_line *m, void *arg), void *arg)
{
	char buf[MAPS_BUF];
	size_t have = 0;
	bool skip = false;	/* in a line longer than buf: it is passed over */
	struct lp_maps_line m;

	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		char *line = buf, *end = buf + have + r, *nl;
		if (!r && have && end[-1] != '\n')
			*end++ = '\n';	/* the last line, without its newline */
		while ((nl = memchr(line, '\n', (size_t)(end - line)))) {
			*nl = 0;
			int ret = skip || proc_maps_parse(line, &m) ? 0 : fn(&m, arg);
			if (ret)
				return ret;
			skip = false;
			line = nl + 1;
		}
		if (!r)
			return 0;
		have = (size_t)(end - line);
		if (have == sizeof(buf) - 1) {
			skip = true;
			have = 0;
		}
		memmove(buf, line, have);
	}
}

int proc_maps_walk(pid_t pid, int (*fn)(const struct lp_maps_line *m, void *arg), void *arg)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = proc_maps_walk_fd(fd, fn, arg);
	close(fd);
	return ret;
}

/* proc_maps_walk() callback: a mapping of a file joins its object (made on first sight). */
static int add_mapping(const struct lp_maps_line *l, void *arg)
{
	struct lp_proc *p = arg;
	struct lp_object *o = NULL;

	if (!l->inode || l->path[0] != '/')
		return 0;
	for (size_t i = 0; i < p->nobjs; i++)
		if (p->objs[i].dev == l->dev && p->objs[i].inode == l->inode &&
		    !strcmp(p->objs[i].path, l->path))
			o = &p->objs[i];
	if (!o) {
		struct lp_object *n = realloc(p->objs, (p->nobjs + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->objs = n;
		o = &p->objs[p->nobjs++];
		memset(o, 0, sizeof(*o));
		snprintf(o->path, sizeof(o->path), "%s", l->path);
		o->pid = p->via;
		o->dev = l->dev;
		o->inode = l->inode;
		o->deleted = l->deleted;
		snprintf(o->open_path, sizeof(o->open_path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 p->via, l->start, l->end);
	}
	struct lp_mapping *m = realloc(o->maps, (o->nmaps + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	o->maps = m;
	o->maps[o->nmaps++] = (struct lp_mapping){ l->start, l->end, l->offset, l->perms[2] == 'x',
						   l->perms[1] == 'w' };
	return 0;
}

/* An object's name: its base name; a loaded patch's is the patch's (docs/design.md §8). */
static void name_objects(struct lp_proc *p)
{
	for (size_t i = 0; i < p->nobjs; i++) {	/* after realloc is done moving them */
		struct lp_object *o = &p->objs[i];
		o->patch = !strncmp(o->path, LP_PATCH_MEMFD, strlen(LP_PATCH_MEMFD));
		o->name = o->patch ? o->path + strlen(LP_PATCH_MEMFD) : strrchr(o->path, '/') + 1;
	}
}

/* Then room for LP_PROC_SPARE_OBJS more: proc_add_object() never moves the array. */
static int parse_maps(struct lp_proc *p)
{
	int ret = proc_maps_walk(p->via, add_mapping, p);
	struct lp_object *n = realloc(p->objs, (p->nobjs + LP_PROC_SPARE_OBJS) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	p->objs = n;
	p->objs_cap = p->nobjs + LP_PROC_SPARE_OBJS;
	name_objects(p);
	return ret;
}

struct lp_object *proc_add_object(struct lp_proc *p, const char *path)
{
	if (p->nobjs == p->objs_cap)
		return NULL;
	struct lp_object *o = &p->objs[p->nobjs++];
	memset(o, 0, sizeof(*o));
	snprintf(o->path, sizeof(o->path), "%s", path);
	o->pid = p->via;
	name_objects(p);
	return o;
}

/*
 * A thread of @pid that has not exited, when its main thread has: /proc/PID's
 * memory, maps and root went with the main thread, /proc/TID's are the same
 * process's, through a thread that still has them. 0 if none is left.
 */
static pid_t live_thread(pid_t pid)
{
	char path[64];
	struct dirent *e;
	pid_t found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *dir = opendir(path);
	if (!dir)
		return 0;
	while (!found && (e = readdir(dir))) {
		pid_t tid = atoi(e->d_name);
		if (tid > 0 && tid != pid && !proc_task_exiting(pid, tid))
			found = tid;
	}
	closedir(dir);
	return found;
}

int proc_open(struct lp_proc *p, pid_t pid, struct lp_diag *d)
{
	struct status st;
	char path[64];
	int ret;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->mem_fd = -1;
	if (pid <= 0)
		return lp_fail(d, LP_EXIT_USAGE, "invalid pid %d (give the process id of a running program)", pid);
	ret = check_process(pid, &st, d);
	if (ret)
		return ret;
	read_comm(pid, p->comm, sizeof(p->comm));
	p->threads = st.threads;
	p->via = st.state == 'Z' ? live_thread(pid) : pid;
	if (!p->via)
		return lp_fail(d, LP_EXIT_PROCESS, "process %d is exiting: its main thread and every "
			       "other thread have exited (nothing to patch)", pid);
	snprintf(path, sizeof(path), "/proc/%d/mem", p->via);
	p->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->mem_fd < 0 && (errno == EACCES || errno == EPERM))
		return proc_explain_eperm(pid, 0, d);
	if (p->mem_fd < 0)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot open %s: %s (did the process exit?)", path,
			       strerror(errno));
	ret = check_arch(pid, p->via, d);
	if (ret)
		return ret;
	ret = parse_maps(p);
	if (ret)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot read /proc/%d/maps: %s (did the process exit?)",
			       pid, strerror(-ret));
	return 0;
}

void proc_object_extent(const struct lp_object *o, uint64_t *lo, uint64_t *hi)
{
	*lo = o->nmaps ? UINT64_MAX : 0;
	*hi = 0;
	for (size_t i = 0; i < o->nmaps; i++) {
		if (o->maps[i].start < *lo)
			*lo = o->maps[i].start;
		if (o->maps[i].end > *hi)
			*hi = o->maps[i].end;
	}
}

const struct lp_object *proc_object_at(const struct lp_proc *p, uint64_t addr,
				       const struct lp_mapping **map)
{
	for (size_t i = 0; i < p->nobjs; i++)
		for (size_t j = 0; j < p->objs[i].nmaps; j++) {
			const struct lp_mapping *m = &p->objs[i].maps[j];
			if (addr >= m->start && addr < m->end) {
				if (map)
					*map = m;
				return &p->objs[i];
			}
		}
	return NULL;
}

int proc_read(const struct lp_proc *p, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = pread(p->mem_fd, buf, len, (off_t)addr);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

void proc_close(struct lp_proc *p)
{
	for (size_t i = 0; i < p->nobjs; i++)
		free(p->objs[i].maps);
	free(p->objs);
	if (p->mem_fd >= 0)
		close(p->mem_fd);
	memset(p, 0, sizeof(*p));
	p->mem_fd = -1;
}

/*
 * Where this mount namespace mounts cgroup2 (@v2) or the v1 freezer hierarchy. Read
 * once per run: the question comes on the pause of a stopped thread.
 */
static bool cgroup_mount(bool v2, char *out, size_t cap)
{
	static char mnt[2][PATH_MAX];
	static bool read;
	char line[1024], dev[256], dir[PATH_MAX], type[64], opts[512];

	if (!read) {
		FILE *f = fopen("/proc/self/mounts", "re");
		read = true;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "%255s %4095s %63s %511s", dev, dir, type, opts) == 4) {
				int k = !strcmp(type, "cgroup2") ? 1 :
					!strcmp(type, "cgroup") && strstr(opts, "freezer") ? 0 : -1;
				if (k >= 0 && !mnt[k][0])
					snprintf(mnt[k], sizeof(mnt[k]), "%s", dir);
			}
		if (f)
			fclose(f);
	}
	snprintf(out, cap, "%s", mnt[v2]);
	return mnt[v2][0] != 0;
}

static bool file_starts(const char *path, const char *what)
{
	char buf[64] = "";
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	bool yes = fgets(buf, sizeof(buf), f) && !strncmp(buf, what, strlen(what));
	fclose(f);
	return yes;
}

int proc_frozen(pid_t pid, pid_t tid, char *out, size_t cap)
{
	char path[PATH_MAX + 64], line[PATH_MAX + 64], mnt[PATH_MAX], file[2 * PATH_MAX + 64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	FILE *f = fopen(path, "re");
	int frozen = 0;

	if (!f)
		return 0;
	while (!frozen && fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!cg)
			continue;
		*cg++ = 0;
		cg[strcspn(cg, "\n")] = 0;
		bool v2 = !ctl[1];
		if (!v2 && !strstr(ctl + 1, "freezer"))
			continue;
		if (!cgroup_mount(v2, mnt, sizeof(mnt)))
			continue;
		snprintf(file, sizeof(file), "%s%s/%s", mnt, cg, v2 ? "cgroup.freeze" : "freezer.state");
		if (v2 ? file_starts(file, "1") :
		    file_starts(file, "FROZEN") || file_starts(file, "FREEZING")) {
			snprintf(out, cap, "%s", file);
			frozen = v2 ? 2 : 1;
		}
	}
	fclose(f);
	return frozen;
}

bool proc_shadow_stack(pid_t tid)
{
	char buf[LP_STATUS_MAX];
	const char *v = proc_status_read(tid, buf, sizeof(buf)) < 0 ? NULL :
			proc_status_value(buf, "x86_Thread_features");

	return v && memmem(v, strcspn(v, "\n"), "shstk", 5);
}
