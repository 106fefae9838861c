/* insided: threads that sit, each in its own way, with a function F on their stack, for
 * `livepatch --where F`, `--safe` and `--unload` (issue 17; where.bats, safe.bats,
 * unload.bats). Every thread is named (pthread_setname_np) so that a test finds its TID by
 * comm in /proc/PID/task/TID/comm. Each mode is chosen by a flag; none is on by default.
 *
 *   --spinners N      N threads "spinner" call compute(x) in a tight loop, every result
 *                     checked: compute (compute.c) counts calls_compute (= old_calls),
 *                     compute_v2 calls_compute_v2, compute_fixed (here) new_calls.
 *   --pipe-reader     thread "reader" calls wait_in(fd), blocked in read(2) on the FIFO of
 *   --wake FIFO       --wake (made here, opened read-write: never an end of file). One byte
 *                     written to FIFO makes wait_in return (reader_left 1); the reader then
 *                     stays OUT of wait_in for good: it reads further bytes in idle_out()
 *                     (out_bytes), blocked there. reader_in is 1 while it is in wait_in.
 *                     Its stack is scrubbed on the way out (scrub_stack): no stale return
 *                     address into wait_in stays below the frames, for a scan to find.
 *                     wait_in_v2 (wait_in_v2_calls) is a replacement for wait_in.
 *   --recursion       thread "recurser": recurse(depth) calls itself down to recurse(0),
 *   --depth N         which blocks in read(2) on a pipe nobody writes: N+1 frames of recurse
 *                     (default N 20). recurse_bottom is 1 once it got there.
 *   --deep-poll       thread "poller": outer_poll() -> middle() -> poll(2) on a pipe nobody
 *                     writes, no timeout (poller_in 1 once there).
 *   --signal-inside   thread "sigger" spins in sig_body() (a loop in that function, never a
 *                     call); thread "kicker" sends it SIGUSR1 (tgkill) every --sig-ms MS
 *                     (default 5), the next one only once the last was handled. The
 *                     handler on_usr1 sleeps --handler-ms MS (clock_nanosleep; default
 *                     3600000: the first signal keeps the thread in the handler, its saved
 *                     context in sig_body), or with --handler-spin spins that long in
 *                     handler_spin() without a system call. signals_sent, signals_handled
 *                     (at the handler's entry), in_handler (1 while inside), signals_other
 *                     (a SIGUSR1 that did not come from the kicker).
 *   --tail            thread "tail": tail_entry() counts tail_entries and tail-calls
 *                     (`jmp`) tail_target(), which blocks in read(2) on a pipe nobody writes
 *                     (tail_in 1 once there). tail_entry is on no stack.
 *   --stale           thread "stale" calls stale_src(), which returns the return address of
 *                     its own call to grab_ra(): an address inside stale_src, right after a
 *                     call. stale_spin() keeps it in a volatile local of its frame and
 *                     spins (always running, never in a system call). A conservative stack
 *                     scan finds a return address into stale_src that no frame has.
 *                     stale_armed 1 once it spins; stale_value: the word (decimal).
 *   --waiter FIFO     thread "lwaiter" reads one byte at a time from FIFO (made here,
 *                     opened read-write) in its own loop (lw_bytes), then calls waiter(fd)
 *                     (waiter_calls before, waiter_returns after). The daemon's waiter
 *                     returns at once (waiter_old); sleeper.o's wait_in_patched reads one
 *                     more byte (patched_entered, patched_bytes: insided.h), so after the
 *                     patch each byte puts the thread to sleep inside the loaded code until
 *                     the next byte. Its stack is scrubbed after each call of waiter.
 *   --split-sleep     thread "splitsleep": split_outer() -> split_inner(), which has 16 KiB
 *                     of locals, marks a page-aligned 8 KiB of them MADV_DONTDUMP (the
 *                     thread's stack mapping splits, as with libsodium's sodium_mlock) and
 *                     blocks in read(2) on a pipe nobody writes (split_in 1 once there).
 *   --split-spin      thread "splitspin": the same, but split_inner spins without a system
 *                     call (split_spins counts the turns). Use one of the two at a time.
 *   --time-spin FIFO  thread "timer" reads one byte at a time from FIFO and calls gate(fd)
 *   --time-stop FIFO  (gate_calls before, gate_returns after, stack scrubbed); the daemon's
 *                     gate returns at once (gate_old). timespin.o's gate_patched calls
 *                     time_spin (gate_entered, gate_left: insided.h), which loops on
 *                     time(NULL) (libc through the PLT, then the vDSO) counting time_loops,
 *                     time_spinning 1 meanwhile, until thread "tstop" reads a byte from
 *                     the --time-stop FIFO. The two flags go together.
 *   --altsig          thread "altsig" spins in the leaf alt_leaf(); thread "altkick" sends it
 *                     one SIGUSR2 once it does. The handler on_usr2 is installed with a raw
 *                     rt_sigaction, SA_RESTORER with the daemon's own restorer
 *                     insided_restorer (asm: rt_sigreturn), SA_ONSTACK on a sigaltstack,
 *                     and sleeps in nanosleep for an hour: alt_handled, alt_on_stack (the
 *                     handler runs on the alternate stack), alt_in_handler, alt_spinning.
 *   --nosize          thread "nosize": nosize_fn (asm, no .size: st_size 0) calls
 *                     nosize_sleep, which blocks in read(2) on a pipe nobody writes
 *                     (nosize_in 1 once there).
 *
 * Every blocking call counts the EINTRs it sees (eintr: none is expected, nothing here
 * interrupts them: SIGUSR1 is blocked in every thread but sigger, SIGUSR2 in every thread
 * but altsig, SIGTERM/SIGINT go to the main thread only) and any other failure (errors).
 * The blocked threads are not joined at exit (common_exit ends the process). The functions under test are noipa (no inlining,
 * no clone, no IPA), exported, each its own symbol; wait_in, recurse, outer_poll,
 * tail_target and stale_src do something after their call so that it is no tail call
 * (checked by where.bats with objdump); tail_entry's call is one. The daemons' flags
 * (-O2, no frame pointer) are kept: no -fno-optimize-sibling-calls is needed.
 *
 * The ready file is written once every thread is where its mode puts it (the flag of each
 * is set right before its blocking call: a test that needs the call itself polls
 * /proc/PID/task/TID/syscall, lib.bash's wait_blocked).
 *
 * Status keys, in order: pid threads uptime_ms calls_compute calls_compute_v2 wrong
 * (common.c), old_calls new_calls eintr errors reader_in reader_left out_bytes
 * wait_in_v2_calls recurse_bottom poller_in sig_body_entries signals_sent signals_handled
 * in_handler signals_other tail_entries tail_in stale_armed stale_value lw_bytes
 * waiter_calls waiter_returns waiter_old patched_entered patched_bytes split_in split_spins
 * gate_calls gate_returns gate_old gate_entered gate_left time_loops time_spinning
 * alt_spinning alt_handled alt_in_handler alt_on_stack nosize_in.
 */
