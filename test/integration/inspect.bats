#!/usr/bin/env bats
# --list and --symbols: read-only views of a live process, compared with its files.

load ../lib

setup() {
	need_root
}

teardown() {
	daemon_stop || true
}

# changed KEY...: print fields of the --list JSON, one change a line.
list_json() {
	"$LP" --pid "$DAEMON_PID" --list --json |
		"$PY" -c 'import json,sys
d=json.load(sys.stdin)
for c in d["changed"]: print(c["object"], c["symbol"], c["kind"], c.get("target_symbol"), c["bytes"][:2])'
}

addr_of() {	# addr_of FUNC: runtime address of FUNC in the daemon, from a revert's dry run
	"$LP" --pid "$DAEMON_PID" --revert "$1" --dry-run --json |
		json_get 'd["function"]["address"]'
}

@test "--list of an unpatched daemon finds nothing changed" {
	daemon_start counterd --threads 2
	run "$LP" --pid "$DAEMON_PID" --list
	[ "$status" -eq 0 ]
	[[ $output == *"0 function(s) differ from their files"* ]]
	[ -z "$(list_json)" ]
}

@test "--list names a patch (near and far jumps) with its target, and nothing after the revert" {
	daemon_start counterd --threads 2
	"$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -q
	"$LP" --pid "$DAEMON_PID" --func libc.so.6:getenv --target counterd:compute -q
	run list_json
	[ "$status" -eq 0 ]
	[[ $output == *"counterd compute jump counterd:compute_v2 e9"* ]]
	[[ $output == *"libc.so.6 getenv jump counterd:compute ff"* ]]
	[ "$(echo "$output" | wc -l)" -eq 2 ]
	"$LP" --pid "$DAEMON_PID" --revert compute -q
	"$LP" --pid "$DAEMON_PID" --revert libc.so.6:getenv -q
	[ -z "$(list_json)" ]
	status_wait_change calls_compute
	[ "$(status_get wrong)" -eq 0 ]
}

@test "--list shows a foreign int3 as an unknown modification with both bytes" {
	daemon_start counterd --threads 2
	local a
	a=$(addr_of tiny)	# never called by the daemon: safe to scribble on
	python3 - "$DAEMON_PID" "$a" <<'EOF'
import sys
pid, addr = int(sys.argv[1]), int(sys.argv[2], 16)
with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:
    m.seek(addr); m.write(b"\xcc")
EOF
	run "$LP" --pid "$DAEMON_PID" --list
	[ "$status" -eq 0 ]
	[[ $output == *"counterd:tiny at $a: unknown modification at +0x0: [cc"*"file has [f3"* ]]
	# The planner refuses to patch over it, naming the int3.
	run "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -n
	[ "$status" -eq 0 ]
	run "$LP" --pid "$DAEMON_PID" --func tiny --target compute_v2 -n
	[ "$status" -eq 5 ]
}

@test "--list attaches nothing and leaves the text as it was" {
	need_cmd strace strace
	daemon_start counterd --threads 2
	local a before
	a=$(addr_of compute)
	before=$(text_sum "$DAEMON_PID" "$a" 64)
	run strace -f -e trace=ptrace -o "$LP_TMP/strace.log" "$LP" --pid "$DAEMON_PID" --list
	[ "$status" -eq 0 ]
	! grep -q 'ptrace(' "$LP_TMP/strace.log"
	[ "$(text_sum "$DAEMON_PID" "$a" 64)" = "$before" ]
}

@test "--symbols lists OBJECT:SYMBOL lines, filtered by a name or an OBJECT:name prefix" {
	daemon_start counterd --threads 1
	run "$LP" --pid "$DAEMON_PID" --symbols comp
	[ "$status" -eq 0 ]
	[[ $output == *"counterd:compute"* ]]
	[[ $output == *"counterd:compute_v2"* ]]
	! echo "$output" | grep -vE '^[^:]+:comp'
	run "$LP" --pid "$DAEMON_PID" --symbols libc.so.6:mall
	[ "$status" -eq 0 ]
	[[ $output == *"libc.so.6:malloc"* ]]
	! echo "$output" | grep -v '^libc.so.6:mall'
	run "$LP" --pid "$DAEMON_PID" --symbols --json
	[ "$status" -eq 0 ]
	json_check '"counterd:compute" in d["symbols"] and len(d["symbols"]) > 1000' <<<"$output"
	# Data objects are not functions: not listed.
	run "$LP" --pid "$DAEMON_PID" --symbols compute_data
	[ -z "$output" ]
}

@test "--list and --symbols cannot be combined with a patch (exit 2)" {
	run "$LP" --pid 1 --list --func a --target b
	[ "$status" -eq 2 ]
	[[ $output == *"give one of"* ]]
	run "$LP" --pid 1 --symbols x y
	[ "$status" -eq 2 ]
}
