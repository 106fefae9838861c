#!/usr/bin/env bats
# The command-line contract of livepatch (docs/design.md §1): options, usage errors,
# JSON errors, and the man page and shell completions that describe them.
# Run after `make`: bats test/integration/cli.bats
# Nothing here attaches to a process: every case fails or stops in parsing.

bats_require_minimum_version 1.5.0

load ../lib

MAN=$ROOT/man/livepatch.8
BASH_COMP=$ROOT/completions/livepatch.bash
ZSH_COMP=$ROOT/completions/_livepatch

setup_file() {
	[ -x "$LP" ] || {
		echo "no $LP: run make first" >&2
		return 1
	}
	# zsh has no non-interactive completion: drive an interactive zsh on a pty
	# and log what compadd accepts. Usage: zsh -f zcomp.zsh FPATH_DIR WORD...
	cat >"$BATS_FILE_TMPDIR/zcomp.zsh" <<'EOF'
zmodload zsh/zpty || exit 3
local dir=$1 log=$BATS_FILE_TMPDIR/zcomp.log.$$ line
shift
: >| $log
zpty z zsh -f -i || exit 3
zpty -w z "PS1= RPS1= PROMPT_EOL_MARK=''; unsetopt beep; fpath=(${(q)dir} \$fpath)"
zpty -w z "autoload -Uz compinit; compinit -u -D"
zpty -w z "compadd() { local -a h; builtin compadd -A h \"\$@\"; print -rl -- \$h >> ${(q)log}; builtin compadd \"\$@\"; }"
zpty -w z "zle-done() { print -r -- '<END>' >> ${(q)log}; }; zle -N zle-done; bindkey '^X' zle-done"
zpty -w -n z "${(j: :)@}"$'\t\C-x'
until [[ -s $log && $(<$log) == *'<END>'* ]]; do	# drain the pty meanwhile
	zpty -r -t z line 2>/dev/null || sleep 0.02
done
zpty -d z
print -rl -- ${(u)${(f)"$(<$log)"}:#<END>}
rm -f $log
EOF
	export BATS_FILE_TMPDIR
}

teardown() {
	if [ -n "${SLEEP_PID-}" ]; then
		kill "$SLEEP_PID" 2>/dev/null || true
		wait "$SLEEP_PID" 2>/dev/null || true
	fi
}

# --- option sets, one per source, sorted, one per line ----------------------

# The roff source with font escapes removed and \- turned into -.
man_text() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$MAN"
}

# Tag lines (the line after .TP) of the man page's OPTIONS section.
man_option_tags() {
	man_text | awk '/^\.SH/ { in_opts = ($0 ~ /^\.SH "?OPTIONS"?$/) }
		in_opts && tag { print; tag = 0 }
		in_opts && /^\.TP/ { tag = 1 }'
}

help_long() { "$LP" --help | sed -nE 's/^ +(-[A-Za-z], )?(--[a-z][a-z-]*).*/\2/p' | sort -u; }
help_short() { "$LP" --help | sed -nE 's/^ +(-[A-Za-z]), --.*/\1/p' | sort -u; }
man_long() { man_option_tags | sed -nE 's/^(-[A-Za-z], )?(--[a-z][a-z-]*).*/\2/p' | sort -u; }
man_short() { man_option_tags | sed -nE 's/^(-[A-Za-z]), --.*/\1/p' | sort -u; }

# { "pid", required_argument, NULL, 'p' } lines of long_opts.
source_long() {
	sed -n '/long_opts\[\] = {/,/^};/p' "$ROOT/cmd/args.c" |
		sed -nE 's/^[[:space:]]*\{ *"([a-z][a-z-]*)".*/--\1/p' | sort -u
}

# The short options of getopt_long's optstring, e.g. ":p:f:njh".
source_short() {
	sed -nE 's/.*getopt_long\([^"]*"([^"]*)".*/\1/p' "$ROOT/cmd/args.c" |
		tr -d ':' | grep -o . | sed 's/^/-/' | sort -u
}

# What the bash completion offers for the words "$@" (the last is completed).
bash_complete() {
	bash -c 'source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_livepatch
		printf "%s\n" "${COMPREPLY[@]}"' _ "$BASH_COMP" "$@"
}

