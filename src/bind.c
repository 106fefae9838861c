/*
 * Bind: a patch object's undefined symbols bound to the process's, a gap found for it
 * within reach, and its image linked there (docs/design.md §8).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "bind.h"
#include "elfsym.h"
#include "resolve.h"
#include "sha256.h"

#define GUARD LP_LINK_PAGE		/* a free page between the region and its neighbours */
#define REACH ((1ull << 31) - (1ull << 24))	/* rel32 reach, less a margin */
#define LOWEST (1ull << 24)		/* never below: the zero page and mmap_min_addr */
#define USER_TOP (0x7ffffffff000ull - (1ull << 30))	/* never above: the stack's end */
#define HEAP_ROOM (1ull << 30)		/* left free above the heap's start, for brk() */

/* --- the order in which objects offer their exported symbols --------------------- */

static ssize_t object_by_path(const struct lp_proc *p, const char *path)
{
	for (size_t i = 0; i < p->nobjs; i++)
		if (!strcmp(p->objs[i].path, path))
			return (ssize_t)i;
	return -1;
}

static void order_add(size_t *order, size_t *n, size_t obj)
{
	for (size_t i = 0; i < *n; i++)
		if (order[i] == obj)
			return;
	order[(*n)++] = obj;
}

/* The program's r_debug (DT_DEBUG of its dynamic section in memory), or 0. */
static uint64_t r_debug_of(const struct lp_proc *p, const struct lp_object *exe)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t dyn = 0, bias;
	int fd = object_open(exe);

	if (fd < 0 || !exe->nmaps)
		goto out;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || eh.e_phentsize != sizeof(ph) || eh.e_phnum > 64)
		goto out;
	bias = exe->maps[0].start - exe->maps[0].offset;
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != sizeof(ph))
			break;
		if (ph.p_type == PT_LOAD && !ph.p_offset)
			bias = exe->maps[0].start - (ph.p_vaddr & ~0xfffull);
		if (ph.p_type == PT_DYNAMIC)
			dyn = ph.p_vaddr;
	}
	if (dyn && eh.e_type == ET_EXEC)
		bias = 0;
	for (unsigned int i = 0; dyn && i < 512; i++) {
		Elf64_Dyn e;
		if (proc_read(p, dyn + bias + i * sizeof(e), &e, sizeof(e)) || e.d_tag == DT_NULL)
			break;
		if (e.d_tag == DT_DEBUG) {
			close(fd);
			return e.d_un.d_ptr;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	return 0;
}

/*
 * The dynamic linker's search order: the program, then its link_map chain (r_debug);
 * then whatever else is mapped, in address order. Loaded patches offer nothing.
 */
static size_t search_order(const struct lp_proc *p, size_t *order)
{
	char exe[PATH_MAX + 1], path[64], name[PATH_MAX];
	size_t n = 0;
	ssize_t len, e = -1;

	snprintf(path, sizeof(path), "/proc/%d/exe", p->via);
	len = readlink(path, exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = 0;
		char *del = strstr(exe, " (deleted)");
		if (del && !del[10])
			*del = 0;
		e = object_by_path(p, exe);
	}
	if (e >= 0) {
		order_add(order, &n, (size_t)e);
		uint64_t rd = r_debug_of(p, &p->objs[e]), lm = 0;
		if (rd && proc_read(p, rd + 8, &lm, sizeof(lm)))
			lm = 0;
		for (int k = 0; lm && k < 4096; k++) {
			uint64_t f[4];	/* l_addr, l_name, l_ld, l_next */
			if (proc_read(p, lm, f, sizeof(f)))
				break;
			name[0] = 0;
			for (size_t off = 0; f[1] && off < sizeof(name) - 1; off += 64)
				if (proc_read(p, f[1] + off, name + off, 64) || memchr(name + off, 0, 64))
					break;
			name[sizeof(name) - 1] = 0;
			ssize_t o = name[0] ? object_by_path(p, name) : -1;
			if (o >= 0)
				order_add(order, &n, (size_t)o);
			lm = f[3];
		}
	}
	for (size_t i = 0; i < p->nobjs; i++)
		if (!p->objs[i].patch)
			order_add(order, &n, i);
	return n;
}

/* --- binding --------------------------------------------------------------------- */

/* The definitions of one name in one object, by address (versions of one symbol are one). */
struct defs {
	struct lp_symbol v[8];
	size_t n, total;
	bool globals_only;
};

static void def_add(const struct lp_symbol *s, void *arg)
{
	struct defs *d = arg;

	if ((d->globals_only && !s->global) || s->kind == LP_SYM_OTHER ||
	    (s->version && !s->default_version))
		return;
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].addr == s->addr)
			return;
	d->total++;
	if (d->n < LP_ARRAY_SIZE(d->v))
		d->v[d->n++] = *s;
}

