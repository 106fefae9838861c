/*
 * Plan: site analysis with capstone (docs/design.md §3). Every check that can refuse a
 * site happens here, so applying a plan never fails on content.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"
#include "resolve.h"

struct decoded {
	uint64_t *bounds;	/* instruction start addresses, ascending */
	size_t n;
	uint64_t decoded_end;	/* first address capstone could not decode */
};

static bool is_boundary(const struct decoded *dc, uint64_t addr)
{
	size_t lo = 0, hi = dc->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (dc->bounds[mid] < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < dc->n && dc->bounds[lo] == addr) || addr == dc->decoded_end;
}

/* Where an instruction may send control or point at: branch targets and RIP-relative addresses. */
static bool refers_into(csh cs, const cs_insn *in, uint64_t lo, uint64_t hi, uint64_t *where)
{
	const cs_x86 *x = &in->detail->x86;

	for (int i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];
		uint64_t a;
		if (op->type == X86_OP_IMM && (cs_insn_group(cs, in, CS_GRP_JUMP) ||
					       cs_insn_group(cs, in, CS_GRP_CALL)))
			a = (uint64_t)op->imm;
		else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP)
			a = in->address + in->size + (uint64_t)op->mem.disp;
		else
			continue;
		if (a > lo && a < hi) {
			*where = a;
			return true;
		}
	}
	return false;
}

static void append_insn(char *buf, size_t len, const cs_insn *in)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s%s%s", used ? "; " : "", in->mnemonic,
		 in->op_str[0] ? " " : "", in->op_str);
}

struct analysis {
	uint64_t range_end;	/* end of the whole instructions displaced */
	char why[200];		/* a refusal, if any */
};

/*
 * Decode the whole function: collect instruction boundaries, the displaced
 * range [site, site + need) rounded up to whole instructions, and refuse any
 * instruction that branches or points strictly inside it, or a call within it.
 */
static int analyse(csh cs, const struct lp_request *rq, uint64_t site, unsigned int need,
		   struct decoded *dc, struct lp_site *out, struct analysis *an)
{
	const uint8_t *code = rq->file;
	size_t size = rq->end - rq->start;
	uint64_t addr = rq->start;
	cs_insn *in = cs_malloc(cs);
	uint64_t where;

	if (!in)
		return -ENOMEM;
	dc->bounds = malloc(sizeof(*dc->bounds) * (size + 1));
	if (!dc->bounds) {
		cs_free(in, 1);
		return -ENOMEM;
	}
	an->range_end = 0;
	an->why[0] = 0;
	out->displaced[0] = 0;
	while (size && cs_disasm_iter(cs, &code, &size, &addr, in)) {
		dc->bounds[dc->n++] = in->address;
		if (an->range_end && in->address >= an->range_end && out->nafter < LP_ARRAY_SIZE(out->after))
			out->after[out->nafter++] = in->address;
		if (in->address >= site && !an->range_end) {
			append_insn(out->displaced, sizeof(out->displaced), in);
			/*
			 * A call returns to its end: inside the displaced bytes only when it ends
			 * before the jump's last byte (docs/design.md §3). A call that is the last
			 * displaced instruction returns past the jump, into intact old code.
			 */
			if (cs_insn_group(cs, in, CS_GRP_CALL) && !an->why[0] &&
			    in->address + in->size < site + need)
				snprintf(an->why, sizeof(an->why), "a call at %s+0x%" PRIx64 " (%s %s) is "
					 "inside the bytes to replace and would return into them",
					 rq->name, in->address - rq->start, in->mnemonic, in->op_str);
			if (in->address + in->size >= site + need)
				an->range_end = in->address + in->size;
		}
	}
	dc->decoded_end = addr;
	for (code = rq->file, size = rq->end - rq->start, addr = rq->start;
	     an->range_end && !an->why[0] && size && cs_disasm_iter(cs, &code, &size, &addr, in);) {
		if (refers_into(cs, in, site, an->range_end, &where))
			snprintf(an->why, sizeof(an->why), "the instruction at %s+0x%" PRIx64 " (%s %s) "
				 "branches or points to %s+0x%" PRIx64 ", inside the bytes to replace",
				 rq->name, in->address - rq->start, in->mnemonic, in->op_str, rq->name,
				 where - rq->start);
	}
	cs_free(in, 1);
	return 0;
}

