/*
 * Link: lay out a patch object as one ELF image and relocate it for a base address
 * (docs/design.md §8). link_prepare() fixes every offset before any address is known,
 * so the caller can reserve the mapping first; link_apply() then writes the image in
 * one pass over the relocations (linear: a large patch links in milliseconds). The
 * image's headers and symbol table are written by link_image.c.
 */
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "link.h"
#include "link_image.h"

#define LINK_MAX_SIZE (1ULL << 30)	/* larger images are refused: no patch is that big */
#define FIX_PIC "build the patch with -fPIC, which makes such references go through the GOT"

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static bool fits_s32(uint64_t v)
{
	return (int64_t)v == (int32_t)v;
}

static bool is_got_sym(const struct lp_psym *s)
{
	return s->shndx == SHN_UNDEF && !strcmp(s->name, "_GLOBAL_OFFSET_TABLE_");
}

static bool is_got_rel(uint32_t type)
{
	return type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX ||
	       type == R_X86_64_REX_GOTPCRELX || type == R_X86_64_GOTPCREL64;
}

/* GOT slots and veneers: the only per-symbol state the layout needs. */
static void reserve_slots(struct lp_link *lk)
{
	const struct lp_patchobj *po = lk->po;

	for (size_t i = 0; i < po->nrels; i++) {
		const struct lp_prel *r = &po->rels[i];
		const struct lp_psym *s = &po->syms[r->sym];
		bool call = r->type == R_X86_64_PLT32 || r->type == R_X86_64_PC32;

		if (r->sym && r->type != R_X86_64_NONE)
			lk->used[r->sym] = true;
		/* An undefined call may land out of rel32 reach: a veneer jumps through the GOT. */
		if (call && r->sym && !lk->veneer[r->sym] && s->shndx == SHN_UNDEF && !is_got_sym(s))
			lk->veneer[r->sym] = ++lk->nveneers;
		if ((is_got_rel(r->type) || lk->veneer[r->sym]) && !lk->got_slot[r->sym])
			lk->got_slot[r->sym] = ++lk->ngot;
	}
}

/* @size bytes at @align from *cur: their offset in *off; -EFBIG past LINK_MAX_SIZE. */
static int place(uint64_t *cur, uint64_t size, uint64_t align, uint64_t *off)
{
	uint64_t at = align_up(*cur, align);

	if (size > LINK_MAX_SIZE || at > LINK_MAX_SIZE - size)
		return -EFBIG;
	*off = at;
	*cur = at + size;
	return 0;
}

static void close_segment(struct lp_link *lk, int n, uint64_t start, uint64_t *cur, int prot)
{
	lk->seg[n].off = start;
	lk->seg[n].size = align_up(*cur - start, LP_LINK_PAGE);
	lk->seg[n].prot = prot;
	*cur = start + lk->seg[n].size;
}

/*
 * .data.rel.ro is writable only so that a dynamic linker can relocate it; ours is
 * relocated before it is mapped, so it goes with rodata, read-only, as ld's RELRO
 * makes it after start-up.
 */
static bool is_relro(const struct lp_psec *p)
{
	return p->kind == LP_PSEC_DATA && !strncmp(p->name, ".data.rel.ro", 12) &&
	       (!p->name[12] || p->name[12] == '.');
}

static int place_sections(struct lp_link *lk, enum lp_psec_kind kind, bool relro,
			  uint64_t *cur, struct lp_diag *d)
{
	const struct lp_patchobj *po = lk->po;

	for (size_t i = 0; i < po->nsecs; i++) {
		struct lp_psec *p = &po->secs[i];
		if (p->kind != kind || is_relro(p) != relro)
			continue;
		if (p->align > LP_LINK_PAGE)
			return lp_fail(d, LP_EXIT_SITE, "%s: section %s asks for %llu-byte alignment, more than a page (build the patch without over-aligned sections)",
				       po->name, p->name, (unsigned long long)p->align);
		if (place(cur, p->size, p->align, &p->off))
			return -EFBIG;
	}
	return 0;
}

