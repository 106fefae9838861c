/* run: the `make bench` harness. Starts the bench daemons, runs livepatch and the baselines
 * against them, measures, prints one table and writes results.md and results.json.
 *
 *   run --livepatch PATH --bin DIR --out DIR [--runs N] [--threads 1,8,64,256]
 *       [--sites 1,100,1000] [--gdb-runs N] [--svc-seconds S] [--svc-period-ms MS]
 *       [--util CPUS] [--hot-util CPUS] [--burst-us US] [--budget-s S]
 *       [--only matrix,hot,load,service,spin,safe,where,fleet] [--daemons DIR]
 *       [--fleet-procs N] [--fleet-runs N] [--dry-procs N] [--fleet-timeout-s S]
 *       [--fleet-json DIR]
 *
 * For every T (worker threads of benchd, bench/benchd.c) and N (sites in one transaction):
 * livepatch end to end (fork to exit) and its JSON transaction numbers, and the largest gap
 * the daemon's workers saw between two loop iterations while it ran, next to the largest gap
 * in a quiet window of the same length right after. Baselines on the same daemon: gdb writing
 * the same 5 bytes (restored by livepatch --revert, untimed) and bench/floor.c (seize, one
 * interrupt round per thread, exit). For every T again, one hot worker among T-1 mostly idle
 * ones, livepatch and the floor: the daemon-view pause of a running thread. At T=8, --load:
 * a plain patch and a load + patch of bench/patch_benchd.c alternating, then link + write of
 * the ~1 MiB patch bench/gen_bigpatch.py writes. Then the loaded service: bench/svcd.c with 8
 * workers under bench/loadc.c, one quiet window and one window patched and reverted every period.
 * Then --safe at T=64 with no thread inside (never_called, beside the same patch without
 * --safe) and --where at T=256 (beside floor-all), each pair run by run alternately.
 * Then the fleet (multi-process mode): 64 counterd (DIR of --daemons, default BIN/../daemons)
 * with 4 workers each, one patched alone (3 runs) beside all of them with --exe (and with
 * --exe --jobs 64, not a target), and a dry run over 500 bench/sleepd.c; peak RSS and CPU
 * time of every livepatch run from wait4.
 * --only: just the parts named (default: all), for example `--only safe,where`.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "shm.h"

#define MAX_RUNS 32
#define MAX_LIST 8
#define OUT_MAX (1 << 20)

/* Parts of the run (--only): every one by default. */
enum {
	ONLY_MATRIX = 1 << 0,	/* duty rows of every T and N, floor, floor-all, gdb */
	ONLY_HOT = 1 << 1,	/* hot rows: the daemon-view pause */
	ONLY_LOAD = 1 << 2,	/* --load pair at T=8 and the 1 MiB patch */
	ONLY_SERVICE = 1 << 3,	/* svcd under loadc */
	ONLY_SPIN = 1 << 4,	/* saturated rows */
	ONLY_SAFE = 1 << 5,	/* --safe beside no --safe at T=64 */
	ONLY_WHERE = 1 << 6,	/* --where beside floor-all at T=256 */
	ONLY_FLEET = 1 << 7,	/* multi-process: --exe over 64 counterd, --dry-run over 500 */
	ONLY_ALL = (1 << 8) - 1,
};

static const char *const only_names[] = { "matrix", "hot", "load", "service", "spin", "safe",
					  "where", "fleet" };

/* The parts in @m as "safe,where". */
static void only_text(unsigned int m, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t k = 0; k < sizeof(only_names) / sizeof(only_names[0]); k++)
		if (m & (1u << k))
			len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s",
						len ? "," : "", only_names[k]);
}

struct opts {
	const char *lp, *bin, *out, *daemons;
	unsigned int only;
	int runs, gdb_runs, spin_runs;
	int threads[MAX_LIST], nthreads;
	int sites[MAX_LIST], nsites;
	int spin_threads[MAX_LIST], nspin;
	double svc_seconds, budget_s, util, hot_util;
	int svc_period_ms, burst_us;
	/* --only fleet: processes of the rollout, runs of each row, processes of the dry run. */
	int fleet_procs, fleet_runs, dry_procs;
	double fleet_timeout_s;	/* one fleet run longer than this is killed (a failed run) */
	const char *fleet_json;	/* a directory: every fleet run's JSON kept there, or NULL */
};

/* One measured run of a tool. NAN: not measured. */
struct sample {
	double e2e_ms, tx_ms, pause_max_us, pause_med_us, gap_us, quiet_us;
	double syncs, stops, traps, late, parked, stepouts, blocked;
	/* The daemon's view of stopped iterations (bench/shm.h): the largest gap of one, the
	 * time off the run queue in it, how many; and stopped iterations in the quiet window. */
	double stop_gap_us, off_us, stop_gaps, quiet_stop_gaps;
	/* --load rows: the JSON's load[0].link_ms, transaction.load_ms, and their sum. */
	double link_ms, load_ms, linkload_ms;
	/* --safe rows: safe.checks, safe.waited_ms. --where rows: where.threads_total and how
	 * many threads where.threads lists (inside). */
	double safe_checks, safe_wait_ms, where_total, where_inside;
	/* Fleet rows: processes the run reported done (applied, reverted, planned), the sum
	 * of their transaction.total_ms. Every livepatch run: its peak RSS and CPU time
	 * (wait4's rusage of the child). */
	double procs, tx_sum_ms, maxrss_kb, user_ms, sys_ms;
};

struct row {
	char tool[40];
	char load[8];		/* "duty" or "spin": how benchd's workers ran */
	int T, N;
	int nruns, failed;
	char note[256];
	struct sample s[MAX_RUNS];
};

static struct row rows[128];
static int nrows;
static const char *cur_load = "duty";	/* the load of the rows being made */
static double t_start;
static char lp_help[16384];

static double now_ms(void)
{
	return (double)bench_now_ns() / 1e6;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%6.1f s] ", (now_ms() - t_start) / 1e3);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- processes ---------------------------------------------------------------------- */

/*
 * fork + exec @argv with stdout to @out_fd (or /dev/null), stderr to /dev/null. @session:
 * in a session of its own, as a service started by an init system is: with autogroup
 * scheduling (on by default) its threads then share the CPUs with the tools as one group,
 * instead of each thread counting as much as the tool.
 */
static pid_t spawn_in(char *const argv[], int out_fd, bool session)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (session)
			setsid();
		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The rusage of the last child run_capture_in waited for (wait4): peak RSS, CPU time. */
static struct rusage last_ru;
/* > 0: run_capture_in kills a child still running after this many ms (the fleet rows). */
static double capture_timeout_ms;

/* Run @argv to its end; its stdout in @out; wall time from before fork to after wait. */
static int run_capture_in(char *const argv[], char *out, size_t cap, double *wall_ms, bool session)
{
	int p[2], status = 0;
	size_t len = 0;
	bool killed = false;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	double t0 = now_ms();
	pid_t pid = spawn_in(argv, p[1], session);
	close(p[1]);
	for (;;) {
		if (capture_timeout_ms > 0 && !killed) {
			struct pollfd pf = { .fd = p[0], .events = POLLIN };
			double left = t0 + capture_timeout_ms - now_ms();
			int ready = left > 0 ? poll(&pf, 1, (int)left + 1) : 0;
			if (ready < 0)
				continue;
			if (ready == 0) {
				kill(pid, SIGKILL);	/* its output ends with it */
				killed = true;
			}
		}
		ssize_t n = read(p[0], out + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			len = 0;	/* only the end matters; never happens with --json */
	}
	out[len] = 0;
	close(p[0]);
	while (wait4(pid, &status, 0, &last_ru) < 0 && errno == EINTR)
		;
	if (wall_ms)
		*wall_ms = now_ms() - t0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_capture(char *const argv[], char *out, size_t cap, double *wall_ms)
{
	return run_capture_in(argv, out, cap, wall_ms, false);
}

/* The number after "key": in a JSON text (the first one), or NAN. */
static double jnum(const char *json, const char *key)
{
	char pat[96];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if (!(p = strstr(json, pat)))
		return NAN;
	p += strlen(pat);
	if (*p == '"')
		p++;
	char *end;
	double v = strtod(p, &end);
	return end == p ? NAN : v;
}

static bool jstr(const char *json, const char *key, char *out, size_t cap)
{
	char pat[96];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (!(p = strstr(json, pat)))
		return false;
	p += strlen(pat);
	if (!(e = strchr(p, '"')))
		return false;
	size_t n = (size_t)(e - p) < cap - 1 ? (size_t)(e - p) : cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return true;
}

/* ---- the gap daemon ----------------------------------------------------------------- */

struct daemon {
	pid_t pid;
	int T;
	bool spin;
	struct bench_shm *shm;
	char dir[64], shm_path[96];
	/* The function of the N=1 patch and its G; NULL: f0000 -> g0000. */
	const char *f1, *g1;
};

enum load { LOAD_DUTY, LOAD_SPIN, LOAD_HOT };

/*
 * duty: every worker runs bursts of burst_us and sleeps in between so that all of them
 * together want util CPUs (with util 1, T=1 is one thread that never sleeps); the CPUs are not
 * saturated and a gap is a stop, not a wait for a CPU. spin: every worker always runs.
 * hot: one worker always runs (so a running thread is stopped in every run, whatever T),
 * the T-1 others run bursts wanting hot_util CPUs together: a busy thread among idle ones.
 */
static int daemon_start(const struct opts *o, struct daemon *d, int T, enum load load)
{
	char bin[512], threads[16], duty[64];
	bool spin = load == LOAD_SPIN, hot = load == LOAD_HOT;
	double sleep_us = hot ? o->burst_us * ((T - 1) / o->hot_util - 1) :
			  o->burst_us * (T / o->util - 1);
	int fd;

	memset(d, 0, sizeof(*d));
	d->T = T;
	d->spin = spin;
	snprintf(d->dir, sizeof(d->dir), "/tmp/lp-bench.XXXXXX");
	if (!mkdtemp(d->dir))
		return -1;
	snprintf(d->shm_path, sizeof(d->shm_path), "%s/shm", d->dir);
	fd = open(d->shm_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)bench_shm_size(T)))
		return -1;
	d->shm = mmap(NULL, bench_shm_size(T), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (d->shm == MAP_FAILED)
		return -1;
	atomic_store(&d->shm->end_ns, BENCH_OPEN);
	snprintf(bin, sizeof(bin), "%s/benchd", o->bin);
	snprintf(threads, sizeof(threads), "%d", T);
	snprintf(duty, sizeof(duty), "%d:%.0f", o->burst_us, sleep_us);
	bool duty_on = !spin && sleep_us >= 1;
	char *argv[] = { bin, "--threads", threads, "--shm", d->shm_path,
			 "--duty", duty, "--hot", "1", NULL };
	if (!duty_on)
		argv[5] = NULL;
	else if (!hot)
		argv[7] = NULL;
	d->pid = spawn_in(argv, -1, true);
	double deadline = now_ms() + 10000;
	while (atomic_load(&d->shm->started) < (unsigned)T && now_ms() < deadline)
		sleep_ms(10);
	if (atomic_load(&d->shm->started) < (unsigned)T)
		return -1;
	sleep_ms(100);	/* let every worker run a while */
	return 0;
}

/* Stop it; returns its wrong-result count, or -1 when it died or misbehaved. */
static long daemon_stop(struct daemon *d)
{
	int status = 0;
	long wrong;

	kill(d->pid, SIGTERM);
	waitpid(d->pid, &status, 0);
	wrong = (long)atomic_load(&d->shm->wrong);
	munmap(d->shm, bench_shm_size(d->T));
	DIR *dir = opendir(d->dir);	/* the shared file and the plan files */
	for (struct dirent *e; dir && (e = readdir(dir));) {
		char path[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
	rmdir(d->dir);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return wrong;
}

static bool daemon_alive(const struct daemon *d)
{
	int status;

	return waitpid(d->pid, &status, WNOHANG) == 0;
}

/* A new window: every worker resets its slot and says so (bounded wait). */
static int window_open(struct daemon *d)
{
	uint64_t g = atomic_load(&d->shm->gen) + 1;

	atomic_store(&d->shm->end_ns, BENCH_OPEN);
	atomic_store(&d->shm->gen, g);
	for (double deadline = now_ms() + 20000; now_ms() < deadline;) {
		int k = 0;
		while (k < d->T && (atomic_load(&d->shm->slot[k].gen_seen) == g ||
				    atomic_load(&d->shm->slot[k].asleep)))
			k++;
		if (k == d->T)
			return 0;
		sleep_ms(0.5);
	}
	return -1;
}

struct gaps {
	double max_us, stop_gap_us, off_us, stop_gaps;
};

/* Close the window now; wait until every worker ran past it; the largest gaps (us). */
static struct gaps window_close(struct daemon *d)
{
	uint64_t end = bench_now_ns(), gen = atomic_load(&d->shm->gen);
	struct gaps g = { 0, 0, 0, 0 };

	atomic_store(&d->shm->end_ns, end);
	for (double deadline = now_ms() + 20000; now_ms() < deadline;) {
		int k = 0;
		while (k < d->T && (atomic_load(&d->shm->slot[k].last_ns) >= end ||
				    atomic_load(&d->shm->slot[k].asleep)))
			k++;
		if (k == d->T)
			break;
		sleep_ms(0.5);
	}
	for (int k = 0; k < d->T; k++) {
		const struct bench_slot *s = &d->shm->slot[k];
		if (atomic_load(&s->gen_seen) != gen)
			continue;	/* asleep through the window: nothing of it here */
		g.max_us = fmax(g.max_us, (double)atomic_load(&s->max_gap_ns) / 1e3);
		g.stop_gap_us = fmax(g.stop_gap_us, (double)atomic_load(&s->max_stop_gap_ns) / 1e3);
		g.off_us = fmax(g.off_us, (double)atomic_load(&s->max_off_ns) / 1e3);
		g.stop_gaps += (double)atomic_load(&s->stop_gaps);
	}
	return g;
}

static void close_into(struct daemon *d, struct sample *s)
{
	struct gaps g = window_close(d);

	s->gap_us = g.max_us;
	s->stop_gap_us = g.stop_gaps ? g.stop_gap_us : NAN;
	s->off_us = g.stop_gaps ? g.off_us : NAN;
	s->stop_gaps = g.stop_gaps;
}

/* A window of @ms in which nothing is done to the daemon. */
static void quiet_into(struct daemon *d, double ms, struct sample *s)
{
	if (window_open(d))
		return;
	sleep_ms(ms);
	struct gaps g = window_close(d);
	s->quiet_us = g.max_us;
	s->quiet_stop_gaps = g.stop_gaps;
}

/* ---- rows and statistics ------------------------------------------------------------ */

static struct row *row_new(const char *tool, int T, int N)
{
	struct row *r = &rows[nrows++];

	memset(r, 0, sizeof(*r));
	snprintf(r->tool, sizeof(r->tool), "%s", tool);
	snprintf(r->load, sizeof(r->load), "%s", cur_load);
	r->T = T;
	r->N = N;
	return r;
}

static struct row *row_find(const char *load, const char *tool, int T, int N)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].load, load) && !strcmp(rows[i].tool, tool) && rows[i].T == T &&
		    rows[i].N == N)
			return &rows[i];
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* min, median, max of one field over a row's runs (NANs skipped); false when none. */
static bool stat3(const struct row *r, size_t off, double out[3])
{
	double v[MAX_RUNS];
	int n = 0;

	for (int i = 0; r && i < r->nruns; i++) {
		double x = *(const double *)((const char *)&r->s[i] + off);
		if (!isnan(x))
			v[n++] = x;
	}
	if (!n) {
		out[0] = out[1] = out[2] = NAN;
		return false;
	}
	qsort(v, n, sizeof(v[0]), cmp_double);
	out[0] = v[0];
	out[1] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	out[2] = v[n - 1];
	return true;
}

