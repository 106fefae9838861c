#!/usr/bin/env bats
# --safe (issue 17, /work/notes/spec17.md): the last write happens only when no thread has a
# frame in a function being replaced ([F, F+size) when patching; [G, G+size) when reverting),
# checked again with backoff while the threads run on, until --timeout; then exit 6, rolled
# back, the process as before, each blocking thread named. The daemon is insided
# (test/daemons/insided.c): the reader sleeps in wait_in until a byte on its FIFO, then
# stays out of it; lwaiter calls waiter after each byte of its own FIFO; spinners call
# compute. Each test asserts on the daemon's counters and /proc as well as on the report.
# Needs root (ptrace), `make` and `make daemons`. LP_BIN overrides the livepatch binary.

# SC2154: stderr, stderr_lines are set by bats' run --separate-stderr.
# shellcheck disable=SC2154

bats_require_minimum_version 1.5.0
load ../lib

EXE=$LP_BUILD/daemons/insided
# shellcheck disable=SC2034 # lp (lib.bash) reads it
LP_TIMEOUT=30

setup_file() {
	lp_setup_file
	[[ -x $EXE ]] || fail "no insided in $LP_BUILD/daemons: run make daemons"
}

setup() {
	need_root
	# shellcheck disable=SC2034 # lp_teardown (lib.bash) kills them
	BG_PIDS=()
	# shellcheck disable=SC2034 # tx_add (lib.bash) fills it
	TX=()
	WAKE=$BATS_TEST_TMPDIR/wake
	LW=$BATS_TEST_TMPDIR/lwaiter
}

teardown() {
	lp_teardown
}

# --- helpers of this file ------------------------------------------------------------------

# fn F: FADDR, FSIZE, FSUM: F's run-time address, size and the sha256 of its bytes in memory.
fn() {
	FADDR=$(sym_addr "$DAEMON_PID" exe "$1") || return 1
	FSIZE=$(sym_field "$EXE" "$1" 3) || return 1
	FSUM=$(text_sum "$DAEMON_PID" "$FADDR" "$FSIZE")
}

# same_bytes F SUM: F's bytes in memory have the sha256 SUM.
same_bytes() {
	local a s
	a=$(sym_addr "$DAEMON_PID" exe "$1") || return 1
	s=$(text_sum "$DAEMON_PID" "$a" "$(sym_field "$EXE" "$1" 3)")
	[[ $s == "$2" ]] || fail "$1's bytes changed ($2 -> $s)"
}

# file_bytes F: F's bytes in memory are the file's (not patched).
file_bytes() {
	local size
	size=$(sym_field "$EXE" "$1" 3) || return 1
	[[ $(text_sum "$DAEMON_PID" "$(sym_addr "$DAEMON_PID" exe "$1")" "$size") == "$(sym_file_sum "$EXE" "$1" "$size")" ]] ||
		fail "$1's bytes in memory are not the file's"
}

# timed ARGS...: livepatch -p DAEMON ARGS (plain, stderr apart) under bats' run; MS = how long
# it took (wall clock, ms).
timed() {
	local t0 t1
	t0=${EPOCHREALTIME/./}
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" "$@"
	t1=${EPOCHREALTIME/./}
	MS=$(((t1 - t0) / 1000))
}

