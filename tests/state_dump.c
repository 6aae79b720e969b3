/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state_dump STATE-DIR: a test-only look at the leases a state directory
 * holds, read the way the command will read it (vp_store_read, no lock).
 * One logfmt line per lease, sorted by identity and slot:
 *
 *   lease identity=alice slot=0 state=held address=10.8.0.12 subnet=10.9.1.0/24
 *
 * then one summary line:
 *
 *   report records=123 leases=7 torn=0 torn_offset=0 corrupt=0 corrupt_offset=0 overlaps=0
 *
 * overlaps counts pairs of leases whose addresses or subnets (of any family
 * and kind) overlap; each such pair is also printed as an "overlap" line.
 * Exit status: 0 when the journal replayed (torn tail or not), 2 when it is
 * damaged in the middle, 1 on an error (message on stderr).  The end-to-end
 * stress tests use it to check for addresses held twice and leases lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logfmt.h"
#include "store.h"

struct entry {
	uint8_t *identity;
	size_t identity_len;
	uint16_t slot;
	uint64_t seq;		/* replay order: the last record of a key wins */
	bool deleted;
	struct vp_lease_rec rec;
};

struct dump {
	struct entry *v;
	size_t n, cap;
};

static int remember(struct dump *d, const uint8_t *id, size_t len, uint16_t slot,
		    const struct vp_lease_rec *rec)
{
	struct entry *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 1024;
		struct entry *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	e = &d->v[d->n];
	memset(e, 0, sizeof(*e));
	e->identity = malloc(len ? len : 1);
	if (!e->identity)
		return -ENOMEM;
	memcpy(e->identity, id, len);
	e->identity_len = len;
	e->slot = slot;
	e->seq = d->n++;
	e->deleted = rec == NULL;
	if (rec) {
		e->rec = *rec;
		e->rec.identity = NULL;
	}
	return 0;
}

static int on_put(void *ud, const struct vp_lease_rec *rec)
{
	return remember(ud, rec->identity, rec->identity_len, rec->slot, rec);
}

static int on_del(void *ud, const uint8_t *identity, size_t identity_len, uint16_t slot)
{
	return remember(ud, identity, identity_len, slot, NULL);
}

