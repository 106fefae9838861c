#!/usr/bin/env bash
# `make demo`: patch a busy multithreaded daemon live, then revert it, and show its
# counters move from compute() to compute_v2() and back while it keeps running.
# Needs ./livepatch and build/daemons/counterd (make demo builds both first).
# Exits non-zero when any step fails or a counter does not switch as it should.
set -euo pipefail
cd "$(dirname "$0")/.."
# Fault injection is for the tests (livepatch(8), ENVIRONMENT); it would make the demo fail.
unset LP_FAULT LP_FAULT_SLEEP_MS

LP=./livepatch
COUNTERD=build/daemons/counterd
THREADS=8
SAMPLES=5	# counter rows per stage, 250 ms apart: ~1 s

if [[ -t 1 ]]; then
	B=$'\e[1m' N=$'\e[0m'
else
	B='' N=''
fi

tmp=$(mktemp -d /tmp/livepatch-demo.XXXXXX)
pid=''

cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "demo: FAILED: $*" >&2
	if [[ -s $tmp/counterd.log ]]; then
		echo "demo: counterd's output:" >&2
		sed 's/^/  /' "$tmp/counterd.log" >&2
	fi
	exit 1
}

heading() {
	printf '\n%s== %s%s\n' "$B" "$*" "$N"
}

# 1234567 -> 1,234,567
group() {
	local n=$1 out=''
	while ((${#n} > 3)); do
		out=,${n: -3}$out
		n=${n:0:${#n}-3}
	done
	printf '%s%s' "$n" "$out"
}

# The daemon's status file ("key value" lines, replaced atomically every 20 ms) into S.
declare -A S
read_status() {
	local k v
	S=()
	while read -r k v; do
		S[$k]=$v
	done <"$tmp/counterd.status"
}

# Wait (<= 5 s) for a status written after the last one read, then read it.
read_fresh_status() {
	local last=${S[uptime_ms]:-} n=0
	while :; do
		kill -0 "$pid" 2>/dev/null || fail "counterd (pid $pid) is gone"
		read_status
		[[ ${S[uptime_ms]} != "$last" ]] && return 0
		((n++ < 500)) || fail "counterd's status file was not updated for 5 s"
		sleep 0.01
	done
}

# Print SAMPLES rows of counters; sets D_COMPUTE and D_V2 (their increase) and checks wrong.
show_counters() {
	local i t0 c0 v0
	printf '\n    %8s  %15s  %15s  %5s\n' time calls_compute calls_compute_v2 wrong
	for ((i = 0; i < SAMPLES; i++)); do
		((i == 0)) || sleep 0.25
		read_fresh_status
		if ((i == 0)); then
			t0=${S[uptime_ms]} c0=${S[calls_compute]} v0=${S[calls_compute_v2]}
		fi
		printf '    %6.2f s  %15s  %15s  %5s\n' "$(((S[uptime_ms] - t0) / 10))e-2" \
			"$(group "${S[calls_compute]}")" "$(group "${S[calls_compute_v2]}")" "${S[wrong]}"
	done
	D_COMPUTE=$((S[calls_compute] - c0))
	D_V2=$((S[calls_compute_v2] - v0))
	((S[wrong] == 0)) || fail "counterd saw ${S[wrong]} wrong results"
	((S[threads] == THREADS + 1)) || fail "counterd has ${S[threads]} threads, expected $((THREADS + 1))"
}

# Echo and run one livepatch command; fail unless it exits 0.
livepatch() {
	local rc=0 out line
	printf '%s$ livepatch %s%s\n' "$B" "$*" "$N"
	out=$("$LP" "$@" 2>&1) || rc=$?
	while IFS= read -r line; do
		printf '  %s\n' "$line"
	done <<<"$out"
	((rc == 0)) || fail "livepatch $* exited with status $rc"
	LAST_OUT=$out
}

for f in "$LP" "$COUNTERD"; do
	[[ -x $f ]] || fail "$f is not built (run: make demo)"
done

heading "Start counterd: $THREADS threads calling compute() in a loop"
"$COUNTERD" --threads "$THREADS" --status "$tmp/counterd.status" --ready "$tmp/counterd.ready" \
	</dev/null >"$tmp/counterd.log" 2>&1 &
pid=$!
for ((n = 0; ; n++)); do
	[[ -s $tmp/counterd.ready ]] && break
	kill -0 "$pid" 2>/dev/null || fail "counterd died before it was ready"
	((n < 1000)) || fail "counterd not ready after 10 s"
	sleep 0.01
done
echo "  pid $pid; counters from its status file, rewritten every 20 ms"
show_counters
((D_COMPUTE > 0)) || fail "calls_compute did not rise before the patch"
((S[calls_compute_v2] == 0)) || fail "calls_compute_v2 is ${S[calls_compute_v2]} before the patch"
echo "  compute +$(group "$D_COMPUTE"), compute_v2 +0"

heading "Plan the patch (reads /proc and the ELF file only; no attach)"
livepatch --pid "$pid" --func compute --target compute_v2 --dry-run

heading "Patch it live: compute -> compute_v2"
livepatch --pid "$pid" --func compute --target compute_v2
[[ $LAST_OUT == *$'\napplied' ]] || fail "the patch did not report 'applied'"
show_counters
((D_V2 > 0)) || fail "calls_compute_v2 did not rise after the patch"
((D_COMPUTE == 0)) || fail "calls_compute still rose by $D_COMPUTE after the patch"
echo "  compute +0 (frozen), compute_v2 +$(group "$D_V2")"

heading "Revert: put compute's original bytes back from the mapped file"
livepatch --pid "$pid" --revert compute
[[ $LAST_OUT == *$'\nreverted' ]] || fail "the revert did not report 'reverted'"
show_counters
((D_COMPUTE > 0)) || fail "calls_compute did not rise after the revert"
((D_V2 == 0)) || fail "calls_compute_v2 still rose by $D_V2 after the revert"
echo "  compute +$(group "$D_COMPUTE"), compute_v2 +0 (frozen)"

heading "Stop counterd"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=''
((rc == 0)) || fail "counterd exited with status $rc"
read_status
((S[wrong] == 0)) || fail "counterd saw ${S[wrong]} wrong results"
echo "  exited with status 0"

printf '\n%sdemo passed:%s calls_compute %s, calls_compute_v2 %s, wrong %s (patched and reverted while it ran)\n' \
	"$B" "$N" "$(group "${S[calls_compute]}")" "$(group "${S[calls_compute_v2]}")" "${S[wrong]}"