# refused_in TIMEOUT COMM FN ARGS...: livepatch ARGS --safe --timeout TIMEOUT (plain) exits 6
# after TIMEOUT ms (the checks went on that long) and before TIMEOUT + 2 s, with the one
# stderr line of the contract naming thread TID (COMM) in insided:FN, the thread's block on
# stdout; then the same with --json: error 6, safe.ok false, that thread among the blockers.
refused_in() {
	local timeout=$1 comm=$2 f=$3 re
	shift 3
	timed "$@" --safe --timeout "$timeout"
	((status == 6)) || fail "$* --safe: exit $status, expected 6; stderr: $stderr; stdout: $output" || return 1
	((MS >= timeout - 100 && MS < timeout + 2000)) ||
		fail "$* --safe --timeout $timeout: exit 6 after $MS ms, expected between $timeout and $((timeout + 2000))" || return 1
	((${#stderr_lines[@]} == 1)) || fail "not one line on stderr: $stderr" || return 1
	re="^livepatch: error: 1 thread stayed inside a function being replaced for [0-9]+ ms \(([0-9]+) checks?\): thread $TID \($comm\) in insided:$f; .*rolled back"
	[[ $stderr =~ $re ]] || fail "the error line does not name thread $TID ($comm) in insided:$f: $stderr" || return 1
	((BASH_REMATCH[1] >= 2)) || fail "only ${BASH_REMATCH[1]} check in $timeout ms: not retried" || return 1
	grep -Eq "^thread $TID \($comm\) .*: insided:$f\$" <<<"$output" ||
		fail "stdout has no block for thread $TID ($comm): $output" || return 1
	# The report of the rolled-back patch, with the blocks; not --where's header line.
	[[ ${lines[0]} == "process   $DAEMON_PID (insided), "* ]] || fail "stdout is not the patch's report: $output" || return 1
	! grep -Eq "^process $DAEMON_PID \(insided\): .* inside " <<<"$output" || fail "stdout has --where's header: $output" || return 1
	lp -p "$DAEMON_PID" "$@" --safe --timeout "$timeout"
	expect_rc 6 || return 1
	TID=$TID F="insided:$f" json_check "d['error']['code'] == 6" \
		"d['safe']['ok'] is False and d['safe']['checks'] >= 2" \
		"[b['tid'] for b in d['safe']['blockers']] == [int(os.environ['TID'])]" \
		"os.environ['F'] in d['safe']['blockers'][0]['inside']" \
		"d['safe']['blockers'][0]['comm'] == '$comm'" <<<"$LP_OUT"
}

# lw_byte: one byte to lwaiter's FIFO; waits (status file) until lwaiter took it and called
# waiter (waiter_calls grew by one).
lw_byte() {
	local c
	c=$(status_get waiter_calls) || return 1
	printf x >"$LW"
	status_wait_ge waiter_calls $((c + 1))
}

# --- patch: F has a thread inside -------------------------------------------------------------

# Proves: --safe refuses to patch wait_in while the reader sleeps in it: exit 6 once --timeout
# has passed (retried meanwhile, not sooner, not much later), the thread and F named, the
# bytes unchanged, the reader never woken (eintr 0, context switches, still in wait_in).
@test "--safe --func wait_in while the reader sleeps in it: exit 6 after --timeout, the reader named, nothing written" {
	local sw
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE"
	wait_blocked reader 0
	sw=$(switches "$TID")
	fn wait_in
	refused_in 1500 reader wait_in --func wait_in --target wait_in_v2
	same_bytes wait_in "$FSUM"
	file_bytes wait_in
	blocked_in "$TID" && ((SC == 0)) || fail "the reader is no longer asleep in read"
	[[ $(switches "$TID") == "$sw" ]] || fail "the reader was woken: context switches $sw -> $(switches "$TID")"
	expect_key reader_in 1
	expect_key reader_left 0
	expect_key eintr 0
	expect_key wait_in_v2_calls 0
	untraced
	grows old_calls
	# It is still there, unharmed: a byte makes it leave through the old code.
	printf x >"$WAKE"
	status_wait_ge reader_left 1
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}

# Proves: --safe finds each other way of being inside (docs/design.md §9) and refuses, the
# thread named, the bytes unchanged, no signal lost, nothing woken: recursion in F (the
# recurser, 21 frames deep, asleep at the bottom); F on the stack of a thread blocked two
# calls deeper (outer_poll -> middle -> poll); F interrupted by a signal whose handler sleeps
# (sig_body, through the signal frame); F reached by a tail call (tail_target, asleep).
# The target is never run: wait_in_v2 only has to exist.
@test "--safe refuses for recursion, a deeper block, a signal handler, a tail call" {
	local comm f sw
	daemon_start insided --recursion --deep-poll --signal-inside --tail
	for comm in recurser poller sigger tail; do
		wait_blocked "$comm" || return 1
	done
	for pair in recurser:recurse poller:outer_poll sigger:sig_body tail:tail_target; do
		comm=${pair%%:*} f=${pair#*:}
		TID=$(tid_of "$comm") || return 1
		sw=$(switches "$TID")
		fn "$f"
		refused_in 600 "$comm" "$f" --func "$f" --target wait_in_v2 || return 1
		same_bytes "$f" "$FSUM"
		[[ $(switches "$TID") == "$sw" ]] || fail "$comm was woken: context switches $sw -> $(switches "$TID")"
		say "--safe $f: refused, $comm named"
	done
	expect_key wait_in_v2_calls 0
	expect_key eintr 0
	expect_key errors 0
	untraced
	stop_clean
}

# Proves: without --safe the same patch applies (exit 0) with the reader asleep in wait_in,
# which it leaves untouched: its read is not cut (eintr 0) and it returns through the old
# code when its byte comes.
@test "without --safe, wait_in is patched with the reader asleep in it (exit 0); the reader leaves it unharmed" {
	daemon_start insided --pipe-reader --wake "$WAKE"
	wait_blocked reader 0
	fn wait_in
	patch wait_in wait_in_v2
	[[ $(text_sum "$DAEMON_PID" "$FADDR" "$FSIZE") != "$FSUM" ]] || fail "wait_in's bytes did not change"
	blocked_in "$TID" && ((SC == 0)) || fail "the reader is no longer asleep in read"
	expect_key reader_left 0
	printf x >"$WAKE"
	status_wait_ge reader_left 1
	expect_key wait_in_v2_calls 0	# it was in the old code, and finished there
	expect_key eintr 0
	expect_key errors 0
	revert wait_in
	file_bytes wait_in
	stop_clean
}

# Proves: once the reader has left wait_in (one byte, reader_left polled) --safe applies at
# once: exit 0, safe.ok, no blocker, at least one check; the plain report says so in its
# "safe:" line.
@test "--safe --func wait_in after the reader left it: exit 0, safe.checks >= 1" {
	daemon_start insided --pipe-reader --wake "$WAKE"
	printf x >"$WAKE"
	status_wait_ge reader_left 1
	wait_blocked reader 0	# now in idle_out
	lp -p "$DAEMON_PID" --safe --func wait_in --target wait_in_v2 --timeout 3000
	expect_rc 0
	expect_status applied
	json_check "d['safe']['ok'] is True" "d['safe']['checks'] >= 1" "d['safe']['blockers'] == []" \
		"d['safe']['waited_ms'] >= 0" <<<"$LP_OUT"
	revert wait_in
	timed --safe --func wait_in --target wait_in_v2 --timeout 3000
	((status == 0)) || fail "plain --safe: exit $status: $stderr"
	grep -Eq '^safe: no thread inside \([0-9]+ checks?, ([0-9.]+ ms|waited [0-9.]+ ms)\)$' <<<"$output" ||
		fail "no 'safe: no thread inside (N checks, ...)' line: $output"
	revert wait_in
	expect_key out_bytes 0
	expect_key eintr 0
	stop_clean
}

# Proves: with threads hot in compute (PC inside it a good part of the time), --safe retries
# until a check finds none inside and then applies: exit 0, and the calls move to
# compute_fixed (new_calls grows, old_calls stays put). --safe --revert likewise moves them
# back. Two outcomes for the number of checks (1 or more): the test says which occurred.
@test "--safe compute -> compute_fixed with hot spinners: applied once none is inside; new_calls grows; --safe --revert back" {
	daemon_start insided --spinners 2
	grows old_calls
	lp -p "$DAEMON_PID" --safe --func compute --target compute_fixed --timeout 5000
	expect_rc 0
	expect_status applied
	json_check "d['safe']['ok'] is True" "d['safe']['checks'] >= 1" "d['safe']['blockers'] == []" <<<"$LP_OUT"
	say "--safe compute: $(json_get "d['safe']['checks']" <<<"$LP_OUT") check(s) before none was inside"
	switched new_calls old_calls
	lp -p "$DAEMON_PID" --safe --revert compute --timeout 5000
	expect_rc 0
	expect_status reverted
	json_check "d['safe']['ok'] is True" "d['safe']['checks'] >= 1" <<<"$LP_OUT"
	switched old_calls new_calls
	file_bytes compute
	stop_clean
}

# Proves: with a plan, --safe checks every F of it, and the plan is one transaction: the
# reader asleep in wait_in holds back compute's patch too (exit 6, the reader named, both
# functions as they were, compute still getting the calls); once the reader has left, both
# are patched (exit 0) and the calls move to compute_fixed. Spinners may be inside compute at
# a check as well: the test asserts that the reader is among the blockers, not that it is
# the only one.
@test "--safe --plan (compute, wait_in) while the reader sleeps in wait_in: all or nothing" {
	local plan=$BATS_TEST_TMPDIR/plan w c
	printf '# safe.bats\ncompute compute_fixed\nwait_in wait_in_v2\n' >"$plan"
	daemon_start insided --spinners 2 --pipe-reader --wake "$WAKE"
	wait_blocked reader 0
	fn wait_in
	w=$FSUM
	fn compute
	c=$FSUM
	timed --safe --plan "$plan" --timeout 1000
	((status == 6)) || fail "exit $status, expected 6: $stderr $output"
	[[ $stderr == *"thread $TID (reader) in insided:wait_in"* ]] || fail "the reader is not named: $stderr"
	lp -p "$DAEMON_PID" --safe --plan "$plan" --timeout 1000
	expect_rc 6
	TID=$TID json_check "d['safe']['ok'] is False" \
		"int(os.environ['TID']) in [b['tid'] for b in d['safe']['blockers']]" <<<"$LP_OUT"
	same_bytes wait_in "$w"
	same_bytes compute "$c"
	grows_by old_calls 200
	expect_key new_calls 0
	printf x >"$WAKE"
	status_wait_ge reader_left 1
	wait_blocked reader 0
	lp -p "$DAEMON_PID" --safe --plan "$plan" --timeout 5000
	expect_rc 0
	json_check "d['safe']['ok'] is True" "d['safe']['blockers'] == []" <<<"$LP_OUT"
	switched new_calls old_calls
	fn wait_in
	[[ $FSUM != "$w" ]] || fail "wait_in was not patched by the plan"
	expect_key eintr 0
	stop_clean
}

# --- revert: a thread inside the code F jumped to ------------------------------------------

# Proves: for --revert, --safe checks the target G (the code F jumps to): with waiter
# patched to wait_in and lwaiter asleep in wait_in through it, --safe --revert waiter is
# refused (exit 6, lwaiter and wait_in named, the jump kept); once lwaiter has returned it
# applies, and the next call runs the old waiter again (waiter_old).
@test "--safe --revert waiter while lwaiter sleeps in its target wait_in: exit 6; after it returned, reverted" {
	local patched
	daemon_start insided --waiter "$LW"
	wait_blocked lwaiter 0
	fn waiter
	patch waiter wait_in
	patched=$(text_sum "$DAEMON_PID" "$FADDR" "$FSIZE")
	lw_byte	# lwaiter calls waiter -> wait_in, and sleeps there
	wait_blocked lwaiter 0
	expect_key waiter_returns 0
	refused_in 1000 lwaiter wait_in --revert waiter
	same_bytes waiter "$patched"
	expect_key waiter_returns 0
	expect_key eintr 0
	printf x >"$LW"	# wait_in returns; lwaiter back in its own read
	status_wait_ge waiter_returns 1
	wait_blocked lwaiter 0
	lp -p "$DAEMON_PID" --safe --revert waiter --timeout 3000
	expect_rc 0
	expect_status reverted
	json_check "d['safe']['ok'] is True" "d['safe']['blockers'] == []" <<<"$LP_OUT"
	file_bytes waiter
	expect_key waiter_old 0
	lw_byte
	status_wait_ge waiter_old 1	# the old waiter runs again
	status_wait_ge waiter_returns 2
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}

# Proves: --safe --revert-all checks the targets of every function it reverts: refused
# (exit 6, both jumps kept) while lwaiter sleeps in one of them (wait_in, through waiter);
# once it has left, every function is reverted (exit 0) and runs the file's bytes again.
# (compute -> compute_fixed has no caller here: no spinner may be inside compute_fixed at
# the last check, so lwaiter is the one blocker.)
@test "--safe --revert-all: refused while lwaiter sleeps in a target; done once it left" {
	local w c
	daemon_start insided --waiter "$LW"
	wait_blocked lwaiter 0
	patch compute compute_fixed
	patch waiter wait_in
	fn waiter
	w=$FSUM
	fn compute
	c=$FSUM
	lw_byte
	wait_blocked lwaiter 0
	refused_in 1000 lwaiter wait_in --revert-all
	same_bytes waiter "$w"
	same_bytes compute "$c"
	printf x >"$LW"
	status_wait_ge waiter_returns 1
	wait_blocked lwaiter 0
	lp -p "$DAEMON_PID" --safe --revert-all --timeout 5000
	expect_rc 0
	json_check "d['safe']['ok'] is True" "d['safe']['blockers'] == []" <<<"$LP_OUT"
	file_bytes waiter
	file_bytes compute
	lw_byte
	status_wait_ge waiter_old 1
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}

# --- usage ---------------------------------------------------------------------------------

# Proves: --safe does not go with --callsites (exit 2, usage, one error line), nothing written.
@test "--safe with --callsites: exit 2" {
	daemon_start insided --spinners 1
	fn compute
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --safe --callsites \
		--func compute --target compute_fixed
	((status == 2)) || fail "exit $status, expected 2: $stderr $output"
	((${#stderr_lines[@]} == 1)) && [[ $stderr == "livepatch: error: "* ]] || fail "not one error line: $stderr"
	same_bytes compute "$FSUM"
	untraced
	grows old_calls
	expect_key new_calls 0
	stop_clean
}

# --- regressions (hostile tester, issue 17) ------------------------------------------------

# Proves (regression: a stack mapping split by madvise MADV_DONTDUMP, as libsodium's
# sodium_mlock does, hid the frames beyond the split, and --safe applied): --safe --func
# split_outer refuses, for a thread asleep in read(2) under split_inner (past the split)
# and for one spinning there, each named; split_outer's bytes unchanged, the sleeper not
# woken, the spinner still spinning. wait_in_v2 is never run.
@test "--safe --func split_outer with a thread beyond a split stack mapping (asleep, spinning): exit 6" {
	local sw
	daemon_start insided --split-sleep
	wait_blocked splitsleep 0
	sw=$(switches "$TID")
	fn split_outer
	refused_in 600 splitsleep split_outer --func split_outer --target wait_in_v2
	same_bytes split_outer "$FSUM"
	[[ $(switches "$TID") == "$sw" ]] || fail "splitsleep was woken: context switches $sw -> $(switches "$TID")"
	expect_key eintr 0
	expect_key errors 0
	untraced
	stop_clean
	daemon_start insided --split-spin
	TID=$(tid_of splitspin)
	grep -Eq '^VmFlags:.* dd( |$)' "/proc/$DAEMON_PID/smaps" || fail "no mapping marked dd: the stack was not split"
	fn split_outer
	refused_in 600 splitspin split_outer --func split_outer --target wait_in_v2
	same_bytes split_outer "$FSUM"
	grows split_spins
	expect_key wait_in_v2_calls 0
	expect_key errors 0
	untraced
	stop_clean
}

# Proves (regression: a signal frame with the program's own restorer was not recognized,
# and --safe applied while a handler slept over F): thread altsig was spinning in the leaf
# alt_leaf when SIGUSR2 came; the handler (raw rt_sigaction, SA_RESTORER with
# insided_restorer, on a sigaltstack) sleeps in nanosleep. --safe --func alt_leaf refuses
# naming altsig; the bytes unchanged, the handler not woken (one signal, still inside).
@test "--safe --func alt_leaf under a raw SA_RESTORER handler on a sigaltstack: exit 6" {
	local sw
	daemon_start insided --altsig
	wait_blocked altsig 35 230
	sw=$(switches "$TID")
	fn alt_leaf
	refused_in 600 altsig alt_leaf --func alt_leaf --target wait_in_v2
	same_bytes alt_leaf "$FSUM"
	[[ $(switches "$TID") == "$sw" ]] || fail "altsig was woken: context switches $sw -> $(switches "$TID")"
	expect_key alt_handled 1
	expect_key alt_in_handler 1
	expect_key eintr 0
	expect_key errors 0
	expect_key signals_other 0
	untraced
	stop_clean
}