#include "common.h"
#include "insided.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NOIPA __attribute__((noipa, used))

static counter_t new_calls, eintr, errors;
static counter_t reader_in, reader_left, out_bytes, wait_in_v2_calls;
static counter_t recurse_bottom;
static counter_t poller_in;
static counter_t sig_body_entries, signals_sent, signals_handled, in_handler, signals_other;
static counter_t tail_entries, tail_in;
static counter_t stale_armed, stale_value;
static counter_t lw_bytes, waiter_calls, waiter_returns, waiter_old, patched_entered,
	patched_bytes;
static counter_t split_in, split_spins;
static counter_t gate_calls, gate_returns, gate_old, gate_entered, gate_left, time_loops,
	time_spinning;
static counter_t alt_spinning, alt_handled, alt_in_handler, alt_on_stack;
static counter_t nosize_in;

static int spinners, depth = 20;
static long sig_ms = 5, handler_ms = 3600000;
static bool want_reader, want_recursion, want_poll, want_signal, handler_spin_mode, want_tail,
	want_stale, want_split_sleep, want_split_spin, want_altsig, want_nosize;
static const char *wake_path, *waiter_path, *time_spin_path, *time_stop_path;
static _Atomic pid_t sigger_tid;
static volatile uintptr_t stale_sink;	/* stores that keep a call from being a tail call */
static pid_t tgid;

/* A pipe nobody writes: its read end, for the threads that block for good. */
static int dead_pipe(void)
{
	int fd[2];

	if (pipe2(fd, O_CLOEXEC) < 0)
		die("pipe2: %s", strerror(errno));
	return fd[0];	/* the write end stays open: never an end of file */
}

/* A FIFO at path (made unless one is there), opened read-write: a read blocks until a
 * byte comes and never sees an end of file. */
