#!/usr/bin/env bash
# check.sh [PATCHES_DIR]: each patch object of `make patches` (default build/patches) holds
# what it is built to exercise, as readelf shows it: the relocation types, the sections
# they patch and the symbols they name. One line per miss, exit 1 if any; silent when
# all hold. Needs no livepatch: it checks the fixtures, not the loader.
set -uo pipefail
P=${1:-build/patches}
misses=0

miss() {
	echo "check.sh: $*"
	misses=$((misses + 1))
}

# rels OBJ: "SECTION TYPE SYMBOL" per relocation of a loaded section (debug and
# .eh_frame ones left out); one readelf per object.
rels() {
	[[ -n ${RELS[$1]+set} ]] || RELS[$1]=$(_rels "$1")	# lost in a subshell: filled below
	printf '%s\n' "${RELS[$1]}"
}

_rels() {
	LC_ALL=C readelf -rW "$1" | awk '
		/^Relocation section/ { s = $3; gsub("\047", "", s) }
		/R_X86_64_/ && s !~ /debug|eh_frame/ { print s, $3, $5 }'
}

# has OBJ REGEX WHAT: some relocation line of OBJ matches the extended REGEX.
has() {
	rels "$1" | grep -Eq "$2" || miss "$1: no relocation $3 (/$2/); it has: $(rels "$1" | sort -u | tr '\n' ';')"
}

# sections OBJ: readelf's section table, "INDEX NAME TYPE ... FLAGS ..." (no brackets).
sections() {
	LC_ALL=C readelf -SW "$1" | sed -n 's/^ *\[ *\([0-9]*\)\]/\1/p'
}

# sym_section OBJ SYMBOL: the name of the section SYMBOL is defined in.
sym_section() {
	local ndx
	ndx=$(LC_ALL=C readelf -sW "$1" | awk -v s="$2" '$8 == s { print $7; exit }')
	[[ $ndx =~ ^[0-9]+$ ]] || return 1
	sections "$1" | awk -v n="$ndx" '$1 == n { print $2 }'
}

