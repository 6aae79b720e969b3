/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Errors said once: a failure that repeats at one site (a compaction, a
 * write) is logged the first time, then again only when it changes or
 * clears, with how many times it happened.  One struct vp_once per site;
 * it never prints: it says what to log and the caller logs it.
 */
#ifndef VP_ONCE_H
#define VP_ONCE_H

#include <stdbool.h>
#include <stddef.h>

struct vp_once {
	char last[320];			/* the failure repeating now ("": none) */
	unsigned long count;		/* times in a row */
};

enum vp_once_say {
	VP_ONCE_QUIET,			/* nothing to log */
	VP_ONCE_FAILED,			/* a new failure: log out as an error */
	VP_ONCE_CLEARED,		/* the failure is over: log out as a note */
};

/* An outcome at the site: msg describes a failure, or is NULL when the
 * operation worked.  Writes the line to log (if any) into out:
 *  - a first failure: msg;
 *  - another failure than the one repeating: msg, then "(before:
 *    <previous>, N times)" when the previous one happened more than once;
 *  - the same failure again: nothing (counted);
 *  - success after a failure: "<previous>: cleared after N failures".
 * len 0 is allowed (out untouched). */
enum vp_once_say vp_once_report(struct vp_once *o, const char *msg, char *out, size_t len);

#endif
