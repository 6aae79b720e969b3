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

/* A session's routes; embedded in the session, zeroed before the first
 * vp_routing_start(). */
struct vp_routed {
	struct vp_routed *prev, *next;	/* among the sessions (private) */
	struct vp_prefix dst[4];
	uint8_t n;
	bool listed;			/* between start and end */
	bool routed;			/* its routes were asked for */
};

/* What to log: error true for a failure, false when it has cleared. */
typedef void vp_routing_log_fn(void *ud, bool error, const char *line);

struct vp_routing {
	enum vp_host_routes mode;
	bool on;			/* routing now (auto: sticky once on) */
	int ifindex;			/* the tun's; 0 until looked up */
	char dev[32];
	const struct vp_route_ops *ops;
	vp_routing_log_fn *log;
	void *ud;
	struct vp_routed head;		/* the sessions (a ring) */
	struct vp_once add_once, del_once;
};

/* Ready to route through ops (not owned; valid until vp_routing_close()). */
void vp_routing_init(struct vp_routing *r, enum vp_host_routes mode,
		     const struct vp_route_ops *ops, vp_routing_log_fn *log, void *ud);

/* The tun's name (OpenVPN's "dev"): routes of ours left on it (by this
 * instance's previous run, killed) are removed, and the sessions waiting
 * for it get their routes.  A name with no interface is looked up again
 * when a route is needed (and logged then, once). */
void vp_routing_set_dev(struct vp_routing *r, const char *dev);

/* Every route of ours through the tun dev removed: another instance's,
 * found dead (its lock gone).  Failures are logged once. */
void vp_routing_flush_dev(struct vp_routing *r, const char *dev);

/* A session starts with the addresses and subnets of its grant (those of
 * family 0 are skipped).  others_live: another instance is live on the
 * state-dir now (for "auto"). */
void vp_routing_start(struct vp_routing *r, struct vp_routed *s, const struct vp_addr *addr4,
		      const struct vp_addr *addr6, const struct vp_prefix *subnet4,
		      const struct vp_prefix *subnet6, bool others_live);

/* The session ends: its routes, if it has them, are removed (only those
 * through this tun).  Nothing when it was not started. */
void vp_routing_end(struct vp_routing *r, struct vp_routed *s, bool others_live);

/* Every route of ours through the tun removed (when routing was on). */
void vp_routing_close(struct vp_routing *r);

#endif
