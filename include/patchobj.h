/*
 * Patch object: an ELF64 x86-64 relocatable object (ET_REL, from gcc or clang) that
 * --load links into a live process (docs/design.md §8). Read, checked and described
 * here; laid out and relocated by link.c. Pure but for patchobj_open(), which reads
 * the file: the unit tests and the fuzzer feed patchobj_parse() bytes.
 */
#ifndef LP_PATCHOBJ_H
#define LP_PATCHOBJ_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "lp.h"

#define LP_PATCH_MAX_BYTES (64u << 20)	/* largest patch object read */

enum lp_psec_kind { LP_PSEC_TEXT, LP_PSEC_RODATA, LP_PSEC_DATA, LP_PSEC_BSS };

/* One section of the object that is loaded (SHF_ALLOC, not a note, not .eh_frame). */
struct lp_psec {
	const char *name;	/* points into the object's bytes */
	unsigned int shndx;	/* its ELF section index */
	enum lp_psec_kind kind;	/* TEXT: SHF_EXECINSTR; BSS: SHT_NOBITS; DATA: SHF_WRITE */
	uint64_t size, align;
	const uint8_t *bytes;	/* size bytes of the object; NULL for BSS */
	uint64_t off;		/* where it is in the image (link_prepare) */
	uint32_t type;		/* SHT_*, as in the object (for the image's section headers) */
	uint64_t flags;		/* SHF_*, as in the object */
};

/* One entry of the object's .symtab, same index as in the file. */
struct lp_psym {
	const char *name;	/* "" for section and unnamed symbols */
	unsigned int shndx;	/* ELF section index, SHN_UNDEF, SHN_ABS or SHN_COMMON */
	uint64_t value, size;	/* COMMON: value is the alignment */
	unsigned char type, bind, visibility;	/* STT_*, STB_*, STV_* */
	int psec;		/* index in secs of the section it is defined in, or -1 */
};

/* One relocation of a loaded section (SHT_RELA; SHT_REL is refused). */
struct lp_prel {
	unsigned int psec;	/* index in secs of the section patched */
	uint64_t offset;	/* in that section */
	uint32_t type;		/* R_X86_64_* */
	uint32_t sym;		/* index in syms */
	int64_t addend;
};

/*
 * A pin from <livepatch/patch.h>: the patch's undefined symbol @symbol binds only to
 * @object's symbol of the same name (a record of the non-allocated section
 * ".livepatch.bind": "symbol\0object\0" pairs).
 */
struct lp_ppin {
	const char *symbol, *object;
};

struct lp_patchobj {
	char path[PATH_MAX];	/* as given */
	const char *name;	/* base name, into path */
	uint8_t sha256[32];	/* of the whole file */
	uint8_t *bytes;		/* the file, owned */
	size_t len;
	struct lp_psec *secs;
	size_t nsecs;
	struct lp_psym *syms;
	size_t nsyms;
	struct lp_prel *rels;
	size_t nrels;
	struct lp_ppin *pins;
	size_t npins;
};

/*
 * Read the patch object at @path: a regular file, not writable by group or others,
 * owned by root or @caller (the rule sudo applies to sudoers), at most
 * LP_PATCH_MAX_BYTES; then patchobj_parse(). File problems are LP_EXIT_USAGE, each
 * naming the fix.
 */
int patchobj_open(struct lp_patchobj *po, const char *path, uid_t caller, struct lp_diag *d) LP_MUST_CHECK;

/*
 * Check and describe @len bytes of an object named @name; takes ownership of @bytes
 * (malloc'ed) whatever the result. Refused with LP_EXIT_SITE and a message that names
 * what to do instead: not ELF64 x86-64; ET_DYN or ET_EXEC ("give the .o that cc -c
 * makes, not a linked program or library"); SHT_REL; TLS (SHF_TLS sections, STT_TLS
 * symbols); constructors and destructors (.init_array, .fini_array, .preinit_array,
 * .ctors, .dtors and their .NNN variants); an IFUNC defined in the patch; a
 * relocation type link.c does not handle (naming type, section and offset); any
 * malformed table (offsets out of the file, bad indices: never trusted).
 */
int patchobj_parse(struct lp_patchobj *po, uint8_t *bytes, size_t len, const char *name,
		   struct lp_diag *d) LP_MUST_CHECK;

/* A relocation type's name ("R_X86_64_PC32"), or NULL if unknown. */
const char *patchobj_rel_name(uint32_t type);

/* The bytes a relocation type link.c handles writes (0 for NONE), or UINT_MAX. */
unsigned int patchobj_rel_width(uint32_t type);

void patchobj_free(struct lp_patchobj *po);

#endif
