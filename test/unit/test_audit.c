/*
 * audit: the record's lines (fields, quoting, splitting without cutting), the syslog
 * datagrams (header, priority, a missing socket, a stream socket) and the build-id
 * reader on crafted ELF files.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "util.h"
#include "audit.h"

static const uint8_t OLD[5] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 };
static const uint8_t NEW[5] = { 0xe9, 0xfb, 0x0f, 0x00, 0x00 };
static uint8_t SHA[32];

/* A record as audit_rec_init would make it, with fixed values. */
static void base_rec(struct audit_rec *r, struct audit_site *s)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->tx, "0123456789abcdef");
	r->uid = 0;
	r->pid = 42;
	strcpy(r->exe, "/usr/sbin/daemon");
	strcpy(r->build_id, "abcd");
	r->action = "patch";
	r->result = "applied";
	*s = (struct audit_site){ .func = "daemon:f", .addr = 0x401000, .old_bytes = OLD,
				  .new_bytes = NEW, .len = 5 };
	r->sites = s;
	r->nsites = 1;
}

/* The lines audit_format emits, kept. */
struct lines {
	char *v[4096];
	size_t n;
};

static int keep(const char *line, size_t len, void *arg)
{
	struct lines *l = arg;

	assert_int_equal(strlen(line), len);
	assert_true(l->n < LP_ARRAY_SIZE(l->v));
	l->v[l->n++] = strdup(line);
	return 0;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* One site: one line, every field in its documented order and form. */
static void test_format_one_line(void **state)
{
	struct audit_rec r;
	struct audit_site s;
	struct lines l = { 0 };

	(void)state;
	base_rec(&r, &s);
	assert_int_equal(audit_format(&r, 1000, keep, &l), 1);
	assert_string_equal(l.v[0], "tx=0123456789abcdef part=1/1 v=1 result=applied exit=0 "
			    "action=patch uid=0 pid=42 exe=/usr/sbin/daemon build_id=abcd sites=1 "
			    "loads=0 unloads=0 site.0.func=daemon:f site.0.addr=0x401000 "
			    "site.0.old=f30f1efa55 site.0.new=e9fb0f0000");
	lines_free(&l);
}

/* SUDO_USER, the error (only with an exit code), patches loaded and unloaded. */
static void test_format_optional_fields(void **state)
{
	struct audit_rec r;
	struct audit_site s;
	struct audit_patch p[2] = { { "/srv/fix.o", SHA }, { "old.o", SHA } };
	struct lines l = { 0 };

	(void)state;
	base_rec(&r, &s);
	strcpy(r.sudo_user, "alice");
	r.error = "not shown with exit 0";
	r.loads = p;
	r.nloads = 1;
	r.unloads = p + 1;
	r.nunloads = 1;
	assert_int_equal(audit_format(&r, 4000, keep, &l), 1);
	assert_contains(l.v[0], " uid=0 sudo_user=alice pid=42 ");
	assert_contains(l.v[0], " loads=1 unloads=1 ");
	assert_contains(l.v[0], " load.0.path=/srv/fix.o load.0.sha256=0001020304");
	assert_contains(l.v[0], " unload.0.name=old.o unload.0.sha256=0001020304");
	assert_null(strstr(l.v[0], "error="));
	lines_free(&l);
	r.exit_code = 6;
	r.result = "rolled_back";
	r.error = "fault injected at tail (LP_FAULT is set; unset it)";
	assert_int_equal(audit_format(&r, 4000, keep, &l), 1);
	assert_contains(l.v[0], " result=rolled_back exit=6 ");
	assert_contains(l.v[0], " error=\"fault injected at tail (LP_FAULT is set; unset it)\" ");
	lines_free(&l);
}

/* Bare when printable ASCII without space, quote, backslash or '='; else quoted, escaped. */
static void test_format_quoting(void **state)
{
	struct audit_rec r;
	struct audit_site s;
	struct lines l = { 0 };

	(void)state;
	base_rec(&r, &s);
	strcpy(r.sudo_user, "bob \"the\" admin");
	strcpy(r.exe, "/opt/my app/d\\x=1\n\xc3\xa9");
	r.build_id[0] = 0;
	s.func = "";
	assert_int_equal(audit_format(&r, 4000, keep, &l), 1);
	assert_contains(l.v[0], " sudo_user=\"bob \\\"the\\\" admin\" ");
	assert_contains(l.v[0], " exe=\"/opt/my app/d\\\\x=1\\x0a\\xc3\\xa9\" ");
	assert_contains(l.v[0], " build_id=none ");
	assert_contains(l.v[0], " site.0.func=\"\" ");
	assert_null(strchr(l.v[0], '\n'));
	lines_free(&l);
}

/* 1000 sites in lines of at most 500 bytes: parts 1..N of N, every site once, in order. */
static void test_format_split(void **state)
{
	struct audit_rec r;
	struct audit_site s[1000];
	struct lines l = { 0 };
	char want[64];

	(void)state;
	base_rec(&r, &s[0]);
	for (int i = 0; i < 1000; i++)
		s[i] = (struct audit_site){ .func = "daemon:f", .addr = 0x401000 + 16 * (uint64_t)i,
					    .old_bytes = OLD, .new_bytes = NEW, .len = 5 };
	r.nsites = 1000;
	int n = audit_format(&r, 500, keep, &l);
	assert_true(n > 100);
	assert_int_equal(l.n, (size_t)n);
	int site = 0;
	for (int k = 0; k < n; k++) {
		assert_true(strlen(l.v[k]) <= 500);
		snprintf(want, sizeof(want), "tx=0123456789abcdef part=%d/%d ", k + 1, n);
		assert_int_equal(strncmp(l.v[k], want, strlen(want)), 0);
		for (const char *p = l.v[k]; (p = strstr(p, " site.")); p++) {
			snprintf(want, sizeof(want), " site.%d.func=daemon:f site.%d.addr=0x%x ", site,
				 site, 0x401000 + 16 * site);
			if (!strncmp(p, want, strlen(want))) {
				/* the group is whole: its new bytes end it on this line */
				snprintf(want, sizeof(want), "site.%d.new=e9fb0f0000", site);
				assert_non_null(strstr(p, want));
				site++;
			}
		}
	}
	assert_int_equal(site, 1000);
	assert_contains(l.v[0], " sites=1000 ");
	lines_free(&l);
}

/* An item longer than a line gets a line of its own, whole: nothing is cut. */
static void test_format_long_item(void **state)
{
	struct audit_rec r;
	struct audit_site s;
	struct lines l = { 0 };

	(void)state;
	base_rec(&r, &s);
	memset(r.exe, 'a', 3000);
	r.exe[0] = '/';
	r.exe[3000] = 0;
	int n = audit_format(&r, 200, keep, &l);
	assert_true(n >= 3);
	int found = 0;
	for (int k = 0; k < n; k++) {
		if (strstr(l.v[k], r.exe)) {
			found++;
			assert_true(strlen(l.v[k]) > 3000);
		} else {
			assert_true(strlen(l.v[k]) <= 200);
		}
	}
	assert_int_equal(found, 1);
	lines_free(&l);
}

static int refuse(const char *line, size_t len, void *arg)
{
	(void)line;
	(void)len;
	return ++*(int *)arg == 2 ? -EPIPE : 0;
}

/* The first failure of @emit stops the lines and is returned. */
static void test_format_emit_error(void **state)
{
	struct audit_rec r;
	struct audit_site s[100];
	int calls = 0;

	(void)state;
	base_rec(&r, &s[0]);
	for (int i = 0; i < 100; i++)
		s[i] = s[0];
	r.nsites = 100;
	assert_int_equal(audit_format(&r, 300, refuse, &calls), -EPIPE);
	assert_int_equal(calls, 2);
}

/* A socket path in a fresh directory. */
static void sock_path(struct sockaddr_un *a, char *dir)
{
	strcpy(dir, "/tmp/lp-audit.XXXXXX");
	assert_non_null(mkdtemp(dir));
	*a = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/log", dir);
}

/* A datagram socket: "<PRI>Mmm dd hh:mm:ss livepatch[PID]: " then the line; notice, warning. */
static void test_log_datagram(void **state)
{
	struct audit_rec r;
	struct audit_site s;
	struct sockaddr_un a;
	char dir[64], buf[2048], why[256] = "", head[64];

	(void)state;
	sock_path(&a, dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	base_rec(&r, &s);
	assert_int_equal(audit_log_tx(&r, a.sun_path, why, sizeof(why)), 1);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = 0;
	assert_int_equal(strncmp(buf, "<85>", 4), 0);
	assert_true(buf[7] == ' ' && buf[10] == ' ' && buf[13] == ':' && buf[16] == ':');
	snprintf(head, sizeof(head), " livepatch[%d]: tx=0123456789abcdef part=1/1 v=1 ", getpid());
	assert_contains(buf, head);
	assert_true(n <= AUDIT_LINE_MAX);
	r.exit_code = 6;
	assert_int_equal(audit_log_tx(&r, a.sun_path, why, sizeof(why)), 1);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	assert_int_equal(strncmp(buf, "<84>", 4), 0);
	close(fd);
	unlink(a.sun_path);
	/* No socket: -ENOENT and why, nothing else. */
	assert_int_equal(audit_log_tx(&r, a.sun_path, why, sizeof(why)), -ENOENT);
	assert_contains(why, "cannot connect to ");
	assert_contains(why, a.sun_path);
	rmdir(dir);
}

/* A stream socket (some syslog daemons listen so): each message ends with a NUL. */
static void test_log_stream(void **state)
{
	struct audit_rec r;
	struct audit_site s;
	struct sockaddr_un a;
	char dir[64], buf[4096], why[256] = "";

	(void)state;
	sock_path(&a, dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	base_rec(&r, &s);
	assert_int_equal(audit_log_tx(&r, a.sun_path, why, sizeof(why)), 1);
	int c = accept(fd, NULL, NULL);
	assert_true(c >= 0);
	ssize_t n = read(c, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], 0);
	assert_contains(buf, "site.0.new=e9fb0f0000");
	close(c);
	close(fd);
	unlink(a.sun_path);
	rmdir(dir);
}

/* An ELF64 file with one PT_NOTE holding @notes (@len bytes): its descriptor. */
static int elf_with_notes(const void *notes, size_t len)
{
	Elf64_Ehdr eh = { .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
			  .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
			  .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1 };
	Elf64_Phdr ph = { .p_type = PT_NOTE, .p_offset = sizeof(eh) + sizeof(Elf64_Phdr),
			  .p_filesz = len };
	char path[] = "/tmp/lp-audit-elf.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, &eh, sizeof(eh)), sizeof(eh));
	assert_int_equal(write(fd, &ph, sizeof(ph)), sizeof(ph));
	assert_int_equal(write(fd, notes, len), (ssize_t)len);
	return fd;
}

/* The GNU build-id note after another note; a note that lies about its size; no ELF. */
static void test_build_id(void **state)
{
	struct {
		uint32_t nsz, dsz, type;
		char name[4];
		uint32_t abi[4];
		uint32_t nsz2, dsz2, type2;
		char name2[4];
		uint8_t id[20];
	} n = { 4, 16, NT_GNU_ABI_TAG, "GNU", { 0, 3, 2, 0 }, 4, 20, NT_GNU_BUILD_ID, "GNU",
		{ 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };
	char hex[132];

	(void)state;
	int fd = elf_with_notes(&n, sizeof(n));
	assert_int_equal(audit_build_id(fd, hex, sizeof(hex)), 0);
	assert_string_equal(hex, "deadbeef0102030405060708090a0b0c0d0e0f10");
	close(fd);
	n.dsz = 0xfffffff0;	/* the first note's size runs past the end */
	fd = elf_with_notes(&n, sizeof(n));
	assert_int_equal(audit_build_id(fd, hex, sizeof(hex)), -ENOENT);
	assert_string_equal(hex, "");
	close(fd);
	fd = elf_with_notes(&n, 8);	/* a note too short for its header */
	assert_int_equal(audit_build_id(fd, hex, sizeof(hex)), -ENOENT);
	close(fd);
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);	/* not an ELF file */
	assert_int_equal(audit_build_id(fd, hex, sizeof(hex)), -ENOENT);
	close(fd);
}

/* audit_rec_init: who (uid, SUDO_USER) and the process (its exe) of this test itself. */
static void test_rec_init(void **state)
{
	struct audit_rec r, r2;
	char exe[PATH_MAX];

	(void)state;
	setenv("SUDO_USER", "carol", 1);
	audit_rec_init(&r, getpid(), 0);
	unsetenv("SUDO_USER");
	audit_rec_init(&r2, getpid(), getpid());
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	assert_int_equal(r.uid, getuid());
	assert_string_equal(r.sudo_user, "carol");
	assert_string_equal(r2.sudo_user, "");
	assert_int_equal(r.pid, getpid());
	assert_string_equal(r.exe, exe);
	assert_int_equal(strlen(r.tx), 16);
	assert_string_not_equal(r.tx, r2.tx);
	assert_null(r.sites);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_one_line),
		cmocka_unit_test(test_format_optional_fields),
		cmocka_unit_test(test_format_quoting),
		cmocka_unit_test(test_format_split),
		cmocka_unit_test(test_format_long_item),
		cmocka_unit_test(test_format_emit_error),
		cmocka_unit_test(test_log_datagram),
		cmocka_unit_test(test_log_stream),
		cmocka_unit_test(test_build_id),
		cmocka_unit_test(test_rec_init),
	};

	for (int i = 0; i < 32; i++)
		SHA[i] = (uint8_t)i;
	u_init();
	return cmocka_run_group_tests_name("audit", tests, NULL, NULL) ? 1 : 0;
}
