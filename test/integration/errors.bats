#!/usr/bin/env bats
# Every bad input of livepatch (docs/design.md §1, man page EXIT STATUS and PRIVILEGES): the exit
# code of its class, one line on stderr `livepatch: error: WHAT (HOW TO FIX)` and nothing on
# stdout; with --json exactly one JSON object {"error":{"code":N,"message":...}} on stdout
# and nothing on stderr. Where a daemon is involved, its compute() is byte-identical
# afterwards and it keeps counting.
# Run after `make && make daemons`, as root: bats test/integration/errors.bats

# SC2016: '$1' and "$@" in bash -c scripts are for that bash. SC2154: stderr_lines is set by
# bats' run --separate-stderr. SC2153: DAEMON_PID is set by lib.bash.
# shellcheck disable=SC2016,SC2153,SC2154

bats_require_minimum_version 1.5.0

load ../lib

# One worker (plus the main thread): enough to count, and leaves the CPUs to livepatch.
CD_ARGS=(--threads 1)
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# Root without CAP_SYS_PTRACE: capsh drops it from the bounding set, so the bash it execs
# (and livepatch) has it in neither the permitted nor the effective set.
NOCAP=(capsh --drop=cap_sys_ptrace -- -c 'exec "$@"' livepatch-nocap)

setup() {
	lp_setup_file
	LP_RUN=()	# prefix of the livepatch command line (another user, fewer capabilities)
	TEXT_SUMS=()	# "PID ADDR SUM" of code that must be unchanged at the end
}

teardown() {
	if [[ -n ${STRACE_PID-} ]]; then
		kill -TERM "$STRACE_PID" 2>/dev/null || true
		wait "$STRACE_PID" 2>/dev/null || true
	fi
	daemon_stop
}

# remember_text PID SYMBOL...: record the 64 bytes at each SYMBOL of PID's executable.
remember_text() {
	local pid=$1 sym addr
	shift
	for sym; do
		addr=$(sym_addr "$pid" exe "$sym") || return 1
		TEXT_SUMS+=("$pid $addr $(text_sum "$pid" "$addr" 64)")
	done
}

# daemon_untouched: every remembered text is unchanged, no tracer is left, and the
# daemon started last still counts calls of compute.
daemon_untouched() {
	local e pid addr sum
	for e in "${TEXT_SUMS[@]}"; do
		read -r pid addr sum <<<"$e"
		[[ $(text_sum "$pid" "$addr" 64) == "$sum" ]] || fail "text at $addr of $pid changed" || return 1
		[[ $(awk '/^TracerPid:/ { print $2 }' "/proc/$pid/status") == 0 ]] ||
			fail "pid $pid is still traced" || return 1
	done
	status_wait_change calls_compute
}

# lp_fails CODE REGEX ARGS...: `livepatch ARGS` (after the LP_RUN prefix) exits CODE with
# one stderr line `livepatch: error: WHAT (HOW TO FIX)` matching REGEX and an empty stdout;
# `livepatch --json ARGS` exits CODE with {"error":{"code":CODE,"message":M}} alone on stdout
# (M matching REGEX) and an empty stderr. Leaves the plain stderr in LP_ERR.
lp_fails() {
	local code=$1 re=$2
	shift 2
	run --separate-stderr "${LP_RUN[@]}" "$LP" "$@"
	LP_ERR=$stderr
	[ "$status" -eq "$code" ] || fail "livepatch $*: exit $status, want $code; stderr: $stderr; stdout: $output" || return 1
	[ -z "$output" ] || fail "livepatch $*: stdout not empty: $output" || return 1
	[ "${#stderr_lines[@]}" -eq 1 ] || fail "livepatch $*: want one stderr line, got: $stderr" || return 1
	[[ $stderr =~ ^livepatch:\ error:\ .+\ \(.+\)$ ]] ||
		fail "livepatch $*: not 'livepatch: error: WHAT (HOW TO FIX)': $stderr" || return 1
	[[ $stderr =~ $re ]] || fail "livepatch $*: stderr does not match /$re/: $stderr" || return 1

	run --separate-stderr "${LP_RUN[@]}" "$LP" --json "$@"
	export LP_RE=$re
	[ "$status" -eq "$code" ] || fail "livepatch --json $*: exit $status, want $code: $output" || return 1
	[ -z "$stderr" ] || fail "livepatch --json $*: stderr not empty: $stderr" || return 1
	json_check "set(d) == {'error'}" "d['error']['code'] == $code" \
		"isinstance(d['error']['message'], str) and d['error']['message'] != ''" \
		"re.search(os.environ['LP_RE'], d['error']['message'])" <<<"$output" || return 1
}

