/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The engine's policy, as openvpn-plugin-vpnpool(8) states it, seen through its public API. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "testlib.h"

struct fx {
	char *dir;
	struct vp_config *config;
	struct vp_space *space;
	struct tl_world world;
	struct vp_server server;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->dir = tl_tmpdir();
	f->config = tl_config_new(f->dir);
	f->world.now = 1000000;
	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, NULL);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	vp_space_close(f->space);
	vp_config_free(f->config);
	free(f->config);
	tl_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void fx_open(struct fx *f)
{
	struct vp_space_options o = tl_options(f->config, &f->world);
	struct vp_store_report report;
	pid_t holder;

	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
	assert_int_equal(vp_space_set_server(f->space, &f->server), 0);
}

static void fx_reopen(struct fx *f)
{
	vp_space_close(f->space);
	f->space = NULL;
	fx_open(f);
}

static int fx_connect_env(struct fx *f, const char *id, struct tl_env *env, struct vp_grant *g)
{
	struct vp_request req = {
		.identity = (const uint8_t *)id, .identity_len = strlen(id),
		.getvar = tl_getvar, .getvar_ud = env, .real = "203.0.113.7:1194",
	};
	bool store_failed;

	return vp_space_connect(f->space, &req, g, &store_failed);
}

static int fx_connect(struct fx *f, const char *id, struct vp_grant *g)
{
	struct tl_env env = { { "common_name" }, { id }, 1 };

	return fx_connect_env(f, id, &env, g);
}

static int fx_disconnect(struct fx *f, const char *id, uint16_t slot)
{
	return vp_space_disconnect(f->space, (const uint8_t *)id, strlen(id), slot, NULL);
}

static const char *fmt(const struct vp_addr *a)
{
	static char buf[4][VP_ADDR_STRLEN];
	static int i;

	return vp_addr_format(a, buf[i++ & 3]);
}

static const char *fmtp(const struct vp_prefix *p)
{
	static char buf[4][VP_PREFIX_STRLEN];
	static int i;

	return vp_prefix_format(p, buf[i++ & 3]);
}

/* A pool of 10.8.0.0/28: hosts .1-.14 minus the server's .1 = 13. */
static void small_pool(struct fx *f)
{
	tl_add_pool(f->config, "small", "10.8.0.0/28", NULL, NULL, NULL, NULL);
}

static void connect__fresh_clients__get_lowest_free_distinct_addresses(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_string_equal(g.pool->name, "small");
	assert_false(g.sticky);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	assert_int_equal(g.in_use, 2);
	assert_int_equal(g.size, 13);
}

