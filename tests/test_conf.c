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

static const char spec_example[] =
	"state-dir    = \"/var/lib/openvpn/vpnpool\"   # leases and lock\n"
	"usage-log    = \"/var/log/openvpn/vpnpool-usage.log\"\n"
	"identity     = \"common_name\"\n"
	"hold-time    = 0\n"
	"warn-at      = {95, 80}\n"
	"topology     = \"auto\"\n"
	"metrics-file = \"\"\n"
	"fsync        = false\n"
	"\n"
	"pool \"staff\" {\n"
	"    network  = \"10.8.0.0/16\"\n"
	"    range    = \"10.8.1.1-10.8.255.254\"\n"
	"    exclude  = {\"10.8.100.0/24\", \"10.8.0.2-10.8.0.20\", \"fd00:8::1\"}\n"
	"    network6 = \"fd00:8::/64\"\n"
	"    match    = {\"common_name=*.staff.example.com\", \"X509_0_OU=Staff\"}\n"
	"}\n"
	"router-pool \"sites\" {\n"
	"    network  = \"10.9.0.0/16\"\n"
	"    prefix   = 24\n"
	"    network6 = \"fd00:9::/48\"\n"
	"    prefix6  = 64\n"
	"    match    = {\"common_name=site-*\"}\n"
	"    push-route = true\n"
	"}\n"
	"client \"alice\" {\n"
	"    address  = \"10.8.0.50\"\n"
	"    address6 = \"fd00:8::50\"\n"
	"}\n"
	"client \"site-paris\" {\n"
	"    subnet   = \"10.9.77.0/24\"\n"
	"    subnet6  = \"fd00:9:0:77::/64\"\n"
	"}\n";

