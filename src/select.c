/*
 * The processes of a multi-process run (select.h, docs/design.md §12): /proc scanned once,
 * each process judged by its stat line, its executable and its maps. Files are told apart
 * by device and inode, as the kernel does; a build-id is read once per file.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "audit.h"
#include "proc.h"
#include "select.h"

#define PF_KTHREAD 0x00200000	/* task flag: a kernel thread */

/* A file's build-id, read once for every process that maps it. */
struct file_id {
	uint64_t dev, inode;
	char hex[132];		/* "" when it has none or cannot be read */
};

struct ids {
	struct file_id *v;
	size_t n, cap;
};

static uint64_t dev_of(dev_t d)
{
	return (uint64_t)major(d) << 32 | minor(d);
}

int select_parse_build_id(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);

	if (n < 2 || n > 128 || n % 2 || n + 1 > cap)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)in[i]))
			return -EINVAL;
		out[i] = (char)tolower((unsigned char)in[i]);
	}
	out[n] = 0;
	return 0;
}

/* comm, state, flags and start time from /proc/PID/stat; -1 when unreadable. */
static int read_stat(pid_t pid, char *comm, size_t cap, char *state, unsigned long *flags,
		     unsigned long long *start)
{
	char buf[1024];

	if (proc_stat_read(pid, 0, buf, sizeof(buf)) <= 0)
		return -1;
	const char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l)
		return -1;
	size_t n = (size_t)(r - l - 1) < cap - 1 ? (size_t)(r - l - 1) : cap - 1;
	memcpy(comm, l + 1, n);
	comm[n] = 0;
	const char *f3 = proc_stat_field(buf, 3), *f9 = proc_stat_field(buf, 9),
		   *f22 = proc_stat_field(buf, 22);
	if (!f3 || !f9 || !f22)
		return -1;
	*state = *f3;
	*flags = strtoul(f9, NULL, 10);
	*start = strtoull(f22, NULL, 10);
	return 0;
}

unsigned long long select_start_time(pid_t pid)
{
	char comm[64], state;
	unsigned long flags;
	unsigned long long start;

	return read_stat(pid, comm, sizeof(comm), &state, &flags, &start) ? 0 : start;
}

bool select_gone(pid_t pid, unsigned long long start)
{
	char comm[64], state;
	unsigned long flags;
	unsigned long long now;

	if (read_stat(pid, comm, sizeof(comm), &state, &flags, &now))
		return true;
	return now != start || state == 'Z' || state == 'X';
}

/* The build-id of the file mapped at @m in @pid: cached by device and inode. */
static const char *build_id_of(struct ids *ids, pid_t pid, const struct lp_maps_line *m)
{
	for (size_t i = 0; i < ids->n; i++)
		if (ids->v[i].dev == m->dev && ids->v[i].inode == m->inode)
			return ids->v[i].hex;
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? 2 * ids->cap : 64;
		struct file_id *v = realloc(ids->v, cap * sizeof(*v));
		if (!v)
			return "";
		ids->v = v;
		ids->cap = cap;
	}
	struct file_id *f = &ids->v[ids->n++];
	char path[PATH_MAX + 64];
	*f = (struct file_id){ .dev = m->dev, .inode = m->inode };
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {	/* map_files needs CAP_SYS_ADMIN: the process's own root next */
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd >= 0) {
		struct stat sb;
		if (!fstat(fd, &sb) && dev_of(sb.st_dev) == m->dev && sb.st_ino == m->inode)
			(void)!audit_build_id(fd, f->hex, sizeof(f->hex));
		close(fd);
	}
	return f->hex;
}

struct scan {
	const struct lp_selector *s;
	struct ids *ids;
	pid_t pid;
	uint64_t all_dev, all_inode;
	const char *all_path;	/* --all's file, as a canonical path */
	const char *want_id;	/* --all-build-id, lower case */
	bool maps_all, maps_id;
	char other[400];	/* another file at all_path */
};

static int look_at_mapping(const struct lp_maps_line *m, void *arg)
{
	struct scan *c = arg;

	if (!m->inode || m->path[0] != '/')
		return 0;
	if (c->s->all && m->dev == c->all_dev && m->inode == c->all_inode)
		c->maps_all = true;
	else if (c->s->all && !c->other[0] && c->all_path && !strcmp(m->path, c->all_path))
		snprintf(c->other, sizeof(c->other), "maps another file at %s (device %" PRIu64 ":%"
			 PRIu64 ", inode %" PRIu64 ", build-id %s)", m->path, m->dev >> 32,
			 m->dev & 0xffffffff, m->inode,
			 *build_id_of(c->ids, c->pid, m) ? build_id_of(c->ids, c->pid, m) : "none");
	if (c->want_id && !c->maps_id && !strcmp(build_id_of(c->ids, c->pid, m), c->want_id))
		c->maps_id = true;
	return 0;
}

