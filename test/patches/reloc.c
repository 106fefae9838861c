/* Refused, exit 5: a relocation type the loader does not handle, R_X86_64_SIZE32 (the
 * size of note_fixed_call, from `.long SYMBOL@SIZE`); the error names the type. */
#include "patchd.h"

__asm__(".pushsection .rodata\n\t"
	".globl fixed_call_size\n"
	"fixed_call_size:\n\t"
	".long note_fixed_call@SIZE\n\t"
	".popsection");

int handle_request_fixed(const char *p, int n)
{
	note_fixed_call(PATCH_VERSION);
	return patchd_fixed(p, n);
}
