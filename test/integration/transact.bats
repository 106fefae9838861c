#!/usr/bin/env bats
# The live-patch transaction (docs/design.md §4) against the real test daemons (test/daemons/), one
# test per behaviour. Every test asserts on what the daemon counted (calls that reached the
# old and the new function, signals, bytes, EINTRs, forks, threads), on the JSON
# "transaction" counters, and that the daemon finally exits 0 with wrong == 0.
# Needs root (ptrace), `make` and `make daemons`. LP_BIN overrides the livepatch binary.

bats_require_minimum_version 1.5.0
load ../lib

D=$LP_BUILD/daemons

setup_file() {
	lp_setup_file
}

setup() {
	BG_PIDS=()
	TX=()	# sums of the transaction counters (tx_add)
}

teardown() {
	lp_teardown
}

# --- the tests ---------------------------------------------------------------------------

@test "counterd, 16 threads in compute_slow: 20 cycles step threads out of the displaced range and emulate traps; calls switch both ways" {
	daemon_start counterd --threads 16 --mode slow
	patch compute_slow compute_slow_v2
	calls_only calls_compute_slow_v2 calls_compute_slow
	revert compute_slow
	calls_only calls_compute_slow calls_compute_slow_v2
	cycles 18 compute_slow compute_slow_v2
	patch compute_slow compute_slow_v2
	calls_only calls_compute_slow_v2 calls_compute_slow
	revert compute_slow
	calls_only calls_compute_slow calls_compute_slow_v2
	echo "20 cycles: stepouts ${TX[stepouts]}, traps ${TX[traps_emulated]} emulated / ${TX[traps_late]} late / ${TX[traps_parked]} parked" >&3
	((TX[stepouts] > 0)) || fail "no thread was ever stepped out of the displaced range in 20 cycles (stepouts 0)"
	((TX[traps_emulated] + TX[traps_late] > 0)) || fail "no trap was ever emulated in 20 patches"
	((TX[traps_parked] > 0)) || fail "no thread was ever parked in 20 reverts"
	stop_clean
}

@test "counterd-nopie (no endbr64) and counterd-lib (libsample.so:compute): patch and revert switch the calls" {
	daemon_start counterd-nopie
	patch compute compute_v2
	calls_only calls_compute_v2 calls_compute
	revert compute
	calls_only calls_compute calls_compute_v2
	stop_clean

	daemon_start counterd-lib
	patch libsample.so:compute libsample.so:compute_v2
	[[ $(json object) == libsample.so ]] || fail "function object: $(json object), expected libsample.so"
	calls_only calls_compute_v2 calls_compute
	revert libsample.so:compute
	calls_only calls_compute calls_compute_v2
	stop_clean
}

@test "re-applying a patch is a no-op; re-pointing a patched function moves the calls; revert restores the original" {
	local v2
	daemon_start counterd
	patch compute compute_v2
	v2=$(json address "${LP_OUT#*\"target\":\{}")	# the target's address
	lp -p "$DAEMON_PID" -f compute -t compute_v2
	expect_rc 0
	expect_status already_applied
	[[ $LP_OUT != *'"transaction"'* ]] || fail "already applied, yet livepatch attached: $LP_OUT"
	calls_only calls_compute_v2 calls_compute calls_compute_slow_v2

	patch compute compute_slow_v2
	[[ $(json previous_target) == "$v2" ]] || fail "previous_target $(json previous_target), expected compute_v2 at $v2"
	calls_only calls_compute_slow_v2 calls_compute_v2 calls_compute

	revert compute
	calls_only calls_compute calls_compute_v2 calls_compute_slow_v2
	stop_clean
}

@test "sigstormd: queued signals during 10 cycles are delivered exactly once (none lost, none doubled)" {
	local sent i
	daemon_start sigstormd
	"$D/sigsend" "$DAEMON_PID" 20000 0 >"$BATS_TEST_TMPDIR/sigsend.out" 2>&1 3>&- &
	BG_PIDS+=($!)
	cycles 10 compute compute_v2
	wait "${BG_PIDS[0]}" || fail "sigsend failed: $(cat "$BATS_TEST_TMPDIR/sigsend.out")"
	sent=$(head -n1 "$BATS_TEST_TMPDIR/sigsend.out")
	[[ $sent == 20000 ]] || fail "sigsend sent $sent of 20000: $(cat "$BATS_TEST_TMPDIR/sigsend.out")"
	status_wait_ge ext_received "$sent" "$DAEMON_STATUS" 3000
	calls_only calls_compute calls_compute_v2
	stop_clean
	expect_key ext_received "$sent"
	expect_key ext_dups 0
	expect_key ext_out_of_range 0
	expect_key ext_not_queued 0
	(($(status_get timer_signals) > 0)) || fail "the timer never fired"
	echo "signals passed on by livepatch over 10 cycles: ${TX[signals_passed]}" >&3
	((TX[signals_passed] > 0)) || fail "JSON signals_passed was 0 in every cycle: no signal arrived while attached?"
}