#define F(field) offsetof(struct sample, field)

static double med(const struct row *r, size_t off)
{
	double v[3];

	stat3(r, off, v);
	return v[1];
}

static struct sample blank(void)
{
	struct sample s;
	double *p = (double *)&s;

	for (size_t i = 0; i < sizeof(s) / sizeof(double); i++)
		p[i] = NAN;
	return s;
}

/* ---- the tools ---------------------------------------------------------------------- */

static bool lp_has(const char *opt)
{
	return strstr(lp_help, opt) != NULL;
}

static void fill_from_json(struct sample *s, const char *j)
{
	s->tx_ms = jnum(j, "total_ms");
	s->pause_max_us = jnum(j, "pause_max_us");
	s->pause_med_us = jnum(j, "pause_median_us");
	s->syncs = jnum(j, "syncs");
	s->stops = jnum(j, "thread_stops");
	s->traps = jnum(j, "traps_emulated");
	s->late = jnum(j, "traps_late");
	s->parked = jnum(j, "traps_parked");
	s->stepouts = jnum(j, "stepouts");
	s->blocked = jnum(j, "blocked_left_alone");
	const char *safe = strstr(j, "\"safe\":{");
	if (safe) {
		s->safe_checks = jnum(safe, "checks");
		s->safe_wait_ms = jnum(safe, "waited_ms");
	}
}

/* argv of a livepatch patch (N == 1: -f/-t, f0000 -> g0000 unless the daemon names another
 * pair; else --plan FILE) or revert. */
static int lp_argv(const struct opts *o, const struct daemon *d, int N, bool revert,
		   const char *plan, char *pid, char **argv)
{
	int n = 0;

	snprintf(pid, 16, "%d", d->pid);
	argv[n++] = (char *)o->lp;
	argv[n++] = "--pid";
	argv[n++] = pid;
	if (N == 1 && !revert) {
		argv[n++] = "--func";
		argv[n++] = d->f1 ? (char *)d->f1 : "f0000";
		argv[n++] = "--target";
		argv[n++] = d->g1 ? (char *)d->g1 : "g0000";
	} else if (N == 1) {
		argv[n++] = "--revert";
		argv[n++] = d->f1 ? (char *)d->f1 : "f0000";
	} else if (!revert) {
		argv[n++] = "--plan";
		argv[n++] = (char *)plan;
	} else if (lp_has("--revert-all")) {
		argv[n++] = "--revert-all";
	} else {
		return -1;	/* no batch revert: the caller restarts the daemon */
	}
	argv[n++] = "--json";
	argv[n] = NULL;
	return 0;
}

static int write_plan(const struct daemon *d, int N, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/plan.%d", d->dir, N);
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, "# bench: f0000..f%04d -> g0000..g%04d\n", N - 1, N - 1);
	for (int i = 0; i < N; i++)
		fprintf(f, "f%04d g%04d\n", i, i);
	return fclose(f);
}

static char out[OUT_MAX];
static char last_load[16384];	/* the "load" array of the latest measured --load, from its JSON */

/*
 * Undo a patch: --revert f0000, or --revert-all for a batch (a fresh daemon when livepatch
 * has no batch revert). A revert rolled back (a sync timeout) is tried again, three times.
 */
static int undo_batch(const struct opts *o, struct daemon *d, int N, char *note, size_t cap)
{
	char pid[16], *argv[16];
	int rc = 0;

	if (N > 1 && lp_argv(o, d, N, true, NULL, pid, argv) < 0) {
		int T = d->T;
		long wrong = daemon_stop(d);
		if (wrong != 0)
			snprintf(note, cap, "daemon reported %ld wrong results or died", wrong);
		return daemon_start(o, d, T, d->spin);
	}
	for (int i = 0; i < 3; i++) {
		lp_argv(o, d, N, true, NULL, pid, argv);
		rc = run_capture(argv, out, sizeof(out), NULL);
		if (rc != 6)
			break;
		size_t len = strlen(note);
		snprintf(note + len, cap - len, "%srevert rolled back (retried)", len ? "; " : "");
	}
	if (rc) {
		snprintf(note, cap, "revert exit %d: %.200s", rc, out);
		return -1;
	}
	return 0;
}

/*
 * One run of the patch @argv (f0000, or a batch of N) in a window of the daemon: its JSON
 * numbers into the row's next sample, then the revert (untimed) and a quiet window as long.
 * @load: the patch loads one object, which must really be mapped ("loaded").
 * 1 measured, 0 failed (noted on the row), -1 the daemon is gone or not reset: stop the row.
 */
static int measure(const struct opts *o, struct daemon *d, struct row *r, char **argv, int N,
		   bool load)
{
	struct sample *s = &r->s[r->nruns];

	*s = blank();
	if (window_open(d)) {
		snprintf(r->note, sizeof(r->note), "window did not open");
		return -1;
	}
	double t0 = now_ms();
	int rc = run_capture(argv, out, sizeof(out), &s->e2e_ms);
	double len = now_ms() - t0;
	close_into(d, s);
	char status[32] = "", loaded[32] = "";
	const char *l = strstr(out, "\"load\":[");
	jstr(out, "status", status, sizeof(status));
	if (l)
		jstr(l, "status", loaded, sizeof(loaded));
	if (rc || strcmp(status, "applied") || (load && strcmp(loaded, "loaded"))) {
		r->failed++;
		snprintf(r->note, sizeof(r->note), "exit %d, status '%s'%s%s%s: %.160s", rc, status,
			 load ? ", load '" : "", load ? loaded : "", load ? "'" : "",
			 strstr(out, "\"error\"") ? strstr(out, "\"error\"") : out);
		if (!daemon_alive(d))
			return -1;
		return undo_batch(o, d, N, r->note, sizeof(r->note)) ? -1 : 0;
	}
	fill_from_json(s, out);
	if (load) {
		s->link_ms = jnum(l, "link_ms");
		s->load_ms = jnum(out, "load_ms");
		s->linkload_ms = s->link_ms + s->load_ms;
		snprintf(last_load, sizeof(last_load), "%s", l);	/* the revert reuses out */
	}
	if (undo_batch(o, d, N, r->note, sizeof(r->note)))
		return -1;
	quiet_into(d, len, s);
	r->nruns++;
	return 1;
}

static void run_livepatch(const struct opts *o, struct daemon *d, int N, int runs)
{
	struct row *r = row_new("livepatch", d->T, N);
	char pid[16], plan[128], *argv[16];

	if (N > 1 && !lp_has("--plan")) {
		snprintf(r->note, sizeof(r->note), "pending: livepatch has no --plan yet");
		return;
	}
	if (N > 1 && write_plan(d, N, plan, sizeof(plan))) {
		snprintf(r->note, sizeof(r->note), "cannot write the plan file");
		return;
	}
	for (int i = 0; i < runs; i++) {
		lp_argv(o, d, N, false, plan, pid, argv);
		if (measure(o, d, r, argv, N, false) < 0)
			break;
	}
}

/* The site of f0000 and the bytes livepatch would write there, from its dry run. */
static int site_of(const struct opts *o, const struct daemon *d, char *addr, char *new_bytes,
		   size_t cap)
{
	char pid[16], *argv[16];

	lp_argv(o, d, 1, false, NULL, pid, argv);
	argv[7] = "--dry-run";
	argv[8] = "--json";
	argv[9] = NULL;
	if (run_capture(argv, out, sizeof(out), NULL))
		return -1;
	const char *sites = strstr(out, "\"sites\"");
	if (!sites || !jstr(sites, "address", addr, cap) || !jstr(sites, "new_bytes", new_bytes, cap))
		return -1;
	return 0;
}

static void run_gdb(const struct opts *o, struct daemon *d, int runs)
{
	struct row *r = row_new("gdb", d->T, 1);
	char addr[64], bytes[64], set[256], pid[16], *argv[16];
	unsigned int b[5];

	if (access("/usr/bin/gdb", X_OK)) {
		snprintf(r->note, sizeof(r->note), "gdb is not installed (apt-get install gdb)");
		return;
	}
	if (site_of(o, d, addr, bytes, sizeof(addr)) ||
	    sscanf(bytes, "%x %x %x %x %x", &b[0], &b[1], &b[2], &b[3], &b[4]) != 5) {
		snprintf(r->note, sizeof(r->note), "no site from the dry run");
		return;
	}
	snprintf(set, sizeof(set), "set {unsigned char[5]}%s = {0x%02x,0x%02x,0x%02x,0x%02x,0x%02x}",
		 addr, b[0], b[1], b[2], b[3], b[4]);
	snprintf(pid, sizeof(pid), "%d", d->pid);
	char *gdb[] = { "/usr/bin/gdb", "-p", pid, "-batch", "-nx", "-iex",
			"set debuginfod enabled off", "-ex", set, NULL };
	for (int i = 0; i < runs; i++) {
		struct sample *s = &r->s[r->nruns];
		*s = blank();
		if (window_open(d))
			break;
		double t0 = now_ms();
		int rc = run_capture(gdb, out, sizeof(out), &s->e2e_ms);
		double len = now_ms() - t0;
		close_into(d, s);
		/* gdb wrote the jump livepatch would: livepatch --revert recognizes and undoes it. */
		lp_argv(o, d, 1, true, NULL, pid, argv);
		int rv = run_capture(argv, out, sizeof(out), NULL);
		char status[32] = "";
		jstr(out, "status", status, sizeof(status));
		if (rc || rv || strcmp(status, "reverted")) {
			r->failed++;
			snprintf(r->note, sizeof(r->note), "gdb exit %d; revert exit %d status '%s'",
				 rc, rv, status);
			if (!daemon_alive(d))
				break;
			continue;
		}
		quiet_into(d, len, s);
		r->nruns++;
	}
}

static void run_floor(const struct opts *o, struct daemon *d, int runs, bool all)
{
	struct row *r = row_new(all ? "floor-all" : "floor", d->T, 0);
	char bin[512], pid[16];

	snprintf(bin, sizeof(bin), "%s/floor", o->bin);
	snprintf(pid, sizeof(pid), "%d", d->pid);
	char *argv[] = { bin, pid, all ? "--all" : NULL, NULL };
	for (int i = 0; i < runs; i++) {
		struct sample *s = &r->s[r->nruns];
		*s = blank();
		if (window_open(d))
			break;
		double t0 = now_ms();
		int rc = run_capture(argv, out, sizeof(out), &s->e2e_ms);
		double len = now_ms() - t0;
		close_into(d, s);
		if (rc) {
			r->failed++;
			snprintf(r->note, sizeof(r->note), "floor exit %d", rc);
			continue;
		}
		s->tx_ms = jnum(out, "total_ms");
		s->pause_max_us = jnum(out, "rtt_max_us");
		s->pause_med_us = jnum(out, "rtt_median_us");
		s->stops = jnum(out, "rounds");
		quiet_into(d, len, s);
		r->nruns++;
	}
}

/* ---- the loaded service ------------------------------------------------------------- */

struct svc_result {
	char quiet[768], patched[768], status[512], note[256], slowest[4096];
	int patches, reverts, tx_failed, slices;
	double tx_ms_max, pause_max_us, e2e_med_ms, slice_ms;
	bool ran;
};

static struct svc_result svc;

/* Copy the object value of "key" (braces balanced; no brace inside strings here) into @buf. */
static void json_object(const char *json, const char *key, char *buf, size_t cap)
{
	char pat[64];
	const char *p;
	int depth = 0;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":{", key);
	snprintf(buf, cap, "null");
	if (!(p = strstr(json, pat)))
		return;
	for (p += strlen(pat) - 1; *p && n < cap - 1; p++) {
		buf[n++] = *p;
		depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
		if (!depth)
			break;
	}
	buf[n] = 0;
}

