/* insided's contract with test/patches/sleeper.c (livepatch --unload, unload.bats): the
 * function the patch replaces, the patch's function, and what the patch reports through
 * the daemon. Included by insided.c and by sleeper.c; nothing else needed. */
#ifndef LP_INSIDED_H
#define LP_INSIDED_H

/* F: called by the thread lwaiter after each byte it reads from the --waiter FIFO. The
 * daemon's own version returns at once (counts waiter_old). */
int waiter(int fd);

/* G, in sleeper.o: blocks in read(2) on fd for one more byte, like wait_in, so the thread
 * that calls it sleeps inside the loaded patch until the test writes that byte. */
int wait_in_patched(int fd);

/* --time-spin (test/patches/timespin.c, unload.bats): F2, called by the thread "timer"
 * after each byte of its FIFO; the daemon's version returns at once (gate_old). */
int gate(int fd);

/* G2, in timespin.o: calls time_spin, so the thread spins inside the loaded patch. */
int gate_patched(int fd);

/* The daemon's spin: time(NULL) (libc through the PLT, then the vDSO: no system call) in a
 * loop, each turn counted (time_loops), until a byte on the --time-stop FIFO. */
void time_spin(void);

/* What the patch tells the daemon (status keys in parentheses). */
enum insided_note {
	INSIDED_ENTERED = 1,	/* wait_in_patched was entered (patched_entered) */
	INSIDED_BYTE,		/* it read its byte and returns (patched_bytes) */
	INSIDED_EINTR,		/* its read returned EINTR (eintr) */
	INSIDED_ERROR,		/* any other failure (errors) */
	INSIDED_SPIN_ENTERED,	/* gate_patched was entered (gate_entered; --time-spin) */
	INSIDED_SPIN_LEFT,	/* time_spin returned to it, which returns (gate_left) */
};
void insided_note(int what);

#endif