bash_long() { bash_complete livepatch -- | sort -u; }

# Option names in the specs of the _arguments call of the zsh completion.
zsh_long() {
	awk '/_arguments/ { on = 1 } on { print } on && !/\\$/ { on = 0 }' "$ZSH_COMP" |
		sed -E "s/^[[:space:]]*('\([^)]*\)')?//; s/\[.*//" |
		grep -oE -- '--[a-z][a-z-]*' | sort -u
}

zsh_complete() {
	timeout 30 zsh -f "$BATS_FILE_TMPDIR/zcomp.zsh" "$ROOT/completions" "$@"
}

need_zsh() {
	need_cmd zsh zsh
}

# same_set LABEL_A FILE_A LABEL_B FILE_B: fail listing what only one side has.
same_set() {
	local only_a only_b
	[ -s "$2" ] || fail "no options found in $1"
	[ -s "$4" ] || fail "no options found in $3"
	only_a=$(comm -23 "$2" "$4" | tr '\n' ' ')
	only_b=$(comm -13 "$2" "$4" | tr '\n' ' ')
	[ -z "$only_a$only_b" ] || fail "only in $1: ${only_a:-none}; only in $3: ${only_b:-none}"
}

# --- usage errors ------------------------------------------------------------

# Exit 2, nothing on stdout, one "livepatch: error: WHAT (HOW)" line on stderr.
usage_error() {
	run --separate-stderr "$LP" "$@"
	[ "$status" -eq 2 ] || fail "exit $status, expected 2; stderr: $stderr"
	[ -z "$output" ] || fail "stdout is not empty: $output"
	[ "${#stderr_lines[@]}" -eq 1 ] || fail "expected one line on stderr, got: $stderr"
	[[ $stderr =~ ^livepatch:\ error:\ [^\ ].*\ \(.+\)$ ]] ||
		fail "not 'livepatch: error: WHAT (HOW TO FIX)': $stderr"
}

# Exit 2, exactly one JSON object {"error":{"code":2,"message":...}} on stdout, no stderr.
usage_error_json() {
	run --separate-stderr "$LP" "$@"
	[ "$status" -eq 2 ] || fail "exit $status, expected 2; stdout: $output"
	[ -z "$stderr" ] || fail "stderr is not empty: $stderr"
	python3 -c 'import json, sys
d = json.load(sys.stdin)
assert list(d) == ["error"], d
assert d["error"]["code"] == 2, d
assert isinstance(d["error"]["message"], str) and d["error"]["message"], d' <<<"$output" ||
		fail "not one JSON error object with code 2: $output"
}

# --- consistency of --help, man page and completions ---------------------------

@test "long options: long_opts, --help, man OPTIONS, bash and zsh completions are the same set" {
	local d=$BATS_TEST_TMPDIR
	source_long >"$d/source"
	help_long >"$d/help"
	man_long >"$d/man"
	bash_long >"$d/bash"
	zsh_long >"$d/zsh"
	grep -qx -- --pid "$d/source" || fail "cannot read long_opts from cmd/args.c"
	local rc=0	# report every difference, not only the first
	same_set "cmd/args.c long_opts" "$d/source" "livepatch --help" "$d/help" || rc=1
	same_set "livepatch --help" "$d/help" "man page OPTIONS" "$d/man" || rc=1
	same_set "livepatch --help" "$d/help" "completions/livepatch.bash" "$d/bash" || rc=1
	same_set "livepatch --help" "$d/help" "completions/_livepatch" "$d/zsh" || rc=1
	return "$rc"
}

@test "short options: getopt optstring, --help and man OPTIONS are the same set" {
	local d=$BATS_TEST_TMPDIR
	source_short >"$d/source"
	help_short >"$d/help"
	man_short >"$d/man"
	local rc=0
	same_set "cmd/args.c optstring" "$d/source" "livepatch --help" "$d/help" || rc=1
	same_set "livepatch --help" "$d/help" "man page OPTIONS" "$d/man" || rc=1
	return "$rc"
}

