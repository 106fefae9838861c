/*
 * link: the bytes every relocation type writes, at the place the image's own .symtab
 * names, computed here from the psABI formulas; veneers for calls out of reach; the
 * refusals that name -fPIC; the image as libelf and readelf read it; and the C patch
 * linked, mapped and run in this process (docs/design.md §8).
 */
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "util.h"
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "elfsym.h"
#include "link.h"
#include "patchobj.h"
#include "sha256.h"

#define REFUSED LP_ERR(LP_EXIT_SITE)
#define BASE 0x40000000ULL
#define GIB 0x40000000ULL

struct fx {
	struct lp_patchobj po;
	struct lp_link lk;
	struct lp_binding *b;
	struct lp_diag d;
};

/* Parse fixture NAME (read here: make's umask may leave it group-writable). */
static void fx_parse(struct fx *f, const char *name)
{
	char rel[128];
	uint8_t *buf;
	FILE *fp;
	long n;

	memset(f, 0, sizeof(*f));
	snprintf(rel, sizeof(rel), "patches/%s", name);
	fp = fopen(u_fixture(rel, 0), "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	assert_int_equal(patchobj_parse(&f->po, buf, (size_t)n, name, &f->d), 0);
	f->b = calloc(f->po.nsyms + 1, sizeof(*f->b));
	assert_non_null(f->b);
}

static void fx_open(struct fx *f, const char *name)
{
	fx_parse(f, name);
	assert_int_equal(link_prepare(&f->lk, &f->po, &f->d), 0);
}

static void fx_close(struct fx *f)
{
	link_free(&f->lk);
	patchobj_free(&f->po);
	free(f->b);
}

static size_t sym_index(const struct fx *f, const char *name)
{
	for (size_t i = 0; i < f->po.nsyms; i++)
		if (!strcmp(f->po.syms[i].name, name))
			return i;
	fail_msg("no symbol %s", name);
	return 0;
}

static void bind(struct fx *f, const char *name, uint64_t addr, bool func)
{
	size_t i = sym_index(f, name);

	f->b[i].bound = true;
	f->b[i].addr = addr;
	f->b[i].func = func;
}

/* Image offset of NAME, from the image's .symtab as libelf reads it. */
static uint64_t img_sym(const struct lp_link *lk, const char *name)
{
	Elf *e = elf_memory((char *)lk->image, lk->image_len);
	Elf_Scn *scn = NULL;
	uint64_t v = UINT64_MAX;

	assert_non_null(e);
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sizeof(Elf64_Sym); i++) {
			GElf_Sym s;
			gelf_getsym(d, (int)i, &s);
			if (!strcmp(elf_strptr(e, sh.sh_link, s.st_name), name))
				v = s.st_value;
		}
	}
	elf_end(e);
	if (v == UINT64_MAX)
		fail_msg("no symbol %s in the image", name);
	return v;
}

static uint32_t rd32(const struct lp_link *lk, uint64_t off)
{
	uint32_t v;

	assert_true(off + 4 <= lk->size);
	memcpy(&v, lk->image + off, 4);
	return v;
}

static uint64_t rd64(const struct lp_link *lk, uint64_t off)
{
	uint64_t v;

	assert_true(off + 8 <= lk->size);
	memcpy(&v, lk->image + off, 8);
	return v;
}

static void assert_in_segment(const struct lp_link *lk, int seg, uint64_t off)
{
	assert_true(off >= lk->seg[seg].off && off < lk->seg[seg].off + lk->seg[seg].size);
}

/* A GOT slot at ADDR: inside rodata, 8-aligned, holding WANT. */
static void assert_got_slot(const struct lp_link *lk, uint64_t addr, uint64_t want)
{
	uint64_t off = addr - lk->base;

	assert_in_segment(lk, 2, off);
	assert_int_equal(off % 8, 0);
	assert_int_equal(rd64(lk, off), want);
}

static void assert_opcode(const struct lp_link *lk, uint64_t off, const char *bytes, size_t n)
{
	assert_memory_equal(lk->image + off, bytes, n);
}

static unsigned int relcount(const struct lp_link *lk, uint32_t type)
{
	for (size_t i = 0; i < lk->nrelcount; i++)
		if (lk->relcount[i].type == type)
			return lk->relcount[i].n;
	return 0;
}

