/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "plugin/routes.h"

#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

/* A dump's messages come in batches of up to 32 KiB (more with large
 * pages); the buffer holds the largest. */
#define DUMP_BUF (64 * 1024)

struct nl {
	int fd;
	uint32_t seq;
};

static int nl_open(struct nl *nl)
{
	struct timeval tv = { .tv_sec = VP_ROUTE_TIMEOUT_MS / 1000,
			      .tv_usec = (VP_ROUTE_TIMEOUT_MS % 1000) * 1000 };
	int one = 1;

	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl->fd < 0)
		return -errno;
	if (setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(nl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		int ret = -errno;

		close(nl->fd);
		return ret;
	}
	/* Lets the kernel filter a dump by table, protocol and interface
	 * (Linux 5.0 on); older ones ignore it and the walk filters. */
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	nl->seq = (uint32_t)time(NULL);
	return 0;
}

static void nl_close(struct nl *nl)
{
	close(nl->fd);
}

/* A route request under construction. */
struct rt_req {
	struct nlmsghdr h;
	struct rtmsg r;
	char attrs[64];
};

/* The byte off bytes into p, untyped: netlink's buffers and the parts of a
 * message are aligned to 4 bytes (NLMSG_ALIGNTO, RTA_ALIGNTO), which their
 * fields need. */
static void *byte_at(const void *p, size_t off)
{
	return (char *)p + off;
}

/* The attribute off bytes into the len bytes at p when a whole one is
 * there; NULL at the end (or a malformed one). */
static const struct rtattr *attr_at(const void *p, size_t len, size_t off)
{
	const struct rtattr *a;

	if (off + sizeof(*a) > len)
		return NULL;
	a = byte_at(p, off);
	return a->rta_len >= sizeof(*a) && a->rta_len <= len - off ? a : NULL;
}

static void add_attr(struct rt_req *q, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = byte_at(q, NLMSG_ALIGN(q->h.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	q->h.nlmsg_len = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int nl_send(struct nl *nl, struct nlmsghdr *h)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t n;

	h->nlmsg_seq = ++nl->seq;
	do
		n = sendto(nl->fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	return n == (ssize_t)h->nlmsg_len ? 0 : -EIO;
}

/* One datagram from the kernel into buf: its length, or -errno. */
static ssize_t nl_recv(struct nl *nl, void *buf, size_t len)
{
	struct sockaddr_nl from;
	socklen_t flen = sizeof(from);
	ssize_t n;

	do
		n = recvfrom(nl->fd, buf, len, 0, (struct sockaddr *)&from, &flen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
	if (n == 0)
		return -EIO;
	return n;
}

/*
 * Reads the answers to the request numbered nl->seq: for a dump, each
 * message goes to fn until NLMSG_DONE; otherwise the ACK.  Messages of
 * other numbers (a late answer) are skipped.  0 or the kernel's -errno.
 */
static int nl_wait(struct nl *nl, void (*fn)(void *ud, const struct nlmsghdr *h), void *ud)
{
	char *buf = malloc(DUMP_BUF);
	int ret = -EIO;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = nl_recv(nl, buf, DUMP_BUF);
		const struct nlmsghdr *h;

		if (n < 0) {
			ret = (int)n;
			break;
		}
		for (size_t off = 0; off + sizeof(*h) <= (size_t)n; off += NLMSG_ALIGN(h->nlmsg_len)) {
			h = byte_at(buf, off);
			if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > (size_t)n - off)
				break;
			if (h->nlmsg_seq != nl->seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE) {
				ret = 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				ret = h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)) ? -EIO : e->error;
				goto out;
			}
			if (fn)
				fn(ud, h);
		}
	}
out:
	free(buf);
	return ret;
}

static void route_req(struct rt_req *q, int type, int flags, int ifindex,
		      const struct vp_prefix *dst)
{
	uint8_t bytes[16];
	uint32_t oif = (uint32_t)ifindex, table = RT_TABLE_MAIN;

	memset(q, 0, sizeof(*q));
	q->h.nlmsg_len = NLMSG_LENGTH(sizeof(q->r));
	q->h.nlmsg_type = (unsigned short)type;
	q->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
	q->r.rtm_family = dst->addr.family == VP_INET6 ? AF_INET6 : AF_INET;
	q->r.rtm_dst_len = dst->len;
	q->r.rtm_table = RT_TABLE_MAIN;
	q->r.rtm_protocol = VP_ROUTE_PROTOCOL;
	/* No gateway: on the link (IPv6 ignores the scope); any, to delete. */
	q->r.rtm_scope = type == RTM_NEWROUTE ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE;
	q->r.rtm_type = RTN_UNICAST;
	vp_addr_to_bytes(&dst->addr, bytes);
	add_attr(q, RTA_DST, bytes, dst->addr.family == VP_INET6 ? 16 : 4);
	add_attr(q, RTA_OIF, &oif, sizeof(oif));
	add_attr(q, RTA_TABLE, &table, sizeof(table));
}

