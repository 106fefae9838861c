/* callersd: compute() reached five ways, so a test sees which callers a patch moves.
 *   caller_a, caller_b: direct `call compute` (call sites: --callsites rewrites them)
 *   caller_reg:         through a function pointer held in a register (not findable)
 *   caller_mem:         `call *compute_slot(%rip)` (through memory: listed, left alone)
 *   caller_tail:        `jmp compute` (a tail call: listed, left alone)
 * Status: <caller>_old / <caller>_new count results of compute / compute_v2, plus wrong. */
#include <stdint.h>
#include <stdlib.h>
#include "common.h"

int caller_tail(int x);
int caller_mem(int x);

static counter_t a_old, a_new, b_old, b_new, reg_old, reg_new, mem_old, mem_new, tail_old, tail_new;

static void tally(int x, int r, counter_t *old, counter_t *new)
{
	if (r == x * 2 + 1)
		count(old);
	else if (r == x * 3 + 7)
		count(new);
	else
		count(&wrong);
}

/* The empty asm keeps the result live after the call, so these stay calls, not tail jumps. */
__attribute__((noipa, noinline)) static int caller_a(int x)
{
	int r = compute(x);
	__asm__ volatile("" : "+r"(r));
	return r;
}

__attribute__((noipa, noinline)) static int caller_b(int x)
{
	int r = compute(x);
	__asm__ volatile("" : "+r"(r));
	return r;
}

int (*volatile compute_ptr)(int) = compute;

static void *worker(void *arg)
{
	int x = (int)(intptr_t)arg;

	common_thread_started();
	while (!common_stopping()) {
		for (int k = 0; k < 64; k++, x = (x + 1) & 0xffff) {
			tally(x, caller_a(x), &a_old, &a_new);
			tally(x, caller_b(x), &b_old, &b_new);
			tally(x, compute_ptr(x), &reg_old, &reg_new);
			tally(x, caller_mem(x), &mem_old, &mem_new);
			tally(x, caller_tail(x), &tail_old, &tail_new);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t *t;

	common_init(argc, argv, NULL, NULL, "", 4);
	status_add("a_old", &a_old);
	status_add("a_new", &a_new);
	status_add("b_old", &b_old);
	status_add("b_new", &b_new);
	status_add("reg_old", &reg_old);
	status_add("reg_new", &reg_new);
	status_add("mem_old", &mem_old);
	status_add("mem_new", &mem_new);
	status_add("tail_old", &tail_old);
	status_add("tail_new", &tail_new);
	t = calloc(opt.threads, sizeof(*t));
	if (!t)
		die("out of memory");
	for (int i = 0; i < opt.threads; i++)
		common_thread_create(&t[i], worker, (void *)(intptr_t)i);
	common_wait_started(opt.threads);
	common_run();
	join_workers(t, opt.threads);
	common_exit();
}
