/* benchd: the gap daemon of `make bench`. T workers call 1000 functions f0000..f0999 (each
 * with a twin g0000..g0999 to be redirected to, as test/daemons/manyd has) and timestamp every
 * loop iteration; the largest gap between two iterations of a window is what a thread felt of
 * a patch (bench/shm.h has the window protocol).
 *
 *   benchd --threads T --shm FILE [--duty BURST_US:SLEEP_US [--hot K]]
 *
 * One iteration calls f0000 (so the N=1 site is hot) and 7 of f0001..f0999 in turn (so every
 * site of a 1000-site batch is run), checking every result. Default: the workers never block
 * (CPU-bound, every one must be interrupted by a sync). --duty: each worker runs BURST_US of
 * iterations then sleeps SLEEP_US (a gap across a sleep is not counted), so the CPUs are not
 * saturated and a gap is a stop, not a wait for a CPU. --hot K: the first K workers never
 * sleep (a thread always busy, as in a request loop under load): whatever T is, some worker
 * is running when the tool stops it, so every patch shows what a running thread felt.
 * never_called and never_called_g are called by nobody: the --safe row patches one to the
 * other (no thread is ever inside). The main thread only waits for SIGTERM/SIGINT (blocked in
 * the kernel) and copies the call counters to the shared page every 10 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "shm.h"

static _Atomic unsigned long calls_f, calls_g, wrong;
static _Atomic int stopping;
static struct bench_shm *shm;
static long burst_ns, sleep_ns;
static unsigned int hot;	/* workers 0..hot-1 never sleep */

