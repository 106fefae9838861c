#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called indirectly (run_$name, trap handlers)
# Stress: LP_STRESS_CYCLES patch/revert cycles (default 1000) against each test daemon, then
# every counter rule of test/integration/transact.bats on what the daemon counted. One line
# per daemon:
#   NAME: N cycles, T s, traps E emulated / L late / P parked, stepouts S, signals passed X,
#   lost 0, EINTR 0, wrong 0
# and the exit status is 1 on any violation (a non-zero livepatch exit stops that daemon's
# cycles at once; the other daemons still run). `make stress` runs 1000 cycles; `make check`
# runs 50 through the last test of test/integration/transact.bats.
#
# LP_STRESS_LOAD=1: every patch of the cycles loads a new copy of test/patches/stress.c
# (--load, docs/design.md §8) and jumps to its F_loaded; `make stress` runs 300 such
# cycles after the 1000 plain ones.
#
# Environment: LP_STRESS_CYCLES (cycles per daemon), LP_STRESS_DAEMONS (a subset, e.g.
# "counterd blockd"; stated, stated-stopped, stated-frozen: the thread states of
# docs/design.md §5; sigtrap-block, -ignore, -queued, -cd03: the program's signal state),
# LP_STRESS_FREEZER=v2 (stated-frozen on the v2 freezer), LP_BIN (the livepatch to test,
# default ./livepatch), LP_STRESS_KEEP=1 (keep the daemons' files). Needs root (ptrace),
# `make` and `make daemons`.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
N=${LP_STRESS_CYCLES:-1000}
LP=${LP_BIN:-$ROOT/livepatch}
read -ra DAEMONS <<<"${LP_STRESS_DAEMONS:-counterd sigstormd forkd vfork churnd blockd sigtrapd stated stated-stopped stated-frozen sigtrap-block sigtrap-ignore sigtrap-queued sigtrap-cd03 sigtrap-after sigtrap-dfl-block}"
if ! [[ $N =~ ^[0-9]+$ ]] || ((N < 1)); then
	echo "stress: LP_STRESS_CYCLES must be a positive number, not '$N'" >&2
	exit 2
fi
if [[ ! -x $LP ]]; then
	echo "stress: no $LP (run: make && make daemons)" >&2
	exit 2
fi
LOAD_PATCH=
if [[ ${LP_STRESS_LOAD:-} == 1 ]]; then
	LOAD_PATCH=${LP_BUILD:-$ROOT/build}/patches/stress/stress.o
	[[ -f $LOAD_PATCH ]] || { echo "stress: no $LOAD_PATCH (run: make patches)" >&2; exit 2; }
fi

# shellcheck source=test/lib.bash
source "$ROOT/test/lib.bash"
# shellcheck disable=SC2034 # LP_TMP: lib.bash (text_sum, daemon_start) use it
LP_TMP=$(mktemp -d /tmp/lp-stress.XXXXXX)
SIGSEND_LOOP=
bad=0

