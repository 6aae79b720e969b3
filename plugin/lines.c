/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "plugin/lines.h"

/* "NETWORK NETMASK" of an IPv4 prefix, with text before and after. */
static void add_route4(struct vp_strbuf *out, const char *before, const struct vp_prefix *p,
		       const char *after)
{
	char a[VP_ADDR_STRLEN], m[VP_ADDR_STRLEN];
	struct vp_addr mask = vp_addr_v4(vp_netmask4(p->len));

	vp_strbuf_addf(out, "%s%s %s%s", before, vp_addr_format(&p->addr, a),
		       vp_addr_format(&mask, m), after);
}

void vp_lines_build(struct vp_strbuf *out, const struct vp_grant *g,
		    const struct vp_server *server, const struct vp_config *config)
{
	char a[VP_ADDR_STRLEN], b[VP_ADDR_STRLEN], p[VP_PREFIX_STRLEN];

	if (server->topology == VP_TOPO_SUBNET) {
		struct vp_addr mask = vp_addr_v4(vp_netmask4(server->netbits4));

		vp_strbuf_addf(out, "ifconfig-push %s %s\n", vp_addr_format(&g->addr4, a),
			       vp_addr_format(&mask, b));
	} else {
		vp_strbuf_addf(out, "ifconfig-push %s %s\n", vp_addr_format(&g->addr4, a),
			       vp_addr_format(&g->peer4, b));
	}
	if (g->addr6.family) {
		unsigned bits = server->local6.family ? server->netbits6 : g->pool->network6.len;

		vp_strbuf_addf(out, "ifconfig-ipv6-push %s/%u", vp_addr_format(&g->addr6, a), bits);
		if (server->local6.family)
			vp_strbuf_addf(out, " %s", vp_addr_format(&server->local6, b));
		vp_strbuf_add(out, "\n", 1);
	}
	if (g->subnet4.addr.family)
		add_route4(out, "iroute ", &g->subnet4, "\n");
	if (g->subnet6.addr.family)
		vp_strbuf_addf(out, "iroute-ipv6 %s\n", vp_prefix_format(&g->subnet6, p));
	for (size_t i = 0; i < config->n_routers; ++i) {
		const struct vp_router_config *r = &config->routers[i];

		if (!r->push_route)
			continue;
		if (r->network.addr.family)
			add_route4(out, "push \"route ", &r->network, "\"\n");
		if (r->has_network6)
			vp_strbuf_addf(out, "push \"route-ipv6 %s\"\n",
				       vp_prefix_format(&r->network6, p));
	}
}
