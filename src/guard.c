/* The guard: finishes a transaction whose livepatch died (guard.h, docs/design.md §11). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "guard.h"

/* The child: its own session, no descriptor of the parent's but the pipe, then wait. */
static void guard_main(int fd, int (*recover)(void *arg), void *arg)
{
	int null = open("/dev/null", O_RDWR);
	sigset_t none;
	char c;

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
	ssize_t n;
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 0)	/* every write end closed without a word: livepatch died */
		_exit(recover(arg) ? 1 : 0);
	_exit(0);
}

int guard_start(struct lp_guard *g, int (*recover)(void *arg), void *arg)
{
	int p[2];

	g->pid = 0;
	g->fd = -1;
	if (pipe2(p, O_CLOEXEC))
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

void guard_done(struct lp_guard *g)
{
	if (g->fd < 0)
		return;
	(void)!write(g->fd, "d", 1);
	close(g->fd);
	g->fd = -1;
}
