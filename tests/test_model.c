/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Model-based randomised test of the engine: random connects, disconnects,
 * clock steps and restarts from the journal, each checked against a
 * deliberately naive model (arrays and linear scans) of the policy openvpn-plugin-vpnpool(8) states.
 * Every grant must equal the model's prediction; after restarts and every
 * few hundred steps the whole lease table must equal the model's, and no
 * address, subnet, excluded or reserved address may be held twice.
 *
 * A second test runs several instances (spaces opened on one directory, as
 * several OpenVPN processes would) and the command between them: connects
 * and disconnects on any instance (a client moving between them), release,
 * import, clean stops, crashes (a space dropped without a word) noticed at
 * the next change or at the next open, and restarts.
 *
 *   VP_MODEL_OPS=10000000 VP_MODEL_SEED=42 ./tests/test_model
 *   VP_MODEL_MULTI_OPS=10000000 ./tests/test_model
 */
#include <errno.h>
#include <unistd.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "testlib.h"

#define N_IDS 48
#define MAX_SLOTS 3
#define HOLD 50
#define N_INST 3

/* The fixed world: pool a (10.8.0.0/27, group=a, exclude .5-.7, IPv6 /123),
 * pool b (10.8.1.0/28, anyone), router pool r (10.9.0.0/26 in /28s, site-*),
 * alice reserved at 10.8.0.20, site-0 reserved 10.9.0.16/28. */
enum { POOL_A, POOL_B, N_POOLS };

struct mlease {
	bool used, online;
	int slot;
	int64_t since;
	int pool;			/* -1 */
	uint32_t a4;			/* host order */
	int a6;				/* low byte of fd00:8::/123, -1 none */
	int sub;			/* router block index 0..3, -1 none */
	bool static4, static_sub;
	int inst;			/* instance of its session, -1: none */
};

struct model {
	struct mlease l[N_IDS][MAX_SLOTS];
	uint32_t cand4[N_POOLS][32];	/* allocatable v4 addresses, ascending */
	int n_cand4[N_POOLS];
	int cand6[32];
	int n_cand6;
	int64_t now;
	int inst;			/* the instance of the operation, -1: none */
	bool alive[N_INST];
	bool pending[N_INST];		/* killed, not noticed yet */
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void id_name(int id, char *buf, size_t len)
{
	if (id == 0)
		snprintf(buf, len, "alice");
	else if (id < 9)
		snprintf(buf, len, "site-%d", id - 1);
	else
		snprintf(buf, len, "u%d", id);
}

static bool id_is_site(int id)
{
	return id >= 1 && id < 9;
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	for (uint32_t h = 2; h <= 30; ++h)	/* .1 is the server */
		if ((h < 5 || h > 7) && h != 20)
			m->cand4[POOL_A][m->n_cand4[POOL_A]++] = 0x0a080000 | h;
	for (uint32_t h = 1; h <= 14; ++h)
		m->cand4[POOL_B][m->n_cand4[POOL_B]++] = 0x0a080100 | h;
	for (int h = 2; h <= 31; ++h)		/* ::0 anycast, ::1 server */
		m->cand6[m->n_cand6++] = h;
}

static struct mlease *owner4(struct model *m, uint32_t a)
{
	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s)
			if (m->l[i][s].used && m->l[i][s].a4 == a)
				return &m->l[i][s];
	return NULL;
}

static bool used6(struct model *m, int a6)
{
	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s)
			if (m->l[i][s].used && m->l[i][s].a6 == a6)
				return true;
	return false;
}

static bool used_sub(struct model *m, int b)
{
	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s)
			if (m->l[i][s].used && m->l[i][s].sub == b)
				return true;
	return false;
}

static void id_name(int id, char *buf, size_t len);

/* The engine's order of identities (bytes, then length). */
static int name_cmp(int a, int b)
{
	char x[32], y[32];
	size_t lx, ly;
	int c;

	id_name(a, x, sizeof(x));
	id_name(b, y, sizeof(y));
	lx = strlen(x);
	ly = strlen(y);
	c = memcmp(x, y, lx < ly ? lx : ly);
	return c ? c : (lx > ly) - (lx < ly);
}

