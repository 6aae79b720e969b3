/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The block allocator: addresses, /30s and routed subnets from a range. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "blocks.h"

static struct vp_range range(const char *text)
{
	struct vp_range r;
	char err[VP_ERRLEN];

	assert_true(vp_range_parse(&r, text, err));
	return r;
}

static struct vp_addr addr(const char *text)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	assert_true(vp_addr_parse(&a, text, err));
	return a;
}

static const char *next(struct vp_blocks *b)
{
	static char buf[VP_PREFIX_STRLEN];
	struct vp_prefix p;

	if (vp_blocks_alloc(b, &p))
		return "ENOSPC";
	return vp_prefix_format(&p, buf);
}

static void blocks__addresses__lowest_first_excludes_never_and_enospc(void **state)
{
	struct vp_blocks *b;
	struct vp_range ex = range("10.8.0.3-10.8.0.4");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &(struct vp_range){ addr("10.8.0.1"), addr("10.8.0.6") }, 32), 0);
	assert_int_equal(vp_blocks_exclude(b, &ex), 0);
	assert_int_equal(vp_blocks_size(b), 4);
	assert_string_equal(next(b), "10.8.0.1/32");
	assert_string_equal(next(b), "10.8.0.2/32");
	assert_string_equal(next(b), "10.8.0.5/32");
	assert_string_equal(next(b), "10.8.0.6/32");
	assert_string_equal(next(b), "ENOSPC");
	assert_int_equal(vp_blocks_used(b), 4);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a080002, VP_INET }), 0);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a080002, VP_INET }), -ENOENT);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a080003, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080004, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080009, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080005, VP_INET }), -EEXIST);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080002, VP_INET }), 0);
	assert_int_equal(vp_blocks_release_last(b), 0);
	assert_int_equal(vp_blocks_release_last(b), -ENOENT);
	assert_string_equal(next(b), "10.8.0.2/32");
	vp_blocks_free(b);
}

static void blocks__net30__whole_aligned_slash30s_inside_range(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.8.0.1-10.8.0.254");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 30), 0);
	assert_int_equal(vp_blocks_size(b), 62);
	assert_string_equal(next(b), "10.8.0.4/30");
	assert_true(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a0800fa, VP_INET }));
	assert_false(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a0800fd, VP_INET }));
	vp_blocks_free(b);
}

static void blocks__subnets__slash24_of_slash16_and_slash64_of_slash48(void **state)
{
	struct vp_blocks *b4, *b6;
	struct vp_range r4 = range("10.9.0.0/16"), r6 = range("fd00:9::/48");
	struct vp_range ex = range("10.9.0.128-10.9.1.5");

	(void)state;
	assert_int_equal(vp_blocks_new(&b4, &r4, 24), 0);
	assert_int_equal(vp_blocks_exclude(b4, &ex), 0);
	assert_int_equal(vp_blocks_size(b4), 254);
	assert_string_equal(next(b4), "10.9.2.0/24");
	assert_int_equal(vp_blocks_new(&b6, &r6, 64), 0);
	assert_int_equal(vp_blocks_size(b6), 65536);
	assert_string_equal(next(b6), "fd00:9::/64");
	assert_string_equal(next(b6), "fd00:9:0:1::/64");
	assert_int_equal(vp_blocks_take(b6, &(struct vp_addr){ 0xfd00000900007700ULL, 0, VP_INET6 }), 0);
	assert_true(vp_blocks_is_used(b6, &(struct vp_addr){ 0xfd00000900007700ULL, 5, VP_INET6 }));
	vp_blocks_free(b4);
	vp_blocks_free(b6);
}

static void blocks__slash24_of_slash16__exhausts_with_enospc(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.9.0.0/16");
	struct vp_prefix p;

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 24), 0);
	assert_int_equal(vp_blocks_block_len(b), 24);
	for (int i = 0; i < 256; ++i) {
		assert_int_equal(vp_blocks_alloc(b, &p), 0);
		assert_int_equal(p.len, 24);
		assert_int_equal(vp_addr_to_v4(&p.addr), 0x0a090000u + ((unsigned)i << 8));
	}
	assert_int_equal(vp_blocks_alloc(b, &p), -ENOSPC);
	assert_int_equal(vp_blocks_used(b), 256);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a094d05, VP_INET }), 0);
	assert_string_equal(next(b), "10.9.77.0/24");
	assert_string_equal(next(b), "ENOSPC");
	vp_blocks_free(b);
}

