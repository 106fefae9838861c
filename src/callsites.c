/*
 * Call-site mode of the plan stage: find every direct `call F` by a linear sweep
 * of the executable sections (the file's bytes, so a site we rewrote is still
 * found), and plan each as a 5-byte site `call G`. References that are not a
 * direct call (tail calls, calls through memory, PLT stubs) are listed, not touched.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"
#include "resolve.h"

/* The scan of executable sections for references to F (plan_add_callsites). */
struct callsite_scan {
	struct lp_proc *p;
	const struct lp_object *obj;
	const struct lp_symbol *f, *g;
	struct lp_plan *plan;
	struct lp_diag *d;
	csh cs;
	cs_insn *in;
	uint64_t stubs[64];	/* PLT stubs that jump to F */
	size_t nstubs;
	size_t found, already, written;
};

/* @addr as OBJECT:SYMBOL, OBJECT:SYMBOL+0xOFF, or 0xADDR outside any symbol. */
static void name_address(struct lp_proc *p, uint64_t addr, char *out, size_t len)
{
	struct lp_symbol s;

	if (resolve_symbolize(p, addr, &s))
		snprintf(out, len, "0x%" PRIx64, addr);
	else if (addr == s.addr)
		snprintf(out, len, "%s:%s", s.obj->name, s.name);
	else
		snprintf(out, len, "%s:%s+0x%" PRIx64, s.obj->name, s.name, addr - s.addr);
}

/* Add the reference to F at @addr to plan->others: listed in the plan, not rewritten. */
static int list_left_alone(struct callsite_scan *sc, uint64_t addr, const char *kind)
{
	struct lp_plan *pl = sc->plan;
	struct lp_other *o = realloc(pl->others, (pl->nothers + 1) * sizeof(*o));

	if (!o)
		return -ENOMEM;
	pl->others = o;
	o[pl->nothers].addr = addr;
	o[pl->nothers].kind = kind;
	name_address(sc->p, addr, o[pl->nothers].where, sizeof(o->where));
	pl->nothers++;
	return 0;
}

/* One `call F` at @site: compare memory with the file, then plan `call G` (or back to F). */
static int call_site(struct callsite_scan *sc, uint64_t site, const uint8_t *file)
{
	struct lp_site s = { .addr = site, .len = X86_CALL_REL32_LEN,
			     .displaced_len = X86_CALL_REL32_LEN, .form = LP_FORM_CALL_REL32,
			     .func_addr = site };
	uint64_t to = sc->g ? sc->g->addr : sc->f->addr, cur;
	uint8_t call[X86_CALL_REL32_LEN];
	int ret = proc_read(sc->p, site, s.old_bytes, s.len);

	sc->found++;
	if (ret)
		return lp_fail(sc->d, LP_EXIT_PROCESS, "cannot read the call site at 0x%" PRIx64 ": %s",
			       site, strerror(-ret));
	name_address(sc->p, site, s.func, sizeof(s.func));
	if (!x86_decode_call(s.old_bytes, s.len, site, &cur))
		return lp_fail(sc->d, LP_EXIT_SITE, "the call to %s at %s was changed by another tool "
			       "(%02x, not a call) (remove that change first)", sc->f->name, s.func,
			       s.old_bytes[0]);
	if (cur == to) {
		sc->already++;
		return 0;
	}
	if (!x86_encode_call_rel32(site, to, call))
		return lp_fail(sc->d, LP_EXIT_SITE, "%s is more than 2 GiB from the call site at %s, out "
			       "of reach of a call rel32 (patch the entry of %s instead)",
			       sc->g ? sc->g->name : sc->f->name, s.func, sc->f->name);
	if ((site >> 12) != ((site + s.len - 1) >> 12))
		return lp_fail(sc->d, LP_EXIT_SITE, "the call site at %s crosses a page boundary, which "
			       "a single write cannot cover (patch the entry of %s instead)", s.func,
			       sc->f->name);
	memcpy(s.new_bytes, sc->g ? call : file, s.len);
	plan_set_emulation(&s);
	snprintf(s.displaced, sizeof(s.displaced), "call 0x%" PRIx64, cur);
	snprintf(s.written, sizeof(s.written), "call 0x%" PRIx64, to);
	if (sc->g)
		snprintf(s.target_name, sizeof(s.target_name), "%s:%s", sc->g->obj->name, sc->g->name);
	name_address(sc->p, cur, s.was, sizeof(s.was));
	struct lp_plan one = { .state = LP_PLAN_WRITE };
	sc->written++;
	return plan_keep(sc->plan, &one, &s, sc->f);
}

static bool is_stub(const struct callsite_scan *sc, uint64_t a)
{
	for (size_t i = 0; i < sc->nstubs; i++)
		if (sc->stubs[i] == a)
			return true;
	return false;
}

/*
 * One instruction that refers to F: a direct call is planned as a call site; a tail call,
 * a call or jump through memory, or a PLT stub is listed and left alone.
 */
