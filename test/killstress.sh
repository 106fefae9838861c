#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called indirectly (setup_$name, trap handlers)
# Kill stress: LP_KILL_COUNT SIGKILLs of livepatch (default 1000, shared evenly by the
# daemons) at random points of transactions on the stress daemons, and what each did to
# the target (docs/design.md §7). One line per daemon:
#   NAME: K kills (L landed mid-run), died D (by signal: ...), wrong W, torn T,
#   int3-left I, guard-left G, stuck S, livepatch hung H
# then where the kills landed and where the targets died, by protocol step. Exit status 1
# when a target died, computed a wrong result, stopped making progress, or kept a torn
# site or an int3, or livepatch hung (a step line it never wrote, 60 s on: killed).
#
# One kill: test/daemons/killer runs `livepatch -v` (a patch, or a revert of a patch just
# applied, every other kill; one in five with --verify=0.2 where the kernel has BTF and
# the daemon has no `int $3` (NOVERIFY), one in ten with --safe) and SIGKILLs it DELAY µs
# after its K-th step line (K random in 0..the lines of a whole run, 0: before the first;
# DELAY random in 0..the time such a run took from its line K to its end, measured at the daemon's start; in --verify's window for a
# third of the verify kills). A kill "landed mid-run" when livepatch had not exited yet. Then, polling, never sleeping blind: the
# target is untraced (TracerPid 0); whatever outlives livepatch to repair it gets up to
# 2 s to leave every site as its old or its new bytes and to exit (a livepatch guard: a
# process running the livepatch binary, or named livepatch with the target's pid in its
# command line); then the checks: the daemon lives (else the signal that killed it), its
# wrong-result counters did not move, its calls keep growing, and the bytes at every site
# (read from /proc/PID/mem; the plan's old_bytes and new_bytes from --dry-run --json) are
# exactly the old or the new instruction: a 0xcc at a site's head is int3-left, anything
# else torn. Finally the daemon goes back to its unpatched state (--revert-all, or a new
# daemon when it died or the revert failed).
#
# Environment: LP_KILL_COUNT (kills in all), LP_KILL_DAEMONS (a subset, e.g. "counterd
# manyd"), LP_BIN (the livepatch to test, default ./livepatch), LP_KILL_KEEP=1 (keep the
# files: the -v log of every kill that killed a target is kept anyway). Needs root, `make`,
# `make daemons patches`.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
N=${LP_KILL_COUNT:-1000}
LP=${LP_BIN:-$ROOT/livepatch}
read -ra DAEMONS <<<"${LP_KILL_DAEMONS:-counterd counterd-slow manyd stated stated-stopped stated-frozen sigstormd forkd sigtrap-block sigtrap-ignore sigtrap-queued sigtrap-cd03 load}"
if ! [[ $N =~ ^[0-9]+$ ]] || ((N < 1)); then
	echo "killstress: LP_KILL_COUNT must be a positive number, not '$N'" >&2
	exit 2
fi
if [[ ! -x $LP ]]; then
	echo "killstress: no $LP (run: make && make daemons)" >&2
	exit 2
fi
# shellcheck source=test/lib.bash
source "$ROOT/test/lib.bash"
KILLER=$LP_BUILD/daemons/killer
LOAD_PATCH=$LP_BUILD/patches/stress/stress.o
for f in "$KILLER" "$LOAD_PATCH"; do
	[[ -e $f ]] || { echo "killstress: no $f (run: make daemons patches)" >&2; exit 2; }
done
LP_REAL=$(realpath "$LP")
# shellcheck disable=SC2034 # LP_TMP: lib.bash (daemon_start, patch_copy) use it
LP_TMP=$(mktemp -d /tmp/lp-killstress.XXXXXX)
VERIFY=
kernel_has_btf && VERIFY=1
CGROUP=
bad=0

