/* Loadmap: the link map of --load, as text and as JSON (docs/design.md §8). */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "loadmap.h"
#include "sha256.h"

static const char *kind_perms(enum lp_psec_kind k)
{
	return k == LP_PSEC_TEXT ? "r-x" : k == LP_PSEC_RODATA ? "r--" : "rw-";
}

static const char *how_name(enum lp_bind_how h)
{
	static const char *const names[] = {
		[LP_BIND_PATCH] = "patch", [LP_BIND_LOCAL] = "local", [LP_BIND_EXPORTED] = "exported",
		[LP_BIND_PINNED] = "pinned", [LP_BIND_WEAK_ZERO] = "weak",
	};
	return (size_t)h < LP_ARRAY_SIZE(names) && names[h] ? names[h] : "?";
}

/* A relocation of @po loads symbol @sym's address from the GOT. */
static bool uses_got(const struct lp_patchobj *po, size_t sym)
{
	for (size_t i = 0; i < po->nrels; i++)
		if (po->rels[i].sym == sym &&
		    (po->rels[i].type == R_X86_64_GOTPCREL || po->rels[i].type == R_X86_64_GOTPCRELX ||
		     po->rels[i].type == R_X86_64_REX_GOTPCRELX || po->rels[i].type == R_X86_64_GOTPCREL64))
			return true;
	return false;
}

/* How the code reaches a bound symbol: through a veneer, the GOT, or directly. */
static const char *reach_name(const struct lp_link *lk, size_t i)
{
	if (lk->via_veneer && lk->via_veneer[i])
		return "veneer";
	return uses_got(lk->po, i) ? "got" : "direct";
}

static const char *status(const struct lp_load *x, bool mapped)
{
	return x->reused ? "already loaded" : mapped ? "loaded" : "would load";
}

static void plain_one(FILE *f, const struct lp_load *x, bool mapped, bool full)
{
	char hex[65];

	lp_sha256_hex(x->po.sha256, hex);
	fprintf(f, "patch     %s: %s, sha256 %s, %" PRIu64 " KiB at 0x%" PRIx64 "\n", x->po.name,
		status(x, mapped), hex, (x->size + 1023) >> 10, x->base);
	if (!full || x->reused)
		return;
	for (size_t i = 0; i < x->po.nsecs; i++) {
		const struct lp_psec *s = &x->po.secs[i];
		fprintf(f, "  section %-24s 0x%" PRIx64 " %8" PRIu64 " bytes %s\n", s->name,
			x->base + s->off, s->size, kind_perms(s->kind));
	}
	if (x->lk.nveneers)
		fprintf(f, "  veneers  %u at 0x%" PRIx64 "\n", x->lk.nveneers, x->base + x->lk.veneer_off);
	if (x->lk.ngot)
		fprintf(f, "  got      %u entries at 0x%" PRIx64 "\n", x->lk.ngot, x->base + x->lk.got_off);
	for (size_t i = 0; i < x->po.nsyms; i++) {
		const struct lp_binding *b = &x->binds[i];
		if (b->bound)
			fprintf(f, "  symbol  %s -> %s at 0x%" PRIx64 " (%s, %s)\n", x->po.syms[i].name,
				b->from, b->addr, how_name(b->how), reach_name(&x->lk, i));
	}
	fprintf(f, "  relocations:");
	for (size_t i = 0; i < x->lk.nrelcount; i++) {
		const char *n = patchobj_rel_name(x->lk.relcount[i].type);
		fprintf(f, " %s %u", n ? n : "?", x->lk.relcount[i].n);
	}
	fprintf(f, "%s\n", x->lk.nrelcount ? "" : " none");
}

void loadmap_plain(FILE *f, const struct lp_loads *l, bool mapped, bool full)
{
	for (size_t i = 0; l && i < l->n; i++)
		plain_one(f, &l->v[i], mapped, full);
}

static void json_sections(struct json *j, const struct lp_load *x)
{
	json_open(j, "sections", '[');
	for (size_t i = 0; !x->reused && i < x->po.nsecs; i++) {
		const struct lp_psec *s = &x->po.secs[i];
		json_open(j, NULL, '{');
		json_str(j, "name", s->name);
		json_hex(j, "address", x->base + s->off);
		json_uint(j, "size", s->size);
		json_str(j, "perms", kind_perms(s->kind));
		json_close(j, '}');
	}
	json_close(j, ']');
}

