# Fuzzing (libFuzzer), included by the top-level Makefile. `make fuzz-build` builds
#   $(B)/fuzz/fuzz_NAME   one harness per test/fuzz/fuzz_NAME.c, linked with the library
#                         (and cmd/args.c) compiled again by clang into $(B)/fuzz/obj,
#                         with -fsanitize=fuzzer,address,undefined
# `make fuzz` runs each harness for FUZZ_SECONDS (default 60), one at a time, from its
# seed corpus (test/fuzz/corpus/NAME) and regressions (test/fuzz/regressions/NAME), and
# fails on any crash, leak or sanitizer report (the input in $(B)/fuzz/crashes/fuzz_NAME, the
# log in $(B)/fuzz/logs/fuzz_NAME.log); new inputs go to $(B)/fuzz/corpus/fuzz_NAME.
# test/fuzz/replay.sh $(B)/fuzz replays every seed and regression once (make check).
# Uses only B, CFLAGS_BASE, PKG_CFLAGS, PKG_LIBS, LIB_SRC, VERSION and deps-check from the top.

F_DIR    := test/fuzz
F_SRC    := $(sort $(wildcard $(F_DIR)/fuzz_*.c))
F_NAMES  := $(F_SRC:$(F_DIR)/%.c=%)
F_OUT    := $(B)/fuzz
F_BINS   := $(F_NAMES:%=$(F_OUT)/%)
F_CC     := clang
# -Wno-format-truncation is gcc's alone; clang has no such warning to turn off.
F_CFLAGS := $(filter-out -Wno-format-truncation,$(CFLAGS_BASE)) -I$(F_DIR) -Icmd \
            -fno-omit-frame-pointer -fno-sanitize-recover=all
F_SAN    := -fsanitize=fuzzer-no-link,address,undefined
F_LIB    := $(LIB_SRC:src/%.c=$(F_OUT)/obj/src/%.o) $(F_OUT)/obj/cmd/args.o $(F_OUT)/obj/util.o
F_HDR    := $(wildcard include/*.h cmd/*.h $(F_DIR)/*.h) $(F_DIR)/fuzz.mk
FUZZ_SECONDS ?= 60

.PHONY: fuzz fuzz-build
fuzz-build: $(F_BINS)

$(F_OUT)/obj/src/%.o: src/%.c $(F_HDR) | deps-check
	@mkdir -p $(dir $@)
	$(F_CC) $(F_CFLAGS) $(F_SAN) $(PKG_CFLAGS) -DLP_VERSION='"$(VERSION)"' -c -o $@ $<

$(F_OUT)/obj/cmd/%.o: cmd/%.c $(F_HDR) | deps-check
	@mkdir -p $(dir $@)
	$(F_CC) $(F_CFLAGS) $(F_SAN) $(PKG_CFLAGS) -DLP_VERSION='"$(VERSION)"' -c -o $@ $<

$(F_OUT)/obj/%.o: $(F_DIR)/%.c $(F_HDR) | deps-check
	@mkdir -p $(dir $@)
	$(F_CC) $(F_CFLAGS) $(F_SAN) $(PKG_CFLAGS) -c -o $@ $<

$(F_OUT)/obj/src/verify.o: $(B)/verify.skel.h

$(F_BINS): $(F_OUT)/%: $(F_OUT)/obj/%.o $(F_LIB)
	$(F_CC) $(F_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.o,$^) \
		$(F_LDLIBS) $(PKG_LIBS)

# The plan harness resolves names against a small library of its own (fuzz_plan.c).
$(F_OUT)/libfuzzplan.so: $(F_DIR)/plan_lib.S $(F_DIR)/plan_lib.map $(F_DIR)/fuzz.mk
	@mkdir -p $(dir $@)
	$(F_CC) -shared -nostdlib -fPIC -Wl,--version-script=$(F_DIR)/plan_lib.map -o $@ $<

$(F_OUT)/fuzz_plan: $(F_OUT)/libfuzzplan.so
$(F_OUT)/fuzz_plan: F_LDLIBS := -L$(F_OUT) -lfuzzplan -Wl,-rpath,'$$ORIGIN'

# Lines longer than the maps reader's 16 KiB buffer and the plan reader's 4 KiB need
# inputs larger than libFuzzer's default 4 KiB; ELF files and patch objects too.
F_MAXLEN_fuzz_maps     := 40000
F_MAXLEN_fuzz_plan     := 12000
F_MAXLEN_fuzz_elfsym   := 65536
F_MAXLEN_fuzz_patchobj := 65536

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@rc=0; for r in $(foreach n,$(F_NAMES),$(n):$(or $(F_MAXLEN_$(n)),4096)); do \
		f=$${r%%:*}; maxlen=$${r#*:}; \
		mkdir -p $(F_OUT)/corpus/$$f $(F_OUT)/crashes/$$f $(F_OUT)/logs; \
		dirs="$(F_OUT)/corpus/$$f"; \
		for d in $(F_DIR)/corpus/$$f $(F_DIR)/regressions/$$f; do \
			[ -d $$d ] && dirs="$$dirs $$d"; \
		done; \
		echo "== $$f ($(FUZZ_SECONDS) s)"; \
		if $(F_OUT)/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$$maxlen -timeout=10 \
			-artifact_prefix=$(F_OUT)/crashes/$$f/ -print_final_stats=1 $$dirs \
			>$(F_OUT)/logs/$$f.log 2>&1; then \
			awk '/^stat::number_of_executed_units/ { n = $$2 } \
			     /^stat::average_exec_per_sec/ { s = $$2 } \
			     END { printf "   %s executions, %s exec/s\n", n, s }' $(F_OUT)/logs/$$f.log; \
		else \
			rc=1; grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
				$(F_OUT)/logs/$$f.log | head -n 20; \
			echo "   crashed: see $(F_OUT)/logs/$$f.log and $(F_OUT)/crashes/$$f/"; \
		fi; \
	done; exit $$rc
