/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * core/store.c: the journal loader on any leases.journal.
 *
 * The first input byte picks how the rest becomes the file:
 *   0  the bytes are the whole file
 *   1  a valid header, then the bytes
 *   2  a valid header, then the bytes as records whose CRC-32C the harness
 *      sets right (so the fuzzer gets past the checksum into the decoder)
 *   3  the bytes with the first four as the header's version
 * and bit 2 of that byte makes the header of modes 1 and 2 one of version 2
 * (with a file id), where records may also be INSTANCE and MOVED ones and a
 * PUT carries an instance slot.
 *
 * Properties: vp_store_read() and vp_store_open() replay the same records
 * and report the same torn tail or damage; every record replayed is a lease
 * vp_store_put() accepts, and written to a fresh journal it reads back the
 * same; after vp_store_open() repaired the file (cut a torn tail, set damage
 * aside, cut a MOVED record left by a compaction that died), it reads clean:
 * no torn tail, no damage, and the records kept.  Every INSTANCE record
 * replayed has a slot in range and a name and device that are strings.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store.h"

#define MAX_KEPT 512

/* The records of one replay, copied (identities into one arena). */
struct replayed {
	size_t n;
	size_t ninst;			/* INSTANCE records */
	bool is_del[MAX_KEPT];
	struct vp_lease_rec rec[MAX_KEPT];
	uint8_t arena[64 * 1024 + MAX_KEPT * 8];
	size_t used;
};

static struct replayed first, second;

static int keep(struct replayed *r, const struct vp_lease_rec *rec, bool is_del)
{
	if (r->n == MAX_KEPT)
		return 0;
	FUZZ_CHECK(rec->identity_len >= 1 && rec->identity_len <= VP_IDENTITY_MAX);
	FUZZ_CHECK(r->used + rec->identity_len <= sizeof(r->arena));
	memcpy(r->arena + r->used, rec->identity, rec->identity_len);
	r->rec[r->n] = *rec;
	r->rec[r->n].identity = r->arena + r->used;
	r->is_del[r->n++] = is_del;
	r->used += rec->identity_len;
	return 0;
}

static bool prefix_ok(const struct vp_prefix *p, enum vp_family family)
{
	struct vp_prefix net;

	if (!p->addr.family)
		return p->len == 0;
	if (p->addr.family != family || p->len > vp_family_bits(family))
		return false;
	net = vp_prefix_of(&p->addr, p->len);
	return vp_addr_eq(&net.addr, &p->addr);
}

static int on_put(void *ud, const struct vp_lease_rec *rec)
{
	FUZZ_CHECK(rec->state == VP_LEASE_HELD || rec->state == VP_LEASE_ONLINE);
	FUZZ_CHECK(memchr(rec->real, '\0', VP_REAL_MAX) != NULL);
	FUZZ_CHECK(!rec->addr4.family || (rec->addr4.family == VP_INET && rec->addr4.hi == 0 &&
					  rec->addr4.lo <= UINT32_MAX));
	FUZZ_CHECK(!rec->addr6.family || rec->addr6.family == VP_INET6);
	FUZZ_CHECK(prefix_ok(&rec->subnet4, VP_INET) && prefix_ok(&rec->subnet6, VP_INET6));
	return keep(ud, rec, false);
}

static int on_instance(void *ud, const struct vp_instance_rec *rec)
{
	((struct replayed *)ud)->ninst++;
	FUZZ_CHECK(rec->slot < VP_INSTANCE_MAX);
	FUZZ_CHECK(rec->name[0] && memchr(rec->name, '\0', sizeof(rec->name)));
	FUZZ_CHECK(memchr(rec->dev, '\0', sizeof(rec->dev)));
	return 0;
}

static int on_del(void *ud, const uint8_t *identity, size_t identity_len, uint16_t slot)
{
	struct vp_lease_rec rec = { .identity = identity, .identity_len = identity_len,
				    .slot = slot };

	return keep(ud, &rec, true);
}

/* ---- building the file -------------------------------------------------------- */

static uint32_t crc32c(const uint8_t *p, size_t len)
{
	uint32_t c = ~0U;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; ++k)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
	}
	return ~c;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; ++i)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Walk records of "u32 length, u32 crc, payload" and set each whole one's CRC. */
static void fix_crcs(uint8_t *p, size_t len)
{
	size_t at = 0;

	while (len - at >= 8) {
		uint32_t n = (uint32_t)p[at] | (uint32_t)p[at + 1] << 8 |
			     (uint32_t)p[at + 2] << 16 | (uint32_t)p[at + 3] << 24;

		if (n > len - at - 8)
			break;
		put_le32(p + at + 4, crc32c(p + at + 8, n));
		at += 8 + n;
	}
}

static size_t build_journal(uint8_t *out, const uint8_t *data, size_t size)
{
	unsigned mode = data[0] & 3;
	bool v2 = data[0] & 4;
	size_t hdr = v2 ? 20 : 12;

	++data;
	--size;
	if (mode == 0) {
		memcpy(out, data, size);
		return size;
	}
	memcpy(out, "VPNPOOL1", 8);
	if (mode == 3) {
		memcpy(out + 8, data, size);
		return 8 + size;
	}
	put_le32(out + 8, v2 ? 2 : 1);
	if (v2)
		memcpy(out + 12, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);	/* file id */
	memcpy(out + hdr, data, size);
	if (mode == 2)
		fix_crcs(out + hdr, size);
	return hdr + size;
}