static void load__spec_example__gives_every_value(void **state)
{
	struct vp_config c;
	char err[1024], buf[VP_RANGE_STRLEN];

	(void)state;
	if (vp_conf_load_buf(&c, spec_example, "vpnpool.conf", err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c.state_dir, "/var/lib/openvpn/vpnpool");
	assert_string_equal(c.usage_log, "/var/log/openvpn/vpnpool-usage.log");
	assert_null(c.metrics_file);
	assert_int_equal(c.n_warn_at, 2);
	assert_int_equal(c.warn_at[0], 80);
	assert_int_equal(c.warn_at[1], 95);
	assert_int_equal(c.n_pools, 1);
	assert_string_equal(c.pools[0].name, "staff");
	assert_string_equal(vp_range_format(&c.pools[0].range, buf), "10.8.1.1-10.8.255.254");
	assert_int_equal(c.pools[0].n_exclude, 3);
	assert_string_equal(vp_range_format(&c.pools[0].exclude[2], buf), "fd00:8::1");
	assert_true(c.pools[0].has_network6);
	assert_int_equal(c.pools[0].n_match, 2);
	assert_string_equal(c.pools[0].match[1].var, "X509_0_OU");
	assert_string_equal(c.pools[0].match[1].glob, "Staff");
	assert_int_equal(c.n_routers, 1);
	assert_int_equal(c.routers[0].prefix, 24);
	assert_int_equal(c.routers[0].prefix6, 64);
	assert_true(c.routers[0].push_route);
	assert_int_equal(c.n_statics, 2);
	assert_string_equal(c.statics[1].identity, "site-paris");
	assert_true(c.statics[1].has_subnet6);
	vp_config_free(&c);
}

static void load__minimal__defaults(void **state)
{
	struct vp_config c;
	char err[1024];

	(void)state;
	assert_int_equal(vp_conf_load_buf(&c, "pool \"p\" { network = \"10.8.0.0/24\" }\n", "x.conf",
					  err, sizeof(err)), 0);
	assert_string_equal(c.state_dir, "/var/lib/openvpn/vpnpool");
	assert_string_equal(c.usage_log, "/var/lib/openvpn/vpnpool/usage.log");
	assert_string_equal(c.identity, "common_name");
	assert_int_equal(c.hold_time, 0);
	assert_int_equal(c.topology, VP_TOPO_AUTO);
	assert_false(c.fsync);
	assert_int_equal(c.n_warn_at, 2);
	assert_false(c.pools[0].has_range);
	vp_config_free(&c);
}

struct bad {
	const char *text;
	const char *error;	/* the whole expected message */
};

static const struct bad bad_configs[] = {
	{ "pool \"p\" {\n network = \"10.8.0.256/24\"\n}\n",
	  "t.conf:2: network: `10.8.0.256/24': an IPv4 octet is above 255" },
	{ "# a comment\n# another\npool \"p\" {\n  network = \"10.8.0.0/33\"\n}\n",
	  "t.conf:4: network: `10.8.0.0/33': an IPv4 prefix length is at most 32" },
	{ "pool \"p\" {\n network = \"10.8.0.1/16\"\n}\n",
	  "t.conf:2: network: `10.8.0.1/16': host bits are set (did you mean 10.8.0.0/16?)" },
	{ "pool \"p\" {\n network = \"10.0.0.0/7\"\n}\n",
	  "t.conf:2: pool \"p\": network 10.0.0.0/7 must be a /8 to a /30" },
	{ "pool \"p\" {\n network = \"10.8.0.0/16\"\n range = \"10.9.0.1-10.9.0.9\"\n}\n",
	  "t.conf:3: range 10.9.0.1-10.9.0.9 is not inside network 10.8.0.0/16" },
	{ "pool \"p\" {\n network = \"10.8.0.0/16\"\n range = \"10.8.0.9-10.8.0.1\"\n}\n",
	  "t.conf:3: range: `10.8.0.9-10.8.0.1': the range ends before it starts" },
	{ "pool \"p\" {\n network = \"10.8.0.0/16\"\n exclude = {\"10.8.0.1\",\n \"10.7.0.0/24\"}\n}\n",
	  "t.conf:4: exclude 10.7.0.0/24 is not inside network 10.8.0.0/16" },
	{ "pool \"p\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00::/48\"\n}\n",
	  "t.conf:3: pool \"p\": network6 fd00::/48 must be a /64 to a /126" },
	{ "pool \"p\" {\n network = \"10.8.0.0/16\"\n network6 = \"::g/64\"\n}\n",
	  "t.conf:3: network6: `::g/64': an IPv6 address has only hex digits, ':' and '.'" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\npool \"b\" {\n network = \"10.8.5.0/24\"\n}\n",
	  "t.conf:5: \"b\" (10.8.5.0/24) overlaps \"a\" (10.8.0.0/16)" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\nrouter-pool \"r\" {\n network = \"10.8.128.0/17\"\n prefix = 24\n}\n",
	  "t.conf:5: \"r\" (10.8.128.0/17) overlaps \"a\" (10.8.0.0/16)" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\nrouter-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 16\n}\n",
	  "t.conf:5: router-pool \"r\": prefix 16 does not fit in network 10.9.0.0/16 (it must be longer than /16 and at most /32)" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\nclient \"alice\" {\n address = \"10.7.0.5\"\n}\n",
	  "t.conf:5: client \"alice\": address 10.7.0.5 is not inside any pool network" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\nclient \"s\" {\n subnet = \"10.9.1.0/24\"\n}\n",
	  "t.conf:5: client \"s\": subnet 10.9.1.0/24 is not inside any router-pool network" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n match = {\"X509_0_OU\"}\n}\n",
	  "t.conf:3: match: `X509_0_OU': a match entry is VARIABLE=GLOB" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n match = {\"bad var=x\"}\n}\n",
	  "t.conf:3: match: `bad var=x': the variable must be a name of letters, digits and '_'" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\npool \"a\" {\n network = \"10.9.0.0/16\"\n}\n",
	  "t.conf:4: found duplicate title 'a'" },
	{ "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\nbogus = 1\n", "t.conf:4: no such option 'bogus'" },
	{ "state-dir = \"/x\nfoo\n", "t.conf:3: premature end of file" },
	{ "hold-time = -5\npool \"a\" {\n network = \"10.8.0.0/16\"\n}\n",
	  "t.conf:1: hold-time: `-5' is not a whole number from 0 to 315360000" },
	{ "warn-at = {80, 101}\n", "t.conf:1: warn-at: `101' is not a whole number from 1 to 100" },
	{ "topology = \"star\"\n", "t.conf:1: topology: `star' is none of auto, subnet, net30, p2p" },
	{ "identity = \"common name\"\n",
	  "t.conf:1: identity: `common name' is not an environment variable name (letters, digits, '_')" },
	{ "state-dir = \"/x\"\n", "t.conf:2: no pool defined" },
};

static void load__bad_configs__report_file_line_and_problem(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_configs) / sizeof(*bad_configs); ++i) {
		struct vp_config c;
		char err[1024] = "";

		if (vp_conf_load_buf(&c, bad_configs[i].text, "t.conf", err, sizeof(err)) != -1)
			fail_msg("config %zu loaded but should not have", i);
		if (strcmp(err, bad_configs[i].error))
			fail_msg("config %zu:\n got  %s\n want %s", i, err, bad_configs[i].error);
	}
}

static void load__missing_file__says_cannot_open(void **state)
{
	struct vp_config c;
	char err[1024];

	(void)state;
	assert_int_equal(vp_conf_load(&c, "/nonexistent/vpnpool.conf", err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/vpnpool.conf: cannot open: No such file or directory");
}

static void load__real_file__names_it_in_errors(void **state)
{
	char path[] = "/tmp/vpnpool-conf-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "pool \"a\" {\n network = \"10.8.0.0/16\"\n}\nbad = 1\n";
	struct vp_config c;
	char err[1024], want[1100];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);
	assert_int_equal(vp_conf_load(&c, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: no such option 'bad'", path);
	assert_string_equal(err, want);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load__spec_example__gives_every_value),
		cmocka_unit_test(load__minimal__defaults),
		cmocka_unit_test(load__bad_configs__report_file_line_and_problem),
		cmocka_unit_test(load__missing_file__says_cannot_open),
		cmocka_unit_test(load__real_file__names_it_in_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
