/*
 * Report: one struct lp_report, a plain printer and a JSON printer (bpftool's split).
 * Every JSON byte goes through json.c; docs/design.md §1 says what each printer owes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "audit.h"
#include "where.h"
#include "json.h"
#include "report.h"
#include "transact.h"
#include "verify.h"
#include "inspect.h"
#include "loadmap.h"
#include "sha256.h"

/* --revert-all with nothing livepatch wrote makes no plan: it reads as a revert with nothing to do. */
static const struct lp_plan nothing_to_revert = { .state = LP_PLAN_NOT_PATCHED, .revert = true };

/* ---- names shared by both printers ---- */

static const char *form_name(enum lp_form f)
{
	switch (f) {
	case LP_FORM_JMP_REL32: return "jmp_rel32";
	case LP_FORM_JMP_ABS64: return "jmp_abs64";
	case LP_FORM_CALL_REL32: return "call_rel32";
	default: return "original";
	}
}

static const char *emul_name(enum lp_emul e)
{
	switch (e) {
	case LP_EMUL_JMP: return "jmp";
	case LP_EMUL_CALL: return "call";
	default: return "park";
	}
}

static const char *verdict_name(enum lp_verdict v)
{
	return v == LP_VERIFY_PASS ? "pass" : v == LP_VERIFY_FAIL ? "fail" : "inconclusive";
}

static const char *skip_name(enum lp_plan_state why)
{
	return why == LP_PLAN_ALREADY ? "already_applied" : "not_patched";
}

static const char *status_name(const struct lp_report *r, const struct lp_plan *pl)
{
	if (pl->state == LP_PLAN_ALREADY)
		return "already_applied";
	if (pl->state == LP_PLAN_NOT_PATCHED)
		return "not_patched";
	if (r->dry_run)
		return "planned";
	if (r->exit_code && r->exit_code != LP_EXIT_VERIFY)	/* 7: written, not proven */
		return r->tx && r->tx->rolled_back ? "rolled_back" : "failed";
	return pl->revert ? "reverted" : "applied";
}

static const char *error_message(const struct lp_report *r)
{
	return r->diag && r->diag->msg[0] ? r->diag->msg : "internal error (please report it)";
}

/* ---- the plain printer ---- */

static void hexbytes(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%02x", i ? " " : "", p[i]);
}

static void plain_symbol(FILE *f, const char *label, const struct lp_symbol *s)
{
	fprintf(f, "%-9s %s:%s", label, s->obj->name, s->name);
	if (s->offset)
		fprintf(f, "+0x%" PRIx64, s->offset);
	fprintf(f, " at 0x%" PRIx64 " (%" PRIu64 " bytes)\n", s->addr, s->size);
}

/* --load's patches are in the process after this run (rolled back: unmapped, unless kept). */
static bool loads_mapped(const struct lp_report *r)
{
	return r->tx && r->tx->loaded && (!r->tx->rolled_back || r->tx->load_kept);
}

static void plain_tx(FILE *f, const struct lp_tx_stats *t)
{
	fprintf(f, "threads   %u seized, %u syncs, %u left blocked in the kernel, %u stopped\n",
		t->threads, t->syncs, t->blocked_left_alone, t->thread_stops);
	fprintf(f, "time      %.3f ms total: seize %.3f, sync0 %.3f, breakpoint %.3f, tail %.3f, "
		"head %.3f ms\n", t->total_ms, t->seize_ms, t->sync0_ms, t->phase_ms[0], t->phase_ms[1],
		t->phase_ms[2]);
	fprintf(f, "pause     max %.1f us, median %.1f us per stopped thread\n",
		t->pause_max_us, t->pause_median_us);
	fprintf(f, "traps     %u emulated, %u parked, %u late, %u stepped out of the site\n",
		t->traps_emulated, t->traps_parked, t->traps_late, t->stepouts);
	fprintf(f, "moved     %u threads and %u signal frames to out-of-line copies, %u regions "
		"made\n", t->out_of_line, t->frames_moved, t->xol_regions);
	if (t->load_kept)
		fprintf(f, "kept      the loaded patch stays mapped, unused: a thread may have run it "
			"before the roll-back\n");
	if (t->dispositions_restored)
		fprintf(f, "restored  the program's SIGTRAP disposition %u times (a trap of ours "
			"had reset it)\n", t->dispositions_restored);
	if (t->shield_why[0])
		fprintf(f, "shield    none: %s (livepatch's death mid-way would be fatal to the "
			"process)\n", t->shield_why);
	fprintf(f, "seen      %u signals passed on, %u clones, %u forks, %u thread exits, %u "
		"blocking calls restarted\n", t->signals_passed, t->clones, t->forks, t->exits,
		t->calls_restarted);
}

