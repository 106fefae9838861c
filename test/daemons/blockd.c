/* blockd: one thread blocked in each kind of system call, counting every EINTR it sees
 * (eintr_<kind>) and checking the data that arrives, plus --threads N compute workers.
 * No signal handler is involved: an EINTR here means someone stopped the thread.
 *
 *   read         pipe, 8-byte sequence numbers written every 2 ms
 *   epoll        epoll_wait (50 ms timeout) on an eventfd bumped every 5 ms
 *   futex        FUTEX_WAIT_PRIVATE (50 ms timeout) on a word nobody wakes
 *   nanosleep    nanosleep 10 ms in a loop
 *   accept       accept on an abstract UNIX socket; a connector sends a sequence number
 *                every 10 ms (eintr_accept_read: the read of that number)
 *   sigwait      sigtimedwait (50 ms) for SIGRTMIN+2, blocked in every thread, sent to
 *                the waiter with tgkill every 10 ms
 *   recv         recv with SO_RCVTIMEO 50 ms on a datagram socketpair fed every 10 ms
 *   semop        semtimedop (50 ms) on a SysV semaphore posted every 10 ms (removed at exit;
 *                key 0x4c500000+pid, stale ones of dead blockds removed at start)
 *   ping         epoll_wait with no timeout on a second eventfd that a pinger thread bumps
 *                every 50 us, so the waiter enters epoll_wait thousands of times a second
 *                (eintr_ping: the calls a stop could cut right after they began; pings_sent
 *                must equal pings_got)
 *
 * A feed or ping thread that has not finished 3 s after the stop counts in unjoined (as
 * a bit: 1 feeder, 2 connector, 4 pinger, 8 ping waiter);
 * pings_stranded counts what the eventfd still held then (a waiter asleep on a ping: a
 * lost wakeup), so a loss can be told from a thread starved of CPU.
 *
 * The feeds come from one feeder thread (1 ms tick) and one connector thread. On stop,
 * the feeds stop first and the readers get 100 ms to drain before the final status, so
 * written == read in it. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* (a) pipe */
static counter_t pipe_bytes_written, pipe_bytes_read, pipe_seq_errors, eintr_read;
/* (b) epoll + eventfd */
static counter_t eventfd_writes, eventfd_sum, epoll_events, epoll_timeouts, eintr_epoll;
/* (c) futex */
static counter_t futex_timeouts, futex_other, eintr_futex;
/* (d) nanosleep */
static counter_t nanosleeps, eintr_nanosleep;
/* (e) accept */
static counter_t connects, connect_errors, accepted, accept_seq_errors, eintr_accept,
	eintr_accept_read;
/* (f) sigtimedwait */
static counter_t sigwait_sent, sigwait_got, sigwait_timeouts, eintr_sigwait;
/* (g) recv */
static counter_t send_bytes, recv_bytes, recv_seq_errors, recv_timeouts, eintr_recv;
/* (h) semtimedop */
static counter_t sem_posted, sem_got, semop_timeouts, semop_errors, eintr_semop;
/* (i) epoll_wait without a timeout, woken often */
static counter_t pings_sent, pings_got, eintr_ping, unjoined, pings_stranded;
static int ping_efd, ping_epfd;
static _Atomic int ping_done;

static int pipe_fd[2], efd, epfd, listen_fd, dgram_fd[2], sem_id;
static _Atomic int futex_word;
static _Atomic pid_t sigwait_tid;
static struct sockaddr_un sun_addr;
static socklen_t sun_len;
static int sigwait_signo;

static void rel_ms(struct timespec *ts, long ms)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (ms % 1000) * 1000000L;
}

static void *pipe_reader(void *arg)
{
	uint64_t expect = 1, v;
	size_t have = 0;

	(void)arg;
	common_thread_started();
	for (;;) {
		ssize_t n = read(pipe_fd[0], (char *)&v + have, sizeof v - have);

		if (n < 0) {
			if (errno == EINTR)
				count(&eintr_read);
			continue;
		}
		if (n == 0)
			return NULL;
		count_n(&pipe_bytes_read, (unsigned long)n);
		have += (size_t)n;
		if (have < sizeof v)
			continue;
		have = 0;
		if (v != expect)
			count(&pipe_seq_errors);
		expect = v + 1;
	}
}