/* Cut "{"quiet":{...},"patched":{...}}" into its two objects. */
static void split_classes(const char *j)
{
	const char *q = strstr(j, "\"quiet\":"), *p = strstr(j, "\"patched\":");

	if (!q || !p)
		return;
	q += 8;
	p += 10;
	snprintf(svc.quiet, sizeof(svc.quiet), "%.*s", (int)(strchr(q, '}') - q + 1), q);
	snprintf(svc.patched, sizeof(svc.patched), "%.*s", (int)(strchr(p, '}') - p + 1), p);
}

/*
 * svcd with 8 workers under loadc (4 connections) for 2 x svc_seconds, cut in slices of
 * 1 s: quiet in the even slices, patched and reverted every svc_period_ms in the odd ones.
 * Interleaved so that a noisy machine's background load weighs on both alike.
 */
static void run_service(const struct opts *o)
{
	char dir[64] = "/tmp/lp-bench-svc.XXXXXX", ready[128], status[128], bin[512], port[16];
	char lbin[512], secs[32], pid[16], t0s[32], slice[32];
	int p[2];

	if (!mkdtemp(dir))
		return;
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(status, sizeof(status), "%s/status", dir);
	snprintf(bin, sizeof(bin), "%s/svcd", o->bin);
	snprintf(lbin, sizeof(lbin), "%s/loadc", o->bin);
	char *sargv[] = { bin, "--threads", "8", "--ready", ready, "--status", status, NULL };
	pid_t spid = spawn_in(sargv, -1, true);
	FILE *f = NULL;
	for (int i = 0; i < 500 && !f; i++) {
		sleep_ms(10);
		f = fopen(ready, "r");
	}
	if (!f || !fgets(port, sizeof(port), f)) {
		snprintf(svc.note, sizeof(svc.note), "svcd did not start");
		kill(spid, SIGKILL);
		return;
	}
	fclose(f);
	port[strcspn(port, "\n")] = 0;
	snprintf(pid, sizeof(pid), "%d", spid);
	svc.ran = true;

	char *warm[] = { lbin, "--port", port, "--conns", "4", "--seconds", "1", NULL };
	run_capture_in(warm, out, sizeof(out), NULL, true);

	svc.slice_ms = 1000;
	svc.slices = (int)(2 * o->svc_seconds * 1000 / svc.slice_ms + 0.5);
	double t0 = now_ms() + 300, end = t0 + svc.slices * svc.slice_ms;
	snprintf(secs, sizeof(secs), "%g", svc.slices * svc.slice_ms / 1e3);
	snprintf(t0s, sizeof(t0s), "%.0f", t0 * 1e6);
	snprintf(slice, sizeof(slice), "%g", svc.slice_ms);
	char *load[] = { lbin, "--port", port, "--conns", "4", "--seconds", secs, "--t0-ns", t0s,
			 "--slice-ms", slice, NULL };
	msg("service: %s s in %d slices of %g ms, odd slices patched and reverted every %d ms",
	    secs, svc.slices, svc.slice_ms, o->svc_period_ms);
	if (pipe2(p, O_CLOEXEC))
		return;
	pid_t lpid = spawn_in(load, p[1], true);
	close(p[1]);
	char *patch[] = { (char *)o->lp, "--pid", pid, "--func", "svc_handle", "--target",
			  "svc_handle_v2", "--json", NULL };
	char *revert[] = { (char *)o->lp, "--pid", pid, "--revert", "svc_handle", "--json", NULL };
	double e2e[4096];
	int ne2e = 0;
	bool patched = false;
	for (int k = 1; k < svc.slices; k += 2) {
		double s0 = t0 + k * svc.slice_ms, s1 = s0 + svc.slice_ms;
		/* The last transaction must end inside the slice: stop a period before its end. */
		for (double next = s0; next + o->svc_period_ms <= s1; next += o->svc_period_ms) {
			if (next > now_ms())
				sleep_ms(next - now_ms());
			double wall;
			int rc = run_capture(patched ? revert : patch, out, sizeof(out), &wall);
			char st[32] = "";
			jstr(out, "status", st, sizeof(st));
			if (rc || strcmp(st, patched ? "reverted" : "applied")) {
				svc.tx_failed++;
				snprintf(svc.note, sizeof(svc.note), "exit %d status '%s': %.180s", rc, st,
					 out);
				continue;
			}
			patched ? svc.reverts++ : svc.patches++;
			patched = !patched;
			if (jnum(out, "total_ms") > svc.tx_ms_max) {
				json_object(out, "transaction", svc.slowest, sizeof(svc.slowest));
			}
			svc.tx_ms_max = fmax(svc.tx_ms_max, jnum(out, "total_ms"));
			svc.pause_max_us = fmax(svc.pause_max_us, jnum(out, "pause_max_us"));
			if (ne2e < 4096)
				e2e[ne2e++] = wall;
		}
	}
	if (end > now_ms())
		sleep_ms(end - now_ms());
	char res[2048];
	size_t len = 0;
	for (ssize_t n; (n = read(p[0], res + len, sizeof(res) - 1 - len)) > 0;)
		len += (size_t)n;
	res[len] = 0;
	split_classes(res);
	close(p[0]);
	waitpid(lpid, NULL, 0);
	if (patched)
		run_capture(revert, out, sizeof(out), NULL);
	qsort(e2e, ne2e, sizeof(e2e[0]), cmp_double);
	svc.e2e_med_ms = ne2e ? e2e[ne2e / 2] : NAN;
	kill(spid, SIGTERM);
	waitpid(spid, NULL, 0);
	if ((f = fopen(status, "r"))) {
		size_t n = fread(svc.status, 1, sizeof(svc.status) - 1, f);
		svc.status[n] = 0;
		fclose(f);
	}
	unlink(ready);
	unlink(status);
	rmdir(dir);
}

/* ---- loading a patch object (--load) ------------------------------------------------ */

#define LOAD_T 8	/* the targets for --load are at T=8 */
#define SAFE_T 64	/* --safe overhead with nobody inside: T=64 */
#define WHERE_T 256	/* --where: T=256 */
#define FLEET_T 4	/* worker threads of each counterd of the fleet rollout */
#define SAFE_BASE_ROW "livepatch cold"
#define SAFE_ROW "livepatch cold --safe"
#define WHERE_BASE_ROW "floor-all beside where"
#define WHERE_ROW "livepatch --where"

/* A patch object run.c loads: its bytes, read once, and what was measured of it. */
struct patch_obj {
	const char *stem;	/* patch_benchd, patch_big: build/bench/STEM.o */
	const char *target;	/* G, a function of it */
	char path[512];
	char *bytes;
	size_t len;
	long text;		/* bytes of its executable sections (the section headers) */
	char relocs[256];	/* "relocations" of livepatch's JSON, as it counted them */
	double image;		/* load[0].size: the image mapped in the process */
};

static struct patch_obj p_small = { .stem = "patch_benchd", .target = "g0000_loaded" },
			p_big = { .stem = "patch_big", .target = "g0000_big" };

/* Bytes of SHF_EXECINSTR sections of a relocatable ELF64 in memory, or -1. */
static long text_bytes(const char *b, size_t len)
{
	const Elf64_Ehdr *eh = (const void *)b;
	long sum = 0;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shoff > len || (len - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum)
		return -1;
	for (unsigned int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const void *)(b + eh->e_shoff + i * sizeof(*sh));
		if (sh->sh_type == SHT_PROGBITS && (sh->sh_flags & SHF_EXECINSTR))
			sum += (long)sh->sh_size;
	}
	return sum;
}