struct binder {
	struct lp_proc *p;
	struct lp_load *l;
	const struct lp_load *earlier;	/* the patches given before it in this command */
	size_t nearlier;
	const size_t *holders;
	size_t nholders;
	size_t *order;
	size_t norder;
	char unresolved[700];
	size_t nunresolved;
	struct lp_diag *d;
	int ret;
};

static void bound(struct lp_binding *b, const struct lp_symbol *s, enum lp_bind_how how)
{
	b->bound = true;
	b->addr = s->addr;
	b->func = s->kind == LP_SYM_FUNC;
	b->how = how;
	snprintf(b->from, sizeof(b->from), "%s:%s", s->obj->name, s->name);
}

static int ambiguous(struct binder *bd, const char *name, const struct defs *df)
{
	char list[500] = "";

	for (size_t i = 0; i < df->n && strlen(list) < 400; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s:%s at 0x%" PRIx64,
			 i ? ", " : "", df->v[i].obj->name, name, df->v[i].addr);
	return lp_fail(bd->d, LP_EXIT_SYMBOL, "patch %s uses '%s', which %s defines %zu times: %s "
		       "(rename the program's static, or give the patch the address through a "
		       "function it can call unambiguously)", bd->l->po.name, name, df->v[0].obj->name,
		       df->total, list);
}

/*
 * What the resolver of IFUNC @s chose in this process: the object's own
 * R_X86_64_IRELATIVE relocation with the resolver as addend was applied when it was
 * loaded (glibc has one for every IFUNC it calls itself: strlen, memcpy, ...): the
 * address in that slot, if it is code of the same object. 0 if none.
 */
static uint64_t ifunc_choice(const struct lp_proc *p, const struct lp_symbol *s)
{
	const struct lp_object *o = s->obj;
	uint64_t found = 0, resolver = s->addr - o->bias;
	int fd = object_open(o);
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	Elf_Scn *scn = NULL;

	while (elf && !found && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !(data = elf_getdata(scn, NULL)))
			continue;
		for (int i = 0; !found && i < (int)(sh.sh_size / (sh.sh_entsize ? sh.sh_entsize : 24)); i++) {
			GElf_Rela r;
			uint64_t v = 0;
			const struct lp_mapping *m;
			if (!gelf_getrela(data, i, &r) || GELF_R_TYPE(r.r_info) != R_X86_64_IRELATIVE ||
			    (uint64_t)r.r_addend != resolver || proc_read(p, r.r_offset + o->bias, &v, sizeof(v)))
				continue;
			if (v != s->addr && proc_object_at(p, v, &m) == o && m->exec)
				found = v;
		}
	}
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
	return found;
}

/* @s is an IFUNC: bind to what its resolver chose here, or refuse. */
static int ifunc(struct binder *bd, const char *name, const struct lp_symbol *s,
		 enum lp_bind_how how, struct lp_binding *b)
{
	uint64_t at = ifunc_choice(bd->p, s);

	if (!at)
		return lp_fail(bd->d, LP_EXIT_SYMBOL, "patch %s calls '%s', a GNU IFUNC of %s whose "
			       "choice this process does not record: its symbol is the resolver, not "
			       "the function (call a function of the program that calls it, or avoid "
			       "it: -fno-builtin keeps the compiler from adding such calls)",
			       bd->l->po.name, name, s->obj->name);
	struct lp_symbol chosen = *s;
	chosen.addr = at;
	chosen.kind = LP_SYM_FUNC;
	bound(b, &chosen, how);
	snprintf(b->from + strlen(b->from), sizeof(b->from) - strlen(b->from), " (IFUNC's choice)");
	return 1;
}

/* One object's definition of @name: 1 bound, 0 none there, < 0 refused. */
static int bind_in(struct binder *bd, struct lp_object *o, const char *name, bool globals_only,
		   enum lp_bind_how how, struct lp_binding *b)
{
	struct defs df = { .globals_only = globals_only };

	object_each_named(o, name, def_add, &df);
	if (!df.n)
		return 0;
	if (df.total > 1)
		return ambiguous(bd, name, &df);
	if (how == LP_BIND_EXPORTED && !df.v[0].global)
		how = LP_BIND_LOCAL;
	if (df.v[0].kind == LP_SYM_IFUNC)
		return ifunc(bd, name, &df.v[0], how, b);
	bound(b, &df.v[0], how);
	return 1;
}