static void plain_verify(FILE *f, const struct lp_verify *v)
{
	fprintf(f, "verify    %s: %s\n", verdict_name(v->verdict), v->reason);
	fprintf(f, "          SIGTRAPs at the sites: %" PRIu64 " raised, %" PRIu64 " delivered, %"
		PRIu64 " handled by livepatch\n", v->traps_generated, v->traps_delivered, v->traps_handled);
	if (v->target_probe)
		fprintf(f, "          in %.1f s: target entered %" PRIu64 " times, old body %" PRIu64
			" times\n", v->window_s, v->target_hits, v->old_hits);
	else
		fprintf(f, "          in %.1f s: original code ran %" PRIu64 " times\n", v->window_s,
			v->old_hits);
}

static const char *other_text(const char *kind)
{
	if (!strcmp(kind, "tail_call"))
		return "a tail call (jmp)";
	if (!strcmp(kind, "pointer"))
		return "a call or jump through a pointer in memory";
	if (!strcmp(kind, "plt"))
		return "a PLT stub";
	return "a call through a PLT stub";
}

/* One pair: its site with every byte, and why this form. */
static void plain_sites_long(FILE *f, const struct lp_plan *pl)
{
	for (size_t i = 0; i < pl->nsites; i++) {
		const struct lp_site *s = &pl->sites[i];
		fprintf(f, "site      0x%" PRIx64 "%s, %u bytes\n", s->addr,
			s->endbr ? " (after endbr64, which stays)" : "", s->len);
		fprintf(f, "replaces  %s\n          [", s->displaced);
		hexbytes(f, s->old_bytes, s->len);
		fprintf(f, "]\nwrites    %s\n          [", s->written);
		hexbytes(f, s->new_bytes, s->len);
		fprintf(f, "]\n");
	}
	fprintf(f, "form      %s\n", pl->why);
	if (pl->repoint)
		fprintf(f, "re-point  it jumped to 0x%" PRIx64 " before\n", pl->prev_target);
}

/* A batch: one line a site, one a skipped pair. */
static void plain_sites_short(FILE *f, const struct lp_plan *pl)
{
	fprintf(f, "batch     %zu pairs: %zu sites to write, %zu with nothing to do, one transaction\n",
		pl->npairs, pl->nsites, pl->nskipped);
	for (size_t i = 0; i < pl->nsites; i++) {
		const struct lp_site *s = &pl->sites[i];
		if (s->target_name[0])
			fprintf(f, "site      0x%" PRIx64 " %s -> %s: %s (%u bytes)\n", s->addr, s->func,
				s->target_name, s->written, s->len);
		else
			fprintf(f, "site      0x%" PRIx64 " %s: restores %s (%u bytes; it jumped to %s)\n",
				s->addr, s->func, s->written, s->len, s->was[0] ? s->was : "?");
	}
	for (size_t i = 0; i < pl->nskipped; i++)
		fprintf(f, "skipped   %s: %s\n", pl->skipped[i].func,
			pl->skipped[i].why == LP_PLAN_ALREADY ? "already applied" : "not patched");
}

/* The references left alone, and what a thread that hits a breakpoint gets. */
static void plain_others_and_traps(FILE *f, const struct lp_plan *pl)
{
	for (size_t i = 0; i < pl->nothers; i++)
		fprintf(f, "left      0x%" PRIx64 " %s: %s, not rewritten\n", pl->others[i].addr,
			pl->others[i].where, other_text(pl->others[i].kind));
	if (pl->callsites && pl->nsites)
		fprintf(f, "traps     a thread that hits a breakpoint gets the call emulated: return "
			"address pushed, then the new callee\n");
	else if (pl->nsites)
		fprintf(f, "traps     a thread that hits the breakpoint %s\n", pl->revert ?
			"waits until the original first byte is back, then runs it" :
			"is sent to the target at once (the jump is emulated)");
}

