/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "blocks.h"
#include "layout.h"
#include "siphash.h"
#include "view.h"

/* A lease kept compactly: a million of them fit in about 100 MB. */
enum {
	HAS_ADDR4 = 1 << 0, HAS_ADDR6 = 1 << 1, HAS_SUBNET4 = 1 << 2, HAS_SUBNET6 = 1 << 3,
	STATIC4 = 1 << 4, STATIC_SUBNET = 1 << 5, LIVE = 1 << 6, ONLINE = 1 << 7,
};

/* 80 bytes: every byte of the entries is memory the kernel must clear. */
struct entry {
	uint32_t id_off, real_off;	/* into the arena (at most 4 GiB) */
	int64_t created, since;
	uint64_t addr6[2], subnet6[2];
	uint32_t sessions, addr4, subnet4;
	uint16_t id_len, slot;
	int16_t pool, router;
	uint8_t real_len, flags, subnet4_len, subnet6_len;	/* flags: ONLINE is the state */
};

/* Not core/htab.h: slots of 8 bytes (an entry index and 32 bits of hash),
 * half of htab's, for the command's replay of millions of leases, which
 * never removes from the table. */
struct slot_ref {
	uint32_t index1;		/* entry index + 1; 0: empty */
	uint32_t hash;
};

struct vp_view {
	const struct vp_config *config;
	struct entry *entries;
	size_t n, cap, live;
	struct slot_ref *table;
	size_t table_size;		/* power of two */
	char *arena;
	size_t arena_len, arena_cap;
	uint64_t key[2];
	struct vp_pool_usage *pools, *routers;
	uint32_t *order;
	struct ahead *ahead;		/* records not applied yet */
};

/* ---- sizes ------------------------------------------------------------- */

/* Sizes come from the allocators the engine builds (core/layout.c). */
int vp_view_pool_size(const struct vp_config *config, size_t pool, enum vp_topology topology,
		      const struct vp_server *server, uint64_t *size)
{
	struct vp_blocks *b;
	int ret;

	*size = 0;
	ret = vp_layout_pool4(config, pool, server, topology == VP_TOPO_NET30 ? 30 : 32, &b);
	if (ret)
		return ret == -ENOSPC ? 0 : ret;
	*size = vp_blocks_size(b);
	vp_blocks_free(b);
	return 0;
}

int vp_view_router_size(const struct vp_config *config, size_t router,
			const struct vp_server *server, uint64_t *size)
{
	bool v4 = config->routers[router].network.addr.family != 0;
	struct vp_blocks *b;
	int ret;

	*size = 0;
	ret = vp_layout_router(config, router, v4 ? VP_INET : VP_INET6, server, &b);
	if (ret || !b)
		return ret == -ENOSPC ? 0 : ret;
	*size = vp_blocks_size(b);
	vp_blocks_free(b);
	return 0;
}

/* ---- the lease table ------------------------------------------------------ */

static bool arena_add(struct vp_view *v, const void *data, size_t len, uint32_t *off)
{
	if (v->arena_len + len > UINT32_MAX)
		return false;
	if (v->arena_len + len > v->arena_cap) {
		size_t cap = v->arena_cap ? v->arena_cap : 1 << 16;
		char *a;

		while (cap < v->arena_len + len)
			cap *= 2;
		a = realloc(v->arena, cap);
		if (!a)
			return false;
		v->arena = a;
		v->arena_cap = cap;
	}
	memcpy(v->arena + v->arena_len, data, len);
	*off = (uint32_t)v->arena_len;
	v->arena_len += len;
	return true;
}

static uint64_t key_hash(const struct vp_view *v, const uint8_t *id, size_t len, uint16_t slot)
{
	return vp_siphash13(v->key, id, len) ^ ((uint64_t)slot * 0x9e3779b97f4a7c15ull);
}

static int table_grow(struct vp_view *v)
{
	size_t size = v->table_size ? v->table_size * 2 : 1024;
	struct slot_ref *t = calloc(size, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < v->table_size; ++i) {
		size_t at = v->table[i].hash & (size - 1);

		if (!v->table[i].index1)
			continue;
		while (t[at].index1)
			at = (at + 1) & (size - 1);
		t[at] = v->table[i];
	}
	free(v->table);
	v->table = t;
	v->table_size = size;
	return 0;
}

