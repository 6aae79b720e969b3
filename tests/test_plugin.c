/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The plugin's pure parts: OpenVPN's environment in, config lines and log
 * lines out, and the escaping that keeps client data out of both. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/fs.h"
#include "logfmt.h"
#include "plugin/env.h"
#include "plugin/lines.h"
#include "plugin/once.h"
#include "plugin/metrics.h"
#include "plugin/server_conf.h"
#include "plugin/usage.h"
#include "testlib.h"

static void env_server__subnet_topology__reads_netmask_and_ipv6(void **state)
{
	const char *envp[] = { "ifconfig_local=10.8.0.1", "ifconfig_netmask=255.255.0.0",
			       "ifconfig_ipv6_local=fd00:8::1", "ifconfig_ipv6_netbits=64", NULL };
	struct vp_server s;
	char err[256];

	(void)state;
	assert_true(vp_env_server(envp, VP_TOPO_AUTO, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_int_equal(s.topology, VP_TOPO_SUBNET);
	assert_int_equal(s.netbits4, 16);
	assert_int_equal(s.netbits6, 64);
	assert_true(vp_addr_eq(&s.local6, &(struct vp_addr){ 0xfd00000800000000ULL, 1, VP_INET6 }));
}

static void env_server__no_netmask__auto_is_net30_and_p2p_when_configured(void **state)
{
	const char *envp[] = { "ifconfig_local=10.8.0.1", "ifconfig_remote=10.8.0.2", NULL };
	struct vp_server s;
	char err[256];

	(void)state;
	assert_true(vp_env_server(envp, VP_TOPO_AUTO, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_int_equal(s.topology, VP_TOPO_NET30);
	assert_true(vp_env_server(envp, VP_TOPO_P2P, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_int_equal(s.topology, VP_TOPO_P2P);
	assert_false(vp_env_server(envp, VP_TOPO_SUBNET, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_non_null(strstr(err, "ifconfig_netmask"));
}

static void env_server__missing_or_bad_values__fail_with_reason(void **state)
{
	const char *none[] = { "common_name=x", NULL };
	const char *bad_mask[] = { "ifconfig_local=10.8.0.1", "ifconfig_netmask=255.0.255.0", NULL };
	const char *bad_local[] = { "ifconfig_local=10.8.0.300", NULL };
	const char *v6_remote[] = { "ifconfig_local=10.8.0.1", "ifconfig_remote=fd00::2", NULL };
	struct vp_server s;
	char err[256];

	(void)state;
	assert_false(vp_env_server(none, VP_TOPO_AUTO, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_non_null(strstr(err, "ifconfig_local"));
	assert_false(vp_env_server(bad_mask, VP_TOPO_AUTO, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_non_null(strstr(err, "not a netmask"));
	assert_false(vp_env_server(bad_local, VP_TOPO_AUTO, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_string_equal(err, "OpenVPN's ifconfig_local is not an IPv4 address: "
				 "`10.8.0.300': octet 300 is above 255");
	assert_false(vp_env_server(v6_remote, VP_TOPO_AUTO, VP_TOPO_NET30, &s, err, sizeof(err)));
	assert_string_equal(err, "OpenVPN's ifconfig_remote is not an IPv4 address: "
				 "`fd00::2' is IPv6");
}

static void env_get__exact_names_only(void **state)
{
	const char *envp[] = { "common_name_x=no", "common_name=alice=bob", "X509_0_OU=Staff", NULL };
	char real[64];
	const char *v4[] = { "trusted_ip=203.0.113.7", "trusted_port=43208", NULL };
	const char *v6[] = { "trusted_ip6=2001:db8::7", "trusted_port=5", NULL };

	(void)state;
	assert_string_equal(vp_env_get(envp, "common_name"), "alice=bob");
	assert_null(vp_env_get(envp, "common"));
	assert_string_equal(vp_env_getvar((void *)envp, "X509_0_OU"), "Staff");
	vp_env_real(v4, real, sizeof(real));
	assert_string_equal(real, "203.0.113.7:43208");
	vp_env_real(v6, real, sizeof(real));
	assert_string_equal(real, "[2001:db8::7]:5");
	vp_env_real(envp, real, sizeof(real));
	assert_string_equal(real, "");
}

static void env_request__identity_from_the_configured_variable(void **state)
{
	const char *envp[] = { "common_name=alice", "username=bob",
			       "X509_0_emailAddress=carol@example.com", "X509_0_OU=Staff", NULL };
	static const struct {
		const char *var, *value;
	} cases[] = {
		{ "common_name", "alice" },
		{ "username", "bob" },
		{ "X509_0_emailAddress", "carol@example.com" },
	};
	struct vp_request req;
	char real[VP_REAL_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
		assert_true(vp_env_request(envp, cases[i].var, &req, real));
		assert_int_equal(req.identity_len, strlen(cases[i].value));
		assert_memory_equal(req.identity, cases[i].value, req.identity_len);
		assert_string_equal(req.getvar(req.getvar_ud, "X509_0_OU"), "Staff");
		assert_null(req.getvar(req.getvar_ud, "X509_0_O"));
	}
}

static void env_request__missing_or_empty_identity__false(void **state)
{
	const char *none[] = { "username=bob", NULL };
	const char *empty[] = { "common_name=", NULL };
	struct vp_request req;
	char real[VP_REAL_MAX];

	(void)state;
	assert_false(vp_env_request(none, "common_name", &req, real));
	assert_null(req.identity);
	assert_int_equal(req.identity_len, 0);
	assert_false(vp_env_request(empty, "common_name", &req, real));
	assert_int_equal(req.identity_len, 0);
	assert_false(vp_env_request(NULL, "common_name", &req, real));
}

static void env_request__real_address_from_trusted_ip_or_ip6(void **state)
{
	const char *v4[] = { "common_name=a", "untrusted_ip=198.51.100.1", "untrusted_port=9",
			     "trusted_ip=203.0.113.7", "trusted_port=43208", NULL };
	const char *v6[] = { "common_name=a", "trusted_ip6=2001:db8::7", "trusted_port=5", NULL };
	const char *unknown[] = { "common_name=a", "untrusted_ip=198.51.100.1", NULL };
	struct vp_request req;
	char real[VP_REAL_MAX];

	(void)state;
	assert_true(vp_env_request(v4, "common_name", &req, real));
	assert_string_equal(req.real, "203.0.113.7:43208");
	assert_true(vp_env_request(v6, "common_name", &req, real));
	assert_string_equal(req.real, "[2001:db8::7]:5");
	assert_true(vp_env_request(unknown, "common_name", &req, real));
	assert_string_equal(req.real, "");
}

static enum vp_topology conf_topology(const char *text)
{
	return vp_server_conf_topology(text, strlen(text));
}

static void server_conf__topology_line__last_one_wins(void **state)
{
	(void)state;
	assert_int_equal(conf_topology("topology p2p\n"), VP_TOPO_P2P);
	assert_int_equal(conf_topology("dev tun\ntopology subnet\nserver 10.8.0.0 255.255.0.0\n"),
			 VP_TOPO_SUBNET);
	assert_int_equal(conf_topology("topology p2p\ntopology net30"), VP_TOPO_NET30);
	assert_int_equal(conf_topology("topology net30\r\n  \t topology\t p2p  \r\n"),
			 VP_TOPO_P2P);
	assert_int_equal(conf_topology("--topology \"p2p\"\n"), VP_TOPO_P2P);
	assert_int_equal(conf_topology("topology 'p2p' # the old way\n"), VP_TOPO_P2P);
	assert_int_equal(conf_topology("topology p2p ;why\n"), VP_TOPO_P2P);
}

static void server_conf__no_topology_line__net30(void **state)
{
	(void)state;
	assert_int_equal(conf_topology(""), VP_TOPO_NET30);
	assert_int_equal(conf_topology("dev tun\nserver 10.8.0.0 255.255.0.0\n"), VP_TOPO_NET30);
	assert_int_equal(vp_server_conf_topology(NULL, 0), VP_TOPO_NET30);
}

static void server_conf__comments_blocks_and_other_words__not_read(void **state)
{
	static const char *const not_p2p[] = {
		"# topology p2p\n",
		"; topology p2p\n",
		"   #topology p2p\n",
		"push \"topology p2p\"\n",
		"topology-x p2p\n",
		"topologyp2p\n",
		"topology\n",
		"topology p2p extra\n",
		"topology P2P\n",
		"topology p2p2\n",
		"topology \"p2p\n",
		"<ca>\ntopology p2p\n</ca>\n",
		"<connection>\n topology p2p\n</connection>\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(not_p2p) / sizeof(not_p2p[0]); ++i) {
		char text[128];

		snprintf(text, sizeof(text), "topology net30\n%s", not_p2p[i]);
		assert_int_equal(conf_topology(text), VP_TOPO_NET30);
	}
	/* A NUL is a byte of the word, not its end. */
	assert_int_equal(vp_server_conf_topology("topology net30\ntopology p2p\0\n", 29),
			 VP_TOPO_NET30);
	assert_int_equal(vp_server_conf_topology("topology p2p\n\0topology net30\n", 13),
			 VP_TOPO_P2P);
	assert_int_equal(conf_topology("<ca>\nx\n</ca>\ntopology p2p\n"), VP_TOPO_P2P);
}

static void server_conf__any_bytes__no_crash(void **state)
{
	static const char bytes[] = "topology p2p\n\r\t \"'#;<>/-\0x\xff";
	char text[4096];
	unsigned seed = 7;

	(void)state;
	for (int round = 0; round < 200; ++round) {
		enum vp_topology t;

		for (size_t i = 0; i < sizeof(text); ++i) {
			seed = seed * 1103515245u + 12345u;
			text[i] = bytes[(seed >> 16) % (sizeof(bytes) - 1)];
		}
		t = vp_server_conf_topology(text, (seed >> 8) % sizeof(text));
		assert_true(t == VP_TOPO_SUBNET || t == VP_TOPO_NET30 || t == VP_TOPO_P2P);
	}
}

static void server_conf__read_file__regular_files_only(void **state)
{
	char *dir = tl_tmpdir(), path[4200], fifo[4200];
	enum vp_topology t = VP_TOPO_AUTO;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/server.conf", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("dev tun\ntopology p2p\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(vp_server_conf_read_topology(path, &t), 0);
	assert_int_equal(t, VP_TOPO_P2P);

	assert_int_equal(mkfifo(fifo, 0600), 0);
	t = VP_TOPO_AUTO;
	assert_int_equal(vp_server_conf_read_topology(fifo, &t), -EINVAL);	/* no hang */
	assert_int_equal(vp_server_conf_read_topology(dir, &t), -EINVAL);
	assert_int_equal(vp_server_conf_read_topology("/nonexistent/server.conf", &t), -ENOENT);
	assert_int_equal(t, VP_TOPO_AUTO);

	/* Longer than the bound: the first VP_SERVER_CONF_MAX bytes count. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("topology p2p\n", f);
	assert_int_equal(fseek(f, VP_SERVER_CONF_MAX, SEEK_SET), 0);
	fputs("\ntopology subnet\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(vp_server_conf_read_topology(path, &t), -EFBIG);
	assert_int_equal(t, VP_TOPO_P2P);
	tl_rmtree(dir);
	free(dir);
}

static struct vp_config *lines_config(void)
{
	struct vp_config *c = tl_config_new("/nonexistent");

	tl_add_pool(c, "staff", "10.8.0.0/16", NULL, NULL, "fd00:8::/64", NULL);
	tl_add_router(c, "sites", "10.9.0.0/16", 24, "fd00:9::/48", 64, NULL);
	return c;
}

static void lines__subnet_router_client__all_spec_lines(void **state)
{
	struct vp_config *c = lines_config();
	struct vp_server srv = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, "fd00:8::1");
	struct vp_grant g = {
		.pool = &c->pools[0], .router = &c->routers[0],
		.addr4 = tl_addr("10.8.1.5"), .addr6 = tl_addr("fd00:8::1:5"),
		.subnet4 = tl_prefix("10.9.77.0/24"), .subnet6 = tl_prefix("fd00:9:77::/64"),
	};
	struct vp_strbuf out = { 0 };

	(void)state;
	vp_lines_build(&out, &g, &srv, c);
	assert_string_equal(out.s, "ifconfig-push 10.8.1.5 255.255.0.0\n"
				   "ifconfig-ipv6-push fd00:8::1:5/64 fd00:8::1\n"
				   "iroute 10.9.77.0 255.255.255.0\n"
				   "iroute-ipv6 fd00:9:77::/64\n"
				   "push \"route 10.9.0.0 255.255.0.0\"\n"
				   "push \"route-ipv6 fd00:9::/48\"\n");
	vp_strbuf_free(&out);
	vp_config_free(c);
	free(c);
}

static void lines__net30_and_p2p__peer_address_second(void **state)
{
	struct vp_config *c = lines_config();
	struct vp_server srv = tl_server(VP_TOPO_NET30, "10.8.0.1", 0, NULL);
	struct vp_grant g = { .pool = &c->pools[0], .addr4 = tl_addr("10.8.1.6"),
			      .peer4 = tl_addr("10.8.1.5") };
	struct vp_strbuf out = { 0 };

	(void)state;
	c->routers[0].push_route = false;
	vp_lines_build(&out, &g, &srv, c);
	assert_string_equal(out.s, "ifconfig-push 10.8.1.6 10.8.1.5\n");
	vp_strbuf_reset(&out);
	srv.topology = VP_TOPO_P2P;
	g.addr4 = tl_addr("10.8.1.5");
	g.peer4 = tl_addr("10.8.0.1");
	vp_lines_build(&out, &g, &srv, c);
	assert_string_equal(out.s, "ifconfig-push 10.8.1.5 10.8.0.1\n");
	vp_strbuf_free(&out);
	vp_config_free(c);
	free(c);
}

static void logfmt__plain_values__stay_bare(void **state)
{
	struct vp_strbuf b = { 0 };

	(void)state;
	vp_logfmt_adds(&b, "identity", "alice.staff");
	vp_logfmt_addu(&b, "size", 65279);
	assert_string_equal(b.s, "identity=alice.staff size=65279");
	vp_strbuf_free(&b);
}

static void logfmt__hostile_values__quoted_escaped_and_round_trip(void **state)
{
	static const char *const hostile[] = {
		"a b", "quote\"d", "eq=ual", "back\\slash", "new\nline event=connect",
		"cr\r", "tab\t", "", "\xff\xfe raw", "\x7f", "$(rm -rf /);`x`", "\xc3\xa9t\xc3\xa9",
	};
	struct vp_strbuf b = { 0 }, val = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(*hostile); ++i) {
		const char *cursor;
		char key[32];

		vp_strbuf_reset(&b);
		vp_logfmt_adds(&b, "identity", hostile[i]);
		vp_logfmt_adds(&b, "pool", "staff");
		/* One line, printable ASCII only. */
		for (size_t k = 0; k < b.len; ++k)
			assert_true(b.s[k] >= ' ' && b.s[k] < 0x7f);
		cursor = b.s;
		assert_true(vp_logfmt_next(&cursor, key, sizeof(key), &val));
		assert_string_equal(key, "identity");
		assert_int_equal(val.len, strlen(hostile[i]));
		assert_memory_equal(val.s, hostile[i], val.len);
		assert_true(vp_logfmt_next(&cursor, key, sizeof(key), &val));
		assert_string_equal(key, "pool");
		assert_false(vp_logfmt_next(&cursor, key, sizeof(key), &val));
	}
	vp_strbuf_reset(&b);
	vp_logfmt_adds(&b, "identity", "a\"b\\c\nd");
	assert_string_equal(b.s, "identity=\"a\\\"b\\\\c\\x0ad\"");
	vp_strbuf_free(&b);
	vp_strbuf_free(&val);
}

static void logfmt_next__malformed_lines__rejected(void **state)
{
	static const char *const bad[] = {
		"key", "=value", "k=\"unterminated", "k=\"bad\\q\"", "k=\"bad\\x4\"", "k=\"a\"b",
	};
	struct vp_strbuf val = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); ++i) {
		const char *cursor = bad[i];
		char key[32];

		assert_false(vp_logfmt_next(&cursor, key, sizeof(key), &val));
	}
	vp_strbuf_free(&val);
}

static void usage__reclaim_fields__router_lease_adds_subnet_and_subnet6(void **state)
{
	struct vp_event ev = {
		.type = VP_EV_RECLAIM, .pool = "staff", .identity = (const uint8_t *)"carol",
		.identity_len = 5, .from = (const uint8_t *)"dave", .from_len = 4,
		.address = tl_addr("10.8.1.9"),
	};
	struct vp_strbuf f = { 0 };

	(void)state;
	vp_usage_reclaim_fields(&f, &ev);
	assert_string_equal(f.s, "identity=carol pool=staff address=10.8.1.9 from=dave");
	vp_strbuf_reset(&f);
	ev.pool = "sites";
	ev.subnet4 = tl_prefix("10.9.3.0/24");
	ev.subnet6 = tl_prefix("fd00:9:3::/64");
	vp_usage_reclaim_fields(&f, &ev);
	assert_string_equal(f.s, "identity=carol pool=sites address=10.8.1.9 "
				 "subnet=10.9.3.0/24 subnet6=fd00:9:3::/64 from=dave");
	vp_strbuf_reset(&f);
	memset(&ev.address, 0, sizeof(ev.address));
	memset(&ev.subnet6, 0, sizeof(ev.subnet6));
	vp_usage_reclaim_fields(&f, &ev);
	assert_string_equal(f.s, "identity=carol pool=sites subnet=10.9.3.0/24 from=dave");
	vp_strbuf_free(&f);
}

static void usage__write__one_line_per_event_with_utc_time(void **state)
{
	char *dir = tl_tmpdir(), path[512], line[512];
	struct vp_usage *u;
	struct vp_strbuf f = { 0 };
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/sub/usage.log", dir);
	assert_int_equal(vp_usage_open(&u, path, NULL), 0);
	vp_logfmt_adds(&f, "identity", "evil\nevent=reject");
	assert_int_equal(vp_usage_write(u, 1795579289, "connect", &f), 0);
	vp_usage_close(u);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_string_equal(line, "time=2026-11-25T04:01:29Z event=connect "
				  "identity=\"evil\\x0aevent=reject\"\n");
	assert_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	vp_strbuf_free(&f);
	tl_rmtree(dir);
	free(dir);
}

static size_t count_lines(const char *path, size_t *in_order)
{
	char line[256];
	size_t n = 0;
	FILE *fp = fopen(path, "r");

	*in_order = 0;
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp)) {
		char want[64];

		snprintf(want, sizeof(want), "identity=client-%zu\n", n);
		if (strstr(line, want))
			++*in_order;
		n++;
	}
	fclose(fp);
	return n;
}

/* With the writer thread: every line, in order, whole; one alone shows up
 * without waiting for the close; nothing left behind at close. */
static void usage__writer_thread__lines_in_order_and_flushed(void **state)
{
	char *dir = tl_tmpdir(), path[512];
	struct vp_usage *u;
	struct vp_strbuf f = { 0 };
	size_t ordered, seen = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/usage.log", dir);
	assert_int_equal(vp_usage_open(&u, path, NULL), 0);
	assert_int_equal(vp_usage_start_writer(u), 0);
	assert_int_equal(vp_usage_start_writer(u), 0);	/* once only */
	vp_logfmt_adds(&f, "identity", "client-0");
	assert_int_equal(vp_usage_write(u, 1795579289, "connect", &f), 0);
	for (int i = 0; i < 500 && seen == 0; ++i) {	/* up to 5 s */
		seen = count_lines(path, &ordered);
		if (!seen)
			usleep(10000);
	}
	assert_int_equal(seen, 1);
	for (size_t i = 1; i < 200000; ++i) {
		char id[32];

		snprintf(id, sizeof(id), "client-%zu", i);
		vp_strbuf_reset(&f);
		vp_logfmt_adds(&f, "identity", id);
		assert_int_equal(vp_usage_write(u, 1795579289, "connect", &f), 0);
	}
	vp_usage_close(u);
	assert_int_equal(count_lines(path, &ordered), 200000);
	assert_int_equal(ordered, 200000);
	vp_strbuf_free(&f);
	tl_rmtree(dir);
	free(dir);
}

/* A write that fails in the background is told once, by vp_usage_report. */
static void usage__writer_thread__failure_told_once(void **state)
{
	struct vp_usage *u;
	struct vp_usage_report r = { 0 };
	struct vp_strbuf f = { 0 };
	bool told = false;

	(void)state;
	if (access("/dev/full", W_OK))
		skip();
	assert_int_equal(vp_usage_open(&u, "/dev/full", NULL), 0);
	assert_int_equal(vp_usage_start_writer(u), 0);
	vp_logfmt_adds(&f, "identity", "x");
	assert_int_equal(vp_usage_write(u, 1795579289, "connect", &f), 0);
	for (int i = 0; i < 500 && !told; ++i) {	/* up to 5 s */
		told = vp_usage_report(u, &r);
		if (!told)
			usleep(10000);
	}
	assert_true(told);
	assert_int_equal(r.error, -ENOSPC);
	assert_false(r.opening);
	assert_int_equal(r.held, 1);
	assert_int_equal(vp_usage_write(u, 1795579289, "connect", &f), 0);
	assert_false(vp_usage_report(u, &r));
	vp_usage_close(u);
	vp_strbuf_free(&f);
}

/* ---- errors said once ---------------------------------------------------- */

static void once__same_failure_repeated__said_once_then_cleared_with_the_count(void **state)
{
	struct vp_once o = { 0 };
	char line[512];

	(void)state;
	assert_int_equal(vp_once_report(&o, NULL, line, sizeof(line)), VP_ONCE_QUIET);
	assert_int_equal(vp_once_report(&o, "compacting the journal failed: Permission denied",
					line, sizeof(line)), VP_ONCE_FAILED);
	assert_string_equal(line, "compacting the journal failed: Permission denied");
	for (int i = 0; i < 123; ++i)
		assert_int_equal(vp_once_report(&o, "compacting the journal failed: Permission denied",
						line, sizeof(line)), VP_ONCE_QUIET);
	assert_int_equal(vp_once_report(&o, NULL, line, sizeof(line)), VP_ONCE_CLEARED);
	assert_string_equal(line,
			    "compacting the journal failed: Permission denied: cleared after 124 failures");
	assert_int_equal(vp_once_report(&o, NULL, line, sizeof(line)), VP_ONCE_QUIET);
	/* After it cleared, the same failure is news again. */
	assert_int_equal(vp_once_report(&o, "x: Permission denied", line, sizeof(line)),
			 VP_ONCE_FAILED);
	assert_int_equal(vp_once_report(&o, NULL, line, sizeof(line)), VP_ONCE_CLEARED);
	assert_string_equal(line, "x: Permission denied: cleared after 1 failure");
}

static void once__failure_changes__new_one_said_with_the_old_count(void **state)
{
	struct vp_once o = { 0 };
	char line[512];

	(void)state;
	assert_int_equal(vp_once_report(&o, "w: Permission denied", line, sizeof(line)),
			 VP_ONCE_FAILED);
	assert_int_equal(vp_once_report(&o, "w: No space left on device", line, sizeof(line)),
			 VP_ONCE_FAILED);
	assert_string_equal(line, "w: No space left on device");	/* the old one: once */
	assert_int_equal(vp_once_report(&o, "w: No space left on device", line, sizeof(line)),
			 VP_ONCE_QUIET);
	assert_int_equal(vp_once_report(&o, "w: Permission denied", line, sizeof(line)),
			 VP_ONCE_FAILED);
	assert_string_equal(line, "w: Permission denied (before: w: No space left on device, 2 times)");
	assert_int_equal(vp_once_report(&o, "w: Permission denied", NULL, 0), VP_ONCE_QUIET);
}

/* ---- paths ---------------------------------------------------------------- */

static void fs_dirname__paths__directory_part_or_dot_or_root(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(vp_fs_dirname("/var/log/usage.log", out, sizeof(out)), 0);
	assert_string_equal(out, "/var/log");
	assert_int_equal(vp_fs_dirname("usage.log", out, sizeof(out)), 0);
	assert_string_equal(out, ".");
	assert_int_equal(vp_fs_dirname("/usage.log", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(vp_fs_dirname("/a/very/long/directory/x", out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_string_equal(out, "");
}

/* ---- the metrics file ------------------------------------------------------ */

struct metrics_fx {
	char *dir, path[512];
	struct vp_config *config;
	struct tl_world world;
	struct vp_space *space;
};

static void metrics_fx_open(struct metrics_fx *f)
{
	struct vp_space_options o;
	struct vp_store_report report;
	pid_t holder;

	memset(f, 0, sizeof(*f));
	f->dir = tl_tmpdir();
	f->config = tl_config_new(f->dir);
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	snprintf(f->path, sizeof(f->path), "%s/metrics.prom", f->dir);
	f->config->metrics_file = strdup(f->path);
	f->world.now = 1000000;
	o = tl_options(f->config, &f->world);
	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
}

static void metrics_fx_close(struct metrics_fx *f)
{
	vp_space_close(f->space);
	vp_config_free(f->config);
	free(f->config);
	tl_rmtree(f->dir);
	free(f->dir);
}

static bool file_has(const char *path, const char *what)
{
	char *text = NULL;
	size_t cap = 0;
	FILE *fp = fopen(path, "r");
	bool has;

	if (!fp)
		return false;
	has = getdelim(&text, &cap, '\0', fp) > 0 && strstr(text, what);
	fclose(fp);
	free(text);
	return has;
}

/* Before the first client: the sizes as soon as the server's addresses are
 * known (UP), not zeros until a connect. */
static void metrics__update_once_server_known__file_holds_pool_sizes(void **state)
{
	struct metrics_fx f;
	struct vp_metrics *m;
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, NULL);
	int err;

	(void)state;
	metrics_fx_open(&f);
	assert_int_equal(vp_metrics_open(&m, f.config, f.space, NULL), 0);
	assert_true(file_has(f.path, "vpnpool_pool_size{pool=\"p\"} 0\n"));
	assert_int_equal(vp_space_set_server(f.space, &server), 0);
	vp_metrics_update(m, f.space);
	assert_true(file_has(f.path, "vpnpool_pool_size{pool=\"p\"} 253\n"));
	assert_true(file_has(f.path, "vpnpool_pool_addresses{pool=\"p\",state=\"free\"} 253\n"));
	assert_false(vp_metrics_report(m, &err));
	vp_metrics_close(m, f.space);
	metrics_fx_close(&f);
}

struct failing_rename {
	int fail;
};

static int fr_rename(void *ud, const char *from, const char *to)
{
	struct failing_rename *f = ud;

	return f->fail ? f->fail : vp_fs_direct()->rename(NULL, from, to);
}

/* Renames go through the fs; a failure is told once, its end once. */
static void metrics__write_fails__told_once_and_when_it_works_again(void **state)
{
	struct failing_rename fr = { 0 };
	struct vp_fs fs = *vp_fs_direct();	/* the direct calls ignore ud */
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, NULL);
	struct metrics_fx f;
	struct vp_metrics *m;
	char tmp[600];
	int err;

	(void)state;
	fs.rename = fr_rename;
	fs.ud = &fr;
	metrics_fx_open(&f);
	assert_int_equal(vp_metrics_open(&m, f.config, f.space, &fs), 0);
	fr.fail = -EACCES;
	assert_int_equal(vp_space_set_server(f.space, &server), 0);
	vp_metrics_update(m, f.space);
	assert_true(vp_metrics_report(m, &err));
	assert_int_equal(err, -EACCES);
	vp_metrics_update(m, f.space);
	assert_false(vp_metrics_report(m, &err));
	assert_true(file_has(f.path, "vpnpool_pool_size{pool=\"p\"} 0\n"));
	snprintf(tmp, sizeof(tmp), "%s.tmp", f.path);
	assert_int_equal(access(tmp, F_OK), -1);	/* no temporary file left */
	fr.fail = 0;
	vp_metrics_update(m, f.space);
	assert_true(vp_metrics_report(m, &err));
	assert_int_equal(err, 0);
	assert_true(file_has(f.path, "vpnpool_pool_size{pool=\"p\"} 253\n"));
	vp_metrics_close(m, f.space);
	metrics_fx_close(&f);
}

/* A symlink at the path or at the temporary file's name is replaced, never
 * written through. */
static void metrics__symlinks__replaced_not_followed(void **state)
{
	struct metrics_fx f;
	struct vp_metrics *m;
	char target[600], tmp[600];
	struct stat st;

	(void)state;
	metrics_fx_open(&f);
	snprintf(target, sizeof(target), "%s/target", f.dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f.path);
	close(open(target, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(symlink(target, f.path), 0);
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(vp_metrics_open(&m, f.config, f.space, NULL), 0);
	vp_metrics_close(m, f.space);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(lstat(f.path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(file_has(f.path, "vpnpool_connects_total 0\n"));
	metrics_fx_close(&f);
}

/* Typed events: each kind counted once, a reject under its reason ("other"
 * for one the metrics do not know); start, stop and the rest only refresh
 * the figures. */
static void metrics__events__counted_by_kind_and_reject_reason(void **state)
{
	static const struct vp_metrics_event evs[] = {
		{ .kind = VP_METRICS_START },
		{ .kind = VP_METRICS_CONNECT },
		{ .kind = VP_METRICS_CONNECT },
		{ .kind = VP_METRICS_DISCONNECT },
		{ .kind = VP_METRICS_RECLAIM, .pool = "p" },
		{ .kind = VP_METRICS_REJECT, .reason = "exhausted", .pool = "p", .in_use = 253,
		  .size = 253 },
		{ .kind = VP_METRICS_REJECT, .reason = "no-pool" },
		{ .kind = VP_METRICS_REJECT, .reason = "reason=no-pool \"x\"" },
		{ .kind = VP_METRICS_REJECT },
		{ .kind = VP_METRICS_OTHER },
		{ .kind = VP_METRICS_STOP },
	};
	struct metrics_fx f;
	struct vp_metrics *m;

	(void)state;
	metrics_fx_open(&f);
	assert_int_equal(vp_metrics_open(&m, f.config, f.space, NULL), 0);
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); ++i)
		vp_metrics_event(m, f.space, &evs[i]);
	vp_metrics_close(m, f.space);
	assert_true(file_has(f.path, "\nvpnpool_connects_total 2\n"));
	assert_true(file_has(f.path, "\nvpnpool_disconnects_total 1\n"));
	assert_true(file_has(f.path, "\nvpnpool_reclaims_total 1\n"));
	assert_true(file_has(f.path, "\nvpnpool_rejects_total{reason=\"exhausted\"} 1\n"
				     "vpnpool_rejects_total{reason=\"no-pool\"} 1\n"
				     "vpnpool_rejects_total{reason=\"no-identity\"} 0\n"));
	assert_true(file_has(f.path, "\nvpnpool_rejects_total{reason=\"other\"} 2\n"));
	metrics_fx_close(&f);
}

static void metrics__kind_of__usage_event_names(void **state)
{
	(void)state;
	assert_int_equal(vp_metrics_kind_of("connect"), VP_METRICS_CONNECT);
	assert_int_equal(vp_metrics_kind_of("disconnect"), VP_METRICS_DISCONNECT);
	assert_int_equal(vp_metrics_kind_of("reclaim"), VP_METRICS_RECLAIM);
	assert_int_equal(vp_metrics_kind_of("reject"), VP_METRICS_REJECT);
	assert_int_equal(vp_metrics_kind_of("start"), VP_METRICS_START);
	assert_int_equal(vp_metrics_kind_of("stop"), VP_METRICS_STOP);
	assert_int_equal(vp_metrics_kind_of("warn"), VP_METRICS_OTHER);
	assert_int_equal(vp_metrics_kind_of("drop"), VP_METRICS_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(env_server__subnet_topology__reads_netmask_and_ipv6),
		cmocka_unit_test(env_server__no_netmask__auto_is_net30_and_p2p_when_configured),
		cmocka_unit_test(env_server__missing_or_bad_values__fail_with_reason),
		cmocka_unit_test(env_get__exact_names_only),
		cmocka_unit_test(server_conf__topology_line__last_one_wins),
		cmocka_unit_test(server_conf__no_topology_line__net30),
		cmocka_unit_test(server_conf__comments_blocks_and_other_words__not_read),
		cmocka_unit_test(server_conf__any_bytes__no_crash),
		cmocka_unit_test(server_conf__read_file__regular_files_only),
		cmocka_unit_test(env_request__identity_from_the_configured_variable),
		cmocka_unit_test(env_request__missing_or_empty_identity__false),
		cmocka_unit_test(env_request__real_address_from_trusted_ip_or_ip6),
		cmocka_unit_test(lines__subnet_router_client__all_spec_lines),
		cmocka_unit_test(lines__net30_and_p2p__peer_address_second),
		cmocka_unit_test(logfmt__plain_values__stay_bare),
		cmocka_unit_test(logfmt__hostile_values__quoted_escaped_and_round_trip),
		cmocka_unit_test(logfmt_next__malformed_lines__rejected),
		cmocka_unit_test(usage__reclaim_fields__router_lease_adds_subnet_and_subnet6),
		cmocka_unit_test(usage__write__one_line_per_event_with_utc_time),
		cmocka_unit_test(usage__writer_thread__lines_in_order_and_flushed),
		cmocka_unit_test(once__same_failure_repeated__said_once_then_cleared_with_the_count),
		cmocka_unit_test(once__failure_changes__new_one_said_with_the_old_count),
		cmocka_unit_test(usage__writer_thread__failure_told_once),
		cmocka_unit_test(fs_dirname__paths__directory_part_or_dot_or_root),
		cmocka_unit_test(metrics__update_once_server_known__file_holds_pool_sizes),
		cmocka_unit_test(metrics__events__counted_by_kind_and_reject_reason),
		cmocka_unit_test(metrics__kind_of__usage_event_names),
		cmocka_unit_test(metrics__write_fails__told_once_and_when_it_works_again),
		cmocka_unit_test(metrics__symlinks__replaced_not_followed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