# forkd_cycles [--vfork]
forkd_cycles() {
	local f0
	daemon_start forkd "$@"
	status_wait_change forks
	f0=$(status_get forks)
	cycles 10 compute compute_v2
	calls_only calls_compute calls_compute_v2
	stop_clean
	# On a failure, say how the child died: a signal (5: our int3 left in its copy) or a code.
	echo "forkd $*: last_bad_signal $(status_get last_bad_signal), last_bad_code $(status_get last_bad_code)"
	expect_key children_bad 0
	expect_key fork_errors 0
	(($(status_get forks) > f0)) || fail "forks did not grow during 10 cycles"
	echo "forkd $*: JSON forks over 10 cycles: ${TX[forks]}" >&3
	((TX[forks] > 0)) || fail "forkd $*: JSON forks was 0 in all 20 transactions (no fork seen while attached)"
}

@test "forkd: children forked during 10 cycles get the final bytes (no child dies)" {
	forkd_cycles
}

@test "forkd --vfork: vfork children during 10 cycles share the patched text safely" {
	forkd_cycles --vfork
}

@test "churnd: threads created and exiting during 10 cycles join the transaction; nothing lost" {
	local c0
	daemon_start churnd
	c0=$(status_get threads_created)
	cycles 10 compute compute_v2
	calls_only calls_compute calls_compute_v2
	stop_clean
	(($(status_get threads_created) > c0)) || fail "threads_created did not grow"
	expect_key threads_exited "$(status_get threads_created)"
	expect_key create_errors 0
	echo "churnd: JSON clones ${TX[clones]}, exits ${TX[exits]} over 10 cycles" >&3
	((TX[clones] > 0)) || fail "JSON clones was 0 in all 20 transactions"
}

# blockd_undisturbed WHY: in blockd's final status, no EINTR, no sequence error, and every
# byte and ping sent was received; a failure names the counter, with WHY.
blockd_undisturbed() {
	local k v
	while read -r k v; do
		case $k in
		eintr_* | *_seq_errors | futex_other | semop_errors)
			((v == 0)) || fail "$k is $v ($1)"
			;;
		esac
	done <"$DAEMON_STATUS"
	expect_key pipe_bytes_read "$(status_get pipe_bytes_written)"
	expect_key recv_bytes "$(status_get send_bytes)"
	expect_key pings_got "$(status_get pings_sent)"
}

@test "blockd: threads blocked in system calls are left alone (no EINTR, no lost byte) through 10 cycles" {
	daemon_start blockd
	cycles 10 compute compute_v2
	calls_only calls_compute calls_compute_v2
	stop_clean
	blockd_undisturbed "a blocked system call was disturbed"
	echo "blockd: JSON blocked_left_alone ${TX[blocked_left_alone]}, thread_stops ${TX[thread_stops]}" >&3
	((TX[blocked_left_alone] > 0)) || fail "JSON blocked_left_alone was 0 in every transaction"
}

@test "blockd, every sleeper interrupted (LP_FAULT=stop-blocked): each cut call is restarted, no EINTR, no lost byte" {
	daemon_start blockd
	# The test knob makes each sync interrupt blocked threads too: what a thread that
	# enters a call just after being seen running gets, here on every sleeper at every sync.
	export LP_FAULT=stop-blocked
	cycles 5 compute compute_v2
	unset LP_FAULT
	calls_only calls_compute calls_compute_v2
	stop_clean
	echo "blockd, sleepers interrupted: JSON calls_restarted ${TX[calls_restarted]} over 10 transactions" >&3
	# epoll_wait, sigtimedwait, semtimedop and recv with a timeout would each fail with
	# EINTR here without the restart (measured: about 40 each over 10 transactions).
	((TX[calls_restarted] > 0)) || fail "JSON calls_restarted was 0: were the sleepers interrupted at all?"
	blockd_undisturbed "an interrupted call was not restarted"
}

