/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The PostgreSQL store against a real server: run by tests/pg_unit.sh, which
 * starts a throwaway cluster and sets VP_PG_URI and VP_PG_CTL.  Each test
 * starts from an empty database (the schema dropped).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pgstore.h"
#include "testlib.h"

static const char *uri;

static PGconn *admin(void)
{
	PGconn *c = PQconnectdb(uri);

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

/* The first value of a query, as a number (-1: NULL or no row). */
static long long sqlv(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long sqlv(const char *fmt, ...)
{
	char q[1024];
	va_list ap;
	PGconn *c = admin();
	PGresult *r;
	long long v = -1;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", q, PQresultErrorMessage(r));
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

static void ctl(const char *what)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s %s", getenv("VP_PG_CTL"), what);
	assert_int_equal(system(cmd), 0);
}

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct fx {
	unsigned netbits;		/* of the server's tun (0: 16) */
	struct vp_config *c;
	char *dir;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	sqlv("DROP SCHEMA IF EXISTS vpnpool CASCADE");
	f->dir = tl_tmpdir();
	f->c = tl_config_new(f->dir);
	f->c->store = strdup(uri);
	f->c->store_timeout_ms = 3000;
	f->c->node_timeout = 60;
	f->c->hold_time = 3600;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vp_config_free(f->c);
	free(f->c);
	tl_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static struct vp_pg *open_node(struct fx *f, const char *node)
{
	struct vp_pg_options o = { .config = f->c, .node = node, .instance = "i",
				   .create_schema = true };
	struct vp_server s = tl_server(VP_TOPO_SUBNET, "10.8.0.1", f->netbits ? f->netbits : 16,
				       "fd00:8::1");
	struct vp_pg *pg;

	assert_int_equal(vp_pg_open(&pg, &o), 0);
	if (vp_pg_start(pg, &s, NULL, NULL))
		fail_msg("start: %s", vp_pg_error(pg));
	return pg;
}

static int64_t session_seq;

/* Another config on the same database (a file changed since). */
static struct vp_config *config_like(const struct fx *f)
{
	struct vp_config *c = tl_config_new(f->dir);

	c->store = strdup(uri);
	c->store_timeout_ms = 3000;
	c->node_timeout = 60;
	return c;
}

static struct vp_pg *open_node_with(struct fx *f, struct vp_config *c, const char *node)
{
	struct vp_config *keep = f->c;
	struct vp_pg *pg;

	f->c = c;
	pg = open_node(f, node);
	f->c = keep;
	return pg;
}

static int conn(struct vp_pg *pg, const char *id, struct tl_env *env, struct vp_pg_result *r)
{
	struct vp_request req = { (const uint8_t *)id, strlen(id), tl_getvar, env, "1.2.3.4:5" };
	struct tl_env none = { 0 };

	if (!env)
		req.getvar_ud = &none;
	return vp_pg_connect(pg, &req, ++session_seq, r);
}

static char *a4(const struct vp_pg_result *r, char buf[VP_ADDR_STRLEN])
{
	return r->grant.addr4.family ? vp_addr_format(&r->grant.addr4, buf) : strcpy(buf, "-");
}

static void connect__gives_an_address_of_the_matching_pool(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct tl_env staff = { { "common_name" }, { "s-ann" }, 1 };
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "staff", "10.8.1.0/24", NULL, NULL, NULL,
		    (const char *const[]){ "common_name=s-*", NULL });
	tl_add_pool(f->c, "guests", "10.8.2.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "s-ann", &staff, &r), 0);
	assert_string_equal(r.grant.pool->name, "staff");
	assert_string_equal(a4(&r, b), "10.8.1.1");
	assert_int_equal(r.grant.in_use, 1);
	assert_int_equal(r.grant.size, 254);
	assert_int_equal(conn(pg, "bob", NULL, &r), 0);
	assert_string_equal(r.grant.pool->name, "guests");
	assert_string_equal(a4(&r, b), "10.8.2.1");
	assert_false(r.grant.sticky);
	vp_pg_close(pg);
}

static void disconnect_then_connect__is_sticky(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r, r2;
	struct vp_grant ended;
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	assert_int_equal(conn(pg, "bob", NULL, &r2), 0);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"ann", 3, 0, r.session, &ended), 0);
	assert_true(vp_addr_eq(&ended.addr4, &r.grant.addr4));
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE NOT online"), 1);
	assert_int_equal(conn(pg, "cid", NULL, &r2), 0);
	assert_false(vp_addr_eq(&r2.grant.addr4, &r.grant.addr4));
	assert_int_equal(conn(pg, "ann", NULL, &r2), 0);
	assert_true(r2.grant.sticky);
	assert_true(vp_addr_eq(&r2.grant.addr4, &r.grant.addr4));
	/* a second disconnect of the same session finds nothing online */
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"ann", 3, 0, r2.session, NULL), 0);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"ann", 3, 0, r2.session, NULL),
			 -ENOENT);
	vp_pg_close(pg);
}

