/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vpnpool.conf: what loads, and every mistake reported as FILE:LINE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/load.h"

/* The contract's example config, verbatim (comments and all). */
static const char spec_example[] =
	"state-dir    = \"/var/lib/openvpn/vpnpool\"   # leases and lock; created if missing\n"
	"usage-log    = \"/var/log/openvpn/vpnpool-usage.log\"   # default: usage.log in state-dir; \"\" = off\n"
	"identity     = \"common_name\"    # the OpenVPN env variable that names a client: common_name,\n"
	"                                # username, X509_0_emailAddress, ...\n"
	"hold-time    = 0                # seconds a disconnected client's lease is kept for it before it\n"
	"                                # may be given to someone else (it stays sticky until then, and\n"
	"                                # after, until the space is actually needed)\n"
	"warn-at      = {80, 95}         # pool utilisation (%) that logs a warning when crossed upward\n"
	"topology     = \"auto\"           # auto | subnet | net30 | p2p   (auto: read from OpenVPN)\n"
	"metrics-file = \"\"               # Prometheus text-format file rewritten on change; \"\" = off\n"
	"fsync        = false            # true: fsync each lease change (power-loss safe, slower)\n"
	"\n"
	"pool \"staff\" {                  # a client's tunnel address comes from the first pool, in file\n"
	"                                # order, whose match list it satisfies and that has room\n"
	"    network  = \"10.8.0.0/16\"    # IPv4; must lie inside the server's tun network (subnet topology)\n"
	"    range    = \"10.8.1.1-10.8.255.254\"     # optional; default: every usable host of network\n"
	"    exclude  = {\"10.8.100.0/24\", \"10.8.0.2-10.8.0.20\", \"fd00:8::1\"}   # never handed out\n"
	"    network6 = \"fd00:8::/64\"    # optional IPv6: such a client gets one address of each family\n"
	"    match    = {\"common_name=*.staff.example.com\", \"X509_0_OU=Staff\"}  # all must hold; none = all\n"
	"}\n"
	"\n"
	"router-pool \"sites\" {           # clients that match get a whole routed subnet too\n"
	"    network  = \"10.9.0.0/16\"\n"
	"    prefix   = 24               # each router gets one /24\n"
	"    network6 = \"fd00:9::/48\"    # optional\n"
	"    prefix6  = 64\n"
	"    match    = {\"common_name=site-*\"}\n"
	"    push-route = true           # push \"route 10.9.0.0 255.255.0.0\" (and the IPv6 one) to every\n"
	"                                # client, so all can reach every site\n"
	"}\n"
	"\n"
	"client \"alice\" {                # static reservation, keyed by the identity value\n"
	"    address  = \"10.8.0.50\"\n"
	"    address6 = \"fd00:8::50\"\n"
	"}\n"
	"client \"site-paris\" {\n"
	"    subnet   = \"10.9.77.0/24\"   # a fixed routed subnet; makes this client a router\n"
	"    subnet6  = \"fd00:9:77::/64\"\n"
	"}\n";

/* Loads text, failing the test with the loader's message if it does not. */
static void load_ok(struct vp_config *c, const char *text)
{
	char err[1024];

	if (vp_conf_load_buf(c, text, "t.conf", err, sizeof(err)))
		fail_msg("did not load: %s", err);
}

/* The message for text, which must not load. */
static const char *load_err(const char *text)
{
	static char err[1024];
	struct vp_config c;

	err[0] = '\0';
	if (!vp_conf_load_buf(&c, text, "t.conf", err, sizeof(err))) {
		vp_config_free(&c);
		fail_msg("loaded but should not have:\n%s", text);
	}
	return err;
}

static char *fmt_prefix(const struct vp_prefix *p)
{
	static char buf[VP_PREFIX_STRLEN];

	return vp_prefix_format(p, buf);
}

static char *fmt_range(const struct vp_range *r)
{
	static char buf[VP_RANGE_STRLEN];

	return vp_range_format(r, buf);
}

static char *fmt_addr(const struct vp_addr *a)
{
	static char buf[VP_ADDR_STRLEN];

	return vp_addr_format(a, buf);
}

/* The example's last client asks for fd00:9:77::/64, which is not inside the
 * router pool's fd00:9::/48 (it would be fd00:9:0:77::/64): rejected, at
 * its line. */
static void load__spec_example_verbatim__rejects_subnet6_outside_router_pool(void **state)
{
	(void)state;
	assert_string_equal(load_err(spec_example),
			    "t.conf:38: client \"site-paris\": subnet6 fd00:9:77::/64 is not inside any router-pool network6");
}