static struct lp_object *object_named(struct lp_proc *p, const char *name)
{
	for (size_t i = 0; i < p->nobjs; i++)
		if (!p->objs[i].patch && (!strcmp(p->objs[i].name, name) || !strcmp(p->objs[i].path, name)))
			return &p->objs[i];
	return NULL;
}

static const char *pinned_to(const struct lp_patchobj *po, const char *name)
{
	for (size_t i = 0; i < po->npins; i++)
		if (!strcmp(po->pins[i].symbol, name))
			return po->pins[i].object;
	return NULL;
}

static void not_bound(struct binder *bd, const char *name, const char *pin)
{
	char near[256];
	size_t len = strlen(bd->unresolved);

	bd->nunresolved++;
	if (len > 500)
		return;
	resolve_suggest(bd->p, NULL, name, near, sizeof(near));
	snprintf(bd->unresolved + len, sizeof(bd->unresolved) - len, "%s%s%s%s%s%s%s", len ? "; " : "",
		 name, pin ? " in " : "", pin ? pin : "", near[0] ? " (did you mean: " : "", near,
		 near[0] ? "?)" : "");
}

/* link_each_undefined() callback: pinned, then the holders' symbols, then exported ones. */
static void bind_one(const struct lp_psym *sym, size_t index, void *arg)
{
	struct binder *bd = arg;
	struct lp_binding *b = &bd->l->binds[index];
	const char *pin = pinned_to(&bd->l->po, sym->name);
	int r = 0;

	if (bd->ret)
		return;
	if (!sym->name[0]) {
		bd->ret = lp_fail(bd->d, LP_EXIT_SITE, "patch %s: a relocation uses an undefined symbol "
				  "without a name (a malformed object: build it again with cc -c)",
				  bd->l->po.name);
		return;
	}
	if (pin) {
		struct lp_object *o = object_named(bd->p, pin);
		r = o ? bind_in(bd, o, sym->name, false, LP_BIND_PINNED, b) : 0;
	}
	for (size_t i = 0; !pin && !r && i < bd->nearlier; i++)
		r = bind_in(bd, &bd->p->objs[bd->earlier[i].obj], sym->name, true, LP_BIND_PATCH, b);
	for (size_t i = 0; !pin && !r && i < bd->nholders; i++)
		r = bind_in(bd, &bd->p->objs[bd->holders[i]], sym->name, false, LP_BIND_EXPORTED, b);
	/*
	 * A global of the holder is what the dynamic linker's order finds first, as for
	 * the holder's own code: the program's copy (R_X86_64_COPY) of a library's
	 * variable, or another object's interposing definition. A static stays the holder's.
	 */
	if (r == 1 && b->how == LP_BIND_EXPORTED) {
		struct lp_binding own = *b;
		r = 0;
		for (size_t i = 0; !r && i < bd->norder; i++)
			r = bind_in(bd, &bd->p->objs[bd->order[i]], sym->name, true, LP_BIND_EXPORTED, b);
		if (r == 0) {
			*b = own;
			r = 1;
		}
	}
	for (size_t i = 0; !pin && !r && i < bd->norder; i++)
		r = bind_in(bd, &bd->p->objs[bd->order[i]], sym->name, true, LP_BIND_EXPORTED, b);
	if (r < 0) {
		bd->ret = r;
	} else if (r == 0 && sym->bind == STB_WEAK) {
		*b = (struct lp_binding){ .bound = true, .how = LP_BIND_WEAK_ZERO };
		snprintf(b->from, sizeof(b->from), "(weak, undefined: 0)");
	} else if (r == 0) {
		not_bound(bd, sym->name, pin);
	}
	if (b->bound)
		bd->l->nbound[b->how]++;
}

