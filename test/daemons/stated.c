/* stated: threads that spend their time in the states a patch must not crash (docs/design.md §5):
 * with their PC, or a saved PC, inside (or just past) the bytes a jmp displaces. The
 * functions are in stated_asm.S; patch F to F_v2, which counts calls_F_v2 instead:
 *
 *   park                 hot threads, six pauses at the patch site (like compute_slow):
 *                        x*2+1 (park_v2: x*3+7), every result checked (wrong)
 *   edge_nanosleep       blocked with the PC at site+5, just past the displaced range
 *   edge_read            (push $NR; pop %rax; syscall are the 5 displaced bytes): a restart
 *   edge_pause           moves the PC back to site+3. nanosleep restarts through the
 *                        restart_block, read with -ERESTARTSYS (SA_RESTART handler too),
 *                        pause with -ERESTARTNOHAND (a kicker thread ends each pause with
 *                        the restart signal, every --kick-ms)
 *   inside_nanosleep     blocked with the PC at site+2, inside the displaced range (the
 *   inside_read          syscall instruction is at the site)
 *   sig_park             tgkill of the thread itself from the syscall at the site: its
 *                        handler runs with the saved rip at site+2, calls park() and sleeps
 *                        --handler-ms, so the saved context sits on the stack during patches
 *
 *   --mode LIST          comma-separated, default park:
 *                          park                  --threads hot workers calling park()
 *                          edge                  edge-nanosleep,edge-read,edge-pause
 *                          edge-nanosleep|edge-read|edge-pause   --threads callers of that one
 *                          inside                inside-nanosleep,inside-read
 *                          inside-nanosleep|inside-read          --threads callers of that one
 *                          handler               --threads sig_park callers (SIGRTMIN+3)
 *                          altstack              the same on a sigaltstack (SA_ONSTACK)
 *                          nested                the handler raises SIGRTMIN+4 through
 *                                                sig_park again; its handler sleeps too
 *                          all                   every one of them
 *   --threads N          threads per kind (default 2)
 *   --sleep-ms MS        nanosleep length of edge/inside callers (default 5)
 *   --feed-ms MS         a byte to every edge_read/inside_read pipe every MS (default 5)
 *   --kick-ms MS         the kicker's period for edge_pause (default 5)
 *   --handler-ms MS      sleep in the sig_park handlers (default 5)
 *   --inside-long MS     one more inside_read caller whose pipe is fed every MS (and at stop):
 *                        blocked inside the range for the whole of a patch (0: none)
 *
 * The restart signal (status key restart_signal, SIGRTMIN+2) has a SA_RESTART handler and is
 * blocked in every thread but the edge callers: `kill -s N PID` interrupts one of them.
 *
 * Status keys: calls_F and calls_F_v2 for each F above; wrong (a result of neither formula,
 * a pipe byte out of sequence, a handler off its altstack); signals_sent / signals_handled
 * (the daemon's own tgkills: sig_park and kicker; equal at exit), signals_nested (second
 * level handlers), restart_external (restart signals from outside), eintr (an EINTR no
 * handler of this thread explains), eintr_expected (nanosleep/pause cut by the restart
 * handler), errors (any other failed call), bytes_written / bytes_read (pipes),
 * inside_long_blocked (1 while the --inside-long thread is in its read), inside_long_calls,
 * restart_signal. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Written by the asm functions (lock incq name(%rip)). */
counter_t calls_park, calls_park_v2;
counter_t calls_edge_nanosleep, calls_edge_nanosleep_v2;
counter_t calls_edge_read, calls_edge_read_v2;
counter_t calls_edge_pause, calls_edge_pause_v2;
counter_t calls_inside_nanosleep, calls_inside_nanosleep_v2;
counter_t calls_inside_read, calls_inside_read_v2;
counter_t calls_sig_park, calls_sig_park_v2;

int park(int x);
long edge_nanosleep(const struct timespec *req, struct timespec *rem);
long edge_read(int fd, void *buf, size_t n);
long edge_pause(void);
long call_inside_nanosleep(const struct timespec *req);
long call_inside_read(int fd, void *buf, size_t n);
long call_sig_park(int tgid, int tid, int sig);

