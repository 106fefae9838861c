/* libsample.so: compute, compute_v2 and their counters (compute.c), plus sample_dup,
 * also defined in counterd-lib, for "ambiguous symbol" tests. */
#include "compute.c"

__attribute__((noipa, used)) int sample_dup(int x)
{
	return x + 1;
}
