/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lease table and the policy of openvpn-plugin-vpnpool(8) over the block allocators.
 *
 * A lease is keyed by (identity, slot).  Slot 0 is the identity's sticky
 * lease; a second live session of one identity (duplicate-cn) gets slot 1, 2,
 * ... with addresses of its own, freed when it ends.  Held leases of a pool
 * sit on that pool's list in the order they went offline, so the one to
 * reclaim is always the head: no scans.
 *
 * Several processes (instances) share the table through the store: every
 * change runs between ops->begin (the store's mutex; what the others wrote
 * since is replayed into the table: replay_put, replay_del) and ops->end.
 * An online lease carries the slot of its instance and sits on that
 * instance's list (link[LINK_POOL]: online leases are on no held list), so
 * that when an instance is found dead its sessions are at hand.  A lease
 * another instance wrote that does not fit this process's config is kept
 * in the table unplaced (pool -1) while another instance lives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "blocks.h"
#include "htab.h"
#include "layout.h"
#include "siphash.h"
#include "space.h"
#include "store.h"

struct lease;

/* An intrusive doubly linked list of held leases, oldest first. */
struct held_list {
	struct lease *head, *tail;
};

struct held_link {
	struct lease *prev, *next;
};

enum { LINK_POOL, LINK_ROUTER, LINK_COUNT };

enum lease_flags {
	LEASE_STATIC4 = 1 << 0,
	LEASE_STATIC6 = 1 << 1,
	LEASE_STATIC_SUBNET4 = 1 << 2,
	LEASE_STATIC_SUBNET6 = 1 << 3,
	LEASE_LINKED = 1 << 4,		/* on a held list; << LINK_ROUTER for the other */
	LEASE_ON_INSTANCE = 1 << 6,	/* online, on its instance's list (LINK_POOL) */
	LEASE_MARK = 1 << 7,		/* scratch: seen while reading a journal again */
};

/* The client's real address, "ip:port" or "[ip6]:port", kept as 20 bytes
 * rather than text.  family 0: none (or a form OpenVPN never gives). */
struct real_addr {
	uint8_t family;			/* AF_INET, AF_INET6 or 0 */
	bool has_port;
	uint16_t port;
	uint8_t ip[16];
};

/* Which addresses a lease has (struct lease's "has"). */
enum lease_has {
	HAS_ADDR4 = 1 << 0,
	HAS_ADDR6 = 1 << 1,
	HAS_SUBNET4 = 1 << 2,
	HAS_SUBNET6 = 1 << 3,
};

/* The IPv6 parts of a lease, apart: a lease of an IPv4-only pool has none. */
struct lease_v6 {
	uint8_t addr[16], subnet[16];
	uint8_t subnet_len;
};

/*
 * Kept small: a million of them must fit in about 130 MiB.  With a short
 * identity (up to 16 bytes) a lease is one 128-byte block of malloc's; an
 * IPv6 address or subnet adds a 48-byte one.  The addresses are read and
 * written through lease_addrs() and lease_set_addrs() only.
 */
struct lease {
	struct held_link link[LINK_COUNT];
	int64_t created, since;
	uint32_t sessions;
	uint16_t slot;
	uint8_t state;
	uint8_t flags;
	int16_t pool, router;		/* indexes, -1: none */
	uint16_t identity_len;
	uint16_t instance;		/* slot of its (last) instance, VP_INSTANCE_NONE */
	uint32_t addr4, subnet4;	/* host order; valid as "has" says */
	struct lease_v6 *v6;		/* NULL unless HAS_ADDR6 or HAS_SUBNET6 */
	uint8_t has;			/* enum lease_has */
	uint8_t subnet4_len;
	struct real_addr real;
	uint8_t identity[];
};

/* A lease's addresses as the rest of the code sees them (family 0: none). */
struct lease_addrs {
	struct vp_addr addr4, addr6;
	struct vp_prefix subnet4, subnet6;
};

/* A pool or router pool at run time. */
struct area {
	const char *name;
	struct vp_blocks *v4, *v6;
	struct held_list held;
	uint64_t online, held_count;	/* dynamic leases, by state */
	size_t warn_level;		/* thresholds at or below the fill */
	bool usable;
	bool matched;			/* scratch during one connect */
};

struct vp_space {
	struct vp_space_options opts;
	const struct vp_config *config;
	const struct vp_store_ops *ops;
	struct vp_store *store;
	struct held_list *inst_online;	/* VP_INSTANCE_MAX: online leases by instance */
	uint32_t *inst_count;		/* VP_INSTANCE_MAX: how many */
	unsigned slots_online;		/* slots whose count is not 0 */
	int my_slot;			/* registered instance slot, -1: none */
	bool resyncing;
	char why[VP_IDENTITY_MAX + 64];	/* vp_space_import()'s *why */
	uint64_t hash_key[2];

	struct vp_htab leases;		/* keyed by lease_hash(); a probe touches
					 * the table only, a lease only on a match */

	struct area *pools, *routers;
	const struct vp_static_config **statics;	/* sorted by identity */
	struct vp_static_config *in_force;	/* statics[i] less the parts that
						 * collide with the server */
	struct vp_server server;
	bool has_server;
	bool store_failing[VP_STORE_OP_COUNT];	/* reported, not recovered yet */
};

/* ---- lease table ------------------------------------------------------- */

static uint64_t lease_hash(const struct vp_space *s, const uint8_t *id, size_t len, uint16_t slot)
{
	return vp_siphash13(s->hash_key, id, len) ^ ((uint64_t)slot * 0x9e3779b97f4a7c15ULL);
}

struct lease_key {
	const uint8_t *id;
	size_t len;
	uint16_t slot;
};

static bool lease_eq(const void *item, const void *key)
{
	const struct lease *l = item;
	const struct lease_key *k = key;

	return l->slot == k->slot && l->identity_len == k->len && !memcmp(l->identity, k->id, k->len);
}

/* The lease (id, slot) whose lease_hash() is h, or NULL. */
static struct lease *lease_find_hashed(const struct vp_space *s, uint64_t h, const uint8_t *id,
				       size_t len, uint16_t slot)
{
	struct lease_key k = { id, len, slot };

	return vp_htab_find(&s->leases, h, lease_eq, &k);
}

static struct lease *lease_find(const struct vp_space *s, const uint8_t *id, size_t len,
				uint16_t slot)
{
	return lease_find_hashed(s, lease_hash(s, id, len, slot), id, len, slot);
}

/* Move whatever is left in the old table (before a walk over the table). */
static void table_settle(struct vp_space *s)
{
	vp_htab_settle(&s->leases);
}

/* Before a load: a table for n leases at once (see vp_htab_reserve). */
static void table_reserve(struct vp_space *s, uint64_t n)
{
	vp_htab_reserve(&s->leases, n < SIZE_MAX ? (size_t)n : SIZE_MAX);
}

/* The lease in slot i of the table (i below tab_slots()), or NULL. */
static size_t tab_slots(const struct vp_space *s)
{
	return vp_htab_slots(&s->leases);
}

static struct lease *tab_at(const struct vp_space *s, size_t i)
{
	return vp_htab_at(&s->leases, i);
}

/*
 * Walks over every lease (a re-open with a million of them) reach the leases
 * in an order unrelated to where they lie in memory, and wait for each: ask
 * for the lease some steps ahead while working on this one.
 */
#define LEASE_PREFETCH_AHEAD 8

static void lease_prefetch(const struct lease *l)
{
	if (l) {
		__builtin_prefetch(l, 1);
		__builtin_prefetch((const char *)l + 64, 1);
	}
}

static void tab_prefetch(const struct vp_space *s, size_t i)
{
	if (i < tab_slots(s))
		lease_prefetch(tab_at(s, i));
}

/* A new, unlinked lease for (id, slot), whose lease_hash() is h; NULL on
 * ENOMEM. */
static struct lease *lease_new_hashed(struct vp_space *s, uint64_t h, const uint8_t *id,
				      size_t len, uint16_t slot)
{
	struct lease *l = calloc(1, sizeof(*l) + len);

	if (!l)
		return NULL;
	memcpy(l->identity, id, len);
	l->identity_len = (uint16_t)len;
	l->slot = slot;
	l->pool = l->router = -1;
	if (vp_htab_insert(&s->leases, h, l)) {
		free(l);
		return NULL;
	}
	return l;
}

/* A new, unlinked lease for (id, slot); NULL on ENOMEM. */
static struct lease *lease_new(struct vp_space *s, const uint8_t *id, size_t len, uint16_t slot)
{
	return lease_new_hashed(s, lease_hash(s, id, len, slot), id, len, slot);
}

/* Take l out of the table (not freed). */
static void lease_unlink(struct vp_space *s, struct lease *l)
{
	vp_htab_remove(&s->leases, lease_hash(s, l->identity, l->identity_len, l->slot), l);
}

/* ---- a lease's addresses ------------------------------------------------ */

static struct vp_addr lease_addr4(const struct lease *l)
{
	return l->has & HAS_ADDR4 ? vp_addr_v4(l->addr4) : (struct vp_addr){ 0 };
}

static void lease_addrs(const struct lease *l, struct lease_addrs *a)
{
	memset(a, 0, sizeof(*a));
	a->addr4 = lease_addr4(l);
	if (l->has & HAS_SUBNET4) {
		a->subnet4.addr = vp_addr_v4(l->subnet4);
		a->subnet4.len = l->subnet4_len;
	}
	if (l->has & HAS_ADDR6)
		a->addr6 = vp_addr_from_bytes(VP_INET6, l->v6->addr);
	if (l->has & HAS_SUBNET6) {
		a->subnet6.addr = vp_addr_from_bytes(VP_INET6, l->v6->subnet);
		a->subnet6.len = l->v6->subnet_len;
	}
}

/* Set every address of l (IPv4 ones of family VP_INET, IPv6 ones of
 * VP_INET6, as the store and the pools give them).  0, or -ENOMEM with l as
 * it was; never fails when l keeps or loses IPv6 parts. */
static int lease_set_addrs(struct lease *l, const struct lease_addrs *a)
{
	bool v6 = a->addr6.family || a->subnet6.addr.family;

	if (v6 && !l->v6 && !(l->v6 = calloc(1, sizeof(*l->v6))))
		return -ENOMEM;
	l->has = 0;
	l->addr4 = l->subnet4 = 0;
	l->subnet4_len = 0;
	if (a->addr4.family) {
		l->has |= HAS_ADDR4;
		l->addr4 = vp_addr_to_v4(&a->addr4);
	}
	if (a->subnet4.addr.family) {
		l->has |= HAS_SUBNET4;
		l->subnet4 = vp_addr_to_v4(&a->subnet4.addr);
		l->subnet4_len = a->subnet4.len;
	}
	if (!v6) {
		free(l->v6);
		l->v6 = NULL;
		return 0;
	}
	memset(l->v6, 0, sizeof(*l->v6));
	if (a->addr6.family) {
		l->has |= HAS_ADDR6;
		vp_addr_to_bytes(&a->addr6, l->v6->addr);
	}
	if (a->subnet6.addr.family) {
		l->has |= HAS_SUBNET6;
		vp_addr_to_bytes(&a->subnet6.addr, l->v6->subnet);
		l->v6->subnet_len = a->subnet6.len;
	}
	return 0;
}

static void lease_free(struct lease *l)
{
	if (l)
		free(l->v6);
	free(l);
}

/* ---- real addresses ----------------------------------------------------- */

static void real_pack(struct real_addr *r, const char *text)
{
	char ip[INET6_ADDRSTRLEN + 2];
	const char *colon, *start = text, *end;
	char *tail;
	unsigned long port;

	memset(r, 0, sizeof(*r));
	if (!text || !*text)
		return;
	colon = strrchr(text, ':');
	if (!colon)
		return;
	end = colon;
	if (*text == '[') {
		start = text + 1;
		if (end == start || end[-1] != ']')
			return;
		end--;
	}
	if ((size_t)(end - start) >= sizeof(ip))
		return;
	memcpy(ip, start, (size_t)(end - start));
	ip[end - start] = '\0';
	if (colon[1]) {
		errno = 0;
		port = strtoul(colon + 1, &tail, 10);
		if (*tail || port > UINT16_MAX || errno || colon[1] < '0' || colon[1] > '9')
			return;
		r->port = (uint16_t)port;
		r->has_port = true;
	}
	if (*text == '[' ? inet_pton(AF_INET6, ip, r->ip) == 1 : inet_pton(AF_INET, ip, r->ip) == 1)
		r->family = *text == '[' ? AF_INET6 : AF_INET;
	else
		memset(r, 0, sizeof(*r));
}

