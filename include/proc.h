/*
 * Proc: the live process as /proc shows it: identity checks, permission diagnosis,
 * mapped objects, memory reads, and the one reader of each /proc file that several
 * stages look at (stat, status, maps). The lowest layer: it includes no other
 * stage's header.
 */
#ifndef LP_PROC_H
#define LP_PROC_H

#include <stdbool.h>
#include <limits.h>
#include "lp.h"

struct lp_mapping {
	uint64_t start, end, offset;
	bool exec, write;
};

struct lp_symtab;		/* private to elfsym.c, which loads and frees it */

/* One file mapped into the process (all its mappings share dev and inode). */
struct lp_object {
	char path[PATH_MAX];	/* as /proc/PID/maps shows it, " (deleted)" removed */
	const char *name;	/* base name, points into path */
	bool deleted;
	pid_t pid;
	uint64_t dev, inode;
	char open_path[PATH_MAX]; /* /proc/PID/map_files/RANGE: works for deleted files */
	uint64_t bias;		/* runtime address = st_value + bias */
	struct lp_mapping *maps;
	size_t nmaps;
	struct lp_symtab *symtab; /* loaded on first use (elfsym.c) */
	int elf_error;		/* < 0 once loading failed */
	bool patch;		/* a patch livepatch loaded: path LP_PATCH_MEMFD + its name */
};

/* How /proc/PID/maps names a loaded patch's memfd: this, then the patch's base name. */
#define LP_PATCH_MEMFD "/memfd:livepatch:"

struct lp_proc {
	pid_t pid;
	pid_t via;		/* whose /proc/VIA shows the memory: the pid, or a live thread's
				 * id when the main thread has exited (a zombie leader) */
	char comm[64];
	int threads;
	struct lp_object *objs;	/* symbols point into it: it never moves after proc_open */
	size_t nobjs, objs_cap;
	int mem_fd;		/* /proc/PID/mem, read-only, for planning */
};

/*
 * Open PID for patching: checks it exists, is not a zombie, is x86-64, is not
 * traced by someone else and that we may trace it (diagnosing why not), then
 * reads its mappings. Fails with LP_EXIT_PROCESS and a message in @d.
 */
int proc_open(struct lp_proc *p, pid_t pid, struct lp_diag *d) LP_MUST_CHECK;
/* Frees what proc_open() made; the symbol tables must be freed first (elfsym_release). */
void proc_close(struct lp_proc *p);

/*
 * The x86-64 check of proc_open on the first @n bytes of the program's ELF file: 0, or
 * LP_EXIT_PROCESS "process PID is not an x86-64 program" (a short or non-ELF header is
 * judged elsewhere: 0). Pure, so a 32-bit program is tested where the kernel cannot run one.
 */
int proc_check_elf_arch(pid_t pid, const unsigned char *id, size_t n, struct lp_diag *d) LP_MUST_CHECK;

/*
 * Why the kernel refuses to let livepatch trace a process (EPERM, EACCES): what
 * proc_perm_facts() finds in /proc and /sys, judged by proc_perm_diagnose(). That one
 * is pure, so the unit tests give it what no test machine can have (Yama at 3, which
 * only a reboot undoes; AppArmor or SELinux refusing).
 */
enum lp_userns {
	LP_USERNS_UNKNOWN,	/* the target's cannot be read (the kernel refuses that too) */
	LP_USERNS_SAME,		/* livepatch's own */
	LP_USERNS_BELOW,	/* a descendant of livepatch's: its capabilities count there */
	LP_USERNS_OUTSIDE,	/* an ancestor of livepatch's, or an unrelated one */
};

struct lp_perm_facts {
	pid_t pid, tid;			/* tid: the thread refused (0: the process) */
	uid_t euid, target_euid;	/* livepatch's, the target's (as this namespace sees it) */
	bool cap_eff, cap_bnd;		/* CAP_SYS_PTRACE in livepatch's effective, bounding set */
	bool dumpable;			/* the target's /proc files are its own, not root's */
	bool kthread;			/* the target is a kernel thread */
	bool self;			/* the target is livepatch's own process */
	pid_t tracer;			/* TracerPid of the thread (or process), 0: none */
	char tracer_comm[64];
	int yama;			/* kernel.yama.ptrace_scope; -1: no Yama */
	bool init_userns;		/* livepatch runs in the initial user namespace */
	enum lp_userns userns;		/* the target's, seen from livepatch's */
	bool uid_map_differs;		/* the target's /proc/PID/uid_map reads unlike livepatch's */
	char lsm[128];			/* active security modules, "a,b,c" */
	bool lsm_listed;		/* @lsm is securityfs's whole list, not only AppArmor/SELinux */
	int selinux_enforcing;		/* 1, 0, or -1: unknown */
	char label[160], self_label[160];	/* attr/current of the target, of livepatch ("": unread) */
};

/* Gather the facts about tracing thread @tid (0: the process) of process @pid. */
void proc_perm_facts(pid_t pid, pid_t tid, struct lp_perm_facts *f);
/*
 * The one-line reason and fix for @f: LP_EXIT_PROCESS. With CAP_SYS_PTRACE it never
 * advises getting it: it names the user namespace, Yama, AppArmor or SELinux, or says
 * that the cause could not be determined.
 */
