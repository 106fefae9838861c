/*
 * ELF symbols: one mapped object's symbol tables, read from its file with libelf
 * (docs/design.md §2): loaded on first use, looked up by name and by address, and the
 * file's bytes and executable sections at their runtime addresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "audit.h"
#include "elfsym.h"
#include "link.h"

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
	bool shared;		/* in the shared list: freed by elfsym_share(false) only */
};

/*
 * Symbol tables kept for every process that maps the same file (elfsym_share()), by
 * device, inode and build-id. syms[] hold link-time addresses and no object: each
 * object adds its own bias (placed()).
 */
struct shared_table {
	uint64_t dev, inode;
	char build_id[132];
	struct lp_symtab *t;
	struct shared_table *next;
};

static bool sharing;
static struct shared_table *shared_tables;

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
 * object, or -ENOMEM. @obj NULL: at its link-time address, of no object (syms[]).
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
		.addr = sym->st_value + (obj ? obj->bias : 0), .size = sym->st_size,
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

/* syms[] entry @s as @obj has it: its object and runtime address. */
static struct lp_symbol placed(const struct lp_object *obj, const struct lp_symbol *s)
{
	struct lp_symbol r = *s;

	r.obj = obj;
	r.addr += obj->bias;
	return r;
}

/* Every function and object symbol in syms[], hashed by name: for many lookups. */
static int index_symbols(struct lp_symtab *t)
{
	if (t->indexed)
		return 0;
	t->syms = malloc(t->nraw * sizeof(*t->syms) + 1);
	if (!t->syms)
		return -ENOMEM;
	for (size_t i = 1; i < t->nraw; i++) {
		int ret = make_symbol(t, NULL, i, &t->syms[t->nsyms]);
		if (ret < 0)
			return ret;
		t->nsyms += (size_t)ret;
	}
	int ret = index_symtab(t);
	t->indexed = !ret;
	return ret;
}

/*
 * The functions in address order, sorted on first use: resolving a name needs only the hash,
 * and sorting libc's symbols was a tenth of a patch's start-up. NULL when out of memory.
 */