static struct lp_selected *add(struct lp_selection *out, pid_t pid)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? 2 * out->cap : 32;
		struct lp_selected *v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		out->v = v;
		out->cap = cap;
	}
	struct lp_selected *p = &out->v[out->n++];
	*p = (struct lp_selected){ .pid = pid };
	return p;
}

static bool excluded(const struct lp_selector *s, pid_t pid)
{
	for (size_t i = 0; i < s->nexcludes; i++)
		if (s->excludes[i] == pid)
			return true;
	return false;
}

/* --pid given several times: those processes, in order, once each. */
static int given_pids(const struct lp_selector *s, struct lp_selection *out)
{
	for (size_t i = 0; i < s->npids; i++) {
		bool dup = excluded(s, s->pids[i]);
		for (size_t k = 0; k < out->n && !dup; k++)
			dup = out->v[k].pid == s->pids[i];
		if (dup)
			continue;
		struct lp_selected *p = add(out, s->pids[i]);
		if (!p)
			return -ENOMEM;
		char state;
		unsigned long flags;
		if (read_stat(p->pid, p->comm, sizeof(p->comm), &state, &flags, &p->start))
			snprintf(p->comm, sizeof(p->comm), "?");
	}
	return 0;
}

/* Whether the executable of @pid is the file @want (device and inode). */
static bool runs(pid_t pid, const struct stat *want)
{
	char path[64];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	return !stat(path, &sb) && sb.st_dev == want->st_dev && sb.st_ino == want->st_ino;
}

static int stat_arg(const char *opt, const char *path, struct stat *sb, struct lp_diag *d)
{
	if (stat(path, sb))
		return lp_fail(d, LP_EXIT_USAGE, "%s %s: %s (give the path of a file on this host, "
			       "e.g. %s)", opt, path, strerror(errno), !strcmp(opt, "--exe") ?
			       "/usr/sbin/nginx" : "/usr/lib/x86_64-linux-gnu/libssl.so.3");
	if (!S_ISREG(sb->st_mode))
		return lp_fail(d, LP_EXIT_USAGE, "%s %s: not a regular file (give the path of the "
			       "program or library itself)", opt, path);
	return 0;
}

int select_processes(const struct lp_selector *s, struct lp_selection *out, struct lp_diag *d)
{
	struct stat all_st, exe_st;
	char want_id[132], canon[PATH_MAX];
	struct ids ids = { 0 };
	struct scan c = { .s = s, .ids = &ids };
	int ret = 0;

	*out = (struct lp_selection){ 0 };
	if (s->npids)
		return given_pids(s, out);
	if (s->all && (ret = stat_arg("--all", s->all, &all_st, d)))
		return ret;
	if (s->exe && (ret = stat_arg("--exe", s->exe, &exe_st, d)))
		return ret;
	if (s->build_id && select_parse_build_id(s->build_id, want_id, sizeof(want_id)))
		return lp_fail(d, LP_EXIT_USAGE, "--all-build-id takes a GNU build-id in hex, an even "
			       "number of digits (as `readelf -n FILE` shows it)");
	if (s->all) {
		c.all_dev = dev_of(all_st.st_dev);
		c.all_inode = all_st.st_ino;
		c.all_path = realpath(s->all, canon) ? canon : NULL;
	}
	c.want_id = s->build_id ? want_id : NULL;
	DIR *dir = opendir("/proc");
	if (!dir)
		return lp_fail(d, LP_EXIT_INTERNAL, "cannot read /proc: %s (mount proc on /proc)",
			       strerror(errno));
	struct dirent *e;
	while (!ret && (e = readdir(dir))) {
		char *end, comm[64], state;
		unsigned long flags;
		unsigned long long start;
		long v = strtol(e->d_name, &end, 10);
		if (*end || v <= 0 || v > INT_MAX)
			continue;
		pid_t pid = (pid_t)v;
		out->scanned++;
		if (pid == getpid() || excluded(s, pid))
			continue;
		if (read_stat(pid, comm, sizeof(comm), &state, &flags, &start) || state == 'Z' ||
		    state == 'X' || (flags & PF_KTHREAD))
			continue;
		if (s->exe && !runs(pid, &exe_st))
			continue;
		c.pid = pid;
		c.maps_all = c.maps_id = false;
		c.other[0] = 0;
		if ((s->all || s->build_id) && proc_maps_walk(pid, look_at_mapping, &c))
			continue;	/* gone meanwhile, or not ours to read */
		bool in = (!s->all || c.maps_all) && (!s->build_id || c.maps_id);
		if (!in && !(s->all && !c.maps_all && c.other[0]))
			continue;
		struct lp_selected *p = add(out, pid);
		if (!p) {
			ret = -ENOMEM;
			break;
		}
		snprintf(p->comm, sizeof(p->comm), "%s", comm);
		p->start = start;
		if (!in) {
			p->not_selected = true;
			snprintf(p->why, sizeof(p->why), "%s", c.other);
		}
	}
	closedir(dir);
	free(ids.v);
	return ret;
}

void select_free(struct lp_selection *s)
{
	free(s->v);
	*s = (struct lp_selection){ 0 };
}
