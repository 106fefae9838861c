/*
 * /proc/PID/status texts (proc_status_value): the keys livepatch asks for, and the
 * input's first line as a key of its own. A value found lies inside the text.
 */
#include <stdlib.h>
#include <string.h>
#include "proc.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
	"Name", "State", "Tgid", "Pid", "PPid", "TracerPid", "Uid", "Threads", "CapEff", "",
};

static void lookup(const char *status, size_t len, const char *key)
{
	const char *v = proc_status_value(status, key);

	if (v && (v < status || v > status + len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t klen = nl ? (size_t)(nl - data) : 0;
	char *key = f_string(data, klen);
	char *status = f_string(data + (nl ? klen + 1 : 0), size - (nl ? klen + 1 : 0));
	size_t len = strlen(status);

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		lookup(status, len, keys[i]);
	lookup(status, len, key);
	free(key);
	free(status);
	return 0;
}
