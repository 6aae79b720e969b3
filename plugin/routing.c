/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "plugin/routing.h"

void vp_routing_init(struct vp_routing *r, enum vp_host_routes mode,
		     const struct vp_route_ops *ops, vp_routing_log_fn *log,
		     vp_routing_each_fn *each_online, void *ud)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->on = mode == VP_HOST_ROUTES_YES;
	r->ops = ops;
	r->log = log;
	r->each_online = each_online;
	r->ud = ud;
}

/* A failure (err < 0) or a success at one site, said once. */
static void outcome(struct vp_routing *r, struct vp_once *once, const char *what, int err)
{
	char msg[200], line[400];
	enum vp_once_say say;

	if (err < 0)
		snprintf(msg, sizeof(msg),
			 "cannot %s routes through %s: %s (clients are served without them)", what,
			 r->dev, strerror(-err));
	say = vp_once_report(once, err < 0 ? msg : NULL, line, sizeof(line));
	if (say != VP_ONCE_QUIET)
		r->log(r->ud, say == VP_ONCE_FAILED, line);
}

/* The prefixes of d: at most 4. */
static unsigned dst_prefixes(const struct vp_routing_dst *d, struct vp_prefix out[4])
{
	unsigned n = 0;

	if (d->addr4.family)
		out[n++] = (struct vp_prefix){ .addr = d->addr4, .len = 32 };
	if (d->addr6.family)
		out[n++] = (struct vp_prefix){ .addr = d->addr6, .len = 128 };
	if (d->subnet4.addr.family)
		out[n++] = d->subnet4;
	if (d->subnet6.addr.family)
		out[n++] = d->subnet6;
	return n;
}

static void add_routes(struct vp_routing *r, const struct vp_routing_dst *d)
{
	struct vp_prefix dst[4];
	unsigned n = dst_prefixes(d, dst);
	int err = 0;

	for (unsigned i = 0; i < n; ++i) {
		int ret = r->ops->add(r->ops->ud, r->ifindex, &dst[i]);

		if (ret && !err)
			err = ret;
	}
	outcome(r, &r->add_once, "add", err);
}

static void del_routes(struct vp_routing *r, const struct vp_routing_dst *d)
{
	struct vp_prefix dst[4];
	unsigned n = dst_prefixes(d, dst);
	int err = 0;

	for (unsigned i = 0; i < n; ++i) {
		int ret = r->ops->del(r->ops->ud, r->ifindex, &dst[i]);

		/* Gone already: moved to another instance's tun, or the tun
		 * itself is gone (and the kernel took its routes). */
		if (ret && ret != -ESRCH && ret != -ENODEV && !err)
			err = ret;
	}
	outcome(r, &r->del_once, "remove", err);
}

/* The tun's index, looked up when first needed (and again after it
 * failed): OpenVPN may name a tun that is not there (a test's env), and
 * then nothing is routed and that is said once. */
static bool resolve(struct vp_routing *r)
{
	unsigned idx;

	if (r->ifindex)
		return true;
	if (!r->dev[0])
		return false;
	idx = if_nametoindex(r->dev);
	if (!idx) {
		outcome(r, &r->add_once, "add", -ENODEV);
		return false;
	}
	r->ifindex = (int)idx;
	return true;
}

/* Routing turned on, or the tun became known: every online session gets
 * its routes (a route there already is replaced by the same one). */
static void catch_up(struct vp_routing *r)
{
	if (r->on && r->each_online && resolve(r))
		r->each_online(r->ud, r, add_routes);
}

/* auto: on from the first time another instance is live; true when that
 * is now (and every online session got its routes). */
static bool notice(struct vp_routing *r, bool others_live)
{
	if (r->mode != VP_HOST_ROUTES_AUTO || !others_live || r->on)
		return false;
	r->on = true;
	catch_up(r);
	return true;
}

/* Every route of ours through the interface dev (its index idx, 0: look
 * it up) removed; a tun that is gone took its routes with it. */
static void flush(struct vp_routing *r, const char *dev, int idx)
{
	char was[sizeof(r->dev)];
	int ret;

	if (!idx)
		idx = (int)if_nametoindex(dev);
	if (idx <= 0)
		return;
	ret = r->ops->flush(r->ops->ud, idx);
	if (ret == -ENODEV)
		ret = 0;
	/* Said under the name of the tun flushed. */
	snprintf(was, sizeof(was), "%s", r->dev);
	snprintf(r->dev, sizeof(r->dev), "%s", dev);
	outcome(r, &r->del_once, "remove", ret < 0 ? ret : 0);
	snprintf(r->dev, sizeof(r->dev), "%s", was);
}

void vp_routing_set_dev(struct vp_routing *r, const char *dev)
{
	if (r->mode == VP_HOST_ROUTES_NO || !dev || !*dev || !strcmp(dev, r->dev))
		return;
	snprintf(r->dev, sizeof(r->dev), "%s", dev);
	r->ifindex = (int)if_nametoindex(dev);
	/* Routes left on it by this instance's previous run (killed). */
	if (r->ifindex)
		flush(r, r->dev, r->ifindex);
	catch_up(r);
}

void vp_routing_flush_dev(struct vp_routing *r, const char *dev)
{
	if (dev && *dev)
		flush(r, dev, 0);
}

void vp_routing_start(struct vp_routing *r, const struct vp_routing_dst *d, bool others_live)
{
	if (r->mode == VP_HOST_ROUTES_NO || notice(r, others_live))
		return;
	if (r->on && resolve(r))
		add_routes(r, d);
}

void vp_routing_end(struct vp_routing *r, const struct vp_routing_dst *d, bool others_live)
{
	if (r->mode == VP_HOST_ROUTES_NO)
		return;
	if (r->on && r->ifindex)
		del_routes(r, d);
	notice(r, others_live);
}

void vp_routing_close(struct vp_routing *r)
{
	if (r->on && r->ifindex)
		flush(r, r->dev, r->ifindex);
}
