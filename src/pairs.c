/*
 * Pairs: what the user asked to patch, as resolved functions (pairs.h). One pair, a
 * repeated --func/--target, a plan file, or --revert-all; all become one batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "inspect.h"
#include "pairs.h"
#include "resolve.h"

/* Room in @ps for one more pair (@cap: its arrays' length). */
static int reserve_pair(struct lp_pairs *ps, size_t *cap)
{
	if (ps->n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	struct lp_symbol *f = realloc(ps->f, ncap * sizeof(*f));
	if (f)
		ps->f = f;
	struct lp_symbol *g = realloc(ps->g, ncap * sizeof(*g));
	if (g)
		ps->g = g;
	char **gs = realloc(ps->gspec, ncap * sizeof(*gs));
	if (gs)
		ps->gspec = gs;
	if (!f || !g || !gs)
		return -ENOMEM;
	*cap = ncap;
	return 0;
}

/* Pair @i's target from its name (now, or in pairs_resolve_targets: targets_later). */
static int resolve_target(struct lp_proc *p, struct lp_pairs *ps, size_t i, struct lp_diag *d)
{
	int ret = resolve_function(p, ps->gspec[i], "target", &ps->g[i], d);

	if (!ret && ps->f[i].addr == ps->g[i].addr)
		ret = lp_fail(d, LP_EXIT_USAGE, "the function and the target are the same (%s at 0x%" PRIx64
			      ") (give --target the replacement function)", ps->gspec[i], ps->f[i].addr);
	return ret;
}

/* Resolve function @fs and target @gs (NULL: a revert) and append them to @ps. */
static int resolve_pair(struct lp_proc *p, struct lp_pairs *ps, size_t *cap, const char *fs,
			const char *gs, struct lp_diag *d)
{
	int ret = reserve_pair(ps, cap);

	if (ret)
		return ret;
	ps->gspec[ps->n] = NULL;
	ret = resolve_function(p, fs, "function", &ps->f[ps->n], d);
	if (!ret) {
		ps->gspec[ps->n] = gs ? strdup(gs) : NULL;
		if (gs && !ps->gspec[ps->n])
			ret = -ENOMEM;
	}
	if (!ret && gs && !ps->targets_later)
		ret = resolve_target(p, ps, ps->n, d);
	if (!ret)
		ps->n++;
	else
		free(ps->gspec[ps->n]);
	return ret;
}

int pairs_resolve_targets(struct lp_proc *p, struct lp_pairs *ps, struct lp_diag *d)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < ps->n; i++)
		if (ps->gspec[i])
			ret = resolve_target(p, ps, i, d);
	return ret;
}

/*
 * Functions already in the batch, by address: finds a repeated function as soon as its
 * line is read (an open-addressing hash set; the overlap check of plan_finish() would
 * only see it after every line was planned). @line 0: given on the command line.
 */
struct seen {
	uint64_t *addr;
	int *line;
	size_t cap, n;		/* cap: a power of two, or 0 */
};