# mem_u64 PID ADDR: the 8-byte counter at ADDR.
mem_u64() {
	dd if="/proc/$1/mem" bs=8 iflag=skip_bytes,count_bytes skip=$(($2)) count=8 status=none | od -An -tu8 | tr -d ' '
}

@test "a SIGSTOPped process is patched and stays stopped; after SIGCONT the calls go to compute_v2" {
	local base off addr c1 c2 c3 task st
	daemon_start counterd
	kill -STOP "$DAEMON_PID"
	for _ in $(seq 100); do
		[[ $(proc_field "$DAEMON_PID" State) == T ]] && break
		sleep 0.01
	done
	[[ $(proc_field "$DAEMON_PID" State) == T ]] || fail "not stopped after SIGSTOP"
	# calls_compute itself, read from memory: the status file cannot move while stopped.
	off=$(nm "$D/counterd" | awk '$3 == "calls_compute" { print $1 }')
	base=$(map_base "$DAEMON_PID" "$(realpath "$D/counterd")")
	addr=$((0x$base + 0x$off))
	c1=$(mem_u64 "$DAEMON_PID" "$addr")
	patch compute compute_v2
	nap 200	# an observation window, not a wait: nothing may move in it
	c2=$(mem_u64 "$DAEMON_PID" "$addr")
	for task in /proc/"$DAEMON_PID"/task/*; do
		st=$(proc_field "${task#/proc/}" State)
		[[ $st == T ]] || fail "thread ${task##*/} is in state $st after the patch, expected T (stopped)"
	done
	[[ $(proc_field "$DAEMON_PID" TracerPid) == 0 ]] || fail "still traced after livepatch exited"
	((c1 == c2)) || fail "calls_compute moved from $c1 to $c2 while the process was stopped"
	kill -CONT "$DAEMON_PID"
	calls_only calls_compute_v2 calls_compute
	c3=$(mem_u64 "$DAEMON_PID" "$addr")
	((c3 == c1)) || fail "calls_compute moved from $c1 to $c3 after SIGCONT: the old function still runs"
	stop_clean
}

@test "sigtrapd: the program's own int3 traps all reach its handler across 10 cycles" {
	local ex rx
	daemon_start sigtrapd
	cycles 10 compute compute_v2
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	ex=$(status_get int3_executed)
	rx=$(status_get sigtrap_received)
	((ex - rx == 0 || ex - rx == 1)) ||
		fail "int3_executed $ex, sigtrap_received $rx: the program's own SIGTRAPs were lost or doubled"
	expect_key sigtrap_other 0
	expect_key sigtrap_kernel "$rx"
	((rx > 0)) || fail "sigtrap_received is 0"
}

@test "sigtrapd: the program's own int \$3 (cd 03) traps all reach its handler across 20 cycles" {
	local ex rx
	daemon_start sigtrapd --int3-form cd03 --interval-us 200
	cycles 20 compute compute_v2
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	ex=$(status_get int3_executed)
	rx=$(status_get sigtrap_received)
	((rx > 1000)) || fail "only $rx int \$3 traps in 20 cycles: the test did not exercise them"
	((ex - rx == 0 || ex - rx == 1)) ||
		fail "int3_executed $ex, sigtrap_received $rx: $((ex - rx)) of the program's own SIGTRAPs were lost"
	expect_key sigtrap_other 0
}

# Workers that trap right after each call of the patched function spend much of their
# time in the program's handler, where SIGTRAP is blocked (no SA_NODEFER): a stop there
# shows a mask that is not the thread's own. Blocking SIGTRAP again after a trap of ours
# on that evidence alone made the thread's next own int3 a reset to the default: the
# program died of SIGTRAP in 10 of 14 runs of a patch and a revert.
@test "sigtrapd --trap-after-call: threads that leave their SIGTRAP handler for the site keep their mask (20 + 10 cycles)" {
	local before after ex rx
	daemon_start sigtrapd --trap-after-call --threads 4
	# Dispositions only: a thread's mask changes as it enters and leaves its handler
	# (the daemon checks its own mask outside it: mask_changed).
	before=$(sig_state "$DAEMON_PID" | grep '^Sig')
	cycles 20 compute compute_v2
	LP_NO_SHIELD=1 cycles 10 compute compute_v2	# the program's handler alone is reset too
	after=$(sig_state "$DAEMON_PID" | grep '^Sig')
	[[ $after == "$before" ]] || fail "dispositions changed: before: $before; after: $after"
	((${TX[traps_emulated]:-0} + ${TX[traps_parked]:-0} > 0)) || fail "no trap of ours in 20 cycles: the test did not exercise it"
	((${TX[signals_passed]:-0} > 0)) || fail "no trap of the program's met a transaction: the test did not exercise it"
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	ex=$(status_get int3_executed)
	rx=$(status_get sigtrap_received)
	((rx > 10000)) || fail "only $rx traps of the program's: the test did not exercise them"
	((ex - rx >= 0 && ex - rx <= 5)) || fail "int3_executed $ex, sigtrap_received $rx: $((ex - rx)) lost"
	expect_key mask_changed 0
	expect_key sigtrap_other 0
}