static int obj_read(const struct opts *o, struct patch_obj *p)
{
	struct stat st;
	int fd;

	snprintf(p->path, sizeof(p->path), "%s/%s.o", o->bin, p->stem);
	if ((fd = open(p->path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) || !(p->bytes = malloc((size_t)st.st_size + 1)) ||
	    read(fd, p->bytes, (size_t)st.st_size) != st.st_size) {
		close(fd);
		return -1;
	}
	close(fd);
	p->len = (size_t)st.st_size;
	p->text = text_bytes(p->bytes, p->len);
	p->image = NAN;
	return 0;
}

/*
 * A new file for one --load: the object with the run number after its end, so its sha256
 * is new and livepatch maps it again (the ELF reader ignores bytes past its sections).
 */
static int fresh_copy(const struct daemon *d, const struct patch_obj *p, int run, char *path,
		      size_t cap)
{
	char tail[16];
	int n = snprintf(tail, sizeof(tail), "%d", run), fd;

	snprintf(path, cap, "%s/%s-%d.o", d->dir, p->stem, run);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	bool ok = write(fd, p->bytes, p->len) == (ssize_t)p->len && write(fd, tail, n) == n;
	return close(fd) || !ok ? -1 : 0;
}

/* One measured --load run of a fresh copy of @p, F = f0000, G = @p's target. */
static int measure_load(const struct opts *o, struct daemon *d, struct row *r,
			struct patch_obj *p, int run)
{
	char path[256], pid[16];
	int ret;

	if (fresh_copy(d, p, run, path, sizeof(path))) {
		snprintf(r->note, sizeof(r->note), "cannot write a copy of %.200s", p->path);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d", d->pid);
	char *argv[] = { (char *)o->lp, "--pid", pid, "--load", path, "--func", "f0000",
			 "--target", (char *)p->target, "--json", NULL };
	ret = measure(o, d, r, argv, 1, true);
	if (ret > 0) {
		p->image = jnum(last_load, "size");
		json_object(last_load, "relocations", p->relocs, sizeof(p->relocs));
	}
	unlink(path);
	return ret;
}

/* ---- report ------------------------------------------------------------------------- */

static void fmt3(char *buf, size_t cap, const struct row *r, size_t off, int prec)
{
	double v[3];

	if (!stat3(r, off, v))
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.*f / %.*f / %.*f", prec, v[0], prec, v[1], prec, v[2]);
}

static void fmt1(char *buf, size_t cap, double v, int prec)
{
	if (isnan(v))
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.*f", prec, v);
}

/* "median / worst" over the runs of a per-run maximum. */
static void fmt_mw(char *buf, size_t cap, const struct row *r, size_t off)
{
	double v[3];

	if (!stat3(r, off, v))
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.0f / %.0f", v[1], v[2]);
}

static void print_table(FILE *f)
{
	fprintf(f, "| tool | load | T | N | runs | end to end ms (min / med / max) | transaction ms "
		"(min / med / max) | tracer pause max / median us | daemon pause: stopped iteration, "
		"max us (median run / worst run) | of it off the run queue, us | stopped iterations | "
		"daemon max gap, us: during / quiet | syncs | stops | traps (emulated+late) | notes |\n");
	fprintf(f, "|---|---|--:|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		char e2e[64], tx[64], pm[32], pd[32], gap[32], qu[32], sy[16], st[16], tr[32];
		char n[16], sg[48], off[48], ns[16];
		fmt3(e2e, sizeof(e2e), r, F(e2e_ms), 1);
		fmt3(tx, sizeof(tx), r, F(tx_ms), 2);
		fmt1(pm, sizeof(pm), med(r, F(pause_max_us)), 0);
		fmt1(pd, sizeof(pd), med(r, F(pause_med_us)), 0);
		fmt1(gap, sizeof(gap), med(r, F(gap_us)), 0);
		fmt1(qu, sizeof(qu), med(r, F(quiet_us)), 0);
		fmt1(sy, sizeof(sy), med(r, F(syncs)), 0);
		fmt1(st, sizeof(st), med(r, F(stops)), 0);
		fmt_mw(sg, sizeof(sg), r, F(stop_gap_us));
		fmt_mw(off, sizeof(off), r, F(off_us));
		fmt1(ns, sizeof(ns), med(r, F(stop_gaps)), 0);
		double t = med(r, F(traps)) + med(r, F(late));
		fmt1(tr, sizeof(tr), t, 0);
		if (r->N)
			snprintf(n, sizeof(n), "%d", r->N);
		else
			snprintf(n, sizeof(n), "-");
		char note[300];
		if (r->failed)
			snprintf(note, sizeof(note), "%d failed: %s", r->failed, r->note);
		else
			snprintf(note, sizeof(note), "%s", r->note);
		double qs = 0;
		for (int k = 0; k < r->nruns; k++)
			qs += isnan(r->s[k].quiet_stop_gaps) ? 0 : r->s[k].quiet_stop_gaps;
		if (qs > 0) {
			size_t len = strlen(note);
			snprintf(note + len, sizeof(note) - len, "%s%.0f stopped iterations in quiet "
				 "windows", len ? "; " : "", qs);
		}
		fprintf(f, "| %s | %s | %d | %s | %d | %s | %s | %s / %s | %s | %s | %s | %s / %s | %s "
			"| %s | %s | %s |\n", r->tool, r->load, r->T, n, r->nruns, e2e, tx, pm, pd, sg,
			off, ns, gap, qu, sy, st, tr, note);
	}
}

/* The --load rows beside the plain patch they are compared with: what loading cost. */
static void print_loads(FILE *f)
{
	const struct row *r[3] = { row_find("duty", "livepatch plain", LOAD_T, 1),
				   row_find("duty", "livepatch --load", LOAD_T, 1),
				   row_find("duty", "livepatch --load 1MiB", LOAD_T, 1) };
	const struct patch_obj *p[3] = { NULL, &p_small, &p_big };

	if (!r[0] && !r[1] && !r[2])
		return;
	fprintf(f, "\n| --load (benchd T=%d, duty; f0000 -> G) | runs | end to end ms (min / med / max) "
		"| link ms (min / med / max) | load ms (min / med / max) | link + load ms (min / med "
		"/ max) | G and its object |\n|---|--:|---|---|---|---|---|\n", LOAD_T);
	for (int i = 0; i < 3; i++) {
		char e2e[64], lk[64], ld[64], sum[64], what[512];
		if (!r[i])
			continue;
		fmt3(e2e, sizeof(e2e), r[i], F(e2e_ms), 1);
		fmt3(lk, sizeof(lk), r[i], F(link_ms), 2);
		fmt3(ld, sizeof(ld), r[i], F(load_ms), 2);
		fmt3(sum, sizeof(sum), r[i], F(linkload_ms), 2);
		if (!p[i])
			snprintf(what, sizeof(what), "g0000, already in benchd");
		else
			snprintf(what, sizeof(what), "%s in a new copy of %s.o each run: .text %ld bytes "
				 "(section headers), image %.0f bytes, relocations %s", p[i]->target,
				 p[i]->stem, p[i]->text, p[i]->image, p[i]->relocs[0] ? p[i]->relocs : "-");
		fprintf(f, "| %s | %d | %s | %s | %s | %s | %s%s%s |\n", r[i]->tool, r[i]->nruns, e2e,
			lk, ld, sum, what, r[i]->note[0] ? "; " : "", r[i]->note);
	}
}

/* min / max of a field over a row's runs, as "a" or "a..b"; "-" when none. */
static void fmt_range(char *buf, size_t cap, const struct row *r, size_t off)
{
	double v[3];

	if (!stat3(r, off, v))
		snprintf(buf, cap, "-");
	else if (v[0] == v[2])
		snprintf(buf, cap, "%.0f", v[0]);
	else
		snprintf(buf, cap, "%.0f..%.0f", v[0], v[2]);
}

/* The --safe pair and the --where pair, each beside its baseline, run by run alternately. */
static void print_safe_where(FILE *f)
{
	const struct row *r[4] = { row_find("duty", SAFE_BASE_ROW, SAFE_T, 1),
				   row_find("duty", SAFE_ROW, SAFE_T, 1),
				   row_find("duty", WHERE_BASE_ROW, WHERE_T, 0),
				   row_find("duty", WHERE_ROW, WHERE_T, 0) };
	const char *what[4] = {
		"never_called -> never_called_g (nothing ever calls it), reverted untimed",
		"the same with --safe",
		"bench/floor --all: seize, interrupt every thread at once, exit",
		"--where f0000 --json (the function every iteration calls)" };

	if (!r[0] && !r[1] && !r[2] && !r[3])
		return;
	fprintf(f, "\n| --safe, --where (duty load; each pair run by run alternately) | T | runs | end to "
		"end ms (min / med / max) | transaction ms (min / med / max) | safe.checks (min..max) "
		"| safe.waited_ms (med) | where.threads_total (min..max) | threads inside (med) | "
		"what |\n|---|--:|--:|---|---|--:|--:|--:|--:|---|\n");
	for (int i = 0; i < 4; i++) {
		char e2e[64], tx[64], ck[32], wt[32], tt[32], in[32];
		if (!r[i])
			continue;
		fmt3(e2e, sizeof(e2e), r[i], F(e2e_ms), 1);
		fmt3(tx, sizeof(tx), r[i], F(tx_ms), 2);
		fmt_range(ck, sizeof(ck), r[i], F(safe_checks));
		fmt1(wt, sizeof(wt), med(r[i], F(safe_wait_ms)), 2);
		fmt_range(tt, sizeof(tt), r[i], F(where_total));
		fmt1(in, sizeof(in), med(r[i], F(where_inside)), 0);
		char note[300];
		if (r[i]->failed)
			snprintf(note, sizeof(note), "; %d failed: %s", r[i]->failed, r[i]->note);
		else
			snprintf(note, sizeof(note), "%s%s", r[i]->note[0] ? "; " : "", r[i]->note);
		fprintf(f, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s%s |\n", r[i]->tool,
			r[i]->T, r[i]->nruns, e2e, tx, ck, wt, tt, in, what[i], note);
	}
}

static void print_service(FILE *f)
{
	if (!svc.ran) {
		fprintf(f, "\nLoaded service: not run (%s)\n", svc.note);
		return;
	}
	fprintf(f, "\n| service (svcd T=8, loadc 4 connections; %d slices of %.0f ms, alternating) "
		"| requests/s | requests | failed | p50 us "
		"| p99 us | p99.9 us | max us | answers v1 / v2 |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
		svc.slices, svc.slice_ms);
	const char *w[2] = { svc.quiet, svc.patched };
	const char *name[2] = { "quiet slices", "patching slices" };
	for (int i = 0; i < 2; i++)
		fprintf(f, "| %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f / %.0f |\n",
			name[i], jnum(w[i], "rps"), jnum(w[i], "requests"), jnum(w[i], "failed"),
			jnum(w[i], "p50_us"), jnum(w[i], "p99_us"), jnum(w[i], "p999_us"),
			jnum(w[i], "max_us"), jnum(w[i], "v1"), jnum(w[i], "v2"));
	char st[512];
	snprintf(st, sizeof(st), "%s", svc.status);
	for (char *c = st; *c; c++)
		if (*c == '\n')
			*c = ' ';
	fprintf(f, "\nFailed requests by kind (quiet / patching): no answer within 1 s %.0f / %.0f, "
		"connection error %.0f / %.0f, connection closed %.0f / %.0f, wrong answer %.0f / %.0f, "
		"connect failed %.0f / %.0f.\n", jnum(svc.quiet, "failed_timeout"),
		jnum(svc.patched, "failed_timeout"), jnum(svc.quiet, "failed_error"),
		jnum(svc.patched, "failed_error"), jnum(svc.quiet, "failed_eof"),
		jnum(svc.patched, "failed_eof"), jnum(svc.quiet, "failed_answer"),
		jnum(svc.patched, "failed_answer"), jnum(svc.quiet, "failed_connect"),
		jnum(svc.patched, "failed_connect"));
	fprintf(f, "\nDuring the patching slices: %d patches + %d reverts applied, %d failed "
		"transactions; livepatch end to end median %.1f ms, transaction max %.2f ms, tracer "
		"pause max %.0f us. svcd at exit: %s%s%s\n", svc.patches, svc.reverts, svc.tx_failed,
		svc.e2e_med_ms, svc.tx_ms_max, svc.pause_max_us, st, svc.note[0] ? " note: " : "",
		svc.note);
}

struct target {
	char text[512];
	int met;	/* 1 met, 0 missed, -1 not measured */
};

static struct target targets[32];
static int ntargets;

static void target(int met, const char *fmt, ...)
{
	va_list ap;
	struct target *t = &targets[ntargets++];

	t->met = met;
	va_start(ap, fmt);
	vsnprintf(t->text, sizeof(t->text), fmt, ap);
	va_end(ap);
}

/*
 * 5: --load. Load + patch end to end <= 2x a plain patch to a G already mapped, and the
 * link + write of about 1 MiB of patch text <= 20 ms, both at T=8.
 */
static void evaluate_load(void)
{
	const struct row *pl = row_find("duty", "livepatch plain", LOAD_T, 1),
		  *ld = row_find("duty", "livepatch --load", LOAD_T, 1),
		  *bg = row_find("duty", "livepatch --load 1MiB", LOAD_T, 1);
	double a = med(pl, F(e2e_ms)), b = med(ld, F(e2e_ms)), v[3];

	if (isnan(a) || isnan(b))
		target(-1, "--load + patch / plain patch end to end at T=%d: not measured%s%s", LOAD_T,
		       ld && ld->note[0] ? ": " : "", ld ? ld->note : "");
	else
		target(b / a <= 2, "--load + patch / plain patch end to end at T=%d: %.1f ms / %.1f ms "
		       "= %.2fx (target <= 2x; medians of %d and %d runs, alternating)", LOAD_T, b, a,
		       b / a, ld->nruns, pl->nruns);
	if (!stat3(bg, F(linkload_ms), v))
		target(-1, "link + write of 1 MiB of patch text at T=%d: not measured%s%s", LOAD_T,
		       bg && bg->note[0] ? ": " : "", bg ? bg->note : "");
	else
		target(v[1] <= 20, "link + write of 1 MiB of patch text (%s.o, .text %ld bytes) at T=%d: "
		       "link_ms + load_ms median %.1f ms (min %.1f, max %.1f; link %.1f ms, load %.1f ms "
		       "medians) (target <= 20 ms)", p_big.stem, p_big.text, LOAD_T, v[1], v[0], v[2],
		       med(bg, F(link_ms)), med(bg, F(load_ms)));
}

/*
 * 6: --safe when no thread is inside costs <= 1 ms of transaction (medians, with minus
 * without, alternating on one daemon at T=64), and passes at its first check.
 * 7: --where at T=256 < 50 ms end to end (median), every thread looked at.
 */
static void evaluate_safe_where(const struct opts *o)
{
	const struct row *pl = row_find("duty", SAFE_BASE_ROW, SAFE_T, 1),
		  *sf = row_find("duty", SAFE_ROW, SAFE_T, 1),
		  *fa = row_find("duty", WHERE_BASE_ROW, WHERE_T, 0),
		  *wh = row_find("duty", WHERE_ROW, WHERE_T, 0);

	if (o->only & ONLY_SAFE) {
		double a = med(pl, F(tx_ms)), b = med(sf, F(tx_ms)), ea = med(pl, F(e2e_ms)),
		       eb = med(sf, F(e2e_ms)), c[3], d[MAX_RUNS];
		int nd = 0;
		/* Run i of one and run i of the other ran side by side (when none failed): their
		 * differences too. */
		for (int i = 0; pl && sf && !pl->failed && !sf->failed && i < pl->nruns &&
		     i < sf->nruns; i++)
			d[nd++] = sf->s[i].tx_ms - pl->s[i].tx_ms;
		qsort(d, nd, sizeof(d[0]), cmp_double);
		double pd = !nd ? NAN : nd % 2 ? d[nd / 2] : (d[nd / 2 - 1] + d[nd / 2]) / 2;
		bool checked = stat3(sf, F(safe_checks), c);
		if (isnan(a) || isnan(b))
			target(-1, "--safe overhead with no thread inside at T=%d: not measured%s%s",
			       SAFE_T, sf && sf->note[0] ? ": " : "", sf ? sf->note : "");
		else
			target(b - a <= 1 && checked && c[0] == 1 && c[2] == 1 && !sf->failed,
			       "--safe overhead with no thread inside at T=%d (never_called -> "
			       "never_called_g): transaction %.2f ms with --safe - %.2f ms without = "
			       "%+.2f ms (target <= 1 ms; medians of %d and %d runs, alternating; median "
			       "of the run-by-run differences %+.2f ms); end to end %.1f ms - %.1f ms = "
			       "%+.1f ms; safe.checks %s%.0f..%.0f (must be 1)%s", SAFE_T, b, a, b - a,
			       sf->nruns, pl->nruns, pd, eb, ea, eb - ea, checked ? "" : "missing ",
			       checked ? c[0] : NAN, checked ? c[2] : NAN,
			       sf->failed ? "; --safe runs failed" : "");
	}
	if (o->only & ONLY_WHERE) {
		double v[3], t[3], base = med(fa, F(e2e_ms));
		if (!stat3(wh, F(e2e_ms), v))
			target(-1, "--where at T=%d: not measured%s%s", WHERE_T,
			       wh && wh->note[0] ? ": " : "", wh ? wh->note : "");
		else {
			bool all = stat3(wh, F(where_total), t) && t[0] == WHERE_T + 1 &&
				   t[2] == WHERE_T + 1;
			target(v[1] < 50 && all && !wh->failed, "--where f0000 at T=%d: end to end "
			       "median %.1f ms (min %.1f, max %.1f; %d runs) (target < 50 ms); "
			       "where.threads_total %.0f..%.0f (must be %d: every thread); floor-all "
			       "beside it %.1f ms = %.1fx%s", WHERE_T, v[1], v[0], v[2], wh->nruns,
			       t[0], t[2], WHERE_T + 1, base, v[1] / base,
			       wh->failed ? "; --where runs failed" : "");
		}
	}
}

/* ---- the fleet rows (multi-process mode, issue 18) ---------------------------------- */

#define FLEET_ONE "fleet one"			/* --pid P, one of the rollout's processes */
#define FLEET_ONE_REV "fleet one --revert"
#define FLEET_ALL "fleet --exe"			/* --exe BIN: every one of them */
#define FLEET_ALL_REV "fleet --exe --revert"
#define FLEET_ALL_J "fleet --exe --jobs=all"	/* --jobs (the processes): the target */
#define FLEET_ALL_J_REV "fleet --exe --jobs=all --revert"
#define FLEET_DRY_ONE "fleet one --dry-run"	/* --pid P --dry-run, one of the sleepers */
#define FLEET_DRY_ALL "fleet --exe --dry-run"
#define FLEET_ONES 3	/* --pid runs per rollout: the cheap baseline, sampled more */

/* The fleet rows beside their baselines: processes, times, per process, memory, CPU. */
static void print_fleet(FILE *f)
{
	static const struct {
		const char *name, *what;
		int T;
		bool multi;
	} k[] = {
		{ FLEET_ONE, "`--pid P -f compute -t compute_v2`, P one of the running counterd (a "
		  "different one each run), the others running beside it", FLEET_T, false },
		{ FLEET_ALL, "`--exe BIN -f compute -t compute_v2`: every counterd started from BIN, "
		  "with the default `--jobs` (the CPUs; not a target)", FLEET_T, true },
		{ FLEET_ALL_J, "the same with `--jobs` = the processes (the target: a transaction "
		  "waits on its threads being scheduled, not on a CPU of livepatch's)", FLEET_T, true },
		{ FLEET_ONE_REV, "`--pid P --revert compute`", FLEET_T, false },
		{ FLEET_ALL_REV, "`--exe BIN --revert compute`", FLEET_T, true },
		{ FLEET_ALL_J_REV, "the same with `--jobs` = the processes", FLEET_T, true },
		{ FLEET_DRY_ONE, "`--pid P -f compute -t compute_v2 --dry-run`, P one of the sleepd",
		  1, false },
		{ FLEET_DRY_ALL, "`--exe BIN -f compute -t compute_v2 --dry-run`: every sleepd", 1,
		  true },
	};
	const size_t n = sizeof(k) / sizeof(k[0]);
	const struct row *r[sizeof(k) / sizeof(k[0])];
	bool any = false;

	for (size_t i = 0; i < n; i++)
		any |= (r[i] = row_find("fleet", k[i].name, k[i].T, 1)) != NULL;
	if (!any)
		return;
	fprintf(f, "\n| fleet (multi-process mode; run by run alternately) | processes "
		"(min..max) | threads each | runs | end to end ms (min / med / max) | per process "
		"ms (med) | transaction.total_ms, summed over the processes (med) | peak RSS KiB "
		"(med) | CPU user + sys ms (med) | what |\n|---|--:|--:|--:|---|--:|--:|--:|--:|---|\n");
	for (size_t i = 0; i < n; i++) {
		char e2e[64], np[32], per[32], tx[32], rss[32], cpu[32], note[300];
		if (!r[i])
			continue;
		fmt3(e2e, sizeof(e2e), r[i], F(e2e_ms), 1);
		fmt_range(np, sizeof(np), r[i], F(procs));
		double procs = med(r[i], F(procs));
		fmt1(per, sizeof(per), med(r[i], F(e2e_ms)) / procs, 2);
		fmt1(tx, sizeof(tx), med(r[i], k[i].multi ? F(tx_sum_ms) : F(tx_ms)), 1);
		fmt1(rss, sizeof(rss), med(r[i], F(maxrss_kb)), 0);
		fmt1(cpu, sizeof(cpu), med(r[i], F(user_ms)) + med(r[i], F(sys_ms)), 1);
		if (r[i]->failed)
			snprintf(note, sizeof(note), "; %d failed: %s", r[i]->failed, r[i]->note);
		else
			snprintf(note, sizeof(note), "%s%s", r[i]->note[0] ? "; " : "", r[i]->note);
		fprintf(f, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s%s |\n", r[i]->tool, np,
			r[i]->T, r[i]->nruns, e2e, per, tx, rss, cpu, k[i].what, note);
	}
}

/*
 * Issue 18. 1: with the 64 counterd (4 workers each) running, the rollout to all of them
 * (--exe --jobs 64) <= 8x one of them patched alone (--pid), end to end, medians, run by
 * run alternately; the same for the revert. The default --jobs (the CPUs) is shown beside:
 * a transaction mostly waits for the target's threads to get a CPU, so two at a time on
 * a busy 2-CPU host is latency-bound. Peak RSS of both beside it. 2: the host-wide dry
 * run over 500 sleeping processes <= 1 s (median).
 */
static void evaluate_fleet(const struct opts *o)
{
	const struct row *one = row_find("fleet", FLEET_ONE, FLEET_T, 1),
		  *all = row_find("fleet", FLEET_ALL, FLEET_T, 1),
		  *one_r = row_find("fleet", FLEET_ONE_REV, FLEET_T, 1),
		  *all_r = row_find("fleet", FLEET_ALL_REV, FLEET_T, 1),
		  *dry1 = row_find("fleet", FLEET_DRY_ONE, 1, 1),
		  *dry = row_find("fleet", FLEET_DRY_ALL, 1, 1);
	const struct row *pair[2][2] = { { one, row_find("fleet", FLEET_ALL_J, FLEET_T, 1) },
					  { one_r, row_find("fleet", FLEET_ALL_J_REV, FLEET_T, 1) } },
		  *jobs[2] = { all, all_r };	/* the default --jobs: shown, not a target */
	const char *verb[2] = { "patch", "revert" };

	for (int k = 0; k < 2; k++) {
		const struct row *a = pair[k][0], *b = pair[k][1];
		double ta = med(a, F(e2e_ms)), tb = med(b, F(e2e_ms)), v[3];
		if (!isnan(ta) && isnan(tb) && b && strstr(b->note, "killed after") &&
		    o->fleet_timeout_s * 1e3 > 8 * ta) {
			/* it did not end within the limit: more than limit / baseline */
			target(0, "fleet %s, %d counterd x %d threads running: --exe --jobs did not end "
			       "within %.0f s, more than %.1fx --pid one alone (%.1f ms, median of %d "
			       "runs) (target <= 8x)", verb[k], o->fleet_procs, FLEET_T,
			       o->fleet_timeout_s, o->fleet_timeout_s * 1e3 / ta, ta, a->nruns);
			continue;
		}
		if (isnan(ta) || isnan(tb)) {
			const struct row *n = b && b->note[0] ? b : a;
			target(-1, "fleet %s of %d processes / one alone: not measured%s%s", verb[k],
			       o->fleet_procs, n && n->note[0] ? ": " : "", n ? n->note : "");
			continue;
		}
		stat3(b, F(e2e_ms), v);
		double ra = med(a, F(maxrss_kb)), rb = med(b, F(maxrss_kb)),
		       tj = med(jobs[k], F(e2e_ms));
		char j[128] = "";
		if (!isnan(tj))
			snprintf(j, sizeof(j), "; not a target: with the default --jobs (the CPUs), "
				 "%.1f ms = %.2fx", tj, tj / ta);
		target(tb / ta <= 8 && !b->failed, "fleet %s, %d counterd x %d threads running: "
		       "--exe --jobs %d %.1f ms (min %.1f, max %.1f) / --pid one alone %.1f ms = %.2fx (target "
		       "<= 8x; medians of %d and %d runs, alternating; %.2f ms per process); peak RSS "
		       "%.0f KiB / %.0f KiB = %.2fx; CPU user+sys %.1f ms / %.1f ms%s%s", verb[k],
		       o->fleet_procs, FLEET_T, o->fleet_procs, tb, v[0], v[2], ta, tb / ta, b->nruns, a->nruns,
		       tb / o->fleet_procs, rb, ra, rb / ra,
		       med(b, F(user_ms)) + med(b, F(sys_ms)), med(a, F(user_ms)) + med(a, F(sys_ms)),
		       j, b->failed ? "; --exe runs failed" : "");
	}
	double v[3];
	if (!stat3(dry, F(e2e_ms), v)) {
		target(-1, "fleet dry run over %d processes: not measured%s%s", o->dry_procs,
		       dry && dry->note[0] ? ": " : "", dry ? dry->note : "");
		return;
	}
	target(v[1] <= 1000 && !dry->failed, "fleet dry run over %d sleeping processes (--exe "
	       "--dry-run): %.1f ms (min %.1f, max %.1f; median of %d runs) (target <= 1000 ms); "
	       "%.3f ms per process; one process alone (--pid --dry-run) %.1f ms; peak RSS %.0f KiB%s",
	       o->dry_procs, v[1], v[0], v[2], dry->nruns, v[1] / o->dry_procs,
	       med(dry1, F(e2e_ms)), med(dry, F(maxrss_kb)),
	       dry->failed ? "; dry runs failed" : "");
}

static void evaluate(const struct opts *o)
{
	/* 1: livepatch at least 100x faster than gdb end to end at T=8 and T=64. */
	for (int T = 8; (o->only & ONLY_MATRIX) && T <= 64; T *= 8) {
		const struct row *g = row_find("duty", "gdb", T, 1),
			  *l = row_find("duty", "livepatch", T, 1);
		double gm = med(g, F(e2e_ms)), lm = med(l, F(e2e_ms)), ratio = gm / lm;
		if (isnan(ratio))
			target(-1, "gdb / livepatch end to end at T=%d: not measured", T);
		else
			target(ratio >= 100, "gdb / livepatch end to end at T=%d: %.0f ms / %.1f ms = "
			       "%.0fx (target >= 100x)", T, gm, lm, ratio);
	}
	/*
	 * 2: the largest pause the daemon saw (a stopped iteration, max over threads; median
	 * over the runs) <= 10x the floor's per-thread round trip (median), and flat in T.
	 * Measured under the hot load: one worker always runs, so every run stops it.
	 */
	double first = NAN, last = NAN;
	int tfirst = 0, tlast = 0;
	for (int i = 0; (o->only & ONLY_HOT) && i < o->nthreads; i++) {
		int T = o->threads[i];
		const struct row *l = row_find("hot", "livepatch", T, 1),
			  *fl = row_find("hot", "floor", T, 0);
		double v[3], w[3];
		stat3(l, F(stop_gap_us), v);
		stat3(l, F(off_us), w);
		double gap = v[1], rtt = med(fl, F(pause_med_us)), fgap = med(fl, F(stop_gap_us));
		double ratio = gap / rtt;
		if (isnan(ratio)) {
			target(-1, "daemon max pause vs floor round trip at T=%d: not measured (no worker "
			       "was stopped in any run)", T);
			continue;
		}
		char fg[64] = "none stopped";
		if (!isnan(fgap))
			snprintf(fg, sizeof(fg), "%.0f us (%.1fx)", fgap, gap / fgap);
		target(ratio <= 10, "daemon max pause at T=%d: %.0f us (worst run %.0f us; off the run "
		       "queue %.0f us) vs floor per-thread round trip (median) %.0f us = %.1fx "
		       "(target <= 10x); the floor's own daemon-view pause: %s", T, gap, v[2], w[1],
		       rtt, ratio, fg);
		if (isnan(first)) {
			first = gap;
			tfirst = T;
		}
		last = gap;
		tlast = T;
	}
	if (!isnan(first) && tlast != tfirst)
		target(last / first <= 2, "daemon max pause flat in T: T=%d %.0f us, T=%d %.0f us = %.1fx "
		       "(target: roughly flat, <= 2x)", tfirst, first, tlast, last, last / first);
	/* 3: a 1000-site transaction within 3x of one site. */
	for (int i = 0; (o->only & ONLY_MATRIX) && i < o->nthreads; i++) {
		int T = o->threads[i];
		const struct row *a = row_find("duty", "livepatch", T, 1),
			  *b = row_find("duty", "livepatch", T, 1000);
		double ta = med(a, F(tx_ms)), tb = med(b, F(tx_ms));
		if (isnan(tb))
			target(-1, "N=1000 / N=1 transaction at T=%d: N=1000 not measured%s%s", T,
			       b && b->note[0] ? ": " : "", b ? b->note : "");
		else
			target(tb / ta <= 3, "N=1000 / N=1 transaction at T=%d: %.2f ms / %.2f ms = %.1fx "
			       "(target <= 3x)", T, tb, ta, tb / ta);
	}
	/* 4: the loaded service. */
	if (svc.ran) {
		double fq = jnum(svc.patched, "failed"), rq = jnum(svc.quiet, "rps"),
		       rp = jnum(svc.patched, "rps"), pq = jnum(svc.quiet, "p999_us"),
		       pp = jnum(svc.patched, "p999_us");
		target(fq == 0 && svc.tx_failed == 0, "service: %.0f failed requests while patching "
		       "(%d failed transactions) (target 0)", fq, svc.tx_failed);
		target(rp >= 0.99 * rq, "service: requests/s patching / quiet = %.0f / %.0f = %.1f%% "
		       "(target >= 99%%)", rp, rq, 100 * rp / rq);
		target(pp <= 2 * pq, "service: p99.9 patching / quiet = %.0f us / %.0f us = %.2fx "
		       "(target <= 2x)", pp, pq, pp / pq);
	} else if (o->only & ONLY_SERVICE) {
		target(-1, "service: not run");
	}
	if (o->only & ONLY_LOAD)
		evaluate_load();
	evaluate_safe_where(o);
	if (o->only & ONLY_FLEET)
		evaluate_fleet(o);
}

static void print_targets(FILE *f)
{
	fprintf(f, "\nTargets:\n");
	for (int i = 0; i < ntargets; i++)
		fprintf(f, "- %s: %s\n", targets[i].met > 0 ? "met" : targets[i].met == 0 ? "MISSED" :
			"not measured", targets[i].text);
}

static void machine(char *buf, size_t cap)
{
	char model[256] = "unknown", line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	snprintf(buf, cap, "CPU: %s; cores: %ld; kernel: %s %s; date: %s", model,
		 sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, date);
}

static void write_md(const struct opts *o, const char *mach, double total_s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/results.md", o->out);
	if (!(f = fopen(path, "w")))
		return;
	fprintf(f, "# livepatch benchmark (`make bench`)\n\n%s\n\n", mach);
	if (o->only != ONLY_ALL) {
		char parts[128];
		only_text(o->only, parts, sizeof(parts));
		fprintf(f, "Parts run: %s (`--only`), not the whole benchmark.\n\n", parts);
	}
	fprintf(f, "T: worker threads of bench/benchd.c, in a session (autogroup) of its own like "
		"a service. load *duty*: each worker runs %d us bursts of iterations and sleeps so "
		"that all T together want %.2g CPUs; the CPUs are not saturated, "
		"so a gap is what the tool did, not a wait for a CPU. load *spin*: every worker always "
		"runs (the CPUs are saturated: every thread must be interrupted, and with T > 2 most "
		"of a gap is waiting for a CPU). load *hot*: one worker never sleeps and the T-1 others "
		"run %d us bursts wanting %.2g CPUs together, so a running thread is stopped in every "
		"run: the daemon-view pause targets are taken from these rows. N: sites in one "
		"transaction (f0000..f(N-1) -> g0000..g(N-1), `--plan`). Times over the runs as min / median / max; the other "
		"columns are medians over the runs. *tracer pause*: livepatch's JSON `pause_max_us` "
		"/ `pause_median_us` (floor: its per-thread round trip, interrupt to PTRACE_CONT). "
		"*daemon gap*: the largest gap between two loop iterations of any worker (within a "
		"burst) while the tool ran, and in a quiet window of the same length right after. "
		"gdb: `gdb -p PID -batch -nx -ex 'set {unsigned char[5]}ADDR = {...}'` writing the "
		"same 5 bytes (undone by `livepatch --revert`, untimed). floor: bench/floor.c, seize "
		"+ one interrupt/wait/continue round per thread + exit (floor-all: every thread "
		"interrupted at once, as one sync).\n\n", o->burst_us, o->util, o->burst_us, o->hot_util);
	if (o->only & (ONLY_SAFE | ONLY_WHERE))
		fprintf(f, "--safe (T=%d, duty): `--func never_called --target never_called_g`, a "
			"function of benchd nothing ever calls, with and without `--safe`, run by run "
			"alternately on one daemon, each reverted untimed; safe.checks from the JSON. "
			"--where (T=%d, duty): `--where f0000 --json` end to end (fork to exit), run by "
			"run alternately with floor-all on one daemon; where.threads_total from the "
			"JSON (benchd has T + 1 threads).\n\n", SAFE_T, WHERE_T);
	if (o->only & ONLY_FLEET)
		fprintf(f, "fleet (multi-process mode): %d copies of test/daemons/counterd with %d "
			"workers each calling compute in a tight loop (the CPUs are saturated), each in "
			"a session of its own, started from a copy of the binary so that `--exe` selects "
			"them and nothing else. Run by run alternately on the same running processes: "
			"one of them alone (`--pid P`, a different one each run) patched "
			"compute -> compute_v2 and reverted, then all of them (`--exe BIN`) patched and "
			"reverted; every run's JSON must count every process applied / reverted. Then "
			"%d copies of bench/sleepd.c (one thread in pause()): one planned alone "
			"(`--pid P --dry-run`) beside all of them (`--exe BIN --dry-run`, every one "
			"planned). Peak RSS and CPU time: wait4's rusage of livepatch.\n\n",
			o->fleet_procs, FLEET_T, o->dry_procs);
	print_table(f);
	print_loads(f);
	print_safe_where(f);
	print_fleet(f);
	if (o->only & ONLY_SERVICE)
		print_service(f);
	print_targets(f);
	fprintf(f, "\nWhole run: %.0f s.\n", total_s);
	fclose(f);
}

static void json_sample(FILE *f, const struct sample *s)
{
	const char *names[] = { "e2e_ms", "tx_ms", "pause_max_us", "pause_median_us", "gap_us",
				"quiet_gap_us", "syncs", "stops", "traps_emulated", "traps_late",
				"traps_parked", "stepouts", "blocked_left_alone", "stop_gap_us",
				"stop_off_runqueue_us", "stop_gaps", "quiet_stop_gaps", "link_ms",
				"load_ms", "link_plus_load_ms", "safe_checks", "safe_waited_ms",
				"where_threads_total", "where_threads_inside", "procs", "tx_sum_ms",
				"maxrss_kb", "user_ms", "sys_ms" };
	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(*s) / sizeof(double),
		       "one name per field of struct sample");
	const double *v = (const double *)s;

	fputc('{', f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (isnan(v[i]))
			fprintf(f, "%s\"%s\":null", i ? "," : "", names[i]);
		else
			fprintf(f, "%s\"%s\":%.3f", i ? "," : "", names[i], v[i]);
	}
	fputc('}', f);
}

static void json_escaped(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void write_json(const struct opts *o, const char *mach, double total_s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/results.json", o->out);
	if (!(f = fopen(path, "w")))
		return;
	fprintf(f, "{\"machine\":");
	json_escaped(f, mach);
	char parts[128];
	only_text(o->only, parts, sizeof(parts));
	fprintf(f, ",\"parts\":\"%s\"", parts);
	fprintf(f, ",\"total_s\":%.1f,\"duty_burst_us\":%d,\"duty_util_cpus\":%.3f,"
		"\"hot_others_util_cpus\":%.3f", total_s, o->burst_us, o->util, o->hot_util);
	fprintf(f, ",\n\"rows\":[\n");
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		fprintf(f, "%s{\"tool\":\"%s\",\"load\":\"%s\",\"T\":%d,\"N\":%d,\"runs\":%d,\"failed\":%d,\"note\":",
			i ? ",\n" : "", r->tool, r->load, r->T, r->N, r->nruns, r->failed);
		json_escaped(f, r->note);
		fprintf(f, ",\"samples\":[");
		for (int k = 0; k < r->nruns; k++) {
			if (k)
				fputc(',', f);
			json_sample(f, &r->s[k]);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "\n],\n\"service\":{\"ran\":%s,\"quiet\":%s,\"patched\":%s,\"patches\":%d,"
		"\"reverts\":%d,\"failed_transactions\":%d,\"tx_ms_max\":%.3f,\"pause_max_us\":%.1f,"
		"\"e2e_median_ms\":%.3f,\"slowest_transaction\":%s,\"svcd_status\":",
		svc.ran ? "true" : "false",
		svc.quiet[0] ? svc.quiet : "null", svc.patched[0] ? svc.patched : "null",
		svc.patches, svc.reverts, svc.tx_failed, svc.tx_ms_max, svc.pause_max_us,
		isnan(svc.e2e_med_ms) ? 0 : svc.e2e_med_ms, svc.slowest[0] ? svc.slowest : "null");
	json_escaped(f, svc.status);
	fprintf(f, ",\"note\":");
	json_escaped(f, svc.note);
	fprintf(f, "},\n\"targets\":[");
	for (int i = 0; i < ntargets; i++) {
		fprintf(f, "%s{\"met\":%s,\"text\":", i ? "," : "",
			targets[i].met > 0 ? "true" : targets[i].met == 0 ? "false" : "null");
		json_escaped(f, targets[i].text);
		fputc('}', f);
	}
	fprintf(f, "]}\n");
	fclose(f);
}

/* ---- main --------------------------------------------------------------------------- */

static int parse_list(const char *s, int *v)
{
	int n = 0;

	for (char *e; *s && n < MAX_LIST; s = *e ? e + 1 : e)
		v[n++] = (int)strtol(s, &e, 10);
	return n;
}

static void usage(void)
{
	fprintf(stderr, "usage: run --livepatch PATH --bin DIR --out DIR [--runs N] [--gdb-runs N]\n"
		"       [--threads 1,8,64,256] [--sites 1,100,1000] [--util CPUS] [--hot-util CPUS]\n"
		"       [--burst-us US] [--spin-threads 8,64,256|-] [--spin-runs N] [--svc-seconds S]\n"
		"       [--svc-period-ms MS] [--budget-s S]\n"
		"       [--only matrix,hot,load,service,spin,safe,where,fleet] [--daemons DIR]\n"
		"       [--fleet-procs N] [--fleet-runs N] [--dry-procs N] [--fleet-timeout-s S]\n"
		"       [--fleet-json DIR]\n");
	exit(2);
}

/* "safe,where" -> ONLY_SAFE | ONLY_WHERE; an unknown name is a usage error. */
static unsigned int parse_only(const char *v)
{
	unsigned int m = 0;

	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ","), k;
		for (k = 0; k < sizeof(only_names) / sizeof(only_names[0]); k++)
			if (strlen(only_names[k]) == n && !strncmp(p, only_names[k], n))
				break;
		if (k == sizeof(only_names) / sizeof(only_names[0])) {
			fprintf(stderr, "run: --only: unknown part '%.*s' (one of matrix, hot, load, "
				"service, spin, safe, where, fleet)\n", (int)n, p);
			exit(2);
		}
		m |= 1u << k;
		p += n;
		if (*p == ',')
			p++;
	}
	return m;
}

