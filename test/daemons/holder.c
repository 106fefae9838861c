/* holder: another tracer. Seizes every thread of a process (PTRACE_SEIZE, so nothing stops)
 * and holds it until killed, so a test has a process that livepatch must refuse:
 *
 *   holder [--status F] --ready R --pid PID
 *
 * The ready file gets holder's pid once every thread is seized (TracerPid is set in each);
 * the status file (optional): pid, held (threads seized so far). Threads the process creates
 * later are traced too (PTRACE_O_TRACECLONE). Stops are passed on: a signal is delivered
 * with the restart, a group stop is listened to (PTRACE_LISTEN), so the process runs and
 * stops as it would untraced, and SIGTERM still stops it. SIGTERM or SIGKILL ends holder;
 * the kernel then detaches the threads. Exits 0 when the process is gone, 1 on an error
 * (EPERM included: the message says so), 2 on bad arguments. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TIDS 4096

static pid_t seized[MAX_TIDS];
static int nseized;

static bool is_seized(pid_t tid)
{
	for (int i = 0; i < nseized; i++)
		if (seized[i] == tid)
			return true;
	return false;
}

/* One pass over /proc/PID/task: seize what is new; returns how many were, -1 on an error. */
static int seize_pass(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int added = 0;

	snprintf(path, sizeof path, "/proc/%d/task", pid);
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "holder: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid <= 0 || is_seized(tid))
			continue;
		if (nseized == MAX_TIDS) {
			fprintf(stderr, "holder: more than %d threads\n", MAX_TIDS);
			closedir(d);
			return -1;
		}
		if (ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACECLONE) < 0) {
			if (errno == ESRCH)	/* the thread just exited */
				continue;
			fprintf(stderr, "holder: PTRACE_SEIZE %d: %s\n", tid, strerror(errno));
			closedir(d);
			return -1;
		}
		seized[nseized++] = tid;
		added++;
	}
	closedir(d);
	return added;
}

static void write_file(const char *path, const char *text)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) < 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "holder: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Pass every stop on until no tracee is left. */
static int hold(void)
{
	for (;;) {
		int st, sig, event;
		pid_t tid = waitpid(-1, &st, __WALL);

		if (tid < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECHILD ? 0 : 1;
		}
		if (!WIFSTOPPED(st))
			continue;	/* a thread exited */
		sig = WSTOPSIG(st);
		event = st >> 16;
		if (event == PTRACE_EVENT_STOP &&
		    (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU))
			ptrace(PTRACE_LISTEN, tid, 0, 0);	/* group stop: stay stopped */
		else if (event)
			ptrace(PTRACE_CONT, tid, 0, 0);		/* clone event, new thread's first stop */
		else
			ptrace(PTRACE_CONT, tid, 0, sig);	/* signal-delivery stop: deliver it */
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "status", required_argument, NULL, 's' },
		{ "ready", required_argument, NULL, 'r' },
		{ "pid", required_argument, NULL, 'p' },
		{ 0 },
	};
	const char *status = NULL, *ready = NULL;
	char buf[64], *end;
	pid_t pid = 0;
	int c, n, passes = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			status = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'p':
			pid = (pid_t)strtol(optarg, &end, 10);
			if (*end || pid <= 0)
				pid = 0;
			break;
		default:
			pid = 0;
			optind = argc;
		}
	}
	if (!pid || !ready || optind < argc) {
		fprintf(stderr, "usage: holder [--status FILE] --ready FILE --pid PID\n");
		return 2;
	}
	/* Until a pass finds no new thread (bounded: a process that clones without end). */
	while ((n = seize_pass(pid)) > 0)
		if (++passes > 100) {
			fprintf(stderr, "holder: threads of %d still appearing after 100 passes\n", pid);
			return 1;
		}
	if (n < 0 || !nseized)
		return 1;
	if (status) {
		snprintf(buf, sizeof buf, "pid %d\nheld %d\n", (int)getpid(), nseized);
		write_file(status, buf);
	}
	snprintf(buf, sizeof buf, "%d\n", (int)getpid());
	write_file(ready, buf);
	return hold();
}
