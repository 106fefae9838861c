/*
 * The classic BPF interpreter (seccomp_run) on filters a target process installed:
 * the input is the call (nr, six arguments, ip: 64 bytes) then the instructions.
 */
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include "seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long call[8] = { 0 };	/* nr, args[6], ip */
	size_t head = size < sizeof(call) ? size : sizeof(call);

	memcpy(call, data, head);
	size_t n = (size - head) / sizeof(struct sock_filter);
	/* A copy of exactly n instructions: ASan sees a read past the program's end. */
	struct sock_filter *prog = malloc(n ? n * sizeof(*prog) : 1);
	if (!prog)
		abort();
	memcpy(prog, data + head, n * sizeof(*prog));
	uint32_t r = seccomp_run(prog, n, call[0], call + 1, (uint64_t)call[7]);
	if (!seccomp_action_name(r))
		abort();
	(void)seccomp_runs(seccomp_combine(r, SECCOMP_RET_ALLOW));
	free(prog);
	return 0;
}