static int open_fifo(const char *path)
{
	struct stat sb;
	int fd;

	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		die("mkfifo %s: %s", path, strerror(errno));
	if (stat(path, &sb) < 0 || !S_ISFIFO(sb.st_mode))
		die("%s is not a FIFO", path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	return fd;
}

static void name_self(const char *name)
{
	int e = pthread_setname_np(pthread_self(), name);

	if (e)
		die("pthread_setname_np %s: %s", name, strerror(e));
}

/* One byte from fd, retried after EINTR (counted); -1 on another failure (counted). */
static int read_byte(int fd)
{
	unsigned char b;

	for (;;) {
		ssize_t n = read(fd, &b, 1);

		if (n == 1)
			return b;
		if (n < 0 && errno == EINTR) {
			count(&eintr);
			continue;
		}
		count(&errors);
		return -1;
	}
}

/* --- the replacement of compute -------------------------------------------------------- */

NOIPA int compute_fixed(int x)
{
	count(&new_calls);
	return x * 3 + 7;
}

/*
 * Work between two calls of compute, about ten times compute's: a spinner is inside compute
 * a tenth of the time, so --safe finds a moment with none inside within a few checks, and
 * --where still catches one there within a few runs.
 */
NOIPA void spin_outside(int n)
{
	volatile unsigned int v = 0;

	for (int i = 0; i < n; i++)
		v += (unsigned int)i;
}

static void *spinner_main(void *arg)
{
	int x = (int)(intptr_t)arg * 4096;

	name_self("spinner");
	common_thread_started();
	while (!common_stopping()) {
		for (int k = 0; k < 256; k++) {
			int r = compute(x);
			check_result(x, r);
			spin_outside(32);
			x = (x + 1) & 0xfffff;
		}
	}
	return NULL;
}

/* --- reader: blocked in wait_in, then out of it for good ------------------------------- */

/* One byte from fd: the thread sleeps in read(2) with its return address in here. The
 * loop after the call keeps it a call (no tail call). */
NOIPA int wait_in(int fd)
{
	unsigned char b;

	for (;;) {
		ssize_t n = read(fd, &b, 1);

		if (n == 1)
			return b;
		if (n < 0 && errno == EINTR) {
			count(&eintr);
			continue;
		}
		count(&errors);
		return -1;
	}
}

/* A replacement for wait_in (safe.bats patches wait_in -> wait_in_v2): the same read, its
 * own counter. Nothing calls it unless a patch sends a call here. */
NOIPA int wait_in_v2(int fd)
{
	int r;

	count(&wait_in_v2_calls);
	r = read_byte(fd);
	stale_sink = (uintptr_t)r;	/* after the call: no tail call */
	return r;
}

/* Where the reader blocks once it has left wait_in: further bytes, counted, forever. */
NOIPA void idle_out(int fd)
{
	while (read_byte(fd) >= 0)
		count(&out_bytes);
}

/* Zeroes the 4 KiB of stack below the caller's frame, where the frames of a call that has
 * returned lie: a conservative scan of a thread asleep later (blocked threads are scanned,
 * not unwound) would take their return addresses for frames, and a thread that has left
 * wait_in or the loaded patch would still look inside. Called right after such a call. */
NOIPA void scrub_stack(void)
{
	volatile unsigned char pad[4096];

	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] = 0;
}

static void *reader_main(void *arg)
{
	int fd = (int)(intptr_t)arg;

	name_self("reader");
	common_thread_started();
	atomic_store(&reader_in, 1);
	wait_in(fd);
	scrub_stack();
	atomic_store(&reader_in, 0);
	count(&reader_left);
	idle_out(fd);
	return NULL;
}

/* --- recurser: recurse 20 deep, blocked at the bottom -------------------------------------- */

static int recurse_fd;

/* mark is read after the call returns, so the call is no tail call and the recursion no
 * loop: one frame of recurse per level. */
NOIPA int recurse(int n)
{
	volatile int mark = n;
	int r;

	if (n > 0) {
		r = recurse(n - 1);
	} else {
		atomic_store(&recurse_bottom, 1);
		r = read_byte(recurse_fd);
	}
	return r + mark;
}

static void *recurser_main(void *arg)
{
	(void)arg;
	name_self("recurser");
	common_thread_started();
	recurse(depth);
	return NULL;
}

/* --- poller: outer_poll -> middle -> poll ------------------------------------------------- */

static int poll_fd;

NOIPA int middle(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	atomic_store(&poller_in, 1);
	for (;;) {
		int n = poll(&p, 1, -1);

		if (n >= 0)
			return n;
		if (errno == EINTR) {
			count(&eintr);
			continue;
		}
		count(&errors);
		return -1;
	}
}

NOIPA int outer_poll(int fd)
{
	volatile int after;
	int r = middle(fd);

	after = r;
	return after;
}

