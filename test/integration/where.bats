#!/usr/bin/env bats
# --where F (issue 17, /work/notes/spec17.md; docs/design.md §9): which threads have F on
# their stack, each with how it was seen and a symbolized backtrace. Read-only: it touches
# nothing and wakes no blocked thread. The daemon is insided (test/daemons/insided.c): one
# named thread per way of being "inside" (blocked in a callee, deep recursion, under a
# signal frame, after a tail call, a stale return address that is no frame), each counting
# what it saw (eintr must stay 0). Each test proves what its comment says with the daemon's
# counters and /proc, not only livepatch's word.
# Needs root (ptrace), `make` and `make daemons`. LP_BIN overrides the livepatch binary.

# SC2154: stderr, stderr_lines are set by bats' run --separate-stderr.
# shellcheck disable=SC2154

bats_require_minimum_version 1.5.0
load ../lib

D=$LP_BUILD/daemons
EXE=$LP_BUILD/daemons/insided
SCHEMA=$ROOT/schema/livepatch.schema.json
VALIDATE=$ROOT/schema/validate.py
# A livepatch that hangs costs one test 35 s, not the file.
# shellcheck disable=SC2034 # lp (lib.bash) reads it
LP_TIMEOUT=30

setup_file() {
	lp_setup_file
	[[ -x $D/insided ]] || fail "no insided in $D: run make daemons" || return 1
}

setup() {
	need_root
	# shellcheck disable=SC2034 # lp_teardown (lib.bash) kills them
	BG_PIDS=()
	WAKE=$BATS_TEST_TMPDIR/wake
}

teardown() {
	lp_teardown
}

# --- helpers of this file ------------------------------------------------------------------

# where ARGS...: livepatch -p DAEMON --where ARGS (plain): exit 0 expected; OUT = stdout.
where() {
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --where "$@"
	((status == 0)) || fail "--where $*: exit $status; stderr: $stderr; stdout: $output" || return 1
	OUT=$output
}

# wherej ARGS...: the same with --json (lp: LP_OUT), exit 0, and the object validates.
wherej() {
	lp -p "$DAEMON_PID" --where "$@"
	expect_rc 0 && valid_json
}

# valid_json: LP_OUT validates against schema/livepatch.schema.json (as schema.bats does).
valid_json() {
	local f=$BATS_TEST_TMPDIR/out.json out
	printf '%s\n' "$LP_OUT" >"$f"
	out=$("$PY" "$VALIDATE" --schema "$SCHEMA" "$f" 2>&1) ||
		fail "$LP_CMD: the JSON does not validate: $out" "the object: $LP_OUT"
}

# jcheck EXPR...: json_check over LP_OUT where each Python EXPR also sees tl, the
# where.threads entry of the thread $TID (None when it is not listed), and th(NAME), the
# entries of the threads named NAME.
jcheck() {
	local e args=() pre
	pre="(lambda ts, tid: (lambda tl, th: %s)(([t for t in ts if t['tid'] == tid] + [None])[0], lambda n: [t for t in ts if t['comm'] == n]))(d['where']['threads'], int(os.environ['TID']))"
	for e; do
		# shellcheck disable=SC2059 # pre is the format on purpose
		args+=("$(printf "$pre" "$e")")
	done
	TID=${TID:-0} json_check "${args[@]}" <<<"$LP_OUT"
}

# fn_range F: LO, HI = F's run-time address range in the daemon ([LO, HI), from the ELF
# file's symbol table and maps).
fn_range() {
	LO=$(sym_addr "$DAEMON_PID" exe "$1") || return 1
	HI=$((LO + $(sym_field "$EXE" "$1" 3)))
	LO=$((LO))
}

# call_before F ADDR: ADDR (run time, in F) follows a call instruction of F (objdump).
call_before() {
	local base off
	base=0x$(map_base "$DAEMON_PID" "$(readlink "/proc/$DAEMON_PID/exe")")
	off=$(printf '%x' $(($2 - base)))
	insts "$1" | awk -v want="$off" '
		{ a = $1; sub(":", "", a) }
		a == want { found = 1; exit }
		{ prev = $0 }
		END { exit !(found && prev ~ /call/) }' ||
		fail "the instruction before $off in $1 is no call: $(insts "$1")"
}

# insts F: F's instructions (objdump, one per line).
insts() {
	LC_ALL=C objdump -d --no-show-raw-insn "$EXE" | awk -v f="<$1>:" '$2 == f { p = 1; next } p && /^$/ { exit } p'
}

# quiet_state: the daemon's own view after runs of livepatch: nothing woke a blocked call
# (eintr 0), nothing failed (errors 0), no foreign SIGUSR1, every result right.
quiet_state() {
	expect_key eintr 0 && expect_key errors 0 && expect_key signals_other 0 && expect_key wrong 0
}