static int by_key_then_seq(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	size_t n = a->identity_len < b->identity_len ? a->identity_len : b->identity_len;
	int c = memcmp(a->identity, b->identity, n);

	if (c)
		return c;
	if (a->identity_len != b->identity_len)
		return a->identity_len < b->identity_len ? -1 : 1;
	if (a->slot != b->slot)
		return a->slot < b->slot ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static bool same_key(const struct entry *a, const struct entry *b)
{
	return a->identity_len == b->identity_len && a->slot == b->slot &&
	       !memcmp(a->identity, b->identity, a->identity_len);
}

/* One address or subnet of a lease, for the overlap check. */
struct span {
	struct vp_range r;
	const struct entry *owner;
};

static int by_first(const void *pa, const void *pb)
{
	const struct span *a = pa, *b = pb;

	return vp_addr_cmp(&a->r.first, &b->r.first);
}

static void add_span(struct span *v, size_t *n, const struct vp_prefix *p, const struct entry *e)
{
	if (!p->addr.family)
		return;
	v[*n].r = vp_prefix_range(p);
	v[*n].owner = e;
	++*n;
}

/* Pairs of live leases that share an address or whose subnets overlap. */
static unsigned long count_overlaps(struct entry **live, size_t n)
{
	struct span *v = calloc(n * 4 + 1, sizeof(*v));
	struct vp_strbuf line = { 0 };
	unsigned long overlaps = 0;
	size_t m = 0;

	if (!v)
		return (unsigned long)-1;
	for (size_t i = 0; i < n; ++i) {
		const struct vp_lease_rec *r = &live[i]->rec;
		struct vp_prefix a4 = { r->addr4, 32 }, a6 = { r->addr6, 128 };

		add_span(v, &m, &a4, live[i]);
		add_span(v, &m, &a6, live[i]);
		add_span(v, &m, &r->subnet4, live[i]);
		add_span(v, &m, &r->subnet6, live[i]);
	}
	qsort(v, m, sizeof(*v), by_first);
	for (size_t i = 0; i < m; ++i) {
		for (size_t j = i + 1; j < m && vp_range_overlaps(&v[i].r, &v[j].r); ++j) {
			char a[VP_RANGE_STRLEN], b[VP_RANGE_STRLEN];

			overlaps++;
			vp_strbuf_reset(&line);
			vp_strbuf_add(&line, "overlap", 7);
			vp_logfmt_add(&line, "identity", v[i].owner->identity, v[i].owner->identity_len);
			vp_logfmt_adds(&line, "range", vp_range_format(&v[i].r, a));
			vp_logfmt_add(&line, "other", v[j].owner->identity, v[j].owner->identity_len);
			vp_logfmt_adds(&line, "other_range", vp_range_format(&v[j].r, b));
			if (!line.oom)
				printf("%s\n", line.s);
		}
	}
	vp_strbuf_free(&line);
	free(v);
	return overlaps;
}

static void print_lease(struct vp_strbuf *line, const struct entry *e)
{
	char text[VP_PREFIX_STRLEN];
	const struct vp_lease_rec *r = &e->rec;

	vp_strbuf_reset(line);
	vp_strbuf_add(line, "lease", 5);
	vp_logfmt_add(line, "identity", e->identity, e->identity_len);
	vp_logfmt_addu(line, "slot", e->slot);
	vp_logfmt_adds(line, "state", r->state == VP_LEASE_ONLINE ? "online" : "held");
	if (r->addr4.family)
		vp_logfmt_adds(line, "address", vp_addr_format(&r->addr4, text));
	if (r->addr6.family)
		vp_logfmt_adds(line, "address6", vp_addr_format(&r->addr6, text));
	if (r->subnet4.addr.family)
		vp_logfmt_adds(line, "subnet", vp_prefix_format(&r->subnet4, text));
	if (r->subnet6.addr.family)
		vp_logfmt_adds(line, "subnet6", vp_prefix_format(&r->subnet6, text));
	vp_logfmt_addu(line, "sessions", r->sessions);
	if (!line->oom)
		printf("%s\n", line->s);
}

int main(int argc, char **argv)
{
	struct dump d = { 0 };
	struct vp_store_replay replay = { .put = on_put, .del = on_del, .ud = &d };
	struct vp_store_report rep;
	struct vp_strbuf line = { 0 };
	struct entry **live;
	unsigned long overlaps;
	size_t leases = 0;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: state_dump STATE-DIR\n");
		return 1;
	}
	ret = vp_store_read(argv[1], &replay, &rep);
	if (ret == -ENOENT) {
		memset(&rep, 0, sizeof(rep));
	} else if (ret) {
		fprintf(stderr, "state_dump: %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	qsort(d.v, d.n, sizeof(*d.v), by_key_then_seq);
	live = calloc(d.n + 1, sizeof(*live));
	if (!live) {
		fprintf(stderr, "state_dump: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < d.n; ++i) {
		if (i + 1 < d.n && same_key(&d.v[i], &d.v[i + 1]))
			continue;	/* superseded */
		if (d.v[i].deleted)
			continue;
		print_lease(&line, &d.v[i]);
		live[leases++] = &d.v[i];
	}
	overlaps = count_overlaps(live, leases);
	printf("report records=%llu leases=%zu torn=%d torn_offset=%llu corrupt=%d corrupt_offset=%llu overlaps=%ld\n",
	       (unsigned long long)rep.records, leases, rep.torn,
	       (unsigned long long)rep.torn_offset, rep.corrupt,
	       (unsigned long long)rep.corrupt_offset, (long)overlaps);
	free(live);
	for (size_t i = 0; i < d.n; ++i)
		free(d.v[i].identity);
	free(d.v);
	vp_strbuf_free(&line);
	return rep.corrupt ? 2 : 0;
}
