#!/usr/bin/env bats
# schema/livepatch.schema.json describes every --json output. Each test here produces a REAL
# output of livepatch against a sample daemon and validates it; the last tests prove the
# schema is strict (an undocumented member, a wrong enum value or a malformed address fails).
# Validator: python3-jsonschema (Debian), through schema/validate.py.

bats_require_minimum_version 1.5.0

load ../lib

SCHEMA=$ROOT/schema/livepatch.schema.json
VALIDATE=$ROOT/schema/validate.py

setup_file() {
	[[ -x $LP ]] || {
		echo "no $LP: run make first" >&2
		return 1
	}
	# Debian's python3-jsonschema is for /usr/bin/python3; another python3 first in PATH
	# may have its own copy.
	local py
	for py in /usr/bin/python3 python3; do
		if "$py" -c 'import jsonschema' 2>/dev/null; then
			echo "$py" >"$BATS_FILE_TMPDIR/python"
			return 0
		fi
	done
	echo "no python3 with the jsonschema module: apt-get install python3-jsonschema (test/deps.sh)" >&2
	return 1
}

setup() {
	PY=$(<"$BATS_FILE_TMPDIR/python")	# json_get (lib.bash) uses it too
	BG_PIDS=()
	N=0
	unset LP_FAULT LP_FAULT_SLEEP_MS
}

teardown() {
	lp_teardown
}

# valid FILE: FILE validates against the schema; else print why and fail.
valid() {
	local out
	if ! out=$("$PY" "$VALIDATE" --schema "$SCHEMA" "$1" 2>&1); then
		echo "$out" >&2
		echo "the object: $(<"$1")" >&2
		return 1
	fi
}

# invalid FILE: FILE does NOT validate (exit 1, not a broken schema or bad JSON).
invalid() {
	local rc=0
	"$PY" "$VALIDATE" --schema "$SCHEMA" "$1" >"$1.why" 2>&1 || rc=$?
	if ((rc != 1)); then
		echo "expected $1 to be rejected by the schema (exit 1), validate.py exited $rc:" >&2
		cat "$1.why" >&2
		echo "the object: $(<"$1")" >&2
		return 1
	fi
}

# lpj WANT_RC ARGS...: run livepatch ARGS --json; require exit WANT_RC and an empty stderr,
# keep stdout in $OUT (a new file each call) and validate it.
lpj() {
	local want=$1 rc=0
	shift
	N=$((N + 1))
	OUT=$BATS_TEST_TMPDIR/out.$N.json
	timeout 120 "$LP" "$@" --json >"$OUT" 2>"$OUT.err" || rc=$?
	if ((rc != want)); then
		echo "livepatch $* --json exited $rc, expected $want" >&2
		echo "stdout: $(<"$OUT")" >&2
		echo "stderr: $(<"$OUT.err")" >&2
		return 1
	fi
	if [[ -s $OUT.err ]]; then
		echo "livepatch $* --json wrote to stderr (only --verbose may): $(<"$OUT.err")" >&2
		return 1
	fi
	valid "$OUT"
}

expect() {	# expect EXPR VALUE: field EXPR of $OUT is VALUE
	local got
	got=$(json_get "$1" "$OUT")
	[[ $got == "$2" ]] || {
		echo "$1 is '$got', expected '$2' in $(<"$OUT")" >&2
		return 1
	}
}

# edit EXPR FILE: write FILE with the statement EXPR applied to $OUT's object d.
edit() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(d, open(sys.argv[3], "w"))' "$OUT" "$1" "$2"
}

# --- the schema itself ----------------------------------------------------------------

@test "the schema is a valid JSON Schema and closes every object it describes" {
	"$PY" - "$SCHEMA" <<'EOF'
import json, sys, jsonschema
s = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(s)
cls.check_schema(s)
assert s["$schema"] in ("https://json-schema.org/draft/2020-12/schema",
                        "http://json-schema.org/draft-07/schema#"), s["$schema"]
# Every definition with properties is closed.
open_ = [k for k, v in s["$defs"].items()
         if "properties" in v and v.get("additionalProperties") is not False]
assert not open_, "open objects: %s" % open_
EOF
}

