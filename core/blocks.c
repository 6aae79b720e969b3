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

struct vp_blocks {
	struct vp_addr base;		/* first block */
	unsigned block_len, shift;
	uint64_t nblocks, excluded, allocated, last_alloc;
	struct vp_bitset *taken;	/* allocated or excluded */
	struct span *excl;		/* sorted, disjoint, not adjacent */
	size_t nexcl;
};

/* The last address of the block starting at a. */
static struct vp_addr block_last(const struct vp_addr *a, unsigned block_len)
{
	struct vp_prefix p = { *a, (uint8_t)block_len };

	return vp_prefix_range(&p).last;
}

/* Count the whole blocks from base to last. */
static int count_blocks(const struct vp_addr *base, const struct vp_addr *last, unsigned len,
			unsigned shift, uint64_t *n)
{
	uint64_t k = vp_addr_offset(last, base, shift);
	struct vp_addr start, end;

	if (k == UINT64_MAX)
		return -E2BIG;
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
	b->taken = vp_bitset_new(n);
	if (!b->taken) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void vp_blocks_free(struct vp_blocks *b)
{
	if (!b)
		return;
	vp_bitset_free(b->taken);
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

static bool is_excluded(const struct vp_blocks *b, uint64_t i)
{
	size_t lo = 0, hi = b->nexcl;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->excl[mid].last < i)
			lo = mid + 1;
		else if (b->excl[mid].first > i)
			hi = mid;
		else
			return true;
	}
	return false;
}

/* Add [first, last] to the excluded runs, merging; returns the count of
 * indexes that were not excluded before, or -ENOMEM. */
static int add_span(struct vp_blocks *b, uint64_t first, uint64_t last, uint64_t *added)
{
	struct span *s = realloc(b->excl, (b->nexcl + 1) * sizeof(*s));
	size_t w = 0;
	uint64_t total = 0;

	if (!s)
		return -ENOMEM;
	b->excl = s;
	s[b->nexcl++] = (struct span){ first, last };
	/* Insertion into place, then one merging pass. */
	for (size_t i = b->nexcl - 1; i > 0 && s[i - 1].first > s[i].first; --i) {
		struct span t = s[i];

		s[i] = s[i - 1];
		s[i - 1] = t;
	}
	for (size_t i = 0; i < b->nexcl; ++i) {
		if (w && s[i].first <= s[w - 1].last + 1 && s[w - 1].last != UINT64_MAX) {
			if (s[i].last > s[w - 1].last)
				s[w - 1].last = s[i].last;
		} else {
			s[w++] = s[i];
		}
	}
	b->nexcl = w;
	for (size_t i = 0; i < w; ++i)
		total += s[i].last - s[i].first + 1;
	*added = total - b->excluded;
	b->excluded = total;
	return 0;
}

int vp_blocks_exclude(struct vp_blocks *b, const struct vp_range *r)
{
	struct vp_addr end;
	uint64_t first, last, added;
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
	ret = add_span(b, first, last, &added);
	if (ret)
		return ret;
	return vp_bitset_set_range(b->taken, first, last);
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
	return sizeof(*b) + vp_bitset_memory(b->taken) + b->nexcl * sizeof(*b->excl);
}

int vp_blocks_alloc(struct vp_blocks *b, struct vp_prefix *out)
{
	uint64_t i = vp_bitset_find_clear(b->taken, 0);
	int ret;

	if (i == VP_BITSET_NONE)
		return -ENOSPC;
	ret = vp_bitset_set(b->taken, i);
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
	if (vp_bitset_test(b->taken, i))
		return -EEXIST;
	ret = vp_bitset_set(b->taken, i);
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
	if (!vp_bitset_test(b->taken, i))
		return -ENOENT;
	ret = vp_bitset_clear(b->taken, i);
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

	return i != UINT64_MAX && !is_excluded(b, i) && vp_bitset_test(b->taken, i);
}