/* The table slot of (id, slot): the entry's or the empty one to fill. */
static struct slot_ref *table_find(struct vp_view *v, const uint8_t *id, size_t len,
				   uint16_t slot, uint32_t h)
{
	size_t at = h & (v->table_size - 1);

	for (;; at = (at + 1) & (v->table_size - 1)) {
		struct slot_ref *s = &v->table[at];
		const struct entry *e;

		if (!s->index1)
			return s;
		e = &v->entries[s->index1 - 1];
		if (s->hash == h && e->slot == slot && e->id_len == len &&
		    !memcmp(v->arena + e->id_off, id, len))
			return s;
	}
}

static struct entry *entry_get(struct vp_view *v, const uint8_t *id, size_t len, uint16_t slot,
			       uint32_t h)
{
	struct slot_ref *s;
	struct entry *e;

	if ((v->n + 1) * 2 > v->table_size && table_grow(v))
		return NULL;
	s = table_find(v, id, len, slot, h);
	if (s->index1)
		return &v->entries[s->index1 - 1];
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		struct entry *n = realloc(v->entries, cap * sizeof(*n));

		if (!n)
			return NULL;
		v->entries = n;
		v->cap = cap;
	}
	e = &v->entries[v->n];
	memset(e, 0, sizeof(*e));
	if (!arena_add(v, id, len, &e->id_off))
		return NULL;
	e->id_len = (uint16_t)len;
	e->slot = slot;
	s->index1 = (uint32_t)++v->n;
	s->hash = h;
	return e;
}

static void put_addr6(uint64_t out[2], const struct vp_addr *a)
{
	out[0] = a->hi;
	out[1] = a->lo;
}

static int put_now(struct vp_view *v, const struct vp_lease_rec *rec, uint32_t h)
{
	size_t real_len = strnlen(rec->real, VP_REAL_MAX - 1);
	struct entry *e;

	e = entry_get(v, rec->identity, rec->identity_len, rec->slot, h);
	if (!e)
		return -ENOMEM;
	if (!(e->flags & LIVE))
		v->live++;
	if (e->real_len != real_len || memcmp(v->arena + e->real_off, rec->real, real_len)) {
		if (!arena_add(v, rec->real, real_len, &e->real_off))
			return -ENOMEM;
		e->real_len = (uint8_t)real_len;
	}
	e->flags = LIVE | (rec->state == VP_LEASE_ONLINE ? ONLINE : 0);
	e->sessions = rec->sessions;
	e->created = rec->created;
	e->since = rec->since;
	if (rec->addr4.family) {
		e->flags |= HAS_ADDR4;
		e->addr4 = vp_addr_to_v4(&rec->addr4);
	}
	if (rec->addr6.family) {
		e->flags |= HAS_ADDR6;
		put_addr6(e->addr6, &rec->addr6);
	}
	if (rec->subnet4.addr.family) {
		e->flags |= HAS_SUBNET4;
		e->subnet4 = vp_addr_to_v4(&rec->subnet4.addr);
		e->subnet4_len = rec->subnet4.len;
	}
	if (rec->subnet6.addr.family) {
		e->flags |= HAS_SUBNET6;
		put_addr6(e->subnet6, &rec->subnet6.addr);
		e->subnet6_len = rec->subnet6.len;
	}
	return 0;
}

static void del_now(struct vp_view *v, const uint8_t *id, size_t len, uint16_t slot, uint32_t h)
{
	struct slot_ref *s;

	if (!v->table_size)
		return;
	s = table_find(v, id, len, slot, h);
	if (s->index1 && (v->entries[s->index1 - 1].flags & LIVE)) {
		v->entries[s->index1 - 1].flags = 0;
		v->live--;
	}
}

/*
 * Records are applied AHEAD records late: each one's table slot is fetched
 * into the cache when it arrives and used when it is applied, so the replay
 * does not wait on a cache miss per record.  They are applied in order.
 */
#define AHEAD 8

struct pending {
	struct vp_lease_rec rec;	/* identity points at id */
	uint32_t hash;
	bool del;
	uint8_t id[VP_IDENTITY_MAX];
};

struct ahead {
	struct pending p[AHEAD];
	size_t head, n;
};