@test "--where, --safe, --unload: the contract's example objects are valid, and each rule rejects" {
	# The objects of issue 17 as its contract writes them (THREAD, FRAME, STALE), checked
	# against the schema alone: the reports of the real binary are checked below.
	"$PY" - "$SCHEMA" <<'EOF'
import copy, json, sys, jsonschema
s = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(s)
def ok(name, doc):
    sub = dict(s); sub.pop("oneOf"); sub["$ref"] = "#/$defs/" + name
    errs = list(cls(sub).iter_errors(doc))
    assert not errs, (name, [e.message for e in errs], doc)
def bad(name, doc, why):
    sub = dict(s); sub.pop("oneOf"); sub["$ref"] = "#/$defs/" + name
    assert not cls(sub).is_valid(doc), ("accepted", why, doc)
frame_pc = {"pc": "0x7f0000112233", "symbol": "libc.so.6:read+0x12", "in": None, "kind": "pc", "at": None}
frame_ret = {"pc": "0x401240", "symbol": "insided:compute+0x20", "in": "insided:compute",
             "kind": "return", "at": "0x7f00001fe0e8"}
thread = {"tid": 4251, "comm": "reader", "state": "blocked", "method": "scan", "syscall": "read",
          "inside": ["insided:compute"], "frames": [frame_pc, frame_ret]}
stale = {"tid": 4252, "comm": "spinner", "at": "0x7ffd1234", "value": "0x401240",
         "symbol": "insided:compute+0x20"}
where = {"pid": 4242, "comm": "insided",
         "where": {"functions": [{"name": "insided:compute", "addr": "0x401210", "size": 96}],
                   "threads_total": 9, "threads": [thread], "stale": [stale]}}
safe = {"checks": 3, "waited_ms": 40.1, "ok": True, "blockers": [], "stale": [stale]}
unloaded = {"name": "fix.o", "base": "0x7f0000200000", "size": 12288, "sha256": "ab" * 32,
            "reverted": ["insided:compute"]}
for name, doc in (("frame", frame_pc), ("frame", frame_ret), ("thread", thread), ("stale", stale),
                  ("where_report", where), ("safe", safe), ("unloaded_patch", unloaded)):
    ok(name, doc)
assert cls(s).is_valid(where), "a --where report is not one branch of oneOf"
ok("safe", dict(safe, ok=False, blockers=[thread]))
ok("thread", dict(thread, state="stopped", method="unwind", syscall=None))
ok("thread", dict(thread, state="group_stopped"))
ok("frame", dict(frame_ret, kind="signal"))
ok("frame", dict(frame_ret, at=None, symbol=None))
for k in ("frame", "thread", "stale", "safe", "unloaded_patch"):
    d = copy.deepcopy({"frame": frame_ret, "thread": thread, "stale": stale, "safe": safe,
                       "unloaded_patch": unloaded}[k])
    bad(k, dict(d, new_member=1), "extra member in " + k)
    for m in list(d):
        bad(k, {x: v for x, v in d.items() if x != m}, k + " without " + m)
bad("where_report", dict(where, new_member=1), "extra member")
bad("where_report", {"pid": 4242, "comm": "insided", "where": dict(where["where"], x=1)}, "extra in where")
bad("frame", dict(frame_pc, at="0x10"), "a pc frame has no stack slot")
bad("frame", dict(frame_ret, kind="caller"), "kind enum")
bad("frame", dict(frame_ret, pc=0x401240), "pc as a number")
bad("thread", dict(thread, state="running"), "state enum")
bad("thread", dict(thread, method="guess"), "method enum")
bad("thread", dict(thread, inside=[]), "a thread inside nothing")
bad("thread", dict(thread, frames=[]), "a thread without frames")
bad("safe", dict(safe, blockers=[thread]), "ok with a blocker")
bad("unloaded_patch", dict(unloaded, sha256="abc"), "short sha256")
EOF
}

# --- reports ------------------------------------------------------------------------------

