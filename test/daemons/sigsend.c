/* sigsend PID COUNT RATE_PER_SEC: sigqueue SIGRTMIN+1 to PID with values 1..COUNT, at most
 * RATE_PER_SEC per second (0: as fast as possible), retrying on EAGAIN (queue full).
 * Prints the number sent; exits 0 when all were sent, 1 otherwise (e.g. PID gone). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void ts_add_ns(struct timespec *ts, long long ns)
{
	ts->tv_sec += ns / 1000000000LL;
	ts->tv_nsec += ns % 1000000000LL;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
}

int main(int argc, char **argv)
{
	char *e1, *e2, *e3;
	long pid, n, rate, sent = 0;
	struct timespec start, due;

	if (argc != 4) {
		fprintf(stderr, "usage: sigsend PID COUNT RATE_PER_SEC\n");
		return 2;
	}
	pid = strtol(argv[1], &e1, 10);
	n = strtol(argv[2], &e2, 10);
	rate = strtol(argv[3], &e3, 10);
	if (*e1 || *e2 || *e3 || pid <= 0 || n < 0 || n > 0x7fffffff || rate < 0) {
		fprintf(stderr, "sigsend: bad arguments\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 1; i <= n; i++) {
		union sigval v = { .sival_int = (int)i };

		if (rate > 0) {
			due = start;
			ts_add_ns(&due, (long long)(i - 1) * 1000000000LL / rate);
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
				;
		}
		while (sigqueue((pid_t)pid, SIGRTMIN + 1, v) < 0) {
			struct timespec pause = { 0, 100000 };

			if (errno != EAGAIN) {
				fprintf(stderr, "sigsend: sigqueue %ld: %s\n", pid, strerror(errno));
				printf("%ld\n", sent);
				return 1;
			}
			nanosleep(&pause, NULL);
		}
		sent++;
	}
	printf("%ld\n", sent);
	return 0;
}
