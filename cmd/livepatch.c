/* livepatch: parse the command line, then hand over to the library. */
#include "args.h"
#include "livepatch.h"

int main(int argc, char **argv)
{
	struct lp_options o;
	int ret = args_parse(argc, argv, &o);

	if (ret < 0)
		ret = livepatch_many(&o) ? livepatch_run_many(&o) : livepatch_run(&o);
	args_free(&o);
	return ret;
}
