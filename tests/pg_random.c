/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A randomised test of the PostgreSQL store's allocation under concurrency
 * (run by tests/pg_unit.sh, which sets VP_PG_URI).
 *
 * K threads, each its own struct vp_pg and node, do random connects,
 * disconnects, releases and heartbeats for identities of a small set, on a
 * pool of 24 addresses (and IPv6) and a router pool of 16 subnets, with
 * hold-time 0: duplicates (same node), moves (another node), exhaustion and
 * reclaims all happen.  Checked:
 *  - after each operation, against a model: an address or subnet returned
 *    is not one of an online session of another (identity, slot); the slot
 *    is the expected one; a moved lease keeps its address; a disconnect
 *    returns 0, or VP_DISCONNECT_MOVED exactly when the session was taken
 *    over; a release returns what the model says;
 *  - continuously, by a thread querying the database: no address twice,
 *    no overlapping subnets, nothing both free and leased, the usage
 *    counters equal a count of the leases, every address inside the pool;
 *  - at the end: every session the model has online is online in the
 *    database with its session id, and every identity that got a
 *    different address back had been reclaimed as often.
 * Prints "ops=N violations=V" and exits 1 when V > 0 or a call failed.
 * VP_PG_RANDOM_OPS (default 100000) and VP_PG_RANDOM_THREADS (6).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pgstore.h"
#include "testlib.h"

#define N_IDS 40
#define MAX_SESS 16
#define MAX_THREADS 32

struct sess {
	int thread;
	uint16_t slot;
	int64_t session;
	uint32_t a4, sub4;	/* host order; 0: none */
	bool moved;		/* taken over by a session elsewhere */
};

struct ident {
	pthread_mutex_t mu;
	char name[8];
	bool router;
	struct sess s[MAX_SESS];
	int ns;
	bool held;		/* slot 0 held, with held_a4 */
	uint32_t held_a4;
	int losses;		/* came back to another address */
	atomic_int reclaimed;	/* times another connect reclaimed it */
};

static struct ident ids[N_IDS];
static struct vp_config *config;
static atomic_long ops, violations, errors, enospc, reclaims, moves, dups, losses_total;
static long target;
static atomic_bool done;

/* Online addresses and subnets (host order, low 16 bits) -> owner. */
static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;
static int owner4[65536], owner_sub[65536];	/* id * 100 + slot + 1; 0: none */

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "VIOLATION: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	atomic_fetch_add(&violations, 1);
}

static uint32_t v4(const struct vp_addr *a)
{
	return a->family == VP_INET ? vp_addr_to_v4(a) : 0;
}

static void map_claim(int *map, uint32_t a, int who, const char *what, const char *name)
{
	if (!a)
		return;
	pthread_mutex_lock(&map_mu);
	if (map[a & 0xffff] && map[a & 0xffff] != who)
		violation("%s %08x given to %s/%d but online for id %d slot %d", what, a, name,
			  who % 100 - 1, (map[a & 0xffff] - 1) / 100, (map[a & 0xffff] - 1) % 100);
	map[a & 0xffff] = who;
	pthread_mutex_unlock(&map_mu);
}

static void map_drop(int *map, uint32_t a, int who)
{
	if (!a)
		return;
	pthread_mutex_lock(&map_mu);
	if (map[a & 0xffff] == who)
		map[a & 0xffff] = 0;
	pthread_mutex_unlock(&map_mu);
}

static const char *getvar(void *ud, const char *name)
{
	return !strcmp(name, "common_name") ? ud : NULL;
}

struct worker {
	int t;
	struct vp_pg *pg;
	unsigned seed;
	int64_t next_session;
};

