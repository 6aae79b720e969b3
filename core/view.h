/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A read-only view of the state, for readers that have no engine (the
 * command): the configured pools with their sizes after exclusions, and the
 * leases replayed from the journal with vp_store_read() (no lock taken, a
 * consistent view even while the plugin appends).
 *
 * Each lease is counted in the pool whose network holds its address and the
 * router pool whose network holds its subnet, as the engine places a loaded
 * lease; static reservations are not part of a pool's size and are not
 * counted.  Sizes leave out the network and broadcast addresses, exclude
 * lists and reservations.  The server's own tunnel addresses are left out
 * when the caller knows them (server may be NULL; the plugin keeps them in
 * the state directory, vp_store_read_server()), and its topology then decides
 * the block size; without it a pool that holds the server's address reads one
 * larger than the plugin's.
 */
#ifndef VP_VIEW_H
#define VP_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "space.h"
#include "store.h"

struct vp_view;

/* One lease as the view shows it; rec's pointers are borrowed for the call. */
struct vp_view_lease {
	struct vp_lease_rec rec;
	int pool, router;		/* index into config->pools / routers, -1: none */
	bool static4, static_subnet;	/* from a client reservation */
};

/* Read state_dir's journal into a view of config (borrowed: must outlive the
 * view).  A missing journal is an empty view.  0; -EPROTONOSUPPORT (newer
 * journal), -ENOMEM, -errno.  report (may be NULL) says what the read found. */
int vp_view_open(struct vp_view **out, const struct vp_config *config,
		 const struct vp_server *server, struct vp_store_report *report);
void vp_view_free(struct vp_view *v);

size_t vp_view_leases(const struct vp_view *v);
/* Figures of a pool or router pool (index into the config's arrays). */
void vp_view_pool_usage(const struct vp_view *v, size_t pool, struct vp_pool_usage *u);
void vp_view_router_usage(const struct vp_view *v, size_t router, struct vp_pool_usage *u);

/* Visit every lease: sorted by pool (file order; none last), then address,
 * identity and slot; or, unsorted, in the order the journal first named
 * them (faster: memory is read in order).  Stops when fn returns non-zero,
 * and returns it; -ENOMEM when the order cannot be made. */
int vp_view_each(struct vp_view *v, bool sorted,
		 int (*fn)(void *ud, const struct vp_view_lease *l), void *ud);

/* Blocks a pool hands out, computed as the engine does for a topology
 * (VP_TOPO_NET30: /30 blocks) and server (may be NULL).  0 or -errno. */
int vp_view_pool_size(const struct vp_config *config, size_t pool, enum vp_topology topology,
		      const struct vp_server *server, uint64_t *size);
int vp_view_router_size(const struct vp_config *config, size_t router,
			const struct vp_server *server, uint64_t *size);

#endif
