/*
 * Seccomp: a thread's filters, read back and run on an injected call before it is
 * made (seccomp.h). The interpreter covers classic BPF as the kernel accepts it for
 * seccomp: loads from struct seccomp_data, the scratch memory, ALU, jumps, returns.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <string.h>
#include "proc.h"
#include "ptrace_ops.h"
#include "seccomp.h"

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_RET_LOG
#define SECCOMP_RET_LOG 0x7ffc0000U
#endif
#ifndef SECCOMP_RET_ACTION_FULL
#define SECCOMP_RET_ACTION_FULL 0xffff0000U
#endif

/*
 * The 32-bit word at byte @off of struct seccomp_data for the call; false past its end.
 * @off is the filter's k, any 32-bit value: off + 4 would wrap to 0 for 0xfffffffc.
 */
static bool data_word(const struct seccomp_data *d, uint32_t off, uint32_t *out)
{
	if (off % 4 || off > sizeof(*d) - 4)
		return false;
	memcpy(out, (const uint8_t *)d + off, 4);
	return true;
}

static bool alu(uint16_t op, uint32_t *a, uint32_t v)
{
	switch (op) {
	case BPF_ADD: *a += v; break;
	case BPF_SUB: *a -= v; break;
	case BPF_MUL: *a *= v; break;
	case BPF_DIV: if (!v) return false; *a /= v; break;
	case BPF_MOD: if (!v) return false; *a %= v; break;
	case BPF_AND: *a &= v; break;
	case BPF_OR: *a |= v; break;
	case BPF_XOR: *a ^= v; break;
	case BPF_LSH: *a = v < 32 ? *a << v : 0; break;
	case BPF_RSH: *a = v < 32 ? *a >> v : 0; break;
	case BPF_NEG: *a = -*a; break;
	default: return false;
	}
	return true;
}

static bool jump(uint16_t op, uint32_t a, uint32_t v, bool *taken)
{
	switch (op) {
	case BPF_JEQ: *taken = a == v; break;
	case BPF_JGT: *taken = a > v; break;
	case BPF_JGE: *taken = a >= v; break;
	case BPF_JSET: *taken = (a & v) != 0; break;
	default: return false;
	}
	return true;
}

uint32_t seccomp_run(const struct sock_filter *prog, size_t n, long nr, const long args[6],
		     uint64_t ip)
{
	struct seccomp_data d = { .nr = (int)nr, .arch = AUDIT_ARCH_X86_64, .instruction_pointer = ip };
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };

	for (int i = 0; i < 6; i++)
		d.args[i] = (uint64_t)args[i];
	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *f = &prog[pc];
		uint32_t src = BPF_SRC(f->code) == BPF_X ? x : f->k;
		bool taken;
		switch (BPF_CLASS(f->code)) {
		case BPF_LD:
			if (BPF_MODE(f->code) == BPF_ABS && BPF_SIZE(f->code) == BPF_W) {
				if (!data_word(&d, f->k, &a))
					return SECCOMP_RET_KILL_PROCESS;
			} else if (BPF_MODE(f->code) == BPF_IMM) {
				a = f->k;
			} else if (BPF_MODE(f->code) == BPF_MEM && f->k < BPF_MEMWORDS) {
				a = mem[f->k];
			} else if (BPF_MODE(f->code) == BPF_LEN) {
				a = sizeof(d);
			} else {
				return SECCOMP_RET_KILL_PROCESS;
			}
			break;
		case BPF_LDX:
			if (BPF_MODE(f->code) == BPF_IMM)
				x = f->k;
			else if (BPF_MODE(f->code) == BPF_MEM && f->k < BPF_MEMWORDS)
				x = mem[f->k];
			else if (BPF_MODE(f->code) == BPF_LEN)
				x = sizeof(d);
			else
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_ST:
		case BPF_STX:
			if (f->k >= BPF_MEMWORDS)
				return SECCOMP_RET_KILL_PROCESS;
			mem[f->k] = BPF_CLASS(f->code) == BPF_ST ? a : x;
			break;
		case BPF_ALU:
			if (!alu(BPF_OP(f->code), &a, src))
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_JMP:
			if (BPF_OP(f->code) == BPF_JA) {
				pc += f->k;
				break;
			}
			if (!jump(BPF_OP(f->code), a, src, &taken))
				return SECCOMP_RET_KILL_PROCESS;
			pc += taken ? f->jt : f->jf;
			break;
		case BPF_RET:
			return BPF_RVAL(f->code) == BPF_A ? a : f->k;
		case BPF_MISC:
			if (BPF_MISCOP(f->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		default:
			return SECCOMP_RET_KILL_PROCESS;
		}
	}
	return SECCOMP_RET_KILL_PROCESS;	/* ran off the end: the kernel refuses such a filter */
}

uint32_t seccomp_combine(uint32_t a, uint32_t b)
{
	/* The kernel compares the actions as signed: KILL_PROCESS lowest, ALLOW highest. */
	return (int32_t)(a & SECCOMP_RET_ACTION_FULL) <= (int32_t)(b & SECCOMP_RET_ACTION_FULL) ? a : b;
}

bool seccomp_runs(uint32_t action)
{
	uint32_t act = action & SECCOMP_RET_ACTION_FULL;

	return act == SECCOMP_RET_ALLOW || act == SECCOMP_RET_LOG;
}

const char *seccomp_action_name(uint32_t action)
{
	switch (action & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_KILL_PROCESS: return "KILL_PROCESS";
	case SECCOMP_RET_KILL_THREAD: return "KILL_THREAD";
	case SECCOMP_RET_TRAP: return "TRAP";
	case SECCOMP_RET_ERRNO: return "ERRNO";
	case SECCOMP_RET_USER_NOTIF: return "USER_NOTIF";
	case SECCOMP_RET_TRACE: return "TRACE";
	case SECCOMP_RET_LOG: return "LOG";
	case SECCOMP_RET_ALLOW: return "ALLOW";
	default: return "unknown";
	}
}

int64_t seccomp_check(pid_t tid, long nr, const long args[6], uint64_t ip)
{
	static struct sock_filter prog[BPF_MAXINSNS];
	uint32_t action = SECCOMP_RET_ALLOW;

	long mode = proc_status_field(tid, "Seccomp");

	if (mode == 1)		/* strict: read, write, exit and sigreturn only */
		return SECCOMP_RET_KILL_THREAD;
	if (mode != 2)
		return SECCOMP_RET_ALLOW;
	for (unsigned long i = 0;; i++) {
		long n = pt_seccomp_filter(tid, i, prog);
		if (n == -ENOENT)
			break;
		if (n < 0 || n > BPF_MAXINSNS)
			return n < 0 ? n : -E2BIG;
		action = seccomp_combine(action, seccomp_run(prog, (size_t)n, nr, args, ip));
	}
	return action;
}