static void load__spec_example_with_subnet6_inside__gives_every_value(void **state)
{
	const char *old = "fd00:9:77::/64", *new = "fd00:9:0:77::/64";
	const char *pos = strstr(spec_example, old);
	struct vp_config c;
	char *text;

	(void)state;
	assert_non_null(pos);
	text = malloc(sizeof(spec_example) + strlen(new));
	assert_non_null(text);
	memcpy(text, spec_example, (size_t)(pos - spec_example));
	strcpy(text + (pos - spec_example), new);
	strcat(text, pos + strlen(old));
	load_ok(&c, text);
	free(text);

	assert_string_equal(c.path, "t.conf");
	assert_string_equal(c.state_dir, "/var/lib/openvpn/vpnpool");
	assert_string_equal(c.usage_log, "/var/log/openvpn/vpnpool-usage.log");
	assert_string_equal(c.identity, "common_name");
	assert_int_equal(c.hold_time, 0);
	assert_int_equal(c.n_warn_at, 2);
	assert_int_equal(c.warn_at[0], 80);
	assert_int_equal(c.warn_at[1], 95);
	assert_int_equal(c.topology, VP_TOPO_AUTO);
	assert_int_equal(c.host_routes, VP_HOST_ROUTES_AUTO);
	assert_null(c.metrics_file);
	assert_null(c.instance);
	assert_false(c.fsync);

	assert_int_equal(c.n_pools, 1);
	assert_string_equal(c.pools[0].name, "staff");
	assert_int_equal(c.pools[0].line, 13);
	assert_string_equal(fmt_prefix(&c.pools[0].network), "10.8.0.0/16");
	assert_true(c.pools[0].has_range);
	assert_string_equal(fmt_range(&c.pools[0].range), "10.8.1.1-10.8.255.254");
	assert_int_equal(c.pools[0].n_exclude, 3);
	assert_string_equal(fmt_range(&c.pools[0].exclude[0]), "10.8.100.0-10.8.100.255");
	assert_string_equal(fmt_range(&c.pools[0].exclude[1]), "10.8.0.2-10.8.0.20");
	assert_string_equal(fmt_range(&c.pools[0].exclude[2]), "fd00:8::1");
	assert_true(c.pools[0].has_network6);
	assert_string_equal(fmt_prefix(&c.pools[0].network6), "fd00:8::/64");
	assert_int_equal(c.pools[0].n_match, 2);
	assert_string_equal(c.pools[0].match[0].var, "common_name");
	assert_string_equal(c.pools[0].match[0].glob, "*.staff.example.com");
	assert_string_equal(c.pools[0].match[1].var, "X509_0_OU");
	assert_string_equal(c.pools[0].match[1].glob, "Staff");

	assert_int_equal(c.n_routers, 1);
	assert_string_equal(c.routers[0].name, "sites");
	assert_int_equal(c.routers[0].line, 22);
	assert_string_equal(fmt_prefix(&c.routers[0].network), "10.9.0.0/16");
	assert_int_equal(c.routers[0].prefix, 24);
	assert_true(c.routers[0].has_network6);
	assert_string_equal(fmt_prefix(&c.routers[0].network6), "fd00:9::/48");
	assert_int_equal(c.routers[0].prefix6, 64);
	assert_int_equal(c.routers[0].n_match, 1);
	assert_string_equal(c.routers[0].match[0].glob, "site-*");
	assert_true(c.routers[0].push_route);

	assert_int_equal(c.n_statics, 2);
	assert_string_equal(c.statics[0].identity, "alice");
	assert_int_equal(c.statics[0].line, 32);
	assert_true(c.statics[0].has_address && c.statics[0].has_address6);
	assert_false(c.statics[0].has_subnet || c.statics[0].has_subnet6);
	assert_string_equal(fmt_addr(&c.statics[0].address), "10.8.0.50");
	assert_string_equal(fmt_addr(&c.statics[0].address6), "fd00:8::50");
	assert_string_equal(c.statics[1].identity, "site-paris");
	assert_int_equal(c.statics[1].line, 36);
	assert_true(c.statics[1].has_subnet && c.statics[1].has_subnet6);
	assert_false(c.statics[1].has_address || c.statics[1].has_address6);
	assert_string_equal(fmt_prefix(&c.statics[1].subnet), "10.9.77.0/24");
	assert_string_equal(fmt_prefix(&c.statics[1].subnet6), "fd00:9:0:77::/64");
	vp_config_free(&c);
}

