#!/usr/bin/env bats
# Issue #13, "No thread state may crash the program": every state in which a thread's PC, or
# a PC saved for it, lies inside or just past the bytes a patch displaces, against the
# stated daemon (test/daemons/stated.c, stated_asm.S). Each test keeps the daemon's threads
# in one state, runs 20 patch/revert cycles of F -> F_v2 (polling the status file for calls
# of F_v2, then of F, between them), and asserts on what the daemon counted: calls switch
# both ways, wrong 0, errors 0, signals sent == handled, no unexpected EINTR, the daemon
# alive throughout and exiting 0. Needs root (ptrace, cgroups), `make` and `make daemons`.
# LP_BIN overrides the livepatch binary.

bats_require_minimum_version 1.5.0
load ../lib

D=$LP_BUILD/daemons
# A livepatch that hangs costs one test 35 s (timeout -k 5 30), not the file.
# shellcheck disable=SC2034 # lp (lib.bash) reads it
LP_TIMEOUT=30

setup_file() {
	lp_setup_file
	[[ -x $LP_BUILD/daemons/stated && -x $LP_BUILD/daemons/stopwatch ]] || {
		echo "no stated/stopwatch in $LP_BUILD/daemons: run make daemons first" >&2
		return 1
	}
}

setup() {
	# shellcheck disable=SC2034 # lp_teardown (lib.bash) kills them
	BG_PIDS=()
	CGROUPS=()	# cgroup directories to thaw and remove in teardown
	CONT_PIDS=()	# processes to SIGCONT in teardown (the daemons under stopwatch)
}

teardown() {
	local cg p n
	for cg in "${CGROUPS[@]}"; do
		[[ -e $cg/freezer.state ]] && echo THAWED >"$cg/freezer.state" 2>/dev/null
		[[ -e $cg/cgroup.freeze ]] && echo 0 >"$cg/cgroup.freeze" 2>/dev/null
	done
	for p in "${CONT_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
	done
	lp_teardown
	for cg in "${CGROUPS[@]}"; do
		n=0
		while [[ -d $cg ]] && ! rmdir "$cg" 2>/dev/null && ((n++ < 100)); do
			sleep 0.02
		done
		[[ ! -d $cg ]] || echo "teardown: could not remove $cg" >&2
	done
	return 0
}

# stop_stated [PID]: stop_stated, and the final status has errors and eintr 0 and as many
# signals handled as sent.
stop_stated() {
	stop_clean "$@" && expect_key errors 0 && expect_key eintr 0 &&
		expect_key signals_handled "$(status_get signals_sent)"
}

# cycles_switching N F: N x (patch F -> F_v2, calls_F_v2 grows; revert F, calls_F grows), the
# daemon alive after each step.
cycles_switching() {
	local i
	for ((i = 1; i <= $1; i++)); do
		patch "$2" || fail "cycle $i of $1: patch $2 -> $2_v2 failed" || return 1
		grows "calls_$2_v2" || fail "cycle $i of $1: after the patch" || return 1
		revert "$2" || fail "cycle $i of $1: revert $2 failed" || return 1
		grows "calls_$2" || fail "cycle $i of $1: after the revert" || return 1
	done
}

