/* Where: who is inside, symbolized, as text or JSON (where.h, docs/design.md §9). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include "resolve.h"
#include "sha256.h"
#include "where.h"

/* "OBJECT:SYMBOL+0xOFF" of @pc; a return address is looked up one byte back. */
static bool symbolize(const struct lp_where *w, uint64_t pc, bool ret, char *buf, size_t cap)
{
	struct lp_symbol s;

	if (resolve_symbolize(w->proc, ret ? pc - 1 : pc, &s)) {
		const struct lp_object *o = proc_object_at(w->proc, ret ? pc - 1 : pc, NULL);
		buf[0] = 0;
		if (!o)
			return false;
		snprintf(buf, cap, "%s+0x%" PRIx64, o->name, pc - o->bias);	/* no symbol there */
		return true;
	}
	uint64_t start = s.addr - s.offset;
	snprintf(buf, cap, "%s:%s+0x%" PRIx64, s.obj ? s.obj->name : "?", s.name, pc - start);
	return true;
}

static const char *kind_name(enum lp_hit_kind k)
{
	return k == LP_HIT_PC ? "pc" : k == LP_HIT_SIGNAL ? "signal" : "return";
}

static const char *state_name(enum lp_inside_state s)
{
	return s == LP_INSIDE_BLOCKED ? "blocked" : s == LP_INSIDE_GROUP_STOPPED ? "group_stopped" :
	       "stopped";
}

static const char *syscall_name(long nr)
{
	switch (nr) {
	case SYS_read: return "read";
	case SYS_write: return "write";
	case SYS_poll: return "poll";
	case SYS_ppoll: return "ppoll";
	case SYS_select: return "select";
	case SYS_pselect6: return "pselect6";
	case SYS_nanosleep: return "nanosleep";
	case SYS_clock_nanosleep: return "clock_nanosleep";
	case SYS_futex: return "futex";
	case SYS_epoll_wait: return "epoll_wait";
	case SYS_epoll_pwait: return "epoll_pwait";
	case SYS_accept: return "accept";
	case SYS_accept4: return "accept4";
	case SYS_recvfrom: return "recvfrom";
	case SYS_recvmsg: return "recvmsg";
	case SYS_pause: return "pause";
	case SYS_wait4: return "wait4";
	case SYS_rt_sigsuspend: return "rt_sigsuspend";
	case SYS_rt_sigtimedwait: return "rt_sigtimedwait";
	default: return NULL;
	}
}

/* The names of the ranges @it is inside, "a, b", each once. */
static void inside_of(const struct lp_where *w, const struct lp_inside_thread *it, char *buf,
		      size_t cap)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t k = 0; k < it->nframes; k++) {
		int rg = it->frames[k].range;
		bool seen = false;
		for (size_t m = 0; m < k && !seen; m++)
			seen = it->frames[m].range == rg;
		if (rg < 0 || seen || (size_t)rg >= w->nranges || len >= cap)
			continue;
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", w->names[rg]);
	}
}

static void plain_thread(FILE *f, const struct lp_where *w, const struct lp_inside_thread *it)
{
	char where[512], sym[512], how[64];
	const char *sc = syscall_name(it->syscall);

	inside_of(w, it, where, sizeof(where));
	if (it->state == LP_INSIDE_BLOCKED && sc)
		snprintf(how, sizeof(how), "blocked in %s", sc);
	else if (it->state == LP_INSIDE_BLOCKED && it->syscall >= 0)
		snprintf(how, sizeof(how), "blocked in system call %ld", it->syscall);
	else
		snprintf(how, sizeof(how), "%s", it->state == LP_INSIDE_BLOCKED ? "blocked" :
			 it->state == LP_INSIDE_GROUP_STOPPED ? "group-stopped" : "stopped");
	fprintf(f, "thread %d (%s) %s, %s: %s\n", it->tid, it->comm, how,
		it->unwound ? "unwound" : "scanned", where[0] ? where : "?");
	for (size_t k = 0; k < it->nframes; k++) {
		const struct lp_inside_frame *fr = &it->frames[k];
		if (!symbolize(w, fr->pc, fr->kind == LP_HIT_RETURN, sym, sizeof(sym)))
			snprintf(sym, sizeof(sym), "?");
		fprintf(f, "  #%zu 0x%016" PRIx64 " %s", k, fr->pc, sym);
		if (fr->kind == LP_HIT_SIGNAL)
			fprintf(f, " (signal frame)");
		else if (!it->unwound && fr->kind == LP_HIT_PC)
			fprintf(f, " (pc)");
		else if (!it->unwound)
			fprintf(f, " (return address at 0x%" PRIx64 ")", fr->at);
		fputc('\n', f);
	}
	if (it->unwound && it->why[0])
		fprintf(f, "  (the unwind stopped: %s)\n", it->why);
}

void where_plain_threads(FILE *f, const struct lp_where *w)
{
	const struct lp_inside *in = w->in;
	char sym[512];

	for (size_t i = 0; in && i < in->n; i++)
		plain_thread(f, w, &in->v[i]);
	for (size_t i = 0; in && i < in->nstale; i++) {
		const struct lp_inside_stale *s = &in->stale[i];
		if (!symbolize(w, s->value, true, sym, sizeof(sym)))
			snprintf(sym, sizeof(sym), "?");
		fprintf(f, "stale: thread %d (%s) holds 0x%016" PRIx64 " %s at 0x%" PRIx64 " that is "
			"not a frame (the unwind disagrees)\n", s->tid, s->comm, s->value, sym, s->at);
	}
}