static int bind_all(struct lp_proc *p, struct lp_load *l, const struct lp_loads *all,
		    const size_t *holders, size_t nholders, struct lp_diag *d)
{
	struct binder bd = { .p = p, .l = l, .earlier = all->v, .nearlier = (size_t)(l - all->v),
			     .holders = holders, .nholders = nholders, .d = d };

	bd.order = calloc(p->nobjs + 1, sizeof(*bd.order));
	l->binds = calloc(l->po.nsyms + 1, sizeof(*l->binds));
	if (!bd.order || !l->binds) {
		free(bd.order);
		return -ENOMEM;
	}
	bd.norder = search_order(p, bd.order);
	link_each_undefined(&l->lk, bind_one, &bd);
	free(bd.order);
	if (!bd.ret && bd.nunresolved)
		bd.ret = lp_fail(d, LP_EXIT_SYMBOL, "patch %s: %zu undefined symbol%s found nowhere in "
				 "process %d: %s (define %s in the patch, or check the names with nm)",
				 l->po.name, bd.nunresolved, bd.nunresolved > 1 ? "s" : "", p->pid,
				 bd.unresolved, bd.nunresolved > 1 ? "them" : "it");
	return bd.ret;
}

/* --- placement ------------------------------------------------------------------- */

struct gap_search {
	uint64_t lo, hi;	/* the object served: [lo, hi) */
	uint64_t size;
	uint64_t prev_end;	/* end of the previous mapping */
	bool prev_heap;
	uint64_t best;		/* the candidate nearest to the object, 0: none */
	uint64_t brk;		/* where the heap starts (and grows up from), 0: unknown */
	const uint64_t (*taken)[2];	/* ranges planned for other patches: not free */
	size_t ntaken;
};

static uint64_t distance(const struct gap_search *g, uint64_t base)
{
	return base < g->lo ? g->lo - base : base + g->size - g->hi;
}

static void consider(struct gap_search *g, uint64_t base)
{
	uint64_t lo = base < g->lo ? base : g->lo, hi = base + g->size > g->hi ? base + g->size : g->hi;

	if (base < LOWEST || hi - lo > REACH)
		return;
	if (g->brk && base + g->size > g->brk && base < g->brk + HEAP_ROOM)
		return;
	if (!g->best || distance(g, base) < distance(g, g->best))
		g->best = base;
}

/*
 * One free range [from, to): its top, unless the stack grows down into it from @to;
 * its bottom, unless the heap grows up into it from @from.
 */
static void gap(struct gap_search *g, uint64_t from, uint64_t to, bool stack_above)
{
	for (size_t i = 0; i < g->ntaken; i++) {	/* split around a range already planned */
		const uint64_t *t = g->taken[i];
		if (t[0] < to && t[1] > from) {
			gap(g, from, t[0], false);
			bool heap = g->prev_heap;
			g->prev_heap = false;
			gap(g, t[1], to, stack_above);
			g->prev_heap = heap;
			return;
		}
	}
	if (to > USER_TOP)
		to = USER_TOP;
	if (to <= from || to - from < g->size + 2 * GUARD)
		return;
	if (!stack_above)
		consider(g, (to - GUARD - g->size) & ~(uint64_t)(LP_LINK_PAGE - 1));
	if (!g->prev_heap)
		consider(g, from + GUARD);
}

static int gap_line(const struct lp_maps_line *m, void *arg)
{
	struct gap_search *g = arg;

	gap(g, g->prev_end, m->start, !strcmp(m->path, "[stack]"));
	g->prev_end = m->end;
	g->prev_heap = !strcmp(m->path, "[heap]");
	return 0;
}

uint64_t bind_find_gap(int maps_fd, uint64_t lo, uint64_t hi, uint64_t size, uint64_t brk,
		       const uint64_t (*taken)[2], size_t ntaken)
{
	struct gap_search g = { .lo = lo, .hi = hi, .size = size, .brk = brk, .taken = taken,
				.ntaken = ntaken };

	return proc_maps_walk_fd(maps_fd, gap_line, &g) ? 0 : g.best;
}

static int place(struct lp_proc *p, const struct lp_object *near, const struct lp_loads *all,
		 struct lp_load *l, struct lp_diag *d)
{
	uint64_t lo, hi, brk = 0, taken[LP_PROC_SPARE_OBJS][2];
	size_t ntaken = 0;
	char stat[1024], path[64];

	for (const struct lp_load *e = all->v; e < l && ntaken < LP_ARRAY_SIZE(taken); e++)
		if (!e->reused) {
			taken[ntaken][0] = e->base - GUARD;
			taken[ntaken++][1] = e->base + e->size + GUARD;
		}

