# Test daemons (test/daemons/): `make daemons` builds them all into $(B)/daemons/.
# Included by the top-level Makefile; uses only B and CC from it. Standalone:
#   make -f test/daemons/daemons.mk B=build daemons

D_DIR    := test/daemons
D_OUT    := $(B)/daemons
D_OBJ    := $(B)/daemons/obj
D_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread
D_CET    := -fcf-protection=full
D_NOCET  := -fcf-protection=none
D_HDR    := $(D_DIR)/common.h $(D_DIR)/daemons.mk

# Daemons made of one source file plus common.c and compute.c.
D_SIMPLE := sigstormd forkd churnd blockd sigtrapd vforkd execd
D_ALL    := $(D_SIMPLE:%=$(D_OUT)/%) \
            $(D_OUT)/counterd $(D_OUT)/counterd-nopie $(D_OUT)/counterd-lib \
            $(D_OUT)/libsample.so $(D_OUT)/sigsend $(D_OUT)/killer $(D_OUT)/sleep32 $(D_OUT)/manyd $(D_OUT)/callersd
D_BASE   := $(D_OBJ)/common.o $(D_OBJ)/compute.o

.PHONY: daemons
daemons: $(D_ALL)

$(D_OUT) $(D_OBJ) $(D_OBJ)/nopie:
	@mkdir -p $@

# PIE, endbr64 at every function entry.
$(D_OBJ)/%.o: $(D_DIR)/%.c $(D_HDR) | $(D_OBJ)
	$(CC) $(D_CFLAGS) $(D_CET) -c -o $@ $<

$(D_OBJ)/%.o: $(D_DIR)/%.S $(D_DIR)/daemons.mk | $(D_OBJ)
	$(CC) $(D_CET) -c -o $@ $<

# Not PIE, no endbr64.
$(D_OBJ)/nopie/%.o: $(D_DIR)/%.c $(D_HDR) | $(D_OBJ)/nopie
	$(CC) $(D_CFLAGS) $(D_NOCET) -fno-pie -c -o $@ $<

$(D_OBJ)/nopie/%.o: $(D_DIR)/%.S $(D_DIR)/daemons.mk | $(D_OBJ)/nopie
	$(CC) $(D_NOCET) -fno-pie -c -o $@ $<

$(D_SIMPLE:%=$(D_OUT)/%): $(D_OUT)/%: $(D_OBJ)/%.o $(D_BASE) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $^

$(D_OUT)/counterd: $(D_OBJ)/counterd.o $(D_OBJ)/counterd_asm.o $(D_BASE) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $^

$(D_OUT)/counterd-nopie: $(D_OBJ)/nopie/counterd.o $(D_OBJ)/nopie/counterd_asm.o \
		$(D_OBJ)/nopie/common.o $(D_OBJ)/nopie/compute.o | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_NOCET) -no-pie -o $@ $^

# compute/compute_v2 and their counters live in libsample.so only.
$(D_OUT)/libsample.so: $(D_DIR)/libsample.c $(D_DIR)/compute.c $(D_HDR) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -fPIC -shared -Wl,-soname,libsample.so -o $@ $<

$(D_OBJ)/counterd-lib.o: $(D_DIR)/counterd.c $(D_HDR) | $(D_OBJ)
	$(CC) $(D_CFLAGS) $(D_CET) -DUSE_LIBSAMPLE -c -o $@ $<

$(D_OUT)/counterd-lib: $(D_OBJ)/counterd-lib.o $(D_OBJ)/counterd_asm.o $(D_OBJ)/common.o \
		$(D_OUT)/libsample.so | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $(filter %.o,$^) -L$(D_OUT) -lsample \
		-Wl,-rpath,'$$ORIGIN'

# Not a daemon: queues SIGRTMIN+1 with values 1..COUNT (no common.c).
$(D_OUT)/sigsend: $(D_DIR)/sigsend.c $(D_DIR)/daemons.mk | $(D_OUT)
	$(CC) $(D_CFLAGS) -o $@ $<

# Not a daemon: runs livepatch -v and SIGKILLs it at a chosen line (test/killstress.sh).
$(D_OUT)/killer: $(D_DIR)/killer.c $(D_DIR)/daemons.mk | $(D_OUT)
	$(CC) $(D_CFLAGS) -o $@ $<