static counter_t signals_sent, signals_handled, signals_nested, restart_external;
static counter_t eintr, eintr_expected, errors, bytes_written, bytes_read;
static counter_t inside_long_blocked, inside_long_calls;

enum kind {
	K_PARK, K_EDGE_NANOSLEEP, K_EDGE_READ, K_EDGE_PAUSE, K_INSIDE_NANOSLEEP, K_INSIDE_READ,
	K_HANDLER, K_ALTSTACK, K_NESTED, K_INSIDE_LONG, K_COUNT
};
static const char *const kind_name[K_COUNT] = {
	"park", "edge-nanosleep", "edge-read", "edge-pause", "inside-nanosleep", "inside-read",
	"handler", "altstack", "nested", "inside-long",
};
static bool want[K_COUNT];
static long sleep_len = 5, feed_ms = 5, kick_ms = 5, handler_ms = 5, inside_long_ms;
static int sig_restart, sig_a, sig_b;
static pid_t tgid;

/* One pipe per reader thread; the feeder writes the sequence 0, 1, 2, ... (mod 256). */
#define MAX_PIPES 1024
static struct feed {
	int rfd, wfd;
	unsigned char next_w;
	bool is_long;
} pipes[MAX_PIPES];
static int npipes;
static _Atomic int readers_live;

/* edge_pause callers: the kicker sends them the restart signal while alive. */
#define MAX_PAUSERS 1024
static struct pauser {
	pthread_mutex_t lock;
	_Atomic pid_t tid;	/* 0: not started or done */
} pausers[MAX_PAUSERS];
static int npausers;
static _Atomic int pausers_live;

struct worker {
	enum kind kind;
	int slot;	/* pipe or pauser index */
	int x;
};

static __thread volatile sig_atomic_t restart_hit;	/* the restart handler ran here */
static __thread enum kind my_kind;
static __thread char *alt_lo, *alt_hi;
static __thread int handler_x;

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void ms_ts(struct timespec *ts, long ms)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (ms % 1000) * 1000000L;
}

static void on_restart(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	restart_hit = 1;
	if (si->si_code == SI_TKILL && si->si_pid == tgid)
		count(&signals_handled);
	else
		count(&restart_external);
}

/* The sig_park handlers: the saved context's rip is sig_park's site+2. */
static void check_altstack(void)
{
	char here;

	if (my_kind == K_ALTSTACK && !(&here >= alt_lo && &here < alt_hi))
		count(&wrong);
}

static void on_sig_b(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	(void)sig;
	(void)si;
	(void)uc;
	count(&signals_handled);
	count(&signals_nested);
	check_altstack();
	nap_ms(handler_ms);
	errno = saved;
}

static void on_sig_a(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	int x = handler_x, r;

	(void)sig;
	(void)si;
	(void)uc;
	count(&signals_handled);
	check_altstack();
	r = park(x);
	check_result(x, r);
	handler_x = (x + 1) & 0xfffff;
	if (my_kind == K_NESTED) {
		count(&signals_sent);
		if (call_sig_park(tgid, gettid_(), sig_b) != 0)
			count(&errors);
	}
	nap_ms(handler_ms);
	errno = saved;
}

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | flags;
	if (sigaction(sig, &sa, NULL) < 0)
		die("sigaction(%d): %s", sig, strerror(errno));
}

