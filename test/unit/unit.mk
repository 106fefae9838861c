# Unit tests (cmocka), included by the top-level Makefile. `make unit-build` builds:
#   $(B)/unit/test_*       one binary per test/unit/test_*.c, linked with $(LIB_OBJ)
#   $(B)/unit-asan/test_*  the same under ASan/UBSan ($(SAN)), linked with $(ASAN_OBJ)
#   $(B)/unit/fixtures/    the programs the tests read and run (from test/unit/fixtures/)
# Run them with: test/unit/run.sh $(B)/unit   (and $(B)/unit-asan).
# Uses only B, CC, CFLAGS, PKG_CFLAGS, PKG_LIBS, LIB_OBJ, ASAN_OBJ and SAN from the top.

U_DIR    := test/unit
U_FDIR   := $(U_DIR)/fixtures
U_SRC    := $(sort $(wildcard $(U_DIR)/test_*.c))
U_NAMES  := $(U_SRC:$(U_DIR)/%.c=%)
U_OUT    := $(B)/unit
U_AOUT   := $(B)/unit-asan
U_FIX    := $(U_OUT)/fixtures
U_HDR    := $(wildcard $(U_DIR)/*.h) $(wildcard include/*.h) $(U_DIR)/unit.mk
U_LIBS   := -lcmocka $(PKG_LIBS)
U_BINS   := $(U_NAMES:%=$(U_OUT)/%)
U_ABINS  := $(U_NAMES:%=$(U_AOUT)/%)

# Fixtures: a PIE program + a shared library with versioned symbols; and in
# stripped/ a copy of both whose library has no .symtab (same addresses, so the
# tests take the expected ones from the unstripped file; names and versions then
# come from .dynsym, .gnu.version and .gnu.version_d). sleep32: the i386 test daemon's
# file, read (never run) by the "not an x86-64 program" test, which so passes on a
# kernel without 32-bit emulation.
U_FCFLAGS := -O2 -g -fcf-protection=full
U_FIXTURES := $(U_FIX)/fixture_prog $(U_FIX)/libfixture.so \
              $(U_FIX)/stripped/fixture_prog $(U_FIX)/stripped/libfixture.so $(U_FIX)/sleep32
U_FDEPS  := $(U_FDIR)/shapes.S $(U_FDIR)/fixture_prog.c $(U_DIR)/unit.mk

# Patch objects for --load (test_patchobj.c, test_link.c): each .S assembled by gas, a
# few by clang's assembler too (it picks other symbols for the same relocations), the
# C patch compiled by both as a user would build it (and with -flto, to refuse), and
# one ELF32 object to refuse.
U_PDIR   := $(U_FDIR)/patches
U_PFIX   := $(U_FIX)/patches
U_PATCH_S := $(sort $(wildcard $(U_PDIR)/*.S))
U_PATCHES := $(U_PATCH_S:$(U_PDIR)/%.S=$(U_PFIX)/%.o) $(U_PFIX)/relocs_clang.o \
             $(U_PFIX)/patch.o $(U_PFIX)/patch_clang.o $(U_PFIX)/tiny32.o \
             $(U_PFIX)/lto_gcc.o $(U_PFIX)/lto_clang.o
U_PCFLAGS := -O2 -fPIC -ffunction-sections -fdata-sections
U_FIXTURES += $(U_PATCHES)

.PHONY: unit-build
unit-build: $(U_BINS) $(U_ABINS) $(U_FIXTURES)

$(U_OUT)/obj $(U_AOUT)/obj $(U_FIX) $(U_FIX)/stripped:
	@mkdir -p $@

$(U_OUT)/obj/%.o: $(U_DIR)/%.c $(U_HDR) | $(U_OUT)/obj
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(U_AOUT)/obj/%.o: $(U_DIR)/%.c $(U_HDR) | $(U_AOUT)/obj
	$(CC) $(CFLAGS) $(SAN) $(PKG_CFLAGS) -c -o $@ $<

$(U_BINS): $(U_OUT)/%: $(U_OUT)/obj/%.o $(U_OUT)/obj/util.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(U_LIBS)

$(U_ABINS): $(U_AOUT)/%: $(U_AOUT)/obj/%.o $(U_AOUT)/obj/util.o $(ASAN_OBJ)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(U_LIBS)

$(U_FIX)/libfixture.so: $(U_FDIR)/libfixture.S $(U_FDIR)/libfixture.map $(U_DIR)/unit.mk | $(U_FIX)
	$(CC) $(U_FCFLAGS) -fPIC -shared -Wl,-soname,libfixture.so \
		-Wl,--version-script=$(U_FDIR)/libfixture.map -o $@ $<

$(U_FIX)/fixture_prog: $(U_FDEPS) $(U_FIX)/libfixture.so
	$(CC) $(U_FCFLAGS) -fPIE -pie -o $@ $(U_FDIR)/fixture_prog.c $(U_FDIR)/shapes.S \
		-L$(U_FIX) -lfixture -Wl,-rpath,'$$ORIGIN'

$(U_FIX)/sleep32: test/daemons/sleep32.S $(U_DIR)/unit.mk | $(U_FIX)
	$(CC) -m32 -nostdlib -static -no-pie -Wl,--build-id=none -o $@ $<

$(U_FIX)/stripped/libfixture.so: $(U_FIX)/libfixture.so | $(U_FIX)/stripped
	strip --strip-all -o $@ $<

$(U_FIX)/stripped/fixture_prog: $(U_FIX)/fixture_prog | $(U_FIX)/stripped
	cp $< $@

$(U_PFIX):
	@mkdir -p $@

$(U_PFIX)/%.o: $(U_PDIR)/%.S $(U_DIR)/unit.mk | $(U_PFIX)
	$(CC) -c -o $@ $<

$(U_PFIX)/%_clang.o: $(U_PDIR)/%.S $(U_DIR)/unit.mk | $(U_PFIX)
	clang -c -o $@ $<

$(U_PFIX)/tiny32.o: $(U_PDIR)/tiny.S $(U_DIR)/unit.mk | $(U_PFIX)
	$(CC) -m32 -c -o $@ $<

$(U_PFIX)/patch.o: $(U_PDIR)/patch.c $(U_DIR)/unit.mk | $(U_PFIX)
	$(CC) $(U_PCFLAGS) -c -o $@ $<

$(U_PFIX)/patch_clang.o: $(U_PDIR)/patch.c $(U_DIR)/unit.mk | $(U_PFIX)
	clang $(U_PCFLAGS) -c -o $@ $<

$(U_PFIX)/lto_gcc.o: $(U_PDIR)/patch.c $(U_DIR)/unit.mk | $(U_PFIX)
	$(CC) -O2 -flto -c -o $@ $<

$(U_PFIX)/lto_clang.o: $(U_PDIR)/patch.c $(U_DIR)/unit.mk | $(U_PFIX)
	clang -O2 -flto -c -o $@ $<