static void two_identities__never_get_the_same_address(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *a, *b;
	char id[32];

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	a = open_node(f, "a");
	b = open_node(f, "b");
	for (int i = 0; i < 100; ++i) {
		snprintf(id, sizeof(id), "client-%d", i);
		assert_int_equal(conn(i % 2 ? a : b, id, NULL, &r), 0);
	}
	assert_int_equal(sqlv("SELECT count(DISTINCT addr4) FROM vpnpool.lease"), 100);
	assert_int_equal(r.grant.in_use, 100);
	/* the counters of a closed connection fold into shard 0 */
	vp_pg_close(a);
	for (int i = 0; i < 100 && sqlv("SELECT count(*) FROM vpnpool.usage WHERE shard <> 0") > 1;
	     ++i) {
		struct timespec ts = { 0, 20000000 };

		assert_int_equal(vp_pg_heartbeat(b, NULL, NULL), 0);
		nanosleep(&ts, NULL);
	}
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.usage WHERE shard <> 0"), 1);
	assert_int_equal(sqlv("SELECT vpnpool.in_use(id) FROM vpnpool.area"), 100);
	assert_int_equal(sqlv("SELECT n FROM vpnpool.usage WHERE shard = 0"), 50);
	vp_pg_close(b);
}

static void full_pool__refuses_the_next_with_enospc(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *pg;
	char id[32];

	tl_add_pool(f->c, "tiny", "10.8.1.0/24", "10.8.1.10-10.8.1.13", NULL, NULL, NULL);
	pg = open_node(f, "a");
	for (int i = 0; i < 4; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(conn(pg, id, NULL, &r), 0);
	}
	assert_int_equal(conn(pg, "late", NULL, &r), -ENOSPC);
	assert_string_equal(r.grant.pool->name, "tiny");
	assert_int_equal(r.grant.in_use, 4);
	assert_int_equal(r.grant.size, 4);
	/* held leases within their hold-time are not taken either */
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"c0", 2, 0, session_seq - 4, NULL), 0);
	assert_int_equal(conn(pg, "late", NULL, &r), -ENOSPC);
	vp_pg_close(pg);
}

static void held_lease__is_reclaimed_after_its_hold_time(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r, r0;
	struct vp_pg *pg;

	tl_add_pool(f->c, "tiny", "10.8.1.0/24", "10.8.1.10-10.8.1.11", NULL, NULL, NULL);
	f->c->hold_time = 0;
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "old", NULL, &r0), 0);
	assert_int_equal(conn(pg, "older", NULL, &r), 0);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"older", 5, 0, r.session, NULL), 0);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"old", 3, 0, r0.session, NULL), 0);
	sqlv("UPDATE vpnpool.lease SET since = now() - interval '1 hour' WHERE identity = 'older'");
	assert_int_equal(conn(pg, "new", NULL, &r), 0);
	assert_true(r.reclaimed);
	assert_int_equal(r.from_len, 5);
	assert_memory_equal(r.from, "older", 5);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE identity = 'older'"), 0);
	/* the old owner comes back: a new address (the other one, reclaimed) */
	assert_int_equal(conn(pg, "older", NULL, &r), 0);
	assert_true(r.reclaimed);
	assert_memory_equal(r.from, "old", 3);
	vp_pg_close(pg);
}

