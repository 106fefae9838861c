/*
 * Loadmap: what --load did or would do, for the report: each patch's sections with
 * their addresses, each undefined symbol and what it was bound to, and its
 * relocations by type (docs/design.md §8). Plain text and JSON.
 */
#ifndef LP_LOADMAP_H
#define LP_LOADMAP_H

#include <stdbool.h>
#include <stdio.h>
#include "bind.h"
#include "inspect.h"
#include "json.h"

/* One line per patch; with @full (a dry run, or -v), the whole link map under it. */
void loadmap_plain(FILE *f, const struct lp_loads *l, bool mapped, bool full);

/* The "load" array of the JSON report. */
void loadmap_json(struct json *j, const struct lp_loads *l, bool mapped);

/* --list: every patch loaded in the process, used or not; and its "load" array. */
void loadmap_plain_loaded(FILE *f, const struct lp_changes *c);
void loadmap_json_loaded(struct json *j, const struct lp_changes *c);

#endif
