/* libpatchd.so, linked into patchd: exports checksum, a name patchd also has twice as a
 * static. The pinned patch (test/patches/pinned.c) binds checksum to this one, whose
 * calls are counted here (patchd reports lib_checksum_calls). */
#include <stdatomic.h>
#include "patchd.h"

_Atomic unsigned long lib_checksum_calls;

int checksum(const char *p, int n);

__attribute__((noipa)) int checksum(const char *p, int n)
{
	atomic_fetch_add_explicit(&lib_checksum_calls, 1, memory_order_relaxed);
	return patchd_header(p, n);
}