static bool valid(int ifindex, const struct vp_prefix *dst)
{
	return ifindex > 0 && (dst->addr.family == VP_INET || dst->addr.family == VP_INET6) &&
	       dst->len <= vp_family_bits(dst->addr.family);
}

static int route_change(int type, int flags, int ifindex, const struct vp_prefix *dst)
{
	struct rt_req q;
	struct nl nl;
	int ret;

	if (!valid(ifindex, dst))
		return -EINVAL;
	ret = nl_open(&nl);
	if (ret)
		return ret;
	route_req(&q, type, flags, ifindex, dst);
	ret = nl_send(&nl, &q.h);
	if (!ret)
		ret = nl_wait(&nl, NULL, NULL);
	nl_close(&nl);
	return ret;
}

int vp_route_add(int ifindex, const struct vp_prefix *dst)
{
	return route_change(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifindex, dst);
}

int vp_route_del(int ifindex, const struct vp_prefix *dst)
{
	int ret = route_change(RTM_DELROUTE, 0, ifindex, dst);

	/* IPv6 says ENOENT where IPv4 says ESRCH. */
	return ret == -ENOENT ? -ESRCH : ret;
}

/* ---- walking the table ---------------------------------------------------- */

struct walk {
	int ifindex;
	void (*fn)(void *ud, const struct vp_route *r);
	void *ud;
};

/* One RTM_NEWROUTE of a dump: to the walker when it is a unicast route of
 * the main table through the interface asked for. */
static void on_route(void *ud, const struct nlmsghdr *h)
{
	const struct walk *w = ud;
	const struct rtmsg *r = NLMSG_DATA(h);
	struct vp_route route = { .protocol = r->rtm_protocol };
	uint32_t table = r->rtm_table;
	const void *dst = NULL;
	const struct rtattr *a;
	size_t len;

	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(*r)) ||
	    r->rtm_type != RTN_UNICAST || (r->rtm_family != AF_INET && r->rtm_family != AF_INET6))
		return;
	len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*r));
	for (size_t off = 0; (a = attr_at(byte_at(r, NLMSG_ALIGN(sizeof(*r))), len, off));
	     off += RTA_ALIGN(a->rta_len)) {
		if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) == 4)
			memcpy(&table, RTA_DATA(a), 4);
		else if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == 4)
			memcpy(&route.ifindex, RTA_DATA(a), 4);
		else if (a->rta_type == RTA_DST &&
			 RTA_PAYLOAD(a) == (r->rtm_family == AF_INET6 ? 16u : 4u))
			dst = RTA_DATA(a);
	}
	if (table != RT_TABLE_MAIN || (w->ifindex && route.ifindex != w->ifindex))
		return;
	route.dst.len = r->rtm_dst_len;
	if (dst)
		route.dst.addr = vp_addr_from_bytes(r->rtm_family == AF_INET6 ? VP_INET6 : VP_INET,
						    dst);
	else
		route.dst.addr.family = r->rtm_family == AF_INET6 ? VP_INET6 : VP_INET;
	w->fn(w->ud, &route);
}

static int walk_family(struct nl *nl, int family, struct walk *w)
{
	struct rt_req q;
	uint32_t table = RT_TABLE_MAIN;
	int ret;

	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(q.r));
	q.h.nlmsg_type = RTM_GETROUTE;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.r.rtm_family = (unsigned char)family;
	q.r.rtm_table = RT_TABLE_MAIN;
	add_attr(&q, RTA_TABLE, &table, sizeof(table));
	if (w->ifindex) {
		uint32_t oif = (uint32_t)w->ifindex;

		add_attr(&q, RTA_OIF, &oif, sizeof(oif));
	}
	ret = nl_send(nl, &q.h);
	if (!ret)
		ret = nl_wait(nl, on_route, w);
	return ret;
}

static int walk(struct nl *nl, struct walk *w)
{
	int ret = walk_family(nl, AF_INET, w);

	/* A kernel without IPv6 has no table to dump. */
	if (!ret) {
		ret = walk_family(nl, AF_INET6, w);
		if (ret == -EAFNOSUPPORT)
			ret = 0;
	}
	return ret;
}