@test "man page names no long option that livepatch lacks (no --verify, --list yet)" {
	local d=$BATS_TEST_TMPDIR
	source_long >"$d/source"
	man_text | grep -oE -- '--[a-z][a-z-]*' | sort -u >"$d/mentioned"
	local extra
	extra=$(comm -23 "$d/mentioned" "$d/source" | tr '\n' ' ')
	[ -z "$extra" ] || fail "man page mentions options livepatch does not have: $extra"
}

@test "man page documents every exit status from 0 to 7" {
	local text
	text=$(man_text | awk '/^\.SH/ { on = ($0 ~ /EXIT STATUS/) } on')
	for code in 0 1 2 3 4 5 6 7; do
		grep -qx "\.B $code" <<<"$text" || fail "exit status $code is not documented"
	done
}

# --- help and version --------------------------------------------------------

@test "--help and -h exit 0 and print the usage on stdout only" {
	for opt in --help -h; do
		run --separate-stderr "$LP" "$opt"
		[ "$status" -eq 0 ] || fail "$opt: exit $status"
		[[ ${lines[0]} == "Usage: livepatch "* ]] || fail "$opt: first line: ${lines[0]}"
		[ -z "$stderr" ] || fail "$opt: stderr: $stderr"
	done
}

@test "--version and -V exit 0 and print 'livepatch VERSION'" {
	for opt in --version -V; do
		run --separate-stderr "$LP" "$opt"
		[ "$status" -eq 0 ] || fail "$opt: exit $status"
		[[ $output == "livepatch "?* ]] || fail "$opt: printed: $output"
		[ "${#lines[@]}" -eq 1 ] || fail "$opt: more than one line: $output"
	done
}

# --- usage errors: exit 2, one error line on stderr, nothing on stdout ---------

@test "usage error: no arguments at all" {
	usage_error
}

@test "usage error: --pid missing" {
	usage_error --func compute --target compute_v2
}

@test "usage error: --pid not a number" {
	usage_error --pid abc --func compute --target compute_v2
	usage_error --pid 12x --func compute --target compute_v2
}

@test "usage error: --pid 0" {
	usage_error --pid 0 --func compute --target compute_v2
}

@test "usage error: --func without --target" {
	usage_error --pid 1 --func compute
}

@test "usage error: --revert combined with --func" {
	usage_error --pid 1 --revert compute --func compute
}

@test "usage error: unknown option" {
	usage_error --pid 1 --func compute --target compute_v2 --bogus
}

@test "usage error: stray argument" {
	usage_error --pid 1 --func compute --target compute_v2 extra
}

@test "usage error: --timeout 0" {
	usage_error --pid 1 --func compute --target compute_v2 --timeout 0
}

@test "usage error: --timeout abc" {
	usage_error --pid 1 --func compute --target compute_v2 --timeout abc
}

@test "usage error: option missing its argument" {
	usage_error --pid 1 --func compute --target
}

# Many processes (docs/design.md §12): each bad combination is refused before any
# process is looked at, so the selection below matches nothing or need not exist.
@test "usage error: many processes: each bad option or combination, one line, exit 2" {
	local exe=$ROOT/build/daemons/counterd
	usage_error --exe "$exe" --jobs 0 -f compute -t compute_v2
	usage_error --exe "$exe" --jobs 257 -f compute -t compute_v2
	usage_error --exe "$exe" --canary 0 -f compute -t compute_v2
	usage_error --exe "$exe" --exclude x -f compute -t compute_v2
	usage_error --pid 1 --atomic -f compute -t compute_v2
	usage_error --pid 1 --exclude 2 -f compute -t compute_v2
	usage_error --pid 1 --jobs 2 -f compute -t compute_v2
	usage_error --pid 1 --exe "$exe" -f compute -t compute_v2
	usage_error --exe "$exe" --where compute
	usage_error --pid 1 --pid 2 --symbols
	usage_error --exe "$exe" --plan - 
	usage_error --exe "$exe" --atomic -r compute
	usage_error --exe "$exe" --atomic --dry-run -f compute -t compute_v2
	usage_error --exe "$exe" --canary 1 --dry-run -f compute -t compute_v2
	usage_error --all /nonexistent/libnothing.so.1 -f compute -t compute_v2
	usage_error --exe /proc -f compute -t compute_v2
	usage_error --all-build-id xyz -f compute -t compute_v2
	usage_error --all-build-id abc -f compute -t compute_v2
}

