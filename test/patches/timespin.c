/* timespin: for insided --time-spin (test/daemons/insided.c, unload.bats). Replaces gate,
 * which the thread timer calls after each byte of its FIFO, by a function that calls the
 * daemon's time_spin: the thread then spins in time() (libc, then the vDSO) with a return
 * address in this patch's text, running, never in a system call, until the test writes a
 * byte to the --time-stop FIFO. `--where gate_patched` must list it every time, and
 * `--unload timespin.o` must be refused meanwhile and succeed once it left. */
#include "insided.h"

int gate_patched(int fd)
{
	insided_note(INSIDED_SPIN_ENTERED);
	time_spin();
	insided_note(INSIDED_SPIN_LEFT);	/* after the call: no tail call */
	return fd < 0 ? -1 : 0;
}
