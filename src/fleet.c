/*
 * Many processes at once (livepatch.h, docs/design.md §12): the processes selected, each
 * one's plan made here first (a dry run, in this process, so that the symbol tables of a
 * file are read once for all), then each one's transaction in a worker process of its
 * own, up to --jobs at once. A line per process as it ends, then the summary; or one
 * JSON object holding every process's full report.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "elfsym.h"
#include "json.h"
#include "livepatch.h"
#include "lp.h"
#include "proc.h"
#include "report.h"
#include "select.h"

struct one {
	struct lp_selected sel;
	const char *outcome;	/* NULL until it ends */
	int exit_code;
	char message[1024];
	char *report;		/* its --json report, or NULL */
	char funcs[2048];	/* what --atomic's undo reverts */
	bool written;		/* bytes were written: --atomic undoes them */
	bool undo;		/* the run under way is --atomic's undo */
	pid_t worker;
	int fd;
	char *buf;
	size_t len, cap;
};

struct fleet {
	const struct lp_options *o;
	struct one *v;
	size_t n;
	unsigned int jobs;
	bool writes;		/* a write follows the plan: "planned" is not an end */
	bool stop;		/* --atomic after a failure, or a signal: start nothing more */
	const char *stop_why;
};

static volatile sig_atomic_t cancel_sig;

static void on_cancel(int sig)
{
	cancel_sig = sig;
}

static bool is_ok(const char *outcome)
{
	static const char *const ok[] = { "planned", "applied", "reverted", "already_applied",
					  "not_patched", "listed", "exited", "not_selected" };
	for (size_t i = 0; i < LP_ARRAY_SIZE(ok); i++)
		if (!strcmp(outcome, ok[i]))
			return true;
	return false;
}

/* How much worse exit code @a is than @b: 1 > 7 > 6 > 5 > 4 > 3 > 2 > 0. */
static int severity(int code)
{
	static const int rank[] = { 0, 7, 1, 2, 3, 4, 5, 6 };	/* by exit code 0..7 */

	return code >= 0 && code < (int)LP_ARRAY_SIZE(rank) ? rank[code] : 7;
}

/* The outcome of a run that ended with @oc: its status, or what its exit code means. */
static const char *classify(const struct one *p, const struct lp_outcome *oc)
{
	static const char *const known[] = { "planned", "applied", "reverted", "already_applied",
					     "not_patched", "listed" };
	if (!oc->exit_code) {
		for (size_t i = 0; i < LP_ARRAY_SIZE(known); i++)
			if (!strcmp(oc->status, known[i]))
				return p->undo ? "undone" : known[i];
		return "applied";
	}
	if (p->sel.start && select_gone(p->sel.pid, p->sel.start))
		return "exited";
	switch (oc->exit_code) {
	case LP_EXIT_VERIFY: return "unverified";
	case LP_EXIT_ABORTED: return "rolled_back";
	case LP_EXIT_INTERNAL: return "failed";
	default: return "refused";
	}
}

static void print_line(const struct fleet *f, const struct one *p)
{
	if (f->o->json || (f->o->quiet && is_ok(p->outcome)) ||
	    (f->writes && !strcmp(p->outcome, "planned")))
		return;
	printf("pid %d (%s): %s", p->sel.pid, p->sel.comm, p->outcome);
	if (p->exit_code && strcmp(p->outcome, "exited"))
		printf(" (exit %d)", p->exit_code);
	if (p->message[0])
		printf(": %s", p->message);
	putchar('\n');
	fflush(stdout);
}

/* @p ended with @oc and @report (NULL: none); it owns @report from here. */
static void finish(struct fleet *f, struct one *p, const struct lp_outcome *oc, char *report)
{
	bool undo = p->undo;

	p->outcome = classify(p, oc);
	p->exit_code = oc->exit_code;
	snprintf(p->message, sizeof(p->message), "%s", oc->message);
	if (!strcmp(p->outcome, "exited"))
		snprintf(p->message, sizeof(p->message), "the process exited during the rollout");
	if (report) {
		free(p->report);
		p->report = report;
	}
	if (!undo) {
		snprintf(p->funcs, sizeof(p->funcs), "%s", oc->funcs);
		p->written = !strcmp(p->outcome, "applied") || !strcmp(p->outcome, "reverted") ||
			     !strcmp(p->outcome, "unverified");
	} else {
		p->written = strcmp(p->outcome, "undone") != 0;
		if (p->written)
			snprintf(p->message, sizeof(p->message), "--atomic could not revert it (exit "
				 "%d): %s", oc->exit_code, oc->message);
	}
	print_line(f, p);
}