static void *poller_main(void *arg)
{
	(void)arg;
	name_self("poller");
	common_thread_started();
	outer_poll(poll_fd);
	return NULL;
}

/* --- sigger: spinning in sig_body, in a SIGUSR1 handler most of the time ------------------ */

/* Spins without a call: wherever SIGUSR1 comes, the saved PC is in here. */
NOIPA void sig_body(void)
{
	volatile unsigned long spins = 0;

	count(&sig_body_entries);
	while (!common_stopping())
		spins++;
}

/* The handler's spin (--handler-spin): running, no system call, until ms have passed. */
NOIPA void handler_spin(long ms)
{
	struct timespec now, until;

	clock_gettime(CLOCK_MONOTONIC, &until);	/* vDSO: no system call */
	ts_add_ns(&until, ms * 1000000L);
	do {
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (!common_stopping() && (now.tv_sec < until.tv_sec ||
		 (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec)));
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	struct timespec until;

	(void)sig;
	(void)uc;
	if (si->si_code != SI_TKILL || si->si_pid != tgid) {
		count(&signals_other);
		errno = saved;
		return;
	}
	count(&signals_handled);
	atomic_store(&in_handler, 1);
	if (handler_spin_mode) {
		handler_spin(handler_ms);
	} else {
		int e;

		clock_gettime(CLOCK_MONOTONIC, &until);
		ts_add_ns(&until, handler_ms * 1000000L);
		while ((e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL)) != 0) {
			if (e != EINTR) {
				count(&errors);
				break;
			}
			count(&eintr);
		}
	}
	atomic_store(&in_handler, 0);
	errno = saved;
}

static void *sigger_main(void *arg)
{
	sigset_t set;

	(void)arg;
	name_self("sigger");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	atomic_store(&sigger_tid, (pid_t)syscall(SYS_gettid));
	common_thread_started();
	sig_body();
	return NULL;
}

/* One SIGUSR1 at a time: the next only once the last was handled and returned. */
static void *kicker_main(void *arg)
{
	(void)arg;
	name_self("kicker");
	common_thread_started();
	while (!atomic_load(&sigger_tid) || !atomic_load(&sig_body_entries))
		nap_ms(1);
	while (!common_stopping()) {
		if (atomic_load(&signals_handled) != atomic_load(&signals_sent) ||
		    atomic_load(&in_handler)) {
			nap_ms(10);
			continue;
		}
		nap_ms(sig_ms);
		count(&signals_sent);
		if (syscall(SYS_tgkill, tgid, atomic_load(&sigger_tid), SIGUSR1) < 0)
			count(&errors);
	}
	return NULL;
}

/* --- tail: tail_entry jumps to tail_target ------------------------------------------------- */

static int tail_fd;

/* Blocked in read_byte with a frame of its own (the store after the call). */
NOIPA int tail_target(int fd)
{
	volatile int r;

	atomic_store(&tail_in, 1);
	r = read_byte(fd);
	return r;
}

/* The call is the last thing: gcc -O2 makes it `jmp tail_target` (no frame left). */
NOIPA int tail_entry(int fd)
{
	count(&tail_entries);
	return tail_target(fd);
}

static void *tail_main(void *arg)
{
	(void)arg;
	name_self("tail");
	common_thread_started();
	while (tail_entry(tail_fd) >= 0)
		;
	return NULL;
}

/* --- stale: a word that looks like a return address into stale_src ------------------------ */

NOIPA uintptr_t grab_ra(void)
{
	return (uintptr_t)__builtin_return_address(0);
}

/* Returns the return address of its call to grab_ra: inside stale_src, just past a call. */
NOIPA uintptr_t stale_src(void)
{
	uintptr_t ra = grab_ra();

	stale_sink = ra;	/* after the call: no tail call */
	return ra;
}

NOIPA void stale_spin(void)
{
	volatile uintptr_t keep = stale_src();	/* on this frame, above the stack pointer */

	atomic_store(&stale_value, keep);
	atomic_store(&stale_armed, 1);
	while (!common_stopping())
		;
	stale_sink = keep;
}

static void *stale_main(void *arg)
{
	(void)arg;
	name_self("stale");
	common_thread_started();
	stale_spin();
	return NULL;
}

/* --- lwaiter: waiter after each byte; sleeper.o's wait_in_patched sleeps in the patch ------ */

NOIPA int waiter(int fd)
{
	count(&waiter_old);
	return fd < 0 ? -1 : 0;
}

