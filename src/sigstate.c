/* Sigstate: keep the program's SIGTRAP disposition (sigstate.h, docs/design.md §4). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "proc.h"
#include "sigstate.h"

#define SYS_RT_SIGACTION 13
#define TRAP_BIT (1ULL << (SIGTRAP - 1))

int sigstate_read(pid_t via, uint64_t *ign, uint64_t *cgt)
{
	char buf[LP_STATUS_MAX];
	const char *i, *c;
	int ret = proc_status_read(via, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	i = proc_status_value(buf, "SigIgn");
	c = proc_status_value(buf, "SigCgt");
	if (!i || !c)
		return -EIO;
	*ign = strtoull(i, NULL, 16);
	*cgt = strtoull(c, NULL, 16);
	return 0;
}

bool sigstate_init(struct lp_sigstate *ss, pid_t via, int mem_fd, uint64_t ign, uint64_t cgt)
{
	*ss = (struct lp_sigstate){ .via = via, .mem_fd = mem_fd };
	ss->ignored = ign & TRAP_BIT;
	ss->caught = cgt & TRAP_BIT;
	return ss->ignored || ss->caught;
}

bool sigstate_changed(const struct lp_sigstate *ss)
{
	uint64_t ign = 0, cgt = 0;

	if (sigstate_read(ss->via, &ign, &cgt))
		return false;
	return (bool)(ign & TRAP_BIT) != ss->ignored || (bool)(cgt & TRAP_BIT) != ss->caught;
}

/* Scratch room on the thread's stack, well below its red zone. */
static uint64_t scratch(uint64_t sp)
{
	return (sp - 1024) & ~15ULL;
}

int sigstate_save(struct lp_sigstate *ss, const struct lp_injector *inj, uint64_t sp)
{
	bool failed;
	uint64_t at = scratch(sp);
	long args[6] = { SIGTRAP, 0, (long)at, 8 };
	long ret = inj->syscall(inj->arg, SYS_RT_SIGACTION, args, &failed);

	if (failed || ret)
		return failed ? (int)ret : (int)ret;
	if (pread(ss->mem_fd, ss->act, sizeof(ss->act), (off_t)at) != (ssize_t)sizeof(ss->act))
		return -EIO;
	ss->saved = true;
	return 0;
}

int sigstate_repair(struct lp_sigstate *ss, const struct lp_injector *inj, uint64_t sp,
		    bool *reblock)
{
	uint64_t ign = 0, cgt = 0;
	bool failed;
	int ret = sigstate_read(ss->via, &ign, &cgt);

	*reblock = false;
	if (ret)
		return ret;
	if ((bool)(ign & TRAP_BIT) == ss->ignored && (bool)(cgt & TRAP_BIT) == ss->caught)
		return 0;
	uint64_t act[4] = { (uint64_t)(uintptr_t)SIG_IGN, 0, 0, 0 };
	if (ss->caught && !ss->saved)
		return -ENODATA;	/* the handler was not saved: it cannot be put back */
	if (ss->caught)
		memcpy(act, ss->act, sizeof(act));
	uint64_t at = scratch(sp);
	if (pwrite(ss->mem_fd, act, sizeof(act), (off_t)at) != (ssize_t)sizeof(act))
		return -EIO;
	long args[6] = { SIGTRAP, (long)at, 0, 8 };
	long r = inj->syscall(inj->arg, SYS_RT_SIGACTION, args, &failed);
	if (failed || r)
		return (int)r;
	*reblock = ss->caught && !(cgt & TRAP_BIT);
	ss->restored++;
	return 1;
}