static void real_unpack(const struct real_addr *r, char out[VP_REAL_MAX])
{
	char ip[VP_ADDR_STRLEN], digits[8], *d = digits + sizeof(digits);
	struct vp_addr a;
	size_t n = 0, len;

	out[0] = '\0';
	if (!r->family)
		return;
	a = vp_addr_from_bytes(r->family == AF_INET ? VP_INET : VP_INET6, r->ip);
	vp_addr_format(&a, ip);
	len = strlen(ip);
	if (len + 10 > VP_REAL_MAX)
		return;
	if (r->family == AF_INET6)
		out[n++] = '[';
	memcpy(out + n, ip, len);
	n += len;
	if (r->family == AF_INET6)
		out[n++] = ']';
	out[n++] = ':';
	if (r->has_port) {
		unsigned port = r->port;

		do {
			*--d = (char)('0' + port % 10);
			port /= 10;
		} while (port);
		memcpy(out + n, d, (size_t)(digits + sizeof(digits) - d));
		n += (size_t)(digits + sizeof(digits) - d);
	}
	out[n] = '\0';
}

static void lease_to_rec(const struct lease *l, struct vp_lease_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->identity = l->identity;
	r->identity_len = l->identity_len;
	r->slot = l->slot;
	r->state = l->state;
	r->sessions = l->sessions;
	r->created = l->created;
	r->since = l->since;
	struct lease_addrs a;

	real_unpack(&l->real, r->real);
	lease_addrs(l, &a);
	r->addr4 = a.addr4;
	r->addr6 = a.addr6;
	r->subnet4 = a.subnet4;
	r->subnet6 = a.subnet6;
	r->instance = l->instance;
}

/* ---- held lists -------------------------------------------------------- */

static void held_push(struct held_list *list, struct lease *l, int which)
{
	struct held_link *k = &l->link[which];

	k->prev = list->tail;
	k->next = NULL;
	l->flags |= (uint8_t)(LEASE_LINKED << which);
	if (list->tail)
		list->tail->link[which].next = l;
	else
		list->head = l;
	list->tail = l;
}

static void held_remove(struct held_list *list, struct lease *l, int which)
{
	struct held_link *k = &l->link[which];

	if (!(l->flags & (LEASE_LINKED << which)))
		return;
	if (k->prev)
		k->prev->link[which].next = k->next;
	else
		list->head = k->next;
	if (k->next)
		k->next->link[which].prev = k->prev;
	else
		list->tail = k->prev;
	k->prev = k->next = NULL;
	l->flags &= (uint8_t)~(LEASE_LINKED << which);
}

static int lease_order(const struct lease *x, const struct lease *y);

/* Whether x went offline before y: by since; of two in one second, the one
 * placed first, as every process applies the journal in its order.  (Ties
 * by identity made an insert walk past every lease held in that second:
 * milliseconds when thousands go offline at once.) */
static bool held_before(const struct lease *x, const struct lease *y)
{
	return x->since < y->since;
}

/* Insert l into a held list at its place by held_before() (from the tail:
 * a lease that just went offline belongs there), so that every process
 * keeps one order whichever wrote the lease. */
static void held_insert(struct held_list *list, struct lease *l, int which)
{
	struct lease *after = list->tail;
	struct held_link *k = &l->link[which];

	while (after && held_before(l, after))
		after = after->link[which].prev;
	if (after == list->tail) {
		held_push(list, l, which);
		return;
	}
	k->prev = after;
	k->next = after ? after->link[which].next : list->head;
	k->next->link[which].prev = l;
	if (after)
		after->link[which].next = l;
	else
		list->head = l;
	l->flags |= (uint8_t)(LEASE_LINKED << which);
}

/* The instance lists of online leases (link[LINK_POOL]). */
static void inst_unlist(struct vp_space *s, struct lease *l)
{
	if (!(l->flags & LEASE_ON_INSTANCE))
		return;
	l->flags &= (uint8_t)~LEASE_ON_INSTANCE;
	l->flags |= LEASE_LINKED << LINK_POOL;
	held_remove(&s->inst_online[l->instance], l, LINK_POOL);
	if (--s->inst_count[l->instance] == 0)
		s->slots_online--;
}

static void inst_list(struct vp_space *s, struct lease *l)
{
	if ((l->flags & LEASE_ON_INSTANCE) || l->state != VP_LEASE_ONLINE ||
	    l->instance >= VP_INSTANCE_MAX)
		return;
	held_push(&s->inst_online[l->instance], l, LINK_POOL);
	l->flags &= (uint8_t)~(LEASE_LINKED << LINK_POOL);
	l->flags |= LEASE_ON_INSTANCE;
	if (s->inst_count[l->instance]++ == 0)
		s->slots_online++;
}

/* ---- events and persistence ------------------------------------------- */

static void emit(const struct vp_space *s, const struct vp_event *ev)
{
	if (s->opts.on_event)
		s->opts.on_event(s->opts.ud, ev);
}

static void emit_store_error(struct vp_space *s, enum vp_store_op op, const char *what, int err)
{
	char msg[320];
	struct vp_event ev = { .type = VP_EV_STORE, .message = msg, .op = op, .error = err };

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-err));
	s->store_failing[op] = true;
	emit(s, &ev);
}

/* An operation that had failed worked: say so once (error 0). */
static void store_recovered(struct vp_space *s, enum vp_store_op op)
{
	static const char *const what[] = {
		[VP_STORE_OP_COMPACT] = "compacting the journal works again",
		[VP_STORE_OP_WRITE] = "writing the journal works again",
		[VP_STORE_OP_SERVER_FILE] = "writing the server file works again",
	};
	struct vp_event ev = { .type = VP_EV_STORE, .message = what[op], .op = op };

	if (!s->store_failing[op])
		return;
	s->store_failing[op] = false;
	emit(s, &ev);
}

static int lease_each_emit(void *ud, vp_store_emit_fn emit_rec, void *emit_ctx)
{
	const struct vp_space *s = ud;
	struct vp_lease_rec rec;

	for (size_t i = 0; i < tab_slots(s); ++i) {
		int ret;

		tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
		if (!tab_at(s, i))
			continue;
		lease_to_rec(tab_at(s, i), &rec);
		ret = emit_rec(emit_ctx, &rec);
		if (ret)
			return ret;
	}
	return 0;
}

static void maybe_compact(struct vp_space *s)
{
	uint64_t limit = s->opts.compact_min ? s->opts.compact_min : 65536;
	uint64_t bg_min = s->opts.compact_bg_min ? s->opts.compact_bg_min : 4096;
	int ret;

	if (s->ops->compacting(s->store)) {
		ret = s->ops->compact_poll(s->store, false);
		if (ret && ret != -EINPROGRESS)
			emit_store_error(s, VP_STORE_OP_COMPACT,
					 "compacting the journal in the background failed", ret);
		else if (!ret)
			store_recovered(s, VP_STORE_OP_COMPACT);
		return;
	}
	/* The journal stays under about twice the live leases, so a load
	 * after a crash reads at most that. */
	if (limit < (uint64_t)s->leases.n)
		limit = (uint64_t)s->leases.n;
	if (s->ops->appended(s->store) <= limit)
		return;
	/* A big journal is rewritten by the store's thread, so that this call
	 * does not wait for it; a small one (or when no thread starts) right
	 * here.  -EALREADY: the last one is still closing the old journal. */
	if (s->leases.n >= bg_min) {
		ret = s->ops->compact_start(s->store);
		if (ret == 0 || ret == -EALREADY)
			return;
	}
	ret = s->ops->compact(s->store, lease_each_emit, s);
	if (ret)
		emit_store_error(s, VP_STORE_OP_COMPACT, "compacting the journal failed", ret);
	else
		store_recovered(s, VP_STORE_OP_COMPACT);
}

static int persist_put(struct vp_space *s, const struct lease *l)
{
	struct vp_lease_rec rec;
	int ret;

	lease_to_rec(l, &rec);
	ret = s->ops->put(s->store, &rec);
	if (!ret)
		store_recovered(s, VP_STORE_OP_WRITE);
	return ret;
}

static int persist_del(struct vp_space *s, const struct lease *l)
{
	int ret = s->ops->del(s->store, l->identity, l->identity_len, l->slot);

	if (!ret)
		store_recovered(s, VP_STORE_OP_WRITE);
	return ret;
}

/* ---- areas (pools and router pools) ------------------------------------ */

static struct vp_blocks *area_blocks(const struct area *a, enum vp_family family)
{
	return family == VP_INET ? a->v4 : a->v6;
}

static uint64_t area_used(const struct area *a)
{
	return a->v4 ? vp_blocks_used(a->v4) : a->v6 ? vp_blocks_used(a->v6) : 0;
}

static uint64_t area_size(const struct area *a)
{
	return a->v4 ? vp_blocks_size(a->v4) : a->v6 ? vp_blocks_size(a->v6) : 0;
}

