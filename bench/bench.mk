# Benchmarks (bench/): `make bench` measures patches against baselines, `make reach` runs the
# planner over every function of real Debian binaries. Included by the top Makefile, which
# defines B, CC and the livepatch and daemons targets.

BN_DIR    := bench
BN_OUT    := $(B)/bench
BN_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -fcf-protection=full
BN_BINS   := $(BN_OUT)/benchd $(BN_OUT)/floor $(BN_OUT)/svcd $(BN_OUT)/loadc $(BN_OUT)/run \
             $(BN_OUT)/sleepd
# Patch objects run.c loads into benchd (--load): G for f0000, and about 1 MiB of .text.
BN_PATCHES := $(BN_OUT)/patch_benchd.o $(BN_OUT)/patch_big.o
BN_BIG_FUNCS := 460

.PHONY: bench reach bench-build

bench-build: $(BN_BINS) $(BN_PATCHES)

$(BN_OUT):
	@mkdir -p $@

$(BN_OUT)/%: $(BN_DIR)/%.c $(wildcard $(BN_DIR)/*.h) $(BN_DIR)/bench.mk | $(BN_OUT)
	$(CC) $(BN_CFLAGS) -o $@ $< -lm

$(BN_OUT)/patch_benchd.o: $(BN_DIR)/patch_benchd.c $(BN_DIR)/bench.mk | $(BN_OUT)
	$(CC) -c -O2 -Wall -Wextra -Werror -o $@ $<

# -O0: the link cost is in the bytes and relocations, and -O2 takes minutes of CPU for 1 MiB
# of generated code (-O0 a few seconds). -fPIC: globals through the GOT (GOTPCRELX) as well.
$(BN_OUT)/patch_big.c: $(BN_DIR)/gen_bigpatch.py $(BN_DIR)/bench.mk | $(BN_OUT)
	python3 $< $(BN_BIG_FUNCS) > $@.tmp && mv $@.tmp $@

$(BN_OUT)/patch_big.o: $(BN_OUT)/patch_big.c
	$(CC) -c -O0 -fPIC -Wall -Werror -o $@ $<

# About 15 minutes: the whole matrix, the baselines, the loaded service and the fleet rows
# (12 of the 15: rollouts over 64 saturated daemons), one table.
# `make bench ONLY=safe,where`: only those parts (run.c --only), written into build/bench/
# so that bench/results.* keep the whole run.
# The fleet rows run copies of test/daemons/counterd ($(D_OUT), daemons.mk).
# BENCH_ARGS: more options of run.c, e.g. BENCH_ARGS='--fleet-runs 1 --fleet-json /tmp/j'.
ONLY ?=
BENCH_ARGS ?=
bench: livepatch bench-build $(D_OUT)/counterd
	@$(BN_OUT)/run --livepatch ./livepatch --bin $(BN_OUT) --daemons $(D_OUT) \
		--out $(if $(ONLY),$(BN_OUT),$(BN_DIR)) $(if $(ONLY),--only $(ONLY)) $(BENCH_ARGS)

# Under 2 minutes: the planner (--dry-run) over every function of libc, libssl, libcrypto, nginx.
reach: livepatch
	@$(BN_DIR)/reach.py --livepatch ./livepatch --out $(BN_DIR)/reach.md