# prepare_nobody: let uid 65534 write the daemon files into $BATS_TEST_TMPDIR (bats makes
# its run directory 0700) and provide $NOBODY_BUILD/daemons/NAME wrappers that exec the real
# daemon as nobody, so that daemon_start works unchanged: LP_BUILD=$NOBODY_BUILD daemon_start.
prepare_nobody() {
	local name
	chmod o+x "$BATS_RUN_TMPDIR" "$BATS_RUN_TMPDIR/test"
	chmod 1777 "$BATS_TEST_TMPDIR"
	NOBODY_BUILD=$BATS_TEST_TMPDIR/nobody-build
	mkdir -p "$NOBODY_BUILD/daemons"
	for name in "$LP_BUILD"/daemons/counterd*; do
		name=${name##*/}
		printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${NOBODY[*]}" "$LP_BUILD/daemons/$name" \
			>"$NOBODY_BUILD/daemons/$name"
		chmod 755 "$NOBODY_BUILD/daemons/$name"
	done
	# livepatch itself must be executable by nobody: use a copy when the tree is private.
	if ! "${NOBODY[@]}" test -x "$LP"; then
		install -m 755 "$LP" "$BATS_TEST_TMPDIR/livepatch"
		LP=$BATS_TEST_TMPDIR/livepatch
	fi
}

# ---------------------------------------------------------------------------------------
# 3: the process cannot be used

@test "a pid that does not exist: exit 3, no process" {
	# A child that exited and was reaped, until one pid stays free (a pid reused at once is
	# rare, and then the next child is tried: never a skip).
	local pid i
	for ((i = 0; i < 20; i++)); do
		sleep 0 &
		pid=$!
		wait "$pid" || true
		[[ -e /proc/$pid ]] || break
	done
	[[ ! -e /proc/$pid ]] || fail "20 exited children's pids were all reused at once" || return 1
	lp_fails 3 "no process with pid $pid" -p "$pid" -f compute -t compute_v2 -n
	lp_fails 3 "no process with pid $pid" -p "$pid" -f compute -t compute_v2
}

@test "a zombie (exited, not reaped by its parent): exit 3, says zombie" {
	# python3 forks a child that exits at once and never waits for it.
	"$PY" -c '
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % pid)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)' "$BATS_TEST_TMPDIR/zombie.pid" </dev/null >/dev/null 2>&1 3>&- &
	DAEMON_PIDS+=("$!")	# daemon_stop ends the parent, which lets init reap the child
	local z n=0
	until [[ -s $BATS_TEST_TMPDIR/zombie.pid ]]; do
		((n++ < 500)) || fail "no zombie after 5 s"
		sleep 0.01
	done
	z=$(<"$BATS_TEST_TMPDIR/zombie.pid")
	n=0
	until [[ $(awk '/^State:/ { print $2 }' "/proc/$z/status") == Z ]]; do
		((n++ < 500)) || fail "pid $z is not a zombie"
		sleep 0.01
	done
	lp_fails 3 "zombie" -p "$z" -f compute -t compute_v2 -n
	lp_fails 3 "zombie" -p "$z" -f compute -t compute_v2
}

@test "a thread id instead of the process id: exit 3, names the process id" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	local tid="" t
	for t in "/proc/$DAEMON_PID"/task/*; do
		t=${t##*/}
		[[ $t == "$DAEMON_PID" ]] || { tid=$t; break; }
	done
	[[ -n $tid ]] || fail "counterd has no second thread"
	lp_fails 3 "--pid $DAEMON_PID" -p "$tid" -f compute -t compute_v2 -n
	lp_fails 3 "--pid $DAEMON_PID" -p "$tid" -f compute -t compute_v2
	daemon_untouched
}

@test "not permitted, another user: nobody patching a root daemon gets exit 3 naming both uids and the fix" {
	prepare_nobody
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	LP_RUN=("${NOBODY[@]}")
	lp_fails 3 "uid 0.*uid 65534|uid 65534.*uid 0" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	[[ $LP_ERR =~ \((.*)(root|uid\ 0)(.*)\)$ ]] || fail "the fix (run as root or as uid 0) is missing: $LP_ERR"
	lp_fails 3 "uid 0.*uid 65534|uid 65534.*uid 0" -p "$DAEMON_PID" -f compute -t compute_v2
	daemon_untouched
}

