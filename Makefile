# livepatch: build, test and demo. `make check` and `make demo` start from a clean
# clone on a fresh Debian 12 machine: both install what is missing first (deps).

CC       ?= cc
PKGS     := libelf libdw capstone libbpf
B        := build
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -D_GNU_SOURCE -Iinclude -I$(B) -Wno-format-truncation
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   ?=
CFLAGS   += $(CFLAGS_BASE)
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

LIB_SRC  := $(filter-out %.bpf.c,$(sort $(wildcard src/*.c)))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(B)/src/%.o)
ASAN_OBJ := $(LIB_SRC:src/%.c=$(B)/asan/%.o)
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: all deps deps-check check demo unit integration clean install uninstall stress
all: livepatch

# Debian packages the build and the tests need; installed when missing (root only).
deps:
	@test/deps.sh

# Before the first compile: the libraries' pkg-config files, and the tools that build the BPF
# probes, else one line naming what is missing and `make deps` (not a compiler error about a
# header). A few lookups, once per make. (The test sets PKG_CONFIG_LIBDIR to an empty
# directory: a machine without the -dev packages, as pkg-config sees it.)
deps-check:
	@missing=; \
	for m in $(PKGS); do pkg-config --exists $$m 2>/dev/null || missing="$$missing $$m"; done; \
	for t in pkg-config clang bpftool; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "livepatch: error: cannot build, missing:$$missing (run: make deps, as root)" >&2; \
		exit 2; \
	fi

# livepatch is linked statically, into an executable at a fixed address: capstone's
# decoder tables hold about 78,000 pointers that a position-independent executable must
# relocate at every start (1.8 ms and 370 page faults), and loading libelf, libbpf, libz
# and libc took another 0.5 ms. Start-up is part of every patch's time. `make PIE=1`
# links the usual way (shared libraries, position-independent).
ifeq ($(PIE),1)
LP_LDLIBS = $(PKG_LIBS)
else
LP_LDLIBS = -static -no-pie $(shell pkg-config --static --libs libdw libelf capstone libbpf 2>/dev/null)
endif

livepatch: $(LIB_OBJ) $(B)/cmd/livepatch.o $(B)/cmd/args.o
	$(CC) $(CFLAGS) -o $@ $^ $(LP_LDLIBS)

$(B)/src/%.o: src/%.c $(wildcard include/*.h) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -DLP_VERSION='"$(VERSION)"' -c -o $@ $<

$(B)/cmd/%.o: cmd/%.c $(wildcard include/*.h cmd/*.h) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -DLP_VERSION='"$(VERSION)"' -c -o $@ $<

$(B)/asan/%.o: src/%.c $(wildcard include/*.h) | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(PKG_CFLAGS) -DLP_VERSION='"$(VERSION)"' -c -o $@ $<

# The --verify probes: a BPF object built with clang, wrapped in a libbpf skeleton.
# vmlinux.h comes from the running kernel's BTF (CO-RE relocates it elsewhere).
$(B)/vmlinux.h: | deps-check
	@mkdir -p $(B)
	@test -r /sys/kernel/btf/vmlinux || { echo "livepatch: error: cannot build the --verify \
	probes: /sys/kernel/btf/vmlinux is missing (build on a kernel with CONFIG_DEBUG_INFO_BTF)" >&2; exit 2; }
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(B)/verify.bpf.o: src/verify.bpf.c $(B)/vmlinux.h
	clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(B) -Wall -Werror -c -o $@ $<

$(B)/verify.skel.h: $(B)/verify.bpf.o
	bpftool gen skeleton $< name verify_bpf > $@.tmp && mv $@.tmp $@

$(B)/src/verify.o $(B)/asan/verify.o: $(B)/verify.skel.h

include test/daemons/daemons.mk
include test/patches/patches.mk
include test/unit/unit.mk
include test/fuzz/fuzz.mk
-include bench/bench.mk

check: deps
	@$(MAKE) --no-print-directory all daemons patches unit-build fuzz-build
	@test/run.sh

demo: deps
	@$(MAKE) --no-print-directory all daemons
	@test/demo.sh

stress: deps
	@$(MAKE) --no-print-directory all daemons patches
	@LP_STRESS_CYCLES=$${LP_STRESS_CYCLES:-1000} test/stress.sh
	@LP_STRESS_LOAD=1 LP_STRESS_CYCLES=$${LP_STRESS_LOAD_CYCLES:-300} test/stress.sh
	@LP_KILL_COUNT=$${LP_KILL_COUNT:-1000} test/killstress.sh

install: livepatch
	install -D -m 0755 livepatch $(DESTDIR)$(PREFIX)/sbin/livepatch
	install -D -m 0644 man/livepatch.8 $(DESTDIR)$(PREFIX)/share/man/man8/livepatch.8
	install -D -m 0644 completions/livepatch.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/livepatch
	install -D -m 0644 completions/_livepatch \
		$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_livepatch
	install -D -m 0644 include/livepatch/patch.h $(DESTDIR)$(PREFIX)/include/livepatch/patch.h

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/livepatch \
		$(DESTDIR)$(PREFIX)/share/man/man8/livepatch.8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/livepatch \
		$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_livepatch \
		$(DESTDIR)$(PREFIX)/include/livepatch/patch.h

clean:
	rm -rf $(B) livepatch test/.tmp
