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
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "load.h"
#include "proc.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
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

/* The injection was refused before the call (its seccomp filter): exit 3, nothing made. */
static int refused(const struct lp_injector *inj, struct lp_diag *d, pid_t via)
{
	return lp_fail(d, LP_EXIT_PROCESS, "cannot load the patch into process %d: %s (allow "
		       "mmap, mprotect, munmap, memfd_create and close in its seccomp filter, e.g. "
		       "systemd's SystemCallFilter=, or patch without --load)", via, inj->why);
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

/*
 * The process's descriptor @fd as a descriptor of ours, with the open mode it has
 * there: pidfd_getfd (Linux 5.6). Not a reopen of /proc/PID/fd/N, which would be
 * read-write with root's rights whatever the process put at N meanwhile (dup2 of a
 * read-only descriptor of a file it may not write). Without pidfd_getfd, the reopen,
 * which check_memfd() then judges before anything is written.
 */
static int take_fd(pid_t pid, pid_t via, long fd)
{
	char path[64];
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pfd >= 0) {
		int f = (int)syscall(SYS_pidfd_getfd, pfd, (int)fd, 0);
		int err = errno;
		close(pfd);
		if (f >= 0 || err != ENOSYS)
			return f >= 0 ? f : -err;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%ld", via, fd);
	int f = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	return f >= 0 ? f : -errno;
}

/*
 * @f is the memfd just made, nothing else: an empty, unlinked memfd with no seal
 * but the exec one, named as asked. Whatever the process swapped in is refused.
 */
static int check_memfd(int f, const struct lp_load_image *im)
{
	char path[64], link[300], want[300];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", f);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	int seals = fcntl(f, F_GET_SEALS);
	if (n < 0 || fstat(f, &sb) || seals < 0)
		return -EBADF;
	link[n] = 0;
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", im->memfd_name);
	if (!S_ISREG(sb.st_mode) || sb.st_nlink || sb.st_size || (seals & ~F_SEAL_EXEC) || strcmp(link, want))
		return -EBADF;
	return 0;
}

/*
 * The image into the process's memfd @fd, from here, then sealed. Pages of zeros
 * (bss) are not written: a memfd's holes read as zeros and cost no memory.
 */
static int fill(pid_t pid, pid_t via, long fd, struct lp_load_image *im)
{
	static const uint8_t zero[LP_LINK_PAGE];
	struct stat sb = { 0 };
	int f = take_fd(pid, via, fd), ret;

	if (f < 0)
		return f;
	ret = check_memfd(f, im);
	if (!ret && ftruncate(f, (off_t)im->image_len))
		ret = -errno;
	for (size_t off = 0; !ret && off < im->image_len; off += LP_LINK_PAGE) {
		size_t len = im->image_len - off < LP_LINK_PAGE ? im->image_len - off : LP_LINK_PAGE;
		if (memcmp(im->image + off, zero, len) && pwrite(f, im->image + off, len, (off_t)off) != (ssize_t)len)
			ret = -errno;
	}
	if (!ret && (fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ||
		     fstat(f, &sb)))
		ret = -errno;
	im->dev = (uint64_t)major(sb.st_dev) << 32 | minor(sb.st_dev);
	im->inode = sb.st_ino;
	close(f);
	return ret;
}

/* proc_maps_walk() callback: the mapping at the base is the memfd filled (1), else -EBADF. */
static int mapped_here(const struct lp_maps_line *m, void *arg)
{
	const struct lp_load_image *im = arg;

	if (m->start != im->base)
		return 0;
	return m->dev == im->dev && m->inode == im->inode && !m->offset ? 1 : -EBADF;
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

int load_map(const struct lp_injector *inj, pid_t pid, pid_t via, int mem_fd,
	     struct lp_load_image *im, struct lp_diag *d)
{
	bool failed = false;
	long got = call(inj, NR_MMAP, (long)im->base, (long)im->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, &failed);

	if (failed && inj->why && inj->why[0])
		return refused(inj, d, via);
	if (failed || (uint64_t)got != im->base) {
		if (!failed && got > 0 && (uint64_t)got < (uint64_t)-4096)	/* a kernel before 4.17 */
			(void)call(inj, NR_MUNMAP, got, (long)im->size, 0, 0, 0, &failed);
		return got == -EEXIST ? lp_fail(d, LP_EXIT_ABORTED, "cannot load the patch into process "
						"%d: its range 0x%" PRIx64 " was taken meanwhile (retry)",
						via, im->base) :
		       failure(d, via, "mmap", got, failed);
	}
	long fd = make_memfd(inj, mem_fd, im, &failed);
	int ret = failed && inj->why && inj->why[0] ? refused(inj, d, via) :
		  failed || fd < 0 ? failure(d, via, "memfd_create", fd, failed) : 0;
	if (!ret && (got = fill(pid, via, fd, im)))
		ret = failure(d, via, "writing the memfd (it is not the one just made)", got, false);
	if (!ret && (got = map_segments(inj, fd, im, &failed)))
		ret = failed && inj->why && inj->why[0] ? refused(inj, d, via) :
		      failure(d, via, "mapping the memfd", got, failed);
	if (!ret && proc_maps_walk(via, mapped_here, im) != 1)
		ret = lp_fail(d, LP_EXIT_ABORTED, "cannot load the patch into process %d: the memfd "
			      "mapped at 0x%" PRIx64 " is not the one filled (retry)", via, im->base);
	/* A call its seccomp filter refused was not made: the thread can still undo. */
	bool usable = !failed || (inj->why && inj->why[0]);
	if (fd >= 0 && usable)
		(void)call(inj, NR_CLOSE, fd, 0, 0, 0, 0, &failed);
	if (ret && usable)
		(void)load_unmap(inj, im->base, im->size);
	return ret;
}

int load_unmap(const struct lp_injector *inj, uint64_t base, uint64_t size)
{
	bool failed = false;
	long got = call(inj, NR_MUNMAP, (long)base, (long)size, 0, 0, 0, &failed);

	return failed ? (int)got : got < 0 ? (int)got : 0;
}