@test "dry run of a patch, of a revert (not patched) and of a revert of a patch: valid" {
	need_root
	daemon_start counterd --threads 2
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 --dry-run
	expect 'd["status"]' planned
	expect 'd["dry_run"]' true
	expect '"transaction" in d' false
	lpj 0 --pid "$DAEMON_PID" --revert compute --dry-run
	expect 'd["status"]' not_patched
	expect 'd["why"]' null
	"$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -q
	lpj 0 --pid "$DAEMON_PID" --revert compute --dry-run
	expect 'd["status"]' planned
	expect 'd["action"]' revert
	expect 'd["sites"][0]["form"]' original
	expect '"previous_target" in d' true
	# A re-point: F already jumps elsewhere.
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_slow_v2 --dry-run
	expect '"previous_target" in d' true
	"$LP" --pid "$DAEMON_PID" --revert compute -q
}

@test "applied patch with its transaction, already_applied, reverted, not_patched: valid" {
	need_root
	daemon_start counterd --threads 4
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2
	expect 'd["status"]' applied
	expect 'd["pairs"]' 1
	expect 'd["skipped"]' '[]'
	expect 'd["transaction"]["rolled_back"]' false
	expect 'len(d["transaction"]["phase_ms"])' 3
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2
	expect 'd["status"]' already_applied
	lpj 0 --pid "$DAEMON_PID" --revert compute
	expect 'd["status"]' reverted
	lpj 0 --pid "$DAEMON_PID" --revert compute
	expect 'd["status"]' not_patched
}

@test "a far target (jmp_abs64) and its revert: valid" {
	need_root
	daemon_start counterd --threads 2
	lpj 0 --pid "$DAEMON_PID" --func libc.so.6:getenv --target counterd:compute
	expect 'd["sites"][0]["form"]' jmp_abs64
	lpj 0 --pid "$DAEMON_PID" --revert libc.so.6:getenv
	expect 'd["status"]' reverted
}

@test "applied patch with --verify=0.3 (verify object, pass) and a verified revert: valid" {
	need_root
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 4
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3
	expect 'd["verify"]["verdict"]' pass
	expect '"error" in d' false
	lpj 0 --pid "$DAEMON_PID" --revert compute --verify=0.3
	expect 'd["verify"]["verdict"]' pass
	expect 'd["verify"]["target_probe"]' 0x0
}

@test "rolled-back transaction (LP_FAULT=tail, exit 6): valid, with the error" {
	need_root
	daemon_start counterd --threads 4
	LP_FAULT='tail' lpj 6 --pid "$DAEMON_PID" --func compute --target compute_v2
	expect 'd["status"]' rolled_back
	expect 'd["transaction"]["rolled_back"]' true
	expect 'd["error"]["code"]' 6
}

@test "inconclusive verify (idle daemon, exit 7): valid, with the verify object and the error" {
	need_root
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --idle
	lpj 7 --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3
	expect 'd["verify"]["verdict"]' inconclusive
	expect 'd["error"]["code"]' 7
}

@test "failed verify (a second entry still runs the old body, exit 7): valid" {
	need_root
	if ! kernel_has_btf; then verify_refused; return; fi
	daemon_start counterd --threads 1 --second-entry
	lpj 7 --pid "$DAEMON_PID" --func compute_alt --target compute_v2 --verify=0.3
	expect 'd["verify"]["verdict"]' fail
	expect 'd["error"]["code"]' 7
}

@test "exec during the transaction: the object livepatch prints is valid (failed, exit 3)" {
	need_root
	local pid rc=0
	daemon_start execd
	pid=$DAEMON_PID
	N=1
	OUT=$BATS_TEST_TMPDIR/out.1.json
	LP_FAULT_SLEEP_MS=400 timeout 60 "$LP" -p "$pid" -f compute -t compute_v2 --json --verbose \
		>"$OUT" 2>"$OUT.err" 3>&- &
	BG_PIDS+=($!)
	# Sync 0 done, the int3 being written: the exec lands mid-transaction, every time.
	wait_point sync0 "${BG_PIDS[0]}" "$OUT.err" || return 1
	kill -USR2 "$pid"
	wait "${BG_PIDS[0]}" || rc=$?
	BG_PIDS=()
	kill -KILL "$pid" 2>/dev/null || true
	# Mid-transaction, livepatch notices the exec (transact.bats proves it at every step):
	# what it printed must be valid, with the code of the failure.
	valid "$OUT"
	((rc == 3)) || fail "livepatch exited $rc, expected 3: $(<"$OUT") $(<"$OUT.err")" || return 1
	expect 'd["error"]["code"]' 3
	if [[ $(json_get '"status" in d' "$OUT") == true ]]; then
		expect 'd["status"]' failed
	fi
}

