/*
 * Plan files (pairs_collect with --plan): comments, CRLF, NUL bytes, lines longer
 * than LP_PLAN_MAX_LINE, a function named twice. The names resolve against a small
 * library this harness links (plan_lib.S), as this process maps it: a seed's line
 * such as "plan_f1 plan_g1" names two of its functions. (The harness's own symbols
 * would do, but a misspelt name is compared with every one of them: 150 runs a second.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pairs.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int plan_f1(void);

#define LIB "/libfuzzplan.so"
#define MAPS 8

static struct lp_object lib;
static struct lp_mapping lib_maps[MAPS];
static struct lp_proc proc = { .objs = &lib, .nobjs = 1, .objs_cap = 1, .mem_fd = -1 };

static int lib_mapping(const struct lp_maps_line *m, void *arg)
{
	size_t len = strlen(m->path);

	(void)arg;
	if (len < strlen(LIB) || strcmp(m->path + len - strlen(LIB), LIB) || lib.nmaps == MAPS)
		return 0;
	snprintf(lib.path, sizeof(lib.path), "%s", m->path);
	snprintf(lib.open_path, sizeof(lib.open_path), "%s", m->path);
	lib.dev = m->dev;
	lib.inode = m->inode;
	lib_maps[lib.nmaps++] = (struct lp_mapping){ .start = m->start, .end = m->end,
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
	(void)argc;
	(void)argv;
	if (plan_f1())		/* the library is linked, and mapped */
		abort();
	lib.maps = lib_maps;
	lib.pid = proc.pid = proc.via = getpid();
	if (proc_maps_walk(proc.pid, lib_mapping, NULL) || !lib.nmaps)
		abort();
	lib.name = strrchr(lib.path, '/') + 1;
	/* Symbols loaded once: the library's never change. */
	if (object_each_function(&lib, nothing, NULL) || lib.elf_error)
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