/* Runs for this combination: fewer when the time left would not hold the full count. */
static int runs_for(const struct opts *o, int left_combos, double per_run_s)
{
	double left = o->budget_s - (now_ms() - t_start) / 1e3;
	int n = o->runs;

	if (per_run_s > 0 && left_combos > 0) {
		int fit = (int)(left / left_combos / per_run_s);
		if (fit < n)
			n = fit < 3 ? 3 : fit;
	}
	return n;
}

static void note_daemon(struct daemon *d)
{
	long wrong = daemon_stop(d);
	struct row *r = row_find(cur_load, "livepatch", d->T, 1);

	if (wrong && r)
		snprintf(r->note + strlen(r->note), sizeof(r->note) - strlen(r->note),
			 "%sbenchd: %s", r->note[0] ? "; " : "",
			 wrong < 0 ? "died or exited badly" : "wrong results seen");
}

static void warm_up(const struct opts *o, struct daemon *d)
{
	char pid[16], *av[16];

	lp_argv(o, d, 1, false, NULL, pid, av);
	run_capture(av, out, sizeof(out), NULL);
	lp_argv(o, d, 1, true, NULL, pid, av);
	run_capture(av, out, sizeof(out), NULL);
}

/* Start benchd with T workers under @load (its rows are cur_load's) and warm it up; false
 * (and a note on the row) when it did not start. */
