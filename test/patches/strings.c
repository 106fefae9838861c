/* strings: the fix passes string literals (.rodata.str1.1, a mergeable section) to the
 * program's note_reject, which compares them with what it expects (notes_ok, else
 * wrong): the strings must arrive intact, at the right offsets of their section. */
#include "patchd.h"

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	if (n <= 0) {
		note_reject(n, "request too short");
		return PATCHD_EBAD;
	}
	if (n > PATCHD_MAX) {
		note_reject(n, "request too long");
		return PATCHD_EBAD;
	}
	return patchd_header(p, n) + n;
}
