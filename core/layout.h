/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The allocators of a pool or router pool, built one way for the engine and
 * for readers of the state (the command): the pool's range (default: every
 * usable host of its network), less the network and broadcast addresses, the
 * pool's exclude list, the server's own addresses and every reservation.
 */
#ifndef VP_LAYOUT_H
#define VP_LAYOUT_H

#include <stddef.h>

#include "blocks.h"
#include "config.h"
#include "space.h"

/* IPv4 blocks of pool i, block_len 32 (addresses) or 30 (net30).  server
 * may be NULL (its addresses unknown).  0; -ENOSPC (no whole block fits the
 * range); -ENOMEM. */
int vp_layout_pool4(const struct vp_config *c, size_t i, const struct vp_server *server,
		    unsigned block_len, struct vp_blocks **out);
/* IPv6 addresses of pool i (*out NULL when it has no network6). */
int vp_layout_pool6(const struct vp_config *c, size_t i, const struct vp_server *server,
		    struct vp_blocks **out);
/* Routed subnets of router pool i of a family (*out NULL when it has no
 * network of that family). */
int vp_layout_router(const struct vp_config *c, size_t i, enum vp_family family,
		     const struct vp_server *server, struct vp_blocks **out);

/* The pool whose network (or network6) holds a, the router pool whose
 * network holds p: where a stored lease belongs.  -1: none. */
int vp_layout_pool_of(const struct vp_config *c, const struct vp_addr *a);
int vp_layout_router_of(const struct vp_config *c, const struct vp_prefix *p);

#endif
