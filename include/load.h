/*
 * Load: map a linked patch image (link.h) into a process, and unmap it, through
 * system calls a stopped thread of the process runs (inject.h): nothing of the
 * program runs, nothing is preloaded (docs/design.md §8).
 */
#ifndef LP_LOAD_H
#define LP_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include "inject.h"
#include "link.h"
#include "lp.h"

/* One image to map: [base, base + size) from a memfd named @memfd_name holding @image. */
struct lp_load_image {
	const char *memfd_name;		/* "livepatch:NAME": maps shows /memfd:livepatch:NAME */
	const uint8_t *image;
	size_t image_len;
	uint64_t base, size;
	struct lp_segment seg[4];
	/* Out, once mapped: the memfd's identity, as /proc/PID/maps shows it. */
	uint64_t dev, inode;
};

/*
 * Map @im at its base in process @pid (/proc/VIA/mem is @mem_fd) through @inj, a
 * thread of @pid's own (never a vfork child: its descriptors are another table):
 * reserve the range (it must still be free), create the memfd, take it (checked to
 * be that memfd) and fill and seal it from here, map it over the reservation
 * privately (checked in maps), give each segment its protection, close it. On any failure what was made is undone and
 * LP_EXIT_ABORTED returned with the reason.
 */
int load_map(const struct lp_injector *inj, pid_t pid, pid_t via, int mem_fd,
	     struct lp_load_image *im, struct lp_diag *d) LP_MUST_CHECK;

/* Unmap [base, base + size) through @inj: 0, or -errno. */
int load_unmap(const struct lp_injector *inj, uint64_t base, uint64_t size);

#endif
