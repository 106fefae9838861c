/* Refused, exit 5: thread-local storage (a .tbss section, an STT_TLS symbol); a loaded
 * patch has no TLS block in the threads that already run. */
#include "patchd.h"

static __thread int depth;

int handle_request_fixed(const char *p, int n)
{
	depth++;
	note_fixed_call(depth > 0 ? PATCH_VERSION : 0);
	if (patchd_bad(n))
		return PATCHD_EBAD;
	return patchd_header(p, n) + n;
}