static void connect__returning_client__gets_same_address_even_after_others(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	small_pool(f);
	fx_open(f);
	fx_connect(f, "alice", &g);
	fx_connect(f, "bob", &g);
	assert_int_equal(fx_disconnect(f, "alice", 0), 0);
	assert_int_equal(fx_connect(f, "carol", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.4");	/* alice's .2 stays hers */
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_true(g.sticky);
}

static void connect__after_restart__gets_same_address(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	small_pool(f);
	fx_open(f);
	fx_connect(f, "alice", &g);
	fx_connect(f, "bob", &g);
	fx_reopen(f);	/* bob and alice were online: now held */
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	assert_true(g.sticky);
	assert_int_equal(fx_connect(f, "dave", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.4");
}

static void open__online_leases__become_held(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_pool_usage u;

	small_pool(f);
	fx_open(f);
	fx_connect(f, "alice", &g);
	vp_space_pool_usage(f->space, 0, &u);
	assert_int_equal(u.online, 1);
	fx_reopen(f);
	vp_space_pool_usage(f->space, 0, &u);
	assert_int_equal(u.online, 0);
	assert_int_equal(u.held, 1);
	assert_int_equal(u.free, 12);
}

static void open__second_process__shares_the_space(void **state)
{
	struct fx *f = *state;
	struct vp_space_options o = tl_options(f->config, &f->world);
	struct vp_store_report report;
	struct vp_space *other = NULL;
	struct vp_grant g;
	bool failed;
	struct vp_request req = { .identity = (const uint8_t *)"bob", .identity_len = 3 };
	pid_t holder = 1;

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_int_equal(vp_space_open(&other, &o, &report, &holder), 0);
	assert_int_equal(holder, 0);
	assert_int_equal(vp_space_leases(other), 1);
	assert_int_equal(vp_space_set_server(other, &f->server), 0);
	assert_int_equal(vp_space_connect(other, &req, &g, &failed), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");	/* .2 is alice's */
	vp_space_close(other);
}

static void connect__pool_full_nothing_held__returns_enospc_naming_pool(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	char id[16];

	small_pool(f);
	fx_open(f);
	for (int i = 0; i < 13; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(fx_connect(f, id, &g), 0);
	}
	assert_int_equal(fx_connect(f, "late", &g), -ENOSPC);
	assert_non_null(g.pool);
	assert_string_equal(g.pool->name, "small");
	assert_int_equal(g.in_use, 13);
	assert_int_equal(g.size, 13);
	/* The server keeps serving: a freed address is reused. */
	assert_int_equal(fx_disconnect(f, "c4", 0), 0);
	assert_int_equal(fx_connect(f, "late", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.6");
	assert_int_equal(f->world.events[VP_EV_RECLAIM], 1);
	assert_string_equal(f->world.last_from, "c4");
	assert_string_equal(fmt(&f->world.last[VP_EV_RECLAIM].address), "10.8.0.6");
	assert_int_equal(f->world.last[VP_EV_RECLAIM].subnet4.addr.family, 0);
}

static void connect__hold_time_not_passed__rejects_then_reclaims_oldest(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	char id[16];

	f->config->hold_time = 3600;
	small_pool(f);
	fx_open(f);
	for (int i = 0; i < 13; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		fx_connect(f, id, &g);
	}
	fx_disconnect(f, "c7", 0);
	f->world.now += 10;
	fx_disconnect(f, "c3", 0);
	f->world.now += 3000;
	assert_int_equal(fx_connect(f, "late", &g), -ENOSPC);
	f->world.now += 600;	/* c7 offline 3610 s, c3 3600 s: c7 is older */
	assert_int_equal(fx_connect(f, "late", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.9");
	assert_string_equal(f->world.last_from, "c7");
	/* c7 lost its lease: it gets whatever is next (c3's, also expired). */
	assert_int_equal(fx_connect(f, "c7", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.5");
	assert_false(g.sticky);
}

static void connect__free_address_in_next_pool__preferred_to_reclaiming(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	tl_add_pool(f->config, "a", "10.8.0.0/30", NULL, NULL, NULL, NULL);	/* .2 only */
	tl_add_pool(f->config, "b", "10.8.1.0/29", NULL, NULL, NULL, NULL);
	fx_open(f);
	fx_connect(f, "x", &g);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	fx_disconnect(f, "x", 0);
	assert_int_equal(fx_connect(f, "y", &g), 0);
	assert_string_equal(g.pool->name, "b");
	assert_string_equal(fmt(&g.addr4), "10.8.1.1");
	assert_int_equal(f->world.events[VP_EV_RECLAIM], 0);
}

static void connect__match__chooses_pool_and_overflows_to_next_matching(void **state)
{
	struct fx *f = *state;
	const char *staff[] = { "X509_0_OU=Staff", NULL };
	struct tl_env env_staff = { { "common_name", "X509_0_OU" }, { "s", "Staff" }, 2 };
	struct tl_env env_guest = { { "common_name", "X509_0_OU" }, { "g", "Guest" }, 2 };
	struct vp_grant g;

	tl_add_pool(f->config, "staff", "10.8.0.0/30", NULL, NULL, NULL, staff);
	tl_add_pool(f->config, "all", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect_env(f, "guest1", &env_guest, &g), 0);
	assert_string_equal(g.pool->name, "all");
	assert_int_equal(fx_connect_env(f, "staff1", &env_staff, &g), 0);
	assert_string_equal(g.pool->name, "staff");
	assert_int_equal(fx_connect_env(f, "staff2", &env_staff, &g), 0);
	assert_string_equal(g.pool->name, "all");
}

static void connect__no_pool_matches__returns_enoent(void **state)
{
	struct fx *f = *state;
	const char *only[] = { "common_name=site-*", NULL };
	struct vp_grant g;

	tl_add_pool(f->config, "sites", "10.8.0.0/24", NULL, NULL, NULL, only);
	fx_open(f);
	assert_int_equal(fx_connect(f, "alice", &g), -ENOENT);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
}

static void connect__duplicate_session__gets_own_address_first_keeps_sticky(void **state)
{
	struct fx *f = *state;
	struct vp_grant g1, g2, g3;

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, "alice", &g1), 0);
	assert_int_equal(fx_connect(f, "alice", &g2), 0);
	assert_int_equal(g1.slot, 0);
	assert_int_equal(g2.slot, 1);
	assert_false(vp_addr_eq(&g1.addr4, &g2.addr4));
	/* The extra session's address is freed; the first stays sticky. */
	assert_int_equal(fx_disconnect(f, "alice", 1), 0);
	assert_int_equal(fx_disconnect(f, "alice", 0), 0);
	assert_int_equal(fx_connect(f, "bob", &g3), 0);
	assert_string_equal(fmt(&g3.addr4), fmt(&g2.addr4));
	assert_int_equal(fx_connect(f, "alice", &g3), 0);
	assert_string_equal(fmt(&g3.addr4), fmt(&g1.addr4));
}

static void disconnect__twice__second_returns_enoent(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	small_pool(f);
	fx_open(f);
	fx_connect(f, "alice", &g);
	assert_int_equal(fx_disconnect(f, "alice", 0), 0);
	assert_int_equal(fx_disconnect(f, "alice", 0), -ENOENT);
	assert_int_equal(fx_disconnect(f, "nobody", 0), -ENOENT);
}

static void connect__static_reservation__is_never_given_to_others(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	small_pool(f);
	tl_add_static(f->config, "alice", "10.8.0.2", NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	assert_int_equal(g.size, 12);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_true(g.is_static);
	/* A second session of alice gets a dynamic address. */
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.4");
}

static void connect__server_network_broadcast_and_excludes__never_handed_out(void **state)
{
	struct fx *f = *state;
	const char *ex[] = { "10.8.0.3-10.8.0.5", "10.8.0.8/30", NULL };
	struct vp_grant g;
	char id[16];
	int n = 0;

	tl_add_pool(f->config, "p", "10.8.0.0/28", NULL, ex, NULL, NULL);
	fx_open(f);
	while (snprintf(id, sizeof(id), "c%d", n), fx_connect(f, id, &g) == 0) {
		const char *a = fmt(&g.addr4);

		assert_true(!strcmp(a, "10.8.0.2") || !strcmp(a, "10.8.0.6") ||
			    !strcmp(a, "10.8.0.7") || !strcmp(a, "10.8.0.12") ||
			    !strcmp(a, "10.8.0.13") || !strcmp(a, "10.8.0.14"));
		n++;
	}
	assert_int_equal(n, 6);
}

static void connect__router__gets_distinct_subnets_and_static_one(void **state)
{
	struct fx *f = *state;
	const char *sites[] = { "common_name=site-*", NULL };
	struct vp_grant g;

	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	tl_add_router(f->config, "sites", "10.9.0.0/16", 24, "fd00:9::/48", 64, sites);
	tl_add_static(f->config, "site-paris", NULL, NULL, "10.9.0.0/24", "fd00:9::/64");
	fx_open(f);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	assert_string_equal(fmtp(&g.subnet4), "10.9.1.0/24");
	assert_string_equal(fmtp(&g.subnet6), "fd00:9:0:1::/64");
	assert_string_equal(g.router->name, "sites");
	assert_int_equal(fx_connect(f, "site-paris", &g), 0);
	assert_string_equal(fmtp(&g.subnet4), "10.9.0.0/24");
	assert_string_equal(fmtp(&g.subnet6), "fd00:9::/64");
	assert_int_equal(fx_connect(f, "laptop", &g), 0);
	assert_null(g.router);
	assert_int_equal(g.subnet4.addr.family, 0);
	fx_reopen(f);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	assert_string_equal(fmtp(&g.subnet4), "10.9.1.0/24");
}

static void disconnect__dual_stack_router__hands_back_what_the_session_had(void **state)
{
	struct fx *f = *state;
	const char *sites[] = { "common_name=site-*", NULL };
	struct vp_grant g, ended;

	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, "fd00:8::1");
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, "fd00:8::/64", NULL);
	tl_add_router(f->config, "sites", "10.9.0.0/16", 24, "fd00:9::/48", 64, sites);
	fx_open(f);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	f->world.now += 60;
	assert_int_equal(vp_space_disconnect(f->space, (const uint8_t *)"site-a", 6, 0, &ended),
			 0);
	assert_string_equal(ended.pool->name, "p");
	assert_string_equal(ended.router->name, "sites");
	assert_string_equal(fmt(&ended.addr4), fmt(&g.addr4));
	assert_int_equal(ended.addr6.family, VP_INET6);
	assert_string_equal(fmt(&ended.addr6), fmt(&g.addr6));
	assert_string_equal(fmtp(&ended.subnet4), "10.9.0.0/24");
	assert_string_equal(fmtp(&ended.subnet6), "fd00:9::/64");
	assert_int_equal(ended.since, f->world.now - 60);
	/* Through the journal: the same addresses, the IPv6 ones included. */
	fx_reopen(f);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	assert_true(g.sticky);
	assert_string_equal(fmt(&g.addr4), fmt(&ended.addr4));
	assert_string_equal(fmt(&g.addr6), fmt(&ended.addr6));
	assert_string_equal(fmtp(&g.subnet6), "fd00:9::/64");
	assert_int_equal(vp_space_disconnect(f->space, (const uint8_t *)"site-a", 6, 1, &ended),
			 -ENOENT);
}

static void reclaim__router_lease__reports_its_address_and_subnets(void **state)
{
	struct fx *f = *state;
	const char *sites[] = { "common_name=site-*", NULL };
	const struct vp_event *ev = &f->world.last[VP_EV_RECLAIM];
	struct vp_grant g;

	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	tl_add_router(f->config, "sites", "10.9.0.0/23", 24, "fd00:9::/63", 64, sites);
	fx_open(f);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	assert_int_equal(fx_connect(f, "site-b", &g), 0);
	assert_int_equal(fx_disconnect(f, "site-a", 0), 0);
	assert_int_equal(fx_connect(f, "site-c", &g), 0);
	assert_string_equal(fmtp(&g.subnet4), "10.9.0.0/24");
	assert_int_equal(f->world.events[VP_EV_RECLAIM], 1);
	assert_string_equal(f->world.last_from, "site-a");
	assert_string_equal(ev->pool, "sites");
	assert_string_equal(fmt(&ev->address), "10.8.0.2");
	assert_string_equal(fmtp(&ev->subnet4), "10.9.0.0/24");
	assert_string_equal(fmtp(&ev->subnet6), "fd00:9::/64");
}

static void connect__router_pool_full__rejects_naming_it(void **state)
{
	struct fx *f = *state;
	const char *sites[] = { "common_name=site-*", NULL };
	struct vp_grant g;

	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	tl_add_router(f->config, "sites", "10.9.0.0/23", 24, NULL, 0, sites);
	fx_open(f);
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	assert_int_equal(fx_connect(f, "site-b", &g), 0);
	assert_int_equal(fx_connect(f, "site-c", &g), -ENOSPC);
	assert_non_null(g.router);
	assert_string_equal(g.router->name, "sites");
	assert_int_equal(g.size, 2);
	/* Nothing was kept for the refused client. */
	assert_int_equal(vp_space_leases(f->space), 2);
}

static void connect__ipv6_pool__gives_one_address_of_each_family(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, "fd00:8::1");
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, "fd00:8::/64", NULL);
	tl_add_static(f->config, "alice", "10.8.0.50", "fd00:8::50", NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_string_equal(fmt(&g.addr6), "fd00:8::2");	/* ::1 is the server */
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr6), "fd00:8::50");
	fx_reopen(f);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr6), "fd00:8::2");
}

static void connect__net30__gives_a_slash30_per_client(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	f->server = tl_server(VP_TOPO_NET30, "10.8.0.1", 0, NULL);
	f->server.remote4 = tl_addr("10.8.0.2");
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "a", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.6");
	assert_string_equal(fmt(&g.peer4), "10.8.0.5");
	assert_int_equal(fx_connect(f, "b", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.10");
	assert_int_equal(g.size, 62);	/* 64 /30s minus the server's and the broadcast one */
}

static void connect__p2p__peer_is_server_local(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	f->server = tl_server(VP_TOPO_P2P, "10.8.0.1", 0, NULL);
	f->server.remote4 = tl_addr("10.8.0.2");
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "a", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	assert_string_equal(fmt(&g.peer4), "10.8.0.1");
}

static void connect__filling_pool__warns_once_per_threshold_crossed_upward(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	char id[16];

	tl_add_pool(f->config, "p", "10.8.0.0/27", NULL, NULL, NULL, NULL);	/* 29 */
	fx_open(f);
	for (int i = 0; i < 24; ++i) {	/* 23/29 = 79.3%, 24/29 = 82.8% */
		snprintf(id, sizeof(id), "c%d", i);
		fx_connect(f, id, &g);
		assert_int_equal(f->world.events[VP_EV_WARN], i < 23 ? 0 : 1);
	}
	assert_int_equal(f->world.last[VP_EV_WARN].percent, 80);
	assert_int_equal(f->world.last[VP_EV_WARN].in_use, 24);
	assert_int_equal(f->world.last[VP_EV_WARN].size, 29);
	fx_connect(f, "c24", &g);
	assert_int_equal(f->world.events[VP_EV_WARN], 1);
	/* Held leases still count; extra sessions freed make it fall. */
	assert_int_equal(fx_connect(f, "c0", &g), 0);	/* slot 1: 25 */
	assert_int_equal(fx_disconnect(f, "c0", 1), 0);
	for (int i = 0; i < 4; ++i)
		fx_connect(f, "c0", &g);	/* slots 1-4: 29/29 */
	assert_int_equal(f->world.events[VP_EV_WARN], 2);
	assert_int_equal(f->world.last[VP_EV_WARN].percent, 95);
	for (int i = 1; i <= 4; ++i)
		fx_disconnect(f, "c0", (uint16_t)i);
	for (int i = 0; i < 4; ++i)
		fx_connect(f, "c0", &g);
	assert_int_equal(f->world.events[VP_EV_WARN], 3);
}

static void set_server__pool_outside_tun_network__reported_and_not_used(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_pool_usage u;

	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, NULL);
	tl_add_pool(f->config, "outside", "10.8.5.0/24", NULL, NULL, NULL, NULL);
	tl_add_pool(f->config, "inside", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_POOL_UNUSABLE], 1);
	assert_string_equal(f->world.last[VP_EV_POOL_UNUSABLE].pool, "outside");
	vp_space_pool_usage(f->space, 0, &u);
	assert_false(u.usable);
	assert_int_equal(fx_connect(f, "a", &g), 0);
	assert_string_equal(g.pool->name, "inside");
}

static void reservation__equal_to_server_address__is_not_handed_out(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	small_pool(f);
	tl_add_static(f->config, "alice", "10.8.0.1", NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 1);
	assert_string_equal(fmt(&f->world.last[VP_EV_RESERVATION_UNUSABLE].address), "10.8.0.1");
	assert_memory_equal(f->world.last[VP_EV_RESERVATION_UNUSABLE].identity, "alice", 5);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_false(g.is_static);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	/* Reported once per server, not at every call. */
	assert_int_equal(vp_space_set_server(f->space, &f->server), 0);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 1);
	fx_disconnect(f, "alice", 0);
	fx_reopen(f);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_true(g.sticky);
}

static void reservation__server_moves_onto_it__stored_lease_dropped_client_served_from_pool(
	void **state)
{
	struct fx *f = *state;
	struct vp_server moved = tl_server(VP_TOPO_SUBNET, "10.8.0.9", 16, NULL);
	struct vp_grant g;

	small_pool(f);
	tl_add_static(f->config, "alice", "10.8.0.9", NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.9");
	assert_int_equal(fx_disconnect(f, "alice", 0), 0);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 0);
	assert_int_equal(vp_space_set_server(f->space, &moved), 0);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 1);
	assert_int_equal(f->world.events[VP_EV_LEASE_DROPPED], 1);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.1");
	assert_false(g.is_static);
}

static void reservation__inside_server_net30_block__is_not_handed_out(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	f->server = tl_server(VP_TOPO_NET30, "10.8.0.1", 0, NULL);
	f->server.remote4 = tl_addr("10.8.0.2");
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	tl_add_static(f->config, "alice", "10.8.0.2", NULL, NULL, NULL);
	tl_add_static(f->config, "bob", "10.8.0.10", NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 1);
	assert_string_equal(fmt(&f->world.last[VP_EV_RESERVATION_UNUSABLE].address), "10.8.0.2");
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.6");
	assert_string_equal(fmt(&g.peer4), "10.8.0.5");
	assert_false(g.is_static);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.10");
	assert_true(g.is_static);
}

static void reserved_subnet__holding_server_address__is_not_routed(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, NULL);
	tl_add_pool(f->config, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	tl_add_router(f->config, "r", "10.8.0.0/24", 28, NULL, 0, NULL);
	tl_add_static(f->config, "site-a", NULL, NULL, "10.8.0.0/28", NULL);
	tl_add_static(f->config, "site-b", NULL, NULL, "10.8.0.32/28", NULL);
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 1);
	assert_string_equal(fmt(&f->world.last[VP_EV_RESERVATION_UNUSABLE].address), "10.8.0.0");
	assert_int_equal(fx_connect(f, "site-a", &g), 0);
	/* A subnet of the router pool instead, and never the one holding 10.8.0.1. */
	assert_string_equal(fmtp(&g.subnet4), "10.8.0.16/28");
	assert_int_equal(fx_connect(f, "site-b", &g), 0);
	assert_string_equal(fmtp(&g.subnet4), "10.8.0.32/28");	/* its reservation */
}

