/*
 * Resolve: the user's "[OBJECT:]SYMBOL" / "0xADDRESS" turned into one function of the
 * process, looked up in every mapped object's symbols (elfsym.h), with the diagnostics
 * of a name that is missing, ambiguous or of an unknown version.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "resolve.h"

struct cands {
	struct lp_symbol v[16];
	size_t n;
	size_t total;		/* including those that did not fit */
};

static void cand_add(struct cands *c, const struct lp_symbol *s)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].obj == s->obj && c->v[i].addr == s->addr) {
			/*
			 * One function under several names or versions: keep the default
			 * version (memcpy@@GLIBC_2.14 over memcpy@GLIBC_2.2.5 at the same
			 * address), whatever order the table lists them in, else the default
			 * is lost and a name with one default looks ambiguous; then the
			 * global name of an alias pair.
			 */
			const struct lp_symbol *k = &c->v[i];
			if ((s->default_version && !k->default_version) ||
			    (s->default_version == k->default_version && !k->global && s->global))
				c->v[i] = *s;
			return;
		}
	c->total++;
	if (c->n < LP_ARRAY_SIZE(c->v))
		c->v[c->n++] = *s;
}

struct want {
	const char *ver;
	struct cands *c;
};

static void add_if_version(const struct lp_symbol *s, void *arg)
{
	const struct want *w = arg;

	if (!w->ver || (s->version && !strcmp(s->version, w->ver)))
		cand_add(w->c, s);
}

/* Every definition of @name in @obj; without a version, the default one wins. */
static void collect(struct lp_object *obj, const char *name, const char *ver, struct cands *c)
{
	struct cands mine = { .n = 0 };
	struct want w = { .ver = ver, .c = &mine };

	object_each_named(obj, name, add_if_version, &w);
	bool any_default = false;
	for (size_t i = 0; i < mine.n; i++)
		any_default |= mine.v[i].default_version;
	for (size_t i = 0; i < mine.n; i++)
		if (ver || !any_default || mine.v[i].default_version)
			cand_add(c, &mine.v[i]);
}

static size_t edit_distance(const char *a, const char *b, size_t cutoff)
{
	size_t la = strlen(a), lb = strlen(b), row[128];

	if (lb >= LP_ARRAY_SIZE(row) || (la > lb ? la - lb : lb - la) > cutoff)
		return cutoff + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0], best;
		row[0] = best = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t v = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			if (up + 1 < v)
				v = up + 1;
			row[j] = v;
			diag = up;
			if (v < best)
				best = v;
		}
		if (best > cutoff)
			return cutoff + 1;
	}
	return row[lb];
}

struct near {
	const char *name;
	size_t cutoff;		/* the largest edit distance worth suggesting */
	const char *best[3];	/* nearest first; among equals, the first met */
	size_t dist[3];
};

static void near_add(const struct lp_symbol *s, void *arg)
{
	struct near *n = arg;
	size_t dd = edit_distance(n->name, s->name, n->cutoff);

	if (dd > n->cutoff || (n->best[2] && dd >= n->dist[2]))
		return;
	for (int k = 0; k < 3; k++)
		if (n->best[k] && !strcmp(n->best[k], s->name))
			return;
	int k = 2;
	while (k > 0 && dd < n->dist[k - 1]) {
		n->best[k] = n->best[k - 1];
		n->dist[k] = n->dist[k - 1];
		k--;
	}
	n->best[k] = s->name;
	n->dist[k] = dd;
}

