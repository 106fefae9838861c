/*
 * <livepatch/patch.h>: for the authors of patch objects that `livepatch --load` links
 * into a running process.
 *
 * A patch is a plain relocatable object (`cc -c fix.c`). Its undefined symbols bind, in
 * this order, to: the patch itself; the object that holds the patched function F,
 * static (local) symbols included when that object has a .symtab; then the exported
 * symbols of every object the process maps (libc and the others). The first object
 * that has the name wins, and a static name defined twice in one object is refused as
 * ambiguous.
 *
 * LIVEPATCH_BIND(symbol, "object") overrides that order for one symbol: the patch's
 * undefined `symbol` binds only to the symbol of that name in the mapped object whose
 * file's base name is "object" (its static symbols included), or the load is refused.
 * Use it at file scope, as often as needed, when the first match would be the wrong
 * one: a program and one of its libraries both define `checksum`, F is in the program,
 * and the fix needs the library's:
 *
 *     #include <livepatch/patch.h>
 *
 *     int checksum(const char *p, int n);
 *     LIVEPATCH_BIND(checksum, "libpatchd.so");
 *
 *     int handle_request_fixed(const char *p, int n)
 *     {
 *             if (n <= 0 || n > 8192)
 *                     return -22;
 *             return checksum(p, n);	// libpatchd.so's, not the program's static one
 *     }
 *
 * Each use adds one record to the non-allocated section ".livepatch.bind": the symbol's
 * name, then the object's name, each NUL-terminated. Nothing of it is loaded into the
 * process. `livepatch --dry-run --load` shows every binding and how it was made
 * ("pinned" for these).
 */
#ifndef LIVEPATCH_PATCH_H
#define LIVEPATCH_PATCH_H

/*
 * A file-scope asm statement, not a variable: the record takes no name in the patch's
 * namespace, so the macro can be used any number of times in one file, and compilers
 * keep it at every optimization level (it is not dead code they may drop).
 */
#define LIVEPATCH_BIND(symbol, object)                                                \
	__asm__(".pushsection .livepatch.bind,\"\",@progbits\n\t"                      \
		".asciz \"" #symbol "\"\n\t"                                           \
		".asciz \"" object "\"\n\t"                                            \
		".popsection")

#endif
