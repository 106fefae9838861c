/*
 * The ELF wrapping of a linked patch (docs/design.md §8): an ET_DYN file whose
 * PT_LOADs have p_vaddr == p_offset, so its load bias is the base it was linked for,
 * and whose .symtab holds the patch's functions and objects at their image offsets.
 * src/elfsym.c then reads a loaded patch like any shared library; readelf and gdb can
 * read it from the process's memfd.
 */
#include <errno.h>
#include <gelf.h>
#include <string.h>
#include <sys/mman.h>
#include "link_image.h"

#define NOTE_NAMESZ sizeof(LP_NOTE_NAME)	/* with its NUL */
#define MAX_PHDRS 5				/* four PT_LOADs and the note */

struct tail {
	size_t nsym, nlocal;	/* .symtab entries and locals, both with the null entry */
	uint64_t sym_off, str_off, str_size, shstr_off, shstr_size, sh_off;
	size_t nsh, common_sh, symtab_sh;	/* common_sh: 0 without COMMON symbols */
};

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ULL;
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ULL;
}

static uint64_t note_size(const struct lp_link *lk)
{
	return 12 + align4(NOTE_NAMESZ) + align4(32 + strlen(lk->po->name) + 1);
}

uint64_t link_image_header_size(const struct lp_link *lk)
{
	return sizeof(Elf64_Ehdr) + MAX_PHDRS * sizeof(Elf64_Phdr) + note_size(lk);
}

/* A symbol the image's .symtab lists: a named function or object defined by the patch. */
static bool exported(const struct lp_psym *s)
{
	return *s->name && (s->type == STT_FUNC || s->type == STT_OBJECT) &&
	       (s->psec >= 0 || s->shndx == SHN_COMMON);
}

static void tail_layout(const struct lp_link *lk, struct tail *t)
{
	const struct lp_patchobj *po = lk->po;

	memset(t, 0, sizeof(*t));
	t->nsym = t->nlocal = 1;
	t->str_size = 1;
	for (size_t i = 0; i < po->nsyms; i++) {
		if (!exported(&po->syms[i]))
			continue;
		t->nsym++;
		t->nlocal += po->syms[i].bind == STB_LOCAL;
		t->str_size += strlen(po->syms[i].name) + 1;
	}
	t->shstr_size = 1 + sizeof(".symtab") + sizeof(".strtab") + sizeof(".shstrtab");
	for (size_t i = 0; i < po->nsecs; i++)
		t->shstr_size += strlen(po->secs[i].name) + 1;
	t->nsh = 1 + po->nsecs;
	if (lk->common_size) {
		t->common_sh = t->nsh++;
		t->shstr_size += sizeof(".bss.common");
	}
	t->symtab_sh = t->nsh;
	t->nsh += 3;
	t->sym_off = align8(lk->size);
	t->str_off = t->sym_off + t->nsym * sizeof(Elf64_Sym);
	t->shstr_off = t->str_off + t->str_size;
	t->sh_off = align8(t->shstr_off + t->shstr_size);
}

size_t link_image_len(const struct lp_link *lk)
{
	struct tail t;

	tail_layout(lk, &t);
	return t.sh_off + t.nsh * sizeof(Elf64_Shdr);
}

static size_t count_phdrs(const struct lp_link *lk)
{
	size_t n = 1;		/* the note */

	for (int i = 0; i < 4; i++)
		n += lk->seg[i].size != 0;
	return n;
}

static void write_ehdr(struct lp_link *lk, const struct tail *t)
{
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
			     EV_CURRENT, ELFOSABI_NONE },
		.e_type = ET_DYN,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_phoff = sizeof(Elf64_Ehdr),
		.e_shoff = t->sh_off,
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = (Elf64_Half)count_phdrs(lk),
		.e_shentsize = sizeof(Elf64_Shdr),
		.e_shnum = (Elf64_Half)t->nsh,
		.e_shstrndx = (Elf64_Half)(t->symtab_sh + 2),
	};

	memcpy(lk->image, &eh, sizeof(eh));
}

static Elf64_Word pflags(int prot)
{
	return (prot & PROT_READ ? PF_R : 0) | (prot & PROT_WRITE ? PF_W : 0) |
	       (prot & PROT_EXEC ? PF_X : 0);
}

/* The note: namesz, descsz, type, "livepatch", then sha256 and the patch's name. */
static uint64_t write_note(struct lp_link *lk, uint64_t off)
{
	uint8_t *p = lk->image + off;
	size_t nlen = strlen(lk->po->name) + 1;
	Elf64_Nhdr nh = { .n_namesz = NOTE_NAMESZ, .n_descsz = (Elf64_Word)(32 + nlen),
			  .n_type = LP_NOTE_TYPE };

	memcpy(p, &nh, sizeof(nh));
	memcpy(p + 12, LP_NOTE_NAME, NOTE_NAMESZ);
	p += 12 + align4(NOTE_NAMESZ);
	memcpy(p, lk->po->sha256, 32);
	memcpy(p + 32, lk->po->name, nlen);
	return note_size(lk);
}

static void write_phdrs(struct lp_link *lk)
{
	uint64_t off = sizeof(Elf64_Ehdr), note_off = off + count_phdrs(lk) * sizeof(Elf64_Phdr);
	Elf64_Phdr ph;

	for (int i = 0; i < 4; i++) {
		if (!lk->seg[i].size)
			continue;
		ph = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = pflags(lk->seg[i].prot),
				   .p_offset = lk->seg[i].off, .p_vaddr = lk->seg[i].off,
				   .p_paddr = lk->seg[i].off, .p_filesz = lk->seg[i].size,
				   .p_memsz = lk->seg[i].size, .p_align = LP_LINK_PAGE };
		memcpy(lk->image + off, &ph, sizeof(ph));
		off += sizeof(ph);
	}
	uint64_t nsz = write_note(lk, note_off);
	ph = (Elf64_Phdr){ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = note_off,
			   .p_vaddr = note_off, .p_paddr = note_off, .p_filesz = nsz,
			   .p_memsz = nsz, .p_align = 4 };
	memcpy(lk->image + off, &ph, sizeof(ph));
}

