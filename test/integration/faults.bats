#!/usr/bin/env bats
# Roll-back (docs/design.md §4): a failure at any of the six steps of the transaction (LP_FAULT=int3,
# sync1, tail, sync2, head, sync3) and SIGTERM, SIGINT or SIGHUP to livepatch at any moment
# leave the process exactly as it was (exit 6, "rolled_back", the function's bytes identical)
# or fully patched (exit 0), never anything else, and the daemon keeps running and counting.
# SIGKILL is not tested here: it can leave an int3 behind (a documented limit). Also: the
# attachment is held by a thread of livepatch, and every daemon thread is free when it ends.
# Needs root (ptrace), `make` and `make daemons`. LP_BIN overrides the livepatch binary.

bats_require_minimum_version 1.5.0
load ../helpers
load ../lp_run

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
LP=${LP_BIN:-$ROOT/livepatch}

setup_file() {
	lp_setup_file
}

setup() {
	BG_PIDS=()
	# shellcheck disable=SC2034 # LP_TMP: helpers.bash (text_sum) uses it
	LP_TMP=$BATS_TEST_TMPDIR
}

teardown() {
	lp_teardown
}

alive() {
	_lp_alive "$DAEMON_PID" || fail "daemon $DAEMON_PID is dead; log: $(tail -c 500 "$DAEMON_LOG")"
	local tracer
	tracer=$(awk '$1 == "TracerPid:" { print $2 }' "/proc/$DAEMON_PID/status")
	[[ $tracer == 0 ]] || fail "daemon $DAEMON_PID is still traced by $tracer after livepatch exited"
}

stop_clean() {
	local pid=$DAEMON_PID w
	daemon_stop
	[[ ${DAEMON_EXIT[$pid]} == 0 ]] ||
		fail "daemon $pid exited with ${DAEMON_EXIT[$pid]} (128+N: killed by signal N); log: $(tail -c 500 "$DAEMON_LOG")"
	w=$(status_get wrong)
	[[ $w == 0 ]] || fail "wrong is $w: results of neither compute_slow nor compute_slow_v2"
}

# start_counterd: counterd, 8 threads in compute_slow; sets ADDR (compute_slow) and SUM0
# (sha256 of its first 32 bytes, as the file has them).
start_counterd() {
	daemon_start counterd --threads 8 --mode slow
	lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 --dry-run
	expect_rc 0
	ADDR=$(json address)
	SUM0=$(text_sum "$DAEMON_PID" "$ADDR" 32)
}

# expect_original: compute_slow holds its original bytes and gets every call.
expect_original() {
	[[ $(text_sum "$DAEMON_PID" "$ADDR" 32) == "$SUM0" ]] ||
		fail "compute_slow's bytes differ from the original after: $LP_CMD" "stdout: $LP_OUT"
	alive
	calls_only calls_compute_slow calls_compute_slow_v2
}

# fault_at STEP: a failure injected at STEP rolls everything back.
fault_at() {
	start_counterd
	LP_FAULT=$1 lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2
	expect_rc 6
	expect_status rolled_back
	[[ $LP_OUT == *'"rolled_back":true'* ]] || fail "transaction.rolled_back is not true: $LP_OUT"
	[[ $(json code) == 6 ]] || fail "error.code is $(json code), expected 6: $LP_OUT"
	[[ $(json message) == *"$1"* ]] || fail "the error does not name the step $1: $(json message)"
	expect_original
	# And the function can still be patched and reverted afterwards.
	lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2
	expect_rc 0
	calls_only calls_compute_slow_v2 calls_compute_slow
	lp -p "$DAEMON_PID" -r compute_slow
	expect_rc 0
	expect_original
	stop_clean
}

@test "LP_FAULT=sync0: failure before anything is written: status rolled_back, text identical" {
	fault_at sync0
}

@test "SIGINT during sync 0 (nothing written): exit 6 with status rolled_back, consistently" {
	local i
	start_counterd
	patched_sum
	# LP_FAULT_SLEEP_MS=200 holds livepatch 200 ms after sync 0, before the first write.
	for i in 1 2 3 4 5; do
		signal_at INT 100
		[[ $(json status) == rolled_back && $LP_OUT == *'"rolled_back":true'* ]] ||
			fail "SIGINT in sync 0: $LP_OUT"
		[[ $(json code) == 6 ]] || fail "error.code is $(json code): $LP_OUT"
	done
	stop_clean
}

