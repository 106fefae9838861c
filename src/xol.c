/*
 * Out-of-line copies of displaced instructions (docs/design.md §5): the relocation,
 * pure, and the regions in the process that hold the copies.
 *
 * A region is one page, read and execute only, made by an mmap run in a stopped
 * thread of the process. Its first slot is a header (the name, then the number of
 * slots used); every other slot holds one site's copy: the site's address, the
 * copy's length, then the code. Slots are only ever added: a thread may still run
 * a copy (a signal handler that sleeps for hours returns into it), so a region is
 * never unmapped or rewritten, and a later livepatch finds and reuses it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <capstone/capstone.h>
#include "proc.h"
#include "x86.h"
#include "xol.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
#define REACH (INT32_MAX - LP_XOL_PAGE)	/* a rel32 from anywhere in the region */

/* A relative branch re-encoded as its rel32 form at @at, to the same @target. */
static int branch_rel32(const cs_insn *in, uint64_t at, uint64_t target, uint8_t *out,
			unsigned int *n)
{
	uint8_t op = in->bytes[0];

	if (op == 0xeb || op == 0xe9)		/* jmp rel8 / rel32 */
		*n = x86_encode_jmp_rel32(at, target, out);
	else if (op == 0xe8)			/* call rel32 */
		*n = x86_encode_call_rel32(at, target, out);
	else if (op >= 0x70 && op <= 0x7f)	/* jcc rel8 */
		*n = x86_encode_jcc_rel32((uint8_t)(op - 0x70), at, target, out);
	else if (op == 0x0f && in->size >= 2 && in->bytes[1] >= 0x80 && in->bytes[1] <= 0x8f)
		*n = x86_encode_jcc_rel32((uint8_t)(in->bytes[1] - 0x80), at, target, out);
	else
		*n = 0;			/* loop, jrcxz, prefixed forms: no rel32 twin */
	return *n ? 0 : -ERANGE;
}

/* One instruction of the copy: a branch re-encoded, a RIP-relative operand adjusted. */
static int relocate_one(const cs_insn *in, uint64_t at, uint8_t *out, unsigned int *n,
			char *why, size_t cap)
{
	const cs_x86 *x = &in->detail->x86;

	for (uint8_t i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];
		if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
			uint64_t data = in->address + in->size + (uint64_t)op->mem.disp;
			int32_t disp;
			if (x->encoding.disp_size != 4 || !x86_rel32(at + in->size, data, &disp)) {
				snprintf(why, cap, "%s %s: its data is out of reach of the copy",
					 in->mnemonic, in->op_str);
				return -ERANGE;
			}
			memcpy(out, in->bytes, in->size);
			memcpy(out + x->encoding.disp_offset, &disp, 4);
			*n = in->size;
			return 0;
		}
	}
	return -ENOENT;	/* not RIP-relative */
}

static bool is_rel_branch(csh cs, const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	switch (in->id) {	/* capstone does not put these in the jump group */
	case X86_INS_LOOP: case X86_INS_LOOPE: case X86_INS_LOOPNE:
	case X86_INS_JRCXZ: case X86_INS_JECXZ: case X86_INS_JCXZ:
		return true;
	}
	if (!(cs_insn_group(cs, in, CS_GRP_JUMP) || cs_insn_group(cs, in, CS_GRP_CALL) ||
	      cs_insn_group(cs, in, CS_GRP_BRANCH_RELATIVE)))
		return false;
	return x->op_count == 1 && x->operands[0].type == X86_OP_IMM;
}

static int copy_insns(csh cs, const uint8_t *orig, unsigned int len, uint64_t from, uint64_t to,
		      struct lp_xol_copy *out, char *why, size_t cap)
{
	cs_insn *in = cs_malloc(cs);
	const uint8_t *code = orig;
	size_t size = len;
	uint64_t addr = from;
	unsigned int used = 0;
	int ret = 0;

	if (!in)
		return -ENOMEM;
	while (size && cs_disasm_iter(cs, &code, &size, &addr, in)) {
		uint8_t buf[16];
		unsigned int n = 0;
		uint64_t at = to + used;
		out->map[in->address - from] = (uint8_t)used;
		if (is_rel_branch(cs, in)) {
			ret = branch_rel32(in, at, (uint64_t)in->detail->x86.operands[0].imm, buf, &n);
			if (ret)
				snprintf(why, cap, "%s %s cannot be relocated", in->mnemonic, in->op_str);
		} else if ((ret = relocate_one(in, at, buf, &n, why, cap)) == -ENOENT) {
			memcpy(buf, in->bytes, in->size);
			n = in->size;
			ret = 0;
		}
		if (ret)
			break;
		if (used + n + X86_JMP_REL32_LEN > LP_XOL_CODE) {
			snprintf(why, cap, "the copy is longer than a slot");
			ret = -ERANGE;
			break;
		}
		memcpy(out->code + used, buf, n);
		used += n;
	}
	cs_free(in, 1);
	if (!ret && (size || addr != from + len)) {
		snprintf(why, cap, "cannot decode the instruction at +0x%" PRIx64, addr - from);
		ret = -ERANGE;
	}
	if (ret)
		return ret;
	out->map[len] = (uint8_t)used;
	unsigned int back = x86_encode_jmp_rel32(to + used, from + len, out->code + used);
	if (!back) {
		snprintf(why, cap, "the copy is out of reach of the site");
		return -ERANGE;
	}
	out->len = used + back;
	return 0;
}

