/*
 * /proc/PID/stat lines (proc_stat_field): comm holds anything the program set,
 * spaces, parentheses and ") (" included. Every field found lies inside the line.
 */
#include <stdlib.h>
#include <string.h>
#include "proc.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *stat = f_string(data, size);
	size_t len = strlen(stat);

	for (int n = -1; n <= 60; n++) {
		const char *f = proc_stat_field(stat, n);
		if (f && (f < stat || f > stat + len))
			abort();
	}
	free(stat);
	return 0;
}
