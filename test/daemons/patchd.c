/* patchd: the daemon of `livepatch --load` (test/integration/load.bats). N workers
 * (--threads, default 4) call handle_request(p, n) with good and bad lengths (n <= 0,
 * n > 8192), then classify, pick and format_id, and check every result: it must be what
 * the old or the fixed version returns (patchd.h), else `wrong` counts it. Results only
 * a fix gives are counted per behaviour (rejected, fixed_classify, fixed_pick,
 * fixed_format), so a test sees the fix at work, not only a counter moving.
 *
 * What the patches of test/patches/ bind to, by kind:
 *   parse_header, requests_seen, bad_request_code  static: local binding (.symtab only)
 *   checksum      static here, static again in patchd_aux.c, exported by libpatchd.so:
 *                 ambiguous in the program, pinned to the library (LIVEPATCH_BIND)
 *   note_fixed_call, note_reject, note_count      exported (patchd-stripped: .dynsym)
 * Keys: calls_old (handle_request), calls_classify, calls_pick, calls_format_id (the old
 * functions' entries); calls_new, calls_new_v2 (note_fixed_call(1), (2): the patches);
 * calls_parse_header, requests_seen, lib_checksum_calls; notes_ok (note_reject saw the
 * right string), bss_min, bss_max (note_count); requests, accepted_bad (old result for
 * a bad n). */
#include "common.h"
#include "patchd.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From libpatchd.so: the same sum as the static checksum functions, counted there. */
extern counter_t lib_checksum_calls;

counter_t calls_old, calls_classify, calls_pick, calls_format_id;
counter_t calls_new, calls_new_v2, calls_parse_header, notes_ok;
counter_t requests, rejected, accepted_bad, fixed_classify, fixed_pick, fixed_format;
static counter_t requests_seen __attribute__((used));
/* Read by the static_var patch: a program's static data, reached through its .symtab. */
static volatile int bad_request_code __attribute__((used)) = PATCHD_EBAD;
static _Atomic unsigned long bss_min = ~0UL, bss_max;

/* noipa: no inlining, no clones (a clone is named parse_header.constprop.0), so the
 * symbols a patch binds to exist, under their names, with these bodies. */
__attribute__((noipa, used)) static int parse_header(const char *p, int n)
{
	count(&calls_parse_header);
	return patchd_header(p, n);
}

__attribute__((noipa, used)) static int checksum(const char *p, int n)
{
	return patchd_header(p, n);
}

__attribute__((noipa)) int handle_request(const char *p, int n)
{
	count(&calls_old);
	count(&requests_seen);
	return parse_header(p, n) + n;
}

/* Distinct operations per case, so that compilers make a jump table, not a lookup table. */
__attribute__((noipa)) int classify(int c, int x)
{
	count(&calls_classify);
	switch (c) {
	case 0: return x + 1;
	case 1: return x * 3;
	case 2: return x ^ 0x55;
	case 3: return x - 7;
	case 4: return x << 2;
	case 5: return x >> 1;
	case 6: return ~x;
	case 7: return x * x + 1;	/* the bug: the fix returns x * x */
	case 8: return x | 1;
	case 9: return x & 0xff;
	default: return -1;
	}
}

/* What the fixed classify returns (the old one differs in case 7 only). */
static int classify_want(int c, int x)
{
	static const int k[] = { 0, 0, 0x55, 7, 0, 0, 0, 0, 1, 0xff };

	switch (c) {
	case 0: return x + 1;
	case 1: return x * 3;
	case 2: return x ^ k[2];
	case 3: return x - k[3];
	case 4: return x * 4;
	case 5: return x / 2;
	case 6: return -x - 1;
	case 7: return x * x;
	case 8: return x | k[8];
	case 9: return x & k[9];
	default: return -1;
	}
}

static int op_add(int x) { return x + 5; }
static int op_sub(int x) { return x - 5; }
static int op_mul(int x) { return x * 5; }
static int op_div(int x) { return x / 5; }
static int op_mod(int x) { return x % 5; }
static int op_xor_bug(int x) { return x ^ 4; }	/* the bug: x ^ 5 */
static int op_shl(int x) { return x << 5; }
static int op_neg(int x) { return -x; }

static int (*const ops_old[8])(int) = { op_add, op_sub, op_mul, op_div,
					 op_mod, op_xor_bug, op_shl, op_neg };

__attribute__((noipa)) int pick(int i, int x)
{
	count(&calls_pick);
	return ops_old[i & 7](x);
}


__attribute__((noipa)) int format_id(int id, char *buf)
{
	count(&calls_format_id);
	return snprintf(buf, PATCHD_ID_LEN, "id-%d", id);
}

void note_fixed_call(int version)
{
	count(version == 2 ? &calls_new_v2 : &calls_new);
}

void note_reject(int n, const char *why)
{
	const char *want = n <= 0 ? "request too short" : "request too long";

	count(patchd_bad(n) && why && !strcmp(why, want) ? &notes_ok : &wrong);
}

void note_count(unsigned long v)
{
	unsigned long m = atomic_load(&bss_min);

	while (v < m && !atomic_compare_exchange_weak(&bss_min, &m, v))
		;
	m = atomic_load(&bss_max);
	while (v > m && !atomic_compare_exchange_weak(&bss_max, &m, v))
		;
}

static unsigned long get_bss_min(void)
{
	unsigned long m = atomic_load(&bss_min);

	return m == ~0UL ? 0 : m;
}

