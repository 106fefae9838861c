#!/usr/bin/env bash
# The one test command behind `make check`: unit tests (plain and under ASan/UBSan),
# the fuzzers' seeds and regressions replayed once, and the bats integration suites,
# all as TAP; the last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rc=0

run_suite() {	# NAME CMD...: run one suite, keep its TAP, show failures as they come
	local name=$1; shift
	echo "== $name"
	"$@" >"$out/$name.tap" 2>"$out/$name.err" || rc=1
	# each failure with the diagnostics bats prints under it ('# ...' lines)
	awk '/^not ok/ { show = 1; print; next } /^(ok|not ok) / { show = 0 } show && /^#/' \
		"$out/$name.tap" | head -n 200
	if [[ -s $out/$name.err ]] && grep -qE '^not ok' "$out/$name.tap"; then
		tail -n 40 "$out/$name.err"
	fi
	printf '   %d passed, %d failed, %d skipped\n' \
		"$(grep -E '^ok ' "$out/$name.tap" | grep -vc '# skip')" \
		"$(grep -cE '^not ok' "$out/$name.tap")" \
		"$(grep -E '^ok ' "$out/$name.tap" | grep -c '# skip')"
}

run_suite unit test/unit/run.sh build/unit
run_suite unit-asan test/unit/run.sh build/unit-asan
run_suite fuzz-replay test/fuzz/replay.sh build/fuzz
jobs=$(nproc)
bats_args=(--tap)
if bats --help 2>&1 | grep -q -- '--jobs' && command -v parallel >/dev/null; then
	bats_args+=(--jobs "$jobs")
fi
run_suite integration bats "${bats_args[@]}" test/integration

# Skips are reported, and in CI a skip is a failure: the tests need root, ptrace and BPF,
# which CI has.
pass=$(cat "$out"/*.tap | grep -E '^ok ' | grep -vc '# skip')
fail=$(cat "$out"/*.tap | grep -cE '^not ok')
skip=$(cat "$out"/*.tap | grep -E '^ok ' | grep -c '# skip')
if [[ ${CI:-} == true ]] && ((skip > 0)); then
	cat "$out"/*.tap | grep -E '# skip'
	fail=$((fail + skip))
	skip=0
fi
((fail > 0)) && rc=1
if ((skip > 0)); then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
exit $rc
