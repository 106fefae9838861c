#!/usr/bin/env bats
# The progress line: on a terminal after about a second, never in --json or when piped.

load ../lib

setup() {
	need_root
	need_cmd script util-linux
}

teardown() {
	daemon_stop || true
}

@test "a slow transaction shows a progress line on a terminal, then clears it" {
	daemon_start counterd --threads 2
	# LP_FAULT_SLEEP_MS stretches each of the six steps: about 1.8 s in all.
	script -qec "LP_FAULT_SLEEP_MS=300 '$LP' --pid $DAEMON_PID --func compute --target compute_v2" \
		/dev/null >"$LP_TMP/tty.out"
	grep -q "livepatch: transaction in progress, 1\.[0-9] s" "$LP_TMP/tty.out"
	grep -q $'\r\e\\[Kprocess' "$LP_TMP/tty.out"
	grep -q "^applied" "$LP_TMP/tty.out"
}

@test "no progress line when stderr is not a terminal, nor with --json on one" {
	daemon_start counterd --threads 2
	LP_FAULT_SLEEP_MS=300 "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 2>"$LP_TMP/err" >/dev/null
	! grep -q "in progress" "$LP_TMP/err"
	script -qec "LP_FAULT_SLEEP_MS=300 '$LP' --pid $DAEMON_PID --revert compute --json" \
		/dev/null >"$LP_TMP/tty.out"
	! grep -q "in progress" "$LP_TMP/tty.out"
	tr -d '\r' <"$LP_TMP/tty.out" | json_check 'd["status"] == "reverted"'
}