static int place_commons(struct lp_link *lk, uint64_t *cur, struct lp_diag *d)
{
	const struct lp_patchobj *po = lk->po;

	lk->common_start = *cur;
	for (size_t i = 0; i < po->nsyms; i++) {
		const struct lp_psym *s = &po->syms[i];
		uint64_t align = s->value ? s->value : 1;
		if (s->shndx != SHN_COMMON)
			continue;
		if (align > LP_LINK_PAGE)
			return lp_fail(d, LP_EXIT_SITE, "%s: common symbol %s asks for %llu-byte alignment, more than a page (build the patch with -fno-common)",
				       po->name, s->name, (unsigned long long)align);
		if (place(cur, s->size, align, &lk->common_off[i]))
			return -EFBIG;
	}
	lk->common_size = *cur - lk->common_start;
	return 0;
}

static int layout(struct lp_link *lk, struct lp_diag *d)
{
	uint64_t cur = 0, start, hdr = link_image_header_size(lk);
	int ret;

	close_segment(lk, 0, 0, &hdr, PROT_READ);
	cur = start = lk->seg[0].size;
	if ((ret = place_sections(lk, LP_PSEC_TEXT, false, &cur, d)) ||
	    (ret = place(&cur, lk->nveneers * 8ULL, 8, &lk->veneer_off)))
		return ret;
	close_segment(lk, 1, start, &cur, PROT_READ | PROT_EXEC);
	start = cur;
	if ((ret = place_sections(lk, LP_PSEC_RODATA, false, &cur, d)) ||
	    (ret = place_sections(lk, LP_PSEC_DATA, true, &cur, d)) ||
	    (ret = place(&cur, lk->ngot * 8ULL, 8, &lk->got_off)))
		return ret;
	close_segment(lk, 2, start, &cur, PROT_READ);
	start = cur;
	if ((ret = place_sections(lk, LP_PSEC_DATA, false, &cur, d)) ||
	    (ret = place_sections(lk, LP_PSEC_BSS, false, &cur, d)) ||
	    (ret = place_commons(lk, &cur, d)))
		return ret;
	close_segment(lk, 3, start, &cur, PROT_READ | PROT_WRITE);
	lk->size = cur;
	return 0;
}

/* An empty .c still makes .text, .data and .bss: only bytes count. */
static bool has_contents(const struct lp_patchobj *po)
{
	for (size_t i = 0; i < po->nsecs; i++)
		if (po->secs[i].size)
			return true;
	for (size_t i = 0; i < po->nsyms; i++)
		if (po->syms[i].shndx == SHN_COMMON && po->syms[i].size)
			return true;
	return false;
}

int link_prepare(struct lp_link *lk, const struct lp_patchobj *po, struct lp_diag *d)
{
	size_t n = po->nsyms ? po->nsyms : 1;
	int ret;

	memset(lk, 0, sizeof(*lk));
	lk->po = po;
	if (!has_contents(po))
		return lp_fail(d, LP_EXIT_SITE, "%s: nothing to load: no code or data sections (give the .o of the patch's source, built without -flto)",
			       po->name);
	/* The image numbers its sections in 16 bits, with a few of its own. */
	if (po->nsecs >= SHN_LORESERVE - 8)
		return lp_fail(d, LP_EXIT_SITE, "%s: %zu sections to load, more than an image holds (build the patch without -ffunction-sections)",
			       po->name, po->nsecs);
	lk->got_slot = calloc(n, sizeof(*lk->got_slot));
	lk->veneer = calloc(n, sizeof(*lk->veneer));
	lk->via_veneer = calloc(n, sizeof(*lk->via_veneer));
	lk->common_off = calloc(n, sizeof(*lk->common_off));
	lk->used = calloc(n, sizeof(*lk->used));
	if (!lk->got_slot || !lk->veneer || !lk->via_veneer || !lk->common_off || !lk->used) {
		link_free(lk);
		return lp_fail(d, LP_EXIT_INTERNAL, "out of memory linking %s", po->name);
	}
	reserve_slots(lk);
	ret = layout(lk, d);
	if (ret == -EFBIG)
		ret = lp_fail(d, LP_EXIT_SITE, "%s: the patch would take more than %llu MiB (make the patch smaller)",
			      po->name, LINK_MAX_SIZE >> 20);
	if (ret)
		link_free(lk);
	return ret;
}

