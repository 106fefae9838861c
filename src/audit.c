/*
 * Audit (audit.h): the record of a transaction as key=value lines, and a syslog client
 * that knows whether they were delivered (docs/design.md §10).
 *
 * Facility LOG_AUTHPRIV: the record says who changed a running process, a matter of
 * security like sudo's own record (also authpriv); syslog daemons keep that facility
 * in a file only root and adm read (/var/log/auth.log), and the journal keeps it as
 * any other (`journalctl -t livepatch` finds it by the tag).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "audit.h"

#define FACILITY_AUTHPRIV (10 << 3)
#define SEV_WARNING 4
#define SEV_NOTICE 5
#define SEND_TIMEOUT_MS 1000	/* a syslog daemon that stops reading must not hang livepatch */

/* ---- the record's items ---- */

/* A growing text; @nomem once a write failed (then the text is not used). */
struct text {
	char *p;
	size_t len, cap;
	bool nomem;
};

static void put(struct text *t, const char *s, size_t n)
{
	if (t->nomem)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->nomem = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
}

static void putf(struct text *t, const char *fmt, ...) LP_PRINTF(2, 3);
static void putf(struct text *t, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	put(t, buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/*
 * A value as it is written: bare when it is printable ASCII without a space, '"', '\'
 * or '='; else in double quotes, with \" and \\, and \xHH for a byte outside printable
 * ASCII (a control character, or UTF-8: a syslog line stays one line of ASCII).
 */
static void put_value(struct text *t, const char *v)
{
	bool bare = *v;

	for (const unsigned char *c = (const unsigned char *)v; *c && bare; c++)
		bare = *c > ' ' && *c < 0x7f && *c != '"' && *c != '\\' && *c != '=';
	if (bare) {
		put(t, v, strlen(v));
		return;
	}
	put(t, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
		if (*c == '"' || *c == '\\')
			putf(t, "\\%c", *c);
		else if (*c < ' ' || *c >= 0x7f)
			putf(t, "\\x%02x", *c);
		else
			put(t, (const char *)c, 1);
	}
	put(t, "\"", 1);
}

static void put_hex(struct text *t, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putf(t, "%02x", p[i]);
	if (!n)
		put(t, "-", 1);
}

/* Items end with a NUL each: an item is never split between two lines. */
static void end_item(struct text *t)
{
	put(t, "", 0);
	if (!t->nomem)
		t->len++;	/* keep the NUL put() wrote */
}

static void put_patches(struct text *t, const char *what, const char *key,
			const struct audit_patch *v, size_t n)
{
	char hex[65];

	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", v[i].sha256[k]);
		putf(t, "%s.%zu.%s=", what, i, key);
		put_value(t, v[i].path);
		putf(t, " %s.%zu.sha256=%s", what, i, hex);
		end_item(t);
	}
}

/* Every item of @r, in the order of docs/design.md §10. */
static void record_items(const struct audit_rec *r, struct text *t)
{
	putf(t, "v=%d", AUDIT_FORMAT);
	end_item(t);
	putf(t, "result=");
	put_value(t, r->result ? r->result : "?");
	putf(t, " exit=%d action=", r->exit_code);
	put_value(t, r->action ? r->action : "?");
	end_item(t);
	putf(t, "uid=%u", (unsigned int)r->uid);
	if (r->sudo_user[0]) {
		put(t, " sudo_user=", 11);
		put_value(t, r->sudo_user);
	}
	end_item(t);
	putf(t, "pid=%d exe=", (int)r->pid);
	put_value(t, r->exe[0] ? r->exe : "?");
	put(t, " build_id=", 10);
	put_value(t, r->build_id[0] ? r->build_id : "none");
	end_item(t);
	putf(t, "sites=%zu loads=%zu unloads=%zu", r->nsites, r->nloads, r->nunloads);
	end_item(t);
	if (r->exit_code && r->error) {
		put(t, "error=", 6);
		put_value(t, r->error);
		end_item(t);
	}
	put_patches(t, "load", "path", r->loads, r->nloads);
	put_patches(t, "unload", "name", r->unloads, r->nunloads);
	for (size_t i = 0; i < r->nsites; i++) {
		const struct audit_site *s = &r->sites[i];
		putf(t, "site.%zu.func=", i);
		put_value(t, s->func ? s->func : "?");
		putf(t, " site.%zu.addr=0x%" PRIx64 " site.%zu.old=", i, s->addr, i);
		put_hex(t, s->old_bytes, s->len);
		putf(t, " site.%zu.new=", i);
		put_hex(t, s->new_bytes, s->len);
		end_item(t);
	}
}

/* ---- lines ---- */

static int digits(size_t n)
{
	int d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/*
 * Pack the items into lines "tx=ID part=K/N ITEM ITEM ..." of at most @max bytes,
 * with the prefix as wide as if K and N had @width digits: the number of lines; with
 * @emit, each line handed to it.
 */
static int pack(const struct audit_rec *r, const struct text *items, size_t max, int width,
		int total, int (*emit)(const char *, size_t, void *), void *arg)
{
	size_t prefix = strlen("tx= part=/") + strlen(r->tx) + 2 * (size_t)width;
	char *line = emit ? malloc(max + items->len + 64) : NULL;
	int n = 0, ret = 0;

	if (emit && !line)
		return -ENOMEM;
	for (size_t at = 0; at < items->len && !ret;) {
		size_t len = prefix, first = at;
		/* Items while they fit; the first one whatever its length. */
		while (at < items->len) {
			size_t il = strlen(items->p + at);
			if (at != first && len + 1 + il > max)
				break;
			len += 1 + il;
			at += il + 1;
		}
		n++;
		if (!emit)
			continue;
		int l = snprintf(line, 64, "tx=%s part=%d/%d", r->tx, n, total);
		for (size_t i = first; i < at; i += strlen(items->p + i) + 1)
			l += sprintf(line + l, " %s", items->p + i);
		ret = emit(line, (size_t)l, arg);
	}
	free(line);
	return ret ? ret : n;
}

int audit_format(const struct audit_rec *r, size_t max,
		 int (*emit)(const char *line, size_t len, void *arg), void *arg)
{
	struct text items = { 0 };
	int n = 0, width = 1;

	record_items(r, &items);
	if (items.nomem) {
		free(items.p);
		return -ENOMEM;
	}
	/* The prefix grows with the number of lines: pack again until its width holds. */
	for (int tries = 0; tries < 8; tries++) {
		n = pack(r, &items, max, width, 0, NULL, NULL);
		if (digits((size_t)n) <= width)
			break;
		width = digits((size_t)n);
	}
	n = pack(r, &items, max, width, n, emit, arg);
	free(items.p);
	return n;
}

/* ---- the syslog client ---- */

struct sender {
	int fd;
	bool stream;
	char head[96];		/* "<PRI>Mmm dd hh:mm:ss livepatch[PID]: " */
	size_t hlen;
	char *buf;
	size_t cap;
	int sent;
	int err;
};

/* One datagram: header and line (a stream socket gets a NUL after it, as glibc sends). */
static int send_line(const char *line, size_t len, void *arg)
{
	struct sender *s = arg;
	size_t n = s->hlen + len + s->stream;

	if (n + 1 > s->cap) {	/* an item longer than a line, alone on its own */
		char *b = realloc(s->buf, n + 1);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap = n + 1;
	}
	memcpy(s->buf, s->head, s->hlen);
	memcpy(s->buf + s->hlen, line, len);
	s->buf[s->hlen + len] = 0;
	for (;;) {
		ssize_t w = send(s->fd, s->buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 || (size_t)w != n) {
			s->err = w < 0 ? errno : EMSGSIZE;
			return -s->err;
		}
		s->sent++;
		return 0;
	}
}

/* A connected socket to @path, datagram first, stream when the daemon listens so. */
static int connect_log(const char *path, bool *stream)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tmo = { SEND_TIMEOUT_MS / 1000, (SEND_TIMEOUT_MS % 1000) * 1000 };
	int err = 0;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path));
	for (int k = 0; k < 2; k++) {
		int fd = socket(AF_UNIX, (k ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			*stream = k;
			return fd;
		}
		err = errno;
		close(fd);
		if (err != EPROTOTYPE)
			break;
	}
	return -err;
}