static bool daemon_ready(const struct opts *o, struct daemon *d, int T, enum load load)
{
	msg("%s T=%d: starting benchd", cur_load, T);
	if (daemon_start(o, d, T, load)) {
		struct row *r = row_new("livepatch", T, 1);
		snprintf(r->note, sizeof(r->note), "benchd with %d threads did not start", T);
		return false;
	}
	warm_up(o, d);
	return true;
}

/* The matrix: every T and N, duty-cycled workers, with the baselines. */
static void run_matrix(const struct opts *o)
{
	double per_run_s = 0;
	int combos_left = o->nthreads * o->nsites;

	cur_load = "duty";
	for (int i = 0; i < o->nthreads; i++) {
		struct daemon d;
		int T = o->threads[i];
		if (!daemon_ready(o, &d, T, LOAD_DUTY))
			continue;
		for (int k = 0; k < o->nsites; k++) {
			int N = o->sites[k], runs = runs_for(o, combos_left, per_run_s);
			double t0 = now_ms();
			msg("duty T=%d N=%d: livepatch x%d", T, N, runs);
			run_livepatch(o, &d, N, runs);
			struct row *r = &rows[nrows - 1];
			if (r->nruns)
				per_run_s = fmax(per_run_s * 0.5, (now_ms() - t0) / 1e3 / r->nruns);
			combos_left--;
		}
		msg("duty T=%d: floor x%d, floor-all x%d", T, o->runs, o->runs);
		run_floor(o, &d, o->runs, false);
		run_floor(o, &d, o->runs, true);
		msg("duty T=%d: gdb x%d", T, o->gdb_runs);
		run_gdb(o, &d, o->gdb_runs);
		note_daemon(&d);
	}
}

/*
 * One hot worker among T-1 mostly idle ones: every run stops a running thread, so this is
 * where the daemon-view pause is measured at every T (at T=64 under duty load, a worker
 * is rarely mid-burst when its interrupt comes).
 */
static void run_hot(const struct opts *o)
{
	cur_load = "hot";
	for (int i = 0; i < o->nthreads; i++) {
		struct daemon d;
		int T = o->threads[i];
		if (!daemon_ready(o, &d, T, LOAD_HOT))
			continue;
		msg("hot T=%d: livepatch x%d, floor x%d", T, o->runs, o->runs);
		run_livepatch(o, &d, 1, o->runs);
		run_floor(o, &d, o->runs, false);
		note_daemon(&d);
	}
}

/* Saturated: every worker always runnable, one site; the floor with every thread at once. */
static void run_saturated(const struct opts *o)
{
	cur_load = "spin";
	for (int i = 0; i < o->nspin; i++) {
		struct daemon d;
		int T = o->spin_threads[i];
		if ((now_ms() - t_start) / 1e3 > o->budget_s) {
			msg("spin T=%d: skipped, over the time budget", T);
			struct row *r = row_new("livepatch", T, 1);
			snprintf(r->note, sizeof(r->note), "skipped: over the time budget");
			continue;
		}
		if (!daemon_ready(o, &d, T, LOAD_SPIN))
			continue;
		msg("spin T=%d: livepatch x%d, floor-all x%d", T, o->spin_runs, o->spin_runs);
		run_livepatch(o, &d, 1, o->spin_runs);
		run_floor(o, &d, o->spin_runs, true);
		note_daemon(&d);
	}
}

/* Stop benchd; on @r's note when its workers saw a result neither f0000 nor a G gives. */
static void stop_noted(struct daemon *d, struct row *r)
{
	long wrong = daemon_stop(d);
	size_t len = strlen(r->note);

	if (wrong)
		snprintf(r->note + len, sizeof(r->note) - len, "%sbenchd: %s", len ? "; " : "",
			 wrong < 0 ? "died or exited badly" : "wrong results seen");
}

/*
 * The two targets of --load at T=8 (duty load). 1: load + patch end to end within 2x of a
 * plain patch to a G already in the daemon, run by run alternately on one daemon so a
 * noisy machine weighs on both alike. 2: link + write of about 1 MiB of patch text within
 * 20 ms, on a daemon of its own (the 1 MiB images it accumulates do not slow the pair).
 * Every --load maps a new copy: a loaded image stays after its patch is reverted.
 */
static void run_load(const struct opts *o)
{
	struct daemon d;
	char pid[16], *argv[16];

	cur_load = "duty";
	if (obj_read(o, &p_small) || obj_read(o, &p_big)) {
		struct row *r = row_new("livepatch --load", LOAD_T, 1);
		snprintf(r->note, sizeof(r->note), "no %s.o or %s.o in %.150s (make bench-build)",
			 p_small.stem, p_big.stem, o->bin);
		return;
	}
	if (!daemon_ready(o, &d, LOAD_T, LOAD_DUTY))
		return;
	msg("duty T=%d: livepatch plain x%d and --load x%d, alternating", LOAD_T, o->runs, o->runs);
	struct row *plain = row_new("livepatch plain", LOAD_T, 1),
		   *load = row_new("livepatch --load", LOAD_T, 1);
	measure_load(o, &d, load, &p_small, 0);	/* warm-up: the first load, untimed */
	load->nruns = 0;
	load->failed = 0;
	for (int i = 0; i < o->runs; i++) {
		lp_argv(o, &d, 1, false, NULL, pid, argv);
		if (measure(o, &d, plain, argv, 1, false) < 0 ||
		    measure_load(o, &d, load, &p_small, i + 1) < 0)
			break;
	}
	stop_noted(&d, load);
	if (!daemon_ready(o, &d, LOAD_T, LOAD_DUTY))
		return;
	msg("duty T=%d: livepatch --load of %ld bytes of .text x%d", LOAD_T, p_big.text, o->runs);
	struct row *big = row_new("livepatch --load 1MiB", LOAD_T, 1);
	measure_load(o, &d, big, &p_big, 0);
	big->nruns = 0;
	big->failed = 0;
	for (int i = 0; i < o->runs; i++)
		if (measure_load(o, &d, big, &p_big, i + 1) < 0)
			break;
	stop_noted(&d, big);
}

