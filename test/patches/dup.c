/* Refused, exit 4: pinned.c without its pin. patchd has two static functions named
 * checksum (patchd.c, patchd_aux.c): the error names both candidates. */
#include "patchd.h"

int checksum(const char *p, int n);

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	if (patchd_bad(n))
		return PATCHD_EBAD;
	return checksum(p, n) + n;
}