static int refuse(struct lp_diag *d, const struct lp_request *rq, const char *fmt, const char *why)
{
	return lp_fail(d, LP_EXIT_SITE, fmt, rq->name, why);
}

/* What memory holds at the site compared with the file: ours, pristine, or foreign. */
static int classify_live(const struct lp_request *rq, uint64_t site, unsigned int *cur_len,
			 uint64_t *cur_target, struct lp_diag *d)
{
	size_t n = rq->end - rq->start, off = site - rq->start;
	size_t first = 0, last = 0;
	bool differs = false;

	for (size_t i = 0; i < n; i++)
		if (rq->live[i] != rq->file[i]) {
			if (!differs)
				first = i;
			last = i;
			differs = true;
		}
	*cur_len = 0;
	if (!differs)
		return 0;
	*cur_len = x86_decode_jmp(rq->live + off, n - off, site, cur_target);
	if (*cur_len && first >= off && last < off + *cur_len)
		return 0;
	return lp_fail(d, LP_EXIT_SITE, "the bytes of %s at +0x%zx differ from its file and are not a "
		       "jump livepatch wrote (%s%02x); another tool (debugger, uprobe, patcher) changed "
		       "it (remove that first)", rq->name, first,
		       rq->live[first] == 0xcc ? "an int3 breakpoint: " : "byte ", rq->live[first]);
}

static int plan_revert(const struct lp_request *rq, struct lp_site *s, struct lp_plan *plan,
		       unsigned int cur_len, struct lp_diag *d)
{
	if (!cur_len) {
		plan->state = LP_PLAN_NOT_PATCHED;
		return 0;
	}
	s->len = cur_len;
	s->form = LP_FORM_ORIGINAL;
	memcpy(s->new_bytes, rq->file + (s->addr - rq->start), cur_len);
	snprintf(s->written, sizeof(s->written), "%s", s->displaced);
	snprintf(plan->why, sizeof(plan->why), "restore the %u original bytes from the mapped file",
		 cur_len);
	(void)d;
	return 0;
}

static int choose_form(const struct lp_request *rq, struct lp_site *s, struct lp_plan *plan,
		       unsigned int cur_len, struct lp_diag *d)
{
	uint8_t jmp[LP_SITE_MAX];
	unsigned int n = x86_encode_jmp(s->addr, rq->target, jmp);
	bool near = n == X86_JMP_REL32_LEN;

	s->form = near ? LP_FORM_JMP_REL32 : LP_FORM_JMP_ABS64;
	/* A target at the endbr64 or the site would jump to itself forever. */
	if (rq->target >= s->addr - (s->endbr ? X86_ENDBR64_LEN : 0) && rq->target < s->addr + n)
		return lp_fail(d, LP_EXIT_SITE, "the target lies inside the bytes of %s that would be "
			       "replaced (choose a target outside %s's first %u bytes)", rq->name,
			       rq->name, n);
	/* A re-point over a longer jump restores the file's bytes behind the new one. */
	s->len = cur_len > n ? cur_len : n;
	memcpy(s->new_bytes, rq->file + (s->addr - rq->start), s->len);
	memcpy(s->new_bytes, jmp, n);
	if (near)
		snprintf(s->written, sizeof(s->written), "jmp 0x%" PRIx64, rq->target);
	else
		snprintf(s->written, sizeof(s->written), "jmp qword ptr [rip]; .quad 0x%" PRIx64,
			 rq->target);
	snprintf(plan->why, sizeof(plan->why), near ?
		 "jmp rel32 (5 bytes): the target is within +-2 GiB of the site" :
		 "jmp [rip] + 8-byte address (14 bytes): the target is more than 2 GiB away");
	return 0;
}

