/* switch: classify with a dense switch of 10 cases, each a different operation, so that
 * compilers make a jump table (in .rodata: relocations against .text; PC32 entries when
 * position-independent) rather than a lookup table of values. Fixes case 7. */
#include "patchd.h"

int classify_fixed(int c, int x)
{
	note_fixed_call(PATCH_VERSION);
	switch (c) {
	case 0: return x + 1;
	case 1: return x * 3;
	case 2: return x ^ 0x55;
	case 3: return x - 7;
	case 4: return x << 2;
	case 5: return x >> 1;
	case 6: return ~x;
	case 7: return x * x;
	case 8: return x | 1;
	case 9: return x & 0xff;
	default: return -1;
	}
}
