/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Deferred connects (plugin/defer.h) over a fake store whose calls the test
 * holds and lets go: a slow store, a hanging one, a failing one.  The
 * deadline clock is the test's own; nothing is timed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "plugin/defer.h"

/* The fake store: a connect waits while the gate is closed. */
struct fake {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool gate_closed;
	bool in_connect;
	int open_ret, connect_ret, start_ret, heartbeat_ret, disconnect_ret;
	int opens, starts, heartbeats, connects, disconnects, aborts, closes, joins;
	char instance[64], var[64];
	int64_t connect_session, abort_session, disconnect_session;
	uint16_t disconnect_slot;
	char disconnect_id[64], abort_id[64];
	bool report_crash;		/* the next heartbeat ends a session */
	char order[256];		/* "c:ID " per connect, "d:ID " per disconnect */
};

static struct fake F;
static atomic_llong clock_ms;

static int64_t fake_now(void)
{
	return atomic_load(&clock_ms);
}

static void fake_lock(void)
{
	pthread_mutex_lock(&F.m);
}

static void fake_unlock(void)
{
	pthread_cond_broadcast(&F.c);
	pthread_mutex_unlock(&F.m);
}

static int f_open(void **out, const struct vp_pg_options *o)
{
	fake_lock();
	F.opens++;
	snprintf(F.instance, sizeof(F.instance), "%s", o->instance);
	*out = &F;
	int ret = F.open_ret;
	fake_unlock();
	return ret;
}

static void f_close(void *h)
{
	(void)h;
	fake_lock();
	F.closes++;
	fake_unlock();
}

static const char *f_error(const void *h)
{
	(void)h;
	return "fake store failing";
}

static int f_start(void *h, const struct vp_server *s, vp_defer_ended_fn *fn, void *ud)
{
	(void)h, (void)s, (void)fn, (void)ud;
	fake_lock();
	F.starts++;
	int ret = F.start_ret;
	fake_unlock();
	return ret;
}

static int f_heartbeat(void *h, vp_defer_ended_fn *fn, void *ud)
{
	struct vp_pg_ended e = { .identity = (const uint8_t *)"gone", .identity_len = 4,
				 .node = "vpn2", .instance = "tun0", .duration = 42 };
	bool crash;

	(void)h;
	fake_lock();
	F.heartbeats++;
	snprintf(F.order + strlen(F.order), sizeof(F.order) - strlen(F.order), "h ");
	crash = F.report_crash;
	F.report_crash = false;
	int ret = F.heartbeat_ret;
	fake_unlock();
	if (crash)
		fn(ud, &e);
	return ret;
}

static int f_connect(void *h, const struct vp_request *req, int64_t session,
		     struct vp_pg_result *r)
{
	const char *v = req->getvar(req->getvar_ud, "common_name");

	(void)h;
	fake_lock();
	F.in_connect = true;
	pthread_cond_broadcast(&F.c);
	while (F.gate_closed)
		pthread_cond_wait(&F.c, &F.m);
	F.in_connect = false;
	F.connects++;
	F.connect_session = session;
	snprintf(F.order + strlen(F.order), sizeof(F.order) - strlen(F.order), "c:%.*s ",
		 (int)req->identity_len, (const char *)req->identity);
	snprintf(F.var, sizeof(F.var), "%s", v ? v : "(none)");
	r->grant.slot = 0;
	vp_addr_parse(&r->grant.addr4, "10.8.0.7", NULL);
	r->session = session;
	int ret = F.connect_ret;
	fake_unlock();
	return ret;
}

static int f_disconnect(void *h, const uint8_t *id, size_t len, uint16_t slot, int64_t session,
			struct vp_grant *ended)
{
	(void)h, (void)ended;
	fake_lock();
	F.disconnects++;
	F.disconnect_session = session;
	snprintf(F.order + strlen(F.order), sizeof(F.order) - strlen(F.order), "d:%.*s ",
		 (int)len, (const char *)id);
	F.disconnect_slot = slot;
	snprintf(F.disconnect_id, sizeof(F.disconnect_id), "%.*s", (int)len, (const char *)id);
	int ret = F.disconnect_ret;
	fake_unlock();
	return ret;
}