@test "json usage error: many processes: a path that names no file" {
	usage_error_json --json --all /nonexistent/libnothing.so.1 -f compute -t compute_v2
}

# --- the same usage errors with --json: one JSON object on stdout, no stderr ---

@test "json usage error: no arguments but --json" {
	usage_error_json --json
}

@test "json usage error: --pid missing" {
	usage_error_json --json --func compute --target compute_v2
}

@test "json usage error: --pid not a number" {
	usage_error_json --json --pid abc --func compute --target compute_v2
}

@test "json usage error: --pid 0" {
	usage_error_json --json --pid 0 --func compute --target compute_v2
}

@test "json usage error: --func without --target" {
	usage_error_json --json --pid 1 --func compute
}

@test "json usage error: --revert combined with --func" {
	usage_error_json --json --pid 1 --revert compute --func compute
}

@test "json usage error: unknown option" {
	usage_error_json --json --pid 1 --func compute --target compute_v2 --bogus
}

@test "json usage error: stray argument" {
	usage_error_json --json --pid 1 --func compute --target compute_v2 extra
}

@test "json usage error: --timeout 0" {
	usage_error_json --json --pid 1 --func compute --target compute_v2 --timeout 0
}

@test "json usage error: --timeout abc" {
	usage_error_json --json --pid 1 --func compute --target compute_v2 --timeout abc
}

@test "json usage error: option missing its argument" {
	usage_error_json -j --pid 1 --func compute --target
}

@test "json usage error: --json after the bad option still yields JSON" {
	usage_error_json --pid abc --json
	usage_error_json --bogus --json
	usage_error_json --pid 1 extra -j
}

# --- bash completion -----------------------------------------------------------

@test "bash completion: the file registers _livepatch for livepatch" {
	run bash -c 'source "$1" && complete -p livepatch' _ "$BASH_COMP"
	[ "$status" -eq 0 ] || fail "$output"
	[ "$output" = "complete -F _livepatch livepatch" ] || fail "registered as: $output"
}

@test "bash completion: --ti completes to --timeout" {
	run bash_complete livepatch --ti
	[ "$status" -eq 0 ]
	[ "$output" = "--timeout" ] || fail "candidates: $output"
}

@test "bash completion: '-' lists every short and long option of --help" {
	local d=$BATS_TEST_TMPDIR
	{ help_short; help_long; } | sort -u >"$d/help"
	bash_complete livepatch - | sort -u >"$d/bash"
	same_set "livepatch --help" "$d/help" "bash completion of -" "$d/bash"
}

@test "bash completion: --pid offers live pids, including a sleep started here" {
	sleep 30 >/dev/null 2>&1 3>&- &
	SLEEP_PID=$!
	run bash_complete livepatch --pid ''
	[ "$status" -eq 0 ]
	grep -qx "$SLEEP_PID" <<<"$output" || fail "pid $SLEEP_PID not offered"
	! grep -qvE '^[0-9]+$' <<<"$output" || fail "a candidate is not a pid: $output"
	run bash_complete livepatch -p "${SLEEP_PID:0:2}"
	grep -qx "$SLEEP_PID" <<<"$output" || fail "pid $SLEEP_PID not offered for -p ${SLEEP_PID:0:2}"
}

@test "bash completion: --timeout offers nothing" {
	run bash_complete livepatch --timeout ''
	[ "$status" -eq 0 ]
	[ -z "$output" ] || fail "candidates: $output"
}

@test "bash completion: --func offers nothing, silently, when livepatch has no --symbols" {
	# An old livepatch: any unknown option is a usage error on stderr.
	printf '#!/bin/sh\necho "livepatch: error: unknown option (see livepatch --help)" >&2\nexit 2\n' \
		>"$BATS_TEST_TMPDIR/livepatch"
	chmod +x "$BATS_TEST_TMPDIR/livepatch"
	run --separate-stderr bash_complete "$BATS_TEST_TMPDIR/livepatch" --pid $$ --func c
	[ "$status" -eq 0 ]
	[ -z "$output" ] || fail "candidates: $output"
	[ -z "$stderr" ] || fail "stderr: $stderr"
}

