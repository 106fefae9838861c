/*
 * Resolve: the user's names and addresses of functions, looked up in the ELF symbols
 * (elfsym.h) of every object mapped in the process (proc.h).
 */
#ifndef LP_RESOLVE_H
#define LP_RESOLVE_H

#include "lp.h"
#include "proc.h"
#include "elfsym.h"

/*
 * Resolve a user's "[OBJECT:]SYMBOL" or "0xADDRESS" to one function.
 * @role is "function" or "target", used in messages.
 */
int resolve_function(struct lp_proc *p, const char *spec, const char *role,
		     struct lp_symbol *out, struct lp_diag *d) LP_MUST_CHECK;

/* Up to three function names close to @name (in @only, or anywhere: NULL), for "did you mean". */
void resolve_suggest(struct lp_proc *p, struct lp_object *only, const char *name, char *out,
		     size_t len);

/* The function symbol that contains @addr (best: exact start, then smallest), or -ENOENT. */
int resolve_symbolize(struct lp_proc *p, uint64_t addr, struct lp_symbol *out) LP_MUST_CHECK;

/* Call @fn for every function symbol of every object, by address within each object. */
int resolve_each_function(struct lp_proc *p, void (*fn)(const struct lp_symbol *s, void *arg),
			  void *arg) LP_MUST_CHECK;

#endif
