#!/usr/bin/env bats
# --unload PATCH (issue 17, /work/notes/spec17.md): one transaction reverts every function
# whose jump goes into a loaded patch, checks (as --safe) that no thread's PC or return
# address is inside the patch's mapped region, and unmaps it; refused (exit 6, the thread
# named) while one is. `--revert-all --unload` puts the process back as it started. The
# daemon is insided (test/daemons/insided.c) with --waiter: its thread lwaiter calls waiter
# after each byte of a FIFO; the patch test/patches/sleeper.c replaces waiter by
# wait_in_patched, which reads one more byte, so after a byte lwaiter sleeps in read(2)
# with its return address in the loaded text until the next byte (patched_entered,
# patched_bytes count it). Needs root (ptrace), `make`, `make daemons` and `make patches`.
# LP_BIN overrides the livepatch binary.

# SC2154: stderr, stderr_lines are set by bats' run --separate-stderr.
# shellcheck disable=SC2154

bats_require_minimum_version 1.5.0
load ../lib

EXE=$LP_BUILD/daemons/insided
SLEEPER=$LP_BUILD/patches/sleeper/sleeper.o
# shellcheck disable=SC2034 # lp (lib.bash) reads it
LP_TIMEOUT=30

setup_file() {
	lp_setup_file
	[[ -x $EXE ]] || fail "no insided in $LP_BUILD/daemons: run make daemons" || return 1
	[[ -f $SLEEPER ]] || fail "no $SLEEPER: run make patches"
}

setup() {
	need_root
	# shellcheck disable=SC2034 # lp_teardown (lib.bash) kills them
	BG_PIDS=()
	# shellcheck disable=SC2034 # tx_add (lib.bash) fills it
	TX=()
	LW=$BATS_TEST_TMPDIR/lwaiter
}

teardown() {
	lp_teardown
}

# --- helpers of this file ------------------------------------------------------------------

# start [ARGS...]: insided --waiter FIFO ARGS, lwaiter asleep in its own read; WSIZE: waiter's
# size; MAPS0: the maps as the process started.
start() {
	daemon_start insided --waiter "$LW" "$@" || return 1
	wait_blocked lwaiter 0 || return 1
	WSIZE=$(sym_field "$EXE" waiter 3)
	MAPS0=$(maps_now)
}

# load_sleeper [ARGS...]: --load sleeper.o, waiter -> wait_in_patched: exit 0, applied, one
# region of sleeper.o mapped.
load_sleeper() {
	lp -p "$DAEMON_PID" --load "$SLEEPER" --func waiter --target wait_in_patched "$@"
	expect_rc 0 && expect_status applied || return 1
	[[ $(lp_regions sleeper.o) == 1 ]] || fail "$(lp_regions sleeper.o) regions of sleeper.o after --load"
}

# into_patch: one byte; lwaiter calls waiter, which jumps into sleeper.o, and sleeps in its
# read (patched_entered grew by one; asleep in read(2) again).
into_patch() {
	local n
	n=$(status_get patched_entered) || return 1
	printf x >"$LW"
	status_wait_ge patched_entered $((n + 1)) && wait_blocked lwaiter 0
}

# out_of_patch: one byte; wait_in_patched returns, lwaiter is back in its own read
# (waiter_returns grew by one): no thread inside the patch.
out_of_patch() {
	local n
	n=$(status_get waiter_returns) || return 1
	printf x >"$LW"
	status_wait_ge waiter_returns $((n + 1)) && wait_blocked lwaiter 0
}

# waiter_is_file: waiter's bytes in memory are the file's.
waiter_is_file() {
	[[ $(text_sum "$DAEMON_PID" "$(sym_addr "$DAEMON_PID" exe waiter)" "$WSIZE") == "$(sym_file_sum "$EXE" waiter "$WSIZE")" ]] ||
		fail "waiter's bytes in memory are not the file's"
}

# waiter_patched: waiter's bytes differ from the file's (it jumps somewhere).
waiter_patched() {
	[[ $(text_sum "$DAEMON_PID" "$(sym_addr "$DAEMON_PID" exe waiter)" "$WSIZE") != "$(sym_file_sum "$EXE" waiter "$WSIZE")" ]] ||
		fail "waiter is not patched"
}

