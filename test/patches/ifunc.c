/* Refused, exit 5: an IFUNC defined in the patch (STT_GNU_IFUNC: its resolver would
 * have to run in the process). */
#include "patchd.h"

static int handle_plain(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	return patchd_fixed(p, n);
}

typedef int handler(const char *, int);

static handler *resolve_handler(void)
{
	return handle_plain;
}

int handle_request_fixed(const char *p, int n) __attribute__((ifunc("resolve_handler")));