@test "LP_FAULT=int3: failure right after the breakpoint is written rolls back, text identical" {
	fault_at int3
}

@test "LP_FAULT=sync1: failure after the first sync rolls back, text identical" {
	fault_at sync1
}

@test "LP_FAULT=tail: failure after the tail is written rolls back, text identical" {
	fault_at tail
}

@test "LP_FAULT=sync2: failure after the second sync rolls back, text identical" {
	fault_at sync2
}

@test "LP_FAULT=head: failure after the head is written rolls back, text identical" {
	fault_at head
}

@test "LP_FAULT=sync3: failure after the last sync rolls back, text identical" {
	fault_at sync3
}

# signal_at SIG DELAY_MS|after: run a patch with LP_FAULT_SLEEP_MS=200 (six steps, about
# 1.2 s), send SIG to livepatch DELAY_MS after it started (or once it has finished) and check
# the outcome: exit 6 and the original bytes, or exit 0 and the patched bytes (then revert).
signal_at() {
	local sig=$1 delay=$2 t0 tpid lpid rc=0 out=$BATS_TEST_TMPDIR/sig.out now
	t0=$(date +%s%N)
	LP_FAULT_SLEEP_MS=200 timeout 60 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 \
		--json >"$out" 2>"$out.err" 3>&- &
	tpid=$!
	BG_PIDS=("$tpid")
	for _ in $(seq 500); do
		lpid=$(pgrep -P "$tpid" | head -n1) && [[ -n $lpid ]] && break
		sleep 0.002
	done
	[[ -n $lpid ]] || fail "livepatch did not start under timeout (pid $tpid)"
	if [[ $delay == after ]]; then
		while kill -0 "$lpid" 2>/dev/null; do sleep 0.01; done
		kill -"$sig" "$lpid" 2>/dev/null || true	# too late: nothing to interrupt
	else
		now=$((($(date +%s%N) - t0) / 1000000))
		((delay > now)) && sleep "$(printf '0.%03d' $((delay - now)))"
		kill -"$sig" "$lpid"
	fi
	wait "$tpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	LP_ERR=$(<"$out.err")
	LP_CMD="SIG$sig at $delay ms to: LP_FAULT_SLEEP_MS=200 livepatch -p $DAEMON_PID -f compute_slow -t compute_slow_v2 --json"
	echo "SIG$sig at $delay ms: exit $rc, status $(json status 2>/dev/null)" >&3
	case $rc in
	6)
		expect_status rolled_back
		expect_original
		;;
	0)
		expect_status applied
		[[ $(text_sum "$DAEMON_PID" "$ADDR" 32) == "$SUM1" ]] ||
			fail "exit 0, but compute_slow does not hold the patched bytes"
		alive
		calls_only calls_compute_slow_v2 calls_compute_slow
		lp -p "$DAEMON_PID" -r compute_slow
		expect_rc 0
		expect_original
		;;
	*)
		fail "$LP_CMD: exit $rc, expected 6 (rolled back) or 0 (done)" "stdout: $LP_OUT" "stderr: $LP_ERR"
		;;
	esac
}

# patched_sum: SUM1, the bytes of compute_slow once patched (patch, read, revert).
patched_sum() {
	lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2
	expect_rc 0
	SUM1=$(text_sum "$DAEMON_PID" "$ADDR" 32)
	[[ $SUM1 != "$SUM0" ]] || fail "patching did not change compute_slow's bytes"
	lp -p "$DAEMON_PID" -r compute_slow
	expect_rc 0
	expect_original
}

@test "SIGTERM to livepatch at any moment of the transaction: rolled back (6) or done (0), never anything else" {
	local d
	start_counterd
	patched_sum
	for d in 50 250 450 650 850 1050 after; do
		signal_at TERM "$d"
	done
	stop_clean
}

@test "SIGINT and SIGHUP to livepatch mid-transaction: rolled back (6) or done (0)" {
	start_counterd
	patched_sum
	signal_at INT 450
	signal_at HUP 650
	stop_clean
}

