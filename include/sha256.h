/*
 * SHA-256 (FIPS 180-4), for the patch object's identity in the loaded image's note
 * (docs/design.md §8): small, no library, no state between calls.
 */
#ifndef LP_SHA256_H
#define LP_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The digest of @len bytes at @data (with the CPU's SHA extensions where it has them). */
void lp_sha256(const void *data, size_t len, uint8_t out[32]);

/* The same digest in portable C only; and whether lp_sha256() uses the extensions. */
void lp_sha256_portable(const void *data, size_t len, uint8_t out[32]);
bool lp_sha256_accelerated(void);

/* @d as 64 lower-case hex digits and a NUL. */
void lp_sha256_hex(const uint8_t d[32], char out[65]);

#endif