# --- batches ------------------------------------------------------------------------------

@test "batches: two pairs with one skipped, a plan file, a revert batch, --revert-all: valid" {
	need_root
	daemon_start manyd --threads 2
	"$LP" --pid "$DAEMON_PID" --func f0001 --target g0001 -q
	lpj 0 --pid "$DAEMON_PID" --func f0000 --target g0000 --func f0001 --target g0001 --dry-run
	expect 'd["pairs"]' 2
	expect 'd["skipped"]' "[{'function': 'manyd:f0001', 'reason': 'already_applied'}]"
	lpj 0 --pid "$DAEMON_PID" --func f0000 --target g0000 --func f0001 --target g0001
	expect 'd["status"]' applied
	expect 'len(d["sites"])' 1
	lpj 0 --pid "$DAEMON_PID" --func f0000 --target g0000 --func f0001 --target g0001
	expect 'd["status"]' already_applied
	expect 'len(d["skipped"])' 2
	printf '# two more\nf0002 g0002\n\nf0003 g0003\n' >"$BATS_TEST_TMPDIR/plan"
	lpj 0 --pid "$DAEMON_PID" --plan "$BATS_TEST_TMPDIR/plan" --dry-run
	expect 'd["pairs"]' 2
	expect '[s["target"] for s in d["sites"]]' "['manyd:g0002', 'manyd:g0003']"
	if kernel_has_btf; then
		lpj 0 --pid "$DAEMON_PID" --plan "$BATS_TEST_TMPDIR/plan" --verify=0.5
		expect 'd["verify"]["verdict"]' pass
	else
		lpj 0 --pid "$DAEMON_PID" --plan "$BATS_TEST_TMPDIR/plan"
		say "this kernel has no BTF: the plan's batch is checked without --verify"
	fi
	lpj 0 --pid "$DAEMON_PID" --revert f0000 --revert f0004 --dry-run
	expect 'd["skipped"]' "[{'function': 'manyd:f0004', 'reason': 'not_patched'}]"
	expect 'd["sites"][0]["previous_target_symbol"]' manyd:g0000
	lpj 0 --pid "$DAEMON_PID" --revert f0000 --revert f0004
	expect 'd["status"]' reverted
	lpj 0 --pid "$DAEMON_PID" --revert-all --dry-run
	expect 'len(d["sites"])' 3
	lpj 0 --pid "$DAEMON_PID" --revert-all
	expect 'd["status"]' reverted
	expect 'len(d["sites"])' 3
}

@test "batches: a rolled-back batch (exit 6) and the errors of a batch (2, 4, 5): valid" {
	need_root
	daemon_start manyd --threads 2
	printf 'f0000 g0000\nf0001 g0001\nf0002 g0002\n' >"$BATS_TEST_TMPDIR/plan"
	LP_FAULT='tail' lpj 6 --pid "$DAEMON_PID" --plan "$BATS_TEST_TMPDIR/plan"
	expect 'd["status"]' rolled_back
	expect 'len(d["sites"])' 3
	printf 'f0000 g0000\nf0001\n' >"$BATS_TEST_TMPDIR/bad"
	lpj 2 --pid "$DAEMON_PID" --plan "$BATS_TEST_TMPDIR/bad"
	lpj 2 --pid "$DAEMON_PID" --func f0003 --target g0003 --func f0003 --target g0004
	lpj 4 --pid "$DAEMON_PID" --func f0000 --target g0000 --func nosuch --target g0001
	daemon_start counterd --threads 1
	lpj 5 --pid "$DAEMON_PID" --func compute --target compute_v2 --func tiny --target compute_v2
}

