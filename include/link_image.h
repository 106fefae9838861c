/*
 * The ELF wrapping of a linked patch (docs/design.md §8): private to link.c, which
 * lays out and relocates; link_image.c writes the headers, the livepatch note and the
 * unmapped tail (.symtab, .strtab, .shstrtab, section headers) that make the image a
 * file every ELF reader of livepatch loads like any other mapped object.
 */
#ifndef LP_LINK_IMAGE_H
#define LP_LINK_IMAGE_H

#include <stdint.h>
#include "link.h"

/* Bytes of the header segment's contents: ELF header, program headers, note. */
uint64_t link_image_header_size(const struct lp_link *lk);

/* lk->size plus the tail, once link_prepare laid out @lk. */
size_t link_image_len(const struct lp_link *lk);

/* Write headers, note and tail into lk->image (image_len bytes, zeroed). */
int link_image_write(struct lp_link *lk);

#endif
