/*
 * The command line of livepatch: parsed into struct lp_options (livepatch.h), with
 * a usage error (exit 2, JSON with --json) for anything the command cannot run.
 */
#ifndef LP_ARGS_H
#define LP_ARGS_H

#include "livepatch.h"
#include "lp.h"

/*
 * Parse @argc, @argv into @o (its lists allocated: args_free() after): -1 to go on and
 * run, else the exit code, the error or --help/--version already printed on stdout.
 * getopt_long() keeps its place in optind: set it to 0 before parsing again.
 */
int args_parse(int argc, char **argv, struct lp_options *o) LP_MUST_CHECK;
/* Free what args_parse() allocated, whatever it returned. */
void args_free(struct lp_options *o);

#endif