static void load__minimal__takes_the_defaults(void **state)
{
	struct vp_config c;

	(void)state;
	load_ok(&c, "pool \"p\" { network = \"10.8.0.0/24\" }");
	assert_string_equal(c.state_dir, "/var/lib/openvpn/vpnpool");
	assert_string_equal(c.usage_log, "/var/lib/openvpn/vpnpool/usage.log");
	assert_string_equal(c.identity, "common_name");
	assert_int_equal(c.hold_time, 0);
	assert_int_equal(c.n_warn_at, 2);
	assert_int_equal(c.warn_at[0], 80);
	assert_int_equal(c.warn_at[1], 95);
	assert_int_equal(c.topology, VP_TOPO_AUTO);
	assert_null(c.metrics_file);
	assert_null(c.instance);
	assert_false(c.fsync);
	assert_int_equal(c.n_pools, 1);
	assert_false(c.pools[0].has_range);
	assert_string_equal(fmt_range(&c.pools[0].range), "10.8.0.0-10.8.0.255");
	assert_false(c.pools[0].has_network6);
	assert_int_equal(c.pools[0].n_exclude, 0);
	assert_int_equal(c.pools[0].n_match, 0);
	assert_int_equal(c.n_routers, 0);
	assert_int_equal(c.n_statics, 0);
	vp_config_free(&c);
}

static void load__every_root_option__is_read(void **state)
{
	struct vp_config c;

	(void)state;
	load_ok(&c, "state-dir = \"/srv/vpnpool/\"\n"
		    "usage-log = \"\"\n"
		    "identity = \"X509_0_emailAddress\"\n"
		    "hold-time = 3600\n"
		    "warn-at = {95, 50, 95, 1, 100}\n"
		    "topology = net30\n"
		    "metrics-file = \"/run/vpnpool.prom\"\n"
		    "instance = \"udp-1.a_b\"\n"
		    "fsync = true\n"
		    "host-routes = yes\n"
		    "pool \"p\" { network = \"10.8.0.0/24\" }\n");
	assert_string_equal(c.state_dir, "/srv/vpnpool/");
	assert_null(c.usage_log);
	assert_string_equal(c.identity, "X509_0_emailAddress");
	assert_int_equal(c.hold_time, 3600);
	assert_int_equal(c.n_warn_at, 4);
	assert_int_equal(c.warn_at[0], 1);
	assert_int_equal(c.warn_at[1], 50);
	assert_int_equal(c.warn_at[2], 95);
	assert_int_equal(c.warn_at[3], 100);
	assert_int_equal(c.topology, VP_TOPO_NET30);
	assert_string_equal(c.metrics_file, "/run/vpnpool.prom");
	assert_string_equal(c.instance, "udp-1.a_b");
	assert_true(c.fsync);
	assert_int_equal(c.host_routes, VP_HOST_ROUTES_YES);
	vp_config_free(&c);

	load_ok(&c, "state-dir = \"/srv/vpnpool/\"\ntopology = \"p2p\"\nwarn-at = {}\n"
		    "pool \"p\" { network = \"10.8.0.0/24\" }\n");
	assert_string_equal(c.usage_log, "/srv/vpnpool/usage.log");
	assert_int_equal(c.topology, VP_TOPO_P2P);
	assert_int_equal(c.host_routes, VP_HOST_ROUTES_AUTO);
	assert_int_equal(c.n_warn_at, 0);
	vp_config_free(&c);
}

static void load__comments__neither_shift_lines_nor_eat_values(void **state)
{
	struct vp_config c;

	(void)state;
	/* libconfuse 3.3 alone would count two lines per comment line. */
	assert_string_equal(load_err("# one\n// two\n/* three\n four */\n#\n"
				     "pool \"p\" {   # trailing\n"
				     "  network = \"10.8.0.0/16\" // trailing\n"
				     "  /* inline */ range = \"10.9.0.1-10.9.0.9\"\n}\n"),
			    "t.conf:8: range 10.9.0.1-10.9.0.9 is not inside network 10.8.0.0/16");
	/* "//" inside an unquoted word, '#' or "//" inside quotes: no comment. */
	load_ok(&c, "state-dir = /srv//vpn#x\nmetrics-file = \"/run/a#b//c\"\n"
		    "identity = common_name\npool \"p\" { network = \"10.8.0.0/24\" }\n");
	assert_string_equal(c.state_dir, "/srv//vpn");
	assert_string_equal(c.metrics_file, "/run/a#b//c");
	vp_config_free(&c);
}

static void load__match__splits_at_the_first_equals_and_allows_client_variables(void **state)
{
	struct vp_config c;

	(void)state;
	/* IV_* and UV_* are set by the client: allowed, documented in load.h. */
	load_ok(&c, "pool \"p\" {\n network = \"10.8.0.0/24\"\n"
		    " match = {\"X509_0_CN=a=b*\", \"IV_PLAT=linux\", \"UV_ROLE=*\", \"username=?\"}\n}\n");
	assert_int_equal(c.pools[0].n_match, 4);
	assert_string_equal(c.pools[0].match[0].var, "X509_0_CN");
	assert_string_equal(c.pools[0].match[0].glob, "a=b*");
	assert_string_equal(c.pools[0].match[1].var, "IV_PLAT");
	assert_string_equal(c.pools[0].match[3].var, "username");
	vp_config_free(&c);
}

