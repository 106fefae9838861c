/*
 * The patch test/stress.sh loads every cycle (LP_STRESS_LOAD=1): replacements for the
 * functions the stress cycles patch, with compute_v2's formula, counted where the
 * daemons count their v2 (common.h: check_result accepts x*2+1 and x*3+7). Built with
 * -fPIC: counterd alone has calls_compute_slow_v2, and a weak reference that stays
 * unbound (0) must go through the GOT.
 */
#include <stdatomic.h>

extern _Atomic unsigned long calls_compute_v2;
extern _Atomic unsigned long calls_compute_slow_v2 __attribute__((weak));

int compute_loaded(int x)
{
	atomic_fetch_add_explicit(&calls_compute_v2, 1, memory_order_relaxed);
	return x * 3 + 7;
}

int compute_slow_loaded(int x)
{
	atomic_fetch_add_explicit(&calls_compute_slow_v2, 1, memory_order_relaxed);
	return x * 3 + 7;
}
