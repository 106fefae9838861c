/* libc: the fix calls snprintf (libc's exported symbol, a plain function: not an IFUNC
 * like strlen or memcpy). libc is mapped far from where a patch near the program goes,
 * so the PLT32 call needs a veneer. Fixes format_id's zero padding. */
#include <stdio.h>
#include "patchd.h"

int format_id_fixed(int id, char *buf)
{
	note_fixed_call(PATCH_VERSION);
	return snprintf(buf, PATCHD_ID_LEN, "id-%06d", id);
}