/*
 * --safe when no thread is inside (T=64, duty load): never_called -> never_called_g of
 * benchd, a function nothing ever calls, patched with and without --safe run by run
 * alternately on one daemon, each reverted (untimed, without --safe). Target: the median
 * transaction.total_ms with --safe at most 1 ms above the one without, and safe.checks 1
 * in every --safe run (nobody inside: the first check passes).
 */
static void run_safe(const struct opts *o)
{
	struct daemon d;
	char pid[16], *argv[16];

	cur_load = "duty";
	if (!lp_has("--safe")) {
		struct row *r = row_new(SAFE_ROW, SAFE_T, 1);
		snprintf(r->note, sizeof(r->note), "pending: livepatch has no --safe yet");
		return;
	}
	if (!daemon_ready(o, &d, SAFE_T, LOAD_DUTY))
		return;
	d.f1 = "never_called";
	d.g1 = "never_called_g";
	warm_up(o, &d);	/* the first patch of this pair, untimed */
	msg("duty T=%d: livepatch %s -> %s x%d and the same with --safe x%d, alternating", SAFE_T,
	    d.f1, d.g1, o->runs, o->runs);
	struct row *plain = row_new(SAFE_BASE_ROW, SAFE_T, 1),
		   *safe = row_new(SAFE_ROW, SAFE_T, 1);
	for (int i = 0; i < o->runs; i++) {
		lp_argv(o, &d, 1, false, NULL, pid, argv);
		if (measure(o, &d, plain, argv, 1, false) < 0)
			break;
		lp_argv(o, &d, 1, false, NULL, pid, argv);
		argv[7] = "--safe";	/* before --json */
		argv[8] = "--json";
		argv[9] = NULL;
		if (measure(o, &d, safe, argv, 1, false) < 0)
			break;
	}
	stop_noted(&d, safe);
}

/*
 * --where at T=256 (duty load): `livepatch --pid P --where f0000 --json`, end to end, run by
 * run alternately with floor-all (seize, interrupt every thread at once, exit) on one daemon,
 * the least any tool that stops every thread pays. Target: median end to end < 50 ms, and
 * where.threads_total = T + 1 (every thread of benchd looked at) in every run. f0000 is the
 * function every iteration calls: a worker mid-burst may be inside it.
 */
static void run_where(const struct opts *o)
{
	struct daemon d;
	char pid[16], bin[512];

	cur_load = "duty";
	if (!lp_has("--where")) {
		struct row *r = row_new(WHERE_ROW, WHERE_T, 0);
		snprintf(r->note, sizeof(r->note), "pending: livepatch has no --where yet");
		return;
	}
	if (!daemon_ready(o, &d, WHERE_T, LOAD_DUTY))
		return;
	snprintf(pid, sizeof(pid), "%d", d.pid);
	snprintf(bin, sizeof(bin), "%s/floor", o->bin);
	char *where[] = { (char *)o->lp, "--pid", pid, "--where", "f0000", "--json", NULL };
	char *floor_all[] = { bin, pid, "--all", NULL };
	run_capture(where, out, sizeof(out), NULL);	/* warm-up, untimed */
	msg("duty T=%d: livepatch --where f0000 x%d and floor-all x%d, alternating", WHERE_T,
	    o->runs, o->runs);
	struct row *base = row_new(WHERE_BASE_ROW, WHERE_T, 0),
		   *w = row_new(WHERE_ROW, WHERE_T, 0);
	for (int i = 0; i < o->runs && daemon_alive(&d); i++) {
		for (int k = 0; k < 2; k++) {
			struct row *r = k ? w : base;
			struct sample *s = &r->s[r->nruns];
			*s = blank();
			if (window_open(&d))
				goto out;
			double t0 = now_ms();
			int rc = run_capture(k ? where : floor_all, out, sizeof(out), &s->e2e_ms);
			double len = now_ms() - t0;
			close_into(&d, s);
			const char *wj = k ? strstr(out, "\"where\":{") : NULL;
			if (rc || (k && !wj)) {
				r->failed++;
				snprintf(r->note, sizeof(r->note), "exit %d: %.200s", rc, out);
				continue;
			}
			if (k) {
				s->where_total = jnum(wj, "threads_total");
				/* THREADs listed (those inside), up to the stale list. */
				const char *t = strstr(wj, "\"threads\":["),
					   *e = strstr(wj, "\"stale\":");
				s->where_inside = 0;
				for (const char *p = t; p && (p = strstr(p, "\"tid\":")) &&
				     (!e || p < e); p++)
					s->where_inside++;
				s->tx_ms = jnum(out, "total_ms");	/* if it reports one */
			} else {
				s->tx_ms = jnum(out, "total_ms");
				s->pause_max_us = jnum(out, "rtt_max_us");
				s->pause_med_us = jnum(out, "rtt_median_us");
				s->stops = jnum(out, "rounds");
			}
			quiet_into(&d, len, s);
			r->nruns++;
		}
	}
out:
	stop_noted(&d, w);
}

/* ---- the fleet: many processes of one program --------------------------------------- */

#define FLEET_MAX 2048
#define FLEET_OUT_MAX (16 << 20)	/* one JSON report per process: about 2 KiB each */

struct fleet {
	char dir[64], exe[128];
	/* counterd: a directory per process for its ready and status files (run/N), on a
	 * tmpfs when there is one. */
	char run[64];
	pid_t pid[FLEET_MAX];
	int n;
};

static struct fleet fleet;
static char *fleet_out;
static const char *fleet_json;	/* --fleet-json DIR */

static double tv_ms(struct timeval tv)
{
	return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

/*
 * A directory of its own and in it a copy of @src: a file of its own, so `--exe` selects the
 * processes started from it and nothing else on the machine (the tests' counterd, say).
 */
static int fleet_open(struct fleet *fl, const char *src)
{
	char buf[65536];
	int in, outfd = -1, ret = -1;

	memset(fl, 0, sizeof(*fl));
	snprintf(fl->dir, sizeof(fl->dir), "/tmp/lp-bench-fleet.XXXXXX");
	if (!mkdtemp(fl->dir))
		return -1;
	snprintf(fl->exe, sizeof(fl->exe), "%s/%s", fl->dir, strrchr(src, '/') ?
		 strrchr(src, '/') + 1 : src);
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((outfd = open(fl->exe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755)) >= 0) {
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(outfd, buf, (size_t)n) != n)
				break;
		ret = n == 0 ? 0 : -1;
		if (close(outfd))
			ret = -1;
	}
	close(in);
	return ret;
}

/* Remove the files of @dir and @dir; the "wrong" lines of its status files added to @wrong. */
static void fleet_rmdir(const char *dir, long *wrong)
{
	DIR *d = opendir(dir);

	for (struct dirent *e; d && (e = readdir(d));) {
		char path[512], line[128];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = strcmp(e->d_name, "status") ? NULL : fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "wrong ", 6))
				*wrong += atol(line + 6);
		if (f)
			fclose(f);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Stop every process (SIGTERM, then wait); the sum of the "wrong" lines of their status
 * files (counterd: results neither compute nor compute_v2 gives), or -1 when one exited
 * badly; remove the directories. */
static long fleet_close(struct fleet *fl)
{
	long wrong = 0;
	bool bad = false;

	for (int i = 0; i < fl->n; i++)
		kill(fl->pid[i], SIGTERM);
	for (int i = 0; i < fl->n; i++) {
		int status = 0;
		waitpid(fl->pid[i], &status, 0);
		/* sleepd ends by the signal; counterd exits 0 */
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) &&
		    !(WIFEXITED(status) && !WEXITSTATUS(status)))
			bad = true;
	}
	for (int i = 0; fl->run[0] && i < fl->n; i++) {
		char dir[96];
		snprintf(dir, sizeof(dir), "%s/%d", fl->run, i);
		fleet_rmdir(dir, &wrong);
	}
	if (fl->run[0])
		rmdir(fl->run);
	fleet_rmdir(fl->dir, &wrong);
	return bad ? -1 : wrong;
}

/*
 * @n counterd with FLEET_T workers each (compute in a tight loop: the CPUs are saturated),
 * each in a session of its own like a service; returns once every one wrote its ready file.
 * Each writes its status (rename of a new file) every 20 ms into a directory of its own:
 * 64 of them in one directory queue on its lock, and with the CPUs saturated a holder waits
 * long for a CPU, so most main threads would sit in D (path_openat) for seconds, and every
 * ptrace stop of one with them. That is the harness's doing, not a daemon's.
 */
