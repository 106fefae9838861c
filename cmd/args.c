/*
 * The command line of livepatch (args.h): options into struct lp_options, and every
 * usage error, reported as the command reports errors. Apart from main(), so that
 * the fuzzer runs the same code as the command.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "lp.h"
#include "report.h"

#define DEFAULT_TIMEOUT_MS 3000

static const char usage[] =
	"Usage: livepatch --pid PID --func F --target G [--func F2 --target G2 ...] [--dry-run]\n"
	"                 [--verify[=SECONDS]] [--safe] [--json]\n"
	"       livepatch --pid PID --load PATCH.o [--load P2.o ...] --func F --target G [...]\n"
	"       livepatch --pid PID --plan FILE|- [--dry-run] [--json]\n"
	"       livepatch --pid PID --revert F [--revert F2 ...] [--dry-run] [--verify[=SECONDS]] [--json]\n"
	"       livepatch --pid PID --revert-all [--unload] [--dry-run] [--json]\n"
	"       livepatch --pid PID --unload PATCH [--unload P2 ...] [--json]\n"
	"       livepatch --pid PID --where F [F2 ...] [--json]\n"
	"       livepatch --pid PID --list [--json]\n"
	"       livepatch --pid PID --symbols [PREFIX] [--json]\n"
	"       livepatch --all OBJECT|--all-build-id HEX|--exe PATH|--pid P1 --pid P2 ...\n"
	"                 [--exclude PID] [--jobs N] [--atomic] [--canary N] ACTION [--json]\n"
	"\n"
	"Redirect function F of a running x86-64 process to function G, live, without\n"
	"stopping the process: int3 over F's entry, then the jump, in three synchronized phases.\n"
	"\n"
	"What to patch:\n"
	"  -p, --pid PID         the process to patch\n"
	"  -f, --func F          the function to redirect: [OBJECT:]SYMBOL or 0xADDRESS\n"
	"  -t, --target G        the function F will jump to: [OBJECT:]SYMBOL or 0xADDRESS\n"
	"  -r, --revert F        restore F's original bytes from its mapped file\n"
	"      --plan FILE       patch every 'F G' line of FILE (- for stdin), '#' comments\n"
	"      --load PATCH.o    link the relocatable object PATCH.o (cc -c) into the process\n"
	"                        first; G may name its functions (NAME or PATCH.o:NAME); repeats\n"
	"      --revert-all      restore every function that holds a jump livepatch wrote\n"
	"                        (with --unload: and unmap every loaded patch)\n"
	"      --unload PATCH    revert every jump into the loaded patch PATCH (its name as\n"
	"                        --list shows it, or 0xBASE), then unmap it, once no thread\n"
	"                        runs in it or will return into it; repeats\n"
	"      --callsites       rewrite every direct 'call F' into 'call G' instead of F's entry\n"
	"                        (with --revert F: back to 'call F'); others are listed, left alone\n"
	"      --in OBJECT       with --callsites: only the calls inside OBJECT\n"
	"  --func/--target and --revert repeat: all pairs form one transaction, all or nothing.\n"
	"\n"
	"Many processes (each gets its own transaction; a line each, then a summary):\n"
	"  -p, --pid PID         given more than once: those processes\n"
	"      --all OBJECT      every process that maps the file OBJECT (a path: the same\n"
	"                        device and inode, so a container's own copy is another file)\n"
	"      --all-build-id HEX  every process that maps a file with this GNU build-id,\n"
	"                        containers included\n"
	"      --exe PATH        every process whose executable is the file PATH\n"
	"      --exclude PID     leave this process out; repeats\n"
	"      --jobs N          transactions at once (default: the number of CPUs)\n"
	"      --atomic          all or nothing: when one process fails, the ones patched are\n"
	"                        reverted (nothing starts if the plan refuses one)\n"
	"      --canary N        patch N processes first, with --verify; the rest only if all pass\n"
	"\n"
	"Inspect (read-only, nothing is attached):\n"
	"  -l, --list            list every function whose code differs from its file, and\n"
	"                        where it jumps now\n"
	"      --symbols [PREFIX]  list the function symbols, as OBJECT:SYMBOL\n"
	"      --where F [F2 ...]  which threads are inside F now (its PC, a return address or\n"
	"                        a signal frame), each with its backtrace; blocked threads are\n"
	"                        not woken (attaches for a moment, writes nothing)\n"
	"\n"
	"How:\n"
	"  -n, --dry-run         print the plan only; the process is not touched, not even attached\n"
	"      --timeout MS      give up and roll back when a sync takes longer (default 3000);\n"
	"                        with --safe or --unload, also how long threads may stay\n"
	"                        inside, from the first check (default 5000)\n"
	"      --safe            write the last byte only when no thread is inside a function\n"
	"                        being replaced (PC, return address, signal frame); retried\n"
	"                        until --timeout, then rolled back naming the threads (exit 6)\n"
	"      --verify[=SECONDS]  prove it with BPF: no breakpoint trap reached the program,\n"
	"                        the new code runs and the old does not (window default 1 s)\n"
	"      --verify-min-calls N  calls the window must see, else inconclusive (default 1)\n"
	"\n"
	"Output:\n"
	"  -j, --json            print exactly one JSON object on stdout (also on errors)\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print each protocol step with its time on stderr\n"
	"  -h, --help            show this help and exit\n"
	"  -V, --version         show the version and exit\n"
	"\n"
	"OBJECT is a mapped file's base name (counterd, libc.so.6) or its path.\n"
	"Exit codes: 0 done (or nothing to do), 1 internal error, 2 usage (a patch file unsafe\n"
	"to load), 3 process unusable, 4 symbol problem (a patch's name unresolved), 5 site or\n"
	"patch refused, 6 aborted and rolled back (also: --safe or --unload found a thread\n"
	"inside), 7 verification failed.\n"
	"See livepatch(8).\n";

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "func", required_argument, NULL, 'f' },
	{ "target", required_argument, NULL, 't' },
	{ "revert", required_argument, NULL, 'r' },
	{ "revert-all", no_argument, NULL, 'A' },
	{ "callsites", no_argument, NULL, 'C' },
	{ "in", required_argument, NULL, 'I' },
	{ "plan", required_argument, NULL, 'P' },
	{ "load", required_argument, NULL, 'L' },
	{ "list", no_argument, NULL, 'l' },
	{ "where", required_argument, NULL, 'W' },
	{ "safe", no_argument, NULL, 'F' },
	{ "unload", optional_argument, NULL, 'U' },
	{ "symbols", no_argument, NULL, 'S' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "verify", optional_argument, NULL, 'Y' },
	{ "verify-min-calls", required_argument, NULL, 'M' },
	{ "json", no_argument, NULL, 'j' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "all", required_argument, NULL, 'a' },
	{ "all-build-id", required_argument, NULL, 'B' },
	{ "exe", required_argument, NULL, 'E' },
	{ "exclude", required_argument, NULL, 'X' },
	{ "jobs", required_argument, NULL, 'J' },
	{ "atomic", no_argument, NULL, 'O' },
	{ "canary", required_argument, NULL, 'K' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const struct lp_options *o, const char *msg)
{
	struct lp_diag d = { .code = LP_EXIT_USAGE };

	snprintf(d.msg, sizeof(d.msg), "%s", msg);
	report_error(stdout, &d, LP_EXIT_USAGE, o->json);
	return LP_EXIT_USAGE;
}

static int parse_number(const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 3600)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The options of a run over many processes work together. -1 to go on, else the exit code. */
static int check_many(const struct lp_options *o)
{
	bool select = o->all || o->all_build_id || o->exe;

	if (select && o->npids)
		return usage_error(o, "give the processes either by --pid or by --all, --all-build-id "
				   "or --exe, not both (--exclude PID leaves one out)");
	if (!select && o->npids < 2 && (o->nexcludes || o->jobs || o->atomic || o->canary))
		return usage_error(o, "--exclude, --jobs, --atomic and --canary work over many processes: "
				   "select them with --all, --all-build-id, --exe or several --pid");
	if (!select && o->npids < 2)
		return -1;
	if (o->nwheres || o->symbols)
		return usage_error(o, "--where and --symbols look at one process: give a single --pid");
	if (o->plan_file && !strcmp(o->plan_file, "-"))
		return usage_error(o, "--plan - reads stdin once: over many processes, give the plan "
				   "in a file (--plan FILE)");
	if (o->canary && (o->dry_run || o->list))
		return usage_error(o, "--canary patches some processes first: it does not go with "
				   "--dry-run or --list (drop one of them)");
	bool patch = o->nfuncs || o->plan_file || o->nloads;
	if (o->atomic && !patch)
		return usage_error(o, "--atomic undoes a patch on every process if one fails; a "
				   "revert or an unload is not undone (drop --atomic)");
	if (o->atomic && o->dry_run)
		return usage_error(o, "--atomic guards writes; a --dry-run writes nothing (drop one "
				   "of them)");
	return -1;
}