# While a transaction runs, sigaction() in the program reads the shield's handler
# (docs/design.md §11): disposition_changed counts those reads. Outside, it is the
# program's own: the state after the cycles is the state before.
@test "sigtrapd: 64 real-time signals queued in every worker do not hide a trap of ours (20 cycles)" {
	local before after
	daemon_start sigtrapd --queued 64
	before=$(sig_state "$DAEMON_PID")
	cycles 20 compute compute_v2
	after=$(sig_state "$DAEMON_PID")
	[[ $after == "$before" ]] || fail "signal state changed: before: $before; after: $after"
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	local q r
	q=$(status_get rt_queued)
	r=$(status_get rt_received)
	((q > 0 && q == r)) || fail "rt_queued $q, rt_received $r"
	expect_key mask_changed 0
}

@test "sigtrapd without the shield (LP_NO_SHIELD): the program never sees its disposition changed" {
	daemon_start sigtrapd --queued 64
	LP_NO_SHIELD=1 cycles 10 compute compute_v2
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	expect_key mask_changed 0
	expect_key disposition_changed 0
}

@test "sigtrapd --block-trap: a trap of ours in threads that block SIGTRAP leaves the handler and masks as they were" {
	local before after ex rx
	daemon_start sigtrapd --block-trap
	before=$(sig_state "$DAEMON_PID")
	cycles 20 compute compute_v2
	after=$(sig_state "$DAEMON_PID")
	[[ $after == "$before" ]] || fail "signal state changed: before: $before; after: $after"
	((${TX[dispositions_restored]:-0} > 0)) || fail "no trap ever reset the handler: the test did not exercise it"
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	ex=$(status_get int3_executed)
	rx=$(status_get sigtrap_received)
	((ex - rx == 0 || ex - rx == 1)) || fail "int3_executed $ex, sigtrap_received $rx"
	expect_key mask_changed 0
}

# With the default disposition there is nothing to put back without the shield; with it,
# a blocked trap of ours resets the shield's handler, which is put back, and the thread's
# mask with it: its mask must be known from before the shield went up (sync 0).
@test "sigtrapd --default-trap --block-trap: threads that block SIGTRAP keep it blocked (20 cycles)" {
	local before after
	daemon_start sigtrapd --default-trap --block-trap
	before=$(sig_state "$DAEMON_PID")
	cycles 20 compute compute_v2
	after=$(sig_state "$DAEMON_PID")
	[[ $after == "$before" ]] || fail "signal state changed: before: $before; after: $after"
	((${TX[dispositions_restored]:-0} > 0)) || fail "no trap ever reset the shield's handler: the test did not exercise it"
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	expect_key mask_changed 0
}

# With the shield, our traps reach its handler, not SIG_IGN: nothing is reset. Without
# it (LP_NO_SHIELD, and a process the shield cannot enter), each trap resets SIG_IGN to
# the default, and livepatch puts it back: both ways end with SIGTRAP ignored.
@test "sigtrapd --ignore-trap: an ignored SIGTRAP stays ignored after traps of ours" {
	local before after
	daemon_start sigtrapd --ignore-trap
	before=$(sig_state "$DAEMON_PID")
	cycles 20 compute compute_v2
	after=$(sig_state "$DAEMON_PID")
	[[ $after == "$before" ]] || fail "signal state changed: before: $before; after: $after"
	[[ $(tx shield) == true ]] || fail "the shield was not up: $(tx shield_why_not)"
	((${TX[traps_emulated]:-0} > 0)) || fail "no trap of ours in 20 cycles: the test did not exercise it"
	TX=()
	LP_NO_SHIELD=1 cycles 20 compute compute_v2
	after=$(sig_state "$DAEMON_PID")
	[[ $after == "$before" ]] || fail "without the shield, signal state changed: before: $before; after: $after"
	((${TX[dispositions_restored]:-0} > 0)) || fail "no trap ever reset the disposition: the test did not exercise it"
	calls_only calls_compute calls_compute_v2
	alive
	stop_clean
	expect_key mask_changed 0
}