/* a * b as 128 bits, without a 128-bit type (32-bit targets). */
static void mul128(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
	uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
	uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
	uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;

	*lo = (mid << 32) | (uint32_t)ll;
	*hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

/* Whether used / size >= percent / 100, exactly. */
static bool fill_reaches(uint64_t used, uint64_t size, unsigned percent)
{
	uint64_t h1, l1, h2, l2;

	mul128(used, 100, &h1, &l1);
	mul128(size, percent, &h2, &l2);
	return h1 > h2 || (h1 == h2 && l1 >= l2);
}

/* Report each warn-at threshold crossed upward since the last call. */
static void area_check_warn(const struct vp_space *s, struct area *a)
{
	const struct vp_config *c = s->config;
	uint64_t used = area_used(a), size = area_size(a);
	size_t level = 0;

	while (level < c->n_warn_at && size && fill_reaches(used, size, c->warn_at[level]))
		level++;
	for (size_t i = a->warn_level; i < level; ++i) {
		struct vp_event ev = {
			.type = VP_EV_WARN, .pool = a->name, .in_use = used, .size = size,
			.percent = c->warn_at[i],
		};
		emit(s, &ev);
	}
	a->warn_level = level;
}

static void area_free(struct area *a)
{
	vp_blocks_free(a->v4);
	vp_blocks_free(a->v6);
	a->v4 = a->v6 = NULL;
}

static bool lease_dynamic4(const struct lease *l)
{
	return !(l->flags & LEASE_STATIC4);
}

static bool lease_dynamic_subnet(const struct lease *l)
{
	return !(l->flags & (LEASE_STATIC_SUBNET4 | LEASE_STATIC_SUBNET6));
}

/* Count a lease in (delta 1) or out of (-1) its areas' figures for its state.
 * Static addresses are not part of a pool's size, so they are not counted. */
static void lease_account(struct vp_space *s, const struct lease *l, int delta)
{
	bool online = l->state == VP_LEASE_ONLINE;

	if (l->pool >= 0 && lease_dynamic4(l)) {
		struct area *p = &s->pools[l->pool];

		*(online ? &p->online : &p->held_count) += (uint64_t)(int64_t)delta;
	}
	if (l->router >= 0 && lease_dynamic_subnet(l)) {
		struct area *r = &s->routers[l->router];

		*(online ? &r->online : &r->held_count) += (uint64_t)(int64_t)delta;
	}
}

/* Give back the blocks a lease took (static ones were never taken). */
static void lease_release_blocks(struct vp_space *s, const struct lease *l)
{
	struct area *p = l->pool >= 0 ? &s->pools[l->pool] : NULL;
	struct area *r = l->router >= 0 ? &s->routers[l->router] : NULL;
	struct lease_addrs a;

	lease_addrs(l, &a);
	if (p && a.addr4.family && !(l->flags & LEASE_STATIC4) && p->v4)
		vp_blocks_release(p->v4, &a.addr4);
	if (p && a.addr6.family && !(l->flags & LEASE_STATIC6) && p->v6)
		vp_blocks_release(p->v6, &a.addr6);
	if (r && a.subnet4.addr.family && !(l->flags & LEASE_STATIC_SUBNET4) && r->v4)
		vp_blocks_release(r->v4, &a.subnet4.addr);
	if (r && a.subnet6.addr.family && !(l->flags & LEASE_STATIC_SUBNET6) && r->v6)
		vp_blocks_release(r->v6, &a.subnet6.addr);
}

static void lease_unlist(struct vp_space *s, struct lease *l)
{
	if (l->pool >= 0)
		held_remove(&s->pools[l->pool].held, l, LINK_POOL);
	if (l->router >= 0)
		held_remove(&s->routers[l->router].held, l, LINK_ROUTER);
}

static void lease_unplace(struct vp_space *s, struct lease *l);

/* Free everything a placed lease holds and remove it from the table. */
static void lease_destroy(struct vp_space *s, struct lease *l)
{
	lease_unplace(s, l);
	lease_unlink(s, l);
	lease_free(l);
}

/* Move a placed lease between online and held, keeping figures and lists.
 * Held leases join the tails of their areas' lists (static ones never: they
 * are not reclaimable). */
static void lease_set_state_at(struct vp_space *s, struct lease *l, uint8_t state, bool ordered);

static void lease_set_state(struct vp_space *s, struct lease *l, uint8_t state)
{
	lease_set_state_at(s, l, state, false);
}

/* The same, a held lease placed by its since (with ordered) rather than at
 * the tails. */
static void lease_set_state_at(struct vp_space *s, struct lease *l, uint8_t state, bool ordered)
{
	inst_unlist(s, l);
	lease_account(s, l, -1);
	lease_unlist(s, l);
	l->state = state;
	lease_account(s, l, 1);
	if (state != VP_LEASE_HELD) {
		inst_list(s, l);
		return;
	}
	if (l->pool >= 0 && lease_dynamic4(l))
		(ordered ? held_insert : held_push)(&s->pools[l->pool].held, l, LINK_POOL);
	if (l->router >= 0 && lease_dynamic_subnet(l))
		(ordered ? held_insert : held_push)(&s->routers[l->router].held, l, LINK_ROUTER);
}

/* Take a placed lease out of the allocators and figures (it stays in the
 * table, unplaced: pool -1). */
static void lease_unplace(struct vp_space *s, struct lease *l)
{
	inst_unlist(s, l);
	lease_account(s, l, -1);
	lease_unlist(s, l);
	lease_release_blocks(s, l);
	if (l->pool >= 0)
		area_check_warn(s, &s->pools[l->pool]);
	if (l->router >= 0)
		area_check_warn(s, &s->routers[l->router]);
	l->pool = l->router = -1;
	l->flags = 0;
}

/* ---- static reservations ---------------------------------------------- */

static int static_cmp(const void *a, const void *b)
{
	const struct vp_static_config *x = *(const struct vp_static_config *const *)a;
	const struct vp_static_config *y = *(const struct vp_static_config *const *)b;

	return strcmp(x->identity, y->identity);
}

static const struct vp_static_config *static_find(const struct vp_space *s, const uint8_t *id,
						  size_t len)
{
	size_t lo = 0, hi = s->config->n_statics;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *name = s->statics[mid]->identity;
		size_t nlen = strlen(name);
		int c = memcmp(name, id, nlen < len ? nlen : len);

		if (!c)
			c = nlen < len ? -1 : nlen > len;
		if (!c)
			return &s->in_force[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- open and close ---------------------------------------------------- */

static const char *place_lease(struct vp_space *s, struct lease *l);
static void place_or_keep(struct vp_space *s, struct lease *l);

static int replay_put(void *ud, const struct vp_lease_rec *rec)
{
	struct vp_space *s = ud;
	uint64_t h = lease_hash(s, rec->identity, rec->identity_len, rec->slot);
	struct lease_addrs a = { rec->addr4, rec->addr6, rec->subnet4, rec->subnet6 };
	struct real_addr real;
	struct lease *l;

	/* The table slot is far in memory: ask for it, then parse the real
	 * address while it comes. */
	vp_htab_prefetch(&s->leases, h);
	real_pack(&real, rec->real);
	l = lease_find_hashed(s, h, rec->identity, rec->identity_len, rec->slot);
	if (l) {
		/* Another instance's PUT replaces the lease (its addresses
		 * go back to the allocators first). */
		if (l->pool >= 0)
			lease_unplace(s, l);
		else
			inst_unlist(s, l);
	} else {
		l = lease_new_hashed(s, h, rec->identity, rec->identity_len, rec->slot);
		if (!l)
			return -ENOMEM;
	}
	if (lease_set_addrs(l, &a))
		return -ENOMEM;
	l->state = rec->state;
	l->sessions = rec->sessions;
	l->created = rec->created;
	l->since = rec->since;
	l->real = real;
	l->instance = rec->instance;
	if (s->has_server)
		place_or_keep(s, l);
	else
		inst_list(s, l);
	if (s->resyncing)
		l->flags |= LEASE_MARK;
	return 0;
}

/* Bytes a journal record of a lease takes, about (a short identity and real
 * address): sizes the table to the journal before its records come. */
#define JOURNAL_BYTES_PER_LEASE 64

static void replay_size(void *ud, uint64_t bytes)
{
	table_reserve(ud, bytes / JOURNAL_BYTES_PER_LEASE);
}

static int replay_del(void *ud, const uint8_t *id, size_t len, uint16_t slot)
{
	struct vp_space *s = ud;
	struct lease *l = lease_find(s, id, len, slot);

	if (l)
		lease_destroy(s, l);
	return 0;
}

/* The journal was replaced by one this store cannot follow: every lease
 * not in the new one is gone. */
static void replay_resync(void *ud, bool begin)
{
	struct vp_space *s = ud;

	table_settle(s);
	if (begin) {
		for (size_t i = 0; i < tab_slots(s); ++i)
			if (tab_at(s, i))
				tab_at(s, i)->flags &= (uint8_t)~LEASE_MARK;
		s->resyncing = true;
		return;
	}
	s->resyncing = false;
	for (size_t i = 0; i < tab_slots(s); ++i) {
		struct lease *l = tab_at(s, i);

		if (!l)
			continue;
		if (l->flags & LEASE_MARK) {
			l->flags &= (uint8_t)~LEASE_MARK;
			continue;
		}
		lease_destroy(s, l);
		--i;	/* a later entry may have moved back into slot i */
	}
}

static int64_t default_now(void *ud)
{
	(void)ud;
	return (int64_t)time(NULL);
}

/* The name of the instance in slot, or "" (never NULL). */
static const char *instance_name(const struct vp_space *s, uint16_t slot)
{
	const struct vp_instance_rec *r = slot < VP_INSTANCE_MAX ?
		s->ops->instance(s->store, slot) : NULL;

	return r ? r->name : "";
}

/* The tun device of the instance in slot, or "" (never NULL). */
static const char *instance_dev(const struct vp_space *s, uint16_t slot)
{
	const struct vp_instance_rec *r = slot < VP_INSTANCE_MAX ?
		s->ops->instance(s->store, slot) : NULL;

	return r ? r->dev : "";
}

/* The session of an online lease whose instance is gone ends: an extra
 * session's lease is freed, the sticky one becomes held from now.  With
 * announce, a VP_EV_CRASH_HELD.  In memory first; then persisted unless
 * quiet (the caller rewrites the journal).  0 or the store's error. */
static int end_dead_session(struct vp_space *s, struct lease *l, int64_t now, bool announce,
			    bool quiet)
{
	/* now < 0: held since its last change, as it was (at open) */
	struct vp_event ev = {
		.type = VP_EV_CRASH_HELD, .identity = l->identity, .identity_len = l->identity_len,
		.instance = instance_name(s, l->instance), .dev = instance_dev(s, l->instance),
		.duration = now > l->since ? now - l->since : 0, .freed = l->slot != 0,
		.pool = l->pool >= 0 ? s->pools[l->pool].name : NULL,
	};
	struct lease_addrs a;
	int ret = 0;

	if (announce) {
		lease_addrs(l, &a);
		ev.address = a.addr4;
		ev.address6 = a.addr6;
		ev.subnet4 = a.subnet4;
		ev.subnet6 = a.subnet6;
		emit(s, &ev);
	}
	if (l->slot) {
		if (!quiet)
			ret = persist_del(s, l);
		lease_destroy(s, l);
		return ret;
	}
	lease_set_state(s, l, VP_LEASE_HELD);
	if (now >= 0)
		l->since = now;
	if (!quiet)
		ret = persist_put(s, l);
	return ret;
}

static int lease_order(const struct lease *x, const struct lease *y)
{
	size_t n = x->identity_len < y->identity_len ? x->identity_len : y->identity_len;
	int c = memcmp(x->identity, y->identity, n);

	if (c)
		return c;
	if (x->identity_len != y->identity_len)
		return x->identity_len < y->identity_len ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

static int lease_ptr_cmp(const void *a, const void *b)
{
	return lease_order(*(struct lease *const *)a, *(struct lease *const *)b);
}

/* Every session of a dead instance ends, announced, in the order of their
 * identities (held leases of one moment join the held lists in that order,
 * as a load orders them). */
static void end_dead_instance(struct vp_space *s, uint16_t slot, int64_t now, bool announce,
			      bool quiet)
{
	size_t n = s->inst_count[slot], k = 0;
	struct lease **all = malloc(n * sizeof(*all) + 1);

	if (all) {
		for (struct lease *l = s->inst_online[slot].head; l && k < n;
		     l = l->link[LINK_POOL].next)
			all[k++] = l;
		qsort(all, k, sizeof(*all), lease_ptr_cmp);
	}
	for (size_t i = 0; all ? i < k : s->inst_online[slot].head != NULL; ++i) {
		struct lease *l = all ? all[i] : s->inst_online[slot].head;
		int ret = end_dead_session(s, l, now, announce, quiet);

		if (ret)
			emit_store_error(s, VP_STORE_OP_WRITE, announce ?
					 "recording the sessions of a crashed instance" :
					 "recording the sessions at stop", ret);
	}
	free(all);
}

/* At every change, after catching up: the online leases of an instance
 * whose liveness lock is gone (it crashed) end, each announced. */
static void check_crashed(struct vp_space *s)
{
	if (s->slots_online == 0 ||
	    (s->slots_online == 1 && s->my_slot >= 0 && s->inst_count[s->my_slot]))
		return;		/* no other instance has sessions */
	for (uint16_t slot = 0; slot < VP_INSTANCE_MAX; ++slot) {
		int64_t now;

		if (!s->inst_count[slot] || slot == s->my_slot ||
		    s->ops->slot_alive(s->store, slot))
			continue;
		now = s->opts.now(s->opts.ud);
		end_dead_instance(s, slot, now, true, false);
	}
}

#define SETTLE_REWRITE 1024		/* more leases to change: rewrite the journal */

/* Leases of stopped or crashed instances (or of a version-1 journal) that
 * are still online end: extra sessions go, the others are held.  Leases of
 * live instances stay as they are.  Under the store's mutex.  Returns how
 * many changed; the first SETTLE_REWRITE are written one by one, from
 * there on the caller rewrites the journal. */
static size_t settle_loaded(struct vp_space *s)
{
	int8_t alive[VP_INSTANCE_MAX];
	size_t changed = 0;
	int err = 0;

	memset(alive, -1, sizeof(alive));
	table_settle(s);	/* unlinks below must not move leases */
	for (size_t i = 0; i < tab_slots(s); ++i) {
		struct lease *l = tab_at(s, i);
		int ret;

		tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
		if (!l || l->state != VP_LEASE_ONLINE)
			continue;
		if (l->instance < VP_INSTANCE_MAX) {
			if (alive[l->instance] < 0)
				alive[l->instance] = s->ops->slot_alive(s->store, l->instance) &&
						     l->instance != s->my_slot;
			if (alive[l->instance])
				continue;
		}
		ret = end_dead_session(s, l, -1, false, ++changed > SETTLE_REWRITE);
		if (ret && !err)
			err = ret;
		/* An entry may move back into slot i: look at it again.  One from
		 * the table's start may move to its end and be seen twice, which
		 * changes nothing here. */
		if (tab_at(s, i) != l)
			--i;
	}
	/* The journal as it is replays to this again (its instances are gone). */
	if (err)
		emit_store_error(s, VP_STORE_OP_WRITE,
				 "recording the end of the sessions of stopped instances at start failed (the leases are loaded; the journal as it is keeps them; new leases may be refused)",
				 err);
	return changed;
}

static int space_alloc(struct vp_space **out, const struct vp_space_options *opts)
{
	struct vp_space *s = calloc(1, sizeof(*s));
	const struct vp_config *c = opts->config;

	if (!s)
		return -ENOMEM;
	s->opts = *opts;
	if (!s->opts.now)
		s->opts.now = default_now;
	s->config = c;
	(void)vp_htab_init(&s->leases, 768);
	s->pools = calloc(c->n_pools + 1, sizeof(*s->pools));
	s->routers = calloc(c->n_routers + 1, sizeof(*s->routers));
	s->statics = calloc(c->n_statics + 1, sizeof(*s->statics));
	s->in_force = calloc(c->n_statics + 1, sizeof(*s->in_force));
	s->inst_online = calloc(VP_INSTANCE_MAX, sizeof(*s->inst_online));
	s->inst_count = calloc(VP_INSTANCE_MAX, sizeof(*s->inst_count));
	s->my_slot = -1;
	s->ops = opts->store_ops ? opts->store_ops :
		 opts->read_only ? &vp_journal_read_ops : &vp_journal_ops;
	if (opts->read_only)
		s->opts.no_drops = true;
	if (!s->leases.tab || !s->pools || !s->routers || !s->statics || !s->in_force ||
	    !s->inst_online || !s->inst_count) {
		vp_space_close(s);
		return -ENOMEM;
	}
	if (getrandom(s->hash_key, sizeof(s->hash_key), GRND_NONBLOCK) != sizeof(s->hash_key)) {
		s->hash_key[0] = (uint64_t)(uintptr_t)s ^ (uint64_t)time(NULL);
		s->hash_key[1] = (uint64_t)(uintptr_t)&s ^ 0x5bd1e995ULL;
	}
	for (size_t i = 0; i < c->n_pools; ++i)
		s->pools[i].name = c->pools[i].name;
	for (size_t i = 0; i < c->n_routers; ++i)
		s->routers[i].name = c->routers[i].name;
	for (size_t i = 0; i < c->n_statics; ++i)
		s->statics[i] = &c->statics[i];
	qsort(s->statics, c->n_statics, sizeof(*s->statics), static_cmp);
	for (size_t i = 0; i < c->n_statics; ++i)
		s->in_force[i] = *s->statics[i];
	*out = s;
	return 0;
}

int vp_space_open(struct vp_space **out, const struct vp_space_options *opts,
		  struct vp_store_report *report, pid_t *holder_pid)
{
	struct vp_store_replay replay = {
		.put = replay_put, .del = replay_del, .size = replay_size,
		.resync = replay_resync,
	};
	struct vp_store_report scratch;
	struct vp_store_io io = { 0 };
	struct vp_space *s;
	size_t changed;
	int ret;

	if (!report)
		report = &scratch;
	ret = space_alloc(&s, opts);
	if (ret)
		return ret;
	replay.ud = s;
	/* The store keeps time by the engine's clock. */
	if (opts->io)
		io = *opts->io;
	io.now = s->opts.now;
	io.now_ud = s->opts.ud;
	ret = s->ops->open(&s->store, s->config->state_dir, s->config->fsync, &io, &replay,
			   report, holder_pid);
	if (ret)
		goto out_free;
	if (s->opts.read_only) {
		*out = s;	/* a snapshot, as written */
		return 0;
	}
	ret = s->ops->begin(s->store);
	if (ret)
		goto out_free;
	/* The journal as loaded replays to this state again (online leases of
	 * dead instances become held at every open), so a rewrite that fails
	 * (a full disk) does not stop the start; only what comes after a
	 * damaged part set aside lives in memory alone until a rewrite
	 * succeeds. */
	changed = settle_loaded(s);
	if (changed > SETTLE_REWRITE || report->torn || report->corrupt) {
		ret = s->ops->compact(s->store, lease_each_emit, s);
		if (ret)
			emit_store_error(s, VP_STORE_OP_COMPACT, report->corrupt ?
					 "rewriting the journal at start failed (the leases kept from the damaged journal are in memory only until it succeeds)" :
					 "rewriting the journal at start failed (the leases are loaded; the journal as it is keeps them; new leases may be refused)",
					 ret);
	}
	s->ops->end(s->store);
	*out = s;
	return 0;

out_free:
	vp_space_close(s);
	return ret;
}

/* A clean stop of the registered instance: its sessions end (extra ones
 * freed, the others held from now), then its stop is recorded. */
static void stop_instance(struct vp_space *s)
{
	int64_t now = s->opts.now(s->opts.ud);
	uint16_t me = (uint16_t)s->my_slot;
	bool rewrite = s->inst_count[me] > SETTLE_REWRITE;

	if (s->ops->begin(s->store))
		return;		/* the others see it dead: its leases become held */
	check_crashed(s);
	end_dead_instance(s, me, now, false, rewrite);
	if (rewrite)
		(void)s->ops->compact(s->store, lease_each_emit, s);
	(void)s->ops->unregister(s->store);
	s->my_slot = -1;
	s->ops->end(s->store);
}

static void areas_free(struct vp_space *s)
{
	for (size_t i = 0; i < s->config->n_pools; ++i)
		area_free(&s->pools[i]);
	for (size_t i = 0; i < s->config->n_routers; ++i)
		area_free(&s->routers[i]);
}

static void space_free(struct vp_space *s);

void vp_space_abandon(struct vp_space *s)
{
	if (!s)
		return;
	if (s->store)
		s->ops->abandon(s->store);
	s->store = NULL;
	space_free(s);
}

void vp_space_close(struct vp_space *s)
{
	if (!s)
		return;
	if (s->store && s->my_slot >= 0)
		stop_instance(s);
	/* A stop or reload rewrites a journal that has grown past a quarter
	 * of the leases, so that the next open reads one record per lease.
	 * On failure the journal as it is stays valid. */
	if (s->store && s->ops->appended(s->store) > 1024 &&
	    s->ops->appended(s->store) >= s->leases.n / 4)
		(void)s->ops->compact(s->store, lease_each_emit, s);
	if (s->store)
		s->ops->close(s->store);
	s->store = NULL;
	space_free(s);
}

static void space_free(struct vp_space *s)
{
	for (size_t i = 0; i < tab_slots(s); ++i)
		lease_free(tab_at(s, i));
	if (s->pools && s->routers)
		areas_free(s);
	vp_htab_free(&s->leases);
	free(s->pools);
	free(s->routers);
	free(s->statics);
	free(s->in_force);
	free(s->inst_online);
	free(s->inst_count);
	free(s);
}

/* ---- building the allocators ------------------------------------------ */

static void report_unusable(const struct vp_space *s, const char *pool, const char *why)
{
	struct vp_event ev = { .type = VP_EV_POOL_UNUSABLE, .pool = pool, .message = why };

	emit(s, &ev);
}

static int build_pool(struct vp_space *s, size_t i)
{
	const struct vp_pool_config *pc = &s->config->pools[i];
	struct area *a = &s->pools[i];
	unsigned len4 = s->server.topology == VP_TOPO_NET30 ? 30 : 32;
	struct vp_range net = vp_prefix_range(&pc->network);
	int ret;

	a->usable = true;
	if (s->server.topology == VP_TOPO_SUBNET && s->server.local4.family) {
		struct vp_prefix tun = vp_prefix_of(&s->server.local4, s->server.netbits4);

		if (!vp_range_within(&net, &(struct vp_range){ vp_prefix_range(&tun).first,
							     vp_prefix_range(&tun).last })) {
			char why[200], n1[VP_PREFIX_STRLEN], n2[VP_PREFIX_STRLEN];

			snprintf(why, sizeof(why), "network %s is not inside the server's tun network %s",
				 vp_prefix_format(&pc->network, n1), vp_prefix_format(&tun, n2));
			report_unusable(s, pc->name, why);
			a->usable = false;
			return 0;
		}
	}
	ret = vp_layout_pool4(s->config, i, &s->server, len4, &a->v4);
	if (ret == -ENOSPC) {
		report_unusable(s, pc->name, "no whole address block fits its range");
		a->usable = false;
		return 0;
	}
	return ret ? ret : vp_layout_pool6(s->config, i, &s->server, &a->v6);
}

static int build_router(struct vp_space *s, size_t i)
{
	struct area *a = &s->routers[i];
	int ret;

	a->usable = true;
	ret = vp_layout_router(s->config, i, VP_INET, &s->server, &a->v4);
	return ret ? ret : vp_layout_router(s->config, i, VP_INET6, &s->server, &a->v6);
}

/* Which of the server's own tunnel addresses a is (or, in net30, shares a
 * /30 with): "ifconfig_local", "ifconfig_remote", "ifconfig_ipv6_local", or
 * NULL when none. */
/* Which of the server's own addresses a prefix holds (in net30: meets the
 * server's /30), or NULL: a client given it would take the server's own
 * address away from it. */
static const char *server_owner_in(const struct vp_server *sv, const struct vp_prefix *p)
{
	static const char *const names[] = {
		"ifconfig_local", "ifconfig_remote", "ifconfig_ipv6_local",
	};
	const struct vp_addr *own[] = { &sv->local4, &sv->remote4, &sv->local6 };
	struct vp_range r = vp_prefix_range(p);

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); ++i) {
		struct vp_range mine = { *own[i], *own[i] };

		if (own[i]->family != p->addr.family)
			continue;
		if (p->addr.family == VP_INET && sv->topology == VP_TOPO_NET30) {
			struct vp_prefix block = vp_prefix_of(own[i], 30);

			mine = vp_prefix_range(&block);
		}
		if (vp_range_overlaps(&r, &mine))
			return names[i];
	}
	return NULL;
}

/* Which of the server's own addresses a is (in net30: inside the server's
 * /30), or NULL. */
static const char *server_owner(const struct vp_server *sv, const struct vp_addr *a)
{
	struct vp_prefix host = { *a, (uint8_t)vp_family_bits(a->family) };

	return server_owner_in(sv, &host);
}

static void report_subnet_unusable(const struct vp_space *s, const struct vp_static_config *st,
				   const struct vp_prefix *p, const char *owner)
{
	char why[200], text[VP_PREFIX_STRLEN];
	struct vp_event ev = {
		.type = VP_EV_RESERVATION_UNUSABLE, .identity = (const uint8_t *)st->identity,
		.identity_len = strlen(st->identity), .address = p->addr, .message = why,
	};

	snprintf(why, sizeof(why),
		 "reserved subnet %s (line %u) holds the server's %s: not reserved, the client "
		 "gets one from its router pool, if one matches",
		 vp_prefix_format(p, text), st->line, owner);
	emit(s, &ev);
}

static void report_reservation_unusable(const struct vp_space *s,
					const struct vp_static_config *st,
					const struct vp_addr *a, const char *owner)
{
	char why[200], text[VP_ADDR_STRLEN];
	bool net30 = s->server.topology == VP_TOPO_NET30 && a->family == VP_INET;
	struct vp_event ev = {
		.type = VP_EV_RESERVATION_UNUSABLE, .identity = (const uint8_t *)st->identity,
		.identity_len = strlen(st->identity), .address = *a, .message = why,
	};

	snprintf(why, sizeof(why),
		 "reserved address %s (line %u) is %sthe server's %s: not reserved, the client "
		 "gets one from the pools",
		 vp_addr_format(a, text), st->line, net30 ? "in the /30 of " : "", owner);
	emit(s, &ev);
}

/* The reservations in force with this server.  A reserved address that is
 * one of the server's own (in net30: inside the server's /30) is reported
 * and set aside: the client keeps the rest of its reservation and gets an
 * address of that family from the pools like any other client.  Serving it
 * rather than refusing it keeps one slip in the config, which the log names,
 * from locking a client out; the address itself stays out of the dynamic
 * allocators, as every reservation and the server's addresses do. */
static void reservations_for_server(struct vp_space *s)
{
	for (size_t i = 0; i < s->config->n_statics; ++i) {
		const struct vp_static_config *st = s->statics[i];
		struct vp_static_config *in = &s->in_force[i];
		const char *owner;

		*in = *st;
		if (st->has_address && (owner = server_owner(&s->server, &st->address))) {
			in->has_address = false;
			report_reservation_unusable(s, st, &st->address, owner);
		}
		if (st->has_address6 && (owner = server_owner(&s->server, &st->address6))) {
			in->has_address6 = false;
			report_reservation_unusable(s, st, &st->address6, owner);
		}
		if (st->has_subnet && (owner = server_owner_in(&s->server, &st->subnet))) {
			in->has_subnet = false;
			report_subnet_unusable(s, st, &st->subnet, owner);
		}
		if (st->has_subnet6 && (owner = server_owner_in(&s->server, &st->subnet6))) {
			in->has_subnet6 = false;
			report_subnet_unusable(s, st, &st->subnet6, owner);
		}
	}
}

/* The pool whose network holds a, or -1. */
static int pool_of(const struct vp_space *s, const struct vp_addr *a)
{
	return vp_layout_pool_of(s->config, a);
}

static int router_of(const struct vp_space *s, const struct vp_prefix *p)
{
	return vp_layout_router_of(s->config, p);
}

static bool prefix_eq(const struct vp_prefix *a, const struct vp_prefix *b)
{
	return a->len == b->len && vp_addr_eq(&a->addr, &b->addr);
}

/* Whether a (or, with len, the prefix a/len) is reserved for a client other
 * than l's identity. */
static bool reserved_for_other(const struct vp_space *s, const struct lease *l,
			       const struct vp_addr *a, unsigned len)
{
	bool v4 = a->family == VP_INET;

	for (size_t i = 0; i < s->config->n_statics; ++i) {
		const struct vp_static_config *st = &s->in_force[i];
		const struct vp_prefix *sn = v4 ? &st->subnet : &st->subnet6;
		bool own = strlen(st->identity) == l->identity_len &&
			   !memcmp(st->identity, l->identity, l->identity_len);

		if (own && l->slot == 0)
			continue;
		if ((v4 ? st->has_address : st->has_address6) &&
		    vp_addr_eq(a, v4 ? &st->address : &st->address6))
			return true;
		if ((v4 ? st->has_subnet : st->has_subnet6) && len) {
			struct vp_range mine = vp_prefix_range(&(struct vp_prefix){ *a, (uint8_t)len });
			struct vp_range theirs = vp_prefix_range(sn);

			if (vp_range_overlaps(&mine, &theirs))
				return true;
		}
	}
	return false;
}

/* Why pool p's allocator refused a: a VP_DROP reason. */
static const char *addr_refused(const struct vp_space *s, const struct lease *l,
				const struct vp_addr *a, int p)
{
	const struct vp_pool_config *pc = &s->config->pools[p];

	if (reserved_for_other(s, l, a, 0))
		return "reserved";
	if (server_owner(&s->server, a))
		return "server-address";
	if (a->family == VP_INET && pc->has_range && !vp_range_contains(&pc->range, a))
		return "outside-range";
	if (a->family == VP_INET && !vp_prefix_contains(&pc->network, a))
		return "outside-range";
	for (size_t i = 0; i < pc->n_exclude; ++i)
		if (vp_range_contains(&pc->exclude[i], a))
			return "excluded";
	if (!vp_blocks_owns(area_blocks(&s->pools[p], a->family), a))
		return "outside-range";
	return "taken";
}

/* Place one address of a loaded lease: static, or taken from its pool.
 * Returns NULL, or why it does not fit (a VP_DROP reason). */
static const char *place_addr(struct vp_space *s, struct lease *l, const struct vp_addr *a,
			      const struct vp_static_config *st, int *pool)
{
	bool v4 = a->family == VP_INET;
	struct vp_blocks *b;
	int p;

	if (!a->family)
		return NULL;
	if (st && (v4 ? st->has_address : st->has_address6) &&
	    vp_addr_eq(a, v4 ? &st->address : &st->address6) && l->slot == 0) {
		l->flags |= v4 ? LEASE_STATIC4 : LEASE_STATIC6;
		if (*pool < 0)
			*pool = pool_of(s, a);
		return NULL;
	}
	p = pool_of(s, a);
	if (p < 0 || (*pool >= 0 && p != *pool))
		return "no-pool";
	if (!s->pools[p].usable)
		return "pool-unusable";
	*pool = p;
	b = area_blocks(&s->pools[p], a->family);
	if (!b)
		return "no-pool";
	return vp_blocks_take(b, a) == 0 ? NULL : addr_refused(s, l, a, p);
}

static const char *place_subnet(struct vp_space *s, struct lease *l, const struct vp_prefix *sn,
				const struct vp_static_config *st, int *router)
{
	bool v4 = sn->addr.family == VP_INET;
	struct vp_blocks *b;
	int r;

	if (!sn->addr.family)
		return NULL;
	if (st && (v4 ? st->has_subnet : st->has_subnet6) && l->slot == 0 &&
	    prefix_eq(sn, v4 ? &st->subnet : &st->subnet6)) {
		l->flags |= v4 ? LEASE_STATIC_SUBNET4 : LEASE_STATIC_SUBNET6;
		if (*router < 0)
			*router = router_of(s, sn);
		return NULL;
	}
	r = router_of(s, sn);
	if (r < 0 || (*router >= 0 && r != *router))
		return "no-pool";
	b = area_blocks(&s->routers[r], sn->addr.family);
	if (!b)
		return "no-pool";
	if (vp_blocks_block_len(b) != sn->len)
		return "subnet-size";
	*router = r;
	if (vp_blocks_take(b, &sn->addr) == 0)
		return NULL;
	if (reserved_for_other(s, l, &sn->addr, sn->len))
		return "reserved";
	if (server_owner_in(&s->server, sn))
		return "server-address";
	return vp_blocks_owns(b, &sn->addr) ? "taken" : "excluded";
}

static const char *const drop_messages[][2] = {
	{ "no-pool", "no pool's network holds it any more" },
	{ "pool-unusable", "its pool is not used" },
	{ "reserved", "its address is reserved for another client now" },
	{ "server-address", "it is one of the server's own addresses now" },
	{ "outside-range", "it is outside its pool's range now" },
	{ "excluded", "its pool excludes it now" },
	{ "subnet-size", "its router pool hands out subnets of another size now" },
	{ "taken", "another stored lease holds it" },
};

/* The addresses of a lease as stored, before placing it cleared some. */
static void report_dropped(struct vp_space *s, const struct lease *l,
			   const struct lease_addrs *stored, const char *reason)
{
	struct vp_event ev = {
		.type = VP_EV_LEASE_DROPPED, .identity = l->identity,
		.identity_len = l->identity_len, .address = stored->addr4,
		.address6 = stored->addr6, .subnet4 = stored->subnet4, .subnet6 = stored->subnet6,
		.reason = reason, .message = reason,
	};
	int ret;

	for (size_t i = 0; i < sizeof(drop_messages) / sizeof(drop_messages[0]); ++i)
		if (!strcmp(drop_messages[i][0], reason))
			ev.message = drop_messages[i][1];
	emit(s, &ev);
	ret = persist_del(s, l);
	if (ret)
		emit_store_error(s, VP_STORE_OP_WRITE, "dropping a lease", ret);
}

/* Sorting keys next to the pointers: no lease is touched while sorting. */
struct by_since {
	int64_t since;
	uint64_t key[2];		/* the identity's first 16 bytes, zero-padded,
					 * big-endian: its order without a look at
					 * the lease, unless these are equal */
	struct lease *lease;
};

static void by_since_key(struct by_since *b, const struct lease *l)
{
	for (unsigned i = 0; i < 16; ++i)
		b->key[i / 8] = b->key[i / 8] << 8 | (i < l->identity_len ? l->identity[i] : 0);
}

static int by_since_cmp(const void *a, const void *b)
{
	const struct by_since *x = a, *y = b;

	if (x->since != y->since)
		return (x->since > y->since) - (x->since < y->since);
	/* ties: one order everywhere (lease_order's, for identities that
	 * differ in their first 16 bytes) */
	for (int i = 0; i < 2; ++i)
		if (x->key[i] != y->key[i])
			return x->key[i] < y->key[i] ? -1 : 1;
	return lease_order(x->lease, y->lease);
}

/* Take one loaded lease's resources.  On a misfit, forget the parts not
 * taken so that only taken blocks are given back, and return why (a VP_DROP
 * reason); NULL when it fits. */
static const char *place_lease(struct vp_space *s, struct lease *l)
{
	const struct vp_static_config *st = static_find(s, l->identity, l->identity_len);
	int pool = -1, router = -1;
	struct lease_addrs a;
	const char *why;

	lease_addrs(l, &a);
	l->flags = 0;
	why = place_addr(s, l, &a.addr4, st, &pool);
	if (why)
		a.addr4.family = 0;
	if (why || (why = place_addr(s, l, &a.addr6, st, &pool)))
		a.addr6.family = 0;
	if (why || (why = place_subnet(s, l, &a.subnet4, st, &router)))
		a.subnet4.addr.family = 0;
	if (why || (why = place_subnet(s, l, &a.subnet6, st, &router)))
		a.subnet6.addr.family = 0;
	(void)lease_set_addrs(l, &a);	/* only clears: cannot fail */
	l->pool = pool;
	l->router = router;
	if (!why && (pool < 0 || !a.addr4.family))
		why = "no-pool";
	return why;
}

/* A lease that does not fit, kept in the table as stored, unplaced. */
static void lease_keep_unplaced(struct lease *l, const struct lease_addrs *stored)
{
	/* Placing may have cleared parts (and freed the IPv6 block): without
	 * memory for it again the lease keeps its IPv4 parts only. */
	(void)lease_set_addrs(l, stored);
	l->pool = l->router = -1;
	l->flags = 0;
}

/* Place every loaded lease, in the order they went offline, so the held
 * lists come out oldest first.  With keep, a lease that does not fit is
 * kept unplaced rather than dropped (another instance lives, whose config
 * it may fit; or this is the command). */
static int place_all(struct vp_space *s, bool keep)
{
	struct by_since *all = malloc((s->leases.n + 1) * sizeof(*all));
	size_t n = 0;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < tab_slots(s); ++i) {
		tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
		if (tab_at(s, i)) {
			all[n] = (struct by_since){ .since = tab_at(s, i)->since,
						    .lease = tab_at(s, i) };
			by_since_key(&all[n++], tab_at(s, i));
		}
	}
	if (!s->opts.read_only)	/* read only: no held list is taken from */
		qsort(all, n, sizeof(*all), by_since_cmp);
	for (size_t i = 0; i < n; ++i) {
		struct lease *l = all[i].lease;
		uint8_t state;
		struct lease_addrs stored;
		const char *why;

		if (i + LEASE_PREFETCH_AHEAD < n)
			lease_prefetch(all[i + LEASE_PREFETCH_AHEAD].lease);
		state = l->state;
		lease_addrs(l, &stored);
		why = place_lease(s, l);

		if (why && keep) {
			lease_release_blocks(s, l);
			lease_keep_unplaced(l, &stored);
			inst_list(s, l);
			continue;
		}
		if (why) {
			report_dropped(s, l, &stored, why);
			lease_release_blocks(s, l);
			lease_unlink(s, l);
			lease_free(l);
			continue;
		}
		l->state = VP_LEASE_ONLINE;
		lease_account(s, l, 1);
		if (state == VP_LEASE_HELD)
			lease_set_state(s, l, VP_LEASE_HELD);
		else
			inst_list(s, l);
	}
	free(all);
	return 0;
}

/* Whether another instance than this one is alive on the directory. */
static bool others_alive(struct vp_space *s)
{
	for (uint16_t i = 0; i < VP_INSTANCE_MAX; ++i)
		if (i != s->my_slot && s->ops->instance(s->store, i) &&
		    s->ops->slot_alive(s->store, i))
			return true;
	return false;
}

/* A lease another instance wrote, while this process has its server: placed
 * if it fits this process's config, else kept unplaced (it may fit the
 * writer's). */
static void place_or_keep(struct vp_space *s, struct lease *l)
{
	struct lease_addrs stored;
	uint8_t state = l->state;
	const char *why;

	lease_addrs(l, &stored);
	why = place_lease(s, l);

	if (why) {
		lease_release_blocks(s, l);
		lease_keep_unplaced(l, &stored);
		inst_list(s, l);
		return;
	}
	l->state = VP_LEASE_ONLINE;
	lease_account(s, l, 1);
	if (state == VP_LEASE_HELD)
		lease_set_state_at(s, l, VP_LEASE_HELD, true);
	else
		inst_list(s, l);
	if (l->pool >= 0)
		area_check_warn(s, &s->pools[l->pool]);
	if (l->router >= 0)
		area_check_warn(s, &s->routers[l->router]);
}

static const char *const topology_names[] = { "auto", "subnet", "net30", "p2p" };

size_t vp_server_format(const struct vp_server *sv, char *buf, size_t len)
{
	char l4[VP_ADDR_STRLEN] = "-", r4[VP_ADDR_STRLEN] = "-", l6[VP_ADDR_STRLEN] = "-";
	int n;

	if (sv->local4.family)
		vp_addr_format(&sv->local4, l4);
	if (sv->remote4.family)
		vp_addr_format(&sv->remote4, r4);
	if (sv->local6.family)
		vp_addr_format(&sv->local6, l6);
	n = snprintf(buf, len, "topology=%s local4=%s netbits4=%u remote4=%s local6=%s netbits6=%u",
		     topology_names[sv->topology <= VP_TOPO_P2P ? sv->topology : 0], l4,
		     sv->netbits4, r4, l6, sv->netbits6);
	return n < 0 ? 0 : (size_t)n;
}

static bool parse_server_addr(const char *v, enum vp_family family, struct vp_addr *out)
{
	char err[VP_ERRLEN];

	memset(out, 0, sizeof(*out));
	if (!strcmp(v, "-"))
		return true;
	return vp_addr_parse(out, v, err) && out->family == family;
}

static bool parse_bits(const char *v, unsigned max, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || end == v || n > max)
		return false;
	*out = (unsigned)n;
	return true;
}

