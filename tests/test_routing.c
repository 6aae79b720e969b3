/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * host-routes (plugin/routing.h): which sessions get routes and when, over
 * recorded route calls (the kernel side is tests/test_routes).  The tun is
 * "lo", which every network namespace has.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <cmocka.h>

#include "plugin/routing.h"
#include "testlib.h"

/* The routes the fake kernel holds, and what was logged. */
struct fake {
	struct vp_prefix dst[16];
	int ifindex[16];
	size_t n;
	int fail_add;			/* -errno every add returns */
	unsigned adds, dels, flushes;
	unsigned errors, notes;
	char last[400];
};

static struct fake f;

static int find(const struct vp_prefix *dst)
{
	for (size_t i = 0; i < f.n; ++i)
		if (f.dst[i].len == dst->len && vp_addr_eq(&f.dst[i].addr, &dst->addr))
			return (int)i;
	return -1;
}

static int fake_add(void *ud, int ifindex, const struct vp_prefix *dst)
{
	int i = find(dst);

	(void)ud;
	f.adds++;
	if (f.fail_add)
		return f.fail_add;
	if (i < 0) {
		i = (int)f.n++;
		f.dst[i] = *dst;
	}
	f.ifindex[i] = ifindex;		/* replaced */
	return 0;
}

static void drop(int i)
{
	f.dst[i] = f.dst[f.n - 1];
	f.ifindex[i] = f.ifindex[f.n - 1];
	f.n--;
}

static int fake_del(void *ud, int ifindex, const struct vp_prefix *dst)
{
	int i = find(dst);

	(void)ud;
	f.dels++;
	if (i < 0 || f.ifindex[i] != ifindex)
		return -ESRCH;
	drop(i);
	return 0;
}

static int fake_flush(void *ud, int ifindex)
{
	int removed = 0;

	(void)ud;
	f.flushes++;
	for (size_t i = f.n; i-- > 0;)
		if (f.ifindex[i] == ifindex) {
			drop((int)i);
			removed++;
		}
	return removed;
}

static const struct vp_route_ops fake_ops = { .add = fake_add, .del = fake_del,
					      .flush = fake_flush };

static void on_log(void *ud, bool error, const char *line)
{
	(void)ud;
	if (error)
		f.errors++;
	else
		f.notes++;
	snprintf(f.last, sizeof(f.last), "%s", line);
}

static int lo(void)
{
	return (int)if_nametoindex("lo");
}

static bool routed_to(const char *prefix, int ifindex)
{
	struct vp_prefix p = tl_prefix(prefix);
	int i = find(&p);

	return i >= 0 && f.ifindex[i] == ifindex;
}

static struct vp_routing r;

/* The engine's online sessions, as the plugin walks them for the routing. */
struct session {
	struct vp_routing_dst d;
	bool online;
};

static struct session *online[16];

static void each_online(void *ud, struct vp_routing *rt,
			void (*add)(struct vp_routing *rt, const struct vp_routing_dst *d))
{
	(void)ud;
	for (size_t i = 0; i < 16; ++i)
		if (online[i] && online[i]->online)
			add(rt, &online[i]->d);
}

static void start(struct session *s, const char *a4, const char *a6, const char *sn, bool others)
{
	memset(&s->d, 0, sizeof(s->d));
	s->d.addr4 = tl_addr(a4);
	if (a6)
		s->d.addr6 = tl_addr(a6);
	if (sn)
		s->d.subnet4 = tl_prefix(sn);
	s->online = true;
	for (size_t i = 0; i < 16; ++i)
		if (online[i] == s || !online[i]) {
			online[i] = s;
			break;
		}
	vp_routing_start(&r, &s->d, others);
}

/* The session's end, once (the plugin ends a session exactly once). */
static void end(struct session *s, bool others)
{
	s->online = false;
	vp_routing_end(&r, &s->d, others);
}

static void setup(enum vp_host_routes mode)
{
	memset(&f, 0, sizeof(f));
	memset(online, 0, sizeof(online));
	vp_routing_init(&r, mode, &fake_ops, on_log, each_online, NULL);
	vp_routing_set_dev(&r, "lo");
	f.flushes = 0;
}

