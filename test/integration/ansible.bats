#!/usr/bin/env bats
# Issue 19: the Ansible module (ansible/library/livepatch.py) drives livepatch against the
# sample daemon counterd on localhost (`ansible-playbook -i localhost, -c local`): check mode
# writes nothing, a patch switches the daemon's counters and a second one is changed=false,
# a revert switches them back, a bad name fails the task with livepatch's message and exit
# status; the example playbooks roll out and revert; ansible-doc renders the module and its
# documentation matches its argument_spec. Needs root, `make`, `make daemons` and Debian's
# ansible-core. Each playbook run costs seconds (Ansible's start-up), so the tests run few.

bats_require_minimum_version 1.5.0
load ../lib

PAIRS='[{"func": "compute", "target": "compute_v2"}]'

setup_file() {
	lp_setup_file
	need_cmd ansible-playbook ansible-core
}

setup() {
	need_root
	# Ansible writes under HOME and its temp directories: each test its own (parallel-safe).
	export HOME=$BATS_TEST_TMPDIR/home ANSIBLE_LOCAL_TEMP=$BATS_TEST_TMPDIR/ansible-local \
		ANSIBLE_REMOTE_TEMP=$BATS_TEST_TMPDIR/ansible-remote \
		ANSIBLE_CONFIG=$BATS_TEST_TMPDIR/ansible.cfg ANSIBLE_LIBRARY=$ROOT/ansible/library \
		ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 \
		ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_PIPELINING=1
	mkdir -p "$HOME"
	: >"$ANSIBLE_CONFIG"
}

teardown() {
	lp_teardown
}

# play PLAYBOOK [ARGS...]: ansible-playbook PLAYBOOK against localhost; sets PLAY_OUT and
# PLAY_RC (bounded by a timeout: a hang fails the test, not the suite), and writes the
# results a tasks_yml playbook printed to results.json.
play() {
	PLAY_RC=0
	PLAY_OUT=$(timeout -k 5 600 ansible-playbook -i localhost, -c local "$@" 2>&1) || PLAY_RC=$?
	echo "ansible-playbook $*: exit $PLAY_RC"
	echo "$PLAY_OUT"
	"$PY" -c 'import json, sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("\"msg\": \"RESULTS "):
        print(json.loads(line[len("\"msg\": "):])[len("RESULTS "):])' \
		<<<"$PLAY_OUT" >"$BATS_TEST_TMPDIR/results.json"
}

# tasks_yml NAME TASKS: a playbook NAME.yml in the test directory, one play on localhost with
# TASKS (YAML, indented for the tasks list) that register results r1, r2, ..., and a last
# task that prints them all as one JSON object {"r1": ..., ...} (debug runs on the
# controller: no module, no Python start-up), which play saves in results.json.
tasks_yml() {
	local f=$BATS_TEST_TMPDIR/$1.yml
	cat >"$f" <<-EOF
		- hosts: all
		  gather_facts: false
		  tasks:
		$2
		    - name: print the results
		      debug:
		        msg: "RESULTS {{ dict(names | zip(query('vars', *names))) | to_json }}"
		      vars:
		        names: "{{ query('varnames', '^r[0-9]+\$') }}"
	EOF
	echo "$f"
}

# r N EXPR: Python EXPR over the result rN (d) the last playbook saved.
r() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[3]))["r" + sys.argv[1]]
v = eval(sys.argv[2])
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' \
		"$1" "$2" "$BATS_TEST_TMPDIR/results.json"
}

# rjson N: the result rN as JSON on stdout (for json_check).
rjson() {
	"$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[2]))["r" + sys.argv[1]]))' \
		"$1" "$BATS_TEST_TMPDIR/results.json"
}

# the_task ARGS: one livepatch task on the daemon, compute -> compute_v2, with ARGS (YAML
# lines at the module's indentation) and registered as r$N.
the_task() {	# the_task N [EXTRA]
	cat <<-EOF
		    - livepatch:
		        pid: $DAEMON_PID
		        pairs: $PAIRS
		        livepatch_path: $LP
		${2:-}
		      register: r$1
	EOF
}

@test "check mode reports the bytes it would write (--diff) and changes nothing" {
	daemon_start counterd --threads 1
	pb=$(tasks_yml check "$(the_task 1)")
	play "$pb" --check --diff
	[ "$PLAY_RC" -eq 0 ]
	[ "$(r 1 'd["changed"]')" = true ]
	[ "$(r 1 'd["status"]')" = planned ]
	[ "$(r 1 'd["report"]["dry_run"]')" = true ]
	[[ " $(r 1 'd["cmd"]') " == *"--dry-run"* ]]
	addr=$(r 1 'd["sites"][0]["address"]')
	old=$(r 1 'd["sites"][0]["old_bytes"]')
	new=$(r 1 'd["sites"][0]["new_bytes"]')
	[ "$new" = "$(r 1 'd["report"]["sites"][0]["new_bytes"]')" ]
	# The diff: the function with its bytes before and after.
	[[ $PLAY_OUT == *"-pid $DAEMON_PID counterd:compute at $addr: $old"* ]]
	[[ $PLAY_OUT == *"+pid $DAEMON_PID counterd:compute at $addr: $new (jmp to counterd:compute_v2)"* ]]
	# Nothing written: the site holds the old bytes, the calls still reach compute only.
	[ "$(mem_bytes "$DAEMON_PID" "$addr" 5)" = "$old" ]
	calls_only calls_compute calls_compute_v2
	untraced
}

