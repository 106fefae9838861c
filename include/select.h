/*
 * Which processes a multi-process run reaches (docs/design.md §12): --pid given several
 * times, or every process that maps a file (--all), maps a build (--all-build-id) or
 * runs an executable (--exe), found by scanning /proc.
 */
#ifndef LP_SELECT_H
#define LP_SELECT_H

#include <stdbool.h>
#include <sys/types.h>
#include "lp.h"

struct lp_selector {
	const pid_t *pids;	/* --pid, as given (no scan) */
	size_t npids;
	const char *all;	/* a file's path: its device and inode */
	const char *build_id;	/* hex, any case */
	const char *exe;	/* a file's path: the executable's device and inode */
	const pid_t *excludes;
	size_t nexcludes;
};

struct lp_selected {
	pid_t pid;
	char comm[64];
	unsigned long long start;	/* start time in ticks, 0 if unread: tells a reused pid */
	bool not_selected;	/* shown, not run: it maps another file at --all's path */
	char why[400];		/* for not_selected: which file it maps instead */
};

struct lp_selection {
	struct lp_selected *v;
	size_t n, cap;
	unsigned int scanned;	/* processes looked at */
};

/* Fill @out. A usage error (exit 2) for a path that names no file or a bad build-id. */
int select_processes(const struct lp_selector *s, struct lp_selection *out, struct lp_diag *d)
	LP_MUST_CHECK;
void select_free(struct lp_selection *s);

/* The start time of @pid (field 22 of its stat), 0 when it cannot be read. */
unsigned long long select_start_time(pid_t pid);

/* Whether @pid is gone, or another process now (its start time is not @start). */
bool select_gone(pid_t pid, unsigned long long start);

/* A build-id in hex, normalised to lower case, 2 to 128 digits, even: 0, or -EINVAL. */
int select_parse_build_id(const char *in, char *out, size_t cap) LP_MUST_CHECK;

#endif
