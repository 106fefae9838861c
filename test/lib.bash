# The one helper library of the tests: every .bats file, test/stress.sh and the scripts that
# start daemons source it; each helper is defined here once. Load it from a .bats file with
#   load ../lib        (from a script: source "$ROOT/test/lib.bash")
#
# Variables:
#   ROOT           the repository;  LP  the livepatch binary (LP_BIN overrides it)
#   PY             Debian's python3 (the pyenv shim in PATH costs a bash start per call)
#   LP_BUILD       absolute build directory (default: $ROOT/build)
#   LP_TMP         where daemon files go: $BATS_TEST_TMPDIR, else a mktemp -d directory
#   DAEMON_PID     pid of the daemon started last
#   DAEMON_STATUS  its status file;  DAEMON_READY, DAEMON_LOG: its ready file and output
#   DAEMON_PIDS    every daemon started and not yet stopped (daemon_stop empties it)
#   DAEMON_EXIT    pid -> exit status (128+N for signal N) of the daemons daemon_stop reaped
#   BG_PIDS        background jobs (livepatch runs) lp_teardown kills
#   LP_OUT, LP_ERR, LP_RC, LP_CMD   what the last `lp` printed, its exit status and command
#   KV             the value the last `key` read

# shellcheck disable=SC2034 # DAEMON_*, LP_*, KV are set here for the tests to read
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LP=${LP_BIN:-$ROOT/livepatch}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
if [[ -z ${LP_BUILD:-} ]]; then
	LP_BUILD=$ROOT/build
fi
export LP_BUILD
# Sourcing twice keeps the daemons already started (their cleanup must not be lost).
[[ -n ${DAEMON_PIDS+set} ]] || DAEMON_PIDS=()
[[ -n ${BG_PIDS+set} ]] || BG_PIDS=()
[[ $(declare -p DAEMON_EXIT 2>/dev/null) == "declare -A"* ]] || declare -gA DAEMON_EXIT=()

# fail MESSAGE...: print each MESSAGE on a line of stderr and fail.
fail() {
	printf '%s\n' "$*" >&2
	return 1
}

# say MESSAGE: one line in the test's output, which case of the machine ran ("# ..." in
# bats' TAP, so `make check` keeps it; stderr outside bats).
say() {
	if [[ -n ${BATS_TEST_NAME:-} ]]; then
		echo "# $*" >&3
	else
		echo "$*" >&2
	fi
}

# Sets LP_TMP to the directory for this test's files: $BATS_TEST_TMPDIR, else one mktemp -d per shell.
_lp_tmp_init() {
	if [[ -n ${BATS_TEST_TMPDIR:-} ]]; then
		LP_TMP=$BATS_TEST_TMPDIR
	elif [[ -z ${LP_TMP:-} || ! -d $LP_TMP ]]; then
		LP_TMP=$(mktemp -d /tmp/lp-test.XXXXXX)
	fi
}

# Succeeds when PID exists and is not a zombie.
_lp_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# daemon_start NAME [ARGS...]: start $LP_BUILD/daemons/NAME with --status/--ready in the test
# dir, wait (<= 5 s) for its ready file; sets DAEMON_PID, DAEMON_STATUS, DAEMON_READY, DAEMON_LOG.
daemon_start() {
	local name=$1
	shift
	local bin=$LP_BUILD/daemons/$name tag i=1 pid n=0
	if [[ ! -x $bin ]]; then
		echo "daemon_start: $bin is not built (run: make daemons)" >&2
		return 1
	fi
	_lp_tmp_init
	local tmp=$LP_TMP
	tag=$name
	while [[ -e $tmp/$tag.log ]]; do	# second daemon of the same name in this test
		i=$((i + 1))
		tag=$name.$i
	done
	local status=$tmp/$tag.status ready=$tmp/$tag.ready log=$tmp/$tag.log
	rm -f "$status" "$ready"
	# 3>&-: bats waits for every holder of its fd 3 before finishing the test.
	"$bin" --status "$status" --ready "$ready" "$@" </dev/null >"$log" 2>&1 3>&- &
	pid=$!
	DAEMON_PIDS+=("$pid")
	while [[ ! -s $ready ]]; do
		if ! _lp_alive "$pid"; then
			echo "daemon_start: $name (pid $pid) died before it was ready; its output:" >&2
			cat "$log" >&2
			return 1
		fi
		if ((++n > 500)); then
			echo "daemon_start: $name (pid $pid) not ready after 5 s; its output:" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.01
	done
	DAEMON_PID=$pid
	DAEMON_STATUS=$status
	DAEMON_READY=$ready
	DAEMON_LOG=$log
}

