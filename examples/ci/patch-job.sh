#!/usr/bin/env bash
# patch-job.sh: a CI job that live-patches a running service and proves it, then undoes it.
#
#   examples/ci/patch-job.sh [DAEMON [DAEMON_ARGS...]]
#
# Steps, each one fatal:
#   1. start DAEMON (default: build/daemons/counterd --threads 4) with --status FILE and
#      --ready FILE, and wait until it has written its pid to the ready file;
#   2. patch:  livepatch --pid PID --func $LP_FUNC --target $LP_TARGET --verify=$LP_VERIFY --json
#      and require exit 0, status "applied" and verify.verdict "pass";
#   3. revert: livepatch --pid PID --revert $LP_FUNC --verify=$LP_VERIFY --json
#      and require exit 0, status "reverted" and verify.verdict "pass";
#   4. stop the daemon with SIGTERM and require that it exits 0.
# The daemon must still be alive after each livepatch step, and, when its status file has
# a "wrong" counter (the sample daemons count results that match neither function), it
# must be 0.
#
# Environment (all optional):
#   LIVEPATCH     the livepatch binary (default: ./livepatch of this tree, else from PATH)
#   LP_DAEMON     the daemon, when not given as the first argument
#   LP_FUNC       the function to redirect (default compute)
#   LP_TARGET     where it goes (default compute_v2)
#   LP_VERIFY     the --verify window in seconds (default 0.5)
#   LP_STEP_TIMEOUT  seconds one livepatch run may take before the job gives up (default 120)
#
# Exit status: 0 when every step passed. When a livepatch run fails, its own exit status
# (2 usage, 3 process, 4 symbol, 5 site refused, 6 rolled back, 7 applied but not proven,
# 1 internal; 124 when it timed out); 1 for any other failed step. Every failure prints
# "patch-job: FAILED at step STEP: WHY" on stderr, with livepatch's error message.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if [[ -n ${LIVEPATCH:-} ]]; then
	lp=$LIVEPATCH
elif [[ -x $root/livepatch ]]; then
	lp=$root/livepatch
else
	lp=livepatch
fi
func=${LP_FUNC:-compute}
target=${LP_TARGET:-compute_v2}
window=${LP_VERIFY:-0.5}
step_timeout=${LP_STEP_TIMEOUT:-120}

if (($# > 0)); then
	daemon=$1
	shift
	daemon_args=("$@")
else
	daemon=${LP_DAEMON:-$root/build/daemons/counterd}
	daemon_args=(--threads 4)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/patch-job.XXXXXX")
daemon_pid=

log() { echo "patch-job: $*"; }

fail() {	# fail STEP EXIT_STATUS WHY...
	local step=$1 rc=$2
	shift 2
	echo "patch-job: FAILED at step $step: $*" >&2
	if [[ -s $work/daemon.log ]]; then
		echo "patch-job: the daemon's output:" >&2
		sed 's/^/    /' "$work/daemon.log" >&2
	fi
	exit "$rc"
}

alive() {
	local state
	state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

cleanup() {
	if [[ -n $daemon_pid ]] && alive "$daemon_pid"; then
		kill -TERM "$daemon_pid" 2>/dev/null
		for _ in $(seq 500); do
			alive "$daemon_pid" || break
			sleep 0.01
		done
		kill -KILL "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# json_field FILE EXPR: print EXPR (a Python expression over the object d) or nothing.
json_field() {
	python3 - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"d": d})
except Exception:
    sys.exit(1)
print("" if v is None else v)
EOF
}

# run_step STEP WANT_STATUS ARGS...: run livepatch --json ARGS, require exit 0, the status
# WANT_STATUS and a verify verdict of "pass"; print what the kernel saw.
run_step() {
	local step=$1 want=$2 rc=0 out=$work/$1.json err=$work/$1.err msg status verdict
	shift 2
	log "$step: livepatch $*"
	timeout "$step_timeout" "$lp" "$@" --json >"$out" 2>"$err" || rc=$?
	if ((rc != 0)); then
		msg=$(json_field "$out" 'd["error"]["message"]')
		if ((rc == 124)); then
			msg="livepatch did not finish in $step_timeout s"
		elif [[ -z $msg ]]; then	# no JSON: show what it printed
			msg="no error in its JSON output; stdout: $(head -c 2000 "$out") stderr: $(head -c 2000 "$err")"
		fi
		case $rc in
		6) msg="$msg (rolled back: the process is unchanged)" ;;
		7) msg="$msg (the change is in place but was not proven; verdict $(json_field "$out" 'd["verify"]["verdict"]'))" ;;
		esac
		fail "$step" "$rc" "livepatch exited $rc: $msg"
	fi
	status=$(json_field "$out" 'd["status"]')
	verdict=$(json_field "$out" 'd["verify"]["verdict"]')
	[[ $status == "$want" ]] ||
		fail "$step" 1 "livepatch exited 0 but its status is '${status:-?}', expected '$want': $(head -c 2000 "$out")"
	[[ $verdict == pass ]] ||
		fail "$step" 1 "livepatch exited 0 but the verify verdict is '${verdict:-none}', expected 'pass'"
	log "$step: $status, verify pass: $(json_field "$out" 'd["verify"]["reason"]')"
	log "$step: $(json_field "$out" '"%d threads, max pause %.1f us, %.3f ms" % (d["transaction"]["threads"], d["transaction"]["pause_max_us"], d["transaction"]["total_ms"])')"
	alive "$daemon_pid" || fail "$step" 1 "the daemon (pid $daemon_pid) died after livepatch $step"
}

# --- 1. start the service -----------------------------------------------------------
command -v python3 >/dev/null || fail setup 1 "python3 is needed to read livepatch's JSON"
command -v "$lp" >/dev/null || fail setup 1 "no livepatch binary at '$lp' (build it with make, or set LIVEPATCH)"
[[ -x $daemon ]] || fail start 1 "no daemon at '$daemon' (build the samples with make daemons, or pass a path)"
log "start: $daemon ${daemon_args[*]}"
"$daemon" "${daemon_args[@]}" --status "$work/status" --ready "$work/ready" \
	</dev/null >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for ((i = 0; ; i++)); do
	[[ -s $work/ready ]] && break
	alive "$daemon_pid" || fail start 1 "the daemon exited before it was ready"
	((i < 1000)) || fail start 1 "the daemon was not ready after 10 s"
	sleep 0.01
done
log "start: pid $daemon_pid is ready"

# --- 2. patch, proven with BPF ---------------------------------------------------------
run_step patch applied --pid "$daemon_pid" --func "$func" --target "$target" --verify="$window"

# --- 3. revert, proven the same way ----------------------------------------------------
run_step revert reverted --pid "$daemon_pid" --revert "$func" --verify="$window"

# --- 4. stop the service -------------------------------------------------------------
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
((rc == 0)) || fail stop 1 "the daemon exited with status $rc after SIGTERM"
if [[ -s $work/status ]] && grep -q '^wrong ' "$work/status"; then
	wrong=$(awk '$1 == "wrong" {print $2}' "$work/status")
	[[ $wrong == 0 ]] || fail stop 1 "the daemon counted $wrong wrong result(s)"
	log "stop: exit 0, 0 wrong results"
else
	log "stop: exit 0"
fi
log "passed"
