/* Shared plumbing of the test daemons; see common.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct common_opts opt;
counter_t wrong;
_Atomic int common_stop_flag;

static struct timespec start_ts;
static atomic_int started_threads;

#define MAX_KEYS 96
static struct {
	const char *key;
	counter_t *value;
	unsigned long (*fn)(void);
} keys[MAX_KEYS];
static int nkeys;

void die(const char *fmt, ...)
{
	va_list ap;
	char buf[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	if (write(2, buf, n) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

static void on_stop_signal(int sig)
{
	(void)sig;
	atomic_store(&common_stop_flag, 1);	/* lock-free: async-signal-safe */
}

void common_request_stop(void)
{
	atomic_store(&common_stop_flag, 1);
}

void ts_add_ns(struct timespec *ts, long ns)
{
	ts->tv_nsec += ns;
	while (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
}

unsigned long uptime_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (unsigned long)((now.tv_sec - start_ts.tv_sec) * 1000L +
			       (now.tv_nsec - start_ts.tv_nsec) / 1000000L);
}

void sleep_ms(long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	ts_add_ns(&until, ms * 1000000L);
	while (!common_stopping() &&
	       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}

void nap_ms(long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	ts_add_ns(&until, ms * 1000000L);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}

void status_add(const char *key, counter_t *value)
{
	if (nkeys == MAX_KEYS)
		die("status: too many keys");
	keys[nkeys].key = key;
	keys[nkeys].value = value;
	keys[nkeys].fn = NULL;
	nkeys++;
}

void status_add_fn(const char *key, unsigned long (*fn)(void))
{
	if (nkeys == MAX_KEYS)
		die("status: too many keys");
	keys[nkeys].key = key;
	keys[nkeys].value = NULL;
	keys[nkeys].fn = fn;
	nkeys++;
}

/* Live threads of this process, from /proc/self/status. */
static unsigned long live_threads(void)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	const char *p;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "\nThreads:");
	return p ? strtoul(p + 9, NULL, 10) : 0;
}

/* Write path atomically (path.tmp.TID, then rename). */
static void write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[4096];
	struct stat sb;
	int fd;
	size_t off = 0;

	/* Never rename over something that is not a regular file (--status /dev/null). */
	if (!stat(path, &sb) && !S_ISREG(sb.st_mode))
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)syscall(SYS_gettid));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return;
		}
		off += (size_t)w;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		unlink(tmp);
}

void status_write(void)
{
	char buf[8192];
	size_t len = 0;

	if (!opt.status)
		return;
	len += snprintf(buf + len, sizeof buf - len, "pid %ld\nthreads %lu\nuptime_ms %lu\n",
			(long)getpid(), live_threads(), uptime_ms());
	for (int i = 0; i < nkeys && len < sizeof buf - 64; i++) {
		unsigned long v = keys[i].value ? atomic_load(keys[i].value) : keys[i].fn();
		len += snprintf(buf + len, sizeof buf - len, "%s %lu\n", keys[i].key, v);
	}
	write_atomic(opt.status, buf, len);
}

void common_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int e = pthread_create(t, NULL, fn, arg);

	if (e)
		die("pthread_create: %s", strerror(e));
}

void common_thread_started(void)
{
	atomic_fetch_add(&started_threads, 1);
}