static int f_abort(void *h, const uint8_t *id, size_t len, int64_t session)
{
	(void)h;
	fake_lock();
	F.aborts++;
	F.abort_session = session;
	snprintf(F.abort_id, sizeof(F.abort_id), "%.*s", (int)len, (const char *)id);
	int ret = F.connect_ret;	/* the database down for every call */
	fake_unlock();
	return ret;
}

static const struct vp_defer_store_ops fake_ops = {
	.open = f_open, .close = f_close, .error = f_error, .start = f_start,
	.heartbeat = f_heartbeat, .connect = f_connect, .disconnect = f_disconnect,
	.abort = f_abort,
};

static int f_join(void *h, const void *started)
{
	(void)h, (void)started;
	fake_lock();
	F.joins++;
	fake_unlock();
	return 0;
}

/* The same with several workers (the first one's alone: no join). */
static const struct vp_defer_store_ops fake_ops_workers = {
	.open = f_open, .close = f_close, .error = f_error, .start = f_start,
	.heartbeat = f_heartbeat, .connect = f_connect, .disconnect = f_disconnect,
	.abort = f_abort, .join = f_join,
};

/* Wait (untimed) until the fake's counter reaches n. */
static void wait_for(const int *counter, int n)
{
	fake_lock();
	while (*counter < n) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 5000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&F.c, &F.m, &ts);
	}
	fake_unlock();
}

static void wait_started(struct vp_defer *d)
{
	struct vp_defer_stats st;

	for (vp_defer_stats(d, &st); !st.starts; vp_defer_stats(d, &st))
		usleep(100);
}

static void wait_in_connect(void)
{
	fake_lock();
	while (!F.in_connect)
		pthread_cond_wait(&F.c, &F.m);
	fake_unlock();
}

static void gate(bool closed)
{
	fake_lock();
	F.gate_closed = closed;
	fake_unlock();
}

/* A config whose pool matches on common_name: the copy must carry it. */
static char var_name[] = "common_name", glob[] = "*", pool_name[] = "p";
static struct vp_match match = { .var = var_name, .glob = glob };
static struct vp_pool_config pool = { .name = pool_name, .match = &match, .n_match = 1 };
static struct vp_config config = { .pools = &pool, .n_pools = 1, .store_timeout_ms = 5000,
				   .node_timeout = 60 };

static struct vp_defer *open_defer(void)
{
	struct vp_defer_options o = { .ops = &fake_ops, .config = &config, .node = "vpn1",
				      .now_ms = fake_now };
	struct vp_defer *d;

	assert_int_equal(vp_defer_open(&d, &o, "tun0"), 0);
	return d;
}

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.m, NULL);
	pthread_cond_init(&F.c, NULL);
	atomic_store(&clock_ms, 1000000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_destroy(&F.m);
	pthread_cond_destroy(&F.c);
	return 0;
}

static const char *env_get(void *ud, const char *name)
{
	(void)ud;
	return !strcmp(name, "common_name") ? "alice-cn" : NULL;
}

/* A connect as the plugin queues it; the env the request read is gone by
 * the time the worker runs it (a stack buffer overwritten). */
static struct vp_defer_ticket *connect_one(struct vp_defer *d, const char *id, int64_t session)
{
	char buf[64];
	struct vp_request req;

	snprintf(buf, sizeof(buf), "%s", id);
	req = (struct vp_request){ .identity = (const uint8_t *)buf, .identity_len = strlen(buf),
				   .getvar = env_get, .real = "192.0.2.1:1194" };
	struct vp_defer_ticket *t = vp_defer_connect(d, &req, session);

	memset(buf, 'X', sizeof(buf));
	assert_non_null(t);
	return t;
}

static enum vp_defer_state poll_until_not_pending(struct vp_defer *d, struct vp_defer_ticket *t,
						  int *ret, struct vp_pg_result *r)
{
	enum vp_defer_state s;

	while ((s = vp_defer_poll(d, t, ret, r, NULL)) == VP_DEFER_PENDING)
		usleep(100);
	return s;
}