static void reservation6__equal_to_server_address6__is_not_handed_out(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, "fd00:8::1");
	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, "fd00:8::/64", NULL);
	tl_add_static(f->config, "alice", "10.8.0.50", "fd00:8::1", NULL, NULL);
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_RESERVATION_UNUSABLE], 1);
	assert_string_equal(fmt(&f->world.last[VP_EV_RESERVATION_UNUSABLE].address), "fd00:8::1");
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.50");	/* the IPv4 part still holds */
	assert_true(g.is_static);
	assert_string_equal(fmt(&g.addr6), "fd00:8::2");
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr6), "fd00:8::3");
}

static void connect__overlong_or_empty_identity__returns_einval(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	char *big = malloc(VP_IDENTITY_MAX + 2);

	small_pool(f);
	fx_open(f);
	memset(big, 'x', VP_IDENTITY_MAX + 1);
	big[VP_IDENTITY_MAX + 1] = '\0';
	assert_int_equal(fx_connect(f, big, &g), -EINVAL);
	big[VP_IDENTITY_MAX] = '\0';
	assert_int_equal(fx_connect(f, big, &g), 0);
	assert_int_equal(fx_connect(f, "", &g), -EINVAL);
	free(big);
}

static void connect__hostile_identity__survives_restart_byte_for_byte(void **state)
{
	struct fx *f = *state;
	const char id[] = "a\"b\nc d=e\\f;$(g)\xff\x01";
	struct vp_grant g1, g2;

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, id, &g1), 0);
	fx_reopen(f);
	assert_int_equal(fx_connect(f, id, &g2), 0);
	assert_true(g2.sticky);
	assert_true(vp_addr_eq(&g1.addr4, &g2.addr4));
}

