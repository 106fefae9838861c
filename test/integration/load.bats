#!/usr/bin/env bats
# --load PATCH.o (issue 16): a relocatable object linked into the live process as its own
# region (/memfd:livepatch:PATCH.o), F patched to jump to one of its functions. The daemon
# is patchd (test/daemons/patchd.c): it checks every result against the old and the fixed
# formula (`wrong` otherwise) and counts what only a fix does, so each test asserts on what
# the daemon counted, not only on livepatch's word. The patch objects are test/patches/*.c,
# one behaviour each, built by `make patches` with gcc and clang at -O0 and -O2.
# Needs root (ptrace), `make`, `make daemons` and `make patches`. LP_BIN overrides livepatch.

# SC2154: stderr and stderr_lines are set by bats' run --separate-stderr. SC2034: BG_PIDS and
# TX are read by lib.bash.
# shellcheck disable=SC2154,SC2034

bats_require_minimum_version 1.5.0
load ../lib

P=$LP_BUILD/patches
CONFIGS=(gcc-O0 gcc-O2 clang-O0 clang-O2)

setup_file() {
	lp_setup_file
	[[ -x $LP_BUILD/daemons/patchd && -x $LP_BUILD/daemons/patchd-stripped ]] ||
		fail "no patchd in $LP_BUILD/daemons: run make daemons" || return 1
	[[ -f $P/gcc-O0/static_call.o && -f $P/refuse/etdyn.o ]] ||
		fail "no patch objects in $P: run make patches"
}

setup() {
	need_root
	BG_PIDS=()
	TX=()
}

teardown() {
	lp_teardown
}

# --- helpers of this file ------------------------------------------------------------------

# kind KIND: what patch kind KIND of patchd replaces and what it makes grow: F, G, OLD (the
# old function's own counter), NEW (note_fixed_call's) and BEH (keys only a working fix
# makes grow: a result the daemon checked, a binding it saw used).
kind() {
	F=handle_request G=handle_request_fixed OLD=calls_old NEW=calls_new BEH=(rejected)
	case $1 in
	static_call) BEH+=(calls_parse_header) ;;
	static_var) BEH+=(requests_seen) ;;
	strings) BEH+=(notes_ok) ;;
	bss) BEH+=(bss_max) ;;
	pinned) BEH+=(lib_checksum_calls) ;;
	switch) F=classify G=classify_fixed OLD=calls_classify BEH=(fixed_classify) ;;
	fptrs) F=pick G=pick_fixed OLD=calls_pick BEH=(fixed_pick) ;;
	libc) F=format_id G=format_id_fixed OLD=calls_format_id BEH=(fixed_format) ;;
	# counterd-lib: compute_fixed calls libsample.so's compute_v2, which counts itself.
	lib) F=libsample.so:compute G=compute_fixed OLD=calls_compute NEW=calls_compute_v2 BEH=() ;;
	*) fail "kind: no patch kind '$1'" ;;
	esac
}

# load_obj OBJ [ARGS...]: --load OBJ --func F --target G on the daemon: exit 0, "applied".
load_obj() {
	local o=$1
	shift
	lp -p "$DAEMON_PID" --load "$o" --func "$F" --target "$G" "$@"
	expect_rc 0 && expect_status applied
}