@test "same user, dumpable daemon: nobody can dry-run a daemon of nobody (control for the next case)" {
	prepare_nobody
	LP_BUILD=$NOBODY_BUILD daemon_start counterd "${CD_ARGS[@]}"
	[[ $(awk '/^Uid:/ { print $2 }' "/proc/$DAEMON_PID/status") == 65534 ]] || fail "daemon is not nobody's"
	remember_text "$DAEMON_PID" compute
	local yama
	yama=$(yama_scope)
	if ((yama >= 1)); then
		# Yama lets a process trace only its descendants (1), or only with CAP_SYS_PTRACE (2, 3).
		say "Yama ptrace_scope is $yama: nobody may not trace a daemon it did not start, and livepatch says so"
		LP_RUN=("${NOBODY[@]}")
		lp_fails 3 "Yama ptrace_scope is $yama" -p "$DAEMON_PID" -f compute -t compute_v2 -n
		daemon_untouched
		return
	fi
	say "no Yama restriction (no Yama, or ptrace_scope 0): nobody traces its own daemon"
	run --separate-stderr "${NOBODY[@]}" "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $stderr $output"
	json_check "d['status'] == 'planned'" <<<"$output"
	daemon_untouched
}

@test "not permitted, not dumpable: nobody patching its own --nondumpable daemon gets exit 3 saying not dumpable" {
	prepare_nobody
	LP_BUILD=$NOBODY_BUILD daemon_start counterd "${CD_ARGS[@]}" --nondumpable
	[[ $(awk '/^Uid:/ { print $2 }' "/proc/$DAEMON_PID/status") == 65534 ]] || fail "daemon is not nobody's"
	# the kernel refuses: same uid, but not dumpable
	! "${NOBODY[@]}" bash -c 'exec 3<"/proc/$1/mem"' _ "$DAEMON_PID" 2>/dev/null ||
		fail "the kernel lets nobody open /proc/$DAEMON_PID/mem: the daemon is dumpable"
	remember_text "$DAEMON_PID" compute
	LP_RUN=("${NOBODY[@]}")
	lp_fails 3 "not dumpable" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	lp_fails 3 "not dumpable" -p "$DAEMON_PID" -f compute -t compute_v2
	daemon_untouched
}

@test "not permitted, no CAP_SYS_PTRACE: root without it patching nobody's daemon gets exit 3 naming CAP_SYS_PTRACE" {
	# Different uid (0 vs 65534) and no CAP_SYS_PTRACE: the kernel's ptrace access check
	# refuses. (Root's uid matching would not be enough either: a root daemon holds
	# capabilities this livepatch lacks; see the next case.)
	prepare_nobody
	LP_BUILD=$NOBODY_BUILD daemon_start counterd "${CD_ARGS[@]}"
	! "${NOCAP[@]}" bash -c 'exec 3<"/proc/$1/mem"' _ "$DAEMON_PID" 2>/dev/null ||
		fail "the kernel lets root without CAP_SYS_PTRACE open /proc/$DAEMON_PID/mem"
	remember_text "$DAEMON_PID" compute
	LP_RUN=("${NOCAP[@]}")
	lp_fails 3 "CAP_SYS_PTRACE" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	[[ $LP_ERR == *container* ]] || fail "no hint for containers: $LP_ERR"
	lp_fails 3 "CAP_SYS_PTRACE" -p "$DAEMON_PID" -f compute -t compute_v2
	daemon_untouched
}

@test "not permitted, no CAP_SYS_PTRACE: root without it patching a root daemon (more capabilities) gets exit 3" {
	# Same uid, dumpable, but the daemon's permitted capabilities are not a subset of
	# livepatch's: commoncap's ptrace check wants CAP_SYS_PTRACE.
	daemon_start counterd "${CD_ARGS[@]}"
	! "${NOCAP[@]}" bash -c 'exec 3<"/proc/$1/mem"' _ "$DAEMON_PID" 2>/dev/null ||
		fail "the kernel lets root without CAP_SYS_PTRACE open /proc/$DAEMON_PID/mem"
	remember_text "$DAEMON_PID" compute
	LP_RUN=("${NOCAP[@]}")
	lp_fails 3 "CAP_SYS_PTRACE" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	daemon_untouched
}