static void duplicate_cn__on_this_node_gets_a_new_address__on_another_moves(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r1, r2, r3;
	struct vp_grant ended;
	struct vp_pg *a, *b;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	a = open_node(f, "a");
	b = open_node(f, "b");
	assert_int_equal(conn(a, "ann", NULL, &r1), 0);
	assert_int_equal(conn(a, "ann", NULL, &r2), 0);
	assert_int_equal(r2.grant.slot, 1);
	assert_false(vp_addr_eq(&r1.grant.addr4, &r2.grant.addr4));
	/* the extra session's end frees its address */
	assert_int_equal(vp_pg_disconnect(a, (const uint8_t *)"ann", 3, 1, r2.session, NULL), 0);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease"), 1);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.free"), 1);
	/* on another node the newest session takes the lease over */
	assert_int_equal(conn(b, "ann", NULL, &r3), 0);
	assert_true(r3.moved);
	assert_int_equal(r3.grant.slot, 0);
	assert_true(vp_addr_eq(&r1.grant.addr4, &r3.grant.addr4));
	assert_int_equal(vp_pg_disconnect(a, (const uint8_t *)"ann", 3, 0, r1.session, &ended),
			 VP_DISCONNECT_MOVED);
	assert_true(vp_addr_eq(&ended.addr4, &r1.grant.addr4));
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE online AND node = 'b'"), 1);
	assert_int_equal(vp_pg_disconnect(b, (const uint8_t *)"ann", 3, 0, r3.session, NULL), 0);
	vp_pg_close(a);
	vp_pg_close(b);
}

static void router_client__gets_an_address_and_a_subnet(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct tl_env rt = { { "common_name" }, { "r-1" }, 1 };
	char b[VP_PREFIX_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	tl_add_router(f->c, "sites", "10.9.0.0/16", 24, "fd00:9::/48", 64,
		      (const char *const[]){ "common_name=r-*", NULL });
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "r-1", &rt, &r), 0);
	assert_non_null(r.grant.router);
	assert_string_equal(r.grant.router->name, "sites");
	assert_string_equal(vp_prefix_format(&r.grant.subnet4, b), "10.9.0.0/24");
	assert_string_equal(vp_prefix_format(&r.grant.subnet6, b), "fd00:9::/64");
	assert_int_equal(conn(pg, "r-2", &(struct tl_env){ { "common_name" }, { "r-2" }, 1 }, &r),
			 0);
	assert_string_equal(vp_prefix_format(&r.grant.subnet4, b), "10.9.1.0/24");
	assert_string_equal(vp_prefix_format(&r.grant.subnet6, b), "fd00:9:0:1::/64");
	assert_int_equal(conn(pg, "plain", NULL, &r), 0);
	assert_null(r.grant.router);
	assert_int_equal(r.grant.subnet4.addr.family, 0);
	vp_pg_close(pg);
}

static void pool_with_network6__gives_an_ipv6_address_too(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, "fd00:8::/64", NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	/* ::1 is the server's own (local6) */
	assert_string_equal(vp_addr_format(&r.grant.addr6, b), "fd00:8::2");
	assert_int_equal(conn(pg, "bob", NULL, &r), 0);
	assert_string_equal(vp_addr_format(&r.grant.addr6, b), "fd00:8::3");
	vp_pg_close(pg);
}

/* network6 added to a pool: a returning client keeps its IPv4 address and
 * gets an IPv6 one. */
static void network6_added__returning_client_keeps_its_address(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_config *c2;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "zed", NULL, &r), 0);
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.2");
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"ann", 3, r.grant.slot, r.session,
					  NULL), 0);
	vp_pg_close(pg);
	c2 = config_like(f);
	tl_add_pool(c2, "p", "10.8.1.0/24", NULL, NULL, "fd00:8::/64", NULL);
	pg = open_node_with(f, c2, "a");
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.2");
	assert_true(r.grant.sticky);
	assert_string_equal(vp_addr_format(&r.grant.addr6, b), "fd00:8::2");
	vp_pg_close(pg);
	vp_config_free(c2);
	free(c2);
}

/* A reservation newer than the lease on its address: a held lease of
 * another client there is dropped; an online one keeps it (-EBUSY) until
 * its session ends. */