bool vp_server_parse(const char *text, struct vp_server *out)
{
	char buf[512], *save = NULL;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(buf))
		return false;
	strcpy(buf, text);
	for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *v = strchr(tok, '=');
		bool ok = false;

		if (!v)
			return false;
		*v++ = '\0';
		if (!strcmp(tok, "topology")) {
			for (int t = VP_TOPO_SUBNET; t <= VP_TOPO_P2P; ++t)
				if (!strcmp(v, topology_names[t])) {
					out->topology = (enum vp_topology)t;
					ok = true;
				}
			seen |= 1;
		} else if (!strcmp(tok, "local4")) {
			ok = parse_server_addr(v, VP_INET, &out->local4);
		} else if (!strcmp(tok, "netbits4")) {
			ok = parse_bits(v, 32, &out->netbits4);
		} else if (!strcmp(tok, "remote4")) {
			ok = parse_server_addr(v, VP_INET, &out->remote4);
		} else if (!strcmp(tok, "local6")) {
			ok = parse_server_addr(v, VP_INET6, &out->local6);
		} else if (!strcmp(tok, "netbits6")) {
			ok = parse_bits(v, 128, &out->netbits6);
		} else {
			ok = true;	/* a later version's field */
		}
		if (!ok)
			return false;
	}
	return seen && out->topology != VP_TOPO_AUTO;
}

