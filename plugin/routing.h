/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * host-routes (vpnpool.conf(5)): which sessions of this instance have their
 * routes (a host route per address, a route per routed subnet) through its
 * tun, and when.  With "yes" every session from its start to its end; with
 * "auto" every session from the moment another instance is live on the
 * state-dir (sessions already online get theirs then) until the plugin
 * closes; with "no" none.  Closing removes every route of ours through the
 * tun.
 *
 * A route that cannot be added does not refuse the client: the failure is
 * logged once (plugin/once.h), and again when it changes or clears.  A
 * route already gone at a session's end (the client moved to another
 * instance, which replaced it) is no error.
 */
#ifndef VP_PLUGIN_ROUTING_H
#define VP_PLUGIN_ROUTING_H

#include <stdbool.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/config.h"
#include "plugin/once.h"
#include "plugin/routes.h"

/* A session's addresses and routed subnets (family 0: none): a host route
 * per address, a route per subnet. */
struct vp_routing_dst {
	struct vp_addr addr4, addr6;
	struct vp_prefix subnet4, subnet6;
};

struct vp_routing;
/* Calls add(r, d) for every session of this instance that is online now
 * (the engine's leases: the routing keeps no list of its own). */
typedef void vp_routing_each_fn(void *ud, struct vp_routing *r,
				void (*add)(struct vp_routing *r, const struct vp_routing_dst *d));

/* What to log: error true for a failure, false when it has cleared. */
typedef void vp_routing_log_fn(void *ud, bool error, const char *line);

struct vp_routing {
	enum vp_host_routes mode;
	bool on;			/* routing now (auto: sticky once on) */
	int ifindex;			/* the tun's; 0 until looked up */
	char dev[32];
	const struct vp_route_ops *ops;
	vp_routing_log_fn *log;
	vp_routing_each_fn *each_online;
	void *ud;
	struct vp_once add_once, del_once;
};

/* Ready to route through ops (not owned; valid until vp_routing_close());
 * log and each_online get ud. */
void vp_routing_init(struct vp_routing *r, enum vp_host_routes mode,
		     const struct vp_route_ops *ops, vp_routing_log_fn *log,
		     vp_routing_each_fn *each_online, void *ud);

/* The tun's name (OpenVPN's "dev"): routes of ours left on it (by this
 * instance's previous run, killed) are removed, and the sessions waiting
 * for it get their routes.  A name with no interface is looked up again
 * when a route is needed (and logged then, once). */
void vp_routing_set_dev(struct vp_routing *r, const char *dev);

/* Every route of ours through the tun dev removed: another instance's,
 * found dead (its lock gone).  Failures are logged once. */
void vp_routing_flush_dev(struct vp_routing *r, const char *dev);

/* A session starts (it is online in the engine already).  others_live:
 * another instance is live on the state-dir now (for "auto"); when that
 * turns routing on, every online session gets its routes. */
void vp_routing_start(struct vp_routing *r, const struct vp_routing_dst *d, bool others_live);
/* A session ended (it is not online in the engine any more): its routes,
 * if routing is on, are removed (only those through this tun). */
void vp_routing_end(struct vp_routing *r, const struct vp_routing_dst *d, bool others_live);
/* Every route of ours through the tun removed (when routing was on). */
void vp_routing_close(struct vp_routing *r);

#endif
