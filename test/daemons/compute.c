/* The functions that get patched: compute -> compute_v2. Linked into every daemon, and
 * built alone as libsample.so for counterd-lib. Each counts its own calls at entry, so a
 * test sees which one runs; callers check every result (common.h: check_result).
 *
 * noipa: besides no inlining, no IPA (no constprop clones, no return-value propagation),
 * so every caller really executes `call compute` with the result unknown. */
#include "common.h"

counter_t calls_compute;
counter_t calls_compute_v2;

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