@test "a patch switches the daemon to the new code, a second one is changed=false; the revert undoes it" {
	daemon_start counterd --threads 1
	pb=$(tasks_yml apply "$(the_task 1)
$(the_task 2)")
	play "$pb"
	[ "$PLAY_RC" -eq 0 ]
	[ "$(r 1 'd["changed"]')" = true ]
	[ "$(r 1 'd["status"]')" = applied ]
	[ "$(r 1 'd["rc"]')" -eq 0 ]
	[ "$(r 1 'd["report"]["transaction"]["rolled_back"]')" = false ]
	[ "$(r 2 'd["changed"]')" = false ]
	[ "$(r 2 'd["status"]')" = already_applied ]
	[ "$(r 2 'len(d["sites"])')" -eq 0 ]
	[[ $PLAY_OUT == *"localhost "*": ok=3 "*" changed=1 "*" failed=0 "* ]]
	addr=$(r 1 'd["sites"][0]["address"]')
	old=$(r 1 'd["sites"][0]["old_bytes"]')
	[ "$(mem_bytes "$DAEMON_PID" "$addr" 5)" = "$(r 1 'd["sites"][0]["new_bytes"]')" ]
	switched calls_compute_v2 calls_compute

	# state=reverted with the same pairs, then an explicit revert that finds nothing to do.
	pb=$(tasks_yml revert "$(the_task 3 '        state: reverted')
    - livepatch:
        pid: $DAEMON_PID
        revert: [compute]
        livepatch_path: $LP
      register: r4")
	play "$pb" --diff
	[ "$PLAY_RC" -eq 0 ]
	[ "$(r 3 'd["changed"]')" = true ]
	[ "$(r 3 'd["status"]')" = reverted ]
	[ "$(r 4 'd["changed"]')" = false ]
	[ "$(r 4 'd["status"]')" = not_patched ]
	[[ $PLAY_OUT == *"+pid $DAEMON_PID counterd:compute at $addr: $old (original)"* ]]
	[ "$(mem_bytes "$DAEMON_PID" "$addr" 5)" = "$old" ]
	calls_only calls_compute calls_compute_v2
	alive
	[ "$(status_get wrong)" -eq 0 ]
}

@test "a bad function name fails the task with livepatch's message and exit status, nothing written" {
	daemon_start counterd --threads 1
	PAIRS='[{"func": "nosuch", "target": "compute_v2"}]'
	pb=$(tasks_yml bad "$(the_task 1)")
	play "$pb"
	[ "$PLAY_RC" -eq 2 ]	# ansible-playbook: a host failed
	# The task's result, as the default callback prints it: fatal: [localhost]: FAILED! => {...}
	line=$(grep -m1 '^fatal: \[localhost\]: FAILED! => ' <<<"$PLAY_OUT")
	echo "${line#*=> }" >"$BATS_TEST_TMPDIR/fatal.json"
	[ "$(json_get 'd["rc"]' "$BATS_TEST_TMPDIR/fatal.json")" -eq 4 ]
	[[ $(json_get 'd["msg"]' "$BATS_TEST_TMPDIR/fatal.json") == "symbol 'nosuch' not found in process $DAEMON_PID"* ]]
	[ "$(json_get 'd["changed"]' "$BATS_TEST_TMPDIR/fatal.json")" = false ]
	[ "$(json_get 'd["report"]["error"]["code"]' "$BATS_TEST_TMPDIR/fatal.json")" -eq 4 ]
	[[ $PLAY_OUT == *"failed=1"* ]]
	"$LP" --pid "$DAEMON_PID" --list --json | json_check 'd["changed"] == []'
}

@test "the example playbooks: rollout.yml copies a patch, loads it with a verified canary; revert.yml reverts" {
	if ! kernel_has_btf; then verify_refused; return; fi
	patch=$LP_BUILD/patches/gcc-O2/lib.o
	[[ -r $patch ]] || fail "no $patch: run make patches"
	# counterd-lib: F in libsample.so; the patch's compute_fixed calls compute_v2, which counts.
	daemon_start counterd-lib --threads 1
	vars=$(printf '{"lp_hosts": "all", "lp_pid": %d, "lp_pairs": %s, "lp_patch": "%s", "lp_patch_dir": "%s", "lp_livepatch": "%s", "lp_canary_verify": 0.5, "ansible_become": false}' \
		"$DAEMON_PID" '[{"func": "libsample.so:compute", "target": "compute_fixed"}]' "$patch" \
		"$BATS_TEST_TMPDIR/host" "$LP")
	play "$ROOT/ansible/playbooks/rollout.yml" -e "$vars"
	[ "$PLAY_RC" -eq 0 ]
	[[ $PLAY_OUT == *"PLAY [Canary batch, verified]"*'"msg": "applied"'* ]]
	[[ $PLAY_OUT == *"PLAY [The rest, in batches]"*"skipping: no hosts matched"* ]]
	[[ $PLAY_OUT == *" failed=0 "* ]]
	cmp "$patch" "$BATS_TEST_TMPDIR/host/lib.o"
	switched calls_compute_v2 calls_compute
	"$LP" --pid "$DAEMON_PID" --list --json |
		json_check '[p["name"] for p in d["load"]] == ["lib.o"]' 'len(d["changed"]) == 1'
	play "$ROOT/ansible/playbooks/revert.yml" -e "$vars"
	[ "$PLAY_RC" -eq 0 ]
	[[ $PLAY_OUT == *'"msg": "reverted"'* ]]
	calls_only calls_compute calls_compute_v2
	[ "$(status_get wrong)" -eq 0 ]
}

@test "exe: multi-process mode patches every process of the executable, then reverts them" {
	if ! "$LP" --help 2>&1 | grep -q -- '--exe'; then
		skip "this livepatch has no multi-process mode (--exe, issue 18) yet"
	fi
	# A copy of counterd of this test's own: --exe selects by the file, and the other tests
	# (and suites) run build/daemons/counterd meanwhile.
	mkdir -p "$BATS_TEST_TMPDIR/build/daemons"
	cp "$LP_BUILD/daemons/counterd" "$BATS_TEST_TMPDIR/build/daemons/"
	LP_BUILD=$BATS_TEST_TMPDIR/build daemon_start counterd --threads 1
	first=$DAEMON_PID first_status=$DAEMON_STATUS
	LP_BUILD=$BATS_TEST_TMPDIR/build daemon_start counterd --threads 1
	exe=$BATS_TEST_TMPDIR/build/daemons/counterd
	pb=$(tasks_yml fleet "    - livepatch:
        exe: $exe
        pairs: $PAIRS
        livepatch_path: $LP
      register: r1
    - livepatch:
        exe: $exe
        pairs: $PAIRS
        livepatch_path: $LP
      register: r2
    - livepatch:
        exe: $exe
        pairs: $PAIRS
        state: reverted
        livepatch_path: $LP
      register: r3")
	play "$pb"
	[ "$PLAY_RC" -eq 0 ]
	rjson 1 | json_check 'd["changed"] is True' \
		"sorted(p['pid'] for p in d['processes']) == sorted([$first, $DAEMON_PID])" \
		'[p["outcome"] for p in d["processes"]] == ["applied", "applied"]' \
		'd["summary"]["counts"] == {"applied": 2}' 'd["summary"]["exit_code"] == 0' \
		'all(p["report"]["status"] == "applied" for p in d["processes"])' \
		'sorted(s["pid"] for s in d["sites"]) == sorted(p["pid"] for p in d["processes"])'
	rjson 2 | json_check 'd["changed"] is False' \
		'[p["outcome"] for p in d["processes"]] == ["already_applied", "already_applied"]'
	rjson 3 | json_check 'd["changed"] is True' \
		'[p["outcome"] for p in d["processes"]] == ["reverted", "reverted"]'
	calls_only calls_compute calls_compute_v2
	DAEMON_PID=$first DAEMON_STATUS=$first_status calls_only calls_compute calls_compute_v2
}

@test "ansible-doc renders the module: options, examples and return values" {
	run --separate-stderr timeout 120 ansible-doc -M "$ROOT/ansible/library" livepatch
	echo "$output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[[ $output == "> LIVEPATCH "* ]]
	for o in pid all exe pairs plan load revert revert_all callsites verify safe atomic state \
		timeout livepatch_path; do
		grep -qE "^[-=] $o\$" <<<"$output" || fail "option $o is not rendered"
	done
	[[ $output == *"EXAMPLES:"* && $output == *"RETURN VALUES:"* ]]
	[[ $stderr != *"ERROR"* && $stderr != *"WARNING"* ]]
}

@test "the module compiles, and its DOCUMENTATION matches its argument_spec" {
	PYTHONPYCACHEPREFIX=$BATS_TEST_TMPDIR/pycache run /usr/bin/python3 -m py_compile "$ROOT/ansible/library/livepatch.py"
	[ "$status" -eq 0 ]
	run /usr/bin/python3 "$ROOT/test/ansible/check_module.py"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"ok: DOCUMENTATION options match argument_spec"* ]]
	[[ ${lines[-1]} == "all passed" ]]
}