void insided_note(int what)
{
	switch (what) {
	case INSIDED_ENTERED:
		count(&patched_entered);
		break;
	case INSIDED_BYTE:
		count(&patched_bytes);
		break;
	case INSIDED_SPIN_ENTERED:
		count(&gate_entered);
		break;
	case INSIDED_SPIN_LEFT:
		count(&gate_left);
		break;
	case INSIDED_EINTR:
		count(&eintr);
		break;
	default:
		count(&errors);
		break;
	}
}

static void *lwaiter_main(void *arg)
{
	int fd = (int)(intptr_t)arg;

	name_self("lwaiter");
	common_thread_started();
	while (read_byte(fd) >= 0) {
		count(&lw_bytes);
		count(&waiter_calls);
		if (waiter(fd) < 0)
			count(&errors);
		scrub_stack();	/* no stale return address into the patch or wait_in */
		count(&waiter_returns);
	}
	return NULL;
}

/* --- splitter: split_outer -> split_inner, which splits its own stack mapping ------------- */

static int split_fd;

/* K: 16 KiB of locals, 8 KiB of them (page-aligned) marked MADV_DONTDUMP, as libsodium's
 * sodium_mlock does: the thread's stack mapping becomes three VMAs, the frames of
 * split_outer and split_inner in different ones. Then blocks in read(2) on a pipe nobody
 * writes (spin 0) or spins without a system call (spin 1); split_in 1 once there. */
NOIPA int split_inner(int spin)
{
	volatile unsigned char buf[16384];
	uintptr_t a = ((uintptr_t)buf + 4095) & ~(uintptr_t)4095;
	int r = 0;

	for (size_t i = 0; i < sizeof buf; i += 512)
		buf[i] = (unsigned char)i;	/* touched: the pages exist */
	if (madvise((void *)a, 8192, MADV_DONTDUMP) < 0)
		count(&errors);
	atomic_store(&split_in, 1);
	if (spin) {
		while (!common_stopping())
			count(&split_spins);
	} else {
		r = read_byte(split_fd);
	}
	return r + buf[100];	/* after the call: no tail call */
}

/* F: its frame is above split_inner's 16 KiB, past the split. */
NOIPA int split_outer(int spin)
{
	volatile int after;
	int r = split_inner(spin);

	after = r;
	return after;
}

static void *splitter_main(void *arg)
{
	name_self(arg ? "splitspin" : "splitsleep");
	common_thread_started();
	split_outer(arg != NULL);
	return NULL;
}

/* --- timer: gate after each byte; timespin.o's gate_patched spins in time_spin ------------- */

static int time_stop_fd;
static counter_t time_stop_gen;	/* bytes read from the --time-stop FIFO */

NOIPA int gate(int fd)
{
	count(&gate_old);
	return fd < 0 ? -1 : 0;
}

/* time() is libc's, called through the PLT; glibc's time calls the vDSO's: the thread is
 * in the vDSO much of the time, never in a system call. Runs until the next stop byte. */
NOIPA void time_spin(void)
{
	uint64_t gen = atomic_load(&time_stop_gen);

	atomic_store(&time_spinning, 1);
	while (atomic_load(&time_stop_gen) == gen && !common_stopping()) {
		stale_sink = (uintptr_t)time(NULL);
		count(&time_loops);
	}
	atomic_store(&time_spinning, 0);
}

static void *timer_main(void *arg)
{
	int fd = (int)(intptr_t)arg;

	name_self("timer");
	common_thread_started();
	while (read_byte(fd) >= 0) {
		count(&gate_calls);
		if (gate(fd) < 0)
			count(&errors);
		scrub_stack();	/* no stale return address into the patch */
		count(&gate_returns);
	}
	return NULL;
}

static void *tstop_main(void *arg)
{
	(void)arg;
	name_self("tstop");
	common_thread_started();
	while (read_byte(time_stop_fd) >= 0)
		count(&time_stop_gen);
	return NULL;
}

/* --- altsig: a raw SA_RESTORER handler on a sigaltstack over the leaf alt_leaf ------------- */

/* The daemon's own restorer (not glibc's __restore_rt): rt_sigreturn, nothing else. */
void insided_restorer(void);
__asm__(".text\n"
	".globl insided_restorer\n"
	".type insided_restorer, @function\n"
	"insided_restorer:\n"
	"	xor %eax, %eax\n"
	"	mov $15, %al\n"
	"	syscall\n"
	".size insided_restorer, .-insided_restorer\n");

static _Atomic pid_t alt_tid;

