/* Resolve: the ELF symbols of a process's mapped objects (proc.h), and names to functions. */
#ifndef LP_RESOLVE_H
#define LP_RESOLVE_H

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

/*
 * Resolve a user's "[OBJECT:]SYMBOL" or "0xADDRESS" to one function.
 * @role is "function" or "target", used in messages.
 */
int resolve_function(struct lp_proc *p, const char *spec, const char *role,
		     struct lp_symbol *out, struct lp_diag *d) LP_MUST_CHECK;

/* The function symbol that contains @addr (best: exact start, then smallest), or -ENOENT. */
int resolve_symbolize(struct lp_proc *p, uint64_t addr, struct lp_symbol *out) LP_MUST_CHECK;

/* Call @fn for every function symbol of every object, by address within each object. */
int resolve_each_function(struct lp_proc *p, void (*fn)(const struct lp_symbol *s, void *arg),
			  void *arg) LP_MUST_CHECK;

/* Open @obj's file (map_files first: it works for deleted files and other mount namespaces). */
int object_open(const struct lp_object *obj) LP_MUST_CHECK;
/* Free the symbol tables loaded for @p's objects; before proc_close(). */
void resolve_release(struct lp_proc *p);

/* Call @fn with the file bytes of every executable section of @obj, at its runtime address. */
int object_each_exec_section(struct lp_object *obj,
			     int (*fn)(const char *name, uint64_t addr, const uint8_t *bytes,
				       size_t len, void *arg), void *arg) LP_MUST_CHECK;

/* Read @len bytes of @obj's file that are mapped at runtime address @addr. */
int object_read_at(const struct lp_object *obj, uint64_t addr, void *buf, size_t len) LP_MUST_CHECK;

#endif