/* The options given work together. Return -1 to go on, else the exit code. */
static int check_combination(const struct lp_options *o)
{
	int ret = check_many(o);

	if (ret >= 0)
		return ret;
	if (!o->pid && !o->all && !o->all_build_id && !o->exe)
		return usage_error(o, "--pid is required (e.g. livepatch --pid 4242 --func F --target G), "
				   "or --all OBJECT, --all-build-id HEX or --exe PATH for many processes");
	bool patch = o->nfuncs || o->ntargets || o->plan_file || o->nloads;
	bool unload = o->nunloads && !o->revert_all;
	if (o->list + o->symbols + patch + !!o->nreverts + o->revert_all + !!o->nwheres + unload > 1)
		return usage_error(o, "give one of --func/--target (or --plan), --revert, --revert-all, "
				   "--unload, --where, --list or --symbols (run them separately)");
	if (o->unload_all && !o->revert_all)
		return usage_error(o, "--unload takes a patch's name (as --list shows it): --unload "
				   "PATCH, or --revert-all --unload for every one");
	if (o->revert_all && o->nunloads)
		return usage_error(o, "--revert-all --unload unloads every patch: give no PATCH "
				   "(or use --unload PATCH alone)");
	if (o->safe && (o->list || o->symbols || o->nwheres))
		return usage_error(o, "--safe guards a patch, a revert or an unload; --list, "
				   "--symbols and --where write nothing (drop --safe)");
	if (o->safe && o->callsites)
		return usage_error(o, "--safe does not go with --callsites yet (patch F's entry, or "
				   "drop --safe)");
	if (o->nwheres && (o->dry_run || o->verify_s > 0 || o->callsites || o->in))
		return usage_error(o, "--where only reads: it takes no --dry-run, --verify, "
				   "--callsites or --in (drop them)");
	if (o->nunloads && !o->revert_all && (o->callsites || o->verify_s > 0))
		return usage_error(o, "--unload does not go with --callsites or --verify (drop them)");
	if (o->list || o->symbols || o->nwheres || unload)
		return -1;
	if (o->verify_s > 0 && o->dry_run)
		return usage_error(o, "--verify checks a patch that runs; it cannot go with --dry-run "
				   "(drop one of them)");
	if (o->nloads && !(o->nfuncs || o->plan_file))
		return usage_error(o, "--load links a patch for --func F --target G or --plan; give the "
				   "pair (with G in the patch)");
	if (o->nloads && o->callsites)
		return usage_error(o, "--load does not go with --callsites yet (patch F's entry: drop "
				   "--callsites)");
	if (o->in && !o->callsites)
		return usage_error(o, "--in OBJECT limits --callsites; add --callsites or drop --in");
	if (o->callsites && (o->verify_s > 0 || o->revert_all))
		return usage_error(o, "--callsites does not go with --verify or --revert-all yet (verify "
				   "or revert the call sites with --revert F --callsites)");
	if (o->nfuncs != o->ntargets)
		return usage_error(o, "give both --func F and --target G, as many of each, paired in order "
				   "(or --revert F; see livepatch --help)");
	if (!patch && !o->nreverts && !o->revert_all)
		return usage_error(o, "give both --func F and --target G, or --revert F (see livepatch --help)");
	return -1;
}