static void load__routers_and_statics__accept_what_fits(void **state)
{
	struct vp_config c;

	(void)state;
	load_ok(&c, "pool \"p\" { network = \"10.8.0.0/24\" network6 = \"fd00:8::/112\" }\n"
		    "router-pool \"v6only\" { network6 = \"fd00:9::/48\" prefix6 = 64 push-route = false }\n"
		    "router-pool \"v4only\" { network = \"10.9.0.0/16\" prefix = 30 }\n"
		    "client \"r1\" { subnet = \"10.9.1.0/26\" }\n"		/* length may differ */
		    "client \"r2\" { subnet = \"10.9.2.0/24\" subnet6 = \"fd00:9:0:10::/60\" }\n"
		    "client \"h\" { address = \"10.8.0.254\" address6 = \"fd00:8::ffff\" }\n");
	assert_int_equal(c.n_routers, 2);
	assert_false(c.routers[0].push_route);
	assert_int_equal(c.routers[0].network.addr.family, 0);
	assert_true(c.routers[0].has_network6);
	assert_true(c.routers[1].push_route);
	assert_false(c.routers[1].has_network6);
	assert_int_equal(c.routers[1].prefix, 30);
	assert_int_equal(c.n_statics, 3);
	vp_config_free(&c);
}

struct bad {
	const char *text;
	const char *error;	/* the whole message, or up to "`VALUE': " when the rest
				 * is addr.c's wording */
};

#define P16 "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\n"	/* lines 1-3 */
#define P16_6 "pool \"a\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00:8::/64\"\n}\n"