int audit_log_tx(const struct audit_rec *r, const char *socket_path, char *why, size_t cap)
{
	const char *path = socket_path ? socket_path : AUDIT_SOCKET;
	struct sender s = { .fd = -1 };
	struct tm tm;
	char stamp[32];
	time_t now = time(NULL);

	s.fd = connect_log(path, &s.stream);
	if (s.fd < 0) {
		snprintf(why, cap, "cannot connect to %s: %s", path, strerror(-s.fd));
		return s.fd;
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);	/* RFC 3164: "Dec  5 06:01:02" */
	s.hlen = (size_t)snprintf(s.head, sizeof(s.head), "<%d>%s livepatch[%d]: ",
				  FACILITY_AUTHPRIV | (r->exit_code ? SEV_WARNING : SEV_NOTICE),
				  stamp, (int)getpid());
	int n = audit_format(r, AUDIT_LINE_MAX - s.hlen, send_line, &s);
	close(s.fd);
	free(s.buf);
	if (n < 0 && !s.err)
		snprintf(why, cap, "out of memory");
	else if (n < 0)
		snprintf(why, cap, "sent %d lines to %s, then: %s", s.sent, path, strerror(s.err));
	return n;
}

/* ---- who, and the process ---- */

/* The GNU build-id note among the notes @p (@len bytes), in hex: 0 or -ENOENT. */
static int note_build_id(const uint8_t *p, size_t len, char *hex, size_t cap)
{
	for (size_t at = 0; at + 12 <= len;) {
		uint32_t nsz, dsz, type;
		memcpy(&nsz, p + at, 4);
		memcpy(&dsz, p + at + 4, 4);
		memcpy(&type, p + at + 8, 4);
		size_t name = at + 12, desc = name + (((size_t)nsz + 3) & ~(size_t)3);
		if (nsz > len || dsz > len || desc + dsz > len)
			break;
		if (type == NT_GNU_BUILD_ID && nsz == 4 && !memcmp(p + name, "GNU", 4) &&
		    dsz && 2 * (size_t)dsz < cap) {
			for (size_t i = 0; i < dsz; i++)
				snprintf(hex + 2 * i, 3, "%02x", p[desc + i]);
			return 0;
		}
		at = desc + (((size_t)dsz + 3) & ~(size_t)3);
	}
	return -ENOENT;
}

