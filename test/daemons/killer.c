/* killer K DELAY_US CMD [ARGS...]: run CMD (livepatch -v ...) with its stderr on a pipe and
 * SIGKILL it DELAY_US microseconds after it wrote its K-th line there (K 0: right after the
 * exec, before any line). The kill mode of `make stress` (test/killstress.sh) uses it: bash
 * cannot time a kill to the microsecond, nor tell afterwards whether it landed.
 *
 * Prints one line on stdout:
 *   step STEP lines N mid 0|1 status S hung 0|1
 * STEP is the protocol step of the last line CMD wrote before the kill (exec when none:
 * seized, shield, sync0..sync3, verify, check, rollback, load, or the step before an other
 * line); N the lines it wrote by then; mid 1 when the SIGKILL ended it (it had not exited
 * yet, the kill "landed mid-run"), else 0 and S is its exit status; hung 1 when line K did
 * not come within 60 s, and CMD was killed for it. CMD's stdout goes to /dev/null; its stderr
 * lines are copied to fd 3 when fd 3 is open (the kill's log).
 * Exits 0, or 2 when CMD could not be run. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct out {
	int fd;			/* CMD's stderr */
	char buf[65536];
	size_t len;		/* bytes of an unfinished line in buf */
	unsigned lines;
	const char *step;
	int log;		/* fd 3, or -1 */
};

/* The step a --verbose line reports ("livepatch: [  1.234] sync1: wrote int3 ..."). */
static const char *step_of(const char *line, const char *prev)
{
	static const struct { const char *word, *step; } steps[] = {
		{ "seized ", "seized" }, { "sync0:", "sync0" }, { "sync1:", "sync1" },
		{ "sync2:", "sync2" }, { "sync3:", "sync3" }, { "verify", "verify" },
		{ "check ", "check" }, { "rolling back", "rollback" }, { "roll-back", "rollback" },
		{ "loaded ", "load" }, { "shield up", "shield" }, { "no shield", "shield" },
	};
	const char *p = strchr(line, ']');

	p = p ? p + 1 : line;
	while (*p == ' ')
		p++;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (!strncmp(p, steps[i].word, strlen(steps[i].word)))
			return steps[i].step;
	return prev;
}

/* Reads what CMD wrote; counts and classifies whole lines. Returns 0 at EOF, else 1. */
static int drain(struct out *o)
{
	ssize_t n = read(o->fd, o->buf + o->len, sizeof(o->buf) - 1 - o->len);
	char *line, *nl;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	if (o->log >= 0 && write(o->log, o->buf + o->len, (size_t)n) < 0)
		o->log = -1;
	o->len += (size_t)n;
	o->buf[o->len] = 0;
	line = o->buf;
	while ((nl = strchr(line, '\n'))) {
		*nl = 0;
		o->lines++;
		o->step = step_of(line, o->step);
		line = nl + 1;
	}
	o->len -= (size_t)(line - o->buf);
	memmove(o->buf, line, o->len);
	if (o->len == sizeof(o->buf) - 1)	/* a line longer than the buffer: drop it */
		o->len = 0;
	return 1;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Waits for line @k, then @delay_us more, reading lines all the while; returns early at
 * EOF (CMD exited, or is about to). Returns 1 when line @k did not come within
 * HANG_NS: CMD hangs (the kill ends it all the same). */
#define HANG_NS 60000000000LL
static int wait_point(struct out *o, unsigned k, long delay_us)
{
	long long due = -1, hang = now_ns() + HANG_NS;
	struct pollfd p = { .fd = o->fd, .events = POLLIN };

	for (;;) {
		if (due < 0 && o->lines >= k)
			due = now_ns() + delay_us * 1000LL;
		if (due >= 0 && now_ns() >= due)
			return 0;
		if (due < 0 && now_ns() >= hang)
			return 1;
		long long left = (due < 0 ? hang : due) - now_ns();
		struct timespec ts = { left / 1000000000LL, left % 1000000000LL };
		int r = ppoll(&p, 1, left > 0 ? &ts : &(struct timespec){ 0, 0 }, NULL);

		if (r < 0 && errno != EINTR)
			return 0;
		if (r > 0 && !drain(o))
			return 0;
	}
}

int main(int argc, char **argv)
{
	struct out o = { .step = "exec", .log = fcntl(3, F_GETFD) < 0 ? -1 : 3 };
	char *e1, *e2;
	int fds[2], st, hung;
	pid_t pid;

	if (argc < 4) {
		fprintf(stderr, "usage: killer K DELAY_US CMD [ARGS...]\n");
		return 2;
	}
	long k = strtol(argv[1], &e1, 10), delay = strtol(argv[2], &e2, 10);
	if (*e1 || *e2 || k < 0 || delay < 0) {
		fprintf(stderr, "killer: bad arguments\n");
		return 2;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "killer: pipe: %s\n", strerror(errno));
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "killer: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null < 0 || dup2(null, 1) < 0 || dup2(fds[1], 2) < 0)
			_exit(127);
		if (o.log >= 0)
			close(3);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	close(fds[1]);
	o.fd = fds[0];
	hung = wait_point(&o, (unsigned)k, delay);
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "killer: waitpid: %s\n", strerror(errno));
			return 2;
		}
	/* What CMD wrote before it died (already in the pipe) counts for its step. */
	fcntl(o.fd, F_SETFL, O_NONBLOCK);
	for (struct pollfd p = { .fd = o.fd, .events = POLLIN }; poll(&p, 1, 0) > 0;)
		if (!drain(&o))
			break;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		printf("step %s lines %u mid 1 status 137 hung %d\n", o.step, o.lines, hung);
	else
		printf("step %s lines %u mid 0 status %d hung 0\n", o.step, o.lines,
		       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