static void do_connect(struct worker *w, int i)
{
	struct ident *x = &ids[i];
	struct vp_request req = { (const uint8_t *)x->name, strlen(x->name), getvar, x->name,
				  "192.0.2.1:1194" };
	struct vp_pg_result r;
	int64_t session = ((int64_t)w->t << 40) | ++w->next_session;
	int ret, who;

	if (x->ns == MAX_SESS)
		return;
	ret = vp_pg_connect(w->pg, &req, session, &r);
	if (ret == -ENOSPC) {
		atomic_fetch_add(&enospc, 1);
		return;
	}
	if (ret) {
		fprintf(stderr, "connect %s: %d %s\n", x->name, ret, vp_pg_error(w->pg));
		atomic_fetch_add(&errors, 1);
		return;
	}
	if (r.reclaimed) {
		atomic_fetch_add(&reclaims, 1);
		for (int k = 0; k < N_IDS; ++k)
			if (strlen(ids[k].name) == r.from_len &&
			    !memcmp(ids[k].name, r.from, r.from_len))
				atomic_fetch_add(&ids[k].reclaimed, 1);
	}
	who = i * 100 + r.grant.slot + 1;
	if (r.moved) {
		struct sess *old = NULL;

		atomic_fetch_add(&moves, 1);
		for (int k = 0; k < x->ns; ++k)
			if (x->s[k].slot == 0 && !x->s[k].moved)
				old = &x->s[k];
		if (r.grant.slot != 0 || !old || old->thread == w->t)
			violation("%s: moved, but the model has slot 0 online %s", x->name,
				  !old ? "nowhere" : "on this node");
		if (old) {
			old->moved = true;
			if (old->a4 != v4(&r.grant.addr4))
				violation("%s: moved from %08x to %08x", x->name, old->a4,
					  v4(&r.grant.addr4));
		}
	} else {
		for (int k = 0; k < x->ns; ++k)
			if (x->s[k].slot == r.grant.slot && !x->s[k].moved)
				violation("%s: slot %u given twice", x->name, r.grant.slot);
		if (r.grant.slot == 0 && x->held) {
			/* (the same address, not sticky: reclaimed, then got
			 * back from the free list) */
			if (x->held_a4 != v4(&r.grant.addr4)) {
				x->losses++;
				atomic_fetch_add(&losses_total, 1);
				if (r.grant.sticky)
					violation("%s: sticky, but another address", x->name);
			}
		}
		if (r.grant.slot > 0)
			atomic_fetch_add(&dups, 1);
	}
	if (!r.grant.addr4.family)
		violation("%s: no address", x->name);
	if (x->router && !r.grant.subnet4.addr.family)
		violation("%s: a router without a subnet", x->name);
	map_claim(owner4, v4(&r.grant.addr4), who, "address", x->name);
	map_claim(owner_sub, v4(&r.grant.subnet4.addr) >> 4, who, "subnet", x->name);
	if (r.grant.slot == 0)
		x->held = false;
	x->s[x->ns++] = (struct sess){ w->t, r.grant.slot, session, v4(&r.grant.addr4),
				       v4(&r.grant.subnet4.addr) >> 4, false };
}

static bool slot0_online(const struct ident *x)
{
	for (int k = 0; k < x->ns; ++k)
		if (x->s[k].slot == 0 && !x->s[k].moved)
			return true;
	return false;
}

static void do_disconnect(struct worker *w, int i, int k)
{
	struct ident *x = &ids[i];
	struct sess s = x->s[k];
	int who = i * 100 + s.slot + 1, ret;

	if (!s.moved) {
		map_drop(owner4, s.a4, who);
		map_drop(owner_sub, s.sub4, who);
	}
	ret = vp_pg_disconnect(w->pg, (const uint8_t *)x->name, strlen(x->name), s.slot,
			       s.session, NULL);
	if (ret < 0 && ret != -ENOENT) {
		fprintf(stderr, "disconnect %s: %d %s\n", x->name, ret, vp_pg_error(w->pg));
		atomic_fetch_add(&errors, 1);
		if (!s.moved) {
			map_claim(owner4, s.a4, who, "address", x->name);
			map_claim(owner_sub, s.sub4, who, "subnet", x->name);
		}
		return;
	}
	/* a moved session: VP_DISCONNECT_MOVED while its lease is online
	 * elsewhere, -ENOENT once that session ended too */
	if (ret != (!s.moved ? 0 : slot0_online(x) ? VP_DISCONNECT_MOVED : -ENOENT))
		violation("%s slot %u: disconnect %d, model says %s", x->name, s.slot, ret,
			  s.moved ? "moved" : "online");
	if (!s.moved && s.slot == 0) {
		x->held = true;
		x->held_a4 = s.a4;
	}
	x->s[k] = x->s[--x->ns];
}

