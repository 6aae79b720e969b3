/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fnmatch.h>

#include "space.h"

bool vp_match_all(const struct vp_match *match, size_t n,
		  const char *(*getvar)(void *ud, const char *name), void *ud)
{
	for (size_t i = 0; i < n; ++i) {
		const char *value = getvar ? getvar(ud, match[i].var) : NULL;

		if (!value || fnmatch(match[i].glob, value, 0) != 0)
			return false;
	}
	return true;
}