/* A store whose writes fail on demand. */
static int fail_writes;

static ssize_t failing_write(int fd, const void *buf, size_t len)
{
	if (fail_writes) {
		errno = ENOSPC;
		return -1;
	}
	return write(fd, buf, len);
}

static void open__damaged_journal__set_aside_under_the_engine_clock_time(void **state)
{
	struct fx *f = *state;
	struct vp_space_options o = tl_options(f->config, &f->world);
	struct vp_store_report report;
	char path[512], want[600];
	pid_t holder;
	FILE *fp;

	small_pool(f);
	snprintf(path, sizeof(path), "%s/leases.journal", f->config->state_dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not a journal", fp);
	fclose(fp);
	f->world.now = 1700000000;
	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
	assert_true(report.corrupt);
	snprintf(want, sizeof(want), "%s.corrupt-1700000000", path);
	assert_string_equal(report.set_aside, want);
}

static void connect__store_write_fails__refused_and_nothing_changes(void **state)
{
	struct fx *f = *state;
	struct vp_store_io io = { .write = failing_write };
	struct vp_space_options o = tl_options(f->config, &f->world);
	struct vp_store_report report;
	struct vp_grant g;
	struct vp_request req = { .identity = (const uint8_t *)"bob", .identity_len = 3 };
	bool store_failed;
	pid_t holder;

	small_pool(f);
	o.io = &io;
	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
	assert_int_equal(vp_space_set_server(f->space, &f->server), 0);
	fail_writes = 1;
	assert_int_equal(vp_space_connect(f->space, &req, &g, &store_failed), -ENOSPC);
	assert_true(store_failed);
	assert_int_equal(vp_space_leases(f->space), 0);
	fail_writes = 0;
	assert_int_equal(vp_space_connect(f->space, &req, &g, &store_failed), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	fail_writes = 1;
	assert_int_equal(vp_space_disconnect(f->space, req.identity, 3, 0, NULL), 0);
	assert_int_equal(f->world.events[VP_EV_STORE], 1);
	fail_writes = 0;
	fx_reopen(f);
	assert_int_equal(vp_space_connect(f->space, &req, &g, &store_failed), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
}

/* A server killed (online leases in the journal) restarts on a full disk:
 * the rewrite at open fails, the start does not. */
static void open__after_crash_on_a_full_disk__loads_every_lease_and_reports_the_rewrite(
	void **state)
{
	struct fx *f = *state;
	struct vp_store_io io = { .write = failing_write };
	struct vp_space_options o = tl_options(f->config, &f->world);
	struct vp_store_report report;
	struct vp_grant g;
	struct vp_pool_usage u;
	pid_t holder;

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	vp_space_close(f->space);	/* both still online in the journal: a crash */
	f->space = NULL;

	o.io = &io;
	fail_writes = 1;
	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
	assert_int_equal(vp_space_leases(f->space), 2);
	assert_int_equal(f->world.events[VP_EV_STORE], 1);
	assert_int_equal(f->world.last[VP_EV_STORE].op, VP_STORE_OP_WRITE);
	assert_int_equal(f->world.last[VP_EV_STORE].error, -ENOSPC);
	assert_int_equal(vp_space_set_server(f->space, &f->server), 0);
	vp_space_pool_usage(f->space, 0, &u);
	assert_int_equal(u.held, 2);
	assert_int_equal(fx_connect(f, "carol", &g), -ENOSPC);	/* a new lease: refused */
	assert_int_equal(vp_space_leases(f->space), 2);

	/* Killed again, still full: the journal replays to the same leases. */
	vp_space_close(f->space);
	f->space = NULL;
	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
	assert_int_equal(vp_space_leases(f->space), 2);
	vp_space_close(f->space);
	f->space = NULL;

	fail_writes = 0;
	fx_open(f);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	assert_true(g.sticky);
}

static void store_error__when_it_clears__reported_once_with_error_zero(void **state)
{
	struct fx *f = *state;
	struct vp_store_io io = { .write = failing_write };
	struct vp_space_options o = tl_options(f->config, &f->world);
	struct vp_store_report report;
	struct vp_grant g;
	pid_t holder;

	small_pool(f);
	o.io = &io;
	fail_writes = 0;
	assert_int_equal(vp_space_open(&f->space, &o, &report, &holder), 0);
	assert_int_equal(vp_space_set_server(f->space, &f->server), 0);
	assert_int_equal(fx_connect(f, "alice", &g), 0);
	assert_int_equal(fx_connect(f, "bob", &g), 0);
	fail_writes = 1;
	assert_int_equal(fx_disconnect(f, "alice", 0), 0);
	assert_int_equal(f->world.events[VP_EV_STORE], 1);
	assert_int_equal(f->world.last[VP_EV_STORE].op, VP_STORE_OP_WRITE);
	assert_int_equal(f->world.last[VP_EV_STORE].error, -ENOSPC);
	fail_writes = 0;
	assert_int_equal(fx_disconnect(f, "bob", 0), 0);
	assert_int_equal(f->world.events[VP_EV_STORE], 2);
	assert_int_equal(f->world.last[VP_EV_STORE].op, VP_STORE_OP_WRITE);
	assert_int_equal(f->world.last[VP_EV_STORE].error, 0);
	assert_int_equal(fx_connect(f, "carol", &g), 0);
	assert_int_equal(f->world.events[VP_EV_STORE], 2);	/* nothing to clear */
}

/* One address; its holder leaves, then the wall clock goes back a day. */
static void reclaim__wall_clock_stepped_back__delayed_by_hold_time_at_most(void **state)
{
	struct fx *f = *state;
	const char *const none[] = { NULL };
	struct vp_grant g;

	f->config->hold_time = 60;
	tl_add_pool(f->config, "one", "10.8.0.0/24", "10.8.0.5-10.8.0.6", none, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "a", &g), 0);
	f->world.now += 5;
	assert_int_equal(fx_connect(f, "b", &g), 0);
	assert_int_equal(fx_disconnect(f, "a", 0), 0);
	f->world.now += 5;
	assert_int_equal(fx_disconnect(f, "b", 0), 0);
	f->world.now -= 86400;
	assert_int_equal(fx_connect(f, "c", &g), -ENOSPC);
	f->world.now += 59;
	assert_int_equal(fx_connect(f, "c", &g), -ENOSPC);
	f->world.now += 1;
	assert_int_equal(fx_connect(f, "c", &g), 0);
	assert_string_equal(f->world.last_from, "a");	/* offline longest */
	assert_int_equal(fx_connect(f, "d", &g), 0);	/* b waited no longer */
	assert_string_equal(f->world.last_from, "b");
}

/* The same while the lease table grows: the leases it has not moved to the
 * bigger table yet are re-dated too. */
static void reclaim__clock_stepped_back_while_the_table_grows__delayed_by_hold_time_at_most(
	void **state)
{
	struct fx *f = *state;
	const char *const none[] = { NULL };
	struct vp_grant g;
	char id[16];

	f->config->hold_time = 60;
	/* 769 addresses (the server has 10.8.0.1): the 769th lease makes the
	 * table of 1,024 slots grow. */
	tl_add_pool(f->config, "p", "10.8.0.0/22", "10.8.0.1-10.8.3.2", none, NULL, NULL);
	fx_open(f);
	for (int i = 0; i < 768; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(fx_connect(f, id, &g), 0);
	}
	for (int i = 0; i < 10; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(fx_disconnect(f, id, 0), 0);
	}
	f->world.now -= 86400;
	assert_int_equal(fx_connect(f, "c768", &g), 0);	/* the table grows */
	f->world.now += 59;
	assert_int_equal(fx_connect(f, "c769", &g), -ENOSPC);
	f->world.now += 60;
	assert_int_equal(fx_connect(f, "c769", &g), 0);
	assert_string_equal(f->world.last_from, "c0");
}

static void reclaim__wall_clock_stepped_forward__may_reclaim_early(void **state)
{
	struct fx *f = *state;
	const char *const none[] = { NULL };
	struct vp_grant g;

	f->config->hold_time = 3600;
	tl_add_pool(f->config, "one", "10.8.0.0/24", "10.8.0.5-10.8.0.5", none, NULL, NULL);
	fx_open(f);
	assert_int_equal(fx_connect(f, "a", &g), 0);
	assert_int_equal(fx_disconnect(f, "a", 0), 0);
	f->world.now += 86400;
	assert_int_equal(fx_connect(f, "c", &g), 0);
	assert_string_equal(f->world.last_from, "a");
}

/* Stored leases that no longer fit say what they held and why. */
static void set_server__reservation_takes_a_stored_address__dropped_as_reserved(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	const struct vp_event *ev = &f->world.last[VP_EV_LEASE_DROPPED];

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, "a-1", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	vp_space_close(f->space);
	f->space = NULL;
	tl_add_static(f->config, "b", "10.8.0.2", NULL, NULL, NULL);
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_LEASE_DROPPED], 1);
	assert_string_equal(fmt(&ev->address), "10.8.0.2");
	assert_int_equal(ev->address6.family, 0);
	assert_string_equal(ev->reason, "reserved");
	assert_int_equal(vp_space_leases(f->space), 0);
}

