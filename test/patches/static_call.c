/* static_call: the fix calls the program's static parse_header, a local symbol that
 * only patchd's .symtab has (bound "local"; on patchd-stripped: not found, exit 4).
 * Built as v1/fix.o and v2/fix.o too, with -DPATCH_VERSION=1 and 2 (calls_new_v2). */
#include "patchd.h"

int parse_header(const char *p, int n);

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	if (patchd_bad(n))
		return PATCHD_EBAD;
	return parse_header(p, n) + n;
}