#define F_ADDR 0x50001230ULL	/* ext_func */
#define D_ADDR 0x48005670ULL	/* ext_data */

/* t_*: the relocations in code, field offsets from the instruction encodings. */
static void check_code_relocations(const struct lp_link *lk, uint64_t got)
{
	uint64_t o, P, G;

	o = img_sym(lk, "t_plt32");
	assert_opcode(lk, o, "\xe8", 1);
	assert_int_equal((int32_t)rd32(lk, o + 1), (int64_t)(F_ADDR - 4 - (BASE + o + 1)));
	o = img_sym(lk, "t_32s");
	assert_opcode(lk, o, "\x8b\x04\x25", 3);
	assert_int_equal(rd32(lk, o + 3), D_ADDR);
	o = img_sym(lk, "t_rex_gotpcrelx");
	assert_opcode(lk, o, "\x48\x8b\x05", 3);	/* still a GOT load: no relaxation */
	P = BASE + o + 3;
	G = P + 4 + (int64_t)(int32_t)rd32(lk, o + 3);
	assert_got_slot(lk, G, D_ADDR);
	o = img_sym(lk, "t_gotpcrelx");
	assert_opcode(lk, o, "\x8b\x05", 2);
	P = BASE + o + 2;
	assert_int_equal(P + 4 + (int64_t)(int32_t)rd32(lk, o + 2), G);	/* one slot per symbol */
	o = img_sym(lk, "t_gotpc32");
	assert_opcode(lk, o, "\x4c\x8d\x3d", 3);
	assert_int_equal(BASE + o + 3 + 4 + (int64_t)(int32_t)rd32(lk, o + 3), got);
	o = img_sym(lk, "t_gotpc64");
	assert_opcode(lk, o, "\x49\xbb", 2);
	assert_int_equal(rd64(lk, o + 2), got - (BASE + o));	/* GOT + 2 - P */
	o = img_sym(lk, "t_gotoff64");
	assert_opcode(lk, o, "\x48\xb8", 2);
	assert_int_equal(rd64(lk, o + 2), BASE + img_sym(lk, "local_obj") - got);
	o = img_sym(lk, "t_pc32");
	assert_opcode(lk, o, "\x8b\x05", 2);
	assert_int_equal((int32_t)rd32(lk, o + 2), (int64_t)(D_ADDR - 4 - (BASE + o + 2)));
}

/* d_*: the relocations in data, each field at its symbol. */
static void check_data_relocations(const struct lp_link *lk, bool gas)
{
	uint64_t o;

	o = img_sym(lk, "d_64");
	assert_int_equal(rd64(lk, o), D_ADDR + 5);
	o = img_sym(lk, "d_pc32");
	assert_int_equal((int32_t)rd32(lk, o), (int64_t)(D_ADDR - (BASE + o)));
	o = img_sym(lk, "d_32");
	assert_int_equal(rd32(lk, o), D_ADDR + 3);
	o = img_sym(lk, "d_pc64");
	assert_int_equal(rd64(lk, o), D_ADDR - (BASE + o));
	o = img_sym(lk, "d_gotpcrel");
	assert_got_slot(lk, BASE + o + (int64_t)(int32_t)rd32(lk, o), F_ADDR);
	o = img_sym(lk, "d_none");
	assert_int_equal(rd32(lk, o), 0x11223344);	/* R_X86_64_NONE writes nothing */
	if (gas) {
		o = img_sym(lk, "d_gotpcrel64");
		assert_got_slot(lk, BASE + o + rd64(lk, o), D_ADDR);
	}
	assert_int_equal(rd64(lk, img_sym(lk, "local_obj")), 7);
}

struct undef_seen {
	char names[8][32];
	int n;
};

static void note_undefined(const struct lp_psym *sym, size_t index, void *arg)
{
	struct undef_seen *u = arg;

	(void)index;
	if (u->n < 8)
		snprintf(u->names[u->n++], sizeof(u->names[0]), "%s", sym->name);
}