static int check_range(const struct lp_request *rq, const struct lp_site *s, unsigned int need,
		       const struct decoded *dc, const struct analysis *an, struct lp_diag *d)
{
	char why[200];

	if (dc->decoded_end < rq->end)
		return lp_fail(d, LP_EXIT_SITE, "cannot decode %s at +0x%" PRIx64 " (data or an unknown "
			       "instruction inside the function), so branches into the site cannot be ruled "
			       "out (patch another function)", rq->name, dc->decoded_end - rq->start);
	if (!is_boundary(dc, s->addr))
		return lp_fail(d, LP_EXIT_SITE, "0x%" PRIx64 " is not an instruction boundary of %s "
			       "(give the function's start)", s->addr, rq->name);
	if (!an->range_end || an->range_end > rq->end) {
		snprintf(why, sizeof(why), "%" PRIu64 " bytes%s, but the jump needs %u",
			 rq->end - s->addr, s->endbr ? " after endbr64" : "", need);
		return refuse(d, rq, "%s is too small to patch: %s (patch its callers instead)", why);
	}
	if (an->why[0])
		return refuse(d, rq, "cannot patch %s: %s (patch another function or its callers)", an->why);
	if ((s->addr >> 12) != ((s->addr + need - 1) >> 12))
		return lp_fail(d, LP_EXIT_SITE, "the site of %s at 0x%" PRIx64 " crosses a page boundary, "
			       "which a single write cannot cover (patch another function)", rq->name,
			       s->addr);
	return 0;
}

int plan_site(const struct lp_request *rq, struct lp_site *s, struct lp_plan *plan,
	      struct lp_diag *d)
{
	struct decoded dc = { .n = 0 };
	struct analysis an;
	unsigned int cur_len, need;
	uint64_t cur_target = 0;
	uint8_t jmp[LP_SITE_MAX];
	csh cs;
	int ret;

	memset(s, 0, sizeof(*s));
	s->addr = rq->entry;
	if (rq->entry == rq->start && x86_is_endbr64(rq->file, rq->end - rq->start)) {
		s->endbr = true;	/* indirect branches land on it under IBT: keep it */
		s->addr += X86_ENDBR64_LEN;
	}
	ret = classify_live(rq, s->addr, &cur_len, &cur_target, d);
	if (ret)
		return ret;
	plan->revert = rq->revert;
	plan->prev_target = cur_len ? cur_target : 0;
	if (!rq->revert && cur_len && cur_target == rq->target) {
		plan->state = LP_PLAN_ALREADY;
		return 0;
	}
	plan->repoint = !rq->revert && cur_len;
	need = rq->revert ? cur_len : x86_encode_jmp(s->addr, rq->target, jmp);
	if (need < cur_len)
		need = cur_len;
	if (!need)
		need = 1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return lp_fail(d, LP_EXIT_INTERNAL, "capstone cannot open an x86-64 decoder (reinstall libcapstone4)");
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	ret = analyse(cs, rq, s->addr, need, &dc, s, &an);
	cs_close(&cs);
	if (!ret && rq->revert && !cur_len) {
		ret = plan_revert(rq, s, plan, 0, d);
		goto out;
	}
	if (!ret)
		ret = check_range(rq, s, need, &dc, &an, d);
	if (ret)
		goto out;
	memcpy(s->old_bytes, rq->live + (s->addr - rq->start), need);
	s->displaced_len = (unsigned int)(an.range_end - s->addr);
	if (s->displaced_len > LP_DISPLACED_MAX) {
		ret = refuse(d, rq, "cannot patch %s: %s (patch another function)",
			     "its first instructions are longer than livepatch can displace");
		goto out;
	}
	memcpy(s->orig, rq->file + (s->addr - rq->start), s->displaced_len);
	plan->state = LP_PLAN_WRITE;
	ret = rq->revert ? plan_revert(rq, s, plan, cur_len, d) : choose_form(rq, s, plan, cur_len, d);
	memcpy(s->old_bytes, rq->live + (s->addr - rq->start), s->len);
	plan_set_emulation(s);
out:
	free(dc.bounds);
	return ret;
}

size_t plan_runs(const struct lp_plan *plan, struct lp_run *runs)
{
	size_t n = 0, off = 0;

	for (size_t i = 0; i < plan->nsites; i++) {
		const struct lp_site *s = &plan->sites[i];
		struct lp_run *r = n ? &runs[n - 1] : NULL;
		/* A site never crosses a page (plan_site), so its first byte names its page. */
		if (r && s->addr >> 12 == r->lo >> 12 && s->addr >= r->hi &&
		    s->addr - r->hi <= LP_RUN_GAP) {
			off += s->addr + s->len - r->hi;
			r->hi = s->addr + s->len;
			r->nsites++;
			continue;
		}
		runs[n++] = (struct lp_run){ .lo = s->addr, .hi = s->addr + s->len, .first = i,
					     .nsites = 1, .off = off };
		off += s->len;
	}
	return n;
}