@test "not permitted, uid 0 with CAP_SYS_PTRACE bounded but not effective (SECBIT_NOROOT): exit 3 naming CAP_SYS_PTRACE" {
	# With the noroot securebit, uid 0 gains no capabilities at exec although
	# CAP_SYS_PTRACE stays in the bounding set (as in a service with a capability-less root).
	# "Run livepatch as root" would be no fix: it already runs as root. The missing
	# capability is the cause.
	prepare_nobody
	LP_BUILD=$NOBODY_BUILD daemon_start counterd "${CD_ARGS[@]}"
	local noroot=(setpriv "--securebits=+noroot,+noroot_locked" --)
	"${noroot[@]}" grep -q '^CapBnd:.*[1-9a-f]' /proc/self/status || fail "bounding set empty"
	! "${noroot[@]}" bash -c 'exec 3<"/proc/$1/mem"' _ "$DAEMON_PID" 2>/dev/null ||
		fail "the kernel lets a capability-less root open /proc/$DAEMON_PID/mem"
	remember_text "$DAEMON_PID" compute
	LP_RUN=("${noroot[@]}")
	lp_fails 3 "CAP_SYS_PTRACE" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	daemon_untouched
}

@test "not permitted, root with CAP_SYS_PTRACE in a child user namespace: exit 3 naming the user namespace, not the capability" {
	# unshare --map-root-user: uid 0 with every capability, CAP_SYS_PTRACE effective, but in
	# a user namespace below the host's, where the daemon runs: the kernel counts the
	# capability only in the target's namespace or above. "Run as root with CAP_SYS_PTRACE"
	# would be no fix: it is both already.
	daemon_start counterd "${CD_ARGS[@]}"
	local userns=(unshare --user --map-root-user --)
	"${userns[@]}" grep -q '^CapEff:.*[1-9a-f]' /proc/self/status || fail "no capabilities in the child namespace"
	! "${userns[@]}" bash -c 'exec 3<"/proc/$1/mem"' _ "$DAEMON_PID" 2>/dev/null ||
		fail "the kernel lets a child namespace's root open /proc/$DAEMON_PID/mem"
	remember_text "$DAEMON_PID" compute
	LP_RUN=("${userns[@]}")
	lp_fails 3 "process $DAEMON_PID: .*user namespace" -p "$DAEMON_PID" -f compute -t compute_v2
	[[ $LP_ERR != *"run livepatch as root with CAP_SYS_PTRACE"* ]] || fail "advice that cannot help: $LP_ERR"
	lp_fails 3 "user namespace" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	daemon_untouched
	expect_key calls_compute_v2 0
}

@test "already traced by strace: exit 3, names the tracer's pid and strace" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	strace -f -qq -o /dev/null -p "$DAEMON_PID" </dev/null >"$BATS_TEST_TMPDIR/strace.log" 2>&1 3>&- &
	STRACE_PID=$!
	local n=0
	until [[ $(awk '/^TracerPid:/ { print $2 }' "/proc/$DAEMON_PID/status") == "$STRACE_PID" ]]; do
		((n++ < 500)) || fail "strace did not attach in 5 s: $(cat "$BATS_TEST_TMPDIR/strace.log")"
		sleep 0.01
	done
	lp_fails 3 "pid $STRACE_PID \(strace\)" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	lp_fails 3 "pid $STRACE_PID \(strace\)" -p "$DAEMON_PID" -f compute -t compute_v2

	kill -TERM "$STRACE_PID"
	wait "$STRACE_PID" || true
	STRACE_PID=
	daemon_untouched
}

@test "more threads than the open-file limit allows: exit 3 naming ulimit -n; a low soft limit alone is raised" {
	daemon_start counterd --threads 80
	remember_text "$DAEMON_PID" compute
	# A hard limit of 40: one file per thread cannot be had. Refused before anything is attached.
	LP_RUN=(prlimit --nofile=40:40 --)
	lp_fails 3 "has 8[0-9] threads.*open-file limit 40 .*ulimit -n [0-9]+" \
		-p "$DAEMON_PID" -f compute -t compute_v2
	daemon_untouched
	# A soft limit of 40 under a hard one of 4096: livepatch raises its own, and patches.
	run prlimit --nofile=40:4096 -- "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -q
	[ "$status" -eq 0 ] || fail "soft limit 40, hard 4096: exit $status: $output"
	calls_only calls_compute_v2 calls_compute
	run prlimit --nofile=40:4096 -- "$LP" -p "$DAEMON_PID" --revert compute -q
	[ "$status" -eq 0 ] || fail "revert with soft limit 40: exit $status: $output"
	daemon_untouched
}

