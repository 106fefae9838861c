#!/usr/bin/env bats
# The audit trail (docs/design.md §10, man page AUDIT): every transaction is one syslog
# record of key=value fields: who ran it, the process, each site with its old and new bytes,
# the patches loaded and unloaded, the result and the exit code; read-only runs log nothing;
# without syslog the patch works all the same and -v says so. Each test gives livepatch a
# syslog of its own: a private mount namespace whose /dev is a tmpfs holding the usual
# device nodes (bind-mounted) and a `log` that leads to a socket this test listens on, so the
# machine's /dev/log (there or not, journald running or not) is never used nor needed. The
# listener writes each datagram as a line. Each record is read back and checked against what
# livepatch --json reported and what /proc/PID/mem holds.
# Needs root (ptrace, mount namespaces), `make`, `make daemons` and `make patches`. LP_BIN
# overrides livepatch.

# SC2154: stderr, stderr_lines are set by bats' run --separate-stderr. SC2034: BG_PIDS, TX and
# LP are read by lib.bash.
# shellcheck disable=SC2154,SC2034

bats_require_minimum_version 1.5.0
load ../lib

LP_REAL=$LP

setup_file() {
	lp_setup_file
	need_cmd unshare util-linux
	need_cmd readelf binutils
}

setup() {
	need_root
	BG_PIDS=()
	TX=()
	LOGSOCK=$BATS_TEST_TMPDIR/log.sock
	LOGOUT=$BATS_TEST_TMPDIR/syslog.txt
	LP_LOG=$BATS_TEST_TMPDIR/lp-log
	LP_NOLOG=$BATS_TEST_TMPDIR/lp-nolog
	private_dev "$LP_LOG" "$LOGSOCK"
	private_dev "$LP_NOLOG" ""
	LP=$LP_LOG
}

teardown() {
	lp_teardown
}

# --- helpers of this file ------------------------------------------------------------------

