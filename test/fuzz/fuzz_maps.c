/*
 * /proc/PID/maps: one line (proc_maps_parse, which cuts the path in place) and a whole
 * file read through a descriptor in pieces (proc_maps_walk_fd: lines longer than its
 * buffer, a last line without its newline, paths with spaces, newlines, " (deleted)").
 */
#include <stdlib.h>
#include <string.h>
#include "proc.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t path_bytes;	/* read every path, to its NUL */

static void check(const struct lp_maps_line *m)
{
	path_bytes += strlen(m->path) + strlen(m->perms);
	if (m->deleted && m->path[0] != '/')
		abort();
}

static int each_line(const struct lp_maps_line *m, void *arg)
{
	(void)arg;
	check(m);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = f_string(data, size);
	struct lp_maps_line m;

	if (!proc_maps_parse(line, &m))
		check(&m);
	free(line);
	int fd = f_memfd(data, size);
	if (fd >= 0 && proc_maps_walk_fd(fd, each_line, NULL) > 0)
		abort();
	return 0;
}