/* The oldest held lease on a pool's (or, pool < 0, the router's) list;
 * leases offline since one moment in the engine's order of identities. */
static struct mlease *oldest_held(struct model *m, int pool)
{
	struct mlease *best = NULL;
	int best_id = 0, best_s = 0;

	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s) {
			struct mlease *l = &m->l[i][s];
			int c;

			if (!l->used || l->online)
				continue;
			if (pool >= 0 ? (l->pool != pool || l->static4) : (l->sub < 0 || l->static_sub))
				continue;
			c = best ? name_cmp(i, best_id) : 0;
			if (!best || l->since < best->since ||
			    (l->since == best->since && (c < 0 || (c == 0 && s < best_s)))) {
				best = l;
				best_id = i;
				best_s = s;
			}
		}
	return best;
}

static bool reclaim(struct model *m, int pool)
{
	struct mlease *v = oldest_held(m, pool);

	if (!v || m->now - v->since < HOLD)
		return false;
	memset(v, 0, sizeof(*v));
	return true;
}

static uint32_t free4(struct model *m, int pool)
{
	for (int i = 0; i < m->n_cand4[pool]; ++i)
		if (!owner4(m, m->cand4[pool][i]))
			return m->cand4[pool][i];
	return 0;
}

static int free6(struct model *m)
{
	for (int i = 0; i < m->n_cand6; ++i)
		if (!used6(m, m->cand6[i]))
			return m->cand6[i];
	return -1;
}

static int free_sub(struct model *m)
{
	for (int b = 0; b < 4; ++b)
		if (b != 1 && !used_sub(m, b))
			return b;
	return -1;
}

/* Pass 0: free space only; pass 1: reclaiming.  Mirrors the engine's order:
 * v4 (reclaiming until free), then v6; both or neither. */
static bool take_pool(struct model *m, int pool, bool may_reclaim, struct mlease *out)
{
	uint32_t a4;
	int a6 = -1;

	while (!(a4 = free4(m, pool)))
		if (!may_reclaim || !reclaim(m, pool))
			return false;
	out->a4 = a4;	/* mark before looking for v6 */
	if (pool == POOL_A) {
		while ((a6 = free6(m)) < 0)
			if (!may_reclaim || !reclaim(m, pool)) {
				out->a4 = 0;
				return false;
			}
	}
	out->pool = pool;
	out->a6 = a6;
	return true;
}

/* The slot a connect on the model's instance takes: slot 0 when it is
 * online on another instance (the client moved: its newest session takes
 * the lease over), else the first not online; MAX_SLOTS if none. */
static int model_slot(struct model *m, int id)
{
	int slot = 0;

	if (m->inst >= 0 && m->l[id][0].used && m->l[id][0].online && m->l[id][0].inst != m->inst)
		return 0;
	while (slot < MAX_SLOTS && m->l[id][slot].used && m->l[id][slot].online)
		slot++;
	return slot;
}

static int model_connect(struct model *m, int id, bool group_a, struct mlease **got)
{
	int slot = model_slot(m, id);
	struct mlease *l, fresh;
	bool pools[N_POOLS] = { group_a, true };

	assert_true(slot < MAX_SLOTS);
	l = &m->l[id][slot];
	if (l->used) {
		bool fits = l->static4 || pools[l->pool];

		if (fits) {
			l->online = true;
			l->since = m->now;
			l->inst = m->inst;
			*got = l;
			return 0;
		}
		memset(l, 0, sizeof(*l));
	}
	memset(&fresh, 0, sizeof(fresh));
	fresh.used = true;
	fresh.online = true;
	fresh.slot = slot;
	fresh.since = m->now;
	fresh.sub = -1;
	fresh.pool = -1;
	fresh.inst = m->inst;
	*l = fresh;	/* occupies the slot while choosing, owns nothing yet */
	l->used = false;
	if (id == 0 && slot == 0) {
		fresh.static4 = true;
		fresh.a4 = 0x0a080014;
		fresh.pool = POOL_A;
		while ((fresh.a6 = free6(m)) < 0)
			if (!reclaim(m, POOL_A))
				return -ENOSPC;
	} else {
		bool ok = false;

		for (int pass = 0; pass < 2 && !ok; ++pass)
			for (int p = 0; p < N_POOLS && !ok; ++p)
				if (pools[p]) {
					*l = fresh;	/* the taken v4 must count as used */
					ok = take_pool(m, p, pass == 1, l);
					fresh.a4 = l->a4;
					fresh.a6 = l->a6;
					fresh.pool = l->pool;
					if (!ok)
						memset(l, 0, sizeof(*l));
				}
		if (!ok)
			return -ENOSPC;
	}
	*l = fresh;
	if (id == 1 && slot == 0) {
		l->sub = 1;
		l->static_sub = true;
	} else if (id_is_site(id)) {
		int b = free_sub(m);

		if (b < 0 && reclaim(m, -1))
			b = free_sub(m);
		while (b < 0 && reclaim(m, -1))
			b = free_sub(m);
		if (b < 0) {
			memset(l, 0, sizeof(*l));
			return -ENOSPC;
		}
		l->sub = b;
	}
	*got = l;
	return 0;
}