static void set_server__router_pool_with_other_subnet_size__drops_the_lease_with_its_subnet(
	void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	const struct vp_event *ev = &f->world.last[VP_EV_LEASE_DROPPED];
	const char *const gateways[] = { "common_name=gw", NULL };

	small_pool(f);
	tl_add_router(f->config, "r", "10.9.0.0/16", 24, NULL, 0, gateways);
	fx_open(f);
	assert_int_equal(fx_connect(f, "gw", &g), 0);
	assert_int_equal(g.subnet4.addr.family, VP_INET);
	vp_space_close(f->space);
	f->space = NULL;
	f->config->routers[0].prefix = 25;
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_LEASE_DROPPED], 1);
	assert_string_equal(fmtp(&ev->subnet4), fmtp(&g.subnet4));
	assert_string_equal(fmt(&ev->address), fmt(&g.addr4));
	assert_string_equal(ev->reason, "subnet-size");
}

static void set_server__excluded_now__dropped_as_excluded(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	const struct vp_event *ev = &f->world.last[VP_EV_LEASE_DROPPED];

	small_pool(f);
	fx_open(f);
	assert_int_equal(fx_connect(f, "a", &g), 0);
	vp_space_close(f->space);
	f->space = NULL;
	f->config->pools[0].exclude = malloc(sizeof(*f->config->pools[0].exclude));
	f->config->pools[0].exclude[0] = (struct vp_range){ g.addr4, g.addr4 };
	f->config->pools[0].n_exclude = 1;
	fx_open(f);
	assert_int_equal(f->world.events[VP_EV_LEASE_DROPPED], 1);
	assert_string_equal(ev->reason, "excluded");
}

