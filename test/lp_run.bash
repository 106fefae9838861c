# Helpers for the bats files that run real transactions (transact.bats, faults.bats): run
# livepatch with --json and check what it said. Load after ../helpers:
#   load ../lp_run
# Needs LP (the livepatch binary) and BG_PIDS (background pids teardown kills).

# lp_setup_file: the livepatch binary and the test daemons are built (else say what to run).
lp_setup_file() {
	[[ -x $LP ]] || {
		echo "no $LP: run make first" >&2
		return 1
	}
	[[ -x $LP_BUILD/daemons/counterd ]] || {
		echo "no daemons in $LP_BUILD/daemons: run make daemons first" >&2
		return 1
	}
}

fail() {
	printf '%s\n' "$*" >&2
	return 1
}

# lp_teardown: kill the background jobs, wake a SIGSTOPped daemon so it sees its SIGTERM,
# stop the daemons.
lp_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	for p in "${DAEMON_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
	done
	if ((${#DAEMON_PIDS[@]})); then
		daemon_stop || true
	fi
}

# lp ARGS...: run livepatch ARGS --json under timeout 60; sets LP_OUT (stdout, one JSON
# object), LP_ERR (stderr), LP_RC (exit status; 124 means it hung) and LP_CMD.
lp() {
	LP_RC=0
	LP_OUT=$(timeout 60 "$LP" "$@" --json 2>"$BATS_TEST_TMPDIR/lp.err") || LP_RC=$?
	LP_ERR=$(<"$BATS_TEST_TMPDIR/lp.err")
	LP_CMD="livepatch $* --json"
}

# expect_rc CODE: the last lp exited with CODE (else show everything it said).
expect_rc() {
	((LP_RC == $1)) && return 0
	fail "$LP_CMD: exit $LP_RC, expected $1$( ((LP_RC == 124)) && echo ' (HANG: killed by timeout 60)')" \
		"stdout: $LP_OUT" "stderr: $LP_ERR"
}

# json KEY [JSON]: the first "KEY": value (string unquoted) of JSON (default: LP_OUT).
json() {
	local re="\"$1\":(\"[^\"]*\"|[^,}]*)" v
	[[ ${2-$LP_OUT} =~ $re ]] || {
		echo "json: no '$1' in: ${2-$LP_OUT}" >&2
		return 1
	}
	v=${BASH_REMATCH[1]}
	v=${v#\"}
	echo "${v%\"}"
}

# expect_status STATUS: the last lp's JSON status.
expect_status() {
	local s
	s=$(json status) || return 1
	[[ $s == "$1" ]] || fail "$LP_CMD: status '$s', expected '$1'" "stdout: $LP_OUT"
}

# calls_only NEWKEY OLDKEY...: NEWKEY grows and every OLDKEY stays put over 300 ms, read
# from fresh status files (the daemon rewrites it every 20 ms). The first read waits for a
# rewrite, so calls made before livepatch returned are not counted.
calls_only() {
	local new=$1 k
	local -A a=() b=()
	shift
	sleep 0.05
	status_wait_change uptime_ms || return 1
	for k in "$new" "$@"; do a[$k]=$(status_get "$k") || return 1; done
	sleep 0.3
	for k in "$new" "$@"; do b[$k]=$(status_get "$k") || return 1; done
	((b[$new] > a[$new])) || fail "$new did not grow in 300 ms (${a[$new]} -> ${b[$new]}): the new function gets no calls"
	for k in "$@"; do
		((b[$k] == a[$k])) || fail "$k grew by $((b[$k] - a[$k])) in 300 ms: that function still gets calls"
	done
}