int audit_build_id(int fd, char *hex, size_t cap)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t notes[4096];

	hex[0] = 0;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return -ENOENT;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(ph))
		return -ENOENT;
	for (unsigned int i = 0; i < eh.e_phnum && i < 256; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
			return -EIO;
		if (ph.p_type != PT_NOTE)
			continue;
		size_t n = ph.p_filesz < sizeof(notes) ? ph.p_filesz : sizeof(notes);
		ssize_t got = pread(fd, notes, n, (off_t)ph.p_offset);
		if (got > 0 && !note_build_id(notes, (size_t)got, hex, cap))
			return 0;
	}
	return -ENOENT;
}

/* 16 hex digits from the kernel's random pool (the time and pid, if it has none). */
static void make_tx_id(char *out, size_t cap)
{
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		id = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
	}
	snprintf(out, cap, "%016" PRIx64, id);
}

void audit_rec_init(struct audit_rec *r, pid_t pid, pid_t via)
{
	const char *sudo = getenv("SUDO_USER");
	char path[64];

	memset(r, 0, sizeof(*r));
	make_tx_id(r->tx, sizeof(r->tx));
	r->uid = getuid();
	if (sudo)
		snprintf(r->sudo_user, sizeof(r->sudo_user), "%s", sudo);
	r->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/exe", via ? via : pid);
	ssize_t n = readlink(path, r->exe, sizeof(r->exe) - 1);
	r->exe[n > 0 ? n : 0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (audit_build_id(fd, r->build_id, sizeof(r->build_id)))
			r->build_id[0] = 0;	/* none, or unreadable: "build_id=none" */
		close(fd);
	}
}
