/*
 * Plan files (pairs_collect with --plan): comments, CRLF, NUL bytes, lines longer
 * than LP_PLAN_MAX_LINE, a function named twice. The names resolve against this
 * harness's own executable, "mapped" as it is in this process: a seed's line such
 * as "f_memfd f_string" names two of its functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "pairs.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAPS 16

static struct lp_object self;
static struct lp_mapping self_maps[MAPS];
static struct lp_proc proc = { .objs = &self, .nobjs = 1, .objs_cap = 1, .mem_fd = -1 };

static int own_mapping(const struct lp_maps_line *m, void *arg)
{
	(void)arg;
	if (m->inode != self.inode || m->dev != self.dev || self.nmaps == MAPS)
		return 0;
	self_maps[self.nmaps++] = (struct lp_mapping){ .start = m->start, .end = m->end,
						       .offset = m->offset, .exec = m->perms[2] == 'x',
						       .write = m->perms[1] == 'w' };
	return 0;
}

static void nothing(const struct lp_symbol *s, void *arg)
{
	(void)s;
	(void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;
	ssize_t n;

	(void)argc;
	(void)argv;
	n = readlink("/proc/self/exe", self.path, sizeof(self.path) - 1);
	if (n <= 0 || stat("/proc/self/exe", &st))
		abort();
	self.path[n] = 0;
	self.name = strrchr(self.path, '/') + 1;
	self.pid = proc.pid = proc.via = getpid();
	self.dev = (uint64_t)major(st.st_dev) << 32 | minor(st.st_dev);
	self.inode = st.st_ino;
	snprintf(self.open_path, sizeof(self.open_path), "/proc/self/exe");
	self.maps = self_maps;
	if (proc_maps_walk(proc.pid, own_mapping, NULL) || !self.nmaps)
		abort();
	/* Symbols loaded once: the harness's own never change. */
	if (object_each_function(&self, nothing, NULL) || self.elf_error)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_pairs_want w = { .plan_file = f_memfd_path() };
	struct lp_pairs ps;
	struct lp_diag d = { 0 };

	if (f_memfd(data, size) < 0)
		return 0;
	int ret = pairs_collect(&proc, &w, &ps, &d);
	if (ret && !d.code)
		abort();	/* every refusal names its reason */
	pairs_free(&ps);
	return 0;
}