@test "call-site mode: dry run, applied, reverted, with the references left alone: valid" {
	need_root
	[[ -x $LP_BUILD/daemons/callersd ]] || {
		echo "no $LP_BUILD/daemons/callersd: run make daemons" >&2
		return 1
	}
	daemon_start callersd --threads 2
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 --callsites --dry-run
	expect 'd["callsites"]' true
	expect 'set(s["form"] for s in d["sites"])' "{'call_rel32'}"
	expect 'len(d["left_alone"]) > 0' true
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 --callsites
	expect 'd["status"]' applied
	lpj 0 --pid "$DAEMON_PID" --revert compute --callsites --dry-run
	expect 'd["sites"][0]["target"]' null
	lpj 0 --pid "$DAEMON_PID" --revert compute --callsites
	expect 'd["status"]' reverted
	# Entry mode on the same daemon: nothing left alone, callsites false.
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 --dry-run
	expect 'd["callsites"]' false
	expect 'd["left_alone"]' '[]'
}

# --- error-only objects ---------------------------------------------------------------------

@test "error objects: usage (2), no such pid (3), unknown symbol (4), refused site (5): valid" {
	need_root
	daemon_start counterd --threads 2
	lpj 2 --pid "$DAEMON_PID" --func compute
	expect 'list(d)' "['error']"
	expect 'd["error"]["code"]' 2
	lpj 2 --pid "$DAEMON_PID" --bogus-option
	expect 'd["error"]["code"]' 2
	lpj 2 --pid "$DAEMON_PID" --func compute --target compute_v2 --dry-run --verify
	expect 'd["error"]["code"]' 2
	lpj 3 --pid 999999999 --func compute --target compute_v2
	expect 'd["error"]["code"]' 3
	lpj 4 --pid "$DAEMON_PID" --func nosuch --target compute_v2
	expect 'd["error"]["code"]' 4
	lpj 4 --pid "$DAEMON_PID" --func comptue --target compute_v2
	lpj 5 --pid "$DAEMON_PID" --func tiny --target compute_v2
	expect 'd["error"]["code"]' 5
	lpj 5 --pid "$DAEMON_PID" --func tiny --target compute_v2 --dry-run
}

# --- --list and --symbols -------------------------------------------------------------------

@test "--list: nothing changed, then near and far jumps and a foreign int3: valid" {
	need_root
	daemon_start counterd --threads 2
	lpj 0 --pid "$DAEMON_PID" --list
	expect 'len(d["changed"])' 0
	"$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 -q
	"$LP" --pid "$DAEMON_PID" --func libc.so.6:getenv --target counterd:compute -q
	local tiny
	tiny=$("$LP" --pid "$DAEMON_PID" --revert tiny --dry-run --json |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["function"]["address"])')
	"$PY" - "$DAEMON_PID" "$tiny" <<'EOF'
import sys
pid, addr = int(sys.argv[1]), int(sys.argv[2], 16)
with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:   # tiny is never called
    m.seek(addr); m.write(b"\xcc")
EOF
	lpj 0 --pid "$DAEMON_PID" --list
	expect 'len(d["changed"])' 3
	expect 'sorted(c["kind"] for c in d["changed"])' "['jump', 'jump', 'unknown']"
	expect '[c["target_symbol"] for c in d["changed"] if c["symbol"] == "compute"][0]' counterd:compute_v2
	"$LP" --pid "$DAEMON_PID" --revert compute -q
	"$LP" --pid "$DAEMON_PID" --revert libc.so.6:getenv -q
}

@test "--symbols comp, all symbols, and a prefix that matches nothing: valid" {
	need_root
	daemon_start counterd --threads 2
	lpj 0 --pid "$DAEMON_PID" --symbols comp
	expect '"counterd:compute_v2" in d["symbols"]' true
	expect 'all(":comp" in s for s in d["symbols"])' true
	lpj 0 --pid "$DAEMON_PID" --symbols
	expect 'len(d["symbols"]) > 100' true
	lpj 0 --pid "$DAEMON_PID" --symbols libc.so.6:mem
	lpj 0 --pid "$DAEMON_PID" --symbols no_such_prefix_
	expect 'd["symbols"]' '[]'
}

