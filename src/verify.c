/*
 * Verify (docs/design.md §6): count, from the kernel's side, SIGTRAPs raised and
 * delivered at our sites during the transaction, then calls that reach G's
 * entry and F's old body over a window. Uses the skeleton of verify.bpf.c.
 * First, refuse a process with an `int $3` (cd 03), which uprobes would kill.
 */
#include <bpf/libbpf.h>
#include <capstone/capstone.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "verify.h"
#include "verify.skel.h"

struct lp_verifier {
	struct verify_bpf *skel;
	struct bpf_link *target_link, *old_link;
	uint64_t target_probe, old_probe;
	bool revert;
};

/* The next cd 03 in [@q, @end), or NULL. memchr: glibc's memmem goes byte by byte for two. */
static const uint8_t *next_cd03(const uint8_t *q, const uint8_t *end)
{
	while (q + 1 < end && (q = memchr(q, 0xcd, (size_t)(end - q - 1))) && q[1] != 0x03)
		q++;
	return q && q + 1 < end ? q : NULL;
}

/* The innermost function of @f (sorted by start) that holds @a, or NULL. */
static const struct lp_fn_range *holding(const struct lp_fn_range *f, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {	/* first function starting above @a */
		size_t mid = lo + (hi - lo) / 2;
		if (f[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k-- > 0 && lo - k <= 64;)	/* aliases, nested symbols */
		if (a < f[k].end)
			return &f[k];
	return NULL;
}

/*
 * Whether an instruction starts at @hit and is `int 3` in two bytes: a linear decode
 * (an undecodable byte skipped, as objdump does) from @*pos, which is left at @hit or
 * at the end of the instruction that covers it. The decoder is given every byte to the
 * end of the buffer: an instruction that covers the hit is never cut short there.
 */
static bool lands_on(csh cs, cs_insn *in, const uint8_t *bytes, size_t len, uint64_t addr,
		     uint64_t *pos, uint64_t hit)
{
	uint64_t a = *pos;
	const uint8_t *code = bytes + (a - addr);
	size_t size = len - (size_t)(a - addr);

	while (a < hit)
		if (!cs_disasm_iter(cs, &code, &size, &a, in))
			code++, size--, a++;
	*pos = a;
	if (a != hit)
		return false;
	return cs_disasm_iter(cs, &code, &size, &a, in) && in->id == X86_INS_INT && in->size == 2;
}

int verify_find_int3(const uint8_t *bytes, size_t len, uint64_t addr,
		     const struct lp_fn_range *fns, size_t nfns, uint64_t *at)
{
	const struct lp_fn_range *cur = NULL;
	uint64_t pos = 0;
	const uint8_t *q = next_cd03(bytes, bytes + len);
	csh cs;
	cs_insn *in;

	*at = 0;
	if (!q)
		return 0;	/* the common case, without a decoder */
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -EINVAL;
	if (!(in = cs_malloc(cs))) {
		cs_close(&cs);
		return -ENOMEM;
	}
	for (; q && !*at; q = next_cd03(q + 1, bytes + len)) {
		uint64_t hit = addr + (uint64_t)(q - bytes);
		const struct lp_fn_range *f = holding(fns, nfns, hit);
		if (!f || f->start < addr)
			continue;	/* no start to decode from: not judged, not refused */
		if (f == cur && pos > hit)
			continue;	/* the sweep went past it: inside an instruction */
		if (f != cur) {	/* hits ascend: one sweep per function */
			cur = f;
			pos = f->start;
		}
		if (lands_on(cs, in, bytes, len, addr, &pos, hit))
			*at = hit;
	}
	cs_free(in, 1);
	cs_close(&cs);
	return 0;
}

/* object_each_function's functions with a size, in its order (by address). */
struct fn_list {
	struct lp_fn_range *v;
	size_t n, cap;
	bool oom;
};

static void add_fn(const struct lp_symbol *s, void *arg)
{
	struct fn_list *l = arg;

	if (!s->size || l->oom)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		struct lp_fn_range *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct lp_fn_range){ s->addr, s->addr + s->size };
}

/*
 * The first `int $3` in @o's executable mappings, as the process has them now, into @at.
 * Its symbols are read only for a mapping whose bytes hold a cd 03 at all; a mapping
 * that cannot be read is not judged.
 */
static int scan_object(struct lp_proc *p, struct lp_object *o, uint64_t *at)
{
	struct fn_list fl = { 0 };
	bool listed = false;
	int ret = 0;

	*at = 0;
	for (size_t i = 0; !ret && !*at && i < o->nmaps; i++) {
		const struct lp_mapping *m = &o->maps[i];
		size_t len = (size_t)(m->end - m->start);
		uint8_t *buf;
		if (!m->exec || !len)
			continue;
		if (!(buf = malloc(len)))
			return -ENOMEM;
		if (!proc_read(p, m->start, buf, len) && next_cd03(buf, buf + len)) {
			if (!listed && !(ret = object_each_function(o, add_fn, &fl)) && fl.oom)
				ret = -ENOMEM;
			listed = true;
			if (!ret)
				ret = verify_find_int3(buf, len, m->start, fl.v, fl.n, at);
		}
		free(buf);
	}
	free(fl.v);
	return ret;
}

int verify_scan_int3(struct lp_proc *p, struct lp_diag *d)
{
	for (size_t i = 0; i < p->nobjs; i++) {
		struct lp_object *o = &p->objs[i];
		struct lp_symbol s;
		char where[192] = "";
		uint64_t at;
		int ret = scan_object(p, o, &at);
		if (ret)
			return lp_fail(d, LP_EXIT_INTERNAL, "cannot look for `int $3` in %s before "
				       "--verify: %s", o->name, strerror(-ret));
		if (!at)
			continue;
		if (!object_function_at(o, at, &s))
			snprintf(where, sizeof(where), " (%s+0x%" PRIx64 ")", s.name, at - s.addr);
		return lp_fail(d, LP_EXIT_PROCESS, "--verify cannot run on process %d: %s has an "
			       "`int $3` (cd 03) at 0x%" PRIx64 "%s, which the kernel's uprobes mistake "
			       "for a breakpoint of theirs and the process would die of SIGSEGV (run "
			       "without --verify)", p->pid, o->name, at, where);
	}
	return 0;
}

/* A uprobe on the file mapped at @addr: through map_files, like every other read of ours. */
static struct bpf_link *probe(struct lp_proc *p, struct bpf_program *prog, uint64_t addr,
			      struct lp_diag *d)
{
	const struct lp_mapping *m;
	const struct lp_object *obj = proc_object_at(p, addr, &m);
	char alt[PATH_MAX + 32];

	if (!obj)
		return NULL;
	size_t off = (size_t)(m->offset + addr - m->start);
	/* A uprobe bound to one thread fires in every thread of its memory: any live one will do. */
	struct bpf_link *l = bpf_program__attach_uprobe(prog, false, p->via, obj->open_path, off);
	if (!l) {
		snprintf(alt, sizeof(alt), "/proc/%d/root%s", p->via, obj->path);
		l = bpf_program__attach_uprobe(prog, false, p->via, alt, off);
	}
	if (!l && (errno == EACCES || errno == EPERM))
		lp_fail(d, LP_EXIT_PROCESS, "cannot attach a uprobe to %s at 0x%zx: %s (on this kernel "
			"uprobes need CAP_SYS_ADMIN besides CAP_BPF and CAP_PERFMON; run as root or "
			"without --verify)", obj->name, off, strerror(errno));
	else if (!l)
		lp_fail(d, LP_EXIT_PROCESS, "cannot attach a uprobe to %s at 0x%zx: %s (--verify needs "
			"a kernel with uprobes, CONFIG_UPROBE_EVENTS; run without --verify)", obj->name,
			off, strerror(errno));
	return l;
}

static int load(struct lp_verifier *v, pid_t pid, struct lp_diag *d)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return lp_fail(d, LP_EXIT_PROCESS, "--verify needs kernel BTF and /sys/kernel/btf/vmlinux "
			       "is missing (a kernel built with CONFIG_DEBUG_INFO_BTF; or run without --verify)");
	v->skel = verify_bpf__open();
	if (!v->skel)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot open the verify BPF program: %s", strerror(errno));
	v->skel->rodata->target_tgid = (uint32_t)pid;
	int ret = verify_bpf__load(v->skel);
	if (ret)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot load the verify BPF program: %s (--verify needs "
			       "root, or CAP_BPF and CAP_PERFMON; run without --verify)", strerror(-ret));
	ret = verify_bpf__attach(v->skel);
	if (ret)
		return lp_fail(d, LP_EXIT_PROCESS, "cannot attach to the signal tracepoints: %s (--verify "
			       "needs BTF-enabled tracepoints; run without --verify)", strerror(-ret));
	return 0;
}

