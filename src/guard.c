/* The guard: finishes a transaction whose livepatch died (guard.h, docs/design.md §11). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "guard.h"

#define KEEP_MAX 8	/* descriptors the guard holds for livepatch (guard_keep) */

/* One message: its byte ('k' with descriptors, 'd'); 0 at livepatch's death; -1 on error. */
static int receive(int fd, int *kept, unsigned int *nkept)
{
	char c, buf[CMSG_SPACE(sizeof(int) * KEEP_MAX)];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
			    .msg_controllen = sizeof(buf) };
	ssize_t n;

	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return (int)n;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (*nkept < KEEP_MAX)
				kept[(*nkept)++] = f;
			else
				close(f);
		}
	}
	return c;
}

/*
 * The child: its own session, no descriptor of the parent's but the socket, then wait.
 * What it was given to hold (--verify's uprobes) it closes before anything else: the
 * last reference goes in a process that is not dying, so the kernel takes the probes
 * out of the target (one released by a process with SIGKILL pending can fail to, and
 * leaves its breakpoint in the target's text).
 */
static void guard_main(int fd, int (*recover)(void *arg), void *arg)
{
	int null = open("/dev/null", O_RDWR), kept[KEEP_MAX];
	unsigned int nkept = 0;
	sigset_t none;
	int c;

	setsid();
	prctl(PR_SET_NAME, LP_GUARD_COMM);
	/*
	 * Nothing of the caller's is held open: a shell reading livepatch's output, or a
	 * CI runner waiting for its pipes to close, must not wait for the guard.
	 */
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	if (dup2(fd, 3) == 3)
		fd = 3;
	close_range(fd + 1, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, s == SIGHUP || s == SIGINT || s == SIGPIPE ? SIG_IGN : SIG_DFL);
	while ((c = receive(fd, kept, &nkept)) == 'k')
		;
	for (unsigned int i = 0; i < nkept; i++)
		close(kept[i]);
	if (c == 0)	/* the socket closed without a word: livepatch died */
		_exit(recover(arg) ? 1 : 0);
	_exit(0);
}

int guard_start(struct lp_guard *g, int (*recover)(void *arg), void *arg)
{
	int p[2];

	*g = (struct lp_guard){ .fd = -1 };
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (!pid) {
		close(p[1]);
		guard_main(p[0], recover, arg);
	}
	close(p[0]);
	g->pid = pid;
	g->fd = p[1];
	return 0;
}

int guard_keep(struct lp_guard *g, const int *fds, unsigned int n)
{
	char c = 'k', buf[CMSG_SPACE(sizeof(int) * KEEP_MAX)] = { 0 };
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * n) };

	if (g->fd < 0 || !n)
		return 0;
	if (n > KEEP_MAX)
		return -E2BIG;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(h), fds, sizeof(int) * n);
	if (sendmsg(g->fd, &m, MSG_NOSIGNAL) != 1)
		return -errno;
	g->kept += n;
	return 0;
}

void guard_done(struct lp_guard *g)
{
	if (g->fd < 0)
		return;
	(void)!send(g->fd, "d", 1, MSG_NOSIGNAL);
	close(g->fd);
	g->fd = -1;
	/* What it holds comes out as it exits: gone before we report. */
	if (g->kept)
		while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
			;
}
