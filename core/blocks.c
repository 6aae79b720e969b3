/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitset.h"
#include "blocks.h"

/* A run of excluded block indexes. */
struct span {
	uint64_t first, last;
};

/*
 * Blocks are handed out lowest first, so a big space is used from its start:
 * the first LOW_BLOCKS blocks get a bitset of their own, four levels deep like
 * a /8's, and only the rest (of an IPv6 /64, say) the deep one.  Up to 2^24
 * clients an IPv6 pool then costs what an IPv4 /8 costs.
 */
#define LOW_BLOCKS ((uint64_t)1 << 24)

struct vp_blocks {
	struct vp_addr base;		/* first block */
	unsigned block_len, shift;
	uint64_t nblocks, excluded, allocated, last_alloc;
	struct vp_bitset *low;		/* blocks [0, nlow): allocated or excluded */
	struct vp_bitset *high;		/* blocks [nlow, nblocks), or NULL */
	uint64_t nlow;
	struct span *excl;		/* sorted, disjoint, not adjacent */
	size_t nexcl, excl_cap;
};

/* ---- the two bitsets as one ------------------------------------------ */

static int taken_test(const struct vp_blocks *b, uint64_t i)
{
	return i < b->nlow ? vp_bitset_test(b->low, i) : vp_bitset_test(b->high, i - b->nlow);
}

static int taken_set(struct vp_blocks *b, uint64_t i)
{
	return i < b->nlow ? vp_bitset_set(b->low, i) : vp_bitset_set(b->high, i - b->nlow);
}

static int taken_clear(struct vp_blocks *b, uint64_t i)
{
	return i < b->nlow ? vp_bitset_clear(b->low, i) : vp_bitset_clear(b->high, i - b->nlow);
}

static int taken_set_range(struct vp_blocks *b, uint64_t first, uint64_t last)
{
	int ret = 0;

	if (first < b->nlow)
		ret = vp_bitset_set_range(b->low, first, last < b->nlow ? last : b->nlow - 1);
	if (!ret && last >= b->nlow)
		ret = vp_bitset_set_range(b->high, (first > b->nlow ? first : b->nlow) - b->nlow,
					  last - b->nlow);
	return ret;
}

static uint64_t taken_find_clear(const struct vp_blocks *b)
{
	uint64_t i = vp_bitset_find_clear(b->low, 0);

	if (i != VP_BITSET_NONE || !b->high)
		return i;
	i = vp_bitset_find_clear(b->high, 0);
	return i == VP_BITSET_NONE ? i : i + b->nlow;
}

static uint64_t taken_find_set(const struct vp_blocks *b, uint64_t from)
{
	uint64_t i;

	if (from < b->nlow) {
		i = vp_bitset_find_set(b->low, from);
		if (i != VP_BITSET_NONE || !b->high)
			return i;
		from = b->nlow;
	}
	if (!b->high)
		return VP_BITSET_NONE;
	i = vp_bitset_find_set(b->high, from - b->nlow);
	return i == VP_BITSET_NONE ? i : i + b->nlow;
}

/* The last address of the block starting at a. */
static struct vp_addr block_last(const struct vp_addr *a, unsigned block_len)
{
	struct vp_prefix p = { *a, (uint8_t)block_len };

	return vp_prefix_range(&p).last;
}

/* Count the whole blocks from base to last (base <= last). */
static int count_blocks(const struct vp_addr *base, const struct vp_addr *last, unsigned len,
			unsigned shift, uint64_t *n)
{
	uint64_t k = vp_addr_offset(last, base, shift);
	struct vp_addr start, end;

	if (k == UINT64_MAX) {
		/* Either last is in block 2^64 - 1, or further: both too many,
		 * unless block 2^64 - 1 is the partial one that does not count. */
		start = vp_addr_add(base, UINT64_MAX, shift);
		end = block_last(&start, len);
		if (vp_addr_cmp(&start, base) > 0 && vp_addr_cmp(&end, last) > 0) {
			*n = UINT64_MAX;
			return 0;
		}
		return -E2BIG;
	}
	start = vp_addr_add(base, k, shift);
	end = block_last(&start, len);
	*n = vp_addr_cmp(&end, last) <= 0 ? k + 1 : k;
	return 0;
}