static inline void count(_Atomic unsigned long *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* f0ABC(x) = 2x + ABC, g0ABC(x) = 3x + ABC: a caller can tell which ran, and a result that
 * matches neither is counted as wrong. noipa: every caller really calls. */
#define PAIR(a, b, c)								\
	__attribute__((noipa, noinline, used)) int f0##a##b##c(int x)		\
	{ count(&calls_f); return x * 2 + (a * 100 + b * 10 + c); }		\
	__attribute__((noipa, noinline, used)) int g0##a##b##c(int x)		\
	{ count(&calls_g); return x * 3 + (a * 100 + b * 10 + c); }
#define PAIRS10(a, b) PAIR(a, b, 0) PAIR(a, b, 1) PAIR(a, b, 2) PAIR(a, b, 3) PAIR(a, b, 4) \
	PAIR(a, b, 5) PAIR(a, b, 6) PAIR(a, b, 7) PAIR(a, b, 8) PAIR(a, b, 9)
#define PAIRS100(a) PAIRS10(a, 0) PAIRS10(a, 1) PAIRS10(a, 2) PAIRS10(a, 3) PAIRS10(a, 4) \
	PAIRS10(a, 5) PAIRS10(a, 6) PAIRS10(a, 7) PAIRS10(a, 8) PAIRS10(a, 9)
PAIRS100(0) PAIRS100(1) PAIRS100(2) PAIRS100(3) PAIRS100(4)
PAIRS100(5) PAIRS100(6) PAIRS100(7) PAIRS100(8) PAIRS100(9)

/* Never called, by a worker or anyone: what the --safe row of bench/run.c patches
 * (never_called -> never_called_g), so no thread is ever inside it and the check of --safe
 * passes at its first try. Bodies of their own, not f/g's: no identical twin to fold into. */
__attribute__((noipa, noinline, used)) int never_called(int x)
{
	count(&calls_f);
	return x * 5 + 7;
}

__attribute__((noipa, noinline, used)) int never_called_g(int x)
{
	count(&calls_g);
	return x * 7 + 5;
}

#define REF10(a, b) f0##a##b##0, f0##a##b##1, f0##a##b##2, f0##a##b##3, f0##a##b##4, \
	f0##a##b##5, f0##a##b##6, f0##a##b##7, f0##a##b##8, f0##a##b##9,
#define REF100(a) REF10(a, 0) REF10(a, 1) REF10(a, 2) REF10(a, 3) REF10(a, 4) \
	REF10(a, 5) REF10(a, 6) REF10(a, 7) REF10(a, 8) REF10(a, 9)
static int (*const fns[1000])(int) = {
	REF100(0) REF100(1) REF100(2) REF100(3) REF100(4)
	REF100(5) REF100(6) REF100(7) REF100(8) REF100(9)
};

static inline void call_checked(int i, int x)
{
	int r = fns[i](x);

	if (r != x * 2 + i && r != x * 3 + i)
		count(&wrong);
}

/* One window slot per worker: reset on a new generation; true when this gap counts. */
static inline bool record(struct bench_slot *s, uint64_t *gen, uint64_t prev, uint64_t now)
{
	uint64_t g = atomic_load_explicit(&shm->gen, memory_order_acquire);
	bool counts = false;

	if (g != *gen) {
		*gen = g;
		atomic_store_explicit(&s->max_gap_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&s->iters, 0, memory_order_relaxed);
		atomic_store_explicit(&s->stop_gaps, 0, memory_order_relaxed);
		atomic_store_explicit(&s->max_stop_gap_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&s->max_off_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&s->gen_seen, g, memory_order_release);
	} else if (prev < atomic_load_explicit(&shm->end_ns, memory_order_relaxed)) {
		uint64_t gap = now - prev;
		if (gap > atomic_load_explicit(&s->max_gap_ns, memory_order_relaxed))
			atomic_store_explicit(&s->max_gap_ns, gap, memory_order_relaxed);
		atomic_store_explicit(&s->iters, atomic_load_explicit(&s->iters,
				      memory_order_relaxed) + 1, memory_order_relaxed);
		counts = true;
	}
	atomic_store_explicit(&s->last_ns, now, memory_order_release);
	return counts;
}

static inline void store_max(_Atomic uint64_t *p, uint64_t v)
{
	if (v > atomic_load_explicit(p, memory_order_relaxed))
		atomic_store_explicit(p, v, memory_order_relaxed);
}

/* This thread's voluntary context switches and run-queue delay (ns) so far. */
struct probe {
	long nvcsw;
	uint64_t delay_ns;
};

static void probe(int fd, struct probe *p)
{
	struct rusage ru;
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	unsigned long long cpu = 0, delay = 0;

	if (n > 0) {
		buf[n] = 0;
		sscanf(buf, "%llu %llu", &cpu, &delay);
	}
	getrusage(RUSAGE_THREAD, &ru);
	p->nvcsw = ru.ru_nvcsw;
	p->delay_ns = delay;
}

/* Sleep @ns between bursts, flagged in the slot so the harness does not wait for this worker. */
static void nap(struct bench_slot *s, long ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	atomic_store_explicit(&s->asleep, 1, memory_order_release);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	atomic_store_explicit(&s->asleep, 0, memory_order_release);
}

static void *worker(void *arg)
{
	unsigned int id = (unsigned int)(uintptr_t)arg;
	struct bench_slot *s = &shm->slot[id];
	int x = (int)id * 4096, j = 1 + (int)(id * 37 % 999);
	int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	struct probe base, now_p;

	probe(fd, &base);
	atomic_fetch_add(&shm->started, 1);
	if (sleep_ns && id >= hot) {
		/* A phase of its own: workers started together would burst together. */
		nap(s, (long)((uint64_t)id * 2654435761u % 1000) * (sleep_ns / 1000));
		probe(fd, &base);
	}
	/* No window yet: the first iteration resets the slot for the current one. */
	uint64_t gen = UINT64_MAX, prev = bench_now_ns(), burst_end = prev + burst_ns;
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		call_checked(0, x);
		for (int k = 0; k < 7; k++) {
			call_checked(j, x);
			j = j == 999 ? 1 : j + 1;
		}
		x = (x + 1) & 0xfffff;
		uint64_t now = bench_now_ns();
		bool counts = record(s, &gen, prev, now);
		if (now - prev > BENCH_PROBE_NS) {
			/* A stop is a voluntary switch: the burst makes no system call. */
			probe(fd, &now_p);
			if (counts && now_p.nvcsw != base.nvcsw) {
				uint64_t gap = now - prev, waited = now_p.delay_ns - base.delay_ns;
				atomic_store_explicit(&s->stop_gaps, atomic_load_explicit(&s->stop_gaps,
						      memory_order_relaxed) + 1, memory_order_relaxed);
				store_max(&s->max_stop_gap_ns, gap);
				store_max(&s->max_off_ns, waited < gap ? gap - waited : 0);
			}
			base = now_p;
			now = bench_now_ns();	/* the probe's own time is no gap */
		}
		prev = now;
		if (sleep_ns && id >= hot && now >= burst_end) {
			nap(s, sleep_ns);
			/* A gap across the sleep is not a pause: start counting again after it. */
			probe(fd, &base);
			prev = bench_now_ns();
			atomic_store_explicit(&s->last_ns, prev, memory_order_release);
			burst_end = prev + burst_ns;
		}
	}
	close(fd);
	return NULL;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s --threads T --shm FILE [--duty BURST_US:SLEEP_US [--hot K]]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *shm_path = NULL;
	unsigned int n = 0;
	sigset_t set;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			n = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--shm") && i + 1 < argc)
			shm_path = argv[++i];
		else if (!strcmp(argv[i], "--duty") && i + 1 < argc) {
			long b, s;
			if (sscanf(argv[++i], "%ld:%ld", &b, &s) != 2 || b <= 0 || s <= 0)
				usage(argv[0]);
			burst_ns = b * 1000;
			sleep_ns = s * 1000;
		} else if (!strcmp(argv[i], "--hot") && i + 1 < argc)
			hot = (unsigned int)atoi(argv[++i]);
		else
			usage(argv[0]);
	}
	if (!shm_path || n < 1 || n > BENCH_MAX_THREADS)
		usage(argv[0]);
	fd = open(shm_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror(shm_path);
		return 1;
	}
	shm = mmap(NULL, bench_shm_size(n), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);
	shm->nthreads = n;
	/* Workers inherit the mask: only this thread takes the stop signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t *t = calloc(n, sizeof(*t));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (unsigned int i = 0; i < n; i++) {
		int e = pthread_create(&t[i], &attr, worker, (void *)(uintptr_t)i);
		if (e) {
			fprintf(stderr, "benchd: pthread_create: %s\n", strerror(e));
			return 1;
		}
	}
	for (;;) {
		struct timespec tick = { 0, 10 * 1000000 };
		int sig = sigtimedwait(&set, NULL, &tick);
		atomic_store(&shm->calls_f, atomic_load(&calls_f));
		atomic_store(&shm->calls_g, atomic_load(&calls_g));
		atomic_store(&shm->wrong, atomic_load(&wrong));
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	atomic_store(&stopping, 1);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	atomic_store(&shm->wrong, atomic_load(&wrong));
	return 0;
}