# round OBJ: load OBJ (kind already set); the calls switch to the new code, each BEH key
# grows, nothing is wrong; revert: the old code gets calls again, and the region stays
# mapped. (That the new code then gets none is checked by the next round's `switched`, and
# after the last one by each_config.)
round() {
	local o=$1 k name=${1##*/} n sum
	n=$(lp_regions "$name")
	# Two builds can be the same bytes (clang's default PIE code is -fPIC's for these):
	# the second is then reused, no new region.
	sum=$(sha256sum "$o" | cut -d' ' -f1)
	[[ " ${SEEN_SUMS:-} " == *" $sum "* ]] && n=$((n - 1))
	SEEN_SUMS="${SEEN_SUMS:-} $sum"
	load_obj "$o" || return 1
	switched "$NEW" "$OLD" || fail "$o: the calls did not move to $G" || return 1
	for k in "${BEH[@]}"; do
		grows "$k" || fail "$o: $k did not grow: the fix does not work as built" || return 1
	done
	expect_key wrong 0 || fail "$o: results neither old nor fixed" || return 1
	revert "$F" || return 1
	grows_by "$OLD" 200 || fail "$o: the old code did not get the calls back after --revert" || return 1
	((n + 1 == $(lp_regions "$name"))) ||
		fail "$o: $(lp_regions "$name") regions of $name after load and revert, expected $((n + 1)) (a revert keeps the patch mapped)"
}

# each_config DAEMON KIND [DIR...]: one daemon (4 threads), then a round for KIND.o built
# in each DIR (default: gcc and clang at -O0 and -O2): a new region each (same name, other
# bytes). After the last revert the new code gets no call; the daemon exits 0, wrong 0.
each_config() {
	local daemon=$1 k=$2 c
	shift 2
	(($#)) || set -- "${CONFIGS[@]}"
	kind "$k" || return 1
	daemon_start "$daemon" --threads 4 || return 1
	SEEN_SUMS=
	for c; do
		round "$P/$c/$k.o" || return 1
	done
	stays_put 200 "$NEW" || fail "the new code still gets calls after the last --revert" || return 1
	stop_clean
}

# remember F: FADDR, FSUM: F's address in the daemon's executable and the sha256 of its first
# 32 bytes in memory.
remember() {
	FADDR=$(sym_addr "$DAEMON_PID" exe "$1") || return 1
	FSUM=$(text_sum "$DAEMON_PID" "$FADDR" 32)
}

# untouched: F's bytes as remembered, no livepatch region, no tracer left, the old code
# counting and the new code never called.
untouched() {
	[[ $(text_sum "$DAEMON_PID" "$FADDR" 32) == "$FSUM" ]] || fail "the bytes at $FADDR changed" || return 1
	lp_no_region && alive && untraced || return 1
	grows calls_old || return 1
	expect_key calls_new 0
}

# refused CODE REGEX OBJ [ARGS...]: --load OBJ (handle_request -> handle_request_fixed) exits
# CODE with one stderr line "livepatch: error: WHAT (HOW TO FIX)" matching REGEX and nothing
# on stdout; with --json, {"error":{"code":CODE}} on stdout; the daemon is untouched.
refused() {
	local code=$1 re=$2 obj=$3
	shift 3
	run --separate-stderr timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --load "$obj" \
		--func handle_request --target handle_request_fixed "$@"
	((status == code)) || fail "--load $obj: exit $status, expected $code; stderr: $stderr; stdout: $output" || return 1
	[[ -z $output ]] || fail "--load $obj: stdout not empty: $output" || return 1
	((${#stderr_lines[@]} == 1)) || fail "--load $obj: want one line on stderr, got: $stderr" || return 1
	[[ $stderr =~ ^livepatch:\ error:\ .+\ \(.+\)$ ]] ||
		fail "--load $obj: not 'livepatch: error: WHAT (HOW TO FIX)': $stderr" || return 1
	[[ $stderr =~ $re ]] || fail "--load $obj: the error does not match /$re/: $stderr" || return 1
	LP_ERR=$stderr
	run --separate-stderr timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --load "$obj" \
		--func handle_request --target handle_request_fixed "$@" --json
	((status == code)) || fail "--load $obj --json: exit $status, expected $code" || return 1
	json_check "d['error']['code'] == $code" <<<"$output" || return 1
	untouched
}

# list_line NAME: the line of --list that names handle_request and patch NAME.
list_line() {
	run timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --list
	((status == 0)) || fail "--list: exit $status: $output" || return 1
	grep -F "loaded patch $1" <<<"$output" | grep -F 'handle_request at 0x' ||
		fail "--list has no line for handle_request and $1: $output"
}

# --- without --load: the fixtures and the daemon ------------------------------------------

@test "the patch objects hold the relocations and sections they are built to exercise (readelf)" {
	run "$ROOT/test/patches/check.sh" "$P"
	((status == 0)) || fail "$output"
}

@test "patchd alone: old code only, bad lengths accepted, every result checked, nothing wrong" {
	daemon_start patchd --threads 4
	grows_by calls_old 200
	grows_by accepted_bad 200
	grows_by calls_classify 200
	grows_by calls_pick 200
	grows_by calls_format_id 200
	stays_put 200 calls_new calls_new_v2 rejected fixed_classify fixed_pick fixed_format notes_ok \
		lib_checksum_calls bss_max
	stop_clean
}

# --- one behaviour per test, gcc and clang at -O0 and -O2 -----------------------------------

@test "static_call.o: the fix calls the program's static parse_header (a local symbol)" {
	each_config patchd static_call
}

@test "static_var.o: the fix reads and writes the program's static variables (also -fPIC: through the GOT)" {
	each_config patchd static_var "${CONFIGS[@]}" gcc-O2-fpic clang-O2-fpic
}

@test "strings.o: string literals (.rodata.str1.1) reach the program intact" {
	each_config patchd strings
}

@test "switch.o: a jump table in .rodata jumps into the loaded text (also one section per function)" {
	each_config patchd switch "${CONFIGS[@]}" gcc-O2-sections clang-O2-sections
}

@test "fptrs.o: a const table of function pointers (R_X86_64_64 in .data.rel.ro) holds the loaded addresses (also -fPIC)" {
	each_config patchd fptrs "${CONFIGS[@]}" gcc-O2-fpic clang-O2-fpic
}

@test "libc.o: a call to libc's snprintf, out of rel32 reach, goes through a veneer" {
	each_config patchd libc
}

@test "bss.o: the patch's own .bss state, over a page, starts at zero (also one section per object)" {
	each_config patchd bss "${CONFIGS[@]}" gcc-O2-sections clang-O2-sections
	expect_key bss_min 1 || fail "the smallest count bss.o reported is not 1: its .bss did not start at zero"
}

@test "pinned.o: LIVEPATCH_BIND binds checksum to libpatchd.so's, not the program's two statics" {
	each_config patchd pinned
}

@test "lib.o: F in a library (libsample.so:compute), its fix binds there" {
	each_config counterd-lib lib
}

# --- the loaded patch as livepatch shows it -------------------------------------------------

@test "--list names the loaded patch with its sha256; --json has a load object" {
	local o=$P/gcc-O2/static_call.o sum line re
	sum=$(sha256sum "$o" | cut -d' ' -f1)
	kind static_call
	daemon_start patchd --threads 4
	load_obj "$o"
	# schema: see schema/livepatch.schema.json
	SHA=$sum json_check "'load' in d" \
		"any(l['sha256'] == os.environ['SHA'] and l['name'] == 'static_call.o' and {'base', 'sections', 'symbols'} <= set(l) for l in (d['load'] if isinstance(d['load'], list) else [d['load']]))" \
		<<<"$LP_OUT"
	switched calls_new calls_old

	line=$(list_line static_call.o)
	re='patchd:handle_request at 0x[0-9a-f]+: jumps to static_call\.o:handle_request_fixed \(loaded patch static_call\.o, sha256 ([0-9a-f]{4,})[^,]*, [0-9]+ KiB at 0x[0-9a-f]+\)'
	[[ $line =~ $re ]] || fail "--list line not as expected: $line"
	[[ $sum == "${BASH_REMATCH[1]}"* ]] || fail "--list says sha256 ${BASH_REMATCH[1]}, the file's is $sum"
	run timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --list --json
	((status == 0)) || fail "--list --json: exit $status: $output"
	# schema: see schema/livepatch.schema.json
	SHA=$sum json_check "'load' in d" \
		"any(l['sha256'] == os.environ['SHA'] and {'name', 'base', 'sections', 'functions'} <= set(l) and l['users'] == 1 and any(f['name'] == 'handle_request_fixed' for f in l['functions']) for l in d['load'])" \
		<<<"$output"
	revert handle_request
	switched calls_old calls_new
	stop_clean
}

@test "--dry-run --load prints the link map (sections, each binding and how, relocation counts) and writes nothing" {
	local line
	daemon_start patchd --threads 4
	remember handle_request
	run --separate-stderr timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --load "$P/gcc-O2/static_call.o" \
		--func handle_request --target handle_request_fixed --dry-run
	((status == 0)) || fail "exit $status: $stderr $output"
	grep -Eq '\.text.*0x[0-9a-f]+' <<<"$output" || fail "no .text section with its address: $output"
	line=$(grep -E 'parse_header -> patchd:parse_header at 0x[0-9a-f]+' <<<"$output") ||
		fail "parse_header's binding is missing: $output"
	[[ $line == *local* ]] || fail "parse_header not bound as local: $line"
	grep -Eq 'note_fixed_call -> patchd:note_fixed_call at 0x[0-9a-f]+' <<<"$output" ||
		fail "note_fixed_call's binding is missing: $output"
	grep -Eq 'R_X86_64_PLT32[^0-9]*[0-9]+|[0-9]+[^0-9]*R_X86_64_PLT32' <<<"$output" ||
		fail "no count of R_X86_64_PLT32 relocations: $output"

	run --separate-stderr timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --load "$P/gcc-O2/libc.o" \
		--func format_id --target format_id_fixed --dry-run
	((status == 0)) || fail "libc.o: exit $status: $stderr $output"
	line=$(grep -E 'snprintf -> libc\.so\.6:snprintf(@[A-Z_.0-9]+)? at 0x[0-9a-f]+' <<<"$output") ||
		fail "snprintf's binding is missing: $output"
	[[ $line == *exported* ]] || fail "snprintf not bound as exported: $line"

	run --separate-stderr timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --load "$P/gcc-O2/pinned.o" \
		--func handle_request --target handle_request_fixed --dry-run
	((status == 0)) || fail "pinned.o: exit $status: $stderr $output"
	line=$(grep -E 'checksum -> libpatchd\.so:checksum at 0x[0-9a-f]+' <<<"$output") ||
		fail "checksum's binding is missing: $output"
	[[ $line == *pinned* ]] || fail "checksum not bound as pinned: $line"

	untouched
	stop_clean
}

# --- the same object again, a new version, a re-point ---------------------------------------

@test "the same object loaded again (same sha256, any path) reuses its region" {
	local o=$P/gcc-O2/static_call.o copy=$BATS_TEST_TMPDIR/copy/static_call.o
	kind static_call
	daemon_start patchd --threads 4
	load_obj "$o"
	switched calls_new calls_old
	lp -p "$DAEMON_PID" --load "$o" --func handle_request --target handle_request_fixed
	expect_rc 0
	[[ $(lp_regions static_call.o) == 1 ]] || fail "$(lp_regions static_call.o) regions after loading it twice"
	revert handle_request
	switched calls_old calls_new
	load_obj "$o"
	switched calls_new calls_old
	[[ $(lp_regions static_call.o) == 1 ]] || fail "$(lp_regions static_call.o) regions after revert and reload"
	revert handle_request
	mkdir -p "${copy%/*}"
	cp "$o" "$copy"
	load_obj "$copy"
	switched calls_new calls_old
	[[ $(lp_regions static_call.o) == 1 ]] || fail "a copy of the same bytes loaded a second region"
	revert handle_request
	switched calls_old calls_new
	stop_clean
}

@test "fix.o changed under the same name loads a second region; F moves from v1 to v2 in one command" {
	local v2 line
	v2=$(sha256sum "$P/v2/fix.o" | cut -d' ' -f1)
	kind static_call
	daemon_start patchd --threads 4
	load_obj "$P/v1/fix.o"
	switched calls_new calls_old
	[[ $(lp_regions fix.o) == 1 ]] || fail "$(lp_regions fix.o) regions of v1"
	load_obj "$P/v2/fix.o"	# no revert in between: one command re-points F
	switched calls_new_v2 calls_new calls_old
	[[ $(lp_regions fix.o) == 2 ]] || fail "$(lp_regions fix.o) regions of fix.o after v1 and v2, expected 2"
	line=$(list_line fix.o)
	[[ $line =~ sha256\ ([0-9a-f]{4,}) && $v2 == "${BASH_REMATCH[1]}"* ]] ||
		fail "--list does not name v2 (sha256 $v2): $line"
	revert handle_request
	switched calls_old calls_new_v2 calls_new
	[[ $(lp_regions fix.o) == 2 ]] || fail "the revert unmapped a region"
	stop_clean
}

@test "two objects in one command: one calls the other (bound as patch); --target PATCH.o:NAME" {
	local m=$P/multi line
	daemon_start patchd --threads 4
	remember handle_request
	run --separate-stderr timeout -k 5 60 "$LP" --pid "$DAEMON_PID" --load "$m/multi_helper.o" \
		--load "$m/multi_main.o" --func handle_request --target multi_main.o:handle_request_fixed --dry-run
	((status == 0)) || fail "exit $status: $stderr $output"
	line=$(grep -E 'patch_header -> multi_helper\.o:patch_header at 0x[0-9a-f]+' <<<"$output") ||
		fail "patch_header's binding to the other object is missing: $output"
	line=${line//patch_header/}	# the word patch, not a part of the name
	[[ $line =~ (^|[^a-z_.])patch([^a-z_.]|$) ]] || fail "patch_header not bound as patch: $line"
	untouched

	kind static_call
	G=multi_main.o:handle_request_fixed
	load_obj "$m/multi_helper.o" --load "$m/multi_main.o"
	switched calls_new calls_old
	grows rejected
	[[ $(lp_regions multi_helper.o) == 1 && $(lp_regions multi_main.o) == 1 ]] ||
		fail "regions: multi_helper.o $(lp_regions multi_helper.o), multi_main.o $(lp_regions multi_main.o); expected one each"
	revert handle_request
	switched calls_old calls_new
	stop_clean
}

# --- refusals: exit code, one line, the daemon untouched -------------------------------------

@test "refused, exit 2: a directory, a FIFO, a file writable by group or others, a file of another user" {
	local d=$BATS_TEST_TMPDIR/files o=$P/gcc-O2/static_call.o
	mkdir -p "$d/dir.o"
	mkfifo "$d/fifo.o"
	install -m 0664 "$o" "$d/group.o"
	install -m 0646 "$o" "$d/other.o"
	install -m 0644 -o 65534 -g 65534 "$o" "$d/nobody.o"
	daemon_start patchd --threads 4
	remember handle_request
	refused 2 'regular file' "$d/dir.o"
	refused 2 'regular file' "$d/fifo.o"	# stat, not open: a FIFO would block
	refused 2 'writable' "$d/group.o"
	refused 2 'writable' "$d/other.o"
	refused 2 'own|uid' "$d/nobody.o"
	stop_clean
}

@test "refused, exit 5: a linked library or program, another architecture, TLS, a constructor, an IFUNC, an unhandled relocation" {
	local r=$P/refuse
	daemon_start patchd --threads 4
	remember handle_request
	refused 5 'ET_DYN|shared|linked|cc -c' "$r/etdyn.o"
	refused 5 'ET_EXEC|executable|linked|cc -c' "$r/etexec.o"
	refused 5 '[Aa]rch|machine|x86-64|AArch64' "$r/arch.o"
	refused 5 'TLS|thread-local' "$r/tls.o"
	refused 5 'constructor|init_array' "$r/ctor.o"
	refused 5 'IFUNC|ifunc' "$r/ifunc.o"
	refused 5 'R_X86_64_SIZE32' "$r/reloc.o"
	stop_clean
}

@test "refused, exit 4: unresolved names all listed at once with did-you-mean; a static defined twice names both" {
	daemon_start patchd --threads 4
	remember handle_request
	refused 4 'no_such_function' "$P/refuse/unresolved.o"
	[[ $LP_ERR == *note_fixed_cal[!l]* || $LP_ERR == *note_fixed_cal ]] ||
		fail "note_fixed_cal is not listed with no_such_function: $LP_ERR"
	[[ $LP_ERR == *"did you mean"*note_fixed_call* ]] || fail "no 'did you mean note_fixed_call': $LP_ERR"
	refused 4 'checksum' "$P/refuse/dup.o"
	[[ $LP_ERR == *patchd_aux.c* || $LP_ERR =~ 0x[0-9a-f]+.*0x[0-9a-f]+ ]] ||
		fail "the two candidates (patchd.c's and patchd_aux.c's checksum) are not named: $LP_ERR"
	stop_clean
}

@test "a failure after attaching (LP_FAULT) exits 6, F unchanged; the patch unmapped unless a thread may have run it" {
	local step obj kept=0 n=0
	daemon_start patchd --threads 4
	remember handle_request
	# Mapped, then failed before any write: nothing may be left.
	cp "$P/gcc-O2/static_call.o" "$BATS_TEST_TMPDIR/s0.o"
	LP_FAULT=load lp -p "$DAEMON_PID" --load "$BATS_TEST_TMPDIR/s0.o" \
		--func handle_request --target handle_request_fixed --json
	expect_rc 6 || return 1
	json_check "d['transaction']['patches_loaded'] == 1" "d['transaction']['rolled_back']" \
		"not d['transaction']['load_kept']" <<<"$LP_OUT" || return 1
	untouched || fail "after LP_FAULT=load" || return 1
	# Failed after the int3 was written: a thread that trapped ran the patch and may be in it
	# still, so it stays mapped, unused, when the report says load_kept; else it is gone.
	for step in int3 sync1 head; do
		obj=$BATS_TEST_TMPDIR/s-$step.o
		cp "$P/gcc-O2/static_call.o" "$obj" && printf '%s' "$step" >>"$obj"
		LP_FAULT=$step lp -p "$DAEMON_PID" --load "$obj" \
			--func handle_request --target handle_request_fixed --json
		expect_rc 6 || return 1
		[[ $(text_sum "$DAEMON_PID" "$FADDR" 32) == "$FSUM" ]] || fail "LP_FAULT=$step: the bytes at $FADDR changed" || return 1
		if json_check "d['transaction']['load_kept']" <<<"$LP_OUT" 2>/dev/null; then
			kept=$((kept + 1))
			[[ $(lp_regions "s-$step.o") == 1 ]] || fail "LP_FAULT=$step: load_kept but $(lp_regions "s-$step.o") regions" || return 1
		else
			[[ $(lp_regions "s-$step.o") == 0 ]] || fail "LP_FAULT=$step: not kept, yet mapped" || return 1
		fi
		n=$((n + 1))
	done
	echo "# $kept of $n failures after the int3 kept the patch (a thread had run it)" >&3
	lp -p "$DAEMON_PID" --list
	expect_rc 0 || return 1
	KEPT=$kept json_check "not d['changed']" \
		"sum(1 for l in d['load'] if l['users'] == 0) == int(os.environ['KEPT']) == len(d['load'])" \
		<<<"$LP_OUT" || return 1
	run timeout -k 5 60 "$LP" -p "$DAEMON_PID" --list
	(($(grep -c 'unused: nothing jumps into it' <<<"$output") == kept)) ||
		fail "--list does not show the $kept kept patches as unused: $output" || return 1
	alive && untraced && grows calls_old && stays_put 200 calls_new || return 1
	stop_clean
}

# --- a stripped program ----------------------------------------------------------------------

@test "patchd-stripped: exported names bind through .dynsym; a static one is not there (exit 4, named)" {
	daemon_start patchd-stripped --threads 4
	remember handle_request
	refused 4 'parse_header' "$P/gcc-O2/static_call.o"
	kind strings
	round "$P/gcc-O2/strings.o"
	stop_clean
}

# --- --verify --------------------------------------------------------------------------------

@test "--verify=1 with --load: the loaded target is entered, the old function is not" {
	if ! kernel_has_btf; then verify_refused; return; fi
	kind static_call
	daemon_start patchd --threads 4
	load_obj "$P/gcc-O2/static_call.o" --verify=1	# optional argument: --verify 1 would not take it
	json_check "d['verify']['verdict'] == 'pass'" "d['verify']['target_hits'] > 0" \
		"d['verify']['old_hits'] == 0" <<<"$LP_OUT"
	switched calls_new calls_old
	revert handle_request
	stop_clean
}

# --- a program with a seccomp filter ----------------------------------------------------------

@test "a seccomp filter that kills on memfd_create or mprotect: refused, exit 3, the program alive and untouched" {
	local nr
	for nr in 319 10; do	# memfd_create (the 2nd call), mprotect (the 4th: after two were made)
		daemon_start patchd --threads 4 --seccomp-kill "$nr"
		remember handle_request
		# Found once attached (the filter is read from a stopped thread): the report, then the error.
		lp -p "$DAEMON_PID" --load "$P/gcc-O2/static_call.o" --func handle_request \
			--target handle_request_fixed --json
		expect_rc 3 || return 1
		json_check "'seccomp filter answers system call $nr with KILL_PROCESS' in d['error']['message']" \
			"d['transaction']['patches_loaded'] == 0" <<<"$LP_OUT" || return 1
		untouched || return 1
		[[ $(ls "/proc/$DAEMON_PID/task" | wc -l) == 5 ]] || fail "a thread is gone: $(ls "/proc/$DAEMON_PID/task")"
		stop_clean
	done
	# The same program without the filter loads it (the filter was the only obstacle).
	daemon_start patchd --threads 4
	kind static_call
	load_obj "$P/gcc-O2/static_call.o"
	switched calls_new calls_old
	stop_clean
}