/* The options themselves; their lists are allocated by args_parse(). */
static int parse(int argc, char **argv, struct lp_options *o)
{
	long v;
	int c;

	for (int i = 1; i < argc; i++)	/* errors must be JSON whatever the option order */
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			o->json = true;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:f:t:r:lnjqvhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_number(optarg, 1, INT_MAX, &v))
				return usage_error(o, "--pid takes a process id, a positive number (see pgrep)");
			if (!o->npids)
				o->pid = (pid_t)v;
			o->pids[o->npids++] = (pid_t)v;
			break;
		case 'a': o->all = optarg; break;
		case 'B': o->all_build_id = optarg; break;
		case 'E': o->exe = optarg; break;
		case 'X':
			if (parse_number(optarg, 1, INT_MAX, &v))
				return usage_error(o, "--exclude takes a process id, a positive number (see "
						   "pgrep)");
			o->excludes[o->nexcludes++] = (pid_t)v;
			break;
		case 'J':
			if (parse_number(optarg, 1, 256, &v))
				return usage_error(o, "--jobs takes a number of transactions at once, 1 to 256 "
						   "(e.g. --jobs 4)");
			o->jobs = (unsigned int)v;
			break;
		case 'O': o->atomic = true; break;
		case 'K':
			if (parse_number(optarg, 1, INT_MAX, &v))
				return usage_error(o, "--canary takes how many processes go first, 1 or more "
						   "(e.g. --canary 2)");
			o->canary = (unsigned int)v;
			break;
		case 'f': o->funcs[o->nfuncs++] = optarg; break;
		case 't': o->targets[o->ntargets++] = optarg; break;
		case 'r': o->reverts[o->nreverts++] = optarg; break;
		case 'P': o->plan_file = optarg; break;
		case 'L':
			if (o->nloads == LP_MAX_LOADS)
				return usage_error(o, "--load repeats at most 16 times (link the objects "
						   "into one with ld -r)");
			o->loads[o->nloads++] = optarg;
			break;
		case 'A': o->revert_all = true; break;
		case 'C': o->callsites = true; break;
		case 'I': o->in = optarg; break;
		case 'l': o->list = true; break;
		case 'W': o->wheres[o->nwheres++] = optarg; break;
		case 'F': o->safe = true; break;
		case 'U':
			if (optarg)
				o->unloads[o->nunloads++] = optarg;
			else
				o->unload_all = true;	/* the names follow, or --revert-all */
			break;
		case 'S': o->symbols = true; break;
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'q': o->quiet = true; break;
		case 'v': o->verbose = true; break;
		case 'T':
			if (parse_number(optarg, 1, 600000, &v))
				return usage_error(o, "--timeout takes milliseconds, 1 to 600000 (e.g. --timeout 3000)");
			o->timeout_ms = (unsigned int)v;
			o->timeout_given = true;
			break;
		case 'Y':
			o->verify_s = 1.0;
			if (optarg && parse_seconds(optarg, &o->verify_s))
				return usage_error(o, "--verify takes seconds, more than 0 and at most 3600 "
						   "(e.g. --verify=2)");
			break;
		case 'M':
			if (parse_number(optarg, 0, 1000000000, &v))
				return usage_error(o, "--verify-min-calls takes a count, 0 or more (e.g. "
						   "--verify-min-calls 10)");
			o->verify_min_calls = (unsigned int)v;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("livepatch %s\n", LP_VERSION);
			return 0;
		case ':':
			return usage_error(o, "an option is missing its argument (see livepatch --help)");
		default:
			return usage_error(o, "unknown option (see livepatch --help)");
		}
	}
	if (o->symbols && optind < argc)
		o->prefix = argv[optind++];	/* --symbols [PREFIX] */
	while (o->nwheres && optind < argc)	/* --where F F2 ... */
		o->wheres[o->nwheres++] = argv[optind++];
	while (o->unload_all && !o->revert_all && optind < argc)	/* --unload PATCH */
		o->unloads[o->nunloads++] = argv[optind++];
	if (o->nunloads && o->unload_all && !o->revert_all)
		o->unload_all = false;
	if (optind < argc)
		return usage_error(o, "unexpected argument (options only; see livepatch --help)");
	return check_combination(o);
}

int args_parse(int argc, char **argv, struct lp_options *o)
{
	*o = (struct lp_options){ .timeout_ms = DEFAULT_TIMEOUT_MS, .verify_min_calls = 1 };
	/* Every --func, --target and --revert is one argument at least: argc bounds each list. */
	const char **lists = calloc(5 * (size_t)argc + LP_MAX_LOADS, sizeof(*lists));
	if (!lists)
		return LP_EXIT_INTERNAL;
	o->funcs = lists;
	o->targets = lists + argc;
	o->reverts = lists + 2 * argc;
	o->wheres = lists + 3 * argc;
	o->unloads = lists + 4 * argc;
	o->loads = lists + 5 * argc;
	o->pids = calloc(2 * (size_t)argc, sizeof(*o->pids));
	if (!o->pids)
		return LP_EXIT_INTERNAL;
	o->excludes = o->pids + argc;
	return parse(argc, argv, o);
}

void args_free(struct lp_options *o)
{
	free(o->funcs);
	o->funcs = NULL;
	free(o->pids);
	o->pids = NULL;
}