static bool server_eq(const struct vp_server *a, const struct vp_server *b)
{
	return a->topology == b->topology && vp_addr_eq(&a->local4, &b->local4) &&
	       a->netbits4 == b->netbits4 && vp_addr_eq(&a->remote4, &b->remote4) &&
	       vp_addr_eq(&a->local6, &b->local6) && a->netbits6 == b->netbits6;
}

int vp_space_set_server(struct vp_space *s, const struct vp_server *server)
{
	int ret = 0;

	if (s->has_server && server_eq(&s->server, server))
		return 0;
	areas_free(s);
	for (size_t i = 0; i < s->config->n_pools; ++i) {
		s->pools[i].held = (struct held_list){ 0 };
		s->pools[i].online = s->pools[i].held_count = 0;
	}
	for (size_t i = 0; i < s->config->n_routers; ++i) {
		s->routers[i].held = (struct held_list){ 0 };
		s->routers[i].online = s->routers[i].held_count = 0;
	}
	for (size_t i = 0; i < tab_slots(s); ++i) {
		struct lease *l = tab_at(s, i);

		tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
		if (l) {
			memset(l->link, 0, sizeof(l->link));
			l->flags &= (uint8_t)~(LEASE_LINKED | LEASE_LINKED << LINK_ROUTER |
					       LEASE_ON_INSTANCE);
			l->pool = l->router = -1;	/* the allocators are new */
		}
	}
	memset(s->inst_online, 0, VP_INSTANCE_MAX * sizeof(*s->inst_online));
	memset(s->inst_count, 0, VP_INSTANCE_MAX * sizeof(*s->inst_count));
	s->slots_online = 0;
	s->server = *server;
	s->has_server = false;
	reservations_for_server(s);
	for (size_t i = 0; !ret && i < s->config->n_pools; ++i)
		ret = build_pool(s, i);
	for (size_t i = 0; !ret && i < s->config->n_routers; ++i)
		ret = build_router(s, i);
	if (ret)
		return ret;
	if (s->ops->begin(s->store) == 0) {
		ret = place_all(s, s->opts.no_drops || others_alive(s));
		s->ops->end(s->store);
	} else {
		ret = place_all(s, true);	/* nothing dropped unseen */
	}
	if (ret)
		return ret;
	for (size_t i = 0; i < s->config->n_pools; ++i)
		area_check_warn(s, &s->pools[i]);
	for (size_t i = 0; i < s->config->n_routers; ++i)
		area_check_warn(s, &s->routers[i]);
	s->has_server = true;
	if (!s->opts.read_only && !s->opts.no_drops) {
		/* For the command, which cannot ask OpenVPN. */
		char line[256];

		vp_server_format(server, line, sizeof(line));
		ret = s->ops->put_server(s->store, line);
		if (ret)
			emit_store_error(s, VP_STORE_OP_SERVER_FILE, "writing the server file", ret);
		else
			store_recovered(s, VP_STORE_OP_SERVER_FILE);
	}
	return 0;
}