static size_t seen_slot(const struct seen *s, uint64_t addr)
{
	size_t i = (size_t)((addr * 0x9e3779b97f4a7c15ull) >> 20) & (s->cap - 1);

	while (s->addr[i] && s->addr[i] != addr)
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* The line that named @addr first (0: the command line), or -1 after adding it. */
static int seen_add(struct seen *s, uint64_t addr, int line)
{
	if (2 * (s->n + 1) > s->cap) {
		struct seen b = { .cap = s->cap ? s->cap * 2 : 64 };
		b.addr = calloc(b.cap, sizeof(*b.addr));
		b.line = calloc(b.cap, sizeof(*b.line));
		if (!b.addr || !b.line) {
			free(b.addr);
			free(b.line);
			return -2;
		}
		for (size_t i = 0; i < s->cap; i++)
			if (s->addr[i]) {
				size_t j = seen_slot(&b, s->addr[i]);
				b.addr[j] = s->addr[i];
				b.line[j] = s->line[i];
			}
		b.n = s->n;
		free(s->addr);
		free(s->line);
		*s = b;
	}
	size_t i = seen_slot(s, addr);
	if (s->addr[i])
		return s->line[i];
	s->addr[i] = addr;
	s->line[i] = line;
	s->n++;
	return -1;
}

static void seen_free(struct seen *s)
{
	free(s->addr);
	free(s->line);
	memset(s, 0, sizeof(*s));
}

static int plan_read_error(struct lp_diag *d, const char *path, int err)
{
	return lp_fail(d, LP_EXIT_USAGE, "cannot read plan file %s: %s (give a readable file, "
		       "or - for standard input)", path, strerror(err));
}

static int too_large(struct lp_diag *d, const char *path)
{
	return lp_fail(d, LP_EXIT_USAGE, "plan file %s is larger than %u MiB, the most livepatch "
		       "reads (split the batch into several plans)", path, LP_PLAN_MAX_BYTES >> 20);
}

/* One line of a plan file, without its newline: @len bytes, NUL-terminated at @len. */
static int plan_line(struct lp_proc *p, const char *path, int no, char *line, size_t len,
		     struct lp_pairs *ps, size_t *cap, struct seen *seen, struct lp_diag *d)
{
	static const char space[] = " \t\r\v\f";
	const char *nul = memchr(line, 0, len);
	char *tok[2];
	size_t tlen[2];
	int n = 0, ret;

	if (nul)
		return lp_fail(d, LP_EXIT_USAGE, "%s:%d: a NUL byte at column %zu (a plan file is text, "
			       "one 'F G' pair a line: fix that line)", path, no, (size_t)(nul - line) + 1);
	line[strcspn(line, "#")] = 0;
	for (char *t = line + strspn(line, space); *t; t += strspn(t, space), n++) {
		size_t l = strcspn(t, space);
		if (n < 2) {
			tok[n] = t;
			tlen[n] = l;
		}
		t += l;
	}
	if (!n)
		return 0;
	if (n != 2)
		return lp_fail(d, LP_EXIT_USAGE, "%s:%d: expected 'F G' (a function and its target), "
			       "got '%.200s' (fix that line)", path, no, line);
	tok[0][tlen[0]] = tok[1][tlen[1]] = 0;
	ret = resolve_pair(p, ps, cap, tok[0], tok[1], d);
	if (!ret) {
		const struct lp_symbol *f = &ps->f[ps->n - 1];
		int first = seen_add(seen, f->addr, no);
		if (first == -2)
			ret = -ENOMEM;
		else if (first == 0)
			ret = lp_fail(d, LP_EXIT_USAGE, "%s:%d: %s:%s is already in the batch (given by "
				      "--func) (each function may appear once in a batch: remove the "
				      "duplicate)", path, no, f->obj->name, f->name);
		else if (first > 0)
			ret = lp_fail(d, LP_EXIT_USAGE, "%s:%d: %s:%s is already in the batch (line %d) "
				      "(each function may appear once in a batch: remove the duplicate)",
				      path, no, f->obj->name, f->name, first);
	} else if (d->code) {	/* name the line of a symbol problem too */
		char msg[sizeof(d->msg)];
		snprintf(msg, sizeof(msg), "%s:%d: %s", path, no, d->msg);
		memcpy(d->msg, msg, sizeof(msg));
	}
	return ret;
}

/* Open plan file @path (@is_stdin: "-") if it may be read: its descriptor, or < 0. */
static int plan_open(const char *path, bool is_stdin, struct lp_diag *d)
{
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;

	if (fd < 0)
		return plan_read_error(d, path, errno);
	if (fstat(fd, &st))
		st.st_mode = 0;
	if (S_ISDIR(st.st_mode))
		ret = plan_read_error(d, path, EISDIR);
	else if (S_ISREG(st.st_mode) && st.st_size > (off_t)LP_PLAN_MAX_BYTES)
		ret = too_large(d, path);
	if (ret && !is_stdin)
		close(fd);
	return ret ? ret : fd;
}

/* A plan file being read: the bytes after its last newline wait in buf for the next read. */
struct plan_reader {
	struct lp_proc *p;
	const char *path;
	int fd;
	int no;			/* the lines handed to plan_line() */
	char *buf;		/* LP_PLAN_MAX_LINE + 2 bytes */
	size_t have, total;	/* bytes in buf; bytes read */
	bool eof;
	struct lp_pairs *ps;
	size_t *cap;
	struct seen seen;
	struct lp_diag *d;
};

static int reader_line(struct plan_reader *r, char *line, size_t len)
{
	return plan_line(r->p, r->path, ++r->no, line, len, r->ps, r->cap, &r->seen, r->d);
}

/* Every complete line in buf; what follows the last newline moves to buf's start. */
static int reader_lines(struct plan_reader *r)
{
	char *line = r->buf, *nl;
	int ret = 0;

	while (!ret && (nl = memchr(line, '\n', r->have - (size_t)(line - r->buf)))) {
		*nl = 0;
		ret = reader_line(r, line, (size_t)(nl - line));
		line = nl + 1;
	}
	r->have -= (size_t)(line - r->buf);
	memmove(r->buf, line, r->have);
	return ret;
}

/* A line without its newline: too long, or the file's last line. */
static int reader_tail(struct plan_reader *r)
{
	int ret;

	if (!(r->have > LP_PLAN_MAX_LINE || (r->eof && r->have)))
		return 0;
	const char *nul = memchr(r->buf, 0, r->have);
	r->buf[r->have] = 0;
	if (r->have > LP_PLAN_MAX_LINE && !nul)
		ret = lp_fail(r->d, LP_EXIT_USAGE, "%s:%d: the line is longer than %u bytes, the "
			      "longest livepatch reads (fix that line)", r->path, r->no + 1,
			      LP_PLAN_MAX_LINE);
	else
		ret = reader_line(r, r->buf, r->have);
	r->have = 0;
	return ret;
}

/* One read() of the plan file, and the lines it completes. */
static int reader_next(struct plan_reader *r)
{
	/* room for one line of LP_PLAN_MAX_LINE bytes, its newline and one more byte */
	ssize_t n = read(r->fd, r->buf + r->have, LP_PLAN_MAX_LINE + 1 - r->have);
	int ret;

	if (n < 0)
		return errno == EINTR ? 0 : plan_read_error(r->d, r->path, errno);
	r->eof = !n;
	r->have += (size_t)n;
	r->total += (size_t)n;
	ret = reader_lines(r);
	if (!ret)
		ret = reader_tail(r);
	if (!ret && r->total > LP_PLAN_MAX_BYTES)
		ret = too_large(r->d, r->path);
	return ret;
}

/*
 * One "F G" pair a line; '#' starts a comment; blank lines are fine. At most
 * LP_PLAN_MAX_BYTES are read (/dev/zero or an endless pipe end there), lines of at
 * most LP_PLAN_MAX_LINE bytes, no NUL byte; a function named twice is refused at its
 * second line, before the rest is read.
 */
static int read_plan_file(struct lp_proc *p, const char *path, struct lp_pairs *ps, size_t *cap,
			  struct lp_diag *d)
{
	struct plan_reader r = { .p = p, .path = path, .ps = ps, .cap = cap, .d = d };
	bool is_stdin = !strcmp(path, "-");
	int ret = 0;

	r.fd = plan_open(path, is_stdin, d);
	if (r.fd < 0)
		return r.fd;
	if (!(r.buf = malloc(LP_PLAN_MAX_LINE + 2)))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < ps->n; i++)	/* the --func pairs */
		if (seen_add(&r.seen, ps->f[i].addr, 0) == -2)
			ret = -ENOMEM;
	while (!ret && !r.eof)
		ret = reader_next(&r);
	if (!is_stdin)
		close(r.fd);
	free(r.buf);
	seen_free(&r.seen);
	if (!ret && !ps->n)
		ret = lp_fail(d, LP_EXIT_USAGE, "plan file %s has no 'F G' line (nothing to do)", path);
	return ret;
}

