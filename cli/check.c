/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vpnpool check: the config as the plugin reads it, and what server.conf needs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "core/pgstore.h"
#include "conf/load.h"
#include "core/blocks.h"
#include "core/layout.h"

static const char *const topo_name[] = { "auto", "subnet", "net30", "p2p" };

/* Blocks a pool hands out before any server address is known, from the
 * allocators the engine builds (core/layout.c). */
static uint64_t pool_size(const struct vp_config *c, size_t pool)
{
	struct vp_blocks *b;
	uint64_t size;

	if (vp_layout_pool4(c, pool, NULL, c->topology == VP_TOPO_NET30 ? 30 : 32, &b))
		return 0;
	size = vp_blocks_size(b);
	vp_blocks_free(b);
	return size;
}

static uint64_t router_size(const struct vp_config *c, size_t router)
{
	bool v4 = c->routers[router].network.addr.family != 0;
	struct vp_blocks *b;
	uint64_t size;

	if (vp_layout_router(c, router, v4 ? VP_INET : VP_INET6, NULL, &b) || !b)
		return 0;
	size = vp_blocks_size(b);
	vp_blocks_free(b);
	return size;
}

static void print_match(const struct vp_match *m, size_t n, struct vp_strbuf *b)
{
	if (!n) {
		printf("    match      (every client)\n");
		return;
	}
	for (size_t i = 0; i < n; ++i) {
		vp_strbuf_reset(b);
		vp_strbuf_addf(b, "%s=", m[i].var);
		vp_strbuf_add(b, m[i].glob, strlen(m[i].glob));
		printf("    match      %s\n", b->oom ? "?" : b->s);
	}
}

static void print_pool(const struct vp_config *c, size_t i, struct vp_strbuf *b)
{
	const struct vp_pool_config *pc = &c->pools[i];
	char n[VP_PREFIX_STRLEN], r[VP_RANGE_STRLEN];
	struct vp_range hosts = vp_prefix_range(&pc->network);
	uint64_t size = pool_size(c, i);

	printf("pool \"%s\" (line %u)\n", pc->name, pc->line);
	printf("    network    %s\n", vp_prefix_format(&pc->network, n));
	if (pc->has_range) {
		hosts = pc->range;
	} else if (pc->network.len <= 30) {
		hosts.first = vp_addr_add(&hosts.first, 1, 0);
		hosts.last = vp_addr_add(&hosts.last, UINT64_MAX, 0);
	}
	printf("    range      %s%s\n", vp_range_format(&hosts, r), pc->has_range ? "" : " (every usable host)");
	for (size_t k = 0; k < pc->n_exclude; ++k)
		printf("    exclude    %s\n", vp_range_format(&pc->exclude[k], r));
	printf("    size       %llu %s after exclusions and reservations\n",
	       (unsigned long long)size, c->topology == VP_TOPO_NET30 ? "/30 blocks" : "addresses");
	if (pc->has_network6)
		printf("    network6   %s (one IPv6 address per client too)\n",
		       vp_prefix_format(&pc->network6, n));
	print_match(pc->match, pc->n_match, b);
}

static unsigned long long subnets(const struct vp_prefix *net, unsigned len)
{
	unsigned bits = len - net->len;

	return bits >= 64 ? ULLONG_MAX : 1ULL << bits;
}

static void print_router(const struct vp_config *c, size_t i, struct vp_strbuf *b)
{
	const struct vp_router_config *rc = &c->routers[i];
	char n[VP_PREFIX_STRLEN];
	uint64_t size = router_size(c, i);

	printf("router-pool \"%s\" (line %u)\n", rc->name, rc->line);
	if (rc->network.addr.family)
		printf("    network    %s: %llu subnets of /%u (%llu after reservations)\n",
		       vp_prefix_format(&rc->network, n), subnets(&rc->network, rc->prefix),
		       rc->prefix, (unsigned long long)size);
	if (rc->has_network6)
		printf("    network6   %s: %llu%s subnets of /%u\n", vp_prefix_format(&rc->network6, n),
		       subnets(&rc->network6, rc->prefix6),
		       rc->prefix6 - rc->network6.len >= 64 ? " or more" : "", rc->prefix6);
	print_match(rc->match, rc->n_match, b);
	printf("    push-route %s\n", rc->push_route ? "yes (every client gets the route)" : "no");
}