const struct lp_site *plan_find_site(const struct lp_plan *plan, uint64_t addr)
{
	size_t lo = 0, hi = plan->nsites;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct lp_site *s = &plan->sites[mid];
		if (addr < s->addr)
			hi = mid;
		else if (addr >= s->addr + s->len)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

void plan_free(struct lp_plan *plan)
{
	free(plan->sites);
	free(plan->skipped);
	free(plan->others);
	memset(plan, 0, sizeof(*plan));
}

static int read_function(struct lp_proc *p, const struct lp_symbol *f, uint8_t **live,
			 uint8_t **file, struct lp_diag *d)
{
	uint64_t start = f->addr - f->offset, end = f->addr + f->size;
	int ret;

	if (!f->size)
		return lp_fail(d, LP_EXIT_SITE, "%s has no size in the symbol table, so its bounds are "
			       "unknown (patch a function with a known size)", f->name);
	if (end - start > LP_FUNC_MAX)
		return lp_fail(d, LP_EXIT_SITE, "%s is %" PRIu64 " bytes long, more than livepatch decodes "
			       "(%u) (patch a smaller function)", f->name, end - start, LP_FUNC_MAX);
	*live = malloc(end - start);
	*file = malloc(end - start);
	if (!*live || !*file)
		return -ENOMEM;
	ret = proc_read(p, start, *live, end - start);
	if (ret)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot read %s from process %d: %s (did it exit?)",
			       f->name, p->pid, strerror(-ret));
	ret = object_read_at(f->obj, start, *file, end - start);
	if (ret)
		return lp_fail(d, LP_EXIT_SITE, "cannot read %s from %s: %s (the original bytes are needed "
			       "to check and revert the site)", f->name, f->obj->path, strerror(-ret));
	return 0;
}

void plan_set_emulation(struct lp_site *s)
{
	s->emul_new = x86_decode_emulation(s->new_bytes, s->len, s->addr);
	s->emul_old = x86_decode_emulation(s->old_bytes, s->len, s->addr);
}