static int apply_oldest(struct vp_view *v)
{
	struct ahead *a = v->ahead;
	struct pending *p = &a->p[a->head];

	a->head = (a->head + 1) % AHEAD;
	a->n--;
	if (p->del) {
		del_now(v, p->rec.identity, p->rec.identity_len, p->rec.slot, p->hash);
		return 0;
	}
	return put_now(v, &p->rec, p->hash);
}

static int drain(struct vp_view *v)
{
	int ret = 0;

	while (v->ahead && v->ahead->n && !ret)
		ret = apply_oldest(v);
	return ret;
}

static int enqueue(struct vp_view *v, const struct vp_lease_rec *rec, const uint8_t *id,
		   size_t len, uint16_t slot)
{
	struct ahead *a = v->ahead;
	struct pending *p;
	uint32_t h = (uint32_t)key_hash(v, id, len, slot);
	int ret;

	if (v->table_size)
		__builtin_prefetch(&v->table[h & (v->table_size - 1)]);
	if (a->n == AHEAD) {
		ret = apply_oldest(v);
		if (ret)
			return ret;
	}
	p = &a->p[(a->head + a->n++) % AHEAD];
	p->hash = h;
	p->del = !rec;
	if (rec)
		p->rec = *rec;
	memcpy(p->id, id, len);
	p->rec.identity = p->id;
	p->rec.identity_len = len;
	p->rec.slot = slot;
	return 0;
}

static int replay_put(void *ud, const struct vp_lease_rec *rec)
{
	if (rec->identity_len > VP_IDENTITY_MAX)
		return 0;
	return enqueue(ud, rec, rec->identity, rec->identity_len, rec->slot);
}

static int replay_del(void *ud, const uint8_t *id, size_t len, uint16_t slot)
{
	if (len > VP_IDENTITY_MAX)
		return 0;
	return enqueue(ud, NULL, id, len, slot);
}

/* ---- placing leases in pools --------------------------------------------- */

static void entry_to_rec(const struct vp_view *v, const struct entry *e, struct vp_lease_rec *r)
{
	static const struct vp_addr none;

	r->identity = (const uint8_t *)v->arena + e->id_off;
	r->identity_len = e->id_len;
	r->slot = e->slot;
	r->state = (e->flags & ONLINE) ? VP_LEASE_ONLINE : VP_LEASE_HELD;
	r->sessions = e->sessions;
	r->created = e->created;
	r->since = e->since;
	memcpy(r->real, v->arena + e->real_off, e->real_len);
	r->real[e->real_len] = '\0';
	r->addr4 = (e->flags & HAS_ADDR4) ? vp_addr_v4(e->addr4) : none;
	r->addr6 = none;
	if (e->flags & HAS_ADDR6)
		r->addr6 = (struct vp_addr){ e->addr6[0], e->addr6[1], VP_INET6 };
	r->subnet4 = (struct vp_prefix){ none, 0 };
	if (e->flags & HAS_SUBNET4)
		r->subnet4 = (struct vp_prefix){ vp_addr_v4(e->subnet4), e->subnet4_len };
	r->subnet6 = (struct vp_prefix){ none, 0 };
	if (e->flags & HAS_SUBNET6)
		r->subnet6 = (struct vp_prefix){
			{ e->subnet6[0], e->subnet6[1], VP_INET6 }, e->subnet6_len
		};
}

static int pool_of(const struct vp_config *c, const struct vp_addr *a)
{
	return vp_layout_pool_of(c, a);
}

static int router_of(const struct vp_config *c, const struct vp_prefix *p)
{
	return vp_layout_router_of(c, p);
}

static const struct vp_static_config *static_of(const struct vp_config *c, const uint8_t *id,
						size_t len)
{
	for (size_t i = 0; i < c->n_statics; ++i)
		if (strlen(c->statics[i].identity) == len && !memcmp(c->statics[i].identity, id, len))
			return &c->statics[i];
	return NULL;
}

static void count(struct vp_pool_usage *u, uint8_t flags)
{
	if (flags & ONLINE)
		u->online++;
	else
		u->held++;
}