static void do_release(struct worker *w, int i)
{
	struct ident *x = &ids[i];
	bool online = false;
	int ret;

	for (int k = 0; k < x->ns; ++k)
		if (!x->s[k].moved)
			online = true;	/* any session of it */
	ret = vp_pg_release(w->pg, (const uint8_t *)x->name, strlen(x->name));
	if (online ? ret != -EBUSY : x->held ? ret != 0 && ret != -ENOENT : ret != -ENOENT) {
		if (ret == -EIO || ret == -ETIMEDOUT || ret == -ECONNREFUSED) {
			fprintf(stderr, "release %s: %d %s\n", x->name, ret, vp_pg_error(w->pg));
			atomic_fetch_add(&errors, 1);
			return;
		}
		violation("%s: release %d (online %d, held %d)", x->name, ret, online, x->held);
	}
	if (!online)
		x->held = false;
}

static void on_ended(void *ud, const struct vp_pg_ended *e)
{
	(void)ud;
	violation("heartbeat ended a session of a live node %s", e->node);
}

static void *work(void *arg)
{
	struct worker *w = arg;

	while (atomic_load(&ops) < target) {
		int i = (int)(rand_r(&w->seed) % N_IDS), dice = (int)(rand_r(&w->seed) % 100), mine = -1;
		struct ident *x = &ids[i];

		if (dice < 2) {
			if (vp_pg_heartbeat(w->pg, on_ended, NULL)) {
				fprintf(stderr, "heartbeat: %s\n", vp_pg_error(w->pg));
				atomic_fetch_add(&errors, 1);
			}
			atomic_fetch_add(&ops, 1);
			continue;
		}
		pthread_mutex_lock(&x->mu);
		for (int k = 0; k < x->ns; ++k)
			if (x->s[k].thread == w->t) {
				mine = k;
				if (rand_r(&w->seed) % 2)
					break;
			}
		if (dice < 8)
			do_release(w, i);
		else if (mine >= 0 && dice < 55)
			do_disconnect(w, i, mine);
		else
			do_connect(w, i);
		pthread_mutex_unlock(&x->mu);
		atomic_fetch_add(&ops, 1);
	}
	return NULL;
}

static long long q1(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);
	long long v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, "check: %s: %s\n", q, PQresultErrorMessage(r));
	PQclear(r);
	return v;
}

static const char *const checks[] = {
	"SELECT count(*) FROM (SELECT addr4 FROM vpnpool.lease WHERE addr4 IS NOT NULL"
	" GROUP BY 1 HAVING count(*) > 1) x",
	"SELECT count(*) FROM (SELECT addr6 FROM vpnpool.lease WHERE addr6 IS NOT NULL"
	" GROUP BY 1 HAVING count(*) > 1) x",
	"SELECT count(*) FROM vpnpool.lease a JOIN vpnpool.lease b ON a.subnet4 && b.subnet4"
	" AND (a.identity, a.slot) <> (b.identity, b.slot)",
	"SELECT count(*) FROM vpnpool.free f WHERE EXISTS (SELECT 1 FROM vpnpool.lease l"
	" WHERE l.addr4 = f.value OR l.addr6 = f.value OR l.subnet4 = f.value)",
	"SELECT count(*) FROM vpnpool.area a WHERE vpnpool.in_use(a.id) <> (SELECT count(*)"
	" FROM vpnpool.lease l WHERE CASE WHEN a.router THEN l.router = a.id"
	" AND NOT l.static_subnet ELSE l.pool = a.id AND NOT l.static4 END)",
	"SELECT count(*) FROM vpnpool.lease WHERE NOT (addr4 BETWEEN '10.8.1.10' AND '10.8.1.33')"
	" OR (subnet4 IS NOT NULL AND NOT subnet4 <<= '10.9.0.0/24')",
};

static long db_checks(PGconn *c)
{
	long bad = 0;

	for (size_t k = 0; k < sizeof(checks) / sizeof(*checks); ++k) {
		long long v = q1(c, checks[k]);

		if (v != 0) {
			violation("database: %lld from %s", v, checks[k]);
			bad++;
		}
	}
	return bad;
}

static void *checker(void *arg)
{
	PGconn *c = PQconnectdb(arg);
	long rounds = 0;

	while (!atomic_load(&done)) {
		struct timespec ts = { 0, 20000000 };

		db_checks(c);
		rounds++;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "pg_random: %ld rounds of database checks\n", rounds);
	PQfinish(c);
	return NULL;
}

