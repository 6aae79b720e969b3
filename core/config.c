/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "config.h"

static void matches_free(struct vp_match *m, size_t n)
{
	for (size_t i = 0; i < n; ++i) {
		free(m[i].var);
		free(m[i].glob);
	}
	free(m);
}

void vp_config_free(struct vp_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_pools; ++i) {
		free(c->pools[i].name);
		free(c->pools[i].exclude);
		matches_free(c->pools[i].match, c->pools[i].n_match);
	}
	for (size_t i = 0; i < c->n_routers; ++i) {
		free(c->routers[i].name);
		matches_free(c->routers[i].match, c->routers[i].n_match);
	}
	for (size_t i = 0; i < c->n_statics; ++i)
		free(c->statics[i].identity);
	free(c->pools);
	free(c->routers);
	free(c->statics);
	free(c->path);
	free(c->state_dir);
	free(c->usage_log);
	free(c->identity);
	free(c->metrics_file);
	free(c->instance);
	free(c->store);
	free(c->node);
	free(c->warn_at);
	memset(c, 0, sizeof(*c));
}

bool vp_config_instance_name_ok(const char *text)
{
	size_t n = strlen(text);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; ++i) {
		char ch = text[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}