/* Which pools a lease belongs to, and its part in their figures. */
static void place(struct vp_view *v, struct entry *e)
{
	const struct vp_config *c = v->config;
	struct vp_lease_rec r;
	const struct vp_static_config *st = NULL;
	int pool, router;

	entry_to_rec(v, e, &r);
	if (c->n_statics && r.slot == 0)
		st = static_of(c, r.identity, r.identity_len);
	pool = pool_of(c, r.addr4.family ? &r.addr4 : &r.addr6);
	router = router_of(c, r.subnet4.addr.family ? &r.subnet4 : &r.subnet6);
	if (st && st->has_address && r.addr4.family && vp_addr_eq(&st->address, &r.addr4))
		e->flags |= STATIC4;
	if (st && ((st->has_subnet && r.subnet4.addr.family && r.subnet4.len == st->subnet.len &&
		    vp_addr_eq(&st->subnet.addr, &r.subnet4.addr)) ||
		   (st->has_subnet6 && r.subnet6.addr.family && r.subnet6.len == st->subnet6.len &&
		    vp_addr_eq(&st->subnet6.addr, &r.subnet6.addr))))
		e->flags |= STATIC_SUBNET;
	e->pool = (int16_t)pool;
	e->router = (int16_t)router;
	if (pool >= 0 && !(e->flags & STATIC4))
		count(&v->pools[pool], e->flags);
	if (router >= 0 && !(e->flags & STATIC_SUBNET))
		count(&v->routers[router], e->flags);
}

static int figures(struct vp_view *v, const struct vp_server *server)
{
	const struct vp_config *c = v->config;
	int ret;

	for (size_t i = 0; i < c->n_pools; ++i) {
		ret = vp_view_pool_size(c, i, server ? server->topology : c->topology, server,
					&v->pools[i].size);
		if (ret)
			return ret;
		v->pools[i].usable = true;
	}
	for (size_t i = 0; i < c->n_routers; ++i) {
		ret = vp_view_router_size(c, i, server, &v->routers[i].size);
		if (ret)
			return ret;
		v->routers[i].usable = true;
	}
	for (size_t i = 0; i < v->n; ++i)
		if (v->entries[i].flags & LIVE)
			place(v, &v->entries[i]);
	return 0;
}

static void huge_pages(void *p, size_t len)
{
	uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;

	if (len > 8192)
		madvise((void *)start, len - (start - (uintptr_t)p), MADV_HUGEPAGE);
}

/* Room for the leases a journal of its size can hold, so that the replay
 * does not copy and rehash as it grows (records take 60 bytes and more). */
static int presize(struct vp_view *v, const char *dir)
{
	uint64_t bytes;
	size_t est, size = 1024;

	/* No journal, or one not read: vp_store_read() says why. */
	if (vp_store_journal_size(dir, &bytes) || bytes < 65536)
		return 0;
	est = (size_t)(bytes / 60);
	if (est > (1u << 26))
		est = 1u << 26;
	v->entries = malloc(est * sizeof(*v->entries));
	if (!v->entries)
		return -ENOMEM;
	v->cap = est;
	while (size < est)	/* est is high: records mostly take more than 60 bytes */
		size *= 2;
	v->table = calloc(size, sizeof(*v->table));
	if (!v->table)
		return -ENOMEM;
	v->table_size = size;
	/* Identities and real addresses are parts of the records: the journal's
	 * size is room enough (only what is used is ever touched). */
	if (bytes <= UINT32_MAX) {
		v->arena = malloc((size_t)bytes);
		if (!v->arena)
			return -ENOMEM;
		v->arena_cap = (size_t)bytes;
		huge_pages(v->arena, v->arena_cap);
	}
	/* Huge pages: fewer faults and TLB misses for a table read at random. */
	huge_pages(v->entries, est * sizeof(*v->entries));
	huge_pages(v->table, size * sizeof(*v->table));
	return 0;
}

