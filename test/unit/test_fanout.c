/*
 * fanout: every index is handled exactly once, whether the helper takes part or not,
 * over many jobs in a row (a helper that wakes late must not touch the next job).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "fanout.h"

struct job {
	_Atomic unsigned int *count;	/* per index: calls seen */
	pthread_t caller;
	_Atomic size_t by_caller;
};

static void mark(void *ctx, size_t i)
{
	struct job *j = ctx;

	atomic_fetch_add(&j->count[i], 1);
	if (pthread_equal(pthread_self(), j->caller))
		atomic_fetch_add(&j->by_caller, 1);
}

/* Run one job of @n indices through @f; every index must have been called once. */
static size_t run_once(struct lp_fanout *f, size_t n)
{
	_Atomic unsigned int *count = calloc(n + 1, sizeof(*count));
	struct job j = { .count = count, .caller = pthread_self() };

	assert_non_null(count);
	lp_fanout_run(f, n, mark, &j);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(atomic_load(&count[i]), 1);
	free(count);
	return atomic_load(&j.by_caller);
}

static void test_small_jobs_stay_on_the_caller(void **state)
{
	struct lp_fanout *f = lp_fanout_start();

	(void)state;
	assert_non_null(f);
	for (size_t n = 0; n < LP_FANOUT_MIN; n++)
		assert_int_equal(run_once(f, n), n);
	lp_fanout_stop(f);
}

static void test_every_index_once(void **state)
{
	struct lp_fanout *f = lp_fanout_start();

	(void)state;
	assert_non_null(f);
	run_once(f, LP_FANOUT_MIN);
	run_once(f, 5000);
	lp_fanout_stop(f);
}

static void test_many_jobs_in_a_row(void **state)
{
	struct lp_fanout *f = lp_fanout_start();

	(void)state;
	assert_non_null(f);
	for (int k = 0; k < 2000; k++)
		run_once(f, LP_FANOUT_MIN + (size_t)(k % 97));
	lp_fanout_stop(f);
}

static void test_no_helper_works_alone(void **state)
{
	(void)state;
	assert_int_equal(run_once(NULL, 300), 300);
	lp_fanout_stop(NULL);
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_small_jobs_stay_on_the_caller),
		T(test_every_index_once),
		T(test_many_jobs_in_a_row),
		T(test_no_helper_works_alone),
	};

	u_init();
	return cmocka_run_group_tests_name("fanout", tests, NULL, NULL) ? 1 : 0;
}
