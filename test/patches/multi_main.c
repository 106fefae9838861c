/* multi: the fix, calling patch_header from the other loaded object (multi_helper.c). */
#include "patchd.h"

int patch_header(const char *p, int n);

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	if (patchd_bad(n))
		return PATCHD_EBAD;
	return patch_header(p, n) + n;
}