/* One pair with nothing to do says so, and that is its whole report. */
static bool plain_nothing_to_do(FILE *f, const struct lp_report *r)
{
	if (r->plan->state == LP_PLAN_ALREADY)
		fprintf(f, "already applied: %s already jumps to 0x%" PRIx64 ", nothing to do\n",
			r->func->name, r->plan->prev_target);
	else if (r->plan->state == LP_PLAN_NOT_PATCHED)
		fprintf(f, "not patched: %s matches %s on disk, nothing to revert\n", r->func->name,
			r->func->obj->name);
	else
		return false;
	return true;
}

static void plain_outcome(FILE *f, const struct lp_report *r)
{
	const struct lp_plan *pl = r->plan;

	if (r->dry_run)
		fprintf(f, "dry run: nothing was changed, the process was not attached\n");
	else if (!r->exit_code && pl->nsites)
		fprintf(f, "%s\n", pl->revert ? "reverted" : "applied");
	else if (!r->exit_code)
		fprintf(f, "nothing to do: every pair is %s\n", pl->revert ? "not patched" : "already applied");
}

/* --safe and --unload: who held the walk back, or that nobody was inside; what went out. */
static void plain_inside(FILE *f, const struct lp_report *r)
{
	const struct lp_where *w = r->where;

	if (!w)
		return;
	for (size_t i = 0; r->dry_run && i < w->nunloaded; i++)
		fprintf(f, "unload    %s (%" PRIu64 " KiB at 0x%" PRIx64 ")\n", w->unloaded[i].name,
			(w->unloaded[i].size + 1023) >> 10, w->unloaded[i].base);
	if (!w->in || r->dry_run)
		return;
	if (w->in->n)
		where_plain_threads(f, w);
	else if (w->in->checks)
		fprintf(f, "safe: no thread inside (%u check%s, waited %.1f ms)\n", w->in->checks,
			w->in->checks == 1 ? "" : "s", w->in->waited_ms);
	for (size_t i = 0; !r->exit_code && i < w->nunloaded; i++)
		fprintf(f, "unloaded  %s (%" PRIu64 " KiB at 0x%" PRIx64 ")\n", w->unloaded[i].name,
			(w->unloaded[i].size + 1023) >> 10, w->unloaded[i].base);
}

static void plain_patch(FILE *f, const struct lp_report *r)
{
	const struct lp_plan *pl = r->plan;

	if (!pl) {
		fprintf(f, "process   %d (%s): no function holds a jump livepatch wrote, nothing to "
			"revert\n", r->proc->pid, r->proc->comm);
		plain_inside(f, r);
		return;
	}
	bool batch = pl->npairs > 1 || pl->callsites;	/* sites name their pairs */
	fprintf(f, "process   %d (%s), %d threads\n", r->proc->pid, r->proc->comm, r->proc->threads);
	if (!r->func) {	/* --unload of patches no function jumps into: nothing to revert */
		if (r->tx)
			plain_tx(f, r->tx);
		plain_inside(f, r);
		if (r->dry_run)
			plain_outcome(f, r);
		else if (!r->exit_code)
			fprintf(f, "unloaded\n");
		return;
	}
	if (!batch) {
		plain_symbol(f, "function", r->func);
		if (r->target)
			plain_symbol(f, "target", r->target);
		if (plain_nothing_to_do(f, r))
			return;
		plain_sites_long(f, pl);
	} else {
		plain_sites_short(f, pl);
	}
	plain_others_and_traps(f, pl);
	loadmap_plain(f, r->loads, loads_mapped(r), r->dry_run);
	if (r->tx)
		plain_tx(f, r->tx);
	if (r->verify)
		plain_verify(f, r->verify);
	plain_inside(f, r);
	plain_outcome(f, r);
}