int main(void)
{
	const char *uri = getenv("VP_PG_URI");
	int nthreads = getenv("VP_PG_RANDOM_THREADS") ? atoi(getenv("VP_PG_RANDOM_THREADS")) : 6;
	struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS], ck;
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, "fd00:8::1");
	PGconn *admin;
	struct timespec t0, t1;
	double secs;
	long final_bad = 0;

	if (!uri) {
		fprintf(stderr, "pg_random: VP_PG_URI not set: run it through tests/pg_unit.sh\n");
		return 77;
	}
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 6;
	target = getenv("VP_PG_RANDOM_OPS") ? atol(getenv("VP_PG_RANDOM_OPS")) : 100000;
	admin = PQconnectdb(uri);
	PQclear(PQexec(admin, "SET client_min_messages = warning"));
	PQclear(PQexec(admin, "DROP SCHEMA IF EXISTS vpnpool CASCADE"));

	config = tl_config_new("/nonexistent");
	config->store = strdup(uri);
	config->store_timeout_ms = 10000;
	config->node_timeout = 60;
	config->hold_time = 0;
	tl_add_pool(config, "p", "10.8.1.0/24", "10.8.1.10-10.8.1.33", NULL, "fd00:8::/64", NULL);
	tl_add_router(config, "r", "10.9.0.0/24", 28, NULL, 0,
		      (const char *const[]){ "common_name=r*", NULL });
	for (int i = 0; i < N_IDS; ++i) {
		pthread_mutex_init(&ids[i].mu, NULL);
		ids[i].router = i % 5 == 0;
		snprintf(ids[i].name, sizeof(ids[i].name), "%c%d", ids[i].router ? 'r' : 'c', i);
	}
	for (int t = 0; t < nthreads; ++t) {
		char node[16];

		snprintf(node, sizeof(node), "n%d", t);
		w[t] = (struct worker){ .t = t, .seed = 12345u + (unsigned)t * 7919u };
		if (getenv("VP_PG_RANDOM_SEED"))
			w[t].seed += (unsigned)atoi(getenv("VP_PG_RANDOM_SEED"));
		if (vp_pg_open(&w[t].pg, &(struct vp_pg_options){ .config = config, .node = node,
				      .instance = "i", .create_schema = true }) ||
		    vp_pg_start(w[t].pg, &server, NULL, NULL)) {
			fprintf(stderr, "pg_random: start: %s\n", vp_pg_error(w[t].pg));
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&ck, NULL, checker, (void *)uri);
	for (int t = 0; t < nthreads; ++t)
		pthread_create(&th[t], NULL, work, &w[t]);
	for (int t = 0; t < nthreads; ++t)
		pthread_join(th[t], NULL);
	atomic_store(&done, true);
	pthread_join(ck, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	/* The model's online sessions are the database's. */
	for (int i = 0; i < N_IDS; ++i) {
		struct ident *x = &ids[i];

		if (x->losses > atomic_load(&x->reclaimed))
			violation("%s came back to another address %d times, reclaimed %d",
				  x->name, x->losses, atomic_load(&x->reclaimed));
		for (int k = 0; k < x->ns; ++k) {
			char q[256];

			if (x->s[k].moved)
				continue;
			snprintf(q, sizeof(q), "SELECT count(*) FROM vpnpool.lease WHERE"
				 " identity = '%s' AND slot = %u AND online AND session = %" PRId64,
				 x->name, x->s[k].slot, x->s[k].session);
			if (q1(admin, q) != 1)
				violation("%s slot %u: online in the model, not in the database",
					  x->name, x->s[k].slot);
		}
		while (x->ns)
			do_disconnect(&w[x->s[x->ns - 1].thread], i, x->ns - 1);
	}
	if (q1(admin, "SELECT count(*) FROM vpnpool.lease WHERE online") != 0)
		violation("online leases left after every session ended");
	final_bad = db_checks(admin);
	printf("pg_random: threads=%d seconds=%.1f ops/s=%.0f connects-refused=%ld reclaims=%ld "
	       "moves=%ld duplicates=%ld came-back-elsewhere=%ld errors=%ld\n", nthreads, secs,
	       (double)atomic_load(&ops) / secs, atomic_load(&enospc), atomic_load(&reclaims),
	       atomic_load(&moves), atomic_load(&dups), atomic_load(&losses_total),
	       atomic_load(&errors));
	printf("ops=%ld violations=%ld\n", atomic_load(&ops), atomic_load(&violations));
	for (int t = 0; t < nthreads; ++t)
		vp_pg_close(w[t].pg);
	PQfinish(admin);
	vp_config_free(config);
	free(config);
	(void)final_bad;
	return atomic_load(&violations) || atomic_load(&errors) ? 1 : 0;
}
