/* static_var: the fix reads the program's static bad_request_code (the value it must
 * return: a wrong address gives a wrong result) and increments its static requests_seen
 * (only this patch does, so requests_seen grows while the old code is idle). Both are
 * local symbols of patchd's .symtab; PC32 references, GOTPCRELX with -fPIC. */
#include <stdatomic.h>
#include "patchd.h"

extern _Atomic unsigned long requests_seen;
extern volatile int bad_request_code;

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	atomic_fetch_add_explicit(&requests_seen, 1, memory_order_relaxed);
	if (patchd_bad(n))
		return bad_request_code;
	return patchd_header(p, n) + n;
}
