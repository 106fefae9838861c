/*
 * ELF files as a mapped object's (elfsym.c): program headers for the load bias, .symtab,
 * .dynsym and their version sections, section headers, the patch note. The input is
 * the file; it is "mapped" page by page at 0x400000, odd pages executable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE 0x400000ull
#define PAGES 16
#define NAMES 12	/* more than the lookups elfsym.c answers by scanning */

struct seen {
	char *names[NAMES];
	size_t n;
	uint64_t addrs[NAMES];
	size_t bytes;
};

static void one_symbol(const struct lp_symbol *s, void *arg)
{
	struct seen *w = arg;

	w->bytes += strlen(s->name) + (s->version ? strlen(s->version) : 0);
	if (w->n < NAMES && (w->names[w->n] = strdup(s->name)))
		w->addrs[w->n++] = s->addr + s->size / 2;
}

static void named(const struct lp_symbol *s, void *arg)
{
	one_symbol(s, arg);
}

static int exec_section(const char *name, uint64_t addr, const uint8_t *bytes, size_t len,
			void *arg)
{
	struct seen *w = arg;

	w->bytes += strlen(name) + (size_t)addr;
	for (size_t i = 0; i < len; i++)
		w->bytes += bytes[i];
	return 0;
}

static int alloc_section(const char *name, uint64_t addr, uint64_t size, uint64_t flags, void *arg)
{
	struct seen *w = arg;

	w->bytes += strlen(name) + (size_t)(addr + size + flags);
	return 0;
}

static void lookups(struct lp_object *obj, struct seen *w)
{
	struct lp_symbol s;
	uint8_t sha[32], buf[64];
	char name[64];
	size_t n = w->n;

	for (size_t i = 0; i < n; i++) {
		object_each_named(obj, w->names[i], named, w);
		if (!object_function_at(obj, w->addrs[i], &s))
			w->bytes += strlen(s.name);
	}
	object_each_named(obj, "no such symbol", named, w);
	(void)!object_function_at(obj, BASE + 0x1000, &s);
	(void)!object_each_exec_section(obj, exec_section, w);
	(void)!object_each_alloc_section(obj, alloc_section, w);
	(void)!object_read_at(obj, BASE + 0x10, buf, sizeof(buf));
	if (!object_patch_note(obj, sha, name, sizeof(name)))
		w->bytes += strlen(name) + sha[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_mapping maps[PAGES];
	struct lp_object obj;
	struct lp_proc p = { .objs = &obj, .nobjs = 1, .mem_fd = -1 };
	struct seen w = { .n = 0 };

	if (f_memfd(data, size) < 0)
		return 0;
	memset(&obj, 0, sizeof(obj));
	snprintf(obj.path, sizeof(obj.path), "/fuzz/libfuzz.so");
	obj.name = obj.path + 6;
	obj.pid = getpid();
	snprintf(obj.open_path, sizeof(obj.open_path), "%s", f_memfd_path());
	obj.patch = true;
	for (size_t i = 0; i < PAGES; i++)
		maps[i] = (struct lp_mapping){ .start = BASE + 0x1000 * i, .end = BASE + 0x1000 * (i + 1),
					       .offset = 0x1000 * i, .exec = i % 2 };
	obj.maps = maps;
	obj.nmaps = PAGES;
	if (!object_each_function(&obj, one_symbol, &w))
		lookups(&obj, &w);
	elfsym_release(&p);
	for (size_t i = 0; i < w.n; i++)
		free(w.names[i]);
	return 0;
}
