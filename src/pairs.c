/*
 * Pairs: what the user asked to patch, as resolved functions. One pair, a
 * repeated --func/--target, a plan file, or --revert-all; all become one batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "inspect.h"
#include "livepatch.h"
#include "resolve.h"

static int grow(struct lp_pairs *ps, size_t *cap)
{
	if (ps->n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	struct lp_symbol *f = realloc(ps->f, ncap * sizeof(*f));
	if (f)
		ps->f = f;
	struct lp_symbol *g = realloc(ps->g, ncap * sizeof(*g));
	if (g)
		ps->g = g;
	if (!f || !g)
		return -ENOMEM;
	*cap = ncap;
	return 0;
}

static int add(struct lp_proc *p, struct lp_pairs *ps, size_t *cap, const char *fs, const char *gs,
	       struct lp_diag *d)
{
	int ret = grow(ps, cap);

	if (!ret)
		ret = resolve_function(p, fs, "function", &ps->f[ps->n], d);
	if (!ret && gs)
		ret = resolve_function(p, gs, "target", &ps->g[ps->n], d);
	if (!ret && gs && ps->f[ps->n].addr == ps->g[ps->n].addr)
		ret = lp_fail(d, LP_EXIT_USAGE, "the function and the target are the same (%s at 0x%" PRIx64
			      ") (give --target the replacement function)", fs, ps->f[ps->n].addr);
	if (!ret)
		ps->n++;
	return ret;
}

/* One "F G" pair a line; '#' starts a comment; blank lines are fine. */
static int read_plan_file(struct lp_proc *p, const char *path, struct lp_pairs *ps, size_t *cap,
			  struct lp_diag *d)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	char line[1200];
	int no = 0, ret = 0;

	if (!f)
		return lp_fail(d, LP_EXIT_USAGE, "cannot read plan file %s: %s (give a readable file, "
			       "or - for standard input)", path, strerror(errno));
	while (!ret && fgets(line, sizeof(line), f)) {
		char a[512], b[512], extra[2];
		no++;
		line[strcspn(line, "#\n")] = 0;
		int n = sscanf(line, "%511s %511s %1s", a, b, extra);
		if (n <= 0)
			continue;
		if (n != 2)
			ret = lp_fail(d, LP_EXIT_USAGE, "%s:%d: expected 'F G' (a function and its target), "
				      "got '%.200s' (fix that line)", path, no, line);
		else
			ret = add(p, ps, cap, a, b, d);
		if (ret && d->code != LP_EXIT_USAGE) {	/* name the line of a symbol problem too */
			char msg[sizeof(d->msg)];
			snprintf(msg, sizeof(msg), "%s:%d: %s", path, no, d->msg);
			memcpy(d->msg, msg, sizeof(msg));
		}
	}
	if (f != stdin)
		fclose(f);
	if (!ret && !ps->n)
		ret = lp_fail(d, LP_EXIT_USAGE, "plan file %s has no 'F G' line (nothing to do)", path);
	return ret;
}

/* Every function whose entry holds a jump livepatch wrote, from memory vs the files. */
static int collect_patched(struct lp_proc *p, struct lp_pairs *ps, size_t *cap, struct lp_diag *d)
{
	struct lp_changes c;
	int ret = inspect_changes(p, &c, d);

	for (size_t i = 0; !ret && i < c.n; i++) {
		if (!c.v[i].ours || c.v[i].func.kind != LP_SYM_FUNC)
			continue;
		ret = grow(ps, cap);
		if (!ret)
			ps->f[ps->n++] = c.v[i].func;
	}
	inspect_free(&c);
	return ret;
}

int pairs_collect(struct lp_proc *p, const struct lp_options *o, struct lp_pairs *ps,
		  struct lp_diag *d)
{
	size_t cap = 0;
	int ret = 0;

	memset(ps, 0, sizeof(*ps));
	ps->revert = o->nreverts || o->revert_all;
	for (size_t i = 0; !ret && i < o->nfuncs; i++)
		ret = add(p, ps, &cap, o->funcs[i], o->targets[i], d);
	for (size_t i = 0; !ret && i < o->nreverts; i++)
		ret = add(p, ps, &cap, o->reverts[i], NULL, d);
	if (!ret && o->plan_file)
		ret = read_plan_file(p, o->plan_file, ps, &cap, d);
	if (!ret && o->revert_all)
		ret = collect_patched(p, ps, &cap, d);
	return ret;
}

void pairs_free(struct lp_pairs *ps)
{
	free(ps->f);
	free(ps->g);
	memset(ps, 0, sizeof(*ps));
}
