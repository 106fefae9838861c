/* multi: two objects loaded by one command (--load multi_helper.o --load multi_main.o).
 * This one defines what the other calls: patch_header, bound "patch" (to a loaded
 * patch), not to anything of the program. */
#include "patchd.h"

int patch_header(const char *p, int n);

__attribute__((noinline)) int patch_header(const char *p, int n)
{
	return patchd_header(p, n);
}
