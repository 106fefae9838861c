/*
 * Inspect: compare the code in memory with the mapped files (no state file, no
 * attach), and list function symbols. Both are read-only views of the process.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "inspect.h"
#include "resolve.h"
#include "x86.h"
#include "elfsym.h"

#define CHUNK (1u << 20)

static void name_target(struct lp_proc *p, struct lp_change *c)
{
	struct lp_symbol s;

	c->target_name[0] = 0;
	if (resolve_symbolize(p, c->target, &s))
		return;
	if (c->target == s.addr)
		snprintf(c->target_name, sizeof(c->target_name), "%s:%s", s.obj->name, s.name);
	else
		snprintf(c->target_name, sizeof(c->target_name), "%s:%s+0x%" PRIx64, s.obj->name,
			 s.name, c->target - s.addr);
	if (!s.obj->patch || object_patch_note(s.obj, c->patch_sha256, c->patch_name,
					       sizeof(c->patch_name)))
		return;
	uint64_t end;

	c->in_patch = true;
	proc_object_extent(s.obj, &c->patch_base, &end);
	c->patch_size = end - c->patch_base;
}

/*
 * A difference at @at; @mem and @file point at it, with @before bytes before and
 * @after bytes from it in the buffers. One entry per function.
 */
static int add_change(struct lp_proc *p, struct lp_changes *out, uint64_t at, const uint8_t *mem,
		      const uint8_t *file, size_t before, size_t after)
{
	struct lp_change c = { .at = at };

	if (resolve_symbolize(p, at, &c.func)) {
		c.func.obj = proc_object_at(p, at, NULL);
		c.func.name = "?";
		c.func.addr = at;
	}
	if (out->n && out->v[out->n - 1].func.obj == c.func.obj &&
	    out->v[out->n - 1].func.addr == c.func.addr)
		return 0;
	/* Our jump sits at the entry, after an endbr64 the file still shows. */
	uint64_t site = c.func.addr;
	if (site + X86_ENDBR64_LEN <= at && at - site <= before &&
	    x86_is_endbr64(file - (at - site), X86_ENDBR64_LEN))
		site += X86_ENDBR64_LEN;
	if (site <= at && at < site + X86_JMP_ABS64_LEN && at - site <= before &&
	    after >= X86_JMP_ABS64_LEN - (at - site)) {
		c.ours = x86_decode_jmp(mem - (at - site), X86_JMP_ABS64_LEN, site, &c.target) != 0;
		if (c.ours)
			c.at = site;
	}
	/* A call site: an e8 in both, the difference within its rel32 (call-site mode). */
	for (size_t k = 1; !c.ours && k < X86_CALL_REL32_LEN && k <= before; k++) {
		uint64_t now, then;
		if (!x86_decode_call(mem - k, k + after, at - k, &now) ||
		    !x86_decode_call(file - k, k + after, at - k, &then))
			continue;
		c.at = at - k;
		c.call = true;
		c.target = now;
		struct lp_change was = { .target = then };
		name_target(p, &was);
		memcpy(c.was_name, was.target_name, sizeof(c.was_name));
		break;
	}
	size_t back = c.at < at ? at - c.at : 0;
	c.nbytes = after + back < sizeof(c.bytes) ? (unsigned int)(after + back) : sizeof(c.bytes);
	memcpy(c.bytes, mem - back, c.nbytes);
	memcpy(c.file, file - back, c.nbytes);
	if (c.ours || c.call)
		name_target(p, &c);
	struct lp_change *v = realloc(out->v, (out->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	out->v = v;
	out->v[out->n++] = c;
	return 0;
}

/* Compare one executable mapping with the file, a chunk at a time. */
static int compare_mapping(struct lp_proc *p, const struct lp_object *obj,
			   const struct lp_mapping *m, uint8_t *mem, uint8_t *file,
			   struct lp_changes *out)
{
	for (uint64_t a = m->start; a < m->end; a += CHUNK) {
		size_t len = m->end - a < CHUNK ? (size_t)(m->end - a) : CHUNK;
		if (proc_read(p, a, mem, len) || object_read_at(obj, a, file, len))
			continue;	/* a hole or a short file: nothing to compare there */
		out->bytes_compared += len;
		for (size_t i = 0; i < len; i++) {
			if (mem[i] == file[i])
				continue;
			size_t j = i;
			while (j < len && j - i < 16 && mem[j] != file[j])
				j++;
			int ret = add_change(p, out, a + i, mem + i, file + i, i, len - i);
			if (ret)
				return ret;
			i = j;
		}
	}
	return 0;
}

/* Every patch livepatch loaded, from its note, and how many listed jumps go into it. */
static int list_patches(struct lp_proc *p, struct lp_changes *out)
{
	for (size_t o = 0; o < p->nobjs; o++) {
		struct lp_patch_info pi = { .obj = &p->objs[o] };
		uint64_t end;
		if (!p->objs[o].patch || object_patch_note(pi.obj, pi.sha256, pi.name, sizeof(pi.name)))
			continue;
		proc_object_extent(pi.obj, &pi.base, &end);
		pi.size = end - pi.base;
		for (size_t i = 0; i < out->n; i++)
			pi.users += (out->v[i].ours || out->v[i].call) && out->v[i].target >= pi.base &&
				    out->v[i].target < pi.base + pi.size;
		struct lp_patch_info *v = realloc(out->patches, (out->npatches + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		out->patches = v;
		out->patches[out->npatches++] = pi;
	}
	return 0;
}

int inspect_changes(struct lp_proc *p, struct lp_changes *out, struct lp_diag *d)
{
	struct timespec t0, t1;
	uint8_t *mem = malloc(CHUNK), *file = malloc(CHUNK);
	int ret = 0;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!mem || !file)
		ret = -ENOMEM;
	for (size_t o = 0; !ret && o < p->nobjs; o++)
		for (size_t k = 0; !ret && k < p->objs[o].nmaps; k++)
			if (p->objs[o].maps[k].exec)
				ret = compare_mapping(p, &p->objs[o], &p->objs[o].maps[k], mem, file, out);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out->ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	free(mem);
	free(file);
	if (!ret)
		ret = list_patches(p, out);
	if (ret)
		return lp_fail(d, LP_EXIT_INTERNAL, "comparing memory with files failed: %s",
			       strerror(-ret));
	return 0;
}

void inspect_free(struct lp_changes *c)
{
	free(c->v);
	free(c->patches);
	memset(c, 0, sizeof(*c));
}

struct sym_walk {
	const char *prefix;
	size_t plen;
	void (*fn)(const char *obj, const char *sym, void *arg);
	void *arg;
};

static void each_symbol(const struct lp_symbol *s, void *arg)
{
	struct sym_walk *w = arg;
	char full[600];

	if (s->kind != LP_SYM_FUNC)
		return;
	if (w->prefix) {
		snprintf(full, sizeof(full), "%s:%s", s->obj->name, s->name);
		if (strncmp(full, w->prefix, w->plen) && strncmp(s->name, w->prefix, w->plen))
			return;
	}
	if (s->version && !s->default_version) {	/* memcpy@GLIBC_2.2.5: resolves to itself */
		char name[400];
		snprintf(name, sizeof(name), "%s@%s", s->name, s->version);
		w->fn(s->obj->name, name, w->arg);
		return;
	}
	w->fn(s->obj->name, s->name, w->arg);
}

int inspect_symbols(struct lp_proc *p, const char *prefix,
		    void (*fn)(const char *obj, const char *sym, void *arg), void *arg)
{
	struct sym_walk w = { prefix && *prefix ? prefix : NULL, prefix ? strlen(prefix) : 0, fn, arg };

	return resolve_each_function(p, each_symbol, &w);
}
