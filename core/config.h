/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The validated configuration, as plain data: conf/ fills it from
 * vpnpool.conf, the engine reads it.  Every string and array is owned by the
 * struct and freed by vp_config_free().
 */
#ifndef VP_CONFIG_H
#define VP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum vp_topology { VP_TOPO_AUTO, VP_TOPO_SUBNET, VP_TOPO_NET30, VP_TOPO_P2P };

/* host-routes: a route per session's address and subnet to this instance's
 * tun; auto: from the moment another instance is live on the state-dir. */
enum vp_host_routes { VP_HOST_ROUTES_AUTO, VP_HOST_ROUTES_YES, VP_HOST_ROUTES_NO };

/* One "VARIABLE=GLOB" of a match list. */
struct vp_match {
	char *var;
	char *glob;
};

struct vp_pool_config {
	char *name;
	unsigned line;			/* where it starts in the file, for messages */
	struct vp_prefix network;
	struct vp_range range;		/* default: usable hosts of network */
	bool has_range;
	struct vp_range *exclude;	/* either family */
	size_t n_exclude;
	struct vp_prefix network6;
	bool has_network6;
	struct vp_match *match;
	size_t n_match;
};

struct vp_router_config {
	char *name;
	unsigned line;
	struct vp_prefix network;
	unsigned prefix;
	struct vp_prefix network6;
	unsigned prefix6;
	bool has_network6;
	struct vp_match *match;
	size_t n_match;
	bool push_route;
};

struct vp_static_config {
	char *identity;
	unsigned line;
	struct vp_addr address, address6;
	struct vp_prefix subnet, subnet6;
	bool has_address, has_address6, has_subnet, has_subnet6;
};

struct vp_config {
	char *path;			/* the file it came from */
	char *state_dir;
	char *usage_log;		/* NULL = off */
	char *identity;			/* env variable naming a client */
	char *metrics_file;		/* NULL = off */
	char *instance;			/* this process's instance name, NULL: from
					 * the plugin line or the tun device */
	int64_t hold_time;		/* seconds */
	unsigned *warn_at;		/* percent, ascending */
	size_t n_warn_at;
	enum vp_topology topology;
	enum vp_host_routes host_routes;
	bool fsync;
	char *store;			/* NULL: the state-dir journal; else a
					 * libpq URI (postgresql:// or
					 * postgres://) of the shared store */
	char *node;			/* this server's node name in the store,
					 * NULL: the host name */
	unsigned store_timeout_ms;	/* store-timeout: a store call's limit */
	int64_t node_timeout;		/* node-timeout, seconds */

	struct vp_pool_config *pools;
	size_t n_pools;
	struct vp_router_config *routers;
	size_t n_routers;
	struct vp_static_config *statics;
	size_t n_statics;
};

void vp_config_free(struct vp_config *config);

/* Whether text may name an instance: 1 to 63 of [A-Za-z0-9._-]. */
bool vp_config_instance_name_ok(const char *text);

#endif
