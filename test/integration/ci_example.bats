#!/usr/bin/env bats
# examples/ci/: the CI job script runs for real against a sample daemon and passes, and it
# fails (non-zero, naming the step and livepatch's error) whenever livepatch fails.

bats_require_minimum_version 1.5.0

load ../lib

JOB=$ROOT/examples/ci/patch-job.sh

setup() {
	need_root
	[ -x "$ROOT/livepatch" ] || {
		echo "no $ROOT/livepatch: run make" >&2
		return 1
	}
	[ -x "$LP_BUILD/daemons/counterd" ] || {
		echo "no $LP_BUILD/daemons/counterd: run make daemons" >&2
		return 1
	}
	export LIVEPATCH=$ROOT/livepatch TMPDIR=$BATS_TEST_TMPDIR
	unset LP_FUNC LP_TARGET LP_VERIFY LP_DAEMON LP_FAULT LP_FAULT_SLEEP_MS
}

teardown() {
	# The job stops its daemon itself; make sure none is left if it did not.
	local pid
	pid=$(job_daemon_pid) || return 0
	if _lp_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# The pid of the daemon the last job started, from its log.
job_daemon_pid() {
	sed -nE 's/^patch-job: start: pid ([0-9]+) is ready$/\1/p' <<<"${output:-}" | head -n1 | grep .
}

@test "patch-job.sh patches and reverts counterd, both proven by --verify, and passes" {
	# The job always verifies: on a kernel without BTF it cannot pass.
	if ! kernel_has_btf; then verify_refused; return; fi
	run --separate-stderr timeout 300 "$JOB"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[[ $output == *"patch: applied, verify pass"* ]]
	[[ $output == *"revert: reverted, verify pass"* ]]
	[[ $output == *"stop: exit 0, 0 wrong results"* ]]
	[[ $output == *"patch-job: passed" ]]
	[ -z "$stderr" ]
	# The daemon is gone and the job's files with it.
	local pid
	pid=$(job_daemon_pid)
	! _lp_alive "$pid"
	[ -z "$(find "$BATS_TEST_TMPDIR" -maxdepth 1 -name 'patch-job.*')" ]
}

@test "patch-job.sh takes the daemon and its arguments on the command line" {
	# The job always verifies: on a kernel without BTF it cannot pass.
	if ! kernel_has_btf; then verify_refused; return; fi
	run --separate-stderr timeout 300 "$JOB" "$LP_BUILD/daemons/counterd" --threads 2
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 0 ]
	[[ $output == *"start: $LP_BUILD/daemons/counterd --threads 2"* ]]
	[[ $output == *"patch-job: passed" ]]
}

@test "patch-job.sh fails when livepatch fails: unknown function, exit 4 and the error message" {
	LP_FUNC=nosuch run --separate-stderr timeout 300 "$JOB"
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -ne 0 ]
	[ "$status" -eq 4 ]
	[[ $stderr == *"FAILED at step patch: livepatch exited 4: symbol 'nosuch' not found"* ]]
	[[ $output != *"patch-job: passed"* ]]
	[[ $output != *"revert:"* ]]	# it stopped at the first failure
	! _lp_alive "$(job_daemon_pid)"
}

@test "patch-job.sh fails on exit 7: applied but the verification did not pass" {
	# The job always verifies: on a kernel without BTF it cannot pass.
	if ! kernel_has_btf; then verify_refused; return; fi
	# A second entry into compute_alt bypasses the patched one: the old body still runs.
	LP_FUNC=compute_alt run --separate-stderr timeout 300 "$JOB" \
		"$LP_BUILD/daemons/counterd" --threads 1 --second-entry
	echo "stdout: $output"
	echo "stderr: $stderr"
	[ "$status" -eq 7 ]
	[[ $stderr == *"FAILED at step patch: livepatch exited 7: verification failed"* ]]
	[[ $stderr == *"verdict fail"* ]]
	[[ $output != *"patch-job: passed"* ]]
}

@test "patch-job.sh fails on a refused site (exit 5) and on a missing daemon" {
	LP_FUNC=tiny run --separate-stderr timeout 300 "$JOB"
	[ "$status" -eq 5 ]
	[[ $stderr == *"FAILED at step patch: livepatch exited 5: tiny is too small"* ]]

	run --separate-stderr "$JOB" "$BATS_TEST_TMPDIR/no-such-daemon"
	[ "$status" -eq 1 ]
	[[ $stderr == *"FAILED at step start: no daemon at"* ]]
}

@test "workflow.yml runs the job with the capabilities the README names" {
	local wf=$ROOT/examples/ci/workflow.yml
	[ -f "$wf" ]
	grep -q 'examples/ci/patch-job.sh' "$wf"
	grep -q 'SYS_PTRACE' "$wf"
	grep -q 'seccomp=unconfined' "$wf"
	grep -q -- '--cap-add=BPF' "$wf"
	grep -q -- '--cap-add=PERFMON' "$wf"
	# python3-yaml is not among the dependencies: parsed where it is installed, said where not.
	if "$PY" -c 'import yaml' 2>/dev/null; then
		"$PY" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["jobs"]' "$wf"
		say "workflow.yml parsed as YAML (python3-yaml is installed)"
	else
		say "workflow.yml checked by grep only: python3-yaml is not installed"
	fi
}