void common_wait_started(int n)
{
	while (atomic_load(&started_threads) < n) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

bool common_join(pthread_t t, int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	ts_add_ns(&until, ms * 1000000L);
	return pthread_timedjoin_np(t, NULL, &until) == 0;
}

void common_run(void)
{
	sigset_t set;
	struct timespec next;

	status_write();
	if (opt.ready) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
		write_atomic(opt.ready, buf, (size_t)n);
	}
	/* Only this thread takes SIGTERM/SIGINT. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!common_stopping()) {
		ts_add_ns(&next, 20 * 1000000L);
		while (!common_stopping() &&
		       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (!common_stopping())
			status_write();
	}
	/* Keep later work (joins, clean-up) free of further stop signals. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void common_exit(void)
{
	status_write();
	fflush(stdout);
	fflush(stderr);
	_exit(0);
}

static void usage_exit(const char *prog, const char *usage, int code)
{
	FILE *f = code ? stderr : stdout;

	fprintf(f,
		"usage: %s [options]\n"
		"  --status FILE     rewrite FILE (key value lines) every 20 ms and at exit\n"
		"  --ready FILE      write the pid to FILE once running\n"
		"  --threads N       worker threads\n"
		"  --nondumpable     prctl(PR_SET_DUMPABLE, 0)\n"
		"%s",
		prog, usage ? usage : "");
	exit(code);
}

enum { OPT_STATUS = 1, OPT_READY, OPT_THREADS, OPT_NONDUMPABLE, OPT_HELP };

void common_init(int argc, char **argv, const struct option *extra,
		 int (*handler)(int val, const char *arg), const char *usage, int default_threads)
{
	static const struct option base[] = {
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "ready", required_argument, NULL, OPT_READY },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "nondumpable", no_argument, NULL, OPT_NONDUMPABLE },
		{ "help", no_argument, NULL, OPT_HELP },
	};
	const int nbase = sizeof base / sizeof base[0];
	struct option all[64];
	int n = 0, c;
	struct sigaction sa;
	sigset_t set;

	clock_gettime(CLOCK_MONOTONIC, &start_ts);
	opt.threads = default_threads;
	for (int i = 0; i < nbase; i++)
		all[n++] = base[i];
	for (int i = 0; extra && extra[i].name && n < 63; i++)
		all[n++] = extra[i];
	memset(&all[n], 0, sizeof all[n]);

	while ((c = getopt_long(argc, argv, "", all, NULL)) != -1) {
		char *end;

		switch (c) {
		case OPT_STATUS:
			opt.status = optarg;
			break;
		case OPT_READY:
			opt.ready = optarg;
			break;
		case OPT_THREADS:
			opt.threads = (int)strtol(optarg, &end, 10);
			if (*end || opt.threads < 0 || opt.threads > 4096) {
				fprintf(stderr, "%s: bad --threads %s\n", argv[0], optarg);
				exit(2);
			}
			break;
		case OPT_NONDUMPABLE:
			opt.nondumpable = true;
			break;
		case OPT_HELP:
			usage_exit(argv[0], usage, 0);
			break;
		default:
			if (c >= 256 && handler && handler(c, optarg) == 0)
				break;
			if (c >= 256)
				fprintf(stderr, "%s: bad value for an option: %s\n", argv[0],
					optarg ? optarg : "");
			usage_exit(argv[0], usage, 2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument %s\n", argv[0], argv[optind]);
		usage_exit(argv[0], usage, 2);
	}
	if (opt.nondumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("prctl(PR_SET_DUMPABLE): %s", strerror(errno));

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* Blocked here, so in every thread created later; common_run unblocks it in this one. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	status_add("calls_compute", &calls_compute);
	status_add("calls_compute_v2", &calls_compute_v2);
	status_add("wrong", &wrong);
}

/* The hot loop: direct calls to compute, every result checked, no system call. */
void *compute_worker(void *arg)
{
	int x = (int)(intptr_t)arg * 4096;

	common_thread_started();
	while (!common_stopping()) {
		for (int k = 0; k < 256; k++) {
			int r = compute(x);
			check_result(x, r);
			x = (x + 1) & 0xfffff;
		}
	}
	return NULL;
}

int start_compute_workers(pthread_t **out)
{
	pthread_t *t = calloc(opt.threads ? opt.threads : 1, sizeof *t);

	if (!t)
		die("out of memory");
	for (int i = 0; i < opt.threads; i++)
		common_thread_create(&t[i], compute_worker, (void *)(intptr_t)i);
	*out = t;
	return opt.threads;
}

void join_workers(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		common_join(t[i], 2000);
}