int vp_blocks_new(struct vp_blocks **out, const struct vp_range *range, unsigned block_len)
{
	unsigned bits = vp_family_bits(range->first.family);
	struct vp_blocks *b;
	struct vp_prefix first;
	uint64_t n;
	int ret;

	*out = NULL;
	if ((range->first.family != VP_INET && range->first.family != VP_INET6) ||
	    range->first.family != range->last.family ||
	    vp_addr_cmp(&range->first, &range->last) > 0)
		return -EINVAL;
	if (block_len > bits || bits - block_len > 127)
		return -EINVAL;
	first = vp_prefix_of(&range->first, block_len);
	if (vp_addr_cmp(&first.addr, &range->first) < 0) {
		first.addr = vp_addr_add(&first.addr, 1, bits - block_len);
		if (vp_addr_cmp(&first.addr, &range->first) < 0)	/* wrapped */
			return -ENOSPC;
	}
	if (vp_addr_cmp(&first.addr, &range->last) > 0)
		return -ENOSPC;
	ret = count_blocks(&first.addr, &range->last, block_len, bits - block_len, &n);
	if (ret)
		return ret;
	if (!n)
		return -ENOSPC;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->base = first.addr;
	b->block_len = block_len;
	b->shift = bits - block_len;
	b->nblocks = n;
	b->last_alloc = UINT64_MAX;
	b->nlow = n > LOW_BLOCKS ? LOW_BLOCKS : n;
	b->low = vp_bitset_new(b->nlow);
	b->high = n > LOW_BLOCKS ? vp_bitset_new(n - LOW_BLOCKS) : NULL;
	if (!b->low || (n > LOW_BLOCKS && !b->high)) {
		vp_blocks_free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void vp_blocks_free(struct vp_blocks *b)
{
	if (!b)
		return;
	vp_bitset_free(b->low);
	vp_bitset_free(b->high);
	free(b->excl);
	free(b);
}

/* Index of the block holding a, or UINT64_MAX when outside. */
static uint64_t block_index(const struct vp_blocks *b, const struct vp_addr *a)
{
	uint64_t i;

	if (a->family != b->base.family)
		return UINT64_MAX;
	i = vp_addr_offset(a, &b->base, b->shift);
	return i < b->nblocks ? i : UINT64_MAX;
}

/* The first excluded run that ends at or after i (nexcl if none). */
static size_t span_at_or_after(const struct vp_blocks *b, uint64_t i)
{
	size_t lo = 0, hi = b->nexcl;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->excl[mid].last < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool is_excluded(const struct vp_blocks *b, uint64_t i)
{
	size_t k = span_at_or_after(b, i);

	return k < b->nexcl && b->excl[k].first <= i;
}

/* Blocks allocated in [first, last] outside the excluded runs. */
static uint64_t allocated_between(const struct vp_blocks *b, uint64_t first, uint64_t last)
{
	uint64_t n = 0, i = first;

	while (b->allocated && i <= last) {
		size_t k;

		i = taken_find_set(b, i);
		if (i == VP_BITSET_NONE || i > last)
			break;
		k = span_at_or_after(b, i);
		if (k < b->nexcl && b->excl[k].first <= i) {
			i = b->excl[k].last + 1;	/* last < nblocks <= UINT64_MAX */
			continue;
		}
		n++;
		i++;
	}
	return n;
}

/* Add the run [first, last] to the excluded ones, merging with those it
 * overlaps or touches.  0 or -ENOMEM. */
static int add_span(struct vp_blocks *b, uint64_t first, uint64_t last)
{
	/* Runs lo..hi-1 overlap or touch [first, last]; indexes are below
	 * UINT64_MAX, so last + 1 cannot wrap. */
	size_t lo = span_at_or_after(b, first ? first - 1 : 0), hi = lo;

	while (hi < b->nexcl && b->excl[hi].first <= last + 1)
		hi++;
	if (lo == hi && b->nexcl == b->excl_cap) {
		size_t cap = b->excl_cap ? 2 * b->excl_cap : 4;
		struct span *s = realloc(b->excl, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		b->excl = s;
		b->excl_cap = cap;
	}
	for (size_t k = lo; k < hi; ++k) {
		b->excluded -= b->excl[k].last - b->excl[k].first + 1;
		if (b->excl[k].first < first)
			first = b->excl[k].first;
		if (b->excl[k].last > last)
			last = b->excl[k].last;
	}
	if (lo == hi)
		memmove(b->excl + lo + 1, b->excl + lo, (b->nexcl - lo) * sizeof(*b->excl));
	else
		memmove(b->excl + lo + 1, b->excl + hi, (b->nexcl - hi) * sizeof(*b->excl));
	b->nexcl = b->nexcl + 1 - (hi - lo);
	b->excl[lo] = (struct span){ first, last };
	b->excluded += last - first + 1;
	return 0;
}

int vp_blocks_exclude(struct vp_blocks *b, const struct vp_range *r)
{
	struct vp_addr end;
	uint64_t first, last, was_allocated;
	int ret;

	if (r->first.family != b->base.family)
		return 0;
	end = vp_addr_add(&b->base, b->nblocks - 1, b->shift);
	end = block_last(&end, b->block_len);
	if (vp_addr_cmp(&r->last, &b->base) < 0 || vp_addr_cmp(&r->first, &end) > 0)
		return 0;
	first = vp_addr_cmp(&r->first, &b->base) < 0 ? 0 : vp_addr_offset(&r->first, &b->base, b->shift);
	last = vp_addr_cmp(&r->last, &end) > 0 ? b->nblocks - 1
					       : vp_addr_offset(&r->last, &b->base, b->shift);
	/* Against the contract, but keep the counts right: blocks allocated
	 * already become excluded ones. */
	was_allocated = allocated_between(b, first, last);
	ret = add_span(b, first, last);
	if (!ret)
		ret = taken_set_range(b, first, last);
	if (ret)
		return ret;
	b->allocated -= was_allocated;
	if (b->last_alloc != UINT64_MAX && b->last_alloc >= first && b->last_alloc <= last)
		b->last_alloc = UINT64_MAX;
	return 0;
}

uint64_t vp_blocks_size(const struct vp_blocks *b)
{
	return b->nblocks - b->excluded;
}

uint64_t vp_blocks_used(const struct vp_blocks *b)
{
	return b->allocated;
}

unsigned vp_blocks_block_len(const struct vp_blocks *b)
{
	return b->block_len;
}

size_t vp_blocks_memory(const struct vp_blocks *b)
{
	return sizeof(*b) + vp_bitset_memory(b->low) + (b->high ? vp_bitset_memory(b->high) : 0) +
	       b->excl_cap * sizeof(*b->excl);
}

int vp_blocks_alloc(struct vp_blocks *b, struct vp_prefix *out)
{
	uint64_t i = taken_find_clear(b);
	int ret;

	if (i == VP_BITSET_NONE)
		return -ENOSPC;
	ret = taken_set(b, i);
	if (ret)
		return ret;
	b->allocated++;
	b->last_alloc = i;
	out->addr = vp_addr_add(&b->base, i, b->shift);
	out->len = (uint8_t)b->block_len;
	return 0;
}

int vp_blocks_take(struct vp_blocks *b, const struct vp_addr *a)
{
	uint64_t i = block_index(b, a);
	int ret;

	if (i == UINT64_MAX || is_excluded(b, i))
		return -EDOM;
	if (taken_test(b, i))
		return -EEXIST;
	ret = taken_set(b, i);
	if (ret)
		return ret;
	b->allocated++;
	b->last_alloc = i;
	return 0;
}

static int release_index(struct vp_blocks *b, uint64_t i)
{
	int ret;

	if (i == UINT64_MAX || is_excluded(b, i))
		return -EDOM;
	if (!taken_test(b, i))
		return -ENOENT;
	ret = taken_clear(b, i);
	if (ret)
		return ret;
	b->allocated--;
	if (b->last_alloc == i)
		b->last_alloc = UINT64_MAX;
	return 0;
}

int vp_blocks_release(struct vp_blocks *b, const struct vp_addr *a)
{
	return release_index(b, block_index(b, a));
}

int vp_blocks_release_last(struct vp_blocks *b)
{
	if (b->last_alloc == UINT64_MAX)
		return -ENOENT;
	return release_index(b, b->last_alloc);
}

bool vp_blocks_owns(const struct vp_blocks *b, const struct vp_addr *a)
{
	uint64_t i = block_index(b, a);

	return i != UINT64_MAX && !is_excluded(b, i);
}

bool vp_blocks_is_used(const struct vp_blocks *b, const struct vp_addr *a)
{
	uint64_t i = block_index(b, a);

	return i != UINT64_MAX && !is_excluded(b, i) && taken_test(b, i);
}