@test "bash completion: --func, --target and --revert offer OBJECT:SYMBOL from --symbols of --pid" {
	# A livepatch with --symbols: check the arguments, print the names.
	cat >"$BATS_TEST_TMPDIR/livepatch" <<-'EOF'
		#!/bin/sh
		[ "$1 $2 $3" = "--pid 4242 --symbols" ] || exit 2
		printf '%s\n' counterd:compute counterd:compute_v2 libc.so.6:malloc
	EOF
	chmod +x "$BATS_TEST_TMPDIR/livepatch"
	local lp=$BATS_TEST_TMPDIR/livepatch
	# bash splits "counterd:comp" at ':' and readline replaces only "comp".
	run bash_complete "$lp" --pid 4242 --func counterd : comp
	[ "$output" = $'compute\ncompute_v2' ] || fail "--func: $output"
	run bash_complete "$lp" -p 4242 -t lib
	[ "$output" = "libc.so.6:malloc" ] || fail "-t: $output"
	run bash_complete "$lp" --pid=4242 --revert ''
	[ "${#lines[@]}" -eq 3 ] || fail "--revert: $output"
	run bash_complete "$lp" --func ''
	[ -z "$output" ] || fail "offered names without --pid: $output"
}

@test "bash completion: --where offers OBJECT:SYMBOL, and so do the names after --where F" {
	cat >"$BATS_TEST_TMPDIR/livepatch" <<-'EOF'
		#!/bin/sh
		[ "$1 $2 $3" = "--pid 4242 --symbols" ] || exit 2
		printf '%s\n' counterd:compute counterd:compute_v2 libc.so.6:malloc
	EOF
	chmod +x "$BATS_TEST_TMPDIR/livepatch"
	local lp=$BATS_TEST_TMPDIR/livepatch
	run bash_complete "$lp" --pid 4242 --where counterd : comp
	[ "$output" = $'compute\ncompute_v2' ] || fail "--where: $output"
	run bash_complete "$lp" --pid 4242 --where counterd:compute lib
	[ "$output" = "libc.so.6:malloc" ] || fail "after --where F: $output"
	run bash_complete "$lp" --pid 4242 --func compute lib
	[ -z "$output" ] || fail "a stray name completed without --where: $output"
}

@test "bash completion: --unload offers the names of the loaded patches from --list" {
	cat >"$BATS_TEST_TMPDIR/livepatch" <<-'EOF'
		#!/bin/sh
		[ "$1 $2 $3" = "--pid 4242 --list" ] || exit 2
		echo 'process   4242 (patchd): 1 function(s) differ from their files (1.5 MiB compared in 14.1 ms)'
		echo 'patchd:format_id at 0x564dfbce08d0: jumps to fix.o:format_id_fixed (loaded patch fix.o, sha256 5251186cf8d2..., 12 KiB at 0x564dfbcda000)'
		echo 'patch     fix.o: sha256 5251186cf8d2d61faa0b4126636dcc8d1f3d8177dfda170485036bd6663ed859, 12 KiB at 0x564dfbcda000, 1 function jumps into it'
		echo 'patch     fix2.o: sha256 6251186cf8d2d61faa0b4126636dcc8d1f3d8177dfda170485036bd6663ed859, 12 KiB at 0x564dfbce0000, unused: nothing jumps into it'
	EOF
	chmod +x "$BATS_TEST_TMPDIR/livepatch"
	local lp=$BATS_TEST_TMPDIR/livepatch
	run bash_complete "$lp" --pid 4242 --unload ''
	[ "$output" = $'fix.o\nfix2.o' ] || fail "--unload: $output"
	run bash_complete "$lp" -p 4242 --unload fix2
	[ "$output" = "fix2.o" ] || fail "--unload fix2: $output"
	run bash_complete "$lp" --unload ''
	[ -z "$output" ] || fail "offered names without --pid: $output"
}