# status_of PID FIELD: a /proc/PID/status field, empty once PID is gone.
status_of() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

@test "the tracer is a thread of livepatch, no child process; every daemon thread is released when it ends" {
	local out=$BATS_TEST_TMPDIR/thread.out lpid tracer="" rc=0 tid t
	start_counterd
	LP_FAULT_SLEEP_MS=150 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 --json \
		>"$out" 2>"$out.err" 3>&- &
	lpid=$!
	BG_PIDS=("$lpid")
	for _ in $(seq 500); do
		tracer=$(status_of "$DAEMON_PID" TracerPid)
		[[ -n $tracer && $tracer != 0 ]] && break
		sleep 0.002
	done
	[[ -n $tracer && $tracer != 0 ]] || fail "the daemon was never traced during the patch"
	sleep 0.05	# the other threads are seized within a millisecond; the first pause is 150 ms
	[[ $(status_of "$tracer" Tgid) == "$lpid" ]] ||
		fail "tracer $tracer is not a thread of livepatch $lpid (Tgid $(status_of "$tracer" Tgid))"
	[[ $tracer != "$lpid" ]] || fail "the main thread of livepatch traces the daemon: it must report"
	[[ -z $(pgrep -P "$lpid") ]] || fail "livepatch has a child process: $(pgrep -P "$lpid" | tr '\n' ' ')"
	for t in /proc/"$DAEMON_PID"/task/*; do	# every thread of the daemon, by that thread
		tid=${t##*/}
		[[ $(status_of "$tid" TracerPid) == "$tracer" ]] ||
			fail "daemon thread $tid is traced by '$(status_of "$tid" TracerPid)', not $tracer"
	done
	wait "$lpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	((rc == 0)) || fail "livepatch exit $rc" "stdout: $LP_OUT" "stderr: $(<"$out.err")"
	expect_status applied
	for t in /proc/"$DAEMON_PID"/task/*; do
		tid=${t##*/}
		[[ $(status_of "$tid" TracerPid) == 0 ]] ||
			fail "daemon thread $tid is still traced by $(status_of "$tid" TracerPid)"
	done
	alive
	calls_only calls_compute_slow_v2 calls_compute_slow
	lp -p "$DAEMON_PID" -r compute_slow
	expect_rc 0
	expect_original
	stop_clean
}

# kill_at DELAY_MS: SIGKILL the daemon DELAY_MS into a patch slowed by LP_FAULT_SLEEP_MS=300
# (six steps, about 1.8 s; the last sync is after 1.5 s): exit 3 saying it exited, with the
# code in the JSON error, whatever step noticed it first (a write, a sync, the roll-back).
kill_at() {
	local delay=$1 t0 tpid rc=0 out=$BATS_TEST_TMPDIR/kill.out now
	daemon_start counterd --threads 8 --mode slow
	t0=$(date +%s%N)
	LP_FAULT_SLEEP_MS=300 timeout 60 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 \
		--json >"$out" 2>"$out.err" 3>&- &
	tpid=$!
	BG_PIDS=("$tpid")
	now=$((($(date +%s%N) - t0) / 1000000))
	((delay > now)) && sleep "$(printf '%d.%03d' $(((delay - now) / 1000)) $(((delay - now) % 1000)))"
	kill -KILL "$DAEMON_PID"
	wait "$tpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	LP_ERR=$(<"$out.err")
	echo "SIGKILL to the daemon at $delay ms: exit $rc" >&3
	((rc == 3)) || fail "daemon killed at $delay ms: livepatch exit $rc, expected 3" \
		"stdout: $LP_OUT" "stderr: $LP_ERR"
	[[ $(json code) == 3 ]] || fail "JSON error code $(json code), expected 3: $LP_OUT"
	[[ $(json message) == *"exited during the transaction"* ]] ||
		fail "message does not say the process exited: $(json message)"
	daemon_stop
}

@test "the process killed at any moment of the transaction: exit 3, never 6 or 1, never a hang" {
	local d
	for d in 200 450 700 950 1200 1400; do
		kill_at "$d"
	done
}
