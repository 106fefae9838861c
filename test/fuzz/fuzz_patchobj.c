/*
 * Patch objects (patchobj_parse): any bytes as a relocatable object; one that is
 * accepted is then laid out and relocated (link_prepare, link_apply) with every
 * undefined symbol bound, as --load would.
 */
#include <stdlib.h>
#include <string.h>
#include "link.h"
#include "patchobj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void link_it(const struct lp_patchobj *po)
{
	struct lp_link lk;
	struct lp_diag d = { 0 };

	memset(&lk, 0, sizeof(lk));
	if (!link_prepare(&lk, po, &d)) {
		struct lp_binding *b = calloc(po->nsyms + 1, sizeof(*b));
		if (!b)
			abort();
		for (size_t i = 0; i < po->nsyms; i++) {
			b[i].bound = true;
			b[i].addr = 0x7f0000400000ull + 16 * i;
			b[i].func = true;
		}
		(void)!link_apply(&lk, 0x7f0000000000ull, b, &d);
		free(b);
	}
	link_free(&lk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_patchobj po;
	struct lp_diag d = { 0 };
	uint8_t *bytes = malloc(size ? size : 1);

	if (!bytes)
		abort();
	memcpy(bytes, data, size);
	memset(&po, 0, sizeof(po));
	if (!patchobj_parse(&po, bytes, size, "fuzz.o", &d))
		link_it(&po);
	patchobj_free(&po);
	return 0;
}