# --- zsh completion --------------------------------------------------------------

@test "zsh completion: the file parses and compinit autoloads it for livepatch" {
	need_zsh
	run zsh -n "$ZSH_COMP"
	[ "$status" -eq 0 ] || fail "zsh -n: $output"
	run zsh -f -c 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D
		print -r -- "$_comps[livepatch]"; autoload -Uz _livepatch; whence -w _livepatch' \
		_ "$ROOT/completions"
	[ "$status" -eq 0 ] || fail "$output"
	[ "${lines[0]}" = "_livepatch" ] || fail "livepatch is completed by '${lines[0]}'"
	[ "${lines[1]}" = "_livepatch: function" ] || fail "${lines[1]}"
}

@test "zsh completion: '-' lists every short and long option of --help" {
	need_zsh
	local d=$BATS_TEST_TMPDIR
	{ help_short; help_long; } | sort -u >"$d/help"
	zsh_complete livepatch - | sort -u >"$d/zsh"
	same_set "livepatch --help" "$d/help" "zsh completion of -" "$d/zsh"
}

@test "zsh completion: --pid offers live pids, including a sleep started here" {
	need_zsh
	sleep 30 >/dev/null 2>&1 3>&- &
	SLEEP_PID=$!
	run zsh_complete livepatch --pid ''
	[ "$status" -eq 0 ] || fail "$output"
	grep -qx "$SLEEP_PID" <<<"$output" || fail "pid $SLEEP_PID not offered"
}

@test "zsh completion: --func offers OBJECT:SYMBOL from --symbols, nothing when it fails" {
	need_zsh
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/livepatch" <<-'EOF'
		#!/bin/sh
		[ "$1 $2 $3" = "--pid 4242 --symbols" ] || exit 2
		printf '%s\n' counterd:compute counterd:compute_v2 libc.so.6:malloc
	EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/livepatch"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH run zsh_complete livepatch --pid 4242 --func counterd:
	[ "$(sort <<<"$output")" = $'counterd:compute\ncounterd:compute_v2' ] || fail "--func: $output"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH run zsh_complete livepatch --pid 4243 --func c
	[ -z "$output" ] || fail "offered names when --symbols failed: $output"
}

@test "zsh completion: --unload offers the names of the loaded patches from --list" {
	need_zsh
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/livepatch" <<-'EOF'
		#!/bin/sh
		[ "$1 $2 $3" = "--pid 4242 --list" ] || exit 2
		echo 'process   4242 (patchd): 0 function(s) differ from their files (1.5 MiB compared in 14.1 ms)'
		echo 'patch     fix.o: sha256 5251186cf8d2d61faa0b4126636dcc8d1f3d8177dfda170485036bd6663ed859, 12 KiB at 0x564dfbcda000, unused: nothing jumps into it'
	EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/livepatch"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH run zsh_complete livepatch --pid 4242 --unload ''
	[ "$output" = "fix.o" ] || fail "--unload: $output"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH run zsh_complete livepatch --pid 4243 --unload ''
	[ -z "$output" ] || fail "offered names when --list failed: $output"
}

# --- man page ------------------------------------------------------------------

@test "man page: groff -man -ww finds nothing to warn about" {
	run groff -man -ww -z "$MAN"
	[ "$status" -eq 0 ] || fail "groff exit $status: $output"
	[ -z "$output" ] || fail "groff: $output"
}

@test "man page: man -l renders it with all its sections" {
	need_cmd man man-db
	run --separate-stderr env LC_ALL=C MANWIDTH=80 man -l "$MAN"
	[ "$status" -eq 0 ] || fail "man exit $status: $stderr"
	for section in NAME SYNOPSIS DESCRIPTION OPTIONS "FUNCTION NAMES" "DRY RUN" OUTPUT \
		"EXIT STATUS" "SITE ANALYSIS" "IDEMPOTENCE AND REVERT" PRIVILEGES LIMITS EXAMPLES \
		"SEE ALSO"; do
		grep -qx "$section" <<<"$output" || fail "section $section missing from the rendered page"
	done
}