/* L: spins without a call; SIGUSR2 comes here, its saved PC in this function. */
NOIPA void alt_leaf(void)
{
	volatile unsigned long spins = 0;

	atomic_store(&alt_spinning, 1);
	while (!common_stopping())
		spins++;
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	struct timespec ts = { .tv_sec = 3600 }, rem;

	(void)sig;
	(void)uc;
	if (si->si_code != SI_TKILL || si->si_pid != tgid) {
		count(&signals_other);
		errno = saved;
		return;
	}
	count(&alt_handled);
	stack_t ss;
	if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
		atomic_store(&alt_on_stack, 1);
	atomic_store(&alt_in_handler, 1);
	while (nanosleep(&ts, &rem) < 0) {
		if (errno != EINTR) {
			count(&errors);
			break;
		}
		count(&eintr);
		ts = rem;
	}
	atomic_store(&alt_in_handler, 0);
	errno = saved;
}

/* The kernel's struct sigaction for rt_sigaction(2) on x86-64. */
struct ksigaction {
	void (*handler)(int, siginfo_t *, void *);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};
#define K_SA_RESTORER 0x04000000UL

static void *altsig_main(void *arg)
{
	static unsigned char altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	struct ksigaction ka = {
		.handler = on_usr2,
		.flags = SA_SIGINFO | SA_ONSTACK | K_SA_RESTORER,
		.restorer = insided_restorer,
		.mask = 1ULL << (SIGUSR2 - 1),
	};
	sigset_t set;

	(void)arg;
	name_self("altsig");
	if (sigaltstack(&ss, NULL) < 0)
		die("sigaltstack: %s", strerror(errno));
	if (syscall(SYS_rt_sigaction, SIGUSR2, &ka, NULL, 8) < 0)
		die("rt_sigaction: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	atomic_store(&alt_tid, (pid_t)syscall(SYS_gettid));
	common_thread_started();
	alt_leaf();
	return NULL;
}

/* One SIGUSR2, once altsig spins in alt_leaf. */
static void *altkick_main(void *arg)
{
	(void)arg;
	name_self("altkick");
	common_thread_started();
	while (!atomic_load(&alt_spinning))
		nap_ms(1);
	nap_ms(5);
	if (syscall(SYS_tgkill, tgid, atomic_load(&alt_tid), SIGUSR2) < 0)
		count(&errors);
	return NULL;
}

/* --- nosize: an asm function without .size, over a C function that blocks ---------------- */

static int nosize_fd;

NOIPA int nosize_sleep(void)
{
	int r;

	atomic_store(&nosize_in, 1);
	r = read_byte(nosize_fd);
	stale_sink = (uintptr_t)r;	/* after the call: no tail call */
	return r;
}

/* nosize_fn: a real frame (the call returns into it) but st_size 0 in .symtab. */
int nosize_fn(void);
__asm__(".text\n"
	".globl nosize_fn\n"
	".type nosize_fn, @function\n"
	"nosize_fn:\n"
	"	endbr64\n"
	"	sub $8, %rsp\n"
	"	call nosize_sleep\n"
	"	add $8, %rsp\n"
	"	ret\n");

static void *nosize_main(void *arg)
{
	(void)arg;
	name_self("nosize");
	common_thread_started();
	nosize_fn();
	return NULL;
}

/* --- options, main ------------------------------------------------------------------------- */

enum {
	OPT_SPINNERS = 256, OPT_PIPE_READER, OPT_WAKE, OPT_RECURSION, OPT_DEPTH, OPT_DEEP_POLL,
	OPT_SIGNAL_INSIDE, OPT_SIG_MS, OPT_HANDLER_MS, OPT_HANDLER_SPIN, OPT_TAIL, OPT_STALE,
	OPT_WAITER, OPT_SPLIT_SLEEP, OPT_SPLIT_SPIN, OPT_TIME_SPIN, OPT_TIME_STOP, OPT_ALTSIG,
	OPT_NOSIZE,
};

static void wait_flag(counter_t *flag, bool wanted)
{
	while (wanted && !atomic_load(flag))
		nap_ms(1);
}

static int parse_long(const char *arg, long *out, long min, long max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (!*arg || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int handle(int val, const char *arg)
{
	long v;

	switch (val) {
	case OPT_SPINNERS:
		if (parse_long(arg, &v, 0, 256))
			return -1;
		spinners = (int)v;
		return 0;
	case OPT_PIPE_READER:
		want_reader = true;
		return 0;
	case OPT_WAKE:
		wake_path = arg;
		return 0;
	case OPT_RECURSION:
		want_recursion = true;
		return 0;
	case OPT_DEPTH:
		if (parse_long(arg, &v, 0, 1000))
			return -1;
		depth = (int)v;
		return 0;
	case OPT_DEEP_POLL:
		want_poll = true;
		return 0;
	case OPT_SIGNAL_INSIDE:
		want_signal = true;
		return 0;
	case OPT_SIG_MS:
		return parse_long(arg, &sig_ms, 0, 3600000);
	case OPT_HANDLER_MS:
		return parse_long(arg, &handler_ms, 0, 86400000);
	case OPT_HANDLER_SPIN:
		handler_spin_mode = true;
		return 0;
	case OPT_TAIL:
		want_tail = true;
		return 0;
	case OPT_STALE:
		want_stale = true;
		return 0;
	case OPT_WAITER:
		waiter_path = arg;
		return 0;
	case OPT_SPLIT_SLEEP:
		want_split_sleep = true;
		return 0;
	case OPT_SPLIT_SPIN:
		want_split_spin = true;
		return 0;
	case OPT_TIME_SPIN:
		time_spin_path = arg;
		return 0;
	case OPT_TIME_STOP:
		time_stop_path = arg;
		return 0;
	case OPT_ALTSIG:
		want_altsig = true;
		return 0;
	case OPT_NOSIZE:
		want_nosize = true;
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "spinners", required_argument, NULL, OPT_SPINNERS },
		{ "pipe-reader", no_argument, NULL, OPT_PIPE_READER },
		{ "wake", required_argument, NULL, OPT_WAKE },
		{ "recursion", no_argument, NULL, OPT_RECURSION },
		{ "depth", required_argument, NULL, OPT_DEPTH },
		{ "deep-poll", no_argument, NULL, OPT_DEEP_POLL },
		{ "signal-inside", no_argument, NULL, OPT_SIGNAL_INSIDE },
		{ "sig-ms", required_argument, NULL, OPT_SIG_MS },
		{ "handler-ms", required_argument, NULL, OPT_HANDLER_MS },
		{ "handler-spin", no_argument, NULL, OPT_HANDLER_SPIN },
		{ "tail", no_argument, NULL, OPT_TAIL },
		{ "stale", no_argument, NULL, OPT_STALE },
		{ "waiter", required_argument, NULL, OPT_WAITER },
		{ "split-sleep", no_argument, NULL, OPT_SPLIT_SLEEP },
		{ "split-spin", no_argument, NULL, OPT_SPLIT_SPIN },
		{ "time-spin", required_argument, NULL, OPT_TIME_SPIN },
		{ "time-stop", required_argument, NULL, OPT_TIME_STOP },
		{ "altsig", no_argument, NULL, OPT_ALTSIG },
		{ "nosize", no_argument, NULL, OPT_NOSIZE },
		{ 0 },
	};
	pthread_t spin[256], t;
	int n = 0;
	struct sigaction sa;
	sigset_t set;

	common_init(argc, argv, extra, handle,
		    "  --spinners N      N threads calling compute in a loop (default 0)\n"
		    "  --pipe-reader     a thread blocked in wait_in's read on --wake FIFO\n"
		    "  --wake FIFO       one byte: the reader leaves wait_in for good\n"
		    "  --recursion       a thread blocked under --depth N (20) frames of recurse\n"
		    "  --deep-poll       a thread in outer_poll -> middle -> poll\n"
		    "  --signal-inside   a thread in sig_body, SIGUSR1 every --sig-ms MS (5), its\n"
		    "                    handler sleeping --handler-ms MS (3600000), or spinning\n"
		    "                    with --handler-spin\n"
		    "  --tail            tail_entry jumps to tail_target, blocked in read\n"
		    "  --stale           a running thread holding a stale return address into\n"
		    "                    stale_src\n"
		    "  --waiter FIFO     a thread calling waiter after each byte of FIFO\n"
		    "  --split-sleep     split_outer -> split_inner splits its stack, blocks\n"
		    "  --split-spin      the same, spinning instead\n"
		    "  --time-spin FIFO  a thread calling gate after each byte of FIFO\n"
		    "  --time-stop FIFO  each byte ends a time_spin (with --time-spin)\n"
		    "  --altsig          SIGUSR2 (raw SA_RESTORER, sigaltstack) over alt_leaf\n"
		    "  --nosize          a thread blocked under nosize_fn (asm, no .size)\n",
		    0);
	if (want_reader && !wake_path)
		die("insided: --pipe-reader needs --wake FIFO");
	if (!time_spin_path != !time_stop_path)
		die("insided: --time-spin and --time-stop go together");
	if (wake_path && !want_reader)
		want_reader = true;
	tgid = getpid();

	status_add("old_calls", &calls_compute);	/* the same counter as calls_compute */
	status_add("new_calls", &new_calls);
	status_add("eintr", &eintr);
	status_add("errors", &errors);
	status_add("reader_in", &reader_in);
	status_add("reader_left", &reader_left);
	status_add("out_bytes", &out_bytes);
	status_add("wait_in_v2_calls", &wait_in_v2_calls);
	status_add("recurse_bottom", &recurse_bottom);
	status_add("poller_in", &poller_in);
	status_add("sig_body_entries", &sig_body_entries);
	status_add("signals_sent", &signals_sent);
	status_add("signals_handled", &signals_handled);
	status_add("in_handler", &in_handler);
	status_add("signals_other", &signals_other);
	status_add("tail_entries", &tail_entries);
	status_add("tail_in", &tail_in);
	status_add("stale_armed", &stale_armed);
	status_add("stale_value", &stale_value);
	status_add("lw_bytes", &lw_bytes);
	status_add("waiter_calls", &waiter_calls);
	status_add("waiter_returns", &waiter_returns);
	status_add("waiter_old", &waiter_old);
	status_add("patched_entered", &patched_entered);
	status_add("patched_bytes", &patched_bytes);
	status_add("split_in", &split_in);
	status_add("split_spins", &split_spins);
	status_add("gate_calls", &gate_calls);
	status_add("gate_returns", &gate_returns);
	status_add("gate_old", &gate_old);
	status_add("gate_entered", &gate_entered);
	status_add("gate_left", &gate_left);
	status_add("time_loops", &time_loops);
	status_add("time_spinning", &time_spinning);
	status_add("alt_spinning", &alt_spinning);
	status_add("alt_handled", &alt_handled);
	status_add("alt_in_handler", &alt_in_handler);
	status_add("alt_on_stack", &alt_on_stack);
	status_add("nosize_in", &nosize_in);

	/* SIGUSR1 reaches sigger only (it unblocks it); the handler runs with it blocked. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);	/* altsig unblocks it for itself */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));

	for (int i = 0; i < spinners; i++, n++)
		common_thread_create(&spin[i], spinner_main, (void *)(intptr_t)i);
	if (want_reader) {
		common_thread_create(&t, reader_main, (void *)(intptr_t)open_fifo(wake_path));
		n++;
	}
	if (want_recursion) {
		recurse_fd = dead_pipe();
		common_thread_create(&t, recurser_main, NULL);
		n++;
	}
	if (want_poll) {
		poll_fd = dead_pipe();
		common_thread_create(&t, poller_main, NULL);
		n++;
	}
	if (want_signal) {
		common_thread_create(&t, sigger_main, NULL);
		common_thread_create(&t, kicker_main, NULL);
		n += 2;
	}
	if (want_tail) {
		tail_fd = dead_pipe();
		common_thread_create(&t, tail_main, NULL);
		n++;
	}
	if (want_stale) {
		common_thread_create(&t, stale_main, NULL);
		n++;
	}
	if (waiter_path) {
		common_thread_create(&t, lwaiter_main, (void *)(intptr_t)open_fifo(waiter_path));
		n++;
	}
	if (want_split_sleep || want_split_spin)
		split_fd = dead_pipe();
	if (want_split_sleep) {
		common_thread_create(&t, splitter_main, NULL);
		n++;
	}
	if (want_split_spin) {
		common_thread_create(&t, splitter_main, (void *)1);
		n++;
	}
	if (time_spin_path) {
		time_stop_fd = open_fifo(time_stop_path);
		common_thread_create(&t, timer_main, (void *)(intptr_t)open_fifo(time_spin_path));
		common_thread_create(&t, tstop_main, NULL);
		n += 2;
	}
	if (want_altsig) {
		common_thread_create(&t, altsig_main, NULL);
		common_thread_create(&t, altkick_main, NULL);
		n += 2;
	}
	if (want_nosize) {
		nosize_fd = dead_pipe();
		common_thread_create(&t, nosize_main, NULL);
		n++;
	}
	common_wait_started(n);
	/* Ready once every thread is where its mode puts it (the flag is set right before the
	 * blocking call: a test that needs the call itself polls /proc/PID/task/TID/syscall). */
	wait_flag(&reader_in, want_reader);
	wait_flag(&recurse_bottom, want_recursion);
	wait_flag(&poller_in, want_poll);
	wait_flag(&in_handler, want_signal);
	wait_flag(&tail_in, want_tail);
	wait_flag(&stale_armed, want_stale);
	wait_flag(&split_in, want_split_sleep || want_split_spin);
	wait_flag(&alt_in_handler, want_altsig);
	wait_flag(&nosize_in, want_nosize);
	common_run();
	join_workers(spin, spinners);
	common_exit();
}