cleanup() {
	if [[ -n $SIGSEND_LOOP ]]; then
		kill "$SIGSEND_LOOP" 2>/dev/null
		wait "$SIGSEND_LOOP" 2>/dev/null
	fi
	((${#DAEMON_PIDS[@]} == 0)) || daemon_stop >/dev/null 2>&1
	if ((bad)) || [[ ${LP_STRESS_KEEP:-} == 1 ]]; then
		echo "stress: files kept in $LP_TMP" >&2
	else
		rm -rf "$LP_TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

problems=()	# violations of the daemon being checked
violation() {
	problems+=("$*")
}

# val KEY [FILE]: value of KEY in the status file (default: the current daemon's), else 0.
val() {
	status_get "$@" || echo 0
}

# --- livepatch cycles -------------------------------------------------------------------

# run_lp ARGS...: one livepatch run on $DAEMON_PID (lib.bash's lp, timeout 60 s); adds the
# transaction's counters to TX. Fails (with the output on stderr) on any exit status but 0.
run_lp() {
	lp -p "$DAEMON_PID" "$@"
	if ((LP_RC != 0)); then
		{
			echo "  $LP_CMD: exit $LP_RC"
			echo "  $(grep -o '"status":"[^"]*"' <<<"$LP_OUT" | head -n1)," \
				"$(grep -o '"error":{[^}]*}' <<<"$LP_OUT")"
			echo "  $(grep -o '"transaction":{[^}]*}' <<<"$LP_OUT")"
			echo "  stderr: $LP_ERR"
		} >&2
		return 1
	fi
	[[ $LP_OUT == *'"transaction":{'* ]] || return 0	# nothing to do: not attached
	tx_add
}

# run_cycles F G: N x (patch F -> G, revert F); stops at the first failure. Sets DONE.
# LP_STRESS_LOAD=1: G is F_loaded of a patch loaded in the same transaction.
run_cycles() {
	local i g=$2 load=()
	DONE=0
	for ((i = 1; i <= N; i++)); do
		if [[ -n $LOAD_PATCH ]]; then
			load=(--load "$(patch_copy "$LOAD_PATCH" "$i")") g=${1}_loaded
		fi
		if ! run_lp "${load[@]}" -f "$1" -t "$g"; then
			violation "cycle $i: patch $1 -> $g${load[1]:+ (loading ${load[1]})} failed"
			return 1
		fi
		if [[ -n $LOAD_PATCH ]] && ! grep -q "memfd:livepatch:stress-$i.o" "/proc/$DAEMON_PID/maps"; then
			violation "cycle $i: no region of stress-$i.o in the maps after the load"
			return 1
		fi
		if ! run_lp -r "$1"; then
			violation "cycle $i: revert $1 failed"
			return 1
		fi
		DONE=$i
	done
}

# calls_only_ok NEWKEY OLDKEY...: lib.bash's calls_only, a violation when it fails.
calls_only_ok() {
	local why
	why=$(calls_only "$@" 2>&1) || violation "after the last revert: ${why//$'\n'/; }"
}

# stop_daemon: SIGTERM, reap, check the exit status.
stop_daemon() {
	local pid=$DAEMON_PID
	daemon_stop || violation "daemon did not stop within 5 s of SIGTERM"
	[[ ${DAEMON_EXIT[$pid]:-x} == 0 ]] ||
		violation "daemon exited with status ${DAEMON_EXIT[$pid]:-unknown} (128+N: killed by signal N)"
}

# --- per daemon: start, cycle, stop, check -----------------------------------------------
# Each sets LOST (things the program sent or did that did not arrive), EINTR and checks its rules.

start() {	# NAME ARGS...: daemon_start, a violation if it fails
	daemon_start "$@" && return 0
	violation "could not start $1"
	return 1
}

run_counterd() {
	start counterd --threads 16 --mode slow || return 0
	run_cycles compute_slow compute_slow_v2
	calls_only_ok calls_compute_slow calls_compute_slow_v2
	stop_daemon
	return 0
}

sigsend_loop() {	# PID: sigsend batches of 20000 (values 1..20000) until the daemon stops
	local pid=$1 n
	while [[ -e $LP_TMP/sigsend.on ]]; do
		n=$("$LP_BUILD/daemons/sigsend" "$pid" 20000 0 2>>"$LP_TMP/sigsend.err") || true
		echo "${n:-0}" >>"$LP_TMP/sigsend.counts"
	done
}

run_sigstormd() {
	local sent=0 biggest=0 n recv
	start sigstormd || return 0
	: >"$LP_TMP/sigsend.counts"
	touch "$LP_TMP/sigsend.on"
	sigsend_loop "$DAEMON_PID" &
	SIGSEND_LOOP=$!
	run_cycles compute compute_v2
	rm -f "$LP_TMP/sigsend.on"
	wait "$SIGSEND_LOOP"
	SIGSEND_LOOP=
	while read -r n; do
		sent=$((sent + n))
		((n > biggest)) && biggest=$n
	done <"$LP_TMP/sigsend.counts"
	# Every batch sends 1..n: values of later batches are repeats by construction.
	status_wait_ge ext_received "$sent" "$DAEMON_STATUS" 5000 2>/dev/null
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	recv=$(val ext_received)
	LOST=$((sent > recv ? sent - recv : 0))
	((recv == sent)) || violation "ext_received $recv != $sent sent by sigsend (lost or doubled signals)"
	(($(val ext_dups) == sent - biggest)) ||
		violation "ext_dups $(val ext_dups), expected $((sent - biggest)) (repeats of later batches only)"
	(($(val ext_out_of_range) == 0)) || violation "ext_out_of_range $(val ext_out_of_range)"
	(($(val ext_not_queued) == 0)) || violation "ext_not_queued $(val ext_not_queued)"
	(($(val timer_signals) > 0)) || violation "timer_signals 0: the timer never fired"
	if [[ -s $LP_TMP/sigsend.err ]]; then
		violation "sigsend: $(head -c 300 "$LP_TMP/sigsend.err")"
	fi
	return 0
}

run_forkd() {	# [ARGS...]: forkd ARGS, then what its children counted
	local f0
	start forkd "$@" || return 0
	f0=$(val forks)
	run_cycles compute compute_v2
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	LOST=$(val children_bad)
	((LOST == 0)) || violation "children_bad $LOST (last signal $(val last_bad_signal), last code $(val last_bad_code))"
	(($(val forks) > f0)) || violation "forks did not grow"
	(($(val fork_errors) == 0)) || violation "fork_errors $(val fork_errors)"
	return 0
}

# vfork children as fast as they come: each runs in the parent's memory while the parent
# waits in vfork(), where no interrupt reaches it (a sync must not wait for that thread).
run_vfork() {
	run_forkd --vfork --rate 0
}

run_churnd() {
	local c0
	start churnd || return 0
	c0=$(val threads_created)
	run_cycles compute compute_v2
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	LOST=$(($(val threads_created) - $(val threads_exited)))
	((LOST == 0)) || violation "threads_created $(val threads_created) != threads_exited $(val threads_exited)"
	(($(val threads_created) > c0)) || violation "threads_created did not grow"
	(($(val create_errors) == 0)) || violation "create_errors $(val create_errors)"
	return 0
}

run_blockd() {
	local k v sent got d
	start blockd || return 0
	run_cycles compute compute_v2
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	LOST=0
	for sent in pipe_bytes_written:pipe_bytes_read send_bytes:recv_bytes pings_sent:pings_got; do
		got=${sent#*:} sent=${sent%:*}
		d=$(($(val "$sent") - $(val "$got")))
		((d == 0)) || violation "$sent $(val "$sent") != $got $(val "$got")"
		LOST=$((LOST + (d < 0 ? -d : d)))
	done
	EINTR=0
	while read -r k v; do
		case $k in
		eintr_*)
			EINTR=$((EINTR + v))
			((v == 0)) || violation "$k $v (a blocked thread was stopped)"
			;;
		*_seq_errors | futex_other | semop_errors | unjoined | pings_stranded)
			((v == 0)) || violation "$k $v"
			;;
		esac
	done <"$DAEMON_STATUS"
	((${TX[blocked_left_alone]:-0} > 0)) || violation "JSON blocked_left_alone never > 0"
	return 0
}

run_sigtrapd() {
	local ex rx
	start sigtrapd || return 0
	run_cycles compute compute_v2
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	ex=$(val int3_executed)
	rx=$(val sigtrap_received)
	LOST=$((ex - rx > 1 ? ex - rx - 1 : 0))	# one int3 may be in flight at the stop
	((ex - rx == 0 || ex - rx == 1)) || violation "int3_executed $ex vs sigtrap_received $rx"
	(($(val sigtrap_other) == 0)) || violation "sigtrap_other $(val sigtrap_other)"
	(($(val sigtrap_kernel) == rx)) || violation "sigtrap_kernel $(val sigtrap_kernel) != sigtrap_received $rx"
	return 0
}

# sigtrapd variants (docs/design.md §4, the program's signal state): workers that block
# SIGTRAP, a process that ignores it, 64 RT signals queued in every worker, and the
# program's own int $3. Nothing lost, and the signal state afterwards as it was before.
run_sigtrap_variant() {	# ARGS...: sigtrapd options
	local before after ex rx
	start sigtrapd "$@" || return 0
	before=$(sig_state "$DAEMON_PID")
	run_cycles compute compute_v2
	after=$(sig_state "$DAEMON_PID")
	[[ $after == "$before" ]] || violation "signal state changed: before: ${before//$'\n'/; } after: ${after//$'\n'/; }"
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	ex=$(val int3_executed)
	rx=$(val sigtrap_received)
	LOST=$((ex - rx > 1 ? ex - rx - 1 : 0))	# one int3 may be in flight at the stop
	LOST=$((LOST + $(val rt_queued) - $(val rt_received)))
	(($(val mask_changed) == 0)) || violation "mask_changed $(val mask_changed)"
	(($(val rt_queued) == $(val rt_received))) ||
		violation "rt_queued $(val rt_queued) != rt_received $(val rt_received)"
	return 0
}
run_sigtrap-block() { run_sigtrap_variant --block-trap; }
run_sigtrap-ignore() { run_sigtrap_variant --ignore-trap; }
run_sigtrap-queued() { run_sigtrap_variant --queued 64; }
run_sigtrap-cd03() { run_sigtrap_variant --int3-form cd03 --interval-us 200; }
run_sigtrap-dfl-block() { run_sigtrap_variant --default-trap --block-trap; }

# Workers that trap right after each call (--trap-after-call) are often stopped in their
# handler, SIGTRAP blocked for its length only: the masks are theirs to check
# (mask_changed), the dispositions ours. Up to one trap per worker may be in flight.
run_sigtrap-after() {
	local before after ex rx
	start sigtrapd --trap-after-call || return 0
	before=$(sig_state "$DAEMON_PID" | grep '^Sig')
	run_cycles compute compute_v2
	after=$(sig_state "$DAEMON_PID" | grep '^Sig')
	[[ $after == "$before" ]] || violation "dispositions changed: before: ${before//$'\n'/; } after: ${after//$'\n'/; }"
	calls_only_ok calls_compute calls_compute_v2
	stop_daemon
	ex=$(val int3_executed)
	rx=$(val sigtrap_received)
	LOST=$((ex - rx > 5 ? ex - rx - 5 : 0))
	((ex >= rx && ex - rx <= 5)) || violation "int3_executed $ex vs sigtrap_received $rx"
	(($(val mask_changed) == 0)) || violation "mask_changed $(val mask_changed)"
	return 0
}

# stated (docs/design.md §5): one daemon with threads in every state test/integration/states.bats
# tests one at a time: hot in park's displaced bytes, blocked at site+5 of edge_nanosleep,
# edge_read and edge_pause, blocked at site+2 of inside_nanosleep and inside_read (one of
# them for the whole run), in sig_park handlers whose saved rip is site+2 (normal stack,
# sigaltstack, nested). Each cycle patches the seven functions in one transaction, forces
# restarts of the blocked calls (the restart signal to the edge callers; every 10th cycle a
# SIGSTOP/SIGCONT), and reverts them in one transaction (STATED_FUNCS: lib.bash).
# stated-stopped: every cycle patches the seven functions while the process is SIGSTOPped
# (hot threads inside park, threads blocked at the end of and inside the ranges, handlers
# with saved contexts inside sig_park), checks it is still stopped, continues it, and
# reverts the same way.
run_stated-stopped() {
	local i f pid pairs=() revs=() step
	start stated --mode all --threads 1 --sleep-ms 20 --feed-ms 20 --kick-ms 20 || return 0
	pid=$DAEMON_PID
	for f in "${STATED_FUNCS[@]}"; do
		pairs+=(-f "$f" -t "${f}_v2")
		revs+=(-r "$f")
	done
	DONE=0
	for ((i = 1; i <= N; i++)); do
		for step in patch revert; do
			kill -STOP "$pid"
			every_thread_in T "$pid" || { violation "cycle $i: not every thread stopped"; break 2; }
			if [[ $step == patch ]]; then run_lp "${pairs[@]}"; else run_lp "${revs[@]}"; fi ||
				{ violation "cycle $i: $step of the stopped process failed"; kill -CONT "$pid"; break 2; }
			every_thread_in T "$pid" || violation "cycle $i: a thread runs after the $step of a stopped process"
			kill -CONT "$pid"
		done
		_lp_alive "$pid" || { violation "cycle $i: the daemon died"; break; }
		DONE=$i
	done
	stop_daemon
	LOST=$(($(val signals_sent) - $(val signals_handled)))
	LOST=$((LOST < 0 ? -LOST : LOST))
	((LOST == 0)) || violation "signals_sent $(val signals_sent) != signals_handled $(val signals_handled)"
	(($(val eintr) == 0)) || violation "eintr $(val eintr)"
	(($(val errors) == 0)) || violation "errors $(val errors)"
	return 0
}

# stated-frozen: every cycle freezes the process with the cgroup freezer (v1 where mounted,
# else v2; LP_STRESS_FREEZER=v2 chooses v2), patches park with --timeout 300, thaws it and reverts. A patch applies (the
# cgroup still frozen after it) or is refused (exit 6 naming the freezer, bytes intact).
run_stated-frozen() {
	local i mnt ver cg file on off applied=0 refused=0 rc
	freezer_find "${LP_STRESS_FREEZER:-}"
	mnt=$FREEZER_MNT ver=$FREEZER_VER file=$FREEZER_FILE on=$FREEZER_ON off=$FREEZER_OFF
	if [[ -z $mnt ]]; then
		echo "stated-frozen: no cgroup freezer is mounted here, this state cannot occur"
		return 0
	fi
	cg=$mnt/lp-stress-$$
	mkdir "$cg" || { violation "cannot make the cgroup $cg"; return 0; }
	start stated --mode park --threads 2 || { rmdir "$cg"; return 0; }
	echo "$DAEMON_PID" >"$cg/cgroup.procs"
	DONE=0
	for ((i = 1; i <= N; i++)); do
		echo "$on" >"$cg/$file"
		LAST_OUT=$(timeout 60 "$LP" -p "$DAEMON_PID" -f park -t park_v2 --timeout 300 --json 2>/dev/null)
		rc=$?
		# v1 reads FREEZING until every task is frozen: a thread livepatch released a moment
		# ago is on its way. Waited for (<= 3 s); THAWED is the violation.
		local st n=0
		while st=$(<"$cg/$file") && [[ $st == FREEZING* ]] && ((n++ < 300)); do nap 10; done
		[[ $st == "$on"* ]] || violation "cycle $i: the cgroup is $st after the patch, not $on"
		echo "$off" >"$cg/$file"
		case $rc in
		0) applied=$((applied + 1)); run_lp -r park || { violation "cycle $i: revert failed"; break; } ;;
		6) refused=$((refused + 1))
		   [[ $LAST_OUT == *frozen* ]] || { violation "cycle $i: exit 6 without 'frozen': $LAST_OUT"; break; } ;;
		*) violation "cycle $i: exit $rc: $LAST_OUT"; break ;;
		esac
		_lp_alive "$DAEMON_PID" || { violation "cycle $i: the daemon died"; break; }
		DONE=$i
	done
	echo "$off" >"$cg/$file"
	echo "  stated-frozen ($ver): $applied applied while frozen, $refused refused naming the freezer"
	stop_daemon
	rmdir "$cg" 2>/dev/null
	return 0
}

