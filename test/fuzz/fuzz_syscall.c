/* /proc/PID/task/TID/syscall lines (proc_syscall_parse): any bytes, never a crash. */
#include <stdlib.h>
#include "proc.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = f_string(data, size);
	struct lp_syscall s;

	/* A line it takes is one of the kernel's shapes: "running" knows no call. */
	if (!proc_syscall_parse(line, &s) && s.running && (s.nr || s.sp || s.pc))
		abort();
	free(line);
	return 0;
}