static unsigned long get_bss_max(void)
{
	return atomic_load(&bss_max);
}

static unsigned long get_requests_seen(void)
{
	return atomic_load(&requests_seen);
}

static unsigned long get_lib_checksum_calls(void)
{
	return atomic_load(&lib_checksum_calls);
}

/* Good lengths, and bad ones on both sides. */
static const int lengths[] = { 16, 100, 0, 4096, -1, 8192, 8193, 9000, 1, 77, -4096, 3 };
#define NLEN (int)(sizeof lengths / sizeof lengths[0])

static void check_request(const char *p, int n)
{
	int r = handle_request(p, n), old = patchd_old(p, n), fixed = patchd_fixed(p, n);

	count(&requests);
	if (r == fixed && r != old)
		count(&rejected);
	else if (r == old && r != fixed)
		count(&accepted_bad);
	else if (r != old)
		count(&wrong);
}

static void check_classify(int c, int x)
{
	int r = classify(c, x), fixed = classify_want(c, x);

	if (c == 7 && r == fixed)
		count(&fixed_classify);
	else if (r != fixed && !(c == 7 && r == x * x + 1))
		count(&wrong);
}

/* The old table is the reference but for ops[5]: x ^ 4 old, x ^ 5 fixed. */
static void check_pick(int i, int x)
{
	int r = pick(i, x);

	if ((i & 7) == 5 && r == (x ^ 5))
		count(&fixed_pick);
	else if (r != ops_old[i & 7](x))
		count(&wrong);
}

static void check_format_id(int id)
{
	char buf[PATCHD_ID_LEN], old[PATCHD_ID_LEN], fixed[PATCHD_ID_LEN];
	int r = format_id(id, buf), ro, rf;

	ro = snprintf(old, sizeof old, "id-%d", id);
	rf = snprintf(fixed, sizeof fixed, "id-%06d", id);
	if (r == rf && !strcmp(buf, fixed) && strcmp(fixed, old))
		count(&fixed_format);
	else if (r != ro || strcmp(buf, old))
		count(&wrong);
}

static void *worker(void *arg)
{
	/* 64 spare bytes: the old code reads at most 16 bytes past p whatever n says. */
	static char bufs[64][PATCHD_MAX + 64];
	char *buf = bufs[(intptr_t)arg & 63];
	unsigned k = (unsigned)(intptr_t)arg * 7919;

	for (int i = 0; i < PATCHD_MAX + 64; i++)
		buf[i] = (char)('a' + (i * 7 + (int)(intptr_t)arg) % 26);
	common_thread_started();
	while (!common_stopping()) {
		for (int j = 0; j < 64; j++, k++) {
			check_request(buf + (k & 31), lengths[k % NLEN]);
			check_classify((int)(k % 12), (int)(k & 0xfff));
			check_pick((int)(k >> 1), (int)(k & 0xffff));
			if (!(k & 7))
				check_format_id((int)(k % 100000));
		}
	}
	return NULL;
}

/*
 * --seccomp-kill NR: a seccomp filter that kills the whole process on system call NR,
 * installed in every thread once they run (TSYNC): a program whose filter forbids a
 * call it never makes itself, as systemd's SystemCallFilter= does.
 */
static long seccomp_kill_nr = -1;

static const struct option patchd_opts[] = {
	{ "seccomp-kill", required_argument, NULL, 256 },
	{ NULL, 0, NULL, 0 },
};

static int patchd_opt(int val, const char *arg)
{
	char *end;

	(void)val;
	seccomp_kill_nr = strtol(arg, &end, 10);
	return *end || seccomp_kill_nr < 0 ? -1 : 0;
}

static void install_seccomp(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)seccomp_kill_nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = f };

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)) {
		perror("patchd: seccomp");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	pthread_t *t;

	common_init(argc, argv, patchd_opts, patchd_opt,
		    "  --seccomp-kill NR  a seccomp filter that kills the process on system call NR\n", 4);
	status_add("calls_old", &calls_old);
	status_add("calls_new", &calls_new);
	status_add("calls_new_v2", &calls_new_v2);
	status_add("calls_classify", &calls_classify);
	status_add("calls_pick", &calls_pick);
	status_add("calls_format_id", &calls_format_id);
	status_add("calls_parse_header", &calls_parse_header);
	status_add_fn("requests_seen", get_requests_seen);
	status_add_fn("lib_checksum_calls", get_lib_checksum_calls);
	status_add("requests", &requests);
	status_add("rejected", &rejected);
	status_add("accepted_bad", &accepted_bad);
	status_add("fixed_classify", &fixed_classify);
	status_add("fixed_pick", &fixed_pick);
	status_add("fixed_format", &fixed_format);
	status_add("notes_ok", &notes_ok);
	status_add_fn("bss_min", get_bss_min);
	status_add_fn("bss_max", get_bss_max);
	if (opt.threads > 64)
		die("patchd: at most 64 threads");
	t = calloc(opt.threads ? opt.threads : 1, sizeof *t);
	if (!t)
		die("out of memory");
	for (int i = 0; i < opt.threads; i++)
		common_thread_create(&t[i], worker, (void *)(intptr_t)i);
	common_wait_started(opt.threads);
	if (seccomp_kill_nr >= 0)
		install_seccomp();
	common_run();
	join_workers(t, opt.threads);
	common_exit();
}
