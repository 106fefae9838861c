/*
 * Helpers shared by the unit tests (linked into every test binary; not a test
 * file itself): where the fixtures are, ELF symbols and bytes read with libelf
 * independently of src/elfsym.c, and the fixture process.
 */
#ifndef U_UTIL_H
#define U_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <sys/types.h>
#include <cmocka.h>

/* Call first in main(): line-buffered stdout, so a sanitizer abort loses no TAP line. */
void u_init(void);

/*
 * Canonical path of the fixture file NAME ("fixture_prog", "libfixture.so"):
 * $U_FIXTURES/NAME, else <directory of this binary>/../unit/fixtures/NAME (the
 * plain and the ASan binaries share $(B)/unit/fixtures). Returns a static buffer
 * per slot (slot 0..3), so up to four paths can be held at once.
 */
const char *u_fixture(const char *name, int slot);

struct u_sym {
	uint64_t value, size;
	int type, bind;
};

/* NAME exactly as the ELF file PATH's .symtab spells it ("f_ver@@VER_2"); 0 or -1. */
int u_elf_sym(const char *path, const char *name, struct u_sym *out);

/* The bytes of function NAME in PATH (malloc'ed, size in out->size), or NULL. */
uint8_t *u_elf_func_bytes(const char *path, const char *name, struct u_sym *out);

/* Link-time address of the PT_LOAD that maps file offset 0 of PATH. */
uint64_t u_elf_first_vaddr(const char *path);

/*
 * Start PROG (a fixture path) as a child that dies with us (PR_SET_PDEATHSIG),
 * and wait (<= 5 s) until /proc/PID/maps shows WAIT_FOR (a path) and the child
 * is blocked in pause(), i.e. fully loaded. -1 on failure.
 */
pid_t u_start(const char *prog, const char *wait_for);

/* SIGKILL and reap a child started by u_start (no-op for pid <= 0). */
void u_stop(pid_t pid);

/* Start of the mapping of PATH at file offset 0 in PID's /proc/PID/maps, or 0. */
uint64_t u_map_base(pid_t pid, const char *path);

/* Wait (<= 5 s) until PID's /proc state letter is STATE; true when it is. */
bool u_wait_state(pid_t pid, char state);

/* Copy file SRC to DST (mode 0755); 0 or -1. */
int u_copy(const char *src, const char *dst);

/* cmocka: assert that string A contains NEEDLE, printing both when it does not. */
#define assert_contains(a, needle) u_assert_contains((a), (needle), __FILE__, __LINE__)
void u_assert_contains(const char *hay, const char *needle, const char *file, int line);

#endif
