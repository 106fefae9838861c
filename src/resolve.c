/*
 * Resolve: ELF symbols of the mapped objects (libelf), and the user's
 * "[OBJECT:]SYMBOL" / "0xADDRESS" turned into one function of the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "resolve.h"

struct lp_symtab {
	Elf *elf;		/* kept open: names point into its mapped string tables */
	const Elf64_Sym *raw;	/* .symtab (or .dynsym when stripped), as the file has it */
	size_t nraw;
	const char *str;	/* its string table, NUL-terminated */
	size_t str_size;
	const Elf64_Half *versym; /* .dynsym's version indices, or NULL */
	size_t nvs;
	const char **vernames;	/* version names by index */
	size_t nver;
	char *split;		/* "name@@VERSION" names copied and split, chained */
	size_t split_used;
	unsigned int scans;	/* lookups answered by a linear scan, before indexing */
	bool indexed;		/* syms, buckets and next built */
	struct lp_symbol *syms;
	size_t nsyms;
	uint32_t *buckets;	/* hash of name -> index + 1, chained through next */
	uint32_t *next;
	size_t nbuckets;
	uint32_t *by_addr;	/* function indices sorted by address */
	size_t nfuncs;
};

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

int object_open(const struct lp_object *obj)
{
	char alt[PATH_MAX + 32];
	int fd = open(obj->open_path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	/* map_files needs CAP_SYS_ADMIN; the process's root is the next best view. */
	snprintf(alt, sizeof(alt), "/proc/%d/root%s", obj->pid, obj->path);
	fd = open(alt, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && !obj->deleted)
		fd = open(obj->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* A path can name a newer file (a package upgrade): only the mapped one will do. */
	struct stat sb;
	if (fstat(fd, &sb) || major(sb.st_dev) != (obj->dev >> 32) ||
	    minor(sb.st_dev) != (obj->dev & 0xffffffff) || sb.st_ino != obj->inode) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Runtime address minus link-time address, from the mapping at a PT_LOAD's page. */
static int compute_bias(struct lp_object *obj, Elf *elf)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		for (size_t j = 0; j < obj->nmaps; j++) {
			const struct lp_mapping *m = &obj->maps[j];
			if (m->offset == (ph.p_offset & ~0xfffULL)) {
				obj->bias = m->start - (ph.p_vaddr & ~0xfffULL);
				return 0;
			}
		}
	}
	return -ENOENT;
}

/*
 * Version names of .dynsym entries by version index (SHT_GNU_verdef), read once per object:
 * names[ndx] or NULL. A symbol's index is its SHT_GNU_versym entry without the hidden bit.
 */
static int verdef_names(Elf *elf, Elf_Scn *verdef, size_t strndx, const char ***names, size_t *n)
{
	Elf_Data *vd = elf_getdata(verdef, NULL);
	size_t off = 0, cap = 0;
	GElf_Verdef def;

	*names = NULL;
	*n = 0;
	while (vd && gelf_getverdef(vd, (int)off, &def)) {
		GElf_Verdaux aux;
		if (def.vd_ndx >= cap) {
			size_t ncap = def.vd_ndx + 16u;
			const char **v = realloc(*names, ncap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			memset(v + cap, 0, (ncap - cap) * sizeof(*v));
			*names = v;
			cap = ncap;
		}
		if (gelf_getverdaux(vd, (int)(off + def.vd_aux), &aux))
			(*names)[def.vd_ndx] = elf_strptr(elf, strndx, aux.vda_name);
		if (def.vd_ndx >= *n)
			*n = def.vd_ndx + 1u;
		if (!def.vd_next)
			break;
		off += def.vd_next;
	}
	return 0;
}

struct scn_set {
	Elf_Scn *symtab, *versym, *verdef;
	size_t verdef_str;
};

static void find_sections(Elf *elf, struct scn_set *s)
{
	Elf_Scn *scn = NULL, *dynsym = NULL;

	memset(s, 0, sizeof(*s));
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			s->symtab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			dynsym = scn;
		else if (sh.sh_type == SHT_GNU_versym)
			s->versym = scn;
		else if (sh.sh_type == SHT_GNU_verdef) {
			s->verdef = scn;
			s->verdef_str = sh.sh_link;
		}
	}
	if (!s->symtab) {
		s->symtab = dynsym;	/* a stripped object: only the dynamic symbols */
	} else {
		s->versym = NULL;	/* .symtab spells versions in the name */
		s->verdef = NULL;
	}
}

static enum lp_sym_kind sym_kind(unsigned char type)
{
	switch (type) {
	case STT_FUNC: return LP_SYM_FUNC;
	case STT_GNU_IFUNC: return LP_SYM_IFUNC;
	case STT_OBJECT: case STT_TLS: case STT_COMMON: return LP_SYM_OBJECT;
	default: return LP_SYM_OTHER;
	}
}

static int cmp_addr(const void *a, const void *b, void *arg)
{
	const struct lp_symtab *t = arg;
	const struct lp_symbol *x = &t->syms[*(const uint32_t *)a];
	const struct lp_symbol *y = &t->syms[*(const uint32_t *)b];

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->size > y->size ? -1 : x->size < y->size;
}

static int index_symbols(struct lp_object *obj, struct lp_symtab *t);

/*
 * The functions in address order, sorted on first use: resolving a name needs only the hash,
 * and sorting libc's symbols was a tenth of a patch's start-up. NULL when out of memory.
 */
static const uint32_t *functions_by_addr(struct lp_object *obj)
{
	struct lp_symtab *t = obj->symtab;

	if (t->by_addr)
		return t->by_addr;
	if (index_symbols(obj, t))
		return NULL;
	t->by_addr = malloc((t->nsyms + 1) * sizeof(*t->by_addr));
	if (!t->by_addr)
		return NULL;
	t->nfuncs = 0;
	for (size_t i = 0; i < t->nsyms; i++)
		if (t->syms[i].kind == LP_SYM_FUNC || t->syms[i].kind == LP_SYM_IFUNC)
			t->by_addr[t->nfuncs++] = (uint32_t)i;
	qsort_r(t->by_addr, t->nfuncs, sizeof(*t->by_addr), cmp_addr, t);
	return t->by_addr;
}

static int index_symtab(struct lp_symtab *t)
{
	t->nbuckets = 1;
	while (t->nbuckets < t->nsyms * 2 + 1)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->next = malloc((t->nsyms + 1) * sizeof(*t->next));
	if (!t->buckets || !t->next)
		return -ENOMEM;
	for (size_t i = 0; i < t->nsyms; i++) {
		uint32_t b = hash_name(t->syms[i].name) & (t->nbuckets - 1);
		t->next[i] = t->buckets[b];
		t->buckets[b] = (uint32_t)i + 1;
	}
	return 0;
}

/*
 * A copy of "memcpy@@GLIBC_2.14" (as .symtab spells a versioned name) split at the '@', in a
 * chunk chained from t->split; NULL when out of memory.
 */
static char *split_copy(struct lp_symtab *t, const char *raw, size_t len)
{
	enum { CHUNK = 64 * 1024 };

	if (!t->split || t->split_used + len + 1 > CHUNK) {
		size_t sz = len + 1 > CHUNK - sizeof(char *) ? len + 1 + sizeof(char *) : CHUNK;
		char *c = malloc(sz);
		if (!c)
			return NULL;
		memcpy(c, &t->split, sizeof(char *));
		t->split = c;
		t->split_used = sizeof(char *);
	}
	char *name = t->split + t->split_used;
	memcpy(name, raw, len + 1);
	t->split_used += len + 1;
	return name;
}

/*
 * Raw symbol @i as an lp_symbol in @out: 1, or 0 when it is not a defined function or
 * object, or -ENOMEM.
 */
static int make_symbol(struct lp_symtab *t, const struct lp_object *obj, size_t i,
		       struct lp_symbol *out)
{
	const Elf64_Sym *sym = &t->raw[i];
	const char *ver = NULL;
	bool is_default = true;

	if (sym->st_shndx == SHN_UNDEF || !sym->st_value || sym->st_name >= t->str_size)
		return 0;
	if (sym_kind(ELF64_ST_TYPE(sym->st_info)) == LP_SYM_OTHER || !t->str[sym->st_name])
		return 0;
	if (i < t->nvs && (t->versym[i] & 0x7fff) >= 2) {
		is_default = !(t->versym[i] & 0x8000);
		ver = (t->versym[i] & 0x7fff) < t->nver ? t->vernames[t->versym[i] & 0x7fff] : NULL;
	}
	const char *raw = t->str + sym->st_name, *name = raw, *at = strchr(raw, '@');
	if (at) {
		char *copy = split_copy(t, raw, strlen(raw));
		if (!copy)
			return -ENOMEM;
		char *cut = copy + (at - raw);
		is_default = cut[1] == '@';
		*cut = 0;
		ver = cut + (is_default ? 2 : 1);
		name = copy;
	}
	*out = (struct lp_symbol){
		.obj = obj, .name = name, .version = ver, .default_version = is_default,
		.addr = sym->st_value + obj->bias, .size = sym->st_size,
		.kind = sym_kind(ELF64_ST_TYPE(sym->st_info)),
		.global = ELF64_ST_BIND(sym->st_info) != STB_LOCAL,
	};
	return 1;
}

/* The section's bytes as the file has them (x86-64 objects need no conversion). */
static const void *raw_data(Elf_Scn *scn, size_t *size)
{
	Elf_Data *d = scn ? elf_rawdata(scn, NULL) : NULL;

	*size = d && d->d_buf ? d->d_size : 0;
	return *size ? d->d_buf : NULL;
}

/*
 * Find .symtab (or .dynsym when stripped), its strings and versions in the mapped
 * file. Nothing is copied: a patch resolves two names, often with a scan.
 */
static int map_symbols(Elf *elf, struct lp_symtab *t)
{
	struct scn_set s;
	GElf_Shdr sh;
	size_t sym_size, vs_size = 0;

	find_sections(elf, &s);
	if (!s.symtab || !gelf_getshdr(s.symtab, &sh))
		return 0;
	if (gelf_getclass(elf) != ELFCLASS64 || elf_getident(elf, NULL)[EI_DATA] != ELFDATA2LSB)
		return -ENOEXEC;
	t->raw = raw_data(s.symtab, &sym_size);
	t->str = raw_data(elf_getscn(elf, sh.sh_link), &t->str_size);
	t->versym = raw_data(s.versym, &vs_size);
	t->nraw = sym_size / sizeof(*t->raw);
	t->nvs = vs_size / sizeof(*t->versym);
	if (!t->raw) {
		t->nraw = 0;
		return 0;
	}
	if (!t->str || t->str[t->str_size - 1] || (uintptr_t)t->raw % 8 || (uintptr_t)t->versym % 2)
		return -EINVAL;
	if (s.verdef && verdef_names(elf, s.verdef, s.verdef_str, &t->vernames, &t->nver))
		return -ENOMEM;
	return 0;
}

/* Every function and object symbol in syms[], hashed by name: for many lookups. */
static int index_symbols(struct lp_object *obj, struct lp_symtab *t)
{
	if (t->indexed)
		return 0;
	t->syms = malloc(t->nraw * sizeof(*t->syms) + 1);
	if (!t->syms)
		return -ENOMEM;
	for (size_t i = 1; i < t->nraw; i++) {
		int ret = make_symbol(t, obj, i, &t->syms[t->nsyms]);
		if (ret < 0)
			return ret;
		t->nsyms += (size_t)ret;
	}
	int ret = index_symtab(t);
	t->indexed = !ret;
	return ret;
}

static void free_symtab(struct lp_object *obj)
{
	struct lp_symtab *t = obj->symtab;

	if (!t)
		return;
	free(t->syms);
	free(t->vernames);
	while (t->split) {
		char *c = t->split;
		memcpy(&t->split, c, sizeof(char *));
		free(c);
	}
	if (t->elf)
		elf_end(t->elf);
	free(t->buckets);
	free(t->next);
	free(t->by_addr);
	free(t);
	obj->symtab = NULL;
}

void resolve_release(struct lp_proc *p)
{
	for (size_t i = 0; i < p->nobjs; i++)
		free_symtab(&p->objs[i]);
}

static int load_symtab(struct lp_object *obj)
{
	struct lp_symtab *t;
	Elf *elf;
	int fd, ret;

	if (obj->symtab || obj->elf_error)
		return obj->elf_error;
	elf_version(EV_CURRENT);
	fd = object_open(obj);
	if (fd < 0)
		return obj->elf_error = fd;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	t = calloc(1, sizeof(*t));
	if (!elf || !t || elf_kind(elf) != ELF_K_ELF) {
		ret = t ? -ENOEXEC : -ENOMEM;
	} else {
		ret = compute_bias(obj, elf);
		if (!ret)
			ret = map_symbols(elf, t);
	}
	/* The names point into the mapped file: it stays mapped while the table lives. */
	if (t && elf && elf_kind(elf) == ELF_K_ELF && elf_cntl(elf, ELF_C_FDDONE) == 0)
		t->elf = elf;
	else if (elf)
		elf_end(elf);
	close(fd);
	obj->symtab = t;
	if (ret) {
		free_symtab(obj);
		obj->elf_error = ret;
	}
	return ret;
}

int object_read_at(const struct lp_object *obj, uint64_t addr, void *buf, size_t len)
{
	for (size_t i = 0; i < obj->nmaps; i++) {
		const struct lp_mapping *m = &obj->maps[i];
		if (addr < m->start || addr + len > m->end)
			continue;
		int fd = object_open(obj);
		if (fd < 0)
			return fd;
		ssize_t n = pread(fd, buf, len, (off_t)(m->offset + addr - m->start));
		int err = errno;
		close(fd);
		if (n < 0)
			return -err;
		return (size_t)n == len ? 0 : -EIO;
	}
	return -EFAULT;
}

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

/* Lookups of one object answered by scanning its symbols before they are indexed. */
#define SCANS_BEFORE_INDEX 8

/*
 * Every function or object symbol of @obj named @name (any version) to @fn. The first
 * few lookups scan the mapped table (a patch makes two); more build the hash.
 */
static void each_named(struct lp_object *obj, const char *name,
		       void (*fn)(const struct lp_symbol *s, void *arg), void *arg)
{
	struct lp_symtab *t;

	if (load_symtab(obj) || !(t = obj->symtab) || !t->nraw)
		return;
	if (!t->indexed && t->scans < SCANS_BEFORE_INDEX) {
		size_t len = strlen(name);
		t->scans++;
		for (size_t i = 1; i < t->nraw; i++) {
			const Elf64_Sym *sym = &t->raw[i];
			struct lp_symbol s;
			if (sym->st_name >= t->str_size)
				continue;
			const char *raw = t->str + sym->st_name;
			if (raw[0] != name[0] || strncmp(raw, name, len) || (raw[len] && raw[len] != '@'))
				continue;
			if (make_symbol(t, obj, i, &s) > 0)
				fn(&s, arg);
		}
		return;
	}
	if (index_symbols(obj, t) || !t->nsyms)
		return;
	for (uint32_t i = t->buckets[hash_name(name) & (t->nbuckets - 1)]; i; i = t->next[i - 1])
		if (!strcmp(t->syms[i - 1].name, name))
			fn(&t->syms[i - 1], arg);
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

	each_named(obj, name, add_if_version, &w);
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

/* Up to three function names close to @name, for "did you mean". */
static void suggest(struct lp_proc *p, struct lp_object *only, const char *name, char *out, size_t len)
{
	const char *best[3] = { 0 };
	size_t dist[3] = { SIZE_MAX, SIZE_MAX, SIZE_MAX };
	size_t cutoff = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;

	for (size_t o = 0; o < p->nobjs; o++) {
		struct lp_object *obj = &p->objs[o];
		const uint32_t *by_addr;
		if ((only && obj != only) || load_symtab(obj) || !obj->symtab ||
		    !(by_addr = functions_by_addr(obj)))
			continue;
		for (size_t i = 0; i < obj->symtab->nfuncs; i++) {
			const char *s = obj->symtab->syms[by_addr[i]].name;
			size_t dd = edit_distance(name, s, cutoff);
			if (dd > cutoff || (best[2] && dd >= dist[2]))
				continue;
			bool dup = false;
			for (int k = 0; k < 3; k++)
				dup |= best[k] && !strcmp(best[k], s);
			if (dup)
				continue;
			int k = 2;
			while (k > 0 && dd < dist[k - 1]) {
				best[k] = best[k - 1];
				dist[k] = dist[k - 1];
				k--;
			}
			best[k] = s;
			dist[k] = dd;
		}
	}
	out[0] = 0;
	for (int k = 0; k < 3 && best[k]; k++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", k ? ", " : "", best[k]);
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
	suggest(p, only, name, near, sizeof(near));
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
			each_named(&p->objs[i], name, add_if_version, &w);
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
	struct lp_symtab *t;
	const uint32_t *by_addr;
	size_t lo = 0, hi;

	if (!obj || load_symtab(obj) || !(t = obj->symtab) || !(by_addr = functions_by_addr(obj)))
		return -ENOENT;
	hi = t->nfuncs;
	while (lo < hi) {	/* first function starting above addr */
		size_t mid = (lo + hi) / 2;
		if (t->syms[by_addr[mid]].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct lp_symbol *best = NULL;
	for (size_t k = lo; k-- > 0 && lo - k <= 64;) {
		const struct lp_symbol *s = &t->syms[by_addr[k]];
		if (addr >= s->addr + (s->size ? s->size : 1))
			continue;
		if (!best || s->addr > best->addr || (s->addr == best->addr && s->global && !best->global))
			best = s;
	}
	if (!best)
		return -ENOENT;
	*out = *best;
	out->offset = 0;
	return 0;
}

int resolve_each_function(struct lp_proc *p, void (*fn)(const struct lp_symbol *s, void *arg),
			  void *arg)
{
	for (size_t o = 0; o < p->nobjs; o++) {
		struct lp_object *obj = &p->objs[o];
		const uint32_t *by_addr;
		if (load_symtab(obj) || !obj->symtab)
			continue;	/* not an ELF file we can read: nothing to list */
		if (!(by_addr = functions_by_addr(obj)))
			return -ENOMEM;
		for (size_t i = 0; i < obj->symtab->nfuncs; i++)
			fn(&obj->symtab->syms[by_addr[i]], arg);
	}
	return 0;
}

int object_each_exec_section(struct lp_object *obj,
			     int (*fn)(const char *name, uint64_t addr, const uint8_t *bytes,
				       size_t len, void *arg), void *arg)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int ret = load_symtab(obj), fd;

	if (ret)
		return ret;	/* also computes the bias */
	fd = object_open(obj);
	if (fd < 0)
		return fd;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_getshdrstrndx(elf, &shstrndx)) {
		ret = -ENOEXEC;
		goto out;
	}
	while (!ret && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (data && data->d_buf)
			ret = fn(name ? name : "?", sh.sh_addr + obj->bias, data->d_buf, data->d_size, arg);
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}