int verify_prepare(struct lp_verifier **out, struct lp_proc *p, const struct lp_plan *plan,
		   const struct lp_site *s, const struct lp_symbol *g, struct lp_diag *d)
{
	struct lp_verifier *v = calloc(1, sizeof(*v));
	int ret;

	*out = v;
	if (!v)
		return -ENOMEM;
	v->revert = !g;
	ret = load(v, p->pid, d);
	for (size_t i = 0; !ret && i < plan->nsites; i++) {
		uint64_t site = plan->sites[i].addr;
		uint8_t one = 1;
		if (bpf_map__update_elem(v->skel->maps.sites, &site, sizeof(site), &one, 1, BPF_ANY))
			ret = lp_fail(d, LP_EXIT_PROCESS, "cannot fill the BPF site map: %s", strerror(errno));
	}
	if (ret)
		return ret;
	/* Never on a byte we change: G's entry, and the first instruction after the displaced bytes. */
	/* uprobes refuse some instructions (LOCK prefixes): take the first of the old body they accept. */
	for (unsigned int i = 0; i < s->nafter && !v->old_link; i++) {
		v->old_probe = s->after[i];
		v->old_link = probe(p, v->skel->progs.on_old, v->old_probe, i + 1 < s->nafter ? NULL : d);
	}
	if (!v->old_link)	/* the code of the uprobe message, if one was recorded */
		return lp_fail(d, LP_EXIT_SITE, "no instruction of %s's old body after the patch site can "
			       "carry a uprobe (run without --verify)", s->func);
	if (g) {
		v->target_probe = g->addr;
		v->target_link = probe(p, v->skel->progs.on_target, g->addr, d);
		if (!v->target_link)
			return LP_ERR(LP_EXIT_PROCESS);
	}
	return 0;
}