static void finish_as(struct fleet *f, struct one *p, const char *outcome, int code, const char *msg)
{
	p->outcome = outcome;
	p->exit_code = code;
	snprintf(p->message, sizeof(p->message), "%s", msg);
	print_line(f, p);
}

/* The options of one process's run: @o for process @pid, its report captured. */
static struct lp_options one_run(const struct lp_options *o, pid_t pid, FILE *out,
				  struct lp_outcome *oc)
{
	struct lp_options r = *o;

	r.pid = pid;
	r.pids = NULL;
	r.npids = 0;
	r.all = r.all_build_id = r.exe = NULL;
	r.json = true;
	r.quiet = false;
	r.out = out;
	r.outcome = oc;
	return r;
}

/* Run @r in this process, its report in memory: read-only runs (a dry run, --list). */
static int run_here(const struct lp_options *r, char **report)
{
	size_t len = 0;
	FILE *mf = open_memstream(report, &len);

	if (!mf)
		return -ENOMEM;
	struct lp_options with = *r;
	with.out = mf;
	(void)livepatch_run(&with);
	fclose(mf);
	while (len && (*report)[len - 1] == '\n')
		(*report)[--len] = 0;
	return 0;
}

/*
 * What a dry run cannot see, since it attaches to nothing: another tracer, or Yama
 * forbidding every attach. 0, or the refusal in @oc.
 */
static int precheck(pid_t pid, struct lp_outcome *oc)
{
	long tracer = proc_status_field(pid, "TracerPid");

	if (tracer > 0 && tracer != getpid()) {
		char path[64], comm[64] = "?";
		snprintf(path, sizeof(path), "/proc/%ld/comm", tracer);
		FILE *c = fopen(path, "re");
		if (c) {
			if (fgets(comm, sizeof(comm), c))
				comm[strcspn(comm, "\n")] = 0;
			fclose(c);
		}
		*oc = (struct lp_outcome){ .exit_code = LP_EXIT_PROCESS };
		snprintf(oc->message, sizeof(oc->message), "process %d is already traced by pid %ld "
			 "(%s) (detach that debugger or tracer, then retry)", pid, tracer, comm);
		return 1;
	}
	struct lp_perm_facts pf = { .yama = -1 };
	FILE *y = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (y) {
		if (fscanf(y, "%d", &pf.yama) != 1)
			pf.yama = -1;
		fclose(y);
	}
	if (pf.yama == 3) {
		struct lp_diag d = { 0 };
		pf.pid = pid;
		(void)!proc_perm_diagnose(&pf, &d);
		*oc = (struct lp_outcome){ .exit_code = d.code ? d.code : LP_EXIT_PROCESS };
		snprintf(oc->message, sizeof(oc->message), "%s", d.msg);
		return 1;
	}
	return 0;
}

/* A dry run of @p here: planned, nothing to do, or refused. */
static void plan_one(struct fleet *f, struct one *p)
{
	struct lp_outcome oc = { 0 };
	char *report = NULL;

	if (precheck(p->sel.pid, &oc)) {
		finish(f, p, &oc, NULL);
		return;
	}
	struct lp_options r = one_run(f->o, p->sel.pid, NULL, &oc);
	r.dry_run = true;
	r.verify_s = 0;
	r.safe = f->writes ? false : r.safe;	/* the workers check who is inside */
	if (run_here(&r, &report)) {
		oc = (struct lp_outcome){ .exit_code = LP_EXIT_INTERNAL };
		snprintf(oc.message, sizeof(oc.message), "out of memory");
	}
	finish(f, p, &oc, report);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The worker: @r's run, then its outcome and report down @fd. Never returns. */
static void worker(struct fleet *f, const struct lp_options *r, int fd)
{
	struct lp_outcome oc = { 0 };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	char *report = NULL;
	size_t len = 0;

	for (size_t i = 0; i < f->n; i++)	/* the others' pipes: their EOF is their worker's */
		if (f->v[i].fd >= 0)
			close(f->v[i].fd);
	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGHUP, &dfl, NULL);
	FILE *mf = open_memstream(&report, &len);
	struct lp_options mine = *r;
	mine.outcome = &oc;
	mine.out = mf ? mf : stdout;
	int code = livepatch_run(&mine);
	if (mf)
		fclose(mf);
	if (write_all(fd, &oc, sizeof(oc)) || (report && write_all(fd, report, len)))
		code = LP_EXIT_INTERNAL;
	_exit(code);
}

