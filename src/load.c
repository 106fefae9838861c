/*
 * Load: a patch image mapped into a process by system calls of its own stopped
 * thread (docs/design.md §8).
 *
 * Why a memfd and a private mapping: /proc/PID/maps then names the region after
 * the patch, and the memfd holds the image as the patch's own ELF file, so later
 * runs read its symbols and note through map_files like any mapped object's, and a
 * uprobe can be put on it. The file is sealed once written: a process or user that
 * reaches it through /proc cannot change code that is mapped from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "load.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#define NR_MMAP 9
#define NR_MPROTECT 10
#define NR_MUNMAP 11
#define NR_CLOSE 3
#define NR_MEMFD_CREATE 319

static long call(const struct lp_injector *inj, long nr, long a0, long a1, long a2, long a3, long a4,
		 bool *failed)
{
	long args[6] = { a0, a1, a2, a3, a4, 0 };

	return inj->syscall(inj->arg, nr, args, failed);
}

static int failure(struct lp_diag *d, pid_t via, const char *what, long got, bool failed)
{
	return lp_fail(d, LP_EXIT_ABORTED, "cannot load the patch into process %d: %s %s: %s", via,
		       what, failed ? "could not be run" : "failed",
		       strerror(got < 0 && got > -4096 ? (int)-got : EINVAL));
}

/* memfd_create(name, ...) in the process, the name written at the start of the reserved range. */
static long make_memfd(const struct lp_injector *inj, int mem_fd, const struct lp_load_image *im,
		       bool *failed)
{
	size_t len = strlen(im->memfd_name) + 1;

	if (pwrite(mem_fd, im->memfd_name, len, (off_t)im->base) != (ssize_t)len)
		return -errno;
	/* vm.memfd_noexec=2 refuses a memfd without NOEXEC_SEAL; a kernel before 6.3 refuses the flag. */
	long fd = call(inj, NR_MEMFD_CREATE, (long)im->base, MFD_CLOEXEC | MFD_ALLOW_SEALING |
		       MFD_NOEXEC_SEAL, 0, 0, 0, failed);
	if (!*failed && fd == -EINVAL)
		fd = call(inj, NR_MEMFD_CREATE, (long)im->base, MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0, 0,
			  failed);
	return fd;
}

/* The image into the process's memfd @fd, from here, then sealed. */
static int fill(pid_t via, long fd, struct lp_load_image *im)
{
	char path[64];
	struct stat sb = { 0 };
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd/%ld", via, fd);
	int f = open(path, O_RDWR | O_CLOEXEC);
	if (f < 0)
		return -errno;
	if (ftruncate(f, (off_t)im->image_len) ||
	    pwrite(f, im->image, im->image_len, 0) != (ssize_t)im->image_len ||
	    fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ||
	    fstat(f, &sb))
		ret = -errno;
	im->dev = (uint64_t)major(sb.st_dev) << 32 | minor(sb.st_dev);
	im->inode = sb.st_ino;
	close(f);
	return ret;
}

static int map_segments(const struct lp_injector *inj, long fd, const struct lp_load_image *im,
			bool *failed)
{
	long got = call(inj, NR_MMAP, (long)im->base, (long)im->size, PROT_READ, MAP_PRIVATE | MAP_FIXED,
			fd, failed);

	if (*failed || (uint64_t)got != im->base)
		return got < 0 ? (int)got : -EINVAL;
	for (size_t i = 0; i < LP_ARRAY_SIZE(im->seg); i++) {
		const struct lp_segment *s = &im->seg[i];
		if (!s->size || s->prot == PROT_READ)
			continue;
		got = call(inj, NR_MPROTECT, (long)(im->base + s->off), (long)s->size, s->prot, 0, 0, failed);
		if (*failed || got)
			return got ? (int)got : -EIO;
	}
	return 0;
}

int load_map(const struct lp_injector *inj, pid_t via, int mem_fd, struct lp_load_image *im,
	     struct lp_diag *d)
{
	bool failed = false;
	long got = call(inj, NR_MMAP, (long)im->base, (long)im->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, &failed);

	if (failed || (uint64_t)got != im->base) {
		if (!failed && got > 0 && (uint64_t)got < (uint64_t)-4096)	/* a kernel before 4.17 */
			(void)call(inj, NR_MUNMAP, got, (long)im->size, 0, 0, 0, &failed);
		return got == -EEXIST ? lp_fail(d, LP_EXIT_ABORTED, "cannot load the patch into process "
						"%d: its range 0x%" PRIx64 " was taken meanwhile (retry)",
						via, im->base) :
		       failure(d, via, "mmap", got, failed);
	}
	long fd = make_memfd(inj, mem_fd, im, &failed);
	int ret = failed || fd < 0 ? failure(d, via, "memfd_create", fd, failed) : 0;
	if (!ret && (got = fill(via, fd, im)))
		ret = failure(d, via, "writing the memfd", got, false);
	if (!ret && (got = map_segments(inj, fd, im, &failed)))
		ret = failure(d, via, "mapping the memfd", got, failed);
	if (fd >= 0 && !failed)
		(void)call(inj, NR_CLOSE, fd, 0, 0, 0, 0, &failed);
	if (ret && !failed)
		(void)load_unmap(inj, im->base, im->size);
	return ret;
}

int load_unmap(const struct lp_injector *inj, uint64_t base, uint64_t size)
{
	bool failed = false;
	long got = call(inj, NR_MUNMAP, (long)base, (long)size, 0, 0, 0, &failed);

	return failed ? (int)got : got < 0 ? (int)got : 0;
}
