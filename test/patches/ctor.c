/* Refused, exit 5: a constructor (.init_array), which nothing would run. */
#include "patchd.h"

static int ready;

__attribute__((constructor)) static void init(void)
{
	ready = 1;
}

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(ready ? PATCH_VERSION : 0);
	if (patchd_bad(n))
		return PATCHD_EBAD;
	return patchd_header(p, n) + n;
}