static int start(struct fleet *f, struct one *p, const struct lp_options *r)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid_t w = fork();
	if (w < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (!w) {
		close(fds[0]);
		worker(f, r, fds[1]);
	}
	close(fds[1]);
	p->worker = w;
	p->fd = fds[0];
	p->len = 0;
	return 0;
}

/* @p's worker closed its pipe: reap it and take what it said. */
static void reaped(struct fleet *f, struct one *p)
{
	struct lp_outcome oc = { 0 };
	int status = 0;

	close(p->fd);
	p->fd = -1;
	while (waitpid(p->worker, &status, 0) < 0 && errno == EINTR)
		;
	p->worker = 0;
	if (p->len < sizeof(oc)) {
		oc.exit_code = LP_EXIT_INTERNAL;
		snprintf(oc.message, sizeof(oc.message), "its worker %s %d (please report it)",
			 WIFSIGNALED(status) ? "was killed by signal" : "exited with",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		finish(f, p, &oc, NULL);
		return;
	}
	memcpy(&oc, p->buf, sizeof(oc));
	size_t n = p->len - sizeof(oc);
	char *report = n ? malloc(n + 1) : NULL;
	if (report) {
		memcpy(report, p->buf + sizeof(oc), n);
		while (n && (report[n - 1] == '\n' || !report[n - 1]))
			n--;
		report[n] = 0;
	}
	finish(f, p, &oc, report);
}

static int read_some(struct one *p)
{
	if (p->cap - p->len < 4096) {
		size_t cap = p->cap ? 2 * p->cap : 16384;
		char *b = realloc(p->buf, cap);
		if (!b)
			return -ENOMEM;
		p->buf = b;
		p->cap = cap;
	}
	ssize_t n = read(p->fd, p->buf + p->len, p->cap - p->len);
	if (n < 0)
		return errno == EINTR ? 1 : -errno;
	p->len += (size_t)n;
	return n > 0;
}

static void forward_cancel(struct fleet *f)
{
	if (!cancel_sig)
		return;
	if (!f->stop) {
		f->stop = true;
		f->stop_why = "not started: livepatch was interrupted";
	}
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].worker > 0)
			kill(f->v[i].worker, cancel_sig);	/* each rolls its transaction back */
}

/*
 * Run the processes @idx[0..n) through workers, --jobs at once, with @verify_s (0: none);
 * @undo: --atomic's revert of what they wrote. With --atomic, a failure stops the starts.
 */
static int run_batch(struct fleet *f, const size_t *idx, size_t n, double verify_s, bool undo)
{
	/*
	 * One --verify at a time: uprobes on the same file in two processes at once made one
	 * window see no call at all (1 in 3 runs of two, on kernel 6.18), single or not.
	 */
	unsigned int jobs = verify_s > 0 ? 1 : f->jobs;
	struct pollfd *pf = calloc(f->jobs, sizeof(*pf));
	size_t *slot = calloc(f->jobs, sizeof(*slot));
	size_t next = 0, running = 0;
	int ret = pf && slot ? 0 : -ENOMEM;

	while (!ret && (running || (next < n && !f->stop))) {
		while (running < jobs && next < n && !f->stop) {
			struct one *p = &f->v[idx[next++]];
			struct lp_options r = one_run(f->o, p->sel.pid, NULL, NULL);
			const char *revert[64];
			size_t nrev = 0;
			r.verify_s = verify_s;
			p->undo = undo;
			if (undo) {	/* the functions it patched, back as they were */
				for (char *s = p->funcs, *e; (e = strchr(s, '\n')) &&
				     nrev < LP_ARRAY_SIZE(revert); s = e + 1) {
					*e = 0;
					revert[nrev++] = s;
				}
				r.nfuncs = r.ntargets = r.nloads = 0;
				r.plan_file = NULL;
				r.reverts = revert;
				r.nreverts = nrev;
				r.verify_s = 0;
			}
			if ((ret = start(f, p, &r)))
				break;
			running++;
		}
		size_t k = 0;
		for (size_t i = 0; i < f->n && k < f->jobs; i++)
			if (f->v[i].worker > 0 && f->v[i].fd >= 0) {
				pf[k] = (struct pollfd){ .fd = f->v[i].fd, .events = POLLIN };
				slot[k++] = i;
			}
		if (!k)
			break;
		if (poll(pf, k, -1) < 0) {
			if (errno != EINTR)
				ret = -errno;
			forward_cancel(f);
			continue;
		}
		for (size_t i = 0; i < k; i++) {
			struct one *p = &f->v[slot[i]];
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int r = read_some(p);
			if (r < 0 && r != -ENOMEM)
				r = 0;	/* a broken pipe is its end */
			if (r)
				continue;
			reaped(f, p);
			running--;
			if (f->o->atomic && !undo && !is_ok(p->outcome) && !f->stop) {
				f->stop = true;
				f->stop_why = "not started: --atomic, and another process failed";
			}
		}
	}
	free(pf);
	free(slot);
	return ret;
}