void where_plain(FILE *f, const struct lp_where *w)
{
	char names[1024];
	size_t len = 0;

	names[0] = 0;
	for (size_t i = 0; i < w->nranges && len < sizeof(names); i++)
		len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
					w->names[i]);
	if (!w->in || !w->in->n)
		fprintf(f, "process %d (%s): no thread inside %s (%u threads)\n", w->proc->pid,
			w->proc->comm, names, w->in ? w->in->threads : 0);
	else
		fprintf(f, "process %d (%s): %zu of %u threads inside %s\n", w->proc->pid,
			w->proc->comm, w->in->n, w->in->threads, names);
	where_plain_threads(f, w);
}

static void json_thread(struct json *j, const struct lp_where *w, const struct lp_inside_thread *it)
{
	char sym[512];

	json_open(j, NULL, '{');
	json_int(j, "tid", it->tid);
	json_str(j, "comm", it->comm);
	json_str(j, "state", state_name(it->state));
	json_str(j, "method", it->unwound ? "unwind" : "scan");
	json_str(j, "syscall", it->state == LP_INSIDE_BLOCKED ? syscall_name(it->syscall) : NULL);
	json_open(j, "inside", '[');
	for (size_t k = 0; k < it->nframes; k++) {
		int rg = it->frames[k].range;
		bool seen = false;
		for (size_t m = 0; m < k && !seen; m++)
			seen = it->frames[m].range == rg;
		if (rg >= 0 && !seen && (size_t)rg < w->nranges)
			json_str(j, NULL, w->names[rg]);
	}
	json_close(j, ']');
	json_open(j, "frames", '[');
	for (size_t k = 0; k < it->nframes; k++) {
		const struct lp_inside_frame *fr = &it->frames[k];
		json_open(j, NULL, '{');
		json_hex(j, "pc", fr->pc);
		bool ok = symbolize(w, fr->pc, fr->kind == LP_HIT_RETURN, sym, sizeof(sym));
		json_str(j, "symbol", ok ? sym : NULL);
		json_str(j, "in", fr->range >= 0 && (size_t)fr->range < w->nranges ?
			 w->names[fr->range] : NULL);
		json_str(j, "kind", kind_name(fr->kind));
		if (fr->at)
			json_hex(j, "at", fr->at);
		else
			json_str(j, "at", NULL);
		json_close(j, '}');
	}
	json_close(j, ']');
	json_close(j, '}');
}

static void json_threads(struct json *j, const struct lp_where *w, const char *key)
{
	const struct lp_inside *in = w->in;
	char sym[512];

	json_open(j, key, '[');
	for (size_t i = 0; in && i < in->n; i++)
		json_thread(j, w, &in->v[i]);
	json_close(j, ']');
	json_open(j, "stale", '[');
	for (size_t i = 0; in && i < in->nstale; i++) {
		const struct lp_inside_stale *s = &in->stale[i];
		json_open(j, NULL, '{');
		json_int(j, "tid", s->tid);
		json_str(j, "comm", s->comm);
		json_hex(j, "at", s->at);
		json_hex(j, "value", s->value);
		bool ok = symbolize(w, s->value, true, sym, sizeof(sym));
		json_str(j, "symbol", ok ? sym : NULL);
		json_close(j, '}');
	}
	json_close(j, ']');
}

void where_json(struct json *j, const struct lp_where *w)
{
	json_open(j, "where", '{');
	json_open(j, "functions", '[');
	for (size_t i = 0; i < w->nranges; i++) {
		json_open(j, NULL, '{');
		json_str(j, "name", w->names[i]);
		json_hex(j, "addr", w->ranges[i].lo);
		json_uint(j, "size", w->ranges[i].hi - w->ranges[i].lo);
		json_close(j, '}');
	}
	json_close(j, ']');
	json_uint(j, "threads_total", w->in ? w->in->threads : 0);
	json_threads(j, w, "threads");
	json_close(j, '}');
}

void where_json_safe(struct json *j, const struct lp_where *w)
{
	json_open(j, "safe", '{');
	json_uint(j, "checks", w->in ? w->in->checks : 0);
	json_double(j, "waited_ms", w->in ? w->in->waited_ms : 0);
	json_bool(j, "ok", w->in && w->in->ok);
	json_threads(j, w, "blockers");
	json_close(j, '}');
}

void where_json_unloaded(struct json *j, const struct lp_where *w)
{
	char hex[65];

	json_open(j, "unloaded", '[');
	for (size_t i = 0; i < w->nunloaded; i++) {
		const struct lp_unloaded *u = &w->unloaded[i];
		json_open(j, NULL, '{');
		json_str(j, "name", u->name);
		json_hex(j, "base", u->base);
		json_uint(j, "size", u->size);
		lp_sha256_hex(u->sha256, hex);
		json_str(j, "sha256", hex);
		json_open(j, "reverted", '[');
		for (size_t k = 0; k < u->nreverted; k++)
			json_str(j, NULL, u->reverted[k]);
		json_close(j, ']');
		json_close(j, '}');
	}
	json_close(j, ']');
}