static const struct bad bad_configs[] = {
	/* libconfuse's own syntax errors */
	{ P16 "bogus = 1\n", "t.conf:4: no such option 'bogus'" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n netmask = \"255.255.0.0\"\n}\n",
	  "t.conf:3: no such option 'netmask'" },
	{ P16 "}\n", "t.conf:4: unexpected closing brace" },
	{ "pool {\n network = \"10.8.0.0/16\"\n}\n", "t.conf:1: missing title for section 'pool'" },
	{ P16 "fsync = maybe\n", "t.conf:4: invalid boolean value for option 'fsync'" },
	/* what libconfuse would miss or misplace */
	{ P16 "# comment\nstate-dir = \"/x\nfoo\n",
	  "t.conf:5: unterminated string: this \" is never closed" },
	{ P16 "state-dir = '/x\n", "t.conf:4: unterminated string: this ' is never closed" },
	{ P16 "/* the rest\n" P16, "t.conf:4: unterminated comment: this /* is never closed" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n", "t.conf:1: this { is never closed" },
	{ "bogus = 1\nstate-dir = \"x\n", "t.conf:1: no such option 'bogus'" },	/* earlier wins */
	/* duplicate titles */
	{ P16 "pool \"a\" {\n network = \"10.9.0.0/16\"\n}\n",
	  "t.conf:4: pool \"a\" is defined twice (first on line 1)" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n"
	  "router-pool \"r\" {\n network = \"10.10.0.0/16\"\n prefix = 24\n}\n",
	  "t.conf:8: router-pool \"r\" is defined twice (first on line 4)" },
	{ P16 "client \"x\" {\n address = \"10.8.0.5\"\n}\nclient \"x\" {\n address = \"10.8.0.6\"\n}\n",
	  "t.conf:7: client \"x\" is defined twice (first on line 4)" },
	{ P16 "router-pool \"a\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n",
	  "t.conf:4: router-pool \"a\" has the name of pool \"a\" (line 1)" },
	{ "router-pool \"a\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n" P16,
	  "t.conf:5: pool \"a\" has the name of router-pool \"a\" (line 1)" },
	/* top-level options */
	{ "hold-time = -5\n" P16, "t.conf:1: hold-time: `-5' is not a whole number from 0 to 315360000" },
	{ "hold-time = 1h\n" P16, "t.conf:1: hold-time: `1h' is not a whole number from 0 to 315360000" },
	{ "warn-at = {80,\n 101}\n" P16, "t.conf:2: warn-at: `101' is not a whole number from 1 to 100" },
	{ "warn-at = {0}\n" P16, "t.conf:1: warn-at: `0' is not a whole number from 1 to 100" },
	{ "topology = \"star\"\n" P16, "t.conf:1: topology: `star' is none of auto, subnet, net30, p2p" },
	{ P16 "\nhost-routes = \"always\"\n", "t.conf:5: host-routes: `always' is none of auto, yes, no" },
	{ P16 "host-routes = true\n", "t.conf:4: host-routes: `true' is none of auto, yes, no" },
	{ "\nidentity = \"common name\"\n" P16,
	  "t.conf:2: identity: `common name' is not an environment variable name (letters, digits, '_')" },
	{ "identity = \"\"\n" P16,
	  "t.conf:1: identity: `' is not an environment variable name (letters, digits, '_')" },
	{ P16 "instance = \"udp 1\"\n",
	  "t.conf:4: instance: `udp 1' is not a valid name (1 to 63 letters, digits, '.', '_', '-')" },
	{ P16 "instance = \"\"\n",
	  "t.conf:4: instance: `' is not a valid name (1 to 63 letters, digits, '.', '_', '-')" },
	{ P16 "state-dir = \"\"\n", "t.conf:4: state-dir is empty" },
	{ P16 "store = \"mysql://db\"\n",
	  "t.conf:4: store: `mysql://db' is not a PostgreSQL URI (postgresql://...; \"\": the journal)" },
	{ P16 "node = \"vpn 1\"\n",
	  "t.conf:4: node: `vpn 1' is not a valid name (1 to 63 letters, digits, '.', '_', '-')" },
	{ P16 "store-timeout = 0\n", "t.conf:4: store-timeout: `0' is not a whole number from 1 to 3600" },
	{ P16 "node-timeout = 1\n", "t.conf:4: node-timeout: `1' is not a whole number from 2 to 86400" },
	{ P16 "\nstore = \"postgresql://db\"\nstore-timeout = 10\nnode-timeout = 29\n",
	  "t.conf:5: node-timeout (29 s) must be at least 3 times store-timeout (10 s): a server busy with a slow database would be taken for dead" },
	{ "state-dir = \"/x\"\nfsync = true\n", "t.conf:2: no pool defined" },
	{ "", "t.conf:1: no pool defined" },
	/* pools */
	{ "pool \"a\" {\n}\n", "t.conf:1: pool \"a\" has no network" },
	{ "pool \"a\" {\n network = \"10.8.0.256/24\"\n}\n", "t.conf:2: network: `10.8.0.256/24': " },
	{ "pool \"a\" {\n network = \"10.8.0.0/33\"\n}\n", "t.conf:2: network: `10.8.0.0/33': " },
	{ "pool \"a\" {\n network = \"10.8.0.1/16\"\n}\n", "t.conf:2: network: `10.8.0.1/16': " },
	{ "pool \"a\" {\n network = \"10.8.0.0\"\n}\n", "t.conf:2: network: `10.8.0.0': " },
	{ "pool \"a\" {\n network = \"fd00:8::/64\"\n}\n",
	  "t.conf:2: network: `fd00:8::/64' is not an IPv4 prefix" },
	{ "pool \"a\" {\n network = \"10.0.0.0/7\"\n}\n",
	  "t.conf:2: pool \"a\": network 10.0.0.0/7 is not a /8 to a /30" },
	{ "pool \"a\" {\n network = \"10.8.0.0/31\"\n}\n",
	  "t.conf:2: pool \"a\": network 10.8.0.0/31 is not a /8 to a /30" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n\n range = \"10.9.0.1-10.9.0.9\"\n}\n",
	  "t.conf:4: range 10.9.0.1-10.9.0.9 is not inside network 10.8.0.0/16" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n range = \"10.8.255.0-10.9.0.9\"\n}\n",
	  "t.conf:3: range 10.8.255.0-10.9.0.9 is not inside network 10.8.0.0/16" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n range = \"fd00::1-fd00::9\"\n}\n",
	  "t.conf:3: range fd00::1-fd00::9 is not inside network 10.8.0.0/16" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n range = \"10.8.0.9-10.8.0.1\"\n}\n",
	  "t.conf:3: range: `10.8.0.9-10.8.0.1': " },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n exclude = {\"10.8.0.1\",\n \"10.7.0.0/24\"}\n}\n",
	  "t.conf:4: exclude 10.7.0.0/24 is not inside network 10.8.0.0/16" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n exclude = {\"fd00:8::1\"}\n}\n",
	  "t.conf:3: exclude fd00:8::1 is IPv6 but pool \"a\" has no network6" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00:8::/64\"\n"
	  " exclude = {\"fd00:8::1\", \"fd00:9::/120\"}\n}\n",
	  "t.conf:4: exclude fd00:9::/120 is not inside network6 fd00:8::/64" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n exclude = {\"10.8.0.1\", \"10.8.x\"}\n}\n",
	  "t.conf:3: exclude: `10.8.x': " },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00::/48\"\n}\n",
	  "t.conf:3: pool \"a\": network6 fd00::/48 is not a /64 to a /126" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00::/127\"\n}\n",
	  "t.conf:3: pool \"a\": network6 fd00::/127 is not a /64 to a /126" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n network6 = \"::g/64\"\n}\n",
	  "t.conf:3: network6: `::g/64': " },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n network6 = \"10.9.0.0/16\"\n}\n",
	  "t.conf:3: network6: `10.9.0.0/16' is not an IPv6 prefix" },
	/* match lists */
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n match = {\"X509_0_OU\"}\n}\n",
	  "t.conf:3: match: `X509_0_OU' is not VARIABLE=GLOB" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n match = {\"=Staff\"}\n}\n",
	  "t.conf:3: match: `=Staff' has no variable before '='" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n match = {\"bad var=x\"}\n}\n",
	  "t.conf:3: match: `bad var=x': the variable may only have letters, digits and '_'" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n match = {\"X509_0_OU=\"}\n}\n",
	  "t.conf:7: match: `X509_0_OU=' has an empty glob (use * to match anything)" },
	/* router pools */
	{ P16 "router-pool \"r\" {\n push-route = false\n}\n",
	  "t.conf:4: router-pool \"r\" has neither network nor network6" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n}\n",
	  "t.conf:5: router-pool \"r\": network 10.9.0.0/16 has no prefix (the size of each router's subnet)" },
	{ P16 "router-pool \"r\" {\n network6 = \"fd00:9::/48\"\n prefix = 24\n}\n",
	  "t.conf:6: router-pool \"r\": prefix without network" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n prefix6 = 64\n}\n",
	  "t.conf:7: router-pool \"r\": prefix6 without network6" },
	{ P16 "router-pool \"r\" {\n network6 = \"fd00:9::/48\"\n}\n",
	  "t.conf:5: router-pool \"r\": network6 fd00:9::/48 has no prefix6 (the size of each router's subnet)" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 16\n}\n",
	  "t.conf:6: router-pool \"r\": prefix 16 does not fit in network 10.9.0.0/16 (it must be longer than /16 and at most /32)" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 8\n}\n",
	  "t.conf:6: router-pool \"r\": prefix 8 does not fit in network 10.9.0.0/16 (it must be longer than /16 and at most /32)" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 33\n}\n",
	  "t.conf:6: router-pool \"r\": prefix 33 does not fit in network 10.9.0.0/16 (it must be longer than /16 and at most /32)" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = twenty\n}\n",
	  "t.conf:6: prefix: `twenty' is not a prefix length from 0 to 128" },
	{ P16 "router-pool \"r\" {\n network6 = \"fd00:9::/48\"\n prefix6 = 129\n}\n",
	  "t.conf:6: prefix6: `129' is not a prefix length from 0 to 128" },
	{ P16 "router-pool \"r\" {\n network6 = \"fd00:9::/48\"\n prefix6 = 112\n}\n",
	  "t.conf:6: router-pool \"r\": network6 fd00:9::/48 holds more than 2^63 /112 subnets" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n network6 = \"fd00:9::/48\"\n prefix6 = 48\n}\n",
	  "t.conf:8: router-pool \"r\": prefix6 48 does not fit in network6 fd00:9::/48 (it must be longer than /48 and at most /128)" },
	{ P16 "router-pool \"r\" {\n network = \"fd00:9::/48\"\n prefix = 64\n}\n",
	  "t.conf:5: network: `fd00:9::/48' is not an IPv4 prefix" },
	/* overlaps: reported at the later network */
	{ P16 "pool \"b\" {\n network = \"10.8.5.0/24\"\n}\n",
	  "t.conf:5: pool \"b\": network 10.8.5.0/24 overlaps network 10.8.0.0/16 of pool \"a\"" },
	{ P16_6 "pool \"b\" {\n network = \"10.9.0.0/16\"\n network6 = \"fd00:8::8:0/112\"\n}\n",
	  "t.conf:7: pool \"b\": network6 fd00:8::8:0/112 overlaps network6 fd00:8::/64 of pool \"a\"" },
	{ P16 "router-pool \"r\" {\n network = \"10.8.128.0/17\"\n prefix = 24\n}\n",
	  "t.conf:5: router-pool \"r\": network 10.8.128.0/17 overlaps network 10.8.0.0/16 of pool \"a\"" },
	{ "router-pool \"r\" {\n network = \"10.0.0.0/8\"\n prefix = 24\n}\n" P16,
	  "t.conf:6: pool \"a\": network 10.8.0.0/16 overlaps network 10.0.0.0/8 of router-pool \"r\"" },
	{ P16_6 "router-pool \"r\" {\n network6 = \"fd00::/16\"\n prefix6 = 64\n}\n",
	  "t.conf:6: router-pool \"r\": network6 fd00::/16 overlaps network6 fd00:8::/64 of pool \"a\"" },
	{ P16 "router-pool \"r\" {\n network6 = \"fd00:9::/48\"\n prefix6 = 64\n}\n"
	  "router-pool \"s\" {\n network6 = \"fd00:9:0:8000::/49\"\n prefix6 = 64\n}\n",
	  "t.conf:9: router-pool \"s\": network6 fd00:9:0:8000::/49 overlaps network6 fd00:9::/48 of router-pool \"r\"" },
	/* static clients */
	{ P16 "client \"x\" {\n}\n",
	  "t.conf:4: client \"x\" reserves nothing (no address, address6, subnet or subnet6)" },
	{ P16 "client \"alice\" {\n address = \"10.7.0.5\"\n}\n",
	  "t.conf:5: client \"alice\": address 10.7.0.5 is not inside any pool network" },
	{ P16 "client \"alice\" {\n address = \"10.8.0.0\"\n}\n",
	  "t.conf:5: client \"alice\": address 10.8.0.0 is the network address of pool \"a\"" },
	{ P16 "client \"alice\" {\n address = \"10.8.255.255\"\n}\n",
	  "t.conf:5: client \"alice\": address 10.8.255.255 is the broadcast address of pool \"a\"" },
	{ P16 "client \"alice\" {\n address = \"10.8.0\"\n}\n", "t.conf:5: address: `10.8.0': " },
	{ P16 "client \"alice\" {\n address = \"fd00:8::5\"\n}\n",
	  "t.conf:5: address: `fd00:8::5' is not an IPv4 address" },
	{ P16 "client \"alice\" {\n address6 = \"fd00:8::5\"\n}\n",
	  "t.conf:5: client \"alice\": address6 fd00:8::5 is not inside any pool network6" },
	{ P16_6 "client \"alice\" {\n address = \"10.8.0.5\"\n address6 = \"fd00:9::5\"\n}\n",
	  "t.conf:7: client \"alice\": address6 fd00:9::5 is not inside any pool network6" },
	{ P16 "client \"s\" {\n subnet = \"10.9.1.0/24\"\n}\n",
	  "t.conf:5: client \"s\": subnet 10.9.1.0/24 is not inside any router-pool network" },
	{ P16 "router-pool \"r\" {\n network = \"10.10.0.0/16\"\n prefix = 24\n}\n"
	  "client \"s\" {\n subnet = \"10.10.0.0/15\"\n}\n",
	  "t.conf:9: client \"s\": subnet 10.10.0.0/15 is not inside any router-pool network" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n"
	  "client \"s\" {\n subnet = \"10.9.1.0/24\"\n subnet6 = \"fd00:9::/64\"\n}\n",
	  "t.conf:10: client \"s\": subnet6 fd00:9::/64 is not inside any router-pool network6" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n"
	  "client \"s\" {\n subnet = \"10.9.1.1/24\"\n}\n", "t.conf:9: subnet: `10.9.1.1/24': " },
	{ P16 "client \"x\" {\n address = \"10.8.0.5\"\n}\nclient \"y\" {\n\n address = \"10.8.0.5\"\n}\n",
	  "t.conf:9: client \"y\": address 10.8.0.5 is already reserved for client \"x\"" },
	{ P16_6 "client \"x\" {\n address6 = \"fd00:8::5\"\n}\nclient \"y\" {\n address6 = \"fd00:8::5\"\n}\n",
	  "t.conf:9: client \"y\": address6 fd00:8::5 is already reserved for client \"x\"" },
	{ P16 "router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n"
	  "client \"x\" {\n subnet = \"10.9.1.0/24\"\n}\nclient \"y\" {\n subnet = \"10.9.1.128/25\"\n}\n",
	  "t.conf:12: client \"y\": subnet 10.9.1.128/25 overlaps subnet 10.9.1.0/24 of client \"x\"" },
	{ P16 "router-pool \"r\" {\n network6 = \"fd00:9::/48\"\n prefix6 = 64\n}\n"
	  "client \"x\" {\n subnet6 = \"fd00:9::/56\"\n}\nclient \"y\" {\n subnet6 = \"fd00:9:0:1::/64\"\n}\n",
	  "t.conf:12: client \"y\": subnet6 fd00:9:0:1::/64 overlaps subnet6 fd00:9::/56 of client \"x\"" },
};

