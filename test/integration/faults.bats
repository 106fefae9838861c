#!/usr/bin/env bats
# Roll-back (docs/design.md §4): a failure at any of the six steps of the transaction (LP_FAULT=int3,
# sync1, tail, sync2, head, sync3) and SIGTERM, SIGINT or SIGHUP to livepatch at any moment
# leave the process exactly as it was (exit 6, "rolled_back", the function's bytes identical)
# or fully patched (exit 0), never anything else, and the daemon keeps running and counting.
# SIGKILL is not tested here: it can leave an int3 behind (a documented limit). Also: the
# attachment is held by a thread of livepatch, and every daemon thread is free when it ends.
# Needs root (ptrace), `make` and `make daemons`. LP_BIN overrides the livepatch binary.

bats_require_minimum_version 1.5.0
load ../lib

setup_file() {
	lp_setup_file
}

setup() {
	BG_PIDS=()
}

teardown() {
	lp_teardown
}

# start_counterd: counterd, 8 threads in compute_slow; sets ADDR (compute_slow), SUM0
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
	alive && untraced
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
	local _
	start_counterd
	patched_sum
	# Seized, nothing written: LP_FAULT_SLEEP_MS=200 holds livepatch 200 ms after sync 0.
	for _ in 1 2 3 4 5; do
		signal_at INT seized
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

# foreign_write: patch with a 300 ms pause after each step; once livepatch's int3 is at the
# site, write four nops after it (neither tail, and harmless to a thread already past the
# int3, between compute_slow's pauses). Expects exit 6 naming it, and the file's bytes back.
foreign_write() {
	local site tpid rc=0 out=$BATS_TEST_TMPDIR/foreign.out n=0
	lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 --dry-run --json
	site=$(json_get 'd["sites"][0]["address"]' <<<"$LP_OUT")
	LP_FAULT_SLEEP_MS=300 timeout 60 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 \
		--json >"$out" 2>"$out.err" 3>&- &
	tpid=$!
	BG_PIDS=("$tpid")
	until [[ $(dd if="/proc/$DAEMON_PID/mem" bs=1 count=1 skip=$((site)) iflag=skip_bytes \
		status=none 2>/dev/null | od -An -tx1) == " cc" ]]; do
		((n++ < 5000)) || fail "no int3 at $site within 10 s" || return 1
		nap 2
	done
	printf '\x90\x90\x90\x90' | dd of="/proc/$DAEMON_PID/mem" bs=1 seek=$((site + 1)) \
		oflag=seek_bytes conv=notrunc status=none || fail "cannot write at $site + 1"
	wait "$tpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	LP_CMD="livepatch -p $DAEMON_PID -f compute_slow -t compute_slow_v2 --json, nops written after its int3"
	((rc == 6)) || fail "exit $rc, expected 6: $LP_CMD" "stdout: $LP_OUT" "stderr: $(<"$out.err")" || return 1
	expect_status rolled_back
	[[ $(json message) == *"changed during the transaction, not by livepatch"* ]] ||
		fail "the error does not say the bytes were changed by someone else: $(json message)"
	[[ $(text_sum "$DAEMON_PID" "$ADDR" 32) == "$SUM0" ]] ||
		fail "compute_slow's bytes differ from the original after: $LP_CMD"
	alive && untraced
}

# Proves: a foreign write into the site is caught with hot threads trapping on the int3
# (at a trap, or before the next write), and the site is restored.
@test "a foreign write into the site mid-transaction, hot threads: rolled back (6), bytes restored" {
	start_counterd
	foreign_write || return 1
	calls_only calls_compute_slow calls_compute_slow_v2
	stop_clean
}

# Proves: with no thread ever trapping (idle workers), the foreign write is caught by the
# check before the tail is written, instead of being committed as a torn jump.
@test "a foreign write into the site mid-transaction, no trap: caught before the next write (6)" {
	daemon_start counterd --threads 4 --idle
	lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 --dry-run
	expect_rc 0
	ADDR=$(json address)
	SUM0=$(text_sum "$DAEMON_PID" "$ADDR" 32)
	foreign_write || return 1
	[[ $(json traps_emulated) == 0 ]] || fail "a thread trapped: the check before the write was not what caught it"
	stop_clean
}

# signal_at SIG POINT: run a patch with LP_FAULT_SLEEP_MS=200 (livepatch pauses 200 ms after
# each of its six steps), send SIG to livepatch once it reaches POINT (wait_point: ready,
# seized, sync0, sync1, sync2, done) and check the outcome: exit 6 and the original bytes, or
# exit 0 and the patched bytes (then revert). Counts the outcomes in ROLLED and DONE.
signal_at() {
	local sig=$1 point=$2 tpid lpid rc=0 out=$BATS_TEST_TMPDIR/sig.out
	: >"$out.err"	# wait_point reads it: nothing from the previous run
	LP_FAULT_SLEEP_MS=200 timeout 60 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 \
		--json --verbose >"$out" 2>"$out.err" 3>&- &
	tpid=$!
	BG_PIDS=("$tpid")
	for _ in $(seq 500); do
		lpid=$(pgrep -P "$tpid" | head -n1) && [[ -n $lpid ]] && break
		nap 2
	done
	[[ -n $lpid ]] || fail "livepatch did not start under timeout (pid $tpid)" || return 1
	# Before `ready` a signal would kill livepatch before it could roll anything back.
	[[ $point == "done" ]] || wait_point ready "$lpid" "$out.err" || return 1
	wait_point "$point" "$lpid" "$out.err" || return 1
	kill -"$sig" "$lpid" 2>/dev/null || [[ $point == "done" ]] || fail "livepatch $lpid gone before SIG$sig"
	wait "$tpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	LP_ERR=$(<"$out.err")
	LP_CMD="SIG$sig at '$point' to: LP_FAULT_SLEEP_MS=200 livepatch -p $DAEMON_PID -f compute_slow -t compute_slow_v2 --json"
	echo "# SIG$sig at '$point': exit $rc, status $(json status 2>/dev/null)" >&3
	case $rc in
	6)
		ROLLED=$((${ROLLED:-0} + 1))
		expect_status rolled_back
		expect_original
		;;
	0)
		DONE=$((${DONE:-0} + 1))
		expect_status applied
		[[ $(text_sum "$DAEMON_PID" "$ADDR" 32) == "$SUM1" ]] ||
			fail "exit 0, but compute_slow does not hold the patched bytes"
		alive && untraced
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