static void *epoll_waiter(void *arg)
{
	struct epoll_event ev;

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		int n = epoll_wait(epfd, &ev, 1, 50);
		uint64_t v;

		if (n < 0) {
			if (errno == EINTR)
				count(&eintr_epoll);
			continue;
		}
		if (n == 0) {
			count(&epoll_timeouts);
			continue;
		}
		count(&epoll_events);
		if (read(efd, &v, sizeof v) == sizeof v)
			count_n(&eventfd_sum, v);
	}
	return NULL;
}

static void *ping_waiter(void *arg)
{
	struct epoll_event ev;

	(void)arg;
	common_thread_started();
	/*
	 * Until the pinger has stopped and everything it sent has been taken. The pinger
	 * counts a ping after writing it: the last one can be taken before it is counted,
	 * so once the pinger has stopped the wait has a timeout, to look again.
	 */
	while (!atomic_load(&ping_done) || pings_got != pings_sent) {
		uint64_t v;
		int n = epoll_wait(ping_epfd, &ev, 1, atomic_load(&ping_done) ? 100 : -1);

		if (n < 0) {
			if (errno == EINTR)
				count(&eintr_ping);
			continue;
		}
		if (n > 0 && read(ping_efd, &v, sizeof v) == sizeof v)
			count_n(&pings_got, v);
		/* A few microseconds of work, so a sync often sees this thread running just
		 * before it goes back into epoll_wait. */
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do
			clock_gettime(CLOCK_MONOTONIC, &t1);
		while ((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec - t0.tv_nsec < 5000);
	}
	return NULL;
}

static void *pinger(void *arg)
{
	uint64_t one = 1;

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		struct timespec ts = { 0, 50000 };

		if (write(ping_efd, &one, sizeof one) == sizeof one)
			count(&pings_sent);
		nanosleep(&ts, NULL);
	}
	atomic_store(&ping_done, 1);
	if (write(ping_efd, &one, sizeof one) == sizeof one)	/* wake the waiter to see it */
		count(&pings_sent);
	return NULL;
}

static void *futex_waiter(void *arg)
{
	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		struct timespec ts;
		long r;

		rel_ms(&ts, 50);
		r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
		if (r < 0 && errno == ETIMEDOUT)
			count(&futex_timeouts);
		else if (r < 0 && errno == EINTR)
			count(&eintr_futex);
		else
			count(&futex_other);
	}
	return NULL;
}

static void *nanosleeper(void *arg)
{
	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		struct timespec ts;

		rel_ms(&ts, 10);
		if (nanosleep(&ts, NULL) < 0) {
			if (errno == EINTR)
				count(&eintr_nanosleep);
			continue;
		}
		count(&nanosleeps);
	}
	return NULL;
}

static void *acceptor(void *arg)
{
	uint64_t expect = 1;

	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		uint64_t v;
		size_t have = 0;

		if (c < 0) {
			if (errno == EINTR)
				count(&eintr_accept);
			continue;
		}
		while (have < sizeof v) {
			ssize_t n = read(c, (char *)&v + have, sizeof v - have);

			if (n < 0 && errno == EINTR) {
				count(&eintr_accept_read);
				continue;
			}
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		close(c);
		if (have != sizeof v || v != expect)
			count(&accept_seq_errors);
		else
			count(&accepted);
		if (have == sizeof v)
			expect = v + 1;
	}
	return NULL;
}

/* Connect every 10 ms and send the next sequence number. */
static void *connector(void *arg)
{
	uint64_t seq = 1;
	struct timespec next;

	(void)arg;
	common_thread_started();
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!common_stopping()) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (s >= 0 && connect(s, (struct sockaddr *)&sun_addr, sun_len) == 0 &&
		    write(s, &seq, sizeof seq) == sizeof seq) {
			count(&connects);
			seq++;
		} else {
			count(&connect_errors);
		}
		if (s >= 0)
			close(s);
		ts_add_ns(&next, 10 * 1000000L);
		while (!common_stopping() &&
		       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	return NULL;
}

