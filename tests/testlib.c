/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

struct vp_addr tl_addr(const char *text)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	if (!vp_addr_parse(&a, text, err)) {
		fprintf(stderr, "testlib: %s\n", err);
		abort();
	}
	return a;
}

struct vp_prefix tl_prefix(const char *text)
{
	struct vp_prefix p;
	char err[VP_ERRLEN];

	if (!vp_prefix_parse(&p, text, err)) {
		fprintf(stderr, "testlib: %s\n", err);
		abort();
	}
	return p;
}

static struct vp_range tl_range(const char *text)
{
	struct vp_range r;
	char err[VP_ERRLEN];

	if (!vp_range_parse(&r, text, err)) {
		fprintf(stderr, "testlib: %s\n", err);
		abort();
	}
	return r;
}

struct vp_config *tl_config_new(const char *dir)
{
	struct vp_config *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->state_dir = xstrdup(dir);
	c->identity = xstrdup("common_name");
	c->topology = VP_TOPO_AUTO;
	tl_set_warn(c, 80, 95);
	return c;
}

void tl_set_warn(struct vp_config *c, unsigned a, unsigned b)
{
	c->warn_at = xrealloc(c->warn_at, 2 * sizeof(*c->warn_at));
	c->warn_at[0] = a;
	c->warn_at[1] = b;
	c->n_warn_at = 2;
}

static void add_matches(struct vp_match **out, size_t *n, const char *const *match)
{
	for (; match && *match; ++match) {
		const char *eq = strchr(*match, '=');

		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[*n].var = strndup(*match, (size_t)(eq - *match));
		(*out)[*n].glob = xstrdup(eq + 1);
		++*n;
	}
}

void tl_add_pool(struct vp_config *c, const char *name, const char *network, const char *range,
		 const char *const *exclude, const char *network6, const char *const *match)
{
	struct vp_pool_config *p;

	c->pools = xrealloc(c->pools, (c->n_pools + 1) * sizeof(*c->pools));
	p = &c->pools[c->n_pools++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(name);
	p->network = tl_prefix(network);
	if (range) {
		p->range = tl_range(range);
		p->has_range = true;
	} else {
		p->range = vp_prefix_range(&p->network);
	}
	for (; exclude && *exclude; ++exclude) {
		p->exclude = xrealloc(p->exclude, (p->n_exclude + 1) * sizeof(*p->exclude));
		p->exclude[p->n_exclude++] = tl_range(*exclude);
	}
	if (network6) {
		p->network6 = tl_prefix(network6);
		p->has_network6 = true;
	}
	add_matches(&p->match, &p->n_match, match);
}

void tl_add_router(struct vp_config *c, const char *name, const char *network, unsigned prefix,
		   const char *network6, unsigned prefix6, const char *const *match)
{
	struct vp_router_config *r;

	c->routers = xrealloc(c->routers, (c->n_routers + 1) * sizeof(*c->routers));
	r = &c->routers[c->n_routers++];
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(name);
	if (network) {
		r->network = tl_prefix(network);
		r->prefix = prefix;
	}
	if (network6) {
		r->network6 = tl_prefix(network6);
		r->prefix6 = prefix6;
		r->has_network6 = true;
	}
	r->push_route = true;
	add_matches(&r->match, &r->n_match, match);
}

void tl_add_static(struct vp_config *c, const char *identity, const char *address,
		   const char *address6, const char *subnet, const char *subnet6)
{
	struct vp_static_config *s;

	c->statics = xrealloc(c->statics, (c->n_statics + 1) * sizeof(*c->statics));
	s = &c->statics[c->n_statics++];
	memset(s, 0, sizeof(*s));
	s->identity = xstrdup(identity);
	if (address) {
		s->address = tl_addr(address);
		s->has_address = true;
	}
	if (address6) {
		s->address6 = tl_addr(address6);
		s->has_address6 = true;
	}
	if (subnet) {
		s->subnet = tl_prefix(subnet);
		s->has_subnet = true;
	}
	if (subnet6) {
		s->subnet6 = tl_prefix(subnet6);
		s->has_subnet6 = true;
	}
}

const char *tl_getvar(void *ud, const char *name)
{
	const struct tl_env *env = ud;

	for (unsigned i = 0; env && i < env->n; ++i)
		if (!strcmp(env->name[i], name))
			return env->value[i];
	return NULL;
}

struct vp_server tl_server(enum vp_topology topo, const char *local4, unsigned netbits,
			   const char *local6)
{
	struct vp_server s = { .topology = topo, .netbits4 = netbits };

	if (local4)
		s.local4 = tl_addr(local4);
	if (local6) {
		s.local6 = tl_addr(local6);
		s.netbits6 = 64;
	}
	return s;
}

char *tl_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;

	if (asprintf(&path, "%s/vpnpool-test-XXXXXX", base) < 0 || !mkdtemp(path))
		abort();
	return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tl_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int64_t tl_now(void *ud)
{
	return ((struct tl_world *)ud)->now;
}

void tl_on_event(void *ud, const struct vp_event *ev)
{
	struct tl_world *w = ud;

	w->events[ev->type]++;
	w->last[ev->type] = *ev;
	if (ev->type == VP_EV_RECLAIM)
		snprintf(w->last_from, sizeof(w->last_from), "%.*s", (int)ev->from_len,
			 (const char *)ev->from);
}

struct vp_space_options tl_options(const struct vp_config *c, struct tl_world *w)
{
	struct vp_space_options o = {
		.config = c, .now = tl_now, .on_event = tl_on_event, .ud = w,
	};

	return o;
}
