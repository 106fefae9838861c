#!/usr/bin/env bats
# --verify: the kernel's own count (BPF) of traps raised/delivered and of calls that
# reach the new and the old code, checked against what the daemons count themselves.

load ../helpers

LP=${LP:-$BATS_TEST_DIRNAME/../../livepatch}

setup() {
	[[ $EUID -eq 0 ]] || skip "needs root for ptrace and BPF"
	[[ -r /sys/kernel/btf/vmlinux ]] || skip "kernel has no BTF"
}

teardown() {
	daemon_stop || true
}

# json FILE EXPR: evaluate a python expression on the JSON object in FILE as d.
json() {
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

@test "verify passes a normal patch: target hit, old body not, no trap delivered, traps cross-checked" {
	daemon_start counterd --threads 4
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.5 --json
	[ "$status" -eq 0 ]
	echo "$output" >"$LP_TMP/out.json"
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["verdict"]')" = pass ]
	(($(json "$LP_TMP/out.json" 'd["verify"]["target_hits"]') > 0))
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["old_hits"]')" -eq 0 ]
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["traps_delivered"]')" -eq 0 ]
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["traps_generated"]')" -eq \
	  "$(json "$LP_TMP/out.json" 'd["verify"]["traps_handled"]')" ]
	# The daemon agrees: compute stopped, compute_v2 runs.
	local a b
	a=$(status_get calls_compute)
	status_wait_change calls_compute_v2
	b=$(status_get calls_compute)
	[ "$a" -eq "$b" ]
	[ "$(status_get wrong)" -eq 0 ]
}

@test "verify of an idle daemon is inconclusive (exit 7) and says the function was not called" {
	daemon_start counterd --idle
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3
	[ "$status" -eq 7 ]
	[[ $output == *"verify    inconclusive"* ]]
	[[ $output == *"livepatch: error: verification inconclusive"*"not called"* ]]
}

@test "verify with --verify-min-calls 0 accepts an idle daemon" {
	daemon_start counterd --idle
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3 \
		--verify-min-calls 0 --json
	[ "$status" -eq 0 ]
	[[ $output == *'"verdict":"pass"'* ]]
}

@test "verify fails (exit 7) when the old body is entered by a path that bypasses the entry" {
	daemon_start counterd --threads 1 --second-entry
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute_alt --target compute_v2 --verify=0.5 --json
	[ "$status" -eq 7 ]
	echo "$output" >"$LP_TMP/out.json"
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["verdict"]')" = fail ]
	(($(json "$LP_TMP/out.json" 'd["verify"]["old_hits"]') > 0))
	[ "$(json "$LP_TMP/out.json" 'd["error"]["code"]')" -eq 7 ]
	# The daemon's own counter of that second entry moved too.
	status_wait_change calls_compute_alt_body
}

@test "verify passes a revert in the other direction: the original code runs again" {
	daemon_start counterd --threads 4
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -q
	[ "$status" -eq 0 ]
	run timeout 60 "$LP" --pid "$DAEMON_PID" --revert compute --verify=0.5 --json
	[ "$status" -eq 0 ]
	echo "$output" >"$LP_TMP/out.json"
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["verdict"]')" = pass ]
	[ "$(json "$LP_TMP/out.json" 'd["verify"]["target_probe"]')" = 0x0 ]
	(($(json "$LP_TMP/out.json" 'd["verify"]["old_hits"]') > 0))
	local a b
	a=$(status_get calls_compute_v2)
	status_wait_change calls_compute
	b=$(status_get calls_compute_v2)
	[ "$a" -eq "$b" ]
}

@test "the text after a verified patch is byte-identical to a plain patch's (probes are gone)" {
	daemon_start counterd --threads 2
	local plain=$DAEMON_PID
	daemon_start counterd --threads 2
	local verified=$DAEMON_PID
	"$LP" --pid "$plain" --func compute --target compute_v2 -q
	"$LP" --pid "$verified" --func compute --target compute_v2 -q --verify=0.3
	local fa fb ga gb
	fa=$("$LP" --pid "$plain" --func compute --target compute_v2 -n -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["function"]["address"])')
	fb=$("$LP" --pid "$verified" --func compute --target compute_v2 -n -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["function"]["address"])')
	# compute_v2's address from the target of the same dry run (compute_v2 -> compute would
	# now be refused: compute jumps to compute_v2, a cycle).
	ga=$("$LP" --pid "$plain" --func compute --target compute_v2 -n -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["target"]["address"])')
	gb=$("$LP" --pid "$verified" --func compute --target compute_v2 -n -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["target"]["address"])')
	[ "$(text_sum "$plain" "$fa" 64)" = "$(text_sum "$verified" "$fb" 64)" ]
	[ "$(text_sum "$plain" "$ga" 64)" = "$(text_sum "$verified" "$gb" 64)" ]
}

@test "traps generated equal traps handled over 5 verified cycles on 16 hot threads" {
	daemon_start counterd --threads 16 --mode slow
	local i args gen=0 handled=0
	for i in $(seq 5); do
		for args in "--func compute_slow --target compute_slow_v2" "--revert compute_slow"; do
			# shellcheck disable=SC2086
			run timeout 60 "$LP" --pid "$DAEMON_PID" $args --verify=0.3 --json
			echo "$output"
			[ "$status" -eq 0 ]
			echo "$output" >"$LP_TMP/out.json"
			[ "$(json "$LP_TMP/out.json" 'd["verify"]["traps_delivered"]')" -eq 0 ]
			local g h
			g=$(json "$LP_TMP/out.json" 'd["verify"]["traps_generated"]')
			h=$(json "$LP_TMP/out.json" 'd["verify"]["traps_handled"]')
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
	command -v capsh >/dev/null || skip "capsh not installed"
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