static void routing_yes__a_session__has_its_routes_from_start_to_end(void **state)
{
	static struct session s;

	(void)state;
	setup(VP_HOST_ROUTES_YES);
	start(&s, "10.8.1.5", "fd00:8::1:5", "10.9.77.0/24", false);
	assert_int_equal(f.n, 3);
	assert_true(routed_to("10.8.1.5/32", lo()));
	assert_true(routed_to("fd00:8::1:5/128", lo()));
	assert_true(routed_to("10.9.77.0/24", lo()));
	end(&s, false);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.dels, 3);
	vp_routing_close(&r);
	assert_int_equal(f.errors, 0);
}

static void routing_auto__alone__routes_nothing(void **state)
{
	static struct session s;

	(void)state;
	setup(VP_HOST_ROUTES_AUTO);
	start(&s, "10.8.1.5", NULL, NULL, false);
	end(&s, false);
	vp_routing_close(&r);
	assert_int_equal(f.adds + f.dels + f.flushes, 0);
}

static void routing_auto__once_another_instance_is_live__routes_every_session_until_close(void **state)
{
	static struct session a, b, c;

	(void)state;
	setup(VP_HOST_ROUTES_AUTO);
	start(&a, "10.8.1.5", NULL, NULL, false);
	start(&b, "10.8.1.6", NULL, "10.9.1.0/24", false);
	assert_int_equal(f.n, 0);
	/* A second instance is live at the next session's start: the ones
	 * online get theirs too. */
	start(&c, "10.8.1.7", NULL, NULL, true);
	assert_int_equal(f.n, 4);
	assert_true(routed_to("10.8.1.5/32", lo()));
	assert_true(routed_to("10.9.1.0/24", lo()));
	/* It stops: routing goes on until this instance stops. */
	end(&a, false);
	assert_int_equal(f.n, 3);
	start(&a, "10.8.1.8", NULL, NULL, false);
	assert_true(routed_to("10.8.1.8/32", lo()));
	vp_routing_close(&r);
	assert_int_equal(f.flushes, 1);
	assert_int_equal(f.n, 0);
}

static void routing_auto__noticed_at_a_session_end__routes_the_others(void **state)
{
	static struct session a, b;

	(void)state;
	setup(VP_HOST_ROUTES_AUTO);
	start(&a, "10.8.1.5", NULL, NULL, false);
	start(&b, "10.8.1.6", NULL, NULL, false);
	end(&a, true);
	assert_int_equal(f.n, 1);
	assert_true(routed_to("10.8.1.6/32", lo()));
	assert_int_equal(f.dels, 0);	/* a had none */
}

static void routing_no__never_routes(void **state)
{
	static struct session s;

	(void)state;
	setup(VP_HOST_ROUTES_NO);
	start(&s, "10.8.1.5", NULL, NULL, true);
	end(&s, true);
	vp_routing_close(&r);
	assert_int_equal(f.adds + f.dels + f.flushes, 0);
}

static void routing__a_route_moved_to_another_tun__stays_and_is_no_error(void **state)
{
	static struct session s;
	struct vp_prefix p = tl_prefix("10.8.1.5/32");

	(void)state;
	setup(VP_HOST_ROUTES_YES);
	start(&s, "10.8.1.5", NULL, NULL, false);
	/* The client reached another instance, whose tun took the route. */
	assert_int_equal(fake_add(NULL, 12345, &p), 0);
	end(&s, false);
	assert_true(routed_to("10.8.1.5/32", 12345));
	assert_int_equal(f.errors, 0);
}

static void routing__failing_adds__logged_once_then_cleared(void **state)
{
	static struct session s[5];
	char a[32];

	(void)state;
	setup(VP_HOST_ROUTES_YES);
	f.fail_add = -EPERM;
	for (unsigned i = 0; i < 4; ++i) {
		snprintf(a, sizeof(a), "10.8.1.%u", i + 1);
		start(&s[i], a, NULL, NULL, false);
	}
	assert_int_equal(f.adds, 4);
	assert_int_equal(f.errors, 1);
	assert_non_null(strstr(f.last, "cannot add routes through lo"));
	f.fail_add = 0;
	start(&s[4], "10.8.1.9", NULL, NULL, false);
	assert_int_equal(f.errors, 1);
	assert_int_equal(f.notes, 1);
	assert_non_null(strstr(f.last, "cleared after 4 failures"));
}

