/*
 * Fan-out: the per-thread /proc reads of a seize (a system call or two per thread,
 * 6-10 us each, most of a patch's time at 64 threads) shared with one helper thread,
 * so a second CPU halves them. The indices are handed out a few at a time from a
 * cursor tagged with the job's generation: a helper that wakes after its job was
 * finished (by the caller alone) claims nothing from the next one, so the caller
 * never waits for a helper that did not start.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include "fanout.h"

#define CHUNK 4

struct lp_fanout {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* a new job (gen moved) or quit */
	pthread_cond_t finished;	/* done reached n */
	uint32_t gen;
	bool quit;
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	size_t n;
	_Atomic uint64_t cursor;	/* gen << 32 | next index */
	_Atomic size_t done;		/* indices whose call returned */
};

static bool claim(struct lp_fanout *f, uint32_t gen, size_t n, size_t *i)
{
	uint64_t v = atomic_load(&f->cursor);

	for (;;) {
		if ((uint32_t)(v >> 32) != gen || (v & 0xffffffffu) >= n)
			return false;
		if (atomic_compare_exchange_weak(&f->cursor, &v, v + CHUNK)) {
			*i = v & 0xffffffffu;
			return true;
		}
	}
}

static void run_chunks(struct lp_fanout *f, uint32_t gen, size_t n, void (*fn)(void *, size_t),
		       void *ctx)
{
	size_t i;

	while (claim(f, gen, n, &i)) {
		size_t end = i + CHUNK < n ? i + CHUNK : n;
		for (size_t j = i; j < end; j++)
			fn(ctx, j);
		if (atomic_fetch_add(&f->done, end - i) + (end - i) == n) {
			pthread_mutex_lock(&f->mu);
			pthread_cond_broadcast(&f->finished);
			pthread_mutex_unlock(&f->mu);
		}
	}
}

static void *helper(void *arg)
{
	struct lp_fanout *f = arg;
	uint32_t seen = 0;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (f->gen == seen && !f->quit)
			pthread_cond_wait(&f->wake, &f->mu);
		if (f->quit)
			break;
		seen = f->gen;
		void (*fn)(void *, size_t) = f->fn;
		void *ctx = f->ctx;
		size_t n = f->n;
		pthread_mutex_unlock(&f->mu);
		run_chunks(f, seen, n, fn, ctx);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

struct lp_fanout *lp_fanout_start(void)
{
	struct lp_fanout *f = calloc(1, sizeof(*f));
	pthread_attr_t attr;
	sigset_t all, old;

	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->wake, NULL);
	pthread_cond_init(&f->finished, NULL);
	/* No signal for the helper: the tick and the cancel signals are the tracer's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int ret = pthread_create(&f->th, &attr, helper, f);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		pthread_cond_destroy(&f->finished);
		pthread_cond_destroy(&f->wake);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return NULL;
	}
	return f;
}

void lp_fanout_run(struct lp_fanout *f, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
	if (!f || n < LP_FANOUT_MIN || n > UINT32_MAX) {
		for (size_t i = 0; i < n; i++)
			fn(ctx, i);
		return;
	}
	pthread_mutex_lock(&f->mu);
	uint32_t gen = ++f->gen;
	f->fn = fn;
	f->ctx = ctx;
	f->n = n;
	atomic_store(&f->done, 0);
	atomic_store(&f->cursor, (uint64_t)gen << 32);
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->mu);
	run_chunks(f, gen, n, fn, ctx);
	if (atomic_load(&f->done) < n) {	/* the helper is finishing the chunks it took */
		pthread_mutex_lock(&f->mu);
		while (atomic_load(&f->done) < n)
			pthread_cond_wait(&f->finished, &f->mu);
		pthread_mutex_unlock(&f->mu);
	}
}

void lp_fanout_stop(struct lp_fanout *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->quit = true;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->th, NULL);
	pthread_cond_destroy(&f->finished);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