/* Everything not run yet is skipped, with why. */
static void skip_rest(struct fleet *f, const char *why)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->v[i].outcome)
			finish_as(f, &f->v[i], "skipped", 0, why);
}

/* --atomic after a failure: what was written goes back. */
static int undo_written(struct fleet *f)
{
	size_t *idx = calloc(f->n + 1, sizeof(*idx)), n = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].written)
			idx[n++] = i;
	bool stop = f->stop;
	f->stop = false;
	int ret = run_batch(f, idx, n, 0, true);
	f->stop = stop;
	free(idx);
	return ret;
}

static bool failed_any(const struct fleet *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].outcome && !is_ok(f->v[i].outcome) && strcmp(f->v[i].outcome, "skipped"))
			return true;
	return false;
}

/* The writes: the canaries with --verify first, then the rest; --atomic undoes on failure. */
static int run_writes(struct fleet *f)
{
	size_t *idx = calloc(f->n + 1, sizeof(*idx)), n = 0;
	int ret = idx ? 0 : -ENOMEM;

	for (size_t i = 0; idx && i < f->n; i++)
		if (f->v[i].outcome && !strcmp(f->v[i].outcome, "planned"))
			idx[n++] = i;
	for (size_t i = 0; i < n; i++)
		f->v[idx[i]].outcome = NULL;	/* planned: now for real */
	if (!ret && f->o->atomic && failed_any(f)) {
		f->stop = true;
		f->stop_why = "not started: --atomic, and another process was refused";
	}
	size_t first = f->o->canary < n ? f->o->canary : n;
	if (!ret && first && !f->stop) {
		ret = run_batch(f, idx, first, f->o->verify_s > 0 ? f->o->verify_s : 1.0, false);
		if (!ret && failed_any(f) && !f->stop) {
			f->stop = true;
			f->stop_why = "not started: a canary failed";
		}
	}
	if (!ret && !f->stop)
		ret = run_batch(f, idx + first, n - first, f->o->verify_s, false);
	if (!ret && f->o->atomic && failed_any(f))
		ret = undo_written(f);
	free(idx);
	return ret;
}

static const char *const ORDER[] = {
	"applied", "reverted", "already_applied", "not_patched", "planned", "listed", "exited",
	"not_selected", "refused", "rolled_back", "unverified", "failed", "undone", "skipped",
};

static void summary_text(const struct fleet *f, char *buf, size_t cap)
{
	size_t len = 0;

	if (!f->n) {
		snprintf(buf, cap, "no process selected (nothing to do)");
		return;
	}
	len += (size_t)snprintf(buf, cap, "%zu process%s:", f->n, f->n == 1 ? "" : "es");
	for (size_t k = 0, sep = 0; k < LP_ARRAY_SIZE(ORDER) && len < cap; k++) {
		size_t c = 0;
		for (size_t i = 0; i < f->n; i++)
			c += f->v[i].outcome && !strcmp(f->v[i].outcome, ORDER[k]);
		if (!c)
			continue;
		char word[32];
		snprintf(word, sizeof(word), "%s", ORDER[k]);
		for (char *u = word; *u; u++)
			*u = *u == '_' ? ' ' : *u;
		len += (size_t)snprintf(buf + len, cap - len, "%s %zu %s", sep++ ? "," : "", c, word);
	}
}

static int exit_code_of(const struct fleet *f)
{
	int code = 0;

	for (size_t i = 0; i < f->n; i++) {
		const struct one *p = &f->v[i];
		if (!p->outcome || is_ok(p->outcome) || !strcmp(p->outcome, "skipped") ||
		    !strcmp(p->outcome, "undone"))
			continue;
		if (severity(p->exit_code) > severity(code))
			code = p->exit_code;
	}
	if (!code && cancel_sig)
		code = LP_EXIT_ABORTED;
	return code;
}