# Every point is reached while livepatch still has a pause ahead, so a roll-back (6) is
# expected at each; 0 is accepted (a pause cut short by a loaded machine) but at least one
# signal must have rolled a transaction back, and the one sent after the end changes nothing.
@test "SIGTERM to livepatch at any moment of the transaction: rolled back (6) or done (0), never anything else" {
	local p
	ROLLED=0 DONE=0
	start_counterd
	patched_sum
	for p in ready seized sync0 sync1 sync2; do
		signal_at TERM "$p"
	done
	((ROLLED >= 1)) || fail "no SIGTERM rolled a transaction back ($DONE of 5 completed): the roll-back path was not taken"
	DONE=0
	signal_at TERM "done"
	((DONE == 1)) || fail "SIGTERM after the end: the patch did not stay applied"
	stop_clean
}

@test "SIGINT and SIGHUP to livepatch mid-transaction: rolled back (6) or done (0)" {
	ROLLED=0 DONE=0
	start_counterd
	patched_sum
	signal_at INT sync0
	signal_at HUP sync1
	((ROLLED >= 1)) || fail "neither SIGINT nor SIGHUP rolled the transaction back: the roll-back path was not taken"
	stop_clean
}

# Its one child is the guard (docs/design.md §11), which traces nothing while livepatch lives.
@test "the tracer is a thread of livepatch, no child process but the guard; every daemon thread is released when it ends" {
	local out=$BATS_TEST_TMPDIR/thread.out lpid tracer="" rc=0 tid t
	start_counterd
	LP_FAULT_SLEEP_MS=150 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 --json \
		--verbose >"$out" 2>"$out.err" 3>&- &
	lpid=$!
	BG_PIDS=("$lpid")
	# Seized, nothing written: every thread is attached, the first pause (150 ms) is under way.
	wait_point seized "$lpid" "$out.err" || return 1
	tracer=$(proc_field "$DAEMON_PID" TracerPid)
	[[ $(proc_field "$tracer" Tgid) == "$lpid" ]] ||
		fail "tracer $tracer is not a thread of livepatch $lpid (Tgid $(proc_field "$tracer" Tgid))"
	[[ $tracer != "$lpid" ]] || fail "the main thread of livepatch traces the daemon: it must report"
	local child
	for child in $(pgrep -P "$lpid"); do
		[[ $(<"/proc/$child/comm") == livepatch-guard ]] ||
			fail "livepatch has a child process other than its guard: $child ($(<"/proc/$child/comm"))"
	done
	for t in /proc/"$DAEMON_PID"/task/*; do	# every thread of the daemon, by that thread
		tid=${t##*/}
		[[ $(proc_field "$tid" TracerPid) == "$tracer" ]] ||
			fail "daemon thread $tid is traced by '$(proc_field "$tid" TracerPid)', not $tracer"
	done
	wait "$lpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	((rc == 0)) || fail "livepatch exit $rc" "stdout: $LP_OUT" "stderr: $(<"$out.err")"
	expect_status applied
	for t in /proc/"$DAEMON_PID"/task/*; do
		tid=${t##*/}
		[[ $(proc_field "$tid" TracerPid) == 0 ]] ||
			fail "daemon thread $tid is still traced by $(proc_field "$tid" TracerPid)"
	done
	alive
	calls_only calls_compute_slow_v2 calls_compute_slow
	lp -p "$DAEMON_PID" -r compute_slow
	expect_rc 0
	expect_original
	stop_clean
}

# kill_at POINT: SIGKILL the daemon when a patch slowed by LP_FAULT_SLEEP_MS=300 reaches POINT
# (wait_point: seized, sync0, sync1, sync2): exit 3 saying it exited, with the code in the
# JSON error, whatever step noticed it first (a write, a sync, the roll-back).
kill_at() {
	local point=$1 tpid rc=0 out=$BATS_TEST_TMPDIR/kill.out
	start_counterd
	: >"$out.err"	# wait_point reads it: nothing from the previous run
	LP_FAULT_SLEEP_MS=300 timeout 60 "$LP" -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2 \
		--json --verbose >"$out" 2>"$out.err" 3>&- &
	tpid=$!
	BG_PIDS=("$tpid")
	wait_point "$point" "$tpid" "$out.err" || return 1
	kill -KILL "$DAEMON_PID"
	wait "$tpid" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	LP_ERR=$(<"$out.err")
	echo "# SIGKILL to the daemon at '$point': exit $rc" >&3
	((rc == 3)) || fail "daemon killed at '$point': livepatch exit $rc, expected 3" \
		"stdout: $LP_OUT" "stderr: $LP_ERR"
	[[ $(json code) == 3 ]] || fail "JSON error code $(json code), expected 3: $LP_OUT"
	[[ $(json message) == *"exited during the transaction"* ]] ||
		fail "message does not say the process exited: $(json message)"
	daemon_stop
}

@test "the process killed at any moment of the transaction: exit 3, never 6 or 1, never a hang" {
	local p
	for p in seized sync0 sync1 sync2; do
		kill_at "$p"
	done
}
