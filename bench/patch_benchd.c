/*
 * The patch `make bench` loads into benchd (--load, the "livepatch --load" rows of
 * bench/run.c): G for f0000 with g0000's formula, counted where benchd counts its g calls,
 * so the workers' result checks pass whichever of f0000, g0000 or this one runs.
 * calls_g is a static of benchd: the binder finds it among the symbols of the object that
 * holds f0000.
 */
#include <stdatomic.h>

extern _Atomic unsigned long calls_g;

int g0000_loaded(int x)
{
	atomic_fetch_add_explicit(&calls_g, 1, memory_order_relaxed);
	return x * 3;
}