# daemon_start_plain NAME [ARGS...]: start $LP_BUILD/daemons/NAME (e.g. sleep32, no status file)
# and wait (<= 5 s) until it runs that binary; sets DAEMON_PID.
daemon_start_plain() {
	local name=$1
	shift
	local bin=$LP_BUILD/daemons/$name pid n=0
	if [[ ! -x $bin ]]; then
		echo "daemon_start_plain: $bin is not built (run: make daemons)" >&2
		return 1
	fi
	_lp_tmp_init
	"$bin" "$@" </dev/null >>"$LP_TMP/$name.log" 2>&1 3>&- &
	pid=$!
	DAEMON_PIDS+=("$pid")
	until [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(realpath "$bin")" ]]; do
		if ! _lp_alive "$pid" || ((++n > 500)); then
			echo "daemon_start_plain: $name (pid $pid) did not start" >&2
			return 1
		fi
		sleep 0.01
	done
	DAEMON_PID=$pid
}

# status_get KEY [FILE]: print KEY's value from FILE (default $DAEMON_STATUS); fails if missing.
status_get() {
	local key=$1 file=${2:-${DAEMON_STATUS:-}} k v
	if [[ -z $file || ! -r $file ]]; then
		echo "status_get: no status file '${file}'" >&2
		return 1
	fi
	while read -r k v; do
		if [[ $k == "$key" ]]; then
			echo "$v"
			return 0
		fi
	done <"$file"
	echo "status_get: no key '$key' in $file" >&2
	return 1
}

# status_wait_change KEY [FILE]: wait (<= 3 s) until KEY's value changes (the daemon makes progress).
status_wait_change() {
	local key=$1 file=${2:-${DAEMON_STATUS:-}} first now n=0
	first=$(status_get "$key" "$file") || return 1
	while ((n++ < 300)); do
		sleep 0.01
		now=$(status_get "$key" "$file") || return 1
		[[ $now != "$first" ]] && return 0
	done
	echo "status_wait_change: $key stayed at $first for 3 s in $file" >&2
	return 1
}

# status_wait_ge KEY VALUE [FILE] [TIMEOUT_MS]: wait (default <= 5 s) until KEY >= VALUE.
status_wait_ge() {
	local key=$1 want=$2 file=${3:-${DAEMON_STATUS:-}} timeout=${4:-5000} now n=0
	while :; do
		now=$(status_get "$key" "$file") || return 1
		((now >= want)) && return 0
		if ((n >= timeout)); then
			echo "status_wait_ge: $key is $now after ${timeout} ms, wanted >= $want ($file)" >&2
			return 1
		fi
		sleep 0.01
		n=$((n + 10))
	done
}

# daemon_stop: SIGTERM every started daemon and wait (<= 5 s, then SIGKILL and fail); the daemons
# write their final status on the way out. Exit statuses go to DAEMON_EXIT[pid].
daemon_stop() {
	local pid n rc=0 code
	for pid in "${DAEMON_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${DAEMON_PIDS[@]}"; do
		n=0
		while _lp_alive "$pid" && ((n++ < 500)); do
			sleep 0.01
		done
		if _lp_alive "$pid"; then
			echo "daemon_stop: pid $pid still running 5 s after SIGTERM; sent SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			rc=1
		fi
		code=0
		wait "$pid" 2>/dev/null || code=$?	# 127: not our child, status unknown
		DAEMON_EXIT[$pid]=$code
	done
	DAEMON_PIDS=()
	return $rc
}

# text_sum PID ADDR LEN: print the sha256 of LEN bytes at ADDR (hex 0x... or decimal) of PID's memory.
text_sum() {
	local pid=$1 addr=$(($2)) len=$(($3)) f size
	_lp_tmp_init
	f=$(mktemp "$LP_TMP/text_sum.XXXXXX")
	if ! dd if="/proc/$pid/mem" of="$f" bs=4096 iflag=skip_bytes,count_bytes \
		skip="$addr" count="$len" status=none 2>"$f.err"; then
		echo "text_sum: cannot read $len bytes at $2 of pid $pid: $(cat "$f.err")" >&2
		rm -f "$f" "$f.err"
		return 1
	fi
	size=$(stat -c %s "$f")
	if ((size != len)); then
		echo "text_sum: read $size of $len bytes at $2 of pid $pid" >&2
		rm -f "$f" "$f.err"
		return 1
	fi
	sha256sum "$f" | cut -d' ' -f1
	rm -f "$f" "$f.err"
}

# sig_state PID: SigIgn, SigCgt and whether each thread blocks SIGTRAP, for a before/after
# compare of the program's signal state (the other bits of a mask are the program's to
# change meanwhile).
sig_state() {
	grep -h -E '^(SigIgn|SigCgt):' "/proc/$1/status"
	local t m
	for t in /proc/"$1"/task/*; do
		m=$(awk '$1 == "SigBlk:" { print $2 }' "$t/status")
		echo "${t##*/} SIGTRAP blocked: $(((16#${m:-0} >> 4) & 1))"
	done
}

# proc_field PID FIELD: a /proc/PID/status field ("State", "TracerPid", "Tgid"); empty once
# PID is gone.
proc_field() {
	awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null
}

# --- the files of a process ----------------------------------------------------------------

# map_base PID PATH: start address of PATH's mapping at file offset 0 in PID (hex, no 0x).
map_base() {
	awk -v p="$2" '$6 == p && $3 ~ /^0+$/ { split($1, a, "-"); print a[1]; exit }' "/proc/$1/maps"
}

# sym_field PATH SYMBOL N: field N of readelf's row for SYMBOL (2 value, 3 size, 4 type);
# a SYMBOL without a version also matches its default version (SYMBOL@@VER).
sym_field() {
	local out
	out=$(LC_ALL=C readelf -sW "$1" | awk -v s="$2" -v n="$3" '
		$8 == s || (s !~ /@/ && index($8, s "@@") == 1) { print $n; exit }')
	[[ -n $out ]] || fail "sym_field: no symbol $2 in $1" || return 1
	echo "$out"
}

# sym_addr PID PATH SYMBOL: run-time address of SYMBOL (.symtab, else .dynsym; "name@VER"
# picks a version) of the object PATH mapped in PID, as 0x..., computed from the ELF file
# (PATH "exe": PID's executable).
sym_addr() {
	local pid=$1 path=$2 sym=$3 value base=0
	[[ $path != exe ]] || path=$(readlink "/proc/$pid/exe")
	value=$(sym_field "$path" "$sym" 2) || return 1
	if LC_ALL=C readelf -hW "$path" | grep -q 'Type:[[:space:]]*DYN'; then
		base=$(map_base "$pid" "$path")
		[[ -n $base ]] || fail "sym_addr: $path is not mapped in $pid" || return 1
		base=0x$base
	fi
	printf '0x%x\n' $((base + 0x$value))
}

# proc_path PID NAME: the path of the mapped object whose base name is NAME.
proc_path() {
	awk -v n="$2" '$6 ~ "/" n "$" { print $6; exit }' "/proc/$1/maps"
}

# --- JSON ----------------------------------------------------------------------------------
# Three readers: json (bash only, no fork: the first "KEY" of livepatch's one-line output,
# for loops of many runs), json_get (any Python expression) and json_check (assertions).

# json KEY [JSON]: the first "KEY": value (string unquoted) of JSON (default: LP_OUT).
json() {
	local re="\"$1\":(\"[^\"]*\"|[^,}]*)" v
	[[ ${2-$LP_OUT} =~ $re ]] || {
		echo "json: no '$1' in: ${2-$LP_OUT}" >&2
		return 1
	}
	v=${BASH_REMATCH[1]}
	v=${v#\"}
	echo "${v%\"}"
}

# json_get EXPR [FILE]: the value of Python EXPR over the JSON object d of FILE (default:
# stdin); None prints as null, booleans as true/false.
json_get() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin)
v = eval(sys.argv[1])
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$@"
}

# json_check EXPR...: stdin is exactly one JSON object (json.loads refuses trailing data);
# each Python EXPR over it (d; json, os and re imported) must be true.
json_check() {
	"$PY" -c '
import json, os, re, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
except ValueError as e:
    sys.exit("not exactly one JSON value (%s): %r" % (e, text))
if not isinstance(d, dict):
    sys.exit("not a JSON object: %r" % text)
for e in sys.argv[1:]:
    try:
        ok = eval(e)
    except Exception as x:
        ok, e = False, "%s (%r)" % (e, x)
    if not ok:
        sys.exit("false: %s\nin: %s" % (e, text))
' "$@"
}

# --- running livepatch ---------------------------------------------------------------------

# lp_setup_file: the livepatch binary and the test daemons are built (else say what to run).
lp_setup_file() {
	[[ -x $LP ]] || fail "no $LP: run make first" || return 1
	[[ -x $LP_BUILD/daemons/counterd ]] ||
		fail "no daemons in $LP_BUILD/daemons: run make daemons first" || return 1
}

# lp_teardown: kill the background jobs, wake a SIGSTOPped daemon so it sees its SIGTERM,
# stop the daemons.
lp_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	BG_PIDS=()
	for p in "${DAEMON_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
	done
	if ((${#DAEMON_PIDS[@]})); then
		daemon_stop || true
	fi
}

# lp ARGS...: run livepatch ARGS --json under `timeout -k 5 LP_TIMEOUT` (default 60 s: a
# livepatch that ignores the timeout's SIGTERM is killed 5 s later); sets LP_OUT (stdout,
# one JSON object), LP_ERR (stderr), LP_RC (exit status; 124 or 137: it hung) and LP_CMD.
lp() {
	local t=${LP_TIMEOUT:-60}
	_lp_tmp_init
	LP_RC=0
	LP_OUT=$(timeout -k 5 "$t" "$LP" "$@" --json 2>"$LP_TMP/lp.err") || LP_RC=$?
	LP_ERR=$(<"$LP_TMP/lp.err")
	LP_CMD="livepatch $* --json"
	((LP_RC != 124 && LP_RC != 137)) || LP_ERR="HANG: killed after $t s by timeout; $LP_ERR"
}

# expect_rc CODE: the last lp exited with CODE (else show everything it said).
expect_rc() {
	((LP_RC == $1)) && return 0
	fail "$LP_CMD: exit $LP_RC, expected $1" "stdout: $LP_OUT" "stderr: $LP_ERR"
}

# expect_status STATUS: the last lp's JSON status.
expect_status() {
	local s
	s=$(json status) || return 1
	[[ $s == "$1" ]] || fail "$LP_CMD: status '$s', expected '$1'" "stdout: $LP_OUT"
}

# tx KEY: KEY of the "transaction" object of LP_OUT.
tx() {
	local t=${LP_OUT#*\"transaction\":\{}
	[[ $t != "$LP_OUT" ]] || fail "tx: no transaction object in: $LP_OUT" || return 1
	json "$1" "{${t%%\}*}}"
}

# tx_add: add the transaction counters of LP_OUT to TX (one pass, no subshell).
declare -gA TX=()
tx_add() {
	local t=${LP_OUT#*\"transaction\":\{} k re
	[[ $t != "$LP_OUT" ]] || fail "no transaction object in: $LP_OUT" || return 1
	t=${t%%\}*}
	for k in threads syncs thread_stops blocked_left_alone traps_emulated traps_parked \
		traps_late stepouts signals_passed calls_restarted clones forks exits dispositions_restored; do
		re="\"$k\":([0-9]+)"
		[[ $t =~ $re ]] || fail "no $k in the transaction: {$t}" || return 1
		TX[$k]=$((${TX[$k]:-0} + BASH_REMATCH[1]))
	done
}

# patch F [G] [ARGS...]: F -> G (default F_v2) on $DAEMON_PID, expecting exit 0 and
# "applied"; adds the transaction counters to TX.
patch() {
	local f=$1 g=${1}_v2
	shift
	if (($#)) && [[ $1 != -* ]]; then
		g=$1
		shift
	fi
	lp -p "$DAEMON_PID" -f "$f" -t "$g" "$@"
	expect_rc 0 && expect_status applied && tx_add
}

# revert F [ARGS...]: on $DAEMON_PID, expecting exit 0 and "reverted"; adds to TX.
revert() {
	local f=$1
	shift
	lp -p "$DAEMON_PID" -r "$f" "$@"
	expect_rc 0 && expect_status reverted && tx_add
}

# cycles N F G: N x (patch F -> G, revert F), stopping at the first failure.
cycles() {
	local i
	for ((i = 1; i <= $1; i++)); do
		patch "$2" "$3" || fail "cycle $i of $1: patch $2 -> $3 failed" || return 1
		revert "$2" || fail "cycle $i of $1: revert $2 failed" || return 1
	done
}

# fn_addr F [G]: F's address in $DAEMON_PID, from a dry run's JSON.
fn_addr() {
	lp -p "$DAEMON_PID" -f "$1" -t "${2:-$1_v2}" --dry-run
	expect_rc 0 >&2 || return 1
	json address
}

# --- what the daemon counted ---------------------------------------------------------------

# alive: the daemon started last runs (not dead, not a zombie); else fail with its log.
alive() {
	_lp_alive "$DAEMON_PID" || fail "daemon $DAEMON_PID is dead; log: $(tail -c 500 "$DAEMON_LOG")"
}

# untraced [PID]: nobody traces PID (default: the daemon) any more.
untraced() {
	local pid=${1:-$DAEMON_PID} tracer
	tracer=$(proc_field "$pid" TracerPid)
	[[ $tracer == 0 ]] || fail "pid $pid is still traced by '$tracer' after livepatch exited"
}

# expect_key KEY VALUE [FILE]: KEY's value in the status file.
expect_key() {
	local v
	v=$(status_get "$1" "${3:-$DAEMON_STATUS}") || return 1
	[[ $v == "$2" ]] || fail "$1 is $v, expected $2 ($(basename "${3:-$DAEMON_STATUS}"))"
}

# stop_clean [PID]: SIGTERM the daemons, assert PID (default: the daemon) exited 0 and its
# final status says wrong 0.
stop_clean() {
	local pid=${1:-$DAEMON_PID}
	daemon_stop
	[[ ${DAEMON_EXIT[$pid]} == 0 ]] ||
		fail "daemon $pid exited with ${DAEMON_EXIT[$pid]} (128+N: killed by signal N); log: $(tail -c 500 "$DAEMON_LOG")" ||
		return 1
	expect_key wrong 0
}

# nap MS: sleep without a fork: a read with a timeout on a FIFO nobody writes (with hot
# threads on every CPU, each fork of `sleep` or a $(...) waits for a time slice).
nap() {
	local secs f
	if [[ -z ${NAPFD:-} ]]; then
		_lp_tmp_init
		f=$(mktemp -u "$LP_TMP/nap.XXXXXX")
		mkfifo "$f" && exec {NAPFD}<>"$f"
		rm -f "$f"
	fi
	printf -v secs '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
	read -r -t "$secs" -u "$NAPFD" _ || true
}

# key KEY: KV = KEY's value in the daemon's status file, in a few commands and no fork
# (bats traces every command of a test: a loop over the file's lines is slow).
key() {
	local all re="(^|"$'\n'")$1 ([0-9]+)"
	KV=
	read -r -d "" all <"$DAEMON_STATUS" || true	# read fails at the end of the file it read
	[[ $all =~ $re ]] && KV=${BASH_REMATCH[2]}
}

# grows KEY [MS]: KEY rises above its value now within MS (default 5000) ms. Fails naming
# the daemon's death if it died meanwhile.
grows() {
	local v0 t=0 ms=${2:-5000}
	key "$1" || fail "no $1 in $DAEMON_STATUS" || return 1
	v0=$KV
	while ((t < ms)); do
		nap 10
		t=$((t + 10))
		key "$1" && ((KV > v0)) && return 0
		((t % 200)) || alive || return 1
	done
	alive || return 1
	fail "$1 stayed at $v0 for $ms ms"
}

# stays_put MS KEY...: no KEY moves while the daemon's own clock (uptime_ms in its status
# file, rewritten every 20 ms) advances by MS. Two fresh writes come first, so that a call
# already past an entry when livepatch returned is counted before the first read.
stays_put() {
	local ms=$1 k up0 t=0
	local -A a=()
	shift
	grows uptime_ms && grows uptime_ms || return 1
	for k; do
		key "$k" || fail "no $k in $DAEMON_STATUS" || return 1
		a[$k]=$KV
	done
	key uptime_ms
	up0=$KV
	until key uptime_ms && ((KV - up0 >= ms)); do
		nap 10
		((++t % 20)) || alive || return 1
		((t < 500 + ms / 5)) || fail "the daemon's uptime_ms stuck at $KV" || return 1
	done
	for k; do
		key "$k"
		((KV == a[$k])) || fail "$k grew by $((KV - a[$k])) over $ms ms: that function still gets calls"
	done
}

# calls_only NEWKEY OLDKEY...: NEWKEY grows (polled, up to 5 s) and every OLDKEY stays put
# over 300 ms of the daemon's time: the calls reach the new function only.
calls_only() {
	local new=$1
	shift
	stays_put 300 "$@" || return 1
	grows "$new" || fail "$new did not grow: the new function gets no calls"
}

# --- nginx, a real stripped daemon --------------------------------------------------------

# nginx_start: start Debian's nginx (master + 1 worker) on 127.0.0.1 at a free port, all
# files under $LP_TMP/nginx; sets NGINX_PID (master) and NGINX_PORT. The master is
# added to DAEMON_PIDS so that teardown's daemon_stop stops it (SIGTERM: fast shutdown).
nginx_start() {
	local dir n pid
	_lp_tmp_init
	dir=$LP_TMP/nginx
	mkdir -p "$dir"
	for _ in 1 2 3; do
		NGINX_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		cat >"$dir/nginx.conf" <<-EOF
			master_process on;
			worker_processes 1;
			events { worker_connections 64; }
			http {
			    access_log off;
			    client_body_temp_path $dir/body;
			    proxy_temp_path $dir/proxy;
			    fastcgi_temp_path $dir/fastcgi;
			    uwsgi_temp_path $dir/uwsgi;
			    scgi_temp_path $dir/scgi;
			    server {
			        listen 127.0.0.1:$NGINX_PORT;
			        location / { return 200 "livepatch-test\n"; }
			    }
			}
		EOF
		rm -f "$dir/nginx.pid"
		/usr/sbin/nginx -e stderr -p "$dir" -c "$dir/nginx.conf" \
			-g "daemon off; pid $dir/nginx.pid; error_log stderr;" \
			</dev/null >>"$dir/nginx.log" 2>&1 3>&- &
		pid=$!
		DAEMON_PIDS+=("$pid")
		n=0
		while ((n++ < 500)); do
			if [[ -s $dir/nginx.pid ]] && nginx_get >/dev/null 2>&1; then
				NGINX_PID=$pid
				[[ $(<"$dir/nginx.pid") == "$pid" ]] || fail "pid file $(<"$dir/nginx.pid") != $pid"
				return 0
			fi
			_lp_alive "$pid" || break
			sleep 0.01
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		local keep=() p
		for p in "${DAEMON_PIDS[@]}"; do
			[[ $p == "$pid" ]] || keep+=("$p")
		done
		DAEMON_PIDS=("${keep[@]}")
		grep -q 'Address already in use' "$dir/nginx.log" || break
	done
	cat "$dir/nginx.log" >&2
	fail "nginx did not start"
}

# nginx_get: one HTTP GET / on NGINX_PORT; prints the response.
nginx_get() {
	local fd
	exec {fd}<>"/dev/tcp/127.0.0.1/$NGINX_PORT" || return 1
	printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&"$fd"
	timeout 2 cat <&"$fd"
	exec {fd}>&-
}

# --- what this machine and kernel can do ---------------------------------------------------
# A test that depends on one states in one line (say) which case ran; none is skipped.

# need_root: the tests attach with ptrace, read /proc/PID/map_files and load BPF: as another
# user they would fail for that reason alone, so they fail at once saying so.
need_root() {
	((EUID == 0)) || fail "run the integration tests as root: they need ptrace, /proc/PID/map_files and BPF (make check does)"
}

# kernel_runs_32bit: whether this kernel runs i386 programs, found by running one
# (`sleep32 --exit` exits 0 at once): a kernel without CONFIG_IA32_EMULATION, or booted
# with ia32_emulation=off, refuses the exec (ENOEXEC); no file under /proc or /sys says
# which of the two a kernel does. LP_TEST_IA32=off answers no without trying (to test the
# tests' other path on a kernel that does run them).
kernel_runs_32bit() {
	[[ ${LP_TEST_IA32:-} != off ]] && "$LP_BUILD/daemons/sleep32" --exit </dev/null >/dev/null 2>&1 3>&-
}

# yama_scope: Yama's kernel.yama.ptrace_scope (0 without Yama, as here and where it is 0).
yama_scope() {
	local v
	v=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null) || v=0
	echo "${v:-0}"
}

# need_cmd CMD PACKAGE: CMD is installed (test/deps.sh installs PACKAGE, `make check` runs it
# first): a missing tool is a machine not set up, which the tests say rather than skip.
need_cmd() {
	command -v "$1" >/dev/null || fail "$1 is not installed (run make deps: it installs $2)"
}

# --- points of a transaction ---------------------------------------------------------------
# A test that acts in the middle of a transaction (a signal, an exec, a kill) waits for what
# it can see, never for a time: livepatch run with --verbose and LP_FAULT_SLEEP_MS=N logs each
# step and pauses N ms after it (docs/design.md §4). Polling forks nothing: with hot daemon
# threads on every CPU a fork can take longer than a pause.

# cancel_ready LPID: livepatch LPID blocks or catches SIGTERM (bit 15 of SigBlk or SigCgt): a
# SIGINT, SIGTERM or SIGHUP now cancels the transaction instead of killing livepatch.
cancel_ready() {
	local k v blk='' cgt=''
	while read -r k v; do
		case $k in
		SigBlk:) blk=$v ;;
		SigCgt:) cgt=$v ;;
		esac
	done <"/proc/$1/status" 2>/dev/null
	[[ -n $blk && -n $cgt ]] && (((16#$blk | 16#$cgt) & (1 << 14)))
}

# wait_point POINT LPID LOG: poll (<= 10 s) until livepatch LPID, whose --verbose stderr goes
# to the file LOG, reaches POINT:
#   ready   its cancel signals are blocked or caught (cancel_ready): nothing attached yet
#   seized  every thread is attached; sync 0 and its pause come next, nothing written
#   sync0   sync 0 and its pause are done: the int3 is being written
#   sync1   the int3 is written and synced: the tails are being written
#   sync2   the tails are synced: the heads are being written
#   done    LPID has exited
# Fails when LPID ends before POINT.
wait_point() {
	local point=$1 lpid=$2 log=$3 n=0 all re
	case $point in
	seized) re=$'(^|\n)livepatch: \[[0-9. ]+\] seized ' ;;
	sync[0-3]) re=$'(^|\n)livepatch: \[[0-9. ]+\] '"$point: " ;;
	ready | done) ;;
	*) fail "wait_point: no point '$point'" || return 1 ;;
	esac
	while :; do
		case $point in
		ready) cancel_ready "$lpid" && return 0 ;;
		done) kill -0 "$lpid" 2>/dev/null || return 0 ;;
		*)
			all=
			read -r -d "" all <"$log" || true
			[[ $all =~ $re ]] && return 0
			;;
		esac
		[[ $point == "done" ]] || kill -0 "$lpid" 2>/dev/null ||
			fail "livepatch $lpid ended before the point '$point'; its log: $(<"$log")" || return 1
		((++n < 5000)) || fail "livepatch $lpid did not reach '$point' within 10 s" || return 1
		nap 2
	done
}

# kernel_has_btf: --verify's BPF programs need the kernel's BTF (/sys/kernel/btf/vmlinux, from
# CONFIG_DEBUG_INFO_BTF). LP_TEST_BTF=off answers no, and then no_btf hides it.
kernel_has_btf() {
	[[ ${LP_TEST_BTF:-} != off && -r /sys/kernel/btf/vmlinux ]]
}

# no_btf CMD...: CMD in a mount namespace of its own where /sys/kernel/btf is an empty tmpfs
# with LP_TEST_BTF=off (a kernel without BTF, as livepatch sees it); else CMD as it is.
no_btf() {
	if [[ ${LP_TEST_BTF:-} == off ]]; then
		unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$@"' no_btf "$@"
	else
		"$@"
	fi
}

# verify_refused: on a kernel without BTF --verify cannot run: livepatch must refuse it
# (exit 3 naming BTF, nothing written), and the test says so in one line and ends there.
# Use: if ! kernel_has_btf; then verify_refused; return; fi
# shellcheck disable=SC2154 # status, output: set by bats' run
verify_refused() {
	daemon_start counterd --threads 1 || return 1
	run no_btf "$LP" --pid "$DAEMON_PID" --func compute --target compute_v2 --verify=0.3
	((status == 3)) && [[ $output == *"--verify needs kernel BTF"* ]] ||
		fail "no BTF: livepatch --verify exited $status, expected 3 naming BTF: $output" || return 1
	run "$LP" --pid "$DAEMON_PID" --list
	[[ $output == *"0 function(s) differ"* ]] || fail "no BTF: the refused --verify changed code: $output" || return 1
	say "this kernel has no BTF: livepatch refuses --verify (exit 3, nothing written); the verdicts cannot be tested here"
}

# --- loaded patches (--load) ---------------------------------------------------------------

# lp_regions NAME [PID]: how many regions livepatch --load mapped for a patch object of base
# name NAME in PID (default: the daemon): the mappings of "/memfd:livepatch:NAME (deleted)"
# at file offset 0, one per region (its header; text and data follow at other offsets).
lp_regions() {
	local n=0 range perm off dev inode path rest
	while read -r range perm off dev inode path rest; do
		[[ $path == "/memfd:livepatch:$1" && $off =~ ^0+$ ]] && n=$((n + 1))
	done <"/proc/${2:-$DAEMON_PID}/maps"
	echo "$n"
}

# lp_no_region [PID]: no mapping of PID (default: the daemon) is a livepatch memfd.
lp_no_region() {
	local m
	m=$(grep -F 'memfd:livepatch:' "/proc/${1:-$DAEMON_PID}/maps") || return 0
	fail "livepatch regions left in pid ${1:-$DAEMON_PID}: $m"
}

# grows_by KEY N [MS]: KEY rises by N or more within MS (default 5000) ms.
grows_by() {
	local v0 t=0 ms=${3:-5000}
	key "$1" || fail "no $1 in $DAEMON_STATUS" || return 1
	v0=$KV
	while ((t < ms)); do
		nap 10
		t=$((t + 10))
		key "$1" && ((KV >= v0 + $2)) && return 0
		((t % 200)) || alive || return 1
	done
	alive || return 1
	fail "$1 grew by $((KV - v0)) in $ms ms, wanted >= $2"
}

# switched NEWKEY OLDKEY...: every OLDKEY stays put over 200 ms of the daemon's time and
# NEWKEY grows by 200 or more: the calls reach the new code only (calls_only, with a count).
switched() {
	local new=$1
	shift
	stays_put 200 "$@" || return 1
	grows_by "$new" 200 || fail "$new did not grow by 200: the new code gets (almost) no calls"
}

# --- threads by name, and what they are doing (insided: where.bats, safe.bats, unload.bats) --
# From /proc only: no tracer, nothing that wakes a thread.

# tid_of COMM [PID]: the TID of the first thread of PID (default: the daemon) named COMM.
tid_of() {
	local t c
	for t in /proc/"${2:-$DAEMON_PID}"/task/*; do
		read -r c <"$t/comm" 2>/dev/null || continue
		if [[ $c == "$1" ]]; then
			echo "${t##*/}"
			return 0
		fi
	done
	fail "tid_of: no thread named $1 in pid ${2:-$DAEMON_PID}"
}