static void print_static(const struct vp_static_config *st, struct vp_strbuf *b)
{
	char t[VP_PREFIX_STRLEN];

	printf("client %s (line %u):", vp_fmt_cell(b, st->identity, strlen(st->identity)), st->line);
	if (st->has_address)
		printf(" address %s", vp_addr_format(&st->address, t));
	if (st->has_address6)
		printf(" address6 %s", vp_addr_format(&st->address6, t));
	if (st->has_subnet)
		printf(" subnet %s", vp_prefix_format(&st->subnet, t));
	if (st->has_subnet6)
		printf(" subnet6 %s", vp_prefix_format(&st->subnet6, t));
	putchar('\n');
}

/* The shortest prefix covering a and b (same family). */
static struct vp_prefix cover(const struct vp_prefix *a, const struct vp_prefix *b)
{
	unsigned len = a->len < b->len ? a->len : b->len;

	while (len && !vp_prefix_contains(&(struct vp_prefix){ vp_prefix_of(&a->addr, len).addr,
							       (uint8_t)len }, &b->addr))
		len--;
	return vp_prefix_of(&a->addr, len);
}

static void print_server_lines(const struct vp_config *c, const char *path)
{
	struct vp_prefix net4 = { 0 }, net6 = { 0 };
	bool has6 = false;
	char a[VP_ADDR_STRLEN], m[VP_ADDR_STRLEN], p[VP_PREFIX_STRLEN];
	char *abs = realpath(path, NULL);

	for (size_t i = 0; i < c->n_pools; ++i) {
		const struct vp_pool_config *pc = &c->pools[i];

		net4 = i ? cover(&net4, &pc->network) : pc->network;
		if (pc->has_network6) {
			net6 = has6 ? cover(&net6, &pc->network6) : pc->network6;
			has6 = true;
		}
	}
	printf("\nserver.conf needs:\n");
	printf("    topology %s\n", c->topology == VP_TOPO_AUTO ? "subnet" : topo_name[c->topology]);
	if (c->n_pools && net4.len < 8)
		printf("    # the pools lie far apart: the tun network must hold them all (%s)\n",
		       vp_prefix_format(&net4, p));
	if (c->n_pools && net4.len < 16) {
		/* OpenVPN's "server" refuses a network wider than a /16, even
		 * with nopool; what it stands for is written out instead. */
		struct vp_addr mask = vp_addr_v4(vp_netmask4(net4.len));
		struct vp_addr local = vp_addr_add(&net4.addr, 1, 0);
		struct vp_addr peer = vp_addr_add(&net4.addr, 2, 0);
		bool subnet = c->topology == VP_TOPO_AUTO || c->topology == VP_TOPO_SUBNET;
		char n[VP_ADDR_STRLEN];

		printf("    mode server                # \"server\" stops at a /16: its parts instead\n");
		printf("    tls-server\n");
		printf("    push \"topology %s\"\n", subnet ? "subnet" : topo_name[c->topology]);
		if (subnet) {
			printf("    ifconfig %s %s\n", vp_addr_format(&local, a), vp_addr_format(&mask, m));
			printf("    push \"route-gateway %s\"\n", vp_addr_format(&local, a));
		} else {
			/* net30 and p2p: ifconfig names the peer, the network is a route. */
			printf("    ifconfig %s %s\n", vp_addr_format(&local, a), vp_addr_format(&peer, m));
			printf("    route %s %s\n", vp_addr_format(&net4.addr, n), vp_addr_format(&mask, m));
			if (c->topology == VP_TOPO_NET30)
				printf("    push \"route %s\"\n", vp_addr_format(&local, a));
		}
		if (has6) {
			struct vp_addr l6 = vp_addr_add(&net6.addr, 1, 0), r6 = vp_addr_add(&net6.addr, 2, 0);

			printf("    ifconfig-ipv6 %s/%u %s\n", vp_addr_format(&l6, a), net6.len,
			       vp_addr_format(&r6, m));
		}
	} else if (c->n_pools) {
		struct vp_addr mask = vp_addr_v4(vp_netmask4(net4.len));

		printf("    server %s %s%s\n", vp_addr_format(&net4.addr, a), vp_addr_format(&mask, m),
		       has6 ? "                 # no nopool: OpenVPN 2.6 refuses it with server-ipv6"
			    : " nopool          # OpenVPN's own pool off: the plugin assigns");
		if (has6)
			printf("    server-ipv6 %s\n", vp_prefix_format(&net6, p));
	}
	for (size_t i = 0; i < c->n_routers; ++i) {
		const struct vp_router_config *rc = &c->routers[i];

		if (rc->network.addr.family) {
			struct vp_addr mask = vp_addr_v4(vp_netmask4(rc->network.len));

			printf("    route %s %s\n", vp_addr_format(&rc->network.addr, a),
			       vp_addr_format(&mask, m));
		}
		if (rc->has_network6)
			printf("    route-ipv6 %s\n", vp_prefix_format(&rc->network6, p));
	}
	printf("    plugin %s/openvpn-plugin-vpnpool.so %s\n", VP_PLUGINDIR, abs ? abs : path);
	free(abs);
}