int vp_view_open(struct vp_view **out, const struct vp_config *config,
		 const struct vp_server *server, struct vp_store_report *report)
{
	struct vp_view *v = calloc(1, sizeof(*v));
	struct vp_store_replay replay = { .put = replay_put, .del = replay_del, .ud = NULL };
	int ret;

	*out = NULL;
	if (!v)
		return -ENOMEM;
	v->config = config;
	replay.ud = v;
	if (getrandom(v->key, sizeof(v->key), 0) != sizeof(v->key))
		v->key[0] = (uint64_t)(uintptr_t)v;
	v->pools = calloc(config->n_pools + 1, sizeof(*v->pools));
	v->routers = calloc(config->n_routers + 1, sizeof(*v->routers));
	if (!v->pools || !v->routers) {
		ret = -ENOMEM;
		goto out_free;
	}
	v->ahead = calloc(1, sizeof(*v->ahead));
	ret = v->ahead ? presize(v, config->state_dir) : -ENOMEM;
	if (!ret)
		ret = vp_store_read(config->state_dir, &replay, report);
	if (ret == -ENOENT)
		ret = 0;
	if (!ret)
		ret = drain(v);
	free(v->ahead);
	v->ahead = NULL;
	if (!ret)
		ret = figures(v, server);
	if (ret)
		goto out_free;
	*out = v;
	return 0;

out_free:
	vp_view_free(v);
	return ret;
}

void vp_view_free(struct vp_view *v)
{
	if (!v)
		return;
	free(v->entries);
	free(v->table);
	free(v->arena);
	free(v->pools);
	free(v->routers);
	free(v->order);
	free(v->ahead);
	free(v);
}

size_t vp_view_leases(const struct vp_view *v)
{
	return v->live;
}

static void finish_usage(const struct vp_pool_usage *in, struct vp_pool_usage *u)
{
	uint64_t used = in->online + in->held;

	*u = *in;
	u->free = used < in->size ? in->size - used : 0;
}

void vp_view_pool_usage(const struct vp_view *v, size_t pool, struct vp_pool_usage *u)
{
	finish_usage(&v->pools[pool], u);
}

void vp_view_router_usage(const struct vp_view *v, size_t router, struct vp_pool_usage *u)
{
	finish_usage(&v->routers[router], u);
}

/* ---- ordered visit ---------------------------------------------------------- */

static int order_cmp(const void *a, const void *b, void *ud)
{
	const struct vp_view *sort_view = ud;
	const struct entry *x = &sort_view->entries[*(const uint32_t *)a];
	const struct entry *y = &sort_view->entries[*(const uint32_t *)b];
	unsigned px = (unsigned)(int)x->pool, py = (unsigned)(int)y->pool;	/* -1 last */
	size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
	int c;

	if (px != py)
		return px < py ? -1 : 1;
	if ((x->flags & HAS_ADDR4) != (y->flags & HAS_ADDR4))
		return (x->flags & HAS_ADDR4) ? -1 : 1;
	if (x->addr4 != y->addr4)
		return x->addr4 < y->addr4 ? -1 : 1;
	c = memcmp(sort_view->arena + x->id_off, sort_view->arena + y->id_off, n);
	if (c || x->id_len != y->id_len)
		return c ? c : x->id_len < y->id_len ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

static int visit(const struct vp_view *v, const struct entry *e,
		 int (*fn)(void *ud, const struct vp_view_lease *l), void *ud)
{
	struct vp_view_lease l;

	entry_to_rec(v, e, &l.rec);
	l.pool = e->pool;
	l.router = e->router;
	l.static4 = (e->flags & STATIC4) != 0;
	l.static_subnet = (e->flags & STATIC_SUBNET) != 0;
	return fn(ud, &l);
}

int vp_view_each(struct vp_view *v, bool sorted,
		 int (*fn)(void *ud, const struct vp_view_lease *l), void *ud)
{
	size_t n = 0;
	int ret;

	if (!sorted) {
		for (size_t i = 0; i < v->n; ++i) {
			if (!(v->entries[i].flags & LIVE))
				continue;
			ret = visit(v, &v->entries[i], fn, ud);
			if (ret)
				return ret;
		}
		return 0;
	}
	if (!v->order) {
		v->order = malloc((v->live + 1) * sizeof(*v->order));
		if (!v->order)
			return -ENOMEM;
		for (size_t i = 0; i < v->n; ++i)
			if (v->entries[i].flags & LIVE)
				v->order[n++] = (uint32_t)i;
		qsort_r(v->order, n, sizeof(*v->order), order_cmp, v);
	}
	for (size_t i = 0; i < v->live; ++i) {
		ret = visit(v, &v->entries[v->order[i]], fn, ud);
		if (ret)
			return ret;
	}
	return 0;
}