# task_count [PID]: how many threads PID (default: the daemon) has.
task_count() {
	local t n=0
	for t in /proc/"${1:-$DAEMON_PID}"/task/*; do
		n=$((n + 1))
	done
	echo "$n"
}

# blocked_in TID [PID]: SC = the system call number TID sleeps in (state S or D, its syscall
# file not "running"); fails when it runs or is not in a system call.
blocked_in() {
	local d=/proc/${2:-$DAEMON_PID}/task/$1 line st
	SC=
	read -r line <"$d/stat" 2>/dev/null || return 1
	st=${line##*) }
	[[ ${st:0:1} == [SD] ]] || return 1
	read -r line <"$d/syscall" 2>/dev/null || return 1
	line=${line%% *}
	[[ $line =~ ^[0-9]+$ ]] || return 1
	SC=$line
}

# wait_blocked COMM [NR...]: poll (<= 5 s) until the daemon's thread COMM sleeps in a system
# call (one of the numbers NR, when given: 0 read, 7 poll, 230 clock_nanosleep, 271 ppoll);
# sets TID.
wait_blocked() {
	local comm=$1 n=0 nr
	shift
	TID=$(tid_of "$comm") || return 1
	while :; do
		if blocked_in "$TID"; then
			(($# == 0)) && return 0
			for nr; do
				((SC == nr)) && return 0
			done
		fi
		((++n < 500)) || fail "thread $TID ($comm) not asleep in system call ${*:-any} after 5 s: $(cat "/proc/$DAEMON_PID/task/$TID/syscall" 2>&1)" || return 1
		nap 10
	done
}

# switches TID [PID]: voluntary + involuntary context switches of TID so far. A thread asleep
# in a system call that nobody wakes keeps the same count: livepatch leaves blocked threads
# alone (docs/design.md §5), so the count before and after a run proves it never woke them.
switches() {
	awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }' \
		"/proc/${2:-$DAEMON_PID}/task/$1/status"
}

# sym_file_sum PATH SYMBOL LEN: the sha256 of LEN bytes of SYMBOL (.symtab, else .dynsym) in
# the ELF file PATH (through its PT_LOAD segment): what text_sum must find in memory when the
# process runs the file's code.
sym_file_sum() {
	local value v type o a f s rest off=
	value=$(sym_field "$1" "$2" 2) || return 1
	v=$((0x$value))
	while read -r type o a _ f s rest; do
		if [[ $type == LOAD ]] && ((v >= a && v < a + s)); then
			off=$((v - a + o))
			break
		fi
	done < <(LC_ALL=C readelf -lW "$1")
	[[ -n $off ]] || fail "sym_file_sum: $2 (0x$value) is in no PT_LOAD segment of $1" || return 1
	dd if="$1" bs=4096 iflag=skip_bytes,count_bytes skip="$off" count=$(($3)) status=none |
		sha256sum | cut -d' ' -f1
}

# stack_hits TID LO HI [PID]: how many 8-byte words in [LO, HI) the stack of thread TID of PID
# (default: the daemon) holds, from the stack pointer its syscall file shows (asleep in a
# call, or stopped: -1) up to 64 KiB or the end of that mapping: return addresses, saved
# PCs of signal frames, stale words alike. Read through /proc/PID/mem: no tracer, nothing
# woken.
stack_hits() {
	"$PY" - "${4:-$DAEMON_PID}" "$1" "$(($2))" "$(($3))" <<-'EOF'
		import struct, sys
		pid, tid, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
		sc = open(f"/proc/{pid}/task/{tid}/syscall").read().split()
		if sc[0] == "running":
		    sys.exit(f"thread {tid} runs: no stack pointer to read from")
		sp = int(sc[-2], 16)
		end = sp + 65536
		for l in open(f"/proc/{pid}/maps"):
		    a, b = (int(x, 16) for x in l.split()[0].split("-"))
		    if a <= sp < b:
		        end = min(end, b)
		with open(f"/proc/{pid}/mem", "rb") as m:
		    m.seek(sp)
		    data = m.read(end - sp)
		words = struct.unpack_from(f"<{len(data) // 8}Q", data)
		print(sum(1 for w in words if lo <= w < hi))
	EOF
}

# --- the stress modes (test/stress.sh, test/killstress.sh) ----------------------------------

# The seven functions of stated (docs/design.md §5) that stress patches in one transaction.
STATED_FUNCS=(park sig_park edge_nanosleep edge_read edge_pause inside_nanosleep inside_read)

# every_thread_in STATE PID: poll (<= 2 s) until every thread of PID is in STATE (T: stopped).
every_thread_in() {
	local st=$1 pid=$2 i t ok
	for ((i = 0; i < 400; i++)); do
		ok=1
		for t in /proc/"$pid"/task/*/stat; do
			[[ $(<"$t") =~ \)\ ([A-Za-z]) ]] && [[ ${BASH_REMATCH[1]} == "$st" ]] || { ok=; break; }
		done
		[[ -n $ok ]] && return 0
		sleep 0.005
	done
	return 1
}