static void load__bad_configs__report_file_line_and_problem(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_configs) / sizeof(*bad_configs); ++i) {
		const struct bad *b = &bad_configs[i];
		struct vp_config c;
		char err[1024] = "";
		size_t want = strlen(b->error);
		bool addr_wording = want > 3 && !strcmp(b->error + want - 3, "': ");
		bool same;

		if (vp_conf_load_buf(&c, b->text, "t.conf", err, sizeof(err)) != -1)
			fail_msg("config %zu loaded but should not have:\n%s", i, b->text);
		/* addr.c owns the wording after the quoted value: require some. */
		same = addr_wording ? !strncmp(err, b->error, want) && strlen(err) > want + 3
				       : !strcmp(err, b->error);
		if (!same)
			fail_msg("config %zu:\n got  %s\n want %s%s", i, err, b->error,
				 addr_wording ? "..." : "");
		/* A failed load leaves nothing to free, and freeing is harmless. */
		assert_null(c.pools);
		vp_config_free(&c);
	}
}

/* Reservations are checked against each other in O(n log n): thousands of
 * clients load at once, and a clash among them is still found. */
static void load__thousands_of_clients__load_and_clash_is_found(void **state)
{
	const size_t n = 5000;
	size_t cap = 128 * n + 256, len;
	char *text = malloc(cap);
	struct vp_config c;

	(void)state;
	assert_non_null(text);
	len = (size_t)snprintf(text, cap, "pool \"p\" { network = \"10.0.0.0/8\" }\n"
				       "router-pool \"r\" { network = \"172.16.0.0/12\" prefix = 28 }\n");
	for (size_t i = 0; i < n; ++i)
		len += (size_t)snprintf(text + len, cap - len,
					"client \"c%zu\" { address = \"10.0.%zu.%zu\" subnet = \"172.%zu.%zu.%zu/28\" }\n",
					i, i / 250, i % 250 + 1, 16 + i * 16 / 65536, i * 16 / 256 % 256,
					i * 16 % 256);
	load_ok(&c, text);
	assert_int_equal(c.n_statics, n);
	vp_config_free(&c);
	snprintf(text + len, cap - len, "client \"late\" { subnet = \"172.16.3.64/26\" }\n");
	assert_string_equal(load_err(text),
			    "t.conf:5003: client \"late\": subnet 172.16.3.64/26 overlaps subnet 172.16.3.64/28 of client \"c52\"");
	free(text);
}

