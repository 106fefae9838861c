/* fptrs: pick through a const table of pointers to the patch's own functions: absolute
 * addresses (R_X86_64_64) in .data.rel.ro(.local), which must hold the loaded addresses.
 * Fixes ops[5]. */
#include "patchd.h"

static int op_add(int x) { return x + 5; }
static int op_sub(int x) { return x - 5; }
static int op_mul(int x) { return x * 5; }
static int op_div(int x) { return x / 5; }
static int op_mod(int x) { return x % 5; }
static int op_xor(int x) { return x ^ 5; }
static int op_shl(int x) { return x << 5; }
static int op_neg(int x) { return -x; }

static int (*const ops[8])(int) = { op_add, op_sub, op_mul, op_div,
				     op_mod, op_xor, op_shl, op_neg };

int pick_fixed(int i, int x)
{
	note_fixed_call(PATCH_VERSION);
	return ops[i & 7](x);
}