# user_pc TASKDIR: PC = the user PC of a thread in the kernel (blocked in a call, or
# stopped), from its syscall file; fails when it runs.
user_pc() {
	local line
	read -r line <"$1/syscall" 2>/dev/null || return 1
	[[ $line != running ]] || return 1
	PC=$((${line##* }))
}

# pcs_at ADDR [PID]: how many threads of PID sit in the kernel with their user PC at ADDR.
pcs_at() {
	local t n=0 want=$(($1))
	for t in /proc/"${2:-$DAEMON_PID}"/task/*; do
		user_pc "$t" && ((PC == want)) && n=$((n + 1))
	done
	echo "$n"
}

# pcs_in LO HI [PID]: how many threads have their user PC in LO < PC < HI.
pcs_in() {
	local t n=0 lo=$(($1)) hi=$(($2))
	for t in /proc/"${3:-$DAEMON_PID}"/task/*; do
		user_pc "$t" && ((PC > lo && PC < hi)) && n=$((n + 1))
	done
	echo "$n"
}

# thread_state TASKDIR: ST = its state letter (R, S, D, T, t, Z...), from stat.
thread_state() {
	local line
	ST=
	read -r line <"$1/stat" 2>/dev/null || return 1
	line=${line##*) }
	ST=${line:0:1}
}

# all_state PID LETTERS: every thread of PID is in one of the states LETTERS (e.g. T, tT).
all_state() {
	local t
	for t in /proc/"$1"/task/*; do
		thread_state "$t" || continue
		[[ $2 == *"$ST"* ]] || return 1
	done
	return 0
}

# stop_all PID: SIGSTOP, then wait (<= 3 s) until every thread is in state T.
stop_all() {
	local n=0
	kill -STOP "$1"
	until all_state "$1" T; do
		((n++ < 300)) || fail "pid $1: not every thread stopped 3 s after SIGSTOP: $(cat /proc/"$1"/task/*/stat | awk '{ print $1, $3 }' | tr '\n' ' ')" || return 1
		nap 10
	done
}

# still_stopped PID WHAT: every thread of PID is still in state T (group stop) and untraced.
# The tracer's exit releases a group-stopped thread by waking it in the kernel, where it
# re-enters the group stop before any return to user code (the kernel's ptrace unlink): it
# can be seen R or S for a moment. Each thread must be back in T within 2 s; WOKE counts
# the threads seen on their way back.
WOKE=0
still_stopped() {
	local t n
	for t in /proc/"$1"/task/*; do
		thread_state "$t" || continue
		[[ $ST == T ]] && continue
		WOKE=$((WOKE + 1))
		for ((n = 0; n < 200; n++)); do
			nap 10
			thread_state "$t" && [[ $ST != T ]] || break
		done
		[[ ! -e $t || $ST == T ]] || fail "$2: thread ${t##*/} is in state $ST 2 s after livepatch exited, expected T (stopped)" || return 1
	done
	local k v
	while read -r k v; do
		[[ $k == TracerPid: ]] && break
	done <"/proc/$1/status"
	[[ $v == 0 ]] || fail "$2: pid $1 is still traced (by $v) after livepatch exited"
}

# --- (a) running threads ------------------------------------------------------------------

# Proves: hot threads found inside park's first bytes are moved or stepped out, never crash.
@test "hot threads inside park's displaced bytes: 20 cycles switch the calls both ways" {
	daemon_start stated --mode park --threads 4
	patch park
	calls_only calls_park_v2 calls_park
	revert park
	calls_only calls_park calls_park_v2
	cycles_switching 18 park
	patch park
	calls_only calls_park_v2 calls_park
	revert park
	calls_only calls_park calls_park_v2
	alive
	stop_stated
}

# --- (b) group-stopped ---------------------------------------------------------------------

# events_count FILE WORD: lines of the stopwatch event file that start with WORD.
events_count() {
	local line n=0
	while read -r line; do
		[[ $line == "$2"* ]] && n=$((n + 1))
	done <"$1"
	echo "$n"
}

# events_wait FILE WORD N: wait (<= 3 s) until the parent saw N WORD events.
events_wait() {
	local n=0
	until (($(events_count "$1" "$2") >= $3)); do
		(($(events_count "$1" killed) == 0)) ||
			fail "the daemon was killed: stopwatch events: $(tr '\n' ' ' <"$1")(signal 11 SIGSEGV, 4 SIGILL, 5 SIGTRAP, 7 SIGBUS)" || return 1
		((n++ < 300)) || fail "stopwatch saw $(events_count "$1" "$2") '$2' events, expected $3: $(tr '\n' ' ' <"$1")" || return 1
		nap 10
	done
}

# Proves: a group-stopped process (threads stopped inside park's first bytes) is patched and
# reverted, stays stopped, and its parent sees exactly the stops and continues it was sent.
@test "group-stopped: 20 cycles on a SIGSTOPped process leave every thread stopped and the parent sees no extra stop or continue" {
	local ev=$BATS_TEST_TMPDIR/events sw pid addr site stops=0 conts=0 inside=0 i
	daemon_start stopwatch --events "$ev" "$D/stated" --mode park --threads 4
	sw=$DAEMON_PID
	pid=$(<"$DAEMON_READY")
	CONT_PIDS+=("$pid")
	DAEMON_PID=$pid
	addr=$(fn_addr park)
	site=$((addr + 4))	# after endbr64; 5 bytes displaced (three pauses: 6)
	for ((i = 1; i <= 20; i++)); do
		stop_all "$pid" && stops=$((stops + 1))
		events_wait "$ev" stopped "$stops"
		inside=$((inside + $(pcs_in $((site - 1)) $((site + 6)) "$pid")))
		patch park || fail "cycle $i: patch of the stopped process" || return 1
		still_stopped "$pid" "cycle $i, after the patch" || return 1
		kill -CONT "$pid" && conts=$((conts + 1))
		events_wait "$ev" continued "$conts"
		grows calls_park_v2 || fail "cycle $i: after SIGCONT, patched" || return 1

		stop_all "$pid" && stops=$((stops + 1))
		events_wait "$ev" stopped "$stops"
		inside=$((inside + $(pcs_in $((site - 1)) $((site + 6)) "$pid")))
		revert park || fail "cycle $i: revert of the stopped process" || return 1
		still_stopped "$pid" "cycle $i, after the revert" || return 1
		kill -CONT "$pid" && conts=$((conts + 1))
		events_wait "$ev" continued "$conts"
		grows calls_park || fail "cycle $i: after SIGCONT, reverted" || return 1
	done
	echo "# group-stopped: $inside thread stops found at the site or inside park's displaced bytes over 40 stops; $WOKE threads seen on their way back into the stop" >&3
	((inside > 0)) || fail "no thread was ever stopped inside park's displaced bytes: the state was not tested"

	# --verify on a stopped process: nothing can call park in the window, so the verdict is
	# inconclusive (exit 7, README "Proof that the new code runs"); the patch stays in place.
	if kernel_has_btf; then
		stop_all "$pid" && stops=$((stops + 1))
		events_wait "$ev" stopped "$stops"
		lp -p "$pid" -f park -t park_v2 --verify=0.3
		expect_rc 7
		[[ $(json verdict) == inconclusive ]] || fail "verify verdict $(json verdict), expected inconclusive" "stdout: $LP_OUT"
		still_stopped "$pid" "after --verify"
		kill -CONT "$pid" && conts=$((conts + 1))
		events_wait "$ev" continued "$conts"
		calls_only calls_park_v2 calls_park
		revert park --verify=0.3
		[[ $(json verdict) == pass ]] || fail "revert: verify verdict $(json verdict), expected pass" "stdout: $LP_OUT"
		calls_only calls_park calls_park_v2
	else
		say "this kernel has no BTF: --verify on a stopped process cannot be tested (verify.bats proves the refusal)"
	fi

	sleep 0.1	# a late notification would show up here
	(($(events_count "$ev" stopped) == stops)) ||
		fail "the parent saw $(events_count "$ev" stopped) stops, $stops SIGSTOPs were sent: $(tr '\n' ' ' <"$ev")"
	(($(events_count "$ev" continued) == conts)) ||
		fail "the parent saw $(events_count "$ev" continued) continues, $conts SIGCONTs were sent: $(tr '\n' ' ' <"$ev")"
	stop_stated "$sw"
	[[ $(tail -n1 "$ev") == "exited 0" ]] || fail "stopwatch's last event: $(tail -n1 "$ev")"
}

# --- (c) signal handlers whose saved context is inside the range ---------------------------

# handler_cycles VARIANT: stated --mode VARIANT; 20 cycles of sig_park while every thread
# sleeps in a handler whose saved rip is sig_park's site+2.
handler_cycles() {
	daemon_start stated --mode "$1" --threads 2 --handler-ms 5
	grows signals_handled
	cycles_switching 20 sig_park
	calls_only calls_sig_park calls_sig_park_v2
	alive
	stop_stated
	echo "# $1: signals sent $(status_get signals_sent), handled $(status_get signals_handled), nested $(status_get signals_nested)" >&3
	((${2:-0} == 0 || $(status_get signals_nested) > 0)) || fail "no nested signal was handled"
}

# Proves: returning from a handler whose saved rip is inside the displaced bytes is safe.
@test "signal handler with its saved context inside sig_park's displaced bytes (normal stack): 20 cycles" {
	handler_cycles handler
}

# Proves: the same with the handler running on a sigaltstack (SA_ONSTACK).
@test "signal handler on a sigaltstack with its saved context inside the displaced bytes: 20 cycles" {
	handler_cycles altstack
}

# Proves: two nested handlers, both saved contexts inside the displaced bytes, are safe.
@test "nested signal handlers, both saved contexts inside sig_park's displaced bytes: 20 cycles" {
	handler_cycles nested 1
}

# --- (d) blocked at the end of the range --------------------------------------------------

# edge_cycles KIND: stated --mode edge-KIND (calls of 100 ms); 20 cycles of edge_KIND, each
# patch made while threads are blocked with their PC at site+5, each followed at once by a
# forced restart of the blocked calls: the restart signal (SA_RESTART handler) to every
# edge thread, and a SIGSTOP/SIGCONT of the process (in turns, which first).
edge_cycles() {
	local kind=$1 f=edge_$1 addr pid n=2 i k blocked=0 sig sent=0
	daemon_start stated --mode "edge-$kind" --threads "$n" --sleep-ms 100 --feed-ms 100 --kick-ms 100
	pid=$DAEMON_PID
	sig=$(status_get restart_signal)
	addr=$(fn_addr "$f")
	grows "calls_$f"
	for ((i = 1; i <= 20; i++)); do
		blocked=$((blocked + $(pcs_at $((addr + 9)))))
		patch "$f" || fail "cycle $i: patch $f" || return 1
		if ((i % 2)); then
			for ((k = 0; k < n; k++)); do kill -s "$sig" "$pid" && sent=$((sent + 1)); done
			stop_all "$pid" && kill -CONT "$pid"
		else
			stop_all "$pid" && kill -CONT "$pid"
			for ((k = 0; k < n; k++)); do kill -s "$sig" "$pid" && sent=$((sent + 1)); done
		fi
		grows "calls_${f}_v2" || fail "cycle $i: after the patch and the forced restarts" || return 1
		revert "$f" || fail "cycle $i: revert $f" || return 1
		grows "calls_$f" || fail "cycle $i: after the revert" || return 1
	done
	echo "# $f: $blocked thread(s) blocked at site+5 at the 20 patches; $sent restart signals, $(status_get eintr_expected) EINTRs from them (expected), $(status_get eintr) unexpected" >&3
	((blocked > 0)) || fail "no thread was blocked at site+5 when a patch began: the state was not tested"
	calls_only "calls_$f" "calls_${f}_v2"
	alive
	status_wait_ge restart_external "$sent" "$DAEMON_STATUS" 3000
	stop_stated
	expect_key restart_external "$sent"
	# A read with a SA_RESTART handler never returns EINTR; nanosleep and pause do, by design.
	[[ $kind != read ]] || expect_key eintr_expected 0
}

# Proves: nanosleep blocked at site+5, restarted through the restart_block (SIGSTOP/SIGCONT).
@test "blocked at the end of the range in nanosleep: patch, then SIGSTOP/SIGCONT and the restart signal, 20 cycles" {
	edge_cycles nanosleep
}

# Proves: read blocked at site+5, restarted with -ERESTARTSYS (SA_RESTART handler, SIGSTOP/SIGCONT).
@test "blocked at the end of the range in read: patch, then the SA_RESTART signal and SIGSTOP/SIGCONT, 20 cycles" {
	edge_cycles read
}

# Proves: pause blocked at site+5, restarted with -ERESTARTNOHAND (SIGSTOP/SIGCONT).
@test "blocked at the end of the range in pause: patch, then SIGSTOP/SIGCONT and the restart signal, 20 cycles" {
	edge_cycles pause
}

# --- (e) blocked inside the range ----------------------------------------------------------

# Proves: threads blocked in a call whose syscall is inside the displaced bytes (one of them
# for the whole test) do not hold a patch past the default timeout.
@test "blocked inside the range (syscall at the site): every patch completes within the default timeout, 20 cycles each" {
	local f t0 ms worst=0 i
	daemon_start stated --mode inside --threads 2 --inside-long 3600000
	status_wait_ge inside_long_blocked 1
	for f in inside_nanosleep inside_read; do
		grows "calls_$f"
		for ((i = 1; i <= 20; i++)); do
			t0=${EPOCHREALTIME/./}
			patch "$f" || fail "cycle $i: patch $f (default timeout)" || return 1
			ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
			((ms > worst)) && worst=$ms
			grows "calls_${f}_v2" || fail "cycle $i: after the patch" || return 1
			revert "$f" || fail "cycle $i: revert $f" || return 1
			grows "calls_$f" || fail "cycle $i: after the revert" || return 1
		done
		calls_only "calls_$f" "calls_${f}_v2"
	done
	echo "# inside: slowest patch ${worst} ms; the long reader stayed blocked inside inside_read" >&3
	# The long reader was blocked at inside_read's site+2 through all 40 transactions.
	expect_key inside_long_blocked 1
	expect_key inside_long_calls 0
	alive
	stop_stated
}

# --- (f) frozen by the cgroup freezer ------------------------------------------------------

# frozen_state: "1" when the test's cgroup is frozen, else "0".
frozen_state() {
	if [[ $FZ_VER == v1 ]]; then
		[[ $(<"$FZ_CG/freezer.state") == FROZEN ]] && echo 1 || echo 0
	else
		grep -q '^frozen 1' "$FZ_CG/cgroup.events" && echo 1 || echo 0
	fi
}

freeze() {	# 1 | 0, and wait (<= 3 s) until the cgroup says so
	local n=0
	if [[ $FZ_VER == v1 ]]; then
		if (($1)); then echo FROZEN; else echo THAWED; fi >"$FZ_CG/freezer.state"
	else
		echo "$1" >"$FZ_CG/cgroup.freeze"
	fi
	until [[ $(frozen_state) == "$1" ]]; do
		((n++ < 300)) || fail "cgroup $FZ_CG: frozen state still $(frozen_state) 3 s after asking for $1" || return 1
		nap 10
	done
}

# frozen_cycles v1|v2 MOUNT: the daemon in a fresh cgroup under MOUNT; 20 x (freeze, patch
# with --timeout 300: exit 0 and still frozen, then thaw and calls switch, revert; or exit 6
# naming "frozen", text unchanged, still frozen, then thaw and the old calls go on).
frozen_cycles() {
	local addr sum0 i applied=0 refused=0
	FZ_VER=$1
	FZ_CG=$2/lp-states-$$-$BATS_TEST_NUMBER-$RANDOM
	mkdir "$FZ_CG"
	CGROUPS+=("$FZ_CG")
	if [[ $FZ_VER == v2 && ! -e $FZ_CG/cgroup.freeze ]]; then
		echo "# cgroup v2 freezer: $2 has no cgroup.freeze (kernel before 5.2), this state cannot occur" >&3
		return 0
	fi
	daemon_start stated --mode park --threads 2
	echo "$DAEMON_PID" >"$FZ_CG/cgroup.procs"
	addr=$(fn_addr park)
	for ((i = 1; i <= 20; i++)); do
		freeze 1 || return 1
		sum0=$(text_sum "$DAEMON_PID" "$addr" 32)
		lp -p "$DAEMON_PID" -f park -t park_v2 --timeout 300
		case $LP_RC in
		0)
			applied=$((applied + 1))
			expect_status applied || return 1
			[[ $(frozen_state) == 1 ]] || fail "cycle $i: the cgroup is no longer frozen after the patch" || return 1
			freeze 0 || return 1
			grows calls_park_v2 || fail "cycle $i: after the thaw, patched" || return 1
			revert park || fail "cycle $i: revert (thawed)" || return 1
			grows calls_park || fail "cycle $i: after the revert" || return 1
			;;
		6)
			refused=$((refused + 1))
			[[ $(json message) == *frozen* ]] ||
				fail "cycle $i: exit 6 without the word 'frozen': $(json message)" || return 1
			[[ $(text_sum "$DAEMON_PID" "$addr" 32) == "$sum0" ]] ||
				fail "cycle $i: exit 6, yet park's bytes changed" || return 1
			[[ $(frozen_state) == 1 ]] || fail "cycle $i: the cgroup is no longer frozen after the refusal" || return 1
			freeze 0 || return 1
			grows calls_park || fail "cycle $i: after the thaw, unpatched" || return 1
			;;
		*)
			expect_rc 0
			return 1
			;;
		esac
		alive || return 1
	done
	echo "# cgroup $FZ_VER freezer: $applied patch(es) applied while frozen (exit 0), $refused refused (exit 6, 'frozen')" >&3
	calls_only calls_park calls_park_v2
	stop_stated
}