static int model_disconnect(struct model *m, int id, int slot)
{
	struct mlease *l = &m->l[id][slot];

	if (!l->used || !l->online)
		return -ENOENT;
	if (m->inst >= 0 && l->inst != m->inst)
		return VP_DISCONNECT_MOVED;
	if (slot) {
		memset(l, 0, sizeof(*l));
		return 0;
	}
	l->online = false;
	l->since = m->now;
	return 0;
}

static void model_restart(struct model *m)
{
	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s) {
			if (s && m->l[i][s].used)
				memset(&m->l[i][s], 0, sizeof(m->l[i][s]));
			m->l[i][s].online = false;
		}
}

/* ---- the engine side ------------------------------------------------------ */

struct world {
	char *dir;
	struct vp_config *config;
	struct vp_space *space;
	struct tl_world tw;
};

static void engine_open(struct world *w)
{
	struct vp_space_options o = tl_options(w->config, &w->tw);
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, "fd00:8::1");
	struct vp_store_report report;
	pid_t holder;

	static unsigned opens;

	o.compact_min = 64;	/* compact often: it is part of what is tested */
	/* Every other life of the engine compacts in the store's thread. */
	o.compact_bg_min = opens++ % 2 ? 1 : UINT64_MAX;
	assert_int_equal(vp_space_open(&w->space, &o, &report, &holder), 0);
	assert_false(report.torn || report.corrupt);
	assert_int_equal(vp_space_set_server(w->space, &server), 0);
}

static struct vp_config *world_config(const char *dir)
{
	struct vp_config *c = tl_config_new(dir);
	const char *ex[] = { "10.8.0.5-10.8.0.7", NULL };
	const char *group_a[] = { "group=a", NULL };
	const char *sites[] = { "common_name=site-*", NULL };

	c->hold_time = HOLD;
	tl_add_pool(c, "a", "10.8.0.0/27", NULL, ex, "fd00:8::/123", group_a);
	tl_add_pool(c, "b", "10.8.1.0/28", NULL, NULL, NULL, NULL);
	tl_add_router(c, "r", "10.9.0.0/26", 28, NULL, 0, sites);
	tl_add_static(c, "alice", "10.8.0.20", NULL, NULL, NULL);
	tl_add_static(c, "site-0", NULL, NULL, "10.9.0.16/28", NULL);
	return c;
}

static uint32_t v4(const struct vp_addr *a)
{
	return a->family ? vp_addr_to_v4(a) : 0;
}

static void check_grant(const struct mlease *want, const struct vp_grant *g, uint64_t step)
{
	int sub = g->subnet4.addr.family ? (int)((v4(&g->subnet4.addr) & 0x3f) >> 4) : -1;
	int a6 = g->addr6.family ? (int)(g->addr6.lo & 0xff) : -1;

	if (v4(&g->addr4) != want->a4 || a6 != want->a6 || sub != want->sub ||
	    g->slot != want->slot) {
		fail_msg("step %" PRIu64 ": engine gave %08x/%d/%d slot %u, model %08x/%d/%d slot %d",
			 step, v4(&g->addr4), a6, sub, g->slot, want->a4, want->a6, want->sub,
			 want->slot);
	}
}