int proc_perm_diagnose(const struct lp_perm_facts *f, struct lp_diag *d) LP_MUST_CHECK;
/* proc_perm_facts() then proc_perm_diagnose(). */
int proc_explain_eperm(pid_t pid, pid_t tid, struct lp_diag *d) LP_MUST_CHECK;

#define LP_PROC_SPARE_OBJS 16	/* objects proc_add_object() may add (one per --load) */

/*
 * Append an object not (yet) in maps, named @path, to @p->objs (which does not move):
 * the caller fills dev, inode, open_path, bias and maps. NULL: no room left.
 */
struct lp_object *proc_add_object(struct lp_proc *p, const char *path);

/* [@lo, @hi): from the lowest start to the highest end of @o's mappings (0, 0: none). */
void proc_object_extent(const struct lp_object *o, uint64_t *lo, uint64_t *hi);

/* The object and mapping that hold @addr, or NULL. */
const struct lp_object *proc_object_at(const struct lp_proc *p, uint64_t addr,
				       const struct lp_mapping **map);

/* Read @len bytes at @addr of the live process (/proc/PID/mem). */
int proc_read(const struct lp_proc *p, uint64_t addr, void *buf, size_t len) LP_MUST_CHECK;

/*
 * /proc/PID/stat (@tid 0) or /proc/PID/task/TID/stat into @buf, NUL-terminated, in one
 * read: its length, or -errno.
 */
int proc_stat_read(pid_t pid, pid_t tid, char *buf, size_t cap) LP_MUST_CHECK;
/*
 * Field @n of a stat line, numbered as proc(5) does (1 pid, 2 comm, 3 state, ...): where
 * it starts in @stat, or NULL. comm may hold spaces and parentheses: the fields after
 * it are found from its last ')'. Comm's field starts after its '('.
 */
const char *proc_stat_field(const char *stat, int n);

#define LP_STATUS_MAX 4096	/* room for /proc/PID/status (about 1.5 KiB) */

/* /proc/@tid/status into @buf, NUL-terminated, in one read: its length, or -errno. */
int proc_status_read(pid_t tid, char *buf, size_t cap) LP_MUST_CHECK;
/* The value of "@key:" in a status text, leading blanks skipped (ends at '\n'), or NULL. */
const char *proc_status_value(const char *status, const char *key);
/* One numeric field of /proc/TID/status ("Tgid", "TracerPid"), or -1. */
long proc_status_field(pid_t tid, const char *key);

/* What /proc/PID/task/TID/syscall says of a thread. */
struct lp_syscall {
	bool running;		/* "running": in user space, nothing else known */
	long nr;		/* the call it sleeps in, -1 for none (a fault, a signal) */
	uint64_t sp, pc;	/* its user SP and PC (0 once it has exited) */
};

/*
 * Parse a syscall line: "running", "-1 SP PC" or "NR ARG1 .. ARG6 SP PC" (hex with
 * 0x, as the kernel writes them): 0, or -EINVAL for anything else. The one parser
 * of that file: sync, inside and moveout read the same fields.
 */
int proc_syscall_parse(const char *line, struct lp_syscall *s) LP_MUST_CHECK;

/* One line of /proc/PID/maps. */
struct lp_maps_line {
	uint64_t start, end, offset;
	uint64_t dev;		/* major << 32 | minor */
	uint64_t inode;
	char perms[5];		/* "r-xp" */
	const char *path;	/* "" when anonymous, "[vdso]", a file's path (may hold spaces) */
	bool deleted;		/* the path ended in " (deleted)", removed from @path */
};

/* Parse one maps line, without its newline (the path is cut in place): 0, or -EINVAL. */
int proc_maps_parse(char *line, struct lp_maps_line *m) LP_MUST_CHECK;
/*
 * Call @fn for every line of the maps text read from @fd, in order, in one pass and
 * without allocating. A non-zero return of @fn stops the walk and is returned; else 0,
 * or -errno from read().
 */
int proc_maps_walk_fd(int fd, int (*fn)(const struct lp_maps_line *m, void *arg), void *arg);
/* proc_maps_walk_fd() over /proc/@pid/maps. */
int proc_maps_walk(pid_t pid, int (*fn)(const struct lp_maps_line *m, void *arg), void *arg);

/* Thread @tid of @pid is past do_exit (zombie or dead) or already reaped. */
bool proc_task_exiting(pid_t pid, pid_t tid);

/*
 * Whether the cgroup freezer holds thread @tid of @pid: 1 (v1 freezer.state FROZEN or
 * FREEZING), 2 (v2 cgroup.freeze 1), else 0; @out names the file that says so.
 */
int proc_frozen(pid_t pid, pid_t tid, char *out, size_t cap);

/* Thread @tid runs with a user shadow stack (x86_Thread_features: shstk). */
bool proc_shadow_stack(pid_t tid);

/* Re-read the thread count: the kernel's, unreaped threads included (0 if unreadable). */
int proc_count_threads(pid_t pid);

#endif