static void blocks__range_not_aligned__only_whole_blocks(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.9.0.200-10.9.3.10");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 24), 0);
	assert_int_equal(vp_blocks_size(b), 2);
	assert_string_equal(next(b), "10.9.1.0/24");
	assert_string_equal(next(b), "10.9.2.0/24");
	assert_string_equal(next(b), "ENOSPC");
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a0900c8, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a090305, VP_INET }), -EDOM);
	assert_false(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a090005, VP_INET }));
	vp_blocks_free(b);
	r = range("fd00:9::1-fd00:9:0:3::");
	assert_int_equal(vp_blocks_new(&b, &r, 64), 0);
	assert_int_equal(vp_blocks_size(b), 2);
	assert_string_equal(next(b), "fd00:9:0:1::/64");
	vp_blocks_free(b);
}

static void blocks__exclusions__never_handed_out(void **state)
{
	static const char *const ex[] = {
		"10.8.3.0/24", "10.8.0.0", "10.8.0.255-10.8.1.3", "10.8.7.7", "10.8.1.2-10.8.1.9",
		"10.8.2.0-10.8.2.0", "fd00::1", "10.7.255.0-10.8.0.2", "10.8.15.250-10.9.0.0",
	};
	struct vp_blocks *b;
	struct vp_range r = range("10.8.0.0/20"), x[9];
	struct vp_prefix p;
	uint64_t n = 0;

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 32), 0);
	for (size_t i = 0; i < 9; ++i) {
		x[i] = range(ex[i]);
		assert_int_equal(vp_blocks_exclude(b, &x[i]), 0);
	}
	/* 4096 - 256 - (0..2) - (255..1.9) - 7.7 - 2.0 - (15.250..15.255) */
	assert_int_equal(vp_blocks_size(b), 4096 - 256 - 3 - 11 - 1 - 1 - 6);
	while (!vp_blocks_alloc(b, &p)) {
		for (size_t i = 0; i < 9; ++i)
			if (vp_range_contains(&x[i], &p.addr))
				fail_msg("excluded address %s handed out", next(b));
		assert_true(vp_blocks_owns(b, &p.addr));
		n++;
	}
	assert_int_equal(n, vp_blocks_size(b));
	assert_int_equal(vp_blocks_used(b), n);
	assert_false(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a080305, VP_INET }));
	assert_false(vp_blocks_is_used(b, &(struct vp_addr){ 0, 0x0a080305, VP_INET }));
	vp_blocks_free(b);
}

static void blocks__exclusions_in_any_order__merge_and_count_once(void **state)
{
	static uint8_t model[65536];
	struct vp_blocks *b;
	struct vp_range r = range("10.0.0.0/16");
	uint64_t excluded = 0;

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 32), 0);
	/* Every third address from the top down, then runs over them. */
	for (uint32_t a = 0xfff0; a >= 0x10; a -= 3) {
		struct vp_range x = { vp_addr_v4(0x0a000000 + a), vp_addr_v4(0x0a000000 + a) };

		model[a] = 1;
		assert_int_equal(vp_blocks_exclude(b, &x), 0);
	}
	for (uint32_t a = 0x10; a < 0xfff0; a += 7) {
		struct vp_range x = { vp_addr_v4(0x0a000000 + a), vp_addr_v4(0x0a000000 + a + 3) };

		memset(model + a, 1, 4);
		assert_int_equal(vp_blocks_exclude(b, &x), 0);
	}
	for (size_t i = 0; i < sizeof(model); ++i)
		excluded += model[i];
	assert_int_equal(vp_blocks_size(b), 65536 - excluded);
	for (size_t i = 0; i < sizeof(model); ++i)
		assert_int_equal(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a000000 + i, VP_INET }), !model[i]);
	vp_blocks_free(b);
}

static void blocks__exclude_after_alloc__stops_counting_it_as_used(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.8.0.0/24"), x = range("10.8.0.1-10.8.0.2");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 32), 0);
	assert_string_equal(next(b), "10.8.0.0/32");
	assert_string_equal(next(b), "10.8.0.1/32");
	assert_int_equal(vp_blocks_exclude(b, &x), 0);
	assert_int_equal(vp_blocks_used(b), 1);
	assert_int_equal(vp_blocks_size(b), 254);
	assert_int_equal(vp_blocks_release_last(b), -ENOENT);
	assert_string_equal(next(b), "10.8.0.3/32");
	vp_blocks_free(b);
}

