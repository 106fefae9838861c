/* Resolve: a live process, its mapped objects and their ELF symbols. */
#ifndef LP_RESOLVE_H
#define LP_RESOLVE_H

#include <stdbool.h>
#include <limits.h>
#include "lp.h"

struct lp_mapping {
	uint64_t start, end, offset;
	bool exec, write;
};

struct lp_symtab;		/* private to resolve.c */

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
	struct lp_symtab *symtab; /* loaded on first use */
	int elf_error;		/* < 0 once loading failed */
};

struct lp_proc {
	pid_t pid;
	pid_t via;		/* whose /proc/VIA shows the memory: the pid, or a live thread's
				 * id when the main thread has exited (a zombie leader) */
	char comm[64];
	int threads;
	struct lp_object *objs;
	size_t nobjs;
	int mem_fd;		/* /proc/PID/mem, read-only, for planning */
};

enum lp_sym_kind { LP_SYM_FUNC, LP_SYM_IFUNC, LP_SYM_OBJECT, LP_SYM_OTHER };

struct lp_symbol {
	const struct lp_object *obj;
	const char *name;	/* without any @version */
	const char *version;	/* NULL, or the version name */
	bool default_version;	/* @@ (or unversioned) */
	uint64_t addr;		/* runtime address */
	uint64_t offset;	/* addr - symbol start, for a 0xADDRESS inside a function */
	uint64_t size;
	enum lp_sym_kind kind;
	bool global;
};

/*
 * Open PID for patching: checks it exists, is not a zombie, is x86-64, is not
 * traced by someone else and that we may trace it (diagnosing why not), then
 * reads its mappings. Fails with LP_EXIT_PROCESS and a message in @d.
 */
int proc_open(struct lp_proc *p, pid_t pid, struct lp_diag *d) LP_MUST_CHECK;
void proc_close(struct lp_proc *p);

/* One numeric field of /proc/TID/status ("Tgid", "TracerPid"), or -1. */
long proc_status_field(pid_t tid, const char *key);

/*
 * Whether the cgroup freezer holds thread @tid of @pid: 1 (v1 freezer.state FROZEN or
 * FREEZING), 2 (v2 cgroup.freeze 1), else 0; @out names the file that says so.
 */
int proc_frozen(pid_t pid, pid_t tid, char *out, size_t cap);

/* Re-read the thread count: the kernel's, unreaped threads included (0 if unreadable). */
int proc_count_threads(pid_t pid);

/*
 * Resolve a user's "[OBJECT:]SYMBOL" or "0xADDRESS" to one function.
 * @role is "function" or "target", used in messages.
 */
int resolve_function(struct lp_proc *p, const char *spec, const char *role,
		     struct lp_symbol *out, struct lp_diag *d) LP_MUST_CHECK;

/* The object and mapping that hold @addr, or NULL. */
const struct lp_object *proc_object_at(const struct lp_proc *p, uint64_t addr,
				       const struct lp_mapping **map);

/* The function symbol that contains @addr (best: exact start, then smallest), or -ENOENT. */
int resolve_symbolize(struct lp_proc *p, uint64_t addr, struct lp_symbol *out) LP_MUST_CHECK;

/* Call @fn for every function symbol of every object, by address within each object. */
int resolve_each_function(struct lp_proc *p, void (*fn)(const struct lp_symbol *s, void *arg),
			  void *arg) LP_MUST_CHECK;

/* Read @len bytes at @addr of the live process (/proc/PID/mem). */
int proc_read(const struct lp_proc *p, uint64_t addr, void *buf, size_t len) LP_MUST_CHECK;

/* Open @obj's file (map_files first: it works for deleted files and other mount namespaces). */
int object_open(const struct lp_object *obj) LP_MUST_CHECK;
void object_free_symtab(struct lp_object *obj);

/* Call @fn with the file bytes of every executable section of @obj, at its runtime address. */
int object_each_exec_section(struct lp_object *obj,
			     int (*fn)(const char *name, uint64_t addr, const uint8_t *bytes,
				       size_t len, void *arg), void *arg) LP_MUST_CHECK;

/* Read @len bytes of @obj's file that are mapped at runtime address @addr. */
int object_read_at(const struct lp_object *obj, uint64_t addr, void *buf, size_t len) LP_MUST_CHECK;

#endif