int vp_cmd_check(const struct vp_cli *cli, int argc, char **argv)
{
	struct vp_config c;
	struct vp_strbuf b = { 0 };
	char err[2048];

	if (argc > 1) {
		vp_cli_error("check takes no arguments (try vpnpool check --help)");
		return VP_EXIT_USAGE;
	}
	if (vp_conf_load(&c, cli->config_path, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return VP_EXIT_FAIL;
	}
	printf("%s: OK\n", cli->config_path);
	printf("state-dir    %s\n", c.state_dir);
	printf("usage-log    %s\n", c.usage_log ? c.usage_log : "(off)");
	printf("metrics-file %s\n", c.metrics_file ? c.metrics_file : "(off)");
	printf("identity     %s\n", c.identity);
	printf("hold-time    %llds\n", (long long)c.hold_time);
	printf("topology     %s\n", topo_name[c.topology]);
	printf("host-routes  %s\n", c.host_routes == VP_HOST_ROUTES_YES ? "yes" :
				   c.host_routes == VP_HOST_ROUTES_NO ? "no" :
				   "auto (while other instances are live)");
	printf("fsync        %s\n", c.fsync ? "true" : "false");
	if (c.store) {
		char name[512];

		/* Not contacted: check reads the config only (status does). */
		printf("store        %s (not contacted by check; vpnpool status reads it)\n",
		       vp_pg_uri_shown(c.store, name, sizeof(name)));
		printf("node         %s\n", c.node ? c.node : "(the host name)");
		printf("store-timeout %us\n", c.store_timeout_ms / 1000);
		printf("node-timeout %llds\n", (long long)c.node_timeout);
	}
	putchar('\n');
	for (size_t i = 0; i < c.n_pools; ++i)
		print_pool(&c, i, &b);
	for (size_t i = 0; i < c.n_routers; ++i)
		print_router(&c, i, &b);
	for (size_t i = 0; i < c.n_statics; ++i)
		print_static(&c.statics[i], &b);
	print_server_lines(&c, cli->config_path);
	vp_strbuf_free(&b);
	vp_config_free(&c);
	return VP_EXIT_OK;
}