static void defer__slow_store__connect_pending_then_answered(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_pg_result r;
	struct vp_defer_ticket *t;
	int ret = 1;
	char a[VP_ADDR_STRLEN];

	(void)state;
	gate(true);
	t = connect_one(d, "alice", 77);
	wait_in_connect();
	assert_int_equal(vp_defer_poll(d, t, &ret, &r, NULL), VP_DEFER_PENDING);
	gate(false);
	assert_int_equal(poll_until_not_pending(d, t, &ret, &r), VP_DEFER_DONE);
	assert_int_equal(ret, 0);
	assert_string_equal(vp_addr_format(&r.grant.addr4, a), "10.8.0.7");
	assert_int_equal(F.connect_session, 77);
	assert_string_equal(F.var, "alice-cn");	/* copied from the env */
	vp_defer_put(d, t, true);
	vp_defer_close(d);
	assert_int_equal(F.aborts, 0);
	assert_int_equal(F.closes, 1);
}

static void defer__hanging_store__refused_after_timeout_and_undone(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;
	int ret;

	(void)state;
	gate(true);
	t = connect_one(d, "bob", 88);
	wait_in_connect();
	atomic_fetch_add(&clock_ms, 4999);
	assert_int_equal(vp_defer_poll(d, t, &ret, NULL, NULL), VP_DEFER_PENDING);
	atomic_fetch_add(&clock_ms, 1);
	assert_int_equal(vp_defer_poll(d, t, &ret, NULL, NULL), VP_DEFER_TIMEOUT);
	/* For good, even once the answer comes. */
	vp_defer_put(d, t, false);
	gate(false);
	wait_for(&F.aborts, 1);
	assert_int_equal(F.abort_session, 88);
	assert_string_equal(F.abort_id, "bob");
	vp_defer_close(d);
	assert_int_equal(F.aborts, 1);
}

static void defer__timed_out_ticket_kept__stays_timed_out_after_the_answer(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;
	int ret;

	(void)state;
	gate(true);
	t = connect_one(d, "bob", 89);
	wait_in_connect();
	atomic_fetch_add(&clock_ms, 6000);
	assert_int_equal(vp_defer_poll(d, t, &ret, NULL, NULL), VP_DEFER_TIMEOUT);
	gate(false);
	wait_for(&F.aborts, 1);
	assert_int_equal(vp_defer_poll(d, t, &ret, NULL, NULL), VP_DEFER_TIMEOUT);
	vp_defer_put(d, t, false);
	vp_defer_close(d);
	assert_int_equal(F.aborts, 1);	/* undone once */
}

static void defer__client_gone_while_pending__connect_undone(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;

	(void)state;
	gate(true);
	t = connect_one(d, "carol", 99);
	wait_in_connect();
	vp_defer_put(d, t, false);	/* the destructor */
	gate(false);
	wait_for(&F.aborts, 1);
	assert_int_equal(F.abort_session, 99);
	assert_string_equal(F.abort_id, "carol");
	vp_defer_close(d);
}

static void defer__client_gone_while_queued__connect_never_run(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *first, *t;
	int ret;

	(void)state;
	gate(true);
	first = connect_one(d, "first", 1);
	wait_in_connect();
	t = connect_one(d, "dave", 2);	/* queued behind the first */
	vp_defer_put(d, t, false);
	gate(false);
	assert_int_equal(poll_until_not_pending(d, first, &ret, NULL), VP_DEFER_DONE);
	vp_defer_put(d, first, true);
	vp_defer_close(d);
	assert_int_equal(F.connects, 1);
	assert_int_equal(F.aborts, 0);
}

static void defer__answer_given_back_unused__undone(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;
	int ret;

	(void)state;
	t = connect_one(d, "erin", 5);
	assert_int_equal(poll_until_not_pending(d, t, &ret, NULL), VP_DEFER_DONE);
	vp_defer_put(d, t, false);	/* e.g. out of memory building the lines */
	wait_for(&F.aborts, 1);
	assert_int_equal(F.abort_session, 5);
	vp_defer_close(d);
}

