/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "plugin/once.h"

enum vp_once_say vp_once_report(struct vp_once *o, const char *msg, char *out, size_t len)
{
	if (!msg) {
		if (!o->count)
			return VP_ONCE_QUIET;
		if (len)
			snprintf(out, len, "%s: cleared after %lu failure%s", o->last, o->count,
				 o->count == 1 ? "" : "s");
		o->last[0] = '\0';
		o->count = 0;
		return VP_ONCE_CLEARED;
	}
	if (o->count && !strncmp(o->last, msg, sizeof(o->last) - 1)) {
		o->count++;
		return VP_ONCE_QUIET;
	}
	if (len && o->count > 1)
		snprintf(out, len, "%s (before: %s, %lu times)", msg, o->last, o->count);
	else if (len)
		snprintf(out, len, "%s", msg);
	snprintf(o->last, sizeof(o->last), "%s", msg);
	o->count = 1;
	return VP_ONCE_FAILED;
}