	proc_object_extent(near, &lo, &hi);
	if (proc_stat_read(p->via, 0, stat, sizeof(stat)) > 0 && proc_stat_field(stat, 47))
		brk = strtoull(proc_stat_field(stat, 47), NULL, 10);	/* start_brk */
	snprintf(path, sizeof(path), "/proc/%d/maps", p->via);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot read the mappings of process %d: %s", p->pid,
			       strerror(errno));
	l->base = bind_find_gap(fd, lo, hi, l->lk.size, brk, (const uint64_t (*)[2])taken, ntaken);
	close(fd);
	if (!l->base)
		return lp_fail(d, LP_EXIT_SITE, "no free %" PRIu64 " KiB within 2 GiB of %s in process %d "
			       "for patch %s (make the patch smaller)", l->lk.size >> 10, near->name,
			       p->pid, l->po.name);
	l->size = l->lk.size;
	return 0;
}

/* --- the object the rest of livepatch sees --------------------------------------- */

static int image_object(struct lp_proc *p, struct lp_load *l, struct lp_diag *d)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(l->memfd_name, sizeof(l->memfd_name), "livepatch:%s", l->po.name);
	l->image_fd = memfd_create(l->memfd_name, MFD_CLOEXEC);
	if (l->image_fd < 0 || pwrite(l->image_fd, l->lk.image, l->lk.image_len, 0) != (ssize_t)l->lk.image_len ||
	    fstat(l->image_fd, &sb))
		return lp_fail(d, LP_EXIT_INTERNAL, "cannot hold the image of patch %s: %s", l->po.name,
			       strerror(errno));
	snprintf(path, sizeof(path), "%s%s", LP_PATCH_MEMFD, l->po.name);
	struct lp_object *o = proc_add_object(p, path);
	if (!o || !(o->maps = calloc(LP_ARRAY_SIZE(l->lk.seg), sizeof(*o->maps))))
		return -ENOMEM;
	l->obj = (size_t)(o - p->objs);
	o->deleted = true;
	o->dev = (uint64_t)major(sb.st_dev) << 32 | minor(sb.st_dev);
	o->inode = sb.st_ino;
	snprintf(o->open_path, sizeof(o->open_path), "/proc/self/fd/%d", l->image_fd);
	for (size_t i = 0; i < LP_ARRAY_SIZE(l->lk.seg); i++) {
		const struct lp_segment *s = &l->lk.seg[i];
		if (s->size)
			o->maps[o->nmaps++] = (struct lp_mapping){ l->base + s->off, l->base + s->off + s->size,
								   s->off, s->prot & PROT_EXEC,
								   s->prot & PROT_WRITE };
	}
	return 0;
}

/* The same patch (by sha256) already in the process: its object. */
static ssize_t loaded_before(const struct lp_proc *p, const struct lp_patchobj *po)
{
	uint8_t sha[32];
	char name[256];

	for (size_t i = 0; i < p->nobjs; i++)
		if (p->objs[i].patch && !object_patch_note(&p->objs[i], sha, name, sizeof(name)) &&
		    !memcmp(sha, po->sha256, sizeof(sha)))
			return (ssize_t)i;
	return -1;
}

static int reuse(struct lp_proc *p, struct lp_load *l, size_t obj)
{
	uint64_t end;

	l->reused = true;
	l->obj = obj;
	proc_object_extent(&p->objs[obj], &l->base, &end);
	l->size = end - l->base;
	return 0;
}

/* The objects that hold the functions replaced, in pair order, each once. */
static size_t holders_of(const struct lp_proc *p, const struct lp_pairs *ps, size_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < ps->n; i++)
		order_add(out, &n, (size_t)(ps->f[i].obj - p->objs));
	return n;
}

/* A patch file's name as maps will show it: printable, short enough for memfd_create. */
static int check_name(const struct lp_patchobj *po, struct lp_diag *d)
{
	size_t len = strlen(po->name);
	bool printable = len > 0;

	for (size_t i = 0; i < len; i++)
		printable &= po->name[i] > ' ' && po->name[i] != 0x7f;
	if (!printable || len > 200)
		return lp_fail(d, LP_EXIT_USAGE, "--load %s: the file's name must be 1 to 200 printable "
			       "characters without spaces: /proc/PID/maps names the patch after it "
			       "(rename the file)", po->path);
	return 0;
}

static int prepare_one(struct lp_proc *p, struct lp_loads *all, const char *path,
		       const size_t *holders, size_t nholders, uid_t caller, struct lp_diag *d)
{
	struct lp_load *l = &all->v[all->n - 1];
	int ret = patchobj_open(&l->po, path, caller, d);

	if (!ret)
		ret = check_name(&l->po, d);
	if (ret)
		return ret;
	ssize_t had = loaded_before(p, &l->po);
	if (had >= 0)
		return reuse(p, l, (size_t)had);
	if (!nholders)
		return lp_fail(d, LP_EXIT_USAGE, "--load %s: nothing to patch (give --func F --target G "
			       "with G in the patch)", path);
	if ((ret = link_prepare(&l->lk, &l->po, d)) || (ret = bind_all(p, l, all, holders, nholders, d)) ||
	    (ret = place(p, &p->objs[holders[0]], all, l, d)) || (ret = link_apply(&l->lk, l->base, l->binds, d)))
		return ret;
	return image_object(p, l, d);
}