static void judge(const struct lp_verifier *v, struct lp_verify *r)
{
	uint64_t seen = v->revert ? r->old_hits : r->target_hits + r->old_hits;

	r->verdict = LP_VERIFY_FAIL;
	if (r->traps_delivered)
		snprintf(r->reason, sizeof(r->reason), "%" PRIu64 " SIGTRAP(s) from our breakpoints reached "
			 "the program", r->traps_delivered);
	else if (r->traps_generated != r->traps_handled)
		snprintf(r->reason, sizeof(r->reason), "the kernel raised %" PRIu64 " SIGTRAP(s) at the "
			 "sites but the transaction handled %" PRIu64, r->traps_generated, r->traps_handled);
	else if (!v->revert && r->old_hits)
		snprintf(r->reason, sizeof(r->reason), "the old body of the function was still entered %"
			 PRIu64 " time(s) in %.1f s", r->old_hits, r->window_s);
	else if (seen < r->min_calls) {
		r->verdict = LP_VERIFY_INCONCLUSIVE;
		snprintf(r->reason, sizeof(r->reason), "only %" PRIu64 " call(s) in %.1f s, fewer than %u: "
			 "the function was not called (lengthen --verify or lower --verify-min-calls)",
			 seen, r->window_s, r->min_calls);
	} else {
		r->verdict = LP_VERIFY_PASS;
		snprintf(r->reason, sizeof(r->reason), v->revert ?
			 "the original code ran %" PRIu64 " time(s), no breakpoint trap reached the program" :
			 "the target ran %" PRIu64 " time(s), the old body none, no breakpoint trap reached "
			 "the program", seen);
		size_t n = strlen(r->reason);
		if (!v->revert && r->old_hits_mid)
			snprintf(r->reason + n, sizeof(r->reason) - n, " (%" PRIu64 " pass(es) of the old "
				 "body by threads already inside it when it was patched, not counted)",
				 r->old_hits_mid);
	}
}

uint64_t verify_old_probe(const struct lp_verifier *v)
{
	return v ? v->old_probe : 0;
}

int verify_window(struct lp_verifier *v, struct lp_verify *r, const pid_t *mid, unsigned int nmid)
{
	for (unsigned int i = 0; i < nmid; i++) {
		__u32 tid = (__u32)mid[i];
		__u8 one = 1;
		(void)bpf_map__update_elem(v->skel->maps.mid, &tid, sizeof(tid), &one, sizeof(one),
					   BPF_ANY);
	}
	struct timespec ts = { (time_t)r->window_s,
			       (long)((r->window_s - (double)(time_t)r->window_s) * 1e9) };

	r->target_probe = v->target_probe;
	r->old_probe = v->old_probe;
	r->traps_generated = __atomic_load_n(&v->skel->bss->traps_generated, __ATOMIC_RELAXED);
	r->traps_delivered = __atomic_load_n(&v->skel->bss->traps_delivered, __ATOMIC_RELAXED);
	__atomic_store_n(&v->skel->bss->target_hits, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&v->skel->bss->old_hits, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&v->skel->bss->old_hits_mid, 0, __ATOMIC_RELAXED);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	r->target_hits = __atomic_load_n(&v->skel->bss->target_hits, __ATOMIC_RELAXED);
	r->old_hits = __atomic_load_n(&v->skel->bss->old_hits, __ATOMIC_RELAXED);
	r->old_hits_mid = __atomic_load_n(&v->skel->bss->old_hits_mid, __ATOMIC_RELAXED);
	/* A trap raised while the window ran was not ours to handle: nothing is armed now. */
	r->traps_delivered = __atomic_load_n(&v->skel->bss->traps_delivered, __ATOMIC_RELAXED);
	judge(v, r);
	return 0;
}

unsigned int verify_fds(const struct lp_verifier *v, int *fds)
{
	unsigned int n = 0;

	if (v && v->target_link)
		fds[n++] = bpf_link__fd(v->target_link);
	if (v && v->old_link)
		fds[n++] = bpf_link__fd(v->old_link);
	return n;
}

void verify_close(struct lp_verifier *v)
{
	if (!v)
		return;
	bpf_link__destroy(v->target_link);
	bpf_link__destroy(v->old_link);
	verify_bpf__destroy(v->skel);
	free(v);
}
