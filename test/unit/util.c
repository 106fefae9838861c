/* Helpers shared by the unit tests: see util.h. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "util.h"

void u_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	elf_version(EV_CURRENT);
}

const char *u_fixture(const char *name, int slot)
{
	static char out[4][PATH_MAX];
	char dir[PATH_MAX], joined[PATH_MAX + 64];
	const char *env = getenv("U_FIXTURES");
	ssize_t n;

	if (slot < 0 || slot > 3)
		slot = 0;
	if (env && *env) {
		snprintf(dir, sizeof(dir), "%s", env);
	} else {
		n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
		if (n < 0)
			return NULL;
		dir[n] = 0;
		snprintf(joined, sizeof(joined), "%s", dir);
		snprintf(dir, sizeof(dir), "%s/../unit/fixtures", dirname(joined));
	}
	snprintf(joined, sizeof(joined), "%s/%s", dir, name);
	if (!realpath(joined, out[slot]))
		snprintf(out[slot], sizeof(out[slot]), "%s", joined);	/* a failing test shows it */
	return out[slot];
}

static Elf *open_elf(const char *path, int *fd)
{
	Elf *e;

	elf_version(EV_CURRENT);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return NULL;
	e = elf_begin(*fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		if (e)
			elf_end(e);
		close(*fd);
		return NULL;
	}
	return e;
}

static void close_elf(Elf *e, int fd)
{
	elf_end(e);
	close(fd);
}

static int find_sym(Elf *e, const char *name, struct u_sym *out)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
		for (size_t i = 1; d && i < n; i++) {
			GElf_Sym s;
			const char *nm;
			if (!gelf_getsym(d, (int)i, &s) || !(nm = elf_strptr(e, sh.sh_link, s.st_name)))
				continue;
			if (strcmp(nm, name) || s.st_shndx == SHN_UNDEF)
				continue;
			out->value = s.st_value;
			out->size = s.st_size;
			out->type = GELF_ST_TYPE(s.st_info);
			out->bind = GELF_ST_BIND(s.st_info);
			return 0;
		}
	}
	return -1;
}

int u_elf_sym(const char *path, const char *name, struct u_sym *out)
{
	int fd, ret;
	Elf *e = open_elf(path, &fd);

	if (!e)
		return -1;
	ret = find_sym(e, name, out);
	close_elf(e, fd);
	return ret;
}

uint8_t *u_elf_func_bytes(const char *path, const char *name, struct u_sym *out)
{
	int fd;
	Elf *e = open_elf(path, &fd);
	Elf_Scn *scn = NULL;
	uint8_t *buf = NULL;

	if (!e)
		return NULL;
	if (find_sym(e, name, out) || !out->size)
		goto out;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    out->value < sh.sh_addr || out->value + out->size > sh.sh_addr + sh.sh_size)
			continue;
		buf = malloc(out->size);
		if (buf && pread(fd, buf, out->size, (off_t)(sh.sh_offset + out->value - sh.sh_addr)) !=
		    (ssize_t)out->size) {
			free(buf);
			buf = NULL;
		}
		break;
	}
out:
	close_elf(e, fd);
	return buf;
}

uint64_t u_elf_first_vaddr(const char *path)
{
	int fd;
	Elf *e = open_elf(path, &fd);
	size_t n = 0;
	uint64_t v = 0;

	if (!e)
		return 0;
	if (!elf_getphdrnum(e, &n))
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0) {
				v = ph.p_vaddr & ~0xfffULL;
				break;
			}
		}
	close_elf(e, fd);
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

uint64_t u_map_base(pid_t pid, const char *path)
{
	char maps[64], line[PATH_MAX + 256];
	uint64_t base = 0;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, off;
		int pos = 0;
		if (sscanf(line, "%llx-%*x %*s %llx %*s %*u %n", &start, &off, &pos) < 2 || !pos)
			continue;
		line[strcspn(line, "\n")] = 0;
		if (off == 0 && !strcmp(line + pos, path)) {
			base = start;
			break;
		}
	}
	fclose(f);
	return base;
}

/* True once PID sits in pause() (x86-64 syscall 34): the loader is done with it. */
static bool in_pause(pid_t pid)
{
	char path[64], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return !strncmp(buf, "34 ", 3);
}

pid_t u_start(const char *prog, const char *wait_for)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (u_map_base(pid, wait_for) && in_pause(pid))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;	/* it died: the exec failed */
		sleep_ms(10);
	}
	u_stop(pid);
	return -1;
}

void u_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

bool u_wait_state(pid_t pid, char state)
{
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(path, "re");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == state)
			return true;
		sleep_ms(10);
	}
	return false;
}

void u_assert_contains(const char *hay, const char *needle, const char *file, int line)
{
	if (hay && needle && strstr(hay, needle))
		return;
	print_error("\"%s\" does not contain \"%s\"\n", hay ? hay : "(null)", needle ? needle : "(null)");
	_fail(file, line);
}

int u_copy(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (out < 0)
		goto done;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto done;
	ret = n < 0 ? -1 : 0;
done:
	if (out >= 0 && close(out))
		ret = -1;
	close(in);
	return ret;
}
