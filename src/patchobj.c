/*
 * Patch object: read and check an ELF64 x86-64 relocatable object for --load
 * (docs/design.md §8). libelf reads the ELF and section headers; the contents
 * (symbols, relocations, strings) are read from the bytes directly, each entry
 * copied out, because a fuzzed file may put a table at any offset: every offset, size
 * and index is checked before use. Names point into po->bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "patchobj.h"
#include "sha256.h"

#define REBUILD "rebuild it with cc -c"
#define TLS_FIX "thread-local variables cannot be loaded into a running process: keep the " \
		"state in a static variable, or reach the program's own TLS through a function it exports"

struct parse {
	struct lp_patchobj *po;
	struct lp_diag *d;
	GElf_Shdr *sh;		/* every section header */
	size_t shnum;
	const char *shstr;	/* section names, shstr_size bytes */
	size_t shstr_size;
	int *psec_of;		/* per section index: index in po->secs, or -1 */
	size_t symtab;		/* index of .symtab, 0 when none */
	const uint8_t *xindex_raw;	/* SHT_SYMTAB_SHNDX contents (unaligned), or NULL */
	size_t nxindex;
};

static const char *const rel_names[] = {
#define N(t) [R_X86_64_##t] = "R_X86_64_" #t
	N(NONE), N(64), N(PC32), N(GOT32), N(PLT32), N(COPY), N(GLOB_DAT), N(JUMP_SLOT),
	N(RELATIVE), N(GOTPCREL), N(32), N(32S), N(16), N(PC16), N(8), N(PC8), N(DTPMOD64),
	N(DTPOFF64), N(TPOFF64), N(TLSGD), N(TLSLD), N(DTPOFF32), N(GOTTPOFF), N(TPOFF32),
	N(PC64), N(GOTOFF64), N(GOTPC32), N(GOT64), N(GOTPCREL64), N(GOTPC64), N(GOTPLT64),
	N(PLTOFF64), N(SIZE32), N(SIZE64), N(GOTPC32_TLSDESC), N(TLSDESC_CALL), N(TLSDESC),
	N(IRELATIVE), N(RELATIVE64), N(GOTPCRELX), N(REX_GOTPCRELX),
#undef N
};

const char *patchobj_rel_name(uint32_t type)
{
	return type < LP_ARRAY_SIZE(rel_names) ? rel_names[type] : NULL;
}

unsigned int patchobj_rel_width(uint32_t type)
{
	switch (type) {
	case R_X86_64_NONE:
		return 0;
	case R_X86_64_PC32: case R_X86_64_PLT32: case R_X86_64_32: case R_X86_64_32S:
	case R_X86_64_GOTPCREL: case R_X86_64_GOTPCRELX: case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_GOTPC32:
		return 4;
	case R_X86_64_64: case R_X86_64_PC64: case R_X86_64_GOTPC64: case R_X86_64_GOTOFF64:
	case R_X86_64_GOTPCREL64:
		return 8;
	default:
		return UINT_MAX;	/* not handled by link.c */
	}
}

static bool rel_is_tls(uint32_t type)
{
	switch (type) {
	case R_X86_64_DTPMOD64: case R_X86_64_DTPOFF64: case R_X86_64_TPOFF64:
	case R_X86_64_TLSGD: case R_X86_64_TLSLD: case R_X86_64_DTPOFF32:
	case R_X86_64_GOTTPOFF: case R_X86_64_TPOFF32: case R_X86_64_GOTPC32_TLSDESC:
	case R_X86_64_TLSDESC_CALL: case R_X86_64_TLSDESC:
		return true;
	default:
		return false;
	}
}

