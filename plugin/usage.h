/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The usage log: one logfmt line per event, UTC, appended with whole-line
 * writes so that lines of concurrent writers never interleave.  A
 * rotated-away file (logrotate) is noticed within a second and the path
 * reopened.
 *
 * Writing is synchronous until vp_usage_start_writer(); from then on a
 * background thread writes: a quiet server's line is written at once, a busy
 * one's lines are gathered for 50 ms and written together, so that a connect
 * makes no system call for the usage log.  A crash (SIGKILL) can lose the
 * lines of the last 50 ms; closing writes everything.
 */
#ifndef VP_PLUGIN_USAGE_H
#define VP_PLUGIN_USAGE_H

#include <stdint.h>

#include "logfmt.h"
#include "space.h"

struct vp_usage;

/* Open path for appending (created 0640; its directory too).  0 or -errno. */
int vp_usage_open(struct vp_usage **out, const char *path);
void vp_usage_close(struct vp_usage *u);

/* Start the background writer: call it after OpenVPN has daemonized (at the
 * first client), never before a fork that must keep it.  0 or -errno. */
int vp_usage_start_writer(struct vp_usage *u);

/* Write "time=<now as ISO 8601 UTC> event=<event> <fields>\n".  NULL u: no-op.
 * 0 or -errno; with the writer running, an error of an earlier background
 * write. */
int vp_usage_write(struct vp_usage *u, int64_t now, const char *event,
		   const struct vp_strbuf *fields);

/* The fields of an event=reclaim line for ev (a VP_EV_RECLAIM), appended
 * to b: identity, pool, address, and a router's subnet and subnet6, then
 * from.  Absent addresses and subnets are left out. */
void vp_usage_reclaim_fields(struct vp_strbuf *b, const struct vp_event *ev);

/* "2026-11-25T04:01:29Z" into buf (at least 21 bytes). */
void vp_usage_time(int64_t t, char *buf, size_t len);

#endif
