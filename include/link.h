/*
 * Link: lay out a patch object (patchobj.h) as one region and relocate it for a given
 * base address (docs/design.md §8). The result is an ELF image: its own file, written
 * into the process's memfd and mapped at base, so every other reader of livepatch
 * (symbols, --list, --verify's uprobes) sees the loaded patch as one more mapped
 * object. Pure: no process access.
 *
 * The image, by offset (each segment page-aligned, mapped with its own protection):
 *   header  r--  ELF header, program headers, the livepatch note (sha256, name)
 *   text    r-x  the text sections, then one 8-byte veneer per undefined function
 *   rodata  r--  the read-only sections, .data.rel.ro (relocated before it is mapped,
 *                so read-only, as RELRO), then the GOT: one 8-byte address per symbol
 *                that a GOT relocation or a veneer needs
 *   data    rw-  data sections, then bss sections and COMMON symbols (zeros in the file)
 *   tail    (not mapped) .symtab, .strtab, .shstrtab, section headers
 * p_vaddr == p_offset, so the object's load bias is the base.
 */
#ifndef LP_LINK_H
#define LP_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include "lp.h"
#include "patchobj.h"

#define LP_LINK_PAGE 4096
#define LP_NOTE_NAME "livepatch"	/* the note's owner name */
#define LP_NOTE_TYPE 0x4c50		/* desc: sha256[32], then the patch's base name, NUL-ended */

/* How an undefined symbol of the patch was bound (bind.c), for the link map. */
enum lp_bind_how { LP_BIND_PATCH, LP_BIND_LOCAL, LP_BIND_EXPORTED, LP_BIND_PINNED, LP_BIND_WEAK_ZERO };

/* The address of one undefined symbol, found by the caller; indexed like po->syms. */
struct lp_binding {
	bool bound;		/* false: not an undefined symbol that relocations use */
	uint64_t addr;
	bool func;		/* a function: a veneer may stand for it */
	enum lp_bind_how how;
	char from[200];		/* OBJECT:SYMBOL it was bound to */
};

/* One segment of the image. */
struct lp_segment {
	uint64_t off, size;	/* in the image; size is page-rounded */
	int prot;		/* PROT_* */
};

/* Per-relocation-type counts, for the link map. */
struct lp_link_relcount {
	uint32_t type;
	unsigned int n;
};

struct lp_link {
	const struct lp_patchobj *po;
	uint64_t base;			/* set by link_apply */
	uint64_t size;			/* the image's mapped length (header .. data end) */
	struct lp_segment seg[4];	/* header, text, rodata, data; size 0 when empty */
	uint64_t got_off, veneer_off;	/* in the image */
	unsigned int ngot, nveneers;
	uint32_t *got_slot;		/* per po->syms index: GOT slot + 1, 0 for none */
	uint32_t *veneer;		/* per po->syms index: veneer + 1, 0 for none */
	bool *via_veneer;		/* per po->syms index: link_apply used the veneer */
	uint8_t *image;			/* image_len bytes (link_apply) */
	size_t image_len;		/* size + the unmapped tail */
	struct lp_link_relcount relcount[32];
	size_t nrelcount;
	uint64_t *common_off;		/* per po->syms index: a COMMON symbol's image offset */
	uint64_t common_start, common_size; /* the COMMON symbols' part of data, after bss */
	bool *used;			/* per po->syms index: a relocation refers to it */
};

/*
 * Lay out @po (offsets of every section, GOT slots and veneers reserved for every
 * undefined symbol a relocation may need them for): lk->size is known from here on,
 * before any address is. LP_EXIT_SITE for an object with nothing to load.
 */
int link_prepare(struct lp_link *lk, const struct lp_patchobj *po, struct lp_diag *d) LP_MUST_CHECK;

/*
 * Undefined symbols that relocations use, in symbol-table order: calls @fn for each
 * (the caller binds them). Weak ones included; @fn learns it from sym->bind.
 */
void link_each_undefined(const struct lp_link *lk,
			 void (*fn)(const struct lp_psym *sym, size_t index, void *arg), void *arg);

/*
 * Relocate for @base with @binds (indexed like po->syms) and build the image. A
 * reference that cannot reach its target is refused, LP_EXIT_SITE, naming symbol,
 * relocation, section and offset, and the fix ("build the patch with -fPIC", which
 * makes such references go through the GOT): a direct data reference out of ±2 GiB,
 * an absolute 32-bit address above 4 GiB. Calls and jumps out of reach go through a
 * veneer.
 */
int link_apply(struct lp_link *lk, uint64_t base, const struct lp_binding *binds,
	       struct lp_diag *d) LP_MUST_CHECK;

/* The address of @po's symbol @index after link_apply (defined ones; undefined: bound). */
uint64_t link_symbol_addr(const struct lp_link *lk, const struct lp_binding *binds, size_t index);

void link_free(struct lp_link *lk);

#endif