# Where the kernel cannot run a 32-bit program (no CONFIG_IA32_EMULATION, or booted with
# ia32_emulation=off), the check is proven by the unit test proc: test_proc_check_elf_arch
# on sleep32's file; LP_TEST_IA32=off takes that path on any kernel.
@test "a 32-bit process (sleep32): exit 3, not an x86-64 program" {
	if ! kernel_runs_32bit; then
		say "this kernel cannot run 32-bit programs: the diagnosis is proven by the unit test proc: test_proc_check_elf_arch"
		return 0
	fi
	say "this kernel runs 32-bit programs: livepatch refuses a running one"
	daemon_start_plain sleep32
	lp_fails 3 "not an x86-64 program.*32-bit|32-bit.*not an x86-64 program" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	lp_fails 3 "not an x86-64 program" -p "$DAEMON_PID" -f compute -t compute_v2
}

@test "a kernel thread: exit 3, says it is a kernel thread (not a program)" {
	# Any kernel thread will do: PF_KTHREAD (0x00200000) in the flags of /proc/PID/stat.
	local k="" p stat flags
	for p in 2 /proc/[0-9]*; do
		p=${p#/proc/}
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		flags=$(awk '{ print $7 }' <<<"$stat")
		if (((flags & 0x00200000) != 0)); then
			k=$p
			break
		fi
	done
	if [[ -z $k ]]; then
		say "no kernel thread is visible in this pid namespace (a container): the kernel-thread refusal cannot be reached here"
		return 0
	fi
	say "kernel thread $k ($(cat "/proc/$k/comm"))"
	lp_fails 3 "$k.*kernel thread" -p "$k" -f compute -t compute_v2 -n
	[[ $LP_ERR != *"did the process exit"* ]] || fail "blames an exit: $LP_ERR"
}

# ---------------------------------------------------------------------------------------
# 4: symbol problems

@test "symbol not found (comput): exit 4, suggests compute" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	lp_fails 4 "'comput'.*did you mean: compute" -p "$DAEMON_PID" -f comput -t compute_v2 -n
	lp_fails 4 "did you mean: compute" -p "$DAEMON_PID" -f comput -t compute_v2
	lp_fails 4 "'compute_v3'.*did you mean:.*compute_v2" -p "$DAEMON_PID" -f compute -t compute_v3
	daemon_untouched
}

@test "an unknown symbol version (memcpy@GLIBC_9): exit 4, names the version asked for" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	lp_fails 4 "memcpy@GLIBC_9" -p "$DAEMON_PID" -f libc.so.6:memcpy@GLIBC_9 -t compute_v2 -n
	# a suggestion must not be the very name that was just refused
	[[ ! $LP_ERR =~ did\ you\ mean:\ memcpy[,?\)] ]] || fail "suggests plain memcpy: $LP_ERR"
	daemon_untouched
}

@test "ambiguous sample_dup in counterd-lib: exit 4 lists both objects and how to qualify; OBJECT:sample_dup resolves" {
	daemon_start counterd-lib "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" sample_dup
	lp_fails 4 "counterd-lib:sample_dup.*libsample.so:sample_dup|libsample.so:sample_dup.*counterd-lib:sample_dup" \
		-p "$DAEMON_PID" -f sample_dup -t libsample.so:compute_v2 -n
	[[ $LP_ERR == *ambiguous* && $LP_ERR == *"OBJECT:SYMBOL"* ]] || fail "no 'ambiguous' or how to qualify: $LP_ERR"
	lp_fails 4 "ambiguous" -p "$DAEMON_PID" -f libsample.so:compute -t sample_dup -n

	# Qualified, it resolves. As the target (any size will do):
	local obj
	for obj in counterd-lib libsample.so; do
		run --separate-stderr "$LP" -p "$DAEMON_PID" -f libsample.so:compute -t "$obj:sample_dup" -n -j
		[ "$status" -eq 0 ] || fail "-t $obj:sample_dup: exit $status: $output $stderr"
		json_check "d['status'] == 'planned'" "d['target']['object'] == '$obj'" \
			"d['target']['symbol'] == 'sample_dup'" <<<"$output"
	done
	# As the function, counterd-lib:sample_dup is 8 bytes (endbr64; lea; ret), too small for
	# any jump: it resolves, and the site analysis (exit 5), not the resolver, refuses it.
	lp_fails 5 "too small" -p "$DAEMON_PID" -f counterd-lib:sample_dup -t counterd-lib:compute_slow_v2 -n
	daemon_untouched
}

