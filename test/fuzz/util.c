/* Helpers shared by the fuzz harnesses (util.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "util.h"

static int memfd = -1;	/* one for the harness's whole life, reused for every input */
static char memfd_path[32];

int f_memfd(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz", MFD_CLOEXEC);
		if (memfd < 0)
			return -1;
		snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) || lseek(memfd, 0, SEEK_SET))
		return -1;
	for (size_t done = 0; done < size; ) {
		ssize_t n = write(memfd, data + done, size - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return lseek(memfd, 0, SEEK_SET) ? -1 : memfd;
}

const char *f_memfd_path(void)
{
	return memfd_path;
}

char *f_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

void f_quiet_stdout(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
}
