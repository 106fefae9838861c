/* stopwatch: run a program as its child and write one line per event its parent sees
 * through waitpid(WUNTRACED | WCONTINUED), so a test can count the stop and continue
 * notifications a process's real parent got (a tracer must add none):
 *
 *   stopwatch [--status F] [--ready R] --events FILE PROGRAM [ARGS...]
 *
 * runs PROGRAM ARGS --status F --ready R (--status and --ready are passed on, so
 * daemon_start of helpers.bash can start it: the ready file then holds the program's pid)
 * and appends to FILE:
 *   stopped SIG      the child stopped (group stop) with SIG
 *   continued        the child was continued
 *   exited N         it exited with N
 *   killed SIG       a signal killed it
 * SIGTERM, SIGINT and SIGHUP are passed on to the child (followed by SIGCONT, so that a
 * stopped child sees them). Exits with the child's status (128+SIG if a signal killed it). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig)
{
	int saved = errno;

	if (child > 0) {
		kill(child, sig);
		kill(child, SIGCONT);
	}
	errno = saved;
}

static void event(int fd, const char *fmt, int v)
{
	char buf[64];
	int n = snprintf(buf, sizeof buf, fmt, v);

	if (n > 0 && write(fd, buf, (size_t)n) != n)
		perror("stopwatch: write");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "status", required_argument, NULL, 's' },
		{ "ready", required_argument, NULL, 'r' },
		{ "events", required_argument, NULL, 'e' },
		{ 0 },
	};
	const char *status = NULL, *ready = NULL, *events = NULL;
	struct sigaction sa;
	char **args;
	int c, fd, n = 0, st;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			status = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'e':
			events = optarg;
			break;
		default:
			fprintf(stderr, "usage: stopwatch [--status F] [--ready R] --events FILE "
				"PROGRAM [ARGS...]\n");
			return 2;
		}
	}
	if (!events || optind >= argc) {
		fprintf(stderr, "usage: stopwatch [--status F] [--ready R] --events FILE "
			"PROGRAM [ARGS...]\n");
		return 2;
	}
	fd = open(events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "stopwatch: %s: %s\n", events, strerror(errno));
		return 2;
	}
	args = calloc((size_t)(argc - optind + 5), sizeof *args);
	if (!args)
		return 2;
	for (int i = optind; i < argc; i++)
		args[n++] = argv[i];
	if (status) {
		args[n++] = "--status";
		args[n++] = (char *)status;
	}
	if (ready) {
		args[n++] = "--ready";
		args[n++] = (char *)ready;
	}
	args[n] = NULL;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	child = fork();
	if (child < 0) {
		perror("stopwatch: fork");
		return 2;
	}
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execv(args[0], args);
		fprintf(stderr, "stopwatch: exec %s: %s\n", args[0], strerror(errno));
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(child, &st, WUNTRACED | WCONTINUED);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror("stopwatch: waitpid");
			return 1;
		}
		if (WIFSTOPPED(st)) {
			event(fd, "stopped %d\n", WSTOPSIG(st));
		} else if (WIFCONTINUED(st)) {
			event(fd, "continued%.0d\n", 0);
		} else if (WIFEXITED(st)) {
			event(fd, "exited %d\n", WEXITSTATUS(st));
			return WEXITSTATUS(st);
		} else if (WIFSIGNALED(st)) {
			event(fd, "killed %d\n", WTERMSIG(st));
			return 128 + WTERMSIG(st);
		}
	}
}
