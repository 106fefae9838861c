/* Refused, exit 5: built for another architecture (clang --target=aarch64-linux-gnu);
 * no header, so that no cross-compiled libc is needed. */
int handle_request_fixed(const char *p, int n);

int handle_request_fixed(const char *p, int n)
{
	return n <= 0 || n > 8192 ? -22 : p[0] + n;
}