static void blocks__ipv6_slash112_at_99_percent__allocates_the_holes(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("fd00:8::/112");
	struct vp_prefix p;

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 128), 0);
	assert_int_equal(vp_blocks_size(b), 65536);
	for (int i = 0; i < 65536; ++i)
		assert_int_equal(vp_blocks_alloc(b, &p), 0);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0xfd00000800000000ULL, 0xabcd, VP_INET6 }), 0);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0xfd00000800000000ULL, 0x12, VP_INET6 }), 0);
	assert_string_equal(next(b), "fd00:8::12/128");
	assert_string_equal(next(b), "fd00:8::abcd/128");
	assert_string_equal(next(b), "ENOSPC");
	vp_blocks_free(b);
}

static void blocks__new__rejects_bad_ranges(void **state)
{
	struct vp_blocks *b = (struct vp_blocks *)1;
	struct vp_range mixed = { vp_addr_v4(1), { 0, 1, VP_INET6 } };
	struct vp_range reversed = { vp_addr_v4(9), vp_addr_v4(1) };
	struct vp_range two64 = range("fd00::/64"), v6 = range("fd00::/64");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &mixed, 32), -EINVAL);
	assert_null(b);
	assert_int_equal(vp_blocks_new(&b, &reversed, 32), -EINVAL);
	assert_int_equal(vp_blocks_new(&b, &two64, 128), -E2BIG);
	assert_int_equal(vp_blocks_new(&b, &v6, 129), -EINVAL);
	/* 2^64 - 1 whole /127s and one address short of the last. */
	v6 = range("fd00::/63");
	v6.last.lo -= 1;
	assert_int_equal(vp_blocks_new(&b, &v6, 127), 0);
	assert_int_equal(vp_blocks_size(b), UINT64_MAX);
	vp_blocks_free(b);
}

static void blocks__bad_geometry__errors(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.9.0.1-10.9.0.200"), v6 = range("::/0");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 24), -ENOSPC);
	assert_int_equal(vp_blocks_new(&b, &r, 33), -EINVAL);
	assert_int_equal(vp_blocks_new(&b, &v6, 128), -E2BIG);
	assert_null(b);
}

static void blocks__ipv6_slash64__huge_but_cheap(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("fd00:8::1-fd00:8::ffff:ffff:ffff:ffff");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 128), 0);
	assert_int_equal(vp_blocks_size(b), UINT64_MAX);
	for (int i = 0; i < 100000; ++i)
		assert_string_not_equal(next(b), "ENOSPC");
	assert_string_equal(next(b), "fd00:8::1:86a1/128");
	assert_true(vp_blocks_memory(b) < 1 << 20);
	vp_blocks_free(b);
}

/* Blocks past the first 2^24 live in a second bitset: every operation
 * crosses that line as if it were not there. */
static void blocks__ipv6_slash64__past_the_first_2_24_blocks(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("fd00:8::1-fd00:8::ffff:ffff:ffff:ffff");
	struct vp_range low = range("fd00:8::1-fd00:8::100:2");	/* blocks 0 .. 2^24 + 1 */
	struct vp_range one = range("fd00:8::100:3-fd00:8::100:3");
	struct vp_range across = range("fd00:8::ff:fff0-fd00:8::100:10");
	struct vp_addr a;

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 128), 0);
	assert_int_equal(vp_blocks_exclude(b, &low), 0);
	assert_int_equal(vp_blocks_size(b), UINT64_MAX - (((uint64_t)1 << 24) + 2));
	assert_string_equal(next(b), "fd00:8::100:3/128");
	a = addr("fd00:8::100:4");
	assert_int_equal(vp_blocks_take(b, &a), 0);
	assert_int_equal(vp_blocks_take(b, &a), -EEXIST);
	assert_true(vp_blocks_is_used(b, &a));
	assert_string_equal(next(b), "fd00:8::100:5/128");
	assert_int_equal(vp_blocks_release(b, &a), 0);
	assert_false(vp_blocks_is_used(b, &a));
	assert_string_equal(next(b), "fd00:8::100:4/128");
	assert_int_equal(vp_blocks_used(b), 3);
	assert_int_equal(vp_blocks_exclude(b, &one), 0);	/* an allocated one */
	assert_int_equal(vp_blocks_used(b), 2);
	a = addr("fd00:8::ffff:ffff:ffff:ffff");		/* the very last block */
	assert_int_equal(vp_blocks_take(b, &a), 0);
	assert_int_equal(vp_blocks_used(b), 3);
	vp_blocks_free(b);

	/* Allocated blocks on both sides, then one exclusion over both. */
	assert_int_equal(vp_blocks_new(&b, &r, 128), 0);
	a = addr("fd00:8::ff:ffff");				/* block 2^24 - 2 */
	assert_int_equal(vp_blocks_take(b, &a), 0);
	a = addr("fd00:8::100:1");				/* block 2^24 */
	assert_int_equal(vp_blocks_take(b, &a), 0);
	assert_int_equal(vp_blocks_used(b), 2);
	assert_int_equal(vp_blocks_exclude(b, &across), 0);
	assert_int_equal(vp_blocks_used(b), 0);
	assert_int_equal(vp_blocks_release(b, &a), -EDOM);
	assert_string_equal(next(b), "fd00:8::1/128");
	vp_blocks_free(b);
}