/*
 * Bindings that would crash the program: a call to a data object (a declaration that
 * does not match the program), a call to a function this command replaces (it jumps
 * to the patch: every call would loop).
 */
static int check_bindings(const struct lp_load *l, const struct lp_pairs *ps, struct lp_diag *d)
{
	for (size_t i = 0; !l->reused && i < l->po.nrels; i++) {
		const struct lp_prel *r = &l->po.rels[i];
		const struct lp_binding *b = &l->binds[r->sym];
		if (!b->bound || b->how == LP_BIND_WEAK_ZERO)
			continue;
		if (r->type == R_X86_64_PLT32 && !b->func)
			return lp_fail(d, LP_EXIT_SYMBOL, "patch %s calls '%s', which is %s, not a function "
				       "(declare it in the patch as what it is)", l->po.name,
				       l->po.syms[r->sym].name, b->from);
		for (size_t k = 0; k < ps->n; k++)
			if (b->addr == ps->f[k].addr)
				return lp_fail(d, LP_EXIT_SITE, "patch %s uses '%s', which is %s:%s, a function "
					       "this command redirects to the patch: every call would come "
					       "back (copy what the old code does into the patch instead)",
					       l->po.name, l->po.syms[r->sym].name, ps->f[k].obj->name,
					       ps->f[k].name);
	}
	return 0;
}

int loads_prepare(struct lp_proc *p, const char *const *paths, size_t n, const struct lp_pairs *ps,
		  uid_t caller, struct lp_loads *out, struct lp_diag *d)
{
	size_t *holders = calloc(ps->n + 1, sizeof(*holders));
	int ret = 0;

	memset(out, 0, sizeof(*out));
	out->v = calloc(n + 1, sizeof(*out->v));
	if (!holders || !out->v) {
		free(holders);
		return -ENOMEM;
	}
	size_t nholders = holders_of(p, ps, holders);
	for (size_t i = 0; !ret && i < n; i++) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		out->v[i].image_fd = -1;
		out->n++;
		ret = prepare_one(p, out, paths[i], holders, nholders, caller, d);
		if (!ret)
			ret = check_bindings(&out->v[i], ps, d);
		out->v[i].link_ms = lp_ms_since(&t0);
	}
	free(holders);
	return ret;
}

/*
 * The function @spec names in one of the patches loaded now (NAME, or PATCH:NAME with
 * PATCH a patch's base name): its address, or 0. An address: an older copy of a
 * patch of the same name may be mapped too, and this run means its own.
 */
static uint64_t in_loads(struct lp_proc *p, const struct lp_loads *l, const char *spec)
{
	const char *colon = strchr(spec, ':'), *name = colon ? colon + 1 : spec;

	if (!strncmp(spec, "0x", 2))
		return 0;
	for (size_t k = 0; k < l->n; k++) {
		struct lp_object *o = &p->objs[l->v[k].obj];
		struct defs df = { .n = 0 };
		if (colon && ((size_t)(colon - spec) != strlen(l->v[k].po.name) ||
			      strncmp(spec, l->v[k].po.name, (size_t)(colon - spec))))
			continue;
		object_each_named(o, name, def_add, &df);
		if (df.n == 1 && df.v[0].kind == LP_SYM_FUNC)
			return df.v[0].addr;
	}
	return 0;
}

int loads_qualify(struct lp_proc *p, const struct lp_loads *l, struct lp_pairs *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		uint64_t at = ps->gspec[i] ? in_loads(p, l, ps->gspec[i]) : 0;
		if (!at)
			continue;
		char *q = malloc(24);
		if (!q)
			return -ENOMEM;
		snprintf(q, 24, "0x%" PRIx64, at);
		free(ps->gspec[i]);
		ps->gspec[i] = q;
	}
	return 0;
}

void loads_free(struct lp_loads *l)
{
	for (size_t i = 0; i < l->n; i++) {
		link_free(&l->v[i].lk);
		patchobj_free(&l->v[i].po);
		free(l->v[i].binds);
		if (l->v[i].image_fd >= 0)
			close(l->v[i].image_fd);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}