# run_lp_retry ARGS...: run_lp, again (up to 4 tries) while livepatch refuses with exit 6 and
# asks for a retry: on stated, a thread stopped with a signal to deliver cannot carry the
# mmap of the first out-of-line copy, and no other thread may be stopped then (docs/design.md
# §5). The refusal rolled back; the daemon's counters judge whether it was clean. Counted
# in RETRIED, printed.
run_lp_retry() {
	local try
	for ((try = 1; try <= 4; try++)); do
		run_lp "$@" && return 0
		((LP_RC == 6)) && [[ $LP_OUT == *'"status":"rolled_back"'* && $LP_OUT == *'(retry'* ]] ||
			return 1
		RETRIED=$((RETRIED + 1))
	done
	return 1
}

run_stated() {
	local i k f sig pid sent=0 pairs=() revs=()
	RETRIED=0
	start stated --mode all --threads 1 --sleep-ms 20 --feed-ms 20 --kick-ms 20 \
		--inside-long 3600000 || return 0
	pid=$DAEMON_PID
	sig=$(val restart_signal)
	for f in "${STATED_FUNCS[@]}"; do
		pairs+=(-f "$f" -t "${f}_v2")
		revs+=(-r "$f")
	done
	DONE=0
	for ((i = 1; i <= N; i++)); do
		if ! run_lp_retry "${pairs[@]}"; then
			violation "cycle $i: patch of ${STATED_FUNCS[*]} failed"
			break
		fi
		for ((k = 0; k < 3; k++)); do
			kill -s "$sig" "$pid" 2>/dev/null && sent=$((sent + 1))
		done
		if ((i % 10 == 0)); then
			kill -STOP "$pid" 2>/dev/null
			sleep 0.02
			kill -CONT "$pid" 2>/dev/null
		fi
		if ! run_lp_retry "${revs[@]}"; then
			violation "cycle $i: revert of ${STATED_FUNCS[*]} failed"
			break
		fi
		if ! _lp_alive "$pid"; then
			violation "cycle $i: the daemon died"
			break
		fi
		DONE=$i
	done
	((RETRIED == 0)) || echo "  stated: $RETRIED transaction(s) refused with exit 6 (rolled back, \"retry\") and retried"
	for f in "${STATED_FUNCS[@]}"; do
		calls_only_ok "calls_$f" "calls_${f}_v2"
	done
	status_wait_ge restart_external "$sent" "$DAEMON_STATUS" 3000 2>/dev/null
	(($(val inside_long_calls) == 0)) ||
		violation "inside_long_calls $(val inside_long_calls): the long reader was woken before the stop"
	stop_daemon
	LOST=$(($(val signals_sent) - $(val signals_handled)))
	LOST=$((LOST < 0 ? -LOST : LOST))
	((LOST == 0)) || violation "signals_sent $(val signals_sent) != signals_handled $(val signals_handled)"
	(($(val restart_external) == sent)) ||
		violation "restart_external $(val restart_external) != $sent restart signals sent"
	EINTR=$(val eintr)
	((EINTR == 0)) || violation "eintr $EINTR (an EINTR no handler explains)"
	(($(val errors) == 0)) || violation "errors $(val errors)"
	return 0
}