void resolve_suggest(struct lp_proc *p, struct lp_object *only, const char *name, char *out,
		     size_t len)
{
	struct near n = { .name = name, .cutoff = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2,
			  .dist = { SIZE_MAX, SIZE_MAX, SIZE_MAX } };

	for (size_t o = 0; o < p->nobjs; o++)
		if (!only || &p->objs[o] == only)	/* an unreadable object offers no names */
			object_each_function(&p->objs[o], near_add, &n);
	out[0] = 0;
	for (int k = 0; k < 3 && n.best[k]; k++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", k ? ", " : "", n.best[k]);
}

static struct lp_object *find_object(struct lp_proc *p, const char *name, size_t len)
{
	for (size_t i = 0; i < p->nobjs; i++) {
		struct lp_object *o = &p->objs[i];
		if ((strlen(o->name) == len && !strncmp(o->name, name, len)) ||
		    (strlen(o->path) == len && !strncmp(o->path, name, len)))
			return o;
	}
	return NULL;
}

static int no_object(struct lp_proc *p, const char *name, size_t len, struct lp_diag *d)
{
	char list[512] = "";

	for (size_t i = 0; i < p->nobjs && strlen(list) < 400; i++)
		if (!strstr(list, p->objs[i].name))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 list[0] ? ", " : "", p->objs[i].name);
	return lp_fail(d, LP_EXIT_SYMBOL, "no object named '%.*s' is mapped in process %d "
		       "(use one of: %s)", (int)len, name, p->pid, list);
}

static int not_found(struct lp_proc *p, struct lp_object *only, const char *name, struct lp_diag *d)
{
	char near[256], where[300];

	if (only)
		snprintf(where, sizeof(where), "%s", only->name);
	else
		snprintf(where, sizeof(where), "process %d", p->pid);
	resolve_suggest(p, only, name, near, sizeof(near));
	if (near[0])
		return lp_fail(d, LP_EXIT_SYMBOL, "symbol '%s' not found in %s (did you mean: %s?)",
			       name, where, near);
	return lp_fail(d, LP_EXIT_SYMBOL, "symbol '%s' not found in %s (check the name with "
		       "nm -D, or give OBJECT:SYMBOL or 0xADDRESS)", name, where);
}

/* The name exists, not with that version: say which versions there are. */
static int unknown_version(struct lp_proc *p, struct lp_object *only, const char *name,
			   const char *ver, struct lp_diag *d)
{
	struct cands all = { .n = 0 };
	char list[400] = "";

	struct want w = { .ver = NULL, .c = &all };

	for (size_t i = 0; i < p->nobjs; i++)
		if (!only || &p->objs[i] == only)
			object_each_named(&p->objs[i], name, add_if_version, &w);
	for (size_t i = 0; i < all.n && strlen(list) < 320; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s%s%s", i ? ", " : "",
			 name, all.v[i].default_version ? "@@" : "@",
			 all.v[i].version ? all.v[i].version : "(none)");
	if (!all.n)
		return not_found(p, only, name, d);
	return lp_fail(d, LP_EXIT_SYMBOL, "symbol '%s@%s' not found: %s has %s (write one of "
		       "these, or the name alone for the default version)", name, ver,
		       only ? only->name : "the process", list);
}

static int ambiguous(const struct cands *c, const char *name, struct lp_diag *d)
{
	char list[640] = "";
	bool same_obj = c->n > 1 && c->v[0].obj == c->v[1].obj;

	for (size_t i = 0; i < c->n && strlen(list) < 560; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s:%s at 0x%" PRIx64,
			 i ? ", " : "", c->v[i].obj->name, name, c->v[i].addr);
	return lp_fail(d, LP_EXIT_SYMBOL, "symbol '%s' is ambiguous, %zu definitions: %s%s "
		       "(qualify it as %s or give the address)", name, c->total, list,
		       c->total > c->n ? ", ..." : "", same_obj ? "0xADDRESS" : "OBJECT:SYMBOL");
}

static int check_function(struct lp_proc *p, const struct lp_symbol *s, const char *role,
			  struct lp_diag *d)
{
	const struct lp_mapping *m = NULL;

