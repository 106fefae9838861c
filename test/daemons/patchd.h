/* patchd's contract with the patches of test/patches/ (livepatch --load): the functions
 * they replace, the program functions they call, and the one formula that old and fixed
 * code share. Included by patchd.c and by every patch; no other header needed, so the
 * patches build with any compiler and without the daemons' common.h. */
#ifndef LP_PATCHD_H
#define LP_PATCHD_H

#define PATCHD_MAX 8192		/* the largest valid request */
#define PATCHD_EBAD (-22)	/* what the fixed handle_request returns for a bad length */
#define PATCHD_ID_LEN 32	/* format_id's buffer */

#ifndef PATCH_VERSION
#define PATCH_VERSION 1		/* note_fixed_call(PATCH_VERSION): -DPATCH_VERSION=2 for a v2 */
#endif

/* The functions patched (F). */
int handle_request(const char *p, int n);	/* old: no check of n */
int classify(int c, int x);			/* old: case 7 wrong */
int pick(int i, int x);				/* old: ops[5] wrong */
int format_id(int id, char *buf);		/* old: "id-%d", fixed: "id-%06d" */

/* Program functions a patch binds to (exported: also in patchd-stripped's .dynsym). */
void note_fixed_call(int version);		/* the new-code counters: calls_new, calls_new_v2 */
void note_reject(int n, const char *why);	/* why must be patchd_reject_why(n) */
void note_count(unsigned long v);		/* a patch's own counter, from its .bss */

/* The header of a request: the sum of its first 16 bytes at most (none when n <= 0). Old
 * and fixed code agree on it; the old one reads no further for a bad n either. */
static inline int patchd_header(const char *p, int n)
{
	int h = 0;

	for (int i = 0; i < n && i < 16; i++)
		h += (unsigned char)p[i];
	return h;
}

static inline int patchd_bad(int n)
{
	return n <= 0 || n > PATCHD_MAX;
}

/* Old and fixed results of handle_request. */
static inline int patchd_old(const char *p, int n)
{
	return patchd_header(p, n) + n;
}

static inline int patchd_fixed(const char *p, int n)
{
	return patchd_bad(n) ? PATCHD_EBAD : patchd_header(p, n) + n;
}

#endif
