# Helpers for the bats tests: start the test daemons (test/daemons/), read their status
# files, stop them, checksum process memory. Source it from a .bats file (bash only):
#   load ../helpers        (or: source "$BATS_TEST_DIRNAME/../helpers.bash")
#
# Variables:
#   LP_BUILD       absolute build directory (default: $BATS_TEST_DIRNAME/../../build)
#   LP_TMP         where daemon files go: $BATS_TEST_TMPDIR, else a mktemp -d directory
#   DAEMON_PID     pid of the daemon started last
#   DAEMON_STATUS  its status file;  DAEMON_READY, DAEMON_LOG: its ready file and output
#   DAEMON_PIDS    every daemon started and not yet stopped (daemon_stop empties it)
#   DAEMON_EXIT    pid -> exit status (128+N for signal N) of the daemons daemon_stop reaped

# shellcheck disable=SC2034 # DAEMON_* are set here for the tests to read
if [[ -z ${LP_BUILD:-} ]]; then
	LP_BUILD=$(realpath -m "${BATS_TEST_DIRNAME:-$(dirname "${BASH_SOURCE[0]}")/integration}/../../build")
fi
export LP_BUILD
# Sourcing twice keeps the daemons already started (their cleanup must not be lost).
[[ -n ${DAEMON_PIDS+set} ]] || DAEMON_PIDS=()
[[ $(declare -p DAEMON_EXIT 2>/dev/null) == "declare -A"* ]] || declare -gA DAEMON_EXIT=()

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