static void reservation_added_on_a_leased_address__held_dropped_online_waits(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r, rz;
	struct vp_config *c2;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg, *a;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	a = open_node(f, "a");
	assert_int_equal(conn(a, "ann", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.1");
	assert_int_equal(vp_pg_disconnect(a, (const uint8_t *)"ann", 3, r.grant.slot, r.session,
					  NULL), 0);
	assert_int_equal(conn(a, "zed", NULL, &rz), 0);
	assert_string_equal(a4(&rz, b), "10.8.1.2");
	c2 = config_like(f);
	tl_add_pool(c2, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	tl_add_static(c2, "boss", "10.8.1.1", NULL, NULL, NULL);
	tl_add_static(c2, "chief", "10.8.1.2", NULL, NULL, NULL);
	pg = open_node_with(f, c2, "b");
	assert_int_equal(conn(pg, "boss", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.1");
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE identity = 'ann'"), 0);
	assert_int_equal(conn(pg, "chief", NULL, &r), -EBUSY);
	assert_non_null(strstr(vp_pg_error(pg), "10.8.1.2 is online with another client"));
	assert_int_equal(vp_pg_disconnect(a, (const uint8_t *)"zed", 3, rz.grant.slot, rz.session,
					  NULL), 0);
	assert_int_equal(conn(pg, "chief", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.2");
	/* zed comes back to an address of the pool, not chief's */
	assert_int_equal(conn(pg, "zed", NULL, &rz), 0);
	assert_string_not_equal(a4(&rz, b), "10.8.1.2");
	vp_pg_close(pg);
	vp_pg_close(a);
	vp_config_free(c2);
	free(c2);
}

static void reservation__gives_exactly_that_address(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;
	char id[16];

	tl_add_pool(f->c, "p", "10.8.1.0/24", "10.8.1.1-10.8.1.3", NULL, NULL, NULL);
	tl_add_static(f->c, "boss", "10.8.1.2", NULL, NULL, NULL);
	pg = open_node(f, "a");
	/* the reserved address is nobody else's: 2 left for the others */
	for (int i = 0; i < 2; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(conn(pg, id, NULL, &r), 0);
		assert_string_not_equal(a4(&r, b), "10.8.1.2");
	}
	assert_int_equal(conn(pg, "c2", NULL, &r), -ENOSPC);
	assert_int_equal(conn(pg, "boss", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.2");
	assert_true(r.grant.is_static);
	vp_pg_close(pg);
}

/* A reservation held under a pool another server's file names otherwise
 * (a pool renamed in a rolling change): the lease is given again under
 * this server's pool, never with a pool this server does not know. */
static void reservation_under_a_renamed_pool__comes_with_this_servers_pool(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "office", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	tl_add_static(f->c, "boss", "10.8.1.2", NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "boss", NULL, &r), 0);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"boss", 4, r.grant.slot, r.session,
					  NULL), 0);
	vp_pg_close(pg);
	free(f->c->pools[0].name);
	f->c->pools[0].name = strdup("staff");
	pg = open_node(f, "b");
	assert_int_equal(conn(pg, "boss", NULL, &r), 0);
	assert_non_null(r.grant.pool);
	assert_string_equal(r.grant.pool->name, "staff");
	assert_string_equal(a4(&r, b), "10.8.1.2");
	assert_true(r.grant.is_static);
	vp_pg_close(pg);
}

/* A freed address the config excludes since is not handed out again. */
static void freed_address_excluded_since__not_handed_out(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_config *c2;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.1.0/24", "10.8.1.1-10.8.1.3", NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.1");
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"ann", 3, r.grant.slot, r.session,
					  NULL), 0);
	assert_int_equal(vp_pg_release(pg, (const uint8_t *)"ann", 3), 0);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.free"), 1);
	vp_pg_close(pg);
	/* the same pool, 10.8.1.1 excluded now */
	c2 = config_like(f);
	tl_add_pool(c2, "p", "10.8.1.0/24", "10.8.1.1-10.8.1.3",
		    (const char *const[]){ "10.8.1.1", NULL }, NULL, NULL);
	pg = open_node_with(f, c2, "a");
	assert_int_equal(conn(pg, "bob", NULL, &r), 0);
	assert_string_not_equal(a4(&r, b), "10.8.1.1");
	assert_int_equal(conn(pg, "cid", NULL, &r), 0);
	assert_string_not_equal(a4(&r, b), "10.8.1.1");
	assert_int_equal(conn(pg, "dan", NULL, &r), -ENOSPC);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.free"), 0);
	vp_pg_close(pg);
	vp_config_free(c2);
	free(c2);
}

static int ended_count;
static void count_ended(void *ud, const struct vp_pg_ended *e)
{
	(void)ud;
	assert_string_equal(e->node, "a");
	ended_count++;
}

static void silent_node__has_its_sessions_turned_held(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *a, *b;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	a = open_node(f, "a");
	b = open_node(f, "b");
	assert_int_equal(conn(a, "ann", NULL, &r), 0);
	assert_int_equal(conn(a, "bob", NULL, &r), 0);
	ended_count = 0;
	assert_int_equal(vp_pg_heartbeat(b, count_ended, NULL), 0);
	assert_int_equal(ended_count, 0);
	/* b has not been in contact for node-timeout itself: after the
	 * database was away every heartbeat is old, and nobody is judged */
	sqlv("UPDATE vpnpool.node SET heartbeat = now() - interval '61 seconds'");
	assert_int_equal(vp_pg_heartbeat(b, count_ended, NULL), 0);
	assert_int_equal(ended_count, 0);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE online"), 2);
	/* once b has beaten for node-timeout, a (silent) is judged */
	sqlv("UPDATE vpnpool.node SET contact = now() - interval '61 seconds' WHERE node = 'b'");
	assert_int_equal(vp_pg_heartbeat(b, count_ended, NULL), 0);
	assert_int_equal(ended_count, 2);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE online"), 0);
	assert_int_equal(vp_pg_heartbeat(b, count_ended, NULL), 0);
	assert_int_equal(ended_count, 2);
	/* a restart of (node, instance) ends its own leftovers */
	assert_int_equal(conn(b, "cid", NULL, &r), 0);
	vp_pg_close(b);
	ended_count = 0;
	b = open_node(f, "b");
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE online"), 0);
	vp_pg_close(a);
	vp_pg_close(b);
}

static void stopped_database__fails_fast_and_service_resumes(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *pg;
	int64_t t0;
	int ret;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	ctl("stop");
	t0 = ms_now();
	ret = conn(pg, "bob", NULL, &r);
	assert_true(ret == -ECONNREFUSED || ret == -ETIMEDOUT);
	assert_string_not_equal(vp_pg_error(pg), "");
	ret = conn(pg, "bob", NULL, &r);
	assert_true(ret == -ECONNREFUSED || ret == -ETIMEDOUT);
	print_message("stopped: two calls failed in %lld ms\n", (long long)(ms_now() - t0));
	assert_false(vp_pg_connected(pg));
	ctl("start");
	for (int i = 0; i < 50 && (ret = conn(pg, "bob", NULL, &r)) != 0; ++i) {
		struct timespec ts = { 0, 100000000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(ret, 0);
	assert_true(vp_pg_connected(pg));
	vp_pg_close(pg);
}

static void frozen_database__times_out_within_the_limit(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *pg;
	int64_t t0, took;
	int ret;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	f->c->store_timeout_ms = 1000;
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	ctl("freeze");
	t0 = ms_now();
	ret = conn(pg, "bob", NULL, &r);
	took = ms_now() - t0;
	ctl("thaw");
	assert_int_equal(ret, -ETIMEDOUT);
	/* A figure, not an assertion (no timed assertions in the suite): the
	 * call came back with -ETIMEDOUT instead of waiting for the thaw. */
	print_message("frozen: -ETIMEDOUT after %lld ms (limit 1000)\n", (long long)took);
	/* the lost answer is undone, and service resumes */
	for (int i = 0; i < 50 && (ret = vp_pg_abort(pg, (const uint8_t *)"bob", 3,
						     session_seq)) != 0; ++i) {
		struct timespec ts = { 0, 100000000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE online AND identity = 'bob'"),
			 0);
	assert_int_equal(conn(pg, "bob", NULL, &r), 0);
	vp_pg_close(pg);
}

static void *start_one(void *arg)
{
	struct fx *f = arg;
	struct vp_pg_options o = { .config = f->c, .node = NULL, .instance = "i",
				   .create_schema = true };
	struct vp_server s = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, NULL);
	char node[32];
	struct vp_pg *pg;
	intptr_t ret;

	snprintf(node, sizeof(node), "n%lu", (unsigned long)pthread_self());
	o.node = node;
	if (vp_pg_open(&pg, &o))
		return (void *)(intptr_t)-1;
	ret = vp_pg_start(pg, &s, NULL, NULL);
	vp_pg_close(pg);
	return (void *)ret;
}

static void servers_starting_at_once__on_an_empty_database__all_start(void **state)
{
	struct fx *f = *state;
	pthread_t t[4];
	void *ret;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	assert_int_equal(sqlv("SELECT count(*) FROM pg_namespace WHERE nspname = 'vpnpool'"), 0);
	for (int i = 0; i < 4; ++i)
		pthread_create(&t[i], NULL, start_one, f);
	for (int i = 0; i < 4; ++i) {
		pthread_join(t[i], &ret);
		assert_int_equal((intptr_t)ret, 0);
	}
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.meta"), 1);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.node"), 4);
}

static void schema_of_another_version__is_refused(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	vp_pg_close(pg);
	sqlv("UPDATE vpnpool.meta SET version = 99");
	assert_int_equal(vp_pg_open(&pg, &(struct vp_pg_options){ .config = f->c, .node = "a",
								 .instance = "i",
								 .create_schema = true }),
			 0);
	assert_false(vp_pg_connected(pg));
	assert_int_equal(vp_pg_start(pg, &(struct vp_server){ .topology = VP_TOPO_SUBNET }, NULL,
				     NULL), -EPROTONOSUPPORT);
	assert_non_null(strstr(vp_pg_error(pg), "version 99"));
	assert_int_equal(conn(pg, "ann", NULL, &r), -EAGAIN);
	vp_pg_close(pg);
}

static void slash8_pool__needs_no_row_per_address(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *pg;
	char id[16], b[VP_ADDR_STRLEN];

	tl_add_pool(f->c, "big", "10.0.0.0/8", NULL, NULL, NULL, NULL);
	f->netbits = 8;
	pg = open_node(f, "a");
	for (int i = 0; i < 10; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(conn(pg, id, NULL, &r), 0);
	}
	assert_string_equal(a4(&r, b), "10.0.0.10");
	assert_int_equal(r.grant.size, 16777214 - 1);	/* the server's 10.8.0.1 */
	assert_int_equal(r.grant.in_use, 10);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease"), 10);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.free"), 0);
	assert_true(sqlv("SELECT count(*) FROM vpnpool.segment") <= 2);
	vp_pg_close(pg);
}

static void net30__is_not_supported(void **state)
{
	struct fx *f = *state;
	struct vp_pg *pg;
	struct vp_server s = tl_server(VP_TOPO_NET30, "10.8.0.1", 0, NULL);

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	assert_int_equal(vp_pg_open(&pg, &(struct vp_pg_options){ .config = f->c, .node = "a",
								 .instance = "i",
								 .create_schema = true }),
			 0);
	assert_int_equal(vp_pg_start(pg, &s, NULL, NULL), -EOPNOTSUPP);
	assert_non_null(strstr(vp_pg_error(pg), "net30"));
	vp_pg_close(pg);
}

static void release_and_import__work_on_held_leases(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct vp_pg *pg, *cmd;
	struct vp_addr x = tl_addr("10.8.1.77"), y = tl_addr("10.9.0.1");
	const char *why;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(vp_pg_open(&cmd, &(struct vp_pg_options){ .config = f->c }), 0);
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	assert_int_equal(vp_pg_release(cmd, (const uint8_t *)"ann", 3), -EBUSY);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"ann", 3, 0, r.session, NULL), 0);
	assert_int_equal(vp_pg_release(cmd, (const uint8_t *)"ann", 3), 0);
	assert_int_equal(vp_pg_release(cmd, (const uint8_t *)"ann", 3), -ENOENT);
	assert_int_equal(vp_pg_import(cmd, (const uint8_t *)"imp", 3, &x, NULL, &why), 0);
	assert_int_equal(vp_pg_import(cmd, (const uint8_t *)"imp", 3, &x, NULL, &why), -EEXIST);
	assert_int_equal(vp_pg_import(cmd, (const uint8_t *)"other", 5, &x, NULL, &why),
			 -EADDRINUSE);
	assert_int_equal(vp_pg_import(cmd, (const uint8_t *)"other", 5, &y, NULL, &why), -EDOM);
	assert_string_equal(why, "outside every pool");
	assert_int_equal(conn(pg, "imp", NULL, &r), 0);
	assert_true(vp_addr_eq(&r.grant.addr4, &x));
	vp_pg_close(cmd);
	vp_pg_close(pg);
}