# --- the schema is strict -------------------------------------------------------------------

@test "an extra member fails validation, at every level of every kind of output" {
	need_root
	daemon_start counterd --threads 4
	local x=$BATS_TEST_TMPDIR/x.json v=()
	kernel_has_btf && v=(--verify=0.3) || say "this kernel has no BTF: the verify object's members are not checked here"
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 "${v[@]}"
	edit 'd["new_member"] = 1' "$x" && invalid "$x"
	grep -q "'new_member' was unexpected" "$x.why"
	edit 'd["transaction"]["new_member"] = 1' "$x" && invalid "$x"
	if ((${#v[@]})); then edit 'd["verify"]["new_member"] = 1' "$x" && invalid "$x"; fi
	edit 'd["sites"][0]["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["function"]["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["target"]["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["skipped"].append({"function": "counterd:tiny", "reason": "already_applied", "new_member": 1})' "$x" && invalid "$x"
	edit 'd["skipped"].append({"function": "counterd:tiny", "reason": "already_applied"})' "$x" && valid "$x"
	lpj 4 --pid "$DAEMON_PID" --func nosuch --target compute_v2
	edit 'd["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["error"]["new_member"] = 1' "$x" && invalid "$x"
	lpj 0 --pid "$DAEMON_PID" --list
	edit 'd["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["changed"][0]["new_member"] = 1' "$x" && invalid "$x"
	lpj 0 --pid "$DAEMON_PID" --symbols comp
	edit 'd["new_member"] = 1' "$x" && invalid "$x"
	"$LP" --pid "$DAEMON_PID" --revert compute -q
}

@test "wrong types, enum values, addresses and byte strings fail validation" {
	need_root
	daemon_start counterd --threads 2
	local x=$BATS_TEST_TMPDIR/x.json
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 --dry-run
	valid "$OUT"
	edit 'd["status"] = "done"' "$x" && invalid "$x"
	edit 'd["action"] = "unpatch"' "$x" && invalid "$x"
	edit 'd["sites"][0]["form"] = "jmp"' "$x" && invalid "$x"
	edit 'd["sites"][0]["emulation"] = "step"' "$x" && invalid "$x"
	# Upper-case hex digits: forced, since an address made of 0-9 only would not change.
	edit 'd["function"]["address"] = "0x" + d["function"]["address"][2:-2] + "AB"' "$x" && invalid "$x"
	edit 'd["function"]["address"] = int(d["function"]["address"], 16)' "$x" && invalid "$x"
	edit 'd["sites"][0]["old_bytes"] = d["sites"][0]["old_bytes"].replace(" ", "")' "$x" && invalid "$x"
	edit 'd["sites"][0]["new_bytes"] += " "' "$x" && invalid "$x"
	edit 'd["why"] = None' "$x" && invalid "$x"	# something is written: why is a string
	edit 'd["function"]["symbol"] = None' "$x" && invalid "$x"
	edit 'del d["target"]' "$x" && invalid "$x"	# a patch names its target
	edit 'd["sites"][0]["target"] = None' "$x" && invalid "$x"	# ... and so does each site
	edit 'd["sites"][0]["previous_target_symbol"] = d["function"]["address"]' "$x" && invalid "$x"
	edit 'd["skipped"] = [{"function": "counterd:tiny", "reason": "not_patched"}]' "$x" && invalid "$x"
	edit 'del d["pairs"]' "$x" && invalid "$x"
	edit 'd["left_alone"] = [{"address": "0x10", "where": "counterd:main+0x4", "kind": "tail_call"}]' "$x" && invalid "$x"	# entry mode
	edit 'd["callsites"] = True; d["left_alone"] = [{"address": "0x10", "where": "counterd:main+0x4", "kind": "jump"}]' "$x" && invalid "$x"
	edit 'd["sites"][0]["form"] = "call_rel32"' "$x" && invalid "$x"	# a call site outside call-site mode
	edit 'd["dry_run"] = "yes"' "$x" && invalid "$x"
	edit 'd["pid"] = str(d["pid"])' "$x" && invalid "$x"
	local v=()
	kernel_has_btf && v=(--verify=0.3) || say "this kernel has no BTF: the verify object's types are not checked here"
	lpj 0 --pid "$DAEMON_PID" --func compute --target compute_v2 "${v[@]}"
	if ((${#v[@]})); then
		edit 'd["verify"]["verdict"] = "ok"' "$x" && invalid "$x"
		edit 'd["verify"]["verdict"] = "fail"' "$x" && invalid "$x"	# exit 7 needs its error
	fi
	edit 'd["transaction"]["phase_ms"].append(0.1)' "$x" && invalid "$x"
	edit 'd["status"] = "rolled_back"' "$x" && invalid "$x"	# needs error 6 and rolled_back
	lpj 0 --pid "$DAEMON_PID" --list
	edit 'd["changed"][0]["kind"] = "patch"' "$x" && invalid "$x"
	edit 'd["changed"][0]["target_symbol"] = 5' "$x" && invalid "$x"
	edit 'del d["changed"][0]["target"]' "$x" && invalid "$x"	# a jump has its target
	lpj 2 --pid "$DAEMON_PID" --func compute
	edit 'd["error"]["code"] = "2"' "$x" && invalid "$x"
	edit 'd["error"]["code"] = 0' "$x" && invalid "$x"
	edit 'del d["error"]["message"]' "$x" && invalid "$x"
	"$LP" --pid "$DAEMON_PID" --revert compute -q
}

@test "--load: dry run, applied, reused, rolled back (unmapped or kept), --list with loaded patches, refusals: valid" {
	local p=$LP_BUILD/patches x obj
	daemon_start patchd --threads 4
	lpj 0 --pid "$DAEMON_PID" --load "$p/gcc-O2/libc.o" --func format_id --target format_id_fixed --dry-run
	expect 'd["load"][0]["status"]' planned
	lpj 0 --pid "$DAEMON_PID" --load "$p/gcc-O2/libc.o" --func format_id --target format_id_fixed
	expect 'd["load"][0]["status"]' loaded
	x=$OUT
	edit 'd["load"][0]["status"] = "mapped"' "$x" && invalid "$x"
	edit 'd["load"][0]["sha256"] = "abc"' "$x" && invalid "$x"
	edit 'd["load"][0]["symbols"][0]["how"] = "guessed"' "$x" && invalid "$x"
	edit 'del d["load"][0]["link_ms"]' "$x" && invalid "$x"
	edit 'd["transaction"]["load_kept"] = True' "$x" && invalid "$x"	# kept needs a roll-back
	lpj 0 --pid "$DAEMON_PID" --load "$p/gcc-O2/libc.o" --func format_id --target format_id_fixed
	expect 'd["load"][0]["status"]' already_loaded
	lpj 0 --pid "$DAEMON_PID" --list
	expect 'd["load"][0]["users"]' 1
	x=$OUT
	edit 'del d["load"][0]["functions"]' "$x" && invalid "$x"
	edit 'del d["load"]' "$x" && invalid "$x"
	lpj 0 --pid "$DAEMON_PID" --revert format_id
	obj=$BATS_TEST_TMPDIR/s.o
	cp "$p/gcc-O2/static_call.o" "$obj"
	LP_FAULT=load lpj 6 --pid "$DAEMON_PID" --load "$obj" --func handle_request --target handle_request_fixed
	expect 'd["transaction"]["load_kept"]' false
	LP_FAULT=head lpj 6 --pid "$DAEMON_PID" --load "$obj" --func handle_request --target handle_request_fixed
	lpj 0 --pid "$DAEMON_PID" --list
	lpj 5 --pid "$DAEMON_PID" --load "$p/refuse/tls.o" --func handle_request --target handle_request_fixed
	lpj 4 --pid "$DAEMON_PID" --load "$p/refuse/unresolved.o" --func handle_request --target handle_request_fixed
}

# --- who is inside: --where, --safe, --unload (issue 17) -------------------------------------

@test "--where: every worker inside compute_worker, none inside tiny, two functions: valid" {
	need_root
	daemon_start counterd --threads 2
	local x=$BATS_TEST_TMPDIR/x.json
	lpj 0 --pid "$DAEMON_PID" --where compute_worker
	expect 'd["where"]["functions"][0]["name"]' counterd:compute_worker
	expect 'len(d["where"]["threads"])' 2
	expect 'sorted(set(i for t in d["where"]["threads"] for i in t["inside"]))' "['counterd:compute_worker']"
	expect 'all(f["kind"] == "pc" for t in d["where"]["threads"] for f in t["frames"][:1])' true
	edit 'd["where"]["threads"][0]["state"] = "running"' "$x" && invalid "$x"
	edit 'd["where"]["threads"][0]["frames"][0]["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["where"]["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["new_member"] = 1' "$x" && invalid "$x"
	lpj 0 --pid "$DAEMON_PID" --where tiny
	expect 'd["where"]["threads"]' '[]'
	lpj 0 --pid "$DAEMON_PID" --where compute_worker tiny
	expect 'len(d["where"]["functions"])' 2
	lpj 4 --pid "$DAEMON_PID" --where nosuch
	lpj 2 --pid "$DAEMON_PID" --where tiny --func compute --target compute_v2
}

@test "--safe: no thread inside (one check), every worker inside (exit 6, blockers), a safe revert: valid" {
	need_root
	daemon_start counterd --threads 2
	local x=$BATS_TEST_TMPDIR/x.json
	# The workers never leave compute_worker: refused, rolled back, both named.
	lpj 6 --pid "$DAEMON_PID" --func compute_worker --target compute_v2 --safe --timeout 200
	expect 'd["status"]' rolled_back
	expect 'd["safe"]["ok"]' false
	expect 'len(d["safe"]["blockers"])' 2
	expect 'd["error"]["code"]' 6
	edit 'del d["error"]' "$x" && invalid "$x"
	edit 'd["safe"]["ok"] = True' "$x" && invalid "$x"	# ok with blockers
	edit 'd["safe"]["blockers"][0]["method"] = "guess"' "$x" && invalid "$x"
	# Only --mode slow calls compute_slow: no thread is inside, one check passes.
	lpj 0 --pid "$DAEMON_PID" --func compute_slow --target compute_slow_v2 --safe
	expect 'd["status"]' applied
	expect 'd["safe"]["ok"]' true
	expect 'd["safe"]["checks"] >= 1' true
	lpj 0 --pid "$DAEMON_PID" --revert compute_slow --safe
	expect 'd["status"]' reverted
	expect 'd["safe"]["blockers"]' '[]'
}

@test "--unload: a used patch (its jump reverted, then unmapped), --revert-all --unload, no such patch: valid" {
	need_root
	local p=$LP_BUILD/patches x=$BATS_TEST_TMPDIR/x.json
	daemon_start patchd --threads 4
	lpj 0 --pid "$DAEMON_PID" --load "$p/gcc-O2/libc.o" --func format_id --target format_id_fixed
	lpj 0 --pid "$DAEMON_PID" --unload libc.o
	expect 'd["action"]' revert
	expect 'd["unloaded"][0]["name"]' libc.o
	expect 'd["unloaded"][0]["reverted"]' "['patchd:format_id']"
	expect 'd["safe"]["ok"]' true
	edit 'd["unloaded"][0]["sha256"] = "abc"' "$x" && invalid "$x"
	edit 'd["unloaded"][0]["new_member"] = 1' "$x" && invalid "$x"
	edit 'd["action"] = "patch"' "$x" && invalid "$x"
	lpj 0 --pid "$DAEMON_PID" --list
	expect 'd["load"]' '[]'
	lpj 4 --pid "$DAEMON_PID" --unload libc.o
	lpj 0 --pid "$DAEMON_PID" --load "$p/gcc-O2/libc.o" --func format_id --target format_id_fixed
	lpj 0 --pid "$DAEMON_PID" --revert-all --unload
	expect 'len(d["unloaded"])' 1
	lpj 0 --pid "$DAEMON_PID" --list
	expect 'd["changed"]' '[]'
	expect 'd["load"]' '[]'
	lpj 2 --pid "$DAEMON_PID" --unload
}
