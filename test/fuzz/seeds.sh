#!/usr/bin/env bash
# seeds.sh: regenerate the ELF seeds of test/fuzz/corpus/{elfsym,patchobj} (committed,
# each a few KB: small real files are what the fuzzer mutates best). Needs gcc, clang, strip.
#   elfsym:   a tiny shared library (versioned .dynsym, .symtab, build-id, an IFUNC), the
#             same stripped, a patch image's note, and truncated copies of the library
#   patchobj: the unit tests' patch objects (test/unit/fixtures/patches), by gas and clang
#             (named without .o, which .gitignore takes for build output)
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
e=corpus/elfsym p=corpus/patchobj
mkdir -p "$e" "$p"

cat >"$tmp/lib.S" <<'ASM'
	.text
	.globl	f_one, f_two_v2, f_data, f_pick
	.type	f_one, @function
f_one:	endbr64
	xorl	%eax, %eax
	ret
	.size	f_one, .-f_one
	.type	f_two_v2, @function
f_two_v2: movl	$2, %eax
	ret
	.size	f_two_v2, .-f_two_v2
	.type	f_local, @function
f_local: ret
	.size	f_local, .-f_local
	.type	f_pick, @gnu_indirect_function
f_pick:	leaq	f_local(%rip), %rax
	ret
	.size	f_pick, .-f_pick
	.symver	f_two_v2, f_two@@V2
	.data
	.type	f_data, @object
f_data:	.quad	1
	.size	f_data, 8
	.section .note.GNU-stack,"",@progbits
ASM
printf 'V1 { global: f_one; local: *; };\nV2 { global: f_two; f_data; f_pick; } V1;\n' >"$tmp/lib.map"
gcc -shared -nostdlib -fPIC -Wl,--build-id -Wl,-z,noseparate-code -Wl,--hash-style=gnu \
	-Wl,--version-script="$tmp/lib.map" -o "$tmp/lib.so" "$tmp/lib.S"
strip --strip-debug -o "$e/lib.so" "$tmp/lib.so"
strip --strip-all -o "$e/lib_stripped.so" "$tmp/lib.so"
head -c 64 "$e/lib.so" >"$e/lib_ehdr_only"
head -c 1000 "$e/lib.so" >"$e/lib_cut_1000"

# A patch image names its patch in a note: type 0x4c50, owner "livepatch", sha256 then name.
cat >"$tmp/image.S" <<'ASM'
	.section .note.livepatch, "a", @note
	.balign	4
	.long	10, 32 + 8, 0x4c50
	.asciz	"livepatch"
	.balign	4
	.fill	32, 1, 0xab
	.asciz	"patch.o"
	.balign	4
	.text
	.globl	patched
	.type	patched, @function
patched: ret
	.size	patched, .-patched
	.section .note.GNU-stack,"",@progbits
ASM
gcc -shared -nostdlib -fPIC -Wl,--build-id=none -Wl,-z,noseparate-code -o "$tmp/image.so" "$tmp/image.S"
strip --strip-debug -o "$e/patch_image.so" "$tmp/image.so"

for s in ../unit/fixtures/patches/*.S; do
	n=$(basename "$s" .S)
	[[ $n == big ]] && continue	# 5 MB of code: the other objects say the same in less
	gcc -c -o "$p/${n}_gas" "$s"
done
for n in relocs veneer bind; do
	clang -c -o "$p/${n}_clang" "../unit/fixtures/patches/$n.S"
done
gcc -O2 -fPIC -ffunction-sections -fdata-sections -c -o "$p/patch_gcc" ../unit/fixtures/patches/patch.c
gcc -m32 -c -o "$p/tiny32" ../unit/fixtures/patches/tiny.S
chmod 0644 "$e"/* "$p"/*
ls -l "$e" "$p"