bool vp_space_has_server(const struct vp_space *s)
{
	return s->has_server;
}

/* ---- connect and disconnect ------------------------------------------- */

/* What one connect has taken so far, to undo on failure. */
struct taking {
	struct lease *lease;		/* the (possibly new) lease being filled */
	bool is_new;
	int pool, router;
	struct vp_addr addr4, addr6;
	struct vp_prefix subnet4, subnet6;
	uint8_t flags;
};

/* The wall clock went back: held leases that went offline "in the future"
 * count as offline from now, so a step back delays a reclaim by hold-time at
 * most (a step forward may reclaim early: the clock is all there is).  Every
 * such lease at once, so that none waits twice; the held lists keep their
 * order, which is the order the leases went offline.  In memory: after a
 * restart the first reclaim looks again. */
static void clock_stepped_back(struct vp_space *s, int64_t now)
{
	/* Both tables while the table grows: a lease not moved yet counts. */
	for (size_t i = 0; i < tab_slots(s); ++i) {
		struct lease *l = tab_at(s, i);

		if (l && l->state == VP_LEASE_HELD && l->since > now)
			l->since = now;
	}
}

static bool reclaimable(struct vp_space *s, const struct lease *l, int64_t now)
{
	if (!l || l->state != VP_LEASE_HELD)
		return false;
	if (l->since > now)
		clock_stepped_back(s, now);
	return now - l->since >= s->config->hold_time;
}

/* Drop the oldest held lease of an area, if its hold-time has passed, and
 * persist that.  0, -ENOSPC (nothing to reclaim), store errors. */
static int reclaim_one(struct vp_space *s, struct area *a, int which, const struct vp_request *req)
{
	struct lease *victim = a->held.head;
	struct vp_event ev = { .type = VP_EV_RECLAIM, .pool = a->name };
	struct lease_addrs addrs;
	int ret;

	if (!reclaimable(s, victim, s->opts.now(s->opts.ud)))
		return -ENOSPC;
	(void)which;	/* the whole lease goes, whichever area needed room */
	ret = persist_del(s, victim);
	if (ret)
		return ret;
	ev.identity = req->identity;
	ev.identity_len = req->identity_len;
	ev.from = victim->identity;
	ev.from_len = victim->identity_len;
	lease_addrs(victim, &addrs);
	ev.address = addrs.addr4;
	ev.subnet4 = addrs.subnet4;
	ev.subnet6 = addrs.subnet6;
	emit(s, &ev);
	lease_destroy(s, victim);
	return 0;
}

/* A block from b (an area's allocator), reclaiming held leases of the area
 * as needed.  0, -ENOSPC, -ENOMEM, store errors. */
static int alloc_reclaiming(struct vp_space *s, struct area *a, enum vp_family family, int which,
			    const struct vp_request *req, struct vp_prefix *out)
{
	for (;;) {
		struct vp_blocks *b = area_blocks(a, family);
		int ret;

		if (!b)
			return -ENOSPC;
		ret = vp_blocks_alloc(b, out);
		if (ret != -ENOSPC)
			return ret;
		ret = reclaim_one(s, a, which, req);
		if (ret)
			return ret;
	}
}

static void undo_taking(struct vp_space *s, struct taking *t)
{
	if (t->pool >= 0) {
		struct area *p = &s->pools[t->pool];

		if (t->addr4.family && !(t->flags & LEASE_STATIC4))
			vp_blocks_release(p->v4, &t->addr4);
		if (t->addr6.family && !(t->flags & LEASE_STATIC6))
			vp_blocks_release(p->v6, &t->addr6);
	}
	if (t->router >= 0) {
		struct area *r = &s->routers[t->router];

		if (t->subnet4.addr.family && !(t->flags & LEASE_STATIC_SUBNET4))
			vp_blocks_release(r->v4, &t->subnet4.addr);
		if (t->subnet6.addr.family && !(t->flags & LEASE_STATIC_SUBNET6))
			vp_blocks_release(r->v6, &t->subnet6.addr);
	}
	memset(&t->addr4, 0, sizeof(t->addr4));
	memset(&t->addr6, 0, sizeof(t->addr6));
	memset(&t->subnet4, 0, sizeof(t->subnet4));
	memset(&t->subnet6, 0, sizeof(t->subnet6));
	t->pool = t->router = -1;
	t->flags = 0;
}

/* A block from the area's allocator of a family, reclaiming held leases of
 * the area if allowed. */
static int area_alloc(struct vp_space *s, struct area *a, enum vp_family family, int which,
		      bool reclaim, const struct vp_request *req, struct vp_prefix *out)
{
	struct vp_blocks *b = area_blocks(a, family);

	if (!b)
		return 0;
	if (!reclaim)
		return vp_blocks_alloc(b, out);
	return alloc_reclaiming(s, a, family, which, req, out);
}

/* Both families of an area at once, or nothing.  0, -ENOSPC, others. */
static int area_alloc_both(struct vp_space *s, struct area *a, int which, bool reclaim,
			   const struct vp_request *req, struct vp_prefix *got4,
			   struct vp_prefix *got6)
{
	int ret;

	memset(got4, 0, sizeof(*got4));
	memset(got6, 0, sizeof(*got6));
	ret = area_alloc(s, a, VP_INET, which, reclaim, req, got4);
	if (!ret)
		ret = area_alloc(s, a, VP_INET6, which, reclaim, req, got6);
	if (ret && got4->addr.family)
		vp_blocks_release(a->v4, &got4->addr);
	return ret;
}

/* The first matching area (pool or router pool) with a free block; failing
 * that, the first where reclaiming a held lease makes room: free space
 * anywhere is used before any sticky lease is taken away.
 * Returns the area's index, -1 when none matches (*matched false) or
 * none has room; *err gets a hard error. */
static int choose_area(struct vp_space *s, bool routers, const struct vp_request *req,
		       struct vp_prefix *got4, struct vp_prefix *got6, int *last, int *err)
{
	const struct vp_config *c = s->config;
	size_t n = routers ? c->n_routers : c->n_pools;
	int which = routers ? LINK_ROUTER : LINK_POOL;

	*err = 0;
	for (int pass = 0; pass < 2; ++pass) {
		for (size_t i = 0; i < n; ++i) {
			struct area *a = routers ? &s->routers[i] : &s->pools[i];
			const struct vp_match *m = routers ? c->routers[i].match : c->pools[i].match;
			size_t nm = routers ? c->routers[i].n_match : c->pools[i].n_match;
			int ret;

			if (!a->usable || !vp_match_all(m, nm, req->getvar, req->getvar_ud))
				continue;
			*last = (int)i;
			ret = area_alloc_both(s, a, which, pass == 1, req, got4, got6);
			if (!ret)
				return (int)i;
			if (ret != -ENOSPC) {
				*err = ret;
				return -1;
			}
		}
	}
	return -1;
}

/* The client's address(es): its reservation, else from the first matching
 * pool with room.  0; -ENOENT (no pool matches); -ENOSPC with *last set. */
static int take_address(struct vp_space *s, const struct vp_request *req,
			const struct vp_static_config *st, struct taking *t, int *last)
{
	struct vp_prefix got4, got6;
	int err;

	if (st && st->has_address && t->lease->slot == 0) {
		t->addr4 = st->address;
		t->flags |= LEASE_STATIC4;
		t->pool = pool_of(s, &st->address);
		if (t->pool < 0 || !s->pools[t->pool].usable)
			return -ENOENT;
		*last = t->pool;
		if (!s->pools[t->pool].v6)
			return 0;
		if (st->has_address6) {
			t->addr6 = st->address6;
			t->flags |= LEASE_STATIC6;
			return 0;
		}
		err = alloc_reclaiming(s, &s->pools[t->pool], VP_INET6, LINK_POOL, req, &got6);
		if (!err)
			t->addr6 = got6.addr;
		return err;
	}
	t->pool = choose_area(s, false, req, &got4, &got6, last, &err);
	if (t->pool < 0)
		return err ? err : *last >= 0 ? -ENOSPC : -ENOENT;
	t->addr4 = got4.len == 30 ? vp_addr_add(&got4.addr, 2, 0) : got4.addr;
	t->addr6 = got6.addr;
	if (st && st->has_address6 && t->lease->slot == 0 && got6.addr.family) {
		/* The reservation replaces the dynamic IPv6 address. */
		vp_blocks_release(s->pools[t->pool].v6, &got6.addr);
		t->addr6 = st->address6;
		t->flags |= LEASE_STATIC6;
	}
	return 0;
}

