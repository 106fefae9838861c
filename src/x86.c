/* x86: encode, decode and emulate what livepatch writes (include/x86.h). Pure. */
#include <string.h>
#include "x86.h"

#define OP_JMP_REL32 0xe9
#define OP_CALL_REL32 0xe8
#define REL32_LEN 5		/* an opcode byte, then the rel32 */
#define JCC_REL32_LEN 6		/* 0f 8<cc>, then the rel32 */

static const uint8_t endbr64[X86_ENDBR64_LEN] = { 0xf3, 0x0f, 0x1e, 0xfa };
static const uint8_t jmp_rip[6] = { 0xff, 0x25, 0, 0, 0, 0 };	/* jmp qword ptr [rip + 0] */

bool x86_is_endbr64(const uint8_t *p, size_t avail)
{
	return avail >= X86_ENDBR64_LEN && !memcmp(p, endbr64, X86_ENDBR64_LEN);
}

bool x86_rel32(uint64_t next, uint64_t target, int32_t *rel)
{
	int64_t d = (int64_t)(target - next);

	if (d < INT32_MIN || d > INT32_MAX)
		return false;
	*rel = (int32_t)d;
	return true;
}

/* @op rel32 at @site to @target: its length, or 0 when out of reach. */
static unsigned int encode_rel32(uint8_t op, uint64_t site, uint64_t target, uint8_t *out)
{
	int32_t rel;

	if (!x86_rel32(site + REL32_LEN, target, &rel))
		return 0;
	out[0] = op;
	memcpy(out + 1, &rel, 4);
	return REL32_LEN;
}

unsigned int x86_encode_jmp_rel32(uint64_t site, uint64_t target, uint8_t *out)
{
	return encode_rel32(OP_JMP_REL32, site, target, out);
}

unsigned int x86_encode_call_rel32(uint64_t site, uint64_t target, uint8_t *out)
{
	return encode_rel32(OP_CALL_REL32, site, target, out);
}

unsigned int x86_encode_jcc_rel32(uint8_t cc, uint64_t at, uint64_t target, uint8_t *out)
{
	int32_t rel;

	if (cc > 0xf || !x86_rel32(at + JCC_REL32_LEN, target, &rel))
		return 0;
	out[0] = 0x0f;
	out[1] = (uint8_t)(0x80 + cc);
	memcpy(out + 2, &rel, 4);
	return JCC_REL32_LEN;
}

unsigned int x86_encode_jmp_abs64(uint64_t target, uint8_t *out)
{
	memcpy(out, jmp_rip, sizeof(jmp_rip));
	memcpy(out + sizeof(jmp_rip), &target, 8);
	return X86_JMP_ABS64_LEN;
}

unsigned int x86_encode_jmp(uint64_t site, uint64_t target, uint8_t *out)
{
	unsigned int n = x86_encode_jmp_rel32(site, target, out);

	return n ? n : x86_encode_jmp_abs64(target, out);
}

bool x86_decode(const uint8_t *p, size_t avail, uint64_t at, struct x86_branch *out)
{
	int32_t rel;

	*out = (struct x86_branch){ .kind = X86_OTHER };
	if (avail >= REL32_LEN && (p[0] == OP_JMP_REL32 || p[0] == OP_CALL_REL32)) {
		memcpy(&rel, p + 1, 4);
		out->kind = p[0] == OP_JMP_REL32 ? X86_JMP_REL32 : X86_CALL_REL32;
		out->len = REL32_LEN;
		out->target = at + REL32_LEN + (int64_t)rel;
	} else if (avail >= X86_JMP_ABS64_LEN && !memcmp(p, jmp_rip, sizeof(jmp_rip))) {
		*out = (struct x86_branch){ .kind = X86_JMP_ABS64, .len = X86_JMP_ABS64_LEN };
		memcpy(&out->target, p + sizeof(jmp_rip), 8);
	}
	return out->kind != X86_OTHER;
}

/* The branch at @p when it is a call (@call) or a jump (!@call): its length; else 0. */
static unsigned int decode_one(const uint8_t *p, size_t avail, uint64_t at, bool call,
			       uint64_t *target)
{
	struct x86_branch br;

	if (!x86_decode(p, avail, at, &br) || (br.kind == X86_CALL_REL32) != call)
		return 0;
	*target = br.target;
	return br.len;
}

unsigned int x86_decode_jmp(const uint8_t *p, size_t avail, uint64_t at, uint64_t *target)
{
	return decode_one(p, avail, at, false, target);
}

unsigned int x86_decode_call(const uint8_t *p, size_t avail, uint64_t at, uint64_t *target)
{
	return decode_one(p, avail, at, true, target);
}

struct lp_emulation x86_decode_emulation(const uint8_t *bytes, size_t len, uint64_t site)
{
	struct lp_emulation park = { .kind = LP_EMUL_PARK, .target = site };
	struct x86_branch br;

	/* A call that returns inside the site would run bytes the walk may not have written. */
	if (!x86_decode(bytes, len, site, &br) || (br.kind == X86_CALL_REL32 && br.len < len))
		return park;
	return (struct lp_emulation){ br.kind == X86_CALL_REL32 ? LP_EMUL_CALL : LP_EMUL_JMP,
				      br.target, br.len };
}

void x86_emulate_jmp(struct user_regs_struct *r, uint64_t target)
{
	r->orig_rax = (unsigned long long)-1;
	r->rip = target;
}

struct x86_push x86_emulate_push(struct user_regs_struct *r, uint64_t value)
{
	r->rsp -= 8;
	return (struct x86_push){ .addr = r->rsp, .value = value };
}

struct x86_push x86_emulate_call(struct user_regs_struct *r, uint64_t ret, uint64_t target)
{
	struct x86_push push = x86_emulate_push(r, ret);

	x86_emulate_jmp(r, target);
	return push;
}