/* ---- randomised: the allocator against a plain array ---------------------- */

enum mstate { M_OUTSIDE, M_EXCLUDED, M_FREE, M_USED };

#define M_MAX 1200

struct mblocks {
	struct vp_addr origin;		/* block 0: aligned, at or below the range */
	unsigned len, shift;
	size_t n;
	enum mstate st[M_MAX];
	long last;			/* what release_last frees, -1 none */
};

static uint64_t model_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct vp_range block_range(const struct mblocks *m, size_t k)
{
	struct vp_prefix p = { vp_addr_add(&m->origin, k, m->shift), (uint8_t)m->len };

	return vp_prefix_range(&p);
}

/* The model of a range and its exclusions, from first principles: a block
 * is in the pool iff it lies wholly in the range and meets no exclusion. */
static void model_init(struct mblocks *m, const struct vp_range *r, unsigned len,
		       const struct vp_range *ex, size_t n_ex)
{
	unsigned bits = vp_family_bits(r->first.family);

	m->len = len;
	m->shift = bits - len;
	m->origin = vp_prefix_of(&r->first, len >= 6 ? len - 6 : 0).addr;
	m->last = -1;
	m->n = 0;
	while (m->n < M_MAX) {
		struct vp_range br = block_range(m, m->n);

		if (vp_addr_cmp(&br.first, &r->last) > 0 && m->n % 64 == 8)
			break;
		m->st[m->n] = vp_range_within(&br, r) ? M_FREE : M_OUTSIDE;
		for (size_t e = 0; e < n_ex && m->st[m->n] == M_FREE; ++e)
			if (vp_range_overlaps(&br, &ex[e]))
				m->st[m->n] = M_EXCLUDED;
		m->n++;
	}
	assert_true(m->n < M_MAX);
}