static void check_relocs_fixture(const char *name, bool gas)
{
	struct fx f;
	struct undef_seen u = { .n = 0 };

	fx_open(&f, name);
	link_each_undefined(&f.lk, note_undefined, &u);
	assert_int_equal(u.n, 2);	/* _GLOBAL_OFFSET_TABLE_ is the GOT, not bound */
	assert_string_equal(u.names[0], "ext_func");
	assert_string_equal(u.names[1], "ext_data");
	bind(&f, "ext_func", F_ADDR, true);
	bind(&f, "ext_data", D_ADDR, false);
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), 0);
	assert_int_equal(f.lk.base, BASE);
	check_code_relocations(&f.lk, BASE + f.lk.got_off);
	check_data_relocations(&f.lk, gas);
	/* The assembler emitted every type link.c handles (GOTPCREL64: gas only). */
	for (uint32_t t = 0; t < 64; t++)
		if (patchobj_rel_width(t) != UINT_MAX && (gas || t != R_X86_64_GOTPCREL64))
			assert_true(relcount(&f.lk, t) >= 1);
	assert_int_equal(relcount(&f.lk, R_X86_64_PLT32), 1);
	assert_int_equal(relcount(&f.lk, R_X86_64_PC32), 2);
	assert_int_equal(relcount(&f.lk, R_X86_64_GOTPCREL64), gas ? 1 : 0);
	assert_int_equal(relcount(&f.lk, R_X86_64_NONE), 1);
	fx_close(&f);
}

static void test_every_relocation_type_gas(void **state)
{
	(void)state;
	check_relocs_fixture("relocs.o", true);
}

/* clang's assembler names sections, not symbols, in some relocations: same bytes. */
static void test_every_relocation_type_clang(void **state)
{
	(void)state;
	check_relocs_fixture("relocs_clang.o", false);
}

/* A veneer at VADDR: jmp *slot(%rip), int3, int3; the slot holds TARGET. */
static void assert_veneer(const struct lp_link *lk, uint64_t vaddr, uint64_t target)
{
	uint64_t off = vaddr - lk->base;

	assert_in_segment(lk, 1, off);
	assert_opcode(lk, off, "\xff\x25", 2);
	assert_opcode(lk, off + 6, "\xcc\xcc", 2);
	assert_got_slot(lk, vaddr + 6 + (int64_t)(int32_t)rd32(lk, off + 2), target);
}

/* Calls bound 3 GiB away go through veneers; bound nearby, they go direct. */
static void test_far_calls_go_through_veneers(void **state)
{
	struct fx f;
	uint64_t far = BASE + 3 * GIB, o, v1, v2;

	(void)state;
	fx_open(&f, "veneer.o");
	bind(&f, "ext_func", far, false);	/* PLT32: a call whatever the binding says */
	bind(&f, "ext_fn2", far + 0x100, true);
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), 0);
	o = img_sym(&f.lk, "v_call");
	v1 = BASE + o + 1 + 4 + (int64_t)(int32_t)rd32(&f.lk, o + 1);
	assert_veneer(&f.lk, v1, far);
	o = img_sym(&f.lk, "v_pc32");
	v2 = BASE + o + 1 + 4 + (int64_t)(int32_t)rd32(&f.lk, o + 1);
	assert_veneer(&f.lk, v2, far + 0x100);
	assert_true(v1 != v2);
	assert_true(f.lk.via_veneer[sym_index(&f, "ext_func")]);
	assert_true(f.lk.via_veneer[sym_index(&f, "ext_fn2")]);
	/* The same object linked again next to its targets calls them directly. */
	assert_int_equal(link_apply(&f.lk, far - GIB, f.b, &f.d), 0);
	o = img_sym(&f.lk, "v_call");
	assert_int_equal((int32_t)rd32(&f.lk, o + 1), (int64_t)(far - 4 - (far - GIB + o + 1)));
	assert_false(f.lk.via_veneer[sym_index(&f, "ext_func")]);
	fx_close(&f);
}

/* Data 3 GiB away, referenced directly: refused, naming the symbol and -fPIC. */
static void test_far_data_reference_is_refused_with_fpic(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "far_data.o");
	bind(&f, "ext_data", BASE + 3 * GIB, false);
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), REFUSED);
	assert_contains(f.d.msg, "R_X86_64_PC32 reference to ext_data at .text+0x2");
	assert_contains(f.d.msg, "-fPIC");
	assert_null(f.lk.image);
	fx_close(&f);
}