declare -A RELS=()
for o in "$P"/*/*.o; do
	RELS[$o]=$(_rels "$o")
done

for c in gcc-O0 gcc-O2 clang-O0 clang-O2; do
	d=$P/$c
	has "$d/static_call.o" '^\.rela\.text R_X86_64_PLT32 parse_header$' "PLT32 to the static parse_header"
	has "$d/static_var.o" '^\.rela\.text R_X86_64_(PC32|REX_GOTPCRELX|GOTPCRELX) requests_seen$' "to requests_seen"
	has "$d/static_var.o" '^\.rela\.text R_X86_64_(PC32|REX_GOTPCRELX|GOTPCRELX) bad_request_code$' "to bad_request_code"
	has "$d/switch.o" '^\.rela\.rodata R_X86_64_PC32 \.text$' "PC32 jump-table entries in .rodata"
	n=$(rels "$d/switch.o" | grep -c '^\.rela\.rodata R_X86_64_PC32 \.text$')
	((n >= 8)) || miss "$d/switch.o: $n jump-table entries, want >= 8"
	has "$d/fptrs.o" '^\.rela\.data\.rel\.ro(\.local)? R_X86_64_64 \.text$' "R_X86_64_64 in .data.rel.ro"
	n=$(rels "$d/fptrs.o" | grep -cE '^\.rela\.data\.rel\.ro(\.local)? R_X86_64_64 ')
	((n == 8)) || miss "$d/fptrs.o: $n pointers in .data.rel.ro, want 8"
	has "$d/libc.o" '^\.rela\.text R_X86_64_PLT32 snprintf$' "PLT32 to snprintf"
	has "$d/bss.o" '^\.rela\.text R_X86_64_PC32 \.bss$' "PC32 to .bss"
	has "$d/lib.o" '^\.rela\.text R_X86_64_PLT32 compute_v2$' "PLT32 to compute_v2"
	has "$d/pinned.o" '^\.rela\.text R_X86_64_PLT32 checksum$' "PLT32 to checksum"
	for k in static_call static_var strings bss pinned; do
		has "$d/$k.o" '^\.rela\.text R_X86_64_PLT32 note_fixed_call$' "PLT32 to note_fixed_call"
	done
	# The literals: .rodata at gcc -O0 (no merging), .rodata.str1.1 otherwise.
	want=.rodata.str1.1
	[[ $c != gcc-O0 ]] || want=.rodata
	for s in $(rels "$d/strings.o" | awk '$2 == "R_X86_64_PC32" { print $3 }'); do
		sec=$s
		[[ $s == .rodata* ]] || sec=$(sym_section "$d/strings.o" "$s")
		[[ $sec == "$want" ]] || miss "$d/strings.o: a literal ($s) in '$sec', want $want"
	done
	n=$(rels "$d/strings.o" | grep -c 'R_X86_64_PC32')
	((n == 2)) || miss "$d/strings.o: $n references to literals, want 2"
	# The pins: a non-allocated .livepatch.bind of "symbol\0object\0" pairs.
	flags=$(sections "$d/pinned.o" | awk '$2 == ".livepatch.bind" { print $3, (NF == 10 ? "no-flags" : $8) }')
	[[ $flags == "PROGBITS no-flags" ]] || miss "$d/pinned.o: .livepatch.bind is '$flags', want PROGBITS, no flags"
	tmp=$(mktemp)
	objcopy --dump-section .livepatch.bind="$tmp" "$d/pinned.o" "$tmp.o" 2>/dev/null
	bind=$(tr '\0' '|' <"$tmp")
	rm -f "$tmp" "$tmp.o"
	[[ $bind == "checksum|libpatchd.so|note_fixed_call|patchd|" ]] || miss "$d/pinned.o: .livepatch.bind holds '$bind'"
done

for c in gcc-O2-fpic clang-O2-fpic; do
	has "$P/$c/static_var.o" '^\.rela\.text R_X86_64_REX_GOTPCRELX requests_seen$' "GOTPCRELX (-fPIC)"
	has "$P/$c/fptrs.o" '^\.rela\.data\.rel\.ro(\.local)? R_X86_64_64 \.text$' "R_X86_64_64 in .data.rel.ro"
done
for c in gcc-O2-sections clang-O2-sections; do
	has "$P/$c/switch.o" '^\.rela\.rodata\.classify_fixed R_X86_64_PC32 \.text\.classify_fixed$' "per-function jump table"
	has "$P/$c/bss.o" '^\.rela\.text\.handle_request_fixed R_X86_64_PC32 \.bss\.state$' "PC32 to .bss.state"
done
# gcc -O2 moves the switch's cold default into .text.unlikely: two text sections.
has "$P/gcc-O2/switch.o" '^\.rela\.text R_X86_64_PC32 \.text\.unlikely$' "a jump into .text.unlikely"

# snprintf is a plain function of libc, not an IFUNC (those need their resolver run).
libc=$(ldd "$(dirname "$P")/daemons/patchd" 2>/dev/null | awk '$1 ~ /^libc\.so/ { print $3 }')
if [[ -n $libc ]] && LC_ALL=C readelf --dyn-syms -W "$libc" | awk '$8 ~ /^snprintf@/' | grep -q IFUNC; then
	miss "$libc: snprintf is an IFUNC here"
fi
if [[ -n $libc ]] && ! LC_ALL=C readelf --dyn-syms -W "$libc" | awk '$8 ~ /^strlen@/' | grep -q IFUNC; then
	miss "$libc: strlen is no IFUNC here (the patches avoid it for that reason only)"
fi

# The refusals.
r=$P/refuse
LC_ALL=C readelf -sW "$r/tls.o" | grep -q ' TLS ' || miss "$r/tls.o: no STT_TLS symbol"
LC_ALL=C readelf -SW "$r/ctor.o" | grep -q '\.init_array' || miss "$r/ctor.o: no .init_array"
LC_ALL=C readelf -sW "$r/ifunc.o" | grep -q 'IFUNC.*handle_request_fixed' || miss "$r/ifunc.o: no IFUNC"
for s in no_such_function note_fixed_cal; do
	LC_ALL=C readelf -sW "$r/unresolved.o" | grep -q "UND $s\$" || miss "$r/unresolved.o: $s not undefined"
done
has "$r/dup.o" '^\.rela\.text R_X86_64_PLT32 checksum$' "PLT32 to checksum"
! LC_ALL=C readelf -SW "$r/dup.o" | grep -q livepatch.bind || miss "$r/dup.o: has a pin"
has "$r/reloc.o" ' R_X86_64_SIZE32 note_fixed_call$' "R_X86_64_SIZE32"
LC_ALL=C readelf -hW "$r/etdyn.o" | grep -q 'Type:.*DYN' || miss "$r/etdyn.o: not ET_DYN"
LC_ALL=C readelf -hW "$r/etexec.o" | grep -q 'Type:.*EXEC' || miss "$r/etexec.o: not ET_EXEC"
LC_ALL=C readelf -hW "$r/arch.o" | grep -q 'Machine:.*AArch64' || miss "$r/arch.o: not AArch64"
LC_ALL=C readelf -hW "$r/arch.o" | grep -q 'Type:.*REL' || miss "$r/arch.o: not ET_REL"

# multi: one object calls what the other defines.
has "$P/multi/multi_main.o" '^\.rela\.text R_X86_64_PLT32 patch_header$' "PLT32 to patch_header"
LC_ALL=C readelf -sW "$P/multi/multi_helper.o" | grep -q 'FUNC *GLOBAL.* patch_header$' ||
	miss "$P/multi/multi_helper.o: patch_header is not defined there"

# v1 and v2: one name, two contents.
cmp -s "$P/v1/fix.o" "$P/v2/fix.o" && miss "v1/fix.o and v2/fix.o are the same"

((misses == 0))