static void defer__disconnect__queued_while_the_store_hangs(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;
	struct vp_defer_stats st;
	int ret;

	(void)state;
	gate(true);
	t = connect_one(d, "frank", 6);
	wait_in_connect();
	assert_int_equal(vp_defer_disconnect(d, (const uint8_t *)"gina", 4, 2, 7), 0);
	vp_defer_stats(d, &st);
	assert_int_equal(st.queued, 1);
	assert_int_equal(F.disconnects, 0);
	gate(false);
	wait_for(&F.disconnects, 1);
	assert_string_equal(F.disconnect_id, "gina");
	assert_int_equal(F.disconnect_slot, 2);
	assert_int_equal(F.disconnect_session, 7);
	assert_int_equal(poll_until_not_pending(d, t, &ret, NULL), VP_DEFER_DONE);
	vp_defer_put(d, t, true);
	vp_defer_close(d);
}

static void defer__connects_queued__run_before_disconnects_but_not_their_own(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *a, *b, *c;
	int ret;

	(void)state;
	gate(true);
	a = connect_one(d, "A", 1);
	wait_in_connect();
	vp_defer_disconnect(d, (const uint8_t *)"X", 1, 0, 2);
	vp_defer_disconnect(d, (const uint8_t *)"B", 1, 0, 3);
	c = connect_one(d, "C", 4);
	b = connect_one(d, "B", 5);
	gate(false);
	assert_int_equal(poll_until_not_pending(d, b, &ret, NULL), VP_DEFER_DONE);
	assert_string_equal(F.order, "c:A c:C d:X d:B c:B ");
	vp_defer_put(d, a, true);
	vp_defer_put(d, b, true);
	vp_defer_put(d, c, true);
	vp_defer_close(d);
}

/* A queue that never empties (connects keep coming) does not hold back
 * the heartbeat: due, it goes before the next job. */
static void defer__heartbeat_due__runs_before_queued_connects(void **state)
{
	struct vp_server server = { .topology = VP_TOPO_SUBNET };
	struct vp_defer_ticket *t[4];
	struct vp_defer *d;
	int ret;

	(void)state;
	config.node_timeout = 3;	/* a heartbeat a second */
	d = open_defer();
	config.node_timeout = 60;
	assert_int_equal(vp_defer_start(d, &server, NULL, false), 0);
	wait_started(d);
	gate(true);
	t[0] = connect_one(d, "A", 1);
	wait_in_connect();
	t[1] = connect_one(d, "B", 2);
	t[2] = connect_one(d, "C", 3);
	t[3] = connect_one(d, "D", 4);
	fake_lock();
	F.order[0] = 0;			/* from A on */
	fake_unlock();
	atomic_fetch_add(&clock_ms, 1500);	/* the heartbeat is due, not store-timeout */
	gate(false);
	assert_int_equal(poll_until_not_pending(d, t[3], &ret, NULL), VP_DEFER_DONE);
	assert_string_equal(F.order, "c:A h c:B c:C c:D ");
	for (int i = 0; i < 4; ++i)
		vp_defer_put(d, t[i], true);
	vp_defer_close(d);
}

/* Connects first, but a disconnect queued behind many of them runs after
 * at most 8. */
static void defer__many_connects_queued__a_disconnect_runs_after_eight(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t[12];
	char id[8];
	int ret;

	(void)state;
	gate(true);
	t[0] = connect_one(d, "c0", 1);
	wait_in_connect();
	vp_defer_disconnect(d, (const uint8_t *)"X", 1, 0, 100);
	for (int i = 1; i < 12; ++i) {
		snprintf(id, sizeof(id), "c%d", i);
		t[i] = connect_one(d, id, i + 1);
	}
	gate(false);
	assert_int_equal(poll_until_not_pending(d, t[11], &ret, NULL), VP_DEFER_DONE);
	wait_for(&F.disconnects, 1);
	assert_non_null(strstr(F.order, "c:c7 d:X c:c8 "));
	for (int i = 0; i < 12; ++i)
		vp_defer_put(d, t[i], true);
	vp_defer_close(d);
}

static void defer__close__sends_queued_disconnects(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;

	(void)state;
	gate(true);
	t = connect_one(d, "henry", 8);
	wait_in_connect();
	for (int i = 0; i < 3; ++i)
		assert_int_equal(vp_defer_disconnect(d, (const uint8_t *)"ivy", 3, 0, 10 + i), 0);
	vp_defer_put(d, t, false);
	gate(false);
	vp_defer_close(d);
	assert_int_equal(F.disconnects, 3);
	assert_int_equal(F.disconnect_session, 12);
	assert_int_equal(F.closes, 1);
}