static void set_server__config_shrank__drops_leases_that_no_longer_fit(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	char id[16];

	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	fx_open(f);
	for (int i = 0; i < 10; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		fx_connect(f, id, &g);
	}
	vp_space_close(f->space);
	f->space = NULL;
	f->config->pools[0].range = (struct vp_range){ tl_addr("10.8.0.2"), tl_addr("10.8.0.6") };
	f->config->pools[0].has_range = true;
	fx_open(f);
	assert_int_equal(vp_space_leases(f->space), 5);
	assert_int_equal(f->world.events[VP_EV_LEASE_DROPPED], 5);
	assert_string_equal(f->world.last[VP_EV_LEASE_DROPPED].reason, "outside-range");
	fx_reopen(f);
	assert_int_equal(vp_space_leases(f->space), 5);
}

/* The command reads what the server uses from the state directory. */
static void set_server__written_for_the_command__parses_back(void **state)
{
	struct fx *f = *state;
	struct vp_server back, p2p = tl_server(VP_TOPO_P2P, "10.8.0.1", 0, NULL);
	char line[512];

	tl_add_pool(f->config, "p", "10.8.0.0/24", NULL, NULL, "fd00:8::/64", NULL);
	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, "fd00:8::1");
	fx_open(f);
	assert_int_equal(vp_store_read_server(f->config->state_dir, line, sizeof(line)), 0);
	assert_string_equal(line, "topology=subnet local4=10.8.0.1 netbits4=24 remote4=- "
				  "local6=fd00:8::1 netbits6=64");
	assert_true(vp_server_parse(line, &back));
	assert_int_equal(back.topology, VP_TOPO_SUBNET);
	assert_true(vp_addr_eq(&back.local4, &f->server.local4));
	assert_true(vp_addr_eq(&back.local6, &f->server.local6));
	assert_int_equal(back.netbits4, 24);
	assert_int_equal(back.netbits6, 64);
	assert_int_equal(back.remote4.family, 0);
	assert_int_equal(vp_space_set_server(f->space, &p2p), 0);	/* another server */
	assert_int_equal(vp_store_read_server(f->config->state_dir, line, 8), -EFBIG);
	assert_int_equal(vp_store_read_server(f->config->state_dir, line, sizeof(line)), 0);
	assert_true(vp_server_parse(line, &back));
	assert_int_equal(back.topology, VP_TOPO_P2P);
	assert_int_equal(back.local6.family, 0);
	/* What the command must not believe. */
	assert_false(vp_server_parse("", &back));
	assert_false(vp_server_parse("topology=auto", &back));
	assert_false(vp_server_parse("topology=subnet local4=fd00::1", &back));
	assert_false(vp_server_parse("topology=subnet netbits4=33", &back));
	assert_false(vp_server_parse("topology=subnet local4", &back));
	assert_true(vp_server_parse("topology=net30 future=1", &back));
}