/* An absolute 32-bit sign-extended address: fine below 2 GiB, refused above 4 GiB. */
static void test_abs32s_above_4gib_is_refused(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "abs32s.o");
	bind(&f, "ext_data", 0x7ffff000, false);
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), 0);
	assert_int_equal(rd32(&f.lk, img_sym(&f.lk, "abs") + 3), 0x7ffff000);
	bind(&f, "ext_data", 0x100001000ULL, false);
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), REFUSED);
	assert_contains(f.d.msg, "R_X86_64_32S reference to ext_data");
	assert_contains(f.d.msg, "-fPIC");
	fx_close(&f);
}

/* An unbound weak reference is 0 (+ addend); an unbound strong one is the caller's bug. */
static void test_unbound_weak_is_zero_and_unbound_strong_is_einval(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "weak.o");
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), 0);
	assert_int_equal(rd64(&f.lk, img_sym(&f.lk, "w")), 16);
	fx_close(&f);
	fx_open(&f, "tiny.o");
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), -EINVAL);
	fx_close(&f);
}

static void check_readelf_is_quiet(const struct lp_link *lk);

/* COMMON after bss in the data segment, aligned, zero; SHN_ABS as its value. */
static void test_common_and_absolute_symbols(void **state)
{
	struct fx f;
	uint64_t buf, ptrs;

	(void)state;
	fx_open(&f, "common.o");
	assert_int_equal(link_apply(&f.lk, BASE, f.b, &f.d), 0);
	buf = img_sym(&f.lk, "shared_buf");
	ptrs = img_sym(&f.lk, "ptrs");
	assert_in_segment(&f.lk, 3, buf);
	assert_in_segment(&f.lk, 3, buf + 63);
	assert_int_equal(buf % 32, 0);
	assert_true(buf >= img_sym(&f.lk, "zeros") + 24);	/* after bss */
	for (int i = 0; i < 64; i++)
		assert_int_equal(f.lk.image[buf + i], 0);
	assert_int_equal(rd64(&f.lk, ptrs), BASE + buf + 8);
	assert_int_equal(rd64(&f.lk, ptrs + 8), 0x123456);
	assert_int_equal(link_symbol_addr(&f.lk, f.b, sym_index(&f, "shared_buf")), BASE + buf);
	check_readelf_is_quiet(&f.lk);
	fx_close(&f);
}

/* An object whose sections are all empty: nothing to load, said so. */
static void test_empty_object_has_nothing_to_load(void **state)
{
	struct fx f;

	(void)state;
	fx_parse(&f, "empty.o");
	assert_int_equal(link_prepare(&f.lk, &f.po, &f.d), REFUSED);
	assert_contains(f.d.msg, "nothing to load");
	fx_close(&f);
}

int test_host_value = 1000;

__attribute__((noinline)) int test_host_add(int a, int b)
{
	return a + b;
}

/* The image's headers as libelf reads them: ET_DYN, PT_LOADs at p_vaddr == p_offset. */
static void check_headers(const struct fx *f)
{
	static const Elf64_Word flags[4] = { PF_R, PF_R | PF_X, PF_R, PF_R | PF_W };
	Elf *e = elf_memory((char *)f->lk.image, f->lk.image_len);
	GElf_Ehdr eh;
	size_t n, loads = 0;

	assert_non_null(e);
	assert_non_null(gelf_getehdr(e, &eh));
	assert_int_equal(eh.e_type, ET_DYN);
	assert_int_equal(eh.e_machine, EM_X86_64);
	assert_int_equal(elf_getphdrnum(e, &n), 0);
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		assert_non_null(gelf_getphdr(e, (int)i, &ph));
		if (ph.p_type == PT_NOTE) {
			const uint8_t *desc = f->lk.image + ph.p_offset + 12 + 12;
			uint8_t sum[32];
			lp_sha256(f->po.bytes, f->po.len, sum);
			assert_memory_equal(f->lk.image + ph.p_offset + 12, LP_NOTE_NAME, sizeof(LP_NOTE_NAME));
			assert_memory_equal(desc, sum, 32);
			assert_string_equal((const char *)desc + 32, f->po.name);
			continue;
		}
		assert_int_equal(ph.p_type, PT_LOAD);
		assert_int_equal(ph.p_vaddr, ph.p_offset);
		assert_int_equal(ph.p_offset % LP_LINK_PAGE, 0);
		assert_int_equal(ph.p_filesz, ph.p_memsz);
		assert_int_equal(ph.p_flags, flags[loads]);
		assert_true(ph.p_offset + ph.p_filesz <= f->lk.size);
		loads++;
	}
	assert_int_equal(loads, 4);
	elf_end(e);
}

