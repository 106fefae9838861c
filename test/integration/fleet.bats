#!/usr/bin/env bats
# The multi-process mode (issue 18): --all, --all-build-id, --exe, --pid repeated, with
# --exclude, --jobs, --atomic, --canary, --dry-run. Every test asserts on what the daemons
# counted (calls reaching compute, the old code, and compute_v2, the new one), process by
# process, and on the bytes at the site; each one runs its own copies of the daemons
# (its own inodes and GNU build-id, in BATS_TEST_TMPDIR), so that a selection never takes
# in another test's processes, and tests may run in parallel.
# Needs root, `make` and `make daemons` (preforkd, holder). LP_BIN overrides the binary.

bats_require_minimum_version 1.5.0
load ../lib

D=$LP_BUILD/daemons
SCHEMA=$ROOT/schema/livepatch.schema.json
VALIDATE=$ROOT/schema/validate.py
# A livepatch that hangs costs one test 65 s, not the whole file.
# shellcheck disable=SC2034 # lp (lib.bash) reads it
LP_TIMEOUT=60

setup_file() {
	lp_setup_file
	[[ -x $D/preforkd && -x $D/holder ]] || fail "no preforkd or holder in $D: run make daemons"
}

setup() {
	need_root
	# shellcheck disable=SC2034 # lp_teardown (lib.bash) kills them
	BG_PIDS=()
	unset LP_FAULT LP_FAULT_SLEEP_MS LP_KILL_AT
	_lp_tmp_init
	BIN=$LP_TMP/daemons	# the test's own copies (daemon_start runs $LP_BUILD/daemons/NAME)
	mkdir -p "$BIN"
	declare -gA ST=()	# pid -> status file
}

teardown() {
	unhold || true
	lp_teardown
}

# unhold: end holder first (SIGTERM), so that the process it traced is detached before
# daemon_stop's SIGTERM reaches it: a signal-delivery stop whose tracer dies meanwhile may
# lose the signal, and the daemon would not stop.
unhold() {
	local n=0
	[[ -n ${HOLDER:-} ]] || return 0
	kill -TERM "$HOLDER" 2>/dev/null || true
	while _lp_alive "$HOLDER"; do
		((++n < 500)) || fail "holder $HOLDER still runs 5 s after SIGTERM" || return 1
		nap 10
	done
	HOLDER=
}

# --- the daemons of a test -----------------------------------------------------------------