t_all=$(date +%s%N)
for name in "${DAEMONS[@]}"; do
	if ! declare -F "run_$name" >/dev/null; then
		echo "stress: unknown daemon '$name'" >&2
		exit 2
	fi
	problems=()
	TX=()
	LOST=0 EINTR=0 DONE=0
	t0=$(date +%s%N)
	"run_$name"
	# Always: every result checked by the daemon matched compute or compute_v2.
	[[ -n ${DAEMON_STATUS:-} && -r $DAEMON_STATUS ]] && w=$(val wrong) || w='?'
	[[ $w == 0 ]] || violation "wrong $w (results of neither compute nor compute_v2)"
	secs=$((($(date +%s%N) - t0) / 1000000))
	printf '%s: %d cycles, %d.%d s, traps %d emulated / %d late / %d parked, stepouts %d, signals passed %d, lost %d, EINTR %d, wrong %s\n' \
		"$name" "$DONE" $((secs / 1000)) $((secs % 1000 / 100)) "${TX[traps_emulated]:-0}" \
		"${TX[traps_late]:-0}" "${TX[traps_parked]:-0}" "${TX[stepouts]:-0}" \
		"${TX[signals_passed]:-0}" "$LOST" "$EINTR" "$w"
	if ((${#problems[@]})); then
		bad=1
		printf '  VIOLATION: %s\n' "${problems[@]}"
	fi
	DAEMON_STATUS=
done
secs=$((($(date +%s%N) - t_all) / 1000000))
echo "total: ${#DAEMONS[@]} daemons x $N cycles in $((secs / 1000)).$((secs % 1000 / 100)) s"
if ((bad)); then
	echo "stress: FAILED" >&2
	exit 1
fi
exit 0