/* ---- the lease table while it grows --------------------------------------------- */

#define TAB_IDS 5000
#define TAB_EXTRAS 1500

/* What the table should hold: every identity's sticky lease, and the extra
 * sessions online. */
struct tab_model {
	uint8_t state[TAB_IDS];		/* 0: no lease, 1: held, 2: online */
	uint32_t addr[TAB_IDS];
	struct { unsigned id; uint16_t slot; uint32_t addr; } extra[TAB_EXTRAS];
	size_t n_extra, n_ids, seen;
};

static int tab_model_has(void *ud, const struct vp_lease_rec *rec)
{
	struct tab_model *m = ud;
	char id[16];
	unsigned k;

	assert_true(rec->identity_len < sizeof(id));
	memcpy(id, rec->identity, rec->identity_len);
	id[rec->identity_len] = '\0';
	assert_int_equal(sscanf(id, "t%u", &k), 1);
	assert_true(k < TAB_IDS && m->state[k]);
	m->seen++;
	if (!rec->slot) {
		assert_int_equal(vp_addr_to_v4(&rec->addr4), m->addr[k]);
		return 0;
	}
	for (size_t i = 0; i < m->n_extra; ++i)
		if (m->extra[i].id == k && m->extra[i].slot == rec->slot) {
			assert_int_equal(vp_addr_to_v4(&rec->addr4), m->extra[i].addr);
			return 0;
		}
	fail_msg("lease %s slot %u not in the model", id, rec->slot);
	return -1;
}

/* The space holds exactly the model's leases. */
static void tab_model_check(struct fx *f, struct tab_model *m)
{
	assert_int_equal(vp_space_leases(f->space), m->n_ids + m->n_extra);
	m->seen = 0;
	assert_int_equal(vp_space_each(f->space, tab_model_has, m), 0);
	assert_int_equal(m->seen, m->n_ids + m->n_extra);
}

static void tab_model_connect(struct fx *f, struct tab_model *m, unsigned k)
{
	struct vp_grant g;
	char id[16];

	snprintf(id, sizeof(id), "t%u", k);
	if (m->state[k] == 2 && m->n_extra == TAB_EXTRAS)
		return;
	assert_int_equal(fx_connect(f, id, &g), 0);
	if (m->state[k] == 2) {		/* a second session: a lease of its own */
		assert_true(g.slot > 0);
		assert_int_not_equal(vp_addr_to_v4(&g.addr4), m->addr[k]);
		m->extra[m->n_extra].id = k;
		m->extra[m->n_extra].slot = g.slot;
		m->extra[m->n_extra++].addr = vp_addr_to_v4(&g.addr4);
		return;
	}
	assert_int_equal(g.slot, 0);
	/* A held lease is found again: the same address. */
	assert_int_equal(g.sticky, m->state[k] == 1);
	if (m->state[k] == 1)
		assert_int_equal(vp_addr_to_v4(&g.addr4), m->addr[k]);
	else
		m->n_ids++;
	m->addr[k] = vp_addr_to_v4(&g.addr4);
	m->state[k] = 2;
}

