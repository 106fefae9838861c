/* pinned: checksum is a static of patchd twice (patchd.c, patchd_aux.c) and an export of
 * libpatchd.so; LIVEPATCH_BIND binds it to the library's, whose calls the library counts
 * (lib_checksum_calls). A second pin, of note_fixed_call to the program, shows the macro
 * used twice in a file. */
#include <livepatch/patch.h>
#include "patchd.h"

int checksum(const char *p, int n);
LIVEPATCH_BIND(checksum, "libpatchd.so");
LIVEPATCH_BIND(note_fixed_call, "patchd");

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	if (patchd_bad(n))
		return PATCHD_EBAD;
	return checksum(p, n) + n;
}