int vp_route_walk(int ifindex, void (*fn)(void *ud, const struct vp_route *r), void *ud)
{
	struct walk w = { .ifindex = ifindex, .fn = fn, .ud = ud };
	struct nl nl;
	int ret;

	if (ifindex < 0)
		return -EINVAL;
	ret = nl_open(&nl);
	if (ret)
		return ret;
	ret = walk(&nl, &w);
	nl_close(&nl);
	return ret;
}

/* Our routes found by a walk, removed once it is over (a dump is not
 * interleaved with changes on one socket). */
struct found {
	struct vp_route *r;
	size_t n, cap;
	bool oom;
	bool (*keep)(void *ud, const struct vp_prefix *dst);
	void *ud;
};

static void collect(void *ud, const struct vp_route *r)
{
	struct found *f = ud;

	if (r->protocol != VP_ROUTE_PROTOCOL || r->ifindex <= 0 || (f->keep && f->keep(f->ud, &r->dst)))
		return;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct vp_route *more = realloc(f->r, cap * sizeof(*more));

		if (!more) {
			f->oom = true;
			return;
		}
		f->r = more;
		f->cap = cap;
	}
	f->r[f->n++] = *r;
}

int vp_route_flush(int ifindex, bool (*keep)(void *ud, const struct vp_prefix *dst), void *ud)
{
	struct found f = { .keep = keep, .ud = ud };
	struct walk w = { .ifindex = ifindex, .fn = collect, .ud = &f };
	int ret, removed = 0;
	struct nl nl;

	if (ifindex < 0)
		return -EINVAL;
	ret = nl_open(&nl);
	if (ret)
		return ret;
	ret = walk(&nl, &w);
	nl_close(&nl);
	if (!ret && f.oom)
		ret = -ENOMEM;
	for (size_t i = 0; i < f.n; ++i) {
		int r = vp_route_del(f.r[i].ifindex, &f.r[i].dst);

		if (!r)
			removed++;
		else if (r != -ESRCH && !ret)
			ret = r;
	}
	free(f.r);
	return ret ? ret : removed;
}

/* ---- the interface -------------------------------------------------------- */

struct kind {
	bool found, tun;
};

/* The link's IFLA_LINKINFO / IFLA_INFO_KIND. */
static void on_link(void *ud, const struct nlmsghdr *h)
{
	struct kind *k = ud;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *a, *i;
	size_t len;

	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return;
	k->found = true;
	len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
	for (size_t off = 0; (a = attr_at(byte_at(ifi, NLMSG_ALIGN(sizeof(*ifi))), len, off));
	     off += RTA_ALIGN(a->rta_len)) {
		if (a->rta_type != IFLA_LINKINFO)
			continue;
		for (size_t ioff = 0; (i = attr_at(RTA_DATA(a), RTA_PAYLOAD(a), ioff));
		     ioff += RTA_ALIGN(i->rta_len))
			if (i->rta_type == IFLA_INFO_KIND && RTA_PAYLOAD(i) >= 3 &&
			    !memcmp(RTA_DATA(i), "tun", 3) &&
			    (RTA_PAYLOAD(i) == 3 || ((const char *)RTA_DATA(i))[3] == '\0'))
				k->tun = true;
	}
}

int vp_route_link_is_tun(int ifindex)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} q;
	struct kind k = { 0 };
	struct nl nl;
	int ret;

	if (ifindex <= 0)
		return -ENODEV;
	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(q.i));
	q.h.nlmsg_type = RTM_GETLINK;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	q.i.ifi_family = AF_UNSPEC;
	q.i.ifi_index = ifindex;
	ret = nl_open(&nl);
	if (ret)
		return ret;
	ret = nl_send(&nl, &q.h);
	if (!ret)
		ret = nl_wait(&nl, on_link, &k);
	nl_close(&nl);
	if (ret == -ENODEV || (!ret && !k.found))
		return -ENODEV;
	return ret ? ret : k.tun;
}

/* ---- as ops --------------------------------------------------------------- */

static int d_add(void *ud, int ifindex, const struct vp_prefix *dst)
{
	(void)ud;
	return vp_route_add(ifindex, dst);
}

static int d_del(void *ud, int ifindex, const struct vp_prefix *dst)
{
	(void)ud;
	return vp_route_del(ifindex, dst);
}

static int d_flush(void *ud, int ifindex)
{
	(void)ud;
	return vp_route_flush(ifindex, NULL, NULL);
}

const struct vp_route_ops *vp_route_direct(void)
{
	static const struct vp_route_ops direct = { .add = d_add, .del = d_del, .flush = d_flush };

	return &direct;
}