static void client_whose_pool_no_longer_matches__gets_an_address_of_its_new_pool(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct tl_env staff = { { "common_name" }, { "s-ann" }, 1 };
	struct tl_env other = { { "common_name" }, { "x" }, 1 };
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "staff", "10.8.1.0/24", NULL, NULL, NULL,
		    (const char *const[]){ "common_name=s-*", NULL });
	tl_add_pool(f->c, "guests", "10.8.2.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(conn(pg, "s-ann", &staff, &r), 0);
	assert_int_equal(vp_pg_disconnect(pg, (const uint8_t *)"s-ann", 5, 0, r.session, NULL), 0);
	assert_int_equal(conn(pg, "s-ann", &other, &r), 0);
	assert_string_equal(r.grant.pool->name, "guests");
	assert_false(r.grant.sticky);
	/* its old address went back to the free list, and is handed out again */
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.free"), 1);
	assert_int_equal(conn(pg, "s-bob", &(struct tl_env){ { "common_name" }, { "s-bob" }, 1 },
			      &r), 0);
	assert_string_equal(a4(&r, b), "10.8.1.1");
	vp_pg_close(pg);
}

static void p2p_topology__peer_is_the_server_address(void **state)
{
	struct fx *f = *state;
	struct vp_pg_options o = { .config = f->c, .node = "a", .instance = "i",
				   .create_schema = true };
	struct vp_server s = tl_server(VP_TOPO_P2P, "10.8.0.1", 0, NULL);
	struct vp_pg_result r;
	char b[VP_ADDR_STRLEN];
	struct vp_pg *pg;

	tl_add_pool(f->c, "p", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	assert_int_equal(vp_pg_open(&pg, &o), 0);
	assert_int_equal(vp_pg_start(pg, &s, NULL, NULL), 0);
	assert_int_equal(conn(pg, "ann", NULL, &r), 0);
	assert_string_equal(a4(&r, b), "10.8.0.2");	/* .1 is the server's */
	assert_string_equal(vp_addr_format(&r.grant.peer4, b), "10.8.0.1");
	vp_pg_close(pg);
}

struct listing {
	int leases, pools, nodes;
	char first[32];
	uint64_t online, held, size;
	bool live_a, dead_b;
};

static int on_lease(void *ud, const struct vp_pg_lease *l)
{
	struct listing *li = ud;

	if (!li->leases++)
		snprintf(li->first, sizeof(li->first), "%.*s/%s/%s", (int)l->rec.identity_len,
			 (const char *)l->rec.identity, l->pool, l->node);
	return 0;
}

static int on_pool(void *ud, const struct vp_pg_pool *p)
{
	struct listing *li = ud;

	li->pools++;
	li->online = p->online;
	li->held = p->held;
	li->size = p->size;
	return 0;
}

static int on_node(void *ud, const struct vp_pg_node *n)
{
	struct listing *li = ud;

	li->nodes++;
	if (!strcmp(n->node, "a"))
		li->live_a = n->live && n->online == 1;
	if (!strcmp(n->node, "b"))
		li->dead_b = !n->live;
	return 0;
}

static void command__lists_leases_pools_and_nodes(void **state)
{
	struct fx *f = *state;
	struct vp_pg_result r;
	struct listing li = { 0 };
	struct vp_pg *a, *b, *cmd;

	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	a = open_node(f, "a");
	b = open_node(f, "b");
	assert_int_equal(conn(a, "zed", NULL, &r), 0);
	assert_int_equal(conn(b, "amy", NULL, &r), 0);
	assert_int_equal(vp_pg_disconnect(b, (const uint8_t *)"amy", 3, 0, r.session, NULL), 0);
	sqlv("UPDATE vpnpool.node SET heartbeat = now() - interval '1 day' WHERE node = 'b'");
	assert_int_equal(vp_pg_open(&cmd, &(struct vp_pg_options){ .config = f->c }), 0);
	assert_int_equal(vp_pg_each_lease(cmd, on_lease, &li), 0);
	assert_int_equal(li.leases, 2);
	assert_string_equal(li.first, "zed/p/a");	/* by address: zed got .1 */
	assert_int_equal(vp_pg_each_pool(cmd, on_pool, &li), 0);
	assert_int_equal(li.pools, 1);
	assert_int_equal(li.online, 1);
	assert_int_equal(li.held, 1);
	assert_int_equal(li.size, 254);
	assert_int_equal(vp_pg_each_node(cmd, on_node, &li), 0);
	assert_int_equal(li.nodes, 2);
	assert_true(li.live_a);
	assert_true(li.dead_b);
	vp_pg_close(cmd);
	vp_pg_close(a);
	vp_pg_close(b);
}

/* A connect the server gave up on (abort) but the database runs later (it
 * was frozen with the statement in its socket): it refuses itself. */
static void connect_run_after_its_abort__refuses_itself(void **state)
{
	struct fx *f = *state;
	struct vp_request req = { (const uint8_t *)"late", 4, tl_getvar, NULL, NULL };
	struct tl_env none = { 0 };
	struct vp_pg_result r;
	struct vp_pg *pg;

	req.getvar_ud = &none;
	tl_add_pool(f->c, "p", "10.8.1.0/24", NULL, NULL, NULL, NULL);
	pg = open_node(f, "a");
	assert_int_equal(vp_pg_abort(pg, req.identity, req.identity_len, 424242), 0);
	assert_int_equal(vp_pg_connect(pg, &req, 424242, &r), -ECANCELED);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease"), 0);
	/* another session of it is served */
	assert_int_equal(vp_pg_connect(pg, &req, 424243, &r), 0);
	assert_int_equal(sqlv("SELECT count(*) FROM vpnpool.lease WHERE online"), 1);
	vp_pg_close(pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(connect__gives_an_address_of_the_matching_pool),
		T(disconnect_then_connect__is_sticky),
		T(two_identities__never_get_the_same_address),
		T(full_pool__refuses_the_next_with_enospc),
		T(held_lease__is_reclaimed_after_its_hold_time),
		T(duplicate_cn__on_this_node_gets_a_new_address__on_another_moves),
		T(router_client__gets_an_address_and_a_subnet),
		T(pool_with_network6__gives_an_ipv6_address_too),
		T(reservation__gives_exactly_that_address),
		T(reservation_added_on_a_leased_address__held_dropped_online_waits),
		T(network6_added__returning_client_keeps_its_address),
		T(freed_address_excluded_since__not_handed_out),
		T(reservation_under_a_renamed_pool__comes_with_this_servers_pool),
		T(silent_node__has_its_sessions_turned_held),
		T(stopped_database__fails_fast_and_service_resumes),
		T(frozen_database__times_out_within_the_limit),
		T(servers_starting_at_once__on_an_empty_database__all_start),
		T(schema_of_another_version__is_refused),
		T(slash8_pool__needs_no_row_per_address),
		T(net30__is_not_supported),
		T(release_and_import__work_on_held_leases),
		T(client_whose_pool_no_longer_matches__gets_an_address_of_its_new_pool),
		T(p2p_topology__peer_is_the_server_address),
		T(command__lists_leases_pools_and_nodes),
		T(connect_run_after_its_abort__refuses_itself),
	};

	uri = getenv("VP_PG_URI");
	if (!uri) {
		fprintf(stderr, "test_pgstore: VP_PG_URI not set: run it through tests/pg_unit.sh\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