static void print_json(const struct fleet *f, int code, const char *text)
{
	struct json j;

	json_init(&j, stdout);
	json_open(&j, NULL, '{');
	json_open(&j, "processes", '[');
	for (size_t i = 0; i < f->n; i++) {
		const struct one *p = &f->v[i];
		json_open(&j, NULL, '{');
		json_int(&j, "pid", p->sel.pid);
		json_str(&j, "comm", p->sel.comm);
		json_str(&j, "outcome", p->outcome);
		json_int(&j, "exit_code", p->exit_code);
		json_str(&j, "message", p->message[0] ? p->message : NULL);
		json_raw(&j, "report", p->report && p->report[0] == '{' ? p->report : NULL);
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_open(&j, "summary", '{');
	json_int(&j, "processes", (int64_t)f->n);
	json_int(&j, "exit_code", code);
	json_open(&j, "counts", '{');
	for (size_t k = 0; k < LP_ARRAY_SIZE(ORDER); k++) {
		int64_t c = 0;
		for (size_t i = 0; i < f->n; i++)
			c += f->v[i].outcome && !strcmp(f->v[i].outcome, ORDER[k]);
		if (c)
			json_int(&j, ORDER[k], c);
	}
	json_close(&j, '}');
	json_str(&j, "text", text);
	json_close(&j, '}');
	json_close(&j, '}');
	fflush(stdout);
}

bool livepatch_many(const struct lp_options *o)
{
	return o->npids > 1 || o->all || o->all_build_id || o->exe;
}

int livepatch_run_many(const struct lp_options *o)
{
	struct lp_selector s = {
		.pids = o->npids > 1 ? o->pids : NULL, .npids = o->npids > 1 ? o->npids : 0,
		.all = o->all, .build_id = o->all_build_id, .exe = o->exe,
		.excludes = o->excludes, .nexcludes = o->nexcludes,
	};
	struct lp_selection sel;
	struct lp_diag d = { 0 };
	struct fleet f = { .o = o };
	int ret = select_processes(&s, &sel, &d);

	if (ret) {
		if (!d.code)
			snprintf(d.msg, sizeof(d.msg), "cannot list the processes: %s", strerror(-ret));
		report_error(stdout, &d, lp_exit_code(ret), o->json);
		return lp_exit_code(ret);
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	f.jobs = o->jobs ? o->jobs : cpus > 0 ? (unsigned int)cpus : 1;
	f.v = calloc(sel.n + 1, sizeof(*f.v));
	if (!f.v) {
		select_free(&sel);
		return LP_EXIT_INTERNAL;
	}
	f.n = sel.n;
	for (size_t i = 0; i < sel.n; i++)
		f.v[i] = (struct one){ .sel = sel.v[i], .fd = -1 };
	select_free(&sel);

	struct sigaction on = { .sa_handler = on_cancel }, old[3];
	const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	cancel_sig = 0;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &on, &old[i]);	/* no SA_RESTART: poll() must return */

	elfsym_share(true);	/* one symbol table per file for all the processes (§12) */
	bool writes = !o->dry_run && !o->list;
	f.writes = writes;
	for (size_t i = 0; i < f.n && !cancel_sig; i++) {
		struct one *p = &f.v[i];
		if (p->sel.not_selected)
			finish_as(&f, p, "not_selected", 0, p->sel.why);
		else if (writes || o->dry_run)
			plan_one(&f, p);
		else {
			struct lp_outcome oc = { 0 };
			char *report = NULL;
			struct lp_options r = one_run(o, p->sel.pid, NULL, &oc);
			if (run_here(&r, &report))
				oc.exit_code = LP_EXIT_INTERNAL;
			finish(&f, p, &oc, report);
		}
	}
	if (writes && !cancel_sig)
		ret = run_writes(&f);
	forward_cancel(&f);
	skip_rest(&f, f.stop_why ? f.stop_why : "not started: livepatch was interrupted");
	elfsym_share(false);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);

	char text[1024];
	int code = ret ? LP_EXIT_INTERNAL : exit_code_of(&f);
	summary_text(&f, text, sizeof(text));
	if (o->json)
		print_json(&f, code, text);
	else if (!o->quiet || code)
		printf("%s\n", text);
	for (size_t i = 0; i < f.n; i++) {
		free(f.v[i].report);
		free(f.v[i].buf);
	}
	free(f.v);
	return code;
}