# own_copy NAME: copy $D/NAME to $BIN/NAME with a GNU build-id of its own (20 random bytes
# over the note's descriptor: nothing reads it but the selection); BUILD_ID = its hex.
own_copy() {
	local dst=$BIN/$1 off size
	cp "$D/$1" "$dst" || return 1
	read -r off size < <(LC_ALL=C readelf -SW "$dst" | sed -E 's/^ *\[ *[0-9]+\] *//' |
		awk '$1 == ".note.gnu.build-id" { print $4, $5 }')
	[[ -n $off && $((16#$size)) == 36 ]] ||
		fail "own_copy: $1 has no 20-byte build-id note (offset '$off', size '$size')" || return 1
	head -c 20 /dev/urandom | dd of="$dst" bs=1 seek=$((16#$off + 16)) conv=notrunc status=none
	BUILD_ID=$(build_id "$dst")
	[[ $BUILD_ID =~ ^[0-9a-f]{40}$ && $BUILD_ID != "$(build_id "$D/$1")" ]] ||
		fail "own_copy: the build-id of $dst is '$BUILD_ID'" || return 1
}

# build_id FILE: FILE's GNU build-id in hex, as readelf -n prints it.
build_id() {
	LC_ALL=C readelf -n "$1" | awk '/Build ID:/ { print $3; exit }'
}

# start NAME ARGS...: daemon_start of the test's copy $BIN/NAME; records ST[pid].
start() {
	LP_BUILD=$LP_TMP daemon_start "$@" || return 1
	ST[$DAEMON_PID]=$DAEMON_STATUS
}

# hold PID: start holder on PID (another tracer: TracerPid is set in every thread); HOLDER.
hold() {
	local target=$1 save=$DAEMON_PID save_st=$DAEMON_STATUS save_log=$DAEMON_LOG
	daemon_start holder --pid "$target" || return 1
	HOLDER=$DAEMON_PID
	tracer_of "$target"
	[[ $TP == "$HOLDER" ]] || fail "holder $HOLDER does not trace $target (TracerPid '$TP')" || return 1
	DAEMON_PID=$save DAEMON_STATUS=$save_st DAEMON_LOG=$save_log
}

# ns_start ARGS...: counterd in a PID and mount namespace of its own, running ITS copy of
# the binary from a tmpfs mounted over $BIN there: the same path as $BIN/counterd, the same
# build-id, another file. NS_PID (as seen here), ST[NS_PID].
ns_start() {
	local st=$LP_TMP/ns.status rd=$LP_TMP/ns.ready log=$LP_TMP/ns.log upid n=0
	cp "$BIN/counterd" "$LP_TMP/ns-counterd"
	# shellcheck disable=SC2016 # the script's own $1, $2, $@
	unshare --pid --mount --fork sh -c \
		'dir=$1 src=$2; shift 2; mount -t tmpfs fleet-ns "$dir" && cp "$src" "$dir/counterd" &&
		exec "$dir/counterd" "$@"' \
		ns "$BIN" "$LP_TMP/ns-counterd" --status "$st" --ready "$rd" "$@" \
		</dev/null >"$log" 2>&1 3>&- &
	upid=$!
	until [[ -s $rd ]]; do
		_lp_alive "$upid" || fail "ns_start: unshare died: $(<"$log")" || return 1
		((++n < 500)) || fail "ns_start: not ready after 5 s: $(<"$log")" || return 1
		nap 10
	done
	NS_PID=$(pgrep -P "$upid")
	[[ $NS_PID =~ ^[0-9]+$ ]] || fail "ns_start: no single child of unshare $upid: '$NS_PID'" || return 1
	DAEMON_PIDS+=("$NS_PID" "$upid")	# SIGTERM to the daemon, then to unshare
	ST[$NS_PID]=$st
	# Preconditions of the test: the same path, another inode; another PID namespace.
	[[ $(readlink "/proc/$NS_PID/exe") == "$BIN/counterd" ]] ||
		fail "ns_start: its exe is $(readlink "/proc/$NS_PID/exe"), not $BIN/counterd" || return 1
	[[ $(stat -L -c %d:%i "/proc/$NS_PID/exe") != $(stat -c %d:%i "$BIN/counterd") ]] ||
		fail "ns_start: the namespace runs the same file as the host" || return 1
	[[ $(readlink "/proc/$NS_PID/ns/pid") != $(readlink /proc/self/ns/pid) ]] ||
		fail "ns_start: not in a PID namespace of its own" || return 1
}

# workers_of MASTER: the pids of preforkd MASTER's live workers (children with a status file).
workers_of() {
	local f p line out=()
	for f in "${ST[$1]}".*; do
		p=${f#"${ST[$1]}".}
		[[ $p =~ ^[0-9]+$ ]] || continue
		read -r line <"/proc/$p/stat" 2>/dev/null || continue
		line=${line##*) }
		[[ $line =~ ^[A-Za-z]\ ([0-9]+) && ${BASH_REMATCH[1]} == "$1" && ${line:0:1} != Z ]] &&
			out+=("$p")
	done
	echo "${out[*]}"
}

# prefork_start W: the test's preforkd with W workers: PF (master), WORKERS, ST of each.
prefork_start() {
	local w
	start preforkd --workers "$1" || return 1
	PF=$DAEMON_PID
	read -r -a WORKERS <<<"$(workers_of "$PF")"
	((${#WORKERS[@]} == $1)) || fail "preforkd: ${#WORKERS[@]} workers, expected $1" || return 1
	for w in "${WORKERS[@]}"; do
		ST[$w]=${ST[$PF]}.$w
	done
}

# refork: SIGUSR1 to preforkd PF: its oldest worker is replaced; NEW = the new worker's pid,
# once its first status file is written.
refork() {
	local k0 n=0
	fkey "${ST[$PF]}" killed
	k0=$KV
	kill -USR1 "$PF"
	until fkey "${ST[$PF]}" killed && ((KV > k0)) && fkey "${ST[$PF]}" newest_worker &&
		[[ " ${WORKERS[*]} " != *" $KV "* && -s ${ST[$PF]}.$KV ]]; do
		((++n < 500)) || fail "preforkd $PF did not replace a worker within 5 s" || return 1
		nap 10
	done
	NEW=$KV
	ST[$NEW]=${ST[$PF]}.$NEW
	read -r -a WORKERS <<<"$(workers_of "$PF")"
}

# tracer_of PID: TP = PID's TracerPid (no fork: the polling loops call it often); fails
# when PID is gone.
tracer_of() {
	local all
	TP=
	read -r -d '' all <"/proc/$1/status" 2>/dev/null || true
	[[ $all =~ TracerPid:[[:space:]]+([0-9]+) ]] && TP=${BASH_REMATCH[1]}
}

# traced_by_other PID: PID is traced, by another than holder (livepatch has it seized).
traced_by_other() {
	tracer_of "$1" && [[ $TP != 0 && $TP != "${HOLDER:-}" ]]
}

# --- what they counted ---------------------------------------------------------------------

# fkey FILE KEY: KV = KEY's value in the status file FILE (no fork).
fkey() {
	local all re="(^|"$'\n'")$2 ([0-9]+)"
	KV=
	read -r -d "" all <"$1" 2>/dev/null || true
	[[ $all =~ $re ]] && KV=${BASH_REMATCH[2]}
}

# fresh FILE...: each FILE was rewritten twice since now: a call that had entered a function
# when livepatch returned is counted in it.
fresh() {
	local f u0 t=0 i
	for f; do
		for i in 1 2; do
			fkey "$f" uptime_ms || fail "no uptime_ms in $f" || return 1
			u0=$KV
			until fkey "$f" uptime_ms && ((KV > u0)); do
				((++t < 1000)) || fail "$f: not rewritten for 10 s (the daemon died?)" || return 1
				nap 10
			done
		done
	done
}

# runs NEW OLD PID...: in each process, OLD does not move while its own clock advances by
# 200 ms, and NEW grows: the calls reach NEW's code only.
runs() {
	local new=$1 old=$2 p f t=0
	local -A o=() n=() u=()
	shift 2
	for p; do
		[[ -n ${ST[$p]:-} ]] || fail "runs: no status file for pid $p" || return 1
	done
	for p; do fresh "${ST[$p]}" || return 1; done
	for p; do
		f=${ST[$p]}
		fkey "$f" "$old" && o[$p]=$KV && fkey "$f" "$new" && n[$p]=$KV && fkey "$f" uptime_ms &&
			u[$p]=$KV || fail "runs: cannot read $f" || return 1
	done
	for p; do
		until fkey "${ST[$p]}" uptime_ms && ((KV >= u[$p] + 200)); do
			((++t < 1000)) || fail "pid $p: its clock did not advance 200 ms in 10 s" || return 1
			nap 10
		done
	done
	for p; do
		fkey "${ST[$p]}" "$old"
		((KV == o[$p])) || fail "pid $p: $old grew by $((KV - o[$p])) in 200 ms: its old code still runs ($(basename "${ST[$p]}"))" || return 1
	done
	t=0
	for p; do
		until fkey "${ST[$p]}" "$new" && ((KV > n[$p])); do
			((++t < 500)) || fail "pid $p: $new stayed at ${n[$p]}: no call reaches it ($(basename "${ST[$p]}"))" || return 1
			nap 10
		done
	done
}

# patched PID...: compute's calls reach compute_v2 only; unpatched PID...: compute only.
patched() { runs calls_compute_v2 calls_compute "$@"; }
unpatched() { runs calls_compute calls_compute_v2 "$@"; }

# site_sums PID...: SUM[pid] = sha256 of the 32 bytes at compute in each (bytes_same checks).
declare -gA SUM=() ADDR=()
site_sums() {
	local p
	for p; do
		ADDR[$p]=$(sym_addr "$p" exe compute) && SUM[$p]=$(text_sum "$p" "${ADDR[$p]}" 32) || return 1
	done
}

# bytes_same PID...: compute's bytes are what site_sums read.
bytes_same() {
	local p
	for p; do
		[[ $(text_sum "$p" "${ADDR[$p]}" 32) == "${SUM[$p]}" ]] ||
			fail "pid $p: compute's bytes changed: $(mem_bytes "$p" "${ADDR[$p]}" 16)" || return 1
	done
}

# stop_all PID...: stop every daemon; each PID exited 0 (when it is our child) with wrong 0
# in its last status, and preforkd's workers each exited 0.
stop_all() {
	local p
	unhold || return 1
	daemon_stop || return 1
	for p; do
		[[ ${DAEMON_EXIT[$p]:-127} == 0 || ${DAEMON_EXIT[$p]:-127} == 127 ]] ||
			fail "pid $p exited ${DAEMON_EXIT[$p]}" || return 1
		fkey "${ST[$p]}" wrong
		[[ $KV == 0 ]] || fail "pid $p: wrong is '$KV' in $(basename "${ST[$p]}")" || return 1
		if fkey "${ST[$p]}" worker_bad; then
			[[ $KV == 0 ]] || fail "preforkd $p: $KV workers did not exit 0" || return 1
		fi
	done
}

# --- the multi-process JSON object ---------------------------------------------------------

# fleet: LP_OUT is one multi-process object as the contract has it: keys, one entry per
# process with a known outcome, a report that is the single-process object of that outcome,
# summary counts = the outcomes, summary exit_code = LP_RC = the most severe of the
# processes' codes (1 > 7 > 6 > 5 > 4 > 3 > 2), summary text "N processes: ...". Sets
# OUTCOME, PCODE, PMSG by pid and ORDER (the pids as listed).
declare -gA OUTCOME=() PCODE=() PMSG=()
fleet() {
	local out pid o c m f=$LP_TMP/fleet.json
	printf '%s' "$LP_OUT" >"$f"
	out=$("$PY" - "$LP_RC" "$f" <<-'EOF'
		import collections, json, sys
		rc = int(sys.argv[1])
		text = open(sys.argv[2]).read()
		try:
		    d = json.loads(text)
		except ValueError as e:
		    sys.exit("not exactly one JSON value (%s): %r" % (e, text))
		err = []
		OK = {"planned", "applied", "reverted", "already_applied", "not_patched", "listed",
		      "exited", "not_selected"}
		BAD = {"refused", "rolled_back", "unverified", "failed", "skipped", "undone"}
		RANK = {1: 7, 7: 6, 6: 5, 5: 4, 4: 3, 3: 2, 2: 1}
		if not isinstance(d, dict) or set(d) != {"processes", "summary"}:
		    sys.exit("not {processes, summary}: %s" % text)
		ps, s = d["processes"], d["summary"]
		worst = 0
		for p in ps:
		    if set(p) != {"pid", "comm", "outcome", "exit_code", "message", "report"}:
		        err.append("pid %s: keys %s" % (p.get("pid"), sorted(p)))
		        continue
		    o, c, r = p["outcome"], p["exit_code"], p["report"]
		    if o not in OK | BAD:
		        err.append("pid %d: unknown outcome %r" % (p["pid"], o))
		    if o in {"planned", "applied", "reverted", "already_applied", "not_patched", "listed"}:
		        if c != 0:
		            err.append("pid %d: %s with exit_code %r" % (p["pid"], o, c))
		        if not isinstance(r, dict):
		            err.append("pid %d: %s without a report" % (p["pid"], o))
		        elif o == "listed" and "changed" not in r:
		            err.append("pid %d: listed, the report is not a --list object" % p["pid"])
		        elif o != "listed" and r.get("status") != o:
		            err.append("pid %d: %s, the report's status is %r" % (p["pid"], o, r.get("status")))
		    if o == "refused" and c not in (2, 3, 4, 5):
		        err.append("pid %d: refused with exit_code %r (2..5)" % (p["pid"], c))
		    for out, code in (("rolled_back", 6), ("unverified", 7), ("failed", 1)):
		        if o == out and c != code:
		            err.append("pid %d: %s with exit_code %r, not %d" % (p["pid"], o, c, code))
		    if o in {"refused", "rolled_back", "unverified", "failed"} and not p["message"]:
		        err.append("pid %d: %s without a message" % (p["pid"], o))
		    if o in BAD and RANK.get(c, 0) > RANK.get(worst, 0):
		        worst = c
		counts = dict(collections.Counter(p["outcome"] for p in ps))
		if s.get("processes") != len(ps):
		    err.append("summary.processes %r, %d entries" % (s.get("processes"), len(ps)))
		if s.get("counts") != counts:
		    err.append("summary.counts %r, the entries say %r" % (s.get("counts"), counts))
		if s.get("exit_code") != rc:
		    err.append("summary.exit_code %r, livepatch exited %d" % (s.get("exit_code"), rc))
		if rc != worst:
		    err.append("exit %d, the most severe process code is %d" % (rc, worst))
		# The text: "N processes: 16 applied, 1 refused" (an outcome's name may be
		# written with spaces, "1 process" in the singular).
		t = s.get("text") or ""
		head = "%d process%s: " % (len(ps), "" if len(ps) == 1 else "es")
		if not t.startswith(head) and not (not ps and "no process selected" in t):
		    err.append("summary.text %r does not start with %r" % (t, head))
		for o, n in counts.items():
		    if "%d %s" % (n, o) not in t and "%d %s" % (n, o.replace("_", " ")) not in t:
		        err.append("summary.text %r lacks '%d %s'" % (t, n, o))
		if len({p["pid"] for p in ps}) != len(ps):
		    err.append("a pid is listed twice")
		if err:
		    sys.exit("\n".join(err) + "\nin: " + text)
		for p in ps:
		    print("%d\t%s\t%d\t%s" % (p["pid"], p["outcome"], p["exit_code"],
		                              (p["message"] or "").replace("\n", " ")))
	EOF
	) || fail "$LP_CMD (exit $LP_RC): $out" "stderr: $LP_ERR" || return 1
	OUTCOME=() PCODE=() PMSG=() ORDER=()
	while IFS=$'\t' read -r pid o c m; do
		[[ -n $pid ]] || continue
		OUTCOME[$pid]=$o PCODE[$pid]=$c PMSG[$pid]=$m
		ORDER+=("$pid")
	done <<<"$out"
}

# outcome O PID...: each PID is listed with outcome O.
outcome() {
	local o=$1 p
	shift
	for p; do
		[[ ${OUTCOME[$p]:-absent} == "$o" ]] ||
			fail "$LP_CMD: pid $p is ${OUTCOME[$p]:-absent}, expected $o" "stdout: $LP_OUT" "stderr: $LP_ERR" || return 1
	done
}

# absent PID...: no entry for PID.
absent() {
	local p
	for p; do
		[[ -z ${OUTCOME[$p]:-} ]] || fail "$LP_CMD: pid $p is listed (${OUTCOME[$p]}), it should not be selected" || return 1
	done
}

# listed N: the object has N entries.
listed() {
	((${#ORDER[@]} == $1)) || fail "$LP_CMD: ${#ORDER[@]} processes listed, expected $1: $LP_OUT" || return 1
}

# refused_by_holder PID: PID refused with exit 3, its message naming holder's pid and comm.
refused_by_holder() {
	outcome refused "$1" || return 1
	[[ ${PCODE[$1]} == 3 ]] || fail "pid $1: refused with exit ${PCODE[$1]}, expected 3 (traced)" || return 1
	[[ ${PMSG[$1]} == *"$HOLDER"* && ${PMSG[$1]} == *holder* ]] ||
		fail "pid $1: the message does not name the tracer $HOLDER (holder): ${PMSG[$1]}" || return 1
}

# nsel PID: the namespaced copy: not listed, or listed as not_selected (the contract's
# "maps another file at OBJECT's path"); says which.
nsel() {
	if [[ -z ${OUTCOME[$1]:-} ]]; then
		say "the namespaced copy (same path, another inode) is not listed"
	else
		outcome not_selected "$1" || return 1
		say "the namespaced copy (same path, another inode) is listed as not_selected: ${PMSG[$1]}"
	fi
}

# valid_json [WHAT]: LP_OUT validates against the schema (where.bats does the same).
valid_json() {
	local f=$LP_TMP/out.json out
	printf '%s\n' "$LP_OUT" >"$f"
	out=$("$PY" "$VALIDATE" --schema "$SCHEMA" "$f" 2>&1) ||
		fail "$LP_CMD: the JSON does not validate: $out" "the object: $LP_OUT"
}

# lp_bg ARGS...: livepatch ARGS --json in the background (LPID), as lp would run it;
# lp_wait then sets LP_OUT, LP_ERR, LP_RC and LP_CMD.
lp_bg() {
	timeout -k 5 "$LP_TIMEOUT" "$LP" "$@" --json >"$LP_TMP/bg.out" 2>"$LP_TMP/bg.err" 3>&- &
	LPID=$!
	BG_PIDS+=("$LPID")
	LP_CMD="livepatch $* --json"
}

lp_wait() {
	LP_RC=0
	wait "$LPID" || LP_RC=$?
	BG_PIDS=()
	LP_OUT=$(<"$LP_TMP/bg.out")
	LP_ERR=$(<"$LP_TMP/bg.err")
}

# --- the tests -----------------------------------------------------------------------------

@test "fleet: 16 counterd + a namespaced copy + a traced one + two that exit mid-rollout + preforkd: --all, --exe, --all-build-id select by file; the others untouched; revert" {
	local fleet=() p v1 v2 tr lpid rc=0 txt polls=0 k1='' k2='' pf_all=()
	own_copy counterd
	local hex=$BUILD_ID
	for ((p = 0; p < 16; p++)); do
		start counterd --threads 2
		fleet+=("$DAEMON_PID")
	done
	start counterd --threads 2
	v1=$DAEMON_PID
	start counterd --threads 2
	v2=$DAEMON_PID
	start counterd --threads 2
	tr=$DAEMON_PID
	hold "$tr"
	ns_start --threads 2
	[[ $(build_id "/proc/$NS_PID/exe") == "$hex" ]] || fail "the namespaced copy's build-id differs"
	own_copy preforkd
	prefork_start 3
	pf_all=("$PF" "${WORKERS[@]}")

	# 1. --all PATH, text output, --jobs 1, a pause at each step: v1 is killed while
	# livepatch has it seized, v2 when the first transaction starts (before its turn, or
	# in it if it is the first). Both are "exited", which is no error: exit 0.
	txt=$LP_TMP/all.out
	LP_FAULT_SLEEP_MS=10 timeout -k 5 60 "$LP" --all "$BIN/counterd" --exclude "$tr" \
		-f compute -t compute_v2 --jobs 1 >"$txt" 2>"$LP_TMP/all.err" 3>&- &
	lpid=$!
	BG_PIDS+=("$lpid")
	while [[ -z $k1 ]]; do
		if [[ -z $k2 ]]; then
			for p in "${fleet[@]}" "$v1" "$v2"; do
				traced_by_other "$p" || continue
				kill -KILL "$v2"
				k2=$p
				break
			done
		fi
		if traced_by_other "$v1"; then
			# What the site held when it died: the jump complete (e9), the transaction was
			# over but for the detach, and "applied" is as true as "exited".
			k1=$(mem_bytes "$v1" $(($(sym_addr "$v1" exe compute) + 4)) 1) || k1=gone
			kill -KILL "$v1"
		fi
		kill -0 "$lpid" 2>/dev/null || break
		((++polls < 20000)) || fail "v1 ($v1) was never seen seized by livepatch in 20 s"
		nap 1
	done
	wait "$lpid" || rc=$?
	BG_PIDS=()
	[[ -n $k1 ]] || fail "livepatch ended (exit $rc) before v1 ($v1) was seen seized: $(<"$txt") $(<"$LP_TMP/all.err")"
	say "v2 killed when pid $k2 was seized first$([[ $k2 == "$v2" ]] && echo ' (v2 itself)')"
	((rc == 0)) || fail "--all: exit $rc, expected 0 (applied and exited only): $(<"$txt") $(<"$LP_TMP/all.err")"
	for p in "${fleet[@]}"; do
		grep -qx "pid $p (counterd): applied" "$txt" || fail "no 'pid $p (counterd): applied' line: $(<"$txt")"
	done
	grep -qE "^pid $v2 \(counterd\): exited([: ]|$)" "$txt" || fail "no 'pid $v2 (counterd): exited' line: $(<"$txt")"
	say "v1 killed seized, its site's first byte '$k1': $(grep "^pid $v1 " "$txt")"
	if [[ $k1 == e9 ]]; then
		grep -qE "^pid $v1 \(counterd\): (exited|applied)([: ]|$)" "$txt" || fail "v1, killed after its jump was written: $(grep "^pid $v1 " "$txt")"
	else
		grep -qE "^pid $v1 \(counterd\): exited([: ]|$)" "$txt" || fail "no 'pid $v1 (counterd): exited' line (killed mid-transaction, site byte '$k1'): $(<"$txt")"
	fi
	! grep -qE "^pid ($tr|$PF|${WORKERS[0]}|${WORKERS[1]}|${WORKERS[2]}) " "$txt" ||
		fail "the excluded one or preforkd is listed: $(<"$txt")"
	if grep -q "^pid $NS_PID " "$txt"; then
		grep -qE "^pid $NS_PID \(counterd\): not[_ ]selected([: ]|$)" "$txt" || fail "namespaced copy: $(grep "^pid $NS_PID " "$txt")"
	fi
	tail -n 1 "$txt" | grep -qE '^[0-9]+ processes: ' || fail "the last line is no summary: $(<"$txt")"
	tail -n 1 "$txt" | grep -qE '(16 applied.*2 exited|17 applied.*1 exited)' ||
		fail "summary: $(tail -n 1 "$txt")"
	say "--all summary: $(tail -n 1 "$txt")"
	patched "${fleet[@]}"
	unpatched "$tr" "$NS_PID" "${pf_all[@]}"

	# 2. --exe PATH, JSON: the traced one is refused naming its tracer (exit 3); the rest
	# already applied; the namespaced copy is another file.
	lp --exe "$BIN/counterd" -f compute -t compute_v2
	expect_rc 3
	fleet
	outcome already_applied "${fleet[@]}"
	refused_by_holder "$tr"
	absent "$v1" "$v2" "${pf_all[@]}"
	nsel "$NS_PID"
	unpatched "$tr" "$NS_PID"

	# 3. --all-build-id: every copy, the namespaced one included.
	lp --all-build-id "$hex" --exclude "$tr" -f compute -t compute_v2
	expect_rc 0
	fleet
	outcome applied "$NS_PID"
	outcome already_applied "${fleet[@]}"
	absent "$tr" "$v1" "$v2" "${pf_all[@]}"
	listed 17
	patched "$NS_PID" "${fleet[@]}"
	unpatched "$tr" "${pf_all[@]}"

	# 4. revert over the same selection, the traced one in it: refused, the rest reverted.
	lp --all-build-id "$hex" --revert compute
	expect_rc 3
	fleet
	outcome reverted "$NS_PID" "${fleet[@]}"
	refused_by_holder "$tr"
	listed 18
	unpatched "$NS_PID" "$tr" "${fleet[@]}" "${pf_all[@]}"
	stop_all "${fleet[@]}" "$tr" "$NS_PID" "$PF"
}

@test "preforkd: --exe patches the master and every worker; a worker forked after the patch runs the new code from its first call; revert, and the next fork runs the old code" {
	local w before
	own_copy preforkd
	prefork_start 3
	lp --exe "$BIN/preforkd" -f compute -t compute_v2
	expect_rc 0
	fleet
	listed 4
	outcome applied "$PF" "${WORKERS[@]}"
	patched "$PF" "${WORKERS[@]}"

	before=("${WORKERS[@]}")
	refork
	local kept=0
	for w in "${before[@]}"; do
		[[ " ${WORKERS[*]} " == *" $w "* ]] && kept=$((kept + 1))
	done
	((kept == 2 && ${#WORKERS[@]} == 3)) && [[ " ${WORKERS[*]} " == *" $NEW "* ]] ||
		fail "after SIGUSR1: workers ${WORKERS[*]} (new $NEW), before ${before[*]}: not one replaced"
	fkey "${ST[$NEW]}" calls_compute
	[[ $KV == 0 ]] || fail "new worker $NEW: its first status counts $KV calls to the old compute"
	patched "$NEW"
	fkey "${ST[$NEW]}" calls_compute
	[[ $KV == 0 ]] || fail "new worker $NEW (forked after the patch) called the old compute $KV times"

	lp --exe "$BIN/preforkd" --revert compute
	expect_rc 0
	fleet
	listed 4
	outcome reverted "$PF" "${WORKERS[@]}"
	unpatched "$PF" "${WORKERS[@]}"

	refork
	unpatched "$NEW"
	fkey "${ST[$NEW]}" calls_compute_v2
	[[ $KV == 0 ]] || fail "new worker $NEW (forked after the revert) called compute_v2 $KV times"
	for w in "${WORKERS[@]}"; do
		fkey "${ST[$w]}" wrong
		[[ $KV == 0 ]] || fail "worker $w: wrong $KV"
	done
	stop_all "$PF"
}

@test "--dry-run over a selection writes nothing: planned, already_applied, a re-point planned, the traced one and foreign bytes refused with reasons" {
	local a b tr ap rp fx addr
	own_copy counterd
	start counterd --threads 2
	a=$DAEMON_PID
	start counterd --threads 2
	b=$DAEMON_PID
	start counterd --threads 2
	tr=$DAEMON_PID
	start counterd --threads 2
	ap=$DAEMON_PID
	lp -p "$ap" -f compute -t compute_v2	# already applied
	expect_rc 0
	start counterd --threads 2
	rp=$DAEMON_PID
	lp -p "$rp" -f compute -t compute_slow_v2	# a jump livepatch wrote, elsewhere
	expect_rc 0
	start counterd --idle --threads 1
	fx=$DAEMON_PID
	# Another tool's bytes at fx's site (a 5-byte nop; its threads never call compute).
	addr=$(sym_addr "$fx" exe compute)
	[[ $(mem_bytes "$fx" $((addr + 4)) 4) == "f0 48 83 05" ]] || fail "fx: compute+4 is $(mem_bytes "$fx" $((addr + 4)) 4)"
	printf '\x0f\x1f\x44\x00\x00' | dd of="/proc/$fx/mem" bs=1 seek=$((addr + 4)) conv=notrunc status=none
	hold "$tr"
	site_sums "$a" "$b" "$tr" "$ap" "$rp" "$fx"

	lp --all "$BIN/counterd" -f compute -t compute_v2 --dry-run
	expect_rc 5	# 5 (foreign bytes) ranks above 3 (traced)
	fleet
	listed 6
	outcome planned "$a" "$b" "$rp"
	outcome already_applied "$ap"
	refused_by_holder "$tr"
	outcome refused "$fx"
	[[ ${PCODE[$fx]} == 5 ]] || fail "foreign bytes: exit ${PCODE[$fx]}, expected 5"
	[[ ${PMSG[$fx]} == *differ* ]] || fail "foreign bytes: the reason does not say the bytes differ: ${PMSG[$fx]}"
	json_check "all(p['report']['dry_run'] for p in d['processes'] if p['outcome'] == 'planned')" <<<"$LP_OUT"

	# The text form: one line per process and the summary.
	run --separate-stderr timeout -k 5 60 "$LP" --all "$BIN/counterd" -f compute -t compute_v2 --dry-run
	((status == 5)) || fail "text dry run: exit $status: $output $stderr"
	grep -qx "pid $a (counterd): planned" <<<"$output" || fail "text: no planned line for $a: $output"
	grep -qE "^pid $tr \(counterd\): refused \(exit 3\): .*$HOLDER.*holder" <<<"$output" ||
		fail "text: no refused (exit 3) line naming holder for $tr: $output"
	grep -qE "^pid $fx \(counterd\): refused \(exit 5\): " <<<"$output" || fail "text: no refused (exit 5) line for $fx: $output"
	[[ $(tail -n 1 <<<"$output") =~ ^6\ processes:\  ]] || fail "text: summary: $(tail -n 1 <<<"$output")"

	bytes_same "$a" "$b" "$tr" "$ap" "$rp" "$fx"
	for p in "$a" "$b" "$ap" "$rp" "$fx"; do
		untraced "$p"
	done
	tracer_of "$tr"
	[[ $TP == "$HOLDER" ]] || fail "tr is traced by '$TP', not holder $HOLDER"
	unpatched "$a" "$b" "$tr"
	patched "$ap"
	runs calls_compute_slow_v2 calls_compute "$rp"
	stop_all "$a" "$b" "$tr" "$ap" "$rp" "$fx"
}

@test "--atomic: a traced process among five: refused, no other ends patched (undone or skipped), exit as ranked" {
	local c=() p tr
	own_copy counterd
	for p in 1 2 3 4; do
		start counterd --threads 2
		c+=("$DAEMON_PID")
	done
	start counterd --threads 2
	tr=$DAEMON_PID
	hold "$tr"
	site_sums "${c[@]}" "$tr"
	lp --all "$BIN/counterd" -f compute -t compute_v2 --atomic --jobs 1
	((LP_RC != 0)) || fail "--atomic with a refused process: exit 0: $LP_OUT"
	fleet
	listed 5
	refused_by_holder "$tr"
	local undone=0 skipped=0
	for p in "${c[@]}"; do
		case ${OUTCOME[$p]} in
		undone) undone=$((undone + 1)) ;;
		skipped) skipped=$((skipped + 1)) ;;
		*) fail "--atomic: pid $p is ${OUTCOME[$p]}, expected undone or skipped: $LP_OUT" ;;
		esac
	done
	say "--atomic, a traced one: exit $LP_RC, $undone undone, $skipped skipped"
	bytes_same "${c[@]}" "$tr"
	unpatched "${c[@]}" "$tr"
	stop_all "${c[@]}" "$tr"
}

# A failure during the writes (LP_FAULT=sync1 in the third process's transaction only,
# --jobs 1 in --pid order): the two already patched are reverted (undone), the last one
# never starts, and every process computes with the old code again.
@test "--atomic: the third of four fails mid-transaction: the two patched before it are undone, the fourth skipped" {
	local c=() p
	own_copy counterd
	for p in 1 2 3 4; do
		start counterd --threads 2
		c+=("$DAEMON_PID")
	done
	site_sums "${c[@]}"
	LP_FAULT=sync1 LP_FAULT_PID=${c[2]} lp --pid "${c[0]}" --pid "${c[1]}" --pid "${c[2]}" \
		--pid "${c[3]}" -f compute -t compute_v2 --atomic --jobs 1
	((LP_RC == 6)) || fail "expected exit 6 (the third rolled back), got $LP_RC: $LP_OUT"
	fleet
	listed 4
	outcome undone "${c[0]}" && outcome undone "${c[1]}" && outcome rolled_back "${c[2]}" &&
		outcome skipped "${c[3]}" || return 1
	bytes_same "${c[@]}"
	unpatched "${c[@]}"
	stop_all "${c[@]}"
}

@test "--canary 2: two processes patched and verified first, the other two only after the window" {
	if ! kernel_has_btf; then
		verify_refused
		return
	fi
	local c=() p lpid last first vs=()
	local -A seen=()
	own_copy counterd
	for p in 1 2 3 4; do
		start counterd --threads 2
		c+=("$DAEMON_PID")
	done
	# When each process is first seen calling compute_v2 (wall clock, us), while livepatch runs.
	lp_bg --all "$BIN/counterd" -f compute -t compute_v2 --canary 2
	while kill -0 "$LPID" 2>/dev/null; do
		for p in "${c[@]}"; do
			[[ -z ${seen[$p]:-} ]] && fkey "${ST[$p]}" calls_compute_v2 && ((KV > 0)) &&
				seen[$p]=${EPOCHREALTIME/./}
		done
		nap 5
	done
	lp_wait
	expect_rc 0
	fleet
	listed 4
	outcome applied "${c[@]}"
	# The canaries: the two whose report has a verify verdict, pass; the others none.
	read -r -a vs <<<"$(json_get '" ".join(str(p["pid"]) for p in d["processes"] if "verify" in p["report"])' <<<"$LP_OUT")"
	((${#vs[@]} == 2)) || fail "${#vs[@]} reports with a verify section, expected the 2 canaries: $LP_OUT"
	json_check 'all(p["report"]["verify"]["verdict"] == "pass" for p in d["processes"] if "verify" in p["report"])' <<<"$LP_OUT"
	# The last one may be patched just before livepatch ends, its status not yet rewritten.
	for p in "${c[@]}"; do
		[[ -n ${seen[$p]:-} ]] && continue
		fresh "${ST[$p]}" && fkey "${ST[$p]}" calls_compute_v2 && ((KV > 0)) ||
			fail "pid $p does not call compute_v2 after livepatch ended"
		seen[$p]=${EPOCHREALTIME/./}
	done
	last=0 first=
	for p in "${c[@]}"; do
		if [[ " ${vs[*]} " == *" $p "* ]]; then
			((seen[$p] > last)) && last=${seen[$p]}
		elif [[ -z $first ]] || ((seen[$p] < first)); then
			first=${seen[$p]}
		fi
	done
	# A status file is rewritten every 20 ms but may lag on a busy machine: the order is
	# what is asserted (the window gives 1 s of margin), the gap is only said.
	say "--canary 2: the first of the rest called compute_v2 $(((first - last) / 1000)) ms after the last canary"
	((first > last)) ||
		fail "a process besides the canaries ran compute_v2 $(((last - first) / 1000)) ms before the last canary did"
	patched "${c[@]}"
	stop_all "${c[@]}"
}

@test "--canary 2 over an idle fleet: the canaries are unverified (exit 7), the rest skipped and untouched" {
	if ! kernel_has_btf; then
		verify_refused
		return
	fi
	local c=() p canaries=() rest=()
	own_copy counterd
	for p in 1 2 3 4; do
		start counterd --idle --threads 1
		c+=("$DAEMON_PID")
	done
	site_sums "${c[@]}"
	lp --all "$BIN/counterd" -f compute -t compute_v2 --canary 2 --verify=0.3
	expect_rc 7
	fleet
	listed 4
	for p in "${c[@]}"; do
		case ${OUTCOME[$p]} in
		unverified) canaries+=("$p") ;;
		skipped) rest+=("$p") ;;
		*) fail "pid $p is ${OUTCOME[$p]}: expected unverified (a canary) or skipped: $LP_OUT" ;;
		esac
	done
	((${#canaries[@]} == 2 && ${#rest[@]} == 2)) || fail "${#canaries[@]} unverified, ${#rest[@]} skipped: expected 2 and 2"
	bytes_same "${rest[@]}"
	for p in "${rest[@]}"; do
		untraced "$p"
	done
	local kept=0
	for p in "${canaries[@]}"; do
		[[ $(text_sum "$p" "${ADDR[$p]}" 32) != "${SUM[$p]}" ]] && kept=$((kept + 1))
	done
	say "--canary, idle fleet: the 2 unverified canaries were left $( ((kept == 2)) && echo patched || echo "unpatched ($kept of 2 patched)")"
	stop_all "${c[@]}"
}

@test "--pid A --pid B: a selection of two; --exclude; --list; revert with one not patched" {
	local a b c
	own_copy counterd
	start counterd --threads 2
	a=$DAEMON_PID
	start counterd --threads 2
	b=$DAEMON_PID
	start counterd --threads 2
	c=$DAEMON_PID
	lp -p "$a" --pid "$b" -f compute -t compute_v2
	expect_rc 0
	fleet
	listed 2
	outcome applied "$a" "$b"
	patched "$a" "$b"
	unpatched "$c"

	lp -p "$a" -p "$b" -p "$c" --exclude "$c" --list
	expect_rc 0
	fleet
	listed 2
	outcome listed "$a" "$b"
	json_check 'all([x["symbol"] for x in p["report"]["changed"]] == ["compute"] for p in d["processes"])' <<<"$LP_OUT"

	lp -p "$a" -p "$b" -p "$c" --revert compute
	expect_rc 0
	fleet
	listed 3
	outcome reverted "$a" "$b"
	outcome not_patched "$c"
	unpatched "$a" "$b" "$c"
	stop_all "$a" "$b" "$c"
}

@test "selections that match nothing: an unmapped file, an empty intersection: 'no process selected', exit 0" {
	local a
	own_copy counterd
	local hex=$BUILD_ID
	start counterd --threads 2
	a=$DAEMON_PID
	own_copy preforkd	# mapped by no process
	run --separate-stderr timeout -k 5 60 "$LP" --all "$BIN/preforkd" -f compute -t compute_v2
	((status == 0)) || fail "--all of an unmapped file: exit $status: $output $stderr"
	[[ $output == "no process selected (nothing to do)" ]] || fail "--all of an unmapped file said: $output"
	run --separate-stderr timeout -k 5 60 "$LP" --exe "$BIN/counterd" --all-build-id "$BUILD_ID" -f compute -t compute_v2
	((status == 0)) || fail "an empty intersection: exit $status: $output $stderr"
	[[ $output == "no process selected (nothing to do)" ]] || fail "an empty intersection said: $output"
	# The intersection that does match: --exe and --all-build-id of the same file.
	lp --exe "$BIN/counterd" --all-build-id "$hex" --all "$BIN/counterd" -f compute -t compute_v2 --dry-run
	expect_rc 0
	fleet
	listed 1
	outcome planned "$a"
	unpatched "$a"
	stop_all "$a"
}

# shellcheck disable=SC2030,SC2031 # status, output, stderr: set by bats' run, read here
# usage EXPECT ARGS...: livepatch ARGS exits 2 with one line on stderr naming EXPECT
# (a fragment, case-insensitive; empty: any), nothing on stdout.
usage() {
	local want=$1
	shift
	run --separate-stderr timeout -k 5 30 "$LP" "$@" </dev/null
	((status == 2)) || fail "livepatch $*: exit $status, expected 2 (usage); stdout: $output; stderr: $stderr" || return 1
	[[ -z $output ]] || fail "livepatch $*: a usage error printed on stdout: $output" || return 1
	[[ -n $stderr && $stderr != *$'\n'* ]] || fail "livepatch $*: stderr is not one line: $stderr" || return 1
	[[ -z $want || ${stderr,,} == *"${want,,}"* ]] || fail "livepatch $*: the error does not name '$want': $stderr" || return 1
	USAGE_LINES+=("$stderr")
}

@test "usage errors of the multi-process mode: one line, exit 2, no process touched" {
	local a b
	USAGE_LINES=()
	own_copy counterd
	start counterd --threads 2
	a=$DAEMON_PID
	start counterd --threads 2
	b=$DAEMON_PID
	site_sums "$a" "$b"
	local F=(-f compute -t compute_v2) ALL=(--all "$BIN/counterd")
	usage atomic -p "$a" "${F[@]}" --atomic
	usage canary -p "$a" "${F[@]}" --canary 1
	usage exclude -p "$a" "${F[@]}" --exclude "$b"
	usage jobs -p "$a" "${F[@]}" --jobs 2
	usage canary "${ALL[@]}" "${F[@]}" --canary 1 --dry-run
	usage "" "${ALL[@]}" --plan -
	usage "$LP_TMP/nonexistent" --all "$LP_TMP/nonexistent" "${F[@]}"
	usage where "${ALL[@]}" --where compute
	usage symbols "${ALL[@]}" --symbols
	usage where -p "$a" -p "$b" --where compute
	usage "" "${ALL[@]}" -p "$a" "${F[@]}"
	usage "" --exe "$BIN/counterd" -p "$a" "${F[@]}"
	usage "" --all-build-id "$BUILD_ID" -p "$a" "${F[@]}"
	usage jobs "${ALL[@]}" "${F[@]}" --jobs 0
	usage jobs "${ALL[@]}" "${F[@]}" --jobs 257
	# --plan - with a plan on stdin (it must not be read).
	run --separate-stderr bash -c 'printf "compute compute_v2\n" | timeout -k 5 30 "$@"' _ "$LP" "${ALL[@]}" --plan -
	((status == 2)) || fail "--plan - in multi mode, with a plan on stdin: exit $status: $output $stderr"
	# In JSON mode, the same error is one JSON error object with code 2.
	lp -p "$a" "${F[@]}" --atomic
	expect_rc 2
	json_check 'd["error"]["code"] == 2' <<<"$LP_OUT"
	local l
	for l in "${USAGE_LINES[@]}"; do
		say "$l"
	done
	bytes_same "$a" "$b"
	untraced "$a"
	untraced "$b"
	unpatched "$a" "$b"
	stop_all "$a" "$b"
}

@test "--json of the multi-process mode validates against the schema; each report validates as a single-process object" {
	local a b tr f nrep=0 i
	own_copy counterd
	start counterd --threads 2
	a=$DAEMON_PID
	start counterd --threads 2
	b=$DAEMON_PID
	start counterd --threads 2
	tr=$DAEMON_PID
	hold "$tr"
	local outs=()
	lp --all "$BIN/counterd" -f compute -t compute_v2 --dry-run	# planned, refused
	outs+=("$LP_OUT")
	lp --all "$BIN/counterd" --exclude "$tr" -f compute -t compute_v2	# applied
	outs+=("$LP_OUT")
	lp --all "$BIN/counterd" --exclude "$tr" --list	# listed
	outs+=("$LP_OUT")
	lp --all "$BIN/counterd" -f compute -t compute_v2 --atomic	# refused, undone/skipped, already_applied?
	outs+=("$LP_OUT")
	lp -p "$a" -p "$b" -p "$tr" --revert compute	# reverted, refused
	outs+=("$LP_OUT")
	own_copy preforkd
	lp --all "$BIN/preforkd" -f compute -t compute_v2	# no process
	outs+=("$LP_OUT")
	# The reports first: they are today's objects, and the schema has them.
	for ((i = 0; i < ${#outs[@]}; i++)); do
		while read -r f; do
			[[ -n $f ]] || continue
			nrep=$((nrep + 1))
			printf '%s\n' "$f" >"$LP_TMP/report.$nrep.json"
			"$PY" "$VALIDATE" --schema "$SCHEMA" "$LP_TMP/report.$nrep.json" >"$LP_TMP/v.out" 2>&1 ||
				fail "a per-process report does not validate: $(<"$LP_TMP/v.out")" "the report: $f"
		done < <(json_get '"\n".join(json.dumps(p["report"]) for p in d.get("processes", []) if p["report"] is not None)' <<<"${outs[i]}")
	done
	say "$nrep per-process reports validate as single-process objects"
	for ((i = 0; i < ${#outs[@]}; i++)); do
		LP_OUT=${outs[i]} LP_CMD="output $((i + 1)) of ${#outs[@]}" valid_json
	done
	unpatched "$a" "$b" "$tr"
	stop_all "$a" "$b" "$tr"
}