static void plain_change(FILE *f, const struct lp_change *x)
{
	fprintf(f, "%s:%s at 0x%" PRIx64 ": ", x->func.obj ? x->func.obj->name : "?", x->func.name,
		x->func.addr);
	if (x->ours && x->in_patch) {
		char hex[65];
		lp_sha256_hex(x->patch_sha256, hex);
		fprintf(f, "jumps to %s (loaded patch %s, sha256 %.12s..., %" PRIu64 " KiB at 0x%" PRIx64
			")\n", x->target_name[0] ? x->target_name : "?", x->patch_name, hex,
			(x->patch_size + 1023) >> 10, x->patch_base);
	} else if (x->ours) {
		fprintf(f, "jumps to %s (0x%" PRIx64 ")\n", x->target_name[0] ? x->target_name : "?",
			x->target);
	} else if (x->call) {
		fprintf(f, "the call at +0x%" PRIx64 " goes to %s instead of %s\n", x->at - x->func.addr,
			x->target_name[0] ? x->target_name : "?", x->was_name[0] ? x->was_name : "?");
	} else {
		fprintf(f, "unknown modification at +0x%" PRIx64 ": [", x->at - x->func.addr);
		hexbytes(f, x->bytes, x->nbytes);
		fprintf(f, "], file has [");
		hexbytes(f, x->file, x->nbytes);
		fprintf(f, "]\n");
	}
}

static void plain_changes(FILE *f, const struct lp_proc *p, const struct lp_changes *c)
{
	fprintf(f, "process   %d (%s): %zu function(s) differ from their files (%.1f MiB compared "
		"in %.1f ms)\n", p->pid, p->comm, c->n, c->bytes_compared / 1048576.0, c->ms);
	for (size_t i = 0; i < c->n; i++)
		plain_change(f, &c->v[i]);
	loadmap_plain_loaded(f, c);
}

/* The next of the names packed in @s->buf, from @p (NULL: the first). */
static const char *next_name(const struct lp_report_names *s, const char *p)
{
	return p ? p + strlen(p) + 1 : s->buf;
}

static void plain_symbols(FILE *f, const struct lp_report_names *s)
{
	const char *p = NULL;

	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%s\n", p = next_name(s, p));
}

static void print_plain(FILE *f, const struct lp_report *r)
{
	switch (r->kind) {
	case LP_REPORT_ERROR:
		break;	/* the error line on stderr is all of it */
	case LP_REPORT_PATCH:
		plain_patch(f, r);
		break;
	case LP_REPORT_CHANGES:
		plain_changes(f, r->proc, r->changes);
		break;
	case LP_REPORT_SYMBOLS:
		plain_symbols(f, &r->symbols);
		break;
	case LP_REPORT_WHERE:
		where_plain(f, r->where);
		break;
	}
}