static void *sigwaiter(void *arg)
{
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, sigwait_signo);
	atomic_store(&sigwait_tid, gettid());
	common_thread_started();
	while (!common_stopping()) {
		struct timespec ts;
		siginfo_t si;

		rel_ms(&ts, 50);
		if (sigtimedwait(&set, &si, &ts) == sigwait_signo)
			count(&sigwait_got);
		else if (errno == EAGAIN)
			count(&sigwait_timeouts);
		else if (errno == EINTR)
			count(&eintr_sigwait);
	}
	return NULL;
}

static void *recver(void *arg)
{
	uint64_t expect = 1;
	struct timeval tv = { 0, 50000 };

	(void)arg;
	if (setsockopt(dgram_fd[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
		die("SO_RCVTIMEO: %s", strerror(errno));
	common_thread_started();
	while (!common_stopping()) {
		uint64_t v;
		ssize_t n = recv(dgram_fd[0], &v, sizeof v, 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				count(&recv_timeouts);
			else if (errno == EINTR)
				count(&eintr_recv);
			continue;
		}
		count_n(&recv_bytes, (unsigned long)n);
		if (n != sizeof v || v != expect)
			count(&recv_seq_errors);
		if (n == sizeof v)
			expect = v + 1;
	}
	return NULL;
}

static void *semwaiter(void *arg)
{
	(void)arg;
	common_thread_started();
	while (!common_stopping()) {
		struct sembuf op = { 0, -1, 0 };
		struct timespec ts;

		rel_ms(&ts, 50);
		if (semtimedop(sem_id, &op, 1, &ts) == 0)
			count(&sem_got);
		else if (errno == EAGAIN)
			count(&semop_timeouts);
		else if (errno == EINTR)
			count(&eintr_semop);
		else if (!common_stopping())
			count(&semop_errors);
	}
	return NULL;
}

/* Feeds (a), (b), (f), (g), (h) on a 1 ms tick. */
static void *feeder(void *arg)
{
	uint64_t pipe_seq = 1, dgram_seq = 1, one = 1;
	struct timespec next, now;
	unsigned long tick = 0;

	(void)arg;
	common_thread_started();
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!common_stopping()) {
		tick++;
		if (tick % 2 == 0 && write(pipe_fd[1], &pipe_seq, sizeof pipe_seq) == sizeof pipe_seq) {
			count_n(&pipe_bytes_written, sizeof pipe_seq);
			pipe_seq++;
		}
		if (tick % 5 == 0 && write(efd, &one, sizeof one) == sizeof one)
			count(&eventfd_writes);
		if (tick % 10 == 0) {
			pid_t tid = atomic_load(&sigwait_tid);
			struct sembuf op = { 0, 1, 0 };

			if (tid > 0 && syscall(SYS_tgkill, getpid(), tid, sigwait_signo) == 0)
				count(&sigwait_sent);
			if (send(dgram_fd[1], &dgram_seq, sizeof dgram_seq, MSG_DONTWAIT) ==
			    sizeof dgram_seq) {
				count_n(&send_bytes, sizeof dgram_seq);
				dgram_seq++;
			}
			if (semop(sem_id, &op, 1) == 0)
				count(&sem_posted);
		}
		ts_add_ns(&next, 1000000L);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec + 1)	/* far behind (stopped): do not burst */
			next = now;
		while (!common_stopping() &&
		       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	return NULL;
}

/* The semaphore's key is SEM_KEY_BASE + pid, so one left by a blockd killed with SIGKILL
 * (no chance to remove it) is recognised and removed by the next blockd. */
#define SEM_KEY_BASE 0x4c500000
#define SEM_KEY_SPAN 0x00400000	/* pid_max limit */

static void sem_sweep(void)
{
	FILE *f = fopen("/proc/sysvipc/sem", "re");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		long key, id;

		if (sscanf(line, "%ld %ld", &key, &id) != 2)
			continue;	/* header */
		if (key <= SEM_KEY_BASE || key >= SEM_KEY_BASE + SEM_KEY_SPAN)
			continue;
		if (kill((pid_t)(key - SEM_KEY_BASE), 0) < 0 && errno == ESRCH)
			semctl((int)id, 0, IPC_RMID);
	}
	fclose(f);
}

static void setup(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t set;

	/* SIGRTMIN+2 is blocked in every thread and only ever waited for. */
	sigwait_signo = SIGRTMIN + 2;
	sigemptyset(&set);
	sigaddset(&set, sigwait_signo);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (pipe2(pipe_fd, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) < 0)
		die("eventfd/epoll: %s", strerror(errno));
	ping_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ping_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ping_efd < 0 || ping_epfd < 0 || epoll_ctl(ping_epfd, EPOLL_CTL_ADD, ping_efd, &ev) < 0)
		die("eventfd/epoll (ping): %s", strerror(errno));

	memset(&sun_addr, 0, sizeof sun_addr);
	sun_addr.sun_family = AF_UNIX;
	/* abstract name, unique per pid */
	int n = snprintf(sun_addr.sun_path + 1, sizeof sun_addr.sun_path - 1,
			 "livepatch-blockd-%ld", (long)getpid());
	sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sun_addr, sun_len) < 0 ||
	    listen(listen_fd, 64) < 0)
		die("unix socket: %s", strerror(errno));

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dgram_fd) < 0)
		die("socketpair: %s", strerror(errno));

	sem_sweep();
	sem_id = semget(SEM_KEY_BASE + getpid(), 1, IPC_CREAT | IPC_EXCL | 0600);
	if (sem_id < 0 && errno == EEXIST) {	/* left by a killed blockd with our pid */
		semctl(semget(SEM_KEY_BASE + getpid(), 1, 0), 0, IPC_RMID);
		sem_id = semget(SEM_KEY_BASE + getpid(), 1, IPC_CREAT | IPC_EXCL | 0600);
	}
	if (sem_id < 0)
		die("semget: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	static void *(*const blockers[])(void *) = {
		pipe_reader, epoll_waiter, futex_waiter, nanosleeper,
		acceptor, sigwaiter, recver, semwaiter,
	};
	const int nb = sizeof blockers / sizeof blockers[0];
	pthread_t bt[8], feed, conn, pw, pg, *t;
	int n;

	common_init(argc, argv, NULL, NULL, "  (--threads N: compute workers, default 4)\n", 4);
