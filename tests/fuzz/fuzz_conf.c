/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf/load.c: vpnpool.conf from any bytes.  Properties: no crash, no leak
 * (LeakSanitizer, also after errors), an error is one "FILE:LINE: message"
 * line with a line that exists, and a config that loads holds what the
 * engine relies on (the checks vpnpool.conf(5) states).
 *
 * Input without a NUL goes through vp_conf_load_buf(); input with one is
 * written to a file and loaded with vp_conf_load() (which refuses it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/load.h"
#include "fuzz.h"

static bool in_any_pool(const struct vp_config *c, const struct vp_addr *a)
{
	for (size_t i = 0; i < c->n_pools; ++i) {
		const struct vp_pool_config *p = &c->pools[i];

		if (vp_prefix_contains(&p->network, a) ||
		    (p->has_network6 && vp_prefix_contains(&p->network6, a)))
			return true;
	}
	return false;
}

static void check_pool(const struct vp_pool_config *p)
{
	struct vp_range net = vp_prefix_range(&p->network);

	FUZZ_CHECK(p->name && p->network.addr.family == VP_INET);
	FUZZ_CHECK(p->network.len >= 8 && p->network.len <= 30);
	FUZZ_CHECK(p->range.first.family == VP_INET && vp_range_within(&p->range, &net));
	FUZZ_CHECK(!p->has_network6 || (p->network6.addr.family == VP_INET6 &&
					 p->network6.len >= 64 && p->network6.len <= 126));
	for (size_t k = 0; k < p->n_exclude; ++k) {
		const struct vp_range *ex = &p->exclude[k];
		struct vp_range net6 = vp_prefix_range(&p->network6);

		FUZZ_CHECK(vp_range_within(ex, ex->first.family == VP_INET ? &net : &net6));
		FUZZ_CHECK(ex->first.family == VP_INET || p->has_network6);
	}
	for (size_t k = 0; k < p->n_match; ++k)
		FUZZ_CHECK(p->match[k].var[0] && p->match[k].glob[0]);
}

static void check_router(const struct vp_router_config *r)
{
	FUZZ_CHECK(r->name && (r->network.addr.family || r->has_network6));
	if (r->network.addr.family)
		FUZZ_CHECK(r->prefix > r->network.len && r->prefix <= 32);
	if (r->has_network6)
		FUZZ_CHECK(r->prefix6 > r->network6.len && r->prefix6 <= 128 &&
			   r->prefix6 - r->network6.len <= 63);
}

static void check_config(const struct vp_config *c)
{
	FUZZ_CHECK(c->path && c->state_dir && c->state_dir[0] && c->identity);
	FUZZ_CHECK(c->n_pools >= 1 && c->topology <= VP_TOPO_P2P && c->hold_time >= 0);
	for (size_t i = 0; i < c->n_warn_at; ++i)
		FUZZ_CHECK(c->warn_at[i] >= 1 && c->warn_at[i] <= 100 &&
			   (i == 0 || c->warn_at[i - 1] < c->warn_at[i]));
	for (size_t i = 0; i < c->n_pools; ++i) {
		check_pool(&c->pools[i]);
		for (size_t k = 0; k < i; ++k)
			FUZZ_CHECK(strcmp(c->pools[i].name, c->pools[k].name));
	}
	for (size_t i = 0; i < c->n_routers; ++i)
		check_router(&c->routers[i]);
	for (size_t i = 0; i < c->n_statics; ++i) {
		const struct vp_static_config *s = &c->statics[i];

		FUZZ_CHECK(s->identity);
		FUZZ_CHECK(s->has_address || s->has_address6 || s->has_subnet || s->has_subnet6);
		FUZZ_CHECK(!s->has_address || in_any_pool(c, &s->address));
		FUZZ_CHECK(!s->has_address6 || in_any_pool(c, &s->address6));
		for (size_t k = 0; k < i; ++k)
			FUZZ_CHECK(!s->has_address || !c->statics[k].has_address ||
				   !vp_addr_eq(&s->address, &c->statics[k].address));
	}
}

/* "NAME:LINE: message" on one line, LINE between 1 and the last line. */
static void check_error(const char *err, const char *name, const char *text)
{
	size_t n = strlen(name);
	int lines = 1;
	long line;
	char *end;

	for (const char *p = text; *p; ++p)
		lines += *p == '\n';
	FUZZ_CHECK(!strchr(err, '\n'));
	FUZZ_CHECK(!strncmp(err, name, n) && err[n] == ':');
	if (!strncmp(err + n, ": cannot", 8))
		return;
	line = strtol(err + n + 1, &end, 10);
	FUZZ_CHECK(end[0] == ':' && end[1] == ' ');
	FUZZ_CHECK(line >= 1 && line <= lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vp_config config;
	char err[1024];
	char *text;

	if (size > 64 * 1024)
		return 0;
	text = fuzz_strndup(data, size);
	if (strlen(text) == size) {
		if (!vp_conf_load_buf(&config, text, "fuzz.conf", err, sizeof(err))) {
			check_config(&config);
			vp_config_free(&config);
		} else {
			check_error(err, "fuzz.conf", text);
		}
	} else {
		const char *dir = fuzz_dir();
		char path[4200];

		fuzz_write_file(dir, "vpnpool.conf", data, size);
		snprintf(path, sizeof(path), "%s/vpnpool.conf", dir);
		FUZZ_CHECK(vp_conf_load(&config, path, err, sizeof(err)) == -1);
		FUZZ_CHECK(strstr(err, "a NUL byte") && !strchr(err, '\n'));
	}
	free(text);
	return 0;
}