static int plan_or_list_insn(struct callsite_scan *sc, const char *section, const cs_insn *in,
			     const uint8_t *bytes)
{
	const cs_x86 *x = &in->detail->x86;
	bool call = in->id == X86_INS_CALL, jmp = in->id == X86_INS_JMP;
	uint64_t f = sc->f->addr, slot;

	if ((!call && !jmp) || x->op_count != 1)
		return 0;
	const cs_x86_op *op = &x->operands[0];
	if (op->type == X86_OP_IMM) {
		if ((uint64_t)op->imm == f)
			return call && in->size == X86_CALL_REL32_LEN ? call_site(sc, in->address, bytes) :
			       list_left_alone(sc, in->address, "tail_call");
		return is_stub(sc, (uint64_t)op->imm) ? list_left_alone(sc, in->address, "via_plt") : 0;
	}
	if (op->type != X86_OP_MEM || op->mem.base != X86_REG_RIP || op->mem.index != X86_REG_INVALID)
		return 0;
	uint64_t at = in->address + in->size + (uint64_t)op->mem.disp;
	if (proc_read(sc->p, at, &slot, 8) || slot != f)
		return 0;
	if (jmp && !strncmp(section, ".plt", 4)) {
		if (sc->nstubs < LP_ARRAY_SIZE(sc->stubs))
			sc->stubs[sc->nstubs++] = in->address;
		return list_left_alone(sc, in->address, "plt");
	}
	return list_left_alone(sc, in->address, "pointer");
}

/* Linear sweep; an undecodable byte is skipped, as objdump does. */
static int scan_section(const char *name, uint64_t addr, const uint8_t *bytes, size_t len, void *arg)
{
	struct callsite_scan *sc = arg;
	const uint8_t *code = bytes;
	size_t size = len;
	uint64_t a = addr;

	while (size) {
		if (!cs_disasm_iter(sc->cs, &code, &size, &a, sc->in)) {
			code++, size--, a++;
			continue;
		}
		int ret = plan_or_list_insn(sc, name, sc->in, code - sc->in->size);
		if (ret)
			return ret;
	}
	return 0;
}

int plan_add_callsites(struct lp_proc *p, const struct lp_symbol *f, const struct lp_symbol *g,
		       const char *in, struct lp_plan *plan, struct lp_diag *d)
{
	struct callsite_scan sc = { .p = p, .f = f, .g = g, .plan = plan, .d = d };
	int ret = 0;

	if (proc_shadow_stack(p->via))
		return lp_fail(d, LP_EXIT_SITE, "process %d runs with a user shadow stack "
			       "(x86_Thread_features: shstk): emulating a call would have to push there "
			       "too, which livepatch does not do yet (patch the entry, without --callsites)",
			       p->pid);
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &sc.cs) != CS_ERR_OK)
		return lp_fail(d, LP_EXIT_INTERNAL, "capstone cannot open an x86-64 decoder");
	cs_option(sc.cs, CS_OPT_DETAIL, CS_OPT_ON);
	sc.in = cs_malloc(sc.cs);
	bool named = false;
	for (size_t i = 0; !ret && sc.in && i < p->nobjs; i++) {
		struct lp_object *o = &p->objs[i];
		if (in && strcmp(o->name, in) && strcmp(o->path, in))
			continue;
		named = true;
		sc.obj = o;
		ret = object_each_exec_section(o, scan_section, &sc);
		if (ret == -ENOEXEC || ret == -ENOENT || ret == -ESTALE)
			ret = 0;	/* not an ELF we can read (a deleted-and-replaced file): no calls */
	}
	if (sc.in)
		cs_free(sc.in, 1);
	cs_close(&sc.cs);
	if (ret <= -LP_ERR_BASE)
		return ret;
	if (ret)
		return lp_fail(d, LP_EXIT_INTERNAL, "scanning for calls failed: %s", strerror(-ret));
	if (in && !named)
		return lp_fail(d, LP_EXIT_SYMBOL, "--in %s: no such object is mapped in process %d "
			       "(give a base name such as libc.so.6, or a path)", in, p->pid);
	if (!sc.found && g)
		return lp_fail(d, LP_EXIT_SITE, "no direct call to %s found%s%s (%zu other reference(s): "
			       "tail calls, pointers, PLT; patch its entry instead, without --callsites)",
			       f->name, in ? " in " : "", in ? in : "", plan->nothers);
	if (!plan->npairs++) {
		plan->revert = !g;
		plan->callsites = true;
		plan->state = sc.written ? LP_PLAN_WRITE : g ? LP_PLAN_ALREADY : LP_PLAN_NOT_PATCHED;
	}
	if (sc.written && !plan->why[0]) {
		snprintf(plan->why, sizeof(plan->why), "call-site mode: %zu direct call(s) of %s, %zu to "
			 "rewrite as call rel32 (5 bytes each), %zu left alone", sc.found, f->name,
			 sc.written, plan->nothers);
	}
	if (!sc.written) {	/* every call site already says it: the pair needs nothing */
		struct lp_plan none = { .state = g ? LP_PLAN_ALREADY : LP_PLAN_NOT_PATCHED };
		return plan_keep(plan, &none, NULL, f);
	}
	return 0;
}
