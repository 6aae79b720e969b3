/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Routes to the plugin's clients in the kernel's main routing table, through
 * rtnetlink: a host route (/32, /128) per tunnel address and a route per
 * routed subnet, each through a tun device, without a gateway.
 *
 * Every route vpnpool adds carries the routing protocol number
 * VP_ROUTE_PROTOCOL, so that routing daemons can select them by it (BIRD's
 * krt_source attribute; iproute2: `ip route show proto 86`, or a name for it
 * in /etc/iproute2/rt_protos), and so that vpnpool removes only its own.
 *
 * Every request is synchronous: the kernel's answer is read and checked,
 * waiting VP_ROUTE_TIMEOUT_MS at most (OpenVPN has one thread).  Functions
 * return 0 or -errno (-ETIMEDOUT when the kernel did not answer in time).
 * Changing routes needs CAP_NET_ADMIN in the process that asks (the kernel
 * checks the sender, not only the socket's opener): after OpenVPN drops its
 * privileges the keeper does it (plugin/keeper.h).
 */
#ifndef VP_PLUGIN_ROUTES_H
#define VP_PLUGIN_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

/* The rtm_protocol of vpnpool's routes (not one the kernel or a known
 * daemon uses; see rtnetlink(7) and /etc/iproute2/rt_protos). */
#define VP_ROUTE_PROTOCOL 86
#define VP_ROUTE_TIMEOUT_MS 1000

struct vp_route {
	struct vp_prefix dst;
	int ifindex;			/* 0: none (a multipath route, a blackhole) */
	unsigned protocol;
};

/* A route to dst through ifindex, ours: created, or replacing the route to
 * dst there is (of any interface and protocol, with the same metric). */
int vp_route_add(int ifindex, const struct vp_prefix *dst);

/* Removes our route to dst through ifindex; -ESRCH when there is none (also
 * when a later vp_route_add moved it to another interface: it stays). */
int vp_route_del(int ifindex, const struct vp_prefix *dst);

/* Removes every route of ours through ifindex (0: through any interface)
 * for which keep (NULL: none) says false.  The number removed, or -errno
 * (the first failure; it goes on with the others). */
int vp_route_flush(int ifindex, bool (*keep)(void *ud, const struct vp_prefix *dst), void *ud);

/* Calls fn for every unicast route of the main table, both families, of
 * any protocol, through ifindex (0: any).  0 or -errno. */
int vp_route_walk(int ifindex, void (*fn)(void *ud, const struct vp_route *r), void *ud);

/* 1 when the interface ifindex is a tun (or tap) device, 0 when it is
 * another kind, -ENODEV when there is none, -errno. */
int vp_route_link_is_tun(int ifindex);

/* How the plugin changes routes: directly (this process's own rights), or
 * through the keeper once OpenVPN has dropped its privileges. */
struct vp_route_ops {
	int (*add)(void *ud, int ifindex, const struct vp_prefix *dst);
	int (*del)(void *ud, int ifindex, const struct vp_prefix *dst);
	/* Every route of ours through ifindex; the number removed, -errno. */
	int (*flush)(void *ud, int ifindex);
	void *ud;
};

/* The functions above, as this process may call them.  Static storage. */
const struct vp_route_ops *vp_route_direct(void);

#endif
