# Patch objects for `livepatch --load` (test/patches/, load.bats): `make patches` builds
# each with gcc and clang at -O0 and -O2 into $(B)/patches/CONFIG/NAME.o, plus variants
# and the objects --load must refuse. Included by the top-level Makefile after
# daemons.mk (uses B and D_DIR). Standalone:
#   make -f test/daemons/daemons.mk -f test/patches/patches.mk B=build patches
#
# Every patch is a plain `cc -c` object, as a patch author makes it: no -fPIC unless the
# variant says so (the compilers' default, PIE code on Debian), -g, no -Werror-only flags
# that change the code.

P_DIR     := test/patches
P_OUT     := $(B)/patches
P_CFLAGS  := -std=gnu11 -g -Wall -Wextra -Werror -Iinclude -I$(D_DIR)
P_HDR     := $(D_DIR)/patchd.h include/livepatch/patch.h $(P_DIR)/patches.mk

# One thing each, loaded into patchd (lib: into counterd-lib).
P_KINDS   := static_call static_var strings switch fptrs libc bss lib pinned
P_CONFIGS := gcc-O0 gcc-O2 clang-O0 clang-O2
# Variants where the code differs: position-independent (GOT relocations for the program's
# variables; .data.rel.ro), one section per function and per object (.text.NAME,
# .rodata.NAME, .bss.NAME).
P_FPIC    := static_var fptrs
P_SECT    := switch bss
# Refused by --load (exit 4 or 5), gcc -O2.
P_REFUSE  := tls ctor ifunc unresolved dup reloc

P_ALL := $(foreach c,$(P_CONFIGS),$(P_KINDS:%=$(P_OUT)/$(c)/%.o)) \
         $(foreach c,gcc-O2-fpic clang-O2-fpic,$(P_FPIC:%=$(P_OUT)/$(c)/%.o)) \
         $(foreach c,gcc-O2-sections clang-O2-sections,$(P_SECT:%=$(P_OUT)/$(c)/%.o)) \
         $(P_REFUSE:%=$(P_OUT)/refuse/%.o) \
         $(P_OUT)/refuse/etdyn.o $(P_OUT)/refuse/etexec.o $(P_OUT)/refuse/arch.o \
         $(P_OUT)/v1/fix.o $(P_OUT)/v2/fix.o \
         $(P_OUT)/multi/multi_helper.o $(P_OUT)/multi/multi_main.o \
         $(P_OUT)/stress/stress.o \
         $(P_OUT)/sleeper/sleeper.o $(P_OUT)/timespin/timespin.o

.PHONY: patches
patches: $(P_ALL)

$(P_OUT)/gcc-O0/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O0 -c -o $@ $<

$(P_OUT)/gcc-O2/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -c -o $@ $<

$(P_OUT)/clang-O0/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	clang $(P_CFLAGS) -O0 -c -o $@ $<

$(P_OUT)/clang-O2/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	clang $(P_CFLAGS) -O2 -c -o $@ $<

$(P_OUT)/gcc-O2-fpic/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -fPIC -c -o $@ $<

$(P_OUT)/clang-O2-fpic/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	clang $(P_CFLAGS) -O2 -fPIC -c -o $@ $<

$(P_OUT)/gcc-O2-sections/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -ffunction-sections -fdata-sections -c -o $@ $<

$(P_OUT)/clang-O2-sections/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	clang $(P_CFLAGS) -O2 -ffunction-sections -fdata-sections -c -o $@ $<

$(P_OUT)/refuse/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -c -o $@ $<

# A linked library and a linked program, named .o: --load wants what `cc -c` makes.
$(P_OUT)/refuse/etdyn.o: $(P_DIR)/strings.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -fPIC -shared -o $@ $<

$(P_OUT)/refuse/etexec.o: $(P_DIR)/strings.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -static -no-pie -nostdlib -Wl,-e,handle_request_fixed \
		-Wl,--unresolved-symbols=ignore-all -o $@ $<

# Another architecture (ELF64 all the same: the machine is what differs).
$(P_OUT)/refuse/arch.o: $(P_DIR)/arch.c $(P_HDR)
	@mkdir -p $(dir $@)
	clang --target=aarch64-linux-gnu -std=gnu11 -O2 -Wall -Wextra -Werror -c -o $@ $<

# The same name, two contents: fix.o v1 and v2 (note_fixed_call(1), (2)).
# test/stress.sh's LP_STRESS_LOAD=1 patch, for every torture daemon (test/daemons/common.h).
$(P_OUT)/stress/stress.o: $(P_DIR)/stress.c $(P_DIR)/patches.mk
	@mkdir -p $(dir $@)
	gcc -std=gnu11 -g -Wall -Wextra -Werror -O2 -fPIC -c -o $@ $<

$(P_OUT)/v1/fix.o $(P_OUT)/v2/fix.o: $(P_OUT)/v%/fix.o: $(P_DIR)/static_call.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -DPATCH_VERSION=$* -c -o $@ $<

# Two objects for one command: multi_main.o calls multi_helper.o's patch_header.
$(P_OUT)/multi/%.o: $(P_DIR)/%.c $(P_HDR)
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -c -o $@ $<

# insided's patch (unload.bats): waiter -> wait_in_patched, which sleeps in read(2) inside
# the loaded text (test/daemons/insided.h is the contract).
$(P_OUT)/sleeper/sleeper.o: $(P_DIR)/sleeper.c $(D_DIR)/insided.h $(P_DIR)/patches.mk
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -c -o $@ $<

# insided --time-spin's patch (unload.bats): gate -> gate_patched, which spins in the
# daemon's time_spin (time(), the vDSO) with its return address in the loaded text.
$(P_OUT)/timespin/timespin.o: $(P_DIR)/timespin.c $(D_DIR)/insided.h $(P_DIR)/patches.mk
	@mkdir -p $(dir $@)
	gcc $(P_CFLAGS) -O2 -c -o $@ $<