struct compare_ctx {
	struct model *m;
	unsigned seen;
	uint8_t owner4[2][32];
	uint8_t owner6[32];
	uint8_t owner_sub[4];
};

static int compare_one(void *ud, const struct vp_lease_rec *r)
{
	struct compare_ctx *c = ud;
	char name[32];
	int id;

	for (id = 0; id < N_IDS; ++id) {
		id_name(id, name, sizeof(name));
		if (strlen(name) == r->identity_len && !memcmp(name, r->identity, r->identity_len))
			break;
	}
	assert_true(id < N_IDS);
	assert_true(r->slot < MAX_SLOTS);
	{
		const struct mlease *l = &c->m->l[id][r->slot];
		uint32_t a = v4(&r->addr4);
		int a6 = r->addr6.family ? (int)(r->addr6.lo & 0xff) : -1;
		int sub = r->subnet4.addr.family ? (int)((v4(&r->subnet4.addr) & 0x3f) >> 4) : -1;

		if (!l->used || l->online != (r->state == VP_LEASE_ONLINE) || l->a4 != a ||
		    l->a6 != a6 || l->sub != sub)
			fail_msg("lease %s/%u differs: engine %08x/%d/%d %s, model %s %08x/%d/%d %s",
				 name, r->slot, a, a6, sub, r->state ? "online" : "held",
				 l->used ? "has" : "lacks", l->a4, l->a6, l->sub,
				 l->online ? "online" : "held");
		/* Nothing held twice (the engine's own view). */
		assert_int_equal(c->owner4[(a >> 8) & 1][a & 31]++, 0);
		if (a6 >= 0)
			assert_int_equal(c->owner6[a6 & 31]++, 0);
		if (sub >= 0)
			assert_int_equal(c->owner_sub[sub]++, 0);
		/* Never an excluded or reserved address, unless reserved for it. */
		assert_false((a & 0xff00) == 0 && (a & 0xff) >= 5 && (a & 0xff) <= 7);
		assert_true((a & 0xff) != 1 || (a & 0xff00));
		assert_true(a != 0x0a080014 || (id == 0 && r->slot == 0));
		assert_true(sub != 1 || (id == 1 && r->slot == 0));
	}
	c->seen++;
	return 0;
}

static void compare_all(struct world *w, struct model *m)
{
	struct compare_ctx c = { .m = m };
	unsigned expect = 0;

	assert_int_equal(vp_space_each(w->space, compare_one, &c), 0);
	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s)
			expect += m->l[i][s].used;
	assert_int_equal(c.seen, expect);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void model__random_operations__engine_matches_model(void **state)
{
	uint64_t ops = env_u64("VP_MODEL_OPS", 200000);
	uint64_t seed = env_u64("VP_MODEL_SEED", 20261125);
	uint64_t connects = 0, rejects = 0, restarts = 0;
	struct model *m = calloc(1, sizeof(*m));
	struct world w = { 0 };

	(void)state;
	rng_state = seed ? seed : 1;
	w.dir = tl_tmpdir();
	w.config = world_config(w.dir);
	w.tw.now = 1000;
	model_init(m);
	m->now = w.tw.now;
	m->inst = -1;
	engine_open(&w);
	for (uint64_t step = 0; step < ops; ++step) {
		uint64_t r = rnd() % 1000;
		int id = (int)(rnd() % N_IDS);
		char name[32];

		w.tw.now = ++m->now;	/* distinct times: the held order is exact */
		if (r < 500) {
			bool group_a = ((id & 1) == 0) ^ (rnd() % 20 == 0);
			struct tl_env env = { { "common_name", "group" },
					      { name, group_a ? "a" : "b" }, 2 };
			struct vp_request req = { .getvar = tl_getvar, .getvar_ud = &env };
			struct mlease *want = NULL;
			struct vp_grant g;
			bool store_failed;
			int slot = 0, mret, eret;

			while (slot < MAX_SLOTS && m->l[id][slot].used && m->l[id][slot].online)
				slot++;
			if (slot == MAX_SLOTS)
				continue;
			id_name(id, name, sizeof(name));
			req.identity = (const uint8_t *)name;
			req.identity_len = strlen(name);
			mret = model_connect(m, id, group_a, &want);
			eret = vp_space_connect(w.space, &req, &g, &store_failed);
			if (mret != eret)
				fail_msg("step %" PRIu64 ": connect %s: engine %d, model %d", step,
					 name, eret, mret);
			if (!eret)
				check_grant(want, &g, step);
			connects++;
			rejects += eret != 0;
		} else if (r < 950) {
			int slot = (int)(rnd() % 4 == 0 ? rnd() % MAX_SLOTS : 0);

			id_name(id, name, sizeof(name));
			assert_int_equal(vp_space_disconnect(w.space, (const uint8_t *)name,
							     strlen(name), (uint16_t)slot, NULL),
					 model_disconnect(m, id, slot));
		} else if (r < 995) {
			m->now += (int64_t)(rnd() % (2 * HOLD));
			w.tw.now = m->now;
		} else {
			vp_space_close(w.space);
			model_restart(m);
			engine_open(&w);
			compare_all(&w, m);
			restarts++;
		}
		if (step % 512 == 0)
			compare_all(&w, m);
	}
	compare_all(&w, m);
	printf("model: seed %" PRIu64 ", %" PRIu64 " operations, %" PRIu64 " connects (%" PRIu64
	       " rejected), %" PRIu64 " restarts, 0 divergences\n",
	       seed, ops, connects, rejects, restarts);
	vp_space_close(w.space);
	vp_config_free(w.config);
	free(w.config);
	tl_rmtree(w.dir);
	free(w.dir);
	free(m);
}

