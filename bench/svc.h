/* Wire format of the bench service (bench/svcd.c) and its load client (bench/loadc.c).
 * A request is {seq, x}; the answer is {seq, y} with y = svc_mix(x) ^ 1 from svc_handle or
 * svc_mix(x) ^ 2 from svc_handle_v2 (the function livepatch redirects it to), so the client
 * checks every answer and tells which version produced it. */
#ifndef LP_BENCH_SVC_H
#define LP_BENCH_SVC_H

#include <stdint.h>

struct svc_msg {
	uint64_t seq;
	uint64_t val;
};

/* A little work per request (about 100 ns), the same on both sides. */
static inline uint64_t svc_mix(uint64_t x)
{
	for (int i = 0; i < 32; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

#endif
