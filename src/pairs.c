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
	if (!f || !g)
		return -ENOMEM;
	*cap = ncap;
	return 0;
}

/* Resolve function @fs and target @gs (NULL: a revert) and append them to @ps. */
static int resolve_pair(struct lp_proc *p, struct lp_pairs *ps, size_t *cap, const char *fs,
			const char *gs, struct lp_diag *d)
{
	int ret = reserve_pair(ps, cap);

	if (!ret)
		ret = resolve_function(p, fs, "function", &ps->f[ps->n], d);
	if (!ret && gs)
		ret = resolve_function(p, gs, "target", &ps->g[ps->n], d);
	if (!ret && gs && ps->f[ps->n].addr == ps->g[ps->n].addr)
		ret = lp_fail(d, LP_EXIT_USAGE, "the function and the target are the same (%s at 0x%" PRIx64
			      ") (give --target the replacement function)", fs, ps->f[ps->n].addr);
	if (!ret)
		ps->n++;
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

/*
 * One "F G" pair a line; '#' starts a comment; blank lines are fine. At most
 * LP_PLAN_MAX_BYTES are read (/dev/zero or an endless pipe end there), lines of at
 * most LP_PLAN_MAX_LINE bytes, no NUL byte; a function named twice is refused at its
 * second line, before the rest is read.
 */
static int read_plan_file(struct lp_proc *p, const char *path, struct lp_pairs *ps, size_t *cap,
			  struct lp_diag *d)
{
	bool is_stdin = !strcmp(path, "-");
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t have = 0, total = 0;
	struct seen seen = { 0 };
	struct stat st;
	int no = 0, ret = 0;
	bool eof = false;

	if (fd < 0)
		return plan_read_error(d, path, errno);
	if (fstat(fd, &st))
		st.st_mode = 0;
	if (S_ISDIR(st.st_mode))
		ret = plan_read_error(d, path, EISDIR);
	else if (S_ISREG(st.st_mode) && st.st_size > (off_t)LP_PLAN_MAX_BYTES)
		ret = too_large(d, path);
	else if (!(buf = malloc(LP_PLAN_MAX_LINE + 2)))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < ps->n; i++)	/* the --func pairs */
		if (seen_add(&seen, ps->f[i].addr, 0) == -2)
			ret = -ENOMEM;
	while (!ret && !eof) {
		/* room for one line of LP_PLAN_MAX_LINE bytes, its newline and one more byte */
		ssize_t r = read(fd, buf + have, LP_PLAN_MAX_LINE + 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = plan_read_error(d, path, errno);
			break;
		}
		eof = !r;
		have += (size_t)r;
		total += (size_t)r;
		char *line = buf, *nl;
		while (!ret && (nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = 0;
			ret = plan_line(p, path, ++no, line, (size_t)(nl - line), ps, cap, &seen, d);
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (ret)
			break;
		if (have > LP_PLAN_MAX_LINE || (eof && have)) {	/* too long, or the last line */
			const char *nul = memchr(buf, 0, have);
			buf[have] = 0;
			if (have > LP_PLAN_MAX_LINE && !nul)
				ret = lp_fail(d, LP_EXIT_USAGE, "%s:%d: the line is longer than %u bytes, "
					      "the longest livepatch reads (fix that line)", path, no + 1,
					      LP_PLAN_MAX_LINE);
			else
				ret = plan_line(p, path, ++no, buf, have, ps, cap, &seen, d);
			have = 0;
		}
		if (!ret && total > LP_PLAN_MAX_BYTES)
			ret = too_large(d, path);
	}
	if (!is_stdin)
		close(fd);
	free(buf);
	seen_free(&seen);
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
		if (!ret)
			ps->f[ps->n++] = c.v[i].func;
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
	free(ps->f);
	free(ps->g);
	memset(ps, 0, sizeof(*ps));
}