# private_dev SCRIPT SOCK: write SCRIPT, which runs livepatch with its arguments in a mount
# namespace of its own where /dev is a fresh tmpfs with null, zero, full, random, urandom and
# tty bind-mounted from the real /dev, fd/stdin/stdout/stderr links, and (SOCK not empty) a
# link `log` to SOCK; without SOCK there is no /dev/log at all. Nothing is created in the real
# /dev: the tmpfs and its bind mounts exist in the namespace only and go with it.
private_dev() {
	local dir=$BATS_TEST_TMPDIR/dev.${1##*/}
	mkdir -p "$dir"
	cat >"$1" <<-EOF
		#!/bin/bash
		exec unshare --mount --propagation private bash -c '
		set -e
		dir=\$1 sock=\$2 lp=\$3
		shift 3
		mount -t tmpfs -o mode=755 lp-test-dev "\$dir"
		for n in null zero full random urandom tty; do
			[[ -e /dev/\$n ]] || continue
			: >"\$dir/\$n"
			mount --bind "/dev/\$n" "\$dir/\$n"
		done
		ln -s /proc/self/fd "\$dir/fd"
		ln -s fd/0 "\$dir/stdin"
		ln -s fd/1 "\$dir/stdout"
		ln -s fd/2 "\$dir/stderr"
		[[ -z \$sock ]] || ln -s "\$sock" "\$dir/log"
		mount --rbind "\$dir" /dev
		exec "\$lp" "\$@"' private-dev "$dir" "$2" "$LP_REAL" "\$@"
	EOF
	chmod 755 "$1"
}

# syslog_start: a syslog daemon of this test on LOGSOCK (a datagram socket, as /dev/log
# is): each datagram becomes one line of LOGOUT, a newline in it written as \n.
syslog_start() {
	local n=0
	rm -f "$LOGSOCK" "$LOGOUT"
	cat >"$BATS_TEST_TMPDIR/syslogd.py" <<-'EOF'
		import socket, sys
		s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		s.bind(sys.argv[1])
		out = open(sys.argv[2], "ab", buffering=0)
		while True:
		    d = s.recv(1 << 20)
		    out.write(d.replace(b"\n", b"\\n") + b"\n")
	EOF
	"$PY" "$BATS_TEST_TMPDIR/syslogd.py" "$LOGSOCK" "$LOGOUT" </dev/null >/dev/null \
		2>"$BATS_TEST_TMPDIR/syslog.err" 3>&- &
	BG_PIDS+=("$!")
	until [[ -S $LOGSOCK && -e $LOGOUT ]]; do
		((n++ < 500)) || fail "the test's syslog did not start: $(cat "$BATS_TEST_TMPDIR/syslog.err")" || return 1
		nap 10
	done
}

# audit_py MODE [EXPR...]: read LOGOUT as livepatch's records. Each line must be
# "<PRI>Mmm dd hh:mm:ss livepatch[PID]: tx=ID part=K/N KEY=VALUE..." with VALUE bare or in
# double quotes (\" \\ \xHH); the lines of one tx are joined into one record (a key twice is
# an error). MODE count: print how many records are complete (parts 1..N all there) and how
# many are not. MODE check: each Python EXPR must be true, over r (the last record, a dict;
# r['_lines'] its lines, r['_pri'] its priorities), recs (all of them), rep (the JSON report
# in the file $REPORT) and mem(ADDR, N) (N bytes of /proc/$PID/mem at ADDR, hex).
audit_py() {
	"$PY" - "$LOGOUT" "$@" <<-'EOF'
		import json, os, re, sys
		head = re.compile(r'^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d livepatch\[(\d+)\]: (.*)$')
		item = re.compile(r'([a-z0-9_.]+)=("(?:[^"\\]|\\.)*"|[^ "]+)(?: |$)')
		def unquote(v):
		    if not v.startswith('"'):
		        return v
		    return re.sub(r'\\(x[0-9a-f]{2}|.)', lambda m: chr(int(m.group(1)[1:], 16)) if len(m.group(1)) == 3 else m.group(1), v[1:-1])
		recs, by_tx = [], {}
		for line in open(sys.argv[1], encoding="latin-1").read().splitlines():
		    m = head.match(line)
		    if not m:
		        sys.exit("not a livepatch syslog line: %r" % line)
		    pos, kv = 0, []
		    body = m.group(3)
		    while pos < len(body):
		        i = item.match(body, pos)
		        if not i:
		            sys.exit("bad field at %d of %r" % (pos, body))
		        kv.append((i.group(1), unquote(i.group(2))))
		        pos = i.end()
		    f = dict(kv)
		    if len(f) != len(kv):
		        sys.exit("a key twice in one line: %r" % line)
		    r = by_tx.get(f["tx"])
		    if r is None:
		        r = by_tx[f["tx"]] = {"_lines": [], "_pri": [], "_parts": []}
		        recs.append(r)
		    k, n = (int(x) for x in f.pop("part").split("/"))
		    r["_parts"].append((k, n))
		    r["_lines"].append(line)
		    r["_pri"].append(int(m.group(1)))
		    for key, v in kv:
		        if key in ("part",):
		            continue
		        if key in r and key != "tx":
		            sys.exit("key %s twice in record %s" % (key, f["tx"]))
		        r[key] = v
		def complete(r):
		    n = r["_parts"][0][1]
		    return r["_parts"] == [(k, n) for k in range(1, n + 1)]
		if sys.argv[2] == "count":
		    done = sum(1 for r in recs if complete(r))
		    print(done, len(recs) - done)
		    sys.exit(0)
		r = recs[-1] if recs else {}
		rep = json.load(open(os.environ["REPORT"])) if os.environ.get("REPORT") else {}
		def mem(addr, n):
		    with open("/proc/%s/mem" % os.environ["PID"], "rb") as f:
		        f.seek(int(addr, 16))
		        return f.read(n).hex()
		for e in sys.argv[3:]:
		    try:
		        ok = eval(e)
		    except Exception as x:
		        ok, e = False, "%s (%r)" % (e, x)
		    if not ok:
		        sys.exit("false: %s\nrecord: %r" % (e, {k: v for k, v in r.items() if not k.startswith("site.") or k.startswith("site.0.")}))
	EOF
}

# wait_records N: poll (<= 10 s) until LOGOUT holds N complete records and no partial one.
wait_records() {
	local n=0 got
	while :; do
		got=$(audit_py count) || return 1
		[[ $got == "$1 0" ]] && return 0
		((n++ < 1000)) || fail "syslog: '$got' (complete, partial) records after 10 s, expected $1 complete" || return 1
		nap 10
	done
}

# check EXPR...: audit_py check over the last record, with the daemon's memory and LP_OUT.
check() {
	printf '%s' "$LP_OUT" >"$BATS_TEST_TMPDIR/report.json"
	PID=$DAEMON_PID REPORT=$BATS_TEST_TMPDIR/report.json audit_py check "$@"
}

# The fields every record has, checked against the daemon and its executable.
COMMON=(
	"r['v'] == '1'"
	"r['uid'] == str(os.getuid())"
	"'sudo_user' not in r"
	"r['pid'] == os.environ['PID']"
	"r['exe'] == os.readlink('/proc/%s/exe' % os.environ['PID'])"
	"r['build_id'] == os.environ['BUILD_ID']"
	"all(len(l.encode('latin-1')) <= 1024 for l in r['_lines'])"
)

# build_id: BUILD_ID = the daemon's executable's GNU build-id, as readelf -n says it.
build_id() {
	BUILD_ID=$(LC_ALL=C readelf -n "/proc/$DAEMON_PID/exe" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p')
	[[ -n $BUILD_ID ]] || fail "readelf -n finds no build-id in $(readlink "/proc/$DAEMON_PID/exe")"
	export BUILD_ID
}

# SITE0: the first site of the JSON report, its bytes in the record as hex and in memory now.
SITE0_IS_NEW=(
	"r['sites'] == '1' and r['loads'] == '0' and r['unloads'] == '0'"
	"r['site.0.func'] == rep['sites'][0]['function']"
	"r['site.0.addr'] == rep['sites'][0]['address']"
	"r['site.0.old'] == rep['sites'][0]['old_bytes'].replace(' ', '')"
	"r['site.0.new'] == rep['sites'][0]['new_bytes'].replace(' ', '')"
	"mem(r['site.0.addr'], rep['sites'][0]['length']) == r['site.0.new']"
)

# marker: one datagram of the test's own to the socket, then wait until it is in LOGOUT:
# whatever livepatch had sent before it is there too (one socket, in order).
marker() {
	"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"MARKER", sys.argv[1])' "$LOGSOCK"
	local n=0
	until grep -qx MARKER "$LOGOUT"; do
		((n++ < 1000)) || fail "the marker did not arrive in 10 s" || return 1
		nap 10
	done
}

# --- records of transactions ---------------------------------------------------------------

# Proves: an applied patch is one line (PRI authpriv.notice, tag livepatch) with v, uid, pid,
# exe, the build-id readelf reads, the site's function, address, old and new bytes as --json
# gave them and as memory holds them, result applied, exit 0; and its revert, one more line
# with the bytes the other way round and result reverted.
@test "a patch and its revert: one record each, with who, the process, the site's bytes, result and exit code" {
	syslog_start
	daemon_start counterd --threads 2
	build_id
	lp -p "$DAEMON_PID" -f compute -t compute_v2
	expect_rc 0 && expect_status applied
	wait_records 1
	check "${COMMON[@]}" "${SITE0_IS_NEW[@]}" "r['result'] == 'applied'" "r['exit'] == '0'" \
		"r['action'] == 'patch'" "r['_pri'] == [85]" "'error' not in r" "len(r['_lines']) == 1"
	lp -p "$DAEMON_PID" -r compute
	expect_rc 0 && expect_status reverted
	wait_records 2
	check "${COMMON[@]}" "${SITE0_IS_NEW[@]}" "r['result'] == 'reverted'" "r['exit'] == '0'" \
		"r['action'] == 'revert'" "recs[0]['tx'] != r['tx']" \
		"r['site.0.old'] == recs[0]['site.0.new'] and r['site.0.new'] == recs[0]['site.0.old']"
	calls_only calls_compute calls_compute_v2
	say "$(tail -n 1 "$LOGOUT")"
}

# Proves: a transaction that fails after writing (LP_FAULT=tail) is logged all the same:
# result rolled_back, exit 6, the error naming the step; memory holds the old bytes again.
@test "a rolled-back transaction (LP_FAULT=tail) is logged: result rolled_back, exit 6, the error, old bytes in memory" {
	syslog_start
	daemon_start counterd --threads 4 --mode slow
	build_id
	LP_FAULT='tail' lp -p "$DAEMON_PID" -f compute_slow -t compute_slow_v2
	expect_rc 6 && expect_status rolled_back
	wait_records 1
	check "${COMMON[@]}" "r['result'] == 'rolled_back'" "r['exit'] == '6'" "r['_pri'] == [84]" \
		"'fault injected at tail' in r['error']" "r['error'] == rep['error']['message']" \
		"r['site.0.addr'] == rep['sites'][0]['address']" \
		"r['site.0.new'] == rep['sites'][0]['new_bytes'].replace(' ', '')" \
		"mem(r['site.0.addr'], rep['sites'][0]['length']) == r['site.0.old']"
	calls_only calls_compute_slow calls_compute_slow_v2
}

# Proves: a transaction that refuses to go on (--safe while a thread sleeps in the function)
# is logged with the JSON report's words: result rolled_back, exit 6, the error naming the
# thread; nothing stays written.
@test "a refused --safe patch (a thread inside) is logged: result rolled_back, exit 6, the thread named" {
	syslog_start
	daemon_start insided --spinners 1 --pipe-reader --wake "$BATS_TEST_TMPDIR/wake"
	build_id
	wait_blocked reader 0
	lp -p "$DAEMON_PID" --func wait_in --target wait_in_v2 --safe --timeout 600
	expect_rc 6 && expect_status rolled_back
	wait_records 1
	TID=$TID check "${COMMON[@]}" "r['result'] == 'rolled_back'" "r['exit'] == '6'" \
		"'thread %s (reader)' % os.environ['TID'] in r['error']" \
		"r['site.0.func'] == 'insided:wait_in'" \
		"mem(r['site.0.addr'], rep['sites'][0]['length']) == r['site.0.old']"
	expect_key wait_in_v2_calls 0
}

# Proves: --load logs the patch's path and the sha256 that sha256sum computes, and --unload
# the name and the same sha256; the site's new bytes are what memory holds.
@test "--load and --unload: the patch's path or name and its sha256 (as sha256sum says) are logged" {
	local obj=$LP_BUILD/patches/gcc-O2/static_call.o sum
	[[ -f $obj ]] || fail "no $obj: run make patches"
	sum=$(sha256sum "$obj" | cut -d' ' -f1)
	syslog_start
	daemon_start patchd --threads 2
	build_id
	lp -p "$DAEMON_PID" --load "$obj" --func handle_request --target handle_request_fixed
	expect_rc 0 && expect_status applied
	wait_records 1
	SUM=$sum OBJ=$obj check "${COMMON[@]}" "r['result'] == 'applied'" "r['loads'] == '1'" \
		"r['load.0.path'] == os.environ['OBJ']" "r['load.0.sha256'] == os.environ['SUM']" \
		"r['site.0.new'] == rep['sites'][0]['new_bytes'].replace(' ', '')" \
		"mem(r['site.0.addr'], rep['sites'][0]['length']) == r['site.0.new']"
	lp -p "$DAEMON_PID" -r handle_request
	expect_rc 0 && expect_status reverted
	lp -p "$DAEMON_PID" --unload static_call.o
	expect_rc 0
	wait_records 3
	SUM=$sum check "${COMMON[@]}" "r['exit'] == '0'" "r['sites'] == '0'" "r['unloads'] == '1'" \
		"r['unload.0.name'] == 'static_call.o'" "r['unload.0.sha256'] == os.environ['SUM']"
	lp_no_region
}

# Proves: a batch of 1000 sites is logged whole: several lines of at most 1024 bytes, parts
# 1..N of one tx, every site once with the function, address and bytes --json reported and
# memory holds.
@test "a 1000-site batch is logged whole, split into numbered lines of 1024 bytes at most" {
	syslog_start
	daemon_start manyd --threads 2
	build_id
	local i
	for ((i = 0; i < 1000; i++)); do printf 'f%04d g%04d\n' "$i" "$i"; done >"$BATS_TEST_TMPDIR/plan"
	LP_TIMEOUT=120 lp -p "$DAEMON_PID" --plan "$BATS_TEST_TMPDIR/plan"
	expect_rc 0 && expect_status applied
	wait_records 1
	check "${COMMON[@]}" "r['result'] == 'applied'" "r['sites'] == '1000'" "len(r['_lines']) > 1" \
		"len([k for k in r if k.startswith('site.')]) == 4000" \
		"all(r['site.%d.func' % i] == s['function'] and r['site.%d.addr' % i] == s['address'] and
		     r['site.%d.old' % i] == s['old_bytes'].replace(' ', '') and
		     r['site.%d.new' % i] == s['new_bytes'].replace(' ', '') and
		     mem(s['address'], s['length']) == r['site.%d.new' % i] for i, s in enumerate(rep['sites']))"
	say "1000 sites: $(audit_py check 'print(len(r["_lines"])) or True') lines"
	run timeout 120 "$LP_REAL" --pid "$DAEMON_PID" --revert-all -q
	((status == 0)) || fail "--revert-all: exit $status: $output"
}

# --- who ran it ----------------------------------------------------------------------------

# Proves: SUDO_USER is logged when set, and a value with a space and a quote is written in
# double quotes and reads back the same (the quoting the man page documents).
@test "SUDO_USER is logged when set; a value with a space or a quote is quoted and reads back the same" {
	syslog_start
	daemon_start counterd --threads 1
	build_id
	SUDO_USER=alice lp -p "$DAEMON_PID" -f compute -t compute_v2
	expect_rc 0
	wait_records 1
	check "r['sudo_user'] == 'alice'" "' sudo_user=alice ' in r['_lines'][0]"
	SUDO_USER='bob "the admin"' lp -p "$DAEMON_PID" -r compute
	expect_rc 0
	wait_records 2
	check "r['sudo_user'] == 'bob \"the admin\"'" \
		"' sudo_user=\"bob \\\\\"the admin\\\\\"\" ' in r['_lines'][0]"
}

# --- nothing to log ------------------------------------------------------------------------

# Proves: what writes nothing logs nothing: --list, --dry-run, --symbols, --where, a site
# refused at planning (exit 5), a revert with nothing to revert, an unknown symbol (exit 4).
# A marker datagram sent afterwards is then the only line (the socket keeps the order).
@test "read-only runs and runs that end before the transaction log nothing" {
	syslog_start
	daemon_start counterd --threads 1
	lp -p "$DAEMON_PID" --list
	expect_rc 0
	lp -p "$DAEMON_PID" -f compute -t compute_v2 --dry-run
	expect_rc 0
	lp -p "$DAEMON_PID" --symbols comp
	expect_rc 0
	lp -p "$DAEMON_PID" --where compute
	expect_rc 0
	lp -p "$DAEMON_PID" -f tiny -t compute_v2
	expect_rc 5
	lp -p "$DAEMON_PID" -r compute
	expect_rc 0 && expect_status not_patched
	lp -p "$DAEMON_PID" -f comput -t compute_v2
	expect_rc 4
	marker
	[[ $(wc -l <"$LOGOUT") == 1 ]] || fail "read-only runs logged: $(cat "$LOGOUT")"
}

# Proves: with no /dev/log at all the patch is applied as usual (exit 0, the calls switch); -v
# says in exactly one line that the record was not logged and why; without -v, not a word.
@test "no syslog socket: the patch still applies, and -v says in one line that nothing was logged" {
	daemon_start counterd --threads 2
	run --separate-stderr timeout -k 5 60 "$LP_NOLOG" -p "$DAEMON_PID" -f compute -t compute_v2 -v
	((status == 0)) || fail "exit $status: $stderr" || return 1
	local n
	n=$(grep -c 'audit' <<<"$stderr")
	((n == 1)) || fail "$n lines about the audit on stderr, expected 1: $stderr" || return 1
	[[ $stderr =~ audit:\ not\ logged\ to\ syslog:\ cannot\ connect\ to\ /dev/log:\ No\ such\ file ]] ||
		fail "the -v line does not say why: $stderr" || return 1
	calls_only calls_compute_v2 calls_compute
	run --separate-stderr timeout -k 5 60 "$LP_NOLOG" -p "$DAEMON_PID" -r compute --json
	((status == 0)) || fail "revert: exit $status: $stderr" || return 1
	[[ -z $stderr ]] || fail "without -v, stderr is not empty: $stderr"
	json_check "d['status'] == 'reverted'" <<<"$output"
	calls_only calls_compute calls_compute_v2
}