/* ---- several instances ------------------------------------------------------ */

/* The sessions of instance k end: extra ones freed, the others held (since
 * now, or with at_open as they were: a load does not know when). */
static void model_end_sessions(struct model *m, int k, bool at_open)
{
	for (int i = 0; i < N_IDS; ++i)
		for (int s = 0; s < MAX_SLOTS; ++s) {
			struct mlease *l = &m->l[i][s];

			if (!l->used || !l->online || l->inst != k)
				continue;
			if (s) {
				memset(l, 0, sizeof(*l));
				continue;
			}
			l->online = false;
			if (!at_open)
				l->since = m->now;
		}
}

/* Killed instances are noticed: by a change (at_open false) or a load. */
static void model_notice(struct model *m, bool at_open)
{
	for (int k = 0; k < N_INST; ++k)
		if (m->pending[k]) {
			model_end_sessions(m, k, at_open);
			m->pending[k] = false;
		}
}

static int model_release(struct model *m, int id)
{
	struct mlease *l = &m->l[id][0];

	if (!l->used)
		return -ENOENT;
	if (l->online)
		return -EBUSY;
	memset(l, 0, sizeof(*l));
	return 0;
}

/* Import a4 as id's held lease (id is one of the u* clients). */
static int model_import(struct model *m, int id, uint32_t a4)
{
	struct mlease *l = &m->l[id][0];
	int pool = -1, h = (int)(a4 & 0xff), a6 = -1;
	bool allocatable = false;

	if (m->l[id][0].used || m->l[id][1].used)
		return -EEXIST;
	if ((a4 >> 8) == 0x0a0800 && h < 32)
		pool = POOL_A;
	else if ((a4 >> 8) == 0x0a0801 && h < 16)
		pool = POOL_B;
	if (pool < 0)
		return -EDOM;
	for (int i = 0; i < m->n_cand4[pool]; ++i)
		allocatable |= m->cand4[pool][i] == a4;
	if (!allocatable)
		return -EDOM;	/* reserved, the server's, excluded or outside the range */
	if (owner4(m, a4))
		return -EADDRINUSE;
	if (pool == POOL_A && (a6 = free6(m)) < 0)
		return -ENOSPC;
	memset(l, 0, sizeof(*l));
	l->used = true;
	l->since = m->now;
	l->pool = pool;
	l->a4 = a4;
	l->a6 = a6;
	l->sub = -1;
	l->inst = -1;
	return 0;
}

struct multi {
	char *dir;
	struct vp_config *config;
	struct vp_space *space[N_INST];
	struct tl_world tw[N_INST];
	struct vp_server server;
	unsigned opens;
};

