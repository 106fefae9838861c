/* preforkd: a pre-forking server, for the multi-process mode (fleet.bats). The master runs
 * --threads N compute workers (default 1) and forks --workers W worker processes (default
 * 3, at most 64); each worker is one thread calling compute() in a tight loop, checking
 * every result, as counterd's threads do.
 *
 * Status: the master's --status FILE (calls_compute and calls_compute_v2 of its own threads,
 * plus workers, forks, worker_bad, killed, newest_worker), and one file per worker, FILE.PID,
 * written by the worker itself every 20 ms and at its exit: pid, threads, uptime_ms,
 * calls_compute, calls_compute_v2, wrong. A worker zeroes the counters it inherited before
 * its first call, so its file counts its own calls only: a worker forked after a patch must
 * show calls_compute 0 from its first status on (fork copies the patched text).
 *
 * The master re-forks a worker whenever one exits. SIGUSR1 asks it to SIGTERM its oldest
 * worker, which is then replaced: a test gets a fresh fork when it wants one; newest_worker
 * is the pid of the last worker whose first status file exists. The ready file is written
 * once the first W workers have written theirs. SIGTERM stops the workers, then the master.
 * worker_bad counts workers that did not exit 0 (a worker exits 1 when it saw a wrong result). */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64

static int nworkers = 3;
static struct {
	pid_t pid;
	unsigned long seq;	/* fork order: the smallest is the oldest */
} slot[MAX_WORKERS];
static unsigned long seq;
static counter_t live, forks, worker_bad, killed, newest_worker;
static bool in_worker;

/* Master keys: 0 in a worker's own status file, where they would only be stale copies. */
#define MASTER_KEY(name) \
	static unsigned long key_##name(void) { return in_worker ? 0 : atomic_load(&name); }
MASTER_KEY(live)
MASTER_KEY(forks)
MASTER_KEY(worker_bad)
MASTER_KEY(killed)
MASTER_KEY(newest_worker)

static void worker_loop(void)
{
	int x = (int)(getpid() & 0xffff) * 16;
	struct timespec next, now;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!common_stopping()) {
		for (int k = 0; k < 256; k++) {
			int r = compute(x);
			check_result(x, r);
			x = (x + 1) & 0xfffff;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec ||
		    (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
			status_write();
			next = now;
			ts_add_ns(&next, 20 * 1000000L);
		}
	}
}

/* The child's side of a fork: one thread, SIGTERM (its handler sets the stop flag) the only
 * signal it takes, killed with the master. */
static _Noreturn void worker_main(pid_t master, int sfd, int rfd, int wfd)
{
	static char path[4096];
	pid_t me = getpid();
	sigset_t term;

	in_worker = true;
	close(sfd);
	close(rfd);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != master)
		_exit(3);
	atomic_store(&calls_compute, 0);
	atomic_store(&calls_compute_v2, 0);
	atomic_store(&wrong, 0);
	snprintf(path, sizeof path, "%s.%ld", opt.status ? opt.status : "/dev/null", (long)me);
	opt.status = path;
	status_write();
	if (write(wfd, &me, sizeof me) != (ssize_t)sizeof me)
		_exit(3);
	close(wfd);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	worker_loop();
	status_write();
	_exit(atomic_load(&wrong) ? 1 : 0);
}

static void fork_worker(int i, int sfd, int rfd, int wfd)
{
	pid_t master = getpid(), p = fork();

	if (p < 0)
		die("fork: %s", strerror(errno));
	if (p == 0)
		worker_main(master, sfd, rfd, wfd);
	slot[i].pid = p;
	slot[i].seq = ++seq;
	count(&forks);
	count(&live);
}

static void kill_oldest(void)
{
	int o = -1;

	for (int i = 0; i < nworkers; i++)
		if (slot[i].pid > 0 && (o < 0 || slot[i].seq < slot[o].seq))
			o = i;
	if (o >= 0 && kill(slot[o].pid, SIGTERM) == 0)
		count(&killed);
}

/* Reap every worker that ended; re-fork it unless stopping. */
static void reap(int sfd, int rfd, int wfd)
{
	pid_t p;
	int st;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < nworkers; i++) {
			if (slot[i].pid != p)
				continue;
			slot[i].pid = 0;
			atomic_fetch_sub(&live, 1);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				count(&worker_bad);
			if (!common_stopping())
				fork_worker(i, sfd, rfd, wfd);
		}
	}
}