# i386, static, no libc.
$(D_OUT)/sleep32: $(D_DIR)/sleep32.S $(D_DIR)/daemons.mk | $(D_OUT)
	$(CC) -m32 -nostdlib -static -no-pie -Wl,--build-id=none -o $@ $<

# manyd: 1000 generated pairs fNNNN/gNNNN for batch patches (gen_manyd.py writes the source).
$(D_OBJ)/manyd.c: $(D_DIR)/gen_manyd.py | $(D_OBJ)
	python3 $< 1000 > $@.tmp && mv $@.tmp $@

$(D_OUT)/manyd: $(D_OBJ)/manyd.c $(D_BASE) $(D_HDR) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -I$(D_DIR) -o $@ $(D_OBJ)/manyd.c $(D_BASE)

# callersd: compute reached by direct calls, a register, memory and a tail call.
$(D_OUT)/callersd: $(D_OBJ)/callersd.o $(D_OBJ)/callers_asm.o $(D_BASE) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $^

# stated: threads parked in, blocked at the end of, or interrupted inside the displaced
# bytes (docs/design.md §5); stopwatch: a parent that logs the stop/continue events it sees.
D_ALL    += $(D_OUT)/stated $(D_OUT)/stopwatch
daemons: $(D_OUT)/stated $(D_OUT)/stopwatch

$(D_OUT)/stated: $(D_OBJ)/stated.o $(D_OBJ)/stated_asm.o $(D_BASE) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $^

$(D_OUT)/stopwatch: $(D_DIR)/stopwatch.c $(D_DIR)/daemons.mk | $(D_OUT)
	$(CC) $(D_CFLAGS) -o $@ $<

# patchd: the daemon of --load (load.bats, test/patches/). libpatchd.so exports checksum,
# a name patchd also has twice as a static (patchd.c, patchd_aux.c). patchd-stripped is
# the same program as a stripped distribution ships it: no .symtab, and -rdynamic puts
# what the patches bind to (note_fixed_call, note_reject, note_count) in .dynsym.
D_PATCHD := $(D_OUT)/patchd $(D_OUT)/patchd-stripped $(D_OUT)/libpatchd.so
D_ALL    += $(D_PATCHD)
daemons: $(D_PATCHD)

$(D_OBJ)/patchd.o $(D_OBJ)/patchd_aux.o: $(D_DIR)/patchd.h

$(D_OUT)/libpatchd.so: $(D_DIR)/libpatchd.c $(D_DIR)/patchd.h $(D_HDR) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -fPIC -shared -Wl,-soname,libpatchd.so -o $@ $<

$(D_OUT)/patchd: $(D_OBJ)/patchd.o $(D_OBJ)/patchd_aux.o $(D_BASE) $(D_OUT)/libpatchd.so | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $(filter %.o,$^) -L$(D_OUT) -lpatchd -Wl,-rpath,'$$ORIGIN'

$(D_OUT)/patchd-stripped: $(D_OBJ)/patchd.o $(D_OBJ)/patchd_aux.o $(D_BASE) $(D_OUT)/libpatchd.so | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -rdynamic -o $@.full $(filter %.o,$^) -L$(D_OUT) -lpatchd \
		-Wl,-rpath,'$$ORIGIN'
	strip --strip-all -o $@ $@.full && rm -f $@.full

# insided: threads with a function on their stack in each of the ways `--where`, `--safe`
# and `--unload` must see (issue 17: where.bats, safe.bats, unload.bats; sleeper.o is its
# patch, insided.h their contract).
D_ALL    += $(D_OUT)/insided
daemons: $(D_OUT)/insided

$(D_OBJ)/insided.o: $(D_DIR)/insided.h

$(D_OUT)/insided: $(D_OBJ)/insided.o $(D_BASE) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $^

# The multi-process mode (issue 18: fleet.bats): preforkd, a master that forks worker
# processes calling compute; holder, another tracer that seizes a process and holds it.
D_ALL    += $(D_OUT)/preforkd $(D_OUT)/holder
daemons: $(D_OUT)/preforkd $(D_OUT)/holder

$(D_OUT)/preforkd: $(D_OBJ)/preforkd.o $(D_BASE) | $(D_OUT)
	$(CC) $(D_CFLAGS) $(D_CET) -o $@ $^

# Not a daemon: no common.c (its SIGTERM must end it at once; see holder.c).
$(D_OUT)/holder: $(D_DIR)/holder.c $(D_DIR)/daemons.mk | $(D_OUT)
	$(CC) $(D_CFLAGS) -o $@ $<