static void multi_open(struct multi *w, int k, int64_t now)
{
	struct vp_space_options o = tl_options(w->config, &w->tw[k]);
	struct vp_store_report report;
	char name[8];
	pid_t holder, live;

	w->tw[k].now = now;
	o.compact_min = 64;
	o.compact_bg_min = w->opens++ % 2 ? 1 : UINT64_MAX;
	snprintf(name, sizeof(name), "i%d", k);
	assert_int_equal(vp_space_open(&w->space[k], &o, &report, &holder), 0);
	assert_false(report.torn || report.corrupt);
	assert_int_equal(vp_space_register(w->space[k], name, 0, "", &live), 0);
	assert_int_equal(vp_space_set_server(w->space[k], &w->server), 0);
}

/* The command: a space that is no instance, for one release or import. */
static int multi_command(struct multi *w, int64_t now, int id, bool import, uint32_t a4)
{
	struct tl_world tw = { .now = now };
	struct vp_space_options o = tl_options(w->config, &tw);
	struct vp_store_report report;
	struct vp_space *cmd;
	struct vp_addr a = vp_addr_v4(a4);
	const char *why;
	char name[32];
	pid_t holder;
	int ret;

	o.no_drops = true;
	id_name(id, name, sizeof(name));
	assert_int_equal(vp_space_open(&cmd, &o, &report, &holder), 0);
	assert_int_equal(vp_space_set_server(cmd, &w->server), 0);
	if (import) {
		ret = vp_space_import(cmd, (const uint8_t *)name, strlen(name), &a, NULL, &why);
		assert_true(ret != -EDOM || why != NULL);
	} else {
		ret = vp_space_release(cmd, (const uint8_t *)name, strlen(name));
	}
	vp_space_close(cmd);
	return ret;
}

struct inst_ctx {
	struct model *m;
	int mismatches;
};

static int check_instance(void *ud, const struct vp_lease_rec *r)
{
	struct inst_ctx *c = ud;
	char name[32];

	for (int id = 0; id < N_IDS; ++id) {
		id_name(id, name, sizeof(name));
		if (strlen(name) == r->identity_len && !memcmp(name, r->identity, r->identity_len) &&
		    r->state == VP_LEASE_ONLINE && c->m->l[id][r->slot].inst != (int)r->instance)
			c->mismatches++;
	}
	return 0;
}

