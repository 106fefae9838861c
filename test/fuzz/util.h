/*
 * Helpers shared by the fuzz harnesses (linked into each; not a harness itself).
 * A parser that reads a file or a descriptor gets the input through one memfd per
 * harness, rewritten for every input, so that no descriptor leaks between runs.
 */
#ifndef F_UTIL_H
#define F_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A memfd holding exactly @data, its offset at 0 (the same descriptor every call); -1 on error. */
int f_memfd(const uint8_t *data, size_t size);
/* "/proc/self/fd/N" of that memfd, for parsers that take a path. */
const char *f_memfd_path(void);
/* @data as a NUL-terminated string (a copy, stopped at the first NUL): free() it. */
char *f_string(const uint8_t *data, size_t size);
/* Send stdout to /dev/null: parsers that report errors there would flood the fuzzer's log. */
void f_quiet_stdout(void);

#endif
