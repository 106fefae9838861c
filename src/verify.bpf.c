// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel-side evidence for --verify: SIGTRAPs generated and delivered at our
 * sites in the target process, and hits on two uprobes (G's entry and F's
 * first instruction after the displaced bytes), all filtered by tgid.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define SIGTRAP 5
#define SI_KERNEL 0x80

const volatile __u32 target_tgid = 0;

/* Site addresses (the byte our int3 replaces); value unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} sites SEC(".maps");

/* Threads that were inside the old body when it was patched: tid -> passes left (1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} mid SEC(".maps");

__u64 traps_generated, traps_delivered, target_hits, old_hits, old_hits_mid;

/* A SIGTRAP from one of our int3s: SI_KERNEL, and the thread's PC is just past a site. */
static bool our_trap(struct kernel_siginfo *info)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(cur);
	__u64 site = BPF_CORE_READ(regs, ip) - 1;

	if (BPF_CORE_READ(info, si_code) != SI_KERNEL)
		return false;
	return bpf_map_lookup_elem(&sites, &site) != NULL;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(on_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	/* int3 raises SIGTRAP in the trapping thread's own context, so current is the thread. */
	if (sig != SIGTRAP || !info || BPF_CORE_READ(task, tgid) != target_tgid ||
	    (bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	if (our_trap(info))
		__sync_fetch_and_add(&traps_generated, 1);
	return 0;
}

/* Fires only for a signal that reaches the program: one the tracer cancels never gets here. */
SEC("tp_btf/signal_deliver")
int BPF_PROG(on_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	if (sig != SIGTRAP || !info || (bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	if (our_trap(info))
		__sync_fetch_and_add(&traps_delivered, 1);
	return 0;
}

SEC("uprobe")
int on_target(struct pt_regs *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&target_hits, 1);
	return 0;
}

SEC("uprobe")
int on_old(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if ((id >> 32) != target_tgid)
		return 0;
	__u8 *left = bpf_map_lookup_elem(&mid, &tid);
	if (left && *left) {
		*left = 0;	/* one pass: finishing the call it was in; only this thread writes it */
		__sync_fetch_and_add(&old_hits_mid, 1);
	} else {
		__sync_fetch_and_add(&old_hits, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