int xol_relocate(const uint8_t *orig, unsigned int len, uint64_t from, uint64_t to,
		 struct lp_xol_copy *out, char *why, size_t why_cap)
{
	csh cs;

	memset(out, 0, sizeof(*out));
	memset(out->map, 0xff, sizeof(out->map));
	why[0] = 0;
	if (!len || len > LP_DISPLACED_MAX) {
		snprintf(why, why_cap, "no displaced instructions recorded");
		return -ERANGE;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		snprintf(why, why_cap, "capstone cannot open an x86-64 decoder");
		return -ENOMEM;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	int ret = copy_insns(cs, orig, len, from, to, out, why, why_cap);
	cs_close(&cs);
	return ret;
}

/* --- regions in the process ----------------------------------------------------------- */

struct slot_head {
	uint64_t site;
	uint8_t len;
	uint8_t pad[7];
};

struct region_head {
	char name[32];
	uint32_t version;
	uint32_t used;		/* slots taken, this header included */
};

static int mem_read(const struct lp_xol *x, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = pread(x->mem_fd, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int mem_write(const struct lp_xol *x, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(x->mem_fd, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static bool is_region(const struct lp_xol *x, uint64_t base, struct region_head *h)
{
	return !mem_read(x, base, h, sizeof(*h)) && !strcmp(h->name, LP_XOL_NAME) &&
	       h->version == 1 && h->used >= 1 && h->used <= LP_XOL_PAGE / LP_XOL_SLOT;
}

struct gap {
	uint64_t lo, hi;	/* free [lo, hi) */
};

struct walk {
	struct lp_xol *x;
	uint64_t near, prev_end, best_dist, best;
};

/* proc_maps_walk() callback: one mapping, and the gap before it. */
static int look_at_mapping(const struct lp_maps_line *m, void *arg)
{
	struct walk *w = arg;
	struct lp_xol *x = w->x;
	uint64_t lo = m->start;

	if (!x->scanned && m->end - lo == LP_XOL_PAGE && !m->inode && !strcmp(m->perms, "r-xp") &&
	    x->nregions < LP_ARRAY_SIZE(x->region)) {
		struct region_head h;
		if (is_region(x, lo, &h)) {
			x->used[x->nregions] = (uint8_t)h.used;
			x->region[x->nregions++] = lo;
		}
	}
	if (w->near && lo > w->prev_end + LP_XOL_PAGE) {
		/* The free pages between two mappings, one page of room left on each side. */
		struct gap g = { w->prev_end + LP_XOL_PAGE, lo - LP_XOL_PAGE };
		uint64_t near = w->near;
		uint64_t at = near < g.lo ? g.lo : near >= g.hi ? g.hi - LP_XOL_PAGE : near & ~0xfffULL;
		uint64_t dist = at > near ? at - near : near - at;
		if (g.hi - g.lo >= LP_XOL_PAGE && dist < w->best_dist && dist < REACH) {
			w->best_dist = dist;
			w->best = at;
		}
	}
	w->prev_end = m->end;
	return 0;
}

/*
 * Walk /proc/VIA/maps once: remember the regions an earlier livepatch left (an
 * anonymous r-x page that starts with the header), and, when @near is set, the free
 * page-aligned place closest to it within reach, in *@best.
 */
static int walk_maps(struct lp_xol *x, uint64_t near, uint64_t *best)
{
	struct walk w = { x, near, 0x10000, UINT64_MAX, 0 };
	int ret = proc_maps_walk(x->via, look_at_mapping, &w);

	*best = w.best;
	if (ret)
		return ret;
	x->scanned = true;
	return 0;
}

static bool within_reach(uint64_t region, uint64_t site)
{
	uint64_t d = region > site ? region - site : site - region;

	return d < REACH;
}

/* A new region near @site: mmap in the process, the header, then its name. */
static int create_region(struct lp_xol *x, uint64_t site, const struct lp_injector *inj,
			 struct lp_diag *d)
{
	uint64_t at;
	bool failed = false;
	int ret = walk_maps(x, site, &at);

	if (ret)
		return lp_fail(d, LP_EXIT_ABORTED, "cannot read /proc/%d/maps: %s", x->via,
			       strerror(-ret));
	if (x->nregions == LP_ARRAY_SIZE(x->region))
		return lp_fail(d, LP_EXIT_ABORTED, "process %d already holds %zu livepatch regions",
			       x->via, x->nregions);
	if (!at)
		return lp_fail(d, LP_EXIT_ABORTED, "no free address within 2 GiB of 0x%" PRIx64
			       " for the copy of the displaced instructions", site);
	long args[6] = { (long)at, LP_XOL_PAGE, PROT_READ | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0 };
	long got = inj->syscall(inj->arg, 9 /* mmap */, args, &failed);
	if (failed)
		return (int)got;
	if ((uint64_t)got != at) {
		if (got > 0 && (uint64_t)got < (uint64_t)-4096) {
			long un[6] = { got, LP_XOL_PAGE };
			(void)inj->syscall(inj->arg, 11 /* munmap */, un, &failed);
		}
		return lp_fail(d, LP_EXIT_ABORTED, "mmap in process %d for the out-of-line copy "
			       "failed: %s", x->via, got < 0 ? strerror((int)-got) : "wrong address");
	}
	struct region_head h = { .version = 1, .used = 1 };
	snprintf(h.name, sizeof(h.name), "%s", LP_XOL_NAME);
	if ((ret = mem_write(x, at, &h, sizeof(h))))
		return lp_fail(d, LP_EXIT_ABORTED, "cannot write the region at 0x%" PRIx64 ": %s", at,
			       strerror(-ret));
	/* The name shows in /proc/PID/maps as [anon:livepatch-xol], where the kernel has it. */
	long nm[6] = { PR_SET_VMA, PR_SET_VMA_ANON_NAME, (long)at, LP_XOL_PAGE, (long)at };
	(void)inj->syscall(inj->arg, 157 /* prctl */, nm, &failed);
	if (failed)
		return lp_fail(d, LP_EXIT_ABORTED, "the thread that made the region at 0x%" PRIx64
			       " went away", at);
	x->used[x->nregions] = 1;
	x->region[x->nregions++] = at;
	x->created++;
	return 0;
}

/* A slot of region @k that already holds the copy of @s, relocated for that slot. */
static uint64_t find_slot(const struct lp_xol *x, size_t k, const struct lp_site *s,
			  struct lp_xol_copy *c)
{
	uint8_t page[LP_XOL_PAGE];
	char why[160];

	if (mem_read(x, x->region[k], page, sizeof(page)))
		return 0;
	for (unsigned int i = 1; i < x->used[k]; i++) {
		const struct slot_head *sh = (const void *)(page + i * LP_XOL_SLOT);
		uint64_t code = x->region[k] + i * LP_XOL_SLOT + 16;
		if (sh->site != s->addr ||
		    xol_relocate(s->orig, s->displaced_len, s->addr, code, c, why, sizeof(why)))
			continue;
		if (sh->len == c->len && !memcmp(page + i * LP_XOL_SLOT + 16, c->code, c->len))
			return code;
	}
	return 0;
}

int xol_place(struct lp_xol *x, const struct lp_site *s, const struct lp_injector *inj,
	      uint64_t *to, struct lp_xol_copy *copy, struct lp_diag *d)
{
	char why[160];
	uint64_t unused;
	int ret;

	if (!x->scanned && (ret = walk_maps(x, 0, &unused)))
		return lp_fail(d, LP_EXIT_ABORTED, "cannot read /proc/%d/maps: %s", x->via,
			       strerror(-ret));
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < x->nregions; k++) {
			uint64_t slot = x->region[k] + (uint64_t)x->used[k] * LP_XOL_SLOT;
			if (!within_reach(x->region[k], s->addr))
				continue;
			if ((*to = find_slot(x, k, s, copy)))
				return 0;
			if (x->used[k] >= LP_XOL_PAGE / LP_XOL_SLOT)
				continue;
			if ((ret = xol_relocate(s->orig, s->displaced_len, s->addr, slot + 16, copy, why,
						sizeof(why))))
				return lp_fail(d, LP_EXIT_ABORTED, "the displaced instructions of %s cannot "
					       "run out of line: %s", s->func, why);
			struct slot_head sh = { .site = s->addr, .len = (uint8_t)copy->len };
			uint8_t buf[LP_XOL_SLOT] = { 0 };
			memcpy(buf, &sh, sizeof(sh));
			memcpy(buf + 16, copy->code, copy->len);
			uint32_t used = x->used[k] + 1u;
			/* The slot first, then the count that makes it visible to a later run. */
			if ((ret = mem_write(x, slot, buf, sizeof(buf))) ||
			    (ret = mem_write(x, x->region[k] + offsetof(struct region_head, used), &used,
					     sizeof(used))))
				return lp_fail(d, LP_EXIT_ABORTED, "cannot write the out-of-line copy at "
					       "0x%" PRIx64 ": %s", slot, strerror(-ret));
			x->used[k] = (uint8_t)used;
			*to = slot + 16;
			return 0;
		}
		if (pass == 0 && (ret = create_region(x, s->addr, inj, d)))
			return ret;
	}
	return lp_fail(d, LP_EXIT_INTERNAL, "no room for the out-of-line copy of %s", s->func);
}