# Proves: a process frozen by the cgroup v1 freezer is patched safely or refused intact.
@test "frozen by the cgroup v1 freezer: patch with --timeout 300 applies (still frozen) or refuses with exit 6 naming 'frozen', 20 cycles" {
	local mnt
	mnt=$(awk '$3 == "cgroup" && $4 ~ /(^|,)freezer(,|$)/ { print $2; exit }' /proc/mounts)
	if [[ -z $mnt ]]; then
		# The kernel cannot produce this state here: said in one line, not a skip.
		echo "# cgroup v1 freezer: no v1 freezer hierarchy is mounted here, this state cannot occur" >&3
		return 0
	fi
	frozen_cycles v1 "$mnt"
}

# Proves: a process frozen by the cgroup v2 freezer is patched safely or refused intact.
@test "frozen by the cgroup v2 freezer: patch with --timeout 300 applies (still frozen) or refuses with exit 6 naming 'frozen', 20 cycles" {
	local mnt
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	if [[ -z $mnt ]]; then
		echo "# cgroup v2 freezer: no cgroup2 hierarchy is mounted here, this state cannot occur" >&3
		return 0
	fi
	frozen_cycles v2 "$mnt"
}

# --- (g) stopped with a thread blocked at the end of the range -----------------------------

# Proves: a process stopped while a thread is blocked at site+5 is patched; on SIGCONT the
# call restarts (PC moved back 2 bytes) without landing in the jump.
@test "stopped while one thread is blocked at the end of the range: patch, SIGCONT restarts the call safely, 20 cycles" {
	local addr pid i n blocked=0
	daemon_start stated --mode park,edge-nanosleep --threads 1 --sleep-ms 200
	pid=$DAEMON_PID
	addr=$(fn_addr edge_nanosleep)
	grows calls_edge_nanosleep
	for ((i = 1; i <= 20; i++)); do
		n=0
		until (($(pcs_at $((addr + 9))) == 1)); do
			((n++ < 300)) || fail "cycle $i: the nanosleep thread is not blocked in edge_nanosleep" || return 1
			nap 10
		done
		stop_all "$pid" || return 1
		# The call was cut by the stop; its PC stays at site+5 until SIGCONT restarts it.
		(($(pcs_at $((addr + 9))) == 1)) && blocked=$((blocked + 1))
		patch edge_nanosleep || fail "cycle $i: patch of the stopped process" || return 1
		still_stopped "$pid" "cycle $i, after the patch" || return 1
		kill -CONT "$pid"
		grows calls_edge_nanosleep_v2 || fail "cycle $i: after SIGCONT" || return 1
		revert edge_nanosleep || fail "cycle $i: revert" || return 1
		grows calls_edge_nanosleep || fail "cycle $i: after the revert" || return 1
	done
	echo "# stopped with a thread at site+5: $blocked of 20 patches" >&3
	((blocked > 0)) || fail "the stopped thread was never at site+5: the state was not tested"
	calls_only calls_edge_nanosleep calls_edge_nanosleep_v2
	calls_only calls_park calls_park_v2
	alive
	stop_stated
}