static const uint32_t *functions_by_addr(struct lp_object *obj)
{
	struct lp_symtab *t = obj->symtab;

	if (t->by_addr)
		return t->by_addr;
	if (index_symbols(t))
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

static void free_table(struct lp_symtab *t)
{
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
}

static void free_symtab(struct lp_object *obj)
{
	if (obj->symtab && !obj->symtab->shared)
		free_table(obj->symtab);
	obj->symtab = NULL;
}

void elfsym_share(bool on)
{
	sharing = on;
	while (!on && shared_tables) {
		struct shared_table *s = shared_tables;
		shared_tables = s->next;
		free_table(s->t);
		free(s);
	}
}

/*
 * With sharing on, the table another process's object loaded from the same file (device,
 * inode and build-id): 1 when @obj now uses it, 0 when there is none (@id: the build-id).
 */
static int shared_table_for(struct lp_object *obj, int fd, char *id, size_t cap)
{
	if (audit_build_id(fd, id, cap))
		id[0] = 0;
	for (struct shared_table *s = shared_tables; s; s = s->next) {
		if (s->dev != obj->dev || s->inode != obj->inode || strcmp(s->build_id, id))
			continue;
		if (compute_bias(obj, s->t->elf))
			return 0;
		obj->symtab = s->t;
		return 1;
	}
	return 0;
}

static void share_table(const struct lp_object *obj, struct lp_symtab *t, const char *id)
{
	struct shared_table *s = calloc(1, sizeof(*s));

	if (!s || !t->elf) {
		free(s);
		return;		/* not shared: freed with its object */
	}
	*s = (struct shared_table){ .dev = obj->dev, .inode = obj->inode, .t = t,
				    .next = shared_tables };
	snprintf(s->build_id, sizeof(s->build_id), "%s", id);
	t->shared = true;
	shared_tables = s;
}

void elfsym_release(struct lp_proc *p)
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
	char id[132] = "";
	if (sharing && shared_table_for(obj, fd, id, sizeof(id))) {
		close(fd);
		return 0;
	}
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
	} else if (sharing) {
		share_table(obj, t, id);
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

/* Lookups of one object answered by scanning its symbols before they are indexed. */
#define SCANS_BEFORE_INDEX 8

/*
 * Every function or object symbol of @obj named @name (any version) to @fn. The first
 * few lookups scan the mapped table (a patch makes two); more build the hash.
 */
void object_each_named(struct lp_object *obj, const char *name,
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
	if (index_symbols(t) || !t->nsyms)
		return;
	for (uint32_t i = t->buckets[hash_name(name) & (t->nbuckets - 1)]; i; i = t->next[i - 1])
		if (!strcmp(t->syms[i - 1].name, name)) {
			struct lp_symbol s = placed(obj, &t->syms[i - 1]);
			fn(&s, arg);
		}
}

int object_each_function(struct lp_object *obj, void (*fn)(const struct lp_symbol *s, void *arg),
			 void *arg)
{
	const uint32_t *by_addr;

	if (load_symtab(obj) || !obj->symtab)
		return 0;	/* not an ELF file we can read: nothing to list */
	if (!(by_addr = functions_by_addr(obj)))
		return -ENOMEM;
	for (size_t i = 0; i < obj->symtab->nfuncs; i++) {
		struct lp_symbol s = placed(obj, &obj->symtab->syms[by_addr[i]]);
		fn(&s, arg);
	}
	return 0;
}

int object_function_at(struct lp_object *obj, uint64_t addr, struct lp_symbol *out)
{
	struct lp_symtab *t;
	const uint32_t *by_addr;
	size_t lo = 0, hi;

	if (load_symtab(obj) || !(t = obj->symtab) || !(by_addr = functions_by_addr(obj)) ||
	    addr < obj->bias)
		return -ENOENT;
	addr -= obj->bias;	/* syms[] hold link-time addresses */
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
	*out = placed(obj, best);
	out->offset = 0;
	return 0;
}

/* Call @fn for every section of @obj's file whose header passes @want, with its bytes. */
static int each_section(struct lp_object *obj, bool (*want)(const GElf_Shdr *sh),
			int (*fn)(const char *name, const GElf_Shdr *sh, const Elf_Data *data, void *arg),
			void *arg)
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
		if (!gelf_getshdr(scn, &sh) || !want(&sh))
			continue;
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		ret = fn(name ? name : "?", &sh, elf_getdata(scn, NULL), arg);
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

static bool exec_progbits(const GElf_Shdr *sh)
{
	return sh->sh_type == SHT_PROGBITS && (sh->sh_flags & SHF_EXECINSTR);
}

struct exec_walk {
	const struct lp_object *obj;
	int (*fn)(const char *name, uint64_t addr, const uint8_t *bytes, size_t len, void *arg);
	void *arg;
};

static int exec_one(const char *name, const GElf_Shdr *sh, const Elf_Data *data, void *arg)
{
	struct exec_walk *w = arg;

	if (!data || !data->d_buf)
		return 0;
	return w->fn(name, sh->sh_addr + w->obj->bias, data->d_buf, data->d_size, w->arg);
}

int object_each_exec_section(struct lp_object *obj,
			     int (*fn)(const char *name, uint64_t addr, const uint8_t *bytes,
				       size_t len, void *arg), void *arg)
{
	struct exec_walk w = { obj, fn, arg };

	return each_section(obj, exec_progbits, exec_one, &w);
}

static bool allocated(const GElf_Shdr *sh)
{
	return sh->sh_flags & SHF_ALLOC;
}

struct alloc_walk {
	const struct lp_object *obj;
	int (*fn)(const char *name, uint64_t addr, uint64_t size, uint64_t flags, void *arg);
	void *arg;
};

static int alloc_one(const char *name, const GElf_Shdr *sh, const Elf_Data *data, void *arg)
{
	struct alloc_walk *w = arg;

	(void)data;
	return w->fn(name, sh->sh_addr + w->obj->bias, sh->sh_size, sh->sh_flags, w->arg);
}

int object_each_alloc_section(struct lp_object *obj,
			      int (*fn)(const char *name, uint64_t addr, uint64_t size, uint64_t flags,
					void *arg), void *arg)
{
	struct alloc_walk w = { obj, fn, arg };

	return each_section(obj, allocated, alloc_one, &w);
}

/* The note of a patch image (link.h) in its first page @b: 0 and the sha256, or -ENOENT. */
static int note_in(const uint8_t *b, size_t len, uint8_t sha[32], char *name, size_t cap)
{
	const Elf64_Ehdr *eh = (const void *)b;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > len || eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr))
		return -ENOENT;
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, b + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
			continue;
		const uint8_t *n = b + ph.p_offset, *end = n + ph.p_filesz;
		while (end - n >= (long)sizeof(Elf64_Nhdr)) {
			Elf64_Nhdr nh;
			memcpy(&nh, n, sizeof(nh));
			/* In size_t: a 32-bit size near 4 GiB rounded up in 32 bits wraps to 0. */
			size_t nsz = ((size_t)nh.n_namesz + 3) & ~(size_t)3;
			size_t dsz = ((size_t)nh.n_descsz + 3) & ~(size_t)3;
			size_t room = (size_t)(end - n) - sizeof(nh);
			if (nsz > room || dsz > room - nsz)
				break;
			const uint8_t *desc = n + sizeof(nh) + nsz;
			if (nh.n_type == LP_NOTE_TYPE && nh.n_namesz == sizeof(LP_NOTE_NAME) &&
			    !memcmp(n + sizeof(nh), LP_NOTE_NAME, sizeof(LP_NOTE_NAME)) && nh.n_descsz > 32) {
				memcpy(sha, desc, 32);
				snprintf(name, cap, "%.*s", (int)(nh.n_descsz - 32), (const char *)desc + 32);
				return 0;
			}
			n = desc + dsz;
		}
	}
	return -ENOENT;
}

int object_patch_note(const struct lp_object *obj, uint8_t sha256[32], char *name, size_t cap)
{
	uint8_t page[LP_LINK_PAGE];

	if (!obj->patch)
		return -ENOENT;
	int fd = object_open(obj);
	if (fd < 0)
		return fd;
	ssize_t n = pread(fd, page, sizeof(page), 0);
	close(fd);
	return n < 0 ? -errno : note_in(page, (size_t)n, sha256, name, cap);
}
