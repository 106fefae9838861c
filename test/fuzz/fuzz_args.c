/*
 * The command line (args_parse, as main() calls it): the input is argv after
 * "livepatch", split on NUL bytes. Errors, --help and --version print on stdout,
 * which goes to /dev/null here.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 512

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	f_quiet_stdout();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[MAX_ARGS + 2];
	struct lp_options o;
	int argc = 0;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;
	argv[argc++] = "livepatch";
	for (char *p = buf; p < buf + size && argc <= MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	optind = 0;	/* getopt_long starts afresh */
	int ret = args_parse(argc, argv, &o);
	/* Going on means a runnable request: a process, and one thing to do with it. */
	if (ret < 0 && (o.pid <= 0 || o.nfuncs != o.ntargets))
		abort();
	args_free(&o);
	free(buf);
	return 0;
}