static void routing__a_dev_with_no_interface__logged_once_nothing_routed(void **state)
{
	static struct session s[3];

	(void)state;
	setup(VP_HOST_ROUTES_YES);
	vp_routing_set_dev(&r, "vpnpool-none0");
	start(&s[0], "10.8.1.1", NULL, NULL, false);
	start(&s[1], "10.8.1.2", NULL, NULL, false);
	assert_int_equal(f.adds, 0);
	assert_int_equal(f.errors, 1);
	assert_non_null(strstr(f.last, "vpnpool-none0"));
	/* The tun known at last: the sessions waiting get their routes. */
	vp_routing_set_dev(&r, "lo");
	assert_int_equal(f.n, 2);
	start(&s[2], "10.8.1.3", NULL, NULL, false);
	assert_int_equal(f.n, 3);
}

static void routing_set_dev__removes_routes_of_ours_left_on_the_tun(void **state)
{
	struct vp_prefix stale = tl_prefix("10.8.1.5/32"), elsewhere = tl_prefix("10.8.1.6/32");
	enum vp_host_routes modes[] = { VP_HOST_ROUTES_AUTO, VP_HOST_ROUTES_YES };

	(void)state;
	for (size_t m = 0; m < 2; ++m) {
		memset(&f, 0, sizeof(f));
		/* A killed run of this instance left one on lo. */
		fake_add(NULL, lo(), &stale);
		fake_add(NULL, 4242, &elsewhere);
		vp_routing_init(&r, modes[m], &fake_ops, on_log, each_online, NULL);
		vp_routing_set_dev(&r, "lo");
		assert_int_equal(f.flushes, 1);
		assert_false(routed_to("10.8.1.5/32", lo()));
		assert_true(routed_to("10.8.1.6/32", 4242));
		/* The same dev again (every connect names it): once. */
		vp_routing_set_dev(&r, "lo");
		assert_int_equal(f.flushes, 1);
	}
	memset(&f, 0, sizeof(f));
	fake_add(NULL, lo(), &stale);
	vp_routing_init(&r, VP_HOST_ROUTES_NO, &fake_ops, on_log, each_online, NULL);
	vp_routing_set_dev(&r, "lo");
	assert_int_equal(f.flushes, 0);
	assert_true(routed_to("10.8.1.5/32", lo()));
}

static void routing_flush_dev__a_dead_instance_s_tun__removes_its_routes(void **state)
{
	struct vp_prefix theirs = tl_prefix("10.8.1.5/32");

	(void)state;
	setup(VP_HOST_ROUTES_AUTO);
	fake_add(NULL, lo(), &theirs);
	vp_routing_flush_dev(&r, "lo");
	assert_int_equal(f.flushes, 1);
	assert_int_equal(f.n, 0);
	/* A tun that is gone took them with it: nothing to do, no error. */
	vp_routing_flush_dev(&r, "vpnpool-none0");
	assert_int_equal(f.flushes, 1);
	assert_int_equal(f.errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(routing_yes__a_session__has_its_routes_from_start_to_end),
		cmocka_unit_test(routing_auto__alone__routes_nothing),
		cmocka_unit_test(routing_auto__once_another_instance_is_live__routes_every_session_until_close),
		cmocka_unit_test(routing_auto__noticed_at_a_session_end__routes_the_others),
		cmocka_unit_test(routing_no__never_routes),
		cmocka_unit_test(routing__a_route_moved_to_another_tun__stays_and_is_no_error),
		cmocka_unit_test(routing__failing_adds__logged_once_then_cleared),
		cmocka_unit_test(routing__a_dev_with_no_interface__logged_once_nothing_routed),
		cmocka_unit_test(routing_set_dev__removes_routes_of_ours_left_on_the_tun),
		cmocka_unit_test(routing_flush_dev__a_dead_instance_s_tun__removes_its_routes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