# freezer_find [v2]: the cgroup freezer to freeze a daemon with: v1 where mounted (unless
# v2 is asked for), else v2. Sets FREEZER_MNT (empty: none is mounted), FREEZER_VER, and
# FREEZER_FILE, FREEZER_ON, FREEZER_OFF (what to write to freeze and thaw).
freezer_find() {
	FREEZER_MNT=$(awk '$3 == "cgroup" && $4 ~ /(^|,)freezer(,|$)/ { print $2; exit }' /proc/mounts)
	FREEZER_VER=v1 FREEZER_FILE=freezer.state FREEZER_ON=FROZEN FREEZER_OFF=THAWED
	[[ ${1:-} == v2 ]] && FREEZER_MNT=	# the v2 freezer even where v1 is mounted
	if [[ -z $FREEZER_MNT ]]; then
		FREEZER_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
		FREEZER_VER=v2 FREEZER_FILE=cgroup.freeze FREEZER_ON=1 FREEZER_OFF=0
	fi
}

# patch_copy OBJ I: the patch object OBJ (e.g. test/patches/stress.c's) as a new file in
# LP_TMP with I appended: a different sha256 each time, so --load maps a new copy.
patch_copy() {
	local obj
	_lp_tmp_init
	obj=$LP_TMP/$(basename "$1" .o)-$2.o
	cp "$1" "$obj" && printf '%s' "$2" >>"$obj" && chmod 0644 "$obj" && echo "$obj"
}

# mem_bytes PID ADDR LEN: LEN bytes at ADDR of PID's memory as livepatch's JSON writes
# them ("e9 17 00 00 00"); fails when they cannot all be read.
mem_bytes() {
	local out
	out=$(dd if="/proc/$1/mem" bs=4096 iflag=skip_bytes,count_bytes skip=$(($2)) count=$(($3)) \
		status=none 2>/dev/null | od -An -v -tx1) || return 1
	read -r -d '' -a out <<<"$out"
	((${#out[@]} == $3)) || return 1
	echo "${out[*]}"
}