static void config_free__zeroed_or_twice__is_harmless(void **state)
{
	struct vp_config c;

	(void)state;
	memset(&c, 0, sizeof(c));
	vp_config_free(&c);
	vp_config_free(NULL);
	load_ok(&c, "pool \"p\" { network = \"10.8.0.0/24\" }");
	vp_config_free(&c);
	vp_config_free(&c);
	assert_null(c.pools);
}

static void load__missing_file__says_cannot_open(void **state)
{
	struct vp_config c;
	char err[1024];

	(void)state;
	assert_int_equal(vp_conf_load(&c, "/nonexistent/vpnpool.conf", err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/vpnpool.conf: cannot open: No such file or directory");
	assert_int_equal(vp_conf_load(&c, "/", err, sizeof(err)), -1);
	assert_string_equal(err, "/: cannot open: not a regular file of at most 16 MiB");
}

/* Writes text to a new temporary file; returns its path (static buffer). */
static const char *temp_conf(const char *text, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/vpnpool-conf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static void load__real_file__loads_and_names_it_in_errors(void **state)
{
	const char good[] = "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\n";
	const char bad[] = "# vpnpool\npool \"a\" {\n network = \"10.8.0.0/16\"\n}\nbad = 1\n";
	const char nul[] = "pool \"a\" {\n network = \"10.8.0.0/16\"\0\n}\n";
	struct vp_config c;
	char err[1024], want[1100];
	const char *path;

	(void)state;
	path = temp_conf(good, sizeof(good) - 1);
	if (vp_conf_load(&c, path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c.path, path);
	assert_string_equal(c.pools[0].name, "a");
	vp_config_free(&c);
	unlink(path);

	path = temp_conf(bad, sizeof(bad) - 1);
	assert_int_equal(vp_conf_load(&c, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:5: no such option 'bad'", path);
	assert_string_equal(err, want);
	unlink(path);

	path = temp_conf(nul, sizeof(nul) - 1);
	assert_int_equal(vp_conf_load(&c, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: a NUL byte (this is not a text file)", path);
	assert_string_equal(err, want);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load__spec_example_verbatim__rejects_subnet6_outside_router_pool),
		cmocka_unit_test(load__spec_example_with_subnet6_inside__gives_every_value),
		cmocka_unit_test(load__minimal__takes_the_defaults),
		cmocka_unit_test(load__every_root_option__is_read),
		cmocka_unit_test(load__comments__neither_shift_lines_nor_eat_values),
		cmocka_unit_test(load__match__splits_at_the_first_equals_and_allows_client_variables),
		cmocka_unit_test(load__routers_and_statics__accept_what_fits),
		cmocka_unit_test(load__bad_configs__report_file_line_and_problem),
		cmocka_unit_test(load__thousands_of_clients__load_and_clash_is_found),
		cmocka_unit_test(config_free__zeroed_or_twice__is_harmless),
		cmocka_unit_test(load__missing_file__says_cannot_open),
		cmocka_unit_test(load__real_file__loads_and_names_it_in_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
