#!/usr/bin/env bats
# make install / make uninstall, staged under a temporary DESTDIR: where each file goes,
# its mode, that the installed binary runs, and that uninstall removes exactly those.
# Nothing outside $BATS_TEST_TMPDIR is written, and the binary in the tree is not rebuilt.

bats_require_minimum_version 1.5.0

load ../lib

setup() {
	DEST=$BATS_TEST_TMPDIR/dest
	mkdir -p "$DEST"
	# A `livepatch` already in the tree is the one the other suites test: install it as it
	# is (-o: never remake it, even when sources are newer, e.g. edited while the suites
	# run). Only a missing one is built.
	if [[ -x $ROOT/livepatch ]]; then
		KEEP=(-o livepatch)
		SUM0=$(sha256sum "$ROOT/livepatch" | cut -d' ' -f1)
	else
		KEEP=()
		SUM0=
	fi
}

# mk TARGET [VAR=VALUE...]: run make TARGET in the tree, quietly; output in $output.
mk() {
	run --separate-stderr make --no-print-directory -C "$ROOT" "${KEEP[@]}" "$@"
	if ((status != 0)); then
		echo "make $* exited $status" >&2
		echo "stdout: $output" >&2
		echo "stderr: $stderr" >&2
		return 1
	fi
}

# The five files, under a prefix.
installed_files() {
	local p=$1
	echo "$p/sbin/livepatch"
	echo "$p/share/man/man8/livepatch.8"
	echo "$p/share/bash-completion/completions/livepatch"
	echo "$p/share/zsh/vendor-completions/_livepatch"
	echo "$p/include/livepatch/patch.h"
}

mode_of() { stat -c %a "$1"; }

# The tree's binary was not rebuilt by make install (when it existed before).
assert_not_rebuilt() {
	[[ -z $SUM0 ]] && return 0
	local now
	now=$(sha256sum "$ROOT/livepatch" | cut -d' ' -f1)
	[[ $now == "$SUM0" ]] || {
		echo "make install rebuilt $ROOT/livepatch (sha256 $SUM0 -> $now)" >&2
		return 1
	}
}

@test "make install DESTDIR=... PREFIX=/usr puts the binary, man page, both completions and <livepatch/patch.h> in place" {
	mk install DESTDIR="$DEST" PREFIX=/usr
	local p=$DEST/usr
	[ -f "$p/sbin/livepatch" ]
	[ "$(mode_of "$p/sbin/livepatch")" = 755 ]
	cmp "$ROOT/livepatch" "$p/sbin/livepatch"
	run "$p/sbin/livepatch" --version
	[ "$status" -eq 0 ]
	[[ $output == "livepatch "?* ]]
	[ "$output" = "$("$ROOT/livepatch" --version)" ]

	[ "$(mode_of "$p/share/man/man8/livepatch.8")" = 644 ]
	cmp "$ROOT/man/livepatch.8" "$p/share/man/man8/livepatch.8"
	[ "$(mode_of "$p/share/bash-completion/completions/livepatch")" = 644 ]
	cmp "$ROOT/completions/livepatch.bash" "$p/share/bash-completion/completions/livepatch"
	[ "$(mode_of "$p/share/zsh/vendor-completions/_livepatch")" = 644 ]
	cmp "$ROOT/completions/_livepatch" "$p/share/zsh/vendor-completions/_livepatch"
	[ "$(mode_of "$p/include/livepatch/patch.h")" = 644 ]
	cmp "$ROOT/include/livepatch/patch.h" "$p/include/livepatch/patch.h"
	# A patch author's #include <livepatch/patch.h> finds it there.
	printf '#include <livepatch/patch.h>\nint f(void);\nLIVEPATCH_BIND(f, "prog");\nint g(void) { return f(); }\n' \
		>"$BATS_TEST_TMPDIR/p.c"
	cc -c -I"$p/include" -o "$BATS_TEST_TMPDIR/p.o" "$BATS_TEST_TMPDIR/p.c"
	readelf -p .livepatch.bind "$BATS_TEST_TMPDIR/p.o" | grep -q prog

	# Those five files and nothing else.
	diff <(installed_files "$p" | sort) <(find "$DEST" -type f | sort)
	assert_not_rebuilt
}

@test "the installed man page renders, and the installed bash completion loads" {
	mk install DESTDIR="$DEST" PREFIX=/usr
	local p=$DEST/usr
	if command -v man >/dev/null; then
		run man -l "$p/share/man/man8/livepatch.8"
		[ "$status" -eq 0 ]
		[[ $output == *livepatch* ]]
	fi
	run bash -c 'source "$1" && complete -p livepatch' _ "$p/share/bash-completion/completions/livepatch"
	[ "$status" -eq 0 ]
	[[ $output == *livepatch* ]]
}

@test "make uninstall with the same DESTDIR and PREFIX removes all five files" {
	mk install DESTDIR="$DEST" PREFIX=/usr
	local f
	while read -r f; do
		[ -e "$f" ]
	done < <(installed_files "$DEST/usr")
	mk uninstall DESTDIR="$DEST" PREFIX=/usr
	while read -r f; do
		[ ! -e "$f" ] || {
			echo "still there after make uninstall: $f" >&2
			return 1
		}
	done < <(installed_files "$DEST/usr")
	[ -z "$(find "$DEST" -type f)" ]
	# Uninstalling again is not an error.
	mk uninstall DESTDIR="$DEST" PREFIX=/usr
	assert_not_rebuilt
}

@test "without PREFIX, make install uses /usr/local (under DESTDIR)" {
	mk install DESTDIR="$DEST"
	local f
	while read -r f; do
		[ -f "$f" ]
	done < <(installed_files "$DEST/usr/local")
	"$DEST/usr/local/sbin/livepatch" --version
	mk uninstall DESTDIR="$DEST"
	[ -z "$(find "$DEST" -type f)" ]
	assert_not_rebuilt
}

@test "plain make without the -dev packages stops at once: one line naming what is missing and make deps" {
	# An empty PKG_CONFIG_LIBDIR: pkg-config finds none of the libraries, as on a fresh
	# machine; a build directory of its own, so that something has to be compiled.
	mkdir -p "$BATS_TEST_TMPDIR/no-pc"
	PKG_CONFIG_LIBDIR=$BATS_TEST_TMPDIR/no-pc run --separate-stderr \
		make --no-print-directory -C "$ROOT" B="$BATS_TEST_TMPDIR/b" "$BATS_TEST_TMPDIR/b/src/run.o"
	[ "$status" -ne 0 ] || fail "make succeeded without the libraries"
	[[ ${stderr_lines[0]} == "livepatch: error: cannot build, missing: libelf libdw capstone libbpf (run: make deps, as root)" ]] ||
		fail "first stderr line: ${stderr_lines[0]}" "stderr: $stderr"
	[[ $stderr != *"No such file"* && $stderr != *capstone.h* ]] || fail "a compiler error: $stderr"
	[ ! -e "$BATS_TEST_TMPDIR/b/src" ] || fail "make compiled something: $(ls "$BATS_TEST_TMPDIR/b/src")"
}
