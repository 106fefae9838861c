#!/usr/bin/env bats
# Call-site mode: `call F` -> `call G` at every direct call site; other references
# (a register, memory, a tail call) keep reaching F. callersd counts, per caller,
# results that came from compute (old) and from compute_v2 (new).

load ../lib

setup() {
	need_root
}

teardown() {
	daemon_stop || true
}

@test "direct callers move to G, pointer, memory and tail-call callers stay on F" {
	daemon_start callersd --threads 4
	run timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --callsites --in callersd --json
	[ "$status" -eq 0 ]
	echo "$output" >"$LP_TMP/o.json"
	python3 - "$LP_TMP/o.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["callsites"] is True
assert d["status"] == "applied", d["status"]
where = sorted(s["function"] for s in d["sites"])
assert any(w.startswith("callersd:caller_a+") for w in where), where
assert any(w.startswith("callersd:caller_b+") for w in where), where
assert all(s["form"] == "call_rel32" and s["emulation"] == "call" for s in d["sites"])
kinds = sorted((o["kind"], o["where"].split("+")[0]) for o in d["left_alone"])
assert ("tail_call", "callersd:caller_tail") in kinds, kinds
assert ("pointer", "callersd:caller_mem") in kinds, kinds
EOF
	stays_put 300 a_old b_old reg_new mem_new tail_new
	grows a_new && grows b_new && grows reg_old && grows mem_old && grows tail_old
	[ "$(status_get wrong)" -eq 0 ]
}

@test "--revert F --callsites puts every call F back; --list sees the redirected calls meanwhile" {
	daemon_start callersd --threads 4
	"$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --callsites --in callersd -q
	run "$LP" --pid "$DAEMON_PID" --list
	[[ $output == *"callersd:caller_a at "*": the call at +0x"*" goes to callersd:compute_v2 instead of callersd:compute"* ]]
	run timeout 60 "$LP" --pid "$DAEMON_PID" --revert compute --callsites
	[ "$status" -eq 0 ]
	[[ $output == *reverted* ]]
	stays_put 300 a_new b_new
	grows a_old
	run "$LP" --pid "$DAEMON_PID" --list
	[[ $output == *"0 function(s) differ"* ]]
	run "$LP" --pid "$DAEMON_PID" --revert compute --callsites
	[ "$status" -eq 0 ]
	[[ $output == *"not patched"* ]]
}

@test "entry mode, by contrast, moves every caller (register, memory and tail call too)" {
	daemon_start callersd --threads 2
	"$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -q
	stays_put 300 a_old reg_old mem_old tail_old
	grows tail_new
}

@test "call-site torture: 6 cycles on 16 hot threads emulate calls, nothing lost" {
	daemon_start callersd --threads 16
	local i emulated=0 out
	for i in $(seq 6); do
		out=$(timeout 60 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --callsites --in callersd --json)
		emulated=$((emulated + $(python3 -c 'import json,sys; t=json.loads(sys.argv[1])["transaction"]; print(t["traps_emulated"])' "$out")))
		out=$(timeout 60 "$LP" --pid "$DAEMON_PID" --revert compute --callsites --in callersd --json)
		emulated=$((emulated + $(python3 -c 'import json,sys; t=json.loads(sys.argv[1])["transaction"]; print(t["traps_emulated"])' "$out")))
	done
	echo "call emulations: $emulated"
	((emulated > 0))
	[ "$(status_get wrong)" -eq 0 ]
	daemon_stop
	[ "${DAEMON_EXIT[$DAEMON_PID]}" -eq 0 ]
}

@test "a function nobody calls directly is refused in call-site mode (exit 5)" {
	daemon_start callersd --threads 1
	run "$LP" --pid "$DAEMON_PID" --func compute_v2 --target compute --callsites --in callersd
	[ "$status" -eq 5 ]
	[[ $output == *"no direct call to compute_v2 found in callersd"* ]]
}

@test "--in needs --callsites, and an unknown --in object is named" {
	daemon_start callersd --threads 1
	run "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --in callersd
	[ "$status" -eq 2 ]
	run "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --callsites --in nosuch.so
	[ "$status" -eq 4 ]
	[[ $output == *"--in nosuch.so: no such object"* ]]
}