# --- the daemon itself ----------------------------------------------------------------------

# Proves the fixture: each thread really is in the state the tests below rely on, seen from
# /proc and the stack's words (no livepatch involved), and the compiler made the calls the
# tests need (a real call where a frame must exist, a jmp for the tail call).
@test "insided alone: every thread sits where its mode puts it (/proc, stack words, objdump)" {
	local v
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE" --recursion --deep-poll \
		--signal-inside --tail --stale
	# The calls the tests need frames of are calls, not tail jumps (gcc -O2, no frame
	# pointer: the daemons' flags); tail_entry's is a jmp (below).
	insts wait_in | grep -Eq 'call +[0-9a-f]+ <read@plt>' || fail "wait_in does not call read: $(insts wait_in)"
	insts outer_poll | grep -Eq 'call +[0-9a-f]+ <middle>' || fail "outer_poll does not call middle: $(insts outer_poll)"
	insts tail_target | grep -Eq 'call +[0-9a-f]+ <read_byte>' || fail "tail_target does not call read_byte: $(insts tail_target)"
	insts stale_src | grep -Eq 'call +[0-9a-f]+ <grab_ra>' || fail "stale_src does not call grab_ra: $(insts stale_src)"
	# reader: asleep in read(2), wait_in's return address on its stack.
	wait_blocked reader 0
	fn_range wait_in
	(($(stack_hits "$TID" "$LO" "$HI") >= 1)) || fail "no return address into wait_in on the reader's stack"
	expect_key reader_in 1
	# recurser: asleep in read(2) under 21 frames of recurse (recurse(20) .. recurse(0)).
	wait_blocked recurser 0
	fn_range recurse
	v=$(stack_hits "$TID" "$LO" "$HI")
	((v >= 21)) || fail "$v return addresses into recurse on the recurser's stack, expected 21"
	insts recurse | grep -q 'call.*<recurse>' || fail "recurse does not call itself: $(insts recurse)"
	# poller: asleep in poll (or ppoll), middle and outer_poll on its stack.
	wait_blocked poller 7 271
	fn_range middle
	(($(stack_hits "$TID" "$LO" "$HI") >= 1)) || fail "no return address into middle on the poller's stack"
	fn_range outer_poll
	(($(stack_hits "$TID" "$LO" "$HI") >= 1)) || fail "no return address into outer_poll on the poller's stack"
	# sigger: asleep in its SIGUSR1 handler (clock_nanosleep), the saved PC in sig_body.
	wait_blocked sigger 230
	status_wait_ge in_handler 1
	expect_key signals_handled "$(status_get signals_sent)"
	fn_range sig_body
	(($(stack_hits "$TID" "$LO" "$HI") >= 1)) || fail "no saved PC in sig_body on the sigger's stack"
	# tail: tail_entry's last instruction is `jmp tail_target`; asleep under tail_target with
	# no word of tail_entry on its stack.
	insts tail_entry | grep -Eq 'jmp +[0-9a-f]+ <tail_target>' || fail "tail_entry makes no tail call: $(insts tail_entry)"
	if insts tail_entry | grep -q call; then
		fail "tail_entry calls something: $(insts tail_entry)"
	fi
	wait_blocked tail 0
	fn_range tail_target
	(($(stack_hits "$TID" "$LO" "$HI") >= 1)) || fail "no return address into tail_target on the tail thread's stack"
	fn_range tail_entry
	v=$(stack_hits "$TID" "$LO" "$HI")
	((v == 0)) || fail "$v words of tail_entry on the tail thread's stack"
	expect_key tail_entries 1
	# stale: running; its stale_value is inside stale_src, right after a call; stopped, its
	# stack holds that word once, and its PC is in stale_spin, not stale_src.
	TID=$(tid_of stale)
	v=$(status_get stale_value)
	fn_range stale_src
	((v > LO && v < HI)) || fail "stale_value $(printf 0x%x "$v") is not inside stale_src"
	call_before stale_src "$v"
	kill -STOP "$DAEMON_PID"
	local n=0 line
	until read -r line <"/proc/$DAEMON_PID/task/$TID/syscall" && [[ $line == -1* ]]; do
		((n++ < 300)) || break
		nap 10
	done
	v=$(stack_hits "$TID" "$LO" "$HI")
	fn_range stale_spin
	local pc=$((${line##* }))
	kill -CONT "$DAEMON_PID"
	((v == 1)) || fail "$v words of stale_src on the stopped stale thread's stack, expected 1"
	((pc >= LO && pc < HI)) || fail "the stopped stale thread's PC $(printf 0x%x "$pc") is not in stale_spin"
	# Everyone else keeps going.
	grows old_calls
	quiet_state
	stop_clean
}

# --- one way of being inside per test ------------------------------------------------------

# Proves: a thread asleep in read(2), called from F, is found by the scan of its stack (F's
# return address), confirmed by the unwind from the PC and SP /proc shows (insided is built
# with CFI that needs no other register), and listed with TID, comm, "blocked in read", and
# a backtrace naming F; the run wakes it not (its context switches and eintr unchanged), and
# the rest runs on. The scan's own backtrace (no unwind possible) is unload.bats's case.
@test "--where wait_in: the reader, asleep in read, found without waking it" {
	local sw n
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE"
	wait_blocked reader 0
	sw=$(switches "$TID")
	n=$(task_count)
	where wait_in
	[[ ${lines[0]} == "process $DAEMON_PID (insided): 1 of $n threads inside insided:wait_in" ]] ||
		fail "header line: ${lines[0]}"
	grep -Fxq "thread $TID (reader) blocked in read, unwound: insided:wait_in" <<<"$OUT" ||
		fail "no line for the reader: $OUT"
	grep -Eq '^  #0 0x[0-9a-f]{16} libc\.so\.6:.*read.*$' <<<"$OUT" || fail "frame #0 is not libc's read: $OUT"
	grep -Eq '^  #[0-9]+ 0x[0-9a-f]{16} insided:wait_in\+0x[0-9a-f]+$' <<<"$OUT" ||
		fail "no frame of wait_in: $OUT"
	wherej wait_in
	fn_range wait_in
	LO=$LO SIZE=$((HI - LO)) N=$n jcheck \
		"d['where']['functions'] == [{'name': 'insided:wait_in', 'addr': hex(int(os.environ['LO'])), 'size': int(os.environ['SIZE'])}]" \
		"d['where']['threads_total'] == int(os.environ['N'])" \
		"len(d['where']['threads']) == 1 and tl is not None" \
		"tl['comm'] == 'reader' and tl['state'] == 'blocked' and tl['method'] == 'unwind' and tl['syscall'] == 'read'" \
		"tl['inside'] == ['insided:wait_in']" \
		"tl['frames'][0]['kind'] == 'pc' and tl['frames'][0]['at'] is None" \
		"any(f['in'] == 'insided:wait_in' and f['kind'] == 'return' and f['symbol'].startswith('insided:wait_in+0x') for f in tl['frames'])" \
		"d['where']['stale'] == []"
	# Nothing woke it: same sleep, same context switches, no EINTR; it is still in wait_in.
	blocked_in "$TID" && ((SC == 0)) || fail "the reader is no longer asleep in read"
	[[ $(switches "$TID") == "$sw" ]] || fail "the reader was woken: context switches $sw -> $(switches "$TID")"
	expect_key reader_in 1
	expect_key reader_left 0
	untraced
	grows old_calls
	quiet_state
	stop_clean
}

# Proves: the backtrace of a blocked thread goes through every frame of a deep recursion:
# recurse appears once per level, 21 times (recurse(20) down to recurse(0)).
@test "--where recurse: the recurser, with recurse 21 times in its frames" {
	daemon_start insided --recursion
	wait_blocked recurser 0
	where recurse
	grep -Eq "^thread $TID \(recurser\) blocked in read, (scanned|unwound): insided:recurse$" <<<"$OUT" ||
		fail "no line for the recurser: $OUT"
	(($(grep -Ec '^  #[0-9]+ 0x[0-9a-f]+ insided:recurse\+0x' <<<"$OUT") >= 21)) ||
		fail "fewer than 21 frames of recurse: $OUT"
	wherej recurse
	jcheck "tl is not None and tl['comm'] == 'recurser' and tl['syscall'] == 'read'" \
		"tl['inside'] == ['insided:recurse']" \
		"sum(1 for f in tl['frames'] if f['in'] == 'insided:recurse') >= 21" \
		"[f['kind'] for f in tl['frames'] if f['in'] == 'insided:recurse'] == ['return'] * len([f for f in tl['frames'] if f['in'] == 'insided:recurse'])"
	quiet_state
	stop_clean
}

# Proves: F two calls above the blocking call is found (outer_poll -> middle -> poll), with
# the frames in call order: poll's (pc), then middle, then outer_poll.
@test "--where outer_poll: the poller, blocked two calls deeper in poll" {
	daemon_start insided --deep-poll
	wait_blocked poller 7 271
	where outer_poll
	grep -Eq "^thread $TID \(poller\) blocked in p?poll, (scanned|unwound): insided:outer_poll$" <<<"$OUT" ||
		fail "no line for the poller: $OUT"
	wherej outer_poll
	jcheck "tl is not None and tl['syscall'] in ('poll', 'ppoll') and tl['inside'] == ['insided:outer_poll']" \
		"tl['frames'][0]['kind'] == 'pc' and tl['frames'][0]['in'] is None" \
		"[i for i, f in enumerate(tl['frames']) if (f['symbol'] or '').startswith('insided:middle+')][0] < [i for i, f in enumerate(tl['frames']) if f['in'] == 'insided:outer_poll'][0]"
	quiet_state
	stop_clean
}

# Proves: a thread asleep in a signal handler whose saved context is in F is inside F, and
# the frame of F is the one sigreturn resumes (kind "signal", "(signal frame)"). The
# daemon's signals: every one sent was handled, none from outside, no EINTR.
@test "--where sig_body: found through the signal frame of a handler asleep in clock_nanosleep" {
	daemon_start insided --signal-inside
	wait_blocked sigger 230
	status_wait_ge in_handler 1
	where sig_body
	grep -Eq "^thread $TID \(sigger\) blocked in clock_nanosleep, (scanned|unwound): insided:sig_body$" <<<"$OUT" ||
		fail "no line for the sigger: $OUT"
	grep -Eq '^  #[0-9]+ 0x[0-9a-f]+ insided:sig_body\+0x[0-9a-f]+ .*\(signal frame\)' <<<"$OUT" ||
		fail "sig_body's frame is not marked (signal frame): $OUT"
	grep -Eq '^  #[0-9]+ 0x[0-9a-f]+ insided:on_usr1\+0x' <<<"$OUT" || fail "no frame of the handler on_usr1: $OUT"
	wherej sig_body
	jcheck "tl is not None and tl['comm'] == 'sigger' and tl['state'] == 'blocked'" \
		"tl['inside'] == ['insided:sig_body']" \
		"any(f['in'] == 'insided:sig_body' and f['kind'] == 'signal' for f in tl['frames'])" \
		"len(th('kicker')) == 0"
	expect_key signals_handled "$(status_get signals_sent)"
	expect_key in_handler 1
	quiet_state
	stop_clean
}

# Proves: the same through a handler that runs (stopped, then unwound precisely through the
# signal frame, not scanned).
@test "--where sig_body: found through the signal frame of a handler that spins (stopped, unwound)" {
	daemon_start insided --signal-inside --handler-spin
	TID=$(tid_of sigger)
	status_wait_ge in_handler 1
	where sig_body
	grep -Eq "^thread $TID \(sigger\) stopped, unwound: insided:sig_body$" <<<"$OUT" ||
		fail "no 'stopped, unwound' line for the sigger: $OUT"
	grep -Eq '^  #[0-9]+ 0x[0-9a-f]+ insided:sig_body\+0x[0-9a-f]+ .*\(signal frame\)' <<<"$OUT" ||
		fail "sig_body's frame is not marked (signal frame): $OUT"
	wherej sig_body
	jcheck "tl is not None and tl['state'] == 'stopped' and tl['method'] == 'unwind' and tl['syscall'] is None" \
		"any(f['in'] == 'insided:sig_body' and f['kind'] == 'signal' for f in tl['frames'])" \
		"any((f['symbol'] or '').startswith('insided:handler_spin+') or (f['symbol'] or '').startswith('insided:on_usr1+') for f in tl['frames'])"
	expect_key in_handler 1
	untraced
	quiet_state
	stop_clean
}

# Proves: after a tail call the caller has no frame left: --where tail_target finds the
# thread, --where tail_entry (which jumped there, objdump: jmp) does not.
@test "--where tail_target finds the tail thread; --where tail_entry does not (a tail call leaves no frame)" {
	local n
	daemon_start insided --tail
	insts tail_entry | grep -Eq 'jmp +[0-9a-f]+ <tail_target>' || fail "tail_entry makes no tail call: $(insts tail_entry)"
	wait_blocked tail 0
	n=$(task_count)
	where tail_target
	grep -Eq "^thread $TID \(tail\) blocked in read, (scanned|unwound): insided:tail_target$" <<<"$OUT" ||
		fail "no line for the tail thread: $OUT"
	wherej tail_target
	jcheck "tl is not None and tl['inside'] == ['insided:tail_target']" \
		"not any(f['in'] == 'insided:tail_entry' for f in tl['frames'])"
	where tail_entry
	[[ ${lines[0]} == "process $DAEMON_PID (insided): no thread inside insided:tail_entry ($n threads)" ]] ||
		fail "tail_entry was found: $OUT"
	[[ $OUT != *"thread $TID (tail)"* ]] || fail "the tail thread is listed for tail_entry: $OUT"
	wherej tail_entry
	jcheck "d['where']['threads'] == []" "d['where']['stale'] == []"
	expect_key tail_entries 1
	quiet_state
	stop_clean
}

# Proves: a word that looks like a return address into F (right after a call in F) but is
# no frame, on the stack of a running thread whose precise unwind has no F, is reported as
# stale, with its place and value, and the thread is not counted inside.
@test "--where stale_src: a stale return address is reported under stale, not as inside" {
	local v n
	daemon_start insided --stale --spinners 1
	TID=$(tid_of stale)
	v=$(status_get stale_value)
	n=$(task_count)
	where stale_src
	[[ ${lines[0]} == "process $DAEMON_PID (insided): no thread inside insided:stale_src ($n threads)" ]] ||
		fail "the header does not say none is inside: $OUT"
	grep -Eq "^stale: thread $TID \(stale\) holds $(printf '0x%016x' "$v") insided:stale_src\+0x[0-9a-f]+ at 0x[0-9a-f]+ that is not a frame" <<<"$OUT" ||
		fail "no stale line for the stale thread holding $(printf 0x%x "$v"): $OUT"
	wherej stale_src
	V=$(printf '0x%x' "$v") jcheck "d['where']['threads'] == []" \
		"[s['tid'] for s in d['where']['stale']] == [int(os.environ['TID'])]" \
		"d['where']['stale'][0]['comm'] == 'stale' and d['where']['stale'][0]['value'] == os.environ['V']" \
		"d['where']['stale'][0]['symbol'].startswith('insided:stale_src+0x')" \
		"re.fullmatch('0x[0-9a-f]+', d['where']['stale'][0]['at'])"
	# The thread was stopped for its unwind and runs on.
	untraced
	alive
	grows old_calls
	quiet_state
	stop_clean
}

# Proves: running threads are stopped and unwound precisely; hot spinners are caught inside
# compute in some runs (PC in compute: frame #0 kind pc) and the calls go on. Two outcomes
# per run (inside or not): the test asserts that "inside" occurred.
@test "--where compute with hot spinners: running threads stopped, unwound; calls continue" {
	local i found=0
	daemon_start insided --spinners 2
	for ((i = 0; i < 40 && found == 0; i++)); do
		wherej compute
		# compute is a leaf: a thread is inside only with its PC there (frame #0).
		jcheck "all(t['comm'] == 'spinner' and t['state'] == 'stopped' and t['method'] == 'unwind' and t['syscall'] is None for t in d['where']['threads'])" \
			"all(t['frames'][0]['in'] == 'insided:compute' and t['frames'][0]['kind'] == 'pc' and t['inside'] == ['insided:compute'] for t in d['where']['threads'])" ||
			return 1
		json_check "len(d['where']['threads']) > 0" <<<"$LP_OUT" 2>/dev/null && found=1
	done
	((found)) || fail "no spinner was ever seen inside compute in $i runs"
	say "a spinner was seen inside compute at run $i"
	untraced
	grows old_calls
	expect_key new_calls 0
	quiet_state
	stop_clean
}

# Proves: with nobody inside, --where says so in one line (with the thread count) and exits
# 0; the JSON lists no thread.
@test "--where idle_out before the reader ever left wait_in: no thread inside (message, exit 0)" {
	local n
	daemon_start insided --pipe-reader --wake "$WAKE"
	wait_blocked reader 0
	n=$(task_count)
	where idle_out
	[[ $OUT == "process $DAEMON_PID (insided): no thread inside insided:idle_out ($n threads)" ]] ||
		fail "not the one line for none inside: $OUT"
	wherej idle_out
	N=$n jcheck "d['where']['threads'] == []" "d['where']['threads_total'] == int(os.environ['N'])" \
		"[f['name'] for f in d['where']['functions']] == ['insided:idle_out']"
	# Once the reader has left (one byte), it is in idle_out and no longer in wait_in.
	printf x >"$WAKE"
	status_wait_ge reader_left 1
	wait_blocked reader 0
	wherej idle_out
	jcheck "tl is not None and tl['inside'] == ['insided:idle_out']"
	wherej wait_in
	jcheck "d['where']['threads'] == []"
	quiet_state
	stop_clean
}

# Proves: several functions in one run (repeated --where and extra names after the options),
# every thread matched to the functions it is inside; the JSON validates against the schema.
@test "--where F G ... in one run: each thread with the functions it is inside; the JSON validates" {
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE" --recursion --deep-poll \
		--signal-inside --tail --stale
	wait_blocked reader 0
	wherej wait_in --where recurse --where outer_poll sig_body tail_target stale_src
	jcheck "sorted(f['name'] for f in d['where']['functions']) == sorted('insided:' + n for n in ('wait_in', 'recurse', 'outer_poll', 'sig_body', 'tail_target', 'stale_src'))" \
		"th('reader')[0]['inside'] == ['insided:wait_in']" \
		"th('recurser')[0]['inside'] == ['insided:recurse']" \
		"th('poller')[0]['inside'] == ['insided:outer_poll']" \
		"th('sigger')[0]['inside'] == ['insided:sig_body']" \
		"th('tail')[0]['inside'] == ['insided:tail_target']" \
		"th('stale') == [] and [s['comm'] for s in d['where']['stale']] == ['stale']" \
		"len(d['where']['threads']) == 5"
	# The same with -v (a log on stderr, the same report) and -q accepted.
	lp -p "$DAEMON_PID" --where wait_in -v
	expect_rc 0
	valid_json
	jcheck "th('reader')[0]['inside'] == ['insided:wait_in']"
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --where wait_in -q --timeout 2000
	((status == 0)) || fail "--where -q --timeout 2000: exit $status: $stderr"
	quiet_state
	stop_clean
}

# Proves: an unknown F is a symbol problem (exit 4) as for --func, with the one-line error
# and, with --json, the error object; nothing attached.
@test "--where with an unknown function: exit 4" {
	daemon_start insided --pipe-reader --wake "$WAKE"
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --where no_such_function
	((status == 4)) || fail "exit $status, expected 4: $stderr $output"
	((${#stderr_lines[@]} == 1)) && [[ $stderr =~ ^livepatch:\ error:\ .*no_such_function ]] ||
		fail "not one error line naming no_such_function: $stderr"
	lp -p "$DAEMON_PID" --where wait_in --where no_such_function
	expect_rc 4
	json_check "d['error']['code'] == 4" <<<"$LP_OUT"
	untraced
	quiet_state
	stop_clean
}

# Proves: --where is read-only and goes with no option that writes or lists (exit 2, usage);
# nothing is written: wait_in's bytes stay the file's.
@test "--where with --func, --target, --revert, --revert-all, --list, --symbols, --load, --plan: exit 2" {
	local sum a size opts
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE"
	a=$(sym_addr "$DAEMON_PID" exe wait_in)
	size=$(sym_field "$EXE" wait_in 3)
	sum=$(text_sum "$DAEMON_PID" "$a" "$size")
	printf 'compute compute_fixed\n' >"$BATS_TEST_TMPDIR/plan"
	for opts in "--func compute" "--func compute --target compute_fixed" "--target compute_fixed" \
		"--revert compute" "--revert-all" "--list" "--symbols" \
		"--load $LP_BUILD/patches/sleeper/sleeper.o" "--plan $BATS_TEST_TMPDIR/plan"; do
		# shellcheck disable=SC2086 # opts is split on purpose
		run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --where wait_in $opts
		((status == 2)) || fail "--where wait_in $opts: exit $status, expected 2: $stderr $output" || return 1
		[[ $stderr == "livepatch: error: "* ]] || fail "--where wait_in $opts: no error line: $stderr" || return 1
	done
	[[ $(text_sum "$DAEMON_PID" "$a" "$size") == "$sum" ]] || fail "wait_in's bytes changed"
	[[ $sum == $(sym_file_sum "$EXE" wait_in "$size") ]] || fail "wait_in's bytes are not the file's"
	untraced
	grows old_calls
	expect_key new_calls 0
	quiet_state
	stop_clean
}

# Proves: --where changes nothing in the process however often it runs: the text of every
# function under test is the file's, no mapping added, no thread left traced, every blocked
# thread still asleep where it was and never woken (context switches), no EINTR, signals
# sent == handled, calls go on.
@test "--where touches nothing: 20 runs over every function; text, maps, sleeps and counters unchanged" {
	local f t i maps0 sums0 sums1
	local -A sw=()
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE" --recursion --deep-poll \
		--signal-inside --tail --stale
	for t in reader recurser poller sigger tail; do
		wait_blocked "$t" || return 1
		sw[$t]=$(switches "$TID")
	done
	maps0=$(cat "/proc/$DAEMON_PID/maps")
	for f in compute wait_in idle_out recurse middle outer_poll sig_body tail_entry tail_target stale_src stale_spin; do
		sums0+="$f $(text_sum "$DAEMON_PID" "$(sym_addr "$DAEMON_PID" exe "$f")" "$(sym_field "$EXE" "$f" 3)") "
	done
	for ((i = 0; i < 20; i++)); do
		lp -p "$DAEMON_PID" --where compute wait_in idle_out recurse middle outer_poll sig_body \
			tail_entry tail_target stale_src stale_spin
		expect_rc 0 || return 1
	done
	for f in compute wait_in idle_out recurse middle outer_poll sig_body tail_entry tail_target stale_src stale_spin; do
		sums1+="$f $(text_sum "$DAEMON_PID" "$(sym_addr "$DAEMON_PID" exe "$f")" "$(sym_field "$EXE" "$f" 3)") "
	done
	[[ $sums1 == "$sums0" ]] || fail "the text changed: $sums0 -> $sums1"
	[[ $(cat "/proc/$DAEMON_PID/maps") == "$maps0" ]] || fail "the maps changed: $(diff <(echo "$maps0") "/proc/$DAEMON_PID/maps")"
	for t in reader recurser poller sigger tail; do
		TID=$(tid_of "$t")
		blocked_in "$TID" || fail "$t is no longer asleep" || return 1
		[[ $(switches "$TID") == "${sw[$t]}" ]] || fail "$t was woken: context switches ${sw[$t]} -> $(switches "$TID")" || return 1
	done
	untraced
	expect_key reader_left 0
	expect_key tail_entries 1
	expect_key signals_handled "$(status_get signals_sent)"
	grows old_calls
	quiet_state
	stop_clean
}

# Proves: in a process stopped by SIGSTOP, --where looks at each thread in its group stop
# (it stays stopped: State T before and after), finds the reader's frame of wait_in (state
# group_stopped; the read the stop cut is still its call, /proc shows it, so it is unwound
# from that PC and SP), and once SIGCONT comes the reader's read goes on without EINTR.
@test "--where wait_in in a SIGSTOPped process: group-stopped threads looked at, left stopped" {
	daemon_start insided --spinners 1 --pipe-reader --wake "$WAKE"
	wait_blocked reader 0
	kill -STOP "$DAEMON_PID"
	local n=0
	until [[ $(proc_field "$DAEMON_PID" State) == T* ]]; do
		((n++ < 500)) || fail "the daemon did not stop"
		sleep 0.01
	done
	wherej wait_in
	jcheck "tl is not None and tl['comm'] == 'reader' and tl['state'] == 'group_stopped' and tl['method'] == 'unwind'" \
		"any(f['in'] == 'insided:wait_in' and f['kind'] == 'return' for f in tl['frames'])" \
		"all(t['tid'] == int(os.environ['TID']) for t in d['where']['threads'])"
	[[ $(proc_field "$DAEMON_PID" State) == T* ]] || fail "the daemon runs again after --where: $(proc_field "$DAEMON_PID" State)"
	untraced
	kill -CONT "$DAEMON_PID"
	grows old_calls
	wait_blocked reader 0
	expect_key eintr 0
	expect_key reader_left 0
	stop_clean
}

# --- regressions (hostile tester, issue 17) ------------------------------------------------

# split_vma TID: the stack mapping that holds thread TID's stack pointer (asleep: /proc's
# syscall file) ends less than 16 KiB above it, and the mapping right above it is marked
# dd (MADV_DONTDUMP) in smaps: split_inner's madvise split the thread's stack in two, with
# split_outer's frame beyond the split.
split_vma() {
	"$PY" - "$DAEMON_PID" "$1" <<-'EOF2'
		import sys
		pid, tid = sys.argv[1], sys.argv[2]
		sc = open(f"/proc/{pid}/task/{tid}/syscall").read().split()
		if sc[0] == "running":
		    sys.exit(f"thread {tid} runs: no stack pointer")
		sp = int(sc[-2], 16)
		vmas, cur = [], None
		for l in open(f"/proc/{pid}/smaps"):
		    f = l.split()
		    if "-" in f[0] and len(f) >= 5 and not f[0].endswith(":"):
		        a, b = (int(x, 16) for x in f[0].split("-"))
		        cur = [a, b, ""]
		        vmas.append(cur)
		    elif f[0] == "VmFlags:":
		        cur[2] = " ".join(f[1:])
		mine = [v for v in vmas if v[0] <= sp < v[1]]
		if not mine:
		    sys.exit(f"sp {sp:#x} in no mapping")
		a, b, flags = mine[0]
		if b - sp >= 16384:
		    sys.exit(f"the mapping of sp {sp:#x} ends {b - sp} bytes above it: not split")
		nxt = [v for v in vmas if v[0] == b]
		if not nxt or " dd" not in " " + nxt[0][2]:
		    sys.exit(f"no dd mapping right above {b:#x}: {nxt}")
	EOF2
}

# dd_mapped: some mapping of the daemon is marked dd (MADV_DONTDUMP) in smaps.
dd_mapped() {
	grep -Eq '^VmFlags:.* dd( |$)' "/proc/$DAEMON_PID/smaps" || fail "no mapping marked dd: the stack was not split"
}

# Proves (regression: a stack mapping split by madvise, as libsodium's sodium_mlock does,
# hid every frame beyond the split): the thread splitsleep, asleep in read(2) under
# split_inner (16 KiB of locals, 8 KiB of them MADV_DONTDUMP: its stack is two mappings,
# /proc shows) is found inside split_outer, whose frame lies past the split. Not woken.
@test "--where split_outer: a thread asleep beyond a split stack mapping (MADV_DONTDUMP)" {
	local sw
	daemon_start insided --split-sleep
	wait_blocked splitsleep 0
	split_vma "$TID" || fail "the fixture: the stack of splitsleep is not split"
	sw=$(switches "$TID")
	where split_outer
	grep -Eq "^thread $TID \(splitsleep\) blocked in read, (scanned|unwound): insided:split_outer$" <<<"$OUT" ||
		fail "no line for splitsleep: $OUT"
	grep -Eq '^  #[0-9]+ 0x[0-9a-f]{16} insided:split_outer\+0x[0-9a-f]+' <<<"$OUT" ||
		fail "no frame of split_outer: $OUT"
	wherej split_outer
	jcheck "tl is not None and tl['comm'] == 'splitsleep' and tl['state'] == 'blocked'" \
		"tl['inside'] == ['insided:split_outer']" "d['where']['stale'] == []"
	[[ $(switches "$TID") == "$sw" ]] || fail "splitsleep was woken: context switches $sw -> $(switches "$TID")"
	expect_key split_in 1
	quiet_state
	untraced
	stop_clean
}

# Proves: the same for a thread that runs (stopped, unwound) in split_inner past the split:
# listed inside split_outer in each of 10 runs; it spins on (split_spins grows).
@test "--where split_outer: a running thread beyond a split stack mapping, 10 of 10 runs" {
	local i
	daemon_start insided --split-spin
	TID=$(tid_of splitspin)
	dd_mapped
	for i in {1..10}; do
		wherej split_outer
		jcheck "tl is not None and tl['comm'] == 'splitspin' and tl['inside'] == ['insided:split_outer']" \
			"d['where']['stale'] == []" || fail "run $i of 10" || return 1
	done
	grows split_spins
	quiet_state
	untraced
	stop_clean
}

# Proves (regression: a signal frame whose restorer is not glibc's __restore_rt was not
# recognized): thread altsig spins in the leaf alt_leaf when SIGUSR2 comes; its handler,
# installed with a raw rt_sigaction (SA_RESTORER, the daemon's own restorer
# insided_restorer), runs on a sigaltstack and sleeps in nanosleep. --where alt_leaf lists
# the thread through that signal frame (kind "signal"). The daemon counted one signal,
# handled on the alternate stack, none from outside.
@test "--where alt_leaf: through the signal frame of a raw SA_RESTORER handler on a sigaltstack" {
	daemon_start insided --altsig
	wait_blocked altsig 35 230
	expect_key alt_handled 1
	expect_key alt_on_stack 1
	# The fixture: the signal frame's restorer (its first word) is insided_restorer.
	LO=$(sym_addr "$DAEMON_PID" exe insided_restorer)
	(($(stack_hits "$TID" "$LO" $((LO + 1))) >= 1)) || fail "no word insided_restorer on altsig's stack"
	where alt_leaf
	grep -Eq "^thread $TID \(altsig\) blocked in (nanosleep|clock_nanosleep), (scanned|unwound): insided:alt_leaf$" <<<"$OUT" ||
		fail "no line for altsig: $OUT"
	wherej alt_leaf
	jcheck "tl is not None and tl['comm'] == 'altsig' and tl['inside'] == ['insided:alt_leaf']" \
		"any(f['in'] == 'insided:alt_leaf' and f['kind'] == 'signal' for f in tl['frames'])" \
		"d['where']['stale'] == []"
	expect_key alt_in_handler 1
	quiet_state
	untraced
	stop_clean
}

# Proves (regression: a function with st_size 0 was an empty range, "no thread inside"):
# --where nosize_fn (asm, no .size; thread nosize asleep in read under it, called from it)
# is refused, exit 5, one error line saying the function has no size; --json: error 5.
@test "--where on a function without a size (asm, no .size): exit 5, 'has no size in the symbol table'" {
	daemon_start insided --nosize
	wait_blocked nosize 0
	[[ $(sym_field "$EXE" nosize_fn 3) == 0 ]] || fail "the fixture: nosize_fn has a size"
	# The fixture: nosize_fn's call returns into it (a return address in its 16 bytes).
	LO=$(sym_addr "$DAEMON_PID" exe nosize_fn)
	(($(stack_hits "$TID" "$LO" $((LO + 16))) >= 1)) || fail "no return address into nosize_fn on the stack"
	run --separate-stderr timeout -k 5 60 "$LP" -p "$DAEMON_PID" --where nosize_fn
	((status == 5)) || fail "exit $status, expected 5: $stderr $output"
	((${#stderr_lines[@]} == 1)) && [[ $stderr == "livepatch: error: "*"nosize_fn has no size in the symbol table"* ]] ||
		fail "not one error line saying nosize_fn has no size: $stderr"
	lp -p "$DAEMON_PID" --where nosize_fn
	expect_rc 5
	json_check "d['error']['code'] == 5" <<<"$LP_OUT"
	expect_key nosize_in 1
	quiet_state
	untraced
	stop_clean
}
