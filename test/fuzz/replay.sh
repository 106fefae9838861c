#!/usr/bin/env bash
# replay.sh DIR: run every seed (test/fuzz/corpus/NAME) and every regression input
# (test/fuzz/regressions/NAME) once through its harness DIR/fuzz_NAME, and print TAP:
#   ok N - fuzz_NAME: K inputs replayed
#   not ok N - fuzz_NAME: ... (the harness's report on stderr)
# A crash, a sanitizer report or a leak fails the harness. Takes seconds: no fuzzing.
set -uo pipefail

dir=${1:?usage: test/fuzz/replay.sh DIR (e.g. build/fuzz)}
src=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
harnesses=("$src"/fuzz_*.c)	# every harness the tree has, built or not
if [[ ! -d $dir ]]; then
	echo "replay.sh: error: no directory $dir (run make fuzz-build)" >&2
	exit 2
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1

echo "1..${#harnesses[@]}"
n=0 rc=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for c in "${harnesses[@]}"; do
	name=$(basename "$c" .c)
	bin=$dir/$name
	n=$((n + 1))
	if [[ ! -x $bin ]]; then
		echo "not ok $n - $name: not built (run make fuzz-build)"
		rc=1
		continue
	fi
	inputs=("$src/corpus/${name#fuzz_}"/* "$src/regressions/${name#fuzz_}"/*)
	if ((${#inputs[@]} == 0)); then
		echo "not ok $n - $name: no seed or regression input"
		rc=1
		continue
	fi
	if timeout -k 5 120 "$bin" "${inputs[@]}" >"$log" 2>&1; then
		echo "ok $n - $name: ${#inputs[@]} inputs replayed"
	else
		echo "not ok $n - $name: an input failed (exit $?)"
		grep -E '^(Running: |==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | tail -n 5 | sed 's/^/# /'
		cat "$log" >&2
		rc=1
	fi
done
exit $rc