/* Locals first (ELF requires it: sh_info is the first non-local), then the others. */
static void write_symtab(struct lp_link *lk, const struct tail *t)
{
	const struct lp_patchobj *po = lk->po;
	uint64_t sym = t->sym_off + sizeof(Elf64_Sym), str = 1;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < po->nsyms; i++) {
			const struct lp_psym *s = &po->syms[i];
			if (!exported(s) || (s->bind == STB_LOCAL) != (pass == 0))
				continue;
			bool common = s->psec < 0;
			Elf64_Sym e = {
				.st_name = (Elf64_Word)str,
				.st_info = ELF64_ST_INFO(s->bind, s->type),
				.st_other = s->visibility,
				.st_shndx = (Elf64_Half)(common ? t->common_sh : (size_t)s->psec + 1),
				.st_value = common ? lk->common_off[i] : po->secs[s->psec].off + s->value,
				.st_size = s->size,
			};
			memcpy(lk->image + sym, &e, sizeof(e));
			sym += sizeof(e);
			memcpy(lk->image + t->str_off + str, s->name, strlen(s->name) + 1);
			str += strlen(s->name) + 1;
		}
	}
}

static Elf64_Word add_name(struct lp_link *lk, const struct tail *t, uint64_t *used,
			   const char *name)
{
	Elf64_Word at = (Elf64_Word)*used;

	memcpy(lk->image + t->shstr_off + at, name, strlen(name) + 1);
	*used += strlen(name) + 1;
	return at;
}

static void put_shdr(struct lp_link *lk, const struct tail *t, size_t i, const Elf64_Shdr *sh)
{
	memcpy(lk->image + t->sh_off + i * sizeof(*sh), sh, sizeof(*sh));
}

/* A section's flags as its segment maps it: .data.rel.ro in rodata is not writable. */
static uint64_t shdr_flags(const struct lp_link *lk, const struct lp_psec *p)
{
	uint64_t f = p->flags & (SHF_WRITE | SHF_ALLOC | SHF_EXECINSTR);
	const struct lp_segment *ro = &lk->seg[2];

	if (p->off >= ro->off && p->off < ro->off + ro->size)
		f &= ~(uint64_t)SHF_WRITE;
	return f;
}

/*
 * The loaded sections keep their names and SHF_WRITE/ALLOC/EXECINSTR, at their image
 * offsets; the flags that need another section or an entry size (group, link order,
 * merge) are dropped with those sections.
 */
static void write_shdrs(struct lp_link *lk, const struct tail *t)
{
	const struct lp_patchobj *po = lk->po;
	uint64_t used = 1;

	for (size_t i = 0; i < po->nsecs; i++) {
		const struct lp_psec *p = &po->secs[i];
		Elf64_Shdr sh = {
			.sh_name = add_name(lk, t, &used, p->name),
			.sh_type = p->kind == LP_PSEC_BSS ? SHT_NOBITS : SHT_PROGBITS,
			.sh_flags = shdr_flags(lk, p),
			.sh_addr = p->off, .sh_offset = p->off, .sh_size = p->size,
			.sh_addralign = p->align,
		};
		put_shdr(lk, t, i + 1, &sh);
	}
	if (t->common_sh) {
		Elf64_Shdr sh = { .sh_name = add_name(lk, t, &used, ".bss.common"),
				  .sh_type = SHT_NOBITS, .sh_flags = SHF_WRITE | SHF_ALLOC,
				  .sh_addr = lk->common_start, .sh_offset = lk->common_start,
				  .sh_size = lk->common_size, .sh_addralign = 1 };
		put_shdr(lk, t, t->common_sh, &sh);
	}
	Elf64_Shdr tabs[3] = {
		{ .sh_name = add_name(lk, t, &used, ".symtab"), .sh_type = SHT_SYMTAB,
		  .sh_offset = t->sym_off, .sh_size = t->nsym * sizeof(Elf64_Sym),
		  .sh_link = (Elf64_Word)(t->symtab_sh + 1), .sh_info = (Elf64_Word)t->nlocal,
		  .sh_addralign = 8, .sh_entsize = sizeof(Elf64_Sym) },
		{ .sh_name = add_name(lk, t, &used, ".strtab"), .sh_type = SHT_STRTAB,
		  .sh_offset = t->str_off, .sh_size = t->str_size, .sh_addralign = 1 },
		{ .sh_name = add_name(lk, t, &used, ".shstrtab"), .sh_type = SHT_STRTAB,
		  .sh_offset = t->shstr_off, .sh_size = t->shstr_size, .sh_addralign = 1 },
	};
	for (int i = 0; i < 3; i++)
		put_shdr(lk, t, t->symtab_sh + i, &tabs[i]);
}

int link_image_write(struct lp_link *lk)
{
	struct tail t;

	tail_layout(lk, &t);
	if (t.sh_off + t.nsh * sizeof(Elf64_Shdr) != lk->image_len)
		return -EINVAL;
	write_ehdr(lk, &t);
	write_phdrs(lk);
	write_symtab(lk, &t);
	write_shdrs(lk, &t);
	return 0;
}
