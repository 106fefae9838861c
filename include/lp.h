/* Definitions shared by every stage: error codes, the diagnostic sink, attributes. */
#ifndef LP_H
#define LP_H

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define LP_MUST_CHECK __attribute__((warn_unused_result))
#define LP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Exit codes of the command (docs/design.md §1). Library functions return 0 or -errno;
 * a failure that has one of these meanings returns -(LP_ERR_BASE + code), so
 * it can never be confused with an errno value.
 */
enum lp_exit {
	LP_EXIT_OK = 0,
	LP_EXIT_INTERNAL = 1,
	LP_EXIT_USAGE = 2,
	LP_EXIT_PROCESS = 3,
	LP_EXIT_SYMBOL = 4,
	LP_EXIT_SITE = 5,
	LP_EXIT_ABORTED = 6,
	LP_EXIT_VERIFY = 7,
};

#define LP_ERR_BASE 4096
#define LP_ERR(code) (-(LP_ERR_BASE + (code)))

/*
 * Where a stage explains a failure: one line, "what happened (what to do)".
 * The library never prints; cmd/ and the report stage decide how to show it.
 */
struct lp_diag {
	int code;		/* enum lp_exit of the first failure */
	char msg[1024];
};

/* Record a failure in @d (first one wins) and return LP_ERR of the code recorded there. */
int lp_fail(struct lp_diag *d, int code, const char *fmt, ...) LP_PRINTF(3, 4);

/* Map a library return value to the command's exit code. */
int lp_exit_code(int ret);

/* The moment @ms milliseconds from now on clock @clk (a deadline for a wait). */
static inline struct timespec lp_time_after(clockid_t clk, unsigned int ms)
{
	struct timespec t;

	clock_gettime(clk, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Milliseconds since @t0 on CLOCK_MONOTONIC. */
static inline double lp_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1e3 + (now.tv_nsec - t0->tv_nsec) / 1e6;
}

#endif