static void write_ready(void)
{
	char tmp[4096], buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid()), fd;

	if (!opt.ready)
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", opt.ready);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) < 0 || rename(tmp, opt.ready) < 0)
		die("ready file %s: %s", opt.ready, strerror(errno));
}

/* SIGTERM every worker and reap them as their SIGCHLDs come (2 s, then SIGKILL). */
static void stop_workers(int sfd, int rfd, int wfd)
{
	struct timespec end, now;

	for (int i = 0; i < nworkers; i++)
		if (slot[i].pid > 0)
			kill(slot[i].pid, SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &end);
	ts_add_ns(&end, 2000 * 1000000L);
	for (;;) {
		struct pollfd pfd = { sfd, POLLIN, 0 };
		struct signalfd_siginfo si;
		long ms;

		reap(sfd, rfd, wfd);
		if (!atomic_load(&live))
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (end.tv_sec - now.tv_sec) * 1000L + (end.tv_nsec - now.tv_nsec) / 1000000L;
		if (ms <= 0)
			break;
		if (poll(&pfd, 1, (int)ms) > 0 && read(sfd, &si, sizeof si) < 0)
			break;
	}
	for (int i = 0; i < nworkers; i++) {
		if (slot[i].pid <= 0)
			continue;
		kill(slot[i].pid, SIGKILL);
		waitpid(slot[i].pid, NULL, 0);
		slot[i].pid = 0;
		atomic_fetch_sub(&live, 1);
		count(&worker_bad);
	}
}

/* The master's loop: signals through a signalfd, worker pids through the pipe, a status
 * every 20 ms. */
static void serve(int sfd, int rfd, int wfd)
{
	int ready = 0;
	bool announced = false;
	struct timespec next, now;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!common_stopping()) {
		struct pollfd pfd[2] = { { sfd, POLLIN, 0 }, { rfd, POLLIN, 0 } };
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (next.tv_sec - now.tv_sec) * 1000L + (next.tv_nsec - now.tv_nsec) / 1000000L;
		if (poll(pfd, 2, ms > 0 ? (int)ms : 0) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGCHLD)
					reap(sfd, rfd, wfd);
				else if (si.ssi_signo == SIGUSR1)
					kill_oldest();
				else
					common_request_stop();
			}
		}
		if (pfd[1].revents & POLLIN) {
			pid_t p;

			if (read(rfd, &p, sizeof p) == (ssize_t)sizeof p) {
				atomic_store(&newest_worker, (unsigned long)p);
				ready++;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec ||
		    (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
			status_write();
			next = now;
			ts_add_ns(&next, 20 * 1000000L);
		}
		if (!announced && ready >= nworkers) {
			status_write();
			write_ready();
			announced = true;
		}
	}
}

enum { OPT_WORKERS = 256 };

static int handle(int val, const char *arg)
{
	char *end;

	if (val != OPT_WORKERS)
		return -1;
	nworkers = (int)strtol(arg, &end, 10);
	return *end || nworkers < 1 || nworkers > MAX_WORKERS ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ 0 },
	};
	sigset_t set;
	pthread_t *t;
	int n, sfd, pfd[2];

	common_init(argc, argv, extra, handle,
		    "  --workers W       worker processes (default 3, at most 64)\n"
		    "  (--threads N: compute threads of the master, default 1)\n",
		    1);
	status_add_fn("workers", key_live);
	status_add_fn("forks", key_forks);
	status_add_fn("worker_bad", key_worker_bad);
	status_add_fn("killed", key_killed);
	status_add_fn("newest_worker", key_newest_worker);

	/* Before any thread or worker exists: all inherit the block, the signalfd takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0 || pipe2(pfd, O_CLOEXEC) < 0)
		die("signalfd/pipe: %s", strerror(errno));

	n = start_compute_workers(&t);
	common_wait_started(n);
	for (int i = 0; i < nworkers; i++)
		fork_worker(i, sfd, pfd[0], pfd[1]);
	serve(sfd, pfd[0], pfd[1]);
	stop_workers(sfd, pfd[0], pfd[1]);
	join_workers(t, n);
	common_exit();
}