/* Every function whose entry holds a jump livepatch wrote, from memory vs the files. */
static int collect_patched(struct lp_proc *p, struct lp_pairs *ps, size_t *cap, struct lp_diag *d)
{
	struct lp_changes c;
	int ret = inspect_changes(p, &c, d);

	for (size_t i = 0; !ret && i < c.n; i++) {
		if (!c.v[i].ours || c.v[i].func.kind != LP_SYM_FUNC)
			continue;
		ret = reserve_pair(ps, cap);
		if (!ret) {
			ps->gspec[ps->n] = NULL;
			ps->f[ps->n++] = c.v[i].func;
		}
	}
	inspect_free(&c);
	return ret;
}

int pairs_collect(struct lp_proc *p, const struct lp_pairs_want *w, struct lp_pairs *ps,
		  struct lp_diag *d)
{
	size_t cap = 0;
	int ret = 0;

	memset(ps, 0, sizeof(*ps));
	ps->revert = w->nreverts || w->revert_all;
	ps->targets_later = w->targets_later;
	for (size_t i = 0; !ret && i < w->nfuncs; i++)
		ret = resolve_pair(p, ps, &cap, w->funcs[i], w->targets[i], d);
	for (size_t i = 0; !ret && i < w->nreverts; i++)
		ret = resolve_pair(p, ps, &cap, w->reverts[i], NULL, d);
	if (!ret && w->plan_file)
		ret = read_plan_file(p, w->plan_file, ps, &cap, d);
	if (!ret && w->revert_all)
		ret = collect_patched(p, ps, &cap, d);
	return ret;
}

void pairs_free(struct lp_pairs *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->gspec[i]);
	free(ps->gspec);
	free(ps->f);
	free(ps->g);
	memset(ps, 0, sizeof(*ps));
}