/* A routed subnet: the reservation, else from the first matching router
 * pool with room.  0 (also when no router pool matches); -ENOSPC, *last. */
static int take_subnet(struct vp_space *s, const struct vp_request *req,
		       const struct vp_static_config *st, struct taking *t, int *last)
{
	struct vp_prefix got4, got6;
	int err;

	if (st && (st->has_subnet || st->has_subnet6) && t->lease->slot == 0) {
		if (st->has_subnet) {
			t->subnet4 = st->subnet;
			t->flags |= LEASE_STATIC_SUBNET4;
		}
		if (st->has_subnet6) {
			t->subnet6 = st->subnet6;
			t->flags |= LEASE_STATIC_SUBNET6;
		}
		t->router = router_of(s, st->has_subnet ? &st->subnet : &st->subnet6);
		return 0;
	}
	t->router = choose_area(s, true, req, &got4, &got6, last, &err);
	if (t->router < 0)
		return err ? err : *last >= 0 ? -ENOSPC : 0;
	t->subnet4 = got4;
	t->subnet6 = got6;
	return 0;
}

/* Whether a returning client's lease still fits: its pool and router pool
 * still match it, and its static parts still are its reservation. */
static bool lease_still_fits(const struct vp_space *s, const struct lease *l,
			     const struct vp_request *req, const struct vp_static_config *st)
{
	const struct vp_config *c = s->config;

	if (l->pool < 0 || !s->pools[l->pool].usable)
		return false;
	if (st && st->has_address && !(l->flags & LEASE_STATIC4))
		return false;
	if ((!st || !st->has_subnet) && (l->flags & LEASE_STATIC_SUBNET4))
		return false;
	if (st && (st->has_subnet || st->has_subnet6) &&
	    !(l->flags & (LEASE_STATIC_SUBNET4 | LEASE_STATIC_SUBNET6)))
		return false;
	if (!(l->flags & LEASE_STATIC4) &&
	    !vp_match_all(c->pools[l->pool].match, c->pools[l->pool].n_match, req->getvar,
			  req->getvar_ud))
		return false;
	if (s->pools[l->pool].v6 && !(l->has & HAS_ADDR6))
		return false;
	if (l->router >= 0 && lease_dynamic_subnet(l) &&
	    !vp_match_all(c->routers[l->router].match, c->routers[l->router].n_match,
			  req->getvar, req->getvar_ud))
		return false;
	if (l->router < 0) {
		/* Not a router last time: is it one now? */
		for (size_t i = 0; i < c->n_routers; ++i)
			if (vp_match_all(c->routers[i].match, c->routers[i].n_match, req->getvar,
					 req->getvar_ud))
				return false;
	}
	return true;
}

/* The first slot of the identity without an online session, and its lease
 * (NULL: none yet). */
static uint16_t free_slot(const struct vp_space *s, const struct vp_request *req,
			  struct lease **found)
{
	uint16_t slot = 0;

	for (;;) {
		*found = lease_find(s, req->identity, req->identity_len, slot);
		if (!*found || (*found)->state != VP_LEASE_ONLINE || slot == UINT16_MAX)
			return slot;
		slot++;
	}
}

static void fill_grant(const struct vp_space *s, const struct lease *l, struct vp_grant *g,
		       bool sticky)
{
	const struct area *p = &s->pools[l->pool];
	struct lease_addrs a;

	lease_addrs(l, &a);
	memset(g, 0, sizeof(*g));
	g->slot = l->slot;
	g->pool = &s->config->pools[l->pool];
	g->router = l->router >= 0 ? &s->config->routers[l->router] : NULL;
	g->addr4 = a.addr4;
	g->addr6 = a.addr6;
	g->subnet4 = a.subnet4;
	g->subnet6 = a.subnet6;
	g->is_static = l->flags & LEASE_STATIC4;
	g->sticky = sticky;
	g->in_use = area_used(p);
	g->size = area_size(p);
	if (s->server.topology == VP_TOPO_NET30) {
		struct vp_prefix q = vp_prefix_of(&a.addr4, 30);
		struct vp_addr one = vp_addr_add(&q.addr, 1, 0);

		g->peer4 = vp_addr_eq(&one, &a.addr4) ? vp_addr_add(&q.addr, 2, 0) : one;
	} else if (s->server.topology == VP_TOPO_P2P) {
		g->peer4 = s->server.local4;
	}
}

static void fill_failure(const struct vp_space *s, int pool, int router, struct vp_grant *g)
{
	memset(g, 0, sizeof(*g));
	if (router >= 0) {
		g->router = &s->config->routers[router];
		g->in_use = area_used(&s->routers[router]);
		g->size = area_size(&s->routers[router]);
	} else if (pool >= 0) {
		g->pool = &s->config->pools[pool];
		g->in_use = area_used(&s->pools[pool]);
		g->size = area_size(&s->pools[pool]);
	}
}

/* The slot this space's sessions carry. */
static uint16_t my_instance(const struct vp_space *s)
{
	return s->my_slot >= 0 ? (uint16_t)s->my_slot : VP_INSTANCE_NONE;
}

static void lease_touch(struct vp_space *s, struct lease *l, const struct vp_request *req)
{
	int64_t now = s->opts.now(s->opts.ud);

	if (!l->sessions)
		l->created = now;
	l->sessions++;
	l->since = now;
	real_pack(&l->real, req->real);
}

/* A returning client whose lease fits: online again, same addresses. */
static int connect_sticky(struct vp_space *s, struct lease *l, const struct vp_request *req,
			  struct vp_grant *g, bool *store_failed)
{
	struct lease saved = *l;
	int ret;

	/* Online on another instance (the client moved): this session takes
	 * the lease over. */
	inst_unlist(s, l);
	l->instance = my_instance(s);
	lease_set_state(s, l, VP_LEASE_ONLINE);
	lease_touch(s, l, req);
	ret = persist_put(s, l);
	if (ret) {
		*store_failed = true;
		l->sessions = saved.sessions;
		l->since = saved.since;
		l->created = saved.created;
		l->real = saved.real;
		/* Back on the held list, at its old place in age only roughly:
		 * it goes to the tail, which only delays its reclaim (or back to
		 * the instance it was taken from). */
		inst_unlist(s, l);
		l->instance = saved.instance;
		lease_set_state(s, l, saved.state);
		return ret;
	}
	fill_grant(s, l, g, true);
	return 0;
}

static int connect_new(struct vp_space *s, const struct vp_request *req, uint16_t slot,
		       const struct vp_static_config *st, struct vp_grant *g, bool *store_failed)
{
	struct taking t = { .pool = -1, .router = -1 };
	int last_pool = -1, last_router = -1, ret;
	struct lease *l = lease_new(s, req->identity, req->identity_len, slot);

	if (!l)
		return -ENOMEM;
	t.lease = l;
	ret = take_address(s, req, st, &t, &last_pool);
	if (!ret)
		ret = take_subnet(s, req, st, &t, &last_router);
	if (ret) {
		undo_taking(s, &t);
		fill_failure(s, last_pool, ret == -ENOSPC ? last_router : -1, g);
		goto out_unlink;
	}
	ret = lease_set_addrs(l, &(struct lease_addrs){ t.addr4, t.addr6, t.subnet4, t.subnet6 });
	if (ret) {
		undo_taking(s, &t);
		fill_failure(s, -1, -1, g);
		goto out_unlink;
	}
	l->pool = t.pool;
	l->router = t.router;
	l->flags = t.flags;
	l->state = VP_LEASE_ONLINE;
	l->instance = my_instance(s);
	lease_touch(s, l, req);
	ret = persist_put(s, l);
	if (ret) {
		*store_failed = true;
		undo_taking(s, &t);
		l->pool = l->router = -1;
		fill_failure(s, -1, -1, g);
		goto out_unlink;
	}
	lease_account(s, l, 1);
	inst_list(s, l);
	area_check_warn(s, &s->pools[l->pool]);
	if (l->router >= 0)
		area_check_warn(s, &s->routers[l->router]);
	fill_grant(s, l, g, false);
	return 0;

out_unlink:
	lease_unlink(s, l);
	lease_free(l);
	return ret;
}

/* Begin a change: the store's mutex, what the others wrote, and the
 * sessions of crashed instances ended.  0 or -errno. */
static int change_begin(struct vp_space *s)
{
	int ret = s->ops->begin(s->store);

	if (ret)
		return ret;
	check_crashed(s);
	return 0;
}

static void change_end(struct vp_space *s)
{
	s->ops->end(s->store);
}

static int connect_locked(struct vp_space *s, const struct vp_request *req, struct vp_grant *g,
			  bool *store_failed)
{
	const struct vp_static_config *st;
	struct lease *l;
	uint16_t slot;
	int ret;

	st = static_find(s, req->identity, req->identity_len);
	l = lease_find(s, req->identity, req->identity_len, 0);
	if (l && l->state == VP_LEASE_ONLINE && s->my_slot >= 0 && l->instance != s->my_slot)
		slot = 0;	/* online on another instance: the client moved */
	else
		slot = free_slot(s, req, &l);
	if (slot == UINT16_MAX)
		return -ENOSPC;
	if (l && l->pool >= 0 && lease_still_fits(s, l, req, st)) {
		ret = connect_sticky(s, l, req, g, store_failed);
		goto out;
	}
	if (l) {
		/* Its pool no longer suits it: start afresh. */
		ret = persist_del(s, l);
		if (ret) {
			*store_failed = true;
			return ret;
		}
		lease_destroy(s, l);
	}
	ret = connect_new(s, req, slot, st, g, store_failed);
out:
	if (!ret)
		maybe_compact(s);
	return ret;
}

int vp_space_connect(struct vp_space *s, const struct vp_request *req, struct vp_grant *g,
		     bool *store_failed)
{
	int ret;

	*store_failed = false;
	memset(g, 0, sizeof(*g));
	if (s->opts.read_only)
		return -EROFS;
	if (!s->has_server)
		return -EAGAIN;
	if (!req->identity_len || req->identity_len > VP_IDENTITY_MAX)
		return -EINVAL;
	ret = change_begin(s);
	if (ret) {
		*store_failed = true;
		return ret;
	}
	ret = connect_locked(s, req, g, store_failed);
	change_end(s);
	return ret;
}

int vp_space_disconnect(struct vp_space *s, const uint8_t *identity, size_t identity_len,
			uint16_t slot, struct vp_grant *ended)
{
	struct lease *l;
	bool locked;
	int ret;

	if (s->opts.read_only)
		return -EROFS;
	locked = change_begin(s) == 0;
	l = lease_find(s, identity, identity_len, slot);
	if (!l || l->state != VP_LEASE_ONLINE) {
		ret = -ENOENT;
		goto out;
	}
	if (ended) {
		fill_grant(s, l, ended, false);
		ended->since = l->since;
	}
	if (s->my_slot >= 0 && l->instance != s->my_slot) {
		ret = VP_DISCONNECT_MOVED;	/* another instance's session now */
		goto out;
	}
	if (slot) {
		ret = persist_del(s, l);
		lease_destroy(s, l);
	} else {
		lease_set_state(s, l, VP_LEASE_HELD);
		l->since = s->opts.now(s->opts.ud);
		ret = persist_put(s, l);
	}
	/* The session is over whatever the disk says: a lease the journal
	 * still shows online is made held when its instance is found gone. */
	if (!locked && !ret)
		ret = -ENOLCK;
	if (ret)
		emit_store_error(s, VP_STORE_OP_WRITE, "recording a disconnect", ret);
	else
		maybe_compact(s);
	ret = 0;
out:
	if (locked)
		change_end(s);
	return ret;
}

/* ---- instances, release and import ------------------------------------ */

