/*
 * ELF symbols: one mapped object's (proc.h) symbol tables and file bytes, read with
 * libelf on first use; looked up by name and by address.
 */
#ifndef LP_ELFSYM_H
#define LP_ELFSYM_H

#include <stdbool.h>
#include "lp.h"
#include "proc.h"

enum lp_sym_kind { LP_SYM_FUNC, LP_SYM_IFUNC, LP_SYM_OBJECT, LP_SYM_OTHER };

struct lp_symbol {
	const struct lp_object *obj;
	const char *name;	/* without any @version */
	const char *version;	/* NULL, or the version name */
	bool default_version;	/* @@ (or unversioned) */
	uint64_t addr;		/* runtime address */
	uint64_t offset;	/* addr - symbol start, for a 0xADDRESS inside a function */
	uint64_t size;
	enum lp_sym_kind kind;
	bool global;
};

/* Open @obj's file (map_files first: it works for deleted files and other mount namespaces). */
int object_open(const struct lp_object *obj) LP_MUST_CHECK;
/*
 * With @on, a file's symbol table, once loaded, serves every later object of any process
 * that maps the same file (device, inode, build-id): for a run over many processes.
 * Off frees them.
 */
void elfsym_share(bool on);
/* Free the symbol tables loaded for @p's objects; before proc_close(). */
void elfsym_release(struct lp_proc *p);

/*
 * Call @fn for every function or object symbol of @obj named @name, in any version
 * (none when its symbols cannot be read: then obj->elf_error says why).
 */
void object_each_named(struct lp_object *obj, const char *name,
		       void (*fn)(const struct lp_symbol *s, void *arg), void *arg);

/*
 * Call @fn for every function symbol of @obj, by address: 0 (also when its symbols
 * cannot be read: nothing to list), or -ENOMEM.
 */
int object_each_function(struct lp_object *obj, void (*fn)(const struct lp_symbol *s, void *arg),
			 void *arg);

/* The function symbol of @obj that contains @addr (best: exact start, then smallest), or -ENOENT. */
int object_function_at(struct lp_object *obj, uint64_t addr, struct lp_symbol *out) LP_MUST_CHECK;

/* Call @fn with the file bytes of every executable section of @obj, at its runtime address. */
int object_each_exec_section(struct lp_object *obj,
			     int (*fn)(const char *name, uint64_t addr, const uint8_t *bytes,
				       size_t len, void *arg), void *arg) LP_MUST_CHECK;

/* Call @fn for every allocated section of @obj (SHF_* @flags), at its runtime address. */
int object_each_alloc_section(struct lp_object *obj,
			      int (*fn)(const char *name, uint64_t addr, uint64_t size, uint64_t flags,
					void *arg), void *arg) LP_MUST_CHECK;

/* Read @len bytes of @obj's file that are mapped at runtime address @addr. */
int object_read_at(const struct lp_object *obj, uint64_t addr, void *buf, size_t len) LP_MUST_CHECK;

/*
 * A patch livepatch loaded (obj->patch): the sha256 and name its image's note
 * carries (docs/design.md §8). 0, or -errno (-ENOENT: no such note).
 */
int object_patch_note(const struct lp_object *obj, uint8_t sha256[32], char *name, size_t cap) LP_MUST_CHECK;

#endif