@test "an object that is not mapped (nosuch.so:compute): exit 4, lists the mapped objects" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	lp_fails 4 "nosuch\.so.*counterd" -p "$DAEMON_PID" -f nosuch.so:compute -t compute_v2 -n
	lp_fails 4 "nosuch\.so" -p "$DAEMON_PID" -f compute -t nosuch.so:compute_v2
	daemon_untouched
}

@test "a data object (compute_data) is not a function: exit 4" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute compute_data
	lp_fails 4 "compute_data.*not a function" -p "$DAEMON_PID" -f compute_data -t compute_v2 -n
	lp_fails 4 "compute_data.*not a function" -p "$DAEMON_PID" -f compute -t compute_data
	daemon_untouched
}

@test "a GNU IFUNC (compute_ifunc) is refused: exit 4, mentions IFUNC" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	lp_fails 4 "compute_ifunc.*IFUNC" -p "$DAEMON_PID" -f compute_ifunc -t compute_v2 -n
	lp_fails 4 "IFUNC" -p "$DAEMON_PID" -f compute_ifunc -t compute_v2
	daemon_untouched
}

@test "a target address that is not executable (0x address of compute_data): exit 4" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute compute_data
	local data
	data=$(sym_addr "$DAEMON_PID" exe compute_data)
	lp_fails 4 "$data.*executable" -p "$DAEMON_PID" -f compute -t "$data" -n
	lp_fails 4 "executable" -p "$DAEMON_PID" -f compute -t "$data"
	daemon_untouched
}

# ---------------------------------------------------------------------------------------
# 2: usage

@test "the function and the target are the same: exit 2 (by name and by address)" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	local f
	f=$(sym_addr "$DAEMON_PID" exe compute)
	lp_fails 2 "same" -p "$DAEMON_PID" -f compute -t compute -n
	lp_fails 2 "same" -p "$DAEMON_PID" -f compute -t compute
	lp_fails 2 "same" -p "$DAEMON_PID" -f compute -t "$f" -n
	daemon_untouched
}

# ---------------------------------------------------------------------------------------
# 5: site refused by analysis

@test "site refused: tiny (3 bytes after endbr64) is too small: exit 5" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute tiny
	lp_fails 5 "tiny.*too small" -p "$DAEMON_PID" -f tiny -t compute_v2 -n
	lp_fails 5 "too small" -p "$DAEMON_PID" -f tiny -t compute_v2
	daemon_untouched
}

@test "site refused: branchy loops back into the bytes to replace: exit 5, names the branch" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute branchy
	# the loop's jl (branchy+0xa) goes to branchy+6: endbr64 (4) + xor (2)
	lp_fails 5 "branchy.*(jl|branch).*inside" -p "$DAEMON_PID" -f branchy -t compute_v2 -n
	[[ $LP_ERR == *"branchy+0x6"* ]] || fail "does not name the branch target branchy+0x6: $LP_ERR"
	lp_fails 5 "inside" -p "$DAEMON_PID" -f branchy -t compute_v2
	daemon_untouched
}

@test "site accepted: early_call's 5-byte call is the whole displaced range, so it returns past the jump" {
	# docs/design.md §3 refuses a call whose return address lands inside the displaced bytes;
	# this one returns to their end, into intact code (make reach: 389 such functions).
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute early_call
	run "$LP" -p "$DAEMON_PID" -f early_call -t compute_v2 -n --json
	[ "$status" -eq 0 ]
	[[ $output == *'"status":"planned"'* ]]
	[[ $output == *'"displaced":"call '* ]]
	daemon_untouched
}

@test "site refused: early_call_short's 2-byte call returns inside the bytes to replace: exit 5" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute early_call_short
	lp_fails 5 "early_call_short.*call.*return" -p "$DAEMON_PID" -f early_call_short -t compute_v2 -n
	lp_fails 5 "call" -p "$DAEMON_PID" -f early_call_short -t compute_v2
	daemon_untouched
}

@test "site refused: a target inside the bytes to replace (the site itself, compute+4): exit 5" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	local f t
	f=$(sym_addr "$DAEMON_PID" exe compute)
	for t in $((f + 4)) $((f + 6)); do	# endbr64 stays; the jmp rel32 covers +4..+8
		lp_fails 5 "target.*inside" -p "$DAEMON_PID" -f compute -t "$(printf '0x%x' "$t")" -n
	done
	lp_fails 5 "target.*inside" -p "$DAEMON_PID" -f compute -t "$(printf '0x%x' $((f + 4)))"
	daemon_untouched
}

