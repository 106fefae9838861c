#!/usr/bin/env bats
# kill -9 of livepatch mid-transaction: the target survives it (test/killstress.sh, the
# short run of `make stress`'s kill mode).

load ../lib

setup() {
	need_root
	lp_setup_file
}

@test "kill: 40 SIGKILLs of livepatch at random steps on counterd: it never dies, computes wrong, or keeps an int3 or a torn site" {
	run env LP_KILL_COUNT=40 LP_KILL_DAEMONS=counterd LP_BIN="$LP" "$ROOT/test/killstress.sh"
	echo "$output"
	grep -E '^(counterd|total|  landed)' <<<"$output" >&3 || true
	local line re='^counterd: ([0-9]+) kills \(([0-9]+) landed mid-run\), died ([0-9]+) .*wrong ([0-9]+), torn ([0-9]+), int3-left ([0-9]+),'
	line=$(grep -E '^counterd: ' <<<"$output") || fail "no counterd line in its output"
	[[ $line =~ $re ]] || fail "unexpected line: $line"
	((BASH_REMATCH[1] == 40)) || fail "${BASH_REMATCH[1]} kills, not 40"
	((BASH_REMATCH[2] > 0)) || fail "no kill landed mid-run: nothing was measured"
	((BASH_REMATCH[3] == 0)) || fail "the target died after ${BASH_REMATCH[3]} of the kills"
	((BASH_REMATCH[4] == 0)) || fail "wrong results after ${BASH_REMATCH[4]} of the kills"
	((BASH_REMATCH[5] == 0)) || fail "${BASH_REMATCH[5]} torn sites"
	((BASH_REMATCH[6] == 0)) || fail "${BASH_REMATCH[6]} int3s left at a site"
	((status == 0)) || fail "test/killstress.sh exited $status"
}