/* ---- properties ------------------------------------------------------------------ */

static bool same_rec(const struct vp_lease_rec *a, const struct vp_lease_rec *b)
{
	return a->identity_len == b->identity_len &&
	       !memcmp(a->identity, b->identity, a->identity_len) && a->slot == b->slot &&
	       a->state == b->state && a->sessions == b->sessions && a->created == b->created &&
	       a->since == b->since && !strcmp(a->real, b->real) &&
	       vp_addr_eq(&a->addr4, &b->addr4) && vp_addr_eq(&a->addr6, &b->addr6) &&
	       vp_addr_eq(&a->subnet4.addr, &b->subnet4.addr) && a->subnet4.len == b->subnet4.len &&
	       vp_addr_eq(&a->subnet6.addr, &b->subnet6.addr) && a->subnet6.len == b->subnet6.len &&
	       a->instance == b->instance;
}

static void check_same(const struct replayed *a, const struct replayed *b, size_t n)
{
	FUZZ_CHECK(a->n >= n && b->n >= n);
	for (size_t i = 0; i < n; ++i)
		FUZZ_CHECK(a->is_del[i] == b->is_del[i] && same_rec(&a->rec[i], &b->rec[i]));
}

/* Every replayed record, appended to a fresh journal in sub, reads back equal. */
static void check_rewrite(const char *sub, size_t n)
{
	struct vp_store_replay replay = { .put = on_put, .del = on_del, .instance = on_instance,
					  .ud = &second };
	struct vp_store_report rep;
	struct vp_store *s;

	FUZZ_CHECK(vp_store_open(&s, sub, false, NULL, NULL, NULL, NULL) == 0);
	for (size_t i = 0; i < n; ++i) {
		const struct vp_lease_rec *r = &first.rec[i];

		if (first.is_del[i])
			FUZZ_CHECK(vp_store_del(s, r->identity, r->identity_len, r->slot) == 0);
		else
			FUZZ_CHECK(vp_store_put(s, r) == 0);
	}
	vp_store_close(s);
	second.n = second.used = second.ninst = 0;
	FUZZ_CHECK(vp_store_read(sub, &replay, &rep) == 0);
	FUZZ_CHECK(!rep.torn && !rep.corrupt && rep.records == n);
	check_same(&first, &second, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vp_store_replay replay_first = { .put = on_put, .del = on_del,
						.instance = on_instance, .ud = &first };
	struct vp_store_replay replay_second = { .put = on_put, .del = on_del,
						 .instance = on_instance, .ud = &second };
	struct vp_store_report read_rep, open_rep, again_rep;
	const char *dir = fuzz_dir();
	char sub[PATH_MAX];
	struct vp_store *s;
	uint8_t *journal;
	size_t len, kept;
	int r1, r2;

	if (size < 1 || size > 64 * 1024)
		return 0;
	journal = malloc(size + 20);
	FUZZ_CHECK(journal);
	len = build_journal(journal, data, size);
	fuzz_dir_clear(dir);
	fuzz_write_file(dir, "leases.journal", journal, len);
	free(journal);

	first.n = first.used = first.ninst = 0;
	r1 = vp_store_read(dir, &replay_first, &read_rep);
	FUZZ_CHECK(r1 == 0 || r1 == -EPROTONOSUPPORT);
	FUZZ_CHECK(read_rep.records == first.n + first.ninst || first.n == MAX_KEPT);
	FUZZ_CHECK(read_rep.bytes == len && !read_rep.set_aside[0]);
	FUZZ_CHECK(!(read_rep.torn && read_rep.corrupt));
	FUZZ_CHECK(memchr(read_rep.detail, '\0', sizeof(read_rep.detail)));

	second.n = second.used = second.ninst = 0;
	r2 = vp_store_open(&s, dir, false, NULL, &replay_second, &open_rep, NULL);
	FUZZ_CHECK(r1 == r2);
	if (r2)
		return 0;	/* a newer format: left as it is */
	FUZZ_CHECK(open_rep.records == read_rep.records);
	FUZZ_CHECK(open_rep.torn == read_rep.torn && open_rep.corrupt == read_rep.corrupt);
	FUZZ_CHECK(open_rep.torn_offset == read_rep.torn_offset);
	FUZZ_CHECK(open_rep.corrupt_offset == read_rep.corrupt_offset);
	FUZZ_CHECK(!open_rep.corrupt || open_rep.set_aside[0]);
	check_same(&first, &second, first.n < MAX_KEPT ? first.n : MAX_KEPT);
	vp_store_close(s);

	/* The repaired journal reads clean: what was kept, or nothing after damage.
	 * (Each load allocates a 1 MiB buffer, slow under ASan: skip the loads
	 * that cannot tell anything new.) */
	kept = open_rep.corrupt ? 0 : (size_t)open_rep.records;
	if (open_rep.torn || open_rep.corrupt || len < 20) {
		second.n = second.used = second.ninst = 0;
		FUZZ_CHECK(vp_store_read(dir, &replay_second, &again_rep) == 0);
		FUZZ_CHECK(!again_rep.torn && !again_rep.corrupt && again_rep.records == kept);
		if (kept && first.n < MAX_KEPT) {
			FUZZ_CHECK(second.n == first.n && second.ninst == first.ninst);
			check_same(&first, &second, first.n);
		}
	}
	if (first.n) {
		snprintf(sub, sizeof(sub), "%s/rewrite", dir);
		check_rewrite(sub, first.n);
	}
	return 0;
}
