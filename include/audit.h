/*
 * Audit: one record per transaction in the system log (docs/design.md §10): who
 * changed which process, at which sites, from which bytes to which, with which
 * patches, and how it ended. Its own small syslog client (RFC 3164 datagrams to
 * /dev/log) rather than glibc's syslog(), which cannot say whether a message was
 * delivered. Nothing here knows the pipeline: the caller fills struct audit_rec from
 * what it has (report.c from the report; a recovery path from what it kept).
 */
#ifndef LP_AUDIT_H
#define LP_AUDIT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lp.h"

#define AUDIT_SOCKET "/dev/log"
#define AUDIT_LINE_MAX 1024	/* a whole datagram, header included (RFC 3164 §4.1) */
#define AUDIT_FORMAT 1		/* the v= field: bumped if a field changes meaning */

struct audit_site {
	const char *func;		/* OBJECT:SYMBOL */
	uint64_t addr;
	const uint8_t *old_bytes, *new_bytes;
	unsigned int len;
};

/* A patch --load mapped (path: the file as given) or --unload took out (path: its name). */
struct audit_patch {
	const char *path;
	const uint8_t *sha256;		/* 32 bytes */
};

struct audit_rec {
	char tx[24];			/* the transaction's id, on each of its lines */
	uid_t uid;			/* the real uid of who ran it */
	char sudo_user[64];		/* SUDO_USER, "" when unset */
	pid_t pid;
	char exe[PATH_MAX];		/* the executable, as /proc/PID/exe names it */
	char build_id[132];		/* its GNU build-id in hex, "" when it has none */
	const char *action;		/* "patch" or "revert" (the JSON report's "action") */
	const char *result;		/* the JSON report's "status": applied, rolled_back, ... */
	int exit_code;
	const char *error;		/* the error message when exit_code is not 0, else NULL */
	const struct audit_site *sites;
	size_t nsites;
	const struct audit_patch *loads, *unloads;
	size_t nloads, nunloads;
};

/*
 * Zero @r, then fill who (uid, SUDO_USER), the process (@pid; its executable and
 * build-id through /proc/@via, a live thread of it) and a fresh transaction id. The
 * caller fills what and how it ended.
 */
void audit_rec_init(struct audit_rec *r, pid_t pid, pid_t via);

/*
 * The record as message lines of at most @max bytes each (an item longer than that
 * alone gets a line of its own; nothing is cut): @emit(line, len, arg) for each, in
 * order. The number of lines, or the first non-zero return of @emit, or -ENOMEM.
 */
int audit_format(const struct audit_rec *r, size_t max,
		 int (*emit)(const char *line, size_t len, void *arg), void *arg) LP_MUST_CHECK;

/*
 * Send the record to syslog at @socket_path (NULL: AUDIT_SOCKET), one datagram a line.
 * The number of lines delivered, or -errno with the reason in @why (no socket, a send
 * that failed or timed out: the lines before it were delivered).
 */
int audit_log_tx(const struct audit_rec *r, const char *socket_path, char *why, size_t cap);

/* The GNU build-id of the ELF file open at @fd in hex into @hex: 0, or -ENOENT (none), -errno. */
int audit_build_id(int fd, char *hex, size_t cap) LP_MUST_CHECK;

#endif