struct seen {
	int ended, store_errors, store_ok, started;
	char reason[16], node[16], id[16];
};

static void on_msg(void *ud, const struct vp_defer_msg *m)
{
	struct seen *s = ud;

	switch (m->type) {
	case VP_DEFER_MSG_ENDED:
		s->ended++;
		snprintf(s->reason, sizeof(s->reason), "%s", m->reason);
		snprintf(s->node, sizeof(s->node), "%s", m->ended.node);
		snprintf(s->id, sizeof(s->id), "%.*s", (int)m->ended.identity_len,
			 (const char *)m->ended.identity);
		break;
	case VP_DEFER_MSG_STORE:
		if (m->error)
			s->store_errors++;
		else
			s->store_ok++;
		break;
	case VP_DEFER_MSG_STARTED:
		s->started++;
		break;
	case VP_DEFER_MSG_ABORTED:
		break;
	}
}

static void defer__store_failing__refused_undone_and_said_once(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_defer_ticket *t;
	struct seen seen = { 0 };
	int connects, ret;

	(void)state;
	F.connect_ret = -ECONNREFUSED;	/* every call fails, aborts too */
	t = connect_one(d, "jack", 20);
	assert_int_equal(poll_until_not_pending(d, t, &ret, NULL), VP_DEFER_DONE);
	assert_int_equal(ret, -ECONNREFUSED);
	vp_defer_put(d, t, false);
	wait_for(&F.aborts, 1);		/* its outcome unknown: undone */
	fake_lock();
	connects = F.connects;
	fake_unlock();
	/* Its undo failed: the client is refused without asking the store
	 * until it is undone (else it could hold two leases). */
	t = connect_one(d, "jack", 21);
	assert_int_equal(poll_until_not_pending(d, t, &ret, NULL), VP_DEFER_DONE);
	assert_int_equal(ret, -EIO);
	vp_defer_put(d, t, false);
	assert_int_equal(F.connects, connects);
	assert_int_equal(F.aborts, 2);	/* tried again first */
	/* The database back: the undo, then the connect. */
	fake_lock();
	F.connect_ret = 0;
	fake_unlock();
	atomic_fetch_add(&clock_ms, 1000);
	t = connect_one(d, "jack", 22);
	assert_int_equal(poll_until_not_pending(d, t, &ret, NULL), VP_DEFER_DONE);
	assert_int_equal(ret, 0);
	assert_int_equal(F.aborts, 3);
	assert_int_equal(F.abort_session, 20);
	assert_int_equal(F.connect_session, 22);
	vp_defer_put(d, t, true);
	vp_defer_messages(d, on_msg, &seen);
	assert_int_equal(seen.store_errors, 1);
	assert_int_equal(seen.store_ok, 1);
	vp_defer_close(d);
}

static void defer__heartbeat_ended__message_names_node_and_reason(void **state)
{
	struct vp_defer *d = open_defer();
	struct vp_server server = { .topology = VP_TOPO_SUBNET };
	struct seen seen = { 0 };

	(void)state;
	assert_int_equal(vp_defer_start(d, &server, "ignored", false), 0);
	assert_int_equal(vp_defer_start(d, &server, "ignored", false), -EALREADY);
	wait_started(d);
	assert_string_equal(F.instance, "tun0");	/* named at open */
	fake_lock();
	F.report_crash = true;
	fake_unlock();
	atomic_fetch_add(&clock_ms, 20000);
	vp_defer_disconnect(d, (const uint8_t *)"x", 1, 0, 1);
	wait_for(&F.heartbeats, 1);
	/* The message is added before the heartbeat call returns. */
	while (!seen.ended)
		if (!vp_defer_messages(d, on_msg, &seen))
			usleep(100);
	assert_string_equal(seen.reason, "crash");
	assert_string_equal(seen.node, "vpn2");
	assert_string_equal(seen.id, "gone");
	vp_defer_close(d);
}