@test "vforkd: a thread waiting for its vfork child does not hold up the patch" {
	local t0 ms v0
	daemon_start vforkd --child-ms 3000
	status_wait_change calls_compute
	v0=$(status_get vforks)
	t0=$(date +%s%N)
	patch compute compute_v2
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "patch with a vfork child sleeping: ${ms} ms, total_ms $(tx total_ms)" >&3
	((ms < 2000)) || fail "the patch took $ms ms: it waited for the vfork child"
	expect_key vforks "$v0"	# the child (3 s) was still running during the patch
	status_wait_ge vforks $((v0 + 1)) "$DAEMON_STATUS" 5000
	alive
	calls_only calls_compute_v2 calls_compute
	expect_key vfork_errors 0
	stop_clean
}

@test "a thread blocked in a call inside the site is moved to the out-of-line copy: applied, its sleep not cut short" {
	local addr s0 up
	daemon_start counterd --sleeper 1500
	addr=$(fn_addr sleeper sleeper_v2)
	# The sleeper thread is asleep in nanosleep (35) with its PC inside sleeper's site.
	local i found=
	for ((i = 0; i < 200; i++)); do
		grep -qs "^35 .* $(printf "0x%x" $((addr + 6)))\$" /proc/"$DAEMON_PID"/task/*/syscall && { found=1; break; }
		sleep 0.01
	done
	[[ -n $found ]] || fail "no thread was seen asleep inside sleeper's site"
	s0=$(status_get sleeper_calls)
	patch sleeper sleeper_v2
	(($(tx out_of_line) >= 1)) || fail "out_of_line is $(tx out_of_line): the sleeper was not moved"
	# Its 1.5 s sleep goes on from the copy, then it returns and calls sleeper_v2.
	status_wait_ge sleeper_calls $((s0 + 1)) "$DAEMON_STATUS" 5000
	up=$(status_get uptime_ms)
	((up >= 1400)) || fail "sleeper returned after ${up} ms of a 1500 ms sleep: its nanosleep was interrupted"
	status_wait_ge sleeper_calls $((s0 + 2)) "$DAEMON_STATUS" 5000
	revert sleeper
	alive
	stop_clean
}

@test "another tracer (strace) is attached: exit 3 naming it, nothing written" {
	local addr sum0 spid
	daemon_start counterd
	addr=$(fn_addr compute compute_v2)
	sum0=$(text_sum "$DAEMON_PID" "$addr" 32)
	strace -qq -e trace=none -p "$DAEMON_PID" -o "$BATS_TEST_TMPDIR/strace.out" 3>&- &
	spid=$!
	BG_PIDS+=("$spid")
	for _ in $(seq 300); do
		[[ $(proc_field "$DAEMON_PID" TracerPid) != 0 ]] && break
		sleep 0.01
	done
	[[ $(proc_field "$DAEMON_PID" TracerPid) == "$spid" ]] || fail "strace did not attach"
	lp -p "$DAEMON_PID" -f compute -t compute_v2
	expect_rc 3
	[[ $(json message) == *"$spid"* ]] || fail "the error does not name the tracer pid $spid: $(json message)"
	[[ $(text_sum "$DAEMON_PID" "$addr" 32) == "$sum0" ]] || fail "compute's bytes changed"
	kill -TERM "$spid"
	wait "$spid" || true
	BG_PIDS=()
	alive
	calls_only calls_compute calls_compute_v2
	stop_clean
}

@test "revert of a function that is not patched: exit 0, not_patched, not attached" {
	local addr sum0
	daemon_start counterd
	addr=$(fn_addr compute compute_v2)
	sum0=$(text_sum "$DAEMON_PID" "$addr" 32)
	lp -p "$DAEMON_PID" -r compute
	expect_rc 0
	expect_status not_patched
	[[ $LP_OUT != *'"transaction"'* ]] || fail "nothing to do, yet livepatch attached: $LP_OUT"
	[[ $(text_sum "$DAEMON_PID" "$addr" 32) == "$sum0" ]] || fail "compute's bytes changed"
	calls_only calls_compute calls_compute_v2
	stop_clean
}

@test "stress: 50 patch/revert cycles per daemon, nothing lost" {
	run env LP_STRESS_CYCLES=50 LP_BIN="$LP" "$ROOT/test/stress.sh"
	echo "$output"
	grep -E '^[a-z]+: ' <<<"$output" >&3 || true
	((status == 0)) || fail "test/stress.sh exited $status"
}

@test "stress: 10 cycles per daemon that each load a new patch (--load), nothing lost" {
	run env LP_STRESS_LOAD=1 LP_STRESS_CYCLES=10 LP_BIN="$LP" \
		LP_STRESS_DAEMONS="counterd sigstormd forkd vfork churnd blockd sigtrapd sigtrap-block sigtrap-ignore sigtrap-queued sigtrap-cd03" \
		"$ROOT/test/stress.sh"
	echo "$output"
	grep -E '^[a-z-]+: ' <<<"$output" >&3 || true
	((status == 0)) || fail "test/stress.sh (LP_STRESS_LOAD=1) exited $status"
}
# exec_at POINT: start execd, a patch slowed by LP_FAULT_SLEEP_MS=300 (a 300 ms pause after
# each step), SIGUSR2 once livepatch reaches POINT (wait_point: seized, sync0, sync1, sync2):
# its waiter thread execs /bin/sleep at once. Expect exit 3 naming the exec, and the new
# program running untraced.
exec_at() {
	local pid out=$BATS_TEST_TMPDIR/lp.out rc=0
	daemon_start execd
	pid=$DAEMON_PID
	: >"$out.err"
	LP_FAULT_SLEEP_MS=300 timeout 60 "$LP" -p "$pid" -f compute -t compute_v2 --json --verbose \
		>"$out" 2>"$out.err" 3>&- &
	BG_PIDS=($!)
	wait_point "$1" "${BG_PIDS[0]}" "$out.err" || return 1
	kill -USR2 "$pid"
	wait "${BG_PIDS[0]}" || rc=$?
	BG_PIDS=()
	LP_OUT=$(<"$out")
	echo "# exec at '$1': exit $rc" >&3
	((rc == 3)) || fail "exec at '$1': livepatch exited $rc, expected 3" "stdout: $LP_OUT" "stderr: $(<"$out.err")"
	[[ $(json code) == 3 ]] || fail "JSON error code $(json code): $LP_OUT"
	[[ $(json message) == *exec* ]] || fail "error message does not mention exec: $(json message)"
	for _ in $(seq 100); do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]] && break
		nap 10
	done
	[[ $(cat "/proc/$pid/comm") == sleep ]] || fail "pid $pid runs $(cat "/proc/$pid/comm"), expected sleep"
	_lp_alive "$pid" || fail "pid $pid is dead"
	[[ $(proc_field "$pid" TracerPid) == 0 ]] || fail "pid $pid is still traced by $(proc_field "$pid" TracerPid)"
	[[ $(proc_field "$pid" State) == S ]] || fail "pid $pid is in state $(proc_field "$pid" State), expected S (sleeping)"
	# It is /bin/sleep now: SIGTERM kills it, so no exit status to check.
	kill -KILL "$pid"
	daemon_stop
}

@test "execd: exec from a non-leader thread at four points of the transaction: exit 3, the new program runs untraced" {
	local p
	for p in seized sync0 sync1 sync2; do
		exec_at "$p"
	done
}


@test "counterd --leader-exits (main thread exited, a zombie leader): patch with --verify, --list and revert go through a live thread" {
	daemon_start counterd --threads 4 --leader-exits
	kill -USR1 "$DAEMON_PID"
	local n=0
	until [[ $(proc_field "$DAEMON_PID" State) == Z ]]; do
		((n++ < 300)) || fail "the main thread of $DAEMON_PID did not exit within 3 s" || return 1
		sleep 0.01
	done
	if kernel_has_btf; then
		lp -p "$DAEMON_PID" -f compute -t compute_v2 --verify=0.3
		expect_rc 0 && expect_status applied || return 1
		[[ $(json verdict) == pass ]] || fail "verify verdict $(json verdict), expected pass" "stdout: $LP_OUT"
	else
		say "this kernel has no BTF: patched without --verify (verify.bats proves the refusal)"
		patch compute compute_v2 || return 1
	fi
	calls_only calls_compute_v2 calls_compute
	lp -p "$DAEMON_PID" --list
	expect_rc 0 || return 1
	[[ $LP_OUT == *'"compute"'* && $LP_OUT == *compute_v2* ]] ||
		fail "--list does not show compute -> compute_v2: $LP_OUT"
	revert compute
	calls_only calls_compute calls_compute_v2
	[[ $(proc_field "$DAEMON_PID" State) == Z ]] || fail "the leader is no longer a zombie?"
	stop_clean
}
