#!/usr/bin/env bats
# --verify: the kernel's own count (BPF) of traps raised/delivered and of calls that
# reach the new and the old code, checked against what the daemons count themselves.
# On a kernel without BTF each test proves instead that --verify is refused (exit 3) and
# says so; LP_TEST_BTF=off takes that path here (livepatch then sees no /sys/kernel/btf).

load ../lib

setup() {
	need_root
}

teardown() {
	daemon_stop || true
}

@test "verify passes a normal patch: target hit, old body not, no trap delivered, traps cross-checked" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 4
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.5 --json
	[ "$status" -eq 0 ]
	echo "$output" >"$LP_TMP/out.json"
	[ "$(json_get 'd["verify"]["verdict"]' "$LP_TMP/out.json")" = pass ]
	(($(json_get 'd["verify"]["target_hits"]' "$LP_TMP/out.json") > 0))
	[ "$(json_get 'd["verify"]["old_hits"]' "$LP_TMP/out.json")" -eq 0 ]
	[ "$(json_get 'd["verify"]["traps_delivered"]' "$LP_TMP/out.json")" -eq 0 ]
	[ "$(json_get 'd["verify"]["traps_generated"]' "$LP_TMP/out.json")" -eq \
	  "$(json_get 'd["verify"]["traps_handled"]' "$LP_TMP/out.json")" ]
	# The daemon agrees: compute stopped, compute_v2 runs.
	local a b
	a=$(status_get calls_compute)
	status_wait_change calls_compute_v2
	b=$(status_get calls_compute)
	[ "$a" -eq "$b" ]
	[ "$(status_get wrong)" -eq 0 ]
}

# Once a process's memory has uprobes, the kernel takes the program's own `int $3` (cd 03)
# for a breakpoint of theirs and restarts the thread on the 03: SIGSEGV (docs/design.md §6).
# The refusal comes before any BPF is loaded: it needs no BTF.
@test "verify refuses a program with an int \$3 (cd 03): exit 3 naming it, daemon alive, unpatched, every trap its own" {
	local addr before ex rx
	daemon_start sigtrapd --int3-form cd03 --interval-us 200
	addr=$(fn_addr compute) || return 1
	before=$(text_sum "$DAEMON_PID" "$addr" 32) || return 1
	lp -p "$DAEMON_PID" -f compute -t compute_v2 --verify=0.3
	expect_rc 3
	[[ $(json code) == 3 ]] || fail "JSON error code $(json code): $LP_OUT"
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3
	((status == 3)) || fail "livepatch --verify exited $status, expected 3: $output"
	((${#lines[@]} == 1)) || fail "not one line: $output"
	[[ $output == "livepatch: error: --verify cannot run on process $DAEMON_PID: sigtrapd has an \`int \$3\` (cd 03) at 0x"*"(run without --verify)" ]] ||
		fail "the refusal does not name the int \$3 and the fix: $output"
	status_wait_change int3_executed	# it still traps, and lives
	alive
	[[ $(text_sum "$DAEMON_PID" "$addr" 32) == "$before" ]] || fail "compute's bytes changed"
	status_wait_change calls_compute
	expect_key calls_compute_v2 0
	stop_clean
	ex=$(status_get int3_executed)
	rx=$(status_get sigtrap_received)
	((rx > 0)) || fail "no int \$3 trap reached the handler: the test did not exercise them"
	((ex - rx == 0 || ex - rx == 1)) ||
		fail "int3_executed $ex, sigtrap_received $rx: $((ex - rx)) of the program's own SIGTRAPs were lost"
	expect_key sigtrap_other 0
}

@test "verify of an idle daemon is inconclusive (exit 7) and says the function was not called" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --idle
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3
	[ "$status" -eq 7 ]
	[[ $output == *"verify    inconclusive"* ]]
	[[ $output == *"livepatch: error: verification inconclusive"*"not called"* ]]
}

@test "verify with --verify-min-calls 0 accepts an idle daemon" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --idle
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3 \
		--verify-min-calls 0 --json
	[ "$status" -eq 0 ]
	[[ $output == *'"verdict":"pass"'* ]]
}

@test "verify fails (exit 7) when the old body is entered by a path that bypasses the entry" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 1 --second-entry
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute_alt --target compute_v2 --verify=0.5 --json
	[ "$status" -eq 7 ]
	echo "$output" >"$LP_TMP/out.json"
	[ "$(json_get 'd["verify"]["verdict"]' "$LP_TMP/out.json")" = fail ]
	(($(json_get 'd["verify"]["old_hits"]' "$LP_TMP/out.json") > 0))
	[ "$(json_get 'd["error"]["code"]' "$LP_TMP/out.json")" -eq 7 ]
	# The daemon's own counter of that second entry moved too.
	status_wait_change calls_compute_alt_body
}

