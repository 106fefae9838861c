/* Refused, exit 4: two names no object has; the error lists both at once, and for the
 * misspelt one suggests note_fixed_call. */
#include "patchd.h"

int no_such_function(int n);
void note_fixed_cal(int version);

int handle_request_fixed(const char *p, int n)
{
	note_fixed_cal(PATCH_VERSION);
	if (patchd_bad(n))
		return no_such_function(n);
	return patchd_header(p, n) + n;
}
