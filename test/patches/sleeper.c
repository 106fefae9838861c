/* sleeper: for insided (test/daemons/insided.c, unload.bats). Replaces waiter, which the
 * thread lwaiter calls after each byte it reads from its FIFO, by a function that reads
 * one more byte: after each byte the thread sleeps in read(2) with its return address in
 * this patch's text, until the test writes the next one. `--unload sleeper.o` must be
 * refused meanwhile (the thread is inside the loaded code) and succeed once it left. */
#include <errno.h>
#include <unistd.h>
#include "insided.h"

int wait_in_patched(int fd)
{
	unsigned char b;

	insided_note(INSIDED_ENTERED);
	for (;;) {
		ssize_t n = read(fd, &b, 1);

		if (n == 1) {
			insided_note(INSIDED_BYTE);	/* after the call: no tail call */
			return 0;
		}
		if (n < 0 && errno == EINTR) {
			insided_note(INSIDED_EINTR);
			continue;
		}
		insided_note(INSIDED_ERROR);
		return -1;
	}
}