/* readelf -aW prints no warning and no error about the image. */
static void check_readelf_is_quiet(const struct lp_link *lk)
{
	char path[] = "/tmp/lp-link-XXXXXX", cmd[128], out[512] = "";
	int fd = mkstemp(path);
	FILE *p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, lk->image, lk->image_len), (ssize_t)lk->image_len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "readelf -aW %s 2>&1 >/dev/null", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	pclose(p);
	unlink(path);
	out[n] = 0;
	assert_string_equal(out, "");
}

struct seen {
	uint64_t addr;
	int exec_sections;
	bool classify_text;
	uint64_t want;
};

static void note_symbol(const struct lp_symbol *s, void *arg)
{
	((struct seen *)arg)->addr = s->addr;
}

static int note_exec(const char *name, uint64_t addr, const uint8_t *bytes, size_t len, void *arg)
{
	struct seen *w = arg;

	(void)bytes;
	(void)len;
	w->exec_sections++;
	if (!strcmp(name, ".text.patch_classify") && addr == w->want)
		w->classify_text = true;
	return 0;
}

/*
 * src/elfsym.c reads the image written to a file and mapped at lk->base, as it will
 * read the process's memfd: its bias is the base, its symbols and code are found.
 */
static void check_elfsym_reads_image(const struct lp_link *lk)
{
	char path[] = "/tmp/lp-link-XXXXXX";
	int fd = mkstemp(path);
	struct stat sb;
	struct lp_mapping map = { .start = lk->base, .end = lk->base + lk->size, .offset = 0 };
	struct lp_object *obj = calloc(1, sizeof(*obj));
	struct lp_proc proc = { .objs = obj, .nobjs = 1 };
	struct seen w = { .want = lk->base + img_sym(lk, "patch_classify") };

	assert_true(fd >= 0 && obj);
	assert_int_equal(write(fd, lk->image, lk->image_len), (ssize_t)lk->image_len);
	assert_int_equal(fstat(fd, &sb), 0);
	close(fd);
	snprintf(obj->path, sizeof(obj->path), "%s", path);
	snprintf(obj->open_path, sizeof(obj->open_path), "%s", path);
	obj->name = strrchr(obj->path, '/') + 1;
	obj->pid = getpid();
	obj->dev = ((uint64_t)major(sb.st_dev) << 32) | minor(sb.st_dev);
	obj->inode = sb.st_ino;
	obj->maps = &map;
	obj->nmaps = 1;
	object_each_named(obj, "patch_classify", note_symbol, &w);
	assert_int_equal(obj->elf_error, 0);
	assert_int_equal(w.addr, w.want);
	assert_int_equal(obj->bias, lk->base);
	assert_int_equal(object_each_exec_section(obj, note_exec, &w), 0);
	assert_true(w.classify_text);
	elfsym_release(&proc);
	free(obj);
	unlink(path);
}

/* Map the image at lk->base with each segment's protection, as --load will. */
static void map_image(const struct lp_link *lk)
{
	memcpy((void *)lk->base, lk->image, lk->size);
	for (int i = 0; i < 4; i++)
		if (lk->seg[i].size)
			assert_int_equal(mprotect((void *)(lk->base + lk->seg[i].off),
						  lk->seg[i].size, lk->seg[i].prot), 0);
}