static void model__several_instances__engine_matches_model(void **state)
{
	uint64_t ops = env_u64("VP_MODEL_MULTI_OPS", 100000);
	uint64_t seed = env_u64("VP_MODEL_SEED", 20261203);
	uint64_t counts[8] = { 0 };
	struct model *m = calloc(1, sizeof(*m));
	struct multi w = { 0 };

	(void)state;
	rng_state = seed ? seed : 1;
	w.dir = tl_tmpdir();
	w.config = world_config(w.dir);
	w.server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, "fd00:8::1");
	model_init(m);
	m->now = 1000;
	for (int k = 0; k < N_INST; ++k) {
		multi_open(&w, k, m->now);
		m->alive[k] = true;
	}
	for (uint64_t step = 0; step < ops; ++step) {
		uint64_t r = rnd() % 1000;
		int id = (int)(rnd() % N_IDS), k = (int)(rnd() % N_INST);
		char name[32];

		++m->now;	/* distinct times: the held order is exact */
		for (int i = 0; i < N_INST; ++i)
			w.tw[i].now = m->now;
		id_name(id, name, sizeof(name));
		m->inst = k;
		if (r < 450 && m->alive[k]) {
			bool group_a = ((id & 1) == 0) ^ (rnd() % 20 == 0);
			struct tl_env env = { { "common_name", "group" },
					      { name, group_a ? "a" : "b" }, 2 };
			struct vp_request req = { .identity = (const uint8_t *)name,
						  .identity_len = strlen(name), .getvar = tl_getvar,
						  .getvar_ud = &env };
			struct mlease *want = NULL;
			struct vp_grant g;
			bool store_failed;
			int mret, eret;

			model_notice(m, false);
			if (model_slot(m, id) == MAX_SLOTS)
				continue;
			mret = model_connect(m, id, group_a, &want);
			eret = vp_space_connect(w.space[k], &req, &g, &store_failed);
			if (mret != eret)
				fail_msg("step %" PRIu64 ": connect %s on i%d: engine %d, model %d", step,
					 name, k, eret, mret);
			if (!eret)
				check_grant(want, &g, step);
			counts[0]++;
		} else if (r < 850 && m->alive[k]) {
			int slot = (int)(rnd() % 4 == 0 ? rnd() % MAX_SLOTS : 0), mret, eret;

			model_notice(m, false);
			mret = model_disconnect(m, id, slot);
			eret = vp_space_disconnect(w.space[k], (const uint8_t *)name, strlen(name),
						   (uint16_t)slot, NULL);
			if (mret != eret)
				fail_msg("step %" PRIu64 ": disconnect %s/%d on i%d: engine %d, model %d",
					 step, name, slot, k, eret, mret);
			counts[1]++;
		} else if (r < 900) {
			m->now += (int64_t)(rnd() % (2 * HOLD));
		} else if (r < 940) {
			bool import = rnd() % 2;
			uint32_t a4 = 0;
			int mret, eret;

			m->inst = -1;
			if (import) {
				unsigned where = (unsigned)(rnd() % 5);

				id = 9 + (int)(rnd() % (N_IDS - 9));
				id_name(id, name, sizeof(name));
				a4 = where < 3 ? 0x0a080000 | (uint32_t)(rnd() % 32) :
				     where < 4 ? 0x0a080100 | (uint32_t)(rnd() % 16) : 0x0a0a0001;
			}
			model_notice(m, true);	/* the command's open notices */
			mret = import ? model_import(m, id, a4) : model_release(m, id);
			eret = multi_command(&w, m->now, id, import, a4);
			if (mret != eret)
				fail_msg("step %" PRIu64 ": %s %s: engine %d, model %d", step,
					 import ? "import" : "release", name, eret, mret);
			counts[import ? 2 : 3]++;
		} else if (r < 960 && m->alive[k]) {
			vp_space_abandon(w.space[k]);	/* SIGKILL */
			w.space[k] = NULL;
			m->alive[k] = false;
			m->pending[k] = true;
			counts[4]++;
		} else if (r < 975 && m->alive[k]) {
			model_notice(m, false);		/* its stop is a change */
			model_end_sessions(m, k, false);
			vp_space_close(w.space[k]);
			w.space[k] = NULL;
			m->alive[k] = false;
			counts[5]++;
		} else if (!m->alive[k]) {
			model_notice(m, true);		/* a load notices */
			multi_open(&w, k, m->now);
			m->alive[k] = true;
			counts[6]++;
		}
		if (step % 256 == 0 || r >= 940) {
			int live = -1;

			for (int i = 0; i < N_INST; ++i)
				if (m->alive[i])
					live = i;
			if (live >= 0) {
				struct inst_ctx c = { .m = m };
				struct world cw = { .space = w.space[live] };

				model_notice(m, false);
				assert_int_equal(vp_space_sync(w.space[live]), 0);
				compare_all(&cw, m);
				vp_space_each(w.space[live], check_instance, &c);
				if (c.mismatches)
					fail_msg("step %" PRIu64 ": %d online leases on the wrong instance",
						 step, c.mismatches);
			}
		}
	}
	printf("model (%d instances): seed %" PRIu64 ", %" PRIu64 " operations, %" PRIu64
	       " connects, %" PRIu64 " disconnects, %" PRIu64 " imports, %" PRIu64
	       " releases, %" PRIu64 " crashes, %" PRIu64 " stops, %" PRIu64
	       " starts, 0 divergences\n", N_INST, seed, ops, counts[0], counts[1], counts[2],
	       counts[3], counts[4], counts[5], counts[6]);
	for (int k = 0; k < N_INST; ++k)
		vp_space_close(w.space[k]);
	vp_config_free(w.config);
	free(w.config);
	tl_rmtree(w.dir);
	free(w.dir);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model__random_operations__engine_matches_model),
		cmocka_unit_test(model__several_instances__engine_matches_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
