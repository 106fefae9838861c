#!/usr/bin/env bash
# linked.sh [CONFIG...]: do the fixes of test/patches/ and patchd's checks agree, without
# --load? Each fix object (default: gcc-O0 gcc-O2 clang-O0 clang-O2) is linked INTO a copy
# of patchd (counterd-lib for lib.o), its statics made global with objcopy so the link
# resolves them, and the existing livepatch patches F -> G there. Then, as load.bats
# expects of the loaded patch: the calls move to the fix, its behaviour keys grow, the
# results stay right (wrong 0), and --revert gives the calls back. A failure here is in
# the fixtures or patchd, not in the loader. Needs root, make, make daemons, make patches.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/lib.bash
source "$ROOT/test/lib.bash"
B=$LP_BUILD
((EUID == 0)) || { echo "linked.sh: run as root (ptrace)" >&2; exit 2; }
V=$(mktemp -d /tmp/lp-linked.XXXXXX)
LP_TMP=$V/run
mkdir -p "$V/daemons" "$LP_TMP"
trap 'lp_teardown; rm -rf "$V"' EXIT
(($#)) || set -- gcc-O0 gcc-O2 clang-O0 clang-O2

objcopy --globalize-symbol=parse_header --globalize-symbol=requests_seen \
	--globalize-symbol=bad_request_code "$B/daemons/obj/patchd.o" "$V/patchd.o" || exit 1
cp "$B/daemons/libpatchd.so" "$B/daemons/libsample.so" "$V/daemons/"

# The same table as load.bats' kind(), but G is in the executable here. pinned is left
# out: its point is the loader's binding (here the link picks the program's checksum).
kind() {
	F=handle_request G=handle_request_fixed OLD=calls_old NEW=calls_new BEH=(rejected)
	case $1 in
	static_call) BEH+=(calls_parse_header) ;;
	static_var) BEH+=(requests_seen) ;;
	strings) BEH+=(notes_ok) ;;
	bss) BEH+=(bss_max) ;;
	switch) F=classify G=classify_fixed OLD=calls_classify BEH=(fixed_classify) ;;
	fptrs) F=pick G=pick_fixed OLD=calls_pick BEH=(fixed_pick) ;;
	libc) F=format_id G=format_id_fixed OLD=calls_format_id BEH=(fixed_format) ;;
	lib) F=libsample.so:compute G=counterd-lib:compute_fixed OLD=calls_compute NEW=calls_compute_v2 BEH=() ;;
	esac
}

# one CONFIG KIND: link, start, patch, check, revert, check; prints one line.
one() {
	local c=$1 k=$2 d b
	kind "$k"
	if [[ $k == lib ]]; then
		d=counterd-lib
		cc -pthread -o "$V/daemons/$d" "$B/daemons/obj/counterd-lib.o" "$B/daemons/obj/counterd_asm.o" \
			"$B/daemons/obj/common.o" "$B/patches/$c/lib.o" -L"$V/daemons" -lsample -Wl,-rpath,"$V/daemons"
	else
		d=patchd-$k
		cc -pthread -o "$V/daemons/$d" "$V/patchd.o" "$B/daemons/obj/common.o" "$B/daemons/obj/compute.o" \
			"$B/patches/$c/$k.o" -L"$V/daemons" -lpatchd -Wl,-rpath,"$V/daemons"
	fi || return 1
	LP_BUILD=$V daemon_start "$d" --threads 4 || return 1
	lp -p "$DAEMON_PID" -f "$F" -t "$G" && expect_rc 0 || return 1
	switched "$NEW" "$OLD" || return 1
	for b in "${BEH[@]}"; do
		grows "$b" || return 1
	done
	lp -p "$DAEMON_PID" -r "$F" && expect_rc 0 || return 1
	grows_by "$OLD" 200 && stays_put 200 "$NEW" || return 1
	stop_clean "$DAEMON_PID" || return 1
	[[ $k != bss ]] || expect_key bss_min 1
}

rc=0
for c; do
	for k in static_call static_var strings switch fptrs libc bss lib; do
		if one "$c" "$k"; then
			echo "ok $c/$k.o"
		else
			echo "FAILED $c/$k.o"
			rc=1
			lp_teardown
		fi
	done
done
exit $rc