#define K(name) status_add(#name, &name)
	K(pipe_bytes_written); K(pipe_bytes_read); K(pipe_seq_errors); K(eintr_read);
	K(eventfd_writes); K(eventfd_sum); K(epoll_events); K(epoll_timeouts); K(eintr_epoll);
	K(futex_timeouts); K(futex_other); K(eintr_futex);
	K(nanosleeps); K(eintr_nanosleep);
	K(connects); K(connect_errors); K(accepted); K(accept_seq_errors); K(eintr_accept);
	K(eintr_accept_read);
	K(sigwait_sent); K(sigwait_got); K(sigwait_timeouts); K(eintr_sigwait);
	K(send_bytes); K(recv_bytes); K(recv_seq_errors); K(recv_timeouts); K(eintr_recv);
	K(sem_posted); K(sem_got); K(semop_timeouts); K(semop_errors); K(eintr_semop);
	K(pings_sent); K(pings_got); K(eintr_ping); K(unjoined); K(pings_stranded);
#undef K
	setup();

	for (int i = 0; i < nb; i++)
		common_thread_create(&bt[i], blockers[i], NULL);
	n = start_compute_workers(&t);
	common_thread_create(&feed, feeder, NULL);
	common_thread_create(&conn, connector, NULL);
	common_thread_create(&pw, ping_waiter, NULL);
	common_thread_create(&pg, pinger, NULL);
	common_wait_started(nb + n + 4);

	common_run();
	pthread_t feeds[] = { feed, conn, pg, pw };
	for (size_t i = 0; i < sizeof(feeds) / sizeof(feeds[0]); i++)
		if (!common_join(feeds[i], 3000))
			count_n(&unjoined, 1UL << i);
	uint64_t v;
	if (unjoined && read(ping_efd, &v, sizeof v) == sizeof v)
		count_n(&pings_stranded, v);
	join_workers(t, n);
	nap_ms(100);		/* let the blocked readers take what is in flight */
	status_write();
	semctl(sem_id, 0, IPC_RMID);
	common_exit();
}