static void json_symbols(struct json *j, const struct lp_load *x)
{
	json_open(j, "symbols", '[');
	for (size_t i = 0; !x->reused && i < x->po.nsyms; i++) {
		const struct lp_binding *b = &x->binds[i];
		if (!b->bound)
			continue;
		json_open(j, NULL, '{');
		json_str(j, "name", x->po.syms[i].name);
		json_str(j, "bound_to", b->from);
		json_hex(j, "address", b->addr);
		json_str(j, "how", how_name(b->how));
		json_str(j, "via", reach_name(&x->lk, i));
		json_close(j, '}');
	}
	json_close(j, ']');
}

void loadmap_json(struct json *j, const struct lp_loads *l, bool mapped)
{
	char hex[65];

	json_open(j, "load", '[');
	for (size_t i = 0; l && i < l->n; i++) {
		const struct lp_load *x = &l->v[i];
		lp_sha256_hex(x->po.sha256, hex);
		json_open(j, NULL, '{');
		json_str(j, "name", x->po.name);
		json_str(j, "path", x->po.path);
		json_str(j, "sha256", hex);
		json_str(j, "status", x->reused ? "already_loaded" : mapped ? "loaded" : "planned");
		json_hex(j, "base", x->base);
		json_uint(j, "size", x->size);
		json_double(j, "link_ms", x->link_ms);
		json_sections(j, x);
		json_symbols(j, x);
		json_open(j, "relocations", '{');
		for (size_t k = 0; !x->reused && k < x->lk.nrelcount; k++) {
			const char *n = patchobj_rel_name(x->lk.relcount[k].type);
			json_uint(j, n ? n : "unknown", x->lk.relcount[k].n);
		}
		json_close(j, '}');
		json_close(j, '}');
	}
	json_close(j, ']');
}

void loadmap_plain_loaded(FILE *f, const struct lp_changes *c)
{
	char hex[65];

	for (size_t i = 0; i < c->npatches; i++) {
		const struct lp_patch_info *pi = &c->patches[i];
		lp_sha256_hex(pi->sha256, hex);
		fprintf(f, "patch     %s: sha256 %s, %" PRIu64 " KiB at 0x%" PRIx64 ", ", pi->name, hex,
			(pi->size + 1023) >> 10, pi->base);
		if (pi->users)
			fprintf(f, "%u function%s jump%s into it\n", pi->users, pi->users > 1 ? "s" : "",
				pi->users > 1 ? "" : "s");
		else
			fprintf(f, "unused: nothing jumps into it\n");
	}
}

static const char *flags_perms(uint64_t flags)
{
	return flags & SHF_EXECINSTR ? "r-x" : flags & SHF_WRITE ? "rw-" : "r--";
}

static int json_section(const char *name, uint64_t addr, uint64_t size, uint64_t flags, void *arg)
{
	struct json *j = arg;

	json_open(j, NULL, '{');
	json_str(j, "name", name);
	json_hex(j, "address", addr);
	json_uint(j, "size", size);
	json_str(j, "perms", flags_perms(flags));
	json_close(j, '}');
	return 0;
}

static void json_function(const struct lp_symbol *s, void *arg)
{
	struct json *j = arg;

	json_open(j, NULL, '{');
	json_str(j, "name", s->name);
	json_hex(j, "address", s->addr);
	json_uint(j, "size", s->size);
	json_close(j, '}');
}

void loadmap_json_loaded(struct json *j, const struct lp_changes *c)
{
	char hex[65];

	json_open(j, "load", '[');
	for (size_t i = 0; i < c->npatches; i++) {
		const struct lp_patch_info *pi = &c->patches[i];
		lp_sha256_hex(pi->sha256, hex);
		json_open(j, NULL, '{');
		json_str(j, "name", pi->name);
		json_str(j, "sha256", hex);
		json_str(j, "status", "loaded");
		json_hex(j, "base", pi->base);
		json_uint(j, "size", pi->size);
		json_uint(j, "users", pi->users);
		json_open(j, "sections", '[');
		(void)!object_each_alloc_section(pi->obj, json_section, j);
		json_close(j, ']');
		json_open(j, "functions", '[');
		(void)!object_each_function(pi->obj, json_function, j);
		json_close(j, ']');
		json_close(j, '}');
	}
	json_close(j, ']');
}
