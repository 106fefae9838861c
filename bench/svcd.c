/* svcd: the loaded service of `make bench`, a multithreaded TCP request/response server on
 * 127.0.0.1. The main thread accepts and hands each connection to a worker (round robin);
 * each worker waits in epoll_wait on its own connections and answers every request with
 * svc_handle (the function patched to svc_handle_v2, see svc.h).
 *
 *   svcd --threads T --ready FILE [--status FILE]
 *
 * FILE gets the port once the workers run. Every EINTR a worker sees (epoll_wait, recv, send)
 * is retried and counted: livepatch must not cause any. The status file (key value lines,
 * written at exit) has requests, eintr_epoll_wait, eintr_recv, eintr_send, conn_errors,
 * calls_v1, calls_v2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "svc.h"

static _Atomic unsigned long requests, conn_errors, calls_v1, calls_v2;
static _Atomic unsigned long eintr_epoll, eintr_recv, eintr_send;
static volatile sig_atomic_t stop;

__attribute__((noipa, noinline, used)) uint64_t svc_handle(uint64_t x)
{
	atomic_fetch_add_explicit(&calls_v1, 1, memory_order_relaxed);
	return svc_mix(x) ^ 1;
}

__attribute__((noipa, noinline, used)) uint64_t svc_handle_v2(uint64_t x)
{
	atomic_fetch_add_explicit(&calls_v2, 1, memory_order_relaxed);
	return svc_mix(x) ^ 2;
}

struct conn {
	int fd;
	size_t have;
	unsigned char buf[4096];
};

struct worker {
	pthread_t t;
	int ep;
};

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int send_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) {
			eintr_send++;
			continue;
		}
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { fd, POLLOUT, 0 };
			if (poll(&pfd, 1, 1000) < 0 && errno == EINTR)
				eintr_send++;
			continue;
		}
		if (w <= 0)
			return -1;
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Read what is there and answer every complete request; -1 when the connection is done. */
static int serve(struct conn *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
		if (r < 0 && errno == EINTR) {
			eintr_recv++;
			continue;
		}
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0)
			return -1;
		c->have += (size_t)r;
		size_t n = c->have / sizeof(struct svc_msg), done = n * sizeof(struct svc_msg);
		struct svc_msg out[sizeof(c->buf) / sizeof(struct svc_msg)];
		for (size_t i = 0; i < n; i++) {
			struct svc_msg m;
			memcpy(&m, c->buf + i * sizeof(m), sizeof(m));
			out[i].seq = m.seq;
			out[i].val = svc_handle(m.val);
		}
		if (n && send_all(c->fd, out, done) < 0)
			return -1;
		requests += n;
		memmove(c->buf, c->buf + done, c->have - done);
		c->have -= done;
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[64];

	for (;;) {
		int n = epoll_wait(w->ep, ev, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				eintr_epoll++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (serve(c) < 0) {
				if (ev[i].events & EPOLLERR)
					conn_errors++;
				epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c);
			}
		}
	}
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return;
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

int main(int argc, char **argv)
{
	const char *ready = NULL, *status = NULL;
	int nthreads = 8, one = 1, ls;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	sigset_t set, old;
	char text[512];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--threads"))
			nthreads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ready"))
			ready = argv[i + 1];
		else if (!strcmp(argv[i], "--status"))
			status = argv[i + 1];
	}
	if (nthreads < 1 || !ready) {
		fprintf(stderr, "usage: svcd --threads T --ready FILE [--status FILE]\n");
		return 2;
	}
	/* Only the acceptor takes SIGTERM/SIGINT, and only inside ppoll. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 128) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen)) {
		perror("svcd: listen");
		return 1;
	}
	struct worker *w = calloc(nthreads, sizeof(*w));
	for (int i = 0; i < nthreads; i++) {
		w[i].ep = epoll_create1(EPOLL_CLOEXEC);
		if (w[i].ep < 0 || pthread_create(&w[i].t, NULL, work, &w[i])) {
			perror("svcd: worker");
			return 1;
		}
	}
	snprintf(text, sizeof(text), "%d\n", ntohs(a.sin_port));
	write_file(ready, text);

	struct pollfd pfd = { ls, POLLIN, 0 };
	sigset_t run_mask = old;
	sigdelset(&run_mask, SIGTERM);
	sigdelset(&run_mask, SIGINT);
	for (int next = 0; !stop;) {
		if (ppoll(&pfd, 1, NULL, &run_mask) < 0)
			continue;	/* the stop signal (or a stop): checked above */
		int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		c->fd = fd;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(w[next].ep, EPOLL_CTL_ADD, fd, &ev);
		next = (next + 1) % nthreads;
	}
	snprintf(text, sizeof(text), "requests %lu\neintr_epoll_wait %lu\neintr_recv %lu\n"
		 "eintr_send %lu\nconn_errors %lu\ncalls_v1 %lu\ncalls_v2 %lu\n",
		 (unsigned long)requests, (unsigned long)eintr_epoll, (unsigned long)eintr_recv,
		 (unsigned long)eintr_send, (unsigned long)conn_errors, (unsigned long)calls_v1,
		 (unsigned long)calls_v2);
	if (status)
		write_file(status, text);
	return 0;
}