	if (s->kind == LP_SYM_OBJECT)
		return lp_fail(d, LP_EXIT_SYMBOL, "%s '%s' in %s is a data object, not a function "
			       "(name a function)", role, s->name, s->obj->name);
	if (s->kind == LP_SYM_IFUNC)
		return lp_fail(d, LP_EXIT_SYMBOL, "%s '%s' in %s is a GNU IFUNC: that symbol is the "
			       "resolver run once at load time, so patching it changes nothing (patch the "
			       "implementation it selected instead, by name or address)", role, s->name,
			       s->obj->name);
	if (!proc_object_at(p, s->addr, &m) || !m->exec)
		return lp_fail(d, LP_EXIT_SYMBOL, "%s '%s' at 0x%" PRIx64 " is not in an executable "
			       "mapping of process %d (name a function that is loaded as code)", role,
			       s->name, s->addr, p->pid);
	return 0;
}

static int resolve_address(struct lp_proc *p, const char *spec, const char *role,
			   struct lp_symbol *out, struct lp_diag *d)
{
	char *end;
	const struct lp_mapping *m = NULL;

	errno = 0;
	uint64_t addr = strtoull(spec, &end, 16);
	if (errno || *end || end == spec + 2)
		return lp_fail(d, LP_EXIT_USAGE, "invalid %s address '%s' (write it as 0x followed by hex "
			       "digits)", role, spec);
	if (!proc_object_at(p, addr, &m) || !m->exec)
		return lp_fail(d, LP_EXIT_SYMBOL, "%s address 0x%" PRIx64 " is not in an executable "
			       "mapping of process %d (give the address of code, see /proc/%d/maps)",
			       role, addr, p->pid, p->pid);
	if (resolve_symbolize(p, addr, out))
		return lp_fail(d, LP_EXIT_SYMBOL, "%s address 0x%" PRIx64 " is not inside any function "
			       "symbol (give a function name instead)", role, addr);
	out->offset = addr - out->addr;
	out->size -= out->offset;
	out->addr = addr;
	return check_function(p, out, role, d);
}

int resolve_function(struct lp_proc *p, const char *spec, const char *role,
		     struct lp_symbol *out, struct lp_diag *d)
{
	struct cands c = { .n = 0 };
	struct lp_object *only = NULL;
	char name[512], *ver = NULL;
	const char *colon = strrchr(spec, ':');

	if (!strncmp(spec, "0x", 2) || !strncmp(spec, "0X", 2))
		return resolve_address(p, spec, role, out, d);
	if (colon) {
		only = find_object(p, spec, (size_t)(colon - spec));
		if (!only)
			return no_object(p, spec, (size_t)(colon - spec), d);
		spec = colon + 1;
	}
	if (!*spec || strlen(spec) >= sizeof(name))
		return lp_fail(d, LP_EXIT_USAGE, "invalid %s '%s' (write [OBJECT:]SYMBOL or 0xADDRESS)",
			       role, spec);
	strcpy(name, spec);
	if ((ver = strchr(name, '@'))) {
		*ver++ = 0;
		if (*ver == '@')
			ver++;
	}
	for (size_t i = 0; i < p->nobjs; i++)
		if (!only || &p->objs[i] == only)
			collect(&p->objs[i], name, ver, &c);
	if (only && only->elf_error)
		return lp_fail(d, LP_EXIT_SYMBOL, "cannot read the symbols of %s: %s (is it an ELF "
			       "file?)", only->path, strerror(-only->elf_error));
	if (!c.n && ver)
		return unknown_version(p, only, name, ver, d);
	if (!c.n)
		return not_found(p, only, name, d);
	if (c.total > 1)
		return ambiguous(&c, name, d);
	*out = c.v[0];
	return check_function(p, out, role, d);
}

int resolve_symbolize(struct lp_proc *p, uint64_t addr, struct lp_symbol *out)
{
	struct lp_object *obj = (struct lp_object *)proc_object_at(p, addr, NULL);

	return obj ? object_function_at(obj, addr, out) : -ENOENT;
}

int resolve_each_function(struct lp_proc *p, void (*fn)(const struct lp_symbol *s, void *arg),
			  void *arg)
{
	for (size_t o = 0; o < p->nobjs; o++) {
		int ret = object_each_function(&p->objs[o], fn, arg);
		if (ret)
			return ret;
	}
	return 0;
}