static void unblock(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* One byte from the pipe through F; checks the sequence. */
static void read_one(struct feed *p, long (*fn)(int, void *, size_t), unsigned char *expect)
{
	unsigned char b;
	long r;

	restart_hit = 0;
	r = fn(p->rfd, &b, 1);
	if (r == 1) {
		if (b != *expect)
			count(&wrong);
		*expect = (unsigned char)(b + 1);
		count(&bytes_read);
	} else if (r == -EINTR) {
		count(&eintr);	/* SA_RESTART: a read never returns EINTR here */
	} else {
		count(&errors);
	}
}

static long inside_read_fn(int fd, void *buf, size_t n)
{
	return call_inside_read(fd, buf, n);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct timespec ts;
	unsigned char expect = 0;
	long r;

	my_kind = w->kind;
	handler_x = w->x;
	ms_ts(&ts, sleep_len);
	if (w->kind == K_ALTSTACK) {
		stack_t ss;
		size_t size = 256 * 1024;
		ss.ss_sp = malloc(size);
		if (!ss.ss_sp)
			die("out of memory");
		ss.ss_size = size;
		ss.ss_flags = 0;
		if (sigaltstack(&ss, NULL) < 0)
			die("sigaltstack: %s", strerror(errno));
		alt_lo = ss.ss_sp;
		alt_hi = alt_lo + size;
	}
	if (w->kind == K_EDGE_NANOSLEEP || w->kind == K_EDGE_READ || w->kind == K_EDGE_PAUSE)
		unblock(sig_restart);
	if (w->kind == K_EDGE_PAUSE)
		atomic_store(&pausers[w->slot].tid, gettid_());
	common_thread_started();

	while (!common_stopping()) {
		switch (w->kind) {
		case K_PARK:
			for (int k = 0; k < 64; k++) {
				int res = park(w->x);
				check_result(w->x, res);
				w->x = (w->x + 1) & 0xfffff;
			}
			break;
		case K_EDGE_NANOSLEEP:
			restart_hit = 0;
			r = edge_nanosleep(&ts, NULL);
			if (r == -EINTR)
				count(restart_hit ? &eintr_expected : &eintr);
			else if (r)
				count(&errors);
			break;
		case K_EDGE_READ:
			read_one(&pipes[w->slot], edge_read, &expect);
			break;
		case K_EDGE_PAUSE:
			restart_hit = 0;
			r = edge_pause();
			if (r == -EINTR)	/* the only way pause returns */
				count(restart_hit ? &eintr_expected : &eintr);
			else
				count(&errors);
			break;
		case K_INSIDE_NANOSLEEP:
			r = call_inside_nanosleep(&ts);
			if (r == -EINTR)
				count(&eintr);
			else if (r)
				count(&errors);
			break;
		case K_INSIDE_READ:
			read_one(&pipes[w->slot], inside_read_fn, &expect);
			break;
		case K_INSIDE_LONG:
			atomic_store(&inside_long_blocked, 1);
			read_one(&pipes[w->slot], inside_read_fn, &expect);
			atomic_store(&inside_long_blocked, 0);
			count(&inside_long_calls);
			break;
		case K_HANDLER:
		case K_ALTSTACK:
		case K_NESTED:
			count(&signals_sent);
			if (call_sig_park(tgid, gettid_(), sig_a) != 0)
				count(&errors);
			break;
		default:
			break;
		}
	}
	if (w->kind == K_EDGE_PAUSE) {
		/* No kick after this: one sent before the unlock is delivered by the getpid. */
		pthread_mutex_lock(&pausers[w->slot].lock);
		atomic_store(&pausers[w->slot].tid, 0);
		pthread_mutex_unlock(&pausers[w->slot].lock);
		syscall(SYS_getpid);
		atomic_fetch_sub(&pausers_live, 1);
	}
	if (w->kind == K_EDGE_READ || w->kind == K_INSIDE_READ || w->kind == K_INSIDE_LONG)
		atomic_fetch_sub(&readers_live, 1);
	return NULL;
}

/* Ends each edge_pause with the restart signal every kick_ms, until every pauser is done. */
static void *kicker_main(void *arg)
{
	(void)arg;
	common_thread_started();
	while (atomic_load(&pausers_live) > 0) {
		for (int i = 0; i < npausers; i++) {
			struct pauser *p = &pausers[i];
			pthread_mutex_lock(&p->lock);
			pid_t tid = atomic_load(&p->tid);
			if (tid) {
				count(&signals_sent);
				if (syscall(SYS_tgkill, tgid, tid, sig_restart) < 0)
					count(&errors);
			}
			pthread_mutex_unlock(&p->lock);
		}
		nap_ms(common_stopping() ? 1 : kick_ms);
	}
	return NULL;
}

/* A byte to every pipe every feed_ms (the long one every inside_long_ms), until every
 * reader is done. */
static void *feeder_main(void *arg)
{
	unsigned long last_long = uptime_ms();

	(void)arg;
	common_thread_started();
	while (atomic_load(&readers_live) > 0) {
		bool stopping = common_stopping();
		bool feed_long = stopping || uptime_ms() - last_long >= (unsigned long)inside_long_ms;
		if (feed_long)
			last_long = uptime_ms();
		for (int i = 0; i < npipes; i++) {
			struct feed *p = &pipes[i];
			if (p->is_long && !feed_long)
				continue;
			if (write(p->wfd, &p->next_w, 1) == 1) {
				p->next_w++;
				count(&bytes_written);
			}	/* full (EAGAIN): try again next time */
		}
		nap_ms(stopping ? 1 : feed_ms);
	}
	return NULL;
}

static unsigned long restart_signal_fn(void)
{
	return (unsigned long)sig_restart;
}

static bool set_mode(const char *name)
{
	if (!strcmp(name, "all")) {
		for (int k = 0; k < K_COUNT; k++)
			want[k] = k != K_INSIDE_LONG;
		return true;
	}
	if (!strcmp(name, "edge")) {
		want[K_EDGE_NANOSLEEP] = want[K_EDGE_READ] = want[K_EDGE_PAUSE] = true;
		return true;
	}
	if (!strcmp(name, "inside")) {
		want[K_INSIDE_NANOSLEEP] = want[K_INSIDE_READ] = true;
		return true;
	}
	for (int k = 0; k < K_COUNT; k++) {
		if (k != K_INSIDE_LONG && !strcmp(name, kind_name[k])) {
			want[k] = true;
			return true;
		}
	}
	return false;
}

static bool mode_given;

static int parse_ms(const char *arg, long *out, long min)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end || end == arg || v < min || v > 3600000)
		return -1;
	*out = v;
	return 0;
}