static void tab_model_disconnect(struct fx *f, struct tab_model *m, unsigned r)
{
	char id[16];
	unsigned k;

	if (m->n_extra && r % 2) {	/* an extra session ends: its lease goes */
		size_t i = r / 2 % m->n_extra;

		snprintf(id, sizeof(id), "t%u", m->extra[i].id);
		assert_int_equal(fx_disconnect(f, id, m->extra[i].slot), 0);
		m->extra[i] = m->extra[--m->n_extra];
		return;
	}
	k = r / 2 % TAB_IDS;
	snprintf(id, sizeof(id), "t%u", k);
	if (m->state[k] != 2) {
		assert_int_equal(fx_disconnect(f, id, 0), -ENOENT);
		return;
	}
	assert_int_equal(fx_disconnect(f, id, 0), 0);
	m->state[k] = 1;
}

/* Random connects and disconnects against a plain array, through several
 * doublings of the table: every lookup in the middle of one finds its lease,
 * and a walk over the table sees each lease once. */
static void table__grows_while_used__every_lease_found_and_seen_once(void **state)
{
	struct fx *f = *state;
	static struct tab_model m;
	unsigned seed = 5;

	memset(&m, 0, sizeof(m));
	tl_add_pool(f->config, "big", "10.8.0.0/16", NULL, NULL, NULL, NULL);
	fx_open(f);
	for (unsigned n = 0; n < 60000; ++n) {
		unsigned r;

		seed = seed * 1103515245u + 12345u;
		r = seed >> 4;
		if (r % 10 < 6)
			tab_model_connect(f, &m, r / 10 % (n / 8 + 1 < TAB_IDS ? n / 8 + 1 : TAB_IDS));
		else
			tab_model_disconnect(f, &m, r / 10);
		if (n % 499 == 0)
			tab_model_check(f, &m);
	}
	tab_model_check(f, &m);
	assert_true(m.n_ids > TAB_IDS * 9 / 10);
	/* Reopened: the extra sessions are gone, every identity is held. */
	fx_reopen(f);
	for (unsigned k = 0; k < TAB_IDS; ++k)
		if (m.state[k])
			m.state[k] = 1;
	m.n_extra = 0;
	tab_model_check(f, &m);
	for (unsigned k = 0; k < TAB_IDS; ++k)
		if (m.state[k])
			tab_model_connect(f, &m, k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
		T(connect__fresh_clients__get_lowest_free_distinct_addresses),
		T(connect__returning_client__gets_same_address_even_after_others),
		T(connect__after_restart__gets_same_address),
		T(open__online_leases__become_held),
		T(open__second_process__shares_the_space),
		T(connect__pool_full_nothing_held__returns_enospc_naming_pool),
		T(connect__hold_time_not_passed__rejects_then_reclaims_oldest),
		T(connect__free_address_in_next_pool__preferred_to_reclaiming),
		T(connect__match__chooses_pool_and_overflows_to_next_matching),
		T(connect__no_pool_matches__returns_enoent),
		T(connect__duplicate_session__gets_own_address_first_keeps_sticky),
		T(table__grows_while_used__every_lease_found_and_seen_once),
		T(disconnect__twice__second_returns_enoent),
		T(connect__static_reservation__is_never_given_to_others),
		T(connect__server_network_broadcast_and_excludes__never_handed_out),
		T(connect__router__gets_distinct_subnets_and_static_one),
	T(disconnect__dual_stack_router__hands_back_what_the_session_had),
		T(connect__router_pool_full__rejects_naming_it),
		T(reclaim__router_lease__reports_its_address_and_subnets),
		T(connect__ipv6_pool__gives_one_address_of_each_family),
		T(connect__net30__gives_a_slash30_per_client),
		T(connect__p2p__peer_is_server_local),
		T(connect__filling_pool__warns_once_per_threshold_crossed_upward),
		T(set_server__pool_outside_tun_network__reported_and_not_used),
		T(reservation__equal_to_server_address__is_not_handed_out),
		T(reservation__server_moves_onto_it__stored_lease_dropped_client_served_from_pool),
		T(reservation__inside_server_net30_block__is_not_handed_out),
		T(reservation6__equal_to_server_address6__is_not_handed_out),
		T(reserved_subnet__holding_server_address__is_not_routed),
		T(connect__overlong_or_empty_identity__returns_einval),
		T(connect__hostile_identity__survives_restart_byte_for_byte),
		T(open__damaged_journal__set_aside_under_the_engine_clock_time),
		T(connect__store_write_fails__refused_and_nothing_changes),
		T(open__after_crash_on_a_full_disk__loads_every_lease_and_reports_the_rewrite),
		T(store_error__when_it_clears__reported_once_with_error_zero),
		T(reclaim__wall_clock_stepped_back__delayed_by_hold_time_at_most),
		T(reclaim__clock_stepped_back_while_the_table_grows__delayed_by_hold_time_at_most),
		T(reclaim__wall_clock_stepped_forward__may_reclaim_early),
		T(set_server__reservation_takes_a_stored_address__dropped_as_reserved),
		T(set_server__router_pool_with_other_subnet_size__drops_the_lease_with_its_subnet),
		T(set_server__excluded_now__dropped_as_excluded),
		T(set_server__config_shrank__drops_leases_that_no_longer_fit),
		T(set_server__written_for_the_command__parses_back),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