static void run_patch(const struct lp_link *lk)
{
	int (*classify)(int, int) = (void *)(lk->base + img_sym(lk, "patch_classify"));
	const char *(*name)(int) = (void *)(lk->base + img_sym(lk, "patch_name"));
	int (*op)(int, int) = (void *)(lk->base + img_sym(lk, "patch_op"));
	int (*host)(int) = (void *)(lk->base + img_sym(lk, "patch_host"));
	int (*calls)(void) = (void *)(lk->base + img_sym(lk, "patch_calls"));
	static const int want[8] = { 100, 297, 92, 396, 99 ^ 0x55, 33, 4, -99 };

	for (int x = 0; x < 8; x++)
		assert_int_equal(classify(x, 99), want[x]);
	assert_int_equal(classify(8, 99), 0);
	assert_string_equal(name(3), "three");
	assert_string_equal(name(9), "many");
	assert_int_equal(op(0, 7), 14);
	assert_int_equal(op(1, 7), 49);
	assert_int_equal(op(2, 7), -7);
	assert_int_equal(host(3), 3 + 1000 + (3 << 2));
	assert_int_equal(calls(), 6);
}

/* The C patch: linked where mmap puts it, checked as an ELF file, then run. */
static void check_c_patch(const char *fixture)
{
	struct fx f;
	void *at;

	fx_open(&f, fixture);
	at = mmap(NULL, f.lk.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(at != MAP_FAILED);
	bind(&f, "host_add", (uint64_t)(uintptr_t)test_host_add, true);
	bind(&f, "host_value", (uint64_t)(uintptr_t)&test_host_value, false);
	assert_int_equal(link_apply(&f.lk, (uint64_t)(uintptr_t)at, f.b, &f.d), 0);
	check_headers(&f);
	check_readelf_is_quiet(&f.lk);
	check_elfsym_reads_image(&f.lk);
	assert_in_segment(&f.lk, 2, img_sym(&f.lk, "ops"));	/* .data.rel.ro: read-only */
	assert_in_segment(&f.lk, 1, img_sym(&f.lk, "patch_classify"));
	map_image(&f.lk);
	run_patch(&f.lk);
	munmap(at, f.lk.size);
	fx_close(&f);
}

static void test_c_patch_from_gcc_links_and_runs(void **state)
{
	(void)state;
	check_c_patch("patch.o");
}

static void test_c_patch_from_clang_links_and_runs(void **state)
{
	(void)state;
	check_c_patch("patch_clang.o");
}

/* CPU time of one link of @f, in ms: the machine may be shared, the CPU time is ours. */
static double time_link(struct fx *f)
{
	struct timespec t0, t1;

	link_free(&f->lk);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	assert_int_equal(link_prepare(&f->lk, &f->po, &f->d), 0);
	assert_int_equal(link_apply(&f->lk, BASE, f->b, &f->d), 0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* 1 MiB of code and 175,000 relocations link, and every one is counted. */
static void test_large_patch_links(void **state)
{
	struct fx f;
	double ms = 1e9;

	(void)state;
	fx_parse(&f, "big.o");
	bind(&f, "ext_func", BASE + 5 * GIB, true);
	bind(&f, "ext_data", BASE + 6 * GIB, false);
	for (int i = 0; i < 5; i++) {
		double t = time_link(&f);
		ms = t < ms ? t : ms;
	}
	print_message("link of 1 MiB: %.2f ms of CPU (best of 5)\n", ms);
	assert_int_equal(relcount(&f.lk, R_X86_64_PLT32), 87382);
	assert_int_equal(relcount(&f.lk, R_X86_64_REX_GOTPCRELX), 87382);
	assert_true(f.lk.via_veneer[sym_index(&f, "ext_func")]);
	/* Its speed is a row of make bench (docs/design.md §7: no timing asserts here). */
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_relocation_type_gas),
		cmocka_unit_test(test_every_relocation_type_clang),
		cmocka_unit_test(test_far_calls_go_through_veneers),
		cmocka_unit_test(test_far_data_reference_is_refused_with_fpic),
		cmocka_unit_test(test_abs32s_above_4gib_is_refused),
		cmocka_unit_test(test_unbound_weak_is_zero_and_unbound_strong_is_einval),
		cmocka_unit_test(test_common_and_absolute_symbols),
		cmocka_unit_test(test_empty_object_has_nothing_to_load),
		cmocka_unit_test(test_c_patch_from_gcc_links_and_runs),
		cmocka_unit_test(test_c_patch_from_clang_links_and_runs),
		cmocka_unit_test(test_large_patch_links),
	};

	u_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