enum { OPT_MODE = 256, OPT_SLEEP_MS, OPT_FEED_MS, OPT_KICK_MS, OPT_HANDLER_MS, OPT_INSIDE_LONG };

static int handle(int val, const char *arg)
{
	switch (val) {
	case OPT_MODE: {
		char buf[256], *save = NULL, *tok;
		snprintf(buf, sizeof buf, "%s", arg);
		mode_given = true;
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (!set_mode(tok))
				return -1;
		return 0;
	}
	case OPT_SLEEP_MS:
		return parse_ms(arg, &sleep_len, 1);
	case OPT_FEED_MS:
		return parse_ms(arg, &feed_ms, 1);
	case OPT_KICK_MS:
		return parse_ms(arg, &kick_ms, 1);
	case OPT_HANDLER_MS:
		return parse_ms(arg, &handler_ms, 0);
	case OPT_INSIDE_LONG:
		return parse_ms(arg, &inside_long_ms, 0);
	}
	return -1;
}

static int new_pipe(bool is_long)
{
	int fd[2];

	if (npipes == MAX_PIPES)
		die("too many pipes");
	if (pipe2(fd, O_CLOEXEC) < 0)
		die("pipe2: %s", strerror(errno));
	/* The write end does not block: a full pipe is skipped by the feeder. */
	if (fcntl(fd[1], F_SETFL, O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	pipes[npipes].rfd = fd[0];
	pipes[npipes].wfd = fd[1];
	pipes[npipes].is_long = is_long;
	return npipes++;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "sleep-ms", required_argument, NULL, OPT_SLEEP_MS },
		{ "feed-ms", required_argument, NULL, OPT_FEED_MS },
		{ "kick-ms", required_argument, NULL, OPT_KICK_MS },
		{ "handler-ms", required_argument, NULL, OPT_HANDLER_MS },
		{ "inside-long", required_argument, NULL, OPT_INSIDE_LONG },
		{ 0 },
	};
	struct worker *w;
	pthread_t *t, feeder, kicker;
	int n = 0, nw = 0;
	sigset_t set;

	common_init(argc, argv, extra, handle,
		    "  --mode LIST       park,edge,edge-nanosleep,edge-read,edge-pause,inside,\n"
		    "                    inside-nanosleep,inside-read,handler,altstack,nested,all\n"
		    "                    (comma-separated; default park); --threads N per kind\n"
		    "  --sleep-ms MS     nanosleep length of the edge/inside callers (default 5)\n"
		    "  --feed-ms MS      a byte to every reader's pipe every MS (default 5)\n"
		    "  --kick-ms MS      the restart signal to every edge_pause caller every MS (5)\n"
		    "  --handler-ms MS   sleep in the sig_park handlers (default 5)\n"
		    "  --inside-long MS  one more inside_read caller, fed every MS (0: none)\n",
		    2);
	if (!mode_given)
		want[K_PARK] = true;
	if (inside_long_ms)
		want[K_INSIDE_LONG] = true;
	tgid = getpid();
	sig_restart = SIGRTMIN + 2;
	sig_a = SIGRTMIN + 3;
	sig_b = SIGRTMIN + 4;

	status_add("calls_park", &calls_park);
	status_add("calls_park_v2", &calls_park_v2);
	status_add("calls_edge_nanosleep", &calls_edge_nanosleep);
	status_add("calls_edge_nanosleep_v2", &calls_edge_nanosleep_v2);
	status_add("calls_edge_read", &calls_edge_read);
	status_add("calls_edge_read_v2", &calls_edge_read_v2);
	status_add("calls_edge_pause", &calls_edge_pause);
	status_add("calls_edge_pause_v2", &calls_edge_pause_v2);
	status_add("calls_inside_nanosleep", &calls_inside_nanosleep);
	status_add("calls_inside_nanosleep_v2", &calls_inside_nanosleep_v2);
	status_add("calls_inside_read", &calls_inside_read);
	status_add("calls_inside_read_v2", &calls_inside_read_v2);
	status_add("calls_sig_park", &calls_sig_park);
	status_add("calls_sig_park_v2", &calls_sig_park_v2);
	status_add("signals_sent", &signals_sent);
	status_add("signals_handled", &signals_handled);
	status_add("signals_nested", &signals_nested);
	status_add("restart_external", &restart_external);
	status_add("eintr", &eintr);
	status_add("eintr_expected", &eintr_expected);
	status_add("errors", &errors);
	status_add("bytes_written", &bytes_written);
	status_add("bytes_read", &bytes_read);
	status_add("inside_long_blocked", &inside_long_blocked);
	status_add("inside_long_calls", &inside_long_calls);
	status_add_fn("restart_signal", restart_signal_fn);

	/* The restart signal reaches only the edge callers (they unblock it). */
	sigemptyset(&set);
	sigaddset(&set, sig_restart);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	set_handler(sig_restart, on_restart, SA_RESTART);
	set_handler(sig_a, on_sig_a, SA_RESTART | SA_ONSTACK);
	set_handler(sig_b, on_sig_b, SA_RESTART | SA_ONSTACK);

	for (int k = 0; k < K_COUNT; k++)
		if (want[k])
			nw += k == K_INSIDE_LONG ? 1 : opt.threads;
	w = calloc(nw + 1, sizeof *w);
	t = calloc(nw + 1, sizeof *t);
	if (!w || !t)
		die("out of memory");
	for (int k = 0; k < K_COUNT; k++) {
		int m = !want[k] ? 0 : k == K_INSIDE_LONG ? 1 : opt.threads;
		for (int i = 0; i < m; i++, n++) {
			w[n].kind = (enum kind)k;
			w[n].x = n * 4096;
			if (k == K_EDGE_READ || k == K_INSIDE_READ || k == K_INSIDE_LONG) {
				w[n].slot = new_pipe(k == K_INSIDE_LONG);
				atomic_fetch_add(&readers_live, 1);
			}
			if (k == K_EDGE_PAUSE) {
				if (npausers == MAX_PAUSERS)
					die("too many edge_pause threads");
				pthread_mutex_init(&pausers[npausers].lock, NULL);
				w[n].slot = npausers++;
				atomic_fetch_add(&pausers_live, 1);
			}
		}
	}
	for (int i = 0; i < n; i++)
		common_thread_create(&t[i], worker_main, &w[i]);
	common_thread_create(&feeder, feeder_main, NULL);
	common_thread_create(&kicker, kicker_main, NULL);
	common_wait_started(n + 2);
	common_run();
	join_workers(t, n);
	common_join(feeder, 2000);
	common_join(kicker, 2000);
	common_exit();
}