# ---------------------------------------------------------------------------------------
# 0: nothing to do

@test "revert of a function that is not patched: exit 0, 'not patched' on stdout, nothing attached" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute
	local trace=$BATS_TEST_TMPDIR/lp.strace
	run --separate-stderr strace -f -qq -o "$trace" -e trace=ptrace,process_vm_writev \
		"$LP" -p "$DAEMON_PID" --revert compute
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[ -z "$stderr" ] || fail "stderr not empty: $stderr"
	[[ $output == *"not patched"* ]] || fail "no 'not patched': $output"
	if grep -E 'ptrace\(|process_vm_writev\(' "$trace"; then
		fail "a revert with nothing to do attached or wrote (above)"
	fi

	run --separate-stderr "$LP" -p "$DAEMON_PID" --revert compute --json
	[ "$status" -eq 0 ] || fail "--json: exit $status: $output $stderr"
	json_check "d['action'] == 'revert'" "d['status'] == 'not_patched'" "d['sites'] == []" \
		"d['function']['symbol'] == 'compute'" <<<"$output"
	daemon_untouched
}

# ---------------------------------------------------------------------------------------
# 5 and 2: plans that cannot work are refused at planning, before anything is written

@test "a plan whose pairs make a cycle (compute <-> compute_v2, or through compute_slow): exit 5 naming it" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute compute_v2 compute_slow
	local plan=$BATS_TEST_TMPDIR/plan one='counterd:compute(_v2|_slow)?'
	printf 'compute compute_v2\ncompute_v2 compute\n' >"$plan"
	lp_fails 5 "the plan makes a cycle: counterd:compute -> counterd:compute_v2 -> counterd:compute \(remove one of these pairs\)" \
		-p "$DAEMON_PID" --plan "$plan" -n
	lp_fails 5 "the plan makes a cycle" -p "$DAEMON_PID" --plan "$plan"
	lp_fails 5 "the plan makes a cycle: ($one -> ){3}$one \(remove one of these pairs\)" -p "$DAEMON_PID" \
		-f compute -t compute_v2 -f compute_v2 -t compute_slow -f compute_slow -t compute
	# a chain that ends is no cycle
	run "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -f compute_v2 -t compute_slow -n
	[ "$status" -eq 0 ] || fail "a chain without a cycle: exit $status: $output"
	daemon_untouched
}

@test "a pair that closes a cycle with a jump already in memory (to F's entry or F's site): exit 5, names what to revert" {
	daemon_start counterd "${CD_ARGS[@]}"
	local plan=$BATS_TEST_TMPDIR/plan f v2 t
	f=$(sym_addr "$DAEMON_PID" exe compute)
	v2=$(sym_addr "$DAEMON_PID" exe compute_v2)
	printf '# compute_v2 jumps to compute already\ncompute compute_v2\n' >"$plan"
	# compute_v2's jump lands on compute's entry (endbr64), then on its site (compute+4)
	for t in compute "$(printf '0x%x' $((f + 4)))"; do
		"$LP" -p "$DAEMON_PID" -f compute_v2 -t "$t" -q
		TEXT_SUMS=()
		remember_text "$DAEMON_PID" compute compute_v2
		lp_fails 5 "the plan makes a cycle: counterd:compute -> counterd:compute_v2 -> counterd:compute \(remove one of these pairs, or revert counterd:compute_v2 first\)" \
			-p "$DAEMON_PID" -f compute -t compute_v2
		lp_fails 5 "the plan makes a cycle" -p "$DAEMON_PID" -f compute -t compute_v2 -n
		lp_fails 5 "the plan makes a cycle" -p "$DAEMON_PID" --plan "$plan"
		lp_fails 5 "the plan makes a cycle" -p "$DAEMON_PID" -f compute -t "$(printf '0x%x' $((v2 + 4)))"
		daemon_untouched
		"$LP" -p "$DAEMON_PID" --revert compute_v2 -q
	done
	run --separate-stderr "$LP" -p "$DAEMON_PID" --list --json
	json_check "d['changed'] == []" <<<"$output"
	# once reverted, the pair is fine
	run "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	[ "$status" -eq 0 ] || fail "after the revert: exit $status: $output"
}

