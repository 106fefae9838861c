/* bss: the fix keeps state of its own in .bss (16 KiB: more than a page, so all of it
 * must be mapped and zero): it counts the bad requests it rejected and reports each new
 * count to the program's note_count. The smallest count reported is 1 only if the
 * counter started at zero. */
#include "patchd.h"

static unsigned long state[2048];

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	if (patchd_bad(n)) {
		note_count(__atomic_add_fetch(&state[2047], 1, __ATOMIC_RELAXED));
		return PATCHD_EBAD;
	}
	return patchd_header(p, n) + n;
}
