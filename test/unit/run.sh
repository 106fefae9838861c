#!/usr/bin/env bash
# run.sh DIR: run every unit test binary (DIR/test_*) with CMOCKA_MESSAGE_OUTPUT=TAP
# and print only TAP result lines on stdout, numbered across all binaries:
#   ok N - FILE: TEST            (a skipped test: "ok N - FILE: TEST # skip")
#   not ok N - FILE: TEST
# cmocka's diagnostics ("# ..." lines) and the binaries' stderr (sanitizer reports)
# go to stderr. A binary that exits non-zero without reporting a failed test
# (crash, sanitizer error, leak, timeout) adds a "not ok" line of its own.
# Exit status: 0 when everything passed, 1 otherwise.
set -uo pipefail

dir=${1:?usage: test/unit/run.sh DIR (e.g. build/unit or build/unit-asan)}
[[ -d $dir ]] || { echo "run.sh: error: no directory $dir (run make unit-build)" >&2; exit 2; }

export CMOCKA_MESSAGE_OUTPUT=TAP
# Leaks are failures; a sanitizer error stops the binary with a non-zero status.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0:exitcode=86
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=87
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1:exitcode=86
unset CMOCKA_TEST_ABORT

n=0
failed=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

shopt -s nullglob
bins=("$dir"/test_*)
if ((${#bins[@]} == 0)); then
	echo "run.sh: error: no test binaries in $dir (run make unit-build)" >&2
	exit 2
fi

for bin in "${bins[@]}"; do
	[[ -f $bin && -x $bin ]] || continue
	file=${bin##*/}
	file=${file#test_}
	timeout -k 5 60 "$bin" >"$tmp"
	st=$?
	bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^ok\ [0-9]+\ -\ (.*)$ ]]; then
			echo "ok $((++n)) - $file: ${BASH_REMATCH[1]}"
		elif [[ $line =~ ^not\ ok\ [0-9]+\ \#\ SKIP\ (.*)$ ]]; then
			echo "ok $((++n)) - $file: ${BASH_REMATCH[1]} # skip"
		elif [[ $line =~ ^not\ ok\ [0-9]+\ -\ (.*)$ ]]; then
			echo "not ok $((++n)) - $file: ${BASH_REMATCH[1]}"
			bad=1
		elif [[ $line =~ ^1\.\.[0-9]+$ || $line =~ ^#\ ok\ -\  ]]; then
			:	# per-group plan and summary: the caller counts lines
		else
			echo "$file: $line" >&2
		fi
	done <"$tmp"
	if ((st != 0 && (bad == 0 || st != 1))); then
		case $st in
		86) why="sanitizer error" ;;
		87) why="memory leak (LeakSanitizer)" ;;
		124 | 137) why="timed out" ;;
		*) why="exit status $st" ;;
		esac
		echo "not ok $((++n)) - $file: binary failed: $why (see stderr)"
		bad=1
	fi
	((bad)) && failed=1
done
exit $failed