int vp_space_register(struct vp_space *s, const char *name, int ifindex, const char *dev,
		      pid_t *live_pid)
{
	struct vp_instance_rec rec = { .pid = (int32_t)getpid(), .ifindex = ifindex };
	int64_t now;
	int ret;

	if (live_pid)
		*live_pid = 0;
	if (s->opts.read_only)
		return -EROFS;
	if (s->my_slot >= 0)
		return -EALREADY;
	if (!name || !*name || strlen(name) >= sizeof(rec.name) ||
	    (dev && strlen(dev) >= sizeof(rec.dev)))
		return -EINVAL;
	strcpy(rec.name, name);
	if (dev)
		strcpy(rec.dev, dev);
	ret = change_begin(s);
	if (ret)
		return ret;
	ret = s->ops->register_instance(s->store, &rec, live_pid);
	if (!ret) {
		s->my_slot = rec.slot;
		/* Sessions of the slot's last holder, should it have died just
		 * now, are not this instance's. */
		now = s->opts.now(s->opts.ud);
		if (s->inst_count[rec.slot])
			end_dead_instance(s, rec.slot, now, true, false);
	}
	change_end(s);
	return ret;
}

const char *vp_space_instance_name(const struct vp_space *s)
{
	return s->my_slot >= 0 ? instance_name(s, (uint16_t)s->my_slot) : "";
}

const char *vp_space_slot_name(const struct vp_space *s, uint16_t slot)
{
	const struct vp_instance_rec *r = slot < VP_INSTANCE_MAX ?
		s->ops->instance(s->store, slot) : NULL;

	return r ? r->name : NULL;
}

const struct vp_instance_rec *vp_space_instance(const struct vp_space *s, uint16_t slot)
{
	return slot < VP_INSTANCE_MAX ? s->ops->instance(s->store, slot) : NULL;
}

bool vp_space_slot_alive(struct vp_space *s, uint16_t slot)
{
	return slot < VP_INSTANCE_MAX && s->ops->slot_alive(s->store, slot);
}

bool vp_space_others_alive(struct vp_space *s)
{
	return others_alive(s);
}

size_t vp_space_instances_seen(const struct vp_space *s)
{
	size_t n = 0;

	for (uint16_t i = 0; i < VP_INSTANCE_MAX; ++i) {
		const struct vp_instance_rec *r = s->ops->instance(s->store, i);
		bool again = false;

		if (!r)
			continue;
		for (uint16_t j = 0; j < i && !again; ++j) {
			const struct vp_instance_rec *o = s->ops->instance(s->store, j);

			again = o && !strcmp(o->name, r->name);
		}
		n += !again;
	}
	return n;
}

int vp_space_each_online(const struct vp_space *s,
			 int (*fn)(void *ud, const struct vp_lease_rec *rec), void *ud)
{
	struct vp_lease_rec rec;

	if (s->my_slot < 0)
		return 0;
	for (struct lease *l = s->inst_online[s->my_slot].head; l; l = l->link[LINK_POOL].next) {
		int ret;

		lease_to_rec(l, &rec);
		ret = fn(ud, &rec);
		if (ret)
			return ret;
	}
	return 0;
}

int vp_space_sync(struct vp_space *s)
{
	int ret = s->opts.read_only ? -EROFS : change_begin(s);

	if (!ret)
		change_end(s);
	return ret;
}

int vp_space_release(struct vp_space *s, const uint8_t *id, size_t len)
{
	struct lease *l;
	int ret;

	if (s->opts.read_only)
		return -EROFS;
	if (!len || len > VP_IDENTITY_MAX)
		return -ENOENT;
	ret = change_begin(s);
	if (ret)
		return ret;
	l = lease_find(s, id, len, 0);
	if (!l)
		ret = -ENOENT;
	else if (l->state == VP_LEASE_ONLINE)
		ret = -EBUSY;
	else
		ret = persist_del(s, l);
	if (!ret) {
		lease_destroy(s, l);
		maybe_compact(s);
	}
	change_end(s);
	return ret;
}

/* The client an address is reserved for (other than the identity), or
 * NULL. */
static const char *reserved_owner(const struct vp_space *s, const struct lease *l,
				  const struct vp_addr *a)
{
	bool v4 = a->family == VP_INET;

	for (size_t i = 0; i < s->config->n_statics; ++i) {
		const struct vp_static_config *st = &s->in_force[i];

		if (strlen(st->identity) == l->identity_len &&
		    !memcmp(st->identity, l->identity, l->identity_len))
			continue;
		if ((v4 ? st->has_address : st->has_address6) &&
		    vp_addr_eq(a, v4 ? &st->address : &st->address6))
			return st->identity;
	}
	return NULL;
}

/* Why an address of an imported lease was refused: -EDOM with *why, or
 * -EADDRINUSE. */
static int import_refused(struct vp_space *s, const struct lease *l,
			  const struct lease_addrs *stored, const char *reason, const char **why)
{
	if (!strcmp(reason, "taken")) {
		*why = "leased to another identity";
		return -EADDRINUSE;
	}
	if (!strcmp(reason, "reserved")) {
		const char *owner = reserved_owner(s, l, &stored->addr4);

		if (!owner && stored->addr6.family)
			owner = reserved_owner(s, l, &stored->addr6);
		snprintf(s->why, sizeof(s->why), "reserved for client %s", owner ? owner : "?");
		*why = s->why;
	} else if (!strcmp(reason, "server-address")) {
		*why = "a server address";
	} else if (!strcmp(reason, "outside-range")) {
		*why = "outside the pool's range";
	} else if (!strcmp(reason, "excluded")) {
		*why = "excluded";
	} else {
		*why = "outside every pool";
	}
	return -EDOM;
}

static int import_locked(struct vp_space *s, const uint8_t *id, size_t len,
			 const struct vp_addr *a4, const struct vp_addr *a6, const char **why)
{
	int64_t now = s->opts.now(s->opts.ud);
	struct lease_addrs stored = { .addr4 = *a4 };
	struct lease_addrs got;
	const char *reason;
	struct lease *l;
	int ret;

	if (lease_find(s, id, len, 0) || lease_find(s, id, len, 1))
		return -EEXIST;
	if (a6 && a6->family)
		stored.addr6 = *a6;
	l = lease_new(s, id, len, 0);
	if (!l)
		return -ENOMEM;
	l->state = VP_LEASE_HELD;
	l->created = l->since = now;
	l->instance = VP_INSTANCE_NONE;
	ret = lease_set_addrs(l, &stored);
	if (ret)
		goto out_free;
	reason = place_lease(s, l);
	if (!reason && (l->pool < 0 || !s->pools[l->pool].usable))
		reason = "no-pool";
	if (reason) {
		ret = import_refused(s, l, &stored, reason, why);
		goto out_free;
	}
	lease_addrs(l, &got);
	if (!got.addr6.family && s->pools[l->pool].v6) {
		struct vp_prefix block;

		ret = vp_blocks_alloc(s->pools[l->pool].v6, &block);
		if (!ret) {
			got.addr6 = block.addr;
			ret = lease_set_addrs(l, &got);
			if (ret)
				(void)vp_blocks_release(s->pools[l->pool].v6, &block.addr);
		}
		if (ret)
			goto out_free;
	}
	l->state = VP_LEASE_ONLINE;
	lease_account(s, l, 1);
	lease_set_state(s, l, VP_LEASE_HELD);
	ret = persist_put(s, l);
	if (ret) {
		lease_destroy(s, l);
		return ret;
	}
	area_check_warn(s, &s->pools[l->pool]);
	return 0;

out_free:
	lease_release_blocks(s, l);
	lease_unlink(s, l);
	lease_free(l);
	return ret;
}

int vp_space_import(struct vp_space *s, const uint8_t *id, size_t len, const struct vp_addr *a4,
		    const struct vp_addr *a6, const char **why)
{
	int ret;

	*why = NULL;
	if (s->opts.read_only)
		return -EROFS;
	if (!s->has_server)
		return -EAGAIN;
	if (!len || len > VP_IDENTITY_MAX || !a4 || a4->family != VP_INET ||
	    (a6 && a6->family && a6->family != VP_INET6))
		return -EINVAL;
	ret = change_begin(s);
	if (ret)
		return ret;
	ret = import_locked(s, id, len, a4, a6, why);
	if (!ret)
		maybe_compact(s);
	change_end(s);
	return ret;
}

/* ---- figures ------------------------------------------------------------ */

static void area_usage(const struct area *a, struct vp_pool_usage *u)
{
	memset(u, 0, sizeof(*u));
	u->usable = a->usable;
	u->size = area_size(a);
	u->online = a->online;
	u->held = a->held_count;
	u->free = u->size - (area_used(a) < u->size ? area_used(a) : u->size);
}

void vp_space_pool_usage(const struct vp_space *s, size_t pool, struct vp_pool_usage *u)
{
	area_usage(&s->pools[pool], u);
}

void vp_space_router_usage(const struct vp_space *s, size_t router, struct vp_pool_usage *u)
{
	area_usage(&s->routers[router], u);
}

size_t vp_space_leases(const struct vp_space *s)
{
	return s->leases.n;
}

struct each_ctx {
	int (*fn)(void *ud, const struct vp_lease_rec *rec);
	void *ud;
};

static int each_adapter(void *ctx, const struct vp_lease_rec *rec)
{
	struct each_ctx *e = ctx;

	return e->fn(e->ud, rec);
}

int vp_space_each(const struct vp_space *s, int (*fn)(void *ud, const struct vp_lease_rec *rec),
		  void *ud)
{
	struct each_ctx e = { fn, ud };

	return lease_each_emit((void *)s, each_adapter, &e);
}

/* ---- the leases with their places (the command) ------------------------ */

void vp_space_count(const struct vp_space *s, uint64_t *online, uint64_t *held)
{
	*online = *held = 0;
	for (size_t i = 0; i < tab_slots(s); ++i) {
		tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
		if (tab_at(s, i))
			*(tab_at(s, i)->state == VP_LEASE_ONLINE ? online : held) += 1;
	}
}

static int visit_placed(const struct lease *l,
			int (*fn)(void *ud, const struct vp_space_lease *l), void *ud)
{
	struct vp_space_lease v = {
		.pool = l->pool, .router = l->router,
		.static4 = (l->flags & LEASE_STATIC4) != 0,
		.static_subnet = (l->flags & (LEASE_STATIC_SUBNET4 | LEASE_STATIC_SUBNET6)) != 0,
	};

	lease_to_rec(l, &v.rec);
	return fn(ud, &v);
}

/* The order of vp_space_each_placed: pool (none last), then IPv4 address
 * (none last) in one 64-bit key; identity and slot on a tie. */
struct by_place {
	uint64_t key;
	const struct lease *lease;
};

static int by_place_cmp(const void *a, const void *b)
{
	const struct by_place *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return lease_order(x->lease, y->lease);
}

int vp_space_each_placed(const struct vp_space *s, bool sorted,
			 int (*fn)(void *ud, const struct vp_space_lease *l), void *ud)
{
	struct by_place *all;
	size_t n = 0;
	int ret = 0;

	if (!sorted) {
		for (size_t i = 0; i < tab_slots(s) && !ret; ++i) {
			tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
			if (tab_at(s, i))
				ret = visit_placed(tab_at(s, i), fn, ud);
		}
		return ret;
	}
	all = malloc((s->leases.n + 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < tab_slots(s); ++i) {
		const struct lease *l = tab_at(s, i);

		tab_prefetch(s, i + LEASE_PREFETCH_AHEAD);
		if (!l)
			continue;
		all[n].key = (uint64_t)(uint16_t)l->pool << 33 |
			     (uint64_t)!(l->has & HAS_ADDR4) << 32 |
			     ((l->has & HAS_ADDR4) ? l->addr4 : 0);
		all[n++].lease = l;
	}
	qsort(all, n, sizeof(*all), by_place_cmp);
	for (size_t i = 0; i < n && !ret; ++i) {
		if (i + LEASE_PREFETCH_AHEAD < n)
			lease_prefetch(all[i + LEASE_PREFETCH_AHEAD].lease);
		ret = visit_placed(all[i].lease, fn, ud);
	}
	free(all);
	return ret;
}

size_t vp_space_memory(const struct vp_space *s)
{
	size_t total = sizeof(*s) + vp_htab_memory(&s->leases);

	for (size_t i = 0; i < tab_slots(s); ++i)
		if (tab_at(s, i))
			total += sizeof(struct lease) + tab_at(s, i)->identity_len +
				 (tab_at(s, i)->v6 ? sizeof(struct lease_v6) : 0);
	for (size_t i = 0; i < s->config->n_pools; ++i) {
		if (s->pools[i].v4)
			total += vp_blocks_memory(s->pools[i].v4);
		if (s->pools[i].v6)
			total += vp_blocks_memory(s->pools[i].v6);
	}
	for (size_t i = 0; i < s->config->n_routers; ++i) {
		if (s->routers[i].v4)
			total += vp_blocks_memory(s->routers[i].v4);
		if (s->routers[i].v6)
			total += vp_blocks_memory(s->routers[i].v6);
	}
	return total;
}
