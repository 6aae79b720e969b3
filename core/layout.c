/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>

#include "layout.h"

static int exclude_addr(struct vp_blocks *b, const struct vp_addr *a)
{
	struct vp_range r = { *a, *a };

	return b && a->family ? vp_blocks_exclude(b, &r) : 0;
}

static int exclude_prefix(struct vp_blocks *b, const struct vp_prefix *p)
{
	struct vp_range r = vp_prefix_range(p);

	return b && p->addr.family ? vp_blocks_exclude(b, &r) : 0;
}

/* What every pool leaves out: the server's addresses and every static
 * address or subnet (of any client). */
static int exclude_common(const struct vp_config *c, const struct vp_server *server,
			  struct vp_blocks *b)
{
	int ret = 0;

	if (server) {
		ret |= exclude_addr(b, &server->local4);
		ret |= exclude_addr(b, &server->remote4);
		ret |= exclude_addr(b, &server->local6);
	}
	for (size_t i = 0; i < c->n_statics; ++i) {
		const struct vp_static_config *st = &c->statics[i];

		if (st->has_address)
			ret |= exclude_addr(b, &st->address);
		if (st->has_address6)
			ret |= exclude_addr(b, &st->address6);
		if (st->has_subnet)
			ret |= exclude_prefix(b, &st->subnet);
		if (st->has_subnet6)
			ret |= exclude_prefix(b, &st->subnet6);
	}
	return ret ? -ENOMEM : 0;
}

/* Every usable host of an IPv4 network: not its network and broadcast
 * addresses, unless it is a /31 or /32. */
static struct vp_range hosts4(const struct vp_prefix *p)
{
	struct vp_range r = vp_prefix_range(p);

	if (p->len <= 30) {
		r.first = vp_addr_add(&r.first, 1, 0);
		r.last = vp_addr_add(&r.last, UINT64_MAX, 0);	/* minus one */
	}
	return r;
}

/* Keep *out only when building it wholly worked. */
static int done(struct vp_blocks *b, int ret, struct vp_blocks **out)
{
	if (ret) {
		vp_blocks_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

int vp_layout_pool4(const struct vp_config *c, size_t i, const struct vp_server *server,
		    unsigned block_len, struct vp_blocks **out)
{
	const struct vp_pool_config *pc = &c->pools[i];
	struct vp_range r4 = pc->has_range ? pc->range : hosts4(&pc->network);
	struct vp_range net = vp_prefix_range(&pc->network);
	struct vp_blocks *b;
	int ret;

	*out = NULL;
	ret = vp_blocks_new(&b, &r4, block_len);
	if (ret)
		return ret;
	/* Network and broadcast addresses, even inside an explicit range. */
	if (pc->network.len <= 30) {
		ret |= exclude_addr(b, &net.first);
		ret |= exclude_addr(b, &net.last);
	}
	for (size_t k = 0; k < pc->n_exclude; ++k)
		if (pc->exclude[k].first.family == VP_INET)
			ret |= vp_blocks_exclude(b, &pc->exclude[k]);
	ret |= exclude_common(c, server, b);
	return done(b, ret ? -ENOMEM : 0, out);
}

int vp_layout_pool6(const struct vp_config *c, size_t i, const struct vp_server *server,
		    struct vp_blocks **out)
{
	const struct vp_pool_config *pc = &c->pools[i];
	struct vp_range r6;
	struct vp_blocks *b;
	int ret;

	*out = NULL;
	if (!pc->has_network6)
		return 0;
	r6 = vp_prefix_range(&pc->network6);
	r6.first = vp_addr_add(&r6.first, 1, 0);	/* not the subnet-router anycast */
	ret = vp_blocks_new(&b, &r6, 128);
	if (ret)
		return ret;
	for (size_t k = 0; k < pc->n_exclude; ++k)
		if (pc->exclude[k].first.family == VP_INET6)
			ret |= vp_blocks_exclude(b, &pc->exclude[k]);
	ret |= exclude_common(c, server, b);
	return done(b, ret ? -ENOMEM : 0, out);
}

int vp_layout_router(const struct vp_config *c, size_t i, enum vp_family family,
		     const struct vp_server *server, struct vp_blocks **out)
{
	const struct vp_router_config *rc = &c->routers[i];
	struct vp_range r;
	struct vp_blocks *b;
	int ret;

	*out = NULL;
	if (family == VP_INET ? !rc->network.addr.family : !rc->has_network6)
		return 0;
	r = vp_prefix_range(family == VP_INET ? &rc->network : &rc->network6);
	ret = vp_blocks_new(&b, &r, family == VP_INET ? rc->prefix : rc->prefix6);
	if (ret)
		return ret;
	return done(b, exclude_common(c, server, b), out);
}

int vp_layout_pool_of(const struct vp_config *c, const struct vp_addr *a)
{
	for (size_t i = 0; i < c->n_pools; ++i) {
		const struct vp_pool_config *pc = &c->pools[i];

		if (a->family == VP_INET && vp_prefix_contains(&pc->network, a))
			return (int)i;
		if (a->family == VP_INET6 && pc->has_network6 && vp_prefix_contains(&pc->network6, a))
			return (int)i;
	}
	return -1;
}

int vp_layout_router_of(const struct vp_config *c, const struct vp_prefix *p)
{
	for (size_t i = 0; i < c->n_routers; ++i) {
		const struct vp_router_config *rc = &c->routers[i];

		if (p->addr.family == VP_INET && rc->network.addr.family &&
		    vp_prefix_contains(&rc->network, &p->addr))
			return (int)i;
		if (p->addr.family == VP_INET6 && rc->has_network6 &&
		    vp_prefix_contains(&rc->network6, &p->addr))
			return (int)i;
	}
	return -1;
}