static int fleet_start_counterd(const struct opts *o, struct fleet *fl, int n)
{
	char src[512], threads[16];

	snprintf(src, sizeof(src), "%s/counterd", o->daemons);
	snprintf(threads, sizeof(threads), "%d", FLEET_T);
	if (fleet_open(fl, src))
		return -1;
	snprintf(fl->run, sizeof(fl->run), "%s/lp-bench-fleet.XXXXXX",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	if (!mkdtemp(fl->run)) {
		fl->run[0] = 0;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char dir[96], ready[128], status[128];
		snprintf(dir, sizeof(dir), "%s/%d", fl->run, i);
		if (mkdir(dir, 0700))
			return -1;
		snprintf(ready, sizeof(ready), "%s/ready", dir);
		snprintf(status, sizeof(status), "%s/status", dir);
		char *argv[] = { fl->exe, "--threads", threads, "--ready", ready, "--status", status,
				 NULL };
		fl->pid[fl->n++] = spawn_in(argv, -1, true);
	}
	for (int i = 0; i < n; i++) {
		char ready[128];
		snprintf(ready, sizeof(ready), "%s/%d/ready", fl->run, i);
		for (double deadline = now_ms() + 60000; access(ready, F_OK);) {
			if (now_ms() > deadline)
				return -1;
			sleep_ms(10);
		}
	}
	sleep_ms(500);	/* let every worker run a while */
	return 0;
}

/* @n sleepd (bench/sleepd.c: one thread in pause()), each in a session of its own; returns
 * once each wrote its byte. */
static int fleet_start_sleepd(const struct opts *o, struct fleet *fl, int n)
{
	char src[512], buf[256];
	int p[2], got = 0;

	snprintf(src, sizeof(src), "%s/sleepd", o->bin);
	if (fleet_open(fl, src) || pipe2(p, O_CLOEXEC))
		return -1;
	for (int i = 0; i < n; i++) {
		char *argv[] = { fl->exe, NULL };
		fl->pid[fl->n++] = spawn_in(argv, p[1], true);
	}
	close(p[1]);
	for (double deadline = now_ms() + 60000; got < n && now_ms() < deadline;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		ssize_t k = read(p[0], buf, sizeof(buf));
		if (k <= 0)
			break;
		got += (int)k;
	}
	close(p[0]);
	sleep_ms(200);
	return got == n ? 0 : -1;
}

/*
 * One timed run of @argv into @r: end to end, peak RSS and CPU time (wait4), and what the
 * JSON says was done. One process (--pid): its "status" must be @want. Several: the summary
 * must count @procs processes as @want (and nothing else); the transactions of the reports
 * are summed, their largest pause kept. true when measured.
 */
static bool fleet_measure(struct row *r, char **argv, const char *want, int procs)
{
	struct sample *s = &r->s[r->nruns];
	char st[32] = "";

	*s = blank();
	int rc = run_capture(argv, fleet_out, FLEET_OUT_MAX, &s->e2e_ms);
	if (fleet_json) {	/* "fleet --exe --revert" run 2 -> fleet_--exe_--revert.2.json */
		char path[512];
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s.%d.json", fleet_json, r->tool, r->nruns + r->failed);
		for (char *c = path + strlen(fleet_json) + 1; *c; c++)
			*c = *c == ' ' ? '_' : *c;
		if ((f = fopen(path, "w"))) {
			fputs(fleet_out, f);
			fclose(f);
		}
	}
	s->maxrss_kb = (double)last_ru.ru_maxrss;
	s->user_ms = tv_ms(last_ru.ru_utime);
	s->sys_ms = tv_ms(last_ru.ru_stime);
	const char *sum = strstr(fleet_out, "\"summary\":{");
	double done = 0, total = NAN;
	if (sum) {
		const char *c = strstr(sum, "\"counts\":{");
		done = c ? jnum(c, want) : NAN;
		total = jnum(sum, "processes");
		/* a dry run has no transaction: NAN */
		for (const char *t = fleet_out; (t = strstr(t, "\"transaction\":{")) && t < sum; t++) {
			s->tx_sum_ms = (isnan(s->tx_sum_ms) ? 0 : s->tx_sum_ms) + jnum(t, "total_ms");
			s->pause_max_us = fmax(s->pause_max_us, jnum(t, "pause_max_us"));
		}
		jstr(sum, "text", st, sizeof(st));
	} else {
		jstr(fleet_out, "status", st, sizeof(st));
		done = total = !strcmp(st, want);
		fill_from_json(s, fleet_out);
	}
	s->procs = done;
	if (rc || done != procs || total != procs) {
		r->failed++;
		const char *e = strstr(fleet_out, "\"error\"");
		if (rc == 128 + SIGKILL && s->e2e_ms >= capture_timeout_ms)
			snprintf(r->note, sizeof(r->note), "killed after %.0f s (the bench's limit "
				 "for one run)", s->e2e_ms / 1e3);
		else if (sum)
			snprintf(r->note, sizeof(r->note), "exit %d: %.0f of %d %s; %.180s", rc, done,
				 procs, want, sum);
		else
			snprintf(r->note, sizeof(r->note), "exit %d, status '%s': %.180s", rc, st,
				 e ? e : fleet_out);
		return false;
	}
	r->nruns++;
	return true;
}

/*
 * Issue 18, the rollout: fleet_procs counterd with FLEET_T workers each, all running (2
 * CPUs: saturated). Run by run alternately, on the same running processes: FLEET_ONES
 * times one of them patched alone (--pid, a different one each run) and reverted alone,
 * then all of them patched (--exe, every one started from this copy of counterd) and
 * reverted, then the same with --jobs fleet_procs (not a target). Then the dry run:
 * dry_procs sleepd, one planned alone (--pid --dry-run) beside all planned (--exe --dry-run).
 * A run that fails is noted; whatever it left patched is reverted (untimed) before the next.
 */
static void run_fleet(const struct opts *o)
{
	bool multi = lp_has("--exe");
	char pid[16], src[512];
	long wrong;

	cur_load = "fleet";
	fleet_json = o->fleet_json;
	capture_timeout_ms = o->fleet_timeout_s * 1e3;	/* a hung run must not hang the bench */
	if (!fleet_out && !(fleet_out = malloc(FLEET_OUT_MAX)))
		return;
	snprintf(src, sizeof(src), "%s/counterd", o->daemons);
	struct row *one = row_new(FLEET_ONE, FLEET_T, 1), *one_r = row_new(FLEET_ONE_REV, FLEET_T, 1);
	struct row *all = row_new(FLEET_ALL, FLEET_T, 1), *all_r = row_new(FLEET_ALL_REV, FLEET_T, 1);
	struct row *allj = row_new(FLEET_ALL_J, FLEET_T, 1),
		   *allj_r = row_new(FLEET_ALL_J_REV, FLEET_T, 1);
	char jobs[16];
	snprintf(jobs, sizeof(jobs), "%d", o->fleet_procs);
	if (!multi)
		snprintf(all->note, sizeof(all->note), "pending: livepatch has no --exe yet");
	msg("fleet: starting %d counterd with %d threads each", o->fleet_procs, FLEET_T);
	if (access(src, X_OK) || fleet_start_counterd(o, &fleet, o->fleet_procs)) {
		snprintf(one->note, sizeof(one->note), "%d copies of %.200s did not start (make "
			 "daemons)", o->fleet_procs, src);
		fleet_close(&fleet);
		goto dry;
	}
	char *patch1[] = { (char *)o->lp, "--pid", pid, "-f", "compute", "-t", "compute_v2",
			   "--json", NULL };
	char *revert1[] = { (char *)o->lp, "--pid", pid, "--revert", "compute", "--json", NULL };
	char *patch_all[] = { (char *)o->lp, "--exe", fleet.exe, "-f", "compute", "-t",
			      "compute_v2", "--json", NULL };
	char *revert_all[] = { (char *)o->lp, "--exe", fleet.exe, "--revert", "compute", "--json",
			       NULL };
	char *patch_j[] = { (char *)o->lp, "--exe", fleet.exe, "--jobs", jobs, "-f", "compute",
			    "-t", "compute_v2", "--json", NULL };
	char *revert_j[] = { (char *)o->lp, "--exe", fleet.exe, "--jobs", jobs, "--revert",
			     "compute", "--json", NULL };
	/* warm-up, untimed: one patched and reverted (the files are in the page cache after
	 * it; a rollout as warm-up would cost minutes) */
	snprintf(pid, sizeof(pid), "%d", fleet.pid[0]);
	run_capture(patch1, fleet_out, FLEET_OUT_MAX, NULL);
	run_capture(revert1, fleet_out, FLEET_OUT_MAX, NULL);
	msg("fleet: one of %d patched and reverted alone x%d%s%s%s", o->fleet_procs,
	    o->fleet_runs * FLEET_ONES, multi ? ", all of them (--exe, then --exe --jobs " : "",
	    multi ? jobs : " (no --exe yet)", multi ? ")" : "");
	if (multi)
		msg("fleet: ... x%d each, one of each after every %d alone", o->fleet_runs, FLEET_ONES);
	for (int i = 0; i < o->fleet_runs; i++) {
		for (int k = 0; k < FLEET_ONES; k++) {
			snprintf(pid, sizeof(pid), "%d", fleet.pid[(i * FLEET_ONES + k + 1) % fleet.n]);
			if (!fleet_measure(one, patch1, "applied", 1) ||
			    !fleet_measure(one_r, revert1, "reverted", 1))
				run_capture(revert1, fleet_out, FLEET_OUT_MAX, NULL);
		}
		/* the rollout, then with --jobs: over the limit, another run would take as long
		 * (the processes are stopped next, patched or not); else undo what a failed run
		 * left */
		if (multi && (!fleet_measure(all, patch_all, "applied", fleet.n) ||
			      !fleet_measure(all_r, revert_all, "reverted", fleet.n))) {
			if (strstr(all->note, "killed after") || strstr(all_r->note, "killed after"))
				break;
			run_capture(revert_all, fleet_out, FLEET_OUT_MAX, NULL);
		}
		if (multi && (!fleet_measure(allj, patch_j, "applied", fleet.n) ||
			      !fleet_measure(allj_r, revert_j, "reverted", fleet.n))) {
			if (strstr(allj->note, "killed after") || strstr(allj_r->note, "killed after"))
				break;
			run_capture(revert_all, fleet_out, FLEET_OUT_MAX, NULL);
		}
	}
	if ((wrong = fleet_close(&fleet)))
		snprintf(one->note + strlen(one->note), sizeof(one->note) - strlen(one->note),
			 "%scounterd: %s", one->note[0] ? "; " : "",
			 wrong < 0 ? "one died or exited badly" : "wrong results seen");
dry:;
	struct row *dry1 = row_new(FLEET_DRY_ONE, 1, 1), *dry = row_new(FLEET_DRY_ALL, 1, 1);
	if (!multi)
		snprintf(dry->note, sizeof(dry->note), "pending: livepatch has no --exe yet");
	msg("fleet: starting %d sleepd", o->dry_procs);
	if (fleet_start_sleepd(o, &fleet, o->dry_procs)) {
		snprintf(dry1->note, sizeof(dry1->note), "%d sleepd did not start", o->dry_procs);
		fleet_close(&fleet);
		capture_timeout_ms = 0;
		return;
	}
	char *dry_one[] = { (char *)o->lp, "--pid", pid, "-f", "compute", "-t", "compute_v2",
			    "--dry-run", "--json", NULL };
	char *dry_all[] = { (char *)o->lp, "--exe", fleet.exe, "-f", "compute", "-t",
			    "compute_v2", "--dry-run", "--json", NULL };
	snprintf(pid, sizeof(pid), "%d", fleet.pid[0]);
	run_capture(dry_one, fleet_out, FLEET_OUT_MAX, NULL);	/* warm-up, untimed */
	if (multi)
		run_capture(dry_all, fleet_out, FLEET_OUT_MAX, NULL);
	msg("fleet: one of %d sleepd planned alone x%d%s", o->dry_procs, o->fleet_runs,
	    multi ? ", all of them with --exe --dry-run, alternating" : " (no --exe yet)");
	for (int i = 0; i < o->fleet_runs; i++) {
		snprintf(pid, sizeof(pid), "%d", fleet.pid[(i + 1) % fleet.n]);
		fleet_measure(dry1, dry_one, "planned", 1);
		if (multi)
			fleet_measure(dry, dry_all, "planned", fleet.n);
	}
	if (fleet_close(&fleet))
		snprintf(dry1->note + strlen(dry1->note), sizeof(dry1->note) - strlen(dry1->note),
			 "%ssleepd: one died or exited badly", dry1->note[0] ? "; " : "");
	capture_timeout_ms = 0;
}

static void loadavg(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/loadavg", "r");

	buf[0] = 0;
	if (f && fgets(buf, (int)cap, f))
		buf[strcspn(buf, "\n")] = 0;
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	struct opts o = { .only = ONLY_ALL, .runs = 31, .gdb_runs = 11, .spin_runs = 3,
			  .svc_seconds = 10,
			  .svc_period_ms = 200, .budget_s = 480, .util = 0.5, .hot_util = 0.1,
			  .burst_us = 1000, .fleet_procs = 64, .fleet_runs = 3, .dry_procs = 500,
			  .fleet_timeout_s = 600 };
	char daemons[512];
	char mach[512], load0[128], load1[128];

	o.nthreads = parse_list("1,8,64,256", o.threads);
	o.nsites = parse_list("1,100,1000", o.sites);
	o.nspin = parse_list("8,64,256", o.spin_threads);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--livepatch"))
			o.lp = v;
		else if (!strcmp(a, "--bin"))
			o.bin = v;
		else if (!strcmp(a, "--out"))
			o.out = v;
		else if (!strcmp(a, "--runs"))
			o.runs = atoi(v);
		else if (!strcmp(a, "--gdb-runs"))
			o.gdb_runs = atoi(v);
		else if (!strcmp(a, "--spin-runs"))
			o.spin_runs = atoi(v);
		else if (!strcmp(a, "--threads"))
			o.nthreads = parse_list(v, o.threads);
		else if (!strcmp(a, "--sites"))
			o.nsites = parse_list(v, o.sites);
		else if (!strcmp(a, "--spin-threads"))
			o.nspin = *v == '-' ? 0 : parse_list(v, o.spin_threads);
		else if (!strcmp(a, "--svc-seconds"))
			o.svc_seconds = atof(v);
		else if (!strcmp(a, "--svc-period-ms"))
			o.svc_period_ms = atoi(v);
		else if (!strcmp(a, "--util"))
			o.util = atof(v);
		else if (!strcmp(a, "--hot-util"))
			o.hot_util = atof(v);
		else if (!strcmp(a, "--burst-us"))
			o.burst_us = atoi(v);
		else if (!strcmp(a, "--budget-s"))
			o.budget_s = atof(v);
		else if (!strcmp(a, "--only"))
			o.only = parse_only(v);
		else if (!strcmp(a, "--daemons"))
			o.daemons = v;
		else if (!strcmp(a, "--fleet-procs"))
			o.fleet_procs = atoi(v);
		else if (!strcmp(a, "--fleet-runs"))
			o.fleet_runs = atoi(v);
		else if (!strcmp(a, "--dry-procs"))
			o.dry_procs = atoi(v);
		else if (!strcmp(a, "--fleet-timeout-s"))
			o.fleet_timeout_s = atof(v);
		else if (!strcmp(a, "--fleet-json"))
			o.fleet_json = v;
		else
			usage();
	}
	if (!o.lp || !o.bin || !o.out || !o.only || o.runs < 1 || o.runs > MAX_RUNS ||
	    o.gdb_runs > MAX_RUNS ||
	    o.spin_runs > MAX_RUNS || o.util <= 0 || o.hot_util <= 0 || o.burst_us < 1 ||
	    o.fleet_procs < 2 || o.fleet_procs > FLEET_MAX || o.dry_procs < 2 ||
	    o.dry_procs > FLEET_MAX || o.fleet_runs < 1 || o.fleet_runs * FLEET_ONES > MAX_RUNS ||
	    o.fleet_timeout_s <= 0)
		usage();
	if (!o.daemons) {	/* make daemons: build/daemons beside build/bench */
		snprintf(daemons, sizeof(daemons), "%s/../daemons", o.bin);
		o.daemons = daemons;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "run: ptrace needs root (or CAP_SYS_PTRACE): run make bench as root\n");
		return 3;
	}
	t_start = now_ms();
	machine(mach, sizeof(mach));
	loadavg(load0, sizeof(load0));
	char *help[] = { (char *)o.lp, "--help", NULL }, *version[] = { (char *)o.lp, "--version", NULL };
	char ver[128] = "";
	run_capture(help, lp_help, sizeof(lp_help), NULL);
	run_capture(version, ver, sizeof(ver), NULL);
	ver[strcspn(ver, "\n")] = 0;
	size_t mlen = strlen(mach);
	snprintf(mach + mlen, sizeof(mach) - mlen, "; %s", ver);
	msg("%s; load average %s", mach, load0);
	msg("livepatch %s --plan (batches)%s", lp_has("--plan") ? "has" : "has no",
	    lp_has("--plan") ? "" : ": N>1 is pending");

	if (o.only & ONLY_MATRIX)
		run_matrix(&o);
	if (o.only & ONLY_HOT)
		run_hot(&o);
	if (o.only & ONLY_LOAD)
		run_load(&o);
	if ((o.only & ONLY_SERVICE) && o.svc_seconds > 0)
		run_service(&o);
	if (o.only & ONLY_SPIN)
		run_saturated(&o);
	if (o.only & ONLY_SAFE)
		run_safe(&o);
	if (o.only & ONLY_WHERE)
		run_where(&o);
	if (o.only & ONLY_FLEET)
		run_fleet(&o);
	evaluate(&o);
	loadavg(load1, sizeof(load1));
	double total_s = (now_ms() - t_start) / 1e3;
	size_t len = strlen(mach);
	snprintf(mach + len, sizeof(mach) - len, "; load average at start %s, at end %s", load0, load1);
	printf("\n%s\n\n", mach);
	print_table(stdout);
	print_loads(stdout);
	print_safe_where(stdout);
	print_fleet(stdout);
	if (o.only & ONLY_SERVICE)
		print_service(stdout);
	print_targets(stdout);
	printf("\nWhole run: %.0f s. Wrote %s/results.md and %s/results.json\n", total_s, o.out, o.out);
	write_md(&o, mach, total_s);
	write_json(&o, mach, total_s);
	return 0;
}