static int refuse(struct parse *c, const char *fmt, ...) LP_PRINTF(2, 3);
static int refuse(struct parse *c, const char *fmt, ...)
{
	char buf[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return lp_fail(c->d, LP_EXIT_SITE, "%s: %s", c->po->name, buf);
}

/* A NUL-terminated string at @off of a table of @size bytes, or NULL. */
static const char *str_at(const char *tab, size_t size, uint64_t off)
{
	if (!tab || off >= size || !memchr(tab + off, 0, size - off))
		return NULL;
	return tab + off;
}

static const char *sec_name(const struct parse *c, size_t i)
{
	const char *s = str_at(c->shstr, c->shstr_size, c->sh[i].sh_name);

	return s ? s : "?";
}

/* The file bytes of section @i, or NULL when they are not all inside the file. */
static const uint8_t *sec_bytes(const struct parse *c, size_t i)
{
	const GElf_Shdr *s = &c->sh[i];

	if (s->sh_type == SHT_NOBITS || s->sh_offset > c->po->len ||
	    s->sh_size > c->po->len - s->sh_offset)
		return NULL;
	return c->po->bytes + s->sh_offset;
}

static int check_ehdr(struct parse *c, Elf *elf)
{
	GElf_Ehdr eh;

	if (elf_kind(elf) != ELF_K_ELF)
		return refuse(c, "not an ELF object (give the .o that cc -c makes)");
	if (gelf_getclass(elf) != ELFCLASS64 || !gelf_getehdr(elf, &eh) ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
		return refuse(c, "not an ELF64 x86-64 object (build the patch for x86-64: cc -c without -m32)");
	if (eh.e_type == ET_DYN || eh.e_type == ET_EXEC)
		return refuse(c, "a linked program or library (give the .o that cc -c makes, not a linked program or library)");
	if (eh.e_type != ET_REL)
		return refuse(c, "not a relocatable object (give the .o that cc -c makes)");
	return 0;
}

static int read_shdrs(struct parse *c, Elf *elf)
{
	size_t strndx;

	if (elf_getshdrnum(elf, &c->shnum) || elf_getshdrstrndx(elf, &strndx) ||
	    !c->shnum || strndx >= c->shnum || c->shnum > c->po->len / sizeof(Elf64_Shdr))
		return refuse(c, "malformed section headers (%s)", REBUILD);
	c->sh = calloc(c->shnum, sizeof(*c->sh));
	c->psec_of = malloc(c->shnum * sizeof(*c->psec_of));
	if (!c->sh || !c->psec_of)
		return -ENOMEM;
	for (size_t i = 0; i < c->shnum; i++) {
		Elf_Scn *scn = elf_getscn(elf, i);
		c->psec_of[i] = -1;
		if (!scn || !gelf_getshdr(scn, &c->sh[i]))
			return refuse(c, "malformed section header %zu (%s)", i, REBUILD);
		if (i && c->sh[i].sh_type != SHT_NOBITS && !sec_bytes(c, i))
			return refuse(c, "section %zu lies outside the file (truncated? %s)", i, REBUILD);
	}
	const uint8_t *str = sec_bytes(c, strndx);
	if (!str || c->sh[strndx].sh_type != SHT_STRTAB)
		return refuse(c, "malformed section name table (%s)", REBUILD);
	c->shstr = (const char *)str;
	c->shstr_size = c->sh[strndx].sh_size;
	return 0;
}

/* ".init_array", or ".init_array.NNN" / ".init_array" + anything after a dot. */
static bool has_prefix_name(const char *name, const char *base)
{
	size_t n = strlen(base);

	return !strncmp(name, base, n) && (!name[n] || name[n] == '.');
}

static bool is_ctor(const char *name, uint32_t type)
{
	static const char *const ctors[] = { ".init_array", ".fini_array", ".preinit_array",
					     ".ctors", ".dtors" };

	if (type == SHT_INIT_ARRAY || type == SHT_FINI_ARRAY || type == SHT_PREINIT_ARRAY)
		return true;
	for (size_t i = 0; i < LP_ARRAY_SIZE(ctors); i++)
		if (has_prefix_name(name, ctors[i]))
			return true;
	return false;
}

static int check_section(struct parse *c, size_t i)
{
	const GElf_Shdr *s = &c->sh[i];
	const char *name = sec_name(c, i);

	if (!str_at(c->shstr, c->shstr_size, s->sh_name))
		return refuse(c, "section %zu has no valid name (%s)", i, REBUILD);
	if (s->sh_type == SHT_REL)
		return refuse(c, "section %s holds SHT_REL relocations, which x86-64 objects do not use (give the .o that gcc or clang -c makes)", name);
	if (s->sh_flags & SHF_TLS)
		return refuse(c, "section %s is thread-local (%s)", name, TLS_FIX);
	if (is_ctor(name, s->sh_type))
		return refuse(c, "section %s holds constructors or destructors, which do not run when a patch is loaded (do the set-up lazily, on the patch's first call)", name);
	return 0;
}

/*
 * Loaded: SHF_ALLOC sections but notes, groups and .eh_frame. Unwind info is not
 * loaded: nothing registers it with the program's unwinder, so a patch function is not
 * unwound through by C++ exceptions or backtrace().
 */
static bool is_loaded(const struct parse *c, size_t i)
{
	const GElf_Shdr *s = &c->sh[i];
	const char *name = sec_name(c, i);

	if (!(s->sh_flags & SHF_ALLOC) || s->sh_type == SHT_NOTE || s->sh_type == SHT_GROUP)
		return false;
	return s->sh_type != SHT_X86_64_UNWIND && strcmp(name, ".eh_frame") &&
	       strcmp(name, ".livepatch.bind");
}

static enum lp_psec_kind kind_of(const GElf_Shdr *s)
{
	if (s->sh_flags & SHF_EXECINSTR)
		return LP_PSEC_TEXT;
	if (s->sh_type == SHT_NOBITS)
		return LP_PSEC_BSS;
	return s->sh_flags & SHF_WRITE ? LP_PSEC_DATA : LP_PSEC_RODATA;
}

static int collect_sections(struct parse *c)
{
	struct lp_patchobj *po = c->po;
	int ret;

	po->secs = calloc(c->shnum, sizeof(*po->secs));
	if (!po->secs)
		return -ENOMEM;
	for (size_t i = 1; i < c->shnum; i++) {
		if ((ret = check_section(c, i)))
			return ret;
		if (c->sh[i].sh_type == SHT_SYMTAB) {
			if (c->symtab)
				return refuse(c, "more than one symbol table (%s)", REBUILD);
			c->symtab = i;
		}
		if (!is_loaded(c, i))
			continue;
		struct lp_psec *p = &po->secs[po->nsecs];
		uint64_t align = c->sh[i].sh_addralign ? c->sh[i].sh_addralign : 1;
		if (align & (align - 1))
			return refuse(c, "section %s has alignment %#llx, not a power of two (%s)",
				      sec_name(c, i), (unsigned long long)align, REBUILD);
		p->name = sec_name(c, i);
		p->shndx = (unsigned int)i;
		p->kind = kind_of(&c->sh[i]);
		p->size = c->sh[i].sh_size;
		p->align = align;
		p->type = c->sh[i].sh_type;
		p->flags = c->sh[i].sh_flags;
		p->bytes = p->kind == LP_PSEC_BSS ? NULL : sec_bytes(c, i);
		c->psec_of[i] = (int)po->nsecs++;
	}
	return 0;
}

/* SHT_SYMTAB_SHNDX: the real section index of symbols whose st_shndx is SHN_XINDEX. */
static int find_xindex(struct parse *c)
{
	for (size_t i = 1; i < c->shnum; i++) {
		if (c->sh[i].sh_type != SHT_SYMTAB_SHNDX || c->sh[i].sh_link != c->symtab)
			continue;
		c->xindex_raw = sec_bytes(c, i);
		c->nxindex = c->sh[i].sh_size / 4;
	}
	return 0;
}

static int read_sym(struct parse *c, const uint8_t *tab, const char *str, size_t str_size,
		    size_t i)
{
	struct lp_psym *ps = &c->po->syms[i];
	Elf64_Sym s;

	memcpy(&s, tab + i * sizeof(s), sizeof(s));
	ps->name = str_at(str, str_size, s.st_name);
	if (!ps->name)
		return refuse(c, "symbol %zu has no valid name (%s)", i, REBUILD);
	ps->shndx = s.st_shndx;
	if (s.st_shndx == SHN_XINDEX) {
		if (!c->xindex_raw || i >= c->nxindex)
			return refuse(c, "symbol %s has no extended section index (%s)", ps->name, REBUILD);
		memcpy(&ps->shndx, c->xindex_raw + 4 * i, 4);
	}
	ps->value = s.st_value;
	ps->size = s.st_size;
	ps->type = ELF64_ST_TYPE(s.st_info);
	ps->bind = ELF64_ST_BIND(s.st_info);
	ps->visibility = ELF64_ST_VISIBILITY(s.st_other);
	ps->psec = -1;
	if (ps->shndx == SHN_UNDEF || ps->shndx == SHN_ABS || ps->shndx == SHN_COMMON)
		return 0;
	if (ps->shndx >= c->shnum)
		return refuse(c, "symbol %s is in section %u, which does not exist (%s)",
			      ps->name, ps->shndx, REBUILD);
	ps->psec = c->psec_of[ps->shndx];
	return 0;
}

static int check_sym(struct parse *c, const struct lp_psym *s)
{
	if (!strcmp(s->name, "__gnu_lto_slim"))
		return refuse(c, "GCC LTO bytecode, not machine code (build the patch without -flto)");
	if (s->type == STT_TLS)
		return refuse(c, "symbol %s is thread-local (%s)", s->name, TLS_FIX);
	if (s->type == STT_GNU_IFUNC && s->shndx != SHN_UNDEF)
		return refuse(c, "symbol %s is an IFUNC defined in the patch, whose resolver would have to run in the process (choose the implementation in a plain function)", s->name);
	if (s->shndx == SHN_COMMON && s->value & (s->value - 1))
		return refuse(c, "common symbol %s has alignment %#llx, not a power of two (%s)",
			      s->name, (unsigned long long)s->value, REBUILD);
	if (s->psec >= 0 && s->value > c->po->secs[s->psec].size)
		return refuse(c, "symbol %s lies past the end of its section (%s)", s->name, REBUILD);
	return 0;
}

static int read_symtab(struct parse *c)
{
	const GElf_Shdr *st = &c->sh[c->symtab];
	const uint8_t *tab = sec_bytes(c, c->symtab);
	int ret;

	if (!c->symtab)
		return 0;
	if (!tab || st->sh_entsize != sizeof(Elf64_Sym) || st->sh_size % sizeof(Elf64_Sym) ||
	    st->sh_link >= c->shnum || c->sh[st->sh_link].sh_type != SHT_STRTAB ||
	    !sec_bytes(c, st->sh_link))
		return refuse(c, "malformed symbol table (%s)", REBUILD);
	const char *str = (const char *)sec_bytes(c, st->sh_link);
	size_t nsyms = st->sh_size / sizeof(Elf64_Sym);
	find_xindex(c);
	c->po->syms = calloc(nsyms ? nsyms : 1, sizeof(*c->po->syms));
	if (!c->po->syms)
		return -ENOMEM;
	c->po->nsyms = nsyms;
	for (size_t i = 0; i < nsyms; i++) {
		if ((ret = read_sym(c, tab, str, c->sh[st->sh_link].sh_size, i)))
			return ret;
		if ((ret = check_sym(c, &c->po->syms[i])))
			return ret;
	}
	return 0;
}

/* Relocations of loaded sections only: those of .eh_frame and .debug_* are not applied. */
static bool rela_applies(const struct parse *c, size_t i)
{
	const GElf_Shdr *s = &c->sh[i];

	return s->sh_type == SHT_RELA && s->sh_info < c->shnum && c->psec_of[s->sh_info] >= 0;
}

static int check_rel(struct parse *c, const struct lp_prel *r)
{
	const struct lp_psec *sec = &c->po->secs[r->psec];
	const char *tn = patchobj_rel_name(r->type);
	unsigned int width = patchobj_rel_width(r->type);
	char tbuf[32];

	if (!tn) {
		snprintf(tbuf, sizeof(tbuf), "%u", r->type);
		tn = tbuf;
	}
	if (rel_is_tls(r->type))
		return refuse(c, "relocation %s at %s+%#llx (%s)", tn, sec->name,
			      (unsigned long long)r->offset, TLS_FIX);
	if (width == UINT_MAX)
		return refuse(c, "relocation type %s at %s+%#llx is not supported (build the patch with gcc or clang -c -fPIC, without -mcmodel=large)",
			      tn, sec->name, (unsigned long long)r->offset);
	if (sec->kind == LP_PSEC_BSS || r->offset > sec->size || width > sec->size - r->offset)
		return refuse(c, "relocation %s at %s+%#llx lies outside its section (%s)", tn,
			      sec->name, (unsigned long long)r->offset, REBUILD);
	if (r->sym >= c->po->nsyms)
		return refuse(c, "relocation %s at %s+%#llx names symbol %u, which does not exist (%s)",
			      tn, sec->name, (unsigned long long)r->offset, r->sym, REBUILD);
	const struct lp_psym *s = &c->po->syms[r->sym];
	if (s->psec < 0 && s->shndx != SHN_UNDEF && s->shndx != SHN_ABS && s->shndx != SHN_COMMON)
		return refuse(c, "relocation %s at %s+%#llx refers to section %s, which is not loaded (%s)",
			      tn, sec->name, (unsigned long long)r->offset,
			      sec_name(c, s->shndx), REBUILD);
	return 0;
}

static int read_rela(struct parse *c, size_t i)
{
	const GElf_Shdr *s = &c->sh[i];
	const uint8_t *tab = sec_bytes(c, i);
	int ret;

	if (!tab || s->sh_entsize != sizeof(Elf64_Rela) || s->sh_size % sizeof(Elf64_Rela) ||
	    s->sh_link != c->symtab || !c->symtab)
		return refuse(c, "malformed relocation section %s (%s)", sec_name(c, i), REBUILD);
	for (size_t k = 0; k < s->sh_size / sizeof(Elf64_Rela); k++) {
		struct lp_prel *r = &c->po->rels[c->po->nrels];
		Elf64_Rela e;

		memcpy(&e, tab + k * sizeof(e), sizeof(e));
		r->psec = (unsigned int)c->psec_of[s->sh_info];
		r->offset = e.r_offset;
		r->type = ELF64_R_TYPE(e.r_info);
		r->sym = ELF64_R_SYM(e.r_info);
		r->addend = e.r_addend;
		if ((ret = check_rel(c, r)))
			return ret;
		c->po->nrels++;
	}
	return 0;
}

static int read_relas(struct parse *c)
{
	size_t n = 0;
	int ret;

	for (size_t i = 1; i < c->shnum; i++)
		if (rela_applies(c, i))
			n += c->sh[i].sh_size / sizeof(Elf64_Rela);
	/* Tables that share bytes would multiply the memory the file can make us take. */
	if (n > c->po->len / sizeof(Elf64_Rela))
		return refuse(c, "relocation sections overlap (%s)", REBUILD);
	c->po->rels = calloc(n ? n : 1, sizeof(*c->po->rels));
	if (!c->po->rels)
		return -ENOMEM;
	for (size_t i = 1; i < c->shnum; i++)
		if (rela_applies(c, i) && (ret = read_rela(c, i)))
			return ret;
	return 0;
}

/* .livepatch.bind: "symbol\0object\0" pairs, both names non-empty. */
static int read_pins_of(struct parse *c, size_t i)
{
	const char *p = (const char *)sec_bytes(c, i), *end;
	size_t size = c->sh[i].sh_size, n = 0;

	if (!p || (size && p[size - 1]))
		return refuse(c, "malformed .livepatch.bind section (%s)", REBUILD);
	end = p + size;
	for (const char *q = p; q < end; q += strlen(q) + 1)
		n++;
	if (n % 2)
		return refuse(c, "malformed .livepatch.bind section: a symbol without its object (%s)", REBUILD);
	struct lp_ppin *pins = realloc(c->po->pins, (c->po->npins + n / 2 + 1) * sizeof(*pins));
	if (!pins)
		return -ENOMEM;
	c->po->pins = pins;
	for (const char *q = p; q < end; ) {
		struct lp_ppin *pin = &pins[c->po->npins++];
		pin->symbol = q;
		q += strlen(q) + 1;
		pin->object = q;
		q += strlen(q) + 1;
		if (!*pin->symbol || !*pin->object)
			return refuse(c, "malformed .livepatch.bind section: an empty name (%s)", REBUILD);
	}
	return 0;
}

static int read_pins(struct parse *c)
{
	int ret;

	for (size_t i = 1; i < c->shnum; i++)
		if (!strcmp(sec_name(c, i), ".livepatch.bind") && (ret = read_pins_of(c, i)))
			return ret;
	return 0;
}

static int parse_elf(struct parse *c)
{
	Elf *elf;
	int ret;

	if (c->po->len >= 4 && !memcmp(c->po->bytes, "BC\xc0\xde", 4))
		return refuse(c, "LLVM bitcode, not machine code (build the patch without -flto)");
	elf_version(EV_CURRENT);
	elf = elf_memory((char *)c->po->bytes, c->po->len);
	if (!elf)
		return refuse(c, "not an ELF object (give the .o that cc -c makes)");
	ret = check_ehdr(c, elf);
	if (!ret)
		ret = read_shdrs(c, elf);
	elf_end(elf);	/* from here on, only the bytes are read */
	if (!ret)
		ret = collect_sections(c);
	if (!ret)
		ret = read_symtab(c);
	if (!ret)
		ret = read_relas(c);
	if (!ret)
		ret = read_pins(c);
	return ret;
}

int patchobj_parse(struct lp_patchobj *po, uint8_t *bytes, size_t len, const char *name,
		   struct lp_diag *d)
{
	struct parse c = { .po = po, .d = d };
	const char *slash;
	int ret;

	memset(po, 0, sizeof(*po));
	snprintf(po->path, sizeof(po->path), "%s", name ? name : "patch");
	slash = strrchr(po->path, '/');
	po->name = slash ? slash + 1 : po->path;
	po->bytes = bytes;
	po->len = len;
	lp_sha256(bytes, len, po->sha256);
	ret = bytes ? parse_elf(&c) : -EINVAL;
	free(c.sh);
	free(c.psec_of);
	if (ret == -ENOMEM)
		ret = lp_fail(d, LP_EXIT_INTERNAL, "%s: out of memory reading the patch", po->name);
	if (ret)
		patchobj_free(po);
	return ret;
}

static int check_file(int fd, const char *path, uid_t caller, struct lp_diag *d, struct stat *sb)
{
	if (fstat(fd, sb))
		return lp_fail(d, LP_EXIT_USAGE, "cannot stat patch %s: %s", path, strerror(errno));
	if (!S_ISREG(sb->st_mode))
		return lp_fail(d, LP_EXIT_USAGE, "patch %s is not a regular file (give the .o that cc -c makes)", path);
	if (sb->st_mode & 022)
		return lp_fail(d, LP_EXIT_USAGE, "patch %s is writable by group or others, who could change the code loaded (chmod go-w %s)", path, path);
	if (sb->st_uid != 0 && sb->st_uid != caller)
		return lp_fail(d, LP_EXIT_USAGE, "patch %s is owned by uid %u, neither root nor you (chown it to root or to yourself)",
			       path, (unsigned int)sb->st_uid);
	if ((uint64_t)sb->st_size > LP_PATCH_MAX_BYTES)
		return lp_fail(d, LP_EXIT_USAGE, "patch %s is larger than %u MiB (split the patch)",
			       path, LP_PATCH_MAX_BYTES >> 20);
	return 0;
}

/* Up to @max bytes of @fd; fewer if the file shrank since fstat. */
static ssize_t read_all(int fd, uint8_t *buf, size_t max)
{
	size_t got = 0;

	while (got < max) {
		ssize_t n = read(fd, buf + got, max - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int patchobj_open(struct lp_patchobj *po, const char *path, uid_t caller, struct lp_diag *d)
{
	struct stat sb;
	int fd, ret;

	memset(po, 0, sizeof(*po));
	if (strlen(path) >= sizeof(po->path))
		return lp_fail(d, LP_EXIT_USAGE, "patch path too long (give a shorter path)");
	/* O_NONBLOCK: a FIFO must be refused, not waited on; a regular file ignores it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return lp_fail(d, LP_EXIT_USAGE, "cannot open patch %s: %s (give the path of the patch's .o)",
			       path, strerror(errno));
	ret = check_file(fd, path, caller, d, &sb);
	/* One byte more than the limit is read, so that a file that grew is caught. */
	uint8_t *buf = ret ? NULL : malloc((size_t)sb.st_size + 1);
	ssize_t n = 0;
	if (!ret && !buf)
		ret = lp_fail(d, LP_EXIT_INTERNAL, "out of memory reading patch %s", path);
	if (!ret && (n = read_all(fd, buf, (size_t)sb.st_size + 1)) < 0)
		ret = lp_fail(d, LP_EXIT_USAGE, "cannot read patch %s: %s", path, strerror((int)-n));
	if (!ret && (n > sb.st_size || (size_t)n > LP_PATCH_MAX_BYTES))
		ret = lp_fail(d, LP_EXIT_USAGE, "patch %s changed while it was read (try again when it is not being written)", path);
	close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	return patchobj_parse(po, buf, (size_t)n, path, d);
}

void patchobj_free(struct lp_patchobj *po)
{
	free(po->bytes);
	free(po->secs);
	free(po->syms);
	free(po->rels);
	free(po->pins);
	po->bytes = NULL;
	po->secs = NULL;
	po->syms = NULL;
	po->rels = NULL;
	po->pins = NULL;
	po->len = po->nsecs = po->nsyms = po->nrels = po->npins = 0;
}