static void defer__open_error__returned(void **state)
{
	struct vp_defer_options o = { .ops = &fake_ops, .config = &config, .node = "vpn1",
				      .now_ms = fake_now };
	struct vp_defer *d;

	(void)state;
	F.open_ret = -EINVAL;
	assert_int_equal(vp_defer_open(&d, &o, "tun0"), -EINVAL);
	assert_null(d);
}

static void defer__instance_unknown__opened_at_start_with_its_name(void **state)
{
	struct vp_defer_options o = { .ops = &fake_ops, .config = &config, .node = "vpn1",
				      .now_ms = fake_now };
	struct vp_server server = { .topology = VP_TOPO_SUBNET };
	struct vp_defer *d;

	(void)state;
	assert_int_equal(vp_defer_open(&d, &o, NULL), 0);
	assert_int_equal(F.opens, 0);
	assert_int_equal(vp_defer_start(d, &server, "tun7", true), 0);
	assert_int_equal(F.opens, 1);
	assert_string_equal(F.instance, "tun7");
	vp_defer_close(d);
}

static void defer_session_id__unique_and_increasing(void **state)
{
	struct vp_defer *d = open_defer();
	int64_t a = vp_defer_session_id(d), b = vp_defer_session_id(d);

	(void)state;
	assert_true(a > 0);
	assert_true(b > a);
	vp_defer_close(d);
}

/* Two workers: while one runs a connect of A, the other runs a disconnect
 * queued after A's own disconnect, never A's own, which waits for A's
 * connect to end. */
static void defer_workers__job_of_an_identity_in_flight__later_ones_wait_others_run(void **state)
{
	struct vp_defer_options o = { .ops = &fake_ops_workers, .config = &config, .node = "vpn1",
				      .now_ms = fake_now, .workers = 2 };
	struct vp_server server = { .topology = VP_TOPO_SUBNET };
	struct vp_defer_ticket *t;
	struct vp_defer *d;
	char first[sizeof(F.order)];
	int ret;

	(void)state;
	assert_int_equal(vp_defer_open(&d, &o, "tun0"), 0);
	assert_int_equal(vp_defer_start(d, &server, "tun0", true), 0);
	wait_started(d);
	wait_for(&F.joins, 1);
	assert_int_equal(F.opens, 2);
	gate(true);
	t = connect_one(d, "A", 1);
	wait_in_connect();
	assert_int_equal(vp_defer_disconnect(d, (const uint8_t *)"A", 1, 0, 0), 0);
	assert_int_equal(vp_defer_disconnect(d, (const uint8_t *)"X", 1, 0, 2), 0);
	wait_for(&F.disconnects, 1);
	snprintf(first, sizeof(first), "%s", F.order);
	gate(false);
	wait_for(&F.disconnects, 2);
	assert_int_equal(poll_until_not_pending(d, t, &ret, NULL), VP_DEFER_DONE);
	vp_defer_put(d, t, true);
	vp_defer_close(d);
	assert_string_equal(first, "d:X ");
	assert_string_equal(F.order, "d:X c:A d:A ");
	assert_int_equal(ret, 0);
	assert_int_equal(F.closes, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(defer__slow_store__connect_pending_then_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__hanging_store__refused_after_timeout_and_undone, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__timed_out_ticket_kept__stays_timed_out_after_the_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__client_gone_while_pending__connect_undone, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__client_gone_while_queued__connect_never_run, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__answer_given_back_unused__undone, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__disconnect__queued_while_the_store_hangs, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__close__sends_queued_disconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__connects_queued__run_before_disconnects_but_not_their_own, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__store_failing__refused_undone_and_said_once, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__heartbeat_ended__message_names_node_and_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__heartbeat_due__runs_before_queued_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__many_connects_queued__a_disconnect_runs_after_eight, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__open_error__returned, setup, teardown),
		cmocka_unit_test_setup_teardown(defer__instance_unknown__opened_at_start_with_its_name, setup, teardown),
		cmocka_unit_test_setup_teardown(defer_session_id__unique_and_increasing, setup, teardown),
		cmocka_unit_test_setup_teardown(defer_workers__job_of_an_identity_in_flight__later_ones_wait_others_run, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