void link_each_undefined(const struct lp_link *lk,
			 void (*fn)(const struct lp_psym *sym, size_t index, void *arg), void *arg)
{
	const struct lp_patchobj *po = lk->po;

	for (size_t i = 1; i < po->nsyms; i++) {
		const struct lp_psym *s = &po->syms[i];
		if (lk->used[i] && s->shndx == SHN_UNDEF && *s->name && !is_got_sym(s))
			fn(s, i, arg);
	}
}

/* 0, or -EINVAL for an undefined symbol the caller did not bind. */
static int sym_addr(const struct lp_link *lk, const struct lp_binding *binds, size_t i,
		    uint64_t *out)
{
	const struct lp_patchobj *po = lk->po;
	const struct lp_psym *s = &po->syms[i];

	*out = 0;
	if (!i)
		return 0;
	if (s->psec >= 0) {
		*out = lk->base + po->secs[s->psec].off + s->value;
		return 0;
	}
	switch (s->shndx) {
	case SHN_ABS:
		*out = s->value;
		return 0;
	case SHN_COMMON:
		*out = lk->base + lk->common_off[i];
		return 0;
	case SHN_UNDEF:
		if (is_got_sym(s))
			*out = lk->base + lk->got_off;
		else if (binds && binds[i].bound)
			*out = binds[i].addr;
		else if (s->bind != STB_WEAK)
			return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

uint64_t link_symbol_addr(const struct lp_link *lk, const struct lp_binding *binds, size_t index)
{
	uint64_t a;

	if (index >= lk->po->nsyms || sym_addr(lk, binds, index, &a))
		return 0;
	return a;
}

/* The symbol a relocation names, for messages: its name, else its section's. */
static const char *rel_sym_name(const struct lp_patchobj *po, const struct lp_prel *r)
{
	const struct lp_psym *s = &po->syms[r->sym];

	if (*s->name)
		return s->name;
	return s->psec >= 0 ? po->secs[s->psec].name : "(no symbol)";
}

static int refuse_rel(const struct lp_link *lk, const struct lp_prel *r, const char *why,
		      const char *fix, struct lp_diag *d)
{
	const struct lp_patchobj *po = lk->po;
	const char *tn = patchobj_rel_name(r->type);

	return lp_fail(d, LP_EXIT_SITE, "%s: %s reference to %s at %s+%#llx %s (%s)", po->name,
		       tn ? tn : "unknown", rel_sym_name(po, r), po->secs[r->psec].name,
		       (unsigned long long)r->offset, why, fix);
}

static void put_le(uint8_t *p, uint64_t v, unsigned int width)
{
	for (unsigned int i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* PC32/PLT32: a call or jump out of reach goes through the symbol's veneer. */
static int pc32_value(struct lp_link *lk, const struct lp_binding *binds,
		      const struct lp_prel *r, uint64_t S, uint64_t P, uint64_t *v,
		      struct lp_diag *d)
{
	uint32_t vn = lk->veneer[r->sym];
	bool func = binds && binds[r->sym].func;

	*v = S + (uint64_t)r->addend - P;
	if (fits_s32(*v))
		return 0;
	if (vn && (func || r->type == R_X86_64_PLT32)) {
		*v = lk->base + lk->veneer_off + (vn - 1) * 8ULL + (uint64_t)r->addend - P;
		lk->via_veneer[r->sym] = true;
		if (fits_s32(*v))
			return 0;
	}
	return refuse_rel(lk, r, "is out of reach of a 32-bit displacement", FIX_PIC, d);
}

struct rel_env {
	uint64_t P, S, G, GOT;
};

/* The value of relocation @r (formulas of the x86-64 psABI, without GOT relaxation). */
static int rel_value(struct lp_link *lk, const struct lp_binding *binds,
		     const struct lp_prel *r, const struct rel_env *e, uint64_t *v,
		     struct lp_diag *d)
{
	uint64_t A = (uint64_t)r->addend;

	switch (r->type) {
	case R_X86_64_NONE:
		return 0;
	case R_X86_64_PC32: case R_X86_64_PLT32:
		return pc32_value(lk, binds, r, e->S, e->P, v, d);
	case R_X86_64_64:
		*v = e->S + A;
		return 0;
	case R_X86_64_32:
		*v = e->S + A;
		return *v <= UINT32_MAX ? 0 :
		       refuse_rel(lk, r, "needs an absolute address below 4 GiB", FIX_PIC, d);
	case R_X86_64_32S:
		*v = e->S + A;
		return fits_s32(*v) ? 0 :
		       refuse_rel(lk, r, "needs an absolute address within 2 GiB of 0", FIX_PIC, d);
	case R_X86_64_PC64:
		*v = e->S + A - e->P;
		return 0;
	case R_X86_64_GOTPCREL: case R_X86_64_GOTPCRELX: case R_X86_64_REX_GOTPCRELX:
		*v = e->G + A - e->P;
		break;
	case R_X86_64_GOTPCREL64:
		*v = e->G + A - e->P;
		return 0;
	case R_X86_64_GOTPC32:
		*v = e->GOT + A - e->P;
		break;
	case R_X86_64_GOTPC64:
		*v = e->GOT + A - e->P;
		return 0;
	case R_X86_64_GOTOFF64:
		*v = e->S + A - e->GOT;
		return 0;
	default:
		return refuse_rel(lk, r, "has a type livepatch does not handle", "rebuild it with cc -c -fPIC", d);
	}
	/* Within the image, so only a bogus addend misses. */
	return fits_s32(*v) ? 0 : refuse_rel(lk, r, "has an addend out of reach", "rebuild it with cc -c", d);
}

static int relocate(struct lp_link *lk, const struct lp_binding *binds, const uint64_t *addr,
		    const struct lp_prel *r, struct lp_diag *d)
{
	const struct lp_psec *sec = &lk->po->secs[r->psec];
	unsigned int width = patchobj_rel_width(r->type);
	struct rel_env e;
	uint64_t v = 0;
	int ret;

	if (width == UINT_MAX)
		return refuse_rel(lk, r, "has a type livepatch does not handle", "rebuild it with cc -c -fPIC", d);
	if (!sec->bytes || r->offset > sec->size || width > sec->size - r->offset)
		return refuse_rel(lk, r, "lies outside its section", "rebuild it with cc -c", d);
	e.S = addr[r->sym];
	e.P = lk->base + sec->off + r->offset;
	e.GOT = lk->base + lk->got_off;
	e.G = e.GOT + (lk->got_slot[r->sym] ? (lk->got_slot[r->sym] - 1) * 8ULL : 0);
	if ((ret = rel_value(lk, binds, r, &e, &v, d)))
		return ret;
	put_le(lk->image + sec->off + r->offset, v, width);
	return 0;
}

static void count_type(struct lp_link *lk, int8_t *slot_of, uint32_t type)
{
	if (slot_of[type] < 0) {
		if (lk->nrelcount >= LP_ARRAY_SIZE(lk->relcount))
			return;
		slot_of[type] = (int8_t)lk->nrelcount;
		lk->relcount[lk->nrelcount++] = (struct lp_link_relcount){ .type = type };
	}
	lk->relcount[slot_of[type]].n++;
}

static int relocate_all(struct lp_link *lk, const struct lp_binding *binds, const uint64_t *addr,
			struct lp_diag *d)
{
	int8_t slot_of[64];
	int ret;

	memset(slot_of, -1, sizeof(slot_of));
	for (size_t i = 0; i < lk->po->nrels; i++) {
		const struct lp_prel *r = &lk->po->rels[i];
		if ((ret = relocate(lk, binds, addr, r, d)))
			return ret;
		if (r->type < LP_ARRAY_SIZE(slot_of))
			count_type(lk, slot_of, r->type);
	}
	return 0;
}

/* Each GOT slot holds its symbol's address; each veneer is jmp *slot(%rip), int3, int3. */
static void write_got_and_veneers(struct lp_link *lk, const uint64_t *addr)
{
	for (size_t i = 0; i < lk->po->nsyms; i++) {
		uint64_t slot = lk->got_off + (lk->got_slot[i] - 1) * 8ULL;
		if (!lk->got_slot[i])
			continue;
		put_le(lk->image + slot, addr[i], 8);
		if (!lk->veneer[i])
			continue;
		uint64_t off = lk->veneer_off + (lk->veneer[i] - 1) * 8ULL;
		uint8_t *p = lk->image + off;
		p[0] = 0xff;
		p[1] = 0x25;
		put_le(p + 2, slot - (off + 6), 4);
		p[6] = p[7] = 0xcc;
	}
}

/*
 * Every symbol's address, once: a relocation then costs a lookup. -EINVAL when one
 * that a relocation uses is undefined and not bound (the caller's bug).
 */
static int symbol_addrs(const struct lp_link *lk, const struct lp_binding *binds, uint64_t **out)
{
	const struct lp_patchobj *po = lk->po;
	uint64_t *a = calloc(po->nsyms ? po->nsyms : 1, sizeof(*a));

	*out = a;
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < po->nsyms; i++)
		if (sym_addr(lk, binds, i, &a[i]) && (lk->used[i] || lk->got_slot[i]))
			return -EINVAL;
	return 0;
}

static void copy_sections(struct lp_link *lk)
{
	const struct lp_patchobj *po = lk->po;

	for (size_t i = 0; i < po->nsecs; i++)
		if (po->secs[i].bytes && po->secs[i].size)
			memcpy(lk->image + po->secs[i].off, po->secs[i].bytes, po->secs[i].size);
}

int link_apply(struct lp_link *lk, uint64_t base, const struct lp_binding *binds,
	       struct lp_diag *d)
{
	size_t nsyms = lk->po->nsyms ? lk->po->nsyms : 1;
	int ret;

	if (base % LP_LINK_PAGE)
		return -EINVAL;
	free(lk->image);
	lk->base = base;
	lk->nrelcount = 0;
	memset(lk->via_veneer, 0, nsyms * sizeof(*lk->via_veneer));
	lk->image_len = link_image_len(lk);
	lk->image = calloc(1, lk->image_len);
	if (!lk->image)
		return lp_fail(d, LP_EXIT_INTERNAL, "out of memory linking %s", lk->po->name);
	copy_sections(lk);
	uint64_t *addr;
	ret = symbol_addrs(lk, binds, &addr);
	if (ret == -ENOMEM)
		ret = lp_fail(d, LP_EXIT_INTERNAL, "out of memory linking %s", lk->po->name);
	if (!ret)
		ret = relocate_all(lk, binds, addr, d);
	if (!ret) {
		write_got_and_veneers(lk, addr);
		ret = link_image_write(lk);
	}
	free(addr);
	if (ret) {
		free(lk->image);
		lk->image = NULL;
		lk->image_len = 0;
	}
	return ret;
}

void link_free(struct lp_link *lk)
{
	free(lk->got_slot);
	free(lk->veneer);
	free(lk->via_veneer);
	free(lk->common_off);
	free(lk->used);
	free(lk->image);
	memset(lk, 0, sizeof(*lk));
}