@test "plan files that cannot be read as text: /dev/zero, a directory, a NUL byte, a long line, over 16 MiB: exit 2 naming why" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute compute_v2 compute_slow
	local plan=$BATS_TEST_TMPDIR/plan dir=$BATS_TEST_TMPDIR/plans x4095
	mkdir "$dir"
	LP_RUN=(timeout 10)	# a hang guard: /dev/zero was read for ever
	lp_fails 2 "/dev/zero:1: a NUL byte at column 1 " -p "$DAEMON_PID" --plan /dev/zero -n
	lp_fails 2 "/dev/zero:1: a NUL byte" -p "$DAEMON_PID" --plan /dev/zero
	lp_fails 2 "cannot read plan file $dir: Is a directory \(give a readable file" -p "$DAEMON_PID" --plan "$dir" -n
	lp_fails 2 "cannot read plan file $dir/nosuch: No such file or directory" -p "$DAEMON_PID" --plan "$dir/nosuch"
	printf 'compute compute_v2\n# a NUL cuts the next line\ncompute_slow\0compute_slow_v2\n' >"$plan"
	lp_fails 2 "$plan:3: a NUL byte at column 13 " -p "$DAEMON_PID" --plan "$plan" -n
	# 4096 bytes a line are read (its newline not counted), 4097 are not
	x4095=$(head -c 4095 /dev/zero | tr '\0' x)
	printf '#%s\ncompute compute_v2\n' "$x4095" >"$plan"
	run "${LP_RUN[@]}" "$LP" -p "$DAEMON_PID" --plan "$plan" -n
	[ "$status" -eq 0 ] || fail "a 4096-byte line: exit $status: $output"
	printf 'compute compute_v2\n#x%s\n' "$x4095" >"$plan"
	lp_fails 2 "$plan:2: the line is longer than 4096 bytes" -p "$DAEMON_PID" --plan "$plan" -n
	head -c 17M /dev/zero | tr '\0' '\n' >"$plan"
	lp_fails 2 "plan file $plan is larger than 16 MiB" -p "$DAEMON_PID" --plan "$plan" -n
	# the same from a pipe, which has no size to look at first
	run --separate-stderr bash -c 'head -c 17M /dev/zero | tr "\0" "\n" | timeout 10 "$1" -p "$2" --plan - -n' \
		_ "$LP" "$DAEMON_PID"
	[ "$status" -eq 2 ] || fail "17 MiB on stdin: exit $status: $stderr"
	[[ $stderr == "livepatch: error: plan file - is larger than 16 MiB"*")" ]] || fail "17 MiB on stdin: $stderr"
	run --separate-stderr bash -c 'timeout 10 "$1" -p "$2" --plan - -n </dev/zero' _ "$LP" "$DAEMON_PID"
	[ "$status" -eq 2 ] || fail "/dev/zero on stdin: exit $status: $stderr"
	[[ $stderr == "livepatch: error: -:1: a NUL byte at column 1 ("*")" ]] || fail "/dev/zero on stdin: $stderr"
	daemon_untouched
}

@test "a function named again in a plan of 200,000 lines: exit 2 naming the first repeat and its first line" {
	daemon_start counterd "${CD_ARGS[@]}"
	remember_text "$DAEMON_PID" compute compute_v2 compute_slow
	local plan=$BATS_TEST_TMPDIR/plan
	yes 'compute compute_v2' | head -n 200000 >"$plan"
	LP_RUN=(timeout 10)	# a hang guard only: the assertion is the line named
	lp_fails 2 "$plan:2: counterd:compute is already in the batch \(line 1\) \(each function may appear once in a batch: remove the duplicate\)$" \
		-p "$DAEMON_PID" --plan "$plan" -n
	lp_fails 2 "$plan:2: counterd:compute is already in the batch \(line 1\)" -p "$DAEMON_PID" --plan "$plan"
	# the first repeat is named, by any of the function's names, not a later one
	printf 'compute compute_v2\ncompute_slow compute_slow_v2\n\n# c\ncounterd:compute_slow compute_v2\ncompute compute_v2\n' >"$plan"
	lp_fails 2 "$plan:5: counterd:compute_slow is already in the batch \(line 2\)" -p "$DAEMON_PID" --plan "$plan" -n
	printf 'compute_slow compute_slow_v2\ncompute compute_v2\n' >"$plan"
	lp_fails 2 "$plan:2: counterd:compute is already in the batch \(given by --func\)" \
		-p "$DAEMON_PID" -f compute -t compute_v2 --plan "$plan" -n
	daemon_untouched
}