static void model_run(const char *text, unsigned len, const char *const *excludes, unsigned ops,
		      uint64_t seed)
{
	static struct mblocks m;
	struct vp_range r = range(text), ex[8];
	struct vp_blocks *b;
	size_t n_ex = 0, size = 0, used_now = 0, max_used = 0;

	assert_int_equal(vp_blocks_new(&b, &r, len), 0);
	for (; excludes && excludes[n_ex]; ++n_ex) {
		ex[n_ex] = range(excludes[n_ex]);
		assert_int_equal(vp_blocks_exclude(b, &ex[n_ex]), 0);
	}
	model_init(&m, &r, len, ex, n_ex);
	for (size_t k = 0; k < m.n; ++k)
		size += m.st[k] == M_FREE;
	assert_int_equal(vp_blocks_size(b), size);

	for (unsigned op = 0; op < ops; ++op) {
		uint64_t x = model_random(&seed);
		size_t k = (size_t)((x >> 8) % m.n);
		struct vp_range br = block_range(&m, k);
		/* Any address inside the block names it. */
		struct vp_addr inside = vp_addr_add(&br.first,
						    (x >> 40) & (m.shift < 20 ? (1u << m.shift) - 1 : 0xfffff), 0);
		int want, got;

		/* The fill sweeps 0-100% and back in steps of 10%: the target
		 * decides whether mostly allocations or mostly frees come. */
		size_t phase = (op / 1000) % 20, target = size * (phase <= 10 ? phase : 20 - phase) / 10;
		unsigned r8 = (unsigned)(x % 8), kind;

		if (used_now < target)		/* alloc, take, undo */
			kind = r8 < 5 ? 0 : r8 < 7 ? 3 : 7;
		else				/* free, undo, alloc, take */
			kind = r8 < 5 ? 5 : r8 == 5 ? 7 : r8 == 6 ? 0 : 3;
		switch (kind) {
		case 0: case 1: case 2: {		/* alloc: the lowest free */
			struct vp_prefix p;
			size_t lo = 0;

			while (lo < m.n && m.st[lo] != M_FREE)
				lo++;
			got = vp_blocks_alloc(b, &p);
			if (lo == m.n) {
				assert_int_equal(got, -ENOSPC);
				break;
			}
			assert_int_equal(got, 0);
			assert_int_equal(p.len, len);
			br = block_range(&m, lo);
			assert_true(vp_addr_eq(&p.addr, &br.first));
			m.st[lo] = M_USED;
			used_now++;
			m.last = (long)lo;
			break;
		}
		case 3: case 4:				/* take a given one */
			want = m.st[k] == M_FREE ? 0 : m.st[k] == M_USED ? -EEXIST : -EDOM;
			assert_int_equal(vp_blocks_take(b, &inside), want);
			if (!want) {
				m.st[k] = M_USED;
				m.last = (long)k;
				used_now++;
			}
			break;
		case 5: case 6:				/* free a given one */
			want = m.st[k] == M_USED ? 0 : m.st[k] == M_FREE ? -ENOENT : -EDOM;
			assert_int_equal(vp_blocks_release(b, &inside), want);
			if (!want) {
				m.st[k] = M_FREE;
				if (m.last == (long)k)
					m.last = -1;
				used_now--;
			}
			break;
		default:				/* undo the last allocation */
			want = m.last >= 0 ? 0 : -ENOENT;
			assert_int_equal(vp_blocks_release_last(b), want);
			if (!want) {
				m.st[m.last] = M_FREE;
				used_now--;
			}
			m.last = -1;
			break;
		}
		assert_int_equal(vp_blocks_owns(b, &inside), m.st[k] == M_FREE || m.st[k] == M_USED);
		assert_int_equal(vp_blocks_is_used(b, &inside), m.st[k] == M_USED);
		assert_int_equal(vp_blocks_used(b), used_now);
		if (used_now > max_used)
			max_used = used_now;
	}
	assert_int_equal(vp_blocks_used(b), used_now);
	for (size_t k = 0; k < m.n; ++k)
		used_now -= m.st[k] == M_USED;
	assert_int_equal(used_now, 0);
	assert_true(max_used == size);		/* the sweep filled it */
	vp_blocks_free(b);
}

static void blocks__random_operations__match_a_plain_array(void **state)
{
	static const char *const ex4[] = { "10.8.1.0/26", "10.8.2.5-10.8.2.9", "10.8.3.254", NULL };
	static const char *const ex30[] = { "10.8.3.0/24", "10.8.7.7", NULL };
	static const char *const ex6[] = { "fd00::100/120", "fd00::2-fd00::3", NULL };
	static const char *const ex64[] = { "fd00:9:0:10::/60", NULL };
	const char *env = getenv("VP_BLOCKS_OPS");
	unsigned ops = env ? (unsigned)strtoul(env, NULL, 10) : 40000;

	(void)state;
	model_run("10.8.0.1-10.8.3.254", 32, ex4, ops, 0x1234567);
	model_run("10.8.0.1-10.8.15.254", 30, ex30, ops, 0x2345678);
	model_run("fd00::1-fd00::3ff", 128, ex6, ops, 0x3456789);
	model_run("fd00:9::/56", 64, ex64, ops, 0x456789a);
	model_run("10.8.0.0/16", 24, NULL, ops, 0x56789ab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blocks__addresses__lowest_first_excludes_never_and_enospc),
		cmocka_unit_test(blocks__net30__whole_aligned_slash30s_inside_range),
		cmocka_unit_test(blocks__subnets__slash24_of_slash16_and_slash64_of_slash48),
		cmocka_unit_test(blocks__slash24_of_slash16__exhausts_with_enospc),
		cmocka_unit_test(blocks__range_not_aligned__only_whole_blocks),
		cmocka_unit_test(blocks__exclusions__never_handed_out),
		cmocka_unit_test(blocks__exclusions_in_any_order__merge_and_count_once),
		cmocka_unit_test(blocks__exclude_after_alloc__stops_counting_it_as_used),
		cmocka_unit_test(blocks__ipv6_slash112_at_99_percent__allocates_the_holes),
		cmocka_unit_test(blocks__new__rejects_bad_ranges),
		cmocka_unit_test(blocks__bad_geometry__errors),
		cmocka_unit_test(blocks__ipv6_slash64__huge_but_cheap),
		cmocka_unit_test(blocks__ipv6_slash64__past_the_first_2_24_blocks),
		cmocka_unit_test(blocks__random_operations__match_a_plain_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