# maps_now: the daemon's /proc/PID/maps without livepatch's execute-out-of-line page (an
# anonymous r-x page that starts with "livepatch-xol": docs/design.md §5) and its shield (an
# anonymous r-x page that starts with "livepatch-shield", and its table right after it:
# §11), both kept by design, so not part of "as it started".
maps_now() {
	local line range perm path head after=
	while read -r line; do
		read -r range perm _ _ _ path <<<"$line"
		[[ ${range%-*} == "$after" && ( -z $path || $path == "[anon:livepatch-shield]" ) ]] && continue
		if [[ ( -z $path || $path == \[anon:livepatch-* ) && $perm == r-x? ]]; then
			head=$(dd if="/proc/$DAEMON_PID/mem" bs=1 iflag=skip_bytes skip=$((0x${range%-*})) count=16 status=none 2>/dev/null | tr -d '\0')
			[[ $head == livepatch-xol* ]] && continue
			if [[ $head == livepatch-shield ]]; then
				after=${range#*-}
				continue
			fi
		fi
		echo "$line"
	done <"/proc/$DAEMON_PID/maps"
}

# list_clean: --list finds nothing changed and no loaded patch (plain and JSON).
list_clean() {
	run timeout -k 5 60 "$LP" -p "$DAEMON_PID" --list
	((status == 0)) || fail "--list: exit $status: $output" || return 1
	[[ $output == *"0 function(s) differ"* ]] || fail "--list finds changes: $output" || return 1
	[[ $output != *"loaded patch"* ]] || fail "--list still shows a loaded patch: $output" || return 1
	lp -p "$DAEMON_PID" --list
	expect_rc 0 || return 1
	json_check "not d['changed']" "not d.get('load')" <<<"$LP_OUT"
}

# region NAME: LO, HI = the extent of the mappings of /memfd:livepatch:NAME (the whole patch).
region() {
	local range path a b
	LO='' HI=''
	while read -r range _ _ _ _ path _; do
		[[ $path == "/memfd:livepatch:$1" ]] || continue
		a=$((0x${range%-*}))
		b=$((0x${range#*-}))
		if [[ -z $LO ]] || ((a < LO)); then LO=$a; fi
		if [[ -z $HI ]] || ((b > HI)); then HI=$b; fi
	done <"/proc/$DAEMON_PID/maps"
	[[ -n $LO ]] || fail "no mapping of /memfd:livepatch:$1"
}

# --- the fixture -----------------------------------------------------------------------------

# Proves the fixture (with --load only, no --unload): before the patch lwaiter calls the old
# waiter; after it, each byte puts lwaiter to sleep in read(2) with a return address inside
# the loaded region, and the next byte takes it out with no word of the region left on its
# stack (insided scrubs it): the two states the tests below need, seen from /proc.
@test "insided + sleeper.o: lwaiter sleeps inside the loaded patch after a byte, and leaves no trace of it" {
	start
	out_of_patch	# no patch yet: the daemon's own waiter
	expect_key waiter_old 1
	load_sleeper
	region sleeper.o
	into_patch
	(($(stack_hits "$TID" "$LO" "$HI") >= 1)) || fail "no return address into sleeper.o on lwaiter's stack"
	expect_key patched_bytes 0
	expect_key waiter_returns 1
	out_of_patch
	expect_key patched_bytes 1
	(($(stack_hits "$TID" "$LO" "$HI") == 0)) || fail "words of sleeper.o left on lwaiter's stack after it returned"
	into_patch
	expect_key patched_entered 2
	expect_key waiter_old 1
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}

# --- refused, then done ----------------------------------------------------------------------

# Proves: --unload is refused (exit 6, one error line naming lwaiter's TID and comm) while
# lwaiter sleeps inside the loaded code, after the checks went on until --timeout; the patch
# stays mapped and in use (waiter still jumps into it, --list shows it), and lwaiter was not
# woken (still asleep in the patch: patched_bytes 0, eintr 0).
@test "--unload sleeper.o while lwaiter sleeps in it: exit 6 naming the thread; still mapped and in use" {
	local t0 ms
	start
	load_sleeper
	into_patch
	t0=${EPOCHREALTIME/./}
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload sleeper.o --timeout 1000
	ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	((status == 6)) || fail "exit $status, expected 6: $stderr $output"
	((${#stderr_lines[@]} == 1)) && [[ $stderr == "livepatch: error: "* ]] || fail "not one error line: $stderr"
	[[ $stderr == *"thread $TID (lwaiter)"* ]] || fail "the error does not name thread $TID (lwaiter): $stderr"
	((ms >= 900 && ms < 3000)) || fail "refused after $ms ms with --timeout 1000"
	lp -p "$DAEMON_PID" --unload sleeper.o --timeout 1000
	expect_rc 6
	TID=$TID json_check "d['error']['code'] == 6" "d['safe']['ok'] is False" \
		"[b['tid'] for b in d['safe']['blockers']] == [int(os.environ['TID'])]" \
		"d['safe']['blockers'][0]['comm'] == 'lwaiter'" "not d.get('unloaded')" <<<"$LP_OUT"
	# Rolled back: mapped, waiter still jumps into it, lwaiter asleep in it.
	[[ $(lp_regions sleeper.o) == 1 ]] || fail "$(lp_regions sleeper.o) regions of sleeper.o after the refusal"
	grep -q '/memfd:livepatch:sleeper.o' "/proc/$DAEMON_PID/maps"
	waiter_patched
	run timeout -k 5 60 "$LP" -p "$DAEMON_PID" --list
	[[ $output == *"loaded patch sleeper.o"* ]] || fail "--list does not show sleeper.o: $output"
	blocked_in "$TID" && ((SC == 0)) || fail "lwaiter is no longer asleep in read"
	expect_key patched_bytes 0
	expect_key eintr 0
	untraced
	# It wakes inside the patch as it should, and the patch still works.
	out_of_patch
	expect_key patched_bytes 1
	into_patch
	expect_key patched_entered 2
	expect_key errors 0
	stop_clean
}

# Proves: once lwaiter has left the patch, --unload reverts waiter and unmaps the patch in one
# run (exit 0): the JSON names what was unloaded (name, base, size, the file's sha256, the
# functions reverted), the maps no longer show it, --list shows nothing, waiter's bytes are
# the file's and the next call runs the old waiter. The load went with --safe (lwaiter
# outside waiter: exit 0 at once).
@test "--unload sleeper.o once lwaiter left it: exit 0; unmapped, waiter as in the file, old code runs" {
	local sum
	sum=$(sha256sum "$SLEEPER" | cut -d' ' -f1)
	start
	load_sleeper --safe
	json_check "d['safe']['ok'] is True" <<<"$LP_OUT"
	into_patch
	out_of_patch
	lp -p "$DAEMON_PID" --unload sleeper.o --timeout 3000
	expect_rc 0
	SUM=$sum json_check "len(d['unloaded']) == 1" \
		"d['unloaded'][0]['name'] == 'sleeper.o' and d['unloaded'][0]['sha256'] == os.environ['SUM']" \
		"re.fullmatch('0x[0-9a-f]+', d['unloaded'][0]['base']) and d['unloaded'][0]['size'] > 0" \
		"d['unloaded'][0]['reverted'] == ['insided:waiter']" \
		"d['safe']['ok'] is True and d['safe']['checks'] >= 1 and d['safe']['blockers'] == []" <<<"$LP_OUT"
	lp_no_region
	if grep -q 'memfd:livepatch:sleeper.o' "/proc/$DAEMON_PID/maps"; then
		fail "the maps still show sleeper.o: $(grep 'memfd:livepatch' "/proc/$DAEMON_PID/maps")"
	fi
	waiter_is_file
	list_clean
	[[ $(maps_now) == "$MAPS0" ]] || fail "the maps differ from the start: $(diff <(echo "$MAPS0") <(maps_now))"
	# The next byte runs the daemon's own waiter, not the patch.
	printf x >"$LW"
	status_wait_ge waiter_old 1
	expect_key patched_entered 1
	expect_key eintr 0
	expect_key errors 0
	untraced
	stop_clean
}

# Proves: PATCH may be the base address --list shows (0x...), and the check is retried while
# the threads run: with lwaiter inside when livepatch attaches and woken meanwhile, --unload
# succeeds within its --timeout after two checks or more.
@test "--unload 0xBASE, retried until lwaiter left the patch: exit 0 within --timeout" {
	local base lpid rc=0 n=0
	start
	load_sleeper
	base=0x$(map_base "$DAEMON_PID" /memfd:livepatch:sleeper.o)
	[[ $base != 0x ]] || fail "no mapping of /memfd:livepatch:sleeper.o at offset 0"
	into_patch
	"$LP" -p "$DAEMON_PID" --unload "$base" --timeout 10000 --json >"$BATS_TEST_TMPDIR/bg.json" \
		2>"$BATS_TEST_TMPDIR/bg.err" 3>&- &
	lpid=$!
	BG_PIDS+=("$lpid")
	# Attached (the daemon traced: its checks run now; up to 1 s, as it may check before it
	# attaches), then 300 ms for a first check that finds lwaiter inside, then the byte.
	# (A fixed pause, not a proof: checks >= 2 below is what shows the retry happened.)
	until [[ $(proc_field "$DAEMON_PID" TracerPid) =~ ^[1-9] ]] || ((n++ >= 100)); do
		kill -0 "$lpid" 2>/dev/null || fail "livepatch ended before lwaiter was woken: $(cat "$BATS_TEST_TMPDIR"/bg.*)" || return 1
		nap 10
	done
	nap 300
	kill -0 "$lpid" 2>/dev/null || fail "livepatch ended before lwaiter was woken: $(cat "$BATS_TEST_TMPDIR"/bg.*)" || return 1
	printf x >"$LW"
	wait "$lpid" || rc=$?
	((rc == 0)) || fail "--unload $base: exit $rc: $(cat "$BATS_TEST_TMPDIR"/bg.*)"
	LP_OUT=$(<"$BATS_TEST_TMPDIR/bg.json")
	BASE=$base json_check "d['unloaded'][0]['name'] == 'sleeper.o'" \
		"int(d['unloaded'][0]['base'], 16) == int(os.environ['BASE'], 16)" \
		"d['safe']['checks'] >= 2 and d['safe']['ok'] is True" <<<"$LP_OUT"
	say "--unload waited $(json_get "d['safe']['waited_ms']" <<<"$LP_OUT") ms over $(json_get "d['safe']['checks']" <<<"$LP_OUT") checks"
	status_wait_ge waiter_returns 1
	lp_no_region
	waiter_is_file
	expect_key eintr 0
	stop_clean
}

# --- no such patch, usage --------------------------------------------------------------------

# Proves: a name no loaded patch has is a symbol-like problem (exit 4) with the contract's
# message, whether or not another patch is loaded; nothing changes.
@test "--unload nosuch.o: exit 4, 'no loaded patch named nosuch.o (see --list)'" {
	start
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload nosuch.o
	((status == 4)) || fail "exit $status, expected 4: $stderr $output"
	[[ $stderr == *"no loaded patch named nosuch.o (see --list)"* ]] || fail "not the contract's message: $stderr"
	load_sleeper
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload nosuch.o
	((status == 4)) || fail "exit $status with sleeper.o loaded, expected 4: $stderr $output"
	[[ $stderr == *"no loaded patch named nosuch.o (see --list)"* ]] || fail "not the contract's message: $stderr"
	lp -p "$DAEMON_PID" --unload nosuch.o
	expect_rc 4
	json_check "d['error']['code'] == 4" <<<"$LP_OUT"
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload 0x1000
	((status == 4)) || fail "--unload 0x1000: exit $status, expected 4: $stderr $output"
	[[ $(lp_regions sleeper.o) == 1 ]] || fail "sleeper.o is gone"
	waiter_patched
	into_patch	# still in use
	expect_key eintr 0
	untraced
	stop_clean
}

# Proves: --revert-all --unload reverts every function livepatch changed (a plain patch and
# one into the loaded object) and unloads every loaded patch: the maps as they were at the
# start (but livepatch's out-of-line page, kept by design), the text of compute and waiter
# the file's, --list clean, the old code running.
@test "--revert-all --unload: the process as it started (maps and text)" {
	start --spinners 1
	patch compute compute_fixed
	load_sleeper
	into_patch
	out_of_patch
	grows new_calls
	lp -p "$DAEMON_PID" --revert-all --unload
	expect_rc 0
	json_check "[u['name'] for u in d['unloaded']] == ['sleeper.o']" \
		"d['unloaded'][0]['reverted'] == ['insided:waiter']" "d['safe']['ok'] is True" <<<"$LP_OUT"
	lp_no_region
	[[ $(maps_now) == "$MAPS0" ]] || fail "the maps differ from the start: $(diff <(echo "$MAPS0") <(maps_now))"
	waiter_is_file
	local size
	size=$(sym_field "$EXE" compute 3)
	[[ $(text_sum "$DAEMON_PID" "$(sym_addr "$DAEMON_PID" exe compute)" "$size") == "$(sym_file_sum "$EXE" compute "$size")" ]] ||
		fail "compute's bytes are not the file's"
	list_clean
	switched old_calls new_calls
	printf x >"$LW"
	status_wait_ge waiter_old 1
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}

# Proves: --unload needs a PATCH unless it goes with --revert-all (exit 2, usage), and
# nothing is touched.
@test "--unload without PATCH and without --revert-all: exit 2" {
	start
	load_sleeper
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload
	((status == 2)) || fail "exit $status, expected 2: $stderr $output"
	[[ $stderr == "livepatch: error: "* ]] || fail "no error line: $stderr"
	[[ $(lp_regions sleeper.o) == 1 ]] || fail "sleeper.o is gone"
	waiter_patched
	untraced
	stop_clean
}

# Proves: a patch another loaded patch calls into is not unloaded alone (exit 5, both named,
# nothing changed: the process still computes with both); unloading the caller first, then
# it, works, and the daemon runs on the file's code. patchd with test/patches/multi: the
# second object binds to the first (docs/design.md §8).
@test "--unload of a patch another loaded patch calls: exit 5 naming both; caller first, then it" {
	local m=$LP_BUILD/patches/multi
	[[ -f $m/multi_helper.o && -f $m/multi_main.o ]] || fail "no $m objects: run make patches"
	daemon_start patchd
	lp -p "$DAEMON_PID" --load "$m/multi_helper.o" --load "$m/multi_main.o" \
		--func handle_request --target multi_main.o:handle_request_fixed
	expect_rc 0 && expect_status applied
	status_wait_change calls_new
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload multi_helper.o
	((status == 5)) || fail "exit $status, expected 5: $stderr $output"
	((${#stderr_lines[@]} == 1)) || fail "not one line on stderr: $stderr"
	[[ $stderr == "livepatch: error: loaded patch multi_main.o refers to multi_helper.o "*"(unload both: --unload multi_helper.o --unload multi_main.o)" ]] ||
		fail "not the refusal naming both: $stderr"
	[[ $(lp_regions multi_helper.o) == 1 && $(lp_regions multi_main.o) == 1 ]] || fail "a patch was unmapped"
	untraced
	grows calls_new
	lp -p "$DAEMON_PID" --unload multi_main.o
	expect_rc 0
	lp -p "$DAEMON_PID" --unload multi_helper.o
	expect_rc 0
	lp_no_region
	grows calls_old
	stop_clean
}

# --- regressions (hostile tester, issue 17) ------------------------------------------------

TIMESPIN=$LP_BUILD/patches/timespin/timespin.o

# spin_start: insided --time-spin FIFO --time-stop FIFO (TS, TSTOP), timer asleep in its own
# read; timespin.o loaded, gate -> gate_patched (exit 0, one region mapped).
spin_start() {
	TS=$BATS_TEST_TMPDIR/ts TSTOP=$BATS_TEST_TMPDIR/tstop
	[[ -f $TIMESPIN ]] || fail "no $TIMESPIN: run make patches" || return 1
	daemon_start insided --time-spin "$TS" --time-stop "$TSTOP" || return 1
	wait_blocked timer 0 || return 1
	lp -p "$DAEMON_PID" --load "$TIMESPIN" --func gate --target gate_patched
	expect_rc 0 && expect_status applied || return 1
	[[ $(lp_regions timespin.o) == 1 ]] || fail "$(lp_regions timespin.o) regions of timespin.o after --load"
}

# Proves (regression: a thread stopped in the vDSO, called through libc's time() from a
# loaded patch, was not unwound past the vDSO and --where missed it now and then, or
# called it stale): one byte sends timer into gate_patched, which spins in the daemon's
# time_spin on time(NULL) (running, never in a system call). --where gate_patched lists
# timer in 40 of 40 runs, never under stale; --unload timespin.o is refused (exit 6,
# timer named). After a stop byte the thread has left the patch (gate_returns counted),
# --unload exits 0, and the daemon runs on: the next byte runs the old gate (gate_old).
@test "--where gate_patched: a thread spinning in time() (vDSO) from a loaded patch, 40 of 40; --unload 6, then 0" {
	local i ret
	spin_start
	printf x >"$TS"
	status_wait_ge gate_entered 1
	status_wait_ge time_spinning 1
	TID=$(tid_of timer)
	grows time_loops
	for i in {1..40}; do
		lp -p "$DAEMON_PID" --where gate_patched
		expect_rc 0 || return 1
		TID=$TID json_check "[t['tid'] for t in d['where']['threads']] == [int(os.environ['TID'])]" \
			"d['where']['threads'][0]['inside'] == ['timespin.o:gate_patched']" \
			"d['where']['stale'] == []" <<<"$LP_OUT" || fail "run $i of 40" || return 1
	done
	expect_key gate_left 0
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload timespin.o --timeout 500
	((status == 6)) || fail "--unload while timer spins in the patch: exit $status, expected 6: $stderr $output"
	((${#stderr_lines[@]} == 1)) && [[ $stderr == *"thread $TID (timer)"* ]] ||
		fail "not one error line naming thread $TID (timer): $stderr"
	[[ $(lp_regions timespin.o) == 1 ]] || fail "timespin.o was unmapped while timer spins in it"
	grows time_loops
	# Stop the spin; timer returns out of the patch and blocks in its own read.
	ret=$(status_get gate_returns)
	printf x >"$TSTOP"
	status_wait_ge gate_returns $((ret + 1))
	expect_key gate_left 1
	wait_blocked timer 0
	lp -p "$DAEMON_PID" --unload timespin.o
	expect_rc 0
	lp_no_region
	untraced
	printf x >"$TS"
	status_wait_ge gate_old 1
	expect_key gate_entered 1
	grows uptime_ms
	alive
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}

# Proves (regression: --unload unmapped a patch that a call site rewritten by --callsites
# still called, and the daemon died at its next call): sleeper.o loaded, waiter reverted,
# then `--callsites --func waiter --target sleeper.o:wait_in_patched` (lwaiter_main's call
# now goes into the patch: the next bytes reach wait_in_patched, counted). --unload
# sleeper.o is refused, exit 5, one line saying to revert the calls first; still mapped,
# the daemon alive and still calling into it. After `--revert waiter --callsites`, --unload
# exits 0 and the old waiter gets the calls.
@test "--unload of a patch a --callsites call site calls: exit 5 until --revert --callsites, then 0" {
	local old
	start
	load_sleeper
	revert waiter
	lp -p "$DAEMON_PID" --callsites --func waiter --target sleeper.o:wait_in_patched
	expect_rc 0 || return 1
	waiter_is_file
	into_patch
	out_of_patch
	expect_key patched_entered 1
	expect_key patched_bytes 1
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --unload sleeper.o
	((status == 5)) || fail "exit $status, expected 5: $stderr $output"
	((${#stderr_lines[@]} == 1)) || fail "not one line on stderr: $stderr"
	[[ $stderr == "livepatch: error: "*"(revert the calls first: --revert"*"--callsites)"* ]] ||
		fail "the error does not say to revert the calls first: $stderr"
	lp -p "$DAEMON_PID" --unload sleeper.o
	expect_rc 5
	json_check "d['error']['code'] == 5" <<<"$LP_OUT"
	[[ $(lp_regions sleeper.o) == 1 ]] || fail "sleeper.o was unmapped"
	alive
	untraced
	# Still alive and counting through the rewritten call.
	into_patch
	out_of_patch
	expect_key patched_entered 2
	lp -p "$DAEMON_PID" --revert waiter --callsites
	expect_rc 0 || return 1
	lp -p "$DAEMON_PID" --unload sleeper.o
	expect_rc 0
	lp_no_region
	old=$(status_get waiter_old)
	out_of_patch
	expect_key waiter_old $((old + 1))
	expect_key patched_entered 2
	expect_key eintr 0
	expect_key errors 0
	stop_clean
}
