/* lib: a fix for libsample.so's compute (daemon counterd-lib), F in a library. It calls
 * compute_v2, bound in the object that holds F (libsample.so), whose count is the
 * daemon's calls_compute_v2. (Not the counter itself: counterd-lib holds a copy of it,
 * R_X86_64_COPY, and libsample.so's own storage is no longer the one counted.) */
int compute_v2(int x);

int compute_fixed(int x)
{
	return compute_v2(x);
}
