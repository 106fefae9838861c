#!/usr/bin/env bats
# livepatch --dry-run (docs/design.md §1-§3, man page DRY RUN and OUTPUT): resolve and plan only.
# Every case starts its own daemon in $BATS_TEST_TMPDIR and checks the plan against what
# the test computes itself from the ELF files and /proc/PID/maps, not against livepatch.
# Run after `make && make daemons`: bats test/integration/dryrun.bats
# ("already applied" needs a real patch first: the transaction tests cover it.)

# SC2153: DAEMON_PID is set by lib.bash.
# shellcheck disable=SC2153

bats_require_minimum_version 1.5.0

load ../lib

# Two workers are enough to be multithreaded and leave CPU for parallel tests.
CD_ARGS=(--threads 2)

setup() {
	lp_setup_file
}

teardown() {
	daemon_stop
}

@test "dry run on counterd (PIE, endbr64) prints the plan: process, function, target, site after endbr64, displaced instructions, jmp" {
	daemon_start counterd "${CD_ARGS[@]}"
	local exe f g
	exe=$(readlink "/proc/$DAEMON_PID/exe")
	f=$(sym_addr "$DAEMON_PID" "$exe" compute)
	g=$(sym_addr "$DAEMON_PID" "$exe" compute_v2)

	run --separate-stderr "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --dry-run
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[ -z "$stderr" ] || fail "stderr not empty: $stderr"
	[[ $output =~ (^|$'\n')process\ +$DAEMON_PID\ \(counterd\) ]] || fail "no process line: $output"
	[[ $output =~ (^|$'\n')function\ +counterd:compute\ at\ $f\  ]] || fail "no function line at $f: $output"
	[[ $output =~ (^|$'\n')target\ +counterd:compute_v2\ at\ $g\  ]] || fail "no target line at $g: $output"
	local site
	site=$(printf '0x%x' $((f + 4)))
	[[ $output =~ (^|$'\n')site\ +$site\ \(after\ endbr64 ]] || fail "no site after endbr64 at $site: $output"
	# compute starts with `lock add qword ptr [rip + ...], 1` (counting its calls).
	[[ $output =~ (^|$'\n')replaces\ +lock\ add\ qword\ ptr\ \[rip\ \+\ 0x[0-9a-f]+\],\ 1 ]] ||
		fail "no displaced instruction: $output"
	[[ $output =~ $'\n'\ +\[f0\ 48\ 83\ 05\ [0-9a-f]{2}\] ]] || fail "no displaced bytes: $output"
	[[ $output =~ (^|$'\n')writes\ +jmp\ $g($'\n'|$) ]] || fail "no 'writes jmp $g': $output"
	[[ $output =~ \[e9\ ([0-9a-f]{2}\ ){3}[0-9a-f]{2}\] ]] || fail "no jmp rel32 bytes: $output"
	[[ $output =~ (^|$'\n')form\ +jmp\ rel32 ]] || fail "no form line: $output"
	[[ $output =~ dry\ run:\ nothing\ was\ changed ]] || fail "no dry-run notice: $output"
	status_wait_change calls_compute
}

@test "dry run --json on counterd is one object: planned, jmp_rel32 of 5 bytes right after the endbr64" {
	daemon_start counterd "${CD_ARGS[@]}"
	local exe f g
	exe=$(readlink "/proc/$DAEMON_PID/exe")
	f=$(sym_addr "$DAEMON_PID" "$exe" compute)
	g=$(sym_addr "$DAEMON_PID" "$exe" compute_v2)

	run --separate-stderr "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --dry-run --json
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[ -z "$stderr" ] || fail "stderr not empty: $stderr"
	json_check \
		"d['pid'] == $DAEMON_PID" \
		"d['comm'] == 'counterd'" \
		"d['action'] == 'patch'" \
		"d['dry_run'] is True" \
		"d['status'] == 'planned'" \
		"d['function']['symbol'] == 'compute'" \
		"d['function']['object'] == 'counterd'" \
		"d['function']['path'] == '$exe'" \
		"int(d['function']['address'], 16) == $f" \
		"d['function']['offset'] == 0" \
		"d['target']['symbol'] == 'compute_v2'" \
		"int(d['target']['address'], 16) == $g" \
		"len(d['sites']) == 1" \
		"d['sites'][0]['endbr64'] is True" \
		"d['sites'][0]['length'] == 5" \
		"d['sites'][0]['form'] == 'jmp_rel32'" \
		"d['sites'][0]['emulation'] == 'jmp'" \
		"int(d['sites'][0]['emulation_target'], 16) == $g" \
		"int(d['sites'][0]['address'], 16) == int(d['function']['address'], 16) + 4" \
		"len(d['sites'][0]['old_bytes'].split()) == 5" \
		"d['sites'][0]['new_bytes'].split()[0] == 'e9'" \
		"d['sites'][0]['displaced'] != ''" \
		"'transaction' not in d and 'error' not in d" <<<"$output"
	# the rel32 in new_bytes really reaches compute_v2 from the end of the jmp
	json_check "int(''.join(reversed(d['sites'][0]['new_bytes'].split()[1:5])), 16) == (($g - ($f + 4 + 5)) & 0xffffffff)" <<<"$output"
}

@test "dry run on counterd-nopie (no endbr64) puts the site at the function's first byte" {
	daemon_start counterd-nopie "${CD_ARGS[@]}"
	local exe f
	exe=$(readlink "/proc/$DAEMON_PID/exe")
	f=$(sym_addr "$DAEMON_PID" "$exe" compute)

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['function']['object'] == 'counterd-nopie'" \
		"int(d['function']['address'], 16) == $f" \
		"d['sites'][0]['endbr64'] is False" \
		"d['sites'][0]['address'] == d['function']['address']" \
		"d['sites'][0]['length'] == 5" \
		"d['sites'][0]['form'] == 'jmp_rel32'" <<<"$output"

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[[ $output =~ (^|$'\n')site\ +$f, ]] || fail "site is not at $f: $output"
	[[ $output != *endbr64* ]] || fail "mentions an endbr64 that is not there: $output"
}

@test "dry run of libsample.so:compute to libsample.so:compute_v2 in counterd-lib plans in the library" {
	daemon_start counterd-lib "${CD_ARGS[@]}"
	local lib f g
	lib=$(proc_path "$DAEMON_PID" libsample.so)
	[[ -n $lib ]] || fail "libsample.so is not mapped in counterd-lib"
	f=$(sym_addr "$DAEMON_PID" "$lib" compute)
	g=$(sym_addr "$DAEMON_PID" "$lib" compute_v2)

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f libsample.so:compute -t libsample.so:compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['comm'] == 'counterd-lib'" \
		"d['function']['object'] == 'libsample.so'" \
		"d['function']['path'] == '$lib'" \
		"d['function']['symbol'] == 'compute'" \
		"int(d['function']['address'], 16) == $f" \
		"d['target']['object'] == 'libsample.so'" \
		"int(d['target']['address'], 16) == $g" \
		"d['sites'][0]['endbr64'] is True" \
		"int(d['sites'][0]['address'], 16) == $f + 4" \
		"d['sites'][0]['form'] == 'jmp_rel32'" <<<"$output"
	status_wait_change calls_compute
}

@test "dry run accepts the function as 0xADDRESS (taken from a --json dry run) and gives the same plan" {
	daemon_start counterd "${CD_ARGS[@]}"
	local by_name addr g
	run --separate-stderr "$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	by_name=$output
	addr=$(json_get "d['function']['address']" <<<"$by_name")
	g=$(json_get "d['target']['address']" <<<"$by_name")
	[[ $addr == 0x* ]] || fail "bad address '$addr'"

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f "$addr" -t compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['function']['symbol'] == 'compute'" \
		"d['function']['address'] == '$addr'" \
		"d['function']['offset'] == 0" <<<"$output"
	[ "$(json_get "json.dumps(d['sites'], sort_keys=True)" <<<"$output")" = \
		"$(json_get "json.dumps(d['sites'], sort_keys=True)" <<<"$by_name")" ] ||
		fail "the sites differ from the plan by name: $output / $by_name"

	# both sides by address
	run --separate-stderr "$LP" -p "$DAEMON_PID" -f "$addr" -t "$g" -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check "d['status'] == 'planned'" "d['target']['symbol'] == 'compute_v2'" \
		"d['target']['address'] == '$g'" <<<"$output"
}

@test "dry run accepts OBJECT as the full path shown in /proc/PID/maps" {
	daemon_start counterd "${CD_ARGS[@]}"
	local exe
	exe=$(readlink "/proc/$DAEMON_PID/exe")
	[[ $exe == /* ]] || fail "no exe path"

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f "$exe:compute" -t "$exe:compute_v2" -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['function']['object'] == 'counterd'" \
		"d['function']['path'] == '$exe'" \
		"d['function']['symbol'] == 'compute'" \
		"d['target']['symbol'] == 'compute_v2'" <<<"$output"
}

@test "a target more than 2 GiB away gets the 14-byte jmp [rip] form (libc.so.6:getenv to counterd:compute_v2)" {
	# libc is mapped near the top of the address space (0x7f...), the PIE counterd near
	# 0x55..., so a jmp rel32 cannot reach. getenv is a large exported plain function (not
	# an IFUNC) whose first 14 bytes are prologue pushes/sub: no call, no branch back into
	# them, so the analysis accepts it (abs, qsort, fopen are under 14 bytes; atoi, rand,
	# strdup call early). The dry run attaches nothing, so naming libc is harmless.
	daemon_start counterd "${CD_ARGS[@]}"
	local libc f g exe
	exe=$(readlink "/proc/$DAEMON_PID/exe")
	libc=$(proc_path "$DAEMON_PID" libc.so.6)
	f=$(sym_addr "$DAEMON_PID" "$libc" getenv)
	g=$(sym_addr "$DAEMON_PID" "$exe" compute_v2)
	((f - g > 0x7fffffff || g - f > 0x7fffffff)) || fail "libc ($f) within 2 GiB of counterd ($g)"

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f libc.so.6:getenv -t counterd:compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['function']['object'] == 'libc.so.6'" \
		"int(d['function']['address'], 16) == $f" \
		"d['sites'][0]['form'] == 'jmp_abs64'" \
		"d['sites'][0]['length'] == 14" \
		"len(d['sites'][0]['new_bytes'].split()) == 14" \
		"d['sites'][0]['new_bytes'].split()[:6] == ['ff', '25', '00', '00', '00', '00']" \
		"int(''.join(reversed(d['sites'][0]['new_bytes'].split()[6:])), 16) == $g" \
		"int(d['sites'][0]['emulation_target'], 16) == $g" <<<"$output"

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f libc.so.6:getenv -t counterd:compute_v2 -n
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[[ $output =~ (^|$'\n')site\ +0x[0-9a-f]+.*14\ bytes ]] || fail "site is not 14 bytes: $output"
}

@test "a dry run neither attaches to nor writes the process: no ptrace call, text byte-identical, daemon keeps counting" {
	daemon_start counterd "${CD_ARGS[@]}"
	local exe f before after trace=$BATS_TEST_TMPDIR/lp.strace
	exe=$(readlink "/proc/$DAEMON_PID/exe")
	f=$(sym_addr "$DAEMON_PID" "$exe" compute)
	before=$(text_sum "$DAEMON_PID" "$f" 64)

	# strace records every ptrace/process_vm_writev livepatch (and any child) would make,
	# and every open of the daemon's memory.
	run --separate-stderr strace -f -qq -o "$trace" -e trace=ptrace,process_vm_writev,openat \
		"$LP" -p "$DAEMON_PID" -f compute -t compute_v2 -n
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[[ $output == *"dry run"* ]] || fail "no dry-run report: $output"
	[ -s "$trace" ] || fail "strace wrote nothing"
	if grep -E 'ptrace\(|process_vm_writev\(' "$trace"; then
		fail "the dry run called ptrace/process_vm_writev (above)"
	fi
	if grep -E "/proc/$DAEMON_PID/(task/[0-9]+/)?mem\".*O_(WRONLY|RDWR)" "$trace"; then
		fail "the dry run opened the daemon's memory for writing (above)"
	fi
	[[ $(awk '/^TracerPid:/ { print $2 }' "/proc/$DAEMON_PID/status") == 0 ]] || fail "daemon left traced"

	after=$(text_sum "$DAEMON_PID" "$f" 64)
	[ "$before" = "$after" ] || fail "compute's text changed: $before -> $after"
	status_wait_change calls_compute
}

@test "a versioned name resolves: libc.so.6:memcpy@GLIBC_2.2.5 is a plain function, unlike the IFUNC memcpy@@GLIBC_2.14" {
	# On x86-64 glibc, memcpy@@GLIBC_2.14 (the default) is a GNU IFUNC and is refused, while
	# the old memcpy@GLIBC_2.2.5 is an ordinary FUNC (a memmove-compatible implementation):
	# the version name alone decides which definition is planned. Expected address and size
	# come from libc's own .dynsym, so the test follows the installed glibc.
	daemon_start counterd "${CD_ARGS[@]}"
	local libc f size type
	libc=$(proc_path "$DAEMON_PID" libc.so.6)
	# Every x86-64 glibc has it (its first symbol version); another libc is said, and the
	# version rules are then proven by the unit tests on libfixture.so alone.
	if ! type=$(sym_field "$libc" memcpy@GLIBC_2.2.5 4 2>/dev/null) || [[ $type != FUNC ]]; then
		say "$libc has no plain memcpy@GLIBC_2.2.5 (not glibc?): versions are covered by test_resolve on libfixture.so"
		return 0
	fi
	f=$(sym_addr "$DAEMON_PID" "$libc" memcpy@GLIBC_2.2.5)
	size=$(sym_field "$libc" memcpy@GLIBC_2.2.5 3)

	run --separate-stderr "$LP" -p "$DAEMON_PID" -f libc.so.6:memcpy@GLIBC_2.2.5 -t counterd:compute_v2 -n -j
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['function']['object'] == 'libc.so.6'" \
		"d['function']['symbol'].startswith('memcpy')" \
		"int(d['function']['address'], 16) == $f" \
		"d['function']['size'] == $size" <<<"$output"

	# the default version is the IFUNC: a symbol problem, exit 4
	run --separate-stderr "$LP" -p "$DAEMON_PID" -f libc.so.6:memcpy@@GLIBC_2.14 -t counterd:compute_v2 -n
	[ "$status" -eq 4 ] || fail "memcpy@@GLIBC_2.14: exit $status: $output $stderr"
	[[ $stderr == *IFUNC* ]] || fail "no IFUNC in: $stderr"
}

@test "dry run on a running nginx master (stripped, .dynsym only): ngx_http_parse_request_line to ngx_http_parse_status_line is planned" {
	[[ -x /usr/sbin/nginx ]] || fail "nginx is not installed (run make deps: it installs nginx-light)" || return 1
	# Both are exported by Debian's nginx (readelf --dyn-syms -W /usr/sbin/nginx).
	LC_ALL=C readelf --dyn-syms -W /usr/sbin/nginx | grep -q ' FUNC .* ngx_http_parse_request_line$' ||
		{ say "this nginx does not export ngx_http_parse_request_line: .dynsym-only resolution is covered by test_resolve on stripped/libfixture.so"; return 0; }
	nginx_start
	local f before after
	f=$(sym_addr "$NGINX_PID" /usr/sbin/nginx ngx_http_parse_request_line)
	before=$(text_sum "$NGINX_PID" "$f" 64)

	run --separate-stderr "$LP" -p "$NGINX_PID" -f nginx:ngx_http_parse_request_line \
		-t nginx:ngx_http_parse_status_line --dry-run --json
	[ "$status" -eq 0 ] || fail "exit $status: $output $stderr"
	[ -z "$stderr" ] || fail "stderr not empty: $stderr"
	json_check \
		"d['status'] == 'planned'" \
		"d['pid'] == $NGINX_PID" \
		"d['comm'] == 'nginx'" \
		"d['function']['object'] == 'nginx'" \
		"d['function']['path'] == '/usr/sbin/nginx'" \
		"int(d['function']['address'], 16) == $f" \
		"d['target']['symbol'] == 'ngx_http_parse_status_line'" \
		"len(d['sites']) == 1" \
		"d['sites'][0]['form'] == 'jmp_rel32'" \
		"len(d['sites'][0]['displaced']) > 0" <<<"$output"

	after=$(text_sum "$NGINX_PID" "$f" 64)
	[ "$before" = "$after" ] || fail "nginx's text changed"
	run nginx_get
	[[ $output == *livepatch-test* ]] || fail "nginx no longer answers: $output"
}