cleanup() {
	[[ -z $CGROUP ]] || { echo "$FREEZER_OFF" >"$CGROUP/$FREEZER_FILE"; } 2>/dev/null
	lp_teardown >/dev/null 2>&1
	[[ -z $CGROUP ]] || rmdir "$CGROUP" 2>/dev/null
	if ((bad)) || [[ ${LP_KILL_KEEP:-} == 1 ]]; then
		echo "killstress: files kept in $LP_TMP" >&2
	else
		rm -rf "$LP_TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the daemons -------------------------------------------------------------------------
# setup_NAME sets what a kill needs: START (daemon_start's arguments), PAIRS (the patch's
# options), REVERT (the revert's), PROGRESS (keys whose sum grows while the daemon works),
# BADKEYS (keys that never grow: wrong results), and optionally MODE (stopped, frozen:
# the process's state during the run), LOAD (1: every patch loads a new copy of
# test/patches/stress.c) and SIGSTATE (1: the program's SIGTRAP state, lib.bash's
# sig_state, must be as before the kill, else the kill counts as wrong).

pairs_of() {	# F...: PAIRS and REVERT for F -> F_v2 each
	local f
	PAIRS=() REVERT=()
	for f; do
		PAIRS+=(-f "$f" -t "${f}_v2")
		REVERT+=(-r "$f")
	done
}
setup_counterd() {
	START=(counterd --threads 4) PROGRESS="calls_compute calls_compute_v2" BADKEYS="wrong"
	pairs_of compute
}
setup_counterd-slow() {	# the workers sit inside compute_slow's site
	START=(counterd --threads 4 --mode slow) BADKEYS="wrong"
	PROGRESS="calls_compute_slow calls_compute_slow_v2"
	pairs_of compute_slow
}
setup_manyd() {	# a batch: eight functions in one transaction
	local i
	START=(manyd --threads 4) PROGRESS="calls_f calls_g" BADKEYS="wrong" PAIRS=() REVERT=()
	for ((i = 0; i < 8; i++)); do
		PAIRS+=(-f "$(printf f%04d "$i")" -t "$(printf g%04d "$i")")
		REVERT+=(-r "$(printf f%04d "$i")")
	done
}
setup_stated() {	# the thread states of docs/design.md §5, as test/stress.sh starts them
	START=(stated --mode all --threads 1 --sleep-ms 20 --feed-ms 20 --kick-ms 20 --inside-long 3600000)
	PROGRESS="calls_park calls_park_v2" BADKEYS="wrong errors"
	pairs_of "${STATED_FUNCS[@]}"
}
setup_stated-stopped() {
	setup_stated
	START=(stated --mode all --threads 1 --sleep-ms 20 --feed-ms 20 --kick-ms 20) MODE=stopped
}
setup_stated-frozen() {
	START=(stated --mode park --threads 2) PROGRESS="calls_park calls_park_v2" BADKEYS="wrong errors"
	pairs_of park
	PAIRS+=(--timeout 300) MODE=frozen
}
setup_sigstormd() {
	START=(sigstormd) PROGRESS="calls_compute calls_compute_v2" BADKEYS="wrong ext_out_of_range"
	pairs_of compute
}
setup_forkd() {
	START=(forkd) PROGRESS="forks" BADKEYS="wrong children_bad fork_errors"
	pairs_of compute
}
setup_sigtrap() {	# ARGS: sigtrapd's, as test/stress.sh's variants
	START=(sigtrapd "$@") PROGRESS="calls_compute calls_compute_v2"
	BADKEYS="wrong sigtrap_other mask_changed" SIGSTATE=1
	pairs_of compute
}
setup_sigtrap-block() { setup_sigtrap --block-trap; }
setup_sigtrap-ignore() { setup_sigtrap --ignore-trap; }
setup_sigtrap-queued() { setup_sigtrap --queued 64; }
# No --verify: livepatch refuses it for a program with an `int $3` (once its memory has
# uprobes, the kernel restarts the thread on the 03: SIGSEGV; docs/design.md §6), so
# those runs would be refusals, not kills inside a transaction.
setup_sigtrap-cd03() { setup_sigtrap --int3-form cd03 --interval-us 200; NOVERIFY=1; }
setup_load() {	# --load: the patch is a new copy of test/patches/stress.c each time
	setup_counterd
	PAIRS=(-f compute -t compute_loaded) LOAD=1
}

# --- the target: start, sites, state -----------------------------------------------------

# sum_keys KEYS: the sum of the daemon's KEYS (a missing key counts 0).
sum_keys() {
	local k s=0
	for k in $1; do
		key "$k"
		s=$((s + ${KV:-0}))
	done
	echo "$s"
}

# target_start: a new daemon (START), frozen in CGROUP for MODE frozen; reads the plan's
# sites (SITE_ADDR, SITE_LEN, SITE_OLD, SITE_NEW) from a dry run; measures one whole run
# (RUN_US, RUN_LINES) with a patch and its revert.
target_start() {
	local plan t0 t1 out
	daemon_start "${START[@]}" || return 1
	[[ -z $CGROUP ]] || echo "$DAEMON_PID" >"$CGROUP/cgroup.procs"
	plan=$("$LP" -p "$DAEMON_PID" "${PAIRS[@]/compute_loaded/compute_v2}" --dry-run --json) || {
		echo "killstress: dry run failed on ${START[0]}: $plan" >&2
		return 1
	}
	SITE_ADDR=() SITE_LEN=() SITE_OLD=() SITE_NEW=()
	while IFS=, read -r a l o n; do
		SITE_ADDR+=("$a") SITE_LEN+=("$l") SITE_OLD+=("$o") SITE_NEW+=("$n")
	done < <(json_get '"\n".join(",".join((s["address"], str(s["length"]), s["old_bytes"], s["new_bytes"])) for s in d["sites"])' <<<"$plan")
	t0=$(date +%s%N)
	# shellcheck disable=SC2046 # patch_args: options, split on purpose
	out=$(run_mode "$LP" -p "$DAEMON_PID" $(patch_args 0) -v 2>&1 >/dev/null) ||
		[[ $MODE == frozen ]] || {	# frozen: a refusal (exit 6) is a whole run too
		echo "killstress: a whole patch failed on ${START[0]}: $out" >&2
		return 1
	}
	t1=$(date +%s%N)
	RUN_US=$(((t1 - t0) / 1000))
	# REMAIN[K]: µs from line K to the end of the run (its last line, + 2 ms for the detach)
	local ts=() line re='^livepatch: \[ *([0-9]+)\.([0-9]{6})\]'
	while read -r line; do
		[[ $line =~ $re ]] && ts+=($((BASH_REMATCH[1] * 1000000 + 10#${BASH_REMATCH[2]})))
	done <<<"$out"
	RUN_LINES=${#ts[@]} REMAIN=("$RUN_US")
	for line in "${ts[@]}"; do
		REMAIN+=($((ts[-1] - line + 2000)))
	done
	"$LP" -p "$DAEMON_PID" "${REVERT[@]}" -q >/dev/null 2>&1
}

# patch_args I: the options of a patch (with LOAD, a new copy of the loaded patch, I its tag).
patch_args() {
	if [[ -n ${LOAD:-} ]]; then
		echo --load "$(patch_copy "$LOAD_PATCH" "$1")" "${PAIRS[@]}"
	else
		echo "${PAIRS[@]}"
	fi
}

# run_mode CMD...: CMD with the daemon in its MODE: stopped (SIGSTOP before, SIGCONT after)
# or frozen (the cgroup freezer on before, off after).
run_mode() {
	local rc=0
	case ${MODE:-} in
	stopped) kill -STOP "$DAEMON_PID"; every_thread_in T "$DAEMON_PID" ;;
	frozen) echo "$FREEZER_ON" >"$CGROUP/$FREEZER_FILE" ;;
	esac
	"$@" || rc=$?
	mode_off
	return $rc
}
mode_off() {
	case ${MODE:-} in
	stopped) kill -CONT "$DAEMON_PID" 2>/dev/null ;;
	frozen) echo "$FREEZER_OFF" >"$CGROUP/$FREEZER_FILE" ;;
	esac
}

# site_state I: old, new, int3 or torn: the bytes now at site I (gone: the process is).
site_state() {
	local b
	b=$(mem_bytes "$DAEMON_PID" "${SITE_ADDR[$1]}" "${SITE_LEN[$1]}") || { echo gone; return; }
	if [[ $b == "${SITE_OLD[$1]}" ]]; then echo old
	elif [[ $b == "${SITE_NEW[$1]}" ]]; then echo new
	elif [[ -n ${LOAD:-} && $b == e9* ]] && loaded_jump "${SITE_ADDR[$1]}" "$b"; then echo new
	elif [[ $b == cc* ]]; then echo int3
	else echo torn
	fi
}

# loaded_jump ADDR BYTES: BYTES at ADDR are a jmp rel32 into a region --load mapped.
loaded_jump() {
	local -a x
	read -ra x <<<"$2"
	local rel=$((16#${x[4]}${x[3]}${x[2]}${x[1]}))
	((rel >= 1 << 31)) && rel=$((rel - (1 << 32)))
	local to=$(($1 + 5 + rel)) range lo hi rest
	while read -r range _ _ _ _ rest; do
		[[ $rest == */memfd:livepatch:* ]] || continue
		lo=$((16#${range%-*})) hi=$((16#${range#*-}))
		((to >= lo && to < hi)) && return 0
	done <"/proc/$DAEMON_PID/maps"
	return 1
}

# sites: STATES = every site's state; 0 when every one is old or new.
sites() {
	local i s rc=0
	STATES=()
	for ((i = 0; i < ${#SITE_ADDR[@]}; i++)); do
		s=$(site_state "$i")
		STATES+=("$s")
		[[ $s == old || $s == new ]] || rc=1
	done
	return $rc
}

# guards: the pids of what outlives a killed livepatch to repair its target: processes that
# run the livepatch binary, or are named livepatch with the target's pid in their command line.
guards() {
	local d comm args
	for d in /proc/[0-9]*; do
		if [[ $d/exe -ef $LP_REAL ]]; then
			echo "${d#/proc/}"
			continue
		fi
		{ read -r comm <"$d/comm" && mapfile -d '' args <"$d/cmdline"; } 2>/dev/null || continue
		[[ $comm == livepatch* || ${args[*]} == *livepatch* ]] || continue
		[[ " ${args[*]} " == *" $DAEMON_PID "* ]] && echo "${d#/proc/}"
	done
}

# untraced_wait: poll (<= 5 s) until nobody traces the daemon (or it is gone).
untraced_wait() {
	local n=0 t
	while t=$(proc_field "$DAEMON_PID" TracerPid) && [[ -n $t && $t != 0 ]]; do
		((++n < 1000)) || return 1
		nap 5
	done
}

# settle_wait: poll (<= 2 s) while a site is neither old nor new or a guard is left.
settle_wait() {
	local n=0
	while _lp_alive "$DAEMON_PID" && ! sites || [[ -n $(guards) ]]; do
		((++n < 200)) || return 1
		nap 10
	done
}

# kernel_said: where the kernel saw the dead daemon fault ("trap int3 at site+1"): the last
# "traps:" line of the kernel log with an address at one of its sites (they name the
# thread, not the process; rate-limited, root only: else "kernel: -").
kernel_said() {
	local line ip i re='trap (.*) ip:([0-9a-f]+)'
	while read -r line; do
		[[ $line =~ $re ]] || continue
		ip=$((16#${BASH_REMATCH[2]}))
		for ((i = 0; i < ${#SITE_ADDR[@]}; i++)); do
			if ((ip >= SITE_ADDR[i] && ip < SITE_ADDR[i] + 16)); then
				echo "kernel: trap ${BASH_REMATCH[1]} at site+$((ip - SITE_ADDR[i]))"
				return
			fi
		done
	done < <(dmesg 2>/dev/null | grep -F 'traps: ' | tail -n 20 | tac)
	echo "kernel: -"
}

# --- one kill ----------------------------------------------------------------------------

declare -A LANDED=() DIED=() SIGS=() ALL_LANDED=() ALL_DIED=()
# kill_one I: one kill (a patch when I is odd, else a revert of a patch just applied) and
# its checks; adds to the daemon's counts. Returns 1 when the daemon must be restarted.
kill_one() {
	local i=$1 args=() opts=() k delay out step lines mid st hung r bad0 sig0 p0 s dead=
	STATES=()
	bad0=$(sum_keys "$BADKEYS")
	[[ -z $SIGSTATE ]] || sig0=$(sig_state "$DAEMON_PID")
	if ((i % 2)); then
		read -ra args <<<"$(patch_args "$i")"
	else
		# outside MODE, as every set-up run: a frozen process may refuse it (exit 6)
		# shellcheck disable=SC2046 # patch_args: options, split on purpose
		"$LP" -p "$DAEMON_PID" $(patch_args "$i") -q >/dev/null 2>&1 ||
			{ echo "  kill $i: the patch before the revert failed" >>"$LP_TMP/notes"; return 1; }
		args=("${REVERT[@]}")
	fi
	r=$((RANDOM % 10))
	k=$((RANDOM % (RUN_LINES + 1)))
	delay=$(((RANDOM << 15 | RANDOM) % (REMAIN[k] + 1)))
	if ((r < 2)) && [[ -n $VERIFY && -z $NOVERIFY ]]; then
		opts=(--verify=0.2)
		# a third of the verify kills in its window, after the last line
		((RANDOM % 3)) || k=$RUN_LINES delay=$(((RANDOM << 15 | RANDOM) % 200000))
	elif ((r == 2)); then
		opts=(--safe)
	fi
	out=$(run_mode "$KILLER" "$k" "$delay" "$LP" -p "$DAEMON_PID" "${args[@]}" "${opts[@]}" -v \
		3>"$LP_TMP/kill.log")
	read -r _ step _ lines _ mid _ st _ hung <<<"$out"
	if [[ $hung == 1 ]]; then
		HUNG=$((HUNG + 1))
		echo "  kill $i: livepatch hung at $step: its line $k did not come in 60 s ($lines lines; ${args[*]} ${opts[*]})" >>"$LP_TMP/notes"
	fi
	[[ $step == sync3 && ${opts[0]:-} == --verify* && $mid == 1 ]] && step=verify
	KILLS=$((KILLS + 1))
	if [[ $mid == 1 ]]; then
		MID=$((MID + 1))
		LANDED[$step]=$((${LANDED[$step]:-0} + 1))
		ALL_LANDED[$step]=$((${ALL_LANDED[$step]:-0} + 1))
	fi
	untraced_wait || echo "  kill $i: still traced 5 s after the kill" >>"$LP_TMP/notes"
	settle_wait || { [[ -n $(guards) ]] && GUARD=$((GUARD + 1)); }
	mode_off
	if _lp_alive "$DAEMON_PID"; then
		sites
		p0=$(sum_keys "$PROGRESS")
		local n=0
		while (($(sum_keys "$PROGRESS") <= p0)) && ((n++ < 200)); do nap 10; done
		((n > 200)) && _lp_alive "$DAEMON_PID" && STUCK=$((STUCK + 1)) && dead=stuck
	fi
	if ! _lp_alive "$DAEMON_PID"; then
		s=0
		wait "$DAEMON_PID" 2>/dev/null || s=$?
		if ((s > 128)); then s=SIG$(kill -l $((s - 128))); else s="exit $s"; fi
		DIED_N=$((DIED_N + 1))
		SIGS[$s]=$((${SIGS[$s]:-0} + 1))
		DIED[$step]=$((${DIED[$step]:-0} + 1))
		ALL_DIED[$step]=$((${ALL_DIED[$step]:-0} + 1))
		DAEMON_PIDS=()
		dead=died
		cp "$LP_TMP/kill.log" "$LP_TMP/$NAME-died-$i.log"
		echo "  kill $i: died of $s at $step (line $k + $delay µs, $lines lines seen, ${args[*]} ${opts[*]}; $(kernel_said))" >>"$LP_TMP/notes"
	fi
	for s in "${STATES[@]}"; do
		case $s in
		int3) INT3=$((INT3 + 1)) ;;
		torn) TORN=$((TORN + 1)) ;;
		esac
	done
	[[ " ${STATES[*]} " == *" int3 "* || " ${STATES[*]} " == *" torn "* ]] &&
		echo "  kill $i: sites ${STATES[*]} after a kill at $step (k $k, delay $delay µs)" >>"$LP_TMP/notes"
	if [[ -z $dead ]]; then
		if (($(sum_keys "$BADKEYS") != bad0)); then
			WRONG=$((WRONG + 1))
			echo "  kill $i: $BADKEYS moved at $step" >>"$LP_TMP/notes"
		elif [[ -n $SIGSTATE && $(sig_state "$DAEMON_PID") != "$sig0" ]]; then
			WRONG=$((WRONG + 1))
			echo "  kill $i: the SIGTRAP state changed at $step: $(sig_state "$DAEMON_PID" | head -n2 | tr '\n' ' ')" >>"$LP_TMP/notes"
			dead=sigstate	# a new daemon: the next kill starts from the program's own state
		fi
	fi
	[[ -z $dead && " ${STATES[*]} " != *" int3 "* && " ${STATES[*]} " != *" torn "* ]] || return 1
	# back to the unpatched state for the next kill
	[[ " ${STATES[*]} " == *" new "* ]] || return 0
	"$LP" -p "$DAEMON_PID" --revert-all -q >/dev/null 2>&1 && sites &&
		[[ " ${STATES[*]} " != *" new "* ]]
}

# run_daemon NAME COUNT: COUNT kills on NAME's daemon.
run_daemon() {
	local name=$1 count=$2 i h
	NAME=$name START=() PAIRS=() REVERT=() MODE='' LOAD='' SIGSTATE='' STATES=() NOVERIFY=''
	KILLS=0 MID=0 DIED_N=0 WRONG=0 TORN=0 INT3=0 GUARD=0 STUCK=0 HUNG=0
	LANDED=() DIED=() SIGS=()
	: >"$LP_TMP/notes"
	"setup_$name"
	if [[ $MODE == frozen ]]; then
		freezer_find ''
		[[ -n $FREEZER_MNT ]] || { echo "$name: no cgroup freezer is mounted here, skipped"; return 0; }
		CGROUP=$FREEZER_MNT/lp-killstress-$$
		mkdir -p "$CGROUP" || { echo "$name: cannot make $CGROUP"; bad=1; return 0; }
	fi
	target_start || { bad=1; cgroup_done; return 0; }
	for ((i = 1; i <= count; i++)); do
		if ! kill_one "$i"; then
			lp_teardown >/dev/null 2>&1
			target_start || { echo "  could not restart the daemon after kill $i" >>"$LP_TMP/notes"; bad=1; break; }
		fi
	done
	lp_teardown >/dev/null 2>&1
	cgroup_done
	local sig=
	for h in "${!SIGS[@]}"; do sig+="${sig:+, }$h ${SIGS[$h]}"; done
	printf '%s: %d kills (%d landed mid-run), died %d (by signal: %s), wrong %d, torn %d, int3-left %d, guard-left %d, stuck %d, livepatch hung %d\n' \
		"$name" "$KILLS" "$MID" "$DIED_N" "${sig:-none}" "$WRONG" "$TORN" "$INT3" "$GUARD" "$STUCK" "$HUNG"
	echo "  landed/died by step: $(histogram LANDED DIED)"
	cat "$LP_TMP/notes"
	((DIED_N + WRONG + TORN + INT3 + STUCK + HUNG == 0)) || bad=1
}
cgroup_done() {
	[[ -n $CGROUP ]] || return 0
	echo "$FREEZER_OFF" >"$CGROUP/$FREEZER_FILE" 2>/dev/null
	rmdir "$CGROUP" 2>/dev/null
	CGROUP=
}

STEPS=(exec seized shield sync0 sync1 sync2 sync3 verify check rollback load)
# histogram LANDED DIED: "STEP landed/died" for each step where a kill landed.
histogram() {
	local -n l=$1 d=$2
	local s out=
	for s in "${STEPS[@]}"; do
		((${l[$s]:-0})) && out+="$s ${l[$s]}/${d[$s]:-0}  "
	done
	echo "${out:-none}"
}

t_all=$(date +%s%N)
for name in "${DAEMONS[@]}"; do
	declare -F "setup_$name" >/dev/null || { echo "killstress: unknown daemon '$name'" >&2; exit 2; }
done
per=$((N / ${#DAEMONS[@]})) extra=$((N % ${#DAEMONS[@]})) total_k=0 total_mid=0 total_died=0
for name in "${DAEMONS[@]}"; do
	count=$((per + extra))
	extra=0
	((count > 0)) || continue
	run_daemon "$name" "$count"
	total_k=$((total_k + KILLS)) total_mid=$((total_mid + MID)) total_died=$((total_died + DIED_N))
done
secs=$((($(date +%s%N) - t_all) / 1000000))
echo "total: $total_k kills ($total_mid landed mid-run), $total_died died, in $((secs / 1000)).$((secs % 1000 / 100)) s"
echo "  landed/died by step: $(histogram ALL_LANDED ALL_DIED)"
if ((bad)); then
	echo "killstress: FAILED" >&2
	exit 1
fi
exit 0