/* strace's form: one line, one write, so that it is never interleaved. */
static void plain_error(const char *msg)
{
	char line[1200];
	int n = snprintf(line, sizeof(line), "livepatch: error: %s\n", msg);

	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

/* ---- the JSON printer ---- */

static void json_error(struct json *j, int code, const char *msg)
{
	json_open(j, "error", '{');
	json_int(j, "code", code);
	json_str(j, "message", msg);
	json_close(j, '}');
}

static void json_process(struct json *j, const struct lp_proc *p)
{
	json_int(j, "pid", p->pid);
	json_str(j, "comm", p->comm);
}

static void json_symbol(struct json *j, const char *key, const struct lp_symbol *s)
{
	json_open(j, key, '{');
	json_str(j, "object", s->obj->name);
	json_str(j, "path", s->obj->path);
	json_str(j, "symbol", s->name);
	json_hex(j, "address", s->addr);
	json_uint(j, "offset", s->offset);
	json_uint(j, "size", s->size);
	json_close(j, '}');
}

static void json_site(struct json *j, const struct lp_site *s)
{
	json_open(j, NULL, '{');
	json_str(j, "function", s->func);
	json_str(j, "target", s->target_name[0] ? s->target_name : NULL);
	json_str(j, "previous_target_symbol", s->was[0] ? s->was : NULL);
	json_hex(j, "address", s->addr);
	json_uint(j, "length", s->len);
	json_bool(j, "endbr64", s->endbr);
	json_bytes(j, "old_bytes", s->old_bytes, s->len);
	json_bytes(j, "new_bytes", s->new_bytes, s->len);
	json_str(j, "displaced", s->displaced);
	json_str(j, "written", s->written);
	json_str(j, "form", form_name(s->form));
	json_str(j, "emulation", emul_name(s->emul_new.kind));
	json_hex(j, "emulation_target", s->emul_new.target);
	json_close(j, '}');
}

static void json_tx(struct json *j, const struct lp_tx_stats *t)
{
	json_open(j, "transaction", '{');
	json_uint(j, "threads", t->threads);
	json_uint(j, "syncs", t->syncs);
	json_uint(j, "thread_stops", t->thread_stops);
	json_uint(j, "blocked_left_alone", t->blocked_left_alone);
	json_double(j, "total_ms", t->total_ms);
	json_double(j, "seize_ms", t->seize_ms);
	json_double(j, "sync0_ms", t->sync0_ms);
	json_open(j, "phase_ms", '[');
	for (int i = 0; i < 3; i++)
		json_double(j, NULL, t->phase_ms[i]);
	json_close(j, ']');
	json_double(j, "pause_max_us", t->pause_max_us);
	json_double(j, "pause_median_us", t->pause_median_us);
	json_uint(j, "traps_emulated", t->traps_emulated);
	json_uint(j, "traps_parked", t->traps_parked);
	json_uint(j, "traps_late", t->traps_late);
	json_uint(j, "stepouts", t->stepouts);
	json_uint(j, "out_of_line", t->out_of_line);
	json_uint(j, "frames_moved", t->frames_moved);
	json_uint(j, "xol_regions", t->xol_regions);
	json_uint(j, "dispositions_restored", t->dispositions_restored);
	json_uint(j, "signals_passed", t->signals_passed);
	json_uint(j, "calls_restarted", t->calls_restarted);
	json_uint(j, "clones", t->clones);
	json_uint(j, "forks", t->forks);
	json_uint(j, "exits", t->exits);
	json_bool(j, "rolled_back", t->rolled_back);
	json_uint(j, "patches_loaded", t->loaded);
	json_double(j, "load_ms", t->load_ms);
	json_bool(j, "load_kept", t->load_kept);
	json_bool(j, "shield", t->shielded);
	json_bool(j, "shield_made", t->shield_made);
	json_str(j, "shield_why_not", t->shield_why[0] ? t->shield_why : NULL);
	json_close(j, '}');
}

static void json_verify(struct json *j, const struct lp_verify *v)
{
	json_open(j, "verify", '{');
	json_str(j, "verdict", verdict_name(v->verdict));
	json_str(j, "reason", v->reason);
	json_double(j, "window_s", v->window_s);
	json_uint(j, "min_calls", v->min_calls);
	json_hex(j, "target_probe", v->target_probe);
	json_hex(j, "old_probe", v->old_probe);
	json_uint(j, "traps_generated", v->traps_generated);
	json_uint(j, "traps_delivered", v->traps_delivered);
	json_uint(j, "traps_handled", v->traps_handled);
	json_uint(j, "target_hits", v->target_hits);
	json_uint(j, "old_hits", v->old_hits);
	json_close(j, '}');
}

/* The plan's members: where it jumped, why this form, its sites and the pairs it left. */
static void json_plan(struct json *j, const struct lp_plan *pl)
{
	if (pl->prev_target)
		json_hex(j, "previous_target", pl->prev_target);
	json_str(j, "why", pl->why[0] ? pl->why : NULL);
	json_uint(j, "pairs", pl->npairs);
	json_open(j, "sites", '[');
	for (size_t i = 0; i < pl->nsites; i++)
		json_site(j, &pl->sites[i]);
	json_close(j, ']');
	json_bool(j, "callsites", pl->callsites);
	json_open(j, "left_alone", '[');
	for (size_t i = 0; i < pl->nothers; i++) {
		json_open(j, NULL, '{');
		json_hex(j, "address", pl->others[i].addr);
		json_str(j, "where", pl->others[i].where);
		json_str(j, "kind", pl->others[i].kind);
		json_close(j, '}');
	}
	json_close(j, ']');
	json_open(j, "skipped", '[');
	for (size_t i = 0; i < pl->nskipped; i++) {
		json_open(j, NULL, '{');
		json_str(j, "function", pl->skipped[i].func);
		json_str(j, "reason", skip_name(pl->skipped[i].why));
		json_close(j, '}');
	}
	json_close(j, ']');
}

static void json_patch(struct json *j, const struct lp_report *r)
{
	const struct lp_plan *pl = r->plan ? r->plan : &nothing_to_revert;

	json_process(j, r->proc);
	json_int(j, "threads", r->proc->threads);
	json_str(j, "action", pl->revert ? "revert" : "patch");
	json_bool(j, "dry_run", r->dry_run);
	json_str(j, "status", status_name(r, pl));
	if (r->func)
		json_symbol(j, "function", r->func);
	if (r->target)
		json_symbol(j, "target", r->target);
	json_plan(j, pl);
	if (r->loads)
		loadmap_json(j, r->loads, loads_mapped(r));
	if (r->tx)
		json_tx(j, r->tx);
	if (r->verify)
		json_verify(j, r->verify);
	if (r->where && r->where->in && !r->dry_run)
		where_json_safe(j, r->where);
	if (r->where && r->where->nunloaded && (!r->exit_code || r->dry_run))
		where_json_unloaded(j, r->where);
	if (r->diag && r->exit_code)
		json_error(j, r->exit_code, r->diag->msg);
}

static void json_change(struct json *j, const struct lp_change *x)
{
	json_open(j, NULL, '{');
	json_str(j, "object", x->func.obj ? x->func.obj->name : NULL);
	json_str(j, "symbol", x->func.name);
	json_hex(j, "address", x->func.addr);
	json_hex(j, "at", x->at);
	json_str(j, "kind", x->ours ? "jump" : x->call ? "call" : "unknown");
	if (x->ours || x->call) {
		json_hex(j, "target", x->target);
		json_str(j, "target_symbol", x->target_name[0] ? x->target_name : NULL);
	}
	if (x->call)
		json_str(j, "file_target_symbol", x->was_name[0] ? x->was_name : NULL);
	if (x->in_patch) {
		char hex[65];
		lp_sha256_hex(x->patch_sha256, hex);
		json_open(j, "patch", '{');
		json_str(j, "name", x->patch_name);
		json_str(j, "sha256", hex);
		json_hex(j, "base", x->patch_base);
		json_uint(j, "size", x->patch_size);
		json_close(j, '}');
	}
	json_bytes(j, "bytes", x->bytes, x->nbytes);
	json_bytes(j, "file_bytes", x->file, x->nbytes);
	json_close(j, '}');
}

static void json_changes(struct json *j, const struct lp_proc *p, const struct lp_changes *c)
{
	json_process(j, p);
	json_uint(j, "bytes_compared", c->bytes_compared);
	json_double(j, "ms", c->ms);
	json_open(j, "changed", '[');
	for (size_t i = 0; i < c->n; i++)
		json_change(j, &c->v[i]);
	json_close(j, ']');
	loadmap_json_loaded(j, c);
}

static void json_symbols(struct json *j, const struct lp_proc *p, const struct lp_report_names *s)
{
	const char *name = NULL;

	json_process(j, p);
	json_open(j, "symbols", '[');
	for (size_t i = 0; i < s->n; i++)
		json_str(j, NULL, name = next_name(s, name));
	json_close(j, ']');
}

static void print_json(FILE *f, const struct lp_report *r)
{
	struct json j;

	json_init(&j, f);
	json_open(&j, NULL, '{');
	switch (r->kind) {
	case LP_REPORT_ERROR:
		json_error(&j, r->exit_code, error_message(r));
		break;
	case LP_REPORT_PATCH:
		json_patch(&j, r);
		break;
	case LP_REPORT_CHANGES:
		json_changes(&j, r->proc, r->changes);
		break;
	case LP_REPORT_SYMBOLS:
		json_symbols(&j, r->proc, &r->symbols);
		break;
	case LP_REPORT_WHERE:
		json_process(&j, r->proc);
		where_json(&j, r->where);
		break;
	}
	json_close(&j, '}');
}

/* ---- the report's API ---- */

void report_print(FILE *f, const struct lp_report *r, enum lp_report_format fmt)
{
	if (fmt == LP_REPORT_JSON) {
		print_json(f, r);
	} else {
		if (r->exit_code)
			plain_error(error_message(r));
		if (fmt == LP_REPORT_PLAIN)
			print_plain(f, r);
	}
	fflush(f);
}

void report_error(FILE *f, const struct lp_diag *d, int exit_code, bool json)
{
	struct lp_report r = { .kind = LP_REPORT_ERROR, .exit_code = exit_code, .diag = d };

	report_print(f, &r, json ? LP_REPORT_JSON : LP_REPORT_PLAIN);
}

const char *report_status(const struct lp_report *r)
{
	switch (r->kind) {
	case LP_REPORT_PATCH:
		return status_name(r, r->plan ? r->plan : &nothing_to_revert);
	case LP_REPORT_CHANGES:
		return "listed";
	default:
		return "";
	}
}

void report_add_symbol(const char *obj, const char *sym, void *arg)
{
	struct lp_report_names *s = &((struct lp_report *)arg)->symbols;
	size_t need = strlen(obj) + strlen(sym) + 2;	/* ':' and '\0' */

	if (s->nomem)
		return;
	if (s->len + need > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		while (cap < s->len + need)
			cap *= 2;
		char *buf = realloc(s->buf, cap);
		if (!buf) {
			s->nomem = true;
			return;
		}
		s->buf = buf;
		s->cap = cap;
	}
	s->len += (size_t)snprintf(s->buf + s->len, need, "%s:%s", obj, sym) + 1;
	s->n++;
}

void report_free(struct lp_report *r)
{
	free(r->symbols.buf);
	memset(&r->symbols, 0, sizeof(r->symbols));
}

/*
 * The audit record of a transaction that ran (docs/design.md §10), from the same
 * report. Syslog missing never fails a patch: -v says so, in one line.
 */
void report_audit(const struct lp_report *r, bool verbose)
{
	const struct lp_plan *pl = r->plan ? r->plan : &nothing_to_revert;
	size_t nloads = r->loads ? r->loads->n : 0, nun = r->where ? r->where->nunloaded : 0;
	struct audit_site *sites = calloc(pl->nsites + 1, sizeof(*sites));
	struct audit_patch *patches = calloc(nloads + nun + 1, sizeof(*patches));
	struct audit_rec a;
	char why[300] = "out of memory";
	int n = -ENOMEM;

	audit_rec_init(&a, r->proc->pid, r->proc->via);
	for (size_t i = 0; sites && i < pl->nsites; i++) {
		const struct lp_site *s = &pl->sites[i];
		sites[i] = (struct audit_site){ .func = s->func, .addr = s->addr, .len = s->len,
						.old_bytes = s->old_bytes, .new_bytes = s->new_bytes };
	}
	for (size_t i = 0; patches && i < nloads; i++)
		patches[i] = (struct audit_patch){ r->loads->v[i].po.path, r->loads->v[i].po.sha256 };
	for (size_t i = 0; patches && i < nun; i++)
		patches[nloads + i] = (struct audit_patch){ r->where->unloaded[i].name,
							    r->where->unloaded[i].sha256 };
	a.sites = sites;
	a.nsites = pl->nsites;
	a.loads = patches;
	a.nloads = nloads;
	a.unloads = patches ? patches + nloads : NULL;
	a.nunloads = nun;
	a.action = pl->revert ? "revert" : "patch";
	a.result = status_name(r, pl);
	if (r->recovered) {	/* what the guard found: half-written (rolled back), or complete */
		a.action = "recover";
		a.result = r->exit_code ? "failed" : r->tx && r->tx->rolled_back ? "rolled_back" :
			   pl->revert ? "reverted" : "applied";
	}
	a.exit_code = r->exit_code;
	a.error = r->exit_code ? error_message(r) : NULL;
	if (sites && patches)
		n = audit_log_tx(&a, NULL, why, sizeof(why));
	if (verbose && n < 0)
		report_verbose("audit: not logged to syslog: %s (the change is made or undone as "
			       "reported all the same)", why);
	else if (verbose)
		report_verbose("audit: logged to syslog in %d line%s, tx=%s", n, n == 1 ? "" : "s", a.tx);
	free(sites);
	free(patches);
}

void report_verbose(const char *fmt, ...)
{
	char line[512];
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(line, sizeof(line), "livepatch: [%ld.%06ld] ", (long)ts.tv_sec,
			 ts.tv_nsec / 1000);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

bool report_progress(const char *what, const struct timespec *since, unsigned int timeout_ms)
{
	struct timespec now;
	char line[160];

	clock_gettime(CLOCK_MONOTONIC, &now);
	double s = (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
	if (s < 1.0)
		return false;
	int n = snprintf(line, sizeof(line), "\rlivepatch: %s, %.1f s (each sync gives up after "
			 "%.1f s) ", what, s, timeout_ms / 1000.0);
	return write(STDERR_FILENO, line, (size_t)n) == n;
}

void report_progress_done(void)
{
	if (write(STDERR_FILENO, "\r\033[K", 4) < 0)
		return;	/* clear the progress line so the report starts clean */
}
