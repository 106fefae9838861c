/* sleepd: the cheap process of the fleet dry run (run.c --only fleet). Holds compute and
 * compute_v2 (the pair the fleet rows plan, as in test/daemons/counterd), calls compute once,
 * says it is ready by writing one byte to stdout, then sleeps in pause() until a signal ends
 * it: one thread, no wakeups, so 500 of them cost the machine nothing while the planner
 * looks at each.
 *
 *   sleepd          (stdout: a pipe the harness reads, one byte per process)
 */
#include <stdatomic.h>
#include <unistd.h>

static _Atomic unsigned long calls_compute, calls_compute_v2;

/* noipa: a real call, a real function body at a symbol of its own (as in counterd). */
__attribute__((noipa, noinline, used)) int compute(int x)
{
	atomic_fetch_add_explicit(&calls_compute, 1, memory_order_relaxed);
	return x * 2 + 1;
}

__attribute__((noipa, noinline, used)) int compute_v2(int x)
{
	atomic_fetch_add_explicit(&calls_compute_v2, 1, memory_order_relaxed);
	return x * 3 + 7;
}

int main(void)
{
	if (compute(20) != 41 || write(1, "r", 1) != 1)
		return 1;
	close(1);
	for (;;)
		pause();
}
