/* loadc: closed-loop load client of the bench service (bench/svcd.c), loopback only.
 *
 *   loadc --port P [--conns 4] [--seconds 10] [--t0-ns T0 --slice-ms MS]
 *
 * Each connection sends one request, waits for its answer, times it, checks it, and sends the
 * next, for the whole duration. A request fails when the connection errors or closes, when the
 * answer takes more than 1 s, or when it is not an answer svc_handle or svc_handle_v2 would
 * give; the connection is then reopened. Prints one line of JSON: requests, failed, rps,
 * p50_us, p99_us, p999_us, max_us, v1, v2 (answers from each version).
 *
 * With --slice-ms, the run starts at T0 (CLOCK_MONOTONIC ns) and is cut in slices of MS;
 * requests are classified by the slice they start in, even slices "quiet", odd ones "patched"
 * (the harness patches during the odd ones), and one JSON object per class is printed:
 * {"quiet":{...},"patched":{...}}. Interleaving the two keeps a noisy machine's background
 * load the same for both.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "svc.h"

struct stats {
	uint64_t *lat;		/* ns per request */
	size_t n, cap;
	unsigned long failed, v1, v2;
	unsigned long f_timeout, f_error, f_eof, f_answer, f_connect;	/* failed, by kind */
};

struct client {
	pthread_t t;
	int id;
	struct stats cls[2];	/* [0]: all (or quiet slices), [1]: patched slices */
};

static int port;
static uint64_t t0_ns, t_end, slice_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int dial(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { 1, 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request and its answer; 0, or -1 for a failure (the connection is then unusable). */
static int roundtrip(struct client *c, struct stats *st, int fd, uint64_t seq)
{
	struct svc_msg q = { seq, seq * 0x9e3779b97f4a7c15ull + (uint64_t)c->id }, r;
	size_t got = 0;

	if (send(fd, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q)) {
		st->f_error++;
		return -1;
	}
	while (got < sizeof(r)) {
		ssize_t n = recv(fd, (char *)&r + got, sizeof(r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			st->f_timeout++;	/* no answer within 1 s */
		else if (n < 0)
			st->f_error++;
		else if (n == 0)
			st->f_eof++;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	uint64_t m = svc_mix(q.val);
	if (r.seq != seq || (r.val != (m ^ 1) && r.val != (m ^ 2))) {
		st->f_answer++;
		return -2;
	}
	if (r.val == (m ^ 1))
		st->v1++;
	else
		st->v2++;
	return 0;
}

static void *run(void *arg)
{
	struct client *c = arg;
	uint64_t seq = 1;
	int fd = -1;

	fd = dial();
	struct timespec start = { (time_t)(t0_ns / 1000000000u), (long)(t0_ns % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &start, NULL) == EINTR)
		;	/* connected: every client starts at T0 */
	while (now_ns() < t_end) {
		uint64_t t0 = now_ns();
		struct stats *st = &c->cls[slice_ns && (t0 - t0_ns) / slice_ns % 2];
		if (fd < 0 && (fd = dial()) < 0) {
			st->failed++;
			st->f_connect++;
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		int ret = roundtrip(c, st, fd, seq++);
		uint64_t t1 = now_ns();
		if (ret) {
			st->failed++;
			if (ret == -1) {
				close(fd);
				fd = -1;
			}
			continue;
		}
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 65536;
			st->lat = realloc(st->lat, st->cap * sizeof(*st->lat));
			if (!st->lat)
				abort();
		}
		st->lat[st->n++] = t1 - t0;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)n);
	return (double)v[i < n ? i : n - 1] / 1e3;
}

/* Merge class @k of every client and print its JSON object; @seconds: time it covered. */
static void report(struct client *c, int nconns, int k, double seconds)
{
	size_t total = 0, at = 0;
	unsigned long failed = 0, v1 = 0, v2 = 0, fk[5] = { 0 };

	for (int i = 0; i < nconns; i++) {
		const struct stats *st = &c[i].cls[k];
		total += st->n;
		failed += st->failed;
		v1 += st->v1;
		v2 += st->v2;
		fk[0] += st->f_timeout;
		fk[1] += st->f_error;
		fk[2] += st->f_eof;
		fk[3] += st->f_answer;
		fk[4] += st->f_connect;
	}
	uint64_t *all = malloc((total + 1) * sizeof(*all));
	for (int i = 0; i < nconns; i++) {
		memcpy(all + at, c[i].cls[k].lat, c[i].cls[k].n * sizeof(*all));
		at += c[i].cls[k].n;
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	printf("{\"conns\":%d,\"seconds\":%.3f,\"requests\":%zu,\"failed\":%lu,\"rps\":%.1f,"
	       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"v1\":%lu,"
	       "\"v2\":%lu,\"failed_timeout\":%lu,\"failed_error\":%lu,\"failed_eof\":%lu,"
	       "\"failed_answer\":%lu,\"failed_connect\":%lu}", nconns, seconds, total, failed,
	       (double)total / seconds, pct(all, total, 0.50), pct(all, total, 0.99),
	       pct(all, total, 0.999), total ? (double)all[total - 1] / 1e3 : 0, v1, v2, fk[0], fk[1],
	       fk[2], fk[3], fk[4]);
	free(all);
}

int main(int argc, char **argv)
{
	int nconns = 4;
	double seconds = 10, slice_ms = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--conns"))
			nconns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--t0-ns"))
			t0_ns = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--slice-ms"))
			slice_ms = atof(argv[i + 1]);
	}
	if (port <= 0 || nconns < 1 || seconds <= 0 || slice_ms < 0) {
		fprintf(stderr, "usage: loadc --port P [--conns N] [--seconds S] "
			"[--t0-ns T0 --slice-ms MS]\n");
		return 2;
	}
	if (!t0_ns)
		t0_ns = now_ns();
	slice_ns = (uint64_t)(slice_ms * 1e6);
	t_end = t0_ns + (uint64_t)(seconds * 1e9);
	struct client *c = calloc(nconns, sizeof(*c));
	for (int i = 0; i < nconns; i++) {
		c[i].id = i;
		pthread_create(&c[i].t, NULL, run, &c[i]);
	}
	for (int i = 0; i < nconns; i++)
		pthread_join(c[i].t, NULL);
	double elapsed = (double)(now_ns() - t0_ns) / 1e9;
	if (!slice_ns) {
		report(c, nconns, 0, elapsed);
	} else {
		/* Time covered by each class: whole slices, and the last partial one. */
		double per[2] = { 0, 0 }, sl = slice_ms / 1e3;
		for (int k = 0; k * sl < seconds; k++)
			per[k % 2] += (k + 1) * sl <= seconds ? sl : seconds - k * sl;
		printf("{\"quiet\":");
		report(c, nconns, 0, per[0]);
		printf(",\"patched\":");
		report(c, nconns, 1, per[1]);
		printf("}");
	}
	printf("\n");
	return 0;
}