int plan_keep(struct lp_plan *plan, const struct lp_plan *one, const struct lp_site *s,
		const struct lp_symbol *f)
{
	if (one->state != LP_PLAN_WRITE) {
		struct lp_skip *k = realloc(plan->skipped, (plan->nskipped + 1) * sizeof(*k));
		if (!k)
			return -ENOMEM;
		plan->skipped = k;
		snprintf(k[plan->nskipped].func, sizeof(k->func), "%s:%s", f->obj->name, f->name);
		k[plan->nskipped++].why = one->state;
		return 0;
	}
	if (plan->nsites == plan->cap) {
		size_t cap = plan->cap ? plan->cap * 2 : 4;
		struct lp_site *v = realloc(plan->sites, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		plan->sites = v;
		plan->cap = cap;
	}
	plan->sites[plan->nsites++] = *s;
	return 0;
}

int plan_add(struct lp_proc *p, const struct lp_symbol *f, const struct lp_symbol *g,
	     struct lp_plan *plan, struct lp_diag *d)
{
	struct lp_plan one = { 0 };
	struct lp_site site;
	struct lp_symbol gs;
	uint8_t *live = NULL, *file = NULL;
	int ret = read_function(p, f, &live, &file, d);

	if (!ret) {
		struct lp_request rq = {
			.start = f->addr - f->offset, .end = f->addr + f->size, .entry = f->addr,
			.target = g ? g->addr : 0, .revert = !g, .name = f->name, .live = live,
			.file = file,
		};
		ret = plan_site(&rq, &site, &one, d);
	}
	free(live);
	free(file);
	if (ret)
		return ret;
	snprintf(site.func, sizeof(site.func), "%s:%s", f->obj->name, f->name);
	site.func_addr = f->addr;
	site.target_name[0] = site.was[0] = 0;
	if (g)
		snprintf(site.target_name, sizeof(site.target_name), "%s:%s", g->obj->name, g->name);
	if (one.prev_target && !resolve_symbolize(p, one.prev_target, &gs))
		snprintf(site.was, sizeof(site.was), "%s:%s", gs.obj->name, gs.name);
	if (!plan->npairs++) {	/* the first pair speaks for a single patch */
		plan->state = one.state;
		plan->revert = one.revert;
		plan->repoint = one.repoint;
		plan->prev_target = one.prev_target;
	}
	if (!plan->why[0] && one.state == LP_PLAN_WRITE)	/* why: of the first pair written */
		memcpy(plan->why, one.why, sizeof(plan->why));
	return plan_keep(plan, &one, &site, f);
}

static int cmp_site(const void *a, const void *b)
{
	const struct lp_site *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

int plan_finish(struct lp_plan *plan, struct lp_diag *d)
{
	if (plan->nsites > 1)	/* qsort must not get the NULL of an empty plan */
		qsort(plan->sites, plan->nsites, sizeof(*plan->sites), cmp_site);
	for (size_t i = 1; i < plan->nsites; i++)
		if (plan->sites[i].addr < plan->sites[i - 1].addr + plan->sites[i - 1].len)
			return lp_fail(d, LP_EXIT_USAGE, "%s and %s overlap (0x%" PRIx64 "): each function "
				       "may appear once in a batch (remove the duplicate)",
				       plan->sites[i - 1].func, plan->sites[i].func, plan->sites[i].addr);
	/* Any site to write makes it a transaction; otherwise the first pair's verdict stands. */
	if (plan->nsites)
		plan->state = LP_PLAN_WRITE;
	return 0;
}

int plan_build(struct lp_proc *p, const struct lp_symbol *f, const struct lp_symbol *g,
	       struct lp_plan *plan, struct lp_diag *d)
{
	memset(plan, 0, sizeof(*plan));
	int ret = plan_add(p, f, g, plan, d);
	return ret ? ret : plan_finish(plan, d);
}

/*
 * Cycles (issue #14): a jump to G lands at G's entry, runs its endbr64 if it has one, then
 * reaches G's site. If that site holds a jump too (a pair of the plan, or one already in
 * memory), the call goes on to that jump's target, and so on: a chain. A chain that comes
 * back to a site it passed spins forever in every thread that calls into it. The chains
 * are followed in the bytes memory will hold once the plan is written (the plan's new bytes
 * over the live ones), from every site the plan makes a jump.
 */
#define LP_CHAIN_MAX 4096	/* sites followed from one site; a longer chain is not followed */

/* @len bytes at @addr as they will be after the plan: memory, with the plan's bytes over it. */
static int bytes_after(struct lp_proc *p, const struct lp_plan *plan, uint64_t addr, uint8_t *buf,
		       size_t len)
{
	int ret = proc_read(p, addr, buf, len);

	for (size_t i = 0; !ret && i < len; i++) {
		const struct lp_site *s = plan_find_site(plan, addr + i);
		if (s)
			buf[i] = s->new_bytes[addr + i - s->addr];
	}
	return ret;
}

/* Where a call that lands on @addr goes first: past an endbr64 there. */
static uint64_t chain_landing(struct lp_proc *p, const struct lp_plan *plan, uint64_t addr)
{
	uint8_t b[X86_ENDBR64_LEN];

	return !bytes_after(p, plan, addr, b, sizeof(b)) && x86_is_endbr64(b, sizeof(b)) ?
	       addr + X86_ENDBR64_LEN : addr;
}

/* The target of the jump @site will start with after the plan, or 0 when it holds none. */
static uint64_t chain_next(struct lp_proc *p, const struct lp_plan *plan, uint64_t site)
{
	uint8_t b[X86_JMP_ABS64_LEN] = { 0 };
	uint64_t t = 0;

	/* Five bytes hold a jmp rel32; only a jmp [rip] needs the address after them. */
	if (bytes_after(p, plan, site, b, X86_JMP_REL32_LEN))
		return 0;
	if (b[0] == 0xff && bytes_after(p, plan, site, b, sizeof(b)))
		return 0;
	return x86_decode_jmp(b, sizeof(b), site, &t) ? t : 0;
}

/* The plan's site that starts at @addr, or NULL. */
static const struct lp_site *site_starting(const struct lp_plan *plan, uint64_t addr)
{
	const struct lp_site *s = plan_find_site(plan, addr);

	return s && s->addr == addr ? s : NULL;
}

/* OBJECT:SYMBOL of the function whose site (or entry) is @addr, OBJECT:SYMBOL+0xOFF, or 0xADDR. */
static void chain_name(struct lp_proc *p, const struct lp_plan *plan, uint64_t addr, char *out,
		       size_t cap)
{
	const struct lp_site *s = site_starting(plan, addr);
	struct lp_symbol sym;

	if (s)
		snprintf(out, cap, "%s", s->func);
	else if (resolve_symbolize(p, addr, &sym))
		snprintf(out, cap, "0x%" PRIx64, addr);
	else if (addr == sym.addr || chain_landing(p, plan, sym.addr) == addr)
		snprintf(out, cap, "%s:%s", sym.obj->name, sym.name);
	else
		snprintf(out, cap, "%s:%s+0x%" PRIx64, sym.obj->name, sym.name, addr - sym.addr);
}

/* Whether the jump at @addr differs from the file: one written earlier (livepatch's). */
static bool chain_written(struct lp_proc *p, uint64_t addr)
{
	const struct lp_object *obj = proc_object_at(p, addr, NULL);
	uint8_t live[5], file[5];

	return obj && !proc_read(p, addr, live, 5) && !object_read_at(obj, addr, file, 5) &&
	       memcmp(live, file, 5);
}

/* Refuse the cycle path[0..n) -> path[0] (exit 5), naming its functions in order. */
static int refuse_cycle(struct lp_proc *p, const struct lp_plan *plan, const uint64_t *path,
			size_t n, struct lp_diag *d)
{
	char names[640] = "", fix[300] = "", name[200];
	size_t used = 0, fixed = 0, planned = 0;

	for (size_t i = 0; i <= n; i++) {
		chain_name(p, plan, path[i % n], name, sizeof(name));
		if (used < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
						 i ? " -> " : "", name);
		if (i == n)
			break;
		if (site_starting(plan, path[i]))
			planned++;
		else if (chain_written(p, path[i]) && fixed < sizeof(fix))
			fixed += (size_t)snprintf(fix + fixed, sizeof(fix) - fixed, "%s%s",
						  fixed ? ", " : ", or revert ", name);
	}
	if (!planned)
		return lp_fail(d, LP_EXIT_SITE, "the plan leads into a cycle of jumps already in memory: "
			       "%s (revert those jumps first)", names);
	return lp_fail(d, LP_EXIT_SITE, "the plan makes a cycle: %s (remove one of these pairs%s%s)",
		       names, fixed ? fix : "", fixed ? " first" : "");
}

int plan_check_cycles(struct lp_proc *p, const struct lp_plan *plan, struct lp_diag *d)
{
	uint64_t *path = malloc(LP_CHAIN_MAX * sizeof(*path));
	bool *done = calloc(plan->nsites + 1, sizeof(*done));	/* no cycle from that site */
	int ret = path && done ? 0 : -ENOMEM;

	for (size_t i = 0; !ret && i < plan->nsites; i++) {
		const struct lp_site *s = &plan->sites[i], *at;
		size_t n = 0;
		if (done[i] || (s->form != LP_FORM_JMP_REL32 && s->form != LP_FORM_JMP_ABS64))
			continue;
		for (uint64_t node = s->addr, t; !ret && node && n < LP_CHAIN_MAX;
		     node = (t = chain_next(p, plan, node)) ? chain_landing(p, plan, t) : 0) {
			if ((at = site_starting(plan, node)) && done[at - plan->sites])
				break;
			for (size_t k = 0; !ret && k < n; k++)
				if (path[k] == node)
					ret = refuse_cycle(p, plan, path + k, n - k, d);
			path[n++] = node;
		}
		for (size_t k = 0; k < n; k++)
			if ((at = site_starting(plan, path[k])))
				done[at - plan->sites] = true;
	}
	free(path);
	free(done);
	return ret;
}