@test "verify passes a revert in the other direction: the original code runs again" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 4
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -q
	[ "$status" -eq 0 ]
	run timeout 60 "$LP" --pid "$DAEMON_PID" --revert compute --verify=0.5 --json
	[ "$status" -eq 0 ]
	echo "$output" >"$LP_TMP/out.json"
	[ "$(json_get 'd["verify"]["verdict"]' "$LP_TMP/out.json")" = pass ]
	[ "$(json_get 'd["verify"]["target_probe"]' "$LP_TMP/out.json")" = 0x0 ]
	(($(json_get 'd["verify"]["old_hits"]' "$LP_TMP/out.json") > 0))
	local a b
	a=$(status_get calls_compute_v2)
	status_wait_change calls_compute
	b=$(status_get calls_compute_v2)
	[ "$a" -eq "$b" ]
}

@test "the text after a verified patch is byte-identical to a plain patch's (probes are gone)" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 2
	local plain=$DAEMON_PID
	daemon_start counterd --threads 2
	local verified=$DAEMON_PID
	"$LP" --pid "$plain" --func compute --target compute_v2 -q
	"$LP" --pid "$verified" --func compute --target compute_v2 -q --verify=0.3
	local fa fb ga gb
	fa=$("$LP" --pid "$plain" --func compute --target compute_v2 -n -j | json_get 'd["function"]["address"]')
	fb=$("$LP" --pid "$verified" --func compute --target compute_v2 -n -j | json_get 'd["function"]["address"]')
	# compute_v2's address from the target of the same dry run (compute_v2 -> compute would
	# now be refused: compute jumps to compute_v2, a cycle).
	ga=$("$LP" --pid "$plain" --func compute --target compute_v2 -n -j | json_get 'd["target"]["address"]')
	gb=$("$LP" --pid "$verified" --func compute --target compute_v2 -n -j | json_get 'd["target"]["address"]')
	[ "$(text_sum "$plain" "$fa" 64)" = "$(text_sum "$verified" "$fb" 64)" ]
	[ "$(text_sum "$plain" "$ga" 64)" = "$(text_sum "$verified" "$gb" 64)" ]
}

@test "traps generated equal traps handled over 5 verified cycles on 16 hot threads" {
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 16 --mode slow
	local i args gen=0 handled=0
	for i in $(seq 5); do
		for args in "--func compute_slow --target compute_slow_v2" "--revert compute_slow"; do
			# shellcheck disable=SC2086
			run timeout 60 "$LP" --pid "$DAEMON_PID" $args --verify=0.3 --json
			echo "$output"
			[ "$status" -eq 0 ]
			echo "$output" >"$LP_TMP/out.json"
			[ "$(json_get 'd["verify"]["traps_delivered"]' "$LP_TMP/out.json")" -eq 0 ]
			local g h
			g=$(json_get 'd["verify"]["traps_generated"]' "$LP_TMP/out.json")
			h=$(json_get 'd["verify"]["traps_handled"]' "$LP_TMP/out.json")
			[ "$g" -eq "$h" ]
			gen=$((gen + g))
			handled=$((handled + h))
		done
	done
	echo "traps generated $gen handled $handled"
	((gen > 0))
	[ "$(status_get wrong)" -eq 0 ]
}

@test "verify without BPF privileges fails early (exit 3) and writes nothing" {
	if ! kernel_has_btf; then verify_refused; return; fi
	need_cmd capsh libcap2-bin
	daemon_start counterd --threads 2
	run capsh --drop=cap_bpf,cap_perfmon,cap_sys_admin -- -c \
		"'$LP' --pid $DAEMON_PID --func compute --target compute_v2 --verify"
	[ "$status" -eq 3 ]
	[[ $output == *"livepatch: error: cannot load the verify BPF program"*"CAP_BPF"* ]]
	run "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -n -j
	[[ $output == *'"status":"planned"'* ]]
	status_wait_change calls_compute
}

@test "--verify cannot go with --dry-run (exit 2)" {
	run "$LP" --pid 1 --func a --target b --dry-run --verify
	[ "$status" -eq 2 ]
	[[ $output == *"cannot go with --dry-run"* ]]
}
