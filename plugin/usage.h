/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The usage log: one logfmt line per event, UTC, appended with whole-line
 * writes so that lines of concurrent writers never interleave.
 *
 * Log rotation: before each write, and once a second on a quiet server, the
 * path is compared with the open file.  A file moved or removed (logrotate
 * `create`, or none: then the path is created after a moment's grace, so
 * that logrotate's own create wins) is never written again: the path is
 * reopened.  A file truncated under us (`copytruncate`) is simply appended
 * to.  While the path cannot be opened or written (permissions, a symlink,
 * a full disk), the lines are held in memory, oldest first, up to 64 MiB;
 * lines past that are dropped (the newest) and counted.  Opening and writing
 * are retried once a second; held lines are written first, in order.
 * vp_usage_report() tells the caller once when the log starts failing and
 * once when it is written again.
 *
 * Every open, mkdir and lstat by path goes through the vp_fs given at open;
 * the file is opened with O_NOFOLLOW: a symlink is refused (-ELOOP).  With
 * the direct fs (NULL), once the process's "/" is no longer the one seen at
 * open (OpenVPN's chroot), the path is not reopened: -EXDEV.
 *
 * Writing is synchronous until vp_usage_start_writer(); from then on a
 * background thread writes: a quiet server's line is written at once, a busy
 * one's lines are gathered for 50 ms and written together, so that a connect
 * makes no system call for the usage log.  A crash (SIGKILL) can lose the
 * lines of the last 50 ms; closing writes everything it can.
 */
#ifndef VP_PLUGIN_USAGE_H
#define VP_PLUGIN_USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "logfmt.h"
#include "space.h"

struct vp_fs;
struct vp_usage;

/* Open path for appending (created 0640; its directory 0750 too), through
 * fs (NULL: this process's own calls; borrowed: must outlive u).  0 or
 * -errno; -ELOOP: path is a symlink. */
int vp_usage_open(struct vp_usage **out, const char *path, const struct vp_fs *fs);
/* Write what is pending and held (reopening the path once more if it has
 * to), then free.  The number of lines that could not be written and are
 * lost (0 for NULL u). */
uint64_t vp_usage_close(struct vp_usage *u);

/* Start the background writer: call it after OpenVPN has daemonized (at the
 * first client), never before a fork that must keep it.  0 or -errno. */
int vp_usage_start_writer(struct vp_usage *u);

/* Queue "time=<now as ISO 8601 UTC> event=<event> <fields>\n".  NULL u:
 * no-op.  0 or -ENOMEM (the line is lost); a failure to write the file is
 * told by vp_usage_report(), never here. */
int vp_usage_write(struct vp_usage *u, int64_t now, const char *event,
		   const struct vp_strbuf *fields);

/* A change of the log's health. */
struct vp_usage_report {
	int error;		/* -errno: the log is not written now; 0: written again */
	bool opening;		/* the error is of opening the path (else of writing) */
	uint64_t held;		/* error: lines held in memory now; 0: held lines now written */
	uint64_t dropped;	/* lines lost since the failure began (memory bound) */
};

/* Whether the log's health changed since the last call: a failure is told
 * once (again only when its error changes), its end once, with what was
 * held and dropped.  A failure that came and went between two calls is told
 * by two calls in a row.  false for NULL u. */
bool vp_usage_report(struct vp_usage *u, struct vp_usage_report *r);

/* The fields of an event=reclaim line for ev (a VP_EV_RECLAIM), appended
 * to b: identity, pool, address, and a router's subnet and subnet6, then
 * from.  Absent addresses and subnets are left out. */
void vp_usage_reclaim_fields(struct vp_strbuf *b, const struct vp_event *ev);

/* "2026-11-25T04:01:29Z" into buf (at least 21 bytes). */
void vp_usage_time(int64_t t, char *buf, size_t len);

#endif
