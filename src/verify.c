/*
 * Verify (docs/design.md §6): count, from the kernel's side, SIGTRAPs raised and
 * delivered at our sites during the transaction, then calls that reach G's
 * entry and F's old body over a window. Uses the skeleton of verify.bpf.c.
 */
#include <bpf/libbpf.h>
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
